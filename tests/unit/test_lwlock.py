"""shmem.lwlock and shmem.condition_variable across real processes.

Each test creates its own segment (PGPROC array, the LWLock regions and a
"Test" region of flags and counters), forks workers that claim PGPROC slots,
and removes everything at the end, even on failure. Waits are bounded: a bug
fails a test instead of hanging it.
"""

from __future__ import annotations

import os
import random
import signal
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shmem import lwlock
from shmem import proc as shproc
from shmem.condition_variable import (
    ConditionVariable,
    cv_broadcast,
    cv_cancel_sleep,
    cv_prepare_to_sleep,
    cv_signal,
    cv_sleep,
    cv_timed_sleep,
)
from shmem.lwlock import (
    LW_EXCLUSIVE,
    LW_SHARED,
    LW_WAIT_UNTIL_FREE,
    LWTRANCHE_BUFFER_CONTENT,
    LWTRANCHE_BUFFER_MAPPING,
    LWTRANCHE_WAL_INSERT,
    PG_WAIT_LWLOCK,
    WAIT_EVENT_BUFFER_IO,
    LWLock,
    any_lwlock_held,
    buffer_mapping_lock,
    get_named_lwlock,
    lwlock_acquire,
    lwlock_acquire_or_wait,
    lwlock_conditional_acquire,
    lwlock_held_by_me,
    lwlock_held_by_me_in_mode,
    lwlock_release,
    lwlock_release_all,
    lwlock_release_clear_var,
    lwlock_update_var,
    lwlock_wait_for_var,
    read_lwlock_stats,
    wait_event_name,
    wal_insert_lock,
)
from shmem.proc import ProcArray
from shmem.segment import create_segment
from tests.cluster import TEST_RUN_MARK

MAX_CONNECTIONS = 16
TEST_REGION = 8192
CELLS_OFFSET = 4096  # int64 cells after the area where tests place locks
WAIT = 15.0  # seconds any single expected event may take
FREE = (False, 0, False, True)  # LWLock.state() of an idle lock

# The session's leak check also covers these segments.
_REGISTRY = Path(tempfile.gettempdir()) / f"tusk-test-segments-{TEST_RUN_MARK}"


class Settings:
    def __init__(self, **values: object) -> None:
        self.values = values

    def get(self, name: str) -> object:
        return self.values[name]


def wait_until(pred: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


class Harness:
    """A segment plus the processes of one test."""

    def __init__(self, seg, settings: Settings) -> None:
        self.seg = seg
        self.settings = settings
        self.procs = ProcArray(seg, MAX_CONNECTIONS)
        self.test = seg.region("Test")
        self.cells = self.test[CELLS_OFFSET:].cast("q")
        self.children: dict[int, int] = {}  # pid -> exit status (None while running)

    def lock(self, offset: int, lock_id: int, tranche: int = LWTRANCHE_BUFFER_CONTENT) -> LWLock:
        """An LWLock embedded in the Test region, as a buffer descriptor embeds one."""
        lock = LWLock(self.test, offset, lock_id, tranche)
        lock.initialize()
        return lock

    def claim(self) -> int:
        """Give the test process itself a PGPROC, so that it can wait."""
        slot = self.procs.claim_backend(True, 0)
        lwlock.init_proc(self.procs)
        return slot

    def spawn(self, fn: Callable[..., None], *args: object) -> int:
        """Fork a worker that claims a PGPROC and runs fn(slot, *args)."""
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            code = 1
            try:
                signal.signal(signal.SIGALRM, signal.SIG_DFL)
                procs = ProcArray(self.seg, MAX_CONNECTIONS)
                slot = procs.claim_backend(True, 0)
                lwlock.init_proc(procs)
                fn(slot, *args)
                lwlock.proc_exit()
                procs.release()
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        self.children[pid] = None
        return pid

    def slot_of(self, pid: int) -> int:
        for slot, p, _t, _s in self.procs.in_use():
            if p == pid:
                return slot
        raise LookupError(pid)

    def wait_slot(self, pid: int) -> int:
        wait_until(lambda: any(p == pid for _s, p, _t, _u in self.procs.in_use()),
                   f"process {pid} to claim a slot")
        return self.slot_of(pid)

    def join(self, pids: list[int] | None = None, timeout: float = 60) -> None:
        """Wait for workers; fail if one fails or they outlast the timeout."""
        pids = list(self.children) if pids is None else pids
        deadline = time.monotonic() + timeout
        while True:
            for pid in pids:
                if self.children[pid] is None:
                    done, status = os.waitpid(pid, os.WNOHANG)
                    if done:
                        self.children[pid] = os.waitstatus_to_exitcode(status)
            if all(self.children[p] is not None for p in pids):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"workers still running after {timeout}s")
            time.sleep(0.002)
        failed = {p: self.children[p] for p in pids if self.children[p] != 0}
        assert not failed, f"workers failed (pid: exit code): {failed}"

    def kill_children(self) -> None:
        for pid, status in self.children.items():
            if status is None:
                try:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                except (ProcessLookupError, ChildProcessError):
                    pass
                self.children[pid] = -9


