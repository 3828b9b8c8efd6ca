"""The checkpointer across real processes: a segment made as the postmaster makes
it, the checkpointer forked and run as the postmaster runs it (procs.aux), the
test process acting as a backend that dirties buffers and writes WAL.

Covers the request protocol (WAIT through the counters and condition
variables), timed checkpoints and the idle skip, WAL-triggered checkpoints with
checkpoint_warning, pacing, BM_CHECKPOINT_NEEDED, the fsync request queue
(absorption, compaction, a full queue), DELAY_CHKPT_START, WAL recycling, and
failed writes and fsyncs.
"""

from __future__ import annotations

import faulthandler
import os
import re
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from access import transam, xlog
from access import xlog_internal as xi
from access import xlogcheckpoint as xc
from access.xlogcheckpoint import (
    CHECKPOINT_FORCE,
    CHECKPOINT_IMMEDIATE,
    CHECKPOINT_WAIT,
)
from access.xlogreader import XLogReader
from catalog.pg_control import ControlFile, DBState, read_control_file, write_control_file
from procs import checkpointer, child
from shmem import buf_internals as bi
from shmem import checkpointer_shmem as cks
from shmem.lwlock import LW_EXCLUSIVE, lwlock_acquire, lwlock_release
from storage import bufmgr, bufpage, fd, md, smgr, sync
from storage.relfilenode import DEFAULTTABLESPACE_OID, MAIN_FORKNUM, RelFileNode
from tests.unit.shmem_harness import FakeSettings, Harness
from utils import elog
from utils.elog import PgError

SYSID = 7300000000000000002
RNODE = RelFileNode(DEFAULTTABLESPACE_OID, 5, 16384)
MB = 1024 * 1024


@dataclass
class Cluster:
    """A data directory with WAL and pg_control, a segment, this process attached
    as a backend, and the auxiliary processes forked for the test."""

    datadir: Path
    settings: FakeSettings
    seg: object
    log: Path
    children: dict[str, int] = field(default_factory=dict)
    death_w: int = -1

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, pattern: str, timeout: float = 15.0, start: int = 0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.log_text()[start:])
            if m:
                return m
            time.sleep(0.02)
        raise TimeoutError(f"{pattern!r} not in log:\n{self.log_text()}")

    def start_aux(self, kind: str, before: Callable[[], None] | None = None) -> int:
        """Fork an auxiliary process exactly as the postmaster does (procs.aux),
        its log going to ``self.log``; ``before`` runs in the child first."""
        if self.death_w < 0:
            self._death_r, self.death_w = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            code = 1
            try:
                signal.alarm(120)
                faulthandler.disable()  # a PANIC's abort() is expected, not a crash to report
                logfd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                os.dup2(logfd, 2)
                os.close(self.death_w)
                elog.configure(self.settings.get)
                if before is not None:
                    before()
                from procs import aux

                env = child.ChildEnv(datadir=str(self.datadir), postmaster_pid=parent,
                                     death_pipe_r=self._death_r)
                aux.aux_main(kind, env, self.settings, self.seg)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        self.children[kind] = pid
        return pid

    def start_checkpointer(self, before: Callable[[], None] | None = None) -> int:
        pid = self.start_aux("checkpointer", before)
        w = cks.words(self.seg)
        deadline = time.monotonic() + 10
        while w[cks.W_CHECKPOINTER_PID] != pid:
            assert time.monotonic() < deadline, "checkpointer did not start:\n" + self.log_text()
            time.sleep(0.01)
        return pid

    def stop(self, kind: str, sig: int = signal.SIGUSR2, timeout: float = 30) -> int:
        """Stop an auxiliary process; returns its exit code (negative: signal)."""
        pid = self.children.pop(kind)
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        return _wait_exit(pid, timeout)


def _wait_exit(pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"process {pid} did not exit")


def make_cluster(tmp_path: Path, **values: object) -> tuple[Harness, Cluster]:
    values = {"wal_segment_size": MB, "shared_buffers": 32, "log_checkpoints": True,
              "log_min_messages": "warning", **values}
    harness = Harness(tmp_path)
    datadir = harness.datadir
    settings = FakeSettings(**values)
    cf = ControlFile(system_identifier=SYSID, xlog_blcksz=settings.get("wal_block_size"),
                     xlog_seg_size=settings.get("wal_segment_size"))
    xlog.bootstrap_xlog(str(datadir), cf)
    cf.state = DBState.DB_IN_PRODUCTION
    write_control_file(str(datadir), cf, create=True, do_sync=False)
    settings, seg = harness.make(**values)
    geom = xlog.geometry()
    ckpt_end = geom.byte_pos_to_end_rec_ptr(
        geom.rec_ptr_to_byte_pos(cf.check_point) + xi.maxalign(114))
    page = (datadir / "pg_wal" / geom.file_name(1, 1)).read_bytes()[:geom.blcksz]
    xlog.init_insert_position(ckpt_end, cf.check_point, page)
    xlog.set_redo_rec_ptr(cf.check_point_copy.redo, True)
    xlog.set_recovery_done(SYSID)
    from access import clog

    clog.boot_strap_clog()
    return harness, Cluster(datadir, settings, seg, tmp_path / "server.log")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """make(**settings) -> Cluster; every forked process is stopped at the end."""
    made: list[tuple[Harness, Cluster]] = []

    def make(**values: object) -> Cluster:
        h, c = make_cluster(tmp_path, **values)
        made.append((h, c))
        return c

    yield make
    for h, c in made:
        for kind in list(c.children):
            try:
                c.stop(kind, signal.SIGQUIT, timeout=10)
            except AssertionError:
                pass
        if c.death_w >= 0:
            os.close(c.death_w)
            os.close(c._death_r)
        h.close()


