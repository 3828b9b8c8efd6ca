"""Choosing where to split a B-tree page — mirrors
src/backend/access/nbtree/nbtsplitloc.c (PostgreSQL 15).

Every point between two adjacent items of the page *with the new item in its
place* is a candidate; a candidate is legal if both halves fit, counting the new
left high key (a leaf's may grow by a heap TID) and the right page's inherited
high key. Candidates are sorted by how far they are from the ideal balance of free
space: 50:50, or fillfactor% full on the left for the rightmost page of a level
(so ascending insertions leave full pages behind), or the "split after the new
item" guess for localized ascending insertions into composite indexes. Among the
best few (the split interval), the one whose left high key can be truncated the
most wins (leaf pages), or the one with the smallest new separator (internal
pages). Pages full of duplicates use the "many duplicates" and "single value"
strategies to avoid a heap TID in the new high key, or to pack the left page.

Where tusk differs: split points with an empty half are rejected outright;
tied candidates keep their page order (PostgreSQL's qsort order is unspecified).
"""

from __future__ import annotations

import struct

from access.nbtree.nbtdefs import (
    BT_SPECIAL,
    BTP_LEAF,
    BTREE_NONLEAF_FILLFACTOR,
    BTREE_SINGLEVAL_FILLFACTOR,
    OPAQUE,
    P_FIRSTKEY,
    P_HIKEY,
    P_NONE,
    SIZE_OF_BT_OPAQUE,
    maxalign,
)
from access.nbtree.nbtutils import BTCache
from storage.bufpage import BLCKSZ, SIZE_OF_PAGE_HEADER_DATA
from utils.elog import PgError

_ITEMID = struct.Struct("<I")
_LOWER_UPPER = struct.Struct("<HH")

SPLIT_DEFAULT, SPLIT_MANY_DUPLICATES, SPLIT_SINGLE_VALUE = range(3)
LEAF_SPLIT_DISTANCE = 0.050
INTERNAL_SPLIT_DISTANCE = 0.075


def _int16(x: float) -> int:
    """C's conversion of a double to int16 (truncation toward zero)."""
    return int(x)


class _Split:
    __slots__ = ("curdelta", "leftfree", "rightfree", "firstrightoff", "newitemonleft")

    def __init__(self, leftfree: int, rightfree: int, firstrightoff: int,
                 newitemonleft: bool) -> None:
        self.curdelta = 0
        self.leftfree = leftfree
        self.rightfree = rightfree
        self.firstrightoff = firstrightoff
        self.newitemonleft = newitemonleft


class _State:
    __slots__ = ("c", "page", "newitem", "newitemsz", "newitemoff", "is_leaf", "is_rightmost",
                 "leftspace", "rightspace", "olddataitemstotal", "minfirstrightsz", "splits",
                 "interval", "firstdata", "maxoff")

    def item(self, off: int) -> memoryview:
        w = _ITEMID.unpack_from(self.page, SIZE_OF_PAGE_HEADER_DATA + 4 * (off - 1))[0]
        o = w & 0x7FFF
        return memoryview(self.page)[o:o + (w >> 17)]

    def lastleft(self, s: _Split):
        if s.newitemonleft and s.firstrightoff == self.newitemoff:
            return self.newitem
        return self.item(s.firstrightoff - 1)

    def firstright(self, s: _Split):
        if not s.newitemonleft and s.firstrightoff == self.newitemoff:
            return self.newitem
        return self.item(s.firstrightoff)


def _keep_natts_fast(c: BTCache, a, b) -> int:
    """_bt_keep_natts_fast (comparing normalised keys rather than datum images)."""
    ka, kb = c.tuple_keys(a), c.tuple_keys(b)
    keep = 1
    for x, y in zip(ka, kb, strict=False):
        if x != y:
            break
        keep += 1
    return keep


