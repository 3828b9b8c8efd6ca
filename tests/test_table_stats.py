"""Per-table and per-index statistics against the real server: pg_stat_*_tables,
pg_stat_*_indexes, pg_statio_*, pg_stat_database's tup_* columns, VACUUM,
ANALYZE, TRUNCATE, COPY, resets — compared, where PostgreSQL 15 can be started,
with what it shows for the same statements (both told to publish first with
pg_stat_force_next_flush()).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

TABLE_COLUMNS = [
    "relid", "schemaname", "relname", "seq_scan", "seq_tup_read", "idx_scan", "idx_tup_fetch",
    "n_tup_ins", "n_tup_upd", "n_tup_del", "n_tup_hot_upd", "n_live_tup", "n_dead_tup",
    "n_mod_since_analyze", "n_ins_since_vacuum", "last_vacuum", "last_autovacuum",
    "last_analyze", "last_autoanalyze", "vacuum_count", "autovacuum_count", "analyze_count",
    "autoanalyze_count"]
# Counters that must be equal to PostgreSQL's (times are compared as NULL / not NULL).
COMPARED = ["schemaname", "relname", "seq_scan", "seq_tup_read", "idx_scan", "idx_tup_fetch",
            "n_tup_ins", "n_tup_upd", "n_tup_del", "n_tup_hot_upd", "n_live_tup", "n_dead_tup",
            "n_mod_since_analyze", "n_ins_since_vacuum", "vacuum_count", "autovacuum_count",
            "analyze_count", "autoanalyze_count"]


def connect(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True)


def wait_for(fn: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def flush(conn: psycopg.Connection) -> None:
    """Publish this session's pending counts (at the end of this statement)."""
    conn.execute("SELECT pg_stat_force_next_flush()")


def table_row(conn: psycopg.Connection, relname: str) -> dict[str, Any]:
    cur = conn.execute("SELECT * FROM pg_stat_user_tables WHERE relname = %s", (relname,))
    row = cur.fetchone()
    assert row is not None, f"{relname} not in pg_stat_user_tables"
    return dict(zip([d.name for d in cur.description], row, strict=True))


def compared(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in COMPARED}
    for k in ("last_vacuum", "last_autovacuum", "last_analyze", "last_autoanalyze"):
        out[k + " is set"] = row[k] is not None
    return out


def index_rows(conn: psycopg.Connection, relname: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT schemaname, relname, indexrelname, idx_scan, idx_tup_read, idx_tup_fetch "
        "FROM pg_stat_user_indexes WHERE relname = %s ORDER BY indexrelname",
        (relname,)).fetchall()


def db_tuples(conn: psycopg.Connection) -> tuple[int, int, int]:
    return conn.execute("SELECT tup_inserted, tup_updated, tup_deleted FROM pg_stat_database "
                        "WHERE datname = current_database()").fetchone()


def run_both(conns: list[psycopg.Connection], *sql: str) -> None:
    for conn in conns:
        for statement in sql:
            conn.execute(statement)


# -- the same workload on tusk and on PostgreSQL 15 ---------------------------------------------

