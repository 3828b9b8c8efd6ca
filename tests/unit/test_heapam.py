"""The heap access method with real shared memory and forked processes
(access/heapam.py, heapam_visibility.py, hio.py, pruneheap.py, vacuumlazy.py,
storage/freespace.py, utils/snapmgr.py, utils/combocid.py): round trips of
many types, MVCC visibility across transactions and processes, concurrent
updaters, HOT updates and pruning, VACUUM and the free space map."""

from __future__ import annotations

import datetime
import os
import struct
import time
from pathlib import Path

import pytest

from access import heapam, procarray, xact
from access import heapam_visibility as hv
from access.heaptuple import (
    HEAP_HOT_UPDATED,
    HEAP_ONLY_TUPLE,
    HEAP_XMAX_COMMITTED,
    HEAP_XMAX_INVALID,
    HEAP_XMIN_COMMITTED,
    HEAP_XMIN_INVALID,
)
from access.vacuumlazy import lazy_vacuum_rel
from catalog import pg_type as t
from storage import bufpage as bp
from storage import freespace
from tests.unit.heap_harness import HeapCluster, abort, begin, commit
from tests.unit.shmem_harness import fork_worker, wait_workers
from utils import combocid, snapmgr
from utils.elog import PgError


@pytest.fixture
def cluster(tmp_path: Path):
    made: list[HeapCluster] = []

    def make(**values: object) -> HeapCluster:
        c = HeapCluster(tmp_path, **values)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def snap():
    return snapmgr.get_transaction_snapshot()


def rows_of(rel, snapshot=None) -> list[list]:
    return [v for _tid, v in heapam.heap_scan(rel, snapshot or snap())]


def items(rel, blkno: int = 0) -> list[dict]:
    return heapam.heap_page_items(rel, blkno)


# -- round trips --------------------------------------------------------------------------------

ALL_TYPES = [("i2", t.INT2OID), ("i4", t.INT4OID), ("i8", t.INT8OID), ("f8", t.FLOAT8OID),
             ("f4", t.FLOAT4OID), ("b", t.BOOLOID), ("txt", t.TEXTOID),
             ("vc", t.VARCHAROID, 68), ("bp", t.BPCHAROID, 14), ("ts", t.TIMESTAMPOID),
             ("tz", t.TIMESTAMPTZOID), ("nm", t.NAMEOID), ("o", t.OIDOID), ("by", t.BYTEAOID)]


def _row(i: int) -> list:
    return [i % 30000, i, i * 10_000_000_000, i / 7, 0.5, bool(i % 2), "x" * (i % 300),
            f"v{i}", f"{i:<10}", i * 1_000_000, -i, f"name{i}", i + 1, bytes([i % 256]) * 3]


def test_insert_fetch_scan_round_trip_of_many_types(cluster):
    cl = cluster()
    rel = cl.table("alltypes", ALL_TYPES)
    begin()
    tids = []
    for i in range(400):
        row = _row(i)
        if i % 7 == 0:
            row[i % len(row)] = None
        tids.append(heapam.heap_insert(rel, row))
    commit()
    s = snap()
    for i, tid in enumerate(tids):
        expected = _row(i)
        if i % 7 == 0:
            expected[i % len(expected)] = None
        assert heapam.heap_fetch(rel, tid, s) == expected
    scanned = [tid for tid, _v in heapam.heap_scan(rel, s)]
    assert scanned == sorted(tids)  # physical order
    assert heapam.heap_nblocks(rel) > 3
    assert heapam.heap_fetch(rel, (0, 999), s) is None
    xact.commit_transaction()


def test_row_too_big(cluster):
    cl = cluster()
    rel = cl.table("big", [("b", t.BYTEAOID)])
    begin()
    heapam.heap_insert(rel, [b"x" * 8000])
    with pytest.raises(PgError) as e:
        heapam.heap_insert(rel, [b"x" * 9000])
    assert e.value.sqlstate == "54000"
    assert e.value.message == "row is too big: size 9032, maximum size 8160"
    abort()


