"""Type input/output, send/receive and casts — mirrors the I/O functions of
src/backend/utils/adt/ (int.c, int8.c, float.c, bool.c, varchar.c, varlena.c,
name.c, numeric.c, timestamp.c) and the cast rules of parser/parse_coerce.c.

Datums are the Python values described in catalog/pg_type.py. Input and output
functions are looked up once per statement (by the planner or the protocol
layer) and return plain callables, so nothing here is looked up per row.

Where tusk differs: DateStyle output is always ISO; timestamps accept the ISO
forms (and 'now', 'today', 'epoch', 'infinity'), not PostgreSQL's every
historical spelling; numeric values cannot be stored in tables yet.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from catalog import pg_type as t
from catalog.pg_type import format_type
from utils.elog import PgError

TEXT_TYPES = frozenset({t.TEXTOID, t.VARCHAROID, t.BPCHAROID, t.NAMEOID, t.UNKNOWNOID})
INT_RANGE = {t.INT2OID: (-(2**15), 2**15 - 1), t.INT4OID: (-(2**31), 2**31 - 1),
             t.INT8OID: (-(2**63), 2**63 - 1), t.OIDOID: (0, 2**32 - 1),
             t.XID8OID: (0, 2**64 - 1), t.REGCLASSOID: (0, 2**32 - 1),
             t.REGTYPEOID: (0, 2**32 - 1), t.REGNAMESPACEOID: (0, 2**32 - 1),
             t.REGPROCOID: (0, 2**32 - 1), t.XIDOID: (0, 2**32 - 1), t.CIDOID: (0, 2**32 - 1)}
INTEGER_TYPES = frozenset({t.INT2OID, t.INT4OID, t.INT8OID})
FLOAT_TYPES = frozenset({t.FLOAT4OID, t.FLOAT8OID})
TIMESTAMP_TYPES = frozenset({t.TIMESTAMPOID, t.TIMESTAMPTZOID})
# Implicit casts between the numeric types (pg_cast castcontext 'i'), as ranks.
NUMERIC_RANK = {t.INT2OID: 0, t.INT4OID: 1, t.INT8OID: 2, t.NUMERICOID: 3,
                t.FLOAT4OID: 4, t.FLOAT8OID: 5}

POSTGRES_EPOCH = datetime(2000, 1, 1)
POSTGRES_EPOCH_TZ = datetime(2000, 1, 1, tzinfo=UTC)
USECS_PER_SEC = 1_000_000
DT_NOBEGIN = -(2**63)        # -infinity
DT_NOEND = 2**63 - 1         # infinity
UNIX_EPOCH_USECS = -946_684_800 * USECS_PER_SEC  # 1970-01-01 in PostgreSQL's epoch


def type_name(oid: int) -> str:
    return format_type(oid)


def invalid_input(oid: int, text: str) -> PgError:
    return PgError("22P02", f'invalid input syntax for type {type_name(oid)}: "{text}"')


# =============================================================================================
# Input functions (text → datum)
# =============================================================================================

_BOOL_IN = {"t": True, "tr": True, "tru": True, "true": True, "y": True, "ye": True,
            "yes": True, "on": True, "1": True, "f": False, "fa": False, "fal": False,
            "fals": False, "false": False, "n": False, "no": False, "of": False, "off": False,
            "0": False}
_INT_TEXT = re.compile(r"\s*[-+]?\d+\s*")
_FLOAT_TEXT = re.compile(r"\s*[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?|"
                         r"(?i:nan|inf|infinity))\s*")


def _int_in(oid: int) -> Callable[[str], int]:
    lo, hi = INT_RANGE[oid]

    def int_in(text: str) -> int:
        # int() is the fast path; it also takes '1_000' and other forms int4in
        # refuses, which the regular expression then rejects.
        try:
            v = int(text)
        except ValueError:
            raise invalid_input(oid, text) from None
        if ("_" in text or not text.isascii()) and not _INT_TEXT.fullmatch(text):
            raise invalid_input(oid, text)
        if not lo <= v <= hi:
            raise PgError("22003", f'value "{text}" is out of range for type {type_name(oid)}')
        return v
    return int_in


def _bool_in(text: str) -> bool:
    v = _BOOL_IN.get(text.strip().lower())
    if v is None:
        raise invalid_input(t.BOOLOID, text)
    return v


def _float_in(oid: int) -> Callable[[str], float]:
    def float_in(text: str) -> float:
        if not _FLOAT_TEXT.fullmatch(text):
            raise invalid_input(oid, text)
        v = float(text)
        if oid == t.FLOAT4OID and not math.isinf(v):
            v = _to_float4(v, text)
        if math.isinf(v) and "inf" not in text.lower():
            raise PgError("22003", f'"{text.strip()}" is out of range for type '
                                   f"{type_name(oid)}")
        return v
    return float_in


def _to_float4(v: float, text: str | None = None) -> float:
    try:
        return struct.unpack("<f", struct.pack("<f", v))[0]
    except OverflowError:
        if text is not None:
            raise PgError("22003", f'"{text.strip()}" is out of range for type real') from None
        raise PgError("22003", "value out of range: overflow") from None


def _numeric_in(text: str) -> Decimal:
    try:
        d = Decimal(text.strip())
    except InvalidOperation:
        raise invalid_input(t.NUMERICOID, text) from None
    if d.is_infinite() and not text.strip().lower().lstrip("+-").startswith("inf"):
        raise invalid_input(t.NUMERICOID, text)
    return d


def _name_in(text: str) -> str:
    b = text.encode()
    if len(b) < t.NAMEDATALEN:
        return text
    return b[: t.NAMEDATALEN - 1].decode(errors="ignore")


def _char_in(text: str) -> str:
    return text[:1]


_TS_RE = re.compile(
    r"\s*(\d{4,})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6})\d*)?)?)?"
    r"\s*(?:(Z|UTC|GMT|[-+]\d{1,2}(?::?\d{2})?))?\s*(BC)?\s*", re.IGNORECASE)


def session_timezone() -> Any:
    """The TimeZone setting as a tzinfo (UTC when unknown)."""
    from utils import session as sess

    name = sess.timezone_name()
    return _zone(name)


_ZONES: dict[str, Any] = {}


def _zone(name: str) -> Any:
    z = _ZONES.get(name)
    if z is None:
        if name.upper() in ("UTC", "GMT", "Z", "ETC/UTC"):
            z = UTC
        else:
            try:
                z = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                z = UTC
        _ZONES[name] = z
    return z


def _timestamp_in(oid: int) -> Callable[[str], int]:
    with_tz = oid == t.TIMESTAMPTZOID

    def timestamp_in(text: str) -> int:
        low = text.strip().lower()
        if low in ("infinity", "+infinity"):
            return DT_NOEND
        if low == "-infinity":
            return DT_NOBEGIN
        if low == "epoch":
            return UNIX_EPOCH_USECS
        if low in ("now", "today", "tomorrow", "yesterday"):
            from utils import session as sess

            now = sess.statement_timestamp()
            if low == "now":
                return now if with_tz else timestamptz_to_local(now)
            local = timestamptz_to_local(now)
            day = local - local % (86400 * USECS_PER_SEC)
            day += {"today": 0, "tomorrow": 1, "yesterday": -1}[low] * 86400 * USECS_PER_SEC
            return local_to_timestamptz(day) if with_tz else day
        m = _TS_RE.fullmatch(text)
        if m is None:
            raise PgError("22007", f'invalid input syntax for type {_DATETIME_NAMES[oid]}: '
                                   f'"{text}"')
        year, mon, day, hh, mi, ss, frac, tz, bc = m.groups()
        try:
            dt = datetime(int(year), int(mon), int(day), int(hh or 0), int(mi or 0),
                          int(ss or 0), int((frac or "0").ljust(6, "0")))
        except ValueError:
            # A month field out of range may be a day in another DateStyle order.
            hint = ('Perhaps you need a different "datestyle" setting.'
                    if not 1 <= int(mon) <= 12 else None)
            raise PgError("22008", f'date/time field value out of range: "{text}"',
                          hint=hint) from None
        if bc:
            raise PgError("0A000", "BC timestamps are not supported")
        usecs = _datetime_usecs(dt)
        if not with_tz:
            return usecs
        if tz is None:
            return local_to_timestamptz(usecs)
        return usecs - _offset_seconds(tz) * USECS_PER_SEC
    return timestamp_in


# The names datetime.c's DateTimeParseError uses.
_DATETIME_NAMES = {t.TIMESTAMPOID: "timestamp", t.TIMESTAMPTZOID: "timestamp with time zone"}


def _offset_seconds(tz: str) -> int:
    if tz.upper() in ("Z", "UTC", "GMT"):
        return 0
    sign = -1 if tz[0] == "-" else 1
    digits = tz[1:].replace(":", "")
    hours = int(digits[:-2] if len(digits) > 2 else digits)
    minutes = int(digits[-2:]) if len(digits) > 2 else 0
    return sign * (hours * 3600 + minutes * 60)


def _datetime_usecs(dt: datetime) -> int:
    delta = dt - POSTGRES_EPOCH
    return (delta.days * 86400 + delta.seconds) * USECS_PER_SEC + delta.microseconds


def local_to_timestamptz(local_usecs: int) -> int:
    """A local wall-clock timestamp in the session's zone → UTC microseconds."""
    zone = session_timezone()
    if zone is UTC:
        return local_usecs
    dt = POSTGRES_EPOCH + timedelta(microseconds=local_usecs)
    off = dt.replace(tzinfo=zone).utcoffset() or timedelta(0)
    return local_usecs - int(off.total_seconds()) * USECS_PER_SEC


