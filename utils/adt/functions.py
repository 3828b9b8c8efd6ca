"""Built-in functions — the pg_proc entries tusk implements, with their
implementations from src/backend/utils/adt/ (varlena.c, timestamp.c, misc.c,
pg_lsn.c, xid8funcs.c, ...) and func_select_candidate's rules for choosing among
overloads (parser/parse_func.c), simplified to the types tusk has.

An implementation takes the argument values; one marked ``needs_session``
takes the tcop Session first (functions that read or change settings).
Aggregates live in executor/aggregates.py.
"""

from __future__ import annotations

import platform
import random as _random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from catalog import pg_type as t
from utils import session as sess
from utils.adt.datatypes import can_coerce_implicitly, type_name
from utils.elog import PgError

PG_VERSION = "15.18"
TUSK_VERSION = "0.1.0"


@dataclass(frozen=True)
class Function:
    arg_types: tuple[int, ...]
    result_type: int
    impl: Callable[..., Any]
    strict: bool = True          # NULL in, NULL out
    volatile: bool = False       # a different result per call (random, clock_timestamp)
    needs_session: bool = False
    immutable: bool = False      # same arguments, same result forever: folded at plan time


def version_string() -> str:
    machine = platform.machine() or "unknown"
    system = platform.system().lower()
    triple = f"{machine}-pc-linux-gnu" if system == "linux" else f"{machine}-{system}"
    bits = platform.architecture()[0].replace("bit", "-bit")
    return (f"PostgreSQL {PG_VERSION} (tusk {TUSK_VERSION}) on {triple}, "
            f"compiled by Python {platform.python_version()}, {bits}")


def _recovery_check() -> None:
    from access import xlog

    if xlog.recovery_in_progress():
        raise PgError("55000", "recovery is in progress",
                      hint="WAL control functions cannot be executed during recovery.")


def _wal_lsn(getter: str) -> Callable[[], int]:
    def fn() -> int:
        from access import xlog

        _recovery_check()
        return getattr(xlog, getter)()
    return fn


def _pg_switch_wal(s: Any) -> int:
    from access import xlog

    if not s.settings.is_superuser:
        raise PgError("42501", "permission denied for function pg_switch_wal")
    _recovery_check()
    return xlog.request_xlog_switch()


def _txid_current() -> int:
    from access import xact

    return xact.current_full_transaction_id()


def _txid_current_if_assigned() -> int | None:
    from access import xact

    xid = xact.get_current_transaction_id_if_any()
    return xact.current_full_transaction_id() if xid else None


def _txid_status(full_xid: int) -> str | None:
    from access import xact

    return xact.transaction_status(full_xid)


def _current_setting(s: Any, name: str, missing_ok: bool = False) -> str | None:
    from conf.guc import GucError

    try:
        return s.settings.show(name)
    except GucError as err:
        if missing_ok and err.sqlstate == "42704":
            return None
        raise PgError(err.sqlstate, str(err), detail=err.detail, hint=err.hint) from None


def _set_config(s: Any, name: str | None, value: str | None,
                is_local: bool | None) -> str | None:
    from tcop.utility import set_guc

    if name is None:
        raise PgError("22023", "SET requires parameter name")
    set_guc(s, name, value, bool(is_local))
    return _current_setting(s, name)


def _pg_sleep(s: Any, seconds: float) -> None:
    if seconds > 0:
        from utils import backend_status

        backend_status.wait_start(backend_status.WAIT_EVENT_PG_SLEEP)  # Timeout / PgSleep
        try:
            s.sleep(seconds)
        finally:
            backend_status.wait_end()


def _length(v: str) -> int:
    return len(v)


def _bpchar_length(v: str) -> int:
    return len(v.rstrip(" "))


def _octet_length(v: str) -> int:
    return len(v.encode())


def _round_numeric(v: Decimal, places: int = 0) -> Decimal:
    return v.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _substr(s: str, start: int, length: int | None = None) -> str:
    if length is not None and length < 0:
        raise PgError("22011", "negative substring length not allowed")
    begin = start - 1
    end = None if length is None else begin + length
    return s[max(begin, 0): None if end is None else max(end, 0)]


def _current_schemas(include_implicit: bool) -> list[str]:
    from catalog import namespace

    return namespace.current_schemas(include_implicit)


