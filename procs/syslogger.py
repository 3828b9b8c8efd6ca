"""The logging collector — mirrors src/backend/postmaster/syslogger.c.

Protocol with the rest of the cluster, as in PostgreSQL:

- The postmaster creates the pipe once (``open_pipe``, PostgreSQL's syslogPipe)
  and keeps both ends across logger restarts. After forking the first logger it
  points its own fds 1 and 2 at the write end; every child inherits that, so
  anything a process prints reaches the logger.
- ``utils/elog.py`` sends each log record through the pipe in chunks of at most
  512 bytes (PIPE_BUF guarantees each write is atomic), every chunk carrying a
  PipeProtoHeader: two NULs, payload length, sender pid, flags (last chunk,
  destination stderr/csvlog/jsonlog). The logger reassembles the chunks per
  sender pid (``ChunkAssembler``, PostgreSQL's process_pipe_input and
  save_buffer lists), so records of different processes never interleave.
  Bytes that are not protocol chunks (a traceback printed by a dying child)
  go to the stderr log file as they are.
- The logger ignores SIGINT, SIGTERM and SIGQUIT: it runs until it reads EOF
  from the pipe, which happens only once every other process of the cluster,
  postmaster included, has exited. SIGHUP re-reads the configuration (a new
  log_directory or log_filename forces a rotation); SIGUSR1 asks for a
  rotation (``tusk_ctl logrotate`` via the postmaster).
- Files: log_directory/strftime(log_filename) for stderr output, the same name
  with ".log" replaced (or ".json" appended) for jsonlog; rotation by
  log_rotation_age (at multiples of the age since the epoch, in log_timezone),
  log_rotation_size, or on request; DATADIR/current_logfiles names the files in
  use ("stderr log/..." and "jsonlog log/....json"), rewritten through a temp
  file and rename.

Where it differs from PostgreSQL: the logger opens its first files itself (the
postmaster does it in PostgreSQL, to fail start-up early); if that fails, the
logger writes stderr records to its inherited stderr and disables rotation
until the next SIGHUP instead of stopping the cluster. It reads up to 64 kB per
read() rather than 1 kB, and a short run of non-protocol bytes that cannot be
the start of a chunk header is written at once rather than held back.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from procs import child
from utils import elog

# Log destinations (elog.h).
LOG_DESTINATION_STDERR = 1
LOG_DESTINATION_CSVLOG = 8
LOG_DESTINATION_JSONLOG = 16
ALL_FILE_DESTINATIONS = LOG_DESTINATION_STDERR | LOG_DESTINATION_CSVLOG | LOG_DESTINATION_JSONLOG

# The pipe protocol (PipeProtoHeader, syslogger.h); utils/elog.py writes it.
PIPE_PROTO_DEST_CSVLOG = 0x20
_DEST_BY_FLAG = {
    elog.PIPE_PROTO_DEST_STDERR: LOG_DESTINATION_STDERR,
    PIPE_PROTO_DEST_CSVLOG: LOG_DESTINATION_CSVLOG,
    elog.PIPE_PROTO_DEST_JSONLOG: LOG_DESTINATION_JSONLOG,
}
_DEST_FLAGS = elog.PIPE_PROTO_DEST_STDERR | PIPE_PROTO_DEST_CSVLOG | elog.PIPE_PROTO_DEST_JSONLOG
PIPE_HEADER = elog.PIPE_HEADER
PIPE_HEADER_SIZE = PIPE_HEADER.size
PIPE_MAX_PAYLOAD = elog.PIPE_MAX_PAYLOAD

READ_BUF_SIZE = 65536
LOG_METAINFO_DATAFILE = "current_logfiles"
LOG_METAINFO_DATAFILE_TMP = LOG_METAINFO_DATAFILE + ".tmp"
# The longest we sleep: a bound on how late a time-based rotation can be noticed.
MAX_SLEEP = 3600.0

Writer = Callable[[bytes, int], None]


def open_pipe() -> tuple[int, int]:
    """Create the collector pipe (SysLogger_Start's pipe()); returns (read_fd, write_fd).

    Both ends are close-on-exec: forked children keep them, programs they exec do not
    (fds 1 and 2, dup2'ed from the write end, stay open across exec).
    """
    return os.pipe2(os.O_CLOEXEC)


# -- reassembling chunks -------------------------------------------------------------------

class ChunkAssembler:
    """process_pipe_input / flush_pipe_input: turns pipe bytes into whole records.

    ``feed`` takes bytes as read() returned them and calls ``write(record, dest)``
    (dest a LOG_DESTINATION_* value) for every complete record and every run of
    non-protocol bytes; an incomplete chunk waits for the next ``feed``. Chunks of
    one record may be separated by chunks of other processes: each sender pid has
    its own save buffer until the chunk flagged PIPE_PROTO_IS_LAST arrives.
    """

    def __init__(self, write: Writer) -> None:
        self._write = write
        self._buf = bytearray()
        self._saved: dict[int, bytearray] = {}  # sender pid -> payload so far

    @property
    def pending(self) -> int:
        """Bytes held back: an incomplete chunk plus unfinished records."""
        return len(self._buf) + sum(len(b) for b in self._saved.values())

    def feed(self, data: bytes) -> None:
        self._buf += data
        buf = self._buf
        count = len(buf)
        pos = 0
        while pos < count:
            avail = count - pos
            if avail > PIPE_HEADER_SIZE:
                nuls, length, pid, flags = PIPE_HEADER.unpack_from(buf, pos)
                if _valid_header(nuls, length, pid, flags):
                    chunklen = PIPE_HEADER_SIZE + length
                    if avail < chunklen:
                        break  # wait for the rest of the chunk
                    start = pos + PIPE_HEADER_SIZE
                    self._chunk(pid, flags, bytes(buf[start:start + length]))
                    pos += chunklen
                    continue
            elif buf[pos] == 0 and (avail < 2 or buf[pos + 1] == 0):
                break  # could be the start of a header: wait for more
            # Non-protocol data: dump it up to the next possible header start.
            end = buf.find(b"\0", pos + 1)
            if end < 0:
                end = count
            self._write(bytes(buf[pos:end]), LOG_DESTINATION_STDERR)
            pos = end
        del buf[:pos]

    def _chunk(self, pid: int, flags: int, payload: bytes) -> None:
        dest = _DEST_BY_FLAG[flags & _DEST_FLAGS]
        saved = self._saved.get(pid)
        if not flags & elog.PIPE_PROTO_IS_LAST:
            if saved is None:
                self._saved[pid] = bytearray(payload)
            else:
                saved += payload
            return
        if saved is None:
            self._write(payload, dest)  # the whole record was one chunk
        else:
            del self._saved[pid]
            saved += payload
            self._write(bytes(saved), dest)

    def flush(self) -> None:
        """At EOF: write out incomplete records and leftover bytes to the stderr file."""
        for pid in list(self._saved):
            self._write(bytes(self._saved.pop(pid)), LOG_DESTINATION_STDERR)
        if self._buf:
            self._write(bytes(self._buf), LOG_DESTINATION_STDERR)
            self._buf.clear()


def _valid_header(nuls: bytes, length: int, pid: int, flags: int) -> bool:
    dest = flags & _DEST_FLAGS
    return (nuls == b"\0\0" and 0 < length <= PIPE_MAX_PAYLOAD and pid != 0
            and dest in _DEST_BY_FLAG)


# -- file names and rotation times ----------------------------------------------------------

def parse_destinations(value: str) -> int:
    """log_destination as LOG_DESTINATION_* bits (only the file destinations)."""
    names = {d.strip().lower() for d in str(value).split(",")}
    bits = 0
    for name, bit in (("stderr", LOG_DESTINATION_STDERR), ("csvlog", LOG_DESTINATION_CSVLOG),
                      ("jsonlog", LOG_DESTINATION_JSONLOG)):
        if name in names:
            bits |= bit
    return bits


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ValueError, OSError, KeyError):
        return ZoneInfo("UTC")


def logfile_getname(directory: str, pattern: str, timestamp: float, tz: str,
                    suffix: str | None = None) -> str:
    """logfile_getname: directory/strftime(pattern); with a suffix, a trailing ".log"
    is replaced by it, otherwise it is appended (as PostgreSQL does for .csv/.json)."""
    name = f"{directory}/" + datetime.fromtimestamp(timestamp, _zone(tz)).strftime(pattern)
    if suffix is not None:
        if len(name) > 4 and name.endswith(".log"):
            name = name[:-4]
        name += suffix
    return name


def next_rotation_time(now: float, age_minutes: int, tz: str) -> float:
    """set_next_rotation_time: the next multiple of the rotation age, counted from the
    epoch in log_timezone's local time (so a 1d age rotates at local midnight)."""
    interval = age_minutes * 60
    offset = datetime.fromtimestamp(now, _zone(tz)).utcoffset()
    gmtoff = int(offset.total_seconds()) if offset else 0
    t = int(now) + gmtoff
    t -= t % interval
    t += interval
    return float(t - gmtoff)


# -- the log files ------------------------------------------------------------------------------

@dataclass
class LogFile:
    """An open log file: syslogFile or jsonlogFile with its last_*_file_name."""

    fd: int
    name: str  # as written to current_logfiles: log_directory/filename
    size: int

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


def _int_setting(value: object) -> int:
    if isinstance(value, str):
        return int(value, 8) if value.startswith("0") and value.isdigit() else int(value)
    return int(value)  # type: ignore[call-overload]


class SysLogger:
    """The logger's files and rotation state (the statics of syslogger.c)."""

    def __init__(self, datadir: str, settings) -> None:
        self.datadir = datadir
        self.settings = settings
        self.files: dict[int, LogFile] = {}  # LOG_DESTINATION_STDERR / _JSONLOG
        self.rotation_requested = False
        self.rotation_disabled = False
        self.next_rotation_time = 0.0
        self.current_dir = str(settings.get("log_directory"))
        self.current_filename = str(settings.get("log_filename"))
        self.current_age = self._rotation_age()
        self.last_open_errno = 0

    # -- settings ------------------------------------------------------------------

    def _destinations(self) -> int:
        return parse_destinations(self.settings.get("log_destination"))

    def _rotation_age(self) -> int:
        return _int_setting(self.settings.get("log_rotation_age"))

    def _rotation_size(self) -> int:
        return _int_setting(self.settings.get("log_rotation_size"))

    def _timezone(self) -> str:
        try:
            return str(self.settings.get("log_timezone"))
        except Exception:
            return "UTC"

    def _path(self, name: str) -> str:
        return os.path.join(self.datadir, name)

    def getname(self, timestamp: float, suffix: str | None = None) -> str:
        return logfile_getname(str(self.settings.get("log_directory")),
                               str(self.settings.get("log_filename")), timestamp,
                               self._timezone(), suffix)

    # -- start -------------------------------------------------------------------

    def open_initial(self, now: float) -> None:
        """SysLogger_Start's first files (always appended to) and SysLoggerMain's set-up."""
        self.make_log_directory()
        fh = self.logfile_open(self.getname(now), truncate=False, allow_errors=True)
        if fh is None:
            self.rotation_disabled = True
            elog.log("disabling automatic rotation (use SIGHUP to re-enable)")
        else:
            self.files[LOG_DESTINATION_STDERR] = fh
        if self._destinations() & LOG_DESTINATION_JSONLOG:
            fh = self.logfile_open(self.getname(now, ".json"), truncate=False,
                                   allow_errors=True)
            if fh is not None:
                self.files[LOG_DESTINATION_JSONLOG] = fh
        self.update_metainfo_datafile()
        self.set_next_rotation_time(now)

    def make_log_directory(self) -> None:
        """MakePGDirectory(Log_directory); errors are ignored as in PostgreSQL."""
        try:
            os.makedirs(self._path(str(self.settings.get("log_directory"))), 0o700,
                        exist_ok=True)
        except OSError:
            pass

    def logfile_open(self, name: str, truncate: bool, allow_errors: bool) -> LogFile | None:
        """logfile_open: create with log_file_mode (never without owner write)."""
        mode = _int_setting(self.settings.get("log_file_mode")) | stat.S_IWUSR
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_APPEND
        if truncate:
            flags |= os.O_TRUNC
        old_umask = os.umask(~mode & 0o777)
        try:
            fd = os.open(self._path(name), flags, 0o666)
        except OSError as exc:
            self.last_open_errno = exc.errno or 0
            if allow_errors:
                elog.log(f'could not open log file "{name}": {exc.strerror}')
            return None
        finally:
            os.umask(old_umask)
        return LogFile(fd, name, os.fstat(fd).st_size)

    # -- writing -----------------------------------------------------------------

    def write_syslogger_file(self, data: bytes, dest: int) -> None:
        """write_syslogger_file: structured output goes to its own file when that is
        open, everything else (and structured output without its file) to the stderr
        log; with no stderr log open, to the logger's own stderr."""
        fh = self.files.get(dest) if dest != LOG_DESTINATION_STDERR else None
        if fh is None:
            fh = self.files.get(LOG_DESTINATION_STDERR)
        fd = fh.fd if fh is not None else 2
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view)
            except InterruptedError:
                continue
            except OSError as exc:
                _write_stderr(f"could not write to log file: {exc.strerror}\n")
                return
            view = view[n:]
            if fh is not None:
                fh.size += n

    def direct_writer(self, data: bytes, proto_dest: int) -> None:
        """elog.direct_writer: the logger's own messages skip the pipe."""
        self.write_syslogger_file(data, _DEST_BY_FLAG.get(proto_dest, LOG_DESTINATION_STDERR))

    # -- rotation ----------------------------------------------------------------

    def set_next_rotation_time(self, now: float) -> None:
        age = self._rotation_age()
        if age <= 0 or self.rotation_disabled:
            return
        self.next_rotation_time = next_rotation_time(now, age, self._timezone())

    def check_rotation(self, now: float) -> None:
        """The rotation checks at the top of SysLoggerMain's loop."""
        time_based = False
        size_for = 0
        if self._rotation_age() > 0 and not self.rotation_disabled:
            if now >= self.next_rotation_time:
                self.rotation_requested = time_based = True
        limit = self._rotation_size() * 1024
        if not self.rotation_requested and limit > 0 and not self.rotation_disabled:
            for dest, fh in self.files.items():
                if fh.size >= limit:
                    self.rotation_requested = True
                    size_for |= dest
        if self.rotation_requested:
            # Neither time nor size: pg_rotate_logfile() or "tusk_ctl logrotate".
            if not time_based and size_for == 0:
                size_for = ALL_FILE_DESTINATIONS
            self.logfile_rotate(time_based, size_for, now)

    def sleep_time(self, now: float) -> float | None:
        """How long the main loop may sleep before a time-based rotation is due."""
        if self._rotation_age() > 0 and not self.rotation_disabled:
            return min(max(self.next_rotation_time - now, 0.0), MAX_SLEEP)
        return None

    def logfile_rotate(self, time_based: bool, size_for: int, now: float) -> None:
        self.rotation_requested = False
        # Name a time-based rotation after the planned time, not the actual one.
        fntime = self.next_rotation_time if time_based else now
        for dest, suffix in ((LOG_DESTINATION_STDERR, None), (LOG_DESTINATION_JSONLOG, ".json")):
            if not self._rotate_dest(time_based, size_for, fntime, dest, suffix):
                return
        self.update_metainfo_datafile()
        self.set_next_rotation_time(now)

    def _rotate_dest(self, time_based: bool, size_for: int, fntime: float, dest: int,
                     suffix: str | None) -> bool:
        """logfile_rotate_dest."""
        current = self.files.get(dest)
        if not self._destinations() & dest and dest != LOG_DESTINATION_STDERR:
            # Turned off: close the file (the stderr file is always kept open).
            if current is not None:
                current.close()
                del self.files[dest]
            return True
        if not time_based and not size_for & dest:
            return True
        name = self.getname(fntime, suffix)
        # Overwrite only a time-based rotation into a different file with truncation on.
        truncate = (bool(self.settings.get("log_truncate_on_rotation")) and time_based
                    and current is not None and name != current.name)
        fh = self.logfile_open(name, truncate=truncate, allow_errors=True)
        if fh is None:
            # Out of descriptors is transient; anything else means log_directory is bad.
            if self.last_open_errno not in (errno.ENFILE, errno.EMFILE):
                elog.log("disabling automatic rotation (use SIGHUP to re-enable)")
                self.rotation_disabled = True
            return False
        if current is not None:
            current.close()
        self.files[dest] = fh
        return True

    def reload(self, now: float) -> None:
        """What SysLoggerMain does after ProcessConfigFile(PGC_SIGHUP)."""
        directory = str(self.settings.get("log_directory"))
        if directory != self.current_dir:
            self.current_dir = directory
            self.rotation_requested = True
            self.make_log_directory()
        filename = str(self.settings.get("log_filename"))
        if filename != self.current_filename:
            self.current_filename = filename
            self.rotation_requested = True
        # Open or close the jsonlog file if log_destination changed.
        if bool(self._destinations() & LOG_DESTINATION_JSONLOG) != \
                (LOG_DESTINATION_JSONLOG in self.files):
            self.rotation_requested = True
        age = self._rotation_age()
        if age != self.current_age:
            self.current_age = age
            self.set_next_rotation_time(now)
        if self.rotation_disabled:
            self.rotation_disabled = False
            self.rotation_requested = True
        self.update_metainfo_datafile()

    # -- current_logfiles ----------------------------------------------------------

    def update_metainfo_datafile(self) -> None:
        """update_metainfo_datafile: rewrite DATADIR/current_logfiles atomically."""
        dests = self._destinations()
        target = self._path(LOG_METAINFO_DATAFILE)
        if not dests:
            try:
                os.unlink(target)
            except FileNotFoundError:
                pass
            except OSError as exc:
                elog.log(f'could not remove file "{LOG_METAINFO_DATAFILE}": {exc.strerror}')
            return
        lines = []
        for dest, label in ((LOG_DESTINATION_STDERR, "stderr"),
                            (LOG_DESTINATION_JSONLOG, "jsonlog")):
            fh = self.files.get(dest)
            if fh is not None and dests & dest:
                lines.append(f"{label} {fh.name}\n")
        tmp = self._path(LOG_METAINFO_DATAFILE_TMP)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                         self._datadir_file_mode())
            try:
                os.fchmod(fd, self._datadir_file_mode())
                os.write(fd, "".join(lines).encode())
            finally:
                os.close(fd)
        except OSError as exc:
            elog.log(f'could not open file "{LOG_METAINFO_DATAFILE_TMP}": {exc.strerror}')
            return
        try:
            os.rename(tmp, target)
        except OSError as exc:
            elog.log(f'could not rename file "{LOG_METAINFO_DATAFILE_TMP}" to '
                     f'"{LOG_METAINFO_DATAFILE}": {exc.strerror}')

    def _datadir_file_mode(self) -> int:
        """Files get the data directory's permissions (pg_file_create_mode)."""
        try:
            group = os.stat(self.datadir).st_mode & stat.S_IRGRP
        except OSError:
            group = 0
        return 0o640 if group else 0o600

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()
        self.files.clear()


