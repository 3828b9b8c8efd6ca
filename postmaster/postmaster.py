"""The postmaster — mirrors src/backend/postmaster/postmaster.c.

It owns the data directory lock and the shared memory, listens for clients,
forks one backend per connection plus the auxiliary processes, reaps them,
and runs crash restart. Signal handlers only queue the signal; a wake-up
byte (signal.set_wakeup_fd) makes the main loop's select return, and the loop
dispatches (gunicorn's arbiter pattern).

State machine (pmState in PostgreSQL):

    STARTUP --startup exits 0--> RUN --shutdown request--> STOP_BACKENDS
    STOP_BACKENDS -> WAIT_BACKENDS --all but checkpointer gone--> SHUTDOWN
    SHUTDOWN --checkpointer wrote the shutdown checkpoint and exited--> exit
    any crash --> WAIT_BACKENDS with fatal_error --all gone--> reinitialise, STARTUP

Signals: SIGHUP reload; SIGTERM smart, SIGINT fast, SIGQUIT immediate
shutdown; SIGCHLD reap; SIGUSR1 requests from children (logrotate).
"""

from __future__ import annotations

import enum
import errno
import gc
import os
import platform
import secrets
import selectors
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import setproctitle

from catalog.pg_control import ControlFileError, read_control_file
from postmaster import datadir as dd
from postmaster import sdnotify
from procs.child import BackendLaunch, ChildEnv, block_signals
from shmem import proc as shproc
from shmem import segment as shseg
from shmem.ipci import create_shared_memory_and_semaphores, detach_shared_memory
from utils import elog

SIGKILL_CHILDREN_AFTER_SECS = 5
VERSION_STRING = "PostgreSQL 15.18 (tusk 0.1.0)"


class PMState(enum.Enum):
    INIT = 0
    STARTUP = 1
    RUN = 2
    STOP_BACKENDS = 3
    WAIT_BACKENDS = 4
    SHUTDOWN = 5
    WAIT_DEAD_END = 6
    NO_CHILDREN = 7


class Shutdown(enum.IntEnum):
    NO = 0
    SMART = 1
    FAST = 2
    IMMEDIATE = 3


class ChildKind(enum.Enum):
    BACKEND = "server process"
    STARTUP = "startup process"
    CHECKPOINTER = "checkpointer process"
    BGWRITER = "background writer process"
    WALWRITER = "WAL writer process"
    SYSLOGGER = "system logger process"


AUX_KINDS = (ChildKind.STARTUP, ChildKind.CHECKPOINTER, ChildKind.BGWRITER,
             ChildKind.WALWRITER)


@dataclass
class Child:
    pid: int
    kind: ChildKind
    cancel_key: int = 0
    dead_end: bool = False  # a backend forked only to refuse the connection


class StartupFailure(Exception):
    pass


def _signal_description(signo: int) -> str:
    try:
        return signal.strsignal(signo) or f"signal {signo}"
    except ValueError:
        return f"signal {signo}"


def _preload_child_modules() -> None:
    """Import what children run before forking them: every fork then starts warm
    (a backend's first statement does not pay for the SQL layer's imports), and an
    import error stops the start instead of crashing a child."""
    import access.heapam  # noqa: F401
    import access.nbtree  # noqa: F401
    import access.vacuumlazy  # noqa: F401
    import catalog.heap  # noqa: F401
    import catalog.index  # noqa: F401
    import catalog.namespace  # noqa: F401
    import catalog.system_views  # noqa: F401
    import commands.copy  # noqa: F401
    import commands.tablecmds  # noqa: F401
    import commands.vacuum  # noqa: F401
    import executor.execute  # noqa: F401
    import optimizer.planner  # noqa: F401
    import parser.analyze  # noqa: F401
    import procs.aux  # noqa: F401
    import procs.backend  # noqa: F401
    import procs.bgwriter  # noqa: F401
    import procs.checkpointer  # noqa: F401
    import procs.startup  # noqa: F401
    import procs.syslogger  # noqa: F401
    import procs.walwriter  # noqa: F401
    import storage.bufmgr  # noqa: F401
    import storage.fd  # noqa: F401
    import storage.lmgr.lmgr  # noqa: F401
    import storage.md  # noqa: F401
    import utils.relcache  # noqa: F401
    import utils.snapmgr  # noqa: F401


