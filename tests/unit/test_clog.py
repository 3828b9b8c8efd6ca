"""pg_xact across real processes: status bits, the WAL-before-page rule,
extension across page and segment boundaries, truncation and redo."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from access import clog, slru, transam
from access.clog import (
    CLOG_TRUNCATE,
    CLOG_XACTS_PER_PAGE,
    CLOG_ZEROPAGE,
    TRANSACTION_STATUS_ABORTED,
    TRANSACTION_STATUS_COMMITTED,
    TRANSACTION_STATUS_IN_PROGRESS,
    TRANSACTION_STATUS_SUB_COMMITTED,
)
from access.procarray import proc_array_end_transaction
from access.slru import BLCKSZ, SLRU_PAGES_PER_SEGMENT
from access.xlog_internal import RM_CLOG_ID
from shmem import lwlock
from storage import fd
from tests.unit.test_slru import (
    Harness,
    end_worker,
    fork_worker,
    transam_harness,
    wait_workers,
)

SEGMENT_XACTS = CLOG_XACTS_PER_PAGE * SLRU_PAGES_PER_SEGMENT


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    with transam_harness(tmp_path) as h:
        yield h


def _status(xid: int) -> int:
    return clog.transaction_id_get_status(xid)


def _start_at(h: Harness, next_xid: int, oldest_xid: int = 3) -> None:
    """Restart the counters at ``next_xid`` with its page in place, as after
    a checkpoint (the page was extended in an earlier life)."""
    transam.init_from_checkpoint(next_xid, 16384, oldest_xid, 1)
    xid = next_xid & 0xFFFFFFFF
    lwlock.lwlock_acquire(clog.ctl().lock, lwlock.LW_EXCLUSIVE)
    clog.ctl().zero_page(xid // CLOG_XACTS_PER_PAGE)
    lwlock.lwlock_release(clog.ctl().lock)
    h.wal.records.clear()


def test_status_bits_use_postgres_layout_on_disk(harness):
    xids = [transam.get_new_transaction_id() for _ in range(6)]
    assert xids == [3, 4, 5, 6, 7, 8]
    transam.transaction_id_commit_tree(3)
    transam.transaction_id_abort_tree(4)
    transam.transaction_id_commit_tree(5, [6, 7])
    clog.check_point_clog()
    page = harness.xact_file(0).read_bytes()
    # Four xacts per byte, two bits each, lowest xid in the lowest bits.
    assert page[0] == TRANSACTION_STATUS_COMMITTED << 6
    assert page[1] == (TRANSACTION_STATUS_ABORTED | TRANSACTION_STATUS_COMMITTED << 2
                       | TRANSACTION_STATUS_COMMITTED << 4 | TRANSACTION_STATUS_COMMITTED << 6)
    assert page[2] == 0  # xid 8 still in progress
    assert [_status(x) for x in xids] == [1, 2, 1, 1, 1, 0]


def test_status_set_and_read_across_processes(harness, tmp_path):
    nworkers, per_worker = 4, 150
    out = tmp_path / "out"
    out.mkdir()

    def worker(w: int) -> None:
        procs = harness.attach_child()
        mine = []
        for i in range(per_worker):
            xid = transam.get_new_transaction_id()
            if (xid + w) % 3:
                transam.transaction_id_commit_tree(xid)
            else:
                transam.transaction_id_abort_tree(xid)
            proc_array_end_transaction(xid)
            mine.append(xid)
            if i % 50 == 0:  # see the others' work too
                for x in range(3, xid):
                    assert _status(x) in (0, 1, 2)
        (out / str(w)).write_text(" ".join(map(str, mine)))
        end_worker(procs)

    wait_workers([fork_worker(worker, w) for w in range(nworkers)])
    seen = set()
    for w in range(nworkers):
        for x in map(int, (out / str(w)).read_text().split()):
            expected = TRANSACTION_STATUS_COMMITTED if (x + w) % 3 else TRANSACTION_STATUS_ABORTED
            assert _status(x) == expected, x
            assert transam.transaction_id_did_commit(x) == (expected == 1)
            assert transam.transaction_id_did_abort(x) == (expected == 2)
            seen.add(x)
    assert seen == set(range(3, 3 + nworkers * per_worker))


def test_subtransactions_on_other_pages(harness):
    top = CLOG_XACTS_PER_PAGE - 2
    _start_at(harness, top)
    for _ in range(CLOG_XACTS_PER_PAGE + 4):
        transam.get_new_transaction_id()
    subs = [top + 1, CLOG_XACTS_PER_PAGE, CLOG_XACTS_PER_PAGE + 1,
            2 * CLOG_XACTS_PER_PAGE + 1]
    transam.transaction_id_commit_tree(top, subs)
    assert [_status(x) for x in [top, *subs]] == [TRANSACTION_STATUS_COMMITTED] * 5
    aborted = [CLOG_XACTS_PER_PAGE + 2, CLOG_XACTS_PER_PAGE + 7, 2 * CLOG_XACTS_PER_PAGE]
    transam.transaction_id_abort_tree(aborted[0], aborted[1:])
    assert [_status(x) for x in aborted] == [TRANSACTION_STATUS_ABORTED] * 3


def test_sub_committed_is_not_committed_yet(harness):
    x = transam.get_new_transaction_id()
    clog._set_page_status(0, [x], TRANSACTION_STATUS_SUB_COMMITTED, 0, 0)
    assert _status(x) == TRANSACTION_STATUS_SUB_COMMITTED
    assert not transam.transaction_id_did_commit(x)
    assert not transam.transaction_id_did_abort(x)
    # Replay repeats both phases of a multi-page commit: COMMITTED stays.
    transam.transaction_id_commit_tree(x)
    slru.in_recovery = True
    clog._set_page_status(0, [x], TRANSACTION_STATUS_SUB_COMMITTED, 0, 0)
    assert _status(x) == TRANSACTION_STATUS_COMMITTED


def test_async_commit_lsn_is_kept_per_group(harness):
    xids = [transam.get_new_transaction_id() for _ in range(40)]  # 3 .. 42
    transam.transaction_id_async_commit_tree(xids[0], [], 0x5000)
    transam.transaction_id_async_commit_tree(xids[1], [], 0x4000)  # same group, lower
    transam.transaction_id_async_commit_tree(xids[35], [], 0x3000)  # xid 38: next group
    assert clog.transaction_id_get_status_lsn(xids[1]) == (1, 0x5000)
    assert clog.transaction_id_get_status_lsn(xids[2]) == (0, 0x5000)
    assert clog.transaction_id_get_status_lsn(xids[35]) == (1, 0x3000)
    assert transam.transaction_id_get_commit_lsn(xids[35]) == 0x3000
    transam.transaction_id_commit_tree(xids[36])  # synchronous: no LSN
    assert clog.transaction_id_get_status_lsn(xids[36]) == (1, 0x3000)


def test_no_page_written_before_its_wal(harness, monkeypatch):
    """Asynchronous commits on many pages through a pool of 4 buffers: every
    write of a page comes after WAL was flushed up to the page's group LSNs."""
    wal = harness.wal
    ctl = clog.ctl()
    writes: list[tuple[int, int]] = []  # (pageno, WAL flushed when it was written)
    real = fd.pg_pwrite

    def pwrite(f: int, data, offset: int) -> int:
        writes.append((offset // BLCKSZ, wal.flushed))
        return real(f, data, offset)

    monkeypatch.setattr(fd, "pg_pwrite", pwrite)
    page_lsn: dict[int, int] = {}
    npages = 10
    _start_at(harness, 3)
    for p in range(npages):
        for i in range(0, 200, 7):
            xid = p * CLOG_XACTS_PER_PAGE + 3 + i
            lsn = wal.insert(1, 0)  # a commit record, not yet flushed
            clog.transaction_id_set_tree_status(xid, [], TRANSACTION_STATUS_COMMITTED, lsn)
            page_lsn[p] = lsn
        if p + 1 < npages:
            lwlock.lwlock_acquire(ctl.lock, lwlock.LW_EXCLUSIVE)
            ctl.zero_page(p + 1)
            lwlock.lwlock_release(ctl.lock)
    # Re-read old pages: they come back from disk with their statuses.
    for p in range(npages):
        assert _status(p * CLOG_XACTS_PER_PAGE + 3) == TRANSACTION_STATUS_COMMITTED
    clog.check_point_clog()
    written = {p for p, _ in writes}
    assert written == set(range(npages))
    for p, flushed in writes:
        assert flushed >= page_lsn[p], f"page {p} written before its WAL"
    assert wal.flush_calls  # WAL was flushed on the way, not only at the end


def test_async_commit_waits_for_a_write_in_progress(harness):
    """An asynchronous commit must not slip into a page write that flushed WAL
    only up to what it saw: it waits for the write (write_ok=False)."""
    import time

    x = transam.get_new_transaction_id()
    y = transam.get_new_transaction_id()
    transam.transaction_id_commit_tree(x)
    ctl = clog.ctl()
    r, w = os.pipe()

    def writer() -> None:
        procs = harness.attach_child()
        fd.configure_fault_injection("write:pg_xact/*:delay=400ms")
        os.write(w, b"x")
        clog.check_point_clog()
        end_worker(procs)

    pid = fork_worker(writer)
    assert os.read(r, 1) == b"x"
    time.sleep(0.1)
    start = time.monotonic()
    transam.transaction_id_async_commit_tree(y, [], 0x9000)
    assert time.monotonic() - start >= 0.15
    wait_workers([pid])
    os.close(r)
    os.close(w)
    assert ctl.page_dirty[ctl._find(0)]  # dirtied again after the write
    assert harness.xact_file(0).read_bytes()[1] == 0  # y's bit did not reach disk


def test_extend_crosses_page_and_segment_boundaries(harness):
    start = SEGMENT_XACTS - 2
    _start_at(harness, start)
    xids = [transam.get_new_transaction_id() for _ in range(4)]
    assert xids == [start, start + 1, start + 2, start + 3]
    assert harness.wal.records == [(RM_CLOG_ID, CLOG_ZEROPAGE, struct.pack("<i", 32))]
    for x in xids:
        transam.transaction_id_commit_tree(x)
    clog.check_point_clog()
    assert harness.xact_file(1).stat().st_size == BLCKSZ
    assert harness.xact_file(1).read_bytes()[0] == 0x05  # xids 2^20 and 2^20 + 1
    assert harness.xact_file(0).stat().st_size == SLRU_PAGES_PER_SEGMENT * BLCKSZ
    assert [_status(x) for x in xids] == [1, 1, 1, 1]


def test_extend_after_xid_wraparound(harness):
    _start_at(harness, 0xFFFFFFFE, oldest_xid=0xF0000000)
    full = [transam.get_new_full_transaction_id() for _ in range(3)]
    assert full == [0xFFFFFFFE, 0xFFFFFFFF, (1 << 32) | 3]
    # Page 0 starts again at FirstNormalTransactionId.
    assert harness.wal.records == [(RM_CLOG_ID, CLOG_ZEROPAGE, struct.pack("<i", 0))]
    for f in full:
        transam.transaction_id_commit_tree(f & 0xFFFFFFFF)
    clog.check_point_clog()
    assert harness.xact_file(0xFFF).stat().st_size == SLRU_PAGES_PER_SEGMENT * BLCKSZ
    assert harness.xact_file(0xFFF).read_bytes()[-1] == 0x50  # ...FE, ...FF committed
    assert harness.xact_file(0).read_bytes()[0] == 0x40


def test_truncate_clog_is_wal_logged_then_removes_segments(harness):
    start = 3 * SEGMENT_XACTS + 100
    _start_at(harness, start)
    for segno in range(3):
        harness.xact_file(segno).write_bytes(bytes(SLRU_PAGES_PER_SEGMENT * BLCKSZ))
    oldest = 2 * SEGMENT_XACTS + 5
    clog.truncate_clog(oldest, 5)
    cutoff = oldest // CLOG_XACTS_PER_PAGE
    assert harness.wal.records == [(RM_CLOG_ID, CLOG_TRUNCATE,
                                    struct.pack("<iII", cutoff, oldest, 5))]
    assert harness.wal.flushed == harness.wal.lsn  # flushed before any file went
    assert sorted(os.listdir(harness.datadir / "pg_xact")) == ["0002"]
    assert transam.oldest_clog_xid() == oldest
    harness.wal.records.clear()
    clog.truncate_clog(oldest, 5)  # nothing left to remove: no record
    assert harness.wal.records == []


def test_redo_of_zeropage_and_truncate(harness):
    slru.in_recovery = True
    rec = SimpleNamespace(info=CLOG_ZEROPAGE, main_data=struct.pack("<i", 33))
    clog.clog_redo(rec)
    # Written at once: not left for a checkpoint that may never come.
    assert harness.xact_file(1).stat().st_size == 2 * BLCKSZ
    assert harness.wal.records == []
    clog.ctl().latest_page_number = 33
    rec = SimpleNamespace(info=CLOG_TRUNCATE | 0x01,  # low bits: XLR_INFO flags
                          main_data=struct.pack("<iII", 32, SEGMENT_XACTS, 5))
    clog.clog_redo(rec)
    assert sorted(os.listdir(harness.datadir / "pg_xact")) == ["0001"]
    assert transam.oldest_clog_xid() == SEGMENT_XACTS


def test_trim_clog_zeroes_the_rest_of_the_current_page(harness):
    xids = [transam.get_new_transaction_id() for _ in range(10)]  # 3 .. 12
    for x in xids:
        transam.transaction_id_commit_tree(x)
    # Replay settled on nextXid 8: statuses past it belong to no one.
    transam.init_from_checkpoint(8, 16384, 3, 1)
    transam.finish_recovery()
    assert [_status(x) for x in xids] == [1] * 5 + [0] * 5
    assert clog.ctl().latest_page_number == 0


def test_boot_strap_clog_files_for_initdb(tmp_path):
    (tmp_path / "pg_xact").mkdir()
    clog.boot_strap_clog_files(str(tmp_path))
    assert (tmp_path / "pg_xact" / "0000").read_bytes() == bytes(BLCKSZ)


def test_records_read_as_pg_waldump_prints_them():
    from access import rmgrdesc

    assert rmgrdesc.clog_desc(CLOG_ZEROPAGE, struct.pack("<i", 5)) == "page 5"
    assert rmgrdesc.clog_desc(CLOG_TRUNCATE, clog.XL_CLOG_TRUNCATE.pack(64, 2097155, 5)) == \
        "page 64; oldestXact 2097155"
    assert clog.XL_CLOG_TRUNCATE.size == 12  # sizeof(xl_clog_truncate)


def test_page_precedes_handles_wraparound():
    last = 0xFFFFFFFF // CLOG_XACTS_PER_PAGE
    assert clog.clog_page_precedes(0, 1)
    assert not clog.clog_page_precedes(1, 0)
    assert not clog.clog_page_precedes(5, 5)
    assert clog.clog_page_precedes(last, 0)  # 0 comes after the last page
    assert clog.clog_page_precedes(last - 10, 3)
    assert not clog.clog_page_precedes(3, last - 10)


def test_status_in_progress_is_not_cached(harness):
    x = transam.get_new_transaction_id()
    assert transam.transaction_log_fetch(x) == TRANSACTION_STATUS_IN_PROGRESS
    transam.transaction_id_commit_tree(x)
    assert transam.transaction_id_did_commit(x)
