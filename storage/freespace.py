"""The free space map — mirrors src/backend/storage/freespace/freespace.c and
fsmpage.c (PostgreSQL 15), page for page.

A relation's FSM fork records, for every heap page, how much free space it
had when last looked at, as a one-byte category (free bytes / 32; 255 means
"at least MaxFSMRequestSize"). The categories sit in the leaves of a tree of
FSM pages, three levels deep; every FSM page is itself a binary max-heap of
bytes over its slots (``fp_nodes``: 4095 inner nodes, then 4069 leaves), so
its root byte says the most free space anywhere below it. Upper-level pages
hold, in their leaves, the root values of the pages below them. Searching for
a page with room for N bytes walks down from the root page following nodes
>= the needed category; ``fp_next_slot`` spreads concurrent searchers over the
page (they start where the last search stopped).

The FSM is only a hint: it is not WAL-logged (redo of heap records updates it
as a side effect), torn or stale pages are tolerated (pages are read with
RBM_ZERO_ON_ERROR and an inconsistent tree is rebuilt when a search notices),
and every caller re-checks the heap page it is told about. Changes dirty the
buffer as a hint (MarkBufferDirtyHint).

The bytes are PostgreSQL's (FSMPageData after a standard page header at byte
24: int32 fp_next_slot, uint8 fp_nodes[8164]) and the block numbering of the
fork is PostgreSQL's (fsm_logical_to_physical), so pg_freespacemap's reading
of a tusk FSM fork would agree.

Where tusk differs: extending the FSM fork takes no relation extension lock
(the functions here see only the storage manager's relation, not its OID): two
processes extending it at once both write the same empty pages, which at worst
loses a hint.
"""

from __future__ import annotations

import struct

from storage import bufmgr, smgr
from storage.bufmgr import (
    BUFFER_LOCK_EXCLUSIVE,
    BUFFER_LOCK_SHARE,
    BUFFER_LOCK_UNLOCK,
    RBM_ZERO_ON_ERROR,
    InvalidBuffer,
)
from storage.bufpage import BLCKSZ, page_init, page_is_new, page_set_checksum_inplace
from storage.relfilenode import FSM_FORKNUM, InvalidBlockNumber, RelFileNode
from utils import elog

# fsm_internals.h / freespace.c
FSM_CATEGORIES = 256
FSM_CAT_STEP = BLCKSZ // FSM_CATEGORIES              # 32
MaxHeapTupleSize = BLCKSZ - 32                        # MAXALIGN(page header + one ItemId)
MaxFSMRequestSize = MaxHeapTupleSize
_CONTENTS = 24                                        # MAXALIGN(SizeOfPageHeaderData)
_NODES = _CONTENTS + 4                                # offsetof(FSMPageData, fp_nodes)
NodesPerPage = BLCKSZ - _CONTENTS - 4                 # 8164
NonLeafNodesPerPage = BLCKSZ // 2 - 1                 # 4095
LeafNodesPerPage = NodesPerPage - NonLeafNodesPerPage  # 4069
SlotsPerFSMPage = LeafNodesPerPage
FSM_TREE_DEPTH = 3 if SlotsPerFSMPage >= 1626 else 4
FSM_ROOT_LEVEL = FSM_TREE_DEPTH - 1
FSM_BOTTOM_LEVEL = 0

_NEXT_SLOT = struct.Struct("<i")


# -- categories ---------------------------------------------------------------------------------

def fsm_space_avail_to_cat(avail: int) -> int:
    """The category recorded for a page with ``avail`` free bytes (rounded down)."""
    if avail >= MaxFSMRequestSize:
        return 255
    cat = avail // FSM_CAT_STEP
    return 254 if cat > 254 else cat


def fsm_space_cat_to_avail(cat: int) -> int:
    """The free space a category guarantees (its lower bound)."""
    if cat == 255:
        return MaxFSMRequestSize
    return cat * FSM_CAT_STEP


def fsm_space_needed_to_cat(needed: int) -> int:
    """The least category that surely has ``needed`` bytes (rounded up)."""
    if needed > MaxFSMRequestSize:
        raise elog.PgError("XX000", f"invalid FSM request size {needed}")
    if needed == 0:
        return 1
    cat = (needed + FSM_CAT_STEP - 1) // FSM_CAT_STEP
    return 255 if cat > 255 else cat


# -- addressing -----------------------------------------------------------------------------

