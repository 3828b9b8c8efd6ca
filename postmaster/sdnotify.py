"""sd_notify(3) in plain Python: tell systemd how the postmaster is doing.

Mirrors the ``sd_notify()`` calls PostgreSQL's postmaster makes when built
``--with-systemd`` (src/backend/postmaster/postmaster.c):

- ``READY=1`` (with ``STATUS=``) once the server accepts connections, and again
  after a configuration reload has been processed;
- ``RELOADING=1`` when SIGHUP arrives (PostgreSQL 16 adds this);
- ``STOPPING=1`` when a shutdown request arrives.

Differences from PostgreSQL: no libsystemd is needed (the protocol is one
datagram of ``KEY=VALUE`` lines sent to the AF_UNIX socket named by
``$NOTIFY_SOCKET``), and ``RELOADING=1`` carries ``MONOTONIC_USEC=`` as
systemd >= 253 expects for ``Type=notify-reload``.

Every function returns False, silently, when ``$NOTIFY_SOCKET`` is unset or
unusable or the send fails: notification is best effort and must never stop
the server. ``$NOTIFY_SOCKET`` is left in the environment; children of the
postmaster are forked without exec and simply never call these functions.
The socket is opened lazily, once per process: after a fork the child opens
its own instead of sharing the parent's.
"""

from __future__ import annotations

import os
import socket
import time

_sock: socket.socket | None = None
_sock_pid: int = 0


def _address(value: str) -> str | bytes | None:
    """Translate $NOTIFY_SOCKET into a sendto() address, or None if unsupported."""
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode()  # Linux abstract namespace
    return None  # relative paths are rejected by libsystemd too; vsock: is not supported


def _socket() -> socket.socket:
    """The module's datagram socket, (re)opened if this process has not opened one yet."""
    global _sock, _sock_pid
    pid = os.getpid()
    if _sock is None or _sock_pid != pid:
        if _sock is not None:
            # Inherited through fork: closing our copy leaves the parent's intact.
            try:
                _sock.close()
            except OSError:
                pass
        _sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        _sock_pid = pid
    return _sock


def _one_line(text: str) -> str:
    """A newline would end the STATUS= value and start a bogus assignment."""
    return " ".join(text.splitlines())


def notify(*lines: str) -> bool:
    """Send ``lines`` (each ``KEY=VALUE``) as one datagram; True if it was sent."""
    value = os.environ.get("NOTIFY_SOCKET")
    if not value or not lines:
        return False
    address = _address(value)
    if address is None:
        return False
    payload = "\n".join(lines).encode(errors="replace")
    try:
        _socket().sendto(payload, address)
    except OSError:
        return False
    return True


def notify_ready(status: str | None = "ready to accept connections") -> bool:
    """``READY=1``: startup (or a reload) is complete; ``status`` goes in ``STATUS=``."""
    if status is None:
        return notify("READY=1")
    return notify("READY=1", f"STATUS={_one_line(status)}")


def notify_reloading() -> bool:
    """``RELOADING=1`` with the CLOCK_MONOTONIC time in µs; follow with notify_ready()."""
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return notify("RELOADING=1", f"MONOTONIC_USEC={usec}")


def notify_stopping() -> bool:
    """``STOPPING=1``: a shutdown request has been received."""
    return notify("STOPPING=1")


def notify_status(text: str) -> bool:
    """``STATUS=text``: free-form status shown by ``systemctl status``."""
    return notify(f"STATUS={_one_line(text)}")
