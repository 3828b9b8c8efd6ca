"""A tusk cluster driven by tests: start the real postmaster in its own process
group, talk to it with real clients, stop it with real signals."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil

TEST_RUN_MARK = os.environ.get("TUSK_TEST_RUN") or uuid.uuid4().hex[:12]
os.environ["TUSK_TEST_RUN"] = TEST_RUN_MARK
BIN = Path(sys.executable).parent
TUSK = str(BIN / "tusk") if (BIN / "tusk").exists() else shutil.which("tusk") or "tusk"
TUSK_CTL = str(BIN / "tusk_ctl") if (BIN / "tusk_ctl").exists() else shutil.which("tusk_ctl") \
    or "tusk_ctl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_template(datadir: Path) -> Path:
    subprocess.run([TUSK_CTL, "init", "-D", str(datadir)], check=True, capture_output=True)
    return datadir


def _conf_value(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


class Cluster:
    def __init__(self, datadir: Path, port: int, registry: Path | None = None) -> None:
        self.datadir = Path(datadir)
        self.port = port
        self.host = "127.0.0.1"
        self.socket_dir = tempfile.mkdtemp(prefix="tusk-s")
        self.proc: subprocess.Popen | None = None
        self.log_path = self.datadir / "server.log"
        self.registry = registry
        self.user = self._bootstrap_user()
        self.set_conf({"port": port, "unix_socket_directories": self.socket_dir,
                       "listen_addresses": "127.0.0.1"})

    def _bootstrap_user(self) -> str:
        from catalog.bootstrap import bootstrap_superuser

        return bootstrap_superuser(str(self.datadir))

    @property
    def dsn(self) -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname=postgres"

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    def set_conf(self, settings: dict[str, object]) -> None:
        if not settings:
            return
        with open(self.datadir / "postgresql.conf", "a") as f:
            for name, value in settings.items():
                f.write(f"{name} = {_conf_value(value)}\n")

    def _register_segment(self) -> None:
        if self.registry is None:
            return
        st = os.stat(self.datadir)
        with open(self.registry, "a") as f:
            f.write(f"/tusk.{st.st_dev:x}.{st.st_ino:x}\n")

    # -- lifecycle -----------------------------------------------------------------

    def start(self, *args: str, wait: bool = True, timeout: float = 30,
              env: dict[str, str] | None = None) -> None:
        self._register_segment()
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([TUSK, "-D", str(self.datadir), *args],
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True,
                                     env={**os.environ, **(env or {})})
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        pidfile = self.datadir / "postmaster.pid"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"tusk exited with {self.proc.returncode}:\n"
                                   + self.log_text())
            try:
                lines = pidfile.read_text().split("\n")
                if len(lines) >= 8 and lines[7].strip() == "ready" \
                        and int(lines[0]) == self.pid:
                    return
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.02)
        raise TimeoutError("server did not become ready:\n" + self.log_text())

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def stop(self, mode: str = "fast", timeout: float = 30) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT,
               "immediate": signal.SIGQUIT}[mode]
        self.signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def reload(self) -> None:
        self.signal(signal.SIGHUP)

    def teardown(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.stop("fast", timeout=20)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGQUIT)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    pass
        self.kill_leftovers()
        shutil.rmtree(self.socket_dir, ignore_errors=True)

    def kill_leftovers(self) -> None:
        """Any process still in this cluster's process group is a test failure's debris."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    # -- inspection ------------------------------------------------------------------

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, text: str, timeout: float = 15, start: int = 0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log_text()
            if text in log[start:]:
                return log
            time.sleep(0.05)
        raise TimeoutError(f"{text!r} not in log:\n{self.log_text()}")

    def children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children()
        except psutil.NoSuchProcess:
            return []

    def child_by_title(self, title: str, timeout: float = 10) -> psutil.Process:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for c in self.children():
                try:
                    if " ".join(c.cmdline()).startswith(f"tusk: {title}"):
                        return c
                except psutil.Error:
                    pass
            time.sleep(0.05)
        raise TimeoutError(f"no child titled {title!r}")

    def psql(self, sql: str, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["psql", "-X", "-h", self.host, "-p", str(self.port), "-U", self.user,
             "-d", "postgres", "-c", sql, *args],
            capture_output=True, text=True, check=check, timeout=60)

    def ctl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([TUSK_CTL, *args], capture_output=True, text=True,
                              timeout=timeout)


def find_leaks(registry: Path) -> list[str]:
    """Processes of this test run and IPC objects of clusters it used that remain."""
    leaks = []
    me = os.getpid()
    for p in psutil.process_iter():
        try:
            if p.pid != me and p.environ().get("TUSK_TEST_RUN") == TEST_RUN_MARK:
                title = " ".join(p.cmdline())
                if title.startswith("tusk") or "/tusk" in title.split(" ")[0]:
                    leaks.append(f"process {p.pid}: {title}")
        except (psutil.Error, OSError):
            pass
    try:
        names = set(registry.read_text().split())
    except FileNotFoundError:
        names = set()
    for name in names:
        if os.path.exists(f"/dev/shm/{name[1:]}"):
            leaks.append(f"shared memory segment {name}")
        for sem in Path("/dev/shm").glob(f"sem.{name[1:]}.*"):
            leaks.append(f"semaphore {sem.name}")
    return leaks
