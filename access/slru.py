"""Simple LRU buffering for transaction status logfiles — mirrors
src/backend/access/transam/slru.c (PostgreSQL 15).

An SLRU is a directory of segment files (``pg_xact/0000``, ``0001`` ...), each
SLRU_PAGES_PER_SEGMENT (32) pages of BLCKSZ, cached in a small pool of page
buffers in shared memory. Writes go mostly to the latest page (and the one
before it just after a page transition); reads touch a wider but still small
span. So, as in PostgreSQL, buffers are found by linear search, with no hash
table, and replacement is plain LRU except that the latest page is never
evicted.

Protocol between processes
--------------------------
One *control lock* (for pg_xact: XactSLRULock) protects every shared field:
page numbers, statuses, dirty flags, LRU counts, the group LSNs and the page
contents. "Holding the control lock" means holding it exclusively, except in
``read_page_readonly``, which finds a resident page under a shared hold (its
LRU-count update is then racy, which is harmless: it only steers eviction).

Each buffer also has an *I/O lock* (tranche XactBuffer). A process that reads
a page in or writes it out holds only that buffer's I/O lock, exclusively,
while the control lock is released:

    start I/O:  under the control lock, set status READ_IN_PROGRESS or
                WRITE_IN_PROGRESS (a write also clears the dirty flag), take
                the buffer's I/O lock, release the control lock
    finish:     re-take the control lock, set the final status (a failed
                write re-dirties the page), release the I/O lock
    wait:       release the control lock, take and drop the I/O lock in
                shared mode, re-take the control lock and look again: anything
                may have happened meanwhile

No deadlock is possible: nobody starts I/O on a buffer that already has I/O in
progress, and nobody waits for an I/O lock while holding another one. A
page being written out may be changed (and re-dirtied) by others, as in the
buffer manager. If an I/O lock is found free while its buffer still claims
I/O in progress, the I/O failed without cleaning up (an exception from a
signal handler): the waiter repairs the status, as PostgreSQL does.

Write-ahead rule
----------------
A page must not reach disk before the WAL describing its changes. For CLOG,
an asynchronous commit marks its xid committed before its commit record is
flushed, so each page carries ``nlsns`` *group LSNs* (the highest commit LSN
of each group of 32 xids); before writing a page, its highest group LSN is
flushed (``wal_flush``). A change that carries an LSN waits for a running
write of its page to finish first (``write_ok=False``), so it can never slip
into a write that flushed too little WAL.

Durability
----------
As in PostgreSQL 14+, an SLRU with a sync handler (pg_xact: SYNC_HANDLER_CLOG)
never fsyncs on its own account: every completed write registers a sync
request for its segment (FileTag: the handler and the segment number) through
storage.sync, which forwards it to the checkpointer's queue like a relation
write. If the queue is full even after compaction, the writer fsyncs the
segment itself. ``write_all`` (CheckPointCLOG) writes every dirty page and
fsyncs the directory, for new files; the checkpoint's process_sync_requests
then fsyncs the segments (``sync_file_tag``). Removing a segment first sends
a FORGET request, so the checkpointer does not try to sync a vanished file.

Where tusk differs
------------------
- An I/O error raises ``PgError`` *after releasing the control lock*
  (PostgreSQL raises holding it and relies on LWLockReleaseAll at abort), so
  callers need no cleanup; a WAL flush failure before a write likewise leaves
  the page dirty and re-raises (PostgreSQL PANICs in a critical section).
- Per-process counters mirror pg_stat_slru's columns (``SlruStats``) but are
  not yet published to shared memory.
- No banks (PostgreSQL 17): pools are at most 128 buffers, scanned linearly,
  with a per-process hint of the slot last found.
"""

from __future__ import annotations

import errno as _errno
import os
from array import array
from collections.abc import Callable

from shmem.lwlock import (
    LW_EXCLUSIVE,
    LW_SHARED,
    LWLock,
    lwlock_acquire,
    lwlock_conditional_acquire,
    lwlock_held_by_me,
    lwlock_release,
)
from shmem.segment import ShmemSegment
from storage import fd, sync
from storage.relfilenode import RelFileNode
from utils import elog
from utils.elog import PgError

