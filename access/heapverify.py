"""Heap page checks — in the spirit of contrib/amcheck's verify_heapam.c
(PostgreSQL 15, plus the update-chain checks PostgreSQL 16 added).

``check_heap_page(ctx, blkno, page)`` looks at a private copy of one heap page
and returns what is wrong with it, each problem naming block, offset and (for a
column) attribute, together with what the index cross-check needs (which line
pointers exist, and which HOT chains must have an index entry). It reads no
files and takes no locks: ``tusk_ctl verify`` feeds it pages of a stopped
cluster, the SQL function verify_heapam (utils/adt/amcheck.py) pages copied out
of shared buffers under a share lock. Commit status comes from ``ctx.xid_status``
(pg_xact on disk, or the live commit log and ProcArray).

What is checked:

- line pointers: a tuple lies inside the tuple area (pd_upper..pd_special),
  starts MAXALIGNed, is at least a tuple header long and overlaps no other
  tuple; a redirect points at a line pointer of the array holding a tuple (not
  at an unused, dead or redirect one);
- tuple headers: t_hoff is where the header and null bitmap end, the tuple
  has no more attributes than the relation, the infomask holds no combination
  PostgreSQL calls corrupt nor bits tusk never writes (MultiXacts, TOAST,
  pre-9.0 VACUUM FULL); xmin and xmax are not in the future of the next xid,
  not older than the oldest xid pg_xact knows, and an unfrozen xmin does not
  precede the relation's relfrozenxid;
- attributes: each stored value (by the relation's TupleDesc) ends inside the
  tuple, with a varlena header tusk can write (no TOAST pointer, no
  compression);
- HOT chains: a HEAP_HOT_UPDATED tuple's t_ctid stays on the page and is not
  itself; the next member (the tuple there whose xmin is the updater's xid) is
  heap-only; a committed HOT update has its successor; no two line pointers
  lead to the same member; chains do not loop; and every heap-only tuple
  whose inserter committed (or is running) is reachable from a root.

Where tusk differs from verify_heapam: no TOAST checks (tusk has no TOAST),
and the chain checks are PostgreSQL 16's, not 15's.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from access.heapam_visibility import xid_in_mvcc_snapshot, xmax_is_locked_only
from access.heaptuple import (
    HEAP_HASEXTERNAL,
    HEAP_HASNULL,
    HEAP_HOT_UPDATED,
    HEAP_KEYS_UPDATED,
    HEAP_MOVED_IN,
    HEAP_MOVED_OFF,
    HEAP_NATTS_MASK,
    HEAP_ONLY_TUPLE,
    HEAP_TUPLE_HEADER,
    HEAP_UPDATED,
    HEAP_XMAX_COMMITTED,
    HEAP_XMAX_INVALID,
    HEAP_XMAX_IS_MULTI,
    HEAP_XMAX_LOCK_ONLY,
    HEAP_XMIN_COMMITTED,
    HEAP_XMIN_FROZEN,
    HEAP_XMIN_INVALID,
    SizeofHeapTupleHeader,
    bitmaplen,
    heap_deform_tuple,
    maxalign,
)
from access.tupdesc import TupleDesc
from storage import bufpage as bp

# What ctx.xid_status answers (the values of pg_xact's status bits).
XID_IN_PROGRESS = 0
XID_COMMITTED = 1
XID_ABORTED = 2

# lp_flags as the index cross-check sees them: LP_* plus a heap-only tuple.
LP_HEAP_ONLY = 4

_MASK = 0xFFFFFFFF
_HALF = 0x80000000
_FIRST_NORMAL_XID = 3
_ITEMID = struct.Struct("<I")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_ALIGN = {"c": 1, "s": 2, "i": 4, "d": 8}


class Corruption(NamedTuple):
    """One problem: where (block, offset and attribute, None when not about
    one) and what."""

    blkno: int | None
    offnum: int | None
    attnum: int | None
    msg: str

    def where(self) -> str:
        parts = []
        if self.blkno is not None:
            parts.append(f"block {self.blkno}")
        if self.offnum is not None:
            parts.append(f"offset {self.offnum}")
        if self.attnum is not None:
            parts.append(f"attribute {self.attnum}")
        return ", ".join(parts)

    def __str__(self) -> str:
        w = self.where()
        return f"{w}: {self.msg}" if w else self.msg


@dataclass
class HeapCheckContext:
    """What the checks know about the relation and the cluster.

    ``next_fxid``: the next full transaction id (read after the page was
    copied); ``oldest_xid``: the oldest xid whose status pg_xact still holds;
    ``xid_status(xid)``: XID_* for a normal xid between the two. With a
    ``snapshot`` (online) the tuples an index must hold are those visible to it;
    without one (a stopped cluster) those whose inserter committed and whose
    deleter did not."""

    relname: str
    natts: int
    next_fxid: int
    oldest_xid: int
    relfrozenxid: int
    xid_status: Callable[[int], int]
    desc: TupleDesc | None = None
    snapshot: Any = None
    current_xid: int = 0
    want_index: bool = True   # collect what the index cross-check needs


@dataclass
class HeapPageReport:
    """One page's problems, plus what the index cross-check needs: the flags of
    every line pointer (LP_* or LP_HEAP_ONLY, index offnum - 1) and, for each
    HOT chain that must be indexed, its root offset and the values of the chain
    member the index entry must match."""

    blkno: int
    problems: list[Corruption] = field(default_factory=list)
    lp_flags: bytes = b""
    tuples: int = 0
    indexed: dict[int, list[Any]] = field(default_factory=dict)
    usable: bool = True  # False: the header is broken, the line pointers unknown


class _Tuple:
    """The header of one LP_NORMAL tuple that passed the line pointer checks."""

    __slots__ = ("offnum", "off", "length", "xmin", "xmax", "ctid_blk", "ctid_off",
                 "im2", "im", "hoff", "sound", "xmin_status", "xmax_status")

    def __init__(self, page: Any, offnum: int, off: int, length: int) -> None:
        xmin, xmax, _cid, hi, lo, pos, im2, im, hoff = HEAP_TUPLE_HEADER.unpack_from(page, off)
        self.offnum, self.off, self.length = offnum, off, length
        self.xmin, self.xmax = xmin, xmax
        self.ctid_blk, self.ctid_off = (hi << 16) | lo, pos
        self.im2, self.im, self.hoff = im2, im, hoff
        self.sound = True          # header (and attributes) usable
        self.xmin_status = XID_ABORTED
        self.xmax_status = XID_ABORTED


# -- xids ----------------------------------------------------------------------------------------

def _full_xid(next_fxid: int, xid: int) -> int | None:
    """The 64-bit form of a normal ``xid`` as of ``next_fxid`` (None: no such
    xid was ever assigned, i.e. it is in epoch -1)."""
    epoch, next32 = next_fxid >> 32, next_fxid & _MASK
    if xid >= next32:
        if epoch == 0:
            return None
        epoch -= 1
    return (epoch << 32) | xid


def _precedes(a: int, b: int) -> bool:
    return ((a - b) & _MASK) >= _HALF


def _xid_bounds(ctx: HeapCheckContext, xid: int, what: str) -> str | None:
    """Why a normal ``xid`` cannot be on a page, or None."""
    full = _full_xid(ctx.next_fxid, xid)
    nxt = ctx.next_fxid
    if full is None or full >= nxt:
        return (f"{what} {xid} equals or exceeds next valid transaction ID "
                f"{nxt >> 32}:{nxt & _MASK}")
    if ctx.oldest_xid >= _FIRST_NORMAL_XID and _precedes(xid, ctx.oldest_xid):
        return f"{what} {xid} precedes oldest valid transaction ID {ctx.oldest_xid}"
    return None


def _status(ctx: HeapCheckContext, xid: int) -> int:
    if xid < _FIRST_NORMAL_XID:
        return XID_COMMITTED if xid else XID_ABORTED
    if ctx.current_xid and xid == ctx.current_xid:
        return XID_IN_PROGRESS
    return ctx.xid_status(xid)


def _xmin_status(ctx: HeapCheckContext, t: _Tuple) -> int:
    if t.im & HEAP_XMIN_COMMITTED:
        return XID_COMMITTED          # committed hint, or frozen
    if t.im & HEAP_XMIN_INVALID:
        return XID_ABORTED
    return _status(ctx, t.xmin)


def _xmax_status(ctx: HeapCheckContext, t: _Tuple) -> int:
    """The deleter's or updater's status (ABORTED: none, or a lock only)."""
    if t.im & HEAP_XMAX_INVALID or not t.xmax or xmax_is_locked_only(t.im):
        return XID_ABORTED
    if t.im & HEAP_XMAX_COMMITTED:
        return XID_COMMITTED
    return _status(ctx, t.xmax)


def _must_index(ctx: HeapCheckContext, t: _Tuple) -> bool:
    """Must an index hold an entry for this chain member's values?"""
    snap = ctx.snapshot
    if snap is None:
        return t.xmin_status == XID_COMMITTED and t.xmax_status != XID_COMMITTED
    # Visible to the check's snapshot (HeapTupleSatisfiesMVCC on a copy, without
    # hint bits): inserted by a transaction the snapshot sees as committed ...
    if t.xmin_status != XID_COMMITTED:
        if not (ctx.current_xid and t.xmin == ctx.current_xid):
            return False
    elif t.im & HEAP_XMIN_FROZEN != HEAP_XMIN_FROZEN and t.xmin >= _FIRST_NORMAL_XID \
            and xid_in_mvcc_snapshot(t.xmin, snap):
        return False
    # ... and not deleted by one.
    if t.xmax_status != XID_COMMITTED:
        return not (ctx.current_xid and t.xmax == ctx.current_xid
                    and not xmax_is_locked_only(t.im) and not t.im & HEAP_XMAX_INVALID)
    return xid_in_mvcc_snapshot(t.xmax, snap)


