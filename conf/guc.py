"""Run-time settings of one process: values with units, contexts, SET/RESET/SHOW, reload.

Mirrors PostgreSQL 15's src/backend/utils/misc/guc.c — set_config_option, parse_int,
parse_real, parse_bool, convert_to_base_unit, _ShowOption, ResetAllOptions, the GUC stack
of AtEOXact_GUC, ReportChangedGUCOptions — and ProcessConfigFileInternal of guc-file.l,
plus the check and show hooks of the parameters tusk has (commands/variable.c, xlog.c).

Every process owns one ``Settings``. The postmaster builds it with ``load_initial`` and
children inherit it through fork; on SIGHUP each process calls ``reload``. Values live in
a plain dict so that ``get`` is one lookup on hot paths.

Where it differs from PostgreSQL:
- Every message about a line of a configuration file names the file and the line (and
  command-line errors name the option), including 'invalid value' and 'parameter ...
  changed to' messages, where PostgreSQL says nothing of where the value came from.
- ``load_initial`` reports every error before giving up (PostgreSQL stops at the first bad
  command-line option, and at syntax errors before looking at values).
- ``get('wal_buffers')`` returns the raw setting (-1 = automatic); ``wal_buffers_blocks``
  computes PostgreSQL's automatic value, which SHOW prints.
- The GUC stack has one level (no subtransactions); SET LOCAL outside a transaction block
  is validated and then has no effect (PostgreSQL also warns; the caller emits that).
- Identifiers longer than 63 bytes (GUC_IS_NAME) are truncated without the NOTICE.
- ``session_authorization`` cannot look roles up: a user who did not log in as a
  superuser may only set it to the login name (see ``set_session_user``).
- log_destination accepts stderr and jsonlog; csvlog and syslog are refused.
"""

import math
import os
import re
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from functools import cache

from conf.guc_file import ConfigFileError, ConfigItem, parse_config_file, with_location
from conf.guc_tables import (
    BLCKSZ,
    INT_MAX,
    NAMEDATALEN,
    TABLE,
    ConfigVariable,
    GucContext,
    GucSource,
    GucValue,
)

__all__ = [
    "ConfigErrors", "GucContext", "GucError", "GucMessage", "GucSource", "Settings",
    "format_value", "log_destinations", "parse_bool", "parse_int", "parse_real",
    "split_identifier_string", "unit_name", "valid_custom_variable_name",
]

ERRCODE_UNDEFINED_OBJECT = "42704"
ERRCODE_INVALID_NAME = "42602"
ERRCODE_INVALID_PARAMETER_VALUE = "22023"
ERRCODE_CANT_CHANGE_RUNTIME_PARAM = "55P02"
ERRCODE_INSUFFICIENT_PRIVILEGE = "42501"
ERRCODE_CONFIG_FILE_ERROR = "F0000"

INT_MIN = -(2**31)
CONFIG_FILENAME = "postgresql.conf"
AUTOCONF_FILENAME = "postgresql.auto.conf"

_C = GucContext
_S = GucSource


class GucError(Exception):
    """A parameter could not be set or shown: PostgreSQL's ereport(ERROR) with its fields."""

    def __init__(self, sqlstate: str, message: str, detail: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message
        self.detail = detail
        self.hint = hint


@dataclass
class GucMessage:
    """Something for the caller to log (elevel 'LOG', 'WARNING', 'DEBUG2', ...)."""

    elevel: str
    message: str
    detail: str | None = None
    hint: str | None = None
    sqlstate: str | None = None
    filename: str | None = None
    lineno: int | None = None


class ConfigErrors(Exception):
    """Start-up found errors in the configuration: ``messages`` has one per error.

    ``summary`` is PostgreSQL's closing 'configuration file "..." contains errors' when a
    configuration file had errors (None when only command-line options were bad).
    """

    def __init__(self, messages: list[GucMessage], summary: str | None = None) -> None:
        super().__init__("\n".join(m.message for m in messages))
        self.messages = messages
        self.summary = summary


# -- numbers and units ----------------------------------------------------------------

_WS = " \t\n\v\f\r"
_STRTOL = re.compile(r"[ \t\n\v\f\r]*([-+]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_STRTOD = re.compile(
    r"[ \t\n\v\f\r]*[-+]?(?:"
    r"0x(?:[0-9a-f]+(?:\.[0-9a-f]*)?|\.[0-9a-f]+)(?:p[-+]?[0-9]+)?"
    r"|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[-+]?[0-9]+)?"
    r"|inf(?:inity)?|nan(?:\([0-9a-z_]*\))?)",
    re.IGNORECASE,
)
_MEMORY_UNITS_HINT = 'Valid units for this parameter are "B", "kB", "MB", "GB", and "TB".'
_TIME_UNITS_HINT = 'Valid units for this parameter are "us", "ms", "s", "min", "h", and "d".'
_INT_RANGE_HINT = "Value exceeds integer range."

# Unit sizes in bytes and microseconds, largest first (PostgreSQL's conversion tables).
_MEMORY_UNITS = (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10), ("B", 1))
_TIME_UNITS = (("d", 86_400_000_000), ("h", 3_600_000_000), ("min", 60_000_000),
               ("s", 1_000_000), ("ms", 1_000), ("us", 1))
_BASE_UNIT_SIZE = {"B": 1, "kB": 1 << 10, "MB": 1 << 20, "8kB": BLCKSZ,
                   "ms": 1_000, "s": 1_000_000, "min": 60_000_000}
_TIME_BASE_UNITS = frozenset({"ms", "s", "min"})


@cache
def _unit_table(unit: str, wal_block_size: int) -> tuple[tuple[str, float], ...]:
    """(unit name, size in ``unit``) for every unit a parameter in ``unit`` accepts."""
    size = wal_block_size if unit == "XBLOCKS" else _BASE_UNIT_SIZE[unit]
    table = _TIME_UNITS if unit in _TIME_BASE_UNITS else _MEMORY_UNITS
    return tuple((name, float(Fraction(n, size))) for name, n in table)


