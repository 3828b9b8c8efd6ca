"""access/heapverify.py on pages built in memory: a sound page with a HOT chain
and a redirect passes and yields the chains an index must hold; each kind of
damage is reported at its block and offset."""

from __future__ import annotations

import struct

import pytest

from access import heapverify as hv
from access.heaptuple import (
    HEAP_HOT_UPDATED,
    HEAP_ONLY_TUPLE,
    HEAP_UPDATED,
    HEAP_XMAX_INVALID,
    HEAP_XMAX_IS_MULTI,
    heap_form_tuple,
)
from access.tupdesc import Attribute, TupleDesc
from catalog import pg_type as t
from storage import bufpage as bp

DESC = TupleDesc((Attribute.of_type("id", t.INT4OID, 1), Attribute.of_type("s", t.TEXTOID, 2)))
COMMITTED = {10, 11, 12}
BLK = 7


def _ctx(**kw) -> hv.HeapCheckContext:
    status = kw.pop("status", lambda x: hv.XID_COMMITTED if x in COMMITTED else hv.XID_ABORTED)
    return hv.HeapCheckContext("t", 2, kw.pop("next_fxid", 100), 3, kw.pop("relfrozenxid", 5),
                               status, desc=DESC, **kw)


def _tuple(values, xmin: int, xmax: int = 0, ctid: int = 0, im2: int = 0, im: int = 0
           ) -> bytearray:
    tup = heap_form_tuple(DESC, values)
    old2, old = struct.unpack_from("<HH", tup, 18)
    if xmax:
        old &= ~HEAP_XMAX_INVALID
    struct.pack_into("<III", tup, 0, xmin, xmax, 0)
    struct.pack_into("<HHH", tup, 12, BLK >> 16, BLK & 0xFFFF, ctid)
    struct.pack_into("<HH", tup, 18, old2 | im2, old | im)
    return tup


def _page() -> bytearray:
    """1: a plain live row; 2: a redirect to 4; 3: a HOT-updated root whose
    successor is 5; 4: a heap-only row; 5: a heap-only row; 6: an aborted insert."""
    page = bytearray(bp.BLCKSZ)
    bp.page_init(page)
    bp.page_add_item(page, _tuple([1, "one"], 10, ctid=1))
    bp.page_add_item(page, _tuple([0, "placeholder"], 10, ctid=2))
    bp.page_add_item(page, _tuple([3, "three"], 10, xmax=11, ctid=5, im2=HEAP_HOT_UPDATED))
    bp.page_add_item(page, _tuple([2, "two, updated"], 12, ctid=4, im2=HEAP_ONLY_TUPLE,
                                  im=HEAP_UPDATED))
    bp.page_add_item(page, _tuple([3, "three, updated"], 11, ctid=5, im2=HEAP_ONLY_TUPLE,
                                  im=HEAP_UPDATED))
    bp.page_add_item(page, _tuple([6, None], 40, ctid=6))
    bp.item_id_set_redirect(page, 2, 4)
    return page


def _check(page, **kw) -> hv.HeapPageReport:
    return hv.check_heap_page(_ctx(**kw), BLK, bytes(page))


def _off(page, offnum: int) -> int:
    return bp.item_id(page, offnum)[0]


def test_sound_page_and_the_chains_to_index():
    rep = _check(_page())
    assert rep.problems == []
    assert rep.tuples == 5
    # Roots 1, 2 (redirect) and 3, each with its live member's values; the
    # aborted insert at 6 needs no entry.
    assert rep.indexed == {1: [1, "one"], 2: [2, "two, updated"], 3: [3, "three, updated"]}
    assert rep.lp_flags == bytes([bp.LP_NORMAL, bp.LP_REDIRECT, bp.LP_NORMAL, hv.LP_HEAP_ONLY,
                                  hv.LP_HEAP_ONLY, bp.LP_NORMAL])


def test_online_snapshot_decides_what_must_be_indexed():
    class Snap:
        xmin, xmax, xip_set = 11, 13, {11}

    rep = _check(_page(), snapshot=Snap())
    # xid 11 runs for the snapshot: the update of 3 is invisible, its old version counts.
    assert rep.indexed[3] == [3, "three"]


def _problems(rep) -> list[tuple]:
    return [(c.blkno, c.offnum, c.attnum, c.msg) for c in rep.problems]


