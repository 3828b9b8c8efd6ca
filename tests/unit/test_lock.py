"""storage.lmgr (the heavyweight lock manager) across real forked processes
sharing one real segment.

Most tests drive "backends": forked processes with their own PGPROC that run
lock commands sent by the test through a pipe (``Backend``), so the test can
arrange who holds and who waits, in which order, and look at pg_locks in
between. Waits are bounded: a bug fails a test instead of hanging it.
"""

from __future__ import annotations

import mmap
import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from multiprocessing import Pipe
from pathlib import Path
from typing import Any

import pytest

from shmem import lwlock
from shmem.lwlock import wait_event_name
from shmem.proc import ProcArray
from storage.lmgr import lmgr
from storage.lmgr import lock as L
from storage.lmgr.lock import (
    LOCK_CONFLICTS,
    LOCK_MODE_NAMES,
    AccessExclusiveLock,
    AccessShareLock,
    ExclusiveLock,
    RowExclusiveLock,
    RowShareLock,
    ShareLock,
    ShareRowExclusiveLock,
    ShareUpdateExclusiveLock,
)
from tests.unit.shmem_harness import Harness, fork_worker, wait_workers
from utils.elog import PgError

WAIT = 15.0  # seconds any single expected event may take
MODES = range(1, 9)
OBJ = L.set_locktag_object(5, 1259, 4242, 0)  # a main-table-only tag
REL = L.set_locktag_relation(5, 16384)  # a relation tag (fast path for weak modes)


