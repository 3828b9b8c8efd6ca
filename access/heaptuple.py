"""Heap and index tuple formats — mirrors src/include/access/htup_details.h,
src/backend/access/common/heaptuple.c (heap_form_tuple, heap_deform_tuple,
heap_fill_tuple), src/include/access/itup.h and indextuple.c.

The bytes are PostgreSQL 15's (little-endian, 8-byte MAXALIGN):

  heap tuple  = HeapTupleHeaderData (23 bytes: t_xmin, t_xmax, t_cid, t_ctid,
                t_infomask2, t_infomask, t_hoff) + null bitmap (when HEAP_HASNULL)
                padded to MAXALIGN (t_hoff) + the data area
  index tuple = IndexTupleData (8 bytes: t_tid, t_info) + null bitmap (4 bytes,
                when INDEX_NULL_MASK) padded to MAXALIGN + the data area

The data area lays the non-null attributes out in order, each aligned to its
typalign; a varlena shorter than 127 bytes gets a 1-byte header and no alignment
(unless its storage is plain), longer ones a 4-byte header. Null bitmap bit i set
means attribute i+1 is NOT null. Values are the Python datums of catalog/pg_type.py.

Where tusk differs: no TOAST (a value that would need it makes the row too big),
no compression, no "missing" attribute defaults (attributes past t_infomask2's
count read as NULL, which is what ALTER TABLE ADD COLUMN without a default gives).

Forming and deforming are compiled once per TupleDesc into closures: a descriptor
whose attributes are all fixed-width deforms a tuple without nulls in one
struct.unpack_from.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

from access.tupdesc import TupleDesc
from catalog import pg_type as t
from utils.elog import PgError

MAXIMUM_ALIGNOF = 8

# -- HeapTupleHeaderData -----------------------------------------------------------------------

HEAP_TUPLE_HEADER = struct.Struct("<IIIHHHHHB")
SizeofHeapTupleHeader = HEAP_TUPLE_HEADER.size  # 23
T_XMIN, T_XMAX, T_CID, T_CTID, T_INFOMASK2, T_INFOMASK, T_HOFF = 0, 4, 8, 12, 18, 20, 22
XMIN_XMAX = struct.Struct("<II")
CTID = struct.Struct("<HHH")          # ip_blkid (bi_hi, bi_lo), ip_posid
INFOMASKS = struct.Struct("<HH")      # t_infomask2, t_infomask
U16 = struct.Struct("<H")
U32 = struct.Struct("<I")

# t_infomask
HEAP_HASNULL = 0x0001
HEAP_HASVARWIDTH = 0x0002
HEAP_HASEXTERNAL = 0x0004
HEAP_HASOID_OLD = 0x0008
HEAP_XMAX_KEYSHR_LOCK = 0x0010
HEAP_COMBOCID = 0x0020
HEAP_XMAX_EXCL_LOCK = 0x0040
HEAP_XMAX_LOCK_ONLY = 0x0080
HEAP_XMAX_SHR_LOCK = HEAP_XMAX_EXCL_LOCK | HEAP_XMAX_KEYSHR_LOCK
HEAP_LOCK_MASK = HEAP_XMAX_SHR_LOCK | HEAP_XMAX_EXCL_LOCK | HEAP_XMAX_KEYSHR_LOCK
HEAP_XMIN_COMMITTED = 0x0100
HEAP_XMIN_INVALID = 0x0200
HEAP_XMIN_FROZEN = HEAP_XMIN_COMMITTED | HEAP_XMIN_INVALID
HEAP_XMAX_COMMITTED = 0x0400
HEAP_XMAX_INVALID = 0x0800
HEAP_XMAX_IS_MULTI = 0x1000
HEAP_UPDATED = 0x2000
HEAP_MOVED_OFF = 0x4000
HEAP_MOVED_IN = 0x8000
HEAP_XACT_MASK = 0xFFF0
# t_infomask2
HEAP_NATTS_MASK = 0x07FF
HEAP_KEYS_UPDATED = 0x2000
HEAP_HOT_UPDATED = 0x4000
HEAP_ONLY_TUPLE = 0x8000
HEAP2_XACT_MASK = 0xE000

MaxTupleAttributeNumber = 1664
MaxHeapAttributeNumber = 1600


def maxalign(n: int) -> int:
    return (n + 7) & ~7


def bitmaplen(natts: int) -> int:
    return (natts + 7) >> 3


def item_pointer_pack(blkno: int, offnum: int) -> bytes:
    return CTID.pack(blkno >> 16, blkno & 0xFFFF, offnum)


def item_pointer_get(buf: Any, offset: int) -> tuple[int, int]:
    """An ItemPointerData at ``offset`` of ``buf`` as (block, offset)."""
    hi, lo, pos = CTID.unpack_from(buf, offset)
    return (hi << 16) | lo, pos


# -- per-type storage codecs -------------------------------------------------------------------

_ALIGN = {"c": 1, "s": 2, "i": 4, "d": 8}
# Fixed-width types by struct code (and how to turn the stored value into the datum).
_FIXED_CODES = {
    t.BOOLOID: "?", t.CHAROID: "c", t.INT2OID: "h", t.INT4OID: "i", t.INT8OID: "q",
    t.FLOAT4OID: "f", t.FLOAT8OID: "d", t.OIDOID: "I", t.XIDOID: "I", t.CIDOID: "I",
    t.REGPROCOID: "I", t.REGCLASSOID: "I", t.REGTYPEOID: "I", t.REGNAMESPACEOID: "I",
    t.TIMESTAMPOID: "q", t.TIMESTAMPTZOID: "q", t.PG_LSNOID: "Q", t.XID8OID: "Q",
    t.NAMEOID: f"{t.NAMEDATALEN}s", t.TIDOID: "HHH",
}
_VARLENA_TEXT = frozenset({t.TEXTOID, t.VARCHAROID, t.BPCHAROID})
_VECTOR_ELEM = {t.INT2VECTOROID: (t.INT2OID, "h", 2), t.OIDVECTOROID: (t.OIDOID, "I", 4),
                t.INT2ARRAYOID: (t.INT2OID, "h", 2), t.INT4ARRAYOID: (t.INT4OID, "i", 4),
                t.OIDARRAYOID: (t.OIDOID, "I", 4)}
_ARRAY_HEADER = struct.Struct("<iiIii")  # ndim, dataoffset, elemtype, dim1, lbound1
VARATT_SHORT_MAX = 0x7F


def _row_too_big(size: int) -> PgError:
    return PgError("54000", f"row is too big: size {size}, maximum size 8160")


def _name_in(v: str) -> bytes:
    b = v.encode()
    if len(b) >= t.NAMEDATALEN:  # names are truncated, as PostgreSQL's namein does
        b = b[: t.NAMEDATALEN - 1]
    return b


def _vector_codec(oid: int) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    elemtype, code, size = _VECTOR_ELEM[oid]

    def encode(v: Sequence[int]) -> bytes:
        n = len(v)
        if n == 0:
            return _ARRAY_HEADER.pack(0, 0, elemtype, 0, 0)[:12]
        lbound = 0 if oid in (t.INT2VECTOROID, t.OIDVECTOROID) else 1
        return (_ARRAY_HEADER.pack(1, 0, elemtype, n, lbound)
                + struct.pack(f"<{n}{code}", *v))

    def decode(b: bytes) -> list[int]:
        ndim = U32.unpack_from(b, 0)[0]
        if ndim == 0:
            return []
        n = struct.unpack_from("<i", b, 12)[0]
        return list(struct.unpack_from(f"<{n}{code}", b, 20))
    return encode, decode


def _varlena_codec(oid: int) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    if oid in _VARLENA_TEXT:
        return str.encode, bytes.decode
    if oid == t.BYTEAOID:
        return bytes, bytes
    if oid in _VECTOR_ELEM:
        return _vector_codec(oid)
    raise PgError("0A000", f"storing values of type {t.format_type(oid)} is not supported")


class _Step:
    """How one attribute is stored: fixed (struct) or varlena (codec)."""

    __slots__ = ("attlen", "align", "fixed", "nitems", "short_ok", "encode", "decode")

    def __init__(self, att) -> None:
        self.attlen = att.attlen
        self.align = _ALIGN[att.attalign]
        self.short_ok = att.attstorage != "p"
        if att.attlen > 0:
            code = _FIXED_CODES.get(att.atttypid)
            if code is None:
                raise PgError("0A000", "storing values of type "
                              f"{t.format_type(att.atttypid)} is not supported")
            self.fixed = struct.Struct("<" + code)
            self.nitems = len(self.fixed.unpack(bytes(self.fixed.size)))
            if att.atttypid == t.NAMEOID:
                self.encode = lambda v: (_name_in(v),)
                self.decode = lambda r: r[0].rstrip(b"\0").decode()
            elif att.atttypid == t.CHAROID:
                self.encode = lambda v: (v.encode("latin-1")[:1] or b"\0",)
                self.decode = lambda r: r[0].decode("latin-1").rstrip("\0")
            elif att.atttypid == t.TIDOID:
                self.encode = lambda v: (v[0] >> 16, v[0] & 0xFFFF, v[1])
                self.decode = lambda r: ((r[0] << 16) | r[1], r[2])
            else:
                self.encode = None
                self.decode = None
        else:
            self.fixed = None
            self.nitems = 0
            self.encode, self.decode = _varlena_codec(att.atttypid)


class _Compiled:
    """A descriptor's former and deformer (see the module docstring)."""

    def __init__(self, desc: TupleDesc) -> None:
        self.natts = desc.natts
        self.steps = [_Step(a) for a in desc.attrs]
        self.has_varlena = any(s.fixed is None for s in self.steps)
        # The fixed-width prefix up to the first varlena: its offsets never move
        # in a tuple without nulls (attcacheoff), so one struct reads it all.
        fmt, off, n = "<", 0, 0
        for s in self.steps:
            if s.fixed is None:
                break
            pad = -off % s.align
            fmt += "x" * pad + s.fixed.format[1:]
            off += pad + s.fixed.size
            n += 1
        self.prefix = struct.Struct(fmt)
        self.prefix_count = n
        self.prefix_simple = all(s.decode is None and s.nitems == 1 for s in self.steps[:n])

    # -- forming (heap_fill_tuple) ---------------------------------------------------------

    def fill(self, values: Sequence[Any]) -> tuple[bytearray, bytes | None, bool]:
        """(data area, null bitmap or None, has varwidth) for ``values``."""
        data = bytearray()
        bits = None
        has_var = False
        for i, (s, v) in enumerate(zip(self.steps, values, strict=True)):
            if v is None:
                if bits is None:
                    bits = bytearray(b"\xff" * bitmaplen(self.natts))
                    last = self.natts & 7
                    if last:
                        bits[-1] = (1 << last) - 1
                bits[i >> 3] &= ~(1 << (i & 7))
                continue
            if s.fixed is not None:
                pad = -len(data) % s.align
                if pad:
                    data += bytes(pad)
                if s.encode is None:
                    data += s.fixed.pack(v)
                else:
                    data += s.fixed.pack(*s.encode(v))
                continue
            has_var = True
            payload = s.encode(v)
            n = len(payload)
            if s.short_ok and n + 1 <= VARATT_SHORT_MAX:
                data.append(((n + 1) << 1) | 1)
            else:
                pad = -len(data) % s.align
                if pad:
                    data += bytes(pad)
                data += U32.pack((n + 4) << 2)
            data += payload
        return data, (bytes(bits) if bits is not None else None), has_var

    # -- deforming (heap_deform_tuple) ----------------------------------------------------

    def deform(self, buf: Any, off: int, natts: int, bits: Any) -> list[Any]:
        """Values of the attributes stored at ``buf[off:]``; ``bits`` is the null
        bitmap (None: no nulls); ``natts`` how many attributes the tuple holds."""
        steps = self.steps
        if bits is None and natts >= self.prefix_count:
            n = self.prefix_count
            raw = self.prefix.unpack_from(buf, off)
            if self.prefix_simple:
                values = list(raw)
            else:
                values = []
                j = 0
                for s in steps[:n]:
                    k = s.nitems
                    if s.decode is None:
                        values.append(raw[j])
                    else:
                        values.append(s.decode(raw[j:j + k]))
                    j += k
            pos = self.prefix.size
        else:
            n, values, pos = 0, [], 0
        for i in range(n, self.natts):
            if i >= natts or (bits is not None and not bits[i >> 3] & (1 << (i & 7))):
                values.append(None)
                continue
            s = steps[i]
            if s.fixed is not None:
                pos += -pos % s.align
                raw = s.fixed.unpack_from(buf, off + pos)
                values.append(raw[0] if s.decode is None else s.decode(raw))
                pos += s.fixed.size
                continue
            b0 = buf[off + pos]
            if b0 & 1:  # 1-byte header: never aligned
                size = b0 >> 1
                values.append(s.decode(bytes(buf[off + pos + 1: off + pos + size])))
                pos += size
                continue
            if b0 == 0 and pos % s.align:  # pad byte before an aligned 4-byte header
                pos += -pos % s.align
            size = U32.unpack_from(buf, off + pos)[0] >> 2
            values.append(s.decode(bytes(buf[off + pos + 4: off + pos + size])))
            pos += size
        return values


