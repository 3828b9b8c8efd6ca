"""The differential SQL suite's runner: run a script of tests/sql through psql against
a server, normalise the output, compare it with PostgreSQL 15's (pg_regress in small).

Each script runs in one psql invocation::

    psql -X -a -q -v ON_ERROR_STOP=0 -v VERBOSITY=verbose -v SHOW_CONTEXT=errors \\
         -P pager=off -h HOST -p PORT -U USER -d DB -f NAME.sql

from tests/sql as working directory, so psql's error prefix reads
``psql:NAME.sql:LINE: ERROR:  SQLSTATE: message`` wherever the checkout lives, with
stderr merged into stdout (psql flushes stdout before each message, as pg_regress
relies on). The environment fixes everything both servers would otherwise print
differently: PGTZ=UTC, PGDATESTYLE='ISO, MDY', PGCLIENTENCODING=UTF8 (libpq sends
them as start-up parameters), LC_ALL=C for psql's own messages, and no inherited PG*
variable (PGOPTIONS, PGDATABASE, ...).

Normalisation (``normalise``) changes only what must differ between two correct
servers; each rule is one entry of ``NORMALISATIONS``:

- ``LOCATION:`` lines (VERBOSITY verbose): they name PostgreSQL's C source file,
  function and line. SQLSTATE, message, DETAIL, HINT, CONTEXT and the
  ``LINE n: ...`` / caret lines are kept.
- The text of version(): ``PostgreSQL 15.N (build) on PLATFORM, compiled by ...,
  NN-bit`` becomes ``PostgreSQL 15.N (normalised)``, and ``server_version``'s
  ``15.N (Debian 15.N-...)`` becomes ``15.N``; the minor version becomes N too.
  Only whole lines are rewritten, so print them in unaligned format (psql's aligned
  format pads a column to its widest value, which normalising cannot repair).

Backend pids, OIDs, xids, LSNs and timestamps of now are not normalised: scripts
must not print them (compare them instead: ``now() = now()``).
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

SQL_DIR = Path(__file__).resolve().parent / "sql"
EXPECTED_DIR = SQL_DIR / "expected"
SCHEDULE = SQL_DIR / "schedule"
PG_BINDIR = Path(os.environ.get("PG15_BINDIR", "/usr/lib/postgresql/15/bin"))
PSQL = shutil.which("psql") or str(PG_BINDIR / "psql")

# psql's variables and print options: verbose errors (with SQLSTATE), CONTEXT for
# errors only (COPY's "COPY t, line 2, column a: ..."), no pager.
PSQL_OPTIONS = ["-X", "-a", "-q", "-v", "ON_ERROR_STOP=0", "-v", "VERBOSITY=verbose",
                "-v", "SHOW_CONTEXT=errors", "-P", "pager=off"]

# libpq sends PGTZ and PGDATESTYLE as start-up parameters (TimeZone, DateStyle) and
# PGCLIENTENCODING as client_encoding.
PSQL_SETTINGS = {"PGTZ": "UTC", "PGDATESTYLE": "ISO, MDY", "PGCLIENTENCODING": "UTF8",
                 "LC_ALL": "C", "LANG": "C", "PGAPPNAME": "sql_regress"}

NORMALISATIONS: list[tuple[str, Callable[[str], str]]] = [
    ("LOCATION lines name PostgreSQL's C sources",
     lambda text: re.sub(r"(?m)^LOCATION:  .*\n", "", text)),
    ("version() text: minor version, build and platform",
     lambda text: re.sub(r"(?m)^PostgreSQL 15\.\d+ .*, \d+-bit$",
                         "PostgreSQL 15.N (normalised)", text)),
    ("server_version: minor version and build suffix",
     lambda text: re.sub(r"(?m)^15\.\d+( \([^)\n]*\))?$", "15.N", text)),
]


def psql_env() -> dict[str, str]:
    """The environment psql runs in: ours, without any inherited PG* variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "PSQL", "LC_"))}
    env.update(PSQL_SETTINGS)
    return env


def normalise(text: str) -> str:
    """Apply every rule of ``NORMALISATIONS`` in order."""
    for _why, rule in NORMALISATIONS:
        text = rule(text)
    return text


def scripts() -> list[str]:
    """Names (without .sql) of every script in tests/sql, sorted."""
    return sorted(p.stem for p in SQL_DIR.glob("*.sql"))


