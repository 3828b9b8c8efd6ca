"""Reading and decoding WAL — mirrors src/backend/access/transam/xlogreader.c of
PostgreSQL 15 (XLogReadRecord / XLogDecodeNextRecord, ReadPageInternal,
XLogReaderValidatePageHeader, ValidXLogRecordHeader, ValidXLogRecord,
DecodeXLogRecord, XLogFindNextRecord, RestoreBlockImage) together with the
segment-file page reader that PostgreSQL's callers supply (pg_waldump's
WALDumpReadPage, the startup process's XLogPageRead).

``XLogReader(path, geometry, tli)`` reads the segment files of one timeline
from ``path`` (a data directory, whose pg_wal is used, or a WAL directory)
through storage/fd.py. ``read_record()`` returns the next ``DecodedRecord``
or None at the end of valid WAL, with ``error`` set to PostgreSQL's message
(None when the reader merely reached ``end_lsn``, as pg_waldump -e does).
The reader keeps its position on failure, so calling ``read_record()`` again
retries the same record (pg_waldump --follow, or a reader waiting for WAL).

Checks, in PostgreSQL's order and words: page headers (magic, info bits, the
long header's system identifier, segment size and XLOG_BLCKSZ, pageaddr,
timeline never going backwards), the first page of every segment entered,
the record header (length, resource manager, prev-link: exact when reading
sequentially, merely lower than the record's own address after a jump),
continuation pages (XLP_FIRST_IS_CONTRECORD, xlp_rem_len), the CRC, and the
block-reference headers.

Where tusk differs
    - No decode-ahead queue (PostgreSQL 15 decodes ahead for recovery
      prefetching); one record is decoded per call.
    - Decoding errors name the failing record's LSN; PostgreSQL 15 prints
      state->ReadRecPtr there, which is the previous record's once
      decode-ahead is in play. The "neither BKPIMAGE_HAS_HOLE nor
      BKPIMAGE_COMPRESSED" message shows the image length where PostgreSQL
      15 shows the block's data length.
    - XLP_FIRST_IS_OVERWRITE_CONTRECORD is honoured as PostgreSQL does (the
      read restarts at that page); ``overwritten_rec_ptr`` records the
      aborted record's LSN.
    - Compressed images: pglz is decompressed here; LZ4 and zstd images are
      reported as "not supported by build" (no such module is a dependency).
    - A missing segment ends the read with ``missing_segment`` set and
      PostgreSQL's 'could not open file' message (pg_waldump waits 5 s for
      the file to appear and then exits with 'could not find file').
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import crc32c

from access.xlog_internal import (
    BKPBLOCK_FORK_MASK,
    BKPBLOCK_HAS_DATA,
    BKPBLOCK_HAS_IMAGE,
    BKPBLOCK_SAME_REL,
    BKPBLOCK_WILL_INIT,
    BKPIMAGE_APPLY,
    BKPIMAGE_COMPRESS_LZ4,
    BKPIMAGE_COMPRESS_PGLZ,
    BKPIMAGE_COMPRESS_ZSTD,
    BKPIMAGE_HAS_HOLE,
    LONG_PAGE_HEADER,
    PAGE_HEADER,
    RECORD_HEADER,
    RM_MAX_BUILTIN_ID,
    RM_XLOG_ID,
    XL_CRC_OFFSET,
    XLOG_PAGE_MAGIC,
    XLOG_SWITCH,
    XLP_ALL_FLAGS,
    XLP_FIRST_IS_CONTRECORD,
    XLP_FIRST_IS_OVERWRITE_CONTRECORD,
    XLP_LONG_HEADER,
    XLR_BLOCK_ID_DATA_LONG,
    XLR_BLOCK_ID_DATA_SHORT,
    XLR_BLOCK_ID_ORIGIN,
    XLR_BLOCK_ID_TOPLEVEL_XID,
    XLR_INFO_MASK,
    XLR_MAX_BLOCK_ID,
    SizeOfXLogLongPHD,
    SizeOfXLogRecord,
    SizeOfXLogShortPHD,
    WalGeometry,
    format_lsn,
    maxalign,
)
from storage import fd
from storage.relfilenode import RelFileNode

BLCKSZ = 8192
RM_MIN_CUSTOM_ID = 128
RM_MAX_CUSTOM_ID = 255
BKPIMAGE_COMPRESSED = BKPIMAGE_COMPRESS_PGLZ | BKPIMAGE_COMPRESS_LZ4 | BKPIMAGE_COMPRESS_ZSTD
READ_CHUNK = 128 * 1024  # bytes read from a segment at once (whole pages)

_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_FORK_LEN = struct.Struct("<BH")        # fork_flags, data_length (after the block id)
_IMAGE_HDR = struct.Struct("<HHB")      # bimg_len, hole_offset, bimg_info
_RNODE = struct.Struct("<III")
_MAGIC_INFO = struct.Struct("<HH")
_INFO_OFFSET = 16  # offsetof(XLogRecord, xl_info)
_RMID_OFFSET = 17  # offsetof(XLogRecord, xl_rmid)


def rmgr_id_is_valid(rmid: int) -> bool:
    """RmgrIdIsValid: a built-in or a custom resource manager id."""
    return rmid <= RM_MAX_BUILTIN_ID or RM_MIN_CUSTOM_ID <= rmid <= RM_MAX_CUSTOM_ID


class WalReadError(Exception):
    """Raised by restore_block_image (RestoreBlockImage's report_invalid_record)."""


@dataclass(slots=True)
class DecodedBlock:
    """DecodedBkpBlock: one block reference of a decoded record."""

    block_id: int
    rnode: RelFileNode
    fork: int
    blkno: int
    flags: int                  # fork_flags as written (fork number in the low bits)
    has_image: bool = False
    apply_image: bool = False
    image: bytes = b""          # the stored image: hole left out, maybe compressed
    hole_offset: int = 0
    hole_length: int = 0
    bimg_len: int = 0
    bimg_info: int = 0
    data: bytes = b""

    @property
    def has_data(self) -> bool:
        return bool(self.flags & BKPBLOCK_HAS_DATA)

    @property
    def will_init(self) -> bool:
        return bool(self.flags & BKPBLOCK_WILL_INIT)


@dataclass(slots=True)
class DecodedRecord:
    """DecodedXLogRecord plus the reader's ReadRecPtr/EndRecPtr for it."""

    lsn: int                    # ReadRecPtr: where the record starts
    end_lsn: int                # EndRecPtr: where the next record starts (past a SWITCH's
                                # segment end; a page boundary when the record fills a page)
    xl_tot_len: int
    xid: int
    prev: int
    info: int
    rmid: int
    crc: int
    main_data: bytes = b""
    blocks: list[DecodedBlock] = field(default_factory=list)
    origin: int = 0             # RepOriginId (InvalidRepOriginId = 0)
    toplevel_xid: int = 0

    @property
    def rmgr_info(self) -> int:
        """xl_info without the XLR_INFO_MASK bits (XLogRecGetInfo & ~XLR_INFO_MASK)."""
        return self.info & ~XLR_INFO_MASK

    def block(self, block_id: int) -> DecodedBlock | None:
        """XLogRecGetBlock: the reference with that id, or None."""
        for b in self.blocks:
            if b.block_id == block_id:
                return b
        return None

    @property
    def max_block_id(self) -> int:
        return self.blocks[-1].block_id if self.blocks else -1

    def record_and_fpi_len(self) -> tuple[int, int]:
        """XLogRecGetLen (pg_waldump): (length without images, total image bytes)."""
        fpi = 0
        for b in self.blocks:
            if b.has_image:
                fpi += b.bimg_len
        return self.xl_tot_len - fpi, fpi


class _DecodeError(Exception):
    pass


class _LazyLSN:
    """An LSN formatted only if an error message needs it."""

    __slots__ = ("lsn",)

    def __init__(self, lsn: int) -> None:
        self.lsn = lsn

    def __format__(self, spec: str) -> str:
        return format_lsn(self.lsn)


def decode_record(raw: bytes, lsn: int) -> DecodedRecord:
    """DecodeXLogRecord: split a whole, CRC-checked record image into its parts.

    Raises _DecodeError with PostgreSQL's message for malformed block headers.
    """
    tot_len, xid, prev, info, rmid, crc = RECORD_HEADER.unpack_from(raw, 0)
    rec = DecodedRecord(lsn, 0, tot_len, xid, prev, info, rmid, crc)
    at = _LazyLSN(lsn)
    ptr = SizeOfXLogRecord
    remaining = tot_len - SizeOfXLogRecord
    datatotal = 0
    main_len = 0
    blocks = rec.blocks
    lengths: list[tuple[int, int]] = []  # per block: (image length, data length)
    rnode: RelFileNode | None = None
    max_block_id = -1
    try:
        while remaining > datatotal:
            block_id = raw[ptr]
            ptr += 1
            remaining -= 1
            if block_id == XLR_BLOCK_ID_DATA_SHORT:
                if remaining < 1:
                    raise IndexError
                main_len = raw[ptr]
                ptr += 1
                remaining -= 1
                datatotal += main_len
                break  # by convention, the main data fragment is always last
            if block_id == XLR_BLOCK_ID_DATA_LONG:
                if remaining < 4:
                    raise IndexError
                (main_len,) = _U32.unpack_from(raw, ptr)
                ptr += 4
                remaining -= 4
                datatotal += main_len
                break
            if block_id == XLR_BLOCK_ID_ORIGIN:
                if remaining < 2:
                    raise IndexError
                (rec.origin,) = _U16.unpack_from(raw, ptr)
                ptr += 2
                remaining -= 2
                continue
            if block_id == XLR_BLOCK_ID_TOPLEVEL_XID:
                if remaining < 4:
                    raise IndexError
                (rec.toplevel_xid,) = _U32.unpack_from(raw, ptr)
                ptr += 4
                remaining -= 4
                continue
            if block_id > XLR_MAX_BLOCK_ID:
                raise _DecodeError(f"invalid block_id {block_id} at {at}")
            if block_id <= max_block_id:
                raise _DecodeError(f"out-of-order block_id {block_id} at {at}")
            max_block_id = block_id
            if remaining < 3:
                raise IndexError
            fork_flags, data_len = _FORK_LEN.unpack_from(raw, ptr)
            ptr += 3
            remaining -= 3
            has_data = bool(fork_flags & BKPBLOCK_HAS_DATA)
            if has_data and data_len == 0:
                raise _DecodeError(f"BKPBLOCK_HAS_DATA set, but no data included at {at}")
            if not has_data and data_len != 0:
                raise _DecodeError(
                    f"BKPBLOCK_HAS_DATA not set, but data length is {data_len} at {at}")
            datatotal += data_len
            has_image = bool(fork_flags & BKPBLOCK_HAS_IMAGE)
            bimg_len = hole_offset = hole_length = bimg_info = 0
            if has_image:
                if remaining < 5:
                    raise IndexError
                bimg_len, hole_offset, bimg_info = _IMAGE_HDR.unpack_from(raw, ptr)
                ptr += 5
                remaining -= 5
                if bimg_info & BKPIMAGE_COMPRESSED:
                    if bimg_info & BKPIMAGE_HAS_HOLE:
                        if remaining < 2:
                            raise IndexError
                        (hole_length,) = _U16.unpack_from(raw, ptr)
                        ptr += 2
                        remaining -= 2
                else:
                    hole_length = BLCKSZ - bimg_len
                datatotal += bimg_len
                if bimg_info & BKPIMAGE_HAS_HOLE and (
                        hole_offset == 0 or hole_length == 0 or bimg_len == BLCKSZ):
                    raise _DecodeError(
                        f"BKPIMAGE_HAS_HOLE set, but hole offset {hole_offset} length "
                        f"{hole_length} block image length {bimg_len} at {at}")
                if not bimg_info & BKPIMAGE_HAS_HOLE and (hole_offset != 0 or hole_length != 0):
                    raise _DecodeError(
                        f"BKPIMAGE_HAS_HOLE not set, but hole offset {hole_offset} length "
                        f"{hole_length} at {at}")
                if bimg_info & BKPIMAGE_COMPRESSED and bimg_len == BLCKSZ:
                    raise _DecodeError(
                        f"BKPIMAGE_COMPRESSED set, but block image length {bimg_len} at {at}")
                if (not bimg_info & (BKPIMAGE_HAS_HOLE | BKPIMAGE_COMPRESSED)
                        and bimg_len != BLCKSZ):
                    raise _DecodeError(
                        "neither BKPIMAGE_HAS_HOLE nor BKPIMAGE_COMPRESSED set, but block "
                        f"image length is {bimg_len} at {at}")
            if not fork_flags & BKPBLOCK_SAME_REL:
                if remaining < 12:
                    raise IndexError
                rnode = RelFileNode._make(_RNODE.unpack_from(raw, ptr))
                ptr += 12
                remaining -= 12
            elif rnode is None:
                raise _DecodeError(f"BKPBLOCK_SAME_REL set but no previous rel at {at}")
            if remaining < 4:
                raise IndexError
            (blkno,) = _U32.unpack_from(raw, ptr)
            ptr += 4
            remaining -= 4
            blocks.append(DecodedBlock(block_id, rnode, fork_flags & BKPBLOCK_FORK_MASK, blkno,
                                       fork_flags, has_image,
                                       bool(bimg_info & BKPIMAGE_APPLY), b"", hole_offset,
                                       hole_length, bimg_len, bimg_info))
            lengths.append((bimg_len, data_len))
    except IndexError:
        raise _DecodeError(f"record with invalid length at {at}") from None
    if remaining != datatotal:
        raise _DecodeError(f"record with invalid length at {at}")

    # The payload: each block's image then its data, then the main data.
    for blk, (bimg_len, data_len) in zip(blocks, lengths, strict=True):
        if bimg_len:
            blk.image = raw[ptr:ptr + bimg_len]
            ptr += bimg_len
        if data_len:
            blk.data = raw[ptr:ptr + data_len]
            ptr += data_len
    if main_len:
        rec.main_data = raw[ptr:ptr + main_len]
    return rec


def pglz_decompress(source: bytes, rawsize: int, check_complete: bool = True) -> bytes | None:
    """pglz_decompress (common/pg_lzcompress.c); None for corrupt input."""
    dest = bytearray()
    sp = 0
    srcend = len(source)
    while sp < srcend and len(dest) < rawsize:
        ctrl = source[sp]
        sp += 1
        for _ in range(8):
            if sp >= srcend or len(dest) >= rawsize:
                break
            if ctrl & 1:
                if sp + 2 > srcend:
                    return None
                b0 = source[sp]
                length = (b0 & 0x0F) + 3
                off = ((b0 & 0xF0) << 4) | source[sp + 1]
                sp += 2
                if length == 18:
                    if sp >= srcend:
                        return None
                    length += source[sp]
                    sp += 1
                dp = len(dest)
                if sp > srcend or off == 0 or off > dp:
                    return None
                length = min(length, rawsize - dp)
                start = dp - off
                while length > 0:  # the source may overlap what we are writing
                    chunk = min(length, off)
                    dest += dest[start:start + chunk]
                    start += chunk
                    length -= chunk
            else:
                dest.append(source[sp])
                sp += 1
            ctrl >>= 1
    if check_complete and (len(dest) != rawsize or sp != srcend):
        return None
    return bytes(dest)


def restore_block_image(record: DecodedRecord, block: DecodedBlock | int) -> bytes:
    """RestoreBlockImage: the full BLCKSZ page of a block's image, its hole
    refilled with zeroes (and decompressed first if it was compressed)."""
    at = format_lsn(record.lsn)
    if isinstance(block, int):
        block_id = block
        blk = record.block(block_id)
        if blk is None:
            raise WalReadError(
                f"could not restore image at {at} with invalid block {block_id} specified")
    else:
        blk = block
        block_id = blk.block_id
    if not blk.has_image:
        raise WalReadError(f"could not restore image at {at} with invalid state, block {block_id}")
    ptr = blk.image
    info = blk.bimg_info
    if info & BKPIMAGE_COMPRESSED:
        if info & BKPIMAGE_COMPRESS_PGLZ:
            out = pglz_decompress(ptr, BLCKSZ - blk.hole_length, True)
        elif info & (BKPIMAGE_COMPRESS_LZ4 | BKPIMAGE_COMPRESS_ZSTD):
            method = "LZ4" if info & BKPIMAGE_COMPRESS_LZ4 else "zstd"
            raise WalReadError(f"could not restore image at {at} compressed with {method} not "
                               f"supported by build, block {block_id}")
        else:  # pragma: no cover - BKPIMAGE_COMPRESSED covers exactly the three methods
            raise WalReadError(f"could not restore image at {at} compressed with unknown "
                               f"method, block {block_id}")
        if out is None:
            raise WalReadError(f"could not decompress image at {at}, block {block_id}")
        ptr = out
    if blk.hole_length == 0:
        return bytes(ptr[:BLCKSZ])
    off = blk.hole_offset
    return b"".join((ptr[:off], bytes(blk.hole_length), ptr[off:BLCKSZ - blk.hole_length]))


class _ReadFailed(Exception):
    """Internal: the current read failed; ``error`` (or end-of-range) is set."""


class XLogReader:
    """XLogReaderState with a segment-file page reader.

    ``system_identifier`` (0: do not check) is compared with every long page
    header, as pg_control's is by the startup process. ``end_lsn`` stops
    reading before any record that does not end at or before it, without an
    error (pg_waldump --end). The reader owns at most one open segment; call
    ``close()`` (or use it as a context manager) when done.
    """

    def __init__(self, path: str, geometry: WalGeometry, tli: int = 1, *,
                 system_identifier: int = 0, end_lsn: int | None = None) -> None:
        if os.path.isdir(os.path.join(fd.absolute_path(path), "pg_wal")):
            path = os.path.join(path, "pg_wal")
        self.waldir = path
        self.geometry = geometry
        self.blcksz = geometry.blcksz
        self.seg_size = geometry.seg_size
        self.tli = tli
        self.system_identifier = system_identifier
        self.end_lsn = end_lsn
        self.error: str | None = None
        self.end_reached = False            # stopped at end_lsn (no error)
        self.missing_segment: str | None = None  # file name of a segment that was not there
        self.read_rec_ptr = 0               # ReadRecPtr: start of the last record returned
        self.end_rec_ptr = 0                # EndRecPtr: end of it
        self.overwritten_rec_ptr = 0
        self._next_rec_ptr = 0              # NextRecPtr
        self._decode_rec_ptr = 0            # DecodeRecPtr (0: next read is a random access)
        self._latest_page_ptr = 0
        self._latest_page_tli = 0
        # Open segment and cached chunk of it.
        self._fd: int | None = None
        self._fd_segno = -1
        self._cache = b""
        self._cache_segno = -1
        self._cache_off = 0
        self._validated_segno = -1          # segment whose first page was validated
        self._page_ptr = -1                 # the page last returned by _read_page
        self._page = memoryview(b"")

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        if self._fd is not None:
            fd.basic_close(self._fd)
            self._fd = None
            self._fd_segno = -1
        self._inval()

    def __enter__(self) -> XLogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def begin_read(self, lsn: int) -> None:
        """XLogBeginRead: the next read_record() starts at ``lsn`` (a record start)."""
        self._next_rec_ptr = lsn
        self._decode_rec_ptr = 0
        self.read_rec_ptr = 0
        self.end_rec_ptr = lsn

    # -- page access (ReadPageInternal + the page_read callback) -------------------------

    def _inval(self) -> None:
        """XLogReaderInvalReadState: forget cached pages (they may be re-read)."""
        self._cache = b""
        self._cache_segno = -1
        self._validated_segno = -1
        self._page_ptr = -1
        self._page = memoryview(b"")

    def _fail(self, message: str) -> None:
        self.error = message
        self._inval()
        raise _ReadFailed

    def segment_path(self, segno: int) -> str:
        return os.path.join(self.waldir, self.geometry.file_name(self.tli, segno))

    def _load(self, segno: int, seg_off: int) -> None:
        """Read a chunk of whole pages of segment ``segno`` starting at ``seg_off``."""
        if self._fd_segno != segno:
            if self._fd is not None:
                fd.basic_close(self._fd)
                self._fd = None
                self._fd_segno = -1
            path = self.segment_path(segno)
            try:
                self._fd = fd.basic_open_file(path, os.O_RDONLY)
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    self.missing_segment = self.geometry.file_name(self.tli, segno)
                self._fail(f'could not open file "{path}": {exc.strerror}')
            self._fd_segno = segno
        nbytes = min(READ_CHUNK, self.seg_size - seg_off)
        try:
            data = fd.pg_pread(self._fd, nbytes, seg_off)
        except OSError as exc:
            self._fail(f"could not read from file {self.geometry.file_name(self.tli, segno)}, "
                       f"offset {seg_off}: {exc.strerror}")
        if len(data) < self.blcksz:
            self._fail(f"could not read from file {self.geometry.file_name(self.tli, segno)}, "
                       f"offset {seg_off}: read {len(data)} of {self.blcksz}")
        self._cache = data
        self._cache_segno = segno
        self._cache_off = seg_off

    def _raw_page(self, pageptr: int) -> memoryview:
        segno, seg_off = divmod(pageptr, self.seg_size)
        rel = seg_off - self._cache_off
        if segno != self._cache_segno or rel < 0 or rel + self.blcksz > len(self._cache):
            self._load(segno, seg_off)
            rel = 0
        return memoryview(self._cache)[rel:rel + self.blcksz]

    def _check_end(self, pageptr: int, req_len: int) -> None:
        if self.end_lsn is not None and pageptr + req_len > self.end_lsn \
                and pageptr + self.blcksz > self.end_lsn:
            self.end_reached = True
            self.error = None
            raise _ReadFailed

    def _read_page(self, pageptr: int, req_len: int) -> memoryview:
        """ReadPageInternal: the page at ``pageptr`` with its header validated."""
        if pageptr == self._page_ptr:  # still in the buffer, already validated
            if self.end_lsn is not None:
                self._check_end(pageptr, max(req_len, SizeOfXLogShortPHD))
            return self._page
        segno, seg_off = divmod(pageptr, self.seg_size)
        if segno != self._validated_segno:
            if seg_off != 0:
                # Entering a segment mid-way: validate its first (long) header too.
                seg_start = pageptr - seg_off
                self._check_end(seg_start, self.blcksz)
                self._validate_page_header(seg_start, self._raw_page(seg_start))
            self._validated_segno = segno
        self._check_end(pageptr, max(req_len, SizeOfXLogShortPHD))
        page = self._raw_page(pageptr)
        if page[2] & XLP_LONG_HEADER:
            self._check_end(pageptr, SizeOfXLogLongPHD)
        self._validate_page_header(pageptr, page)
        self._page_ptr = pageptr
        self._page = page
        return page

    def _validate_page_header(self, recptr: int, page: memoryview) -> None:
        """XLogReaderValidatePageHeader."""
        segno, offset = divmod(recptr, self.seg_size)
        magic, info = _MAGIC_INFO.unpack_from(page, 0)
        if magic != XLOG_PAGE_MAGIC:
            self._fail(f"invalid magic number {magic:04X} in log segment "
                       f"{self.geometry.file_name(self.tli, segno)}, offset {offset}")
        if info & ~XLP_ALL_FLAGS:
            self._fail(f"invalid info bits {info:04X} in log segment "
                       f"{self.geometry.file_name(self.tli, segno)}, offset {offset}")
        if info & XLP_LONG_HEADER:
            (_, _, tli, pageaddr, _, sysid, seg_size,
             blcksz) = LONG_PAGE_HEADER.unpack_from(page, 0)
            if self.system_identifier and sysid != self.system_identifier:
                self._fail("WAL file is from different database system: WAL file database "
                           f"system identifier is {sysid}, pg_control database system "
                           f"identifier is {self.system_identifier}")
            if seg_size != self.seg_size:
                self._fail("WAL file is from different database system: incorrect segment "
                           "size in page header")
            if blcksz != self.blcksz:
                self._fail("WAL file is from different database system: incorrect "
                           "XLOG_BLCKSZ in page header")
        else:
            if offset == 0:
                # hmm, first page of file doesn't have a long header?
                self._fail(f"invalid info bits {info:04X} in log segment "
                           f"{self.geometry.file_name(self.tli, segno)}, offset {offset}")
            _, _, tli, pageaddr, _ = PAGE_HEADER.unpack_from(page, 0)
        if pageaddr != recptr:
            self._fail(f"unexpected pageaddr {format_lsn(pageaddr)} in log segment "
                       f"{self.geometry.file_name(self.tli, segno)}, offset {offset}")
        if recptr > self._latest_page_ptr and tli < self._latest_page_tli:
            self._fail(f"out-of-sequence timeline ID {tli} (after {self._latest_page_tli}) "
                       f"in log segment {self.geometry.file_name(self.tli, segno)}, "
                       f"offset {offset}")
        self._latest_page_ptr = recptr
        self._latest_page_tli = tli

    # -- records -----------------------------------------------------------------------

    def _valid_record_header(self, rec_ptr: int, hdr: bytes | memoryview, offset: int,
                             rand_access: bool) -> None:
        """ValidXLogRecordHeader."""
        tot_len, _, prev, _, rmid, _ = RECORD_HEADER.unpack_from(hdr, offset)
        if tot_len < SizeOfXLogRecord:
            self._fail(f"invalid record length at {format_lsn(rec_ptr)}: "
                       f"wanted {SizeOfXLogRecord}, got {tot_len}")
        if not rmgr_id_is_valid(rmid):
            self._fail(f"invalid resource manager ID {rmid} at {format_lsn(rec_ptr)}")
        if (not prev < rec_ptr) if rand_access else prev != self._decode_rec_ptr:
            self._fail(f"record with incorrect prev-link {format_lsn(prev)} "
                       f"at {format_lsn(rec_ptr)}")

    def read_record(self, lsn: int | None = None) -> DecodedRecord | None:
        """XLogReadRecord: the next record (or the one at ``lsn``), None at the end of
        valid WAL with ``error`` saying why (None if ``end_lsn`` was reached)."""
        if lsn is not None:
            self.begin_read(lsn)
        self.error = None
        self.end_reached = False
        self.missing_segment = None
        try:
            rec = self._decode_next_record()
        except _ReadFailed:
            return None
        self.read_rec_ptr = rec.lsn
        self.end_rec_ptr = rec.end_lsn
        return rec

    def _decode_next_record(self) -> DecodedRecord:
        """XLogDecodeNextRecord."""
        blcksz = self.blcksz
        rec_ptr = self._next_rec_ptr
        rand_access = self._decode_rec_ptr == 0
        while True:  # "restart" target for XLP_FIRST_IS_OVERWRITE_CONTRECORD
            target_page_ptr = rec_ptr - rec_ptr % blcksz
            target_rec_off = rec_ptr % blcksz
            page = self._read_page(target_page_ptr,
                                   min(target_rec_off + SizeOfXLogRecord, blcksz))
            page_header_size = SizeOfXLogLongPHD if page[2] & XLP_LONG_HEADER \
                else SizeOfXLogShortPHD
            if target_rec_off == 0:
                # At page start, so skip over page header.
                rec_ptr += page_header_size
                target_rec_off = page_header_size
            elif target_rec_off < page_header_size:
                self._fail(f"invalid record offset at {format_lsn(rec_ptr)}")
            if page[2] & XLP_FIRST_IS_CONTRECORD and target_rec_off == page_header_size:
                self._fail(f"contrecord is requested by {format_lsn(rec_ptr)}")

            (total_len,) = _U32.unpack_from(page, target_rec_off)
            if target_rec_off <= blcksz - SizeOfXLogRecord:
                self._valid_record_header(rec_ptr, page, target_rec_off, rand_access)
                gotheader = True
            else:
                if total_len < SizeOfXLogRecord:
                    self._fail(f"invalid record length at {format_lsn(rec_ptr)}: "
                               f"wanted {SizeOfXLogRecord}, got {total_len}")
                gotheader = False

            length = blcksz - target_rec_off
            if total_len > length:
                # Need to reassemble record.
                parts = [bytes(page[target_rec_off:])]
                gotlen = length
                restarted = False
                while gotlen < total_len:
                    target_page_ptr += blcksz
                    page = self._read_page(
                        target_page_ptr,
                        min(total_len - gotlen + SizeOfXLogShortPHD, blcksz))
                    xlp_info = page[2]
                    if xlp_info & XLP_FIRST_IS_OVERWRITE_CONTRECORD:
                        self.overwritten_rec_ptr = rec_ptr
                        rec_ptr = target_page_ptr
                        restarted = True
                        break
                    if not xlp_info & XLP_FIRST_IS_CONTRECORD:
                        self._fail(f"there is no contrecord flag at {format_lsn(rec_ptr)}")
                    (rem_len,) = _U32.unpack_from(page, 16)
                    if rem_len == 0 or total_len != rem_len + gotlen:
                        self._fail(f"invalid contrecord length {rem_len} (expected "
                                   f"{total_len - gotlen}) at {format_lsn(rec_ptr)}")
                    page_header_size = SizeOfXLogLongPHD if xlp_info & XLP_LONG_HEADER \
                        else SizeOfXLogShortPHD
                    length = min(blcksz - page_header_size, rem_len)
                    self._check_end(target_page_ptr, page_header_size + length)
                    parts.append(bytes(page[page_header_size:page_header_size + length]))
                    gotlen += length
                    if not gotheader:
                        self._valid_record_header(rec_ptr, b"".join(parts), 0, rand_access)
                        gotheader = True
                if restarted:
                    continue
                raw = b"".join(parts)
                self._valid_record(raw, rec_ptr)
                next_rec_ptr = target_page_ptr + page_header_size + maxalign(rem_len)
            else:
                self._check_end(target_page_ptr, target_rec_off + total_len)
                raw = bytes(page[target_rec_off:target_rec_off + total_len])
                self._valid_record(raw, rec_ptr)
                next_rec_ptr = rec_ptr + maxalign(total_len)
            break

        if raw[_RMID_OFFSET] == RM_XLOG_ID and raw[_INFO_OFFSET] & ~XLR_INFO_MASK == XLOG_SWITCH:
            # Pretend it extends to end of segment.
            next_rec_ptr += self.seg_size - 1
            next_rec_ptr -= next_rec_ptr % self.seg_size
        try:
            rec = decode_record(raw, rec_ptr)
        except _DecodeError as exc:
            self._fail(str(exc))
        rec.end_lsn = next_rec_ptr
        self._next_rec_ptr = next_rec_ptr
        self._decode_rec_ptr = rec_ptr
        return rec

    def _valid_record(self, raw: bytes, rec_ptr: int) -> None:
        """ValidXLogRecord: the CRC check."""
        mv = memoryview(raw)
        crc = crc32c.crc32c(mv[:XL_CRC_OFFSET], crc32c.crc32c(mv[SizeOfXLogRecord:]))
        if crc != _U32.unpack_from(raw, XL_CRC_OFFSET)[0]:
            self._fail("incorrect resource manager data checksum in record at "
                       f"{format_lsn(rec_ptr)}")

    def find_first_record(self, start: int) -> int:
        """XLogFindNextRecord: the first record starting at or after ``start`` (which
        may point anywhere, e.g. at a segment start whose first bytes continue a
        record); 0 if none. The next read_record() returns that record."""
        self.error = None
        tmp = start
        blcksz = self.blcksz
        try:
            while True:
                target_rec_off = tmp % blcksz
                target_page_ptr = tmp - target_rec_off
                page = self._read_page(target_page_ptr, target_rec_off)
                xlp_info = page[2]
                page_header_size = SizeOfXLogLongPHD if xlp_info & XLP_LONG_HEADER \
                    else SizeOfXLogShortPHD
                self._check_end(target_page_ptr, page_header_size)
                if xlp_info & XLP_FIRST_IS_CONTRECORD:
                    (rem_len,) = _U32.unpack_from(page, 16)
                    if maxalign(rem_len) >= blcksz - page_header_size:
                        tmp = target_page_ptr + blcksz
                    else:
                        tmp = target_page_ptr + page_header_size + maxalign(rem_len)
                        break
                else:
                    tmp = target_page_ptr + page_header_size
                    break
        except _ReadFailed:
            self._inval()
            return 0
        self.begin_read(tmp)
        while (rec := self.read_record()) is not None:
            if start <= rec.lsn:
                self.begin_read(rec.lsn)
                return rec.lsn
        self._inval()
        return 0

    def records(self, start: int | None = None) -> Iterator[DecodedRecord]:
        """Iterate from ``start`` (or the current position) to the end of valid WAL."""
        if start is not None:
            self.begin_read(start)
        while (rec := self.read_record()) is not None:
            yield rec