def compiled(desc: TupleDesc) -> _Compiled:
    c = desc._compiled
    if c is None:
        c = desc._compiled = _Compiled(desc)
    return c


# -- heap tuples -------------------------------------------------------------------------------

def heap_form_tuple(desc: TupleDesc, values: Sequence[Any]) -> bytearray:
    """heap_form_tuple: a complete tuple (header + bitmap + data) with xmin, xmax,
    cid and ctid zero, for heapam to stamp."""
    data, bits, has_var = compiled(desc).fill(values)
    infomask = HEAP_HASVARWIDTH if has_var else 0
    hoff = SizeofHeapTupleHeader
    if bits is not None:
        infomask |= HEAP_HASNULL
        hoff += len(bits)
    hoff = maxalign(hoff)
    tup = bytearray(hoff + len(data))
    HEAP_TUPLE_HEADER.pack_into(tup, 0, 0, 0, 0, 0, 0, 0, desc.natts & HEAP_NATTS_MASK,
                                infomask | HEAP_XMAX_INVALID, hoff)
    if bits is not None:
        tup[SizeofHeapTupleHeader:SizeofHeapTupleHeader + len(bits)] = bits
    tup[hoff:] = data
    return tup


def heap_deform_tuple(desc: TupleDesc, tup: Any, offset: int = 0) -> list[Any]:
    """heap_deform_tuple: the values of the tuple at ``tup[offset:]`` (a page item
    or a formed tuple), as a list in attnum order."""
    infomask2, infomask = INFOMASKS.unpack_from(tup, offset + T_INFOMASK2)
    hoff = tup[offset + T_HOFF]
    natts = infomask2 & HEAP_NATTS_MASK
    bits = None
    if infomask & HEAP_HASNULL:
        bits = bytes(tup[offset + SizeofHeapTupleHeader:
                         offset + SizeofHeapTupleHeader + bitmaplen(natts)])
    return compiled(desc).deform(tup, offset + hoff, natts, bits)


