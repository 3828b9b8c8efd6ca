"""The backend's main loop — mirrors src/backend/tcop/postgres.c (PostgresMain,
SocketBackend, exec_simple_query, exec_parse/bind/describe/execute_message,
ProcessInterrupts and the signal handlers die, StatementCancelHandler, quickdie).

One ``PostgresMain`` per backend reads messages from the client buffer, runs the
statements compiled by tcop.utility and queues replies; the send buffer is flushed
only at ReadyForQuery (end of a simple query, Sync) or Flush, so a round trip costs
one recv and one send.

Signal handlers only set flags (the latch's self-pipe wakes any wait);
``check_for_interrupts`` acts on them at safe points: between statements, inside
pg_sleep, and while waiting for the client. quickdie is the exception: it tells the
client and exits at once, as PostgreSQL does.

Compiled statements are cached by query text (and declared parameter types), so a
repeated query is neither parsed nor compiled again.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from access import xact as access_xact
from libpq import pqformat as pqf
from libpq.pqcomm import PQ_LARGE_MESSAGE_LIMIT, PQ_SMALL_MESSAGE_LIMIT, ClientEOF, Port
from procs import child
from procs.postinit import report_stats
from shmem import segment as shseg
from tcop import plancache, utility
from tcop.utility import Session, Statement, TransactionBlock
from utils import backend_status, elog, pgstat_relation
from utils import session as sess
from utils.adt import datatypes
from utils.elog import FatalError, PgError

# SocketBackend's classification: the largest length accepted per message type;
# 0 = not a frontend message type (FATAL, before reading any further).
_LIMITS = [0] * 256
for _t in b"QFBPd":
    _LIMITS[_t] = PQ_LARGE_MESSAGE_LIMIT
for _t in b"XCDEHScf":
    _LIMITS[_t] = PQ_SMALL_MESSAGE_LIMIT
MESSAGE_LIMITS = tuple(_LIMITS)
_EXTENDED = frozenset(b"PBCDEH")  # doing_extended_query_message: an error skips till Sync

PLAN_CACHE_SIZE = 256
LOG_STATEMENT_LEVELS = {"none": 0, "ddl": utility.LOGSTMT_DDL, "mod": utility.LOGSTMT_MOD,
                        "all": utility.LOGSTMT_ALL}
# client_min_messages ranks (for the client, LOG sits below NOTICE).
_CLIENT_RANK = {"debug5": 0, "debug4": 1, "debug3": 2, "debug2": 3, "debug1": 4, "log": 5,
                "notice": 6, "warning": 7, "error": 8}
_ELEVEL_CLIENT_RANK = {elog.DEBUG5: 0, elog.DEBUG4: 1, elog.DEBUG3: 2, elog.DEBUG2: 3,
                       elog.DEBUG1: 4, elog.LOG: 5, elog.NOTICE: 6, elog.WARNING: 7}


class ProcExit(BaseException):
    """Leave the backend with this exit code after normal cleanup (proc_exit)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Prepared:
    """A prepared statement: the compiled statement plus its protocol-level caches."""

    __slots__ = ("query", "stmt", "param_types", "text_inputs", "row_description",
                 "text_outputs", "last_row", "last_row_bytes")

    def __init__(self, query: str, stmt: Statement | None) -> None:
        self.query = query
        self.stmt = stmt
        self.param_types: list[int] = stmt.param_types if stmt else []
        # Per-statement decoders and encoders, built once (the Bind hot path).
        self.text_inputs = [_text_input(t) for t in self.param_types]
        cols = stmt.columns if stmt else None
        self.row_description = (pqf.row_description([(c.name, c.type_oid, c.typmod)
                                                     for c in cols])
                                if cols is not None else None)
        self.text_outputs = ([utility.text_output(c.type_oid) for c in cols]
                             if cols is not None else None)
        # The last single row sent in text and its DataRow: a row tuple is immutable,
        # so the same tuple again (a constant result) needs no encoding.
        self.last_row: tuple[Any, ...] | None = None
        self.last_row_bytes = b""


class Portal:
    __slots__ = ("name", "stmt_name", "prepared", "params", "formats", "outputs", "rows", "pos",
                 "tag")

    def __init__(self, name: str, stmt_name: str, prepared: Prepared, params: list[Any],
                 formats: tuple[int, ...], outputs: list[Callable[[Any], bytes]] | None) -> None:
        self.name = name
        self.stmt_name = stmt_name
        self.prepared = prepared
        self.params = params
        self.formats = formats
        self.outputs = outputs
        self.rows: list[tuple[Any, ...]] | None = None  # filled at the first Execute
        self.pos = 0
        self.tag = ""


