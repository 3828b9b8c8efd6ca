"""Heap WAL (access/heapam_xlog.py): every record the heap writes replays to the
same page, byte for byte once masked as PostgreSQL's wal_consistency_checking
masks (heap_mask), after a simulated crash that loses every data page; and
PostgreSQL 15's pg_waldump reads the records and describes them exactly as
``tusk_ctl waldump`` does. Also: hint bits wait for asynchronous commits to be
flushed, and with data checksums the first hint after a checkpoint writes an
XLOG_FPI_FOR_HINT."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from access import heapam, xact, xlog, xlogrecovery
from access import xlog_internal as xi
from access.heapam_xlog import heap_mask
from access.heaptuple import HEAP_XMIN_COMMITTED
from access.vacuumlazy import lazy_vacuum_rel
from access.xlogreader import XLogReader
from catalog import pg_type as t
from postmaster.waldump_cmd import format_record
from storage import bufmgr, smgr
from storage.relfilenode import FSM_FORKNUM, MAIN_FORKNUM
from tests.unit.heap_harness import SYSID, HeapCluster, abort, begin, commit
from utils import snapmgr

PG_WALDUMP = "/usr/lib/postgresql/15/bin/pg_waldump"
REDO_RMIDS = (xi.RM_HEAP_ID, xi.RM_HEAP2_ID)


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


def masked_pages(rel) -> list[bytes]:
    out = []
    for blkno in range(heapam.heap_nblocks(rel)):
        buf = bufmgr.read_buffer(rel.smgr, blkno)
        bufmgr.lock_buffer(buf, bufmgr.BUFFER_LOCK_SHARE)
        try:
            out.append(bytes(heap_mask(bufmgr.buffer_get_page(buf), blkno)))
        finally:
            bufmgr.unlock_release_buffer(buf)
    return out


def read_records(cl: HeapCluster, start: int) -> list:
    reader = XLogReader(str(cl.datadir), xlog.geometry(), system_identifier=SYSID)
    try:
        return list(reader.records(start))
    finally:
        reader.close()


def crash_and_redo(cl: HeapCluster, rels, start: int) -> list:
    """Flush WAL, lose every page of ``rels`` (buffers dropped unwritten, files
    cut to nothing), replay the heap's records from ``start``; returns them."""
    xlog.xlog_flush(xlog.get_xlog_insert_rec_ptr())
    for rel in rels:
        for fork in (MAIN_FORKNUM, FSM_FORKNUM):
            if smgr.smgr_exists(rel.smgr, fork):
                smgr.smgr_truncate(rel.smgr, fork, 0)
        rel.target_block = 0xFFFFFFFF
    records = read_records(cl, start)
    for rec in records:
        if rec.rmid in REDO_RMIDS or (rec.rmid == xi.RM_XLOG_ID and rec.info & 0xF0 in
                                      (xi.XLOG_FPI, xi.XLOG_FPI_FOR_HINT)):
            xlogrecovery._apply(rec)
    return records


def workload(cl: HeapCluster, rel, wide) -> None:
    """Every kind of heap record: inserts (first on a page: INIT), multi-inserts,
    deletes, HOT and non-HOT updates on the same page (with prefix/suffix
    compression), updates to another page (with the LOCK before), aborted
    work, pruning and VACUUM."""
    begin()
    tids = [heapam.heap_insert(rel, [i, f"value {i}", None if i % 5 else i * 2])
            for i in range(300)]
    commit()
    begin()
    heapam.heap_multi_insert(rel, [[1000 + i, "m" * (i % 50), i] for i in range(400)])
    commit()
    begin()
    for tid in tids[:40]:
        assert heapam.heap_delete(rel, tid).status == heapam.TM_Ok
    commit()
    begin()
    root = tids[50]
    tid = root
    for i in range(200):  # HOT updates of one row, pruned along the way
        tid, vals = heapam.heap_hot_search(rel, root, snap())
        res = heapam.heap_update(rel, tid, [vals[0], f"value {vals[0]} v{i}", i])
        assert res.status == heapam.TM_Ok
        commit()
        begin()
    res = heapam.heap_update(rel, tids[60], [99999, "new key", 1])  # indexed: not HOT
    assert res.update_indexes
    commit()
    begin()
    heapam.heap_insert(rel, [5, "aborted", 5])
    heapam.heap_update(rel, tids[70], [70, "aborted update", 0])
    abort()
    begin()
    wtids = [heapam.heap_insert(wide, [i, "a" * 1000]) for i in range(7)]
    commit()
    begin()
    moved = heapam.heap_update(wide, wtids[0], [0, "b" * 3000])  # LOCK, then UPDATE+INIT
    assert moved.new_tid[0] == 1
    heapam.heap_lock_tuple(wide, wtids[1], mode=heapam.LockTupleExclusive)
    commit()
    list(heapam.heap_scan(rel, snap()))  # sets hint bits
    res = lazy_vacuum_rel(rel, [], index_bulk_delete=lambda r, cb: 0)
    assert res.lpdead_items > 0
    lazy_vacuum_rel(wide)
    begin()
    for i in range(100):  # reuse of freed line pointers and space
        heapam.heap_insert(rel, [2000 + i, "again", i])
    commit()
    xact.commit_transaction()


