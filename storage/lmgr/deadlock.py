"""Deadlock detection — mirrors src/backend/storage/lmgr/deadlock.c of PostgreSQL 15
(see PostgreSQL's src/backend/storage/lmgr/README for the theory).

The waits-for graph has an edge from each waiting process to each process it
waits for. A *hard* edge points at a holder of a conflicting mode; a *soft*
edge points at a process queued ahead on the same lock whose request
conflicts. A cycle of hard edges is a deadlock: the process that found it
leaves its wait queue and raises 40P01. A cycle with soft edges may be undone
by reordering wait queues: each soft edge is a constraint to reverse, tried
one at a time (DeadLockCheckRecurse), each candidate set of constraints
expanded into queue orders by a topological sort that changes the queues as
little as possible (ExpandConstraints, TopoSort), and tested again for cycles
(TestConfiguration). If an order without cycles exists, the queues are
rewritten and waiters woken (a "soft deadlock").

The caller (storage.lmgr.lock.check_dead_lock) holds every lock-manager
partition lock, so the graph cannot change underneath. Processes are PGPROC
slot numbers; locks are indexes into the lock table.

Where tusk differs: no lock groups (parallel query), no autovacuum-blocker
tracking; workspace is Python lists instead of preallocated arrays, with
PostgreSQL's bound on the number of constraints (MaxBackends).
"""

from __future__ import annotations

from typing import NoReturn

from storage.lmgr import lock as _lock
from storage.lmgr.lock import (
    DS_HARD_DEADLOCK,
    DS_NO_DEADLOCK,
    DS_SOFT_DEADLOCK,
    L_PROCLOCKS,
    LOCK_CONFLICTS,
    LOCK_MODE_NAMES,
    LOCK_WORDS,
    P_HOLD,
    P_NEXT,
    P_PROC,
    PROC_WORDS,
    PROCLOCK_WORDS,
    W_WAIT_LOCK,
    W_WAIT_MODE,
    LockTag,
    describe_lock_tag,
)
from utils.elog import FatalError, PgError


class _Edge:
    """One edge of the waits-for graph: ``waiter`` waits for ``blocker``."""

    __slots__ = ("waiter", "blocker")

    def __init__(self, waiter: int, blocker: int) -> None:
        self.waiter = waiter
        self.blocker = blocker


class _DeadlockInfo:
    """What DeadLockReport prints about one edge of the cycle; extracted while the
    partition locks are held, printed after they are released."""

    __slots__ = ("tag", "mode", "pid")

    def __init__(self, tag: LockTag, mode: int, pid: int) -> None:
        self.tag = tag
        self.mode = mode
        self.pid = pid


# Workspace of one check.
_visited: list[int] = []  # FindLockCycle's visitedProcs
_details: list[_DeadlockInfo | None] = []  # deadlockDetails of the last cycle found
_cur_constraints: list[_Edge] = []  # soft edges being reversed in this configuration
_wait_orders: dict[int, list[int]] = {}  # lock -> proposed wait queue (ExpandConstraints)


def dead_lock_check(proc: int) -> int:
    """DeadLockCheck: look for a cycle through ``proc``; fix soft ones by
    rearranging wait queues (waking who can go). Returns DS_NO_DEADLOCK,
    DS_SOFT_DEADLOCK or DS_HARD_DEADLOCK (details kept for dead_lock_report)."""
    _cur_constraints.clear()
    _wait_orders.clear()
    if _dead_lock_check_recurse(proc):
        # Record the details of the real (unrearranged) cycle for the report.
        _wait_orders.clear()
        found, _soft = _find_lock_cycle(proc)
        if not found:
            raise FatalError("XX000", "deadlock seems to have disappeared")
        return DS_HARD_DEADLOCK
    if not _wait_orders:
        return DS_NO_DEADLOCK
    for lock, procs in _wait_orders.items():
        _lock._set_wait_queue(lock, procs)
        _lock.proc_lock_wakeup(lock)
    return DS_SOFT_DEADLOCK


def _max_constraints() -> int:
    return max(_lock._st.nslots, 1)


def _dead_lock_check_recurse(proc: int) -> bool:
    """True if no deadlock-free configuration extends the current constraints."""
    soft = _test_configuration(proc)
    if soft is None:
        return True  # hard deadlock: no solution
    if not soft:
        return False  # this configuration is good
    if len(_cur_constraints) >= _max_constraints():
        return True  # out of room for active constraints
    for edge in soft:
        _cur_constraints.append(edge)
        if not _dead_lock_check_recurse(proc):
            return False  # found a valid solution
        _cur_constraints.pop()
    return True


def _test_configuration(start: int) -> list[_Edge] | None:
    """TestConfiguration: None for a hard deadlock (or inconsistent constraints),
    [] if there is no cycle, else the soft edges of one soft cycle."""
    if not _expand_constraints(_cur_constraints):
        return None
    soft_found: list[_Edge] = []
    # The start proc last: its soft cycle, if any, is the one to deal with first.
    candidates = [p for e in _cur_constraints for p in (e.waiter, e.blocker)] + [start]
    for proc in candidates:
        found, soft = _find_lock_cycle(proc)
        if found:
            if not soft:
                return None
            soft_found = soft
    return soft_found


def _find_lock_cycle(proc: int) -> tuple[bool, list[_Edge]]:
    """FindLockCycle: is there a cycle through ``proc``? Returns the soft edges
    on it and fills _details."""
    _visited.clear()
    _details.clear()
    soft: list[_Edge] = []
    return _find_lock_cycle_recurse(proc, 0, soft), soft


