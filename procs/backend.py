"""A client backend from fork to exit — mirrors postmaster.c's BackendInitialize and
ProcessStartupPacket (with processCancelRequest), utils/init/postinit.c's
InitPostgres (PerformAuthentication, the role and database checks,
process_startup_options) and the proc_exit path of storage/ipc/ipc.c.

The postmaster forks and calls ``backend_main`` with the accepted socket. Until the
startup packet is in, SIGTERM and the authentication_timeout end the process
silently with exit code 1 (nothing is in shared memory yet), SIGQUIT with 2. Then
the backend claims its PGPROC slot, authenticates (trust: AuthenticationOk),
applies the startup options and hands over to tcop.postgres.PostgresMain.

Exit codes, as the postmaster expects them: 0 after Terminate, client EOF or a
startup packet that leads nowhere (cancel request, bad length); 1 after any FATAL;
2 from quickdie. A normal exit releases the PGPROC slot.

Where it differs from PostgreSQL: only trust authentication exists (no
pg_hba.conf), and the refusal messages for a database system that is not ready
come from the postmaster's verdict at fork time (launch.cac_state).
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import time
import traceback
from typing import NoReturn

from catalog import bootstrap
from conf.guc import GucError
from conf.guc_tables import NAMEDATALEN, GucContext, GucSource
from libpq import pqformat as pqf
from libpq.pqcomm import ConnectionLost, Port
from procs import child
from procs.postinit import init_process, proc_kill
from shmem.proc import BackendType, ProcArray, TooManyClients
from tcop.postgres import PostgresMain, ProcExit
from utils import elog
from utils.adt import pgstatfuncs  # noqa: F401  the statistics functions, loaded before fork
from utils.elog import FatalError, PgError

_U32 = struct.Struct("!I")

_CAC_REFUSALS = {
    "startup": ("57P03", "the database system is starting up"),
    "shutdown": ("57P03", "the database system is shutting down"),
    "recovery": ("57P03", "the database system is in recovery mode"),
    "toomany": ("53300", "sorry, too many clients already"),
}
TOO_MANY_CLIENTS = "sorry, too many clients already"


def backend_main(sock: socket.socket, remote: tuple | str, launch: child.BackendLaunch) -> NoReturn:
    """Entry point in the freshly forked child (BackendRun)."""
    child.init_postmaster_child(launch.child_env, "client backend", "client backend")
    backend = Backend(sock, remote, launch)
    backend.proc_exit(backend.run())


def _startup_die(_signo: int, _frame: object) -> None:
    """process_startup_packet_die: nothing to clean up yet."""
    os._exit(1)


def _crash_exit(_signo: int, _frame: object) -> None:
    os._exit(2)


def _ignore(_signo: int, _frame: object) -> None:
    pass


_early_sighup = False


def _startup_sighup(_signo: int, _frame: object) -> None:
    """A reload requested before the session's own handlers exist is kept for later."""
    global _early_sighup
    _early_sighup = True


def _truncate_name(name: str) -> str:
    """Names are truncated to NAMEDATALEN - 1 bytes, on a character boundary."""
    raw = name.encode()
    if len(raw) < NAMEDATALEN:
        return name
    return raw[:NAMEDATALEN - 1].decode(errors="ignore")


def split_options(options: str) -> list[str]:
    """pg_split_opts: split on whitespace; a backslash makes the next character literal."""
    out: list[str] = []
    i, n = 0, len(options)
    while i < n:
        while i < n and options[i].isspace():
            i += 1
        if i >= n:
            break
        word = []
        while i < n and not options[i].isspace():
            if options[i] == "\\" and i + 1 < n:
                i += 1
            word.append(options[i])
            i += 1
        out.append("".join(word))
    return out


