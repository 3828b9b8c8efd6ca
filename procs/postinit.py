"""A child's attachment to shared memory — mirrors InitProcess / InitAuxiliaryProcess
(storage/lmgr/proc.c), InitBufferPoolAccess (bufmgr.c) and ProcKill.

Every postmaster child that touches shared state claims its PGPROC slot, makes
its semaphore ready for LWLock waits, and binds the buffer pool; at a normal
exit it releases its LWLocks, publishes its counters and frees the slot.
"""

from __future__ import annotations

import os

from access import transam, xlog
from procs import checkpointer
from shmem import lwlock
from shmem.proc import BackendType, ProcArray
from storage import bufmgr
from storage.lmgr import lock
from utils import elog, pgstat, pgstat_relation


def init_process(segment, settings, btype: BackendType, *, is_superuser: bool = False,
                 reserved: int = 0) -> ProcArray:
    """Claim a PGPROC slot (raises shmem.proc.TooManyClients for backends) and attach."""
    procs = ProcArray(segment, settings.get("max_connections"))
    if btype == BackendType.B_BACKEND:
        procs.claim_backend(is_superuser, reserved)
    else:
        procs.claim_aux(btype)
    lwlock.init_proc(procs)
    lock.attach(segment, settings, procs)  # heavyweight locks: needs the LWLocks
    from access import xact

    xact.attach_lock_manager()  # transaction locks taken and released by xact
    pgstat.attach(segment, settings, procs, btype)
    from utils import backend_status

    backend_status.attach(segment, settings, procs, btype)  # pg_stat_activity's slot
    bufmgr.init_buffer_pool_access(segment, settings)
    from storage import fd

    xlog.attach(segment, settings, fd.data_directory() or "", procs)
    transam.attach(segment, settings, procs)
    checkpointer.attach_checkpointer_shmem(segment, settings, btype, procs)  # + fsync queue
    return procs


def report_stats(force: bool = False) -> None:
    """pgstat_report_stat: publish this process's counters (rate-limited)."""
    if pgstat.pgstat_report_io(force):
        lwlock.pgstat_report_lwlocks()
    pgstat_relation.flush(force)  # per-table counts (rate-limited, or forced)


def proc_kill(procs: ProcArray) -> None:
    """ProcKill at a normal exit: nothing may stay locked or pinned."""
    bufmgr.at_error_cleanup()
    if lwlock.any_lwlock_held():
        # Exiting with an LWLock held would leave shared memory inconsistent.
        elog.ereport(elog.PANIC, "process exited while holding an LWLock")
        os._exit(2)
    pgstat_relation.flush(force=True)  # before the slot its tup_* counts go to is freed
    pgstat.pgstat_flush_at_exit()
    lock.proc_exit()  # release heavyweight locks, waking their waiters
    lwlock.proc_exit()
    procs.release()
