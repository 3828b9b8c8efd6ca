"""``tusk_ctl logs`` — read, filter and follow the server log.

PostgreSQL has no such verb: DBAs use ``pg_current_logfile()`` (which reads
DATADIR/current_logfiles, written by the logger, see procs/syslogger.py),
``tail -f`` and grep. This verb does the same in one place:

- By default it reads the files named in current_logfiles, the jsonlog file
  when there is one (it is structured), otherwise the stderr file. ``--file``
  reads any log (a ``tusk_ctl start -l logfile`` file, say); ``--all`` reads
  every file in log_directory, oldest first (a stderr file whose jsonlog twin
  exists is skipped: both hold the same records).
- A stderr-format file is parsed with the cluster's log_line_prefix (read from
  postgresql.conf and postgresql.auto.conf; the default '%m [%p] ' is tried
  too). A record is its first line plus the DETAIL/HINT/QUERY/CONTEXT/
  LOCATION/STATEMENT lines and the unprefixed continuation lines that follow,
  as elog.c writes them. Lines that match no prefix before any record (a
  traceback a crashing process printed) form a record without a severity.
- Records become dicts with PostgreSQL 15's jsonlog field names, so filters
  and ``--json`` output treat both formats alike.

``--severity LEVEL`` keeps LEVEL and everything the *server log* ranks above
it (elog.c's is_log_level_output): DEBUG5 < ... < DEBUG1 < INFO < NOTICE <
WARNING < ERROR < LOG < FATAL < PANIC. So ``--severity error`` shows ERROR,
LOG, FATAL and PANIC, exactly what log_min_messages=error would have logged.
Records without a severity (raw output) never pass a severity filter, nor do
records without a timestamp pass --since/--until. PostgreSQL labels every debug
level "DEBUG"; such records rank as DEBUG1.

Two summaries replace the record listing (with --json, one JSON object per line):

- ``--checkpoints`` turns log_checkpoints' "checkpoint starting" / "checkpoint
  complete" lines (and restartpoint ones, so PostgreSQL's own logs work too)
  into one row per checkpoint: start time, flags, buffers written and their
  share of shared_buffers, WAL files added/removed/recycled, write/sync/total
  seconds, sync files, longest and average sync, distance and estimate. Start
  and end are paired per process; a start with no end is "failed" when that
  process logged an ERROR or PANIC meanwhile (the message is shown), else
  "unfinished".
- ``--probes`` summarises trace_probes events ("trace probe NAME(args)"): how
  many of each, and for every start/done pair (and the write and sync phases
  between buffer__checkpoint__start, __sync__start and __done) how many and
  how long, from the records' timestamps (millisecond resolution, so short
  events are right on average only; checkpoint__sync__file carries its own
  usecs); and the most fsyncs seen between two absorbs of the fsync request
  queue (FSYNCS_PER_ABSORB bounds it).

The summaries honour --since, --until, --pid and --backend-type; they cannot
be combined with --severity, --grep or --follow (a pair needs both its lines).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from utils import elog

PROGNAME = "tusk_ctl"
DEFAULT_PREFIX = "%m [%p] "
CURRENT_LOGFILES = "current_logfiles"
FOLLOW_POLL_SECONDS = 0.2
FOLLOW_DEFAULT_LINES = 10

# The server-log ranking (is_log_level_output): LOG sits between ERROR and FATAL.
SEVERITY_ORDER = ("DEBUG5", "DEBUG4", "DEBUG3", "DEBUG2", "DEBUG1", "INFO", "NOTICE",
                  "WARNING", "ERROR", "LOG", "FATAL", "PANIC")
_RANK = {name: i for i, name in enumerate(SEVERITY_ORDER)} | {"DEBUG": 4}

# Lines elog.c appends to a record, and the jsonlog field each one fills.
_SECONDARY = {"DETAIL": "detail", "HINT": "hint", "QUERY": "internal_query",
              "CONTEXT": "context", "LOCATION": "location", "STATEMENT": "statement"}
_TEXT_ORDER = (("detail", "DETAIL"), ("hint", "HINT"), ("internal_query", "QUERY"),
               ("context", "CONTEXT"), ("statement", "STATEMENT"))
_LABEL_RE = "DEBUG[1-5]?|INFO|NOTICE|WARNING|ERROR|LOG|FATAL|PANIC|" + "|".join(_SECONDARY)


class LogsError(Exception):
    """Nothing to read: printed as 'tusk_ctl: message' with exit code 1."""


@dataclass
class LogRecord:
    """One server-log record: jsonlog-named fields, its time, its original text."""

    fields: dict[str, Any]
    time: float | None = None  # seconds since the epoch, when the record says
    text: str | None = None  # the stderr-format lines as read, if read from such a file

    @property
    def severity(self) -> str | None:
        return self.fields.get("error_severity")


# -- configuration ---------------------------------------------------------------------------

@dataclass
class LogConfig:
    """The logging settings of a cluster, as its configuration files say."""

    log_line_prefix: str = DEFAULT_PREFIX
    log_directory: str = "log"
    log_destination: str = "stderr"
    log_timezone: str = "UTC"


def read_log_config(datadir: str) -> LogConfig:
    """Read postgresql.conf then postgresql.auto.conf (later entries win)."""
    from conf.guc_file import ConfigFileError, parse_config_file

    cfg = LogConfig()
    for name in ("postgresql.conf", "postgresql.auto.conf"):
        path = os.path.join(datadir, name)
        if not os.path.exists(path):
            continue
        errors: list[ConfigFileError] = []
        try:
            items = parse_config_file(path, errors=errors)
        except (ConfigFileError, OSError):
            continue
        for item in items:
            if hasattr(cfg, item.name):
                setattr(cfg, item.name, item.value)
    return cfg


def _zone(name: str) -> timezone | ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError):
        return UTC


# -- timestamps -------------------------------------------------------------------------------

_LOG_TS = re.compile(r"(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?)(?:\s*([A-Za-z+\-][\w+\-:/]*))?$")
_OFFSET = re.compile(r"[+-]\d\d(?::?\d\d)?$")


def parse_log_timestamp(value: str, default_tz: str = "UTC") -> float | None:
    """Seconds since the epoch of a log timestamp ('2024-05-01 10:00:00.123 UTC')."""
    m = _LOG_TS.match(value.strip())
    if not m:
        return None
    try:
        dt = datetime.fromisoformat(m.group(1).replace(" ", "T"))
    except ValueError:
        return None
    tzname = m.group(2)
    if dt.tzinfo is None:
        if tzname and _OFFSET.match(tzname):
            sign = -1 if tzname[0] == "-" else 1
            digits = tzname[1:].replace(":", "")
            minutes = int(digits[:2]) * 60 + (int(digits[2:]) if len(digits) > 2 else 0)
            dt = dt.replace(tzinfo=timezone(sign * timedelta(minutes=minutes)))
        elif tzname in (None, "", "Z"):
            dt = dt.replace(tzinfo=_zone(default_tz))
        else:
            dt = dt.replace(tzinfo=_zone(tzname))
    return dt.timestamp()


def _format_utc(t: float) -> str:
    """A timestamp as %m writes it in UTC."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d} UTC"


