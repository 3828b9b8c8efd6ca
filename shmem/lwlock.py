"""Lightweight locks — mirrors storage/lmgr/lwlock.c as it was before 9.5.

LWLocks protect shared data structures for short stretches of code: they are
either exclusive or shared, have no deadlock detection, and are released
automatically on error (``lwlock_release_all``).

Layout
------
An LWLock is 16 bytes anywhere in the segment (``LWLock(buf, offset, lock_id,
tranche)``), four int32 words:

    state    exclusive bit (LW_VAL_EXCLUSIVE), shared-holder count (low 24 bits),
             LW_FLAG_HAS_WAITERS, LW_FLAG_RELEASE_OK — PostgreSQL 15's bits
    head     first PGPROC slot of the wait queue, or -1
    tail     last PGPROC slot of the wait queue (undefined while head is -1)
    tranche  the tranche id, for wait events and statistics

Every process's wait fields (PostgreSQL's PGPROC.lwWaiting, lwWaitMode,
lwWaitLink, plus the condition-variable link) live in the region "LWLock Wait
Data", one 32-byte entry per PGPROC slot; a waiter sleeps on its own PGPROC
semaphore (``ProcArray.proc_semaphore``).

Protocol between processes
--------------------------
All of a lock's words — state and queue — and the wait fields of the
processes queued on it are read and written only under the lock's *spinlock*:
one of NSTRIPES semaphores, chosen as ``lock_id % NSTRIPES``. A spinlock is
held for a few dozen bytecodes, never while sleeping, and never together with
another spinlock, so two locks sharing a stripe only slow each other down.

acquire:  take the spinlock; if the state allows ``mode``, update it, drop the
          spinlock, done. Otherwise append myself to the queue (lwWaiting=1,
          lwWaitMode=mode), set HAS_WAITERS, drop the spinlock, and sleep on my
          semaphore until lwWaiting is 0. Then take the spinlock again, set
          RELEASE_OK (I am retrying) and start over: being woken does not grant
          the lock, it only says that trying again is worthwhile (see the
          comment in LWLockAcquire on pgsql-hackers 29-Dec-01).
release:  take the spinlock, drop my hold. If nobody holds the lock now and
          HAS_WAITERS and RELEASE_OK are both set, cut a prefix off the queue:
          every LW_WAIT_UNTIL_FREE waiter (always queued at the head, as in
          PostgreSQL 15), then either the single exclusive waiter or the run of
          shared waiters that follows. Clear RELEASE_OK if any of them will
          retry, so that further releases do not wake more processes until one
          of them has run (no thundering herd). Drop the spinlock, then for each
          woken process read its link, set lwWaiting=0 and post its semaphore —
          in that order, because once lwWaiting is 0 it may queue elsewhere.

No wake-up is lost: the test "must I wait?" and the enqueueing happen under
one spinlock hold, and a releaser decides whom to wake under the same
spinlock, so a releaser either sees the waiter in the queue or the waiter sees
the lock free. (PostgreSQL 9.5+ tests the state with a CAS before queueing,
so it must queue and then re-check; here the re-check is implied.) A
semaphore post survives until consumed, so waking a process that has not yet
gone to sleep is harmless. A process sleeping for other reasons (a condition
variable) may consume a post meant for another wait: each loop re-checks its
own flag and re-posts the extra wake-ups it absorbed before returning, as
PostgreSQL's extraWaits.

Where we differ from PostgreSQL
-------------------------------
- The state is guarded by a semaphore spinlock, not changed by atomic
  compare-and-swap: there are no fast atomics in Python (the ``atomics``
  package costs 7-14 µs per operation, a semaphore round trip 0.14 µs). Hence
  no LW_FLAG_LOCKED bit and no queue-then-recheck dance (see above).
- Release wakes, after the LW_WAIT_UNTIL_FREE waiters, a run of shared waiters
  *at the head* of the queue (9.4's rule); 9.5+ also wakes shared waiters
  queued behind an exclusive one.
- ``lwlock_acquire`` returns True if it had to wait (PostgreSQL's LWLockAcquire
  returns true if the lock was free at once).
- The WAL insertion locks live in the main array, not in XLogCtl; their
  insertingAt variables are the caller's (``lwlock_wait_for_var`` takes any
  8-byte cell).
- A signal handler that raises while a process sleeps here (PostgreSQL holds
  interrupts instead) takes the process off the queue cleanly and passes any
  wake-up it received on; a handler that only sets a flag is the norm.
- Per-tranche acquisition/wait counters are kept in every process and
  published with ``pgstat_report_lwlocks`` (PostgreSQL only has the
  LWLOCK_STATS compile option).

A process that dies holding an LWLock or a spinlock is a crash: the postmaster
reinitialises shared memory.
"""

from __future__ import annotations

import ctypes
from array import array

import posix_ipc

from shmem.proc import ProcArray, num_slots
from shmem.segment import ShmemSegment

# ---------------------------------------------------------------------------
# Modes and state bits (lwlock.h / lwlock.c of PostgreSQL 15)

LW_EXCLUSIVE = 0
LW_SHARED = 1
LW_WAIT_UNTIL_FREE = 2  # only inside: the mode of lwlock_acquire_or_wait's wait

LW_FLAG_HAS_WAITERS = 1 << 30
LW_FLAG_RELEASE_OK = 1 << 29
LW_VAL_EXCLUSIVE = 1 << 24
LW_VAL_SHARED = 1
LW_LOCK_MASK = (1 << 25) - 1
LW_SHARED_MASK = (1 << 24) - 1
_WAKE_MASK = LW_FLAG_HAS_WAITERS | LW_FLAG_RELEASE_OK | LW_LOCK_MASK
_WAKE_WANTED = LW_FLAG_HAS_WAITERS | LW_FLAG_RELEASE_OK

