"""Condition variables — mirrors storage/lmgr/condition_variable.c (PostgreSQL 15).

A condition variable lets a process sleep until another process changes some
shared state and tells it so; PostgreSQL 15 uses one per buffer for I/O
completion (wait event IPC/BufferIO). The caller's loop is PostgreSQL's:

    cv_prepare_to_sleep(cv)            # optional: saves one test of the condition
    while not condition():
        cv_sleep(cv, WAIT_EVENT_BUFFER_IO)
    cv_cancel_sleep()

and whoever changes the state calls ``cv_broadcast(cv)`` (or ``cv_signal`` to
wake one sleeper).

Layout and protocol
-------------------
A ConditionVariable is 8 bytes anywhere in the segment: head and tail (int32,
-1 = none) of a doubly linked list of PGPROC slots, whose links and "queued"
flag are the cv fields of each process's entry in "LWLock Wait Data" (a
process is prepared to sleep on at most one condition variable). The list is
guarded by one of the LWLock spinlock stripes (``(cv_id + NSTRIPES/2) %
NSTRIPES``, so a buffer's content lock and its I/O variable differ).

- prepare: append myself to the list.
- signal/broadcast: under the spinlock, take the first / every process off the
  list and clear its queued flag; then post the semaphore of each one taken.
- sleep: wait on my PGPROC semaphore; then, under the spinlock, if I am no
  longer queued I was signalled: append myself again (so that no later signal
  is missed while the caller re-tests its condition) and return. If I am
  still queued the post was a stray one: sleep again.
- cancel: leave the list; if I was no longer on it, a signal was sent to me
  that I will not act on: consume its post and pass the signal on.

Exactly one semaphore post accompanies each removal from a list, and each is
consumed exactly once (by a sleep, or by cancel), so posts never accumulate.

Where we differ from PostgreSQL
-------------------------------
- Sleepers wait on their PGPROC semaphore, not their latch: a semaphore post is
  counted where setting a latch is idempotent, hence the exact accounting above.
  The sleep is not interrupted by the latch (postmaster death, query cancel);
  signal handlers still run, and one that raises leaves the process prepared,
  to be cleaned up by cv_cancel_sleep in error recovery, as in PostgreSQL.
- Broadcast takes the whole list off at once under the spinlock (holding it
  for one pass over the sleepers) instead of PostgreSQL's one-at-a-time loop
  with a sentinel: the sentinel's extra self-wake-up would be a stray
  semaphore post here. Processes that queue again meanwhile are not woken,
  which is the semantics PostgreSQL's sentinel provides.
"""

from __future__ import annotations

import ctypes
import time

import posix_ipc

from shmem.lwlock import (
    NIL,
    NSTRIPES,
    WAIT_EVENT_BUFFER_IO,
    WD_CV_NEXT,
    WD_CV_PREV,
    WD_CV_QUEUED,
    WD_STRIDE,
    _ctx,
    _spin_acquire_nointr,
)

__all__ = ["CV_SIZE", "ConditionVariable", "WAIT_EVENT_BUFFER_IO", "cv_broadcast",
           "cv_cancel_sleep", "cv_prepare_to_sleep", "cv_signal", "cv_sleep", "cv_timed_sleep"]

CV_SIZE = 8  # head, tail: int32 each

_SignalError = posix_ipc.SignalError
_BusyError = posix_ipc.BusyError


