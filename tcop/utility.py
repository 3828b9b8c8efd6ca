"""The statements tusk runs before its SQL layer exists — mirrors tcop/utility.c
(ProcessUtility, CreateCommandTag, GetCommandLogLevel), the SET/SHOW/RESET half of
utils/misc/guc.c (ExecSetVariableStmt, flatten_set_variable_args, GetPGVariable),
the transaction statements of access/transam/xact.c, and the handful of functions
clients call at connect time (version, current_setting, set_config, pg_sleep, ...).

Statements are parsed with pglast (PostgreSQL 15's grammar) through
``parse_sql_json`` — the C parser plus json.loads, several times cheaper than
pglast's Python AST — and compiled once into ``Statement`` objects whose ``run``
is a closure: executing a cached statement touches no parse tree. Anything that
parses but is not implemented compiles into a statement that raises 0A000 when it
runs, so errors come in the same order as in PostgreSQL (a multi-statement query
runs the statements before it).

Where it differs from PostgreSQL: savepoints, two-phase commit and SQL-level
PREPARE/EXECUTE are refused with 0A000; SELECT is limited to a target list of
constants, parameters, casts and the functions below.
"""

from __future__ import annotations

import json
import platform
import re
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from pglast import keywords, parser

from access import xact
from conf import guc_tables
from conf.guc import GucError
from conf.guc_tables import GucContext, GucSource
from libpq import pqformat as pqf
from utils import elog
from utils.elog import PgError

PG_VERSION = "15.18"
TUSK_VERSION = "0.1.0"

# =============================================================================================
# Parsing
# =============================================================================================


def syntax_error_position(query: str, err: parser.ParseError) -> int:
    """The 1-based character position PostgreSQL reports for a parse error.

    pglast reports 'at end of input' without a location (PostgreSQL points just past
    the end) and converts libpg_query's character position as if it were a byte
    offset, which is wrong once the query has non-ASCII characters: then parse an
    ASCII stand-in of the same length in characters to recover the true position.
    """
    location = err.args[1] if len(err.args) > 1 else None
    if location is None:
        return len(query) + 1
    if query.isascii():
        return location + 1
    stand_in = "".join(c if c.isascii() else "x" for c in query)
    try:
        parser.parse_sql_json(stand_in)
    except parser.ParseError as err2:
        loc2 = err2.args[1] if len(err2.args) > 1 else None
        if loc2 is not None:
            return loc2 + 1
    return location + 1


def parse(query: str) -> list[dict[str, Any]]:
    """RawStmt dicts of ``query``; PgError 42601 with PostgreSQL's message and position."""
    try:
        return json.loads(parser.parse_sql_json(query))["stmts"]
    except parser.ParseError as err:
        raise PgError("42601", err.args[0], position=syntax_error_position(query, err)) from None


# =============================================================================================
# Data types: the few tusk can produce, with PostgreSQL's I/O formats (utils/adt)
# =============================================================================================

TYPE_NAMES = {pqf.BOOLOID: "boolean", pqf.INT2OID: "smallint", pqf.INT4OID: "integer",
              pqf.INT8OID: "bigint", pqf.TEXTOID: "text", pqf.NUMERICOID: "numeric",
              pqf.FLOAT4OID: "real", pqf.FLOAT8OID: "double precision",
              pqf.VARCHAROID: "character varying", 19: "name", pqf.OIDOID: "oid",
              pqf.UNKNOWNOID: "unknown", pqf.VOIDOID: "void", 3220: "pg_lsn", 5069: "xid8"}
NAMEOID = 19
# Type names as a cast or a declared parameter may spell them (after the grammar's
# mapping of INTEGER to pg_catalog.int4 and so on).
TYPE_BY_NAME = {"bool": pqf.BOOLOID, "boolean": pqf.BOOLOID, "int2": pqf.INT2OID,
                "smallint": pqf.INT2OID, "int4": pqf.INT4OID, "integer": pqf.INT4OID,
                "int": pqf.INT4OID, "int8": pqf.INT8OID, "bigint": pqf.INT8OID,
                "text": pqf.TEXTOID, "varchar": pqf.VARCHAROID, "numeric": pqf.NUMERICOID,
                "decimal": pqf.NUMERICOID, "float4": pqf.FLOAT4OID, "real": pqf.FLOAT4OID,
                "float8": pqf.FLOAT8OID, "name": NAMEOID, "oid": pqf.OIDOID,
                "unknown": pqf.UNKNOWNOID, "xid8": 5069, "pg_lsn": 3220}
_TEXT_TYPES = frozenset({pqf.TEXTOID, pqf.VARCHAROID, NAMEOID, pqf.UNKNOWNOID})
_INT_RANGE = {pqf.INT2OID: (-(2**15), 2**15 - 1), pqf.INT4OID: (-(2**31), 2**31 - 1),
              pqf.INT8OID: (-(2**63), 2**63 - 1), pqf.OIDOID: (0, 2**32 - 1),
              5069: (0, 2**64 - 1)}
# Implicit casts between the numeric types (pg_cast castcontext 'i'), as ranks.
_NUMERIC_RANK = {pqf.INT2OID: 0, pqf.INT4OID: 1, pqf.INT8OID: 2, pqf.NUMERICOID: 3,
                 pqf.FLOAT4OID: 4, pqf.FLOAT8OID: 5}


def type_name(oid: int) -> str:
    return TYPE_NAMES.get(oid, str(oid))


def _invalid_input(oid: int, text: str) -> PgError:
    return PgError("22P02", f'invalid input syntax for type {type_name(oid)}: "{text}"')


_BOOL_IN = {"t": True, "tr": True, "tru": True, "true": True, "y": True, "ye": True,
            "yes": True, "on": True, "1": True, "f": False, "fa": False, "fal": False,
            "fals": False, "false": False, "n": False, "no": False, "of": False, "off": False,
            "0": False}
_INT_TEXT = re.compile(r"\s*[-+]?\d+\s*")


def input_value(oid: int, text: str) -> Any:
    """The type's input function (int4in, boolin, ...): text to a Python value."""
    if oid in _TEXT_TYPES:
        return text
    if oid in _INT_RANGE:
        if not _INT_TEXT.fullmatch(text):
            raise _invalid_input(oid, text)
        v = int(text)
        lo, hi = _INT_RANGE[oid]
        if not lo <= v <= hi:
            raise PgError("22003", f'value "{text}" is out of range for type {type_name(oid)}')
        return v
    if oid == pqf.BOOLOID:
        v = _BOOL_IN.get(text.strip().lower())
        if v is None:
            raise _invalid_input(oid, text)
        return v
    if oid in (pqf.FLOAT8OID, pqf.FLOAT4OID):
        try:
            return float(text)
        except ValueError:
            raise _invalid_input(oid, text) from None
    if oid == pqf.NUMERICOID:
        try:
            d = Decimal(text.strip())
        except InvalidOperation:
            raise _invalid_input(oid, text) from None
        if d.is_infinite() and not text.strip().lower().lstrip("+-").startswith("inf"):
            raise _invalid_input(oid, text)
        return d
    raise PgError("0A000", f"type {type_name(oid)} is not supported yet")


def _float_out(v: float) -> str:
    """float8out with extra_float_digits > 0: the shortest exact representation."""
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "Infinity" if v > 0 else "-Infinity"
    s = repr(v)
    if s.endswith(".0"):
        s = s[:-2]
    return s