@pytest.fixture
def shm() -> Iterator[Harness]:
    name = f"/tusk.test.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    with open(_REGISTRY, "a") as f:
        f.write(name + "\n")
    settings = Settings(max_connections=MAX_CONNECTIONS)
    requests = (shproc.shmem_requests(settings) + lwlock.shmem_requests(settings)
                + [("Test", TEST_REGION)])
    nsems = shproc.num_semaphores(settings) + lwlock.num_semaphores(settings)
    seg = create_segment(name, requests, nsems)
    harness = None

    def on_alarm(_signo: int, _frame: object) -> None:
        raise TimeoutError("test exceeded its time limit")

    old_alarm = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(300)
    try:
        seg.sem_base["shmem.proc"] = 0
        seg.sem_base["shmem.lwlock"] = shproc.num_semaphores(settings)
        shproc.shmem_init(seg, settings)
        lwlock.shmem_init(seg, settings)
        harness = Harness(seg, settings)
        yield harness
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old_alarm)
        if harness is not None:
            harness.kill_children()
            harness.cells.release()
        lwlock.detach()
        seg.destroy()


# ---------------------------------------------------------------------------
# Workers (run in forked children; the first argument is their PGPROC slot)

def _hold(_slot: int, h: Harness, lock: LWLock, mode: int, flag: int, go: int) -> None:
    """Take lock, set cells[flag], hold it until cells[go] is set."""
    lwlock_acquire(lock, mode)
    h.cells[flag] = 1
    wait_until(lambda: h.cells[go] != 0, "go")
    lwlock_release(lock)


def _increment(_slot: int, h: Harness, lock: LWLock, n: int) -> None:
    c = h.cells
    for i in range(n):
        lwlock_acquire(lock, LW_EXCLUSIVE)
        v = c[0]
        if i % 5 == 0:
            os.sched_yield()  # invite the others in, should the lock fail to keep them out
        c[0] = v + 1
        lwlock_release(lock)


# ---------------------------------------------------------------------------

def test_exclusive_increments_are_not_lost(shm: Harness) -> None:
    lock = shm.lock(offset=48, lock_id=1000)
    nproc, m = 4, 2500
    for _ in range(nproc):
        shm.spawn(_increment, shm, lock, m)
    shm.join()
    assert shm.cells[0] == nproc * m
    assert lock.state() == FREE and lock.waiters() == []
    acquisitions, _waits = read_lwlock_stats(shm.seg, shm.settings)["BufferContent"]
    assert acquisitions == nproc * m


def test_shared_holders_hold_at_the_same_time(shm: Harness) -> None:
    lock = get_named_lwlock("ProcArrayLock")
    c = shm.cells

    def reader(_slot: int, me: int) -> None:
        other = 1 - me
        lwlock_acquire(lock, LW_SHARED)
        c[me] = 1  # I hold it
        wait_until(lambda: c[other] == 1, "the other reader to hold the lock too")
        c[2 + me] = 1  # ...and I saw the other holding it while I did
        wait_until(lambda: c[4] == 1, "go")
        lwlock_release(lock)

    shm.spawn(reader, 0)
    shm.spawn(reader, 1)
    wait_until(lambda: c[2] == 1 and c[3] == 1, "both readers to see each other")
    assert lock.state() == (False, 2, False, True)
    assert not lwlock_conditional_acquire(lock, LW_EXCLUSIVE)
    assert lwlock_conditional_acquire(lock, LW_SHARED)
    assert lock.state()[1] == 3
    lwlock_release(lock)
    c[4] = 1
    shm.join()
    assert lock.state() == FREE


