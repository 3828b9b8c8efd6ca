"""B-tree indexes under concurrency: inserters in several forked processes splitting
the same pages while a reader scans in both directions, concurrent unique inserts of
the same keys, and an incomplete split (a crash between the split and the parent
insertion) finished by the next inserter."""

from __future__ import annotations

import os
import random
import time

import pytest

from access import nbtree, xlog
from access.nbtree import nbtinsert, nbtverify
from access.nbtree.nbtdefs import (
    BT_SPECIAL,
    BTP_INCOMPLETE_SPLIT,
    OPAQUE,
)
from procs.postinit import init_process, proc_kill
from shmem.proc import BackendType
from storage import bufmgr, smgr
from storage.relfilenode import MAIN_FORKNUM
from tests.unit.nbtree_harness import FakeHeap, make_index, read_page, scan, tid_of
from tests.unit.shmem_harness import fork_worker, wait_workers
from utils.elog import PgError


def check(rel) -> None:
    problems = nbtverify.bt_verify(rel, allow_incomplete_splits=False)
    assert problems == [], problems[:20]


# -- concurrency -----------------------------------------------------------------------------

def _attach(seg, settings):
    procs = init_process(seg, settings, BackendType.B_BACKEND, is_superuser=True)
    return procs


def _detach(procs):
    xlog.close_log_file()
    proc_kill(procs)


