"""The magnetic disk storage manager — mirrors src/backend/storage/smgr/md.c.

A relation fork is a chain of segment files of RELSEG_SIZE blocks (1 GB):
``base/5/16384``, ``base/5/16384.1``, ... Every segment but the last active one is
exactly RELSEG_SIZE blocks; after a truncate, segments past the end may remain as
zero-length files ("inactive segments") until the relation is unlinked. Each
SMgrRelation keeps, per fork, the list of segment Files it has opened
(``md_seg_fds``), always a prefix of the chain; the kernel descriptors behind them
are managed by fd.py's LRU (max_files_per_process), so any number of segments may
be "open" while only max_safe_fds descriptors are.

Writes and extends of permanent relations register the segment with
sync.register_dirty_segment; nothing here fsyncs except md_immedsync.

Dropping a main fork truncates its first segment and leaves it in place until the
next checkpoint (sync.register_unlink_segment), so its relfilenode cannot be
reused before the drop is durable; other segments and forks go at once.

RELSEG_SIZE is a module attribute read at each call, so tests can shrink it.
Module flags ``zero_damaged_pages`` and ``in_recovery`` stand for the GUC and
for InRecovery. Differences from PostgreSQL: no mdwriteback (Python has no
sync_file_range); errors are PgError subclasses raised instead of ereport(ERROR).
"""

from __future__ import annotations

import errno as _errno
import os
from typing import TYPE_CHECKING

from storage import fd, sync
from storage.bufpage import BLCKSZ, DataCorruptedError
from storage.fd import File, file_access_error
from storage.relfilenode import (
    ALL_FORKS,
    GLOBALTABLESPACE_OID,
    MAIN_FORKNUM,
    InvalidBlockNumber,
    RelFileNode,
    get_database_path,
    relpath,
    segment_path,
)
from utils import elog
from utils.elog import FATAL, PgError

if TYPE_CHECKING:
    from storage.smgr import SMgrRelation

RELSEG_SIZE = 131072  # blocks per segment file: 1 GB of BLCKSZ pages

zero_damaged_pages = False  # GUC zero_damaged_pages
in_recovery = False         # InRecovery: tolerate missing/short files during redo

# _mdfd_getseg behaviours
EXTENSION_FAIL = 1 << 0             # ereport if segment not present
EXTENSION_RETURN_NULL = 1 << 1      # return None if segment not present
EXTENSION_CREATE = 1 << 2           # create new segments as needed
EXTENSION_CREATE_RECOVERY = 1 << 3  # create new segments if in recovery
EXTENSION_DONT_CHECK_SIZE = 1 << 4  # allow access to segments beyond the end

_ZERO_PAGE = bytes(BLCKSZ)
_OPEN_FLAGS = os.O_RDWR


class ShortReadError(DataCorruptedError):
    """mdread found fewer than BLCKSZ bytes (a read past end of file): XX001."""

    def __init__(self, blocknum: int, path: str, nbytes: int) -> None:
        super().__init__(f'could not read block {blocknum} in file "{path}": '
                         f"read only {nbytes} of {BLCKSZ} bytes")
        self.blocknum = blocknum
        self.path = path
        self.nbytes = nbytes


def _file_possibly_deleted(err: int | None) -> bool:
    return err == _errno.ENOENT


def _base_path(reln: SMgrRelation, forknum: int) -> str:
    return relpath(reln.rnode, forknum, reln.backend)


# -- opening ------------------------------------------------------------------------------

def md_create(reln: SMgrRelation, forknum: int, is_redo: bool = False) -> None:
    """mdcreate: create the fork's first segment (and the database directory)."""
    if is_redo and reln.md_seg_fds[forknum]:
        return  # created and opened already
    _tablespace_create_dbspace(reln.rnode, is_redo)
    path = _base_path(reln, forknum)
    try:
        f = fd.path_name_open_file(path, _OPEN_FLAGS | os.O_CREAT | os.O_EXCL)
    except OSError as exc:
        f = None
        if is_redo:
            try:
                f = fd.path_name_open_file(path, _OPEN_FLAGS)
            except OSError:
                pass
        if f is None:  # report create's error, not open's
            raise file_access_error(f'could not create file "{path}"', exc) from exc
    reln.md_seg_fds[forknum] = [f]


