"""What ``tusk_ctl status`` shows beyond pg_ctl: every process of the cluster
(title, pid, state, CPU, private and shared memory) and the shared memory
segment with each region's size, read by attaching to it read-only."""

from __future__ import annotations

import psutil

from postmaster import datadir as dd
from shmem import segment as shseg


def _mb(n: float) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def print_cluster_status(datadir: str, pid: int) -> None:
    try:
        pm = psutil.Process(pid)
        procs = [pm, *pm.children()]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.cpu_percent(None)
        except psutil.Error:
            pass
    psutil.cpu_percent(0.2)
    print()
    print(f"{'PID':>7}  {'STATE':<9} {'CPU%':>5}  {'PRIVATE':>10}  {'SHARED':>10}  TITLE")
    for p in procs:
        try:
            with p.oneshot():
                title = " ".join(a for a in p.cmdline() if a) or p.name()
                try:
                    mem = p.memory_full_info()
                    private, shared = mem.uss, mem.rss - mem.uss
                except psutil.AccessDenied:
                    mem = p.memory_info()
                    private, shared = mem.rss - mem.shared, mem.shared
                print(f"{p.pid:>7}  {p.status():<9} {p.cpu_percent(None):>5.1f}  "
                      f"{_mb(private):>10}  {_mb(shared):>10}  {title}")
        except psutil.Error:
            continue
    info = dd.read_pid_file(datadir)
    name = info.line(dd.LOCK_FILE_LINE_SHMEM_KEY).strip() if info else ""
    if not name:
        return
    try:
        size, _creator, nsems, regions = shseg.read_layout(name)
    except Exception as exc:  # noqa: BLE001 - report, never fail status
        print(f"\nshared memory segment {name}: {exc}")
        return
    print(f"\nshared memory segment {name}: {size} bytes ({_mb(size)}), {nsems} semaphores")
    for r in regions:
        print(f"  {r.name:<32} {r.size:>12} bytes at offset {r.offset}")
