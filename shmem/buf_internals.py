"""Buffer descriptors and the buffer state word — mirrors
src/include/storage/buf_internals.h and storage/buffer/buf_init.c.

shared_buffers blocks of BLCKSZ live in the region "Buffer Blocks"; each has
a 64-byte descriptor in "Buffer Descriptors", read and written in place as
int32/uint32 words:

    0 spcOid  1 dbOid  2 relNumber  3 forkNum  4 blockNum   (the BufferTag)
    5 buf_id  6 state  7 wait_backend_pgprocno  8 freeNext
    10..13 the content LWLock (16 bytes, tranche BufferContent)

The state word packs PostgreSQL's fields exactly: refcount in bits 0-17,
usage count in bits 18-21, flags above (BM_LOCKED .. BM_PERMANENT).

Where we differ: PostgreSQL changes the state word with atomic
compare-and-swap and uses BM_LOCKED as a spinlock bit. Python has no fast
atomics, so the word is guarded by one of BUF_HDR_STRIPES semaphores (buffer
i uses stripe i % BUF_HDR_STRIPES). The slow-path header lock
(``lock_buf_hdr``) still sets BM_LOCKED in the word while held so tools see
it; the fast paths of bufmgr (pin, unpin, MarkBufferDirty) change the word
under the stripe semaphore only. The tag, too, is written only under the
header lock, which is what lets bufmgr's hit path verify a buffer found
without the mapping partition lock (see storage/bufmgr.py, "The hit path").

The header stripes, and the spinlocks of the buffers' content LWLocks, are
called through ``semaphore_ops``: the same POSIX semaphores, bound through
CPython's _multiprocessing.SemLock, which tries sem_trywait before giving up
the GIL; an uncontended acquire + release then costs about half as much as
through posix_ipc.
Each buffer's I/O condition variable sits in "Buffer IO Condition Variables"
as in PostgreSQL 15 (wait event IPC/BufferIO).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import posix_ipc

from shmem.condition_variable import CV_SIZE, ConditionVariable
from shmem.lwlock import LWLOCK_SIZE, LWTRANCHE_BUFFER_CONTENT, LWLock
from shmem.segment import ShmemSegment

BLCKSZ = 8192

# The state word (buf_internals.h).
BUF_REFCOUNT_ONE = 1
BUF_REFCOUNT_MASK = (1 << 18) - 1
BUF_USAGECOUNT_MASK = 0x003C0000
BUF_USAGECOUNT_ONE = 1 << 18
BUF_USAGECOUNT_SHIFT = 18
BUF_FLAG_MASK = 0xFFC00000
BM_LOCKED = 1 << 22
BM_DIRTY = 1 << 23
BM_VALID = 1 << 24
BM_TAG_VALID = 1 << 25
BM_IO_IN_PROGRESS = 1 << 26
BM_IO_ERROR = 1 << 27
BM_JUST_DIRTIED = 1 << 28
BM_PIN_COUNT_WAITER = 1 << 29
BM_CHECKPOINT_NEEDED = 1 << 30
BM_PERMANENT = 1 << 31
BM_MAX_USAGE_COUNT = 5

FLAG_NAMES = (
    (BM_LOCKED, "BM_LOCKED"), (BM_DIRTY, "BM_DIRTY"), (BM_VALID, "BM_VALID"),
    (BM_TAG_VALID, "BM_TAG_VALID"), (BM_IO_IN_PROGRESS, "BM_IO_IN_PROGRESS"),
    (BM_IO_ERROR, "BM_IO_ERROR"), (BM_JUST_DIRTIED, "BM_JUST_DIRTIED"),
    (BM_PIN_COUNT_WAITER, "BM_PIN_COUNT_WAITER"),
    (BM_CHECKPOINT_NEEDED, "BM_CHECKPOINT_NEEDED"), (BM_PERMANENT, "BM_PERMANENT"),
)

# Fork numbers (relpath.h).
MAIN_FORKNUM, FSM_FORKNUM, VISIBILITYMAP_FORKNUM, INIT_FORKNUM = 0, 1, 2, 3
InvalidBlockNumber = 0xFFFFFFFF
FREENEXT_END_OF_LIST = -1
FREENEXT_NOT_IN_LIST = -2

DESC_WORDS = 16
DESC_SIZE = DESC_WORDS * 4
W_SPC, W_DB, W_REL, W_FORK, W_BLK, W_BUF_ID, W_STATE, W_WAIT_BACKEND, W_FREE_NEXT = range(9)
CONTENT_LOCK_OFFSET = 40  # bytes into the descriptor
# The BufferTag words at the start of a descriptor, as (spcOid, dbOid, relNumber,
# forkNum, blockNum): OIDs and the block number unsigned, the fork signed.
DESC_TAG = struct.Struct("<IIIiI")
assert CONTENT_LOCK_OFFSET + LWLOCK_SIZE <= DESC_SIZE

BUF_HDR_STRIPES = 128


def refcount(state: int) -> int:
    return state & BUF_REFCOUNT_MASK


def usage_count(state: int) -> int:
    return (state & BUF_USAGECOUNT_MASK) >> BUF_USAGECOUNT_SHIFT


@dataclass(frozen=True, slots=True)
class BufferTag:
    spc: int
    db: int
    rel: int
    fork: int
    blk: int

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        return (self.spc, self.db, self.rel, self.fork, self.blk)


def shmem_requests(settings) -> list[tuple[str, int]]:
    n = settings.get("shared_buffers")
    return [("Buffer Descriptors", n * DESC_SIZE), ("Buffer Blocks", n * BLCKSZ),
            ("Buffer IO Condition Variables", n * CV_SIZE)]


def num_semaphores(settings) -> int:
    return BUF_HDR_STRIPES


# -- fast bindings of the spinlock semaphores -----------------------------------------------

try:
    from _multiprocessing import SemLock as _SemLock
except ImportError:  # pragma: no cover - a Python built without it
    _SemLock = None
_SEMAPHORE = 1  # multiprocessing.synchronize.SEMAPHORE
_SEM_VALUE_MAX = 0x7FFFFFFF


def semaphore_ops(sem: posix_ipc.Semaphore) -> tuple[Callable[[], object], Callable[[], object]]:
    """(acquire, release) of the named POSIX semaphore ``sem``, for hot paths.

    posix_ipc's acquire gives up the GIL around every sem_wait. CPython's own
    _multiprocessing.SemLock, opened on the same named semaphore, first tries
    sem_trywait with the GIL held and only blocks (GIL released) if that fails:
    an uncontended acquire + release pair costs about half as much. It is the
    same kernel object, so either binding may be used by any process at any
    time. A signal during a blocked wait: SemLock retries by itself unless a
    Python signal handler raises, in which case that exception propagates with
    nothing held (posix_ipc raises SignalError instead, which callers retry).
    The handle is closed when the returned methods are dropped. Falls back to
    posix_ipc's own methods where SemLock is unavailable."""
    try:
        lock = _SemLock._rebuild(0, _SEMAPHORE, _SEM_VALUE_MAX, sem.name)  # type: ignore
    except Exception:
        return sem.acquire, sem.release
    return lock.acquire, lock.release