# -- workload helpers ------------------------------------------------------------------------

def make_relation(nblocks: int, rnode: RelFileNode = RNODE, backend: int | None = None):
    reln = smgr.smgr_open(rnode, backend)
    smgr.smgr_create(reln, MAIN_FORKNUM)
    for blk in range(nblocks):
        page = bytearray(bi.BLCKSZ)
        bufpage.page_init(page, bi.BLCKSZ, 0)
        smgr.smgr_extend(reln, MAIN_FORKNUM, blk, page)
    return reln


def dirty_block(reln, blk: int, value: int = 1) -> int:
    """Change a byte of the block and mark it dirty; returns its buffer."""
    buf = bufmgr.read_buffer(reln, blk)
    bufmgr.lock_buffer(buf, bufmgr.BUFFER_LOCK_EXCLUSIVE)
    page = bufmgr.buffer_get_page(buf)
    page[100] = value & 0xFF
    bufmgr.mark_buffer_dirty(buf)
    bufmgr.unlock_release_buffer(buf)
    return buf


def buffer_state(buf: int) -> int:
    return bufmgr.pool().descs.state(buf - 1)


def insert_wal(nbytes: int, chunk: int = 8000) -> int:
    end = 0
    while nbytes > 0:
        n = min(chunk, nbytes)
        rec = xlog.build_simple_record(xi.RM_XLOG_ID, xi.XLOG_NOOP, b"w" * n)
        end = xlog.xlog_insert_record(rec)
        nbytes -= n
    xlog.xlog_flush(end)
    return end


def stop_when_idle(pid: int) -> None:
    """SIGSTOP an auxiliary process once it sleeps in its latch wait (select), so
    that it cannot be stopped holding a lock the test will need."""
    deadline = time.monotonic() + 10
    while True:
        with open(f"/proc/{pid}/wchan") as f:
            wchan = f.read()
        if "select" in wchan or "poll" in wchan:
            break
        assert time.monotonic() < deadline, "the process never went idle"
        time.sleep(0.01)
    os.kill(pid, signal.SIGSTOP)


def counters(c: Cluster) -> tuple[int, int, int, int]:
    return cks.read_checkpoint_counters(c.seg)


def stats() -> dict:
    return checkpointer.read_bgwriter_stats()


# -- requests ----------------------------------------------------------------------------------

def test_requested_checkpoint_waits_and_writes_everything(cluster):
    c = cluster()
    c.start_checkpointer()
    reln = make_relation(8)  # the extends' sync requests go to the checkpointer's queue
    before = insert_wal(100)
    bufs = [dirty_block(reln, b) for b in range(8)]
    assert all(buffer_state(b) & bi.BM_DIRTY for b in bufs)
    checkpointer.request_checkpoint(CHECKPOINT_IMMEDIATE | CHECKPOINT_FORCE | CHECKPOINT_WAIT)
    # Returned only once complete: nothing dirtied before the redo pointer is dirty.
    assert not any(buffer_state(b) & bi.BM_DIRTY for b in bufs)
    log = c.log_text()
    assert "LOG:  checkpoint starting: immediate force wait\n" in log
    m = re.search(r"LOG:  checkpoint complete: wrote (\d+) buffers \((\d+\.\d)%\); "
                  r"0 WAL file\(s\) added, 0 removed, 0 recycled; "
                  r"write=\d+\.\d{3} s, sync=\d+\.\d{3} s, total=\d+\.\d{3} s; "
                  r"sync files=(\d+), longest=\d+\.\d{3} s, average=\d+\.\d{3} s; "
                  r"distance=(\d+) kB, estimate=(\d+) kB\n", log)
    assert m, log
    assert int(m[1]) == 8 and m[2] == f"{800 / 32:.1f}"
    assert int(m[3]) == 1  # base/5/16384: the extends and writes were queued, then synced
    started, done, failed = counters(c)[1:]
    assert started == done == 1 and failed == 0
    s = stats()
    assert s["checkpoints_req"] == 1 and s["buffers_checkpoint"] == 8
    assert s["buffers_backend"] >= 8  # the extends, forwarded as sync requests
    # pg_control points at an online checkpoint record whose redo is before it.
    cf = read_control_file(str(c.datadir))
    reader = XLogReader(str(c.datadir), xlog.geometry(), system_identifier=SYSID)
    rec = reader.read_record(cf.check_point)
    reader.close()
    assert rec is not None and rec.rmid == xi.RM_XLOG_ID
    assert rec.info & xi.XLR_RMGR_INFO_MASK == xi.XLOG_CHECKPOINT_ONLINE
    redo = xi.CHECKPOINT.unpack(bytes(rec.main_data))[0]
    assert redo == cf.check_point_copy.redo and before <= redo <= cf.check_point
    assert cf.state == DBState.DB_IN_PRODUCTION
    assert int(m[4]) == (redo - (MB + xi.SizeOfXLogLongPHD)) // 1024  # since bootstrap
    # The data reached the file.
    data = (c.datadir / "base/5/16384").read_bytes()
    assert all(data[b * bi.BLCKSZ + 100] == 1 for b in range(8))
    assert c.stop("checkpointer") == 0  # SIGUSR2: the shutdown checkpoint
    assert "LOG:  checkpoint starting: shutdown immediate\n" in c.log_text()
    assert read_control_file(str(c.datadir)).state == DBState.DB_SHUTDOWNED