def timestamptz_to_local(usecs: int) -> int:
    """UTC microseconds → the session zone's wall-clock microseconds."""
    zone = session_timezone()
    if zone is UTC or usecs in (DT_NOBEGIN, DT_NOEND):
        return usecs
    dt = POSTGRES_EPOCH_TZ + timedelta(microseconds=usecs)
    off = dt.astimezone(zone).utcoffset() or timedelta(0)
    return usecs + int(off.total_seconds()) * USECS_PER_SEC


_INPUT: dict[int, Callable[[str], Any]] = {
    t.BOOLOID: _bool_in, t.FLOAT4OID: _float_in(t.FLOAT4OID),
    t.FLOAT8OID: _float_in(t.FLOAT8OID), t.NUMERICOID: _numeric_in, t.NAMEOID: _name_in,
    t.CHAROID: _char_in, t.TEXTOID: str, t.VARCHAROID: str, t.BPCHAROID: str,
    t.UNKNOWNOID: str, t.TIMESTAMPOID: _timestamp_in(t.TIMESTAMPOID),
    t.TIMESTAMPTZOID: _timestamp_in(t.TIMESTAMPTZOID),
}
for _oid in INT_RANGE:
    if _oid not in (t.REGCLASSOID, t.REGTYPEOID, t.REGNAMESPACEOID, t.REGPROCOID):
        _INPUT[_oid] = _int_in(_oid)