def _text_input(oid: int) -> Callable[[bytes], Any]:
    """The parameter's decoder, bound once per prepared statement (Bind's hot path)."""
    if oid in (0, pqf.TEXTOID, pqf.VARCHAROID, pqf.UNKNOWNOID, utility.NAMEOID):
        return pqf.decode_text
    try:
        fn = datatypes.input_function(oid)
    except PgError:  # a type without input: the error comes when a value arrives
        return lambda raw: utility.input_value(oid, pqf.decode_text(raw))
    decode = pqf.decode_text
    return lambda raw: fn(decode(raw))


def _check_format(code: int) -> int:
    if code not in (0, 1):
        raise PgError("22023", f"unsupported format code: {code}")
    return code


class PostgresMain:
    """One session's protocol loop and interrupt state."""

    def __init__(self, port: Port, settings: Any, *, user: str, database: str,
                 ps_prefix: str, datadir: str, segment: Any = None, procs: Any = None) -> None:
        self.port = port
        self.settings = settings
        self.datadir = datadir
        self.segment = segment
        self.procs = procs
        self.ps_prefix = ps_prefix
        self._ps_shown = ""
        self.xact = TransactionBlock(settings)
        access_xact.configure(settings)
        self.prepared: dict[str, Prepared] = {}
        self.portals: dict[str, Portal] = {}
        self.session = Session(settings, self.xact, user, database, os.getpid(),
                               prepared=self.prepared, sleep=self.sleep,
                               on_discard_all=self.portals.clear,
                               check_interrupts=self.check_for_interrupts,
                               copy_in=self.copy_in, copy_out=self.copy_out)
        sess.settings, sess.user, sess.database = settings, user, database
        sess.backend_pid, sess.tcop_session = os.getpid(), self.session
        # Lock waits honour cancel, die and statement_timeout like any other wait.
        from storage.lmgr import lock

        lock.set_interrupt_hooks(self.check_for_interrupts, lambda: self.statement_deadline)
        child.on_postmaster_death = self._tell_client_postmaster_died
        self.plan_cache: dict[Any, list[Statement]] = {}
        self.simple_plans = plancache.SimplePlanCache(self._compile)
        # Interrupt flags (miscadmin.h), set by signal handlers.
        self.interrupt_pending = False
        self.proc_die_pending = False
        self.query_cancel_pending = False
        self.config_reload_pending = False
        self.doing_command_read = False
        self.ignore_till_sync = False
        self.guc_maybe_changed = True
        self.statement_deadline = 0.0  # statement_timeout, as a monotonic time (0: none)
        self.current_query: str | None = None
        port.wait_readable = self._wait_readable
        port.wait_writable = self._wait_writable
        self._dispatch: dict[int, Callable[[bytes], bool]] = {
            ord("Q"): self.exec_simple_query, ord("P"): self.exec_parse_message,
            ord("B"): self.exec_bind_message, ord("D"): self.exec_describe_message,
            ord("E"): self.exec_execute_message, ord("C"): self.exec_close_message,
            ord("S"): self.exec_sync, ord("H"): self.exec_flush,
            ord("F"): self.exec_function_call, ord("d"): self._ignore_copy,
            ord("c"): self._ignore_copy, ord("f"): self._ignore_copy,
        }

    # -- signals (die, StatementCancelHandler, quickdie, SIGHUP) ----------------------------

    def install_signal_handlers(self) -> None:
        child.install_handlers({
            signal.SIGTERM: self._die,
            signal.SIGINT: self._statement_cancel_handler,
            signal.SIGQUIT: self._quickdie,
            signal.SIGHUP: self._sighup,
        })
        elog.client_sink = self.send_notice

    def _die(self, _signo: int, _frame: object) -> None:
        self.proc_die_pending = self.interrupt_pending = True

    def _statement_cancel_handler(self, _signo: int, _frame: object) -> None:
        self.query_cancel_pending = self.interrupt_pending = True

    def _sighup(self, _signo: int, _frame: object) -> None:
        self.config_reload_pending = True

    def _tell_client_postmaster_died(self) -> None:
        """The FATAL a session gets when the postmaster is gone, sent before leaving
        from the death signal (the same as the wait loops raise)."""
        self.port.send_nowait(pqf.error_response(
            "FATAL", "57P01", "terminating connection due to unexpected postmaster exit"))

    def _quickdie(self, _signo: int, _frame: object) -> None:
        """Tell the client why (at WARNING, as PostgreSQL 14+ does) and leave without
        any cleanup: shared memory may be corrupt."""
        try:
            reason = self.segment.quit_reason if self.segment is not None else 0
            if reason == shseg.PMQUIT_FOR_CRASH:
                msg = pqf.notice_response(
                    "WARNING", "57P02",
                    "terminating connection because of crash of another server process",
                    "The postmaster has commanded this server process to roll back the "
                    "current transaction and exit, because another server process exited "
                    "abnormally and possibly corrupted shared memory.",
                    "In a moment you should be able to reconnect to the database and "
                    "repeat your command.")
            elif reason == shseg.PMQUIT_FOR_STOP:
                msg = pqf.notice_response(
                    "WARNING", "57P01", "terminating connection due to immediate shutdown command")
            else:
                msg = pqf.notice_response(
                    "WARNING", "57P01",
                    "terminating connection because of unexpected SIGQUIT signal")
            self.port.send_nowait(msg)
        finally:
            child.quick_exit(2)

    def check_for_interrupts(self) -> None:
        """CHECK_FOR_INTERRUPTS / ProcessInterrupts."""
        if not self.interrupt_pending:
            return
        self.interrupt_pending = False
        if self.proc_die_pending:
            self.proc_die_pending = self.query_cancel_pending = False
            raise FatalError("57P01", "terminating connection due to administrator command")
        if self.query_cancel_pending:
            self.query_cancel_pending = False
            # A cancel that arrives while we wait for the client has nothing to cancel.
            if not self.doing_command_read:
                raise PgError("57014", "canceling statement due to user request")

    # -- waiting (secure_read / secure_write) ------------------------------------------------

    def _wait_readable(self, sock: socket.socket) -> None:
        idle_fatal = self._idle_timeout() if self.doing_command_read else None
        deadline = time.monotonic() + idle_fatal[0] if idle_fatal else None
        while True:
            timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            # Idle with table statistics pending: publish them once the interval is
            # over (PostgreSQL's IDLE_STATS_UPDATE_TIMEOUT).
            stats_due = pgstat_relation.pending_flush_delay() if self.doing_command_read \
                else None
            if stats_due is not None and (timeout is None or stats_due < timeout):
                timeout = stats_due
            bits = child.wait_latch(timeout, (self.port.fd,))
            if stats_due is not None:
                report_stats()
            if bits & child.WL_POSTMASTER_DEATH:
                raise FatalError("57P01", "terminating connection due to unexpected postmaster exit")
            if bits & child.WL_LATCH_SET:
                child.reset_latch()
                if self.doing_command_read:
                    self.check_for_interrupts()
                    if self.config_reload_pending:
                        self.process_config_reload()
            if bits & child.WL_SOCKET_READABLE:
                return
            if idle_fatal and deadline is not None and time.monotonic() >= deadline:
                raise FatalError(idle_fatal[1], idle_fatal[2])

    def _idle_timeout(self) -> tuple[float, str, str] | None:
        """idle_in_transaction_session_timeout or idle_session_timeout, if set."""
        if self.xact.in_block:
            ms = self.settings.get("idle_in_transaction_session_timeout")
            if ms:
                return ms / 1000, "25P03", \
                    "terminating connection due to idle-in-transaction timeout"
        else:
            ms = self.settings.get("idle_session_timeout")
            if ms:
                return ms / 1000, "57P05", "terminating connection due to idle-session timeout"
        return None

    def _wait_writable(self, sock: socket.socket) -> None:
        assert child.latch is not None and child.env is not None
        rl = [child.latch.read_fd, child.env.death_pipe_r]
        try:
            readable, _, _ = select.select(rl, [sock], [])
        except InterruptedError:
            readable = [child.latch.read_fd]
        if child.env.death_pipe_r in readable:
            self.port.broken = True
            raise FatalError("57P01", "terminating connection due to unexpected postmaster exit")
        if child.latch.read_fd in readable:
            child.reset_latch()
            if self.proc_die_pending:
                # Blocked on a client that does not read: the FATAL cannot be sent either.
                self.port.broken = True
                self.check_for_interrupts()

    def sleep(self, seconds: float) -> None:
        """pg_sleep: wait on the latch so that cancel and die interrupt it."""
        end = time.monotonic() + seconds
        while True:
            self.check_for_interrupts()
            now = time.monotonic()
            until = end
            if self.statement_deadline and self.statement_deadline < until:
                until = self.statement_deadline
            if now >= until:
                if until < end:
                    raise PgError("57014", "canceling statement due to statement timeout")
                return
            if child.env is None:
                time.sleep(until - now)
                continue
            bits = child.wait_latch(until - now)
            if bits & child.WL_POSTMASTER_DEATH:
                raise ProcExit(1)
            if bits & child.WL_LATCH_SET:
                child.reset_latch()

    def process_config_reload(self) -> None:
        self.config_reload_pending = False
        for msg in self.settings.reload(self.datadir, is_postmaster=False):
            level = elog.LEVEL_BY_NAME.get(str(msg.elevel).upper(), elog.DEBUG2)
            elog.ereport(level, msg.message, detail=msg.detail, hint=msg.hint,
                         sqlstate=msg.sqlstate, to_client=False)
        self.guc_maybe_changed = True

    # -- output helpers ------------------------------------------------------------------------

    def set_ps(self, state: str) -> None:
        """set_ps_display: 'USER DATABASE HOST(PORT) STATE', if update_process_title."""
        if state is self._ps_shown or state == self._ps_shown:
            return
        self._ps_shown = state
        if self.settings.get("update_process_title"):
            child.set_ps_display(f"{self.ps_prefix} {state}")

    def send_notice(self, elevel: int, message: str, fields: dict[str, Any]) -> None:
        """elog's client sink: NOTICE/WARNING/INFO at or above client_min_messages."""
        if elevel != elog.INFO:
            wanted = _CLIENT_RANK.get(str(self.settings.get("client_min_messages")), 6)
            if _ELEVEL_CLIENT_RANK.get(elevel, 8) < wanted:
                return
        sqlstate = fields.get("sqlstate") or ("01000" if elevel == elog.WARNING else "00000")
        self.port.send(pqf.notice_response(elog.NAME_BY_LEVEL[elevel], sqlstate, message,
                                           fields.get("detail"), fields.get("hint")))

    def send_startup_messages(self, cancel_key: int) -> None:
        """ParameterStatus for every reported parameter, then BackendKeyData."""
        self.report_changed_gucs()
        self.port.send(pqf.backend_key_data(os.getpid(), cancel_key))

    def report_changed_gucs(self) -> None:
        """ReportChangedGUCOptions."""
        self.guc_maybe_changed = False
        for name, value in self.settings.reported_changes():
            self.port.send(pqf.parameter_status(name, value))
            if name == "application_name":
                elog.context.application_name = value

    def ready_for_query(self) -> None:
        status = self.xact.status
        if status == b"I":
            self.set_ps("idle")
        elif status == b"T":
            self.set_ps("idle in transaction")
        else:
            self.set_ps("idle in transaction (aborted)")
        elog.context.command_tag = ""
        if self.guc_maybe_changed:
            self.report_changed_gucs()
        # pgstat_report_activity(STATE_IDLE...): pg_stat_activity's state, state_change
        # and xact_start, before the client can see ReadyForQuery.
        backend_status.report_idle(status, sess.transaction_timestamp() if status != b"I" else 0)
        self.port.send(pqf.READY_FOR_QUERY[status])
        self.port.flush()
        report_stats()  # pgstat_report_stat before going idle (rate-limited)

    def report_activity(self, query: str) -> None:
        """pgstat_report_activity(STATE_RUNNING, query): pg_stat_activity's state,
        query_start, xact_start and query — the text the postmaster also reports
        if we crash."""
        self.current_query = query
        if self.procs is not None:
            backend_status.report_running(query)

    def _start_statement_timer(self) -> None:
        ms = self.settings.get("statement_timeout")
        self.statement_deadline = time.monotonic() + ms / 1000 if ms else 0.0

    def _log_statement(self, stmts: Sequence[Statement], what: str, query: str,
                       portal: Portal | None = None) -> None:
        """log_statement: 'statement: ...' for simple queries, 'execute ...' for portals."""
        setting = self.settings.get("log_statement")
        if setting == "none":
            return
        wanted = LOG_STATEMENT_LEVELS.get(str(setting), 0)
        if any(st.log_level <= wanted for st in stmts):
            elog.ereport(elog.LOG, f"{what}: {query}",
                         detail=_params_detail(portal) if portal else None, to_client=False)

    # -- the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        """The message loop; leaves only by raising (ProcExit, FatalError, ConnectionLost)."""
        port = self.port
        read_message = port.read_message
        dispatch = self._dispatch
        send_ready_for_query = True
        while True:
            if send_ready_for_query:
                self.ready_for_query()
                send_ready_for_query = False
            self.doing_command_read = True
            if self.config_reload_pending:
                self.process_config_reload()
            try:
                mtype, payload = read_message(MESSAGE_LIMITS)
            except ClientEOF:
                self._client_eof()
            if self.interrupt_pending:
                # Still reading a command (ProcessClientReadInterrupt): a cancel that
                # came in meanwhile has nothing to cancel; die acts now.
                self.check_for_interrupts()
            self.doing_command_read = False
            if self.config_reload_pending:
                self.process_config_reload()
            if mtype in (0x53, 0x58):  # Sync or Terminate stops skipping
                self.ignore_till_sync = False
            elif self.ignore_till_sync:
                continue
            if mtype == 0x58:  # 'X'
                raise ProcExit(0)
            handler = dispatch.get(mtype)
            if handler is None:
                raise FatalError("08P01", f"invalid frontend message type {mtype}")
            try:
                if handler(payload):
                    send_ready_for_query = True
            except PgError as err:
                if err.severity >= elog.FATAL:
                    raise
                self.handle_error(err, mtype in _EXTENDED)
                if not self.ignore_till_sync:
                    send_ready_for_query = True
            except (ProcExit, FatalError, KeyboardInterrupt):
                raise
            except Exception as exc:  # a bug must not take the session down
                elog.ereport(elog.LOG, "internal error: " + traceback.format_exc().strip(),
                             to_client=False)
                self.handle_error(PgError("XX000", f"internal error: {exc}"), mtype in _EXTENDED)
                if not self.ignore_till_sync:
                    send_ready_for_query = True

    def _client_eof(self) -> None:
        if self.xact.state != utility.TBLOCK_DEFAULT:
            elog.ereport(elog.LOG, "unexpected EOF on client connection with an open transaction",
                         sqlstate="08006", to_client=False)
        else:
            elog.ereport(elog.DEBUG1, "unexpected EOF on client connection", sqlstate="08003",
                         to_client=False)
        raise ProcExit(0)

    def handle_error(self, err: PgError, extended: bool) -> None:
        """PostgresMain's error recovery: report, abort the transaction, and in the
        extended protocol skip messages until Sync."""
        elog.report_error(err, self.current_query)
        self.port.send(pqf.error_response("ERROR", err.sqlstate, err.message, err.detail,
                                          err.hint, err.position, err.protocol_fields()))
        self.xact.abort_current()
        self._end_of_transaction()
        self.guc_maybe_changed = True
        self.query_cancel_pending = False
        self.statement_deadline = 0.0
        if extended:
            self.ignore_till_sync = True

    def _end_of_transaction(self) -> None:
        """Portals do not outlive their transaction."""
        if self.xact.state == utility.TBLOCK_DEFAULT and self.portals:
            self.portals.clear()

    def _compile(self, query: str, param_types: list[int] | None) -> list[Statement]:
        key: Any = query if param_types is None else (query, tuple(param_types))
        stmts = self.plan_cache.get(key)
        if stmts is None:
            stmts = utility.compile_query(query, param_types)
            if len(self.plan_cache) >= PLAN_CACHE_SIZE:
                self.plan_cache.clear()
            self.plan_cache[key] = stmts
        return stmts

    def _send_text_rows(self, plan: Prepared, rows: list[tuple[Any, ...]]) -> None:
        """DataRows in text format; a single row that is the same tuple as last time
        (a constant result) is not encoded again."""
        if len(rows) != 1:
            self._send_rows(rows, plan.text_outputs)  # type: ignore[arg-type]
            return
        row = rows[0]
        if row is not plan.last_row:
            plan.last_row_bytes = pqf.data_row(
                [None if v is None else out(v)
                 for out, v in zip(plan.text_outputs, row, strict=True)])  # type: ignore[arg-type]
            plan.last_row = row
        self.port.send(plan.last_row_bytes)

    def _send_rows(self, rows: list[tuple[Any, ...]],
                   outputs: list[Callable[[Any], bytes]]) -> None:
        send, data_row = self.port.send, pqf.data_row
        for row in rows:
            send(data_row([None if v is None else out(v)
                           for out, v in zip(outputs, row, strict=True)]))

    # -- simple query --------------------------------------------------------------------------

    def exec_simple_query(self, payload: bytes) -> bool:
        query = pqf.decode_query(payload)
        self.report_activity(query)
        self.prepared.pop("", None)  # drop_unnamed_stmt
        self.portals.pop("", None)
        xact = self.xact
        xact.start_command()  # a syntax error inside a block aborts it
        params: Sequence[Any] = ()
        reused = self.simple_plans.lookup(query)
        if reused is not None:
            stmts = [reused[0]]
            params = reused[1]
        else:
            stmts = self._compile(query, None)
        self._log_statement(stmts, "statement", query)
        if not stmts:
            self.port.send(pqf.EMPTY_QUERY_RESPONSE)
            xact.commit_command()
            return True
        self._start_statement_timer()
        implicit = len(stmts) > 1
        last = stmts[-1]
        session, send = self.session, self.port.send
        for st in stmts:
            self.set_ps(st.tag)
            elog.context.command_tag = st.tag
            xact.start_command()
            if implicit:
                xact.begin_implicit()
            if xact.state == utility.TBLOCK_ABORT and not st.is_xact_exit:
                raise _in_failed_transaction()
            if st.changes_settings:
                self.guc_maybe_changed = True
            if self.interrupt_pending:
                self.check_for_interrupts()
            rows, tag = st.run(session, params)
            if st.columns is not None:
                plan = st.protocol_cache or self._text_plan(st)
                send(plan.row_description)
                self._send_text_rows(plan, rows)
            send(pqf.command_complete(tag))
            if st is last:
                xact.end_implicit()
                xact.commit_command()
            elif st.is_xact_stmt:
                xact.commit_command()
            if st.is_xact_stmt:
                self._end_of_transaction()
        self.statement_deadline = 0.0
        return True

    @staticmethod
    def _text_plan(st: Statement) -> Prepared:
        """RowDescription and text encoders of a statement, built once per statement."""
        plan = st.protocol_cache
        if plan is None:
            plan = st.protocol_cache = Prepared(st.text, st)
        return plan

    # -- extended query protocol -----------------------------------------------------------

    def exec_parse_message(self, payload: bytes) -> bool:
        name, query, param_types = pqf.decode_parse(payload)
        self.report_activity(query)
        self.xact.start_command()
        stmts = self._compile(query, param_types)
        if len(stmts) > 1:
            raise PgError("42601", "cannot insert multiple commands into a prepared statement")
        st = stmts[0] if stmts else None
        if st is not None:
            if self.xact.is_aborted and not st.is_xact_exit:
                raise _in_failed_transaction()
            if st.analysis_error is not None:
                raise st.analysis_error
        if name and name in self.prepared:
            raise PgError("42P05", f'prepared statement "{name}" already exists')
        self.prepared[name] = self._prepared_for(query, st)
        self.port.send(pqf.PARSE_COMPLETE)
        return False

    def _prepared_for(self, query: str, st: Statement | None) -> Prepared:
        if st is None:
            return Prepared(query, None)
        return self._text_plan(st)

    def _get_prepared(self, name: str) -> Prepared:
        ps = self.prepared.get(name)
        if ps is None:
            if not name:
                raise PgError("26000", "unnamed prepared statement does not exist")
            raise PgError("26000", f'prepared statement "{name}" does not exist')
        return ps

    def _get_portal(self, name: str) -> Portal:
        portal = self.portals.get(name)
        if portal is None:
            raise PgError("34000", f'portal "{name}" does not exist')
        return portal

    def exec_bind_message(self, payload: bytes) -> bool:
        portal_name, stmt_name, pformats, values, rformats = pqf.decode_bind(payload)
        ps = self._get_prepared(stmt_name)
        self.xact.start_command()
        nparams = len(ps.param_types)
        if len(pformats) > 1 and len(pformats) != len(values):
            raise PgError("08P01", f"bind message has {len(pformats)} parameter formats but "
                                   f"{len(values)} parameters")
        if len(values) != nparams:
            raise PgError("08P01", f"bind message supplies {len(values)} parameters, but "
                                   f'prepared statement "{stmt_name}" requires {nparams}')
        st = ps.stmt
        if self.xact.is_aborted and (st is None or not st.is_xact_exit or nparams):
            raise _in_failed_transaction()
        params = self._decode_params(ps, pformats, values)
        cols = st.columns if st is not None else None
        if cols is not None and len(rformats) > 1 and len(rformats) != len(cols):
            raise PgError("08P01", f"bind message has {len(rformats)} result formats but "
                                   f"query has {len(cols)} columns")
        outputs = ps.text_outputs if not rformats or rformats == (0,) else None
        if portal_name and portal_name in self.portals:
            raise PgError("42P03", f'cursor "{portal_name}" already exists')
        self.portals[portal_name] = Portal(portal_name, stmt_name, ps, params, rformats,
                                           outputs)
        self.port.send(pqf.BIND_COMPLETE)
        return False

    def _decode_params(self, ps: Prepared, pformats: tuple[int, ...],
                       values: list[bytes | None]) -> list[Any]:
        if not values:
            return []
        nfmt = len(pformats)
        inputs = ps.text_inputs
        params: list[Any] = []
        for i, raw in enumerate(values):
            fmt = 0 if nfmt == 0 else _check_format(pformats[0] if nfmt == 1 else pformats[i])
            if raw is None:
                params.append(None)
            elif fmt == 0:
                params.append(inputs[i](raw))
            else:
                oid = ps.param_types[i] or pqf.TEXTOID
                params.append(utility.binary_input(oid, i + 1)(raw))
        return params

    @staticmethod
    def _portal_outputs(portal: Portal) -> list[Callable[[Any], bytes]]:
        """The column encoders for the portal's result formats (checked when first
        needed, as printtup does)."""
        if portal.outputs is None:
            cols = portal.prepared.stmt.columns  # type: ignore[union-attr]
            assert cols is not None
            fmts = portal.formats
            portal.outputs = [
                utility.binary_output(c.type_oid)
                if _check_format(fmts[0] if len(fmts) == 1 else fmts[i]) == 1
                else utility.text_output(c.type_oid) for i, c in enumerate(cols)]
        return portal.outputs

    def exec_describe_message(self, payload: bytes) -> bool:
        kind, name = pqf.decode_describe_or_close(payload)
        self.xact.start_command()
        send = self.port.send
        if kind == 0x53:  # 'S'
            ps = self._get_prepared(name)
            if self.xact.is_aborted and ps.row_description is not None:
                raise _in_failed_transaction()
            send(pqf.parameter_description(ps.param_types))
            send(ps.row_description if ps.row_description is not None else pqf.NO_DATA)
        elif kind == 0x50:  # 'P'
            portal = self._get_portal(name)
            ps = portal.prepared
            if ps.row_description is None:
                send(pqf.NO_DATA)
            else:
                if self.xact.is_aborted:
                    raise _in_failed_transaction()
                if not portal.formats or portal.formats == (0,):
                    send(ps.row_description)
                else:
                    assert ps.stmt is not None and ps.stmt.columns is not None
                    self._portal_outputs(portal)
                    send(pqf.row_description(
                        [(c.name, c.type_oid, c.typmod) for c in ps.stmt.columns],
                        portal.formats))
        else:
            raise PgError("08P01", f"invalid DESCRIBE message subtype {kind}")
        return False

    def exec_execute_message(self, payload: bytes) -> bool:
        portal_name, max_rows = pqf.decode_execute(payload)
        portal = self._get_portal(portal_name)
        ps = portal.prepared
        st = ps.stmt
        send = self.port.send
        if st is None:
            send(pqf.EMPTY_QUERY_RESPONSE)
            return False
        self.report_activity(ps.query)
        self.set_ps(st.tag)
        elog.context.command_tag = st.tag
        xact = self.xact
        xact.start_command()
        if xact.is_aborted and not st.is_xact_exit:
            raise _in_failed_transaction()
        if portal.rows is None:
            if self.settings.get("log_statement") != "none":
                where = (portal.stmt_name or "<unnamed>") + (
                    "/" + portal_name if portal_name else "")
                self._log_statement((st,), f"execute {where}", ps.query, portal)
            if st.changes_settings:
                self.guc_maybe_changed = True
            self._start_statement_timer()
            if self.interrupt_pending:
                self.check_for_interrupts()
            portal.rows, portal.tag = st.run(self.session, portal.params)
            self.statement_deadline = 0.0
        elif st.columns is None:
            raise PgError("55000", f'portal "{portal_name}" cannot be run')
        tag = portal.tag
        if st.columns is not None:
            rows = portal.rows
            start = portal.pos
            end = len(rows) if max_rows <= 0 else min(len(rows), start + max_rows)
            outputs = portal.outputs or self._portal_outputs(portal)
            if outputs is ps.text_outputs:
                self._send_text_rows(ps, rows if start == 0 and end == len(rows)
                                     else rows[start:end])
            else:
                self._send_rows(rows[start:end], outputs)
            portal.pos = end
            if max_rows > 0 and end - start == max_rows:
                # Like the executor, a fetch that got all it asked for does not know
                # whether more rows remain.
                send(pqf.PORTAL_SUSPENDED)
                return False
            if st.tag == "SELECT":
                tag = f"SELECT {end - start}"
        send(pqf.command_complete(tag))
        if st.is_xact_stmt:
            xact.commit_command()
            self._end_of_transaction()
        return False

    def exec_close_message(self, payload: bytes) -> bool:
        kind, name = pqf.decode_describe_or_close(payload)
        self.xact.start_command()
        if kind == 0x53:
            self.prepared.pop(name, None)
        elif kind == 0x50:
            self.portals.pop(name, None)
        else:
            raise PgError("08P01", f"invalid CLOSE message subtype {kind}")
        self.port.send(pqf.CLOSE_COMPLETE)
        return False

    def exec_sync(self, payload: bytes) -> bool:
        if payload:
            raise pqf.invalid_message_format()
        self.xact.commit_command()  # finish_xact_command
        self._end_of_transaction()
        return True

    def exec_flush(self, payload: bytes) -> bool:
        self.port.flush()
        return False

    def exec_function_call(self, payload: bytes) -> bool:
        raise PgError("0A000", "fastpath function calls are not supported yet")

    # -- COPY (the protocol half of commands/copy.c's CopyFrom/CopyTo) ---------------------

    def copy_in(self, ncols: int) -> Iterator[bytes]:
        """CopyInResponse, then the client's CopyData payloads until CopyDone.
        CopyFail is an error; Flush and Sync are ignored meanwhile, as PostgreSQL
        does; anything else is a protocol violation."""
        port = self.port
        port.send(pqf.copy_in_response(ncols))
        port.flush()
        while True:
            try:
                mtype, payload = port.read_message(MESSAGE_LIMITS)
            except ClientEOF:
                raise FatalError("08P01", "unexpected EOF on client connection with an "
                                          "open transaction") from None
            if mtype == 0x64:  # 'd'
                yield payload
            elif mtype == 0x63:  # 'c'
                return
            elif mtype == 0x66:  # 'f'
                reason = payload.rstrip(b"\0").decode(errors="replace")
                raise PgError("57014", f"COPY from stdin failed: {reason}")
            elif mtype in (0x48, 0x53):  # Flush, Sync
                continue
            else:
                raise FatalError("08P01", f"unexpected message type 0x{mtype:02X} during "
                                          "COPY from stdin")
            if self.interrupt_pending:
                self.check_for_interrupts()

    def copy_out(self, ncols: int, lines: Iterable[bytes]) -> int:
        """CopyOutResponse, one CopyData per line, CopyDone; returns the row count."""
        send = self.port.send
        send(pqf.copy_out_response(ncols))
        n = 0
        for line in lines:
            send(pqf.copy_data(line))
            n += 1
        send(pqf.COPY_DONE)
        return n

    def _ignore_copy(self, payload: bytes) -> bool:
        """CopyData/CopyDone/CopyFail outside COPY: ignored, per protocol."""
        return False


def _in_failed_transaction() -> PgError:
    return PgError("25P02", "current transaction is aborted, "
                            "commands ignored until end of transaction block")


def _params_detail(portal: Portal) -> str | None:
    """errdetail_params: 'Parameters: $1 = '...', ...'."""
    if not portal.params:
        return None
    types = portal.prepared.param_types
    parts = []
    for i, v in enumerate(portal.params):
        if v is None:
            parts.append(f"${i + 1} = NULL")
        else:
            text = utility.text_output(types[i] or pqf.TEXTOID)(v).decode()
            parts.append(f"${i + 1} = '" + text.replace("'", "''") + "'")
    return "Parameters: " + ", ".join(parts)