def _write_stderr(message: str) -> None:
    """write_stderr: the logger's real stderr (the original one, or /dev/null)."""
    try:
        os.write(2, message.encode())
    except OSError:
        pass


# -- the process --------------------------------------------------------------------------------

class _Flags:
    reload_pending = False
    rotation_requested = False


def _sighup_handler(_signo: int, _frame: object) -> None:
    _Flags.reload_pending = True


def _sigusr1_handler(_signo: int, _frame: object) -> None:
    # PR_SET_PDEATHSIG also sends SIGUSR1 (procs/child.py); the postmaster's death
    # is no reason to rotate. The death pipe reports EOF before that signal arrives.
    if child.postmaster_is_alive():
        _Flags.rotation_requested = True


def _point_stdio_at_devnull() -> None:
    """After a restart our stdout/stderr are our own input pipe: that would hide EOF."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        fd = -1
    for target in (1, 2):
        try:
            os.close(target)
        except OSError:
            pass
        if fd >= 0:
            os.dup2(fd, target)
    if fd > 2:
        os.close(fd)


def syslogger_main(env: child.ChildEnv, settings, pipe_r: int) -> None:
    """SysLoggerMain: collect the cluster's output until EOF on the pipe."""
    if elog.redirection_done:
        _point_stdio_at_devnull()
    child.init_postmaster_child(env, "logger", "logger")
    child.install_handlers({
        signal.SIGHUP: _sighup_handler,
        signal.SIGINT: signal.SIG_IGN,
        signal.SIGTERM: signal.SIG_IGN,
        signal.SIGQUIT: signal.SIG_IGN,
        signal.SIGUSR1: _sigusr1_handler,
        signal.SIGUSR2: signal.SIG_IGN,
    })
    os.set_blocking(pipe_r, False)
    logger = SysLogger(env.datadir, settings)
    elog.direct_writer = logger.direct_writer
    logger.open_initial(time.time())
    assembler = ChunkAssembler(logger.write_syslogger_file)
    waiter = _Waiter(pipe_r)
    while True:
        child.reset_latch()
        now = time.time()
        if _Flags.reload_pending:
            _Flags.reload_pending = False
            for msg in settings.reload(env.datadir, is_postmaster=False):
                level = elog.LEVEL_BY_NAME.get(str(msg.elevel).upper(), elog.LOG)
                elog.ereport(level, msg.message, detail=msg.detail, hint=msg.hint)
            logger.reload(now)
        if _Flags.rotation_requested:
            _Flags.rotation_requested = False
            logger.rotation_requested = True
        logger.check_rotation(now)
        waiter.wait(logger.sleep_time(now))
        if waiter.readable:
            try:
                data = os.read(pipe_r, READ_BUF_SIZE)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                elog.log(f"could not read from logger pipe: {exc.strerror}")
                continue
            if data:
                assembler.feed(data)
                continue
            # EOF: nobody holds the write end any more; the cluster is gone.
            assembler.flush()
            elog.debug1("logger shutting down")
            logger.close()
            return


class _Waiter:
    """Sleep on the latch and the pipe (WaitEventSetWait with WL_LATCH_SET |
    WL_SOCKET_READABLE). The logger does not exit on postmaster death: it reads
    until EOF, so once the death pipe has reported EOF it is no longer watched."""

    def __init__(self, pipe_r: int) -> None:
        self.pipe_r = pipe_r
        self.postmaster_dead = False
        self.readable = False

    def wait(self, timeout: float | None) -> None:
        if not self.postmaster_dead:
            rc = child.wait_latch(timeout, [self.pipe_r])
            self.postmaster_dead = bool(rc & child.WL_POSTMASTER_DEATH)
            self.readable = bool(rc & child.WL_SOCKET_READABLE)
            return
        fds = [self.pipe_r] + ([child.latch.read_fd] if child.latch else [])
        try:
            ready, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:
            ready = []
        if child.latch is not None and child.latch.read_fd in ready:
            child.reset_latch()
        self.readable = self.pipe_r in ready
