"""Transaction ids and their status — mirrors src/backend/access/transam/transam.c
and varsup.c (PostgreSQL 15).

A TransactionId is a uint32 that wraps around: 0 is invalid, 1 is the
bootstrap xid, 2 the frozen xid, and normal xids start at 3 and are compared
modulo 2^32 (``transaction_id_precedes``: a is older than b when
``(int32)(a - b) < 0``), so every normal xid sees 2^31 xids in its past and
2^31 in its future. A FullTransactionId is the 64-bit ``epoch << 32 | xid``
that never wraps; here it is a plain int.

Shared state: TransamVariables
------------------------------
The region "Transam Variables" (PostgreSQL 15's ShmemVariableCache) holds:

    under XidGenLock       nextXid (64-bit), oldestXid, xidVacLimit,
                           xidWarnLimit, xidStopLimit, xidWrapLimit, oldestXidDB
    under OidGenLock       nextOid, oidCount
    under ProcArrayLock    latestCompletedXid (64-bit), xactCompletionCount
    under XactTruncationLock  oldestClogXid

Protocol between processes
--------------------------
- get_new_transaction_id (GetNewTransactionId) takes XidGenLock exclusively,
  extends pg_xact if the xid is the first of a CLOG page (access.clog, which
  WAL-logs the new page), advances nextXid only once that succeeded, and
  stores the xid in the caller's PGPROC slot before releasing the lock: an xid
  below nextXid that is still running is always visible in the ProcArray
  (access/procarray.py).
- Past xidVacLimit, every assignment releases XidGenLock to complain: a
  WARNING past xidWarnLimit, an ERROR past xidStopLimit.
- get_new_object_id hands out OIDs under OidGenLock and WAL-logs
  XLOG_NEXTOID for the next VAR_OID_PREFETCH (8192) at a time, so that after a
  crash the counter resumes past every OID that may have been used.
- Status lookups (transaction_id_did_commit ...) read pg_xact through
  access.clog and keep a one-entry cache of the last *final* status seen
  (cachedFetchXid): committed and aborted never change again.

Where tusk differs
------------------
- No pg_subtrans: a SUB_COMMITTED status (only seen inside a commit spanning
  several CLOG pages, or after a crash in one) is "not committed" for
  did_commit, and "aborted" for did_abort only when older than
  TransactionXmin, as PostgreSQL answers when its parent is long gone.
- No autovacuum launcher to signal past xidVacLimit.
- Database names in the wraparound messages come from
  ``get_database_name_hook`` (None: the OID wording PostgreSQL uses outside a
  transaction).
- WAL goes through access.clog's ``xlog_insert_hook``, and "recovery in
  progress" through ``recovery_in_progress_hook``, so unit tests can run
  without the WAL machinery.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from access import clog, procarray, slru, xlog
from access.clog import (
    TRANSACTION_STATUS_ABORTED,
    TRANSACTION_STATUS_COMMITTED,
    TRANSACTION_STATUS_IN_PROGRESS,
    TRANSACTION_STATUS_SUB_COMMITTED,
)
from access.procarray import transaction_id_is_in_progress
from access.xlog_internal import RM_XLOG_ID, XLOG_NEXTOID
from shmem.lwlock import (
    LW_EXCLUSIVE,
    LW_SHARED,
    LWLock,
    get_named_lwlock,
    lwlock_acquire,
    lwlock_release,
)
from shmem.proc import ProcArray
from shmem.segment import ShmemSegment
from utils import elog
from utils.elog import PgError

__all__ = [
    "TRANSACTION_STATUS_ABORTED", "TRANSACTION_STATUS_COMMITTED",
    "TRANSACTION_STATUS_IN_PROGRESS", "TRANSACTION_STATUS_SUB_COMMITTED",
    "transaction_id_is_in_progress",
]

InvalidTransactionId = 0
BootstrapTransactionId = 1
FrozenTransactionId = 2
FirstNormalTransactionId = 3
MaxTransactionId = 0xFFFFFFFF

InvalidOid = 0
FirstGenbkiObjectId = 10000
FirstUnpinnedObjectId = 12000
FirstNormalObjectId = 16384
VAR_OID_PREFETCH = 8192

_MASK = 0xFFFFFFFF
_HALF = 0x80000000

# ---------------------------------------------------------------------------
# TransactionId arithmetic (transam.h, transam.c)


def transaction_id_is_valid(xid: int) -> bool:
    return xid != InvalidTransactionId


def transaction_id_is_normal(xid: int) -> bool:
    return xid >= FirstNormalTransactionId


def transaction_id_precedes(id1: int, id2: int) -> bool:
    """TransactionIdPrecedes: is id1 logically older than id2? Permanent xids
    compare as plain numbers (they precede every normal xid)."""
    if id1 < FirstNormalTransactionId or id2 < FirstNormalTransactionId:
        return id1 < id2
    return ((id1 - id2) & _MASK) >= _HALF


def transaction_id_precedes_or_equals(id1: int, id2: int) -> bool:
    if id1 < FirstNormalTransactionId or id2 < FirstNormalTransactionId:
        return id1 <= id2
    return id1 == id2 or ((id1 - id2) & _MASK) >= _HALF


def transaction_id_follows(id1: int, id2: int) -> bool:
    if id1 < FirstNormalTransactionId or id2 < FirstNormalTransactionId:
        return id1 > id2
    return id1 != id2 and ((id1 - id2) & _MASK) < _HALF


def transaction_id_follows_or_equals(id1: int, id2: int) -> bool:
    if id1 < FirstNormalTransactionId or id2 < FirstNormalTransactionId:
        return id1 >= id2
    return ((id1 - id2) & _MASK) < _HALF


def normal_transaction_id_precedes(id1: int, id2: int) -> bool:
    """NormalTransactionIdPrecedes: both known normal."""
    return ((id1 - id2) & _MASK) >= _HALF


def transaction_id_advance(xid: int) -> int:
    """TransactionIdAdvance: the next xid, skipping the permanent ones on wraparound."""
    xid = (xid + 1) & _MASK
    return xid if xid >= FirstNormalTransactionId else FirstNormalTransactionId


def transaction_id_retreat(xid: int) -> int:
    """TransactionIdRetreat."""
    xid = (xid - 1) & _MASK
    while xid < FirstNormalTransactionId:
        xid = (xid - 1) & _MASK
    return xid


def transaction_id_older(a: int, b: int) -> int:
    """TransactionIdOlder: the older of two xids, ignoring invalid ones."""
    if not a:
        return b
    if not b:
        return a
    return a if transaction_id_precedes(a, b) else b


def transaction_id_latest(mainxid: int, subxids: Sequence[int]) -> int:
    """TransactionIdLatest: the newest xid of a transaction tree."""
    result = mainxid
    for x in subxids:
        if transaction_id_precedes(result, x):
            result = x
    return result


# ---------------------------------------------------------------------------
# FullTransactionId: epoch << 32 | xid, as a plain int

FirstNormalFullTransactionId = FirstNormalTransactionId


def full_transaction_id_from_epoch_and_xid(epoch: int, xid: int) -> int:
    return (epoch << 32) | xid


def epoch_from_full_transaction_id(fxid: int) -> int:
    return fxid >> 32


def xid_from_full_transaction_id(fxid: int) -> int:
    return fxid & _MASK


def full_transaction_id_advance(fxid: int) -> int:
    """FullTransactionIdAdvance: 64-bit xids never wrap, but skip the values whose
    low half would look permanent."""
    fxid += 1
    if fxid < FirstNormalFullTransactionId:
        return fxid
    while fxid & _MASK < FirstNormalTransactionId:
        fxid += 1
    return fxid


def full_transaction_id_retreat(fxid: int) -> int:
    """FullTransactionIdRetreat."""
    fxid -= 1
    if fxid < FirstNormalFullTransactionId:
        return fxid
    while fxid & _MASK < FirstNormalTransactionId:
        fxid -= 1
    return fxid


def full_transaction_id_str(fxid: int) -> str:
    """As pg_controldata prints NextXID: ``epoch:xid``."""
    return f"{fxid >> 32}:{fxid & _MASK}"


# ---------------------------------------------------------------------------
# Shared memory: TransamVariables

REGION = "Transam Variables"
REGION_SIZE = 64
# int64 words
V_NEXT_XID = 0
V_LATEST_COMPLETED_XID = procarray.V_LATEST_COMPLETED_XID  # 1
V_XACT_COMPLETION_COUNT = procarray.V_XACT_COMPLETION_COUNT  # 2
# uint32 words (after the three int64 words)
(U_OLDEST_XID, U_XID_VAC_LIMIT, U_XID_WARN_LIMIT, U_XID_STOP_LIMIT, U_XID_WRAP_LIMIT,
 U_OLDEST_XID_DB, U_NEXT_OID, U_OID_COUNT, U_OLDEST_CLOG_XID) = range(6, 15)

_NEXT_OID_REC = struct.Struct("<I")
DEFAULT_AUTOVACUUM_FREEZE_MAX_AGE = 200_000_000


def _setting(settings, name: str, default: object) -> object:
    try:
        value = settings.get(name)
    except Exception:
        return default
    return default if value is None else value


def shmem_requests(settings) -> list[tuple[str, int]]:
    return [(REGION, REGION_SIZE)]


def num_semaphores(settings) -> int:
    return 0


def shmem_init(seg: ShmemSegment, settings) -> None:
    """VarsupShmemInit (postmaster): the values of a fresh cluster until the
    startup process loads the checkpoint's (init_from_checkpoint)."""
    region = seg.region(REGION)
    region[:] = bytes(len(region))
    q, u = region.cast("Q"), region.cast("I")
    q[V_NEXT_XID] = FirstNormalFullTransactionId
    q[V_LATEST_COMPLETED_XID] = full_transaction_id_retreat(FirstNormalFullTransactionId)
    u[U_NEXT_OID] = FirstNormalObjectId
    u[U_OLDEST_CLOG_XID] = FirstNormalTransactionId
    limits = compute_transaction_id_limits(
        FirstNormalTransactionId,
        int(_setting(settings, "autovacuum_freeze_max_age",  # type: ignore[arg-type]
                     DEFAULT_AUTOVACUUM_FREEZE_MAX_AGE)))
    u[U_OLDEST_XID] = FirstNormalTransactionId
    (u[U_XID_VAC_LIMIT], u[U_XID_WARN_LIMIT], u[U_XID_STOP_LIMIT],
     u[U_XID_WRAP_LIMIT]) = limits
    u[U_OLDEST_XID_DB] = 1
    q.release()
    u.release()
    region.release()


