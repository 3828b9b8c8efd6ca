"""The standard page layout — mirrors src/include/storage/bufpage.h, itemid.h and
src/backend/storage/page/bufpage.c (PostgreSQL 15), byte for byte:

    0   PageHeaderData (24 bytes, little-endian)
          pd_lsn           uint32 xlogid, uint32 xrecoff
          pd_checksum      uint16
          pd_flags         uint16   PD_HAS_FREE_LINES | PD_PAGE_FULL | PD_ALL_VISIBLE
          pd_lower         uint16   end of the line pointer array
          pd_upper         uint16   start of tuple space
          pd_special       uint16   start of special space
          pd_pagesize_version uint16  BLCKSZ | PG_PAGE_LAYOUT_VERSION (4)
          pd_prune_xid     uint32
    24  ItemIdData[]    one uint32 each: lp_off:15 | lp_flags:2 | lp_len:15
        ... free space ...
    pd_upper  items, growing down
    pd_special  special space (index AMs)

Functions work in place on a bytearray, memoryview or mmap slice (pages live in
shared memory) with precompiled struct objects; read-only helpers accept bytes.
Offsets are 1-based OffsetNumbers as in PostgreSQL. Differences: no
PageGetTempPage family, PageRepairFragmentation or index-tuple deletion yet;
PageAddItemExtended's elog(WARNING) refusals log and return InvalidOffsetNumber.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from storage.checksum import pg_checksum_page
from utils import elog
from utils.elog import PANIC, PgError

BLCKSZ = 8192
MAXIMUM_ALIGNOF = 8
PG_PAGE_LAYOUT_VERSION = 4
SIZE_OF_PAGE_HEADER_DATA = 24
SIZE_OF_ITEM_ID_DATA = 4
SIZEOF_HEAP_TUPLE_HEADER = 23  # offsetof(HeapTupleHeaderData, t_bits)

# pd_flags
PD_HAS_FREE_LINES = 0x0001
PD_PAGE_FULL = 0x0002
PD_ALL_VISIBLE = 0x0004
PD_VALID_FLAG_BITS = 0x0007

# lp_flags
LP_UNUSED = 0
LP_NORMAL = 1
LP_REDIRECT = 2
LP_DEAD = 3

InvalidOffsetNumber = 0
FirstOffsetNumber = 1
MaxOffsetNumber = BLCKSZ // SIZE_OF_ITEM_ID_DATA


def maxalign(n: int) -> int:
    return (n + MAXIMUM_ALIGNOF - 1) & ~(MAXIMUM_ALIGNOF - 1)


MaxHeapTuplesPerPage = (BLCKSZ - SIZE_OF_PAGE_HEADER_DATA) // (
    maxalign(SIZEOF_HEAP_TUPLE_HEADER) + SIZE_OF_ITEM_ID_DATA)  # 291

_HEADER = struct.Struct("<IIHHHHHHI")
_LSN = struct.Struct("<II")                 # at 0
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_LOWER_UPPER = struct.Struct("<HH")         # at 12
_LOWER_UPPER_SPECIAL = struct.Struct("<HHH")  # at 12
_FLAGS_LOWER_UPPER_SPECIAL = struct.Struct("<HHHH")  # at 10
_CHECKSUM_TO_SPECIAL = struct.Struct("<HHHHH")  # at 8
_ITEMID = _U32

_OFF_CHECKSUM = 8
_OFF_FLAGS = 10
_OFF_LOWER = 12
_OFF_UPPER = 14
_OFF_SPECIAL = 16
_OFF_PAGESIZE_VERSION = 18
_OFF_PRUNE_XID = 20

_ZERO_PAGE = bytes(BLCKSZ)

Page = bytearray | memoryview
ReadablePage = bytes | bytearray | memoryview


# -- errors ------------------------------------------------------------------------------

class DataCorruptedError(PgError):
    """ERRCODE_DATA_CORRUPTED (XX001)."""

    def __init__(self, message: str, *, detail: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__("XX001", message, detail=detail, hint=hint)


def checksum_failure_message(calculated: int, expected: int) -> str:
    """The WARNING PageIsVerifiedExtended logs on a checksum mismatch."""
    return f"page verification failed, calculated checksum {calculated} but expected {expected}"


class InvalidPageError(DataCorruptedError):
    """ReadBuffer's ERROR for a page that fails PageIsVerified."""

    def __init__(self, blkno: int, relpath: str) -> None:
        super().__init__(f"invalid page in block {blkno} of relation {relpath}")
        self.blkno = blkno
        self.relpath = relpath