def fsm_logical_to_physical(level: int, logpageno: int) -> int:
    """The FSM fork block holding page (level, logpageno): the tree stored depth-first."""
    leafno = logpageno
    for _ in range(level):
        leafno *= SlotsPerFSMPage
    pages = 0
    for _ in range(FSM_TREE_DEPTH):
        pages += leafno + 1
        leafno //= SlotsPerFSMPage
    pages -= level
    return pages - 1


def fsm_get_location(heapblk: int) -> tuple[int, int, int]:
    """(level, logpageno, slot) of the bottom-level byte for heap block ``heapblk``."""
    return FSM_BOTTOM_LEVEL, heapblk // SlotsPerFSMPage, heapblk % SlotsPerFSMPage


def fsm_get_heap_blk(logpageno: int, slot: int) -> int:
    return logpageno * SlotsPerFSMPage + slot


def fsm_get_parent(level: int, logpageno: int) -> tuple[int, int, int]:
    """(level, logpageno, slot) of the parent page's byte for this page."""
    return level + 1, logpageno // SlotsPerFSMPage, logpageno % SlotsPerFSMPage


def fsm_get_child(level: int, logpageno: int, slot: int) -> tuple[int, int]:
    return level - 1, logpageno * SlotsPerFSMPage + slot


# -- one FSM page (fsmpage.c) -----------------------------------------------------------------

def fsm_get_avail(page, slot: int) -> int:
    return page[_NODES + NonLeafNodesPerPage + slot]


def fsm_get_max_avail(page) -> int:
    return page[_NODES]


def fsm_set_avail(page, slot: int, value: int) -> bool:
    """Set a leaf and fix its ancestors on the page; True if anything changed.
    The caller holds the page exclusively."""
    base = _NODES
    nodeno = NonLeafNodesPerPage + slot
    old = page[base + nodeno]
    if old == value and value <= page[base]:
        return False
    page[base + nodeno] = value
    while nodeno > 0:
        nodeno = (nodeno - 1) >> 1
        lchild = 2 * nodeno + 1
        new = page[base + lchild]
        if lchild + 1 < NodesPerPage:
            r = page[base + lchild + 1]
            if r > new:
                new = r
        if page[base + nodeno] == new:
            break
        page[base + nodeno] = new
    if value > page[base]:
        fsm_rebuild_page(page)  # the tree was corrupt
    return True


def fsm_rebuild_page(page) -> bool:
    """Recompute every inner node from the leaves; True if anything changed."""
    base = _NODES
    nodes = bytearray(page[base:base + NodesPerPage])
    changed = False
    for nodeno in range(NonLeafNodesPerPage - 1, -1, -1):
        lchild = 2 * nodeno + 1
        new = nodes[lchild] if lchild < NodesPerPage else 0
        if lchild + 1 < NodesPerPage and nodes[lchild + 1] > new:
            new = nodes[lchild + 1]
        if nodes[nodeno] != new:
            nodes[nodeno] = new
            changed = True
    if changed:
        page[base:base + NonLeafNodesPerPage] = nodes[:NonLeafNodesPerPage]
    return changed


def fsm_truncate_avail(page, nslots: int) -> bool:
    """Zero every leaf from ``nslots`` on; True if anything changed."""
    start = _NODES + NonLeafNodesPerPage + nslots
    end = _NODES + NodesPerPage
    if not any(page[start:end]):
        return False
    page[start:end] = bytes(end - start)
    fsm_rebuild_page(page)
    return True


def _rightneighbor(x: int) -> int:
    """One node to the right, wrapping to the leftmost node one level up."""
    x += 1
    if ((x + 1) & x) == 0:
        x = (x - 1) >> 1
    return x


