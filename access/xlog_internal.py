"""The WAL format — mirrors src/include/access/xlog_internal.h, xlogrecord.h,
xlogdefs.h and rmgrlist.h of PostgreSQL 15, byte for byte.

tusk writes WAL exactly as PostgreSQL 15 lays it out (page headers, record
headers, block references, CRC-32C, resource manager ids), so PostgreSQL's own
pg_waldump can read tusk's pg_wal: the tests use it as an oracle.

Positions
---------
An LSN (XLogRecPtr) is a 64-bit byte position in the WAL stream; segment
``segno`` covers [segno * seg_size, (segno + 1) * seg_size) and is the file
``TTTTTTTTXXXXXXXXYYYYYYYY`` (timeline, segno / segments-per-4GB,
segno % segments-per-4GB). Every WAL page (XLOG_BLCKSZ bytes) starts with a
header: the long one (40 bytes) on a segment's first page, the short one (24)
elsewhere. A "usable byte position" counts only the bytes after headers;
insertion reserves space in those units and converts (XLogBytePosToRecPtr).

Records
-------
A record is an XLogRecord header (24 bytes), block references, the main data,
MAXALIGNed to 8 bytes in the stream, possibly continued across pages and
segments (a continuation page has XLP_FIRST_IS_CONTRECORD and xlp_rem_len).
The CRC covers the record after its header, then the header up to xl_crc.
"""

from __future__ import annotations

import struct

import crc32c

XLOG_PAGE_MAGIC = 0xD110  # PostgreSQL 15
MAXIMUM_ALIGNOF = 8
InvalidXLogRecPtr = 0
FirstNormalUnloggedLSN = 1000

# -- page headers -------------------------------------------------------------------------

XLP_FIRST_IS_CONTRECORD = 0x0001
XLP_LONG_HEADER = 0x0002
XLP_BKP_REMOVABLE = 0x0004
XLP_FIRST_IS_OVERWRITE_CONTRECORD = 0x0008
XLP_ALL_FLAGS = 0x000F

# XLogPageHeaderData: magic, info, tli, pageaddr, rem_len (+4 bytes padding).
PAGE_HEADER = struct.Struct("<HHIQI4x")
# XLogLongPageHeaderData: the short header (without its padding), sysid, seg_size, blcksz.
LONG_PAGE_HEADER = struct.Struct("<HHIQI4xQII")
SizeOfXLogShortPHD = PAGE_HEADER.size  # 24
SizeOfXLogLongPHD = LONG_PAGE_HEADER.size  # 40
assert (SizeOfXLogShortPHD, SizeOfXLogLongPHD) == (24, 40)

# -- record header ---------------------------------------------------------------------------

# XLogRecord: xl_tot_len, xl_xid, xl_prev, xl_info, xl_rmid, 2 pad, xl_crc.
RECORD_HEADER = struct.Struct("<IIQBB2xI")
SizeOfXLogRecord = RECORD_HEADER.size  # 24
XL_CRC_OFFSET = 20  # offsetof(XLogRecord, xl_crc)

XLR_INFO_MASK = 0x0F
XLR_RMGR_INFO_MASK = 0xF0
XLR_SPECIAL_REL_UPDATE = 0x01
XLR_CHECK_CONSISTENCY = 0x02

# Block references (XLogRecordBlockHeader and friends).
BLOCK_HEADER = struct.Struct("<BBH")  # id, fork_flags, data_length
IMAGE_HEADER = struct.Struct("<HHB")  # length, hole_offset, bimg_info
COMPRESS_HEADER = struct.Struct("<H")  # hole_length (compressed images with a hole)
RELFILENODE = struct.Struct("<III")  # spcNode, dbNode, relNode
BLOCKNUMBER = struct.Struct("<I")
XLR_MAX_BLOCK_ID = 32
BKPBLOCK_FORK_MASK = 0x0F
BKPBLOCK_FLAG_MASK = 0xF0
BKPBLOCK_HAS_IMAGE = 0x10
BKPBLOCK_HAS_DATA = 0x20
BKPBLOCK_WILL_INIT = 0x40
BKPBLOCK_SAME_REL = 0x80
BKPIMAGE_HAS_HOLE = 0x01
BKPIMAGE_APPLY = 0x02
BKPIMAGE_COMPRESS_PGLZ = 0x04
BKPIMAGE_COMPRESS_LZ4 = 0x08
BKPIMAGE_COMPRESS_ZSTD = 0x10
XLR_BLOCK_ID_DATA_SHORT = 255
XLR_BLOCK_ID_DATA_LONG = 254
XLR_BLOCK_ID_ORIGIN = 253
XLR_BLOCK_ID_TOPLEVEL_XID = 252

