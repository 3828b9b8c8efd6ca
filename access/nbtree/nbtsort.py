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
from access.heaptuple import index_form_tuple
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
    OFF_NEXT,
    OFF_PREV,
    OPAQUE,
    P_FIRSTKEY,
    P_HIKEY,
    P_NONE,
    U16,
    U32,
    maxalign,
    set_downlink,
)
from access.nbtree.nbtpage import bt_initmetapage, bt_pageinit, page_index_tuple_overwrite
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
from storage.bufpage import BLCKSZ, page_set_lsn
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
    """BTPageState: the page being filled on one level."""

    __slots__ = ("page", "blkno", "lowkey", "lastoff", "level", "full", "next")

    def __init__(self, page: bytearray, blkno: int, level: int, full: int) -> None:
        self.page = page
        self.blkno = blkno
        self.lowkey: bytearray | None = None
        self.lastoff = P_HIKEY
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


def _blnewpage(level: int) -> bytearray:
    """_bt_blnewpage: a fresh page with the P_HIKEY slot reserved."""
    page = bytearray(BLCKSZ)
    bt_pageinit(page)
    OPAQUE.pack_into(page, BT_SPECIAL, P_NONE, P_NONE, level, 0 if level > 0 else BTP_LEAF, 0)
    _LOWER.pack_into(page, 12, _LOWER.unpack_from(page, 12)[0] + 4)
    return page


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
    st = _PageState(_blnewpage(level), ws.pages_alloced, level, full)
    ws.pages_alloced += 1
    return st


def _slideleft(page: bytearray) -> None:
    """_bt_slideleft: a rightmost page has no high key — shift the line pointers
    down one slot (the last slot's bytes stay behind pd_lower, as in PostgreSQL)."""
    lower = _LOWER.unpack_from(page, 12)[0]
    page[24:lower - 4] = page[28:lower]
    _LOWER.pack_into(page, 12, lower - 4)


def _sortaddtup(page: bytearray, itup, offnum: int, newfirstdataitem: bool) -> None:
    """_bt_sortaddtup: append at ``offnum`` (a minus-infinity item if asked)."""
    if newfirstdataitem:
        t = bytearray(MINUS_INFINITY)
        t[0:4] = itup[0:4]
        itup = t
    if bufpage.page_add_item(page, itup, offnum, is_heap=False) != offnum:
        raise PgError("XX000", "failed to add item to the index page")


def _buildadd(ws: _WriteState, state: _PageState, itup) -> None:
    """_bt_buildadd: add ``itup`` to the level's current page, finishing the page
    first (its last item becomes the high key, copied up as a downlink) when it
    is full to the fillfactor."""
    npage = state.page
    nblkno = state.blkno
    last_off = state.lastoff
    lower, upper = _LOWER_UPPER.unpack_from(npage, 12)
    pgspc = upper - lower - 4 if upper - lower >= 4 else 0
    itupsz = maxalign(len(itup))
    isleaf = state.level == 0
    if itupsz > BT_MAX_ITEM_SIZE:
        limit = BT_MAX_ITEM_SIZE if isleaf else BT_MAX_ITEM_SIZE_NO_HEAP_TID
        if itupsz > limit:
            hi, lo, pos = struct.unpack_from("<HHH", itup, 0)
            check_tuple_size(itupsz, limit, ws.c.relname, None, ((hi << 16) | lo, pos))
    if pgspc < itupsz + (8 if isleaf else 0) or (pgspc < state.full and last_off > P_FIRSTKEY):
        opage = npage
        oblkno = nblkno
        npage = _blnewpage(state.level)
        nblkno = ws.pages_alloced
        ws.pages_alloced += 1
        lp = 20 + 4 * last_off
        w = _ITEMID.unpack_from(opage, lp)[0]
        off = w & 0x7FFF
        oitup = bytes(opage[off:off + (w >> 17)])
        _sortaddtup(npage, oitup, P_FIRSTKEY, not isleaf)
        # 'last' becomes the high key of the old page.
        opage[24:28] = opage[lp:lp + 4]
        opage[lp:lp + 4] = b"\0\0\0\0"
        _LOWER.pack_into(opage, 12, _LOWER.unpack_from(opage, 12)[0] - 4)
        if isleaf:
            w = _ITEMID.unpack_from(opage, 20 + 4 * (last_off - 1))[0]
            off = w & 0x7FFF
            lastleft = bytes(opage[off:off + (w >> 17)])
            truncated = bt_truncate(ws.c, lastleft, oitup)
            if not page_index_tuple_overwrite(opage, P_HIKEY, truncated):
                raise PgError("XX000", "failed to add high key to the index page")
            w = _ITEMID.unpack_from(opage, 24)[0]
            off = w & 0x7FFF
            oitup = bytes(opage[off:off + (w >> 17)])
        if state.next is None:
            state.next = _pagestate(ws, state.level + 1)
        lowkey = state.lowkey
        assert lowkey is not None
        set_downlink(lowkey, oblkno)
        _buildadd(ws, state.next, lowkey)
        state.lowkey = bytearray(oitup)
        U32.pack_into(opage, OFF_NEXT, nblkno)
        U32.pack_into(npage, OFF_PREV, oblkno)
        _blwritepage(ws, opage, oblkno)
        last_off = P_FIRSTKEY
    if last_off == P_HIKEY:
        state.lowkey = bytearray(MINUS_INFINITY)
    last_off += 1
    _sortaddtup(npage, itup, last_off, not isleaf and last_off == P_FIRSTKEY)
    state.page = npage
    state.blkno = nblkno
    state.lastoff = last_off


def _uppershutdown(ws: _WriteState, state: _PageState | None) -> None:
    """_bt_uppershutdown: finish the last page of every level, then the metapage."""
    rootblkno, rootlevel = P_NONE, 0
    s = state
    while s is not None:
        if s.next is None:
            flags = U16.unpack_from(s.page, OFF_FLAGS)[0]
            U16.pack_into(s.page, OFF_FLAGS, flags | BTP_ROOT)
            rootblkno, rootlevel = s.blkno, s.level
        else:
            lowkey = s.lowkey
            assert lowkey is not None
            set_downlink(lowkey, s.blkno)
            _buildadd(ws, s.next, lowkey)
            s.lowkey = None
        _slideleft(s.page)
        _blwritepage(ws, s.page, s.blkno)
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
    index_rel.target_block = 0xFFFFFFFF
    info = index_rel.index
    indkey = tuple(info.indkey) if info is not None else tuple(range(1, c.nkeyatts + 1))
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
    simple = len(indkey) == 1
    a0 = indkey[0] - 1 if indkey else 0
    for tid, row, is_live in rows:
        nheap += 1
        ivals = [row[a0]] if simple else [row[a - 1] for a in indkey]
        entry = (norm(ivals), tuple(tid), ivals)
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
    desc = c.desc
    for _, tid, ivals in spool:
        itup = index_form_tuple(desc, ivals, tid)
        if state is None:
            state = _pagestate(ws, 0)
        _buildadd(ws, state, itup)
    _uppershutdown(ws, state)
    if ws.use_wal:
        smgr.smgr_immedsync(reln, MAIN_FORKNUM)
    return IndexBuildResult(float(nheap), float(len(spool)))
