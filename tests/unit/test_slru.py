"""The SLRU under pg_xact across real processes: a segment made as the
postmaster makes it, workers forked as children are, segment files on disk.

``transam_harness`` is shared with test_clog.py and test_transam.py: it
creates the segment, attaches this process as a backend, replaces the WAL
hooks with a recorder, and removes everything at the end, even on failure.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from access import clog, slru, transam
from access.slru import BLCKSZ, SLRU_PAGE_VALID, SLRU_PAGES_PER_SEGMENT
from procs.postinit import init_process, proc_kill
from shmem import ipci, lwlock
from shmem.proc import BackendType, ProcArray
from shmem.segment import remove_segment
from storage import bufmgr, fd, smgr, sync
from tests.cluster import TEST_RUN_MARK
from tests.unit.shmem_harness import fork_worker, wait_workers  # noqa: F401 (used by test_clog, test_transam)
from utils.elog import PgError

_REGISTRY = Path(tempfile.gettempdir()) / f"tusk-test-segments-{TEST_RUN_MARK}"


class FakeSettings:
    def __init__(self, **values: object) -> None:
        self.values = {"max_connections": 8, "shared_buffers": 16, "data_checksums": True,
                       "track_io_timing": False, "zero_damaged_pages": False,
                       "ignore_checksum_failure": False, "wal_buffers": -1,
                       "wal_block_size": 8192, "wal_segment_size": 16 * 1024 * 1024,
                       "full_page_writes": True, "fsync": True, "commit_delay": 0,
                       "commit_siblings": 5, **values}

    def get(self, name: str) -> object:
        return self.values[name]


class FakeWal:
    """Stands in for access.xlog: records inserted records, hands out
    increasing LSNs, remembers how far WAL was "flushed"."""

    def __init__(self) -> None:
        self.records: list[tuple[int, int, bytes]] = []
        self.lsn = 0x1000000
        self.flushed = 0
        self.flush_calls: list[int] = []

    def insert(self, rmid: int, info: int, main_data: bytes = b"", blocks=(), *,
               xid: int = 0) -> int:
        self.records.append((rmid, info, bytes(main_data)))
        self.lsn += 64
        return self.lsn

    def flush(self, lsn: int) -> None:
        self.flush_calls.append(lsn)
        self.flushed = max(self.flushed, lsn)

    def zeropages(self) -> list[int]:
        return [struct.unpack("<i", d)[0] for r, i, d in self.records
                if (r, i) == (3, clog.CLOG_ZEROPAGE)]


class Harness:
    def __init__(self, datadir: Path, settings: FakeSettings, seg, procs: ProcArray,
                 wal: FakeWal) -> None:
        self.datadir = datadir
        self.settings = settings
        self.seg = seg
        self.procs = procs
        self.wal = wal

    def attach_child(self) -> ProcArray:
        """What a forked worker does first: claim a PGPROC slot and attach."""
        procs = init_process(self.seg, self.settings, BackendType.B_BACKEND, is_superuser=True)
        transam.attach(self.seg, self.settings, procs)
        self.wal.records.clear()
        self.wal.flush_calls.clear()
        return procs

    def xact_file(self, segno: int) -> Path:
        return self.datadir / "pg_xact" / f"{segno:04X}"


@contextlib.contextmanager
def transam_harness(tmp_path: Path, **values: object) -> Iterator[Harness]:
    datadir = tmp_path / "data"
    (datadir / "pg_xact").mkdir(parents=True)
    fd.set_data_directory(str(datadir))
    name = f"/tusk.test.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    with open(_REGISTRY, "a") as f:
        f.write(name + "\n")
    saved = (clog.xlog_insert_hook, clog.xlog_flush_hook, transam.recovery_in_progress_hook,
             transam.get_database_name_hook)
    wal = FakeWal()
    clog.xlog_insert_hook = wal.insert
    clog.xlog_flush_hook = wal.flush
    transam.recovery_in_progress_hook = lambda: False
    seg = None
    try:
        settings = FakeSettings(**values)
        seg = ipci.create_shared_memory_and_semaphores(name, settings)
        procs = init_process(seg, settings, BackendType.B_BACKEND, is_superuser=True)
        transam.attach(seg, settings, procs)
        clog.boot_strap_clog()
        yield Harness(datadir, settings, seg, procs, wal)
    finally:
        try:
            transam.detach()
            bufmgr.at_error_cleanup()
            lwlock.proc_exit()
        finally:
            (clog.xlog_insert_hook, clog.xlog_flush_hook, transam.recovery_in_progress_hook,
             transam.get_database_name_hook) = saved
            slru.in_recovery = False
            smgr.smgr_close_all()
            fd.configure_fault_injection(None)
            sync.reset()
            bufmgr._pool = None
            ipci.detach_shared_memory()
            if seg is not None:
                seg.destroy()
            remove_segment(name)
            fd.set_data_directory(None)


def end_worker(procs: ProcArray) -> None:
    """A worker's normal exit (ProcKill)."""
    transam.detach()
    proc_kill(procs)