def test_checkpoint_needed_marks_only_what_was_dirty(cluster):
    """BM_CHECKPOINT_NEEDED: set on every dirty permanent buffer at the start, not
    on a temporary relation's, not on one dirtied afterwards; writes in block order."""
    c = cluster(trace_probes=True)
    reln = make_relation(12)
    temp = make_relation(2, RelFileNode(DEFAULTTABLESPACE_OID, 5, 16390), backend=3)
    for blk in (5, 2, 9, 0, 7, 3):
        dirty_block(reln, blk)
    temp_buf = dirty_block(temp, 0)
    insert_wal(100)
    # Hold block 0's content lock so the checkpointer stops at its first buffer.
    first = bufmgr.read_buffer(reln, 0)
    bufmgr.lock_buffer(first, bufmgr.BUFFER_LOCK_EXCLUSIVE)
    c.start_checkpointer()
    checkpointer.request_checkpoint(CHECKPOINT_IMMEDIATE | CHECKPOINT_FORCE)
    c.wait_for_log(r"trace probe buffer__sync__start\(NBuffers=32, num_to_scan=6\)")
    late = dirty_block(reln, 11)
    states = {}
    for blk in range(12):
        buf = bufmgr.read_buffer(reln, blk)
        states[blk] = buffer_state(buf)
        bufmgr.release_buffer(buf)
    for blk in (5, 2, 9, 0, 7, 3):
        assert states[blk] & bi.BM_CHECKPOINT_NEEDED, blk
    assert not states[11] & bi.BM_CHECKPOINT_NEEDED and states[11] & bi.BM_DIRTY
    assert not buffer_state(temp_buf) & bi.BM_CHECKPOINT_NEEDED
    bufmgr.unlock_release_buffer(first)
    c.wait_for_log(r"checkpoint complete")
    assert buffer_state(temp_buf) & bi.BM_DIRTY  # not permanent: left for eviction
    assert buffer_state(late) & bi.BM_DIRTY  # dirtied after the redo pointer
    written = [int(b) for b in re.findall(r"buffer__sync__written\(buf_id=(\d+)\)",
                                          c.log_text())]
    tags = [bufmgr.pool().descs.tag(b)[4] for b in written]
    assert tags == [0, 2, 3, 5, 7, 9]
    # 76: IMMEDIATE | FORCE | REQUESTED (request_checkpoint adds REQUESTED, as PostgreSQL)
    for probe in ("checkpoint__start(flags=76)", "buffer__checkpoint__start(flags=76)",
                  "buffer__sync__done(NBuffers=32, num_written=6, num_to_scan=6)",
                  "buffer__checkpoint__sync__start()", "buffer__checkpoint__done()",
                  "checkpoint__done(bufs_written=6, NBuffers=32"):
        assert f"trace probe {probe}" in c.log_text(), probe



def test_timed_checkpoints_skip_when_idle(cluster):
    c = cluster(checkpoint_timeout=1, log_min_messages="debug1")
    c.start_checkpointer()
    # Nothing written since the bootstrap checkpoint: skipped, but counted.
    c.wait_for_log(r"DEBUG:  checkpoint skipped because system is idle\n", timeout=10)
    assert "checkpoint starting" not in c.log_text()
    assert stats()["checkpoints_timed"] >= 1
    insert_wal(200)
    m = c.wait_for_log(r"LOG:  checkpoint starting: time\n", timeout=10)
    c.wait_for_log(r"checkpoint complete: wrote 0 buffers", start=m.start())
    # The checkpoint record is the last WAL now: the next timed one is skipped again.
    n = c.log_text().count("checkpoint skipped because system is idle")
    deadline = time.monotonic() + 10
    while c.log_text().count("checkpoint skipped because system is idle") == n:
        assert time.monotonic() < deadline, c.log_text()
        time.sleep(0.05)
    assert c.log_text().count("checkpoint starting: time") == 1
    s = stats()
    assert s["checkpoints_timed"] >= 3 and s["checkpoints_req"] == 0


