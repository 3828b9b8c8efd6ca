"""Error reporting and the server log — mirrors src/backend/utils/error/elog.c.

Every process reports through ``ereport``; a structlog pipeline adds the
process context (pid, backend type, session), filters by log_min_messages with
PostgreSQL's ranking (LOG outranks ERROR for the server log), and renders one
line per destination: ``stderr`` with log_line_prefix, ``jsonlog`` with
PostgreSQL 15's field names.

When the logging collector runs, fd 2 of every process is the collector's pipe
and records travel in PostgreSQL's chunk protocol (see ``write_pipe_chunks``) so
that lines from many processes never interleave. As in PostgreSQL, jsonlog
needs the collector; without it those records go to stderr in stderr format.

Errors raised inside a backend use ``PgError``; tcop turns them into
ErrorResponse messages and logs them.
"""

from __future__ import annotations

import datetime
import json
import os
import struct
import sys
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

# Severity ranks as in PostgreSQL's elog.h.
DEBUG5, DEBUG4, DEBUG3, DEBUG2, DEBUG1 = 10, 11, 12, 13, 14
LOG, LOG_SERVER_ONLY, INFO, NOTICE, WARNING = 15, 16, 17, 18, 19
ERROR, FATAL, PANIC = 21, 22, 23

LEVEL_BY_NAME = {
    "DEBUG5": DEBUG5, "DEBUG4": DEBUG4, "DEBUG3": DEBUG3, "DEBUG2": DEBUG2, "DEBUG1": DEBUG1,
    "LOG": LOG, "INFO": INFO, "NOTICE": NOTICE, "WARNING": WARNING,
    "ERROR": ERROR, "FATAL": FATAL, "PANIC": PANIC,
}
NAME_BY_LEVEL = {v: k for k, v in LEVEL_BY_NAME.items()} | {LOG_SERVER_ONLY: "LOG"}
# What the server log calls each level: every debug level is just "DEBUG", as in PostgreSQL.
LABEL_BY_LEVEL = NAME_BY_LEVEL | {lvl: "DEBUG" for lvl in (DEBUG5, DEBUG4, DEBUG3, DEBUG2, DEBUG1)}


class PgError(Exception):
    """An ERROR/FATAL/PANIC with PostgreSQL's fields, raised and caught like ereport(ERROR)."""

    def __init__(
        self,
        sqlstate: str,
        message: str,
        *,
        detail: str | None = None,
        hint: str | None = None,
        position: int | None = None,
        severity: int = ERROR,
    ) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message
        self.detail = detail
        self.hint = hint
        self.position = position
        self.severity = severity
        # Optional fields (errcontext, err_generic_string): protocol codes W s t c n.
        self.context: str | None = None
        self.schema_name: str | None = None
        self.table_name: str | None = None
        self.column_name: str | None = None
        self.constraint_name: str | None = None

    def protocol_fields(self) -> dict[bytes, str] | None:
        """The optional ErrorResponse fields that are set, by protocol code."""
        pairs = ((b"W", self.context), (b"s", self.schema_name), (b"t", self.table_name),
                 (b"c", self.column_name), (b"n", self.constraint_name))
        out = {code: v for code, v in pairs if v}
        return out or None


class FatalError(PgError):
    def __init__(self, sqlstate: str, message: str, **kw: Any) -> None:
        super().__init__(sqlstate, message, severity=FATAL, **kw)


@dataclass
class LogContext:
    """What log_line_prefix and jsonlog can say about the current process."""

    backend_type: str = "postmaster"
    pid: int = field(default_factory=os.getpid)
    session_start: float = field(default_factory=time.time)
    user: str | None = None
    dbname: str | None = None
    remote_host: str | None = None
    remote_port: str | None = None
    application_name: str = ""
    command_tag: str = ""
    query: str | None = None  # statement being run, for STATEMENT lines
    vxid: str | None = None
    line_num: int = 0
    is_session: bool = False  # %q stops the prefix in non-session processes


