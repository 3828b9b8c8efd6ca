"""Lazy VACUUM of a heap — mirrors src/backend/access/heap/vacuumlazy.c
(PostgreSQL 15: lazy_scan_heap, lazy_scan_prune, lazy_scan_noprune,
lazy_vacuum, lazy_vacuum_heap_rel, lazy_vacuum_heap_page).

Three phases, as in PostgreSQL:

1. Scan every page: prune it (access/pruneheap.py: dead tuples are removed,
   HOT chains shortened, the page defragmented, XLOG_HEAP2_PRUNE) under a
   cleanup lock, then collect the page's LP_DEAD line pointers — dead tuples
   whose index entries still point at them — and count live and recently dead
   tuples. A page whose cleanup lock is not free right now is not pruned
   (lazy_scan_noprune): its existing LP_DEAD items are still collected.
2. Remove the index entries pointing at the collected tids: each index's
   bulk delete (access/nbtree's bt_bulk_delete(index_rel, callback)) with a
   callback saying which tids are dead.
3. Mark those line pointers LP_UNUSED (they can be reused by new tuples), trim
   unused line pointers off the end of the array, WAL-log XLOG_HEAP2_VACUUM,
   and record each page's free space in the FSM; then bring the FSM's upper
   levels up to date (FreeSpaceMapVacuum), so that inserts find the space.

A table without indexes skips phase 2 and does phase 3 page by page right
after pruning (PostgreSQL's one-pass strategy).

The horizon is the oldest xmin of every running snapshot when VACUUM starts
(GetOldestNonRemovableTransactionId): tuples deleted by transactions older
than that are dead to everybody.

Where tusk differs: no visibility map (every page is scanned, none is marked
all-visible), no freezing (relfrozenxid does not advance: tusk's xids are
checked for wraparound by transam but never frozen by VACUUM), no truncation
of empty pages at the end of the relation (PostgreSQL's lazy_truncate_heap needs
an AccessExclusiveLock it takes conditionally; skipped), no index-vacuuming
bypass and no memory limit on dead tids (one index pass), no parallel index
vacuuming, no VACUUM VERBOSE report: the counts come back in a VacuumResult,
for the caller to update pg_class (relpages, reltuples) and the statistics.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from access import xact
from access.heapam import heap_nblocks
from access.heapam_visibility import (
    HEAPTUPLE_DEAD,
    HEAPTUPLE_DELETE_IN_PROGRESS,
    HEAPTUPLE_INSERT_IN_PROGRESS,
    HEAPTUPLE_LIVE,
    HEAPTUPLE_RECENTLY_DEAD,
    _precedes,
    global_vis_horizon,
    heap_tuple_satisfies_vacuum,
)
from access.heapam_xlog import log_heap_vacuum, relation_needs_wal
from access.pruneheap import (
    conditional_lock_buffer_for_cleanup,
    heap_page_prune,
    page_truncate_line_pointer_array,
)
from storage import bufmgr, freespace
from storage import bufpage as bp
from storage.bufmgr import BUFFER_LOCK_EXCLUSIVE, BUFFER_LOCK_SHARE, BUFFER_LOCK_UNLOCK
from utils.elog import PANIC, PgError

_ITEMID = struct.Struct("<I")
_MAX_PRUNE_RETRIES = 10


@dataclass
class VacuumResult:
    """What VACUUM did to one heap (the numbers VACUUM VERBOSE and
    vac_update_relstats use)."""

    rel_pages: int = 0             # pages when the scan started
    scanned_pages: int = 0         # pages pruned (cleanup lock obtained)
    noprune_pages: int = 0         # pages whose cleanup lock was busy (not pruned)
    tuples_deleted: int = 0        # tuples removed by pruning
    lpdead_items: int = 0          # dead line pointers set unused after index cleanup
    live_tuples: int = 0           # tuples left alive (new reltuples)
    recently_dead_tuples: int = 0  # dead but still visible to someone
    missed_dead_tuples: int = 0    # dead but on a page we could not prune
    index_tuples_removed: dict[str, int] = field(default_factory=dict)
    pages_removed: int = 0         # truncation is not implemented: always 0
    oldest_xmin: int = 0

    @property
    def new_rel_pages(self) -> int:
        return self.rel_pages - self.pages_removed


def _default_bulk_delete(index_rel, callback: Callable[[tuple[int, int]], bool]) -> int:
    """The B-tree AM's bulk delete (imported on first use)."""
    try:
        from access.nbtree import bt_bulk_delete  # type: ignore[attr-defined]
    except ImportError:
        from access.nbtree.nbtree import bt_bulk_delete  # type: ignore[no-redef]
    return bt_bulk_delete(index_rel, callback)


