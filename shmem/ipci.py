"""CreateSharedMemoryAndSemaphores — mirrors storage/ipc/ipci.c.

Every subsystem that lives in shared memory is listed in SUBSYSTEMS. Each
module provides:

    shmem_requests(settings) -> list[(region name, size in bytes)]
    num_semaphores(settings) -> int
    shmem_init(segment, settings) -> None   # postmaster, after creation

The segment's size is the sum of the requests (CalculateShmemSize), and each
subsystem's semaphores are a contiguous range whose first index is
``segment.sem_base[module name]``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from shmem import segment as shseg

SUBSYSTEMS = [
    "shmem.proc",
    "shmem.lwlock",  # before anything that embeds LWLocks: its init attaches them
    "shmem.buf_internals",
    "shmem.buf_table",
    "shmem.freelist",
    "utils.pgstat",
    "utils.backend_status",  # PgBackendStatus array (pg_stat_activity), per-database counters
    "utils.pgstat_relation_shmem",  # per-table and per-index statistics (pg_stat_all_tables)
    "access.xlog",
    "access.transam",  # TransamVariables
    "access.clog",  # pg_xact buffers (embeds LWLocks: after shmem.lwlock)
    "shmem.checkpointer_shmem",  # checkpoint counters, fsync request queue, pg_stat_bgwriter
    "shmem.sinval",  # catalog generation counter, each backend's database
    "storage.lmgr.lock",  # heavyweight lock table (uses the LockManager LWLocks)
]


def _modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in SUBSYSTEMS]


def calculate_shmem_size(settings) -> tuple[list[tuple[str, int]], int]:
    requests: list[tuple[str, int]] = []
    nsems = 0
    for mod in _modules():
        requests += mod.shmem_requests(settings)
        nsems += mod.num_semaphores(settings)
    return requests, nsems


def detach_shared_memory() -> None:
    """Drop this process's handles on the segment so that it can be unmapped."""
    from access import transam
    from shmem import lwlock
    from storage.lmgr import lock
    from utils import backend_status, pgstat, pgstat_relation_shmem

    transam.detach()
    lock.detach()
    lwlock.detach()
    pgstat.detach()
    backend_status.detach()
    pgstat_relation_shmem.detach()


def create_shared_memory_and_semaphores(name: str, settings) -> shseg.ShmemSegment:
    requests, nsems = calculate_shmem_size(settings)
    seg = shseg.create_segment(name, requests, nsems)
    base = 0
    for mod in _modules():
        seg.sem_base[mod.__name__] = base
        base += mod.num_semaphores(settings)
    for mod in _modules():
        mod.shmem_init(seg, settings)
    return seg
