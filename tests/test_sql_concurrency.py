"""Concurrent sessions on the real server: row-level waits and EvalPlanQual (no
lost updates), deadlock detection, isolation of uncommitted data, and what
interrupts a statement: cancel, statement_timeout, lock_timeout,
idle_in_transaction_session_timeout."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest


def _connect(cluster, **kw) -> psycopg.Connection:
    return psycopg.connect(cluster.dsn, autocommit=True, connect_timeout=10, **kw)


@pytest.fixture
def accounts(server):
    with _connect(server) as c:
        c.execute("create table acct (id int primary key, balance int not null)")
        c.execute("insert into acct values (1, 0), (2, 0)")
    return server


def _in_thread(fn):
    box: dict = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as exc:  # reported to the test
            box["error"] = exc
    th = threading.Thread(target=target, daemon=True)
    th.start()
    return th, box


def _wait_until_waiting(cluster, pid: int, locktype: str | None = None,
                        timeout: float = 10) -> None:
    """Until the session ``pid`` waits on a lock (of ``locktype``, if given), as
    pg_stat_activity shows it."""
    deadline = time.monotonic() + timeout
    with _connect(cluster) as c:
        while time.monotonic() < deadline:
            row = c.execute("select wait_event_type, wait_event from pg_stat_activity "
                            "where pid = %s", (pid,)).fetchone()
            if row and row[0] == "Lock" and locktype in (None, row[1]):
                return
            time.sleep(0.05)
    raise AssertionError(f"backend {pid} never waited on a lock")


def test_concurrent_updates_of_one_row_lose_nothing(accounts):
    a, b = _connect(accounts), _connect(accounts)
    try:
        a.execute("begin")
        a.execute("update acct set balance = balance + 1 where id = 1")
        pid_b = b.info.backend_pid
        th, box = _in_thread(lambda: b.execute(
            "update acct set balance = balance + 10 where id = 1 returning balance").fetchone())
        _wait_until_waiting(accounts, pid_b)
        a.execute("commit")
        th.join(10)
        assert "error" not in box, box.get("error")
        assert box["result"] == (11,)  # re-evaluated against the committed row
        assert a.execute("select balance from acct where id = 1").fetchone() == (11,)
    finally:
        a.close()
        b.close()


def test_update_whose_row_no_longer_matches_is_skipped(accounts):
    a, b = _connect(accounts), _connect(accounts)
    try:
        a.execute("begin")
        a.execute("update acct set balance = 5 where id = 2")
        th, box = _in_thread(lambda: b.execute(
            "update acct set balance = balance + 1 where id = 2 and balance = 0").rowcount)
        _wait_until_waiting(accounts, b.info.backend_pid)
        a.execute("commit")
        th.join(10)
        assert box.get("result") == 0
        assert a.execute("select balance from acct where id = 2").fetchone() == (5,)
    finally:
        a.close()
        b.close()


def test_deadlock_is_detected_and_one_side_fails(accounts):
    a, b = _connect(accounts), _connect(accounts)
    try:
        a.execute("set deadlock_timeout = '200ms'")
        b.execute("set deadlock_timeout = '200ms'")
        a.execute("begin")
        b.execute("begin")
        a.execute("update acct set balance = 1 where id = 1")
        b.execute("update acct set balance = 2 where id = 2")
        th, box = _in_thread(lambda: a.execute("update acct set balance = 1 where id = 2"))
        _wait_until_waiting(accounts, a.info.backend_pid)
        try:
            b.execute("update acct set balance = 2 where id = 1")
            b_error = None
        except psycopg.Error as exc:
            b_error = exc
        th.join(10)
        errors = [e for e in (b_error, box.get("error")) if e is not None]
        assert len(errors) == 1
        assert errors[0].sqlstate == "40P01"
        assert str(errors[0]).startswith("deadlock detected")
        assert "waits for ShareLock on transaction" in errors[0].diag.message_detail
    finally:
        a.close()
        b.close()


def test_uncommitted_data_is_invisible_to_others(accounts):
    a, b = _connect(accounts), _connect(accounts)
    try:
        a.execute("begin")
        a.execute("insert into acct values (3, 30)")
        a.execute("update acct set balance = 99 where id = 1")
        assert b.execute("select count(*) from acct").fetchone() == (2,)
        assert b.execute("select balance from acct where id = 1").fetchone() == (0,)
        a.execute("rollback")
        assert b.execute("select count(*), sum(balance) from acct").fetchone() == (2, 0)
    finally:
        a.close()
        b.close()


def test_statement_timeout_and_cancel(server):
    with _connect(server) as c:
        c.execute("set statement_timeout = '300ms'")
        with pytest.raises(psycopg.errors.QueryCanceled) as exc:
            c.execute("select pg_sleep(5)")
        assert "statement timeout" in str(exc.value)
        c.execute("set statement_timeout = 0")
        th, box = _in_thread(lambda: c.execute("select pg_sleep(10)"))
        time.sleep(0.5)
        with _connect(server) as other:
            assert other.execute("select pg_cancel_backend(%s)",
                                 (c.info.backend_pid,)).fetchone() == (True,)
        th.join(10)
        assert isinstance(box.get("error"), psycopg.errors.QueryCanceled)
        assert "canceling statement due to user request" in str(box["error"])
        assert c.execute("select 1").fetchone() == (1,)


def test_lock_timeout(accounts):
    a, b = _connect(accounts), _connect(accounts)
    try:
        a.execute("begin")
        a.execute("update acct set balance = 1 where id = 1")
        b.execute("set lock_timeout = '200ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable) as exc:
            b.execute("update acct set balance = 2 where id = 1")
        assert str(exc.value).startswith("canceling statement due to lock timeout")
        a.execute("rollback")
    finally:
        a.close()
        b.close()


def test_idle_in_transaction_session_timeout_ends_the_session(server):
    c = _connect(server)
    c.execute("set idle_in_transaction_session_timeout = '300ms'")
    c.execute("begin")
    time.sleep(1.0)
    # The FATAL reaches the client with its next command, as from PostgreSQL.
    with pytest.raises(psycopg.Error) as exc:
        c.execute("select 1")
    assert exc.value.sqlstate in ("25P03", None)
    assert "terminating connection due to idle-in-transaction timeout" in server.log_text()
    c.close()


def test_terminate_backend(server):
    c = _connect(server)
    with _connect(server) as other:
        assert other.execute("select pg_terminate_backend(%s)",
                             (c.info.backend_pid,)).fetchone() == (True,)
    time.sleep(0.3)
    with pytest.raises(psycopg.OperationalError):
        c.execute("select 1")
    c.close()


def test_relation_locks_keep_ddl_and_dml_apart(accounts):
    """A reader's AccessShareLock holds off DROP TABLE (AccessExclusiveLock) until it
    commits; an open DML transaction holds off TRUNCATE likewise."""
    a, b = _connect(accounts), _connect(accounts)
    try:
        a.execute("begin")
        assert a.execute("select count(*) from acct").fetchone() == (2,)
        th, box = _in_thread(lambda: b.execute("truncate acct"))
        _wait_until_waiting(accounts, b.info.backend_pid, "relation")
        locks = a.execute("select mode, granted from pg_locks where locktype = 'relation' "
                          "and pid = %s", (b.info.backend_pid,)).fetchall()
        assert ("AccessExclusiveLock", False) in locks
        a.execute("commit")
        th.join(10)
        assert "error" not in box, box.get("error")
        a.execute("begin")
        a.execute("insert into acct values (7, 7)")
        th, box = _in_thread(lambda: b.execute("drop table acct"))
        _wait_until_waiting(accounts, b.info.backend_pid, "relation")
        a.execute("commit")
        th.join(10)
        assert "error" not in box, box.get("error")
        with pytest.raises(psycopg.errors.UndefinedTable):
            a.execute("select * from acct")
    finally:
        a.close()
        b.close()


def test_prepared_statement_follows_a_table_dropped_and_recreated_by_another_session(server):
    # The plan names the old table's relation; the next execution must see the DDL
    # (accepted when its lock is taken) and plan again, as PostgreSQL does.
    with _connect(server) as a, _connect(server) as b:
        b.execute("create table pt (id int primary key, v int)")
        b.execute("insert into pt values (1, 10)")
        query = "update pt set v = v + 1 where id = %s returning v"
        assert a.execute(query, (1,), prepare=True).fetchone() == (11,)
        assert a.execute(query, (1,), prepare=True).fetchone() == (12,)
        b.execute("drop table pt")
        b.execute("create table pt (id int primary key, v int)")
        b.execute("insert into pt values (1, 100), (2, 200), (3, 300)")
        assert a.execute(query, (1,), prepare=True).fetchone() == (101,)
        assert a.execute("select id, v from pt order by id").fetchall() == \
            [(1, 101), (2, 200), (3, 300)]