def invalid_page_zeroing_message(blkno: int, relpath: str) -> str:
    """The WARNING ReadBuffer logs instead when zero_damaged_pages is on."""
    return f"invalid page in block {blkno} of relation {relpath}; zeroing out page"


# -- ItemId ------------------------------------------------------------------------------

def item_id_pack(off: int, flags: int, length: int) -> int:
    """The uint32 of an ItemIdData bitfield on little-endian GCC/Clang."""
    return (off & 0x7FFF) | ((flags & 3) << 15) | ((length & 0x7FFF) << 17)


def item_id_unpack(word: int) -> tuple[int, int, int]:
    return word & 0x7FFF, (word >> 15) & 3, word >> 17


def item_id(page: ReadablePage, offnum: int) -> tuple[int, int, int]:
    """PageGetItemId: (lp_off, lp_flags, lp_len) of line pointer ``offnum`` (1-based)."""
    w = _ITEMID.unpack_from(page, SIZE_OF_PAGE_HEADER_DATA + 4 * (offnum - 1))[0]
    return w & 0x7FFF, (w >> 15) & 3, w >> 17


_LP_ARRAY_UNPACKERS: dict[int, Callable] = {}


def line_pointer_words(page: ReadablePage, nline: int) -> list[int]:
    """The first ``nline`` line pointers as raw 32-bit words (index 0 is offset
    1), read with one unpack: cheaper than item_id per offset when a caller
    walks the whole array."""
    if nline <= 0:
        return []
    unpack = _LP_ARRAY_UNPACKERS.get(nline)
    if unpack is None:
        unpack = _LP_ARRAY_UNPACKERS[nline] = struct.Struct(f"<{nline}I").unpack_from
    return list(unpack(page, SIZE_OF_PAGE_HEADER_DATA))


def item_id_set(page: Page, offnum: int, off: int, flags: int, length: int) -> None:
    _ITEMID.pack_into(page, SIZE_OF_PAGE_HEADER_DATA + 4 * (offnum - 1),
                      (off & 0x7FFF) | ((flags & 3) << 15) | ((length & 0x7FFF) << 17))


def item_id_set_normal(page: Page, offnum: int, off: int, length: int) -> None:
    item_id_set(page, offnum, off, LP_NORMAL, length)


def item_id_set_unused(page: Page, offnum: int) -> None:
    item_id_set(page, offnum, 0, LP_UNUSED, 0)


def item_id_set_dead(page: Page, offnum: int) -> None:
    """ItemIdSetDead: dead, no storage."""
    item_id_set(page, offnum, 0, LP_DEAD, 0)


def item_id_mark_dead(page: Page, offnum: int) -> None:
    """ItemIdMarkDead: dead but keeping its storage (index killed items)."""
    off, _flags, length = item_id(page, offnum)
    item_id_set(page, offnum, off, LP_DEAD, length)


def item_id_set_redirect(page: Page, offnum: int, link: int) -> None:
    item_id_set(page, offnum, link, LP_REDIRECT, 0)


# -- header fields -----------------------------------------------------------------------

def page_header(page: ReadablePage) -> tuple[int, int, int, int, int, int, int, int, int]:
    """All header fields: (xlogid, xrecoff, checksum, flags, lower, upper, special,
    pagesize_version, prune_xid)."""
    return _HEADER.unpack_from(page, 0)


def page_is_new(page: ReadablePage) -> bool:
    """PageIsNew: pd_upper == 0 (never initialised)."""
    return _U16.unpack_from(page, _OFF_UPPER)[0] == 0


def page_is_empty(page: ReadablePage) -> bool:
    return _U16.unpack_from(page, _OFF_LOWER)[0] <= SIZE_OF_PAGE_HEADER_DATA


def page_get_lsn(page: ReadablePage) -> int:
    hi, lo = _LSN.unpack_from(page, 0)
    return (hi << 32) | lo


def page_set_lsn(page: Page, lsn: int) -> None:
    _LSN.pack_into(page, 0, lsn >> 32, lsn & 0xFFFFFFFF)


def page_get_checksum(page: ReadablePage) -> int:
    return _U16.unpack_from(page, _OFF_CHECKSUM)[0]


def page_get_flags(page: ReadablePage) -> int:
    return _U16.unpack_from(page, _OFF_FLAGS)[0]


def _set_flags(page: Page, flags: int) -> None:
    _U16.pack_into(page, _OFF_FLAGS, flags)


