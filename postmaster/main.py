"""``tusk`` — the server executable, like ``postgres`` (src/backend/main/main.c).

    tusk -D DATADIR [-c name=value] [--name=value] [-p PORT] [-h ADDRS]
         [-k SOCKDIRS] [-N MAXCONN] [-B NBUFFERS] [-F] [-d LEVEL] [-C name]

Runs the postmaster in the foreground. PGDATA is used when -D is absent.
"""

from __future__ import annotations

import os
import sys

USAGE = """tusk is the tusk server (PostgreSQL 15 compatible).

Usage:
  tusk [OPTION]...

Options:
  -B NBUFFERS        number of shared buffers
  -c NAME=VALUE      set run-time parameter
  -C NAME            print value of run-time parameter, then exit
  -d 1-5             debugging level
  -D DATADIR         database directory
  -F                 turn fsync off
  -h HOSTNAME        host name or IP address to listen on
  -k DIRECTORY       Unix-domain socket location
  -N MAX-CONNECT     maximum number of allowed connections
  -p PORT            port number to listen on
  --NAME=VALUE       set run-time parameter
  -V, --version      output version information, then exit
  -?, --help         show this help, then exit
"""

_SHORT_OPTS = {"-B": "shared_buffers", "-h": "listen_addresses", "-k": "unix_socket_directories",
               "-N": "max_connections", "-p": "port"}


class UsageError(Exception):
    pass


def parse_args(argv: list[str]) -> tuple[str | None, list[tuple[str, str]], str | None]:
    """Returns (datadir, [(guc, value)], -C name)."""
    datadir: str | None = None
    options: list[tuple[str, str]] = []
    show: str | None = None
    i = 0

    def value() -> str:
        nonlocal i
        arg = argv[i]
        if len(arg) > 2:
            return arg[2:]
        i += 1
        if i >= len(argv):
            raise UsageError(f"option requires an argument -- '{arg[1]}'")
        return argv[i]

    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--") and "=" in arg:
            name, _, val = arg[2:].partition("=")
            options.append((name.replace("-", "_"), val))
        elif arg[:2] == "-D":
            datadir = value()
        elif arg[:2] == "-c":
            item = value()
            name, eq, val = item.partition("=")
            if not eq:
                raise UsageError(f"-c {item} requires a value")
            options.append((name.replace("-", "_"), val))
        elif arg[:2] == "-C":
            show = value()
        elif arg[:2] == "-d":
            options.append(("log_min_messages", f"debug{value()}"))
        elif arg == "-F":
            options.append(("fsync", "off"))
        elif arg[:2] in _SHORT_OPTS:
            options.append((_SHORT_OPTS[arg[:2]], value()))
        else:
            raise UsageError(f"invalid argument: \"{arg}\"")
        i += 1
    return datadir, options, show


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-V", "--version"):
        print("tusk (PostgreSQL) 15.18")
        sys.exit(0)
    if argv and argv[0] in ("-?", "--help"):
        print(USAGE, end="")
        sys.exit(0)
    try:
        datadir, options, show = parse_args(argv)
    except UsageError as exc:
        sys.stderr.write(f"tusk: {exc}\nTry \"tusk --help\" for more information.\n")
        sys.exit(1)
    datadir = datadir or os.environ.get("PGDATA")
    if not datadir:
        sys.stderr.write(
            "tusk does not know where to find the server configuration file.\n"
            "You must specify the --config-file or -D invocation option or set the PGDATA "
            "environment variable.\n")
        sys.exit(2)
    from postmaster.postmaster import Postmaster

    pm = Postmaster(os.path.abspath(datadir), options, ["tusk", *argv])
    if show is not None:
        sys.exit(pm.print_setting(show))
    sys.exit(pm.run())


if __name__ == "__main__":
    main()