LWLOCK_SIZE = 16  # state, head, tail, tranche: int32 each
NIL = -1
NSTRIPES = 128  # spinlock semaphores shared by all LWLocks and condition variables

# Per-PGPROC wait fields in "LWLock Wait Data": int32 words of one entry.
WD_WAITING, WD_MODE, WD_LINK, WD_CV_NEXT, WD_CV_PREV, WD_CV_QUEUED = range(6)
WD_STRIDE = 8  # words per entry (32 bytes)

# ---------------------------------------------------------------------------
# Individual locks and tranches (lwlocknames.txt and BuiltinTrancheIds, PG 15)

INDIVIDUAL_LWLOCKS: dict[str, int] = {
    "ShmemIndexLock": 1, "OidGenLock": 2, "XidGenLock": 3, "ProcArrayLock": 4,
    "SInvalReadLock": 5, "SInvalWriteLock": 6, "WALBufMappingLock": 7, "WALWriteLock": 8,
    "ControlFileLock": 9, "XactSLRULock": 11, "SubtransSLRULock": 12,
    "MultiXactGenLock": 13, "MultiXactOffsetSLRULock": 14, "MultiXactMemberSLRULock": 15,
    "RelCacheInitLock": 16, "CheckpointerCommLock": 17, "TwoPhaseStateLock": 18,
    "TablespaceCreateLock": 19, "BtreeVacuumLock": 20, "AddinShmemInitLock": 21,
    "AutovacuumLock": 22, "AutovacuumScheduleLock": 23, "SyncScanLock": 24,
    "RelationMappingLock": 25, "NotifySLRULock": 26, "NotifyQueueLock": 27,
    "SerializableXactHashLock": 28, "SerializableFinishedListLock": 29,
    "SerializablePredicateListLock": 30, "SerialSLRULock": 31, "SyncRepLock": 32,
    "BackgroundWorkerLock": 33, "DynamicSharedMemoryControlLock": 34, "AutoFileLock": 35,
    "ReplicationSlotAllocationLock": 36, "ReplicationSlotControlLock": 37,
    "CommitTsSLRULock": 38, "CommitTsLock": 39, "ReplicationOriginLock": 40,
    "MultiXactTruncationLock": 41, "OldSnapshotTimeMapLock": 42, "LogicalRepWorkerLock": 43,
    "XactTruncationLock": 44, "WrapLimitsVacuumLock": 46, "NotifyQueueTailLock": 47,
}
NUM_INDIVIDUAL_LWLOCKS = 48

BUILTIN_TRANCHE_NAMES = (
    "XactBuffer", "CommitTsBuffer", "SubtransBuffer", "MultiXactOffsetBuffer",
    "MultiXactMemberBuffer", "NotifyBuffer", "SerialBuffer", "WALInsert", "BufferContent",
    "ReplicationOriginState", "ReplicationSlotIO", "LockFastPath", "BufferMapping",
    "LockManager", "PredicateLockManager", "ParallelHashJoin", "ParallelQueryDSA",
    "PerSessionDSA", "PerSessionRecordType", "PerSessionRecordTypmod", "SharedTupleStore",
    "SharedTidBitmap", "ParallelAppend", "PerXactPredicateList", "PgStatsDSA", "PgStatsHash",
    "PgStatsData",
)
(LWTRANCHE_XACT_BUFFER, LWTRANCHE_COMMITTS_BUFFER, LWTRANCHE_SUBTRANS_BUFFER,
 LWTRANCHE_MULTIXACTOFFSET_BUFFER, LWTRANCHE_MULTIXACTMEMBER_BUFFER, LWTRANCHE_NOTIFY_BUFFER,
 LWTRANCHE_SERIAL_BUFFER, LWTRANCHE_WAL_INSERT, LWTRANCHE_BUFFER_CONTENT,
 LWTRANCHE_REPLICATION_ORIGIN_STATE, LWTRANCHE_REPLICATION_SLOT_IO, LWTRANCHE_LOCK_FASTPATH,
 LWTRANCHE_BUFFER_MAPPING, LWTRANCHE_LOCK_MANAGER, LWTRANCHE_PREDICATE_LOCK_MANAGER,
 LWTRANCHE_PARALLEL_HASH_JOIN, LWTRANCHE_PARALLEL_QUERY_DSA, LWTRANCHE_PER_SESSION_DSA,
 LWTRANCHE_PER_SESSION_RECORD_TYPE, LWTRANCHE_PER_SESSION_RECORD_TYPMOD,
 LWTRANCHE_SHARED_TUPLESTORE, LWTRANCHE_SHARED_TIDBITMAP, LWTRANCHE_PARALLEL_APPEND,
 LWTRANCHE_PER_XACT_PREDICATE_LIST, LWTRANCHE_PGSTATS_DSA, LWTRANCHE_PGSTATS_HASH,
 LWTRANCHE_PGSTATS_DATA) = range(NUM_INDIVIDUAL_LWLOCKS,
                                 NUM_INDIVIDUAL_LWLOCKS + len(BUILTIN_TRANCHE_NAMES))
LWTRANCHE_FIRST_USER_DEFINED = NUM_INDIVIDUAL_LWLOCKS + len(BUILTIN_TRANCHE_NAMES)
NUM_TRANCHES = LWTRANCHE_FIRST_USER_DEFINED