# -- resource managers (rmgrlist.h) ------------------------------------------------------------

RM_XLOG_ID = 0
RM_XACT_ID = 1
RM_SMGR_ID = 2
RM_CLOG_ID = 3
RM_DBASE_ID = 4
RM_TBLSPC_ID = 5
RM_MULTIXACT_ID = 6
RM_RELMAP_ID = 7
RM_STANDBY_ID = 8
RM_HEAP2_ID = 9
RM_HEAP_ID = 10
RM_BTREE_ID = 11
RM_HASH_ID = 12
RM_GIN_ID = 13
RM_GIST_ID = 14
RM_SEQ_ID = 15
RM_SPGIST_ID = 16
RM_BRIN_ID = 17
RM_COMMIT_TS_ID = 18
RM_REPLORIGIN_ID = 19
RM_GENERIC_ID = 20
RM_LOGICALMSG_ID = 21
RM_MAX_BUILTIN_ID = RM_LOGICALMSG_ID
RMGR_NAMES = ("XLOG", "Transaction", "Storage", "CLOG", "Database", "Tablespace",
              "MultiXact", "RelMap", "Standby", "Heap2", "Heap", "Btree", "Hash", "Gin",
              "Gist", "Sequence", "SPGist", "BRIN", "CommitTs", "ReplicationOrigin",
              "Generic", "LogicalMessage")

# XLOG resource manager info codes (pg_control.h).
XLOG_CHECKPOINT_SHUTDOWN = 0x00
XLOG_CHECKPOINT_ONLINE = 0x10
XLOG_NOOP = 0x20
XLOG_NEXTOID = 0x30
XLOG_SWITCH = 0x40
XLOG_BACKUP_END = 0x50
XLOG_PARAMETER_CHANGE = 0x60
XLOG_RESTORE_POINT = 0x70
XLOG_FPW_CHANGE = 0x80
XLOG_END_OF_RECOVERY = 0x90
XLOG_FPI_FOR_HINT = 0xA0
XLOG_FPI = 0xB0
XLOG_OVERWRITE_CONTRECORD = 0xD0

# Transaction resource manager (xact.h).
XLOG_XACT_COMMIT = 0x00
XLOG_XACT_PREPARE = 0x10
XLOG_XACT_ABORT = 0x20
XLOG_XACT_COMMIT_PREPARED = 0x30
XLOG_XACT_ABORT_PREPARED = 0x40
XLOG_XACT_ASSIGNMENT = 0x50
XLOG_XACT_INVALIDATIONS = 0x60
XLOG_XACT_OPMASK = 0x70
XLOG_XACT_HAS_INFO = 0x80

# CLOG resource manager (clog.h).
CLOG_ZEROPAGE = 0x00
CLOG_TRUNCATE = 0x10

# The CheckPoint struct as it appears in checkpoint records: PostgreSQL 15's C
# layout (with its padding), so pg_waldump describes tusk's checkpoints.
CHECKPOINT = struct.Struct("<QII?7xQIIIIIIIxxxxqIII4x")
assert CHECKPOINT.size == 88


def maxalign(n: int) -> int:
    return (n + MAXIMUM_ALIGNOF - 1) & ~(MAXIMUM_ALIGNOF - 1)


def record_crc(record: bytes | bytearray | memoryview) -> int:
    """The CRC-32C of a whole record image (header included, xl_crc ignored)."""
    mv = memoryview(record)
    return crc32c.crc32c(mv[:XL_CRC_OFFSET], crc32c.crc32c(mv[SizeOfXLogRecord:]))


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    hi, sep, lo = text.partition("/")
    if not sep:
        raise ValueError(f'invalid input syntax for type pg_lsn: "{text}"')
    try:
        return (int(hi, 16) << 32) | int(lo, 16)
    except ValueError:
        raise ValueError(f'invalid input syntax for type pg_lsn: "{text}"') from None