def test_counters_match_postgresql(server, pg15):
    name = "st_diff"
    with connect(server.dsn) as tusk, connect(pg15.dsn) as pg:
        both = [tusk, pg]
        run_both(both, f"DROP TABLE IF EXISTS {name}",
                 f"CREATE TABLE {name} (id int PRIMARY KEY, v int, k int, s text)",
                 f"CREATE INDEX {name}_k ON {name} (k)")
        for conn in both:
            flush(conn)
        before = [db_tuples(c) for c in both]
        values = ", ".join(f"({i}, {i}, {i % 3}, 'row {i}')" for i in range(1, 21))
        run_both(both,
                 f"INSERT INTO {name} VALUES {values}",
                 "BEGIN", f"INSERT INTO {name} VALUES (100, 0, 0, 'gone')", "ROLLBACK",
                 "BEGIN", f"DELETE FROM {name} WHERE id = 20", "ROLLBACK",
                 f"UPDATE {name} SET v = v + 1 WHERE id = 3",          # HOT
                 f"UPDATE {name} SET s = 'changed' WHERE id = 4",      # HOT
                 f"UPDATE {name} SET k = 7 WHERE id = 5",              # indexed column
                 f"UPDATE {name} SET id = 50 WHERE id = 6",            # the primary key
                 f"DELETE FROM {name} WHERE id = 7",
                 f"DELETE FROM {name} WHERE id = 12345",               # finds nothing
                 f"SELECT * FROM {name} WHERE id = 8",
                 f"SELECT * FROM {name} WHERE id = 9999",
                 f"SELECT count(*) FROM {name}",
                 f"SELECT * FROM {name} WHERE v = 11",                 # no index on v
                 f"UPDATE {name} SET v = 0 WHERE v > 15")              # seq scan, 5 rows
        for conn in both:
            with conn.cursor().copy(f"COPY {name} FROM STDIN") as copy:
                for i in range(200, 204):
                    copy.write_row((i, i, 1, f"copied {i}"))
            flush(conn)
        mine, theirs = table_row(tusk, name), table_row(pg, name)
        assert mine["n_tup_ins"] == 25 and mine["n_tup_hot_upd"] >= 2
        assert compared(mine) == compared(theirs)
        assert index_rows(tusk, name) == index_rows(pg, name)
        after = [db_tuples(c) for c in both]
        deltas = [tuple(a - b for a, b in zip(x, y, strict=True))
                  for x, y in zip(after, before, strict=True)]
        assert deltas[0] == deltas[1]
        assert deltas[0][0] == 25

        statio = tusk.execute("SELECT heap_blks_hit, idx_blks_hit, toast_blks_read "
                              "FROM pg_statio_user_tables WHERE relname = %s",
                              (name,)).fetchone()
        assert statio[0] > 0 and statio[1] > 0 and statio[2] is None

        # VACUUM replaces the live and dead counts with what it found.
        run_both(both, f"VACUUM {name}")
        for conn in both:
            flush(conn)
        mine, theirs = table_row(tusk, name), table_row(pg, name)
        assert mine["vacuum_count"] == 1 and mine["last_vacuum"] is not None
        assert mine["n_dead_tup"] == 0 and mine["n_ins_since_vacuum"] == 0
        assert compared(mine) == compared(theirs)

        # ANALYZE counts rows too (a delete not yet vacuumed is a dead row).
        run_both(both, f"DELETE FROM {name} WHERE id = 10")
        for conn in both:
            flush(conn)  # else the delete may be published after ANALYZE's reset
            conn.execute(f"ANALYZE {name}")
            flush(conn)
        mine, theirs = table_row(tusk, name), table_row(pg, name)
        assert mine["analyze_count"] == 1 and mine["n_mod_since_analyze"] == 0
        for key in ("n_live_tup", "n_dead_tup", "n_mod_since_analyze", "analyze_count",
                    "n_tup_del"):
            assert mine[key] == theirs[key], key
        assert (mine["last_analyze"] is None) == (theirs["last_analyze"] is None)
        run_both(both, f"DROP TABLE {name}")


def test_truncate_and_rollback_as_postgresql(server, pg15):
    name = "st_trunc"
    with connect(server.dsn) as tusk, connect(pg15.dsn) as pg:
        both = [tusk, pg]
        run_both(both, f"DROP TABLE IF EXISTS {name}", f"CREATE TABLE {name} (a int, b text)",
                 f"INSERT INTO {name} VALUES (1, 'a'), (2, 'b'), (3, 'c')",
                 f"DELETE FROM {name} WHERE a = 1",
                 # A truncation rolled back leaves the counts as they were...
                 "BEGIN", f"INSERT INTO {name} VALUES (4, 'd')", f"TRUNCATE {name}",
                 f"INSERT INTO {name} VALUES (5, 'e')", "ROLLBACK")
        for conn in both:
            flush(conn)
        keys = ("n_tup_ins", "n_tup_del", "n_live_tup", "n_dead_tup", "n_mod_since_analyze",
                "n_ins_since_vacuum", "seq_scan", "idx_scan")
        mine, theirs = table_row(tusk, name), table_row(pg, name)
        assert {k: mine[k] for k in keys} == {k: theirs[k] for k in keys}
        # (PostgreSQL forgets what was inserted after the truncation: 2 dead, not 3)
        assert mine["n_live_tup"] == 2 and mine["n_dead_tup"] == 2
        # ...a committed one starts them from zero.
        run_both(both, "BEGIN", f"INSERT INTO {name} VALUES (6, 'f')", f"TRUNCATE {name}",
                 f"INSERT INTO {name} VALUES (7, 'g')", "COMMIT")
        for conn in both:
            flush(conn)
        mine, theirs = table_row(tusk, name), table_row(pg, name)
        assert {k: mine[k] for k in keys} == {k: theirs[k] for k in keys}
        assert mine["n_live_tup"] == 1 and mine["n_dead_tup"] == 0
        run_both(both, f"DROP TABLE {name}")


def test_pruning_reclaims_dead_tuples_as_postgresql(server, pg15):
    """On-access pruning of a page full of HOT versions lowers n_dead_tup
    (pgstat_update_heap_dead_tuples), as in PostgreSQL."""
    name = "st_prune"
    with connect(server.dsn) as tusk, connect(pg15.dsn) as pg:
        both = [tusk, pg]
        run_both(both, f"DROP TABLE IF EXISTS {name}",
                 f"CREATE TABLE {name} (id int PRIMARY KEY, v int, pad text)",
                 f"INSERT INTO {name} VALUES (1, 0, repeat('x', 1000))")
        for i in range(30):
            run_both(both, f"UPDATE {name} SET v = {i} WHERE id = 1")
        for conn in both:
            flush(conn)
        keys = ("n_tup_upd", "n_tup_hot_upd", "n_live_tup", "n_dead_tup")
        mine, theirs = table_row(tusk, name), table_row(pg, name)
        assert {k: mine[k] for k in keys} == {k: theirs[k] for k in keys}
        assert mine["n_dead_tup"] < 30
        run_both(both, f"DROP TABLE {name}")


