"""Buffered communication with one client — mirrors src/backend/libpq/pqcomm.c
(pq_getbyte / pq_getmessage / pq_putmessage / pq_flush) and be-secure.c's waits.

Reading: one ``recv`` fills a large buffer and ``read_message`` hands out every
complete message already there before it touches the socket again, so a pipeline
of Parse/Bind/Describe/Execute/Sync costs one system call. The socket is
non-blocking: a recv is tried first and only when it would block does the
connection call its ``wait_readable`` hook, which in a backend sleeps on the
latch and the socket (so signals and postmaster death wake it, as
secure_read's WaitEventSet does).

Writing: messages are appended to a send buffer that is flushed when the caller
says so (ReadyForQuery, Flush, an error before exit) or when it grows past
SEND_BUFFER_FLUSH, like PQ_SEND_BUFFER_SIZE, so replies to a whole round trip
leave in one ``send``.

Failures are logged at LOG (PostgreSQL's COMMERROR: server log only) and surface
as ConnectionLost; the backend then exits quietly, as PostgreSQL does.
"""

from __future__ import annotations

import select
import socket
import struct
from collections.abc import Callable

from utils import elog

PQ_SMALL_MESSAGE_LIMIT = 10000
PQ_LARGE_MESSAGE_LIMIT = 0x3FFFFFFE  # MaxAllocSize - 1
MAX_STARTUP_PACKET_LENGTH = 10000
RECV_BUFFER_SIZE = 65536
MAX_RECV_CHUNK = 1 << 20  # never ask recv for more than this at once
SEND_BUFFER_FLUSH = 65536

_LEN = struct.Struct("!i")


class ClientEOF(Exception):
    """The client closed the connection at a message boundary (pq_getbyte's EOF)."""


class ConnectionLost(Exception):
    """The connection is unusable; the reason has already been logged."""


def _log_commerror(message: str, sqlstate: str = "08P01") -> None:
    elog.ereport(elog.LOG, message, sqlstate=sqlstate, to_client=False)


def _wait_readable_default(sock: socket.socket) -> None:
    select.select([sock], [], [])


def _wait_writable_default(sock: socket.socket) -> None:
    select.select([], [sock], [])


