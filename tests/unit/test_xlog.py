"""WAL insertion, writing and flushing across real processes (access/xlog.py):
a segment made as the postmaster makes it, workers forked as children are,
WAL files read back by tusk's reader and by PostgreSQL's pg_waldump."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from access import xlog
from access import xlog_internal as xi
from catalog.pg_control import ControlFile
from procs.postinit import init_process, proc_kill
from shmem.proc import BackendType
from storage import fd
from tests.unit.shmem_harness import FakeSettings, Harness, fork_worker, wait_workers
from utils import pgstat

PG_WALDUMP = "/usr/lib/postgresql/15/bin/pg_waldump"
SYSID = 7300000000000000001


@pytest.fixture
def wal(tmp_path):
    """Yields make(**settings) -> (settings, segment, datadir) with WAL bootstrapped
    (1 MB segments) and insertion positioned after the bootstrap checkpoint."""
    harness = Harness(tmp_path)
    datadir = harness.datadir
    made = {}

    def make(**values: object):
        values = {"wal_segment_size": 1024 * 1024, **values}
        settings = FakeSettings(**values)
        cf = ControlFile(system_identifier=SYSID, xlog_blcksz=settings.get("wal_block_size"),
                         xlog_seg_size=settings.get("wal_segment_size"))
        xlog.bootstrap_xlog(str(datadir), cf)
        settings, seg = harness.make(**values)
        geom = xlog.geometry()
        ckpt_end = geom.byte_pos_to_end_rec_ptr(
            geom.rec_ptr_to_byte_pos(cf.check_point) + xi.maxalign(114))
        page = (datadir / "pg_wal" / geom.file_name(1, 1)).read_bytes()[:geom.blcksz]
        xlog.init_insert_position(ckpt_end, cf.check_point, page)
        xlog.set_recovery_done(SYSID)
        made["start"] = cf.check_point
        return settings, seg, datadir

    make.made = made
    yield make
    harness.close()


def _insert(payload: bytes, xid: int = 0) -> int:
    rec = xlog.build_simple_record(xi.RM_XLOG_ID, xi.XLOG_NOOP, payload, xid=xid)
    return xlog.xlog_insert_record(rec)


def _read_all(datadir: Path, start: int):
    from access.xlogreader import XLogReader

    reader = XLogReader(str(datadir), xlog.geometry(), system_identifier=SYSID)
    recs = []
    try:
        rec = reader.read_record(start)
        while rec is not None:
            recs.append(rec)
            rec = reader.read_record()
    finally:
        reader.close()
    return recs, reader.error






def test_records_cross_pages_and_segments(wal):
    settings, seg, datadir = wal(wal_block_size=1024, wal_buffers=4)
    sizes = [10, 200, 900, 3000, 17, 300000, 5, 1500] * 6
    ends = [_insert(bytes([i % 251]) * n) for i, n in enumerate(sizes)]
    xlog.xlog_flush(ends[-1])
    assert xlog.get_flush_rec_ptr() >= ends[-1]
    recs, error = _read_all(datadir, wal.made["start"])
    assert len(recs) == 1 + len(sizes), error
    for rec, n, end in zip(recs[1:], sizes, ends, strict=True):
        assert len(rec.main_data) == n
        assert rec.end_lsn == end
    for a, b in zip(recs, recs[1:], strict=False):
        assert b.prev == a.lsn
    assert "invalid record length" in error
    assert pgstat.io.wal_buffers_full > 0  # 4 buffers of 1 kB: writes forced by inserts
    assert len(list((datadir / "pg_wal").iterdir())) >= 2


def test_concurrent_inserters(wal):
    settings, seg, datadir = wal()
    nworkers, per_worker = 4, 300

    def worker(w: int) -> None:
        procs = init_process(seg, settings, BackendType.B_BACKEND, is_superuser=True)
        xlog.attach(seg, settings, str(datadir), procs)
        end = 0
        for i in range(per_worker):
            end = _insert(f"w{w}:{i}:".encode() + b"x" * (i % 300), xid=100 + w)
        xlog.xlog_flush(end)
        xlog.close_log_file()
        proc_kill(procs)

    wait_workers([fork_worker(worker, w) for w in range(nworkers)])
    recs, _ = _read_all(datadir, wal.made["start"])
    assert len(recs) == 1 + nworkers * per_worker
    seen: dict[int, list[int]] = {}
    for rec in recs[1:]:
        w, i = (int(x.removeprefix(b"w")) for x in bytes(rec.main_data).split(b":")[:2])
        assert rec.xid == 100 + w
        seen.setdefault(w, []).append(i)
    assert all(seen[w] == list(range(per_worker)) for w in range(nworkers))


def test_group_commit_shares_syncs(wal):
    """8 committers, each WAL sync slowed to 5 ms: most commits ride on another's sync."""
    settings, seg, datadir = wal()
    fd.configure_fault_injection("fsync:pg_wal/*:delay=5ms")
    nworkers, commits = 8, 40
    stats_dir = Path(datadir) / "stats"
    stats_dir.mkdir()
    start_r, start_w = os.pipe()

    def worker(w: int) -> None:
        procs = init_process(seg, settings, BackendType.B_BACKEND, is_superuser=True)
        xlog.attach(seg, settings, str(datadir), procs)
        fd.configure_fault_injection("fsync:pg_wal/*:delay=5ms")
        os.read(start_r, 1)  # everybody starts together
        for i in range(commits):
            xlog.xlog_flush(_insert(f"commit {w} {i}".encode(), xid=w + 3))
        (stats_dir / str(w)).write_text(str(pgstat.io.wal_sync))
        xlog.close_log_file()
        proc_kill(procs)

    pids = [fork_worker(worker, w) for w in range(nworkers)]
    time.sleep(0.5)
    os.write(start_w, b"x" * nworkers)
    wait_workers(pids)
    os.close(start_r)
    os.close(start_w)
    syncs = sum(int(p.read_text()) for p in stats_dir.iterdir())
    # The daemon-level test (tests/test_durability.py) holds the 0.3; forked
    # workers on a loaded 2-core machine get a looser bound.
    assert syncs / (nworkers * commits) <= 0.5, syncs


