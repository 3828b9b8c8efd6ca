"""WAL record assembly — mirrors the record-building half of
src/backend/access/transam/xloginsert.c (XLogRecordAssemble) of PostgreSQL 15.

PostgreSQL's callers register buffers and data piece by piece
(XLogBeginInsert, XLogRegisterBuffer, XLogRegisterData, ...) into static
arrays, then XLogInsert assembles a chain of XLogRecData and hands it to
XLogInsertRecord, which reserves WAL space and copies the chain into the WAL
buffers. tusk's callers instead pass everything at once: a list of
``BlockRef`` (one per registered buffer) and the main data, and
``assemble_record`` returns the *whole record image* in one ``bytearray``,
laid out exactly as PostgreSQL 15 lays it out:

    XLogRecord header (24 bytes)
    for each block reference, by block_id:
        XLogRecordBlockHeader (id, fork_flags, data_length)
        [XLogRecordBlockImageHeader (length, hole_offset, bimg_info)
         [XLogRecordBlockCompressHeader (hole_length)]]   if it carries an image
        [RelFileNode]                                      unless BKPBLOCK_SAME_REL
        BlockNumber
    [XLR_BLOCK_ID_ORIGIN, RepOriginId]                     if origin is given
    [XLR_BLOCK_ID_TOPLEVEL_XID, TransactionId]             if toplevel_xid is given
    [XLR_BLOCK_ID_DATA_SHORT, uint8 len | XLR_BLOCK_ID_DATA_LONG, uint32 len]
    for each block: its image (without the hole), then its data
    the main data

The other half (reserving space, xl_prev, copying into WAL buffers, the
full-page-write re-check under the insertion lock) lives in access/xlog.py.
As in PostgreSQL the CRC is computed here over everything after the header
and stored, unfinished, in xl_crc; ``finish_record`` adds xl_prev and folds
the header into it once the record's position is known (XLogInsertRecord).

Full-page images (PostgreSQL 15's rule)
    A block gets an image when REGBUF_FORCE_IMAGE is set; never when
    REGBUF_NO_IMAGE is (REGBUF_WILL_INIT implies it, as in PostgreSQL, whose
    REGBUF_WILL_INIT is 0x04 | REGBUF_NO_IMAGE); otherwise when
    ``do_page_writes`` and the page LSN <= the redo pointer. Blocks that could
    have needed one but did not get it contribute their page LSN to
    ``fpw_lsn`` (the lowest such LSN), which the inserter compares with the
    redo pointer it sees under the insertion lock: if RedoRecPtr moved past
    it, the decision is stale and the record must be assembled again.
    With XLR_CHECK_CONSISTENCY in ``info`` (wal_consistency_checking) every
    block also carries an image, flagged BKPIMAGE_APPLY only if it was needed.
    The hole [pd_lower, pd_upper) of a REGBUF_STANDARD page is left out.

Where tusk differs
    - wal_compression: only 'off' is implemented; 'pglz', 'lz4' and 'zstd'
      are accepted and treated as 'off' (images are written uncompressed,
      which every reader, PostgreSQL's included, accepts). No lz4/zstd module
      is a dependency, and pglz in pure Python would cost more CPU than the
      WAL volume it saves.
    - No XLogRecordMaxSize check (PostgreSQL 16 added it); a block's data is
      limited to 65535 bytes by its uint16 length field, as in PostgreSQL.
    - Blocks must be given in ascending block_id order (PostgreSQL walks its
      registered_buffers array by index).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import crc32c

from access.xlog_internal import (
    BKPBLOCK_HAS_DATA,
    BKPBLOCK_HAS_IMAGE,
    BKPBLOCK_SAME_REL,
    BKPBLOCK_WILL_INIT,
    BKPIMAGE_APPLY,
    BKPIMAGE_HAS_HOLE,
    RECORD_HEADER,
    XL_CRC_OFFSET,
    XLR_BLOCK_ID_DATA_LONG,
    XLR_BLOCK_ID_DATA_SHORT,
    XLR_BLOCK_ID_ORIGIN,
    XLR_BLOCK_ID_TOPLEVEL_XID,
    XLR_CHECK_CONSISTENCY,
    XLR_MAX_BLOCK_ID,
    SizeOfXLogRecord,
)
from storage.relfilenode import RelFileNode

BLCKSZ = 8192
SizeOfPageHeaderData = 24

# Flags of XLogRegisterBuffer (xloginsert.h), for callers that prefer PostgreSQL's
# spelling: BlockRef.from_flags(..., flags=REGBUF_STANDARD | REGBUF_WILL_INIT).
REGBUF_FORCE_IMAGE = 0x01
REGBUF_NO_IMAGE = 0x02
REGBUF_WILL_INIT = 0x04 | 0x02
REGBUF_STANDARD = 0x08
REGBUF_KEEP_DATA = 0x10

WAL_COMPRESSION_METHODS = ("off", "pglz", "lz4", "zstd")

# Block header without / with the RelFileNode, then the BlockNumber.
_BKP_HDR_REL_BLK = struct.Struct("<BBHIIII")       # id, fork_flags, data_len, rnode, blkno
_BKP_HDR_BLK = struct.Struct("<BBHI")              # ... SAME_REL: no rnode
_BKP_HDR_IMG_REL_BLK = struct.Struct("<BBHHHBIIII")  # + image header (length, hole_off, info)
_BKP_HDR_IMG_BLK = struct.Struct("<BBHHHBI")
_PAGE_LSN_LOWER_UPPER = struct.Struct("<II4xHH")   # pd_lsn (xlogid, xrecoff), pd_lower, pd_upper
_U8_U16 = struct.Struct("<BH")
_U8_U32 = struct.Struct("<BI")
_XL_PREV = struct.Struct("<Q")
_XL_CRC = struct.Struct("<I")
_XL_PREV_OFFSET = 8
_U32 = struct.Struct("<I")
# Record prefixes for main-data-only records: zeroed header + XLR_BLOCK_ID_DATA_SHORT/LONG.
_SHORT_PREFIX = tuple(bytes(SizeOfXLogRecord) + bytes((XLR_BLOCK_ID_DATA_SHORT, n)) if n
                      else bytes(SizeOfXLogRecord) for n in range(256))
_LONG_PREFIX = bytes(SizeOfXLogRecord) + bytes((XLR_BLOCK_ID_DATA_LONG, 0, 0, 0, 0))
_SHORT_DATA_HEADER = tuple(bytes((XLR_BLOCK_ID_DATA_SHORT, n)) for n in range(256))
_ZERO_HEADER = bytes(SizeOfXLogRecord)
# Below this size copying the record for the CRC is cheaper than a memoryview slice.
_CRC_COPY_LIMIT = 2048


@dataclass(slots=True)
class BlockRef:
    """One registered buffer of a record (PostgreSQL's registered_buffer).

    ``page`` is the buffer's page (BLCKSZ bytes; a memoryview of shared memory
    is fine and is not copied until the image is built). It may be None only
    for a block that can never get an image (no_image or will_init, and no
    force_image, and no XLR_CHECK_CONSISTENCY).
    """

    block_id: int
    rnode: RelFileNode
    fork: int
    blkno: int
    page: bytes | bytearray | memoryview | None = None
    data: bytes | bytearray | memoryview = b""
    will_init: bool = False      # REGBUF_WILL_INIT (implies no_image)
    standard: bool = False       # REGBUF_STANDARD
    force_image: bool = False    # REGBUF_FORCE_IMAGE
    no_image: bool = False       # REGBUF_NO_IMAGE
    keep_data: bool = False      # REGBUF_KEEP_DATA

    @classmethod
    def from_flags(cls, block_id: int, rnode: RelFileNode, fork: int, blkno: int,
                   page: bytes | bytearray | memoryview | None, flags: int,
                   data: bytes | bytearray | memoryview = b"") -> BlockRef:
        """XLogRegisterBuffer's spelling: ``flags`` is an OR of REGBUF_* values."""
        return cls(block_id, rnode, fork, blkno, page, data,
                   will_init=(flags & REGBUF_WILL_INIT) == REGBUF_WILL_INIT,
                   standard=bool(flags & REGBUF_STANDARD),
                   force_image=bool(flags & REGBUF_FORCE_IMAGE),
                   no_image=bool(flags & REGBUF_NO_IMAGE),
                   keep_data=bool(flags & REGBUF_KEEP_DATA))