def text_output(oid: int) -> Callable[[Any], bytes]:
    """The type's output function as text bytes (printtup's text format)."""
    if oid in _TEXT_TYPES:
        return str.encode
    if oid == pqf.BOOLOID:
        return lambda v: b"t" if v else b"f"
    if oid in _INT_RANGE:
        return lambda v: b"%d" % v
    if oid in (pqf.FLOAT8OID, pqf.FLOAT4OID):
        return lambda v: _float_out(v).encode()
    if oid == pqf.NUMERICOID:
        return lambda v: (format(v, "f") if v.is_finite()
                          else "NaN" if v.is_nan() else
                          "Infinity" if v > 0 else "-Infinity").encode()
    if oid == pqf.VOIDOID:
        return lambda v: b""
    return lambda v: str(v).encode()


_BIN = {pqf.INT2OID: struct.Struct("!h"), pqf.INT4OID: struct.Struct("!i"),
        pqf.INT8OID: struct.Struct("!q"), pqf.OIDOID: struct.Struct("!I"),
        5069: struct.Struct("!Q"),
        pqf.FLOAT4OID: struct.Struct("!f"), pqf.FLOAT8OID: struct.Struct("!d")}
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
    if oid in _TEXT_TYPES:
        return str.encode
    if oid == pqf.BOOLOID:
        return lambda v: b"\x01" if v else b"\x00"
    if oid in _BIN:
        return _BIN[oid].pack
    if oid == pqf.NUMERICOID:
        return numeric_send
    if oid == pqf.VOIDOID:
        return lambda v: b""
    raise PgError("42883", f"no binary output function available for type {type_name(oid)}")


def binary_input(oid: int, argno: int) -> Callable[[bytes], Any]:
    """The type's receive function for Bind parameter ``argno`` (1-based)."""
    def wrong_format() -> PgError:
        return PgError("22P03", f"incorrect binary data format in bind parameter {argno}")

    if oid in _TEXT_TYPES:
        return lambda b: pqf.decode_text(b)
    if oid == pqf.BOOLOID:
        def bool_recv(b: bytes) -> bool:
            if len(b) != 1:
                raise wrong_format()
            return b != b"\x00"
        return bool_recv
    if oid in _BIN:
        st = _BIN[oid]

        def fixed_recv(b: bytes) -> Any:
            if len(b) != st.size:
                raise wrong_format()
            return st.unpack(b)[0]
        return fixed_recv
    if oid == pqf.NUMERICOID:
        def num_recv(b: bytes) -> Decimal:
            try:
                return numeric_recv(b)
            except struct.error:
                raise wrong_format() from None
        return num_recv
    raise PgError("42883", f"no binary input function available for type {type_name(oid)}")


def coerce(value: Any, source: int, target: int) -> Any:
    """An explicit or implicit cast between the supported types (via text where
    PostgreSQL's cast would give the same result)."""
    if value is None or source == target:
        return value
    if target in _TEXT_TYPES:
        return text_output(source)(value).decode()
    if source == pqf.BOOLOID and target == pqf.INT4OID:
        return int(value)
    if source in _INT_RANGE and target == pqf.BOOLOID:
        return value != 0
    if source in _NUMERIC_RANK and target in _INT_RANGE:
        v = int(Decimal(value).to_integral_value(rounding="ROUND_HALF_EVEN")
                if isinstance(value, float) else
                Decimal(value).to_integral_value(rounding="ROUND_HALF_UP"))
        lo, hi = _INT_RANGE[target]
        if not lo <= v <= hi:
            raise PgError("22003", f"{type_name(target)} out of range")
        return v
    if source in _NUMERIC_RANK and target in (pqf.FLOAT8OID, pqf.FLOAT4OID):
        return float(value)
    if source in _NUMERIC_RANK and target == pqf.NUMERICOID:
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if source in _TEXT_TYPES:
        return input_value(target, value)
    raise PgError("42846",
                  f"cannot cast type {type_name(source)} to {type_name(target)}")


# =============================================================================================
# Transaction block state (access/transam/xact.c's TBlockState, without data)
# =============================================================================================

TBLOCK_DEFAULT, TBLOCK_STARTED, TBLOCK_IMPLICIT, TBLOCK_INPROGRESS, TBLOCK_ABORT = range(5)


class TransactionBlock:
    """Which transaction the session is in, and the GUC stack that follows it.

    Every statement runs in a transaction (StartTransactionCommand); outside a
    block it ends with the statement (or at Sync in the extended protocol). A
    multi-statement simple query runs in an implicit block.

    The settings' transaction (their undo stack) is opened only when a statement
    may change a setting (``use_settings``): for all other statements opening and
    closing it would change nothing, and it is not free.
    """

    __slots__ = ("state", "settings", "settings_open")

    def __init__(self, settings: Any) -> None:
        self.state = TBLOCK_DEFAULT
        self.settings = settings
        self.settings_open = False

    @property
    def status(self) -> bytes:
        """ReadyForQuery's transaction status indicator."""
        s = self.state
        if s == TBLOCK_INPROGRESS:
            return b"T"
        if s == TBLOCK_ABORT:
            return b"E"
        return b"I"

    @property
    def is_aborted(self) -> bool:
        return self.state == TBLOCK_ABORT

    @property
    def in_block(self) -> bool:
        """IsTransactionBlock: an explicit or implicit block (not a lone statement)."""
        return self.state >= TBLOCK_IMPLICIT

    def start_command(self) -> None:
        """StartTransactionCommand."""
        if self.state == TBLOCK_DEFAULT:
            self.state = TBLOCK_STARTED

    def use_settings(self) -> None:
        """Before a statement that may change settings: open their transaction."""
        if not self.settings_open and self.state != TBLOCK_ABORT:
            self.settings_open = True
            self.settings.start_transaction()

    def _end_settings(self, commit: bool) -> None:
        if self.settings_open:
            self.settings_open = False
            self.settings.end_transaction(commit)

    @staticmethod
    def _end_xact(commit: bool) -> None:
        """CommitTransaction / AbortTransaction: the WAL and pg_xact part."""
        if xact.get_current_transaction_id_if_any():
            if commit:
                xact.commit_transaction()
            else:
                xact.abort_transaction()

    def commit_command(self) -> None:
        """CommitTransactionCommand: a transaction outside a block ends here."""
        if self.state == TBLOCK_STARTED:
            self._end_xact(True)
            self.state = TBLOCK_DEFAULT
            self._end_settings(True)

    def begin_implicit(self) -> None:
        if self.state == TBLOCK_STARTED:
            self.state = TBLOCK_IMPLICIT

    def end_implicit(self) -> None:
        if self.state == TBLOCK_IMPLICIT:
            self.state = TBLOCK_STARTED

    def abort_current(self) -> None:
        """AbortCurrentTransaction after an ERROR: a block stays, aborted, until ROLLBACK."""
        s = self.state
        if s in (TBLOCK_STARTED, TBLOCK_IMPLICIT):
            self._end_xact(False)
            self.state = TBLOCK_DEFAULT
            self._end_settings(False)
        elif s == TBLOCK_INPROGRESS:
            self._end_xact(False)
            self.state = TBLOCK_ABORT
            self._end_settings(False)

    def reset(self) -> None:
        """Forget everything (the session is ending): an open transaction aborts."""
        self._end_xact(False)
        self._end_settings(False)
        self.state = TBLOCK_DEFAULT

    # -- the transaction statements ----------------------------------------------------

    def begin(self) -> None:
        """BeginTransactionBlock."""
        if self.state in (TBLOCK_STARTED, TBLOCK_IMPLICIT):
            self.state = TBLOCK_INPROGRESS
        elif self.state == TBLOCK_INPROGRESS:
            elog.ereport(elog.WARNING, "there is already a transaction in progress",
                         sqlstate="25001")

    def commit(self, chain: bool) -> str:
        """EndTransactionBlock; returns the command tag (ROLLBACK for an aborted block)."""
        s = self.state
        if s == TBLOCK_INPROGRESS:
            self._finish(True, chain)
            return "COMMIT"
        if s == TBLOCK_ABORT:
            self._finish(None, chain)
            return "ROLLBACK"
        if chain:
            raise PgError("25P01", "COMMIT AND CHAIN can only be used in transaction blocks")
        elog.ereport(elog.WARNING, "there is no transaction in progress", sqlstate="25P01")
        self.state = TBLOCK_STARTED  # an implicit block ends: commit what it did
        return "COMMIT"

    def rollback(self, chain: bool) -> str:
        """UserAbortTransactionBlock."""
        s = self.state
        if s in (TBLOCK_INPROGRESS, TBLOCK_ABORT):
            self._finish(False if s == TBLOCK_INPROGRESS else None, chain)
            return "ROLLBACK"
        if chain:
            raise PgError("25P01", "ROLLBACK AND CHAIN can only be used in transaction blocks")
        elog.ereport(elog.WARNING, "there is no transaction in progress", sqlstate="25P01")
        self._end_xact(False)
        self.state = TBLOCK_DEFAULT
        self._end_settings(False)
        return "ROLLBACK"

    def _finish(self, commit: bool | None, chain: bool) -> None:
        """End the block (commit None: already aborted); AND CHAIN starts the next one
        with the same isolation level and read-only state."""
        keep = {}
        if chain:
            keep = {n: self.settings.show(n)
                    for n in ("transaction_isolation", "transaction_read_only")}
        if commit is not None:
            self._end_xact(commit)
            self._end_settings(commit)
        self.state = TBLOCK_DEFAULT
        if chain:
            self.state = TBLOCK_INPROGRESS
            self.use_settings()
            for name, value in keep.items():
                self.settings.set(name, value, is_local=True)