# -- the checks ----------------------------------------------------------------------------------

def check_heap_page(ctx: HeapCheckContext, blkno: int, page: Any) -> HeapPageReport:
    """Check one heap page (see the module docstring)."""
    rep = HeapPageReport(blkno)
    if bp.page_is_new(page):
        return rep  # never initialised: left by a crash during extension
    say = rep.problems.append
    _flags, lower, upper, special = struct.unpack_from("<HHHH", page, 10)
    if not bp.page_header_is_sane(page) or lower < bp.SIZE_OF_PAGE_HEADER_DATA:
        say(Corruption(blkno, None, None, f"corrupt page header (pd_lower {lower}, pd_upper "
                                         f"{upper}, pd_special {special})"))
        rep.usable = False
        return rep
    if special != bp.BLCKSZ:
        say(Corruption(blkno, None, None, f"heap page has special space at {special}"))
        rep.usable = False
        return rep
    maxoff = (lower - bp.SIZE_OF_PAGE_HEADER_DATA) // bp.SIZE_OF_ITEM_ID_DATA
    flags = bytearray(maxoff)
    items: list[tuple[int, int, int, int]] = []
    for offnum in range(1, maxoff + 1):
        w = _ITEMID.unpack_from(page, bp.SIZE_OF_PAGE_HEADER_DATA + 4 * (offnum - 1))[0]
        items.append((offnum, w & 0x7FFF, (w >> 15) & 3, w >> 17))
        flags[offnum - 1] = (w >> 15) & 3
    tuples: dict[int, _Tuple] = {}
    spans: list[tuple[int, int, int]] = []
    for offnum, off, lpf, length in items:
        if lpf != bp.LP_NORMAL:
            continue
        rep.tuples += 1
        problem = None
        if off != maxalign(off):
            problem = f"line pointer to page offset {off} is not maximally aligned"
        elif length < SizeofHeapTupleHeader:
            problem = (f"line pointer length {length} is less than the minimum tuple header "
                       f"size {SizeofHeapTupleHeader}")
        elif off < upper:
            problem = f"line pointer to page offset {off} is below pd_upper {upper}"
        elif off + length > special:
            problem = (f"line pointer to page offset {off} with length {length} ends beyond "
                       f"maximum page offset {special}")
        if problem:
            say(Corruption(blkno, offnum, None, problem))
            continue
        spans.append((off, off + length, offnum))
        tuples[offnum] = _Tuple(page, offnum, off, length)
    spans.sort()
    for (_s1, e1, o1), (s2, _e2, o2) in zip(spans, spans[1:], strict=False):
        if s2 < e1:
            say(Corruption(blkno, o2, None, f"tuple overlaps the tuple at offset {o1}"))
            tuples[o2].sound = False
    for t in tuples.values():
        _check_tuple(ctx, rep, page, t)
    for t in tuples.values():
        if t.im2 & HEAP_ONLY_TUPLE:
            flags[t.offnum - 1] = LP_HEAP_ONLY
    rep.lp_flags = bytes(flags)
    _check_chains(ctx, rep, page, items, tuples)
    return rep