def heap_tuple_header(tup: Any, offset: int = 0) -> tuple[int, ...]:
    """(xmin, xmax, cid, ctid block, ctid offset, infomask2, infomask, hoff)."""
    xmin, xmax, cid, hi, lo, pos, im2, im, hoff = HEAP_TUPLE_HEADER.unpack_from(tup, offset)
    return xmin, xmax, cid, (hi << 16) | lo, pos, im2, im, hoff


# -- index tuples ------------------------------------------------------------------------------

INDEX_TUPLE_HEADER = struct.Struct("<HHHH")  # t_tid (bi_hi, bi_lo, ip_posid), t_info
SizeofIndexTupleData = INDEX_TUPLE_HEADER.size  # 8
INDEX_SIZE_MASK = 0x1FFF
INDEX_AM_RESERVED_BIT = 0x2000
INDEX_VAR_MASK = 0x4000
INDEX_NULL_MASK = 0x8000
INDEX_MAX_KEYS = 32
_INDEX_BITMAP_SIZE = 4  # IndexAttributeBitMapData: INDEX_MAX_KEYS bits


def index_data_offset(t_info: int) -> int:
    """IndexInfoFindDataOffset."""
    if t_info & INDEX_NULL_MASK:
        return maxalign(SizeofIndexTupleData + _INDEX_BITMAP_SIZE)
    return SizeofIndexTupleData


