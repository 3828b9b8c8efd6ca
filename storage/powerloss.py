"""The power-loss journal: what a power cut could still undo — tusk's own (no
PostgreSQL counterpart; PostgreSQL's tests cannot cut the power either).

With the developer setting ``debug_power_loss`` on, storage/fd.py hands every
write, truncate, fsync, creation, rename, link, unlink and mkdir of a file under
the data directory to ``Journal``, which performs it and appends a record to
DIR/pg_powerloss/journal. ``tusk_ctl simulate-power-loss`` (postmaster/
powerloss_cmd.py) later replays the journal and rolls the files back to a state a
disk could hold after a power cut.

Ordering protocol
    Every process of the cluster appends to the same file, opened O_APPEND: one
    write(2) per record, which Linux appends atomically against other appenders to a
    regular file, so the journal order is a global order. A change's record is
    appended AFTER the change completes (a write record carries the pre-image, read
    before the write, and the file's size before it); an fsync record is appended
    BEFORE the fsync starts. So a change whose record precedes an fsync record of
    its file (or, for directory entries, of its directory) certainly completed
    before that fsync began: it is covered. Everything else counts as unsynced:
    conservative, never optimistic. (A process killed between a change and its
    record leaves the change unrecorded, so treated as durable: a possible outcome.)
    The journal itself is never fsynced: the tests kill processes, not the
    machine, and the page cache survives SIGKILL.

Undoing directory changes
    An unlink, or a rename over an existing target, would destroy the inode a
    rollback needs, so the victim is first hard-linked into pg_powerloss/saved/
    (no copy). Undo of a creation or link removes the name; of a rename renames
    back and relinks the replaced target; of an unlink links the saved inode back;
    of a mkdir removes the directory.

Records are ``<len u32><crc32 u32>`` + body; a record that fails its CRC ends the
journal (a process killed in the middle of an append).
"""

from __future__ import annotations

import errno
import os
import struct
import time
import zlib
from dataclasses import dataclass

DIRNAME = "pg_powerloss"
JOURNAL = "journal"
SAVED = "saved"

# Record kinds.
WRITE, TRUNCATE, FSYNC, CREATE, UNLINK, RENAME, LINK, MKDIR = range(1, 9)
KIND_NAMES = {WRITE: "write", TRUNCATE: "truncate", FSYNC: "fsync", CREATE: "create",
              UNLINK: "unlink", RENAME: "rename", LINK: "link", MKDIR: "mkdir"}
# Flags.
F_PRE_ZERO = 1  # the pre-image is all zeros and not stored
F_SYNCED = 2    # a write to an O_SYNC/O_DSYNC descriptor: durable when it returned

_PREFIX = struct.Struct("<II")
# kind, flags, path length, path2 length, pid, offset, length, old size, pre-image length
_BODY = struct.Struct("<BBHHIQQQQ")


@dataclass
class Record:
    seq: int
    kind: int
    flags: int
    pid: int
    path: str
    path2: str     # rename/link: the target; unlink: the saved hard link
    offset: int    # write: offset; truncate: the new length
    length: int    # write: bytes written
    old_size: int  # write/truncate: the file's size before
    pre: bytes     # write/truncate: what it overwrote (below old_size); rename: the
                   # replaced target's saved hard link, if any

    @property
    def end(self) -> int:
        return self.offset + self.length


