"""Where new heap tuples go — mirrors src/backend/access/heap/hio.c (PostgreSQL 15).

``relation_get_buffer_for_tuple`` finds a page with room for a tuple of a given
length and returns its buffer pinned and exclusively locked:

1. the relation's insertion target block (``rel.target_block``, this backend's
   cache of the last page it inserted into), else the free space map's answer,
   else the relation's last page;
2. a candidate that proves too full is recorded in the FSM with its real free
   space and the FSM is asked again (RecordAndGetPageWithFreeSpace);
3. failing everything, the relation is extended by one page (under the relation
   extension lock), which becomes the new target. New pages are not put in the
   FSM: this backend keeps filling them, as PostgreSQL does.

Pages are filled up to ``rel.fillfactor`` percent: an insert needs
len + (100 - fillfactor)% of the page free, so UPDATEs find room left for
their new versions on the same page (HOT).

For an UPDATE whose new version goes to another page, the caller passes the
old tuple's buffer (pinned, unlocked) as ``other_buffer``: both are locked in
block order to avoid deadlocks with other updaters, and both come back locked.

Where tusk differs: no BulkInsertState ring or bulk extension
(RelationAddExtraBlocks), no visibility map pins. The relation extension lock
is the lock manager's (storage.lmgr) when it provides
``lock_relation_for_extension``; without it, a racing extender that finds the
"new" page already initialised by another one just extends again.
"""

from __future__ import annotations

from access.heaptuple import CTID, T_CTID
from storage import bufmgr, freespace, smgr
from storage.bufmgr import (
    BUFFER_LOCK_EXCLUSIVE,
    BUFFER_LOCK_UNLOCK,
    P_NEW,
    RBM_ZERO_AND_LOCK,
    InvalidBuffer,
)
from storage.bufpage import (
    BLCKSZ,
    InvalidOffsetNumber,
    MaxHeapTuplesPerPage,
    item_id,
    page_add_item,
    page_get_heap_free_space,
    page_init,
    page_is_new,
)
from storage.relfilenode import MAIN_FORKNUM, InvalidBlockNumber
from utils.elog import PANIC, PgError

MaxHeapTupleSize = BLCKSZ - 32  # BLCKSZ - MAXALIGN(SizeOfPageHeaderData + sizeof(ItemIdData))
HEAP_DEFAULT_FILLFACTOR = 100

# heap_insert options (heapam.h)
HEAP_INSERT_SKIP_FSM = 0x0002
HEAP_INSERT_FROZEN = 0x0004
HEAP_INSERT_NO_LOGICAL = 0x0008
HEAP_INSERT_SPECULATIVE = 0x0010