_RELATIVE = re.compile(
    r"^(\d+(?:\.\d+)?)\s*(ms|s|secs?|seconds?|m|mins?|minutes?|h|hours?|d|days?|w|weeks?)"
    r"(?:\s+ago)?$", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time_arg(value: str, now: float, default_tz: str = "UTC") -> float:
    """--since/--until: 'now', a relative age ('10min', '2h', '30s ago') or an ISO
    timestamp; a timestamp without a zone is in log_timezone, like the log's own."""
    text = value.strip()
    if text.lower() == "now":
        return now
    m = _RELATIVE.match(text)
    if m:
        unit = m.group(2).lower()
        key = "ms" if unit == "ms" else "m" if unit.startswith("m") else unit[0]
        return now - float(m.group(1)) * _UNIT_SECONDS[key]
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        ts = parse_log_timestamp(text, default_tz)
        if ts is None:
            raise ValueError(f'invalid time "{value}": use an ISO timestamp or an age '
                             "like 10min, 2h, 30s") from None
        return ts
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_zone(default_tz))
    return dt.timestamp()


# -- parsing stderr-format logs ---------------------------------------------------------------

_TZ = r"(?: [A-Za-z+\-][\w+\-:/]*?)?"
# GetBackendTypeDesc's names, tried before anything else so that "%b %u" splits
# "client backend alice" right.
_BACKEND_TYPES = ("client backend", "autovacuum launcher", "autovacuum worker",
                  "background worker", "background writer", "checkpointer", "logger",
                  "postmaster", "standalone backend", "startup", "walreceiver", "walsender",
                  "walwriter", "archiver", "not initialized")
_TS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
# log_line_prefix escape -> (field, pattern of what elog writes for it)
_ESCAPES: dict[str, tuple[str, str]] = {
    "m": ("timestamp", _TS + r"\.\d{3}" + _TZ),
    "t": ("timestamp", _TS + _TZ),
    "n": ("epoch", r"\d+\.\d{3}"),
    "p": ("pid", r"\d+"),
    "u": ("user", r".*?"),
    "d": ("dbname", r".*?"),
    "a": ("application_name", r".*?"),
    "b": ("backend_type", "|".join(re.escape(t) for t in _BACKEND_TYPES) + "|.*?"),
    "h": ("remote_host", r".*?"),
    "r": ("remote", r".*?"),
    "c": ("session_id", r"[0-9a-f]+\.[0-9a-f]+"),
    "l": ("line_num", r"\d+"),
    "s": ("session_start", _TS + _TZ),
    "e": ("state_code", r"[0-9A-Z]{5}"),
    "i": ("ps", r".*?"),
    "v": ("vxid", r".*?"),
    "x": ("txid", r"\d*"),
    "P": ("leader_pid", r"\d*"),
    "Q": ("query_id", r"-?\d+"),
}


@dataclass
class PrefixPattern:
    """A log_line_prefix turned into a regex for a whole log line."""

    prefix: str
    regex: re.Pattern[str]
    groups: dict[str, str]  # regex group -> jsonlog field