# =============================================================================================
# Statements
# =============================================================================================


@dataclass
class Column:
    name: str
    type_oid: int


@dataclass
class Session:
    """What statements may touch of the session (set up by tcop.postgres)."""

    settings: Any
    xact: TransactionBlock
    user: str
    database: str
    backend_pid: int
    prepared: dict[str, Any] = field(default_factory=dict)  # named prepared statements
    sleep: Callable[[float], None] = time.sleep  # pg_sleep's wait, interruptible
    on_discard_all: Callable[[], None] = lambda: None


# run(session, params) -> (rows, completion tag)
Runner = Callable[[Session, Sequence[Any]], tuple[list[tuple[Any, ...]], str]]

LOGSTMT_ALL, LOGSTMT_MOD, LOGSTMT_DDL = 3, 2, 1


@dataclass(eq=False)
class Statement:
    """One compiled statement (a CachedPlanSource): what tcop needs to run it."""

    text: str  # this statement's own source text
    tag: str  # the command tag without row count, for ps and log_statement
    run: Runner
    columns: list[Column] | None = None  # None: returns no rows (NoData)
    param_types: list[int] = field(default_factory=list)
    is_xact_stmt: bool = False  # BEGIN/COMMIT/...: ends its own transaction command
    is_xact_exit: bool = False  # allowed in an aborted block (IsTransactionExitStmt)
    analysis_error: PgError | None = None  # raised at Parse for plannable statements
    log_level: int = LOGSTMT_ALL  # GetCommandLogLevel
    # May change a setting, so ParameterStatus must be checked before ReadyForQuery
    # (reported_changes is too slow to call on every round trip).
    changes_settings: bool = False
    protocol_cache: Any = None  # tcop.postgres keeps its encoders for this statement here


def _raise(err: PgError) -> Runner:
    def run(_s: Session, _p: Sequence[Any]) -> tuple[list[tuple[Any, ...]], str]:
        raise err
    return run


def compile_query(query: str, param_types: list[int] | None = None) -> list[Statement]:
    """Parse and compile every statement of ``query``.

    ``param_types`` are the types a Parse message declared (0 = infer); None for a
    simple query, where $n is an error. Only a syntax error raises; other errors are
    carried by the statements they concern.
    """
    raw = parse(query)
    src = query.encode()
    out = []
    for rs in raw:
        start = rs.get("stmt_location", 0)
        length = rs.get("stmt_len", 0)
        text = (src[start:start + length] if length else src[start:]).decode().strip()
        out.append(compile_statement(rs["stmt"], text, src, param_types))
    return out


_PLANNABLE = frozenset({"SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"})


def compile_statement(node: dict[str, Any], text: str, src: bytes,
                      param_types: list[int] | None) -> Statement:
    (kind, body), = node.items()
    tag = command_tag(kind, body)
    try:
        st = _compile(kind, body, tag, text, src, param_types)
    except PgError as err:
        # Parse analysis fails at Parse for plannable statements; utility statements
        # are only looked at when they run.
        st = Statement(text, tag, _raise(err),
                       analysis_error=err if kind in _PLANNABLE else None)
    if not st.param_types and param_types:
        st.param_types = list(param_types)
    st.log_level = command_log_level(kind, tag)
    if kind in ("VariableSetStmt", "TransactionStmt", "DiscardStmt"):
        st.changes_settings = True
    return st


def _compile(kind: str, body: dict[str, Any], tag: str, text: str, src: bytes,
             param_types: list[int] | None) -> Statement:
    if kind == "VariableSetStmt":
        return _compile_set(body, text, tag, src)
    if kind == "VariableShowStmt":
        return _compile_show(body, text)
    if kind == "TransactionStmt":
        return _compile_transaction(body, text, tag, src)
    if kind == "SelectStmt":
        return _compile_select(body, text, src, param_types)
    if kind == "DeallocateStmt":
        return _compile_deallocate(body, text, tag)
    if kind == "DiscardStmt":
        return _compile_discard(body, text, tag)
    if kind == "CheckPointStmt":
        return Statement(text, tag, _run_checkpoint)
    raise PgError("0A000", f'"{tag}" is not supported yet')


def _run_checkpoint(s: Session, _p: Sequence[Any]) -> tuple[list, str]:
    """CHECKPOINT: an immediate checkpoint, waiting for it (RequestCheckpoint)."""
    if not s.settings.is_superuser:
        raise PgError("42501", "must be superuser to do CHECKPOINT")
    from access.xlogcheckpoint import CHECKPOINT_FORCE, CHECKPOINT_IMMEDIATE, CHECKPOINT_WAIT
    from procs.checkpointer import request_checkpoint

    request_checkpoint(CHECKPOINT_IMMEDIATE | CHECKPOINT_FORCE | CHECKPOINT_WAIT)
    return [], "CHECKPOINT"


# -- SET / RESET / SHOW ------------------------------------------------------------------------

# GUC_LIST_INPUT and GUC_LIST_QUOTE parameters (flags guc_tables does not carry yet).
_LIST_INPUT = frozenset({"search_path", "datestyle", "log_destination", "listen_addresses",
                         "unix_socket_directories", "temp_tablespaces"})
