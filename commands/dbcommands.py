"""CREATE DATABASE and DROP DATABASE — mirrors src/backend/commands/dbcommands.c
of PostgreSQL 15 (createdb with the FILE_COPY strategy, dropdb, dbase_redo,
CountOtherDBBackends of procarray.c, errdetail_busy_db) and the buffer passes
DropDatabaseBuffers / FlushDatabaseBuffers of bufmgr.c.

Interface for the SQL layer (neither may run inside a transaction block: the
caller refuses with 25001, as PreventInTransactionBlock does):

``createdb(name, owner=None, template=None, *, connlimit=-1, istemplate=False,
allowconn=True)`` -> OID
    Copies the template's directory (template1 by default) to base/<new OID>:
    an immediate checkpoint first writes the template's pages (its dirty buffers)
    to disk, the copy is WAL-logged as XLOG_DBASE_CREATE_FILE_COPY
    (xl_dbase_create_file_copy_rec), a second checkpoint makes replaying it
    unnecessary, and the pg_database row goes in through heapam. Errors: 42P04
    ``database "x" already exists``, 3D000 ``template database "x" does not
    exist``, 55006 ``source database "x" is being accessed by other users``.
    If anything fails after the copy began, the new directory is removed.
``dropdb(name, missing_ok=False, force=False)``
    Deletes the pg_database row, forgets the database's buffers and fsync
    requests, checkpoints, then removes base/<OID> and WAL-logs XLOG_DBASE_DROP.
    Errors: 3D000 ``database "x" does not exist`` (NOTICE ``..., skipping`` with
    ``missing_ok``), 42809 ``cannot drop a template database``, 55006 ``cannot
    drop the currently open database``, 55006 ``database "x" is being accessed
    by other users`` with DETAIL ``There is 1 other session using the
    database.``. ``force`` (WITH (FORCE)) first terminates those sessions.
``get_database_oid(name, missing_ok=False)``, ``get_role_oid(name, missing_ok=False)``
``compile_statement(kind, body)``
    The runner tcop.utility uses for CreatedbStmt / DropdbStmt (options as
    PostgreSQL checks them; 25001 inside a transaction block).

The sessions connected to a database are counted from shmem/sinval.py's
per-backend database slots, waiting up to 5 seconds for them to leave, as
CountOtherDBBackends does. Where tusk differs: only the default tablespace
(no per-database tablespaces), STRATEGY = WAL_LOG (PostgreSQL 15's default)
copies files too, UTF8 and the C locale only, no lock on the database
object (a session that connects between the check and the commit of DROP
DATABASE finds its database gone at its next catalog access).
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
import time

from access import xlog_internal as xi
from catalog import bootstrap, indexing
from catalog import catalog as catalog_mod
from catalog import catalog_defs as cd
from storage import fd
from storage.relfilenode import DEFAULTTABLESPACE_OID, get_database_path
from utils import elog, relcache, syscache
from utils.elog import PgError

XLOG_DBASE_CREATE_FILE_COPY = 0x00
XLOG_DBASE_CREATE_WAL_LOG = 0x10
XLOG_DBASE_DROP = 0x20
XL_DBASE_CREATE_FILE_COPY = struct.Struct("<IIII")  # db_id, tablespace_id, src_db_id, src_tablespace_id
XL_DBASE_DROP = struct.Struct("<Ii")                # db_id, ntablespaces (+ Oid[] tablespace_ids)
_U32 = struct.Struct("<I")

DEFAULT_TEMPLATE = "template1"


# -- lookups -------------------------------------------------------------------------------

def _find_database(name: str) -> bootstrap.Database | None:
    """get_db_info: the pg_database row of ``name`` with the catalog snapshot."""
    rel = relcache.catalog_relation(cd.PG_DATABASE)
    col = cd.PG_DATABASE.col["datname"]
    for _tid, row in indexing.systable_scan(rel):
        if row[col] == name:
            return bootstrap.database_from_row(row)
    return None


def get_database_oid(name: str, missing_ok: bool = False) -> int:
    """get_database_oid: 3D000 if there is no such database (0 with missing_ok)."""
    db = _find_database(name)
    if db is None:
        if missing_ok:
            return 0
        raise PgError("3D000", f'database "{name}" does not exist')
    return db.oid


def get_role_oid(name: str, missing_ok: bool = False) -> int:
    """get_role_oid: 42704 if there is no such role (0 with missing_ok)."""
    found = syscache.role_row(name)
    if found is None:
        if missing_ok:
            return 0
        raise PgError("42704", f'role "{name}" does not exist')
    return found[1][cd.PG_AUTHID.col["oid"]]


# -- other sessions ------------------------------------------------------------------------

def errdetail_busy_db(nother: int) -> str:
    if nother == 1:
        return "There is 1 other session using the database."
    return f"There are {nother} other sessions using the database."


def count_other_db_backends(database_id: int, wait: float = 5.0) -> int:
    """CountOtherDBBackends: the other sessions connected to the database, after
    waiting up to ``wait`` seconds (checking every 100 ms) for them to leave."""
    from shmem import sinval

    me = os.getpid()
    deadline = time.monotonic() + wait
    while True:
        others = [p for p in sinval.database_backend_pids(database_id) if p != me]
        if not others or time.monotonic() >= deadline:
            return len(others)
        time.sleep(0.1)


def terminate_other_db_backends(database_id: int) -> None:
    """TerminateOtherDBBackends (DROP DATABASE ... WITH (FORCE)): SIGTERM them."""
    from shmem import sinval

    me = os.getpid()
    for pid in sinval.database_backend_pids(database_id):
        if pid != me:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


# -- buffers of a whole database -------------------------------------------------------------

def drop_database_buffers(dbid: int) -> None:
    """DropDatabaseBuffers: forget (without writing) every buffer of the database."""
    from storage import bufmgr

    p = bufmgr._pool
    if p is None:
        return
    descs = p.descs
    for buf_id in range(p.nbuffers):
        if descs.tag(buf_id)[1] != dbid:
            continue  # unlocked pre-check, as PostgreSQL
        state = descs.lock_buf_hdr(buf_id)
        if state & bufmgr.BM_TAG_VALID and descs.tag(buf_id)[1] == dbid:
            bufmgr._invalidate_buffer(p, buf_id, state)
        else:
            descs.unlock_buf_hdr(buf_id, state)


def flush_database_buffers(dbid: int) -> None:
    """FlushDatabaseBuffers: write every dirty buffer of the database."""
    from shmem.lwlock import LW_SHARED, lwlock_acquire, lwlock_release
    from storage import bufmgr

    p = bufmgr._pool
    if p is None:
        return
    descs = p.descs
    want = bufmgr.BM_VALID | bufmgr.BM_DIRTY
    for buf_id in range(p.nbuffers):
        if descs.tag(buf_id)[1] != dbid:
            continue
        state = descs.lock_buf_hdr(buf_id)
        if state & want == want and descs.tag(buf_id)[1] == dbid:
            bufmgr._pin_buffer_locked(p, buf_id, state)
            lwlock_acquire(descs.content_locks[buf_id], LW_SHARED)
            try:
                bufmgr.flush_buffer(buf_id)
            finally:
                lwlock_release(descs.content_locks[buf_id])
                bufmgr._unpin_buffer(p, buf_id)
        else:
            descs.unlock_buf_hdr(buf_id, state)


# -- files -----------------------------------------------------------------------------------

def copydir(src: str, dst: str) -> None:
    """copydir (not recursive): copy every regular file, fsync each and the new
    directory. Paths are relative to the data directory."""
    src_abs, dst_abs = fd.absolute_path(src), fd.absolute_path(dst)
    fd.make_pg_directory(dst)
    for name in sorted(os.listdir(src_abs)):
        path = os.path.join(src_abs, name)
        if not os.path.isfile(path) or name == "pg_internal.init":
            continue
        shutil.copyfile(path, os.path.join(dst_abs, name))
        os.chmod(os.path.join(dst_abs, name), 0o600)
        fd.fsync_fname(os.path.join(dst, name))
    fd.fsync_fname(dst, isdir=True)
    fd.fsync_parent_path(dst)


def remove_database_directory(dbid: int, spc: int = DEFAULTTABLESPACE_OID) -> None:
    """rmtree of base/<dbid> (and its parent's fsync), quietly if it is gone."""
    path = get_database_path(dbid, spc)
    abs_path = fd.absolute_path(path)
    if not os.path.isdir(abs_path):
        return
    from storage import smgr

    smgr.smgr_close_all()  # our descriptors on files of the directory
    shutil.rmtree(abs_path, ignore_errors=True)
    fd.fsync_parent_path(path)


def _request_checkpoint(flags: int) -> None:
    from procs.checkpointer import request_checkpoint

    request_checkpoint(flags)


# -- CREATE DATABASE ---------------------------------------------------------------------------

def createdb(name: str, owner: str | None = None, template: str | None = None, *,
             connlimit: int = -1, istemplate: bool = False, allowconn: bool = True) -> int:
    """createdb with STRATEGY = FILE_COPY (see the module docstring)."""
    from access import xact, xlog
    from access.xlogcheckpoint import (
        CHECKPOINT_FLUSH_ALL,
        CHECKPOINT_FORCE,
        CHECKPOINT_IMMEDIATE,
        CHECKPOINT_WAIT,
    )

    dba = get_role_oid(owner) if owner is not None else catalog_mod.get_user_id()
    template = template or DEFAULT_TEMPLATE
    src = _find_database(template)
    if src is None:
        raise PgError("3D000", f'template database "{template}" does not exist')
    if not src.datistemplate and not catalog_mod.session.is_superuser and \
            src.datdba != catalog_mod.get_user_id():
        raise PgError("42501", f'permission denied to copy database "{template}"')
    if _find_database(name) is not None:
        raise PgError("42P04", f'database "{name}" already exists')
    if connlimit < -1:
        raise PgError("22023", f"invalid connection limit: {connlimit}")
    nother = count_other_db_backends(src.oid)
    if nother:
        raise PgError("55006", f'source database "{template}" is being accessed by other users',
                      detail=errdetail_busy_db(nother))
    while True:
        dboid = catalog_mod.get_new_oid(cd.PG_DATABASE)
        if not fd.file_exists(get_database_path(dboid, DEFAULTTABLESPACE_OID)):
            break
    indexing.catalog_tuple_insert(relcache.catalog_relation(cd.PG_DATABASE),
                                  bootstrap.database_row(
                                      dboid, name, istemplate=istemplate, allowconn=allowconn,
                                      dba=dba, connlimit=connlimit))
    copied = False
    try:
        # The template's pages must be on disk before the files are copied.
        _request_checkpoint(CHECKPOINT_IMMEDIATE | CHECKPOINT_FORCE | CHECKPOINT_WAIT
                            | CHECKPOINT_FLUSH_ALL)
        copied = True
        copydir(get_database_path(src.oid, DEFAULTTABLESPACE_OID),
                get_database_path(dboid, DEFAULTTABLESPACE_OID))
        xlog.xlog_insert(xi.RM_DBASE_ID, XLOG_DBASE_CREATE_FILE_COPY | xi.XLR_SPECIAL_REL_UPDATE,
                         XL_DBASE_CREATE_FILE_COPY.pack(dboid, DEFAULTTABLESPACE_OID, src.oid,
                                                        DEFAULTTABLESPACE_OID),
                         xid=xact.get_current_transaction_id_if_any())
        xact.force_sync_commit()  # even with synchronous_commit off, as PostgreSQL
        # So that a crash never has to replay the copy (its source may have
        # changed by then).
        _request_checkpoint(CHECKPOINT_IMMEDIATE | CHECKPOINT_FORCE | CHECKPOINT_WAIT)
    except BaseException:
        if copied:
            remove_database_directory(dboid)  # createdb_failure_callback
        raise
    indexing.command_counter_increment()
    return dboid


# -- DROP DATABASE -----------------------------------------------------------------------------

def dropdb(name: str, missing_ok: bool = False, force: bool = False) -> None:
    """dropdb (see the module docstring)."""
    from access import xact, xlog
    from access.xlogcheckpoint import CHECKPOINT_FORCE, CHECKPOINT_IMMEDIATE, CHECKPOINT_WAIT
    from storage import sync

    rel = relcache.catalog_relation(cd.PG_DATABASE)
    col = cd.PG_DATABASE.col["datname"]
    found = None
    for tid, row in indexing.systable_scan(rel):
        if row[col] == name:
            found = (tid, bootstrap.database_from_row(row))
            break
    if found is None:
        if not missing_ok:
            raise PgError("3D000", f'database "{name}" does not exist')
        elog.ereport(elog.NOTICE, f'database "{name}" does not exist, skipping',
                     sqlstate="00000")
        return
    tid, db = found
    if not catalog_mod.session.is_superuser and db.datdba != catalog_mod.get_user_id():
        raise PgError("42501", f"must be owner of database {name}")
    if db.datistemplate:
        raise PgError("42809", "cannot drop a template database")
    if db.oid == catalog_mod.my_database_id():
        raise PgError("55006", "cannot drop the currently open database")
    if force:
        terminate_other_db_backends(db.oid)
    nother = count_other_db_backends(db.oid)
    if nother:
        raise PgError("55006", f'database "{name}" is being accessed by other users',
                      detail=errdetail_busy_db(nother))
    indexing.catalog_tuple_delete(rel, tid)
    drop_database_buffers(db.oid)
    sync.forget_database_sync_requests(db.oid)
    # The checkpointer must have absorbed the forget request before the files go.
    _request_checkpoint(CHECKPOINT_IMMEDIATE | CHECKPOINT_FORCE | CHECKPOINT_WAIT)
    remove_database_directory(db.oid)
    xlog.xlog_insert(xi.RM_DBASE_ID, XLOG_DBASE_DROP | xi.XLR_SPECIAL_REL_UPDATE,
                     XL_DBASE_DROP.pack(db.oid, 1) + _U32.pack(DEFAULTTABLESPACE_OID),
                     xid=xact.get_current_transaction_id_if_any())
    xact.force_sync_commit()  # the files are gone: the commit must not be lost
    indexing.command_counter_increment()


# -- the statements ----------------------------------------------------------------------------

def _defelem_value(d: dict) -> object:
    arg = d.get("arg")
    if arg is None:
        return None
    (kind, node), = arg.items()
    if kind == "Integer":
        return node.get("ival", 0)
    if kind == "Boolean":
        return bool(node.get("boolval"))
    if kind in ("String", "TypeName"):
        if kind == "TypeName":
            return ".".join(n["String"]["sval"] for n in node["names"])
        return node.get("sval", "")
    if kind == "Float":
        return node.get("fval")
    return None


def _bool_option(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    text = str(value).lower()
    if text in ("true", "on", "1", "yes"):
        return True
    if text in ("false", "off", "0", "no"):
        return False
    raise PgError("22023", f"{name} requires a Boolean value")


def _int_option(name: str, value: object) -> int:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PgError("22023", f"{name} requires an integer value") from None


_CREATEDB_OPTIONS = ("owner", "template", "encoding", "locale", "lc_collate", "lc_ctype",
                     "icu_locale", "locale_provider", "collation_version", "tablespace",
                     "allow_connections", "connection_limit", "is_template", "oid", "strategy")


def _prevent_in_transaction_block(s: object, what: str) -> None:
    xact_block = getattr(s, "xact", None)
    if xact_block is not None and getattr(xact_block, "in_block", False):
        raise PgError("25001", f"{what} cannot run inside a transaction block")


def compile_statement(kind: str, body: dict):
    """A runner ``run(session, params) -> (rows, tag)`` for CreatedbStmt (CREATE
    DATABASE name [WITH] option ...) or DropdbStmt (DROP DATABASE [IF EXISTS] name
    [WITH (FORCE)]): the options checked as createdb()/DropDatabase do, the work
    done by createdb / dropdb."""
    name = body["dbname"]
    if kind == "DropdbStmt":
        force = False
        for opt in body.get("options") or []:
            d = opt["DefElem"]
            if d["defname"] != "force":
                raise PgError("42601", f'unrecognized DROP DATABASE option "{d["defname"]}"')
            force = True
        missing_ok = bool(body.get("missing_ok"))

        def run_drop(s, _params):
            _prevent_in_transaction_block(s, "DROP DATABASE")
            dropdb(name, missing_ok=missing_ok, force=force)
            return [], "DROP DATABASE"
        return run_drop

    opts: dict[str, object] = {}
    for opt in body.get("options") or []:
        d = opt["DefElem"]
        oname = d["defname"]
        if oname not in _CREATEDB_OPTIONS:
            raise PgError("42601", f'option "{oname}" not recognized')
        if oname in opts:
            raise PgError("42601", "conflicting or redundant options")
        opts[oname] = _defelem_value(d)
    strategy = str(opts.get("strategy", "wal_log")).lower()
    if strategy not in ("wal_log", "file_copy"):
        raise PgError("22023", f'invalid create database strategy "{opts["strategy"]}"',
                      hint='Valid strategies are "wal_log", and "file_copy".')
    encoding = opts.get("encoding")
    if encoding is not None and str(encoding).upper().replace("-", "") not in ("UTF8", "6"):
        raise PgError("0A000", "only the UTF8 encoding is supported")
    for loc in ("locale", "lc_collate", "lc_ctype"):
        if loc in opts and str(opts[loc]) not in ("C", "POSIX"):
            raise PgError("0A000", "only the C locale is supported")
    if str(opts.get("locale_provider", "libc")).lower() != "libc":
        raise PgError("0A000", "only the libc locale provider is supported")
    tablespace = opts.get("tablespace")
    if tablespace is not None and tablespace != "pg_default":
        raise PgError("0A000", "only the pg_default tablespace is supported")
    if "oid" in opts:
        raise PgError("0A000", "CREATE DATABASE ... OID is not supported")
    owner = opts.get("owner")
    template = opts.get("template")
    connlimit = _int_option("connection_limit", opts.get("connection_limit", -1))
    istemplate = _bool_option("is_template", opts.get("is_template", False))
    allowconn = _bool_option("allow_connections", opts.get("allow_connections", True))

    def run_create(s, _params):
        _prevent_in_transaction_block(s, "CREATE DATABASE")
        if not catalog_mod.session.is_superuser:
            found = syscache.role_row(catalog_mod.session.user_name)
            if found is None or not found[1][cd.PG_AUTHID.col["rolcreatedb"]]:
                raise PgError("42501", "permission denied to create database")
        createdb(name, None if owner is None else str(owner),
                 None if template is None else str(template), connlimit=connlimit,
                 istemplate=istemplate, allowconn=allowconn)
        return [], "CREATE DATABASE"
    return run_create


# -- redo --------------------------------------------------------------------------------------

def dbase_redo(record) -> None:
    """dbase_redo: replay a directory copy or removal."""
    from storage import smgr, sync

    info = record.info & xi.XLR_RMGR_INFO_MASK
    data = bytes(record.main_data)
    if info == XLOG_DBASE_CREATE_FILE_COPY:
        dboid, spc, src_db, src_spc = XL_DBASE_CREATE_FILE_COPY.unpack_from(data)
        # Replaying a CREATE: forcibly drop the target if present, then copy the
        # source as it is now on disk (after writing its replayed pages).
        dst = get_database_path(dboid, spc)
        if os.path.isdir(fd.absolute_path(dst)):
            drop_database_buffers(dboid)
            remove_database_directory(dboid, spc)
        flush_database_buffers(src_db)
        smgr.smgr_close_all()
        copydir(get_database_path(src_db, src_spc), dst)
    elif info == XLOG_DBASE_CREATE_WAL_LOG:
        dboid, spc = struct.unpack_from("<II", data)
        path = get_database_path(dboid, spc)
        if not os.path.isdir(fd.absolute_path(path)):
            fd.make_pg_directory(path)
    elif info == XLOG_DBASE_DROP:
        dboid, n = XL_DBASE_DROP.unpack_from(data)
        for i in range(n):
            (spc,) = _U32.unpack_from(data, XL_DBASE_DROP.size + 4 * i)
            drop_database_buffers(dboid)
            sync.forget_database_sync_requests(dboid)
            remove_database_directory(dboid, spc)
    else:
        raise ValueError(f"dbase_redo: unknown op code {info}")


def _register() -> None:
    from access.xlogrecovery import register_redo

    register_redo(xi.RM_DBASE_ID, dbase_redo)


_register()