def test_fillfactor_leaves_room(cluster):
    cl = cluster()
    full = cl.table("full", [("v", t.TEXTOID)])
    half = cl.table("half", [("v", t.TEXTOID)], fillfactor=50)
    begin()
    for _ in range(200):
        heapam.heap_insert(full, ["y" * 200])
        heapam.heap_insert(half, ["y" * 200])
    commit()
    assert heapam.heap_nblocks(full) == 6
    assert heapam.heap_nblocks(half) == 12


def test_multi_insert(cluster):
    cl = cluster()
    rel = cl.table("copy", [("id", t.INT4OID), ("v", t.TEXTOID)])
    begin()
    tids = heapam.heap_multi_insert(rel, [[i, f"r{i}" * 5] for i in range(1000)])
    assert len(set(tids)) == 1000
    commit()
    assert rows_of(rel) == [[i, f"r{i}" * 5] for i in range(1000)]
    xact.commit_transaction()


# -- visibility -----------------------------------------------------------------------------------

def test_own_changes_visible_from_the_next_command(cluster):
    cl = cluster()
    rel = cl.table("own", [("id", t.INT4OID)])
    begin()
    cid = xact.get_current_command_id(True)
    assert cid == 0
    tid = heapam.heap_insert(rel, [1], cid)
    assert heapam.heap_fetch(rel, tid, snap()) is None  # same command: not yet
    xact.command_counter_increment()
    assert heapam.heap_fetch(rel, tid, snap()) == [1]
    # Delete in command 1: a combo cid keeps cmin 0 and cmax 1.
    before_delete = snap()
    cid = xact.get_current_command_id(True)
    assert heapam.heap_delete(rel, tid, cid).status == heapam.TM_Ok
    assert combocid.count() == 1
    assert heapam.heap_fetch(rel, tid, before_delete) == [1]  # deleted after it started
    xact.command_counter_increment()
    assert heapam.heap_fetch(rel, tid, snap()) is None
    # Deleting it again from a later command: TM_Invisible is an error.
    with pytest.raises(PgError, match="attempted to delete invisible tuple"):
        heapam.heap_delete(rel, tid)
    commit()
    assert combocid.count() == 0  # forgotten at transaction end
    assert xact.get_current_command_id() == 0
    assert rows_of(rel) == []
    xact.commit_transaction()


def test_self_modified_and_update_in_same_transaction(cluster):
    cl = cluster()
    rel = cl.table("selfmod", [("id", t.INT4OID), ("v", t.INT4OID)])
    begin()
    tid = heapam.heap_insert(rel, [1, 0])
    xact.command_counter_increment()
    res = heapam.heap_update(rel, tid, [1, 1])
    assert res.status == heapam.TM_Ok and not res.update_indexes
    # A second update of the old version from the same command: TM_SelfModified.
    res2 = heapam.heap_update(rel, tid, [1, 2], xact.get_current_command_id())
    assert res2.status == heapam.TM_SelfModified and res2.ctid == res.new_tid
    xact.command_counter_increment()
    res3 = heapam.heap_update(rel, res.new_tid, [1, 3])
    assert res3.status == heapam.TM_Ok
    xact.command_counter_increment()
    assert rows_of(rel) == [[1, 3]]
    commit()
    assert rows_of(rel) == [[1, 3]]
    xact.commit_transaction()


def test_aborted_insert_is_invisible_and_hinted(cluster):
    cl = cluster()
    rel = cl.table("ab", [("id", t.INT4OID)])
    begin()
    tid = heapam.heap_insert(rel, [7])
    abort()
    assert heapam.heap_fetch(rel, tid, snap()) is None
    assert items(rel)[0]["t_infomask"] & HEAP_XMIN_INVALID
    begin()
    tid2 = heapam.heap_insert(rel, [8])
    commit()
    assert heapam.heap_fetch(rel, tid2, snap()) == [8]
    info = items(rel)[1]["t_infomask"]
    assert info & HEAP_XMIN_COMMITTED and info & HEAP_XMAX_INVALID
    xact.commit_transaction()