def bt_findsplitloc(c: BTCache, origpage, newitemoff: int, newitemsz: int,
                    newitem) -> tuple[int, bool]:
    """_bt_findsplitloc: (firstrightoff, newitemonleft) for splitting ``origpage``
    to make room for ``newitem`` (MAXALIGNed size ``newitemsz``) at ``newitemoff``."""
    _, nxt, _, flags, _ = OPAQUE.unpack_from(origpage, BT_SPECIAL)
    lower, upper = _LOWER_UPPER.unpack_from(origpage, 12)
    maxoff = (lower - SIZE_OF_PAGE_HEADER_DATA) >> 2
    st = _State()
    st.c = c
    st.page = origpage
    st.newitem = newitem
    st.is_leaf = bool(flags & BTP_LEAF)
    st.is_rightmost = nxt == P_NONE
    st.firstdata = P_HIKEY if st.is_rightmost else P_FIRSTKEY
    st.maxoff = maxoff
    leftspace = rightspace = BLCKSZ - SIZE_OF_PAGE_HEADER_DATA - maxalign(SIZE_OF_BT_OPAQUE)
    if not st.is_rightmost:
        w = _ITEMID.unpack_from(origpage, SIZE_OF_PAGE_HEADER_DATA)[0]
        rightspace -= maxalign(w >> 17) + 4
    st.leftspace, st.rightspace = leftspace, rightspace
    st.olddataitemstotal = rightspace - max(0, upper - lower)
    st.newitemsz = newitemsz + 4
    st.newitemoff = newitemoff
    st.minfirstrightsz = 1 << 30
    st.splits = []
    ndata = maxoff - st.firstdata + 1

    def recsplitloc(firstrightoff: int, newitemonleft: bool, olddataitemstoleft: int,
                    firstrightsz: int, nleft: int) -> None:
        # Both halves keep at least one data item.
        nl = nleft + (1 if newitemonleft else 0)
        if nl == 0 or nl == ndata + 1:
            return
        if firstrightoff == st.newitemoff and not newitemonleft:
            firstrightsz = st.newitemsz
        leftfree = st.leftspace - olddataitemstoleft
        rightfree = st.rightspace - (st.olddataitemstotal - olddataitemstoleft)
        if st.is_leaf:
            leftfree -= firstrightsz + maxalign(6)
        else:
            leftfree -= firstrightsz
        if newitemonleft:
            leftfree -= st.newitemsz
        else:
            rightfree -= st.newitemsz
        if not st.is_leaf:
            rightfree += firstrightsz - (maxalign(8) + 4)
        if leftfree >= 0 and rightfree >= 0:
            if firstrightsz < st.minfirstrightsz:
                st.minfirstrightsz = firstrightsz
            st.splits.append(_Split(leftfree, rightfree, firstrightoff, newitemonleft))

    olddataitemstoleft = 0
    nleft = 0
    for offnum in range(st.firstdata, maxoff + 1):
        w = _ITEMID.unpack_from(origpage, SIZE_OF_PAGE_HEADER_DATA + 4 * (offnum - 1))[0]
        itemsz = maxalign(w >> 17) + 4
        if offnum < newitemoff:
            recsplitloc(offnum, False, olddataitemstoleft, itemsz, nleft)
        elif offnum > newitemoff:
            recsplitloc(offnum, True, olddataitemstoleft, itemsz, nleft)
        else:
            recsplitloc(offnum, False, olddataitemstoleft, itemsz, nleft)
            recsplitloc(offnum, True, olddataitemstoleft, itemsz, nleft)
        olddataitemstoleft += itemsz
        nleft += 1
    if newitemoff > maxoff:
        recsplitloc(newitemoff, False, st.olddataitemstotal, 0, nleft)

    if not st.splits:
        raise PgError("XX000", "could not find a feasible split point for index "
                               f'"{c.relname}"')

    leaffillfactor = c.fillfactor
    if not st.is_leaf:
        usemult = st.is_rightmost
        fillfactormult = BTREE_NONLEAF_FILLFACTOR / 100.0
    elif st.is_rightmost:
        usemult = True
        fillfactormult = leaffillfactor / 100.0
    else:
        after, usemult = _afternewitemoff(st, maxoff, leaffillfactor)
        if after:
            if usemult:
                fillfactormult = leaffillfactor / 100.0
            else:
                for s in st.splits:
                    if s.newitemonleft and newitemoff == s.firstrightoff:
                        return newitemoff, True
                fillfactormult = 0.50
        else:
            usemult = False
            fillfactormult = 0.50

    leftpage = st.splits[0]
    rightpage = st.splits[-1]
    _deltasortsplits(st, fillfactormult, usemult)
    st.interval = _defaultinterval(st)
    perfectpenalty, strategy = _strategy(st, leftpage, rightpage)
    if strategy == SPLIT_MANY_DUPLICATES:
        st.interval = len(st.splits)
    elif strategy == SPLIT_SINGLE_VALUE:
        _deltasortsplits(st, BTREE_SINGLEVAL_FILLFACTOR / 100.0, True)
        st.interval = 1
    return _bestsplitloc(st, perfectpenalty, strategy)


def _deltasortsplits(st: _State, fillfactormult: float, usemult: bool) -> None:
    for s in st.splits:
        if usemult:
            delta = _int16(fillfactormult * s.leftfree - (1.0 - fillfactormult) * s.rightfree)
        else:
            delta = s.leftfree - s.rightfree
        s.curdelta = -delta if delta < 0 else delta
    st.splits.sort(key=lambda s: s.curdelta)