def fsm_search_avail(buf: int, minvalue: int, advancenext: bool,
                     exclusive_lock_held: bool) -> int:
    """A slot of the page in ``buf`` with category >= minvalue, or -1. Starts at
    fp_next_slot and widens the search to the right (wrapping), so the first
    suitable slot at or after it is found in O(log n). Updates fp_next_slot
    (a hint, even under a share lock). Rebuilds a corrupt tree it runs into."""
    page = bufmgr.buffer_get_page(buf)
    base = _NODES
    while True:
        if page[base] < minvalue:
            return -1
        target = _NEXT_SLOT.unpack_from(page, _CONTENTS)[0]
        if target < 0 or target >= LeafNodesPerPage:
            target = 0
        nodeno = target + NonLeafNodesPerPage
        while nodeno > 0:
            if page[base + nodeno] >= minvalue:
                break
            nodeno = (_rightneighbor(nodeno) - 1) >> 1
        corrupt = False
        while nodeno < NonLeafNodesPerPage:
            child = 2 * nodeno + 1
            if child < NodesPerPage and page[base + child] >= minvalue:
                nodeno = child
                continue
            child += 1
            if child < NodesPerPage and page[base + child] >= minvalue:
                nodeno = child
            else:
                corrupt = True
                break
        if corrupt:
            tag = bufmgr.buffer_get_tag(buf)
            elog.debug1(f"fixing corrupt FSM block {tag[4]}, relation "
                        f"{tag[0]}/{tag[1]}/{tag[2]}")
            if not exclusive_lock_held:
                bufmgr.lock_buffer(buf, BUFFER_LOCK_UNLOCK)
                bufmgr.lock_buffer(buf, BUFFER_LOCK_EXCLUSIVE)
                exclusive_lock_held = True
            fsm_rebuild_page(page)
            _mark_dirty_hint(buf)
            continue
        slot = nodeno - NonLeafNodesPerPage
        _NEXT_SLOT.pack_into(page, _CONTENTS, slot + (1 if advancenext else 0))
        return slot


def _mark_dirty_hint(buf: int) -> None:
    from access.heapam_visibility import mark_buffer_dirty_hint

    mark_buffer_dirty_hint(buf, False)


# -- reading and extending the fork -----------------------------------------------------------

def fsm_extend(reln: smgr.SMgrRelation, fsm_nblocks: int) -> None:
    """Make the FSM fork at least ``fsm_nblocks`` long, with empty FSM pages."""
    page = bytearray(BLCKSZ)
    page_init(page, BLCKSZ, 0)
    # PostgreSQL holds the relation extension lock here (see the module docstring).
    cached = reln.cached_nblocks[FSM_FORKNUM]
    if cached in (0, InvalidBlockNumber) and not smgr.smgr_exists(reln, FSM_FORKNUM):
        smgr.smgr_create(reln, FSM_FORKNUM, is_redo=True)  # tolerate a racing creator
    reln.cached_nblocks[FSM_FORKNUM] = InvalidBlockNumber
    now = smgr.smgr_nblocks(reln, FSM_FORKNUM)
    checksums = bufmgr._pool is not None and bufmgr._pool.checksums
    while now < fsm_nblocks:
        if checksums:
            page_set_checksum_inplace(page, now)
        smgr.smgr_extend(reln, FSM_FORKNUM, now, page)
        now += 1
    reln.cached_nblocks[FSM_FORKNUM] = now


def fsm_readbuf(reln: smgr.SMgrRelation, level: int, logpageno: int, extend: bool) -> int:
    """The pinned buffer of an FSM page (initialised if new); InvalidBuffer if
    it is past the end of the fork and ``extend`` is false."""
    blkno = fsm_logical_to_physical(level, logpageno)
    cached = reln.cached_nblocks
    n = cached[FSM_FORKNUM]
    if n == InvalidBlockNumber or blkno >= n:
        cached[FSM_FORKNUM] = InvalidBlockNumber
        if smgr.smgr_exists(reln, FSM_FORKNUM):
            n = smgr.smgr_nblocks(reln, FSM_FORKNUM)
        else:
            n = 0
        cached[FSM_FORKNUM] = n
    if blkno >= n:
        if not extend:
            return InvalidBuffer
        fsm_extend(reln, blkno + 1)
    buf = bufmgr.read_buffer(reln, blkno, FSM_FORKNUM, RBM_ZERO_ON_ERROR)
    page = bufmgr.buffer_get_page(buf)
    if page_is_new(page):
        bufmgr.lock_buffer(buf, BUFFER_LOCK_EXCLUSIVE)
        if page_is_new(page):
            page_init(page, BLCKSZ, 0)
        bufmgr.lock_buffer(buf, BUFFER_LOCK_UNLOCK)
    return buf


# -- the tree (freespace.c) -------------------------------------------------------------------

def _fsm_set_and_search(reln: smgr.SMgrRelation, level: int, logpageno: int, slot: int,
                        new_value: int, min_value: int) -> int:
    buf = fsm_readbuf(reln, level, logpageno, True)
    bufmgr.lock_buffer(buf, BUFFER_LOCK_EXCLUSIVE)
    try:
        if fsm_set_avail(bufmgr.buffer_get_page(buf), slot, new_value):
            _mark_dirty_hint(buf)
        newslot = -1
        if min_value:
            newslot = fsm_search_avail(buf, min_value, level == FSM_BOTTOM_LEVEL, True)
    finally:
        bufmgr.unlock_release_buffer(buf)
    return newslot


