"""B-tree WAL replay — mirrors src/backend/access/nbtree/nbtxlog.c (PostgreSQL 15):
btree_redo for the records tusk writes (INSERT_LEAF / _UPPER / _META, SPLIT_L / _R,
NEWROOT, VACUUM, DELETE, META_CLEANUP) and btree_mask for consistency checks.

Each routine rebuilds exactly the bytes the primary produced: the right half of
a split is re-created from the tuples logged with it (in their physical order,
_bt_restore_page), the left half from its surviving items plus the logged new
high key and new item, in item-number order as _bt_split built it; a new root
from its logged items. Blocks restored from full-page images or already carrying
the change (page LSN) are skipped by xlog_read_buffer_for_redo. As in
PostgreSQL, replay takes one page lock at a time: no one else can change the
index during recovery, and readers cope with the intermediate states.

Registered with register_redo(RM_BTREE_ID) at import. Records tusk never
writes (posting-list inserts, dedup, page deletion, reuse) are refused with a
PANIC, as PostgreSQL refuses an unknown op code.
"""

from __future__ import annotations

import struct

from access.nbtree.nbtdefs import (
    BT_SPECIAL,
    BTP_HAS_GARBAGE,
    BTP_INCOMPLETE_SPLIT,
    BTP_LEAF,
    BTP_META,
    BTP_ROOT,
    BTP_SPLIT_END,
    BTREE_MAGIC,
    META,
    META_OFFSET,
    META_PD_LOWER,
    OFF_CYCLEID,
    OFF_FLAGS,
    OFF_NEXT,
    OFF_PREV,
    OPAQUE,
    P_FIRSTKEY,
    P_HIKEY,
    P_NONE,
    U16,
    U32,
    XL_DELETE,
    XL_INSERT,
    XL_METADATA,
    XL_NEWROOT,
    XL_SPLIT,
    XL_VACUUM,
    XLOG_BTREE_DELETE,
    XLOG_BTREE_INSERT_LEAF,
    XLOG_BTREE_INSERT_META,
    XLOG_BTREE_INSERT_UPPER,
    XLOG_BTREE_META_CLEANUP,
    XLOG_BTREE_NEWROOT,
    XLOG_BTREE_REUSE_PAGE,
    XLOG_BTREE_SPLIT_L,
    XLOG_BTREE_SPLIT_R,
    XLOG_BTREE_VACUUM,
    maxalign,
)
from access.nbtree.nbtpage import bt_pageinit, page_index_multi_delete
from access.xlog_internal import RM_BTREE_ID, XLR_INFO_MASK
from access.xlogrecovery import (
    BLK_NEEDS_REDO,
    register_redo,
    xlog_read_buffer_for_redo,
)
from storage import bufmgr, smgr
from storage.bufmgr import (
    buffer_get_page,
    mark_buffer_dirty,
    unlock_release_buffer,
)
from storage.bufpage import (
    BLCKSZ,
    SIZE_OF_PAGE_HEADER_DATA,
    page_add_item,
    page_get_max_offset_number,
    page_init,
    page_set_lsn,
)
from storage.relfilenode import RelFileNode
from utils import elog

_ITEMID = struct.Struct("<I")
_LOWER_UPPER_SPECIAL = struct.Struct("<HHH")
_LOWER = struct.Struct("<H")


def _panic(message: str) -> elog.PgError:
    return elog.PgError("XX000", message, severity=elog.PANIC)


def init_buffer_for_redo(record, block_id: int) -> int:
    """XLogInitBufferForRedo: the block's buffer, exclusively locked, extending the
    fork as needed; the caller re-initialises the page entirely."""
    blk = record.block(block_id)
    reln = smgr.smgr_open(RelFileNode(*blk.rnode))
    if not smgr.smgr_exists(reln, blk.fork):
        smgr.smgr_create(reln, blk.fork, is_redo=True)
    nblocks = smgr.smgr_nblocks(reln, blk.fork)
    while nblocks <= blk.blkno:
        smgr.smgr_extend(reln, blk.fork, nblocks, None)
        nblocks += 1
    return bufmgr.read_buffer_extended(reln, blk.fork, blk.blkno, bufmgr.RBM_ZERO_AND_LOCK)


