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
    cid = 0  # currentCommandId
    cid_used = False  # currentCommandIdUsed
    generation = 0  # transactions ended so far in this process (snapmgr keys on it)
    force_sync = False  # ForceSyncCommit was called


_st = _State()

# CommandId (c.h): commands of a transaction are numbered from FirstCommandId.
FirstCommandId = 0
InvalidCommandId = 0xFFFFFFFF

# The lock manager, when this process has one (backends; not the startup process).
_lmgr = None
_lock = None


def attach_lock_manager() -> None:
    """Called once the process has joined the lock manager (procs/postinit)."""
    global _lmgr, _lock
    from storage.lmgr import lmgr, lock

    _lmgr, _lock = lmgr, lock


# RegisterXactCallback: functions called as fn(is_commit) once a transaction has
# ended (after it left the ProcArray): combo command ids, snapshots.
_xact_callbacks: list = []


def register_xact_callback(fn) -> None:
    """RegisterXactCallback: ``fn(is_commit)`` runs at the end of every transaction."""
    if fn not in _xact_callbacks:
        _xact_callbacks.append(fn)


def _at_eoxact(is_commit: bool) -> None:
    """The per-transaction state every transaction starts afresh with
    (StartTransaction's currentCommandId reset, AtEOXact_* callbacks)."""
    _st.cid = FirstCommandId
    _st.cid_used = False
    _st.generation += 1
    try:
        for fn in _xact_callbacks:
            fn(is_commit)
    finally:
        # Last, as ResourceOwnerRelease: waiters wake to a transaction that has
        # ended everywhere (pg_xact, ProcArray, catalog invalidation).
        if _lock is not None:
            _lock.lock_release_all()


def get_current_command_id(used: bool = False) -> int:
    """GetCurrentCommandId: the command id of the running command; ``used`` says
    the caller stamps it into tuples (so command_counter_increment must advance)."""
    if used:
        _st.cid_used = True
    return _st.cid


def command_counter_increment() -> None:
    """CommandCounterIncrement: make the changes of the command so far visible to
    the next one (only if the command stamped its id into something)."""
    if _st.cid_used:
        cid = _st.cid + 1
        if cid >= InvalidCommandId:
            from utils.elog import PgError

            raise PgError("54000", "cannot have more than 2^32-2 commands in a transaction")
        _st.cid = cid
        _st.cid_used = False


def transaction_id_is_current_transaction_id(xid: int) -> bool:
    """TransactionIdIsCurrentTransactionId (no subtransactions here)."""
    return xid == _st.xid and xid >= 3


def transaction_generation() -> int:
    """How many transactions this process has ended: a key for per-transaction caches."""
    return _st.generation


def configure(settings) -> None:
    """Bind the session's settings (synchronous_commit)."""
    _st.settings = settings


def get_current_transaction_id_if_any() -> int:
    return _st.xid


def get_current_transaction_id() -> int:
    """GetCurrentTransactionId: assign an xid on first use (AssignTransactionId)."""
    if not _st.xid:
        _st.xid = xid = transam.get_new_transaction_id()
        if _lmgr is not None:
            # Others wait for this transaction by waiting for this lock (XactLockTableWait).
            _lmgr.xact_lock_table_insert(xid)
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


def force_sync_commit() -> None:
    """ForceSyncCommit: flush this transaction's commit even with synchronous_commit
    off (CREATE/DROP DATABASE: their file operations cannot be redone otherwise)."""
    _st.force_sync = True


def commit_transaction() -> int:
    """CommitTransaction's WAL and status part (RecordTransactionCommit); returns
    the commit record's end LSN (0 if the transaction had no xid).

    As in PostgreSQL, the commit is flushed before the client hears of it only if
    the transaction wrote WAL before its commit record (an xid alone, as
    txid_current() takes, is not worth a flush: nothing it did can be lost) and
    synchronous_commit is on, or a command forced it; otherwise the walwriter
    flushes it within its delay."""
    xid = _st.xid
    wrote_xlog = xlog.xact_last_rec_end != 0
    force = _st.force_sync
    _st.force_sync = False
    if not xid:
        if wrote_xlog:  # e.g. pruning or hint-bit images of a read-only transaction
            xlog.xlog_set_async_xact_lsn(xlog.xact_last_rec_end)
        xlog.xact_last_rec_end = 0
        procarray.proc_array_end_transaction(0)
        _at_eoxact(True)
        return 0
    _delay_checkpoint(True)
    try:
        end = xlog.xlog_insert(xi.RM_XACT_ID, xi.XLOG_XACT_COMMIT,
                               _XACT_TIME.pack(timestamptz_now()), xid=xid)
        if (wrote_xlog and _synchronous()) or force:
            xlog.xlog_flush(end)
            transam.transaction_id_commit_tree(xid)
        else:
            xlog.xlog_set_async_xact_lsn(end)
            transam.transaction_id_async_commit_tree(xid, (), end)
    finally:
        _delay_checkpoint(False)
        xlog.xact_last_rec_end = 0
    _st.xid = 0
    procarray.proc_array_end_transaction(xid)
    _at_eoxact(True)
    return end


def abort_transaction() -> None:
    """AbortTransaction's WAL and status part (RecordTransactionAbort): never
    flushed — a lost abort record means the same as the abort."""
    if _lock is not None:
        _lock.lock_error_cleanup()  # LockErrorCleanup: leave an interrupted lock wait
    _st.force_sync = False
    xid = _st.xid
    if not xid:
        xlog.xact_last_rec_end = 0
        procarray.proc_array_end_transaction(0)
        _at_eoxact(False)
        return
    _st.xid = 0
    try:
        if not xlog.recovery_in_progress():
            end = xlog.xlog_insert(xi.RM_XACT_ID, xi.XLOG_XACT_ABORT,
                                   _XACT_TIME.pack(timestamptz_now()), xid=xid)
            xlog.xlog_set_async_xact_lsn(end)
        transam.transaction_id_abort_tree(xid)
    finally:
        xlog.xact_last_rec_end = 0
        procarray.proc_array_end_transaction(xid)
        _at_eoxact(False)


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