def _fsm_search(reln: smgr.SMgrRelation, min_cat: int) -> int:
    restarts = 0
    level, logpageno = FSM_ROOT_LEVEL, 0
    while True:
        buf = fsm_readbuf(reln, level, logpageno, False)
        max_avail = 0
        if buf != InvalidBuffer:
            bufmgr.lock_buffer(buf, BUFFER_LOCK_SHARE)
            try:
                slot = fsm_search_avail(buf, min_cat, level == FSM_BOTTOM_LEVEL, False)
                if slot == -1:
                    max_avail = fsm_get_max_avail(bufmgr.buffer_get_page(buf))
            finally:
                bufmgr.unlock_release_buffer(buf)
        else:
            slot = -1
        if slot != -1:
            if level == FSM_BOTTOM_LEVEL:
                return fsm_get_heap_blk(logpageno, slot)
            level, logpageno = fsm_get_child(level, logpageno, slot)
        elif level == FSM_ROOT_LEVEL:
            return InvalidBlockNumber
        else:
            # The parent promised more than this page has: fix it and start over.
            plevel, plogpageno, pslot = fsm_get_parent(level, logpageno)
            _fsm_set_and_search(reln, plevel, plogpageno, pslot, max_avail, 0)
            restarts += 1
            if restarts > 10000:
                return InvalidBlockNumber
            level, logpageno = FSM_ROOT_LEVEL, 0


def get_page_with_free_space(rel, space_needed: int) -> int:
    """GetPageWithFreeSpace: a heap block the FSM believes has ``space_needed``
    bytes free, or InvalidBlockNumber."""
    return _fsm_search(rel.smgr, fsm_space_needed_to_cat(space_needed))


def record_and_get_page_with_free_space(rel, old_page: int, old_space_avail: int,
                                        space_needed: int) -> int:
    """RecordAndGetPageWithFreeSpace: record ``old_page``'s real free space and
    look for another page with ``space_needed`` (near it first)."""
    reln = rel.smgr
    old_cat = fsm_space_avail_to_cat(old_space_avail)
    search_cat = fsm_space_needed_to_cat(space_needed)
    level, logpageno, slot = fsm_get_location(old_page)
    search_slot = _fsm_set_and_search(reln, level, logpageno, slot, old_cat, search_cat)
    if search_slot != -1:
        return fsm_get_heap_blk(logpageno, search_slot)
    return _fsm_search(reln, search_cat)


def record_page_with_free_space(rel, heap_blk: int, space_avail: int) -> None:
    """RecordPageWithFreeSpace (bottom level only: FreeSpaceMapVacuum fixes the
    upper levels)."""
    level, logpageno, slot = fsm_get_location(heap_blk)
    _fsm_set_and_search(rel.smgr, level, logpageno, slot,
                        fsm_space_avail_to_cat(space_avail), 0)


def xlog_record_page_with_free_space(rnode: RelFileNode, heap_blk: int,
                                     space_avail: int) -> None:
    """XLogRecordPageWithFreeSpace: the same from redo, where there is no
    Relation (and the fork may not exist yet)."""
    reln = smgr.smgr_open(rnode)
    level, logpageno, slot = fsm_get_location(heap_blk)
    blkno = fsm_logical_to_physical(level, logpageno)
    if not smgr.smgr_exists(reln, FSM_FORKNUM):
        smgr.smgr_create(reln, FSM_FORKNUM, is_redo=True)
    n = smgr.smgr_nblocks(reln, FSM_FORKNUM)
    while n <= blkno:
        smgr.smgr_extend(reln, FSM_FORKNUM, n, None)
        n += 1
    buf = bufmgr.read_buffer(reln, blkno, FSM_FORKNUM, RBM_ZERO_ON_ERROR)
    bufmgr.lock_buffer(buf, BUFFER_LOCK_EXCLUSIVE)
    try:
        page = bufmgr.buffer_get_page(buf)
        if page_is_new(page):
            page_init(page, BLCKSZ, 0)
        if fsm_set_avail(page, slot, fsm_space_avail_to_cat(space_avail)):
            _mark_dirty_hint(buf)
    finally:
        bufmgr.unlock_release_buffer(buf)


def get_recorded_free_space(rel, heap_blk: int) -> int:
    """GetRecordedFreeSpace: what the FSM says about one heap block (0 if nothing)."""
    level, logpageno, slot = fsm_get_location(heap_blk)
    buf = fsm_readbuf(rel.smgr, level, logpageno, False)
    if buf == InvalidBuffer:
        return 0
    try:
        cat = fsm_get_avail(bufmgr.buffer_get_page(buf), slot)
    finally:
        bufmgr.release_buffer(buf)
    return fsm_space_cat_to_avail(cat)


