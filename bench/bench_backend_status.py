"""What pg_stat_activity costs a statement: utils.backend_status's writers, timed
alone, and its readers.

    python bench/bench_backend_status.py [--runs N] [--json]

Creates a private segment (/tusk.bench.<pid>.<random>) with every subsystem
(shmem.ipci), attaches this process as a backend with procs.postinit.init_process
and pgstat_bestart, and removes everything at exit. Each row is the median over
--runs repetitions (and the best) of the time per call, wall clock:

    report_running          pgstat_report_activity(STATE_RUNNING, query) with a new
                            query string each time (simple protocol: the text is
                            copied into the activity buffer)
    report_running, same    ... with the same string object (a prepared statement
                            executed again: the text is not copied again)
    report_idle             pgstat_report_activity(STATE_IDLE) before ReadyForQuery,
                            with the block counters and the ClientRead wait event
    report_idle (in xact)   the same for 'idle in transaction'
    count_transaction_end   xact_commit + 1
    per statement           report_running + count_transaction_end + report_idle:
                            what one autocommit statement pays in all
    track_activities off    report_running + report_idle when disabled
    read_current_status     pg_stat_activity's read of every slot (8 sessions)
    read_database_stats     pg_stat_database's read (8 sessions)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conf import guc  # noqa: E402
from procs.postinit import init_process, proc_kill  # noqa: E402
from shmem import ipci  # noqa: E402
from shmem.proc import BackendType  # noqa: E402
from shmem.segment import remove_segment  # noqa: E402
from storage import bufmgr, fd  # noqa: E402
from utils import backend_status as bs  # noqa: E402


class Settings:
    """The server's defaults, with a few values of our own."""

    def __init__(self, **values: object) -> None:
        self.defaults = guc.Settings()
        self.values = {"max_connections": 10, "shared_buffers": 16, "wal_buffers": 8, **values}

    def get(self, name: str) -> object:
        if name in self.values:
            return self.values[name]
        return self.defaults.get(name)


def timed(fn: Callable[[int], object], n: int, runs: int) -> tuple[float, float]:
    fn(min(n, 1000))  # warm-up
    per = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        fn(n)
        per.append((time.perf_counter_ns() - t0) / n / 1000)
    return statistics.median(per), min(per)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    datadir = Path(tempfile.mkdtemp(prefix="tusk-bench-"))
    for sub in ("base/5", "pg_wal", "pg_xact", "global"):
        (datadir / sub).mkdir(parents=True)
    fd.set_data_directory(str(datadir))
    name = f"/tusk.bench.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    settings = Settings()
    seg = ipci.create_shared_memory_and_semaphores(name, settings)
    procs = None
    rows: dict[str, tuple[float, float]] = {}
    try:
        procs = init_process(seg, settings, BackendType.B_BACKEND, is_superuser=True)
        bs.pgstat_bestart(5, "postgres", 10, "postgres", "bench", 2, "127.0.0.1", 5432)
        queries = [f"SELECT {i}" for i in range(1024)]
        same = "SELECT abalance FROM pgbench_accounts WHERE aid = $1"

        def running(n: int, f=bs.report_running, q=queries) -> None:
            for i in range(n):
                f(q[i & 1023])

        def running_same(n: int, f=bs.report_running, q=same) -> None:
            for _ in range(n):
                f(q)

        def idle(n: int, f=bs.report_idle) -> None:
            for _ in range(n):
                f(b"I", 0)

        started = bs.now_usecs()

        def idle_xact(n: int, f=bs.report_idle, ts=started) -> None:
            for _ in range(n):
                f(b"T", ts)

        def commit(n: int, f=bs.count_transaction_end) -> None:
            for _ in range(n):
                f(True)

        def statement(n: int, r=bs.report_running, c=bs.count_transaction_end,
                      i=bs.report_idle, q=queries) -> None:
            for k in range(n):
                r(q[k & 1023])
                c(True)
                i(b"I", 0)

        rows["report_running"] = timed(running, 100_000, args.runs)
        rows["report_running, same text"] = timed(running_same, 100_000, args.runs)
        rows["report_idle"] = timed(idle, 100_000, args.runs)
        rows["report_idle (in xact)"] = timed(idle_xact, 100_000, args.runs)
        rows["count_transaction_end"] = timed(commit, 100_000, args.runs)
        rows["per statement"] = timed(statement, 100_000, args.runs)
        bs._st.track = False
        rows["track_activities off"] = timed(statement, 100_000, args.runs)
        bs._st.track = True
        rows["read_current_status"] = timed(lambda n: [bs.read_current_status()
                                                       for _ in range(n)], 2000, args.runs)
        rows["read_database_stats"] = timed(lambda n: [bs.read_database_stats()
                                                       for _ in range(n)], 2000, args.runs)
    finally:
        try:
            if procs is not None:
                proc_kill(procs)
        finally:
            bufmgr._pool = None
            ipci.detach_shared_memory()
            seg.destroy()
            remove_segment(name)
            fd.set_data_directory(None)
    if args.json:
        print(json.dumps({k: {"median_us": m, "best_us": b} for k, (m, b) in rows.items()}))
    else:
        print(f"{'operation':<28}{'median µs':>12}{'best µs':>10}")
        for k, (m, b) in rows.items():
            print(f"{k:<28}{m:>12.3f}{b:>10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
