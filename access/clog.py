"""The transaction commit log, pg_xact — mirrors
src/backend/access/transam/clog.c (PostgreSQL 15).

Two status bits per transaction (IN_PROGRESS 0, COMMITTED 1, ABORTED 2,
SUB_COMMITTED 3), four transactions per byte, CLOG_XACTS_PER_PAGE (32768) per
8 kB page, kept in an SLRU (access/slru.py) of CLOGShmemBuffers() buffers in
the shared memory region "Xact", guarded by XactSLRULock.

Protocol between processes
--------------------------
- A status is set under XactSLRULock held exclusively and read under a
  shared hold; both are single-byte updates of the page buffer.
- Pages are born in ExtendCLOG, called by GetNewTransactionId under
  XidGenLock when an xid is the first of its page: the page is zeroed in the
  buffer pool and a CLOG_ZEROPAGE record (the page number, int32) is logged.
  Nobody can set a status on a page before it exists, because nobody holds
  an xid of that page before the extension is done.
- Write-ahead rule. A synchronous commit flushes its commit record before
  calling us (lsn 0). An asynchronous commit passes the LSN of its commit
  record: it is kept as the group LSN of the xid's group of
  CLOG_XACTS_PER_LSN_GROUP (32) xids, and the SLRU flushes WAL up to a page's
  highest group LSN before writing the page. Readers get the group LSN with
  the status, so that hint bits are not set before the commit is durable.
- A commit whose subtransactions span several pages first marks the
  subtransactions on the other pages SUB_COMMITTED, then the top-level page
  (atomically, under one hold of the lock), then the rest COMMITTED: nobody
  sees the tree partly committed.
- Recovery re-does ZEROPAGE (zero and write at once) and TRUNCATE records;
  commit and abort records are re-applied by the xact redo routine through
  transaction_id_set_tree_status.

Where tusk differs
------------------
- No group update (TransactionGroupUpdateXidStatus): every committer takes
  XactSLRULock itself. With Python's costs the lock is held for a couple of
  microseconds, far shorter than the rest of a commit.
- No pg_subtrans: a reader that meets SUB_COMMITTED (only visible inside a
  multi-page commit, while the top-level xid is still in the ProcArray) is
  answered by access.transam as "not committed yet".
- All WAL calls go through ``xlog_insert_hook`` / ``xlog_flush_hook`` below,
  so tests can capture them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from access import slru
from access.slru import BLCKSZ, SLRU_PAGES_PER_SEGMENT, SlruCtl
from access.xlog_internal import CLOG_TRUNCATE, CLOG_ZEROPAGE, RM_CLOG_ID, XLR_INFO_MASK
from shmem.lwlock import (
    LW_EXCLUSIVE,
    LWTRANCHE_XACT_BUFFER,
    get_named_lwlock,
    lwlock_acquire,
    lwlock_release,
)
from shmem.segment import ShmemSegment
from storage import sync
from utils import elog

# Status values (XidStatus).
TRANSACTION_STATUS_IN_PROGRESS = 0
TRANSACTION_STATUS_COMMITTED = 1
TRANSACTION_STATUS_ABORTED = 2
TRANSACTION_STATUS_SUB_COMMITTED = 3

CLOG_BITS_PER_XACT = 2
CLOG_XACTS_PER_BYTE = 4
CLOG_XACTS_PER_PAGE = BLCKSZ * CLOG_XACTS_PER_BYTE
CLOG_XACT_BITMASK = (1 << CLOG_BITS_PER_XACT) - 1
CLOG_XACTS_PER_LSN_GROUP = 32
CLOG_LSNS_PER_PAGE = CLOG_XACTS_PER_PAGE // CLOG_XACTS_PER_LSN_GROUP
# Segment numbers of a 32-bit xid space: pg_xact/0000 .. pg_xact/0FFF.
CLOG_MAX_SEGMENTS = (0xFFFFFFFF // CLOG_XACTS_PER_PAGE) // SLRU_PAGES_PER_SEGMENT + 1

REGION = "Xact"  # SimpleLruInit(XactCtl, "Xact", ...)
DIRECTORY = "pg_xact"
_FIRST_NORMAL_XID = 3  # access.transam.FirstNormalTransactionId
_XID_MASK = 0xFFFFFFFF
_PAGE_SHIFT = CLOG_XACTS_PER_PAGE.bit_length() - 1  # 15
_INDEX_MASK = CLOG_XACTS_PER_PAGE - 1
_GROUP_SHIFT = CLOG_XACTS_PER_LSN_GROUP.bit_length() - 1  # 5
_LOCK_ID_BASE = 0x7A000  # stripes of the per-buffer I/O locks

# The body of a CLOG_ZEROPAGE record (int pageno) and of CLOG_TRUNCATE
# (xl_clog_truncate: int pageno, TransactionId oldestXact, Oid oldestXactDb).
ZEROPAGE_REC = struct.Struct("<i")
XL_CLOG_TRUNCATE = struct.Struct("<iII")


def transaction_id_to_page(xid: int) -> int:
    return xid // CLOG_XACTS_PER_PAGE


def transaction_id_to_pg_index(xid: int) -> int:
    return xid % CLOG_XACTS_PER_PAGE


def transaction_id_to_byte(xid: int) -> int:
    return transaction_id_to_pg_index(xid) // CLOG_XACTS_PER_BYTE


def transaction_id_to_bindex(xid: int) -> int:
    return xid % CLOG_XACTS_PER_BYTE


# ---------------------------------------------------------------------------
# WAL hooks

def _default_xlog_insert(rmid: int, info: int, main_data: bytes = b"", blocks=(), *,
                         xid: int = 0) -> int:
    from access import xlog

    return xlog.xlog_insert(rmid, info, main_data, blocks, xid=xid)


def _default_xlog_flush(lsn: int) -> None:
    from access import xlog

    xlog.xlog_flush(lsn)


# Every WAL record and flush of access.clog/slru/transam goes through these
# (tests replace them with fakes); signatures as access.xlog's.
xlog_insert_hook: Callable[..., int] = _default_xlog_insert
xlog_flush_hook: Callable[[int], None] = _default_xlog_flush


def _wal_flush(lsn: int) -> None:
    xlog_flush_hook(lsn)  # looked up at call time, so the hook can be replaced


# ---------------------------------------------------------------------------
# Shared memory

def clog_shmem_buffers(settings) -> int:
    """CLOGShmemBuffers: Min(128, Max(4, NBuffers / 512))."""
    return min(128, max(4, int(settings.get("shared_buffers")) // 512))


def shmem_requests(settings) -> list[tuple[str, int]]:
    return [(REGION, slru.shmem_size(clog_shmem_buffers(settings), CLOG_LSNS_PER_PAGE))]


def num_semaphores(settings) -> int:
    return 0


def _make_ctl(seg: ShmemSegment, settings) -> SlruCtl:
    return SlruCtl(seg, REGION, clog_shmem_buffers(settings), CLOG_LSNS_PER_PAGE,
                   get_named_lwlock("XactSLRULock"), DIRECTORY, LWTRANCHE_XACT_BUFFER,
                   clog_page_precedes, lock_id_base=_LOCK_ID_BASE, wal_flush=_wal_flush,
                   sync_handler=sync.SYNC_HANDLER_CLOG)


def shmem_init(seg: ShmemSegment, settings) -> None:
    """CLOGShmemInit (postmaster): needs shmem.lwlock attached, which it is."""
    ctl = _make_ctl(seg, settings)
    ctl.init()
    ctl.release_views()


_ctl: SlruCtl | None = None


def attach(seg: ShmemSegment, settings) -> None:
    """Bind this process to the segment's CLOG (after shmem.lwlock.attach)."""
    global _ctl
    detach()
    _ctl = _make_ctl(seg, settings)


