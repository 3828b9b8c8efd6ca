"""The heavyweight lock manager — mirrors src/backend/storage/lmgr/lock.c of
PostgreSQL 15, with ProcSleep, ProcWakeup, ProcLockWakeup, CheckDeadLock and
LockErrorCleanup of proc.c.

Heavyweight locks are what SQL sees: table locks, row locks through the
transaction-id lock, object locks. They have eight modes with PostgreSQL's
conflict table, queue fairly, are held until the end of the transaction (or
the session), show up in pg_locks, and a cycle of waits is broken by the
deadlock detector (storage/lmgr/deadlock.py).

Shared memory
-------------
Four regions, each an array of int64 words:

"LOCK hash"         a header (free-list heads), the buckets, then one LOCK per
                    possible lock (max_locks_per_transaction × PGPROC slots):
                    its tag, grantMask, waitMask, nRequested, nGranted,
                    requested[1..8], granted[1..8], the head of its PROCLOCK
                    list, its wait queue (head, tail, size) of PGPROC slots,
                    the bucket chain link and its hash code.
"PROCLOCK hash"     twice as many PROCLOCKs: which PGPROC holds which modes
                    (holdMask) of which LOCK, doubly linked into the LOCK's list.
"Fast Path Strong Relation Lock Data"
                    1024 counters of strong relation locks, by tag hash.
"Lock Manager PGPROC Data"
                    per PGPROC slot: waitLock, waitProcLock, waitLockMode,
                    waitStatus, heldLocks, the wait-queue links, waitStart,
                    lxid, and the fast-path slots (16 relation tags with three
                    mode bits each, plus the virtual-xid lock).

A LOCKTAG is a pair of ints ``(field1 | field2 << 32, field3 | field4 << 32 |
type << 48 | lockmethod << 56)`` — PostgreSQL's 16-byte tag in two words, so
that comparing a tag costs two word reads. ``hash(tag)`` picks the partition
(low 4 bits), the bucket and the strong-lock counter; Python's hash of a tuple
of ints is the same in every process.

Protocol between processes
--------------------------
- A LOCK, its PROCLOCKs and its wait queue, and the wait fields of the
  processes queued on it, are read and written under the partition's
  LockManager LWLock (exclusive), one of NUM_LOCK_PARTITIONS = 16 by tag hash.
  The free lists have their own spinlock (semaphore).
- Acquire: under the partition lock, find or create the LOCK and my PROCLOCK,
  count the request, grant it if it conflicts neither with the waiters' requests
  (waitMask: first come, first served) nor with other holders' modes. Otherwise
  join the wait queue (JoinWaitQueue: ahead of the first waiter that would wait
  for a lock I already hold), release the partition lock and sleep on my latch.
- Release: ungrant; if a released mode conflicts with a waiter's request, wake
  waiters in queue order (ProcLockWakeup): each one whose request conflicts
  neither with the requests ahead of it nor with the holders is *granted by
  the releaser*, unlinked, its waitStatus set to OK, and its latch set (after
  the partition lock is dropped). The waiter only reads its waitStatus.
- A waiter that gives up (cancel, timeout, deadlock) removes itself under the
  partition lock (RemoveFromWaitQueue); if the lock was granted meanwhile it
  keeps it and the transaction's abort releases it — never half-granted.
- After deadlock_timeout the waiter takes all 16 partition locks in order and
  runs DeadLockCheck; with a hard deadlock it leaves the queue and raises
  40P01; a soft one is fixed by reordering wait queues.
- Fast path (PostgreSQL 9.2+): AccessShare, RowShare and RowExclusive locks on
  relations go into the holder's own fast-path slots, under the holder's
  fpInfoLock, as long as the strong-lock counter for the tag's hash is zero.
  A strong locker (ShareLock and above on a relation) bumps the counter, then
  moves every process's matching fast-path entries into the main table
  (FastPathTransferRelationLocks) before looking for conflicts. The virtual
  transaction lock is kept the same way.

Where tusk differs
------------------
- fpInfoLock is a semaphore per PGPROC, not an LWLock: an LWLock round trip
  costs ~1 µs here, a semaphore 0.14 µs, and the fast path takes it twice per
  lock. It is only ever held for a few dozen bytecodes, except by a strong
  locker transferring entries, which takes a partition LWLock inside it (the
  same order as PostgreSQL: fpInfoLock, then partition lock).
- Fast-path slots store the whole relation tag (database and relation), so no
  MyDatabaseId is needed and shared catalogs take the fast path too. A slot
  whose locks are all released stays assigned to its relation until the slots
  run out, so the next transaction's lock on the same table only sets a bit.
- A lock nobody has is created already granted (one free-list hold for the
  LOCK and its PROCLOCK), and the last holder frees both the same way: the
  path every transaction's xid lock takes.
- If a strong lock is granted just as its waiter gives up (LockErrorCleanup),
  its strong-lock count is kept until the abort releases the lock; PostgreSQL
  drops it at once, briefly letting fast-path grants through.
- A LOCALLOCK has two owners, the transaction and the session (PostgreSQL's
  ResourceOwners are finer grained). A backend keeps up to LOCALLOCK_CACHE
  released relation LOCALLOCKs for reuse, so re-locking the same tables in
  each transaction allocates nothing.
- No PROCLOCK hash table: a backend remembers its own PROCLOCK per tag, and
  otherwise walks the LOCK's PROCLOCK list (locks taken through the fast path
  never reach the main table, so lists stay short).
- Waits are interrupted through hooks (``check_for_interrupts_hook``,
  ``statement_deadline_hook``) that the backend sets, instead of
  CHECK_FOR_INTERRUPTS and timeout signals; lock_timeout and deadlock_timeout
  are deadlines of the wait loop.
- No lock groups (parallel query), no two-phase commit, no hot-standby lock
  logging, no autovacuum cancel.

Tiny glossary: a *slot* is a PGPROC slot number (shmem/proc.py); a *lock* or
*proclock* is an index into its array; -1 means none.
"""

from __future__ import annotations

import os
import select
import signal
import time
from array import array
from collections.abc import Callable
from typing import NamedTuple

import posix_ipc

from shmem.lwlock import (
    LOCK_TAG_NAMES,
    LW_EXCLUSIVE,
    LW_SHARED,
    NUM_LOCK_PARTITIONS,
    PG_WAIT_LOCK,
    LWLock,
    lock_manager_lock,
    lwlock_acquire,
    lwlock_release,
)
from shmem.proc import IN_USE_OFFSET, SLOT_SIZE, ProcArray, num_slots
from shmem.segment import ShmemSegment
from utils import elog
from utils.elog import FatalError, PgError

# ---------------------------------------------------------------------------
# Lock modes (lockdefs.h) and the conflict table (lock.c LockConflicts)

NoLock = 0
AccessShareLock = 1  # SELECT
RowShareLock = 2  # SELECT FOR UPDATE/FOR SHARE
RowExclusiveLock = 3  # INSERT, UPDATE, DELETE
ShareUpdateExclusiveLock = 4  # VACUUM (non-FULL), ANALYZE, CREATE INDEX CONCURRENTLY
ShareLock = 5  # CREATE INDEX (WITHOUT CONCURRENTLY)
ShareRowExclusiveLock = 6  # like EXCLUSIVE MODE, but allows ROW SHARE
ExclusiveLock = 7  # blocks ROW SHARE/SELECT...FOR UPDATE
AccessExclusiveLock = 8  # ALTER TABLE, DROP TABLE, VACUUM FULL, and unqualified LOCK TABLE
MAX_LOCKMODES = 8

LOCK_MODE_NAMES = ("INVALID", "AccessShareLock", "RowShareLock", "RowExclusiveLock",
                   "ShareUpdateExclusiveLock", "ShareLock", "ShareRowExclusiveLock",
                   "ExclusiveLock", "AccessExclusiveLock")


def lockbit_on(mode: int) -> int:
    return 1 << mode


_B1, _B2, _B3, _B4, _B5, _B6, _B7, _B8 = (1 << m for m in range(1, 9))
LOCK_CONFLICTS: tuple[int, ...] = (
    0,
    _B8,
    _B7 | _B8,
    _B5 | _B6 | _B7 | _B8,
    _B4 | _B5 | _B6 | _B7 | _B8,
    _B3 | _B4 | _B6 | _B7 | _B8,
    _B3 | _B4 | _B5 | _B6 | _B7 | _B8,
    _B2 | _B3 | _B4 | _B5 | _B6 | _B7 | _B8,
    _B1 | _B2 | _B3 | _B4 | _B5 | _B6 | _B7 | _B8,
)

# Lock methods: both use the table above (the user method is for advisory locks).
DEFAULT_LOCKMETHOD = 1
USER_LOCKMETHOD = 2

# LockTagType (lock.h); LOCK_TAG_NAMES (shmem.lwlock) are LockTagTypeNames.
(LOCKTAG_RELATION, LOCKTAG_RELATION_EXTEND, LOCKTAG_DATABASE_FROZEN_IDS, LOCKTAG_PAGE,
 LOCKTAG_TUPLE, LOCKTAG_TRANSACTION, LOCKTAG_VIRTUALTRANSACTION, LOCKTAG_SPECULATIVE_TOKEN,
 LOCKTAG_OBJECT, LOCKTAG_USERLOCK, LOCKTAG_ADVISORY) = range(11)
LOCKTAG_LAST_TYPE = LOCKTAG_ADVISORY
LOCK_TAG_TYPE_NAMES = LOCK_TAG_NAMES

# LockAcquire results
LOCKACQUIRE_NOT_AVAIL = 0  # lock not available, and dont_wait=True
LOCKACQUIRE_OK = 1  # lock successfully acquired
LOCKACQUIRE_ALREADY_HELD = 2  # incremented count for lock already held
LOCKACQUIRE_ALREADY_CLEAR = 3  # incremented count for lock already clear

# ProcWaitStatus
PROC_WAIT_STATUS_OK = 0
PROC_WAIT_STATUS_WAITING = 1
PROC_WAIT_STATUS_ERROR = 2

# DeadLockState
DS_NOT_YET_CHECKED = 0
DS_NO_DEADLOCK = 1
DS_SOFT_DEADLOCK = 2
DS_HARD_DEADLOCK = 3
DS_BLOCKED_BY_AUTOVACUUM = 4

FP_LOCK_SLOTS_PER_BACKEND = 16
FAST_PATH_STRONG_LOCK_HASH_PARTITIONS = 1024
POSTGRES_EPOCH_UNIX = 946684800
HASH_MASK = 0x7FFFFFFF
LOCALLOCK_CACHE = 256  # released relation LOCALLOCKs kept for reuse

# ---------------------------------------------------------------------------
# Lock tags (SET_LOCKTAG_* of lock.h)

LockTag = tuple[int, int]
_TYPE_SHIFT = 48
_METHOD_SHIFT = 56
_U32 = 0xFFFFFFFF


def _k1(locktype: int, method: int = DEFAULT_LOCKMETHOD, field3: int = 0, field4: int = 0) -> int:
    return field3 | field4 << 32 | locktype << _TYPE_SHIFT | method << _METHOD_SHIFT


