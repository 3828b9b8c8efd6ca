"""Running transactions and snapshots — mirrors the core of
src/backend/storage/ipc/procarray.c (PostgreSQL 15).

Every process's PGPROC slot (shmem/proc.py) carries two uint32 fields:
``xid``, the transaction id it is running under (0 when none), and ``xmin``,
the oldest xid its snapshots may still consider running (0 when none). Slots
join and leave the array when processes claim and release them (ProcArrayAdd
and ProcArrayRemove are the claim and release in shmem/proc.py).

Protocol between processes (src/backend/access/transam/README)
------------------------------------------------------------------
- A process stores its new xid into its slot while holding XidGenLock, in
  the same hold that advanced nextXid (access.transam.get_new_transaction_id):
  any xid below nextXid that is still running is visible in the array.
- It clears its xid under ProcArrayLock held *exclusively*, only after its
  commit or abort is recorded in pg_xact, and advances latestCompletedXid in
  the same hold (``proc_array_end_transaction``).
- A snapshot is taken under ProcArrayLock held *shared*: xmax is
  latestCompletedXid + 1, and every xid below xmax still in the array is
  listed as running. Since ending transactions take the lock exclusively, a
  snapshot sees each transaction either running (listed, or >= xmax) or with
  its final status already in pg_xact, never in between.
- Fields are read once and without the slot's owner cooperating: a uint32
  store is atomic.

Where tusk differs
------------------
- No subtransaction cache (subxids) in PGPROC, no statusFlags (VACUUM,
  logical decoding), no group xid clearing (ProcArrayGroupClearXid): the
  exclusive hold is a few microseconds.
- The slots are scanned with strided memoryview reads (one C-level copy of
  every slot's xid) instead of PostgreSQL's dense ProcGlobal->xids mirror.
- ``get_oldest_xmin`` is a single horizon over all databases
  (PostgreSQL's ComputeXidHorizons keeps several).
"""

from __future__ import annotations

from shmem.lwlock import (
    LW_EXCLUSIVE,
    LW_SHARED,
    LWLock,
    get_named_lwlock,
    lwlock_acquire,
    lwlock_release,
)
from shmem.proc import IN_USE_OFFSET, SLOT_SIZE, SLOT_WORDS, XID_WORD, XMIN_WORD, ProcArray

_MASK = 0xFFFFFFFF
_HALF = 0x80000000
_FIRST_NORMAL = 3  # access.transam.FirstNormalTransactionId

# TransamVariables words (int64) that live under ProcArrayLock; the layout is
# access.transam's, which passes the view at attach time.
V_LATEST_COMPLETED_XID = 1
V_XACT_COMPLETION_COUNT = 2


class Snapshot:
    """An MVCC snapshot (SnapshotData's core): every xid < xmin is finished,
    every xid >= xmax is running, and between the two exactly those in ``xip``
    are running. The taking process's own xid is never in ``xip``: the caller
    knows its own transaction (TransactionIdIsCurrentTransactionId)."""

    __slots__ = ("xmin", "xmax", "xip", "xip_set", "curcid")
    # SnapshotType (snapshot.h): utils/snapmgr.py's special snapshots (SnapshotAny,
    # SnapshotSelf, SnapshotDirty) carry other kinds; heapam_visibility dispatches on it.
    kind = 0  # KIND_MVCC

    def __init__(self, xmin: int, xmax: int, xip: list[int], curcid: int = 0) -> None:
        self.xmin = xmin
        self.xmax = xmax
        self.xip = xip
        self.xip_set = frozenset(xip)
        self.curcid = curcid  # commands of this transaction before curcid are visible

    def __repr__(self) -> str:
        return f"Snapshot(xmin={self.xmin}, xmax={self.xmax}, xip={self.xip})"

    def xid_in_snapshot(self, xid: int) -> bool:
        """XidInMVCCSnapshot: is ``xid`` (a normal xid) running for this snapshot?"""
        if ((xid - self.xmin) & _MASK) >= _HALF:
            return False  # xid < xmin
        if ((xid - self.xmax) & _MASK) < _HALF:
            return True  # xid >= xmax
        return xid in self.xip_set


class _State:
    __slots__ = ("procs", "words", "in_use", "vars", "lock", "my_slot", "my_xid_word",
                 "my_xmin_word")

    def __init__(self) -> None:
        self.procs: ProcArray | None = None
        self.words: memoryview | None = None  # the slots as uint32
        self.in_use: memoryview | None = None  # the slots as bytes
        self.vars: memoryview | None = None  # TransamVariables as int64
        self.lock: LWLock | None = None
        self.my_slot = -1
        self.my_xid_word = -1
        self.my_xmin_word = -1