def unit_name(unit: str | None, wal_block_size: int = 8192) -> str | None:
    """The unit as pg_settings.unit and range errors show it ('8kB' for blocks)."""
    if unit == "XBLOCKS":
        return f"{wal_block_size // 1024}kB" if wal_block_size % 1024 == 0 \
            else f"{wal_block_size}B"
    return unit


def _strtod(s: str) -> tuple[float, int, bool] | None:
    """C strtod: (value, end of the number, overflowed) or None if there is no number."""
    m = _STRTOD.match(s)
    if m is None:
        return None
    text = m.group(0).strip(_WS)
    low = text.lower()
    try:
        if "x" in low:
            val = float.fromhex(text)
        elif "nan" in low:
            val = math.nan
        else:
            val = float(text)
    except OverflowError:
        return math.inf, m.end(), True
    return val, m.end(), math.isinf(val) and "inf" not in low


def _convert_to_base_unit(value: float, text: str, unit: str,
                          wal_block_size: int) -> float | None:
    """``value`` followed by unit ``text`` (e.g. 'MB'), in the parameter's base unit."""
    n = 0
    while n < len(text) and n < 3 and text[n] not in _WS:
        n += 1
    if text[n:].strip(_WS):
        return None  # unit too long, or garbage after it
    table = _unit_table(unit, wal_block_size)
    for i, (name, mult) in enumerate(table):
        if name == text[:n]:
            cvalue = value * mult
            # A fractional value such as '1.5MB' is rounded to the next smaller unit.
            if i + 1 < len(table) and math.isfinite(cvalue):
                smaller = table[i + 1][1]
                cvalue = round(cvalue / smaller) * smaller
            return cvalue
    return None


def parse_int(value: str, unit: str | None = None,
              wal_block_size: int = 8192) -> tuple[int | None, str | None]:
    """PostgreSQL's parse_int: (value in the base unit, None) or (None, hint or None)."""
    m = _STRTOL.match(value)
    end, erange, val = 0, False, 0.0
    if m:
        sign, digits = m.groups()
        if digits[:2] in ("0x", "0X"):
            n = int(digits[2:], 16)
        else:
            n = int(digits, 8 if digits.startswith("0") else 10)
        val = float(-n if sign == "-" else n)
        end, erange = m.end(), n > 2**63 - 1 + (sign == "-")
    if value[end:end + 1] in (".", "e", "E") or erange:
        # Stopped at a decimal point or exponent, or overflowed: read it as a float.
        parsed = _strtod(value)
        if parsed is None:
            return None, None
        val, end, erange = parsed
    if end == 0 or erange or math.isnan(val):
        return None, None
    rest = value[end:].lstrip(_WS)
    if rest:
        if unit is None:
            return None, None
        converted = _convert_to_base_unit(val, rest, unit, wal_block_size)
        if converted is None:
            return None, _TIME_UNITS_HINT if unit in _TIME_BASE_UNITS else _MEMORY_UNITS_HINT
        val = converted
    if not math.isfinite(val) or not INT_MIN <= round(val) <= INT_MAX:
        return None, _INT_RANGE_HINT
    return round(val), None


def parse_real(value: str, unit: str | None = None,
               wal_block_size: int = 8192) -> tuple[float | None, str | None]:
    """PostgreSQL's parse_real: (value in the base unit, None) or (None, hint or None)."""
    parsed = _strtod(value)
    if parsed is None:
        return None, None
    val, end, erange = parsed
    if erange or math.isnan(val):
        return None, None
    rest = value[end:].lstrip(_WS)
    if rest:
        if unit is None:
            return None, None
        converted = _convert_to_base_unit(val, rest, unit, wal_block_size)
        if converted is None:
            return None, _TIME_UNITS_HINT if unit in _TIME_BASE_UNITS else _MEMORY_UNITS_HINT
        val = converted
    return val, None


def parse_bool(value: str) -> bool | None:
    """PostgreSQL's parse_bool: on/off, true/false, yes/no, 1/0 and unique prefixes."""
    v = value.lower()
    if not v:
        return None
    first = v[0]
    if first == "t":
        return True if "true".startswith(v) else None
    if first == "f":
        return False if "false".startswith(v) else None
    if first == "y":
        return True if "yes".startswith(v) else None
    if first == "n":
        return False if "no".startswith(v) else None
    if first == "o":  # 'o' alone is ambiguous
        return True if v == "on" else False if v in ("of", "off") else None
    if v in ("1", "0"):
        return v == "1"
    return None


_OCTAL_PARAMETERS = frozenset({"unix_socket_permissions", "log_file_mode", "data_directory_mode"})


def format_value(defn: ConfigVariable, value: GucValue, wal_block_size: int = 8192) -> str:
    """A value as SHOW prints it: the largest unit that represents it exactly."""
    if defn.vartype == "bool":
        return "on" if value else "off"
    if defn.vartype == "int":
        assert isinstance(value, int)
        if defn.key in _OCTAL_PARAMETERS:
            return f"{value:04o}"
        if defn.unit is None or value <= 0:
            return str(value)
        for name, mult in _unit_table(defn.unit, wal_block_size):
            if mult <= 1.0 or value % int(mult) == 0:
                return f"{round(value / mult)}{name}"
    if defn.vartype == "real":
        assert isinstance(value, float)
        if defn.unit is None or value <= 0:
            return f"{value:g}"
        shown, shown_unit = value, ""
        for name, mult in _unit_table(defn.unit, wal_block_size):
            shown, shown_unit = value / mult, name
            if shown > 0 and abs(round(shown) / shown - 1.0) <= 1e-8:
                break
        return f"{shown:g}{shown_unit}"
    return str(value)


