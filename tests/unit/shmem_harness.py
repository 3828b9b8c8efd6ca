"""Shared memory for unit tests, made as the postmaster makes it.

``FakeSettings`` answers like the server's settings: the values a test gives,
else PostgreSQL's defaults from the GUC table. ``Harness`` creates a segment
with every subsystem (shmem.ipci), sets up a data directory, attaches the
test process like a postmaster child, and removes everything at the end —
the segment's name is registered for the suite's leak check.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path

from conf.guc import Settings
from procs.postinit import init_process
from shmem import ipci, lwlock
from shmem.proc import BackendType
from shmem.segment import remove_segment
from storage import bufmgr, fd, smgr, sync
from tests.cluster import TEST_RUN_MARK

REGISTRY = Path(tempfile.gettempdir()) / f"tusk-test-segments-{TEST_RUN_MARK}"
TEST_DEFAULTS = {"max_connections": 12, "shared_buffers": 16, "wal_buffers": 8}


class FakeSettings:
    def __init__(self, **values: object) -> None:
        self.values = {**TEST_DEFAULTS, **values}
        self._defaults = Settings()

    def get(self, name: str) -> object:
        if name in self.values:
            return self.values[name]
        return self._defaults.get(name)


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.datadir = tmp_path / "data"
        for sub in ("base/5", "pg_wal", "pg_xact", "global"):
            (self.datadir / sub).mkdir(parents=True, exist_ok=True)
        fd.set_data_directory(str(self.datadir))
        self.name = f"/tusk.test.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        with open(REGISTRY, "a") as f:
            f.write(self.name + "\n")
        self.seg = None
        self.settings: FakeSettings | None = None

    def make(self, **values: object):
        """Create the segment and attach this process; returns (settings, segment)."""
        self.settings = FakeSettings(**values)
        self.seg = ipci.create_shared_memory_and_semaphores(self.name, self.settings)
        init_process(self.seg, self.settings, BackendType.B_BACKEND, is_superuser=True)
        return self.settings, self.seg

    def close(self) -> None:
        from access import xlog

        try:
            bufmgr.at_error_cleanup()
            lwlock.proc_exit()
        finally:
            xlog.close_log_file()
            smgr.smgr_close_all()
            fd.configure_fault_injection(None)
            sync.reset()
            sync.set_forward_hook(None)
            bufmgr._pool = None
            smgr.drop_rel_buffers_hook = smgr.drop_rel_all_buffers_hook = None
            ipci.detach_shared_memory()
            if self.seg is not None:
                self.seg.destroy()
            remove_segment(self.name)
            fd.set_data_directory(None)


def fork_worker(fn: Callable[..., None], *args: object, alarm: int = 60) -> int:
    """Fork a worker running fn(*args); it exits 0, or 1 with its traceback, and is
    killed by SIGALRM after ``alarm`` seconds."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            signal.alarm(alarm)
            fn(*args)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def wait_workers(pids: list[int], timeout: float = 90) -> None:
    """Reap the workers; kill any still running after ``timeout`` and fail."""
    deadline = time.monotonic() + timeout
    pending = set(pids)
    failed = []
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                pending.discard(pid)
                code = os.waitstatus_to_exitcode(status)
                if code != 0:
                    # A negative code is the signal that killed the worker.
                    failed.append((pid, code))
        time.sleep(0.005)
    for pid in pending:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert not pending, "workers did not finish"
    assert not failed, f"workers {failed} failed"