def compile_prefix(prefix: str) -> PrefixPattern:
    """Build the regex matching 'PREFIX LEVEL:  message' lines written with ``prefix``.

    Whatever follows %q is optional (non-session processes stop the prefix there);
    padded escapes (%-10p) may be surrounded by spaces.
    """
    parts: list[str] = []
    groups: dict[str, str] = {}
    optional_from: int | None = None
    i, n = 0, len(prefix)
    while i < n:
        ch = prefix[i]
        if ch != "%" or i + 1 >= n:
            parts.append(re.escape(ch))
            i += 1
            continue
        i += 1
        padded = False
        while i < n and (prefix[i].isdigit() or prefix[i] == "-"):
            padded = True
            i += 1
        if i >= n:
            break
        esc = prefix[i]
        i += 1
        if esc == "%":
            parts.append("%")
        elif esc == "q":
            if optional_from is None:
                optional_from = len(parts)
        elif esc in _ESCAPES:
            name = f"g{len(groups)}"
            groups[name] = _ESCAPES[esc][0]
            pattern = f"(?P<{name}>{_ESCAPES[esc][1]})"
            parts.append(rf"\s*{pattern}\s*" if padded else pattern)
    if optional_from is not None:
        parts[optional_from:] = ["(?:" + "".join(parts[optional_from:]) + ")?"]
    body = "".join(parts)
    regex = re.compile(rf"^{body}(?P<label>{_LABEL_RE}):  (?P<text>.*)$", re.DOTALL)
    return PrefixPattern(prefix, regex, groups)


