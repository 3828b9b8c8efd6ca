"""The checkpointer — mirrors src/backend/postmaster/checkpointer.c (PostgreSQL 15).

The checkpointer performs every checkpoint: a timed one when checkpoint_timeout
has passed since the last, and one whenever another process asks for it. It
also owns the list of files to fsync at the next checkpoint: processes that
write data files forward "this segment needs an fsync" to it through a shared
queue, so that writers never wait for the disk.

Protocol between processes
--------------------------
CheckpointerShmem (layout in shmem/checkpointer_shmem.py) holds:

checkpointer_pid
    Set by the checkpointer when it starts, cleared when it exits. Others wake
    it by setting its latch (procs.child.set_latch: SIGURG).

ckpt_started, ckpt_done, ckpt_failed, ckpt_flags — under ckpt_lck (a spinlock)
    A requester (request_checkpoint) ORs its CHECKPOINT_* flags into ckpt_flags,
    notes ckpt_started and ckpt_failed in the same hold, and sets the latch. The
    checkpointer takes the flags (clearing them) and increments ckpt_started in
    one hold, then broadcasts start_cv; when the checkpoint is over it sets
    ckpt_done = ckpt_started (having first incremented ckpt_failed if it failed)
    and broadcasts done_cv. A requester that passed CHECKPOINT_WAIT sleeps on
    start_cv until ckpt_started differs from what it noted — that checkpoint
    includes its flags — then on done_cv until ckpt_done reaches the new value;
    if ckpt_failed moved meanwhile its checkpoint failed ("checkpoint request
    failed"). Requests that arrive during a checkpoint are merged into the next
    one; an IMMEDIATE request makes a paced checkpoint in progress finish at full
    speed (immediate_checkpoint_requested).

the fsync request queue — num_requests of max_requests (NBuffers) entries, under
CheckpointerCommLock
    forward_sync_request, storage.sync's forward hook in every process but the
    checkpointer, appends (FileTag, request type) and counts the write in
    num_backend_writes (pg_stat_bgwriter's buffers_backend); once the queue is
    half full it wakes the checkpointer. When the queue is full the sender first
    compacts it (compact_checkpointer_request_queue: an entry followed later by
    an identical one is dropped); if it is still full — or no checkpointer runs —
    it returns False, and the sender fsyncs the file itself (counted in
    num_backend_fsync: buffers_backend_fsync) or, for FORGET and UNLINK requests,
    which cannot be done locally, retries every 10 ms (storage/sync.py). Requests
    name relation segments (SYNC_HANDLER_MD) and pg_xact segments
    (SYNC_HANDLER_CLOG, from access/slru.py). A process that is no postmaster
    child and finds no checkpointer keeps its requests in its own table instead,
    as PostgreSQL's standalone backend does.
    absorb_sync_requests, run by the checkpointer at every loop, while it paces a
    checkpoint, every WRITES_PER_ABSORB buffer writes and every FSYNCS_PER_ABSORB
    fsyncs of process_sync_requests, empties the queue into its private
    pending-operations table (storage/sync.py) and moves the two counters into
    pg_stat_bgwriter.

Who asks for checkpoints
    - whichever process completes a WAL segment, when XLogCheckpointNeeded finds
      that the segments since the redo pointer reach CheckPointSegments
      (max_wal_size in segments / (1 + checkpoint_completion_target), at least
      1): request_checkpoint(CAUSE_XLOG), from access.xlog's segment_completed_hook;
    - the startup process at the end of crash recovery: END_OF_RECOVERY |
      IMMEDIATE | WAIT;
    - the CHECKPOINT command (IMMEDIATE | FORCE | WAIT), once SQL exists;
    - ``tusk_ctl checkpoint``, which maps shared memory read-only and so cannot
      set flags: it sends SIGINT, which the checkpointer takes as a CHECKPOINT
      command, and polls ckpt_started / ckpt_done / ckpt_failed.

Signals: SIGINT a checkpoint request (above); SIGUSR2, sent by the postmaster
once every other process has left, the shutdown checkpoint and exit 0; SIGTERM
is ignored (the checkpointer must outlive the backends); SIGHUP reload; SIGQUIT
exit at once; SIGURG is the latch.

A checkpoint that fails with an ERROR (a data write failed) is logged, counted
in ckpt_failed, and tried again at the next occasion: the time of the last
checkpoint is not advanced, so a timed one comes right after a second's pause.
A failed fsync is a PANIC: only crash recovery from WAL is safe after it.

pg_stat_bgwriter: checkpoints_timed counts timed checkpoints, skipped ones
included (as PostgreSQL); checkpoints_req requested ones; the write and sync
times and buffers_checkpoint come from create_check_point.

Where we differ: PostgreSQL's requesters send SIGINT too, whose handler only
sets the latch; here requesters set the latch directly, and SIGINT itself is
the request of an outside tool. Restartpoints (checkpoints during recovery)
are not implemented: a timed checkpoint due during crash recovery is skipped.
The checkpointer also wires, in every process, the hooks that connect the
buffer pool and WAL to it and to the background writer (attach_checkpointer_shmem).
"""

