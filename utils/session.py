"""The current session's statement-level state that SQL functions read: the
settings, the transaction and statement start times (now() and
statement_timestamp()) and the user and database — mirrors the globals of
PostgreSQL's xact.c (xactStartTimestamp, stmtStartTimestamp) and miscinit.c.

One backend serves one session, so module globals are the natural home, as they
are in PostgreSQL; tcop sets them, everything else only reads them.
"""

from __future__ import annotations

import time
from typing import Any

POSTGRES_EPOCH_UNIX = 946_684_800

settings: Any = None
user = ""
database = ""
database_oid = 0
backend_pid = 0
_xact_start = 0
_stmt_start = 0


def now_usecs() -> int:
    """GetCurrentTimestamp: microseconds since 2000-01-01 UTC."""
    return time.time_ns() // 1000 - POSTGRES_EPOCH_UNIX * 1_000_000


def start_statement() -> None:
    global _stmt_start
    _stmt_start = now_usecs()


def start_transaction() -> None:
    """The transaction's start time is its first statement's (xactStartTimestamp)."""
    global _xact_start
    _xact_start = _stmt_start or now_usecs()


def transaction_timestamp() -> int:
    return _xact_start or now_usecs()


def statement_timestamp() -> int:
    return _stmt_start or now_usecs()


def timezone_name() -> str:
    if settings is None:
        return "UTC"
    try:
        return str(settings.get("TimeZone"))
    except Exception:  # a settings object without the parameter: tests, tools
        return "UTC"

# The tcop Session object (settings, transaction block), for the few functions that
# change settings (set_config) or need the session's sleep (pg_sleep).
tcop_session: Any = None

# This cluster's PGPROC array (shmem.proc.ProcArray), for functions that look at
# other processes (pg_cancel_backend).
procs: Any = None
