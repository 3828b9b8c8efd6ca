"""``tusk_ctl stats`` and ``tusk_ctl buffers``: read a running cluster's shared
memory without disturbing it (a read-only mapping, no locks).

``buffers`` prints what pg_buffercache shows — every buffer's tag, dirty flag,
usage count and pin count — and a summary; ``stats`` prints buffer and I/O
counters per backend type and LWLock acquisitions and waits per tranche.
Figures are read without locking, so a counter may be one report behind.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

from postmaster import datadir as dd
from shmem import lwlock
from shmem import proc as shproc
from shmem.buf_internals import (
    BM_DIRTY,
    BM_TAG_VALID,
    BUF_REFCOUNT_MASK,
    BUF_USAGECOUNT_MASK,
    BUF_USAGECOUNT_SHIFT,
    DESC_WORDS,
    W_STATE,
)
from shmem.checkpointer_shmem import STAT_FIELDS, read_bgwriter_stats
from shmem.segment import ShmemSegment, attach_readonly
from utils import pgstat


class _ToolSettings:
    """What read_lwlock_stats needs, derived from the segment's own layout."""

    def __init__(self, seg: ShmemSegment) -> None:
        nslots = seg.regions["Proc Array"].size // shproc.SLOT_SIZE
        self.values = {"max_connections": nslots - shproc.NUM_AUXILIARY_PROCS}

    def get(self, name: str) -> object:
        return self.values[name]


def _attach(datadir: str) -> ShmemSegment | None:
    info = dd.read_pid_file(datadir)
    if info is None or not dd.pid_alive(info.pid):
        sys.stderr.write("tusk_ctl: no server running\n")
        return None
    name = info.line(dd.LOCK_FILE_LINE_SHMEM_KEY).strip()
    try:
        return attach_readonly(name)
    except Exception as exc:  # noqa: BLE001 - a tool reports, never crashes
        sys.stderr.write(f"tusk_ctl: could not attach to shared memory {name}: {exc}\n")
        return None


def buffer_rows(seg: ShmemSegment) -> list[dict]:
    """pg_buffercache's columns for every buffer."""
    wi = seg.region("Buffer Descriptors").cast("i")
    wu = seg.region("Buffer Descriptors").cast("I")
    rows = []
    for buf in range(len(wu) // DESC_WORDS):
        b = buf * DESC_WORDS
        state = wu[b + W_STATE]
        valid = bool(state & BM_TAG_VALID)
        rows.append({
            "bufferid": buf + 1,
            "relfilenode": wu[b + 2] if valid else None,
            "reltablespace": wu[b] if valid else None,
            "reldatabase": wu[b + 1] if valid else None,
            "relforknumber": wi[b + 3] if valid else None,
            "relblocknumber": wu[b + 4] if valid else None,
            "isdirty": bool(state & BM_DIRTY) if valid else None,
            "usagecount": (state & BUF_USAGECOUNT_MASK) >> BUF_USAGECOUNT_SHIFT
            if valid else None,
            "pinning_backends": state & BUF_REFCOUNT_MASK if valid else None,
        })
    return rows


def run_buffers(args, datadir: str) -> int:
    seg = _attach(datadir)
    if seg is None:
        return 1
    rows = buffer_rows(seg)
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    used = [r for r in rows if r["relfilenode"] is not None]
    if args.all:
        print(f"{'bufferid':>8} {'relfilenode':>11} {'reltablespace':>13} {'reldatabase':>11} "
              f"{'relforknumber':>13} {'relblocknumber':>14} {'isdirty':>7} {'usagecount':>10} "
              f"{'pinning_backends':>16}")
        for r in used:
            print(f"{r['bufferid']:>8} {r['relfilenode']:>11} {r['reltablespace']:>13} "
                  f"{r['reldatabase']:>11} {r['relforknumber']:>13} {r['relblocknumber']:>14} "
                  f"{'t' if r['isdirty'] else 'f':>7} {r['usagecount']:>10} "
                  f"{r['pinning_backends']:>16}")
        print()
    hist = Counter(r["usagecount"] for r in used)
    print(f"buffers: {len(rows)}  used: {len(used)}  unused: {len(rows) - len(used)}  "
          f"dirty: {sum(1 for r in used if r['isdirty'])}  "
          f"pinned: {sum(1 for r in used if r['pinning_backends'])}")
    print("usage count histogram: " + "  ".join(f"{u}: {hist.get(u, 0)}" for u in range(6)))
    return 0


def run_stats(args, datadir: str) -> int:
    seg = _attach(datadir)
    if seg is None:
        return 1
    io = pgstat.read_io_stats(seg)
    locks = lwlock.read_lwlock_stats(seg, _ToolSettings(seg))
    bgwriter = read_bgwriter_stats(seg)
    if getattr(args, "bgwriter", False):  # only pg_stat_bgwriter, as SELECT * FROM it
        if bgwriter is None:
            sys.stderr.write("tusk_ctl: this server has no pg_stat_bgwriter counters\n")
            return 1
        if args.json:
            print(json.dumps(bgwriter))
        else:
            print_bgwriter_stats(bgwriter)
        return 0
    if args.json:
        print(json.dumps({"buffers": io, "lwlocks": {k: {"acquisitions": a, "waits": w}
                                                     for k, (a, w) in locks.items()}}))
        return 0
    cols = ("alloc", "hit", "read", "written", "extended", "fsync")
    print(f"{'backend type':<20}" + "".join(f"{c:>12}" for c in
                                            ("allocated", "hits", "reads", "writes",
                                             "extends", "fsyncs")))
    for btype, counts in sorted(io.items()):
        print(f"{btype:<20}" + "".join(f"{counts[c]:>12}" for c in cols))
    print()
    if bgwriter is not None:
        print_bgwriter_stats(bgwriter)
        print()
    print_wal_stats(io)
    print()
    print(f"{'LWLock tranche':<28}{'acquisitions':>14}{'waits':>10}")
    for name, (acq, waits) in sorted(locks.items(), key=lambda kv: -kv[1][0]):
        print(f"{name:<28}{acq:>14}{waits:>10}")
    return 0


WAL_COLUMNS = ("wal_records", "wal_fpi", "wal_bytes", "wal_buffers_full", "wal_write",
               "wal_sync", "wal_write_time", "wal_sync_time")


def print_wal_stats(io: dict[str, dict[str, int]]) -> None:
    """pg_stat_wal's columns: the WAL counters of every process summed (times in ms,
    collected only with track_wal_io_timing on, as in PostgreSQL)."""
    print("pg_stat_wal")
    for col in WAL_COLUMNS:
        total = sum(counts.get(col, 0) for counts in io.values())
        value = f"{total / 1000:.3f}" if col.endswith("_time") else str(total)
        print(f"  {col:<18}| {value}")


def print_bgwriter_stats(stats: dict) -> None:
    """pg_stat_bgwriter's columns, one per line (as psql's expanded display)."""
    import time as _time

    print("pg_stat_bgwriter")
    for name in STAT_FIELDS:
        print(f"  {name:<24}{stats[name]:>12}")
    reset = _time.strftime("%Y-%m-%d %H:%M:%S UTC", _time.gmtime(stats["stats_reset"]))
    print(f"  {'stats_reset':<24}{reset:>24}")
