"""Creating checkpoints — mirrors CreateCheckPoint, CheckPointGuts, LogCheckpointStart/End,
UpdateCheckPointDistanceEstimate, XLOGfileslop, RemoveOldXlogFiles, RemoveXlogFile and
PreallocXlogFiles in src/backend/access/transam/xlog.c, plus BufferSync, SyncOneBuffer
and the WritebackContext of src/backend/storage/buffer/bufmgr.c.

What a checkpoint does (create_check_point)
    1. Take the redo pointer: the WAL insert position, read while holding every WAL
       insertion lock, and publish it (RedoRecPtr), so every record inserted from
       now on judges full-page images against it. A checkpoint that is neither
       shutdown, end-of-recovery nor FORCEd is skipped when no WAL was written since
       the last checkpoint record ("checkpoint skipped because system is idle").
    2. Wait for processes that have begun a commit record but not yet marked it in
       pg_xact (PGPROC DELAY_CHKPT_START, shmem/proc.py): otherwise the commit could
       precede the redo pointer while CheckPointCLOG below misses its pg_xact update.
    3. CheckPointGuts: write pg_xact (CheckPointCLOG), then buffer_sync: mark every
       dirty permanent buffer BM_CHECKPOINT_NEEDED (every dirty buffer for shutdown,
       end-of-recovery and FLUSH_ALL checkpoints), sort them by (tablespace,
       relation, fork, block), and write each through bufmgr.flush_buffer, the
       tablespaces interleaved by progress. After every buffer the checkpointer's
       checkpoint_write_delay paces the writes so the write phase ends at
       checkpoint_completion_target of the way to the next checkpoint, judged both
       by time against checkpoint_timeout and by WAL against CheckPointSegments
       (IMMEDIATE checkpoints do not wait); it absorbs fsync requests while it
       waits and every WRITES_PER_ABSORB writes. Every checkpoint_flush_after
       written blocks the kernel is asked to start writeback (sync_file_range).
       Then process_sync_requests fsyncs every file written since the last
       checkpoint (storage/sync.py).
    4. Write the checkpoint record (redo pointer, next xid and oid, timeline, time),
       flush it, point pg_control at it, carry out unlinks deferred to after a
       checkpoint, and remove or recycle WAL segments older than the redo
       pointer's: keep min_wal_size worth, recycle (rename to a future segment
       name) up to the estimate of the next cycle, bounded by max_wal_size, remove
       the rest (XLOGfileslop).

Deliberately beyond PostgreSQL: the directories of every file synced in step 3
are fsynced too (base/<db>, global, ...), so that a relation file created since
the last checkpoint, whose creation record the recycling in step 4 may destroy,
cannot vanish in a power cut. It costs one fsync per database directory touched.

When and how often checkpoints happen (timed, requested, paced) is the
checkpointer's business (procs/checkpointer.py); this module holds the steps.
Writes of the buffers use the same functions as the background writer's LRU
scan (sync_one_buffer, WritebackContext), which live here for both.

Trace probes (GUC trace_probes, tusk's): each of PostgreSQL's checkpoint and
buffer probe points logs one line "trace probe NAME(arg=value, ...)" with the
arguments PostgreSQL's DTrace probe receives (probes.d): checkpoint__start/done
and buffer__checkpoint__*, buffer__sync__* here; buffer__flush__* and
buffer__write__dirty__* in storage/bufmgr.py; wal__buffer__write__dirty__* in
access/xlog.py; plus tusk's checkpoint__sync__absorb (procs/checkpointer.py)
and checkpoint__sync__file (storage/sync.py). Each of those modules keeps a
``probes_enabled`` flag that the assign hook of trace_probes sets in all of them
(set_trace_probes); a disabled probe costs the test of that global.
``tusk_ctl logs --probes`` counts the events and times the start/done pairs.

Where we differ: a failed data write raises (ERROR) out of create_check_point;
the checkpointer counts it in ckpt_failed and tries again later. The checkpoint
record is written by the checkpointer like any other record (there is no
LocalSetXLogInsertAllowed: the end-of-recovery checkpoint runs after recovery
has been declared done, before the postmaster admits connections).
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import heapq
import math
import os
import time
from dataclasses import dataclass

from access import clog, transam, xlog
from access import xlog_internal as xi
from catalog.pg_control import DBState, read_control_file, write_control_file
from shmem.buf_internals import (
    BM_CHECKPOINT_NEEDED,
    BM_DIRTY,
    BM_PERMANENT,
    BM_VALID,
    BUF_REFCOUNT_MASK,
    BUF_USAGECOUNT_MASK,
)
from shmem.lwlock import LW_SHARED, lwlock_acquire, lwlock_release
from shmem.lwlock import lwlock_release_clear_var as _release_clear_var
from shmem.proc import DELAY_CHKPT_COMPLETE, DELAY_CHKPT_START
from storage import bufmgr, fd, smgr, sync
from storage.relfilenode import RelFileNode, relpath
from utils import elog

CHECKPOINT_IS_SHUTDOWN = 0x0001
CHECKPOINT_END_OF_RECOVERY = 0x0002
CHECKPOINT_IMMEDIATE = 0x0004
CHECKPOINT_FORCE = 0x0008
CHECKPOINT_FLUSH_ALL = 0x0010
CHECKPOINT_WAIT = 0x0020
CHECKPOINT_REQUESTED = 0x0040
CHECKPOINT_CAUSE_XLOG = 0x0080
CHECKPOINT_CAUSE_TIME = 0x0100

# SyncOneBuffer's result bits.
BUF_WRITTEN = 0x01
BUF_REUSABLE = 0x02

SYNC_FILE_RANGE_WRITE = 2


def flags_description(flags: int) -> str:
    """The flag words of "checkpoint starting: ..." (LogCheckpointStart)."""
    words = [(CHECKPOINT_IS_SHUTDOWN, " shutdown"), (CHECKPOINT_END_OF_RECOVERY,
                                                     " end-of-recovery"),
             (CHECKPOINT_IMMEDIATE, " immediate"), (CHECKPOINT_FORCE, " force"),
             (CHECKPOINT_WAIT, " wait"), (CHECKPOINT_CAUSE_XLOG, " wal"),
             (CHECKPOINT_CAUSE_TIME, " time"), (CHECKPOINT_FLUSH_ALL, " flush-all")]
    return "".join(w for f, w in words if flags & f)


# -- trace probes ------------------------------------------------------------------------------

probes_enabled = False  # trace_probes; see set_trace_probes


def set_trace_probes(value: object) -> None:
    """trace_probes' assign hook: switch the probes of every module that has some."""
    global probes_enabled
    on = bool(value)
    probes_enabled = bufmgr.probes_enabled = xlog.probes_enabled = sync.probes_enabled = on


