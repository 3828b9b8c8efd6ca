"""LWLock costs: uncontended acquire+release (exclusive, shared, conditional),
and two processes hammering one lock (and, for comparison, two locks).

    python bench/bench_lwlock.py [--runs 5] [--seconds 1.0]

Creates a private segment (removed at exit); prints the median and the best
of the runs (the best is the cost on a quiet machine; the median shows noise).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from shmem import lwlock  # noqa: E402
from shmem import proc as shproc  # noqa: E402
from shmem.lwlock import (  # noqa: E402
    LW_EXCLUSIVE,
    LW_SHARED,
    LWLock,
    lwlock_acquire,
    lwlock_conditional_acquire,
    lwlock_release,
)
from shmem.segment import create_segment  # noqa: E402

MAX_CONNECTIONS = 8


class Settings:
    def get(self, name: str) -> object:
        return {"max_connections": MAX_CONNECTIONS}[name]


def per_op_us(fn: Callable[[int], None], n: int) -> float:
    t0 = time.perf_counter()
    fn(n)
    return (time.perf_counter() - t0) / n * 1e6


def loop_semaphore(sem) -> Callable[[int], None]:
    acquire, release = sem.acquire, sem.release

    def run(n: int) -> None:
        for _ in range(n):
            acquire()
            release()
    return run


def loop_lock(lock: LWLock, mode: int) -> Callable[[int], None]:
    def run(n: int, acquire=lwlock_acquire, release=lwlock_release) -> None:
        for _ in range(n):
            acquire(lock, mode)
            release(lock)
    return run


def loop_conditional(lock: LWLock) -> Callable[[int], None]:
    def run(n: int, acquire=lwlock_conditional_acquire, release=lwlock_release) -> None:
        for _ in range(n):
            acquire(lock, LW_EXCLUSIVE)
            release(lock)
    return run


def contended(seg, locks: list[LWLock], seconds: float) -> tuple[float, float]:
    """Two processes, each on locks[i % len(locks)], for ``seconds``: total
    ops/s and the fraction of acquisitions that slept."""
    cells = seg.region("Bench").cast("q")  # 0: start flag, 1+i: ops of worker i
    cells[0] = 0
    pids = []
    try:
        for i in range(2):
            pid = os.fork()
            if pid == 0:  # child
                code = 1
                try:
                    procs = shproc.ProcArray(seg, MAX_CONNECTIONS)
                    procs.claim_backend(True, 0)
                    lwlock.init_proc(procs)
                    lock = locks[i % len(locks)]
                    while not cells[0]:
                        pass
                    n = 0
                    waits = 0
                    end = time.perf_counter() + seconds
                    while time.perf_counter() < end:
                        for _ in range(1000):
                            waits += lwlock_acquire(lock, LW_EXCLUSIVE)
                            lwlock_release(lock)
                        n += 1000
                    cells[1 + i] = n
                    cells[3 + i] = waits
                    procs.release()
                    code = 0
                finally:
                    os._exit(code)
            pids.append(pid)
        time.sleep(0.05)
        cells[0] = 1
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise RuntimeError("benchmark worker failed")
        pids = []
        ops = cells[1] + cells[2]
        return ops / seconds, (cells[3] + cells[4]) / ops
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        cells.release()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--n", type=int, default=100_000, help="iterations per uncontended run")
    ap.add_argument("--seconds", type=float, default=1.0, help="length of a contended run")
    args = ap.parse_args()

    settings = Settings()
    name = f"/tusk.bench.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    requests = shproc.shmem_requests(settings) + lwlock.shmem_requests(settings) + [("Bench", 4096)]
    nsems = shproc.num_semaphores(settings) + lwlock.num_semaphores(settings)
    seg = create_segment(name, requests, nsems)
    try:
        seg.sem_base["shmem.proc"] = 0
        seg.sem_base["shmem.lwlock"] = shproc.num_semaphores(settings)
        shproc.shmem_init(seg, settings)
        lwlock.shmem_init(seg, settings)
        procs = shproc.ProcArray(seg, MAX_CONNECTIONS)
        procs.claim_backend(True, 0)
        lwlock.init_proc(procs)

        lock = lwlock.get_named_lwlock("ProcArrayLock")
        other = lwlock.get_named_lwlock("XidGenLock")
        rows: list[tuple[str, float, float]] = []  # (name, median, best µs per op)
        uncontended = [
            ("semaphore acquire+release (reference)", loop_semaphore(seg.sems[0])),
            ("LWLock exclusive acquire+release", loop_lock(lock, LW_EXCLUSIVE)),
            ("LWLock shared acquire+release", loop_lock(lock, LW_SHARED)),
            ("LWLock conditional exclusive + release", loop_conditional(lock)),
        ]
        times: dict[str, list[float]] = {label: [] for label, _fn in uncontended}
        for _label, fn in uncontended:
            fn(10_000)  # warm up
        for _ in range(args.runs):  # interleaved, so that bursts of load hit all alike
            for label, fn in uncontended:
                times[label].append(per_op_us(fn, args.n))
        for label, ts in times.items():
            rows.append((label, statistics.median(ts), min(ts)))
        results = []
        for label, locks in (("2 processes, one lock, exclusive", [lock]),
                             ("2 processes, two locks, exclusive", [lock, other])):
            runs = [contended(seg, locks, args.seconds) for _ in range(args.runs)]
            ops = statistics.median(r[0] for r in runs)
            waited = statistics.median(r[1] for r in runs)
            results.append((label, ops, max(r[0] for r in runs), waited))
        lwlock.proc_exit()
        procs.release()
    finally:
        lwlock.detach()
        seg.destroy()

    print(f"LWLock benchmark: median of {args.runs} runs, {os.cpu_count()} CPUs, "
          f"Python {sys.version.split()[0]}")
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'operation':44} {'µs/op':>8} {'ops/s':>12} {'best µs/op':>11} {'best ops/s':>12}")
    for label, us, best in rows:
        print(f"{label:44} {us:8.3f} {1e6 / us:12,.0f} {best:11.3f} {1e6 / best:12,.0f}")
    for label, ops, best, waited in results:
        print(f"{label:44} {1e6 / ops:8.3f} {ops:12,.0f} {1e6 / best:11.3f} {best:12,.0f}"
              f"   (both processes; {waited:.1%} of acquisitions slept)")


if __name__ == "__main__":
    main()