def _tablespace_create_dbspace(rnode: RelFileNode, is_redo: bool) -> None:
    """TablespaceCreateDbspace: make base/<db> on first use (not for global/)."""
    if rnode.spc == GLOBALTABLESPACE_OID:
        return
    path = get_database_path(rnode.db, rnode.spc)
    if fd.file_exists(path):
        return
    try:
        if is_redo:
            parent = os.path.dirname(path)
            if parent and not fd.file_exists(parent):
                fd.make_pg_directory(parent)
        fd.make_pg_directory(path)
    except FileExistsError:
        pass
    except OSError as exc:
        raise file_access_error(f'could not create directory "{path}"', exc) from exc


def _mdopenfork(reln: SMgrRelation, forknum: int, behavior: int) -> File | None:
    """mdopenfork: the first segment, opened if necessary."""
    segs = reln.md_seg_fds[forknum]
    if segs:
        return segs[0]
    path = _base_path(reln, forknum)
    try:
        f = fd.path_name_open_file(path, _OPEN_FLAGS)
    except OSError as exc:
        if behavior & EXTENSION_RETURN_NULL and _file_possibly_deleted(exc.errno):
            return None
        raise file_access_error(f'could not open file "{path}"', exc) from exc
    segs.append(f)
    return f


def md_open(reln: SMgrRelation) -> None:
    """mdopen: nothing is opened until first use."""
    for segs in reln.md_seg_fds:
        segs.clear()


def md_close(reln: SMgrRelation, forknum: int) -> None:
    """mdclose: close every open segment of the fork."""
    segs = reln.md_seg_fds[forknum]
    while segs:
        segs.pop().close()


def md_exists(reln: SMgrRelation, forknum: int) -> bool:
    """mdexists: does the fork's first segment exist? (Closes first, to notice an
    unlink by another process since we opened it.)"""
    if not in_recovery:
        md_close(reln, forknum)
    return _mdopenfork(reln, forknum, EXTENSION_RETURN_NULL) is not None


def _mdfd_openseg(reln: SMgrRelation, forknum: int, segno: int, oflags: int) -> File:
    """_mdfd_openseg: open segment ``segno`` (the next one) and append it."""
    path = segment_path(_base_path(reln, forknum), segno)
    f = fd.path_name_open_file(path, _OPEN_FLAGS | oflags)
    reln.md_seg_fds[forknum].append(f)
    return f


def _mdnblocks(f: File) -> int:
    try:
        return f.size() // BLCKSZ
    except OSError as exc:
        raise file_access_error(f'could not seek to end of file "{f.path}"', exc) from exc


def _mdfd_getseg(reln: SMgrRelation, forknum: int, blkno: int, skip_fsync: bool,
                 behavior: int) -> File | None:
    """_mdfd_getseg: the segment holding ``blkno``, opening (or with
    EXTENSION_CREATE, creating and padding) the segments before it."""
    segs = reln.md_seg_fds[forknum]
    relseg = RELSEG_SIZE
    targetseg = blkno // relseg
    if targetseg < len(segs):
        return segs[targetseg]
    if not segs:
        if _mdopenfork(reln, forknum, behavior) is None:
            return None
    if in_recovery and behavior & EXTENSION_CREATE_RECOVERY:
        behavior |= EXTENSION_CREATE
    for nextsegno in range(len(segs), targetseg + 1):
        nblocks = _mdnblocks(segs[nextsegno - 1])
        if nblocks > relseg:
            raise PgError("XX000", "segment too big", severity=FATAL)
        flags = 0
        if behavior & EXTENSION_CREATE:
            # Pad the previous segment to full size so the chain stays valid; a
            # hole is enough (PostgreSQL writes its last block the same way).
            if nblocks < relseg:
                md_extend(reln, forknum, nextsegno * relseg - 1, _ZERO_PAGE, skip_fsync)
            flags = os.O_CREAT
        elif not behavior & EXTENSION_DONT_CHECK_SIZE and nblocks < relseg:
            if behavior & EXTENSION_RETURN_NULL:
                return None
            path = segment_path(_base_path(reln, forknum), nextsegno)
            raise PgError("58P01", f'could not open file "{path}" (target block {blkno}): '
                                   f"previous segment is only {nblocks} blocks")
        try:
            _mdfd_openseg(reln, forknum, nextsegno, flags)
        except OSError as exc:
            if behavior & EXTENSION_RETURN_NULL and _file_possibly_deleted(exc.errno):
                return None
            path = segment_path(_base_path(reln, forknum), nextsegno)
            raise file_access_error(f'could not open file "{path}" (target block {blkno})',
                                    exc) from exc
    return segs[targetseg]