def lazy_vacuum_heap_page(rel, buffer: int, offsets: Sequence[int]) -> None:
    """lazy_vacuum_heap_page: set LP_DEAD items unused (their index entries are
    gone), trim the line pointer array, WAL-log it. The caller holds an
    exclusive lock (no tuple moves, so no cleanup lock is needed)."""
    page = bufmgr.buffer_get_page(buffer)
    try:
        for off in offsets:
            if bp.item_id(page, off)[1] != bp.LP_DEAD:
                raise PgError("XX000", f"line pointer {off} is not LP_DEAD", severity=PANIC)
            bp.item_id_set_unused(page, off)
        page_truncate_line_pointer_array(page)
        bufmgr.mark_buffer_dirty(buffer)
        if relation_needs_wal(rel):
            lsn = log_heap_vacuum(rel, page, bufmgr.buffer_get_block_number(buffer),
                                  list(offsets), xact.get_current_transaction_id_if_any())
            bp.page_set_lsn(page, lsn)
    except BaseException as exc:
        from access.heapam import _critical_section_failed

        _critical_section_failed(exc)
        raise


def _scan_prune(rel, buffer: int, blkno: int, oldest_xmin: int, res: VacuumResult
                ) -> list[int]:
    """lazy_scan_prune: prune, then classify what is left; the LP_DEAD offsets."""
    page = bufmgr.buffer_get_page(buffer)

    def removable(xid: int) -> bool:
        return _precedes(xid, oldest_xmin)

    for _attempt in range(_MAX_PRUNE_RETRIES):
        ndeleted, _nnewlpdead = heap_page_prune(rel, buffer, removable)
        res.tuples_deleted += ndeleted
        deadoffsets: list[int] = []
        live = recently_dead = 0
        retry = False
        for offnum in range(1, bp.page_get_max_offset_number(page) + 1):
            off, flags, _length = bp.item_id(page, offnum)
            if flags == bp.LP_UNUSED or flags == bp.LP_REDIRECT:
                continue
            if flags == bp.LP_DEAD:
                deadoffsets.append(offnum)
                continue
            state = heap_tuple_satisfies_vacuum(page, off, oldest_xmin, buffer)
            if state == HEAPTUPLE_DEAD:
                # An inserter aborted after pruning looked: prune again.
                retry = True
                break
            if state == HEAPTUPLE_LIVE or state == HEAPTUPLE_DELETE_IN_PROGRESS:
                live += 1
            elif state == HEAPTUPLE_RECENTLY_DEAD:
                recently_dead += 1
            elif state == HEAPTUPLE_INSERT_IN_PROGRESS:
                pass  # its inserter counts it when it commits
        if not retry:
            res.live_tuples += live
            res.recently_dead_tuples += recently_dead
            return deadoffsets
    raise PgError("XX000", f"could not prune block {blkno} of relation \"{rel.relname}\"")


