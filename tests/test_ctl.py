"""tusk_ctl: init, start/stop/restart/reload/status with pg_ctl's exit codes,
controldata, kill."""

from __future__ import annotations

import os
import stat
import subprocess
import time

import pytest

from postmaster.datadir import pid_alive
from tests.cluster import TUSK_CTL, Cluster, free_port


def ctl(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([TUSK_CTL, *args], capture_output=True, text=True, timeout=timeout)


def test_init_creates_cluster(tmp_path):
    d = tmp_path / "c"
    out = ctl("init", "-D", str(d), "-U", "alice")
    assert out.returncode == 0, out.stderr
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    for name in ("PG_VERSION", "global/pg_control", "postgresql.conf", "postgresql.auto.conf",
                 "pg_wal", "base", "pg_xact"):
        assert (d / name).exists(), name
    assert (d / "PG_VERSION").read_text() == "15\n"
    assert os.path.getsize(d / "global/pg_control") == 8192
    conf = (d / "postgresql.conf").read_text()
    assert "#shared_buffers = 128MB" in conf
    assert "#port = 5433" in conf
    assert "#checkpoint_timeout = 5min" in conf
    assert not [ln for ln in conf.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    cd = ctl("controldata", "-D", str(d)).stdout
    assert "Database cluster state:               shut down" in cd
    assert "WAL block size:                       8192" in cd
    assert "Bytes per WAL segment:                16777216" in cd
    assert "Data page checksum version:           0" in cd
    assert "pg_control version number:            1300" in cd


def test_init_options_and_refusals(tmp_path):
    d = tmp_path / "g"
    out = ctl("init", "-D", str(d), "--wal-block-size", "16", "--wal-segsize", "64", "-k",
              "--allow-group-access")
    assert out.returncode == 0, out.stderr
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o750
    cd = ctl("controldata", "-D", str(d)).stdout
    assert "WAL block size:                       16384" in cd
    assert "Bytes per WAL segment:                67108864" in cd
    assert "Data page checksum version:           1" in cd
    again = ctl("init", "-D", str(d))
    assert again.returncode == 1
    assert "exists but is not empty" in again.stderr
    bad = ctl("init", "-D", str(tmp_path / "b"), "--wal-block-size", "3")
    assert bad.returncode == 1
    assert "must be one of 1, 2, 4, 8, 16, 32, 64" in bad.stderr
    bad = ctl("init", "-D", str(tmp_path / "b"), "--wal-segsize", "3")
    assert bad.returncode == 1
    assert "power of two between 1 and 1024" in bad.stderr
    assert not (tmp_path / "b").exists()


def test_wal_block_size_unit(make_cluster, tmp_path):
    """wal_buffers is in WAL blocks: its unit follows the block size chosen at init."""
    d = tmp_path / "w"
    assert ctl("init", "-D", str(d), "--wal-block-size", "16").returncode == 0
    c = Cluster(d, free_port())
    c.set_conf({"wal_buffers": 64})
    try:
        c.start()
        out = c.psql("SHOW wal_buffers")
        assert out.stdout.split("\n")[2].strip() == "1MB"
        assert c.psql("SHOW wal_block_size").stdout.split("\n")[2].strip() == "16384"
    finally:
        c.teardown()


def test_status_exit_codes(make_cluster, tmp_path):
    assert ctl("status", "-D", str(tmp_path / "missing")).returncode == 4
    (tmp_path / "empty").mkdir()
    assert ctl("status", "-D", str(tmp_path / "empty")).returncode == 4
    c = make_cluster()
    out = ctl("status", "-D", str(c.datadir))
    assert out.returncode == 3
    assert "no server running" in out.stdout
    c.start()
    out = ctl("status", "-D", str(c.datadir))
    assert out.returncode == 0
    assert f"server is running (PID: {c.pid})" in out.stdout
    assert "tusk: checkpointer" in out.stdout
    assert "tusk: background writer" in out.stdout
    assert "PRIVATE" in out.stdout and "SHARED" in out.stdout
    assert "shared memory segment /tusk." in out.stdout
    assert "Proc Array" in out.stdout


def test_start_stop_restart_reload(make_cluster):
    c = make_cluster()
    log = c.datadir / "ctl.log"
    c._register_segment()
    out = ctl("start", "-D", str(c.datadir), "-l", str(log), "-o", "-c log_connections=on")
    assert out.returncode == 0, out.stdout + out.stderr + log.read_text()
    assert "server started" in out.stdout
    pid = int((c.datadir / "postmaster.pid").read_text().split("\n")[0])
    try:
        assert c.psql("SHOW log_connections").stdout.split("\n")[2].strip() == "on"
        out = ctl("reload", "-D", str(c.datadir))
        assert out.returncode == 0 and "server signaled" in out.stdout
        out = ctl("restart", "-D", str(c.datadir), "-l", str(log))
        assert out.returncode == 0, out.stdout + out.stderr
        pid2 = int((c.datadir / "postmaster.pid").read_text().split("\n")[0])
        assert pid2 != pid and not pid_alive(pid)
        # restart keeps the previous command-line options (postmaster.opts)
        assert c.psql("SHOW log_connections").stdout.split("\n")[2].strip() == "on"
        out = ctl("stop", "-D", str(c.datadir), "-m", "smart")
        assert out.returncode == 0 and "server stopped" in out.stdout
        assert not pid_alive(pid2)
    finally:
        ctl("stop", "-D", str(c.datadir), "-m", "immediate")
    out = ctl("stop", "-D", str(c.datadir))
    assert out.returncode == 1
    assert "does not exist" in out.stderr and "Is server running?" in out.stderr
    text = log.read_text()
    assert "received fast shutdown request" in text
    assert "received smart shutdown request" in text


def test_start_failure_reported(make_cluster):
    c = make_cluster()
    c.set_conf({"shared_buffers": "nonsense"})
    out = ctl("start", "-D", str(c.datadir), "-l", str(c.datadir / "x.log"), "-t", "20")
    assert out.returncode == 1
    assert "could not start server" in out.stderr


def test_kill_verb(server):
    victim = server.child_by_title("background writer")
    out = ctl("kill", "KILL", str(victim.pid))
    assert out.returncode == 0
    server.wait_for_log("all server processes terminated; reinitializing")
    assert ctl("kill", "BOGUS", "1").returncode == 1


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_ctl_stop_modes_wait(server, mode):
    out = ctl("stop", "-D", str(server.datadir), "-m", mode)
    assert out.returncode == 0, out.stderr
    assert server.proc.wait(5) == 0
    time.sleep(0.1)
    assert not (server.datadir / "postmaster.pid").exists()