def test_visibility_across_processes(cluster):
    """Another process's insert is invisible until it commits, and stays
    invisible to a snapshot taken before the commit (REPEATABLE READ)."""
    cl = cluster()
    rel = cl.table("xproc", [("id", t.INT4OID)])
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()

    def worker() -> None:
        procs = cl.attach_child()
        begin()
        heapam.heap_insert(rel, [42])
        os.write(ready_w, b"i")
        assert os.read(go_r, 1) == b"c"
        commit()
        os.write(ready_w, b"d")
        cl.end_child(procs)

    pid = fork_worker(worker)
    assert os.read(ready_r, 1) == b"i"
    snapmgr.set_transaction_isolation(snapmgr.XACT_REPEATABLE_READ)
    rr = snap()
    assert rows_of(rel, rr) == []
    assert rows_of(rel, snapmgr.get_latest_snapshot()) == []
    dirty = snapmgr.new_dirty_snapshot()
    assert heapam.heap_fetch(rel, (0, 1), dirty) == [42]
    assert dirty.xmin != 0  # the in-progress inserter, to wait for
    assert rows_of(rel, snapmgr.SnapshotSelf) == []
    assert rows_of(rel, snapmgr.SnapshotAny) == [[42]]
    os.write(go_w, b"c")
    assert os.read(ready_r, 1) == b"d"
    wait_workers([pid])
    assert snap() is rr or snap().xmin == rr.xmin  # the transaction snapshot
    assert rows_of(rel, snap()) == []  # still invisible to REPEATABLE READ
    assert rows_of(rel, snapmgr.get_latest_snapshot()) == [[42]]
    xact.commit_transaction()
    assert snapmgr.transaction_isolation() == snapmgr.XACT_READ_COMMITTED
    assert rows_of(rel) == [[42]]  # a new READ COMMITTED transaction sees it
    xact.commit_transaction()
    for f in (go_r, go_w, ready_r, ready_w):
        os.close(f)


def test_snapshot_xmin_advertised_and_cleared(cluster):
    cl = cluster()
    cl.table("x", [("id", t.INT4OID)])
    begin()
    s = snap()
    assert procarray.my_xmin() == s.xmin
    snapmgr.push_active_snapshot(s)
    snapmgr.pop_active_snapshot()  # READ COMMITTED: nothing left to protect
    assert procarray.my_xmin() == 0
    snapmgr.push_active_snapshot(snap())
    assert procarray.my_xmin() != 0
    commit()
    assert procarray.my_xmin() == 0


# -- concurrent updaters -------------------------------------------------------------------------

def _concurrent_update(cl, rel, tid, worker_ends_with: str):
    """A worker updates ``tid`` and holds its transaction open until told to end
    it; meanwhile this process tries to update the same row."""
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()

    def worker() -> None:
        procs = cl.attach_child()
        begin()
        res = heapam.heap_update(rel, tid, [1, 100])
        assert res.status == heapam.TM_Ok
        os.write(ready_w, struct.pack("<HH", *res.new_tid))
        assert os.read(go_r, 1) == b"g"
        time.sleep(0.3)
        if worker_ends_with == "commit":
            commit()
        else:
            abort()
        cl.end_child(procs)

    pid = fork_worker(worker)
    new_tid = struct.unpack("<HH", os.read(ready_r, 4))
    begin()
    os.write(go_w, b"g")
    t0 = time.monotonic()
    res = heapam.heap_update(rel, tid, [1, 200])
    waited = time.monotonic() - t0
    wait_workers([pid])
    for f in (go_r, go_w, ready_r, ready_w):
        os.close(f)
    return res, new_tid, waited


def test_concurrent_updater_waits_then_gets_tm_updated(cluster):
    cl = cluster()
    rel = cl.table("conc", [("id", t.INT4OID), ("v", t.INT4OID)])
    begin()
    tid = heapam.heap_insert(rel, [1, 0])
    commit()
    res, new_tid, waited = _concurrent_update(cl, rel, tid, "commit")
    assert waited >= 0.2  # it waited for the other transaction to end
    assert res.status == heapam.TM_Updated
    assert res.ctid == tuple(new_tid) and res.xmax != 0
    # EvalPlanQual's next step: lock the newest version, re-check, update it.
    lk = heapam.heap_lock_tuple(rel, tid, mode=heapam.LockTupleNoKeyExclusive,
                                find_last_version=True)
    assert lk.status == heapam.TM_Ok and lk.new_tid == tuple(new_tid)
    assert lk.values == [1, 100]
    res2 = heapam.heap_update(rel, lk.new_tid, [1, lk.values[1] + 1])
    assert res2.status == heapam.TM_Ok
    commit()
    assert rows_of(rel) == [[1, 101]]
    xact.commit_transaction()


