"""Wire-format builders and decoders — mirrors src/backend/libpq/pqformat.c plus the
message builders scattered over PostgreSQL's backend (ReadyForQuery in dest.c,
BackendKeyData in postgres.c, RowDescription in printtup.c, ErrorResponse in elog.c).

Builders return complete messages (type byte, length word, payload) as ``bytes`` so
the caller only appends them to the connection's send buffer. Fixed messages are
module constants; everything else goes through precompiled ``struct`` objects.

Decoders take a message payload (without type and length) and raise PgError 08P01
with pq_getmsg*'s messages when the payload is malformed; text is decoded as UTF8,
the only client encoding tusk speaks, with PostgreSQL's 22021 on invalid bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from utils.elog import PgError

# -- protocol constants (pqcomm.h) ---------------------------------------------------------

PG_PROTOCOL_MAJOR_LATEST = 3
PG_PROTOCOL_MINOR_LATEST = 0
CANCEL_REQUEST_CODE = (1234 << 16) | 5678
NEGOTIATE_SSL_CODE = (1234 << 16) | 5679
NEGOTIATE_GSS_CODE = (1234 << 16) | 5680

# Type OIDs (pg_type.dat) and their typlen, for RowDescription / ParameterDescription.
BOOLOID, INT8OID, INT2OID, INT4OID, TEXTOID = 16, 20, 21, 23, 25
OIDOID, FLOAT4OID, FLOAT8OID, UNKNOWNOID = 26, 700, 701, 705
VARCHAROID, NUMERICOID, VOIDOID = 1043, 1700, 2278
TYPLEN = {BOOLOID: 1, INT8OID: 8, INT2OID: 2, INT4OID: 4, TEXTOID: -1, OIDOID: 4,
          FLOAT4OID: 4, FLOAT8OID: 8, UNKNOWNOID: -2, VARCHAROID: -1, NUMERICOID: -1,
          VOIDOID: 4}

_HDR = struct.Struct("!ci")
_I16 = struct.Struct("!h")
_I32 = struct.Struct("!i")
_U32 = struct.Struct("!I")
_I32PAIR = struct.Struct("!iI")
_FIELD = struct.Struct("!IhIhih")  # table oid, attnum, type oid, typlen, typmod, format
_NULL_VALUE = _I32.pack(-1)


def message(mtype: bytes, payload: bytes) -> bytes:
    """One complete backend message."""
    return _HDR.pack(mtype, len(payload) + 4) + payload


# -- fixed messages --------------------------------------------------------------------------

AUTHENTICATION_OK = message(b"R", _I32.pack(0))
PARSE_COMPLETE = message(b"1", b"")
BIND_COMPLETE = message(b"2", b"")
CLOSE_COMPLETE = message(b"3", b"")
NO_DATA = message(b"n", b"")
PORTAL_SUSPENDED = message(b"s", b"")
EMPTY_QUERY_RESPONSE = message(b"I", b"")
READY_FOR_QUERY = {b"I": message(b"Z", b"I"), b"T": message(b"Z", b"T"),
                   b"E": message(b"Z", b"E")}
SSL_REFUSED = b"N"  # the one-byte answer to SSLRequest / GSSENCRequest


# -- builders ----------------------------------------------------------------------------------

def _cstr(s: str) -> bytes:
    return s.encode() + b"\0"


def parameter_status(name: str, value: str) -> bytes:
    return message(b"S", _cstr(name) + _cstr(value))


def backend_key_data(pid: int, key: int) -> bytes:
    return message(b"K", _I32PAIR.pack(pid, key & 0xFFFFFFFF))


def negotiate_protocol_version(newest_minor: int, unrecognized: Sequence[str]) -> bytes:
    payload = _I32.pack(newest_minor) + _I32.pack(len(unrecognized))
    return message(b"v", payload + b"".join(_cstr(o) for o in unrecognized))


_command_complete_cache: dict[str, bytes] = {}


def command_complete(tag: str) -> bytes:
    """CommandComplete; the few distinct tags of a workload are built once."""
    msg = _command_complete_cache.get(tag)
    if msg is None:
        msg = message(b"C", _cstr(tag))
        if len(_command_complete_cache) < 4096:
            _command_complete_cache[tag] = msg
    return msg


def row_description(fields: Sequence[tuple], formats: Sequence[int] = ()) -> bytes:
    """fields: (column name, type oid[, typmod[, table oid, column number]]); formats:
    per-column format codes (as Bind gave them: none = all text, one = for all
    columns, else one per column)."""
    from catalog.pg_type import TYPES

    parts = [_I16.pack(len(fields))]
    nfmt = len(formats)
    for i, field in enumerate(fields):
        name, typoid = field[0], field[1]
        typmod = field[2] if len(field) > 2 else -1
        table, attnum = (field[3], field[4]) if len(field) > 4 else (0, 0)
        fmt = 0 if nfmt == 0 else formats[0] if nfmt == 1 else formats[i]
        typlen = TYPES[typoid].typlen if typoid in TYPES else TYPLEN.get(typoid, -1)
        parts.append(_cstr(name))
        parts.append(_FIELD.pack(table, attnum, typoid, typlen, typmod, fmt))
    return message(b"T", b"".join(parts))


def copy_in_response(ncols: int, binary: bool = False) -> bytes:
    """CopyInResponse ('G'): overall format, then one format code per column."""
    fmt = 1 if binary else 0
    return message(b"G", bytes((fmt,)) + _I16.pack(ncols) + _I16.pack(fmt) * ncols)


def copy_out_response(ncols: int, binary: bool = False) -> bytes:
    """CopyOutResponse ('H')."""
    fmt = 1 if binary else 0
    return message(b"H", bytes((fmt,)) + _I16.pack(ncols) + _I16.pack(fmt) * ncols)


def copy_data(data: bytes) -> bytes:
    return message(b"d", data)


COPY_DONE = b"c\x00\x00\x00\x04"


def data_row(values: Sequence[bytes | None]) -> bytes:
    parts = [_I16.pack(len(values))]
    for v in values:
        if v is None:
            parts.append(_NULL_VALUE)
        else:
            parts.append(_I32.pack(len(v)))
            parts.append(v)
    return message(b"D", b"".join(parts))


def parameter_description(type_oids: Sequence[int]) -> bytes:
    return message(b"t", _I16.pack(len(type_oids))
                   + b"".join(_U32.pack(t) for t in type_oids))


def error_fields(severity: str, sqlstate: str, msg: str, detail: str | None = None,
                 hint: str | None = None, position: int | None = None,
                 extra: dict[bytes, str] | None = None) -> bytes:
    """The field list of ErrorResponse / NoticeResponse (S V C M D H P, then W s t c n
    and the rest, as send_message_to_frontend)."""
    sev = severity.encode()
    parts = [b"S", sev, b"\0V", sev, b"\0C", sqlstate.encode(), b"\0M", msg.encode(), b"\0"]
    if detail:
        parts += [b"D", detail.encode(), b"\0"]
    if hint:
        parts += [b"H", hint.encode(), b"\0"]
    if position:
        parts += [b"P", str(position).encode(), b"\0"]
    if extra:
        for code, value in extra.items():
            parts += [code, value.encode(), b"\0"]
    parts.append(b"\0")
    return b"".join(parts)


def error_response(severity: str, sqlstate: str, msg: str, detail: str | None = None,
                   hint: str | None = None, position: int | None = None,
                   extra: dict[bytes, str] | None = None) -> bytes:
    return message(b"E", error_fields(severity, sqlstate, msg, detail, hint, position, extra))


def notice_response(severity: str, sqlstate: str, msg: str, detail: str | None = None,
                    hint: str | None = None) -> bytes:
    return message(b"N", error_fields(severity, sqlstate, msg, detail, hint))


# -- decoders (pq_getmsg*) ---------------------------------------------------------------------

def _insufficient() -> PgError:
    return PgError("08P01", "insufficient data left in message")


def _invalid_string() -> PgError:
    return PgError("08P01", "invalid string in message")


def invalid_message_format() -> PgError:
    return PgError("08P01", "invalid message format")


def decode_text(raw: bytes) -> str:
    """Client text to str; invalid UTF8 gets PostgreSQL's report_invalid_encoding error."""
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        bad = raw[exc.start:exc.start + _utf8_len(raw[exc.start])]
        shown = " ".join(f"0x{b:02x}" for b in bad)
        raise PgError("22021", f'invalid byte sequence for encoding "UTF8": {shown}') from None


