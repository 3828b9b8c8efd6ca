"""Heap tuple visibility — mirrors src/backend/access/heap/heapam_visibility.c
(PostgreSQL 15), with SetHintBits, MarkBufferDirtyHint and XLogSaveBufferForHint
(bufmgr.c, xloginsert.c) and the GlobalVis horizon test of procarray.c.

Every function looks at a tuple header in place: ``page`` is the buffer's page
(a memoryview of shared memory), ``off`` the item's offset in it (lp_off), and
the caller holds a pin and at least a share lock on ``buffer``. They may set
hint bits (HEAP_XMIN_COMMITTED, HEAP_XMIN_INVALID, HEAP_XMAX_COMMITTED,
HEAP_XMAX_INVALID) in the tuple's t_infomask once pg_xact has the final answer,
so that later readers need not ask pg_xact again. Setting one is allowed under
a share lock (losing one to a race only costs a later lookup) and dirties the
buffer without WAL (``mark_buffer_dirty_hint``), except:

- a "committed" hint is not set while the commit record may still be unflushed
  (an asynchronous commit): if the page were written and the server crashed,
  the tuple would claim a commit that never happened. As PostgreSQL, the hint
  is skipped unless the page's own LSN already orders it after the commit;
- with data checksums a hint is the first change a torn write could half-apply
  without WAL to repair it: the first hint after a checkpoint WAL-logs a
  full-page image (XLOG_FPI_FOR_HINT), as PostgreSQL does.

The rules themselves (which xmin/xmax combinations are visible to whom) are
PostgreSQL's; see each function. A transaction that inserted a tuple and then
deleted or updated it keeps both command ids in a combo command id
(utils/combocid.py).

Where tusk differs: no MultiXacts (tusk never writes HEAP_XMAX_IS_MULTI, so the
branches for it are absent: such a tuple would be treated as locked only), no
subtransactions (TransactionIdIsCurrentTransactionId is one comparison), no
pre-9.0 HEAP_MOVED_* tuples, no historic (logical decoding) or TOAST snapshots,
no SSI. The GlobalVis horizon is one xmin over all databases (procarray's
``get_oldest_xmin``), cached per snapshot.
"""

from __future__ import annotations

import struct

from access import procarray, transam, xact, xlog
from access import xlog_internal as xi
from access.heaptuple import (
    HEAP_COMBOCID,
    HEAP_KEYS_UPDATED,
    HEAP_LOCK_MASK,
    HEAP_XMAX_COMMITTED,
    HEAP_XMAX_EXCL_LOCK,
    HEAP_XMAX_INVALID,
    HEAP_XMAX_IS_MULTI,
    HEAP_XMAX_LOCK_ONLY,
    HEAP_XMIN_COMMITTED,
    HEAP_XMIN_FROZEN,
    HEAP_XMIN_INVALID,
)
from shmem.buf_internals import BM_DIRTY, BM_JUST_DIRTIED, BM_PERMANENT, DESC_WORDS, W_STATE
from storage import bufmgr
from storage.bufpage import page_get_lsn, page_set_lsn
from utils import combocid, pgstat

# HTSV_Result (heapam.h)
HEAPTUPLE_DEAD = 0
HEAPTUPLE_LIVE = 1
HEAPTUPLE_RECENTLY_DEAD = 2
HEAPTUPLE_INSERT_IN_PROGRESS = 3
HEAPTUPLE_DELETE_IN_PROGRESS = 4

# TM_Result (tableam.h)
TM_Ok = 0
TM_Invisible = 1
TM_SelfModified = 2
TM_Updated = 3
TM_Deleted = 4
TM_BeingModified = 5
TM_WouldBlock = 6

TM_NAMES = ("TM_Ok", "TM_Invisible", "TM_SelfModified", "TM_Updated", "TM_Deleted",
            "TM_BeingModified", "TM_WouldBlock")

# Snapshot kinds (utils/snapmgr.py's KIND_*, snapshot.h's SnapshotType).
KIND_MVCC, KIND_SELF, KIND_ANY, KIND_DIRTY = 0, 1, 2, 4

