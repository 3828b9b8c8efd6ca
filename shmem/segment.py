"""The shared memory segment — mirrors storage/ipc/ipci.c (CalculateShmemSize),
storage/ipc/shmem.c (ShmemInitStruct) and port/pg_shmem.c / pg_sema.c.

One POSIX shared memory object per cluster, named ``/tusk.<dev>.<inode>`` of
the data directory so that two clusters never collide, mapped by the
postmaster and inherited by every child across fork. Each subsystem declares
a named region and its size before the segment is created; the layout is
recorded in a table at the start of the segment so tools (``tusk_ctl status``)
can attach read-only and find every region by name.

Semaphores are POSIX named semaphores ``<segment name>.<n>``; their count is
recorded in the header so a new postmaster can remove a dead cluster's set.
"""

from __future__ import annotations

import glob
import mmap
import os
import struct
from dataclasses import dataclass

import posix_ipc

MAGIC = b"TUSKSHM1"
HEADER = struct.Struct("<8sIIQiIIB")  # magic, version, table offset, size, pid, nregions, nsems, quit
HEADER_QUIT_OFFSET = HEADER.size - 1
TABLE_OFFSET = 64
ENTRY = struct.Struct("<48sQQ")  # region name, offset, size
MAX_REGIONS = 64
FIRST_REGION = TABLE_OFFSET + ENTRY.size * MAX_REGIONS
ALIGN = 128  # PostgreSQL's PG_CACHE_LINE_SIZE

# Why the postmaster sent SIGQUIT (PostgreSQL's QuitSignalReason).
PMQUIT_NOT_SENT, PMQUIT_FOR_CRASH, PMQUIT_FOR_STOP = 0, 1, 2


def segment_name(datadir: str) -> str:
    st = os.stat(datadir)
    return f"/tusk.{st.st_dev:x}.{st.st_ino:x}"


def _align(n: int) -> int:
    return (n + ALIGN - 1) & ~(ALIGN - 1)


@dataclass
class Region:
    name: str
    offset: int
    size: int


class ShmemSegment:
    """A mapped segment: ``region(name)`` gives a memoryview of one region."""

    def __init__(self, name: str, mm: mmap.mmap, regions: dict[str, Region],
                 sems: list[posix_ipc.Semaphore]) -> None:
        self.name = name
        self.mm = mm
        self.buf = memoryview(mm)
        self.regions = regions
        self.sems = sems
        # First semaphore index of each subsystem (set by shmem.ipci).
        self.sem_base: dict[str, int] = {}

    @property
    def size(self) -> int:
        return len(self.mm)

    def region(self, name: str) -> memoryview:
        r = self.regions[name]
        return self.buf[r.offset:r.offset + r.size]

    @property
    def quit_reason(self) -> int:
        return self.mm[HEADER_QUIT_OFFSET]

    @quit_reason.setter
    def quit_reason(self, value: int) -> None:
        self.mm[HEADER_QUIT_OFFSET] = value

    def detach(self) -> None:
        """Unmap (children at exit do nothing: the kernel unmaps)."""
        self.buf.release()
        self.mm.close()
        for s in self.sems:
            s.close()

    def destroy(self) -> None:
        """Remove the segment and its semaphores (postmaster at exit or reinit)."""
        name, nsems = self.name, len(self.sems)
        try:
            self.detach()
        except BufferError:
            pass  # still exported views; unlinking is what matters
        remove_segment(name, nsems)


def create_segment(name: str, requests: list[tuple[str, int]], nsems: int) -> ShmemSegment:
    """Create the segment with the requested regions (CreateSharedMemoryAndSemaphores)."""
    if len(requests) > MAX_REGIONS:
        raise ValueError("too many shared memory regions")
    regions: dict[str, Region] = {}
    offset = FIRST_REGION
    for rname, rsize in requests:
        offset = _align(offset)
        regions[rname] = Region(rname, offset, rsize)
        offset += rsize
    total = _align(offset)
    shm = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, mode=0o600, size=total)
    try:
        mm = mmap.mmap(shm.fd, total)
    finally:
        shm.close_fd()
    HEADER.pack_into(mm, 0, MAGIC, 1, TABLE_OFFSET, total, os.getpid(), len(regions), nsems,
                     PMQUIT_NOT_SENT)
    for i, r in enumerate(regions.values()):
        ENTRY.pack_into(mm, TABLE_OFFSET + i * ENTRY.size, r.name.encode(), r.offset, r.size)
    sems = []
    try:
        for i in range(nsems):
            sems.append(posix_ipc.Semaphore(f"{name}.{i}", posix_ipc.O_CREX, mode=0o600,
                                            initial_value=1))
    except Exception:
        mm.close()
        remove_segment(name, nsems)
        raise
    return ShmemSegment(name, mm, regions, sems)


def read_layout(name: str) -> tuple[int, int, int, list[Region]]:
    """Attach read-only and return (size, creator pid, nsems, regions); for tools."""
    shm = posix_ipc.SharedMemory(name, 0)
    try:
        mm = mmap.mmap(shm.fd, shm.size, prot=mmap.PROT_READ)
    finally:
        shm.close_fd()
    try:
        magic, _v, table, size, pid, nregions, nsems, _q = HEADER.unpack_from(mm, 0)
        if magic != MAGIC:
            raise ValueError(f"shared memory segment {name} is not a tusk segment")
        regions = []
        for i in range(nregions):
            rname, off, rsize = ENTRY.unpack_from(mm, table + i * ENTRY.size)
            regions.append(Region(rname.rstrip(b"\0").decode(), off, rsize))
        return size, pid, nsems, regions
    finally:
        mm.close()


def attach_readonly(name: str) -> ShmemSegment:
    """Map an existing segment read-only, for tools (no semaphores)."""
    shm = posix_ipc.SharedMemory(name, 0)
    try:
        mm = mmap.mmap(shm.fd, shm.size, prot=mmap.PROT_READ)
    finally:
        shm.close_fd()
    magic, _v, table, _size, _pid, nregions, _nsems, _q = HEADER.unpack_from(mm, 0)
    if magic != MAGIC:
        mm.close()
        raise ValueError(f"shared memory segment {name} is not a tusk segment")
    regions = {}
    for i in range(nregions):
        rname, off, rsize = ENTRY.unpack_from(mm, table + i * ENTRY.size)
        r = Region(rname.rstrip(b"\0").decode(), off, rsize)
        regions[r.name] = r
    return ShmemSegment(name, mm, regions, [])


def remove_segment(name: str, nsems: int | None = None) -> list[str]:
    """Unlink a (possibly dead) cluster's segment and semaphores; returns what was removed."""
    removed = []
    if nsems is None:
        try:
            _s, _p, nsems, _r = read_layout(name)
        except (posix_ipc.ExistentialError, ValueError):
            nsems = 0
    try:
        posix_ipc.unlink_shared_memory(name)
        removed.append(name)
    except posix_ipc.ExistentialError:
        pass
    names = {f"{name}.{i}" for i in range(nsems)}
    # Linux shows named semaphores as /dev/shm/sem.<name>: catch any the header missed.
    names.update("/" + p.rsplit("/sem.", 1)[1] for p in glob.glob(f"/dev/shm/sem.{name[1:]}.*"))
    for sname in sorted(names):
        try:
            posix_ipc.unlink_semaphore(sname)
            removed.append(sname)
        except posix_ipc.ExistentialError:
            pass
    return removed


def segment_exists(name: str) -> bool:
    try:
        posix_ipc.SharedMemory(name, 0).close_fd()
        return True
    except posix_ipc.ExistentialError:
        return False
