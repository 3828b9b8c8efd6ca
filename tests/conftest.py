"""Fixtures that run the real daemon: a cluster initialised once per worker and
copied per test, a free port, a short Unix socket directory, real signals.

The session ends with the leak check: no process started by this run, no
shared memory segment and no semaphore of any cluster it used may remain.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.cluster import TEST_RUN_MARK, Cluster, find_leaks, free_port, init_template

_leak_registry = Path(tempfile.gettempdir()) / f"tusk-test-segments-{TEST_RUN_MARK}"


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("TUSK_TEST_RUN", TEST_RUN_MARK)


@pytest.fixture(scope="session")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_template(tmp_path_factory.mktemp("template") / "data")


@pytest.fixture
def make_cluster(template_dir: Path, tmp_path: Path) -> Iterator:
    """Factory: a stopped cluster copied from the template, with extra settings."""
    made: list[Cluster] = []

    def make(start: bool = False, **settings: object) -> Cluster:
        datadir = tmp_path / f"data{len(made)}"
        shutil.copytree(template_dir, datadir, symlinks=True)
        os.chmod(datadir, 0o700)
        cluster = Cluster(datadir, port=free_port(), registry=_leak_registry)
        cluster.set_conf(settings)
        made.append(cluster)
        if start:
            cluster.start()
        return cluster

    yield make
    for c in made:
        c.teardown()


@pytest.fixture
def make_server(make_cluster) -> Iterator:
    def make(**settings: object) -> Cluster:
        return make_cluster(start=True, **settings)

    yield make


@pytest.fixture
def server(make_server) -> Cluster:
    return make_server()


@pytest.fixture(scope="session")
def pg15(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A real PostgreSQL 15 to compare against (started as user postgres when root)."""
    bindir = Path("/usr/lib/postgresql/15/bin")
    if not (bindir / "postgres").exists():
        pytest.skip("PostgreSQL 15 is not installed")
    base = Path(tempfile.mkdtemp(prefix="pg15-"))
    os.chmod(base, 0o755)
    if os.geteuid() == 0:
        import pwd

        pw = pwd.getpwnam("postgres")
        os.chown(base, pw.pw_uid, pw.pw_gid)
    datadir, port = base / "data", free_port()
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    try:
        subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres",
                        "--no-sync"], check=True, capture_output=True)
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(datadir), "-w", "-l",
                        str(base / "log"), "-o", f"-p {port} -k {base} -c listen_addresses=''",
                        "start"], check=True, capture_output=True)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"could not start PostgreSQL 15: {exc}")

    class PG:
        host = str(base)
        dsn = f"host={base} port={port} user=postgres dbname=postgres"

    PG.port = port
    yield PG
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate",
                    "stop"], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The leak check, run once in the controlling process after all workers."""
    if hasattr(session.config, "workerinput"):
        return
    leaks = find_leaks(_leak_registry)
    try:
        _leak_registry.unlink()
    except FileNotFoundError:
        pass
    if leaks:
        for line in leaks:
            sys.stderr.write(f"LEAK: {line}\n")
        # Clean up so the machine stays usable, but fail the run.
        for p in psutil.process_iter():
            try:
                if p.environ().get("TUSK_TEST_RUN") == TEST_RUN_MARK and p.pid != os.getpid():
                    p.send_signal(signal.SIGKILL)
            except (psutil.Error, OSError):
                pass
        session.exitstatus = 1