BLCKSZ = 8192
SLRU_PAGES_PER_SEGMENT = 32

# Page status (SlruPageStatus); "readable" is status >= SLRU_PAGE_VALID.
SLRU_PAGE_EMPTY = 0
SLRU_PAGE_READ_IN_PROGRESS = 1
SLRU_PAGE_VALID = 2
SLRU_PAGE_WRITE_IN_PROGRESS = 3

# What went wrong in physical I/O (SlruErrorCause).
SLRU_OPEN_FAILED, SLRU_SEEK_FAILED, SLRU_READ_FAILED, SLRU_WRITE_FAILED, \
    SLRU_FSYNC_FAILED, SLRU_CLOSE_FAILED = range(6)

# InRecovery: set by the startup process while it replays WAL
# (access.transam.set_in_recovery). A missing segment then reads as zeroes.
in_recovery = False

_NO_RNODE = RelFileNode(0, 0, 0)  # an SLRU file tag names only handler and segment

# Header words (int64) of the shared area.
H_LATEST_PAGE, H_CUR_LRU, H_NUM_SLOTS, H_NLSNS = range(4)
_HEADER_SIZE = 64
_LOCK_SIZE = 16


def _layout(nslots: int, nlsns: int) -> tuple[dict[str, int], int]:
    """Offsets of the arrays in the shared area, and its total size."""
    off: dict[str, int] = {}
    pos = _HEADER_SIZE
    for name, size in (("page_number", 4 * nslots), ("page_status", 4 * nslots),
                       ("page_dirty", 4 * nslots), ("lru_count", 8 * nslots),
                       ("locks", _LOCK_SIZE * nslots), ("group_lsn", 8 * nslots * nlsns)):
        off[name] = pos
        pos += (size + 63) & ~63
    pos = (pos + BLCKSZ - 1) & ~(BLCKSZ - 1)
    off["pages"] = pos
    return off, pos + nslots * BLCKSZ


def shmem_size(nslots: int, nlsns: int) -> int:
    """SimpleLruShmemSize."""
    return _layout(nslots, nlsns)[1]


class SlruStats:
    """This process's pg_stat_slru counters for one SLRU."""

    __slots__ = ("blks_zeroed", "blks_hit", "blks_read", "blks_written", "blks_exists",
                 "flushes", "truncates")

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)