from __future__ import annotations

import os
import signal
import time

from access import xlog
from access import xlogcheckpoint as xc
from access.xlogcheckpoint import (
    CHECKPOINT_CAUSE_TIME,
    CHECKPOINT_CAUSE_XLOG,
    CHECKPOINT_END_OF_RECOVERY,
    CHECKPOINT_FORCE,
    CHECKPOINT_IMMEDIATE,
    CHECKPOINT_REQUESTED,
    CHECKPOINT_WAIT,
    create_check_point,
    shutdown_xlog,
)
from procs import child, interrupts
from shmem import checkpointer_shmem as cks
from shmem.condition_variable import (
    ConditionVariable,
    cv_broadcast,
    cv_cancel_sleep,
    cv_prepare_to_sleep,
    cv_timed_sleep,
)
from shmem.lwlock import (
    LW_EXCLUSIVE,
    WAIT_EVENT_CHECKPOINT_DONE,
    WAIT_EVENT_CHECKPOINT_START,
    get_named_lwlock,
    lwlock_acquire,
    lwlock_release,
    lwlock_release_all,
)
from shmem.lwlock import _ctx as lwlock_ctx
from shmem.proc import BackendType, ProcArray
from shmem.segment import ShmemSegment
from shmem.spin import SpinLock
from storage import bufmgr, smgr, sync
from storage.relfilenode import RelFileNode
from utils import elog

WRITES_PER_ABSORB = 1000
MAX_SIGNAL_TRIES = 600  # request_checkpoint: 0.1 s apart, a minute in all
CHECKPOINT_COMMAND_FLAGS = CHECKPOINT_IMMEDIATE | CHECKPOINT_FORCE | CHECKPOINT_WAIT
_REQ_SIZE = cks.REQUEST.size


class _CheckpointerShmem:
    """This process's handles on CheckpointerShmem."""

    __slots__ = ("seg", "w", "lck", "comm_lock", "requests", "start_cv", "done_cv", "procs")

    def __init__(self, seg: ShmemSegment, procs: ProcArray | None) -> None:
        self.seg = seg
        region = seg.region(cks.REGION)
        self.w = region[:cks.REQUESTS_OFFSET].cast("q")
        self.requests = region[cks.REQUESTS_OFFSET:]
        self.lck = SpinLock(seg.sems[seg.sem_base.get(cks.__name__, 0)])
        self.comm_lock = get_named_lwlock("CheckpointerCommLock")
        self.start_cv = ConditionVariable(region, cks.START_CV_OFFSET, 0)
        self.done_cv = ConditionVariable(region, cks.DONE_CV_OFFSET, 1)
        self.procs = procs


_cs: _CheckpointerShmem | None = None
_settings = None
am_checkpointer = False
am_bgwriter = False

# Set by signal handlers.
shutdown_xlog_pending = False
checkpoint_requested = False  # SIGINT: a CHECKPOINT command from outside

# The checkpointer's pacing state (checkpointer.c's statics).
ckpt_active = False
ckpt_start_recptr = 0
ckpt_start_time = 0.0
ckpt_cached_elapsed = 0.0
ckpt_segments = 1  # CheckPointSegments, refreshed at each checkpoint and reload
absorb_counter = WRITES_PER_ABSORB
last_checkpoint_time = 0.0
_datadir = ""
_last_ckpt_done_seen = 0  # FirstCallSinceLastCheckpoint's


def _shm() -> _CheckpointerShmem:
    assert _cs is not None, "CheckpointerShmem not attached"
    return _cs


