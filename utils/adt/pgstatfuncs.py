"""The statistics views and functions — mirrors src/backend/utils/adt/pgstatfuncs.c
(pg_stat_get_activity, pg_stat_get_db_*, pg_stat_get_bgwriter_*, pg_stat_get_wal,
pg_stat_get_archiver, pg_stat_reset, pg_stat_reset_shared) and the views of
src/backend/catalog/system_views.sql built on them: pg_stat_activity,
pg_stat_database, pg_stat_bgwriter, pg_stat_wal, pg_stat_archiver. Importing it
also registers pg_settings (utils.adt.gucfuncs), pg_locks (utils.adt.lockfuncs),
pg_buffercache (utils.adt.pg_buffercache) and the per-table and per-index views
(utils.adt.pgstatfuncs_relation).

Each view has PostgreSQL 15's columns, names, types and order; where tusk keeps
no figure the column is 0 or NULL as PostgreSQL shows it when nothing happened.
Where the figures come from:

- pg_stat_activity: utils.backend_status (PgBackendStatus slots, read with the
  st_changecount protocol) and the PGPROC slots (xid, xmin, wait event).
- pg_stat_database: utils.backend_status's per-session and per-database
  counters; see there for what is counted and what stays 0.
- pg_stat_bgwriter: the checkpointer's shared counters (shmem.checkpointer_shmem,
  the same figures ``tusk_ctl stats --bgwriter`` prints).
- pg_stat_wal: every process's WAL counters (utils.pgstat, as ``tusk_ctl stats``
  sums them) minus their values at the last pg_stat_reset_shared('wal').

Where tusk differs:
- Other processes publish their counters at most every half second (and at
  exit), as PostgreSQL's pending statistics are flushed at most once a second;
  this session's own counters are published before a view reads them.
- Readers see current values, not a snapshot held for the transaction
  (stats_fetch_consistency = none); pg_stat_clear_snapshot does nothing.
- client_addr has type inet but no inet operators exist: compare ``host(client_addr)``
  or ``client_addr::text`` with a string. client_hostname is always NULL
  (log_hostname is not supported); leader_pid and query_id are always NULL.
- Auxiliary processes show no main-loop wait event (CheckpointerMain, ...) until
  their loops report one (utils.backend_status names them).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

from catalog import pg_type as t
from catalog.system_views import SystemView, register
from shmem.lwlock import wait_event_name
from shmem.proc import BACKEND_TYPE_DESC
from utils import backend_status as bs
from utils import session as sess
from utils.adt import functions as fn
from utils.elog import PgError

POSTGRES_EPOCH_UNIX = 946_684_800


def _ts(v: int) -> int | None:
    """A TimestampTz field: 0 means none (NULL)."""
    return v or None


def _unix_to_timestamptz(seconds: float) -> int:
    return int(round(seconds * 1_000_000)) - POSTGRES_EPOCH_UNIX * 1_000_000


def _is_superuser() -> bool:
    settings = sess.settings
    return True if settings is None else bool(settings.is_superuser)


def _require_superuser(function: str) -> None:
    """EXECUTE on the reset functions is revoked from PUBLIC in PostgreSQL 15."""
    if not _is_superuser():
        raise PgError("42501", f"permission denied for function {function}")


# -- pg_stat_activity ----------------------------------------------------------------------

ACTIVITY_COLUMNS = (
    ("datid", t.OIDOID), ("datname", t.NAMEOID), ("pid", t.INT4OID),
    ("leader_pid", t.INT4OID), ("usesysid", t.OIDOID), ("usename", t.NAMEOID),
    ("application_name", t.TEXTOID), ("client_addr", t.INETOID),
    ("client_hostname", t.TEXTOID), ("client_port", t.INT4OID),
    ("backend_start", t.TIMESTAMPTZOID), ("xact_start", t.TIMESTAMPTZOID),
    ("query_start", t.TIMESTAMPTZOID), ("state_change", t.TIMESTAMPTZOID),
    ("wait_event_type", t.TEXTOID), ("wait_event", t.TEXTOID), ("state", t.TEXTOID),
    ("backend_xid", t.XIDOID), ("backend_xmin", t.XIDOID), ("query_id", t.INT8OID),
    ("query", t.TEXTOID), ("backend_type", t.TEXTOID),
)


def _client(e: bs.BackendStatus) -> tuple[str | None, int | None]:
    """client_addr and client_port: NULL for processes without a client, NULL and
    -1 for a Unix-domain socket."""
    if e.client_family in (socket.AF_INET, socket.AF_INET6):
        return e.client_addr or None, e.client_port
    if e.client_family == socket.AF_UNIX:
        return None, -1
    return None, None


def activity_rows() -> Iterator[tuple[Any, ...]]:
    """pg_stat_get_activity(NULL) joined with the database and role names."""
    superuser = _is_superuser()
    me = bs.my_user_id()
    for e in bs.read_current_status():
        datid = e.database or None
        usesysid = e.user or None
        datname = (e.datname or None) if datid else None
        usename = (e.usename or None) if usesysid else None
        xid = e.backend_xid or None
        xmin = e.backend_xmin or None
        if not (superuser or (usesysid is not None and usesysid == me)):
            yield (datid, datname, e.pid, None, usesysid, usename, e.application_name,
                   None, None, None, None, None, None, None, None, None, None, xid, xmin,
                   None, "<insufficient privilege>", None)
            continue
        addr, port = _client(e)
        wtype, wevent = wait_event_name(e.wait_event_info)
        query = "" if e.state == bs.STATE_DISABLED else e.activity
        yield (datid, datname, e.pid, None, usesysid, usename, e.application_name,
               addr, None, port, _ts(e.proc_start), _ts(e.xact_start), _ts(e.activity_start),
               _ts(e.state_start), wtype, wevent, bs.STATE_NAMES.get(e.state), xid, xmin,
               None, query, BACKEND_TYPE_DESC.get(e.backend_type, "not initialized"))


# -- pg_stat_database ----------------------------------------------------------------------

DATABASE_COLUMNS = (
    ("datid", t.OIDOID), ("datname", t.NAMEOID), ("numbackends", t.INT4OID),
    ("xact_commit", t.INT8OID), ("xact_rollback", t.INT8OID), ("blks_read", t.INT8OID),
    ("blks_hit", t.INT8OID), ("tup_returned", t.INT8OID), ("tup_fetched", t.INT8OID),
    ("tup_inserted", t.INT8OID), ("tup_updated", t.INT8OID), ("tup_deleted", t.INT8OID),
    ("conflicts", t.INT8OID), ("temp_files", t.INT8OID), ("temp_bytes", t.INT8OID),
    ("deadlocks", t.INT8OID), ("checksum_failures", t.INT8OID),
    ("checksum_last_failure", t.TIMESTAMPTZOID), ("blk_read_time", t.FLOAT8OID),
    ("blk_write_time", t.FLOAT8OID), ("session_time", t.FLOAT8OID),
    ("active_time", t.FLOAT8OID), ("idle_in_transaction_time", t.FLOAT8OID),
    ("sessions", t.INT8OID), ("sessions_abandoned", t.INT8OID),
    ("sessions_fatal", t.INT8OID), ("sessions_killed", t.INT8OID),
    ("stats_reset", t.TIMESTAMPTZOID),
)
_INT_COUNTERS = ("xact_commit", "xact_rollback", "blks_read", "blks_hit", "tup_returned",
                 "tup_fetched", "tup_inserted", "tup_updated", "tup_deleted", "conflicts",
                 "temp_files", "temp_bytes", "deadlocks")
_TIME_COUNTERS = ("blk_read_time", "blk_write_time", "session_time", "active_time",
                  "idle_in_transaction_time")
_SESSION_COUNTERS = ("sessions", "sessions_abandoned", "sessions_fatal", "sessions_killed")


def _databases(known: dict[int, bs.DatabaseStats]) -> list[tuple[int, str | None]]:
    """(oid, datname) of every database in pg_database, in its order."""
    try:
        from catalog import catalog_defs as cd
        from utils import syscache

        col = cd.PG_DATABASE.col
        rows = syscache.catalog_rows(cd.PG_DATABASE)
        return [(row[col["oid"]], row[col["datname"]]) for _tid, row in rows]
    except (ImportError, AttributeError, KeyError):
        # No catalog access here (a tool, a test harness): the databases with figures.
        return sorted((oid, s.datname) for oid, s in known.items() if oid)


def _checksums_enabled() -> bool:
    settings = sess.settings
    try:
        return bool(settings.get("data_checksums")) if settings is not None else False
    except Exception:  # a settings object without the parameter
        return False


def database_rows() -> Iterator[tuple[Any, ...]]:
    """pg_stat_database: one row for shared objects (datid 0), then one per database."""
    bs.publish_my_counters()
    stats = bs.read_database_stats()
    checksums = _checksums_enabled()
    for oid, name in [(0, None), *_databases(stats)]:
        s = stats.get(oid)
        c = s.counters if s is not None else dict.fromkeys(bs.DB_COUNTERS, 0)
        yield (oid, name, 0 if oid == 0 or s is None else s.numbackends,
               *(c[k] for k in _INT_COUNTERS),
               c["checksum_failures"] if checksums else None,
               _ts(s.checksum_last_failure) if checksums and s is not None else None,
               *(c[k] / 1000.0 for k in _TIME_COUNTERS),
               *(c[k] for k in _SESSION_COUNTERS),
               _ts(s.stats_reset) if s is not None else None)


def _db_counter(name: str) -> Any:
    def get(dboid: int) -> int:
        bs.publish_my_counters()
        s = bs.read_database_stats().get(dboid)
        return s.counters[name] if s is not None else 0
    return get


def _db_numbackends(dboid: int) -> int:
    s = bs.read_database_stats().get(dboid)
    return s.numbackends if s is not None else 0


def _db_blocks_fetched(dboid: int) -> int:
    bs.publish_my_counters()
    s = bs.read_database_stats().get(dboid)
    return s.counters["blks_read"] + s.counters["blks_hit"] if s is not None else 0


# -- pg_stat_bgwriter ----------------------------------------------------------------------

BGWRITER_COLUMNS = (
    ("checkpoints_timed", t.INT8OID), ("checkpoints_req", t.INT8OID),
    ("checkpoint_write_time", t.FLOAT8OID), ("checkpoint_sync_time", t.FLOAT8OID),
    ("buffers_checkpoint", t.INT8OID), ("buffers_clean", t.INT8OID),
    ("maxwritten_clean", t.INT8OID), ("buffers_backend", t.INT8OID),
    ("buffers_backend_fsync", t.INT8OID), ("buffers_alloc", t.INT8OID),
    ("stats_reset", t.TIMESTAMPTZOID),
)


def bgwriter_rows() -> Iterator[tuple[Any, ...]]:
    from procs import checkpointer

    s = checkpointer.read_bgwriter_stats()
    yield (s["checkpoints_timed"], s["checkpoints_req"], float(s["checkpoint_write_time"]),
           float(s["checkpoint_sync_time"]), s["buffers_checkpoint"], s["buffers_clean"],
           s["maxwritten_clean"], s["buffers_backend"], s["buffers_backend_fsync"],
           s["buffers_alloc"], _unix_to_timestamptz(float(s["stats_reset"])))


# -- pg_stat_wal ----------------------------------------------------------------------------

WAL_COLUMNS = (
    ("wal_records", t.INT8OID), ("wal_fpi", t.INT8OID), ("wal_bytes", t.NUMERICOID),
    ("wal_buffers_full", t.INT8OID), ("wal_write", t.INT8OID), ("wal_sync", t.INT8OID),
    ("wal_write_time", t.FLOAT8OID), ("wal_sync_time", t.FLOAT8OID),
    ("stats_reset", t.TIMESTAMPTZOID),
)


def wal_totals() -> dict[str, int]:
    """pg_stat_wal's counters of every process, live and exited, summed as
    ``tusk_ctl stats`` sums them (times in microseconds)."""
    from utils import pgstat

    seg = bs.segment()
    if seg is None:
        return dict.fromkeys(bs.WAL_FIELDS, 0)
    pgstat.pgstat_report_io(force=True)  # this session's own counts, up to now
    per_type = pgstat.read_io_stats(seg)
    return {f: sum(counts.get(f, 0) for counts in per_type.values()) for f in bs.WAL_FIELDS}


def wal_rows() -> Iterator[tuple[Any, ...]]:
    totals, base = wal_totals(), bs.wal_base()
    v = {f: max(totals[f] - base[f], 0) for f in bs.WAL_FIELDS}
    yield (v["wal_records"], v["wal_fpi"], Decimal(v["wal_bytes"]), v["wal_buffers_full"],
           v["wal_write"], v["wal_sync"], v["wal_write_time"] / 1000.0,
           v["wal_sync_time"] / 1000.0, _ts(bs.reset_time("wal")))


# -- pg_stat_archiver (no archiver: its counters stay zero) ------------------------------------

ARCHIVER_COLUMNS = (
    ("archived_count", t.INT8OID), ("last_archived_wal", t.TEXTOID),
    ("last_archived_time", t.TIMESTAMPTZOID), ("failed_count", t.INT8OID),
    ("last_failed_wal", t.TEXTOID), ("last_failed_time", t.TIMESTAMPTZOID),
    ("stats_reset", t.TIMESTAMPTZOID),
)


def archiver_rows() -> Iterator[tuple[Any, ...]]:
    yield (0, None, None, 0, None, None, _ts(bs.reset_time("archiver")))


# -- reset functions ---------------------------------------------------------------------------

RESET_TARGETS = ("archiver", "bgwriter", "recovery_prefetch", "wal")


def pg_stat_reset_shared(target: str) -> str:
    """pg_stat_reset_shared(target): zero one cluster-wide set of counters."""
    _require_superuser("pg_stat_reset_shared")
    if target == "bgwriter":  # PostgreSQL 15 resets the checkpointer's counters with it
        from procs import checkpointer

        checkpointer.pgstat_reset_bgwriter()
    elif target == "wal":
        bs.reset_shared("wal", wal_totals())
    elif target in ("archiver", "recovery_prefetch"):
        bs.reset_shared(target)
    else:
        raise PgError("22023", f'unrecognized reset target: "{target}"',
                      hint='Target must be "archiver", "bgwriter", "recovery_prefetch", '
                           'or "wal".')
    return ""


def pg_stat_reset() -> str:
    """pg_stat_reset(): zero the current database's counters."""
    _require_superuser("pg_stat_reset")
    dboid = bs.my_database_id()
    if dboid:
        bs.reset_database_stats(dboid)
        from utils import pgstat_relation

        pgstat_relation.reset_database()  # and its tables' and indexes' statistics
    return ""


