"""WAL records: assembly (access/xloginsert.py), reading and decoding
(access/xlogreader.py), descriptions (access/rmgrdesc.py) and ``tusk_ctl
waldump`` (postmaster/waldump_cmd.py).

A small writer in this file lays assembled records into segment files exactly
as XLogInsertRecord/CopyXLogRecordToWAL do (page headers, continuation
records, XLOG_SWITCH), with 1 kB WAL pages and 1 MB segments as well as
PostgreSQL's 8 kB / 16 MB. PostgreSQL 15's pg_waldump is the oracle: it must
read that WAL without error and print exactly what ``tusk_ctl waldump`` prints,
and tusk must print exactly what pg_waldump prints for real PostgreSQL 15 WAL
(data/pg15_wal, see data/README.md).
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

from access import rmgrdesc
from access import xlog_internal as xi
from access.xloginsert import (
    BLCKSZ,
    REGBUF_FORCE_IMAGE,
    REGBUF_STANDARD,
    REGBUF_WILL_INIT,
    BlockRef,
    assemble_record,
    finish_record,
)
from access.xlogreader import (
    DecodedRecord,
    WalReadError,
    XLogReader,
    _DecodeError,
    decode_record,
    pglz_decompress,
    restore_block_image,
)
from postmaster.waldump_cmd import add_waldump_arguments, format_record, run_waldump
from storage.relfilenode import RelFileNode

PG_WALDUMP = "/usr/lib/postgresql/15/bin/pg_waldump"
DATA = Path(__file__).parent / "data"
SYSID = 7311111111111111111
REL = RelFileNode(1663, 5, 16384)
REL2 = RelFileNode(1663, 5, 16390)
SMALL = xi.WalGeometry(1024, 1024 * 1024)
ONE_MB = xi.WalGeometry(8192, 1024 * 1024)
PG_DEFAULT = xi.WalGeometry(8192, 16 * 1024 * 1024)
XACT_TIME = 789004800123456  # 2025-01-01 00:00:00.123456 UTC, in PostgreSQL's epoch

needs_pg_waldump = pytest.mark.skipif(not os.access(PG_WALDUMP, os.X_OK),
                                      reason="pg_waldump (PostgreSQL 15) is not installed")


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch):
    """Timestamps print in local time, as pg_waldump's do: make both use UTC."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# -- helpers -------------------------------------------------------------------------------

def make_page(lsn: int = 0, lower: int = 60, upper: int = 8000, fill: int = 0xAB,
              hole_fill: int = 0) -> bytearray:
    """A standard-layout page: header, 'items' below pd_lower, 'tuples' above pd_upper."""
    page = bytearray([fill]) * BLCKSZ
    struct.pack_into("<IIHHHHHHI", page, 0, lsn >> 32, lsn & 0xFFFFFFFF, 0, 0, lower, upper,
                     BLCKSZ, BLCKSZ | 4, 0)
    page[lower:upper] = bytes([hole_fill]) * (upper - lower)
    return page


def assemble(rmid: int, info: int, main: bytes = b"", blocks=(), *, xid: int = 0,
             redo: int = 0, fpw: bool = True) -> bytearray:
    return assemble_record(rmid, info, main, list(blocks), xid=xid, redo_rec_ptr=redo,
                           do_page_writes=fpw).image


def checkpoint_data(redo: int, *, next_xid: int = 735, next_oid: int = 16384,
                    oldest_active: int = 0) -> bytes:
    return xi.CHECKPOINT.pack(redo, 1, 1, True, next_xid, next_oid, 1, 0, 716, 1, 1, 1,
                              1700000000, 0, 0, oldest_active)


class WalWriter:
    """Lays records into segments as XLogInsertRecord + CopyXLogRecordToWAL do."""

    def __init__(self, waldir: Path, geom: xi.WalGeometry, *, tli: int = 1,
                 sysid: int = SYSID, first_segno: int = 1) -> None:
        self.waldir = waldir
        self.geom = geom
        self.tli = tli
        self.sysid = sysid
        self.segs: dict[int, bytearray] = {}
        self.pos = geom.rec_ptr_to_byte_pos(geom.segment_start(first_segno))  # CurrBytePos
        self.prev_pos: int | None = None
        self.records: list[tuple[int, int]] = []  # (start, end) of each record

    @property
    def insert_lsn(self) -> int:
        return self.geom.byte_pos_to_rec_ptr(self.pos)

    def _page(self, pageptr: int) -> memoryview:
        segno, off = divmod(pageptr, self.geom.seg_size)
        seg = self.segs.get(segno)
        if seg is None:
            seg = self.segs[segno] = bytearray(self.geom.seg_size)
        page = memoryview(seg)[off:off + self.geom.blcksz]
        if page[0] == 0 and page[1] == 0:  # AdvanceXLInsertBuffer: a fresh page header
            long_hdr = (self.sysid, self.geom.seg_size, self.geom.blcksz) if off == 0 else None
            xi.pack_page_header(page, info=xi.XLP_BKP_REMOVABLE, tli=self.tli,
                                pageaddr=pageptr, rem_len=0, long_header=long_hdr)
        return page

    def insert(self, image: bytearray, *, prev: int | None = None) -> int:
        geom = self.geom
        blcksz = geom.blcksz
        if prev is None:
            prev = 0 if self.prev_pos is None else geom.byte_pos_to_rec_ptr(self.prev_pos)
        finish_record(image, prev)
        size = len(image)
        start_pos = self.pos
        end_pos = start_pos + xi.maxalign(size)
        start = geom.byte_pos_to_rec_ptr(start_pos)
        ptr, written = start, 0
        while written < size:
            page_start = ptr - ptr % blcksz
            page = self._page(page_start)
            off = ptr % blcksz
            if off == 0:  # a continuation page
                hdr = xi.SizeOfXLogLongPHD if page[2] & xi.XLP_LONG_HEADER \
                    else xi.SizeOfXLogShortPHD
                struct.pack_into("<H", page, 2, page[2] | xi.XLP_FIRST_IS_CONTRECORD)
                struct.pack_into("<I", page, 16, size - written)
                off = hdr
                ptr += hdr
            n = min(blcksz - off, size - written)
            page[off:off + n] = image[written:written + n]
            written += n
            ptr += n
        if image[17] == xi.RM_XLOG_ID and image[16] & 0xF0 == xi.XLOG_SWITCH:
            # The switch record reserves the rest of its segment.
            end_ptr = geom.byte_pos_to_end_rec_ptr(end_pos)
            next_seg = geom.segno_of_end(end_ptr) + 1
            end_pos = next_seg * geom.usable_bytes_in_segment
        self.pos = end_pos
        self.prev_pos = start_pos
        end = geom.byte_pos_to_end_rec_ptr(end_pos)
        self.records.append((start, end))
        return start

    def flush(self) -> None:
        self.waldir.mkdir(parents=True, exist_ok=True)
        for segno, data in self.segs.items():
            (self.waldir / self.geom.file_name(self.tli, segno)).write_bytes(data)