# -- tusk alone -----------------------------------------------------------------------------------

def test_another_sessions_counts_become_visible(server):
    """Counts a session leaves pending when it goes idle are published without
    any further statement from it (within a bounded wait)."""
    with connect(server.dsn) as writer, connect(server.dsn) as reader:
        writer.execute("CREATE TABLE st_vis (a int PRIMARY KEY)")
        for i in range(5):  # several statements in a row: some publications are deferred
            writer.execute("INSERT INTO st_vis VALUES (%s)", (i,))
        writer.execute("SELECT * FROM st_vis WHERE a = 3")
        row = wait_for(lambda: (r := table_row(reader, "st_vis"))["n_tup_ins"] == 5
                       and r["idx_scan"] == 1 and r)
        assert row["n_live_tup"] == 5 and row["seq_scan"] >= 1
        assert row["schemaname"] == "public" and row["last_vacuum"] is None
        tup_inserted = db_tuples(reader)[0]
        assert tup_inserted >= 5
        assert reader.execute("SELECT pg_stat_get_live_tuples(%s), pg_stat_get_numscans(%s), "
                              "pg_stat_get_tuples_inserted(%s)",
                              (row["relid"],) * 3).fetchone() == (5, row["seq_scan"], 5)


def test_resets(server):
    with connect(server.dsn) as conn:
        conn.execute("CREATE TABLE st_r1 (a int PRIMARY KEY)")
        conn.execute("CREATE TABLE st_r2 (a int)")
        conn.execute("INSERT INTO st_r1 VALUES (1), (2)")
        conn.execute("INSERT INTO st_r2 VALUES (1), (2), (3)")
        conn.execute("SELECT * FROM st_r1 WHERE a = 1")
        flush(conn)
        r1 = table_row(conn, "st_r1")
        assert r1["n_tup_ins"] == 2 and r1["idx_scan"] == 1
        assert table_row(conn, "st_r2")["n_tup_ins"] == 3
        conn.execute("SELECT pg_stat_reset_single_table_counters(%s)", (r1["relid"],))
        r1 = table_row(conn, "st_r1")
        assert (r1["n_tup_ins"], r1["n_live_tup"], r1["seq_scan"]) == (0, 0, 0)
        assert r1["idx_scan"] == 1  # the index keeps its own counters
        assert table_row(conn, "st_r2")["n_tup_ins"] == 3
        conn.execute("SELECT pg_stat_reset()")
        for rel in ("st_r1", "st_r2"):
            row = table_row(conn, rel)
            assert row["n_tup_ins"] == row["n_live_tup"] == row["seq_scan"] == 0
            assert row["idx_scan"] in (0, None)
        assert conn.execute("SELECT tup_inserted FROM pg_stat_database "
                            "WHERE datname = current_database()").fetchone() == (0,)


def test_dropped_tables_and_xact_view(server):
    with connect(server.dsn) as conn:
        conn.execute("CREATE TABLE st_drop (a int)")
        conn.execute("INSERT INTO st_drop VALUES (1)")
        flush(conn)
        assert table_row(conn, "st_drop")["n_tup_ins"] == 1
        conn.execute("DROP TABLE st_drop")
        assert conn.execute("SELECT count(*) FROM pg_stat_all_tables "
                            "WHERE relname = 'st_drop'").fetchone() == (0,)
        conn.execute("CREATE TABLE st_x (a int)")
        conn.execute("BEGIN")
        conn.execute("INSERT INTO st_x VALUES (1), (2)")
        assert conn.execute("SELECT n_tup_ins FROM pg_stat_xact_user_tables "
                            "WHERE relname = 'st_x'").fetchone() == (2,)
        conn.execute("ROLLBACK")


def test_pg_stat_sys_tables_shows_catalogs(server):
    with connect(server.dsn) as conn:
        names = {r[0] for r in conn.execute("SELECT relname FROM pg_stat_sys_tables")}
        assert {"pg_class", "pg_attribute", "pg_database"} <= names
        users = {r[0] for r in conn.execute("SELECT schemaname FROM pg_stat_user_tables")}
        assert "pg_catalog" not in users


@pytest.mark.parametrize("view", ["pg_stat_user_tables", "pg_statio_user_indexes"])
def test_views_read_without_error(server, view):
    with connect(server.dsn) as conn:
        conn.execute(f"SELECT * FROM {view}").fetchall()
