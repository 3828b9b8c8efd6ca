"""Shared buffer pool costs: the buffer-hit round trip and its parts, LWLocks alone
and contended, and a random read/modify workload over a pool smaller than the data.

    python bench/bench_bufmgr.py [--quick] [--json] [--runs N] [--profile]

Builds a private pool the way tests/unit/test_bufmgr.py does (a segment named
/tusk.bench.<pid>.<random>, a temporary data directory, a 256-block relation; every
process, parent and forked workers, attaches with procs.postinit.init_process) and
removes all of it at exit. Files live in the page cache and nothing is fsynced (fsync
requests go to a stand-in for the checkpointer's queue that accepts them all), so the
workload measures CPU, not the disk. Functions are bound to locals, so the
figures are the functions' own cost, without a caller's module attribute lookups.

What the numbers mean (each row: the median of --runs repetitions, and the best;
the best is the cost on a quiet machine, the median shows the noise). µs/op and ops/s
are wall clock (time.perf_counter_ns); "CPU µs" is the median CPU time per operation
(time.process_time_ns, summed over the processes of a multi-process row). On a loaded
machine the CPU figure is the steadier one: wall time also counts waiting for a core.

  Single process, per operation, after a warm-up, the loops interleaved:
    hit round trip      read_buffer of a resident block + lock_buffer(SHARE) +
                        lock_buffer(UNLOCK) + release_buffer: what reading one tuple
                        costs in the buffer manager. The goal is < 3 µs.
    pin + unpin         read_buffer (hit) + release_buffer: tag hash, a mapping-table
                        probe without the partition lock, then the header-stripe
                        semaphore twice (pin after checking the tag, unpin); see
                        storage/bufmgr.py, "The hit path".
    pin + unpin, locked the same through PostgreSQL's protocol (bufmgr's slow path):
                        lookup under the partition LWLock in share mode, then pin.
                        The difference from the row above is what skipping the
                        partition lock saves.
    share lock + unlock lock_buffer SHARE then UNLOCK on a buffer already pinned: one
                        content LWLock acquire/release.
    hit read/modify     read_buffer (hit) + EXCLUSIVE + 8-byte write + mark_buffer_dirty
                        + unlock_release_buffer: one workload operation without I/O.
    parts               tag hash + BufTable.lookup (the locked lookup, run here without
                        its lock); tag hash + BufTable.hint (the hit path's probe); the
                        partition LWLock alone; the header-stripe semaphore acquire +
                        release as the buffer manager calls it (through
                        _multiprocessing.SemLock, see shmem/buf_internals.py) and the
                        same semaphore through posix_ipc (as the other LWLocks' and
                        spinlocks' semaphores are called): the floor under every lock
                        here; and two calls of an empty Python function, a yardstick
                        for the machine's speed (it varies from run to run on these
                        shared hosts).
    LWLock ...          lwlock_acquire + lwlock_release of ProcArrayLock, uncontended
                        (its spinlock called through posix_ipc; a buffer content lock's
                        goes through SemLock); "spinlock through SemLock": the same lock
                        through a handle whose spinlock is bound as a content lock's.
    LWLock, 2 processes both hammer ProcArrayLock (exclusive).

  Several processes, run for --seconds each repetition (forked workers that start
  together; each counts its own operations over its own elapsed time). The hit round
  trip with 2 processes is run on one shared block and on a block of each's own:
    ops/s               total over all workers (sum of each worker's ops / its time);
    µs/op               1e6 / that total, i.e. the pool's time per operation, not the
                        latency one worker sees (that is workers × µs/op).
    slept               the fraction of LWLock acquisitions that had to sleep.
    written/op          buffers written by the workers (evictions of dirty victims,
                        pgstat.io.written) per operation; read/op: blocks read
                        from the file (misses) per operation.
  The read/modify workload: shared_buffers = 64 blocks, a relation of 256 blocks
  (4x the pool), each operation read_buffer of a uniformly random block, lock it
  exclusively, increment an int64 in the page, mark_buffer_dirty,
  unlock_release_buffer. Expect about 0.75 reads and nearly as many writes per op.
  Rows say "checksums on" where data_checksums is true (checksum computed on every
  write, verified on every read); everything else runs with it off.

Load averages are printed at the start and end: these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import mmap
import os
import pstats
import random
import shutil
import signal
import statistics
import struct
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from conf import guc  # noqa: E402
from procs.postinit import init_process, proc_kill  # noqa: E402
from shmem import buf_internals as bi  # noqa: E402
from shmem import ipci, lwlock  # noqa: E402
from shmem.buf_table import buf_table_hash_code  # noqa: E402
from shmem.lwlock import (  # noqa: E402
    LW_EXCLUSIVE,
    LW_SHARED,
    NUM_BUFFER_PARTITIONS,
    lwlock_acquire,
    lwlock_release,
)
from shmem.proc import BackendType  # noqa: E402
from shmem.segment import ShmemSegment, remove_segment  # noqa: E402
from storage import bufmgr, bufpage, fd, smgr, sync  # noqa: E402
from storage.relfilenode import DEFAULTTABLESPACE_OID, MAIN_FORKNUM, RelFileNode  # noqa: E402
from utils import pgstat  # noqa: E402

SHARED_BUFFERS = 64
NBLOCKS = 256
MAX_CONNECTIONS = 8
RNODE = RelFileNode(DEFAULTTABLESPACE_OID, 5, 16384)
COUNTERS_AT = 64  # byte offset of the int64 counters in a page, one per worker
COUNTER = struct.Struct("<q")
CHUNK = 200  # operations between two looks at the stop flag
HOT_BLOCK = 0

Step = Callable[[int], object]  # does n operations


# -- the pool --------------------------------------------------------------------------------

class Settings:
    """The pool's few settings; every other parameter has its default (conf.guc)."""

    def __init__(self, **values: object) -> None:
        self.defaults = guc.Settings()
        self.values = {"max_connections": MAX_CONNECTIONS, "shared_buffers": SHARED_BUFFERS,
                       "data_checksums": False, "track_io_timing": False, **values}

    def get(self, name: str) -> object:
        if name in self.values:
            return self.values[name]
        return self.defaults.get(name)