def _current() -> _CheckpointerShmem | None:
    """The attachment, if this process still uses its segment: hooks left behind
    by a segment the process has detached from (tests, reinitialisation) then do
    nothing instead of touching stale memory and semaphores."""
    cs = _cs
    if cs is None or lwlock_ctx.seg is not cs.seg:
        return None
    return cs


# -- attaching (every process) ---------------------------------------------------------------

def attach_checkpointer_shmem(seg: ShmemSegment, settings, btype: BackendType,
                              procs: ProcArray | None = None) -> None:
    """Bind this process to CheckpointerShmem and connect the hooks through which
    the rest of the server reaches the checkpointer and the background writer:

    - storage.sync's forward hook (forward_sync_request) everywhere but in the
      checkpointer, which keeps requests in its own table and absorbs the queue;
    - access.xlog's segment_completed_hook: XLogCheckpointNeeded;
    - the buffer strategy's wake_bgwriter (StrategyNotifyBgWriter's wake-up);
    - bufmgr's xlog_flush_hook (WAL before data), unless already installed;
    - the trace_probes flags of every module with probes.
    """
    global _cs, _settings, am_checkpointer, am_bgwriter
    _cs = _CheckpointerShmem(seg, procs)
    _settings = settings
    am_checkpointer = btype == BackendType.B_CHECKPOINTER
    am_bgwriter = btype == BackendType.B_BG_WRITER
    if am_checkpointer:
        sync.set_forward_hook(None)
        sync.set_absorb_hook(absorb_sync_requests)
    else:
        sync.set_forward_hook(forward_sync_request)
    xlog.segment_completed_hook = _segment_completed
    p = bufmgr._pool
    if p is not None:
        p.strategy.wake_bgwriter = _wake_bgwriter
    if bufmgr.xlog_flush_hook is None:
        bufmgr.xlog_flush_hook = xlog.xlog_flush
    xc.refresh_trace_probes(settings)


def _wake_bgwriter(procno: int) -> None:
    """StrategyGetBuffer's wake-up of a hibernating background writer."""
    cs = _current()
    procs = cs.procs if cs is not None else None
    if procs is not None:
        pid = procs.pid_of_slot(procno)
        if pid > 0:
            child.set_latch(pid)


# -- statistics ------------------------------------------------------------------------------------

def pgstat_count_checkpointer(field: str, n: int = 1) -> None:
    """Add to one pg_stat_bgwriter counter (each has a single writing process)."""
    cs = _cs
    if cs is not None:
        cs.w[cks.STAT[field]] += n


pgstat_count_bgwriter = pgstat_count_checkpointer


def pgstat_reset_bgwriter() -> None:
    """pg_stat_reset_shared('bgwriter'): the current values become the new zero."""
    cs = _shm()
    w = cs.w
    with cs.lck.held():
        for i in range(len(cks.STAT_FIELDS)):
            w[cks.W_STATS_BASE + i] = w[cks.W_STATS + i]
        w[cks.W_STATS_RESET] = int(time.time() * 1_000_000)


def read_bgwriter_stats() -> dict[str, int | float]:
    """pg_stat_bgwriter, from this process's mapping."""
    cs = _shm()
    out: dict[str, int | float] = {}
    w = cs.w
    for i, name in enumerate(cks.STAT_FIELDS):
        out[name] = w[cks.W_STATS + i] - w[cks.W_STATS_BASE + i]
    out["buffers_backend"] += w[cks.W_NUM_BACKEND_WRITES]
    out["buffers_backend_fsync"] += w[cks.W_NUM_BACKEND_FSYNC]
    out["stats_reset"] = w[cks.W_STATS_RESET] / 1_000_000
    return out


def checkpoint_counters() -> tuple[int, int, int]:
    """(ckpt_started, ckpt_done, ckpt_failed)."""
    cs = _shm()
    with cs.lck.held():
        return cs.w[cks.W_CKPT_STARTED], cs.w[cks.W_CKPT_DONE], cs.w[cks.W_CKPT_FAILED]


def first_call_since_last_checkpoint() -> bool:
    """FirstCallSinceLastCheckpoint: has a checkpoint completed since the last call?"""
    global _last_ckpt_done_seen
    cs = _shm()
    with cs.lck.held():
        new_done = cs.w[cks.W_CKPT_DONE]
    first = new_done != _last_ckpt_done_seen
    _last_ckpt_done_seen = new_done
    return first


# -- requesting a checkpoint (any process) --------------------------------------------------------