def test_conditional_acquire_fails_while_held_and_succeeds_after(shm: Harness) -> None:
    lock = get_named_lwlock("XidGenLock")
    c = shm.cells
    shm.spawn(_hold, shm, lock, LW_EXCLUSIVE, 0, 1)
    wait_until(lambda: c[0] == 1, "the holder")
    assert not lwlock_conditional_acquire(lock, LW_EXCLUSIVE)
    assert not lwlock_conditional_acquire(lock, LW_SHARED)
    assert not any_lwlock_held()
    c[1] = 1
    shm.join()
    assert lwlock_conditional_acquire(lock, LW_EXCLUSIVE)
    assert lwlock_held_by_me_in_mode(lock, LW_EXCLUSIVE)
    lwlock_release(lock)

    # A shared holder admits shared, not exclusive.
    shm.spawn(_hold, shm, lock, LW_SHARED, 2, 3)
    wait_until(lambda: c[2] == 1, "the shared holder")
    assert not lwlock_conditional_acquire(lock, LW_EXCLUSIVE)
    assert lwlock_conditional_acquire(lock, LW_SHARED)
    assert lwlock_held_by_me_in_mode(lock, LW_SHARED)
    assert not lwlock_held_by_me_in_mode(lock, LW_EXCLUSIVE)
    lwlock_release(lock)
    c[3] = 1
    shm.join()
    assert lock.state() == FREE


def test_acquire_or_wait_returns_false_once_released(shm: Harness) -> None:
    lock = get_named_lwlock("WALWriteLock")
    c = shm.cells
    # Uncontended, it is an ordinary acquisition.
    assert lwlock_acquire_or_wait(lock, LW_EXCLUSIVE)
    assert lwlock_held_by_me(lock)
    lwlock_release(lock)

    shm.spawn(_hold, shm, lock, LW_EXCLUSIVE, 0, 1)
    wait_until(lambda: c[0] == 1, "the holder")

    def flusher(_slot: int) -> None:
        got = lwlock_acquire_or_wait(lock, LW_EXCLUSIVE)
        c[2] = 1 if got else 2
        c[3] = int(lwlock_held_by_me(lock) or any_lwlock_held())

    waiter = shm.spawn(flusher)
    slot = shm.wait_slot(waiter)
    wait_until(lambda: lock.waiters() == [(slot, LW_WAIT_UNTIL_FREE)], "the flusher to queue")
    # pg_stat_activity would show it waiting for WALWrite.
    wait_until(lambda: shm.procs.wait_event_info(slot) == PG_WAIT_LWLOCK | 8, "wait event")
    assert wait_event_name(shm.procs.wait_event_info(slot)) == ("LWLock", "WALWrite")
    assert c[2] == 0
    c[1] = 1
    shm.join()
    assert c[2] == 2 and c[3] == 0  # woke when the lock became free, did not take it
    assert lock.state() == FREE
    assert shm.procs.wait_event_info(slot) == 0


def _queue(shm: Harness, lock: LWLock, fn: Callable[..., None], *args: object) -> int:
    """Spawn a waiter and wait until it is queued on lock; returns its slot."""
    pid = shm.spawn(fn, *args)
    slot = shm.wait_slot(pid)
    wait_until(lambda: any(s == slot for s, _m in lock.waiters()), f"slot {slot} to queue")
    return slot