# ---------------------------------------------------------------------------

@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    with transam_harness(tmp_path) as h:
        yield h


def _fill(ctl: slru.SlruCtl, pageno: int) -> None:
    """Make ``pageno`` resident as a fresh page stamped with its number."""
    lwlock.lwlock_acquire(ctl.lock, lwlock.LW_EXCLUSIVE)
    slotno = ctl.zero_page(pageno)
    page = ctl.page(slotno)
    struct.pack_into("<ii", page, 0, pageno, ~pageno)
    struct.pack_into("<i", page, BLCKSZ - 4, pageno * 7)
    lwlock.lwlock_release(ctl.lock)


def _read(ctl: slru.SlruCtl, pageno: int) -> tuple[int, int, int]:
    lwlock.lwlock_acquire(ctl.lock, lwlock.LW_EXCLUSIVE)
    try:
        page = ctl.page(ctl.read_page(pageno, True, pageno * clog.CLOG_XACTS_PER_PAGE))
        return (*struct.unpack_from("<ii", page, 0), struct.unpack_from("<i", page,
                                                                        BLCKSZ - 4)[0])
    finally:
        if lwlock.lwlock_held_by_me(ctl.lock):
            lwlock.lwlock_release(ctl.lock)


def test_buffer_count_follows_shared_buffers():
    assert clog.clog_shmem_buffers(FakeSettings(shared_buffers=16)) == 4
    assert clog.clog_shmem_buffers(FakeSettings(shared_buffers=16384)) == 32
    assert clog.clog_shmem_buffers(FakeSettings(shared_buffers=10_000_000)) == 128


