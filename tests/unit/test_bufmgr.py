"""The shared buffer pool across real processes: a segment made as the
postmaster makes it, workers forked as children are, a relation on disk.

Workers get a PGPROC slot and bind the pool exactly like postmaster children
(procs.postinit.init_process); everything is removed at the end, even on
failure, and waits are bounded so a bug fails instead of hanging.
"""

from __future__ import annotations

import os
import random
import struct
import time
from pathlib import Path

import pytest

from procs.postinit import init_process, proc_kill
from shmem import buf_internals as bi
from shmem import lwlock
from shmem.proc import BackendType
from storage import bufmgr, bufpage, fd, md, smgr, sync
from storage.relfilenode import DEFAULTTABLESPACE_OID, MAIN_FORKNUM, RelFileNode
from tests.unit.shmem_harness import Harness, fork_worker, wait_workers
from utils import pgstat

RNODE = RelFileNode(DEFAULTTABLESPACE_OID, 5, 16384)
RNODE_B = RelFileNode(DEFAULTTABLESPACE_OID, 5, 16390)
COUNTERS_AT = 64  # int64 counters after the page header, one per worker
COUNTER = struct.Struct("<q")
IDENT_AT = 256  # every page says whose it is: (relNumber, blockNumber)
IDENT = struct.Struct("<II")


@pytest.fixture
def pool(tmp_path):
    """Yields make(**settings) -> (settings, segment) with this process attached."""
    harness = Harness(tmp_path)
    yield harness.make
    harness.close()


def _make_relation(nblocks: int, rnode: RelFileNode = RNODE) -> smgr.SMgrRelation:
    reln = smgr.smgr_open(rnode)
    smgr.smgr_create(reln, MAIN_FORKNUM)
    for blk in range(nblocks):
        page = bytearray(bi.BLCKSZ)
        bufpage.page_init(page, bi.BLCKSZ, 0)
        IDENT.pack_into(page, IDENT_AT, rnode.rel, blk)
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

    wait_workers([fork_worker(worker, w) for w in range(nworkers)])
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


# -- the hit path: lookup without the partition lock, verified under the header lock ----------

def _ident(buf: int) -> tuple[int, int]:
    return IDENT.unpack_from(bufmgr.buffer_get_page(buf), IDENT_AT)


def _read_ident(reln, blk: int) -> tuple[int, tuple[int, int]]:
    """read_buffer + share lock: (buffer, what its page says it is); still pinned."""
    buf = bufmgr.read_buffer(reln, blk)
    bufmgr.lock_buffer(buf, bufmgr.BUFFER_LOCK_SHARE)
    ident = _ident(buf)
    bufmgr.lock_buffer(buf, bufmgr.BUFFER_LOCK_UNLOCK)
    return buf, ident


def test_hit_path_pins_and_counts_like_the_locked_path(pool):
    pool(shared_buffers=16)
    reln = _make_relation(4)
    p = bufmgr.pool()
    buf, ident = _read_ident(reln, 2)  # a miss: read from disk
    assert ident == (RNODE.rel, 2)
    hits = pgstat.io.hit
    again = bufmgr.read_buffer(reln, 2)  # a hit on a buffer this process already pins
    assert again == buf and p.private_refcount[buf - 1] == 2
    bufmgr.release_buffer(again)
    bufmgr.release_buffer(buf)
    assert bi.refcount(p.descs.state(buf - 1)) == 0
    again = bufmgr.read_buffer(reln, 2)  # a hit through the header lock
    assert again == buf and bi.refcount(p.descs.state(buf - 1)) == 1
    assert bi.usage_count(p.descs.state(buf - 1)) == 2
    assert pgstat.io.hit == hits + 2
    bufmgr.release_buffer(again)
    # RBM_ZERO_AND_LOCK on a valid buffer locks it and leaves the page alone (as
    # PostgreSQL), whether this process pins it already or not.
    for pinned in (False, True):
        first = bufmgr.read_buffer(reln, 2) if pinned else None
        got = bufmgr.read_buffer_extended(reln, MAIN_FORKNUM, 2, bufmgr.RBM_ZERO_AND_LOCK)
        assert got == buf and _ident(got) == (RNODE.rel, 2)
        assert lwlock.lwlock_held_by_me_in_mode(p.content_locks[got - 1], lwlock.LW_EXCLUSIVE)
        bufmgr.unlock_release_buffer(got)
        if first is not None:
            bufmgr.release_buffer(first)
    with pytest.raises(RuntimeError):
        bufmgr.release_buffer(again)
    with pytest.raises(RuntimeError):
        bufmgr.release_buffer(bufmgr.InvalidBuffer)
    assert not bufmgr.pinned_buffers()