def schedule() -> list[str]:
    """The scripts tusk must pass: tests/sql/schedule, one name a line, # comments."""
    names = []
    for line in SCHEDULE.read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(name.removesuffix(".sql"))
    return names


def expected_path(name: str) -> Path:
    return EXPECTED_DIR / f"{name}.out"


class ScriptRun(NamedTuple):
    output: str  # normalised
    returncode: int  # psql's: 0 unless it could not connect or lost the connection (2)


def run_script(name: str, host: str, port: int, user: str, dbname: str,
               timeout: float = 120) -> ScriptRun:
    """Run tests/sql/NAME.sql through one psql; its normalised output."""
    proc = subprocess.run(
        [PSQL, *PSQL_OPTIONS, "-h", host, "-p", str(port), "-U", user, "-d", dbname,
         "-f", f"{name}.sql"],
        cwd=SQL_DIR, env=psql_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, timeout=timeout)
    return ScriptRun(normalise(proc.stdout.decode("utf-8", errors="replace")), proc.returncode)


def psql_command(sql: str, host: str, port: int, user: str, dbname: str = "postgres",
                 ) -> subprocess.CompletedProcess[str]:
    """One statement through psql -c (for set-up: CREATE/DROP DATABASE)."""
    return subprocess.run(
        [PSQL, "-X", "-q", "-v", "VERBOSITY=verbose", "-h", host, "-p", str(port), "-U", user,
         "-d", dbname, "-c", sql],
        env=psql_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def database_name(name: str) -> str:
    return f"regress_{name}"


# CREATE DATABASE options that make PostgreSQL's result independent of the cluster's
# locale: text sorts bytewise, as tusk's does.
PG_CREATEDB_OPTIONS = "TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"


def create_database(host: str, port: int, user: str, name: str, options: str = "",
                    ) -> str | None:
    """CREATE DATABASE NAME; None if the server has no CREATE DATABASE yet (0A000),
    RuntimeError on any other failure."""
    proc = psql_command(f"CREATE DATABASE {name} {options}".strip(), host, port, user)
    if proc.returncode == 0:
        return name
    if "ERROR:  0A000:" in proc.stderr:
        return None
    raise RuntimeError(f"CREATE DATABASE {name} failed:\n{proc.stderr}")


def drop_database(host: str, port: int, user: str, name: str) -> None:
    psql_command(f"DROP DATABASE IF EXISTS {name}", host, port, user)


def unified_diff(expected: str, actual: str, name: str) -> str:
    return "".join(difflib.unified_diff(
        expected.splitlines(keepends=True), actual.splitlines(keepends=True),
        fromfile=f"expected/{name}.out", tofile=f"results/{name}.out"))


# =============================================================================================
# A throw-away PostgreSQL 15
# =============================================================================================


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    """A PostgreSQL 15 in a temporary directory, on a free port, listening only on a
    Unix socket in that directory. Run as user postgres (runuser) when we are root:
    PostgreSQL refuses to run as root."""

    bindir: Path = PG_BINDIR
    user: str = "postgres"
    port: int = field(default_factory=free_port)
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pg15-sql-")))

    @property
    def host(self) -> str:
        return str(self.base)

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    def _as_postgres(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def start(self) -> None:
        os.chmod(self.base, 0o755)
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        env = psql_env()
        subprocess.run([*self._as_postgres(), str(self.bindir / "initdb"), "-D",
                        str(self.datadir), "-U", self.user, "--locale=C", "-E", "UTF8",
                        "--auth=trust", "--no-sync"],
                       check=True, capture_output=True, env=env, cwd=self.base)
        subprocess.run([*self._as_postgres(), str(self.bindir / "pg_ctl"), "-D",
                        str(self.datadir), "-w", "-l", str(self.base / "log"), "-o",
                        f"-p {self.port} -k {self.base} -c listen_addresses='' -c fsync=off",
                        "start"], check=True, capture_output=True, env=env, cwd=self.base)

    def stop(self) -> None:
        subprocess.run([*self._as_postgres(), str(self.bindir / "pg_ctl"), "-D",
                        str(self.datadir), "-m", "immediate", "-w", "stop"],
                       capture_output=True, cwd=self.base)
        for _ in range(50):
            if not (self.datadir / "postmaster.pid").exists():
                break
            time.sleep(0.1)
        shutil.rmtree(self.base, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A started throw-away PostgreSQL 15, stopped and removed on exit."""
    pg = PostgresServer()
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()
