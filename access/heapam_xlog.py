"""Heap WAL records — mirrors src/include/access/heapam_xlog.h and the WAL
parts of src/backend/access/heap/heapam.c (log_heap_*, heap_xlog_*, heap_redo,
heap2_redo) and heap_mask (heapdesc/heapam.c), PostgreSQL 15.

Records are PostgreSQL 15's, byte for byte, so its pg_waldump decodes them:

  RM_HEAP_ID
    XLOG_HEAP_INSERT       xl_heap_insert {offnum, flags}; block 0: xl_heap_header
                           {t_infomask2, t_infomask, t_hoff} + the tuple from t_bits on
    XLOG_HEAP_DELETE       xl_heap_delete {xmax, offnum, infobits_set, flags}; block 0
    XLOG_HEAP_UPDATE,      xl_heap_update {old_xmax, old_offnum, old_infobits_set, flags,
    XLOG_HEAP_HOT_UPDATE   new_xmax, new_offnum}; block 0 (new page): [prefix/suffix
                           lengths] + xl_heap_header + the new tuple minus the bytes it
                           shares with the old one (same-page updates only); block 1 the
                           old page when it differs
    XLOG_HEAP_LOCK         xl_heap_lock {locking_xid, offnum, infobits_set, flags}; block 0
    | XLOG_HEAP_INIT_PAGE  when the tuple is the first on a new page: redo starts from
                           an empty page instead of needing a full-page image
  RM_HEAP2_ID
    XLOG_HEAP2_PRUNE       xl_heap_prune {latestRemovedXid, nredirected, ndead}; block 0:
                           redirected (from, to) pairs, then now-dead, then now-unused offsets
    XLOG_HEAP2_VACUUM      xl_heap_vacuum {nunused}; block 0: the now-unused offsets
    XLOG_HEAP2_MULTI_INSERT  xl_heap_multi_insert {flags, ntuples, offsets[] unless INIT};
                           block 0: per tuple a SHORTALIGNed xl_multi_insert_tuple
                           {datalen, t_infomask2, t_infomask, t_hoff} + its data

Redo rebuilds the page exactly as the original change did, except the fields
PostgreSQL's redo also leaves different (its wal_consistency_checking masks
them, see ``heap_mask``): t_cid (FirstCommandId in redo), hint bits,
pd_prune_xid and the PD_PAGE_FULL / PD_HAS_FREE_LINES hints, the page LSN and
checksum, and the free space between pd_lower and pd_upper.

Where tusk differs: never writes XLH_*_CONTAINS_OLD_* / NEW_TUPLE data (no
logical decoding), XLOG_HEAP2_VISIBLE, FREEZE_PAGE, NEW_CID, REWRITE,
LOCK_UPDATED, INPLACE, CONFIRM or TRUNCATE (no visibility map, freezing,
logical decoding or speculative insertion); redo of those is not implemented
beyond restoring full-page images.
"""

from __future__ import annotations

import struct

from access import xlog
from access import xlog_internal as xi
from access.heaptuple import (
    HEAP_KEYS_UPDATED,
    HEAP_LOCK_MASK,
    HEAP_XACT_MASK,
    HEAP_XMAX_COMMITTED,
    HEAP_XMAX_EXCL_LOCK,
    HEAP_XMAX_INVALID,
    HEAP_XMAX_IS_MULTI,
    HEAP_XMAX_KEYSHR_LOCK,
    HEAP_XMAX_LOCK_ONLY,
    HEAP_XMIN_FROZEN,
    SizeofHeapTupleHeader,
)
from access.xloginsert import BlockRef
from access.xlogrecovery import (
    BLK_NEEDS_REDO,
    register_redo,
    xlog_read_buffer_for_redo,
)
from storage import bufmgr, smgr
from storage import bufpage as bp
from storage.relfilenode import MAIN_FORKNUM, RelFileNode
from utils.elog import PANIC, PgError

# -- opcodes (heapam_xlog.h) ---------------------------------------------------------------

XLOG_HEAP_INSERT = 0x00
XLOG_HEAP_DELETE = 0x10
XLOG_HEAP_UPDATE = 0x20
XLOG_HEAP_TRUNCATE = 0x30
XLOG_HEAP_HOT_UPDATE = 0x40
XLOG_HEAP_CONFIRM = 0x50
XLOG_HEAP_LOCK = 0x60
XLOG_HEAP_INPLACE = 0x70
XLOG_HEAP_OPMASK = 0x70
XLOG_HEAP_INIT_PAGE = 0x80

XLOG_HEAP2_REWRITE = 0x00
XLOG_HEAP2_PRUNE = 0x10
XLOG_HEAP2_VACUUM = 0x20
XLOG_HEAP2_FREEZE_PAGE = 0x30
XLOG_HEAP2_VISIBLE = 0x40
XLOG_HEAP2_MULTI_INSERT = 0x50
XLOG_HEAP2_LOCK_UPDATED = 0x60
XLOG_HEAP2_NEW_CID = 0x70