_MASK = 0xFFFFFFFF
_HALF = 0x80000000
_XMIN_XMAX_CID = struct.Struct("<III")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_CTID = struct.Struct("<HHH")
_OFF_XMAX = 4
_OFF_CID = 8
_OFF_CTID = 12
_OFF_INFOMASK2 = 18
_OFF_INFOMASK = 20

_xst = xact._st  # the current xid is _xst.xid (0: none)
_did_commit = transam.transaction_id_did_commit
_in_progress = procarray.transaction_id_is_in_progress

xact.register_xact_callback(combocid.at_eoxact_combocid)


# -- header helpers (htup_details.h) ---------------------------------------------------------

def xmax_is_locked_only(infomask: int) -> bool:
    """HEAP_XMAX_IS_LOCKED_ONLY."""
    return bool(infomask & HEAP_XMAX_LOCK_ONLY) or \
        (infomask & (HEAP_XMAX_IS_MULTI | HEAP_LOCK_MASK)) == HEAP_XMAX_EXCL_LOCK


def get_cmin(cid: int, infomask: int) -> int:
    """HeapTupleHeaderGetCmin (only meaningful to the inserting transaction)."""
    return combocid.get_real_cmin(cid) if infomask & HEAP_COMBOCID else cid


def get_cmax(cid: int, infomask: int) -> int:
    """HeapTupleHeaderGetCmax (only meaningful to the deleting transaction)."""
    return combocid.get_real_cmax(cid) if infomask & HEAP_COMBOCID else cid


def xid_in_mvcc_snapshot(xid: int, snapshot) -> bool:
    """XidInMVCCSnapshot: is ``xid`` still running as far as ``snapshot`` is concerned?"""
    if ((xid - snapshot.xmin) & _MASK) >= _HALF:
        return False
    if ((xid - snapshot.xmax) & _MASK) < _HALF:
        return True
    return xid in snapshot.xip_set


def _precedes(a: int, b: int) -> bool:
    if a < 3 or b < 3:
        return a < b
    return ((a - b) & _MASK) >= _HALF


# -- hint bits --------------------------------------------------------------------------------

_flushed = [0, None]  # the last flush LSN seen (LogwrtResult.Flush), for which XLogCtl


def _xlog_needs_flush(lsn: int) -> bool:
    """XLogNeedsFlush: is WAL not yet flushed up to ``lsn``?"""
    ctl = xlog._ctl
    if lsn <= _flushed[0] and _flushed[1] is ctl:
        return False
    _flushed[0] = xlog.get_flush_rec_ptr()
    _flushed[1] = ctl
    return lsn > _flushed[0]


def set_hint_bits(page, off: int, buffer: int, infomask: int, xid: int) -> None:
    """SetHintBits: OR ``infomask`` into the tuple's t_infomask and dirty the
    buffer as a hint; a commit hint for ``xid`` waits for its commit record
    to be flushed (see the module docstring)."""
    if xid:
        commit_lsn = transam.transaction_id_get_commit_lsn(xid)
        if commit_lsn and _xlog_needs_flush(commit_lsn):
            p = bufmgr._pool
            if p is not None and p.state_words[(buffer - 1) * DESC_WORDS + W_STATE] \
                    & BM_PERMANENT and page_get_lsn(page) < commit_lsn:
                return  # not flushed and no LSN interlock: don't set the hint
    o = off + _OFF_INFOMASK
    _U16.pack_into(page, o, _U16.unpack_from(page, o)[0] | infomask)
    mark_buffer_dirty_hint(buffer, True)


def heap_tuple_set_hint_bits(page, off: int, buffer: int, infomask: int, xid: int) -> None:
    """HeapTupleSetHintBits (the exported spelling)."""
    set_hint_bits(page, off, buffer, infomask, xid)