def test_sigint_is_an_outside_checkpoint_command(cluster):
    """What tusk_ctl checkpoint does: SIGINT, then poll the counters read-only."""
    c = cluster()
    pid = c.start_checkpointer()
    assert cks.tool_request_checkpoint(c.seg, timeout=20) is None
    assert "checkpoint starting: immediate force wait\n" in c.log_text()
    assert counters(c) == (pid, 1, 1, 0)
    assert stats()["checkpoints_req"] == 1
    c.stop("checkpointer")
    assert cks.tool_request_checkpoint(c.seg, timeout=1) == \
        "could not signal for checkpoint: checkpointer is not running"


def test_wal_volume_triggers_checkpoints_warns_and_recycles(cluster):
    """1 MB segments and max_wal_size = 2 MB: CheckPointSegments = 1, so completing
    a segment asks for a checkpoint (CAUSE_XLOG); they come closer together than
    checkpoint_warning; old segments are recycled or removed."""
    c = cluster(max_wal_size=2, min_wal_size=2, checkpoint_warning=30)
    assert xc.check_point_segments(c.settings) == 1
    c.start_checkpointer()
    wal = c.datadir / "pg_wal"
    for _ in range(4):
        n = c.log_text().count("checkpoint complete")
        insert_wal(MB + 1000)  # completes at least one segment
        deadline = time.monotonic() + 20
        while c.log_text().count("checkpoint complete") == n:
            assert time.monotonic() < deadline, c.log_text()
            time.sleep(0.02)
    log = c.log_text()
    assert "LOG:  checkpoint starting: wal\n" in log
    assert re.search(r"LOG:  checkpoints are occurring too frequently \(\d+ seconds? apart\)\n"
                     r".*HINT:  Consider increasing the configuration parameter "
                     r'"max_wal_size"\.\n', log), log
    added_removed = re.findall(r"(\d+) WAL file\(s\) added, (\d+) removed, (\d+) recycled", log)
    assert sum(int(r) + int(y) for _a, r, y in added_removed) > 0, log
    # Nothing older than the last redo pointer's segment is left.
    checkpointer.request_checkpoint(CHECKPOINT_FORCE | CHECKPOINT_IMMEDIATE | CHECKPOINT_WAIT)
    cf = read_control_file(str(c.datadir))
    geom = xlog.geometry()
    redo_seg = geom.segno(cf.check_point_copy.redo)
    segs = sorted(geom.parse_file_name(p.name)[1] for p in wal.iterdir()
                  if len(p.name) == 24)
    assert segs[0] == redo_seg, (segs, redo_seg)
    # Every segment past the insert position is a recycled or preallocated one,
    # within max_wal_size of the redo pointer (XLOGfileslop's upper bound).
    assert segs[-1] <= redo_seg + 2
    s = stats()
    assert s["checkpoints_req"] >= 4
    # The WAL from the redo pointer on still reads back (recycled files are not in the way).
    reader = XLogReader(str(c.datadir), geom, system_identifier=SYSID)
    assert reader.read_record(cf.check_point) is not None
    reader.close()


def test_write_phase_is_paced_unless_immediate(cluster):
    """checkpoint_completion_target 0.5 of a 4 s checkpoint_timeout: the write phase
    of a non-immediate checkpoint lasts about 2 s (here at least 1.2 s and less
    than 4 s); an immediate one does not nap at all."""
    c = cluster(checkpoint_timeout=4, checkpoint_completion_target=0.5, shared_buffers=64)
    reln = make_relation(60)
    for blk in range(60):
        dirty_block(reln, blk)
    insert_wal(100)
    c.start_checkpointer()
    t0 = time.monotonic()
    checkpointer.request_checkpoint(CHECKPOINT_FORCE | CHECKPOINT_WAIT)
    elapsed = time.monotonic() - t0
    write = float(re.search(r"wrote 60 buffers .* write=(\d+\.\d+) s", c.log_text())[1])
    assert 1.2 <= write < 4.0 and elapsed >= 1.2, (write, elapsed)
    for blk in range(60):
        dirty_block(reln, blk, 2)
    t0 = time.monotonic()
    checkpointer.request_checkpoint(CHECKPOINT_FORCE | CHECKPOINT_IMMEDIATE | CHECKPOINT_WAIT)
    assert time.monotonic() - t0 < 1.0
    writes = re.findall(r"wrote 60 buffers .* write=(\d+\.\d+) s", c.log_text())
    assert len(writes) == 2 and float(writes[1]) < 0.5
    assert stats()["checkpoint_write_time"] >= 1200


def test_timed_checkpoint_spreads_its_writes(cluster):
    """The issue's figures: checkpoint_completion_target 0.9 and checkpoint_timeout
    30 s, with enough dirty buffers (300: 100 ms naps cannot keep up with fewer),
    the write phase of the timed checkpoint lasts at least 20 s (about 27 s)."""
    c = cluster(checkpoint_timeout=30, checkpoint_completion_target=0.9, shared_buffers=400)
    c.start_checkpointer()
    reln = make_relation(300)  # the extends' fsync requests go to the checkpointer
    for blk in range(300):
        dirty_block(reln, blk)
    insert_wal(100)
    m = c.wait_for_log(r"LOG:  checkpoint starting: time\n", timeout=45)
    m = c.wait_for_log(r"checkpoint complete: wrote 300 buffers .* write=(\d+\.\d+) s",
                       timeout=45, start=m.end())
    assert 20.0 <= float(m[1]) <= 35.0, m[0]
    assert stats()["checkpoints_timed"] == 1