# xl_heap_insert / xl_heap_multi_insert flags
XLH_INSERT_ALL_VISIBLE_CLEARED = 1 << 0
XLH_INSERT_LAST_IN_MULTI = 1 << 1
XLH_INSERT_IS_SPECULATIVE = 1 << 2
XLH_INSERT_CONTAINS_NEW_TUPLE = 1 << 3
XLH_INSERT_ON_TOAST_RELATION = 1 << 4
XLH_INSERT_ALL_FROZEN_SET = 1 << 5
# xl_heap_update flags
XLH_UPDATE_OLD_ALL_VISIBLE_CLEARED = 1 << 0
XLH_UPDATE_NEW_ALL_VISIBLE_CLEARED = 1 << 1
XLH_UPDATE_CONTAINS_OLD_TUPLE = 1 << 2
XLH_UPDATE_CONTAINS_OLD_KEY = 1 << 3
XLH_UPDATE_CONTAINS_NEW_TUPLE = 1 << 4
XLH_UPDATE_PREFIX_FROM_OLD = 1 << 5
XLH_UPDATE_SUFFIX_FROM_OLD = 1 << 6
# xl_heap_delete flags
XLH_DELETE_ALL_VISIBLE_CLEARED = 1 << 0
XLH_DELETE_CONTAINS_OLD_TUPLE = 1 << 1
XLH_DELETE_CONTAINS_OLD_KEY = 1 << 2
XLH_DELETE_IS_SUPER = 1 << 3
XLH_DELETE_IS_PARTITION_MOVE = 1 << 4
# xl_heap_lock flags
XLH_LOCK_ALL_FROZEN_CLEARED = 0x01
# infobits_set
XLHL_XMAX_IS_MULTI = 0x01
XLHL_XMAX_LOCK_ONLY = 0x02
XLHL_XMAX_EXCL_LOCK = 0x04
XLHL_XMAX_KEYSHR_LOCK = 0x08
XLHL_KEYS_UPDATED = 0x10

# -- record layouts ------------------------------------------------------------------------

XL_HEAP_INSERT = struct.Struct("<HB")          # offnum, flags
XL_HEAP_HEADER = struct.Struct("<HHB")         # t_infomask2, t_infomask, t_hoff
XL_HEAP_DELETE = struct.Struct("<IHBB")        # xmax, offnum, infobits_set, flags
XL_HEAP_UPDATE = struct.Struct("<IHBBIH")      # old_xmax, old_offnum, old_infobits, flags,
                                               # new_xmax, new_offnum
XL_HEAP_LOCK = struct.Struct("<IHBB")          # locking_xid, offnum, infobits_set, flags
XL_HEAP_MULTI_INSERT = struct.Struct("<BxH")   # flags, ntuples (offsets follow)
XL_MULTI_INSERT_TUPLE = struct.Struct("<HHHB")  # datalen, t_infomask2, t_infomask, t_hoff
XL_HEAP_PRUNE = struct.Struct("<IHH")          # latestRemovedXid, nredirected, ndead
XL_HEAP_VACUUM = struct.Struct("<H")           # nunused
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_INFOMASKS = struct.Struct("<HH")              # t_infomask2, t_infomask at 18
_XMAX = struct.Struct("<I")
_CID_CTID = struct.Struct("<IHHH")             # t_cid, t_ctid at 8
_CTID = struct.Struct("<HHH")

FirstCommandId = 0
_FREESPACE_LOW = bp.BLCKSZ // 5  # redo tells the FSM about pages below 20% free


def compute_infobits(infomask: int, infomask2: int) -> int:
    """compute_infobits: the xmax-related infomask bits, as stored in records."""
    return ((XLHL_XMAX_IS_MULTI if infomask & HEAP_XMAX_IS_MULTI else 0)
            | (XLHL_XMAX_LOCK_ONLY if infomask & HEAP_XMAX_LOCK_ONLY else 0)
            | (XLHL_XMAX_EXCL_LOCK if infomask & HEAP_XMAX_EXCL_LOCK else 0)
            | (XLHL_XMAX_KEYSHR_LOCK if infomask & HEAP_XMAX_KEYSHR_LOCK else 0)
            | (XLHL_KEYS_UPDATED if infomask2 & HEAP_KEYS_UPDATED else 0))


def fix_infomask_from_infobits(infobits: int, infomask: int, infomask2: int) -> tuple[int, int]:
    """fix_infomask_from_infobits."""
    infomask &= ~(HEAP_XMAX_IS_MULTI | HEAP_XMAX_LOCK_ONLY | HEAP_XMAX_KEYSHR_LOCK
                  | HEAP_XMAX_EXCL_LOCK)
    infomask2 &= ~HEAP_KEYS_UPDATED
    if infobits & XLHL_XMAX_IS_MULTI:
        infomask |= HEAP_XMAX_IS_MULTI
    if infobits & XLHL_XMAX_LOCK_ONLY:
        infomask |= HEAP_XMAX_LOCK_ONLY
    if infobits & XLHL_XMAX_EXCL_LOCK:
        infomask |= HEAP_XMAX_EXCL_LOCK
    if infobits & XLHL_XMAX_KEYSHR_LOCK:
        infomask |= HEAP_XMAX_KEYSHR_LOCK
    if infobits & XLHL_KEYS_UPDATED:
        infomask2 |= HEAP_KEYS_UPDATED
    return infomask, infomask2