def detach() -> None:
    global _ctl
    if _ctl is not None:
        _ctl.release_views()
        _ctl = None


def ctl() -> SlruCtl:
    """XactCtl (for tests and tools)."""
    if _ctl is None:
        raise RuntimeError("access.clog is not attached to a segment")
    return _ctl


def clog_page_precedes(page1: int, page2: int) -> bool:
    """CLOGPagePrecedes: does page1 come before page2, modulo wraparound? Both
    pages' first xids are offset so that neither is a permanent xid, and page1
    must precede page2's last xid too."""
    xid1 = (page1 * CLOG_XACTS_PER_PAGE + _FIRST_NORMAL_XID + 1) & _XID_MASK
    xid2 = (page2 * CLOG_XACTS_PER_PAGE + _FIRST_NORMAL_XID + 1) & _XID_MASK
    return _precedes(xid1, xid2) and \
        _precedes(xid1, (xid2 + CLOG_XACTS_PER_PAGE - 1) & _XID_MASK)


def _precedes(id1: int, id2: int) -> bool:
    """TransactionIdPrecedes for the page comparison (both normal xids)."""
    return ((id1 - id2) & _XID_MASK) >= 0x80000000


# ---------------------------------------------------------------------------
# Setting and getting status

def transaction_id_set_tree_status(xid: int, subxids: Sequence[int], status: int,
                                   lsn: int = 0) -> None:
    """TransactionIdSetTreeStatus: record the final status of a transaction and
    its subtransactions (``subxids`` in xid order, as xact.c keeps them), with
    the commit record's LSN for an asynchronous commit (0 otherwise)."""
    assert status in (TRANSACTION_STATUS_COMMITTED, TRANSACTION_STATUS_ABORTED)
    pageno = xid >> _PAGE_SHIFT
    n = len(subxids)
    i = 0
    while i < n and subxids[i] >> _PAGE_SHIFT == pageno:
        i += 1
    if i == n:
        _set_page_status(xid, subxids, status, lsn, pageno)
        return
    # Several pages: the subtransactions elsewhere become SUB_COMMITTED first,
    # so that the top-level page flips the whole tree at once.
    rest = subxids[i:]
    if status == TRANSACTION_STATUS_COMMITTED:
        _set_status_by_pages(rest, TRANSACTION_STATUS_SUB_COMMITTED, lsn)
    _set_page_status(xid, subxids[:i], status, lsn, pageno)
    _set_status_by_pages(rest, status, lsn)