def _find_lock_cycle_recurse(check: int, depth: int, soft: list[_Edge]) -> bool:
    if check in _visited:
        if _visited[0] == check:
            _details[:] = [None] * depth  # each level fills in its edge on the way out
            return True
        return False  # a cycle, but not through the start
    _visited.append(check)
    st = _lock._st
    pw, pl, lk = st.pw, st.pl, st.lk
    cb = check * PROC_WORDS
    lock = pw[cb + W_WAIT_LOCK]
    if lock < 0:
        return False  # not waiting: no outgoing edges
    mode = pw[cb + W_WAIT_MODE]
    conflicts = LOCK_CONFLICTS[mode]
    # Hard edges: holders of conflicting modes (checked first, so that a
    # process both holding and queued ahead counts as hard).
    p = lk[lock * LOCK_WORDS + L_PROCLOCKS]
    while p >= 0:
        pb = p * PROCLOCK_WORDS
        proc = pl[pb + P_PROC]
        if proc != check and pl[pb + P_HOLD] & conflicts:
            if _find_lock_cycle_recurse(proc, depth + 1, soft):
                _details[depth] = _DeadlockInfo(_lock._lock_tag_of(lock), mode,
                                                _lock._pid_of(check))
                return True
        p = pl[pb + P_NEXT]
    # Soft edges: waiters ahead of us with conflicting requests, in the
    # proposed order if this lock's queue is being rearranged.
    queue = _wait_orders.get(lock)
    if queue is None:
        queue = _lock.wait_queue(lock)
    for proc in queue:
        if proc == check:
            break
        if (1 << pw[proc * PROC_WORDS + W_WAIT_MODE]) & conflicts:
            if _find_lock_cycle_recurse(proc, depth + 1, soft):
                _details[depth] = _DeadlockInfo(_lock._lock_tag_of(lock), mode,
                                                _lock._pid_of(check))
                soft.append(_Edge(check, proc))
                return True
    return False


def _expand_constraints(constraints: list[_Edge]) -> bool:
    """ExpandConstraints: turn constraints into new orders of the affected wait
    queues; False if they contradict each other."""
    _wait_orders.clear()
    pw = _lock._st.pw
    # Backwards: the last-added constraint is the only one that can fail.
    for i in range(len(constraints) - 1, -1, -1):
        lock = pw[constraints[i].waiter * PROC_WORDS + W_WAIT_LOCK]
        if lock in _wait_orders:
            continue
        order = _topo_sort(lock, constraints[:i + 1])
        if order is None:
            return False
        _wait_orders[lock] = order
    return True


def _topo_sort(lock: int, constraints: list[_Edge]) -> list[int] | None:
    """TopoSort: reorder ``lock``'s wait queue so that each constraint's waiter
    comes before its blocker, disturbing the current order as little as
    possible; None if impossible."""
    pw = _lock._st.pw
    procs: list[int | None] = list(_lock.wait_queue(lock))
    n = len(procs)
    before = [0] * n  # constraints saying procs[j] must come before something
    after: list[list[int]] = [[] for _ in range(n)]  # for procs[k]: who must precede it
    for c in constraints:
        if pw[c.waiter * PROC_WORDS + W_WAIT_LOCK] != lock:
            continue
        if c.waiter not in procs or c.blocker not in procs:
            continue
        j = procs.index(c.waiter)
        k = procs.index(c.blocker)
        before[j] += 1
        after[k].append(j)
    # Fill the output from the back: each time, the last proc that nothing
    # needs to follow.
    out: list[int] = [0] * n
    last = n - 1
    for i in range(n - 1, -1, -1):
        while procs[last] is None:
            last -= 1
        for j in range(last, -1, -1):
            if procs[j] is not None and before[j] == 0:
                break
        else:
            return None
        out[i] = procs[j]  # type: ignore[assignment]
        procs[j] = None
        for pred in after[j]:
            before[pred] -= 1
    return out


def remember_simple_dead_lock(proc1: int, mode: int, lock: int, proc2: int) -> None:
    """RememberSimpleDeadLock: JoinWaitQueue found that ``proc1`` (about to wait
    for ``mode`` on ``lock``) and the waiter ``proc2`` would wait for each other."""
    st = _lock._st
    p2 = proc2 * PROC_WORDS
    _details[:] = [
        _DeadlockInfo(_lock._lock_tag_of(lock), mode, _lock._pid_of(proc1)),
        _DeadlockInfo(_lock._lock_tag_of(st.pw[p2 + W_WAIT_LOCK]), st.pw[p2 + W_WAIT_MODE],
                      _lock._pid_of(proc2)),
    ]


def deadlock_details() -> list[tuple[LockTag, int, int]]:
    """The last cycle found, as (tag, mode, pid) per waiting process."""
    return [(d.tag, d.mode, d.pid) for d in _details if d is not None]


def dead_lock_report() -> NoReturn:
    """DeadLockReport: raise 40P01 "deadlock detected". The DETAIL has one line per
    edge of the cycle; ``detail_log`` (for the server log, PostgreSQL's
    errdetail_log) adds each process's query."""
    info = [d for d in _details if d is not None]
    lines = []
    for i, d in enumerate(info):
        next_pid = info[i + 1].pid if i + 1 < len(info) else info[0].pid
        lines.append(f"Process {d.pid} waits for {LOCK_MODE_NAMES[d.mode]} on "
                     f"{describe_lock_tag(d.tag)}; blocked by process {next_pid}.")
    client = "\n".join(lines)
    procs = _lock._st.procs
    queries = []
    for d in info:
        activity = procs.activity_of(d.pid) if procs is not None else None
        queries.append(f"Process {d.pid}: "
                       f"{activity if activity is not None else '<backend information not available>'}")
    err = PgError("40P01", "deadlock detected", detail=client,
                  hint="See server log for query details.")
    err.detail_log = "\n".join([client, *queries])  # type: ignore[attr-defined]
    raise err