def test_immediate_request_hurries_a_paced_checkpoint(cluster):
    c = cluster(checkpoint_timeout=30, checkpoint_completion_target=0.9, shared_buffers=64,
                log_min_messages="debug1")
    reln = make_relation(40)
    for blk in range(40):
        dirty_block(reln, blk)
    insert_wal(100)
    c.start_checkpointer()
    checkpointer.request_checkpoint(CHECKPOINT_FORCE)  # paced over some 27 s
    c.wait_for_log("checkpoint starting: force")
    time.sleep(0.3)
    assert "checkpoint complete" not in c.log_text()
    t0 = time.monotonic()
    checkpointer.request_checkpoint(CHECKPOINT_IMMEDIATE | CHECKPOINT_WAIT)
    assert time.monotonic() - t0 < 5.0
    log = c.log_text()
    write = float(re.search(r"wrote 40 buffers .* write=(\d+\.\d+) s", log)[1])
    assert write < 5.0
    # Ours came next, and found nothing written since: not FORCEd, so skipped.
    assert log.count("checkpoint starting") == 1
    assert "checkpoint skipped because system is idle" in log
    assert counters(c)[1:] == (2, 2, 0)


# -- the fsync request queue --------------------------------------------------------------------

def _tag(rel: int) -> sync.FileTag:
    return sync.FileTag(sync.SYNC_HANDLER_MD, MAIN_FORKNUM,
                        RelFileNode(DEFAULTTABLESPACE_OID, 5, rel), 0)


def test_full_queue_is_compacted_then_the_sender_fsyncs(cluster, monkeypatch, capfd):
    c = cluster(debug_checkpointer_queue_size=4, log_min_messages="debug1")
    monkeypatch.setattr(elog, "_setting", c.settings.get)
    w = cks.words(c.seg)
    assert w[cks.W_MAX_REQUESTS] == 4
    # A checkpointer that is registered but does not absorb (its wake-ups come here).
    w[cks.W_CHECKPOINTER_PID] = os.getpid()
    fwd = checkpointer.forward_sync_request
    a, b, cc, d, e = (_tag(20000 + i) for i in range(5))
    assert fwd(a, sync.SYNC_REQUEST) and fwd(b, sync.SYNC_REQUEST)
    assert fwd(a, sync.SYNC_REQUEST) and fwd(cc, sync.SYNC_REQUEST)
    assert w[cks.W_NUM_REQUESTS] == 4
    assert fwd(d, sync.SYNC_REQUEST)  # the first "a" is dropped to make room
    assert w[cks.W_NUM_REQUESTS] == 4
    assert "DEBUG:  compacted fsync request queue from 4 entries to 3 entries" in \
        capfd.readouterr().err
    assert not fwd(e, sync.SYNC_REQUEST)  # full, nothing to compact
    assert w[cks.W_NUM_BACKEND_FSYNC] == 1
    # The real path: extending a new file cannot queue its request, so the writer
    # fsyncs the file itself.
    fsyncs_before = pgstat_io_fsync()
    make_relation(1, RelFileNode(DEFAULTTABLESPACE_OID, 5, 20010))
    assert pgstat_io_fsync() == fsyncs_before + 1
    assert "DEBUG:  could not forward fsync request because request queue is full" in \
        capfd.readouterr().err
    assert w[cks.W_NUM_BACKEND_FSYNC] == 2 and w[cks.W_NUM_BACKEND_WRITES] == 7
    # The checkpointer absorbs what was queued, in order, and the counts.
    monkeypatch.setattr(checkpointer, "am_checkpointer", True)
    checkpointer.absorb_sync_requests()
    assert w[cks.W_NUM_REQUESTS] == 0
    assert sorted(t.rnode.rel for t in sync.pending_sync_tags()
                  if t.handler == sync.SYNC_HANDLER_MD) == [20000, 20001, 20002, 20003]
    s = stats()
    assert s["buffers_backend"] == 7 and s["buffers_backend_fsync"] == 2
    w[cks.W_CHECKPOINTER_PID] = 0


def pgstat_io_fsync() -> int:
    from utils import pgstat

    return pgstat.io.fsync


