"""The lock manager's interface for the rest of the server — mirrors
src/backend/storage/lmgr/lmgr.c of PostgreSQL 15, plus pg_lock_status and
pg_blocking_pids of src/backend/utils/adt/lockfuncs.c.

Relation, page and tuple locks name their relation by OID in the current
database (``set_my_database_id``), or database 0 for shared catalogs.

Transaction locks, for access/xact.py (not wired here):

- when a transaction gets its xid (AssignTransactionId), call
  ``xact_lock_table_insert(xid)``: ExclusiveLock on its transactionid tag,
  owned by the transaction;
- at commit and abort, *after* the transaction's end is recorded in pg_xact
  and the ProcArray (so a waiter that wakes sees it finished), call
  ``lock.lock_release_all()``: it releases the xid lock with every other
  transaction-owned lock (and the virtual xid lock). At backend exit
  ``lock.proc_exit()`` (procs/postinit.proc_kill) releases the rest.

``xact_lock_table_wait(xid)`` then waits for a concurrent transaction: it
takes and at once releases ShareLock on the xid's tag, which is granted only
once the holder's ExclusiveLock is gone — how UPDATE waits for a concurrent
updater.

Where tusk differs: no relcache (functions take OIDs), no invalidation
processing unless a hook is set (``accept_invalidation_messages_hook``), no
subtransactions (a waited-for xid is its own top-level transaction), and the
shared-relation test is a hook with the shared catalogs' OIDs as default.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from storage.lmgr import lock as _lock
from storage.lmgr.lock import (
    LOCK_MODE_NAMES,
    LOCK_TAG_TYPE_NAMES,
    LOCKACQUIRE_ALREADY_CLEAR,
    LOCKACQUIRE_NOT_AVAIL,
    LOCKTAG_ADVISORY,
    LOCKTAG_DATABASE_FROZEN_IDS,
    LOCKTAG_LAST_TYPE,
    LOCKTAG_OBJECT,
    LOCKTAG_PAGE,
    LOCKTAG_RELATION,
    LOCKTAG_RELATION_EXTEND,
    LOCKTAG_SPECULATIVE_TOKEN,
    LOCKTAG_TRANSACTION,
    LOCKTAG_TUPLE,
    LOCKTAG_USERLOCK,
    LOCKTAG_VIRTUALTRANSACTION,
    MAX_LOCKMODES,
    ExclusiveLock,
    LockTag,
    ShareLock,
    describe_lock_tag,
    get_blocking_pids,
    get_lock_status_data,
    lock_acquire,
    lock_release,
    locktag_fields,
    mark_lock_clear,
    set_locktag_database_frozen_ids,
    set_locktag_object,
    set_locktag_page,
    set_locktag_relation,
    set_locktag_relation_extend,
    set_locktag_transaction,
    set_locktag_tuple,
)
from utils.elog import PgError

__all__ = [
    "describe_lock_tag", "get_lock_name_from_tag_type", "lock_relation_oid",
    "conditional_lock_relation_oid", "unlock_relation_oid", "lock_relation_id_for_session",
    "unlock_relation_id_for_session", "lock_relation_for_extension",
    "unlock_relation_for_extension", "lock_page", "conditional_lock_page", "unlock_page",
    "lock_tuple", "conditional_lock_tuple", "unlock_tuple", "xact_lock_table_insert",
    "xact_lock_table_delete", "xact_lock_table_wait", "conditional_xact_lock_table_wait",
    "lock_database_object", "unlock_database_object", "lock_shared_object",
    "unlock_shared_object", "lock_database_frozen_ids", "pg_lock_status", "pg_blocking_pids",
    "PG_LOCKS_COLUMNS", "set_my_database_id", "my_database_id", "set_locktag_relation_oid",
]

# XLTW_Oper: what a transaction wait is for, for its error CONTEXT line.
(XLTW_NONE, XLTW_UPDATE, XLTW_DELETE, XLTW_LOCK, XLTW_LOCK_UPDATED, XLTW_INSERT_INDEX,
 XLTW_INSERT_INDEX_UNIQUE, XLTW_FETCH_UPDATED, XLTW_RECHECK_EXCLUSION_CONSTR) = range(9)

_XLTW_CONTEXT = {
    XLTW_UPDATE: 'while updating tuple ({},{}) in relation "{}"',
    XLTW_DELETE: 'while deleting tuple ({},{}) in relation "{}"',
    XLTW_LOCK: 'while locking tuple ({},{}) in relation "{}"',
    XLTW_LOCK_UPDATED: 'while locking updated version ({},{}) of tuple in relation "{}"',
    XLTW_INSERT_INDEX: 'while inserting index tuple ({},{}) in relation "{}"',
    XLTW_INSERT_INDEX_UNIQUE: 'while checking uniqueness of tuple ({},{}) in relation "{}"',
    XLTW_FETCH_UPDATED: 'while rechecking updated tuple ({},{}) in relation "{}"',
    XLTW_RECHECK_EXCLUSION_CONSTR:
        'while checking exclusion constraint on tuple ({},{}) in relation "{}"',
}

# The shared catalogs (IsSharedRelation's tables); their locks use database 0.
SHARED_CATALOG_OIDS = frozenset({
    1213,  # pg_tablespace
    1214,  # pg_shdepend
    1260,  # pg_authid
    1261,  # pg_auth_members
    1262,  # pg_database
    2396,  # pg_shdescription
    2964,  # pg_db_role_setting
    3592,  # pg_shseclabel
    6000,  # pg_replication_origin
    6100,  # pg_subscription
    6243,  # pg_parameter_acl
})

_my_database_id = 0
# IsSharedRelation(relid); the catalog layer may install the full test
# (indexes and TOAST tables of shared catalogs included).
is_shared_relation_hook: Callable[[int], bool] = SHARED_CATALOG_OIDS.__contains__
# AcceptInvalidationMessages, run after taking a relation lock (when set).
accept_invalidation_messages_hook: Callable[[], None] | None = None
# TransactionIdIsInProgress; defaults to access.procarray's.
transaction_id_is_in_progress_hook: Callable[[int], bool] | None = None


def set_my_database_id(dboid: int) -> None:
    """MyDatabaseId, for the tags of relation locks (InitPostgres sets it)."""
    global _my_database_id
    _my_database_id = dboid


def my_database_id() -> int:
    return _my_database_id


def get_lock_name_from_tag_type(locktype: int) -> str:
    """GetLockNameFromTagType."""
    return _lock.get_lock_name_from_tag_type(locktype)


def _rel_db(relid: int) -> int:
    return 0 if is_shared_relation_hook(relid) else _my_database_id


def set_locktag_relation_oid(relid: int) -> LockTag:
    """SetLocktagRelationOid."""
    return set_locktag_relation(_rel_db(relid), relid)


# ---------------------------------------------------------------------------
# Relations


def lock_relation_oid(relid: int, lockmode: int) -> None:
    """LockRelationOid: lock a relation for the transaction (waits as needed),
    then process invalidations unless the lock was already held and clear."""
    tag = set_locktag_relation_oid(relid)
    res = lock_acquire(tag, lockmode)
    if res != LOCKACQUIRE_ALREADY_CLEAR:
        if accept_invalidation_messages_hook is not None:
            accept_invalidation_messages_hook()
        mark_lock_clear(tag, lockmode)


def conditional_lock_relation_oid(relid: int, lockmode: int) -> bool:
    """ConditionalLockRelationOid: as lock_relation_oid, but False instead of waiting."""
    tag = set_locktag_relation_oid(relid)
    res = lock_acquire(tag, lockmode, dont_wait=True)
    if res == LOCKACQUIRE_NOT_AVAIL:
        return False
    if res != LOCKACQUIRE_ALREADY_CLEAR:
        if accept_invalidation_messages_hook is not None:
            accept_invalidation_messages_hook()
        mark_lock_clear(tag, lockmode)
    return True


def unlock_relation_oid(relid: int, lockmode: int) -> None:
    """UnlockRelationOid (early release, e.g. of catalogs after a scan)."""
    lock_release(set_locktag_relation_oid(relid), lockmode)


def lock_relation_id_for_session(relid: int, lockmode: int, dboid: int | None = None) -> None:
    """LockRelationIdForSession: held across transactions until released."""
    lock_acquire(set_locktag_relation(_rel_db(relid) if dboid is None else dboid, relid),
                 lockmode, session_lock=True)


def unlock_relation_id_for_session(relid: int, lockmode: int, dboid: int | None = None) -> None:
    lock_release(set_locktag_relation(_rel_db(relid) if dboid is None else dboid, relid),
                 lockmode, session_lock=True)


def lock_relation_for_extension(relid: int, lockmode: int = ExclusiveLock) -> None:
    """LockRelationForExtension: serialise adding blocks to a relation."""
    lock_acquire(set_locktag_relation_extend(_rel_db(relid), relid), lockmode)


def conditional_lock_relation_for_extension(relid: int, lockmode: int = ExclusiveLock) -> bool:
    tag = set_locktag_relation_extend(_rel_db(relid), relid)
    return lock_acquire(tag, lockmode, dont_wait=True) != LOCKACQUIRE_NOT_AVAIL


def unlock_relation_for_extension(relid: int, lockmode: int = ExclusiveLock) -> None:
    lock_release(set_locktag_relation_extend(_rel_db(relid), relid), lockmode)


def lock_database_frozen_ids(lockmode: int) -> None:
    """LockDatabaseFrozenIds: serialise updates of pg_database.datfrozenxid."""
    lock_acquire(set_locktag_database_frozen_ids(_my_database_id), lockmode)


# ---------------------------------------------------------------------------
# Pages and tuples


def lock_page(relid: int, blkno: int, lockmode: int) -> None:
    """LockPage (used by hash and GIN indexes)."""
    lock_acquire(set_locktag_page(_rel_db(relid), relid, blkno), lockmode)


def conditional_lock_page(relid: int, blkno: int, lockmode: int) -> bool:
    tag = set_locktag_page(_rel_db(relid), relid, blkno)
    return lock_acquire(tag, lockmode, dont_wait=True) != LOCKACQUIRE_NOT_AVAIL


def unlock_page(relid: int, blkno: int, lockmode: int) -> None:
    lock_release(set_locktag_page(_rel_db(relid), relid, blkno), lockmode)


def lock_tuple(relid: int, ctid: tuple[int, int], lockmode: int) -> None:
    """LockTuple: the tuple lock heapam takes while it waits for a tuple's
    updater, so that waiters queue in order (ctid is (block, offset))."""
    lock_acquire(set_locktag_tuple(_rel_db(relid), relid, ctid[0], ctid[1]), lockmode)


def conditional_lock_tuple(relid: int, ctid: tuple[int, int], lockmode: int) -> bool:
    """ConditionalLockTuple (SELECT ... NOWAIT / SKIP LOCKED)."""
    tag = set_locktag_tuple(_rel_db(relid), relid, ctid[0], ctid[1])
    return lock_acquire(tag, lockmode, dont_wait=True) != LOCKACQUIRE_NOT_AVAIL


def unlock_tuple(relid: int, ctid: tuple[int, int], lockmode: int) -> None:
    lock_release(set_locktag_tuple(_rel_db(relid), relid, ctid[0], ctid[1]), lockmode)


# ---------------------------------------------------------------------------
# Transactions


def xact_lock_table_insert(xid: int) -> None:
    """XactLockTableInsert: ExclusiveLock on my new xid, held until the transaction ends."""
    lock_acquire(set_locktag_transaction(xid), ExclusiveLock)


def xact_lock_table_delete(xid: int) -> None:
    """XactLockTableDelete: release it early (subtransaction abort)."""
    lock_release(set_locktag_transaction(xid), ExclusiveLock)


def _in_progress(xid: int) -> bool:
    if transaction_id_is_in_progress_hook is not None:
        return transaction_id_is_in_progress_hook(xid)
    from access import procarray

    return procarray.transaction_id_is_in_progress(xid)


def _xltw_context(rel_name: str | None, ctid: tuple[int, int] | None, oper: int) -> str | None:
    text = _XLTW_CONTEXT.get(oper)
    if text is None or rel_name is None or ctid is None:
        return None
    return text.format(ctid[0], ctid[1], rel_name)


def xact_lock_table_wait(xid: int, rel_name: str | None = None,
                         ctid: tuple[int, int] | None = None, oper: int = XLTW_NONE) -> None:
    """XactLockTableWait: wait until transaction ``xid`` has ended (ShareLock on
    its xid, taken and released). ``rel_name``/``ctid``/``oper`` give errors
    and log_lock_waits lines PostgreSQL's CONTEXT ("while updating tuple
    (0,1) in relation "t"") — the PgError gets it as its ``context``."""
    context = _xltw_context(rel_name, ctid, oper)
    saved = _lock.wait_context
    _lock.wait_context = context or saved
    first = True
    try:
        while True:
            tag = set_locktag_transaction(xid)
            lock_acquire(tag, ShareLock)
            lock_release(tag, ShareLock)
            if not _in_progress(xid):
                break
            # In the ProcArray but not yet in the lock table: it is starting up.
            if not first:
                time.sleep(0.001)
            first = False
    except PgError as err:
        if context and getattr(err, "context", None) is None:
            err.context = context  # type: ignore[attr-defined]
        raise
    finally:
        _lock.wait_context = saved