# The main array ("LWLock Array"): individual locks (tranche id = index), then
# the partition locks, as MainLWLockArray; then the WAL insertion locks.
NUM_BUFFER_PARTITIONS = 128
NUM_LOCK_PARTITIONS = 16
NUM_PREDICATELOCK_PARTITIONS = 16
NUM_XLOGINSERT_LOCKS = 8
BUFFER_MAPPING_LWLOCK_OFFSET = NUM_INDIVIDUAL_LWLOCKS
LOCK_MANAGER_LWLOCK_OFFSET = BUFFER_MAPPING_LWLOCK_OFFSET + NUM_BUFFER_PARTITIONS
PREDICATELOCK_MANAGER_LWLOCK_OFFSET = LOCK_MANAGER_LWLOCK_OFFSET + NUM_LOCK_PARTITIONS
WAL_INSERT_LWLOCK_OFFSET = PREDICATELOCK_MANAGER_LWLOCK_OFFSET + NUM_PREDICATELOCK_PARTITIONS
NUM_MAIN_LWLOCKS = WAL_INSERT_LWLOCK_OFFSET + NUM_XLOGINSERT_LOCKS


def _main_tranche(i: int) -> int:
    if i < NUM_INDIVIDUAL_LWLOCKS:
        return i
    if i < LOCK_MANAGER_LWLOCK_OFFSET:
        return LWTRANCHE_BUFFER_MAPPING
    if i < PREDICATELOCK_MANAGER_LWLOCK_OFFSET:
        return LWTRANCHE_LOCK_MANAGER
    if i < WAL_INSERT_LWLOCK_OFFSET:
        return LWTRANCHE_PREDICATE_LOCK_MANAGER
    return LWTRANCHE_WAL_INSERT


_INDIVIDUAL_NAMES = [f"<unassigned:{i}>" for i in range(NUM_INDIVIDUAL_LWLOCKS)]
for _name, _i in INDIVIDUAL_LWLOCKS.items():
    _INDIVIDUAL_NAMES[_i] = _name.removesuffix("Lock")  # wait events drop "Lock"
TRANCHE_NAMES: tuple[str, ...] = (*_INDIVIDUAL_NAMES, *BUILTIN_TRANCHE_NAMES)


def tranche_name(tranche: int) -> str:
    """GetLWTrancheName: what pg_stat_activity.wait_event shows for an LWLock wait."""
    if 0 <= tranche < NUM_TRANCHES:
        return TRANCHE_NAMES[tranche]
    return "extension"


# ---------------------------------------------------------------------------
# Wait events (utils/wait_event.h): classes and the names known so far

PG_WAIT_LWLOCK = 0x01000000
PG_WAIT_LOCK = 0x03000000
PG_WAIT_BUFFER_PIN = 0x04000000
PG_WAIT_ACTIVITY = 0x05000000
PG_WAIT_CLIENT = 0x06000000
PG_WAIT_EXTENSION = 0x07000000
PG_WAIT_IPC = 0x08000000
PG_WAIT_TIMEOUT = 0x09000000
PG_WAIT_IO = 0x0A000000

WAIT_EVENT_CLASS_NAMES = {
    PG_WAIT_LWLOCK: "LWLock", PG_WAIT_LOCK: "Lock", PG_WAIT_BUFFER_PIN: "BufferPin",
    PG_WAIT_ACTIVITY: "Activity", PG_WAIT_CLIENT: "Client", PG_WAIT_EXTENSION: "Extension",
    PG_WAIT_IPC: "IPC", PG_WAIT_TIMEOUT: "Timeout", PG_WAIT_IO: "IO",
}

# The start of PostgreSQL 15's WaitEventIPC, so that the numbers match.
(WAIT_EVENT_APPEND_READY, WAIT_EVENT_ARCHIVE_CLEANUP_COMMAND, WAIT_EVENT_ARCHIVE_COMMAND,
 WAIT_EVENT_BACKEND_TERMINATION, WAIT_EVENT_BACKUP_WAIT_WAL_ARCHIVE,
 WAIT_EVENT_BGWORKER_SHUTDOWN, WAIT_EVENT_BGWORKER_STARTUP, WAIT_EVENT_BTREE_PAGE,
 WAIT_EVENT_BUFFER_IO, WAIT_EVENT_CHECKPOINT_DONE,
 WAIT_EVENT_CHECKPOINT_START) = range(PG_WAIT_IPC, PG_WAIT_IPC + 11)
WAIT_EVENT_BUFFER_PIN = PG_WAIT_BUFFER_PIN

# Full wait_event_info -> name, for every class except LWLock and Lock; other
# modules add theirs with register_wait_events().
WAIT_EVENT_NAMES: dict[int, str] = {
    WAIT_EVENT_APPEND_READY: "AppendReady",
    WAIT_EVENT_ARCHIVE_CLEANUP_COMMAND: "ArchiveCleanupCommand",
    WAIT_EVENT_ARCHIVE_COMMAND: "ArchiveCommand",
    WAIT_EVENT_BACKEND_TERMINATION: "BackendTermination",
    WAIT_EVENT_BACKUP_WAIT_WAL_ARCHIVE: "BackupWaitWalArchive",
    WAIT_EVENT_BGWORKER_SHUTDOWN: "BgWorkerShutdown",
    WAIT_EVENT_BGWORKER_STARTUP: "BgWorkerStartup",
    WAIT_EVENT_BTREE_PAGE: "BtreePage",
    WAIT_EVENT_BUFFER_IO: "BufferIO",
    WAIT_EVENT_CHECKPOINT_DONE: "CheckpointDone",
    WAIT_EVENT_CHECKPOINT_START: "CheckpointStart",
    WAIT_EVENT_BUFFER_PIN: "BufferPin",
}

# LockTagType names, for the Lock class (heavyweight locks).
LOCK_TAG_NAMES = ("relation", "extend", "frozenid", "page", "tuple", "transactionid",
                  "virtualxid", "spectoken", "object", "userlock", "advisory")


def register_wait_events(names: dict[int, str]) -> None:
    WAIT_EVENT_NAMES.update(names)