def test_segment_file_names(harness):
    ctl = clog.ctl()
    assert ctl.file_name(0) == "pg_xact/0000"
    assert ctl.file_name(0x1A) == "pg_xact/001A"
    last_page = 0xFFFFFFFF // clog.CLOG_XACTS_PER_PAGE
    assert ctl.file_name(last_page // SLRU_PAGES_PER_SEGMENT) == "pg_xact/0FFF"
    assert clog.CLOG_MAX_SEGMENTS == 0x1000


def test_eviction_with_few_buffers_rereads_from_disk(harness):
    ctl = clog.ctl()
    assert ctl.nslots == 4
    npages = 40  # more than one segment file, ten times the pool
    for p in range(npages):
        _fill(ctl, p)
    assert ctl.stats.blks_written >= npages - ctl.nslots
    # The latest page is never the victim.
    assert ctl._find(npages - 1) >= 0
    for p in reversed(range(npages)):
        assert _read(ctl, p) == (p, ~p, p * 7)
    assert ctl.stats.blks_read >= npages - ctl.nslots
    clog.check_point_clog()
    assert harness.xact_file(0).stat().st_size == SLRU_PAGES_PER_SEGMENT * BLCKSZ
    assert harness.xact_file(1).stat().st_size == (npages - SLRU_PAGES_PER_SEGMENT) * BLCKSZ
    data = harness.xact_file(1).read_bytes()
    assert struct.unpack_from("<ii", data, 3 * BLCKSZ) == (35, ~35)
    assert not lwlock.any_lwlock_held()


def test_pages_shared_between_processes_under_eviction(harness):
    """Workers stamp disjoint slots of the same 12 pages through a pool of 4:
    every stamp survives the others' evictions and re-reads."""
    ctl = clog.ctl()
    npages, nworkers, rounds = 12, 4, 3
    for p in range(npages):
        _fill(ctl, p)

    def worker(w: int) -> None:
        procs = harness.attach_child()
        c = clog.ctl()
        for r in range(rounds):
            for p in range(npages):
                lwlock.lwlock_acquire(c.lock, lwlock.LW_EXCLUSIVE)
                slotno = c.read_page(p, True, 0)
                struct.pack_into("<i", c.page(slotno), 64 + 4 * w, r * 1000 + p)
                c.page_dirty[slotno] = 1
                lwlock.lwlock_release(c.lock)
        end_worker(procs)

    wait_workers([fork_worker(worker, w) for w in range(nworkers)])
    clog.check_point_clog()
    data = harness.xact_file(0).read_bytes()
    for p in range(npages):
        for w in range(nworkers):
            assert struct.unpack_from("<i", data, p * BLCKSZ + 64 + 4 * w)[0] == \
                (rounds - 1) * 1000 + p, (p, w)
        assert struct.unpack_from("<ii", data, p * BLCKSZ) == (p, ~p)


def test_reader_waits_for_write_in_progress(harness):
    """A worker writes page 1 slowly (injected delay); meanwhile this process
    asks for the page with write_ok=False and must wait for the write."""
    ctl = clog.ctl()
    _fill(ctl, 1)
    _fill(ctl, 2)  # page 1 is no longer the latest page
    r, w = os.pipe()

    def writer() -> None:
        procs = harness.attach_child()
        fd.configure_fault_injection("write:pg_xact/*:delay=400ms")
        c = clog.ctl()
        lwlock.lwlock_acquire(c.lock, lwlock.LW_EXCLUSIVE)
        slotno = c._find(1)
        os.write(w, b"x")
        c.write_page(slotno)
        lwlock.lwlock_release(c.lock)
        end_worker(procs)

    pid = fork_worker(writer)
    assert os.read(r, 1) == b"x"
    time.sleep(0.1)
    start = time.monotonic()
    lwlock.lwlock_acquire(ctl.lock, lwlock.LW_EXCLUSIVE)
    slotno = ctl.read_page(1, False, 0)
    assert ctl.page_status[slotno] == SLRU_PAGE_VALID and not ctl.page_dirty[slotno]
    lwlock.lwlock_release(ctl.lock)
    assert time.monotonic() - start >= 0.15
    wait_workers([pid])
    os.close(r)
    os.close(w)
    assert _read(ctl, 1) == (1, ~1, 7)


def test_write_error_gives_postgres_message_and_keeps_page_dirty(harness):
    ctl = clog.ctl()
    _fill(ctl, 3)
    fd.configure_fault_injection("write:pg_xact/*:EIO:count=1")
    with pytest.raises(PgError) as err:
        clog.check_point_clog()
    assert err.value.message == "could not access status of transaction 0"
    assert err.value.detail == ('Could not write to file "pg_xact/0000" at offset 24576: '
                                "Input/output error.")
    assert err.value.sqlstate == "58030"
    assert not lwlock.any_lwlock_held()
    slotno = ctl._find(3)
    assert ctl.page_dirty[slotno] and ctl.page_status[slotno] == SLRU_PAGE_VALID
    clog.check_point_clog()  # the fault fired once: this one succeeds
    assert not ctl.page_dirty[slotno]
    data = harness.xact_file(0).read_bytes()
    assert struct.unpack_from("<ii", data, 3 * BLCKSZ) == (3, ~3)


def test_read_errors(harness):
    ctl = clog.ctl()
    for p in range(6):
        _fill(ctl, p)
    clog.check_point_clog()
    xid = 1 * clog.CLOG_XACTS_PER_PAGE + 5
    fd.configure_fault_injection("read:pg_xact/0000:EIO")
    with pytest.raises(PgError) as err:
        clog.transaction_id_get_status(xid)
    assert err.value.message == f"could not access status of transaction {xid}"
    assert err.value.detail == ('Could not read from file "pg_xact/0000" at offset 8192: '
                                "Input/output error.")
    assert err.value.sqlstate == "58030"
    assert not lwlock.any_lwlock_held()
    fd.configure_fault_injection(None)
    assert clog.transaction_id_get_status(xid) == clog.TRANSACTION_STATUS_IN_PROGRESS

    missing = 40 * clog.CLOG_XACTS_PER_PAGE
    with pytest.raises(PgError) as err:
        clog.transaction_id_get_status(missing)
    assert err.value.detail == ('Could not open file "pg_xact/0001": '
                                "No such file or directory.")
    assert err.value.sqlstate == "58P01"
    assert ctl._find(40) < 0  # the slot went back to EMPTY

    # A short file: "read too few bytes", internal_error.
    for p in range(6, 12):  # push page 5 out of the pool
        _fill(ctl, p)
    assert ctl._find(5) < 0
    clog.check_point_clog()  # victims are clean: nothing extends the file again
    with open(harness.xact_file(0), "r+b") as f:
        f.truncate(5 * BLCKSZ + 100)
    with pytest.raises(PgError) as err:
        clog.transaction_id_get_status(5 * clog.CLOG_XACTS_PER_PAGE)
    assert err.value.detail == ('Could not read from file "pg_xact/0000" at offset 40960: '
                                "read too few bytes.")
    assert err.value.sqlstate == "XX000"
    assert not lwlock.any_lwlock_held()


def test_missing_segment_reads_as_zeroes_in_recovery(harness, capfd):
    slru.in_recovery = True
    assert clog.transaction_id_get_status(70 * clog.CLOG_XACTS_PER_PAGE) == 0
    assert 'file "pg_xact/0002" doesn\'t exist, reading as zeroes' in capfd.readouterr().err


def test_checkpoint_fsyncs_every_segment_written(harness, monkeypatch):
    """Writes register their segment's fsync (SYNC_HANDLER_CLOG) as relation writes
    do; here, with no checkpointer, this process keeps them, as a standalone
    backend does. CheckPointCLOG writes the pages and syncs the directory; the
    checkpoint's process_sync_requests syncs each segment once."""
    ctl = clog.ctl()
    synced: list[str] = []
    real = fd.pg_fsync

    def record(f: int, path: str | None = None) -> None:
        synced.append(path or "?")
        real(f, path)

    monkeypatch.setattr(fd, "pg_fsync", record)
    sync.reset()
    for p in range(36):  # evictions write segment 0000 outside any checkpoint
        _fill(ctl, p)
    assert sync.pending_sync_tags() == [ctl.file_tag(0)]
    assert synced == []
    clog.check_point_clog()
    assert synced == ["pg_xact"]
    assert sorted(t.segno for t in sync.pending_sync_tags()) == [0, 1]
    assert {t.handler for t in sync.pending_sync_tags()} == {sync.SYNC_HANDLER_CLOG}
    assert sync.process_sync_requests().files == 2
    assert synced == ["pg_xact", "pg_xact/0000", "pg_xact/0001"]
    synced.clear()
    clog.check_point_clog()  # nothing written since
    assert sync.process_sync_requests().files == 0
    assert synced == ["pg_xact"]


def test_fsync_failure_is_a_data_sync_error(harness):
    sync.reset()
    _fill(clog.ctl(), 2)
    clog.check_point_clog()
    fd.configure_fault_injection("fsync:pg_xact/0000:EIO:count=1")
    with pytest.raises(fd.DataSyncError) as err:
        sync.process_sync_requests()
    assert str(err.value) == 'could not fsync file "pg_xact/0000": Input/output error'
    assert sync.pending_sync_tags() == [clog.ctl().file_tag(0)]  # still owed
    assert sync.process_sync_requests().files == 1
    assert sync.pending_sync_tags() == []


def test_truncate_removes_whole_segments_before_cutoff(harness, capfd):
    ctl = clog.ctl()
    for p in range(4 * SLRU_PAGES_PER_SEGMENT):
        _fill(ctl, p)
    clog.check_point_clog()
    _fill(ctl, 2)  # an old page resident (and dirty) again
    ctl.latest_page_number = 4 * SLRU_PAGES_PER_SEGMENT - 1
    assert sorted(ctl.scan_directory()) == [0, 32, 64, 96]
    ctl.truncate(70)
    assert sorted(os.listdir(harness.datadir / "pg_xact")) == ["0002", "0003"]
    assert ctl._find(2) < 0
    assert _read(ctl, 70)[0] == 70
    # The latest page may never be cut off: a sign of wraparound.
    ctl.truncate(4 * SLRU_PAGES_PER_SEGMENT + 10)
    assert "could not truncate directory \"pg_xact\": apparent wraparound" in \
        capfd.readouterr().err
    assert sorted(os.listdir(harness.datadir / "pg_xact")) == ["0002", "0003"]


def test_does_physical_page_exist(harness):
    ctl = clog.ctl()
    assert ctl.does_physical_page_exist(0)  # BootStrapCLOG wrote it
    _fill(ctl, 1)
    assert not ctl.does_physical_page_exist(1)  # only in memory so far
    clog.check_point_clog()
    assert ctl.does_physical_page_exist(1)
    assert not ctl.does_physical_page_exist(2)
    assert not ctl.does_physical_page_exist(SLRU_PAGES_PER_SEGMENT)


def test_stuck_io_status_is_repaired_by_a_waiter(harness):
    """A page left READ_IN_PROGRESS by an I/O that died without cleaning up
    (its I/O lock free): the next process to wait on it marks it empty."""
    ctl = clog.ctl()
    _fill(ctl, 1)
    _fill(ctl, 2)
    clog.check_point_clog()
    lwlock.lwlock_acquire(ctl.lock, lwlock.LW_EXCLUSIVE)
    slotno = ctl._find(1)
    ctl.page(slotno)[:8] = bytes(8)
    ctl.page_status[slotno] = slru.SLRU_PAGE_READ_IN_PROGRESS
    slotno2 = ctl.read_page(1, True, 0)  # waits, repairs, reads from disk
    assert ctl.page_status[slotno2] == SLRU_PAGE_VALID
    lwlock.lwlock_release(ctl.lock)
    assert _read(ctl, 1) == (1, ~1, 7)