def conditional_xact_lock_table_wait(xid: int) -> bool:
    """ConditionalXactLockTableWait: has ``xid`` ended? Never waits."""
    first = True
    while True:
        tag = set_locktag_transaction(xid)
        if lock_acquire(tag, ShareLock, dont_wait=True) == LOCKACQUIRE_NOT_AVAIL:
            return False
        lock_release(tag, ShareLock)
        if not _in_progress(xid):
            return True
        if not first:
            time.sleep(0.001)
        first = False


# ---------------------------------------------------------------------------
# Database objects


def lock_database_object(classid: int, objid: int, objsubid: int, lockmode: int) -> None:
    """LockDatabaseObject: lock a non-relation object of the current database."""
    lock_acquire(set_locktag_object(_my_database_id, classid, objid, objsubid), lockmode)
    if accept_invalidation_messages_hook is not None:
        accept_invalidation_messages_hook()


def unlock_database_object(classid: int, objid: int, objsubid: int, lockmode: int) -> None:
    lock_release(set_locktag_object(_my_database_id, classid, objid, objsubid), lockmode)


def lock_shared_object(classid: int, objid: int, objsubid: int, lockmode: int) -> None:
    """LockSharedObject: lock a shared object (database, role, tablespace)."""
    lock_acquire(set_locktag_object(0, classid, objid, objsubid), lockmode)
    if accept_invalidation_messages_hook is not None:
        accept_invalidation_messages_hook()