_LIST_QUOTE = frozenset({"search_path", "temp_tablespaces"})
_NEEDS_QUOTES = re.compile(r"[^a-z0-9_]")
_QUOTED_KEYWORDS = (keywords.RESERVED_KEYWORDS | keywords.COL_NAME_KEYWORDS
                    | keywords.TYPE_FUNC_NAME_KEYWORDS)


def quote_identifier(ident: str) -> str:
    """ruleutils.c quote_identifier: quote unless a lower-case non-keyword identifier."""
    safe = (ident and (ident[0].islower() and ident[0].isascii() or ident[0] == "_")
            and not _NEEDS_QUOTES.search(ident) and ident not in _QUOTED_KEYWORDS)
    return ident if safe else '"' + ident.replace('"', '""') + '"'


def _const_text(node: dict[str, Any], src: bytes) -> str:
    """A SET argument as flatten_set_variable_args renders it."""
    if "A_Const" not in node:
        raise PgError("0A000", "this SET argument is not supported yet")
    const = node["A_Const"]
    if "ival" in const:
        return str(_int_const(const, src))
    if "fval" in const:
        return const["fval"]["fval"]
    if "sval" in const:
        return const["sval"].get("sval", "")
    if "boolval" in const:
        return "true" if const["boolval"].get("boolval") else "false"
    raise PgError("0A000", "this SET argument is not supported yet")


_NEG_INT = re.compile(rb"-\s*(\d+)")


def _int_const(const: dict[str, Any], src: bytes) -> int:
    """An Integer constant. libpg_query's JSON drops negative values (it writes
    ``"ival": {}``), so a missing value is read back from the source text."""
    v = const["ival"].get("ival")
    if v is not None:
        return v
    m = _NEG_INT.match(src, const.get("location", 0))
    return -int(m.group(1)) if m else 0


def flatten_set_args(name: str, args: list[dict[str, Any]], src: bytes) -> str:
    lname = name.lower()
    if lname not in _LIST_INPUT and len(args) != 1:
        raise PgError("22023", f"SET {name} takes only one argument")
    parts = []
    for arg in args:
        if "TypeCast" in arg:  # SET TIME ZONE INTERVAL '...'
            inner = _const_text(arg["TypeCast"]["arg"], src)
            parts.append(f"INTERVAL '{inner}'")
            continue
        value = _const_text(arg, src)
        if lname in _LIST_QUOTE and "sval" in arg.get("A_Const", {}):
            value = quote_identifier(value)
        parts.append(value)
    return ", ".join(parts)


def _warn_no_block(session: Session, what: str) -> None:
    """WarnNoTransactionBlock."""
    if not session.xact.in_block:
        elog.ereport(elog.WARNING, f"{what} can only be used in transaction blocks",
                     sqlstate="25P01")


def _guc_error(err: GucError) -> PgError:
    return PgError(err.sqlstate, err.message, detail=err.detail, hint=err.hint)


def set_guc(session: Session, name: str, value: str | None, is_local: bool) -> None:
    session.xact.use_settings()
    try:
        session.settings.set(name, value, context=GucContext.USERSET,
                             source=GucSource.SESSION, is_local=is_local)
    except GucError as err:
        raise _guc_error(err) from None


def _compile_set(body: dict[str, Any], text: str, tag: str, src: bytes) -> Statement:
    kind = body["kind"]
    name = body.get("name", "")
    is_local = bool(body.get("is_local"))

    if kind == "VAR_RESET_ALL":
        def run(s: Session, _p: Sequence[Any]) -> tuple[list, str]:
            s.xact.use_settings()
            s.settings.reset_all()
            return [], tag
        return Statement(text, tag, run)
    if kind == "VAR_SET_MULTI":
        return _compile_set_multi(body, text, tag, src)
    if kind == "VAR_SET_CURRENT":
        raise PgError("0A000", "SET FROM CURRENT is not supported yet")
    # VAR_SET_DEFAULT and VAR_RESET set the reset value (None).
    value = flatten_set_args(name, body["args"], src) if kind == "VAR_SET_VALUE" else None
    warn = "SET LOCAL" if is_local and kind != "VAR_RESET" else \
        "RESET TRANSACTION" if kind == "VAR_RESET" and name == "transaction_isolation" else None

    def run_set(s: Session, _p: Sequence[Any]) -> tuple[list, str]:
        if warn:
            _warn_no_block(s, warn)
        set_guc(s, name, value, is_local)
        return [], tag
    return Statement(text, tag, run_set)


_SET_MULTI_TARGETS = {
    "TRANSACTION": ("SET TRANSACTION", ""),
    "SESSION CHARACTERISTICS": (None, "default_"),
}


def _compile_set_multi(body: dict[str, Any], text: str, tag: str, src: bytes) -> Statement:
    name = body["name"]
    if name not in _SET_MULTI_TARGETS:
        raise PgError("0A000", f"SET {name} is not supported yet")
    warn, prefix = _SET_MULTI_TARGETS[name]
    items = []
    for item in body.get("args", []):
        de = item["DefElem"]
        if de["defname"] == "transaction_deferrable":
            continue  # no serializable snapshots to defer yet
        items.append((prefix + de["defname"], _const_text(de["arg"], src)))

    def run(s: Session, _p: Sequence[Any]) -> tuple[list, str]:
        if warn:
            _warn_no_block(s, warn)
        for guc, value in items:
            set_guc(s, guc, value, bool(body.get("is_local")))
        return [], tag
    return Statement(text, tag, run)


def _compile_show(body: dict[str, Any], text: str) -> Statement:
    name = body["name"]
    if name.lower() == "all":
        cols = [Column("name", pqf.TEXTOID), Column("setting", pqf.TEXTOID),
                Column("description", pqf.TEXTOID)]

        def run_all(s: Session, _p: Sequence[Any]) -> tuple[list, str]:
            return list(s.settings.show_all()), "SHOW"
        return Statement(text, "SHOW", run_all, cols)

    def run(s: Session, _p: Sequence[Any]) -> tuple[list, str]:
        try:
            return [(s.settings.show(name),)], "SHOW"
        except GucError as err:
            raise _guc_error(err) from None

    # The column is named as the parameter is spelled in the table (SHOW timezone
    # gives "TimeZone"); unknown names fail when run, as in PostgreSQL.
    defn = guc_tables.find(name)
    return Statement(text, "SHOW", run, [Column(defn.name if defn else name, pqf.TEXTOID)])


# -- transaction statements ----------------------------------------------------------------------

_XACT_TAGS = {"TRANS_STMT_BEGIN": "BEGIN", "TRANS_STMT_START": "START TRANSACTION",
              "TRANS_STMT_COMMIT": "COMMIT", "TRANS_STMT_ROLLBACK": "ROLLBACK",
              "TRANS_STMT_SAVEPOINT": "SAVEPOINT", "TRANS_STMT_RELEASE": "RELEASE",
              "TRANS_STMT_ROLLBACK_TO": "ROLLBACK", "TRANS_STMT_PREPARE": "PREPARE TRANSACTION",
              "TRANS_STMT_COMMIT_PREPARED": "COMMIT PREPARED",
              "TRANS_STMT_ROLLBACK_PREPARED": "ROLLBACK PREPARED"}