def page_has_free_line_pointers(page: ReadablePage) -> bool:
    return bool(page_get_flags(page) & PD_HAS_FREE_LINES)


def page_set_has_free_line_pointers(page: Page) -> None:
    _set_flags(page, page_get_flags(page) | PD_HAS_FREE_LINES)


def page_clear_has_free_line_pointers(page: Page) -> None:
    _set_flags(page, page_get_flags(page) & ~PD_HAS_FREE_LINES)


def page_is_full(page: ReadablePage) -> bool:
    return bool(page_get_flags(page) & PD_PAGE_FULL)


def page_set_full(page: Page) -> None:
    _set_flags(page, page_get_flags(page) | PD_PAGE_FULL)


def page_clear_full(page: Page) -> None:
    _set_flags(page, page_get_flags(page) & ~PD_PAGE_FULL)


def page_is_all_visible(page: ReadablePage) -> bool:
    return bool(page_get_flags(page) & PD_ALL_VISIBLE)


def page_set_all_visible(page: Page) -> None:
    _set_flags(page, page_get_flags(page) | PD_ALL_VISIBLE)


def page_clear_all_visible(page: Page) -> None:
    _set_flags(page, page_get_flags(page) & ~PD_ALL_VISIBLE)


def page_get_lower(page: ReadablePage) -> int:
    return _U16.unpack_from(page, _OFF_LOWER)[0]


def page_get_upper(page: ReadablePage) -> int:
    return _U16.unpack_from(page, _OFF_UPPER)[0]


def page_get_special_pointer(page: ReadablePage) -> int:
    """PageGetSpecialPointer, as an offset into the page."""
    return _U16.unpack_from(page, _OFF_SPECIAL)[0]


def page_get_page_size(page: ReadablePage) -> int:
    return _U16.unpack_from(page, _OFF_PAGESIZE_VERSION)[0] & 0xFF00


def page_get_page_layout_version(page: ReadablePage) -> int:
    return _U16.unpack_from(page, _OFF_PAGESIZE_VERSION)[0] & 0x00FF


def page_get_special_size(page: ReadablePage) -> int:
    return page_get_page_size(page) - page_get_special_pointer(page)


def page_get_prune_xid(page: ReadablePage) -> int:
    return _U32.unpack_from(page, _OFF_PRUNE_XID)[0]


def page_set_prunable(page: Page, xid: int) -> None:
    """PageSetPrunable: remember the oldest xid that may leave prunable tuples."""
    old = page_get_prune_xid(page)
    # TransactionIdPrecedes for normal xids: modulo-2^32 comparison.
    if old == 0 or ((xid - old) & 0xFFFFFFFF) >= 0x80000000:
        _U32.pack_into(page, _OFF_PRUNE_XID, xid)


def page_clear_prunable(page: Page) -> None:
    _U32.pack_into(page, _OFF_PRUNE_XID, 0)


def page_get_max_offset_number(page: ReadablePage) -> int:
    """PageGetMaxOffsetNumber: number of line pointers (0 for a new page)."""
    lower = _U16.unpack_from(page, _OFF_LOWER)[0]
    if lower <= SIZE_OF_PAGE_HEADER_DATA:
        return 0
    return (lower - SIZE_OF_PAGE_HEADER_DATA) >> 2


# -- init, items, free space ---------------------------------------------------------------

def page_init(page: Page, page_size: int = BLCKSZ, special_size: int = 0) -> None:
    """PageInit: zero the page and set up an empty header and special space."""
    special_size = maxalign(special_size)
    if page_size != BLCKSZ or page_size <= special_size + SIZE_OF_PAGE_HEADER_DATA:
        raise ValueError(f"bad page size {page_size} / special size {special_size}")
    page[0:page_size] = _ZERO_PAGE
    start = page_size - special_size
    _LOWER_UPPER_SPECIAL.pack_into(page, _OFF_LOWER, SIZE_OF_PAGE_HEADER_DATA, start, start)
    _U16.pack_into(page, _OFF_PAGESIZE_VERSION, page_size | PG_PAGE_LAYOUT_VERSION)


def page_get_item(page: ReadablePage, offnum: int) -> memoryview:
    """PageGetItem: the item bytes of line pointer ``offnum``, without copying.

    The view aliases the page: copy it before releasing the buffer lock.
    """
    w = _ITEMID.unpack_from(page, SIZE_OF_PAGE_HEADER_DATA + 4 * (offnum - 1))[0]
    off = w & 0x7FFF
    return memoryview(page)[off:off + (w >> 17)]