@pytest.mark.parametrize("damage, expected", [
    (lambda p: bp.item_id_set(p, 1, _off(p, 1) + 4, bp.LP_NORMAL, bp.item_id(p, 1)[2]),
     (1, "not maximally aligned")),
    (lambda p: bp.item_id_set(p, 1, 8176, bp.LP_NORMAL, 40), (1, "ends beyond maximum page")),
    (lambda p: bp.item_id_set(p, 1, _off(p, 3), bp.LP_NORMAL, bp.item_id(p, 1)[2]),
     (3, "overlaps the tuple at offset 1")),
    (lambda p: p.__setitem__(_off(p, 1) + 22, 32), (1, "should begin at byte 24, but actually "
                                                       "begins at byte 32")),
    (lambda p: struct.pack_into("<H", p, _off(p, 1) + 18, 5), (1, "number of attributes 5")),
    (lambda p: struct.pack_into("<I", p, _off(p, 1), 500), (1, "xmin 500 equals or exceeds next")),
    (lambda p: struct.pack_into("<I", p, _off(p, 1), 4), (1, "precedes relation freeze")),
    (lambda p: struct.pack_into("<H", p, _off(p, 1) + 20, HEAP_XMAX_IS_MULTI),
     (1, "MultiXactId")),
    (lambda p: bp.item_id_set_redirect(p, 2, 9), (2, "exceeds maximum offset 6")),
    (lambda p: bp.item_id_set_redirect(p, 2, 1), (2, "which is not a heap-only tuple")),
    (lambda p: bp.item_id_set_unused(p, 4), (2, "points to an unused line pointer")),
    (lambda p: struct.pack_into("<H", p, _off(p, 3) + 16, 3), (3, "t_ctid points to itself")),
    (lambda p: struct.pack_into("<HH", p, _off(p, 3) + 12, 0, 8), (3, "points to block 8")),
    (lambda p: struct.pack_into("<I", p, _off(p, 5), 12), (3, "committed transaction 11 has "
                                                             "no successor")),
    (lambda p: struct.pack_into("<H", p, _off(p, 5) + 20, HEAP_XMAX_INVALID | 2),
     (5, "not marked as the result of an update")),
    (lambda p: struct.pack_into("<I", p, _off(p, 1) + 28, (20 << 2) | 2),  # text's header
     (1, "is compressed")),
])
def test_damage_is_reported_where_it_is(damage, expected):
    page = _page()
    damage(page)
    problems = _problems(_check(page))
    offnum, text = expected
    assert any(p[0] == BLK and p[1] == offnum and text in p[3] for p in problems), problems


def test_attribute_problem_names_the_attribute():
    page = _page()
    off, _flags, length = bp.item_id(page, 1)
    bp.item_id_set(page, 1, off, bp.LP_NORMAL, length - 2)  # the text now ends beyond
    assert _problems(_check(page)) == [(BLK, 1, 2, "attribute with length 4 ends at offset 32 "
                                                   "beyond total tuple length 30")]


def test_unreachable_heap_only_tuple_and_two_predecessors():
    page = _page()
    bp.item_id_set_unused(page, 2)  # 4 loses its redirect
    assert ("heap-only tuple is not reachable from the root of any HOT chain"
            in [p[3] for p in _problems(_check(page)) if p[1] == 4])
    page = _page()
    # 5 claims a HOT update by xid 12 into 4, which the redirect at 2 leads to already.
    o5 = _off(page, 5)
    struct.pack_into("<I", page, o5 + 4, 12)
    struct.pack_into("<H", page, o5 + 16, 4)
    struct.pack_into("<H", page, o5 + 18, 2 | HEAP_ONLY_TUPLE | HEAP_HOT_UPDATED)
    struct.pack_into("<H", page, o5 + 20, struct.unpack_from("<H", page, o5 + 20)[0]
                     & ~HEAP_XMAX_INVALID)
    assert (BLK, 5, None, "line pointers 2 and 5 both lead to the tuple at offset 4") \
        in _problems(_check(page))


def test_heap_map_judges_index_tids():
    rep = _check(_page())
    hmap = hv.HeapMap()
    hmap.add(rep)
    hmap.nblocks = BLK + 1
    assert hmap.tid_problem(BLK, 1) is None and hmap.tid_problem(BLK, 2) is None
    assert "heap-only" in hmap.tid_problem(BLK, 4)
    assert "line pointer array" in hmap.tid_problem(BLK, 7)
    assert "last block" in hmap.tid_problem(BLK + 1, 1)
    assert hmap.tid_problem(3, 1) is None or "line pointer array" in hmap.tid_problem(3, 1)
    assert hmap.indexed[(BLK, 3)] == [3, "three, updated"]