context = LogContext()

# Settings are read through this callable so elog works before GUCs load.
_setting: Callable[[str], Any] = lambda name: _DEFAULTS[name]  # noqa: E731
_DEFAULTS: dict[str, Any] = {
    "log_min_messages": "warning",
    "log_line_prefix": "%m [%p] ",
    "log_destination": "stderr",
    "log_timezone": "UTC",
}
# True in processes whose fd 2 is the logging collector's pipe.
redirection_done = False
# The logger process itself writes files directly.
direct_writer: Callable[[bytes, int], None] | None = None
# A backend installs this to also send NOTICE/WARNING/INFO to its client.
client_sink: Callable[[int, str, dict[str, Any]], None] | None = None


def configure(settings_get: Callable[[str], Any]) -> None:
    """Read logging GUCs from a conf.guc.Settings-like getter from now on."""
    global _setting
    _setting = settings_get


def init_process(backend_type: str) -> None:
    """Reset the context in a freshly forked child (InitPostmasterChild)."""
    global context
    context = LogContext(backend_type=backend_type)


def is_log_level_output(elevel: int, log_min_level: int) -> bool:
    """PostgreSQL's ranking for the server log: LOG sits between ERROR and FATAL."""
    if elevel in (LOG, LOG_SERVER_ONLY):
        return log_min_level == LOG or log_min_level <= ERROR
    if log_min_level == LOG:
        return elevel >= FATAL
    return elevel >= log_min_level


def _min_level() -> int:
    try:
        return LEVEL_BY_NAME[str(_setting("log_min_messages")).upper()]
    except Exception:
        return WARNING


# -- rendering -------------------------------------------------------------------

def _timestamp(t: float, with_ms: bool = True) -> str:
    """A log timestamp in log_timezone, as PostgreSQL prints it."""
    tz = _log_zone()
    if tz is None:
        base = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
        zone = "UTC"
    else:
        dt = datetime.datetime.fromtimestamp(t, tz)
        base = dt.strftime("%Y-%m-%d %H:%M:%S")
        zone = dt.strftime("%Z")
    if with_ms:
        base += f".{int((t % 1) * 1000):03d}"
    return f"{base} {zone}"


_zone_cache: tuple[str, Any] = ("UTC", None)


def _log_zone() -> Any:
    """The log_timezone as a tzinfo, or None for UTC (the fast path)."""
    global _zone_cache
    try:
        name = str(_setting("log_timezone"))
    except Exception:
        return None
    if name == _zone_cache[0]:
        return _zone_cache[1]
    zone = None
    if name.upper() not in ("UTC", "GMT", "ZULU"):
        try:
            zone = zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = None
    _zone_cache = (name, zone)
    return zone


def session_id(ctx: LogContext) -> str:
    return f"{int(ctx.session_start):x}.{ctx.pid:x}"


def format_prefix(prefix: str, ctx: LogContext, event: dict[str, Any]) -> str:
    """Expand log_line_prefix escapes (%m %p %u %d %r %h %a %b %c %l %s %e %i %v %x %q %t %n %%)."""
    out: list[str] = []
    i, n = 0, len(prefix)
    while i < n:
        ch = prefix[i]
        if ch != "%" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        i += 1
        pad = ""
        while i < n and (prefix[i].isdigit() or prefix[i] == "-"):
            pad += prefix[i]
            i += 1
        if i >= n:
            break
        esc = prefix[i]
        i += 1
        if esc == "q":
            if not ctx.is_session:
                break
            continue
        value = _prefix_value(esc, ctx, event)
        if pad:
            width = int(pad)
            value = value.ljust(-width) if width < 0 else value.rjust(width)
        out.append(value)
    return "".join(out)