def input_function(oid: int) -> Callable[[str], Any]:
    """The type's input function (int4in, boolin, ...): text → datum."""
    fn = _INPUT.get(oid)
    if fn is None:
        if oid == t.PG_LSNOID:
            return _pg_lsn_in
        if oid == t.REGCLASSOID:
            from catalog import namespace

            return namespace.regclass_in
        raise PgError("0A000", f"input of type {type_name(oid)} is not supported yet")
    return fn


def _pg_lsn_in(text: str) -> int:
    m = re.fullmatch(r"\s*([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})\s*", text)
    if m is None:
        raise invalid_input(t.PG_LSNOID, text)
    return (int(m.group(1), 16) << 32) | int(m.group(2), 16)


def input_value(oid: int, text: str) -> Any:
    return input_function(oid)(text)


# =============================================================================================
# Output functions (datum → text)
# =============================================================================================

def float_out(v: float) -> str:
    """float8out with extra_float_digits > 0: the shortest exact representation."""
    if v != v:
        return "NaN"
    if v in (math.inf, -math.inf):
        return "Infinity" if v > 0 else "-Infinity"
    s = repr(v)
    if "e" not in s and abs(v) >= 1e15:
        s = f"{v:e}"  # PostgreSQL switches to exponent form at 15 digits
        mant, exp = s.split("e")
        s = f"{mant.rstrip('0').rstrip('.')}e{exp}"
    if "e" in s:
        mant, exp = s.split("e")
        e = int(exp)
        s = f"{mant.removesuffix('.0')}e{'-' if e < 0 else '+'}{abs(e):02d}"
    elif s.endswith(".0"):
        s = s[:-2]
    return s


def float4_out(v: float) -> str:
    """float4out: the shortest decimal that reads back as the same float4."""
    if v != v or math.isinf(v):
        return float_out(v)
    for digits in range(1, 10):
        s = f"{v:.{digits}g}"
        if _to_float4(float(s)) == v:
            break
    if "e" in s:
        mant, exp = s.split("e")
        e = int(exp)
        s = f"{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"
    return s