def test_concurrent_updater_proceeds_when_the_other_aborts(cluster):
    cl = cluster()
    rel = cl.table("conc2", [("id", t.INT4OID), ("v", t.INT4OID)])
    begin()
    tid = heapam.heap_insert(rel, [1, 0])
    commit()
    res, _new_tid, waited = _concurrent_update(cl, rel, tid, "abort")
    assert waited >= 0.2
    assert res.status == heapam.TM_Ok
    commit()
    assert rows_of(rel) == [[1, 200]]
    xact.commit_transaction()


def test_no_wait_reports_being_modified(cluster):
    cl = cluster()
    rel = cl.table("nowait", [("id", t.INT4OID), ("v", t.INT4OID)])
    begin()
    tid = heapam.heap_insert(rel, [1, 0])
    commit()
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()

    def worker() -> None:
        procs = cl.attach_child()
        begin()
        assert heapam.heap_delete(rel, tid).status == heapam.TM_Ok
        os.write(ready_w, b"d")
        os.read(go_r, 1)
        abort()
        cl.end_child(procs)

    pid = fork_worker(worker)
    os.read(ready_r, 1)
    begin()
    res = heapam.heap_update(rel, tid, [1, 5], wait=False)
    assert res.status == heapam.TM_BeingModified
    lk = heapam.heap_lock_tuple(rel, tid, wait_policy=heapam.LockWaitSkip)
    assert lk.status == heapam.TM_WouldBlock
    with pytest.raises(PgError) as e:
        heapam.heap_lock_tuple(rel, tid, wait_policy=heapam.LockWaitError)
    assert e.value.sqlstate == "55P03"
    os.write(go_w, b"g")
    wait_workers([pid])
    abort()
    for f in (go_r, go_w, ready_r, ready_w):
        os.close(f)


def test_two_processes_increment_without_lost_updates(cluster):
    """Read-modify-write in a loop, retrying on TM_Updated: no increment is lost."""
    cl = cluster()
    rel = cl.table("counter", [("id", t.INT4OID), ("n", t.INT4OID)],
                   indexed_attnums=frozenset({1}))
    begin()
    root = heapam.heap_insert(rel, [1, 0])
    commit()
    nworkers, per_worker = 3, 60

    def worker() -> None:
        procs = cl.attach_child()
        for _ in range(per_worker):
            begin()
            tid, vals = heapam.heap_hot_search(rel, root, snap())
            while True:
                res = heapam.heap_update(rel, tid, [1, vals[1] + 1])
                if res.status == heapam.TM_Ok:
                    break
                assert res.status == heapam.TM_Updated
                lk = heapam.heap_lock_tuple(rel, tid, find_last_version=True)
                assert lk.status == heapam.TM_Ok
                tid, vals = lk.new_tid, lk.values
            commit()
        cl.end_child(procs)

    wait_workers([fork_worker(worker) for _ in range(nworkers)], timeout=120)
    assert rows_of(rel) == [[1, nworkers * per_worker]]
    assert heapam.heap_nblocks(rel) == 1
    xact.commit_transaction()


# -- HOT and pruning ------------------------------------------------------------------------------