# HEAP_XMAX_BITS (htup_details.h) and HEAP_MOVED
HEAP_XMAX_BITS = (HEAP_XMAX_COMMITTED | HEAP_XMAX_INVALID | HEAP_XMAX_IS_MULTI
                  | HEAP_LOCK_MASK | HEAP_XMAX_LOCK_ONLY)
HEAP_MOVED = 0x4000 | 0x8000  # HEAP_MOVED_OFF | HEAP_MOVED_IN (t_infomask)
HEAP_HOT_UPDATED = 0x4000     # t_infomask2
# HeapTupleHeaderSetMovedPartitions: t_ctid = (InvalidBlockNumber, MovedPartitionsOffsetNumber)
_MOVED_PARTITIONS_CTID = (0xFFFFFFFF, 0xFFFD)


def relation_needs_wal(rel) -> bool:
    """RelationNeedsWAL: permanent relations (no wal_level=minimal skipping here)."""
    return rel.relpersistence == "p"


def _xlog_insert(rmid: int, info: int, main: bytes, blocks: list[BlockRef], xid: int) -> int:
    return xlog.xlog_insert(rmid, info, main, blocks, xid=xid)


# -- logging (heapam.c) ---------------------------------------------------------------------

def log_heap_insert(rel, page, blkno: int, offnum: int, tup, xid: int, flags: int = 0) -> int:
    """heap_insert's XLOG_HEAP_INSERT for ``tup`` (the formed tuple) now at offnum."""
    info = XLOG_HEAP_INSERT
    init = offnum == bp.FirstOffsetNumber and bp.page_get_max_offset_number(page) == 1
    if init:
        info |= XLOG_HEAP_INIT_PAGE
    infomask2, infomask = _INFOMASKS.unpack_from(tup, 18)
    data = XL_HEAP_HEADER.pack(infomask2, infomask, tup[22]) + bytes(tup[SizeofHeapTupleHeader:])
    block = BlockRef(0, rel.rnode, MAIN_FORKNUM, blkno, page, data, will_init=init,
                     standard=True)
    return _xlog_insert(xi.RM_HEAP_ID, info, XL_HEAP_INSERT.pack(offnum, flags), [block], xid)


def log_heap_multi_insert(rel, page, blkno: int, offnums: list[int], tups: list,
                          xid: int, init: bool, last: bool) -> int:
    """heap_multi_insert's XLOG_HEAP2_MULTI_INSERT for the tuples put on one page."""
    info = XLOG_HEAP2_MULTI_INSERT
    flags = XLH_INSERT_LAST_IN_MULTI if last else 0
    n = len(tups)
    main = XL_HEAP_MULTI_INSERT.pack(flags, n)
    if init:
        info |= XLOG_HEAP_INIT_PAGE
    else:
        main += struct.pack(f"<{n}H", *offnums)
    parts = bytearray()
    for tup in tups:
        if len(parts) & 1:  # SHORTALIGN
            parts.append(0)
        infomask2, infomask = _INFOMASKS.unpack_from(tup, 18)
        datalen = len(tup) - SizeofHeapTupleHeader
        parts += XL_MULTI_INSERT_TUPLE.pack(datalen, infomask2, infomask, tup[22])
        parts += tup[SizeofHeapTupleHeader:]
    block = BlockRef(0, rel.rnode, MAIN_FORKNUM, blkno, page, bytes(parts), will_init=init,
                     standard=True)
    return _xlog_insert(xi.RM_HEAP2_ID, info, main, [block], xid)


def log_heap_delete(rel, page, blkno: int, offnum: int, xmax: int, infobits: int,
                    xid: int, flags: int = 0) -> int:
    block = BlockRef(0, rel.rnode, MAIN_FORKNUM, blkno, page, b"", standard=True)
    return _xlog_insert(xi.RM_HEAP_ID, XLOG_HEAP_DELETE,
                        XL_HEAP_DELETE.pack(xmax, offnum, infobits, flags), [block], xid)


def log_heap_lock(rel, page, blkno: int, offnum: int, locking_xid: int, infobits: int,
                  xid: int, flags: int = 0) -> int:
    block = BlockRef(0, rel.rnode, MAIN_FORKNUM, blkno, page, b"", standard=True)
    return _xlog_insert(xi.RM_HEAP_ID, XLOG_HEAP_LOCK,
                        XL_HEAP_LOCK.pack(locking_xid, offnum, infobits, flags), [block], xid)


