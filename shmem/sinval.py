"""Shared cache invalidation — a coarse stand-in for storage/ipc/sinval.c and
sinvaladt.c (the shared invalidation message queue, SISeg).

PostgreSQL queues one invalidation message per changed catalog tuple or
relation; each backend reads the queue at the start of a transaction, when it
acquires a lock (AcceptInvalidationMessages) and while idle when signalled, and
drops exactly the cache entries named. tusk keeps one shared 64-bit **catalog
generation counter** instead:

- a transaction that changed any catalog bumps it once, at commit, after its
  commit is visible in the ProcArray (utils.relcache.at_eoxact calls
  ``bump_catalog_generation``);
- every backend compares it with the last value it saw at the start of each
  statement and after acquiring a relation lock
  (utils.relcache.accept_invalidation_messages); if it moved, the backend drops
  its whole relation and syscache caches and rebuilds entries on demand with a
  fresh catalog snapshot.

That is correct (a backend never uses an entry built from a catalog state older
than the last commit it could see) and costs one 8-byte shared-memory read per
statement; the price is that any DDL anywhere makes every backend rebuild the
relations it touches. The value is read without a lock: an aligned 8-byte load
is atomic on the machines tusk runs on. Bumps take the region's spinlock.

The region also records each backend's database (SharedInvalBackendInit's
ProcState, keyed by PGPROC slot), which CREATE/DROP DATABASE use to count the
other sessions connected to a database (CountOtherDBBackends). An entry is
trusted only while its slot's PGPROC still holds the same pid, so a backend
that exits needs no cleanup here.

Layout of the region "Shared Inval State" (uint64 words):

    0   catalog generation
    1   number of slots
    2.. per PGPROC slot: pid (int32), database OID (uint32)
"""

from __future__ import annotations

import os
import struct

from shmem import lwlock
from shmem import proc as shproc
from shmem.segment import ShmemSegment
from shmem.spin import SpinLock

REGION = "Shared Inval State"
_SLOT = struct.Struct("<iI")


def shmem_requests(settings) -> list[tuple[str, int]]:
    n = shproc.num_slots(settings.get("max_connections"))
    return [(REGION, 16 + _SLOT.size * n)]


def num_semaphores(settings) -> int:
    return 1


def shmem_init(seg: ShmemSegment, settings) -> None:
    region = seg.region(REGION)
    region[:] = bytes(len(region))
    struct.pack_into("<Q", region, 8, shproc.num_slots(settings.get("max_connections")))
    region.release()


class _State:
    seg: ShmemSegment | None = None
    words: memoryview | None = None
    slots: memoryview | None = None
    lock: SpinLock | None = None


_st = _State()


def _attached() -> _State | None:
    """This process's views of the region, made on first use for the segment
    shmem.lwlock is bound to (every postmaster child's, and the unit-test
    harness's), and remade when that segment changes."""
    seg = lwlock._ctx.seg
    if seg is None:
        return None
    if _st.seg is not seg:
        region = seg.region(REGION)
        _st.words = region[:16].cast("Q")
        _st.slots = region[16:]
        _st.lock = SpinLock(seg.sems[seg.sem_base.get(__name__, 0)])
        _st.seg = seg
    return _st


def catalog_generation() -> int:
    """The current catalog generation (0 without shared memory)."""
    st = _attached()
    return st.words[0] if st is not None else 0  # type: ignore[index]


def bump_catalog_generation() -> int:
    """Announce that committed catalog changes exist; returns the new generation."""
    st = _attached()
    if st is None:
        return 0
    assert st.lock is not None and st.words is not None
    with st.lock.held():
        gen = st.words[0] + 1
        st.words[0] = gen
    return gen


def _my_slot() -> int:
    from access import procarray

    return procarray._st.my_slot


def shared_inval_backend_init(database_id: int) -> None:
    """SharedInvalBackendInit: record this backend's database in its slot."""
    st = _attached()
    slot = _my_slot()
    if st is None or slot < 0:
        return
    _SLOT.pack_into(st.slots, slot * _SLOT.size, os.getpid(), database_id)


def backend_database(slot: int) -> int:
    """The database OID recorded for a PGPROC slot (0: none or stale)."""
    st = _attached()
    if st is None:
        return 0
    pid, db = _SLOT.unpack_from(st.slots, slot * _SLOT.size)  # type: ignore[arg-type]
    from access import procarray

    procs = procarray._st.procs
    if procs is None or not pid or procs.pid_of_slot(slot) != pid:
        return 0
    return db


def database_backend_pids(database_id: int) -> list[int]:
    """Pids of the live backends connected to ``database_id`` (self included)."""
    st = _attached()
    if st is None:
        return []
    from access import procarray

    procs = procarray._st.procs
    if procs is None:
        return []
    out = []
    for slot in range(procs.nslots):
        pid, db = _SLOT.unpack_from(st.slots, slot * _SLOT.size)  # type: ignore[arg-type]
        if pid and db == database_id and procs.pid_of_slot(slot) == pid:
            out.append(pid)
    return out