def wait_event_name(info: int) -> tuple[str | None, str | None]:
    """(wait_event_type, wait_event) as pg_stat_activity shows them; (None, None) if 0."""
    if not info:
        return None, None
    cls = info & 0xFF000000
    event = info & 0x0000FFFF
    type_name = WAIT_EVENT_CLASS_NAMES.get(cls, "???")
    if cls == PG_WAIT_LWLOCK:
        return type_name, tranche_name(event)
    if cls == PG_WAIT_LOCK:
        name = LOCK_TAG_NAMES[event] if event < len(LOCK_TAG_NAMES) else "???"
        return type_name, name
    return type_name, WAIT_EVENT_NAMES.get(info, "unknown wait event")


# ---------------------------------------------------------------------------
# Process state

class _Context:
    """Segment bindings (inherited across fork) and this process's PGPROC."""

    __slots__ = ("seg", "stripes", "main", "wd", "nslots", "proc_sems", "posts", "stats",
                 "slot", "sem_acquire", "procs", "extra_waits", "cv_sleep_target")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.seg: ShmemSegment | None = None
        self.stripes: list[posix_ipc.Semaphore] = []
        self.main: list[LWLock] = []
        self.wd: memoryview | None = None  # "LWLock Wait Data" as int32
        self.nslots = 0
        self.proc_sems: list[posix_ipc.Semaphore] = []
        self.posts: list = []  # bound release() of every PGPROC semaphore
        self.stats: memoryview | None = None  # "LWLock Stats" as int64
        self.slot = NIL  # my PGPROC slot; NIL = cannot wait (postmaster, tools)
        self.sem_acquire = None
        self.procs: ProcArray | None = None
        self.extra_waits = 0  # wake-ups absorbed while sleeping for something else
        self.cv_sleep_target = None  # condition_variable.py's cv_sleep_target


_ctx = _Context()

# LWLocks held by this process, oldest first (held_lwlocks). Mutated in place
# only: the hot paths bind it as a default argument.
_held: list[LWLock] = []
# Per-tranche counters of this process: acquisitions at [t], waits at [NUM_TRANCHES + t].
_counts: list[int] = [0] * (2 * NUM_TRANCHES)
_WAITS = NUM_TRANCHES
_SignalError = posix_ipc.SignalError


# ---------------------------------------------------------------------------
# Shared memory

def _stats_rows(nslots: int) -> int:
    return nslots + 1  # one row per PGPROC slot, plus the sum of exited processes


def shmem_requests(settings) -> list[tuple[str, int]]:
    n = num_slots(settings.get("max_connections"))
    return [("LWLock Array", NUM_MAIN_LWLOCKS * LWLOCK_SIZE),
            ("LWLock Wait Data", n * WD_STRIDE * 4),
            ("LWLock Stats", _stats_rows(n) * 2 * NUM_TRANCHES * 8)]


def num_semaphores(settings) -> int:
    return NSTRIPES


def shmem_init(seg: ShmemSegment, settings) -> None:
    """CreateLWLocks: attach, then initialise every lock of the main array."""
    seg.region("LWLock Stats")[:] = bytes(len(seg.region("LWLock Stats")))
    attach(seg, settings)
    wd = _ctx.wd
    for i in range(_ctx.nslots):
        _init_wait_data(wd, i)
    for lock in _ctx.main:
        lock.initialize()


def attach(seg: ShmemSegment, settings) -> None:
    """Bind this process to a segment whose LWLocks are initialised (children
    inherit the binding across fork)."""
    detach()
    procs = ProcArray(seg, settings.get("max_connections"))
    base = seg.sem_base.get(__name__, 0)
    if len(seg.sems) < base + NSTRIPES:
        raise RuntimeError("segment lacks the LWLock spinlock semaphores")
    _ctx.seg = seg
    _ctx.stripes = seg.sems[base:base + NSTRIPES]
    _ctx.nslots = procs.nslots
    _ctx.wd = seg.region("LWLock Wait Data").cast("i")
    _ctx.stats = seg.region("LWLock Stats").cast("q")
    _ctx.proc_sems = [procs.proc_semaphore(i) for i in range(procs.nslots)]
    _ctx.posts = [s.release for s in _ctx.proc_sems]
    array_region = seg.region("LWLock Array")
    _ctx.main = [LWLock(array_region, i * LWLOCK_SIZE, i, _main_tranche(i))
                 for i in range(NUM_MAIN_LWLOCKS)]


def detach() -> None:
    """Forget the segment (so that it can be unmapped): tests, reinitialisation."""
    _held.clear()
    _counts[:] = [0] * len(_counts)
    _ctx.reset()


def _init_wait_data(wd: memoryview, slot: int) -> None:
    b = slot * WD_STRIDE
    wd[b:b + WD_STRIDE] = array("i", [0, 0, NIL, NIL, NIL, 0, 0, 0])


def init_proc(procs: ProcArray) -> None:
    """InitProcess's part: adopt the PGPROC slot just claimed (claim_backend or
    claim_aux) so that this process can wait. Resets its semaphore to 0
    (PGSemaphoreReset), its wait fields and its statistics."""
    if _ctx.wd is None:
        raise RuntimeError("shmem.lwlock is not attached to a segment")
    slot = procs.my_slot
    if slot is None:
        raise RuntimeError("init_proc before the PGPROC slot is claimed")
    sem = _ctx.proc_sems[slot]
    while True:
        try:
            sem.acquire(0)
        except posix_ipc.BusyError:
            break
        except _SignalError:
            pass
    _init_wait_data(_ctx.wd, slot)
    _ctx.slot = slot
    _ctx.sem_acquire = sem.acquire
    _ctx.procs = procs
    _ctx.extra_waits = 0
    _ctx.cv_sleep_target = None
    _held.clear()
    _counts[:] = [0] * len(_counts)
    row = slot * 2 * NUM_TRANCHES
    _ctx.stats[row:row + 2 * NUM_TRANCHES] = array("q", _counts)


