"""A stand-in for systemd's notification socket, for tests.

Binds the AF_UNIX datagram socket that systemd would pass in $NOTIFY_SOCKET
(see postmaster/sdnotify.py) and records what arrives, with the sender's PID
from SCM_CREDENTIALS, so a test can check e.g. that READY=1 came from the
postmaster itself (systemd's NotifyAccess=main drops anything else).

    with NotifyListener() as listener:
        env = {**os.environ, "NOTIFY_SOCKET": listener.path}
        ...start tusk with env...
        listener.wait_for("READY=1", timeout=30)
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import struct
import tempfile
import time
from collections.abc import Callable

Predicate = Callable[[list[str]], bool]

_UCRED = struct.Struct("iII")  # pid, uid, gid


class NotifyListener:
    """Receives sd_notify datagrams at ``.path`` (a file path, or ``@name`` if abstract)."""

    def __init__(self, abstract: bool = False) -> None:
        self._dir = tempfile.mkdtemp(prefix="tusk-notify-")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        if abstract:
            name = f"tusk-notify-{os.getpid()}-{os.path.basename(self._dir)}"
            self._sock.bind(b"\0" + name.encode())
            self.path = "@" + name
        else:
            self.path = os.path.join(self._dir, "notify")
            self._sock.bind(self.path)
        self._sock.setblocking(False)
        self._messages: list[list[str]] = []
        self._pids: list[int] = []

    def _drain(self, timeout: float = 0.0) -> None:
        """Receive every datagram already queued, waiting up to ``timeout`` for the first."""
        select.select([self._sock], [], [], max(timeout, 0.0))
        while True:
            try:
                data, ancdata, _, _ = self._sock.recvmsg(65536, socket.CMSG_SPACE(_UCRED.size))
            except BlockingIOError:
                return
            pid = 0
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = _UCRED.unpack_from(payload)[0]
            self._messages.append(data.decode(errors="replace").splitlines())
            self._pids.append(pid)

    def messages(self) -> list[list[str]]:
        """Every datagram received so far, oldest first, each as its list of lines."""
        self._drain()
        return [list(m) for m in self._messages]

    def pids(self) -> list[int]:
        """The sender PID of each message in messages(), same order."""
        self._drain()
        return list(self._pids)

    def wait_for(
        self, predicate_or_line: Predicate | str, timeout: float = 30.0, start: int = 0
    ) -> list[str]:
        """The first message at index >= ``start`` that matches; TimeoutError if none arrives.

        A string matches a message containing exactly that line (e.g. ``"READY=1"``).
        """
        if isinstance(predicate_or_line, str):
            line = predicate_or_line

            def predicate(lines: list[str]) -> bool:
                return line in lines
        else:
            predicate = predicate_or_line
        deadline = time.monotonic() + timeout
        index = start
        while True:
            self._drain()
            for message in self._messages[index:]:
                if predicate(message):
                    return list(message)
            index = max(index, len(self._messages))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"no matching notification within {timeout}s; got {self._messages!r}"
                )
            self._drain(min(remaining, 0.5))

    def close(self) -> None:
        self._sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> NotifyListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