def _prefix_value(esc: str, ctx: LogContext, event: dict[str, Any]) -> str:
    t = event["time"]
    match esc:
        case "m":
            return _timestamp(t)
        case "t":
            return _timestamp(t, with_ms=False)
        case "n":
            return f"{t:.3f}"
        case "p":
            return str(ctx.pid)
        case "u":
            return ctx.user or ("[unknown]" if ctx.is_session else "")
        case "d":
            return ctx.dbname or ("[unknown]" if ctx.is_session else "")
        case "a":
            return ctx.application_name or ""
        case "b":
            return ctx.backend_type
        case "h":
            return ctx.remote_host or ""
        case "r":
            if ctx.remote_host and ctx.remote_port:
                return f"{ctx.remote_host}({ctx.remote_port})"
            return ctx.remote_host or ""
        case "c":
            return session_id(ctx)
        case "l":
            return str(ctx.line_num)
        case "s":
            return _timestamp(ctx.session_start, with_ms=False)
        case "e":
            return event.get("sqlstate") or "00000"
        case "i":
            return ctx.command_tag
        case "v":
            return ctx.vxid or ""
        case "x":
            return "0"
        case "P" | "Q":
            return "0" if esc == "Q" else ""
        case "%":
            return "%"
    return ""


def render_stderr(event: dict[str, Any], ctx: LogContext) -> str:
    prefix = format_prefix(str(_setting("log_line_prefix")), ctx, event)
    sev = event["severity"]
    lines = [f"{prefix}{sev}:  {event['message']}"]
    for key, label in (("detail", "DETAIL"), ("hint", "HINT"), ("context", "CONTEXT"),
                       ("statement", "STATEMENT")):
        if event.get(key):
            lines.append(f"{prefix}{label}:  {event[key]}")
    return "\n".join(lines) + "\n"


def render_json(event: dict[str, Any], ctx: LogContext) -> str:
    """One jsonlog line with PostgreSQL 15's field names; absent fields are left out."""
    rec: dict[str, Any] = {"timestamp": _timestamp(event["time"])}
    if ctx.user:
        rec["user"] = ctx.user
    if ctx.dbname:
        rec["dbname"] = ctx.dbname
    rec["pid"] = ctx.pid
    if ctx.remote_host:
        rec["remote_host"] = ctx.remote_host
    if ctx.remote_port:
        rec["remote_port"] = int(ctx.remote_port) if ctx.remote_port.isdigit() else ctx.remote_port
    rec["session_id"] = session_id(ctx)
    rec["line_num"] = ctx.line_num
    if ctx.command_tag:
        rec["ps"] = ctx.command_tag
    rec["session_start"] = _timestamp(ctx.session_start, with_ms=False)
    if ctx.vxid:
        rec["vxid"] = ctx.vxid
    rec["txid"] = 0
    rec["error_severity"] = event["severity"]
    rec["state_code"] = event.get("sqlstate") or "00000"
    rec["message"] = event["message"]
    for key in ("detail", "hint", "context", "statement"):
        if event.get(key):
            rec[key] = event[key]
    if event.get("cursor_position"):
        rec["cursor_position"] = event["cursor_position"]
    if ctx.application_name:
        rec["application_name"] = ctx.application_name
    rec["backend_type"] = ctx.backend_type
    rec["query_id"] = 0
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n"


# -- the collector's pipe protocol ------------------------------------------------

PIPE_CHUNK_SIZE = 512  # atomic on any pipe (PIPE_BUF >= 512)
PIPE_HEADER = struct.Struct("<2sHiB")  # nuls, payload length, pid, flags
PIPE_MAX_PAYLOAD = PIPE_CHUNK_SIZE - PIPE_HEADER.size
PIPE_PROTO_IS_LAST = 0x01
PIPE_PROTO_DEST_STDERR = 0x10
PIPE_PROTO_DEST_JSONLOG = 0x40