class _State:
    __slots__ = ("region", "q", "u", "xid_gen_lock", "oid_gen_lock", "truncation_lock",
                 "freeze_max_age")

    def __init__(self) -> None:
        self.region: memoryview | None = None
        self.q: memoryview | None = None  # int64 words
        self.u: memoryview | None = None  # uint32 words
        self.xid_gen_lock: LWLock | None = None
        self.oid_gen_lock: LWLock | None = None
        self.truncation_lock: LWLock | None = None
        self.freeze_max_age = DEFAULT_AUTOVACUUM_FREEZE_MAX_AGE


_st = _State()


def _default_recovery_in_progress() -> bool:
    return xlog.recovery_in_progress()


# RecoveryInProgress(); tests replace it.
recovery_in_progress_hook: Callable[[], bool] = _default_recovery_in_progress
# get_database_name(oid) for the wraparound messages; None: name by OID.
get_database_name_hook: Callable[[int], str | None] | None = None


def attach(seg: ShmemSegment, settings, procs: ProcArray | None = None) -> None:
    """Bind this process to TransamVariables, pg_xact and the ProcArray (after
    shmem.lwlock is attached and, for a process that runs transactions, its
    PGPROC slot claimed: ``procs`` is the ProcArray returned by
    procs.postinit.init_process)."""
    detach()
    region = seg.region(REGION)
    _st.region = region
    _st.q = region.cast("Q")
    _st.u = region.cast("I")
    _st.xid_gen_lock = get_named_lwlock("XidGenLock")
    _st.oid_gen_lock = get_named_lwlock("OidGenLock")
    _st.truncation_lock = get_named_lwlock("XactTruncationLock")
    _st.freeze_max_age = int(_setting(settings, "autovacuum_freeze_max_age",  # type: ignore[arg-type]
                                      DEFAULT_AUTOVACUUM_FREEZE_MAX_AGE))
    clog.attach(seg, settings)
    if procs is None:
        procs = ProcArray(seg, settings.get("max_connections"))
    procarray.attach(procs, _st.q)
    _reset_cache()