def request_checkpoint(flags: int) -> None:
    """RequestCheckpoint: ask the checkpointer for a checkpoint with ``flags``;
    with CHECKPOINT_WAIT, return when it has completed (raise PgError if it
    failed). A process that is no postmaster child and finds no checkpointer
    running (a standalone tool) performs the checkpoint itself."""
    cs = _shm()
    w = cs.w
    if child.env is None and w[cks.W_CHECKPOINTER_PID] == 0:
        create_check_point(xlog.datadir, _settings, flags | CHECKPOINT_IMMEDIATE)
        smgr.smgr_close_all()
        return
    with cs.lck.held():
        old_failed = w[cks.W_CKPT_FAILED]
        old_started = w[cks.W_CKPT_STARTED]
        w[cks.W_CKPT_FLAGS] |= flags | CHECKPOINT_REQUESTED
    ntries = 0
    while True:
        pid = w[cks.W_CHECKPOINTER_PID]
        problem = None
        if pid == 0:
            problem = "could not signal for checkpoint: checkpointer is not running"
        else:
            try:
                os.kill(pid, signal.SIGURG)  # SetLatch
                break
            except OSError as exc:
                problem = f"could not signal for checkpoint: {exc.strerror}"
        if ntries >= MAX_SIGNAL_TRIES or not flags & CHECKPOINT_WAIT:
            if flags & CHECKPOINT_WAIT:
                raise elog.PgError("XX000", problem)
            elog.log(problem)
            break
        ntries += 1
        time.sleep(0.1)
    if not flags & CHECKPOINT_WAIT:
        return
    new_started = _wait_counter(cs.start_cv, WAIT_EVENT_CHECKPOINT_START,
                                lambda: w[cks.W_CKPT_STARTED] != old_started,
                                cks.W_CKPT_STARTED)
    _wait_counter(cs.done_cv, WAIT_EVENT_CHECKPOINT_DONE,
                  lambda: w[cks.W_CKPT_DONE] - new_started >= 0, cks.W_CKPT_DONE)
    with cs.lck.held():
        new_failed = w[cks.W_CKPT_FAILED]
    if new_failed != old_failed:
        raise elog.PgError("XX000", "checkpoint request failed",
                           hint="Consult recent messages in the server log for details.")


def _wait_counter(cv: ConditionVariable, wait_event: int, done, word: int) -> int:
    """Sleep on ``cv`` until ``done()`` holds (tested under ckpt_lck); returns the
    value of ``word`` then. Wakes every second to notice a vanished checkpointer."""
    cs = _shm()
    cv_prepare_to_sleep(cv)
    try:
        while True:
            with cs.lck.held():
                ok, value = done(), cs.w[word]
            if ok:
                return value
            if cv_timed_sleep(cv, 1.0, wait_event):
                pid = cs.w[cks.W_CHECKPOINTER_PID]
                if pid == 0 or not _pid_alive(pid):
                    raise elog.PgError("XX000", "could not signal for checkpoint: "
                                                "checkpointer is not running")
    finally:
        cv_cancel_sleep()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def xlog_checkpoint_needed(new_segno: int) -> bool:
    """XLogCheckpointNeeded: have the segments since the redo pointer reached
    CheckPointSegments? (Judged when segment ``new_segno`` is complete.)"""
    seg_size = xlog.geometry().seg_size
    old_segno = xlog.get_redo_rec_ptr() // seg_size
    return new_segno >= old_segno + (xc.check_point_segments(_settings) - 1)


def _segment_completed(segno: int) -> None:
    """access.xlog's segment_completed_hook (XLogWrite, under WALWriteLock): ask for
    a CAUSE_XLOG checkpoint if one is due. Only under a postmaster (or with a
    checkpointer running): a standalone process has nobody to ask."""
    cs = _current()
    if cs is None or _settings is None:
        return
    if child.env is None and cs.w[cks.W_CHECKPOINTER_PID] == 0:
        return
    if xlog_checkpoint_needed(segno):
        request_checkpoint(CHECKPOINT_CAUSE_XLOG)


# -- the fsync request queue -------------------------------------------------------------------------

