"""Wire format and buffered I/O without a server: libpq.pqformat, libpq.pqcomm (over a
socketpair) and the statement compiler of tcop.utility."""

from __future__ import annotations

import socket
import struct
import threading
from decimal import Decimal

import pytest

from conf.guc import Settings
from libpq import pqcomm
from libpq import pqformat as pqf
from tcop import utility
from tcop.postgres import MESSAGE_LIMITS
from utils.elog import PgError


def msg(mtype: bytes, payload: bytes = b"") -> bytes:
    return mtype + struct.pack("!i", len(payload) + 4) + payload


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield pqcomm.Port(a), b
    a.close()
    b.close()


class CountingSocket:
    """Wraps a socket to count recv calls."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.recvs = 0

    def recv(self, n: int) -> bytes:
        self.recvs += 1
        return self.sock.recv(n)

    def __getattr__(self, name: str):
        return getattr(self.sock, name)


# -- builders ----------------------------------------------------------------------------------


def test_fixed_messages():
    assert pqf.AUTHENTICATION_OK == b"R\0\0\0\x08\0\0\0\0"
    assert pqf.READY_FOR_QUERY[b"T"] == b"Z\0\0\0\x05T"
    assert pqf.PARSE_COMPLETE == b"1\0\0\0\x04"
    assert pqf.EMPTY_QUERY_RESPONSE == b"I\0\0\0\x04"


def test_builders():
    assert pqf.parameter_status("TimeZone", "UTC") == msg(b"S", b"TimeZone\0UTC\0")
    assert pqf.backend_key_data(42, 0xFFFFFFFF) == msg(b"K", struct.pack("!iI", 42, 0xFFFFFFFF))
    assert pqf.command_complete("SELECT 1") == msg(b"C", b"SELECT 1\0")
    assert pqf.data_row([b"ab", None, b""]) == msg(
        b"D", struct.pack("!h", 3) + struct.pack("!i", 2) + b"ab" + struct.pack("!i", -1)
        + struct.pack("!i", 0))
    rd = pqf.row_description([("x", pqf.INT4OID), ("y", pqf.TEXTOID)], (1,))
    assert rd == msg(b"T", struct.pack("!h", 2) + b"x\0" + struct.pack("!ihihih", 0, 0, 23, 4, -1, 1)
                     + b"y\0" + struct.pack("!ihihih", 0, 0, 25, -1, -1, 1))
    assert pqf.parameter_description([25, 23]) == msg(b"t", struct.pack("!hII", 2, 25, 23))


def test_error_response_fields():
    e = pqf.error_response("ERROR", "42601", "syntax error", "d", "h", 7)
    assert e[:1] == b"E"
    assert e[5:] == b"SERROR\0VERROR\0C42601\0Msyntax error\0Dd\0Hh\0P7\0\0"
    n = pqf.notice_response("WARNING", "25P01", "there is no transaction in progress")
    assert n[5:] == (b"SWARNING\0VWARNING\0C25P01\0M"
                     b"there is no transaction in progress\0\0")


# -- decoders ----------------------------------------------------------------------------------


def test_decoders():
    assert pqf.decode_query(b"SELECT 1\0") == "SELECT 1"
    parse = b"s1\0SELECT $1\0" + struct.pack("!hI", 1, 23)
    assert pqf.decode_parse(parse) == ("s1", "SELECT $1", [23])
    bind = (b"p\0s\0" + struct.pack("!hh", 1, 0) + struct.pack("!h", 2)
            + struct.pack("!i", 1) + b"7" + struct.pack("!i", -1) + struct.pack("!hh", 1, 1))
    assert pqf.decode_bind(bind) == ("p", "s", (0,), [b"7", None], (1,))
    assert pqf.decode_describe_or_close(b"Sname\0") == (ord("S"), "name")
    assert pqf.decode_execute(b"\0" + struct.pack("!i", 10)) == ("", 10)


@pytest.mark.parametrize("payload,message", [
    (b"SELECT 1", "invalid string in message"),
    (b"SELECT 1\0extra", "invalid message format"),
])
def test_decode_query_errors(payload, message):
    with pytest.raises(PgError) as exc:
        pqf.decode_query(payload)
    assert (exc.value.sqlstate, exc.value.message) == ("08P01", message)


def test_decode_bind_truncated():
    with pytest.raises(PgError) as exc:
        pqf.decode_bind(b"p\0s\0" + struct.pack("!hh", 1, 0) + struct.pack("!h", 1)
                        + struct.pack("!i", 100) + b"short")
    assert exc.value.message == "insufficient data left in message"


def test_invalid_utf8():
    with pytest.raises(PgError) as exc:
        pqf.decode_query(b"SELECT '\xc3\x28'\0")
    assert exc.value.sqlstate == "22021"
    assert exc.value.message == 'invalid byte sequence for encoding "UTF8": 0xc3 0x28'


# -- buffered I/O ------------------------------------------------------------------------------


def test_many_messages_one_recv(pair):
    port, peer = pair
    counting = CountingSocket(port.sock)
    port.sock = counting  # type: ignore[assignment]
    peer.sendall(b"".join(msg(b"Q", f"SELECT {i}\0".encode()) for i in range(100))
                 + msg(b"S"))
    got = [port.read_message(MESSAGE_LIMITS) for _ in range(101)]
    assert got[0] == (ord("Q"), b"SELECT 0\0") and got[-1] == (ord("S"), b"")
    assert counting.recvs == 1


def test_message_split_across_sends(pair):
    port, peer = pair
    data = msg(b"Q", b"SELECT 'x'\0")

    def dribble() -> None:
        for i in range(len(data)):
            peer.send(data[i:i + 1])

    t = threading.Thread(target=dribble)
    t.start()
    assert port.read_message(MESSAGE_LIMITS) == (ord("Q"), b"SELECT 'x'\0")
    t.join()


def test_large_message(pair):
    port, peer = pair
    big = b"x" * 3_000_000 + b"\0"
    t = threading.Thread(target=peer.sendall, args=(msg(b"Q", big),))
    t.start()
    assert port.read_message(MESSAGE_LIMITS) == (ord("Q"), big)
    t.join()


def test_unknown_type_returned_without_reading_length(pair):
    port, peer = pair
    peer.sendall(b"Z")
    assert port.read_message(MESSAGE_LIMITS) == (ord("Z"), b"")


@pytest.mark.parametrize("data,log", [
    (b"Q\0\0\0\x02", "invalid message length"),
    (b"S\0\0\x27\x12", "invalid message length"),  # 10002 > PQ_SMALL_MESSAGE_LIMIT
    (b"Q\x7f\xff\xff\xff", "invalid message length"),
    (b"Q\0\0", "unexpected EOF within message length word"),
    (b"Q\0\0\0\x20abc", "incomplete message from client"),
])
def test_bad_lengths(pair, monkeypatch, data, log):
    port, peer = pair
    logged = []
    monkeypatch.setattr(pqcomm, "_log_commerror", lambda m, s="08P01": logged.append(m))
    peer.sendall(data)
    peer.shutdown(socket.SHUT_WR)
    with pytest.raises(pqcomm.ConnectionLost):
        port.read_message(MESSAGE_LIMITS)
    assert logged == [log]


def test_clean_eof(pair):
    port, peer = pair
    peer.close()
    with pytest.raises(pqcomm.ClientEOF):
        port.read_message(MESSAGE_LIMITS)


def test_startup_packet(pair, monkeypatch):
    port, peer = pair
    logged = []
    monkeypatch.setattr(pqcomm, "_log_commerror", lambda m, s="08P01": logged.append(m))
    body = struct.pack("!i", 196608) + b"user\0u\0\0"
    peer.sendall(struct.pack("!i", len(body) + 4) + body)
    assert port.read_startup_packet(False) == body
    peer.sendall(struct.pack("!i", 100_000))
    assert port.read_startup_packet(False) is None
    assert logged == ["invalid length of startup packet"]


def test_send_buffered_until_flush(pair):
    port, peer = pair
    port.send(pqf.command_complete("SET"))
    port.send(pqf.READY_FOR_QUERY[b"I"])
    peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        peer.recv(100)
    port.flush()
    peer.setblocking(True)
    assert peer.recv(100) == pqf.command_complete("SET") + pqf.READY_FOR_QUERY[b"I"]


def test_flush_to_closed_peer(pair, monkeypatch):
    port, peer = pair
    monkeypatch.setattr(pqcomm, "_log_commerror", lambda m, s="08P01": None)
    peer.close()
    port.send(b"x" * 10)
    with pytest.raises(pqcomm.ConnectionLost):
        port.flush()
    assert port.broken


# -- statements --------------------------------------------------------------------------------


@pytest.fixture
def session():
    s = Settings()
    return utility.Session(s, utility.TransactionBlock(s), "alice", "db", 4242)


def run(session, sql, params=(), types=None):
    out = []
    for st in utility.compile_query(sql, types):
        session.xact.start_command()
        try:
            rows, tag = st.run(session, params)
            out.append(([tuple(r) for r in rows], tag))
        finally:
            session.xact.commit_command()
    return out


def test_set_show_reset(session):
    assert run(session, "SET lock_timeout = 250; SHOW lock_timeout") == [
        ([], "SET"), ([("250ms",)], "SHOW")]
    assert run(session, "SET search_path = '$user', public, \"A b\"; SHOW search_path")[1] == \
        ([('"$user", public, "A b"',)], "SHOW")
    assert run(session, "SET extra_float_digits = -3; SHOW extra_float_digits")[1][0] == [("-3",)]
    assert run(session, "RESET lock_timeout; SHOW lock_timeout")[1][0] == [("0",)]
    st = utility.compile_query("SHOW timezone")[0]
    assert st.columns[0].name == "TimeZone"


def test_unsupported_and_syntax_errors():
    st = utility.compile_query("CREATE VIEW v AS SELECT 1")[0]
    with pytest.raises(PgError) as exc:
        st.run(None, ())  # type: ignore[arg-type]
    assert (exc.value.sqlstate, exc.value.message) == ("0A000", '"CREATE VIEW" is not supported yet')
    with pytest.raises(PgError) as exc:
        utility.compile_query("SELECT 'éé' FROM FROM")
    assert (exc.value.sqlstate, exc.value.position) == ("42601", 18)
    with pytest.raises(PgError) as exc:
        utility.compile_query("SELECT 1 +")
    assert exc.value.position == 11


@pytest.mark.parametrize("sql,tag", [
    ("DROP INDEX i", "DROP INDEX"), ("ALTER TABLE t ADD b int", "ALTER TABLE"),
    ("CREATE MATERIALIZED VIEW v AS SELECT 1", "CREATE MATERIALIZED VIEW"),
    ("ANALYZE", "ANALYZE"), ("GRANT SELECT ON t TO u", "GRANT"), ("TRUNCATE t", "TRUNCATE TABLE"),
    ("ALTER TABLE t RENAME COLUMN a TO b", "ALTER TABLE"), ("CREATE USER u", "CREATE USER"),
    ("SELECT 1 INTO t", "SELECT"), ("CLOSE ALL", "CLOSE CURSOR ALL"),
])
def test_command_tags(sql, tag):
    assert utility.compile_query(sql)[0].tag == tag


def test_select_functions_and_params(session):
    [(rows, tag)] = run(session, "SELECT current_setting($1), $2::int4", ["DateStyle", 5],
                        [0, 0])
    assert rows == [("ISO, MDY", 5)] and tag == "SELECT 1"
    st = utility.compile_query("SELECT set_config($1, $2, $3)", [0, 0, 0])[0]
    assert st.param_types == [pqf.TEXTOID, pqf.TEXTOID, pqf.BOOLOID]
    [(rows, _)] = run(session, "SELECT -5, 2.5, 99999999999, 'x', NULL, current_user")
    assert rows == [(-5, Decimal("2.5"), 99999999999, "x", None, "alice")]


def test_transaction_block_states(session):
    x = session.xact
    run(session, "BEGIN")
    assert x.status == b"T"
    x.abort_current()
    assert x.status == b"E"
    assert run(session, "COMMIT") == [([], "ROLLBACK")]
    assert x.status == b"I"


@pytest.mark.parametrize("value", ["0", "0.00", "0.0001", "1.50", "-12345.678", "1000", "1e10",
                                   "123456789.000000001", "NaN"])
def test_numeric_binary_roundtrip(value):
    d = Decimal(value)
    back = utility.numeric_recv(utility.numeric_send(d))
    assert str(back) == str(d) or (d.is_nan() and back.is_nan()) or back == d


def test_numeric_send_matches_postgresql():
    # Bytes of PostgreSQL 15's numeric_send for the same values.
    assert utility.numeric_send(Decimal("0.0001")).hex() == "0001ffff000000040001"
    assert utility.numeric_send(Decimal("1e10")).hex() == "00010002000000000064"
    assert utility.numeric_send(Decimal("-0.5")).hex() == "0001ffff400000011388"