def xlog_check_buffer_needs_backup(page) -> bool:
    """XLogCheckBufferNeedsBackup: would the next record touching this page
    carry its full-page image?"""
    redo, do_page_writes = xlog.get_full_page_write_info()
    return do_page_writes and bp.page_get_lsn(page) <= redo


def _common_prefix(a, b, m: int) -> int:
    """How many of the first ``m`` bytes of a and b are equal (found in C: the
    XOR of the two as big integers has its first set bit at the first difference)."""
    if m <= 0:
        return 0
    x = int.from_bytes(a[:m], "big") ^ int.from_bytes(b[:m], "big")
    return m if not x else m - (x.bit_length() + 7) // 8


def _common_suffix(a, b, k: int) -> int:
    """How many of the last ``k`` bytes of a and b are equal."""
    if k <= 0:
        return 0
    x = int.from_bytes(a[len(a) - k:], "big") ^ int.from_bytes(b[len(b) - k:], "big")
    return k if not x else ((x & -x).bit_length() - 1) // 8


def log_heap_update(rel, oldpage, newpage, oldblk: int, newblk: int, old_offnum: int,
                    old_xmax: int, old_infobits: int, old_data, new_offnum: int, newtup,
                    hot: bool, xid: int) -> int:
    """log_heap_update: ``old_data`` is the old tuple's bytes (header included, as
    on the page), ``newtup`` the new tuple as placed. On the same page the bytes
    the new tuple shares with the old at its start and end are left out."""
    info = XLOG_HEAP_HOT_UPDATE if hot else XLOG_HEAP_UPDATE
    prefixlen = suffixlen = 0
    new_hoff = newtup[22]
    if oldblk == newblk and not xlog_check_buffer_needs_backup(newpage):
        old_hoff = old_data[22]
        oldp = old_data[old_hoff:]
        newp = memoryview(newtup)[new_hoff:]
        lo, ln = len(oldp), len(newp)
        m = lo if lo < ln else ln
        prefixlen = _common_prefix(oldp, newp, m)
        if prefixlen < 3:
            prefixlen = 0
        suffixlen = _common_suffix(oldp, newp, m - prefixlen)
        if suffixlen < 3:
            suffixlen = 0
    flags = 0
    if prefixlen:
        flags |= XLH_UPDATE_PREFIX_FROM_OLD
    if suffixlen:
        flags |= XLH_UPDATE_SUFFIX_FROM_OLD
    init = new_offnum == bp.FirstOffsetNumber and bp.page_get_max_offset_number(newpage) == 1
    if init:
        info |= XLOG_HEAP_INIT_PAGE
    new_xmax = _XMAX.unpack_from(newtup, 4)[0]
    main = XL_HEAP_UPDATE.pack(old_xmax, old_offnum, old_infobits, flags, new_xmax, new_offnum)
    data = bytearray()
    if prefixlen and suffixlen:
        data += struct.pack("<HH", prefixlen, suffixlen)
    elif prefixlen:
        data += _U16.pack(prefixlen)
    elif suffixlen:
        data += _U16.pack(suffixlen)
    infomask2, infomask = _INFOMASKS.unpack_from(newtup, 18)
    data += XL_HEAP_HEADER.pack(infomask2, infomask, new_hoff)
    if not prefixlen:
        data += newtup[SizeofHeapTupleHeader:len(newtup) - suffixlen]
    else:
        data += newtup[SizeofHeapTupleHeader:new_hoff]  # bitmap and padding
        data += newtup[new_hoff + prefixlen:len(newtup) - suffixlen]
    blocks = [BlockRef(0, rel.rnode, MAIN_FORKNUM, newblk, newpage, bytes(data),
                       will_init=init, standard=True)]
    if oldblk != newblk:
        blocks.append(BlockRef(1, rel.rnode, MAIN_FORKNUM, oldblk, oldpage, b"",
                               standard=True))
    return _xlog_insert(xi.RM_HEAP_ID, info, main, blocks, xid)