def _check_tuple(ctx: HeapCheckContext, rep: HeapPageReport, page: Any, t: _Tuple) -> None:
    """check_tuple_header + check_tuple_visibility + check_tuple_attribute."""
    blkno = rep.blkno

    def bad(msg: str) -> None:
        rep.problems.append(Corruption(blkno, t.offnum, None, msg))
        t.sound = False

    im, im2 = t.im, t.im2
    natts = im2 & HEAP_NATTS_MASK
    if natts > ctx.natts:
        bad(f"number of attributes {natts} exceeds maximum expected for table {ctx.natts}")
    expected = maxalign(SizeofHeapTupleHeader + (bitmaplen(natts) if im & HEAP_HASNULL else 0))
    if t.hoff != expected:
        has = "has nulls" if im & HEAP_HASNULL else "no nulls"
        bad(f"tuple data should begin at byte {expected}, but actually begins at byte "
            f"{t.hoff} ({natts} attributes, {has})")
    elif t.hoff > t.length:
        bad(f"data begins at offset {t.hoff} beyond the tuple length {t.length}")
    if im & HEAP_XMAX_COMMITTED and im & HEAP_XMAX_INVALID:
        bad("xmax is marked both committed and invalid")
    if im & HEAP_XMAX_IS_MULTI:
        bad(f"xmax {t.xmax} is a MultiXactId, which tusk never writes")
    if im & HEAP_XMAX_LOCK_ONLY and im2 & HEAP_KEYS_UPDATED:
        bad("tuple is marked as only locked, but also claims key columns were updated")
    if im & (HEAP_MOVED_OFF | HEAP_MOVED_IN):
        bad("tuple is marked as moved by a pre-9.0 VACUUM FULL")
    if im & HEAP_HASEXTERNAL:
        bad("tuple claims external (TOAST) attributes, which tusk never writes")
    if im2 & HEAP_ONLY_TUPLE and not im & HEAP_UPDATED:
        bad("heap-only tuple is not marked as the result of an update")
    # xmin: valid, in range, not older than the relation's freeze threshold unless frozen.
    frozen = im & HEAP_XMIN_FROZEN == HEAP_XMIN_FROZEN
    if t.xmin == 0:
        bad("xmin 0 is invalid")
    elif t.xmin >= _FIRST_NORMAL_XID and not frozen:
        why = _xid_bounds(ctx, t.xmin, "xmin")
        if why is None and ctx.relfrozenxid >= _FIRST_NORMAL_XID \
                and _precedes(t.xmin, ctx.relfrozenxid):
            why = f"xmin {t.xmin} precedes relation freeze threshold {ctx.relfrozenxid}"
        if why:
            bad(why)
    if t.xmax >= _FIRST_NORMAL_XID and not im & HEAP_XMAX_INVALID:
        why = _xid_bounds(ctx, t.xmax, "xmax")
        if why:
            bad(why)
    if not t.sound:
        return
    t.xmin_status = _xmin_status(ctx, t)
    t.xmax_status = _xmax_status(ctx, t)
    if ctx.desc is not None:
        _check_attributes(ctx, rep, page, t, natts)


