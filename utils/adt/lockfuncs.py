"""pg_locks — mirrors pg_lock_status of PostgreSQL 15's src/backend/utils/adt/lockfuncs.c
and the pg_locks view of catalog/system_views.sql.

The rows come from the lock manager's GetLockStatusData
(storage.lmgr.lock.get_lock_status_data: every process's fast-path entries, then
every PROCLOCK of the shared table, read under all partition locks). Each holder
gives one row per mode it holds (granted) and, while it waits, one row for the
mode it waits for (not granted, with waitstart). The lock tag's fields go to the
columns its type uses, as PostgreSQL spreads them; virtualtransaction is
"backend id/local xid".

Where tusk differs: there are no predicate (SIReadLock) locks, so no such rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from catalog import pg_type as t
from catalog.system_views import SystemView, register

LOCKS_COLUMNS = (
    ("locktype", t.TEXTOID), ("database", t.OIDOID), ("relation", t.OIDOID),
    ("page", t.INT4OID), ("tuple", t.INT2OID), ("virtualxid", t.TEXTOID),
    ("transactionid", t.XIDOID), ("classid", t.OIDOID), ("objid", t.OIDOID),
    ("objsubid", t.INT2OID), ("virtualtransaction", t.TEXTOID), ("pid", t.INT4OID),
    ("mode", t.TEXTOID), ("granted", t.BOOLOID), ("fastpath", t.BOOLOID),
    ("waitstart", t.TIMESTAMPTZOID),
)


def _int32(v: int) -> int:
    return v - (1 << 32) if v & 0x80000000 else v


def _vxid(backend: int, lxid: int) -> str:
    """VXIDGetDatum: 'backend id/local transaction id'."""
    return f"{_int32(backend)}/{lxid & 0xFFFFFFFF}"


def _tag_columns(lk: Any, tag: Any) -> tuple[Any, ...]:
    """(database, relation, page, tuple, virtualxid, transactionid, classid, objid,
    objsubid) for one lock tag."""
    f1, f2, f3, f4, locktype, _method = lk.locktag_fields(tag)
    if locktype in (lk.LOCKTAG_RELATION, lk.LOCKTAG_RELATION_EXTEND):
        return (f1, f2, None, None, None, None, None, None, None)
    if locktype == lk.LOCKTAG_DATABASE_FROZEN_IDS:
        return (f1, None, None, None, None, None, None, None, None)
    if locktype == lk.LOCKTAG_PAGE:
        return (f1, f2, _int32(f3), None, None, None, None, None, None)
    if locktype == lk.LOCKTAG_TUPLE:
        return (f1, f2, _int32(f3), f4, None, None, None, None, None)
    if locktype == lk.LOCKTAG_TRANSACTION:
        return (None, None, None, None, None, f1, None, None, None)
    if locktype == lk.LOCKTAG_VIRTUALTRANSACTION:
        return (None, None, None, None, _vxid(f1, f2), None, None, None, None)
    if locktype == lk.LOCKTAG_SPECULATIVE_TOKEN:
        return (None, None, None, None, None, f1, None, f2, None)
    # OBJECT, USERLOCK, ADVISORY (and anything unknown)
    objsubid = f4 - (1 << 16) if f4 & 0x8000 else f4
    return (f1, None, None, None, None, None, f2, f3, objsubid)


def lock_rows() -> Iterator[tuple[Any, ...]]:
    """pg_lock_status()."""
    from storage.lmgr import lock as lk

    for inst in lk.get_lock_status_data():
        locktype = lk.locktag_type(inst.tag)
        cols = _tag_columns(lk, inst.tag)
        name = lk.get_lock_name_from_tag_type(locktype)
        method = lk.locktag_lockmethod(inst.tag)
        vxact = _vxid(inst.backend, inst.lxid)
        pid = inst.pid or None
        for mode in range(1, lk.MAX_LOCKMODES + 1):
            if inst.hold_mask & (1 << mode):
                yield (name, *cols, vxact, pid, lk.get_lockmode_name(method, mode), True,
                       inst.fastpath, None)
        if inst.wait_lock_mode != lk.NoLock:
            yield (name, *cols, vxact, pid, lk.get_lockmode_name(method, inst.wait_lock_mode),
                   False, inst.fastpath, inst.wait_start or None)


register(SystemView("pg_locks", LOCKS_COLUMNS, lock_rows))