def _array_position(arr: list | None, elem: Any) -> int | None:
    if arr is None:
        return None
    for i, v in enumerate(arr, start=1):
        if v == elem and v is not None:
            return i
    return None


def _pg_cancel_backend(s: Any, pid: int) -> bool:
    from tcop import backend_signals

    return backend_signals.signal_backend(s, pid, terminate=False)


def _pg_terminate_backend(s: Any, pid: int, timeout: int = 0) -> bool:
    from tcop import backend_signals

    return backend_signals.signal_backend(s, pid, terminate=True, timeout_ms=timeout)


def _sequence(name: str) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        from commands import sequence

        return getattr(sequence, name)(*args)
    return call


_TS = t.TIMESTAMPTZOID
_F = Function

FUNCTIONS: dict[str, list[Function]] = {
    "version": [_F((), t.TEXTOID, version_string)],
    "current_setting": [_F((t.TEXTOID,), t.TEXTOID, _current_setting, needs_session=True),
                        _F((t.TEXTOID, t.BOOLOID), t.TEXTOID, _current_setting,
                           needs_session=True)],
    "set_config": [_F((t.TEXTOID, t.TEXTOID, t.BOOLOID), t.TEXTOID, _set_config,
                      strict=False, volatile=True, needs_session=True)],
    "pg_sleep": [_F((t.FLOAT8OID,), t.VOIDOID, _pg_sleep, volatile=True, needs_session=True)],
    "current_database": [_F((), t.NAMEOID, lambda: sess.database)],
    "pg_backend_pid": [_F((), t.INT4OID, lambda: sess.backend_pid)],
    "txid_current": [_F((), t.INT8OID, _txid_current, volatile=True)],
    "pg_current_xact_id": [_F((), t.XID8OID, _txid_current, volatile=True)],
    "txid_current_if_assigned": [_F((), t.INT8OID, _txid_current_if_assigned, volatile=True)],
    "pg_current_xact_id_if_assigned": [_F((), t.XID8OID, _txid_current_if_assigned,
                                          volatile=True)],
    "txid_status": [_F((t.INT8OID,), t.TEXTOID, _txid_status, volatile=True)],
    "pg_xact_status": [_F((t.XID8OID,), t.TEXTOID, _txid_status, volatile=True)],
    "pg_current_wal_lsn": [_F((), t.PG_LSNOID, _wal_lsn("get_xlog_write_rec_ptr"),
                              volatile=True)],
    "pg_current_wal_insert_lsn": [_F((), t.PG_LSNOID, _wal_lsn("get_xlog_insert_rec_ptr"),
                                     volatile=True)],
    "pg_current_wal_flush_lsn": [_F((), t.PG_LSNOID, _wal_lsn("get_flush_rec_ptr"),
                                    volatile=True)],
    "pg_switch_wal": [_F((), t.PG_LSNOID, _pg_switch_wal, volatile=True, needs_session=True)],
    "now": [_F((), _TS, sess.transaction_timestamp)],
    "transaction_timestamp": [_F((), _TS, sess.transaction_timestamp)],
    "statement_timestamp": [_F((), _TS, sess.statement_timestamp)],
    "clock_timestamp": [_F((), _TS, sess.now_usecs, volatile=True)],
    "length": [_F((t.TEXTOID,), t.INT4OID, _length, immutable=True),
               _F((t.BPCHAROID,), t.INT4OID, _bpchar_length, immutable=True)],
    "char_length": [_F((t.TEXTOID,), t.INT4OID, _length, immutable=True),
                    _F((t.BPCHAROID,), t.INT4OID, _bpchar_length, immutable=True)],
    "character_length": [_F((t.TEXTOID,), t.INT4OID, _length, immutable=True)],
    "octet_length": [_F((t.TEXTOID,), t.INT4OID, _octet_length, immutable=True)],
    "upper": [_F((t.TEXTOID,), t.TEXTOID, str.upper, immutable=True)],
    "lower": [_F((t.TEXTOID,), t.TEXTOID, str.lower, immutable=True)],
    "btrim": [_F((t.TEXTOID,), t.TEXTOID, lambda s: s.strip(" "), immutable=True),
              _F((t.TEXTOID, t.TEXTOID), t.TEXTOID, lambda s, c: s.strip(c), immutable=True)],
    "ltrim": [_F((t.TEXTOID,), t.TEXTOID, lambda s: s.lstrip(" "), immutable=True)],
    "rtrim": [_F((t.TEXTOID,), t.TEXTOID, lambda s: s.rstrip(" "), immutable=True)],
    "substr": [_F((t.TEXTOID, t.INT4OID), t.TEXTOID, _substr, immutable=True),
               _F((t.TEXTOID, t.INT4OID, t.INT4OID), t.TEXTOID, _substr, immutable=True)],
    "repeat": [_F((t.TEXTOID, t.INT4OID), t.TEXTOID, lambda s, n: s * max(n, 0), immutable=True)],
    "abs": [_F((t.INT4OID,), t.INT4OID, abs, immutable=True), _F((t.INT8OID,), t.INT8OID, abs, immutable=True),
            _F((t.FLOAT8OID,), t.FLOAT8OID, abs, immutable=True), _F((t.NUMERICOID,), t.NUMERICOID, abs, immutable=True)],
    "round": [_F((t.FLOAT8OID,), t.FLOAT8OID, lambda v: float(round(v))),
              _F((t.NUMERICOID,), t.NUMERICOID, _round_numeric, immutable=True),
              _F((t.NUMERICOID, t.INT4OID), t.NUMERICOID, _round_numeric, immutable=True)],
    "random": [_F((), t.FLOAT8OID, _random.random, volatile=True)],
    "current_schemas": [_F((t.BOOLOID,), t.NAMEARRAYOID, _current_schemas)],
    "array_position": [_F((t.ANYARRAYOID, t.ANYELEMENTOID), t.INT4OID, _array_position,
                          strict=False, immutable=True)],
    "pg_cancel_backend": [_F((t.INT4OID,), t.BOOLOID, _pg_cancel_backend, volatile=True,
                             needs_session=True)],
    "pg_terminate_backend": [_F((t.INT4OID,), t.BOOLOID, _pg_terminate_backend,
                                volatile=True, needs_session=True),
                             _F((t.INT4OID, t.INT8OID), t.BOOLOID, _pg_terminate_backend,
                                volatile=True, needs_session=True)],
    "pg_postmaster_start_time": [_F((), _TS, lambda: _postmaster_start())],
    "nextval": [_F((t.REGCLASSOID,), t.INT8OID, _sequence("nextval"), volatile=True)],
    "currval": [_F((t.REGCLASSOID,), t.INT8OID, _sequence("currval"), volatile=True)],
    "lastval": [_F((), t.INT8OID, _sequence("lastval"), volatile=True)],
    "setval": [_F((t.REGCLASSOID, t.INT8OID), t.INT8OID, _sequence("setval"), volatile=True),
               _F((t.REGCLASSOID, t.INT8OID, t.BOOLOID), t.INT8OID, _sequence("setval"),
                  volatile=True)],
}