class BufferDescriptors:
    """Handles on the descriptor array, blocks and per-buffer locks of a segment."""

    def __init__(self, seg: ShmemSegment, nbuffers: int) -> None:
        self.nbuffers = nbuffers
        region = seg.region("Buffer Descriptors")
        self.region = region
        self.wi = region.cast("i")
        self.wu = region.cast("I")
        self.blocks = seg.region("Buffer Blocks")
        base = seg.sem_base.get(__name__, 0)
        stripes = [semaphore_ops(sem) for sem in seg.sems[base:base + BUF_HDR_STRIPES]]
        self.hdr_acquire = [stripes[i % BUF_HDR_STRIPES][0] for i in range(nbuffers)]
        self.hdr_release = [stripes[i % BUF_HDR_STRIPES][1] for i in range(nbuffers)]
        self.content_locks = [LWLock(region, i * DESC_SIZE + CONTENT_LOCK_OFFSET,
                                     i, LWTRANCHE_BUFFER_CONTENT) for i in range(nbuffers)]
        # Each content lock keeps the spinlock semaphore it chose, through the faster binding.
        fast: dict[int, tuple[Callable[[], object], Callable[[], object]]] = {}
        for lock in self.content_locks:
            sem = getattr(lock.spin_acquire, "__self__", None)
            if isinstance(sem, posix_ipc.Semaphore):
                ops = fast.get(id(sem))
                if ops is None:
                    ops = fast[id(sem)] = semaphore_ops(sem)
                lock.spin_acquire, lock.spin_release = ops
        cvs = seg.region("Buffer IO Condition Variables")
        self.io_cvs = [ConditionVariable(cvs, i * CV_SIZE, i) for i in range(nbuffers)]
        self.pages = [self.blocks[i * BLCKSZ:(i + 1) * BLCKSZ] for i in range(nbuffers)]

    def init(self) -> None:
        """InitBufferPool: every buffer free, on the free list in order."""
        wi = self.wi
        for i in range(self.nbuffers):
            b = i * DESC_WORDS
            wi[b:b + DESC_WORDS] = _EMPTY_DESC
            wi[b + W_BUF_ID] = i
            wi[b + W_FREE_NEXT] = i + 1 if i + 1 < self.nbuffers else FREENEXT_END_OF_LIST
            wi[b + W_WAIT_BACKEND] = -1
            self.content_locks[i].initialize()
            self.io_cvs[i].initialize()

    # -- header access -------------------------------------------------------------

    def tag(self, buf: int) -> tuple[int, int, int, int, int]:
        """(spcOid, dbOid, relNumber, forkNum, blockNum); OIDs and block unsigned."""
        return _unpack_tag(self.region, buf * DESC_SIZE)

    def set_tag(self, buf: int, tag: tuple[int, int, int, int, int]) -> None:
        b = buf * DESC_WORDS
        wu = self.wu
        wu[b], wu[b + 1], wu[b + 2] = tag[0], tag[1], tag[2]
        self.wi[b + 3] = tag[3]
        wu[b + 4] = tag[4]

    def state(self, buf: int) -> int:
        """An unlocked read of the state word (for tools and heuristics)."""
        return self.wu[buf * DESC_WORDS + W_STATE]

    def lock_buf_hdr(self, buf: int) -> int:
        """LockBufHdr: take the header lock; returns the state word."""
        self.hdr_acquire[buf]()
        i = buf * DESC_WORDS + W_STATE
        state = self.wu[i]
        self.wu[i] = state | BM_LOCKED
        return state

    def unlock_buf_hdr(self, buf: int, state: int) -> None:
        """UnlockBufHdr: store ``state`` (without BM_LOCKED) and release."""
        self.wu[buf * DESC_WORDS + W_STATE] = state & ~BM_LOCKED & 0xFFFFFFFF
        self.hdr_release[buf]()


_unpack_tag = DESC_TAG.unpack_from
_EMPTY_DESC = memoryview(bytes(DESC_SIZE)).cast("i")


# The handles built by the process that initialised the segment (the postmaster):
# they only wrap shared memory and inherited semaphores, so forked children reuse
# them instead of building NBuffers lock and condition-variable objects each.
_built: tuple[ShmemSegment, BufferDescriptors] | None = None


def shmem_init(seg: ShmemSegment, settings) -> None:
    global _built
    descs = BufferDescriptors(seg, settings.get("shared_buffers"))
    descs.init()
    _built = (seg, descs)


def buffer_descriptors(seg: ShmemSegment, nbuffers: int) -> BufferDescriptors:
    """The descriptor handles for ``seg``: inherited from the postmaster when it
    built them for this very segment, else built now."""
    if _built is not None and _built[0] is seg and _built[1].nbuffers == nbuffers:
        return _built[1]
    return BufferDescriptors(seg, nbuffers)