def test_release_wakes_wait_until_free_and_the_run_of_shared_waiters(shm: Harness) -> None:
    shm.claim()
    lock = shm.lock(offset=64, lock_id=2000)
    c = shm.cells
    lwlock_acquire(lock, LW_EXCLUSIVE)

    def flusher(_slot: int, flag: int) -> None:
        c[flag] = 1 if lwlock_acquire_or_wait(lock, LW_EXCLUSIVE) else 2

    # Cells: s1=0, s2=1, x1=2, s3=3 (set while holding), their go cells 10..13; w=4.
    s1 = _queue(shm, lock, _hold, shm, lock, LW_SHARED, 0, 10)
    s2 = _queue(shm, lock, _hold, shm, lock, LW_SHARED, 1, 11)
    x1 = _queue(shm, lock, _hold, shm, lock, LW_EXCLUSIVE, 2, 12)
    s3 = _queue(shm, lock, _hold, shm, lock, LW_SHARED, 3, 13)
    w = _queue(shm, lock, flusher, 4)
    assert lock.waiters() == [(w, LW_WAIT_UNTIL_FREE), (s1, LW_SHARED), (s2, LW_SHARED),
                              (x1, LW_EXCLUSIVE), (s3, LW_SHARED)]

    lwlock_release(lock)
    wait_until(lambda: c[0] == 1 and c[1] == 1 and c[4] == 2, "s1, s2 and the flusher")
    time.sleep(0.1)
    assert c[2] == 0 and c[3] == 0
    assert lock.waiters() == [(x1, LW_EXCLUSIVE), (s3, LW_SHARED)]
    assert lock.state() == (False, 2, True, True)

    c[10] = c[11] = 1  # the shared holders leave: the exclusive waiter is next
    wait_until(lambda: c[2] == 1, "x1")
    assert c[3] == 0 and lock.waiters() == [(s3, LW_SHARED)]
    c[12] = 1
    wait_until(lambda: c[3] == 1, "s3")
    c[13] = 1
    shm.join()
    assert lock.state() == FREE and lock.waiters() == []


def test_release_wakes_one_exclusive_waiter_at_the_head(shm: Harness) -> None:
    shm.claim()
    lock = shm.lock(offset=64, lock_id=2001)
    c = shm.cells
    lwlock_acquire(lock, LW_EXCLUSIVE)
    x1 = _queue(shm, lock, _hold, shm, lock, LW_EXCLUSIVE, 0, 10)
    s1 = _queue(shm, lock, _hold, shm, lock, LW_SHARED, 1, 11)
    s2 = _queue(shm, lock, _hold, shm, lock, LW_SHARED, 2, 12)
    lwlock_release(lock)
    wait_until(lambda: c[0] == 1, "x1")
    time.sleep(0.1)
    assert c[1] == 0 and c[2] == 0
    assert lock.waiters() == [(s1, LW_SHARED), (s2, LW_SHARED)]
    c[10] = 1
    wait_until(lambda: c[1] == 1 and c[2] == 1, "both shared waiters together")
    c[11] = c[12] = 1
    shm.join()
    assert lock.state() == FREE
    del x1


def _stress(slot: int, h: Harness, locks: list[LWLock], seconds: float, idx: int) -> None:
    """Random mix of exclusive, shared and acquire-or-wait on a few locks;
    writers set a flag that readers must never see."""
    c = h.cells
    rnd = random.Random(idx)
    c[100 + idx] = slot
    mine = 0
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        for _ in range(50):
            i += 1
            k = rnd.randrange(len(locks))
            lock = locks[k]
            r = rnd.random()
            if r < 0.45 or (r >= 0.9 and lwlock_acquire_or_wait(lock, LW_EXCLUSIVE)):
                if r < 0.45:
                    lwlock_acquire(lock, LW_EXCLUSIVE)
                c[10 + k] = 1
                v = c[20 + k]
                if i % 3 == 0:
                    os.sched_yield()
                c[20 + k] = v + 1
                mine += 1
                c[10 + k] = 0
                lwlock_release(lock)
            elif r < 0.9:
                lwlock_acquire(lock, LW_SHARED)
                if c[10 + k]:
                    c[1] += 1  # a writer inside while I read: exclusion broken
                if i % 7 == 0:
                    os.sched_yield()
                lwlock_release(lock)
    c[200 + idx] = mine
    lwlock.pgstat_report_lwlocks()


def _stranded(lock: LWLock) -> bool:
    """Free, with waiters, and nobody woken who will retry: a lost wake-up.
    A correct release never leaves this state behind."""
    lock.spin_acquire()
    s = lock.w[0]
    lock.spin_release()
    return not s & lwlock.LW_LOCK_MASK and s & lwlock._WAKE_WANTED == lwlock._WAKE_WANTED


def _stress_mixed_bindings(slot: int, h: Harness, locks: list[LWLock], seconds: float,
                           idx: int) -> None:
    """_stress, with every other process calling the spinlock semaphores through
    _multiprocessing.SemLock, as buffer content locks do (shmem/buf_internals.py)."""
    from shmem.buf_internals import semaphore_ops

    if idx % 2:
        for lock in locks:
            lock.spin_acquire, lock.spin_release = semaphore_ops(lock.spin_acquire.__self__)
    _stress(slot, h, locks, seconds, idx)


