"""B-tree page and tuple layout — mirrors src/include/access/nbtree.h and
src/include/access/nbtxlog.h of PostgreSQL 15, byte for byte.

Page layout (every page but the metapage)::

    PageHeaderData | line pointers ... | free | ... index tuples | BTPageOpaqueData

    BTPageOpaqueData (16 bytes of special space at 8176):
        btpo_prev uint32, btpo_next uint32 (P_NONE = 0 at either end of a level),
        btpo_level uint32 (0 = leaf), btpo_flags uint16, btpo_cycleid uint16

On a page that is not the rightmost of its level, item 1 is the high key
(P_HIKEY) and data items start at 2 (P_FIRSTKEY); the rightmost page has no high
key. The first data item of an internal page is "minus infinity": a pivot
tuple truncated to zero attributes whose only content is its downlink.

Tuples are IndexTupleData (access/heaptuple.py). A *pivot* tuple (high keys,
internal-page items) has INDEX_ALT_TID_MASK in t_info; its t_tid block is the
downlink (internal pages) and its t_tid offset holds the number of key
attributes it keeps, plus BT_PIVOT_HEAP_TID_ATTR when a heap TID is appended as
the last 6 bytes of the tuple (suffix truncation, _bt_truncate). A leaf
*non-pivot* tuple's t_tid is the heap TID, which is also the last key column
(BTREE_VERSION 4, "heapkeyspace"): every index tuple is unique.

Block 0 is the metapage: BTMetaPageData right after the page header (pd_lower
just past it), special space flagged BTP_META.

Where tusk differs: no posting-list tuples (deduplication is not implemented),
so BT_IS_POSTING is never set and btm_allequalimage is only recorded.
"""

from __future__ import annotations

import struct

from storage.bufpage import BLCKSZ, SIZE_OF_PAGE_HEADER_DATA

# -- BTPageOpaqueData ---------------------------------------------------------------------

OPAQUE = struct.Struct("<IIIHH")        # prev, next, level, flags, cycleid
SIZE_OF_BT_OPAQUE = OPAQUE.size         # 16
BT_SPECIAL = BLCKSZ - SIZE_OF_BT_OPAQUE  # 8176: where the opaque data starts
OFF_PREV = BT_SPECIAL
OFF_NEXT = BT_SPECIAL + 4
OFF_LEVEL = BT_SPECIAL + 8
OFF_FLAGS = BT_SPECIAL + 12
OFF_CYCLEID = BT_SPECIAL + 14

BTP_LEAF = 1 << 0
BTP_ROOT = 1 << 1
BTP_DELETED = 1 << 2
BTP_META = 1 << 3
BTP_HALF_DEAD = 1 << 4
BTP_SPLIT_END = 1 << 5
BTP_HAS_GARBAGE = 1 << 6
BTP_INCOMPLETE_SPLIT = 1 << 7
BTP_IGNORE = BTP_DELETED | BTP_HALF_DEAD   # P_IGNORE

MAX_BT_CYCLE_ID = 0xFF7F

P_NONE = 0
P_HIKEY = 1
P_FIRSTKEY = 2

# -- the metapage -------------------------------------------------------------------------

BTREE_METAPAGE = 0
BTREE_MAGIC = 0x053162
BTREE_VERSION = 4
BTREE_MIN_VERSION = 2
BTREE_NOVAC_VERSION = 3

# BTMetaPageData at PageGetContents (offset 24): magic, version, root, level, fastroot,
# fastlevel, last_cleanup_num_delpages, (pad), last_cleanup_num_heap_tuples (float8,
# deprecated: always -1), allequalimage. sizeof = 48.
META = struct.Struct("<IIIIIII4xd?")
META_OFFSET = SIZE_OF_PAGE_HEADER_DATA
SIZEOF_BT_META = 48
META_PD_LOWER = META_OFFSET + SIZEOF_BT_META  # 72

# -- fill factors and size limits -------------------------------------------------------------

BTREE_MIN_FILLFACTOR = 10
BTREE_DEFAULT_FILLFACTOR = 90
BTREE_NONLEAF_FILLFACTOR = 70
BTREE_SINGLEVAL_FILLFACTOR = 96

SIZEOF_ITEM_ID = 4
SIZEOF_ITEM_POINTER = 6
SIZEOF_INDEX_TUPLE_DATA = 8


def maxalign(n: int) -> int:
    return (n + 7) & ~7


def maxalign_down(n: int) -> int:
    return n & ~7


