"""Application-style programs with psycopg 3 and pg8000, unmodified: parameters
in text and binary, transactions, COPY, server-side binding, prepared
statements, and the types clients decode natively."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pg8000.native
import psycopg
import pytest


@pytest.fixture
def shop(server):
    with psycopg.connect(server.dsn, autocommit=True) as c:
        c.execute("create table item (id serial primary key, name varchar(20) not null unique,"
                  " price double precision, qty int default 0, added timestamptz default now(),"
                  " note text)")
    return server


def test_psycopg_application(shop):
    with psycopg.connect(shop.dsn) as conn:
        with conn.cursor() as cur:
            cur.executemany("insert into item (name, price, qty) values (%s, %s, %s)",
                            [("apple", 0.5, 10), ("pear", 0.75, 5), ("fig", 2.0, 0)])
        conn.commit()
        # Binary results decode to Python types; parameters bound server-side.
        with conn.cursor(binary=True) as cur:
            rows = cur.execute("select id, name, price, qty, added from item where price > %s"
                               " order by id", (0.6,)).fetchall()
        assert [(r[1], r[2], r[3]) for r in rows] == [("pear", 0.75, 5), ("fig", 2.0, 0)]
        assert isinstance(rows[0][4], dt.datetime) and rows[0][4].tzinfo is not None
        # A failed statement aborts the transaction until rollback.
        with pytest.raises(psycopg.errors.UniqueViolation) as exc:
            conn.execute("insert into item (name) values ('apple')")
        assert exc.value.diag.message_detail == "Key (name)=(apple) already exists."
        assert exc.value.diag.constraint_name == "item_name_key"
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute("select 1")
        conn.rollback()
        # Explicit prepare, reused with new parameters.
        for qty, name in ((11, "apple"), (6, "pear")):
            conn.execute("update item set qty = %s where name = %s", (qty, name), prepare=True)
        conn.commit()
        assert conn.execute("select sum(qty), count(*) from item").fetchone() == (17, 3)
        # COPY in and out.
        with conn.cursor() as cur:
            with cur.copy("copy item (name, price, qty, note) from stdin") as copy:
                copy.write_row(("kiwi", 1.25, 3, "tab\there"))
                copy.write_row(("lime", None, 1, None))
            conn.commit()
            out = []
            with cur.copy("copy (select name, price, note from item where qty < 4 order by name)"
                          " to stdout") as copy:
                for row in copy.rows():
                    out.append(row)
        assert out == [("fig", "2", None), ("kiwi", "1.25", "tab\there"), ("lime", None, None)]
        # Rolled back work is gone.
        conn.execute("delete from item")
        conn.rollback()
        assert conn.execute("select count(*) from item").fetchone() == (5,)


def test_pg8000_application(shop):
    con = pg8000.native.Connection(shop.user, host=shop.host, port=shop.port,
                                   database="postgres")
    try:
        con.run("insert into item (name, price, qty) values (:n, :p, :q)", n="plum", p=1.5,
                q=4)
        rows = con.run("select name, price, qty, note from item where name = :n", n="plum")
        assert rows == [["plum", 1.5, 4, None]]
        con.run("begin")
        con.run("update item set qty = qty + 1 where name = :n", n="plum")
        con.run("rollback")
        assert con.run("select qty from item where name = 'plum'") == [[4]]
        ps = con.prepare("select count(*) from item where qty >= :q")
        assert ps.run(q=4) == [[1]]
        assert ps.run(q=5) == [[0]]
        ps.close()
        with pytest.raises(pg8000.native.DatabaseError) as exc:
            con.run("insert into item (name) values (NULL)")
        assert exc.value.args[0]["C"] == "23502"
        # Result types as PostgreSQL's: avg(float8) is float8, avg(int) numeric.
        (total, avg_price, avg_qty, nothing), = con.run(
            "select sum(qty)::bigint, avg(price), avg(qty), null::text from item")
        assert (total, nothing) == (4, None)
        assert type(avg_price) is float and avg_price == 1.5
        assert avg_qty == Decimal("4.0000000000000000") and type(avg_qty) is Decimal
    finally:
        con.close()