class SlruCtl:
    """One process's handle on an SLRU (SlruCtlData): shared arrays as typed
    memoryviews, the locks, and what is private to the SLRU kind (directory,
    page comparison, WAL flush)."""

    def __init__(self, seg: ShmemSegment, region: str, nslots: int, nlsns: int,
                 control_lock: LWLock, directory: str, tranche: int,
                 page_precedes: Callable[[int, int], bool], *,
                 lock_id_base: int, wal_flush: Callable[[int], None] | None = None,
                 sync_handler: int = sync.SYNC_HANDLER_NONE) -> None:
        off, size = _layout(nslots, nlsns)
        buf = seg.region(region)
        if len(buf) < size:
            raise ValueError(f"shared memory region {region!r} is too small for its SLRU")
        self.name = region
        self.dir = directory
        self.nslots = nslots
        self.nlsns = nlsns
        self.lock = control_lock
        self.page_precedes = page_precedes
        self.wal_flush = wal_flush
        self.sync_handler = sync_handler
        self._buf = buf
        self.hdr = buf[0:_HEADER_SIZE].cast("q")
        self.page_number = buf[off["page_number"]:off["page_number"] + 4 * nslots].cast("i")
        self.page_status = buf[off["page_status"]:off["page_status"] + 4 * nslots].cast("i")
        self.page_dirty = buf[off["page_dirty"]:off["page_dirty"] + 4 * nslots].cast("i")
        self.lru_count = buf[off["lru_count"]:off["lru_count"] + 8 * nslots].cast("q")
        self.group_lsn = buf[off["group_lsn"]:off["group_lsn"] + 8 * nslots * nlsns].cast("Q")
        self.bytes = buf[off["pages"]:off["pages"] + nslots * BLCKSZ]
        self.pages = [self.bytes[i * BLCKSZ:(i + 1) * BLCKSZ] for i in range(nslots)]
        self.io_locks = [LWLock(buf, off["locks"] + i * _LOCK_SIZE, lock_id_base + i, tranche)
                         for i in range(nslots)]
        self._lsn_zeros = array("Q", bytes(8 * nlsns))
        self.hint = 0  # the slot this process last found a page in
        self.stats = SlruStats()

    def init(self) -> None:
        """SimpleLruInit's shared part (postmaster): every slot empty."""
        self._buf[:] = bytes(len(self._buf))
        self.hdr[H_NUM_SLOTS] = self.nslots
        self.hdr[H_NLSNS] = self.nlsns
        for lock in self.io_locks:
            lock.initialize()

    def release_views(self) -> None:
        """Drop every view on the segment (so that it can be unmapped)."""
        for v in (*self.pages, self.bytes, self.group_lsn, self.lru_count,
                  self.page_dirty, self.page_status, self.page_number, self.hdr):
            v.release()
        self.pages = []
        self.io_locks = []
        self._buf.release()

    # -- small helpers ------------------------------------------------------------------

    @property
    def latest_page_number(self) -> int:
        return self.hdr[H_LATEST_PAGE]

    @latest_page_number.setter
    def latest_page_number(self, pageno: int) -> None:
        self.hdr[H_LATEST_PAGE] = pageno

    def file_name(self, segno: int) -> str:
        """SlruFileName: ``pg_xact/0000``."""
        return f"{self.dir}/{segno:04X}"

    def page(self, slotno: int) -> memoryview:
        """The page buffer of a slot (read or change it under the control lock)."""
        return self.pages[slotno]

    def _recently_used(self, slotno: int) -> None:
        """SlruRecentlyUsed: make the slot most recently used (racy under a shared
        lock, which only blurs the LRU order)."""
        hdr = self.hdr
        cur = hdr[H_CUR_LRU]
        if cur != self.lru_count[slotno]:
            cur += 1
            hdr[H_CUR_LRU] = cur
            self.lru_count[slotno] = cur

    def _zero_lsns(self, slotno: int) -> None:
        """SimpleLruZeroLSNs."""
        n = self.nlsns
        if n:
            self.group_lsn[slotno * n:(slotno + 1) * n] = self._lsn_zeros

    def _find(self, pageno: int) -> int:
        """The slot holding ``pageno`` in any non-empty status, or -1."""
        pns = self.page_number.tolist()
        status = self.page_status
        start = 0
        while True:
            try:
                i = pns.index(pageno, start)
            except ValueError:
                return -1
            if status[i] != SLRU_PAGE_EMPTY:
                return i
            start = i + 1

    # -- buffer management (control lock held exclusively on entry and exit) ------------

    def zero_page(self, pageno: int) -> int:
        """SimpleLruZeroPage: make ``pageno`` resident, all zeroes, dirty, and the
        latest page. Returns the slot."""
        slotno = self._select_lru_page(pageno)
        self.page_number[slotno] = pageno
        self.page_status[slotno] = SLRU_PAGE_VALID
        self.page_dirty[slotno] = 1
        self._recently_used(slotno)
        self.pages[slotno][:] = bytes(BLCKSZ)
        self._zero_lsns(slotno)
        self.hdr[H_LATEST_PAGE] = pageno
        self.stats.blks_zeroed += 1
        return slotno

    def read_page(self, pageno: int, write_ok: bool, xid: int) -> int:
        """SimpleLruReadPage: make ``pageno`` resident and return its slot. With
        ``write_ok`` False, also wait for a write in progress to finish. ``xid``
        is only for error messages."""
        status = self.page_status
        while True:
            slotno = self._select_lru_page(pageno)
            if self.page_number[slotno] == pageno and status[slotno] != SLRU_PAGE_EMPTY:
                s = status[slotno]
                if s == SLRU_PAGE_READ_IN_PROGRESS or \
                        (s == SLRU_PAGE_WRITE_IN_PROGRESS and not write_ok):
                    self._wait_io(slotno)
                    continue
                self._recently_used(slotno)
                self.stats.blks_hit += 1
                self.hint = slotno
                return slotno
            # A free slot (empty, or clean and valid): read the page into it.
            self.page_number[slotno] = pageno
            status[slotno] = SLRU_PAGE_READ_IN_PROGRESS
            self.page_dirty[slotno] = 0
            io_lock = self.io_locks[slotno]
            lwlock_acquire(io_lock, LW_EXCLUSIVE)
            lwlock_release(self.lock)
            try:
                failure = self._physical_read(pageno, slotno)
            except BaseException:
                self._end_io_on_exception(slotno, io_lock)
                raise
            self._zero_lsns(slotno)
            lwlock_acquire(self.lock, LW_EXCLUSIVE)
            status[slotno] = SLRU_PAGE_EMPTY if failure else SLRU_PAGE_VALID
            lwlock_release(io_lock)
            if failure:
                self._report_io_error(pageno, xid, *failure)
            self._recently_used(slotno)
            self.stats.blks_read += 1
            self.hint = slotno
            return slotno

    def write_page(self, slotno: int) -> None:
        """SimpleLruWritePage: write the slot out if it is dirty."""
        self._internal_write_page(slotno)

    def _internal_write_page(self, slotno: int) -> None:
        """SlruInternalWritePage."""
        status = self.page_status
        pageno = self.page_number[slotno]
        while status[slotno] == SLRU_PAGE_WRITE_IN_PROGRESS and \
                self.page_number[slotno] == pageno:
            self._wait_io(slotno)
        if not self.page_dirty[slotno] or status[slotno] != SLRU_PAGE_VALID or \
                self.page_number[slotno] != pageno:
            return
        # Write-busy and clean: a change made meanwhile re-dirties the page.
        status[slotno] = SLRU_PAGE_WRITE_IN_PROGRESS
        self.page_dirty[slotno] = 0
        io_lock = self.io_locks[slotno]
        lwlock_acquire(io_lock, LW_EXCLUSIVE)
        lwlock_release(self.lock)
        try:
            failure = self._physical_write(pageno, slotno)
        except BaseException:  # the WAL flush failed, or a signal handler raised
            self._end_io_on_exception(slotno, io_lock)
            raise
        lwlock_acquire(self.lock, LW_EXCLUSIVE)
        if failure:
            self.page_dirty[slotno] = 1
        status[slotno] = SLRU_PAGE_VALID
        lwlock_release(io_lock)
        if failure:
            self._report_io_error(pageno, 0, *failure)
        self.stats.blks_written += 1

    def _end_io_on_exception(self, slotno: int, io_lock: LWLock) -> None:
        """Undo an I/O start when something other than an I/O error interrupted it:
        a read leaves the slot empty, a write leaves the page dirty. Returns with
        the control lock released, as every error path here."""
        lwlock_acquire(self.lock, LW_EXCLUSIVE)
        if self.page_status[slotno] == SLRU_PAGE_READ_IN_PROGRESS:
            self.page_status[slotno] = SLRU_PAGE_EMPTY
        else:
            self.page_status[slotno] = SLRU_PAGE_VALID
            self.page_dirty[slotno] = 1
        lwlock_release(io_lock)
        lwlock_release(self.lock)

    def _wait_io(self, slotno: int) -> None:
        """SimpleLruWaitIO: wait for the slot's I/O, then repair the status if the
        I/O died without cleaning up."""
        io_lock = self.io_locks[slotno]
        lwlock_release(self.lock)
        lwlock_acquire(io_lock, LW_SHARED)
        lwlock_release(io_lock)
        lwlock_acquire(self.lock, LW_EXCLUSIVE)
        s = self.page_status[slotno]
        if s in (SLRU_PAGE_READ_IN_PROGRESS, SLRU_PAGE_WRITE_IN_PROGRESS):
            if lwlock_conditional_acquire(io_lock, LW_SHARED):
                # Nobody does I/O on it, yet the status says so: it failed.
                if s == SLRU_PAGE_READ_IN_PROGRESS:
                    self.page_status[slotno] = SLRU_PAGE_EMPTY
                else:
                    self.page_status[slotno] = SLRU_PAGE_VALID
                    self.page_dirty[slotno] = 1
                lwlock_release(io_lock)

    def _select_lru_page(self, pageno: int) -> int:
        """SlruSelectLRUPage: the slot holding ``pageno``, else an empty slot, else
        the least recently used clean one, writing dirty victims out first. Never
        the latest page; a busy slot only if nothing else is left."""
        status, pn, lru = self.page_status, self.page_number, self.lru_count
        while True:
            slotno = self._find(pageno)
            if slotno >= 0:
                return slotno
            hdr = self.hdr
            cur = hdr[H_CUR_LRU]
            hdr[H_CUR_LRU] = cur + 1
            latest = hdr[H_LATEST_PAGE]
            best_valid = best_invalid = -1
            best_valid_delta = best_invalid_delta = -1
            best_valid_page = best_invalid_page = 0
            precedes = self.page_precedes
            for i in range(self.nslots):
                s = status[i]
                if s == SLRU_PAGE_EMPTY:
                    return i
                delta = cur - lru[i]
                if delta < 0:
                    # Our cur_lru_count went backwards against a racy reader's.
                    lru[i] = cur
                    delta = 0
                this_page = pn[i]
                if this_page == latest:
                    continue
                if s == SLRU_PAGE_VALID:
                    if delta > best_valid_delta or \
                            (delta == best_valid_delta and precedes(this_page, best_valid_page)):
                        best_valid, best_valid_delta, best_valid_page = i, delta, this_page
                elif delta > best_invalid_delta or \
                        (delta == best_invalid_delta and precedes(this_page, best_invalid_page)):
                    best_invalid, best_invalid_delta, best_invalid_page = i, delta, this_page
            if best_valid < 0:
                # Every candidate is busy: wait for the least recently used one.
                self._wait_io(best_invalid)
                continue
            if not self.page_dirty[best_valid]:
                return best_valid
            self._internal_write_page(best_valid)
            # Loop: the world changed while the control lock was released.

    # -- physical I/O (control lock NOT held; the slot's I/O lock held) ---------------

    def _physical_read(self, pageno: int, slotno: int) -> tuple[int, int] | None:
        """SlruPhysicalReadPage: None on success, else (cause, errno)."""
        segno, rpageno = divmod(pageno, SLRU_PAGES_PER_SEGMENT)
        offset = rpageno * BLCKSZ
        path = self.file_name(segno)
        try:
            f = fd.basic_open_file(path, os.O_RDWR)
        except OSError as exc:
            if exc.errno != _errno.ENOENT or not in_recovery:
                return SLRU_OPEN_FAILED, exc.errno or 0
            elog.ereport(elog.LOG, f'file "{path}" doesn\'t exist, reading as zeroes')
            self.pages[slotno][:] = bytes(BLCKSZ)
            return None
        try:
            n = fd.pg_pread_into(f, self.pages[slotno], offset)
        except OSError as exc:
            return SLRU_READ_FAILED, exc.errno or 0
        finally:
            fd.basic_close(f)
        if n != BLCKSZ:
            return SLRU_READ_FAILED, 0
        return None

    def _physical_write(self, pageno: int, slotno: int) -> tuple[int, int] | None:
        """SlruPhysicalWritePage: flush WAL up to the page's highest group LSN,
        then write. None on success, else (cause, errno)."""
        n = self.nlsns
        if n and self.wal_flush is not None:
            max_lsn = max(self.group_lsn[slotno * n:(slotno + 1) * n])
            if max_lsn:
                self.wal_flush(max_lsn)
        segno, rpageno = divmod(pageno, SLRU_PAGES_PER_SEGMENT)
        offset = rpageno * BLCKSZ
        path = self.file_name(segno)
        # No O_EXCL/O_TRUNC: others may be writing other pages of the same file,
        # and a page that is not first in its segment may create the file.
        try:
            f = fd.basic_open_file(path, os.O_RDWR | os.O_CREAT)
        except OSError as exc:
            return SLRU_OPEN_FAILED, exc.errno or 0
        try:
            try:
                written = fd.pg_pwrite(f, self.pages[slotno], offset)
            except OSError as exc:
                return SLRU_WRITE_FAILED, exc.errno or 0
            if written != BLCKSZ:
                return SLRU_WRITE_FAILED, _errno.ENOSPC  # a short write means disk full
            if self.sync_handler != sync.SYNC_HANDLER_NONE and \
                    not sync.register_sync_request(self.file_tag(segno), sync.SYNC_REQUEST):
                # The checkpointer's queue is full: sync the segment now.
                try:
                    fd.pg_fsync(f, path)
                except fd.DataSyncError as exc:
                    return SLRU_FSYNC_FAILED, exc.errno
        finally:
            fd.basic_close(f)
        return None

    def _report_io_error(self, pageno: int, xid: int, cause: int, err: int) -> None:
        """SlruReportIOError: release the control lock, raise PostgreSQL's error."""
        if lwlock_held_by_me(self.lock):
            lwlock_release(self.lock)
        raise slru_io_error(self.file_name(pageno // SLRU_PAGES_PER_SEGMENT),
                            (pageno % SLRU_PAGES_PER_SEGMENT) * BLCKSZ, xid, cause, err)

    # -- entry points that take the control lock themselves --------------------------------

    def read_page_readonly(self, pageno: int, xid: int) -> int:
        """SimpleLruReadPage_ReadOnly: find ``pageno`` under a shared hold of the
        control lock, else read it under an exclusive one. Returns with the
        control lock held in one mode or the other: the caller releases it (on
        an error it is released already)."""
        lock = self.lock
        lwlock_acquire(lock, LW_SHARED)
        slotno = self.hint
        if self.page_number[slotno] != pageno or self.page_status[slotno] < SLRU_PAGE_VALID:
            slotno = self._find(pageno)
            if slotno < 0 or self.page_status[slotno] < SLRU_PAGE_VALID:
                lwlock_release(lock)
                lwlock_acquire(lock, LW_EXCLUSIVE)
                return self.read_page(pageno, True, xid)
            self.hint = slotno
        self._recently_used(slotno)
        self.stats.blks_hit += 1
        return slotno

    def write_all(self, allow_redirtied: bool = True) -> None:
        """SimpleLruWriteAll (checkpoint): write every dirty page (each write
        registers its segment's fsync with the checkpointer), then fsync the
        directory so that new segment files are found after a crash."""
        self.stats.flushes += 1
        lwlock_acquire(self.lock, LW_EXCLUSIVE)
        for slotno in range(self.nslots):
            self._internal_write_page(slotno)
        lwlock_release(self.lock)
        if self.sync_handler != sync.SYNC_HANDLER_NONE:
            fd.fsync_fname(self.dir, isdir=True)

    def file_tag(self, segno: int) -> sync.FileTag:
        """INIT_SLRUFILETAG: a sync request's tag for one segment."""
        return sync.FileTag(self.sync_handler, 0, _NO_RNODE, segno)

    def sync_file_tag(self, tag: sync.FileTag) -> str:
        """SlruSyncFileTag: fsync one segment for process_sync_requests; returns
        its path. Raises OSError (a vanished file: ENOENT) or fd.DataSyncError."""
        path = self.file_name(tag.segno)
        f = fd.basic_open_file(path, os.O_RDWR)
        try:
            fd.pg_fsync(f, path)
        finally:
            fd.basic_close(f)
        return path

    def truncate(self, cutoff_page: int) -> None:
        """SimpleLruTruncate: forget resident pages before ``cutoff_page`` and
        remove every segment that lies wholly before it."""
        self.stats.truncates += 1
        lock = self.lock
        lwlock_acquire(lock, LW_EXCLUSIVE)
        precedes = self.page_precedes
        status = self.page_status
        restart = True
        while restart:
            restart = False
            if precedes(self.hdr[H_LATEST_PAGE], cutoff_page):
                lwlock_release(lock)
                elog.ereport(elog.LOG, f'could not truncate directory "{self.dir}": '
                                       "apparent wraparound")
                return
            for slotno in range(self.nslots):
                s = status[slotno]
                if s == SLRU_PAGE_EMPTY or not precedes(self.page_number[slotno], cutoff_page):
                    continue
                if s == SLRU_PAGE_VALID and not self.page_dirty[slotno]:
                    status[slotno] = SLRU_PAGE_EMPTY
                    continue
                # I/O in progress or dirty: settle it, then look at everything again.
                if s == SLRU_PAGE_VALID:
                    self._internal_write_page(slotno)
                else:
                    self._wait_io(slotno)
                restart = True
                break
        lwlock_release(lock)
        for segpage in self.scan_directory():
            if self.may_delete_segment(segpage, cutoff_page):
                self._delete_segment(segpage // SLRU_PAGES_PER_SEGMENT)

    def may_delete_segment(self, segpage: int, cutoff_page: int) -> bool:
        """SlruMayDeleteSegment: is every page of the segment before the cutoff?"""
        seg_last_page = segpage + SLRU_PAGES_PER_SEGMENT - 1
        return self.page_precedes(segpage, cutoff_page) and \
            self.page_precedes(seg_last_page, cutoff_page)

    def _delete_segment(self, segno: int) -> None:
        """SlruInternalDeleteSegment (errors ignored, as PostgreSQL)."""
        path = self.file_name(segno)
        if self.sync_handler != sync.SYNC_HANDLER_NONE:
            # A queued fsync of this segment must not fail on the missing file.
            sync.register_sync_request(self.file_tag(segno), sync.SYNC_FORGET_REQUEST,
                                       retry_on_error=True)
        elog.ereport(elog.DEBUG2, f'removing file "{path}"')
        try:
            fd.unlink(path)
        except OSError:
            pass

    def scan_directory(self) -> list[int]:
        """SlruScanDirectory: the first page number of every segment file present
        (names of 4 to 6 hex digits), in directory order."""
        try:
            names = os.listdir(fd.absolute_path(self.dir))
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            if 4 <= len(name) <= 6 and all(c in "0123456789ABCDEF" for c in name):
                out.append(int(name, 16) * SLRU_PAGES_PER_SEGMENT)
        return out

    def does_physical_page_exist(self, pageno: int) -> bool:
        """SimpleLruDoesPhysicalPageExist: is the page on disk (not just cached)?"""
        self.stats.blks_exists += 1
        segno, rpageno = divmod(pageno, SLRU_PAGES_PER_SEGMENT)
        path = self.file_name(segno)
        try:
            f = fd.basic_open_file(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise slru_io_error(path, rpageno * BLCKSZ, 0, SLRU_OPEN_FAILED,
                                exc.errno or 0) from None
        try:
            size = os.fstat(f).st_size
        finally:
            fd.basic_close(f)
        return size >= (rpageno + 1) * BLCKSZ


def slru_io_error(path: str, offset: int, xid: int, cause: int, err: int) -> PgError:
    """PostgreSQL's SlruReportIOError messages."""
    message = f"could not access status of transaction {xid}"
    sqlstate = fd.errcode_for_file_access(err) if err else "XX000"
    why = os.strerror(err) if err else None
    if cause == SLRU_OPEN_FAILED:
        detail = f'Could not open file "{path}": {why}.'
    elif cause == SLRU_SEEK_FAILED:
        detail = f'Could not seek in file "{path}" to offset {offset}: {why}.'
    elif cause == SLRU_READ_FAILED:
        detail = (f'Could not read from file "{path}" at offset {offset}: '
                  + (f"{why}." if err else "read too few bytes."))
    elif cause == SLRU_WRITE_FAILED:
        detail = (f'Could not write to file "{path}" at offset {offset}: '
                  + (f"{why}." if err else "wrote too few bytes."))
    elif cause == SLRU_FSYNC_FAILED:
        return PgError(sqlstate, message, detail=f'Could not fsync file "{path}": {why}.',
                       severity=fd.data_sync_elevel(elog.ERROR))
    elif cause == SLRU_CLOSE_FAILED:
        detail = f'Could not close file "{path}": {why}.'
    else:
        detail = None
    return PgError(sqlstate, message, detail=detail)