def test_tiny_queue_many_files_compaction_backend_fsyncs_and_absorbs(cluster, monkeypatch,
                                                                     capfd):
    """The issue's queue test, with a queue of 4 and writes to many files:
    1. with the checkpointer absorbing (woken when the queue is half full), 25
       files' requests reach its table;
    2. with it stopped (SIGSTOP), 10 more files fill the queue: duplicates are
       compacted away, then the writer fsyncs itself (buffers_backend_fsync);
    3. the checkpoint's sync phase fsyncs the 29 files queued, absorbing after
       at most FSYNCS_PER_ABSORB (10) fsyncs each time (trace probes)."""
    c = cluster(debug_checkpointer_queue_size=4, trace_probes=True, log_min_messages="debug1")
    monkeypatch.setattr(elog, "_setting", c.settings.get)
    pid = c.start_checkpointer()
    w = cks.words(c.seg)
    for i in range(25):
        make_relation(2, RelFileNode(DEFAULTTABLESPACE_OID, 5, 30000 + i))
        deadline = time.monotonic() + 10
        while w[cks.W_NUM_REQUESTS]:
            assert time.monotonic() < deadline, "the checkpointer does not absorb"
            time.sleep(0.002)
    assert stats()["buffers_backend_fsync"] == 0
    capfd.readouterr()
    stop_when_idle(pid)
    try:
        for i in range(10):
            make_relation(2, RelFileNode(DEFAULTTABLESPACE_OID, 5, 31000 + i))
    finally:
        os.kill(pid, signal.SIGCONT)
    err = capfd.readouterr().err
    assert "DEBUG:  compacted fsync request queue from 4 entries to 2 entries" in err
    assert "DEBUG:  compacted fsync request queue from 4 entries to 3 entries" in err
    assert err.count("could not forward fsync request because request queue is full") == 13
    s = stats()
    assert s["buffers_backend_fsync"] == 13 and s["buffers_backend"] == 70
    checkpointer.request_checkpoint(CHECKPOINT_FORCE | CHECKPOINT_IMMEDIATE | CHECKPOINT_WAIT)
    log = c.log_text()
    assert "sync files=29, " in log, log
    phase = log[log.rindex("buffer__checkpoint__sync__start"):
                log.rindex("buffer__checkpoint__done")]
    events = re.findall(r"checkpoint__sync__(absorb|file)", phase)
    assert events.count("file") == 29, phase
    runs = "".join("a" if e == "absorb" else "f" for e in events).split("a")
    assert max(len(r) for r in runs) <= 10 and sum(1 for r in runs if r) >= 3, events


def test_dropped_relation_is_unlinked_by_the_next_checkpoint(cluster, monkeypatch):
    """SYNC_UNLINK_REQUEST through the queue: a backend's drop empties the first
    segment at once and leaves the name taken; the checkpointer removes it once
    the next checkpoint has completed. The other segments go at once."""
    monkeypatch.setattr(md, "RELSEG_SIZE", 4)  # before the fork: the checkpointer too
    c = cluster()
    c.start_checkpointer()
    rnode = RelFileNode(DEFAULTTABLESPACE_OID, 5, 60000)
    reln = make_relation(6, rnode)  # segments 60000 and 60000.1
    dirty_block(reln, 5)
    smgr.smgr_unlink(reln)
    first = c.datadir / "base/5/60000"
    assert first.exists() and first.stat().st_size == 0
    assert not (c.datadir / "base/5/60000.1").exists()
    time.sleep(0.3)  # absorbed by now, but not carried out: no checkpoint yet
    assert first.exists()
    checkpointer.request_checkpoint(CHECKPOINT_FORCE | CHECKPOINT_IMMEDIATE | CHECKPOINT_WAIT)
    assert not first.exists()
    assert "checkpoint complete" in c.log_text()
    assert "could not fsync" not in c.log_text()  # its sync requests were forgotten


def _rewrite_clog_page(pageno: int) -> None:
    """Write a resident pg_xact page out again (as an eviction would)."""
    from access import clog

    ctl = clog.ctl()
    lwlock_acquire(ctl.lock, LW_EXCLUSIVE)
    try:
        slotno = ctl.read_page(pageno, True, 0)
        ctl.page_dirty[slotno] = 1
        ctl.write_page(slotno)
    finally:
        lwlock_release(ctl.lock)