def _corrupted_pointers(lower: int, upper: int, special: int, severity: int) -> PgError:
    return PgError("XX001", f"corrupted page pointers: lower = {lower}, upper = {upper}, "
                            f"special = {special}", severity=severity)


_FLAGS_AND_LENGTH_MASKS: dict[int, int] = {}
_ZERO_WORD = bytes(4)


def _first_free_line_pointer(page: ReadablePage, nline: int) -> int:
    """The first line pointer (1-based) that is LP_UNUSED with no storage, i.e.
    whose flags and length (bits 15-31) are all zero, or 0 if none. Done on
    the whole array as one integer (the page can hold hundreds of line
    pointers; a Python loop over them showed in pgbench's profile): mask off
    every lp_off, then look for the first 4-byte-aligned zero word."""
    mask = _FLAGS_AND_LENGTH_MASKS.get(nline)
    if mask is None:
        mask = _FLAGS_AND_LENGTH_MASKS[nline] = int.from_bytes(b"\x00\x80\xff\xff" * nline,
                                                               "little")
    end = SIZE_OF_PAGE_HEADER_DATA + 4 * nline
    masked = (int.from_bytes(page[SIZE_OF_PAGE_HEADER_DATA:end], "little") & mask
              ).to_bytes(4 * nline, "little")
    pos = masked.find(_ZERO_WORD)
    while pos > 0 and pos & 3:  # a zero run straddling two words: look on from the next word
        pos = masked.find(_ZERO_WORD, (pos | 3) + 1)
    return (pos >> 2) + FirstOffsetNumber if pos >= 0 else 0


def page_add_item(page: Page, item: bytes | bytearray | memoryview,
                  offset: int = InvalidOffsetNumber, overwrite: bool = False,
                  is_heap: bool = True) -> int:
    """PageAddItemExtended: place ``item`` on the page; its OffsetNumber, or
    InvalidOffsetNumber if it does not fit (or, with a WARNING, if refused).

    ``offset`` InvalidOffsetNumber picks the first unused line pointer (if the
    PD_HAS_FREE_LINES hint says there is one) or appends. With a valid offset and
    ``overwrite`` the slot must be unused (or one past the end); without
    ``overwrite`` later line pointers are shifted up. Corrupted page pointers PANIC,
    as in PostgreSQL (the caller is inside a critical section).
    """
    lower, upper, special = _LOWER_UPPER_SPECIAL.unpack_from(page, _OFF_LOWER)
    if (lower < SIZE_OF_PAGE_HEADER_DATA or lower > upper or upper > special
            or special > BLCKSZ):
        raise _corrupted_pointers(lower, upper, special, PANIC)

    limit = ((lower - SIZE_OF_PAGE_HEADER_DATA) >> 2) + 1  # OffsetNumberNext(max)
    needshuffle = False
    if offset != InvalidOffsetNumber:
        if overwrite:
            if offset < limit:
                off, flags, length = item_id(page, offset)
                if flags != LP_UNUSED or length != 0:
                    elog.warning("will not overwrite a used ItemId")
                    return InvalidOffsetNumber
        elif offset < limit:
            needshuffle = True
    elif _U16.unpack_from(page, _OFF_FLAGS)[0] & PD_HAS_FREE_LINES:
        offset = _first_free_line_pointer(page, limit - 1)
        if not offset:
            offset = limit
            page_clear_has_free_line_pointers(page)  # the hint was wrong
    else:
        offset = limit

    if offset > limit:
        elog.warning("specified item offset is too large")
        return InvalidOffsetNumber
    if is_heap and offset > MaxHeapTuplesPerPage:
        elog.warning("can't put more than MaxHeapTuplesPerPage items in a heap page")
        return InvalidOffsetNumber

    size = len(item)
    new_lower = lower + SIZE_OF_ITEM_ID_DATA if (offset == limit or needshuffle) else lower
    new_upper = upper - ((size + 7) & ~7)
    if new_lower > new_upper:
        return InvalidOffsetNumber

    lp = SIZE_OF_PAGE_HEADER_DATA + 4 * (offset - 1)
    if needshuffle:
        end = SIZE_OF_PAGE_HEADER_DATA + 4 * (limit - 1)
        page[lp + 4:end + 4] = page[lp:end]
    _ITEMID.pack_into(page, lp, new_upper | (LP_NORMAL << 15) | (size << 17))
    page[new_upper:new_upper + size] = item
    _LOWER_UPPER.pack_into(page, _OFF_LOWER, new_lower, new_upper)
    return offset


