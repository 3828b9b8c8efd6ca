"""Relation files made and removed transactionally — mirrors
src/backend/catalog/storage.c (RelationCreateStorage, RelationDropStorage,
RelationTruncate, smgrDoPendingDeletes, smgr_redo) and the XLOG_SMGR_* records
of src/include/catalog/storage_xlog.h.

Creating a relation's file is WAL-logged at once (XLOG_SMGR_CREATE: the
RelFileNode and fork, PostgreSQL 15's xl_smgr_create) so that redo of later
records for the relation finds its file; the file is remembered as a pending
delete *at abort*. Dropping a relation only remembers a pending delete *at
commit*: nothing is removed while the transaction may still abort.
``smgr_do_pending_deletes(is_commit)`` is registered as an access.xact callback,
so it runs once the commit or abort is recorded (CommitTransaction /
AbortTransaction call smgrDoPendingDeletes there) and removes the files of
relations created by an aborted transaction or dropped by a committed one.
``smgr_get_pending_deletes(for_commit)`` lists the RelFileNodes a commit or
abort record should carry (xl_xact_relfilenodes) so that redo removes them too
(``drop_relation_files``). Truncation (``relation_truncate``) is not
transactional: it is WAL-logged (XLOG_SMGR_TRUNCATE), the WAL flushed, then the
file cut, as RelationTruncate does; TRUNCATE TABLE gives the relation new files
instead (catalog.heap.relation_set_new_relfilenode).

Where tusk differs: no subtransactions (no nesting levels in the pending list),
no pending fsyncs for wal_level=minimal (everything is WAL-logged), and no
free space map or visibility map forks.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from access import xlog_internal as xi
from storage import smgr
from storage.relfilenode import MAIN_FORKNUM, RelFileNode

XLOG_SMGR_CREATE = 0x10
XLOG_SMGR_TRUNCATE = 0x20
SMGR_TRUNCATE_HEAP = 0x0001
SMGR_TRUNCATE_VM = 0x0002
SMGR_TRUNCATE_FSM = 0x0004
SMGR_TRUNCATE_ALL = SMGR_TRUNCATE_HEAP | SMGR_TRUNCATE_VM | SMGR_TRUNCATE_FSM

XL_SMGR_CREATE = struct.Struct("<IIIi")       # rnode (spc, db, rel), forkNum
XL_SMGR_TRUNCATE = struct.Struct("<IIIIi")    # blkno, rnode (spc, db, rel), flags


@dataclass
class PendingRelDelete:
    rnode: RelFileNode
    backend: int | None   # None: a permanent relation
    at_commit: bool       # delete at commit (a drop) or at abort (a create)


_pending: list[PendingRelDelete] = []


def _current_xid() -> int:
    from access import xact

    return xact.get_current_transaction_id_if_any()


def log_smgrcreate(rnode: RelFileNode, forknum: int) -> int:
    """log_smgrcreate: the XLOG_SMGR_CREATE record; returns its end LSN."""
    from access import xlog

    return xlog.xlog_insert(xi.RM_SMGR_ID, XLOG_SMGR_CREATE | xi.XLR_SPECIAL_REL_UPDATE,
                            XL_SMGR_CREATE.pack(rnode.spc, rnode.db, rnode.rel, forknum),
                            xid=_current_xid())


def relation_create_storage(rnode: RelFileNode, relpersistence: str = "p",
                            register_delete: bool = True) -> smgr.SMgrRelation:
    """RelationCreateStorage: create the main fork's file, WAL-log it (for a
    permanent relation) and schedule its removal if the transaction aborts."""
    reln = smgr.smgr_open(rnode)
    smgr.smgr_create(reln, MAIN_FORKNUM, False)
    if relpersistence == "p":
        log_smgrcreate(rnode, MAIN_FORKNUM)
    if register_delete:
        _pending.append(PendingRelDelete(rnode, None, at_commit=False))
    return reln


def relation_drop_storage(rnode: RelFileNode) -> None:
    """RelationDropStorage: remove the relation's files when the transaction
    commits (one created by the same transaction also goes at abort, through
    its own entry)."""
    _pending.append(PendingRelDelete(rnode, None, at_commit=True))


def relation_preserve_storage(rnode: RelFileNode, at_commit: bool) -> None:
    """RelationPreserveStorage: forget the pending deletes of ``rnode`` of one kind."""
    _pending[:] = [p for p in _pending if not (p.rnode == rnode and p.at_commit == at_commit)]


def smgr_get_pending_deletes(for_commit: bool) -> list[RelFileNode]:
    """smgrGetPendingDeletes: the files a commit (or abort) record should name."""
    return [p.rnode for p in _pending if p.at_commit == for_commit and p.backend is None]


def has_pending_deletes() -> bool:
    return bool(_pending)


def smgr_do_pending_deletes(is_commit: bool) -> None:
    """smgrDoPendingDeletes: at transaction end, remove the files of relations
    dropped (commit) or created (abort) by the transaction; forget the rest."""
    todo = [p for p in _pending if p.at_commit == is_commit]
    _pending.clear()
    seen: set[tuple[RelFileNode, int | None]] = set()
    for p in todo:
        key = (p.rnode, p.backend)
        if key in seen:
            continue
        seen.add(key)
        smgr.smgr_unlink(smgr.smgr_open(p.rnode, p.backend))


def at_subabort_clear() -> None:
    """Forget every pending delete without acting (a process that abandons its
    transaction state, e.g. after a FATAL, leaves the files to the next start)."""
    _pending.clear()


def drop_relation_files(rnodes: list[RelFileNode], is_redo: bool = False) -> None:
    """DropRelationFiles: remove relations' files now (xact redo of a commit or
    abort record that names them)."""
    for rnode in rnodes:
        smgr.smgr_unlink(smgr.smgr_open(rnode), is_redo=is_redo)


def relation_truncate(rnode: RelFileNode, nblocks: int, relpersistence: str = "p") -> None:
    """RelationTruncate: cut the main fork to ``nblocks``: WAL first (and flushed:
    a truncation cannot be undone), then the buffers past the end and the file."""
    from access import xlog

    reln = smgr.smgr_open(rnode)
    if relpersistence == "p":
        lsn = xlog.xlog_insert(
            xi.RM_SMGR_ID, XLOG_SMGR_TRUNCATE | xi.XLR_SPECIAL_REL_UPDATE,
            XL_SMGR_TRUNCATE.pack(nblocks, rnode.spc, rnode.db, rnode.rel, SMGR_TRUNCATE_ALL),
            xid=_current_xid())
        xlog.xlog_flush(lsn)
    smgr.smgr_truncate(reln, MAIN_FORKNUM, nblocks)


def smgr_redo(record) -> None:
    """smgr_redo: replay XLOG_SMGR_CREATE and XLOG_SMGR_TRUNCATE."""
    info = record.info & xi.XLR_RMGR_INFO_MASK
    data = bytes(record.main_data)
    if info == XLOG_SMGR_CREATE:
        spc, db, rel, forknum = XL_SMGR_CREATE.unpack_from(data)
        smgr.smgr_create(smgr.smgr_open(RelFileNode(spc, db, rel)), forknum, is_redo=True)
    elif info == XLOG_SMGR_TRUNCATE:
        blkno, spc, db, rel, flags = XL_SMGR_TRUNCATE.unpack_from(data)
        reln = smgr.smgr_open(RelFileNode(spc, db, rel))
        # The relation may have been dropped later in the WAL: recreate it, as
        # PostgreSQL does, so that the truncation (and what follows) can replay.
        if not smgr.smgr_exists(reln, MAIN_FORKNUM):
            smgr.smgr_create(reln, MAIN_FORKNUM, is_redo=True)
        if flags & SMGR_TRUNCATE_HEAP and smgr.smgr_nblocks(reln, MAIN_FORKNUM) > blkno:
            smgr.smgr_truncate(reln, MAIN_FORKNUM, blkno)
    else:
        raise ValueError(f"smgr_redo: unknown op code {info}")


def _register() -> None:
    from access import xact
    from access.xlogrecovery import register_redo

    register_redo(xi.RM_SMGR_ID, smgr_redo)
    xact.register_xact_callback(smgr_do_pending_deletes)


_register()
