"""Commit throughput, tusk beside PostgreSQL 15 in the same run.

Measures, on the same disk:
  1. the raw rate of an 8 kB write + fdatasync (what pg_test_fsync calls the
     ceiling for one client's synchronous commits);
  2. single-client commits per second: ``SELECT txid_current()`` in autocommit,
     which assigns an xid and writes a commit record that neither server flushes
     before answering (the transaction wrote no WAL before it: the commit path
     without the fsync), and a one-row INSERT in autocommit (prepared), the
     issue's yardstick, whose commit is flushed;
  3. eight clients doing the same, with WAL syncs per commit for tusk (group
     commit makes it well below 1);
  4. for each server, the average WAL fdatasync as it happens inside the server
     (pg_stat_wal's wal_sync_time / wal_sync, track_wal_io_timing on for both):
     usually slower than the raw probe's, and the part of a commit no CPU
     saving can remove;
  5. for each server, the CPU its backends spent per commit (user + system,
     from the postmaster's reaped-children times: the benchmark's connections
     end after each run; their connection start-up is included, a few µs per
     commit at most).
Each figure is the median of --runs runs of --seconds seconds; ratios are
tusk / PostgreSQL from the same run.

    python bench/bench_commit.py [--seconds 5] [--runs 3] [--no-pg]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.cluster import Cluster, free_port, init_template  # noqa: E402

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def raw_fdatasync_rate(seconds: float, directory: str) -> float:
    path = os.path.join(directory, "fsync_probe")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    block = b"\0" * 8192
    os.pwrite(fd, block * 16, 0)
    os.fsync(fd)
    n, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        os.pwrite(fd, block, (n % 16) * 8192)
        os.fdatasync(fd)
        n += 1
    elapsed = time.monotonic() - start
    os.close(fd)
    os.unlink(path)
    return n / elapsed


WORKLOADS = {
    # An xid and its commit record, not flushed by either server (XactLastRecEnd).
    "txid": ("SELECT txid_current()", None),
    # The yardstick: a one-row INSERT in autocommit, as a prepared statement.
    "insert": ("INSERT INTO bench_t (id, v) VALUES (%s, 'x')",
               "CREATE TABLE IF NOT EXISTS bench_t (id bigint, v text)"),
}


def commit_rate(dsn: str, clients: int, seconds: float, workload: str = "txid") -> float:
    counts = [0] * clients
    stop = threading.Event()
    ready = threading.Barrier(clients + 1)
    statement, setup = WORKLOADS[workload]
    if setup:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(setup)

    def worker(i: int) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            ready.wait()
            n = i << 40
            while not stop.is_set():
                if workload == "insert":
                    n += 1
                    conn.execute(statement, (n,), prepare=True)
                else:
                    conn.execute(statement)
                counts[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    ready.wait()
    start = time.monotonic()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - start)


def wal_sync_stats(dsn: str) -> tuple[int, float]:
    """pg_stat_wal's (wal_sync, wal_sync_time in ms) — the same view on both servers."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        n, ms = conn.execute("SELECT wal_sync, wal_sync_time FROM pg_stat_wal").fetchone()
    return int(n), float(ms)


def reaped_children_cpu(postmaster_pid: int) -> float:
    """CPU seconds of the postmaster's children that have exited (its backends)."""
    t = psutil.Process(postmaster_pid).cpu_times()
    return t.children_user + t.children_system


def measure(dsn: str, postmaster_pid: int, clients: int, seconds: float, workload: str
            ) -> tuple[float, float, float, float]:
    """(commits/s, WAL syncs per commit, µs per WAL sync, backend CPU µs per commit)
    for one run."""
    n0, ms0 = wal_sync_stats(dsn)
    cpu0 = reaped_children_cpu(postmaster_pid)
    rate = commit_rate(dsn, clients, seconds, workload)
    time.sleep(0.6)  # other processes publish their counters at most twice a second
    cpu1 = reaped_children_cpu(postmaster_pid)
    n1, ms1 = wal_sync_stats(dsn)
    syncs, commits = n1 - n0, rate * seconds
    return (rate, syncs / commits, (ms1 - ms0) * 1000 / syncs if syncs else 0.0,
            (cpu1 - cpu0) * 1e6 / commits)