def _attach(seg: ShmemSegment, settings: Settings):
    """init_process as a backend, then hand fsync requests to a stand-in for the
    checkpointer's queue that accepts them all: writes stay in the page cache, and the
    figures are the buffer manager's, not the disk's."""
    procs = init_process(seg, settings, BackendType.B_BACKEND, is_superuser=True)
    sync.set_forward_hook(lambda tag, type_: True)
    return procs


@dataclass
class Pool:
    settings: Settings
    seg: ShmemSegment
    reln: smgr.SMgrRelation


@contextlib.contextmanager
def buffer_pool(checksums: bool) -> Iterator[Pool]:
    """A segment, a data directory and a relation of NBLOCKS blocks; this process
    attached as a backend. Everything is removed on the way out."""
    datadir = tempfile.mkdtemp(prefix="tusk-bench-bufmgr-")
    name = f"/tusk.bench.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    seg = procs = None
    try:
        os.makedirs(os.path.join(datadir, "base", "5"))
        fd.set_data_directory(datadir)
        settings = Settings(data_checksums=checksums)
        seg = ipci.create_shared_memory_and_semaphores(name, settings)
        procs = _attach(seg, settings)
        reln = smgr.smgr_open(RNODE)
        smgr.smgr_create(reln, MAIN_FORKNUM)
        for blk in range(NBLOCKS):
            page = bytearray(bi.BLCKSZ)
            bufpage.page_init(page, bi.BLCKSZ, 0)
            bufpage.page_set_checksum_inplace(page, blk)
            smgr.smgr_extend(reln, MAIN_FORKNUM, blk, page)
        try:
            yield Pool(settings, seg, reln)
        except BaseException:
            # Interrupted (^C, SIGTERM), perhaps inside a lock: skip the orderly exit,
            # which would wait for or complain about that lock. The segment goes anyway.
            procs = None
            raise
    finally:
        try:
            if procs is not None:
                proc_kill(procs)  # at_error_cleanup, lwlock.proc_exit, release the slot
        finally:
            smgr.smgr_close_all()
            fd.close_all_files()
            sync.reset()
            sync.set_forward_hook(None)
            bufmgr._pool = None
            smgr.drop_rel_buffers_hook = smgr.drop_rel_all_buffers_hook = None
            ipci.detach_shared_memory()
            if seg is not None:
                seg.destroy()
            remove_segment(name)
            fd.set_data_directory(None)
            shutil.rmtree(datadir, ignore_errors=True)