def _race_before_pin(p, buf_id: int, race) -> None:
    """Run ``race`` once, just before the next header-lock acquisition of
    ``buf_id``: between the lookup and the pin of the hit path, where another
    backend could evict or retag the buffer."""
    real = p.hdr_acquire[buf_id]

    def acquire() -> object:
        p.hdr_acquire[buf_id] = real
        race()
        return real()

    p.hdr_acquire[buf_id] = acquire


def test_hit_path_rejects_a_buffer_retagged_after_the_lookup(pool):
    pool(shared_buffers=16)
    reln = _make_relation(24)
    p = bufmgr.pool()
    buf, _ = _read_ident(reln, 3)
    bufmgr.release_buffer(buf)

    def retag() -> None:  # evict block 3; block 20 lands in the same (just freed) buffer
        bufmgr.drop_rel_file_node_buffers(reln, MAIN_FORKNUM, 3)
        other, ident = _read_ident(reln, 20)
        assert other == buf and ident == (RNODE.rel, 20)
        bufmgr.release_buffer(other)

    _race_before_pin(p, buf - 1, retag)
    got, ident = _read_ident(reln, 3)
    assert ident == (RNODE.rel, 3) and got != buf
    assert bufmgr.buffer_get_tag(got) == (*RNODE, MAIN_FORKNUM, 3)
    assert bufmgr.buffer_get_tag(buf) == (*RNODE, MAIN_FORKNUM, 20)
    bufmgr.release_buffer(got)

    def invalidate() -> None:  # evicted, not reused: the candidate's tag is invalid
        bufmgr.drop_rel_file_node_buffers(reln, MAIN_FORKNUM, 20)

    _race_before_pin(p, buf - 1, invalidate)
    got, ident = _read_ident(reln, 20)
    assert ident == (RNODE.rel, 20)
    bufmgr.release_buffer(got)

    def reload_same() -> None:  # evicted and read back into the same buffer: still right
        bufmgr.drop_rel_file_node_buffers(reln, MAIN_FORKNUM, 3)
        bufmgr.release_buffer(bufmgr.read_buffer(reln, 3))

    buf, _ = _read_ident(reln, 3)
    bufmgr.release_buffer(buf)
    _race_before_pin(p, buf - 1, reload_same)
    got, ident = _read_ident(reln, 3)
    assert ident == (RNODE.rel, 3)
    bufmgr.release_buffer(got)
    assert not bufmgr.pinned_buffers()


def test_a_wrong_or_garbled_table_entry_is_only_a_hint(pool):
    """The lock-free probe matches on the hash alone and may read entries that
    are being rewritten: a candidate pointing at the wrong buffer, or at no
    buffer at all, must still end with the right page."""
    from shmem import buf_table

    pool(shared_buffers=16)
    reln = _make_relation(8)
    p = bufmgr.pool()
    table = p.table
    b0, _ = _read_ident(reln, 0)
    bufmgr.release_buffer(b0)
    tag5 = (*RNODE, MAIN_FORKNUM, 5)
    h5 = buf_table.buf_table_hash_code(tag5)
    home = (h5 & table.slot_mask) * buf_table.ENTRY_WORDS
    assert table.w[home] == buf_table.EMPTY
    # Block 5's hash at its home slot, but pointing at block 0's buffer (another tag).
    buf_table._ENTRY.pack_into(table.mem, home * 4, h5, b0 - 1, *RNODE, MAIN_FORKNUM, 7)
    for _ in range(2):  # a miss, then a hit found by the locked lookup further on
        got, ident = _read_ident(reln, 5)
        assert ident == (RNODE.rel, 5) and got != b0
        bufmgr.release_buffer(got)
    assert bi.refcount(p.descs.state(b0 - 1)) == 0
    # A garbled buffer number is never used.
    table.w[home + 1] = 10 ** 6
    assert table.hint(h5) == -1
    got, ident = _read_ident(reln, 5)
    assert ident == (RNODE.rel, 5)
    bufmgr.release_buffer(got)
    assert not bufmgr.pinned_buffers()


def test_fast_semaphore_binding_is_the_same_semaphore(pool):
    settings, seg = pool(shared_buffers=16)
    base = seg.sem_base["shmem.buf_internals"]
    sem = seg.sems[base + 3]
    acquire, release = bi.semaphore_ops(sem)
    acquire()
    assert sem.value == 0
    release()
    assert sem.value == 1
    p = bufmgr.pool()
    p.hdr_acquire[3]()
    assert sem.value == 0
    p.hdr_release[3]()
    assert sem.value == 1
    lock = p.descs.content_locks[3]
    lwlock_sem = lwlock._ctx.stripes[3 % lwlock.NSTRIPES]
    lock.spin_acquire()
    assert lwlock_sem.value == 0
    lock.spin_release()
    assert lwlock_sem.value == 1