# -- names and lists ------------------------------------------------------------------

_CUSTOM_NAME = re.compile(r"[A-Za-z_\u0080-\U0010ffff][A-Za-z_0-9$\u0080-\U0010ffff]*")


def valid_custom_variable_name(name: str) -> bool:
    """Two or more simple identifiers separated by dots (PostgreSQL 15's rule)."""
    parts = name.split(".")
    return len(parts) >= 2 and all(_CUSTOM_NAME.fullmatch(p) for p in parts)


def split_identifier_string(raw: str, separator: str = ",") -> list[str] | None:
    """PostgreSQL's SplitIdentifierString: unquoted names lower-cased; None if malformed."""
    ws = " \t\n\r\f"
    out: list[str] = []
    i, n = 0, len(raw)
    while i < n and raw[i] in ws:
        i += 1
    if i == n:
        return out
    while True:
        if i == n:
            return None  # nothing after a separator
        if raw[i] == '"':
            name = []
            i += 1
            while True:
                j = raw.find('"', i)
                if j < 0:
                    return None  # mismatched quotes
                name.append(raw[i:j])
                if raw[j + 1:j + 2] != '"':
                    i = j + 1
                    break
                name.append('"')
                i = j + 2
            out.append("".join(name))
        else:
            start = i
            while i < n and raw[i] != separator and raw[i] not in ws:
                i += 1
            if i == start:
                return None  # empty unquoted name
            out.append(raw[start:i].lower())
        while i < n and raw[i] in ws:
            i += 1
        if i == n:
            return out
        if raw[i] != separator:
            return None
        i += 1
        while i < n and raw[i] in ws:
            i += 1


def _truncate_identifier(value: str) -> str:
    data = value.encode("utf-8", "surrogateescape")
    if len(data) < NAMEDATALEN:
        return value
    return data[:NAMEDATALEN - 1].decode("utf-8", "ignore")


def _clean_ascii(value: str) -> str:
    """Replace every byte that is not printable ASCII by '?' (pg_clean_ascii)."""
    data = value.encode("utf-8", "surrogateescape")
    return "".join(chr(b) if 32 <= b <= 126 else "?" for b in data)


# -- check hooks ----------------------------------------------------------------------

