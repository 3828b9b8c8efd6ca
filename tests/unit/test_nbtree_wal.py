"""B-tree WAL: replaying the records of inserts, splits, new roots, bulk deletes and
builds onto empty files rebuilds every page byte for byte (masked as
btree_mask masks), with and without full-page images; the records decode; and
PostgreSQL 15's pg_waldump reads them exactly as tusk_ctl waldump prints them."""

from __future__ import annotations

import argparse
import os
import random
import subprocess

import pytest

from access import nbtree, xlog
from access import xlog_internal as xi
from access.nbtree import nbtverify, nbtxlog
from access.nbtree.nbtutils import get_cache
from access.xlogreader import XLogReader
from access.xlogrecovery import xlog_redo
from catalog import pg_type as t
from postmaster.waldump_cmd import add_waldump_arguments, run_waldump
from storage import bufmgr, smgr
from storage.relfilenode import MAIN_FORKNUM
from tests.unit.nbtree_harness import SYSID, FakeHeap, make_index

PG_WALDUMP = "/usr/lib/postgresql/15/bin/pg_waldump"


def tid_of(i: int) -> tuple[int, int]:
    return i // 100, i % 100 + 1


def read_page(rel, blkno: int) -> bytes:
    buf = bufmgr.read_buffer(rel.smgr, blkno)
    bufmgr.lock_buffer(buf, bufmgr.BUFFER_LOCK_SHARE)
    data = bytes(bufmgr.buffer_get_page(buf))
    bufmgr.unlock_release_buffer(buf)
    return data


def check(rel) -> None:
    problems = nbtverify.bt_verify(rel, allow_incomplete_splits=False)
    assert problems == [], problems[:20]


# -- WAL: redo and pg_waldump ---------------------------------------------------------------------

def _replay(env, rel_nodes) -> int:
    """Replay every btree and full-page-image record from the start of WAL."""
    reader = XLogReader(str(env.datadir), xlog.geometry(), system_identifier=SYSID)
    n = 0
    try:
        rec = reader.read_record(env.start_lsn)
        while rec is not None:
            if rec.rmid == xi.RM_BTREE_ID:
                nbtxlog.btree_redo(rec)
                n += 1
            elif rec.rmid == xi.RM_XLOG_ID and rec.rmgr_info == xi.XLOG_FPI:
                if any(b.rnode in rel_nodes for b in rec.blocks):
                    xlog_redo(rec)
                    n += 1
            rec = reader.read_record()
    finally:
        reader.close()
    return n


def _pages(rel) -> list[bytes]:
    return [read_page(rel, b) for b in range(smgr.smgr_nblocks(rel.smgr, MAIN_FORKNUM))]


@pytest.mark.parametrize("fpw", [True, False], ids=["full_page_writes", "no_fpw"])
def test_redo_rebuilds_identical_pages(env, fpw):
    env.make(shared_buffers=256, wal_buffers=64, full_page_writes=fpw)
    a = make_index(16384)
    b = make_index(16385, (("x", t.INT8OID), ("s", t.TEXTOID)), name="t_xs_idx")
    nbtree.bt_build_empty(a)
    rng = random.Random(11)
    for i in range(8000):
        nbtree.bt_insert(a, [rng.randrange(3000)], tid_of(i), FakeHeap, False)
    # A checkpoint's redo pointer: the next change of each page carries its image.
    xlog.set_redo_rec_ptr(xlog.get_xlog_insert_rec_ptr(), fpw)
    for i in range(8000, 14000):
        nbtree.bt_insert(a, [rng.randrange(3000)], tid_of(i), FakeHeap, False)
    nbtree.bt_bulk_delete(a, lambda tid: tid[1] % 4 == 0)
    rows = [(tid_of(i), [rng.randrange(100), f"s{rng.randrange(10**6)}"], True)
            for i in range(5000)]
    nbtree.bt_build(None, b, rows)
    for i in range(5000, 9000):
        nbtree.bt_insert(b, [rng.randrange(100), "y" * rng.randrange(60)], tid_of(i), FakeHeap,
                         False)
    nbtree.bt_bulk_delete(b, lambda tid: tid[0] % 5 == 1)
    check(a)
    check(b)
    xlog.xlog_flush(xlog.get_xlog_insert_rec_ptr())
    before = {rel.rnode: _pages(rel) for rel in (a, b)}
    # Forget the index files entirely, then rebuild them from WAL alone.
    for rel in (a, b):
        smgr.smgr_truncate(rel.smgr, MAIN_FORKNUM, 0)
    nrec = _replay(env, {a.rnode, b.rnode})
    assert nrec > 1000
    for rel in (a, b):
        after = _pages(rel)
        assert len(after) == len(before[rel.rnode])
        for blk, (p1, p2) in enumerate(zip(before[rel.rnode], after, strict=True)):
            assert nbtxlog.btree_mask(p1) == nbtxlog.btree_mask(p2), f"{rel.relname} block {blk}"
        get_cache(rel).meta = None
        rel.target_block = 0xFFFFFFFF
        check(rel)
    # Replaying again over the result changes nothing (LSNs make records no-ops).
    _replay(env, {a.rnode, b.rnode})
    for rel in (a, b):
        assert [nbtxlog.btree_mask(p) for p in _pages(rel)] == \
            [nbtxlog.btree_mask(p) for p in before[rel.rnode]]


