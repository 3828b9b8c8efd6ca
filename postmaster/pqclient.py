"""A minimal frontend of the PostgreSQL v3 protocol, for tusk_ctl verbs that
must ask the running server something in SQL (``verify``) — the part of
libpq's fe-connect.c / fe-exec.c they need: a startup packet with trust
authentication (the only kind tusk has), then simple queries whose results come
back as text.

The runtime has no client library (psycopg is a test dependency only), and
running psql would add a dependency on its output format; this is 100 lines.
"""

from __future__ import annotations

import os
import socket
import struct

PROTOCOL_VERSION = 196608  # 3.0
_HEADER = struct.Struct("!cI")
_I16 = struct.Struct("!h")
_I32 = struct.Struct("!i")


class ServerError(Exception):
    """An ErrorResponse: its fields by code (S, C, M, D, H, ...)."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(fields.get("M", "error"))
        self.fields = fields

    @property
    def sqlstate(self) -> str:
        return self.fields.get("C", "")

    @property
    def message(self) -> str:
        return self.fields.get("M", "")

    @property
    def detail(self) -> str | None:
        return self.fields.get("D")


def _fields(body: bytes) -> dict[str, str]:
    out = {}
    for part in body.split(b"\0"):
        if part:
            out[chr(part[0])] = part[1:].decode(errors="replace")
    return out


class Connection:
    """One session: ``query(sql)`` returns the rows of a simple query (text
    values, None for NULL) or raises ServerError."""

    def __init__(self, sock: socket.socket, user: str, database: str) -> None:
        self.sock = sock
        self.buf = b""
        params = b"".join(k.encode() + b"\0" + v.encode() + b"\0"
                          for k, v in (("user", user), ("database", database),
                                       ("application_name", "tusk_ctl")))
        body = _I32.pack(PROTOCOL_VERSION) + params + b"\0"
        sock.sendall(_I32.pack(len(body) + 4) + body)
        while True:
            kind, msg = self._read()
            if kind == b"R" and _I32.unpack_from(msg)[0] != 0:
                raise ServerError({"M": "the server asks for a password; tusk_ctl "
                                        "only does trust authentication"})
            if kind == b"E":
                raise ServerError(_fields(msg))
            if kind == b"Z":
                return

    @classmethod
    def connect(cls, socket_dir: str | None, host: str | None, port: int, user: str,
                database: str, timeout: float = 30) -> Connection:
        if socket_dir:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(os.path.join(socket_dir, f".s.PGSQL.{port}"))
        else:
            s = socket.create_connection((host or "localhost", port), timeout)
        s.settimeout(None)  # a check may run for long
        try:
            return cls(s, user, database)
        except BaseException:
            s.close()
            raise

    def _read(self) -> tuple[bytes, bytes]:
        while len(self.buf) < 5 or len(self.buf) < 1 + _I32.unpack_from(self.buf, 1)[0]:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ServerError({"M": "server closed the connection unexpectedly"})
            self.buf += chunk
        kind, length = _HEADER.unpack_from(self.buf)
        msg, self.buf = self.buf[5:1 + length], self.buf[1 + length:]
        return kind, msg

    def query(self, sql: str) -> list[tuple[str | None, ...]]:
        body = sql.encode() + b"\0"
        self.sock.sendall(b"Q" + _I32.pack(len(body) + 4) + body)
        rows: list[tuple[str | None, ...]] = []
        error = None
        while True:
            kind, msg = self._read()
            if kind == b"D":
                n = _I16.unpack_from(msg)[0]
                pos, row = 2, []
                for _ in range(n):
                    size = _I32.unpack_from(msg, pos)[0]
                    pos += 4
                    if size < 0:
                        row.append(None)
                    else:
                        row.append(msg[pos:pos + size].decode())
                        pos += size
                rows.append(tuple(row))
            elif kind == b"E":
                error = ServerError(_fields(msg))
            elif kind == b"Z":
                if error is not None:
                    raise error
                return rows

    def close(self) -> None:
        try:
            self.sock.sendall(b"X" + _I32.pack(4))
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_text_array(value: str) -> list[str]:
    """The elements of a one-dimensional text[] in its output form
    (array_out: {a,"b c","d\\"e"}); NULL elements are not expected here."""
    inner = value[1:-1]
    out: list[str] = []
    i, n = 0, len(inner)
    while i < n:
        if inner[i] == '"':
            i += 1
            cur = []
            while inner[i] != '"':
                if inner[i] == "\\":
                    i += 1
                cur.append(inner[i])
                i += 1
            i += 1
            out.append("".join(cur))
        else:
            j = inner.find(",", i)
            j = n if j < 0 else j
            out.append(inner[i:j])
            i = j
        i += 1  # the comma
    return out