# -- single-process loops --------------------------------------------------------------------
# Each returns a function doing n iterations; the caller times it.

def loop_hit_round_trip(reln) -> Callable[[int], object]:
    def run(n: int, read=bufmgr.read_buffer, lock=bufmgr.lock_buffer,
            release=bufmgr.release_buffer, share=bufmgr.BUFFER_LOCK_SHARE,
            unlock=bufmgr.BUFFER_LOCK_UNLOCK, blk=HOT_BLOCK) -> None:
        for _ in range(n):
            buf = read(reln, blk)
            lock(buf, share)
            lock(buf, unlock)
            release(buf)
    return run


def loop_pin_unpin(reln) -> Callable[[int], object]:
    def run(n: int, read=bufmgr.read_buffer, release=bufmgr.release_buffer,
            blk=HOT_BLOCK) -> None:
        for _ in range(n):
            release(read(reln, blk))
    return run


def loop_share_lock(buf: int) -> Callable[[int], object]:
    def run(n: int, lock=bufmgr.lock_buffer, share=bufmgr.BUFFER_LOCK_SHARE,
            unlock=bufmgr.BUFFER_LOCK_UNLOCK) -> None:
        for _ in range(n):
            lock(buf, share)
            lock(buf, unlock)
    return run


def _modify(page: memoryview, offset: int, unpack=COUNTER.unpack_from,
            pack=COUNTER.pack_into) -> None:
    pack(page, offset, unpack(page, offset)[0] + 1)


def loop_hit_modify(reln) -> Callable[[int], object]:
    def run(n: int, read=bufmgr.read_buffer, lock=bufmgr.lock_buffer,
            get_page=bufmgr.buffer_get_page, dirty=bufmgr.mark_buffer_dirty,
            unlock_release=bufmgr.unlock_release_buffer, modify=_modify,
            excl=bufmgr.BUFFER_LOCK_EXCLUSIVE, blk=HOT_BLOCK) -> None:
        for _ in range(n):
            buf = read(reln, blk)
            lock(buf, excl)
            modify(get_page(buf), COUNTERS_AT)
            dirty(buf)
            unlock_release(buf)
    return run


def loop_pin_unpin_locked(reln) -> Callable[[int], object]:
    """The hit through PostgreSQL's protocol: bufmgr's slow path, which takes the
    partition LWLock in share mode around the lookup and the pin."""
    pool = bufmgr.pool()

    def run(n: int, read=bufmgr._read_buffer_slow, release=bufmgr.release_buffer,
            p=pool, fork=MAIN_FORKNUM, mode=bufmgr.RBM_NORMAL, blk=HOT_BLOCK) -> None:
        for _ in range(n):
            release(read(p, reln, fork, blk, mode))
    return run


def loop_lookup(reln) -> Callable[[int], object]:
    table = bufmgr.pool().table
    r = reln.rnode

    def run(n: int, hash_code=buf_table_hash_code, lookup=table.lookup) -> None:
        for _ in range(n):
            tag = (r.spc, r.db, r.rel, MAIN_FORKNUM, HOT_BLOCK)
            lookup(tag, hash_code(tag))
    return run


def loop_hint(reln) -> Callable[[int], object]:
    table = bufmgr.pool().table
    r = reln.rnode

    def run(n: int, hash_code=buf_table_hash_code, hint=table.hint) -> None:
        for _ in range(n):
            hint(hash_code((r.spc, r.db, r.rel, MAIN_FORKNUM, HOT_BLOCK)))
    return run


def loop_lwlock(lock: lwlock.LWLock, mode: int) -> Callable[[int], object]:
    def run(n: int, acquire=lwlock_acquire, release=lwlock_release) -> None:
        for _ in range(n):
            acquire(lock, mode)
            release(lock)
    return run


def _nothing() -> None:
    pass


def loop_semaphore(acquire: Callable[[], object], release: Callable[[], object]
                   ) -> Callable[[int], object]:
    def run(n: int) -> None:
        for _ in range(n):
            acquire()
            release()
    return run


