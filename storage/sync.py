"""File synchronisation requests — mirrors src/backend/storage/sync/sync.c (and the
request helpers of smgr/md.c: register_dirty_segment, register_unlink_segment,
register_forget_request, ForgetDatabaseSyncRequests).

Protocol
    Writes do not fsync. Every write or extend of a permanent relation calls
    ``register_dirty_segment`` for the segment file it touched. That builds a
    FileTag and calls ``register_sync_request``, which either

    - remembers it in this process's pending-operations table (``_pending_ops``,
      keyed by FileTag), when no forward hook is installed: the checkpointer
      itself, a standalone process, unit tests; or
    - hands it to the forward hook (``set_forward_hook``). Backends get the
      checkpointer's ForwardSyncRequest, which appends to the shared request
      queue; the checkpointer's AbsorbSyncRequests then calls
      ``remember_sync_request`` for each entry. If the hook returns False (queue
      full even after compaction) the writer fsyncs the segment itself, as
      PostgreSQL's backends do (buffers_backend_fsync is counted by the hook).

    At a checkpoint the checkpointer calls ``process_sync_requests`` after writing
    the buffers: it fsyncs every file requested before the sync phase began,
    absorbing new requests every FSYNCS_PER_ABSORB fsyncs (``set_absorb_hook``).
    Dropping a relation sends FORGET requests first (so a queued fsync of a vanished
    file is cancelled, not a failure) and an UNLINK request for the first segment of
    the main fork, which ``sync_post_checkpoint`` carries out after the next
    checkpoint, so the relfilenode cannot be reused before the drop is durable.

    pg_xact writes take the same road with handler SYNC_HANDLER_CLOG and the segment
    number as the tag (access/slru.py), as PostgreSQL 14+ does; the checkpoint's
    CheckPointCLOG only writes the pages, and process_sync_requests syncs them.

    A failed fsync raises fd.DataSyncError (PANIC with data_sync_retry = off).

    Trace probes (trace_probes): one "checkpoint__sync__file" per fsync of
    process_sync_requests, with the path and how long it took (PostgreSQL has no
    probe here; it makes the absorb-every-FSYNCS_PER_ABSORB rhythm visible).

Differences from PostgreSQL: the table is a dict and iteration works on a snapshot;
handlers exist for relations (md) and pg_xact (clog), the only SLRU tusk has.
"""

from __future__ import annotations

import errno as _errno
import importlib
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, NamedTuple

from storage import fd
from storage.relfilenode import RelFileNode
from utils import elog, pgstat

if TYPE_CHECKING:
    from storage.fd import File


class SyncRequestType(IntEnum):
    SYNC_REQUEST = 0          # schedule an fsync
    SYNC_UNLINK_REQUEST = 1   # schedule an unlink after the next checkpoint
    SYNC_FORGET_REQUEST = 2   # forget an fsync request for one file
    SYNC_FILTER_REQUEST = 3   # forget every request matching a filter (a database)


SYNC_REQUEST = SyncRequestType.SYNC_REQUEST
SYNC_UNLINK_REQUEST = SyncRequestType.SYNC_UNLINK_REQUEST
SYNC_FORGET_REQUEST = SyncRequestType.SYNC_FORGET_REQUEST
SYNC_FILTER_REQUEST = SyncRequestType.SYNC_FILTER_REQUEST

# SyncRequestHandler (PostgreSQL's numbers; commit_ts and multixact do not exist here)
SYNC_HANDLER_MD = 0
SYNC_HANDLER_CLOG = 1
SYNC_HANDLER_NONE = 5

FSYNCS_PER_ABSORB = 10
UNLINKS_PER_ABSORB = 10


class FileTag(NamedTuple):
    """Which file a request is about (sync.h's FileTag)."""

    handler: int
    forknum: int
    rnode: RelFileNode
    segno: int


# int16 handler, int16 forknum, uint32 spc, db, rel, segno: the shared-queue layout.
FILETAG_STRUCT = struct.Struct("<hhIIII")