def _block_data(record, block_id: int) -> bytes:
    blk = record.block(block_id)
    return bytes(blk.data) if blk is not None and blk.has_data else b""


def _restore_page(page, data: bytes) -> None:
    """_bt_restore_page: re-enter the tuples logged from pd_upper..pd_special; the
    last item is first in the data, so add them in reverse to keep the layout."""
    items = []
    pos, end = 0, len(data)
    while pos < end:
        size = maxalign(U16.unpack_from(data, pos + 6)[0] & 0x1FFF)
        items.append(data[pos:pos + size])
        pos += size
    n = len(items)
    for i in range(n - 1, -1, -1):
        if page_add_item(page, items[i], n - i, is_heap=False) != n - i:
            raise _panic("_bt_restore_page: cannot add item to page")


def _restore_meta(record, block_id: int) -> None:
    """_bt_restore_meta: rewrite the metapage from xl_btree_metadata."""
    lsn = record.end_lsn
    buf = init_buffer_for_redo(record, block_id)
    page = buffer_get_page(buf)
    version, root, level, fastroot, fastlevel, delpages, allequal = \
        XL_METADATA.unpack_from(_block_data(record, block_id))
    bt_pageinit(page)
    META.pack_into(page, META_OFFSET, BTREE_MAGIC, version, root, level, fastroot, fastlevel,
                   delpages, -1.0, allequal)
    U16.pack_into(page, OFF_FLAGS, BTP_META)
    _LOWER.pack_into(page, 12, META_PD_LOWER)
    page_set_lsn(page, lsn)
    mark_buffer_dirty(buf)
    unlock_release_buffer(buf)


def _clear_incomplete_split(record, block_id: int) -> None:
    res, buf = xlog_read_buffer_for_redo(record, block_id)
    if res == BLK_NEEDS_REDO:
        page = buffer_get_page(buf)
        flags = U16.unpack_from(page, OFF_FLAGS)[0]
        U16.pack_into(page, OFF_FLAGS, flags & ~BTP_INCOMPLETE_SPLIT)
        page_set_lsn(page, record.end_lsn)
        mark_buffer_dirty(buf)
    if buf:
        unlock_release_buffer(buf)


def _xlog_insert(isleaf: bool, ismeta: bool, record) -> None:
    (offnum,) = XL_INSERT.unpack_from(record.main_data)
    if not isleaf:
        _clear_incomplete_split(record, 1)
    res, buf = xlog_read_buffer_for_redo(record, 0)
    if res == BLK_NEEDS_REDO:
        page = buffer_get_page(buf)
        if page_add_item(page, _block_data(record, 0), offnum, is_heap=False) != offnum:
            raise _panic("failed to add new item")
        page_set_lsn(page, record.end_lsn)
        mark_buffer_dirty(buf)
    if buf:
        unlock_release_buffer(buf)
    if ismeta:
        _restore_meta(record, 2)