def detach() -> None:
    """Drop every view on the segment (tests, shared memory reinitialisation)."""
    procarray.detach()
    clog.detach()
    for v in (_st.q, _st.u, _st.region):
        if v is not None:
            v.release()
    _st.__init__()
    _reset_cache()


def _vars() -> tuple[memoryview, memoryview]:
    if _st.q is None:
        raise RuntimeError("access.transam is not attached to a segment")
    return _st.q, _st.u  # type: ignore[return-value]


# ---------------------------------------------------------------------------
# Assigning xids (varsup.c)

def get_new_full_transaction_id() -> int:
    """GetNewTransactionId: allocate the next xid, extend pg_xact for it, and
    advertise it in this process's PGPROC slot. Returns the FullTransactionId."""
    if recovery_in_progress_hook():
        raise PgError("XX000", "cannot assign TransactionIds during recovery")
    if not procarray.have_proc():
        raise RuntimeError("a TransactionId needs a PGPROC slot (transam.attach with procs)")
    q, u = _vars()
    lock = _st.xid_gen_lock
    lwlock_acquire(lock, LW_EXCLUSIVE)  # type: ignore[arg-type]
    held = True
    try:
        full = q[V_NEXT_XID]
        xid = full & _MASK
        if transaction_id_follows_or_equals(xid, u[U_XID_VAC_LIMIT]):
            # Complain without holding the lock, then start over.
            limits = (u[U_XID_WARN_LIMIT], u[U_XID_STOP_LIMIT], u[U_XID_WRAP_LIMIT],
                      u[U_OLDEST_XID_DB])
            lwlock_release(lock)  # type: ignore[arg-type]
            held = False
            _check_wraparound(xid, *limits)
            lwlock_acquire(lock, LW_EXCLUSIVE)  # type: ignore[arg-type]
            held = True
            full = q[V_NEXT_XID]
            xid = full & _MASK
        # Before nextXid moves: if this fails, the next caller tries again.
        clog.extend_clog(xid)
        q[V_NEXT_XID] = full_transaction_id_advance(full)
        procarray.set_my_xid(xid)
    finally:
        if held:
            lwlock_release(lock)  # type: ignore[arg-type]
    return full


