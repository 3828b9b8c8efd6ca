"""pgbench's TPC-B against tusk and PostgreSQL 15, side by side in one run.

Both servers get the same scale, clients, query mode and settings
(shared_buffers, fsync, synchronous_commit); each cell is the median of --runs
runs of --seconds seconds, and the table shows TPS, average and p99 latency
(from pgbench's per-transaction log) and the tusk / PostgreSQL ratio.

    python bench/bench_pgbench.py [--scale 10] [--clients 1,4,8] [--modes simple,prepared]
                                  [--seconds 15] [--runs 1] [--synchronous-commit on]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.bench_commit import PG15  # noqa: E402
from tests.cluster import Cluster, free_port, init_template  # noqa: E402


def pgbench(host: str, port: int, user: str, args: list[str], cwd: Path,
            timeout: float = 3600) -> str:
    proc = subprocess.run(["pgbench", "-h", host, "-p", str(port), "-U", user, *args,
                           "postgres"], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)
    if proc.returncode != 0:
        raise RuntimeError(f"pgbench {' '.join(args)} failed:\n{proc.stderr}{proc.stdout}")
    return proc.stdout


def run_once(host: str, port: int, user: str, mode: str, clients: int, seconds: int,
             work: Path) -> tuple[float, float, float]:
    """(tps, average latency ms, p99 latency ms) of one run."""
    logdir = Path(tempfile.mkdtemp(dir=work))
    out = pgbench(host, port, user, ["-M", mode, "-c", str(clients), "-j",
                                     str(min(clients, 2)), "-T", str(seconds), "-l",
                                     "--log-prefix", str(logdir / "tx")], work)
    tps = next(float(line.split("=")[1].split()[0]) for line in out.splitlines()
               if line.startswith("tps ="))
    latencies = []
    for f in logdir.glob("tx*"):
        for line in f.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3:
                latencies.append(int(parts[2]) / 1000)  # µs → ms
    shutil.rmtree(logdir, ignore_errors=True)
    latencies.sort()
    avg = statistics.fmean(latencies) if latencies else 0.0
    p99 = latencies[int(len(latencies) * 0.99) - 1] if latencies else 0.0
    return tps, avg, p99


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--clients", default="1,4,8")
    ap.add_argument("--modes", default="simple,prepared")
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--shared-buffers", default="128MB")
    ap.add_argument("--synchronous-commit", default="on")
    ap.add_argument("--no-pg", action="store_true", help="skip PostgreSQL 15")
    args = ap.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    modes = args.modes.split(",")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    work = Path(tempfile.mkdtemp(prefix="tusk-pgbench-"))
    cluster = pg = None
    settings = {"shared_buffers": args.shared_buffers,
                "synchronous_commit": args.synchronous_commit}
    try:
        template = init_template(work / "data")
        cluster = Cluster(template, free_port())
        cluster.start(*[a for k, v in settings.items() for a in ("-c", f"{k}={v}")])
        pg = None if args.no_pg else PG15(extra=settings)
        servers = [("tusk", cluster.host, cluster.port, cluster.user)]
        if pg is not None:
            servers.append(("pg15", str(pg.base), pg.port, "postgres"))
        for _name, host, port, user in servers:
            pgbench(host, port, user, ["-i", "-s", str(args.scale), "-q"], work)
        rows = []
        for mode in modes:
            for n in clients:
                cell = {}
                for name, host, port, user in servers:
                    runs = [run_once(host, port, user, mode, n, args.seconds, work)
                            for _ in range(args.runs)]
                    cell[name] = tuple(statistics.median(r[i] for r in runs) for i in range(3))
                rows.append((mode, n, cell))
        print(f"\npgbench TPC-B, scale {args.scale}, {args.seconds:g} s runs, "
              f"shared_buffers={args.shared_buffers}, "
              f"synchronous_commit={args.synchronous_commit}")
        print(f"{'mode':>9} {'clients':>7} {'tusk tps':>9} {'avg ms':>7} {'p99 ms':>7} "
              f"{'PG15 tps':>9} {'avg ms':>7} {'p99 ms':>7} {'ratio':>6}")
        for mode, n, cell in rows:
            t = cell["tusk"]
            p = cell.get("pg15")
            ratio = f"{t[0] / p[0]:.3f}" if p and p[0] else "-"
            pcols = (f"{p[0]:>9,.0f} {p[1]:>7.2f} {p[2]:>7.2f}" if p else f"{'-':>9} "
                     f"{'-':>7} {'-':>7}")
            print(f"{mode:>9} {n:>7} {t[0]:>9,.0f} {t[1]:>7.2f} {t[2]:>7.2f} {pcols} "
                  f"{ratio:>6}")
    finally:
        if cluster is not None:
            cluster.teardown()
        if pg is not None:
            pg.close()
        shutil.rmtree(work, ignore_errors=True)
        print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
