"""ANALYZE's row counts — the part of src/backend/commands/analyze.c
(do_analyze_rel, acquire_sample_rows, heapam_scan_analyze_next_tuple) that tusk
keeps: how many live and dead rows a table holds, reported to the statistics
(pgstat_report_analyze: pg_stat_all_tables' n_live_tup, n_dead_tup,
last_analyze, analyze_count, and n_mod_since_analyze back to zero).

Rows are classified as acquire_sample_rows does. Where tusk differs: every page
is read (PostgreSQL samples 300 × default_statistics_target pages, so the counts
are the same for tables up to 30,000 pages and exact instead of extrapolated
beyond), and no column statistics are computed (the planner is rule-based).
"""

from __future__ import annotations

from typing import Any

from access import xact
from access.heapam import heap_nblocks
from access.heapam_visibility import (
    HEAPTUPLE_DEAD,
    HEAPTUPLE_DELETE_IN_PROGRESS,
    HEAPTUPLE_INSERT_IN_PROGRESS,
    HEAPTUPLE_LIVE,
    HEAPTUPLE_RECENTLY_DEAD,
    global_vis_horizon,
    heap_tuple_satisfies_vacuum,
)
from storage import bufmgr
from storage import bufpage as bp
from utils import pgstat_relation


def _xmin_xmax(page: Any, off: int) -> tuple[int, int]:
    return int.from_bytes(page[off:off + 4], "little"), \
        int.from_bytes(page[off + 4:off + 8], "little")


def count_rows(rel: Any) -> tuple[int, int]:
    """acquire_sample_rows over every page: (live rows, dead rows)."""
    oldest_xmin = global_vis_horizon()
    live = dead = 0
    for blkno in range(heap_nblocks(rel)):
        buffer = bufmgr.read_buffer(rel.smgr, blkno)
        bufmgr.lock_buffer(buffer, bufmgr.BUFFER_LOCK_SHARE)
        try:
            page = bufmgr.buffer_get_page(buffer)
            for offnum in range(1, bp.page_get_max_offset_number(page) + 1):
                off, flags, _length = bp.item_id(page, offnum)
                if flags == bp.LP_DEAD:
                    dead += 1  # dead line pointers count as dead rows
                    continue
                if flags != bp.LP_NORMAL:
                    continue
                state = heap_tuple_satisfies_vacuum(page, off, oldest_xmin, buffer)
                if state == HEAPTUPLE_LIVE:
                    live += 1
                elif state in (HEAPTUPLE_DEAD, HEAPTUPLE_RECENTLY_DEAD):
                    dead += 1
                elif state == HEAPTUPLE_INSERT_IN_PROGRESS:
                    # Our own inserts are live; another transaction's are not counted.
                    if xact.transaction_id_is_current_transaction_id(_xmin_xmax(page, off)[0]):
                        live += 1
                elif state == HEAPTUPLE_DELETE_IN_PROGRESS:
                    if xact.transaction_id_is_current_transaction_id(_xmin_xmax(page, off)[1]):
                        dead += 1
                    else:
                        live += 1
        finally:
            bufmgr.unlock_release_buffer(buffer)
    return live, dead


def analyze_rel(rel: Any) -> None:
    """do_analyze_rel's statistics part for one table."""
    live, dead = count_rows(rel)
    pgstat_relation.pgstat_report_analyze(rel, live, dead)