def get_new_transaction_id() -> int:
    """GetNewTransactionId, returning the 32-bit xid (what tuples and PGPROC hold)."""
    return get_new_full_transaction_id() & _MASK


_WRAP_HINT_TAIL = ("You might also need to commit or roll back old prepared transactions, "
                   "or drop stale replication slots.")


def _database_name(datoid: int) -> str | None:
    hook = get_database_name_hook
    if hook is None:
        return None
    try:
        return hook(datoid)
    except Exception:
        return None


def wraparound_warning(xid: int, wrap_limit: int, datoid: int) -> tuple[str, str]:
    """(message, hint) of PostgreSQL's "must be vacuumed within" WARNING."""
    remaining = (wrap_limit - xid) & _MASK
    name = _database_name(datoid)
    if name is not None:
        msg = f'database "{name}" must be vacuumed within {remaining} transactions'
    else:
        msg = f"database with OID {datoid} must be vacuumed within {remaining} transactions"
    return msg, ("To avoid a database shutdown, execute a database-wide VACUUM in that "
                 "database.\n" + _WRAP_HINT_TAIL)


def _check_wraparound(xid: int, warn_limit: int, stop_limit: int, wrap_limit: int,
                      datoid: int) -> None:
    """GetNewTransactionId's complaints past xidVacLimit."""
    if transaction_id_follows_or_equals(xid, stop_limit):
        name = _database_name(datoid)
        where = f'database "{name}"' if name is not None else f"database with OID {datoid}"
        raise PgError("54000", "database is not accepting commands to avoid wraparound data "
                      f"loss in {where}",
                      hint="Stop the postmaster and vacuum that database in single-user "
                           "mode.\n" + _WRAP_HINT_TAIL)
    if transaction_id_follows_or_equals(xid, warn_limit):
        msg, hint = wraparound_warning(xid, wrap_limit, datoid)
        elog.ereport(elog.WARNING, msg, hint=hint, sqlstate="01000")


