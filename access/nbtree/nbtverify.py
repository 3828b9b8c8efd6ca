"""B-tree structure checker — in the spirit of contrib/amcheck's verify_nbtree.c
(bt_index_parent_check), for tests and ``tusk_ctl verify``.

``bt_verify(index_rel)`` walks the metapage and every level from the root down,
following right links, and returns a list of problems, each naming the block
(and offset) where it was found; an empty list means the index is sound:

- metapage: magic, version, root and fast root;
- every page: initialised, B-tree special space, level and leaf flag agree with
  the level it was reached on, not deleted, sibling links agree both ways
  (next's prev is this page), BTP_ROOT only on the root, the root alone on its
  level, and (unless allowed) no incomplete split;
- tuples: leaf data items are non-pivot tuples, high keys and internal items are
  pivots keeping at most the key attributes, the first data item of an internal
  page is "minus infinity"; keys (with the heap TID as the last column, truncated
  attributes as minus infinity) strictly increase within a page, never exceed the
  page's high key, and the first key of a page is above its left sibling's high key;
- parent/child: the downlinks of a level, in order, name exactly the pages of the
  level below in sibling order (a page whose left sibling is incompletely split
  may lack one); every child has the level below its parent, its high key is the
  parent's next separator (the parent's high key for its last child), and its
  first key is above the separator that leads to it;
- every block of the file is in the tree (all-zero pages left by a crash during
  extension are allowed).

The checks read one page at a time under a share lock; run them on a quiescent
index (as amcheck's parent check requires a ShareLock) for exact results.
``bt_check(rel, parent_check=False)`` keeps only what holds while other
backends insert and split (bt_index_check): no parent/child, left link, fast
root or reachability checks, and a right link past the end re-reads the size.
Problems are access.heapverify.Corruption values (block, offset, message);
bt_verify and bt_verify_file give them as strings.

``leaf_items`` collects every leaf entry (its TID and normalised key) for
``bt_heap_crosscheck``, which compares them with a heap's line pointers and
with the rows that must be indexed (access.heapverify.HeapMap): the
heapallindexed check of amcheck with exact sets, plus the reverse direction.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import NamedTuple

from access.heapverify import Corruption, HeapMap
from access.nbtree.nbtdefs import (
    BT_SPECIAL,
    BTP_IGNORE,
    BTP_INCOMPLETE_SPLIT,
    BTP_LEAF,
    BTP_META,
    BTP_ROOT,
    BTREE_MAGIC,
    BTREE_METAPAGE,
    BTREE_NOVAC_VERSION,
    BTREE_VERSION,
    INDEX_ALT_TID_MASK,
    ITUP,
    OPAQUE,
    P_FIRSTKEY,
    P_HIKEY,
    P_NONE,
    maxalign,
)
from access.nbtree.nbtpage import bt_getmeta
from access.nbtree.nbtutils import BTCache, get_cache
from storage import bufpage, smgr
from storage.bufmgr import (
    BUFFER_LOCK_SHARE,
    buffer_get_page,
    lock_buffer,
    read_buffer,
    unlock_release_buffer,
)
from storage.bufpage import BLCKSZ
from storage.relfilenode import MAIN_FORKNUM

_ITEMID = struct.Struct("<I")


class LeafItem(NamedTuple):
    """One leaf entry: where it is, the heap TID it points to, its key values
    (normalised, as BTCache.norm gives them)."""

    blkno: int
    offnum: int
    htid: tuple[int, int]
    key: tuple


class _Page:
    """A private copy of one page with what the checks need."""

    def __init__(self, blkno: int, data: bytes) -> None:
        self.blkno = blkno
        self.data = data
        self.new = bufpage.page_is_new(data)
        if self.new:
            return
        self.special = bufpage.page_get_special_pointer(data)
        self.prev, self.next, self.level, self.flags, self.cycleid = \
            OPAQUE.unpack_from(data, BT_SPECIAL) if self.special == BT_SPECIAL else (0,) * 5
        self.maxoff = bufpage.page_get_max_offset_number(data)
        self.rightmost = self.next == P_NONE
        self.firstdata = P_HIKEY if self.rightmost else P_FIRSTKEY
        self.leaf = bool(self.flags & BTP_LEAF)

    def item(self, off: int) -> bytes:
        w = _ITEMID.unpack_from(self.data, 24 + 4 * (off - 1))[0]
        o = w & 0x7FFF
        return self.data[o:o + (w >> 17)]


def _read_page(rel, blkno: int) -> _Page:
    buf = read_buffer(rel.smgr, blkno)
    lock_buffer(buf, BUFFER_LOCK_SHARE)
    try:
        data = bytes(buffer_get_page(buf))
    finally:
        unlock_release_buffer(buf)
    return _Page(blkno, data)


def _full_key(c: BTCache, tup: bytes) -> tuple:
    """The tuple's position in the key space: key values (minus infinity for
    truncated ones) then the heap TID (minus infinity if absent)."""
    return c.full_key(tup)


def bt_verify(index_rel, *, allow_incomplete_splits: bool = True) -> list[str]:
    """Check the index's structure through shared buffers; returns the problems
    found (empty: sound)."""
    return [str(p) for p in bt_check(index_rel, allow_incomplete_splits=allow_incomplete_splits)]


def bt_check(index_rel, *, parent_check: bool = True, allow_incomplete_splits: bool = True,
             leaf_items: list[LeafItem] | None = None) -> list[Corruption]:
    """The checks through shared buffers. Without ``parent_check`` only what
    holds while other backends insert and split (bt_index_check's AccessShareLock
    checks): no parent/child, left link or reachability checks. ``leaf_items``
    collects every leaf entry, for the heap cross-check."""
    def nblocks() -> int:
        return smgr.smgr_nblocks(index_rel.smgr, MAIN_FORKNUM)
    return _verify(get_cache(index_rel), nblocks(), lambda b: _read_page(index_rel, b),
                   allow_incomplete_splits, parent_check, leaf_items,
                   None if parent_check else nblocks)


def file_cache(desc, relname: str = "index") -> BTCache:
    """A BTCache for an index of a stopped cluster, from its key columns."""
    from storage.relfilenode import RelFileNode

    class _Rel:
        pass

    r = _Rel()
    r.desc, r.relname, r.rnode, r.fillfactor = desc, relname, RelFileNode(0, 0, 0), 90
    r.is_permanent = False
    return BTCache(r)


def bt_verify_file(path: str, desc, relname: str = "index", *,
                   allow_incomplete_splits: bool = True) -> list[str]:
    """The same checks on an index file of a stopped cluster (one segment), given
    the index's TupleDesc (its key columns)."""
    return [str(p) for p in bt_check_file(path, file_cache(desc, relname),
                                          allow_incomplete_splits=allow_incomplete_splits)]


