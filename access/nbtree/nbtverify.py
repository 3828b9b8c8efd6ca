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

The checks read one page at a time under a share lock; run it on a quiescent
index (as amcheck's parent check requires a ShareLock) for exact results.
"""

from __future__ import annotations

import struct

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
    nblocks = smgr.smgr_nblocks(index_rel.smgr, MAIN_FORKNUM)
    return _verify(get_cache(index_rel), nblocks, lambda b: _read_page(index_rel, b),
                   allow_incomplete_splits)


def bt_verify_file(path: str, desc, relname: str = "index", *,
                   allow_incomplete_splits: bool = True) -> list[str]:
    """The same checks on an index file of a stopped cluster (one segment), given
    the index's TupleDesc (its key columns)."""
    from access.nbtree.nbtutils import BTCache
    from storage.relfilenode import RelFileNode

    class _Rel:
        pass

    r = _Rel()
    r.desc, r.relname, r.rnode, r.fillfactor = desc, relname, RelFileNode(0, 0, 0), 90
    r.is_permanent = False
    c = BTCache(r)
    with open(path, "rb") as f:
        data = f.read()
    return _verify(c, len(data) // BLCKSZ,
                   lambda b: _Page(b, data[b * BLCKSZ:(b + 1) * BLCKSZ]),
                   allow_incomplete_splits)


def _verify(c: BTCache, nblocks: int, read, allow_incomplete_splits: bool) -> list[str]:
    problems: list[str] = []
    say = problems.append
    if nblocks == 0:
        return ["index has no metapage (0 blocks)"]
    meta = read(BTREE_METAPAGE)
    if meta.new:
        return ["block 0: metapage is all zeroes"]
    magic, version, root, level, fastroot, fastlevel = bt_getmeta(meta.data)[:6]
    if magic != BTREE_MAGIC:
        return [f"block 0: bad magic {magic:#x} (expected {BTREE_MAGIC:#x})"]
    if not BTREE_NOVAC_VERSION <= version <= BTREE_VERSION:
        say(f"block 0: unsupported btree version {version}")
    if meta.special != BT_SPECIAL or not meta.flags & BTP_META:
        say("block 0: metapage lacks BTP_META special space")
    if root == P_NONE:
        for blk in range(1, nblocks):
            p = read(blk)
            if not p.new:
                say(f"block {blk}: page present in an index without a root")
        return problems
    if not 0 < root < nblocks:
        return problems + [f"block 0: root block {root} out of range (0..{nblocks - 1})"]
    if fastroot != root or fastlevel != level:
        # Without page deletion the fast root is always the true root.
        say(f"block 0: fast root {fastroot} (level {fastlevel}) differs from root {root} "
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
            if blk in seen or not 0 < blk < nblocks:
                say(f"block {prev_blk}: right link to block {blk} "
                    + ("loops" if blk in seen else "is out of range"))
                break
            seen.add(blk)
            p = read(blk)
            if p.new:
                say(f"block {blk}: all-zero page linked into level {lev}")
                break
            if p.special != BT_SPECIAL:
                say(f"block {blk}: special space at {p.special}, expected {BT_SPECIAL}")
                break
            chain.append(p)
            if p.level != lev:
                say(f"block {blk}: level {p.level}, reached on level {lev}")
            if p.leaf != (lev == 0):
                say(f"block {blk}: BTP_LEAF flag wrong for level {lev}")
            if p.flags & BTP_IGNORE:
                say(f"block {blk}: deleted or half-dead page in the tree")
            if p.prev != prev_blk:
                say(f"block {blk}: left link {p.prev}, expected {prev_blk}")
            isroot = blk == root
            if bool(p.flags & BTP_ROOT) != isroot:
                say(f"block {blk}: BTP_ROOT flag " + ("missing" if isroot else "on a non-root"))
            if isroot and (p.prev != P_NONE or p.next != P_NONE):
                say(f"block {blk}: root page has siblings")
            if p.flags & BTP_INCOMPLETE_SPLIT and not allow_incomplete_splits:
                say(f"block {blk}: incomplete split")
            _check_items(c, p, chain[-2] if len(chain) > 1 else None, say)
            prev_blk = blk
            blk = p.next

        # Parent/child agreement for this level.
        if expected is not None and expected_order is not None:
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
            say(f"block {leftmost}: internal page without items")
            break
        first = chain[0].item(chain[0].firstdata)
        hi, lo = struct.unpack_from("<HH", first, 0)
        leftmost = (hi << 16) | lo

    for blk in range(1, nblocks):
        if blk not in seen:
            p = read(blk)
            if not p.new:
                say(f"block {blk}: page is not reachable from the root")
    return problems


def _check_items(c: BTCache, p: _Page, left: _Page | None, say) -> None:
    blk = p.blkno
    n = c.nkeyatts
    hikey = None
    if not p.rightmost:
        if p.maxoff < P_HIKEY:
            say(f"block {blk}: non-rightmost page without a high key")
            return
        ht = p.item(P_HIKEY)
        if not _is_pivot(ht):
            say(f"block {blk} offset 1: high key is not a pivot tuple")
        natts = c.tuple_natts(ht)
        if not 0 < natts <= n:
            say(f"block {blk} offset 1: high key keeps {natts} attributes")
        hikey = _full_key(c, ht)
    if not p.leaf and p.maxoff < p.firstdata:
        say(f"block {blk}: internal page without data items")
    prev = None
    for off in range(p.firstdata, p.maxoff + 1):
        w = _ITEMID.unpack_from(p.data, 24 + 4 * (off - 1))[0]
        o, length = w & 0x7FFF, w >> 17
        if o < bufpage.page_get_upper(p.data) or o + length > BT_SPECIAL or o != maxalign(o):
            say(f"block {blk} offset {off}: line pointer out of bounds ({o}, {length})")
            continue
        tup = p.item(off)
        size = ITUP.unpack_from(tup, 0)[3] & 0x1FFF
        if size != length:
            say(f"block {blk} offset {off}: tuple size {size} but line pointer length {length}")
            continue
        if p.leaf:
            if _is_pivot(tup):
                say(f"block {blk} offset {off}: pivot tuple among leaf data items")
                continue
        else:
            if not _is_pivot(tup):
                say(f"block {blk} offset {off}: non-pivot tuple on an internal page")
                continue
            natts = c.tuple_natts(tup)
            if off == p.firstdata:
                if natts != 0:
                    say(f"block {blk} offset {off}: first item of an internal page is not "
                        "minus infinity")
                continue
            if not 0 < natts <= n:
                say(f"block {blk} offset {off}: pivot keeps {natts} attributes")
                continue
        key = _full_key(c, tup)
        if prev is not None and not prev < key:
            say(f"block {blk} offset {off}: item not above the previous one")
        if hikey is not None and key > hikey:
            say(f"block {blk} offset {off}: item above the page's high key")
        if prev is None and left is not None and not left.rightmost:
            lhk = _full_key(c, left.item(P_HIKEY))
            if not key > lhk:
                say(f"block {blk} offset {off}: first item not above the left sibling's "
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
        say(f"level {chain[0].level if chain else '?'}: parent downlinks disagree with the "
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
                say(f"block {last.blkno}: last child of the rightmost parent (block {pblk}) "
                    "is not rightmost")
        elif last.rightmost:
            say(f"block {last.blkno}: rightmost page, but parent block {pblk} offset {poff} "
                "has a separator after it")
        elif last.item(P_HIKEY)[4:] != bytes(upper[4:]):
            say(f"block {last.blkno}: high key differs from the separator after its downlink "
                f"(block {pblk} offset {poff})")
        if lower is not None:
            fk = _first_key(c, p)
            if fk is not None and not fk > _full_key(c, lower):
                say(f"block {blkno}: first key not above its downlink's separator "
                    f"(block {pblk} offset {poff})")