def refresh_trace_probes(settings) -> None:
    """Read trace_probes from a settings object (at process start and after a
    reload; settings objects of tests do not run assign hooks)."""
    try:
        value = settings.get("trace_probes")
    except Exception:  # a settings object without it (tools)
        value = False
    set_trace_probes(value)


def trace_probe(name: str, **args: object) -> None:
    """One probe point: a LOG line with PostgreSQL's probe name and arguments.
    Callers test ``probes_enabled`` first, so a disabled probe costs one test."""
    text = ", ".join(f"{k}={v}" for k, v in args.items())
    elog.log(f"trace probe {name}({text})")


# -- statistics of the running checkpoint (CheckpointStatsData) ---------------------------------

@dataclass
class CheckpointStatsData:
    start_t: float = 0.0
    write_t: float = 0.0
    sync_t: float = 0.0
    sync_end_t: float = 0.0
    end_t: float = 0.0
    bufs_written: int = 0
    segs_added: int = 0
    segs_removed: int = 0
    segs_recycled: int = 0
    sync_rels: int = 0
    longest_sync_us: float = 0.0
    agg_sync_us: float = 0.0


CheckpointStats = CheckpointStatsData()
# The checkpointer's estimates of WAL written between checkpoints, in bytes.
prev_checkpoint_distance = 0
checkpoint_distance_estimate = 0.0


def _msecs(start: float, stop: float) -> int:
    """TimestampDifferenceMilliseconds: whole milliseconds, rounded up."""
    if stop <= start:
        return 0
    return (round((stop - start) * 1_000_000) + 999) // 1000