def _check_attributes(ctx: HeapCheckContext, rep: HeapPageReport, page: Any, t: _Tuple,
                      natts: int) -> None:
    """Walk the stored values as heap_deform_tuple would, checking that each
    ends inside the tuple and has a varlena header tusk writes."""
    assert ctx.desc is not None
    data = t.off + t.hoff
    end = t.off + t.length
    bits = None
    if t.im & HEAP_HASNULL:
        bits = page[t.off + SizeofHeapTupleHeader:t.off + SizeofHeapTupleHeader
                    + bitmaplen(natts)]
    pos = data
    for i, att in enumerate(ctx.desc.attrs[:natts]):
        if bits is not None and not bits[i >> 3] & (1 << (i & 7)):
            continue
        attnum = i + 1

        def bad(msg: str, attnum: int = attnum) -> None:
            rep.problems.append(Corruption(rep.blkno, t.offnum, attnum, msg))
            t.sound = False

        align = _ALIGN.get(att.attalign, 1)
        if att.attlen > 0:
            pos = data + maxalign_to(pos - data, align)
            if pos + att.attlen > end:
                bad(f"attribute with length {att.attlen} ends at offset "
                    f"{pos + att.attlen - t.off} beyond total tuple length {t.length}")
                return
            pos += att.attlen
            continue
        if pos >= end:
            bad(f"attribute starts at offset {pos - t.off} beyond total tuple length "
                f"{t.length}")
            return
        if page[pos] == 0:  # padding before a 4-byte header
            pos = data + maxalign_to(pos - data, align)
            if pos >= end:
                bad(f"attribute starts at offset {pos - t.off} beyond total tuple length "
                    f"{t.length}")
                return
        b0 = page[pos]
        if b0 == 0x01:
            bad("attribute is an external TOAST pointer, which tusk never writes")
            return
        if b0 & 1:
            size = b0 >> 1
        else:
            if pos + 4 > end:
                bad(f"attribute's 4-byte varlena header ends beyond total tuple length "
                    f"{t.length}")
                return
            word = _U32.unpack_from(page, pos)[0]
            if word & 3:
                bad("attribute is compressed, which tusk never does")
                return
            size = word >> 2
            if size < 4:
                bad(f"attribute has a varlena length of {size}, less than its header")
                return
        if pos + size > end:
            bad(f"attribute with length {size} ends at offset {pos + size - t.off} beyond "
                f"total tuple length {t.length}")
            return
        pos += size