def parse_switches(args: list[str]) -> list[tuple[str, str]]:
    """process_postgres_switches for ``-c name=value`` and ``--name=value``."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if not eq:
                raise FatalError("42601", f"--{name} requires a value")
        elif arg.startswith("-c"):
            opt = arg[2:]
            if not opt:
                if i >= len(args):
                    raise FatalError("42601", "invalid command-line argument for server "
                                              f"process: {arg}",
                                     hint='Try "tusk --help" for more information.')
                opt = args[i]
                i += 1
            name, eq, value = opt.partition("=")
            if not eq:
                raise FatalError("42601", f"-c {name} requires a value")
        else:
            raise FatalError("42601", f"invalid command-line argument for server process: {arg}",
                             hint='Try "tusk --help" for more information.')
        out.append((name.replace("-", "_"), value))
    return out


class Backend:
    """One client connection's process: start-up, the session, and exit."""

    def __init__(self, sock: socket.socket, remote: tuple | str,
                 launch: child.BackendLaunch) -> None:
        self.sock = sock
        self.launch = launch
        self.settings = launch.settings
        self.datadir = launch.child_env.datadir
        self.port = Port(sock, wait_readable=self._startup_wait)
        self.session_start = time.time()
        self.auth_deadline = 0.0
        self.remote_host, self.remote_port = self._remote_strings(sock, remote)
        self.user = ""
        self.database = ""
        self.application_name: str | None = None
        self.cmdline_options = ""
        self.guc_options: list[tuple[str, str]] = []
        self.procs: ProcArray | None = None
        self.main: PostgresMain | None = None
        self.log_disconnections = False

    @staticmethod
    def _remote_strings(sock: socket.socket, remote: tuple | str) -> tuple[str, str]:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(remote, tuple):
            return str(remote[0]), str(remote[1])
        return "[local]", ""

    # -- the whole life ----------------------------------------------------------------------

    def run(self) -> int:
        """Everything up to exit; returns the exit code."""
        try:
            self.initialize()
            self.init_postgres()
            assert self.main is not None
            self.main.send_startup_messages(self.launch.cancel_key)
            self.main.run()
            return 0  # not reached: run() leaves by raising
        except ProcExit as exc:
            return exc.code
        except PgError as err:  # errors before the session proper are FATAL
            self.report_fatal(err)
            return 1
        except ConnectionLost:
            if self.port.broken:
                elog.ereport(elog.FATAL, "connection to client lost", sqlstate="08006",
                             to_client=False)
                return 1
            return 0
        except Exception as exc:  # a bug: still leave through proc_exit (frees the slot)
            elog.ereport(elog.LOG, "internal error: " + traceback.format_exc().strip(),
                         to_client=False)
            self.report_fatal(PgError("XX000", f"internal error: {exc}"))
            return 1

    def proc_exit(self, code: int) -> NoReturn:
        """proc_exit: the on_proc_exit callbacks, then leave without returning to the
        postmaster's code that forked us."""
        elog.client_sink = None
        try:
            if self.log_disconnections:
                self._log_disconnection()
            if self.procs is not None:
                proc_kill(self.procs)
            self.port.close()
        finally:
            os._exit(code)

    def report_fatal(self, err: PgError) -> None:
        """A FATAL: log it, tell the client if it can still hear us."""
        elog.ereport(elog.FATAL, err.message, detail=err.detail, hint=err.hint,
                     sqlstate=err.sqlstate, to_client=False)
        if self.port.broken:
            return
        try:
            self.port.send(pqf.error_response("FATAL", err.sqlstate, err.message, err.detail,
                                              err.hint, err.position))
            self.port.flush()
        except (ConnectionLost, PgError, ProcExit):
            pass

    def _log_disconnection(self) -> None:
        elapsed = time.time() - self.session_start
        ms = int(elapsed * 1000)
        h, rest = divmod(ms, 3_600_000)
        m, rest = divmod(rest, 60_000)
        s, ms = divmod(rest, 1000)
        port = f" port={self.remote_port}" if self.remote_port else ""
        elog.log(f"disconnection: session time: {h}:{m:02d}:{s:02d}.{ms:03d} "
                 f"user={self.user} database={self.database} host={self.remote_host}{port}")

    # -- BackendInitialize ----------------------------------------------------------------

    def initialize(self) -> None:
        child.install_handlers({signal.SIGTERM: _startup_die, signal.SIGQUIT: _crash_exit,
                                signal.SIGINT: _ignore, signal.SIGHUP: _startup_sighup})
        if self.sock.family in (socket.AF_INET, socket.AF_INET6):
            # Replies go out whole at ReadyForQuery: never wait for Nagle.
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        ctx = elog.context
        ctx.remote_host = self.remote_host
        ctx.remote_port = self.remote_port or None
        ctx.is_session = True
        if self.settings.get("log_connections"):
            if self.remote_port:
                elog.log(f"connection received: host={self.remote_host} port={self.remote_port}")
            else:
                elog.log(f"connection received: host={self.remote_host}")
        self.auth_deadline = time.monotonic() + self.settings.get("authentication_timeout")
        if not self.process_startup_packet(ssl_done=False, gss_done=False):
            raise ProcExit(0)

    def _startup_wait(self, _sock: socket.socket) -> None:
        """Waiting for the startup packet: authentication_timeout ends it silently."""
        while True:
            remaining = self.auth_deadline - time.monotonic()
            if remaining <= 0:
                os._exit(1)  # StartupPacketTimeoutHandler
            bits = child.wait_latch(remaining, (self.port.fd,))
            if bits & child.WL_POSTMASTER_DEATH:
                os._exit(1)
            if bits & child.WL_LATCH_SET:
                child.reset_latch()
            if bits & child.WL_SOCKET_READABLE:
                return

    def process_startup_packet(self, ssl_done: bool, gss_done: bool) -> bool:
        """ProcessStartupPacket; False when the connection ends here without a session."""
        while True:
            packet = self.port.read_startup_packet(after_negotiation=ssl_done or gss_done)
            if packet is None:
                return False
            (proto,) = _U32.unpack_from(packet)
            if proto == pqf.CANCEL_REQUEST_CODE:
                if len(packet) == 12:
                    self.process_cancel_request(packet)
                return False
            if (proto == pqf.NEGOTIATE_SSL_CODE and not ssl_done) or \
                    (proto == pqf.NEGOTIATE_GSS_CODE and not gss_done):
                if proto == pqf.NEGOTIATE_SSL_CODE:
                    ssl_done = True
                else:
                    gss_done = True
                if not self.port.send_byte_now(pqf.SSL_REFUSED):
                    return False
                if self.port.has_buffered_data():
                    raise FatalError("08P01", "received unencrypted data after SSL request",
                                     detail="This could be an either a client-software bug or "
                                            "evidence of an attempted man-in-the-middle attack.")
                continue
            self._parse_startup(proto, packet)
            return True

    def _parse_startup(self, proto: int, packet: bytes) -> None:
        major, minor = proto >> 16, proto & 0xFFFF
        if major != pqf.PG_PROTOCOL_MAJOR_LATEST:
            raise FatalError("0A000", f"unsupported frontend protocol {major}.{minor}: "
                                      "server supports 3.0 to 3.0")
        unrecognized: list[str] = []
        pos, end = 4, len(packet)
        while pos < end:
            name_end = packet.find(b"\0", pos)
            if name_end < 0 or name_end == pos:
                break  # the terminator (or a malformed tail, refused below)
            val_end = packet.find(b"\0", name_end + 1)
            if val_end < 0:
                break
            name = packet[pos:name_end].decode(errors="replace")
            value = packet[name_end + 1:val_end].decode(errors="replace")
            pos = val_end + 1
            if name == "database":
                self.database = value
            elif name == "user":
                self.user = value
            elif name == "options":
                self.cmdline_options = value
            elif name == "replication":
                if value.lower() not in ("false", "off", "no", "0"):
                    raise FatalError("0A000", "replication connections are not supported")
            elif name.startswith("_pq_."):
                unrecognized.append(name)
            else:
                self.guc_options.append((name, value))
                if name == "application_name":
                    self.application_name = "".join(
                        c if 32 <= ord(c) < 127 else "?" for c in value)
        if pos != end - 1 or packet[-1] != 0:
            raise FatalError("08P01", "invalid startup packet layout: expected terminator "
                                      "as last byte")
        if minor > pqf.PG_PROTOCOL_MINOR_LATEST or unrecognized:
            self.port.send(pqf.negotiate_protocol_version(pqf.PG_PROTOCOL_MINOR_LATEST,
                                                          unrecognized))
        if not self.user:
            raise FatalError("28000", "no PostgreSQL user name specified in startup packet")
        if not self.database:
            self.database = self.user
        self.user = _truncate_name(self.user)
        self.database = _truncate_name(self.database)
        refusal = _CAC_REFUSALS.get(self.launch.cac_state)
        if refusal is not None:
            raise FatalError(*refusal)

    def process_cancel_request(self, packet: bytes) -> None:
        """processCancelRequest: SIGINT to the backend whose key matches; no reply."""
        pid, key = pqf.decode_cancel_request(packet)
        secret = self.launch.cancel_keys.get(pid)
        if secret is None:
            elog.log(f"PID {pid} in cancel request did not match any process")
        elif secret & 0xFFFFFFFF != key:
            elog.log(f"wrong key in cancel request for process {pid}")
        else:
            elog.debug2(f"processing cancel request: sending SIGINT to process {pid}")
            try:
                os.kill(pid, signal.SIGINT)
            except ProcessLookupError:
                pass

    # -- InitProcess + InitPostgres --------------------------------------------------------------

    def init_postgres(self) -> None:
        ctx = elog.context
        ctx.user, ctx.dbname = self.user, self.database
        ctx.application_name = self.application_name or ""
        ps_prefix = f"{self.user} {self.database} {self.remote_host}"
        if self.remote_port:
            ps_prefix += f"({self.remote_port})"
        # init_ps_display; with update_process_title off only the fixed part shows.
        child.set_ps_display(f"{ps_prefix} authentication"
                             if self.settings.get("update_process_title") else ps_prefix)
        self.main = PostgresMain(self.port, self.settings, user=self.user,
                                 database=self.database, ps_prefix=ps_prefix,
                                 datadir=self.datadir, segment=self.launch.segment)
        self.main.install_signal_handlers()
        self.main.config_reload_pending = _early_sighup

        role = bootstrap.lookup_role(self.datadir, self.user)
        is_superuser = bool(role and role.rolsuper)
        reserved_refusal = self._claim_proc(is_superuser)

        # PerformAuthentication: trust.
        self.port.send(pqf.AUTHENTICATION_OK)
        if self.settings.get("log_connections"):
            msg = f"connection authorized: user={self.user} database={self.database}"
            if self.application_name is not None:
                msg += f" application_name={self.application_name}"
            elog.log(msg)

        # InitializeSessionUserId
        if role is None:
            raise FatalError("28000", f'role "{self.user}" does not exist')
        if not role.rolcanlogin:
            raise FatalError("28000", f'role "{self.user}" is not permitted to log in')
        if reserved_refusal is not None:
            raise FatalError("53300", reserved_refusal)
        db = bootstrap.lookup_database(self.datadir, self.database)
        if db is None:
            raise FatalError("3D000", f'database "{self.database}" does not exist')
        if not db.datallowconn:
            raise FatalError("55000", f'database "{self.database}" is not currently '
                                      "accepting connections")
        bootstrap.set_session_database(db, role)
        self.settings.set_session_user(self.user, is_superuser)
        self.process_startup_options()
        self.log_disconnections = bool(self.settings.get("log_disconnections"))
        self._pgstat_bestart(db, role)

    def _pgstat_bestart(self, db, role) -> None:
        """pgstat_bestart: this session appears in pg_stat_activity."""
        from utils import backend_status

        port = int(self.remote_port) if self.remote_port else -1
        backend_status.pgstat_bestart(
            db.oid, db.datname, role.oid, role.rolname,
            str(self.settings.get("application_name") or ""), self.sock.family,
            self.remote_host if port >= 0 else "", port)
        seg = backend_status.segment()
        if seg is not None:
            from utils import pgstat_relation

            pgstat_relation.attach(seg, db.oid)  # per-table statistics of this database

    def _claim_proc(self, is_superuser: bool) -> str | None:
        """InitProcess: a PGPROC slot. No free slot at all is FATAL at once; a refusal
        for the superuser-reserved slots comes after authentication, as in PostgreSQL."""
        segment = self.launch.segment
        if segment is None:
            return None
        try:
            procs = init_process(segment, self.settings, BackendType.B_BACKEND,
                                 is_superuser=is_superuser,
                                 reserved=self.settings.get("superuser_reserved_connections"))
        except TooManyClients as exc:
            if str(exc) == TOO_MANY_CLIENTS:
                raise FatalError("53300", TOO_MANY_CLIENTS) from None
            return str(exc)
        self.procs = procs
        assert self.main is not None
        self.main.procs = procs
        from utils import session

        session.procs = procs
        return None

    def process_startup_options(self) -> None:
        """The startup packet's ``options`` switches, then its other keys, as
        backend-context settings from the client (errors are FATAL here)."""
        items = parse_switches(split_options(self.cmdline_options)) + self.guc_options
        for name, value in items:
            try:
                self.settings.set(name, value, context=GucContext.BACKEND,
                                  source=GucSource.CLIENT)
            except GucError as err:
                raise FatalError(err.sqlstate, err.message, detail=err.detail,
                                 hint=err.hint) from None