def _set_status_by_pages(subxids: Sequence[int], status: int, lsn: int) -> None:
    """set_status_by_pages: one call per run of subxids on the same page."""
    start = 0
    n = len(subxids)
    while start < n:
        pageno = subxids[start] >> _PAGE_SHIFT
        end = start + 1
        while end < n and subxids[end] >> _PAGE_SHIFT == pageno:
            end += 1
        _set_page_status(0, subxids[start:end], status, lsn, pageno)
        start = end


def _set_page_status(xid: int, subxids: Sequence[int], status: int, lsn: int,
                     pageno: int) -> None:
    """TransactionIdSetPageStatus(Internal): every xid given is on ``pageno``."""
    c = _ctl
    assert c is not None, "access.clog is not attached"
    lwlock_acquire(c.lock, LW_EXCLUSIVE)
    # An asynchronous commit must not slip into a write already under way,
    # which flushed WAL only up to the LSNs it saw (hence write_ok=False).
    slotno = c.read_page(pageno, lsn == 0, xid or (subxids[0] if subxids else 0))
    try:
        if xid:
            if status == TRANSACTION_STATUS_COMMITTED:
                # A write under way may catch some bits and not others: the
                # subtransactions go first, via SUB_COMMITTED.
                for sub in subxids:
                    _set_status_bit(c, sub, TRANSACTION_STATUS_SUB_COMMITTED, lsn, slotno)
            _set_status_bit(c, xid, status, lsn, slotno)
        for sub in subxids:
            _set_status_bit(c, sub, status, lsn, slotno)
        c.page_dirty[slotno] = 1
    finally:
        lwlock_release(c.lock)