def _tables(cl):
    rel = cl.table("t", [("id", t.INT4OID), ("v", t.TEXTOID), ("n", t.INT8OID)],
                   indexed_attnums=frozenset({1}))
    wide = cl.table("wide", [("id", t.INT4OID), ("v", t.TEXTOID)])
    return rel, wide


def after_checkpoint(cl: HeapCluster, rel, wide) -> None:
    """A checkpoint's redo pointer: the next change of each page carries its
    image (restored in redo), and with checksums so does the next hint bit."""
    xlog.set_redo_rec_ptr(cl.insert_lsn(), True)
    begin()
    heapam.heap_insert(rel, [777, "after checkpoint", 7])
    commit()
    list(heapam.heap_scan(wide, snap()))
    xact.commit_transaction()


@pytest.mark.parametrize("checksums", [False, True])
def test_redo_reproduces_every_page(cluster, checksums):
    cl = cluster(data_checksums=checksums)
    rel, wide = _tables(cl)
    start = cl.insert_lsn()
    workload(cl, rel, wide)
    if checksums:
        after_checkpoint(cl, rel, wide)
    before = masked_pages(rel), masked_pages(wide)
    assert len(before[0]) > 3
    records = crash_and_redo(cl, [rel, wide], start)
    after = masked_pages(rel), masked_pages(wide)
    assert len(after[0]) == len(before[0]) and len(after[1]) == len(before[1])
    for b, a in zip(before[0] + before[1], after[0] + after[1], strict=True):
        assert a == b
    kinds = {(r.rmid, r.info & 0xF0) for r in records}
    assert {(xi.RM_HEAP_ID, 0x00), (xi.RM_HEAP_ID, 0x80), (xi.RM_HEAP_ID, 0x10),
            (xi.RM_HEAP_ID, 0x20), (xi.RM_HEAP_ID, 0x40), (xi.RM_HEAP_ID, 0x60),
            (xi.RM_HEAP_ID, 0xA0), (xi.RM_HEAP2_ID, 0x10), (xi.RM_HEAP2_ID, 0x20),
            (xi.RM_HEAP2_ID, 0xD0)} <= kinds
    if checksums:
        assert (xi.RM_XLOG_ID, xi.XLOG_FPI_FOR_HINT) in kinds
        assert any(b.has_image for r in records for b in r.blocks)
    # The data is all there after redo.
    begin()
    assert len(list(heapam.heap_scan(rel, snap()))) == 300 - 40 + 400 + 100 + checksums
    xact.commit_transaction()


def test_prefix_and_suffix_compression(cluster):
    cl = cluster()
    rel = cl.table("ps", [("id", t.INT4OID), ("a", t.TEXTOID), ("b", t.TEXTOID)])
    first = cl.insert_lsn()
    begin()
    tid = heapam.heap_insert(rel, [1, "p" * 100, "s" * 100])
    commit()
    start = cl.insert_lsn()
    begin()
    res = heapam.heap_update(rel, tid, [1, "p" * 50 + "X" + "p" * 49, "s" * 100])
    commit()
    recs = [r for r in read_records(cl, start) if r.rmid == xi.RM_HEAP_ID]
    assert len(recs) == 1
    flags = recs[0].main_data[7]
    assert flags & 0x20 and flags & 0x40  # XLH_UPDATE_PREFIX_FROM_OLD | SUFFIX_FROM_OLD
    assert len(recs[0].blocks[0].data) < 20  # two lengths, a header, the changed bytes
    before = masked_pages(rel)
    crash_and_redo(cl, [rel], first)
    assert masked_pages(rel) == before
    assert res.status == heapam.TM_Ok