def bt_check_file(path: str, c: BTCache, *, allow_incomplete_splits: bool = True,
                  leaf_items: list[LeafItem] | None = None) -> list[Corruption]:
    with open(path, "rb") as f:
        data = f.read()
    return _verify(c, len(data) // BLCKSZ,
                   lambda b: _Page(b, data[b * BLCKSZ:(b + 1) * BLCKSZ]),
                   allow_incomplete_splits, True, leaf_items, None)


def _verify(c: BTCache, nblocks: int, read, allow_incomplete_splits: bool,
            parent_check: bool, leaf_items: list[LeafItem] | None,
            refresh_nblocks: Callable[[], int] | None) -> list[Corruption]:
    problems: list[Corruption] = []

    def say(blk: int | None, off: int | None, msg: str) -> None:
        problems.append(Corruption(blk, off, None, msg))

    if nblocks == 0:
        say(None, None, "index has no metapage (0 blocks)")
        return problems
    meta = read(BTREE_METAPAGE)
    if meta.new:
        say(0, None, "metapage is all zeroes")
        return problems
    magic, version, root, level, fastroot, fastlevel = bt_getmeta(meta.data)[:6]
    if magic != BTREE_MAGIC:
        say(0, None, f"bad magic {magic:#x} (expected {BTREE_MAGIC:#x})")
        return problems
    if not BTREE_NOVAC_VERSION <= version <= BTREE_VERSION:
        say(0, None, f"unsupported btree version {version}")
    if meta.special != BT_SPECIAL or not meta.flags & BTP_META:
        say(0, None, "metapage lacks BTP_META special space")
    if root == P_NONE:
        if parent_check:
            for blk in range(1, nblocks):
                p = read(blk)
                if not p.new:
                    say(blk, None, "page present in an index without a root")
        return problems
    if not 0 < root < nblocks:
        say(0, None, f"root block {root} out of range (0..{nblocks - 1})")
        return problems
    if parent_check and (fastroot != root or fastlevel != level):
        # Without page deletion the fast root is always the true root.
        say(0, None, f"fast root {fastroot} (level {fastlevel}) differs from root {root} "
            f"(level {level})")

    seen: set[int] = set()
    # Expected children of the level being walked: child blkno -> (lower separator
    # key or None, high key bytes or None, parent blkno, parent offset).
    expected: dict[int, tuple] | None = None
    expected_order: list[int] | None = None
    leftmost = root
    for lev in range(level, -1, -1):
        chain: list[_Page] = []
        blk = leftmost
        prev_blk = P_NONE
        while blk != P_NONE:
            if not 0 < blk < nblocks and refresh_nblocks is not None:
                nblocks = refresh_nblocks()  # extended since: a concurrent split
            if blk in seen or not 0 < blk < nblocks:
                say(prev_blk, None, f"right link to block {blk} "
                    + ("loops" if blk in seen else "is out of range"))
                break
            seen.add(blk)
            p = read(blk)
            if p.new:
                say(blk, None, f"all-zero page linked into level {lev}")
                break
            if p.special != BT_SPECIAL:
                say(blk, None, f"special space at {p.special}, expected {BT_SPECIAL}")
                break
            chain.append(p)
            if p.level != lev:
                say(blk, None, f"level {p.level}, reached on level {lev}")
            if p.leaf != (lev == 0):
                say(blk, None, f"BTP_LEAF flag wrong for level {lev}")
            if p.flags & BTP_IGNORE:
                say(blk, None, "deleted or half-dead page in the tree")
            if parent_check and p.prev != prev_blk:
                say(blk, None, f"left link {p.prev}, expected {prev_blk}")
            isroot = blk == root
            if bool(p.flags & BTP_ROOT) != isroot:
                say(blk, None, "BTP_ROOT flag " + ("missing" if isroot else "on a non-root"))
            if isroot and (p.prev != P_NONE or p.next != P_NONE):
                say(blk, None, "root page has siblings")
            if p.flags & BTP_INCOMPLETE_SPLIT and not allow_incomplete_splits:
                say(blk, None, "incomplete split")
            left = chain[-2] if parent_check and len(chain) > 1 else None
            _check_items(c, p, left, say, leaf_items)
            prev_blk = blk
            blk = p.next

        # Parent/child agreement for this level.
        if parent_check and expected is not None and expected_order is not None:
            _check_children(c, chain, expected, expected_order, say)
        if lev == 0:
            break
        expected = {}
        expected_order = []
        for pi, p in enumerate(chain):
            for off in range(p.firstdata, p.maxoff + 1):
                tup = p.item(off)
                hi, lo = struct.unpack_from("<HH", tup, 0)
                child = (hi << 16) | lo
                lower = None if off == p.firstdata else tup
                if off < p.maxoff:
                    upper = p.item(off + 1)
                elif not p.rightmost:
                    upper = p.item(P_HIKEY)
                else:
                    upper = None
                expected[child] = (lower, upper, p.blkno, off, pi)
                expected_order.append(child)
        if not chain or chain[0].maxoff < chain[0].firstdata:
            say(leftmost, None, "internal page without items")
            break
        first = chain[0].item(chain[0].firstdata)
        hi, lo = struct.unpack_from("<HH", first, 0)
        leftmost = (hi << 16) | lo

    for blk in range(1, nblocks if parent_check else 1):
        if blk not in seen:
            p = read(blk)
            if not p.new:
                say(blk, None, "page is not reachable from the root")
    return problems