def _set_status_bit(c: SlruCtl, xid: int, status: int, lsn: int, slotno: int) -> None:
    """TransactionIdSetStatusBit (XactSLRULock held exclusively)."""
    byteno = slotno * BLCKSZ + ((xid & _INDEX_MASK) >> 2)
    bshift = (xid & 3) << 1
    pages = c.bytes
    byteval = pages[byteno]
    curval = (byteval >> bshift) & CLOG_XACT_BITMASK
    # Replay repeats both phases of a multi-page commit: no going back.
    if slru.in_recovery and status == TRANSACTION_STATUS_SUB_COMMITTED and \
            curval == TRANSACTION_STATUS_COMMITTED:
        return
    assert curval in (0, status) or (curval == TRANSACTION_STATUS_SUB_COMMITTED and
                                     status != TRANSACTION_STATUS_IN_PROGRESS), \
        f"xid {xid}: status {curval} -> {status}"
    pages[byteno] = (byteval & ~(CLOG_XACT_BITMASK << bshift)) | (status << bshift)
    if lsn:
        i = slotno * CLOG_LSNS_PER_PAGE + ((xid & _INDEX_MASK) >> _GROUP_SHIFT)
        if c.group_lsn[i] < lsn:
            c.group_lsn[i] = lsn


def transaction_id_get_status(xid: int) -> int:
    """TransactionIdGetStatus without the LSN: the hot path of
    TransactionIdDidCommit (one shared hold of XactSLRULock)."""
    c = _ctl
    slotno = c.read_page_readonly(xid >> _PAGE_SHIFT, xid)  # type: ignore[union-attr]
    byteval = c.bytes[slotno * BLCKSZ + ((xid & _INDEX_MASK) >> 2)]  # type: ignore[union-attr]
    lwlock_release(c.lock)  # type: ignore[union-attr]
    return (byteval >> ((xid & 3) << 1)) & CLOG_XACT_BITMASK


def transaction_id_get_status_lsn(xid: int) -> tuple[int, int]:
    """TransactionIdGetStatus: (status, group LSN). The LSN is that of the
    latest asynchronous commit in the xid's group: a hint bit saying
    "committed" may be set only once WAL is flushed past it."""
    c = ctl()
    slotno = c.read_page_readonly(xid >> _PAGE_SHIFT, xid)
    byteval = c.bytes[slotno * BLCKSZ + ((xid & _INDEX_MASK) >> 2)]
    lsn = c.group_lsn[slotno * CLOG_LSNS_PER_PAGE + ((xid & _INDEX_MASK) >> _GROUP_SHIFT)]
    lwlock_release(c.lock)
    return (byteval >> ((xid & 3) << 1)) & CLOG_XACT_BITMASK, lsn


# ---------------------------------------------------------------------------
# Life cycle

def _zero_clog_page(pageno: int, write_xlog: bool) -> int:
    """ZeroCLOGPage (XactSLRULock held; on an error it is released)."""
    c = ctl()
    slotno = c.zero_page(pageno)
    if write_xlog:
        try:
            xlog_insert_hook(RM_CLOG_ID, CLOG_ZEROPAGE, ZEROPAGE_REC.pack(pageno))
        except BaseException:
            lwlock_release(c.lock)
            raise
    return slotno


def boot_strap_clog() -> None:
    """BootStrapCLOG with shared memory: create and write page 0."""
    c = ctl()
    lwlock_acquire(c.lock, LW_EXCLUSIVE)
    slotno = _zero_clog_page(0, False)
    c.write_page(slotno)
    assert not c.page_dirty[slotno]
    lwlock_release(c.lock)


def boot_strap_clog_files(datadir: str) -> None:
    """BootStrapCLOG for initdb, which has no shared memory: write
    ``pg_xact/0000`` holding one zeroed page, durably. The pg_xact directory
    must exist."""
    import os

    from storage import fd

    directory = os.path.join(datadir, DIRECTORY)
    path = os.path.join(directory, f"{0:04X}")
    f = fd.basic_open_file(path, os.O_RDWR | os.O_CREAT | os.O_EXCL)
    try:
        if fd.pg_pwrite(f, bytes(BLCKSZ), 0) != BLCKSZ:
            raise OSError(28, os.strerror(28), path)
        fd.pg_fsync(f, path)
    finally:
        fd.basic_close(f)
    fd.fsync_fname(directory, isdir=True)


def startup_clog(next_xid: int) -> None:
    """StartupCLOG: at startup, before redo, the latest page is that of nextXid."""
    c = ctl()
    lwlock_acquire(c.lock, LW_EXCLUSIVE)
    c.latest_page_number = next_xid >> _PAGE_SHIFT
    lwlock_release(c.lock)


