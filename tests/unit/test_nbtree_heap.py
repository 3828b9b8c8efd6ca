"""B-tree indexes over a real heap (access/heapam.py), real transactions and the
lock manager: uniqueness checked against heap visibility with a dirty snapshot,
waiting for an in-progress inserter (which then commits or aborts), a deleted
duplicate not conflicting, and bt_build fed by heapam.heap_index_build_scan."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from access import heapam, nbtree
from catalog import pg_type as t
from tests.unit.heap_harness import HeapCluster, abort, begin, commit
from tests.unit.nbtree_harness import make_index
from tests.unit.shmem_harness import fork_worker, wait_workers
from utils import snapmgr
from utils.elog import PgError


@pytest.fixture
def cl(tmp_path: Path):
    c = HeapCluster(tmp_path, shared_buffers=64)
    yield c
    c.close()


def _insert(heap, idx, k: int) -> tuple[int, int]:
    tid = heapam.heap_insert(heap, [k, f"row {k}"])
    nbtree.bt_insert(idx, [k], tid, heap, True)
    return tid


def _lookup(heap, idx, k: int) -> list[list]:
    snap = snapmgr.get_transaction_snapshot()
    out = []
    for tid in nbtree.bt_begin_scan(idx, [(1, "=", k)]):
        found = heapam.heap_hot_search(heap, tid, snap)
        if found is not None:
            out.append(found[1])
    return out


def test_unique_against_heap_visibility(cl):
    heap = cl.table("accounts", [("aid", t.INT4OID), ("filler", t.TEXTOID)],
                    indexed_attnums=frozenset({1}))
    idx = make_index(900_001, (("aid", t.INT4OID),), unique=True, name="accounts_pkey")
    nbtree.bt_build(heap, idx)            # empty heap: just the metapage
    begin()
    tids = {k: _insert(heap, idx, k) for k in range(1, 500)}
    commit()
    begin()
    with pytest.raises(PgError) as ei:
        _insert(heap, idx, 42)
    assert ei.value.sqlstate == "23505"
    assert ei.value.detail == "Key (aid)=(42) already exists."
    abort()
    # Delete row 7 and commit: its key may be used again.
    begin()
    res = heapam.heap_delete(heap, tids[7])
    assert res.status == heapam.TM_Ok
    commit()
    begin()
    _insert(heap, idx, 7)
    commit()
    begin()
    assert _lookup(heap, idx, 7) == [[7, "row 7"]]
    assert _lookup(heap, idx, 8) == [[8, "row 8"]]
    commit()
    # The same key twice in one transaction is a violation too.
    begin()
    _insert(heap, idx, 1000)
    with pytest.raises(PgError, match="duplicate key"):
        _insert(heap, idx, 1000)
    abort()
    assert nbtree.bt_verify(idx) == []


@pytest.mark.parametrize("ending", ["commit", "abort"])
def test_waits_for_an_in_progress_inserter(cl, ending):
    heap = cl.table("w", [("aid", t.INT4OID), ("filler", t.TEXTOID)])
    idx = make_index(900_002, (("aid", t.INT4OID),), unique=True, name="w_pkey")
    nbtree.bt_build(heap, idx)
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()

    def worker() -> None:
        procs = cl.attach_child()
        begin()
        _insert(heap, idx, 5)
        os.write(ready_w, b"r")
        assert os.read(go_r, 1) == b"g"
        time.sleep(0.3)
        commit() if ending == "commit" else abort()
        cl.end_child(procs)

    pid = fork_worker(worker)
    assert os.read(ready_r, 1) == b"r"
    begin()
    os.write(go_w, b"g")
    t0 = time.monotonic()
    try:
        _insert(heap, idx, 5)
        outcome = "inserted"
    except PgError as e:
        assert e.sqlstate == "23505" and e.detail == "Key (aid)=(5) already exists."
        outcome = "violation"
    waited = time.monotonic() - t0
    wait_workers([pid])
    for f in (go_r, go_w, ready_r, ready_w):
        os.close(f)
    assert waited >= 0.2   # it waited for the other transaction to end
    assert outcome == ("violation" if ending == "commit" else "inserted")
    commit() if outcome == "inserted" else abort()
    begin()
    assert _lookup(heap, idx, 5) == [[5, "row 5"]]
    commit()


def test_build_from_the_heap(cl):
    heap = cl.table("b", [("id", t.INT4OID), ("filler", t.TEXTOID)])
    begin()
    for i in range(3000):
        heapam.heap_insert(heap, [(i * 7919) % 3000, "x" * (i % 50)])
    commit()
    begin()
    # A deleted row (recently dead or dead) and a duplicate key among the dead.
    victim = next(iter(heapam.heap_scan(heap, snapmgr.get_transaction_snapshot())))
    assert heapam.heap_delete(heap, victim[0]).status == heapam.TM_Ok
    commit()
    begin()
    heapam.heap_insert(heap, [victim[1][0], "again"])
    commit()
    idx = make_index(900_003, (("id", t.INT4OID),), unique=True, name="b_pkey")
    res = nbtree.bt_build(heap, idx)
    assert res.index_tuples >= 3000  # the deleted row is dead to everyone: not indexed
    assert nbtree.bt_verify(idx) == []
    begin()
    assert _lookup(heap, idx, victim[1][0]) == [[victim[1][0], "again"]]
    assert len(list(nbtree.bt_begin_scan(idx, [(1, ">=", 0)]))) == res.index_tuples
    commit()
    # Live duplicates make the unique build fail.
    begin()
    heapam.heap_insert(heap, [17, "dup"])
    commit()
    idx2 = make_index(900_004, (("id", t.INT4OID),), unique=True, name="b_pkey2")
    with pytest.raises(PgError) as ei:
        nbtree.bt_build(heap, idx2)
    assert ei.value.message == 'could not create unique index "b_pkey2"'
    assert ei.value.detail == "Key (id)=(17) is duplicated."