def compute_transaction_id_limits(oldest_datfrozenxid: int,
                                  freeze_max_age: int) -> tuple[int, int, int, int]:
    """SetTransactionIdLimit's arithmetic: (vac, warn, stop, wrap) limits."""
    wrap = (oldest_datfrozenxid + (MaxTransactionId >> 1)) & _MASK
    if wrap < FirstNormalTransactionId:
        wrap += FirstNormalTransactionId
    # Refuse new xids 3M before data loss, warn 40M before.
    stop = (wrap - 3_000_000) & _MASK
    if stop < FirstNormalTransactionId:
        stop = (stop - FirstNormalTransactionId) & _MASK
    warn = (wrap - 40_000_000) & _MASK
    if warn < FirstNormalTransactionId:
        warn = (warn - FirstNormalTransactionId) & _MASK
    vac = (oldest_datfrozenxid + freeze_max_age) & _MASK
    if vac < FirstNormalTransactionId:
        vac += FirstNormalTransactionId
    return vac, warn, stop, wrap


def set_transaction_id_limit(oldest_datfrozenxid: int, oldest_datoid: int) -> None:
    """SetTransactionIdLimit: the wraparound limits for the oldest datfrozenxid;
    warns at once if nextXid is already past the warning limit."""
    q, u = _vars()
    vac, warn, stop, wrap = compute_transaction_id_limits(oldest_datfrozenxid,
                                                          _st.freeze_max_age)
    lock = _st.xid_gen_lock
    lwlock_acquire(lock, LW_EXCLUSIVE)  # type: ignore[arg-type]
    u[U_OLDEST_XID] = oldest_datfrozenxid
    u[U_XID_VAC_LIMIT] = vac
    u[U_XID_WARN_LIMIT] = warn
    u[U_XID_STOP_LIMIT] = stop
    u[U_XID_WRAP_LIMIT] = wrap
    u[U_OLDEST_XID_DB] = oldest_datoid
    cur_xid = q[V_NEXT_XID] & _MASK
    lwlock_release(lock)  # type: ignore[arg-type]
    elog.ereport(elog.DEBUG1, f"transaction ID wrap limit is {wrap}, limited by database "
                              f"with OID {oldest_datoid}")
    if transaction_id_follows_or_equals(cur_xid, warn) and not slru.in_recovery:
        msg, hint = wraparound_warning(cur_xid, wrap, oldest_datoid)
        elog.ereport(elog.WARNING, msg, hint=hint, sqlstate="01000")


def transaction_id_limits() -> dict[str, int]:
    """The current limits (for tools and tests)."""
    _q, u = _vars()
    return {"oldest_xid": u[U_OLDEST_XID], "xid_vac_limit": u[U_XID_VAC_LIMIT],
            "xid_warn_limit": u[U_XID_WARN_LIMIT], "xid_stop_limit": u[U_XID_STOP_LIMIT],
            "xid_wrap_limit": u[U_XID_WRAP_LIMIT], "oldest_xid_db": u[U_OLDEST_XID_DB]}


def read_next_full_transaction_id() -> int:
    """ReadNextFullTransactionId."""
    q, _u = _vars()
    lwlock_acquire(_st.xid_gen_lock, LW_SHARED)  # type: ignore[arg-type]
    full = q[V_NEXT_XID]
    lwlock_release(_st.xid_gen_lock)  # type: ignore[arg-type]
    return full


