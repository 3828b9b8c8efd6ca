"""The logging collector and ``tusk_ctl logs``, end to end: log files under
DATADIR/log, current_logfiles, jsonlog, rotation (on request, by size, same
name appends), raw output of a crashing child, records of many processes that
never interleave, log_min_messages, the logs verb's filters and --follow, and
pgBadger reading a tusk jsonlog file."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import stat
import subprocess
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from procs import syslogger
from procs.child import ChildEnv
from tests.cluster import TUSK_CTL
from utils import elog

READY = "database system is ready to accept connections"
DEFAULT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \S+ \[\d+\] "
    r"(DEBUG[1-5]|INFO|NOTICE|WARNING|ERROR|LOG|FATAL|PANIC|DETAIL|HINT|CONTEXT|STATEMENT):  ")


# -- helpers --------------------------------------------------------------------------------

def current_logfiles(cluster) -> dict[str, Path]:
    try:
        text = (cluster.datadir / "current_logfiles").read_text()
    except FileNotFoundError:
        return {}
    out = {}
    for line in text.splitlines():
        label, _, name = line.partition(" ")
        out[label] = cluster.datadir / name
    return out


def wait_current_logfiles(cluster, changed_from: dict[str, Path] | None = None,
                          timeout: float = 15) -> dict[str, Path]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = current_logfiles(cluster)
        if files and files != changed_from and all(p.exists() for p in files.values()):
            return files
        time.sleep(0.05)
    raise TimeoutError(f"current_logfiles did not appear/change: {current_logfiles(cluster)}")


def wait_for_file(path: Path, text: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    content = ""
    while time.monotonic() < deadline:
        try:
            content = path.read_text(errors="replace")
        except FileNotFoundError:
            content = ""
        if text in content:
            return content
        time.sleep(0.05)
    raise TimeoutError(f"{text!r} not in {path}:\n{content}")


def json_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def logs(cluster, *args: str) -> subprocess.CompletedProcess:
    return cluster.ctl("logs", "-D", str(cluster.datadir), *args)


def connect(cluster, **kw: Any) -> psycopg.Connection:
    return psycopg.connect(cluster.dsn, autocommit=True, connect_timeout=10, **kw)


def wait_gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


# -- the files ------------------------------------------------------------------------------

def test_stderr_log_file_and_current_logfiles(make_server):
    c = make_server(logging_collector=True)
    files = wait_current_logfiles(c)
    assert list(files) == ["stderr"]
    raw = (c.datadir / "current_logfiles").read_text()
    assert re.fullmatch(r"stderr log/postgresql-\d{4}-\d\d-\d\d_\d{6}\.log\n", raw), raw
    text = wait_for_file(files["stderr"], READY)
    assert f'listening on IPv4 address "127.0.0.1", port {c.port}' in text
    assert all(DEFAULT_LINE.match(line) for line in text.splitlines()), text
    assert stat.S_IMODE(os.stat(c.datadir / "log").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(files["stderr"]).st_mode) == 0o600
    # Output went to the collector, not to the postmaster's original stderr.
    assert READY not in c.log_text()
    logger = c.child_by_title("logger")
    assert c.stop() == 0
    assert wait_gone(logger.pid)
    assert "database system is shut down" in files["stderr"].read_text()


def test_jsonlog_file_has_postgresql_fields(make_server):
    c = make_server(logging_collector=True, log_destination="jsonlog", log_file_mode=0o640)
    files = wait_current_logfiles(c)
    assert list(files) == ["jsonlog"]
    assert re.fullmatch(r"postgresql-\d{4}-\d\d-\d\d_\d{6}\.json", files["jsonlog"].name)
    wait_for_file(files["jsonlog"], READY)
    assert stat.S_IMODE(os.stat(files["jsonlog"]).st_mode) == 0o640
    lines = files["jsonlog"].read_text().splitlines()
    records = [json.loads(line) for line in lines]
    for rec in records:
        assert {"timestamp", "pid", "session_id", "line_num", "session_start",
                "error_severity", "message", "backend_type"} <= rec.keys(), rec
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \S+", rec["timestamp"])
        assert re.fullmatch(r"[0-9a-f]+\.[0-9a-f]+", rec["session_id"])
    ready = next(r for r in records if r["message"] == READY)
    assert ready["backend_type"] == "postmaster" and ready["pid"] == c.pid
    assert ready["error_severity"] == "LOG"
    assert any(r["backend_type"] == "startup" for r in records)
    # PostgreSQL writes jsonlog without blanks between fields; pgBadger's jsonlog parser
    # matches '"key":"value","' and finds nothing in '"key": "value", "'.
    assert all(", \"" not in line.split('"message"')[0] for line in lines), lines[0]
    # The stderr file is always open, as in PostgreSQL, though current_logfiles omits it.
    assert files["jsonlog"].with_suffix(".log").exists()


def test_stderr_and_jsonlog_together(make_server):
    c = make_server(logging_collector=True, log_destination="stderr,jsonlog")
    files = wait_current_logfiles(c)
    assert set(files) == {"stderr", "jsonlog"}
    assert files["jsonlog"] == files["stderr"].with_suffix(".json")
    wait_for_file(files["stderr"], READY)
    wait_for_file(files["jsonlog"], READY)
    messages = [r["message"] for r in json_records(files["jsonlog"])]
    stderr_lines = files["stderr"].read_text().splitlines()
    assert [line.split(":  ", 1)[1] for line in stderr_lines] == messages


# -- rotation -------------------------------------------------------------------------------

def test_logrotate_starts_a_new_file(make_server):
    c = make_server(logging_collector=True, log_destination="stderr,jsonlog")
    old = wait_current_logfiles(c)
    wait_for_file(old["stderr"], READY)
    time.sleep(1.1)  # log_filename has %S: the next name differs
    r = c.ctl("logrotate", "-D", str(c.datadir))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "server signaled to rotate log file"
    new = wait_current_logfiles(c, changed_from=old)
    assert new["stderr"] != old["stderr"] and new["jsonlog"] != old["jsonlog"]
    assert not (c.datadir / "logrotate").exists()
    c.reload()
    wait_for_file(new["stderr"], "received SIGHUP, reloading configuration files")
    wait_for_file(new["jsonlog"], "received SIGHUP, reloading configuration files")
    assert "received SIGHUP" not in old["stderr"].read_text()
    assert READY in old["stderr"].read_text()


def test_rotation_to_the_same_name_appends(make_server):
    c = make_server(logging_collector=True, log_filename="server.log",
                    log_truncate_on_rotation=True)
    files = wait_current_logfiles(c)
    assert files["stderr"] == c.datadir / "log" / "server.log"
    wait_for_file(files["stderr"], READY)
    for _ in range(2):
        assert c.ctl("logrotate", "-D", str(c.datadir)).returncode == 0
        time.sleep(0.2)
    c.reload()
    text = wait_for_file(files["stderr"], "received SIGHUP")
    # Truncation applies to time-based rotation only: the earlier lines are still there.
    assert READY in text
    assert os.listdir(c.datadir / "log") == ["server.log"]


def test_size_based_rotation(make_server):
    c = make_server(logging_collector=True, log_rotation_size=1,
                    log_filename="postgresql-%H%M%S.log")
    first = wait_current_logfiles(c)
    wait_for_file(first["stderr"], READY)
    time.sleep(1.1)
    deadline = time.monotonic() + 30
    while current_logfiles(c) == first and time.monotonic() < deadline:
        c.reload()  # about 100 bytes of log each
        time.sleep(0.05)
    second = wait_current_logfiles(c, changed_from=first)
    assert first["stderr"].stat().st_size >= 1024
    assert second["stderr"].exists()


def test_hup_with_new_log_filename_switches_file(make_server):
    c = make_server(logging_collector=True)
    old = wait_current_logfiles(c)
    c.set_conf({"log_filename": "renamed-%Y.log"})
    c.reload()
    new = wait_current_logfiles(c, changed_from=old)
    assert new["stderr"].name == time.strftime("renamed-%Y.log", time.gmtime())
    c.reload()
    wait_for_file(new["stderr"], "received SIGHUP")


# -- what reaches the files -----------------------------------------------------------------

def test_crashing_child_raw_stderr_reaches_the_file(make_server, monkeypatch):
    # faulthandler prints a crashing process's Python stack straight to fd 2: raw bytes
    # in the collector pipe, not protocol chunks.
    monkeypatch.setenv("PYTHONFAULTHANDLER", "1")
    c = make_server(logging_collector=True)
    files = wait_current_logfiles(c)
    wait_for_file(files["stderr"], READY)
    logger = c.child_by_title("logger")
    victim = c.child_by_title("background writer")
    os.kill(victim.pid, signal.SIGSEGV)
    wait_for_file(files["stderr"], "Fatal Python error: Segmentation fault")
    wait_for_file(files["stderr"], "most recent call first")
    wait_for_file(files["stderr"], f"(PID {victim.pid}) was terminated by signal 11")
    # The logger is never part of a crash restart.
    assert c.child_by_title("logger").pid == logger.pid


def test_records_of_many_backends_never_interleave(make_server):
    c = make_server(logging_collector=True, log_destination="stderr,jsonlog",
                    log_connections=True, log_disconnections=True, log_statement="all",
                    max_connections=40)
    files = wait_current_logfiles(c)
    wait_for_file(files["stderr"], READY)
    queries = [f"SELECT {i} AS n /* {'x' * (600 + 97 * i)} */" for i in range(24)]
    errors: list[str] = []

    def session(q: str) -> None:
        try:
            with connect(c) as conn:
                for _ in range(3):
                    conn.execute(q)
        except Exception:
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=session, args=(q,)) for q in queries]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[0]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if files["jsonlog"].read_text().count("disconnection: session time") >= len(queries):
            break
        time.sleep(0.1)
    lines = files["stderr"].read_text().splitlines()
    assert all(DEFAULT_LINE.match(line) for line in lines), \
        next(line for line in lines if not DEFAULT_LINE.match(line))
    logged = [line.split("LOG:  statement: ", 1)[1] for line in lines
              if "LOG:  statement: " in line]
    assert sorted(logged) == sorted(queries * 3)
    records = json_records(files["jsonlog"])
    assert sorted(r["message"].removeprefix("statement: ") for r in records
                  if r["message"].startswith("statement: ")) == sorted(queries * 3)
    assert sum(r["message"].startswith("connection authorized") for r in records) == \
        len(queries)


def test_killed_logger_is_restarted_and_still_sees_eof(make_server):
    c = make_server(logging_collector=True)
    files = wait_current_logfiles(c)
    wait_for_file(files["stderr"], READY)
    old = c.child_by_title("logger")
    time.sleep(1.1)
    os.kill(old.pid, signal.SIGKILL)
    assert wait_gone(old.pid)
    deadline = time.monotonic() + 15
    new = None
    while time.monotonic() < deadline and new is None:
        try:
            found = c.child_by_title("logger", timeout=0.5)
            new = found if found.pid != old.pid else None
        except TimeoutError:
            pass
    assert new is not None, "the postmaster did not restart the logger"
    restarted = wait_current_logfiles(c, changed_from=files)
    wait_for_file(restarted["stderr"], f"system logger process (PID {old.pid}) was "
                  "terminated by signal 9")
    c.reload()
    wait_for_file(restarted["stderr"], "received SIGHUP")
    # The new logger inherited the pipe on fds 1 and 2; it must not keep itself alive.
    assert c.stop() == 0
    assert wait_gone(new.pid), "the restarted logger did not see EOF"
    assert "database system is shut down" in restarted["stderr"].read_text()


class _Settings:
    """Just what the logger process reads."""

    values = {"log_directory": "log", "log_filename": "collector.log",
              "log_destination": "stderr,jsonlog", "log_rotation_age": 0,
              "log_rotation_size": 0, "log_truncate_on_rotation": False,
              "log_file_mode": 0o600, "log_timezone": "UTC", "log_min_messages": "warning",
              "log_line_prefix": "%m [%p] "}

    def get(self, name: str) -> Any:
        return self.values[name]

    def reload(self, datadir: str, *, is_postmaster: bool) -> list:
        return []


def test_logger_process_reassembles_concurrent_writers(tmp_path):
    """The logger process alone, fed by 12 processes writing multi-chunk records."""
    pipe_r, pipe_w = syslogger.open_pipe()
    death_r, death_w = os.pipe()
    me = os.getpid()
    logger = os.fork()
    if logger == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            os.close(pipe_w)
            os.close(death_w)
            syslogger.syslogger_main(ChildEnv(str(tmp_path), me, death_r, []), _Settings(),
                                     pipe_r)
            code = 0
        except BaseException:
            traceback.print_exc()
        os._exit(code)
    os.close(pipe_r)
    os.close(death_r)
    expected: list[bytes] = []
    writers = []
    for w in range(12):
        records = [f"writer {w} record {i} ".encode() + b"x" * ((w * 131 + i * 977) % 3000)
                   + b"\n" for i in range(40)]
        expected += records
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            for i, rec in enumerate(records):
                dest = elog.PIPE_PROTO_DEST_JSONLOG if i % 2 else elog.PIPE_PROTO_DEST_STDERR
                elog.write_pipe_chunks(pipe_w, rec, dest)
            os._exit(0)
        writers.append(pid)
    try:
        for pid in writers:
            assert os.waitpid(pid, 0)[1] == 0
        # SIGTERM, SIGINT and SIGQUIT do not stop the logger: only EOF on the pipe does.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            os.kill(logger, sig)
        time.sleep(0.3)
        assert os.waitpid(logger, os.WNOHANG) == (0, 0)
        os.write(pipe_w, b"raw bytes, no header\n")
    finally:
        os.close(pipe_w)
    deadline = time.monotonic() + 20
    status = None
    while time.monotonic() < deadline:
        pid, st = os.waitpid(logger, os.WNOHANG)
        if pid:
            status = st
            break
        time.sleep(0.05)
    os.close(death_w)
    if status is None:
        os.kill(logger, signal.SIGKILL)
        os.waitpid(logger, 0)
        pytest.fail("the logger did not exit at EOF")
    assert os.waitstatus_to_exitcode(status) == 0
    stderr_lines = (tmp_path / "log/collector.log").read_bytes().splitlines(keepends=True)
    json_lines = (tmp_path / "log/collector.json").read_bytes().splitlines(keepends=True)
    assert stderr_lines[-1] == b"raw bytes, no header\n"
    assert sorted(stderr_lines[:-1] + json_lines) == sorted(expected)
    assert all(b" record " in line and int(line.split()[3]) % 2 == 1 for line in json_lines)
    assert (tmp_path / "current_logfiles").read_text() == \
        "stderr log/collector.log\njsonlog log/collector.json\n"


def test_log_min_messages_debug1(make_server):
    found = {}
    for level in ("warning", "debug1"):
        c = make_server(logging_collector=True, log_min_messages=level)
        files = wait_current_logfiles(c)
        wait_for_file(files["stderr"], READY)
        logger = c.child_by_title("logger")
        assert c.stop() == 0
        assert wait_gone(logger.pid)
        found[level] = files["stderr"].read_text()
    # The logger's own farewell is DEBUG1, as in PostgreSQL (which labels it "DEBUG").
    assert re.search(r"\] DEBUG1?:  logger shutting down$", found["debug1"], re.M)
    assert not re.search(r"\] DEBUG1?:  ", found["warning"])
    assert "logger shutting down" not in found["warning"]


# -- tusk_ctl logs ----------------------------------------------------------------------------

def test_logs_verb_filters_live_server(make_server):
    c = make_server(logging_collector=True, log_destination="stderr,jsonlog")
    files = wait_current_logfiles(c)
    wait_for_file(files["jsonlog"], READY)
    records = json_records(files["jsonlog"])

    r = logs(c)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert any(line.endswith(f"LOG:  {READY}") for line in out)
    assert all(DEFAULT_LINE.match(line) for line in out), out

    r = logs(c, "--json")
    got = [json.loads(line) for line in r.stdout.splitlines()]
    assert [g["message"] for g in got[:len(records)]] == [rec["message"] for rec in records]

    got = [json.loads(line) for line in logs(c, "--json", "--backend-type", "startup")
           .stdout.splitlines()]
    assert got and all(g["backend_type"] == "startup" for g in got)

    got = [json.loads(line) for line in logs(c, "--json", "--pid", str(c.pid)).stdout
           .splitlines()]
    assert got and all(g["pid"] == c.pid for g in got)
    assert READY in [g["message"] for g in got]

    out = logs(c, "--grep", "ready to accept").stdout.splitlines()
    assert len(out) == 1 and out[0].endswith(READY)
    out = logs(c, "--grep", r"^listening on (IPv4|Unix)").stdout.splitlines()
    assert len(out) == 2

    ready = next(rec for rec in records if rec["message"] == READY)
    got = [json.loads(line) for line in logs(c, "--json", "--since", ready["timestamp"])
           .stdout.splitlines()]
    assert got[0]["message"] == READY
    assert logs(c, "--until", "2000-01-01").stdout == ""
    assert len(logs(c, "--since", "10min").stdout.splitlines()) >= len(records)
    assert logs(c, "--severity", "fatal").stdout == ""
    assert len(logs(c, "--severity", "error").stdout.splitlines()) >= len(records)  # LOG > ERROR

    r = logs(c, "--severity", "loud")
    assert r.returncode == 1 and "invalid severity" in r.stderr


def test_logs_verb_follow_across_rotation(make_server):
    c = make_server(logging_collector=True, log_destination="stderr,jsonlog")
    files = wait_current_logfiles(c)
    wait_for_file(files["jsonlog"], READY)
    proc = subprocess.Popen([TUSK_CTL, "logs", "-D", str(c.datadir), "--follow", "-n", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()

    def expect(text: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if text in line:
                return line
        raise TimeoutError(f"{text!r} never printed by --follow")

    try:
        expect(READY)  # -n 1: the last record so far
        c.reload()
        expect("received SIGHUP, reloading configuration files")
        time.sleep(1.1)
        assert c.ctl("logrotate", "-D", str(c.datadir)).returncode == 0
        wait_current_logfiles(c, changed_from=files)
        c.set_conf({"log_min_messages": "warning"})
        c.reload()
        line = expect("received SIGHUP, reloading configuration files")
        assert DEFAULT_LINE.match(line)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_logs_verb_reads_a_stderr_file_with_the_clusters_prefix(make_cluster, tmp_path):
    c = make_cluster(log_line_prefix="%m [%p] %b %q%u@%d ")
    log = tmp_path / "logfile"
    log.write_text(
        "2024-05-01 10:00:00.000 UTC [10] postmaster LOG:  starting PostgreSQL 15\n"
        "2024-05-01 10:00:01.000 UTC [11] client backend alice@shop NOTICE:  a notice\n"
        "2024-05-01 10:00:02.000 UTC [11] client backend alice@shop WARNING:  a warning\n"
        "2024-05-01 10:00:03.000 UTC [11] client backend alice@shop ERROR:  division by zero\n"
        "2024-05-01 10:00:03.000 UTC [11] client backend alice@shop STATEMENT:  select 1/0\n"
        "\tfrom nowhere\n"
        "2024-05-01 10:00:04.000 UTC [12] checkpointer LOG:  checkpoint starting: time\n"
        "2024-05-01 10:00:05.000 UTC [11] client backend alice@shop FATAL:  terminating\n"
        "2024-05-01 10:00:05.000 UTC [11] client backend alice@shop HINT:  Reconnect.\n"
    )

    def run(*args: str) -> list[dict[str, Any]]:
        r = logs(c, "--file", str(log), "--json", *args)
        assert r.returncode == 0, r.stderr
        return [json.loads(line) for line in r.stdout.splitlines()]

    assert len(run()) == 6
    # The server log's ranking: LOG sits between ERROR and FATAL.
    assert [r["error_severity"] for r in run("--severity", "error")] == \
        ["LOG", "ERROR", "LOG", "FATAL"]
    assert [r["error_severity"] for r in run("--severity", "warning")] == \
        ["LOG", "WARNING", "ERROR", "LOG", "FATAL"]
    assert [r["message"] for r in run("--backend-type", "checkpointer")] == \
        ["checkpoint starting: time"]
    err = run("--grep", "division")[0]
    assert err["user"] == "alice" and err["dbname"] == "shop" and err["pid"] == 11
    assert err["statement"] == "select 1/0\n\tfrom nowhere"
    assert run("--pid", "11", "--severity", "fatal")[0]["hint"] == "Reconnect."
    assert [r["pid"] for r in run("--since", "2024-05-01 10:00:02",
                                  "--until", "2024-05-01T10:00:04Z")] == [11, 11, 12]
    r = logs(c, "--file", str(log), "--grep", "division")
    assert r.stdout.splitlines() == log.read_text().splitlines()[3:6]


def test_logs_verb_all_files_and_missing_log(make_server, make_cluster):
    stopped = make_cluster()
    r = logs(stopped)
    assert r.returncode == 1
    assert "current_logfiles" in r.stderr and "logging_collector" in r.stderr
    r = logs(stopped, "--file", str(stopped.datadir / "nope.log"))
    assert r.returncode == 1 and "nope.log" in r.stderr
    r = logs(stopped, "--all")
    assert r.returncode == 1 and "no log files" in r.stderr

    c = make_server(logging_collector=True, log_destination="stderr,jsonlog")
    first = wait_current_logfiles(c)
    wait_for_file(first["jsonlog"], READY)
    time.sleep(1.1)
    assert c.ctl("logrotate", "-D", str(c.datadir)).returncode == 0
    second = wait_current_logfiles(c, changed_from=first)
    c.reload()
    wait_for_file(second["jsonlog"], "received SIGHUP")
    messages = [json.loads(line)["message"] for line in logs(c, "--all", "--json").stdout
                .splitlines()]
    # Both periods, oldest first, each record once (the .log twins are skipped).
    assert messages.count(READY) == 1
    assert messages.index(READY) < messages.index("received SIGHUP, reloading configuration "
                                                  "files")
    current_only = logs(c, "--json").stdout
    assert READY not in current_only and "received SIGHUP" in current_only


# -- pgBadger ------------------------------------------------------------------------------------

def _pgbadger() -> str:
    found = shutil.which("pgbadger")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        r = subprocess.run(["apt-get", "install", "-y", "pgbadger"], capture_output=True,
                           env=env, timeout=600)
        if r.returncode != 0:
            subprocess.run(["apt-get", "update"], capture_output=True, env=env, timeout=600)
            subprocess.run(["apt-get", "install", "-y", "pgbadger"], capture_output=True,
                           env=env, timeout=600)
    found = shutil.which("pgbadger")
    if not found:
        pytest.skip("pgbadger is not installed and could not be installed with apt-get")
    return found


def test_pgbadger_reads_tusk_jsonlog(make_server, tmp_path):
    pgbadger = _pgbadger()
    c = make_server(logging_collector=True, log_destination="jsonlog", log_connections=True,
                    log_disconnections=True)
    files = wait_current_logfiles(c)
    wait_for_file(files["jsonlog"], READY)
    for _ in range(3):
        with connect(c, application_name="badger") as conn:
            conn.execute("SELECT 1")
    assert c.stop() == 0
    wait_for_file(files["jsonlog"], "database system is shut down")
    assert files["jsonlog"].read_text().count("disconnection: session time") == 3
    report = tmp_path / "report.txt"
    r = subprocess.run([pgbadger, "-q", "-f", "jsonlog", "-x", "text", "-o", str(report),
                        str(files["jsonlog"])], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    text = report.read_text()
    assert re.search(r"Total number of sessions: 3\b", text), text
    assert re.search(r"Total number of connections: 3\b", text), text