def wait_until(pred: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


@pytest.fixture
def shm(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    h.make(max_connections=12, deadlock_timeout=200)
    backends: list[Backend] = []
    h.backends = backends  # type: ignore[attr-defined]
    try:
        yield h
    finally:
        for b in backends:
            b.kill()
        L.proc_exit()
        h.close()


# ---------------------------------------------------------------------------
# A forked backend that runs lock commands


def _serve(h: Harness, conn: Any, overrides: dict[str, object]) -> None:
    procs = ProcArray(h.seg, h.settings.get("max_connections"))
    procs.claim_backend(True, 0)
    lwlock.init_proc(procs)
    L.init_proc(procs)
    h.settings.values.update(overrides)
    lmgr.transaction_id_is_in_progress_hook = lambda xid: False
    cancel = {"pending": False}

    def on_sigint(_signo: int, _frame: object) -> None:
        cancel["pending"] = True

    def check_for_interrupts() -> None:
        if cancel["pending"]:
            cancel["pending"] = False
            raise PgError("57014", "canceling statement due to user request")

    signal.signal(signal.SIGINT, on_sigint)
    deadline = {"at": 0.0}
    L.set_interrupt_hooks(check_for_interrupts, lambda: deadline["at"])
    conn.send(("ready", procs.my_slot))
    try:
        while True:
            cmd, *args = conn.recv()
            try:
                if cmd == "exit":
                    conn.send(("ok", None))
                    break
                if cmd == "acquire":
                    result: Any = L.lock_acquire(*args)
                elif cmd == "release":
                    result = L.lock_release(*args)
                elif cmd == "release_all":
                    result = L.lock_release_all(*args)
                elif cmd == "xact_insert":
                    result = lmgr.xact_lock_table_insert(*args)
                elif cmd == "xact_wait":
                    result = lmgr.xact_lock_table_wait(*args)
                elif cmd == "set":
                    h.settings.values[args[0]] = args[1]
                    result = None
                elif cmd == "statement_timeout":
                    deadline["at"] = time.monotonic() + args[0] if args[0] else 0.0
                    result = None
                elif cmd == "stderr_to":
                    fd = os.open(args[0], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                    os.dup2(fd, 2)
                    os.close(fd)
                    result = None
                elif cmd == "held":
                    result = L.lock_held_by_me(*args)
                elif cmd == "lmgr":  # any storage.lmgr.lmgr function
                    result = getattr(lmgr, args[0])(*args[1:])
                elif cmd == "lock":  # any storage.lmgr.lock function
                    result = getattr(L, args[0])(*args[1:])
                else:
                    raise ValueError(cmd)
                conn.send(("ok", result))
            except PgError as err:
                conn.send(("error", err.sqlstate, err.message, err.detail, err.hint,
                           getattr(err, "detail_log", None), getattr(err, "context", None)))
    finally:
        L.proc_exit()
        lwlock.proc_exit()
        procs.release()


class Backend:
    """The test's handle on a forked backend."""

    def __init__(self, h: Harness, **overrides: object) -> None:
        self.conn, child_conn = Pipe()
        self.pid = fork_worker(_serve, h, child_conn, overrides, alarm=120)
        child_conn.close()
        self.done = False
        h.backends.append(self)  # type: ignore[attr-defined]
        reply = self.result()
        assert reply[0] == "ready", reply
        self.slot = reply[1]

    def start(self, *cmd: object) -> None:
        self.conn.send(cmd)

    def result(self, timeout: float = WAIT) -> tuple:
        if not self.conn.poll(timeout):
            raise AssertionError(f"backend {self.pid} did not answer in {timeout}s")
        return self.conn.recv()

    def call(self, *cmd: object, timeout: float = WAIT) -> Any:
        self.start(*cmd)
        reply = self.result(timeout)
        assert reply[0] == "ok", reply
        return reply[1]

    def blocked(self, wait: float = 0.1) -> bool:
        """Still working on the last command after ``wait`` seconds?"""
        return not self.conn.poll(wait)

    def exit(self) -> None:
        self.call("exit")
        wait_workers([self.pid])
        self.done = True

    def kill(self) -> None:
        if not self.done:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.done = True


def waiting_rows(pid: int | None = None) -> list[tuple]:
    return [r for r in lmgr.pg_lock_status() if not r[13] and (pid is None or r[11] == pid)]


def wait_queued(b: Backend, n: int = 1) -> None:
    wait_until(lambda: len(waiting_rows(b.pid)) == n, f"backend {b.pid} to wait")


# ---------------------------------------------------------------------------
# Tables and tags


def test_conflict_table_is_postgresqls() -> None:
    # The table of "Conflicting Lock Modes" in PostgreSQL's documentation (13.3.1).
    expected = {
        AccessShareLock: {AccessExclusiveLock},
        RowShareLock: {ExclusiveLock, AccessExclusiveLock},
        RowExclusiveLock: {ShareLock, ShareRowExclusiveLock, ExclusiveLock, AccessExclusiveLock},
        ShareUpdateExclusiveLock: {ShareUpdateExclusiveLock, ShareLock, ShareRowExclusiveLock,
                                   ExclusiveLock, AccessExclusiveLock},
        ShareLock: {RowExclusiveLock, ShareUpdateExclusiveLock, ShareRowExclusiveLock,
                    ExclusiveLock, AccessExclusiveLock},
        ShareRowExclusiveLock: {RowExclusiveLock, ShareUpdateExclusiveLock, ShareLock,
                                ShareRowExclusiveLock, ExclusiveLock, AccessExclusiveLock},
        ExclusiveLock: set(MODES) - {AccessShareLock},
        AccessExclusiveLock: set(MODES),
    }
    for a in MODES:
        assert {b for b in MODES if LOCK_CONFLICTS[a] & (1 << b)} == expected[a]
        for b in MODES:  # symmetric
            assert bool(LOCK_CONFLICTS[a] & (1 << b)) == bool(LOCK_CONFLICTS[b] & (1 << a))
    assert LOCK_MODE_NAMES[1:] == (
        "AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock",
        "ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock")


def test_tags_describe_and_name_like_postgresql() -> None:
    assert L.LOCK_TAG_TYPE_NAMES == ("relation", "extend", "frozenid", "page", "tuple",
                                     "transactionid", "virtualxid", "spectoken", "object",
                                     "userlock", "advisory")
    cases = [
        (L.set_locktag_relation(5, 16384), "relation 16384 of database 5"),
        (L.set_locktag_relation_extend(5, 16384), "extension of relation 16384 of database 5"),
        (L.set_locktag_page(5, 16384, 7), "page 7 of relation 16384 of database 5"),
        (L.set_locktag_tuple(5, 16384, 7, 3), "tuple (7,3) of relation 16384 of database 5"),
        (L.set_locktag_transaction(4000000000), "transaction 4000000000"),
        (L.set_locktag_virtualtransaction(3, 17), "virtual transaction 3/17"),
        (L.set_locktag_object(5, 1259, 4242, 0), "object 4242 of class 1259 of database 5"),
        (L.set_locktag_advisory(1, 2, 3, 1), "advisory lock [1,2,3,1]"),
    ]
    for tag, text in cases:
        assert L.describe_lock_tag(tag) == text
    f = L.locktag_fields(L.set_locktag_tuple(5, 4294967295, 4294967294, 65535))
    assert (f.field1, f.field2, f.field3, f.field4, f.locktype) == \
        (5, 4294967295, 4294967294, 65535, L.LOCKTAG_TUPLE)
    assert wait_event_name(lwlock.PG_WAIT_LOCK | L.LOCKTAG_TRANSACTION) == \
        ("Lock", "transactionid")


# ---------------------------------------------------------------------------
# One process: counts, owners, release-all, the table's capacity


def test_reentrant_counts_and_owners(shm: Harness) -> None:
    other = Backend(shm)
    for tag, mode in ((REL, RowExclusiveLock), (OBJ, ExclusiveLock)):
        assert L.lock_acquire(tag, mode) == L.LOCKACQUIRE_OK
        assert L.lock_acquire(tag, mode) == L.LOCKACQUIRE_ALREADY_HELD
        assert L.lock_acquire(tag, mode, True) == L.LOCKACQUIRE_ALREADY_HELD  # session hold
        assert L.lock_release(tag, mode)
        assert L.lock_release(tag, mode)
        assert L.lock_held_by_me(tag, mode)
        assert other.call("acquire", tag, AccessExclusiveLock, False, True) == \
            L.LOCKACQUIRE_NOT_AVAIL
        # The transaction's end keeps the session's hold.
        L.lock_release_all()
        assert L.lock_held_by_me(tag, mode)
        assert other.call("acquire", tag, AccessExclusiveLock, False, True) == \
            L.LOCKACQUIRE_NOT_AVAIL
        assert not L.lock_release(tag, mode)  # no transaction hold left (WARNING)
        assert L.lock_release(tag, mode, True)
        assert not L.lock_held_by_me(tag, mode)
        assert other.call("acquire", tag, AccessExclusiveLock, False, True) == L.LOCKACQUIRE_OK
        other.call("release_all")
    assert not L.lock_release(OBJ, ExclusiveLock)
    assert L.lock_table_usage()[0] == 0


def test_release_all_in_one_pass(shm: Harness) -> None:
    tags = [
        (REL, AccessShareLock), (REL, RowExclusiveLock),
        (L.set_locktag_relation(5, 16385), ShareLock),  # strong: main table
        (L.set_locktag_relation(5, 16386), AccessExclusiveLock),
        (L.set_locktag_transaction(777), ExclusiveLock),
        (L.set_locktag_tuple(5, 16384, 0, 1), ExclusiveLock),
        (OBJ, ShareUpdateExclusiveLock),
    ]
    for tag, mode in tags:
        assert L.lock_acquire(tag, mode) == L.LOCKACQUIRE_OK
    L.virtual_xact_lock_table_insert(1)
    me = os.getpid()
    mine = [r for r in lmgr.pg_lock_status() if r[11] == me]
    assert len(mine) == len(tags) + 1
    assert {r[0] for r in mine} == {"relation", "transactionid", "tuple", "object", "virtualxid"}
    fast = {(r[2], r[12]) for r in mine if r[14]}
    assert fast == {(16384, "AccessShareLock"), (16384, "RowExclusiveLock"),
                    (None, "ExclusiveLock")}  # the virtual xid lock
    assert all(r[10] == f"{L.my_backend_id()}/1" for r in mine)
    L.lock_release_all()
    assert not [r for r in lmgr.pg_lock_status() if r[11] == me]
    assert L.lock_table_usage()[0::2] == (0, 0)
    other = Backend(shm)
    for tag in dict(tags):
        assert other.call("acquire", tag, AccessExclusiveLock, False, True) == L.LOCKACQUIRE_OK
    other.call("release_all")


def test_out_of_shared_memory(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.make(max_connections=2, max_locks_per_transaction=10)
    try:
        capacity = L.lock_table_usage()[1]
        assert capacity == 10 * (2 + 4)
        for i in range(capacity):
            L.lock_acquire(L.set_locktag_object(5, 1259, i, 0), ExclusiveLock)
        with pytest.raises(PgError) as exc:
            L.lock_acquire(L.set_locktag_object(5, 1259, capacity, 0), ExclusiveLock)
        assert exc.value.sqlstate == "53200"
        assert exc.value.message == "out of shared memory"
        assert exc.value.hint == "You might need to increase max_locks_per_transaction."
        assert L.lock_acquire(L.set_locktag_transaction(9), ShareLock, report_memory_error=False) \
            == L.LOCKACQUIRE_NOT_AVAIL
        L.lock_release_all()
        assert L.lock_table_usage()[0::2] == (0, 0)
    finally:
        L.proc_exit()
        h.close()


# ---------------------------------------------------------------------------
# Two processes: every pair of modes


@pytest.mark.parametrize("tag", [REL, OBJ], ids=["relation", "object"])
def test_conflict_matrix_between_processes(shm: Harness, tag) -> None:
    other = Backend(shm)
    for held in MODES:
        assert L.lock_acquire(tag, held) == L.LOCKACQUIRE_OK
        for wanted in MODES:
            got = other.call("acquire", tag, wanted, False, True)
            if LOCK_CONFLICTS[held] & (1 << wanted):
                assert got == L.LOCKACQUIRE_NOT_AVAIL, (held, wanted)
            else:
                assert got == L.LOCKACQUIRE_OK, (held, wanted)
                assert other.call("release", tag, wanted)
            # Own locks never conflict.
            assert L.lock_acquire(tag, wanted) in (L.LOCKACQUIRE_OK, L.LOCKACQUIRE_ALREADY_HELD)
            L.lock_release(tag, wanted)
        L.lock_release_all()
    assert L.lock_table_usage()[0::2] == (0, 0)


# ---------------------------------------------------------------------------
# Many processes


def test_contending_processes_lose_no_increment(shm: Harness) -> None:
    """Incrementers under ExclusiveLock on a relation (main table, strong);
    a reader under RowShareLock (fast path, conflicts with ExclusiveLock) checks
    that nobody is inside the critical section while it holds its lock."""
    nworkers, rounds = 3, 150
    cells = mmap.mmap(-1, 8 * (4 + nworkers))
    words = memoryview(cells).cast("q")  # counter, inside, violations, done flags...

    def incrementer(w: int) -> None:
        procs = _claim(shm)
        rnd = random.Random(w)
        for _ in range(rounds):
            L.lock_acquire(REL, ExclusiveLock)
            words[1] = 1
            v = words[0]
            if rnd.random() < 0.2:
                time.sleep(0.0002)
            words[0] = v + 1
            words[1] = 0
            L.lock_release(REL, ExclusiveLock)
        _unclaim(procs)
        words[4 + w] = 1

    def reader() -> None:
        procs = _claim(shm)
        while not all(words[4:4 + nworkers]):
            L.lock_acquire(REL, RowShareLock)
            for _ in range(20):
                if words[1]:
                    words[2] += 1
            L.lock_release_all()
        _unclaim(procs)

    pids = [fork_worker(reader)] + [fork_worker(incrementer, w) for w in range(nworkers)]
    wait_workers(pids)
    assert words[0] == nworkers * rounds
    assert words[2] == 0
    assert L.lock_table_usage()[0::2] == (0, 0)
    words.release()
    cells.close()


def _claim(h: Harness) -> ProcArray:
    procs = ProcArray(h.seg, h.settings.get("max_connections"))
    procs.claim_backend(True, 0)
    lwlock.init_proc(procs)
    L.init_proc(procs)
    return procs


def _unclaim(procs: ProcArray) -> None:
    L.proc_exit()
    lwlock.proc_exit()
    procs.release()


def test_fifo_grants_and_shared_batching(shm: Harness) -> None:
    """Holder X; queue S1, S2, X3, S4: releasing wakes S1 and S2 together; X3 waits
    for both; S4, though compatible with S1 and S2, waits behind X3."""
    assert L.lock_acquire(OBJ, ExclusiveLock) == L.LOCKACQUIRE_OK
    s1, s2, x3, s4 = Backend(shm), Backend(shm), Backend(shm), Backend(shm)
    for b, mode in ((s1, ShareLock), (s2, ShareLock), (x3, ExclusiveLock), (s4, ShareLock)):
        b.start("acquire", OBJ, mode)
        wait_queued(b)
    L.lock_release(OBJ, ExclusiveLock)
    assert s1.result() == ("ok", L.LOCKACQUIRE_OK)
    assert s2.result() == ("ok", L.LOCKACQUIRE_OK)
    assert x3.blocked() and s4.blocked()
    s1.call("release", OBJ, ShareLock)
    assert x3.blocked(0.05)
    s2.call("release", OBJ, ShareLock)
    assert x3.result() == ("ok", L.LOCKACQUIRE_OK)
    assert s4.blocked()
    x3.call("release", OBJ, ExclusiveLock)
    assert s4.result() == ("ok", L.LOCKACQUIRE_OK)
    s4.call("release", OBJ, ShareLock)
    assert L.lock_table_usage()[0::2] == (0, 0)


def test_holder_of_a_conflicting_lock_queues_ahead(shm: Harness) -> None:
    """JoinWaitQueue: a process that already holds a lock a waiter needs goes
    ahead of that waiter (and here gets its lock at once)."""
    a, b = Backend(shm), Backend(shm)
    assert a.call("acquire", OBJ, ShareLock) == L.LOCKACQUIRE_OK
    assert L.lock_acquire(OBJ, ShareLock) == L.LOCKACQUIRE_OK
    b.start("acquire", OBJ, ExclusiveLock)  # waits for both
    wait_queued(b)
    # RowShare does not conflict with Share; a holds Share, which b waits for.
    assert a.call("acquire", OBJ, RowShareLock) == L.LOCKACQUIRE_OK
    a.call("release_all")
    L.lock_release_all()
    assert b.result() == ("ok", L.LOCKACQUIRE_OK)
    b.call("release_all")


def test_strong_lock_transfers_fast_path_locks(shm: Harness) -> None:
    a, b = Backend(shm), Backend(shm)
    assert a.call("acquire", REL, RowExclusiveLock) == L.LOCKACQUIRE_OK
    rows = [r for r in lmgr.pg_lock_status() if r[11] == a.pid]
    assert [(r[12], r[14]) for r in rows] == [("RowExclusiveLock", True)]
    b.start("acquire", REL, AccessExclusiveLock)
    wait_queued(b)
    # a's lock now lives in the main table.
    rows = [r for r in lmgr.pg_lock_status() if r[11] == a.pid]
    assert [(r[12], r[14]) for r in rows] == [("RowExclusiveLock", False)]
    assert lmgr.pg_blocking_pids(b.pid) == [a.pid]
    # While the strong lock is wanted, weak locks queue too (no fast path).
    c = Backend(shm)
    c.start("acquire", REL, AccessShareLock)
    wait_queued(c)
    assert a.call("release", REL, RowExclusiveLock)  # released from the main table
    assert b.result() == ("ok", L.LOCKACQUIRE_OK)
    assert c.blocked()
    b.call("release_all")
    assert c.result() == ("ok", L.LOCKACQUIRE_OK)
    c.call("release_all")
    assert L.lock_table_usage()[0::2] == (0, 0)
    assert not L._st.strong.tolist().count(1)


def test_exit_releases_locks_and_wakes_waiters(shm: Harness) -> None:
    a, b = Backend(shm), Backend(shm)
    assert a.call("acquire", OBJ, ExclusiveLock) == L.LOCKACQUIRE_OK
    assert a.call("acquire", REL, RowShareLock, True) == L.LOCKACQUIRE_OK  # session, fast path
    assert a.call("xact_insert", 4321) is None
    b.start("xact_wait", 4321)
    wait_queued(b)
    a.exit()  # proc_exit
    assert b.result() == ("ok", None)
    assert b.call("acquire", REL, AccessExclusiveLock, False, True) == L.LOCKACQUIRE_OK
    assert b.call("acquire", OBJ, ExclusiveLock, False, True) == L.LOCKACQUIRE_OK
    b.call("release_all")
    assert L.lock_table_usage()[0::2] == (0, 0)


# ---------------------------------------------------------------------------
# Waiting: pg_locks, timeouts, interrupts


def test_pg_locks_while_waiting(shm: Harness) -> None:
    assert L.lock_acquire(REL, AccessExclusiveLock) == L.LOCKACQUIRE_OK
    b = Backend(shm)
    before = int((time.time() - L.POSTGRES_EPOCH_UNIX) * 1_000_000)
    b.start("acquire", REL, AccessShareLock)
    wait_queued(b)
    # As in PostgreSQL, waitstart may be null for a moment after the wait begins.
    wait_until(lambda: waiting_rows(b.pid)[0][15] is not None, "waitstart to be set")
    (row,) = waiting_rows(b.pid)
    assert row[:3] == ("relation", 5, 16384)
    assert row[10] == f"{b.slot + 1}/0"
    assert row[11:15] == (b.pid, "AccessShareLock", False, False)
    assert row[15] is not None and before <= row[15] <= before + 10_000_000
    mine = [r for r in lmgr.pg_lock_status() if r[11] == os.getpid()]
    assert [(r[12], r[13], r[15]) for r in mine] == [("AccessExclusiveLock", True, None)]
    assert wait_event_name(ProcArray(shm.seg, 12).wait_event_info(b.slot)) == \
        ("Lock", "relation")
    assert lmgr.pg_blocking_pids(b.pid) == [os.getpid()]
    L.lock_release_all()
    assert b.result() == ("ok", L.LOCKACQUIRE_OK)
    assert ProcArray(shm.seg, 12).wait_event_info(b.slot) == 0
    row = [r for r in lmgr.pg_lock_status() if r[11] == b.pid][0]
    assert row[13] is True and row[15] is None
    b.call("release_all")


def test_lock_timeout_removes_the_waiter(shm: Harness) -> None:
    """A waiter that times out leaves the queue; one queued behind it, compatible
    with the holder, is woken by that removal alone."""
    assert L.lock_acquire(OBJ, ShareLock) == L.LOCKACQUIRE_OK
    x, s = Backend(shm, lock_timeout=1000), Backend(shm)
    started = time.monotonic()
    x.start("acquire", OBJ, ExclusiveLock)
    wait_queued(x)
    s.start("acquire", OBJ, ShareLock)  # compatible with mine, but behind x
    wait_queued(s)
    reply = x.result()
    assert reply[:3] == ("error", "55P03", "canceling statement due to lock timeout")
    assert time.monotonic() - started >= 1.0
    assert s.result() == ("ok", L.LOCKACQUIRE_OK)
    assert not waiting_rows()
    assert not x.call("held", OBJ, ExclusiveLock)
    s.call("release_all")
    L.lock_release_all()
    assert x.call("acquire", OBJ, ExclusiveLock) == L.LOCKACQUIRE_OK  # nothing left over
    x.call("release_all")
    assert L.lock_table_usage()[0::2] == (0, 0)


def test_cancel_through_the_interrupt_hook(shm: Harness) -> None:
    assert L.lock_acquire(REL, AccessExclusiveLock) == L.LOCKACQUIRE_OK
    b = Backend(shm)
    b.start("acquire", REL, RowExclusiveLock)
    wait_queued(b)
    os.kill(b.pid, signal.SIGINT)
    reply = b.result()
    assert reply[:3] == ("error", "57014", "canceling statement due to user request")
    assert not waiting_rows()
    L.lock_release_all()
    assert L.lock_table_usage()[0::2] == (0, 0)
    # The backend still works, and its lock was not left half-granted.
    assert b.call("acquire", REL, AccessExclusiveLock) == L.LOCKACQUIRE_OK
    b.call("release_all")


def test_statement_timeout_while_waiting(shm: Harness) -> None:
    assert L.lock_acquire(OBJ, ExclusiveLock) == L.LOCKACQUIRE_OK
    b = Backend(shm, lock_timeout=5000)
    b.call("statement_timeout", 0.2)
    b.start("acquire", OBJ, ShareLock)
    reply = b.result()
    assert reply[:3] == ("error", "57014", "canceling statement due to statement timeout")
    assert not waiting_rows()
    L.lock_release_all()


def test_log_lock_waits(shm: Harness, tmp_path: Path) -> None:
    log = tmp_path / "waiter.log"
    holder = Backend(shm)
    holder.call("xact_insert", 7)
    b = Backend(shm, log_lock_waits=True, deadlock_timeout=100)
    b.call("stderr_to", str(log))
    b.start("xact_wait", 7, "accounts", (0, 1), lmgr.XLTW_UPDATE)
    wait_queued(b)
    wait_until(lambda: log.exists() and "still waiting" in log.read_text(), "the LOG line")
    holder.call("release_all")
    assert b.result() == ("ok", None)
    text = log.read_text()
    assert f"process {b.pid} still waiting for ShareLock on transaction 7 after 1" in text
    assert f"Process holding the lock: {holder.pid}. Wait queue: {b.pid}." in text
    assert 'while updating tuple (0,1) in relation "accounts"' in text
    assert f"process {b.pid} acquired ShareLock on transaction 7 after" in text


def test_virtual_xid_lock(shm: Harness) -> None:
    a, b = Backend(shm), Backend(shm)
    a.call("lock", "virtual_xact_lock_table_insert", 5)
    (row,) = [r for r in lmgr.pg_lock_status() if r[11] == a.pid]
    assert (row[0], row[5], row[10], row[12], row[13], row[14]) == \
        ("virtualxid", f"{a.slot + 1}/5", f"{a.slot + 1}/5", "ExclusiveLock", True, True)
    assert b.call("lock", "virtual_xact_lock", a.slot + 1, 5, False) is False
    assert b.call("lock", "virtual_xact_lock", a.slot + 1, 4, True) is True  # not that one
    b.start("lock", "virtual_xact_lock", a.slot + 1, 5, True)
    wait_queued(b)
    rows = [r for r in lmgr.pg_lock_status() if r[0] == "virtualxid"]
    assert {(r[11], r[12], r[13], r[14]) for r in rows} == {
        (a.pid, "ExclusiveLock", True, False),  # moved to the main table
        (b.pid, "ShareLock", False, False)}
    a.call("release_all")  # the transaction ends
    assert b.result() == ("ok", True)
    assert not [r for r in lmgr.pg_lock_status() if r[0] == "virtualxid"]
    assert L.lock_table_usage()[0::2] == (0, 0)


def test_lmgr_helpers(shm: Harness) -> None:
    lmgr.set_my_database_id(5)
    b = Backend(shm)
    b.call("lmgr", "set_my_database_id", 5)
    lmgr.lock_relation_oid(16384, RowExclusiveLock)
    lmgr.lock_relation_oid(1262, AccessShareLock)  # pg_database: shared, database 0
    lmgr.lock_tuple(16384, (3, 7), ExclusiveLock)
    lmgr.lock_relation_for_extension(16384)
    lmgr.lock_database_object(2615, 2200, 0, AccessShareLock)
    lmgr.xact_lock_table_insert(555)
    rows = {(r[0], r[1], r[2], r[3], r[4], r[6], r[7], r[8], r[12])
            for r in lmgr.pg_lock_status() if r[11] == os.getpid()}
    assert rows == {
        ("relation", 5, 16384, None, None, None, None, None, "RowExclusiveLock"),
        ("relation", 0, 1262, None, None, None, None, None, "AccessShareLock"),
        ("tuple", 5, 16384, 3, 7, None, None, None, "ExclusiveLock"),
        ("extend", 5, 16384, None, None, None, None, None, "ExclusiveLock"),
        ("object", 5, None, None, None, None, 2615, 2200, "AccessShareLock"),
        ("transactionid", None, None, None, None, 555, None, None, "ExclusiveLock"),
    }
    assert b.call("lmgr", "conditional_lock_relation_oid", 16384, ShareLock) is False
    assert b.call("lmgr", "conditional_lock_relation_oid", 16384, RowExclusiveLock) is True
    assert b.call("lmgr", "conditional_lock_tuple", 16384, (3, 7), ShareLock) is False
    assert b.call("lmgr", "conditional_lock_tuple", 16384, (3, 8), ShareLock) is True
    assert b.call("lmgr", "conditional_xact_lock_table_wait", 555) is False
    lmgr.unlock_tuple(16384, (3, 7), ExclusiveLock)
    assert b.call("lmgr", "conditional_lock_tuple", 16384, (3, 7), ShareLock) is True
    lmgr.unlock_relation_oid(16384, RowExclusiveLock)
    b.call("release_all")
    assert b.call("lmgr", "conditional_lock_relation_oid", 16384, AccessExclusiveLock) is True
    b.call("release_all")
    L.lock_release_all()
    assert b.call("lmgr", "conditional_xact_lock_table_wait", 555) is True
    assert L.lock_table_usage()[0::2] == (0, 0)
    lmgr.set_my_database_id(0)


# ---------------------------------------------------------------------------
# Deadlocks


def _expect_deadlock(reply: tuple, lines: list[str]) -> None:
    assert reply[0] == "error", reply
    _e, sqlstate, message, detail, hint, detail_log, _context = reply
    assert (sqlstate, message) == ("40P01", "deadlock detected")
    assert detail == "\n".join(lines)
    assert hint == "See server log for query details."
    assert detail_log.startswith(detail + "\nProcess ")


def test_two_process_deadlock(shm: Harness) -> None:
    a = Backend(shm, deadlock_timeout=10_000)
    b = Backend(shm, deadlock_timeout=100)
    a.call("xact_insert", 100)
    b.call("xact_insert", 200)
    a.start("xact_wait", 200)
    wait_queued(a)
    b.start("xact_wait", 100)  # closes the cycle
    _expect_deadlock(b.result(), [
        f"Process {b.pid} waits for ShareLock on transaction 100; blocked by process {a.pid}.",
        f"Process {a.pid} waits for ShareLock on transaction 200; blocked by process {b.pid}.",
    ])
    assert a.blocked()  # still waiting: exactly one error
    b.call("release_all")  # the victim's transaction aborts
    assert a.result() == ("ok", None)
    a.call("release_all")
    assert L.lock_table_usage()[0::2] == (0, 0)


def test_three_process_deadlock(shm: Harness) -> None:
    a = Backend(shm, deadlock_timeout=10_000)
    b = Backend(shm, deadlock_timeout=10_000)
    c = Backend(shm, deadlock_timeout=150)
    for w, xid in ((a, 1001), (b, 1002), (c, 1003)):
        w.call("xact_insert", xid)
    a.start("xact_wait", 1002)
    wait_queued(a)
    b.start("xact_wait", 1003)
    wait_queued(b)
    c.start("xact_wait", 1001)
    _expect_deadlock(c.result(), [
        f"Process {c.pid} waits for ShareLock on transaction 1001; blocked by process {a.pid}.",
        f"Process {a.pid} waits for ShareLock on transaction 1002; blocked by process {b.pid}.",
        f"Process {b.pid} waits for ShareLock on transaction 1003; blocked by process {c.pid}.",
    ])
    assert a.blocked() and b.blocked()
    c.call("release_all")
    assert b.result() == ("ok", None)
    b.call("release_all")
    assert a.result() == ("ok", None)
    a.call("release_all")
    assert L.lock_table_usage()[0::2] == (0, 0)


def test_deadlock_on_relations_taken_through_the_fast_path(shm: Harness) -> None:
    """Weak locks in fast-path slots, moved to the main table by the strong
    requests; both check after the same deadlock_timeout: exactly one fails."""
    r1, r2 = L.set_locktag_relation(5, 16385), L.set_locktag_relation(5, 16386)
    a, b = Backend(shm, deadlock_timeout=150), Backend(shm, deadlock_timeout=150)
    assert a.call("acquire", r1, AccessShareLock) == L.LOCKACQUIRE_OK
    assert b.call("acquire", r2, AccessShareLock) == L.LOCKACQUIRE_OK
    a.start("acquire", r2, AccessExclusiveLock)
    wait_queued(a)
    b.start("acquire", r1, AccessExclusiveLock)
    replies = {}
    deadline = time.monotonic() + WAIT
    while not replies and time.monotonic() < deadline:
        for w in (a, b):
            if w.conn.poll(0.01):
                replies[w] = w.result()
    ((victim, reply),) = replies.items()
    survivor = b if victim is a else a
    mine, theirs = (r2, r1) if victim is a else (r1, r2)
    _expect_deadlock(reply, [
        f"Process {victim.pid} waits for AccessExclusiveLock on "
        f"{L.describe_lock_tag(mine)}; blocked by process {survivor.pid}.",
        f"Process {survivor.pid} waits for AccessExclusiveLock on "
        f"{L.describe_lock_tag(theirs)}; blocked by process {victim.pid}.",
    ])
    assert survivor.blocked(0.4)  # past its own deadlock check: exactly one error
    victim.call("release_all")
    assert survivor.result() == ("ok", L.LOCKACQUIRE_OK)
    survivor.call("release_all")
    assert L.lock_table_usage()[0::2] == (0, 0)


def test_immediate_deadlock_in_join_wait_queue(shm: Harness) -> None:
    """Both hold Share and want Exclusive: the second to ask sees at once that the
    first waits for it (RememberSimpleDeadLock), without deadlock_timeout."""
    a = Backend(shm, deadlock_timeout=60_000)
    b = Backend(shm, deadlock_timeout=60_000)
    assert a.call("acquire", OBJ, ShareLock) == L.LOCKACQUIRE_OK
    assert b.call("acquire", OBJ, ShareLock) == L.LOCKACQUIRE_OK
    a.start("acquire", OBJ, ExclusiveLock)
    wait_queued(a)
    b.start("acquire", OBJ, ExclusiveLock)
    desc = L.describe_lock_tag(OBJ)
    _expect_deadlock(b.result(timeout=5), [
        f"Process {b.pid} waits for ExclusiveLock on {desc}; blocked by process {a.pid}.",
        f"Process {a.pid} waits for ExclusiveLock on {desc}; blocked by process {b.pid}.",
    ])
    b.call("release_all")
    assert a.result() == ("ok", L.LOCKACQUIRE_OK)
    a.call("release_all")


def test_soft_deadlock_is_resolved_by_reordering_the_queue(shm: Harness) -> None:
    """p1 holds Share on L1 and waits for L2 (held by p3); p2 waits for
    AccessExclusive on L1; p3 asks Share on L1 and queues behind p2. The cycle
    p3 -> p2 -> p1 -> p3 has a soft edge: moving p3 ahead of p2 breaks it."""
    l1, l2 = OBJ, L.set_locktag_object(5, 1259, 4343, 0)
    p1 = Backend(shm, deadlock_timeout=10_000)
    p2 = Backend(shm, deadlock_timeout=10_000)
    p3 = Backend(shm, deadlock_timeout=100)
    assert p1.call("acquire", l1, ShareLock) == L.LOCKACQUIRE_OK
    assert p3.call("acquire", l2, ExclusiveLock) == L.LOCKACQUIRE_OK
    p2.start("acquire", l1, AccessExclusiveLock)
    wait_queued(p2)
    p1.start("acquire", l2, ExclusiveLock)
    wait_queued(p1)
    p3.start("acquire", l1, ShareLock)
    assert p3.result() == ("ok", L.LOCKACQUIRE_OK)  # reordered ahead of p2
    p3.call("release_all")
    assert p1.result() == ("ok", L.LOCKACQUIRE_OK)
    p1.call("release_all")
    assert p2.result() == ("ok", L.LOCKACQUIRE_OK)
    p2.call("release_all")
    assert L.lock_table_usage()[0::2] == (0, 0)