def read_next_transaction_id() -> int:
    return read_next_full_transaction_id() & _MASK


def advance_next_full_transaction_id_past_xid(xid: int) -> None:
    """AdvanceNextFullTransactionIdPastXid (startup process, for every replayed
    record that carries an xid): make nextXid follow ``xid``, detecting the
    wrap into a new epoch."""
    q, _u = _vars()
    cur = q[V_NEXT_XID]
    next_xid = cur & _MASK
    if not transaction_id_follows_or_equals(xid, next_xid):
        return
    xid = transaction_id_advance(xid)
    epoch = cur >> 32
    if xid < next_xid:
        epoch += 1
    lwlock_acquire(_st.xid_gen_lock, LW_EXCLUSIVE)  # type: ignore[arg-type]
    q[V_NEXT_XID] = (epoch << 32) | xid
    lwlock_release(_st.xid_gen_lock)  # type: ignore[arg-type]


def advance_oldest_clog_xid(oldest_datfrozenxid: int) -> None:
    """AdvanceOldestClogXid: before pg_xact is truncated (TruncateCLOG, redo)."""
    _q, u = _vars()
    lwlock_acquire(_st.truncation_lock, LW_EXCLUSIVE)  # type: ignore[arg-type]
    if transaction_id_precedes(u[U_OLDEST_CLOG_XID], oldest_datfrozenxid):
        u[U_OLDEST_CLOG_XID] = oldest_datfrozenxid
    lwlock_release(_st.truncation_lock)  # type: ignore[arg-type]


def oldest_clog_xid() -> int:
    return _vars()[1][U_OLDEST_CLOG_XID]


# ---------------------------------------------------------------------------
# OIDs (varsup.c GetNewObjectId)

def get_new_object_id() -> int:
    """GetNewObjectId: the next OID, never below FirstNormalObjectId (the
    counter wraps back there); logs XLOG_NEXTOID every VAR_OID_PREFETCH OIDs.
    Callers must still check for a conflict with an existing object."""
    if recovery_in_progress_hook():
        raise PgError("XX000", "cannot assign OIDs during recovery")
    _q, u = _vars()
    lock = _st.oid_gen_lock
    lwlock_acquire(lock, LW_EXCLUSIVE)  # type: ignore[arg-type]
    try:
        if u[U_NEXT_OID] < FirstNormalObjectId:
            # Wraparound, or the first assignment after initdb.
            u[U_NEXT_OID] = FirstNormalObjectId
            u[U_OID_COUNT] = 0
        if u[U_OID_COUNT] == 0:
            xlog_put_next_oid((u[U_NEXT_OID] + VAR_OID_PREFETCH) & _MASK)
            u[U_OID_COUNT] = VAR_OID_PREFETCH
        result = u[U_NEXT_OID]
        u[U_NEXT_OID] = (result + 1) & _MASK
        u[U_OID_COUNT] -= 1
    finally:
        lwlock_release(lock)  # type: ignore[arg-type]
    return result


def xlog_put_next_oid(next_oid: int) -> int:
    """XLogPutNextOid. Not flushed: an OID reaches disk only in a tuple whose own
    WAL record follows this one."""
    return clog.xlog_insert_hook(RM_XLOG_ID, XLOG_NEXTOID, _NEXT_OID_REC.pack(next_oid))


def redo_next_oid(main_data: bytes) -> None:
    """xlog_redo for XLOG_NEXTOID."""
    (next_oid,) = _NEXT_OID_REC.unpack_from(main_data)
    _q, u = _vars()
    lwlock_acquire(_st.oid_gen_lock, LW_EXCLUSIVE)  # type: ignore[arg-type]
    u[U_NEXT_OID] = next_oid
    u[U_OID_COUNT] = 0
    lwlock_release(_st.oid_gen_lock)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Startup, recovery and checkpoints

def set_in_recovery(flag: bool) -> None:
    """InRecovery, for pg_xact: missing segments read as zeroes and replayed
    commits may repeat. The startup process sets it around redo."""
    slru.in_recovery = bool(flag)