@pytest.mark.skipif(not os.access(PG_WALDUMP, os.X_OK),
                    reason="pg_waldump (PostgreSQL 15) is not installed")
@pytest.mark.parametrize("checksums", [False, True])
def test_pg_waldump_describes_heap_records(cluster, checksums):
    cl = cluster(data_checksums=checksums)
    rel, wide = _tables(cl)
    start = cl.insert_lsn()
    workload(cl, rel, wide)
    if checksums:
        after_checkpoint(cl, rel, wide)
    xlog.xlog_flush(cl.insert_lsn())
    records = read_records(cl, start)
    heap = [r for r in records if r.rmid in REDO_RMIDS]
    assert len(heap) > 100
    tmp = Path(tempfile.mkdtemp())
    try:
        for f in (cl.datadir / "pg_wal").iterdir():
            shutil.copy(f, tmp / f.name)
        out = subprocess.run([PG_WALDUMP, "-p", str(tmp), "-s", xi.format_lsn(start)],
                             capture_output=True, text=True, env={**os.environ, "TZ": "UTC"})
    finally:
        shutil.rmtree(tmp)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("rmgr:")]
    assert len(lines) == len(records), out.stderr
    ours = [format_record(r) for r in records]
    for theirs, mine in zip(lines, ours, strict=True):
        if mine.startswith("rmgr: Transaction"):
            continue  # commit times print in local time; compared elsewhere
        assert theirs == mine
    descs = "\n".join(lines)
    for expected in ("desc: INSERT off 2 flags 0x00", "desc: INSERT+INIT off 1 flags 0x00",
                     "desc: MULTI_INSERT+INIT ", "tuples flags 0x02", "desc: HOT_UPDATE off",
                     "desc: UPDATE off", "desc: UPDATE+INIT off", "desc: DELETE off",
                     "KEYS_UPDATED", "desc: LOCK off", "EXCL_LOCK",
                     "desc: PRUNE latestRemovedXid", "desc: VACUUM nunused"):
        assert expected in descs, expected
    if checksums:
        assert "desc: FPI_FOR_HINT" in descs and "FPW" in descs
    assert "invalid" not in out.stderr or "invalid record length" in out.stderr


def test_hint_bits_wait_for_asynchronous_commit(cluster):
    cl = cluster(synchronous_commit="off")
    rel = cl.table("async", [("id", t.INT4OID)])
    begin()
    tid = heapam.heap_insert(rel, [1])
    commit()  # the commit record is not flushed
    assert heapam.heap_fetch(rel, tid, snap()) == [1]
    assert not heapam.heap_page_items(rel, 0)[0]["t_infomask"] & HEAP_XMIN_COMMITTED
    xlog.xlog_flush(cl.insert_lsn())
    assert heapam.heap_fetch(rel, tid, snap()) == [1]
    assert heapam.heap_page_items(rel, 0)[0]["t_infomask"] & HEAP_XMIN_COMMITTED
    xact.commit_transaction()


def test_common_prefix_and_suffix():
    import random

    from access.heapam_xlog import _common_prefix, _common_suffix

    def prefix(a, b, m):
        i = 0
        while i < m and a[i] == b[i]:
            i += 1
        return i

    def suffix(a, b, k):
        i = 0
        while i < k and a[len(a) - 1 - i] == b[len(b) - 1 - i]:
            i += 1
        return i

    rng = random.Random(5)
    for _ in range(5000):
        a = bytearray(rng.randint(0, 2) for _ in range(rng.randint(0, 40)))
        b = bytearray(a[:rng.randint(0, len(a))]) + bytes(rng.randint(0, 2)
                                                          for _ in range(rng.randint(0, 5)))
        if a and rng.random() < 0.5:
            a[rng.randrange(len(a))] = rng.randint(0, 2)
        m = min(len(a), len(b))
        p = prefix(a, b, m)
        assert _common_prefix(a, memoryview(b), m) == p
        assert _common_suffix(memoryview(a), b, m - p) == suffix(a, b, m - p)