# -- block I/O (hot path) --------------------------------------------------------------------

def md_read(reln: SMgrRelation, forknum: int, blocknum: int,
            buf: bytearray | memoryview | None = None) -> bytes | bytearray | memoryview:
    """mdread: block ``blocknum`` as bytes, or read into ``buf`` and return it.

    A short read raises ShortReadError ("could not read block N in file ...: read
    only X of 8192 bytes", XX001) unless zero_damaged_pages or in_recovery, when
    the block reads as zeroes.
    """
    segs = reln.md_seg_fds[forknum]
    segno = blocknum // RELSEG_SIZE
    v = segs[segno] if segno < len(segs) else _mdfd_getseg(
        reln, forknum, blocknum, False, EXTENSION_FAIL | EXTENSION_CREATE_RECOVERY)
    assert v is not None
    offset = (blocknum - segno * RELSEG_SIZE) * BLCKSZ
    try:
        if buf is None:
            data = v.read(BLCKSZ, offset)
            if len(data) == BLCKSZ:
                return data
            nbytes = len(data)
        else:
            nbytes = v.read_into(buf, offset)
            if nbytes == BLCKSZ:
                return buf
    except OSError as exc:
        raise file_access_error(f'could not read block {blocknum} in file "{v.path}"',
                                exc) from exc
    # Short read. In recovery, or with zero_damaged_pages, a block past EOF reads as
    # zeroes: the relation was extended and then truncated, or is being rebuilt.
    if zero_damaged_pages or in_recovery:
        if buf is None:
            return _ZERO_PAGE
        buf[:BLCKSZ] = _ZERO_PAGE
        return buf
    raise ShortReadError(blocknum, v.path, nbytes)


def md_write(reln: SMgrRelation, forknum: int, blocknum: int,
             data: bytes | bytearray | memoryview, skip_fsync: bool = False) -> None:
    """mdwrite: write an existing block (use md_extend to add blocks)."""
    segs = reln.md_seg_fds[forknum]
    segno = blocknum // RELSEG_SIZE
    v = segs[segno] if segno < len(segs) else _mdfd_getseg(
        reln, forknum, blocknum, skip_fsync, EXTENSION_FAIL | EXTENSION_CREATE_RECOVERY)
    assert v is not None
    try:
        nbytes = v.write(data, (blocknum - segno * RELSEG_SIZE) * BLCKSZ)
    except OSError as exc:
        raise file_access_error(f'could not write block {blocknum} in file "{v.path}"',
                                exc) from exc
    if nbytes != BLCKSZ:
        raise PgError("53100", f'could not write block {blocknum} in file "{v.path}": '
                               f"wrote only {nbytes} of {BLCKSZ} bytes",
                      hint="Check free disk space.")
    if not skip_fsync and reln.backend is None:
        sync.register_dirty_segment(reln.rnode, forknum, segno, v)


