"""utils.backend_status across real processes: the st_changecount protocol, counters
that outlive their process, resets.

Each test creates a segment with every subsystem (tests/unit/shmem_harness.py),
attaches the test process as a backend, forks workers that claim PGPROC slots of
their own, and removes everything at the end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from procs.postinit import init_process, proc_kill
from shmem.proc import BackendType
from tests.unit.shmem_harness import Harness, fork_worker, wait_workers
from utils import backend_status as bs


@pytest.fixture
def shm(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    h.make()
    try:
        yield h
    finally:
        h.close()


def _child(h: Harness, dboid: int = 5, datname: str = "postgres"):
    """A worker's start: its own PGPROC slot and status slot, shown as a session."""
    procs = init_process(h.seg, h.settings, BackendType.B_BACKEND, is_superuser=True)
    bs.pgstat_bestart(dboid, datname, 10, "tusk", "worker", 2, "127.0.0.1", 40000)
    return procs


def _wait_for(cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_reader_never_sees_a_half_written_slot(shm: Harness, tmp_path: Path) -> None:
    """The writer alternates 'active' (query_start = state_change = xact_start, one
    bracket) and 'idle' (xact_start cleared); a copy taken mid-write would break
    those equalities or pair a statement's text with another's timestamps."""
    go = tmp_path / "go"

    def writer() -> None:
        procs = _child(shm)
        go.write_text("")
        end = time.monotonic() + 1.5
        k = 0
        while time.monotonic() < end:
            k += 1
            bs.report_running(f"SELECT {k}")
            bs.report_idle(b"I", 0)
        proc_kill(procs)

    pid = fork_worker(writer)
    _wait_for(go.exists)
    seen_running = seen_idle = 0
    end = time.monotonic() + 1.2
    while time.monotonic() < end:
        for e in bs.read_current_status():
            if e.pid != pid:
                continue
            if e.state == bs.STATE_RUNNING:
                seen_running += 1
                assert e.activity_start == e.state_start == e.xact_start
                assert e.activity.startswith("SELECT ")
            elif e.state == bs.STATE_IDLE:
                seen_idle += 1
                assert e.xact_start == 0
                assert e.state_start >= e.activity_start > 0
            assert e.application_name == "worker" and e.datname == "postgres"
    wait_workers([pid])
    assert seen_running and seen_idle


def test_states_times_and_client(shm: Harness) -> None:
    bs.pgstat_bestart(5, "postgres", 10, "tusk", "me", 2, "10.1.2.3", 5555)
    mine = [e for e in bs.read_current_status() if e.pid == os.getpid()]
    assert len(mine) == 1 and mine[0].state == bs.STATE_UNDEFINED
    bs.report_running("BEGIN")
    t0 = bs.now_usecs()
    bs.report_idle(b"T", t0)
    (e,) = [e for e in bs.read_current_status() if e.pid == os.getpid()]
    assert (e.state, e.xact_start, e.activity, e.client_addr, e.client_port) == \
        (bs.STATE_IDLEINTRANSACTION, t0, "BEGIN", "10.1.2.3", 5555)
    assert e.backend_type == BackendType.B_BACKEND and (e.database, e.user) == (5, 10)
    assert e.wait_event_info == bs.WAIT_EVENT_CLIENT_READ
    bs.report_running("SELECT 1")
    (e,) = [e for e in bs.read_current_status() if e.pid == os.getpid()]
    assert e.xact_start == t0  # the transaction goes on
    assert e.wait_event_info == 0 and e.state == bs.STATE_RUNNING
    bs.report_idle(b"E", t0)
    (e,) = [e for e in bs.read_current_status() if e.pid == os.getpid()]
    assert e.state == bs.STATE_IDLEINTRANSACTION_ABORTED
    bs._st.track = False
    bs.report_running("SELECT 2")
    (e,) = [e for e in bs.read_current_status() if e.pid == os.getpid()]
    assert (e.state, e.activity_start, e.xact_start) == (bs.STATE_DISABLED, 0, 0)
    bs._st.track = True


def test_counters_outlive_their_process_and_its_slot(shm: Harness, tmp_path: Path) -> None:
    def session(commits: int, rollbacks: int, hold: Path | None = None) -> None:
        procs = _child(shm)
        for _ in range(commits):
            bs.count_transaction_end(True)
        for _ in range(rollbacks):
            bs.count_transaction_end(False)
        bs.report_running("SELECT 1")
        bs.report_idle(b"I", 0)
        if hold is not None:
            (tmp_path / "held").write_text("")
            _wait_for(hold.exists)
        proc_kill(procs)

    wait_workers([fork_worker(session, 7, 2)])
    s = bs.read_database_stats()[5]
    assert (s.counters["xact_commit"], s.counters["xact_rollback"], s.counters["sessions"],
            s.numbackends) == (7, 2, 1, 0)
    assert s.datname == "postgres"
    release = tmp_path / "release"
    pid = fork_worker(session, 3, 0, release)  # takes the same slot: folds the first one
    _wait_for((tmp_path / "held").exists)
    s = bs.read_database_stats()[5]
    assert (s.counters["xact_commit"], s.counters["xact_rollback"], s.counters["sessions"],
            s.numbackends) == (10, 2, 2, 1)
    release.write_text("")
    wait_workers([pid])
    s = bs.read_database_stats()[5]
    assert (s.counters["xact_commit"], s.counters["sessions"], s.numbackends) == (10, 2, 0)
    assert s.counters["active_time"] > 0


def test_reset_of_a_database_and_of_wal(shm: Harness) -> None:
    bs.pgstat_bestart(5, "postgres", 10, "tusk", "", None, "", 0)
    for _ in range(4):
        bs.count_transaction_end(True)
    assert bs.read_database_stats()[5].counters["xact_commit"] == 4
    assert bs.read_database_stats()[5].stats_reset == 0
    before = bs.now_usecs()
    bs.reset_database_stats(5)
    s = bs.read_database_stats()[5]
    assert s.counters["xact_commit"] == 0 and s.counters["sessions"] == 0
    assert s.stats_reset >= before
    bs.count_transaction_end(True)
    assert bs.read_database_stats()[5].counters["xact_commit"] == 1

    old = bs.reset_time("wal")
    bs.reset_shared("wal", {"wal_records": 12, "wal_bytes": 3456})
    assert bs.wal_base()["wal_records"] == 12 and bs.wal_base()["wal_bytes"] == 3456
    assert bs.reset_time("wal") >= old
    bs.reset_shared("archiver")
    assert bs.reset_time("archiver") >= bs.reset_time("wal")


def test_other_roles_sessions_are_hidden_from_a_non_superuser(shm: Harness, tmp_path: Path,
                                                               monkeypatch) -> None:
    from types import SimpleNamespace

    from utils import session as sess
    from utils.adt import pgstatfuncs

    bs.pgstat_bestart(5, "postgres", 16384, "alice", "mine", None, "", 0)
    bs.report_running("SELECT mine")
    release = tmp_path / "release"

    def other() -> None:
        procs = _child(shm)  # role 10
        bs.report_running("SELECT secret")
        (tmp_path / "held").write_text("")
        _wait_for(release.exists)
        proc_kill(procs)

    pid = fork_worker(other)
    try:
        _wait_for((tmp_path / "held").exists)
        monkeypatch.setattr(sess, "settings", SimpleNamespace(is_superuser=False))
        rows = {r[2]: r for r in pgstatfuncs.activity_rows()}
        cols = [c for c, _t in pgstatfuncs.ACTIVITY_COLUMNS]
        mine = dict(zip(cols, rows[os.getpid()], strict=True))
        theirs = dict(zip(cols, rows[pid], strict=True))
        assert (mine["query"], mine["state"], mine["usename"]) == ("SELECT mine", "active",
                                                                  "alice")
        assert (theirs["query"], theirs["state"], theirs["backend_type"],
                theirs["query_start"], theirs["application_name"]) == \
            ("<insufficient privilege>", None, None, None, "worker")
        monkeypatch.setattr(sess, "settings", SimpleNamespace(is_superuser=True))
        rows = {r[2]: r for r in pgstatfuncs.activity_rows()}
        assert dict(zip(cols, rows[pid], strict=True))["query"] == "SELECT secret"
    finally:
        release.write_text("")
        wait_workers([pid])