def test_pg_xact_writes_register_their_fsyncs_with_the_checkpointer(cluster, monkeypatch):
    """SYNC_HANDLER_CLOG: a pg_xact write queues a sync request (handler 1, the
    segment number) instead of syncing; the checkpoint's sync phase fsyncs the
    segment; with the queue full and nothing to compact the writer fsyncs it
    itself, counted in buffers_backend_fsync."""
    c = cluster(debug_checkpointer_queue_size=2, trace_probes=True, log_min_messages="debug1")
    pid = c.start_checkpointer()
    make_relation(1, RelFileNode(DEFAULTTABLESPACE_OID, 5, 50000))
    synced: list[str | None] = []
    real_fsync = fd.pg_fsync

    def fsync(f: int, path: str | None = None) -> None:
        synced.append(path)
        real_fsync(f, path)

    monkeypatch.setattr(fd, "pg_fsync", fsync)
    xid = transam.get_new_transaction_id()
    transam.transaction_id_commit_tree(xid)
    w = cks.words(c.seg)
    deadline = time.monotonic() + 10
    while w[cks.W_NUM_REQUESTS]:  # relation 50000's request, absorbed
        assert time.monotonic() < deadline
        time.sleep(0.002)
    stop_when_idle(pid)
    try:
        _rewrite_clog_page(0)
        assert w[cks.W_NUM_REQUESTS] == 1 and synced == []
        region = c.seg.region(cks.REGION)
        handler, fork, spc, db, rel, segno, type_ = cks.REQUEST.unpack_from(
            region, cks.REQUESTS_OFFSET)
        assert (handler, fork, spc, db, rel, segno, type_) == \
            (sync.SYNC_HANDLER_CLOG, 0, 0, 0, 0, 0, sync.SYNC_REQUEST)
        assert checkpointer.forward_sync_request(_tag(50000), sync.SYNC_REQUEST)  # full now
        _rewrite_clog_page(0)  # nothing to compact: the writer syncs the segment itself
        assert synced == ["pg_xact/0000"]
        assert w[cks.W_NUM_BACKEND_FSYNC] == 1
    finally:
        os.kill(pid, signal.SIGCONT)
    checkpointer.request_checkpoint(CHECKPOINT_FORCE | CHECKPOINT_IMMEDIATE | CHECKPOINT_WAIT)
    log = c.log_text()
    assert re.search(r"DEBUG:  checkpoint sync: number=\d+ file=pg_xact/0000 ", log), log
    assert re.search(r"trace probe checkpoint__sync__file\(path=pg_xact/0000, usecs=\d+\)",
                     log), log
    assert stats()["buffers_backend_fsync"] == 1


def test_trace_probes_of_buffers_and_wal(cluster, monkeypatch, capfd):
    """The backend-side probes (buffer__flush__*, buffer__write__dirty__*,
    wal__buffer__write__dirty__*) with PostgreSQL's arguments; switched for every
    module at once by trace_probes' assign hook, and silent when off."""
    from conf import guc

    c = cluster(shared_buffers=16, wal_buffers=4, trace_probes=True)
    monkeypatch.setattr(elog, "_setting", c.settings.get)
    assert guc.ASSIGN_HOOKS["trace_probes"] is xc.set_trace_probes
    assert bufmgr.probes_enabled and xlog.probes_enabled and sync.probes_enabled
    reln = make_relation(40)
    capfd.readouterr()
    dirty_block(reln, 3)
    bufmgr.flush_relation_buffers(reln)
    err = capfd.readouterr().err
    args = f"forkNum=0, blockNum=3, spcNode={RNODE.spc}, dbNode=5, relNode=16384"
    assert f"trace probe buffer__flush__start({args})" in err
    assert f"trace probe buffer__flush__done({args})" in err
    for blk in range(16):  # every buffer dirty, then a read needs a victim
        dirty_block(reln, blk)
    buf = bufmgr.read_buffer(reln, 30)
    bufmgr.release_buffer(buf)
    err = capfd.readouterr().err
    events = re.findall(r"trace probe (buffer__\w+)\(forkNum=0, blockNum=(\d+),", err)
    assert events[0] == ("buffer__write__dirty__start", "30")  # the block being read
    assert events[1][0] == "buffer__flush__start" and events[2][0] == "buffer__flush__done"
    assert events[3] == ("buffer__write__dirty__done", "30")
    # WAL buffers full of unwritten WAL: the inserting backend writes them itself.
    for _ in range(8):
        xlog.xlog_insert_record(xlog.build_simple_record(xi.RM_XLOG_ID, xi.XLOG_NOOP,
                                                         b"w" * 8000))
    err = capfd.readouterr().err
    starts = err.count("trace probe wal__buffer__write__dirty__start()")
    assert starts >= 1 and err.count("trace probe wal__buffer__write__dirty__done()") == starts
    xc.set_trace_probes(False)  # what a reload with trace_probes = off does
    assert not (bufmgr.probes_enabled or xlog.probes_enabled or sync.probes_enabled
                or xc.probes_enabled)
    dirty_block(reln, 3)
    bufmgr.flush_relation_buffers(reln)
    for _ in range(8):
        xlog.xlog_insert_record(xlog.build_simple_record(xi.RM_XLOG_ID, xi.XLOG_NOOP,
                                                         b"w" * 8000))
    assert "trace probe" not in capfd.readouterr().err


# -- DELAY_CHKPT_START ----------------------------------------------------------------------------