def md_extend(reln: SMgrRelation, forknum: int, blocknum: int,
              data: bytes | bytearray | memoryview | None = None,
              skip_fsync: bool = False) -> None:
    """mdextend: write block ``blocknum`` at or past the end (zeroes if no data),
    creating the next segment when the current one is full."""
    if blocknum == InvalidBlockNumber:
        raise PgError("54000", f'cannot extend file "{_base_path(reln, forknum)}" '
                               f"beyond {InvalidBlockNumber} blocks")
    v = _mdfd_getseg(reln, forknum, blocknum, skip_fsync, EXTENSION_CREATE)
    assert v is not None
    segno = blocknum // RELSEG_SIZE
    try:
        nbytes = v.extend(_ZERO_PAGE if data is None else data,
                          (blocknum - segno * RELSEG_SIZE) * BLCKSZ)
    except OSError as exc:
        raise file_access_error(f'could not extend file "{v.path}"', exc,
                                hint="Check free disk space.") from exc
    if nbytes != BLCKSZ:
        raise PgError("53100", f'could not extend file "{v.path}": wrote only {nbytes} '
                               f"of {BLCKSZ} bytes at block {blocknum}",
                      hint="Check free disk space.")
    if not skip_fsync and reln.backend is None:
        sync.register_dirty_segment(reln.rnode, forknum, segno, v)


def md_prefetch(reln: SMgrRelation, forknum: int, blocknum: int) -> bool:
    """mdprefetch: POSIX_FADV_WILLNEED for one block; False if the segment is missing."""
    v = _mdfd_getseg(reln, forknum, blocknum, False, EXTENSION_RETURN_NULL)
    if v is None:
        return False
    v.prefetch((blocknum % RELSEG_SIZE) * BLCKSZ, BLCKSZ)
    return True


# -- size ------------------------------------------------------------------------------------

def md_nblocks(reln: SMgrRelation, forknum: int) -> int:
    """mdnblocks: blocks in the fork. Segments already open before the last are
    known to be full; only the last open one is measured, then any that follow."""
    _mdopenfork(reln, forknum, EXTENSION_FAIL)
    segs = reln.md_seg_fds[forknum]
    relseg = RELSEG_SIZE
    segno = len(segs) - 1
    v = segs[segno]
    while True:
        nblocks = _mdnblocks(v)
        if nblocks > relseg:
            raise PgError("XX000", "segment too big", severity=FATAL)
        if nblocks < relseg:
            return segno * relseg + nblocks
        segno += 1
        # No O_CREAT: a segment that vanished must not be silently recreated.
        try:
            v = _mdfd_openseg(reln, forknum, segno, 0)
        except OSError:
            return segno * relseg


def md_truncate(reln: SMgrRelation, forknum: int, nblocks: int) -> None:
    """mdtruncate: cut the fork to ``nblocks``. Segments wholly past the end are
    truncated to zero length and closed but not removed (another process may
    still have them open); see the module docstring."""
    curnblk = md_nblocks(reln, forknum)
    if nblocks > curnblk:
        if in_recovery:
            return
        raise PgError("XX000", f'could not truncate file "{_base_path(reln, forknum)}" to '
                               f"{nblocks} blocks: it's only {curnblk} blocks now")
    if nblocks == curnblk:
        return
    segs = reln.md_seg_fds[forknum]
    relseg = RELSEG_SIZE
    while segs:
        segno = len(segs) - 1
        v = segs[segno]
        priorblocks = segno * relseg
        if priorblocks > nblocks:
            # Whole segment is past the end (never the first segment).
            try:
                v.truncate(0)
            except OSError as exc:
                raise file_access_error(f'could not truncate file "{v.path}"', exc) from exc
            if reln.backend is None:
                sync.register_dirty_segment(reln.rnode, forknum, segno, v)
            segs.pop()
            v.close()
        elif priorblocks + relseg > nblocks:
            # The last segment we keep: cut it to length. If nblocks is an exact
            # multiple of RELSEG_SIZE, this leaves the next segment empty but present.
            try:
                v.truncate((nblocks - priorblocks) * BLCKSZ)
            except OSError as exc:
                raise file_access_error(f'could not truncate file "{v.path}" to {nblocks} '
                                        "blocks", exc) from exc
            if reln.backend is None:
                sync.register_dirty_segment(reln.rnode, forknum, segno, v)
            break
        else:
            break


def md_immedsync(reln: SMgrRelation, forknum: int) -> None:
    """mdimmedsync: fsync every active segment now (raises fd.DataSyncError)."""
    md_nblocks(reln, forknum)  # opens all active segments
    for v in reln.md_seg_fds[forknum]:
        v.sync()


# -- unlink ------------------------------------------------------------------------------------

