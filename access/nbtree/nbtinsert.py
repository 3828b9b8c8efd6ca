"""B-tree insertion — mirrors src/backend/access/nbtree/nbtinsert.c (PostgreSQL 15):
_bt_doinsert, _bt_search_insert (the rightmost-leaf fast path),
_bt_check_unique, _bt_findinsertloc, _bt_insertonpg, _bt_split,
_bt_insert_parent, _bt_finish_split, _bt_getstackbuf and _bt_newroot.

Locking protocol (nbtree/README). An inserter write-locks the leaf it inserts
into. A split keeps the original page as the left half (same block), builds the
right half on a new block, links it in (left -> right -> old right sibling,
whose left link is fixed under its own lock) and flags the left half
BTP_INCOMPLETE_SPLIT; then, still holding the left half, it write-locks the
parent (re-found through the descent stack, moving right if the parent split
meanwhile) and inserts the downlink for the right half, clearing the flag in
the same WAL record. Locks are taken left to right within a level and bottom
up across levels (the metapage last), so there are no deadlocks. Readers that
arrive between the two steps reach the right half through the left half's right
link; an inserter that finds an incomplete split (the splitter crashed before
the parent insertion) finishes it.

Uniqueness (_bt_check_unique): with the leaf write-locked, every index entry
equal to the new key is checked against the heap with a dirty snapshot
(access/heapam.heap_hot_search + utils/snapmgr.new_dirty_snapshot): a tuple
whose inserting or deleting transaction is still running makes us release the
leaf, wait for that transaction (storage/lmgr xact_lock_table_wait) and start
over; a live tuple is a unique violation (23505); dead ones are skipped. Keys
with a NULL never conflict.

WAL: XLOG_BTREE_INSERT_LEAF / _UPPER / _META, XLOG_BTREE_SPLIT_L / _R (left
page incrementally, the right page's items in full), XLOG_BTREE_NEWROOT.

Where tusk differs: no posting lists (deduplication) and no simple deletion of
LP_DEAD items before a split (_bt_delete_or_dedup_one_page); no speculative
insertion (ON CONFLICT); dead duplicates are not marked LP_DEAD; the
CREATE INDEX CONCURRENTLY recheck of our own tuple (SnapshotSelf) is skipped;
btpo_cycleid is always 0 (no shared vacuum cycle ids).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

from access import xlog
from access.nbtree.nbtdefs import (
    BT_MAX_ITEM_SIZE,
    BT_READ,
    BT_SPECIAL,
    BT_WRITE,
    BTP_HAS_GARBAGE,
    BTP_IGNORE,
    BTP_INCOMPLETE_SPLIT,
    BTP_LEAF,
    BTP_ROOT,
    BTP_SPLIT_END,
    BTREE_METAPAGE,
    BTREE_NOVAC_VERSION,
    MINUS_INFINITY,
    OFF_FLAGS,
    OFF_PREV,
    OPAQUE,
    P_FIRSTKEY,
    P_HIKEY,
    P_NONE,
    U16,
    U32,
    XL_INSERT,
    XL_METADATA,
    XL_NEWROOT,
    XL_SPLIT,
    XLOG_BTREE_INSERT_LEAF,
    XLOG_BTREE_INSERT_META,
    XLOG_BTREE_INSERT_UPPER,
    XLOG_BTREE_NEWROOT,
    XLOG_BTREE_SPLIT_L,
    XLOG_BTREE_SPLIT_R,
    set_downlink,
    tuple_size,
)
from access.nbtree.nbtpage import (
    META,
    META_OFFSET,
    InvalidBuffer,
    bt_allocbuf,
    bt_getbuf,
    bt_getmeta,
    bt_getrootheight,
    bt_pageinit,
    bt_relandgetbuf,
    bt_relbuf,
    critical_section_failed,
    index_corrupted,
    page_append_items,
)
from access.nbtree.nbtsearch import (
    BTStack,
    _compare_item,
    bt_binsrch,
    bt_get_endpoint,
    bt_search,
    page_max_offset,
)
from access.nbtree.nbtsplitloc import bt_findsplitloc
from access.nbtree.nbtutils import (
    BTCache,
    BTScanInsert,
    bt_mkscankey,
    bt_truncate,
    check_tuple_size,
    get_cache,
    unique_violation,
)
from access.xlog_internal import RM_BTREE_ID
from access.xloginsert import BlockRef
from storage.bufmgr import (
    buffer_get_block_number,
    buffer_get_page,
    conditional_lock_buffer,
    mark_buffer_dirty,
    read_buffer,
    release_buffer,
)
from storage.bufpage import BLCKSZ, page_add_item, page_set_lsn
from storage.relfilenode import MAIN_FORKNUM, InvalidBlockNumber
from utils import elog

_ITEMID = struct.Struct("<I")
_LOWER_UPPER_SPECIAL = struct.Struct("<HHH")
_TID = struct.Struct("<HHH")
BTREE_FASTPATH_MIN_LEVEL = 2

# Hooks for the heap and lock manager, resolved on first use (the modules are
# written by others and import this package's users); tests may replace them.
#   heap_check(heap_rel, tid) -> (live, xwait): is there a tuple in the HOT chain
#       at ``tid`` that a dirty snapshot sees, and which in-progress transaction
#       (inserter, else deleter) must we wait for (0: none).
#   xact_wait(xid, index relname, heap tid): wait until the transaction has ended.
heap_check: Callable[[Any, tuple[int, int]], tuple[bool, int]] | None = None
xact_wait: Callable[[int, str, tuple[int, int]], None] | None = None


def _default_heap_check(heap_rel, tid: tuple[int, int]) -> tuple[bool, int]:
    from access import heapam
    from utils import snapmgr

    snap = snapmgr.new_dirty_snapshot()
    found = heapam.heap_hot_search(heap_rel, tid, snap, count=False)
    if found is None:
        return False, 0
    xmin = getattr(snap, "xmin", 0) or 0
    xmax = getattr(snap, "xmax", 0) or 0
    return True, xmin if xmin else xmax


def _default_xact_wait(xid: int, relname: str, tid: tuple[int, int]) -> None:
    from storage.lmgr import lmgr

    # CONTEXT: while inserting index tuple (b,o) in relation "<index>"
    lmgr.xact_lock_table_wait(xid, relname, tid, lmgr.XLTW_INSERT_INDEX)


class _InsertState:
    """BTInsertStateData."""

    __slots__ = ("itup", "itemsz", "key", "buf")

    def __init__(self, itup: bytearray, key: BTScanInsert) -> None:
        self.itup = itup
        self.itemsz = len(itup)
        self.key = key
        self.buf = InvalidBuffer


def _opaque(page) -> tuple[int, int, int, int, int]:
    return OPAQUE.unpack_from(page, BT_SPECIAL)


def _set_flags(page, flags: int) -> None:
    U16.pack_into(page, OFF_FLAGS, flags)


def _get_item(page, offnum: int) -> bytes:
    w = _ITEMID.unpack_from(page, 20 + 4 * offnum)[0]
    off = w & 0x7FFF
    return bytes(page[off:off + (w >> 17)])


def _add_item(page, item, offnum: int) -> None:
    if page_add_item(page, item, offnum, is_heap=False) != offnum:
        raise elog.PgError("XX000", f"failed to add item to index page at offset {offnum}",
                           severity=elog.PANIC)


# -- _bt_doinsert -------------------------------------------------------------------------------

def bt_insert(index_rel, values: Sequence[Any], heap_tid: tuple[int, int], heap_rel,
              check_unique: bool) -> bool:
    """btinsert / _bt_doinsert: insert the index entry for heap tuple ``heap_tid``
    whose index column values are ``values`` (one per index key column, in index
    order). With ``check_unique``, a live conflicting entry raises 23505
    ("duplicate key value violates unique constraint"), and an in-progress
    conflicting transaction is waited for first. Returns True."""
    c = get_cache(index_rel)
    itup = c.form_tuple(values, heap_tid)
    if len(itup) > BT_MAX_ITEM_SIZE:
        check_tuple_size(len(itup), BT_MAX_ITEM_SIZE, c.relname, heap_rel, heap_tid)
    key = bt_mkscankey(c, values, heap_tid)
    state = _InsertState(itup, key)
    checkingunique = check_unique and not key.anynullkeys
    if checkingunique:
        key.scantid = None
    while True:
        stack = _bt_search_insert(index_rel, c, state)
        if not checkingunique:
            break
        xwait = _bt_check_unique(index_rel, c, state, heap_rel, values)
        if not xwait:
            key.scantid = heap_tid
            break
        bt_relbuf(state.buf)
        state.buf = InvalidBuffer
        (xact_wait or _default_xact_wait)(xwait, c.relname, heap_tid)
    newitemoff = _bt_findinsertloc(index_rel, c, state, checkingunique, stack)
    _bt_insertonpg(index_rel, c, key, state.buf, InvalidBuffer, stack, itup, state.itemsz,
                   newitemoff, False)
    return True


def _bt_search_insert(rel, c: BTCache, state: _InsertState) -> BTStack | None:
    """_bt_search_insert: the leaf to insert on, write-locked in state.buf. Tries
    the cached rightmost leaf first (ascending keys skip the descent)."""
    key = state.key
    target = rel.target_block
    if target != InvalidBlockNumber:
        buf = read_buffer(rel.smgr, target)
        if conditional_lock_buffer(buf):
            page = buffer_get_page(buf)
            _, nxt, _, flags, _ = _opaque(page)
            lower, upper, _ = _LOWER_UPPER_SPECIAL.unpack_from(page, 12)
            if (nxt == P_NONE and flags & BTP_LEAF and not flags & BTP_IGNORE
                    and upper - lower - 4 > state.itemsz and lower > 24
                    and _compare_item(c, key, page, P_HIKEY) > 0):
                state.buf = buf
                return None
            bt_relbuf(buf)
        else:
            release_buffer(buf)
        rel.target_block = InvalidBlockNumber
    stack, state.buf = bt_search(rel, c, key, BT_WRITE)
    return stack


def _bt_check_unique(rel, c: BTCache, state: _InsertState, heap_rel,
                     values: Sequence[Any]) -> int:
    """_bt_check_unique: 0 if no live duplicate exists, else the xid to wait for;
    raises the unique violation (after releasing every lock)."""
    key = state.key
    buf = state.buf
    page = buffer_get_page(buf)
    offset = bt_binsrch(c, key, page)
    maxoff = page_max_offset(page)
    nbuf = InvalidBuffer
    check = heap_check or _default_heap_check
    while True:
        if offset <= maxoff:
            if _compare_item(c, key, page, offset) != 0:
                break
            w = _ITEMID.unpack_from(page, 20 + 4 * offset)[0]
            hi, lo, pos = _TID.unpack_from(page, w & 0x7FFF)
            htid = ((hi << 16) | lo, pos)
            live, xwait = check(heap_rel, htid)
            if live:
                if xwait:
                    if nbuf:
                        bt_relbuf(nbuf)
                    return xwait
                if nbuf:
                    bt_relbuf(nbuf)
                bt_relbuf(buf)
                state.buf = InvalidBuffer
                raise unique_violation(c, values)
        if offset < maxoff:
            offset += 1
            continue
        _, nxt, _, _, _ = _opaque(page)
        if nxt == P_NONE:
            break
        if _compare_item(c, key, page, P_HIKEY) != 0:
            break
        # Equal keys may continue on the right sibling.
        while True:
            nbuf = bt_relandgetbuf(rel, nbuf, nxt, BT_READ)
            page = buffer_get_page(nbuf)
            _, nnxt, _, flags, _ = _opaque(page)
            if not flags & BTP_IGNORE:
                break
            if nnxt == P_NONE:
                bt_relbuf(nbuf)
                raise index_corrupted(f'fell off the end of index "{c.relname}"')
            nxt = nnxt
        maxoff = page_max_offset(page)
        offset = P_HIKEY if nnxt == P_NONE else P_FIRSTKEY
    if nbuf:
        bt_relbuf(nbuf)
    return 0


def _bt_findinsertloc(rel, c: BTCache, state: _InsertState, checkingunique: bool,
                      stack: BTStack | None) -> int:
    """_bt_findinsertloc: with the heap TID now part of the key, the exact page
    (stepping right if a unique check started further left) and offset."""
    key = state.key
    page = buffer_get_page(state.buf)
    if checkingunique:
        while True:
            _, nxt, _, _, _ = _opaque(page)
            if nxt == P_NONE or _compare_item(c, key, page, P_HIKEY) <= 0:
                break
            _bt_stepright(rel, c, state, stack)
            page = buffer_get_page(state.buf)
    return bt_binsrch(c, key, page)


def _bt_stepright(rel, c: BTCache, state: _InsertState, stack: BTStack | None) -> None:
    """_bt_stepright: write-lock the right sibling (finishing its incomplete split
    if needed) before releasing the current page."""
    page = buffer_get_page(state.buf)
    rblkno = _opaque(page)[1]
    rbuf = InvalidBuffer
    while True:
        rbuf = bt_relandgetbuf(rel, rbuf, rblkno, BT_WRITE)
        page = buffer_get_page(rbuf)
        _, nxt, _, flags, _ = _opaque(page)
        if flags & BTP_INCOMPLETE_SPLIT:
            bt_finish_split(rel, c, rbuf, stack)
            rbuf = InvalidBuffer
            continue
        if not flags & BTP_IGNORE:
            break
        if nxt == P_NONE:
            bt_relbuf(rbuf)
            raise index_corrupted(f'fell off the end of index "{c.relname}"')
        rblkno = nxt
    bt_relbuf(state.buf)
    state.buf = rbuf


# -- _bt_insertonpg ------------------------------------------------------------------------------

def _bt_insertonpg(rel, c: BTCache, key: BTScanInsert | None, buf: int, cbuf: int,
                   stack: BTStack | None, itup, itemsz: int, newitemoff: int,
                   split_only_page: bool) -> None:
    """_bt_insertonpg: put ``itup`` at ``newitemoff`` of the write-locked page in
    ``buf``, splitting it if it does not fit. ``cbuf`` is the left child whose
    incomplete split this insertion (of a downlink) finishes; both are released."""
    page = buffer_get_page(buf)
    prev, nxt, level, flags, _ = _opaque(page)
    isleaf = bool(flags & BTP_LEAF)
    isroot = bool(flags & BTP_ROOT)
    isrightmost = nxt == P_NONE
    isonly = prev == P_NONE and nxt == P_NONE
    lower, upper, _ = _LOWER_UPPER_SPECIAL.unpack_from(page, 12)
    freespace = upper - lower - 4
    if freespace < itemsz:
        rbuf = _bt_split(rel, c, buf, cbuf, newitemoff, itemsz, itup)
        _bt_insert_parent(rel, c, buf, rbuf, stack, isroot, isonly)
        return

    metabuf = InvalidBuffer
    if split_only_page:
        metabuf = bt_getbuf(rel, BTREE_METAPAGE, BT_WRITE)
        meta = bt_getmeta(buffer_get_page(metabuf))
        if meta[5] >= level:
            bt_relbuf(metabuf)
            metabuf = InvalidBuffer
    try:
        _add_item(page, itup, newitemoff)
        mark_buffer_dirty(buf)
        blkno = buffer_get_block_number(buf)
        if metabuf:
            metapg = buffer_get_page(metabuf)
            m = list(bt_getmeta(metapg))
            if m[1] < BTREE_NOVAC_VERSION:
                m[1] = BTREE_NOVAC_VERSION
            m[4], m[5] = blkno, level
            META.pack_into(metapg, META_OFFSET, *m)
            mark_buffer_dirty(metabuf)
            c.meta = None
        if not isleaf:
            cpage = buffer_get_page(cbuf)
            _set_flags(cpage, _opaque(cpage)[3] & ~BTP_INCOMPLETE_SPLIT)
            mark_buffer_dirty(cbuf)
        if c.is_permanent:
            rnode = c.rnode
            blocks = [BlockRef(0, rnode, MAIN_FORKNUM, blkno, page, itup[:tuple_size(itup)],
                               standard=True)]
            if isleaf:
                info = XLOG_BTREE_INSERT_LEAF
            else:
                info = XLOG_BTREE_INSERT_UPPER
                blocks.append(BlockRef(1, rnode, MAIN_FORKNUM, buffer_get_block_number(cbuf),
                                       buffer_get_page(cbuf), standard=True))
                if metabuf:
                    metapg = buffer_get_page(metabuf)
                    m = bt_getmeta(metapg)
                    md = XL_METADATA.pack(m[1], m[2], m[3], m[4], m[5], m[6], m[8])
                    blocks.append(BlockRef(2, rnode, MAIN_FORKNUM, BTREE_METAPAGE, metapg, md,
                                           will_init=True, standard=True))
                    info = XLOG_BTREE_INSERT_META
            lsn = xlog.xlog_insert(RM_BTREE_ID, info, XL_INSERT.pack(newitemoff), blocks)
            page_set_lsn(page, lsn)
            if not isleaf:
                page_set_lsn(buffer_get_page(cbuf), lsn)
            if metabuf:
                page_set_lsn(buffer_get_page(metabuf), lsn)
    except BaseException as exc:
        critical_section_failed(exc)
    if metabuf:
        bt_relbuf(metabuf)
    if not isleaf:
        bt_relbuf(cbuf)
    blockcache = blkno if (isrightmost and isleaf and not isroot) else InvalidBlockNumber
    bt_relbuf(buf)
    if blockcache != InvalidBlockNumber and \
            bt_getrootheight(rel, c) >= BTREE_FASTPATH_MIN_LEVEL:
        rel.target_block = blockcache


# -- _bt_split ---------------------------------------------------------------------------------

def _bt_split(rel, c: BTCache, buf: int, cbuf: int, newitemoff: int, newitemsz: int,
              newitem) -> int:
    """_bt_split: split the write-locked page in ``buf`` and insert ``newitem``;
    returns the new right half, write-locked (the left half stays locked too).
    The left half is built in a private page and copied over the original only
    when everything is ready, as PostgreSQL does."""
    origpage = buffer_get_page(buf)
    oprev, onext, olevel, oflags, _ = _opaque(origpage)
    isleaf = bool(oflags & BTP_LEAF)
    isrightmost = onext == P_NONE
    maxoff = page_max_offset(origpage)
    origpagenumber = buffer_get_block_number(buf)
    firstrightoff, newitemonleft = bt_findsplitloc(c, origpage, newitemoff, newitemsz, newitem)

    leftpage = bytearray(BLCKSZ)
    bt_pageinit(leftpage)
    lflags = (oflags & ~(BTP_ROOT | BTP_SPLIT_END | BTP_HAS_GARBAGE)) | BTP_INCOMPLETE_SPLIT
    if not newitemonleft and newitemoff == firstrightoff:
        firstright = newitem
    else:
        firstright = _get_item(origpage, firstrightoff)
    if isleaf:
        if newitemonleft and newitemoff == firstrightoff:
            lastleft = newitem
        else:
            lastleft = _get_item(origpage, firstrightoff - 1)
        lefthighkey = bt_truncate(c, lastleft, firstright)
    else:
        lefthighkey = firstright
    rightpage = bytearray(BLCKSZ)
    bt_pageinit(rightpage)
    rflags = oflags & ~(BTP_ROOT | BTP_SPLIT_END | BTP_HAS_GARBAGE)

    # The items of each half in item-number order (the new item in its place);
    # an internal right half's first data item becomes "minus infinity".
    litems: list = [lefthighkey]
    ritems: list = [] if isrightmost else [_get_item(origpage, P_HIKEY)]
    firstdata = P_HIKEY if isrightmost else P_FIRSTKEY
    for i in range(firstdata, maxoff + 1):
        if i == newitemoff:
            (litems if newitemonleft else ritems).append(newitem)
        (litems if i < firstrightoff else ritems).append(_get_item(origpage, i))
    if newitemoff > maxoff:
        ritems.append(newitem)
    if not isleaf:
        minusinf = 0 if isrightmost else 1
        t = bytearray(MINUS_INFINITY)
        t[0:4] = ritems[minusinf][0:4]
        ritems[minusinf] = t
    page_append_items(leftpage, litems)
    page_append_items(rightpage, ritems)

    # Everything is prepared; now the new right page and the old right sibling.
    rbuf = bt_allocbuf(rel)
    rpage = buffer_get_page(rbuf)
    rightpagenumber = buffer_get_block_number(rbuf)
    sbuf = InvalidBuffer
    if not isrightmost:
        sbuf = bt_getbuf(rel, onext, BT_WRITE)
        spage = buffer_get_page(sbuf)
        sprev = U32.unpack_from(spage, OFF_PREV)[0]
        if sprev != origpagenumber:
            bt_relbuf(sbuf)
            bt_relbuf(rbuf)
            raise index_corrupted(
                f"right sibling's left-link doesn't match: block {onext} links to {sprev} "
                f'instead of expected {origpagenumber} in index "{c.relname}"')
    OPAQUE.pack_into(leftpage, BT_SPECIAL, oprev, rightpagenumber, olevel, lflags, 0)
    OPAQUE.pack_into(rightpage, BT_SPECIAL, origpagenumber, onext, olevel, rflags, 0)

    # The critical section: install both halves, fix the sibling, log it.
    try:
        origpage[:] = leftpage
        mark_buffer_dirty(buf)
        rpage[:] = rightpage
        mark_buffer_dirty(rbuf)
        if sbuf:
            U32.pack_into(spage, OFF_PREV, rightpagenumber)
            mark_buffer_dirty(sbuf)
        if not isleaf:
            cpage = buffer_get_page(cbuf)
            _set_flags(cpage, _opaque(cpage)[3] & ~BTP_INCOMPLETE_SPLIT)
            mark_buffer_dirty(cbuf)
        if c.is_permanent:
            rnode = c.rnode
            ldata = bytes(newitem[:newitemsz]) if newitemonleft else b""
            ldata += bytes(lefthighkey)
            rlower, rupper, rspecial = _LOWER_UPPER_SPECIAL.unpack_from(rpage, 12)
            blocks = [BlockRef(0, rnode, MAIN_FORKNUM, origpagenumber, origpage, ldata,
                               standard=True),
                      BlockRef(1, rnode, MAIN_FORKNUM, rightpagenumber, rpage,
                               bytes(rpage[rupper:rspecial]), will_init=True)]
            if sbuf:
                blocks.append(BlockRef(2, rnode, MAIN_FORKNUM, onext, spage, standard=True))
            if not isleaf:
                blocks.append(BlockRef(3, rnode, MAIN_FORKNUM, buffer_get_block_number(cbuf),
                                       buffer_get_page(cbuf), standard=True))
            info = XLOG_BTREE_SPLIT_L if newitemonleft else XLOG_BTREE_SPLIT_R
            lsn = xlog.xlog_insert(RM_BTREE_ID, info,
                                   XL_SPLIT.pack(olevel, firstrightoff, newitemoff, 0), blocks)
            page_set_lsn(origpage, lsn)
            page_set_lsn(rpage, lsn)
            if sbuf:
                page_set_lsn(spage, lsn)
            if not isleaf:
                page_set_lsn(buffer_get_page(cbuf), lsn)
    except BaseException as exc:
        critical_section_failed(exc)
    if sbuf:
        bt_relbuf(sbuf)
    if not isleaf:
        bt_relbuf(cbuf)
    return rbuf


# -- the parent level ------------------------------------------------------------------------

def _bt_insert_parent(rel, c: BTCache, buf: int, rbuf: int, stack: BTStack | None,
                      isroot: bool, isonly: bool) -> None:
    """_bt_insert_parent: after a split of ``buf`` into ``buf`` + ``rbuf``, add the
    downlink to the right half in the parent (or grow a new root). Releases both."""
    if isroot:
        rootbuf = _bt_newroot(rel, c, buf, rbuf)
        bt_relbuf(rootbuf)
        bt_relbuf(rbuf)
        bt_relbuf(buf)
        return
    bknum = buffer_get_block_number(buf)
    rbknum = buffer_get_block_number(rbuf)
    page = buffer_get_page(buf)
    if stack is None:
        # The root split concurrently since our descent: start from the leftmost
        # page one level up.
        elog.debug2("concurrent ROOT page split")
        pbuf = bt_get_endpoint(rel, c, _opaque(page)[2] + 1, False)
        stack = BTStack(buffer_get_block_number(pbuf), 0, None)
        bt_relbuf(pbuf)
    new_item = bytearray(_get_item(page, P_HIKEY))
    set_downlink(new_item, rbknum)
    pbuf = _bt_getstackbuf(rel, c, stack, bknum)
    bt_relbuf(rbuf)
    if not pbuf:
        bt_relbuf(buf)
        raise index_corrupted(f'failed to re-find parent key in index "{c.relname}" for split '
                              f"pages {bknum}/{rbknum}")
    _bt_insertonpg(rel, c, None, pbuf, buf, stack.parent, new_item, len(new_item),
                   stack.offset + 1, isonly)


def bt_finish_split(rel, c: BTCache, lbuf: int, stack: BTStack | None) -> None:
    """_bt_finish_split: insert the missing downlink for the right half of an
    incompletely split page (write-locked in ``lbuf``; released)."""
    lpage = buffer_get_page(lbuf)
    lprev, lnext, _, _, _ = _opaque(lpage)
    rbuf = bt_getbuf(rel, lnext, BT_WRITE)
    rnext = _opaque(buffer_get_page(rbuf))[1]
    if stack is None:
        metabuf = bt_getbuf(rel, BTREE_METAPAGE, BT_WRITE)
        wasroot = bt_getmeta(buffer_get_page(metabuf))[2] == buffer_get_block_number(lbuf)
        bt_relbuf(metabuf)
    else:
        wasroot = False
    wasonly = lprev == P_NONE and rnext == P_NONE
    elog.debug1(f"finishing incomplete split of {buffer_get_block_number(lbuf)}/"
                f"{buffer_get_block_number(rbuf)}")
    _bt_insert_parent(rel, c, lbuf, rbuf, stack, wasroot, wasonly)


def _bt_getstackbuf(rel, c: BTCache, stack: BTStack, child: int) -> int:
    """_bt_getstackbuf: write-lock the parent page that holds the downlink to
    ``child``, moving right from where the descent saw it; updates the stack."""
    blkno = stack.blkno
    start = stack.offset
    while True:
        buf = bt_getbuf(rel, blkno, BT_WRITE)
        page = buffer_get_page(buf)
        _, nxt, _, flags, _ = _opaque(page)
        if flags & BTP_INCOMPLETE_SPLIT:
            bt_finish_split(rel, c, buf, stack.parent)
            continue
        if not flags & BTP_IGNORE:
            minoff = P_HIKEY if nxt == P_NONE else P_FIRSTKEY
            maxoff = page_max_offset(page)
            if start < minoff:
                start = minoff
            if start > maxoff:
                start = maxoff + 1
            order = list(range(start, maxoff + 1)) + list(range(start - 1, minoff - 1, -1))
            for offnum in order:
                off = _ITEMID.unpack_from(page, 20 + 4 * offnum)[0] & 0x7FFF
                hi, lo = struct.unpack_from("<HH", page, off)
                if (hi << 16) | lo == child:
                    stack.blkno = blkno
                    stack.offset = offnum
                    return buf
        if nxt == P_NONE:
            bt_relbuf(buf)
            return InvalidBuffer
        blkno = nxt
        start = 0
        bt_relbuf(buf)


def _bt_newroot(rel, c: BTCache, lbuf: int, rbuf: int) -> int:
    """_bt_newroot: a new root above the two halves of a split root; its items are
    a minus-infinity downlink to the left half and the left half's high key
    pointing at the right half. Returns the new root, write-locked."""
    lbkno = buffer_get_block_number(lbuf)
    rbkno = buffer_get_block_number(rbuf)
    lpage = buffer_get_page(lbuf)
    rootbuf = bt_allocbuf(rel)
    rootpage = buffer_get_page(rootbuf)
    rootblknum = buffer_get_block_number(rootbuf)
    metabuf = bt_getbuf(rel, BTREE_METAPAGE, BT_WRITE)
    metapg = buffer_get_page(metabuf)
    m = list(bt_getmeta(metapg))

    left_item = bytearray(MINUS_INFINITY)
    set_downlink(left_item, lbkno)
    right_item = bytearray(_get_item(lpage, P_HIKEY))
    set_downlink(right_item, rbkno)

    if m[1] < BTREE_NOVAC_VERSION:
        m[1] = BTREE_NOVAC_VERSION
    level = _opaque(lpage)[2] + 1
    try:
        _newroot_critical(c, lbuf, lpage, lbkno, rootbuf, rootpage, rootblknum, metabuf,
                          metapg, m, level, left_item, right_item)
    except BaseException as exc:
        critical_section_failed(exc)
    bt_relbuf(metabuf)
    return rootbuf


def _newroot_critical(c: BTCache, lbuf: int, lpage, lbkno: int, rootbuf: int, rootpage,
                      rootblknum: int, metabuf: int, metapg, m: list, level: int,
                      left_item, right_item) -> None:
    """_bt_newroot's critical section: fill the root, repoint the metapage, log it."""
    OPAQUE.pack_into(rootpage, BT_SPECIAL, P_NONE, P_NONE, level, BTP_ROOT, 0)
    m[2], m[3], m[4], m[5] = rootblknum, level, rootblknum, level
    META.pack_into(metapg, META_OFFSET, *m)
    _add_item(rootpage, left_item, P_HIKEY)
    _add_item(rootpage, right_item, P_FIRSTKEY)
    _set_flags(lpage, _opaque(lpage)[3] & ~BTP_INCOMPLETE_SPLIT)
    mark_buffer_dirty(lbuf)
    mark_buffer_dirty(rootbuf)
    mark_buffer_dirty(metabuf)
    c.meta = None
    if c.is_permanent:
        rnode = c.rnode
        md = XL_METADATA.pack(m[1], rootblknum, level, rootblknum, level, m[6], m[8])
        _, rupper, rspecial = _LOWER_UPPER_SPECIAL.unpack_from(rootpage, 12)
        lsn = xlog.xlog_insert(RM_BTREE_ID, XLOG_BTREE_NEWROOT, XL_NEWROOT.pack(rootblknum, level), [
            BlockRef(0, rnode, MAIN_FORKNUM, rootblknum, rootpage,
                     bytes(rootpage[rupper:rspecial]), will_init=True),
            BlockRef(1, rnode, MAIN_FORKNUM, lbkno, lpage, standard=True),
            BlockRef(2, rnode, MAIN_FORKNUM, BTREE_METAPAGE, metapg, md, will_init=True,
                     standard=True)])
        page_set_lsn(lpage, lsn)
        page_set_lsn(rootpage, lsn)
        page_set_lsn(metapg, lsn)


