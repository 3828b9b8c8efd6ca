"""``tusk_ctl`` — mirrors src/bin/pg_ctl/pg_ctl.c (plus initdb and pg_controldata).

Verbs, flags, messages and exit codes follow pg_ctl: ``status`` exits 0 when
the server runs, 3 when it does not, 4 when the data directory is not
accessible. Beyond pg_ctl: ``status`` lists every process of the cluster and
the shared memory segment, ``controldata`` prints pg_control, ``logs``
inspects the server log (``--checkpoints`` and ``--probes`` summarise
log_checkpoints' lines and trace probe events), ``systemd-unit`` prints a unit
file, ``simulate-power-loss`` rolls a killed cluster back as a power cut could
(postmaster/powerloss_cmd.py).
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from postmaster import datadir as dd

DEFAULT_WAIT_SECONDS = 60
PROGNAME = "tusk_ctl"


def _err(msg: str) -> None:
    sys.stderr.write(f"{PROGNAME}: {msg}\n")


def _datadir(args: argparse.Namespace) -> str:
    d = args.datadir or os.environ.get("PGDATA")
    if not d:
        _err("no database directory specified and environment variable PGDATA unset")
        sys.stderr.write(f'Try "{PROGNAME} --help" for more information.\n')
        sys.exit(1)
    return os.path.abspath(d)


def _tusk_executable() -> str:
    here = Path(sys.executable).parent / "tusk"
    return str(here) if here.exists() else "tusk"


def _running_pid(datadir: str) -> int | None:
    info = dd.read_pid_file(datadir)
    if info is None or info.pid <= 0 or not dd.pid_alive(info.pid):
        return None
    return info.pid


# -- init ------------------------------------------------------------------------------

def cmd_init(args: argparse.Namespace) -> int:
    from postmaster.initdb import InitdbError, initdb, parse_wal_block_size, parse_wal_segsize

    datadir = _datadir(args)
    try:
        wal_block = parse_wal_block_size(args.wal_block_size)
        wal_seg = parse_wal_segsize(args.wal_segsize)
        print(f"The files belonging to this database system will be owned by user "
              f'"{_os_user()}".')
        print(f'The database superuser will be "{args.username or _os_user()}".')
        print(f"WAL block size: {wal_block // 1024}kB, WAL segment size: "
              f"{wal_seg // (1024 * 1024)}MB.")
        print("Data page checksums are " + ("enabled." if args.data_checksums
                                           else "disabled."))
        initdb(datadir, superuser=args.username, wal_block_size=wal_block, wal_segsize=wal_seg,
               data_checksums=args.data_checksums, allow_group_access=args.allow_group_access)
    except InitdbError as exc:
        for line in str(exc).split("\n"):
            _err(line) if line == str(exc).split("\n")[0] else sys.stderr.write(line + "\n")
        return 1
    print(f"\nSuccess. You can now start the database server using:\n\n"
          f"    {PROGNAME} -D {shlex.quote(datadir)} -l logfile start\n")
    return 0


def _os_user() -> str:
    import getpass

    return getpass.getuser()


# -- start / stop / restart / reload ---------------------------------------------------

def _start(datadir: str, args: argparse.Namespace, extra: list[str]) -> int:
    if _running_pid(datadir):
        _err("another server might be running; trying to start server anyway")
    cmd = [_tusk_executable(), "-D", datadir, *extra]
    out = open(args.log, "ab") if args.log else None
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    finally:
        if out is not None:
            out.close()
    if not args.wait:
        print("server starting")
        return 0
    print("waiting for server to start....", end="", flush=True)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print(" stopped waiting")
            _err("could not start server\nExamine the log output.")
            return 1
        info = dd.read_pid_file(datadir)
        if info and info.pid == proc.pid and info.status == "ready":
            print(" done\nserver started")
            return 0
        time.sleep(0.1)
        print(".", end="", flush=True) if int(time.monotonic() * 10) % 10 == 0 else None
    print(" stopped waiting")
    _err("server did not start in time")
    return 1


def cmd_start(args: argparse.Namespace) -> int:
    datadir = _datadir(args)
    if not os.path.isdir(datadir):
        _err(f'directory "{datadir}" does not exist')
        return 1
    return _start(datadir, args, shlex.split(args.options or ""))


_STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT,
                 "s": signal.SIGTERM, "f": signal.SIGINT, "i": signal.SIGQUIT}


def _stop(datadir: str, args: argparse.Namespace, quiet_missing: bool = False) -> int:
    pidfile = os.path.join(datadir, dd.PID_FILE)
    info = dd.read_pid_file(datadir)
    if info is None:
        if not quiet_missing:
            _err(f'PID file "{pidfile}" does not exist')
            sys.stderr.write("Is server running?\n")
        return 1
    try:
        os.kill(info.pid, _STOP_SIGNALS[args.mode])
    except ProcessLookupError:
        _err(f"could not send stop signal (PID: {info.pid}): No such process")
        return 1
    if not args.wait:
        print("server shutting down")
        return 0
    print("waiting for server to shut down....", end="", flush=True)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if not dd.pid_alive(info.pid) or dd.read_pid_file(datadir) is None:
            # The pid file goes first; wait for the process itself too.
            while dd.pid_alive(info.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            print(" done\nserver stopped")
            return 0
        time.sleep(0.1)
    print(" failed")
    _err("server does not shut down")
    if args.mode in ("smart", "s"):
        sys.stderr.write('HINT: The "-m fast" option immediately disconnects sessions rather '
                         "than\nwaiting for session-initiated disconnection.\n")
    return 1


def cmd_stop(args: argparse.Namespace) -> int:
    return _stop(_datadir(args), args)


def cmd_restart(args: argparse.Namespace) -> int:
    datadir = _datadir(args)
    opts_path = os.path.join(datadir, dd.OPTS_FILE)
    previous: list[str] = []
    if os.path.exists(opts_path):
        previous = shlex.split(open(opts_path).read())[3:]  # drop "tusk -D DIR"
    if _running_pid(datadir):
        if _stop(datadir, args) != 0:
            _err("failed to stop server, cannot restart")
            return 1
    else:
        _err("PID file does not exist")
        sys.stderr.write("Is server running?\ntrying to start server anyway\n")
    extra = shlex.split(args.options) if args.options else previous
    return _start(datadir, args, extra)


def _signal_postmaster(datadir: str, sig: int, done_message: str) -> int:
    pid = _running_pid(datadir)
    if pid is None:
        _err(f'PID file "{os.path.join(datadir, dd.PID_FILE)}" does not exist')
        sys.stderr.write("Is server running?\n")
        return 1
    os.kill(pid, sig)
    print(done_message)
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    return _signal_postmaster(_datadir(args), signal.SIGHUP, "server signaled")


def cmd_logrotate(args: argparse.Namespace) -> int:
    datadir = _datadir(args)
    with open(os.path.join(datadir, "logrotate"), "w"):
        pass
    return _signal_postmaster(datadir, signal.SIGUSR1, "server signaled to rotate log file")


def cmd_kill(args: argparse.Namespace) -> int:
    name = args.signame.upper().removeprefix("SIG")
    allowed = ("ABRT", "HUP", "INT", "KILL", "QUIT", "TERM", "USR1", "USR2")
    if name not in allowed:
        _err(f'unrecognized signal name "{args.signame}"')
        return 1
    try:
        os.kill(args.pid, getattr(signal, "SIG" + name))
    except ProcessLookupError:
        _err(f"could not send signal {getattr(signal, 'SIG' + name).value} "
             f"(PID: {args.pid}): No such process")
        return 1
    return 0


# -- status / controldata --------------------------------------------------------------

def cmd_status(args: argparse.Namespace) -> int:
    datadir = _datadir(args)
    if not os.path.isdir(datadir):
        _err(f'directory "{datadir}" does not exist')
        return 4
    if not os.path.exists(os.path.join(datadir, "PG_VERSION")):
        _err(f'directory "{datadir}" is not a database cluster directory')
        return 4
    pid = _running_pid(datadir)
    if pid is None:
        print(f"{PROGNAME}: no server running")
        return 3
    print(f"{PROGNAME}: server is running (PID: {pid})")
    opts = os.path.join(datadir, dd.OPTS_FILE)
    if os.path.exists(opts):
        print(open(opts).read().rstrip("\n"))
    from postmaster.status import print_cluster_status

    print_cluster_status(datadir, pid)
    return 0


def cmd_controldata(args: argparse.Namespace) -> int:
    from catalog.pg_control import ControlFileError, describe, read_control_file

    datadir = _datadir(args)
    try:
        cf = read_control_file(datadir)
    except ControlFileError as exc:
        _err(str(exc))
        return 1
    for label, value in describe(cf):
        print(f"{label + ':':<38}{value}")
    return 0


def cmd_systemd_unit(args: argparse.Namespace) -> int:
    from postmaster.systemd_unit import render_unit

    sys.stdout.write(render_unit(_datadir(args), args.user))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from postmaster.stats_cmd import run_stats

    return run_stats(args, _datadir(args))


def cmd_checkpoint(args: argparse.Namespace) -> int:
    """Ask the running server for a checkpoint (like the CHECKPOINT command) and
    wait until it is complete; see shmem.checkpointer_shmem.tool_request_checkpoint."""
    from postmaster.stats_cmd import _attach
    from shmem.checkpointer_shmem import tool_request_checkpoint

    seg = _attach(_datadir(args))
    if seg is None:
        return 1
    error = tool_request_checkpoint(seg, args.timeout, args.wait)
    if error is not None:
        _err(error)
        if error == "checkpoint request failed":
            sys.stderr.write("HINT: Consult recent messages in the server log for details.\n")
        return 1
    if not args.silent:
        print("checkpoint complete" if args.wait else "checkpoint requested")
    return 0


def cmd_buffers(args: argparse.Namespace) -> int:
    from postmaster.stats_cmd import run_buffers

    return run_buffers(args, _datadir(args))


def cmd_waldump(args: argparse.Namespace) -> int:
    from postmaster.waldump_cmd import run_waldump

    d = args.datadir or os.environ.get("PGDATA")
    return run_waldump(args, os.path.abspath(d) if d else None)


def cmd_verify(args: argparse.Namespace) -> int:
    from postmaster.verify_cmd import main as verify

    return verify(_datadir(args), args.json)


def cmd_simulate_power_loss(args: argparse.Namespace) -> int:
    from postmaster.powerloss_cmd import main as simulate

    return simulate(_datadir(args), args.seed, worst_case=args.worst_case, as_json=args.json)


def cmd_logs(args: argparse.Namespace) -> int:
    from postmaster.logs_cmd import run_logs

    return run_logs(args, _datadir(args))


# -- argument parsing ------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROGNAME, description="tusk_ctl is a utility to initialize, "
                                "start, stop, or control a tusk server.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def verb(name: str, func, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("-D", "--pgdata", dest="datadir", help="location of the database "
                        "storage area")
        sp.set_defaults(func=func)
        return sp

    def waiting(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("-w", "--wait", dest="wait", action="store_true", default=True,
                        help="wait until operation completes (default)")
        sp.add_argument("-W", "--no-wait", dest="wait", action="store_false",
                        help="do not wait until operation completes")
        sp.add_argument("-t", "--timeout", type=int, default=DEFAULT_WAIT_SECONDS,
                        help="seconds to wait when using -w option")
        sp.add_argument("-s", "--silent", action="store_true", help="only print errors")

    sp = verb("init", cmd_init, "create a new database cluster (initdb)")
    sp.add_argument("-U", "--username", help="database superuser name")
    sp.add_argument("--wal-block-size", default="8", help="WAL block size in kB "
                    "(1, 2, 4, 8, 16, 32, 64)")
    sp.add_argument("--wal-segsize", default="16", help="size of WAL segments, in megabytes")
    sp.add_argument("-k", "--data-checksums", action="store_true", help="use data page "
                    "checksums")
    sp.add_argument("-g", "--allow-group-access", action="store_true",
                    help="allow group read/execute on data directory")

    for name, func, help_ in (("start", cmd_start, "start the server"),
                              ("restart", cmd_restart, "restart the server")):
        sp = verb(name, func, help_)
        waiting(sp)
        sp.add_argument("-l", "--log", help="write (or append) server log to FILENAME")
        sp.add_argument("-o", "--options", help="command line options to pass to tusk")
        sp.add_argument("-m", "--mode", default="fast", choices=list(_STOP_SIGNALS))
    sp = verb("stop", cmd_stop, "stop the server")
    waiting(sp)
    sp.add_argument("-m", "--mode", default="fast", choices=list(_STOP_SIGNALS),
                    help="smart, fast or immediate")
    verb("reload", cmd_reload, "make the server re-read its configuration files")
    verb("status", cmd_status, "show the server's status, processes and shared memory")
    verb("logrotate", cmd_logrotate, "rotate the server log file")
    verb("controldata", cmd_controldata, "print pg_control (pg_controldata)")
    sp = verb("stats", cmd_stats, "buffer, I/O and LWLock counters per backend type / tranche")
    sp.add_argument("--json", action="store_true", help="print JSON")
    sp.add_argument("--bgwriter", action="store_true",
                    help="only the pg_stat_bgwriter counters (checkpoints, buffers written)")
    waiting(verb("checkpoint", cmd_checkpoint, "force a checkpoint in the running server "
                 "and wait for it (like CHECKPOINT)"))
    sp = verb("buffers", cmd_buffers, "the shared buffer pool, as pg_buffercache shows it")
    sp.add_argument("--all", action="store_true", help="list every used buffer")
    sp.add_argument("--json", action="store_true", help="one JSON object per buffer")
    from postmaster.waldump_cmd import add_waldump_arguments

    add_waldump_arguments(verb("waldump", cmd_waldump, "print WAL records (pg_waldump)"))
    sp = verb("verify", cmd_verify, "check pages, tables, HOT chains and B-tree indexes "
              "against their tables (amcheck-like); online through SQL when the server runs")
    sp.add_argument("--json", action="store_true", help="print JSON")
    sp = verb("simulate-power-loss", cmd_simulate_power_loss,
              "after kill -9 of a cluster run with debug_power_loss = on, roll its files "
              "back to what a disk could hold after a power cut")
    sp.add_argument("--seed", type=int, help="random seed (default: a random one, printed)")
    sp.add_argument("--worst-case", action="store_true", help="drop every unsynced write "
                    "and undo every unsynced directory change")
    sp.add_argument("--json", action="store_true", help="print JSON")
    sp = verb("systemd-unit", cmd_systemd_unit, "print a systemd unit for this cluster")
    sp.add_argument("--user", help="operating-system user to run the server as")
    sp = sub.add_parser("kill", help="send a signal to a process")
    sp.add_argument("signame")
    sp.add_argument("pid", type=int)
    sp.set_defaults(func=cmd_kill, datadir=None)
    try:
        from postmaster.logs_cmd import add_logs_arguments
    except ImportError:
        pass
    else:
        add_logs_arguments(verb("logs", cmd_logs, "inspect the server log"))
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