# BTMaxItemSize: three items (plus a heap TID each) must fit on a page.
BT_MAX_ITEM_SIZE = maxalign_down(
    (BLCKSZ - maxalign(SIZE_OF_PAGE_HEADER_DATA + 3 * SIZEOF_ITEM_ID + 3 * SIZEOF_ITEM_POINTER)
     - maxalign(SIZE_OF_BT_OPAQUE)) // 3)                                   # 2704
BT_MAX_ITEM_SIZE_NO_HEAP_TID = maxalign_down(
    (BLCKSZ - maxalign(SIZE_OF_PAGE_HEADER_DATA + 3 * SIZEOF_ITEM_ID)
     - maxalign(SIZE_OF_BT_OPAQUE)) // 3)                                   # 2712

# -- tuple header bits ------------------------------------------------------------------------

ITUP = struct.Struct("<HHHH")   # t_tid (bi_hi, bi_lo, ip_posid), t_info
U16 = struct.Struct("<H")
U32 = struct.Struct("<I")
TID = struct.Struct("<HHH")
INDEX_SIZE_MASK = 0x1FFF
INDEX_ALT_TID_MASK = 0x2000      # INDEX_AM_RESERVED_BIT
INDEX_VAR_MASK = 0x4000
INDEX_NULL_MASK = 0x8000
BT_OFFSET_MASK = 0x0FFF
BT_STATUS_OFFSET_MASK = 0xF000
BT_PIVOT_HEAP_TID_ATTR = 0x1000
BT_IS_POSTING = 0x2000

# A "minus infinity" pivot: t_tid zero (downlink set later), t_info = 8 | ALT, 0 atts.
MINUS_INFINITY = ITUP.pack(0, 0, 0, SIZEOF_INDEX_TUPLE_DATA | INDEX_ALT_TID_MASK)


def tuple_size(tup, off: int = 0) -> int:
    """IndexTupleSize."""
    return U16.unpack_from(tup, off + 6)[0] & INDEX_SIZE_MASK


def get_downlink(tup, off: int = 0) -> int:
    """BTreeTupleGetDownLink: the block number in t_tid."""
    hi, lo = struct.unpack_from("<HH", tup, off)
    return (hi << 16) | lo


def set_downlink(tup: bytearray, blkno: int, off: int = 0) -> None:
    """BTreeTupleSetDownLink."""
    struct.pack_into("<HH", tup, off, blkno >> 16, blkno & 0xFFFF)


def set_natts(tup: bytearray, natts: int, heaptid: bool) -> None:
    """BTreeTupleSetNAtts: mark ``tup`` a pivot keeping ``natts`` key attributes."""
    info = U16.unpack_from(tup, 6)[0]
    U16.pack_into(tup, 6, info | INDEX_ALT_TID_MASK)
    U16.pack_into(tup, 4, natts | (BT_PIVOT_HEAP_TID_ATTR if heaptid else 0))


def is_pivot(tup, off: int = 0) -> bool:
    """BTreeTupleIsPivot (heapkeyspace indexes: always reliable)."""
    info = U16.unpack_from(tup, off + 6)[0]
    return bool(info & INDEX_ALT_TID_MASK) and not \
        U16.unpack_from(tup, off + 4)[0] & BT_IS_POSTING


def heap_tid(tup, off: int = 0) -> tuple[int, int] | None:
    """BTreeTupleGetHeapTID: the heap TID key column, or None if truncated away."""
    hi, lo, pos, info = ITUP.unpack_from(tup, off)
    if info & INDEX_ALT_TID_MASK:
        if pos & BT_PIVOT_HEAP_TID_ATTR:
            hi, lo, pos = TID.unpack_from(tup, off + (info & INDEX_SIZE_MASK) - SIZEOF_ITEM_POINTER)
            return (hi << 16) | lo, pos
        return None
    return (hi << 16) | lo, pos


# -- WAL records (nbtxlog.h) ------------------------------------------------------------------

XLOG_BTREE_INSERT_LEAF = 0x00
XLOG_BTREE_INSERT_UPPER = 0x10
XLOG_BTREE_INSERT_META = 0x20
XLOG_BTREE_SPLIT_L = 0x30
XLOG_BTREE_SPLIT_R = 0x40
XLOG_BTREE_INSERT_POST = 0x50
XLOG_BTREE_DEDUP = 0x60
XLOG_BTREE_DELETE = 0x70
XLOG_BTREE_UNLINK_PAGE = 0x80
XLOG_BTREE_UNLINK_PAGE_META = 0x90
XLOG_BTREE_NEWROOT = 0xA0
XLOG_BTREE_MARK_PAGE_HALFDEAD = 0xB0
XLOG_BTREE_VACUUM = 0xC0
XLOG_BTREE_REUSE_PAGE = 0xD0
XLOG_BTREE_META_CLEANUP = 0xE0

# xl_btree_metadata: version, root, level, fastroot, fastlevel,
# last_cleanup_num_delpages, allequalimage (sizeof 28).
XL_METADATA = struct.Struct("<IIIIII?3x")
XL_INSERT = struct.Struct("<H")          # offnum (SizeOfBtreeInsert = 2)
XL_SPLIT = struct.Struct("<IHHH")         # level, firstrightoff, newitemoff, postingoff (10)
XL_NEWROOT = struct.Struct("<II")         # rootblk, level (8)
XL_VACUUM = struct.Struct("<HH")          # ndeleted, nupdated (4)
XL_DELETE = struct.Struct("<IHH")         # latestRemovedXid, ndeleted, nupdated (8)

# Buffer access modes (BT_READ / BT_WRITE are BUFFER_LOCK_SHARE / _EXCLUSIVE).
BT_READ = 1
BT_WRITE = 2