def index_form_tuple(desc: TupleDesc, values: Sequence[Any],
                     tid: tuple[int, int] = (0, 0)) -> bytearray:
    """index_form_tuple: header (with t_tid = ``tid``) + optional bitmap + data,
    total size MAXALIGNed, as PostgreSQL's."""
    data, bits, has_var = compiled(desc).fill(values)
    info = 0
    if has_var:
        info |= INDEX_VAR_MASK
    if bits is not None:
        info |= INDEX_NULL_MASK
    hoff = index_data_offset(info)
    size = maxalign(hoff + len(data))
    if size > INDEX_SIZE_MASK:
        raise PgError("54000", f"index row requires {size} bytes, maximum size is 8191")
    tup = bytearray(size)
    blk, pos = tid
    INDEX_TUPLE_HEADER.pack_into(tup, 0, blk >> 16, blk & 0xFFFF, pos, info | size)
    if bits is not None:
        tup[SizeofIndexTupleData:SizeofIndexTupleData + len(bits)] = bits
    tup[hoff:hoff + len(data)] = data
    return tup


def index_deform_tuple(desc: TupleDesc, itup: Any, offset: int = 0) -> list[Any]:
    """index_deform_tuple: the key values of the index tuple at ``itup[offset:]``."""
    info = U16.unpack_from(itup, offset + 6)[0]
    bits = None
    if info & INDEX_NULL_MASK:
        bits = bytes(itup[offset + SizeofIndexTupleData:
                          offset + SizeofIndexTupleData + bitmaplen(desc.natts)])
    return compiled(desc).deform(itup, offset + index_data_offset(info), desc.natts, bits)


def index_tuple_size(itup: Any, offset: int = 0) -> int:
    return U16.unpack_from(itup, offset + 6)[0] & INDEX_SIZE_MASK


def index_tuple_tid(itup: Any, offset: int = 0) -> tuple[int, int]:
    return item_pointer_get(itup, offset)


def index_tuple_set_tid(itup: bytearray, tid: tuple[int, int], offset: int = 0) -> None:
    CTID.pack_into(itup, offset, tid[0] >> 16, tid[0] & 0xFFFF, tid[1])