def proc_exit() -> None:
    """ProcKill's part, at a normal exit: release everything, cancel a prepared
    condition-variable sleep, fold my counters into the exited-processes row."""
    lwlock_release_all()
    if _ctx.cv_sleep_target is not None:
        from shmem.condition_variable import cv_cancel_sleep
        cv_cancel_sleep()
    if _ctx.slot != NIL:
        pgstat_report_lwlocks(final=True)
        _ctx.slot = NIL
        _ctx.procs = None


# ---------------------------------------------------------------------------
# The lock object

class LWLock:
    """A handle on the 16-byte lock at ``buf[offset:]``; ``lock_id`` picks the
    spinlock stripe (any integer: unrelated locks should rarely be equal modulo
    NSTRIPES). ``tranche`` None reads it from shared memory. Handles are cheap
    to keep and compare equal when they name the same lock."""

    __slots__ = ("w", "lock_id", "tranche", "spin_acquire", "spin_release", "addr")

    def __init__(self, buf: memoryview, offset: int, lock_id: int,
                 tranche: int | None = None) -> None:
        if offset % 4:
            raise ValueError("LWLock offset must be 4-byte aligned")
        if not _ctx.stripes:
            raise RuntimeError("shmem.lwlock is not attached to a segment")
        view = buf[offset:offset + LWLOCK_SIZE]
        if len(view) != LWLOCK_SIZE:
            raise ValueError("LWLock does not fit in the buffer")
        self.w = view.cast("i")
        self.addr = ctypes.addressof(ctypes.c_char.from_buffer(view))
        self.lock_id = lock_id
        self.tranche = self.w[3] if tranche is None else tranche
        if not 0 <= self.tranche < NUM_TRANCHES:
            raise ValueError(f"unknown LWLock tranche {self.tranche}")
        sem = _ctx.stripes[lock_id % NSTRIPES]
        self.spin_acquire = sem.acquire
        self.spin_release = sem.release

    def initialize(self) -> None:
        """LWLockInitialize: free, no waiters, RELEASE_OK."""
        w = self.w
        w[0] = LW_FLAG_RELEASE_OK
        w[1] = w[2] = NIL
        w[3] = self.tranche

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LWLock) and other.addr == self.addr

    def __hash__(self) -> int:
        return hash(self.addr)

    def __repr__(self) -> str:
        return f"<LWLock {self.lock_id} {tranche_name(self.tranche)}>"

    def state(self) -> tuple[bool, int, bool, bool]:
        """(exclusive, shared holders, has waiters, release ok) — unlocked read."""
        s = self.w[0]
        return (bool(s & LW_VAL_EXCLUSIVE), s & LW_SHARED_MASK,
                bool(s & LW_FLAG_HAS_WAITERS), bool(s & LW_FLAG_RELEASE_OK))

    def waiters(self) -> list[tuple[int, int]]:
        """The wait queue as (PGPROC slot, mode), head first (for tests and tools)."""
        wd = _ctx.wd
        out = []
        pending = _spin_acquire_nointr(self.spin_acquire)
        p = self.w[1]
        while p != NIL and len(out) <= _ctx.nslots:
            out.append((p, wd[p * WD_STRIDE + WD_MODE]))
            p = wd[p * WD_STRIDE + WD_LINK]
        self.spin_release()
        if pending is not None:
            raise pending
        return out


# ---------------------------------------------------------------------------
# Acquire and release: the hot paths first, each with its slow path below.

def lwlock_acquire(lock: LWLock, mode: int, _append=_held.append, _counts=_counts) -> bool:
    """LWLockAcquire: take ``lock`` in LW_EXCLUSIVE or LW_SHARED mode, sleeping
    while it is unavailable. Returns True if it had to wait."""
    w = lock.w
    try:
        lock.spin_acquire()
    except BaseException as exc:
        _spin_acquire_retry(lock, exc)
    s = w[0]
    if mode == LW_EXCLUSIVE:
        if not s & LW_LOCK_MASK:
            w[0] = s + LW_VAL_EXCLUSIVE
            lock.spin_release()
            _append(lock)
            _counts[lock.tranche] += 1
            return False
    elif mode == LW_SHARED:
        if not s & LW_VAL_EXCLUSIVE:
            w[0] = s + LW_VAL_SHARED
            lock.spin_release()
            _append(lock)
            _counts[lock.tranche] += 1
            return False
    else:
        lock.spin_release()
        raise ValueError(f"invalid LWLock mode {mode}")
    _acquire_slow(lock, mode, s)  # returns holding the lock
    _append(lock)
    _counts[lock.tranche] += 1
    return True


def lwlock_conditional_acquire(lock: LWLock, mode: int, _append=_held.append,
                               _counts=_counts) -> bool:
    """LWLockConditionalAcquire: take the lock if it is free now; never sleeps."""
    w = lock.w
    try:
        lock.spin_acquire()
    except BaseException as exc:
        _spin_acquire_retry(lock, exc)
    s = w[0]
    if mode == LW_EXCLUSIVE:
        if s & LW_LOCK_MASK:
            lock.spin_release()
            return False
        w[0] = s + LW_VAL_EXCLUSIVE
    elif mode == LW_SHARED:
        if s & LW_VAL_EXCLUSIVE:
            lock.spin_release()
            return False
        w[0] = s + LW_VAL_SHARED
    else:
        lock.spin_release()
        raise ValueError(f"invalid LWLock mode {mode}")
    lock.spin_release()
    _append(lock)
    _counts[lock.tranche] += 1
    return True