def test_hot_updates_keep_a_row_on_one_page(cluster):
    """pgbench_branches: one row updated 5,000 times, each in its own
    transaction, found through its index entry's root tid each time."""
    cl = cluster()
    rel = cl.table("branches", [("bid", t.INT4OID), ("bbalance", t.INT4OID),
                                ("filler", t.BPCHAROID, 92)], indexed_attnums=frozenset({1}))
    begin()
    root = heapam.heap_insert(rel, [1, 0, None])
    commit()
    for _ in range(5000):
        begin()
        tid, vals = heapam.heap_hot_search(rel, root, snap())
        res = heapam.heap_update(rel, tid, [1, vals[1] + 1, None])
        assert res.status == heapam.TM_Ok and not res.update_indexes
        commit()
    assert heapam.heap_nblocks(rel) == 1
    found = heapam.heap_hot_search(rel, root, snap())
    assert found is not None and found[1] == [1, 5000, None]
    lps = items(rel)
    assert lps[0]["lp_flags"] == bp.LP_REDIRECT  # the root, redirected by pruning
    assert len(lps) < 100
    live = [lp for lp in lps if lp["lp_flags"] == bp.LP_NORMAL]
    assert all(lp["t_infomask2"] & HEAP_ONLY_TUPLE for lp in live)
    xact.commit_transaction()


def test_update_of_an_indexed_column_is_not_hot(cluster):
    cl = cluster()
    rel = cl.table("idx", [("id", t.INT4OID), ("v", t.INT4OID)], indexed_attnums=frozenset({1}))
    begin()
    tid = heapam.heap_insert(rel, [1, 0])
    commit()
    begin()
    res = heapam.heap_update(rel, tid, [2, 0])
    assert res.status == heapam.TM_Ok and res.update_indexes
    commit()
    old, new = items(rel)
    assert not old["t_infomask2"] & HEAP_HOT_UPDATED
    assert not new["t_infomask2"] & HEAP_ONLY_TUPLE
    assert old["t_ctid"] == res.new_tid
    begin()
    res = heapam.heap_update(rel, res.new_tid, [2, 1])  # same key: HOT
    assert not res.update_indexes
    commit()
    assert items(rel)[1]["t_infomask2"] & HEAP_HOT_UPDATED
    xact.commit_transaction()


def test_update_to_another_page(cluster):
    cl = cluster()
    rel = cl.table("wide", [("id", t.INT4OID), ("v", t.TEXTOID)])
    begin()
    tids = [heapam.heap_insert(rel, [i, "a" * 1000]) for i in range(7)]
    commit()
    assert heapam.heap_nblocks(rel) == 1
    begin()
    res = heapam.heap_update(rel, tids[0], [0, "b" * 2000])
    assert res.status == heapam.TM_Ok and res.update_indexes
    assert res.new_tid[0] == 1
    commit()
    old = items(rel)[0]
    assert old["t_ctid"] == res.new_tid and old["t_infomask"] & HEAP_XMAX_COMMITTED == 0
    s = snap()
    assert heapam.heap_fetch(rel, tids[0], s) is None
    assert heapam.heap_fetch(rel, res.new_tid, s) == [0, "b" * 2000]
    assert heapam.heap_get_latest_tid(rel, tids[0], s) == res.new_tid
    xact.commit_transaction()


def test_old_snapshot_holds_back_pruning(cluster):
    """A REPEATABLE READ reader in another process keeps the versions it sees
    from being pruned; once it ends, pruning removes them."""
    cl = cluster()
    rel = cl.table("held", [("id", t.INT4OID), ("v", t.INT4OID), ("pad", t.TEXTOID)],
                   indexed_attnums=frozenset({1}))
    begin()
    root = heapam.heap_insert(rel, [1, 0, "p" * 200])
    commit()
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()

    def reader() -> None:
        procs = cl.attach_child()
        snapmgr.set_transaction_isolation(snapmgr.XACT_REPEATABLE_READ)
        s = snap()
        assert heapam.heap_hot_search(rel, root, s)[1][1] == 0
        os.write(ready_w, b"r")
        os.read(go_r, 1)
        assert heapam.heap_hot_search(rel, root, snap())[1][1] == 0  # still there
        xact.commit_transaction()
        cl.end_child(procs)

    pid = fork_worker(reader)
    os.read(ready_r, 1)
    index_tid = root  # what the index would point to
    for _ in range(60):
        begin()
        tid, vals = heapam.heap_hot_search(rel, index_tid, snap())
        res = heapam.heap_update(rel, tid, [1, vals[1] + 1, "p" * 200])
        assert res.status == heapam.TM_Ok
        if res.update_indexes:  # the page was full: a new index entry
            index_tid = res.new_tid
        commit()
    assert heapam.heap_nblocks(rel) > 1  # nothing could be pruned
    os.write(go_w, b"g")
    wait_workers([pid])
    res = lazy_vacuum_rel(rel, [], index_bulk_delete=lambda r, cb: 0)
    assert res.tuples_deleted >= 59
    assert res.live_tuples == 1
    for f in (go_r, go_w, ready_r, ready_w):
        os.close(f)
    xact.commit_transaction()