def md_unlink(rnode: RelFileNode, backend: int | None, forknum: int | None,
              is_redo: bool = False) -> None:
    """mdunlink: remove one fork (or all with None). Callers close the
    SMgrRelation first (smgr_unlink does)."""
    for f in (ALL_FORKS if forknum is None else (forknum,)):
        _mdunlinkfork(rnode, backend, f, is_redo)


def _do_truncate(path: str) -> int:
    """do_truncate: cut a file to zero so other processes' descriptors do not pin
    its space. Returns 0 or the errno; failures other than ENOENT warn."""
    try:
        fd.pg_truncate(path, 0)
        return 0
    except OSError as exc:
        err = exc.errno or _errno.EIO
        if err != _errno.ENOENT:
            elog.warning(f'could not truncate file "{path}": {os.strerror(err)}',
                         sqlstate=fd.errcode_for_file_access(err))
        return err


def _unlink(path: str) -> int:
    """unlink; returns 0 or the errno (failures other than ENOENT warn)."""
    try:
        fd.unlink(path)
        return 0
    except OSError as exc:
        err = exc.errno or _errno.EIO
        if err != _errno.ENOENT:
            elog.warning(f'could not remove file "{path}": {os.strerror(err)}',
                         sqlstate=fd.errcode_for_file_access(err))
        return err


def _mdunlinkfork(rnode: RelFileNode, backend: int | None, forknum: int,
                  is_redo: bool) -> None:
    path = relpath(rnode, forknum, backend)
    temp = backend is not None
    if is_redo or forknum != MAIN_FORKNUM or temp:
        err = 0
        if not temp:
            err = _do_truncate(path)
            sync.register_forget_request(rnode, forknum, 0)
        if err == 0 or err != _errno.ENOENT:
            err = _unlink(path)
    else:
        # Keep the emptied first segment until the next checkpoint (see docstring).
        err = _do_truncate(path)
        sync.register_unlink_segment(rnode, forknum, 0)
    if err:
        return
    # Remove further segments until one is missing; that also catches inactive
    # (zero-length) segments left by truncation.
    segno = 1
    while True:
        segpath = segment_path(path, segno)
        if not temp:
            if _do_truncate(segpath) == _errno.ENOENT:
                break
            sync.register_forget_request(rnode, forknum, segno)
        if _unlink(segpath):
            break
        segno += 1


# -- sync handler (syncsw[SYNC_HANDLER_MD]) -------------------------------------------------

def md_sync_filetag(tag: sync.FileTag) -> str:
    """mdsyncfiletag: fsync one segment, reusing an open File when there is one
    (so a write error seen through that descriptor is reported). Returns the path."""
    from storage.smgr import smgr_open  # smgr imports md

    reln = smgr_open(tag.rnode)
    segs = reln.md_seg_fds[tag.forknum]
    if tag.segno < len(segs):
        f = segs[tag.segno]
        f.sync()
        return f.path
    path = segment_path(relpath(tag.rnode, tag.forknum), tag.segno)
    f = fd.path_name_open_file(path, _OPEN_FLAGS)
    try:
        f.sync()
    finally:
        f.close()
    return path


def md_unlink_filetag(tag: sync.FileTag) -> str:
    """mdunlinkfiletag: the deferred unlink of a dropped main fork's first segment."""
    path = segment_path(relpath(tag.rnode, tag.forknum), tag.segno)
    fd.unlink(path)
    return path


def md_filetag_matches(ftag: sync.FileTag, candidate: sync.FileTag) -> bool:
    """mdfiletagmatches: filter requests only drop whole databases."""
    return ftag.rnode.db == candidate.rnode.db


sync.register_sync_handler(sync.SYNC_HANDLER_MD,
                           sync.SyncOps(md_sync_filetag, md_unlink_filetag,
                                        md_filetag_matches))


def _assign_zero_damaged_pages(value: object) -> None:
    global zero_damaged_pages
    zero_damaged_pages = bool(value)


def _register_assign_hooks() -> None:
    from conf.guc import register_assign_hook

    register_assign_hook("zero_damaged_pages", _assign_zero_damaged_pages)


_register_assign_hooks()