def unlock_shared_object(classid: int, objid: int, objsubid: int, lockmode: int) -> None:
    lock_release(set_locktag_object(0, classid, objid, objsubid), lockmode)


# ---------------------------------------------------------------------------
# pg_locks (lockfuncs.c)

PG_LOCKS_COLUMNS = ("locktype", "database", "relation", "page", "tuple", "virtualxid",
                    "transactionid", "classid", "objid", "objsubid", "virtualtransaction",
                    "pid", "mode", "granted", "fastpath", "waitstart")
# Their types: text, oid, oid, int4, int2, text, xid, oid, oid, int2, text, int4,
# text, bool, bool, timestamptz (µs since 2000-01-01).


def _vxid_text(backend: int, lxid: int) -> str:
    return f"{backend}/{lxid}"


def pg_lock_status() -> list[tuple[Any, ...]]:
    """pg_lock_status(): pg_locks' rows — one per granted mode of each holder,
    plus one with granted = false for a process waiting on the lock. Columns
    that do not apply to the lock type are None."""
    rows: list[tuple[Any, ...]] = []
    for inst in get_lock_status_data():
        f1, f2, f3, f4, locktype, _method = locktag_fields(inst.tag)
        modes = [(m, True) for m in range(1, MAX_LOCKMODES + 1) if inst.hold_mask & (1 << m)]
        if inst.wait_lock_mode:
            modes.append((inst.wait_lock_mode, False))
        if not modes:
            continue
        database = relation = page = tup = vxid = xid = classid = objid = objsubid = None
        if locktype in (LOCKTAG_RELATION, LOCKTAG_RELATION_EXTEND):
            database, relation = f1, f2
        elif locktype == LOCKTAG_DATABASE_FROZEN_IDS:
            database = f1
        elif locktype == LOCKTAG_PAGE:
            database, relation, page = f1, f2, f3
        elif locktype == LOCKTAG_TUPLE:
            database, relation, page, tup = f1, f2, f3, f4
        elif locktype == LOCKTAG_TRANSACTION:
            xid = f1
        elif locktype == LOCKTAG_VIRTUALTRANSACTION:
            vxid = _vxid_text(f1 - (1 << 32) if f1 & 0x80000000 else f1, f2)
        elif locktype == LOCKTAG_SPECULATIVE_TOKEN:
            xid, objid = f1, f2
        elif locktype in (LOCKTAG_OBJECT, LOCKTAG_USERLOCK, LOCKTAG_ADVISORY):
            database, classid, objid, objsubid = f1, f2, f3, f4
        else:
            database, classid, objid, objsubid = f1, f2, f3, f4
        type_name = (LOCK_TAG_TYPE_NAMES[locktype] if locktype <= LOCKTAG_LAST_TYPE
                     else f"unknown {locktype}")
        vtrans = _vxid_text(inst.backend, inst.lxid) if inst.backend >= 0 else None
        wait_start = inst.wait_start or None
        for mode, granted in modes:
            rows.append((type_name, database, relation, page, tup, vxid, xid, classid, objid,
                         objsubid, vtrans, inst.pid or None, LOCK_MODE_NAMES[mode], granted,
                         inst.fastpath, wait_start))
    return rows


def pg_blocking_pids(pid: int) -> list[int]:
    """pg_blocking_pids(pid): who ``pid``'s lock wait is waiting for."""
    return get_blocking_pids(pid)