def init_from_checkpoint(next_xid: int, next_oid: int, oldest_xid: int,
                         oldest_xid_db: int) -> None:
    """StartupXLOG's counters from the checkpoint it starts from (``next_xid``
    is the 64-bit CheckPoint.next_xid), then StartupCLOG. Call before redo."""
    q, u = _vars()
    lwlock_acquire(_st.xid_gen_lock, LW_EXCLUSIVE)  # type: ignore[arg-type]
    q[V_NEXT_XID] = next_xid
    lwlock_release(_st.xid_gen_lock)  # type: ignore[arg-type]
    lwlock_acquire(_st.oid_gen_lock, LW_EXCLUSIVE)  # type: ignore[arg-type]
    u[U_NEXT_OID] = next_oid
    u[U_OID_COUNT] = 0
    lwlock_release(_st.oid_gen_lock)  # type: ignore[arg-type]
    lwlock_acquire(_st.truncation_lock, LW_EXCLUSIVE)  # type: ignore[arg-type]
    u[U_OLDEST_CLOG_XID] = oldest_xid
    lwlock_release(_st.truncation_lock)  # type: ignore[arg-type]
    set_transaction_id_limit(oldest_xid, oldest_xid_db)
    _set_latest_completed_from_next_xid()
    clog.startup_clog(next_xid & _MASK)


def redo_checkpoint(next_xid: int, next_oid: int, oldest_xid: int, oldest_xid_db: int,
                    shutdown: bool) -> None:
    """xlog_redo for a replayed checkpoint record: a shutdown checkpoint's
    counters are exact; an online one's nextXid is a minimum, its nextOid is
    ignored (XLOG_NEXTOID records track it)."""
    q, u = _vars()
    lwlock_acquire(_st.xid_gen_lock, LW_EXCLUSIVE)  # type: ignore[arg-type]
    if shutdown or q[V_NEXT_XID] < next_xid:
        q[V_NEXT_XID] = next_xid
    old_oldest = u[U_OLDEST_XID]
    lwlock_release(_st.xid_gen_lock)  # type: ignore[arg-type]
    if shutdown:
        lwlock_acquire(_st.oid_gen_lock, LW_EXCLUSIVE)  # type: ignore[arg-type]
        u[U_NEXT_OID] = next_oid
        u[U_OID_COUNT] = 0
        lwlock_release(_st.oid_gen_lock)  # type: ignore[arg-type]
        advance_oldest_clog_xid(oldest_xid)
        set_transaction_id_limit(oldest_xid, oldest_xid_db)
    elif transaction_id_precedes(old_oldest, oldest_xid):
        set_transaction_id_limit(oldest_xid, oldest_xid_db)


def finish_recovery() -> None:
    """End of recovery (StartupXLOG after redo): TrimCLOG, latestCompletedXid
    from the final nextXid, leave InRecovery."""
    q, _u = _vars()
    clog.trim_clog(q[V_NEXT_XID] & _MASK)
    _set_latest_completed_from_next_xid()
    set_in_recovery(False)


def _set_latest_completed_from_next_xid() -> None:
    q, _u = _vars()
    lock = get_named_lwlock("ProcArrayLock")
    lwlock_acquire(lock, LW_EXCLUSIVE)
    q[V_LATEST_COMPLETED_XID] = full_transaction_id_retreat(q[V_NEXT_XID])
    lwlock_release(lock)


def checkpoint_values(shutdown: bool) -> tuple[int, int, int, int]:
    """CreateCheckPoint's copy of the counters: (nextXid as a 64-bit
    FullTransactionId, nextOid, oldestXid, oldestXidDB). An online checkpoint
    records nextOid past the OIDs already WAL-logged as handed out."""
    q, u = _vars()
    lwlock_acquire(_st.xid_gen_lock, LW_SHARED)  # type: ignore[arg-type]
    next_xid, oldest, oldest_db = q[V_NEXT_XID], u[U_OLDEST_XID], u[U_OLDEST_XID_DB]
    lwlock_release(_st.xid_gen_lock)  # type: ignore[arg-type]
    lwlock_acquire(_st.oid_gen_lock, LW_SHARED)  # type: ignore[arg-type]
    next_oid = u[U_NEXT_OID]
    if not shutdown:
        next_oid = (next_oid + u[U_OID_COUNT]) & _MASK
    lwlock_release(_st.oid_gen_lock)  # type: ignore[arg-type]
    return next_xid, next_oid, oldest, oldest_db