def mark_buffer_dirty_hint(buffer: int, buffer_std: bool = True) -> None:
    """MarkBufferDirtyHint: mark a buffer dirty for a change that needs no WAL
    (a hint bit) — under only a share lock. With data checksums, the first such
    change after a checkpoint WAL-logs a full-page image first
    (XLogSaveBufferForHint), holding DELAY_CHKPT_START so the checkpoint cannot
    pass between that record and the buffer being dirty.

    Lives here rather than in storage/bufmgr.py, which does not have it; it
    uses the pool's state words as bufmgr's own functions do."""
    p = bufmgr._pool
    buf_id = buffer - 1
    i = buf_id * DESC_WORDS + W_STATE
    wu = p.state_words
    state = wu[i]
    if state & (BM_DIRTY | BM_JUST_DIRTIED) == (BM_DIRTY | BM_JUST_DIRTIED):
        return
    lsn = 0
    delayed = False
    if p.checksums and state & BM_PERMANENT:
        if xlog.recovery_in_progress():
            return  # cannot WAL-log: keep the hint but don't dirty the page
        xact._delay_checkpoint(True)
        delayed = True
    try:
        if delayed:
            lsn = xlog_save_buffer_for_hint(buffer, buffer_std)
        p.hdr_acquire[buf_id]()
        state = wu[i]
        if not state & BM_DIRTY and lsn:
            page_set_lsn(p.descs.pages[buf_id], lsn)
        wu[i] = state | BM_DIRTY | BM_JUST_DIRTIED
        p.hdr_release[buf_id]()
    finally:
        if delayed:
            xact._delay_checkpoint(False)
    if not state & BM_DIRTY:
        pgstat.io.dirtied += 1


def xlog_save_buffer_for_hint(buffer: int, buffer_std: bool = True) -> int:
    """XLogSaveBufferForHint: an XLOG_FPI_FOR_HINT record with the page's image if
    this is its first change since the redo pointer; its end LSN, or 0."""
    from access.xloginsert import BlockRef
    from storage.relfilenode import RelFileNode

    page = bufmgr.buffer_get_page(buffer)
    redo = xlog.get_redo_rec_ptr()
    if page_get_lsn(page) > redo:
        return 0
    # A private copy: other backends may set hints meanwhile (share lock only).
    if buffer_std:
        lower, upper = struct.unpack_from("<HH", page, 12)
        copy = bytearray(len(page))
        copy[:lower] = page[:lower]
        copy[upper:] = page[upper:]
    else:
        copy = bytearray(page)
    spc, db, rel, fork, blkno = bufmgr.buffer_get_tag(buffer)
    block = BlockRef(0, RelFileNode(spc, db, rel), fork, blkno, copy, standard=buffer_std)
    return xlog.xlog_insert(xi.RM_XLOG_ID, xi.XLOG_FPI_FOR_HINT, b"", [block],
                            xid=xact.get_current_transaction_id_if_any())


# -- the GlobalVis horizon ----------------------------------------------------------------------

class _Horizon:
    __slots__ = ("oldest", "key", "shmem")

    def __init__(self) -> None:
        self.oldest = 0    # the oldest xmin computed last (every xid before it is removable)
        self.key = -1      # procarray.recent_xmin when it was computed
        self.shmem = None  # the ProcArray attachment it was computed on


_horizon = _Horizon()


def global_vis_is_removable_xid(xid: int) -> bool:
    """GlobalVisTestIsRemovableXid: may a tuple deleted by (committed) ``xid`` be
    removed, because no snapshot anywhere can still see it? Answers from the
    cached horizon when it can: anything at or after this process's own latest
    snapshot's xmin (RecentXmin) is needed; otherwise the horizon is computed at
    most once per snapshot (ComputeXidHorizons' role)."""
    h = _horizon
    oldest = h.oldest
    if h.shmem is not procarray._st.vars:  # attached anew (tests, reinitialised shmem)
        oldest = 0
    elif oldest and _precedes(xid, oldest):
        return True
    rx = procarray.recent_xmin
    if rx and not _precedes(xid, rx):
        return False
    if h.key == rx and oldest:
        return False
    return _precedes(xid, global_vis_horizon())


def global_vis_horizon() -> int:
    """The oldest xmin now (recomputed): the OldestXmin VACUUM uses."""
    h = _horizon
    h.oldest = procarray.get_oldest_xmin()
    h.key = procarray.recent_xmin
    h.shmem = procarray._st.vars
    return h.oldest


# -- HeapTupleSatisfiesMVCC ---------------------------------------------------------------------