def _scan_noprune(rel, buffer: int, oldest_xmin: int, res: VacuumResult) -> list[int]:
    """lazy_scan_noprune: with only a share lock, collect LP_DEAD items and count."""
    page = bufmgr.buffer_get_page(buffer)
    deadoffsets: list[int] = []
    for offnum in range(1, bp.page_get_max_offset_number(page) + 1):
        off, flags, _length = bp.item_id(page, offnum)
        if flags == bp.LP_DEAD:
            deadoffsets.append(offnum)
        elif flags == bp.LP_NORMAL:
            state = heap_tuple_satisfies_vacuum(page, off, oldest_xmin, buffer)
            if state in (HEAPTUPLE_LIVE, HEAPTUPLE_DELETE_IN_PROGRESS):
                res.live_tuples += 1
            elif state == HEAPTUPLE_RECENTLY_DEAD:
                res.recently_dead_tuples += 1
            elif state == HEAPTUPLE_DEAD:
                res.missed_dead_tuples += 1
    return deadoffsets


def lazy_vacuum_rel(rel, index_rels: Sequence = (), *,
                    index_bulk_delete: Callable | None = None) -> VacuumResult:
    """heap_vacuum_rel: VACUUM one heap and its indexes (see the module docstring).
    ``index_bulk_delete(index_rel, callback) -> removed`` defaults to the B-tree
    AM's bt_bulk_delete."""
    bulk_delete = index_bulk_delete or _default_bulk_delete
    res = VacuumResult()
    oldest_xmin = res.oldest_xmin = global_vis_horizon()
    nblocks = res.rel_pages = heap_nblocks(rel)
    reln = rel.smgr
    nindexes = len(index_rels)
    dead_items: dict[int, list[int]] = {}
    empty_free = bp.BLCKSZ - bp.SIZE_OF_PAGE_HEADER_DATA

    # Phase 1: scan and prune.
    for blkno in range(nblocks):
        buffer = bufmgr.read_buffer(reln, blkno)
        if not conditional_lock_buffer_for_cleanup(buffer):
            bufmgr.lock_buffer(buffer, BUFFER_LOCK_SHARE)
            try:
                deadoffsets = _scan_noprune(rel, buffer, oldest_xmin, res)
            finally:
                bufmgr.unlock_release_buffer(buffer)
            res.noprune_pages += 1
            if deadoffsets:
                dead_items[blkno] = deadoffsets
            continue
        res.scanned_pages += 1
        page = bufmgr.buffer_get_page(buffer)
        if bp.page_is_new(page):
            # Left by an extension that crashed before initialising it: reuse it.
            bufmgr.unlock_release_buffer(buffer)
            freespace.record_page_with_free_space(rel, blkno, empty_free)
            continue
        try:
            deadoffsets = _scan_prune(rel, buffer, blkno, oldest_xmin, res)
            if deadoffsets and nindexes == 0:
                lazy_vacuum_heap_page(rel, buffer, deadoffsets)
                res.lpdead_items += len(deadoffsets)
                deadoffsets = []
            free = bp.page_get_heap_free_space(page)
        finally:
            bufmgr.unlock_release_buffer(buffer)
        if deadoffsets:
            dead_items[blkno] = deadoffsets  # the FSM hears about it after phase 3
        else:
            freespace.record_page_with_free_space(rel, blkno, free)

    if dead_items:
        # Phase 2: the indexes.
        dead = {(b, o) for b, offs in dead_items.items() for o in offs}
        callback = dead.__contains__
        for index_rel in index_rels:
            res.index_tuples_removed[index_rel.relname] = bulk_delete(index_rel, callback)
        # Phase 3: the heap's dead line pointers.
        for blkno in sorted(dead_items):
            buffer = bufmgr.read_buffer(reln, blkno)
            bufmgr.lock_buffer(buffer, BUFFER_LOCK_EXCLUSIVE)
            try:
                lazy_vacuum_heap_page(rel, buffer, dead_items[blkno])
                free = bp.page_get_heap_free_space(bufmgr.buffer_get_page(buffer))
            finally:
                bufmgr.unlock_release_buffer(buffer)
            res.lpdead_items += len(dead_items[blkno])
            freespace.record_page_with_free_space(rel, blkno, free)

    freespace.free_space_map_vacuum(rel)
    return res


_ = (BUFFER_LOCK_UNLOCK, _ITEMID)
