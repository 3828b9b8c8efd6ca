"""Virtual file descriptors and every file operation of the server — mirrors
src/backend/storage/file/fd.c.

All reads, writes, extends, truncates, syncs, renames, unlinks and mkdirs of data
files, WAL, pg_xact and pg_control go through this module, so that one place
enforces max_files_per_process, honours ``fsync = off``, turns a failed fsync into
a PANIC, and can inject faults for tests.

Virtual file descriptors (``File``)
    As in PostgreSQL, the LRU of open kernel descriptors lives here rather than in
    md.c: a ``File`` remembers its path and flags, and its kernel descriptor may be
    closed behind its back when the process needs room; the next access reopens it
    (without O_CREAT/O_TRUNC/O_EXCL). Keeping the LRU here, not in md, means one
    budget (``max_safe_fds``, derived from max_files_per_process) covers relation
    segments and the "basic" descriptors that WAL, pg_xact and pg_control take
    through ``basic_open_file``. Unlike PostgreSQL there is no seek position
    (only pread/pwrite), no temporary-file bookkeeping and no resource owners: a
    File is closed explicitly or when its process exits.

Paths
    Callers pass paths relative to the data directory, as PostgreSQL does after
    ChangeToDataDir(); they are resolved against a directory descriptor
    (``set_data_directory``) instead of chdir, so messages read "base/5/16384"
    exactly like PostgreSQL's. Absolute paths work too.

Errors
    The low-level calls raise ``OSError`` as the kernel reports it; callers word the
    message (``could not read block ...``) and map errno with
    ``errcode_for_file_access``. Every fsync/fdatasync failure instead raises
    ``DataSyncError``, whose severity is PANIC: with data_sync_retry = off (the
    default, and the only safe setting on Linux) a failed fsync may have dropped the
    dirty pages and cleared the error, so retrying could "succeed" over lost data;
    the only safe answer is crash recovery from WAL. With data_sync_retry = on the
    severity is ERROR, as data_sync_elevel() does. WAL callers PANIC regardless.

Fault injection (tests)
    ``configure_fault_injection("write:base/*/16384*:EIO:after=3;fsync:pg_wal/*:EIO")``.
    Each spec is ``op:pattern:action[:option...]``: op is one of read, write, extend,
    open, truncate, fsync, rename, unlink, mkdir or ``*`` (``write`` also matches
    extends, ``fsync`` also matches fdatasync and directory syncs); pattern is an
    fnmatch pattern on the path relative to the data directory (``*`` crosses
    ``/``; a directory sync matches the directory's own path, e.g. ``pg_wal``);
    actions are an errno name (EIO, ENOSPC, ...) and/or ``delay=50ms`` (units us,
    ms, s), or, for fsync/fdatasync only, ``skip``: the call returns success without
    syncing (and without a power-loss journal record): an fsync that lies, for tests
    showing what a missing sync would lose. Options ``after=N`` (let the first N
    matching calls through) and ``count=N`` (fire at most N times). Counters are per
    process. A delay is spent inside the call, so it shows in track_io_timing
    figures. Faults fire even with fsync = off, so tests may run fast clusters. With
    no spec configured the whole cost is one global ``is not None`` test per call.

Power-loss mode (developer setting ``debug_power_loss``)
    Every change to a file or directory entry under the data directory, and every
    fsync, is performed and journaled by storage/powerloss.py (see there for the
    ordering protocol), so that ``tusk_ctl simulate-power-loss`` can roll the
    cluster back to what a disk could hold after a power cut. Off, the cost is one
    global ``is not None`` test per call, as for faults.

I/O timing
    ``io_timing_enabled`` mirrors track_io_timing; callers (bufmgr, xlog) time
    their reads and writes with ``io_time_start()`` / ``io_time_elapsed_us()``.
"""

from __future__ import annotations

import errno as _errno
import os
import time
from collections import OrderedDict
from fnmatch import fnmatchcase
from mmap import mmap

from storage.powerloss import Journal
from utils.elog import ERROR, PANIC, PgError

# Anything pread can fill or pwrite can send (collections.abc.Buffer is 3.12+).
Buffer = bytes | bytearray | memoryview | mmap

