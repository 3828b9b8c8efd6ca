"""Creating checkpoints — mirrors CreateCheckPoint, CheckPointGuts and
ShutdownXLOG in src/backend/access/transam/xlog.c.

A checkpoint takes the redo pointer (where replay would start), writes every
dirty buffer, syncs every file written since the last one, then writes the
checkpoint record, flushes it, and points pg_control at it. For a shutdown
or end-of-recovery checkpoint nothing else runs, so the redo pointer is the
checkpoint record's own position.

This module holds the checkpoint's steps; when and how often checkpoints
happen (timed, requested, paced) is the checkpointer's business
(procs/checkpointer.py).
"""

from __future__ import annotations

import time

from access import clog, transam, xlog
from access import xlog_internal as xi
from catalog.pg_control import DBState, read_control_file, write_control_file
from shmem.buf_internals import BM_DIRTY, BM_VALID
from shmem.lwlock import LW_SHARED, lwlock_acquire, lwlock_release
from storage import bufmgr, sync
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


def flags_description(flags: int) -> str:
    """The flag words of "checkpoint starting: ..." (LogCheckpointStart)."""
    words = [(CHECKPOINT_IS_SHUTDOWN, " shutdown"), (CHECKPOINT_END_OF_RECOVERY,
                                                     " end-of-recovery"),
             (CHECKPOINT_IMMEDIATE, " immediate"), (CHECKPOINT_FORCE, " force"),
             (CHECKPOINT_WAIT, " wait"), (CHECKPOINT_CAUSE_XLOG, " wal"),
             (CHECKPOINT_CAUSE_TIME, " time"), (CHECKPOINT_FLUSH_ALL, " flush-all")]
    return "".join(w for f, w in words if flags & f)


def buffer_sync_all() -> int:
    """Write every dirty buffer (the unpaced BufferSync of a shutdown checkpoint)."""
    p = bufmgr.pool()
    descs = p.descs
    written = 0
    for buf_id in range(p.nbuffers):
        if descs.state(buf_id) & (BM_DIRTY | BM_VALID) != (BM_DIRTY | BM_VALID):
            continue
        state = descs.lock_buf_hdr(buf_id)
        if state & (BM_DIRTY | BM_VALID) != (BM_DIRTY | BM_VALID):
            descs.unlock_buf_hdr(buf_id, state)
            continue
        bufmgr._pin_buffer_locked(p, buf_id, state)
        lwlock_acquire(descs.content_locks[buf_id], LW_SHARED)
        try:
            if bufmgr.flush_buffer(buf_id):
                written += 1
        finally:
            lwlock_release(descs.content_locks[buf_id])
            bufmgr._unpin_buffer(p, buf_id)
    return written


def create_check_point(datadir: str, settings, flags: int) -> int:
    """CreateCheckPoint for a shutdown or end-of-recovery checkpoint; returns its LSN."""
    shutdown = bool(flags & (CHECKPOINT_IS_SHUTDOWN | CHECKPOINT_END_OF_RECOVERY))
    assert shutdown, "online checkpoints come with the checkpointer issue"
    log_checkpoints = bool(settings.get("log_checkpoints"))
    start = time.monotonic()
    cf = read_control_file(datadir)
    if flags & CHECKPOINT_IS_SHUTDOWN:
        cf.state = DBState.DB_SHUTDOWNING
        write_control_file(datadir, cf, do_sync=bool(settings.get("fsync")))
    if log_checkpoints:
        elog.log(f"checkpoint starting:{flags_description(flags)}")
    ck = cf.check_point_copy
    redo = xlog.get_xlog_insert_rec_ptr()
    ck.redo = redo
    ck.full_page_writes = bool(settings.get("full_page_writes"))
    ck.time = int(time.time())
    ck.next_xid, ck.next_oid, ck.oldest_xid, ck.oldest_xid_db = \
        transam.checkpoint_values(shutdown)
    xlog.set_redo_rec_ptr(redo, ck.full_page_writes)
    clog.check_point_clog()  # CheckPointGuts: pg_xact before the data pages
    written = buffer_sync_all()
    write_done = time.monotonic()
    sync.sync_pre_checkpoint()
    stats = sync.process_sync_requests(log_checkpoints)
    sync_done = time.monotonic()
    rec = xlog.build_simple_record(xi.RM_XLOG_ID, xi.XLOG_CHECKPOINT_SHUTDOWN,
                                   xlog.checkpoint_record_data(ck))
    end = xlog.xlog_insert_record(rec)
    xlog.xlog_flush(end)
    cf.check_point = xlog.proc_last_rec_ptr
    cf.state = DBState.DB_SHUTDOWNED if flags & CHECKPOINT_IS_SHUTDOWN \
        else DBState.DB_IN_PRODUCTION
    write_control_file(datadir, cf, do_sync=bool(settings.get("fsync")))
    sync.sync_post_checkpoint()
    if log_checkpoints:
        nbuffers = bufmgr.pool().nbuffers
        total = time.monotonic() - start
        avg = stats.total_us / stats.files / 1e6 if stats.files else 0.0
        elog.log(
            f"checkpoint complete: wrote {written} buffers ({100.0 * written / nbuffers:.1f}%); "
            f"0 WAL file(s) added, 0 removed, 0 recycled; write={write_done - start:.3f} s, "
            f"sync={sync_done - write_done:.3f} s, total={total:.3f} s; "
            f"sync files={stats.files}, longest={stats.longest_us / 1e6:.3f} s, "
            f"average={avg:.3f} s; distance=0 kB, estimate=0 kB")
    return cf.check_point


def shutdown_xlog(datadir: str, settings) -> None:
    """ShutdownXLOG: the shutdown checkpoint, after which pg_control says 'shut down'."""
    elog.log("shutting down")
    create_check_point(datadir, settings, CHECKPOINT_IS_SHUTDOWN | CHECKPOINT_IMMEDIATE)
    xlog.close_log_file()
