"""B-tree page management — mirrors src/backend/access/nbtree/nbtpage.c
(PostgreSQL 15): page and metapage initialisation (_bt_pageinit,
_bt_initmetapage), the root (_bt_getroot with the cached metapage), buffer
access (_bt_getbuf, _bt_relbuf, _bt_relandgetbuf, _bt_allocbuf) and VACUUM's
leaf-item deletion (_bt_delitems_vacuum). Also PageIndexTupleDelete,
PageIndexMultiDelete and PageIndexTupleOverwrite of bufpage.c, which
storage/bufpage.py does not have yet, byte-compatible with PostgreSQL's.

Relation extension. PostgreSQL serialises extension with the heavyweight
relation-extension lock (LockRelationForExtension). tusk holds the metapage's
content lock in exclusive mode while it extends an index instead: the lock
order is always "tree pages, then metapage" (nothing holding the metapage
waits for another page's lock, except for a brand-new page nobody else can
know about), so this cannot deadlock, and it keeps two backends from being
handed the same new block.

Where tusk differs: no page deletion, hence no recycling of pages through the
free space map (a page emptied by VACUUM stays in the tree), no
_bt_vacuum_cycleid shared state (btpo_cycleid is always 0; without recycled
pages a split can only move items to a block past VACUUM's scan position), and
no LP_DEAD "killed item" hints.
"""

from __future__ import annotations

import os
import struct

from access import xlog
from access.nbtree.nbtdefs import (
    BT_READ,
    BT_SPECIAL,
    BT_WRITE,
    BTP_HAS_GARBAGE,
    BTP_IGNORE,
    BTP_LEAF,
    BTP_META,
    BTP_ROOT,
    BTREE_MAGIC,
    BTREE_METAPAGE,
    BTREE_NOVAC_VERSION,
    BTREE_VERSION,
    META,
    META_OFFSET,
    META_PD_LOWER,
    OFF_CYCLEID,
    OFF_FLAGS,
    OPAQUE,
    P_NONE,
    SIZE_OF_BT_OPAQUE,
    U16,
    XL_METADATA,
    XL_NEWROOT,
    XL_VACUUM,
    XLOG_BTREE_NEWROOT,
    XLOG_BTREE_VACUUM,
    maxalign,
)
from access.nbtree.nbtutils import BTCache, get_cache
from access.xlog_internal import RM_BTREE_ID
from access.xloginsert import BlockRef
from storage import bufpage
from storage.bufmgr import (
    BUFFER_LOCK_EXCLUSIVE,
    BUFFER_LOCK_UNLOCK,
    P_NEW,
    buffer_get_block_number,
    buffer_get_page,
    lock_buffer,
    mark_buffer_dirty,
    read_buffer,
    unlock_release_buffer,
)
from storage.bufpage import BLCKSZ, SIZE_OF_PAGE_HEADER_DATA, page_init, page_set_lsn
from storage.relfilenode import MAIN_FORKNUM
from utils.elog import PANIC, PgError

InvalidBuffer = 0
_LOWER = struct.Struct("<H")
_LOWER_UPPER = struct.Struct("<HH")
_LOWER_UPPER_SPECIAL = struct.Struct("<HHH")
_ITEMID = struct.Struct("<I")
_OFF_LOWER = 12
_OFF_UPPER = 14


def critical_section_failed(exc: BaseException) -> None:
    """An error between changing shared pages and WAL-logging the change: as in
    PostgreSQL's critical sections, a PANIC, leaving the pages to crash recovery."""
    from utils import elog

    elog.ereport(PANIC, f"error in a critical section of the btree access method: {exc!r}")
    os.abort()


def index_corrupted(message: str) -> PgError:
    """ERRCODE_INDEX_CORRUPTED."""
    return PgError("XX002", message)


# -- page initialisation ---------------------------------------------------------------------

def bt_pageinit(page) -> None:
    """_bt_pageinit: an empty page with BTPageOpaqueData special space (all zero)."""
    page_init(page, BLCKSZ, SIZE_OF_BT_OPAQUE)


def bt_initmetapage(page, rootbknum: int, level: int, allequalimage: bool) -> None:
    """_bt_initmetapage: a metapage pointing at ``rootbknum`` (P_NONE: empty index)."""
    bt_pageinit(page)
    META.pack_into(page, META_OFFSET, BTREE_MAGIC, BTREE_VERSION, rootbknum, level,
                   rootbknum, level, 0, -1.0, allequalimage)
    U16.pack_into(page, OFF_FLAGS, BTP_META)
    _LOWER.pack_into(page, _OFF_LOWER, META_PD_LOWER)


