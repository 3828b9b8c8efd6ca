"""Transaction commit and abort — mirrors the low-level half of
src/backend/access/transam/xact.c (GetCurrentTransactionId,
RecordTransactionCommit, RecordTransactionAbort, xact_redo).

A transaction gets an xid only when it first needs one (it writes, or asks
with txid_current()); a transaction without one leaves no trace in WAL.

Commit (RecordTransactionCommit), for a transaction with an xid:

1. mark this backend DELAY_CHKPT_START, so a checkpoint cannot take its redo
   pointer between our commit record and the pg_xact update;
2. insert an XLOG_XACT_COMMIT record (PostgreSQL 15's xl_xact_commit: the
   commit time);
3. synchronous_commit on (local, remote_write, remote_apply mean on here):
   XLogFlush to the record's end before anybody is told; off: only advance
   asyncXactLSN, which wakes the walwriter — at most 3 × wal_writer_delay of
   commits can be lost in a crash, and never part of one;
4. set the status in pg_xact (for an asynchronous commit with the record's
   LSN, so the pg_xact page is not written before that WAL);
5. clear DELAY_CHKPT_START, then leave the ProcArray (ProcArrayEndTransaction).

Abort writes an XLOG_XACT_ABORT record without flushing it: after a crash an
xid with no commit record counts as aborted anyway.
"""

from __future__ import annotations

import struct
import time

from access import procarray, transam, xlog
from access import xlog_internal as xi

# PostgreSQL's TimestampTz epoch: 2000-01-01 00:00:00 UTC, in microseconds.
POSTGRES_EPOCH_UNIX = 946684800
_XACT_TIME = struct.Struct("<q")


class _State:
    xid = 0  # the current transaction's xid (0: none assigned yet)
    settings = None


_st = _State()


def configure(settings) -> None:
    """Bind the session's settings (synchronous_commit)."""
    _st.settings = settings


def get_current_transaction_id_if_any() -> int:
    return _st.xid


def get_current_transaction_id() -> int:
    """GetCurrentTransactionId: assign an xid on first use (AssignTransactionId)."""
    if not _st.xid:
        _st.xid = transam.get_new_transaction_id()
    return _st.xid


def timestamptz_now() -> int:
    return int((time.time() - POSTGRES_EPOCH_UNIX) * 1_000_000)


def _synchronous() -> bool:
    settings = _st.settings
    return settings is None or str(settings.get("synchronous_commit")) != "off"


def _delay_checkpoint(on: bool) -> None:
    """DELAY_CHKPT_START in this backend's PGPROC (the checkpointer waits for it)."""
    procs = getattr(xlog.ctl(), "procs", None)
    setter = getattr(procs, "set_delay_chkpt_start", None)
    if setter is not None:
        setter(on)


def commit_transaction() -> int:
    """CommitTransaction's WAL and status part; returns the commit record's end LSN
    (0 if the transaction had no xid)."""
    xid = _st.xid
    if not xid:
        procarray.proc_array_end_transaction(0)
        return 0
    _delay_checkpoint(True)
    try:
        end = xlog.xlog_insert(xi.RM_XACT_ID, xi.XLOG_XACT_COMMIT,
                               _XACT_TIME.pack(timestamptz_now()), xid=xid)
        if _synchronous():
            xlog.xlog_flush(end)
            transam.transaction_id_commit_tree(xid)
        else:
            xlog.xlog_set_async_xact_lsn(end)
            transam.transaction_id_async_commit_tree(xid, (), end)
    finally:
        _delay_checkpoint(False)
    _st.xid = 0
    procarray.proc_array_end_transaction(xid)
    return end


def abort_transaction() -> None:
    """AbortTransaction's WAL and status part (RecordTransactionAbort)."""
    xid = _st.xid
    if not xid:
        procarray.proc_array_end_transaction(0)
        return
    _st.xid = 0
    try:
        if not xlog.recovery_in_progress():
            xlog.xlog_insert(xi.RM_XACT_ID, xi.XLOG_XACT_ABORT,
                             _XACT_TIME.pack(timestamptz_now()), xid=xid)
        transam.transaction_id_abort_tree(xid)
    finally:
        procarray.proc_array_end_transaction(xid)


def xact_redo(record) -> None:
    """xact_redo: replay a commit or abort into pg_xact."""
    info = record.info & xi.XLOG_XACT_OPMASK
    xid = record.xid
    if info in (xi.XLOG_XACT_COMMIT, xi.XLOG_XACT_COMMIT_PREPARED):
        transam.transaction_id_async_commit_tree(xid, (), record.end_lsn)
    elif info in (xi.XLOG_XACT_ABORT, xi.XLOG_XACT_ABORT_PREPARED):
        transam.transaction_id_abort_tree(xid)


def transaction_status(full_xid: int) -> str | None:
    """txid_status / pg_xact_status: 'committed', 'aborted', 'in progress', or None
    when pg_xact no longer knows (older than the oldest xid kept)."""
    from utils.elog import PgError

    next_full = transam.read_next_full_transaction_id()
    if full_xid >= next_full:
        raise PgError("22023", f"transaction ID {full_xid} is in the future")
    xid = full_xid & 0xFFFFFFFF
    if not transam.transaction_id_is_normal(xid):
        return "committed" if xid in (1, 2) else None
    if next_full - full_xid >= 1 << 31:
        return None
    oldest = transam.oldest_clog_xid()
    if transam.transaction_id_precedes(xid, oldest):
        return None
    if xid == _st.xid:
        return "in progress"
    if transam.transaction_id_did_commit(xid):
        return "committed"
    if procarray.transaction_id_is_in_progress(xid):
        return "in progress"
    return "aborted"


def current_full_transaction_id() -> int:
    """txid_current / pg_current_xact_id: this transaction's 64-bit xid, assigning one."""
    xid = get_current_transaction_id()
    next_full = transam.read_next_full_transaction_id()
    return procarray.full_xid_relative_to(next_full, xid)
