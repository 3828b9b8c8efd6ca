"""Buffer replacement: the free list and the clock sweep — mirrors
storage/buffer/freelist.c (StrategyGetBuffer, StrategyFreeBuffer,
StrategySyncStart, StrategyNotifyBgWriter).

BufferStrategyControl lives in "Buffer Strategy Status" as int64 words,
guarded by buffer_strategy_lock (a spinlock semaphore):

    0 firstFreeBuffer  1 lastFreeBuffer  2 nextVictimBuffer
    3 completePasses   4 numBufferAllocs  5 bgwprocno

A buffer whose usage count is above zero gets one more pass of the hand;
BM_MAX_USAGE_COUNT (5) caps how many passes a hot page survives. Where we
differ: nextVictimBuffer is advanced under the spinlock rather than with an
atomic fetch-and-add.
"""

from __future__ import annotations

from shmem.buf_internals import (
    BUF_REFCOUNT_MASK,
    BUF_USAGECOUNT_MASK,
    BUF_USAGECOUNT_ONE,
    DESC_WORDS,
    FREENEXT_END_OF_LIST,
    FREENEXT_NOT_IN_LIST,
    W_FREE_NEXT,
    BufferDescriptors,
)
from shmem.segment import ShmemSegment
from shmem.spin import SpinLock

W_FIRST_FREE, W_LAST_FREE, W_NEXT_VICTIM, W_COMPLETE_PASSES, W_NUM_ALLOCS, W_BGWPROCNO = range(6)


class NoUnpinnedBuffers(Exception):
    """ERROR "no unpinned buffers available" (53400 in PostgreSQL's errcode)."""

    sqlstate = "53400"


def shmem_requests(settings) -> list[tuple[str, int]]:
    return [("Buffer Strategy Status", 8 * 8)]


def num_semaphores(settings) -> int:
    return 1  # buffer_strategy_lock


def shmem_init(seg: ShmemSegment, settings) -> None:
    w = seg.region("Buffer Strategy Status").cast("q")
    n = settings.get("shared_buffers")
    w[W_FIRST_FREE] = 0
    w[W_LAST_FREE] = n - 1
    w[W_NEXT_VICTIM] = 0
    w[W_COMPLETE_PASSES] = 0
    w[W_NUM_ALLOCS] = 0
    w[W_BGWPROCNO] = -1


class Strategy:
    def __init__(self, seg: ShmemSegment, descs: BufferDescriptors) -> None:
        self.w = seg.region("Buffer Strategy Status").cast("q")
        self.lock = SpinLock(seg.sems[seg.sem_base.get(__name__, 0)])
        self.descs = descs
        self.nbuffers = descs.nbuffers
        self.wake_bgwriter = None  # set by bufmgr: a function taking the bgwriter's proc number

    def _clock_sweep_tick(self) -> int:
        w = self.w
        self.lock.acquire()
        victim = w[W_NEXT_VICTIM]
        nxt = victim + 1
        if nxt >= self.nbuffers:
            nxt = 0
            w[W_COMPLETE_PASSES] += 1
        w[W_NEXT_VICTIM] = nxt
        self.lock.release()
        return victim

    def get_buffer(self) -> tuple[int, int]:
        """StrategyGetBuffer: a buffer with refcount 0, returned with its header locked.

        Returns (buf_id, state as read under the header lock)."""
        w, descs = self.w, self.descs
        self.lock.acquire()
        w[W_NUM_ALLOCS] += 1
        bgwprocno = w[W_BGWPROCNO]
        if bgwprocno != -1:
            w[W_BGWPROCNO] = -1
        self.lock.release()
        if bgwprocno != -1 and self.wake_bgwriter is not None:
            self.wake_bgwriter(bgwprocno)
        # First the free list (buffers never used or invalidated).
        while w[W_FIRST_FREE] >= 0:
            self.lock.acquire()
            buf = w[W_FIRST_FREE]
            if buf < 0:
                self.lock.release()
                break
            fw = buf * DESC_WORDS + W_FREE_NEXT
            w[W_FIRST_FREE] = descs.wi[fw]
            descs.wi[fw] = FREENEXT_NOT_IN_LIST
            self.lock.release()
            state = descs.lock_buf_hdr(buf)
            if state & BUF_REFCOUNT_MASK == 0 and state & BUF_USAGECOUNT_MASK == 0:
                return buf, state
            descs.unlock_buf_hdr(buf, state)
        # Then the clock sweep.
        trycounter = self.nbuffers
        while True:
            buf = self._clock_sweep_tick()
            state = descs.lock_buf_hdr(buf)
            if state & BUF_REFCOUNT_MASK == 0:
                if state & BUF_USAGECOUNT_MASK:
                    state -= BUF_USAGECOUNT_ONE
                    trycounter = self.nbuffers
                else:
                    return buf, state
            elif (trycounter := trycounter - 1) == 0:
                descs.unlock_buf_hdr(buf, state)
                raise NoUnpinnedBuffers("no unpinned buffers available")
            descs.unlock_buf_hdr(buf, state)

    def free_buffer(self, buf: int) -> None:
        """StrategyFreeBuffer: put an invalidated buffer at the head of the free list."""
        w, wi = self.w, self.descs.wi
        fw = buf * DESC_WORDS + W_FREE_NEXT
        self.lock.acquire()
        if wi[fw] == FREENEXT_NOT_IN_LIST:
            wi[fw] = w[W_FIRST_FREE]
            if wi[fw] < 0:
                w[W_LAST_FREE] = buf
            w[W_FIRST_FREE] = buf
        self.lock.release()

    def sync_start(self) -> tuple[int, int, int]:
        """StrategySyncStart: (next victim, complete passes, allocations since last call)."""
        w = self.w
        self.lock.acquire()
        result = (w[W_NEXT_VICTIM], w[W_COMPLETE_PASSES], w[W_NUM_ALLOCS])
        w[W_NUM_ALLOCS] = 0
        self.lock.release()
        return result

    def notify_bgwriter(self, bgwprocno: int) -> None:
        """StrategyNotifyBgWriter: ask the next allocation to wake the bgwriter."""
        self.lock.acquire()
        self.w[W_BGWPROCNO] = bgwprocno
        self.lock.release()


_ = FREENEXT_END_OF_LIST