_st = _State()

# Per-process values of the last snapshot (RecentXmin, TransactionXmin) and the
# one-entry cache of TransactionIdIsInProgress.
recent_xmin = 0
transaction_xmin = 0
_cached_xid_not_in_progress = 0


def attach(procs: ProcArray, transam_vars: memoryview) -> None:
    """Bind this process (access.transam.attach calls this). With a claimed
    PGPROC slot, clear its transaction fields."""
    global recent_xmin, transaction_xmin, _cached_xid_not_in_progress
    detach()
    _st.procs = procs
    _st.words = procs.xact_words()
    _st.in_use = procs.slots[IN_USE_OFFSET::SLOT_SIZE]
    _st.vars = transam_vars
    _st.lock = get_named_lwlock("ProcArrayLock")
    if procs.my_slot is not None:
        _st.my_slot = procs.my_slot
        _st.my_xid_word = procs.my_slot * SLOT_WORDS + XID_WORD
        _st.my_xmin_word = procs.my_slot * SLOT_WORDS + XMIN_WORD
        _st.words[_st.my_xid_word] = 0
        _st.words[_st.my_xmin_word] = 0
    recent_xmin = transaction_xmin = _cached_xid_not_in_progress = 0


def detach() -> None:
    for v in (_st.words, _st.in_use):
        if v is not None:
            v.release()
    _st.__init__()


def have_proc() -> bool:
    """Does this process have a PGPROC slot (may it run transactions)?"""
    return _st.my_xid_word >= 0


def set_my_xid(xid: int) -> None:
    """MyProc->xid = xid (GetNewTransactionId, under XidGenLock; the caller has
    checked have_proc())."""
    _st.words[_st.my_xid_word] = xid  # type: ignore[index]


def my_xid() -> int:
    """MyProc->xid: this process's running xid, or 0."""
    if _st.my_xid_word < 0:
        return 0
    return _st.words[_st.my_xid_word]  # type: ignore[index]


def my_xmin() -> int:
    if _st.my_xmin_word < 0:
        return 0
    return _st.words[_st.my_xmin_word]  # type: ignore[index]


def set_my_xmin(xmin: int) -> None:
    """MyProc->xmin = xmin (SnapshotResetXmin: the oldest snapshot this process
    still uses, 0 for none). Only ever moves forward or to 0 while a snapshot is
    taken under ProcArrayLock, so a plain uint32 store is enough."""
    if _st.my_xmin_word >= 0:
        _st.words[_st.my_xmin_word] = xmin  # type: ignore[index]


def _xids() -> list[int]:
    """Every slot's xid (0 for free slots and slots without one), one copy."""
    return _st.words[XID_WORD::SLOT_WORDS].tolist()  # type: ignore[index]


def _precedes(id1: int, id2: int) -> bool:
    """TransactionIdPrecedes (access.transam's, repeated to avoid an import cycle)."""
    if id1 < _FIRST_NORMAL or id2 < _FIRST_NORMAL:
        return id1 < id2
    return ((id1 - id2) & _MASK) >= _HALF


def _advance(xid: int) -> int:
    """TransactionIdAdvance."""
    xid = (xid + 1) & _MASK
    return xid if xid >= _FIRST_NORMAL else _FIRST_NORMAL


def proc_array_end_transaction(latest_xid: int) -> None:
    """ProcArrayEndTransaction: after the commit or abort is in pg_xact, leave
    the set of running transactions. ``latest_xid`` is the newest xid of the
    transaction tree (TransactionIdLatest); 0 for a transaction that had no
    xid, which only drops its xmin, without a lock."""
    st = _st
    words = st.words
    if st.my_xid_word < 0:
        if not latest_xid:
            return  # a process without a PGPROC (tools, unit tests) advertises nothing
        raise RuntimeError("proc_array_end_transaction without a PGPROC slot")
    if not latest_xid:
        words[st.my_xmin_word] = 0  # type: ignore[index]
        return
    v = st.vars
    lock = st.lock
    lwlock_acquire(lock, LW_EXCLUSIVE)  # type: ignore[arg-type]
    words[st.my_xid_word] = 0  # type: ignore[index]
    words[st.my_xmin_word] = 0  # type: ignore[index]
    # MaintainLatestCompletedXid
    cur = v[V_LATEST_COMPLETED_XID]  # type: ignore[index]
    if _precedes(cur & _MASK, latest_xid):
        v[V_LATEST_COMPLETED_XID] = full_xid_relative_to(cur, latest_xid)  # type: ignore[index]
    v[V_XACT_COMPLETION_COUNT] += 1  # type: ignore[index]
    lwlock_release(lock)  # type: ignore[arg-type]


