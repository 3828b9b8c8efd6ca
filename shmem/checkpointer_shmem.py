"""CheckpointerShmem — the shared half of src/backend/postmaster/checkpointer.c
(CheckpointerShmemStruct, CheckpointerShmemSize, CheckpointerShmemInit) plus the
pg_stat_bgwriter counters of PostgreSQL 15 (PgStat_CheckpointerStats and
PgStat_BgWriterStats).

The protocol that uses it is described in procs/checkpointer.py; this module is
only the layout, so that tools (``tusk_ctl checkpoint``, ``tusk_ctl stats``) can
read it from a read-only mapping without importing the server's machinery.

Region "Checkpointer Data", int64 words unless noted:

    0 checkpointer_pid      the checkpointer's pid (its latch), 0 if none runs
    1 ckpt_started          bumped when a checkpoint starts      } under ckpt_lck
    2 ckpt_done             set to ckpt_started when it ends     } (a spinlock
    3 ckpt_failed           bumped when one fails                }  semaphore)
    4 ckpt_flags            CHECKPOINT_* flags of pending requests }
    5 num_backend_writes    SYNC requests forwarded by non-bgwriter processes }
    6 num_backend_fsync     ... that their sender had to fsync itself          } under
    7 num_requests          entries in the request queue                        } Checkpointer-
    8 max_requests          its capacity (NBuffers, or a developer setting)     } CommLock
   16..25                   pg_stat_bgwriter counters (STAT_FIELDS)
   32..41                   their values at the last reset (pg_stat_reset_shared)
   48 stats_reset           time of the last reset (Unix epoch, microseconds)
   56.. two condition variables, start_cv and done_cv (8 bytes each)
   REQUESTS_OFFSET..        max_requests CheckpointerRequests of REQUEST.size bytes:
                            a FileTag (storage.sync.FILETAG_STRUCT) and the type

Each statistics counter has one writer: the checkpointer (checkpoints_*,
checkpoint_*_time, buffers_checkpoint, buffers_backend, buffers_backend_fsync)
or the background writer (buffers_clean, maxwritten_clean, buffers_alloc), so
they are plain stores; readers may see a value one update behind. A reset
records the current values as the new base instead of zeroing counters that
another process is updating, so a reset never races with an increment.

Where we differ: times are integer milliseconds (PostgreSQL keeps doubles), and
the counters live in the segment, so they start from zero after a crash
restart, as PostgreSQL's do after a crash (it discards its stats file).
"""

from __future__ import annotations

import os
import signal
import struct
import time

from shmem.segment import ShmemSegment

REGION = "Checkpointer Data"

(W_CHECKPOINTER_PID, W_CKPT_STARTED, W_CKPT_DONE, W_CKPT_FAILED, W_CKPT_FLAGS,
 W_NUM_BACKEND_WRITES, W_NUM_BACKEND_FSYNC, W_NUM_REQUESTS, W_MAX_REQUESTS) = range(9)
W_STATS = 16
W_STATS_BASE = 32
W_STATS_RESET = 48
CV_OFFSET = 56 * 8  # start_cv, then done_cv
START_CV_OFFSET = CV_OFFSET
DONE_CV_OFFSET = CV_OFFSET + 8
REQUESTS_OFFSET = 512

STAT_FIELDS = ("checkpoints_timed", "checkpoints_req", "checkpoint_write_time",
               "checkpoint_sync_time", "buffers_checkpoint", "buffers_clean",
               "maxwritten_clean", "buffers_backend", "buffers_backend_fsync", "buffers_alloc")
STAT = {name: W_STATS + i for i, name in enumerate(STAT_FIELDS)}
assert W_STATS + len(STAT_FIELDS) <= W_STATS_BASE
assert W_STATS_BASE + len(STAT_FIELDS) <= W_STATS_RESET

# CheckpointerRequest: FileTag (int16 handler, int16 forknum, uint32 spc, db, rel,
# segno) then int32 SyncRequestType.
REQUEST = struct.Struct("<hhIIIIi")


def max_requests(settings) -> int:
    """The queue's capacity: NBuffers, as PostgreSQL sizes it, unless the developer
    setting debug_checkpointer_queue_size asks for fewer (tests of a full queue)."""
    nbuffers = int(settings.get("shared_buffers"))
    try:
        wanted = int(settings.get("debug_checkpointer_queue_size") or 0)
    except Exception:  # not a known setting: no override
        wanted = 0
    return max(1, min(wanted, nbuffers)) if wanted > 0 else nbuffers