def forward_sync_request(ftag: sync.FileTag, type_: sync.SyncRequestType) -> bool:
    """ForwardSyncRequest: queue a request for the checkpointer; False if it could
    not be queued (no checkpointer, or the queue full even after compaction).

    A process that is no postmaster child and finds no checkpointer (a tool, a
    test acting alone) keeps the request itself, as PostgreSQL's standalone
    backend does: its own checkpoint (request_checkpoint) then syncs it."""
    cs = _current()
    if cs is None or am_checkpointer:
        return False
    w = cs.w
    if child.env is None and w[cks.W_CHECKPOINTER_PID] == 0:
        sync.remember_sync_request(ftag, type_)
        return True
    is_sync = type_ == sync.SYNC_REQUEST
    lwlock_acquire(cs.comm_lock, LW_EXCLUSIVE)
    try:
        if is_sync and not am_bgwriter:
            w[cks.W_NUM_BACKEND_WRITES] += 1
        n = w[cks.W_NUM_REQUESTS]
        max_requests = w[cks.W_MAX_REQUESTS]
        pid = w[cks.W_CHECKPOINTER_PID]
        if pid == 0 or (n >= max_requests and not compact_checkpointer_request_queue()):
            if is_sync and not am_bgwriter:
                w[cks.W_NUM_BACKEND_FSYNC] += 1
            return False
        n = w[cks.W_NUM_REQUESTS]
        r = ftag.rnode
        cks.REQUEST.pack_into(cs.requests, n * _REQ_SIZE, ftag.handler, ftag.forknum, r.spc,
                              r.db, r.rel, ftag.segno, int(type_))
        w[cks.W_NUM_REQUESTS] = n + 1
        too_full = n + 1 >= max_requests // 2
    finally:
        lwlock_release(cs.comm_lock)
    if too_full:
        child.set_latch(pid)
    return True


def compact_checkpointer_request_queue() -> bool:
    """CompactCheckpointerRequestQueue (CheckpointerCommLock held exclusively):
    drop every request followed later by an identical one — moving forward keeps
    the meaning of FORGET and FILTER requests in between. False if none was."""
    cs = _shm()
    w = cs.w
    n = w[cks.W_NUM_REQUESTS]
    data = bytes(cs.requests[:n * _REQ_SIZE])
    entries = [data[i * _REQ_SIZE:(i + 1) * _REQ_SIZE] for i in range(n)]
    last = {e: i for i, e in enumerate(entries)}
    keep = [e for i, e in enumerate(entries) if last[e] == i]
    if len(keep) == n:
        return False
    cs.requests[:len(keep) * _REQ_SIZE] = b"".join(keep)
    w[cks.W_NUM_REQUESTS] = len(keep)
    elog.debug1(f"compacted fsync request queue from {n} entries to {len(keep)} entries")
    return True


def absorb_sync_requests() -> None:
    """AbsorbSyncRequests (checkpointer only): move the queue into the pending-
    operations table and the backends' write counts into pg_stat_bgwriter."""
    if not am_checkpointer or _cs is None:
        return
    cs = _cs
    w = cs.w
    lwlock_acquire(cs.comm_lock, LW_EXCLUSIVE)
    try:
        w[cks.STAT["buffers_backend"]] += w[cks.W_NUM_BACKEND_WRITES]
        w[cks.STAT["buffers_backend_fsync"]] += w[cks.W_NUM_BACKEND_FSYNC]
        w[cks.W_NUM_BACKEND_WRITES] = 0
        w[cks.W_NUM_BACKEND_FSYNC] = 0
        n = w[cks.W_NUM_REQUESTS]
        data = bytes(cs.requests[:n * _REQ_SIZE]) if n else b""
        w[cks.W_NUM_REQUESTS] = 0
    finally:
        lwlock_release(cs.comm_lock)
    if xc.probes_enabled:
        xc.trace_probe("checkpoint__sync__absorb", num_requests=n)
    remember = sync.remember_sync_request
    for handler, fork, spc, db, rel, segno, type_ in cks.REQUEST.iter_unpack(data):
        remember(sync.FileTag(handler, fork, RelFileNode(spc, db, rel), segno),
                 sync.SyncRequestType(type_))


# -- pacing (CheckpointWriteDelay) ------------------------------------------------------------------

def _absorb_sigint_request() -> None:
    """Turn a SIGINT received by the handler into shared request flags (here, not
    in the handler: a spinlock must never be taken in a signal handler)."""
    global checkpoint_requested
    if checkpoint_requested:
        checkpoint_requested = False
        cs = _shm()
        with cs.lck.held():
            cs.w[cks.W_CKPT_FLAGS] |= CHECKPOINT_COMMAND_FLAGS | CHECKPOINT_REQUESTED