def numeric_out(v: Decimal) -> str:
    if v.is_nan():
        return "NaN"
    if v.is_infinite():
        return "Infinity" if v > 0 else "-Infinity"
    return format(v, "f")


def _date_style() -> tuple[str, str]:
    """DateStyle as (output style, field order): ISO/SQL/Postgres/German, MDY/DMY/YMD."""
    from utils import session as sess

    text = "ISO, MDY"
    if sess.settings is not None:
        try:
            text = str(sess.settings.get("DateStyle"))
        except Exception:  # settings without the parameter: tools
            pass
    style, order = "ISO", "MDY"
    for part in text.replace(" ", "").upper().split(","):
        if part in ("ISO", "SQL", "POSTGRES", "GERMAN"):
            style = part
        elif part in ("MDY", "DMY", "YMD", "US", "EURO", "EUROPEAN", "NONEURO"):
            order = {"US": "MDY", "NONEURO": "MDY", "EURO": "DMY",
                     "EUROPEAN": "DMY"}.get(part, part)
    return style, order


def _format_datetime(dt: datetime, zone_suffix: str | None, offset: int | None) -> str:
    """EncodeDateTime: the date and time in the session's DateStyle."""
    style, order = _date_style()
    frac = f".{dt.microsecond:06d}".rstrip("0") if dt.microsecond else ""
    clock = dt.strftime("%H:%M:%S") + frac
    if style == "ISO":
        s = dt.strftime("%Y-%m-%d ") + clock
        if offset is not None:
            sign = "-" if offset < 0 else "+"
            off = abs(offset)
            s += f"{sign}{off // 3600:02d}" + (f":{off % 3600 // 60:02d}" if off % 3600 else "")
        return s
    if style == "GERMAN":
        s = dt.strftime("%d.%m.%Y ") + clock
    elif style == "SQL":
        s = dt.strftime("%d/%m/%Y " if order == "DMY" else "%m/%d/%Y ") + clock
    else:  # Postgres
        day_month = "%d %b" if order == "DMY" else "%b %d"
        s = dt.strftime(f"%a {day_month} ") + clock + dt.strftime(" %Y")
    return s + (f" {zone_suffix}" if zone_suffix else "")


def timestamp_out(usecs: int) -> str:
    if usecs == DT_NOEND:
        return "infinity"
    if usecs == DT_NOBEGIN:
        return "-infinity"
    return _format_datetime(POSTGRES_EPOCH + timedelta(microseconds=usecs), None, None)


def timestamptz_out(usecs: int) -> str:
    if usecs in (DT_NOEND, DT_NOBEGIN):
        return timestamp_out(usecs)
    zone = session_timezone()
    dt = (POSTGRES_EPOCH_TZ + timedelta(microseconds=usecs)).astimezone(zone)
    off = int((dt.utcoffset() or timedelta(0)).total_seconds())
    return _format_datetime(dt, dt.tzname() or "UTC", off)


def _regclass_out(oid: int) -> str:
    """regclassout: the relation's name (the number if there is none)."""
    from utils import relcache

    rel = relcache.try_relation_open(oid, 0)
    return rel.relname if rel is not None else str(oid)


def pg_lsn_out(v: int) -> str:
    return f"{v >> 32:X}/{v & 0xFFFFFFFF:X}"


def _array_out(elem_out: Callable[[Any], str]) -> Callable[[list], str]:
    def out(values: list) -> str:
        parts = []
        for v in values:
            if v is None:
                parts.append("NULL")
                continue
            s = elem_out(v)
            if s == "" or re.search(r'[{},"\\\s]', s) or s.upper() == "NULL":
                s = '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
            parts.append(s)
        return "{" + ",".join(parts) + "}"
    return out