def log_heap_prune(rel, page, blkno: int, latest_removed_xid: int, redirected: list[int],
                   nowdead: list[int], nowunused: list[int], xid: int) -> int:
    """heap_page_prune's XLOG_HEAP2_PRUNE (``redirected`` is a flat list of
    from, to pairs)."""
    main = XL_HEAP_PRUNE.pack(latest_removed_xid, len(redirected) // 2, len(nowdead))
    offs = redirected + nowdead + nowunused
    data = struct.pack(f"<{len(offs)}H", *offs)
    block = BlockRef(0, rel.rnode, MAIN_FORKNUM, blkno, page, data, standard=True)
    return _xlog_insert(xi.RM_HEAP2_ID, XLOG_HEAP2_PRUNE, main, [block], xid)


def log_heap_vacuum(rel, page, blkno: int, nowunused: list[int], xid: int) -> int:
    """lazy_vacuum_heap_page's XLOG_HEAP2_VACUUM."""
    data = struct.pack(f"<{len(nowunused)}H", *nowunused)
    block = BlockRef(0, rel.rnode, MAIN_FORKNUM, blkno, page, data, standard=True)
    return _xlog_insert(xi.RM_HEAP2_ID, XLOG_HEAP2_VACUUM, XL_HEAP_VACUUM.pack(len(nowunused)),
                        [block], xid)


# -- redo helpers -----------------------------------------------------------------------------

def _init_buffer_for_redo(record, block_id: int) -> int:
    """XLogInitBufferForRedo: the block zeroed and exclusively locked (the record
    re-initialises the page, so its old contents do not matter)."""
    blk = record.block(block_id)
    reln = smgr.smgr_open(RelFileNode(*blk.rnode))
    if not smgr.smgr_exists(reln, blk.fork):
        smgr.smgr_create(reln, blk.fork, is_redo=True)
    nblocks = smgr.smgr_nblocks(reln, blk.fork)
    while nblocks <= blk.blkno:
        smgr.smgr_extend(reln, blk.fork, nblocks, None)
        nblocks += 1
    return bufmgr.read_buffer_extended(reln, blk.fork, blk.blkno, bufmgr.RBM_ZERO_AND_LOCK)


def _normal_item(page, offnum: int) -> int:
    """The offset of a normal item, or PANIC "invalid lp"."""
    if bp.page_get_max_offset_number(page) < offnum:
        raise PgError("XX000", "invalid lp", severity=PANIC)
    off, flags, _length = bp.item_id(page, offnum)
    if flags != bp.LP_NORMAL:
        raise PgError("XX000", "invalid lp", severity=PANIC)
    return off


def _redo_tuple(header: bytes, data, xid: int, blkno: int, offnum: int,
                xmax: int = 0) -> bytearray:
    """A tuple as redo rebuilds it: header fields from the record, xmin the
    record's xid, cmin FirstCommandId, t_ctid its own location."""
    infomask2, infomask, hoff = XL_HEAP_HEADER.unpack(header)
    tup = bytearray(SizeofHeapTupleHeader)
    struct.pack_into("<IIIHHHHHB", tup, 0, xid, xmax, FirstCommandId, blkno >> 16,
                     blkno & 0xFFFF, offnum, infomask2, infomask, hoff)
    tup += data
    return tup


def _add_item(page, tup, offnum: int) -> None:
    if bp.page_add_item(page, tup, offnum, True, True) == bp.InvalidOffsetNumber:
        raise PgError("XX000", "failed to add tuple", severity=PANIC)


def _record_free_space(blk, freespace: int) -> None:
    from storage.freespace import xlog_record_page_with_free_space

    xlog_record_page_with_free_space(RelFileNode(*blk.rnode), blk.blkno, freespace)


# -- redo (heapam.c) ---------------------------------------------------------------------------

def heap_xlog_insert(record) -> None:
    offnum, flags = XL_HEAP_INSERT.unpack_from(record.main_data, 0)
    blk = record.block(0)
    if record.info & XLOG_HEAP_INIT_PAGE:
        buf = _init_buffer_for_redo(record, 0)
        bp.page_init(bufmgr.buffer_get_page(buf), bp.BLCKSZ, 0)
        action = BLK_NEEDS_REDO
    else:
        action, buf = xlog_read_buffer_for_redo(record, 0)
    freespace = bp.BLCKSZ
    if action == BLK_NEEDS_REDO:
        page = bufmgr.buffer_get_page(buf)
        if bp.page_get_max_offset_number(page) + 1 < offnum:
            raise PgError("XX000", "invalid max offset number", severity=PANIC)
        data = blk.data
        tup = _redo_tuple(data[:5], data[5:], record.xid, blk.blkno, offnum)
        _add_item(page, tup, offnum)
        freespace = bp.page_get_heap_free_space(page)
        bp.page_set_lsn(page, record.end_lsn)
        if flags & XLH_INSERT_ALL_VISIBLE_CLEARED:
            bp.page_clear_all_visible(page)
        if flags & XLH_INSERT_ALL_FROZEN_SET:
            bp.page_set_all_visible(page)
        bufmgr.mark_buffer_dirty(buf)
    if buf:
        bufmgr.unlock_release_buffer(buf)
    if action == BLK_NEEDS_REDO and freespace < _FREESPACE_LOW:
        _record_free_space(blk, freespace)


def heap_xlog_multi_insert(record) -> None:
    main = record.main_data
    flags, ntuples = XL_HEAP_MULTI_INSERT.unpack_from(main, 0)
    isinit = bool(record.info & XLOG_HEAP_INIT_PAGE)
    blk = record.block(0)
    if isinit:
        buf = _init_buffer_for_redo(record, 0)
        bp.page_init(bufmgr.buffer_get_page(buf), bp.BLCKSZ, 0)
        action = BLK_NEEDS_REDO
        offsets = range(1, ntuples + 1)
    else:
        action, buf = xlog_read_buffer_for_redo(record, 0)
        offsets = struct.unpack_from(f"<{ntuples}H", main, XL_HEAP_MULTI_INSERT.size)
    freespace = bp.BLCKSZ
    if action == BLK_NEEDS_REDO:
        page = bufmgr.buffer_get_page(buf)
        data = blk.data
        pos = 0
        for offnum in offsets:
            if bp.page_get_max_offset_number(page) + 1 < offnum:
                raise PgError("XX000", "invalid max offset number", severity=PANIC)
            pos += pos & 1  # SHORTALIGN
            datalen, infomask2, infomask, hoff = XL_MULTI_INSERT_TUPLE.unpack_from(data, pos)
            pos += XL_MULTI_INSERT_TUPLE.size
            tup = _redo_tuple(XL_HEAP_HEADER.pack(infomask2, infomask, hoff),
                              data[pos:pos + datalen], record.xid, blk.blkno, offnum)
            pos += datalen
            _add_item(page, tup, offnum)
        if pos != len(data):
            raise PgError("XX000", "total tuple length mismatch", severity=PANIC)
        freespace = bp.page_get_heap_free_space(page)
        bp.page_set_lsn(page, record.end_lsn)
        if flags & XLH_INSERT_ALL_VISIBLE_CLEARED:
            bp.page_clear_all_visible(page)
        if flags & XLH_INSERT_ALL_FROZEN_SET:
            bp.page_set_all_visible(page)
        bufmgr.mark_buffer_dirty(buf)
    if buf:
        bufmgr.unlock_release_buffer(buf)
    if action == BLK_NEEDS_REDO and freespace < _FREESPACE_LOW:
        _record_free_space(blk, freespace)


def _set_xmax_fields(page, off: int, infobits: int, xmax: int, *, hot: bool | None,
                     ctid: tuple[int, int] | None) -> None:
    """The common tail of delete/update/lock redo on the old tuple."""
    infomask2, infomask = _INFOMASKS.unpack_from(page, off + 18)
    infomask &= ~(HEAP_XMAX_BITS | HEAP_MOVED)
    infomask2 &= ~HEAP_KEYS_UPDATED
    if hot is True:
        infomask2 |= HEAP_HOT_UPDATED
    elif hot is False:
        infomask2 &= ~HEAP_HOT_UPDATED
    infomask, infomask2 = fix_infomask_from_infobits(infobits, infomask, infomask2)
    _INFOMASKS.pack_into(page, off + 18, infomask2, infomask & ~0x0020)  # not HEAP_COMBOCID
    _XMAX.pack_into(page, off + 4, xmax)
    _U32.pack_into(page, off + 8, FirstCommandId)
    if ctid is not None:
        _CTID.pack_into(page, off + 12, ctid[0] >> 16, ctid[0] & 0xFFFF, ctid[1])


def heap_xlog_delete(record) -> None:
    xmax, offnum, infobits, flags = XL_HEAP_DELETE.unpack_from(record.main_data, 0)
    blk = record.block(0)
    action, buf = xlog_read_buffer_for_redo(record, 0)
    if action == BLK_NEEDS_REDO:
        page = bufmgr.buffer_get_page(buf)
        off = _normal_item(page, offnum)
        super_delete = bool(flags & XLH_DELETE_IS_SUPER)
        _set_xmax_fields(page, off, infobits,
                         _XMAX.unpack_from(page, off + 4)[0] if super_delete else xmax,
                         hot=False,
                         ctid=_MOVED_PARTITIONS_CTID if flags & XLH_DELETE_IS_PARTITION_MOVE
                         else (blk.blkno, offnum))
        if super_delete:
            _U32.pack_into(page, off, 0)  # HeapTupleHeaderSetXmin(InvalidTransactionId)
        bp.page_set_prunable(page, record.xid)
        if flags & XLH_DELETE_ALL_VISIBLE_CLEARED:
            bp.page_clear_all_visible(page)
        bp.page_set_lsn(page, record.end_lsn)
        bufmgr.mark_buffer_dirty(buf)
    if buf:
        bufmgr.unlock_release_buffer(buf)


def heap_xlog_update(record, hot_update: bool) -> None:
    old_xmax, old_offnum, old_infobits, flags, new_xmax, new_offnum = \
        XL_HEAP_UPDATE.unpack_from(record.main_data, 0)
    nblk = record.block(0)
    oblk = record.block(1)
    newblk = nblk.blkno
    oldblk = oblk.blkno if oblk is not None else newblk
    # The old version first; the old page stays locked until the new version is in.
    oldaction, obuf = xlog_read_buffer_for_redo(record, 0 if oldblk == newblk else 1)
    old_tuple = None
    if oldaction == BLK_NEEDS_REDO:
        page = bufmgr.buffer_get_page(obuf)
        off = _normal_item(page, old_offnum)
        old_tuple = bytes(bp.page_get_item(page, old_offnum))
        _set_xmax_fields(page, off, old_infobits, old_xmax, hot=hot_update,
                         ctid=(newblk, new_offnum))
        bp.page_set_prunable(page, record.xid)
        if flags & XLH_UPDATE_OLD_ALL_VISIBLE_CLEARED:
            bp.page_clear_all_visible(page)
        bp.page_set_lsn(page, record.end_lsn)
        bufmgr.mark_buffer_dirty(obuf)
    if oldblk == newblk:
        nbuf, newaction = obuf, oldaction
    elif record.info & XLOG_HEAP_INIT_PAGE:
        nbuf = _init_buffer_for_redo(record, 0)
        bp.page_init(bufmgr.buffer_get_page(nbuf), bp.BLCKSZ, 0)
        newaction = BLK_NEEDS_REDO
    else:
        newaction, nbuf = xlog_read_buffer_for_redo(record, 0)
    freespace = bp.BLCKSZ
    if newaction == BLK_NEEDS_REDO:
        page = bufmgr.buffer_get_page(nbuf)
        if bp.page_get_max_offset_number(page) + 1 < new_offnum:
            raise PgError("XX000", "invalid max offset number", severity=PANIC)
        data = nblk.data
        pos = 0
        prefixlen = suffixlen = 0
        if flags & XLH_UPDATE_PREFIX_FROM_OLD:
            prefixlen = _U16.unpack_from(data, pos)[0]
            pos += 2
        if flags & XLH_UPDATE_SUFFIX_FROM_OLD:
            suffixlen = _U16.unpack_from(data, pos)[0]
            pos += 2
        header = bytes(data[pos:pos + 5])
        pos += 5
        hoff = header[4]
        rest = data[pos:]
        if prefixlen or suffixlen:
            if old_tuple is None:
                raise PgError("XX000", "update record refers to an old tuple that is missing",
                              severity=PANIC)
            old_hoff = old_tuple[22]
        if prefixlen:
            nbits = hoff - SizeofHeapTupleHeader
            body = (bytes(rest[:nbits]) + old_tuple[old_hoff:old_hoff + prefixlen]
                    + bytes(rest[nbits:]))
        else:
            body = bytes(rest)
        if suffixlen:
            body += old_tuple[len(old_tuple) - suffixlen:]
        tup = _redo_tuple(header, body, record.xid, newblk, new_offnum, new_xmax)
        _add_item(page, tup, new_offnum)
        if flags & XLH_UPDATE_NEW_ALL_VISIBLE_CLEARED:
            bp.page_clear_all_visible(page)
        freespace = bp.page_get_heap_free_space(page)
        bp.page_set_lsn(page, record.end_lsn)
        bufmgr.mark_buffer_dirty(nbuf)
    if nbuf and nbuf != obuf:
        bufmgr.unlock_release_buffer(nbuf)
    if obuf:
        bufmgr.unlock_release_buffer(obuf)
    if newaction == BLK_NEEDS_REDO and not hot_update and freespace < _FREESPACE_LOW:
        _record_free_space(nblk, freespace)


def heap_xlog_lock(record) -> None:
    locking_xid, offnum, infobits, _flags = XL_HEAP_LOCK.unpack_from(record.main_data, 0)
    blk = record.block(0)
    action, buf = xlog_read_buffer_for_redo(record, 0)
    if action == BLK_NEEDS_REDO:
        page = bufmgr.buffer_get_page(buf)
        off = _normal_item(page, offnum)
        infomask2, infomask = _INFOMASKS.unpack_from(page, off + 18)
        new_infomask, _ = fix_infomask_from_infobits(
            infobits, infomask & ~(HEAP_XMAX_BITS | HEAP_MOVED), infomask2)
        from access.heapam_visibility import xmax_is_locked_only

        locked_only = xmax_is_locked_only(new_infomask)
        _set_xmax_fields(page, off, infobits, locking_xid,
                         hot=False if locked_only else None,
                         ctid=(blk.blkno, offnum) if locked_only else None)
        bp.page_set_lsn(page, record.end_lsn)
        bufmgr.mark_buffer_dirty(buf)
    if buf:
        bufmgr.unlock_release_buffer(buf)


def heap_xlog_prune(record) -> None:
    from access.pruneheap import heap_page_prune_execute

    _latest, nredirected, ndead = XL_HEAP_PRUNE.unpack_from(record.main_data, 0)
    blk = record.block(0)
    action, buf = xlog_read_buffer_for_redo(record, 0)
    if action == BLK_NEEDS_REDO:
        page = bufmgr.buffer_get_page(buf)
        data = blk.data
        offs = list(struct.unpack(f"<{len(data) // 2}H", data))
        redirected = offs[:2 * nredirected]
        nowdead = offs[2 * nredirected:2 * nredirected + ndead]
        nowunused = offs[2 * nredirected + ndead:]
        heap_page_prune_execute(page, redirected, nowdead, nowunused)
        bp.page_set_lsn(page, record.end_lsn)
        bufmgr.mark_buffer_dirty(buf)
    if buf:
        freespace = bp.page_get_heap_free_space(bufmgr.buffer_get_page(buf))
        bufmgr.unlock_release_buffer(buf)
        _record_free_space(blk, freespace)


def heap_xlog_vacuum(record) -> None:
    from access.pruneheap import page_truncate_line_pointer_array

    (nunused,) = XL_HEAP_VACUUM.unpack_from(record.main_data, 0)
    blk = record.block(0)
    action, buf = xlog_read_buffer_for_redo(record, 0)
    if action == BLK_NEEDS_REDO:
        page = bufmgr.buffer_get_page(buf)
        for off in struct.unpack_from(f"<{nunused}H", blk.data, 0):
            bp.item_id_set_unused(page, off)
        page_truncate_line_pointer_array(page)
        bp.page_set_lsn(page, record.end_lsn)
        bufmgr.mark_buffer_dirty(buf)
    if buf:
        freespace = bp.page_get_heap_free_space(bufmgr.buffer_get_page(buf))
        bufmgr.unlock_release_buffer(buf)
        _record_free_space(blk, freespace)


def _restore_images(record) -> None:
    for blk in record.blocks:
        if blk.has_image and blk.apply_image:
            _action, buf = xlog_read_buffer_for_redo(record, blk.block_id)
            if buf:
                bufmgr.unlock_release_buffer(buf)


def heap_redo(record) -> None:
    """heap_redo: RM_HEAP_ID records."""
    op = record.info & XLOG_HEAP_OPMASK
    if op == XLOG_HEAP_INSERT:
        heap_xlog_insert(record)
    elif op == XLOG_HEAP_DELETE:
        heap_xlog_delete(record)
    elif op == XLOG_HEAP_UPDATE:
        heap_xlog_update(record, False)
    elif op == XLOG_HEAP_HOT_UPDATE:
        heap_xlog_update(record, True)
    elif op == XLOG_HEAP_LOCK:
        heap_xlog_lock(record)
    elif op == XLOG_HEAP_TRUNCATE:
        pass  # nothing to do on the heap: TRUNCATE's files are smgr's business
    else:
        _restore_images(record)


def heap2_redo(record) -> None:
    """heap2_redo: RM_HEAP2_ID records."""
    op = record.info & XLOG_HEAP_OPMASK
    if op == XLOG_HEAP2_PRUNE:
        heap_xlog_prune(record)
    elif op == XLOG_HEAP2_VACUUM:
        heap_xlog_vacuum(record)
    elif op == XLOG_HEAP2_MULTI_INSERT:
        heap_xlog_multi_insert(record)
    elif op == XLOG_HEAP2_NEW_CID:
        pass  # only for logical decoding
    else:
        _restore_images(record)


register_redo(xi.RM_HEAP_ID, heap_redo)
register_redo(xi.RM_HEAP2_ID, heap2_redo)


# -- wal_consistency_checking's view of a page --------------------------------------------------

MASK_MARKER = 0


def heap_mask(page, blkno: int) -> bytearray:
    """heap_mask: a copy of a heap page with what redo may legitimately leave
    different masked: LSN and checksum, pd_prune_xid and the page hint flags,
    the unused space, tuple hint bits (all of t_infomask's transaction bits for
    tuples whose xmin is not frozen), t_cid, and padding after each item."""
    p = bytearray(page)
    p[0:10] = bytes(10)  # pd_lsn, pd_checksum
    flags = bp.page_get_flags(p) & ~(bp.PD_PAGE_FULL | bp.PD_HAS_FREE_LINES | bp.PD_ALL_VISIBLE)
    _U16.pack_into(p, 10, flags)
    _U32.pack_into(p, 20, MASK_MARKER)  # pd_prune_xid
    lower, upper = bp.page_get_lower(p), bp.page_get_upper(p)
    if lower < upper:
        p[lower:upper] = bytes(upper - lower)
    for offnum in range(1, bp.page_get_max_offset_number(p) + 1):
        off, lp_flags, length = bp.item_id(p, offnum)
        if lp_flags == bp.LP_NORMAL:
            infomask = _U16.unpack_from(p, off + 20)[0]
            if infomask & HEAP_XMIN_FROZEN != HEAP_XMIN_FROZEN:
                infomask &= ~HEAP_XACT_MASK
            else:
                infomask &= ~(HEAP_XMAX_INVALID | HEAP_XMAX_COMMITTED)
            _U16.pack_into(p, off + 20, infomask)
            _U32.pack_into(p, off + 8, MASK_MARKER)  # t_cid
        if lp_flags in (bp.LP_NORMAL, bp.LP_DEAD) and length:
            pad = ((length + 7) & ~7) - length
            if pad:
                p[off + length:off + length + pad] = bytes(pad)
    return p