def _xlog_split(newitemonleft: bool, record) -> None:
    lsn = record.end_lsn
    level, firstrightoff, newitemoff, postingoff = XL_SPLIT.unpack_from(record.main_data)
    if postingoff:
        raise _panic("btree_xlog_split: posting list splits are not supported")
    isleaf = level == 0
    origpagenumber = record.block(0).blkno
    rightpagenumber = record.block(1).blkno
    sblk = record.block(2)
    spagenumber = sblk.blkno if sblk is not None else P_NONE
    if not isleaf:
        _clear_incomplete_split(record, 3)

    # The right page, from scratch.
    rbuf = init_buffer_for_redo(record, 1)
    rpage = buffer_get_page(rbuf)
    bt_pageinit(rpage)
    OPAQUE.pack_into(rpage, BT_SPECIAL, origpagenumber, spagenumber, level,
                     BTP_LEAF if isleaf else 0, 0)
    _restore_page(rpage, _block_data(record, 1))
    page_set_lsn(rpage, lsn)
    mark_buffer_dirty(rbuf)

    # The left (original) page: rebuilt in item-number order, as _bt_split did.
    res, buf = xlog_read_buffer_for_redo(record, 0)
    if res == BLK_NEEDS_REDO:
        origpage = buffer_get_page(buf)
        data = _block_data(record, 0)
        pos = 0
        newitem = None
        if newitemonleft:
            size = maxalign(U16.unpack_from(data, 6)[0] & 0x1FFF)
            newitem = data[:size]
            pos = size
        hsize = maxalign(U16.unpack_from(data, pos + 6)[0] & 0x1FFF)
        left_hikey = data[pos:pos + hsize]
        if pos + hsize != len(data):
            raise _panic("btree_xlog_split: unexpected data length")
        _, onext, _, _, _ = OPAQUE.unpack_from(origpage, BT_SPECIAL)
        leftpage = bytearray(BLCKSZ)
        page_init(leftpage, BLCKSZ, 16)
        leftpage[BT_SPECIAL:] = origpage[BT_SPECIAL:]
        if page_add_item(leftpage, left_hikey, P_HIKEY, is_heap=False) != P_HIKEY:
            raise _panic("failed to add high key to left page after split")
        leftoff = P_HIKEY + 1
        off = P_HIKEY if onext == P_NONE else P_FIRSTKEY
        while off < firstrightoff:
            if newitemonleft and off == newitemoff:
                if page_add_item(leftpage, newitem, leftoff, is_heap=False) != leftoff:
                    raise _panic("failed to add new item to left page after split")
                leftoff += 1
            w = _ITEMID.unpack_from(origpage, SIZE_OF_PAGE_HEADER_DATA + 4 * (off - 1))[0]
            o = w & 0x7FFF
            if page_add_item(leftpage, origpage[o:o + (w >> 17)], leftoff,
                             is_heap=False) != leftoff:
                raise _panic("failed to add old item to left page after split")
            leftoff += 1
            off += 1
        if newitemonleft and off == newitemoff:
            if page_add_item(leftpage, newitem, leftoff, is_heap=False) != leftoff:
                raise _panic("failed to add new item to left page after split")
            leftoff += 1
        origpage[:] = leftpage
        flags = BTP_INCOMPLETE_SPLIT | (BTP_LEAF if isleaf else 0)
        U16.pack_into(origpage, OFF_FLAGS, flags)
        U32.pack_into(origpage, OFF_NEXT, rightpagenumber)
        U16.pack_into(origpage, OFF_CYCLEID, 0)
        page_set_lsn(origpage, lsn)
        mark_buffer_dirty(buf)

    # Fix the left link of the page after the new right sibling.
    if spagenumber != P_NONE:
        res, sbuf = xlog_read_buffer_for_redo(record, 2)
        if res == BLK_NEEDS_REDO:
            spage = buffer_get_page(sbuf)
            U32.pack_into(spage, OFF_PREV, rightpagenumber)
            page_set_lsn(spage, lsn)
            mark_buffer_dirty(sbuf)
        if sbuf:
            unlock_release_buffer(sbuf)
    unlock_release_buffer(rbuf)
    if buf:
        unlock_release_buffer(buf)


def _xlog_delete_items(record, vacuum: bool) -> None:
    if vacuum:
        ndeleted, nupdated = XL_VACUUM.unpack_from(record.main_data)
    else:
        _, ndeleted, nupdated = XL_DELETE.unpack_from(record.main_data)
    if nupdated:
        raise _panic("btree redo: posting list updates are not supported")
    res, buf = xlog_read_buffer_for_redo(record, 0)
    if res == BLK_NEEDS_REDO:
        page = buffer_get_page(buf)
        if ndeleted:
            offs = list(struct.unpack_from(f"<{ndeleted}H", _block_data(record, 0)))
            page_index_multi_delete(page, offs)
        flags = U16.unpack_from(page, OFF_FLAGS)[0]
        U16.pack_into(page, OFF_FLAGS, flags & ~BTP_HAS_GARBAGE)
        if vacuum:
            U16.pack_into(page, OFF_CYCLEID, 0)
        page_set_lsn(page, record.end_lsn)
        mark_buffer_dirty(buf)
    if buf:
        unlock_release_buffer(buf)