def bt_getmeta(page) -> tuple:
    """The metapage's fields: (magic, version, root, level, fastroot, fastlevel,
    last_cleanup_num_delpages, last_cleanup_num_heap_tuples, allequalimage)."""
    return META.unpack_from(page, META_OFFSET)


def check_meta(c: BTCache, m: tuple) -> None:
    """_bt_getmeta's sanity checks."""
    if m[0] != BTREE_MAGIC:
        raise index_corrupted(f'index "{c.relname}" is not a btree')
    if m[1] < BTREE_NOVAC_VERSION or m[1] > BTREE_VERSION:
        raise index_corrupted(f'version mismatch in index "{c.relname}": file version {m[1]}, '
                              f"current version {BTREE_VERSION}, minimal supported version "
                              f"{BTREE_NOVAC_VERSION}")


def xl_metadata(m: tuple) -> bytes:
    """xl_btree_metadata from the metapage fields."""
    return XL_METADATA.pack(m[1], m[2], m[3], m[4], m[5], m[6], m[8])


# -- buffers -----------------------------------------------------------------------------------

def bt_checkpage(c: BTCache, buf: int) -> None:
    """_bt_checkpage: refuse all-zero and wrongly sized-special pages."""
    page = buffer_get_page(buf)
    if bufpage.page_is_new(page):
        raise index_corrupted(f'index "{c.relname}" contains unexpected zero page at block '
                              f"{buffer_get_block_number(buf)}")
    if bufpage.page_get_special_pointer(page) != BT_SPECIAL:
        raise index_corrupted(f'index "{c.relname}" contains corrupted page at block '
                              f"{buffer_get_block_number(buf)}")


def bt_getbuf(rel, blkno: int, access: int) -> int:
    """_bt_getbuf for an existing page: pinned and locked in ``access`` mode."""
    buf = read_buffer(rel.smgr, blkno)
    lock_buffer(buf, access)
    return buf


def bt_relbuf(buf: int) -> None:
    """_bt_relbuf: unlock and unpin."""
    unlock_release_buffer(buf)


def bt_relandgetbuf(rel, obuf: int, blkno: int, access: int) -> int:
    """_bt_relandgetbuf: release ``obuf`` (if any), then get and lock ``blkno``."""
    if obuf:
        unlock_release_buffer(obuf)
    buf = read_buffer(rel.smgr, blkno)
    lock_buffer(buf, access)
    return buf


def bt_lockbuf(buf: int, access: int) -> None:
    lock_buffer(buf, access)


def bt_unlockbuf(buf: int) -> None:
    lock_buffer(buf, BUFFER_LOCK_UNLOCK)


def bt_allocbuf(rel, meta_locked: bool = False) -> int:
    """_bt_allocbuf (PostgreSQL 15: _bt_getbuf(rel, P_NEW, BT_WRITE)): a new page at
    the end of the index, write-locked and initialised. See the module docstring
    for why extension happens under the metapage lock; ``meta_locked`` says the
    caller already holds it."""
    reln = rel.smgr
    if not meta_locked:
        mbuf = read_buffer(reln, BTREE_METAPAGE)
        lock_buffer(mbuf, BUFFER_LOCK_EXCLUSIVE)
        try:
            buf = read_buffer(reln, P_NEW)
        finally:
            unlock_release_buffer(mbuf)
    else:
        buf = read_buffer(reln, P_NEW)
    lock_buffer(buf, BUFFER_LOCK_EXCLUSIVE)
    page = buffer_get_page(buf)
    if not bufpage.page_is_new(page):
        bt_relbuf(buf)
        raise index_corrupted(f'index "{rel.relname}" contains unexpected non-empty page at '
                              "its end")
    bt_pageinit(page)
    return buf


# -- the root ------------------------------------------------------------------------------

