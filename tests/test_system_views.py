"""The views and functions a DBA uses, against the real server: pg_stat_activity,
pg_settings, pg_stat_bgwriter, pg_stat_wal, pg_stat_database, pg_buffercache,
pg_locks, pg_stat_reset_shared / pg_stat_reset — and, where a PostgreSQL 15 can
be started, that their columns and pg_settings' definitions are PostgreSQL's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

ACTIVITY_COLUMNS = [
    "datid", "datname", "pid", "leader_pid", "usesysid", "usename", "application_name",
    "client_addr", "client_hostname", "client_port", "backend_start", "xact_start",
    "query_start", "state_change", "wait_event_type", "wait_event", "state", "backend_xid",
    "backend_xmin", "query_id", "query", "backend_type"]
VIEWS = ("pg_stat_activity", "pg_stat_bgwriter", "pg_stat_wal", "pg_stat_database",
         "pg_settings", "pg_locks", "pg_stat_archiver",
         *(f"pg_stat_{w}_tables" for w in ("all", "user", "sys")),
         *(f"pg_stat_xact_{w}_tables" for w in ("all", "user", "sys")),
         *(f"pg_statio_{w}_tables" for w in ("all", "user", "sys")),
         *(f"pg_stat_{w}_indexes" for w in ("all", "user", "sys")),
         *(f"pg_statio_{w}_indexes" for w in ("all", "user", "sys")))


def connect(server, **kw: Any) -> psycopg.Connection:
    kw.setdefault("autocommit", True)
    return psycopg.connect(server.dsn, **kw)


def wait_for(fn: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def activity(conn: psycopg.Connection, pid: int) -> dict[str, Any]:
    cur = conn.execute("SELECT * FROM pg_stat_activity WHERE pid = %s", (pid,))
    row = cur.fetchone()
    assert row is not None, f"pid {pid} not in pg_stat_activity"
    return dict(zip([d.name for d in cur.description], row, strict=True))


# -- pg_stat_activity ------------------------------------------------------------------------

def test_pg_stat_activity_columns_and_this_session(server):
    with connect(server, application_name="observer") as conn:
        cur = conn.execute("SELECT * FROM pg_stat_activity WHERE pid = pg_backend_pid()")
        assert [d.name for d in cur.description] == ACTIVITY_COLUMNS
        row = dict(zip(ACTIVITY_COLUMNS, cur.fetchone(), strict=True))
        assert row["state"] == "active"
        assert row["query"] == "SELECT * FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        assert row["backend_type"] == "client backend"
        assert row["datname"] == "postgres" and row["usename"] == server.user
        assert row["application_name"] == "observer"
        assert str(row["client_addr"]) == "127.0.0.1" and row["client_port"] > 0
        assert row["wait_event_type"] is None and row["wait_event"] is None
        assert row["backend_start"] <= row["xact_start"] <= row["query_start"]
        assert row["xact_start"] == row["query_start"]  # first statement of its transaction
        assert row["leader_pid"] is None and row["client_hostname"] is None
        # Taken as the statement arrives, a few microseconds before now() (utils.backend_status).
        now, xact_start, host = conn.execute(
            "SELECT now(), xact_start, host(client_addr) FROM pg_stat_activity "
            "WHERE pid = pg_backend_pid()").fetchone()
        assert 0 <= (now - xact_start).total_seconds() < 1 and host == "127.0.0.1"
        conn.execute("SET application_name = 'renamed'")
        assert activity(conn, conn.info.backend_pid)["application_name"] == "renamed"


def test_pg_stat_activity_states_of_other_sessions(server):
    with connect(server) as obs, connect(server, application_name="idler") as idle, \
            connect(server) as inxact, connect(server) as aborted, connect(server) as sleeper:
        idle.execute("SELECT 41")
        inxact.execute("BEGIN")
        begun = inxact.execute("SELECT now()").fetchone()[0]
        aborted.execute("BEGIN")
        with pytest.raises(psycopg.errors.DivisionByZero):
            aborted.execute("SELECT 1/0")
        t = threading.Thread(target=lambda: sleeper.execute("SELECT pg_sleep(3)"))
        t.start()
        try:
            a = activity(obs, idle.info.backend_pid)
            assert (a["state"], a["query"], a["xact_start"]) == ("idle", "SELECT 41", None)
            assert (a["wait_event_type"], a["wait_event"]) == ("Client", "ClientRead")
            assert a["state_change"] >= a["query_start"] and a["application_name"] == "idler"
            a = activity(obs, inxact.info.backend_pid)
            assert (a["state"], a["query"]) == ("idle in transaction", "SELECT now()")
            assert a["xact_start"] == begun and a["query_start"] >= begun
            a = activity(obs, aborted.info.backend_pid)
            assert (a["state"], a["query"]) == ("idle in transaction (aborted)", "SELECT 1/0")
            a = wait_for(lambda: (r := activity(obs, sleeper.info.backend_pid))["wait_event"]
                         == "PgSleep" and r)
            assert (a["state"], a["wait_event_type"], a["query"]) == \
                ("active", "Timeout", "SELECT pg_sleep(3)")
            states = dict(obs.execute("SELECT state, count(*) FROM pg_stat_activity "
                                      "WHERE backend_type = 'client backend' GROUP BY state"))
            assert states == {"active": 2, "idle": 1, "idle in transaction": 1,
                              "idle in transaction (aborted)": 1}
        finally:
            t.join()


def test_pg_stat_activity_lists_auxiliary_processes(server):
    with connect(server) as conn:
        def aux():
            rows = conn.execute("SELECT backend_type, datid, usename, state, query, "
                                "application_name, client_port, backend_start IS NOT NULL "
                                "FROM pg_stat_activity WHERE backend_type <> 'client backend' "
                                "ORDER BY backend_type").fetchall()
            return rows if len(rows) >= 3 else None
        rows = wait_for(aux)
        assert [r[0] for r in rows] == ["background writer", "checkpointer", "walwriter"]
        for _type, datid, usename, state, query, appname, port, started in rows:
            assert (datid, usename, state, query, appname, port, started) == \
                (None, None, None, "", "", None, True)
        pids = {r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity")}
        children = {p.pid for p in server.children()}
        assert pids <= children


def test_pg_stat_activity_over_a_unix_socket_and_track_activities_off(server):
    dsn = f"host={server.socket_dir} port={server.port} user={server.user} dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        a = activity(conn, conn.info.backend_pid)
        assert (a["client_addr"], a["client_port"]) == (None, -1)
        conn.execute("SET track_activities = off")
        conn.execute("SELECT 1")
        with connect(server) as obs:
            a = activity(obs, conn.info.backend_pid)
            assert (a["state"], a["query"], a["query_start"], a["xact_start"]) == \
                ("disabled", "", None, None)
        conn.execute("SET track_activities = on")
        assert activity(conn, conn.info.backend_pid)["state"] == "active"


# -- pg_settings -----------------------------------------------------------------------------

SHOWN = ("DateStyle", "search_path", "log_min_messages", "fsync", "max_connections",
         "checkpoint_completion_target", "unix_socket_permissions", "log_statement",
         "application_name", "TimeZone", "synchronous_commit", "track_activities")


def test_pg_settings_matches_show(server):
    with connect(server, application_name="cfg") as conn:
        for name in SHOWN:
            shown = conn.execute(f"SHOW {name}").fetchone()[0]
            setting = conn.execute("SELECT setting FROM pg_settings WHERE name = %s",
                                   (name,)).fetchone()[0]
            assert setting == shown, name
        conn.execute("SET work_mem = '8MB'")
        row = conn.execute("SELECT setting, unit, source, reset_val, boot_val, vartype, "
                           "context FROM pg_settings WHERE name = 'work_mem'").fetchone()
        assert row == ("8192", "kB", "session", "4096", "4096", "integer", "user")
        row = conn.execute("SELECT setting, unit, min_val, max_val FROM pg_settings "
                           "WHERE name = 'shared_buffers'").fetchone()
        assert row == ("16384", "8kB", "16", "1073741823")
        assert conn.execute("SHOW shared_buffers").fetchone() == ("128MB",)
        row = conn.execute("SELECT setting, boot_val, reset_val FROM pg_settings "
                           "WHERE name = 'wal_buffers'").fetchone()
        assert row == ("512", "-1", "512")
        assert conn.execute("SELECT enumvals FROM pg_settings WHERE name = 'log_statement'"
                            ).fetchone() == (["none", "ddl", "mod", "all"],)
        row = conn.execute("SELECT source, sourcefile IS NOT NULL, sourceline > 0 "
                           "FROM pg_settings WHERE name = 'port'").fetchone()
        assert row == ("configuration file", True, True)  # tests/cluster.py writes it
        names = [r[0] for r in conn.execute("SELECT name FROM pg_settings")]
        assert names == sorted(names, key=str.lower)
        shown_all = [r[0] for r in conn.execute("SHOW ALL")]
        assert names == shown_all


# Deliberate differences (conf/guc_tables.py's docstring): these boot values.
BOOT_DIFFERENCES = {"TimeZone", "log_timezone", "client_encoding", "server_encoding", "port",
                    "server_version", "unix_socket_directories"}


def test_pg_settings_definitions_match_postgresql(server, pg15):
    q = ("SELECT name, unit, category, short_desc, context, vartype, min_val, max_val, "
         "enumvals, boot_val FROM pg_settings")
    with connect(server) as conn, psycopg.connect(pg15.dsn, autocommit=True) as pg:
        mine = {r[0]: r for r in conn.execute(q)}
        theirs = {r[0]: r for r in pg.execute(q)}
        cur = conn.execute("SELECT * FROM pg_settings LIMIT 0")
        pcur = pg.execute("SELECT * FROM pg_settings LIMIT 0")
        assert [(d.name, d.type_code) for d in cur.description] == \
            [(d.name, d.type_code) for d in pcur.description]
    common = sorted(set(mine) & set(theirs))
    assert len(common) >= 80
    mismatches = []
    for name in common:
        a, b = list(mine[name]), list(theirs[name])
        if name in BOOT_DIFFERENCES:
            a[-1] = b[-1] = None
        if a != b:
            mismatches.append((a, b))
    assert mismatches == []


def test_view_columns_match_postgresql(server, pg15):
    with connect(server) as conn, psycopg.connect(pg15.dsn, autocommit=True) as pg:
        for view in VIEWS:
            mine = conn.execute(f"SELECT * FROM {view} LIMIT 0").description
            theirs = pg.execute(f"SELECT * FROM {view} LIMIT 0").description
            assert [(d.name, d.type_code) for d in mine] == \
                [(d.name, d.type_code) for d in theirs], view


# -- pg_stat_bgwriter, pg_stat_wal, pg_stat_reset_shared -------------------------------------

def test_pg_stat_bgwriter_moves_on_checkpoint_and_resets(server):
    with connect(server) as conn:
        q = "SELECT checkpoints_req, stats_reset, buffers_alloc FROM pg_stat_bgwriter"
        before, reset0, _ = conn.execute(q).fetchone()
        conn.execute("CREATE TABLE bgw (a int)")
        conn.execute("INSERT INTO bgw VALUES (1), (2)")
        conn.execute("CHECKPOINT")
        after, reset1, _ = conn.execute(q).fetchone()
        assert after == before + 1 and reset1 == reset0
        row = conn.execute("SELECT buffers_checkpoint, checkpoint_write_time >= 0 "
                           "FROM pg_stat_bgwriter").fetchone()
        assert row[0] >= 1 and row[1] is True
        conn.execute("SELECT pg_stat_reset_shared('bgwriter')")
        req, reset2, _ = conn.execute(q).fetchone()
        assert req == 0 and reset2 > reset1
        assert conn.execute("SELECT buffers_checkpoint FROM pg_stat_bgwriter").fetchone() == (0,)


def test_pg_stat_wal_counts_and_resets(server):
    with connect(server) as conn:
        conn.execute("CREATE TABLE walt (a int, b text)")
        conn.execute("INSERT INTO walt VALUES (1, 'x'), (2, 'y')")
        rec, nbytes, reset0 = conn.execute(
            "SELECT wal_records, wal_bytes, stats_reset FROM pg_stat_wal").fetchone()
        assert rec > 0 and nbytes > 0
        conn.execute("SELECT pg_stat_reset_shared('wal')")
        rec2, reset1 = conn.execute("SELECT wal_records, stats_reset FROM pg_stat_wal").fetchone()
        assert rec2 < rec and reset1 > reset0
        conn.execute("INSERT INTO walt VALUES (3, 'z')")
        assert conn.execute("SELECT wal_records FROM pg_stat_wal").fetchone()[0] > rec2
        for target in ("archiver", "recovery_prefetch"):
            conn.execute("SELECT pg_stat_reset_shared(%s)", (target,))
        assert conn.execute("SELECT archived_count, stats_reset > %s FROM pg_stat_archiver",
                            (reset1,)).fetchone() == (0, True)


def test_bad_reset_target(server):
    with connect(server) as conn:
        with pytest.raises(psycopg.errors.InvalidParameterValue) as exc:
            conn.execute("SELECT pg_stat_reset_shared('x')")
        diag = exc.value.diag
        assert diag.sqlstate == "22023"
        assert diag.message_primary == 'unrecognized reset target: "x"'
        assert diag.message_hint == \
            'Target must be "archiver", "bgwriter", "recovery_prefetch", or "wal".'
        assert conn.execute("SELECT pg_stat_reset_shared(NULL) IS NULL").fetchone() == (True,)


def test_bad_reset_target_as_postgresql(server, pg15):
    def outcome(conn):
        try:
            conn.execute("SELECT pg_stat_reset_shared('nope')")
        except psycopg.Error as e:
            return e.diag.sqlstate, e.diag.message_primary, e.diag.message_hint
        return None
    with connect(server) as conn, psycopg.connect(pg15.dsn, autocommit=True) as pg:
        assert outcome(conn) == outcome(pg)


# -- pg_stat_database ------------------------------------------------------------------------

def test_pg_stat_database_counts_sessions_that_ended(server):
    q = ("SELECT numbackends, xact_commit, xact_rollback, blks_hit + blks_read, sessions, "
         "stats_reset FROM pg_stat_database WHERE datname = 'postgres'")
    with connect(server) as conn:
        n0, c0, r0, _b0, s0, _ = conn.execute(q).fetchone()
        with connect(server) as other:
            for i in range(5):
                other.execute("SELECT %s", (i,))
            other.execute("BEGIN")
            other.execute("ROLLBACK")
            n1 = conn.execute(q).fetchone()[0]
            assert n1 == n0 + 1
        n2, c2, r2, b2, s2, _ = wait_for(lambda: (r := conn.execute(q).fetchone())[0] == n0
                                         and r)
        assert c2 >= c0 + 6 and r2 == r0 + 1 and s2 == s0 + 1 and b2 > 0
        rows = conn.execute("SELECT datid, datname, numbackends FROM pg_stat_database "
                            "ORDER BY datid").fetchall()
        assert rows[0] == (0, None, 0)
        assert {"postgres", "template1", "template0"} <= {r[1] for r in rows}
        conn.execute("SELECT pg_stat_reset()")
        _n, c3, r3, _b3, s3, reset = conn.execute(q).fetchone()
        assert (r3, s3) == (0, 0) and c3 <= 1 and reset is not None
        assert conn.execute("SELECT pg_stat_get_db_numbackends(oid) FROM pg_database "
                            "WHERE datname = 'postgres'").fetchone() == (1,)


# -- pg_buffercache ---------------------------------------------------------------------------

def test_pg_buffercache_has_a_row_per_buffer(server):
    with connect(server) as conn:
        conn.execute("CREATE TABLE bc (a int)")
        conn.execute("INSERT INTO bc VALUES (1)")
        nbuf = int(conn.execute("SELECT setting FROM pg_settings WHERE name = 'shared_buffers'"
                                ).fetchone()[0])
        total, used, first, last = conn.execute(
            "SELECT count(*), count(relfilenode), min(bufferid), max(bufferid) "
            "FROM pg_buffercache").fetchone()
        assert (total, first, last) == (nbuf, 1, nbuf) and 0 < used <= nbuf
        assert conn.execute("SELECT count(*) FROM pg_buffercache WHERE relfilenode IS NULL "
                            "AND (isdirty IS NOT NULL OR usagecount IS NOT NULL)"
                            ).fetchone() == (0,)
        relfilenode = conn.execute("SELECT relfilenode FROM pg_class WHERE relname = 'bc'"
                                   ).fetchone()[0]
        rows = conn.execute("SELECT relforknumber, relblocknumber, isdirty, usagecount >= 1, "
                            "reldatabase FROM pg_buffercache WHERE relfilenode = %s",
                            (relfilenode,)).fetchall()
        assert (0, 0, True, True, 5) in rows


# -- pg_locks --------------------------------------------------------------------------------

def test_pg_locks_shows_a_transactions_relation_lock(server):
    with connect(server) as obs, connect(server) as holder:
        obs.execute("CREATE TABLE lk (a int)")
        oid = obs.execute("SELECT oid FROM pg_class WHERE relname = 'lk'").fetchone()[0]
        holder.execute("BEGIN")
        holder.execute("INSERT INTO lk VALUES (1)")
        rows = obs.execute("SELECT locktype, database, relation, mode, granted, "
                           "virtualtransaction IS NOT NULL, waitstart FROM pg_locks "
                           "WHERE pid = %s AND relation = %s",
                           (holder.info.backend_pid, oid)).fetchall()
        assert ("relation", 5, oid, "RowExclusiveLock", True, True, None) in rows
        holder.execute("COMMIT")


def test_pg_locks_forgets_locks_at_commit(server):
    with connect(server) as obs, connect(server) as holder:
        obs.execute("CREATE TABLE lkc (a int)")
        oid = obs.execute("SELECT oid FROM pg_class WHERE relname = 'lkc'").fetchone()[0]
        holder.execute("BEGIN")
        holder.execute("INSERT INTO lkc VALUES (1)")
        holder.execute("COMMIT")
        assert obs.execute("SELECT count(*) FROM pg_locks WHERE pid = %s AND relation = %s",
                           (holder.info.backend_pid, oid)).fetchone() == (0,)


def test_pg_locks_and_pg_stat_activity_show_a_waiter(server):
    with connect(server) as obs, connect(server) as a, connect(server) as b:
        obs.execute("CREATE TABLE lw (id int PRIMARY KEY, v int)")
        obs.execute("INSERT INTO lw VALUES (1, 0)")
        b.execute("SET statement_timeout = '30s'")  # a wait that is never granted ends
        a.execute("BEGIN")
        a.execute("UPDATE lw SET v = v + 1 WHERE id = 1")
        t = threading.Thread(target=lambda: b.execute("UPDATE lw SET v = v + 1 WHERE id = 1"))
        t.start()
        try:
            # waitstart and the wait event are published just after the process queues
            # (PostgreSQL documents the same short window), so wait for both.
            row = wait_for(lambda: obs.execute(
                "SELECT locktype, mode FROM pg_locks WHERE NOT granted AND pid = %s "
                "AND waitstart IS NOT NULL", (b.info.backend_pid,)).fetchone(), timeout=5)
            assert row == ("transactionid", "ShareLock")
            a_ = wait_for(lambda: (r := activity(obs, b.info.backend_pid))["wait_event"] and r,
                          timeout=5)
            assert (a_["wait_event_type"], a_["wait_event"]) == ("Lock", "transactionid")
        finally:
            a.execute("COMMIT")
            t.join()
