"""WAL replay at start-up — mirrors StartupXLOG (xlog.c) and PerformWalRecovery /
ReadRecord (xlogrecovery.c), plus XLogReadBufferForRedo (xlogutils.c).

The startup process reads pg_control, finds the last checkpoint record, and
if the cluster was not shut down cleanly:

1. fsyncs the whole data directory (SyncDataDirectory): the crash lost the
   checkpointer's list of files still to sync;
2. replays every record from the checkpoint's redo pointer until the first
   invalid or missing one, logging where redo ended; each block reference is
   restored from its full-page image, skipped if the page's LSN shows the
   change is already there, or handed to its resource manager's redo routine;
3. leaves WAL insertion positioned after the last valid record and asks the
   checkpointer for the end-of-recovery checkpoint, waiting until it is written.

Resource managers register redo routines in REDO_ROUTINES (rmid -> function
taking the decoded record); block images are restored here for all of them.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable

from access import clog, transam, xact, xlog
from access import xlog_internal as xi
from access.xlogreader import XLogReader, restore_block_image
from catalog.pg_control import ControlFile, DBState, read_control_file, write_control_file
from storage import bufmgr, bufpage, fd, md, smgr
from storage.relfilenode import RelFileNode
from utils import elog

# rmid -> redo(record). Modules register theirs at import (clog, xact, heap ...).
REDO_ROUTINES: dict[int, Callable[[object], None]] = {}

# XLogReadBufferForRedo results.
BLK_NEEDS_REDO, BLK_DONE, BLK_RESTORED, BLK_NOTFOUND = range(4)


class RecoveryError(Exception):
    pass


def register_redo(rmid: int, fn: Callable[[object], None]) -> None:
    REDO_ROUTINES[rmid] = fn


register_redo(xi.RM_CLOG_ID, clog.clog_redo)
register_redo(xi.RM_XACT_ID, xact.xact_redo)

# The resource managers that register their redo routine when imported (RmgrTable).
RMGR_MODULES = ("access.heapam_xlog", "access.nbtree.nbtxlog", "catalog.storage",
                "commands.dbcommands", "commands.sequence")


def load_resource_managers() -> None:
    """Import every resource manager, so each record type found in WAL has its redo."""
    import importlib

    for name in RMGR_MODULES:
        importlib.import_module(name)


def _when(t: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def sync_data_directory(datadir: str) -> None:
    """SyncDataDirectory: fsync every file and directory of the cluster (but not the
    power-loss journal's directory: it is not part of the cluster)."""
    from storage.powerloss import DIRNAME

    for root, dirs, files in os.walk(datadir):
        if root == datadir and DIRNAME in dirs:
            dirs.remove(DIRNAME)
        for name in files:
            path = os.path.join(root, name)
            try:
                fd.fsync_fname(path)
            except Exception as exc:  # a vanished or unreadable file is not fatal here
                elog.debug1(f'could not fsync file "{path}": {exc}')
        fd.fsync_fname(root, isdir=True)
        dirs.sort()


def xlog_read_buffer_for_redo(record, block_id: int, lock_mode: int = bufmgr.BUFFER_LOCK_EXCLUSIVE
                              ) -> tuple[int, int]:
    """XLogReadBufferForRedo: (result, buffer). An image is restored and the buffer
    returned locked; a page already carrying the change gives BLK_DONE."""
    blk = next(b for b in record.blocks if b.block_id == block_id)
    reln = smgr.smgr_open(RelFileNode(*blk.rnode))
    if not smgr.smgr_exists(reln, blk.fork):
        smgr.smgr_create(reln, blk.fork, is_redo=True)
    nblocks = smgr.smgr_nblocks(reln, blk.fork)
    while nblocks < blk.blkno:  # recreate blocks dropped by a later truncation
        smgr.smgr_extend(reln, blk.fork, nblocks, None)
        nblocks += 1
    if blk.has_image and blk.apply_image:
        if nblocks == blk.blkno:
            smgr.smgr_extend(reln, blk.fork, nblocks, None)
        buf = bufmgr.read_buffer_extended(reln, blk.fork, blk.blkno, bufmgr.RBM_ZERO_AND_LOCK)
        page = bufmgr.buffer_get_page(buf)
        page[:] = restore_block_image(record, blk)
        bufpage.page_set_lsn(page, record.end_lsn)
        bufmgr.mark_buffer_dirty(buf)
        return BLK_RESTORED, buf
    if blk.blkno >= nblocks:
        if nblocks == blk.blkno and blk.will_init:
            smgr.smgr_extend(reln, blk.fork, nblocks, None)
        else:
            return BLK_NOTFOUND, bufmgr.InvalidBuffer
    buf = bufmgr.read_buffer_extended(reln, blk.fork, blk.blkno, bufmgr.RBM_NORMAL)
    bufmgr.lock_buffer(buf, lock_mode)
    if bufpage.page_get_lsn(bufmgr.buffer_get_page(buf)) >= record.end_lsn:
        return BLK_DONE, buf
    return BLK_NEEDS_REDO, buf


def _restore_images_only(record) -> None:
    """Records whose rmgr has no redo routine here: apply their full-page images."""
    for blk in record.blocks:
        if blk.has_image and blk.apply_image:
            _, buf = xlog_read_buffer_for_redo(record, blk.block_id)
            bufmgr.unlock_release_buffer(buf)


def xlog_redo(record) -> None:
    """xlog_redo: the XLOG resource manager's records."""
    info = record.info & xi.XLR_RMGR_INFO_MASK
    if info in (xi.XLOG_FPI, xi.XLOG_FPI_FOR_HINT):
        _restore_images_only(record)
    elif info == xi.XLOG_NEXTOID:
        transam.redo_next_oid(record.main_data)
    elif info in (xi.XLOG_CHECKPOINT_SHUTDOWN, xi.XLOG_CHECKPOINT_ONLINE):
        ck = xi.CHECKPOINT.unpack(bytes(record.main_data))
        transam.redo_checkpoint(ck[4], ck[5], ck[8], ck[9],
                                shutdown=info == xi.XLOG_CHECKPOINT_SHUTDOWN)


def _apply(record) -> None:
    if record.xid:
        transam.advance_next_full_transaction_id_past_xid(record.xid)
    rmid = record.rmid
    if rmid == xi.RM_XLOG_ID:
        xlog_redo(record)
        return
    routine = REDO_ROUTINES.get(rmid)
    if routine is None:
        _restore_images_only(record)
    else:
        routine(record)


def _cpu_usage(start_ru: resource.struct_rusage, start: float) -> str:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return (f"CPU: user: {ru.ru_utime - start_ru.ru_utime:.2f} s, "
            f"system: {ru.ru_stime - start_ru.ru_stime:.2f} s, "
            f"elapsed: {time.monotonic() - start:.2f} s")


def startup_xlog(datadir: str, settings) -> None:
    """StartupXLOG: report how the cluster was left, recover if needed, open WAL."""
    load_resource_managers()
    cf = read_control_file(datadir)
    _report_state(cf)
    geom = xlog.geometry()
    reader = XLogReader(datadir, geom, system_identifier=cf.system_identifier)
    ckpt = reader.read_record(cf.check_point)
    if ckpt is None:
        elog.ereport(elog.PANIC, "could not locate a valid checkpoint record",
                     detail=reader.error)
        raise RecoveryError("could not locate a valid checkpoint record")
    ck = xi.CHECKPOINT.unpack(bytes(ckpt.main_data))
    redo = ck[0]
    transam.init_from_checkpoint(ck[4], ck[5], ck[8], ck[9])
    elog.debug1(f"checkpoint record is at {xi.format_lsn(cf.check_point)}")
    need_recovery = cf.state != DBState.DB_SHUTDOWNED or redo != cf.check_point
    fsync_on = bool(settings.get("fsync"))
    last_rec, end_of_log = ckpt.lsn, ckpt.end_lsn
    if need_recovery:
        elog.log("database system was not properly shut down; automatic recovery in progress")
        cf.state = DBState.DB_IN_CRASH_RECOVERY
        write_control_file(datadir, cf, do_sync=fsync_on)
        if fsync_on:
            sync_data_directory(datadir)
        transam.set_in_recovery(True)
        last_rec, end_of_log = _perform_wal_recovery(reader, redo, ckpt, settings)
    else:
        # A clean shutdown: nothing may follow the shutdown checkpoint but check.
        rec = reader.read_record()
        if rec is not None:
            last_rec, end_of_log = rec.lsn, rec.end_lsn
    reader.close()
    transam.finish_recovery()
    last_page = _read_last_page(datadir, geom, end_of_log)
    xlog.init_insert_position(end_of_log, last_rec, last_page)
    xlog.set_redo_rec_ptr(redo, bool(settings.get("full_page_writes")))
    xlog.set_recovery_done(cf.system_identifier)
    md.in_recovery = False
    if need_recovery:
        # PerformRecoveryXLogAction: the checkpointer writes the end-of-recovery
        # checkpoint; we wait for it (a standalone process writes it itself).
        from access.xlogcheckpoint import (
            CHECKPOINT_END_OF_RECOVERY,
            CHECKPOINT_IMMEDIATE,
            CHECKPOINT_WAIT,
        )
        from procs.checkpointer import request_checkpoint

        request_checkpoint(CHECKPOINT_END_OF_RECOVERY | CHECKPOINT_IMMEDIATE | CHECKPOINT_WAIT)
    cf = read_control_file(datadir)
    cf.state = DBState.DB_IN_PRODUCTION
    write_control_file(datadir, cf, do_sync=fsync_on)


def _report_state(cf: ControlFile) -> None:
    state = cf.state
    if state == DBState.DB_SHUTDOWNED:
        elog.log(f"database system was shut down at {_when(cf.time)}")
    elif state == DBState.DB_SHUTDOWNING:
        elog.log(f"database system shutdown was interrupted; last known up at {_when(cf.time)}")
    elif state == DBState.DB_IN_CRASH_RECOVERY:
        elog.ereport(
            elog.LOG, f"database system was interrupted while in recovery at {_when(cf.time)}",
            hint="This probably means that some data is corrupted and you will have to use "
                 "the last backup for recovery.")
    else:
        elog.log(f"database system was interrupted; last known up at {_when(cf.time)}")


def _perform_wal_recovery(reader, redo: int, ckpt, settings) -> tuple[int, int]:
    """PerformWalRecovery: replay from ``redo`` to the end of valid WAL."""
    md.in_recovery = True
    rec = reader.read_record(redo) if redo != ckpt.lsn else ckpt
    if rec is None:
        elog.ereport(elog.PANIC, f"could not find redo location {xi.format_lsn(redo)} "
                                 "referenced by checkpoint record", detail=reader.error)
        raise RecoveryError("redo location not found")
    last_rec, end_of_log = ckpt.lsn, ckpt.end_lsn
    interval = float(settings.get("log_startup_progress_interval") or 0) / 1000.0
    start, start_ru = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
    next_progress = start + interval if interval > 0 else float("inf")
    replayed = 0
    first = rec
    while rec is not None:
        if replayed == 0:
            elog.log(f"redo starts at {xi.format_lsn(first.lsn)}")
        _apply(rec)
        replayed += 1
        last_rec, end_of_log = rec.lsn, rec.end_lsn
        now = time.monotonic()
        if now >= next_progress:
            elog.log(f"redo in progress, elapsed time: {now - start:.2f} s, current LSN: "
                     f"{xi.format_lsn(rec.lsn)}")
            next_progress = now + interval
        rec = reader.read_record()
    if reader.error:
        elog.log(reader.error)
    # The checkpoint record itself is always there; anything else means real redo.
    if replayed > 1 or first.lsn != ckpt.lsn:
        elog.log(f"redo done at {xi.format_lsn(last_rec)} system usage: "
                 f"{_cpu_usage(start_ru, start)}")
    else:
        elog.log("redo is not required")
    return last_rec, end_of_log


def _read_last_page(datadir: str, geom, end_of_log: int) -> bytes | None:
    """The WAL page holding ``end_of_log``, which new records will continue."""
    if end_of_log % geom.blcksz == 0:
        return None
    path = os.path.join(datadir, "pg_wal", geom.file_name(1, geom.segno(end_of_log)))
    f = fd.basic_open_file(path, os.O_RDONLY)
    try:
        page_start = end_of_log - end_of_log % geom.blcksz
        return fd.pg_pread(f, geom.blcksz, page_start % geom.seg_size)
    finally:
        fd.basic_close(f)