# -- VACUUM and the free space map -----------------------------------------------------------------

class FakeIndex:
    """An index as VACUUM sees it: a set of heap tids and a bulk delete."""

    def __init__(self, name: str, tids) -> None:
        self.relname = name
        self.tids = set(tids)

    @staticmethod
    def bulk_delete(index, callback) -> int:
        dead = {tid for tid in index.tids if callback(tid)}
        index.tids -= dead
        return len(dead)


def test_vacuum_removes_dead_tuples_and_space_is_reused(cluster):
    cl = cluster()
    rel = cl.table("vac", [("id", t.INT4OID), ("v", t.TEXTOID)], indexed_attnums=frozenset({1}))
    begin()
    tids = heapam.heap_multi_insert(rel, [[i, "z" * 100] for i in range(2000)])
    commit()
    index = FakeIndex("vac_pkey", tids)
    nblocks = heapam.heap_nblocks(rel)
    assert nblocks > 20
    begin()
    for tid in tids[:1500]:
        assert heapam.heap_delete(rel, tid).status == heapam.TM_Ok
    commit()
    res = lazy_vacuum_rel(rel, [index], index_bulk_delete=FakeIndex.bulk_delete)
    assert res.tuples_deleted == 1500
    assert res.lpdead_items == 1500
    assert res.index_tuples_removed == {"vac_pkey": 1500}
    assert res.live_tuples == 500 and res.recently_dead_tuples == 0
    assert res.rel_pages == nblocks and res.scanned_pages == nblocks
    assert len(index.tids) == 500
    assert all(lp["lp_flags"] == bp.LP_UNUSED for lp in items(rel, 0))
    assert freespace.get_recorded_free_space(rel, 0) > 8000
    # The freed pages take new rows: the relation does not grow.
    rel.target_block = 0xFFFFFFFF
    begin()
    for i in range(1500):
        heapam.heap_insert(rel, [i, "w" * 100])
    commit()
    assert heapam.heap_nblocks(rel) == nblocks
    assert len(rows_of(rel)) == 2000
    xact.commit_transaction()


def test_vacuum_without_indexes_and_recently_dead(cluster):
    cl = cluster()
    rel = cl.table("vac1", [("id", t.INT4OID)])
    begin()
    tids = [heapam.heap_insert(rel, [i]) for i in range(100)]
    commit()
    begin()
    for tid in tids[:50]:
        heapam.heap_delete(rel, tid)
    # In progress: VACUUM must keep them.
    res = lazy_vacuum_rel(rel)
    assert res.tuples_deleted == 0 and res.live_tuples == 100
    commit()
    res = lazy_vacuum_rel(rel)
    assert res.tuples_deleted == 50 and res.lpdead_items == 50 and res.live_tuples == 50
    assert [lp["lp_flags"] for lp in items(rel)][:50] == [bp.LP_UNUSED] * 50
    xact.commit_transaction()


def test_free_space_map_tree(cluster):
    cl = cluster()
    rel = cl.table("fsm", [("id", t.INT4OID)])
    assert freespace.get_page_with_free_space(rel, 100) == 0xFFFFFFFF  # no FSM yet
    for blk in range(0, 9000, 3):
        freespace.record_page_with_free_space(rel, blk, (blk % 200) * 32)
    freespace.free_space_map_vacuum(rel)
    assert freespace.get_recorded_free_space(rel, 6) == 6 * 32
    got = freespace.get_page_with_free_space(rel, 199 * 32)
    assert got % 3 == 0 and got % 200 == 199
    assert freespace.get_page_with_free_space(rel, 8100) == 0xFFFFFFFF
    # The search prefers pages after the last one returned (fp_next_slot).
    first = freespace.get_page_with_free_space(rel, 100)
    second = freespace.get_page_with_free_space(rel, 100)
    assert first != second
    # Categories are PostgreSQL's.
    assert freespace.fsm_space_avail_to_cat(8160) == 255
    assert freespace.fsm_space_avail_to_cat(8159) == 254
    assert freespace.fsm_space_needed_to_cat(1) == 1
    assert freespace.fsm_logical_to_physical(0, 0) == 2
    assert freespace.fsm_logical_to_physical(1, 0) == 1
    assert freespace.fsm_logical_to_physical(2, 0) == 0
    assert freespace.fsm_logical_to_physical(0, 1) == 3


