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
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pglast import keywords, parser

from access import xact
from catalog import pg_type
from conf import guc_tables
from conf.guc import GucError
from conf.guc_tables import GucContext, GucSource
from libpq import pqformat as pqf
from utils import backend_status, elog, session
from utils.adt import datatypes
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
# Data types: the I/O functions live in utils/adt/datatypes.py
# =============================================================================================

NAMEOID = pg_type.NAMEOID
type_name = datatypes.type_name
input_value = datatypes.input_value
text_output = datatypes.text_output
binary_output = datatypes.binary_output
binary_input = datatypes.binary_input
coerce = datatypes.coerce
numeric_send = datatypes.numeric_send
numeric_recv = datatypes.numeric_recv

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
        session.start_statement()
        if self.state == TBLOCK_DEFAULT:
            self.state = TBLOCK_STARTED
            session.start_transaction()

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
        """CommitTransaction / AbortTransaction: WAL and pg_xact for a transaction
        with an xid; the end-of-transaction callbacks (locks, snapshots, pending file
        deletions, relation cache invalidation) for every transaction."""
        if commit:
            xact.commit_transaction()
        else:
            xact.abort_transaction()
        backend_status.count_transaction_end(commit)  # pg_stat_database.xact_commit/rollback

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
    typmod: int = -1


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
    check_interrupts: Callable[[], None] = lambda: None  # CHECK_FOR_INTERRUPTS
    # COPY's protocol halves (tcop.postgres): the client's data, and a sink for ours.
    copy_in: Callable[[int], Any] | None = None
    copy_out: Callable[[int, Any], int] | None = None


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
        if kind in ("SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt"):
            st = _deferred_plannable(kind, body, tag, text, src, param_types, err)
        else:
            st = Statement(text, tag, _raise(err),
                           analysis_error=err if kind in _PLANNABLE else None)
    if not st.param_types and param_types:
        st.param_types = list(param_types)
    st.log_level = command_log_level(kind, tag)
    if kind in ("VariableSetStmt", "TransactionStmt", "DiscardStmt"):
        st.changes_settings = True
    return st


def _deferred_plannable(kind: str, body: dict[str, Any], tag: str, text: str, src: bytes,
                        param_types: list[int] | None, err: PgError) -> Statement:
    """A statement whose analysis failed when the query was compiled: a Parse
    reports the error at once, but in a multi-statement simple query it is analysed
    again when its turn comes, as PostgreSQL analyses each statement just before
    running it (``CREATE TABLE t ...; INSERT INTO t ...`` must work)."""
    def run_deferred(s: Session, p: Sequence[Any]) -> tuple[list, str]:
        real = _compile_plannable(kind, body, text, src, param_types)
        st.run, st.columns, st.param_types = real.run, real.columns, real.param_types
        st.protocol_cache = None
        st.analysis_error = None
        return real.run(s, p)

    st = Statement(text, tag, run_deferred, analysis_error=err)
    return st


def _compile(kind: str, body: dict[str, Any], tag: str, text: str, src: bytes,
             param_types: list[int] | None) -> Statement:
    if kind == "VariableSetStmt":
        return _compile_set(body, text, tag, src)
    if kind == "VariableShowStmt":
        return _compile_show(body, text)
    if kind == "TransactionStmt":
        return _compile_transaction(body, text, tag, src)
    if kind in ("SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt"):
        return _compile_plannable(kind, body, text, src, param_types)
    if kind == "DeallocateStmt":
        return _compile_deallocate(body, text, tag)
    if kind == "DiscardStmt":
        return _compile_discard(body, text, tag)
    if kind == "CheckPointStmt":
        return Statement(text, tag, _run_checkpoint)
    ddl = _DDL.get(kind)
    if ddl is not None:
        return Statement(text, tag, ddl(body, src))
    if kind == "VacuumStmt":
        from commands import vacuum

        return Statement(text, tag, vacuum.vacuum(body, _in_transaction_block))
    if kind in ("CreatedbStmt", "DropdbStmt"):
        from commands import dbcommands

        return Statement(text, tag, dbcommands.compile_statement(kind, body))
    if kind == "CopyStmt":
        from commands import copy

        return Statement(text, tag, copy.do_copy(body, src, param_types))
    raise PgError("0A000", f'"{tag}" is not supported yet')


def _ddl(name: str, with_src: bool = False) -> Callable[[dict[str, Any], bytes], Runner]:
    def compile_ddl(body: dict[str, Any], src: bytes) -> Runner:
        from commands import tablecmds

        fn = getattr(tablecmds, name)
        return fn(body, src) if with_src else fn(body)
    return compile_ddl


_DDL = {"CreateStmt": _ddl("create_table", True), "IndexStmt": _ddl("create_index"),
        "AlterTableStmt": _ddl("alter_table"), "DropStmt": _ddl("drop"),
        "TruncateStmt": _ddl("truncate")}


def _in_transaction_block() -> bool:
    """IsTransactionBlock, for PreventInTransactionBlock."""
    s = session.tcop_session
    return s is not None and s.xact.in_block


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
# SELECT, INSERT, UPDATE, DELETE: analysed and planned by parser/, optimizer/, executor/
# =============================================================================================


def _compile_plannable(kind: str, body: dict[str, Any], text: str, src: bytes,
                       param_types: list[int] | None) -> Statement:
    from executor import execute

    plan = execute.plan_statement(kind, body, src, param_types)
    changes = kind == "SelectStmt" and "set_config" in text.lower()
    holder = [plan]

    def run(s: Session, p: Sequence[Any]) -> tuple[list, str]:
        session.tcop_session = s  # for set_config() and friends
        current = holder[0]
        if current.relations:
            # CheckCachedPlan: lock first — taking a lock accepts the invalidations of
            # DDL that committed before it — then see whether the plan is still valid.
            execute.acquire_executor_locks(current.relations)
            if current.generation != execute.catalog_generation():
                current = holder[0] = execute.plan_statement(kind, body, src, param_types)
                execute.acquire_executor_locks(current.relations)
        return execute.run_plan(current, p, s.check_interrupts, locked=True)

    columns = ([Column(n, ty, mod) for n, ty, mod in plan.columns]
               if kind == "SelectStmt" or plan.columns else None)
    return Statement(text, plan.tag, run, columns, plan.param_types, changes_settings=changes)

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