def _xlog_newroot(record) -> None:
    rootblk, level = XL_NEWROOT.unpack_from(record.main_data)
    buf = init_buffer_for_redo(record, 0)
    page = buffer_get_page(buf)
    bt_pageinit(page)
    OPAQUE.pack_into(page, BT_SPECIAL, P_NONE, P_NONE, level,
                     BTP_ROOT | (BTP_LEAF if level == 0 else 0), 0)
    if level > 0:
        _restore_page(page, _block_data(record, 0))
        _clear_incomplete_split(record, 1)
    page_set_lsn(page, record.end_lsn)
    mark_buffer_dirty(buf)
    unlock_release_buffer(buf)
    _restore_meta(record, 2)


def btree_redo(record) -> None:
    """btree_redo: replay one RM_BTREE_ID record."""
    info = record.info & ~XLR_INFO_MASK
    if info == XLOG_BTREE_INSERT_LEAF:
        _xlog_insert(True, False, record)
    elif info == XLOG_BTREE_INSERT_UPPER:
        _xlog_insert(False, False, record)
    elif info == XLOG_BTREE_INSERT_META:
        _xlog_insert(False, True, record)
    elif info == XLOG_BTREE_SPLIT_L:
        _xlog_split(True, record)
    elif info == XLOG_BTREE_SPLIT_R:
        _xlog_split(False, record)
    elif info == XLOG_BTREE_VACUUM:
        _xlog_delete_items(record, True)
    elif info == XLOG_BTREE_DELETE:
        _xlog_delete_items(record, False)
    elif info == XLOG_BTREE_NEWROOT:
        _xlog_newroot(record)
    elif info == XLOG_BTREE_META_CLEANUP:
        _restore_meta(record, 0)
    elif info == XLOG_BTREE_REUSE_PAGE:
        pass  # only a recovery-conflict point for hot standby
    else:
        raise _panic(f"btree_redo: unknown op code {info}")


register_redo(RM_BTREE_ID, btree_redo)


# -- masking (btree_mask) --------------------------------------------------------------------

def btree_mask(page: bytearray) -> bytearray:
    """btree_mask: a copy of ``page`` with what may legitimately differ between a
    page and its replayed image cleared — LSN and checksum, hint flags, prune xid,
    unused space, line-pointer flags on leaves, BTP_HAS_GARBAGE, BTP_SPLIT_END and
    the vacuum cycle id."""
    p = bytearray(page)
    p[0:10] = bytes(10)                      # pd_lsn, pd_checksum
    flags = U16.unpack_from(p, 10)[0]
    U16.pack_into(p, 10, flags & ~0x0007)    # PD_HAS_FREE_LINES | PD_PAGE_FULL | PD_ALL_VISIBLE
    p[20:24] = bytes(4)                      # pd_prune_xid
    lower, upper, special = _LOWER_UPPER_SPECIAL.unpack_from(p, 12)
    if SIZE_OF_PAGE_HEADER_DATA <= lower <= upper <= special <= BLCKSZ:
        p[lower:upper] = bytes(upper - lower)
    if special == BT_SPECIAL:
        bflags = U16.unpack_from(p, OFF_FLAGS)[0]
        if bflags & BTP_LEAF:
            for off in range(1, page_get_max_offset_number(p) + 1):
                pos = SIZE_OF_PAGE_HEADER_DATA + 4 * (off - 1)
                w = _ITEMID.unpack_from(p, pos)[0]
                if (w >> 15) & 3:
                    _ITEMID.pack_into(p, pos, w & ~(3 << 15))
        U16.pack_into(p, OFF_FLAGS, bflags & ~(BTP_HAS_GARBAGE | BTP_SPLIT_END))
        U16.pack_into(p, OFF_CYCLEID, 0)
    return p