def _checkpointer():
    from procs import checkpointer  # imports this module: look it up at call time

    return checkpointer


# -- WritebackContext (bufmgr.c) ------------------------------------------------------------------

def _load_sync_file_range():
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_sync_file_range = _load_sync_file_range()


def pg_flush_data(fdno: int, offset: int, nbytes: int) -> None:
    """pg_flush_data: ask the kernel to start writing back a range, without waiting.

    sync_file_range(SYNC_FILE_RANGE_WRITE) through ctypes where the C library has
    it (Linux); elsewhere posix_fadvise(POSIX_FADV_DONTNEED), which also starts
    writeback on most systems; with neither, nothing. A hint only: failures are
    a WARNING, and with fsync off nothing is done, as in PostgreSQL."""
    global _sync_file_range
    if not fd.enable_fsync:
        return
    if _sync_file_range is not None:
        if _sync_file_range(fdno, offset, nbytes, SYNC_FILE_RANGE_WRITE) == 0:
            return
        err = ctypes.get_errno()
        if err == errno.ENOSYS:
            _sync_file_range = None  # not implemented by this kernel: fall back
        else:
            elog.warning(f"could not flush dirty data: {os.strerror(err)}")
            return
    if hasattr(os, "posix_fadvise"):
        try:
            os.posix_fadvise(fdno, offset, nbytes, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass


class WritebackContext:
    """WritebackContext: remember the blocks written, and every ``flush_after``
    blocks (checkpoint_flush_after, bgwriter_flush_after; 0 disables) ask the
    kernel to write them back, sorted and merged into ranges (IssuePendingWritebacks)."""

    __slots__ = ("flush_after", "pending")

    def __init__(self, flush_after: int) -> None:
        self.flush_after = int(flush_after)
        self.pending: list[tuple[int, int, int, int, int]] = []

    def schedule_buffer_tag_for_writeback(self, tag: tuple[int, int, int, int, int]) -> None:
        if self.flush_after <= 0:
            return
        self.pending.append(tag)
        if len(self.pending) >= self.flush_after:
            self.issue_pending_writebacks()

    def issue_pending_writebacks(self) -> None:
        pending, self.pending = sorted(set(self.pending)), []
        i = 0
        while i < len(pending):
            spc, db, rel, fork, blk = pending[i]
            n = 1
            while i + n < len(pending) and pending[i + n][:4] == (spc, db, rel, fork) \
                    and pending[i + n][4] == blk + n:
                n += 1
            _smgr_writeback(RelFileNode(spc, db, rel), fork, blk, n)
            i += n


def _smgr_writeback(rnode: RelFileNode, fork: int, blkno: int, nblocks: int) -> None:
    """mdwriteback: only segments this process already has open (a dropped
    relation's file must not be reopened for a hint)."""
    from storage import md
    from storage.bufpage import BLCKSZ

    segs = smgr.smgr_open(rnode).md_seg_fds[fork]
    relseg = md.RELSEG_SIZE
    while nblocks > 0:
        segno, first = divmod(blkno, relseg)
        n = min(nblocks, relseg - first)
        if segno < len(segs) and segs[segno].is_open:
            pg_flush_data(segs[segno].fd, first * BLCKSZ, n * BLCKSZ)
        blkno += n
        nblocks -= n


# -- writing one buffer (SyncOneBuffer) ------------------------------------------------------------

def pin_buffer_locked(buf_id: int, state: int) -> None:
    """PinBuffer_Locked: pin a buffer whose header lock we hold (and release it),
    without touching its usage count. A process that already pins the buffer only
    counts one more private reference, as bufmgr's own pin does."""
    p = bufmgr.pool()
    if p.private_refcount[buf_id]:
        p.descs.unlock_buf_hdr(buf_id, state)
        p.private_refcount[buf_id] += 1
    else:
        bufmgr._pin_buffer_locked(p, buf_id, state)


def unpin_buffer(buf_id: int) -> None:
    """UnpinBuffer."""
    bufmgr._unpin_buffer(bufmgr.pool(), buf_id)


def sync_one_buffer(buf_id: int, skip_recently_used: bool,
                    wb_context: WritebackContext | None) -> int:
    """SyncOneBuffer: write a buffer if it is dirty; BUF_WRITTEN / BUF_REUSABLE bits.

    With ``skip_recently_used`` (the background writer) only a buffer with
    refcount and usage count 0 — the next victims of the clock sweep — is written.
    A write error propagates (the buffer keeps BM_IO_ERROR and stays dirty)."""
    p = bufmgr.pool()
    descs = p.descs
    result = 0
    state = descs.lock_buf_hdr(buf_id)
    if not state & BUF_REFCOUNT_MASK and not state & BUF_USAGECOUNT_MASK:
        result = BUF_REUSABLE
    elif skip_recently_used:
        descs.unlock_buf_hdr(buf_id, state)
        return result
    if not state & BM_VALID or not state & BM_DIRTY:
        descs.unlock_buf_hdr(buf_id, state)
        return result
    pin_buffer_locked(buf_id, state)
    content_lock = descs.content_locks[buf_id]
    try:
        lwlock_acquire(content_lock, LW_SHARED)
        try:
            written = bufmgr.flush_buffer(buf_id)
            tag = descs.tag(buf_id)
        finally:
            lwlock_release(content_lock)
    finally:
        unpin_buffer(buf_id)
    if not written:
        return result
    if wb_context is not None:
        wb_context.schedule_buffer_tag_for_writeback(tag)
    return result | BUF_WRITTEN


# -- BufferSync ----------------------------------------------------------------------------------

def buffer_sync(flags: int, settings=None) -> int:
    """BufferSync: write every buffer dirty at the start of the checkpoint; returns
    how many were written."""
    p = bufmgr.pool()
    descs = p.descs
    nbuffers = p.nbuffers
    mask = BM_DIRTY
    if not flags & (CHECKPOINT_IS_SHUTDOWN | CHECKPOINT_END_OF_RECOVERY | CHECKPOINT_FLUSH_ALL):
        mask |= BM_PERMANENT
    # Mark what must be written. The unlocked look first is safe: a change that
    # precedes the redo pointer set BM_DIRTY (under the header lock) before its WAL
    # record was inserted, so before the redo pointer was taken.
    items: list[tuple[int, int, int, int, int]] = []
    state_of = descs.state
    for buf_id in range(nbuffers):
        if state_of(buf_id) & mask != mask:
            continue
        state = descs.lock_buf_hdr(buf_id)
        if state & mask == mask:
            state |= BM_CHECKPOINT_NEEDED
            spc, _db, rel, fork, blk = descs.tag(buf_id)
            items.append((spc, rel, fork, blk, buf_id))
        descs.unlock_buf_hdr(buf_id, state)
    num_to_scan = len(items)
    if not num_to_scan:
        return 0
    flush_after = settings.get("checkpoint_flush_after") if settings is not None else 0
    wb_context = WritebackContext(flush_after)
    if probes_enabled:
        trace_probe("buffer__sync__start", NBuffers=nbuffers, num_to_scan=num_to_scan)
    items.sort()
    # Interleave the tablespaces so each progresses at the same rate (BufferSync's
    # binary heap of CkptTsStatus, keyed by progress).
    per_ts: list[list[int]] = []  # [first index, count, progress slice]
    ts_of: dict[int, int] = {}
    for i, item in enumerate(items):
        t = ts_of.get(item[0])
        if t is None:
            t = ts_of[item[0]] = len(per_ts)
            per_ts.append([i, 0])
        per_ts[t][1] += 1
    heap = [(0.0, t) for t in range(len(per_ts))]
    slices = [num_to_scan / count for _first, count in per_ts]
    next_index = [first for first, _count in per_ts]
    remaining = [count for _first, count in per_ts]
    ckpt = _checkpointer()
    num_processed = num_written = 0
    while heap:
        progress, t = heap[0]
        buf_id = items[next_index[t]][4]
        num_processed += 1
        # An unlocked test, as PostgreSQL's: if someone else writes the buffer
        # meanwhile, sync_one_buffer finds it clean and does nothing.
        if state_of(buf_id) & BM_CHECKPOINT_NEEDED:
            if sync_one_buffer(buf_id, False, wb_context) & BUF_WRITTEN:
                if probes_enabled:
                    trace_probe("buffer__sync__written", buf_id=buf_id)
                ckpt.pgstat_count_checkpointer("buffers_checkpoint")
                num_written += 1
        next_index[t] += 1
        remaining[t] -= 1
        if remaining[t]:
            heapq.heapreplace(heap, (progress + slices[t], t))
        else:
            heapq.heappop(heap)
        ckpt.checkpoint_write_delay(flags, num_processed / num_to_scan)
    wb_context.issue_pending_writebacks()
    if probes_enabled:
        trace_probe("buffer__sync__done", NBuffers=nbuffers, num_written=num_written,
                    num_to_scan=num_to_scan)
    CheckpointStats.bufs_written += num_written
    return num_written


def buffer_sync_all() -> int:
    """Write every dirty buffer at once (an unpaced BufferSync of all of them)."""
    return buffer_sync(CHECKPOINT_IS_SHUTDOWN | CHECKPOINT_IMMEDIATE)


# -- CreateCheckPoint ---------------------------------------------------------------------------------

def _take_redo_pointer(last_checkpoint: int, skip_if_idle: bool,
                       full_page_writes: bool) -> int:
    """The redo pointer: the insert position, read holding every WAL insertion lock
    and published to inserters (Insert->RedoRecPtr) in the same hold, so a record
    either precedes the redo pointer or is built knowing it. Returns 0 when
    ``skip_if_idle`` and the last record inserted is the last checkpoint's."""
    c = xlog.ctl()
    w, geom = c.w, c.geom
    xlog.acquire_all_insert_locks(c)
    try:
        with c.insertpos_lck.held():
            cur, prev = w[xlog.W_CURR_BYTE_POS], w[xlog.W_PREV_BYTE_POS]
        if skip_if_idle and geom.byte_pos_to_rec_ptr(prev) == last_checkpoint:
            return 0
        # The next record's start: past the page header if at a page boundary.
        redo = geom.byte_pos_to_rec_ptr(cur)
        w[xlog.W_INSERT_REDO] = redo
        w[xlog.W_INSERT_FPW] = int(full_page_writes)
    finally:
        for i, lock in enumerate(c.insert_locks):
            _release_clear_var(lock, c.inserting_at[i], 0)
    with c.info_lck.held():
        w[xlog.W_REDO_REC_PTR] = redo
    return redo


def _wait_for_delaying_procs(flag: int) -> None:
    """Wait until every process that delays checkpoints with ``flag`` now has
    finished (GetVirtualXIDsDelayingChkpt + HaveVirtualXIDsDelayingChkpt)."""
    procs = xlog.ctl().procs
    if procs is None:
        return
    vxids = procs.get_virtual_xids_delaying_chkpt(flag)
    while vxids and procs.have_virtual_xids_delaying_chkpt(vxids, flag):
        time.sleep(0.01)


def log_checkpoint_start(flags: int) -> None:
    elog.log(f"checkpoint starting:{flags_description(flags)}")


def log_checkpoint_end(settings, nbuffers: int) -> None:
    """LogCheckpointEnd: add the write and sync times to pg_stat_bgwriter, then
    (log_checkpoints) the "checkpoint complete" line, figures as PostgreSQL's."""
    st = CheckpointStats
    st.end_t = time.monotonic()
    write_msecs = _msecs(st.write_t, st.sync_t)
    sync_msecs = _msecs(st.sync_t, st.sync_end_t)
    ckpt = _checkpointer()
    ckpt.pgstat_count_checkpointer("checkpoint_write_time", write_msecs)
    ckpt.pgstat_count_checkpointer("checkpoint_sync_time", sync_msecs)
    if not settings.get("log_checkpoints"):
        return
    total_msecs = _msecs(st.start_t, st.end_t)
    longest_msecs = int((st.longest_sync_us + 999) // 1000)
    average_us = st.agg_sync_us / st.sync_rels if st.sync_rels else 0
    average_msecs = int((average_us + 999) // 1000)

    def s(ms: int) -> str:
        return f"{ms // 1000}.{ms % 1000:03d} s"

    elog.log(
        f"checkpoint complete: wrote {st.bufs_written} buffers "
        f"({st.bufs_written * 100 / nbuffers:.1f}%); "
        f"{st.segs_added} WAL file(s) added, {st.segs_removed} removed, "
        f"{st.segs_recycled} recycled; write={s(write_msecs)}, sync={s(sync_msecs)}, "
        f"total={s(total_msecs)}; sync files={st.sync_rels}, longest={s(longest_msecs)}, "
        f"average={s(average_msecs)}; distance={int(prev_checkpoint_distance / 1024.0)} kB, "
        f"estimate={int(checkpoint_distance_estimate / 1024.0)} kB")


def update_check_point_distance_estimate(nbytes: int) -> None:
    """UpdateCheckPointDistanceEstimate: a moving average that follows increases
    at once and decreases slowly (90/10)."""
    global prev_checkpoint_distance, checkpoint_distance_estimate
    prev_checkpoint_distance = nbytes
    if checkpoint_distance_estimate < nbytes:
        checkpoint_distance_estimate = float(nbytes)
    else:
        checkpoint_distance_estimate = 0.90 * checkpoint_distance_estimate + 0.10 * nbytes


def _update_checkpoint_display(flags: int, reset: bool) -> None:
    """update_checkpoint_display: the process title, for shutdown and
    end-of-recovery checkpoints only."""
    if not flags & (CHECKPOINT_END_OF_RECOVERY | CHECKPOINT_IS_SHUTDOWN):
        return
    from procs import child

    if child.env is None:
        return
    base = child.backend_type
    if reset:
        child.set_ps_display(base)
        return
    what = ("end-of-recovery " if flags & CHECKPOINT_END_OF_RECOVERY else "") + \
        ("shutdown " if flags & CHECKPOINT_IS_SHUTDOWN else "") + "checkpoint"
    child.set_ps_display(f"{base} performing {what}")


def check_point_guts(redo: int, flags: int, settings) -> None:
    """CheckPointGuts: pg_xact and the buffer pool, then every queued fsync."""
    st = CheckpointStats
    if probes_enabled:
        trace_probe("buffer__checkpoint__start", flags=flags)
    st.write_t = time.monotonic()
    clog.check_point_clog()
    buffer_sync(flags, settings)
    if probes_enabled:
        trace_probe("buffer__checkpoint__sync__start")
    st.sync_t = time.monotonic()
    sync._absorb()  # so that the directories below cover the queued requests too
    dirs = {os.path.dirname(relpath(t.rnode, t.forknum)) for t in sync.pending_sync_tags()
            if t.handler == sync.SYNC_HANDLER_MD}  # pg_xact's: by check_point_clog
    stats = sync.process_sync_requests(bool(settings.get("log_checkpoints")))
    for d in sorted(dirs):  # beyond PostgreSQL: see the module docstring
        if fd.file_exists(d):  # DROP DATABASE may have removed it meanwhile
            fd.fsync_fname(d, isdir=True)
    st.sync_end_t = time.monotonic()
    st.sync_rels = stats.files
    st.longest_sync_us = stats.longest_us
    st.agg_sync_us = stats.total_us
    if probes_enabled:
        trace_probe("buffer__checkpoint__done")


def create_check_point(datadir: str, settings, flags: int) -> int:
    """CreateCheckPoint; returns the checkpoint record's LSN, 0 if skipped as idle.

    Raises on a failed write (PgError, ERROR) or fsync (fd.DataSyncError, PANIC);
    then nothing after the failure happened: pg_control still points at the
    previous checkpoint."""
    global CheckpointStats
    shutdown = bool(flags & (CHECKPOINT_IS_SHUTDOWN | CHECKPOINT_END_OF_RECOVERY))
    if xlog.recovery_in_progress() and not flags & CHECKPOINT_END_OF_RECOVERY:
        raise elog.PgError("55000", "can't create a checkpoint during recovery")
    refresh_trace_probes(settings)
    CheckpointStats = st = CheckpointStatsData()
    st.start_t = time.monotonic()
    fsync_on = bool(settings.get("fsync"))
    cf = read_control_file(datadir)
    sync.sync_pre_checkpoint()
    if flags & CHECKPOINT_IS_SHUTDOWN:
        cf.state = DBState.DB_SHUTDOWNING
        write_control_file(datadir, cf, do_sync=fsync_on)
    fpw = bool(settings.get("full_page_writes"))
    skip_if_idle = not flags & (CHECKPOINT_IS_SHUTDOWN | CHECKPOINT_END_OF_RECOVERY
                                | CHECKPOINT_FORCE)
    redo = _take_redo_pointer(cf.check_point, skip_if_idle, fpw)
    if not redo:
        elog.debug1("checkpoint skipped because system is idle")
        return 0
    if settings.get("log_checkpoints"):
        log_checkpoint_start(flags)
    _update_checkpoint_display(flags, False)
    if probes_enabled:
        trace_probe("checkpoint__start", flags=flags)
    prior_redo = cf.check_point_copy.redo
    ck = dataclasses.replace(cf.check_point_copy)
    ck.redo = redo
    ck.full_page_writes = fpw
    ck.time = int(time.time())
    ck.next_xid, ck.next_oid, ck.oldest_xid, ck.oldest_xid_db = \
        transam.checkpoint_values(shutdown)
    _wait_for_delaying_procs(DELAY_CHKPT_START)
    check_point_guts(redo, flags, settings)
    _wait_for_delaying_procs(DELAY_CHKPT_COMPLETE)
    info = xi.XLOG_CHECKPOINT_SHUTDOWN if shutdown else xi.XLOG_CHECKPOINT_ONLINE
    rec = xlog.build_simple_record(xi.RM_XLOG_ID, info, xlog.checkpoint_record_data(ck))
    end = xlog.xlog_insert_record(rec)
    xlog.xlog_flush(end)
    recptr = xlog.proc_last_rec_ptr
    if shutdown and redo != recptr:
        elog.ereport(elog.PANIC, "concurrent write-ahead log activity while database "
                                 "system is shutting down")
        os.abort()
    cf.check_point = recptr
    cf.check_point_copy = ck
    if flags & CHECKPOINT_IS_SHUTDOWN:
        cf.state = DBState.DB_SHUTDOWNED
    elif flags & CHECKPOINT_END_OF_RECOVERY:
        cf.state = DBState.DB_IN_PRODUCTION
    cf.min_recovery_point = 0
    cf.min_recovery_point_tli = 0
    write_control_file(datadir, cf, do_sync=fsync_on)
    sync.sync_post_checkpoint()
    if prior_redo:
        update_check_point_distance_estimate(redo - prior_redo)
    geom = xlog.geometry()
    remove_old_xlog_files(geom.segno(redo) - 1, redo, end, settings)
    if not shutdown:
        prealloc_xlog_files(end)
    nbuffers = bufmgr.pool().nbuffers
    log_checkpoint_end(settings, nbuffers)
    _update_checkpoint_display(flags, True)
    if probes_enabled:
        trace_probe("checkpoint__done", bufs_written=st.bufs_written, NBuffers=nbuffers,
                    segs_added=st.segs_added, segs_removed=st.segs_removed,
                    segs_recycled=st.segs_recycled)
    return recptr


# -- WAL segments: recycling and removal ---------------------------------------------------------

def _xsegs(size_mb: int, seg_size: int) -> int:
    """ConvertToXSegs: megabytes in whole segments."""
    return int(size_mb) // (seg_size // (1024 * 1024))


def check_point_segments(settings) -> int:
    """CalculateCheckpointSegments: max_wal_size in segments / (1 + completion target)."""
    seg_size = xlog.geometry().seg_size
    target = _xsegs(settings.get("max_wal_size"), seg_size) / \
        (1.0 + float(settings.get("checkpoint_completion_target")))
    return max(1, int(target))


def xlog_file_slop(lastredoptr: int, settings) -> int:
    """XLOGfileslop: up to which segment number old segments are recycled."""
    seg_size = xlog.geometry().seg_size
    min_segno = lastredoptr // seg_size + _xsegs(settings.get("min_wal_size"), seg_size) - 1
    max_segno = lastredoptr // seg_size + _xsegs(settings.get("max_wal_size"), seg_size) - 1
    distance = (1.0 + float(settings.get("checkpoint_completion_target"))) \
        * checkpoint_distance_estimate * 1.10
    recycle_segno = math.ceil((lastredoptr + distance) / seg_size)
    return max(min_segno, min(recycle_segno, max_segno))


def remove_old_xlog_files(segno: int, lastredoptr: int, endptr: int, settings) -> None:
    """RemoveOldXlogFiles: remove or recycle every segment up to ``segno`` (any
    timeline), in name order."""
    geom = xlog.geometry()
    pg_wal = os.path.join(xlog.datadir, "pg_wal")
    last_name = geom.file_name(0, segno) if segno >= 0 else None
    if last_name is None:
        return
    elog.debug2(f"attempting to remove WAL segments older than log file {last_name}")
    endlogsegno = geom.segno(endptr)
    recycle_segno = xlog_file_slop(lastredoptr, settings)
    try:
        names = sorted(os.listdir(pg_wal))
    except OSError as exc:
        elog.log(f'could not open directory "pg_wal": {exc.strerror}')
        return
    changed = False
    for name in names:
        if len(name) != 24 or any(ch not in "0123456789ABCDEF" for ch in name):
            continue
        if name[8:] > last_name[8:]:
            continue
        path = os.path.join(pg_wal, name)
        if (endlogsegno <= recycle_segno and os.path.isfile(path)
                and not os.path.islink(path)):
            new_segno = _install_xlog_file_segment(endlogsegno, path, recycle_segno)
            if new_segno is not None:
                elog.debug2(f'recycled write-ahead log file "{name}"')
                CheckpointStats.segs_recycled += 1
                endlogsegno = new_segno + 1
                changed = True
                continue
        elog.debug2(f'removing write-ahead log file "{name}"')
        try:
            fd.unlink(path)
        except OSError as exc:
            elog.log(f'could not remove file "pg_wal/{name}": {exc.strerror}')
            continue
        CheckpointStats.segs_removed += 1
        changed = True
    if changed:
        fd.fsync_fname(pg_wal, isdir=True)


def _install_xlog_file_segment(segno: int, tmppath: str, max_segno: int) -> int | None:
    """InstallXLogFileSegment with find_free: give ``tmppath`` the first free segment
    name from ``segno`` up to ``max_segno``; returns the number used, or None.

    link + unlink, never rename: rename would replace a segment the walwriter
    has just created under that name, and someone may already be writing it."""
    while segno <= max_segno:
        path = xlog.wal_file_path(segno)
        if not os.path.exists(path):
            try:
                fd.link(tmppath, path)
            except FileExistsError:
                pass
            except OSError as exc:
                elog.log(f'could not link file "{tmppath}" to "{path}": {exc.strerror}')
                return None
            else:
                try:
                    fd.unlink(tmppath)
                except OSError:
                    fd.unlink(path)
                    return None
                return segno
        segno += 1
    return None


def prealloc_xlog_files(endptr: int) -> None:
    """PreallocXlogFiles: create the next segment once 75% of this one is used."""
    geom = xlog.geometry()
    segno = geom.segno_of_end(endptr)
    if (endptr - 1) % geom.seg_size >= int(0.75 * geom.seg_size):
        if xlog.create_segment_file(segno + 1):
            CheckpointStats.segs_added += 1


def shutdown_xlog(datadir: str, settings) -> None:
    """ShutdownXLOG: the shutdown checkpoint, after which pg_control says 'shut down'.

    If recovery never finished (a shutdown during crash recovery) there is nothing
    safe to write: PostgreSQL would make a restartpoint; tusk leaves pg_control
    saying "in crash recovery", so the next start replays again."""
    elog.log("shutting down")
    if xlog.recovery_in_progress():
        return
    create_check_point(datadir, settings, CHECKPOINT_IS_SHUTDOWN | CHECKPOINT_IMMEDIATE)
    xlog.close_log_file()


def _register_assign_hooks() -> None:
    from conf.guc import register_assign_hook

    register_assign_hook("trace_probes", set_trace_probes)


_register_assign_hooks()