def read_all(waldir: Path, geom: xi.WalGeometry, start: int, **kw) -> tuple[list, XLogReader]:
    reader = XLogReader(str(waldir), geom, system_identifier=kw.pop("sysid", SYSID), **kw)
    recs = []
    rec = reader.read_record(start)
    while rec is not None:
        recs.append(rec)
        rec = reader.read_record()
    reader.close()
    return recs, reader


def waldump_args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="tusk_ctl waldump")
    p.add_argument("-D", "--pgdata", dest="datadir")
    add_waldump_arguments(p)
    return p.parse_args(list(argv))


def tusk_waldump(capsys: pytest.CaptureFixture, *argv: str, datadir: str | None = None
                 ) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = run_waldump(waldump_args(*argv), datadir)
    out, err = capsys.readouterr()
    return rc, out, err


def pg_waldump(*argv: str) -> tuple[int, str, str]:
    r = subprocess.run([PG_WALDUMP, *argv], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "TZ": "UTC"})
    return r.returncode, r.stdout, r.stderr


# -- assembly ------------------------------------------------------------------------------

def test_main_data_short_layout() -> None:
    image = assemble(xi.RM_XLOG_ID, xi.XLOG_NEXTOID, struct.pack("<I", 24576), xid=7)
    assert len(image) == 24 + 2 + 4
    tot_len, xid, prev, info, rmid, _ = xi.RECORD_HEADER.unpack_from(image)
    assert (tot_len, xid, prev, info, rmid) == (30, 7, 0, xi.XLOG_NEXTOID, xi.RM_XLOG_ID)
    assert image[24:26] == bytes([xi.XLR_BLOCK_ID_DATA_SHORT, 4])
    finish_record(image, 0x1000028)
    assert struct.unpack_from("<Q", image, 8)[0] == 0x1000028
    assert struct.unpack_from("<I", image, 20)[0] == xi.record_crc(image)


def test_main_data_long_and_empty() -> None:
    main = bytes(range(256)) * 3
    image = assemble(xi.RM_XACT_ID, 0, main)
    assert image[24] == xi.XLR_BLOCK_ID_DATA_LONG
    assert struct.unpack_from("<I", image, 25)[0] == len(main)
    assert bytes(image[29:]) == main
    image = assemble(xi.RM_XLOG_ID, xi.XLOG_SWITCH)
    assert len(image) == 24  # SWITCH: header only
    rec = decode_record(bytes(image), 0x100)
    assert rec.main_data == b"" and rec.blocks == []


def test_blocks_same_rel_data_and_order() -> None:
    blocks = [BlockRef(0, REL, 0, 3, make_page(0x5000), b"tuple-0"),
              BlockRef(1, REL, 0, 9, make_page(0x5000), b"tuple-1"),
              BlockRef(2, REL2, 2, 0, make_page(0x5000), b""),
              BlockRef(3, REL2, 0, 1, None, b"x" * 300, will_init=True)]
    ar = assemble_record(xi.RM_HEAP_ID, 0x20, b"main", blocks, xid=900, redo_rec_ptr=0x4000,
                         do_page_writes=True)
    assert (ar.num_fpi, ar.fpi_bytes, ar.fpw_lsn) == (0, 0, 0x5000)
    finish_record(ar.image, 0x3000)
    rec = decode_record(bytes(ar.image), 0x6000)
    assert [b.block_id for b in rec.blocks] == [0, 1, 2, 3]
    assert [(b.rnode, b.fork, b.blkno, b.data) for b in rec.blocks] == [
        (REL, 0, 3, b"tuple-0"), (REL, 0, 9, b"tuple-1"), (REL2, 2, 0, b""),
        (REL2, 0, 1, b"x" * 300)]
    flags = [b.flags for b in rec.blocks]
    assert flags[0] & xi.BKPBLOCK_SAME_REL == 0 and flags[1] & xi.BKPBLOCK_SAME_REL
    assert flags[2] & xi.BKPBLOCK_SAME_REL == 0 and flags[3] & xi.BKPBLOCK_SAME_REL
    assert not rec.blocks[2].has_data and rec.blocks[3].will_init
    assert not any(b.has_image for b in rec.blocks)
    assert rec.main_data == b"main" and rec.xid == 900 and rec.prev == 0x3000
    # SAME_REL saves the 12-byte RelFileNode: headers 4+12+4, 4+4, 4+12+4, 4+4
    assert ar.tot_len == 24 + 20 + 8 + 20 + 8 + 2 + 7 + 7 + 300 + 4
    with pytest.raises(ValueError):
        assemble(xi.RM_HEAP_ID, 0, b"", [blocks[1], blocks[0]])


def test_full_page_image_with_hole() -> None:
    page = make_page(0x100, lower=100, upper=7000)
    ar = assemble_record(xi.RM_HEAP_ID, 0, b"m", [BlockRef(0, REL, 0, 5, page, b"data",
                                                           standard=True)],
                         xid=1, redo_rec_ptr=0x200, do_page_writes=True)
    assert (ar.num_fpi, ar.fpi_bytes, ar.fpw_lsn) == (1, BLCKSZ - 6900, 0)
    finish_record(ar.image, 0)
    rec = decode_record(bytes(ar.image), 0x1000)
    (b,) = rec.blocks
    assert b.has_image and b.apply_image and not b.has_data  # data dropped: image covers it
    assert (b.hole_offset, b.hole_length, b.bimg_len) == (100, 6900, BLCKSZ - 6900)
    assert b.bimg_info == xi.BKPIMAGE_HAS_HOLE | xi.BKPIMAGE_APPLY
    assert restore_block_image(rec, 0) == bytes(page)
    assert rec.record_and_fpi_len() == (ar.tot_len - b.bimg_len, b.bimg_len)