def _run_concurrent(env, tmp_path, *, seconds: float, nworkers: int, shared_buffers: int
                    ) -> None:
    """Inserters split pages for ``seconds`` while a reader scans in both directions
    and a VACUUM-like worker bulk-deletes some of the new entries; afterwards the
    tree is valid and holds exactly what was inserted and not deleted."""
    settings, seg = env.make(shared_buffers=shared_buffers, wal_buffers=64)
    rel = make_index()
    nbtree.bt_build_empty(rel)
    # A fixed set of entries every reader must always see, whatever splits.
    base = list(range(0, 40_000, 40))
    for i, k in enumerate(base):
        nbtree.bt_insert(rel, [k], (0xFFFF, i + 1), FakeHeap, False)
    out = tmp_path / "out"
    out.mkdir()

    def inserter(w: int) -> None:
        procs = _attach(seg, settings)
        r = make_index(create=False)
        rng = random.Random(w)
        deadline = time.monotonic() + seconds
        j = 0
        while time.monotonic() < deadline or j < 500:
            k = rng.randrange(40_000)
            nbtree.bt_insert(r, [k], (w * 10_000 + j // 100, j % 100 + 1), FakeHeap, False)
            j += 1
        (out / f"n{w}").write_text(str(j))
        assert not bufmgr.pinned_buffers()
        _detach(procs)

    def vacuum() -> None:
        procs = _attach(seg, settings)
        r = make_index(create=False)
        deleted = []

        def dead(tid) -> bool:
            # Entries of inserter 0 whose offset is even die.
            if tid[0] < 10_000 and tid[1] % 2 == 0:
                deleted.append(tid)
                return True
            return False

        rounds = 0
        while not (out / "stop").exists() or rounds < 2:
            nbtree.bt_bulk_delete(r, dead)
            rounds += 1
            time.sleep(0.05)
        (out / "deleted").write_text(" ".join(f"{b}.{o}" for b, o in deleted))
        assert not bufmgr.pinned_buffers()
        _detach(procs)

    def reader() -> None:
        procs = _attach(seg, settings)
        r = make_index(create=False)
        rounds = 0
        basetids = {(0xFFFF, i + 1) for i in range(len(base))}
        while not (out / "stop").exists() or rounds < 3:
            fwd = rounds % 2 == 0
            lo = (rounds * 7919) % 30_000
            keys = [(1, ">=", 0)] if rounds % 3 == 0 else [(1, ">=", lo), (1, "<", lo + 9000)]
            tids = list(nbtree.bt_begin_scan(r, keys, backward=not fwd))
            got = [x for x in tids if x[0] == 0xFFFF]
            want = basetids if rounds % 3 == 0 else \
                {(0xFFFF, i + 1) for i, k in enumerate(base) if lo <= k < lo + 9000}
            assert set(got) == want, f"round {rounds}: lost base entries"
            assert len(set(tids)) == len(tids), "an entry returned twice"
            order = [x[1] for x in got]
            assert order == (sorted(order) if fwd else sorted(order, reverse=True))
            for k in (base[rounds % len(base)], base[(rounds * 31) % len(base)]):
                hit = [x for x in nbtree.bt_begin_scan(r, [(1, "=", k)]) if x[0] == 0xFFFF]
                assert hit == [(0xFFFF, base.index(k) + 1)]
            rounds += 1
        (out / "rounds").write_text(str(rounds))
        assert not bufmgr.pinned_buffers()
        _detach(procs)

    alarm = int(seconds) + 120
    pids = [fork_worker(inserter, w, alarm=alarm) for w in range(nworkers)]
    others = [fork_worker(reader, alarm=alarm), fork_worker(vacuum, alarm=alarm)]
    wait_workers(pids, timeout=seconds + 120)
    (out / "stop").write_text("")
    wait_workers(others, timeout=60)
    assert int((out / "rounds").read_text()) >= 3
    check(rel)
    tids = scan(rel, [])
    expected = {(0xFFFF, i + 1) for i in range(len(base))}
    for w in range(nworkers):
        n = int((out / f"n{w}").read_text())
        expected |= {(w * 10_000 + j // 100, j % 100 + 1) for j in range(n)}
    deleted = {tuple(map(int, x.split("."))) for x in (out / "deleted").read_text().split()}
    assert deleted <= expected
    assert len(tids) == len(set(tids))
    assert set(tids) == expected - deleted
    # A last bulk delete finds whatever the concurrent ones could not yet see.
    nbtree.bt_bulk_delete(rel, lambda tid: tid[0] < 10_000 and tid[1] % 2 == 0)
    check(rel)


def test_concurrent_inserters_reader_and_vacuum(env, tmp_path):
    _run_concurrent(env, tmp_path, seconds=4.0, nworkers=3, shared_buffers=32)


@pytest.mark.soak
def test_concurrent_inserters_reader_and_vacuum_soak(env, tmp_path, request):
    markexpr = request.config.getoption("markexpr") or ""
    if "TUSK_SOAK_SECONDS" not in os.environ and ("soak" not in markexpr
                                                  or "not soak" in markexpr):
        pytest.skip("soak test: set TUSK_SOAK_SECONDS or select -m soak")
    _run_concurrent(env, tmp_path, seconds=float(os.environ.get("TUSK_SOAK_SECONDS", "300")),
                    nworkers=5, shared_buffers=16)


def test_concurrent_unique_inserts_of_the_same_keys(env, tmp_path):
    """Several processes insert overlapping keys into a unique index: exactly one
    entry per key survives and everyone else gets 23505 (every entry is live)."""
    settings, seg = env.make(shared_buffers=48, wal_buffers=64)
    rel = make_index(unique=True, name="u_idx")
    nbtree.bt_build_empty(rel)
    out = tmp_path / "out"
    out.mkdir()
    nworkers, nkeys = 3, 1500

    def worker(w: int) -> None:
        procs = _attach(seg, settings)
        nbtinsert.heap_check = lambda heap_rel, tid: (True, 0)
        r = make_index(create=False, unique=True, name="u_idx")
        ok = []
        rng = random.Random(w)
        order = list(range(nkeys))
        rng.shuffle(order)
        for k in order:
            try:
                nbtree.bt_insert(r, [k], (w + 1, k + 1), FakeHeap, True)
                ok.append(k)
            except PgError as e:
                assert e.sqlstate == "23505"
        (out / f"w{w}").write_text(" ".join(map(str, ok)))
        _detach(procs)

    wait_workers([fork_worker(worker, w, alarm=120) for w in range(nworkers)], timeout=120)
    won = []
    for w in range(nworkers):
        won += [int(x) for x in (out / f"w{w}").read_text().split()]
    assert sorted(won) == list(range(nkeys))
    check(rel)
    assert len(scan(rel, [])) == nkeys


# -- incomplete splits --------------------------------------------------------------------------

def test_incomplete_split_is_finished_by_the_next_inserter(env, monkeypatch):
    env.make(wal_buffers=64)
    rel = make_index()
    nbtree.bt_build_empty(rel)
    for i in range(3000):
        nbtree.bt_insert(rel, [i * 2], tid_of(i), FakeHeap, False)
    check(rel)

    # Crash between the split and the parent insertion: the split is left incomplete.
    class Crash(Exception):
        pass

    def crash(*a, **k):
        raise Crash

    monkeypatch.setattr(nbtinsert, "_bt_insert_parent", crash)
    with pytest.raises(Crash):
        for i in range(3000, 6000):
            nbtree.bt_insert(rel, [(i - 3000) * 2 + 1], tid_of(i), FakeHeap, False)
    bufmgr.at_error_cleanup()
    from shmem import lwlock

    lwlock.lwlock_release_all()
    monkeypatch.undo()
    problems = nbtverify.bt_verify(rel, allow_incomplete_splits=False)
    assert any("incomplete split" in p for p in problems)
    assert nbtverify.bt_verify(rel) == []
    # Readers are fine; the next inserter into that page finishes the split.
    inserted = len(scan(rel, []))
    assert inserted > 3000
    rel.target_block = 0xFFFFFFFF
    for i in range(6000, 9000):
        nbtree.bt_insert(rel, [(i - 6000) * 2 + 1], tid_of(i), FakeHeap, False)
    for blk in range(1, smgr.smgr_nblocks(rel.smgr, MAIN_FORKNUM)):
        flags = OPAQUE.unpack_from(read_page(rel, blk), BT_SPECIAL)[3]
        assert not flags & BTP_INCOMPLETE_SPLIT, blk
    check(rel)
    assert len(scan(rel, [])) == inserted + 3000