_REL_K1 = _k1(LOCKTAG_RELATION)  # every relation tag's second word
_EXTEND_K1 = _k1(LOCKTAG_RELATION_EXTEND)
_FROZEN_K1 = _k1(LOCKTAG_DATABASE_FROZEN_IDS)
_XACT_K1 = _k1(LOCKTAG_TRANSACTION)
_VXACT_K1 = _k1(LOCKTAG_VIRTUALTRANSACTION)
_SPEC_K1 = _k1(LOCKTAG_SPECULATIVE_TOKEN)


def set_locktag_relation(dboid: int, reloid: int) -> LockTag:
    return (dboid | reloid << 32, _REL_K1)


def set_locktag_relation_extend(dboid: int, reloid: int) -> LockTag:
    return (dboid | reloid << 32, _EXTEND_K1)


def set_locktag_database_frozen_ids(dboid: int) -> LockTag:
    return (dboid, _FROZEN_K1)


def set_locktag_page(dboid: int, reloid: int, blkno: int) -> LockTag:
    return (dboid | reloid << 32, _k1(LOCKTAG_PAGE, field3=blkno))


def set_locktag_tuple(dboid: int, reloid: int, blkno: int, offnum: int) -> LockTag:
    return (dboid | reloid << 32, _k1(LOCKTAG_TUPLE, field3=blkno, field4=offnum))


def set_locktag_transaction(xid: int) -> LockTag:
    return (xid, _XACT_K1)


def set_locktag_virtualtransaction(backend_id: int, lxid: int) -> LockTag:
    return (backend_id & _U32 | lxid << 32, _VXACT_K1)


def set_locktag_speculative_insertion(xid: int, token: int) -> LockTag:
    return (xid | token << 32, _SPEC_K1)


def set_locktag_object(dboid: int, classoid: int, objoid: int, objsubid: int) -> LockTag:
    return (dboid | classoid << 32, _k1(LOCKTAG_OBJECT, field3=objoid, field4=objsubid))


def set_locktag_advisory(id1: int, id2: int, id3: int, id4: int) -> LockTag:
    return (id1 | id2 << 32, _k1(LOCKTAG_ADVISORY, USER_LOCKMETHOD, id3, id4))


class LockTagFields(NamedTuple):
    field1: int
    field2: int
    field3: int
    field4: int
    locktype: int
    lockmethod: int


def locktag_fields(tag: LockTag) -> LockTagFields:
    k0, k1 = tag
    return LockTagFields(k0 & _U32, k0 >> 32, k1 & _U32, (k1 >> 32) & 0xFFFF,
                         (k1 >> _TYPE_SHIFT) & 0xFF, k1 >> _METHOD_SHIFT)


def locktag_type(tag: LockTag) -> int:
    return (tag[1] >> _TYPE_SHIFT) & 0xFF


def locktag_lockmethod(tag: LockTag) -> int:
    return tag[1] >> _METHOD_SHIFT


def get_lock_name_from_tag_type(locktype: int) -> str:
    """GetLockNameFromTagType: the wait_event and pg_locks.locktype name."""
    if 0 <= locktype <= LOCKTAG_LAST_TYPE:
        return LOCK_TAG_TYPE_NAMES[locktype]
    return "???"


def get_lockmode_name(lockmethod: int, mode: int) -> str:
    """GetLockmodeName."""
    return LOCK_MODE_NAMES[mode]


def describe_lock_tag(tag: LockTag) -> str:
    """DescribeLockTag (lmgr.c): the object as deadlock reports and log_lock_waits name it."""
    f1, f2, f3, f4, t, _m = locktag_fields(tag)
    if t == LOCKTAG_RELATION:
        return f"relation {f2} of database {f1}"
    if t == LOCKTAG_RELATION_EXTEND:
        return f"extension of relation {f2} of database {f1}"
    if t == LOCKTAG_DATABASE_FROZEN_IDS:
        return f"pg_database.datfrozenxid of database {f1}"
    if t == LOCKTAG_PAGE:
        return f"page {f3} of relation {f2} of database {f1}"
    if t == LOCKTAG_TUPLE:
        return f"tuple ({f3},{f4}) of relation {f2} of database {f1}"
    if t == LOCKTAG_TRANSACTION:
        return f"transaction {f1}"
    if t == LOCKTAG_VIRTUALTRANSACTION:
        backend = f1 - (1 << 32) if f1 & 0x80000000 else f1
        return f"virtual transaction {backend}/{f2}"
    if t == LOCKTAG_SPECULATIVE_TOKEN:
        return f"speculative token {f2} of transaction {f1}"
    if t == LOCKTAG_OBJECT:
        return f"object {f3} of class {f2} of database {f1}"
    if t == LOCKTAG_USERLOCK:
        return f"user lock [{f1},{f2},{f3}]"
    if t == LOCKTAG_ADVISORY:
        return f"advisory lock [{f1},{f2},{f3},{f4}]"
    return f"unrecognized locktag type {t}"


# ---------------------------------------------------------------------------
# Shared memory layout (int64 words)

LOCK_REGION = "LOCK hash"
PROCLOCK_REGION = "PROCLOCK hash"
STRONG_REGION = "Fast Path Strong Relation Lock Data"
PROC_REGION = "Lock Manager PGPROC Data"

# "LOCK hash" header
H_LOCK_FREE, H_PROCLOCK_FREE, H_LOCKS_USED, H_PROCLOCKS_USED = range(4)
HDR_WORDS = 8

# LOCK
L_K0, L_K1, L_GRANT_MASK, L_WAIT_MASK, L_NREQUESTED, L_NGRANTED = range(6)
L_REQUESTED = 5  # requested[mode] is word L_REQUESTED + mode (6..13)
L_GRANTED = 13  # granted[mode] is word L_GRANTED + mode (14..21)
L_PROCLOCKS = 22  # head of the PROCLOCK list
L_WAIT_HEAD, L_WAIT_TAIL, L_WAIT_SIZE = 23, 24, 25  # wait queue of PGPROC slots
L_NEXT = 26  # bucket chain, or free list
L_HASHCODE = 27  # -1 while free
LOCK_WORDS = 28

# PROCLOCK
P_LOCK, P_PROC, P_HOLD, P_RELEASE, P_NEXT, P_PREV, P_FREE = range(7)  # P_LOCK -1 while free
PROCLOCK_WORDS = 8

# per PGPROC
(W_WAIT_LOCK, W_WAIT_PROCLOCK, W_WAIT_MODE, W_WAIT_STATUS, W_HELD_LOCKS, W_NEXT, W_PREV,
 W_WAIT_START, W_LXID, W_FP_VXID, W_FP_LXID, W_FP_BITS) = range(12)
W_FP_REL = 12  # FP_LOCK_SLOTS_PER_BACKEND relation tags' first words
PROC_WORDS = 32
FP_BITS_PER_SLOT = 3  # AccessShare, RowShare, RowExclusive

# Semaphores of this subsystem: the free lists' spinlock, the strong-lock
# counters' spinlock, then one fpInfoLock per PGPROC slot.
SEM_FREELIST, SEM_STRONG = range(2)
SEM_FP_FIRST = 2

_SignalError = posix_ipc.SignalError


def _setting(settings, name: str, default):
    try:
        value = settings.get(name)
    except Exception:
        return default
    return default if value is None else value


def nlockents(settings) -> int:
    """NLOCKENTS: max_locks_per_transaction × (MaxBackends + auxiliary processes)."""
    per_xact = int(_setting(settings, "max_locks_per_transaction", 64))
    return per_xact * num_slots(settings.get("max_connections"))


def _nbuckets(nlocks: int) -> int:
    n = NUM_LOCK_PARTITIONS
    while n < nlocks:
        n <<= 1
    return n


def shmem_requests(settings) -> list[tuple[str, int]]:
    nlocks = nlockents(settings)
    nslots = num_slots(settings.get("max_connections"))
    return [(LOCK_REGION, (HDR_WORDS + _nbuckets(nlocks) + nlocks * LOCK_WORDS) * 8),
            (PROCLOCK_REGION, 2 * nlocks * PROCLOCK_WORDS * 8),
            (STRONG_REGION, FAST_PATH_STRONG_LOCK_HASH_PARTITIONS * 8),
            (PROC_REGION, nslots * PROC_WORDS * 8)]


def num_semaphores(settings) -> int:
    return SEM_FP_FIRST + num_slots(settings.get("max_connections"))


def _free_list(n: int, words: int, link: int, template: list[int]) -> array:
    a = array("q", template) * n
    links = array("q", range(1, n + 1))
    links[-1] = -1
    a[link::words] = links
    return a


