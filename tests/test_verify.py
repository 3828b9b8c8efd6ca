"""tusk_ctl verify on a stopped cluster: clean after real work, and a damaged
heap page or index page is named by relation and block with exit code 1."""

from __future__ import annotations

import struct

import psycopg

BLCKSZ = 8192


def _setup(cluster) -> tuple[str, str]:
    with psycopg.connect(cluster.dsn, autocommit=True) as c:
        c.execute("create table vt (id int primary key, t text); "
                  "insert into vt select 1, 'one'")  # DDL and DML in one simple query
        c.execute("insert into vt values " + ", ".join(f"({i}, 'row {i}')"
                                                       for i in range(2, 2001)))
        dboid = c.execute("select oid from pg_database where datname = current_database()"
                          ).fetchone()[0]
        heap, index = (c.execute("select relfilenode from pg_class where relname = %s",
                                 (name,)).fetchone()[0] for name in ("vt", "vt_pkey"))
    return f"base/{dboid}/{heap}", f"base/{dboid}/{index}"


def test_verify_clean_then_damaged(server):
    heap, index = _setup(server)
    assert server.stop() == 0
    out = server.ctl("verify", "-D", str(server.datadir))
    assert out.returncode == 0, out.stdout
    assert "0 problem(s)" in out.stdout and "indexes" in out.stdout
    # pd_lower past pd_upper in heap block 1.
    with open(server.datadir / heap, "r+b") as f:
        f.seek(BLCKSZ + 12)
        f.write(struct.pack("<HH", 8000, 100))
    out = server.ctl("verify", "-D", str(server.datadir))
    assert out.returncode == 1
    assert f'relation "vt" ({heap}) block 1: corrupt page header' in out.stdout
    assert "1 problem(s)" in out.stdout