def write_pipe_chunks(fd: int, data: bytes, dest: int) -> None:
    """Send one record through the collector pipe in chunks of at most PIPE_CHUNK_SIZE."""
    pid = os.getpid()
    while True:
        part, data = data[:PIPE_MAX_PAYLOAD], data[PIPE_MAX_PAYLOAD:]
        flags = dest | (0 if data else PIPE_PROTO_IS_LAST)
        _write_all(fd, PIPE_HEADER.pack(b"\0\0", len(part), pid, flags) + part)
        if not data:
            return


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            n = os.write(fd, data)
        except InterruptedError:
            continue
        except OSError:
            return  # nowhere left to log to
        data = data[n:]


def _emit(event: dict[str, Any]) -> None:
    ctx = context
    ctx.line_num += 1
    dests = {d.strip() for d in str(_setting("log_destination")).split(",")}
    want_json = "jsonlog" in dests and (redirection_done or direct_writer is not None)
    want_stderr = "stderr" in dests or not want_json
    if want_stderr:
        _deliver(render_stderr(event, ctx).encode(), PIPE_PROTO_DEST_STDERR)
    if want_json:
        _deliver(render_json(event, ctx).encode(), PIPE_PROTO_DEST_JSONLOG)


def _deliver(data: bytes, dest: int) -> None:
    if direct_writer is not None:
        direct_writer(data, dest)
    elif redirection_done:
        write_pipe_chunks(2, data, dest)
    else:
        _write_all(2, data)


# -- structlog pipeline ----------------------------------------------------------

def _add_context(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    event.setdefault("time", time.time())
    event["pid"] = context.pid
    event["backend_type"] = context.backend_type
    return event


def _filter_level(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    if not is_log_level_output(event["elevel"], _min_level()):
        raise structlog.DropEvent
    return event


class _Sink:
    def msg(self, **event: Any) -> None:
        _emit(event)

    log = info = msg


def _render(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    event["message"] = event.pop("event")
    return event


structlog.configure(
    processors=[_add_context, _filter_level, _render],
    logger_factory=lambda *a: _Sink(),
    wrapper_class=structlog.BoundLogger,
    cache_logger_on_first_use=True,
)
_logger = structlog.get_logger()


def ereport(
    elevel: int,
    message: str,
    *,
    detail: str | None = None,
    hint: str | None = None,
    sqlstate: str | None = None,
    statement: str | None = None,
    context_line: str | None = None,
    to_client: bool = True,
) -> None:
    """Report a message at ``elevel`` to the server log (and the client, for backends).

    Unlike PostgreSQL's ereport(ERROR), this never raises: raise PgError for that.
    """
    if to_client and client_sink is not None and elevel in (INFO, NOTICE, WARNING):
        client_sink(elevel, message, {"detail": detail, "hint": hint, "sqlstate": sqlstate})
    if elevel == INFO:
        return  # INFO goes to the client only, as in PostgreSQL
    try:
        _logger.msg(
            message,
            elevel=elevel,
            severity=LABEL_BY_LEVEL[elevel],
            detail=detail,
            hint=hint,
            sqlstate=sqlstate,
            statement=statement,
            context=context_line,
        )
    except Exception as exc:  # logging must never take a process down
        try:
            sys.stderr.write(f"tusk: could not write log message: {exc}\n")
        except Exception:
            pass


def log(message: str, **kw: Any) -> None:
    ereport(LOG, message, **kw)


def notice(message: str, **kw: Any) -> None:
    ereport(NOTICE, message, **kw)


def warning(message: str, **kw: Any) -> None:
    ereport(WARNING, message, **kw)


def debug1(message: str, **kw: Any) -> None:
    ereport(DEBUG1, message, **kw)


def debug2(message: str, **kw: Any) -> None:
    ereport(DEBUG2, message, **kw)


def fatal(message: str, **kw: Any) -> None:
    ereport(FATAL, message, **kw)


def report_error(err: PgError, statement: str | None = None) -> None:
    """Log a caught PgError as PostgreSQL logs an error (with its STATEMENT)."""
    ereport(
        err.severity,
        err.message,
        detail=err.detail,
        hint=err.hint,
        sqlstate=err.sqlstate,
        statement=statement,
        to_client=False,
    )