def trim_clog(next_xid: int) -> None:
    """TrimCLOG: at the end of recovery, zero the current page past nextXid.
    Replay may have settled on a nextXid below xids that a previous life
    marked (subtransaction commits write no WAL); pages after the current one
    are zeroed when first used."""
    c = ctl()
    pageno = next_xid >> _PAGE_SHIFT
    lwlock_acquire(c.lock, LW_EXCLUSIVE)
    c.latest_page_number = pageno
    if next_xid & _INDEX_MASK:
        slotno = c.read_page(pageno, False, next_xid)
        page = c.page(slotno)
        byteno = (next_xid & _INDEX_MASK) >> 2
        bshift = (next_xid & 3) << 1
        page[byteno] &= (1 << bshift) - 1  # the so-far-unused xids of this byte
        page[byteno + 1:] = bytes(BLCKSZ - byteno - 1)
        c.page_dirty[slotno] = 1
    lwlock_release(c.lock)


def check_point_clog() -> None:
    """CheckPointCLOG: write every dirty page; the segments are fsynced by the
    checkpoint's process_sync_requests, through the sync requests the writes
    registered (clog_sync_filetag)."""
    ctl().write_all(True)


def clog_sync_filetag(tag: sync.FileTag) -> str:
    """clogsyncfiletag: syncsw[SYNC_HANDLER_CLOG]'s fsync of one pg_xact segment."""
    return ctl().sync_file_tag(tag)


sync.register_sync_handler(sync.SYNC_HANDLER_CLOG, sync.SyncOps(clog_sync_filetag))


def extend_clog(newest_xact: int) -> None:
    """ExtendCLOG: called under XidGenLock for every new xid; zeroes (and
    WAL-logs) a new page when the xid is its first. Just after wraparound the
    first xid of page 0 is FirstNormalTransactionId."""
    if newest_xact & _INDEX_MASK and newest_xact != _FIRST_NORMAL_XID:
        return
    c = ctl()
    lwlock_acquire(c.lock, LW_EXCLUSIVE)
    _zero_clog_page(newest_xact >> _PAGE_SHIFT, True)
    lwlock_release(c.lock)


def truncate_clog(oldest_xact: int, oldest_xid_datoid: int) -> None:
    """TruncateCLOG: remove the segments wholly before the page of
    ``oldest_xact`` (vacuum, after a checkpoint made sure nothing on disk
    refers to older xids). WAL-logged and flushed before any file goes."""
    from access import transam

    c = ctl()
    cutoff_page = transaction_id_to_page(oldest_xact)
    if not any(c.may_delete_segment(p, cutoff_page) for p in c.scan_directory()):
        return  # nothing to remove
    # Lookups of older xids must fail cleanly from now on, not read a
    # vanished file: advance oldestClogXid first.
    transam.advance_oldest_clog_xid(oldest_xact)
    lsn = xlog_insert_hook(RM_CLOG_ID, CLOG_TRUNCATE,
                           XL_CLOG_TRUNCATE.pack(cutoff_page, oldest_xact, oldest_xid_datoid))
    xlog_flush_hook(lsn)
    c.truncate(cutoff_page)


# ---------------------------------------------------------------------------
# Redo

def clog_redo(record) -> None:
    """clog_redo: ``record.info`` and ``record.main_data`` of an RM_CLOG_ID record."""
    info = record.info & ~XLR_INFO_MASK
    data = bytes(record.main_data)
    if info == CLOG_ZEROPAGE:
        (pageno,) = ZEROPAGE_REC.unpack_from(data)
        c = ctl()
        lwlock_acquire(c.lock, LW_EXCLUSIVE)
        slotno = _zero_clog_page(pageno, False)
        c.write_page(slotno)
        assert not c.page_dirty[slotno]
        lwlock_release(c.lock)
    elif info == CLOG_TRUNCATE:
        from access import transam

        pageno, oldest_xact, _db = XL_CLOG_TRUNCATE.unpack_from(data)
        transam.advance_oldest_clog_xid(oldest_xact)
        ctl().truncate(pageno)
    else:
        elog.ereport(elog.PANIC, f"clog_redo: unknown op code {info}")
        raise RuntimeError(f"clog_redo: unknown op code {info}")