# ---------------------------------------------------------------------------
# Status of transactions (transam.c)

# cachedFetchXid: the last xid whose *final* status was read from pg_xact.
_cached_xid = InvalidTransactionId
_cached_status = TRANSACTION_STATUS_ABORTED
_cached_lsn = -1  # its group LSN; -1 until asked for
_clog_get_status = clog.transaction_id_get_status


def _reset_cache() -> None:
    global _cached_xid, _cached_status, _cached_lsn
    _cached_xid, _cached_status, _cached_lsn = (InvalidTransactionId,
                                                TRANSACTION_STATUS_ABORTED, -1)


def transaction_log_fetch(xid: int) -> int:
    """TransactionLogFetch: the status of ``xid``; permanent xids are
    committed, InvalidTransactionId aborted."""
    global _cached_xid, _cached_status, _cached_lsn
    if xid == _cached_xid:
        return _cached_status
    if xid < FirstNormalTransactionId:
        return TRANSACTION_STATUS_COMMITTED if xid else TRANSACTION_STATUS_ABORTED
    status = _clog_get_status(xid)
    if status == TRANSACTION_STATUS_COMMITTED or status == TRANSACTION_STATUS_ABORTED:
        _cached_xid, _cached_status, _cached_lsn = xid, status, -1
    return status


def transaction_id_did_commit(xid: int) -> bool:
    """TransactionIdDidCommit: is ``xid`` known committed? (Ask
    transaction_id_is_in_progress first: a running xid is "not committed".)"""
    if xid == _cached_xid:
        return _cached_status == TRANSACTION_STATUS_COMMITTED
    return transaction_log_fetch(xid) == TRANSACTION_STATUS_COMMITTED


def transaction_id_did_abort(xid: int) -> bool:
    """TransactionIdDidAbort: is ``xid`` known aborted? A transaction that
    crashed is neither committed nor aborted here; callers treat "not running
    and not committed" as aborted."""
    if xid == _cached_xid:
        return _cached_status == TRANSACTION_STATUS_ABORTED
    status = transaction_log_fetch(xid)
    if status == TRANSACTION_STATUS_SUB_COMMITTED:
        # Left over from a crash in a multi-page commit if it is this old.
        return transaction_id_precedes(xid, procarray.transaction_xmin)
    return status == TRANSACTION_STATUS_ABORTED


def transaction_id_get_commit_lsn(xid: int) -> int:
    """TransactionIdGetCommitLSN: the group LSN to flush before hinting ``xid``
    committed (0 when nothing needs flushing)."""
    global _cached_lsn
    if xid == _cached_xid and _cached_lsn >= 0:
        return _cached_lsn
    if xid < FirstNormalTransactionId:
        return 0
    _status, lsn = clog.transaction_id_get_status_lsn(xid)
    if xid == _cached_xid:
        _cached_lsn = lsn
    return lsn


def transaction_id_commit_tree(xid: int, subxids: Sequence[int] = ()) -> None:
    """TransactionIdCommitTree: a synchronous commit (its record already flushed)."""
    clog.transaction_id_set_tree_status(xid, subxids, TRANSACTION_STATUS_COMMITTED, 0)


def transaction_id_async_commit_tree(xid: int, subxids: Sequence[int], lsn: int) -> None:
    """TransactionIdAsyncCommitTree: an asynchronous commit whose record ends at
    ``lsn`` (also used by redo of commit records)."""
    clog.transaction_id_set_tree_status(xid, subxids, TRANSACTION_STATUS_COMMITTED, lsn)


def transaction_id_abort_tree(xid: int, subxids: Sequence[int] = ()) -> None:
    """TransactionIdAbortTree."""
    clog.transaction_id_set_tree_status(xid, subxids, TRANSACTION_STATUS_ABORTED, 0)