class ConditionVariable:
    """A handle on the 8-byte condition variable at ``buf[offset:]``; ``cv_id``
    picks the spinlock stripe."""

    __slots__ = ("w", "cv_id", "spin_acquire", "spin_release", "addr")

    def __init__(self, buf: memoryview, offset: int, cv_id: int) -> None:
        if offset % 4:
            raise ValueError("ConditionVariable offset must be 4-byte aligned")
        if not _ctx.stripes:
            raise RuntimeError("shmem.lwlock is not attached to a segment")
        view = buf[offset:offset + CV_SIZE]
        if len(view) != CV_SIZE:
            raise ValueError("ConditionVariable does not fit in the buffer")
        self.w = view.cast("i")
        self.addr = ctypes.addressof(ctypes.c_char.from_buffer(view))
        self.cv_id = cv_id
        sem = _ctx.stripes[(cv_id + NSTRIPES // 2) % NSTRIPES]
        self.spin_acquire = sem.acquire
        self.spin_release = sem.release

    def initialize(self) -> None:
        """ConditionVariableInit."""
        self.w[0] = self.w[1] = NIL

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConditionVariable) and other.addr == self.addr

    def __hash__(self) -> int:
        return hash(self.addr)

    def __repr__(self) -> str:
        return f"<ConditionVariable {self.cv_id}>"

    def waiters(self) -> list[int]:
        """PGPROC slots on the list, head first (for tests and tools)."""
        wd = _ctx.wd
        out: list[int] = []
        pending = _spin_acquire_nointr(self.spin_acquire)
        p = self.w[0]
        while p != NIL and len(out) <= _ctx.nslots:
            out.append(p)
            p = wd[p * WD_STRIDE + WD_CV_NEXT]
        self.spin_release()
        if pending is not None:
            raise pending
        return out


# List operations: the condition variable's spinlock must be held.

def _push_tail(w: memoryview, wd: memoryview, p: int) -> None:
    b = p * WD_STRIDE
    tail = w[1]
    wd[b + WD_CV_NEXT] = NIL
    wd[b + WD_CV_PREV] = tail
    if tail == NIL:
        w[0] = p
    else:
        wd[tail * WD_STRIDE + WD_CV_NEXT] = p
    w[1] = p
    wd[b + WD_CV_QUEUED] = 1


def _delete(w: memoryview, wd: memoryview, p: int) -> None:
    b = p * WD_STRIDE
    prev, nxt = wd[b + WD_CV_PREV], wd[b + WD_CV_NEXT]
    if prev == NIL:
        w[0] = nxt
    else:
        wd[prev * WD_STRIDE + WD_CV_NEXT] = nxt
    if nxt == NIL:
        w[1] = prev
    else:
        wd[nxt * WD_STRIDE + WD_CV_PREV] = prev
    wd[b + WD_CV_NEXT] = wd[b + WD_CV_PREV] = NIL
    wd[b + WD_CV_QUEUED] = 0


def _my_slot() -> int:
    if _ctx.slot == NIL:
        raise RuntimeError("cannot sleep on a condition variable without a PGPROC structure")
    return _ctx.slot


def cv_prepare_to_sleep(cv: ConditionVariable) -> None:
    """ConditionVariablePrepareToSleep: join the list before testing the condition."""
    me = _my_slot()
    if _ctx.cv_sleep_target is not None:
        cv_cancel_sleep()
    _ctx.cv_sleep_target = cv
    pending = _spin_acquire_nointr(cv.spin_acquire)
    _push_tail(cv.w, _ctx.wd, me)
    cv.spin_release()
    if pending is not None:
        raise pending


def cv_sleep(cv: ConditionVariable, wait_event_info: int) -> None:
    """ConditionVariableSleep: wait until signalled (or return at once, prepared,
    if not prepared yet). The caller re-tests its condition either way."""
    cv_timed_sleep(cv, None, wait_event_info)


def cv_timed_sleep(cv: ConditionVariable, timeout: float | None, wait_event_info: int) -> bool:
    """ConditionVariableTimedSleep: as cv_sleep, giving up after ``timeout``
    seconds (None: never); returns True if it timed out."""
    ctx = _ctx
    if ctx.cv_sleep_target != cv:
        cv_prepare_to_sleep(cv)
        return False
    me = ctx.slot
    wd = ctx.wd
    acquire = ctx.sem_acquire
    deadline = None if timeout is None else time.monotonic() + timeout
    ctx.procs.set_wait_event(wait_event_info)
    try:
        while True:
            try:
                if deadline is None:
                    acquire()
                else:
                    acquire(max(0.0, deadline - time.monotonic()))
            except _BusyError:
                return True
            except _SignalError:
                continue
            pending = _spin_acquire_nointr(cv.spin_acquire)
            signalled = not wd[me * WD_STRIDE + WD_CV_QUEUED]
            if signalled:
                _push_tail(cv.w, wd, me)  # stay on the list while the caller re-tests
            cv.spin_release()
            if pending is not None:
                raise pending
            if signalled:
                return False
    finally:
        ctx.procs.set_wait_event(0)


def cv_cancel_sleep() -> None:
    """ConditionVariableCancelSleep: leave the list of the prepared variable."""
    ctx = _ctx
    cv = ctx.cv_sleep_target
    if cv is None:
        return
    me = ctx.slot
    wd = ctx.wd
    pending = _spin_acquire_nointr(cv.spin_acquire)
    signalled = not wd[me * WD_STRIDE + WD_CV_QUEUED]
    if not signalled:
        _delete(cv.w, wd, me)
    cv.spin_release()
    ctx.cv_sleep_target = None
    if signalled:
        # Consume the post that goes with the signal (sent, or about to be),
        # and pass the signal on: someone else may be able to use it.
        while True:
            try:
                ctx.sem_acquire()
                break
            except BaseException as exc:  # deferred until the post is consumed
                if pending is None and not isinstance(exc, _SignalError):
                    pending = exc
        cv_signal(cv)
    if pending is not None:
        raise pending


def cv_signal(cv: ConditionVariable) -> bool:
    """ConditionVariableSignal: wake the longest sleeper; False if there is none."""
    wd = _ctx.wd
    pending = _spin_acquire_nointr(cv.spin_acquire)
    p = cv.w[0]
    if p != NIL:
        _delete(cv.w, wd, p)
    cv.spin_release()
    if p != NIL:
        _ctx.posts[p]()
    if pending is not None:
        raise pending
    return p != NIL


def cv_broadcast(cv: ConditionVariable) -> int:
    """ConditionVariableBroadcast: wake every process on the list now; returns
    how many."""
    if _ctx.cv_sleep_target is not None:
        cv_cancel_sleep()
    wd = _ctx.wd
    w = cv.w
    woken: list[int] = []
    pending = _spin_acquire_nointr(cv.spin_acquire)
    p = w[0]
    while p != NIL:
        woken.append(p)
        b = p * WD_STRIDE
        nxt = wd[b + WD_CV_NEXT]
        wd[b + WD_CV_NEXT] = wd[b + WD_CV_PREV] = NIL
        wd[b + WD_CV_QUEUED] = 0
        p = nxt
    w[0] = w[1] = NIL
    cv.spin_release()
    posts = _ctx.posts
    for p in woken:
        posts[p]()
    if pending is not None:
        raise pending
    return len(woken)