# -- settings, assigned by the GUC machinery -------------------------------------------

enable_fsync: bool = True        # GUC fsync
data_sync_retry: bool = False    # GUC data_sync_retry
io_timing_enabled: bool = False  # GUC track_io_timing

# PostgreSQL keeps NUM_RESERVED_FDS for system(), dlopen() and the like, and refuses
# to start below FD_MINFREE usable descriptors.
NUM_RESERVED_FDS = 10
FD_MINFREE = 48
max_safe_fds: int = 32           # replaced at process start by set_max_safe_fds()

_O_REOPEN_MASK = ~(os.O_CREAT | os.O_TRUNC | os.O_EXCL)
_pread = os.pread
_pwrite = os.pwrite
_preadv = os.preadv
_perf_ns = time.perf_counter_ns

_datadir: str | None = None
_datadir_fd: int | None = None
_pl: Journal | None = None  # the power-loss journal, when debug_power_loss is on


# -- errors ---------------------------------------------------------------------------

def errcode_for_file_access(err: int) -> str:
    """SQLSTATE for an errno, as errcode_for_file_access() in elog.c."""
    if err in (_errno.EPERM, _errno.EACCES, _errno.EROFS):
        return "42501"  # insufficient_privilege
    if err == _errno.ENOENT:
        return "58P01"  # undefined_file
    if err == _errno.EEXIST:
        return "58P02"  # duplicate_file
    if err in (_errno.ENOTDIR, _errno.EISDIR, _errno.ENAMETOOLONG):
        return "42809"  # wrong_object_type
    if err in (_errno.ENOSPC, _errno.EDQUOT):
        return "53100"  # disk_full
    if err in (_errno.ENFILE, _errno.EMFILE):
        return "53000"  # insufficient_resources
    if err == _errno.EIO:
        return "58030"  # io_error
    return "XX000"      # internal_error


def file_access_error(message: str, err: OSError, *, hint: str | None = None,
                      severity: int = ERROR) -> PgError:
    """A PgError for ``message: %m`` with the errno's SQLSTATE (ereport + %m)."""
    code = err.errno or 0
    return PgError(errcode_for_file_access(code), f"{message}: {os.strerror(code)}",
                   hint=hint, severity=severity)


def data_sync_elevel(elevel: int) -> int:
    """data_sync_elevel(): failures to sync data files PANIC unless data_sync_retry."""
    return elevel if data_sync_retry else PANIC


class DataSyncError(PgError):
    """An fsync/fdatasync failed: the caller must PANIC (see the module docstring)."""

    def __init__(self, path: str, err: OSError, *, what: str = "fsync") -> None:
        code = err.errno or _errno.EIO
        super().__init__(errcode_for_file_access(code),
                         f'could not {what} file "{path}": {os.strerror(code)}',
                         severity=data_sync_elevel(ERROR))
        self.path = path
        self.errno = code


# -- data directory -------------------------------------------------------------------