def test_index_build_scan_reports_chain_roots(cluster):
    cl = cluster()
    rel = cl.table("build", [("id", t.INT4OID), ("v", t.INT4OID)], indexed_attnums=frozenset({1}))
    begin()
    root = heapam.heap_insert(rel, [1, 0])
    other = heapam.heap_insert(rel, [2, 0])
    commit()
    begin()
    res = heapam.heap_update(rel, root, [1, 1])
    heapam.heap_delete(rel, other)
    commit()
    built = list(heapam.heap_index_build_scan(rel, oldest_xmin=1))  # nothing removable
    assert [(tid, v, live) for tid, v, live in built] == [((0, 2), [2, 0], False),
                                                          ((0, 1), [1, 1], True)]
    assert res.new_tid == (0, 3)
    xact.commit_transaction()


def test_timestamps_round_trip(cluster):
    cl = cluster()
    rel = cl.table("ts", [("ts", t.TIMESTAMPOID)])
    begin()
    now = int((datetime.datetime(2025, 1, 1) - datetime.datetime(2000, 1, 1)).total_seconds()
              * 1e6)
    tid = heapam.heap_insert(rel, [now])
    commit()
    assert heapam.heap_fetch(rel, tid, snap()) == [now]
    xact.commit_transaction()


def test_visibility_helpers():
    s = procarray.Snapshot(100, 110, [103, 105])
    assert hv.xid_in_mvcc_snapshot(103, s) and not hv.xid_in_mvcc_snapshot(104, s)
    assert hv.xid_in_mvcc_snapshot(110, s) and not hv.xid_in_mvcc_snapshot(99, s)
    assert hv.xmax_is_locked_only(0x0080)
    assert hv.xmax_is_locked_only(0x0040)  # EXCL_LOCK alone: a pre-9.3 lock
    assert not hv.xmax_is_locked_only(0)


def test_command_counter_limit():
    saved = (xact._st.cid, xact._st.cid_used)
    try:
        xact._st.cid, xact._st.cid_used = 0xFFFFFFFD, True
        xact.command_counter_increment()
        assert xact.get_current_command_id() == 0xFFFFFFFE
        xact.command_counter_increment()  # not used since: no increment
        xact.get_current_command_id(True)
        with pytest.raises(PgError) as e:
            xact.command_counter_increment()
        assert e.value.sqlstate == "54000"
        assert e.value.message == "cannot have more than 2^32-2 commands in a transaction"
    finally:
        xact._st.cid, xact._st.cid_used = saved


def test_snapshot_manager(cluster):
    cl = cluster()
    cl.table("s", [("id", t.INT4OID)])
    # REPEATABLE READ: one snapshot, with the current command's id.
    snapmgr.set_transaction_isolation(snapmgr.XACT_REPEATABLE_READ)
    begin()
    s1 = snap()
    assert s1.curcid == 0 and snap() is s1
    xact.get_current_command_id(True)
    xact.command_counter_increment()
    s2 = snap()
    assert s2.curcid == 1 and s2.xmin == s1.xmin and s1.curcid == 0
    with pytest.raises(PgError) as e:
        snapmgr.set_transaction_isolation(snapmgr.XACT_READ_COMMITTED)
    assert e.value.sqlstate == "25001"
    # The catalog snapshot is kept until the command counter moves on.
    c1 = snapmgr.get_catalog_snapshot()
    assert snapmgr.get_catalog_snapshot() is c1
    xact.get_current_command_id(True)
    xact.command_counter_increment()
    assert snapmgr.get_catalog_snapshot() is not c1
    snapmgr.invalidate_catalog_snapshot()
    commit()
    assert snapmgr.transaction_isolation() == snapmgr.XACT_READ_COMMITTED
    # READ COMMITTED: a new snapshot per statement; registered ones hold xmin.
    begin()
    a = snap()
    snapmgr.register_snapshot(a)
    snapmgr.push_active_snapshot(snap())
    snapmgr.pop_active_snapshot()
    assert procarray.my_xmin() == a.xmin
    snapmgr.unregister_snapshot(a)
    assert procarray.my_xmin() == 0
    abort()
    assert snapmgr.get_active_snapshot() is None


