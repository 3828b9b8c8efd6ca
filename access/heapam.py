"""The heap access method — mirrors src/backend/access/heap/heapam.c and
heapam_handler.c (PostgreSQL 15): inserting, deleting, updating, fetching and
scanning heap tuples under MVCC.

A table is a sequence of slotted pages (storage/bufpage.py) holding heap
tuples (access/heaptuple.py). Every tuple carries its history in its header:
t_xmin (the inserting transaction), t_xmax (the deleting or updating one),
t_cid (the command of the inserting/deleting transaction, or a combo id),
t_ctid (its own location, or its newer version's) and t_infomask(2) (hint bits
and chain flags). A change never overwrites a row in place: UPDATE writes a new
version and stamps the old one's xmax and t_ctid; DELETE only stamps xmax. Who
sees which version is decided by access/heapam_visibility.py against a snapshot
(utils/snapmgr.py).

Writers (heap_delete, heap_update) follow PostgreSQL's protocol: lock the
buffer, check the tuple with HeapTupleSatisfiesUpdate; if another transaction
is changing it, release the buffer lock, take the tuple lock (LOCKTAG_TUPLE, so
waiters queue in arrival order), wait for that transaction (XactLockTableWait),
re-lock and look again; if it committed a change, report TM_Updated or
TM_Deleted with the newer version's ctid so the executor can re-check it
(EvalPlanQual) — or TM_Ok if it aborted.

HOT: when no indexed column changes and the new version fits on the old one's
page, the new version is a heap-only tuple (no index entries, see
access/pruneheap.py), and the result's ``update_indexes`` is False.

Every change is WAL-logged in PostgreSQL 15's record formats
(access/heapam_xlog.py) before the buffer lock is released, and the page LSN is
set, so that flush_buffer writes WAL first.

Callers' API (tids are (block, offset) tuples, values are lists in attnum order):

    tid = heap_insert(rel, values, cid)
    tids = heap_multi_insert(rel, rows, cid)
    res = heap_update(rel, otid, values, cid)        # HeapResult
    res = heap_delete(rel, tid, cid)                 # HeapResult
    res = heap_lock_tuple(rel, tid, cid, mode)       # HeapResult (values of the locked version)
    values = heap_fetch(rel, tid, snapshot)          # or None
    found = heap_hot_search(rel, root_tid, snapshot) # (tid, values) or None
    for tid, values in heap_scan(rel, snapshot): ...
    for root_tid, values, is_live in heap_index_build_scan(rel): ...
    tid = heap_get_latest_tid(rel, tid, snapshot)

Where tusk differs: no TOAST (heaptuple.py: an over-large row is 54000), no
MultiXacts — so heap_lock_tuple supports only the exclusive row-lock modes
(FOR UPDATE, FOR NO KEY UPDATE), and a share-locked row cannot exist; no
visibility map (PD_ALL_VISIBLE is never set); no speculative insertion; no
predicate locks (SERIALIZABLE runs as REPEATABLE READ); no bulk-insert ring.
HEAP_KEYS_UPDATED is set when a column of ``rel.key_attnums`` (if the
relation cache provides it) or else of ``rel.indexed_attnums`` changes.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterator, Sequence
from operator import length_hint
from typing import Any

from access import xact
from access.heapam_visibility import (
    HEAPTUPLE_DEAD,
    HEAPTUPLE_DELETE_IN_PROGRESS,
    HEAPTUPLE_INSERT_IN_PROGRESS,
    HEAPTUPLE_LIVE,
    HEAPTUPLE_RECENTLY_DEAD,
    KIND_MVCC,
    TM_NAMES,
    TM_BeingModified,
    TM_Deleted,
    TM_Invisible,
    TM_Ok,
    TM_SelfModified,
    TM_Updated,
    TM_WouldBlock,
    _precedes,
    get_cmax,
    get_cmin,
    global_vis_horizon,
    heap_tuple_header_is_only_locked,
    heap_tuple_is_surely_dead,
    heap_tuple_satisfies_mvcc,
    heap_tuple_satisfies_update,
    heap_tuple_satisfies_vacuum,
    heap_tuple_satisfies_visibility,
    set_hint_bits,
    xmax_is_locked_only,
)
from access.heapam_xlog import (
    HEAP_MOVED,
    HEAP_XMAX_BITS,
    XLH_DELETE_ALL_VISIBLE_CLEARED,
    XLH_INSERT_ALL_VISIBLE_CLEARED,
    compute_infobits,
    log_heap_delete,
    log_heap_insert,
    log_heap_lock,
    log_heap_multi_insert,
    log_heap_update,
    relation_needs_wal,
)
from access.heaptuple import (
    HEAP_COMBOCID,
    HEAP_HOT_UPDATED,
    HEAP_KEYS_UPDATED,
    HEAP_ONLY_TUPLE,
    HEAP_UPDATED,
    HEAP_XMAX_COMMITTED,
    HEAP_XMAX_EXCL_LOCK,
    HEAP_XMAX_INVALID,
    HEAP_XMAX_LOCK_ONLY,
    HEAP_XMIN_COMMITTED,
    HEAP_XMIN_FROZEN,
    compiled,
    heap_form_tuple,
)
from access.hio import (
    HEAP_INSERT_FROZEN,
    HEAP_INSERT_SKIP_FSM,
    MaxHeapTupleSize,
    relation_get_buffer_for_tuple,
    relation_get_target_page_free_space,
    relation_put_heap_tuple,
)
from access.pruneheap import heap_get_root_tuples, heap_page_prune_opt
from storage import bufmgr, smgr
from storage import bufpage as bp
from storage.bufmgr import BUFFER_LOCK_EXCLUSIVE, BUFFER_LOCK_SHARE, BUFFER_LOCK_UNLOCK
from storage.relfilenode import MAIN_FORKNUM
from utils import combocid, elog
from utils.elog import PANIC, PgError
from utils.pgstat_relation import pgstat_init_relation, xact_touched

__all__ = [
    "TM_Ok", "TM_Invisible", "TM_SelfModified", "TM_Updated", "TM_Deleted",
    "TM_BeingModified", "TM_WouldBlock", "HeapResult", "heap_insert", "heap_multi_insert",
    "heap_delete", "heap_update", "heap_lock_tuple", "heap_fetch", "heap_hot_search",
    "heap_scan", "heap_index_build_scan", "heap_get_latest_tid", "IndexFetchHeap",
    "HEAP_INSERT_FROZEN", "HEAP_INSERT_SKIP_FSM", "LockTupleKeyShare", "LockTupleShare",
    "LockTupleNoKeyExclusive", "LockTupleExclusive",
]

InvalidCommandId = 0xFFFFFFFF

# LockTupleMode (lockoptions.h)
LockTupleKeyShare = 0
LockTupleShare = 1
LockTupleNoKeyExclusive = 2
LockTupleExclusive = 3
# The heavyweight lock behind each (tupleLockExtraInfo): AccessShare, RowShare,
# Exclusive, AccessExclusive.
_TUPLOCK_HWLOCK = (1, 2, 7, 8)

# XLTW_Oper (lmgr.h): what a wait is for, for the error context (storage.lmgr.lmgr's).
XLTW_NONE, XLTW_UPDATE, XLTW_DELETE, XLTW_LOCK, XLTW_LOCK_UPDATED = range(5)
XLTW_FETCH_UPDATED = 7

# LockWaitPolicy (lockoptions.h)
LockWaitBlock = 0
LockWaitSkip = 1
LockWaitError = 2

_XMIN_XMAX_CID = struct.Struct("<III")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_INFOMASKS = struct.Struct("<HH")  # t_infomask2, t_infomask at offset 18
_CTID = struct.Struct("<HHH")
_ITEMID = struct.Struct("<I")
_SIZEOF_HDR = bp.SIZE_OF_PAGE_HEADER_DATA

_xst = xact._st
_touch = xact_touched.add  # a relation with insert/update/delete counts this transaction


class HeapResult:
    """The outcome of heap_update / heap_delete / heap_lock_tuple (TM_Result plus
    TM_FailureData): ``status`` is a TM_* value; on failure ``ctid`` is the
    newer version's location (== the tuple's own for a delete), ``xmax`` the
    transaction that changed it, ``cmax`` its command when TM_SelfModified. On
    success of an update, ``new_tid`` is the new version and ``update_indexes``
    says whether index entries must be made for it (False for HOT)."""

    __slots__ = ("status", "ctid", "xmax", "cmax", "new_tid", "update_indexes", "values")

    def __init__(self, status: int, ctid: tuple[int, int] | None = None, xmax: int = 0,
                 cmax: int = InvalidCommandId, new_tid: tuple[int, int] | None = None,
                 update_indexes: bool = False, values: list[Any] | None = None) -> None:
        self.status = status
        self.ctid = ctid
        self.xmax = xmax
        self.cmax = cmax
        self.new_tid = new_tid
        self.update_indexes = update_indexes
        self.values = values

    @property
    def ok(self) -> bool:
        return self.status == TM_Ok

    def __repr__(self) -> str:
        return (f"HeapResult({TM_NAMES[self.status]}, ctid={self.ctid}, xmax={self.xmax}, "
                f"new_tid={self.new_tid}, update_indexes={self.update_indexes})")


# -- helpers ------------------------------------------------------------------------------------

def _critical_section_failed(exc: BaseException) -> None:
    """An error between changing a shared page and WAL-logging it: PostgreSQL
    PANICs (a critical section), leaving the page to crash recovery."""
    elog.ereport(PANIC, f"error in a critical section of the heap access method: {exc!r}")
    os.abort()


def _item_offset(page, offnum: int) -> tuple[int, int]:
    """(lp_off, lp_flags) of a line pointer."""
    w = _ITEMID.unpack_from(page, _SIZEOF_HDR + 4 * (offnum - 1))[0]
    return w & 0x7FFF, (w >> 15) & 3


def _max_offset(page) -> int:
    lower = _U16.unpack_from(page, 12)[0]
    return (lower - _SIZEOF_HDR) >> 2 if lower > _SIZEOF_HDR else 0


def _deform(desc, page, off: int) -> list[Any]:
    """heap_deform_tuple on a page item (inlined header reads)."""
    infomask2, infomask = _INFOMASKS.unpack_from(page, off + 18)
    hoff = page[off + 22]
    natts = infomask2 & 0x07FF
    bits = None
    if infomask & 0x0001:  # HEAP_HASNULL
        bits = bytes(page[off + 23:off + 23 + ((natts + 7) >> 3)])
    c = desc._compiled
    if c is None:
        c = compiled(desc)
    return c.deform(page, off + hoff, natts, bits)


def _ctid(page, off: int) -> tuple[int, int]:
    hi, lo, pos = _CTID.unpack_from(page, off + 12)
    return (hi << 16) | lo, pos


def _set_ctid(page, off: int, tid: tuple[int, int]) -> None:
    _CTID.pack_into(page, off + 12, tid[0] >> 16, tid[0] & 0xFFFF, tid[1])


def _datum_equal(a: Any, b: Any) -> bool:
    """heap_attr_equals (datumIsEqual): equal *and* stored alike (-0.0 is not 0.0)."""
    if a is None or b is None:
        return a is b
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return a == b


_NOTHING: frozenset[int] = frozenset()


def _modified_attrs(desc, page, off: int, values: Sequence[Any], interesting) -> set[int]:
    """HeapDetermineColumnsInfo: which of the ``interesting`` attnums differ
    between the old tuple and the new values."""
    if not interesting:
        return set()
    old = _deform(desc, page, off)
    return {a for a in interesting
            if 0 < a <= len(old) and not _datum_equal(old[a - 1], values[a - 1])}


def _xact_lock_table_wait(rel, xid: int, tid: tuple[int, int], oper: int) -> None:
    """XactLockTableWait through the lock manager."""
    from storage.lmgr import lmgr

    lmgr.xact_lock_table_wait(xid, rel.relname, tid, oper)


def _conditional_xact_lock_table_wait(xid: int) -> bool:
    from storage.lmgr import lmgr

    return lmgr.conditional_xact_lock_table_wait(xid)


class _TupleLock:
    """heap_acquire_tuplock / UnlockTupleTuplock: the LOCKTAG_TUPLE lock that
    queues waiters for one tuple fairly (taken only when we must wait)."""

    __slots__ = ("rel", "tid", "mode", "held")

    def __init__(self, rel, tid: tuple[int, int], mode: int) -> None:
        self.rel = rel
        self.tid = tid
        self.mode = mode
        self.held = False

    def acquire(self, wait_policy: int = LockWaitBlock) -> bool:
        if self.held:
            return True
        from storage.lmgr import lmgr

        hw = _TUPLOCK_HWLOCK[self.mode]
        if wait_policy == LockWaitBlock:
            lmgr.lock_tuple(self.rel.oid, self.tid, hw)
        elif not lmgr.conditional_lock_tuple(self.rel.oid, self.tid, hw):
            if wait_policy == LockWaitError:
                raise PgError("55P03", "could not obtain lock on row in relation "
                                       f'"{self.rel.relname}"')
            return False
        self.held = True
        return True

    def release(self) -> None:
        if self.held:
            from storage.lmgr import lmgr

            lmgr.unlock_tuple(self.rel.oid, self.tid, _TUPLOCK_HWLOCK[self.mode])
            self.held = False


def _update_xmax_hint_bits(page, off: int, buffer: int, xid: int) -> None:
    """UpdateXmaxHintBits: after waiting for xmax, record how it ended."""
    infomask = _U16.unpack_from(page, off + 20)[0]
    if not infomask & (HEAP_XMAX_COMMITTED | HEAP_XMAX_INVALID):
        from access.transam import transaction_id_did_commit

        if not xmax_is_locked_only(infomask) and transaction_id_did_commit(xid):
            set_hint_bits(page, off, buffer, HEAP_XMAX_COMMITTED, xid)
        else:
            set_hint_bits(page, off, buffer, HEAP_XMAX_INVALID, 0)


_XMAX_INTERESTING = 0x1000 | HEAP_XMAX_LOCK_ONLY | 0x0050  # IS_MULTI | LOCK_ONLY | LOCK_MASK


def _adjust_cmax(page, off: int, cid: int) -> tuple[int, bool]:
    """HeapTupleHeaderAdjustCmax: a tuple our transaction inserted gets a combo id."""
    xmin, _xmax, tcid = _XMIN_XMAX_CID.unpack_from(page, off)
    infomask = _U16.unpack_from(page, off + 20)[0]
    cur = _xst.xid
    if not infomask & HEAP_XMIN_COMMITTED and cur and xmin == cur:
        return combocid.get_combo_command_id(get_cmin(tcid, infomask), cid), True
    return cid, False


def _set_cmax(page, off: int, cid: int, iscombo: bool) -> None:
    """HeapTupleHeaderSetCmax."""
    _U32.pack_into(page, off + 8, cid)
    infomask = _U16.unpack_from(page, off + 20)[0]
    _U16.pack_into(page, off + 20, infomask | HEAP_COMBOCID if iscombo
                   else infomask & ~HEAP_COMBOCID)


def _failure(page, off: int, status: int) -> HeapResult:
    """TM_FailureData for a tuple that cannot be changed."""
    xmax, tcid = struct.unpack_from("<II", page, off + 4)
    infomask = _U16.unpack_from(page, off + 20)[0]
    cmax = get_cmax(tcid, infomask) if status == TM_SelfModified else InvalidCommandId
    return HeapResult(status, _ctid(page, off), xmax, cmax)


class _RelInfo:
    """What heap_update needs to know about a relation's indexes, cached in
    rel.am_cache (RelationGetIndexAttrBitmap's results)."""

    __slots__ = ("source", "hot_attrs", "key_attrs", "interesting")

    def __init__(self, rel) -> None:
        keys = getattr(rel, "key_attnums", None)
        self.source = (rel.indexed_attnums, keys)
        self.hot_attrs = frozenset(rel.indexed_attnums)
        self.key_attrs = self.hot_attrs if keys is None else frozenset(keys)
        self.interesting = self.hot_attrs | self.key_attrs


def _rel_info(rel) -> _RelInfo:
    info = rel.am_cache
    if type(info) is not _RelInfo or info.source[0] is not rel.indexed_attnums or \
            info.source[1] is not getattr(rel, "key_attnums", None):
        info = rel.am_cache = _RelInfo(rel)
    return info


def _rel_smgr(rel):
    return rel.smgr


# -- insert -------------------------------------------------------------------------------------

def _prepare_insert(rel, values: Sequence[Any], xid: int, cid: int, options: int) -> bytearray:
    """heap_prepare_insert: form the tuple and stamp xmin and cmin."""
    tup = heap_form_tuple(rel.desc, values)
    _XMIN_XMAX_CID.pack_into(tup, 0, xid, 0, cid)
    if options & HEAP_INSERT_FROZEN:
        _U16.pack_into(tup, 20, _U16.unpack_from(tup, 20)[0] | HEAP_XMIN_FROZEN)
    return tup


def heap_insert(rel, values: Sequence[Any], cid: int | None = None, options: int = 0
                ) -> tuple[int, int]:
    """heap_insert: store a new row; returns its tid. NOT NULL and the like are
    the executor's business; a row over 8160 bytes is 54000."""
    xid = xact.get_current_transaction_id()
    if cid is None:
        cid = xact.get_current_command_id(True)
    tup = _prepare_insert(rel, values, xid, cid, options)
    buffer = relation_get_buffer_for_tuple(rel, len(tup), bufmgr.InvalidBuffer, options)
    try:
        page = bufmgr.buffer_get_page(buffer)
        blkno = bufmgr.buffer_get_block_number(buffer)
        offnum = relation_put_heap_tuple(rel, buffer, tup, blkno)
        flags = 0
        if bp.page_is_all_visible(page):
            bp.page_clear_all_visible(page)
            flags = XLH_INSERT_ALL_VISIBLE_CLEARED
        bufmgr.mark_buffer_dirty(buffer)
        if relation_needs_wal(rel):
            bp.page_set_lsn(page, log_heap_insert(rel, page, blkno, offnum, tup, xid, flags))
    except BaseException as exc:
        _critical_section_failed(exc)
        raise
    finally:
        bufmgr.unlock_release_buffer(buffer)
    ps = rel.pgstat_info or pgstat_init_relation(rel)  # pgstat_count_heap_insert
    ps.x_ins += 1
    _touch(ps)
    return blkno, offnum


def heap_multi_insert(rel, rows: Sequence[Sequence[Any]], cid: int | None = None,
                      options: int = 0) -> list[tuple[int, int]]:
    """heap_multi_insert: insert many rows, filling each page before WAL-logging
    it as one XLOG_HEAP2_MULTI_INSERT (COPY)."""
    if not rows:
        return []
    xid = xact.get_current_transaction_id()
    if cid is None:
        cid = xact.get_current_command_id(True)
    tups = [_prepare_insert(rel, r, xid, cid, options) for r in rows]
    save_free_space = relation_get_target_page_free_space(rel)
    needwal = relation_needs_wal(rel)
    tids: list[tuple[int, int]] = []
    ndone = 0
    ntuples = len(tups)
    while ndone < ntuples:
        buffer = relation_get_buffer_for_tuple(rel, len(tups[ndone]), bufmgr.InvalidBuffer,
                                               options)
        try:
            page = bufmgr.buffer_get_page(buffer)
            blkno = bufmgr.buffer_get_block_number(buffer)
            starting_with_empty_page = bp.page_get_max_offset_number(page) == 0
            placed: list[bytearray] = []
            offnums: list[int] = []
            # The first tuple always fits (RelationGetBufferForTuple said so).
            offnums.append(relation_put_heap_tuple(rel, buffer, tups[ndone], blkno))
            placed.append(tups[ndone])
            nthispage = 1
            while ndone + nthispage < ntuples:
                tup = tups[ndone + nthispage]
                if bp.page_get_heap_free_space(page) < ((len(tup) + 7) & ~7) + save_free_space:
                    break
                offnums.append(relation_put_heap_tuple(rel, buffer, tup, blkno))
                placed.append(tup)
                nthispage += 1
            if bp.page_is_all_visible(page):
                bp.page_clear_all_visible(page)
            bufmgr.mark_buffer_dirty(buffer)
            if needwal:
                lsn = log_heap_multi_insert(rel, page, blkno, offnums, placed, xid,
                                            starting_with_empty_page,
                                            ndone + nthispage == ntuples)
                bp.page_set_lsn(page, lsn)
        except BaseException as exc:
            _critical_section_failed(exc)
            raise
        finally:
            bufmgr.unlock_release_buffer(buffer)
        tids.extend((blkno, o) for o in offnums)
        ndone += nthispage
    ps = rel.pgstat_info or pgstat_init_relation(rel)  # pgstat_count_heap_insert
    ps.x_ins += ntuples
    _touch(ps)
    return tids


# -- delete -------------------------------------------------------------------------------------

def _wait_for_modifier(rel, buffer: int, page, blkno: int, offnum: int, off: int,
                       tuplock: _TupleLock, oper: int, wait_policy: int = LockWaitBlock
                       ) -> tuple[bool, bool]:
    """The TM_BeingModified branch shared by delete, update and lock: wait for the
    tuple's xmax to finish (the buffer lock is released meanwhile and held again
    on return). Returns (retry from the top, may continue)."""
    xwait = _U32.unpack_from(page, off + 4)[0]
    infomask = _U16.unpack_from(page, off + 20)[0]
    cur = _xst.xid
    if cur and xwait == cur:
        return False, True  # only our own lock: nothing to wait for
    bufmgr.lock_buffer(buffer, BUFFER_LOCK_UNLOCK)
    try:
        got = tuplock.acquire(wait_policy)
        if got:
            if wait_policy == LockWaitBlock:
                _xact_lock_table_wait(rel, xwait, (blkno, offnum), oper)
            else:
                got = _conditional_xact_lock_table_wait(xwait)
                if not got and wait_policy == LockWaitError:
                    raise PgError("55P03", "could not obtain lock on row in relation "
                                           f'"{rel.relname}"')
    finally:
        bufmgr.lock_buffer(buffer, BUFFER_LOCK_EXCLUSIVE)  # the caller unlocks
    if not got:
        raise _WouldBlock()
    off = _item_offset(page, offnum)[0]
    new_infomask = _U16.unpack_from(page, off + 20)[0]
    if (new_infomask & _XMAX_INTERESTING) != (infomask & _XMAX_INTERESTING) or \
            _U32.unpack_from(page, off + 4)[0] != xwait:
        return True, False  # xmax changed meanwhile: start over
    _update_xmax_hint_bits(page, off, buffer, xwait)
    infomask = _U16.unpack_from(page, off + 20)[0]
    return False, bool(infomask & HEAP_XMAX_INVALID) or xmax_is_locked_only(infomask)


class _WouldBlock(Exception):
    pass


def heap_delete(rel, tid: tuple[int, int], cid: int | None = None, snapshot=None, *,
                crosscheck=None, wait: bool = True) -> HeapResult:
    """heap_delete: mark the tuple at ``tid`` deleted by this transaction.
    ``snapshot`` is accepted for the table AM's signature and not used (as in
    heapam_tuple_delete); ``crosscheck`` is PostgreSQL's crosscheck snapshot
    (the tuple must also be visible to it, else TM_Updated)."""
    xid = _xst.xid or xact.get_current_transaction_id()
    if cid is None:
        cid = xact.get_current_command_id(True)
    blkno, offnum = tid
    buffer = bufmgr.read_buffer(rel.smgr, blkno)
    bufmgr.lock_buffer(buffer, BUFFER_LOCK_EXCLUSIVE)
    tuplock = _TupleLock(rel, tid, LockTupleExclusive)
    try:
        page = bufmgr.buffer_get_page(buffer)
        if offnum > _max_offset(page) or _item_offset(page, offnum)[1] != bp.LP_NORMAL:
            # Pruned away meanwhile: it was deleted (or updated) long ago.
            return HeapResult(TM_Deleted, tid)
        while True:
            off = _item_offset(page, offnum)[0]
            result = heap_tuple_satisfies_update(page, off, cid, buffer, blkno, offnum)
            if result == TM_Invisible:
                raise PgError("55000", "attempted to delete invisible tuple")
            if result == TM_BeingModified and wait:
                retry, can_continue = _wait_for_modifier(rel, buffer, page, blkno, offnum, off,
                                                         tuplock, XLTW_DELETE)
                if retry:
                    continue
                off = _item_offset(page, offnum)[0]
                if can_continue:
                    result = TM_Ok
                elif _ctid(page, off) != (blkno, offnum):
                    result = TM_Updated
                else:
                    result = TM_Deleted
            if crosscheck is not None and result == TM_Ok and \
                    not heap_tuple_satisfies_visibility(page, off, crosscheck, buffer):
                result = TM_Updated
            if result != TM_Ok:
                return _failure(page, off, result)
            break
        store_cid, iscombo = _adjust_cmax(page, off, cid)
        try:
            bp.page_set_prunable(page, xid)
            flags = 0
            if bp.page_is_all_visible(page):
                bp.page_clear_all_visible(page)
                flags = XLH_DELETE_ALL_VISIBLE_CLEARED
            infomask2, infomask = _INFOMASKS.unpack_from(page, off + 18)
            infomask &= ~(HEAP_XMAX_BITS | HEAP_MOVED)
            infomask2 = (infomask2 & ~(HEAP_KEYS_UPDATED | HEAP_HOT_UPDATED)) | HEAP_KEYS_UPDATED
            _INFOMASKS.pack_into(page, off + 18, infomask2, infomask)
            _U32.pack_into(page, off + 4, xid)
            _set_cmax(page, off, store_cid, iscombo)
            _set_ctid(page, off, tid)
            bufmgr.mark_buffer_dirty(buffer)
            if relation_needs_wal(rel):
                lsn = log_heap_delete(rel, page, blkno, offnum, xid,
                                      compute_infobits(infomask, infomask2), xid, flags)
                bp.page_set_lsn(page, lsn)
        except BaseException as exc:
            _critical_section_failed(exc)
            raise
        ps = rel.pgstat_info or pgstat_init_relation(rel)  # pgstat_count_heap_delete
        ps.x_del += 1
        _touch(ps)
        return HeapResult(TM_Ok, tid)
    finally:
        bufmgr.unlock_release_buffer(buffer)
        tuplock.release()


# -- update -------------------------------------------------------------------------------------

def heap_update(rel, otid: tuple[int, int], values: Sequence[Any], cid: int | None = None,
                snapshot=None, *, crosscheck=None, wait: bool = True) -> HeapResult:
    """heap_update: replace the tuple at ``otid`` by a new version with
    ``values`` (see the module docstring for the protocol). ``snapshot`` is
    accepted for the table AM's signature and unused; ``crosscheck`` as in
    heap_delete. On TM_Ok, result.new_tid is the new version and
    result.update_indexes is False for a HOT update."""
    xid = _xst.xid or xact.get_current_transaction_id()
    if cid is None:
        cid = xact.get_current_command_id(True)
    blkno, offnum = otid
    desc = rel.desc
    newtup = heap_form_tuple(desc, values)
    if len(newtup) > MaxHeapTupleSize:
        raise PgError("54000", f"row is too big: size {(len(newtup) + 7) & ~7}, "
                               f"maximum size {MaxHeapTupleSize}")
    reln = rel.smgr
    buffer = bufmgr.read_buffer(reln, blkno)
    bufmgr.lock_buffer(buffer, BUFFER_LOCK_EXCLUSIVE)
    page = bufmgr.buffer_get_page(buffer)
    newbuf = bufmgr.InvalidBuffer
    locked = True  # buffer's content lock
    info = _rel_info(rel)
    tuplock: _TupleLock | None = None
    try:
        if offnum > _max_offset(page) or _item_offset(page, offnum)[1] != bp.LP_NORMAL:
            return HeapResult(TM_Deleted, otid)
        off = _item_offset(page, offnum)[0]
        modified = _modified_attrs(desc, page, off, values, info.interesting) \
            if info.interesting else _NOTHING
        key_intact = not (modified & info.key_attrs)
        lockmode = LockTupleNoKeyExclusive if key_intact else LockTupleExclusive
        tuplock = _TupleLock(rel, otid, lockmode)
        while True:
            off = _item_offset(page, offnum)[0]
            result = heap_tuple_satisfies_update(page, off, cid, buffer, blkno, offnum)
            if result == TM_Invisible:
                raise PgError("55000", "attempted to update invisible tuple")
            if result == TM_BeingModified and wait:
                retry, can_continue = _wait_for_modifier(rel, buffer, page, blkno, offnum, off,
                                                         tuplock, XLTW_UPDATE)
                if retry:
                    continue
                off = _item_offset(page, offnum)[0]
                if can_continue:
                    result = TM_Ok
                elif _ctid(page, off) != otid:
                    result = TM_Updated
                else:
                    result = TM_Deleted
            if crosscheck is not None and result == TM_Ok and \
                    not heap_tuple_satisfies_visibility(page, off, crosscheck, buffer):
                result = TM_Updated
            if result != TM_Ok:
                return _failure(page, off, result)
            break

        store_cid, iscombo = _adjust_cmax(page, off, cid)
        # The new version: xmin = us, cmin = cid, xmax invalid, HEAP_UPDATED.
        _XMIN_XMAX_CID.pack_into(newtup, 0, xid, 0, cid)
        _U16.pack_into(newtup, 20, _U16.unpack_from(newtup, 20)[0] | HEAP_UPDATED)
        newtupsize = (len(newtup) + 7) & ~7
        pagefree = bp.page_get_heap_free_space(page)
        if newtupsize > pagefree:
            # It goes to another page: lock the old version (xmax = us, lock only)
            # while the buffer lock is released to find room.
            try:
                infomask2, infomask = _INFOMASKS.unpack_from(page, off + 18)
                infomask = (infomask & ~(HEAP_XMAX_BITS | HEAP_MOVED)) \
                    | HEAP_XMAX_LOCK_ONLY | HEAP_XMAX_EXCL_LOCK
                infomask2 &= ~(HEAP_KEYS_UPDATED | HEAP_HOT_UPDATED)
                if not key_intact:
                    infomask2 |= HEAP_KEYS_UPDATED
                _INFOMASKS.pack_into(page, off + 18, infomask2, infomask)
                _U32.pack_into(page, off + 4, xid)
                _set_cmax(page, off, store_cid, iscombo)
                _set_ctid(page, off, otid)
                bufmgr.mark_buffer_dirty(buffer)
                if relation_needs_wal(rel):
                    lsn = log_heap_lock(rel, page, blkno, offnum, xid,
                                        compute_infobits(infomask, infomask2), xid)
                    bp.page_set_lsn(page, lsn)
            except BaseException as exc:
                _critical_section_failed(exc)
                raise
            bufmgr.lock_buffer(buffer, BUFFER_LOCK_UNLOCK)
            locked = False
            newbuf = relation_get_buffer_for_tuple(rel, len(newtup), buffer)
            locked = True  # it locked ``buffer`` too
            off = _item_offset(page, offnum)[0]
        else:
            newbuf = buffer

        use_hot = newbuf == buffer and not (modified & info.hot_attrs)
        try:
            if newbuf != buffer:
                bp.page_set_full(page)  # hint: the old page could use pruning
            new2 = _U16.unpack_from(newtup, 18)[0] & ~(HEAP_ONLY_TUPLE | HEAP_HOT_UPDATED)
            if use_hot:
                new2 |= HEAP_ONLY_TUPLE
            _U16.pack_into(newtup, 18, new2)
            newpage = bufmgr.buffer_get_page(newbuf)
            newblk = bufmgr.buffer_get_block_number(newbuf)
            new_offnum = relation_put_heap_tuple(rel, newbuf, newtup, newblk)
            infomask2, infomask = _INFOMASKS.unpack_from(page, off + 18)
            infomask &= ~(HEAP_XMAX_BITS | HEAP_MOVED)
            infomask2 &= ~(HEAP_KEYS_UPDATED | HEAP_HOT_UPDATED)
            if not key_intact:
                infomask2 |= HEAP_KEYS_UPDATED
            if use_hot:
                infomask2 |= HEAP_HOT_UPDATED
            _INFOMASKS.pack_into(page, off + 18, infomask2, infomask)
            _U32.pack_into(page, off + 4, xid)
            _set_cmax(page, off, store_cid, iscombo)
            _set_ctid(page, off, (newblk, new_offnum))
            bp.page_set_prunable(page, xid)
            if bp.page_is_all_visible(page):
                bp.page_clear_all_visible(page)
            if newbuf != buffer:
                if bp.page_is_all_visible(newpage):
                    bp.page_clear_all_visible(newpage)
                bufmgr.mark_buffer_dirty(newbuf)
            bufmgr.mark_buffer_dirty(buffer)
            if relation_needs_wal(rel):
                old_data = bp.page_get_item(page, offnum)
                lsn = log_heap_update(rel, page, newpage, blkno, newblk, offnum, xid,
                                      compute_infobits(infomask, infomask2), old_data,
                                      new_offnum, newtup, use_hot, xid)
                if newbuf != buffer:
                    bp.page_set_lsn(newpage, lsn)
                bp.page_set_lsn(page, lsn)
        except BaseException as exc:
            _critical_section_failed(exc)
            raise
        ps = rel.pgstat_info or pgstat_init_relation(rel)  # pgstat_count_heap_update
        ps.x_upd += 1
        if use_hot:
            ps.tuples_hot_updated += 1
        _touch(ps)
        return HeapResult(TM_Ok, otid, new_tid=(newblk, new_offnum), update_indexes=not use_hot)
    finally:
        if newbuf != bufmgr.InvalidBuffer and newbuf != buffer:
            bufmgr.unlock_release_buffer(newbuf)
        if locked:
            bufmgr.unlock_release_buffer(buffer)
        else:
            bufmgr.release_buffer(buffer)
        if tuplock is not None:
            tuplock.release()


# -- row locks ----------------------------------------------------------------------------------

def heap_lock_tuple(rel, tid: tuple[int, int], cid: int | None = None,
                    mode: int = LockTupleExclusive, wait_policy: int = LockWaitBlock, *,
                    find_last_version: bool = False) -> HeapResult:
    """heap_lock_tuple (with heapam_tuple_lock's TUPLE_LOCK_FLAG_FIND_LAST_VERSION
    when ``find_last_version``): lock the row version at ``tid`` against
    concurrent updates until the transaction ends (SELECT ... FOR [NO KEY]
    UPDATE, EvalPlanQual). If it was updated by a committed transaction and
    ``find_last_version`` is set, follow the update chain (waiting for
    in-progress updaters) and lock the newest version instead. On TM_Ok,
    ``result.new_tid`` is the version locked and ``result.values`` its values.
    Only LockTupleNoKeyExclusive and LockTupleExclusive exist here (no
    MultiXacts, so no shared row locks)."""
    if mode not in (LockTupleNoKeyExclusive, LockTupleExclusive):
        raise PgError("0A000", "FOR SHARE and FOR KEY SHARE row locks are not supported")
    xid = _xst.xid or xact.get_current_transaction_id()
    if cid is None:
        cid = xact.get_current_command_id(False)
    while True:
        res = _lock_one(rel, tid, cid, mode, wait_policy, xid, XLTW_LOCK)
        if res.status != TM_Updated or not find_last_version:
            return res
        nxt = _follow_update(rel, tid, res.ctid, res.xmax, cid)
        if nxt is None:
            return HeapResult(TM_Deleted, tid, res.xmax)
        tid = nxt


def _follow_update(rel, tid, ctid, prior_xmax: int, cid: int) -> tuple[int, int] | None:
    """heapam_tuple_lock's chain walk: the tid of the newest committed-or-ours
    version after ``tid`` (waiting for an in-progress inserter), or None if
    the row was deleted."""
    from utils.snapmgr import new_dirty_snapshot

    snap = new_dirty_snapshot()
    while True:
        buffer = bufmgr.read_buffer(rel.smgr, ctid[0])
        bufmgr.lock_buffer(buffer, BUFFER_LOCK_SHARE)
        try:
            page = bufmgr.buffer_get_page(buffer)
            if ctid[1] > _max_offset(page) or _item_offset(page, ctid[1])[1] != bp.LP_NORMAL:
                return None
            off = _item_offset(page, ctid[1])[0]
            xmin = _U32.unpack_from(page, off)[0]
            if xmin != prior_xmax:
                return None  # the slot was reused for an unrelated tuple
            visible = heap_tuple_satisfies_visibility(page, off, snap, buffer)
            nxt = _ctid(page, off)
            xmax = _U32.unpack_from(page, off + 4)[0]
        finally:
            bufmgr.unlock_release_buffer(buffer)
        if visible:
            if snap.xmin:
                _xact_lock_table_wait(rel, snap.xmin, ctid, XLTW_FETCH_UPDATED)
                continue
            return ctid  # live (maybe being updated: _lock_one waits for that)
        if nxt == ctid:
            return None  # deleted
        prior_xmax = xmax
        ctid = nxt


def _lock_one(rel, tid, cid: int, mode: int, wait_policy: int, xid: int, oper: int
              ) -> HeapResult:
    blkno, offnum = tid
    buffer = bufmgr.read_buffer(rel.smgr, blkno)
    bufmgr.lock_buffer(buffer, BUFFER_LOCK_EXCLUSIVE)
    tuplock = _TupleLock(rel, tid, mode)
    try:
        page = bufmgr.buffer_get_page(buffer)
        if offnum > _max_offset(page) or _item_offset(page, offnum)[1] != bp.LP_NORMAL:
            return HeapResult(TM_Deleted, tid)
        while True:
            off = _item_offset(page, offnum)[0]
            result = heap_tuple_satisfies_update(page, off, cid, buffer, blkno, offnum)
            if result == TM_Invisible:
                return _failure(page, off, TM_Invisible)
            if result == TM_BeingModified:
                xmax = _U32.unpack_from(page, off + 4)[0]
                infomask = _U16.unpack_from(page, off + 20)[0]
                if xmax == _xst.xid and xmax_is_locked_only(infomask):
                    # Already locked by us: keep the stronger mode.
                    if mode == LockTupleExclusive and \
                            not _U16.unpack_from(page, off + 18)[0] & HEAP_KEYS_UPDATED:
                        break
                    return HeapResult(TM_Ok, tid, new_tid=tid,
                                      values=_deform(rel.desc, page, off))
                try:
                    retry, can_continue = _wait_for_modifier(
                        rel, buffer, page, blkno, offnum, off, tuplock, oper, wait_policy)
                except _WouldBlock:
                    return _failure(page, _item_offset(page, offnum)[0], TM_WouldBlock)
                if retry:
                    continue
                off = _item_offset(page, offnum)[0]
                if can_continue:
                    break
                return _failure(page, off, TM_Deleted if _ctid(page, off) == tid
                                else TM_Updated)
            if result != TM_Ok:
                return _failure(page, off, result)
            break
        try:
            infomask2, infomask = _INFOMASKS.unpack_from(page, off + 18)
            infomask = (infomask & ~(HEAP_XMAX_BITS | HEAP_MOVED)) \
                | HEAP_XMAX_LOCK_ONLY | HEAP_XMAX_EXCL_LOCK
            infomask2 &= ~(HEAP_KEYS_UPDATED | HEAP_HOT_UPDATED)
            if mode == LockTupleExclusive:
                infomask2 |= HEAP_KEYS_UPDATED
            # A lock keeps the HOT chain link of an updated tuple? No: only
            # unchanged rows (xmax invalid or lock-only) get here.
            _INFOMASKS.pack_into(page, off + 18, infomask2, infomask)
            _U32.pack_into(page, off + 4, xid)
            _set_ctid(page, off, tid)
            bufmgr.mark_buffer_dirty(buffer)
            if relation_needs_wal(rel):
                lsn = log_heap_lock(rel, page, blkno, offnum, xid,
                                    compute_infobits(infomask, infomask2), xid)
                bp.page_set_lsn(page, lsn)
        except BaseException as exc:
            _critical_section_failed(exc)
            raise
        return HeapResult(TM_Ok, tid, new_tid=tid, values=_deform(rel.desc, page, off))
    finally:
        bufmgr.unlock_release_buffer(buffer)
        tuplock.release()


# -- fetching -----------------------------------------------------------------------------------

def heap_fetch(rel, tid: tuple[int, int], snapshot) -> list[Any] | None:
    """heap_fetch: the values of the tuple at ``tid`` if ``snapshot`` sees it,
    else None (a dirty snapshot records in-progress xmin/xmax). As in
    PostgreSQL it does not prune the page: its callers follow t_ctid links
    (EvalPlanQual, heap_get_latest_tid) that pruning would cut."""
    blkno, offnum = tid
    buffer = bufmgr.read_buffer(rel.smgr, blkno)
    bufmgr.lock_buffer(buffer, BUFFER_LOCK_SHARE)
    try:
        page = bufmgr.buffer_get_page(buffer)
        if offnum < 1 or offnum > _max_offset(page):
            return None
        off, flags = _item_offset(page, offnum)
        if flags != bp.LP_NORMAL:
            return None
        if snapshot.kind == KIND_MVCC:
            visible = heap_tuple_satisfies_mvcc(page, off, snapshot, buffer)
        else:
            visible = heap_tuple_satisfies_visibility(page, off, snapshot, buffer)
        return _deform(rel.desc, page, off) if visible else None
    finally:
        bufmgr.unlock_release_buffer(buffer)


# Visible versions found through index entries (heap_hot_search, IndexFetchHeap),
# a running count: an index scan credits the difference to its index as
# idx_tup_fetch (access.nbtree.nbtsearch.BTScan.__iter__).
index_fetches = [0, 0]  # [found, credited to some index]

# xmin, xmax, t_infomask2, t_infomask
_HOT_HDR = struct.Struct("<II10xHH")
_BOTH_COMMITTED = HEAP_XMIN_COMMITTED | HEAP_XMAX_COMMITTED
_LOCK_BITS = HEAP_XMAX_LOCK_ONLY | 0x1000 | 0x0050  # LOCK_ONLY | IS_MULTI | LOCK_MASK
# A chain walk that passes this many versions its snapshot cannot see makes the
# fetch prune the page (see access/pruneheap.py's docstring).
HOT_CHAIN_PRUNE_THRESHOLD = 16


def _hot_search_buffer(page, buffer: int, offnum: int, snapshot, want_all_dead: bool
                       ) -> tuple[int, int, bool, int]:
    """heap_hot_search_buffer (first call): follow the HOT chain from line
    pointer ``offnum``. Returns (offnum, lp_off) of the version the snapshot
    sees or (0, 0), whether every member is dead to everybody (if asked), and
    how many members were skipped as deleted before the snapshot."""
    all_dead = want_all_dead
    prev_xmax = 0
    at_chain_start = True
    maxoff = _max_offset(page)
    mvcc = snapshot.kind == KIND_MVCC
    smin = snapshot.xmin
    skipped = 0
    unpack_lp = _ITEMID.unpack_from
    unpack_hdr = _HOT_HDR.unpack_from
    while 0 < offnum <= maxoff:
        w = unpack_lp(page, _SIZEOF_HDR + 4 * (offnum - 1))[0]
        flags = (w >> 15) & 3
        off = w & 0x7FFF
        if flags != 1:  # LP_NORMAL
            if flags == 2 and at_chain_start:  # LP_REDIRECT
                offnum = off
                at_chain_start = False
                continue
            break
        xmin, xmax, infomask2, infomask = unpack_hdr(page, off)
        if at_chain_start and infomask2 & HEAP_ONLY_TUPLE:
            break
        if prev_xmax and xmin != prev_xmax:
            break
        if mvcc and infomask & _BOTH_COMMITTED == _BOTH_COMMITTED and \
                not infomask & _LOCK_BITS and ((xmax - smin) & 0xFFFFFFFF) >= 0x80000000:
            # Inserted and deleted by transactions that both committed before
            # the snapshot (hint bits say so): invisible, no need to ask.
            skipped += 1
            valid = False
        elif mvcc:
            valid = heap_tuple_satisfies_mvcc(page, off, snapshot, buffer)
        else:
            valid = heap_tuple_satisfies_visibility(page, off, snapshot, buffer)
        if valid:
            return offnum, off, False, skipped
        if all_dead and not heap_tuple_is_surely_dead(page, off):
            all_dead = False
        if infomask2 & HEAP_HOT_UPDATED:
            offnum = _U16.unpack_from(page, off + 16)[0]
            at_chain_start = False
            prev_xmax = xmax
        else:
            break
    return 0, 0, all_dead, skipped


def heap_hot_search(rel, root_tid: tuple[int, int], snapshot, count: bool = True
                    ) -> tuple[tuple[int, int], list[Any]] | None:
    """heap_hot_search: the version of the HOT chain rooted at ``root_tid`` (an
    index entry's tid) that ``snapshot`` sees, as (tid, values), or None.
    ``count``: an index scan's fetch (index_fetches); a unique check's is not."""
    blkno, offnum = root_tid
    buffer = bufmgr.read_buffer(rel.smgr, blkno)
    heap_page_prune_opt(rel, buffer)
    bufmgr.lock_buffer(buffer, BUFFER_LOCK_SHARE)
    skipped = 0
    try:
        page = bufmgr.buffer_get_page(buffer)
        found, off, _all_dead, skipped = _hot_search_buffer(page, buffer, offnum, snapshot,
                                                            False)
        if not found:
            return None
        if count:
            index_fetches[0] += 1  # index_fetch_heap's count, credited by the index scan
        return (blkno, found), _deform(rel.desc, page, off)
    finally:
        bufmgr.lock_buffer(buffer, BUFFER_LOCK_UNLOCK)
        if skipped >= HOT_CHAIN_PRUNE_THRESHOLD:
            heap_page_prune_opt(rel, buffer, force=True)
        bufmgr.release_buffer(buffer)


class IndexFetchHeap:
    """IndexFetchHeapData: heap fetches for an index scan, keeping the last
    heap page pinned between calls (index scans often revisit it) and telling
    the index AM when a whole chain is dead (``all_dead``: kill the index item)."""

    __slots__ = ("rel", "buffer", "blkno", "all_dead")

    def __init__(self, rel) -> None:
        self.rel = rel
        self.buffer = bufmgr.InvalidBuffer
        self.blkno = -1
        self.all_dead = False

    def fetch(self, root_tid: tuple[int, int], snapshot, want_all_dead: bool = False
              ) -> tuple[tuple[int, int], list[Any]] | None:
        """heapam_index_fetch_tuple: (tid, values) of the visible version, or None."""
        blkno, offnum = root_tid
        buffer = self.buffer
        if blkno != self.blkno:
            if buffer:
                bufmgr.release_buffer(buffer)
                self.buffer = bufmgr.InvalidBuffer
            buffer = self.buffer = bufmgr.read_buffer(self.rel.smgr, blkno)
            self.blkno = blkno
            heap_page_prune_opt(self.rel, buffer)
        bufmgr.lock_buffer(buffer, BUFFER_LOCK_SHARE)
        skipped = 0
        try:
            page = bufmgr.buffer_get_page(buffer)
            found, off, self.all_dead, skipped = _hot_search_buffer(
                page, buffer, offnum, snapshot, want_all_dead)
            if not found:
                return None
            index_fetches[0] += 1
            return (blkno, found), _deform(self.rel.desc, page, off)
        finally:
            bufmgr.lock_buffer(buffer, BUFFER_LOCK_UNLOCK)
            if skipped >= HOT_CHAIN_PRUNE_THRESHOLD:
                heap_page_prune_opt(self.rel, buffer, force=True)

    def end(self) -> None:
        """heapam_index_fetch_end: drop the pin."""
        if self.buffer:
            bufmgr.release_buffer(self.buffer)
        self.buffer = bufmgr.InvalidBuffer
        self.blkno = -1

    reset = end


def heap_get_latest_tid(rel, tid: tuple[int, int], snapshot) -> tuple[int, int]:
    """heap_get_latest_tid: follow t_ctid links from ``tid`` to the newest version
    ``snapshot`` sees (currtid_byreloid, WHERE CURRENT OF)."""
    ctid = tid
    result = tid
    prior_xmax = 0
    while True:
        buffer = bufmgr.read_buffer(rel.smgr, ctid[0])
        bufmgr.lock_buffer(buffer, BUFFER_LOCK_SHARE)
        try:
            page = bufmgr.buffer_get_page(buffer)
            offnum = ctid[1]
            if offnum < 1 or offnum > _max_offset(page):
                break
            off, flags = _item_offset(page, offnum)
            if flags != bp.LP_NORMAL:
                break
            xmin = _U32.unpack_from(page, off)[0]
            if prior_xmax and xmin != prior_xmax:
                break
            if heap_tuple_satisfies_visibility(page, off, snapshot, buffer):
                result = ctid
            infomask = _U16.unpack_from(page, off + 20)[0]
            nxt = _ctid(page, off)
            if infomask & HEAP_XMAX_INVALID or heap_tuple_header_is_only_locked(page, off) \
                    or nxt == ctid:
                break
            prior_xmax = _U32.unpack_from(page, off + 4)[0]
            ctid = nxt
        finally:
            bufmgr.unlock_release_buffer(buffer)
    return result


# -- scans ------------------------------------------------------------------------------------------

def heap_nblocks(rel) -> int:
    """RelationGetNumberOfBlocks."""
    return smgr.smgr_nblocks(rel.smgr, MAIN_FORKNUM)


def heapgetpage(rel, blkno: int, snapshot) -> list[tuple[tuple[int, int], list[Any]]]:
    """heapgetpage: the visible tuples of one page, as (tid, values), collected
    under one share lock after pruning the page if worthwhile."""
    buffer = bufmgr.read_buffer(rel.smgr, blkno)
    heap_page_prune_opt(rel, buffer)
    bufmgr.lock_buffer(buffer, BUFFER_LOCK_SHARE)
    out: list[tuple[tuple[int, int], list[Any]]] = []
    try:
        page = bufmgr.buffer_get_page(buffer)
        maxoff = _max_offset(page)
        if not maxoff:
            return out
        desc = rel.desc
        c = desc._compiled
        if c is None:
            c = compiled(desc)
        deform = c.deform
        words = struct.unpack_from(f"<{maxoff}I", page, _SIZEOF_HDR)
        mvcc = snapshot.kind == KIND_MVCC
        smin = snapshot.xmin
        unpack_hdr = _SCAN_HDR.unpack_from
        for i, w in enumerate(words):
            if (w >> 15) & 3 != 1:  # LP_NORMAL
                continue
            off = w & 0x7FFF
            xmin, infomask2, infomask, hoff = unpack_hdr(page, off)
            if mvcc and infomask & 0x0900 == 0x0900 and (
                    infomask & 0x0300 == 0x0300 or ((xmin - smin) & 0xFFFFFFFF) >= 0x80000000):
                pass  # xmin committed before the snapshot, xmax invalid: visible
            elif not (heap_tuple_satisfies_mvcc(page, off, snapshot, buffer) if mvcc else
                      heap_tuple_satisfies_visibility(page, off, snapshot, buffer)):
                continue
            natts = infomask2 & 0x07FF
            bits = bytes(page[off + 23:off + 23 + ((natts + 7) >> 3)]) if infomask & 1 else None
            out.append(((blkno, i + 1), deform(page, off + hoff, natts, bits)))
    finally:
        bufmgr.unlock_release_buffer(buffer)
    return out


# xmin, then t_infomask2, t_infomask, t_hoff at 18..22.
_SCAN_HDR = struct.Struct("<I14xHHB")


def heap_scan(rel, snapshot, start_block: int = 0, nblocks: int | None = None
              ) -> Iterator[tuple[tuple[int, int], list[Any]]]:
    """heap_beginscan + heap_getnext in page-at-a-time mode: every tuple
    ``snapshot`` sees, as (tid, values), in physical order. The relation's
    length is taken at the start (rows added past it later are not seen, as in
    PostgreSQL); no buffer stays pinned between yields."""
    if nblocks is None:
        nblocks = heap_nblocks(rel)
    ps = rel.pgstat_info or pgstat_init_relation(rel)
    ps.numscans += 1  # initscan's pgstat_count_heap_scan
    for blkno in range(start_block, nblocks):
        rows = heapgetpage(rel, blkno, snapshot)
        # heap_getnext's pgstat_count_heap_getnext, for the page at once; what a
        # consumer that stops early (LIMIT) never took is taken back.
        ps.tuples_returned += len(rows)
        it = iter(rows)
        try:
            yield from it
        except GeneratorExit:
            ps.tuples_returned -= length_hint(it)
            raise


def heap_index_build_scan(rel, oldest_xmin: int | None = None
                          ) -> Iterator[tuple[tuple[int, int], list[Any], bool]]:
    """heapam_index_build_range_scan: every tuple an index build must index, as
    (root tid, values, is_live): live ones, recently dead ones (other snapshots
    may still need them), in-progress ones; a HOT chain only through its newest
    member not known dead, reported at the chain's root line pointer."""
    if oldest_xmin is None:
        oldest_xmin = global_vis_horizon()
    desc = rel.desc
    nblocks = heap_nblocks(rel)
    ps = rel.pgstat_info or pgstat_init_relation(rel)
    ps.numscans += 1  # a seq scan with SnapshotAny, as table_beginscan_strat's
    for blkno in range(nblocks):
        buffer = bufmgr.read_buffer(rel.smgr, blkno)
        heap_page_prune_opt(rel, buffer)
        bufmgr.lock_buffer(buffer, BUFFER_LOCK_SHARE)
        out = []
        try:
            page = bufmgr.buffer_get_page(buffer)
            roots = heap_get_root_tuples(page)
            for offnum in range(1, _max_offset(page) + 1):
                off, flags = _item_offset(page, offnum)
                if flags != bp.LP_NORMAL:
                    continue
                ps.tuples_returned += 1  # heap_getnext returns every tuple to SnapshotAny
                state = heap_tuple_satisfies_vacuum(page, off, oldest_xmin, buffer)
                infomask2 = _U16.unpack_from(page, off + 18)[0]
                hot_updated = bool(infomask2 & HEAP_HOT_UPDATED)
                if state == HEAPTUPLE_DEAD:
                    continue
                if state in (HEAPTUPLE_LIVE, HEAPTUPLE_INSERT_IN_PROGRESS):
                    is_live = True
                    index_it = True
                elif state in (HEAPTUPLE_RECENTLY_DEAD, HEAPTUPLE_DELETE_IN_PROGRESS):
                    is_live = False
                    index_it = not hot_updated
                else:
                    continue
                if not index_it:
                    continue
                root = roots[offnum] if infomask2 & HEAP_ONLY_TUPLE else offnum
                if not root:
                    raise PgError("XX001", f'failed to find parent tuple for heap-only tuple at '
                                           f'({blkno},{offnum}) in table "{rel.relname}"')
                out.append(((blkno, root), _deform(desc, page, off), is_live))
        finally:
            bufmgr.unlock_release_buffer(buffer)
        yield from out


# -- inspection (pageinspect's heap_page_items) -------------------------------------------------

def heap_page_items(rel, blkno: int) -> list[dict[str, Any]]:
    """pageinspect's heap_page_items: every line pointer of a page and its
    tuple header (for tests and DBAs)."""
    buffer = bufmgr.read_buffer(rel.smgr, blkno)
    bufmgr.lock_buffer(buffer, BUFFER_LOCK_SHARE)
    try:
        page = bufmgr.buffer_get_page(buffer)
        items = []
        for offnum in range(1, _max_offset(page) + 1):
            off, flags, length = bp.item_id(page, offnum)
            row: dict[str, Any] = {"lp": offnum, "lp_off": off, "lp_flags": flags,
                                   "lp_len": length}
            if flags == bp.LP_NORMAL:
                xmin, xmax, tcid = _XMIN_XMAX_CID.unpack_from(page, off)
                infomask2, infomask = _INFOMASKS.unpack_from(page, off + 18)
                row.update(t_xmin=xmin, t_xmax=xmax, t_field3=tcid, t_ctid=_ctid(page, off),
                           t_infomask2=infomask2, t_infomask=infomask, t_hoff=page[off + 22])
            items.append(row)
        return items
    finally:
        bufmgr.unlock_release_buffer(buffer)


_ = (_precedes, TM_WouldBlock, TM_BeingModified, _rel_smgr, _deform)
