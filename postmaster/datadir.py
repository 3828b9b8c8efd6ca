"""The data directory and its lock files — mirrors utils/init/miscinit.c
(checkDataDir, CreateLockFile, AddToDataDirLockFile, TouchSocketLockFiles).

postmaster.pid holds PostgreSQL's line layout:

    1 pid   2 data directory   3 start time (epoch)   4 port
    5 first socket directory   6 first listen address
    7 shared memory id         8 status (starting / stopping / ready)

POSIX shared memory has no attach count, so "is the old cluster's segment
still in use?" is answered by ``postmaster.shmlock``: the postmaster takes an
flock on it and every child inherits that open file description across fork.
The lock is released only when the last process of the cluster is gone.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from dataclasses import dataclass

from catalog.pg_control import PG_MAJORVERSION

PID_FILE = "postmaster.pid"
SHM_LOCK_FILE = "postmaster.shmlock"
OPTS_FILE = "postmaster.opts"

LOCK_FILE_LINE_PID = 1
LOCK_FILE_LINE_DATA_DIR = 2
LOCK_FILE_LINE_START_TIME = 3
LOCK_FILE_LINE_PORT = 4
LOCK_FILE_LINE_SOCKET_DIR = 5
LOCK_FILE_LINE_LISTEN_ADDR = 6
LOCK_FILE_LINE_SHMEM_KEY = 7
LOCK_FILE_LINE_PM_STATUS = 8

PM_STATUS_STARTING = "starting"
PM_STATUS_STOPPING = "stopping"
PM_STATUS_READY = "ready   "  # padded to 8 bytes as PostgreSQL does

PG_DIR_MODE_OWNER = 0o700
PG_DIR_MODE_GROUP = 0o750


class DataDirError(Exception):
    """A refusal to use the data directory; ``hint`` as PostgreSQL gives it."""

    def __init__(self, message: str, hint: str | None = None,
                 detail: str | None = None) -> None:
        super().__init__(message)
        self.message, self.hint, self.detail = message, hint, detail


def check_data_dir(datadir: str) -> int:
    """checkDataDir: existence, ownership, permissions and PG_VERSION; returns the mode."""
    try:
        st = os.stat(datadir)
    except FileNotFoundError as exc:
        raise DataDirError(f'data directory "{datadir}" does not exist') from exc
    if not stat.S_ISDIR(st.st_mode):
        raise DataDirError(f'specified data directory "{datadir}" is not a directory')
    if st.st_uid != os.geteuid():
        raise DataDirError(
            f'data directory "{datadir}" has wrong ownership',
            hint="The server must be started by the user that owns the data directory.")
    mode = stat.S_IMODE(st.st_mode)
    if mode not in (PG_DIR_MODE_OWNER, PG_DIR_MODE_GROUP):
        raise DataDirError(
            f'data directory "{datadir}" has invalid permissions',
            detail="Permissions should be u=rwx (0700) or u=rwx,g=rx (0750).")
    version_file = os.path.join(datadir, "PG_VERSION")
    try:
        with open(version_file) as f:
            version = f.read().strip()
    except FileNotFoundError as exc:
        raise DataDirError(
            f'"{datadir}" is not a valid data directory',
            detail=f'File "{version_file}" is missing.') from exc
    if version != PG_MAJORVERSION:
        raise DataDirError(
            "database files are incompatible with server",
            detail=f"The data directory was initialized by PostgreSQL version {version}, "
                   f"which is not compatible with this version {PG_MAJORVERSION}.")
    return mode


@dataclass
class PidFileInfo:
    pid: int
    lines: list[str]

    def line(self, n: int) -> str:
        return self.lines[n - 1] if len(self.lines) >= n else ""

    @property
    def status(self) -> str:
        return self.line(LOCK_FILE_LINE_PM_STATUS).strip()

    @property
    def port(self) -> int | None:
        v = self.line(LOCK_FILE_LINE_PORT).strip()
        return int(v) if v.isdigit() else None


def read_pid_file(datadir: str) -> PidFileInfo | None:
    try:
        with open(os.path.join(datadir, PID_FILE)) as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        return None
    try:
        pid = int(lines[0])
    except (ValueError, IndexError):
        return None
    return PidFileInfo(pid, lines)


def pid_alive(pid: int) -> bool:
    """Does ``pid`` run? A zombie (exited, not yet reaped by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return True


def shm_lock_held(datadir: str) -> bool:
    """True if some process still holds the old cluster's inherited shmem lock."""
    try:
        fd = os.open(os.path.join(datadir, SHM_LOCK_FILE), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def acquire_shm_lock(datadir: str) -> int:
    """Take the lock every child will inherit; returns its descriptor.

    O_CLOEXEC keeps it out of programs we exec, while forked children keep it.
    """
    fd = os.open(os.path.join(datadir, SHM_LOCK_FILE),
                 os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise DataDirError(
            "pre-existing shared memory block is still in use",
            hint="Terminate any old server processes associated with data directory "
                 f'"{datadir}".') from exc
    return fd


def create_lock_file(datadir: str, shmem_in_use: "callable") -> None:  # noqa: UP037
    """CreateLockFile: write postmaster.pid or explain who holds the data directory.

    ``shmem_in_use()`` says whether the dead postmaster's children still hold
    the shared memory; if so we refuse as PostgreSQL does.
    """
    path = os.path.join(datadir, PID_FILE)
    my_pid = os.getpid()
    for _attempt in range(100):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            info = read_pid_file(datadir)
            if info is None:
                # Empty or garbled: PostgreSQL refuses unless the file is empty.
                with open(path) as f:
                    content = f.read()
                if content.strip():
                    raise DataDirError(f'bogus data in lock file "{PID_FILE}": "{content[:40]}"',
                                       hint=f'If you are sure no postmaster is running, '
                                            f'remove the lock file "{path}" and try again.'
                                       ) from None
                os.unlink(path)
                continue
            if info.pid != my_pid and info.pid != os.getppid() and pid_alive(info.pid):
                raise DataDirError(
                    f'lock file "{PID_FILE}" already exists',
                    hint=f'Is another postmaster (PID {info.pid}) running in data directory '
                         f'"{datadir}"?') from None
            if shmem_in_use():
                raise DataDirError(
                    f"pre-existing shared memory block "
                    f"({info.line(LOCK_FILE_LINE_SHMEM_KEY).strip()}) is still in use",
                    hint="Terminate any old server processes associated with data directory "
                         f'"{datadir}".') from None
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            continue
        try:
            content = (f"{my_pid}\n{os.path.abspath(datadir)}\n{int(time.time())}\n")
            os.write(fd, content.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return
    raise DataDirError(f'could not create lock file "{path}": {os.strerror(errno.EEXIST)}')


def add_to_lock_file(datadir: str, line_no: int, value: str) -> None:
    """AddToDataDirLockFile: set line ``line_no`` (1-based), padding with empty lines."""
    path = os.path.join(datadir, PID_FILE)
    with open(path) as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    while len(lines) < line_no:
        lines.append("")
    lines[line_no - 1] = value
    data = ("\n".join(lines) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_lock_file(datadir: str) -> None:
    try:
        info = read_pid_file(datadir)
        if info is None or info.pid == os.getpid():
            os.unlink(os.path.join(datadir, PID_FILE))
    except FileNotFoundError:
        pass


def write_opts_file(datadir: str, argv: list[str]) -> None:
    """postmaster.opts: the command line, for ``tusk_ctl restart``."""
    import shlex

    with open(os.path.join(datadir, OPTS_FILE), "w") as f:
        f.write(" ".join(shlex.quote(a) for a in argv) + "\n")