def lwlock_release(lock: LWLock, _held=_held, _pop=_held.pop) -> None:
    """LWLockRelease: drop my hold and wake whoever can now make progress."""
    if _held and _held[-1] is lock:
        _pop()
    else:
        _forget_held(lock)
    w = lock.w
    try:
        lock.spin_acquire()
    except BaseException as exc:
        # Interrupted: the lock must be released all the same, then any
        # exception a signal handler raised goes on its way.
        pending = _spin_acquire_nointr(lock.spin_acquire)
        _release_locked(lock)
        if not isinstance(exc, _SignalError):
            pending = exc
        if pending is not None:
            raise pending from None
        return
    s = w[0]
    s = s - LW_VAL_EXCLUSIVE if s & LW_VAL_EXCLUSIVE else s - LW_VAL_SHARED
    if s & _WAKE_MASK == _WAKE_WANTED:
        _wakeup(lock, s)  # drops the spinlock
    else:
        w[0] = s
        lock.spin_release()


def _release_locked(lock: LWLock) -> None:
    """The release proper, the spinlock being held (interrupted-acquire path)."""
    w = lock.w
    s = w[0]
    s = s - LW_VAL_EXCLUSIVE if s & LW_VAL_EXCLUSIVE else s - LW_VAL_SHARED
    if s & _WAKE_MASK == _WAKE_WANTED:
        _wakeup(lock, s)
    else:
        w[0] = s
        lock.spin_release()


def _forget_held(lock: LWLock) -> None:
    for i in range(len(_held) - 1, -1, -1):
        if _held[i].addr == lock.addr:
            del _held[i]
            return
    raise RuntimeError(f"lock {tranche_name(lock.tranche)} is not held")


def _spin_acquire_retry(lock: LWLock, exc: BaseException) -> None:
    """The spinlock's sem_wait was interrupted: retry after EINTR; a signal
    handler's own exception propagates (nothing is held yet)."""
    if not isinstance(exc, _SignalError):
        raise exc
    while True:
        try:
            lock.spin_acquire()
            return
        except _SignalError:
            pass


def _spin_acquire_nointr(acquire) -> BaseException | None:
    """Take a spinlock whatever signal handlers raise; returns the first such
    exception for the caller to raise once its critical work is done."""
    pending = None
    while True:
        try:
            acquire()
            return pending
        except _SignalError:
            pass
        except BaseException as exc:  # deferred, not swallowed
            if pending is None:
                pending = exc


def _queue_self(w: memoryview, me: int, mode: int, state: int) -> None:
    """LWLockQueueSelf, the spinlock being held: LW_WAIT_UNTIL_FREE at the head,
    others at the tail."""
    wd = _ctx.wd
    b = me * WD_STRIDE
    wd[b + WD_WAITING] = 1
    wd[b + WD_MODE] = mode
    head = w[1]
    if mode == LW_WAIT_UNTIL_FREE:
        wd[b + WD_LINK] = head
        if head == NIL:
            w[2] = me
        w[1] = me
    else:
        wd[b + WD_LINK] = NIL
        if head == NIL:
            w[1] = me
        else:
            wd[w[2] * WD_STRIDE + WD_LINK] = me
        w[2] = me
    w[0] = state | LW_FLAG_HAS_WAITERS


def _wakeup(lock: LWLock, s: int) -> None:
    """LWLockWakeup with the spinlock held and ``s`` the new, free state: cut
    off the queue's prefix that may proceed, store the state, drop the
    spinlock, wake them."""
    w = lock.w
    wd = _ctx.wd
    head = p = w[1]
    last = NIL
    while p != NIL and wd[p * WD_STRIDE + WD_MODE] == LW_WAIT_UNTIL_FREE:
        last = p
        p = wd[p * WD_STRIDE + WD_LINK]
    if p != NIL:
        # One exclusive waiter or a run of shared ones; they will retry, so
        # hold further wake-ups back until one of them has run.
        s &= ~LW_FLAG_RELEASE_OK
        shared = wd[p * WD_STRIDE + WD_MODE] == LW_SHARED
        last = p
        p = wd[p * WD_STRIDE + WD_LINK]
        if shared:
            while p != NIL and wd[p * WD_STRIDE + WD_MODE] == LW_SHARED:
                last = p
                p = wd[p * WD_STRIDE + WD_LINK]
    w[1] = p
    if p == NIL:
        w[2] = NIL
        s &= ~LW_FLAG_HAS_WAITERS
    w[0] = s
    if last == NIL:
        lock.spin_release()
        return
    wd[last * WD_STRIDE + WD_LINK] = NIL
    lock.spin_release()
    _wake_list(head)


def _wake_list(p: int) -> None:
    wd = _ctx.wd
    posts = _ctx.posts
    while p != NIL:
        b = p * WD_STRIDE
        nxt = wd[b + WD_LINK]
        wd[b + WD_LINK] = NIL
        wd[b + WD_WAITING] = 0  # after reading the link: it may queue again at once
        posts[p]()
        p = nxt


def _sleep(lock: LWLock) -> None:
    """Sleep on my semaphore until a releaser clears lwWaiting, reporting the
    wait event meanwhile. Raises (without having consumed the wake-up) only if
    a signal handler raised."""
    ctx = _ctx
    wd = ctx.wd
    b = ctx.slot * WD_STRIDE
    acquire = ctx.sem_acquire
    _counts[_WAITS + lock.tranche] += 1
    procs = ctx.procs
    procs.set_wait_event(PG_WAIT_LWLOCK | lock.tranche)
    try:
        while True:
            try:
                acquire()
            except _SignalError:
                continue
            if not wd[b + WD_WAITING]:
                return
            ctx.extra_waits += 1  # a post meant for another wait of mine
    finally:
        procs.set_wait_event(0)


def _repost_extra_waits() -> None:
    """Give back the wake-ups absorbed while waiting (extraWaits)."""
    n, _ctx.extra_waits = _ctx.extra_waits, 0
    post = _ctx.posts[_ctx.slot]
    for _ in range(n):
        post()


def _check_can_wait(lock: LWLock) -> None:
    """Before queueing (spinlock held): PostgreSQL's PANICs, as errors."""
    if _ctx.slot == NIL:
        lock.spin_release()
        raise RuntimeError("cannot wait without a PGPROC structure")
    if _ctx.wd[_ctx.slot * WD_STRIDE + WD_WAITING]:
        lock.spin_release()
        raise RuntimeError("queueing for lock while waiting on another one")