def test_full_page_image_without_hole_and_keep_data() -> None:
    # Not a standard page: the whole block is kept even though lower/upper look like a hole.
    page = make_page(0x100, lower=100, upper=7000, hole_fill=0x55)
    blk = BlockRef(0, REL, 1, 5, page, b"keep", keep_data=True)
    ar = assemble_record(xi.RM_HEAP2_ID, 0x10, b"", [blk], xid=0, redo_rec_ptr=0x100,
                         do_page_writes=True)
    finish_record(ar.image, 0)
    (b,) = decode_record(bytes(ar.image), 0x1000).blocks
    assert (b.hole_offset, b.hole_length, b.bimg_len, b.bimg_info) == \
        (0, 0, BLCKSZ, xi.BKPIMAGE_APPLY)
    assert b.image == bytes(page) and b.data == b"keep" and b.fork == 1
    # A standard page whose pd_lower/pd_upper make no sense has no hole either.
    for lower, upper in ((10, 7000), (5000, 4000), (100, 100)):
        bad = make_page(0, lower=lower, upper=upper)
        ar = assemble_record(xi.RM_XLOG_ID, xi.XLOG_FPI, b"",
                             [BlockRef(0, REL, 0, 0, bad, standard=True, force_image=True)],
                             xid=0, redo_rec_ptr=0, do_page_writes=False)
        assert ar.fpi_bytes == BLCKSZ


def test_image_decision_rules() -> None:
    def decide(lsn: int, *, redo: int = 0x1000, fpw: bool = True, **flags) -> tuple[bool, int]:
        blk = BlockRef(0, REL, 0, 0, make_page(lsn), b"d", standard=True, **flags)
        ar = assemble_record(xi.RM_HEAP_ID, 0, b"", [blk], xid=0, redo_rec_ptr=redo,
                             do_page_writes=fpw)
        return ar.num_fpi == 1, ar.fpw_lsn

    assert decide(0x1000) == (True, 0)             # page LSN <= redo: first change since
    assert decide(0x1001) == (False, 0x1001)       # changed since: decision depends on redo
    assert decide(0x500, fpw=False) == (False, 0)  # full_page_writes off
    assert decide(0x500, no_image=True) == (False, 0)
    assert decide(0x500, will_init=True) == (False, 0)
    assert decide(0x9000, force_image=True) == (True, 0)
    # fpw_lsn is the lowest LSN among the blocks that could have needed an image.
    blocks = [BlockRef(i, REL, 0, i, make_page(lsn), b"d") for i, lsn in
              enumerate((0x3000, 0x2000, 0x500, 0x2500))]
    ar = assemble_record(xi.RM_HEAP_ID, 0, b"", blocks, xid=0, redo_rec_ptr=0x1000,
                         do_page_writes=True)
    assert (ar.num_fpi, ar.fpw_lsn) == (1, 0x2000)
    # BlockRef.from_flags speaks XLogRegisterBuffer's flags.
    b = BlockRef.from_flags(0, REL, 0, 0, None, REGBUF_WILL_INIT | REGBUF_STANDARD)
    assert b.will_init and b.no_image and b.standard and not b.force_image
    assert BlockRef.from_flags(0, REL, 0, 0, None, REGBUF_FORCE_IMAGE).force_image


def test_consistency_check_images() -> None:
    """wal_consistency_checking: every block carries an image; BKPIMAGE_APPLY only
    where it was needed anyway."""
    blocks = [BlockRef(0, REL, 0, 1, make_page(0x9000), b"a", standard=True),
              BlockRef(1, REL, 0, 2, make_page(0x10), b"b", standard=True)]
    ar = assemble_record(xi.RM_HEAP_ID, xi.XLR_CHECK_CONSISTENCY, b"", blocks, xid=0,
                         redo_rec_ptr=0x1000, do_page_writes=True)
    finish_record(ar.image, 0)
    b0, b1 = decode_record(bytes(ar.image), 0x1000).blocks
    assert b0.has_image and not b0.apply_image and b0.data == b"a"
    assert b1.has_image and b1.apply_image and b1.data == b""
    assert ar.num_fpi == 2


def test_origin_and_toplevel_xid() -> None:
    ar = assemble_record(xi.RM_HEAP_ID, 0, b"m", [], xid=801, redo_rec_ptr=0,
                         do_page_writes=True, origin=3, toplevel_xid=800)
    finish_record(ar.image, 0)
    rec = decode_record(bytes(ar.image), 0x1000)
    assert (rec.origin, rec.toplevel_xid, rec.main_data) == (3, 800, b"m")


def test_wal_compression_settings_are_accepted() -> None:
    page = make_page(0, lower=100, upper=200)
    for method in ("off", "pglz", "lz4", "zstd"):
        ar = assemble_record(xi.RM_XLOG_ID, xi.XLOG_FPI, b"",
                             [BlockRef(0, REL, 0, 0, page, standard=True, force_image=True)],
                             xid=0, redo_rec_ptr=0, do_page_writes=True, wal_compression=method)
        finish_record(ar.image, 0)
        (b,) = decode_record(bytes(ar.image), 0x1000).blocks
        assert b.bimg_info & 0x1C == 0 and b.bimg_len == BLCKSZ - 100


def test_pglz_decompress() -> None:
    # literal bytes, then a back-reference (offset 3, length 6), then a long one
    ctrl = 0b00001000  # items: a b c (lit) then tag
    src = bytes([ctrl]) + b"abc" + bytes([0x03, 0x03]) + b""
    assert pglz_decompress(src, 9) == b"abcabcabc"
    long_tag = bytes([0b00000010]) + b"z" + bytes([0x0F, 0x01, 0x10])  # len 18+16
    assert pglz_decompress(long_tag, 35) == b"z" * 35
    assert pglz_decompress(bytes([0x01, 0x03, 0x05]), 9) is None  # offset before start
    assert pglz_decompress(src, 10) is None  # incomplete


# -- reading -------------------------------------------------------------------------------

def mixed_records(rng: random.Random, n: int) -> list[bytearray]:
    """Records of every shape: tiny, long main data, several blocks, images."""
    out = []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            out.append(assemble(xi.RM_XLOG_ID, xi.XLOG_NOOP, rng.randbytes(rng.randrange(0, 9))))
        elif kind == 1:
            out.append(assemble(xi.RM_XLOG_ID, xi.XLOG_NOOP,
                                rng.randbytes(rng.randrange(200, 3000))))
        elif kind == 2:
            blocks = [BlockRef(j, REL if j < 2 else REL2, 0, rng.randrange(100), None,
                               rng.randbytes(rng.randrange(1, 120)), will_init=j == 2,
                               no_image=True) for j in range(3)]
            out.append(assemble(xi.RM_HEAP_ID, 0, rng.randbytes(20), blocks, xid=700 + i))
        elif kind == 3:
            page = make_page(0, lower=rng.randrange(24, 4000), upper=rng.randrange(4000, 8192),
                             fill=rng.randrange(1, 256))
            out.append(assemble(xi.RM_XLOG_ID, xi.XLOG_FPI, b"",
                                [BlockRef(0, REL, 0, i, page, standard=True,
                                          force_image=True)]))
        else:
            out.append(assemble(xi.RM_HEAP_ID, 0x00, struct.pack("<HB", i % 200 + 1, 0x01),
                                [BlockRef(0, REL2, 0, i, None, rng.randbytes(30), no_image=True)],
                                xid=i))
    return out