def _defaultinterval(st: _State) -> int:
    dist = LEAF_SPLIT_DISTANCE if st.is_leaf else INTERNAL_SPLIT_DISTANCE
    tolerance = _int16(st.olddataitemstotal * dist)
    opt = st.splits[0]
    lowleft, lowright = opt.leftfree - tolerance, opt.rightfree - tolerance
    highleft, highright = opt.leftfree + tolerance, opt.rightfree + tolerance
    for i in range(1, len(st.splits)):
        s = st.splits[i]
        if (s.leftfree < lowleft or s.rightfree < lowright or s.leftfree > highleft
                or s.rightfree > highright):
            return i
    return len(st.splits)


def _interval_edges(st: _State) -> tuple[_Split, _Split]:
    highsplit = min(st.interval, len(st.splits))
    opt = st.splits[0]
    left = right = None
    for i in range(highsplit - 1, -1, -1):
        d = st.splits[i]
        if d.firstrightoff < opt.firstrightoff:
            left = left or d
        elif d.firstrightoff > opt.firstrightoff:
            right = right or d
        elif not d.newitemonleft and opt.newitemonleft:
            left = left or d
        elif d.newitemonleft and not opt.newitemonleft:
            right = right or d
        else:
            left = left or d
            right = right or d
        if left is not None and right is not None:
            return left, right
    return left or opt, right or opt


def _strategy(st: _State, leftpage: _Split, rightpage: _Split) -> tuple[int, int]:
    c = st.c
    nkey = c.nkeyatts
    if not st.is_leaf:
        return st.minfirstrightsz, SPLIT_DEFAULT
    li, ri = _interval_edges(st)
    perfect = _keep_natts_fast(c, st.lastleft(li), st.firstright(ri))
    if perfect <= nkey:
        return perfect, SPLIT_DEFAULT
    perfect = _keep_natts_fast(c, st.lastleft(leftpage), st.firstright(rightpage))
    if perfect <= nkey:
        return nkey, SPLIT_MANY_DUPLICATES
    if st.is_rightmost:
        return perfect, SPLIT_SINGLE_VALUE
    perfect = _keep_natts_fast(c, st.item(P_HIKEY), st.newitem)
    if perfect <= nkey:
        return perfect, SPLIT_SINGLE_VALUE
    return perfect, SPLIT_DEFAULT


def _split_penalty(st: _State, s: _Split) -> int:
    if not st.is_leaf:
        if not s.newitemonleft and s.firstrightoff == st.newitemoff:
            return st.newitemsz
        w = _ITEMID.unpack_from(st.page, SIZE_OF_PAGE_HEADER_DATA + 4 * (s.firstrightoff - 1))[0]
        return maxalign(w >> 17) + 4
    return _keep_natts_fast(st.c, st.lastleft(s), st.firstright(s))


def _bestsplitloc(st: _State, perfectpenalty: int, strategy: int) -> tuple[int, bool]:
    highsplit = min(st.interval, len(st.splits))
    best = 1 << 30
    lowsplit = 0
    for i in range(highsplit):
        penalty = _split_penalty(st, st.splits[i])
        if penalty < best:
            best = penalty
            lowsplit = i
        if penalty <= perfectpenalty:
            break
    final = st.splits[lowsplit]
    if (strategy == SPLIT_MANY_DUPLICATES and not st.is_rightmost and not final.newitemonleft
            and st.newitemoff <= final.firstrightoff < st.newitemoff + 9):
        final = st.splits[0]
    return final.firstrightoff, final.newitemonleft


def _adjacenthtid(low: tuple[int, int], high: tuple[int, int]) -> bool:
    if low[0] == high[0]:
        return True
    return low[0] + 1 == high[0] and high[1] == 1


def _afternewitemoff(st: _State, maxoff: int, leaffillfactor: int) -> tuple[bool, bool]:
    """_bt_afternewitemoff: (apply the split-after-new-item optimization, usemult)."""
    c = st.c
    nkey = c.nkeyatts
    if nkey == 1 or st.newitemoff == P_FIRSTKEY:
        return False, False
    if st.newitemsz != st.minfirstrightsz:
        return False, False
    if st.newitemsz * (maxoff - 1) != st.olddataitemstotal:
        return False, False
    if st.newitemsz > maxalign(8 + 16) + 4:
        return False, False
    if st.newitemoff > maxoff:
        keep = _keep_natts_fast(c, st.item(maxoff), st.newitem)
        if 1 < keep <= nkey:
            return True, True
        return False, False
    tup = st.item(st.newitemoff - 1)
    hi, lo, pos = struct.unpack_from("<HHH", tup, 0)
    nhi, nlo, npos = struct.unpack_from("<HHH", st.newitem, 0)
    if not _adjacenthtid(((hi << 16) | lo, pos), ((nhi << 16) | nlo, npos)):
        return False, False
    keep = _keep_natts_fast(c, tup, st.newitem)
    if 1 < keep <= nkey:
        interp = st.newitemoff / (maxoff + 1.0)
        return True, interp > leaffillfactor / 100.0
    return False, False
