"""The catalog against the real server: connection-time lookups of pg_authid and
pg_database (FATAL 3D000 / 28000 with PostgreSQL's wording, compared with a
PostgreSQL 15 when one can be started), and CREATE/DROP DATABASE once the SQL
layer routes them."""

from __future__ import annotations

import socket
import struct

import psycopg
import pytest

from catalog import bootstrap
from catalog import catalog_defs as cd


def _connect(cluster, dbname: str = "postgres", user: str | None = None) -> psycopg.Connection:
    return psycopg.connect(host=cluster.host, port=cluster.port, user=user or cluster.user,
                           dbname=dbname, autocommit=True, connect_timeout=10)


def startup_error(host: str, port: int, **params: str) -> dict[str, str]:
    """Send a startup packet; the fields of the ErrorResponse that answers it
    (S severity, C SQLSTATE, M message, ...)."""
    if host.startswith("/"):
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(f"{host}/.s.PGSQL.{port}")
    else:
        sock = socket.create_connection((host, port))
    sock.settimeout(10)
    try:
        body = struct.pack("!i", 196608) + b"".join(
            k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
        sock.sendall(struct.pack("!i", len(body) + 4) + body)
        data = b""
        while True:
            while len(data) < 5:
                chunk = sock.recv(65536)
                if not chunk:
                    raise AssertionError(f"no ErrorResponse: {data!r}")
                data += chunk
            mtype, length = data[:1], struct.unpack("!i", data[1:5])[0]
            while len(data) < 1 + length:
                data += sock.recv(65536)
            payload, data = data[5:1 + length], data[1 + length:]
            if mtype == b"E":
                fields = {}
                for part in payload.split(b"\0"):
                    if part:
                        fields[chr(part[0])] = part[1:].decode()
                return fields
    finally:
        sock.close()


def _fatal(cluster, **kw: str) -> dict[str, str]:
    params = {"user": cluster.user, "database": "postgres", **kw}
    return startup_error(cluster.host, cluster.port, **params)


def test_bootstrap_catalog_files(template_dir):
    """initdb wrote every catalog as heap pages; the superuser and the three
    databases are there."""
    for c in cd.CATALOGS:
        if c.shared:
            assert (template_dir / "global" / str(c.oid)).exists()
        else:
            for db in (1, 4, 5):
                assert (template_dir / "base" / str(db) / str(c.oid)).exists()
    assert not (template_dir / "global" / "pg_authid.json").exists()
    names = {r[1] for r in bootstrap.read_catalog_file(str(template_dir), cd.PG_DATABASE)}
    assert names == {"postgres", "template1", "template0"}
    assert bootstrap.bootstrap_superuser(str(template_dir))


def test_unknown_database_and_role(server):
    err = _fatal(server, database="nope")
    assert (err["S"], err["C"], err["M"]) == ("FATAL", "3D000", 'database "nope" does not exist')
    err = _fatal(server, user="nope")
    assert (err["S"], err["C"], err["M"]) == ("FATAL", "28000", 'role "nope" does not exist')
    err = _fatal(server, database="template0")
    assert (err["C"], err["M"]) == (
        "55000", 'database "template0" is not currently accepting connections')
    _connect(server, dbname="template1").close()
    _connect(server).close()
    log = server.log_text()
    assert 'FATAL:  database "nope" does not exist' in log
    assert 'FATAL:  role "nope" does not exist' in log


def test_connection_errors_match_postgresql(server, pg15):
    for kw in ({"database": "nope"}, {"user": "nope"}, {"database": "template0"}):
        ours = _fatal(server, **kw)
        theirs = startup_error(pg15.host, pg15.port, **{"user": "postgres",
                                                         "database": "postgres", **kw})
        assert (ours["S"], ours["C"], ours["M"]) == (theirs["S"], theirs["C"], theirs["M"])


def _create_database_routed(conn) -> bool:
    try:
        conn.execute("CREATE DATABASE tusk_probe_db")
    except (psycopg.errors.FeatureNotSupported, psycopg.errors.InternalError):
        return False
    conn.execute("DROP DATABASE tusk_probe_db")
    return True


def test_create_and_drop_database(server):
    with _connect(server) as conn:
        if not _create_database_routed(conn):
            pytest.skip("CREATE DATABASE is not routed by the SQL layer yet")
        conn.execute("CREATE DATABASE d1")
        with pytest.raises(psycopg.errors.DuplicateDatabase) as exc:
            conn.execute("CREATE DATABASE d1")
        assert exc.value.diag.message_primary == 'database "d1" already exists'
        with _connect(server, dbname="d1") as other:
            with pytest.raises(psycopg.errors.ObjectInUse) as exc:
                conn.execute("DROP DATABASE d1")
            assert exc.value.diag.message_primary == 'database "d1" is being accessed by other users'
            assert exc.value.diag.message_detail == "There is 1 other session using the database."
            with pytest.raises(psycopg.errors.ObjectInUse) as exc:
                other.execute("DROP DATABASE d1")
            assert exc.value.diag.message_primary == "cannot drop the currently open database"
        conn.execute("DROP DATABASE d1")
        with pytest.raises(psycopg.errors.InvalidCatalogName) as exc:
            conn.execute("DROP DATABASE d1")
        assert exc.value.diag.message_primary == 'database "d1" does not exist'
        conn.execute("DROP DATABASE IF EXISTS d1")
    assert _fatal(server, database="d1")["C"] == "3D000"


def test_ddl_survives_a_crash(server):
    conn = _connect(server)
    try:
        conn.execute("CREATE TABLE crash_t (id int PRIMARY KEY, v text DEFAULT 'x')")
    except (psycopg.errors.FeatureNotSupported, psycopg.errors.InternalError):
        conn.close()
        pytest.skip("CREATE TABLE is not routed by the SQL layer yet")
    conn.execute("INSERT INTO crash_t (id) VALUES (1), (2)")
    conn.execute("CREATE TABLE crash_gone (a int)")
    conn.execute("DROP TABLE crash_gone")
    conn.execute("BEGIN")
    conn.execute("CREATE TABLE crash_uncommitted (a int)")
    oid = conn.execute("SELECT oid FROM pg_class WHERE relname = 'crash_t'").fetchone()[0]
    server.stop("immediate")
    try:
        conn.close()
    except psycopg.Error:
        pass
    server.start()
    with _connect(server) as conn:
        assert conn.execute("SELECT id, v FROM crash_t ORDER BY id").fetchall() == \
            [(1, "x"), (2, "x")]
        assert sorted(conn.execute("SELECT relname FROM pg_class WHERE relname LIKE 'crash%'"
                                   ).fetchall()) == [("crash_t",), ("crash_t_pkey",)]
        assert conn.execute("SELECT oid FROM pg_class WHERE relname = 'crash_t'"
                            ).fetchone()[0] == oid
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO crash_t (id) VALUES (1)")
