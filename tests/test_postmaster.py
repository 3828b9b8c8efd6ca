"""The postmaster's life: start, shutdown modes, crash restart, postmaster death,
stale lock files, refusals, process titles."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import psycopg
import pytest

from tests.cluster import TUSK


def _connect(cluster, **kw) -> psycopg.Connection:
    return psycopg.connect(cluster.dsn, autocommit=True, connect_timeout=10, **kw)


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = pids
    while time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p)
                 and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return []
        time.sleep(0.05)
    return alive


def _titles(cluster) -> set[str]:
    titles = set()
    for c in cluster.children():
        try:
            titles.add(c.cmdline()[0])
        except (psutil.NoSuchProcess, IndexError):
            pass
    return titles


def test_start_titles_and_pidfile(server):
    # The walwriter is forked once the startup process has finished, so it may
    # still carry the postmaster's command line for a moment after "ready".
    expected = {"tusk: checkpointer", "tusk: background writer", "tusk: walwriter"}
    deadline = time.monotonic() + 10
    while not expected <= (titles := _titles(server)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert expected <= titles
    lines = (server.datadir / "postmaster.pid").read_text().split("\n")
    assert int(lines[0]) == server.pid
    assert lines[1] == str(server.datadir)
    assert int(lines[3]) == server.port
    assert lines[4] == server.socket_dir
    assert lines[5] == "127.0.0.1"
    assert lines[6].startswith("/tusk.")
    assert lines[7].strip() == "ready"
    assert os.path.exists(f"/dev/shm/{lines[6][1:]}")
    log = server.log_text()
    assert f'listening on IPv4 address "127.0.0.1", port {server.port}' in log
    assert f'listening on Unix socket "{server.socket_dir}/.s.PGSQL.{server.port}"' in log
    assert "database system is ready to accept connections" in log


@pytest.mark.parametrize("mode", ["smart", "fast", "immediate"])
def test_shutdown_modes(server, mode):
    seg = (server.datadir / "postmaster.pid").read_text().split("\n")[6]
    children = [c.pid for c in server.children()]
    assert server.stop(mode) == 0
    log = server.log_text()
    assert f"received {mode} shutdown request" in log
    assert "database system is shut down" in log
    assert not (server.datadir / "postmaster.pid").exists()
    assert not os.path.exists(f"/dev/shm/{seg[1:]}")
    assert not os.path.exists(f"{server.socket_dir}/.s.PGSQL.{server.port}")
    assert _wait_gone(children, 2) == []
    ctl = server.ctl("controldata", "-D", str(server.datadir)).stdout
    expected = "in production" if mode == "immediate" else "shut down"
    assert f"Database cluster state:               {expected}" in ctl
    server.start()
    if mode == "immediate":
        assert "database system was interrupted; last known up at" in server.log_text()
        assert "automatic recovery in progress" in server.log_text()


def test_fast_shutdown_terminates_sessions(server):
    conn = _connect(server)
    assert server.stop("fast") == 0
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SHOW port")
    assert "shutting down" in server.log_text()


def test_smart_shutdown_waits_for_sessions(server):
    conn = _connect(server)
    server.signal(signal.SIGTERM)
    server.wait_for_log("received smart shutdown request")
    time.sleep(0.5)
    assert server.proc.poll() is None  # still waiting for our session
    assert conn.execute("SHOW port").fetchone()[0] == str(server.port)
    with pytest.raises(psycopg.OperationalError, match="shutting down"):
        _connect(server)
    conn.close()
    assert server.proc.wait(20) == 0


AUX_TITLES = ["checkpointer", "background writer", "walwriter"]


@pytest.mark.parametrize("title", [*AUX_TITLES, "backend"])
def test_kill9_child_triggers_crash_restart(server, title):
    conn = None
    if title == "backend":
        conn = _connect(server)
        victim = server.child_by_title(server.user)
    else:
        victim = server.child_by_title(title)
    others = [c.pid for c in server.children() if c.pid != victim.pid]
    victim.send_signal(signal.SIGKILL)
    names = {"checkpointer": "checkpointer process", "background writer":
             "background writer process", "walwriter": "WAL writer process",
             "backend": "server process"}
    server.wait_for_log(f"{names[title]} (PID {victim.pid}) was terminated by signal 9: Killed")
    server.wait_for_log("all server processes terminated; reinitializing")
    log = server.wait_for_log("database system is ready to accept connections",
                              start=server.log_text().index("reinitializing"))
    assert "terminating any other active server processes" in log
    assert _wait_gone(others, 5) == []
    server.wait_ready()
    with _connect(server) as c2:
        assert c2.execute("SHOW max_connections").fetchone()[0] == "100"
    if conn is not None:
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SHOW port")


def test_crash_reports_failed_query_and_kills_other_sessions(server):
    victim_conn = _connect(server)
    other = _connect(server)
    notices: list[str] = []
    other.add_notice_handler(lambda d: notices.append(f"{d.sqlstate} {d.message_primary}"))
    pid = victim_conn.info.backend_pid
    victim_conn.execute("SET application_name = 'victim'")
    with ThreadPoolExecutor(1) as pool:
        sleeping = pool.submit(other.execute, "SELECT pg_sleep(30)")
        time.sleep(0.5)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(psycopg.OperationalError):
            sleeping.result(20)
    # As PostgreSQL 15's quickdie: a WARNING with 57P02, then the connection closes.
    assert "57P02 terminating connection because of crash of another server process" in notices
    log = server.wait_for_log("all server processes terminated; reinitializing")
    assert f"server process (PID {pid}) was terminated by signal 9: Killed" in log
    assert "DETAIL:  Failed process was running: SET application_name = 'victim'" in log


def test_backend_fatal_does_not_restart(server):
    with pytest.raises(psycopg.OperationalError, match='database "nope" does not exist'):
        psycopg.connect(f"host=127.0.0.1 port={server.port} dbname=nope user={server.user}")
    conn = _connect(server)
    os.kill(conn.info.backend_pid, signal.SIGTERM)  # FATAL 57P01, exit 1
    with pytest.raises(psycopg.OperationalError, match="administrator command"):
        conn.execute("SHOW port")
    time.sleep(0.5)
    assert "terminating any other active server processes" not in server.log_text()
    assert "reinitializing" not in server.log_text()


def test_restart_after_crash_off_exits(make_server):
    server = make_server(restart_after_crash=False)
    server.child_by_title("background writer").send_signal(signal.SIGKILL)
    assert server.proc.wait(20) == 1
    assert "shutting down because restart_after_crash is off" in server.log_text()
    assert not (server.datadir / "postmaster.pid").exists()


def test_kill9_postmaster_children_exit_and_restart_cleans_up(server):
    _connect(server)
    children = [c.pid for c in server.children()]
    seg = (server.datadir / "postmaster.pid").read_text().split("\n")[6]
    server.signal(signal.SIGKILL)
    server.proc.wait(5)
    assert _wait_gone(children, 2) == []
    assert (server.datadir / "postmaster.pid").exists()  # stale, as after a real crash
    assert os.path.exists(f"/dev/shm/{seg[1:]}")
    server.start()
    assert "database system was interrupted" in server.log_text()
    # The new postmaster owns a fresh segment under the same name.
    assert (server.datadir / "postmaster.pid").read_text().split("\n")[6] == seg


def test_start_refused_while_old_children_hold_datadir(server):
    bgwriter = server.child_by_title("background writer")
    bgwriter.suspend()  # a stopped process notices nothing
    try:
        server.signal(signal.SIGKILL)
        server.proc.wait(5)
        time.sleep(1.5)  # the others have left
        out = subprocess.run([TUSK, "-D", str(server.datadir)], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 1
        assert "pre-existing shared memory block" in out.stderr
        assert "is still in use" in out.stderr
        assert "Terminate any old server processes" in out.stderr
    finally:
        bgwriter.resume()
    assert _wait_gone([bgwriter.pid], 3) == []
    server.start()


def test_second_postmaster_refused(server):
    out = subprocess.run([TUSK, "-D", str(server.datadir)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 1
    assert 'lock file "postmaster.pid" already exists' in out.stderr
    assert f"Is another postmaster (PID {server.pid}) running" in out.stderr


def test_two_clusters_side_by_side(make_server):
    a, b = make_server(), make_server()
    with _connect(a) as ca, _connect(b) as cb:
        assert ca.execute("SHOW port").fetchone()[0] == str(a.port)
        assert cb.execute("SHOW port").fetchone()[0] == str(b.port)
    seg_a = (a.datadir / "postmaster.pid").read_text().split("\n")[6]
    seg_b = (b.datadir / "postmaster.pid").read_text().split("\n")[6]
    assert seg_a != seg_b
    assert a.stop() == 0
    with _connect(b) as cb:
        assert cb.execute("SHOW port").fetchone()[0] == str(b.port)


def test_refuses_bad_permissions(make_cluster):
    c = make_cluster()
    os.chmod(c.datadir, 0o755)
    out = subprocess.run([TUSK, "-D", str(c.datadir)], capture_output=True, text=True)
    assert out.returncode == 1
    assert f'data directory "{c.datadir}" has invalid permissions' in out.stderr
    assert "Permissions should be u=rwx (0700) or u=rwx,g=rx (0750)." in out.stderr


def test_refuses_corrupt_pg_control(make_cluster):
    c = make_cluster()
    path = c.datadir / "global" / "pg_control"
    data = bytearray(path.read_bytes())
    data[20] ^= 0xFF
    path.write_bytes(bytes(data))
    out = subprocess.run([TUSK, "-D", str(c.datadir)], capture_output=True, text=True)
    assert out.returncode == 1
    assert "incorrect checksum in control file" in out.stderr


def test_refuses_missing_pg_control(make_cluster):
    c = make_cluster()
    (c.datadir / "global" / "pg_control").unlink()
    out = subprocess.run([TUSK, "-D", str(c.datadir)], capture_output=True, text=True)
    assert out.returncode == 1
    assert "pg_control" in out.stderr and "No such file or directory" in out.stderr


def test_refuses_incompatible_version(make_cluster):
    c = make_cluster()
    (c.datadir / "PG_VERSION").write_text("14\n")
    out = subprocess.run([TUSK, "-D", str(c.datadir)], capture_output=True, text=True)
    assert out.returncode == 1
    assert "database files are incompatible with server" in out.stderr


def test_root_warning(server):
    if os.geteuid() != 0:
        pytest.skip("only as root")
    assert '"root" execution of the PostgreSQL server is not permitted' in server.log_text()


def test_port_in_use_is_reported(make_server, make_cluster):
    a = make_server()
    b = make_cluster()
    b.set_conf({"port": a.port, "unix_socket_directories": ""})
    out = subprocess.run([TUSK, "-D", str(b.datadir)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 1
    assert 'could not bind IPv4 address "127.0.0.1": Address already in use' in out.stderr
    assert f"Is another postmaster already running on port {a.port}?" in out.stderr
    assert "could not create any TCP/IP sockets" in out.stderr


def test_immediate_shutdown_sigkills_stuck_children(server):
    """A child that ignores SIGQUIT (here: stopped) is SIGKILLed 5 s later."""
    bgwriter = server.child_by_title("background writer")
    bgwriter.suspend()
    start = time.monotonic()
    assert server.stop("immediate", timeout=30) == 0
    elapsed = time.monotonic() - start
    assert 4.0 <= elapsed < 20, elapsed
    assert _wait_gone([bgwriter.pid], 2) == []