class Journal:
    """The writer: performs each change and journals it (one instance per cluster,
    inherited by every forked process)."""

    def __init__(self, datadir: str) -> None:
        self.root = os.path.abspath(datadir)
        self.dir = os.path.join(self.root, DIRNAME)
        os.makedirs(os.path.join(self.dir, SAVED), 0o700, exist_ok=True)
        self.fd = os.open(os.path.join(self.dir, JOURNAL),
                          os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.sync_fds: set[int] = set()  # basic descriptors opened O_SYNC/O_DSYNC
        self._rel: dict[str, str | None] = {}
        self._saved = 0

    def close(self) -> None:
        os.close(self.fd)

    def rel(self, path: str) -> str | None:
        """``path`` relative to the data directory; None outside it or in pg_powerloss."""
        r = self._rel.get(path)
        if r is None and path not in self._rel:
            full = os.path.normpath(os.path.join(self.root, path))
            r = "." if full == self.root else os.path.relpath(full, self.root)
            if r.startswith("..") or r == DIRNAME or r.startswith(DIRNAME + "/"):
                r = None
            self._rel[path] = r
        return r

    def _append(self, kind: int, path: str, path2: str = "", *, flags: int = 0,
                offset: int = 0, length: int = 0, old_size: int = 0,
                pre: bytes = b"") -> None:
        p1, p2 = path.encode(), path2.encode()
        pre_len = len(pre)
        if pre_len and pre.count(0) == pre_len:
            flags |= F_PRE_ZERO
            pre = b""
        body = b"".join((_BODY.pack(kind, flags, len(p1), len(p2), os.getpid(), offset,
                                    length, old_size, pre_len), p1, p2, pre))
        os.write(self.fd, _PREFIX.pack(len(body), zlib.crc32(body)) + body)

    # -- file contents --

    def pwrite(self, fd: int, path: str, data: object, offset: int) -> int:
        rel = self.rel(path)
        if rel is None:
            return os.pwrite(fd, data, offset)  # type: ignore[arg-type]
        old_size = os.fstat(fd).st_size
        nbytes = memoryview(data).nbytes  # type: ignore[arg-type]
        pre = _pread(fd, min(nbytes, old_size - offset), offset) if offset < old_size \
            else b""
        n = os.pwrite(fd, data, offset)  # type: ignore[arg-type]
        self._append(WRITE, rel, flags=F_SYNCED if fd in self.sync_fds else 0,
                     offset=offset, length=n, old_size=old_size, pre=pre[:n])
        return n

    def ftruncate(self, fd: int, path: str, length: int) -> None:
        rel = self.rel(path)
        if rel is None:
            os.ftruncate(fd, length)
            return
        old_size = os.fstat(fd).st_size
        pre = _pread(fd, old_size - length, length) if length < old_size else b""
        os.ftruncate(fd, length)
        self._append(TRUNCATE, rel, offset=length, old_size=old_size, pre=pre)

    def fsync(self, path: str) -> None:
        """Called just BEFORE fsync/fdatasync of ``path`` (file or directory)."""
        rel = self.rel(path)
        if rel is not None:
            self._append(FSYNC, rel)

    # -- directory entries --

    def open(self, path: str, flags: int, mode: int, dir_fd: int | None) -> int:
        """open(2) with O_CREAT: journal the creation if the file is new, and an
        O_TRUNC of an existing file as a truncate."""
        rel = self.rel(path)
        if rel is None:
            return os.open(path, flags, mode, dir_fd=dir_fd)
        if flags & os.O_EXCL:
            fd = os.open(path, flags, mode, dir_fd=dir_fd)
            self._append(CREATE, rel)
            return fd
        while True:
            try:
                fd = os.open(path, flags | os.O_EXCL, mode, dir_fd=dir_fd)
            except FileExistsError:
                pass
            else:
                self._append(CREATE, rel)
                return fd
            try:
                fd = os.open(path, flags & ~(os.O_CREAT | os.O_TRUNC), mode, dir_fd=dir_fd)
            except FileNotFoundError:
                continue  # unlinked meanwhile: create it after all
            if flags & os.O_TRUNC:
                self.ftruncate(fd, path, 0)
            return fd

    def _save(self, path: str, dir_fd: int | None) -> str:
        """Hard-link ``path`` into pg_powerloss/saved/; the saved name (FileNotFoundError
        if ``path`` does not exist)."""
        while True:
            self._saved += 1
            name = f"{SAVED}/{os.getpid()}.{time.monotonic_ns()}.{self._saved}"
            try:
                os.link(path, os.path.join(self.dir, name), src_dir_fd=dir_fd,
                        follow_symlinks=False)
                return name
            except FileExistsError:
                continue

    def unlink(self, path: str, dir_fd: int | None) -> None:
        rel = self.rel(path)
        if rel is None:
            os.unlink(path, dir_fd=dir_fd)
            return
        try:
            saved = self._save(path, dir_fd)
        except (PermissionError, IsADirectoryError):  # a directory: unlink fails anyway
            saved = ""
        try:
            os.unlink(path, dir_fd=dir_fd)
        except OSError:
            if saved:
                os.unlink(os.path.join(self.dir, saved))
            raise
        self._append(UNLINK, rel, saved)

    def rename(self, old: str, new: str, dir_fd: int | None) -> None:
        rel_old, rel_new = self.rel(old), self.rel(new)
        if rel_old is None or rel_new is None:
            os.rename(old, new, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            return
        try:
            victim = self._save(new, dir_fd)
        except FileNotFoundError:
            victim = ""
        try:
            os.rename(old, new, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError:
            if victim:
                os.unlink(os.path.join(self.dir, victim))
            raise
        self._append(RENAME, rel_old, rel_new, pre=victim.encode())

    def link(self, src: str, dst: str, dir_fd: int | None) -> None:
        os.link(src, dst, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        rel_src, rel_dst = self.rel(src), self.rel(dst)
        if rel_src is not None and rel_dst is not None:
            self._append(LINK, rel_src, rel_dst)

    def mkdir(self, path: str, mode: int, dir_fd: int | None) -> None:
        os.mkdir(path, mode, dir_fd=dir_fd)
        rel = self.rel(path)
        if rel is not None:
            self._append(MKDIR, rel)


def _pread(fd: int, nbytes: int, offset: int) -> bytes:
    """pread, also on a write-only descriptor (pg_control's), through a read-only
    reopen of the same file."""
    try:
        return os.pread(fd, nbytes, offset)
    except OSError as exc:
        if exc.errno != errno.EBADF:
            raise
    rfd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.pread(rfd, nbytes, offset)
    finally:
        os.close(rfd)


# -- reading ------------------------------------------------------------------------------

def journal_path(datadir: str) -> str:
    return os.path.join(datadir, DIRNAME, JOURNAL)


def read_journal(path: str) -> tuple[list[Record], int]:
    """The records of a journal, and how many bytes at its end were unreadable."""
    with open(path, "rb") as f:
        data = f.read()
    records: list[Record] = []
    pos, n = 0, len(data)
    while pos + _PREFIX.size <= n:
        length, crc = _PREFIX.unpack_from(data, pos)
        b = pos + _PREFIX.size
        if length < _BODY.size or b + length > n or \
                zlib.crc32(memoryview(data)[b:b + length]) != crc:
            break
        pos = b + length
        kind, flags, l1, l2, pid, offset, length, old_size, pre_len = \
            _BODY.unpack_from(data, b)
        b += _BODY.size
        p1, p2 = data[b:b + l1].decode(), data[b + l1:b + l1 + l2].decode()
        b += l1 + l2
        pre = bytes(pre_len) if flags & F_PRE_ZERO else data[b:b + pre_len]
        records.append(Record(len(records), kind, flags, pid, p1, p2, offset, length,
                              old_size, pre))
    return records, n - pos