def _check_items(c: BTCache, p: _Page, left: _Page | None, say,
                 leaf_items: list[LeafItem] | None) -> None:
    blk = p.blkno
    n = c.nkeyatts
    hikey = None
    if not p.rightmost:
        if p.maxoff < P_HIKEY:
            say(blk, None, "non-rightmost page without a high key")
            return
        ht = p.item(P_HIKEY)
        if not _is_pivot(ht):
            say(blk, 1, "high key is not a pivot tuple")
        natts = c.tuple_natts(ht)
        if not 0 < natts <= n:
            say(blk, 1, f"high key keeps {natts} attributes")
        hikey = _full_key(c, ht)
    if not p.leaf and p.maxoff < p.firstdata:
        say(blk, None, "internal page without data items")
    prev = None
    for off in range(p.firstdata, p.maxoff + 1):
        w = _ITEMID.unpack_from(p.data, 24 + 4 * (off - 1))[0]
        o, length = w & 0x7FFF, w >> 17
        if o < bufpage.page_get_upper(p.data) or o + length > BT_SPECIAL or o != maxalign(o):
            say(blk, off, f"line pointer out of bounds ({o}, {length})")
            continue
        tup = p.item(off)
        size = ITUP.unpack_from(tup, 0)[3] & 0x1FFF
        if size != length:
            say(blk, off, f"tuple size {size} but line pointer length {length}")
            continue
        if p.leaf:
            if _is_pivot(tup):
                say(blk, off, "pivot tuple among leaf data items")
                continue
        else:
            if not _is_pivot(tup):
                say(blk, off, "non-pivot tuple on an internal page")
                continue
            natts = c.tuple_natts(tup)
            if off == p.firstdata:
                if natts != 0:
                    say(blk, off, "first item of an internal page is not "
                        "minus infinity")
                continue
            if not 0 < natts <= n:
                say(blk, off, f"pivot keeps {natts} attributes")
                continue
        key = _full_key(c, tup)
        if p.leaf and leaf_items is not None:
            leaf_items.append(LeafItem(blk, off, key[-1], key[:-1]))
        if prev is not None and not prev < key:
            say(blk, off, "item not above the previous one")
        if hikey is not None and key > hikey:
            say(blk, off, "item above the page's high key")
        if prev is None and left is not None and not left.rightmost:
            lhk = _full_key(c, left.item(P_HIKEY))
            if not key > lhk:
                say(blk, off, f"first item not above the left sibling's "
                    f"(block {left.blkno}) high key")
        prev = key