def full_xid_relative_to(rel: int, xid: int) -> int:
    """FullXidRelativeTo: the 64-bit xid nearest to ``rel`` whose low half is ``xid``."""
    diff = (xid - (rel & _MASK)) & _MASK
    if diff >= _HALF:
        diff -= 1 << 32
    return rel + diff


def get_snapshot_data() -> Snapshot:
    """GetSnapshotData: the running transactions, as other processes see them.
    Sets this process's xmin if it has none (the first snapshot of a
    transaction), and RecentXmin / TransactionXmin."""
    global recent_xmin, transaction_xmin
    st = _st
    lock = st.lock
    lwlock_acquire(lock, LW_SHARED)  # type: ignore[arg-type]
    xmax = _advance(st.vars[V_LATEST_COMPLETED_XID] & _MASK)  # type: ignore[index]
    mine = st.words[st.my_xid_word] if st.my_xid_word >= 0 else 0  # type: ignore[index]
    running = set(_xids())  # C-speed: most slots are 0
    running.discard(0)
    running.discard(mine)
    # Running xids below xmax, but not mine (those >= xmax count as running anyway).
    xip = [x for x in running if ((x - xmax) & _MASK) >= _HALF]
    xmin = xmax
    if mine >= _FIRST_NORMAL and ((mine - xmin) & _MASK) >= _HALF:
        xmin = mine
    for x in xip:
        if ((x - xmin) & _MASK) >= _HALF:
            xmin = x
    words = st.words
    if st.my_xmin_word >= 0 and not words[st.my_xmin_word]:  # type: ignore[index]
        words[st.my_xmin_word] = xmin  # type: ignore[index]
        transaction_xmin = xmin
    lwlock_release(lock)  # type: ignore[arg-type]
    recent_xmin = xmin
    return Snapshot(xmin, xmax, xip)


def transaction_id_is_in_progress(xid: int) -> bool:
    """TransactionIdIsInProgress: is ``xid`` running in some process (this one
    included)? Cheap answers first: older than RecentXmin, the last xid found
    finished, this process's own xid."""
    global _cached_xid_not_in_progress
    if xid < _FIRST_NORMAL:
        return False
    if recent_xmin >= _FIRST_NORMAL and ((xid - recent_xmin) & _MASK) >= _HALF:
        return False
    if xid == _cached_xid_not_in_progress:
        return False
    st = _st
    if st.my_xid_word >= 0 and st.words[st.my_xid_word] == xid:  # type: ignore[index]
        return True
    lock = st.lock
    lwlock_acquire(lock, LW_SHARED)  # type: ignore[arg-type]
    # Newer than every completed transaction: surely still running.
    if _precedes(st.vars[V_LATEST_COMPLETED_XID] & _MASK, xid):  # type: ignore[index]
        lwlock_release(lock)  # type: ignore[arg-type]
        return True
    running = xid in _xids()
    lwlock_release(lock)  # type: ignore[arg-type]
    if not running:
        _cached_xid_not_in_progress = xid
    return running


def get_running_transaction_ids() -> list[int]:
    """The xids running now in every process (this one included), in xid order
    (GetRunningTransactionData's xids)."""
    st = _st
    lwlock_acquire(st.lock, LW_SHARED)  # type: ignore[arg-type]
    xids = [x for x in _xids() if x]
    lwlock_release(st.lock)  # type: ignore[arg-type]
    if not xids:
        return xids
    # Order modulo 2^32, starting from the oldest.
    base = xids[0]
    for x in xids:
        if ((x - base) & _MASK) >= _HALF:
            base = x
    return sorted(xids, key=lambda x: (x - base) & _MASK)


def get_oldest_xmin() -> int:
    """The oldest xid any process may still consider running: the minimum of
    every live slot's xid and xmin and latestCompletedXid + 1 (vacuum's
    horizon, GetOldestNonRemovableTransactionId)."""
    st = _st
    lwlock_acquire(st.lock, LW_SHARED)  # type: ignore[arg-type]
    result = _advance(st.vars[V_LATEST_COMPLETED_XID] & _MASK)  # type: ignore[index]
    words = st.words
    xids = words[XID_WORD::SLOT_WORDS].tolist()  # type: ignore[index]
    xmins = words[XMIN_WORD::SLOT_WORDS].tolist()  # type: ignore[index]
    used = st.in_use.tolist()  # type: ignore[union-attr]
    lwlock_release(st.lock)  # type: ignore[arg-type]
    for x, m, u in zip(xids, xmins, used, strict=True):
        if not u:
            continue
        for v in (x, m):
            if v >= _FIRST_NORMAL and ((v - result) & _MASK) >= _HALF:
                result = v
    return result