def bt_getroot(rel, c: BTCache, access: int) -> int:
    """_bt_getroot: the (fast) root, pinned and read-locked, or InvalidBuffer when
    the index is empty and ``access`` is BT_READ. With BT_WRITE an empty index
    gets a root (a leaf) here, WAL-logged as XLOG_BTREE_NEWROOT."""
    m = c.meta
    if m is not None:
        fastroot, fastlevel = m[2], m[3]
        buf = bt_getbuf(rel, fastroot, BT_READ)
        prev, nxt, level, flags, _ = OPAQUE.unpack_from(buffer_get_page(buf), BT_SPECIAL)
        # The cache may be stale: accept only a live page alone on its level.
        if not flags & BTP_IGNORE and level == fastlevel and prev == P_NONE and nxt == P_NONE:
            return buf
        bt_relbuf(buf)
        c.meta = None

    metabuf = bt_getbuf(rel, BTREE_METAPAGE, BT_READ)
    metapg = buffer_get_page(metabuf)
    meta = bt_getmeta(metapg)
    check_meta(c, meta)
    if meta[2] == P_NONE:
        if access == BT_READ:
            bt_relbuf(metabuf)
            return InvalidBuffer
        bt_unlockbuf(metabuf)
        bt_lockbuf(metabuf, BT_WRITE)
        meta = bt_getmeta(metapg)
        if meta[2] != P_NONE:
            # Someone else made the root meanwhile: start over.
            bt_relbuf(metabuf)
            return bt_getroot(rel, c, access)
        rootbuf = bt_allocbuf(rel, meta_locked=True)
        rootblkno = buffer_get_block_number(rootbuf)
        rootpage = buffer_get_page(rootbuf)
        try:
            OPAQUE.pack_into(rootpage, BT_SPECIAL, P_NONE, P_NONE, 0, BTP_LEAF | BTP_ROOT, 0)
            META.pack_into(metapg, META_OFFSET, BTREE_MAGIC, meta[1], rootblkno, 0, rootblkno,
                           0, 0, -1.0, meta[8])
            mark_buffer_dirty(rootbuf)
            mark_buffer_dirty(metabuf)
            if c.is_permanent:
                md = XL_METADATA.pack(meta[1], rootblkno, 0, rootblkno, 0, 0, meta[8])
                rnode = c.rnode
                lsn = xlog.xlog_insert(
                    RM_BTREE_ID, XLOG_BTREE_NEWROOT, XL_NEWROOT.pack(rootblkno, 0), [
                        BlockRef(0, rnode, MAIN_FORKNUM, rootblkno, rootpage, will_init=True),
                        BlockRef(2, rnode, MAIN_FORKNUM, BTREE_METAPAGE, metapg, md,
                                 will_init=True, standard=True)])
                page_set_lsn(rootpage, lsn)
                page_set_lsn(metapg, lsn)
        except BaseException as exc:
            critical_section_failed(exc)
        # Trade the root's write lock for a read lock: nobody else knows it yet.
        bt_unlockbuf(rootbuf)
        bt_lockbuf(rootbuf, BT_READ)
        bt_relbuf(metabuf)
        return rootbuf

    rootblkno, rootlevel = meta[4], meta[5]
    c.meta = (meta[2], meta[3], rootblkno, rootlevel)
    rootbuf = metabuf
    while True:
        rootbuf = bt_relandgetbuf(rel, rootbuf, rootblkno, BT_READ)
        _, nxt, level, flags, _ = OPAQUE.unpack_from(buffer_get_page(rootbuf), BT_SPECIAL)
        if not flags & BTP_IGNORE:
            break
        if nxt == P_NONE:
            bt_relbuf(rootbuf)
            raise index_corrupted(f'no live root page found in index "{c.relname}"')
        rootblkno = nxt
    if level != rootlevel:
        bt_relbuf(rootbuf)
        raise index_corrupted(f'root page {rootblkno} of index "{c.relname}" has level {level}, '
                              f"expected {rootlevel}")
    return rootbuf


def bt_getrootheight(rel, c: BTCache) -> int:
    """_bt_getrootheight: the fast root's level (0 for an empty index)."""
    if c.meta is None:
        metabuf = bt_getbuf(rel, BTREE_METAPAGE, BT_READ)
        meta = bt_getmeta(buffer_get_page(metabuf))
        bt_relbuf(metabuf)
        check_meta(c, meta)
        if meta[4] == P_NONE:
            return 0
        c.meta = (meta[2], meta[3], meta[4], meta[5])
    return c.meta[3]


# -- bufpage.c's index-tuple routines -------------------------------------------------------