# -- multi-process steps ---------------------------------------------------------------------
# A step factory runs in the worker after it has attached; it returns a Step.

def step_lwlock(worker: int, reln) -> Step:
    lock = lwlock.get_named_lwlock("ProcArrayLock")

    return loop_lwlock(lock, LW_EXCLUSIVE)


def step_hit_round_trip(block_of: Callable[[int], int]) -> Callable[[int, object], Step]:
    def factory(worker: int, reln) -> Step:
        run = loop_hit_round_trip(reln)
        blk = block_of(worker)
        return lambda n: run(n, blk=blk)
    return factory


def step_read_modify(worker: int, reln) -> Step:
    rng = random.Random(1000 + worker)
    mask = (1 << 16) - 1
    blocks = [rng.randrange(NBLOCKS) for _ in range(mask + 1)]  # drawn ahead: no RNG cost
    offset = COUNTERS_AT + 8 * worker
    pos = 0

    def step(n: int, read=bufmgr.read_buffer, lock=bufmgr.lock_buffer,
             get_page=bufmgr.buffer_get_page, dirty=bufmgr.mark_buffer_dirty,
             unlock_release=bufmgr.unlock_release_buffer, modify=_modify,
             excl=bufmgr.BUFFER_LOCK_EXCLUSIVE) -> None:
        nonlocal pos
        p = pos
        for _ in range(n):
            buf = read(reln, blocks[p & mask])
            p += 1
            lock(buf, excl)
            modify(get_page(buf), offset)
            dirty(buf)
            unlock_release(buf)
        pos = p
    return step


def _waits() -> int:
    return sum(w for _acq, w in lwlock.lwlock_counts().values())


def _acquisitions() -> int:
    return sum(a for a, _w in lwlock.lwlock_counts().values())


# Shared result cells (int64) of one multi-process run: control words, then per worker.
C_START, C_STOP = 0, 1
W_READY, W_OPS, W_NS, W_CPU_NS, W_WAITS, W_ACQ, W_WRITTEN, W_READ, W_HIT, W_FSYNC = range(10)
W_STRIDE = 16
W_BASE = 16


def run_workers(pool: Pool, nworkers: int, factory: Callable[[int, object], Step],
                seconds: float, warmup_ops: int) -> dict[str, float]:
    """Fork ``nworkers`` attached workers, start them together, stop them after
    ``seconds``; returns ops/s (total), CPU µs/op, slept, written/op, read/op, hits."""
    ctl = mmap.mmap(-1, 4096)  # anonymous and shared: inherited by the children
    cells = memoryview(ctl).cast("q")
    pids: list[int] = []
    try:
        for w in range(nworkers):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                code = 1
                try:
                    signal.alarm(int(seconds) + 120)  # never outlive a stuck parent for long
                    _worker(pool, w, factory, cells, warmup_ops)
                    code = 0
                except BaseException:
                    traceback.print_exc()
                finally:
                    os._exit(code)
            pids.append(pid)
        deadline = time.monotonic() + 60
        while not all(cells[W_BASE + w * W_STRIDE + W_READY] for w in range(nworkers)):
            if time.monotonic() > deadline or _reap_exited(pids):
                raise RuntimeError("benchmark workers did not get ready")
            time.sleep(0.001)
        cells[C_START] = 1
        time.sleep(seconds)
        cells[C_STOP] = 1
        deadline = time.monotonic() + 60
        for pid in list(pids):
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    pids.remove(pid)
                    if os.waitstatus_to_exitcode(status) != 0:
                        raise RuntimeError(f"benchmark worker {pid} failed")
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("benchmark workers did not stop")
                time.sleep(0.005)
        rows = [cells[W_BASE + w * W_STRIDE:W_BASE + (w + 1) * W_STRIDE].tolist()
                for w in range(nworkers)]
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        cells.release()
        ctl.close()
    ops = sum(r[W_OPS] for r in rows)
    return {
        "ops_per_s": sum(r[W_OPS] / (r[W_NS] / 1e9) for r in rows),
        "cpu_us": sum(r[W_CPU_NS] for r in rows) / ops / 1000,
        "slept": sum(r[W_WAITS] for r in rows) / max(1, sum(r[W_ACQ] for r in rows)),
        "written_per_op": sum(r[W_WRITTEN] for r in rows) / ops,
        "read_per_op": sum(r[W_READ] for r in rows) / ops,
        "hit_ratio": sum(r[W_HIT] for r in rows) / ops,
        "fsync_per_op": sum(r[W_FSYNC] for r in rows) / ops,
    }