def _run_stress(shm: Harness, seconds: float, nproc: int, worker=_stress) -> None:
    locks = [shm.lock(offset=16 * k, lock_id=3000 + k, tranche=LWTRANCHE_BUFFER_MAPPING)
             for k in range(3)]
    pids = [shm.spawn(worker, shm, locks, seconds, idx) for idx in range(nproc)]
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert not any(_stranded(lock) for lock in locks), "a waiter was left behind"
        time.sleep(0.0005)
    shm.join(pids, timeout=60)
    c = shm.cells
    assert c[1] == 0, "a reader saw a writer inside"
    assert sum(c[20 + k] for k in range(3)) == sum(c[200 + i] for i in range(nproc))
    for lock in locks:
        assert lock.state() == FREE and lock.waiters() == []
    for idx in range(nproc):  # every wake-up post was consumed: none lost, none stray
        assert shm.procs.proc_semaphore(c[100 + idx]).value == 0
    acquisitions, waits = read_lwlock_stats(shm.seg, shm.settings)["BufferMapping"]
    assert acquisitions > 0 and waits > 0  # the sleeping path was exercised


def test_no_lost_wakeups_under_contention(shm: Harness) -> None:
    _run_stress(shm, seconds=3.0, nproc=4)


def test_no_lost_wakeups_with_semlock_bound_spinlocks(shm: Harness) -> None:
    _run_stress(shm, seconds=3.0, nproc=4, worker=_stress_mixed_bindings)


@pytest.mark.soak
def test_no_lost_wakeups_soak(shm: Harness, request: pytest.FixtureRequest) -> None:
    markexpr = request.config.getoption("markexpr") or ""
    if "TUSK_SOAK_SECONDS" not in os.environ and ("soak" not in markexpr
                                                  or "not soak" in markexpr):
        pytest.skip("soak test: set TUSK_SOAK_SECONDS or select -m soak")
    _run_stress(shm, seconds=float(os.environ.get("TUSK_SOAK_SECONDS", "300")), nproc=6)


def _rounds(_slot: int, h: Harness, lock: LWLock, idx: int, nproc: int, seconds: float) -> None:
    """Lock-step rounds: one exclusive acquisition each, then a barrier. With
    no later release to rescue it, a lost wake-up stalls the barrier."""
    c = h.cells
    end = time.monotonic() + seconds
    r = 0
    while True:
        r += 1
        lwlock_acquire(lock, LW_EXCLUSIVE if (r + idx) % 3 else LW_SHARED)
        lwlock_release(lock)
        c[50 + idx] = r
        deadline = time.monotonic() + 10
        while any(c[50 + j] < r for j in range(nproc)):
            if time.monotonic() > deadline:
                raise AssertionError(f"round {r}: a process never got the lock")
            os.sched_yield()
        if c[49]:  # the first process to see the time up stops everybody after this round
            if c[49] == r:
                break
        elif time.monotonic() > end:
            c[49] = r + 1
    c[60 + idx] = r


def test_no_lost_wakeups_in_lock_step_rounds(shm: Harness) -> None:
    lock = shm.lock(offset=64, lock_id=4000)
    nproc = 3
    for idx in range(nproc):
        shm.spawn(_rounds, shm, lock, idx, nproc, 2.0)
    shm.join(timeout=60)
    assert shm.cells[60] > 100
    assert lock.state() == FREE