def page_index_tuple_delete(page, offnum: int) -> None:
    """PageIndexTupleDelete: remove one item, closing both the line-pointer and
    the tuple-space gaps (later items' numbers shift down)."""
    lower, upper, special = _LOWER_UPPER_SPECIAL.unpack_from(page, _OFF_LOWER)
    nline = (lower - SIZE_OF_PAGE_HEADER_DATA) >> 2
    if not 0 < offnum <= nline:
        raise PgError("XX000", f"invalid index offnum: {offnum}")
    lp = SIZE_OF_PAGE_HEADER_DATA + 4 * (offnum - 1)
    w = _ITEMID.unpack_from(page, lp)[0]
    offset, size = w & 0x7FFF, w >> 17
    if offset < upper or offset + size > special or offset != maxalign(offset):
        raise PgError("XX001", f"corrupted line pointer: offset = {offset}, size = {size}")
    size = maxalign(size)
    if lower > lp + 4:
        page[lp:lower - 4] = page[lp + 4:lower]
    if offset > upper:
        page[upper + size:offset + size] = page[upper:offset]
    upper += size
    lower -= 4
    _LOWER_UPPER.pack_into(page, _OFF_LOWER, lower, upper)
    if lower > SIZE_OF_PAGE_HEADER_DATA:
        for p in range(SIZE_OF_PAGE_HEADER_DATA, lower, 4):
            w = _ITEMID.unpack_from(page, p)[0]
            if w >> 17 and (w & 0x7FFF) <= offset:
                _ITEMID.pack_into(page, p, w + size)


def page_index_multi_delete(page, itemnos: list[int]) -> None:
    """PageIndexMultiDelete: remove the (ascending) items, then compact the tuple
    space so the remaining items lie from pd_special downward in line-pointer
    order (compactify_tuples)."""
    nitems = len(itemnos)
    if nitems <= 2:
        for off in reversed(itemnos):
            page_index_tuple_delete(page, off)
        return
    lower, upper, special = _LOWER_UPPER_SPECIAL.unpack_from(page, _OFF_LOWER)
    nline = (lower - SIZE_OF_PAGE_HEADER_DATA) >> 2
    kept: list[tuple[int, int, int]] = []   # (itemid word, offset, aligned length)
    nextitm = 0
    for offnum in range(1, nline + 1):
        w = _ITEMID.unpack_from(page, SIZE_OF_PAGE_HEADER_DATA + 4 * (offnum - 1))[0]
        offset, size = w & 0x7FFF, w >> 17
        if offset < upper or offset + size > special or offset != maxalign(offset):
            raise PgError("XX001", f"corrupted line pointer: offset = {offset}, size = {size}")
        if nextitm < nitems and offnum == itemnos[nextitm]:
            nextitm += 1
        else:
            kept.append((w, offset, maxalign(size)))
    if nextitm != nitems:
        raise PgError("XX000", "incorrect index offsets supplied")
    data = [bytes(page[off:off + alen]) for _, off, alen in kept]
    pos = SIZE_OF_PAGE_HEADER_DATA
    up = special
    for (w, _off, alen), d in zip(kept, data, strict=True):
        up -= alen
        page[up:up + alen] = d
        _ITEMID.pack_into(page, pos, (w & ~0x7FFF) | up)
        pos += 4
    _LOWER_UPPER.pack_into(page, _OFF_LOWER, pos, up)


def page_index_tuple_overwrite(page, offnum: int, newtup) -> bool:
    """PageIndexTupleOverwrite: replace an item's tuple in place (sizes may differ:
    the tuple data before it slides)."""
    lower, upper, special = _LOWER_UPPER_SPECIAL.unpack_from(page, _OFF_LOWER)
    itemcount = (lower - SIZE_OF_PAGE_HEADER_DATA) >> 2
    if not 0 < offnum <= itemcount:
        raise PgError("XX000", f"invalid index offnum: {offnum}")
    lp = SIZE_OF_PAGE_HEADER_DATA + 4 * (offnum - 1)
    w = _ITEMID.unpack_from(page, lp)[0]
    offset, oldsize = w & 0x7FFF, w >> 17
    if offset < upper or offset + oldsize > special or offset != maxalign(offset):
        raise PgError("XX001", f"corrupted line pointer: offset = {offset}, size = {oldsize}")
    newsize = len(newtup)
    oldsize = maxalign(oldsize)
    alignednewsize = maxalign(newsize)
    if alignednewsize > oldsize + (upper - lower):
        return False
    size_diff = oldsize - alignednewsize
    if size_diff:
        page[upper + size_diff:offset + size_diff] = page[upper:offset]
        _LOWER_UPPER.pack_into(page, _OFF_LOWER, lower, upper + size_diff)
        for p in range(SIZE_OF_PAGE_HEADER_DATA, lower, 4):
            wi = _ITEMID.unpack_from(page, p)[0]
            if wi >> 17 and (wi & 0x7FFF) <= offset:
                _ITEMID.pack_into(page, p, wi + size_diff)
    w = _ITEMID.unpack_from(page, lp)[0]
    newoff = offset + size_diff
    _ITEMID.pack_into(page, lp, (w & (3 << 15)) | newoff | (newsize << 17))
    page[newoff:newoff + newsize] = newtup
    return True