def _reap_exited(pids: list[int]) -> bool:
    """Reap the workers that have exited (removing them from ``pids``); True if any."""
    exited = [pid for pid in pids if os.waitpid(pid, os.WNOHANG)[0]]
    for pid in exited:
        pids.remove(pid)
    return bool(exited)


def _worker(pool: Pool, w: int, factory: Callable[[int, object], Step], cells: memoryview,
            warmup_ops: int) -> None:
    procs = _attach(pool.seg, pool.settings)
    reln = smgr.smgr_open(RNODE)
    step = factory(w, reln)
    step(warmup_ops)
    usage = pgstat.io  # rebound by init_process: look it up after attaching
    base = W_BASE + w * W_STRIDE
    written, read, hit, fsync = usage.written, usage.read, usage.hit, usage.fsync
    waits, acq = _waits(), _acquisitions()
    cells[base + W_READY] = 1
    while not cells[C_START]:
        time.sleep(0.0005)
    n = 0
    t0, c0 = time.perf_counter_ns(), time.process_time_ns()
    while not cells[C_STOP]:
        step(CHUNK)
        n += CHUNK
    cells[base + W_CPU_NS] = time.process_time_ns() - c0
    cells[base + W_NS] = time.perf_counter_ns() - t0
    cells[base + W_OPS] = n
    cells[base + W_WAITS] = _waits() - waits
    cells[base + W_ACQ] = _acquisitions() - acq
    cells[base + W_WRITTEN] = usage.written - written
    cells[base + W_READ] = usage.read - read
    cells[base + W_HIT] = usage.hit - hit
    cells[base + W_FSYNC] = usage.fsync - fsync
    proc_kill(procs)


# -- results ---------------------------------------------------------------------------------

@dataclass
class Row:
    name: str
    us: list[float] = field(default_factory=list)  # wall-clock µs/op of each repetition
    cpu_us: list[float] = field(default_factory=list)  # CPU µs/op, all processes
    extra: dict[str, float] = field(default_factory=dict)  # medians of other figures
    group: str = ""

    @property
    def median_us(self) -> float:
        return statistics.median(self.us)

    @property
    def best_us(self) -> float:
        return min(self.us)

    @property
    def median_cpu_us(self) -> float:
        return statistics.median(self.cpu_us)

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "group": self.group, "median_us": self.median_us,
                "best_us": self.best_us, "median_ops_per_s": 1e6 / self.median_us,
                "best_ops_per_s": 1e6 / self.best_us, "median_cpu_us": self.median_cpu_us,
                "runs_us": self.us, "runs_cpu_us": self.cpu_us, **self.extra}


