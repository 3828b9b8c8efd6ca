"""pg_locks — the view of PostgreSQL 15's catalog/system_views.sql over pg_lock_status
(src/backend/utils/adt/lockfuncs.c), and pg_blocking_pids.

The rows come from storage.lmgr.lmgr.pg_lock_status, which turns the lock
manager's GetLockStatusData (every process's fast-path entries, then every
PROCLOCK of the shared table, read under all partition locks) into one row per
mode a holder holds (granted) and one for the mode it waits for (not granted,
with waitstart), the lock tag's fields spread over the columns its type uses.
This module only gives them PostgreSQL's column names and types.

Where tusk differs: there are no predicate (SIReadLock) locks, so no such rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from catalog import pg_type as t
from catalog.system_views import SystemView, register
from utils.adt import functions as fn

LOCKS_COLUMNS = (
    ("locktype", t.TEXTOID), ("database", t.OIDOID), ("relation", t.OIDOID),
    ("page", t.INT4OID), ("tuple", t.INT2OID), ("virtualxid", t.TEXTOID),
    ("transactionid", t.XIDOID), ("classid", t.OIDOID), ("objid", t.OIDOID),
    ("objsubid", t.INT2OID), ("virtualtransaction", t.TEXTOID), ("pid", t.INT4OID),
    ("mode", t.TEXTOID), ("granted", t.BOOLOID), ("fastpath", t.BOOLOID),
    ("waitstart", t.TIMESTAMPTZOID),
)


def lock_rows() -> Iterable[Sequence[Any]]:
    """pg_lock_status()."""
    from storage.lmgr import lmgr

    return lmgr.pg_lock_status()


def pg_blocking_pids(pid: int) -> list[int]:
    from storage.lmgr import lmgr

    return lmgr.pg_blocking_pids(pid)


register(SystemView("pg_locks", LOCKS_COLUMNS, lock_rows))
if "pg_blocking_pids" not in fn.FUNCTIONS:
    fn.register("pg_blocking_pids", fn.Function((t.INT4OID,), t.INT4ARRAYOID, pg_blocking_pids,
                                                volatile=True))