def heap_tuple_satisfies_mvcc(page, off: int, snapshot, buffer: int) -> bool:
    """HeapTupleSatisfiesMVCC: is the tuple visible to an MVCC snapshot? Own
    changes count only when made by commands before snapshot.curcid."""
    xmin, xmax, cid = _XMIN_XMAX_CID.unpack_from(page, off)
    infomask = _U16.unpack_from(page, off + _OFF_INFOMASK)[0]
    cur = _xst.xid
    if not infomask & HEAP_XMIN_COMMITTED:
        if infomask & HEAP_XMIN_INVALID:
            return False
        if cur and xmin == cur:
            if get_cmin(cid, infomask) >= snapshot.curcid:
                return False  # inserted after the scan started
            if infomask & HEAP_XMAX_INVALID:
                return True
            if xmax_is_locked_only(infomask):
                return True
            if xmax != cur:
                # deleting subtransaction must have aborted
                set_hint_bits(page, off, buffer, HEAP_XMAX_INVALID, 0)
                return True
            return get_cmax(cid, infomask) >= snapshot.curcid
        if xid_in_mvcc_snapshot(xmin, snapshot):
            return False
        if _did_commit(xmin):
            set_hint_bits(page, off, buffer, HEAP_XMIN_COMMITTED, xmin)
        else:
            # it must have aborted or crashed
            set_hint_bits(page, off, buffer, HEAP_XMIN_INVALID, 0)
            return False
    elif infomask & HEAP_XMIN_FROZEN != HEAP_XMIN_FROZEN and \
            xid_in_mvcc_snapshot(xmin, snapshot):
        return False  # committed, but not yet for this snapshot
    # By here the inserting transaction has committed.
    if infomask & HEAP_XMAX_INVALID:
        return True
    if xmax_is_locked_only(infomask):
        return True
    if not infomask & HEAP_XMAX_COMMITTED:
        if cur and xmax == cur:
            return get_cmax(cid, infomask) >= snapshot.curcid
        if xid_in_mvcc_snapshot(xmax, snapshot):
            return True
        if not _did_commit(xmax):
            set_hint_bits(page, off, buffer, HEAP_XMAX_INVALID, 0)
            return True
        set_hint_bits(page, off, buffer, HEAP_XMAX_COMMITTED, xmax)
    elif xid_in_mvcc_snapshot(xmax, snapshot):
        return True  # deleted, but not yet for this snapshot
    return False


# -- HeapTupleSatisfiesSelf / Any / Dirty -----------------------------------------------------

def heap_tuple_satisfies_self(page, off: int, buffer: int) -> bool:
    """HeapTupleSatisfiesSelf: committed work and everything this transaction
    did so far (any command), as of now."""
    xmin, xmax, _cid = _XMIN_XMAX_CID.unpack_from(page, off)
    infomask = _U16.unpack_from(page, off + _OFF_INFOMASK)[0]
    cur = _xst.xid
    if not infomask & HEAP_XMIN_COMMITTED:
        if infomask & HEAP_XMIN_INVALID:
            return False
        if cur and xmin == cur:
            if infomask & HEAP_XMAX_INVALID or xmax_is_locked_only(infomask):
                return True
            if xmax != cur:
                set_hint_bits(page, off, buffer, HEAP_XMAX_INVALID, 0)
                return True
            return False
        if _in_progress(xmin):
            return False
        if _did_commit(xmin):
            set_hint_bits(page, off, buffer, HEAP_XMIN_COMMITTED, xmin)
        else:
            set_hint_bits(page, off, buffer, HEAP_XMIN_INVALID, 0)
            return False
    if infomask & HEAP_XMAX_INVALID:
        return True
    if infomask & HEAP_XMAX_COMMITTED:
        return xmax_is_locked_only(infomask)
    if cur and xmax == cur:
        return xmax_is_locked_only(infomask)
    if _in_progress(xmax):
        return True
    if not _did_commit(xmax):
        set_hint_bits(page, off, buffer, HEAP_XMAX_INVALID, 0)
        return True
    if xmax_is_locked_only(infomask):
        set_hint_bits(page, off, buffer, HEAP_XMAX_INVALID, 0)
        return True
    set_hint_bits(page, off, buffer, HEAP_XMAX_COMMITTED, xmax)
    return False