def measure_single(benches: list[tuple[str, Callable[[int], object]]], n: int, runs: int,
                   group: str) -> list[Row]:
    """Warm every loop up, then run them interleaved ``runs`` times, so that a burst of
    load from other processes hits all of them alike."""
    for _name, fn in benches:
        fn(max(1000, n // 10))
    rows = [Row(name, group=group) for name, _fn in benches]
    for _ in range(runs):
        for row, (_name, fn) in zip(rows, benches, strict=True):
            t0, c0 = time.perf_counter_ns(), time.process_time_ns()
            fn(n)
            c1, t1 = time.process_time_ns(), time.perf_counter_ns()
            row.us.append((t1 - t0) / n / 1000)
            row.cpu_us.append((c1 - c0) / n / 1000)
    return rows


def measure_multi(pool: Pool, name: str, nworkers: int, factory, seconds: float, runs: int,
                  warmup_ops: int, group: str) -> Row:
    row = Row(name, group=group)
    results = []
    for _ in range(runs):
        r = run_workers(pool, nworkers, factory, seconds, warmup_ops)
        results.append(r)
        row.us.append(1e6 / r["ops_per_s"])
        row.cpu_us.append(r["cpu_us"])
    for key in ("slept", "written_per_op", "read_per_op", "hit_ratio", "fsync_per_op"):
        row.extra[key] = statistics.median(r[key] for r in results)
    row.extra["processes"] = nworkers
    return row


def print_table(rows: list[Row]) -> None:
    width = max(len(r.name) for r in rows)
    print(f"{'operation':<{width}}  {'µs/op':>8} {'ops/s':>11}  {'best µs':>8} "
          f"{'best ops/s':>11}  {'CPU µs':>7}  notes")
    group = None
    for r in rows:
        if r.group != group:
            group = r.group
            print(f"-- {group}")
        notes = []
        if "slept" in r.extra:
            notes.append(f"slept {r.extra['slept']:.1%}")
        if r.extra.get("read_per_op"):
            notes.append(f"written/op {r.extra['written_per_op']:.3f}, "
                         f"read/op {r.extra['read_per_op']:.3f}, "
                         f"hits {r.extra['hit_ratio']:.1%}")
        if r.extra.get("fsync_per_op"):  # should not happen: see _attach
            notes.append(f"fsync/op {r.extra['fsync_per_op']:.3f}")
        print(f"{r.name:<{width}}  {r.median_us:8.3f} {1e6 / r.median_us:11,.0f}  "
              f"{r.best_us:8.3f} {1e6 / r.best_us:11,.0f}  {r.median_cpu_us:7.3f}  "
              f"{'; '.join(notes)}".rstrip())


# -- main ------------------------------------------------------------------------------------

def single_process_rows(pool: Pool, n: int, runs: int) -> list[Row]:
    reln = pool.reln
    p = bufmgr.pool()
    buf = bufmgr.read_buffer(reln, HOT_BLOCK)  # resident from now on
    bufmgr.release_buffer(buf)
    tag = (RNODE.spc, RNODE.db, RNODE.rel, MAIN_FORKNUM, HOT_BLOCK)
    part = p.partition_locks[buf_table_hash_code(tag) % NUM_BUFFER_PARTITIONS]
    hdr = (p.descs.hdr_acquire[buf - 1], p.descs.hdr_release[buf - 1])
    sem = pool.seg.sems[pool.seg.sem_base[bi.__name__] + (buf - 1) % bi.BUF_HDR_STRIPES]
    pinned = bufmgr.read_buffer(reln, HOT_BLOCK)  # held while the share-lock loop runs
    named = lwlock.get_named_lwlock("ProcArrayLock")
    # Another handle on the same lock, its spinlock called through SemLock as a buffer
    # content lock's is (what binding every LWLock's stripes that way would give).
    named_semlock = lwlock.LWLock(pool.seg.region("LWLock Array"),
                                  named.lock_id * lwlock.LWLOCK_SIZE, named.lock_id,
                                  named.tranche)
    named_semlock.spin_acquire, named_semlock.spin_release = bi.semaphore_ops(
        named.spin_acquire.__self__)
    try:
        rows = measure_single([
            ("hit round trip (read_buffer+SHARE+UNLOCK+release)", loop_hit_round_trip(reln)),
            ("  pin+unpin (read_buffer hit + release_buffer)", loop_pin_unpin(reln)),
            ("  pin+unpin, locked lookup (PostgreSQL's protocol)",
             loop_pin_unpin_locked(reln)),
            ("  share lock+unlock (lock_buffer, pinned)", loop_share_lock(pinned)),
        ], n, runs, "buffer hit, 1 process")
        rows += measure_single([
            ("hit read/modify (EXCL, 8 B, dirty, unlock_release)", loop_hit_modify(reln)),
            ("  tag hash + BufTable.lookup", loop_lookup(reln)),
            ("  tag hash + BufTable.hint (no lock)", loop_hint(reln)),
            ("  partition LWLock shared acquire+release", loop_lwlock(part, LW_SHARED)),
            ("  header-stripe semaphore acquire+release", loop_semaphore(*hdr)),
            ("  the same semaphore through posix_ipc", loop_semaphore(sem.acquire,
                                                                    sem.release)),
            ("  reference: 2 calls of an empty Python function", loop_semaphore(_nothing,
                                                                                 _nothing)),
        ], n, runs, "buffer hit parts, 1 process")
        rows += measure_single([
            ("LWLock exclusive acquire+release", loop_lwlock(named, LW_EXCLUSIVE)),
            ("LWLock shared acquire+release", loop_lwlock(named, LW_SHARED)),
            ("LWLock shared, spinlock through SemLock", loop_lwlock(named_semlock,
                                                                     LW_SHARED)),
        ], n, runs, "LWLock, uncontended")
    finally:
        bufmgr.release_buffer(pinned)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a short run (about 15 s)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON only")
    ap.add_argument("--runs", type=int, default=None, help="repetitions (default 7, quick 5)")
    ap.add_argument("--seconds", type=float, default=None,
                    help="length of one multi-process repetition (default 1.0, quick 0.25)")
    ap.add_argument("--profile", action="store_true",
                    help="instead: cProfile the hit round trip and the 1-process workload")
    args = ap.parse_args()
    runs = args.runs or (5 if args.quick else 7)
    seconds = args.seconds or (0.25 if args.quick else 1.0)
    n = 20_000 if args.quick else 100_000
    warmup = 500 if args.quick else 2000
    # A SIGTERM unwinds like ^C, so that the segment and workers are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    if args.profile:
        profile(n)
        return

    load_start = os.getloadavg()
    if not args.json:
        print(f"buffer manager benchmark: median of {runs} runs, {os.cpu_count()} CPUs, "
              f"Python {sys.version.split()[0]}; load average at start "
              f"{' '.join(f'{x:.2f}' for x in load_start)}", flush=True)
    rows: list[Row] = []
    with buffer_pool(checksums=False) as pool:
        rows += single_process_rows(pool, n, runs)
        rows.append(measure_multi(pool, "LWLock exclusive, 2 processes, one lock", 2,
                                  step_lwlock, seconds, runs, warmup, "2 processes"))
        rows.append(measure_multi(pool, "hit round trip, 2 processes, same block", 2,
                                  step_hit_round_trip(lambda w: HOT_BLOCK), seconds, runs,
                                  warmup, "2 processes"))
        rows.append(measure_multi(pool, "hit round trip, 2 processes, own block each", 2,
                                  step_hit_round_trip(lambda w: 1 + w), seconds, runs,
                                  warmup, "2 processes"))
        group = f"random read/modify, {SHARED_BUFFERS} buffers, {NBLOCKS} blocks"
        rows.append(measure_multi(pool, "read/modify, 1 process", 1, step_read_modify,
                                  seconds, runs, warmup, group))
        rows.append(measure_multi(pool, "read/modify, 2 processes", 2, step_read_modify,
                                  seconds, runs, warmup, group))
    with buffer_pool(checksums=True) as pool:
        rows.append(measure_multi(pool, "read/modify, 2 processes, checksums on", 2,
                                  step_read_modify, seconds, runs, warmup, group))
    load_end = os.getloadavg()

    if args.json:
        print(json.dumps({
            "cpus": os.cpu_count(), "python": sys.version.split()[0], "runs": runs,
            "seconds": seconds, "iterations": n, "shared_buffers": SHARED_BUFFERS,
            "relation_blocks": NBLOCKS, "load_average_start": load_start,
            "load_average_end": load_end, "results": [r.as_dict() for r in rows],
        }, indent=2))
        return
    print()
    print_table(rows)
    print(f"load average at end {' '.join(f'{x:.2f}' for x in load_end)}")


def profile(n: int) -> None:
    """cProfile of the hit round trip and of the read/modify workload in this process
    (the profiler's overhead inflates everything; look at the shares)."""
    with buffer_pool(checksums=False) as pool:
        bufmgr.release_buffer(bufmgr.read_buffer(pool.reln, HOT_BLOCK))
        for title, fn in (("hit round trip", loop_hit_round_trip(pool.reln)),
                          ("read/modify, 1 process", step_read_modify(0, pool.reln))):
            fn(1000)
            prof = cProfile.Profile()
            prof.enable()
            fn(n // 2)
            prof.disable()
            print(f"== {title}, {n // 2} operations")
            pstats.Stats(prof).sort_stats("tottime").print_stats(14)


if __name__ == "__main__":
    main()