# nearlyEmptyFreeSpace: pages with only this much line pointer overhead count as empty.
_NEARLY_EMPTY_FREE_SPACE = MaxHeapTupleSize - (MaxHeapTuplesPerPage // 8 * 4)


def relation_get_target_page_free_space(rel, default_ff: int = HEAP_DEFAULT_FILLFACTOR) -> int:
    """RelationGetTargetPageFreeSpace: bytes to leave free on each page."""
    ff = getattr(rel, "fillfactor", default_ff) or default_ff
    return BLCKSZ * (100 - ff) // 100


def relation_put_heap_tuple(rel, buffer: int, tup: bytearray, blkno: int) -> int:
    """RelationPutHeapTuple: place a formed tuple on the (exclusively locked)
    page and stamp its t_ctid with its own location; returns the offset. A
    failure is a PANIC: the caller already decided it fits, inside what would
    be a critical section."""
    page = bufmgr.buffer_get_page(buffer)
    offnum = page_add_item(page, tup, InvalidOffsetNumber, False, True)
    if offnum == InvalidOffsetNumber:
        raise PgError("XX000", "failed to add tuple to page", severity=PANIC)
    off = item_id(page, offnum)[0]
    CTID.pack_into(page, off + T_CTID, blkno >> 16, blkno & 0xFFFF, offnum)
    return offnum


def _row_too_big(length: int) -> PgError:
    return PgError("54000", f"row is too big: size {length}, maximum size {MaxHeapTupleSize}")


def _lock_relation_for_extension(rel):
    """LockRelationForExtension through the lock manager (storage.lmgr), when this
    process is attached to it; returns the matching unlock (None: no lock taken)."""
    try:
        from storage.lmgr import lmgr
        from storage.lmgr.lock import _st as lock_state
    except ImportError:
        return None
    if lock_state.slot < 0:
        return None
    lmgr.lock_relation_for_extension(rel.oid)
    return lmgr.unlock_relation_for_extension


def _extend(rel) -> int:
    """ReadBuffer(P_NEW) under the extension lock: a new, initialised, exclusively
    locked page at the end of the relation."""
    reln = rel.smgr
    while True:
        unlock = _lock_relation_for_extension(rel)
        try:
            buf = bufmgr.read_buffer(reln, P_NEW, MAIN_FORKNUM, RBM_ZERO_AND_LOCK)
        finally:
            if unlock is not None:
                unlock(rel.oid)
        page = bufmgr.buffer_get_page(buf)
        if page_is_new(page):
            page_init(page, BLCKSZ, 0)
            bufmgr.mark_buffer_dirty(buf)
            return buf
        if unlock is not None:
            raise PgError("XX000", f"page {bufmgr.buffer_get_block_number(buf)} of relation "
                                   f'"{rel.relname}" should be empty but is not')
        # Without an extension lock another backend extended to the same block
        # first and has already used it: try the next one.
        bufmgr.unlock_release_buffer(buf)


def relation_get_buffer_for_tuple(rel, length: int, other_buffer: int = InvalidBuffer,
                                  options: int = 0) -> int:
    """RelationGetBufferForTuple: a pinned, exclusively locked buffer with room
    for a tuple of ``length`` bytes (see the module docstring). With
    ``other_buffer`` (pinned by the caller, unlocked) it is locked too, in
    block order; the result may be other_buffer itself."""
    use_fsm = not options & HEAP_INSERT_SKIP_FSM
    length = (length + 7) & ~7
    if length > MaxHeapTupleSize:
        raise _row_too_big(length)
    save_free_space = relation_get_target_page_free_space(rel)
    if length + save_free_space > _NEARLY_EMPTY_FREE_SPACE:
        target_free_space = max(length, _NEARLY_EMPTY_FREE_SPACE)
    else:
        target_free_space = length + save_free_space
    other_block = (bufmgr.buffer_get_block_number(other_buffer)
                   if other_buffer != InvalidBuffer else InvalidBlockNumber)
    reln = rel.smgr

    target = rel.target_block
    if target == InvalidBlockNumber and use_fsm:
        target = freespace.get_page_with_free_space(rel, target_free_space)
    if target == InvalidBlockNumber:
        nblocks = smgr.smgr_nblocks(reln, MAIN_FORKNUM)
        if nblocks > 0:
            target = nblocks - 1

    while True:
        while target != InvalidBlockNumber:
            if other_buffer == InvalidBuffer:
                buffer = bufmgr.read_buffer(reln, target)
                bufmgr.lock_buffer(buffer, BUFFER_LOCK_EXCLUSIVE)
            elif other_block == target:
                buffer = other_buffer
                bufmgr.lock_buffer(buffer, BUFFER_LOCK_EXCLUSIVE)
            elif other_block < target:
                buffer = bufmgr.read_buffer(reln, target)
                bufmgr.lock_buffer(other_buffer, BUFFER_LOCK_EXCLUSIVE)
                bufmgr.lock_buffer(buffer, BUFFER_LOCK_EXCLUSIVE)
            else:
                buffer = bufmgr.read_buffer(reln, target)
                bufmgr.lock_buffer(buffer, BUFFER_LOCK_EXCLUSIVE)
                bufmgr.lock_buffer(other_buffer, BUFFER_LOCK_EXCLUSIVE)
            page = bufmgr.buffer_get_page(buffer)
            if page_is_new(page):
                page_init(page, BLCKSZ, 0)
                bufmgr.mark_buffer_dirty(buffer)
            page_free = page_get_heap_free_space(page)
            if target_free_space <= page_free:
                rel.target_block = target
                return buffer
            # Not enough room: let go and look elsewhere.
            bufmgr.lock_buffer(buffer, BUFFER_LOCK_UNLOCK)
            if other_buffer == InvalidBuffer:
                bufmgr.release_buffer(buffer)
            elif other_block != target:
                bufmgr.lock_buffer(other_buffer, BUFFER_LOCK_UNLOCK)
                bufmgr.release_buffer(buffer)
            if not use_fsm:
                break
            target = freespace.record_and_get_page_with_free_space(
                rel, target, page_free, target_free_space)

        # Extend the relation.
        buffer = _extend(rel)
        page = bufmgr.buffer_get_page(buffer)
        if other_buffer != InvalidBuffer:
            # other_buffer has the lower block number: lock it first unless that
            # is free; if we had to wait, somebody may have used our new page.
            if not bufmgr.conditional_lock_buffer(other_buffer):
                bufmgr.lock_buffer(buffer, BUFFER_LOCK_UNLOCK)
                bufmgr.lock_buffer(other_buffer, BUFFER_LOCK_EXCLUSIVE)
                bufmgr.lock_buffer(buffer, BUFFER_LOCK_EXCLUSIVE)
                if length > page_get_heap_free_space(page):
                    target = bufmgr.buffer_get_block_number(buffer)
                    bufmgr.lock_buffer(other_buffer, BUFFER_LOCK_UNLOCK)
                    bufmgr.unlock_release_buffer(buffer)
                    continue
        if length > page_get_heap_free_space(page):
            raise PgError("XX000", f"tuple is too big: size {length}", severity=PANIC)
        rel.target_block = bufmgr.buffer_get_block_number(buffer)
        return buffer