def shmem_requests(settings) -> list[tuple[str, int]]:
    return [(REGION, REQUESTS_OFFSET + max_requests(settings) * REQUEST.size)]


def num_semaphores(settings) -> int:
    return 1  # ckpt_lck


def shmem_init(seg: ShmemSegment, settings) -> None:
    """CheckpointerShmemInit (postmaster; after shmem.lwlock, whose init lets the
    condition variables find their spinlock stripes)."""
    from shmem.condition_variable import ConditionVariable

    region = seg.region(REGION)
    region[:] = bytes(len(region))
    w = region.cast("q")
    w[W_MAX_REQUESTS] = max_requests(settings)
    w[W_STATS_RESET] = int(time.time() * 1_000_000)
    ConditionVariable(region, START_CV_OFFSET, 0).initialize()
    ConditionVariable(region, DONE_CV_OFFSET, 1).initialize()


# -- read-only access, for tools -----------------------------------------------------------

def words(seg: ShmemSegment) -> memoryview | None:
    """The region's int64 words, or None if the segment has no such region."""
    if REGION not in seg.regions:
        return None
    return seg.region(REGION)[:REQUESTS_OFFSET].cast("q")


def read_bgwriter_stats(seg: ShmemSegment) -> dict[str, int | float] | None:
    """pg_stat_bgwriter's columns (stats_reset as a Unix time); None if absent.

    buffers_backend and buffers_backend_fsync include what backends have counted
    but the checkpointer has not absorbed yet."""
    w = words(seg)
    if w is None:
        return None
    out: dict[str, int | float] = {}
    for i, name in enumerate(STAT_FIELDS):
        out[name] = w[W_STATS + i] - w[W_STATS_BASE + i]
    out["buffers_backend"] += w[W_NUM_BACKEND_WRITES]
    out["buffers_backend_fsync"] += w[W_NUM_BACKEND_FSYNC]
    out["stats_reset"] = w[W_STATS_RESET] / 1_000_000
    return out


def read_checkpoint_counters(seg: ShmemSegment) -> tuple[int, int, int, int]:
    """(checkpointer_pid, ckpt_started, ckpt_done, ckpt_failed), read without the
    spinlock (each is one aligned word)."""
    w = words(seg)
    if w is None:
        return 0, 0, 0, 0
    return (w[W_CHECKPOINTER_PID], w[W_CKPT_STARTED], w[W_CKPT_DONE], w[W_CKPT_FAILED])


def tool_request_checkpoint(seg: ShmemSegment, timeout: float, wait: bool = True) -> str | None:
    """``tusk_ctl checkpoint``: ask the running server's checkpointer for a
    checkpoint (SIGINT: a CHECKPOINT command, IMMEDIATE | FORCE | WAIT) and, with
    ``wait``, poll the counters until one that started after the request has
    completed. Returns None on success, else the error to report.

    The tool maps the segment read-only, so it cannot note ckpt_started in the
    same spinlock hold as its request as request_checkpoint does; a checkpoint
    that starts between its reading of the counters and the checkpointer's
    receipt of the signal is then taken as the one asked for. That checkpoint
    began after the request did, which is what the caller needs to know."""
    pid, old_started, _done, old_failed = read_checkpoint_counters(seg)
    if pid == 0:
        return "could not signal for checkpoint: checkpointer is not running"
    try:
        os.kill(pid, signal.SIGINT)
    except OSError as exc:
        return f"could not signal for checkpoint: {exc.strerror}"
    if not wait:
        return None
    deadline = time.monotonic() + timeout
    w = words(seg)
    assert w is not None
    new_started = None
    while time.monotonic() < deadline:
        if new_started is None and w[W_CKPT_STARTED] != old_started:
            new_started = w[W_CKPT_STARTED]
        if new_started is not None and w[W_CKPT_DONE] - new_started >= 0:
            if w[W_CKPT_FAILED] != old_failed:
                return "checkpoint request failed"
            return None
        if w[W_CHECKPOINTER_PID] != pid:
            return "checkpointer exited before the checkpoint completed"
        time.sleep(0.02)
    return "checkpoint did not complete in time"