def test_combo_command_ids():
    combocid.at_eoxact_combocid()
    c = combocid.get_combo_command_id(3, 7)
    assert combocid.get_combo_command_id(3, 7) == c
    assert combocid.get_real_cmin(c) == 3 and combocid.get_real_cmax(c) == 7
    assert combocid.get_combo_command_id(3, 8) == c + 1
    combocid.at_eoxact_combocid()
    assert combocid.count() == 0


def test_concurrent_inserts_extend_without_losing_rows(cluster):
    cl = cluster(shared_buffers=32)
    rel = cl.table("ins", [("w", t.INT4OID), ("i", t.INT4OID), ("pad", t.TEXTOID)])
    nworkers, per_worker = 4, 400

    def worker(w: int) -> None:
        procs = cl.attach_child()
        for i in range(per_worker):
            if i % 50 == 0:
                begin()
            heapam.heap_insert(rel, [w, i, "q" * 150])
            if i % 50 == 49:
                commit()
        cl.end_child(procs)

    wait_workers([fork_worker(worker, w) for w in range(nworkers)], timeout=120)
    got = sorted((w, i) for w, i, _pad in rows_of(rel))
    assert got == [(w, i) for w in range(nworkers) for i in range(per_worker)]
    # About as many pages as the rows need: no page was lost to a racing extension.
    per_page = 8192 // 190
    assert heapam.heap_nblocks(rel) <= nworkers * per_worker // per_page + nworkers + 2
    xact.commit_transaction()


def test_concurrent_hot_updates_and_scans(cluster):
    """pgbench_branches at scale 10: ten rows on one page updated by three
    processes while a fourth scans: every scan sees each row exactly once, and
    pruning keeps the table at one page."""
    cl = cluster()
    rel = cl.table("br10", [("bid", t.INT4OID), ("bbalance", t.INT4OID)],
                   indexed_attnums=frozenset({1}))
    begin()
    roots = [heapam.heap_insert(rel, [b, 0]) for b in range(10)]
    commit()
    nupdaters, per_worker = 3, 150

    def updater(w: int) -> None:
        procs = cl.attach_child()
        for i in range(per_worker):
            b = (w * 7 + i) % 10
            begin()
            tid, vals = heapam.heap_hot_search(rel, roots[b], snap())
            while True:
                res = heapam.heap_update(rel, tid, [b, vals[1] + 1])
                if res.status == heapam.TM_Ok:
                    assert not res.update_indexes
                    break
                lk = heapam.heap_lock_tuple(rel, tid, find_last_version=True)
                assert lk.status == heapam.TM_Ok
                tid, vals = lk.new_tid, lk.values
            commit()
        cl.end_child(procs)

    def scanner() -> None:
        procs = cl.attach_child()
        for _ in range(60):
            begin()
            seen = sorted(v[0] for v in rows_of(rel))
            assert seen == list(range(10)), seen
            for b in range(10):
                assert heapam.heap_hot_search(rel, roots[b], snap()) is not None
            commit()
        cl.end_child(procs)

    pids = [fork_worker(updater, w) for w in range(nupdaters)] + [fork_worker(scanner)]
    wait_workers(pids, timeout=150)
    total = sum(v[1] for v in rows_of(rel))
    assert total == nupdaters * per_worker
    assert heapam.heap_nblocks(rel) == 1
    xact.commit_transaction()
