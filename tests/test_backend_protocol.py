"""The client backend against real clients: psql, psycopg and a raw v3-protocol socket.

Covers start-up (ParameterStatus, refusals, SSLRequest, CancelRequest, startup
options), the simple and extended query protocols, transaction block states, the
statements that exist before the SQL layer, error recovery, signals, the process
title, and — where a PostgreSQL 15 can be started — that errors read exactly as
PostgreSQL's.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import threading
import time
from decimal import Decimal
from typing import Any

import psutil
import psycopg
import pytest

# -- a raw protocol client ------------------------------------------------------------------


class Raw:
    """A minimal frontend: send messages, read backend messages."""

    def __init__(self, addr: tuple[str, int] | str, user: str, database: str = "postgres",
                 startup: bool = True, **params: str) -> None:
        if isinstance(addr, str):
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(addr)
        else:
            self.sock = socket.create_connection(addr)
        self.sock.settimeout(10)
        self.buf = b""
        if startup:
            self.startup(user=user, database=database, **params)

    @staticmethod
    def startup_packet(**params: str) -> bytes:
        body = struct.pack("!i", 196608) + b"".join(
            k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
        return struct.pack("!i", len(body) + 4) + body

    def startup(self, **params: str) -> list[tuple[bytes, bytes]]:
        self.sock.sendall(self.startup_packet(**params))
        return self.until(b"Z")

    def send(self, mtype: bytes, payload: bytes = b"") -> None:
        self.sock.sendall(mtype + struct.pack("!i", len(payload) + 4) + payload)

    def recv_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def msg(self) -> tuple[bytes, bytes]:
        head = self.recv_exact(5)
        (length,) = struct.unpack("!i", head[1:])
        return head[:1], self.recv_exact(length - 4)

    def until(self, mtype: bytes) -> list[tuple[bytes, bytes]]:
        out = []
        while True:
            m = self.msg()
            out.append(m)
            if m[0] == mtype or (m[0] == b"E" and fields(m[1]).get("S") == "FATAL"):
                return out

    def query(self, sql: str) -> list[tuple[bytes, bytes]]:
        self.send(b"Q", sql.encode() + b"\0")
        return self.until(b"Z")

    # extended protocol
    def parse(self, name: str, sql: str, types: tuple[int, ...] = ()) -> None:
        self.send(b"P", name.encode() + b"\0" + sql.encode() + b"\0"
                  + struct.pack(f"!h{len(types)}I", len(types), *types))

    def bind(self, portal: str, stmt: str, params: tuple[bytes | None, ...] = (),
             rformats: tuple[int, ...] = (), pformats: tuple[int, ...] = ()) -> None:
        body = portal.encode() + b"\0" + stmt.encode() + b"\0"
        body += struct.pack(f"!h{len(pformats)}h", len(pformats), *pformats)
        body += struct.pack("!h", len(params))
        for p in params:
            body += struct.pack("!i", -1) if p is None else struct.pack("!i", len(p)) + p
        body += struct.pack(f"!h{len(rformats)}h", len(rformats), *rformats)
        self.send(b"B", body)

    def describe(self, kind: bytes, name: str) -> None:
        self.send(b"D", kind + name.encode() + b"\0")

    def execute(self, portal: str = "", max_rows: int = 0) -> None:
        self.send(b"E", portal.encode() + b"\0" + struct.pack("!i", max_rows))

    def close_(self, kind: bytes, name: str) -> None:
        self.send(b"C", kind + name.encode() + b"\0")

    def sync(self) -> list[tuple[bytes, bytes]]:
        self.send(b"S")
        return self.until(b"Z")

    def close(self) -> None:
        self.sock.close()


def fields(payload: bytes) -> dict[str, str]:
    """The fields of an ErrorResponse/NoticeResponse."""
    out = {}
    for part in payload.rstrip(b"\0").split(b"\0"):
        if part:
            out[chr(part[0])] = part[1:].decode()
    return out


def data_rows(msgs: list[tuple[bytes, bytes]]) -> list[list[str | None]]:
    rows = []
    for t, p in msgs:
        if t != b"D":
            continue
        (n,) = struct.unpack_from("!h", p)
        pos, row = 2, []
        for _ in range(n):
            (ln,) = struct.unpack_from("!i", p, pos)
            pos += 4
            row.append(None if ln < 0 else p[pos:pos + ln].decode())
            pos += max(ln, 0)
        rows.append(row)
    return rows


def types_of(msgs: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(t for t, _ in msgs)


def errors(msgs: list[tuple[bytes, bytes]]) -> list[dict[str, str]]:
    return [fields(p) for t, p in msgs if t == b"E"]


def connect(server, **kw: Any) -> psycopg.Connection:
    kw.setdefault("autocommit", True)
    return psycopg.connect(server.dsn, connect_timeout=10, **kw)


def raw(server, **kw: Any) -> Raw:
    return Raw((server.host, server.port), server.user, **kw)


def pg_raw(pg15, **kw: Any) -> Raw:
    return Raw(f"{pg15.host}/.s.PGSQL.{pg15.port}", "postgres", **kw)


def wait_until(pred, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def title_of(pid: int) -> str:
    return " ".join(a for a in psutil.Process(pid).cmdline() if a)


def local_port(conn: psycopg.Connection) -> int:
    s = socket.socket(fileno=os.dup(conn.pgconn.socket))
    try:
        return s.getsockname()[1]
    finally:
        s.close()


# -- psql and psycopg ---------------------------------------------------------------------------


def test_psql_show_set_reset(server):
    r = server.psql("SHOW lock_timeout; SET lock_timeout = '5s'; SHOW lock_timeout; "
                    "RESET lock_timeout; SHOW lock_timeout; SET lock_timeout TO 250; "
                    "SHOW lock_timeout; SET lock_timeout TO DEFAULT; SHOW lock_timeout",
                    "-At", check=True)
    assert r.stdout.split() == ["0", "SET", "5s", "RESET", "0", "SET", "250ms", "SET", "0"]
    r = server.psql("SET TIME ZONE 'Europe/Paris'; SHOW TIME ZONE", check=True)
    assert r.stdout.split()[:2] == ["SET", "TimeZone"] and "Europe/Paris" in r.stdout
    r = server.psql("SHOW ALL", "-At", check=True)
    names = [line.split("|")[0] for line in r.stdout.splitlines()]
    assert "lock_timeout" in names and names == sorted(names, key=str.lower)
    r = server.psql("select version()", "-At", check=True)
    assert r.stdout.startswith("PostgreSQL 15.18 (tusk 0.1.0) on ")
    assert "compiled by Python 3." in r.stdout and r.stdout.strip().endswith("-bit")


def test_parameter_status_seen_by_psycopg(server):
    with connect(server, application_name="pst") as conn:
        info = conn.info
        assert info.parameter_status("server_version").startswith("15")
        assert info.server_version == 150018
        assert info.parameter_status("TimeZone") == "UTC"
        assert info.parameter_status("integer_datetimes") == "on"
        assert info.parameter_status("client_encoding") == "UTF8"
        assert info.parameter_status("server_encoding") == "UTF8"
        assert info.parameter_status("DateStyle") == "ISO, MDY"
        assert info.parameter_status("standard_conforming_strings") == "on"
        assert info.parameter_status("is_superuser") == "on"
        assert info.parameter_status("session_authorization") == server.user
        assert info.parameter_status("application_name") == "pst"
        assert info.backend_pid > 0
        conn.execute("SET TimeZone = 'Asia/Tokyo'")
        assert info.parameter_status("TimeZone") == "Asia/Tokyo"
        conn.execute("SELECT set_config('application_name', 'other', false)")
        assert info.parameter_status("application_name") == "other"
        conn.execute("RESET ALL")
        assert info.parameter_status("TimeZone") == "UTC"


def test_transaction_blocks_and_set_local(server):
    with connect(server, autocommit=False) as conn:
        conn.execute("SET lock_timeout = '2s'")
        conn.execute("SET LOCAL statement_timeout = '7s'")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert conn.execute("SHOW statement_timeout").fetchone() == ("7s",)
        conn.rollback()
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)
        assert conn.execute("SHOW lock_timeout").fetchone() == ("0",)  # rolled back
        conn.execute("SET lock_timeout = '3s'")
        conn.commit()
        assert conn.execute("SHOW lock_timeout").fetchone() == ("3s",)
        conn.execute("SET lock_timeout = '5s'")
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            conn.execute("CREATE VIEW v AS SELECT 1")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(psycopg.errors.InFailedSqlTransaction) as exc:
            conn.execute("SHOW lock_timeout")
        assert exc.value.diag.message_primary == ("current transaction is aborted, commands "
                                                  "ignored until end of transaction block")
        conn.rollback()
        assert conn.execute("SHOW lock_timeout").fetchone() == ("3s",)  # SET rolled back
    # Simple-protocol transaction states, COMMIT of an aborted block, implicit blocks.
    r = raw(server)
    assert r.query("BEGIN")[-1] == (b"Z", b"T")
    msgs = r.query("SHOW nonexistent_x")
    assert errors(msgs)[0]["C"] == "42704" and msgs[-1] == (b"Z", b"E")
    msgs = r.query("COMMIT")
    assert (b"C", b"ROLLBACK\0") in msgs and msgs[-1] == (b"Z", b"I")
    msgs = r.query("SET LOCAL lock_timeout = '1s'; SHOW lock_timeout")
    assert data_rows(msgs) == [["1s"]] and b"N" not in types_of(msgs)  # implicit block
    msgs = r.query("SET LOCAL lock_timeout = '1s'")
    assert fields(dict(msgs)[b"N"])["M"] == "SET LOCAL can only be used in transaction blocks"
    msgs = r.query("SET lock_timeout = '2s'; ROLLBACK; SHOW lock_timeout")
    assert fields(dict(msgs)[b"N"])["M"] == "there is no transaction in progress"
    assert data_rows(msgs) == [["0"]]
    msgs = r.query("BEGIN; SET lock_timeout = '3s'; COMMIT; SHOW lock_timeout")
    assert data_rows(msgs) == [["3s"]] and msgs[-1] == (b"Z", b"I")
    msgs = r.query("SHOW lock_timeout; selec; SHOW lock_timeout")
    assert b"D" not in types_of(msgs) and errors(msgs)[0]["C"] == "42601"
    msgs = r.query("SHOW lock_timeout; CREATE VIEW x AS SELECT 1; SHOW lock_timeout")
    assert types_of(msgs) == b"TDCEZ"
    assert r.query(";")[0][0] == b"I"  # EmptyQueryResponse
    r.close()


def test_functions(server):
    with connect(server) as conn:
        assert conn.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)
        assert conn.execute("SELECT current_setting('no.such', true)").fetchone() == (None,)
        with pytest.raises(psycopg.errors.UndefinedObject):
            conn.execute("SELECT current_setting('no_such')")
        row = conn.execute("SELECT set_config('lock_timeout', '4s', false) AS x").fetchone()
        assert row == ("4s",)
        assert conn.execute("SHOW lock_timeout").fetchone() == ("4s",)
        conn.execute("SELECT set_config('lock_timeout', '9s', true)")  # local: gone at once
        assert conn.execute("SHOW lock_timeout").fetchone() == ("4s",)
        cur = conn.execute("SELECT version() AS v, 1, 'a', true, NULL, 1.5, 2::int8, "
                           "current_user, current_database(), pg_backend_pid()")
        assert [d.name for d in cur.description] == [
            "v", "?column?", "?column?", "?column?", "?column?", "?column?", "int8",
            "current_user", "current_database", "pg_backend_pid"]
        row = cur.fetchone()
        assert row[0].startswith("PostgreSQL 15.18 (tusk")
        assert row[1:8] == (1, "a", True, None, Decimal("1.5"), 2,
                            server.user)
        assert row[8] == "postgres" and row[9] == conn.info.backend_pid
        assert conn.execute("SELECT current_setting(%s)", ["DateStyle"]).fetchone() == \
            ("ISO, MDY",)
        t0 = time.monotonic()
        assert conn.execute("SELECT pg_sleep(0.2)").fetchone() == (None,)
        assert time.monotonic() - t0 >= 0.2
        with pytest.raises(psycopg.errors.UndefinedFunction) as exc:
            conn.execute("SELECT current_setting(1)")
        assert exc.value.diag.message_primary == "function current_setting(integer) does not exist"
        assert exc.value.diag.statement_position == "8"


def test_unsupported_statement_then_session_goes_on(server):
    with connect(server) as conn:
        for sql, tag in (("CREATE VIEW v AS SELECT 1", "CREATE VIEW"),
                         ("CREATE SCHEMA s", "CREATE SCHEMA"), ("CREATE ROLE r", "CREATE ROLE"),
                         ("LISTEN c", "LISTEN"), ("CLUSTER", "CLUSTER")):
            with pytest.raises(psycopg.errors.FeatureNotSupported) as exc:
                conn.execute(sql)
            assert exc.value.diag.message_primary == f'"{tag}" is not supported yet'
        assert conn.execute("SHOW server_version").fetchone() == ("15.18",)


def test_syntax_error(server):
    with connect(server) as conn:
        for sql, msg, pos in (("selec 1", 'syntax error at or near "selec"', "1"),
                              ("SELECT 1 +", "syntax error at end of input", "11"),
                              ("SELECT 'éé' FROM FROM", 'syntax error at or near "FROM"', "18")):
            with pytest.raises(psycopg.errors.SyntaxError) as exc:
                conn.execute(sql)
            assert exc.value.diag.sqlstate == "42601"
            assert exc.value.diag.message_primary == msg
            assert exc.value.diag.statement_position == pos
    assert "ERROR:  syntax error at or near \"selec\"" in server.log_text()
    assert "STATEMENT:  selec 1" in server.log_text()


# Error cases whose SQLSTATE, message and position must read as in PostgreSQL 15.
PG_ERROR_CASES = [
    "selec 1", "SELECT 1 +", "SELECT 'abc", "SELECT $$x", "SELECT 1; selec 2", "SELECT /* x",
    'SELECT ""', "x", "SELECT 'é' frm frm", "SELECT 'éé' FROM FROM", "SELECT (", "SHOW",
    "SET", "SELECT 1; SELECT (", "SET lock_timeout = 1, 2", "SHOW no_such_parameter",
    "SET no_such_parameter = 1", "RESET no_such_parameter", "SET lock_timeout = -1",
    "SET lock_timeout = 'abc'", "SET TIME ZONE 'No/Such_Zone'", "SELECT $1",
    "SELECT current_setting(1)", "SELECT current_setting('nope')", "COMMIT AND CHAIN",
    "SAVEPOINT a", "SET server_version = '1'", "SET max_connections = 5",
    "SET fsync = off", "SET default_transaction_isolation = 'bogus'", "DEALLOCATE nope",
    "BEGIN; SET transaction_isolation = 'bogus'",
]
PG_NOTICE_CASES = ["COMMIT", "ROLLBACK", "BEGIN; BEGIN; COMMIT", "SET LOCAL lock_timeout = 5",
                   "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", "ABORT", "END"]


def _outcome(r: Raw, sql: str) -> list[tuple[str, ...]]:
    msgs = r.query(sql)
    out = []
    for t, p in msgs:
        if t in (b"E", b"N"):
            f = fields(p)
            out.append((t.decode(), f["S"], f["C"], f["M"], f.get("P", ""), f.get("H", ""),
                        f.get("D", "")))
        elif t == b"C":
            out.append(("C", p.rstrip(b"\0").decode()))
        elif t == b"Z":
            out.append(("Z", p.decode()))
    r.query("ROLLBACK")
    return out


def test_errors_match_postgresql(server, pg15):
    mine, theirs = raw(server), pg_raw(pg15)
    mismatches = []
    for sql in PG_ERROR_CASES + PG_NOTICE_CASES:
        a, b = _outcome(mine, sql), _outcome(theirs, sql)
        if a != b:
            mismatches.append((sql, a, b))
    assert mismatches == []


def _extended_outcome(r: Raw, steps) -> list[tuple[str, ...]]:
    for step in steps:
        getattr(r, step[0])(*step[1:])
    msgs = r.sync()
    out = []
    for t, p in msgs:
        if t == b"E":
            f = fields(p)
            out.append(("E", f["C"], f["M"]))
        elif t in (b"1", b"2", b"3", b"n", b"s", b"I", b"Z"):
            out.append((t.decode(), p.decode()))
        elif t == b"C":
            out.append(("C", p.rstrip(b"\0").decode()))
    return out


EXTENDED_CASES = [
    [("parse", "", "SELECT 1; SELECT 2")],
    [("parse", "s1", "SHOW TimeZone"), ("parse", "s1", "SHOW TimeZone")],
    [("describe", b"S", "nope")],
    [("describe", b"S", "")],
    [("describe", b"P", "nope")],
    [("execute", "nope")],
    [("bind", "", "nope")],
    [("parse", "", "SELECT current_setting($1)"), ("bind", "", "", ())],
    [("parse", "", "SELECT current_setting($1)"), ("bind", "", "", (b"a", b"b"), (), (0, 0, 0))],
    [("parse", "", ""), ("bind", "", ""), ("describe", b"P", ""), ("execute", "")],
    [("parse", "", "SELECT $1::int4"), ("bind", "", "", (b"x",))],
    [("parse", "", "SELECT $1::int4"), ("bind", "", "", (b"1",), (7,))],
    [("parse", "", "SELECT 1"), ("bind", "", ""), ("execute", ""), ("execute", "")],
    [("parse", "", "SELECT 1"), ("bind", "", ""), ("execute", "", 1), ("execute", "", 1)],
    [("parse", "", "SELECT $1::int4"), ("bind", "", "", (b"1",), (7,)), ("execute", "")],
    [("parse", "", "SHOW TimeZone"), ("bind", "", "", (), (1, 1)), ("execute", "")],
    [("parse", "", "SHOW ALL"), ("bind", "", ""), ("execute", "", 2), ("execute", "", 2)],
    [("parse", "", "SET TimeZone = 'UTC'"), ("bind", "", ""), ("execute", ""), ("execute", "")],
    [("parse", "x", "SELECT 1"), ("bind", "p", "x"), ("bind", "p", "x")],
    [("parse", "", "BEGIN"), ("bind", "", ""), ("execute", ""), ("parse", "", "selec"),
     ("parse", "", "SHOW TimeZone")],
    [("close", b"S", "nope"), ("close", b"P", "nope")],
]


def test_extended_protocol_errors_match_postgresql(server, pg15):
    mismatches = []
    for steps in EXTENDED_CASES:
        mine, theirs = raw(server), pg_raw(pg15)
        steps = [("close_", *s[1:]) if s[0] == "close" else s for s in steps]
        a, b = _extended_outcome(mine, steps), _extended_outcome(theirs, steps)
        if a != b:
            mismatches.append((steps, a, b))
        mine.close()
        theirs.close()
    assert mismatches == []


# -- extended protocol ----------------------------------------------------------------------------


def test_extended_protocol_psycopg(server):
    with connect(server) as conn:
        for i in range(8):  # psycopg prepares after a few executions
            row = conn.execute("SELECT current_setting(%s), %s::int4 AS n", ["TimeZone", i],
                               prepare=True).fetchone()
            assert row == ("UTC", i)
        assert conn.execute("SHOW lock_timeout", prepare=True).fetchone() == ("0",)
        conn.execute("SET lock_timeout = '1s'", prepare=True)
        assert conn.execute("SHOW lock_timeout", prepare=True).fetchone() == ("1s",)
        with conn.cursor(binary=True) as cur:
            row = cur.execute("SELECT 1::int8, 2.5, 'abc', true, 1.5::float8, %s::int4",
                              [42]).fetchone()
            assert row == (1, Decimal("2.5"), "abc", True, 1.5, 42)
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            conn.execute("CREATE VIEW v AS SELECT 1", prepare=True)
        assert conn.execute("SELECT 1", prepare=True).fetchone() == (1,)


def test_extended_protocol_named_statements_and_portals(server):
    r = raw(server)
    r.parse("tz", "SELECT current_setting($1) AS v", (0,))
    r.describe(b"S", "tz")
    r.bind("", "tz", (b"TimeZone",))
    r.execute("")
    r.bind("p1", "tz", (b"DateStyle",))
    r.describe(b"P", "p1")
    r.execute("p1")
    msgs = r.sync()
    assert types_of(msgs) == b"1tT2DC2TDCZ"
    assert struct.unpack("!hI", dict(msgs)[b"t"]) == (1, 25)  # $1 inferred as text
    assert data_rows(msgs) == [["UTC"], ["ISO, MDY"]]
    # Named statements outlive transactions; portals do not.
    r.bind("", "tz", (b"lock_timeout",))
    r.execute("")
    msgs = r.sync()
    assert data_rows(msgs) == [["0"]]
    r.execute("p1")
    msgs = r.sync()
    assert errors(msgs)[0]["C"] == "34000"
    # PortalSuspended with a row limit, then the rest.
    r.parse("all", "SHOW ALL")
    r.bind("big", "all")
    r.execute("big", 3)
    r.execute("big", 2)
    r.execute("big", 0)
    msgs = r.sync()
    kinds = types_of(msgs)
    assert kinds.startswith(b"12DDDsDDsD") and kinds.endswith(b"CZ")
    assert (b"C", b"SHOW\0") in msgs
    # An error skips everything up to Sync; Sync recovers.
    r.parse("", "selec")
    r.bind("", "")
    r.execute("")
    msgs = r.sync()
    assert types_of(msgs) == b"EZ" and errors(msgs)[0]["C"] == "42601"
    # Close, then the name is free again.
    r.close_(b"S", "tz")
    r.parse("tz", "SHOW TimeZone")
    msgs = r.sync()
    assert types_of(msgs) == b"31Z"
    # Simple query after extended: the session state is consistent.
    assert data_rows(r.query("SHOW TimeZone")) == [["UTC"]]
    # Binary result format.
    r.parse("", "SELECT 7::int4, true, 'x'")
    r.bind("", "", (), (1,))
    r.execute("")
    msgs = r.sync()
    row = next(p for t, p in msgs if t == b"D")
    assert row == struct.pack("!hi", 3, 4) + struct.pack("!i", 7) + struct.pack("!i", 1) \
        + b"\x01" + struct.pack("!i", 1) + b"x"
    r.close()


def test_pipelined_messages_one_round_trip(server):
    """Several Parse/Bind/Execute/Sync in one packet all get answered."""
    r = raw(server)
    batch = b""
    for i in range(50):
        q = f"SELECT {i}".encode() + b"\0"
        batch += b"P" + struct.pack("!i", len(q) + 7) + b"\0" + q + b"\0\0"
        batch += b"B" + struct.pack("!i", 12) + b"\0\0\0\0\0\0\0\0"
        batch += b"E" + struct.pack("!i", 9) + b"\0\0\0\0\0"
    batch += b"S\0\0\0\x04"
    r.sock.sendall(batch)
    msgs = r.until(b"Z")
    assert data_rows(msgs) == [[str(i)] for i in range(50)]
    r.close()


# -- protocol violations and start-up --------------------------------------------------------------


def test_garbage_does_not_disturb_other_sessions(server):
    with connect(server) as conn:
        for junk in (b"\x00\x00\x00\x02garbage", struct.pack("!ii", 100000, 196608),
                     b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\xff" * 64):
            s = socket.create_connection((server.host, server.port))
            s.sendall(junk)
            s.settimeout(10)
            assert s.recv(100) == b""  # closed without a reply
            s.close()
        r = raw(server)
        r.sock.sendall(b"Q\x7f\xff\xff\xff")  # an impossible length: refused before reading
        assert r.sock.recv(100) == b""
        r.close()
        r = raw(server)
        r.sock.sendall(b"Q\x00\x00\x00\x10sel")  # EOF in the middle of a message
        r.sock.shutdown(socket.SHUT_WR)
        assert r.sock.recv(100) == b""
        r.close()
        assert conn.execute("SHOW TimeZone").fetchone() == ("UTC",)
    assert wait_until(lambda: "incomplete message from client" in server.log_text())
    log = server.log_text()
    assert "LOG:  invalid length of startup packet" in log
    assert "LOG:  invalid message length" in log


def test_unknown_message_type_is_fatal(server):
    r = raw(server)
    r.send(b"Z")
    msgs = r.until(b"Z")
    err = errors(msgs)[0]
    assert (err["S"], err["C"], err["M"]) == ("FATAL", "08P01", "invalid frontend message type 90")
    with pytest.raises(EOFError):
        r.msg()
    r.close()


@pytest.mark.parametrize("params,code,message", [
    ({"user": "nobody_here"}, "28000", 'role "nobody_here" does not exist'),
    ({"database": "nodb"}, "3D000", 'database "nodb" does not exist'),
    ({"database": "template0"}, "55000",
     'database "template0" is not currently accepting connections'),
    ({"options": "-c no_such_param=1"}, "42704",
     'unrecognized configuration parameter "no_such_param"'),
    ({"options": "-c lock_timeout=x"}, "22023", 'invalid value for parameter "lock_timeout": "x"'),
    ({"lock_timeout": "x"}, "22023", 'invalid value for parameter "lock_timeout": "x"'),
])
def test_startup_refusals(server, params, code, message):
    startup = {"user": server.user, "database": "postgres", **params}
    r = Raw((server.host, server.port), server.user, startup=False)
    msgs = r.startup(**startup)
    err = errors(msgs)[0]
    assert (err["S"], err["C"], err["M"]) == ("FATAL", code, message)
    assert f"FATAL:  {message}" in server.log_text()
    if "lock_timeout" in params:
        return  # libpq cannot send arbitrary startup keys
    with pytest.raises(psycopg.OperationalError) as exc:
        psycopg.connect(host=server.host, port=server.port, connect_timeout=10,
                        user=startup["user"], dbname=startup["database"],
                        **{k: v for k, v in params.items() if k == "options"})
    assert f"FATAL:  {message}" in str(exc.value)


def test_startup_options_and_protocol_version(server):
    with connect(server, options="-c lock_timeout=5s --statement-timeout=3s",
                 application_name="opts") as conn:
        assert conn.execute("SHOW lock_timeout").fetchone() == ("5s",)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("3s",)
        assert conn.execute("SHOW application_name").fetchone() == ("opts",)
    s = socket.create_connection((server.host, server.port))
    s.sendall(struct.pack("!ii", 8, 2 << 16))
    s.settimeout(10)
    reply = s.recv(1000)
    assert reply[:1] == b"E" and fields(reply[5:])["M"] == \
        "unsupported frontend protocol 2.0: server supports 3.0 to 3.0"
    s.close()


def test_ssl_request_answered_n(server):
    s = socket.create_connection((server.host, server.port))
    s.settimeout(10)
    s.sendall(struct.pack("!ii", 8, 80877103))
    assert s.recv(10) == b"N"
    r = Raw((server.host, server.port), server.user, startup=False)
    r.sock.close()
    r.sock = s
    msgs = r.startup(user=server.user, database="postgres")
    assert msgs[0] == (b"R", b"\0\0\0\0") and msgs[-1] == (b"Z", b"I")
    r.close()
    with psycopg.connect(server.dsn, sslmode="prefer", connect_timeout=10) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_unix_socket_and_process_titles(server):
    with psycopg.connect(host=server.socket_dir, port=server.port, user=server.user,
                         dbname="postgres", autocommit=True) as conn:
        pid = conn.info.backend_pid
        assert title_of(pid) == f"tusk: {server.user} postgres [local] idle"
    with connect(server, autocommit=False) as conn:
        pid = conn.info.backend_pid
        assert title_of(pid) == f"tusk: {server.user} postgres 127.0.0.1({local_port(conn)}) idle"
        conn.execute("SHOW TimeZone")
        assert title_of(pid).endswith(") idle in transaction")
        with pytest.raises(psycopg.Error):
            conn.execute("selec")
        assert title_of(pid).endswith(") idle in transaction (aborted)")
        conn.rollback()
        conn.autocommit = True
        t = threading.Thread(target=conn.execute, args=("SELECT pg_sleep(1)",))
        t.start()
        assert wait_until(lambda: title_of(pid).endswith(") SELECT"), 5)
        t.join()
        assert title_of(pid).endswith(") idle")
        conn.execute("SET update_process_title = off")  # the title keeps its last state
        conn.execute("BEGIN")
        assert title_of(pid).endswith(") SET")


# -- cancel and signals --------------------------------------------------------------------------


def test_cancel_request(server):
    with connect(server) as conn, connect(server) as other:
        pid = conn.info.backend_pid
        s = socket.create_connection((server.host, server.port))
        s.sendall(struct.pack("!iiii", 16, 80877102, pid, 12345))  # wrong key
        s.settimeout(10)
        assert s.recv(10) == b""
        s.close()
        assert wait_until(lambda: f"wrong key in cancel request for process {pid}"
                          in server.log_text())
        assert conn.execute("SELECT 1").fetchone() == (1,)

        def cancel_soon() -> None:
            time.sleep(0.5)
            conn.cancel()

        threading.Thread(target=cancel_soon).start()
        t0 = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled) as exc:
            conn.execute("SELECT pg_sleep(5)")
        assert time.monotonic() - t0 < 4
        assert exc.value.diag.message_primary == "canceling statement due to user request"
        assert conn.execute("SHOW TimeZone").fetchone() == ("UTC",)
        assert other.execute("SELECT 2").fetchone() == (2,)


def test_statement_timeout(server):
    with connect(server) as conn:
        conn.execute("SET statement_timeout = 200")
        with pytest.raises(psycopg.errors.QueryCanceled) as exc:
            conn.execute("SELECT pg_sleep(5)")
        assert exc.value.diag.message_primary == "canceling statement due to statement timeout"


def test_sigterm_ends_only_that_session(make_server):
    server = make_server(log_min_messages="debug2")
    with connect(server) as victim, connect(server) as bystander:
        pid = victim.info.backend_pid
        os.kill(pid, signal.SIGTERM)
        assert wait_until(lambda: not psutil.pid_exists(pid)
                          or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
        with pytest.raises(psycopg.OperationalError) as exc:
            victim.execute("SELECT 1")
        assert "terminating connection due to administrator command" in str(exc.value)
        assert wait_until(lambda: f"(PID {pid}) exited with exit code 1" in server.log_text())
        assert bystander.execute("SELECT 1").fetchone() == (1,)
    # During a statement, too.
    with connect(server) as conn:
        pid = conn.info.backend_pid
        threading.Timer(0.3, os.kill, (pid, signal.SIGTERM)).start()
        t0 = time.monotonic()
        with pytest.raises(psycopg.errors.AdminShutdown):
            conn.execute("SELECT pg_sleep(5)")
        assert time.monotonic() - t0 < 4
    with connect(server) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert server.proc.poll() is None


def test_sighup_reloads_idle_session(server):
    with connect(server) as conn:
        server.set_conf({"lock_timeout": "4s"})
        server.reload()
        assert wait_until(lambda: conn.execute("SHOW lock_timeout").fetchone() == ("4s",))


def test_too_many_connections(make_server):
    server = make_server(max_connections=3, superuser_reserved_connections=1)
    conns = []
    try:
        with pytest.raises(psycopg.OperationalError) as exc:
            for _ in range(10):
                conns.append(connect(server))
        assert "sorry, too many clients already" in str(exc.value)
        assert len(conns) == 3
        conns.pop().close()
        assert wait_until(lambda: _can_connect(server))
    finally:
        for c in conns:
            c.close()


def _can_connect(server) -> bool:
    try:
        connect(server).close()
        return True
    except psycopg.OperationalError:
        return False


def test_log_connections_and_disconnections(make_server):
    server = make_server(log_connections=True, log_disconnections=True)
    with connect(server, application_name="logtest") as conn:
        port = local_port(conn)
        conn.execute("SELECT 1")
    assert wait_until(lambda: "disconnection: session time: " in server.log_text())
    log = server.log_text()
    assert f"LOG:  connection received: host=127.0.0.1 port={port}" in log
    assert (f"LOG:  connection authorized: user={server.user} database=postgres "
            "application_name=logtest") in log
    line = next(ln for ln in log.splitlines() if "disconnection: session time:" in ln)
    assert line.endswith(f"user={server.user} database=postgres host=127.0.0.1 port={port}")
    psycopg.connect(host=server.socket_dir, port=server.port, user=server.user,
                    dbname="postgres").close()
    assert wait_until(lambda: "connection received: host=[local]\n" in server.log_text())


def test_eof_in_transaction_is_logged(server):
    r = raw(server)
    assert r.query("BEGIN")[-1] == (b"Z", b"T")
    r.close()
    assert wait_until(lambda: "unexpected EOF on client connection with an open transaction"
                      in server.log_text())


def _notices(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    seen: list[tuple[str, str, str]] = []
    conn.add_notice_handler(lambda d: seen.append((d.severity, d.sqlstate, d.message_primary)))
    return seen


def test_quickdie_tells_client_why(server):
    """SIGQUIT from the postmaster: a WARNING (as PostgreSQL 14+ sends) and exit 2."""
    victim, other = connect(server), connect(server)
    seen = _notices(other)
    os.kill(victim.info.backend_pid, signal.SIGKILL)
    server.wait_for_log("all server processes terminated; reinitializing")
    with pytest.raises(psycopg.OperationalError):
        other.execute("SELECT 1")
    assert seen == [("WARNING", "57P02",
                     "terminating connection because of crash of another server process")]
    server.wait_ready()
    conn = connect(server)
    seen = _notices(conn)
    server.stop("immediate")
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    assert seen == [("WARNING", "57P01",
                     "terminating connection due to immediate shutdown command")]


def test_postmaster_death_ends_sessions(server):
    conn = connect(server)
    pid = conn.info.backend_pid
    server.signal(signal.SIGKILL)
    server.proc.wait(5)
    assert wait_until(lambda: not psutil.pid_exists(pid)
                      or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    with pytest.raises(psycopg.OperationalError) as exc:
        conn.execute("SELECT 1")
    assert "terminating connection due to unexpected postmaster exit" in str(exc.value)
    server.start()  # cleans up the dead cluster's shared memory


def test_authentication_timeout(make_server):
    server = make_server(authentication_timeout=1)
    s = socket.create_connection((server.host, server.port))
    s.settimeout(10)
    t0 = time.monotonic()
    assert s.recv(10) == b""  # closed silently once the startup packet is overdue
    assert 0.8 < time.monotonic() - t0 < 5
    s.close()
    with connect(server) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