def test_checkpoint_waits_for_commit_between_record_and_pg_xact(cluster):
    """A committer that has written its commit record but not yet updated pg_xact
    (DELAY_CHKPT_START) holds the checkpoint after its redo pointer: the pg_xact
    the checkpoint writes then includes the commit, which replay from the redo
    pointer would not redo."""
    c = cluster()
    procs = xlog.ctl().procs
    c.start_checkpointer()
    xid = transam.get_new_transaction_id()
    procs.set_delay_chkpt()
    commit_end = insert_wal(64)  # our "commit record"
    checkpointer.request_checkpoint(CHECKPOINT_FORCE | CHECKPOINT_IMMEDIATE)
    c.wait_for_log("checkpoint starting: immediate force")
    time.sleep(0.5)
    assert "checkpoint complete" not in c.log_text()
    assert counters(c)[2] == 0  # not done
    transam.transaction_id_commit_tree(xid)
    procs.clear_delay_chkpt()
    c.wait_for_log("checkpoint complete")
    cf = read_control_file(str(c.datadir))
    assert cf.check_point_copy.redo >= commit_end
    data = (c.datadir / "pg_xact" / "0000").read_bytes()
    assert (data[xid // 4] >> ((xid % 4) * 2)) & 3 == 1  # TRANSACTION_STATUS_COMMITTED
    # A later delay does not hold a checkpoint that did not see it start.
    vxids = procs.get_virtual_xids_delaying_chkpt(1)
    assert vxids == []


def test_delay_chkpt_generation_tells_commits_apart(cluster):
    c = cluster()
    procs = xlog.ctl().procs
    procs.set_delay_chkpt()
    seen = procs.get_virtual_xids_delaying_chkpt(1)
    assert len(seen) == 1 and procs.have_virtual_xids_delaying_chkpt(seen, 1)
    procs.clear_delay_chkpt()
    procs.set_delay_chkpt()  # the next commit of the same backend
    assert not procs.have_virtual_xids_delaying_chkpt(seen, 1)
    procs.clear_delay_chkpt()
    assert procs.get_virtual_xids_delaying_chkpt(1) == []
    assert c is not None


# -- failures -----------------------------------------------------------------------------------

def test_failed_write_fails_the_checkpoint_and_a_later_one_succeeds(cluster):
    c = cluster()
    reln = make_relation(4)
    bufs = [dirty_block(reln, b) for b in range(4)]
    insert_wal(100)
    c.start_checkpointer(
        before=lambda: fd.configure_fault_injection("write:base/5/16384:EIO:count=1"))
    with pytest.raises(PgError) as err:
        checkpointer.request_checkpoint(CHECKPOINT_FORCE | CHECKPOINT_IMMEDIATE
                                        | CHECKPOINT_WAIT)
    assert err.value.message == "checkpoint request failed"
    assert err.value.hint == "Consult recent messages in the server log for details."
    log = c.log_text()
    assert "ERROR:  could not write block 0 in file \"base/5/16384\"" in log, log
    assert "checkpoint complete" not in log
    assert counters(c)[1:] == (1, 1, 1)
    assert buffer_state(bufs[0]) & bi.BM_DIRTY and buffer_state(bufs[0]) & bi.BM_IO_ERROR
    before = read_control_file(str(c.datadir)).check_point
    checkpointer.request_checkpoint(CHECKPOINT_FORCE | CHECKPOINT_IMMEDIATE | CHECKPOINT_WAIT)
    assert "checkpoint complete: wrote 4 buffers" in c.log_text()
    assert counters(c)[1:] == (2, 2, 1)
    assert read_control_file(str(c.datadir)).check_point > before
    assert not any(buffer_state(b) & bi.BM_DIRTY for b in bufs)


def test_failed_fsync_is_a_panic(cluster):
    c = cluster()
    reln = make_relation(2)
    dirty_block(reln, 0)
    insert_wal(100)
    before = read_control_file(str(c.datadir)).check_point
    pid = c.start_checkpointer(
        before=lambda: fd.configure_fault_injection("fsync:base/5/16384:EIO"))
    checkpointer.request_checkpoint(CHECKPOINT_FORCE | CHECKPOINT_IMMEDIATE)
    c.children.pop("checkpointer")
    assert _wait_exit(pid, 20) == -signal.SIGABRT
    log = c.log_text()
    assert 'PANIC:  could not fsync file "base/5/16384": Input/output error' in log, log
    assert "checkpoint complete" not in log
    assert read_control_file(str(c.datadir)).check_point == before  # recovery starts there


def test_writeback_hints_are_sorted_and_merged(cluster, monkeypatch):
    """WritebackContext: every flush_after blocks, one pg_flush_data per run of
    consecutive blocks of an open segment; blocks of files not open are skipped."""
    cluster()
    reln = make_relation(10)
    fdno = reln.md_seg_fds[MAIN_FORKNUM][0].fd
    calls = []
    monkeypatch.setattr(xc, "pg_flush_data", lambda f, off, n: calls.append((f, off, n)))
    wb = xc.WritebackContext(5)
    r = (RNODE.spc, RNODE.db, RNODE.rel, MAIN_FORKNUM)
    for blk in (7, 2, 3, 1, 2):
        wb.schedule_buffer_tag_for_writeback((*r, blk))
    # The fifth tag triggered the flush: blocks 1-3 merged, 7 alone, 2 once.
    assert calls == [(fdno, 1 * bi.BLCKSZ, 3 * bi.BLCKSZ), (fdno, 7 * bi.BLCKSZ, bi.BLCKSZ)]
    assert wb.pending == []
    wb.schedule_buffer_tag_for_writeback((RNODE.spc, RNODE.db, 99999, MAIN_FORKNUM, 0))
    wb.issue_pending_writebacks()  # a relation this process never opened: no hint
    assert len(calls) == 2
    assert xc.WritebackContext(0).flush_after == 0  # 0 disables the hints
