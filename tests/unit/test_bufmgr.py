"""The shared buffer pool across real processes: a segment made as the
postmaster makes it, workers forked as children are, a relation on disk.

Workers get a PGPROC slot and bind the pool exactly like postmaster children
(procs.postinit.init_process); everything is removed at the end, even on
failure, and waits are bounded so a bug fails instead of hanging.
"""

from __future__ import annotations

import os
import random
import signal
import struct
import time
import traceback
from pathlib import Path

import pytest

from procs.postinit import init_process, proc_kill
from shmem import buf_internals as bi
from shmem import lwlock
from shmem.proc import BackendType
from storage import bufmgr, bufpage, fd, md, smgr, sync
from storage.relfilenode import DEFAULTTABLESPACE_OID, MAIN_FORKNUM, RelFileNode
from tests.unit.shmem_harness import Harness
from utils import pgstat

RNODE = RelFileNode(DEFAULTTABLESPACE_OID, 5, 16384)
COUNTERS_AT = 64  # int64 counters after the page header, one per worker
COUNTER = struct.Struct("<q")


@pytest.fixture
def pool(tmp_path):
    """Yields make(**settings) -> (settings, segment) with this process attached."""
    harness = Harness(tmp_path)
    yield harness.make
    harness.close()


def _make_relation(nblocks: int) -> smgr.SMgrRelation:
    reln = smgr.smgr_open(RNODE)
    smgr.smgr_create(reln, MAIN_FORKNUM)
    for blk in range(nblocks):
        page = bytearray(bi.BLCKSZ)
        bufpage.page_init(page, bi.BLCKSZ, 0)
        bufpage.page_set_checksum_inplace(page, blk)
        smgr.smgr_extend(reln, MAIN_FORKNUM, blk, page)
    return reln


def _counter(page, worker: int) -> int:
    return COUNTER.unpack_from(page, COUNTERS_AT + 8 * worker)[0]


def _increment(reln, blk: int, worker: int) -> None:
    buf = bufmgr.read_buffer(reln, blk)
    bufmgr.lock_buffer(buf, bufmgr.BUFFER_LOCK_EXCLUSIVE)
    page = bufmgr.buffer_get_page(buf)
    COUNTER.pack_into(page, COUNTERS_AT + 8 * worker, _counter(page, worker) + 1)
    bufmgr.mark_buffer_dirty(buf)
    bufmgr.unlock_release_buffer(buf)