class Port:
    """One client connection: the socket plus pqcomm's receive and send buffers.

    ``wait_readable`` / ``wait_writable`` are called when the socket would block;
    they may raise (a FATAL for a pending die interrupt, for instance).
    """

    __slots__ = ("sock", "fd", "_rbuf", "_rpos", "_wbuf", "wait_readable", "wait_writable",
                 "broken")

    def __init__(self, sock: socket.socket,
                 wait_readable: Callable[[socket.socket], None] = _wait_readable_default,
                 wait_writable: Callable[[socket.socket], None] = _wait_writable_default) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        sock.setblocking(False)
        self._rbuf = b""
        self._rpos = 0
        self._wbuf = bytearray()
        self.wait_readable = wait_readable
        self.wait_writable = wait_writable
        self.broken = False  # a send failed: nothing more may be sent

    # -- receiving ---------------------------------------------------------------------------

    def _recv(self, n: int) -> bytes:
        while True:
            try:
                return self.sock.recv(n)
            except BlockingIOError:
                self.wait_readable(self.sock)
            except InterruptedError:
                continue
            except OSError as exc:
                _log_commerror(f"could not receive data from client: {exc.strerror}", "08006")
                return b""

    def _ensure(self, n: int) -> bool:
        """Make at least ``n`` unread bytes available; False on EOF first."""
        have = len(self._rbuf) - self._rpos
        if have >= n:
            return True
        parts = [self._rbuf[self._rpos:]] if have else []
        self._rpos = 0
        try:
            while have < n:
                chunk = self._recv(min(max(RECV_BUFFER_SIZE, n - have), MAX_RECV_CHUNK))
                if not chunk:
                    return False
                parts.append(chunk)
                have += len(chunk)
            return True
        finally:
            self._rbuf = parts[0] if len(parts) == 1 else b"".join(parts)

    def has_buffered_data(self) -> bool:
        return len(self._rbuf) > self._rpos

    def read_message(self, limits: bytes | list[int] | tuple[int, ...]) -> tuple[int, bytes]:
        """The next message as (type byte, payload) — SocketBackend + pq_getmessage.

        ``limits[type]`` is the largest length accepted for that type; 0 marks a type
        the caller does not know: it is returned at once with an empty payload and
        nothing more is read (the caller reports it as FATAL).
        Raises ClientEOF at a clean end of input, ConnectionLost otherwise.
        """
        buf, pos = self._rbuf, self._rpos
        if len(buf) - pos >= 5:
            mtype = buf[pos]
            (length,) = _LEN.unpack_from(buf, pos + 1)
            end = pos + 1 + length
            if end <= len(buf) and 4 <= length <= limits[mtype]:
                self._rpos = end
                return mtype, buf[pos + 5:end]
        return self._read_message_slow(limits)

    def _read_message_slow(self, limits: bytes | list[int] | tuple[int, ...]) -> tuple[int, bytes]:
        """read_message when the buffer lacks a complete message: validate what is there,
        then fill (one recv usually brings the rest, or a whole pipeline)."""
        while True:
            buf, pos = self._rbuf, self._rpos
            avail = len(buf) - pos
            need = 1
            if avail >= 1:
                mtype = buf[pos]
                limit = limits[mtype]
                if limit == 0:
                    self._rpos = pos + 1
                    return mtype, b""
                need = 5
                if avail >= 5:
                    (length,) = _LEN.unpack_from(buf, pos + 1)
                    if length < 4 or length > limit:
                        # Refused before reading the body: the stream cannot be trusted.
                        _log_commerror("invalid message length")
                        raise ConnectionLost
                    need = 1 + length
                    if avail >= need:
                        self._rpos = pos + need
                        return mtype, buf[pos + 5:pos + need]
            if not self._ensure(need):
                if avail == 0:
                    raise ClientEOF
                _log_commerror("unexpected EOF within message length word" if need == 5
                               else "incomplete message from client")
                raise ConnectionLost

    def read_startup_packet(self, after_negotiation: bool) -> bytes | None:
        """The body of a startup-type packet (after its length word), or None after
        logging why not (ProcessStartupPacket's first half).

        A connection closed before sending anything is not logged: monitoring tools
        and refused SSL negotiations do that all the time.
        """
        if not self._ensure(1):
            return None
        if not self._ensure(4):
            if not after_negotiation:
                _log_commerror("incomplete startup packet")
            return None
        (length,) = _LEN.unpack_from(self._rbuf, self._rpos)
        length -= 4
        if length < 4 or length > MAX_STARTUP_PACKET_LENGTH:
            _log_commerror("invalid length of startup packet")
            return None
        if not self._ensure(4 + length):
            _log_commerror("incomplete startup packet")
            return None
        pos = self._rpos + 4
        self._rpos = pos + length
        return self._rbuf[pos:pos + length]

    # -- sending -----------------------------------------------------------------------------

    def send(self, msg: bytes) -> None:
        """Queue one complete message (pq_putmessage)."""
        wbuf = self._wbuf
        wbuf += msg
        if len(wbuf) > SEND_BUFFER_FLUSH:
            self.flush()

    def flush(self) -> None:
        """Send everything queued (pq_flush); ConnectionLost if the client is gone."""
        wbuf = self._wbuf
        if self.broken:
            wbuf.clear()
            raise ConnectionLost
        while wbuf:
            try:
                n = self.sock.send(wbuf)
            except BlockingIOError:
                self.wait_writable(self.sock)
                continue
            except InterruptedError:
                continue
            except OSError as exc:
                self.broken = True
                wbuf.clear()
                _log_commerror(f"could not send data to client: {exc.strerror}", "08006")
                raise ConnectionLost from None
            if n == len(wbuf):
                wbuf.clear()
            else:
                del wbuf[:n]

    def send_nowait(self, msg: bytes) -> None:
        """Best effort for a process about to die: queue ``msg`` and send what the
        socket takes now, without waiting."""
        if self.broken:
            return
        self._wbuf += msg
        try:
            self.sock.send(self._wbuf)
        except OSError:
            pass
        self._wbuf.clear()

    def discard_output(self) -> None:
        self._wbuf.clear()

    def send_byte_now(self, b: bytes) -> bool:
        """Send one unframed byte at once (the answer to SSLRequest)."""
        self._wbuf += b
        try:
            self.flush()
        except ConnectionLost:
            return False
        return True

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
