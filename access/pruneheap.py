"""Heap page pruning and HOT chains — mirrors src/backend/access/heap/pruneheap.c
(PostgreSQL 15), with PageRepairFragmentation and PageTruncateLinePointerArray
(bufpage.c) and ConditionalLockBufferForCleanup / LockBufferForCleanup (bufmgr.c).

An UPDATE that changes no indexed column and finds room on the same page
writes a heap-only tuple (HOT): the old version gets HEAP_HOT_UPDATED and a
t_ctid pointing at the new one, the new one HEAP_ONLY_TUPLE, and no index
entry is made; index scans reach it by following the chain from the root
line pointer the index points to. Once the old versions are dead to every
snapshot, pruning reclaims them without VACUUM:

- a chain's dead prefix is removed: its heap-only members' line pointers
  become LP_UNUSED, and the root line pointer becomes LP_REDIRECT to the first
  surviving member (or LP_DEAD if the whole chain is dead: the index entry
  still points there until VACUUM removes it);
- dead tuples that are not part of a HOT chain become LP_DEAD (their space is
  freed, the line pointer stays for VACUUM, which must remove index entries);
- the page is defragmented (PageRepairFragmentation) under a cleanup lock
  (exclusive lock and no other pin), and the change is WAL-logged as
  XLOG_HEAP2_PRUNE.

``heap_page_prune_opt`` runs on every read access to a page (scans and index
fetches): it only prunes if pd_prune_xid (the oldest xid that left a
prunable tuple, set by UPDATE and DELETE) is older than the oldest snapshot
anywhere, the page is nearly full (less than max(fillfactor reserve,
BLCKSZ / 10) free, or PD_PAGE_FULL set by an UPDATE that did not fit), and the
cleanup lock is free right now. That is what keeps a row updated thousands of
times (pgbench_branches) on one page.

Deliberate difference: an index fetch that walked a HOT chain past
heapam.HOT_CHAIN_PRUNE_THRESHOLD (16) versions its snapshot could not see also
asks for a prune (``force``: the free-space test is skipped, the horizon and
cleanup-lock tests are not). PostgreSQL lets a page fill up first, so a row of
pgbench_branches (32-byte tuples, ~220 versions a page) ends up with chains of
a hundred versions walked on every fetch: cheap in C, about 100 µs in Python.
Pruning small chains often costs far less than walking long ones.

Where tusk differs: no visibility map or freezing (PostgreSQL 15 does neither
here either), no old_snapshot_threshold; the removability test is
heapam_visibility's GlobalVis horizon or an explicit one from VACUUM. Buffer
cleanup locks wait by polling (bufmgr has no pin-count waiter).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

from access import xlog
from access.heapam_visibility import (
    HEAPTUPLE_DEAD,
    HEAPTUPLE_DELETE_IN_PROGRESS,
    HEAPTUPLE_RECENTLY_DEAD,
    _precedes,
    global_vis_is_removable_xid,
    heap_tuple_header_advance_latest_removed_xid,
    heap_tuple_satisfies_vacuum_horizon,
    mark_buffer_dirty_hint,
)
from access.heapam_xlog import log_heap_prune, relation_needs_wal
from access.heaptuple import (
    HEAP_HOT_UPDATED,
    HEAP_ONLY_TUPLE,
    T_INFOMASK2,
)
from shmem.buf_internals import BUF_REFCOUNT_MASK, DESC_WORDS, W_STATE
from storage import bufmgr
from storage import bufpage as bp
from storage.bufmgr import BUFFER_LOCK_EXCLUSIVE, BUFFER_LOCK_UNLOCK
from utils.elog import PgError
from utils.pgstat_relation import pgstat_init_relation

_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_XMIN_XMAX = struct.Struct("<II")
_LOWER_UPPER_SPECIAL = struct.Struct("<HHH")
_ITEMS = 24  # SizeOfPageHeaderData: the line pointer array
_BLCKSZ = bp.BLCKSZ
_MINFREE_FLOOR = _BLCKSZ // 10


# -- cleanup locks (bufmgr.c) ------------------------------------------------------------------

def conditional_lock_buffer_for_cleanup(buffer: int) -> bool:
    """ConditionalLockBufferForCleanup: the exclusive content lock, if it is free
    now and nobody but us pins the buffer (so nobody holds pointers into the
    page across a lock release). Reads the shared pin count from the buffer's
    state word under its header lock, as bufmgr does."""
    p = bufmgr._pool
    buf_id = buffer - 1
    if p.private_refcount[buf_id] != 1:
        return False
    if not bufmgr.conditional_lock_buffer(buffer):
        return False
    p.hdr_acquire[buf_id]()
    refcount = p.state_words[buf_id * DESC_WORDS + W_STATE] & BUF_REFCOUNT_MASK
    p.hdr_release[buf_id]()
    if refcount == 1:
        return True
    bufmgr.lock_buffer(buffer, BUFFER_LOCK_UNLOCK)
    return False


def lock_buffer_for_cleanup(buffer: int) -> None:
    """LockBufferForCleanup: wait until we hold the exclusive lock and the only
    pin. (PostgreSQL sleeps until the last other pin is released; bufmgr has no
    pin-count waiter, so this polls.)"""
    delay = 0.0005
    while True:
        bufmgr.lock_buffer(buffer, BUFFER_LOCK_EXCLUSIVE)
        p = bufmgr._pool
        buf_id = buffer - 1
        p.hdr_acquire[buf_id]()
        refcount = p.state_words[buf_id * DESC_WORDS + W_STATE] & BUF_REFCOUNT_MASK
        p.hdr_release[buf_id]()
        if refcount == 1:
            return
        bufmgr.lock_buffer(buffer, BUFFER_LOCK_UNLOCK)
        time.sleep(delay)
        delay = min(delay * 2, 0.01)


# -- page-level operations (bufpage.c) ---------------------------------------------------------

def page_repair_fragmentation(page) -> None:
    """PageRepairFragmentation: move the tuples with storage to the end of the
    page, in line pointer order, leaving one free hole; set or clear
    PD_HAS_FREE_LINES."""
    lower, upper, special = _LOWER_UPPER_SPECIAL.unpack_from(page, 12)
    if lower < _ITEMS or lower > upper or upper > special or special > _BLCKSZ \
            or special & 7:
        raise PgError("XX001", f"corrupted page pointers: lower = {lower}, upper = {upper}, "
                               f"special = {special}")
    nline = (lower - _ITEMS) >> 2
    words = list(struct.unpack_from(f"<{nline}I", page, _ITEMS)) if nline else []
    items = []
    nunused = 0
    totallen = 0
    for i, w in enumerate(words):
        if (w >> 15) & 3:  # used
            length = w >> 17
            if length:
                itemoff = w & 0x7FFF
                if itemoff < upper or itemoff >= special:
                    raise PgError("XX001", f"corrupted line pointer: {itemoff}")
                alen = (length + 7) & ~7
                items.append((i, itemoff, alen))
                totallen += alen
        else:
            words[i] = 0
            nunused += 1
    if not items:
        upper = special
    else:
        if totallen > special - lower:
            raise PgError("XX001", f"corrupted item lengths: total {totallen}, available "
                                   f"space {special - lower}")
        src = bytes(page[upper:special])
        pos = special
        for i, itemoff, alen in items:
            pos -= alen
            start = itemoff - upper
            page[pos:pos + alen] = src[start:start + alen]
            words[i] = (words[i] & ~0x7FFF) | pos
        upper = pos
    if nline:
        struct.pack_into(f"<{nline}I", page, _ITEMS, *words)
    _U16.pack_into(page, 14, upper)
    if nunused:
        bp.page_set_has_free_line_pointers(page)
    else:
        bp.page_clear_has_free_line_pointers(page)


def page_truncate_line_pointer_array(page) -> None:
    """PageTruncateLinePointerArray: drop LP_UNUSED line pointers at the end of
    the array (keeping at least one), and set PD_HAS_FREE_LINES if unused ones
    remain before them."""
    nline = bp.page_get_max_offset_number(page)
    nunusedend = 0
    countdone = False
    sethint = False
    for i in range(nline, 0, -1):
        used = (_U32.unpack_from(page, _ITEMS + 4 * (i - 1))[0] >> 15) & 3
        if not countdone and i > 1:
            if not used:
                nunusedend += 1
            else:
                countdone = True
        elif not used:
            sethint = True
            break
    if nunusedend:
        _U16.pack_into(page, 12, bp.page_get_lower(page) - 4 * nunusedend)
    if sethint:
        bp.page_set_has_free_line_pointers(page)
    else:
        bp.page_clear_has_free_line_pointers(page)


def heap_page_prune_execute(page, redirected: list[int], nowdead: list[int],
                            nowunused: list[int]) -> None:
    """heap_page_prune_execute: apply a prune plan (also its redo), then defragment."""
    for i in range(0, len(redirected), 2):
        bp.item_id_set_redirect(page, redirected[i], redirected[i + 1])
    for off in nowdead:
        bp.item_id_set_dead(page, off)
    for off in nowunused:
        bp.item_id_set_unused(page, off)
    page_repair_fragmentation(page)


# -- pruning ----------------------------------------------------------------------------------------

class PruneState:
    """PruneState: what heap_page_prune decided for one page."""

    __slots__ = ("removable", "new_prune_xid", "latest_removed_xid", "redirected", "nowdead",
                 "nowunused", "marked", "htsv")

    def __init__(self, removable: Callable[[int], bool], maxoff: int) -> None:
        self.removable = removable
        self.new_prune_xid = 0
        self.latest_removed_xid = 0
        self.redirected: list[int] = []
        self.nowdead: list[int] = []
        self.nowunused: list[int] = []
        self.marked = [False] * (maxoff + 2)
        self.htsv = [-1] * (maxoff + 2)

    def record_prunable(self, xid: int) -> None:
        if not self.new_prune_xid or _precedes(xid, self.new_prune_xid):
            self.new_prune_xid = xid

    def record_redirect(self, offnum: int, rdoffnum: int) -> None:
        self.redirected += (offnum, rdoffnum)
        self.marked[offnum] = True
        self.marked[rdoffnum] = True

    def record_dead(self, offnum: int) -> None:
        self.nowdead.append(offnum)
        self.marked[offnum] = True

    def record_unused(self, offnum: int) -> None:
        self.nowunused.append(offnum)
        self.marked[offnum] = True


def _infomask2(page, off: int) -> int:
    return _U16.unpack_from(page, off + T_INFOMASK2)[0]


def heap_prune_chain(page, rootoffnum: int, prstate: PruneState) -> int:
    """heap_prune_chain: plan the pruning of the HOT chain rooted at rootoffnum;
    returns how many tuples it deletes."""
    ndeleted = 0
    maxoff = len(prstate.marked) - 2
    root_off, root_flags, _len = bp.item_id(page, rootoffnum)
    htsv = prstate.htsv
    if root_flags == bp.LP_NORMAL:
        if _infomask2(page, root_off) & HEAP_ONLY_TUPLE:
            # A heap-only tuple is never a chain's start. A dead one that chains
            # nowhere (an aborted HOT update) can go now; others go with their chain.
            if htsv[rootoffnum] == HEAPTUPLE_DEAD and \
                    not _infomask2(page, root_off) & HEAP_HOT_UPDATED:
                prstate.record_unused(rootoffnum)
                prstate.latest_removed_xid = heap_tuple_header_advance_latest_removed_xid(
                    page, root_off, prstate.latest_removed_xid)
                ndeleted += 1
            return ndeleted

    chainitems: list[int] = []
    latestdead = 0
    prior_xmax = 0
    offnum = rootoffnum
    while True:
        if offnum < 1 or offnum > maxoff or prstate.marked[offnum]:
            break
        off, flags, _length = bp.item_id(page, offnum)
        if flags == bp.LP_UNUSED:
            break
        if flags == bp.LP_REDIRECT:
            if chainitems:
                break  # a redirect can only start a chain
            chainitems.append(offnum)
            offnum = root_off  # ItemIdGetRedirect(rootlp)
            continue
        if flags == bp.LP_DEAD:
            break
        xmin, xmax = _XMIN_XMAX.unpack_from(page, off)
        if prior_xmax and xmin != prior_xmax:
            break
        chainitems.append(offnum)
        tupdead = recent_dead = False
        status = htsv[offnum]
        if status == HEAPTUPLE_DEAD:
            tupdead = True
        elif status == HEAPTUPLE_RECENTLY_DEAD:
            recent_dead = True
            prstate.record_prunable(xmax)
        elif status == HEAPTUPLE_DELETE_IN_PROGRESS:
            prstate.record_prunable(xmax)
        if tupdead:
            latestdead = offnum
            prstate.latest_removed_xid = heap_tuple_header_advance_latest_removed_xid(
                page, off, prstate.latest_removed_xid)
        elif not recent_dead:
            break
        if not _infomask2(page, off) & HEAP_HOT_UPDATED:
            break
        offnum = struct.unpack_from("<H", page, off + 16)[0]  # t_ctid's offset
        prior_xmax = xmax

    if latestdead:
        # Remove the dead prefix: intermediate members become unused, the root
        # is redirected to the first survivor (or dies with the whole chain).
        i = 1
        while i < len(chainitems) and chainitems[i - 1] != latestdead:
            prstate.record_unused(chainitems[i])
            ndeleted += 1
            i += 1
        if root_flags == bp.LP_NORMAL:
            ndeleted += 1
        if i >= len(chainitems):
            prstate.record_dead(rootoffnum)
        else:
            prstate.record_redirect(rootoffnum, chainitems[i])
    elif len(chainitems) < 2 and root_flags == bp.LP_REDIRECT:
        # A redirect whose target we already removed: it is dead now.
        prstate.record_dead(rootoffnum)
    return ndeleted


def heap_page_prune(rel, buffer: int, removable: Callable[[int], bool] | None = None
                    ) -> tuple[int, int]:
    """heap_page_prune: prune and defragment the page (the caller holds a
    cleanup lock); WAL-logged. ``removable(xid)`` says whether a tuple deleted
    by committed ``xid`` is dead to everybody (default: the GlobalVis horizon).
    Returns (tuples deleted, line pointers newly LP_DEAD)."""
    if removable is None:
        removable = global_vis_is_removable_xid
    page = bufmgr.buffer_get_page(buffer)
    maxoff = bp.page_get_max_offset_number(page)
    prstate = PruneState(removable, maxoff)
    htsv = prstate.htsv
    for offnum in range(maxoff, 0, -1):
        off, flags, _length = bp.item_id(page, offnum)
        if flags != bp.LP_NORMAL:
            continue
        res, dead_after = heap_tuple_satisfies_vacuum_horizon(page, off, buffer)
        if res == HEAPTUPLE_RECENTLY_DEAD and removable(dead_after):
            res = HEAPTUPLE_DEAD
        htsv[offnum] = res
    ndeleted = 0
    marked = prstate.marked
    for offnum in range(1, maxoff + 1):
        if marked[offnum]:
            continue
        flags = bp.item_id(page, offnum)[1]
        if flags == bp.LP_UNUSED or flags == bp.LP_DEAD:
            continue
        ndeleted += heap_prune_chain(page, offnum, prstate)

    if prstate.redirected or prstate.nowdead or prstate.nowunused:
        heap_page_prune_execute(page, prstate.redirected, prstate.nowdead, prstate.nowunused)
        _U32.pack_into(page, 20, prstate.new_prune_xid)  # pd_prune_xid
        bp.page_clear_full(page)
        bufmgr.mark_buffer_dirty(buffer)
        if relation_needs_wal(rel):
            from access import xact

            lsn = log_heap_prune(rel, page, bufmgr.buffer_get_block_number(buffer),
                                 prstate.latest_removed_xid, prstate.redirected,
                                 prstate.nowdead, prstate.nowunused,
                                 xact.get_current_transaction_id_if_any())
            bp.page_set_lsn(page, lsn)
    elif bp.page_get_prune_xid(page) != prstate.new_prune_xid or bp.page_is_full(page):
        # Nothing to remove: just fix the hints (no WAL).
        _U32.pack_into(page, 20, prstate.new_prune_xid)
        bp.page_clear_full(page)
        mark_buffer_dirty_hint(buffer, True)
    return ndeleted, len(prstate.nowdead)


def heap_page_prune_opt(rel, buffer: int, force: bool = False) -> None:
    """heap_page_prune_opt: prune the page if that looks worthwhile and the
    cleanup lock is free (see the module docstring). The caller holds a pin and
    no lock. Cheap when there is nothing to do: a few header reads. ``force``
    skips the free-space test (a long HOT chain walk asks for it)."""
    page = bufmgr.buffer_get_page(buffer)
    prune_xid = _U32.unpack_from(page, 20)[0]
    if not prune_xid:
        return
    ff = rel.fillfactor or 100
    minfree = _BLCKSZ * (100 - ff) // 100
    if minfree < _MINFREE_FLOOR:
        minfree = _MINFREE_FLOOR
    if not (force or bp.page_is_full(page) or bp.page_get_heap_free_space(page) < minfree):
        return
    if not global_vis_is_removable_xid(prune_xid):
        return
    if xlog.recovery_in_progress():
        return
    if not conditional_lock_buffer_for_cleanup(buffer):
        return
    try:
        if force or bp.page_is_full(page) or bp.page_get_heap_free_space(page) < minfree:
            ndeleted, nnewlpdead = heap_page_prune(rel, buffer)
            # pgstat_update_heap_dead_tuples: tuples reclaimed are no longer dead
            # (those left LP_DEAD are, until VACUUM removes their index entries).
            if ndeleted > nnewlpdead:
                ps = rel.pgstat_info or pgstat_init_relation(rel)
                ps.delta_dead -= ndeleted - nnewlpdead
    finally:
        bufmgr.lock_buffer(buffer, BUFFER_LOCK_UNLOCK)


# -- HOT chain roots --------------------------------------------------------------------------------

def heap_get_root_tuples(page) -> list[int]:
    """heap_get_root_tuples: for every tuple on the page, the offset of the root
    line pointer of its HOT chain (index 0 unused; 0 = not reachable)."""
    maxoff = bp.page_get_max_offset_number(page)
    roots = [0] * (maxoff + 1)
    for offnum in range(1, maxoff + 1):
        off, flags, _length = bp.item_id(page, offnum)
        if flags == bp.LP_UNUSED or flags == bp.LP_DEAD:
            continue
        if flags == bp.LP_NORMAL:
            im2 = _infomask2(page, off)
            if im2 & HEAP_ONLY_TUPLE:
                continue
            roots[offnum] = offnum
            if not im2 & HEAP_HOT_UPDATED:
                continue
            nextoff = struct.unpack_from("<H", page, off + 16)[0]
            prior_xmax = _XMIN_XMAX.unpack_from(page, off)[1]
        else:  # redirect
            nextoff = off
            prior_xmax = 0
        while True:
            if nextoff < 1 or nextoff > maxoff:
                break
            noff, nflags, _nlen = bp.item_id(page, nextoff)
            if nflags != bp.LP_NORMAL:
                break
            xmin, xmax = _XMIN_XMAX.unpack_from(page, noff)
            if prior_xmax and xmin != prior_xmax:
                break
            roots[nextoff] = offnum
            if not _infomask2(page, noff) & HEAP_HOT_UPDATED:
                break
            nextoff = struct.unpack_from("<H", page, noff + 16)[0]
            prior_xmax = xmax
    return roots
