"""storage.fd: virtual file descriptors, durable renames, sync failures and fault
injection."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import fd
from utils.elog import ERROR, PANIC, PgError


@pytest.fixture
def datadir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data directory that relative paths resolve against; fd state restored after."""
    monkeypatch.setattr(fd, "max_safe_fds", 32)
    monkeypatch.setattr(fd, "enable_fsync", True)
    monkeypatch.setattr(fd, "data_sync_retry", False)
    monkeypatch.setattr(fd, "io_timing_enabled", False)
    fd.set_data_directory(str(tmp_path))
    (tmp_path / "base" / "5").mkdir(parents=True)
    (tmp_path / "pg_wal").mkdir()
    yield tmp_path
    fd.configure_fault_injection(None)
    fd.close_all_files()
    fd.set_data_directory(None)


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record fsync(2)/fdatasync(2) calls by the path of the descriptor."""
    calls: list[str] = []
    real_fsync = os.fsync

    def fake(kind: str):
        def sync(fileno: int) -> None:
            calls.append(f"{kind} {os.readlink(f'/proc/self/fd/{fileno}')}")
            real_fsync(fileno)
        return sync

    monkeypatch.setattr(os, "fsync", fake("fsync"))
    monkeypatch.setattr(os, "fdatasync", fake("fdatasync"))
    return calls


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# -- File -----------------------------------------------------------------------------

def test_read_write_extend_truncate(datadir: Path) -> None:
    f = fd.path_name_open_file("base/5/100", os.O_RDWR | os.O_CREAT)
    assert (datadir / "base/5/100").exists()
    assert f.write(b"a" * 8192, 0) == 8192
    assert f.extend(b"b" * 8192, 8192) == 8192
    assert f.size() == 16384
    assert f.read(8192, 8192) == b"b" * 8192
    assert f.read(8192, 16384) == b""  # EOF: short read, no error
    buf = bytearray(8192)
    assert f.read_into(memoryview(buf), 0) == 8192 and buf == b"a" * 8192
    f.truncate(8192)
    assert f.size() == 8192
    f.sync()
    f.datasync()
    f.close()
    with pytest.raises(ValueError):
        f.read(10, 0)


def test_absolute_paths_work_too(datadir: Path) -> None:
    f = fd.path_name_open_file(str(datadir / "abs"), os.O_RDWR | os.O_CREAT)
    f.write(b"x", 0)
    assert (datadir / "abs").read_bytes() == b"x"
    f.close()


def test_lru_closes_least_recently_used(datadir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fd.set_max_safe_fds(3, probe=False)
    before = open_fds()
    files = [fd.path_name_open_file(f"base/5/{i}", os.O_RDWR | os.O_CREAT) for i in range(5)]
    assert fd.nfile() == 3 and open_fds() - before == 3
    assert [f.is_open for f in files] == [False, False, True, True, True]
    for i, f in enumerate(files):
        f.write(bytes([i]) * 16, 0)
        assert fd.nfile() <= 3
    # files[0..1] were reopened (without O_TRUNC) and the oldest ones evicted again
    assert [f.is_open for f in files] == [False, False, True, True, True]
    for i, f in enumerate(files):
        assert f.read(16, 0) == bytes([i]) * 16
    assert open_fds() - before == 3
    # touching a file makes it most recently used
    files[2].read(1, 0)
    fd.path_name_open_file("base/5/extra", os.O_RDWR | os.O_CREAT)
    assert files[2].is_open and not files[3].is_open
    fd.close_all_files()
    assert fd.nfile() == 0 and open_fds() == before


def test_basic_files_count_against_the_limit(datadir: Path) -> None:
    fd.set_max_safe_fds(2, probe=False)
    a = fd.path_name_open_file("base/5/a", os.O_RDWR | os.O_CREAT)
    b = fd.path_name_open_file("base/5/b", os.O_RDWR | os.O_CREAT)
    raw = fd.basic_open_file("pg_wal/seg", os.O_RDWR | os.O_CREAT)
    assert fd.nfile() == 2 and not a.is_open and b.is_open
    assert fd.pg_pwrite(raw, b"wal", 0) == 3
    assert fd.pg_pread(raw, 3, 0) == b"wal"
    fd.pg_fdatasync(raw)
    fd.basic_close(raw)
    assert fd.nfile() == 1


def test_emfile_releases_an_lru_file(datadir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keep = fd.path_name_open_file("base/5/keep", os.O_RDWR | os.O_CREAT)
    real_open = os.open
    failed: list[str] = []

    def open_once_emfile(path, flags, mode=0o777, *, dir_fd=None):  # noqa: ANN001
        if not failed:
            failed.append(path)
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", open_once_emfile)
    f = fd.path_name_open_file("base/5/new", os.O_RDWR | os.O_CREAT)
    assert failed == ["base/5/new"] and f.is_open and not keep.is_open


def test_set_max_safe_fds_probe() -> None:
    saved = fd.max_safe_fds
    try:
        n = fd.set_max_safe_fds(1000)
        assert fd.FD_MINFREE <= n < 1000
        with pytest.raises(PgError) as info:
            fd.set_max_safe_fds(20)
        assert info.value.sqlstate == "53000"
        assert "insufficient file descriptors" in info.value.message
    finally:
        fd.max_safe_fds = saved


# -- sync, rename, unlink ----------------------------------------------------------------

def test_fsync_off_skips_the_syscall(datadir: Path, fsyncs: list[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    f = fd.path_name_open_file("base/5/1", os.O_RDWR | os.O_CREAT)
    f.sync()
    assert len(fsyncs) == 1
    monkeypatch.setattr(fd, "enable_fsync", False)
    f.sync()
    f.datasync()
    fd.fsync_fname("base/5/1")
    assert len(fsyncs) == 1


def test_durable_rename(datadir: Path, fsyncs: list[str]) -> None:
    (datadir / "global").mkdir()
    (datadir / "global/pg_control.tmp").write_bytes(b"new")
    (datadir / "global/pg_control").write_bytes(b"old")
    fd.durable_rename("global/pg_control.tmp", "global/pg_control")
    assert (datadir / "global/pg_control").read_bytes() == b"new"
    assert not (datadir / "global/pg_control.tmp").exists()
    g = str(datadir / "global")
    assert fsyncs == [f"fsync {g}/pg_control.tmp", f"fsync {g}/pg_control",
                      f"fsync {g}/pg_control", f"fsync {g}"]


def test_durable_rename_errors(datadir: Path) -> None:
    with pytest.raises(PgError) as info:
        fd.durable_rename("missing", "other")
    assert info.value.message == 'could not open file "missing": No such file or directory'
    assert info.value.sqlstate == "58P01"
    (datadir / "a").write_bytes(b"a")
    fd.configure_fault_injection("rename:a:EACCES")
    with pytest.raises(PgError) as info:
        fd.durable_rename("a", "b")
    assert info.value.message == 'could not rename file "a" to "b": Permission denied'
    assert info.value.sqlstate == "42501"


def test_durable_unlink(datadir: Path, fsyncs: list[str]) -> None:
    (datadir / "pg_wal/old").write_bytes(b"x")
    fd.durable_unlink("pg_wal/old")
    assert not (datadir / "pg_wal/old").exists()
    assert fsyncs == [f"fsync {datadir}/pg_wal"]
    with pytest.raises(PgError) as info:
        fd.durable_unlink("pg_wal/old")
    assert info.value.message == 'could not remove file "pg_wal/old": No such file or directory'


def test_directory_fsync_tolerates_einval(datadir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(fileno: int) -> None:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "fsync", refuse)
    fd.fsync_fname("base", isdir=True)  # ignored, as PostgreSQL does
    (datadir / "f").write_bytes(b"x")
    with pytest.raises(fd.DataSyncError):
        fd.fsync_fname("f")


def test_make_directory_and_truncate_and_exists(datadir: Path) -> None:
    fd.make_pg_directory("base/16384")
    assert (datadir / "base/16384").is_dir()
    assert (datadir / "base/16384").stat().st_mode & 0o777 == 0o700
    (datadir / "base/16384/1").write_bytes(b"x" * 100)
    fd.pg_truncate("base/16384/1", 10)
    assert fd.file_size("base/16384/1") == 10
    assert fd.file_exists("base/16384/1") and not fd.file_exists("base/16384/2")
    fd.unlink("base/16384/1")
    assert not fd.file_exists("base/16384/1")


def test_errcode_for_file_access() -> None:
    assert fd.errcode_for_file_access(errno.ENOENT) == "58P01"
    assert fd.errcode_for_file_access(errno.EEXIST) == "58P02"
    assert fd.errcode_for_file_access(errno.EACCES) == "42501"
    assert fd.errcode_for_file_access(errno.ENOSPC) == "53100"
    assert fd.errcode_for_file_access(errno.EMFILE) == "53000"
    assert fd.errcode_for_file_access(errno.EIO) == "58030"
    assert fd.errcode_for_file_access(errno.EBADF) == "XX000"


# -- fault injection ----------------------------------------------------------------------

def test_no_faults_configured_by_default() -> None:
    assert fd._faults is None


def test_eio_after_n_writes(datadir: Path) -> None:
    fd.configure_fault_injection("write:base/*/16384*:EIO:after=3")
    f = fd.path_name_open_file("base/5/16384", os.O_RDWR | os.O_CREAT)
    other = fd.path_name_open_file("base/5/99", os.O_RDWR | os.O_CREAT)
    for i in range(3):
        f.write(b"x" * 8192, i * 8192)
        other.write(b"y", 0)
    with pytest.raises(OSError) as info:
        f.write(b"x" * 8192, 3 * 8192)
    assert info.value.errno == errno.EIO and info.value.filename == "base/5/16384"
    with pytest.raises(OSError):
        f.extend(b"x" * 8192, 4 * 8192)  # "write" also matches extends
    other.write(b"y", 0)  # not matched
    assert f.read(1, 0) == b"x"  # reads unaffected
    g = fd.path_name_open_file("base/5/16384.1", os.O_RDWR | os.O_CREAT)
    with pytest.raises(OSError):
        g.write(b"x", 0)  # later segments match the pattern too


def test_count_limits_fault(datadir: Path) -> None:
    fd.configure_fault_injection("read:*:EIO:count=2")
    f = fd.path_name_open_file("base/5/1", os.O_RDWR | os.O_CREAT)
    for _ in range(2):
        with pytest.raises(OSError):
            f.read(1, 0)
    assert f.read(1, 0) == b""


def test_fsync_fault_is_a_data_sync_error(datadir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fd.configure_fault_injection("fsync:pg_wal/*:EIO")
    raw = fd.basic_open_file("pg_wal/000000010000000000000001", os.O_RDWR | os.O_CREAT)
    with pytest.raises(fd.DataSyncError) as info:
        fd.pg_fsync(raw)
    err = info.value
    assert err.severity == PANIC and err.sqlstate == "58030"
    assert err.message == ('could not fsync file "pg_wal/000000010000000000000001": '
                           "Input/output error")
    with pytest.raises(fd.DataSyncError) as info:
        fd.pg_fdatasync(raw)
    assert info.value.message.startswith('could not fdatasync file "pg_wal/')
    fd.basic_close(raw)
    f = fd.path_name_open_file("base/5/1", os.O_RDWR | os.O_CREAT)
    f.sync()  # not matched
    monkeypatch.setattr(fd, "data_sync_retry", True)
    fd.configure_fault_injection("fsync:base/5/1:EIO")
    with pytest.raises(fd.DataSyncError) as info:
        f.sync()
    assert info.value.severity == ERROR


def test_faults_fire_even_with_fsync_off(datadir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fd, "enable_fsync", False)
    fd.configure_fault_injection("fsync:*:EIO")
    f = fd.path_name_open_file("base/5/1", os.O_RDWR | os.O_CREAT)
    with pytest.raises(fd.DataSyncError):
        f.sync()


def test_open_unlink_mkdir_truncate_faults(datadir: Path) -> None:
    fd.configure_fault_injection("open:base/5/locked:EACCES;unlink:*:EBUSY;"
                                 "mkdir:base/*:ENOSPC;truncate:*:EROFS")
    with pytest.raises(PermissionError):
        fd.path_name_open_file("base/5/locked", os.O_RDWR | os.O_CREAT)
    assert not (datadir / "base/5/locked").exists()
    (datadir / "x").write_bytes(b"x")
    with pytest.raises(OSError) as info:
        fd.unlink("x")
    assert info.value.errno == errno.EBUSY
    with pytest.raises(OSError):
        fd.make_pg_directory("base/6")
    with pytest.raises(OSError):
        fd.pg_truncate("x", 0)


def test_delay_shows_in_io_timing(datadir: Path) -> None:
    fd.set_io_timing(True)
    assert fd.io_timing_enabled
    f = fd.path_name_open_file("base/5/1", os.O_RDWR | os.O_CREAT)
    f.write(b"x" * 8192, 0)
    start = fd.io_time_start()
    f.read(8192, 0)
    assert fd.io_time_elapsed_us(start) < 40_000
    fd.configure_fault_injection("read:base/5/*:delay=50ms")
    start = fd.io_time_start()
    f.read(8192, 0)
    assert fd.io_time_elapsed_us(start) >= 50_000
    fd.configure_fault_injection("write:*:delay=2000us:count=1")
    start = fd.io_time_start()
    f.write(b"x", 0)
    assert fd.io_time_elapsed_us(start) >= 2_000


def test_absolute_path_matched_relative_to_datadir(datadir: Path) -> None:
    fd.configure_fault_injection("write:base/5/7:ENOSPC", str(datadir))
    f = fd.path_name_open_file(str(datadir / "base/5/7"), os.O_RDWR | os.O_CREAT)
    with pytest.raises(OSError) as info:
        f.write(b"x", 0)
    assert info.value.errno == errno.ENOSPC


@pytest.mark.parametrize("spec", [
    "write", "write:*", "bogus:*:EIO", "write:*:EWHATEVER", "write:*:after=1",
    "write:*:delay=5years", "write:*:EIO:after=x",
])
def test_bad_specs_rejected(spec: str) -> None:
    with pytest.raises(ValueError, match="fault spec"):
        fd.parse_fault_spec(spec)


def test_spec_parsing() -> None:
    specs = fd.parse_fault_spec(" write:base/*:EIO:after=3:count=1 ; fsync:pg_wal/*:EIO;"
                                "*:*:delay=1s ")
    assert [(s.pattern, s.err, s.delay, s.after, s.count) for s in specs] == [
        ("base/*", errno.EIO, 0.0, 3, 1), ("pg_wal/*", errno.EIO, 0.0, 0, None),
        ("*", 0, 1.0, 0, None)]
    assert specs[0].ops == {"write", "extend"} and specs[1].ops == {"fsync", "fdatasync"}
    assert "mkdir" in specs[2].ops