def _utf8_len(first: int) -> int:
    if first >= 0xF0:
        return 4
    if first >= 0xE0:
        return 3
    if first >= 0xC0:
        return 2
    return 1


def get_string(buf: bytes, pos: int) -> tuple[str, int]:
    """A NUL-terminated string at ``pos``; returns it and the position after the NUL."""
    end = buf.find(b"\0", pos)
    if end < 0:
        raise _invalid_string()
    try:
        return buf[pos:end].decode(), end + 1
    except UnicodeDecodeError:
        return decode_text(buf[pos:end]), end + 1


def decode_query(payload: bytes) -> str:
    """'Q': the query string, which must fill the message exactly."""
    text = payload[:-1]
    if payload[-1:] != b"\0" or b"\0" in text:
        raise _invalid_string() if b"\0" not in payload else invalid_message_format()
    try:
        return text.decode()
    except UnicodeDecodeError:
        return decode_text(text)


def decode_parse(payload: bytes) -> tuple[str, str, list[int]]:
    """'P': (statement name, query, parameter type OIDs)."""
    name, pos = get_string(payload, 0)
    query, pos = get_string(payload, pos)
    try:
        (n,) = _I16.unpack_from(payload, pos)
        oids = list(struct.unpack_from(f"!{n}I", payload, pos + 2)) if n > 0 else []
    except struct.error:
        raise _insufficient() from None
    if pos + 2 + 4 * max(n, 0) != len(payload):
        raise invalid_message_format()
    return name, query, oids