class WalGeometry:
    """The sizes fixed at initdb, and the position arithmetic that depends on them."""

    __slots__ = ("blcksz", "seg_size", "usable_bytes_in_page", "usable_bytes_in_segment",
                 "pages_per_segment", "segments_per_xlogid")

    def __init__(self, blcksz: int, seg_size: int) -> None:
        self.blcksz = blcksz
        self.seg_size = seg_size
        self.pages_per_segment = seg_size // blcksz
        self.usable_bytes_in_page = blcksz - SizeOfXLogShortPHD
        self.usable_bytes_in_segment = (
            self.pages_per_segment * self.usable_bytes_in_page
            - (SizeOfXLogLongPHD - SizeOfXLogShortPHD))
        self.segments_per_xlogid = 0x100000000 // seg_size

    # XLogBytePosToRecPtr / XLogBytePosToEndRecPtr / XLogRecPtrToBytePos (xlog.c)
    def byte_pos_to_rec_ptr(self, bytepos: int) -> int:
        fullsegs, bytesleft = divmod(bytepos, self.usable_bytes_in_segment)
        if bytesleft < self.blcksz - SizeOfXLogLongPHD:
            seg_offset = bytesleft + SizeOfXLogLongPHD
        else:
            bytesleft -= self.blcksz - SizeOfXLogLongPHD
            fullpages, bytesleft = divmod(bytesleft, self.usable_bytes_in_page)
            seg_offset = self.blcksz + fullpages * self.blcksz + bytesleft + SizeOfXLogShortPHD
        return fullsegs * self.seg_size + seg_offset

    def byte_pos_to_end_rec_ptr(self, bytepos: int) -> int:
        """As above, but a position exactly at a page boundary maps to the end of
        the previous page rather than after the next page's header."""
        fullsegs, bytesleft = divmod(bytepos, self.usable_bytes_in_segment)
        if bytesleft < self.blcksz - SizeOfXLogLongPHD:
            seg_offset = bytesleft + SizeOfXLogLongPHD if bytesleft > 0 else 0
        else:
            bytesleft -= self.blcksz - SizeOfXLogLongPHD
            fullpages, bytesleft = divmod(bytesleft, self.usable_bytes_in_page)
            seg_offset = self.blcksz + fullpages * self.blcksz + bytesleft
            if bytesleft > 0:
                seg_offset += SizeOfXLogShortPHD
        return fullsegs * self.seg_size + seg_offset

    def rec_ptr_to_byte_pos(self, ptr: int) -> int:
        fullsegs, offset = divmod(ptr, self.seg_size)
        fullpages, offset = divmod(offset, self.blcksz)
        result = fullsegs * self.usable_bytes_in_segment
        if fullpages == 0:
            if offset > 0:
                result += offset - SizeOfXLogLongPHD
        else:
            result += (self.blcksz - SizeOfXLogLongPHD
                       + (fullpages - 1) * self.usable_bytes_in_page)
            if offset > 0:
                result += offset - SizeOfXLogShortPHD
        return result

    # File names (XLogFileName, XLByteToSeg, XLogSegmentOffset ...)
    def segno(self, lsn: int) -> int:
        return lsn // self.seg_size

    def segno_of_end(self, lsn: int) -> int:
        """XLByteToPrevSeg: the segment holding the byte just before ``lsn``."""
        return (lsn - 1) // self.seg_size

    def file_name(self, tli: int, segno: int) -> str:
        return (f"{tli:08X}{segno // self.segments_per_xlogid:08X}"
                f"{segno % self.segments_per_xlogid:08X}")

    def parse_file_name(self, name: str) -> tuple[int, int]:
        """(timeline, segno) of a 24-hex-digit segment file name."""
        if len(name) != 24 or any(c not in "0123456789ABCDEF" for c in name):
            raise ValueError(f"not a WAL segment file name: {name!r}")
        tli, log, seg = int(name[:8], 16), int(name[8:16], 16), int(name[16:], 16)
        return tli, log * self.segments_per_xlogid + seg

    def segment_start(self, segno: int) -> int:
        return segno * self.seg_size

    def page_start(self, lsn: int) -> int:
        return lsn - lsn % self.blcksz

    def is_segment_start(self, lsn: int) -> bool:
        return lsn % self.seg_size == 0


def pack_page_header(page: bytearray | memoryview, *, info: int, tli: int, pageaddr: int,
                     rem_len: int, long_header: tuple[int, int, int] | None = None) -> int:
    """Write a page header at the start of ``page``; returns its size.

    ``long_header`` = (system identifier, segment size, block size) for a
    segment's first page (XLP_LONG_HEADER is added to ``info``)."""
    if long_header is None:
        PAGE_HEADER.pack_into(page, 0, XLOG_PAGE_MAGIC, info, tli, pageaddr, rem_len)
        return SizeOfXLogShortPHD
    LONG_PAGE_HEADER.pack_into(page, 0, XLOG_PAGE_MAGIC, info | XLP_LONG_HEADER, tli, pageaddr,
                               rem_len, *long_header)
    return SizeOfXLogLongPHD