def medians(runs: list[tuple[float, ...]]) -> tuple[float, ...]:
    return tuple(statistics.median(col) for col in zip(*runs, strict=True))


class PG15:
    """A throwaway PostgreSQL 15 (as user postgres when run as root)."""

    def __init__(self, extra: dict[str, str] | None = None) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="pg15bench-"))
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        self.port = free_port()
        self.data = self.base / "data"
        subprocess.run([*self.as_user, str(PG_BIN / "initdb"), "-D", str(self.data), "-U",
                        "postgres"], check=True, capture_output=True)
        subprocess.run([*self.as_user, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-l",
                        str(self.base / "log"), "-o",
                        f"-p {self.port} -k {self.base} -c listen_addresses='' "
                        + " ".join(f"-c {k}={v}" for k, v in
                                   {"shared_buffers": "128MB", **(extra or {})}.items()),
                        "start"], check=True, capture_output=True)
        self.dsn = f"host={self.base} port={self.port} user=postgres dbname=postgres"

    def pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])

    def close(self) -> None:
        subprocess.run([*self.as_user, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m",
                        "fast", "stop"], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-pg", action="store_true", help="skip PostgreSQL 15")
    args = ap.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    work = Path(tempfile.mkdtemp(prefix="tusk-bench-"))
    cluster = pg = None
    try:
        raw = statistics.median(raw_fdatasync_rate(args.seconds, str(work))
                                for _ in range(args.runs))
        template = init_template(work / "data")
        cluster = Cluster(template, free_port())
        cluster.start("-c", "track_wal_io_timing=on")
        pg = None if args.no_pg or not (PG_BIN / "postgres").exists() else \
            PG15({"track_wal_io_timing": "on"})
        rows = []
        for workload in ("txid", "insert"):
            for clients in (1, 8):
                tusk_runs, pg_runs = [], []
                for _ in range(args.runs):
                    tusk_runs.append(measure(cluster.dsn, cluster.pid, clients, args.seconds,
                                             workload))
                    if pg is not None:
                        pg_runs.append(measure(pg.dsn, pg.pid(), clients, args.seconds,
                                               workload))
                rows.append((workload, clients, medians(tusk_runs),
                             medians(pg_runs) if pg_runs else None))
        print(f"\nraw 8 kB write + fdatasync: {raw:,.0f}/s ({1e6 / raw:.0f} µs)")
        print(f"{'workload':>8} {'clients':>7} {'tusk commits/s':>15} {'PG15 commits/s':>15} "
              f"{'ratio':>6} {'tusk/raw':>8} {'PG/raw':>7} {'syncs/commit':>12} "
              f"{'sync µs tusk':>12} {'sync µs PG':>10} {'CPU µs tusk':>11} {'CPU µs PG':>9}")
        for workload, clients, (t, spc, t_us, t_cpu), p_row in rows:
            p, _, p_us, p_cpu = p_row if p_row else (0.0, 0.0, 0.0, 0.0)
            ratio = f"{t / p:.2f}" if p else "-"
            pg_raw = f"{p / raw:.2f}" if p else "-"
            print(f"{workload:>8} {clients:>7} {t:>15,.0f} {p:>15,.0f} {ratio:>6} "
                  f"{t / raw:>8.2f} {pg_raw:>7} {spc:>12.2f} {t_us:>12.0f} {p_us:>10.0f} "
                  f"{t_cpu:>11.0f} {p_cpu:>9.0f}")
    finally:
        if cluster is not None:
            cluster.teardown()
        if pg is not None:
            pg.close()
        shutil.rmtree(work, ignore_errors=True)
        print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
