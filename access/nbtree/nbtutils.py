"""B-tree utilities — mirrors src/backend/access/nbtree/nbtutils.c (PostgreSQL 15):
insertion scan keys (_bt_mkscankey), scan-key preprocessing and checking
(_bt_preprocess_keys, _bt_checkkeys), suffix truncation (_bt_truncate,
_bt_keep_natts), plus the per-index comparison cache and the text of unique
violation errors (BuildIndexValueDescription, genam.c).

Comparison. PostgreSQL calls each column's btree support function (BTORDER_PROC);
tusk compares Python datums (catalog/pg_type.py) directly, after normalising
them once per tuple so that Python's tuple ordering *is* the btree ordering:

- NULL sorts after every value and equals NULL (NULLS LAST, ascending only);
- float NaN sorts after every other float and equals NaN (btfloat8cmp);
- bpchar compares without its trailing spaces (bpcharcmp);
- text/varchar/name compare by code point, which is 'C' collation (UTF-8 byte
  order); ints, bools, timestamps (int microseconds) compare as numbers.

The normaliser, the key extractor and the truncated descriptors of an index are
built once and cached in ``rel.am_cache`` (a BTCache), together with the cached
metapage (PostgreSQL's rd_amcache) and decoded copies of internal pages that
descents binary-search in C (see nbtsearch._internal_binsrch; tusk-only).

Where tusk differs: DESC columns, NULLS FIRST, INCLUDE columns, cross-type
operator families and array (= ANY) keys are not supported; a scan key whose value
is NULL matches nothing (what ``col = NULL`` does in SQL).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from access.heaptuple import compiled, index_form_tuple
from access.nbtree.nbtdefs import (
    BT_OFFSET_MASK,
    BT_PIVOT_HEAP_TID_ATTR,
    BTREE_DEFAULT_FILLFACTOR,
    INDEX_ALT_TID_MASK,
    INDEX_NULL_MASK,
    INDEX_SIZE_MASK,
    ITUP,
    SIZEOF_ITEM_POINTER,
    TID,
    U16,
    maxalign,
    set_natts,
)
from access.tupdesc import TupleDesc
from catalog import pg_type as t
from utils.adt.datatypes import output_function
from utils.elog import PgError

# -- normalised datums ---------------------------------------------------------------------


class _Sentinel:
    """A datum that sorts outside the normal values: LOW (minus infinity: truncated
    attributes and heap TIDs) < MID (a search key's missing TID/attribute) < every
    value < NAN < NULL < HIGH (a nextkey search's missing TID/attribute)."""

    __slots__ = ("rank", "name")

    def __init__(self, rank: int, name: str) -> None:
        self.rank = rank
        self.name = name

    def __eq__(self, o: object) -> bool:
        return o is self

    def __ne__(self, o: object) -> bool:
        return o is not self

    def __lt__(self, o: object) -> bool:
        if o.__class__ is _Sentinel:
            return self.rank < o.rank  # type: ignore[attr-defined]
        return self.rank < 0

    def __le__(self, o: object) -> bool:
        if o.__class__ is _Sentinel:
            return self.rank <= o.rank  # type: ignore[attr-defined]
        return self.rank < 0

    def __gt__(self, o: object) -> bool:
        if o.__class__ is _Sentinel:
            return self.rank > o.rank  # type: ignore[attr-defined]
        return self.rank > 0

    def __ge__(self, o: object) -> bool:
        if o.__class__ is _Sentinel:
            return self.rank >= o.rank  # type: ignore[attr-defined]
        return self.rank > 0

    def __hash__(self) -> int:
        return self.rank + 0x5EED

    def __repr__(self) -> str:
        return self.name


LOW = _Sentinel(-2, "-inf")
MID = _Sentinel(-1, "-inf+")
NAN = _Sentinel(1, "NaN")
NULL = _Sentinel(2, "NULL")
HIGH = _Sentinel(3, "+inf")

_FLOATS = frozenset({t.FLOAT4OID, t.FLOAT8OID})


def _norm_float(v: Any) -> Any:
    if v is None:
        return NULL
    return NAN if v != v else v


def _norm_bpchar(v: Any) -> Any:
    return NULL if v is None else v.rstrip(" ")


def _norm_plain(v: Any) -> Any:
    return NULL if v is None else v


def _normaliser(desc: TupleDesc):
    """vals (list, None for NULL) -> tuple in btree order (see the module docstring)."""
    fns = []
    for a in desc.attrs:
        if a.atttypid in _FLOATS:
            fns.append(_norm_float)
        elif a.atttypid == t.BPCHAROID:
            fns.append(_norm_bpchar)
        else:
            fns.append(_norm_plain)
    if all(f is _norm_plain for f in fns):
        def norm(vals: Sequence[Any]) -> tuple:
            return tuple([NULL if v is None else v for v in vals])
        return norm, False, fns

    def norm_special(vals: Sequence[Any]) -> tuple:
        return tuple([f(v) for f, v in zip(fns, vals, strict=False)])
    return norm_special, True, fns


# -- the per-index cache ---------------------------------------------------------------------

class BTCache:
    """What every B-tree operation on one index needs, built once (rel.am_cache).

    ``getkeys(page, off, info, natts)`` returns the normalised key values of the
    first ``natts`` attributes of the index tuple at ``page[off:]`` whose t_info is
    ``info``; ``rawvals`` the stored datums. ``meta`` caches the metapage's
    (root, level, fastroot, fastlevel) — possibly stale, checked by _bt_getroot.
    """

    def __init__(self, rel) -> None:
        desc: TupleDesc = rel.desc
        self.desc = desc
        self.nkeyatts = desc.natts
        self.colnames = [a.attname for a in desc.attrs]
        self.typids = [a.atttypid for a in desc.attrs]
        self.comp = compiled(desc)
        self.bitmaplen = (desc.natts + 7) >> 3
        self.norm, self.special, self.colnorm = _normaliser(desc)
        self._trunc_descs: dict[int, TupleDesc] = {}
        self.meta: tuple[int, int, int, int] | None = None
        # Decoded internal pages: blkno -> (page LSN, full keys, first data offset);
        # an entry is built on the second visit with the same LSN (see nbtsearch).
        self.icache: dict[int, tuple[int, list[tuple], int]] = {}
        self.ipending: dict[int, int] = {}
        ff = getattr(rel, "fillfactor", BTREE_DEFAULT_FILLFACTOR) or BTREE_DEFAULT_FILLFACTOR
        self.fillfactor = ff
        # BTGetTargetPageFreeSpace: what a built leaf page leaves free.
        self.target_free = 8192 * (100 - ff) // 100
        self.allequalimage = not any(typ in _FLOATS or typ == t.NUMERICOID
                                     for typ in self.typids)
        self.is_permanent = rel.is_permanent
        self.relname = rel.relname
        self.rnode = rel.rnode
        # Fast key extraction: every key column fixed-width, stored as one struct
        # run from the start of the data area, no normalisation needed.
        comp = self.comp
        self.prefix = None
        if (comp.prefix_count == desc.natts and comp.prefix_simple and not self.special):
            self.prefix = comp.prefix
        # One struct for header + key of a single fixed-width key column: the
        # binary search reads both with one unpack.
        self.single = None
        self._form1 = None
        if self.prefix is not None and desc.natts == 1:
            self.single = struct.Struct("<HHHH" + self.prefix.format[1:])
            size = maxalign(self.single.size)
            self._form1 = struct.Struct(f"<HHHH{self.prefix.format[1:]}{size - self.single.size}x")
            self._form1_size = size
        self.getkeys = self._make_getkeys()

    def _make_getkeys(self):
        comp, n, blen, norm = self.comp, self.nkeyatts, self.bitmaplen, self.norm
        deform = comp.deform
        prefix = self.prefix
        special = self.special

        def getkeys(page, off: int, info: int, natts: int) -> tuple:
            if info & INDEX_NULL_MASK:
                bits = bytes(page[off + 8:off + 8 + blen])
                vals = deform(page, off + 16, natts, bits)
                if natts < n:
                    del vals[natts:]
                return norm(vals)
            if prefix is not None and natts == n:
                return prefix.unpack_from(page, off + 8)
            vals = deform(page, off + 8, natts, None)
            if natts < n:
                del vals[natts:]
            if special:
                return norm(vals)
            return tuple(vals)
        return getkeys

    def form_tuple(self, values: Sequence[Any], tid: tuple[int, int]) -> bytearray:
        """index_form_tuple, with a shortcut for one fixed-width non-NULL key."""
        form1 = self._form1
        if form1 is not None and values[0] is not None:
            blk = tid[0]
            return bytearray(form1.pack(blk >> 16, blk & 0xFFFF, tid[1], self._form1_size,
                                        values[0]))
        return index_form_tuple(self.desc, values, tid)

    def rawvals(self, tup, off: int = 0, natts: int | None = None) -> list[Any]:
        """index_deform_tuple of the first ``natts`` attributes (stored datums)."""
        n = self.nkeyatts if natts is None else natts
        info = U16.unpack_from(tup, off + 6)[0]
        if info & INDEX_NULL_MASK:
            bits = bytes(tup[off + 8:off + 8 + self.bitmaplen])
            vals = self.comp.deform(tup, off + 16, n, bits)
        else:
            vals = self.comp.deform(tup, off + 8, n, None)
        return vals[:n]

    def tuple_natts(self, tup, off: int = 0) -> int:
        """BTreeTupleGetNAtts."""
        info = U16.unpack_from(tup, off + 6)[0]
        if info & INDEX_ALT_TID_MASK:
            return U16.unpack_from(tup, off + 4)[0] & BT_OFFSET_MASK
        return self.nkeyatts

    def tuple_keys(self, tup, off: int = 0) -> tuple:
        """Normalised key values a tuple stores (fewer for a truncated pivot)."""
        info = U16.unpack_from(tup, off + 6)[0]
        natts = self.tuple_natts(tup, off)
        if natts == 0:
            return ()
        return self.getkeys(tup, off, info, natts)

    def full_key(self, tup, off: int = 0) -> tuple:
        """The tuple's position in the key space, as a comparable tuple: its key
        values (LOW for truncated attributes) then its heap TID (LOW if absent)."""
        hi, lo, pos, info = ITUP.unpack_from(tup, off)
        n = self.nkeyatts
        if info & INDEX_ALT_TID_MASK:
            natts = pos & BT_OFFSET_MASK
            if pos & BT_PIVOT_HEAP_TID_ATTR:
                hi, lo, pos = TID.unpack_from(tup, off + (info & INDEX_SIZE_MASK) - 6)
                htid: Any = ((hi << 16) | lo, pos)
            else:
                htid = LOW
        else:
            natts = n
            htid = ((hi << 16) | lo, pos)
        vals = self.getkeys(tup, off, info, natts) if natts else ()
        if natts < n:
            vals = tuple(vals) + (LOW,) * (n - natts)
        return (*vals, htid)

    def trunc_desc(self, natts: int) -> TupleDesc:
        d = self._trunc_descs.get(natts)
        if d is None:
            d = self._trunc_descs[natts] = TupleDesc(self.desc.attrs[:natts])
        return d


def get_cache(rel) -> BTCache:
    """The index's BTCache, built on first use."""
    c = rel.am_cache
    if c is None or c.__class__ is not BTCache:
        c = rel.am_cache = BTCache(rel)
    return c


# -- insertion scan keys (BTScanInsertData) ------------------------------------------------

class BTScanInsert:
    """An insertion scan key: the first ``keysz`` normalised key values, the heap
    TID tiebreaker (``scantid``; None in searches), nextkey (find the first item
    > key rather than >= key) and pivotsearch."""

    __slots__ = ("vals", "keysz", "scantid", "nextkey", "pivotsearch", "anynullkeys")

    def __init__(self, vals: tuple, scantid: tuple[int, int] | None = None,
                 nextkey: bool = False, pivotsearch: bool = False,
                 anynullkeys: bool = False) -> None:
        self.vals = vals
        self.keysz = len(vals)
        self.scantid = scantid
        self.nextkey = nextkey
        self.pivotsearch = pivotsearch
        self.anynullkeys = anynullkeys


def bt_mkscankey(c: BTCache, values: Sequence[Any],
                 heap_tid: tuple[int, int] | None) -> BTScanInsert:
    """_bt_mkscankey for a tuple about to be inserted."""
    vals = c.norm(values)
    return BTScanInsert(vals, heap_tid, anynullkeys=any(v is None for v in values))


# -- suffix truncation -----------------------------------------------------------------------

def bt_keep_natts(c: BTCache, lastleft, firstright) -> int:
    """_bt_keep_natts: how many key attributes a new pivot between the two
    (non-pivot) tuples must keep; nkeyatts + 1 means the heap TID too."""
    a = c.tuple_keys(lastleft)
    b = c.tuple_keys(firstright)
    keep = 1
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        keep += 1
    return keep


def bt_truncate(c: BTCache, lastleft, firstright) -> bytearray:
    """_bt_truncate: the new high key of a split leaf page — ``firstright`` cut
    down to the attributes that distinguish it from ``lastleft``, with
    lastleft's heap TID appended when no key attribute does."""
    nkey = c.nkeyatts
    keepnatts = bt_keep_natts(c, lastleft, firstright)
    leave = min(keepnatts, nkey)
    if leave == nkey:
        size = U16.unpack_from(firstright, 6)[0] & INDEX_SIZE_MASK
        pivot = bytearray(firstright[:size])
    else:
        # index_truncate_tuple: re-form with fewer attributes, keep t_tid.
        vals = c.rawvals(firstright, 0, leave)
        pivot = index_form_tuple(c.trunc_desc(leave), vals)
        pivot[0:6] = firstright[0:6]
    if keepnatts <= nkey:
        set_natts(pivot, keepnatts, False)
        return pivot
    # No key attribute tells the halves apart: append a heap TID.
    newsize = maxalign(len(pivot)) + maxalign(SIZEOF_ITEM_POINTER)
    tidpivot = bytearray(newsize)
    tidpivot[:len(pivot)] = pivot
    info = U16.unpack_from(tidpivot, 6)[0]
    U16.pack_into(tidpivot, 6, (info & ~INDEX_SIZE_MASK) | newsize)
    set_natts(tidpivot, nkey, True)
    # BTreeTupleGetMaxHeapTID(lastleft): a plain non-pivot tuple's t_tid.
    tidpivot[newsize - SIZEOF_ITEM_POINTER:newsize] = lastleft[0:6]
    return tidpivot


def tuple_heap_tid(tup, off: int = 0) -> tuple[int, int] | None:
    """BTreeTupleGetHeapTID."""
    hi, lo, pos, info = ITUP.unpack_from(tup, off)
    if info & INDEX_ALT_TID_MASK:
        if pos & BT_PIVOT_HEAP_TID_ATTR:
            hi, lo, pos = TID.unpack_from(tup, off + (info & INDEX_SIZE_MASK) - 6)
            return (hi << 16) | lo, pos
        return None
    return (hi << 16) | lo, pos


# -- search scan keys (_bt_preprocess_keys, _bt_checkkeys) -----------------------------------

STRATEGIES = ("<", "<=", "=", ">=", ">")


class ScanKeys:
    """Preprocessed scan keys: per attribute at most one '=' or one lower and one
    upper bound, each marked required in the forward and/or backward direction
    (every attribute before it has an '=' key), as _bt_preprocess_keys leaves them.

    ``keys`` is a list of (attno0, op, value, reqfwd, reqbkwd); ``qual_ok`` False
    means no tuple can match (contradictory keys or a NULL comparison value).
    """

    __slots__ = ("keys", "qual_ok", "eq", "lower", "upper", "single_eq")

    def __init__(self, c: BTCache, scankeys: Sequence[tuple[int, str, Any]]) -> None:
        n = c.nkeyatts
        if len(scankeys) == 1 and n == 1:
            attno, op, value = scankeys[0]
            if attno == 1 and op == "=" and value is not None:
                # The common lookup, without the general bookkeeping.
                v = c.colnorm[0](value)
                self.qual_ok = True
                self.keys = [(0, "=", v, True, True)]
                self.eq = [v]
                self.lower = self.upper = [None]
                self.single_eq = True
                return
        eq: list[Any] = [None] * n
        has_eq = [False] * n
        lower: list[tuple[Any, bool] | None] = [None] * n    # (value, inclusive)
        upper: list[tuple[Any, bool] | None] = [None] * n
        self.qual_ok = True
        for attno, op, value in scankeys:
            if not 1 <= attno <= n:
                raise PgError("XX000", f"invalid index attribute number {attno}")
            if op not in STRATEGIES:
                raise PgError("XX000", f"unrecognized btree strategy {op!r}")
            if value is None:
                self.qual_ok = False
                continue
            i = attno - 1
            v = c.colnorm[i](value)
            if op == "=":
                if has_eq[i] and eq[i] != v:
                    self.qual_ok = False
                has_eq[i] = True
                eq[i] = v
            elif op in (">", ">="):
                b = (v, op == ">=")
                cur = lower[i]
                if cur is None or v > cur[0] or (v == cur[0] and not b[1]):
                    lower[i] = b
            else:
                b = (v, op == "<=")
                cur = upper[i]
                if cur is None or v < cur[0] or (v == cur[0] and not b[1]):
                    upper[i] = b
        for i in range(n):
            lo, hi = lower[i], upper[i]
            if has_eq[i]:
                v = eq[i]
                if lo is not None and (v < lo[0] or (v == lo[0] and not lo[1])):
                    self.qual_ok = False
                if hi is not None and (v > hi[0] or (v == hi[0] and not hi[1])):
                    self.qual_ok = False
                lower[i] = upper[i] = None
            elif lo is not None and hi is not None:
                if lo[0] > hi[0] or (lo[0] == hi[0] and not (lo[1] and hi[1])):
                    self.qual_ok = False
        keys = []
        required = True
        for i in range(n):
            if has_eq[i]:
                keys.append((i, "=", eq[i], required, required))
                continue
            if lower[i] is not None:
                keys.append((i, ">=" if lower[i][1] else ">", lower[i][0], False, required))
            if upper[i] is not None:
                keys.append((i, "<=" if upper[i][1] else "<", upper[i][0], required, False))
            required = False
        self.keys = keys
        self.eq = [eq[i] if has_eq[i] else ABSENT for i in range(n)]
        self.lower = lower
        self.upper = upper
        self.single_eq = (len(keys) == 1 and keys[0][1] == "=" and keys[0][0] == 0)


ABSENT = object()  # ScanKeys.eq entry of an attribute without '='


def bt_checkkeys(keys: list, vals: tuple, natts: int, forward: bool) -> tuple[bool, bool]:
    """_bt_checkkeys: (tuple matches, scan may continue in this direction).

    ``vals`` are the tuple's normalised keys; attributes at or past ``natts`` are
    truncated away (a high key) and pass.
    """
    for i, op, v, reqfwd, reqbkwd in keys:
        if i >= natts:
            continue
        x = vals[i]
        if x is NULL:
            # NULLs sort last: a forward scan that reaches them on a required
            # key has seen every match.
            return False, not ((reqfwd or reqbkwd) and forward)
        if op == "=":
            ok = x == v
        elif op == "<":
            ok = x < v
        elif op == "<=":
            ok = x <= v
        elif op == ">":
            ok = x > v
        else:
            ok = x >= v
        if not ok:
            if (reqfwd and forward) or (reqbkwd and not forward):
                return False, False
            return False, True
    return True, True


# -- error reports ---------------------------------------------------------------------------

_POSTGRES_EPOCH_OFFSET = 946684800  # seconds from 1970-01-01 to 2000-01-01


def _float_out(v: float, single: bool = False) -> str:
    """float8out / float4out: the shortest exact representation, PostgreSQL's format."""
    if v != v:
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    if single:
        f = struct.Struct("<f")
        target = f.unpack(f.pack(v))[0]
        s = repr(target)
        for p in range(1, 10):
            cand = f"{target:.{p}g}"
            if f.unpack(f.pack(float(cand)))[0] == target:
                s = cand
                break
    else:
        s = repr(v)
    d = Decimal(s)
    sign, digits, exp = d.as_tuple()
    while len(digits) > 1 and digits[-1] == 0:
        digits = digits[:-1]
        exp += 1  # type: ignore[operator]
    sci = len(digits) - 1 + exp  # type: ignore[operator]
    limit = 6 if single else 15
    if -4 <= sci < limit:
        out = format(Decimal((sign, digits, exp)), "f")
    else:
        mant = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
        out = ("-" if sign else "") + mant + ("e-" if sci < 0 else "e+") + f"{abs(sci):02d}"
    return out


def _timestamp_out(us: int, tz: bool) -> str:
    if us >= 0x7FFFFFFFFFFFFFFF:
        return "infinity"
    if us <= -0x8000000000000000:
        return "-infinity"
    import datetime

    base = datetime.datetime(2000, 1, 1)
    try:
        dt = base + datetime.timedelta(microseconds=us)
    except OverflowError:
        return str(us)
    s = dt.strftime("%Y-%m-%d %H:%M:%S")
    if dt.microsecond:
        s += f".{dt.microsecond:06d}".rstrip("0")
    return s + ("+00" if tz else "")


def datum_out(typid: int, v: Any) -> str:
    """The text form of a datum, as the type's output function prints it."""
    if v is None:
        return "null"
    return output_function(typid)(v)


def build_index_value_description(c: BTCache, values: Sequence[Any]) -> str:
    """BuildIndexValueDescription: '(a, b)=(1, 2)'."""
    cols = ", ".join(c.colnames)
    vals = ", ".join(datum_out(typ, v) for typ, v in zip(c.typids, values, strict=False))
    return f"({cols})=({vals})"


def unique_violation(c: BTCache, values: Sequence[Any]) -> PgError:
    return PgError("23505",
                   f'duplicate key value violates unique constraint "{c.relname}"',
                   detail=f"Key {build_index_value_description(c, values)} already exists.")


def unique_build_violation(c: BTCache, values: Sequence[Any]) -> PgError:
    return PgError("23505", f'could not create unique index "{c.relname}"',
                   detail=f"Key {build_index_value_description(c, values)} is duplicated.")


def _check_tuple_size(itemsz: int, limit: int, relname: str, heap_rel, tid) -> None:
    """_bt_check_third_page's error."""
    from access.nbtree.nbtdefs import BTREE_VERSION

    heapname = getattr(heap_rel, "relname", "?")
    raise PgError(
        "54000",
        f"index row size {itemsz} exceeds btree version {BTREE_VERSION} maximum {limit} "
        f'for index "{relname}"',
        detail=f'Index row references tuple ({tid[0]},{tid[1]}) in relation "{heapname}".',
        hint="Values larger than 1/3 of a buffer page cannot be indexed.\n"
             "Consider a function index of an MD5 hash of the value, or use full text indexing.")


check_tuple_size = _check_tuple_size