def test_release_all_after_an_error_wakes_waiters(shm: Harness) -> None:
    shm.claim()
    a = get_named_lwlock("OidGenLock")
    b = buffer_mapping_lock(3)
    d = wal_insert_lock(2)
    c = shm.cells

    def waiter(_slot: int) -> None:
        lwlock_acquire(a, LW_SHARED)
        c[0] = 1
        lwlock_release(a)

    with pytest.raises(ZeroDivisionError):
        try:
            lwlock_acquire(a, LW_EXCLUSIVE)
            lwlock_acquire(b, LW_SHARED)
            lwlock_acquire(d, LW_EXCLUSIVE)
            _queue(shm, a, waiter)
            assert [lwlock_held_by_me_in_mode(x, m) for x, m in
                    ((a, LW_EXCLUSIVE), (b, LW_SHARED), (d, LW_EXCLUSIVE))] == [True] * 3
            raise ZeroDivisionError("an error while holding LWLocks")
        except ZeroDivisionError:
            lwlock_release_all()  # what error recovery does
            raise
    assert not any_lwlock_held()
    shm.join()
    assert c[0] == 1
    for x in (a, b, d):
        assert x.state() == FREE

    def taker(_slot: int) -> None:
        assert all(lwlock_conditional_acquire(x, LW_EXCLUSIVE) for x in (a, b, d))
        lwlock_release_all()

    shm.join([shm.spawn(taker)])


def test_release_through_another_handle(shm: Harness) -> None:
    one = shm.lock(offset=128, lock_id=5)
    two = LWLock(shm.test, 128, 5)  # tranche read from shared memory
    assert one == two and hash(one) == hash(two) and two.tranche == LWTRANCHE_BUFFER_CONTENT
    lwlock_acquire(one, LW_SHARED)
    assert lwlock_held_by_me(two)
    lwlock_release(two)
    assert not any_lwlock_held() and one.state() == FREE
    with pytest.raises(RuntimeError, match="not held"):
        lwlock_release(one)
    with pytest.raises(ValueError, match="tranche"):
        LWLock(shm.test, 256, 5, lwlock.LWTRANCHE_FIRST_USER_DEFINED)
    with pytest.raises(ValueError, match="aligned"):
        LWLock(shm.test, 130, 5)
    with pytest.raises(ValueError, match="mode"):
        lwlock_acquire(one, LW_WAIT_UNTIL_FREE)
    assert one.state() == FREE


def test_waiting_needs_a_pgproc(shm: Harness) -> None:
    lock = shm.lock(offset=128, lock_id=6)
    c = shm.cells
    shm.spawn(_hold, shm, lock, LW_EXCLUSIVE, 0, 1)
    wait_until(lambda: c[0] == 1, "the holder")
    with pytest.raises(RuntimeError, match="PGPROC"):
        lwlock_acquire(lock, LW_EXCLUSIVE)
    c[1] = 1
    shm.join()
    assert lock.state() == FREE


def test_wait_for_var(shm: Harness) -> None:
    lock = wal_insert_lock(0)
    var = shm.test[2048:2056].cast("Q")
    c = shm.cells

    def inserter(_slot: int) -> None:
        lwlock_acquire(lock, LW_EXCLUSIVE)
        c[0] = 1
        wait_until(lambda: c[1] == 1, "go 1")
        lwlock_update_var(lock, var, 100)
        wait_until(lambda: c[2] == 1, "go 2")
        lwlock_release_clear_var(lock, var, 0)

    def flusher(_slot: int) -> None:
        free, value = lwlock_wait_for_var(lock, var, 0)
        c[10], c[11] = int(free), value
        free, value = lwlock_wait_for_var(lock, var, 100)
        c[12], c[13] = int(free), value + 1

    try:
        shm.spawn(inserter)
        wait_until(lambda: c[0] == 1, "the inserter")
        slot = _queue(shm, lock, flusher)
        assert lock.waiters() == [(slot, LW_WAIT_UNTIL_FREE)]
        c[1] = 1
        wait_until(lambda: c[11] == 100, "the new value")
        assert c[10] == 0
        wait_until(lambda: lock.waiters() == [(slot, LW_WAIT_UNTIL_FREE)], "the second wait")
        c[2] = 1
        shm.join()
        assert (c[12], c[13]) == (1, 1)  # the lock was released; the value cleared to 0
        assert lock.state() == FREE
    finally:
        var.release()