def maxalign_to(n: int, align: int) -> int:
    return (n + align - 1) & ~(align - 1)


def _check_chains(ctx: HeapCheckContext, rep: HeapPageReport, page: Any,
                  items: list[tuple[int, int, int, int]], tuples: dict[int, _Tuple]) -> None:
    """Redirects and HOT chains (PostgreSQL 16's update-chain checks), then the
    chains an index must cover."""
    blkno = rep.blkno
    maxoff = len(items)
    say = rep.problems.append
    nxt: dict[int, int] = {}          # line pointer -> next chain member
    pred: dict[int, int] = {}         # chain member -> who leads to it
    roots: list[int] = []

    def link(src: int, dst: int) -> None:
        other = pred.get(dst)
        if other is not None:
            say(Corruption(blkno, src, None, f"line pointers {other} and {src} both lead to "
                                             f"the tuple at offset {dst}"))
            return
        pred[dst] = src
        nxt[src] = dst

    for offnum, target, lpf, _length in items:
        if lpf != bp.LP_REDIRECT:
            continue
        roots.append(offnum)
        if not 1 <= target <= maxoff:
            say(Corruption(blkno, offnum, None, f"line pointer redirection to item at offset "
                                                f"{target} exceeds maximum offset {maxoff}"))
            continue
        tflags = items[target - 1][2]
        if tflags != bp.LP_NORMAL:
            kind = {bp.LP_UNUSED: "an unused", bp.LP_DEAD: "a dead",
                    bp.LP_REDIRECT: "another redirect"}[tflags]
            say(Corruption(blkno, offnum, None, f"redirect line pointer points to {kind} "
                                                f"line pointer at offset {target}"))
            continue
        t = tuples.get(target)
        if t is None:
            continue  # its line pointer is broken: reported already
        if not t.im2 & HEAP_ONLY_TUPLE:
            say(Corruption(blkno, offnum, None, f"redirect line pointer points to offset "
                                                f"{target}, which is not a heap-only tuple"))
            continue
        link(offnum, target)

    for t in tuples.values():
        if not t.im2 & HEAP_ONLY_TUPLE:
            roots.append(t.offnum)
        if not t.sound or not t.im2 & HEAP_HOT_UPDATED:
            continue
        if t.ctid_blk != blkno:
            say(Corruption(blkno, t.offnum, None, f"HOT-updated tuple's t_ctid points to block "
                                                  f"{t.ctid_blk}, not to its own page"))
            continue
        if t.ctid_off == t.offnum:
            say(Corruption(blkno, t.offnum, None, "HOT-updated tuple's t_ctid points to itself"))
            continue
        succ = tuples.get(t.ctid_off) if 1 <= t.ctid_off <= maxoff else None
        committed = t.xmax_status == XID_COMMITTED
        if succ is None or succ.xmin != t.xmax:
            # An aborted updater's successor may have been pruned and its line
            # pointer reused; a committed one's cannot have been.
            if committed:
                say(Corruption(blkno, t.offnum, None, f"HOT update by committed transaction "
                                                      f"{t.xmax} has no successor at offset "
                                                      f"{t.ctid_off}"))
            continue
        if not succ.im2 & HEAP_ONLY_TUPLE:
            say(Corruption(blkno, t.offnum, None, f"HOT update produced a tuple that is not "
                                                  f"heap-only at offset {succ.offnum}"))
            continue
        if t.xmin_status == XID_ABORTED and succ.xmin_status == XID_COMMITTED \
                and t.xmin != succ.xmin:
            say(Corruption(blkno, t.offnum, None, f"tuple with aborted xmin {t.xmin} was "
                                                  f"updated to produce a tuple at offset "
                                                  f"{succ.offnum} with committed xmin "
                                                  f"{succ.xmin}"))
        link(t.offnum, succ.offnum)

    reached: set[int] = set()
    for root in roots:
        chain: list[int] = []
        seen: set[int] = set()
        cur: int | None = root
        while cur is not None:
            if cur in seen:
                say(Corruption(blkno, root, None, f"HOT chain starting here loops back to "
                                                  f"offset {cur}"))
                break
            seen.add(cur)
            chain.append(cur)
            cur = nxt.get(cur)
        reached.update(chain)
        if not ctx.want_index:
            continue
        member = None
        for off in chain:
            t = tuples.get(off)
            if t is not None and t.sound and _must_index(ctx, t):
                member = t
        if member is not None:
            try:
                rep.indexed[root] = heap_deform_tuple(ctx.desc, page, member.off) \
                    if ctx.desc is not None else []
            except Exception as exc:  # a value the type's decoder refuses
                say(Corruption(blkno, member.offnum, None, f"tuple cannot be decoded: {exc}"))
    for t in tuples.values():
        if t.im2 & HEAP_ONLY_TUPLE and t.offnum not in reached and t.sound \
                and t.xmin_status in (XID_COMMITTED, XID_IN_PROGRESS):
            say(Corruption(blkno, t.offnum, None, "heap-only tuple is not reachable from the "
                                                  "root of any HOT chain"))