def filetag_pack_into(buf: bytearray | memoryview, offset: int, tag: FileTag) -> None:
    """Store a FileTag in FILETAG_STRUCT.size bytes (for the checkpointer's queue)."""
    r = tag.rnode
    FILETAG_STRUCT.pack_into(buf, offset, tag.handler, tag.forknum, r.spc, r.db, r.rel,
                             tag.segno)


def filetag_unpack_from(buf: bytes | bytearray | memoryview, offset: int) -> FileTag:
    h, f, spc, db, rel, seg = FILETAG_STRUCT.unpack_from(buf, offset)
    return FileTag(h, f, RelFileNode(spc, db, rel), seg)


@dataclass(frozen=True)
class SyncOps:
    """syncsw[] entry: how a handler syncs, unlinks and matches its files.

    sync_filetag and unlink_filetag return the path they acted on and raise
    OSError (or fd.DataSyncError) on failure. SLRU handlers only sync (their
    segments are removed directly, after a FORGET request).
    """

    sync_filetag: Callable[[FileTag], str]
    unlink_filetag: Callable[[FileTag], str] | None = None  # None: never sent UNLINK
    filetag_matches: Callable[[FileTag, FileTag], bool] | None = None  # None: nor FILTER


_handlers: dict[int, SyncOps] = {}
_HANDLER_MODULES = {SYNC_HANDLER_MD: "storage.md", SYNC_HANDLER_CLOG: "access.clog"}


def register_sync_handler(handler: int, ops: SyncOps) -> None:
    _handlers[handler] = ops


def _ops(handler: int) -> SyncOps:
    ops = _handlers.get(handler)
    if ops is None:
        importlib.import_module(_HANDLER_MODULES[handler])  # registers itself
        ops = _handlers[handler]
    return ops


# -- process-local state -------------------------------------------------------------

class _PendingFsync:
    __slots__ = ("cycle_ctr", "canceled")

    def __init__(self, cycle_ctr: int) -> None:
        self.cycle_ctr = cycle_ctr
        self.canceled = False


class _PendingUnlink:
    __slots__ = ("tag", "cycle_ctr", "canceled")

    def __init__(self, tag: FileTag, cycle_ctr: int) -> None:
        self.tag = tag
        self.cycle_ctr = cycle_ctr
        self.canceled = False


_pending_ops: dict[FileTag, _PendingFsync] = {}
_pending_unlinks: list[_PendingUnlink] = []
_sync_cycle_ctr = 0
_checkpoint_cycle_ctr = 0
_sync_in_progress = False

ForwardHook = Callable[[FileTag, SyncRequestType], bool]
_forward_hook: ForwardHook | None = None
_absorb_hook: Callable[[], None] | None = None
probes_enabled = False  # trace_probes (set by access.xlogcheckpoint's assign hook)


def set_forward_hook(fn: ForwardHook | None) -> None:
    """Route requests elsewhere (a backend: the checkpointer's ForwardSyncRequest,
    which returns False when the shared queue is full). None: keep them here."""
    global _forward_hook
    _forward_hook = fn


def set_absorb_hook(fn: Callable[[], None] | None) -> None:
    """AbsorbSyncRequests of the checkpointer, called while syncing and unlinking."""
    global _absorb_hook
    _absorb_hook = fn


def _absorb() -> None:
    if _absorb_hook is not None:
        _absorb_hook()


def reset() -> None:
    """Forget all process-local state (InitSync in a fresh process; tests)."""
    global _sync_cycle_ctr, _checkpoint_cycle_ctr, _sync_in_progress
    _pending_ops.clear()
    _pending_unlinks.clear()
    _sync_cycle_ctr = _checkpoint_cycle_ctr = 0
    _sync_in_progress = False


def pending_sync_tags() -> list[FileTag]:
    """Tags waiting for the next process_sync_requests (not cancelled)."""
    return [t for t, e in _pending_ops.items() if not e.canceled]


def pending_unlink_tags() -> list[FileTag]:
    return [e.tag for e in _pending_unlinks if not e.canceled]


# -- requests --------------------------------------------------------------------------