def _eviction_stress(seg, settings, seconds: float, w: int, log_dir: Path,
                     nblocks: int) -> None:
    """Random reads over two relations much larger than the pool, with a few
    hot blocks, checking every page is the one asked for; some exclusive
    increments (dirty evictions); worker 0 also drops relation B's buffers now
    and then (it is never written, so its pages on disk are always right)."""
    procs = init_process(seg, settings, BackendType.B_BACKEND, is_superuser=True)
    rng = random.Random(w)
    rels = [(smgr.smgr_open(RNODE), RNODE), (smgr.smgr_open(RNODE_B), RNODE_B)]
    counts = [0] * nblocks
    reads = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(50):
            reln, rnode = rels[rng.random() < 0.5]
            blk = rng.randrange(4) if rng.random() < 0.5 else rng.randrange(nblocks)
            buf, ident = _read_ident(reln, blk)
            assert ident == (rnode.rel, blk), f"asked for {rnode.rel}/{blk}, got {ident}"
            assert bufmgr.buffer_get_tag(buf) == (*rnode, MAIN_FORKNUM, blk)
            if rng.random() < 0.2:  # a second pin of the same block, then of another
                again, ident = _read_ident(reln, blk)
                assert again == buf and ident == (rnode.rel, blk)
                bufmgr.release_buffer(again)
                other = rng.randrange(nblocks)
                buf2, ident = _read_ident(reln, other)
                assert ident == (rnode.rel, other)
                bufmgr.release_buffer(buf2)
            bufmgr.release_buffer(buf)
            reads += 1
            if rnode is RNODE and rng.random() < 0.1:
                _increment(reln, blk, w)
                counts[blk] += 1
            if w == 0 and rng.random() < 0.005:
                bufmgr.drop_rel_file_node_buffers(rels[1][0], MAIN_FORKNUM, rng.randrange(4))
    assert not bufmgr.pinned_buffers()
    (log_dir / f"w{w}").write_text(" ".join(map(str, counts)))
    sync.process_sync_requests()
    proc_kill(procs)


def _run_eviction_stress(pool, tmp_path, seconds: float, nworkers: int) -> None:
    settings, seg = pool(shared_buffers=16, data_checksums=True)
    nblocks = 40
    reln = _make_relation(nblocks)
    _make_relation(nblocks, RNODE_B)
    log_dir = tmp_path / "ops"
    log_dir.mkdir()
    pids = [fork_worker(_eviction_stress, seg, settings, seconds, w, log_dir, nblocks,
                  alarm=int(seconds) + 60) for w in range(nworkers)]
    wait_workers(pids, timeout=seconds + 90)
    # The increments all arrived: nothing was lost or written to the wrong block.
    bufmgr.flush_relation_buffers(reln)
    expected = [[int(x) for x in (log_dir / f"w{w}").read_text().split()]
                for w in range(nworkers)]
    data = (Path(fd.data_directory()) / "base" / "5" / "16384").read_bytes()
    for blk in range(nblocks):
        page = data[blk * bi.BLCKSZ:(blk + 1) * bi.BLCKSZ]
        assert bufpage.page_is_verified(page, blk, True), f"block {blk} checksum"
        assert IDENT.unpack_from(page, IDENT_AT) == (RNODE.rel, blk)
        for w in range(nworkers):
            assert _counter(page, w) == expected[w][blk], (blk, w)
    assert sum(map(sum, expected)) > 0
    # Every pin was dropped and the mapping table agrees with the descriptors.
    p = bufmgr.pool()
    mapped = {tag: buf_id for _h, buf_id, tag in p.table.entries()}
    for row in bufmgr.buffer_cache_rows(p.descs):
        assert row.pinning_backends == 0
        if row.flags & bi.BM_TAG_VALID:
            tag = (row.reltablespace, row.reldatabase, row.relfilenode, row.relforknumber,
                   row.relblocknumber)
            assert mapped.pop(tag) == row.bufferid - 1
    assert not mapped


def test_concurrent_reads_and_evictions_return_the_right_page(pool, tmp_path):
    _run_eviction_stress(pool, tmp_path, seconds=3.0, nworkers=4)


@pytest.mark.soak
def test_concurrent_reads_and_evictions_soak(pool, tmp_path, request):
    markexpr = request.config.getoption("markexpr") or ""
    if "TUSK_SOAK_SECONDS" not in os.environ and ("soak" not in markexpr
                                                  or "not soak" in markexpr):
        pytest.skip("soak test: set TUSK_SOAK_SECONDS or select -m soak")
    _run_eviction_stress(pool, tmp_path, seconds=float(os.environ.get("TUSK_SOAK_SECONDS",
                                                                      "300")), nworkers=6)
