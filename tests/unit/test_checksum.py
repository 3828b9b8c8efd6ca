"""storage.checksum: PostgreSQL's data page checksum, bit for bit.

The fixtures in tests/unit/data are pages written by PostgreSQL 15.18 with data
checksums on (initdb -k): a heap, its primary-key B-tree, its free space map and
visibility map. See data/README.md for how they were made; the block number of
each page is in its file name.
"""

from __future__ import annotations

import random
import re
import struct
from pathlib import Path

import pytest

from storage.checksum import CHECKSUM_BASE_OFFSETS, FNV_PRIME, pg_checksum_page

DATA = Path(__file__).parent / "data"
FIXTURES = sorted(DATA.glob("pg15_*_blk*.page"))


def reference_checksum_page(page: bytes, blkno: int) -> int:
    """A literal transliteration of checksum_impl.h, lane by lane (slow)."""
    words = list(struct.unpack("<2048I", page))
    words[2] &= 0xFFFF0000  # pd_checksum (bytes 8-9) counts as zero
    sums = list(CHECKSUM_BASE_OFFSETS)

    def comp(s: int, v: int) -> int:
        tmp = s ^ v
        return ((tmp * FNV_PRIME) & 0xFFFFFFFF) ^ (tmp >> 17)

    for i in range(64):
        for j in range(32):
            sums[j] = comp(sums[j], words[i * 32 + j])
    for _ in range(2):
        for j in range(32):
            sums[j] = comp(sums[j], 0)
    result = 0
    for s in sums:
        result ^= s
    return ((result ^ blkno) % 65535) + 1


def stored_checksum(page: bytes) -> int:
    return struct.unpack_from("<H", page, 8)[0]


def test_fixtures_present() -> None:
    assert len(FIXTURES) >= 6
    for path in FIXTURES:
        assert path.stat().st_size == 8192


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_matches_postgresql_pages(path: Path) -> None:
    page = path.read_bytes()
    blkno = int(re.search(r"_blk(\d+)$", path.stem).group(1))
    assert pg_checksum_page(page, blkno) == stored_checksum(page)
    # The block number is mixed in: the same bytes elsewhere do not verify.
    assert pg_checksum_page(page, blkno + 1) != stored_checksum(page)


def test_random_pages_match_reference() -> None:
    rng = random.Random(15)
    for blkno in (0, 1, 7, 131071, 131072, 0xFFFFFFFE):
        page = rng.randbytes(8192)
        assert pg_checksum_page(page, blkno) == reference_checksum_page(page, blkno)


def test_structured_pages_match_reference() -> None:
    # Patterns that stress the 32-bit wrap-around and the >> 17 mixing.
    for fill in (b"\x00", b"\xff", b"\x80\x00\x00\x01", b"\x01\x00\x00\x80"):
        page = (fill * 8192)[:8192]
        assert pg_checksum_page(page, 3) == reference_checksum_page(page, 3)


def test_pd_checksum_field_is_ignored_and_page_untouched() -> None:
    page = bytearray(random.Random(1).randbytes(8192))
    before = bytes(page)
    value = pg_checksum_page(page, 5)
    assert bytes(page) == before
    page[8:10] = b"\x12\x34"
    assert pg_checksum_page(page, 5) == value
    page[10] ^= 1  # pd_flags is not ignored
    assert pg_checksum_page(page, 5) != value


def test_range_and_buffer_types() -> None:
    rng = random.Random(2)
    for _ in range(20):
        page = rng.randbytes(8192)
        value = pg_checksum_page(page, rng.randrange(1 << 32))
        assert 1 <= value <= 65535
    page = FIXTURES[0].read_bytes()
    expected = pg_checksum_page(page, 0)
    assert pg_checksum_page(bytearray(page), 0) == expected
    assert pg_checksum_page(memoryview(bytearray(page)), 0) == expected
    with pytest.raises(ValueError):
        pg_checksum_page(page[:4096], 0)