def _is_pivot(tup: bytes) -> bool:
    hi, lo, pos, info = ITUP.unpack_from(tup, 0)
    return bool(info & INDEX_ALT_TID_MASK) and not pos & 0x2000


def _first_key(c: BTCache, p: _Page) -> tuple | None:
    start = p.firstdata + (0 if p.leaf else 1)
    if start > p.maxoff:
        return None
    return _full_key(c, p.item(start))


def _check_children(c: BTCache, chain: list[_Page], expected: dict, order: list[int],
                    say) -> None:
    by_blk = {p.blkno: p for p in chain}
    actual = [p.blkno for p in chain]
    # Pages right of an incomplete split may lack downlinks: drop them from the
    # actual sequence before comparing.
    linked = []
    for i, p in enumerate(chain):
        if i > 0 and chain[i - 1].flags & BTP_INCOMPLETE_SPLIT and p.blkno not in expected:
            continue
        linked.append(p.blkno)
    if linked != order:
        missing = [b for b in actual if b not in expected]
        extra = [b for b in order if b not in by_blk]
        detail = []
        if missing:
            detail.append(f"pages without downlink {missing[:10]}")
        if extra:
            detail.append(f"downlinks to pages not on the level {extra[:10]}")
        if not detail:
            detail.append("downlinks out of sibling order")
        say(None, None, f"level {chain[0].level if chain else '?'}: parent downlinks disagree with the "
            "sibling chain: " + "; ".join(detail))
    for blkno, (lower, upper, pblk, poff, _) in expected.items():
        p = by_blk.get(blkno)
        if p is None:
            continue
        # Follow incomplete splits: the separator bounds the last page of the group.
        last = p
        while last.flags & BTP_INCOMPLETE_SPLIT and last.next in by_blk:
            last = by_blk[last.next]
        if upper is None:
            if not last.rightmost:
                say(last.blkno, None, f"last child of the rightmost parent (block {pblk}) "
                    "is not rightmost")
        elif last.rightmost:
            say(last.blkno, None, f"rightmost page, but parent block {pblk} offset {poff} "
                "has a separator after it")
        elif last.item(P_HIKEY)[4:] != bytes(upper[4:]):
            say(last.blkno, None, f"high key differs from the separator after its downlink "
                f"(block {pblk} offset {poff})")
        if lower is not None:
            fk = _first_key(c, p)
            if fk is not None and not fk > _full_key(c, lower):
                say(blkno, None, f"first key not above its downlink's separator "
                    f"(block {pblk} offset {poff})")




