"""XLogCtl: inserting, writing and flushing WAL — mirrors the WAL-buffer half of
src/backend/access/transam/xlog.c (XLogInsertRecord, ReserveXLogInsertLocation,
CopyXLogRecordToWAL, GetXLogBuffer, AdvanceXLInsertBuffer,
WaitXLogInsertionsToFinish, XLogWrite, XLogFlush, XLogBackgroundFlush).

Protocol between processes (as in PostgreSQL)
---------------------------------------------
- Space for a record is reserved under ``insertpos_lck`` (a spinlock): the
  insert position advances in "usable bytes" (page headers excluded), so a
  reservation is a few arithmetic operations.
- The record is then copied into the WAL buffers while holding one of the
  NUM_XLOGINSERT_LOCKS (8) WAL insertion locks, so backends copy in parallel.
  A holder that must wait for a buffer page advertises how far its insertion
  has got in the lock's ``insertingAt`` cell.
- WAL buffers are a ring of wal_buffers pages; ``xlblocks[i]`` is the end LSN
  of the page buffer ``i`` holds. Initialising the next page takes
  WALBufMappingLock; if that buffer still holds unwritten WAL, the backend
  writes it itself (wal_buffers_full).
- Writing and flushing happen under WALWriteLock. ``xlog_flush`` takes it with
  acquire-or-wait: while one process writes and syncs, the others wait, then
  find their LSN already flushed — group commit.
- LogwrtRqst / LogwrtResult (how far WAL is requested / known written and
  flushed) and asyncXactLSN live under ``info_lck``.

XLogCtl words (int64) in the region "XLOG Ctl" are listed below (the C
struct's fields); the WAL buffer pages are the region "WAL Buffers".

Where we differ: the copy is done by the inserting process as in PostgreSQL,
but ``insertingAt`` is only advertised when an insertion must wait for a
buffer page (PostgreSQL updates it at every page boundary); a waiter treats a
busy lock with no advertised position as "still inserting", as PostgreSQL.
"""

from __future__ import annotations

import os
import time

from access import xlog_internal as xi
from access.xlog_internal import WalGeometry
from access.xloginsert import assemble_record, finish_record  # no import cycle: it needs no xlog
from shmem.lwlock import (
    LW_EXCLUSIVE,
    LW_VAL_EXCLUSIVE,
    NUM_XLOGINSERT_LOCKS,
    get_named_lwlock,
    lwlock_acquire,
    lwlock_acquire_or_wait,
    lwlock_held_by_me,
    lwlock_release,
    lwlock_release_clear_var,
    lwlock_update_var,
    lwlock_wait_for_var,
    wal_insert_lock,
)
from shmem.segment import ShmemSegment
from shmem.spin import SpinLock
from storage import fd
from utils import elog, pgstat

# XLogCtl words.
(W_CURR_BYTE_POS, W_PREV_BYTE_POS, W_INSERT_REDO, W_INSERT_FPW, W_RQST_WRITE, W_RQST_FLUSH,
 W_RESULT_WRITE, W_RESULT_FLUSH, W_ASYNC_XACT_LSN, W_INITIALIZED_UPTO, W_REDO_REC_PTR,
 W_TLI, W_WALWRITER_PID, W_WALWRITER_SLEEPING, W_LAST_SEG_SWITCH_TIME, W_LAST_SEG_SWITCH_LSN,
 W_SYSID, W_IN_RECOVERY, W_CKPT_SEGS_REQUESTED, W_WALWRITER_LATCH_SET) = range(20)
W_INSERTING_AT = 24  # NUM_XLOGINSERT_LOCKS cells
CTL_WORDS = W_INSERTING_AT + NUM_XLOGINSERT_LOCKS

SYNC_METHODS = ("fsync", "fdatasync", "open_sync", "open_datasync")


class WalWriteError(Exception):
    """A failed WAL write or sync: the caller PANICs."""


