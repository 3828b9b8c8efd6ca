"""B-tree searches — mirrors src/backend/access/nbtree/nbtsearch.c (PostgreSQL 15):
_bt_compare, _bt_binsrch, _bt_moveright, _bt_search (descent with a stack of
parent positions), _bt_get_endpoint, and index scans (_bt_first, _bt_readpage,
_bt_steppage, _bt_walk_left, _bt_endpoint).

Concurrency (Lehman & Yao, nbtree/README). A descent holds one page lock at a
time: it reads a downlink, releases the parent, locks the child, and if the
child split meanwhile (its high key is now below the search key) moves right
along the sibling links. An index scan reads a whole leaf page under its share
lock, copies the heap TIDs of the matching items and the page's right link
(PostgreSQL's BTScanPos items), and releases lock and pin before returning
anything: a split of that page afterwards only moves items already returned to
a new right sibling, which the saved right link skips, and new entries there
belong to transactions our snapshot cannot see. A backward scan steps left by
re-reading the left link and walking right until it finds the page whose right
link is where it came from (_bt_walk_left), since that left sibling may itself
have split.

Where tusk differs: scans keep no pin between calls (no kill_prior_tuple, no
mark/restore); with MVCC snapshots PostgreSQL drops the pin too.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from typing import Any

from access import heapam
from access.nbtree.nbtdefs import (
    BT_OFFSET_MASK,
    BT_PIVOT_HEAP_TID_ATTR,
    BT_READ,
    BT_SPECIAL,
    BT_WRITE,
    BTP_IGNORE,
    BTP_INCOMPLETE_SPLIT,
    BTP_LEAF,
    INDEX_ALT_TID_MASK,
    INDEX_NULL_MASK,
    INDEX_SIZE_MASK,
    ITUP,
    OPAQUE,
    P_FIRSTKEY,
    P_HIKEY,
    P_NONE,
    TID,
)
from access.nbtree.nbtpage import (
    InvalidBuffer,
    bt_getbuf,
    bt_getroot,
    bt_lockbuf,
    bt_relandgetbuf,
    bt_relbuf,
    bt_unlockbuf,
    index_corrupted,
)
from access.nbtree.nbtutils import (
    ABSENT,
    HIGH,
    LOW,
    MID,
    BTCache,
    BTScanInsert,
    ScanKeys,
    bt_checkkeys,
    get_cache,
)
from storage.bufmgr import buffer_get_block_number, buffer_get_page
from utils.pgstat_relation import pgstat_init_relation

_ITEMID = struct.Struct("<I")
_LOWER = struct.Struct("<H")


class BTStack:
    """BTStackData: a parent page and the offset of the downlink we followed."""

    __slots__ = ("blkno", "offset", "parent")

    def __init__(self, blkno: int, offset: int, parent: BTStack | None) -> None:
        self.blkno = blkno
        self.offset = offset
        self.parent = parent


def page_max_offset(page) -> int:
    """PageGetMaxOffsetNumber."""
    lower = _LOWER.unpack_from(page, 12)[0]
    return (lower - 24) >> 2 if lower > 24 else 0


def bt_compare(c: BTCache, key: BTScanInsert, page, offnum: int) -> int:
    """_bt_compare: <0, 0, >0 as the scan key is less than, equal to or greater
    than the tuple at ``offnum``. The first data item of an internal page is minus
    infinity; truncated attributes (and a truncated heap TID) are minus infinity."""
    _, nxt, _, flags, _ = OPAQUE.unpack_from(page, BT_SPECIAL)
    if not flags & BTP_LEAF and offnum == (P_HIKEY if nxt == P_NONE else P_FIRSTKEY):
        return 1
    return _compare_item(c, key, page, offnum)


def _compare_item(c: BTCache, key: BTScanInsert, page, offnum: int) -> int:
    off = _ITEMID.unpack_from(page, 20 + 4 * offnum)[0] & 0x7FFF
    single = c.single
    if single is not None and key.keysz == 1:
        # One fixed-width key column: header and key in one unpack.
        hi, lo, pos, info, iv = single.unpack_from(page, off)
        if not info & INDEX_NULL_MASK and (not info & INDEX_ALT_TID_MASK
                                           or pos & BT_OFFSET_MASK == 1):
            kv = key.vals[0]
            if kv != iv:
                return -1 if kv < iv else 1
            if info & INDEX_ALT_TID_MASK:
                if pos & BT_PIVOT_HEAP_TID_ATTR:
                    hi, lo, pos = TID.unpack_from(page, off + (info & INDEX_SIZE_MASK) - 6)
                    htid1: Any = ((hi << 16) | lo, pos)
                else:
                    htid1 = None
            else:
                htid1 = ((hi << 16) | lo, pos)
            scantid = key.scantid
            if scantid is None:
                return 1 if (htid1 is None and not key.pivotsearch) else 0
            if htid1 is None:
                return 1
            if scantid == htid1:
                return 0
            return -1 if scantid < htid1 else 1
    hi, lo, pos, info = ITUP.unpack_from(page, off)
    if info & INDEX_ALT_TID_MASK:
        natts = pos & BT_OFFSET_MASK
        if pos & BT_PIVOT_HEAP_TID_ATTR:
            hi, lo, pos = TID.unpack_from(page, off + (info & INDEX_SIZE_MASK) - 6)
            htid: Any = ((hi << 16) | lo, pos)
        else:
            htid = None
    else:
        natts = c.nkeyatts
        htid = ((hi << 16) | lo, pos)
    keysz = key.keysz
    ncmp = natts if natts < keysz else keysz
    if ncmp:
        ivals = c.getkeys(page, off, info, ncmp)
        kvals = key.vals if ncmp == keysz else key.vals[:ncmp]
        if kvals != ivals:
            return -1 if kvals < ivals else 1
    if keysz > natts:
        return 1
    scantid = key.scantid
    if scantid is None:
        if not key.pivotsearch and keysz == natts and htid is None:
            return 1
        return 0
    if htid is None:
        return 1
    if scantid == htid:
        return 0
    return -1 if scantid < htid else 1


def bt_binsrch(c: BTCache, key: BTScanInsert, page) -> int:
    """_bt_binsrch: on a leaf the first item >= key (> key with nextkey), possibly
    one past the last; on an internal page the last item < key (<= key).

    Items whose keys are all present, fixed-width and not NULL (the usual case)
    are compared inline, without the generic _compare_item."""
    _, nxt, _, flags, _ = OPAQUE.unpack_from(page, BT_SPECIAL)
    low = P_HIKEY if nxt == P_NONE else P_FIRSTKEY
    high = (_LOWER.unpack_from(page, 12)[0] - 24) >> 2
    isleaf = flags & BTP_LEAF
    if high < low:
        return low
    high += 1
    cmpval = 0 if key.nextkey else 1
    firstdata = low
    prefix = c.prefix
    nkey = c.nkeyatts
    if prefix is None or key.keysz != nkey:
        while high > low:
            mid = (low + high) >> 1
            if not isleaf and mid == firstdata:
                result = 1
            else:
                result = _compare_item(c, key, page, mid)
            if result >= cmpval:
                low = mid + 1
            else:
                high = mid
        return low if isleaf else low - 1
    kvals = key.vals
    scantid = key.scantid
    unpack_lp = _ITEMID.unpack_from
    single = c.single
    if single is not None:
        # One fixed-width key column: header and key in one unpack.
        kv = kvals[0]
        unpack_one = single.unpack_from
        pivotsearch = key.pivotsearch
        while high > low:
            mid = (low + high) >> 1
            if not isleaf and mid == firstdata:
                low = mid + 1
                continue
            off = unpack_lp(page, 20 + 4 * mid)[0] & 0x7FFF
            hi, lo, pos, info, iv = unpack_one(page, off)
            if info & INDEX_NULL_MASK:
                result = _compare_item(c, key, page, mid)
            elif kv != iv:
                result = -1 if kv < iv else 1
            else:
                if info & INDEX_ALT_TID_MASK:
                    if pos & BT_PIVOT_HEAP_TID_ATTR:
                        hi, lo, pos = TID.unpack_from(page, off + (info & INDEX_SIZE_MASK) - 6)
                        htid: Any = ((hi << 16) | lo, pos)
                    else:
                        htid = None
                else:
                    htid = ((hi << 16) | lo, pos)
                if scantid is None:
                    result = 1 if (htid is None and not pivotsearch) else 0
                elif htid is None:
                    result = 1
                elif scantid == htid:
                    result = 0
                else:
                    result = -1 if scantid < htid else 1
            if result >= cmpval:
                low = mid + 1
            else:
                high = mid
        return low if isleaf else low - 1
    unpack_tup = ITUP.unpack_from
    unpack_key = prefix.unpack_from
    while high > low:
        mid = (low + high) >> 1
        if not isleaf and mid == firstdata:
            low = mid + 1
            continue
        off = unpack_lp(page, 20 + 4 * mid)[0] & 0x7FFF
        hi, lo, pos, info = unpack_tup(page, off)
        if info & INDEX_NULL_MASK:
            result = _compare_item(c, key, page, mid)
        else:
            if info & INDEX_ALT_TID_MASK:
                if pos & BT_OFFSET_MASK != nkey:
                    result = _compare_item(c, key, page, mid)
                    if result >= cmpval:
                        low = mid + 1
                    else:
                        high = mid
                    continue
                if pos & BT_PIVOT_HEAP_TID_ATTR:
                    hi, lo, pos = TID.unpack_from(page, off + (info & INDEX_SIZE_MASK) - 6)
                    htid: Any = ((hi << 16) | lo, pos)
                else:
                    htid = None
            else:
                htid = ((hi << 16) | lo, pos)
            ivals = unpack_key(page, off + 8)
            if kvals != ivals:
                result = -1 if kvals < ivals else 1
            elif scantid is None:
                result = 1 if (htid is None and not key.pivotsearch) else 0
            elif htid is None:
                result = 1
            elif scantid == htid:
                result = 0
            else:
                result = -1 if scantid < htid else 1
        if result >= cmpval:
            low = mid + 1
        else:
            high = mid
    return low if isleaf else low - 1


_LSN = struct.Struct("<II")
_ICACHE_MAX = 4096


def _internal_binsrch(c: BTCache, key: BTScanInsert, page, blkno: int) -> int:
    """bt_binsrch of an internal page through the process's decoded copy of it
    (c.icache), valid while the page LSN is unchanged: every change to a page of
    a WAL-logged index sets a new LSN under the exclusive lock, so an equal LSN
    means equal contents. A copy is made on the second visit that finds the same
    LSN (pages changing on every visit are not worth decoding). Returns 0 when
    the copy cannot be used."""
    hi, lo = _LSN.unpack_from(page, 0)
    lsn = (hi << 32) | lo
    ent = c.icache.get(blkno)
    if ent is None or ent[0] != lsn:
        if not lsn or not c.is_permanent:
            return 0
        if c.ipending.get(blkno) != lsn:
            if len(c.ipending) > _ICACHE_MAX:
                c.ipending.clear()
            c.ipending[blkno] = lsn
            return 0
        _, nxt, _, _, _ = OPAQUE.unpack_from(page, BT_SPECIAL)
        firstdata = P_HIKEY if nxt == P_NONE else P_FIRSTKEY
        maxoff = page_max_offset(page)
        full_key = c.full_key
        keys = [full_key(page, _ITEMID.unpack_from(page, 20 + 4 * off)[0] & 0x7FFF)
                for off in range(firstdata, maxoff + 1)]
        if len(c.icache) > _ICACHE_MAX:
            c.icache.clear()
        ent = c.icache[blkno] = (lsn, keys, firstdata)
    scantid = key.scantid
    if scantid is None:
        scantid = HIGH if key.nextkey else (LOW if key.pivotsearch else MID)
    # The first data item is minus infinity: never descend left of it.
    i = bisect_left(ent[1], (*key.vals, scantid), 1)
    return ent[2] + i - 1


def bt_moveright(rel, c: BTCache, key: BTScanInsert, buf: int, forupdate: bool,
                 stack: BTStack | None, access: int) -> int:
    """_bt_moveright: follow right links while the key is beyond the high key
    (>= it with nextkey); inserters finish incomplete splits on the way."""
    cmpval = 0 if key.nextkey else 1
    while True:
        page = buffer_get_page(buf)
        _, nxt, _, flags, _ = OPAQUE.unpack_from(page, BT_SPECIAL)
        if nxt == P_NONE:
            break
        if forupdate and flags & BTP_INCOMPLETE_SPLIT:
            from access.nbtree.nbtinsert import bt_finish_split

            blkno = buffer_get_block_number(buf)
            if access == BT_READ:
                bt_unlockbuf(buf)
                bt_lockbuf(buf, BT_WRITE)
            flags = OPAQUE.unpack_from(page, BT_SPECIAL)[3]
            if flags & BTP_INCOMPLETE_SPLIT:
                bt_finish_split(rel, c, buf, stack)
            else:
                bt_relbuf(buf)
            buf = bt_getbuf(rel, blkno, access)
            continue
        if flags & BTP_IGNORE or _compare_item(c, key, page, P_HIKEY) >= cmpval:
            buf = bt_relandgetbuf(rel, buf, nxt, access)
            continue
        break
    return buf


def bt_search(rel, c: BTCache, key: BTScanInsert, access: int) -> tuple[BTStack | None, int]:
    """_bt_search: descend to the leaf where ``key`` belongs; returns (stack, buf)
    with the leaf locked in ``access`` mode (buf is InvalidBuffer for an empty
    index searched with BT_READ)."""
    buf = bt_getroot(rel, c, access)
    if not buf:
        return None, InvalidBuffer
    stack: BTStack | None = None
    page_access = BT_READ
    while True:
        buf = bt_moveright(rel, c, key, buf, access == BT_WRITE, stack, page_access)
        page = buffer_get_page(buf)
        _, _, level, flags, _ = OPAQUE.unpack_from(page, BT_SPECIAL)
        if flags & BTP_LEAF:
            break
        blkno = buffer_get_block_number(buf)
        offnum = _internal_binsrch(c, key, page, blkno) or bt_binsrch(c, key, page)
        off = _ITEMID.unpack_from(page, 20 + 4 * offnum)[0] & 0x7FFF
        hi, lo = struct.unpack_from("<HH", page, off)
        child = (hi << 16) | lo
        if access == BT_WRITE:
            stack = BTStack(blkno, offnum, stack)
        if level == 1 and access == BT_WRITE:
            page_access = BT_WRITE
        buf = bt_relandgetbuf(rel, buf, child, page_access)
    if access == BT_WRITE and page_access == BT_READ:
        # The root is the only leaf: trade the read lock for a write lock.
        bt_unlockbuf(buf)
        bt_lockbuf(buf, BT_WRITE)
        buf = bt_moveright(rel, c, key, buf, True, stack, BT_WRITE)
    return stack, buf


def bt_get_endpoint(rel, c: BTCache, level: int, rightmost: bool) -> int:
    """_bt_get_endpoint: the leftmost (or rightmost) page of ``level``, read-locked,
    or InvalidBuffer if the index is empty."""
    buf = bt_getroot(rel, c, BT_READ)
    if not buf:
        return InvalidBuffer
    while True:
        page = buffer_get_page(buf)
        _, nxt, plevel, flags, _ = OPAQUE.unpack_from(page, BT_SPECIAL)
        while flags & BTP_IGNORE or (rightmost and nxt != P_NONE):
            if nxt == P_NONE:
                bt_relbuf(buf)
                raise index_corrupted(f'fell off the end of index "{c.relname}"')
            buf = bt_relandgetbuf(rel, buf, nxt, BT_READ)
            page = buffer_get_page(buf)
            _, nxt, plevel, flags, _ = OPAQUE.unpack_from(page, BT_SPECIAL)
        if plevel == level:
            return buf
        if plevel < level:
            bt_relbuf(buf)
            raise index_corrupted(f'btree level {level} not found in index "{c.relname}"')
        if rightmost:
            offnum = page_max_offset(page)
        else:
            offnum = P_HIKEY if nxt == P_NONE else P_FIRSTKEY
        off = _ITEMID.unpack_from(page, 20 + 4 * offnum)[0] & 0x7FFF
        hi, lo = struct.unpack_from("<HH", page, off)
        buf = bt_relandgetbuf(rel, buf, (hi << 16) | lo, BT_READ)


# -- index scans ---------------------------------------------------------------------------------

class BTScan:
    """An index scan (BTScanOpaqueData): ``bt_getnext()`` returns the next heap
    TID (block, offset) in index order, or None at the end; iterating yields the
    same TIDs. Nothing is locked or pinned between calls."""

    __slots__ = ("rel", "c", "keys", "forward", "items", "pos", "started", "done",
                 "curpage", "nextpage", "more_right", "more_left", "stats")

    def __init__(self, rel, scankeys, backward: bool = False) -> None:
        self.rel = rel
        self.stats = rel.pgstat_info or pgstat_init_relation(rel)
        self.c = get_cache(rel)
        self.forward = not backward
        self.rescan(scankeys)

    def rescan(self, scankeys) -> None:
        """btrescan: start over with new scan keys."""
        self.keys = ScanKeys(self.c, scankeys)
        self.items: list[tuple[int, int]] = []
        self.pos = 0
        self.started = False
        self.done = not self.keys.qual_ok
        self.curpage = P_NONE
        self.nextpage = P_NONE
        self.more_right = self.more_left = True

    def __iter__(self):
        """The TIDs; what the consumer found in the heap through each one
        (heapam.index_fetches, not yet credited to a scan nested inside) counts
        as this index's idx_tup_fetch, as index_fetch_heap's pgstat_count_heap_fetch."""
        stats = self.stats
        fetches = heapam.index_fetches
        while True:
            tid = self.bt_getnext()
            if tid is None:
                return
            before = fetches[0] - fetches[1]
            try:
                yield tid
            finally:
                n = fetches[0] - fetches[1] - before
                if n:
                    stats.tuples_fetched += n
                    fetches[1] += n

    def bt_getnext(self) -> tuple[int, int] | None:
        """btgettuple: the next matching heap TID, or None."""
        pos = self.pos
        if pos < len(self.items):
            self.pos = pos + 1
            self.stats.tuples_returned += 1  # index_getnext_tid: idx_tup_read
            return self.items[pos]
        if self.done:
            return None
        if not self.started:
            self.started = True
            self.stats.numscans += 1  # _bt_first's pgstat_count_index_scan
            found = self._first()
        else:
            found = self._steppage()
        if not found:
            self.done = True
            self.items = []
            return None
        self.pos = 1
        self.stats.tuples_returned += 1
        return self.items[0]

    def end(self) -> None:
        """btendscan: nothing is held between calls."""
        self.items = []
        self.done = True

    # -- _bt_first ---------------------------------------------------------------------------

    def _first(self) -> bool:
        c, sk, forward = self.c, self.keys, self.forward
        vals: list[Any] = []
        strat = None
        if sk.single_eq and c.nkeyatts == 1:
            vals.append(sk.eq[0])
            strat = "="
        for i in range(len(vals), c.nkeyatts):
            eq = sk.eq[i]
            if eq is not ABSENT:
                vals.append(eq)
                strat = "="
                continue
            bound = sk.lower[i] if forward else sk.upper[i]
            if bound is not None:
                vals.append(bound[0])
                strat = (">=" if bound[1] else ">") if forward else ("<=" if bound[1] else "<")
            break
        if not vals:
            return self._endpoint()
        if forward:
            nextkey, goback = strat == ">", False
        else:
            nextkey, goback = strat != "<", True
        key = BTScanInsert(tuple(vals), None, nextkey=nextkey)
        _, buf = bt_search(self.rel, c, key, BT_READ)
        if not buf:
            return False
        page = buffer_get_page(buf)
        offnum = bt_binsrch(c, key, page)
        if goback:
            offnum -= 1
        return self._read_and_step(buf, offnum)

    def _endpoint(self) -> bool:
        """_bt_endpoint: start at the first (or last) leaf."""
        buf = bt_get_endpoint(self.rel, self.c, 0, not self.forward)
        if not buf:
            return False
        page = buffer_get_page(buf)
        if self.forward:
            _, nxt, _, _, _ = OPAQUE.unpack_from(page, BT_SPECIAL)
            offnum = P_HIKEY if nxt == P_NONE else P_FIRSTKEY
        else:
            offnum = page_max_offset(page)
        return self._read_and_step(buf, offnum)

    def _read_and_step(self, buf: int, offnum: int) -> bool:
        found = self._readpage(buf, offnum)
        bt_relbuf(buf)
        if found:
            return True
        return self._steppage()

    # -- _bt_readpage ------------------------------------------------------------------------

    def _readpage(self, buf: int, offnum: int) -> bool:
        """Collect the matching heap TIDs of the locked leaf page, starting at
        ``offnum``, in scan order; remember where to go next."""
        c = self.c
        keys = self.keys.keys
        page = buffer_get_page(buf)
        prev, nxt, _, _, _ = OPAQUE.unpack_from(page, BT_SPECIAL)
        self.curpage = buffer_get_block_number(buf)
        self.nextpage = nxt
        minoff = P_HIKEY if nxt == P_NONE else P_FIRSTKEY
        maxoff = page_max_offset(page)
        getkeys = c.getkeys
        nkey = c.nkeyatts
        items: list[tuple[int, int]] = []
        forward = self.forward
        cont = True
        unpack_lp = _ITEMID.unpack_from
        unpack_tup = ITUP.unpack_from
        if forward:
            self.more_left = True
            off = max(offnum, minoff)
            prefix = c.prefix
            if self.keys.single_eq and prefix is not None and nkey == 1:
                # A lookup by the whole (single-column) key: items match until one
                # does not, which ends the scan (the key is required).
                v = keys[0][2]
                unpack_key = prefix.unpack_from
                while off <= maxoff:
                    lpoff = unpack_lp(page, 20 + 4 * off)[0] & 0x7FFF
                    hi, lo, pos, info = unpack_tup(page, lpoff)
                    if info & INDEX_NULL_MASK or unpack_key(page, lpoff + 8)[0] != v:
                        cont = False
                        break
                    items.append(((hi << 16) | lo, pos))
                    off += 1
                off = maxoff + 1
            while off <= maxoff:
                lpoff = unpack_lp(page, 20 + 4 * off)[0] & 0x7FFF
                hi, lo, pos, info = unpack_tup(page, lpoff)
                vals = getkeys(page, lpoff, info, nkey)
                ok, cont = bt_checkkeys(keys, vals, nkey, True)
                if ok:
                    items.append(((hi << 16) | lo, pos))
                if not cont:
                    break
                off += 1
            if cont and nxt != P_NONE:
                # The high key may already show that nothing to the right matches.
                lpoff = unpack_lp(page, 24)[0] & 0x7FFF
                hi, lo, pos, info = unpack_tup(page, lpoff)
                natts = pos & BT_OFFSET_MASK if info & INDEX_ALT_TID_MASK else nkey
                if natts:
                    _, cont = bt_checkkeys(keys, getkeys(page, lpoff, info, natts), natts, True)
            self.more_right = cont and nxt != P_NONE
        else:
            self.more_right = True
            off = min(offnum, maxoff)
            while off >= minoff:
                lpoff = unpack_lp(page, 20 + 4 * off)[0] & 0x7FFF
                hi, lo, pos, info = unpack_tup(page, lpoff)
                vals = getkeys(page, lpoff, info, nkey)
                ok, cont = bt_checkkeys(keys, vals, nkey, False)
                if ok:
                    items.append(((hi << 16) | lo, pos))
                if not cont:
                    break
                off -= 1
            self.more_left = cont and prev != P_NONE
        self.items = items
        return bool(items)

    # -- _bt_steppage ------------------------------------------------------------------------

    def _steppage(self) -> bool:
        rel = self.rel
        if self.forward:
            while self.more_right:
                blkno = self.nextpage
                if blkno == P_NONE:
                    return False
                buf = bt_getbuf(rel, blkno, BT_READ)
                page = buffer_get_page(buf)
                _, nxt, _, flags, _ = OPAQUE.unpack_from(page, BT_SPECIAL)
                if flags & BTP_IGNORE:
                    self.nextpage = nxt
                    bt_relbuf(buf)
                    continue
                found = self._readpage(buf, P_HIKEY if nxt == P_NONE else P_FIRSTKEY)
                bt_relbuf(buf)
                if found:
                    return True
            return False
        while self.more_left:
            buf = bt_getbuf(rel, self.curpage, BT_READ)
            buf = self._walk_left(buf)
            if not buf:
                return False
            page = buffer_get_page(buf)
            found = self._readpage(buf, page_max_offset(page))
            bt_relbuf(buf)
            if found:
                return True
        return False

    def _walk_left(self, buf: int) -> int:
        """_bt_walk_left: the live page whose right link is ``buf``'s page, locked
        (``buf`` is released), or InvalidBuffer at the left end of the level."""
        rel = self.rel
        while True:
            page = buffer_get_page(buf)
            prev, _, _, _, _ = OPAQUE.unpack_from(page, BT_SPECIAL)
            if prev == P_NONE:
                bt_relbuf(buf)
                return InvalidBuffer
            obknum = buffer_get_block_number(buf)
            buf = bt_relandgetbuf(rel, buf, prev, BT_READ)
            while True:
                page = buffer_get_page(buf)
                _, nxt, _, flags, _ = OPAQUE.unpack_from(page, BT_SPECIAL)
                if nxt == obknum:
                    if flags & BTP_IGNORE:
                        break  # step left again from here
                    return buf
                if nxt == P_NONE:
                    bt_relbuf(buf)
                    raise index_corrupted(f"could not find left sibling of block {obknum} in "
                                          f'index "{self.c.relname}"')
                buf = bt_relandgetbuf(rel, buf, nxt, BT_READ)


def bt_begin_scan(index_rel, scankeys, backward: bool = False) -> BTScan:
    """btbeginscan + btrescan: a scan of ``index_rel`` with ``scankeys`` — a list of
    (index attno (1-based), strategy '<' '<=' '=' '>=' '>', value)."""
    return BTScan(index_rel, scankeys, backward)