_XACT_EXIT = frozenset({"TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK", "TRANS_STMT_ROLLBACK_TO",
                        "TRANS_STMT_PREPARE"})
_SAVEPOINT_KINDS = {"TRANS_STMT_SAVEPOINT": "SAVEPOINT", "TRANS_STMT_RELEASE": "RELEASE SAVEPOINT",
                    "TRANS_STMT_ROLLBACK_TO": "ROLLBACK TO SAVEPOINT"}


def _compile_transaction(body: dict[str, Any], text: str, tag: str,
                         src: bytes) -> Statement:
    kind = body["kind"]
    chain = bool(body.get("chain"))
    exit_stmt = kind in _XACT_EXIT

    if kind in ("TRANS_STMT_BEGIN", "TRANS_STMT_START"):
        options = [(de["DefElem"]["defname"], _const_text(de["DefElem"]["arg"], src))
                   for de in body.get("options", [])]

        def run_begin(s: Session, _p: Sequence[Any]) -> tuple[list, str]:
            s.xact.begin()
            for name, value in options:
                if name != "transaction_deferrable":
                    set_guc(s, name, value, True)
            return [], tag
        return Statement(text, tag, run_begin, is_xact_stmt=True)

    if kind == "TRANS_STMT_COMMIT":
        def run_commit(s: Session, _p: Sequence[Any]) -> tuple[list, str]:
            return [], s.xact.commit(chain)
        return Statement(text, tag, run_commit, is_xact_stmt=True, is_xact_exit=True)

    if kind == "TRANS_STMT_ROLLBACK":
        def run_rollback(s: Session, _p: Sequence[Any]) -> tuple[list, str]:
            return [], s.xact.rollback(chain)
        return Statement(text, tag, run_rollback, is_xact_stmt=True, is_xact_exit=True)

    what = _SAVEPOINT_KINDS.get(kind)

    def run_unsupported(s: Session, _p: Sequence[Any]) -> tuple[list, str]:
        if what and not s.xact.in_block:
            raise PgError("25P01", f"{what} can only be used in transaction blocks")
        raise PgError("0A000", f'"{what or tag}" is not supported yet')
    return Statement(text, tag, run_unsupported, is_xact_stmt=True, is_xact_exit=exit_stmt)


# -- DEALLOCATE / DISCARD --------------------------------------------------------------------------

def _compile_deallocate(body: dict[str, Any], text: str, tag: str) -> Statement:
    name = body.get("name")

    def run(s: Session, _p: Sequence[Any]) -> tuple[list, str]:
        if name is None:
            s.prepared.clear()
        elif s.prepared.pop(name, None) is None:
            raise PgError("26000", f'prepared statement "{name}" does not exist')
        return [], tag
    return Statement(text, tag, run)


def _compile_discard(body: dict[str, Any], text: str, tag: str) -> Statement:
    target = body["target"]

    def run(s: Session, _p: Sequence[Any]) -> tuple[list, str]:
        if target == "DISCARD_ALL":
            if s.xact.in_block:
                raise PgError("25001", "DISCARD ALL cannot run inside a transaction block")
            s.xact.use_settings()
            s.settings.reset_all()
            try:
                s.settings.set("session_authorization", None)
            except GucError:
                pass
            s.prepared.clear()
            s.on_discard_all()
        # PLANS, SEQUENCES, TEMP: nothing of the kind exists yet.
        return [], tag
    return Statement(text, tag, run)


# =============================================================================================
# SELECT <target list>: constants, parameters, casts and a few functions
# =============================================================================================

Evaluator = Callable[[Session, Sequence[Any]], Any]


@dataclass
class Expr:
    type_oid: int
    eval: Evaluator
    is_const: bool = False
    value: Any = None  # for constants
    param: int | None = None  # 0-based parameter number for a bare $n


class _Ctx:
    """Compilation state of one SELECT: source text and parameter types."""

    def __init__(self, src: bytes, param_types: list[int] | None) -> None:
        self.src = src
        self.param_types = param_types

    def position(self, location: int | None) -> int | None:
        if location is None or location < 0:
            return None
        return len(self.src[:location].decode(errors="ignore")) + 1


def _compile_select(body: dict[str, Any], text: str, src: bytes,
                    param_types: list[int] | None) -> Statement:
    allowed = {"targetList", "limitOption", "op"}
    if set(body) - allowed or body.get("op") != "SETOP_NONE" or "targetList" not in body:
        raise PgError("0A000", '"SELECT" is not supported yet')
    ctx = _Ctx(src, None if param_types is None else list(param_types))
    names: list[str] = []
    exprs: list[Expr] = []
    for target in body["targetList"]:
        rt = target["ResTarget"]
        expr = compile_expr(rt["val"], ctx)
        if expr.type_oid == pqf.UNKNOWNOID:
            expr = _coerce_expr(expr, pqf.TEXTOID)  # unknown literals come out as text
        exprs.append(expr)
        names.append(rt.get("name") or figure_colname(rt["val"]))
    final_params: list[int] = []
    if ctx.param_types is not None:
        for i, t in enumerate(ctx.param_types):
            if t == 0:
                raise PgError("42P18", f"could not determine data type of parameter ${i + 1}")
        final_params = ctx.param_types
    cols = [Column(n, e.type_oid) for n, e in zip(names, exprs, strict=True)]
    evals = [e.eval for e in exprs]
    changes = "set_config" in text.lower()
    if all(e.is_const for e in exprs):
        row = tuple(e.value for e in exprs)

        def run_const(_s: Session, _p: Sequence[Any]) -> tuple[list, str]:
            return [row], "SELECT 1"
        run: Runner = run_const
    else:
        def run_exprs(s: Session, p: Sequence[Any]) -> tuple[list, str]:
            return [tuple([ev(s, p) for ev in evals])], "SELECT 1"
        run = run_exprs
    return Statement(text, "SELECT", run, cols, final_params, changes_settings=changes)


def figure_colname(node: dict[str, Any]) -> str:
    """FigureColname for the expressions tusk supports."""
    (kind, body), = node.items()
    if kind == "FuncCall":
        return body["funcname"][-1]["String"]["sval"]
    if kind == "TypeCast":
        inner = figure_colname(body["arg"])
        if inner != "?column?":
            return inner
        return body["typeName"]["names"][-1]["String"]["sval"]
    if kind == "SQLValueFunction":
        return _SVF[body["op"]]
    return "?column?"


_SVF = {"SVFOP_CURRENT_USER": "current_user", "SVFOP_SESSION_USER": "session_user",
        "SVFOP_USER": "user", "SVFOP_CURRENT_ROLE": "current_role"}


def _const(oid: int, value: Any) -> Expr:
    return Expr(oid, lambda _s, _p: value, True, value)


def compile_expr(node: dict[str, Any], ctx: _Ctx) -> Expr:
    (kind, body), = node.items()
    if kind == "A_Const":
        return _compile_const(body, ctx)
    if kind == "TypeCast":
        return _compile_cast(body, ctx)
    if kind == "ParamRef":
        return _compile_param(body, ctx)
    if kind == "FuncCall":
        return _compile_func(body, ctx)
    if kind == "SQLValueFunction" and body["op"] in _SVF:
        return Expr(NAMEOID, lambda s, _p: s.user)
    location = body.get("location") if isinstance(body, dict) else None
    raise PgError("0A000", "this expression is not supported yet",
                  position=ctx.position(location))