# -- what the index cross-check needs ---------------------------------------------------------

@dataclass
class HeapMap:
    """A heap as the index cross-check sees it: its size, every checked page's
    line pointer flags (None: the page could not be checked), and the values
    every chain that must be indexed should have an entry for, by root TID."""

    nblocks: int = 0
    lp_flags: dict[int, bytes | None] = field(default_factory=dict)
    indexed: dict[tuple[int, int], list[Any]] = field(default_factory=dict)

    def add(self, rep: HeapPageReport) -> None:
        self.nblocks = max(self.nblocks, rep.blkno + 1)
        self.lp_flags[rep.blkno] = rep.lp_flags if rep.usable else None
        for root, values in rep.indexed.items():
            self.indexed[(rep.blkno, root)] = values

    def tid_problem(self, blkno: int, offnum: int) -> str | None:
        """Why an index entry cannot point at (blkno, offnum), or None."""
        if blkno >= self.nblocks:
            return f"beyond the heap's last block ({self.nblocks} blocks)"
        flags = self.lp_flags.get(blkno)
        if flags is None:
            return None  # the page itself is damaged: reported by the heap check
        if not 1 <= offnum <= len(flags):
            return f"beyond the page's line pointer array ({len(flags)} line pointers)"
        f = flags[offnum - 1]
        if f == bp.LP_UNUSED:
            return "an unused line pointer"
        if f == LP_HEAP_ONLY:
            return "a heap-only tuple (index entries point at the root of a HOT chain)"
        return None