def _acquire_slow(lock: LWLock, mode: int, s: int) -> None:
    """The lock is unavailable and its spinlock held: queue, sleep, retry."""
    _check_can_wait(lock)
    w = lock.w
    me = _ctx.slot
    woken = False
    try:
        while True:
            _queue_self(w, me, mode, s)
            lock.spin_release()
            woken = False
            _sleep(lock)
            woken = True
            try:
                lock.spin_acquire()
            except BaseException as exc:
                _spin_acquire_retry(lock, exc)
            s = w[0] | LW_FLAG_RELEASE_OK  # retrying: releasers may wake again
            if mode == LW_EXCLUSIVE:
                if not s & LW_LOCK_MASK:
                    w[0] = s + LW_VAL_EXCLUSIVE
                    lock.spin_release()
                    return
            elif not s & LW_VAL_EXCLUSIVE:
                w[0] = s + LW_VAL_SHARED
                lock.spin_release()
                return
            w[0] = s
    except BaseException:
        _abandon_wait(lock, woken)
        raise
    finally:
        if _ctx.extra_waits:
            _repost_extra_waits()


def _abandon_wait(lock: LWLock, woken: bool) -> None:
    """A signal handler raised while we waited (or were about to retry): leave
    the queue (LWLockDequeueSelf). If a releaser had already dequeued us, it
    counted on our retry — restore RELEASE_OK, pass the wake-up on if the lock
    is free, and absorb the post it sends us."""
    ctx = _ctx
    wd = ctx.wd
    me = ctx.slot
    b = me * WD_STRIDE
    w = lock.w
    _spin_acquire_nointr(lock.spin_acquire)
    prev, p = NIL, w[1]
    while p != NIL and p != me:
        prev, p = p, wd[p * WD_STRIDE + WD_LINK]
    found = p == me
    s = w[0]
    if found:
        nxt = wd[b + WD_LINK]
        if prev == NIL:
            w[1] = nxt
        else:
            wd[prev * WD_STRIDE + WD_LINK] = nxt
        if w[2] == me:
            w[2] = prev
        wd[b + WD_LINK] = NIL
        wd[b + WD_WAITING] = 0
        if w[1] == NIL:
            w[2] = NIL
            s &= ~LW_FLAG_HAS_WAITERS
        w[0] = s
        lock.spin_release()
        return
    s |= LW_FLAG_RELEASE_OK
    if s & _WAKE_MASK == _WAKE_WANTED:
        _wakeup(lock, s)
    else:
        w[0] = s
        lock.spin_release()
    if not woken:
        # Our wake-up post is pending or imminent: consume it.
        while True:
            try:
                ctx.sem_acquire()
            except BaseException:  # the first exception is already on its way
                continue
            if not wd[b + WD_WAITING]:
                break
            ctx.extra_waits += 1


def lwlock_acquire_or_wait(lock: LWLock, mode: int, _append=_held.append,
                           _counts=_counts) -> bool:
    """LWLockAcquireOrWait: if the lock is free, take it and return True;
    otherwise wait until it is free and return False *without* taking it
    (group commit: the holder may have done our work)."""
    w = lock.w
    try:
        lock.spin_acquire()
    except BaseException as exc:
        _spin_acquire_retry(lock, exc)
    s = w[0]
    if mode == LW_EXCLUSIVE:
        free = not s & LW_LOCK_MASK
        if free:
            w[0] = s + LW_VAL_EXCLUSIVE
    elif mode == LW_SHARED:
        free = not s & LW_VAL_EXCLUSIVE
        if free:
            w[0] = s + LW_VAL_SHARED
    else:
        lock.spin_release()
        raise ValueError(f"invalid LWLock mode {mode}")
    if free:
        lock.spin_release()
        _append(lock)
        _counts[lock.tranche] += 1
        return True
    _check_can_wait(lock)
    _queue_self(w, _ctx.slot, LW_WAIT_UNTIL_FREE, s)
    lock.spin_release()
    try:
        _sleep(lock)
    except BaseException:
        _abandon_wait(lock, False)
        raise
    finally:
        if _ctx.extra_waits:
            _repost_extra_waits()
    return False


def lwlock_release_all() -> None:
    """LWLockReleaseAll: at error recovery or exit, newest first."""
    while _held:
        lwlock_release(_held[-1])


def lwlock_held_by_me(lock: LWLock) -> bool:
    return lock in _held


def lwlock_held_by_me_in_mode(lock: LWLock, mode: int) -> bool:
    if lock not in _held:
        return False
    # While I hold it, the exclusive bit is set iff my hold is the exclusive one.
    exclusive = bool(lock.w[0] & LW_VAL_EXCLUSIVE)
    return exclusive if mode == LW_EXCLUSIVE else not exclusive


def any_lwlock_held() -> bool:
    return bool(_held)


def held_lwlocks() -> list[LWLock]:
    return list(_held)


# ---------------------------------------------------------------------------
# Waiting for a variable protected by a lock (WAL insertion's insertingAt)

def lwlock_wait_for_var(lock: LWLock, var: memoryview, oldval: int) -> tuple[bool, int]:
    """LWLockWaitForVar: wait until ``lock`` is free or the 8-byte cell ``var[0]``
    (a one-element 'Q' or 'q' view, written under the lock by its holder with
    lwlock_update_var) differs from ``oldval``. Returns (True, value) if the lock
    is free, (False, new value) otherwise. Never takes the lock."""
    w = lock.w
    while True:
        try:
            lock.spin_acquire()
        except BaseException as exc:
            _spin_acquire_retry(lock, exc)
        s = w[0]
        value = var[0]
        if not s & LW_VAL_EXCLUSIVE or value != oldval:
            lock.spin_release()
            return (not s & LW_VAL_EXCLUSIVE), value
        _check_can_wait(lock)
        # RELEASE_OK: be woken as soon as the lock is released.
        _queue_self(w, _ctx.slot, LW_WAIT_UNTIL_FREE, s | LW_FLAG_RELEASE_OK)
        lock.spin_release()
        try:
            _sleep(lock)
        except BaseException:
            _abandon_wait(lock, False)
            raise
        finally:
            if _ctx.extra_waits:
                _repost_extra_waits()