def remember_sync_request(ftag: FileTag, type: SyncRequestType) -> None:
    """RememberSyncRequest: enter a request into this process's tables."""
    if type == SYNC_REQUEST:
        entry = _pending_ops.get(ftag)
        if entry is None:
            _pending_ops[ftag] = _PendingFsync(_sync_cycle_ctr)
        elif entry.canceled:
            # Re-requested after a cancel: treat it as new. An existing live entry
            # keeps its older cycle_ctr on purpose (it must be synced this cycle).
            entry.cycle_ctr = _sync_cycle_ctr
            entry.canceled = False
    elif type == SYNC_FORGET_REQUEST:
        entry = _pending_ops.get(ftag)
        if entry is not None:
            entry.canceled = True
    elif type == SYNC_FILTER_REQUEST:
        matches = _ops(ftag.handler).filetag_matches
        assert matches is not None, f"handler {ftag.handler} takes no FILTER requests"
        for tag, entry in _pending_ops.items():
            if tag.handler == ftag.handler and matches(ftag, tag):
                entry.canceled = True
        for ue in _pending_unlinks:
            if ue.tag.handler == ftag.handler and matches(ftag, ue.tag):
                ue.canceled = True
    elif type == SYNC_UNLINK_REQUEST:
        _pending_unlinks.append(_PendingUnlink(ftag, _checkpoint_cycle_ctr))
    else:
        raise ValueError(f"unknown sync request type {type}")


def register_sync_request(ftag: FileTag, type: SyncRequestType,
                          retry_on_error: bool = False) -> bool:
    """RegisterSyncRequest: remember locally or forward; False if the forward
    queue is full and ``retry_on_error`` is off (the caller then syncs itself)."""
    hook = _forward_hook
    if hook is None:
        remember_sync_request(ftag, type)
        return True
    while True:
        ok = hook(ftag, type)
        if ok or not retry_on_error:
            return ok
        time.sleep(0.01)  # PostgreSQL waits 10 ms for the checkpointer to absorb


_new_tuple = tuple.__new__  # builds a FileTag without NamedTuple.__new__'s overhead


def register_dirty_segment(rnode: RelFileNode, forknum: int, segno: int,
                           file: File | None = None) -> None:
    """register_dirty_segment (md.c): this segment needs an fsync before the next
    checkpoint completes. If the request cannot be queued, fsync it now.

    Called for every block written, so the no-hook path is inlined.
    """
    tag: FileTag = _new_tuple(FileTag, (SYNC_HANDLER_MD, forknum, rnode, segno))
    hook = _forward_hook
    if hook is None:
        entry = _pending_ops.get(tag)
        if entry is None:
            _pending_ops[tag] = _PendingFsync(_sync_cycle_ctr)
        elif entry.canceled:
            entry.cycle_ctr = _sync_cycle_ctr
            entry.canceled = False
        return
    if hook(tag, SYNC_REQUEST):
        return
    elog.debug1("could not forward fsync request because request queue is full")
    pgstat.io.fsync += 1
    if file is not None:
        file.sync()
    else:
        _ops(SYNC_HANDLER_MD).sync_filetag(tag)


def register_forget_request(rnode: RelFileNode, forknum: int, segno: int) -> None:
    """register_forget_request (md.c): cancel a pending fsync of a segment about to go."""
    register_sync_request(FileTag(SYNC_HANDLER_MD, forknum, rnode, segno),
                          SYNC_FORGET_REQUEST, retry_on_error=True)


def register_unlink_segment(rnode: RelFileNode, forknum: int, segno: int) -> None:
    """register_unlink_segment (md.c): unlink this file after the next checkpoint."""
    register_sync_request(FileTag(SYNC_HANDLER_MD, forknum, rnode, segno),
                          SYNC_UNLINK_REQUEST, retry_on_error=True)


def forget_database_sync_requests(dbid: int) -> None:
    """ForgetDatabaseSyncRequests (md.c): DROP DATABASE cancels all its requests."""
    tag = FileTag(SYNC_HANDLER_MD, 0, RelFileNode(0, dbid, 0), 0)
    register_sync_request(tag, SYNC_FILTER_REQUEST, retry_on_error=True)


# -- the checkpointer's side -------------------------------------------------------------

@dataclass
class SyncStats:
    """What the "checkpoint complete" line reports about the sync phase."""

    files: int = 0            # sync files=
    longest_us: float = 0.0   # longest=
    total_us: float = 0.0     # average = total / files


