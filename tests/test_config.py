"""Configuration files at start and on reload, with PostgreSQL's outcomes and
a file:line for every error."""

from __future__ import annotations

import subprocess
import time

import psycopg
import pytest

from tests.cluster import TUSK


def _append(cluster, text: str) -> int:
    """Append lines to postgresql.conf; returns the line number of the first one."""
    path = cluster.datadir / "postgresql.conf"
    before = path.read_text()
    path.write_text(before + text)
    return before.count("\n") + 1


def _show(cluster, name: str) -> str:
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        return conn.execute(f"SHOW {name}").fetchone()[0]


BAD_LINES = [
    ("shared_buffers = = 3\n", 'syntax error in file "{conf}" line {line}, near token "="'),
    ("no_such_parameter = 1\n",
     'unrecognized configuration parameter "no_such_parameter" in file "{conf}" line {line}'),
    ("shared_buffers = nonsense\n", 'invalid value for parameter "shared_buffers": "nonsense"'),
    ("max_connections = 0\n", 'is outside the valid range for parameter "max_connections"'),
    ("checkpoint_completion_target = 2\n",
     'is outside the valid range for parameter "checkpoint_completion_target"'),
    ("wal_sync_method = sometimes\n", 'invalid value for parameter "wal_sync_method"'),
    ("include 'nothere.conf'\n", 'could not open configuration file'),
    ("port = 'unterminated\n", 'in file "{conf}" line {line}'),
]


@pytest.mark.parametrize("text,message", BAD_LINES)
def test_bad_line_refuses_start(make_cluster, text, message):
    c = make_cluster()
    line = _append(c, text)
    out = subprocess.run([TUSK, "-D", str(c.datadir)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 1
    conf = c.datadir / "postgresql.conf"
    assert message.format(conf=conf, line=line) in out.stderr
    # every error names the file and the line
    assert f'"{conf}" line {line}' in out.stderr or f"{conf}:{line}" in out.stderr
    assert not (c.datadir / "postmaster.pid").exists()


def test_bad_line_in_included_file_names_that_file(make_cluster):
    c = make_cluster()
    (c.datadir / "extra.conf").write_text("# comment\nwork_mem = 'lots'\n")
    _append(c, "include 'extra.conf'\n")
    out = subprocess.run([TUSK, "-D", str(c.datadir)], capture_output=True, text=True)
    assert out.returncode == 1
    assert 'invalid value for parameter "work_mem": "lots"' in out.stderr
    assert f'"{c.datadir / "extra.conf"}" line 2' in out.stderr


def test_bad_command_line_option_refuses_start(make_cluster):
    c = make_cluster()
    out = subprocess.run([TUSK, "-D", str(c.datadir), "-c", "max_connections=-5"],
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert "max_connections" in out.stderr


def test_include_dir_and_auto_conf_order(make_cluster):
    c = make_cluster()
    (c.datadir / "conf.d").mkdir()
    (c.datadir / "conf.d" / "01.conf").write_text("work_mem = 8MB\n")
    (c.datadir / "conf.d" / "02.conf").write_text("work_mem = 16MB\nstatement_timeout = 5s\n")
    _append(c, "include_dir 'conf.d'\n")
    (c.datadir / "postgresql.auto.conf").write_text("statement_timeout = '7s'\n")
    c.start("-c", "application_name=fromcli")
    assert _show(c, "work_mem") == "16MB"
    assert _show(c, "statement_timeout") == "7s"


def _reload_and_wait(cluster, marker: str) -> str:
    start = len(cluster.log_text())
    cluster.reload()
    return cluster.wait_for_log(marker, start=start)[start:]


def test_reload_applies_changes(server):
    _append(server, "log_connections = on\ncheckpoint_timeout = 10min\n")
    log = _reload_and_wait(server, 'parameter "checkpoint_timeout" changed to "10min"')
    assert "received SIGHUP, reloading configuration files" in log
    assert 'parameter "log_connections" changed to "on"' in log
    time.sleep(0.2)
    assert _show(server, "checkpoint_timeout") == "10min"


def test_reload_syntax_error_applies_nothing(server):
    line = _append(server, "checkpoint_timeout = 10min\nwork_mem = = 1\n")
    conf = server.datadir / "postgresql.conf"
    log = _reload_and_wait(server, "contains errors; no changes were applied")
    assert f'syntax error in file "{conf}" line {line + 1}' in log
    assert f'configuration file "{conf}" contains errors; no changes were applied' in log
    assert _show(server, "checkpoint_timeout") == "5min"


def test_reload_unknown_parameter_applies_nothing(server):
    line = _append(server, "checkpoint_timeout = 10min\nbogus_param = 1\n")
    conf = server.datadir / "postgresql.conf"
    log = _reload_and_wait(server, "contains errors; no changes were applied")
    assert (f'unrecognized configuration parameter "bogus_param" in file "{conf}" '
            f"line {line + 1}") in log
    assert _show(server, "checkpoint_timeout") == "5min"


def test_reload_bad_value_applies_the_rest(server):
    line = _append(server, "checkpoint_timeout = 10min\nwork_mem = 'lots'\n")
    conf = server.datadir / "postgresql.conf"
    log = _reload_and_wait(server, "contains errors; unaffected changes were applied")
    assert 'invalid value for parameter "work_mem": "lots"' in log
    assert f'"{conf}" line {line + 1}' in log
    assert 'parameter "checkpoint_timeout" changed to "10min"' in log
    time.sleep(0.2)
    assert _show(server, "checkpoint_timeout") == "10min"


def test_reload_restart_only_change(server):
    line = _append(server, "shared_buffers = 64MB\ncheckpoint_timeout = 10min\n")
    conf = server.datadir / "postgresql.conf"
    log = _reload_and_wait(server, "contains errors; unaffected changes were applied")
    assert ('parameter "shared_buffers" cannot be changed without restarting the server'
            in log)
    assert f'"{conf}" line {line}' in log
    time.sleep(0.2)
    assert _show(server, "shared_buffers") == "128MB"
    assert _show(server, "checkpoint_timeout") == "10min"
    server.stop()
    server.start()
    assert _show(server, "shared_buffers") == "64MB"


def test_reload_reaches_children(server):
    """A backend sees a reloaded value (children re-read the files on SIGHUP)."""
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "0"
        _append(server, "statement_timeout = 3s\n")
        _reload_and_wait(server, 'parameter "statement_timeout" changed to "3s"')
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if conn.execute("SHOW statement_timeout").fetchone()[0] == "3s":
                break
            time.sleep(0.1)
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "3s"
