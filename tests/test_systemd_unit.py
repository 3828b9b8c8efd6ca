"""Tests of postmaster/sdnotify.py and postmaster/systemd_unit.py (systemd integration)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from postmaster import sdnotify
from postmaster.systemd_unit import TEMPLATE_PATH, default_account, find_tusk, render_unit
from tests.notify_listener import NotifyListener

SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"


def _stub_executable(directory: Path) -> Path:
    """An executable standing in for the tusk console script."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "tusk"
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _directives(unit: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


# ---------------------------------------------------------------- render_unit


def test_render_unit_fills_in_absolute_paths(tmp_path: Path) -> None:
    tusk = _stub_executable(tmp_path / "bin")
    datadir = tmp_path / "data"
    datadir.mkdir()
    unit = render_unit(os.path.relpath(datadir), user="alice", tusk=str(tusk))
    d = _directives(unit)
    assert d["ExecStart"] == [f"{tusk} -D {datadir}"]
    assert os.path.isabs(d["ExecStart"][0].split()[0])
    assert d["User"] == ["alice"]
    assert d["Group"] == ["alice"]  # no such account here: a group named like the user
    assert d["Type"] == ["notify"]
    assert d["KillMode"] == ["mixed"]
    assert d["KillSignal"] == ["SIGINT"]
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert d["TimeoutStartSec"] == ["300"] and d["TimeoutStopSec"] == ["300"]
    assert d["WantedBy"] == ["multi-user.target"]
    assert "TimeoutSec" not in d and "Restart" not in d
    assert not re.search(r"@[A-Z_]+@", unit)


def test_template_is_the_single_source() -> None:
    assert TEMPLATE_PATH.is_file()
    assert TEMPLATE_PATH == Path(__file__).resolve().parents[1] / "systemd" / "tusk.service.in"
    placeholders = set(re.findall(r"@[A-Z_]+@", TEMPLATE_PATH.read_text()))
    assert placeholders == {"@TUSK@", "@DATADIR@", "@USER@", "@GROUP@"}


def test_render_unit_default_tusk_is_the_installed_script(tmp_path: Path) -> None:
    try:
        unit = render_unit(str(tmp_path), user="alice")
    except FileNotFoundError:
        pytest.skip("the tusk console script is not installed (pip install -e .)")
    exe = _directives(unit)["ExecStart"][0].split()[0]
    assert os.path.isabs(exe) and os.access(exe, os.X_OK)


def test_find_tusk_prefers_the_script_beside_python_then_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    beside = _stub_executable(tmp_path / "venv" / "bin")
    on_path = _stub_executable(tmp_path / "elsewhere")
    monkeypatch.setenv("PATH", str(on_path.parent))
    monkeypatch.setattr(sys, "executable", str(beside.parent / "python"))
    assert find_tusk() == str(beside)
    assert _directives(render_unit(str(tmp_path), "alice"))["ExecStart"][0].startswith(
        f"{beside} -D "
    )
    monkeypatch.setattr(sys, "executable", str(tmp_path / "other" / "python"))
    assert find_tusk() == str(on_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError):
        find_tusk()


def test_render_unit_quotes_and_escapes_awkward_paths(tmp_path: Path) -> None:
    tusk = _stub_executable(tmp_path / "my bin")
    datadir = tmp_path / 'd a"t%a$x'
    unit = render_unit(str(datadir), user="alice", tusk=str(tusk))
    escaped = str(datadir).replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    assert _directives(unit)["ExecStart"] == [f'"{tusk}" -D "{escaped}"']
    with pytest.raises(ValueError):
        render_unit(str(tmp_path / "bad\nname"), user="alice", tusk=str(tusk))
    with pytest.raises(ValueError):
        render_unit(str(tmp_path), user="bad user", tusk=str(tusk))
    with pytest.raises(ValueError):  # systemd rejects such executable names
        render_unit(str(tmp_path), user="alice", tusk=str(tmp_path / 'a"b' / "tusk"))


def test_default_user_is_owner_of_datadir_or_tusk(tmp_path: Path) -> None:
    missing = tmp_path / "not-yet"
    assert default_account(str(missing)) == ("tusk", "tusk")
    uid = os.stat(tmp_path).st_uid
    user, group = default_account(str(tmp_path))
    if uid == 0:
        assert (user, group) == ("tusk", "tusk")
    else:
        import pwd

        assert user == pwd.getpwuid(uid).pw_name
    # An explicit root-owned directory falls back to the dedicated account too.
    if os.stat("/").st_uid == 0:
        assert default_account("/") == ("tusk", "tusk")


def test_render_unit_default_user(tmp_path: Path) -> None:
    tusk = _stub_executable(tmp_path / "bin")
    expected = default_account(str(tmp_path))
    d = _directives(render_unit(str(tmp_path), tusk=str(tusk)))
    assert (d["User"][0], d["Group"][0]) == expected


def _verify(unit_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", str(unit_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(
    not os.access(SYSTEMD_ANALYZE, os.X_OK), reason="systemd-analyze is not installed"
)
@pytest.mark.parametrize(
    ("exe_dir", "data_dir"), [("bin", "data"), ("my bin %$;*", "my data %$\"\\'x")]
)
def test_systemd_analyze_verify(tmp_path: Path, exe_dir: str, data_dir: str) -> None:
    # verify checks that ExecStart's executable exists, but not that User= exists
    # (systemd resolves the account only when it starts the service), so a stub
    # executable and a made-up account keep this free of side effects.
    tusk = _stub_executable(tmp_path / exe_dir)
    datadir = tmp_path / data_dir
    datadir.mkdir()
    unit_path = tmp_path / "tusk.service"
    unit_path.write_text(render_unit(str(datadir), user="tusk", tusk=str(tusk)))
    result = _verify(unit_path)
    ours = [line for line in result.stderr.splitlines() if "tusk.service" in line]
    assert result.returncode == 0, result.stderr
    assert ours == [], result.stderr  # unparsable directives are only warnings


@pytest.mark.skipif(
    not os.access(SYSTEMD_ANALYZE, os.X_OK), reason="systemd-analyze is not installed"
)
def test_systemd_analyze_verify_catches_a_missing_executable(tmp_path: Path) -> None:
    unit_path = tmp_path / "tusk.service"
    unit_path.write_text(render_unit(str(tmp_path), user="tusk", tusk=str(tmp_path / "nope")))
    assert _verify(unit_path).returncode != 0


# ------------------------------------------------------------------- sdnotify


@pytest.fixture
def listener(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    with NotifyListener(abstract=getattr(request, "param", False)) as lsn:
        monkeypatch.setenv("NOTIFY_SOCKET", lsn.path)
        yield lsn


def test_notify_without_socket_returns_false(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False
    assert sdnotify.notify_ready() is False
    assert sdnotify.notify_stopping() is False


@pytest.mark.parametrize("value", ["", "relative/path", "@"])
def test_notify_with_unusable_socket_returns_false(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", value)
    assert sdnotify.notify("READY=1") is False


def test_notify_to_missing_socket_returns_false(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    assert sdnotify.notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "@tusk-no-such-abstract-socket")
    assert sdnotify.notify("READY=1") is False


@pytest.mark.parametrize("listener", [False, True], ids=["path", "abstract"], indirect=True)
def test_exact_datagrams(listener: NotifyListener) -> None:
    assert sdnotify.notify("A=1", "B=2") is True
    assert sdnotify.notify_ready() is True
    assert sdnotify.notify_ready("recovered\nfrom crash") is True
    assert sdnotify.notify_ready(None) is True
    assert sdnotify.notify_status("checkpointing") is True
    assert sdnotify.notify_stopping() is True
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert sdnotify.notify_reloading() is True
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000

    listener.wait_for(lambda m: m[0] == "RELOADING=1", timeout=5)
    messages = listener.messages()
    assert messages[:6] == [
        ["A=1", "B=2"],
        ["READY=1", "STATUS=ready to accept connections"],
        ["READY=1", "STATUS=recovered from crash"],
        ["READY=1"],
        ["STATUS=checkpointing"],
        ["STOPPING=1"],
    ]
    reloading = messages[6]
    assert reloading[0] == "RELOADING=1" and len(reloading) == 2
    key, _, usec = reloading[1].partition("=")
    assert key == "MONOTONIC_USEC" and before <= int(usec) <= after
    assert set(listener.pids()) == {os.getpid()}


def test_datagram_bytes_have_no_trailing_newline(
    listener: NotifyListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    # libsystemd sends the caller's string as is; check the raw payload once.
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = Path(listener.path).with_name("raw")
    receiver.bind(str(path))
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert sdnotify.notify("READY=1", "STATUS=x")
        assert receiver.recv(100) == b"READY=1\nSTATUS=x"
    finally:
        receiver.close()


def test_notify_reopens_socket_after_fork(listener: NotifyListener) -> None:
    assert sdnotify.notify("FROM=parent")
    parent_sock = sdnotify._sock
    pid = os.fork()
    if pid == 0:  # child: must get its own socket, and must not raise
        try:
            ok = sdnotify.notify("FROM=child") and sdnotify._sock is not parent_sock
            os._exit(0 if ok else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sdnotify.notify("FROM=parent-again")
    assert sdnotify._sock is parent_sock and parent_sock.fileno() >= 0
    listener.wait_for("FROM=parent-again", timeout=5)
    assert listener.messages() == [["FROM=parent"], ["FROM=child"], ["FROM=parent-again"]]
    assert listener.pids() == [os.getpid(), pid, os.getpid()]


def test_notify_listener_wait_for_times_out(listener: NotifyListener) -> None:
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        listener.wait_for("READY=1", timeout=0.2)
    assert time.monotonic() - start < 5
    sdnotify.notify_ready()
    assert listener.wait_for("READY=1", timeout=5)[0] == "READY=1"
    with pytest.raises(TimeoutError):
        listener.wait_for("READY=1", timeout=0.1, start=1)


def test_notify_listener_cleans_up() -> None:
    lsn = NotifyListener()
    path = lsn.path
    assert os.path.exists(path)
    lsn.close()
    assert not os.path.exists(os.path.dirname(path))