def _compile_const(const: dict[str, Any], ctx: _Ctx) -> Expr:
    if const.get("isnull"):
        return _const(pqf.UNKNOWNOID, None)
    if "ival" in const:
        return _const(pqf.INT4OID, _int_const(const, ctx.src))
    if "fval" in const:
        text = const["fval"]["fval"]
        if re.fullmatch(r"-?\d+", text):
            v = int(text)
            if -(2**63) <= v < 2**63:
                return _const(pqf.INT8OID, v)
        return _const(pqf.NUMERICOID, Decimal(text))
    if "sval" in const:
        return _const(pqf.UNKNOWNOID, const["sval"].get("sval", ""))
    if "boolval" in const:
        return _const(pqf.BOOLOID, bool(const["boolval"].get("boolval")))
    raise PgError("0A000", "this constant is not supported yet",
                  position=ctx.position(const.get("location")))


def _type_from_name(type_name_node: dict[str, Any], ctx: _Ctx) -> int:
    names = [n["String"]["sval"] for n in type_name_node["names"]]
    if type_name_node.get("arrayBounds"):
        names = ["array"]
    oid = TYPE_BY_NAME.get(names[-1]) if len(names) == 1 or names[0] == "pg_catalog" else None
    if oid is None:
        raise PgError("0A000", f'type "{".".join(names)}" is not supported yet',
                      position=ctx.position(type_name_node.get("location")))
    return oid


def _compile_cast(body: dict[str, Any], ctx: _Ctx) -> Expr:
    target = _type_from_name(body["typeName"], ctx)
    inner = compile_expr(body["arg"], ctx)
    if inner.param is not None and ctx.param_types is not None \
            and ctx.param_types[inner.param] == 0:
        ctx.param_types[inner.param] = target  # $1::int declares the parameter
        inner = Expr(target, inner.eval, param=inner.param)
    return _coerce_expr(inner, target)


def _coerce_expr(expr: Expr, target: int) -> Expr:
    source = expr.type_oid
    if source == target:
        return expr
    if expr.is_const:
        # Folded at plan time, like PostgreSQL's eval_const_expressions; a bad literal
        # fails when the statement runs.
        try:
            return _const(target, coerce(expr.value, source, target))
        except PgError as err:
            return Expr(target, _raiser(err))
    ev = expr.eval
    return Expr(target, lambda s, p: coerce(ev(s, p), source, target))


def _raiser(err: PgError) -> Evaluator:
    def fail(_s: Session, _p: Sequence[Any]) -> Any:
        raise err
    return fail


def _compile_param(body: dict[str, Any], ctx: _Ctx) -> Expr:
    n = body["number"]
    if ctx.param_types is None or n < 1:
        raise PgError("42P02", f"there is no parameter ${n}",
                      position=ctx.position(body.get("location")))
    while len(ctx.param_types) < n:
        ctx.param_types.append(0)
    i = n - 1
    return Expr(ctx.param_types[i] or pqf.UNKNOWNOID, lambda _s, p: p[i], param=i)


# -- functions ---------------------------------------------------------------------------------

def _version(_s: Session) -> str:
    machine = platform.machine() or "unknown"
    system = platform.system().lower()
    triple = f"{machine}-pc-linux-gnu" if system == "linux" else f"{machine}-{system}"
    bits = platform.architecture()[0].replace("bit", "-bit")
    return (f"PostgreSQL {PG_VERSION} (tusk {TUSK_VERSION}) on {triple}, "
            f"compiled by Python {platform.python_version()}, {bits}")


def _current_setting(s: Session, name: str | None, missing_ok: bool = False) -> str | None:
    if name is None:
        return None
    try:
        return s.settings.show(name)
    except GucError as err:
        if missing_ok and err.sqlstate == "42704":
            return None
        raise _guc_error(err) from None


def _set_config(s: Session, name: str | None, value: str | None,
                is_local: bool | None) -> str | None:
    if name is None:
        raise PgError("22023", "SET requires parameter name")
    set_guc(s, name, value, bool(is_local))
    return _current_setting(s, name)


def _pg_sleep(s: Session, seconds: float | None) -> None:
    if seconds is not None and seconds > 0:
        s.sleep(seconds)
    return None


@dataclass(frozen=True)
class Function:
    arg_types: tuple[int, ...]
    result_type: int
    impl: Callable[..., Any]
    strict: bool = True  # NULL in, NULL out


PG_LSNOID = 3220


def _wal_lsn(position: Callable[[], int]) -> Callable[[Session], str]:
    """pg_current_wal_lsn() and friends: an error during recovery, as PostgreSQL."""
    def fn(_s: Session) -> str:
        from access import xlog
        from access.xlog_internal import format_lsn

        if xlog.recovery_in_progress():
            raise PgError("55000", "recovery is in progress",
                          hint="WAL control functions cannot be executed during recovery.")
        return format_lsn(position())
    return fn


def _pg_switch_wal(s: Session) -> str:
    from access import xlog
    from access.xlog_internal import format_lsn

    if not s.settings.is_superuser:
        raise PgError("42501", "permission denied for function pg_switch_wal")
    if xlog.recovery_in_progress():
        raise PgError("55000", "recovery is in progress",
                      hint="WAL control functions cannot be executed during recovery.")
    return format_lsn(xlog.request_xlog_switch())


def _lazy(name: str) -> Callable[[], int]:
    def get() -> int:
        from access import xlog

        return getattr(xlog, name)()
    return get


XID8OID = 5069


def _txid_status(_s: Session, full_xid: int) -> str | None:
    return xact.transaction_status(full_xid)


def _txid_current_if_assigned(_s: Session) -> int | None:
    xid = xact.get_current_transaction_id_if_any()
    return xact.current_full_transaction_id() if xid else None


FUNCTIONS: dict[str, list[Function]] = {
    "txid_current": [Function((), pqf.INT8OID, lambda s: xact.current_full_transaction_id())],
    "pg_current_xact_id": [Function((), XID8OID,
                                    lambda s: xact.current_full_transaction_id())],
    "txid_current_if_assigned": [Function((), pqf.INT8OID, _txid_current_if_assigned)],
    "pg_current_xact_id_if_assigned": [Function((), XID8OID, _txid_current_if_assigned)],
    "txid_status": [Function((pqf.INT8OID,), pqf.TEXTOID, _txid_status)],
    "pg_xact_status": [Function((XID8OID,), pqf.TEXTOID, _txid_status)],
    "pg_current_wal_lsn": [Function((), PG_LSNOID, _wal_lsn(_lazy("get_xlog_write_rec_ptr")))],
    "pg_current_wal_insert_lsn": [Function((), PG_LSNOID,
                                           _wal_lsn(_lazy("get_xlog_insert_rec_ptr")))],
    "pg_current_wal_flush_lsn": [Function((), PG_LSNOID, _wal_lsn(_lazy("get_flush_rec_ptr")))],
    "pg_switch_wal": [Function((), PG_LSNOID, _pg_switch_wal)],
    "version": [Function((), pqf.TEXTOID, _version)],
    "current_setting": [Function((pqf.TEXTOID,), pqf.TEXTOID, _current_setting),
                        Function((pqf.TEXTOID, pqf.BOOLOID), pqf.TEXTOID, _current_setting)],
    "set_config": [Function((pqf.TEXTOID, pqf.TEXTOID, pqf.BOOLOID), pqf.TEXTOID, _set_config,
                            strict=False)],
    "pg_sleep": [Function((pqf.FLOAT8OID,), pqf.VOIDOID, _pg_sleep)],
    "current_database": [Function((), NAMEOID, lambda s: s.database)],
    "pg_backend_pid": [Function((), pqf.INT4OID, lambda s: s.backend_pid)],
}