def heap_tuple_satisfies_dirty(page, off: int, snapshot, buffer: int) -> bool:
    """HeapTupleSatisfiesDirty: like Self, but in-progress work of other
    transactions counts too; ``snapshot.xmin`` / ``snapshot.xmax`` are set to
    the in-progress inserter / deleter so the caller can wait for them."""
    snapshot.xmin = snapshot.xmax = 0
    snapshot.speculative_token = 0
    xmin, xmax, _cid = _XMIN_XMAX_CID.unpack_from(page, off)
    infomask = _U16.unpack_from(page, off + _OFF_INFOMASK)[0]
    cur = _xst.xid
    if not infomask & HEAP_XMIN_COMMITTED:
        if infomask & HEAP_XMIN_INVALID:
            return False
        if cur and xmin == cur:
            if infomask & HEAP_XMAX_INVALID or xmax_is_locked_only(infomask):
                return True
            if xmax != cur:
                set_hint_bits(page, off, buffer, HEAP_XMAX_INVALID, 0)
                return True
            return False
        if _in_progress(xmin):
            snapshot.xmin = xmin
            return True  # in insertion by another transaction
        if _did_commit(xmin):
            set_hint_bits(page, off, buffer, HEAP_XMIN_COMMITTED, xmin)
        else:
            set_hint_bits(page, off, buffer, HEAP_XMIN_INVALID, 0)
            return False
    if infomask & HEAP_XMAX_INVALID:
        return True
    if infomask & HEAP_XMAX_COMMITTED:
        return xmax_is_locked_only(infomask)
    if cur and xmax == cur:
        return xmax_is_locked_only(infomask)
    if _in_progress(xmax):
        if not xmax_is_locked_only(infomask):
            snapshot.xmax = xmax
        return True
    if not _did_commit(xmax):
        set_hint_bits(page, off, buffer, HEAP_XMAX_INVALID, 0)
        return True
    if xmax_is_locked_only(infomask):
        set_hint_bits(page, off, buffer, HEAP_XMAX_INVALID, 0)
        return True
    set_hint_bits(page, off, buffer, HEAP_XMAX_COMMITTED, xmax)
    return False


def heap_tuple_satisfies_visibility(page, off: int, snapshot, buffer: int) -> bool:
    """HeapTupleSatisfiesVisibility: dispatch on the snapshot's kind."""
    kind = snapshot.kind
    if kind == KIND_MVCC:
        return heap_tuple_satisfies_mvcc(page, off, snapshot, buffer)
    if kind == KIND_ANY:
        return True
    if kind == KIND_SELF:
        return heap_tuple_satisfies_self(page, off, buffer)
    if kind == KIND_DIRTY:
        return heap_tuple_satisfies_dirty(page, off, snapshot, buffer)
    raise ValueError(f"unsupported snapshot kind {kind}")


# -- HeapTupleSatisfiesUpdate -------------------------------------------------------------------