def _fork(fn, *args) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            signal.alarm(60)
            fn(*args)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def _wait_all(pids: list[int], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    pending = set(pids)
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                pending.discard(pid)
                assert os.waitstatus_to_exitcode(status) == 0, f"worker {pid} failed"
        time.sleep(0.01)
    for pid in pending:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert not pending, "workers did not finish"


def test_concurrent_read_modify_write_larger_than_pool(pool, tmp_path):
    settings, seg = pool(shared_buffers=16, data_checksums=True)
    nblocks, nworkers, ops = 64, 4, 400
    reln = _make_relation(nblocks)
    log_dir = tmp_path / "ops"
    log_dir.mkdir()

    def worker(w: int) -> None:
        init_process(seg, settings, BackendType.B_BACKEND, is_superuser=True)
        rng = random.Random(w)
        counts = [0] * nblocks
        r = smgr.smgr_open(RNODE)
        for _ in range(ops):
            blk = rng.randrange(nblocks)
            _increment(r, blk, w)
            counts[blk] += 1
        (log_dir / f"w{w}").write_text(" ".join(map(str, counts)))
        sync.process_sync_requests()
        assert not bufmgr.pinned_buffers()
        from shmem.proc import ProcArray

        proc_kill(ProcArray(seg, settings.get("max_connections")))

    _wait_all([_fork(worker, w) for w in range(nworkers)])
    bufmgr.flush_relation_buffers(reln)
    expected = [[int(x) for x in (log_dir / f"w{w}").read_text().split()]
                for w in range(nworkers)]
    # Read the file itself, not the pool: what the writes put on disk.
    path = Path(fd.data_directory()) / "base" / "5" / "16384"
    data = path.read_bytes()
    assert len(data) == nblocks * bi.BLCKSZ
    for blk in range(nblocks):
        page = data[blk * bi.BLCKSZ:(blk + 1) * bi.BLCKSZ]
        assert bufpage.page_is_verified(page, blk, True), f"block {blk} checksum"
        for w in range(nworkers):
            assert _counter(page, w) == expected[w][blk], (blk, w)
    assert sum(map(sum, expected)) == nworkers * ops


def test_corrupt_page_on_disk_gives_xx001(pool, capfd):
    pool(shared_buffers=16, data_checksums=True)
    reln = _make_relation(4)
    _increment(reln, 2, 0)
    bufmgr.flush_relation_buffers(reln)
    bufmgr.drop_rel_file_node_buffers(reln, MAIN_FORKNUM, 0)
    path = Path(fd.data_directory()) / "base" / "5" / "16384"
    with open(path, "r+b") as f:
        f.seek(2 * bi.BLCKSZ + 4000)
        f.write(b"garbage")
    with pytest.raises(bufpage.InvalidPageError) as err:
        bufmgr.read_buffer(reln, 2)
    assert err.value.sqlstate == "XX001"
    assert str(err.value) == "invalid page in block 2 of relation base/5/16384"
    assert "WARNING:  page verification failed, calculated checksum" in capfd.readouterr().err
    assert not bufmgr.pinned_buffers()
    # The other blocks still read.
    buf = bufmgr.read_buffer(reln, 1)
    bufmgr.release_buffer(buf)


def _resident(seg, settings) -> set[int]:
    descs = bi.BufferDescriptors(seg, settings.get("shared_buffers"))
    return {row.relblocknumber for row in bufmgr.buffer_cache_rows(descs)
            if row.relfilenode == RNODE.rel}


def test_clock_sweep_keeps_hot_blocks(pool):
    settings, seg = pool(shared_buffers=16)
    reln = _make_relation(60)
    hot = [0, 1, 2, 3]
    for _ in range(5):
        for blk in hot:
            bufmgr.release_buffer(bufmgr.read_buffer(reln, blk))
    for blk in range(20, 50):  # a scan of cold blocks, each read once
        bufmgr.release_buffer(bufmgr.read_buffer(reln, blk))
    resident = _resident(seg, settings)
    assert set(hot) <= resident
    assert len(resident & set(range(20, 50))) <= 12


def test_write_error_leaves_buffer_dirty_then_retry_succeeds(pool, capfd):
    settings, seg = pool(shared_buffers=16)
    reln = _make_relation(2)
    _increment(reln, 1, 0)
    buf = bufmgr.read_buffer(reln, 1)
    bufmgr.lock_buffer(buf, bufmgr.BUFFER_LOCK_SHARE)
    fd.configure_fault_injection("write:base/5/*:EIO:count=1")
    with pytest.raises(Exception) as err:
        bufmgr.flush_one_buffer(buf)
    assert "could not write block 1" in str(err.value)
    state = bufmgr.pool().descs.state(buf - 1)
    assert state & bi.BM_DIRTY and state & bi.BM_IO_ERROR
    assert not state & bi.BM_IO_IN_PROGRESS
    bufmgr.flush_one_buffer(buf)  # the fault fired once: this one succeeds
    state = bufmgr.pool().descs.state(buf - 1)
    assert not state & (bi.BM_DIRTY | bi.BM_IO_ERROR)
    bufmgr.unlock_release_buffer(buf)
    path = Path(fd.data_directory()) / "base" / "5" / "16384"
    assert _counter(path.read_bytes()[bi.BLCKSZ:], 0) == 1


def test_injected_delay_shows_in_io_timing(pool):
    settings, seg = pool(shared_buffers=16, track_io_timing=True)
    reln = _make_relation(2)
    _increment(reln, 0, 0)
    before = pgstat.io.write_time_us
    fd.configure_fault_injection("write:base/5/*:delay=50ms")
    bufmgr.flush_relation_buffers(reln)
    assert pgstat.io.write_time_us - before >= 40_000


def test_extend_and_truncate_drop_buffers(pool):
    settings, seg = pool(shared_buffers=16)
    reln = _make_relation(2)
    buf = bufmgr.read_buffer_extended(reln, MAIN_FORKNUM, bufmgr.P_NEW)
    assert bufmgr.buffer_get_block_number(buf) == 2
    bufmgr.release_buffer(buf)
    assert smgr.smgr_nblocks(reln, MAIN_FORKNUM) == 3
    smgr.smgr_truncate(reln, MAIN_FORKNUM, 1)
    assert _resident(seg, settings) <= {0}
    _ = md


def test_exit_holding_an_lwlock_is_a_crash(pool):
    """ProcKill with an LWLock still held exits 2, which the postmaster treats as a crash."""
    settings, seg = pool(shared_buffers=16)

    def worker() -> None:
        procs = init_process(seg, settings, BackendType.B_BACKEND, is_superuser=True)
        lwlock.lwlock_acquire(lwlock.get_named_lwlock("WALWriteLock"), lwlock.LW_EXCLUSIVE)
        proc_kill(procs)  # does not return

    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            worker()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 2