def _fsm_vacuum_page(reln: smgr.SMgrRelation, level: int, logpageno: int, start: int,
                     end: int) -> tuple[int, bool]:
    """(max category on the page, eof): fix the upper nodes covering heap blocks
    [start, end) below this page, depth first."""
    buf = fsm_readbuf(reln, level, logpageno, False)
    if buf == InvalidBuffer:
        return 0, True
    try:
        page = bufmgr.buffer_get_page(buf)
        if level > FSM_BOTTOM_LEVEL:
            s_level, s_page, s_slot = fsm_get_location(start)
            e_level, e_page, e_slot = fsm_get_location(end - 1)
            while s_level < level:
                s_level, s_page, s_slot = fsm_get_parent(s_level, s_page)
                e_level, e_page, e_slot = fsm_get_parent(e_level, e_page)
            if s_page == logpageno:
                start_slot = s_slot
            elif s_page > logpageno:
                start_slot = SlotsPerFSMPage
            else:
                start_slot = 0
            if e_page == logpageno:
                end_slot = e_slot
            elif e_page > logpageno:
                end_slot = SlotsPerFSMPage - 1
            else:
                end_slot = -1
            eof = False
            leaf0 = _NODES + NonLeafNodesPerPage
            for slot in range(start_slot, end_slot + 1):
                if eof:
                    # Past the end of the fork: what is left must read 0.
                    if any(page[leaf0 + slot:leaf0 + end_slot + 1]):
                        bufmgr.lock_buffer(buf, BUFFER_LOCK_EXCLUSIVE)
                        for s in range(slot, end_slot + 1):
                            if page[leaf0 + s]:
                                fsm_set_avail(page, s, 0)
                        _mark_dirty_hint(buf)
                        bufmgr.lock_buffer(buf, BUFFER_LOCK_UNLOCK)
                    break
                clevel, cpage = fsm_get_child(level, logpageno, slot)
                child_avail, eof = _fsm_vacuum_page(reln, clevel, cpage, start, end)
                if fsm_get_avail(page, slot) != child_avail:
                    bufmgr.lock_buffer(buf, BUFFER_LOCK_EXCLUSIVE)
                    fsm_set_avail(page, slot, child_avail)
                    _mark_dirty_hint(buf)
                    bufmgr.lock_buffer(buf, BUFFER_LOCK_UNLOCK)
        max_avail = fsm_get_max_avail(page)
        _NEXT_SLOT.pack_into(page, _CONTENTS, 0)  # prefer low pages (truncation)
    finally:
        bufmgr.release_buffer(buf)
    return max_avail, False


def free_space_map_vacuum(rel) -> None:
    """FreeSpaceMapVacuum: bring every upper-level node up to date."""
    _fsm_vacuum_page(rel.smgr, FSM_ROOT_LEVEL, 0, 0, InvalidBlockNumber)


def free_space_map_vacuum_range(rel, start: int, end: int) -> None:
    """FreeSpaceMapVacuumRange: the same for heap blocks [start, end)."""
    if end > start:
        _fsm_vacuum_page(rel.smgr, FSM_ROOT_LEVEL, 0, start, end)


def free_space_map_prepare_truncate_rel(rel, nblocks: int) -> int:
    """FreeSpaceMapPrepareTruncateRel: forget heap blocks >= nblocks; returns the
    FSM fork length to truncate to (InvalidBlockNumber: leave it)."""
    reln = rel.smgr
    level, logpageno, slot = fsm_get_location(nblocks)
    if slot == 0:
        new_nfsmblocks = fsm_logical_to_physical(level, logpageno)
    else:
        buf = fsm_readbuf(reln, level, logpageno, False)
        if buf == InvalidBuffer:
            return InvalidBlockNumber
        bufmgr.lock_buffer(buf, BUFFER_LOCK_EXCLUSIVE)
        try:
            fsm_truncate_avail(bufmgr.buffer_get_page(buf), slot)
            bufmgr.mark_buffer_dirty(buf)
        finally:
            bufmgr.unlock_release_buffer(buf)
        new_nfsmblocks = fsm_logical_to_physical(level, logpageno) + 1
    if not smgr.smgr_exists(reln, FSM_FORKNUM) or \
            smgr.smgr_nblocks(reln, FSM_FORKNUM) <= new_nfsmblocks:
        return InvalidBlockNumber
    return new_nfsmblocks
