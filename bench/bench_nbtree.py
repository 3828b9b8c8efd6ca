"""B-tree costs on real shared memory with WAL (access/nbtree/):

- bt_build of N int4 keys (sort + bottom-up load, WAL-logged page images, fsync),
- one insert into the N-key tree (random keys: descent, binary search, WAL record;
  splits amortised),
- one equality lookup (bt_begin_scan + bt_getnext: descent, binary search, leaf read),

each as wall time and as this process's CPU time (the machine is shared: CPU
time is the steadier figure). With --pg, PostgreSQL 15's CREATE INDEX on the same
rows is timed beside the build (server-side, from psql's \\timing).

    python bench/bench_nbtree.py [-n 100000] [--inserts 5000] [--lookups 20000] [--pg]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from access import nbtree  # noqa: E402
from tests.unit.nbtree_harness import BTEnv, FakeHeap, make_index  # noqa: E402


def _timed(fn) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=100_000, help="keys in the tree")
    ap.add_argument("--inserts", type=int, default=5000)
    ap.add_argument("--lookups", type=int, default=20_000)
    ap.add_argument("--shared-buffers", type=int, default=4096, help="in 8 kB pages")
    ap.add_argument("--pg", action="store_true", help="time PostgreSQL 15's CREATE INDEX too")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-nbtree-"))
    env = BTEnv(tmp)
    env.make(shared_buffers=args.shared_buffers, wal_buffers=512, fsync=True)
    try:
        n = args.n
        rng = random.Random(1)
        keys = list(range(0, 2 * n, 2))
        rng.shuffle(keys)
        rows = [((i // 226, i % 226 + 1), [k], True) for i, k in enumerate(keys)]
        rel = make_index(unique=True, name="bench_pkey")
        wall, cpu = _timed(lambda: nbtree.bt_build(None, rel, rows))
        print(f"bt_build of {n} keys:            {wall * 1e3:9.1f} ms wall "
              f"{cpu * 1e3:9.1f} ms CPU  ({cpu / n * 1e6:.1f} us CPU per key)")

        new = [rng.randrange(2 * n) | 1 for _ in range(args.inserts)]

        def inserts() -> None:
            for j, k in enumerate(new):
                nbtree.bt_insert(rel, [k], (60000 + j // 200, j % 200 + 1), FakeHeap, False)

        wall, cpu = _timed(inserts)
        m = args.inserts
        print(f"insert into a {n}-key tree:     {wall / m * 1e6:9.1f} us wall "
              f"{cpu / m * 1e6:9.1f} us CPU  per insert ({m} random keys)")

        probes = [rng.choice(keys) for _ in range(args.lookups)]

        def lookups() -> None:
            for k in probes:
                nbtree.bt_begin_scan(rel, [(1, "=", k)]).bt_getnext()

        wall, cpu = _timed(lookups)
        m = args.lookups
        print(f"equality lookup, {n}-key tree:  {wall / m * 1e6:9.1f} us wall "
              f"{cpu / m * 1e6:9.1f} us CPU  per lookup")
        assert nbtree.bt_verify(rel) == []
    finally:
        env.close()
        shutil.rmtree(tmp, ignore_errors=True)

    if args.pg:
        _pg_create_index(keys)


def _pg_create_index(keys: list[int]) -> None:
    from tests.unit.test_nbtree_pg import PG

    pg = PG()
    try:
        pg.init()
        pg.sql("CREATE TABLE b(k int4)")
        pg.sql("COPY b FROM STDIN", "\n".join(map(str, keys)) + "\n")
        pg.sql("CHECKPOINT")
        import subprocess

        r = subprocess.run(["psql", "-X", "-h", str(pg.base), "-p", str(pg.port), "-U",
                            "postgres", "-d", "postgres", "-c", "\\timing on", "-c",
                            "CREATE UNIQUE INDEX b_pkey ON b(k)"], capture_output=True,
                           text=True, check=True)
        ms = [line for line in r.stdout.splitlines() if line.startswith("Time:")]
        print(f"PostgreSQL 15 CREATE UNIQUE INDEX on {len(keys)} rows: {ms[-1][6:]}")
    finally:
        pg.destroy()


if __name__ == "__main__":
    main()