# -- the index against its heap (bt_index_check's heapallindexed, and the reverse) ---------------

def bt_heap_crosscheck(c: BTCache, indkey: Sequence[int], items: list[LeafItem], heap: HeapMap,
                       index_name: str, *, pointers: bool = True, all_indexed: bool = True
                       ) -> tuple[list[Corruption], list[Corruption]]:
    """Compare an index's leaf entries with its heap: (problems of the index,
    problems of the heap).

    ``pointers``: every entry's TID names a line pointer of the heap that is in
    use and not a heap-only tuple (LP_DEAD and redirects are fine: the entry
    stays until VACUUM). ``all_indexed``: every chain in ``heap.indexed`` has an
    entry at its root TID whose key is the one its values give. Only valid if no
    entry can have been removed, nor tuple added to ``heap.indexed``, between
    reading the two (see utils/adt/amcheck.py)."""
    index_side: list[Corruption] = []
    heap_side: list[Corruption] = []
    by_tid: dict[tuple[int, int], set[tuple]] = {}
    for it in items:
        by_tid.setdefault(it.htid, set()).add(it.key)
        if pointers:
            why = heap.tid_problem(*it.htid)
            if why:
                index_side.append(Corruption(it.blkno, it.offnum, None,
                                             f"index entry points to heap tuple "
                                             f"({it.htid[0]},{it.htid[1]}): {why}"))
    if not all_indexed:
        return index_side, heap_side
    for (blk, off), values in heap.indexed.items():
        want = c.norm([values[a - 1] if 0 < a <= len(values) else None for a in indkey])
        keys = by_tid.get((blk, off))
        if keys is None:
            heap_side.append(Corruption(blk, off, None, f'tuple has no entry in index '
                                                        f'"{index_name}"'))
        elif want not in keys:
            shown = ", ".join(repr(k) for k in sorted(keys, key=repr))
            heap_side.append(Corruption(blk, off, None, f'index "{index_name}" has key(s) '
                                                        f'{shown} for this tuple, but its values '
                                                        f'give {want!r}'))
    return index_side, heap_side
