"""What the heap access method costs per call (access/heapam.py).

    python bench/bench_heapam.py [--runs N] [--rows N] [--json]

Builds a private cluster in a temporary directory (shared memory with every
subsystem, WAL bootstrapped; tests/unit/heap_harness.py), with fsync off so
that commits do not dominate, and times the CPU time of this process per call
(median over --runs runs, and the best):

    heap_insert             a pgbench_accounts row (4 columns, 100 bytes), WAL-logged,
                            into the relation's target page
    heap_multi_insert/row   the same through heap_multi_insert (COPY), per row
    heap_fetch              by tid, hint bits already set
    heap_hot_search         by root tid (an index scan's fetch), one-version chain
    heap_scan/row           a sequential scan, per visible row
    heap_update (HOT)       pgbench_branches: the row found by heap_hot_search, then
                            updated (same page, no indexed column changed), one
                            transaction per update: the update call alone
    hot_search (branches)   the fetch before it, chains as pruning leaves them
    heap_delete             one row, WAL-logged

Only the calls are timed (transaction begin/commit are not).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from access import heapam, xact  # noqa: E402
from catalog import pg_type as t  # noqa: E402
from tests.unit.heap_harness import HeapCluster, begin, commit  # noqa: E402
from utils import snapmgr  # noqa: E402

# CPU time of this process: the machines are shared, and wall clock under load
# measures the neighbours (WAL writes with fsync off are page-cache copies).
_clock = time.process_time

ACCOUNTS = [("aid", t.INT4OID), ("bid", t.INT4OID), ("abalance", t.INT4OID),
            ("filler", t.BPCHAROID, 88)]
BRANCHES = [("bid", t.INT4OID), ("bbalance", t.INT4OID), ("filler", t.BPCHAROID, 92)]


def one_run(cl: HeapCluster, rows: int) -> dict[str, float]:
    out: dict[str, float] = {}
    acc = cl.table("accounts", ACCOUNTS, indexed_attnums=frozenset({1}))
    filler = " " * 84
    begin()
    t0 = _clock()
    tids = [heapam.heap_insert(acc, [i, 1, 0, filler]) for i in range(rows)]
    out["heap_insert"] = (_clock() - t0) / rows
    commit()
    acc2 = cl.table("accounts2", ACCOUNTS, indexed_attnums=frozenset({1}))
    begin()
    batch = [[i, 1, 0, filler] for i in range(rows)]
    t0 = _clock()
    heapam.heap_multi_insert(acc2, batch)
    out["heap_multi_insert/row"] = (_clock() - t0) / rows
    commit()
    begin()
    snap = snapmgr.get_transaction_snapshot()
    for tid in tids:
        heapam.heap_fetch(acc, tid, snap)  # sets hint bits
    t0 = _clock()
    for tid in tids:
        heapam.heap_fetch(acc, tid, snap)
    out["heap_fetch"] = (_clock() - t0) / rows
    t0 = _clock()
    for tid in tids:
        heapam.heap_hot_search(acc, tid, snap)
    out["heap_hot_search"] = (_clock() - t0) / rows
    t0 = _clock()
    n = sum(1 for _ in heapam.heap_scan(acc, snap))
    out["heap_scan/row"] = (_clock() - t0) / n
    commit()

    br = cl.table("branches", BRANCHES, indexed_attnums=frozenset({1}))
    begin()
    root = heapam.heap_insert(br, [1, 0, None])
    commit()
    upd = search = 0.0
    nupd = max(rows // 4, 100)
    for _ in range(nupd):
        begin()
        snap = snapmgr.get_transaction_snapshot()
        t0 = _clock()
        tid, vals = heapam.heap_hot_search(br, root, snap)
        t1 = _clock()
        heapam.heap_update(br, tid, [1, vals[1] + 1, None])
        t2 = _clock()
        commit()
        search += t1 - t0
        upd += t2 - t1
    out["heap_update (HOT)"] = upd / nupd
    out["hot_search (branches)"] = search / nupd
    assert heapam.heap_nblocks(br) == 1
    begin()
    ndel = min(rows, 2000)
    t0 = _clock()
    for tid in tids[:ndel]:
        heapam.heap_delete(acc, tid)
    out["heap_delete"] = (_clock() - t0) / ndel
    commit()
    xact.commit_transaction()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results: dict[str, list[float]] = {}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            cl = HeapCluster(Path(tmp), shared_buffers=4096, fsync=False)
            try:
                for k, v in one_run(cl, args.rows).items():
                    results.setdefault(k, []).append(v * 1e6)
            finally:
                cl.close()
    if args.json:
        print(json.dumps({k: {"median_us": statistics.median(v), "best_us": min(v)}
                          for k, v in results.items()}, indent=2))
        return
    print(f"{'operation':<24} {'median µs':>10} {'best µs':>10}")
    for k, v in results.items():
        print(f"{k:<24} {statistics.median(v):10.1f} {min(v):10.1f}")


if __name__ == "__main__":
    main()