def immediate_checkpoint_requested() -> bool:
    """ImmediateCheckpointRequested: is an IMMEDIATE checkpoint waiting?"""
    _absorb_sigint_request()
    return bool(_shm().w[cks.W_CKPT_FLAGS] & CHECKPOINT_IMMEDIATE)


def is_checkpoint_on_schedule(progress: float) -> bool:
    """IsCheckpointOnSchedule: is the write phase ahead of both schedules, time
    (checkpoint_timeout) and WAL (CheckPointSegments), scaled by
    checkpoint_completion_target? ``progress`` is the fraction of buffers done."""
    global ckpt_cached_elapsed
    settings = _settings
    progress *= float(settings.get("checkpoint_completion_target"))
    if progress < ckpt_cached_elapsed:
        return False
    recptr = xlog.get_xlog_insert_rec_ptr()
    elapsed_xlogs = (recptr - ckpt_start_recptr) / xlog.geometry().seg_size / ckpt_segments
    if progress < elapsed_xlogs:
        ckpt_cached_elapsed = elapsed_xlogs
        return False
    elapsed_time = (time.time() - ckpt_start_time) / float(settings.get("checkpoint_timeout"))
    if progress < elapsed_time:
        ckpt_cached_elapsed = elapsed_time
        return False
    return True


def checkpoint_write_delay(flags: int, progress: float) -> None:
    """CheckpointWriteDelay: called by buffer_sync after every buffer. While on
    schedule, nap 100 ms (absorbing requests and reloading the configuration);
    behind schedule, or for an IMMEDIATE checkpoint or at shutdown, go on at
    full speed, absorbing every WRITES_PER_ABSORB buffers."""
    global absorb_counter, ckpt_segments
    if not am_checkpointer or not ckpt_active:
        return
    if (not flags & CHECKPOINT_IMMEDIATE and not shutdown_xlog_pending
            and not immediate_checkpoint_requested()
            and is_checkpoint_on_schedule(progress)):
        if interrupts.config_reload_pending:
            interrupts.process_config_reload(_settings, _datadir)
            ckpt_segments = xc.check_point_segments(_settings)
            xc.refresh_trace_probes(_settings)
        absorb_sync_requests()
        absorb_counter = WRITES_PER_ABSORB
        from procs.postinit import report_stats

        report_stats()
        rc = child.wait_latch(0.1)
        if rc & child.WL_POSTMASTER_DEATH:
            child.quick_exit(1)
        child.reset_latch()
    else:
        absorb_counter -= 1
        if absorb_counter <= 0:
            absorb_sync_requests()
            absorb_counter = WRITES_PER_ABSORB


# -- the main loop ---------------------------------------------------------------------------------

def _req_shutdown_handler(_signo: int, _frame: object) -> None:
    global shutdown_xlog_pending
    shutdown_xlog_pending = True


def _req_checkpoint_handler(_signo: int, _frame: object) -> None:
    global checkpoint_requested
    checkpoint_requested = True


def _error_cleanup() -> None:
    """What the checkpointer's sigsetjmp block releases after an ERROR."""
    cv_cancel_sleep()
    bufmgr.at_error_cleanup()
    lwlock_release_all()
    smgr.smgr_close_all()


def _report_failure(exc: BaseException) -> None:
    """Log an error out of a checkpoint; a PANIC (failed fsync) ends the process so
    the postmaster runs crash recovery."""
    if isinstance(exc, elog.PgError):
        if exc.severity >= elog.PANIC:
            elog.ereport(elog.PANIC, exc.message, detail=exc.detail, hint=exc.hint,
                         sqlstate=exc.sqlstate)
            os.abort()
        elog.report_error(exc)
    else:
        elog.ereport(elog.ERROR, f"{type(exc).__name__}: {exc}", sqlstate="XX000")