def _can_coerce(source: int, target: int) -> bool:
    """can_coerce_type for implicit casts among the supported types."""
    if source == target or source == pqf.UNKNOWNOID:
        return True
    if source in _NUMERIC_RANK and target in _NUMERIC_RANK:
        return _NUMERIC_RANK[source] <= _NUMERIC_RANK[target]
    return source in _TEXT_TYPES and target in _TEXT_TYPES


def _compile_func(body: dict[str, Any], ctx: _Ctx) -> Expr:
    names = [n["String"]["sval"] for n in body["funcname"]]
    fname = names[-1]
    location = body.get("location")
    if len(names) > 2 or (len(names) == 2 and names[0] != "pg_catalog"):
        raise PgError("0A000", f"function {'.'.join(names)}() is not supported yet",
                      position=ctx.position(location))
    for unsupported in ("agg_star", "agg_distinct", "agg_order", "over", "agg_filter",
                        "func_variadic", "agg_within_group"):
        if body.get(unsupported):
            raise PgError("0A000", f"this use of function {fname}() is not supported yet",
                          position=ctx.position(location))
    args = [compile_expr(a, ctx) for a in body.get("args", [])]
    candidates = FUNCTIONS.get(fname)
    if candidates is None:
        raise PgError("0A000", f"function {fname}() is not supported yet",
                      position=ctx.position(location))
    for fn in candidates:
        if len(fn.arg_types) == len(args) and all(
                _can_coerce(a.type_oid, t) for a, t in zip(args, fn.arg_types, strict=True)):
            break
    else:
        shown = ", ".join(type_name(a.type_oid) for a in args)
        raise PgError("42883", f"function {fname}({shown}) does not exist",
                      hint="No function matches the given name and argument types. "
                           "You might need to add explicit type casts.",
                      position=ctx.position(location))
    coerced = []
    for a, t in zip(args, fn.arg_types, strict=True):
        if a.param is not None and ctx.param_types is not None \
                and ctx.param_types[a.param] == 0:
            ctx.param_types[a.param] = t  # an unknown parameter takes the argument's type
            a = Expr(t, a.eval, param=a.param)
        coerced.append(_coerce_expr(a, t))
    evals = [a.eval for a in coerced]
    impl, strict = fn.impl, fn.strict

    def call(s: Session, p: Sequence[Any]) -> Any:
        values = [ev(s, p) for ev in evals]
        if strict and None in values:
            return None
        return impl(s, *values)
    return Expr(fn.result_type, call)


# =============================================================================================
# Command tags and log levels (CreateCommandTag, GetCommandLogLevel)
# =============================================================================================

_SIMPLE_TAGS = {
    "InsertStmt": "INSERT", "DeleteStmt": "DELETE", "UpdateStmt": "UPDATE", "MergeStmt": "MERGE",
    "SelectStmt": "SELECT", "CreateStmt": "CREATE TABLE", "CreateSchemaStmt": "CREATE SCHEMA",
    "IndexStmt": "CREATE INDEX", "ViewStmt": "CREATE VIEW", "TruncateStmt": "TRUNCATE TABLE",
    "CopyStmt": "COPY", "ExplainStmt": "EXPLAIN", "CreatedbStmt": "CREATE DATABASE",
    "DropdbStmt": "DROP DATABASE", "AlterDatabaseStmt": "ALTER DATABASE",
    "AlterDatabaseSetStmt": "ALTER DATABASE", "AlterDatabaseRefreshCollStmt": "ALTER DATABASE",
    "CreateSeqStmt": "CREATE SEQUENCE", "AlterSeqStmt": "ALTER SEQUENCE", "DoStmt": "DO",
    "CallStmt": "CALL", "CheckPointStmt": "CHECKPOINT", "ListenStmt": "LISTEN",
    "NotifyStmt": "NOTIFY", "UnlistenStmt": "UNLISTEN", "LockStmt": "LOCK TABLE",
    "LoadStmt": "LOAD", "ClusterStmt": "CLUSTER", "ReindexStmt": "REINDEX",
    "CreateExtensionStmt": "CREATE EXTENSION", "AlterExtensionStmt": "ALTER EXTENSION",
    "AlterExtensionContentsStmt": "ALTER EXTENSION", "CreateTrigStmt": "CREATE TRIGGER",
    "CreateEventTrigStmt": "CREATE EVENT TRIGGER", "AlterEventTrigStmt": "ALTER EVENT TRIGGER",
    "CreatePLangStmt": "CREATE LANGUAGE", "AlterRoleStmt": "ALTER ROLE",
    "AlterRoleSetStmt": "ALTER ROLE", "DropRoleStmt": "DROP ROLE", "DropOwnedStmt": "DROP OWNED",
    "ReassignOwnedStmt": "REASSIGN OWNED", "CreateDomainStmt": "CREATE DOMAIN",
    "AlterDomainStmt": "ALTER DOMAIN", "CreateConversionStmt": "CREATE CONVERSION",
    "CreateCastStmt": "CREATE CAST", "CreateOpClassStmt": "CREATE OPERATOR CLASS",
    "CreateOpFamilyStmt": "CREATE OPERATOR FAMILY", "AlterOpFamilyStmt": "ALTER OPERATOR FAMILY",
    "AlterOperatorStmt": "ALTER OPERATOR", "AlterTypeStmt": "ALTER TYPE",
    "AlterTSDictionaryStmt": "ALTER TEXT SEARCH DICTIONARY",
    "AlterTSConfigurationStmt": "ALTER TEXT SEARCH CONFIGURATION",
    "CreateTableSpaceStmt": "CREATE TABLESPACE", "DropTableSpaceStmt": "DROP TABLESPACE",
    "AlterTableSpaceOptionsStmt": "ALTER TABLESPACE",
    "CreateFdwStmt": "CREATE FOREIGN DATA WRAPPER", "AlterFdwStmt": "ALTER FOREIGN DATA WRAPPER",
    "CreateForeignServerStmt": "CREATE SERVER", "AlterForeignServerStmt": "ALTER SERVER",
    "CreateUserMappingStmt": "CREATE USER MAPPING", "AlterUserMappingStmt": "ALTER USER MAPPING",
    "DropUserMappingStmt": "DROP USER MAPPING", "CreateForeignTableStmt": "CREATE FOREIGN TABLE",
    "ImportForeignSchemaStmt": "IMPORT FOREIGN SCHEMA", "CompositeTypeStmt": "CREATE TYPE",
    "CreateEnumStmt": "CREATE TYPE", "CreateRangeStmt": "CREATE TYPE", "AlterEnumStmt": "ALTER TYPE",
    "RuleStmt": "CREATE RULE", "CreatePolicyStmt": "CREATE POLICY",
    "AlterPolicyStmt": "ALTER POLICY", "CreateAmStmt": "CREATE ACCESS METHOD",
    "CreatePublicationStmt": "CREATE PUBLICATION", "AlterPublicationStmt": "ALTER PUBLICATION",
    "CreateSubscriptionStmt": "CREATE SUBSCRIPTION",
    "AlterSubscriptionStmt": "ALTER SUBSCRIPTION", "DropSubscriptionStmt": "DROP SUBSCRIPTION",
    "AlterCollationStmt": "ALTER COLLATION", "CreateStatsStmt": "CREATE STATISTICS",
    "AlterStatsStmt": "ALTER STATISTICS", "AlterSystemStmt": "ALTER SYSTEM",
    "AlterDefaultPrivilegesStmt": "ALTER DEFAULT PRIVILEGES",
    "CreateTransformStmt": "CREATE TRANSFORM", "SecLabelStmt": "SECURITY LABEL",
    "CommentStmt": "COMMENT", "PrepareStmt": "PREPARE", "ExecuteStmt": "EXECUTE",
    "DeclareCursorStmt": "DECLARE CURSOR", "RefreshMatViewStmt": "REFRESH MATERIALIZED VIEW",
    "ConstraintsSetStmt": "SET CONSTRAINTS", "VariableShowStmt": "SHOW",
    "CreateConversion": "CREATE CONVERSION",
}
_OBJECT_NAMES = {
    "OBJECT_MATVIEW": "MATERIALIZED VIEW", "OBJECT_FDW": "FOREIGN DATA WRAPPER",
    "OBJECT_FOREIGN_SERVER": "SERVER", "OBJECT_TSCONFIGURATION": "TEXT SEARCH CONFIGURATION",
    "OBJECT_TSDICTIONARY": "TEXT SEARCH DICTIONARY", "OBJECT_TSPARSER": "TEXT SEARCH PARSER",
    "OBJECT_TSTEMPLATE": "TEXT SEARCH TEMPLATE", "OBJECT_OPCLASS": "OPERATOR CLASS",
    "OBJECT_OPFAMILY": "OPERATOR FAMILY", "OBJECT_LARGEOBJECT": "LARGE OBJECT",
    "OBJECT_STATISTIC_EXT": "STATISTICS", "OBJECT_COLUMN": "TABLE", "OBJECT_TABCONSTRAINT": "TABLE",
    "OBJECT_ATTRIBUTE": "TYPE", "OBJECT_DOMCONSTRAINT": "DOMAIN", "OBJECT_AMOP": "OPERATOR FAMILY",
    "OBJECT_AMPROC": "OPERATOR FAMILY", "OBJECT_USER_MAPPING": "USER MAPPING",
    "OBJECT_DEFACL": "DEFAULT PRIVILEGES", "OBJECT_PUBLICATION_NAMESPACE": "PUBLICATION",
    "OBJECT_PUBLICATION_REL": "PUBLICATION", "OBJECT_TRANSFORM": "TRANSFORM",
}