def shmem_init(seg: ShmemSegment, settings) -> None:
    """InitLocks (postmaster): every LOCK and PROCLOCK on its free list, no buckets used."""
    nlocks = nlockents(settings)
    nbuckets = _nbuckets(nlocks)
    region = seg.region(LOCK_REGION).cast("q")
    region[:HDR_WORDS] = array("q", [0, 0, 0, 0] + [0] * (HDR_WORDS - 4))
    region[HDR_WORDS:HDR_WORDS + nbuckets] = array("q", [-1]) * nbuckets
    lock_tpl = [0] * LOCK_WORDS
    lock_tpl[L_PROCLOCKS] = lock_tpl[L_WAIT_HEAD] = lock_tpl[L_WAIT_TAIL] = -1
    lock_tpl[L_HASHCODE] = -1
    region[HDR_WORDS + nbuckets:] = _free_list(nlocks, LOCK_WORDS, L_NEXT, lock_tpl)
    region.release()
    region = seg.region(PROCLOCK_REGION).cast("q")
    pl_tpl = [-1, -1, 0, 0, -1, -1, 0, 0]
    region[:] = _free_list(2 * nlocks, PROCLOCK_WORDS, P_FREE, pl_tpl)
    region.release()
    region = seg.region(STRONG_REGION)
    region[:] = bytes(len(region))
    region.release()
    region = seg.region(PROC_REGION).cast("q")
    region[:] = array("q", _proc_template()) * (len(region) // PROC_WORDS)
    region.release()


def _proc_template() -> list[int]:
    t = [0] * PROC_WORDS
    t[W_WAIT_LOCK] = t[W_WAIT_PROCLOCK] = t[W_NEXT] = t[W_PREV] = -1
    return t


# ---------------------------------------------------------------------------
# Process state


class _Shared:
    """This process's views of the lock tables and its PGPROC identity."""

    __slots__ = ("views", "settings", "procs", "nslots", "nlocks", "nproclocks", "bucket_mask",
                 "hdr", "buckets", "lk", "lku", "pl", "pw", "pwu", "strong", "slots_raw",
                 "sem_freelist", "sem_strong", "fp_sems",
                 "partition_locks", "slot", "pid", "fp_sem", "fp_bits_idx", "fp_rel_base",
                 "awaited", "awaited_session", "strong_in_progress")

    def __init__(self) -> None:
        self.views: list[memoryview] = []
        self.settings = None
        self.procs: ProcArray | None = None
        self.nslots = 0
        self.nlocks = 0
        self.nproclocks = 0
        self.bucket_mask = 0
        self.hdr = self.buckets = self.lk = self.lku = self.pl = None
        self.pw = self.pwu = self.strong = self.slots_raw = None
        self.sem_freelist = self.sem_strong = None
        self.fp_sems: list[posix_ipc.Semaphore] = []
        self.partition_locks: list[LWLock] = []
        self.slot = -1  # my PGPROC slot; -1: cannot lock (not attached, or exited)
        self.pid = 0
        self.fp_sem: posix_ipc.Semaphore | None = None
        self.fp_bits_idx = 0
        self.fp_rel_base = 0
        self.awaited: LocalLock | None = None  # lockAwaited
        self.awaited_session = False
        self.strong_in_progress: LocalLock | None = None  # StrongLockInProgress


_st = _Shared()


class LocalLock:
    """LOCALLOCK: this backend's hold on one (tag, mode). ``lock`` and ``proclock``
    are -1 while the hold lives in the fast-path slots (or has not been looked up)."""

    __slots__ = ("tag", "mode", "hashcode", "lock", "proclock", "nlocks", "nsession",
                 "holds_strong", "lock_cleared")

    def __init__(self, tag: LockTag, mode: int, hashcode: int) -> None:
        self.tag = tag
        self.mode = mode
        self.hashcode = hashcode
        self.lock = -1
        self.proclock = -1
        self.nlocks = 0  # total holds; those owned by the transaction are nlocks - nsession
        self.nsession = 0
        self.holds_strong = False  # counted in FastPathStrongRelationLocks
        self.lock_cleared = False  # MarkLockClear: invalidations processed since

    def __repr__(self) -> str:
        return (f"<LocalLock {describe_lock_tag(self.tag)} {LOCK_MODE_NAMES[self.mode]} "
                f"n={self.nlocks} session={self.nsession}>")


# LockMethodLocalHash: (tag, mode) -> LocalLock. Mutated in place only (hot paths
# bind it as a default argument).
_locallocks: dict[tuple[LockTag, int], LocalLock] = {}
# My PROCLOCK per lock tag, while I have one: tag -> (lock, proclock).
_my_proclocks: dict[LockTag, tuple[int, int]] = {}
# My fast-path slots: relation tag's first word -> slot; and the unused slots.
_fp_slots: dict[int, int] = {}
_fp_free: list[int] = []
# Processes granted a lock under a partition lock, to wake once it is dropped.
_wake_pids: list[int] = []


def _no_interrupts() -> None:
    pass


def _no_deadline() -> float:
    return 0.0


# Called whenever a lock wait wakes up (and before it first sleeps); raising
# aborts the wait cleanly. The backend sets its check_for_interrupts here
# (cancel 57014, terminate 57P01).
check_for_interrupts_hook: Callable[[], None] = _no_interrupts
# The current statement's statement_timeout deadline as a time.monotonic()
# value, 0 for none; the wait raises 57014 when it passes.
statement_deadline_hook: Callable[[], float] = _no_deadline
# A CONTEXT line for errors and log lines while waiting (XactLockTableWait's
# "while updating tuple (0,1) in relation ..."); set by storage.lmgr.lmgr.
wait_context: str | None = None


def set_interrupt_hooks(check: Callable[[], None] | None,
                        statement_deadline: Callable[[], float] | None = None) -> None:
    """Plug the backend's CHECK_FOR_INTERRUPTS and statement deadline into lock waits."""
    global check_for_interrupts_hook, statement_deadline_hook
    check_for_interrupts_hook = check or _no_interrupts
    statement_deadline_hook = statement_deadline or _no_deadline


def attach(seg: ShmemSegment, settings, procs: ProcArray | None = None) -> None:
    """Bind this process to the segment's lock tables (after shmem.lwlock.attach);
    with ``procs`` whose slot is claimed, also adopt that PGPROC (init_proc)."""
    detach()
    st = _st
    st.settings = settings
    st.nslots = num_slots(settings.get("max_connections"))
    st.nlocks = nlockents(settings)
    st.nproclocks = 2 * st.nlocks
    nbuckets = _nbuckets(st.nlocks)
    st.bucket_mask = nbuckets - 1
    views = st.views
    raw = seg.region(LOCK_REGION)
    views.append(raw)
    st.hdr = raw[:HDR_WORDS * 8].cast("q")
    st.buckets = raw[HDR_WORDS * 8:(HDR_WORDS + nbuckets) * 8].cast("q")
    entries = raw[(HDR_WORDS + nbuckets) * 8:]
    views.append(entries)
    st.lk = entries.cast("q")
    st.lku = entries.cast("Q")
    raw = seg.region(PROCLOCK_REGION)
    views.append(raw)
    st.pl = raw.cast("q")
    raw = seg.region(STRONG_REGION)
    views.append(raw)
    st.strong = raw.cast("q")
    raw = seg.region(PROC_REGION)
    views.append(raw)
    st.pw = raw.cast("q")
    st.pwu = raw.cast("Q")
    st.slots_raw = seg.region("Proc Array")
    views += [st.hdr, st.buckets, st.lk, st.lku, st.pl, st.strong, st.pw, st.pwu, st.slots_raw]
    base = seg.sem_base.get(__name__, 0)
    if len(seg.sems) < base + SEM_FP_FIRST + st.nslots:
        raise RuntimeError("segment lacks the lock manager's semaphores")
    st.sem_freelist = seg.sems[base + SEM_FREELIST]
    st.sem_strong = seg.sems[base + SEM_STRONG]
    st.fp_sems = seg.sems[base + SEM_FP_FIRST:base + SEM_FP_FIRST + st.nslots]
    st.partition_locks = [lock_manager_lock(i) for i in range(NUM_LOCK_PARTITIONS)]
    if procs is not None and procs.my_slot is not None:
        init_proc(procs)


def detach() -> None:
    """Forget the segment (release every view so that it can be unmapped)."""
    st = _st
    for v in reversed(st.views):
        try:
            v.release()
        except BufferError:
            pass
    st.__init__()
    _reset_local()


def _reset_local() -> None:
    _locallocks.clear()
    _my_proclocks.clear()
    _fp_slots.clear()
    _fp_free[:] = range(FP_LOCK_SLOTS_PER_BACKEND - 1, -1, -1)
    _wake_pids.clear()


def init_proc(procs: ProcArray) -> None:
    """InitProcess's part: adopt my claimed PGPROC slot (clean wait fields, empty
    fast-path slots, empty local lock table)."""
    st = _st
    if st.pw is None:
        raise RuntimeError("storage.lmgr.lock is not attached to a segment")
    slot = procs.my_slot
    if slot is None:
        raise RuntimeError("init_proc before the PGPROC slot is claimed")
    st.procs = procs
    st.slot = slot
    st.pid = os.getpid()
    b = slot * PROC_WORDS
    st.pw[b:b + PROC_WORDS] = array("q", _proc_template())
    st.fp_sem = st.fp_sems[slot]
    st.fp_bits_idx = b + W_FP_BITS
    st.fp_rel_base = b + W_FP_REL
    st.awaited = None
    st.strong_in_progress = None
    _reset_local()


def my_backend_id() -> int:
    """MyBackendId: PGPROC slot + 1 (what virtual transaction ids are made of)."""
    return _st.slot + 1


def _sem_acquire(sem: posix_ipc.Semaphore) -> None:
    """Take a semaphore used as a spinlock, retrying after EINTR."""
    while True:
        try:
            sem.acquire()
            return
        except _SignalError:
            pass


def _slot_in_use(slot: int) -> bool:
    return bool(_st.slots_raw[slot * SLOT_SIZE + IN_USE_OFFSET])


def _pid_of(slot: int) -> int:
    return _st.procs.pid_of_slot(slot) if _st.procs is not None else 0


def _out_of_shared_memory() -> PgError:
    return PgError("53200", "out of shared memory",
                   hint="You might need to increase max_locks_per_transaction.")


def _not_owned_warning(mode: int) -> None:
    elog.ereport(elog.WARNING, f"you don't own a lock of type {LOCK_MODE_NAMES[mode]}")


# ---------------------------------------------------------------------------
# LockAcquire / LockRelease: the hot paths first


def lock_acquire(tag: LockTag, mode: int, session_lock: bool = False, dont_wait: bool = False,
                 report_memory_error: bool = True, _locallocks=_locallocks,
                 _fp_slots=_fp_slots, _fp_free=_fp_free, _st=_st, _REL_K1=_REL_K1) -> int:
    """LockAcquire(Extended): take ``mode`` on ``tag`` for the transaction (or the
    session), waiting unless ``dont_wait``. Returns LOCKACQUIRE_OK, _ALREADY_HELD,
    _ALREADY_CLEAR, or _NOT_AVAIL (only with dont_wait, or when out of lock
    memory without report_memory_error). Raises 40P01 on deadlock, 53200 when
    the lock table is full, and whatever the interrupt hook raises."""
    key = (tag, mode)
    ll = _locallocks.get(key)
    if ll is None:
        if not 0 < mode <= MAX_LOCKMODES:
            raise PgError("XX000", f"unrecognized lock mode: {mode}")
        if _st.slot < 0:
            raise RuntimeError("storage.lmgr.lock: this process has no PGPROC")
        ll = LocalLock(tag, mode, hash(tag) & HASH_MASK)
        _locallocks[key] = ll
    elif ll.nlocks:
        ll.nlocks += 1
        if session_lock:
            ll.nsession += 1
        return LOCKACQUIRE_ALREADY_CLEAR if ll.lock_cleared else LOCKACQUIRE_ALREADY_HELD
    if tag[1] == _REL_K1 and mode <= 3:  # RowExclusiveLock
        # EligibleForRelationFastPath: try my fast-path slots.
        st = _st
        sem = st.fp_sem
        try:
            sem.acquire()
        except _SignalError:
            _sem_acquire(sem)
        granted = False
        if not st.strong[ll.hashcode & 1023]:
            k0 = tag[0]
            j = _fp_slots.get(k0)
            if j is None:
                if not _fp_free:
                    _fast_path_reclaim()
                if _fp_free:
                    j = _fp_free.pop()
                    _fp_slots[k0] = j
                    st.pwu[st.fp_rel_base + j] = k0
            if j is not None:
                st.pw[st.fp_bits_idx] |= 1 << (3 * j + mode - 1)
                granted = True
        sem.release()
        if granted:
            ll.nlocks = 1
            if session_lock:
                ll.nsession = 1
            return LOCKACQUIRE_OK
    return _lock_acquire_main(ll, session_lock, dont_wait, report_memory_error)


def lock_release(tag: LockTag, mode: int, session_lock: bool = False,
                 _locallocks=_locallocks, _st=_st, _REL_K1=_REL_K1) -> bool:
    """LockRelease: drop one hold of ``mode`` on ``tag``; the lock itself goes
    (waking whoever can now proceed) with the last hold. Returns False, with
    PostgreSQL's WARNING, if no such hold exists."""
    ll = _locallocks.get((tag, mode))
    if ll is None or ll.nlocks <= 0:
        _not_owned_warning(mode)
        return False
    if session_lock:
        if ll.nsession <= 0:
            _not_owned_warning(mode)
            return False
        ll.nsession -= 1
    elif ll.nlocks <= ll.nsession:
        _not_owned_warning(mode)
        return False
    ll.nlocks -= 1
    if ll.nlocks:
        return True
    ll.lock_cleared = False
    if ll.lock < 0 and tag[1] == _REL_K1 and mode <= 3:  # RowExclusiveLock
        sem = _st.fp_sem
        try:
            sem.acquire()
        except _SignalError:
            _sem_acquire(sem)
        released = _fast_path_ungrant_relation_lock(tag[0], mode)
        sem.release()
        if released:
            _remove_local_lock(ll)
            return True
    return _lock_release_main(ll)


def _remove_local_lock(ll: LocalLock, _locallocks=_locallocks) -> None:
    """RemoveLocalLock: forget a LOCALLOCK without holds (keeping a few relation
    ones for reuse), giving back its strong-lock count."""
    if ll.holds_strong:
        st = _st
        _sem_acquire(st.sem_strong)
        st.strong[ll.hashcode & 1023] -= 1
        st.sem_strong.release()
        ll.holds_strong = False
    ll.nlocks = ll.nsession = 0
    ll.lock = ll.proclock = -1
    ll.lock_cleared = False
    if ll.tag[1] != _REL_K1 or len(_locallocks) > LOCALLOCK_CACHE:
        _locallocks.pop((ll.tag, ll.mode), None)


def _grant_lock_local(ll: LocalLock, session_lock: bool) -> None:
    """GrantLockLocal."""
    ll.nlocks += 1
    if session_lock:
        ll.nsession += 1


def lock_held_by_me(tag: LockTag, mode: int) -> bool:
    """LockHeldByMe."""
    ll = _locallocks.get((tag, mode))
    return ll is not None and ll.nlocks > 0


def mark_lock_clear(tag: LockTag, mode: int) -> None:
    """MarkLockClear: invalidation messages have been processed since taking the lock."""
    ll = _locallocks.get((tag, mode))
    if ll is not None and ll.nlocks:
        ll.lock_cleared = True


# ---------------------------------------------------------------------------
# The fast path (caller holds my fpInfoLock)


def _fast_path_ungrant_relation_lock(k0: int, mode: int) -> bool:
    """FastPathUnGrantRelationLock: False if the hold is not in my slots (it
    was transferred to the main table). A slot left without bits stays
    assigned to its relation until the slots run out (_fast_path_reclaim), so
    that the next transaction's lock on the same table finds it."""
    j = _fp_slots.get(k0)
    if j is None:
        return False
    st = _st
    i = st.fp_bits_idx
    bit = 1 << (3 * j + mode - 1)
    bits = st.pw[i]
    if not bits & bit:
        return False
    st.pw[i] = bits & ~bit
    return True


def _fast_path_reclaim() -> None:
    """Free my fast-path slots that hold no lock (my fpInfoLock held)."""
    bits = _st.pw[_st.fp_bits_idx]
    for k0, j in list(_fp_slots.items()):
        if not (bits >> (3 * j)) & 7:
            del _fp_slots[k0]
            _fp_free.append(j)


def _fast_path_transfer_relation_locks(tag: LockTag, hashcode: int) -> bool:
    """FastPathTransferRelationLocks: move every process's fast-path holds on
    ``tag`` into the main table (the strong-lock count is already raised, so no
    new ones appear). False if the lock table is full."""
    st = _st
    k0 = tag[0]
    pw, pwu = st.pw, st.pwu
    plock = st.partition_locks[hashcode & (NUM_LOCK_PARTITIONS - 1)]
    for proc in range(st.nslots):
        # A slot claimed after our count went up sees it before any fast-path grant.
        if not _slot_in_use(proc):
            continue
        sem = st.fp_sems[proc]
        _sem_acquire(sem)
        try:
            b = proc * PROC_WORDS
            bits = pw[b + W_FP_BITS]
            if not bits:
                continue
            for j in range(FP_LOCK_SLOTS_PER_BACKEND):
                modes = (bits >> (3 * j)) & 7
                if not modes or pwu[b + W_FP_REL + j] != k0:
                    continue
                lwlock_acquire(plock, LW_EXCLUSIVE)
                try:
                    for mode in (1, 2, 3):
                        if not modes & (1 << (mode - 1)):
                            continue
                        found = _setup_lock_in_table(tag, hashcode, proc, mode)
                        if found is None:
                            return False
                        _grant_lock(found[0], found[1], mode)
                        pw[b + W_FP_BITS] &= ~(1 << (3 * j + mode - 1))
                finally:
                    lwlock_release(plock)
                    _flush_wakeups()
                break  # one slot per relation
        finally:
            sem.release()
    return True


def _begin_strong_lock_acquire(ll: LocalLock) -> None:
    """BeginStrongLockAcquire: count the strong lock before looking for weak ones."""
    st = _st
    _sem_acquire(st.sem_strong)
    st.strong[ll.hashcode & 1023] += 1
    ll.holds_strong = True
    st.sem_strong.release()
    st.strong_in_progress = ll


def _finish_strong_lock_acquire() -> None:
    _st.strong_in_progress = None


def _abort_strong_lock_acquire() -> None:
    """AbortStrongLockAcquire: the strong lock was not obtained after all."""
    st = _st
    ll = st.strong_in_progress
    if ll is None:
        return
    st.strong_in_progress = None
    if ll.holds_strong:
        _sem_acquire(st.sem_strong)
        st.strong[ll.hashcode & 1023] -= 1
        ll.holds_strong = False
        st.sem_strong.release()


# ---------------------------------------------------------------------------
# The main table (caller holds the partition lock)


def _find_lock(k0: int, k1: int, hashcode: int) -> int:
    st = _st
    lk, lku = st.lk, st.lku
    i = st.buckets[hashcode & st.bucket_mask]
    while i >= 0:
        b = i * LOCK_WORDS
        if lku[b] == k0 and lk[b + L_K1] == k1:
            return i
        i = lk[b + L_NEXT]
    return -1


def _lock_tag_of(lock: int) -> LockTag:
    b = lock * LOCK_WORDS
    return (_st.lku[b], _st.lk[b + L_K1])


def _find_proclock(lock: int, proc: int, tag: LockTag) -> int:
    """The PROCLOCK of ``proc`` on ``lock``, or -1."""
    st = _st
    if proc == st.slot:
        mine = _my_proclocks.get(tag)
        if mine is not None:
            return mine[1]
    pl = st.pl
    p = st.lk[lock * LOCK_WORDS + L_PROCLOCKS]
    while p >= 0:
        if pl[p * PROCLOCK_WORDS + P_PROC] == proc:
            if proc == st.slot:
                _my_proclocks[tag] = (lock, p)
            return p
        p = pl[p * PROCLOCK_WORDS + P_NEXT]
    return -1


_LOCK_INIT = array("q", [0] * LOCK_WORDS)


def _granted_template(mode: int) -> array:
    """A LOCK with one request, granted, in ``mode``."""
    t = [0] * LOCK_WORDS
    t[L_GRANT_MASK] = 1 << mode
    t[L_NREQUESTED] = t[L_NGRANTED] = 1
    t[L_REQUESTED + mode] = t[L_GRANTED + mode] = 1
    t[L_WAIT_HEAD] = t[L_WAIT_TAIL] = -1
    return array("q", t)


_LOCK_GRANTED = [array("q")] + [_granted_template(m) for m in range(1, MAX_LOCKMODES + 1)]


def _create_lock_granted(tag: LockTag, hashcode: int, mode: int) -> tuple[int, int] | None:
    """The common case of SetupLockInTable + GrantLock, for a lock nobody has:
    a new LOCK and my PROCLOCK, granted at once (one free-list hold)."""
    st = _st
    lk, pl, hdr = st.lk, st.pl, st.hdr
    sem = st.sem_freelist
    try:
        sem.acquire()
    except _SignalError:
        _sem_acquire(sem)
    lock, proclock = hdr[H_LOCK_FREE], hdr[H_PROCLOCK_FREE]
    if lock < 0 or proclock < 0:
        sem.release()
        return None
    b = lock * LOCK_WORDS
    pb = proclock * PROCLOCK_WORDS
    hdr[H_LOCK_FREE] = lk[b + L_NEXT]
    hdr[H_PROCLOCK_FREE] = pl[pb + P_FREE]
    hdr[H_LOCKS_USED] += 1
    hdr[H_PROCLOCKS_USED] += 1
    sem.release()
    k0, k1 = tag
    lk[b:b + LOCK_WORDS] = _LOCK_GRANTED[mode]
    st.lku[b] = k0
    lk[b + L_K1] = k1
    lk[b + L_PROCLOCKS] = proclock
    lk[b + L_HASHCODE] = hashcode
    bucket = hashcode & st.bucket_mask
    lk[b + L_NEXT] = st.buckets[bucket]
    st.buckets[bucket] = lock
    pl[pb + P_LOCK] = lock
    pl[pb + P_PROC] = st.slot
    pl[pb + P_HOLD] = 1 << mode
    pl[pb + P_RELEASE] = 0
    pl[pb + P_NEXT] = pl[pb + P_PREV] = -1
    _my_proclocks[tag] = (lock, proclock)
    return lock, proclock


def _drop_lone_lock(tag: LockTag, lock: int, proclock: int, hashcode: int) -> None:
    """UnGrantLock + CleanUpLock for the last request on a lock: free the LOCK and
    my PROCLOCK (one free-list hold); nobody can be waiting."""
    st = _st
    lk, pl, hdr = st.lk, st.pl, st.hdr
    b = lock * LOCK_WORDS
    pb = proclock * PROCLOCK_WORDS
    bucket = hashcode & st.bucket_mask
    i = st.buckets[bucket]
    if i == lock:
        st.buckets[bucket] = lk[b + L_NEXT]
    else:
        while True:
            nxt = lk[i * LOCK_WORDS + L_NEXT]
            if nxt == lock:
                lk[i * LOCK_WORDS + L_NEXT] = lk[b + L_NEXT]
                break
            if nxt < 0:
                raise RuntimeError("lock table corrupted")
            i = nxt
    _my_proclocks.pop(tag, None)
    lk[b + L_HASHCODE] = -1
    pl[pb + P_LOCK] = pl[pb + P_PROC] = -1
    sem = st.sem_freelist
    try:
        sem.acquire()
    except _SignalError:
        _sem_acquire(sem)
    lk[b + L_NEXT] = hdr[H_LOCK_FREE]
    hdr[H_LOCK_FREE] = lock
    pl[pb + P_FREE] = hdr[H_PROCLOCK_FREE]
    hdr[H_PROCLOCK_FREE] = proclock
    hdr[H_LOCKS_USED] -= 1
    hdr[H_PROCLOCKS_USED] -= 1
    sem.release()


def _setup_lock_in_table(tag: LockTag, hashcode: int, proc: int, mode: int,
                         lock: int = -2) -> tuple[int, int] | None:
    """SetupLockInTable: find (unless the caller did: ``lock``) or create the LOCK
    and ``proc``'s PROCLOCK and count the request; None if the table is full."""
    st = _st
    lk = st.lk
    k0, k1 = tag
    if lock == -2:
        lock = _find_lock(k0, k1, hashcode)
    new_lock = lock < 0
    if new_lock:
        sem = st.sem_freelist
        _sem_acquire(sem)
        lock = st.hdr[H_LOCK_FREE]
        if lock >= 0:
            st.hdr[H_LOCK_FREE] = lk[lock * LOCK_WORDS + L_NEXT]
            st.hdr[H_LOCKS_USED] += 1
        sem.release()
        if lock < 0:
            return None
        b = lock * LOCK_WORDS
        lk[b:b + LOCK_WORDS] = _LOCK_INIT
        st.lku[b] = k0
        lk[b + L_K1] = k1
        lk[b + L_PROCLOCKS] = lk[b + L_WAIT_HEAD] = lk[b + L_WAIT_TAIL] = -1
        lk[b + L_HASHCODE] = hashcode
        bucket = hashcode & st.bucket_mask
        lk[b + L_NEXT] = st.buckets[bucket]
        st.buckets[bucket] = lock
        proclock = -1
    else:
        b = lock * LOCK_WORDS
        proclock = _find_proclock(lock, proc, tag)
    pl = st.pl
    if proclock < 0:
        sem = st.sem_freelist
        _sem_acquire(sem)
        proclock = st.hdr[H_PROCLOCK_FREE]
        if proclock >= 0:
            st.hdr[H_PROCLOCK_FREE] = pl[proclock * PROCLOCK_WORDS + P_FREE]
            st.hdr[H_PROCLOCKS_USED] += 1
        sem.release()
        if proclock < 0:
            if new_lock:
                _free_lock(lock, hashcode)
            return None
        pb = proclock * PROCLOCK_WORDS
        head = lk[b + L_PROCLOCKS]
        pl[pb + P_LOCK] = lock
        pl[pb + P_PROC] = proc
        pl[pb + P_HOLD] = pl[pb + P_RELEASE] = 0
        pl[pb + P_NEXT] = head
        pl[pb + P_PREV] = -1
        if head >= 0:
            pl[head * PROCLOCK_WORDS + P_PREV] = proclock
        lk[b + L_PROCLOCKS] = proclock
        if proc == st.slot:
            _my_proclocks[tag] = (lock, proclock)
    elif pl[proclock * PROCLOCK_WORDS + P_HOLD] & (1 << mode):
        f = locktag_fields(tag)
        raise PgError("XX000", f"lock {LOCK_MODE_NAMES[mode]} on object "
                               f"{f.field1}/{f.field2}/{f.field3} is already held")
    lk[b + L_NREQUESTED] += 1
    lk[b + L_REQUESTED + mode] += 1
    return lock, proclock


def _free_lock(lock: int, hashcode: int) -> None:
    """Unlink an unused LOCK from its bucket and put it on the free list."""
    st = _st
    lk = st.lk
    b = lock * LOCK_WORDS
    bucket = hashcode & st.bucket_mask
    i = st.buckets[bucket]
    if i == lock:
        st.buckets[bucket] = lk[b + L_NEXT]
    else:
        while i >= 0:
            nxt = lk[i * LOCK_WORDS + L_NEXT]
            if nxt == lock:
                lk[i * LOCK_WORDS + L_NEXT] = lk[b + L_NEXT]
                break
            i = nxt
        else:
            raise RuntimeError("lock table corrupted")
    lk[b + L_HASHCODE] = -1
    sem = st.sem_freelist
    _sem_acquire(sem)
    lk[b + L_NEXT] = st.hdr[H_LOCK_FREE]
    st.hdr[H_LOCK_FREE] = lock
    st.hdr[H_LOCKS_USED] -= 1
    sem.release()


def _free_proclock(lock: int, proclock: int) -> None:
    """Unlink a PROCLOCK from its LOCK and put it on the free list."""
    st = _st
    pl = st.pl
    pb = proclock * PROCLOCK_WORDS
    nxt, prev = pl[pb + P_NEXT], pl[pb + P_PREV]
    if prev >= 0:
        pl[prev * PROCLOCK_WORDS + P_NEXT] = nxt
    else:
        st.lk[lock * LOCK_WORDS + L_PROCLOCKS] = nxt
    if nxt >= 0:
        pl[nxt * PROCLOCK_WORDS + P_PREV] = prev
    if pl[pb + P_PROC] == st.slot:
        _my_proclocks.pop(_lock_tag_of(lock), None)
    pl[pb + P_LOCK] = pl[pb + P_PROC] = -1
    sem = st.sem_freelist
    _sem_acquire(sem)
    pl[pb + P_FREE] = st.hdr[H_PROCLOCK_FREE]
    st.hdr[H_PROCLOCK_FREE] = proclock
    st.hdr[H_PROCLOCKS_USED] -= 1
    sem.release()


def _lock_check_conflicts(mode: int, lock: int, proclock: int) -> bool:
    """LockCheckConflicts: does ``mode`` conflict with modes held by *others*?"""
    lk = _st.lk
    b = lock * LOCK_WORDS
    conflicts = LOCK_CONFLICTS[mode]
    if not conflicts & lk[b + L_GRANT_MASK]:
        return False
    mine = _st.pl[proclock * PROCLOCK_WORDS + P_HOLD]
    for m in range(1, MAX_LOCKMODES + 1):
        bit = 1 << m
        if conflicts & bit:
            n = lk[b + L_GRANTED + m]
            if mine & bit:
                n -= 1
            if n:
                return True
    return False


def _grant_lock(lock: int, proclock: int, mode: int) -> None:
    """GrantLock: record the grant in the LOCK and PROCLOCK."""
    lk = _st.lk
    b = lock * LOCK_WORDS
    lk[b + L_NGRANTED] += 1
    granted = lk[b + L_GRANTED + mode] + 1
    lk[b + L_GRANTED + mode] = granted
    lk[b + L_GRANT_MASK] |= 1 << mode
    if granted == lk[b + L_REQUESTED + mode]:
        lk[b + L_WAIT_MASK] &= ~(1 << mode)
    _st.pl[proclock * PROCLOCK_WORDS + P_HOLD] |= 1 << mode


def _ungrant_lock(lock: int, mode: int, proclock: int) -> bool:
    """UnGrantLock: returns whether waiters may now be wakeable."""
    lk = _st.lk
    b = lock * LOCK_WORDS
    lk[b + L_NREQUESTED] -= 1
    lk[b + L_REQUESTED + mode] -= 1
    lk[b + L_NGRANTED] -= 1
    granted = lk[b + L_GRANTED + mode] - 1
    lk[b + L_GRANTED + mode] = granted
    if not granted:
        lk[b + L_GRANT_MASK] &= ~(1 << mode)
    _st.pl[proclock * PROCLOCK_WORDS + P_HOLD] &= ~(1 << mode)
    # Remaining holders may be waiters' own holds, so wake whenever a waiter's
    # request conflicts with the released mode.
    return bool(LOCK_CONFLICTS[mode] & lk[b + L_WAIT_MASK])


def _clean_up_lock(lock: int, proclock: int, hashcode: int, wakeup: bool) -> None:
    """CleanUpLock: drop a PROCLOCK that holds nothing, the LOCK if nobody
    requests it any more, else wake waiters if asked to."""
    st = _st
    if not st.pl[proclock * PROCLOCK_WORDS + P_HOLD]:
        _free_proclock(lock, proclock)
    if not st.lk[lock * LOCK_WORDS + L_NREQUESTED]:
        _free_lock(lock, hashcode)
    elif wakeup:
        proc_lock_wakeup(lock)


def _undo_request(lock: int, proclock: int, mode: int, hashcode: int) -> None:
    """Take back a request that will not wait (dont_wait, early deadlock)."""
    lk = _st.lk
    b = lock * LOCK_WORDS
    lk[b + L_NREQUESTED] -= 1
    lk[b + L_REQUESTED + mode] -= 1
    _clean_up_lock(lock, proclock, hashcode, False)


def _lock_acquire_main(ll: LocalLock, session_lock: bool, dont_wait: bool,
                       report_memory_error: bool) -> int:
    """LockAcquireExtended's shared-table part (and WaitOnLock)."""
    st = _st
    tag, mode, hashcode = ll.tag, ll.mode, ll.hashcode
    if tag[1] == _REL_K1 and mode > ShareUpdateExclusiveLock:
        # ConflictsWithRelationFastPath: no new weak fast-path grants from now
        # on; move the existing ones where we can see them.
        _begin_strong_lock_acquire(ll)
        if not _fast_path_transfer_relation_locks(tag, hashcode):
            _abort_strong_lock_acquire()
            if not ll.nlocks:
                _remove_local_lock(ll)
            if report_memory_error:
                raise _out_of_shared_memory()
            return LOCKACQUIRE_NOT_AVAIL
    plock = st.partition_locks[hashcode & (NUM_LOCK_PARTITIONS - 1)]
    lwlock_acquire(plock, LW_EXCLUSIVE)
    held = True
    deadlock = False
    try:
        lock = _find_lock(tag[0], tag[1], hashcode)
        if lock < 0:
            found = _create_lock_granted(tag, hashcode, mode)
            if found is not None:
                ll.lock, ll.proclock = found
                lwlock_release(plock)
                held = False
                _finish_strong_lock_acquire()
                _grant_lock_local(ll, session_lock)
                return LOCKACQUIRE_OK
        else:
            found = _setup_lock_in_table(tag, hashcode, st.slot, mode, lock)
        if found is None:
            _abort_strong_lock_acquire()
            lwlock_release(plock)
            held = False
            if not ll.nlocks:
                _remove_local_lock(ll)
            if report_memory_error:
                raise _out_of_shared_memory()
            return LOCKACQUIRE_NOT_AVAIL
        lock, proclock = found
        ll.lock, ll.proclock = lock, proclock
        if LOCK_CONFLICTS[mode] & st.lk[lock * LOCK_WORDS + L_WAIT_MASK]:
            conflict = True  # queue behind earlier waiters
        else:
            conflict = _lock_check_conflicts(mode, lock, proclock)
        if not conflict:
            _grant_lock(lock, proclock, mode)
            status = PROC_WAIT_STATUS_OK
        elif dont_wait:
            _abort_strong_lock_acquire()
            _undo_request(lock, proclock, mode, hashcode)
            lwlock_release(plock)
            held = False
            if not ll.nlocks:
                _remove_local_lock(ll)
            return LOCKACQUIRE_NOT_AVAIL
        else:
            status = join_wait_queue(lock, proclock, mode)
            if status == PROC_WAIT_STATUS_ERROR:
                _undo_request(lock, proclock, mode, hashcode)
                deadlock = True
            elif status == PROC_WAIT_STATUS_WAITING:
                st.awaited = ll
                st.awaited_session = session_lock
        lwlock_release(plock)
        held = False
    except BaseException:
        _abort_strong_lock_acquire()
        raise
    finally:
        if held:
            lwlock_release(plock)
        _flush_wakeups()
    if status == PROC_WAIT_STATUS_WAITING:
        try:
            status = proc_sleep(ll)
        except BaseException:
            lock_error_cleanup()
            if not ll.nlocks:
                _remove_local_lock(ll)
            raise
        st.awaited = None
        deadlock = status != PROC_WAIT_STATUS_OK
    if deadlock:
        _abort_strong_lock_acquire()
        if not ll.nlocks:
            _remove_local_lock(ll)
        from storage.lmgr import deadlock as _deadlock

        _deadlock.dead_lock_report()  # raises 40P01
    _finish_strong_lock_acquire()
    _grant_lock_local(ll, session_lock)
    return LOCKACQUIRE_OK


def _lock_release_main(ll: LocalLock) -> bool:
    """LockRelease's shared-table part."""
    st = _st
    tag, mode, hashcode = ll.tag, ll.mode, ll.hashcode
    plock = st.partition_locks[hashcode & (NUM_LOCK_PARTITIONS - 1)]
    lwlock_acquire(plock, LW_EXCLUSIVE)
    try:
        lock, proclock = ll.lock, ll.proclock
        if lock < 0:
            # Taken through the fast path and since moved to the main table.
            lock = _find_lock(tag[0], tag[1], hashcode)
            proclock = _find_proclock(lock, st.slot, tag) if lock >= 0 else -1
        if proclock < 0 or not st.pl[proclock * PROCLOCK_WORDS + P_HOLD] & (1 << mode):
            owned = False
        elif st.lk[lock * LOCK_WORDS + L_NREQUESTED] == 1:
            owned = True  # the last request: nobody else holds or waits
            _drop_lone_lock(tag, lock, proclock, hashcode)
        else:
            owned = True
            wakeup = _ungrant_lock(lock, mode, proclock)
            _clean_up_lock(lock, proclock, hashcode, wakeup)
    finally:
        lwlock_release(plock)
        _flush_wakeups()
    _remove_local_lock(ll)
    if not owned:
        _not_owned_warning(mode)
    return owned


def lock_release_all(lockmethod: int = DEFAULT_LOCKMETHOD, all_locks: bool = False,
                     _locallocks=_locallocks, _fp_slots=_fp_slots) -> None:
    """LockReleaseAll: at transaction end, release every hold of ``lockmethod``
    owned by the transaction (``all_locks``: session holds too): one pass over
    the local table, one fpInfoLock hold for the fast-path ones, one
    partition-lock hold per partition for the rest."""
    st = _st
    if st.slot < 0:
        return
    if lockmethod == DEFAULT_LOCKMETHOD:
        virtual_xact_lock_table_cleanup()
    fast: list[LocalLock] = []
    main: list[LocalLock] = []
    for ll in _locallocks.values():
        if not ll.nlocks or ll.tag[1] >> _METHOD_SHIFT != lockmethod:
            continue
        if not all_locks and ll.nsession:
            ll.nlocks = ll.nsession  # the session keeps its holds
            continue
        if ll.lock < 0:
            fast.append(ll)
        else:
            main.append(ll)
    refind: list[LocalLock] = []
    if fast:
        sem = st.fp_sem
        _sem_acquire(sem)
        pw, i = st.pw, st.fp_bits_idx
        bits = pw[i]
        for ll in fast:
            j = _fp_slots.get(ll.tag[0]) if ll.tag[1] == _REL_K1 else None
            bit = 0 if j is None else 1 << (3 * j + ll.mode - 1)
            if bits & bit:
                bits &= ~bit
            else:
                refind.append(ll)  # moved to the main table by a strong locker
        pw[i] = bits
        sem.release()
        for ll in fast:
            _remove_local_lock(ll)
    for ll in refind:
        _lock_refind_and_release(st.slot, ll.tag, ll.mode)
    if not main:
        return
    # proclock -> [lock, modes to release, hashcode, tag], per partition
    by_partition: dict[int, dict[int, list]] = {}
    for ll in main:
        part = by_partition.setdefault(ll.hashcode & (NUM_LOCK_PARTITIONS - 1), {})
        entry = part.get(ll.proclock)
        if entry is None:
            part[ll.proclock] = [ll.lock, 1 << ll.mode, ll.hashcode, ll.tag]
        else:
            entry[1] |= 1 << ll.mode
    pl, lk = st.pl, st.lk
    for partition in sorted(by_partition):
        plock = st.partition_locks[partition]
        lwlock_acquire(plock, LW_EXCLUSIVE)
        try:
            for proclock, (lock, modes, hashcode, tag) in by_partition[partition].items():
                hold = pl[proclock * PROCLOCK_WORDS + P_HOLD]
                if hold == modes and lk[lock * LOCK_WORDS + L_NREQUESTED] == 1:
                    _drop_lone_lock(tag, lock, proclock, hashcode)  # e.g. my xid's lock
                    continue
                wakeup = False
                for m in range(1, MAX_LOCKMODES + 1):
                    if modes & hold & (1 << m):
                        wakeup |= _ungrant_lock(lock, m, proclock)
                _clean_up_lock(lock, proclock, hashcode, wakeup)
        finally:
            lwlock_release(plock)
            _flush_wakeups()
    for ll in main:
        _remove_local_lock(ll)


def lock_release_session(lockmethod: int = DEFAULT_LOCKMETHOD) -> None:
    """LockReleaseSession: release the session's holds (and any others) of ``lockmethod``."""
    lock_release_all(lockmethod, all_locks=True)


def _lock_refind_and_release(proc: int, tag: LockTag, mode: int) -> None:
    """LockRefindAndRelease: release ``proc``'s hold found through the tag."""
    st = _st
    hashcode = hash(tag) & HASH_MASK
    plock = st.partition_locks[hashcode & (NUM_LOCK_PARTITIONS - 1)]
    lwlock_acquire(plock, LW_EXCLUSIVE)
    problem = None
    try:
        lock = _find_lock(tag[0], tag[1], hashcode)
        proclock = _find_proclock(lock, proc, tag) if lock >= 0 else -1
        if lock < 0:
            problem = "failed to re-find shared lock object"
        elif proclock < 0:
            problem = "failed to re-find shared proclock object"
        elif not st.pl[proclock * PROCLOCK_WORDS + P_HOLD] & (1 << mode):
            problem = f"you don't own a lock of type {LOCK_MODE_NAMES[mode]}"
        else:
            wakeup = _ungrant_lock(lock, mode, proclock)
            _clean_up_lock(lock, proclock, hashcode, wakeup)
    finally:
        lwlock_release(plock)
        _flush_wakeups()
    if problem:
        elog.ereport(elog.WARNING, problem)


def proc_exit() -> None:
    """ProcKill's part: leave any wait, release every lock (transaction and
    session, both lock methods) so that waiters wake, and empty my fast-path
    slots. A process that dies without this is a crash: shared memory is
    reinitialised."""
    st = _st
    if st.slot < 0 or st.pw is None:
        return
    lock_error_cleanup()
    lock_release_all(DEFAULT_LOCKMETHOD, all_locks=True)
    lock_release_all(USER_LOCKMETHOD, all_locks=True)
    _release_stragglers()
    b = st.slot * PROC_WORDS
    _sem_acquire(st.fp_sem)
    st.pw[b:b + PROC_WORDS] = array("q", _proc_template())
    st.fp_sem.release()
    st.slot = -1
    st.procs = None
    _reset_local()


def _release_stragglers() -> None:
    """Release main-table holds of mine that the local table does not know
    (LockReleaseAll's allLocks pass over myProcLocks)."""
    st = _st
    pl = st.pl
    me = st.slot
    procs_col = pl[P_PROC::PROCLOCK_WORDS].tolist()
    for proclock, proc in enumerate(procs_col):
        if proc != me:
            continue
        lock = pl[proclock * PROCLOCK_WORDS + P_LOCK]
        if lock < 0:
            continue
        hashcode = st.lk[lock * LOCK_WORDS + L_HASHCODE]
        plock = st.partition_locks[hashcode & (NUM_LOCK_PARTITIONS - 1)]
        lwlock_acquire(plock, LW_EXCLUSIVE)
        try:
            if pl[proclock * PROCLOCK_WORDS + P_PROC] != me:
                continue
            hold = pl[proclock * PROCLOCK_WORDS + P_HOLD]
            wakeup = False
            for m in range(1, MAX_LOCKMODES + 1):
                if hold & (1 << m):
                    wakeup |= _ungrant_lock(lock, m, proclock)
            if st.pw[me * PROC_WORDS + W_WAIT_PROCLOCK] != proclock:
                _clean_up_lock(lock, proclock, hashcode, wakeup)
        finally:
            lwlock_release(plock)
            _flush_wakeups()


# ---------------------------------------------------------------------------
# Virtual transaction locks (VirtualXactLockTableInsert & co.)


def virtual_xact_lock_table_insert(lxid: int) -> None:
    """VirtualXactLockTableInsert: take ExclusiveLock on my virtual transaction
    id (backend id / ``lxid``), at transaction start, through the fast path."""
    st = _st
    b = st.slot * PROC_WORDS
    _sem_acquire(st.fp_sem)
    st.pw[b + W_LXID] = lxid
    st.pw[b + W_FP_VXID] = 1
    st.pw[b + W_FP_LXID] = lxid
    st.fp_sem.release()


def virtual_xact_lock_table_cleanup() -> None:
    """VirtualXactLockTableCleanup: drop my virtual transaction lock (at
    transaction end; lock_release_all does it)."""
    st = _st
    if st.slot < 0:
        return
    b = st.slot * PROC_WORDS
    pw = st.pw
    _sem_acquire(st.fp_sem)
    fastpath = pw[b + W_FP_VXID]
    lxid = pw[b + W_FP_LXID]
    pw[b + W_FP_VXID] = pw[b + W_FP_LXID] = pw[b + W_LXID] = 0
    st.fp_sem.release()
    if not fastpath and lxid:
        # Someone waiting for it moved it into the main table.
        _lock_refind_and_release(st.slot, set_locktag_virtualtransaction(st.slot + 1, lxid),
                                 ExclusiveLock)


def virtual_xact_lock(backend_id: int, lxid: int, wait: bool) -> bool:
    """VirtualXactLock: is virtual transaction ``backend_id``/``lxid`` over? With
    ``wait``, wait until it is (moving its lock to the main table first)."""
    st = _st
    proc = backend_id - 1
    if not 0 <= proc < st.nslots:
        return True
    tag = set_locktag_virtualtransaction(backend_id, lxid)
    pw = st.pw
    b = proc * PROC_WORDS
    sem = st.fp_sems[proc]
    _sem_acquire(sem)
    try:
        if pw[b + W_FP_LXID] != lxid or not lxid:
            return True
        if not wait:
            return False
        if pw[b + W_FP_VXID]:
            hashcode = hash(tag) & HASH_MASK
            plock = st.partition_locks[hashcode & (NUM_LOCK_PARTITIONS - 1)]
            lwlock_acquire(plock, LW_EXCLUSIVE)
            try:
                found = _setup_lock_in_table(tag, hashcode, proc, ExclusiveLock)
                if found is None:
                    raise _out_of_shared_memory()
                _grant_lock(found[0], found[1], ExclusiveLock)
                pw[b + W_FP_VXID] = 0
            finally:
                lwlock_release(plock)
    finally:
        sem.release()
    lock_acquire(tag, ShareLock)
    lock_release(tag, ShareLock)
    return True


# ---------------------------------------------------------------------------
# Waiting: JoinWaitQueue, ProcSleep, ProcWakeup, ProcLockWakeup (proc.c)


def join_wait_queue(lock: int, proclock: int, mode: int) -> int:
    """JoinWaitQueue (the partition lock held): queue at the tail, or just ahead
    of the first waiter that would wait for a lock I hold — or get the lock at
    once, or report an immediate two-way deadlock."""
    st = _st
    lk, pw = st.lk, st.pw
    b = lock * LOCK_WORDS
    me = st.slot
    my_held = st.pl[proclock * PROCLOCK_WORDS + P_HOLD]
    insert_before = -1
    if my_held and lk[b + L_WAIT_HEAD] >= 0:
        ahead = 0
        p = lk[b + L_WAIT_HEAD]
        while p >= 0:
            pb = p * PROC_WORDS
            their_mode = pw[pb + W_WAIT_MODE]
            if LOCK_CONFLICTS[their_mode] & my_held:  # must he wait for me?
                if LOCK_CONFLICTS[mode] & pw[pb + W_HELD_LOCKS]:  # and I for him?
                    from storage.lmgr import deadlock as _deadlock

                    _deadlock.remember_simple_dead_lock(me, mode, lock, p)
                    return PROC_WAIT_STATUS_ERROR
                if not LOCK_CONFLICTS[mode] & ahead and \
                        not _lock_check_conflicts(mode, lock, proclock):
                    _grant_lock(lock, proclock, mode)
                    return PROC_WAIT_STATUS_OK
                insert_before = p
                break
            ahead |= 1 << their_mode
            p = pw[pb + W_NEXT]
    mb = me * PROC_WORDS
    if insert_before >= 0:
        prev = pw[insert_before * PROC_WORDS + W_PREV]
        pw[mb + W_NEXT] = insert_before
        pw[mb + W_PREV] = prev
        pw[insert_before * PROC_WORDS + W_PREV] = me
        if prev >= 0:
            pw[prev * PROC_WORDS + W_NEXT] = me
        else:
            lk[b + L_WAIT_HEAD] = me
    else:
        tail = lk[b + L_WAIT_TAIL]
        pw[mb + W_NEXT] = -1
        pw[mb + W_PREV] = tail
        if tail >= 0:
            pw[tail * PROC_WORDS + W_NEXT] = me
        else:
            lk[b + L_WAIT_HEAD] = me
        lk[b + L_WAIT_TAIL] = me
    lk[b + L_WAIT_SIZE] += 1
    lk[b + L_WAIT_MASK] |= 1 << mode
    pw[mb + W_HELD_LOCKS] = my_held
    pw[mb + W_WAIT_PROCLOCK] = proclock
    pw[mb + W_WAIT_MODE] = mode
    pw[mb + W_WAIT_STATUS] = PROC_WAIT_STATUS_WAITING
    pw[mb + W_WAIT_LOCK] = lock
    return PROC_WAIT_STATUS_WAITING


def _unlink_waiter(lock: int, proc: int) -> None:
    """Take ``proc`` out of ``lock``'s wait queue (partition lock held)."""
    st = _st
    lk, pw = st.lk, st.pw
    b = lock * LOCK_WORDS
    pb = proc * PROC_WORDS
    nxt, prev = pw[pb + W_NEXT], pw[pb + W_PREV]
    if prev >= 0:
        pw[prev * PROC_WORDS + W_NEXT] = nxt
    else:
        lk[b + L_WAIT_HEAD] = nxt
    if nxt >= 0:
        pw[nxt * PROC_WORDS + W_PREV] = prev
    else:
        lk[b + L_WAIT_TAIL] = prev
    pw[pb + W_NEXT] = pw[pb + W_PREV] = -1
    lk[b + L_WAIT_SIZE] -= 1


def wait_queue(lock: int) -> list[int]:
    """The PGPROC slots waiting on ``lock``, head first (partition lock held)."""
    st = _st
    out = []
    p = st.lk[lock * LOCK_WORDS + L_WAIT_HEAD]
    while p >= 0 and len(out) <= st.nslots:
        out.append(p)
        p = st.pw[p * PROC_WORDS + W_NEXT]
    return out


def _set_wait_queue(lock: int, procs: list[int]) -> None:
    """Rewrite ``lock``'s wait queue in the given order (deadlock.c's rearrangement)."""
    st = _st
    lk, pw = st.lk, st.pw
    b = lock * LOCK_WORDS
    prev = -1
    for p in procs:
        pw[p * PROC_WORDS + W_PREV] = prev
        if prev >= 0:
            pw[prev * PROC_WORDS + W_NEXT] = p
        else:
            lk[b + L_WAIT_HEAD] = p
        prev = p
    if prev >= 0:
        pw[prev * PROC_WORDS + W_NEXT] = -1
    else:
        lk[b + L_WAIT_HEAD] = -1
    lk[b + L_WAIT_TAIL] = prev
    lk[b + L_WAIT_SIZE] = len(procs)


def proc_wakeup(proc: int, status: int) -> None:
    """ProcWakeup: unlink a waiter, hand it its status; its latch is set once the
    partition lock is dropped (_flush_wakeups)."""
    pw = _st.pw
    pb = proc * PROC_WORDS
    lock = pw[pb + W_WAIT_LOCK]
    if lock < 0:
        return
    _unlink_waiter(lock, proc)
    pw[pb + W_WAIT_LOCK] = -1
    pw[pb + W_WAIT_PROCLOCK] = -1
    pw[pb + W_WAIT_STATUS] = status
    pid = _pid_of(proc)
    if pid:
        _wake_pids.append(pid)


def proc_lock_wakeup(lock: int) -> None:
    """ProcLockWakeup: grant the lock to every waiter, in queue order, whose
    request conflicts neither with requests ahead of it nor with the holders."""
    st = _st
    pw = st.pw
    p = st.lk[lock * LOCK_WORDS + L_WAIT_HEAD]
    ahead = 0
    while p >= 0:
        pb = p * PROC_WORDS
        nxt = pw[pb + W_NEXT]
        mode = pw[pb + W_WAIT_MODE]
        proclock = pw[pb + W_WAIT_PROCLOCK]
        if not LOCK_CONFLICTS[mode] & ahead and not _lock_check_conflicts(mode, lock, proclock):
            _grant_lock(lock, proclock, mode)
            proc_wakeup(p, PROC_WAIT_STATUS_OK)
        else:
            ahead |= 1 << mode
        p = nxt


def _flush_wakeups() -> None:
    """Set the latches of the processes just granted a lock."""
    if not _wake_pids:
        return
    from procs import child

    while _wake_pids:
        child.set_latch(_wake_pids.pop())


def remove_from_wait_queue(proc: int, hashcode: int) -> None:
    """RemoveFromWaitQueue (partition lock held): take back a waiter's request,
    mark it failed, and wake those now able to go."""
    st = _st
    lk, pw = st.lk, st.pw
    pb = proc * PROC_WORDS
    lock = pw[pb + W_WAIT_LOCK]
    proclock = pw[pb + W_WAIT_PROCLOCK]
    mode = pw[pb + W_WAIT_MODE]
    _unlink_waiter(lock, proc)
    b = lock * LOCK_WORDS
    lk[b + L_NREQUESTED] -= 1
    lk[b + L_REQUESTED + mode] -= 1
    if lk[b + L_GRANTED + mode] == lk[b + L_REQUESTED + mode]:
        lk[b + L_WAIT_MASK] &= ~(1 << mode)
    pw[pb + W_WAIT_LOCK] = -1
    pw[pb + W_WAIT_PROCLOCK] = -1
    pw[pb + W_WAIT_STATUS] = PROC_WAIT_STATUS_ERROR
    _clean_up_lock(lock, proclock, hashcode, True)


def lock_error_cleanup() -> None:
    """LockErrorCleanup: after an error (or interrupt) during a lock wait, leave
    the wait queue — or, if the lock was granted meanwhile, keep it so that
    the transaction's abort releases it."""
    st = _st
    ll = st.awaited
    if ll is None or st.slot < 0:
        _abort_strong_lock_acquire()
        return
    plock = st.partition_locks[ll.hashcode & (NUM_LOCK_PARTITIONS - 1)]
    lwlock_acquire(plock, LW_EXCLUSIVE)
    granted = False
    try:
        b = st.slot * PROC_WORDS
        if st.pw[b + W_WAIT_LOCK] >= 0:
            remove_from_wait_queue(st.slot, ll.hashcode)
        elif st.pw[b + W_WAIT_STATUS] == PROC_WAIT_STATUS_OK:
            _grant_lock_local(ll, st.awaited_session)  # GrantAwaitedLock
            granted = True
        st.awaited = None
    finally:
        lwlock_release(plock)
        _flush_wakeups()
    # A strong lock granted after all keeps its count until it is released
    # (PostgreSQL drops the count here, opening a window for fast-path grants).
    if granted:
        _finish_strong_lock_acquire()
    else:
        _abort_strong_lock_acquire()


def _on_sigurg(_signo: int, _frame: object) -> None:
    from procs import child

    if child.latch is not None:
        child.latch.is_set = True


def _ensure_latch() -> None:
    """A process that was not started as a postmaster child (tests, tools) gets
    a latch the first time it waits for a lock."""
    from procs import child

    # A latch inherited through fork shares its self-pipe with the parent and the
    # siblings, which would drain each other's wake-ups: each process needs its own.
    if child.latch is None or child.latch.pid != os.getpid():
        child.latch = child.Latch()
        signal.signal(signal.SIGURG, _on_sigurg)


def _wait_latch(timeout: float | None) -> None:
    """WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | timeout) + ResetLatch."""
    from procs import child

    if child.env is not None:
        bits = child.wait_latch(timeout)
        if bits & child.WL_POSTMASTER_DEATH:
            raise FatalError("57P01", "terminating connection due to unexpected postmaster exit")
        if bits & child.WL_LATCH_SET:
            child.reset_latch()
        return
    latch = child.latch
    if not latch.is_set:
        try:
            select.select([latch.read_fd], [], [], timeout)
        except InterruptedError:
            pass
    latch.reset()


def _elapsed_text(seconds: float) -> str:
    us = int(seconds * 1_000_000)
    return f"{us // 1000}.{us % 1000:03d}"


def _holders_and_waiters(ll: LocalLock) -> str:
    """The DETAIL of log_lock_waits' messages (holders and waiters by pid)."""
    st = _st
    holders: list[str] = []
    waiters: list[str] = []
    plock = st.partition_locks[ll.hashcode & (NUM_LOCK_PARTITIONS - 1)]
    lwlock_acquire(plock, LW_SHARED)
    try:
        lock = _find_lock(ll.tag[0], ll.tag[1], ll.hashcode)
        p = st.lk[lock * LOCK_WORDS + L_PROCLOCKS] if lock >= 0 else -1
        while p >= 0:
            proc = st.pl[p * PROCLOCK_WORDS + P_PROC]
            pid = str(_pid_of(proc))
            if st.pw[proc * PROC_WORDS + W_WAIT_PROCLOCK] == p:
                waiters.append(pid)
            else:
                holders.append(pid)
            p = st.pl[p * PROCLOCK_WORDS + P_NEXT]
    finally:
        lwlock_release(plock)
    label = "Process holding the lock" if len(holders) == 1 else "Processes holding the lock"
    return f"{label}: {', '.join(holders)}. Wait queue: {', '.join(waiters)}."


def _log_wait(text: str, ll: LocalLock, started: float, detail: bool) -> None:
    mode = LOCK_MODE_NAMES[ll.mode]
    msg = (f"process {os.getpid()} {text} {mode} on {describe_lock_tag(ll.tag)} after "
           f"{_elapsed_text(time.monotonic() - started)} ms")
    elog.ereport(elog.LOG, msg, detail=_holders_and_waiters(ll) if detail else None,
                 context_line=wait_context, to_client=False)


def proc_sleep(ll: LocalLock) -> int:
    """ProcSleep: wait on my latch until the lock is granted (returns
    PROC_WAIT_STATUS_OK) or the deadlock check removed me from the queue
    (PROC_WAIT_STATUS_ERROR). The interrupt hook, lock_timeout and
    statement_timeout raise out of it; the caller then runs lock_error_cleanup.

    Publishes wait event Lock/<locktag type> and waitStart (pg_locks) meanwhile.
    """
    st = _st
    pw = st.pw
    b = st.slot * PROC_WORDS
    settings = st.settings
    _ensure_latch()
    deadlock_timeout = max(int(_setting(settings, "deadlock_timeout", 1000)), 1) / 1000
    lock_timeout = int(_setting(settings, "lock_timeout", 0)) / 1000
    log_waits = bool(_setting(settings, "log_lock_waits", False))
    started = time.monotonic()
    deadlock_at = started + deadlock_timeout
    lock_deadline = started + lock_timeout if lock_timeout > 0 else 0.0
    pw[b + W_WAIT_START] = int((time.time() - POSTGRES_EPOCH_UNIX) * 1_000_000)
    deadlock_state = DS_NOT_YET_CHECKED
    logged_still_waiting = False
    procs = st.procs
    wait_event = PG_WAIT_LOCK | locktag_type(ll.tag)
    try:
        while True:
            now = time.monotonic()
            if deadlock_state == DS_NOT_YET_CHECKED and now >= deadlock_at:
                deadlock_state = check_dead_lock()
                if log_waits:
                    if deadlock_state == DS_SOFT_DEADLOCK:
                        _log_wait("avoided deadlock for", ll, started, False)
                    elif deadlock_state == DS_HARD_DEADLOCK:
                        _log_wait("detected deadlock while waiting for", ll, started, True)
            check_for_interrupts_hook()
            status = pw[b + W_WAIT_STATUS]
            if log_waits and deadlock_state != DS_NOT_YET_CHECKED:
                if status == PROC_WAIT_STATUS_WAITING and not logged_still_waiting:
                    _log_wait("still waiting for", ll, started, True)
                    logged_still_waiting = True
                elif status == PROC_WAIT_STATUS_OK:
                    _log_wait("acquired", ll, started, False)
                elif status == PROC_WAIT_STATUS_ERROR and deadlock_state != DS_HARD_DEADLOCK:
                    _log_wait("failed to acquire", ll, started, False)
            if status != PROC_WAIT_STATUS_WAITING:
                return status
            stmt_deadline = statement_deadline_hook()
            now = time.monotonic()
            if lock_deadline and now >= lock_deadline and \
                    (not stmt_deadline or lock_deadline <= stmt_deadline):
                raise PgError("55P03", "canceling statement due to lock timeout")
            if stmt_deadline and now >= stmt_deadline:
                raise PgError("57014", "canceling statement due to statement timeout")
            wake_at = [t for t in (lock_deadline, stmt_deadline) if t]
            if deadlock_state == DS_NOT_YET_CHECKED:
                wake_at.append(deadlock_at)
            if procs is not None:  # (again: LWLock waits in between reset it)
                procs.set_wait_event(wait_event)
            _wait_latch(max(min(wake_at) - now, 0.0) if wake_at else None)
    finally:
        if procs is not None:
            procs.set_wait_event(0)
        pw[b + W_WAIT_START] = 0


def check_dead_lock() -> int:
    """CheckDeadLock: with every partition lock held in order, run the deadlock
    check unless I was granted the lock meanwhile; on a hard deadlock leave the
    queue (my status becomes PROC_WAIT_STATUS_ERROR)."""
    from storage.lmgr import deadlock as _deadlock

    st = _st
    locks = st.partition_locks
    n = 0
    try:
        for plock in locks:  # in partition order, as every taker of several does
            lwlock_acquire(plock, LW_EXCLUSIVE)
            n += 1
        b = st.slot * PROC_WORDS
        lock = st.pw[b + W_WAIT_LOCK]
        if lock < 0:
            return DS_NO_DEADLOCK  # granted (or removed) meanwhile
        state = _deadlock.dead_lock_check(st.slot)
        if state == DS_HARD_DEADLOCK:
            remove_from_wait_queue(st.slot, st.lk[lock * LOCK_WORDS + L_HASHCODE])
        return state
    finally:
        for plock in reversed(locks[:n]):
            lwlock_release(plock)
        _flush_wakeups()


# ---------------------------------------------------------------------------
# Lock status (GetLockStatusData) for pg_locks


class LockInstanceData(NamedTuple):
    """One PROCLOCK (or fast-path entry) as GetLockStatusData reports it."""

    tag: LockTag
    hold_mask: int
    wait_lock_mode: int  # NoLock unless waiting on this lock
    backend: int  # backend id (PGPROC slot + 1), -1 for auxiliary processes
    lxid: int
    wait_start: int  # TimestampTz (µs since 2000-01-01), 0 if not waiting
    pid: int
    fastpath: bool


def _backend_id_of(proc: int) -> int:
    st = _st
    return proc + 1 if st.procs is None or proc < st.procs.max_connections else -1


def get_lock_status_data() -> list[LockInstanceData]:
    """GetLockStatusData: the fast-path entries of every process (each under its
    fpInfoLock), then every PROCLOCK of the main table (all partition locks
    held shared, in order) — a consistent picture of the main table."""
    st = _st
    pw, pwu, pl, lk, lku = st.pw, st.pwu, st.pl, st.lk, st.lku
    out: list[LockInstanceData] = []
    for proc in range(st.nslots):
        if not _slot_in_use(proc):
            continue
        b = proc * PROC_WORDS
        sem = st.fp_sems[proc]
        _sem_acquire(sem)
        try:
            bits = pw[b + W_FP_BITS]
            rels = pwu[b + W_FP_REL:b + W_FP_REL + FP_LOCK_SLOTS_PER_BACKEND].tolist()
            vxid = pw[b + W_FP_VXID]
            fp_lxid = pw[b + W_FP_LXID]
            lxid = pw[b + W_LXID]
        finally:
            sem.release()
        pid = _pid_of(proc)
        backend = _backend_id_of(proc)
        for j in range(FP_LOCK_SLOTS_PER_BACKEND):
            modes = (bits >> (3 * j)) & 7
            if modes:
                out.append(LockInstanceData((rels[j], _REL_K1), modes << 1, NoLock, backend,
                                            lxid, 0, pid, True))
        if vxid:
            out.append(LockInstanceData(set_locktag_virtualtransaction(backend, fp_lxid),
                                        1 << ExclusiveLock, NoLock, backend, lxid, 0, pid, True))
    locks = st.partition_locks
    n = 0
    try:
        for plock in locks:
            lwlock_acquire(plock, LW_SHARED)
            n += 1
        for proclock, lock in enumerate(pl[P_LOCK::PROCLOCK_WORDS].tolist()):
            if lock < 0:
                continue
            pb = proclock * PROCLOCK_WORDS
            proc = pl[pb + P_PROC]
            wb = proc * PROC_WORDS
            waiting = pw[wb + W_WAIT_PROCLOCK] == proclock
            lb = lock * LOCK_WORDS
            out.append(LockInstanceData(
                (lku[lb], lk[lb + L_K1]), pl[pb + P_HOLD],
                pw[wb + W_WAIT_MODE] if waiting else NoLock, _backend_id_of(proc),
                pw[wb + W_LXID], pw[wb + W_WAIT_START], _pid_of(proc), False))
    finally:
        for plock in reversed(locks[:n]):
            lwlock_release(plock)
    return out


def get_blocking_pids(pid: int) -> list[int]:
    """The pids blocking ``pid``'s lock wait (GetBlockerStatusData, for
    pg_blocking_pids): holders of conflicting modes, then waiters ahead of it
    with conflicting requests."""
    st = _st
    if st.procs is None:
        return []
    target = next((s for s, p, _t, _u in st.procs.in_use() if p == pid), None)
    if target is None:
        return []
    pw, pl, lk = st.pw, st.pl, st.lk
    out: list[int] = []
    locks = st.partition_locks
    n = 0
    try:
        for plock in locks:
            lwlock_acquire(plock, LW_SHARED)
            n += 1
        tb = target * PROC_WORDS
        lock = pw[tb + W_WAIT_LOCK]
        if lock < 0:
            return []
        conflicts = LOCK_CONFLICTS[pw[tb + W_WAIT_MODE]]
        p = lk[lock * LOCK_WORDS + L_PROCLOCKS]
        while p >= 0:
            proc = pl[p * PROCLOCK_WORDS + P_PROC]
            if proc != target and pl[p * PROCLOCK_WORDS + P_HOLD] & conflicts:
                out.append(_pid_of(proc))
            p = pl[p * PROCLOCK_WORDS + P_NEXT]
        for proc in wait_queue(lock):
            if proc == target:
                break
            if (1 << pw[proc * PROC_WORDS + W_WAIT_MODE]) & conflicts:
                out.append(_pid_of(proc))
    finally:
        for plock in reversed(locks[:n]):
            lwlock_release(plock)
    return out


def lock_table_usage() -> tuple[int, int, int, int]:
    """(LOCKs in use, capacity, PROCLOCKs in use, capacity), read without locks."""
    st = _st
    return (st.hdr[H_LOCKS_USED], st.nlocks, st.hdr[H_PROCLOCKS_USED], st.nproclocks)