def _perform_checkpoint(flags: int, now: float) -> None:
    """The do_checkpoint part of CheckpointerMain's loop."""
    global ckpt_active, ckpt_start_recptr, ckpt_start_time, ckpt_cached_elapsed
    global ckpt_segments, last_checkpoint_time
    cs = _shm()
    w = cs.w
    with cs.lck.held():
        flags |= w[cks.W_CKPT_FLAGS]
        w[cks.W_CKPT_FLAGS] = 0
        w[cks.W_CKPT_STARTED] += 1
        started = w[cks.W_CKPT_STARTED]
    cv_broadcast(cs.start_cv)
    if xlog.recovery_in_progress() and not flags & CHECKPOINT_END_OF_RECOVERY:
        elog.debug1("skipping checkpoint: restartpoints during recovery are not supported")
        with cs.lck.held():
            w[cks.W_CKPT_DONE] = started
        cv_broadcast(cs.done_cv)
        last_checkpoint_time = now
        return
    if flags & CHECKPOINT_CAUSE_XLOG:
        elapsed_secs = int(now - last_checkpoint_time)
        if elapsed_secs < int(_settings.get("checkpoint_warning")):
            unit = "second" if elapsed_secs == 1 else "seconds"
            elog.ereport(elog.LOG, f"checkpoints are occurring too frequently "
                                   f"({elapsed_secs} {unit} apart)",
                         hint='Consider increasing the configuration parameter "max_wal_size".')
    ckpt_active = True
    ckpt_start_recptr = xlog.get_xlog_insert_rec_ptr()
    ckpt_start_time = now
    ckpt_cached_elapsed = 0.0
    ckpt_segments = xc.check_point_segments(_settings)
    try:
        create_check_point(_datadir, _settings, flags)
    except Exception as exc:  # noqa: BLE001 - the sigsetjmp block of CheckpointerMain
        _report_failure(exc)
        _error_cleanup()
        with cs.lck.held():
            w[cks.W_CKPT_FAILED] += 1
            w[cks.W_CKPT_DONE] = w[cks.W_CKPT_STARTED]
        cv_broadcast(cs.done_cv)
        ckpt_active = False
        time.sleep(1.0)  # at least a second after any error, as PostgreSQL
        return
    finally:
        ckpt_active = False
    smgr.smgr_close_all()
    with cs.lck.held():
        w[cks.W_CKPT_DONE] = started
    cv_broadcast(cs.done_cv)
    last_checkpoint_time = now


def _shutdown() -> bool:
    """The shutdown checkpoint; True once written (then the process exits 0)."""
    try:
        shutdown_xlog(_datadir, _settings)
        return True
    except Exception as exc:  # noqa: BLE001 - retried, as PostgreSQL's error block does
        _report_failure(exc)
        _error_cleanup()
        time.sleep(1.0)
        return False


def main(env: child.ChildEnv, settings, segment) -> None:
    """CheckpointerMain."""
    global _datadir, last_checkpoint_time, ckpt_segments
    interrupts.install_standard_handlers(shutdown_signal=None, extra={
        signal.SIGTERM: signal.SIG_IGN,
        signal.SIGINT: _req_checkpoint_handler,
        signal.SIGUSR2: _req_shutdown_handler,
    })
    _datadir = env.datadir
    sync.reset()  # InitSync: a table of our own, whatever the forking process held
    cs = _shm()
    w = cs.w
    with cs.lck.held():
        w[cks.W_CHECKPOINTER_PID] = os.getpid()
    last_checkpoint_time = time.time()
    try:
        _checkpointer_loop(settings)
    finally:
        with cs.lck.held():
            w[cks.W_CHECKPOINTER_PID] = 0


def _checkpointer_loop(settings) -> None:
    while True:
        do_checkpoint = False
        flags = 0
        child.reset_latch()
        absorb_sync_requests()
        had_reload = interrupts.config_reload_pending
        interrupts.handle_main_loop_interrupts(settings, _datadir)
        if had_reload:
            xc.refresh_trace_probes(settings)
        if shutdown_xlog_pending:
            if _shutdown():
                return
            continue
        _absorb_sigint_request()
        w = _shm().w
        if w[cks.W_CKPT_FLAGS]:
            do_checkpoint = True
            pgstat_count_checkpointer("checkpoints_req")
        now = time.time()
        timeout = float(settings.get("checkpoint_timeout"))
        if now - last_checkpoint_time >= timeout:
            if not do_checkpoint:
                pgstat_count_checkpointer("checkpoints_timed")
            do_checkpoint = True
            flags |= CHECKPOINT_CAUSE_TIME
        if do_checkpoint:
            _perform_checkpoint(flags, now)
            continue  # look again at once: requests may have arrived meanwhile
        if checkpoint_requested or shutdown_xlog_pending:
            continue
        rc = child.wait_latch(max(0.0, last_checkpoint_time + timeout - time.time()))
        if rc & child.WL_POSTMASTER_DEATH:
            child.quick_exit(1)