def _prefix_fields(pattern: PrefixPattern, m: re.Match[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for group, name in pattern.groups.items():
        value = m.group(group)
        if value is None or value == "":
            continue
        if name in ("pid", "line_num", "leader_pid", "txid"):
            out[name] = int(value)
        elif name == "query_id":
            out[name] = int(value)
        elif name == "remote":
            host, _, port = value.partition("(")
            out["remote_host"] = host
            if port.rstrip(")").isdigit():
                out["remote_port"] = int(port.rstrip(")"))
        elif name == "epoch":
            out.setdefault("timestamp", _format_utc(float(value)))
        else:
            out[name] = value
    return out


class StderrLogParser:
    """Turns stderr-format log lines into LogRecords, one record per message.

    Records are released a few at a time (``feed``) so that a DETAIL or STATEMENT
    line can still find its record when another process's line came in between
    (possible without the logging collector); ``finish`` releases the rest.
    """

    WINDOW = 8

    def __init__(self, prefix: str, default_tz: str = "UTC") -> None:
        self.patterns = [compile_prefix(prefix)]
        if prefix != DEFAULT_PREFIX:
            self.patterns.append(compile_prefix(DEFAULT_PREFIX))
        self.default_tz = default_tz
        self._pending: list[LogRecord] = []
        self._last_key: str | None = None  # the field continuation lines extend

    def _match(self, line: str) -> tuple[PrefixPattern, re.Match[str]] | None:
        for pattern in self.patterns:
            m = pattern.regex.match(line)
            if m:
                return pattern, m
        return None

    def feed(self, line: str) -> list[LogRecord]:
        """Take one line (without its newline); return the records now complete."""
        found = self._match(line)
        if found is None:
            self._continuation(line)
        else:
            pattern, m = found
            fields = _prefix_fields(pattern, m)
            label, text = m.group("label"), m.group("text")
            if label in _SECONDARY:
                self._secondary(fields, label, text, line)
            else:
                self._start(fields, label, text, line)
        if len(self._pending) > self.WINDOW:
            out, self._pending = self._pending[:-self.WINDOW], self._pending[-self.WINDOW:]
            return out
        return []

    def finish(self) -> list[LogRecord]:
        out, self._pending = self._pending, []
        self._last_key = None
        return out

    def _start(self, fields: dict[str, Any], label: str, text: str, line: str) -> None:
        fields["error_severity"] = label
        fields["message"] = text
        ts = fields.get("timestamp")
        rec = LogRecord(fields, parse_log_timestamp(ts, self.default_tz) if ts else None, line)
        self._pending.append(rec)
        self._last_key = "message"

    def _secondary(self, fields: dict[str, Any], label: str, text: str, line: str) -> None:
        pid = fields.get("pid")
        rec = next((r for r in reversed(self._pending)
                    if pid is None or r.fields.get("pid") in (None, pid)), None)
        if rec is None:
            self._start(fields, label, text, line)
            return
        key = _SECONDARY[label]
        if key == "location":
            loc = re.match(r"(.*?), (.*):(\d+)$", text)
            if loc:
                rec.fields.update(func_name=loc.group(1), file_name=loc.group(2),
                                  file_line_num=int(loc.group(3)))
            else:
                rec.fields["location"] = text
        else:
            rec.fields[key] = text
        rec.text = f"{rec.text}\n{line}" if rec.text is not None else line
        self._last_key = key if rec is self._pending[-1] else None

    def _continuation(self, line: str) -> None:
        current = self._pending[-1] if self._pending else None
        starts_raw = line.startswith("Traceback (most recent call last):")
        if current is None or self._last_key is None or starts_raw:
            self._pending.append(LogRecord({"message": line}, None, line))
            self._last_key = "message"
            return
        key = self._last_key
        if key == "location":
            key = "message"
        current.fields[key] = f"{current.fields.get(key, '')}\n{line}"
        current.text = f"{current.text}\n{line}"


def parse_json_line(line: str, default_tz: str = "UTC") -> LogRecord:
    """One jsonlog line; a line that is not JSON becomes a record of its own text."""
    try:
        fields = json.loads(line)
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        return LogRecord({"message": line}, None, None)
    ts = fields.get("timestamp")
    return LogRecord(fields, parse_log_timestamp(ts, default_tz) if isinstance(ts, str)
                     else None)


class RecordReader:
    """Lines of one file in, records out; the format is fixed per file."""

    def __init__(self, is_json: bool, cfg: LogConfig) -> None:
        self.is_json = is_json
        self.cfg = cfg
        self.stderr = None if is_json else StderrLogParser(cfg.log_line_prefix,
                                                           cfg.log_timezone)

    def feed(self, line: str) -> list[LogRecord]:
        if self.stderr is None:
            return [parse_json_line(line, self.cfg.log_timezone)] if line.strip() else []
        return self.stderr.feed(line)

    def finish(self) -> list[LogRecord]:
        return self.stderr.finish() if self.stderr is not None else []


def is_json_file(path: str) -> bool:
    """.json files are jsonlog; other files are sniffed: a first line that is a JSON
    object means jsonlog, anything else stderr format."""
    if path.endswith(".json"):
        return True
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.strip():
                    try:
                        return isinstance(json.loads(line), dict)
                    except ValueError:
                        return False
    except OSError:
        pass
    return False


def parse_records(text: str, is_json: bool, cfg: LogConfig) -> Iterator[LogRecord]:
    """Every record of a log's text."""
    reader = RecordReader(is_json, cfg)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:
        yield from reader.feed(line)
    yield from reader.finish()


def read_records(path: str, cfg: LogConfig) -> Iterator[LogRecord]:
    """Every record of one log file."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", errors="replace")
    return parse_records(text, is_json_file(path), cfg)


# -- which files ------------------------------------------------------------------------------

def read_current_logfiles(datadir: str) -> dict[str, str]:
    """DATADIR/current_logfiles as {'stderr': path, 'jsonlog': path} (absolute paths)."""
    path = os.path.join(datadir, CURRENT_LOGFILES)
    out: dict[str, str] = {}
    try:
        with open(path) as f:
            for line in f:
                label, _, name = line.rstrip("\n").partition(" ")
                if name:
                    out[label] = os.path.join(datadir, name)
    except FileNotFoundError:
        pass
    return out


def current_log_file(datadir: str) -> str | None:
    files = read_current_logfiles(datadir)
    return files.get("jsonlog") or files.get("stderr")


def all_log_files(datadir: str, cfg: LogConfig) -> list[str]:
    """Every log file in log_directory, oldest first; stderr files whose jsonlog twin
    exists are left out (same records), as are csvlog files and temp files."""
    directory = os.path.join(datadir, cfg.log_directory)
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    paths = [os.path.join(directory, n) for n in names
             if os.path.isfile(os.path.join(directory, n))]
    json_files = {p for p in paths if p.endswith(".json")}
    chosen = []
    for p in paths:
        if p.endswith((".csv", ".tmp")):
            continue
        if p not in json_files:
            twin = (p[:-4] if p.endswith(".log") else p) + ".json"
            if twin in json_files:
                continue
        chosen.append(p)
    return sorted(chosen, key=lambda p: (os.path.getmtime(p), p))


def choose_files(args: argparse.Namespace, datadir: str, cfg: LogConfig) -> list[str]:
    if args.file:
        if not os.path.isfile(args.file):
            raise LogsError(f'could not open log file "{args.file}": No such file')
        return [args.file]
    if args.all:
        files = all_log_files(datadir, cfg)
        if not files:
            raise LogsError(f'no log files in "{os.path.join(datadir, cfg.log_directory)}"')
        return files
    path = current_log_file(datadir)
    if path is None:
        raise LogsError(
            f'no current log file: "{os.path.join(datadir, CURRENT_LOGFILES)}" does not '
            "exist or names no file\nIs logging_collector on? Use --file to read another "
            "log (e.g. the file given to \"tusk_ctl start -l\").")
    if not os.path.isfile(path):
        raise LogsError(f'could not open log file "{path}": No such file')
    return [path]


# -- filters ----------------------------------------------------------------------------------

@dataclass
class RecordFilter:
    backend_type: str | None = None
    min_severity: str | None = None
    pid: int | None = None
    since: float | None = None
    until: float | None = None
    pattern: re.Pattern[str] | None = None

    def matches(self, rec: LogRecord) -> bool:
        f = rec.fields
        if self.backend_type is not None and \
                str(f.get("backend_type", "")).lower() != self.backend_type.lower():
            return False
        if self.min_severity is not None:
            sev = rec.severity
            if sev is None or sev.upper() not in _RANK or \
                    _RANK[sev.upper()] < _RANK[self.min_severity]:
                return False
        if self.pid is not None and f.get("pid") != self.pid:
            return False
        if self.since is not None and (rec.time is None or rec.time < self.since):
            return False
        if self.until is not None and (rec.time is None or rec.time > self.until):
            return False
        if self.pattern is not None and not any(
                self.pattern.search(str(f[k])) for k in ("message", "detail", "hint") if f.get(k)):
            return False
        return True


def compile_grep(text: str, ignore_case: bool = False) -> re.Pattern[str]:
    """--grep: a regex; text that is not a valid regex is matched literally."""
    flags = re.IGNORECASE if ignore_case else 0
    try:
        return re.compile(text, flags)
    except re.error:
        return re.compile(re.escape(text), flags)


def build_filter(args: argparse.Namespace, cfg: LogConfig, now: float) -> RecordFilter:
    sev = None
    if args.severity:
        sev = args.severity.upper()
        if sev == "DEBUG":
            sev = "DEBUG2"  # log_min_messages' alias
        if sev not in _RANK:
            raise ValueError(f'invalid severity "{args.severity}": use one of '
                             + ", ".join(s.lower() for s in SEVERITY_ORDER))
    return RecordFilter(
        backend_type=args.backend_type,
        min_severity=sev,
        pid=args.pid,
        since=parse_time_arg(args.since, now, cfg.log_timezone) if args.since else None,
        until=parse_time_arg(args.until, now, cfg.log_timezone) if args.until else None,
        pattern=compile_grep(args.grep, args.ignore_case) if args.grep else None,
    )


# -- output -----------------------------------------------------------------------------------

def format_json(rec: LogRecord) -> str:
    return json.dumps(rec.fields, ensure_ascii=False, separators=(",", ":"))


def format_text(rec: LogRecord, prefix: str) -> str:
    """The record as the stderr log has it: its own lines when read from a stderr
    file, otherwise rendered with log_line_prefix as elog.c would have."""
    if rec.text is not None:
        return rec.text
    f = rec.fields
    if not rec.severity:
        return str(f.get("message", ""))
    session_start = parse_log_timestamp(str(f.get("session_start", ""))) or rec.time or 0.0
    remote_port = f.get("remote_port")
    ctx = elog.LogContext(
        backend_type=str(f.get("backend_type", "")), pid=int(f.get("pid", 0) or 0),
        session_start=session_start, user=f.get("user"), dbname=f.get("dbname"),
        remote_host=f.get("remote_host"),
        remote_port=str(remote_port) if remote_port is not None else None,
        application_name=str(f.get("application_name", "")), command_tag=str(f.get("ps", "")),
        vxid=f.get("vxid"), line_num=int(f.get("line_num", 0) or 0),
        is_session=f.get("backend_type") == "client backend")
    event = {"time": rec.time or 0.0, "sqlstate": f.get("state_code")}
    head = elog.format_prefix(prefix, ctx, event)
    lines = [f"{head}{rec.severity}:  {f.get('message', '')}"]
    for key, label in _TEXT_ORDER:
        if f.get(key):
            lines.append(f"{head}{label}:  {f[key]}")
    return "\n".join(lines)


class Printer:
    def __init__(self, as_json: bool, prefix: str, out=None) -> None:
        self.as_json = as_json
        self.prefix = prefix
        self.out = out or sys.stdout

    def print(self, records: Iterable[LogRecord]) -> None:
        for rec in records:
            text = format_json(rec) if self.as_json else format_text(rec, self.prefix)
            self.out.write(text + "\n")
        self.out.flush()


# -- following --------------------------------------------------------------------------------

@dataclass
class _Tail:
    """A file read as it grows: complete lines only; notices truncation and a new
    file under the same name."""

    path: str
    offset: int = 0
    inode: int | None = None
    partial: str = ""
    reader: RecordReader | None = None
    buffered: list[str] = field(default_factory=list)

    def read_lines(self) -> list[str]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return []
        if (self.inode is not None and st.st_ino != self.inode) or st.st_size < self.offset:
            self.offset, self.partial = 0, ""
        self.inode = st.st_ino
        if st.st_size == self.offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        text = self.partial + data.decode("utf-8", errors="replace")
        lines = text.split("\n")
        self.partial = lines.pop()
        return lines


def follow(resolve: Callable[[], str | None], path: str, cfg: LogConfig,
           flt: RecordFilter, printer: Printer, start_offset: int,
           poll: float = FOLLOW_POLL_SECONDS) -> None:
    """tail -f: print matching records added after ``start_offset`` of ``path`` and,
    when ``resolve`` names another file (rotation), continue with that one."""
    tail = _Tail(path, start_offset, reader=RecordReader(is_json_file(path), cfg))
    try:
        tail.inode = os.stat(path).st_ino
    except FileNotFoundError:
        pass
    while True:
        got = _drain(tail, flt, printer)
        new_path = resolve()
        if new_path and new_path != tail.path and os.path.exists(new_path):
            _drain(tail, flt, printer)
            assert tail.reader is not None
            printer.print(r for r in tail.reader.finish() if flt.matches(r))
            tail = _Tail(new_path, reader=RecordReader(is_json_file(new_path), cfg))
            continue
        if not got and tail.reader is not None:
            # Quiet: the last record cannot get more lines from a live logger.
            printer.print(r for r in tail.reader.finish() if flt.matches(r))
        time.sleep(poll)


def _drain(tail: _Tail, flt: RecordFilter, printer: Printer) -> bool:
    lines = tail.read_lines()
    assert tail.reader is not None
    for line in lines:
        printer.print(r for r in tail.reader.feed(line) if flt.matches(r))
    return bool(lines)


# -- the verb ---------------------------------------------------------------------------------

def add_logs_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``tusk_ctl logs`` (the parser already has -D)."""
    src = parser.add_argument_group("what to read")
    src.add_argument("--file", metavar="PATH", help="read this log file (stderr or jsonlog "
                     "format) instead of the current one named in current_logfiles")
    src.add_argument("--all", action="store_true",
                     help="read every file in log_directory, oldest first")
    flt = parser.add_argument_group("filters")
    flt.add_argument("--backend-type", metavar="TYPE",
                     help="only records of this backend type (e.g. checkpointer, "
                     "'client backend')")
    flt.add_argument("--severity", metavar="LEVEL",
                     help="LEVEL and more severe, in the server log's ranking: debug5..debug1 "
                     "< info < notice < warning < error < log < fatal < panic")
    flt.add_argument("--pid", type=int, help="only records of this process")
    flt.add_argument("--since", metavar="TIME", help="records at or after TIME: an ISO "
                     "timestamp (log_timezone if it has no zone) or an age like 10min, 2h")
    flt.add_argument("--until", metavar="TIME", help="records at or before TIME")
    flt.add_argument("--grep", metavar="TEXT",
                     help="regex (or plain text) searched in message, detail and hint")
    flt.add_argument("-i", "--ignore-case", action="store_true", help="--grep ignores case")
    out = parser.add_argument_group("output")
    out.add_argument("-f", "--follow", action="store_true",
                     help="keep printing new records, following rotation")
    out.add_argument("-n", "--lines", type=int, metavar="N",
                     help="print only the last N matching records (default with --follow: "
                     f"{FOLLOW_DEFAULT_LINES})")
    out.add_argument("--json", action="store_true",
                     help="print records as JSON lines with jsonlog's field names")
    summary = out.add_mutually_exclusive_group()
    summary.add_argument("--checkpoints", action="store_true",
                         help="one row per checkpoint from log_checkpoints' lines: flags, "
                         "buffers, WAL files, write/sync/total times, sync files, distance")
    summary.add_argument("--probes", action="store_true",
                         help="summarise trace_probes events: counts, start/done durations")


def run_logs(args: argparse.Namespace, datadir: str) -> int:
    cfg = read_log_config(datadir)
    summary = getattr(args, "checkpoints", False) or getattr(args, "probes", False)
    try:
        if summary:
            for flag, given in (("--severity", args.severity), ("--grep", args.grep),
                                ("--follow", args.follow)):
                if given:
                    what = "--checkpoints" if args.checkpoints else "--probes"
                    raise ValueError(f"{what} cannot be combined with {flag}")
        flt = build_filter(args, cfg, time.time())
        files = choose_files(args, datadir, cfg)
    except (LogsError, ValueError) as exc:
        _err(str(exc))
        return 1
    if summary:
        return _run_summary(args, files, cfg, flt)
    printer = Printer(args.json, cfg.log_line_prefix)
    limit = args.lines if args.lines is not None else \
        (FOLLOW_DEFAULT_LINES if args.follow else None)
    try:
        offset = 0
        matched: list[LogRecord] = []
        for i, path in enumerate(files):
            with open(path, "rb") as f:
                data = f.read()
            if args.follow and i == len(files) - 1:
                # Follow from the end of the last complete line read here.
                offset = data.rfind(b"\n") + 1
                data = data[:offset]
            for rec in parse_records(data.decode("utf-8", errors="replace"),
                                     is_json_file(path), cfg):
                if flt.matches(rec):
                    matched.append(rec)
                    if limit is not None and len(matched) > 2 * limit + 1000:
                        matched = matched[-limit:]
        if limit is not None:
            matched = matched[-limit:] if limit > 0 else []
        printer.print(matched)
        if args.follow:
            def resolve() -> str | None:
                return args.file if args.file else current_log_file(datadir)

            follow(resolve, files[-1], cfg, flt, printer, offset)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        # The reader went away (| head): leave quietly, without a flush error at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:
        _err(f"could not read log: {exc}")
        return 1
    return 0


def _run_summary(args: argparse.Namespace, files: list[str], cfg: LogConfig,
                 flt: RecordFilter) -> int:
    def records() -> Iterator[LogRecord]:
        for path in files:
            yield from (r for r in read_records(path, cfg) if flt.matches(r))

    try:
        if args.checkpoints:
            rows = checkpoint_rows(records())
            if args.lines is not None:
                rows = rows[-args.lines:] if args.lines > 0 else []
            if args.json:
                for row in rows:
                    sys.stdout.write(json.dumps(row, separators=(",", ":")) + "\n")
            elif rows:
                sys.stdout.write(format_checkpoint_table(rows))
            else:
                _err("no checkpoint lines in the log (is log_checkpoints on?)")
        else:
            summary = probe_summary(records())
            if args.json:
                sys.stdout.write(json.dumps(summary, separators=(",", ":")) + "\n")
            elif summary["events"]:
                sys.stdout.write(format_probe_summary(summary))
            else:
                _err("no trace probe events in the log (is trace_probes on?)")
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError as exc:
        _err(f"could not read log: {exc}")
        return 1
    return 0


# -- --checkpoints ----------------------------------------------------------------------------

_CKPT_START = re.compile(r"(?P<kind>checkpoint|restartpoint) starting:(?P<flags>.*)$")
_CKPT_COMPLETE = re.compile(
    r"(?P<kind>checkpoint|restartpoint) complete: wrote (?P<buffers>\d+) buffers "
    r"\((?P<percent>[\d.]+)%\); (?P<wal_added>\d+) WAL file\(s\) added, "
    r"(?P<wal_removed>\d+) removed, (?P<wal_recycled>\d+) recycled; "
    r"write=(?P<write_s>[\d.]+) s, sync=(?P<sync_s>[\d.]+) s, total=(?P<total_s>[\d.]+) s; "
    r"sync files=(?P<sync_files>\d+), longest=(?P<longest_s>[\d.]+) s, "
    r"average=(?P<average_s>[\d.]+) s; distance=(?P<distance_kb>\d+) kB, "
    r"estimate=(?P<estimate_kb>\d+) kB")
_INT_FIELDS = ("buffers", "wal_added", "wal_removed", "wal_recycled", "sync_files",
               "distance_kb", "estimate_kb")
_FLOAT_FIELDS = ("percent", "write_s", "sync_s", "total_s", "longest_s", "average_s")


def checkpoint_rows(records: Iterable[LogRecord]) -> list[dict[str, Any]]:
    """Pair each process's "starting" line with its next "complete" line."""
    rows: list[dict[str, Any]] = []
    open_rows: dict[Any, dict[str, Any]] = {}  # pid -> the row of its running checkpoint
    for rec in records:
        msg = str(rec.fields.get("message", ""))
        pid = rec.fields.get("pid")
        m = _CKPT_START.match(msg)
        if m:
            _close_unfinished(open_rows.pop(pid, None))
            row = {"start": rec.fields.get("timestamp"), "pid": pid, "kind": m["kind"],
                   "flags": m["flags"].strip(), "status": "unfinished"}
            rows.append(row)
            open_rows[pid] = row
            continue
        m = _CKPT_COMPLETE.match(msg)
        if m:
            row = open_rows.pop(pid, None)
            if row is None or row["kind"] != m["kind"]:  # its start is outside the range
                row = {"start": None, "pid": pid, "kind": m["kind"], "flags": None}
                rows.append(row)
            row["status"] = "complete"
            row["end"] = rec.fields.get("timestamp")
            row.pop("error", None)
            for name in _INT_FIELDS:
                row[name] = int(m[name])
            for name in _FLOAT_FIELDS:
                row[name] = float(m[name])
            continue
        row = open_rows.get(pid)
        if row is not None and str(rec.severity or "").upper() in ("ERROR", "PANIC", "FATAL"):
            row.setdefault("error", f"{rec.severity}:  {msg}")
            if rec.severity.upper() in ("PANIC", "FATAL"):  # the process is gone
                _close_unfinished(open_rows.pop(pid))
    for row in open_rows.values():
        _close_unfinished(row)
    return rows


def _close_unfinished(row: dict[str, Any] | None) -> None:
    if row is not None and row["status"] == "unfinished" and "error" in row:
        row["status"] = "failed"


_CKPT_COLUMNS = (  # (heading, field, format)
    ("start", "start", "{}"), ("flags", "flags", "{}"), ("status", "status", "{}"),
    ("buffers", "buffers", "{}"), ("%", "percent", "{:.1f}"), ("added", "wal_added", "{}"),
    ("removed", "wal_removed", "{}"), ("recycled", "wal_recycled", "{}"),
    ("write s", "write_s", "{:.3f}"), ("sync s", "sync_s", "{:.3f}"),
    ("total s", "total_s", "{:.3f}"), ("files", "sync_files", "{}"),
    ("longest s", "longest_s", "{:.3f}"), ("average s", "average_s", "{:.3f}"),
    ("distance kB", "distance_kb", "{}"), ("estimate kB", "estimate_kb", "{}"))


def format_checkpoint_table(rows: list[dict[str, Any]]) -> str:
    """The rows as an aligned table (text left-aligned, figures right-aligned);
    the error of a failed checkpoint follows its row."""
    cells = [[h for h, _f, _fmt in _CKPT_COLUMNS]]
    for row in rows:
        line = []
        for _h, name, fmt in _CKPT_COLUMNS:
            value = row.get(name)
            if name == "flags" and row.get("kind") == "restartpoint":
                value = f"(restartpoint) {value or ''}".strip()
            line.append("" if value is None else fmt.format(value))
        cells.append(line)
    widths = [max(len(r[i]) for r in cells) for i in range(len(_CKPT_COLUMNS))]
    out = []
    for n, line in enumerate(cells):
        parts = [c.ljust(w) if i < 3 else c.rjust(w)
                 for i, (c, w) in enumerate(zip(line, widths, strict=True))]
        out.append("  ".join(parts).rstrip())
        if n and rows[n - 1].get("error"):
            out.append(f"    {rows[n - 1]['error']}")
    return "\n".join(out) + "\n"


# -- --probes ---------------------------------------------------------------------------------

_PROBE = re.compile(r"trace probe (?P<name>\w+)\((?P<args>.*)\)$")
# Intervals between probes that are not a NAME__start / NAME__done pair.
_PROBE_PHASES = (("buffer__checkpoint: write phase", "buffer__checkpoint__start",
                  "buffer__checkpoint__sync__start"),
                 ("buffer__checkpoint: sync phase", "buffer__checkpoint__sync__start",
                  "buffer__checkpoint__done"))
_ABSORB, _FSYNC = "checkpoint__sync__absorb", "checkpoint__sync__file"


def probe_args(text: str) -> dict[str, str]:
    """'a=1, b=x' -> {'a': '1', 'b': 'x'}."""
    out = {}
    for part in text.split(", "):
        key, eq, value = part.partition("=")
        if eq:
            out[key.strip()] = value
    return out


def probe_summary(records: Iterable[LogRecord]) -> dict[str, Any]:
    """Counts per probe; durations per start/done pair (per process, nested pairs
    of the same name matched innermost first); fsyncs between absorbs."""
    events: dict[str, int] = {}
    starts: dict[tuple[Any, str], list[float]] = {}  # (pid, pair) -> start times
    durations: dict[str, list[float]] = {}
    fsyncs_since_absorb: dict[Any, int] = {}
    max_fsyncs = 0
    for rec in records:
        m = _PROBE.match(str(rec.fields.get("message", "")))
        if not m:
            continue
        name, pid = m["name"], rec.fields.get("pid")
        events[name] = events.get(name, 0) + 1
        if name == _FSYNC:
            n = fsyncs_since_absorb[pid] = fsyncs_since_absorb.get(pid, 0) + 1
            max_fsyncs = max(max_fsyncs, n)
            usecs = probe_args(m["args"]).get("usecs")
            if usecs is not None and usecs.isdigit():
                durations.setdefault(f"{_FSYNC} (usecs)", []).append(int(usecs) / 1e6)
        elif name == _ABSORB:
            fsyncs_since_absorb[pid] = 0
        if rec.time is None:
            continue
        ends: list[str] = []
        begins: list[str] = []
        if name.endswith("__start"):
            begins.append(name[:-len("__start")])
        elif name.endswith("__done"):
            ends.append(name[:-len("__done")])
        for label, first, last in _PROBE_PHASES:
            if name == last:
                ends.append(label)
            if name == first:
                begins.append(label)
        for label in ends:
            stack = starts.get((pid, label))
            if stack:
                durations.setdefault(label, []).append(max(0.0, rec.time - stack.pop()))
        for label in begins:
            starts.setdefault((pid, label), []).append(rec.time)
    return {
        "events": dict(sorted(events.items())),
        "durations": [{"name": label, "count": len(d), "total_s": round(sum(d), 6),
                       "avg_ms": round(sum(d) / len(d) * 1000, 3),
                       "max_ms": round(max(d) * 1000, 3)}
                      for label, d in sorted(durations.items())],
        "max_fsyncs_between_absorbs": max_fsyncs if events.get(_FSYNC) else None,
    }


def format_probe_summary(summary: dict[str, Any]) -> str:
    events = summary["events"]
    w = max(len("probe"), *(len(n) for n in events))
    lines = [f"{'probe':<{w}}  {'events':>8}"]
    lines += [f"{name:<{w}}  {count:>8}" for name, count in events.items()]
    durations = summary["durations"]
    if durations:
        w = max(len("interval"), *(len(d["name"]) for d in durations))
        lines += ["", f"{'interval':<{w}}  {'count':>8}  {'total s':>10}  "
                      f"{'avg ms':>10}  {'max ms':>10}"]
        lines += [f"{d['name']:<{w}}  {d['count']:>8}  {d['total_s']:>10.3f}  "
                  f"{d['avg_ms']:>10.3f}  {d['max_ms']:>10.3f}" for d in durations]
        lines.append("(from log timestamps: millisecond resolution, right on average)")
    if summary["max_fsyncs_between_absorbs"] is not None:
        lines += ["", "most fsyncs between two absorbs of the request queue: "
                      f"{summary['max_fsyncs_between_absorbs']}"]
    return "\n".join(lines) + "\n"


def _err(message: str) -> None:
    lines = message.split("\n")
    sys.stderr.write(f"{PROGNAME}: {lines[0]}\n" + "".join(f"{ln}\n" for ln in lines[1:]))