def test_signals_while_waiting(shm: Harness) -> None:
    """A handler that sets a flag: the wait goes on. One that raises: the
    process leaves the queue cleanly."""
    shm.claim()
    lock = shm.lock(offset=256, lock_id=7)
    c = shm.cells
    lwlock_acquire(lock, LW_EXCLUSIVE)

    def patient(_slot: int) -> None:
        signal.signal(signal.SIGUSR1, lambda *_: c.__setitem__(1, c[1] + 1))
        c[0] = 1
        lwlock_acquire(lock, LW_EXCLUSIVE)
        c[2] = 1
        lwlock_release(lock)

    def impatient(_slot: int) -> None:
        def cancel(*_: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGUSR2, cancel)
        c[3] = 1
        try:
            lwlock_acquire(lock, LW_EXCLUSIVE)
            c[4] = 1  # must not happen
        except KeyboardInterrupt:
            c[4] = 2
        assert not any_lwlock_held()
        wait_until(lambda: c[5] == 1, "go")
        lwlock_acquire(lock, LW_EXCLUSIVE)  # waiting still works afterwards
        lwlock_release(lock)

    pid1 = shm.spawn(patient)
    wait_until(lambda: c[0] == 1, "patient")
    slot1 = shm.wait_slot(pid1)
    wait_until(lambda: lock.waiters() == [(slot1, LW_EXCLUSIVE)], "patient to queue")
    pid2 = shm.spawn(impatient)
    wait_until(lambda: c[3] == 1, "impatient")
    slot2 = shm.wait_slot(pid2)
    wait_until(lambda: len(lock.waiters()) == 2, "impatient to queue")
    for _ in range(5):
        os.kill(pid1, signal.SIGUSR1)
        time.sleep(0.01)
    wait_until(lambda: c[1] == 5, "the handler runs")
    os.kill(pid2, signal.SIGUSR2)
    wait_until(lambda: c[4] == 2, "impatient to give up")
    assert lock.waiters() == [(slot1, LW_EXCLUSIVE)]
    assert c[2] == 0
    c[5] = 1
    wait_until(lambda: lock.waiters() == [(slot1, LW_EXCLUSIVE), (slot2, LW_EXCLUSIVE)],
               "impatient to queue again")
    lwlock_release(lock)
    shm.join()
    assert c[2] == 1 and lock.state() == FREE
    assert shm.procs.proc_semaphore(slot1).value == 0


def test_names_tranches_and_wait_events(shm: Harness) -> None:
    wal_write = get_named_lwlock("WALWriteLock")
    assert wal_write is get_named_lwlock("WALWrite") and wal_write.tranche == 8
    assert buffer_mapping_lock(127).tranche == LWTRANCHE_BUFFER_MAPPING == 60
    assert wal_insert_lock(7).tranche == LWTRANCHE_WAL_INSERT == 55
    assert lwlock.lock_manager_lock(15).tranche == lwlock.LWTRANCHE_LOCK_MANAGER
    assert len({x.addr for x in lwlock.main_lwlocks()}) == lwlock.NUM_MAIN_LWLOCKS == 216
    assert all(x.state() == FREE for x in lwlock.main_lwlocks())
    with pytest.raises(IndexError):
        buffer_mapping_lock(128)
    with pytest.raises(KeyError):
        get_named_lwlock("CheckpointLock")  # gone in PostgreSQL 14
    assert wait_event_name(0) == (None, None)
    assert wait_event_name(PG_WAIT_LWLOCK | 8) == ("LWLock", "WALWrite")
    assert wait_event_name(PG_WAIT_LWLOCK | 17) == ("LWLock", "CheckpointerComm")
    assert wait_event_name(PG_WAIT_LWLOCK | 60) == ("LWLock", "BufferMapping")
    assert wait_event_name(PG_WAIT_LWLOCK | LWTRANCHE_BUFFER_CONTENT) == ("LWLock",
                                                                          "BufferContent")
    assert wait_event_name(PG_WAIT_LWLOCK | 10) == ("LWLock", "<unassigned:10>")
    assert WAIT_EVENT_BUFFER_IO == 0x08000008
    assert wait_event_name(WAIT_EVENT_BUFFER_IO) == ("IPC", "BufferIO")
    assert wait_event_name(0x03000000) == ("Lock", "relation")


def test_statistics_are_published_and_summed(shm: Harness) -> None:
    shm.claim()
    lock = get_named_lwlock("ProcArrayLock")
    for _ in range(5):
        lwlock_acquire(lock, LW_SHARED)
        lwlock_release(lock)
    assert read_lwlock_stats(shm.seg, shm.settings) == {}  # not reported yet
    lwlock.pgstat_report_lwlocks()
    assert read_lwlock_stats(shm.seg, shm.settings) == {"ProcArray": (5, 0)}

    def worker(_slot: int) -> None:
        for _ in range(3):
            lwlock_acquire(lock, LW_EXCLUSIVE)
            lwlock_release(lock)
        lwlock_acquire(get_named_lwlock("XidGenLock"), LW_EXCLUSIVE)
        lwlock_release_all()

    shm.join([shm.spawn(worker)])  # reports at exit (proc_exit)
    assert read_lwlock_stats(shm.seg, shm.settings) == {"ProcArray": (8, 0), "XidGen": (1, 0)}


