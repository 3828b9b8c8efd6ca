"""Microbenchmarks of the storage layer: what fd/smgr add over raw os.pread/os.pwrite,
the data checksum, and page operations. Prints a table; asserts nothing.

    python bench/bench_storage.py [--quick]

Files live in a temporary directory (page cache: no disk I/O is measured). Each
figure is the best of several repeats, in microseconds per operation, of this
process's CPU time (user + system, so syscalls count): on a shared, loaded machine
wall-clock figures mostly measure waiting for a core. Each wrapper is timed in
alternation with the raw call it wraps.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage import bufpage, fd, smgr, sync  # noqa: E402
from storage.checksum import pg_checksum_page  # noqa: E402
from storage.relfilenode import DEFAULTTABLESPACE_OID, MAIN_FORKNUM, RelFileNode  # noqa: E402

BLCKSZ = bufpage.BLCKSZ


def _cpu_timeit(fn: Callable[[], object], number: int) -> float:
    return timeit.Timer(fn, timer=time.process_time).timeit(number)


def best_us(fn: Callable[[], object], number: int, repeat: int) -> float:
    return min(_cpu_timeit(fn, number) for _ in range(repeat)) / number * 1e6


def best_pair_us(raw: Callable[[], object], ours: Callable[[], object], number: int,
                 repeat: int) -> tuple[float, float]:
    """Best times of two callables measured in alternation, so that load from other
    processes on a shared machine hits both alike."""
    t_raw = t_ours = float("inf")
    for _ in range(repeat):
        t_raw = min(t_raw, _cpu_timeit(raw, number))
        t_ours = min(t_ours, _cpu_timeit(ours, number))
    return t_raw / number * 1e6, t_ours / number * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations")
    args = ap.parse_args()
    n = 5_000 if args.quick else 50_000
    rep = 3 if args.quick else 7
    rows: list[tuple[str, float, str]] = []

    def row(name: str, us: float, note: str = "") -> None:
        rows.append((name, us, note))

    with tempfile.TemporaryDirectory() as tmp:
        fd.set_data_directory(tmp)
        os.makedirs(os.path.join(tmp, "base/5"))
        f = fd.path_name_open_file("base/5/16384", os.O_RDWR | os.O_CREAT)
        data = os.urandom(BLCKSZ)
        for b in range(16):
            f.write(data, b * BLCKSZ)
        raw = f.fd
        buf = bytearray(BLCKSZ)
        view = memoryview(buf)
        off = 5 * BLCKSZ

        reln = smgr.smgr_open(RelFileNode(DEFAULTTABLESPACE_OID, 5, 16384))
        smgr.smgr_nblocks(reln, MAIN_FORKNUM)
        pairs: list[tuple[str, Callable[[], object], str, Callable[[], object]]] = [
            ("os.pread", lambda: os.pread(raw, BLCKSZ, off),
             "fd File.read 8 kB", lambda: f.read(BLCKSZ, off)),
            ("os.pread", lambda: os.pread(raw, BLCKSZ, off),
             "smgr_read 8 kB -> bytes", lambda: smgr.smgr_read(reln, MAIN_FORKNUM, 5)),
            ("os.preadv", lambda: os.preadv(raw, (view,), off),
             "fd File.read_into buffer", lambda: f.read_into(view, off)),
            ("os.preadv", lambda: os.preadv(raw, (view,), off),
             "smgr_read 8 kB into buffer",
             lambda: smgr.smgr_read(reln, MAIN_FORKNUM, 5, view)),
            ("os.pwrite", lambda: os.pwrite(raw, data, off),
             "fd File.write 8 kB", lambda: f.write(data, off)),
            ("os.pwrite", lambda: os.pwrite(raw, data, off),
             "smgr_write 8 kB, skip_fsync",
             lambda: smgr.smgr_write(reln, MAIN_FORKNUM, 5, data, skip_fsync=True)),
            ("os.pwrite", lambda: os.pwrite(raw, data, off),
             "smgr_write 8 kB (+register_dirty_segment)",
             lambda: smgr.smgr_write(reln, MAIN_FORKNUM, 5, data)),
        ]
        for raw_name, raw_fn, name, fn in pairs:
            t_raw, t = best_pair_us(raw_fn, fn, n, rep)
            row(name, t, f"{(t - t_raw) * 1000:+.0f} ns over {raw_name} at {t_raw:.2f}")
        fd.configure_fault_injection("write:pg_wal/*:EIO")
        t_raw, t = best_pair_us(lambda: os.pwrite(raw, data, off), lambda: f.write(data, off),
                                n, rep)
        row("fd File.write, a non-matching fault spec", t,
            f"{(t - t_raw) * 1000:+.0f} ns over os.pwrite at {t_raw:.2f}")
        fd.configure_fault_injection(None)
        t = best_us(lambda: smgr.smgr_nblocks(reln, MAIN_FORKNUM), n, rep)
        row("smgr_nblocks", t)
        t = best_us(lambda: sync.register_dirty_segment(reln.rnode, MAIN_FORKNUM, 0), n, rep)
        row("register_dirty_segment (local table)", t)
        smgr.smgr_close_all()
        sync.reset()
        fd.close_all_files()
        fd.set_data_directory(None)

    page = bytearray(BLCKSZ)
    bufpage.page_init(page)
    for i in range(40):
        bufpage.page_add_item(page, bytes([i]) * 120)
    bufpage.page_set_checksum_inplace(page, 7)
    cn = max(200, n // 50)
    row("pg_checksum_page 8 kB", best_us(lambda: pg_checksum_page(page, 7), cn, rep))
    row("page_set_checksum_copy", best_us(lambda: bufpage.page_set_checksum_copy(page, 7),
                                          cn, rep))
    row("page_is_verified, checksums on",
        best_us(lambda: bufpage.page_is_verified(page, 7, True), cn, rep))
    row("page_is_verified, checksums off",
        best_us(lambda: bufpage.page_is_verified(page, 7, False), n, rep))

    item = bytes(100)
    fresh = bytearray(BLCKSZ)

    def fill_page() -> None:
        bufpage.page_init(fresh)
        while bufpage.page_add_item(fresh, item):
            pass

    per_page = 75 + 1  # 75 items fit, then one refusal
    t = best_us(fill_page, max(100, n // 100), rep) / per_page
    row("page_add_item 100 B (append)", t)
    row("page_get_item", best_us(lambda: bufpage.page_get_item(page, 20), n, rep))
    row("item_id", best_us(lambda: bufpage.item_id(page, 20), n, rep))
    row("page_get_free_space", best_us(lambda: bufpage.page_get_free_space(page), n, rep))

    width = max(len(r[0]) for r in rows)
    print(f"{'operation':<{width}}  {'us/op':>8}  cost over the raw call")
    print(f"{'-' * width}  {'-' * 8}  ----------------------")
    for name, us, note in rows:
        print(f"{name:<{width}}  {us:8.2f}  {note}")


if __name__ == "__main__":
    main()