def test_newroot_and_split_records_decode(env):
    env.make(wal_buffers=64)
    rel = make_index()
    nbtree.bt_build_empty(rel)
    start = xlog.get_xlog_insert_rec_ptr()
    for i in range(1000):
        nbtree.bt_insert(rel, [i], tid_of(i), FakeHeap, False)
    xlog.xlog_flush(xlog.get_xlog_insert_rec_ptr())
    reader = XLogReader(str(env.datadir), xlog.geometry(), system_identifier=SYSID)
    infos = []
    try:
        rec = reader.read_record(xlog.get_xlog_insert_rec_ptr() and start)
        while rec is not None:
            if rec.rmid == xi.RM_BTREE_ID:
                infos.append(rec.rmgr_info)
            rec = reader.read_record()
    finally:
        reader.close()
    # First insert creates the root (NEWROOT, level 0); the first split of the root
    # leaf makes a level-1 root; ascending keys split right.
    assert infos[0] == 0xA0
    assert infos.count(0xA0) == 2
    assert 0x40 in infos and 0x10 in infos and infos.count(0x00) > 900


@pytest.mark.skipif(not os.access(PG_WALDUMP, os.X_OK),
                    reason="pg_waldump (PostgreSQL 15) is not installed")
def test_pg_waldump_reads_btree_records(env, capsys):
    env.make(wal_buffers=64)
    rel = make_index()
    nbtree.bt_build_empty(rel)
    rng = random.Random(5)
    for i in range(3000):
        nbtree.bt_insert(rel, [rng.randrange(1000)], tid_of(i), FakeHeap, False)
    nbtree.bt_bulk_delete(rel, lambda tid: tid[1] == 3)
    b = make_index(16386, name="built")
    nbtree.bt_build(None, b, [(tid_of(i), [i], True) for i in range(2000)])
    end = xlog.get_xlog_insert_rec_ptr()
    xlog.xlog_flush(end)
    xlog.close_log_file()
    waldir = env.datadir / "pg_wal"
    args = ["-p", str(waldir), "-s", xi.format_lsn(env.start_lsn), "-e", xi.format_lsn(end)]
    r = subprocess.run([PG_WALDUMP, *args], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "TZ": "UTC"})
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for what in ("INSERT_LEAF", "INSERT_UPPER", "SPLIT_L", "SPLIT_R", "NEWROOT", "VACUUM",
                 "FPI"):
        assert what in out, what
    assert "desc: NEWROOT lev 1" in out
    parser = argparse.ArgumentParser(prog="tusk_ctl waldump")
    parser.add_argument("-D", "--pgdata", dest="datadir")
    add_waldump_arguments(parser)
    capsys.readouterr()
    rc = run_waldump(parser.parse_args(args), None)
    mine = capsys.readouterr().out
    assert rc == 0
    assert mine == out
    stats = subprocess.run([PG_WALDUMP, *args, "--stats=record"], capture_output=True,
                           text=True, timeout=120)
    assert "Btree/INSERT_LEAF" in stats.stdout