class _CheckFailed(Exception):
    """A check hook rejected a value: 'invalid value for parameter' with this detail."""

    def __init__(self, detail: str | None = None, hint: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.hint = hint


_DATE_STYLES = {"iso": "ISO", "sql": "SQL", "postgres": "Postgres", "german": "German"}


def _split_datestyle(value: str) -> tuple[str, str]:
    style, _, order = value.partition(", ")
    return style, order


def _check_datestyle(s: "Settings", var: "_Var", value: str, source: GucSource) -> str:
    """check_datestyle: canonical 'Style, ORDER'; unspecified parts keep current values."""
    toks = split_identifier_string(value)
    if toks is None:
        raise _CheckFailed("List syntax is invalid.")
    style, order = _split_datestyle(str(var.value))
    have_style = have_order = False
    ok = True
    for tok in toks:
        low = tok.lower()
        if low in _DATE_STYLES:
            if have_style and style != _DATE_STYLES[low]:
                ok = False
            style, have_style = _DATE_STYLES[low], True
            if low == "german" and not have_order:
                order = "DMY"
        elif low in ("ymd", "dmy", "mdy", "us") or low.startswith(("euro", "noneuro")):
            new = ("YMD" if low == "ymd" else "DMY" if low == "dmy" or low.startswith("euro")
                   else "MDY")
            if have_order and order != new:
                ok = False
            order, have_order = new, True
        elif low == "default":
            reset_style, reset_order = _split_datestyle(str(var.reset_value))
            style = style if have_style else reset_style
            order = order if have_order else reset_order
        else:
            raise _CheckFailed(f'Unrecognized key word: "{tok}".')
    if not ok:
        raise _CheckFailed('Conflicting "datestyle" specifications.')
    return f"{style}, {order}"


@cache
def _zone_names() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


_POSIX_TZ = re.compile(r"(?:[A-Za-z]{3,}|<[-+0-9A-Za-z]+>)[-+]?\d{1,3}(?::\d{2}){0,2}"
                       r"(?:(?:[A-Za-z]{3,}|<[-+0-9A-Za-z]+>)(?:[-+]?\d{1,3}(?::\d{2}){0,2})?"
                       r"(?:,[-+/0-9A-Za-z.:]+)?)?")


def _zone_name(value: str) -> str | None:
    """The zone's canonical spelling (lookups ignore case, like pg_tzset), or None."""
    canonical = _zone_names().get(value.lower())
    if canonical is not None:
        return canonical
    return value if _POSIX_TZ.fullmatch(value) else None


def _offset_zone_name(gmtoffset: int) -> str:
    """pg_tzset_offset's name for a fixed offset in seconds west of Greenwich."""
    absoff = abs(gmtoffset)
    text = f"{absoff // 3600:02d}"
    if absoff % 3600:
        text += f":{absoff % 3600 // 60:02d}"
        if absoff % 60:
            text += f":{absoff % 60:02d}"
    return f"<-{text}>+{text}" if gmtoffset > 0 else f"<+{text}>-{text}"


def _check_timezone(s: "Settings", var: "_Var", value: str, source: GucSource) -> str:
    parsed = _strtod(value)
    if parsed is not None and parsed[1] == len(value) and math.isfinite(parsed[0]):
        # A number of hours east of Greenwich (SQL sign convention).
        gmtoffset = int(-parsed[0] * 3600)
        if abs(gmtoffset) >= 168 * 3600:
            raise _CheckFailed()
        return _offset_zone_name(gmtoffset)
    name = _zone_name(value)
    if name is None:
        raise _CheckFailed()
    return name


def _check_log_timezone(s: "Settings", var: "_Var", value: str, source: GucSource) -> str:
    name = _zone_name(value)
    if name is None:
        raise _CheckFailed()
    return name


_ENCODING_NAMES = (
    "SQL_ASCII", "EUC_JP", "EUC_CN", "EUC_KR", "EUC_TW", "EUC_JIS_2004", "UTF8",
    "MULE_INTERNAL", "LATIN1", "LATIN2", "LATIN3", "LATIN4", "LATIN5", "LATIN6", "LATIN7",
    "LATIN8", "LATIN9", "LATIN10", "WIN1256", "WIN1258", "WIN866", "WIN874", "KOI8R",
    "WIN1251", "WIN1252", "ISO_8859_5", "ISO_8859_6", "ISO_8859_7", "ISO_8859_8", "WIN1250",
    "WIN1253", "WIN1254", "WIN1255", "WIN1257", "KOI8U", "SJIS", "BIG5", "GBK", "UHC",
    "GB18030", "JOHAB", "SHIFT_JIS_2004",
)
_ENCODING_ALIASES = {
    "abc": "WIN1258", "alt": "WIN866", "iso88591": "LATIN1", "iso88592": "LATIN2",
    "iso88593": "LATIN3", "iso88594": "LATIN4", "iso88599": "LATIN5", "iso885910": "LATIN6",
    "iso885913": "LATIN7", "iso885914": "LATIN8", "iso885915": "LATIN9",
    "iso885916": "LATIN10", "koi8": "KOI8R", "mskanji": "SJIS", "shiftjis": "SJIS",
    "tcvn": "WIN1258", "tcvn5712": "WIN1258", "unicode": "UTF8", "vscii": "WIN1258",
    "win": "WIN1251", "win932": "SJIS", "win936": "GBK", "win949": "UHC", "win950": "BIG5",
    "windows932": "SJIS", "windows936": "GBK", "windows949": "UHC", "windows950": "BIG5",
}


def _clean_encoding_name(name: str) -> str:
    return "".join(c.lower() for c in name if c.isascii() and c.isalnum())


@cache
def _encodings() -> dict[str, str]:
    table = {_clean_encoding_name(name): name for name in _ENCODING_NAMES}
    table.update(_ENCODING_ALIASES)
    for name in _ENCODING_NAMES:
        if name.startswith("WIN"):
            table["windows" + name[3:]] = name
    return table


def _check_client_encoding(s: "Settings", var: "_Var", value: str, source: GucSource) -> str:
    canonical = _encodings().get(_clean_encoding_name(value))
    if canonical is None:
        raise _CheckFailed()
    # Like PostgreSQL, keep 'UNICODE' as sent: old JDBC drivers read it back.
    return value if value == "UNICODE" else canonical


_LOG_DESTINATIONS = frozenset({"stderr", "jsonlog"})
_UNSUPPORTED_LOG_DESTINATIONS = frozenset({"csvlog", "syslog"})


def _check_log_destination(s: "Settings", var: "_Var", value: str, source: GucSource) -> str:
    toks = split_identifier_string(value)
    if toks is None:
        raise _CheckFailed("List syntax is invalid.")
    for tok in toks:
        if tok in _UNSUPPORTED_LOG_DESTINATIONS:
            raise _CheckFailed(f'Log destination "{tok}" is not supported by tusk.',
                               'Use "stderr", "jsonlog", or "stderr,jsonlog".')
        if tok not in _LOG_DESTINATIONS:
            raise _CheckFailed(f'Unrecognized key word: "{tok}".')
    return value


def _check_clean_ascii(s: "Settings", var: "_Var", value: str, source: GucSource) -> str:
    return _clean_ascii(value)


def _check_session_authorization(s: "Settings", var: "_Var", value: str,
                                 source: GucSource) -> str:
    if (source > _S.OVERRIDE and s._auth_user is not None and not s._auth_superuser
            and value != s._auth_user):
        raise GucError(ERRCODE_INSUFFICIENT_PRIVILEGE,
                       "permission denied to set session authorization")
    return value


_CheckHook = Callable[["Settings", "_Var", str, GucSource], str]
def _check_fault_injection(s: "Settings", var: "_Var", value: str, source: GucSource) -> str:
    from storage.fd import parse_fault_spec

    try:
        parse_fault_spec(value)
    except ValueError as exc:
        raise _CheckFailed(str(exc)) from None
    return value


_STRING_CHECK_HOOKS: dict[str, _CheckHook] = {
    "debug_fault_injection": _check_fault_injection,
    "datestyle": _check_datestyle,
    "timezone": _check_timezone,
    "log_timezone": _check_log_timezone,
    "client_encoding": _check_client_encoding,
    "log_destination": _check_log_destination,
    "application_name": _check_clean_ascii,
    "cluster_name": _check_clean_ascii,
    "session_authorization": _check_session_authorization,
}


def log_destinations(value: str) -> list[str]:
    """The destinations named by a (valid) log_destination value, e.g. ['stderr']."""
    return split_identifier_string(value) or []


# -- per-variable state ---------------------------------------------------------------

class _Var:
    """A parameter's current, reset and file state (the mutable half of config_generic)."""

    __slots__ = ("defn", "name", "value", "source", "reset_value", "reset_source",
                 "sourcefile", "sourceline", "pending_restart", "in_file")

    def __init__(self, defn: ConfigVariable) -> None:
        self.defn = defn
        self.name = defn.name
        self.value: GucValue = defn.boot_val
        self.source = _S.DEFAULT
        self.reset_value: GucValue = defn.boot_val
        self.reset_source = _S.DEFAULT
        self.sourcefile: str | None = None
        self.sourceline: int | None = None
        self.pending_restart = False
        self.in_file = False


@dataclass
class _Stacked:
    """What a variable was before the current transaction changed it (GucStack)."""

    state: str  # 'set', 'local' or 'set_local', as GUC_SET, GUC_LOCAL, GUC_SET_LOCAL
    prior: tuple[GucValue, GucSource]
    masked: tuple[GucValue, GucSource] | None = None


_XACT_VARIABLES = ("transaction_isolation", "transaction_read_only")
_XACT_FOLLOWERS = {"default_" + name: name for name in _XACT_VARIABLES}


# Assign hooks (PostgreSQL's GucEnumAssignHook & co.): modules that cache a
# parameter register a function called with each new value of the process's
# active Settings — at start, on SET, on reload and when a transaction ends.
ASSIGN_HOOKS: dict[str, Callable[[GucValue], None]] = {}
active_settings: "Settings | None" = None


def register_assign_hook(name: str, hook: Callable[[GucValue], None]) -> None:
    ASSIGN_HOOKS[name.lower()] = hook


def activate(settings: "Settings") -> None:
    """Make ``settings`` the process's configuration and run every assign hook once."""
    global active_settings
    active_settings = settings
    for key, hook in ASSIGN_HOOKS.items():
        if key in settings._vars:
            hook(settings._vars[key].value)


class Settings:
    """The configuration of one process."""

    def __init__(self, *, wal_block_size: int = 8192, wal_segment_size: int = 16 * 1024 * 1024,
                 data_checksums: bool = False) -> None:
        self.wal_block_size = wal_block_size
        self.wal_segment_size = wal_segment_size
        self._vars: dict[str, _Var] = {}
        self._values: dict[str, GucValue] = {}  # lower-case and canonical names -> value
        self._stack: dict[str, _Stacked] | None = None  # None outside a transaction
        self._reported: dict[str, str] = {}
        # Values stored so far, and that count at the last reported_changes():
        # equal means no GUC_REPORT parameter can have changed since.
        self._stores = 0
        self._stores_reported = -1
        self._is_superuser = True
        self._auth_user: str | None = None
        self._auth_superuser = True
        for defn in TABLE:
            self._add(defn)
        self._report_vars = [v for v in self._vars.values() if v.defn.report]
        self._force("wal_block_size", wal_block_size)
        self._force("wal_segment_size", wal_segment_size)
        self._force("data_checksums", data_checksums)
        self._force("is_superuser", True)

    # -- reading ----------------------------------------------------------------------

    def get(self, name: str) -> GucValue:
        """The typed value in the base unit (shared_buffers: buffers, checkpoint_timeout: s)."""
        try:
            return self._values[name]
        except KeyError:
            pass
        try:
            return self._values[name.lower()]
        except KeyError:
            raise GucError(ERRCODE_UNDEFINED_OBJECT,
                           f'unrecognized configuration parameter "{name}"') from None

    def show(self, name: str) -> str:
        """The value exactly as PostgreSQL's SHOW prints it."""
        return self._show(self._find(name))

    def show_all(self) -> list[tuple[str, str, str]]:
        """SHOW ALL: (name, setting, description), sorted by name."""
        shown = [v for v in self._vars.values() if not v.defn.no_show_all]
        shown.sort(key=lambda v: v.name.lower())
        return [(v.name, self._show(v), v.defn.short_desc) for v in shown]

    def describe(self, name: str) -> ConfigVariable:
        """The definition of a parameter (raises GucError if unknown)."""
        return self._find(name).defn

    def source(self, name: str) -> GucSource:
        """Where the current value came from (pg_settings.source)."""
        return self._find(name).source

    def sourcefile(self, name: str) -> tuple[str | None, int | None]:
        """The file and line that set the reset value, as pg_settings shows them."""
        var = self._find(name)
        return var.sourcefile, var.sourceline

    def pending_restart(self, name: str) -> bool:
        """True if the configuration file asks for a value that needs a restart."""
        return self._find(name).pending_restart

    def wal_buffers_blocks(self) -> int:
        """wal_buffers in WAL blocks, with -1 resolved as XLOGChooseNumBuffers does."""
        raw = self.get("wal_buffers")
        assert isinstance(raw, int)
        if raw != -1:
            return raw
        nbuffers = self.get("shared_buffers")
        assert isinstance(nbuffers, int)
        return max(min(nbuffers // 32, self.wal_segment_size // self.wal_block_size), 8)

    def reported_changes(self) -> list[tuple[str, str]]:
        """GUC_REPORT parameters whose shown value changed since the last call (first: all)."""
        if self._stores == self._stores_reported:
            return []  # nothing was stored since the last call (BEGIN, END: the usual case)
        self._stores_reported = self._stores
        changed = []
        for var in self._report_vars:
            shown = self._show(var)
            if self._reported.get(var.defn.key) != shown:
                self._reported[var.defn.key] = shown
                changed.append((var.name, shown))
        return changed

    # -- the session --------------------------------------------------------------------

    @property
    def is_superuser(self) -> bool:
        """Whether the current user is a superuser; the backend sets it after login."""
        return self._is_superuser

    @is_superuser.setter
    def is_superuser(self, value: bool) -> None:
        self._is_superuser = bool(value)
        self._force("is_superuser", bool(value))

    def set_session_user(self, user: str, is_superuser: bool) -> None:
        """After authentication: session_authorization and is_superuser for this login."""
        self._auth_user = user
        self._auth_superuser = is_superuser
        self.is_superuser = is_superuser
        self._set_option("session_authorization", user, _C.BACKEND, _S.OVERRIDE)

    @property
    def in_transaction(self) -> bool:
        return self._stack is not None

    def set(self, name: str, value: str | None, *, context: GucContext = GucContext.USERSET,
            source: GucSource = GucSource.SESSION, is_local: bool = False) -> None:
        """SET (value None: RESET), enforcing contexts as set_config_option does."""
        self._set_option(name, value, context, source, is_local)

    def reset_all(self) -> None:
        """RESET ALL: user-settable parameters that were SET go back to their reset values."""
        for var in self._vars.values():
            if var.defn.context not in (_C.SUSET, _C.USERSET) or var.defn.no_reset_all:
                continue
            if var.source <= _S.OVERRIDE:
                continue
            self._push(var, is_local=False)
            self._assign(var, var.reset_value, var.reset_source)

    def start_transaction(self) -> None:
        """A transaction block begins: later SETs are undone if it aborts."""
        if self._stack is None:
            self._stack = {}
            self._reset_transaction_variables()

    def end_transaction(self, commit: bool) -> None:
        """End of the transaction: SET LOCAL values end; on abort SET values are undone too."""
        if self._stack is None:
            return
        stack, self._stack = self._stack, None
        for key, entry in stack.items():
            var = self._vars[key]
            if not commit or entry.state == "local":
                self._assign(var, *entry.prior)
            elif entry.state == "set_local":
                assert entry.masked is not None
                self._assign(var, *entry.masked)
        self._reset_transaction_variables()

    # -- configuration files ------------------------------------------------------------

    def load_initial(self, datadir: str,
                     options: Iterable[tuple[str, str]] = ()) -> list[GucMessage]:
        """Server start: postgresql.conf, postgresql.auto.conf, then ``-c`` options.

        Raises ConfigErrors listing every error; returns the informational messages.
        """
        main, auto = self._config_paths(datadir)
        file_errors: list[ConfigFileError] = []
        notices: list[str] = []
        items = parse_config_file(main, errors=file_errors, notices=notices)
        items += parse_config_file(auto, errors=file_errors, notices=notices, missing_ok=True)
        errors = [_file_error_message(e, "LOG") for e in file_errors]
        conf_with_error = main
        for item in items:
            if self._lookup(item.name) is None and not valid_custom_variable_name(item.name):
                errors.append(_unrecognized_message(item, "LOG"))
        for item in _last_occurrences(items):
            if self._lookup(item.name) is None and not valid_custom_variable_name(item.name):
                continue
            try:
                self._set_option(item.name, item.value, _C.POSTMASTER, _S.FILE)
            except GucError as e:
                errors.append(_item_error_message(e, item, "LOG"))
                conf_with_error = item.filename
                continue
            self._set_sourcefile(item)
        file_had_errors = bool(errors)
        for name, value in options:
            try:
                self._set_option(name, value, _C.POSTMASTER, _S.ARGV)
            except GucError as e:
                errors.append(GucMessage(
                    "FATAL", f'{e.message} in command-line option "-c {name}={value}"',
                    e.detail, e.hint, e.sqlstate))
        if errors:
            summary = (f'configuration file "{conf_with_error}" contains errors'
                       if file_had_errors else None)
            raise ConfigErrors(errors, summary)
        return [GucMessage("LOG", n) for n in notices]

    def reload(self, datadir: str, *, is_postmaster: bool) -> list[GucMessage]:
        """SIGHUP: re-read the configuration files as ProcessConfigFileInternal does."""
        elevel = "LOG" if is_postmaster else "DEBUG2"
        main, auto = self._config_paths(datadir)
        file_errors: list[ConfigFileError] = []
        notices: list[str] = []
        msgs: list[GucMessage] = []
        conf_with_error = main
        items = parse_config_file(main, errors=file_errors, notices=notices)
        if not file_errors:
            items += parse_config_file(auto, errors=file_errors, notices=notices,
                                       missing_ok=True)
            if file_errors:
                conf_with_error = auto
        msgs += [GucMessage("LOG", n) for n in notices]
        if file_errors:
            msgs += [_file_error_message(e, elevel) for e in file_errors]
            msgs.append(_contains_errors(conf_with_error, "no changes were applied", elevel))
            return msgs

        # Every name must be known (or a valid custom name) before anything is applied.
        error = False
        for var in self._vars.values():
            var.in_file = False
        for item in items:
            var = self._lookup(item.name)
            if var is not None:
                var.in_file = True
            elif not valid_custom_variable_name(item.name):
                msgs.append(_unrecognized_message(item, elevel))
                error, conf_with_error = True, item.filename
        if error:
            msgs.append(_contains_errors(conf_with_error, "no changes were applied", elevel))
            return msgs

        # Parameters no longer in the file go back to their defaults.
        for var in sorted(self._vars.values(), key=lambda v: v.name.lower()):
            if var.reset_source != _S.FILE or var.in_file:
                continue
            if var.defn.context < _C.SIGHUP:
                var.pending_restart = True
                msgs.append(GucMessage(
                    elevel,
                    f'parameter "{var.name}" cannot be changed without restarting the server',
                    sqlstate=ERRCODE_CANT_CHANGE_RUNTIME_PARAM))
                error = True
                continue
            var.reset_source = _S.DEFAULT
            if var.source == _S.FILE:
                var.source = _S.DEFAULT
            if self._stack and var.defn.key in self._stack:
                entry = self._stack[var.defn.key]
                if entry.prior[1] == _S.FILE:
                    entry.prior = (entry.prior[0], _S.DEFAULT)
            var.sourcefile = var.sourceline = None
            if self._set_option(var.name, None, _C.SIGHUP, _S.DEFAULT,
                                in_postmaster=is_postmaster) > 0:
                msgs.append(GucMessage(
                    elevel,
                    f'parameter "{var.name}" removed from configuration file, reset to default'))

        # Apply the values; a bad one is reported and the others still apply.
        for item in _last_occurrences(items):
            before = self._lookup(item.name)
            pre = before.value if before is not None else ""
            try:
                applied = self._set_option(item.name, item.value, _C.SIGHUP, _S.FILE,
                                           in_postmaster=is_postmaster)
            except GucError as e:
                msgs.append(_item_error_message(e, item, elevel))
                error, conf_with_error = True, item.filename
                continue
            var = self._find(item.name)
            if applied > 0 and is_postmaster and var.value != pre:
                msgs.append(GucMessage(
                    elevel,
                    with_location(f'parameter "{item.name}" changed to "{item.value}"',
                                  item.filename, item.lineno),
                    filename=item.filename, lineno=item.lineno))
            self._set_sourcefile(item)
        if error:
            msgs.append(_contains_errors(conf_with_error, "unaffected changes were applied",
                                         elevel))
        return msgs

    # -- internals ----------------------------------------------------------------------

    def _add(self, defn: ConfigVariable) -> _Var:
        var = _Var(defn)
        self._vars[defn.key] = var
        self._store(var)
        return var

    def _store(self, var: _Var) -> None:
        self._stores += 1
        hook = ASSIGN_HOOKS.get(var.defn.key)
        if hook is not None and self is active_settings:
            hook(var.value)
        self._values[var.defn.key] = var.value
        if var.name != var.defn.key:
            self._values[var.name] = var.value
        follower = _XACT_FOLLOWERS.get(var.defn.key)
        if follower is not None and self._stack is None and follower in self._vars:
            # Outside a transaction, transaction_* show what the next one will get.
            self._vars[follower].value = self._values[follower] = var.value

    def _assign(self, var: _Var, value: GucValue, source: GucSource) -> None:
        var.value = value
        var.source = source
        self._store(var)

    def _force(self, name: str, value: GucValue) -> None:
        """Set an internal value computed at run time (PGC_S_DYNAMIC_DEFAULT)."""
        var = self._vars[name]
        var.reset_value = value
        var.reset_source = _S.DYNAMIC_DEFAULT
        self._assign(var, value, _S.DYNAMIC_DEFAULT)

    def _lookup(self, name: str) -> _Var | None:
        return self._vars.get(name.lower())

    def _find(self, name: str, create_placeholder: bool = False) -> _Var:
        var = self._vars.get(name.lower())
        if var is not None:
            return var
        if create_placeholder and "." in name:
            if not valid_custom_variable_name(name):
                raise GucError(
                    ERRCODE_INVALID_NAME, f'invalid configuration parameter name "{name}"',
                    "Custom parameter names must be two or more simple identifiers "
                    "separated by dots.")
            return self._add(ConfigVariable(
                name, "string", _C.USERSET, "Customized Options", "", "",
                no_show_all=True, not_in_sample=True))
        raise GucError(ERRCODE_UNDEFINED_OBJECT,
                       f'unrecognized configuration parameter "{name}"')

    def _show(self, var: _Var) -> str:
        if var.defn.key == "wal_buffers" and var.value == -1:
            return format_value(var.defn, self.wal_buffers_blocks(), self.wal_block_size)
        return format_value(var.defn, var.value, self.wal_block_size)

    def _set_sourcefile(self, item: ConfigItem) -> None:
        var = self._lookup(item.name)
        if var is not None:
            var.sourcefile, var.sourceline = item.filename, item.lineno

    def _reset_transaction_variables(self) -> None:
        """Each transaction starts with the default isolation level and read-only state."""
        # Not counted in _stores: transaction_* parameters are not GUC_REPORT.
        for name in _XACT_VARIABLES:
            self._vars[name].value = self._values[name] = self._values["default_" + name]

    def _push(self, var: _Var, is_local: bool) -> None:
        """Remember the value from before the transaction changed it (push_old_value)."""
        if self._stack is None:
            return
        entry = self._stack.get(var.defn.key)
        if entry is None:
            self._stack[var.defn.key] = _Stacked("local" if is_local else "set",
                                                 (var.value, var.source))
        elif not is_local:
            entry.state, entry.masked = "set", None  # SET overrides earlier actions
        elif entry.state == "set":
            entry.state, entry.masked = "set_local", (var.value, var.source)

    def _check_context(self, var: _Var, name: str, context: GucContext, source: GucSource,
                       in_postmaster: bool) -> bool | None:
        """set_config_option's context rules: raise, or return True to prohibit a change
        (a postmaster parameter from the file), None to ignore silently, False if allowed."""
        record = var.defn.context
        if record == _C.INTERNAL:
            if context != _C.INTERNAL:
                raise GucError(ERRCODE_CANT_CHANGE_RUNTIME_PARAM,
                               f'parameter "{name}" cannot be changed')
        elif record == _C.POSTMASTER:
            if context == _C.SIGHUP:
                return True
            if context != _C.POSTMASTER:
                raise GucError(
                    ERRCODE_CANT_CHANGE_RUNTIME_PARAM,
                    f'parameter "{name}" cannot be changed without restarting the server')
        elif record == _C.SIGHUP:
            if context not in (_C.SIGHUP, _C.POSTMASTER):
                raise GucError(ERRCODE_CANT_CHANGE_RUNTIME_PARAM,
                               f'parameter "{name}" cannot be changed now')
        elif record in (_C.SU_BACKEND, _C.BACKEND):
            if record == _C.SU_BACKEND and context == _C.BACKEND:
                raise GucError(ERRCODE_INSUFFICIENT_PRIVILEGE,
                               f'permission denied to set parameter "{name}"')
            if context == _C.SIGHUP:
                # The file's value is for backends started later: only the postmaster
                # takes it.
                if not in_postmaster:
                    return None
            elif (context not in (_C.POSTMASTER, _C.BACKEND, _C.SU_BACKEND)
                  and source != _S.CLIENT):
                raise GucError(ERRCODE_CANT_CHANGE_RUNTIME_PARAM,
                               f'parameter "{name}" cannot be set after connection start')
        elif record == _C.SUSET:
            if context in (_C.USERSET, _C.BACKEND):
                raise GucError(ERRCODE_INSUFFICIENT_PRIVILEGE,
                               f'permission denied to set parameter "{name}"')
        return False

    def _set_option(self, name: str, value: str | None, context: GucContext,
                    source: GucSource, is_local: bool = False, *,
                    in_postmaster: bool = True) -> int:
        """set_config_option: 1 if the value was set, -1 if not (overridden); else raises."""
        var = self._find(name, create_placeholder=True)
        if self._is_superuser:
            if context == _C.USERSET:
                context = _C.SUSET
            elif context == _C.BACKEND:
                context = _C.SU_BACKEND
        prohibit = self._check_context(var, name, context, source, in_postmaster)
        if prohibit is None:
            return -1
        change = True
        if self._stack is None and source >= _S.INTERACTIVE and (
                is_local or var.defn.key in _XACT_VARIABLES):
            change = False  # only for the implicit transaction: no lasting effect
        make_default = change and source <= _S.OVERRIDE and (
            value is not None or source == _S.DEFAULT)
        if var.source > source:
            if change and not make_default:
                return -1  # a higher-priority source set it
            change = False

        newval: GucValue
        if value is not None:
            newval = self._parse_value(var, name, value, source)
        elif source == _S.DEFAULT:
            newval = var.defn.boot_val
        else:
            newval, source = var.reset_value, var.reset_source

        if prohibit:
            if newval != var.value:
                var.pending_restart = True
                raise GucError(
                    ERRCODE_CANT_CHANGE_RUNTIME_PARAM,
                    f'parameter "{name}" cannot be changed without restarting the server')
            var.pending_restart = False
            return -1
        if change:
            if not make_default:
                self._push(var, is_local)
            self._assign(var, newval, source)
        if make_default:
            if var.reset_source <= source:
                var.reset_value, var.reset_source = newval, source
            entry = self._stack.get(var.defn.key) if self._stack else None
            if entry is not None and entry.prior[1] <= source:
                entry.prior = (newval, source)
        return 1 if change else -1

    def _parse_value(self, var: _Var, name: str, value: str, source: GucSource) -> GucValue:
        """parse_and_validate_value: the typed value, or GucError 22023 as PostgreSQL words it."""
        defn = var.defn
        if defn.vartype == "bool":
            b = parse_bool(value)
            if b is None:
                raise GucError(ERRCODE_INVALID_PARAMETER_VALUE,
                               f'parameter "{name}" requires a Boolean value')
            return b
        if defn.vartype in ("int", "real"):
            parse = parse_int if defn.vartype == "int" else parse_real
            num, hint = parse(value, defn.unit, self.wal_block_size)
            if num is None:
                raise GucError(ERRCODE_INVALID_PARAMETER_VALUE,
                               f'invalid value for parameter "{name}": "{value}"', hint=hint)
            assert defn.min_val is not None and defn.max_val is not None
            if not defn.min_val <= num <= defn.max_val:
                unit = unit_name(defn.unit, self.wal_block_size)
                spec = "d" if defn.vartype == "int" else "g"
                raise GucError(
                    ERRCODE_INVALID_PARAMETER_VALUE,
                    f'{num:{spec}}{" " + unit if unit else ""} is outside the valid range for '
                    f'parameter "{name}" ({defn.min_val:{spec}} .. {defn.max_val:{spec}})')
            if defn.key == "wal_buffers" and num != -1:
                num = max(num, 4)  # check_wal_buffers: at least 4 blocks
            return num
        if defn.vartype == "enum":
            canonical = _enum_lookup(defn, value)
            if canonical is None:
                raise GucError(ERRCODE_INVALID_PARAMETER_VALUE,
                               f'invalid value for parameter "{name}": "{value}"',
                               hint=f'Available values: {", ".join(defn.enum_values)}.')
            return canonical
        if defn.is_name:
            value = _truncate_identifier(value)
        hook = _STRING_CHECK_HOOKS.get(defn.key)
        if hook is None:
            return value
        try:
            return hook(self, var, value, source)
        except _CheckFailed as e:
            raise GucError(ERRCODE_INVALID_PARAMETER_VALUE,
                           f'invalid value for parameter "{defn.name}": "{value}"',
                           e.detail, e.hint) from None

    @staticmethod
    def _config_paths(datadir: str) -> tuple[str, str]:
        datadir = os.path.abspath(datadir)
        return os.path.join(datadir, CONFIG_FILENAME), os.path.join(datadir, AUTOCONF_FILENAME)


@cache
def _enum_spellings(defn: ConfigVariable) -> dict[str, str]:
    table = {v.lower(): v for v in defn.enum_values}
    table.update((alias.lower(), canonical) for alias, canonical in defn.enum_aliases)
    return table


def _enum_lookup(defn: ConfigVariable, value: str) -> str | None:
    return _enum_spellings(defn).get(value.lower())


def _last_occurrences(items: list[ConfigItem]) -> list[ConfigItem]:
    """Items in file order, without those a later line for the same name overrides."""
    last = {item.name: i for i, item in enumerate(items)}
    return [item for i, item in enumerate(items) if last[item.name] == i]


def _file_error_message(err: ConfigFileError, elevel: str) -> GucMessage:
    return GucMessage(elevel, str(err), sqlstate=err.sqlstate, filename=err.filename,
                      lineno=err.lineno)


def _unrecognized_message(item: ConfigItem, elevel: str) -> GucMessage:
    return GucMessage(
        elevel,
        f'unrecognized configuration parameter "{item.name}" '
        f'in file "{item.filename}" line {item.lineno}',
        sqlstate=ERRCODE_UNDEFINED_OBJECT, filename=item.filename, lineno=item.lineno)


def _item_error_message(err: GucError, item: ConfigItem, elevel: str) -> GucMessage:
    return GucMessage(elevel, with_location(err.message, item.filename, item.lineno),
                      err.detail, err.hint, err.sqlstate, item.filename, item.lineno)


def _contains_errors(filename: str, outcome: str, elevel: str) -> GucMessage:
    return GucMessage(elevel, f'configuration file "{filename}" contains errors; {outcome}',
                      sqlstate=ERRCODE_CONFIG_FILE_ERROR)