def _postmaster_start() -> int:
    import os

    import psutil

    start = psutil.Process(os.getppid()).create_time()
    return int((start - 946_684_800) * 1_000_000)


def register(name: str, fn: Function) -> None:
    """Add an implementation (other modules' functions: stats, locks, ...)."""
    FUNCTIONS.setdefault(name, []).append(fn)


def _matches(arg: int, want: int) -> bool:
    if want == t.ANYARRAYOID:
        return arg in t.TYPES and bool(t.TYPES[arg].typelem) or arg == t.UNKNOWNOID
    if want == t.ANYELEMENTOID:
        return True
    return can_coerce_implicitly(arg, want)


def select_function(name: str, arg_types: list[int]) -> Function | None:
    """func_select_candidate, simplified: an exact match, else the candidate
    needing the fewest implicit casts (unknown literals match anything)."""
    candidates = FUNCTIONS.get(name)
    if not candidates:
        return None
    best, best_cost = None, None
    for fn in candidates:
        if len(fn.arg_types) != len(arg_types):
            continue
        if not all(_matches(a, w) for a, w in zip(arg_types, fn.arg_types, strict=True)):
            continue
        cost = sum(a != w for a, w in zip(arg_types, fn.arg_types, strict=True))
        if best_cost is None or cost < best_cost:
            best, best_cost = fn, cost
    return best


def no_function(name: str, arg_types: list[int]) -> PgError:
    shown = ", ".join(type_name(a) for a in arg_types)
    return PgError("42883", f"function {name}({shown}) does not exist",
                   hint="No function matches the given name and argument types. "
                        "You might need to add explicit type casts.")