def _cv_sleeper(slot: int, h: Harness, cv: ConditionVariable, idx: int) -> None:
    c = h.cells
    c[100 + idx] = slot
    cv_prepare_to_sleep(cv)
    while c[0] == 0:
        cv_sleep(cv, WAIT_EVENT_BUFFER_IO)
        c[20 + idx] += 1  # times woken
    cv_cancel_sleep()
    c[10 + idx] = 1


def test_condition_variable_broadcast_wakes_every_sleeper(shm: Harness) -> None:
    cv = ConditionVariable(shm.test, 512, cv_id=1)
    cv.initialize()
    c = shm.cells
    k = 4
    for idx in range(k):
        shm.spawn(_cv_sleeper, shm, cv, idx)
    wait_until(lambda: len(cv.waiters()) == k, "every sleeper to prepare")
    slots = [c[100 + i] for i in range(k)]
    wait_until(lambda: all(shm.procs.wait_event_info(s) == WAIT_EVENT_BUFFER_IO for s in slots),
               "every sleeper to sleep")
    assert wait_event_name(shm.procs.wait_event_info(slots[0])) == ("IPC", "BufferIO")
    c[0] = 1
    assert cv_broadcast(cv) == k
    shm.join()
    assert [c[10 + i] for i in range(k)] == [1] * k
    assert cv.waiters() == []
    assert all(shm.procs.proc_semaphore(s).value == 0 for s in slots)


def test_condition_variable_signal_wakes_one(shm: Harness) -> None:
    cv = ConditionVariable(shm.test, 520, cv_id=2)
    cv.initialize()
    c = shm.cells
    for idx in range(2):
        shm.spawn(_cv_sleeper, shm, cv, idx)
    wait_until(lambda: len(cv.waiters()) == 2, "both sleepers")
    slots = [c[100], c[101]]
    wait_until(lambda: all(shm.procs.wait_event_info(s) for s in slots), "both to sleep")
    first = cv.waiters()[0]
    assert cv_signal(cv)
    wait_until(lambda: c[20] + c[21] == 1, "one wake-up")
    time.sleep(0.1)
    assert c[20] + c[21] == 1
    assert c[20 + slots.index(first)] == 1  # the longest sleeper
    wait_until(lambda: cv.waiters() == [s for s in slots if s != first] + [first],
               "the woken one to queue again behind the other")
    c[0] = 1
    cv_broadcast(cv)
    shm.join()
    assert not cv_signal(cv)
    assert all(shm.procs.proc_semaphore(s).value == 0 for s in slots)


def test_condition_variable_timeout_and_cancel(shm: Harness) -> None:
    slot = shm.claim()
    cv = ConditionVariable(shm.test, 528, cv_id=3)
    cv.initialize()
    assert not cv_timed_sleep(cv, 0.05, WAIT_EVENT_BUFFER_IO)  # not prepared: prepares
    assert cv.waiters() == [slot]
    t0 = time.monotonic()
    assert cv_timed_sleep(cv, 0.05, WAIT_EVENT_BUFFER_IO)
    assert time.monotonic() - t0 >= 0.04
    cv_cancel_sleep()
    assert cv.waiters() == []

    # Signalled between preparing and cancelling: the post is consumed and
    # the signal passed on to the next sleeper.
    c = shm.cells
    cv_prepare_to_sleep(cv)
    shm.spawn(_cv_sleeper, shm, cv, 0)
    wait_until(lambda: len(cv.waiters()) == 2, "the other sleeper")
    assert cv_signal(cv)  # takes me, the first
    cv_cancel_sleep()  # ...so I pass it on
    wait_until(lambda: c[20] == 1, "the other sleeper to be woken")
    assert shm.procs.proc_semaphore(slot).value == 0
    c[0] = 1
    cv_broadcast(cv)
    shm.join()
