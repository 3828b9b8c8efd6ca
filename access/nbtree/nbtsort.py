"""Building a B-tree from scratch — mirrors src/backend/access/nbtree/nbtsort.c
(PostgreSQL 15): scan the heap (heapam.heap_index_build_scan), sort the index
tuples by key and heap TID, fill leaf pages left to right to the leaf
fillfactor, and build each upper level as its pages fill (_bt_buildadd,
_bt_uppershutdown); the metapage is written last.

Pages are built in private memory and written with smgr directly, bypassing
shared buffers, each WAL-logged as a full-page image (log_newpage, XLOG_FPI);
the file is fsynced at the end because a checkpoint during the build cannot
know about these writes (_bt_load / smgrimmedsync). The index must be new (its
relfilenode created by this transaction), as for PostgreSQL's btbuild; any
blocks it already has (an earlier bt_build_empty) are dropped first.

A unique index refuses to be built over two live tuples with equal keys (no
NULLs): 23505 "could not create unique index". Tuples that are not live (recently
dead ones an index build must still index) are exempt, as PostgreSQL's spool2.

Where tusk differs: the sort is an in-memory Python sort (no tuplesort spilling
to disk: fine for the 100,000s of rows this is for); no parallel build; no
deduplication into posting lists.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any, NamedTuple

from access import xlog
from access.nbtree.nbtdefs import (
    BT_MAX_ITEM_SIZE,
    BT_MAX_ITEM_SIZE_NO_HEAP_TID,
    BT_SPECIAL,
    BTP_LEAF,
    BTP_ROOT,
    BTREE_METAPAGE,
    BTREE_NONLEAF_FILLFACTOR,
    MINUS_INFINITY,
    OFF_FLAGS,
    OPAQUE,
    P_NONE,
    SIZE_OF_BT_OPAQUE,
    U16,
    maxalign,
    set_downlink,
)
from access.nbtree.nbtpage import (
    bt_initmetapage,
    bt_pageinit,
    page_append_items,
)
from access.nbtree.nbtutils import (
    NULL,
    BTCache,
    bt_truncate,
    check_tuple_size,
    get_cache,
    unique_build_violation,
)
from access.xlog_internal import RM_XLOG_ID, XLOG_FPI
from access.xloginsert import BlockRef
from storage import bufmgr, bufpage, smgr
from storage.bufpage import BLCKSZ, SIZE_OF_PAGE_HEADER_DATA, page_set_lsn
from storage.relfilenode import MAIN_FORKNUM
from utils.elog import PgError

_ITEMID = struct.Struct("<I")
_LOWER_UPPER = struct.Struct("<HH")
_LOWER = struct.Struct("<H")
_ZERO_PAGE = bytes(BLCKSZ)


class IndexBuildResult(NamedTuple):
    heap_tuples: float
    index_tuples: float


class _PageState:
    """BTPageState: the page being filled on one level. Its data items are kept in
    a list with the space they take (``used``: tuples MAXALIGNed, plus line
    pointers, plus the reserved P_HIKEY slot); the page itself is laid out once,
    when it is finished (_finish_page), giving the bytes PostgreSQL's
    item-by-item _bt_sortaddtup produces."""

    __slots__ = ("items", "used", "blkno", "prev", "lowkey", "level", "full", "next")

    def __init__(self, blkno: int, level: int, full: int) -> None:
        self.items: list = []
        self.used = SIZE_OF_PAGE_HEADER_DATA + 4 + SIZE_OF_BT_OPAQUE
        self.blkno = blkno
        self.prev = P_NONE
        self.lowkey: bytearray | None = None
        self.level = level
        self.full = full
        self.next: _PageState | None = None


class _WriteState:
    """BTWriteState."""

    def __init__(self, index_rel, c: BTCache) -> None:
        self.rel = index_rel
        self.c = c
        self.reln = index_rel.smgr
        self.use_wal = c.is_permanent
        self.pages_alloced = BTREE_METAPAGE + 1
        self.pages_written = 0
        try:
            self.checksums = bufmgr.pool().checksums
        except AssertionError:
            self.checksums = False


def _blwritepage(ws: _WriteState, page: bytearray, blkno: int) -> None:
    """_bt_blwritepage: log the page (XLOG_FPI) and write it with smgr."""
    if ws.use_wal:
        lsn = xlog.xlog_insert(RM_XLOG_ID, XLOG_FPI, b"", [
            BlockRef(0, ws.c.rnode, MAIN_FORKNUM, blkno, page, standard=True,
                     force_image=True)])
        page_set_lsn(page, lsn)
    while blkno > ws.pages_written:
        smgr.smgr_extend(ws.reln, MAIN_FORKNUM, ws.pages_written, _ZERO_PAGE, skip_fsync=True)
        ws.pages_written += 1
    if ws.checksums:
        bufpage.page_set_checksum_inplace(page, blkno)
    if blkno == ws.pages_written:
        smgr.smgr_extend(ws.reln, MAIN_FORKNUM, blkno, page, skip_fsync=True)
        ws.pages_written += 1
    else:
        smgr.smgr_write(ws.reln, MAIN_FORKNUM, blkno, page, skip_fsync=True)


def _pagestate(ws: _WriteState, level: int) -> _PageState:
    """_bt_pagestate."""
    if level > 0:
        full = BLCKSZ * (100 - BTREE_NONLEAF_FILLFACTOR) // 100
    else:
        full = ws.c.target_free
    st = _PageState(ws.pages_alloced, level, full)
    ws.pages_alloced += 1
    return st


def _finish_page(state: _PageState, hikey, nxt: int) -> bytearray:
    """The page of ``state``: data items from offset 2 (1 if rightmost: no
    ``hikey``), tuples laid out downward in item order, the high key last (it
    was the last item added, then replaced by its truncated form in place)."""
    page = bytearray(BLCKSZ)
    bt_pageinit(page)
    level = state.level
    OPAQUE.pack_into(page, BT_SPECIAL, state.prev, nxt, level, 0 if level else BTP_LEAF, 0)
    if hikey is None:
        page_append_items(page, state.items)
        return page
    _LOWER.pack_into(page, 12, SIZE_OF_PAGE_HEADER_DATA + 4)
    page_append_items(page, state.items)
    lower, upper = _LOWER_UPPER.unpack_from(page, 12)
    size = len(hikey)
    upper -= maxalign(size)
    page[upper:upper + size] = hikey
    _ITEMID.pack_into(page, SIZE_OF_PAGE_HEADER_DATA, upper | (1 << 15) | (size << 17))
    _LOWER_UPPER.pack_into(page, 12, lower, upper)
    return page


def _buildadd(ws: _WriteState, state: _PageState, itup) -> None:
    """_bt_buildadd: add ``itup`` to the level's current page, finishing the page
    first (its last item becomes the high key, copied up as a downlink) when it
    is full to the fillfactor."""
    itupsz = maxalign(len(itup))
    isleaf = state.level == 0
    if itupsz > BT_MAX_ITEM_SIZE:
        limit = BT_MAX_ITEM_SIZE if isleaf else BT_MAX_ITEM_SIZE_NO_HEAP_TID
        if itupsz > limit:
            hi, lo, pos = struct.unpack_from("<HHH", itup, 0)
            check_tuple_size(itupsz, limit, ws.c.relname, None, ((hi << 16) | lo, pos))
    # PageGetFreeSpace of the page as PostgreSQL would have it.
    pgspc = BLCKSZ - state.used - 4
    if pgspc < 0:
        pgspc = 0
    items = state.items
    if pgspc < itupsz + (8 if isleaf else 0) or (pgspc < state.full and len(items) > 1):
        oitup = items.pop()
        if isleaf:
            hikey = bt_truncate(ws.c, items[-1], oitup)
        else:
            hikey = oitup
        nblkno = ws.pages_alloced
        ws.pages_alloced += 1
        opage = _finish_page(state, hikey, nblkno)
        if state.next is None:
            state.next = _pagestate(ws, state.level + 1)
        lowkey = state.lowkey
        assert lowkey is not None
        set_downlink(lowkey, state.blkno)
        _buildadd(ws, state.next, lowkey)
        state.lowkey = bytearray(hikey)
        _blwritepage(ws, opage, state.blkno)
        # The new page starts with the old page's last item (minus infinity on
        # an internal level).
        state.prev = state.blkno
        state.blkno = nblkno
        if not isleaf:
            t = bytearray(MINUS_INFINITY)
            t[0:4] = oitup[0:4]
            oitup = t
        state.items = items = [oitup]
        state.used = SIZE_OF_PAGE_HEADER_DATA + 4 + SIZE_OF_BT_OPAQUE + maxalign(len(oitup)) + 4
    elif not items:
        state.lowkey = bytearray(MINUS_INFINITY)
        if not isleaf:
            t = bytearray(MINUS_INFINITY)
            t[0:4] = itup[0:4]
            itup = t
            itupsz = len(t)
    items.append(itup)
    state.used += itupsz + 4


def _uppershutdown(ws: _WriteState, state: _PageState | None) -> None:
    """_bt_uppershutdown: finish the last page of every level, then the metapage."""
    rootblkno, rootlevel = P_NONE, 0
    s = state
    while s is not None:
        if s.next is None:
            rootblkno, rootlevel = s.blkno, s.level
        else:
            lowkey = s.lowkey
            assert lowkey is not None
            set_downlink(lowkey, s.blkno)
            _buildadd(ws, s.next, lowkey)
            s.lowkey = None
        page = _finish_page(s, None, P_NONE)
        if s.next is None:
            flags = U16.unpack_from(page, OFF_FLAGS)[0]
            U16.pack_into(page, OFF_FLAGS, flags | BTP_ROOT)
        _blwritepage(ws, page, s.blkno)
        s = s.next
    meta = bytearray(BLCKSZ)
    bt_initmetapage(meta, rootblkno, rootlevel, ws.c.allequalimage)
    _blwritepage(ws, meta, BTREE_METAPAGE)


def _heap_build_scan(heap_rel):
    from access import heapam

    return heapam.heap_index_build_scan(heap_rel)


def bt_build(heap_rel, index_rel,
             build_scan: Iterable[tuple[tuple[int, int], list[Any], bool]] | None = None
             ) -> IndexBuildResult:
    """btbuild: fill the new, empty ``index_rel`` from every tuple of ``heap_rel``
    that an index build must see (``build_scan`` overrides
    heapam.heap_index_build_scan: (root tid, heap row values, is live) triples).
    Returns (heap_tuples, index_tuples)."""
    c = get_cache(index_rel)
    c.meta = None
    c.icache.clear()
    index_rel.target_block = 0xFFFFFFFF
    info = index_rel.index
    indkey = tuple(info.indkey) if info is not None else tuple(range(1, c.nkeyatts + 1))
    if len(indkey) != c.nkeyatts or 0 in indkey:
        raise PgError("0A000", "indexes on expressions are not supported")
    unique = bool(info is not None and info.indisunique)
    reln = index_rel.smgr
    if not smgr.smgr_exists(reln, MAIN_FORKNUM):
        smgr.smgr_create(reln, MAIN_FORKNUM)
    if smgr.smgr_nblocks(reln, MAIN_FORKNUM) > 0:
        smgr.smgr_truncate(reln, MAIN_FORKNUM, 0)

    norm = c.norm
    spool: list[tuple[tuple, tuple[int, int], list[Any]]] = []
    dead: list[tuple[tuple, tuple[int, int], list[Any]]] = []
    nheap = 0
    rows = build_scan if build_scan is not None else _heap_build_scan(heap_rel)
    simple = len(indkey) == 1 and not c.special
    a0 = indkey[0] - 1 if indkey else 0
    for tid, row, is_live in rows:
        nheap += 1
        if simple:
            v = row[a0]
            ivals = [v]
            key = (NULL,) if v is None else (v,)
        else:
            ivals = [row[a - 1] for a in indkey]
            key = norm(ivals)
        entry = (key, tuple(tid), ivals)
        if is_live or not unique:
            spool.append(entry)
        else:
            dead.append(entry)
    spool.sort()
    if unique:
        prev = None
        for e in spool:
            k = e[0]
            if prev is not None and k == prev and NULL not in k:
                raise unique_build_violation(c, e[2])
            prev = k
        if dead:
            spool.extend(dead)
            spool.sort()

    ws = _WriteState(index_rel, c)
    state = None
    form = c.form_tuple
    if spool:
        state = _pagestate(ws, 0)
        for _, tid, ivals in spool:
            _buildadd(ws, state, form(ivals, tid))
    _uppershutdown(ws, state)
    if ws.use_wal:
        smgr.smgr_immedsync(reln, MAIN_FORKNUM)
    return IndexBuildResult(float(nheap), float(len(spool)))