def decode_bind(payload: bytes) -> tuple[str, str, tuple[int, ...], list[bytes | None],
                                         tuple[int, ...]]:
    """'B': (portal, statement, parameter formats, parameter values, result formats)."""
    portal, pos = get_string(payload, 0)
    stmt, pos = get_string(payload, pos)
    try:
        (nfmt,) = _I16.unpack_from(payload, pos)
        pos += 2
        pformats = struct.unpack_from(f"!{nfmt}h", payload, pos) if nfmt > 0 else ()
        pos += 2 * max(nfmt, 0)
        (nparams,) = _I16.unpack_from(payload, pos)
        pos += 2
        values: list[bytes | None] = []
        for _ in range(nparams):
            (vlen,) = _I32.unpack_from(payload, pos)
            pos += 4
            if vlen == -1:
                values.append(None)
                continue
            if vlen < 0 or pos + vlen > len(payload):
                raise _insufficient()
            values.append(payload[pos:pos + vlen])
            pos += vlen
        (nres,) = _I16.unpack_from(payload, pos)
        pos += 2
        rformats = struct.unpack_from(f"!{nres}h", payload, pos) if nres > 0 else ()
        pos += 2 * max(nres, 0)
    except struct.error:
        raise _insufficient() from None
    if pos != len(payload):
        raise invalid_message_format()
    return portal, stmt, pformats, values, rformats


def decode_describe_or_close(payload: bytes) -> tuple[int, str]:
    """'D' / 'C': (b'S' or b'P' as an int, name)."""
    if not payload:
        raise _insufficient()
    name, pos = get_string(payload, 1)
    if pos != len(payload):
        raise invalid_message_format()
    return payload[0], name


def decode_execute(payload: bytes) -> tuple[str, int]:
    """'E': (portal name, maximum rows; 0 = all)."""
    portal, pos = get_string(payload, 0)
    try:
        (max_rows,) = _I32.unpack_from(payload, pos)
    except struct.error:
        raise _insufficient() from None
    if pos + 4 != len(payload):
        raise invalid_message_format()
    return portal, max_rows


def decode_cancel_request(payload: bytes) -> tuple[int, int]:
    """The body of a CancelRequest after its code: (pid, secret key as unsigned)."""
    pid, key = _I32PAIR.unpack_from(payload, 4)
    return pid, key
