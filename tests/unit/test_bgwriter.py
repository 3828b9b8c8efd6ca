"""The background writer: BgBufferSync's LRU scan ahead of the clock-sweep hand,
directly and as the forked process the postmaster runs, and its hibernation."""

from __future__ import annotations

import random
import time

import psutil

from procs import bgwriter, checkpointer
from shmem import buf_internals as bi
from shmem import freelist
from storage import bufmgr
from tests.unit.test_checkpointer import cluster, dirty_block, make_relation  # noqa: F401


def _stats() -> dict:
    return checkpointer.read_bgwriter_stats()


def test_lru_scan_writes_only_unused_dirty_buffers_ahead_of_the_hand(cluster):  # noqa: F811
    c = cluster(shared_buffers=16, bgwriter_lru_maxpages=100, bgwriter_lru_multiplier=2.0)
    reln = make_relation(40)
    descs = bufmgr.pool().descs
    for blk in range(16):  # fills the pool from the free list: all dirty, usage 1
        dirty_block(reln, blk)
    for blk in range(16, 20):  # the clock sweep passes: usage counts drop to 0
        dirty_block(reln, blk)
    pinned = bufmgr.read_buffer(reln, 19)  # in use: must not be written
    st = bgwriter.BgBufferSyncState()
    hand = bufmgr.pool().strategy.w[freelist.W_NEXT_VICTIM]
    before = {b: descs.state(b) for b in range(16)}
    bgwriter.bg_buffer_sync(st, c.settings, None)  # learns the allocation rate
    for _ in range(3):
        dirty_block(reln, 20 + _)
    bgwriter.bg_buffer_sync(st, c.settings, None)
    after = {b: descs.state(b) for b in range(16)}
    cleaned = [b for b in range(16)
               if before[b] & bi.BM_DIRTY and not after[b] & bi.BM_DIRTY
               and descs.tag(b)[4] < 20]
    s = _stats()
    assert s["buffers_clean"] > 0 and s["buffers_alloc"] >= 23
    assert s["buffers_clean"] >= len(cleaned) > 0
    assert all(b >= hand for b in cleaned)  # ahead of where the hand was
    assert after[pinned - 1] & bi.BM_DIRTY
    bufmgr.release_buffer(pinned)


def test_lru_maxpages_limits_a_round(cluster):  # noqa: F811
    c = cluster(shared_buffers=16, bgwriter_lru_maxpages=1)
    reln = make_relation(40)
    for blk in range(24):
        dirty_block(reln, blk)
    st = bgwriter.BgBufferSyncState()
    bgwriter.bg_buffer_sync(st, c.settings, None)
    for blk in range(24, 30):
        dirty_block(reln, blk)
    bgwriter.bg_buffer_sync(st, c.settings, None)
    s = _stats()
    assert s["buffers_clean"] <= 2
    assert s["maxwritten_clean"] >= 1


def test_bgwriter_process_cleans_under_a_workload(cluster):  # noqa: F811
    """A working set four times the pool: the background writer's writes show as
    buffers_clean, and the data stays right."""
    c = cluster(shared_buffers=32, bgwriter_delay=10, bgwriter_lru_maxpages=100,
                bgwriter_lru_multiplier=4.0)
    reln = make_relation(128)
    c.start_checkpointer()
    c.start_aux("bgwriter")
    rng = random.Random(5)
    expected = {}
    deadline = time.monotonic() + 3
    n = 0
    while time.monotonic() < deadline:
        blk = rng.randrange(128)
        n += 1
        expected[blk] = n & 0xFF
        dirty_block(reln, blk, n)
        if n % 50 == 0:
            time.sleep(0.02)  # let the background writer run between bursts
    s = _stats()
    assert s["buffers_clean"] > 0, s
    assert s["buffers_alloc"] > 0
    bufmgr.flush_relation_buffers(reln)
    data = (c.datadir / "base/5/16384").read_bytes()
    for blk, value in expected.items():
        assert data[blk * bi.BLCKSZ + 100] == value, blk


def test_bgwriter_hibernates_when_idle_and_an_allocation_wakes_it(cluster):  # noqa: F811
    """With the whole pool to cover in 400 ms at 20 ms a round, an idle background
    writer laps the clock hand in about 0.7 s, then sleeps 50 rounds at a time
    after asking the freelist to wake it; the next buffer allocation does."""
    c = cluster(shared_buffers=32, bgwriter_delay=20)
    reln = make_relation(4)

    def fast_lap() -> None:
        bgwriter.SCAN_WHOLE_POOL_MILLISECONDS = 400.0

    pid = c.start_aux("bgwriter", before=fast_lap)
    proc = psutil.Process(pid)
    w = bufmgr.pool().strategy.w
    deadline = time.monotonic() + 10
    while w[freelist.W_BGWPROCNO] == -1:
        assert time.monotonic() < deadline, "the background writer never hibernated"
        time.sleep(0.02)
    time.sleep(0.1)
    wakes = proc.num_ctx_switches().voluntary
    time.sleep(1.5)  # about 75 rounds if it were awake
    assert proc.num_ctx_switches().voluntary - wakes <= 8
    # An allocation takes the notification and sets its latch.
    wakes = proc.num_ctx_switches().voluntary
    buf = bufmgr.read_buffer(reln, 0)
    bufmgr.release_buffer(buf)
    assert w[freelist.W_BGWPROCNO] == -1
    time.sleep(0.3)
    assert proc.num_ctx_switches().voluntary - wakes >= 3