def output_function(oid: int) -> Callable[[Any], str]:
    """The type's output function: datum → text (str)."""
    if oid in TEXT_TYPES or oid == t.CHAROID:
        return str
    if oid == t.BOOLOID:
        return lambda v: "t" if v else "f"
    if oid in INT_RANGE:
        return str
    if oid == t.FLOAT8OID:
        return float_out
    if oid == t.FLOAT4OID:
        return float4_out
    if oid == t.NUMERICOID:
        return numeric_out
    if oid == t.TIMESTAMPOID:
        return timestamp_out
    if oid == t.TIMESTAMPTZOID:
        return timestamptz_out
    if oid == t.PG_LSNOID:
        return pg_lsn_out
    if oid == t.VOIDOID:
        return lambda v: ""
    if oid in (t.INT2VECTOROID, t.OIDVECTOROID):
        return lambda v: " ".join(map(str, v))
    if oid == t.TIDOID:
        return lambda v: f"({v[0]},{v[1]})"
    if oid == t.REGCLASSOID:
        return _regclass_out
    info = t.TYPES.get(oid)
    if info is not None and info.typelem:
        return _array_out(output_function(info.typelem))
    return str


def text_output(oid: int) -> Callable[[Any], bytes]:
    """The output function as bytes for DataRow's text format."""
    if oid in TEXT_TYPES:
        return str.encode
    if oid == t.BOOLOID:
        return lambda v: b"t" if v else b"f"
    if oid in INTEGER_TYPES or oid == t.OIDOID:
        return lambda v: b"%d" % v
    out = output_function(oid)
    return lambda v: out(v).encode()


# =============================================================================================
# Binary send / receive
# =============================================================================================

BINARY = {t.INT2OID: struct.Struct("!h"), t.INT4OID: struct.Struct("!i"),
          t.INT8OID: struct.Struct("!q"), t.OIDOID: struct.Struct("!I"),
          t.XID8OID: struct.Struct("!Q"), t.FLOAT4OID: struct.Struct("!f"),
          t.FLOAT8OID: struct.Struct("!d"), t.TIMESTAMPOID: struct.Struct("!q"),
          t.TIMESTAMPTZOID: struct.Struct("!q"), t.PG_LSNOID: struct.Struct("!Q"),
          t.REGCLASSOID: struct.Struct("!I"), t.REGTYPEOID: struct.Struct("!I"),
          t.XIDOID: struct.Struct("!I"), t.CIDOID: struct.Struct("!I")}
_NUMERIC_HDR = struct.Struct("!hhHh")
NUMERIC_POS, NUMERIC_NEG, NUMERIC_NAN = 0x0000, 0x4000, 0xC000
NUMERIC_PINF, NUMERIC_NINF = 0xD000, 0xF000