def page_append_items(page, items) -> None:
    """PageAddItem of each of ``items`` at the next offset, in order, as one step:
    the same bytes as adding them one by one to the end of the line-pointer array."""
    lower, upper = _LOWER_UPPER.unpack_from(page, _OFF_LOWER)
    words = []
    for item in items:
        size = len(item)
        upper -= (size + 7) & ~7
        page[upper:upper + size] = item
        words.append(upper | (1 << 15) | (size << 17))
    n = len(words)
    if lower + 4 * n > upper:
        raise PgError("XX000", "index page overflow while adding items", severity=PANIC)
    struct.pack_into(f"<{n}I", page, lower, *words)
    _LOWER_UPPER.pack_into(page, _OFF_LOWER, lower + 4 * n, upper)


# -- VACUUM ------------------------------------------------------------------------------------

def bt_delitems_vacuum(rel, c: BTCache, buf: int, deletable: list[int]) -> None:
    """_bt_delitems_vacuum: remove ``deletable`` (ascending offsets) from a leaf
    page under its exclusive lock, WAL-logged as XLOG_BTREE_VACUUM."""
    page = buffer_get_page(buf)
    try:
        page_index_multi_delete(page, deletable)
        flags = U16.unpack_from(page, OFF_FLAGS)[0]
        U16.pack_into(page, OFF_CYCLEID, 0)
        U16.pack_into(page, OFF_FLAGS, flags & ~BTP_HAS_GARBAGE)
        mark_buffer_dirty(buf)
        if c.is_permanent:
            lsn = xlog.xlog_insert(
                RM_BTREE_ID, XLOG_BTREE_VACUUM, XL_VACUUM.pack(len(deletable), 0), [
                    BlockRef(0, c.rnode, MAIN_FORKNUM, buffer_get_block_number(buf), page,
                             struct.pack(f"<{len(deletable)}H", *deletable), standard=True)])
            page_set_lsn(page, lsn)
    except BaseException as exc:
        critical_section_failed(exc)


def bt_build_empty(index_rel) -> None:
    """btbuildempty / an empty btbuild: the metapage of an index with no root,
    written through shared buffers and WAL-logged as a full-page image
    (log_newpage, XLOG_FPI)."""
    from access.xlog_internal import RM_XLOG_ID, XLOG_FPI

    c = get_cache(index_rel)
    c.meta = None
    c.icache.clear()
    index_rel.target_block = 0xFFFFFFFF
    reln = index_rel.smgr
    from storage import smgr

    if not smgr.smgr_exists(reln, MAIN_FORKNUM):
        smgr.smgr_create(reln, MAIN_FORKNUM)
    nblocks = smgr.smgr_nblocks(reln, MAIN_FORKNUM)
    if nblocks > 1:
        smgr.smgr_truncate(reln, MAIN_FORKNUM, 1)
    buf = read_buffer(reln, P_NEW if nblocks == 0 else BTREE_METAPAGE)
    lock_buffer(buf, BUFFER_LOCK_EXCLUSIVE)
    page = buffer_get_page(buf)
    try:
        bt_initmetapage(page, P_NONE, 0, c.allequalimage)
        mark_buffer_dirty(buf)
        if c.is_permanent:
            lsn = xlog.xlog_insert(RM_XLOG_ID, XLOG_FPI, b"", [
                BlockRef(0, c.rnode, MAIN_FORKNUM, BTREE_METAPAGE, page, standard=True,
                         force_image=True)])
            page_set_lsn(page, lsn)
    except BaseException as exc:
        critical_section_failed(exc)
    unlock_release_buffer(buf)