def sync_pre_checkpoint() -> None:
    """SyncPreCheckpoint: unlink requests entered from now on wait for the next one."""
    global _checkpoint_cycle_ctr
    _checkpoint_cycle_ctr += 1


def process_sync_requests(log_checkpoints: bool = False) -> SyncStats:
    """ProcessSyncRequests: fsync every file requested before this call.

    Requests entered while it runs (the absorb hook) wait for the next call. A
    file that vanished is retried once after absorbing, in case a FORGET request
    for it is queued; otherwise the failure raises fd.DataSyncError.
    """
    global _sync_cycle_ctr, _sync_in_progress
    _absorb()
    if _sync_in_progress:
        # A previous attempt failed part way: everything left is overdue now.
        for entry in _pending_ops.values():
            entry.cycle_ctr = _sync_cycle_ctr
    _sync_cycle_ctr += 1
    _sync_in_progress = True
    stats = SyncStats()
    absorb_counter = 0
    for tag, entry in list(_pending_ops.items()):
        if entry.cycle_ctr == _sync_cycle_ctr:
            continue  # entered during this cycle
        if fd.enable_fsync:
            absorb_counter += 1
            if absorb_counter >= FSYNCS_PER_ABSORB:
                _absorb()
                absorb_counter = 0
            failures = 0
            while not entry.canceled:
                start = fd.io_time_start()
                try:
                    path = _ops(tag.handler).sync_filetag(tag)
                except (OSError, fd.DataSyncError) as exc:
                    failures += 1
                    _sync_failed(exc, failures)
                    _absorb()  # a FORGET request for it may be queued
                    absorb_counter = FSYNCS_PER_ABSORB
                    continue
                elapsed = fd.io_time_elapsed_us(start)
                pgstat.io.fsync += 1
                stats.files += 1
                stats.total_us += elapsed
                stats.longest_us = max(stats.longest_us, elapsed)
                if log_checkpoints:
                    elog.debug1(f"checkpoint sync: number={stats.files} file={path} "
                                f"time={elapsed / 1000:.3f} ms")
                if probes_enabled:
                    from access.xlogcheckpoint import trace_probe

                    trace_probe("checkpoint__sync__file", path=path, usecs=int(elapsed))
                break
        if _pending_ops.get(tag) is entry:
            del _pending_ops[tag]
    _sync_in_progress = False
    return stats


def _sync_failed(exc: OSError | fd.DataSyncError, failures: int) -> None:
    """A sync_filetag failure: tolerate one ENOENT (the file may have been dropped
    since the request was made), raise DataSyncError for anything else."""
    if isinstance(exc, fd.DataSyncError):
        err, path = exc.errno, exc.path
    else:
        err, path = exc.errno, str(exc.filename)
    if err != _errno.ENOENT or failures > 1:
        if isinstance(exc, fd.DataSyncError):
            raise exc
        raise fd.DataSyncError(path, exc) from exc
    elog.debug1(f'could not fsync file "{path}" but retrying: {os.strerror(err or 0)}')


def sync_post_checkpoint() -> None:
    """SyncPostCheckpoint: carry out unlink requests entered before the checkpoint."""
    absorb_counter = UNLINKS_PER_ABSORB
    while _pending_unlinks:
        entry = _pending_unlinks[0]
        if entry.canceled:
            _pending_unlinks.pop(0)
            continue
        if entry.cycle_ctr == _checkpoint_cycle_ctr:
            break  # entries are in order: the rest are newer
        unlink_filetag = _ops(entry.tag.handler).unlink_filetag
        assert unlink_filetag is not None, f"handler {entry.tag.handler} takes no UNLINK"
        try:
            unlink_filetag(entry.tag)
        except OSError as exc:
            # DROP DATABASE may have removed the file first.
            if exc.errno != _errno.ENOENT:
                elog.warning(f'could not remove file "{exc.filename}": '
                             f"{os.strerror(exc.errno or 0)}",
                             sqlstate=fd.errcode_for_file_access(exc.errno or 0))
        _pending_unlinks.pop(0)
        absorb_counter -= 1
        if absorb_counter <= 0:
            _absorb()
            absorb_counter = UNLINKS_PER_ABSORB