def numeric_send(d: Decimal) -> bytes:
    """numeric_send: base-10000 digits, weight, sign, display scale."""
    if d.is_nan():
        return _NUMERIC_HDR.pack(0, 0, NUMERIC_NAN, 0)
    if d.is_infinite():
        return _NUMERIC_HDR.pack(0, 0, NUMERIC_PINF if d > 0 else NUMERIC_NINF, 0)
    sign, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    dscale = max(-exp, 0)
    all_digits = ("".join(map(str, digits)) + "0" * max(exp, 0)).zfill(dscale + 1)
    point = len(all_digits) - dscale
    before, after = all_digits[:point], all_digits[point:]
    # Pad to base-10000 groups around the decimal point.
    before = before.zfill((len(before) + 3) // 4 * 4)
    after = after.ljust((len(after) + 3) // 4 * 4, "0")
    groups = [int(before[i:i + 4]) for i in range(0, len(before), 4)]
    weight = len(groups) - 1
    groups += [int(after[i:i + 4]) for i in range(0, len(after), 4)]
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        weight = 0
    return (_NUMERIC_HDR.pack(len(groups), weight, NUMERIC_NEG if sign else NUMERIC_POS, dscale)
            + struct.pack(f"!{len(groups)}h", *groups))


def numeric_recv(data: bytes) -> Decimal:
    ndigits, weight, sign, dscale = _NUMERIC_HDR.unpack_from(data)
    if sign == NUMERIC_NAN:
        return Decimal("NaN")
    if sign in (NUMERIC_PINF, NUMERIC_NINF):
        return Decimal("Infinity" if sign == NUMERIC_PINF else "-Infinity")
    groups = struct.unpack_from(f"!{ndigits}h", data, _NUMERIC_HDR.size)
    value = Decimal(0)
    for i, g in enumerate(groups):
        value += Decimal(g).scaleb(4 * (weight - i))
    value = value.quantize(Decimal(1).scaleb(-dscale)) if ndigits else Decimal(0).scaleb(-dscale)
    return -value if sign == NUMERIC_NEG else value


def binary_output(oid: int) -> Callable[[Any], bytes]:
    """The type's send function (binary format)."""
    if oid in TEXT_TYPES:
        return str.encode
    if oid == t.BOOLOID:
        return lambda v: b"\x01" if v else b"\x00"
    if oid == t.CHAROID:
        return lambda v: v.encode("latin-1")[:1]
    if oid in BINARY:
        return BINARY[oid].pack
    if oid == t.NUMERICOID:
        return numeric_send
    if oid == t.VOIDOID:
        return lambda v: b""
    raise PgError("42883", f"no binary output function available for type {type_name(oid)}")


def binary_input(oid: int, argno: int) -> Callable[[bytes], Any]:
    """The type's receive function for Bind parameter ``argno`` (1-based)."""
    def wrong_format() -> PgError:
        return PgError("22P03", f"incorrect binary data format in bind parameter {argno}")

    if oid in TEXT_TYPES:
        def text_recv(b: bytes) -> str:
            try:
                return b.decode()
            except UnicodeDecodeError:
                raise PgError("22021", "invalid byte sequence for encoding \"UTF8\"") from None
        return text_recv
    if oid == t.BOOLOID:
        def bool_recv(b: bytes) -> bool:
            if len(b) != 1:
                raise wrong_format()
            return b != b"\x00"
        return bool_recv
    if oid in BINARY:
        st = BINARY[oid]

        def fixed_recv(b: bytes) -> Any:
            if len(b) != st.size:
                raise wrong_format()
            return st.unpack(b)[0]
        return fixed_recv
    if oid == t.NUMERICOID:
        def num_recv(b: bytes) -> Decimal:
            try:
                return numeric_recv(b)
            except struct.error:
                raise wrong_format() from None
        return num_recv
    raise PgError("42883", f"no binary input function available for type {type_name(oid)}")


# =============================================================================================
# Casts (pg_cast + parse_coerce.c)
# =============================================================================================

def can_coerce_implicitly(source: int, target: int) -> bool:
    """can_coerce_type for an implicit cast (castcontext 'i')."""
    if source == target or source == t.UNKNOWNOID:
        return True
    if source in NUMERIC_RANK and target in NUMERIC_RANK:
        return NUMERIC_RANK[source] <= NUMERIC_RANK[target]
    if source in (t.TEXTOID, t.VARCHAROID, t.BPCHAROID, t.NAMEOID) and \
            target in (t.TEXTOID, t.VARCHAROID, t.BPCHAROID, t.NAMEOID):
        return target != t.BPCHAROID or source == t.BPCHAROID
    if source == t.TIMESTAMPOID and target == t.TIMESTAMPTZOID:
        return True
    if source in (t.INT2OID, t.INT4OID, t.INT8OID, t.OIDOID) and \
            target in (t.OIDOID, t.REGCLASSOID, t.REGTYPEOID, t.REGNAMESPACEOID):
        return True
    if source in (t.OIDOID, t.REGCLASSOID, t.REGTYPEOID, t.REGNAMESPACEOID) and \
            target in (t.OIDOID, t.INT8OID):
        return True
    return False


def can_coerce_assignment(source: int, target: int) -> bool:
    """Assignment casts (castcontext 'a' or 'i'): numeric narrowing, anything to text."""
    if can_coerce_implicitly(source, target):
        return True
    if source in NUMERIC_RANK and target in NUMERIC_RANK:
        return True
    if target in (t.TEXTOID, t.VARCHAROID, t.BPCHAROID, t.NAMEOID):
        return True
    if source == t.TIMESTAMPTZOID and target == t.TIMESTAMPOID:
        return True
    return False


def _int_range_error(target: int) -> PgError:
    return PgError("22003", {t.INT2OID: "smallint out of range", t.INT4OID: "integer out of range",
                             t.INT8OID: "bigint out of range"}.get(target, "OID out of range"))


def _bool_text(v: bool) -> str:
    return "true" if v else "false"


def _to_int(source: int, target: int) -> Callable[[Any], int]:
    lo, hi = INT_RANGE[target]
    err = _int_range_error(target)

    if source in FLOAT_TYPES:
        def conv(v: float) -> int:
            if v != v or math.isinf(v):
                raise err
            r = round(v)  # rint: half to even, as PostgreSQL's float8→int casts
            if not lo <= r <= hi:
                raise err
            return int(r)
        return conv
    if source == t.NUMERICOID:
        def conv_num(v: Decimal) -> int:
            if not v.is_finite():
                raise PgError("0A000", f"cannot convert {numeric_out(v)} to {type_name(target)}")
            r = int(v.to_integral_value(rounding="ROUND_HALF_UP"))
            if not lo <= r <= hi:
                raise err
            return r
        return conv_num
    if source == t.BOOLOID:
        return int

    def conv_int(v: int) -> int:
        if not lo <= v <= hi:
            raise err
        return v
    return conv_int


def varchar_coercer(typmod: int, explicit: bool, oid: int = t.VARCHAROID
                    ) -> Callable[[str], str] | None:
    """varchar(n)/bpchar(n) length coercion: an implicit or assignment cast errors
    on a value too long unless only spaces are cut; an explicit one truncates."""
    if typmod < 4:
        return None
    n = typmod - 4
    name = "character varying" if oid == t.VARCHAROID else "character"

    if oid == t.BPCHAROID:
        def bpchar(v: str) -> str:
            if len(v) > n:
                if not explicit and v[n:].strip(" "):
                    raise PgError("22001", f"value too long for type {name}({n})")
                return v[:n]
            return v.ljust(n)
        return bpchar

    def varchar(v: str) -> str:
        if len(v) > n:
            if not explicit and v[n:].strip(" "):
                raise PgError("22001", f"value too long for type {name}({n})")
            return v[:n]
        return v
    return varchar


def cast_function(source: int, target: int, *, typmod: int = -1, explicit: bool = False
                  ) -> Callable[[Any], Any] | None:
    """The function converting a ``source`` datum to ``target`` (with ``typmod``),
    or None when no conversion is needed. 42846 when no cast exists."""
    fn = _base_cast(source, target, explicit)
    if target in (t.VARCHAROID, t.BPCHAROID):
        length = varchar_coercer(typmod, explicit, target)
        if length is not None:
            if fn is None:
                return length
            inner = fn
            return lambda v: length(inner(v))
    return fn


def _base_cast(source: int, target: int, explicit: bool) -> Callable[[Any], Any] | None:
    if source == target:
        return None
    if source == t.UNKNOWNOID or (source in TEXT_TYPES and target not in TEXT_TYPES):
        fn_in = input_function(target)
        if source == t.BPCHAROID:
            return lambda v: fn_in(v.rstrip(" "))
        return fn_in
    if target in TEXT_TYPES:
        if source == t.BPCHAROID:
            return lambda v: v.rstrip(" ")  # bpchar → text drops the padding
        if source in TEXT_TYPES:
            return _name_in if target == t.NAMEOID else None
        if source == t.BOOLOID:
            return _bool_text  # booltext: the cast spells the words out
        return output_function(source)
    if target in INT_RANGE and (source in NUMERIC_RANK or source == t.BOOLOID
                                or source in INT_RANGE):
        if source == t.BOOLOID and target != t.INT4OID:
            raise PgError("42846", f"cannot cast type {type_name(source)} to "
                                   f"{type_name(target)}")
        return _to_int(source, target)
    if source in INT_RANGE and target == t.BOOLOID:
        if source != t.INT4OID:
            raise PgError("42846", f"cannot cast type {type_name(source)} to "
                                   f"{type_name(target)}")
        return lambda v: v != 0
    if source in NUMERIC_RANK and target == t.FLOAT8OID:
        return float
    if source in NUMERIC_RANK and target == t.FLOAT4OID:
        return lambda v: _to_float4(float(v))
    if source in NUMERIC_RANK and target == t.NUMERICOID:
        return lambda v: (Decimal(float_out(v)) if isinstance(v, float) else Decimal(v))
    if source == t.TIMESTAMPOID and target == t.TIMESTAMPTZOID:
        return local_to_timestamptz
    if source == t.TIMESTAMPTZOID and target == t.TIMESTAMPOID:
        return timestamptz_to_local
    raise PgError("42846", f"cannot cast type {type_name(source)} to {type_name(target)}")


def coerce(value: Any, source: int, target: int, typmod: int = -1,
           explicit: bool = True) -> Any:
    """Cast one value (for constants folded at plan time and for the protocol)."""
    if value is None:
        return None
    fn = cast_function(source, target, typmod=typmod, explicit=explicit)
    return value if fn is None else fn(value)
