"""pg_cancel_backend and pg_terminate_backend — mirrors
src/backend/storage/ipc/signalfuncs.c (pg_signal_backend, pg_wait_until_termination).

The target must be a client backend or auxiliary process of this cluster (its
PGPROC slot says so); a superuser may signal anyone but another superuser's
session needs superuser rights, as in PostgreSQL. Cancel is SIGINT (the
backend's StatementCancelHandler), terminate is SIGTERM (die). A pid that is
not a server process only gets a WARNING and false.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from shmem.proc import BackendType
from utils import elog
from utils.elog import PgError


def _find(pid: int) -> tuple[BackendType, bool] | None:
    """The backend type and superuser flag of the server process ``pid``."""
    from utils import session

    if session.procs is None:
        return None
    for _slot, p, btype, superuser in session.procs.in_use():
        if p == pid:
            return btype, superuser
    return None


def signal_backend(s: Any, pid: int, *, terminate: bool, timeout_ms: int = 0) -> bool:
    """pg_signal_backend: True if the signal was sent."""
    if timeout_ms < 0:
        raise PgError("22023", '"timeout" must not be negative')
    found = _find(pid)
    if found is None:
        elog.warning(f"PID {pid} is not a PostgreSQL backend process")
        return False
    btype, target_superuser = found
    if btype != BackendType.B_BACKEND:
        # BackendPidGetProc finds only client backends.
        elog.warning(f"PID {pid} is not a PostgreSQL backend process")
        return False
    if target_superuser and not s.settings.is_superuser:
        raise PgError("42501", "must be a superuser to terminate superuser process"
                      if terminate else "must be a superuser to cancel superuser query")
    try:
        os.kill(pid, signal.SIGTERM if terminate else signal.SIGINT)
    except ProcessLookupError:
        elog.warning(f"could not send signal to process {pid}: No such process")
        return False
    if terminate and timeout_ms:
        return _wait_until_termination(s, pid, timeout_ms)
    return True


def _wait_until_termination(s: Any, pid: int, timeout_ms: int) -> bool:
    """pg_wait_until_termination: poll every 100 ms until the process is gone."""
    deadline = time.monotonic() + timeout_ms / 1000
    while time.monotonic() < deadline:
        if _find(pid) is None:
            return True
        s.sleep(0.1)
    elog.warning(f"backend with PID {pid} did not terminate within {timeout_ms} milliseconds")
    return False