# -- registration ------------------------------------------------------------------------------

def _view(name: str, columns: Sequence[tuple[str, int]], rows: Any) -> None:
    register(SystemView(name, tuple(columns), rows))


_view("pg_stat_activity", ACTIVITY_COLUMNS, activity_rows)
_view("pg_stat_database", DATABASE_COLUMNS, database_rows)
_view("pg_stat_bgwriter", BGWRITER_COLUMNS, bgwriter_rows)
_view("pg_stat_wal", WAL_COLUMNS, wal_rows)
_view("pg_stat_archiver", ARCHIVER_COLUMNS, archiver_rows)

_F = fn.Function
_V = t.VOIDOID
for _name, _impl in (("pg_stat_get_db_xact_commit", _db_counter("xact_commit")),
                     ("pg_stat_get_db_xact_rollback", _db_counter("xact_rollback")),
                     ("pg_stat_get_db_blocks_hit", _db_counter("blks_hit")),
                     ("pg_stat_get_db_blocks_fetched", _db_blocks_fetched)):
    fn.register(_name, _F((t.OIDOID,), t.INT8OID, _impl, volatile=True))
fn.register("pg_stat_get_db_numbackends",
            _F((t.OIDOID,), t.INT4OID, _db_numbackends, volatile=True))
fn.register("pg_stat_reset_shared", _F((t.TEXTOID,), _V, pg_stat_reset_shared, volatile=True))
fn.register("pg_stat_reset", _F((), _V, pg_stat_reset, volatile=True))
fn.register("pg_stat_clear_snapshot", _F((), _V, lambda: "", volatile=True))
fn.register("host", _F((t.INETOID,), t.TEXTOID, lambda addr: str(addr).split("/", 1)[0],
                       immutable=True))

# The other views this module stands for (catalog.system_views imports only it).
from utils.adt import (  # noqa: E402,F401
    amcheck,
    gucfuncs,
    lockfuncs,
    pg_buffercache,
    pgstatfuncs_relation,
)