@pytest.mark.parametrize("geom", [SMALL, ONE_MB], ids=["1kB-pages", "8kB-pages"])
def test_round_trip_across_pages_and_segments(tmp_path: Path, geom: xi.WalGeometry) -> None:
    rng = random.Random(15)
    w = WalWriter(tmp_path, geom)
    images = []
    while w.insert_lsn < 2 * geom.seg_size + geom.seg_size // 3:
        for image in mixed_records(rng, 50):
            images.append(bytes(image))
            w.insert(image)
    w.flush()
    recs, reader = read_all(tmp_path, geom, w.records[0][0])
    assert len(recs) == len(images)
    assert reader.error == f"invalid record length at {xi.format_lsn(w.records[-1][1])}: " \
                           "wanted 24, got 0"
    for rec, image, (start, end) in zip(recs, images, w.records, strict=True):
        assert (rec.lsn, rec.end_lsn) == (start, end)
        assert rec.xl_tot_len == len(image)
        expected = decode_record(image, rec.lsn)
        assert (rec.rmid, rec.info, rec.xid, rec.main_data) == \
            (expected.rmid, expected.info, expected.xid, expected.main_data)
        assert [(b.rnode, b.fork, b.blkno, b.flags, b.data, b.image) for b in rec.blocks] == \
            [(b.rnode, b.fork, b.blkno, b.flags, b.data, b.image) for b in expected.blocks]
        for b in rec.blocks:
            if b.has_image:
                page = restore_block_image(rec, b)
                assert len(page) == BLCKSZ and page[18:20] == b"\x04\x20"
    # The corner cases really happened: a header split over a page boundary, records
    # spanning pages and segments.
    blcksz = geom.blcksz
    assert any(s % blcksz > blcksz - xi.SizeOfXLogRecord for s, _ in w.records)
    pages_crossed = max((e - 1) // blcksz - s // blcksz for s, e in w.records)
    assert pages_crossed >= (8 if blcksz == 1024 else 1)
    assert any(geom.segno(s) != geom.segno_of_end(e) for s, e in w.records)
    assert reader.read_rec_ptr == w.records[-1][0]


def test_default_geometry_large_records(tmp_path: Path) -> None:
    """8 kB pages, 16 MB segments: records of a megabyte cross the segment boundary."""
    w = WalWriter(tmp_path, PG_DEFAULT)
    big = [bytes([i]) * (1 << 20) for i in range(18)]
    for data in big:
        w.insert(assemble(xi.RM_XACT_ID, 0, data))
    w.flush()
    recs, reader = read_all(tmp_path, PG_DEFAULT, w.records[0][0])
    assert [r.main_data for r in recs] == big
    assert any(PG_DEFAULT.segno(r.lsn) == 1 and PG_DEFAULT.segno(r.end_lsn) == 2 for r in recs)


def test_switch_moves_to_next_segment(tmp_path: Path) -> None:
    w = WalWriter(tmp_path, SMALL)
    w.insert(assemble(xi.RM_XLOG_ID, xi.XLOG_NOOP, b"abc"))
    switch = w.insert(assemble(xi.RM_XLOG_ID, xi.XLOG_SWITCH))
    after = w.insert(assemble(xi.RM_XLOG_ID, xi.XLOG_NOOP, b"def"))
    w.flush()
    assert after == 2 * SMALL.seg_size + xi.SizeOfXLogLongPHD
    recs, reader = read_all(tmp_path, SMALL, w.records[0][0])
    assert [r.lsn for r in recs] == [w.records[0][0], switch, after]
    assert recs[1].end_lsn == 2 * SMALL.seg_size
    assert recs[2].prev == switch


def test_find_first_record_skips_continuation(tmp_path: Path) -> None:
    w = WalWriter(tmp_path, SMALL)
    while w.insert_lsn < 2 * SMALL.seg_size + 3000:
        w.insert(assemble(xi.RM_XACT_ID, 0, b"q" * 700))
    w.flush()
    spanning = [s for s, e in w.records if SMALL.segno(s) == 1 and SMALL.segno_of_end(e) == 2]
    assert spanning, "no record crosses the segment boundary"
    reader = XLogReader(str(tmp_path), SMALL, system_identifier=SYSID)
    first = reader.find_first_record(2 * SMALL.seg_size)
    expected = next(s for s, _ in w.records if s >= 2 * SMALL.seg_size)
    assert first == expected
    assert reader.read_record().lsn == expected
    # From the middle of a record: the next one.
    mid = w.records[3][0] + 10
    assert reader.find_first_record(mid) == w.records[4][0]
    # Starting a read at the continuation itself is refused, as PostgreSQL does.
    page = 2 * SMALL.seg_size
    assert reader.read_record(page) is None
    assert reader.error == f"contrecord is requested by {xi.format_lsn(page + 40)}"
    reader.close()


def test_invalid_record_offset(tmp_path: Path) -> None:
    w = WalWriter(tmp_path, SMALL)
    while w.insert_lsn < SMALL.seg_size + 4096:
        w.insert(assemble(xi.RM_XLOG_ID, xi.XLOG_NOOP, b"z" * 100))
    w.flush()
    reader = XLogReader(str(tmp_path), SMALL)
    target = SMALL.seg_size + 2048 + 8
    assert reader.read_record(target) is None
    assert reader.error == f"invalid record offset at {xi.format_lsn(target)}"
    reader.close()


def test_end_lsn_stops_without_error(tmp_path: Path) -> None:
    w = WalWriter(tmp_path, SMALL)
    for _ in range(40):
        w.insert(assemble(xi.RM_XLOG_ID, xi.XLOG_NOOP, b"y" * 150))
    w.flush()
    end = w.records[20][1]
    recs, reader = read_all(tmp_path, SMALL, w.records[0][0], end_lsn=end)
    assert len(recs) == 21 and reader.error is None and reader.end_reached
    recs, reader = read_all(tmp_path, SMALL, w.records[0][0], end_lsn=end - 1)
    assert len(recs) == 20


# -- error detection -----------------------------------------------------------------------

def build(tmp_path: Path, n: int = 30, geom: xi.WalGeometry = SMALL) -> WalWriter:
    w = WalWriter(tmp_path, geom)
    for i in range(n):
        w.insert(assemble(xi.RM_XACT_ID, 0, bytes([i]) * (200 + 37 * i)))
    w.flush()
    return w


def segment(tmp_path: Path, w: WalWriter, segno: int = 1) -> Path:
    return tmp_path / w.geom.file_name(1, segno)


def patch(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def test_flipped_byte_is_a_crc_error(tmp_path: Path) -> None:
    w = build(tmp_path)
    start, end = w.records[5]
    path = segment(tmp_path, w)
    off = start % SMALL.seg_size + 60
    byte = path.read_bytes()[off]
    patch(path, off, bytes([byte ^ 0x01]))
    recs, reader = read_all(tmp_path, SMALL, w.records[0][0])
    assert len(recs) == 5
    assert reader.error == ("incorrect resource manager data checksum in record at "
                            f"{xi.format_lsn(start)}")
    assert reader.read_rec_ptr == w.records[4][0]


def test_zeroed_tail_is_invalid_record_length(tmp_path: Path) -> None:
    w = build(tmp_path)
    start = w.records[10][0]
    path = segment(tmp_path, w)
    off = start % SMALL.seg_size
    patch(path, off, bytes(SMALL.blcksz - off % SMALL.blcksz))
    recs, reader = read_all(tmp_path, SMALL, w.records[0][0])
    assert len(recs) == 10
    assert reader.error == f"invalid record length at {xi.format_lsn(start)}: wanted 24, got 0"


def test_wrong_prev_link(tmp_path: Path) -> None:
    w = WalWriter(tmp_path, SMALL)
    for _ in range(3):
        w.insert(assemble(xi.RM_XLOG_ID, xi.XLOG_NOOP, b"n"))
    bad = w.insert(assemble(xi.RM_XLOG_ID, xi.XLOG_NOOP, b"n"), prev=0xDEAD)
    w.flush()
    recs, reader = read_all(tmp_path, SMALL, w.records[0][0])
    assert len(recs) == 3
    assert reader.error == f"record with incorrect prev-link 0/DEAD at {xi.format_lsn(bad)}"
    # Reading it directly (random access), the prev-link only has to point backwards.
    assert reader.read_record(bad) is not None
    w2 = WalWriter(tmp_path / "b", SMALL)
    ahead = w2.insert(assemble(xi.RM_XLOG_ID, xi.XLOG_NOOP, b"n"), prev=1 << 40)
    w2.flush()
    recs, reader = read_all(tmp_path / "b", SMALL, ahead)
    assert reader.error == f"record with incorrect prev-link 100/0 at {xi.format_lsn(ahead)}"


def test_page_header_checks(tmp_path: Path) -> None:
    name = SMALL.file_name(1, 1)
    cases = [
        (lambda p: patch(p, 3 * 1024, b"\0\0"),
         f"invalid magic number 0000 in log segment {name}, offset 3072"),
        (lambda p: patch(p, 3 * 1024 + 2, b"\x10\x00"),
         f"invalid info bits 0010 in log segment {name}, offset 3072"),
        (lambda p: patch(p, 3 * 1024 + 8, struct.pack("<Q", 0x7000)),
         f"unexpected pageaddr 0/7000 in log segment {name}, offset 3072"),
        (lambda p: patch(p, 3 * 1024 + 4, struct.pack("<I", 0)),
         f"out-of-sequence timeline ID 0 (after 1) in log segment {name}, offset 3072"),
    ]
    for i, (corrupt, message) in enumerate(cases):
        d = tmp_path / str(i)
        w = build(d)
        corrupt(segment(d, w))
        recs, reader = read_all(d, SMALL, w.records[0][0])
        assert reader.error == message
        assert recs and recs[-1].end_lsn <= SMALL.seg_size + 3 * 1024 + 24


def test_long_header_checks(tmp_path: Path) -> None:
    w = build(tmp_path)
    recs, reader = read_all(tmp_path, SMALL, w.records[0][0], sysid=SYSID + 1)
    assert recs == []
    assert reader.error == ("WAL file is from different database system: WAL file database "
                            f"system identifier is {SYSID}, pg_control database system "
                            f"identifier is {SYSID + 1}")
    recs, reader = read_all(tmp_path, SMALL, w.records[0][0], sysid=0)  # not checked
    assert len(recs) == 30
    recs, reader = read_all(tmp_path, xi.WalGeometry(1024, 2 * 1024 * 1024), 0x200028)
    assert reader.error == ("WAL file is from different database system: incorrect segment "
                            "size in page header")
    path = segment(tmp_path, w)
    patch(path, 36, struct.pack("<I", 2048))
    recs, reader = read_all(tmp_path, SMALL, w.records[0][0])
    assert reader.error == ("WAL file is from different database system: incorrect "
                            "XLOG_BLCKSZ in page header")
    # The first page of a segment is checked even when reading starts further in.
    recs, reader = read_all(tmp_path, SMALL, w.records[10][0])
    assert "incorrect XLOG_BLCKSZ" in reader.error
    patch(path, 2, struct.pack("<H", xi.XLP_BKP_REMOVABLE))  # long header flag lost
    recs, reader = read_all(tmp_path, SMALL, w.records[0][0])
    assert reader.error == f"invalid info bits 0004 in log segment {SMALL.file_name(1, 1)}, " \
                           "offset 0"


def test_continuation_checks(tmp_path: Path) -> None:
    w = build(tmp_path)
    start, end = next((s, e) for s, e in w.records if e - s > 1024)
    cont_page = start - start % 1024 + 1024
    path = segment(tmp_path, w)
    off = cont_page % SMALL.seg_size
    info, rem_len = struct.unpack_from("<H12xI", path.read_bytes(), off + 2)
    patch(path, off + 2, struct.pack("<H", info & ~xi.XLP_FIRST_IS_CONTRECORD))
    recs, reader = read_all(tmp_path, SMALL, w.records[0][0])
    assert reader.error == f"there is no contrecord flag at {xi.format_lsn(start)}"
    patch(path, off + 2, struct.pack("<H", info))
    patch(path, off + 16, struct.pack("<I", rem_len + 8))
    recs, reader = read_all(tmp_path, SMALL, w.records[0][0])
    assert reader.error == (f"invalid contrecord length {rem_len + 8} (expected {rem_len}) "
                            f"at {xi.format_lsn(start)}")


def test_missing_segment_and_retry(tmp_path: Path) -> None:
    w = WalWriter(tmp_path, SMALL)
    while w.insert_lsn < 2 * SMALL.seg_size + 2048:
        w.insert(assemble(xi.RM_XLOG_ID, xi.XLOG_NOOP, b"m" * 500))
    w.flush()
    seg2 = segment(tmp_path, w, 2)
    saved = seg2.read_bytes()
    seg2.unlink()
    reader = XLogReader(str(tmp_path), SMALL, system_identifier=SYSID)
    n = 0
    rec = reader.read_record(w.records[0][0])
    while rec is not None:
        n += 1
        rec = reader.read_record()
    assert reader.missing_segment == SMALL.file_name(1, 2)
    assert reader.error.startswith(f'could not open file "{tmp_path}/{SMALL.file_name(1, 2)}"')
    # The segment appears (a reader following a live server): reading resumes where it
    # stopped, and the prev-link is still checked against the last record.
    seg2.write_bytes(saved)
    while (rec := reader.read_record()) is not None:
        n += 1
    assert n == len(w.records)
    reader.close()


def test_decode_errors() -> None:
    good = assemble(xi.RM_HEAP_ID, 0, b"m", [BlockRef(0, REL, 0, 1, None, b"d", no_image=True)])
    finish_record(good, 0)

    def mutated(pos: int, value: int) -> bytes:
        b = bytearray(good)
        b[pos] = value
        return bytes(b)

    with pytest.raises(_DecodeError, match=r"invalid block_id 40 at 0/1000"):
        decode_record(mutated(24, 40), 0x1000)
    with pytest.raises(_DecodeError, match=r"BKPBLOCK_HAS_DATA not set, but data length is 1"):
        decode_record(mutated(25, 0), 0x1000)
    with pytest.raises(_DecodeError, match=r"BKPBLOCK_SAME_REL set but no previous rel"):
        decode_record(mutated(25, good[25] | xi.BKPBLOCK_SAME_REL), 0x1000)
    with pytest.raises(_DecodeError, match=r"record with invalid length at 0/1000"):
        decode_record(mutated(0, good[0] + 1) + b"\0", 0x1000)
    rec = decode_record(bytes(good), 0x1000)
    with pytest.raises(WalReadError, match=r"invalid state, block 0"):
        restore_block_image(rec, 0)
    with pytest.raises(WalReadError, match=r"with invalid block 3 specified"):
        restore_block_image(rec, 3)


# -- descriptions --------------------------------------------------------------------------

def decoded(rmid: int, info: int, main: bytes, blocks=(), xid: int = 0) -> DecodedRecord:
    image = assemble(rmid, info, main, blocks, xid=xid)
    finish_record(image, 0)
    return decode_record(bytes(image), 0x1000028)


def test_describe_checkpoint_and_commit() -> None:
    rec = decoded(xi.RM_XLOG_ID, xi.XLOG_CHECKPOINT_SHUTDOWN, checkpoint_data(0x1000028))
    assert rmgrdesc.identify(rec.rmid, rec.info) == "CHECKPOINT_SHUTDOWN"
    assert rmgrdesc.describe(rec) == (
        "redo 0/1000028; tli 1; prev tli 1; fpw true; xid 0:735; oid 16384; multi 1; "
        "offset 0; oldest xid 716 in DB 1; oldest multi 1 in DB 1; oldest/newest commit "
        "timestamp xid: 0/0; oldest running xid 0; shutdown")
    assert format_record(rec) == (
        "rmgr: XLOG        len (rec/tot):    114/   114, tx:          0, lsn: 0/01000028, "
        "prev 0/00000000, desc: CHECKPOINT_SHUTDOWN redo 0/1000028; tli 1; prev tli 1; "
        "fpw true; xid 0:735; oid 16384; multi 1; offset 0; oldest xid 716 in DB 1; oldest "
        "multi 1 in DB 1; oldest/newest commit timestamp xid: 0/0; oldest running xid 0; "
        "shutdown")
    rec = decoded(xi.RM_XACT_ID, xi.XLOG_XACT_COMMIT, struct.pack("<q", XACT_TIME), xid=735)
    assert format_record(rec).endswith("desc: COMMIT 2025-01-01 00:00:00.123456 UTC")
    rec = decoded(xi.RM_CLOG_ID, xi.CLOG_ZEROPAGE, struct.pack("<i", 0))
    assert (rmgrdesc.identify(3, 0), rmgrdesc.describe(rec)) == ("ZEROPAGE", "page 0")
    assert rmgrdesc.identify_line(xi.RM_XLOG_ID, 0xE0) == "UNKNOWN (e0)"
    assert rmgrdesc.timestamptz_to_str(0) == "2000-01-01 00:00:00.000000 UTC"


# -- pg_waldump as the oracle --------------------------------------------------------------

def commit_with_everything() -> bytes:
    """dbinfo, subxacts, relfilenodes, dropped stats, invalidations, relcache init
    file, synchronous commit: every part ParseCommitRecord knows but 2PC and origin."""
    xinfo = 1 | 2 | 4 | 8 | 0x100 | (1 << 30) | (1 << 31)

    def msg(msg_id: int, a: int, b: int = 0) -> bytes:  # SharedInvalidationMessage
        return struct.pack("<bxxxII4x", msg_id, a, b)

    msgs = (msg(55, 5, 77) + msg(-1, 5, 1259) + msg(-2, 5, 16384) + msg(-4, 5)
            + msg(-5, 5, 2608) + struct.pack("<bxH12x", -3, 0))
    return (struct.pack("<qI", XACT_TIME, xinfo) + struct.pack("<II", 5, 1663)
            + struct.pack("<iII", 2, 736, 737) + struct.pack("<iIII", 1, 1663, 5, 16390)
            + struct.pack("<iiII", 1, 2, 5, 16390) + struct.pack("<i", 6) + msgs)


def oracle_records() -> list[bytearray]:
    """One record of each type both tools understand, with tusk's assembly."""
    recs = []
    recs.append(assemble(xi.RM_XLOG_ID, xi.XLOG_CHECKPOINT_SHUTDOWN,
                         checkpoint_data(0x100028)))
    recs.append(assemble(xi.RM_XLOG_ID, xi.XLOG_NOOP, b""))
    recs.append(assemble(xi.RM_XLOG_ID, xi.XLOG_NOOP, b"some noop payload"))
    recs.append(assemble(xi.RM_XLOG_ID, xi.XLOG_NEXTOID, struct.pack("<I", 24576)))
    recs.append(assemble(xi.RM_CLOG_ID, xi.CLOG_ZEROPAGE, struct.pack("<i", 1)))
    recs.append(assemble(xi.RM_CLOG_ID, xi.CLOG_TRUNCATE, struct.pack("<iII", 2, 65536, 1)))
    recs.append(assemble(xi.RM_XACT_ID, xi.XLOG_XACT_COMMIT, struct.pack("<q", XACT_TIME),
                         xid=735))
    recs.append(assemble(xi.RM_XACT_ID, xi.XLOG_XACT_COMMIT | xi.XLOG_XACT_HAS_INFO,
                         commit_with_everything(), xid=736))
    recs.append(assemble(xi.RM_XACT_ID, xi.XLOG_XACT_ABORT, struct.pack("<q", XACT_TIME + 1),
                         xid=737))
    recs.append(assemble(xi.RM_XACT_ID, xi.XLOG_XACT_ABORT | xi.XLOG_XACT_HAS_INFO,
                         struct.pack("<qIiI", XACT_TIME + 2, 2, 1, 739), xid=738))
    page = make_page(0x50, lower=200, upper=6000)
    recs.append(assemble(xi.RM_XLOG_ID, xi.XLOG_FPI, b"",
                         [BlockRef(0, REL, 0, 7, page, standard=True, force_image=True)]))
    recs.append(assemble(xi.RM_XLOG_ID, xi.XLOG_FPI, b"",
                         [BlockRef(0, REL, 2, 0, make_page(0x50), force_image=True),
                          BlockRef(1, REL, 1, 3, make_page(0x60, lower=24, upper=8192),
                                   standard=True, force_image=True)]))
    recs.append(assemble(xi.RM_XLOG_ID, xi.XLOG_FPI_FOR_HINT, b"",
                         [BlockRef(0, REL2, 0, 4, make_page(0x50, lower=40, upper=100),
                                   standard=True)], redo=0x100))
    # A heap-like record: image where needed, verification image where not, SAME_REL.
    blocks = [BlockRef(0, REL, 0, 1, make_page(0x9000), b"new tuple", standard=True),
              BlockRef(1, REL, 0, 2, make_page(0x10), b"old", standard=True),
              BlockRef(2, REL2, 0, 0, make_page(0), b"x" * 40, will_init=True)]
    recs.append(assemble(xi.RM_HEAP_ID, 0x20 | xi.XLR_CHECK_CONSISTENCY,
                         struct.pack("<IHBBIH", 740, 5, 0x10, 0x20, 0, 77), blocks, xid=740,
                         redo=0x1000))
    recs.append(assemble(xi.RM_XLOG_ID, xi.XLOG_PARAMETER_CHANGE,
                         struct.pack("<iiiiii??", 100, 8, 10, 0, 64, 1, False, True)))
    recs.append(assemble(xi.RM_XLOG_ID, xi.XLOG_END_OF_RECOVERY,
                         struct.pack("<qII", XACT_TIME, 2, 1)))
    recs.append(assemble(xi.RM_XLOG_ID, xi.XLOG_CHECKPOINT_ONLINE,
                         checkpoint_data(0x100028, next_xid=(1 << 32) | 741, oldest_active=741)))
    recs.append(assemble(xi.RM_XLOG_ID, xi.XLOG_BACKUP_END, struct.pack("<Q", 0x100028)))
    recs.append(assemble(xi.RM_XLOG_ID, xi.XLOG_FPW_CHANGE, b"\0"))
    recs.append(assemble(xi.RM_XLOG_ID, xi.XLOG_RESTORE_POINT,
                         struct.pack("<q64s", XACT_TIME, b"before upgrade")))
    recs.append(assemble(xi.RM_XLOG_ID, 0xE0, b"unknown type"))
    recs.append(assemble(xi.RM_XLOG_ID, xi.XLOG_SWITCH))
    return recs


def write_oracle_wal(waldir: Path) -> WalWriter:
    w = WalWriter(waldir, ONE_MB)
    for image in oracle_records():
        w.insert(image)
    # after the switch: a second segment, records crossing pages and into segment 3
    rng = random.Random(7)
    while w.insert_lsn < 3 * ONE_MB.seg_size + 20000:
        for image in mixed_records(rng, 20):
            w.insert(image)
    w.insert(assemble(xi.RM_XLOG_ID, xi.XLOG_CHECKPOINT_SHUTDOWN, checkpoint_data(w.insert_lsn)))
    w.flush()
    return w


@needs_pg_waldump
@pytest.mark.parametrize("opts", [[], ["-b"], ["--stats"], ["--stats=record"],
                                  ["-r", "Transaction", "-r", "CLOG"], ["-w"], ["-n", "7"],
                                  ["-R", "1663/5/16390"], ["-F", "vm"], ["-x", "736"]],
                         ids=lambda o: " ".join(o) or "default")
def test_pg_waldump_agrees_on_tusk_wal(tmp_path: Path, capsys, opts: list[str]) -> None:
    waldir = tmp_path / "pg_wal"
    w = write_oracle_wal(waldir)
    start = xi.format_lsn(w.records[0][0])
    rc1, out1, err1 = pg_waldump("-p", str(waldir), "-s", start, *opts)
    rc2, out2, err2 = tusk_waldump(capsys, "-p", str(waldir), "-s", start, *opts)
    assert out2 == out1
    assert (rc2, err2) == (rc1, err1.replace("pg_waldump:", "tusk_ctl waldump:"))
    if not opts:
        assert len(out1.splitlines()) == len(w.records)
        assert "FPW for WAL verification" in out1 and "UNKNOWN (e0)" in out1
        end = xi.format_lsn(w.records[-1][1])
        assert err1.strip().endswith(f"invalid record length at {end}: wanted 24, got 0")


@needs_pg_waldump
def test_pg_waldump_agrees_mid_stream(tmp_path: Path, capsys) -> None:
    waldir = tmp_path / "pg_wal"
    w = write_oracle_wal(waldir)
    for start, end in ((w.records[30][0] + 3, None), (2 * ONE_MB.seg_size, None),
                       (3 * ONE_MB.seg_size, w.records[-5][1])):
        args = ["-p", str(waldir), "-s", xi.format_lsn(start)]
        if end is not None:
            args += ["-e", xi.format_lsn(end)]
        rc1, out1, err1 = pg_waldump(*args)
        rc2, out2, err2 = tusk_waldump(capsys, *args)
        assert (rc2, out2) == (rc1, out1)
        assert err2 == err1.replace("pg_waldump:", "tusk_ctl waldump:")


# -- real PostgreSQL 15 WAL ----------------------------------------------------------------

PG15_FIRST = 0x600028  # the fixture's first segment starts at 0/600000
PG15_SYSID = 7710806286385562912


@pytest.fixture(scope="module")
def pg15_wal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    waldir = tmp_path_factory.mktemp("pg15") / "pg_wal"
    waldir.mkdir()
    for gz in sorted((DATA / "pg15_wal").glob("*.gz")):
        with gzip.open(gz, "rb") as src, open(waldir / gz.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return waldir


def test_pg15_wal_decodes(pg15_wal: Path) -> None:
    reader = XLogReader(str(pg15_wal), ONE_MB, system_identifier=PG15_SYSID)
    first = reader.find_first_record(PG15_FIRST)
    assert first == 0x600108  # a record continued from segment 5 is skipped
    recs = list(reader.records())
    reader.close()
    assert len(recs) == 20430
    assert reader.error == "invalid record length at 0/800238: wanted 24, got 0"
    kinds = {(rmgrdesc.rmgr_name(r.rmid), rmgrdesc.identify(r.rmid, r.info)) for r in recs}
    for kind in (("XLOG", "SWITCH"), ("XLOG", "CHECKPOINT_ONLINE"), ("XLOG", "RESTORE_POINT"),
                 ("Transaction", "COMMIT"), ("Transaction", "ABORT"),
                 ("Transaction", "PREPARE"), ("Transaction", "COMMIT_PREPARED"),
                 ("Heap", "INSERT"), ("Btree", "INSERT_LEAF"), ("Heap2", "PRUNE")):
        assert kind in kinds
    methods = set()
    for rec in recs:
        for b in rec.blocks:
            if b.has_image:
                page = restore_block_image(rec, b)
                assert len(page) == BLCKSZ and page[18:20] == b"\x04\x20"
                methods.add((b.bimg_info & 0x1C, b.apply_image))
    assert methods == {(xi.BKPIMAGE_COMPRESS_PGLZ, True), (xi.BKPIMAGE_COMPRESS_PGLZ, False),
                       (0, True)}


@needs_pg_waldump
@pytest.mark.parametrize("opts", [["-s", "0/600028"], ["-s", "0/600028", "-b"],
                                  ["-s", "0/600028", "--stats=record"],
                                  ["-s", "0/6FFF00", "-n", "3000"],
                                  ["-s", "0/700000", "-e", "0/7FFFFF", "-z"]],
                         ids=lambda o: " ".join(o))
def test_same_output_as_pg_waldump_on_pg15_wal(pg15_wal: Path, capsys, opts) -> None:
    rc1, out1, err1 = pg_waldump("-p", str(pg15_wal), *opts)
    rc2, out2, err2 = tusk_waldump(capsys, "-p", str(pg15_wal), *opts)
    assert out2 == out1
    assert (rc2, err2) == (rc1, err1.replace("pg_waldump:", "tusk_ctl waldump:"))


# -- tusk_ctl waldump ----------------------------------------------------------------------

def test_waldump_uses_pg_control_and_oldest_segment(tmp_path: Path, capsys) -> None:
    from catalog.pg_control import ControlFile, write_control_file

    datadir = tmp_path / "data"
    (datadir / "global").mkdir(parents=True)
    cf = ControlFile(system_identifier=SYSID, xlog_blcksz=1024, xlog_seg_size=1024 * 1024)
    write_control_file(str(datadir), cf, create=True, do_sync=False)
    w = WalWriter(datadir / "pg_wal", SMALL, first_segno=3)
    w.insert(assemble(xi.RM_XLOG_ID, xi.XLOG_CHECKPOINT_SHUTDOWN,
                      checkpoint_data(3 * SMALL.seg_size + 40)))
    w.insert(assemble(xi.RM_XACT_ID, xi.XLOG_XACT_COMMIT, struct.pack("<q", XACT_TIME), xid=5))
    w.flush()
    rc, out, err = tusk_waldump(capsys, datadir=str(datadir))
    lines = out.splitlines()
    assert rc == 1 and len(lines) == 2
    assert lines[0].startswith("rmgr: XLOG        len (rec/tot):    114/   114, tx:          0,"
                               " lsn: 0/00300028, prev 0/00000000, desc: CHECKPOINT_SHUTDOWN")
    assert err == (f"tusk_ctl waldump: error: error in WAL record at "
                   f"{xi.format_lsn(w.records[-1][0])}: invalid record length at "
                   f"{xi.format_lsn(w.records[-1][1])}: wanted 24, got 0\n")
    # A foreign segment is refused: the system identifier comes from pg_control.
    cf.system_identifier = SYSID + 5
    write_control_file(str(datadir), cf, do_sync=False)
    rc, out, err = tusk_waldump(capsys, datadir=str(datadir))
    assert rc == 1 and out == ""
    assert err == ("tusk_ctl waldump: error: could not find a valid record after 0/300000\n")


def test_waldump_arguments(tmp_path: Path, capsys) -> None:
    rc, out, _ = tusk_waldump(capsys, "--rmgr=list")
    assert rc == 0 and out.splitlines()[:4] == ["XLOG", "Transaction", "Storage", "CLOG"]
    for argv, message in ((["-s", "nonsense"], 'invalid WAL location: "nonsense"'),
                          (["-r", "Nope"], 'resource manager "Nope" does not exist'),
                          (["-B", "3"], "option -B/--block requires option -R/--relation to "
                                        "be specified"),
                          (["--stats=bogus"], "unrecognized value for option --stats: bogus"),
                          (["-F", "fork"], 'invalid fork name: "fork"')):
        rc, out, err = tusk_waldump(capsys, "-p", str(tmp_path), *argv)
        assert rc == 1 and err.startswith(f"tusk_ctl waldump: error: {message}\n"), err
    rc, out, err = tusk_waldump(capsys, "-p", str(tmp_path))
    assert (rc, err) == (1, "tusk_ctl waldump: error: could not find any WAL file\n")
    w = WalWriter(tmp_path, SMALL)
    w.insert(assemble(xi.RM_XLOG_ID, xi.XLOG_NOOP))
    w.insert(assemble(xi.RM_XLOG_ID, xi.XLOG_NOOP))
    w.flush()
    rc, out, err = tusk_waldump(capsys, "-p", str(tmp_path), "-n", "1")
    assert rc == 0 and err == "" and len(out.splitlines()) == 1
    rc, out, err = tusk_waldump(capsys, "-p", str(tmp_path), "-q")
    assert rc == 1 and out == "" and "invalid record length" in err


def test_waldump_follow(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """--follow: at the end of WAL, wait and retry; records written meanwhile appear."""
    import postmaster.waldump_cmd as cmd

    w = WalWriter(tmp_path, SMALL)
    for _ in range(3):
        w.insert(assemble(xi.RM_XLOG_ID, xi.XLOG_NOOP, b"before"))
    w.flush()
    naps = []

    def nap(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 1:  # the "server" writes more WAL, crossing into a new page
            for _ in range(10):
                w.insert(assemble(xi.RM_XLOG_ID, xi.XLOG_NOOP, b"after" * 40))
            w.flush()
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr(cmd.time, "sleep", nap)
    rc, out, err = tusk_waldump(capsys, "-p", str(tmp_path), "--follow")
    assert (rc, err) == (0, "") and naps == [cmd.FOLLOW_SLEEP, cmd.FOLLOW_SLEEP]
    assert len(out.splitlines()) == 13