def _object_name(objtype: str) -> str:
    return _OBJECT_NAMES.get(objtype) or objtype.removeprefix("OBJECT_").replace("_", " ")


_DEFINE_KINDS = {"OBJECT_AGGREGATE": "CREATE AGGREGATE", "OBJECT_OPERATOR": "CREATE OPERATOR",
                 "OBJECT_TYPE": "CREATE TYPE", "OBJECT_TSPARSER": "CREATE TEXT SEARCH PARSER",
                 "OBJECT_TSDICTIONARY": "CREATE TEXT SEARCH DICTIONARY",
                 "OBJECT_TSTEMPLATE": "CREATE TEXT SEARCH TEMPLATE",
                 "OBJECT_TSCONFIGURATION": "CREATE TEXT SEARCH CONFIGURATION",
                 "OBJECT_COLLATION": "CREATE COLLATION"}
_DISCARD = {"DISCARD_ALL": "DISCARD ALL", "DISCARD_PLANS": "DISCARD PLANS",
            "DISCARD_TEMP": "DISCARD TEMP", "DISCARD_SEQUENCES": "DISCARD SEQUENCES"}
_ROLE_STMT = {"ROLESTMT_ROLE": "CREATE ROLE", "ROLESTMT_USER": "CREATE USER",
              "ROLESTMT_GROUP": "CREATE GROUP"}


def command_tag(kind: str, body: dict[str, Any]) -> str:
    """The command tag PostgreSQL reports for a statement node (CreateCommandTag)."""
    tag = _SIMPLE_TAGS.get(kind)
    if tag is not None:
        return tag
    match kind:
        case "VariableSetStmt":
            return "RESET" if body.get("kind") in ("VAR_RESET", "VAR_RESET_ALL") else "SET"
        case "TransactionStmt":
            return _XACT_TAGS.get(body.get("kind", ""), "???")
        case "DropStmt":
            return "DROP " + _object_name(body.get("removeType", ""))
        case "AlterTableStmt" | "AlterTableMoveAllStmt" | "AlterOwnerStmt" \
                | "AlterObjectSchemaStmt" | "AlterObjectDependsStmt":
            objtype = body.get("objtype") or body.get("objectType", "")
            return "ALTER " + _object_name(objtype)
        case "RenameStmt":
            objtype = body.get("renameType", "")
            if objtype in ("OBJECT_COLUMN", "OBJECT_TABCONSTRAINT"):
                objtype = body.get("relationType", objtype)
            return "ALTER " + _object_name(objtype)
        case "DefineStmt":
            return _DEFINE_KINDS.get(body.get("kind", ""), "???")
        case "CreateFunctionStmt":
            return "CREATE PROCEDURE" if body.get("is_procedure") else "CREATE FUNCTION"
        case "AlterFunctionStmt":
            objtype = body.get("objtype", "OBJECT_FUNCTION")
            return "ALTER " + _object_name(objtype)
        case "CreateRoleStmt":
            return _ROLE_STMT.get(body.get("stmt_type", ""), "CREATE ROLE")
        case "GrantStmt":
            return "GRANT" if body.get("is_grant") else "REVOKE"
        case "GrantRoleStmt":
            return "GRANT ROLE" if body.get("is_grant") else "REVOKE ROLE"
        case "VacuumStmt":
            return "VACUUM" if body.get("is_vacuumcmd") else "ANALYZE"
        case "CreateTableAsStmt":
            if body.get("objtype") == "OBJECT_MATVIEW":
                return "CREATE MATERIALIZED VIEW"
            return "SELECT" if body.get("is_select_into") else "CREATE TABLE AS"
        case "DeallocateStmt":
            return "DEALLOCATE" if body.get("name") else "DEALLOCATE ALL"
        case "ClosePortalStmt":
            return "CLOSE CURSOR" if body.get("portalname") else "CLOSE CURSOR ALL"
        case "FetchStmt":
            return "MOVE" if body.get("ismove") else "FETCH"
        case "DiscardStmt":
            return _DISCARD.get(body.get("target", ""), "DISCARD ALL")
    # Unknown node: derive from its name (CreateFooStmt -> CREATE FOO).
    words = re.findall(r"[A-Z][a-z]*", kind.removesuffix("Stmt"))
    return " ".join(words).upper() or "???"


_DDL_PREFIXES = ("CREATE", "ALTER", "DROP", "GRANT", "REVOKE", "COMMENT", "SECURITY LABEL",
                 "REASSIGN", "IMPORT", "REFRESH")


def command_log_level(kind: str, tag: str) -> int:
    if tag.startswith(_DDL_PREFIXES) and tag != "CREATE TABLE AS":
        return LOGSTMT_DDL
    if tag in ("INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE TABLE", "CREATE TABLE AS"):
        return LOGSTMT_MOD
    return LOGSTMT_ALL