def page_get_free_space(page: ReadablePage) -> int:
    """PageGetFreeSpace: pd_upper - pd_lower, less room for one more line pointer."""
    lower, upper = _LOWER_UPPER.unpack_from(page, _OFF_LOWER)
    space = upper - lower
    return 0 if space < SIZE_OF_ITEM_ID_DATA else space - SIZE_OF_ITEM_ID_DATA


def page_get_exact_free_space(page: ReadablePage) -> int:
    """PageGetExactFreeSpace: pd_upper - pd_lower."""
    lower, upper = _LOWER_UPPER.unpack_from(page, _OFF_LOWER)
    return max(0, upper - lower)


def page_get_heap_free_space(page: ReadablePage) -> int:
    """PageGetHeapFreeSpace: like page_get_free_space, but 0 when no line pointer
    can be added (MaxHeapTuplesPerPage reached and none unused)."""
    space = page_get_free_space(page)
    if space > 0:
        nline = page_get_max_offset_number(page)
        if nline >= MaxHeapTuplesPerPage:
            if page_has_free_line_pointers(page):
                for offnum in range(FirstOffsetNumber, nline + 1):
                    if item_id(page, offnum)[1] == LP_UNUSED:
                        return space
            return 0
    return space


# -- verification and checksums ------------------------------------------------------------

# pgstat_report_checksum_failure, installed by the statistics code.
checksum_failure_hook: Callable[[], None] | None = None


def page_header_is_sane(page: ReadablePage) -> bool:
    """The header checks of PageIsVerifiedExtended."""
    flags, lower, upper, special = _FLAGS_LOWER_UPPER_SPECIAL.unpack_from(page, _OFF_FLAGS)
    return (not (flags & ~PD_VALID_FLAG_BITS) and lower <= upper <= special <= BLCKSZ
            and special == maxalign(special))


def page_is_verified(page: ReadablePage, blkno: int, checksums_enabled: bool, *,
                     ignore_checksum_failure: bool = False, log_warning: bool = True) -> bool:
    """PageIsVerifiedExtended(PIV_LOG_WARNING | PIV_REPORT_STAT).

    True if the header looks sane and (with checksums) the checksum matches, or
    the page is all zeroes (a relation extended just before a crash). On a
    checksum mismatch logs the WARNING "page verification failed, calculated
    checksum X but expected Y" (unless ``log_warning`` is off) and reports it to
    ``checksum_failure_hook``; with ignore_checksum_failure a sane header still
    passes. A False return makes the caller raise InvalidPageError (or zero the
    page with zero_damaged_pages).
    """
    checksum_failure = False
    header_sane = False
    checksum = 0
    stored, flags, lower, upper, special = _CHECKSUM_TO_SPECIAL.unpack_from(page, _OFF_CHECKSUM)
    if upper != 0:  # not PageIsNew
        if checksums_enabled:
            checksum = pg_checksum_page(page, blkno)
            checksum_failure = checksum != stored
        header_sane = (not flags & ~PD_VALID_FLAG_BITS and lower <= upper <= special <= BLCKSZ
                       and not special & (MAXIMUM_ALIGNOF - 1))
        if header_sane and not checksum_failure:
            return True
    if bytes(page) == _ZERO_PAGE:
        return True
    if checksum_failure:
        if log_warning:
            elog.warning(checksum_failure_message(checksum, stored),
                         sqlstate="XX001")
        if checksum_failure_hook is not None:
            checksum_failure_hook()
        if header_sane and ignore_checksum_failure:
            return True
    return False


def page_set_checksum_inplace(page: Page, blkno: int) -> None:
    """PageSetChecksumInplace (checksums on): store the checksum in the page itself.
    Only for pages no one else can be changing (local buffers, new pages)."""
    if page_is_new(page):
        return
    _U16.pack_into(page, _OFF_CHECKSUM, pg_checksum_page(page, blkno))


def page_set_checksum_copy(page: ReadablePage, blkno: int,
                           checksums_enabled: bool = True) -> ReadablePage:
    """PageSetChecksumCopy: what to write for a shared buffer.

    With checksums, a private copy with the checksum set: hint bits may change
    under a share lock while the write is in progress, and the checksum must
    match the bytes written. Without checksums (or for a new page) the page
    itself, uncopied.
    """
    if not checksums_enabled or page_is_new(page):
        return page
    copy = bytearray(page)
    _U16.pack_into(copy, _OFF_CHECKSUM, pg_checksum_page(copy, blkno))
    return copy