def xlog_buffers(settings) -> int:
    """XLOGChooseNumBuffers: wal_buffers in pages (-1 = shared_buffers/32, 8 .. one segment)."""
    configured = settings.get("wal_buffers")
    blcksz = settings.get("wal_block_size")
    if configured != -1:
        return max(configured, 4)
    nbuffers = settings.get("shared_buffers") * 8192 // blcksz
    return max(min(nbuffers // 32, settings.get("wal_segment_size") // blcksz), 8)


def shmem_requests(settings) -> list[tuple[str, int]]:
    n = xlog_buffers(settings)
    return [("XLOG Ctl", CTL_WORDS * 8 + n * 8),
            ("WAL Buffers", n * settings.get("wal_block_size"))]


def num_semaphores(settings) -> int:
    return 2  # insertpos_lck, info_lck


def shmem_init(seg: ShmemSegment, settings) -> None:
    region = seg.region("XLOG Ctl")
    region[:] = bytes(len(region))
    seg.region("WAL Buffers")[:] = bytes(len(seg.region("WAL Buffers")))
    w = region.cast("q")
    w[W_INSERT_FPW] = 1 if settings.get("full_page_writes") else 0
    w[W_TLI] = 1
    w[W_IN_RECOVERY] = 1


class _XLogCtl:
    """This process's handles on XLogCtl and its private caches (LogwrtResult ...)."""

    def __init__(self, seg: ShmemSegment, settings) -> None:
        region = seg.region("XLOG Ctl")
        self.w = region.cast("q")
        self.nbuffers = xlog_buffers(settings)
        self.xlblocks = self.w[CTL_WORDS:CTL_WORDS + self.nbuffers]
        self.inserting_at = [self.w[W_INSERTING_AT + i:W_INSERTING_AT + i + 1]
                             for i in range(NUM_XLOGINSERT_LOCKS)]
        self.buffers = seg.region("WAL Buffers")
        self.geom = WalGeometry(settings.get("wal_block_size"), settings.get("wal_segment_size"))
        self.pages = [self.buffers[i * self.geom.blcksz:(i + 1) * self.geom.blcksz]
                      for i in range(self.nbuffers)]
        base = seg.sem_base.get(__name__, 0)
        self.insertpos_lck = SpinLock(seg.sems[base])
        self.info_lck = SpinLock(seg.sems[base + 1])
        self.insert_locks = [wal_insert_lock(i) for i in range(NUM_XLOGINSERT_LOCKS)]
        self.wal_write_lock = get_named_lwlock("WALWriteLock")
        self.buf_mapping_lock = get_named_lwlock("WALBufMappingLock")
        self.settings = settings
        self.my_insert_lock = 0
        # Private state of the process that holds WALWriteLock.
        self.open_log_file = -1
        self.open_log_segno = -1
        self.result_write = 0  # a local copy of LogwrtResult, refreshed under info_lck
        self.result_flush = 0
        self.procs = None  # this process's ProcArray, for commit_siblings


_ctl: _XLogCtl | None = None
datadir = ""
proc_last_rec_ptr = 0  # ProcLastRecPtr: where this process's last record starts
# XactLastRecEnd: the end of this process's last record; the transaction machinery
# reads it to learn whether the transaction wrote WAL, and resets it at its end.
xact_last_rec_end = 0


def attach(seg: ShmemSegment, settings, data_directory: str, procs=None) -> None:
    """Bind this process to XLogCtl (every child that may write WAL, after fork)."""
    global _ctl, datadir
    _ctl = _XLogCtl(seg, settings)
    datadir = data_directory
    if procs is not None and procs.my_slot is not None:
        _ctl.my_insert_lock = procs.my_slot % NUM_XLOGINSERT_LOCKS
        _ctl.procs = procs


def ctl() -> _XLogCtl:
    assert _ctl is not None, "XLogCtl not attached"
    return _ctl


def geometry() -> WalGeometry:
    return ctl().geom


# -- positions --------------------------------------------------------------------------------

def get_xlog_insert_rec_ptr() -> int:
    """GetXLogInsertRecPtr: the end of the last reserved record (pg_current_wal_insert_lsn)."""
    c = ctl()
    with c.insertpos_lck.held():
        pos = c.w[W_CURR_BYTE_POS]
    return c.geom.byte_pos_to_rec_ptr(pos)


def get_xlog_write_rec_ptr() -> int:
    """GetXLogWriteRecPtr (pg_current_wal_lsn)."""
    c = ctl()
    with c.info_lck.held():
        return c.w[W_RESULT_WRITE]


def get_flush_rec_ptr() -> int:
    """GetFlushRecPtr (pg_current_wal_flush_lsn)."""
    c = ctl()
    with c.info_lck.held():
        return c.w[W_RESULT_FLUSH]


def get_redo_rec_ptr() -> int:
    c = ctl()
    with c.info_lck.held():
        return c.w[W_REDO_REC_PTR]


def get_full_page_write_info() -> tuple[int, bool]:
    """GetFullPageWriteInfo: (RedoRecPtr, doPageWrites) as the record should be built."""
    w = ctl().w
    return w[W_INSERT_REDO], bool(w[W_INSERT_FPW])


def recovery_in_progress() -> bool:
    return bool(ctl().w[W_IN_RECOVERY])


# -- insertion ---------------------------------------------------------------------------------

def xlog_insert(rmid: int, info: int, main_data: bytes = b"", blocks=(), *, xid: int = 0,
                flags: int = 0) -> int:
    """XLogInsert: assemble and insert a record; returns its end LSN.

    The full-page-image decision depends on the redo pointer and
    full_page_writes; if either changed before the record got its place, the
    record is assembled and inserted again, so no image is ever missing.
    """
    if recovery_in_progress():
        raise elog.PgError("55000", "cannot make new WAL entries during recovery")
    while True:
        redo, do_page_writes = get_full_page_write_info()
        rec = assemble_record(rmid, info, main_data, blocks, xid=xid, redo_rec_ptr=redo,
                              do_page_writes=do_page_writes,
                              wal_compression=str(ctl().settings.get("wal_compression")))
        end = xlog_insert_record(rec.image, rec.fpw_lsn, num_fpi=rec.num_fpi,
                                 redo_used=redo, fpw_used=do_page_writes)
        if end:
            return end


def xlog_insert_record(image: bytearray, fpw_lsn: int = 0, *, num_fpi: int = 0,
                       redo_used: int | None = None, fpw_used: bool | None = None,
                       all_locks: bool = False) -> int:
    """XLogInsertRecord: reserve space, set xl_prev and the CRC, copy into the
    WAL buffers. Returns the record's end LSN, or 0 if the full-page-image
    decision went stale (the caller assembles the record again)."""
    c = ctl()
    w = c.w
    lock_ids = range(NUM_XLOGINSERT_LOCKS) if all_locks else (c.my_insert_lock,)
    for i in lock_ids:
        lwlock_acquire(c.insert_locks[i], LW_EXCLUSIVE)
    try:
        if redo_used is not None:
            # The image decision went stale if full_page_writes turned on, or the
            # redo pointer moved past a page we did not image (XLogInsertRecord).
            redo_now, fpw_now = w[W_INSERT_REDO], bool(w[W_INSERT_FPW])
            if fpw_now and (not fpw_used or (fpw_lsn and fpw_lsn <= redo_now)):
                return 0
        size = xi.maxalign(len(image))
        geom = c.geom
        with c.insertpos_lck.held():
            start = w[W_CURR_BYTE_POS]
            prev = w[W_PREV_BYTE_POS]
            w[W_CURR_BYTE_POS] = start + size
            w[W_PREV_BYTE_POS] = start
        start_ptr = geom.byte_pos_to_rec_ptr(start)
        end_ptr = geom.byte_pos_to_end_rec_ptr(start + size)
        global proc_last_rec_ptr, xact_last_rec_end
        proc_last_rec_ptr = start_ptr
        xact_last_rec_end = end_ptr
        finish_record(image, geom.byte_pos_to_rec_ptr(prev))
        _copy_record_to_wal(c, image, start_ptr, None if all_locks else c.my_insert_lock)
    finally:
        for i in lock_ids:
            lwlock_release_clear_var(c.insert_locks[i], c.inserting_at[i], 0)
    io = pgstat.io
    io.wal_records += 1
    io.wal_fpi += num_fpi
    io.wal_bytes += size
    return end_ptr


def _copy_record_to_wal(c: _XLogCtl, data: bytearray, ptr: int, lock_id: int | None) -> None:
    """CopyXLogRecordToWAL: copy ``data`` starting at ``ptr``, writing continuation
    headers (XLP_FIRST_IS_CONTRECORD, xlp_rem_len) on every page it spills onto."""
    blcksz = c.geom.blcksz
    mv = memoryview(data)
    remaining = len(data)
    written = 0
    while True:
        page = _get_xlog_buffer(c, ptr, lock_id)
        off = ptr % blcksz
        n = min(blcksz - off, remaining)
        page[off:off + n] = mv[written:written + n]
        written += n
        remaining -= n
        if not remaining:
            return
        ptr += n  # now at the start of the next page
        page = _get_xlog_buffer(c, ptr, lock_id)
        info = xi.PAGE_HEADER.unpack_from(page, 0)[1]
        xi.PAGE_HEADER.pack_into(page, 0, xi.XLOG_PAGE_MAGIC, info | xi.XLP_FIRST_IS_CONTRECORD,
                                 c.w[W_TLI], ptr, remaining)
        if info & xi.XLP_LONG_HEADER:
            ptr += xi.SizeOfXLogLongPHD
        else:
            ptr += xi.SizeOfXLogShortPHD


def _get_xlog_buffer(c: _XLogCtl, ptr: int, lock_id: int | None) -> memoryview:
    """GetXLogBuffer: the buffer page that holds ``ptr``, initialising it if needed."""
    geom = c.geom
    blcksz = geom.blcksz
    page_no = ptr // blcksz
    idx = page_no % c.nbuffers
    expected_end = (page_no + 1) * blcksz
    if c.xlblocks[idx] != expected_end:
        if lock_id is not None:
            # Tell WaitXLogInsertionsToFinish how far our insertion has got before
            # we may have to wait (for a WAL buffer to be written out).
            if ptr % blcksz == xi.SizeOfXLogShortPHD and ptr % geom.seg_size > blcksz:
                upto = ptr - xi.SizeOfXLogShortPHD
            elif ptr % blcksz == xi.SizeOfXLogLongPHD and ptr % geom.seg_size < blcksz:
                upto = ptr - xi.SizeOfXLogLongPHD
            else:
                upto = ptr
            lwlock_update_var(c.insert_locks[lock_id], c.inserting_at[lock_id], upto)
        _advance_xl_insert_buffer(c, ptr)
        if c.xlblocks[idx] != expected_end:
            raise RuntimeError(f"could not find WAL buffer for {xi.format_lsn(ptr)}")
    return c.pages[idx]


def _advance_xl_insert_buffer(c: _XLogCtl, upto: int, opportunistic: bool = False) -> None:
    """AdvanceXLInsertBuffer: initialise WAL buffer pages up to the one holding ``upto``."""
    w, geom = c.w, c.geom
    blcksz = geom.blcksz
    npages = 0
    lwlock_acquire(c.buf_mapping_lock, LW_EXCLUSIVE)
    try:
        while upto >= w[W_INITIALIZED_UPTO] or opportunistic:
            new_begin = w[W_INITIALIZED_UPTO]
            idx = (new_begin // blcksz) % c.nbuffers
            old_page_end = c.xlblocks[idx]
            if _refresh_result(c)[0] < old_page_end:
                if opportunistic:
                    break
                # The buffer still holds unwritten WAL: write it ourselves.
                with c.info_lck.held():
                    if w[W_RQST_WRITE] < old_page_end:
                        w[W_RQST_WRITE] = old_page_end
                lwlock_release(c.buf_mapping_lock)
                try:
                    wait_xlog_insertions_to_finish(old_page_end)
                    lwlock_acquire(c.wal_write_lock, LW_EXCLUSIVE)
                    try:
                        if _refresh_result(c)[0] < old_page_end:
                            if probes_enabled:
                                _trace_probe("wal__buffer__write__dirty__start")
                            _xlog_write(c, old_page_end, 0)
                            pgstat.io.wal_buffers_full += 1
                            if probes_enabled:
                                _trace_probe("wal__buffer__write__dirty__done")
                    finally:
                        lwlock_release(c.wal_write_lock)
                finally:
                    lwlock_acquire(c.buf_mapping_lock, LW_EXCLUSIVE)
                continue
            page = c.pages[idx]
            page[:] = _zero_page(blcksz)
            if new_begin % geom.seg_size == 0:
                xi.pack_page_header(page, info=0, tli=w[W_TLI], pageaddr=new_begin, rem_len=0,
                                    long_header=(w[W_SYSID], geom.seg_size, blcksz))
            else:
                xi.pack_page_header(page, info=0, tli=w[W_TLI], pageaddr=new_begin, rem_len=0)
            c.xlblocks[idx] = new_begin + blcksz
            w[W_INITIALIZED_UPTO] = new_begin + blcksz
            npages += 1
            if opportunistic and npages >= c.nbuffers:
                break
    finally:
        lwlock_release(c.buf_mapping_lock)


_ZERO_PAGES: dict[int, bytes] = {}

# trace_probes (set by access.xlogcheckpoint's assign hook).
probes_enabled = False


def _trace_probe(name: str) -> None:
    from access.xlogcheckpoint import trace_probe  # imports this module

    trace_probe(name)


def _zero_page(size: int) -> bytes:
    page = _ZERO_PAGES.get(size)
    if page is None:
        page = _ZERO_PAGES[size] = bytes(size)
    return page


def wait_xlog_insertions_to_finish(upto: int) -> int:
    """WaitXLogInsertionsToFinish: wait until every insertion before ``upto`` has been
    copied into the buffers; returns how far WAL is known complete (may exceed ``upto``)."""
    c = ctl()
    geom = c.geom
    with c.insertpos_lck.held():
        reserved = geom.byte_pos_to_end_rec_ptr(c.w[W_CURR_BYTE_POS])
    if upto > reserved:
        elog.log(f"request to flush past end of generated WAL; request "
                 f"{xi.format_lsn(upto)}, current position {xi.format_lsn(reserved)}")
        upto = reserved
    finished = reserved
    for i, lock in enumerate(c.insert_locks):
        if not lock.w[0] & LW_VAL_EXCLUSIVE:
            # Free now (LWLockWaitForVar's first test, without the spinlock): whoever
            # held it reserved its space before we read the position above, and
            # finished copying before releasing it.
            continue
        if lwlock_held_by_me(lock):
            # Our own insertion cannot progress while we wait: everything before the
            # page we are about to fill is already copied (GetXLogBuffer's caller).
            continue
        inserting_at = 0
        while True:
            free, inserting_at = lwlock_wait_for_var(lock, c.inserting_at[i], inserting_at)
            if free:
                inserting_at = 0
                break
            if inserting_at >= upto:
                break
        if inserting_at and inserting_at < finished:
            finished = inserting_at
    return finished


INSERTING_AT_MAX = 2**63 - 1  # above any LSN; the word is a signed int64


def acquire_all_insert_locks(c: _XLogCtl) -> None:
    """WALInsertLockAcquireExclusive: take every insertion lock in order, advertising
    insertingAt = INSERTING_AT_MAX on each but the last. An inserter holding a lock
    we have yet to take may be waiting (wait_xlog_insertions_to_finish, for a WAL
    buffer) on the ones we hold: it must not wait for us while we wait for it."""
    n = len(c.insert_locks)
    for i, lock in enumerate(c.insert_locks):
        lwlock_acquire(lock, LW_EXCLUSIVE)
        if i < n - 1:
            lwlock_update_var(lock, c.inserting_at[i], INSERTING_AT_MAX)


def request_xlog_switch() -> int:
    """RequestXLogSwitch (pg_switch_wal): end the current segment with an XLOG_SWITCH
    record; the rest of the segment is skipped. Returns the end of the switch
    record, or the current position if the segment has no WAL yet."""
    c = ctl()
    w, geom = c.w, c.geom
    image = build_simple_record(xi.RM_XLOG_ID, xi.XLOG_SWITCH, b"")
    size = xi.maxalign(len(image))
    acquire_all_insert_locks(c)
    try:
        with c.insertpos_lck.held():
            start = w[W_CURR_BYTE_POS]
            if start % geom.usable_bytes_in_segment == 0:
                return geom.byte_pos_to_end_rec_ptr(start)  # nothing to switch away from
            prev = w[W_PREV_BYTE_POS]
            seg_end = (start // geom.usable_bytes_in_segment + 1) * geom.usable_bytes_in_segment
            w[W_CURR_BYTE_POS] = seg_end
            w[W_PREV_BYTE_POS] = start
        global proc_last_rec_ptr, xact_last_rec_end
        start_ptr = geom.byte_pos_to_rec_ptr(start)
        proc_last_rec_ptr = start_ptr
        from access.xloginsert import finish_record

        finish_record(image, geom.byte_pos_to_rec_ptr(prev))
        _copy_record_to_wal(c, image, start_ptr, None)
        # Initialise the rest of the segment's pages, so the whole segment is written.
        end_ptr = geom.byte_pos_to_end_rec_ptr(seg_end)
        xact_last_rec_end = end_ptr
        ptr = geom.page_start(geom.byte_pos_to_end_rec_ptr(start + size) - 1) + geom.blcksz
        while ptr < end_ptr:
            _get_xlog_buffer(c, ptr, None)
            ptr += geom.blcksz
    finally:
        for i, lock in enumerate(c.insert_locks):
            lwlock_release_clear_var(lock, c.inserting_at[i], 0)
    pgstat.io.wal_records += 1
    pgstat.io.wal_bytes += size
    xlog_flush(end_ptr)
    return geom.byte_pos_to_end_rec_ptr(start + xi.SizeOfXLogRecord)


# -- writing -----------------------------------------------------------------------------------

def _refresh_result(c: _XLogCtl) -> tuple[int, int]:
    with c.info_lck.held():
        c.result_write = c.w[W_RESULT_WRITE]
        c.result_flush = c.w[W_RESULT_FLUSH]
    return c.result_write, c.result_flush


_path_cache: tuple[str, int, int, str] = ("", -1, -1, "")


def wal_file_path(segno: int, tli: int = 1) -> str:
    """The path of a WAL segment (the last one asked for is remembered: every
    flush names the segment it syncs)."""
    global _path_cache
    d, s, t, path = _path_cache
    if s == segno and t == tli and d == datadir:
        return path
    path = os.path.join(datadir, "pg_wal", geometry().file_name(tli, segno))
    _path_cache = (datadir, segno, tli, path)
    return path


def xlog_file_init(segno: int, tli: int = 1) -> int:
    """XLogFileInit: open segment ``segno``, creating it zero-filled if missing
    (written to a temporary file, synced, then renamed into place)."""
    path = wal_file_path(segno, tli)
    flags = os.O_RDWR | _sync_open_flags()
    try:
        return fd.basic_open_file(path, flags)
    except FileNotFoundError:
        pass
    create_segment_file(segno, tli)
    return fd.basic_open_file(path, flags)


def create_segment_file(segno: int, tli: int = 1) -> bool:
    """Create a zero-filled segment ahead of need; False if it already exists."""
    path = wal_file_path(segno, tli)
    if os.path.exists(path):
        return False
    geom = geometry()
    tmp = os.path.join(datadir, "pg_wal", f"xlogtemp.{os.getpid()}")
    f = fd.basic_open_file(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        chunk = _zero_page(min(geom.seg_size, 1024 * 1024))
        off = 0
        while off < geom.seg_size:
            off += fd.pg_pwrite(f, chunk, off)
        fd.pg_fsync(f, tmp)
    finally:
        fd.basic_close(f)
    try:
        fd.link(tmp, path)  # never replace a segment someone else just created
    except FileExistsError:
        fd.unlink(tmp)
        return False
    fd.unlink(tmp)
    fd.fsync_fname(os.path.join(datadir, "pg_wal"), isdir=True)
    return True


def _sync_open_flags() -> int:
    method = str(ctl().settings.get("wal_sync_method"))
    if not ctl().settings.get("fsync"):
        return 0
    if method == "open_sync":
        return os.O_SYNC
    if method == "open_datasync":
        return os.O_DSYNC
    return 0


def _issue_xlog_fsync(c: _XLogCtl, f: int, segno: int) -> None:
    """issue_xlog_fsync: sync per wal_sync_method (nothing for the open_* methods)."""
    method = str(c.settings.get("wal_sync_method"))
    if method in ("open_sync", "open_datasync") or not c.settings.get("fsync"):
        return
    timing = c.settings.get("track_wal_io_timing")
    t0 = time.perf_counter_ns() if timing else 0
    path = wal_file_path(segno)
    try:
        if method == "fdatasync":
            fd.pg_fdatasync(f, path)
        else:
            fd.pg_fsync(f, path)
    except Exception as exc:
        _panic(f'could not {method} file "{path}": {exc}')
    if timing:
        pgstat.io.wal_sync_time += (time.perf_counter_ns() - t0) / 1000
    pgstat.io.wal_sync += 1


def _panic(message: str) -> None:
    """A failed WAL write or sync: PANIC, so that crash recovery replays from WAL."""
    elog.ereport(elog.PANIC, message)
    os.abort()


def _xlog_write(c: _XLogCtl, write_rqst: int, flush_rqst: int) -> None:
    """XLogWrite: write buffer pages up to ``write_rqst`` and sync up to ``flush_rqst``.
    Called holding WALWriteLock."""
    w, geom = c.w, c.geom
    blcksz, seg_size = geom.blcksz, geom.seg_size
    result_write, result_flush = _refresh_result(c)
    idx = (result_write // blcksz) % c.nbuffers
    npages = 0
    start_idx = start_offset = 0
    timing = c.settings.get("track_wal_io_timing")
    while result_write < write_rqst:
        end_ptr = c.xlblocks[idx]
        if result_write >= end_ptr:
            _panic(f"xlog write request {xi.format_lsn(write_rqst)} is past end of log "
                   f"{xi.format_lsn(end_ptr)}")
        result_write = end_ptr
        partial = write_rqst < result_write
        segno = geom.segno_of_end(result_write)
        if segno != c.open_log_segno:
            if npages:
                _write_pages(c, start_idx, npages, start_offset, timing)
                npages = 0
            if c.open_log_file >= 0:
                fd.basic_close(c.open_log_file)
            c.open_log_file = xlog_file_init(segno)
            c.open_log_segno = segno
        if npages == 0:
            start_idx = idx
            start_offset = (result_write - blcksz) % seg_size
        npages += 1
        last = write_rqst <= result_write
        finishing_seg = not partial and start_offset + npages * blcksz >= seg_size
        if last or idx == c.nbuffers - 1 or finishing_seg:
            _write_pages(c, start_idx, npages, start_offset, timing)
            npages = 0
            if finishing_seg:
                # Every completed segment is synced at once (XLogWrite's finishing_seg).
                _issue_xlog_fsync(c, c.open_log_file, c.open_log_segno)
                result_flush = result_write
                with c.info_lck.held():
                    w[W_LAST_SEG_SWITCH_TIME] = int(time.time())
                    w[W_LAST_SEG_SWITCH_LSN] = result_write
                _segment_completed(c, segno)
        if partial:
            result_write = write_rqst
            break
        idx = (idx + 1) % c.nbuffers
    if result_flush < flush_rqst and result_flush < result_write:
        segno = geom.segno_of_end(result_write)
        if c.open_log_file < 0 or c.open_log_segno != segno:
            if c.open_log_file >= 0:
                fd.basic_close(c.open_log_file)
            c.open_log_file = xlog_file_init(segno)
            c.open_log_segno = segno
        _issue_xlog_fsync(c, c.open_log_file, segno)
        result_flush = result_write
    with c.info_lck.held():
        w[W_RESULT_WRITE] = result_write
        w[W_RESULT_FLUSH] = result_flush
        if w[W_RQST_WRITE] < result_write:
            w[W_RQST_WRITE] = result_write
        if w[W_RQST_FLUSH] < result_flush:
            w[W_RQST_FLUSH] = result_flush
    c.result_write, c.result_flush = result_write, result_flush


def _write_pages(c: _XLogCtl, start_idx: int, npages: int, offset: int, timing: bool) -> None:
    blcksz = c.geom.blcksz
    data = c.buffers[start_idx * blcksz:(start_idx + npages) * blcksz]
    t0 = time.perf_counter_ns() if timing else 0
    try:
        done = 0
        while done < len(data):
            done += fd.pg_pwrite(c.open_log_file, data[done:], offset + done)
    except OSError as exc:
        _panic(f"could not write to log file {c.geom.file_name(1, c.open_log_segno)} at "
               f"offset {offset}, length {len(data)}: {exc.strerror}")
    if timing:
        pgstat.io.wal_write_time += (time.perf_counter_ns() - t0) / 1000
    pgstat.io.wal_write += 1


# Called with the number of a segment just completed and synced; the checkpointer
# issue installs XLogCheckpointNeeded here.
segment_completed_hook = None


def _segment_completed(c: _XLogCtl, segno: int) -> None:
    if segment_completed_hook is not None:
        segment_completed_hook(segno)


# -- flushing ----------------------------------------------------------------------------------

def xlog_flush(record: int) -> None:
    """XLogFlush: make sure WAL up to ``record`` is on disk (group commit)."""
    c = ctl()
    if record <= c.result_flush:
        return
    w = c.w
    if w[W_IN_RECOVERY]:
        return  # during recovery there is nothing to flush (UpdateMinRecoveryPoint)
    while True:
        with c.info_lck.held():
            write_rqst = max(w[W_RQST_WRITE], record)
            c.result_write, c.result_flush = w[W_RESULT_WRITE], w[W_RESULT_FLUSH]
        if record <= c.result_flush:
            return
        insertpos = wait_xlog_insertions_to_finish(write_rqst)
        if not lwlock_acquire_or_wait(c.wal_write_lock, LW_EXCLUSIVE):
            continue  # someone else flushed meanwhile: look again
        try:
            if record <= _refresh_result(c)[1]:
                return
            delay = c.settings.get("commit_delay")
            if delay > 0 and c.settings.get("fsync") and \
                    _minimum_active_backends(c.settings.get("commit_siblings")):
                time.sleep(delay / 1_000_000)
                insertpos = wait_xlog_insertions_to_finish(insertpos)
            _xlog_write(c, insertpos, insertpos)
        finally:
            lwlock_release(c.wal_write_lock)
        return


def _minimum_active_backends(min_backends: int) -> bool:
    """MinimumActiveBackends: are at least ``min_backends`` other transactions running?"""
    from shmem.proc import ProcArray

    procs = ctl().procs
    if not isinstance(procs, ProcArray):
        return False
    return sum(1 for _slot, _pid, _t, _s in procs.in_use()) - 1 >= min_backends


def xlog_set_async_xact_lsn(lsn: int) -> None:
    """XLogSetAsyncXactLSN: an asynchronous commit; wake the walwriter if it
    hibernates or a full page of WAL is waiting."""
    c = ctl()
    w = c.w
    with c.info_lck.held():
        flushed = w[W_RESULT_FLUSH]
        sleeping = w[W_WALWRITER_SLEEPING]
        prev = w[W_ASYNC_XACT_LSN]
        if prev < lsn:
            w[W_ASYNC_XACT_LSN] = lsn
        if lsn <= prev or (not sleeping and lsn - lsn % c.geom.blcksz <= flushed):
            return
        # SetLatch returns at once if the latch is already set: signal the walwriter
        # only on the first request since it last reset its latch (reset_walwriter_latch).
        pid = w[W_WALWRITER_PID]
        if w[W_WALWRITER_LATCH_SET]:
            return
        w[W_WALWRITER_LATCH_SET] = 1
    if pid:
        from procs.child import set_latch

        set_latch(pid)


def xlog_background_flush(state: dict) -> bool:
    """XLogBackgroundFlush (walwriter): write complete pages, flush asynchronous
    commits at least every wal_writer_delay or after wal_writer_flush_after
    blocks. Returns False if there was nothing to do."""
    c = ctl()
    w, blcksz = c.w, c.geom.blcksz
    with c.info_lck.held():
        result_write, result_flush = w[W_RESULT_WRITE], w[W_RESULT_FLUSH]
        rqst_write = w[W_RQST_WRITE]
    rqst_write -= rqst_write % blcksz
    if rqst_write <= result_flush:
        with c.info_lck.held():
            rqst_write = w[W_ASYNC_XACT_LSN]
    if rqst_write <= result_flush:
        return False
    now = time.monotonic()
    flush_after = c.settings.get("wal_writer_flush_after")
    delay = c.settings.get("wal_writer_delay") / 1000
    last = state.get("lastflush", 0.0)
    flushblocks = rqst_write // blcksz - result_flush // blcksz
    if flush_after == 0 or last == 0.0 or now - last >= delay or flushblocks >= flush_after:
        rqst_flush = rqst_write
        state["lastflush"] = now
    else:
        rqst_flush = 0
    rqst_write = min(rqst_write, wait_xlog_insertions_to_finish(rqst_write))
    lwlock_acquire(c.wal_write_lock, LW_EXCLUSIVE)
    try:
        result_write, result_flush = _refresh_result(c)
        if rqst_write > result_write or rqst_flush > result_flush:
            _xlog_write(c, rqst_write, rqst_flush)
    finally:
        lwlock_release(c.wal_write_lock)
    _advance_xl_insert_buffer(c, 0, opportunistic=True)
    return True


# -- start-up ----------------------------------------------------------------------------------

def init_insert_position(end_of_log: int, last_rec: int, last_page: bytes | None) -> None:
    """After reading WAL to its end (StartupXLOG): continue inserting at
    ``end_of_log``, after the record starting at ``last_rec``. ``last_page`` holds
    the WAL page containing end_of_log when it is not at a page boundary."""
    c = ctl()
    w, geom = c.w, c.geom
    blcksz = geom.blcksz
    w[W_CURR_BYTE_POS] = geom.rec_ptr_to_byte_pos(end_of_log)
    w[W_PREV_BYTE_POS] = geom.rec_ptr_to_byte_pos(last_rec)
    page_start = end_of_log - end_of_log % blcksz
    if end_of_log % blcksz:
        idx = (page_start // blcksz) % c.nbuffers
        assert last_page is not None
        c.pages[idx][:] = last_page
        # Zero the tail so that the next record is not followed by stale bytes.
        c.pages[idx][end_of_log % blcksz:] = _zero_page(blcksz)[end_of_log % blcksz:]
        c.xlblocks[idx] = page_start + blcksz
        w[W_INITIALIZED_UPTO] = page_start + blcksz
    else:
        w[W_INITIALIZED_UPTO] = end_of_log
    with c.info_lck.held():
        w[W_RESULT_WRITE] = w[W_RESULT_FLUSH] = end_of_log
        w[W_RQST_WRITE] = w[W_RQST_FLUSH] = end_of_log
        w[W_ASYNC_XACT_LSN] = end_of_log
    c.result_write = c.result_flush = end_of_log


def set_redo_rec_ptr(redo: int, full_page_writes: bool | None = None) -> None:
    """Set the redo pointer new records judge full-page images against. Holding every
    insertion lock, as CreateCheckPoint does, so no insertion sees half a change."""
    c = ctl()
    acquire_all_insert_locks(c)
    try:
        c.w[W_INSERT_REDO] = redo
        if full_page_writes is not None:
            c.w[W_INSERT_FPW] = int(full_page_writes)
    finally:
        for i, lock in enumerate(c.insert_locks):
            lwlock_release_clear_var(lock, c.inserting_at[i], 0)
    with c.info_lck.held():
        c.w[W_REDO_REC_PTR] = redo


def set_recovery_done(system_identifier: int) -> None:
    """SharedRecoveryState = DONE: WAL may be written from now on."""
    c = ctl()
    c.w[W_SYSID] = system_identifier
    c.w[W_IN_RECOVERY] = 0


def reset_walwriter_latch() -> None:
    """The walwriter resets its latch: the next asynchronous commit signals it
    again. Before it looks for work, so a request made after this is not missed."""
    c = ctl()
    with c.info_lck.held():
        c.w[W_WALWRITER_LATCH_SET] = 0


def set_walwriter(pid: int, sleeping: bool) -> None:
    c = ctl()
    with c.info_lck.held():
        c.w[W_WALWRITER_PID] = pid
        c.w[W_WALWRITER_SLEEPING] = int(sleeping)
        c.w[W_WALWRITER_LATCH_SET] = 0


def close_log_file() -> None:
    c = _ctl
    if c is not None and c.open_log_file >= 0:
        fd.basic_close(c.open_log_file)
        c.open_log_file = -1
        c.open_log_segno = -1



# -- bootstrap (initdb) ----------------------------------------------------------------------------

def checkpoint_record_data(ck) -> bytes:
    """The main data of a checkpoint record: PostgreSQL's CheckPoint struct."""
    return xi.CHECKPOINT.pack(
        ck.redo, ck.this_timeline_id, ck.prev_timeline_id, ck.full_page_writes, ck.next_xid,
        ck.next_oid, ck.next_multi, ck.next_multi_offset, ck.oldest_xid, ck.oldest_xid_db,
        ck.oldest_multi, ck.oldest_multi_db, ck.time, 0, 0, ck.oldest_active_xid)


def build_simple_record(rmid: int, info: int, main_data: bytes, *, xid: int = 0) -> bytearray:
    """An assembled record with main data only (no block references): ready for
    xlog_insert_record, which sets xl_prev and finishes the CRC."""
    from access.xloginsert import assemble_record

    return assemble_record(rmid, info, main_data, [], xid=xid, redo_rec_ptr=0,
                           do_page_writes=False).image


def bootstrap_xlog(datadir_path: str, cf) -> None:
    """BootStrapXLOG: the first WAL segment with a shutdown checkpoint record, and
    pg_control pointing at it. ``cf`` is the ControlFile initdb is about to write."""
    geom = WalGeometry(cf.xlog_blcksz, cf.xlog_seg_size)
    start = geom.seg_size + xi.SizeOfXLogLongPHD  # the first record of segment 1
    ck = cf.check_point_copy
    ck.redo = start
    ck.time = int(time.time())
    from access.xloginsert import finish_record

    rec = build_simple_record(xi.RM_XLOG_ID, xi.XLOG_CHECKPOINT_SHUTDOWN,
                              checkpoint_record_data(ck))
    finish_record(rec, 0)
    page = bytearray(geom.blcksz)
    hdr = xi.pack_page_header(page, info=0, tli=1, pageaddr=geom.seg_size, rem_len=0,
                              long_header=(cf.system_identifier, geom.seg_size, geom.blcksz))
    page[hdr:hdr + len(rec)] = rec
    path = os.path.join(datadir_path, "pg_wal", geom.file_name(1, 1))
    f = fd.basic_open_file(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        fd.pg_pwrite(f, page, 0)
        zeros = _zero_page(min(geom.seg_size, 1024 * 1024))
        off = geom.blcksz
        while off < geom.seg_size:
            off += fd.pg_pwrite(f, zeros[:geom.seg_size - off], off)
        fd.pg_fsync(f, path)
    finally:
        fd.basic_close(f)
    cf.check_point = start