def lwlock_update_var(lock: LWLock, var: memoryview, value: int) -> None:
    """LWLockUpdateVar: the exclusive holder sets ``var[0]`` and wakes the
    lwlock_wait_for_var waiters."""
    w = lock.w
    wd = _ctx.wd
    pending = _spin_acquire_nointr(lock.spin_acquire)
    var[0] = value
    head = p = w[1]
    last = NIL
    while p != NIL and wd[p * WD_STRIDE + WD_MODE] == LW_WAIT_UNTIL_FREE:
        last = p
        p = wd[p * WD_STRIDE + WD_LINK]
    if last != NIL:
        w[1] = p
        wd[last * WD_STRIDE + WD_LINK] = NIL
        if p == NIL:
            w[2] = NIL
            w[0] &= ~LW_FLAG_HAS_WAITERS
    lock.spin_release()
    if last != NIL:
        _wake_list(head)
    if pending is not None:
        raise pending


def lwlock_release_clear_var(lock: LWLock, var: memoryview, value: int) -> None:
    """LWLockReleaseClearVar: set ``var[0]`` and release the lock."""
    pending = _spin_acquire_nointr(lock.spin_acquire)
    var[0] = value
    lock.spin_release()
    lwlock_release(lock)
    if pending is not None:
        raise pending


# ---------------------------------------------------------------------------
# The main array

def get_named_lwlock(name: str) -> LWLock:
    """An individual lock by its lwlocknames.txt name ("WALWriteLock" or "WALWrite")."""
    i = INDIVIDUAL_LWLOCKS.get(name)
    if i is None:
        i = INDIVIDUAL_LWLOCKS.get(name + "Lock")
    if i is None:
        raise KeyError(f"no individual LWLock named {name!r}")
    return _main()[i]


def _array_lock(offset: int, count: int, i: int) -> LWLock:
    """The i-th of ``count`` locks of one tranche in the main array."""
    if not 0 <= i < count:
        raise IndexError(i)
    return _main()[offset + i]


def buffer_mapping_lock(partition: int) -> LWLock:
    """BufMappingPartitionLockByIndex."""
    return _array_lock(BUFFER_MAPPING_LWLOCK_OFFSET, NUM_BUFFER_PARTITIONS, partition)


def lock_manager_lock(partition: int) -> LWLock:
    """LockHashPartitionLockByIndex."""
    return _array_lock(LOCK_MANAGER_LWLOCK_OFFSET, NUM_LOCK_PARTITIONS, partition)


def predicate_lock_manager_lock(partition: int) -> LWLock:
    return _array_lock(PREDICATELOCK_MANAGER_LWLOCK_OFFSET, NUM_PREDICATELOCK_PARTITIONS,
                       partition)


def wal_insert_lock(i: int) -> LWLock:
    return _array_lock(WAL_INSERT_LWLOCK_OFFSET, NUM_XLOGINSERT_LOCKS, i)


def main_lwlocks() -> list[LWLock]:
    return list(_main())


def _main() -> list[LWLock]:
    if not _ctx.main:
        raise RuntimeError("shmem.lwlock is not attached to a segment")
    return _ctx.main


# ---------------------------------------------------------------------------
# Statistics

def lwlock_counts() -> dict[str, tuple[int, int]]:
    """This process's (acquisitions, waits) per tranche name, non-zero only."""
    return {TRANCHE_NAMES[t]: (_counts[t], _counts[_WAITS + t])
            for t in range(NUM_TRANCHES) if _counts[t] or _counts[_WAITS + t]}


def pgstat_report_lwlocks(final: bool = False) -> None:
    """Publish this process's counters into its row of "LWLock Stats" (one
    memcpy). ``final`` (at exit) folds them into the exited-processes row
    instead, so that totals survive the process."""
    ctx = _ctx
    if ctx.slot == NIL or ctx.stats is None:
        return
    n = 2 * NUM_TRANCHES
    row = ctx.slot * n
    if not final:
        ctx.stats[row:row + n] = array("q", _counts)
        return
    stats = ctx.stats
    dead = ctx.nslots * n
    spin = ctx.stripes[0]
    pending = _spin_acquire_nointr(spin.acquire)
    for i, v in enumerate(_counts):
        if v:
            stats[dead + i] += v
    stats[row:row + n] = array("q", bytes(8 * n))
    spin.release()
    _counts[:] = [0] * n
    if pending is not None:
        raise pending


def read_lwlock_stats(segment: ShmemSegment, settings) -> dict[str, tuple[int, int]]:
    """Counters summed over live and exited processes, by tranche name (for
    ``tusk_ctl stats``); tranches never used are left out. Rows are read
    without locking: a counter may be one report behind."""
    n = 2 * NUM_TRANCHES
    rows = _stats_rows(num_slots(settings.get("max_connections")))
    stats = segment.region("LWLock Stats").cast("q")
    try:
        totals = [0] * n
        for r in range(rows):
            base = r * n
            for i, v in enumerate(stats[base:base + n]):
                totals[i] += v
    finally:
        stats.release()
    return {TRANCHE_NAMES[t]: (totals[t], totals[NUM_TRANCHES + t])
            for t in range(NUM_TRANCHES) if totals[t] or totals[NUM_TRANCHES + t]}