def heap_tuple_satisfies_update(page, off: int, curcid: int, buffer: int,
                                blkno: int, offnum: int) -> int:
    """HeapTupleSatisfiesUpdate: may command ``curcid`` of this transaction update
    or delete the tuple at (blkno, offnum)? A TM_* result: TM_Ok, TM_Invisible
    (not visible to the command), TM_SelfModified (changed by a later command of
    this transaction), TM_BeingModified (another transaction is changing it,
    or locks it), TM_Updated / TM_Deleted (a committed transaction did)."""
    xmin, xmax, cid = _XMIN_XMAX_CID.unpack_from(page, off)
    infomask = _U16.unpack_from(page, off + _OFF_INFOMASK)[0]
    cur = _xst.xid
    if not infomask & HEAP_XMIN_COMMITTED:
        if infomask & HEAP_XMIN_INVALID:
            return TM_Invisible
        if cur and xmin == cur:
            if get_cmin(cid, infomask) >= curcid:
                return TM_Invisible  # inserted after the scan started
            if infomask & HEAP_XMAX_INVALID:
                return TM_Ok
            if xmax_is_locked_only(infomask):
                # Locked (maybe by us): a locker that is gone leaves nothing to wait for.
                if not _in_progress(xmax):
                    return TM_Ok
                return TM_BeingModified
            if xmax != cur:
                set_hint_bits(page, off, buffer, HEAP_XMAX_INVALID, 0)
                return TM_Ok
            if get_cmax(cid, infomask) >= curcid:
                return TM_SelfModified  # updated after the scan started
            return TM_Invisible  # updated before the scan started
        if _in_progress(xmin):
            return TM_Invisible
        if _did_commit(xmin):
            set_hint_bits(page, off, buffer, HEAP_XMIN_COMMITTED, xmin)
        else:
            set_hint_bits(page, off, buffer, HEAP_XMIN_INVALID, 0)
            return TM_Invisible
    # By here the inserting transaction has committed.
    if infomask & HEAP_XMAX_INVALID:
        return TM_Ok
    if infomask & HEAP_XMAX_COMMITTED:
        if xmax_is_locked_only(infomask):
            return TM_Ok
        return TM_Deleted if _is_self_ctid(page, off, blkno, offnum) else TM_Updated
    if cur and xmax == cur:
        if xmax_is_locked_only(infomask):
            return TM_BeingModified
        if get_cmax(cid, infomask) >= curcid:
            return TM_SelfModified
        return TM_Invisible
    if _in_progress(xmax):
        return TM_BeingModified
    if not _did_commit(xmax):
        set_hint_bits(page, off, buffer, HEAP_XMAX_INVALID, 0)
        return TM_Ok
    if xmax_is_locked_only(infomask):
        set_hint_bits(page, off, buffer, HEAP_XMAX_INVALID, 0)
        return TM_Ok
    set_hint_bits(page, off, buffer, HEAP_XMAX_COMMITTED, xmax)
    return TM_Deleted if _is_self_ctid(page, off, blkno, offnum) else TM_Updated


def _is_self_ctid(page, off: int, blkno: int, offnum: int) -> bool:
    hi, lo, pos = _CTID.unpack_from(page, off + _OFF_CTID)
    return pos == offnum and ((hi << 16) | lo) == blkno


# -- HeapTupleSatisfiesVacuum -------------------------------------------------------------------

def heap_tuple_satisfies_vacuum_horizon(page, off: int, buffer: int) -> tuple[int, int]:
    """HeapTupleSatisfiesVacuumHorizon: (HTSV result, dead_after). For
    HEAPTUPLE_RECENTLY_DEAD, dead_after is the deleter: the tuple is dead to
    everybody once that xid is older than the horizon."""
    xmin, xmax, _cid = _XMIN_XMAX_CID.unpack_from(page, off)
    infomask = _U16.unpack_from(page, off + _OFF_INFOMASK)[0]
    cur = _xst.xid
    if not infomask & HEAP_XMIN_COMMITTED:
        if infomask & HEAP_XMIN_INVALID:
            return HEAPTUPLE_DEAD, 0
        if cur and xmin == cur:
            if infomask & HEAP_XMAX_INVALID or xmax_is_locked_only(infomask):
                return HEAPTUPLE_INSERT_IN_PROGRESS, 0
            if xmax == cur:
                return HEAPTUPLE_DELETE_IN_PROGRESS, 0  # inserted and deleted by us
            return HEAPTUPLE_INSERT_IN_PROGRESS, 0
        if _in_progress(xmin):
            return HEAPTUPLE_INSERT_IN_PROGRESS, 0
        if _did_commit(xmin):
            set_hint_bits(page, off, buffer, HEAP_XMIN_COMMITTED, xmin)
        else:
            set_hint_bits(page, off, buffer, HEAP_XMIN_INVALID, 0)
            return HEAPTUPLE_DEAD, 0
    # The inserter committed; what about the deleter?
    if infomask & HEAP_XMAX_INVALID:
        return HEAPTUPLE_LIVE, 0
    if xmax_is_locked_only(infomask):
        if not infomask & HEAP_XMAX_COMMITTED:
            if _in_progress(xmax):
                return HEAPTUPLE_LIVE, 0
            set_hint_bits(page, off, buffer, HEAP_XMAX_INVALID, 0)
        return HEAPTUPLE_LIVE, 0
    if not infomask & HEAP_XMAX_COMMITTED:
        if _in_progress(xmax):
            return HEAPTUPLE_DELETE_IN_PROGRESS, 0
        if _did_commit(xmax):
            set_hint_bits(page, off, buffer, HEAP_XMAX_COMMITTED, xmax)
        else:
            set_hint_bits(page, off, buffer, HEAP_XMAX_INVALID, 0)
            return HEAPTUPLE_LIVE, 0
    return HEAPTUPLE_RECENTLY_DEAD, xmax