def test_crash_during_inserts_then_recovery(env, tmp_path):
    """A process inserting (splitting pages, evicting them through a tiny buffer
    pool) is SIGKILLed; shared memory is rebuilt; replaying WAL onto whatever
    reached disk gives a valid tree holding every insert whose record reached
    disk, and nothing that was never inserted; then it takes more inserts."""
    import signal
    import time

    from access import xlogrecovery
    from procs.postinit import init_process, proc_kill
    from shmem.proc import BackendType
    from storage import md
    from tests.unit.shmem_harness import Harness, fork_worker

    settings, seg = env.make(shared_buffers=16, wal_buffers=8)
    rel = make_index()
    nbtree.bt_build_empty(rel)
    xlog.xlog_flush(xlog.get_xlog_insert_rec_ptr())
    log = tmp_path / "done"

    def attempts():
        rng = random.Random(77)
        for i in range(200_000):
            yield rng.randrange(50_000), tid_of(i)

    def worker() -> None:
        procs = init_process(seg, settings, BackendType.B_BACKEND, is_superuser=True)
        r = make_index(create=False)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        for k, tid in attempts():
            nbtree.bt_insert(r, [k], tid, FakeHeap, False)
            # What this insert's record needs to be durable: WAL up to here.
            os.write(fd, f"{k} {tid[0]} {tid[1]} {xlog.get_xlog_insert_rec_ptr()}\n".encode())
        proc_kill(procs)

    pid = fork_worker(worker, alarm=60)
    time.sleep(2.5)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)

    # The crash: shared memory (buffers, WAL buffers, locks the worker held) is gone.
    env.harness.close()
    harness = Harness(tmp_path)
    env.harness = harness
    harness.make(shared_buffers=64, wal_buffers=64, wal_segment_size=1024 * 1024,
                 fsync=False)
    md.in_recovery = True
    try:
        reader = XLogReader(str(env.datadir), xlog.geometry(), system_identifier=SYSID)
        last = None
        try:
            rec = reader.read_record(env.start_lsn)
            while rec is not None:
                if rec.rmid == xi.RM_BTREE_ID:
                    nbtxlog.btree_redo(rec)
                elif rec.rmid == xi.RM_XLOG_ID and rec.rmgr_info == xi.XLOG_FPI:
                    xlog_redo(rec)
                last = rec
                rec = reader.read_record()
        finally:
            reader.close()
    finally:
        md.in_recovery = False
    assert last is not None
    end_of_log = last.end_lsn
    rel = make_index(create=False)
    assert nbtree.bt_verify(rel) == []       # incomplete splits are allowed here
    present = set()
    for tid in scan_all(rel):
        present.add(tid)
    attempted = dict(((tid, k) for k, tid in attempts()))
    durable = set()
    for line in log.read_text().splitlines():
        k, b, o, lsn = map(int, line.split())
        if lsn <= end_of_log:
            durable.add((b, o))
    assert len(durable) > 1000
    assert durable <= present
    assert present <= set(attempted)
    # Keys and TIDs agree with what was inserted.
    for k in (attempted[tid] for tid in list(present)[:200]):
        assert any(t in present for t in scan(rel, [(1, "=", k)]))

    # Recovery is over: WAL continues after the last valid record; more inserts
    # (finishing any incomplete split on the way) leave a sound tree.
    geom = xlog.geometry()
    xlog.init_insert_position(end_of_log, last.lsn,
                              xlogrecovery._read_last_page(str(env.datadir), geom, end_of_log))
    xlog.set_recovery_done(SYSID)
    rng = random.Random(5)
    for i in range(3000):
        nbtree.bt_insert(rel, [rng.randrange(50_000)], (900_000 + i // 100, i % 100 + 1),
                         FakeHeap, False)
    assert nbtree.bt_verify(rel, allow_incomplete_splits=True) == []
    assert len(scan_all(rel)) == len(present) + 3000


def scan(rel, keys, backward: bool = False) -> list[tuple[int, int]]:
    return list(nbtree.bt_begin_scan(rel, keys, backward))


def scan_all(rel) -> list[tuple[int, int]]:
    return scan(rel, [])