class AssembledRecord:
    """What XLogRecordAssemble hands to XLogInsertRecord.

    ``image`` is the complete record (len(image) == xl_tot_len) with xl_prev = 0
    and xl_crc holding the CRC of everything after the header (not final:
    ``finish_record`` completes it). ``fpw_lsn`` is InvalidXLogRecPtr (0) when
    no block's image decision depended on the redo pointer. (A plain slotted
    class: a dataclass costs twice as much to build, once per WAL record.)
    """

    __slots__ = ("image", "fpw_lsn", "num_fpi", "fpi_bytes")

    def __init__(self, image: bytearray, fpw_lsn: int, num_fpi: int, fpi_bytes: int) -> None:
        self.image = image
        self.fpw_lsn = fpw_lsn
        self.num_fpi = num_fpi
        self.fpi_bytes = fpi_bytes

    def __repr__(self) -> str:
        return (f"AssembledRecord(tot_len={len(self.image)}, fpw_lsn={self.fpw_lsn:#x}, "
                f"num_fpi={self.num_fpi}, fpi_bytes={self.fpi_bytes})")

    @property
    def tot_len(self) -> int:
        return len(self.image)


def assemble_record(rmid: int, info: int, main_data: bytes | bytearray | memoryview,
                    blocks: list[BlockRef] | tuple[BlockRef, ...] = (), *, xid: int,
                    redo_rec_ptr: int, do_page_writes: bool, wal_compression: str = "off",
                    origin: int | None = None,
                    toplevel_xid: int | None = None) -> AssembledRecord:
    """XLogRecordAssemble: build the record image for ``rmid``/``info``.

    ``info`` holds the rmgr's bits (and possibly XLR_SPECIAL_REL_UPDATE or
    XLR_CHECK_CONSISTENCY). ``origin`` (replorigin_session_origin with
    XLOG_INCLUDE_ORIGIN) and ``toplevel_xid`` (a subtransaction's first record)
    add their optional headers. ``wal_compression`` is accepted for every
    method PostgreSQL knows and treated as 'off' (see the module docstring).
    """
    if not blocks and origin is None and toplevel_xid is None:
        # The common case (commit records, checkpoints, ...): header and main data only.
        main_len = len(main_data)
        if main_len <= 255:
            image = bytearray(_SHORT_PREFIX[main_len])
        else:
            image = bytearray(_LONG_PREFIX)
            _U32.pack_into(image, SizeOfXLogRecord + 1, main_len)
        image += main_data
        tot_len = len(image)
        data_crc = crc32c.crc32c(image[SizeOfXLogRecord:] if tot_len < _CRC_COPY_LIMIT
                                 else memoryview(image)[SizeOfXLogRecord:])
        RECORD_HEADER.pack_into(image, 0, tot_len, xid, 0, info, rmid, data_crc)
        return AssembledRecord(image, 0, 0, 0)

    hdr: list[bytes | bytearray | memoryview] = [_ZERO_HEADER]  # packed at the end
    payload: list[bytes | bytearray | memoryview] = []
    fpw_lsn = 0
    num_fpi = 0
    fpi_bytes = 0
    check_consistency = bool(info & XLR_CHECK_CONSISTENCY)
    prev_rnode = None
    prev_id = -1

    for b in blocks:
        block_id = b.block_id
        if block_id <= prev_id or block_id > XLR_MAX_BLOCK_ID:
            raise ValueError(f"invalid or out-of-order block_id {block_id}")
        prev_id = block_id
        page = b.page

        # Determine if this block needs to be backed up.
        if b.force_image:
            needs_backup = True
        elif b.no_image or b.will_init or not do_page_writes:
            needs_backup = False
        else:
            if page is None:
                raise ValueError(f"block {block_id} has no page: pass it, or no_image=True")
            lsn_hi, lsn_lo, lower, upper = _PAGE_LSN_LOWER_UPPER.unpack_from(page, 0)
            page_lsn = (lsn_hi << 32) | lsn_lo
            needs_backup = page_lsn <= redo_rec_ptr
            if not needs_backup and (fpw_lsn == 0 or page_lsn < fpw_lsn):
                fpw_lsn = page_lsn

        data = b.data
        data_len = len(data)
        # Determine if the buffer data needs to be included.
        needs_data = data_len > 0 and (b.keep_data or not needs_backup)

        fork_flags = b.fork
        if b.will_init:
            fork_flags |= BKPBLOCK_WILL_INIT
        include_image = needs_backup or check_consistency

        if include_image:
            if page is None:
                raise ValueError(f"block {block_id} needs a full-page image but has no page")
            fork_flags |= BKPBLOCK_HAS_IMAGE
            hole_offset = hole_length = 0
            if b.standard:
                # Assume we can omit data between pd_lower and pd_upper.
                lower, upper = _PAGE_LSN_LOWER_UPPER.unpack_from(page, 0)[2:]
                if SizeOfPageHeaderData <= lower < upper <= BLCKSZ:
                    hole_offset = lower
                    hole_length = upper - lower
            if hole_length:
                bimg_info = BKPIMAGE_HAS_HOLE
                mv = page if isinstance(page, memoryview) else memoryview(page)
                payload.append(mv[:hole_offset])
                payload.append(mv[hole_offset + hole_length:BLCKSZ])
            else:
                bimg_info = 0
                payload.append(page if len(page) == BLCKSZ else memoryview(page)[:BLCKSZ])
            if needs_backup:
                bimg_info |= BKPIMAGE_APPLY
            bimg_len = BLCKSZ - hole_length
            num_fpi += 1
            fpi_bytes += bimg_len

        if needs_data:
            if data_len > 0xFFFF:
                raise ValueError(f"block {block_id} data is too long ({data_len} bytes)")
            fork_flags |= BKPBLOCK_HAS_DATA
            payload.append(data)
        else:
            data_len = 0

        rnode = b.rnode
        if rnode == prev_rnode:
            fork_flags |= BKPBLOCK_SAME_REL
            if include_image:
                hdr.append(_BKP_HDR_IMG_BLK.pack(block_id, fork_flags, data_len, bimg_len,
                                                 hole_offset, bimg_info, b.blkno))
            else:
                hdr.append(_BKP_HDR_BLK.pack(block_id, fork_flags, data_len, b.blkno))
        else:
            if include_image:
                hdr.append(_BKP_HDR_IMG_REL_BLK.pack(block_id, fork_flags, data_len, bimg_len,
                                                     hole_offset, bimg_info, rnode[0],
                                                     rnode[1], rnode[2], b.blkno))
            else:
                hdr.append(_BKP_HDR_REL_BLK.pack(block_id, fork_flags, data_len, rnode[0],
                                                 rnode[1], rnode[2], b.blkno))
        prev_rnode = rnode

    if origin is not None:
        hdr.append(_U8_U16.pack(XLR_BLOCK_ID_ORIGIN, origin))
    if toplevel_xid is not None:
        hdr.append(_U8_U32.pack(XLR_BLOCK_ID_TOPLEVEL_XID, toplevel_xid))
    main_len = len(main_data)
    if main_len > 0:
        if main_len > 255:
            hdr.append(_U8_U32.pack(XLR_BLOCK_ID_DATA_LONG, main_len))
        else:
            hdr.append(_SHORT_DATA_HEADER[main_len])
        payload.append(main_data)

    hdr += payload
    image = bytearray().join(hdr)
    tot_len = len(image)
    # CRC of everything after the header: rdata first, the header is added by
    # finish_record once xl_prev is known.
    data_crc = crc32c.crc32c(image[SizeOfXLogRecord:] if tot_len < _CRC_COPY_LIMIT
                             else memoryview(image)[SizeOfXLogRecord:])
    RECORD_HEADER.pack_into(image, 0, tot_len, xid, 0, info, rmid, data_crc)
    return AssembledRecord(image, fpw_lsn, num_fpi, fpi_bytes)


def finish_record(image: bytearray | memoryview, prev_lsn: int) -> None:
    """Set xl_prev and finish xl_crc in place (the end of XLogInsertRecord's
    preparation: ``COMP_CRC32C(rdata_crc, rechdr, offsetof(XLogRecord, xl_crc))``).

    Call it exactly once per assembled image: xl_crc holds the data CRC until then.
    """
    _XL_PREV.pack_into(image, _XL_PREV_OFFSET, prev_lsn)
    (data_crc,) = _XL_CRC.unpack_from(image, XL_CRC_OFFSET)
    _XL_CRC.pack_into(image, XL_CRC_OFFSET, crc32c.crc32c(image[:XL_CRC_OFFSET], data_crc))