class Postmaster:
    def __init__(self, datadir: str, options: list[tuple[str, str]], argv: list[str]) -> None:
        self.datadir = datadir
        self.options = options
        self.argv = argv
        self.settings = None  # conf.guc.Settings once loaded
        self.control = None
        self.segment: shseg.ShmemSegment | None = None
        self.children: dict[int, Child] = {}
        self.state = PMState.INIT
        self.shutdown = Shutdown.NO
        self.fatal_error = False
        self.abort_start: float | None = None  # when SIGQUIT went out, for the SIGKILL timer
        self.listen_socks: list[socket.socket] = []
        self.socket_files: list[str] = []
        self.pending_signals: list[int] = []
        self.selector = selectors.DefaultSelector()
        self.wakeup_r = self.wakeup_w = -1
        self.death_r = self.death_w = -1
        self.shm_lock_fd = -1
        self.syslogger_pipe: tuple[int, int] | None = None
        self.lock_file_created = False
        self.exit_code = 0

    # -- configuration -----------------------------------------------------------

    def _load_settings(self) -> None:
        from conf.guc import Settings

        cf = self.control
        self.settings = Settings(wal_block_size=cf.xlog_blcksz, wal_segment_size=cf.xlog_seg_size,
                                 data_checksums=cf.data_checksum_version > 0)
        for msg in self.settings.load_initial(self.datadir, self.options):
            self._log_guc_message(msg)
        elog.configure(self.settings.get)
        from conf import guc
        from storage import fd

        fd.set_data_directory(self.datadir)
        guc.activate(self.settings)

    def _log_guc_message(self, msg) -> None:
        level = elog.LEVEL_BY_NAME.get(str(msg.elevel).upper(), elog.LOG)
        elog.ereport(level, msg.message, detail=msg.detail, hint=msg.hint, sqlstate=msg.sqlstate)

    def print_setting(self, name: str) -> int:
        """``tusk -C name``: print a parameter's value as the server would use it."""
        try:
            self.control = read_control_file(self.datadir)
            self._load_settings()
            print(self.settings.show(name))
            return 0
        except Exception as exc:
            sys.stderr.write(f"tusk: {exc}\n")
            return 1

    # -- start-up ------------------------------------------------------------------

    def run(self) -> int:
        try:
            self._startup()
        except StartupFailure as exc:
            self._fatal_startup(str(exc))
            return 1
        except dd.DataDirError as exc:
            elog.ereport(elog.FATAL, exc.message, detail=exc.detail, hint=exc.hint)
            self._cleanup()
            return 1
        except Exception:
            elog.ereport(elog.FATAL, "could not start: " + traceback.format_exc().strip())
            self._signal_children(signal.SIGQUIT)
            self._cleanup()
            return 1
        try:
            self._server_loop()
        except Exception:
            elog.ereport(elog.PANIC, "postmaster failed: " + traceback.format_exc().strip())
            self._signal_children(signal.SIGQUIT)
            self.exit_code = 1
        self._cleanup()
        return self.exit_code

    def _fatal_startup(self, message: str) -> None:
        for line in message.split("\n"):
            elog.ereport(elog.FATAL, line)
        self._cleanup()

    def _startup(self) -> None:
        # As "postgres -D ..." shows in ps: the command, not the Python interpreter.
        setproctitle.setproctitle(" ".join(self.argv))
        try:
            dd.check_data_dir(self.datadir)
        except dd.DataDirError:
            raise
        try:
            self.control = read_control_file(self.datadir)
        except ControlFileError as exc:
            raise StartupFailure(str(exc)) from exc
        try:
            self._load_settings()
        except Exception as exc:  # conf.guc.ConfigErrors / GucError: name every bad line
            raise StartupFailure(str(exc)) from exc
        if os.geteuid() == 0:
            elog.warning(
                '"root" execution of the PostgreSQL server is not permitted by PostgreSQL; '
                "tusk allows it",
                hint="The server should be started under an unprivileged user ID to prevent "
                     "possible system security compromise. The systemd unit runs it as a "
                     "dedicated user.")
        seg_name = shseg.segment_name(self.datadir)
        dd.create_lock_file(self.datadir, lambda: dd.shm_lock_held(self.datadir))
        self.lock_file_created = True
        self.shm_lock_fd = dd.acquire_shm_lock(self.datadir)
        # Nobody of the old cluster holds the lock any more: its IPC objects are garbage.
        shseg.remove_segment(seg_name)
        dd.write_opts_file(self.datadir, self.argv)
        _preload_child_modules()
        # The preloaded modules live as long as every child: keep the cyclic collector
        # from walking (and, through refcount writes, un-sharing) them after each fork.
        gc.freeze()
        from storage import fd

        fd.set_max_safe_fds(self.settings.get("max_files_per_process"))
        self._setup_signals()
        self.death_r, self.death_w = os.pipe2(os.O_CLOEXEC)
        os.set_inheritable(self.death_r, True)
        # Leftovers of a previous run (RemovePromoteSignalFiles, RemoveLogrotateSignalFiles).
        for stale in ("current_logfiles", "logrotate"):
            try:
                os.unlink(os.path.join(self.datadir, stale))
            except FileNotFoundError:
                pass
        if self.settings.get("logging_collector"):
            elog.ereport(elog.LOG, "redirecting log output to logging collector process",
                         hint="Future log output will appear in directory "
                              f'"{self.settings.get("log_directory")}".')
            self._start_syslogger()
        elog.log(f"starting {VERSION_STRING} on {platform.machine()}-pc-linux-gnu, "
                 f"compiled by Python {platform.python_version()}, 64-bit")
        self._create_listen_sockets()
        port = self.settings.get("port")
        sockdirs = [d.strip() for d in str(self.settings.get("unix_socket_directories")).split(",")
                    if d.strip()]
        listen = [a.strip() for a in str(self.settings.get("listen_addresses")).split(",")
                  if a.strip()]
        dd.add_to_lock_file(self.datadir, dd.LOCK_FILE_LINE_PORT, str(port))
        dd.add_to_lock_file(self.datadir, dd.LOCK_FILE_LINE_SOCKET_DIR, sockdirs[0] if sockdirs else "")
        dd.add_to_lock_file(self.datadir, dd.LOCK_FILE_LINE_LISTEN_ADDR, listen[0] if listen else "")
        self._create_shared_memory(seg_name)
        dd.add_to_lock_file(self.datadir, dd.LOCK_FILE_LINE_SHMEM_KEY, seg_name)
        dd.add_to_lock_file(self.datadir, dd.LOCK_FILE_LINE_PM_STATUS, dd.PM_STATUS_STARTING)
        sdnotify.notify_status("starting")
        self._start_aux(ChildKind.CHECKPOINTER)
        self._start_aux(ChildKind.BGWRITER)
        self._start_aux(ChildKind.STARTUP)
        self.state = PMState.STARTUP

    def _setup_signals(self) -> None:
        self.wakeup_r, self.wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.wakeup_w, warn_on_full_buffer=False)
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT,
                    signal.SIGCHLD, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, self._queue_signal)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self.selector.register(self.wakeup_r, selectors.EVENT_READ, None)

    def _queue_signal(self, signo: int, _frame: object) -> None:
        self.pending_signals.append(signo)

    def _create_shared_memory(self, name: str) -> None:
        self.segment = create_shared_memory_and_semaphores(name, self.settings)

    # -- listening sockets ---------------------------------------------------------

    def _create_listen_sockets(self) -> None:
        port = self.settings.get("port")
        backlog = min(self.settings.get("max_connections") * 2, 1024)
        for addr in [a.strip() for a in str(self.settings.get("listen_addresses")).split(",")]:
            if not addr:
                continue
            self._listen_tcp(addr, port, backlog)
        if str(self.settings.get("listen_addresses")).strip() and not self.listen_socks:
            raise StartupFailure("could not create any TCP/IP sockets")
        for sockdir in [d.strip() for d in
                        str(self.settings.get("unix_socket_directories")).split(",")]:
            if sockdir:
                self._listen_unix(sockdir, port, backlog)
        if not self.listen_socks:
            raise StartupFailure("no socket created for listening")

    def _listen_tcp(self, addr: str, port: int, backlog: int) -> None:
        host = None if addr == "*" else addr
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            elog.warning(f'could not translate host name "{addr}", service "{port}" to '
                         f"address: {exc.strerror}")
            return
        seen = set()
        for family, stype, proto, _canon, sockaddr in infos:
            if (family, sockaddr[0]) in seen or family not in (socket.AF_INET, socket.AF_INET6):
                continue
            seen.add((family, sockaddr[0]))
            fam = "IPv4" if family == socket.AF_INET else "IPv6"
            s = socket.socket(family, stype, proto)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                s.bind(sockaddr)
                s.listen(backlog)
            except OSError as exc:
                s.close()
                elog.ereport(
                    elog.LOG, f'could not bind {fam} address "{sockaddr[0]}": {exc.strerror}',
                    hint=f"Is another postmaster already running on port {port}? If not, "
                         "wait a few seconds and retry." if exc.errno == errno.EADDRINUSE
                    else None)
                continue
            elog.log(f'listening on {fam} address "{sockaddr[0]}", port {port}')
            self._add_listener(s)

    def _listen_unix(self, sockdir: str, port: int, backlog: int) -> None:
        path = os.path.join(sockdir, f".s.PGSQL.{port}")
        lock_path = path + ".lock"
        self._create_socket_lock_file(lock_path, path)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.bind(path)
            os.chmod(path, self.settings.get("unix_socket_permissions"))
            s.listen(backlog)
        except OSError as exc:
            s.close()
            elog.log(f'could not bind Unix address "{path}": {exc.strerror}')
            return
        elog.log(f'listening on Unix socket "{path}"')
        self.socket_files.append(path)
        self._add_listener(s)

    def _create_socket_lock_file(self, lock_path: str, sock_path: str) -> None:
        """The socket's lock file, so two postmasters never share a socket path."""
        for _ in range(10):
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                try:
                    with open(lock_path) as f:
                        other = int(f.readline().strip() or 0)
                except (OSError, ValueError):
                    other = 0
                if other and other != os.getpid() and dd.pid_alive(other):
                    raise dd.DataDirError(
                        f'lock file "{lock_path}" already exists',
                        hint=f'Is another postmaster (PID {other}) using socket file '
                             f'"{sock_path}"?') from None
                os.unlink(lock_path)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()}\n{self.datadir}\n{int(time.time())}\n"
                        f"{self.settings.get('port')}\n{os.path.dirname(sock_path)}\n")
            self.socket_files.append(lock_path)
            return

    def _add_listener(self, s: socket.socket) -> None:
        s.setblocking(False)
        os.set_inheritable(s.fileno(), False)
        self.listen_socks.append(s)
        self.selector.register(s, selectors.EVENT_READ, s)

    # -- the main loop -------------------------------------------------------------

    def _server_loop(self) -> None:
        while True:
            timeout = 1.0 if self.abort_start is None else 0.2
            for key, _ev in self.selector.select(timeout):
                if key.data is None:
                    self._drain_wakeup()
                elif self.state not in (PMState.NO_CHILDREN, PMState.WAIT_DEAD_END):
                    self._accept(key.data)
            self._process_signals()
            self._check_sigkill_timer()
            self._restart_missing_aux()
            if self.state == PMState.NO_CHILDREN:
                return

    def _drain_wakeup(self) -> None:
        try:
            while os.read(self.wakeup_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _process_signals(self) -> None:
        while self.pending_signals:
            sig = self.pending_signals.pop(0)
            if sig == signal.SIGCHLD:
                self._reap_children()
            elif sig == signal.SIGHUP:
                self._handle_reload()
            elif sig == signal.SIGTERM:
                self._handle_shutdown(Shutdown.SMART)
            elif sig == signal.SIGINT:
                self._handle_shutdown(Shutdown.FAST)
            elif sig == signal.SIGQUIT:
                self._handle_shutdown(Shutdown.IMMEDIATE)
            elif sig == signal.SIGUSR1:
                self._handle_child_request()
        self._reap_children()
        self._state_machine()

    # -- connections ---------------------------------------------------------------

    def _accept(self, lsock: socket.socket) -> None:
        for _ in range(64):
            try:
                conn, addr = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                elog.log(f"could not accept new connection: {exc.strerror}")
                return
            try:
                self._backend_startup(conn, addr)
            finally:
                conn.close()

    def _can_accept_connections(self) -> str:
        if self.shutdown > Shutdown.NO:
            return "shutdown"  # a smart shutdown lets sessions finish but admits no new ones
        if self.state != PMState.RUN or self.fatal_error:
            if self.shutdown > Shutdown.NO:
                return "shutdown"
            if self.fatal_error:
                return "recovery"
            return "startup"
        live = sum(1 for c in self.children.values() if c.kind is ChildKind.BACKEND)
        if live >= 2 * self.settings.get("max_connections"):
            return "toomany"
        return "ok"

    def _backend_startup(self, conn: socket.socket, addr) -> None:
        cac = self._can_accept_connections()
        key = secrets.randbits(31)
        launch = BackendLaunch(
            child_env=self._child_env(),
            settings=self.settings,
            segment=self.segment,
            cancel_key=key,
            cancel_keys={c.pid: c.cancel_key for c in self.children.values()
                         if c.kind is ChildKind.BACKEND and not c.dead_end},
            cac_state=cac,
        )

        def run() -> None:
            from procs.backend import backend_main

            backend_main(conn, addr, launch)

        pid = self._fork(run)
        if pid > 0:
            self.children[pid] = Child(pid, ChildKind.BACKEND, key, dead_end=cac != "ok")

    # -- forking -------------------------------------------------------------------

    def _child_env(self) -> ChildEnv:
        close = [s.fileno() for s in self.listen_socks]
        close += [self.wakeup_r, self.wakeup_w, self.death_w, self.selector.fileno()]
        if self.syslogger_pipe:
            close.append(self.syslogger_pipe[0])
        return ChildEnv(self.datadir, os.getpid(), self.death_r, close)

    def _fork(self, target: Callable[[], None]) -> int:
        """Fork a child with signals blocked; the child unblocks them once it has
        installed its own handlers (child.install_handlers)."""
        old_mask = block_signals()
        try:
            pid = os.fork()
        except OSError as exc:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            elog.log(f"could not fork new process for connection: {exc.strerror}")
            return -1
        if pid != 0:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        if pid == 0:
            code = 0
            try:
                target()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                try:
                    elog.ereport(elog.FATAL, "unexpected error: " + traceback.format_exc().strip())
                except BaseException:
                    pass
                code = 1
            finally:
                os._exit(code)
        return pid

    def _start_aux(self, kind: ChildKind) -> int:
        from procs import aux

        env = self._child_env()
        settings, segment = self.settings, self.segment
        pid = self._fork(lambda: aux.aux_main(kind.name.lower(), env, settings, segment))
        if pid > 0:
            self.children[pid] = Child(pid, kind)
        return pid

    def _start_syslogger(self) -> None:
        from procs import syslogger

        if self.syslogger_pipe is None:
            self.syslogger_pipe = syslogger.open_pipe()
        env = self._child_env()
        env.close_fds.remove(self.syslogger_pipe[0])
        env.close_fds.append(self.syslogger_pipe[1])
        pipe_r, settings = self.syslogger_pipe[0], self.settings
        pid = self._fork(lambda: syslogger.syslogger_main(env, settings, pipe_r))
        if pid > 0:
            self.children[pid] = Child(pid, ChildKind.SYSLOGGER)
            if not elog.redirection_done:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(self.syslogger_pipe[1], 1)
                os.dup2(self.syslogger_pipe[1], 2)
                elog.redirection_done = True

    def _pid_of(self, kind: ChildKind) -> int:
        for c in self.children.values():
            if c.kind is kind:
                return c.pid
        return 0

    def _restart_missing_aux(self) -> None:
        """Start auxiliary processes that should be running (ServerLoop's checks)."""
        if self.fatal_error or self.shutdown > Shutdown.NO and self.state != PMState.RUN:
            return
        if self.syslogger_pipe and not self._pid_of(ChildKind.SYSLOGGER):
            self._start_syslogger()
        if self.state in (PMState.STARTUP, PMState.RUN) and self.shutdown == Shutdown.NO:
            for kind in (ChildKind.CHECKPOINTER, ChildKind.BGWRITER):
                if not self._pid_of(kind):
                    self._start_aux(kind)
        if self.state == PMState.RUN and self.shutdown == Shutdown.NO:
            if not self._pid_of(ChildKind.WALWRITER):
                self._start_aux(ChildKind.WALWRITER)

    # -- children exiting ------------------------------------------------------------

    def _reap_children(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            self._child_exited(child, status)

    def _child_exited(self, child: Child, status: int) -> None:
        code = os.waitstatus_to_exitcode(status)
        kind = child.kind
        if kind is ChildKind.SYSLOGGER:
            # The logger is restarted, never a reason for crash recovery.
            if code != 0:
                self._log_child_exit(elog.LOG, child, code)
            return
        if kind is ChildKind.BACKEND:
            if child.dead_end or code in (0, 1):
                if code != 0 and not child.dead_end:
                    self._log_child_exit(elog.DEBUG2, child, code)
                return
            self._handle_child_crash(child, code)
            return
        if kind is ChildKind.STARTUP:
            if code == 0 and not self.fatal_error:
                self._startup_done()
                return
            if self.state == PMState.STARTUP and code > 0 and not self.fatal_error:
                self._log_child_exit(elog.LOG, child, code)
                elog.log("aborting startup due to startup process failure")
                self.exit_code = 1
                self._abort_all()
                return
            if self.shutdown > Shutdown.NO and code == 0:
                return
            self._handle_child_crash(child, code)
            return
        if kind is ChildKind.CHECKPOINTER and code == 0 and self.state == PMState.SHUTDOWN:
            self.state = PMState.WAIT_DEAD_END
            return
        if kind in (ChildKind.BGWRITER, ChildKind.WALWRITER) and code == 0:
            return  # it will be restarted if still wanted
        if code == 0 and (self.shutdown > Shutdown.NO or self.fatal_error):
            return
        self._handle_child_crash(child, code)

    def _log_child_exit(self, level: int, child: Child, code: int) -> None:
        """LogChildExit."""
        if code < 0:
            msg = (f"{child.kind.value} (PID {child.pid}) was terminated by signal {-code}: "
                   f"{_signal_description(-code)}")
        else:
            msg = f"{child.kind.value} (PID {child.pid}) exited with exit code {code}"
        detail = None
        if child.kind is ChildKind.BACKEND and self.segment is not None:
            activity = shproc.ProcArray(self.segment, self.settings.get("max_connections")) \
                .activity_of(child.pid)
            if activity:
                detail = f"Failed process was running: {activity}"
        elog.ereport(level, msg, detail=detail)

    def _handle_child_crash(self, child: Child, code: int) -> None:
        """HandleChildCrash: take everybody down, then reinitialise."""
        if not self.fatal_error and self.shutdown != Shutdown.IMMEDIATE:
            self._log_child_exit(elog.LOG, child, code)
            elog.log("terminating any other active server processes")
        if self.shutdown != Shutdown.IMMEDIATE:
            if self.segment is not None and not self.fatal_error:
                self.segment.quit_reason = shseg.PMQUIT_FOR_CRASH
            if not self.fatal_error:
                self._signal_children(signal.SIGQUIT)
                self.abort_start = time.monotonic()
        self.fatal_error = True
        if self.state in (PMState.RUN, PMState.STARTUP, PMState.STOP_BACKENDS,
                          PMState.SHUTDOWN):
            self.state = PMState.WAIT_BACKENDS
        dd.add_to_lock_file(self.datadir, dd.LOCK_FILE_LINE_PM_STATUS, dd.PM_STATUS_STARTING)

    def _signal_children(self, sig: int, kinds: tuple[ChildKind, ...] | None = None) -> None:
        for c in list(self.children.values()):
            if c.kind is ChildKind.SYSLOGGER:
                continue
            if kinds is None or c.kind in kinds:
                try:
                    os.kill(c.pid, sig)
                except ProcessLookupError:
                    pass

    def _check_sigkill_timer(self) -> None:
        if self.abort_start is None:
            return
        if not any(c.kind is not ChildKind.SYSLOGGER for c in self.children.values()):
            self.abort_start = None
            return
        if time.monotonic() - self.abort_start >= SIGKILL_CHILDREN_AFTER_SECS:
            self._signal_children(signal.SIGKILL)
            self.abort_start = None

    def _abort_all(self) -> None:
        self._signal_children(signal.SIGQUIT)
        self.abort_start = time.monotonic()
        self.shutdown = Shutdown.IMMEDIATE
        self.state = PMState.WAIT_DEAD_END

    def _startup_done(self) -> None:
        self.state = PMState.RUN
        self._start_aux(ChildKind.WALWRITER)
        elog.log("database system is ready to accept connections")
        dd.add_to_lock_file(self.datadir, dd.LOCK_FILE_LINE_PM_STATUS, dd.PM_STATUS_READY)
        sdnotify.notify_ready("ready to accept connections")
        if self.shutdown > Shutdown.NO:
            self.state = PMState.STOP_BACKENDS

    # -- requests ------------------------------------------------------------------

    def _handle_reload(self) -> None:
        if self.shutdown > Shutdown.NO:
            return
        sdnotify.notify_reloading()
        elog.log("received SIGHUP, reloading configuration files")
        for msg in self.settings.reload(self.datadir, is_postmaster=True):
            self._log_guc_message(msg)
        self._signal_children(signal.SIGHUP)
        syslogger = self._pid_of(ChildKind.SYSLOGGER)
        if syslogger:
            os.kill(syslogger, signal.SIGHUP)
        sdnotify.notify_ready("ready to accept connections")

    def _handle_child_request(self) -> None:
        """SIGUSR1: for now, only logrotate (CheckLogrotateSignal)."""
        path = os.path.join(self.datadir, "logrotate")
        if os.path.exists(path):
            os.unlink(path)
            pid = self._pid_of(ChildKind.SYSLOGGER)
            if pid:
                os.kill(pid, signal.SIGUSR1)

    def _handle_shutdown(self, mode: Shutdown) -> None:
        if mode <= self.shutdown:
            return
        self.shutdown = mode
        sdnotify.notify_stopping()
        dd.add_to_lock_file(self.datadir, dd.LOCK_FILE_LINE_PM_STATUS, dd.PM_STATUS_STOPPING)
        if mode == Shutdown.SMART:
            elog.log("received smart shutdown request")
            if self.state == PMState.STARTUP:
                self.state = PMState.STOP_BACKENDS
        elif mode == Shutdown.FAST:
            elog.log("received fast shutdown request")
            if self.state in (PMState.RUN, PMState.STARTUP):
                elog.log("aborting any active transactions")
                self.state = PMState.STOP_BACKENDS
        else:
            elog.log("received immediate shutdown request")
            if self.segment is not None:
                self.segment.quit_reason = shseg.PMQUIT_FOR_STOP
            self._signal_children(signal.SIGQUIT)
            self.abort_start = time.monotonic()
            self.state = PMState.WAIT_DEAD_END

    def _state_machine(self) -> None:
        """PostmasterStateMachine: advance shutdown and crash recovery."""
        if self.state == PMState.RUN and self.shutdown == Shutdown.SMART:
            if not any(c.kind is ChildKind.BACKEND and not c.dead_end
                       for c in self.children.values()):
                self.state = PMState.STOP_BACKENDS
        if self.state == PMState.STOP_BACKENDS:
            self._signal_children(signal.SIGTERM, (ChildKind.BACKEND, ChildKind.WALWRITER,
                                                   ChildKind.BGWRITER, ChildKind.STARTUP))
            self.state = PMState.WAIT_BACKENDS
        if self.state == PMState.WAIT_BACKENDS:
            busy = (ChildKind.BACKEND, ChildKind.WALWRITER, ChildKind.BGWRITER,
                    ChildKind.STARTUP)
            if not any(c.kind in busy and not c.dead_end for c in self.children.values()):
                if self.fatal_error:
                    if not self._pid_of(ChildKind.CHECKPOINTER):
                        self.state = PMState.WAIT_DEAD_END
                else:
                    ckpt = self._pid_of(ChildKind.CHECKPOINTER)
                    if ckpt:
                        os.kill(ckpt, signal.SIGUSR2)
                        self.state = PMState.SHUTDOWN
                    else:
                        self.state = PMState.WAIT_DEAD_END
        if self.state == PMState.WAIT_DEAD_END:
            if not any(c.kind is not ChildKind.SYSLOGGER for c in self.children.values()):
                self.state = PMState.NO_CHILDREN
        if self.state == PMState.NO_CHILDREN:
            if self.fatal_error and self.shutdown == Shutdown.NO and self.exit_code == 0:
                self._reinitialize()
            elif self.exit_code == 0 and self.shutdown != Shutdown.IMMEDIATE \
                    and not self.fatal_error:
                elog.log("database system is shut down")
            elif self.shutdown == Shutdown.IMMEDIATE and self.exit_code == 0:
                elog.log("database system is shut down")

    def _reinitialize(self) -> None:
        """All children are gone after a crash: fresh shared memory, then start again."""
        if not self.settings.get("restart_after_crash"):
            elog.log("shutting down because restart_after_crash is off")
            self.exit_code = 1
            return
        elog.log("all server processes terminated; reinitializing")
        name = self.segment.name if self.segment else shseg.segment_name(self.datadir)
        if self.segment is not None:
            detach_shared_memory()
            self.segment.destroy()
            self.segment = None
        self._create_shared_memory(name)
        self.fatal_error = False
        self.abort_start = None
        self._start_aux(ChildKind.CHECKPOINTER)
        self._start_aux(ChildKind.BGWRITER)
        self._start_aux(ChildKind.STARTUP)
        self.state = PMState.STARTUP

    # -- exit ------------------------------------------------------------------------

    def _cleanup(self) -> None:
        """ExitPostmaster's on_proc_exit work: sockets, lock files, shared memory."""
        for s in self.listen_socks:
            try:
                s.close()
            except OSError:
                pass
        for path in self.socket_files:
            try:
                os.unlink(path)
            except OSError:
                pass
        if self.segment is not None:
            detach_shared_memory()
            self.segment.destroy()
            self.segment = None
        if self.lock_file_created:
            dd.remove_lock_file(self.datadir)
        if self.shm_lock_fd >= 0:
            os.close(self.shm_lock_fd)
            self.shm_lock_fd = -1