def heap_tuple_satisfies_vacuum(page, off: int, oldest_xmin: int, buffer: int) -> int:
    """HeapTupleSatisfiesVacuum: the tuple's state for VACUUM with horizon
    ``oldest_xmin`` (RECENTLY_DEAD becomes DEAD once the deleter is older)."""
    res, dead_after = heap_tuple_satisfies_vacuum_horizon(page, off, buffer)
    if res == HEAPTUPLE_RECENTLY_DEAD and _precedes(dead_after, oldest_xmin):
        return HEAPTUPLE_DEAD
    return res


def heap_tuple_is_surely_dead(page, off: int) -> bool:
    """HeapTupleIsSurelyDead: dead to everybody, judged from hint bits alone
    (no pg_xact lookups): for killing index entries."""
    infomask = _U16.unpack_from(page, off + _OFF_INFOMASK)[0]
    if not infomask & HEAP_XMIN_COMMITTED:
        return bool(infomask & HEAP_XMIN_INVALID)
    if infomask & HEAP_XMAX_INVALID or xmax_is_locked_only(infomask) \
            or infomask & HEAP_XMAX_IS_MULTI or not infomask & HEAP_XMAX_COMMITTED:
        return False
    return global_vis_is_removable_xid(_U32.unpack_from(page, off + _OFF_XMAX)[0])


def heap_tuple_header_is_only_locked(page, off: int) -> bool:
    """HeapTupleHeaderIsOnlyLocked: does xmax only lock the tuple (or is the
    updater gone without committing)?"""
    xmax = _U32.unpack_from(page, off + _OFF_XMAX)[0]
    infomask = _U16.unpack_from(page, off + _OFF_INFOMASK)[0]
    if infomask & HEAP_XMAX_INVALID or xmax_is_locked_only(infomask):
        return True
    if infomask & HEAP_XMAX_COMMITTED:
        return False
    cur = _xst.xid
    if cur and xmax == cur:
        return False
    if _in_progress(xmax):
        return False
    if _did_commit(xmax):
        return False
    return True  # the updater aborted or crashed


def heap_tuple_header_advance_latest_removed_xid(page, off: int, latest: int) -> int:
    """HeapTupleHeaderAdvanceLatestRemovedXid: the newest xid whose work the
    removal of this tuple throws away (for hot standby conflicts)."""
    xmin, xmax, _cid = _XMIN_XMAX_CID.unpack_from(page, off)
    infomask = _U16.unpack_from(page, off + _OFF_INFOMASK)[0]
    # Ignore tuples inserted by an aborted transaction, or updated/deleted by
    # the inserting transaction itself.
    if infomask & HEAP_XMIN_COMMITTED or \
            (not infomask & HEAP_XMIN_INVALID and _did_commit(xmin)):
        if infomask & HEAP_XMIN_FROZEN == HEAP_XMIN_FROZEN:
            xmin = 2  # HeapTupleHeaderGetXmin: FrozenTransactionId
        if xmax != xmin and xmax and (not latest or _precedes(latest, xmax)):
            latest = xmax
    return latest


__all__ = [
    "HEAPTUPLE_DEAD", "HEAPTUPLE_LIVE", "HEAPTUPLE_RECENTLY_DEAD",
    "HEAPTUPLE_INSERT_IN_PROGRESS", "HEAPTUPLE_DELETE_IN_PROGRESS",
    "TM_Ok", "TM_Invisible", "TM_SelfModified", "TM_Updated", "TM_Deleted",
    "TM_BeingModified", "TM_WouldBlock", "HEAP_KEYS_UPDATED",
]