def test_pg_waldump_reads_tusk_wal(wal):
    if not os.path.exists(PG_WALDUMP):
        pytest.skip("pg_waldump (PostgreSQL 15) is not installed")
    settings, seg, datadir = wal()
    end = 0
    for i in range(50):
        end = _insert(b"y" * (i * 97))
    xlog.xlog_flush(end)
    tmp = Path(tempfile.mkdtemp())
    try:
        for f in (datadir / "pg_wal").iterdir():
            shutil.copy(f, tmp / f.name)
        out = subprocess.run([PG_WALDUMP, "-p", str(tmp), "-s",
                              xi.format_lsn(wal.made["start"])], capture_output=True, text=True)
    finally:
        shutil.rmtree(tmp)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("rmgr:")]
    assert len(lines) == 51
    assert all("desc: NOOP" in ln for ln in lines[1:])
    assert "invalid record length" in out.stderr


def test_switch_ends_the_segment(wal):
    settings, seg, datadir = wal()
    first = _insert(b"before switch")
    switch_end = xlog.request_xlog_switch()
    assert switch_end > first
    geom = xlog.geometry()
    assert xlog.get_flush_rec_ptr() == geom.segment_start(geom.segno(first) + 1)
    # A second switch with nothing written since does nothing.
    assert xlog.request_xlog_switch() == geom.segment_start(geom.segno(first) + 1)
    after = _insert(b"after switch")
    xlog.xlog_flush(after)
    recs, _ = _read_all(datadir, wal.made["start"])
    assert [r.info & 0xF0 for r in recs[1:]] == [xi.XLOG_NOOP, xi.XLOG_SWITCH, xi.XLOG_NOOP]
    assert recs[3].lsn == geom.segment_start(geom.segno(first) + 1) + xi.SizeOfXLogLongPHD
