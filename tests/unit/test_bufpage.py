"""storage.bufpage: PostgreSQL's page layout, checked against real PostgreSQL 15 pages
(tests/unit/data, see README.md there) and against bufpage.c's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import bufpage as bp
from utils import elog
from utils.elog import PANIC, PgError

DATA = Path(__file__).parent / "data"


def fixture(name: str) -> bytes:
    return (DATA / f"pg15_{name}.page").read_bytes()


def new_page(special: int = 0) -> bytearray:
    page = bytearray(bp.BLCKSZ)
    bp.page_init(page, bp.BLCKSZ, special)
    return page


@pytest.fixture
def warnings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    monkeypatch.setattr(elog, "warning", lambda msg, **kw: seen.append(msg))
    return seen


# -- layout ---------------------------------------------------------------------------

def test_page_init_header() -> None:
    page = new_page()
    assert bp.page_header(page) == (0, 0, 0, 0, 24, 8192, 8192, 0x2004, 0)
    assert not bp.page_is_new(page)
    assert bp.page_get_max_offset_number(page) == 0
    assert bp.page_get_page_size(page) == 8192
    assert bp.page_get_page_layout_version(page) == 4
    assert bp.page_get_free_space(page) == 8192 - 24 - 4
    page = new_page(special=10)  # MAXALIGNed to 16
    assert bp.page_get_special_pointer(page) == 8176
    assert bp.page_get_special_size(page) == 16
    assert bp.page_get_upper(page) == 8176


def test_page_init_on_memoryview_of_larger_buffer() -> None:
    pool = bytearray(3 * bp.BLCKSZ)
    view = memoryview(pool)[bp.BLCKSZ:2 * bp.BLCKSZ]
    bp.page_init(view, bp.BLCKSZ, 0)
    assert bp.page_add_item(view, b"x" * 10) == 1
    assert pool[2 * bp.BLCKSZ - 16:2 * bp.BLCKSZ - 6] == b"x" * 10
    assert pool[:bp.BLCKSZ] == bytes(bp.BLCKSZ)


def test_new_page_is_all_zero() -> None:
    page = bytearray(bp.BLCKSZ)
    assert bp.page_is_new(page)
    assert bp.page_get_max_offset_number(page) == 0


def test_real_heap_page_header_and_line_pointers() -> None:
    page = fixture("heap_blk0")
    xlogid, xrecoff, checksum, flags, lower, upper, special, psv, prune = bp.page_header(page)
    assert bp.page_get_lsn(page) == 0x1922850
    assert (lower, upper, special, psv) == (256, 1344, 8192, 0x2004)
    assert flags == bp.PD_HAS_FREE_LINES
    assert bp.page_get_prune_xid(page) == 729
    n = bp.page_get_max_offset_number(page)
    assert n == (256 - 24) // 4 == 58
    assert bp.item_id(page, 1) == (8088, bp.LP_NORMAL, 100)
    for off in range(1, n + 1):
        lp_off, lp_flags, lp_len = bp.item_id(page, off)
        if lp_flags == bp.LP_NORMAL:
            assert upper <= lp_off and lp_off + lp_len <= special
            # a heap tuple header's t_hoff is at byte 22, MAXALIGNed, >= 24
            item = bp.page_get_item(page, off)
            assert len(item) == lp_len and item[22] % 8 == 0 and item[22] >= 24


def test_item_id_packing_matches_postgresql() -> None:
    page = fixture("btree_blk10")
    import struct

    raw = struct.unpack_from("<I", page, 24)[0]
    assert bp.item_id_unpack(raw) == bp.item_id(page, 1) == (8160, bp.LP_NORMAL, 16)
    assert bp.item_id_pack(8160, bp.LP_NORMAL, 16) == raw


def test_rebuild_real_btree_leaf_with_page_add_item() -> None:
    # The rightmost leaf got its items in key order, appended: rebuilding it from
    # its own items must reproduce PostgreSQL's line pointers and item placement.
    page = fixture("btree_blk10")
    special = bp.page_get_special_pointer(page)
    rebuilt = new_page(special=bp.page_get_special_size(page))
    for off in range(1, bp.page_get_max_offset_number(page) + 1):
        assert bp.page_add_item(rebuilt, bytes(bp.page_get_item(page, off)), is_heap=False) == off
    assert rebuilt[12:18] == page[12:18]  # pd_lower, pd_upper, pd_special
    lower, upper = bp.page_get_lower(page), bp.page_get_upper(page)
    assert rebuilt[24:lower] == page[24:lower]
    assert rebuilt[upper:special] == page[upper:special]


def test_lsn_round_trip() -> None:
    page = new_page()
    bp.page_set_lsn(page, 0x1_2345_6789)
    assert bp.page_get_lsn(page) == 0x1_2345_6789
    assert page[0:8] == bytes.fromhex("0100000089674523")  # xlogid, xrecoff, little-endian


def test_flags_and_prunable() -> None:
    page = new_page()
    bp.page_set_all_visible(page)
    bp.page_set_full(page)
    assert bp.page_get_flags(page) == bp.PD_ALL_VISIBLE | bp.PD_PAGE_FULL
    bp.page_clear_full(page)
    assert bp.page_is_all_visible(page) and not bp.page_is_full(page)
    bp.page_set_prunable(page, 1000)
    bp.page_set_prunable(page, 2000)  # not older: kept
    assert bp.page_get_prune_xid(page) == 1000
    bp.page_set_prunable(page, 900)
    assert bp.page_get_prune_xid(page) == 900
    bp.page_clear_prunable(page)
    assert bp.page_get_prune_xid(page) == 0


# -- page_add_item ----------------------------------------------------------------------

def test_add_items_until_full() -> None:
    page = new_page()
    item = bytes(range(100))  # MAXALIGN 104 + 4-byte line pointer = 108 per item
    added = []
    while (off := bp.page_add_item(page, item)) != bp.InvalidOffsetNumber:
        added.append(off)
    assert added == list(range(1, (8192 - 24) // 108 + 1))  # 75 items
    assert bp.page_get_max_offset_number(page) == 75
    assert bp.page_get_lower(page) == 24 + 75 * 4
    assert bp.page_get_upper(page) == 8192 - 75 * 104
    assert bp.page_get_free_space(page) < 104
    for off in added:
        lp_off, flags, length = bp.item_id(page, off)
        assert (lp_off, flags, length) == (8192 - off * 104, bp.LP_NORMAL, 100)
        assert bytes(bp.page_get_item(page, off)) == item
    # a smaller item still fits in what is left
    left = bp.page_get_free_space(page)
    assert bp.page_add_item(page, b"z" * (left - left % 8)) == 76
    assert bp.page_add_item(page, b"z") == bp.InvalidOffsetNumber


def test_max_heap_tuples_per_page(warnings: list[str]) -> None:
    assert bp.MaxHeapTuplesPerPage == 291
    page = new_page()
    for i in range(1, 292):
        assert bp.page_add_item(page, b"t") == i
    assert bp.page_add_item(page, b"t") == bp.InvalidOffsetNumber
    assert warnings == ["can't put more than MaxHeapTuplesPerPage items in a heap page"]
    assert bp.page_get_heap_free_space(page) == 0
    assert bp.page_add_item(page, b"t", is_heap=False) == 292


def test_insert_with_shuffle_and_overwrite(warnings: list[str]) -> None:
    page = new_page()
    for data in (b"a", b"b", b"c"):
        bp.page_add_item(page, data)
    assert bp.page_add_item(page, b"new", offset=2) == 2
    assert [bytes(bp.page_get_item(page, i)) for i in range(1, 5)] == [b"a", b"new", b"b", b"c"]
    # overwrite a used slot: refused with PostgreSQL's warning
    assert bp.page_add_item(page, b"x", offset=1, overwrite=True) == bp.InvalidOffsetNumber
    assert warnings[-1] == "will not overwrite a used ItemId"
    bp.item_id_set_unused(page, 3)
    assert bp.page_add_item(page, b"again", offset=3, overwrite=True) == 3
    assert bytes(bp.page_get_item(page, 3)) == b"again"
    assert bp.page_get_max_offset_number(page) == 4
    assert bp.page_add_item(page, b"x", offset=9) == bp.InvalidOffsetNumber
    assert warnings[-1] == "specified item offset is too large"


def test_free_line_pointer_reuse() -> None:
    page = new_page()
    for data in (b"a", b"b", b"c"):
        bp.page_add_item(page, data)
    bp.item_id_set_unused(page, 2)
    assert bp.page_add_item(page, b"d") == 4  # no hint: append
    bp.page_set_has_free_line_pointers(page)
    assert bp.page_add_item(page, b"e") == 2  # hint: reuse the unused slot
    assert bp.page_add_item(page, b"f") == 5  # hint was stale now: cleared
    assert not bp.page_has_free_line_pointers(page)


def test_corrupted_pointers_panic() -> None:
    page = new_page()
    page[12:14] = (9000).to_bytes(2, "little")  # pd_lower > pd_upper
    with pytest.raises(PgError) as info:
        bp.page_add_item(page, b"x")
    assert info.value.severity == PANIC and info.value.sqlstate == "XX001"
    assert info.value.message == "corrupted page pointers: lower = 9000, upper = 8192, special = 8192"


def test_item_id_setters() -> None:
    page = new_page()
    bp.page_add_item(page, b"abc")
    bp.page_add_item(page, b"def")
    bp.item_id_set_redirect(page, 1, 2)
    assert bp.item_id(page, 1) == (2, bp.LP_REDIRECT, 0)
    bp.item_id_mark_dead(page, 2)
    assert bp.item_id(page, 2) == (8176, bp.LP_DEAD, 3)
    bp.item_id_set_dead(page, 2)
    assert bp.item_id(page, 2) == (0, bp.LP_DEAD, 0)


# -- verification -----------------------------------------------------------------------

def test_real_pages_verify() -> None:
    for path in sorted(DATA.glob("pg15_*_blk*.page")):
        blkno = int(path.stem.rsplit("_blk", 1)[1])
        assert bp.page_is_verified(path.read_bytes(), blkno, checksums_enabled=True), path


def test_checksum_failure(warnings: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    failures: list[int] = []
    monkeypatch.setattr(bp, "checksum_failure_hook", lambda: failures.append(1))
    page = bytearray(fixture("heap_blk53"))
    page[5000] ^= 0x40  # a flipped bit in tuple data
    assert not bp.page_is_verified(page, 53, checksums_enabled=True)
    expected = int.from_bytes(page[8:10], "little")
    calculated = bp.pg_checksum_page(page, 53)
    assert warnings == [f"page verification failed, calculated checksum {calculated} "
                        f"but expected {expected}"]
    assert failures == [1]
    # the header is sane: without checksums it passes, and ignore_checksum_failure lets it in
    assert bp.page_is_verified(page, 53, checksums_enabled=False)
    assert bp.page_is_verified(page, 53, True, ignore_checksum_failure=True)
    # right bytes, wrong place (a transposed page) fail too
    assert not bp.page_is_verified(fixture("heap_blk53"), 52, checksums_enabled=True)


@pytest.mark.parametrize("field,value", [
    ("flags", 0x0008),            # unknown flag bit
    ("lower", 8150),              # lower > upper (8136)
    ("upper", 8200),              # upper > special
    ("special", 8194),            # special not MAXALIGNed
])
def test_insane_headers_fail(field: str, value: int, warnings: list[str]) -> None:
    page = new_page(special=16)
    bp.page_add_item(page, b"x" * 40)
    offset = {"flags": 10, "lower": 12, "upper": 14, "special": 16}[field]
    page[offset:offset + 2] = value.to_bytes(2, "little")
    assert not bp.page_is_verified(page, 0, checksums_enabled=False)
    assert not bp.page_is_verified(page, 0, True, ignore_checksum_failure=True)


def test_zero_and_new_pages() -> None:
    assert bp.page_is_verified(bytes(8192), 0, checksums_enabled=True)
    page = bytearray(8192)
    page[100] = 1  # pd_upper == 0 but not all zeroes: garbage
    assert not bp.page_is_verified(page, 0, checksums_enabled=False)


def test_invalid_page_error() -> None:
    err = bp.InvalidPageError(7, "base/5/16384")
    assert isinstance(err, PgError) and err.sqlstate == "XX001"
    assert err.message == "invalid page in block 7 of relation base/5/16384"
    assert (bp.invalid_page_zeroing_message(7, "base/5/16384")
            == "invalid page in block 7 of relation base/5/16384; zeroing out page")


def test_set_checksum_copy_and_inplace() -> None:
    page = bytearray(fixture("heap_blk58"))
    stored = bytes(page[8:10])
    page[8:10] = b"\0\0"
    copy = bp.page_set_checksum_copy(page, 58)
    assert copy is not page and bytes(copy[8:10]) == stored
    assert page[8:10] == b"\0\0"  # the shared page is left alone
    assert bp.page_set_checksum_copy(page, 58, checksums_enabled=False) is page
    fresh = bytearray(8192)
    assert bp.page_set_checksum_copy(fresh, 0) is fresh  # new pages carry no checksum
    bp.page_set_checksum_inplace(page, 58)
    assert bytes(page[8:10]) == stored
    assert bp.page_is_verified(page, 58, checksums_enabled=True)


def test_new_page_with_items_gets_verified_checksum() -> None:
    page = new_page()
    for i in range(10):
        bp.page_add_item(page, bytes([i]) * (i + 30))
    bp.page_set_lsn(page, 0x16B3740)
    out = bp.page_set_checksum_copy(page, 12)
    assert bp.page_is_verified(out, 12, checksums_enabled=True)
    assert bp.page_get_checksum(out) == bp.pg_checksum_page(out, 12)