def set_data_directory(path: str | None) -> None:
    """Resolve relative paths against ``path`` from now on (our ChangeToDataDir)."""
    global _datadir, _datadir_fd
    if _datadir_fd is not None:
        os.close(_datadir_fd)
        _datadir_fd = None
    _datadir = None
    if path is not None:
        _datadir = os.path.abspath(path)
        _datadir_fd = os.open(_datadir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def data_directory() -> str | None:
    return _datadir


def absolute_path(path: str) -> str:
    """The path a relative name resolves to (for tools that need one)."""
    if os.path.isabs(path) or _datadir is None:
        return path
    return os.path.join(_datadir, path)


# -- fault injection --------------------------------------------------------------------

_OPS = frozenset({"read", "write", "extend", "open", "truncate", "fsync", "fdatasync",
                  "rename", "unlink", "link", "mkdir"})
_SKIPPABLE = frozenset({"fsync", "fdatasync"})
_OP_ALIASES = {"write": frozenset({"write", "extend"}),
               "fsync": frozenset({"fsync", "fdatasync"}),
               "*": _OPS}
_DELAY_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


class _FaultSpec:
    __slots__ = ("text", "ops", "pattern", "err", "delay", "skip", "after", "count", "calls",
                 "fired")

    def __init__(self, text: str, ops: frozenset[str], pattern: str, err: int,
                 delay: float, after: int, count: int | None, skip: bool = False) -> None:
        self.text, self.ops, self.pattern = text, ops, pattern
        self.err, self.delay, self.after, self.count = err, delay, after, count
        self.skip = skip
        self.calls = 0
        self.fired = 0


_faults: list[_FaultSpec] | None = None
_fault_root: str | None = None


def parse_fault_spec(spec: str) -> list[_FaultSpec]:
    """Parse ``op:pattern:action[:option...]`` specs separated by ';' (ValueError if bad)."""
    out: list[_FaultSpec] = []
    for text in (s.strip() for s in spec.split(";")):
        if not text:
            continue
        parts = [p.strip() for p in text.split(":")]
        if len(parts) < 3:
            raise ValueError(f'fault spec "{text}": expected op:pattern:action')
        op, pattern, opts = parts[0].lower(), parts[1], parts[2:]
        if op not in _OPS and op not in _OP_ALIASES:
            raise ValueError(f'fault spec "{text}": unknown operation "{op}"')
        err, delay, after, count, skip = 0, 0.0, 0, None, False
        for opt in opts:
            key, _, value = opt.partition("=")
            key = key.lower()
            try:
                if key == "delay":
                    num = value.rstrip("usm")
                    unit = value[len(num):] or "ms"
                    if unit not in _DELAY_UNITS:
                        raise ValueError(unit)
                    delay = float(num) * _DELAY_UNITS[unit]
                elif key == "after":
                    after = int(value)
                elif key == "count":
                    count = int(value)
                elif key == "skip" and not value:
                    skip = True
                elif not value and opt.upper().startswith("E") and hasattr(_errno, opt.upper()):
                    err = getattr(_errno, opt.upper())
                else:
                    raise ValueError(opt)
            except ValueError:
                raise ValueError(f'fault spec "{text}": bad action "{opt}"') from None
        if not err and not delay and not skip:
            raise ValueError(f'fault spec "{text}": needs an errno name, delay= or skip')
        ops = _OP_ALIASES.get(op, frozenset({op}))
        if skip and (err or not ops <= _SKIPPABLE):
            raise ValueError(f'fault spec "{text}": skip applies to fsync and fdatasync '
                             "only, without an errno")
        out.append(_FaultSpec(text, ops, pattern, err, delay, after, count, skip))
    return out


def configure_fault_injection(spec: str | None, datadir: str | None = None) -> None:
    """Install fault specs (empty or None removes them); patterns match paths relative
    to ``datadir`` (default: the data directory set with set_data_directory)."""
    global _faults, _fault_root
    specs = parse_fault_spec(spec) if spec else []
    root = datadir if datadir is not None else _datadir
    _fault_root = os.path.abspath(root) if root else None
    _faults = specs or None


def _fault(op: str, path: str) -> bool:
    """Apply matching fault specs to one call (only reached when faults are configured);
    True if the call must be skipped (a ``skip`` spec fired)."""
    assert _faults is not None
    rel = path
    if _fault_root is not None and os.path.isabs(path):
        rel = os.path.relpath(path, _fault_root)
    skip = False
    for s in _faults:
        if op not in s.ops or not fnmatchcase(rel, s.pattern):
            continue
        s.calls += 1
        if s.calls <= s.after or (s.count is not None and s.fired >= s.count):
            continue
        s.fired += 1
        if s.delay:
            time.sleep(s.delay)
        if s.err:
            raise OSError(s.err, os.strerror(s.err), path)
        skip = skip or s.skip
    return skip


# -- I/O timing -------------------------------------------------------------------------

def set_io_timing(enabled: bool) -> None:
    global io_timing_enabled
    io_timing_enabled = bool(enabled)


def io_time_start() -> int:
    """INSTR_TIME_SET_CURRENT: an opaque start stamp (ns)."""
    return _perf_ns()


def io_time_elapsed_us(start: int) -> float:
    """Microseconds since ``start`` (INSTR_TIME_GET_MICROSEC of the difference)."""
    return (_perf_ns() - start) / 1000.0


# -- the LRU of open kernel descriptors -----------------------------------------------

# Files whose kernel descriptor is open, least recently used first.
_lru: OrderedDict[File, None] = OrderedDict()
# Descriptors handed out by basic_open_file (WAL, pg_xact, ...), with their paths.
_basic: dict[int, str] = {}


def set_max_safe_fds(max_files_per_process: int, *, probe: bool = True) -> int:
    """set_max_safe_fds(): how many descriptors this process may keep open.

    As PostgreSQL: the smaller of max_files_per_process and RLIMIT_NOFILE, less the
    descriptors already open, less NUM_RESERVED_FDS; at least FD_MINFREE is required.
    ``probe=False`` takes max_files_per_process as is (tests with a tiny limit).
    """
    global max_safe_fds
    if not probe:
        max_safe_fds = max(1, max_files_per_process)
        return max_safe_fds
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        already_open = len(os.listdir("/proc/self/fd")) - 1  # minus the listdir's own fd
    except OSError:
        already_open = 3
    usable = min(max_files_per_process, soft if soft != resource.RLIM_INFINITY else 1 << 20)
    n = usable - already_open - NUM_RESERVED_FDS
    if n < FD_MINFREE:
        raise PgError("53000", "insufficient file descriptors available to start server "
                      "process",
                      detail=f"System allows {usable}, server needs at least "
                             f"{FD_MINFREE + NUM_RESERVED_FDS + already_open}.")
    max_safe_fds = n
    return n


def _release_lru_file() -> bool:
    """ReleaseLruFile: close the least recently used File's kernel descriptor."""
    if not _lru:
        return False
    victim, _ = _lru.popitem(last=False)
    fd, victim.fd = victim.fd, -1
    os.close(fd)
    return True


def _make_room() -> None:
    """ReleaseLruFiles: stay under max_safe_fds before opening another descriptor."""
    while len(_lru) + len(_basic) >= max_safe_fds and _release_lru_file():
        pass


def _os_open(path: str, flags: int, mode: int) -> int:
    """open() that, like BasicOpenFilePerm, frees an LRU descriptor on EMFILE/ENFILE."""
    if _faults is not None:
        _fault("open", path)
    while True:
        try:
            if _pl is not None and flags & os.O_CREAT:
                return _pl.open(path, flags, mode, _datadir_fd)
            return os.open(path, flags, mode, dir_fd=_datadir_fd)
        except OSError as exc:
            if exc.errno not in (_errno.EMFILE, _errno.ENFILE) or not _release_lru_file():
                raise


def nfile() -> int:
    """Kernel descriptors held through this module (VFDs open + basic)."""
    return len(_lru) + len(_basic)


class File:
    """A virtual file descriptor (fd.c's Vfd + File API): pread/pwrite at offsets.

    The hot path (``read``/``write``) costs a method call, an LRU touch and one
    ``_faults`` test (and, for writes, one ``_pl`` test) on top of os.pread/os.pwrite.
    """

    __slots__ = ("fd", "path", "flags", "mode", "__weakref__")

    def __init__(self, path: str, flags: int, mode: int = 0o600) -> None:
        self.path = path
        self.flags = flags & _O_REOPEN_MASK
        self.mode = mode
        _make_room()
        self.fd = _os_open(path, flags | os.O_CLOEXEC, mode)
        _lru[self] = None

    def __repr__(self) -> str:
        return f"<File {self.path!r} fd={self.fd}>"

    def _reopen(self) -> int:
        if self.flags < 0:
            raise ValueError(f"I/O on closed File {self.path!r}")
        _make_room()
        self.fd = _os_open(self.path, self.flags | os.O_CLOEXEC, self.mode)
        _lru[self] = None
        return self.fd

    def _get_fd(self) -> int:
        """FileAccess: the kernel descriptor, reopened if the LRU closed it."""
        fd = self.fd
        if fd < 0:
            return self._reopen()
        _lru.move_to_end(self)
        return fd

    # -- data transfer (hot path: keep these lean; the reopen/LRU/fault preamble is
    # repeated inline on purpose, a shared helper would cost a call per block) --

    def read(self, nbytes: int, offset: int) -> bytes:
        """FileRead: pread; may return fewer bytes at end of file."""
        fd = self.fd
        if fd < 0:
            fd = self._reopen()
        else:
            _lru.move_to_end(self)
        if _faults is not None:
            _fault("read", self.path)
        return _pread(fd, nbytes, offset)

    def read_into(self, buf: Buffer, offset: int) -> int:
        """FileRead into a caller's buffer (e.g. a shared buffer); returns bytes read."""
        fd = self.fd
        if fd < 0:
            fd = self._reopen()
        else:
            _lru.move_to_end(self)
        if _faults is not None:
            _fault("read", self.path)
        return _preadv(fd, (buf,), offset)

    def write(self, data: Buffer, offset: int) -> int:
        """FileWrite: pwrite; returns bytes written (a short count means disk full)."""
        fd = self.fd
        if fd < 0:
            fd = self._reopen()
        else:
            _lru.move_to_end(self)
        if _faults is not None:
            _fault("write", self.path)
        if _pl is not None:
            return _pl.pwrite(fd, self.path, data, offset)
        return _pwrite(fd, data, offset)

    def extend(self, data: Buffer, offset: int) -> int:
        """A write past end of file (mdextend); separate so faults can target it."""
        fd = self._get_fd()
        if _faults is not None:
            _fault("extend", self.path)
        if _pl is not None:
            return _pl.pwrite(fd, self.path, data, offset)
        return _pwrite(fd, data, offset)

    # -- the rest --

    def size(self) -> int:
        """FileSize: lseek(SEEK_END)."""
        return os.lseek(self._get_fd(), 0, os.SEEK_END)

    def truncate(self, length: int) -> None:
        """FileTruncate."""
        fd = self._get_fd()
        if _faults is not None:
            _fault("truncate", self.path)
        if _pl is not None:
            _pl.ftruncate(fd, self.path, length)
            return
        os.ftruncate(fd, length)

    def sync(self) -> None:
        """FileSync (pg_fsync); raises DataSyncError on failure."""
        fd = self._get_fd()
        try:
            if _faults is not None and _fault("fsync", self.path):
                return
            if enable_fsync:
                if _pl is not None:
                    _pl.fsync(self.path)
                os.fsync(fd)
        except OSError as exc:
            raise DataSyncError(self.path, exc) from exc

    def datasync(self) -> None:
        """pg_fdatasync on this file; raises DataSyncError on failure."""
        fd = self._get_fd()
        try:
            if _faults is not None and _fault("fdatasync", self.path):
                return
            if enable_fsync:
                if _pl is not None:
                    _pl.fsync(self.path)
                os.fdatasync(fd)
        except OSError as exc:
            raise DataSyncError(self.path, exc, what="fdatasync") from exc

    def prefetch(self, offset: int, nbytes: int) -> None:
        """FilePrefetch: POSIX_FADV_WILLNEED (advice only; errors ignored)."""
        try:
            os.posix_fadvise(self._get_fd(), offset, nbytes, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass

    def close(self) -> None:
        """FileClose: close the kernel descriptor (if open) and retire the File."""
        fd = self.fd
        if fd >= 0:
            self.fd = -1
            _lru.pop(self, None)
            os.close(fd)
        self.flags = -1  # a closed File must not reopen silently

    @property
    def is_open(self) -> bool:
        """True while the kernel descriptor is open (not evicted, not closed)."""
        return self.fd >= 0


def path_name_open_file(path: str, flags: int = os.O_RDWR, mode: int = 0o600) -> File:
    """PathNameOpenFile: open a VFD (raises OSError as open(2) reports)."""
    return File(path, flags, mode)


def close_all_files() -> None:
    """Close every kernel descriptor held by VFDs (e.g. in a child after fork,
    or at process exit); the Files reopen on next use."""
    while _release_lru_file():
        pass


# -- basic descriptors: WAL segments, pg_xact, pg_control ---------------------------------

def basic_open_file(path: str, flags: int, mode: int = 0o600) -> int:
    """BasicOpenFile/OpenTransientFile: a raw descriptor that counts against
    max_safe_fds (an LRU File is closed to make room). Close with ``basic_close``."""
    _make_room()
    fd = _os_open(path, flags | os.O_CLOEXEC, mode)
    _basic[fd] = path
    if _pl is not None and flags & os.O_DSYNC and enable_fsync:
        _pl.sync_fds.add(fd)  # each write is durable when it returns
    return fd


open_transient_file = basic_open_file


def basic_close(fd: int) -> None:
    """Close a descriptor from basic_open_file (CloseTransientFile)."""
    _basic.pop(fd, None)
    if _pl is not None:
        _pl.sync_fds.discard(fd)
    os.close(fd)


close_transient_file = basic_close


def pg_pread(fd: int, nbytes: int, offset: int) -> bytes:
    if _faults is not None:
        _fault("read", _basic.get(fd, "?"))
    return _pread(fd, nbytes, offset)


def pg_pread_into(fd: int, buf: Buffer, offset: int) -> int:
    if _faults is not None:
        _fault("read", _basic.get(fd, "?"))
    return _preadv(fd, (buf,), offset)


def pg_pwrite(fd: int, data: Buffer, offset: int) -> int:
    if _faults is not None:
        _fault("write", _basic.get(fd, "?"))
    if _pl is not None:
        return _pl.pwrite(fd, _basic.get(fd, "?"), data, offset)
    return _pwrite(fd, data, offset)


def pg_fsync(fd: int, path: str | None = None) -> None:
    """pg_fsync: fsync unless fsync = off; raises DataSyncError on failure."""
    path = path if path is not None else _basic.get(fd, "?")
    try:
        if _faults is not None and _fault("fsync", path):
            return
        if enable_fsync:
            if _pl is not None:
                _pl.fsync(path)
            os.fsync(fd)
    except OSError as exc:
        raise DataSyncError(path, exc) from exc


def pg_fdatasync(fd: int, path: str | None = None) -> None:
    """pg_fdatasync: fdatasync unless fsync = off; raises DataSyncError on failure."""
    path = path if path is not None else _basic.get(fd, "?")
    try:
        if _faults is not None and _fault("fdatasync", path):
            return
        if enable_fsync:
            if _pl is not None:
                _pl.fsync(path)
            os.fdatasync(fd)
    except OSError as exc:
        raise DataSyncError(path, exc, what="fdatasync") from exc


def pg_ftruncate(fd: int, length: int) -> None:
    if _faults is not None:
        _fault("truncate", _basic.get(fd, "?"))
    if _pl is not None:
        _pl.ftruncate(fd, _basic.get(fd, "?"), length)
        return
    os.ftruncate(fd, length)


# -- whole-file operations ---------------------------------------------------------------

def pg_truncate(path: str, length: int) -> None:
    """pg_truncate: truncate a file by name (raises OSError)."""
    fd = basic_open_file(path, os.O_RDWR)
    try:
        pg_ftruncate(fd, length)
    finally:
        basic_close(fd)


def file_exists(path: str) -> bool:
    try:
        os.stat(path, dir_fd=_datadir_fd)
        return True
    except FileNotFoundError:
        return False


def file_size(path: str) -> int:
    return os.stat(path, dir_fd=_datadir_fd).st_size


def unlink(path: str) -> None:
    """unlink(2) through the fault layer (raises OSError)."""
    if _faults is not None:
        _fault("unlink", path)
    if _pl is not None:
        _pl.unlink(path, _datadir_fd)
        return
    os.unlink(path, dir_fd=_datadir_fd)


def rename(oldpath: str, newpath: str) -> None:
    """rename(2) through the fault layer (raises OSError); not durable by itself."""
    if _faults is not None:
        _fault("rename", oldpath)
    if _pl is not None:
        _pl.rename(oldpath, newpath, _datadir_fd)
        return
    os.rename(oldpath, newpath, src_dir_fd=_datadir_fd, dst_dir_fd=_datadir_fd)


def link(src: str, dst: str) -> None:
    """link(2) through the fault layer (raises OSError; FileExistsError if ``dst``
    exists); not durable by itself."""
    if _faults is not None:
        _fault("link", dst)
    if _pl is not None:
        _pl.link(src, dst, _datadir_fd)
        return
    os.link(src, dst, src_dir_fd=_datadir_fd, dst_dir_fd=_datadir_fd)


def make_pg_directory(path: str, mode: int = 0o700) -> None:
    """MakePGDirectory: mkdir with pg_dir_create_mode (raises OSError)."""
    if _faults is not None:
        _fault("mkdir", path)
    if _pl is not None:
        _pl.mkdir(path, mode, _datadir_fd)
        return
    os.mkdir(path, mode, dir_fd=_datadir_fd)


def fsync_fname(path: str, isdir: bool = False) -> None:
    """fsync_fname: fsync a file or directory by name.

    As PostgreSQL: directories are opened read-only, files read-write, and
    EBADF/EINVAL from fsync on a directory are ignored (some filesystems refuse to
    sync directories). Raises DataSyncError on failure, or PgError when the file
    cannot be opened.
    """
    flags = os.O_RDONLY if isdir else os.O_RDWR
    try:
        fd = basic_open_file(path, flags)
    except OSError as exc:
        raise file_access_error(f'could not open file "{path}"', exc) from exc
    try:
        pg_fsync(fd, path)
    except DataSyncError as exc:
        if not (isdir and exc.errno in (_errno.EBADF, _errno.EINVAL)):
            raise
    finally:
        basic_close(fd)


def fsync_parent_path(path: str) -> None:
    """fsync_parent_path: make a create/rename/unlink of ``path`` durable."""
    parent = os.path.dirname(path.rstrip("/")) or "."
    fsync_fname(parent, isdir=True)


def durable_rename(oldfile: str, newfile: str) -> None:
    """durable_rename: fsync oldfile (and newfile if present), rename, fsync newfile
    and its directory, so that after a crash either name holds complete contents.

    Raises PgError (could not open/rename ...) or DataSyncError.
    """
    fsync_fname(oldfile)
    try:
        fd = basic_open_file(newfile, os.O_RDWR)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise file_access_error(f'could not open file "{newfile}"', exc) from exc
    else:
        try:
            pg_fsync(fd, newfile)
        finally:
            basic_close(fd)
    try:
        rename(oldfile, newfile)
    except OSError as exc:
        raise file_access_error(
            f'could not rename file "{oldfile}" to "{newfile}"', exc) from exc
    fsync_fname(newfile)
    fsync_parent_path(newfile)


def durable_unlink(fname: str) -> None:
    """durable_unlink: unlink and fsync the directory. Raises PgError/DataSyncError."""
    try:
        unlink(fname)
    except OSError as exc:
        raise file_access_error(f'could not remove file "{fname}"', exc) from exc
    fsync_parent_path(fname)


# -- power-loss mode ----------------------------------------------------------------------

def configure_power_loss(enabled: bool, datadir: str | None = None) -> None:
    """Switch the power-loss journal on or off (debug_power_loss). On, it is opened in
    ``datadir`` (default: the data directory) and every process forked afterwards
    shares it."""
    global _pl
    root = datadir if datadir is not None else _datadir
    if enabled and root is not None:
        if _pl is None or _pl.root != os.path.abspath(root):
            configure_power_loss(False)
            _pl = Journal(root)
    elif _pl is not None:
        _pl.close()
        _pl = None


def power_loss_enabled() -> bool:
    return _pl is not None


# -- GUC assign hooks ------------------------------------------------------------------------

def _assign_fsync(value: object) -> None:
    global enable_fsync
    enable_fsync = bool(value)


def _assign_data_sync_retry(value: object) -> None:
    global data_sync_retry
    data_sync_retry = bool(value)


def _register_assign_hooks() -> None:
    from conf.guc import register_assign_hook

    register_assign_hook("fsync", _assign_fsync)
    register_assign_hook("data_sync_retry", _assign_data_sync_retry)
    register_assign_hook("track_io_timing", set_io_timing)
    register_assign_hook("debug_fault_injection", lambda v: configure_fault_injection(str(v)))
    register_assign_hook("debug_power_loss", lambda v: configure_power_loss(bool(v)))


_register_assign_hooks()
