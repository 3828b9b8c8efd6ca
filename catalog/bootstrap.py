"""The bootstrap catalog — mirrors what initdb's bootstrap mode (bootstrap.c,
genbki's postgres.bki) puts on disk, and the connection-time lookups of
postinit.c (GetDatabaseTuple, and the pg_authid read of InitializeSessionUserId).

At initdb, ``write_bootstrap_catalog`` writes every system catalog of
catalog/catalog_defs.py as heap pages in PostgreSQL's format directly to its
file — no shared memory or WAL exists yet, and the bootstrap checkpoint that
initdb writes next makes them the starting state:

- per-database catalogs into base/1 (template1), then template1 is copied to
  base/4 (template0) and base/5 (postgres), as initdb's make_template0 /
  make_postgres do with CREATE DATABASE;
- shared catalogs (pg_database, pg_authid, pg_tablespace) into global/.

Every row is frozen (xmin FrozenTransactionId with HEAP_XMIN_FROZEN), carries
its own ctid, and the pages get checksums when the cluster has them. A
catalog's relation file number is its OID: there is no relation mapper.

Reading: ``lookup_database`` scans pg_database through the shared buffer pool
with a catalog snapshot when this process has a PGPROC and the buffer pool
(a backend after InitProcess, as GetDatabaseTuple does before a transaction is
open). ``lookup_role`` and ``bootstrap_superuser`` read pg_authid from disk
(``read_catalog_file``): the backend needs the role's superuser flag before it
claims its PGPROC slot (superuser_reserved_connections), and tusk has no role DDL,
so pg_authid's file never changes after initdb. That reader follows the line
pointers and decides visibility from hint bits and pg_xact's files; it is meant
for tools and this one case, not for catalogs being changed by a running server.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from access.heaptuple import (
    CTID,
    HEAP_TUPLE_HEADER,
    HEAP_XMAX_COMMITTED,
    HEAP_XMAX_INVALID,
    HEAP_XMAX_LOCK_ONLY,
    HEAP_XMIN_COMMITTED,
    HEAP_XMIN_FROZEN,
    HEAP_XMIN_INVALID,
    INFOMASKS,
    T_CTID,
    T_INFOMASK2,
    T_XMIN,
    U32,
    heap_deform_tuple,
    heap_form_tuple,
)
from catalog import catalog_defs as cd
from catalog import pg_type
from storage import bufpage
from storage.bufpage import BLCKSZ, LP_NORMAL, SIZE_OF_PAGE_HEADER_DATA

BOOTSTRAP_SUPERUSERID = cd.BOOTSTRAP_SUPERUSERID
TEMPLATE1_OID, TEMPLATE0_OID, POSTGRES_OID = cd.TEMPLATE1_OID, cd.TEMPLATE0_OID, cd.POSTGRES_OID
FrozenTransactionId = 2
FirstNormalTransactionId = 3
FirstMultiXactId = 1


@dataclass(frozen=True)
class Role:
    oid: int
    rolname: str
    rolsuper: bool
    rolcanlogin: bool = True


@dataclass(frozen=True)
class Database:
    oid: int
    datname: str
    datallowconn: bool = True
    datistemplate: bool = False
    datdba: int = BOOTSTRAP_SUPERUSERID
    dattablespace: int = cd.DEFAULTTABLESPACE_OID
    datconnlimit: int = -1


# -- the bootstrap rows ----------------------------------------------------------------------

def database_row(oid: int, name: str, *, istemplate: bool = False, allowconn: bool = True,
                 dba: int = BOOTSTRAP_SUPERUSERID, connlimit: int = -1,
                 frozenxid: int = FirstNormalTransactionId) -> list[object]:
    return cd.PG_DATABASE.row(
        oid=oid, datname=name, datdba=dba, encoding=cd.PG_UTF8, datlocprovider="c",
        datistemplate=istemplate, datallowconn=allowconn, datconnlimit=connlimit,
        datfrozenxid=frozenxid, datminmxid=FirstMultiXactId,
        dattablespace=cd.DEFAULTTABLESPACE_OID, datcollate="C", datctype="C",
        daticulocale=None, datcollversion=None)


def role_row(oid: int, name: str, superuser: bool) -> list[object]:
    return cd.PG_AUTHID.row(
        oid=oid, rolname=name, rolsuper=superuser, rolinherit=True, rolcreaterole=superuser,
        rolcreatedb=superuser, rolcanlogin=True, rolreplication=superuser,
        rolbypassrls=superuser, rolconnlimit=-1, rolpassword=None, rolvaliduntil=None)


def catalog_class_and_attribute_rows() -> tuple[list[list[object]], list[list[object]]]:
    """pg_class and pg_attribute rows describing the catalogs themselves."""
    classes, attrs = [], []
    for c in cd.CATALOGS:
        classes.append(cd.class_row(
            c.oid, c.relname, cd.PG_CATALOG_NAMESPACE, "r", c.natts, relisshared=c.shared,
            reltablespace=cd.GLOBALTABLESPACE_OID if c.shared else 0,
            relfrozenxid=FirstNormalTransactionId))
        for a in c.desc.attrs:
            attrs.append(cd.attribute_row(c.oid, a.attname, a.atttypid, a.attnum,
                                          notnull=a.attnotnull))
        for name, typid, attnum in cd.SYSTEM_ATTRIBUTES:
            attrs.append(cd.attribute_row(c.oid, name, typid, attnum, notnull=True))
    return classes, attrs


def bootstrap_rows(superuser: str) -> dict[int, list[list[object]]]:
    """Every catalog's initial rows, by catalog OID."""
    classes, attrs = catalog_class_and_attribute_rows()
    rows: dict[int, list[list[object]]] = {c.oid: [] for c in cd.CATALOGS}
    rows[cd.PG_CLASS.oid] = classes
    rows[cd.PG_ATTRIBUTE.oid] = attrs
    rows[cd.PG_TYPE.oid] = [cd.type_row(info) for info in pg_type.TYPES.values()]
    rows[cd.PG_NAMESPACE.oid] = [
        [cd.PG_CATALOG_NAMESPACE, "pg_catalog", BOOTSTRAP_SUPERUSERID],
        [cd.PG_TOAST_NAMESPACE, "pg_toast", BOOTSTRAP_SUPERUSERID],
        [cd.PG_PUBLIC_NAMESPACE, "public", BOOTSTRAP_SUPERUSERID]]
    rows[cd.PG_AM.oid] = [[cd.HEAP_TABLE_AM_OID, "heap", "t"], [cd.BTREE_AM_OID, "btree", "i"]]
    rows[cd.PG_TABLESPACE.oid] = [
        [cd.DEFAULTTABLESPACE_OID, "pg_default", BOOTSTRAP_SUPERUSERID],
        [cd.GLOBALTABLESPACE_OID, "pg_global", BOOTSTRAP_SUPERUSERID]]
    rows[cd.PG_AUTHID.oid] = [role_row(BOOTSTRAP_SUPERUSERID, superuser, True)]
    rows[cd.PG_DATABASE.oid] = [
        database_row(TEMPLATE1_OID, "template1", istemplate=True),
        database_row(TEMPLATE0_OID, "template0", istemplate=True, allowconn=False),
        database_row(POSTGRES_OID, "postgres")]
    return rows


# -- writing heap pages directly ------------------------------------------------------------

def frozen_heap_pages(desc, rows: list[list[object]], checksums: bool) -> list[bytearray]:
    """Heap pages holding ``rows`` as frozen tuples, each with its own ctid."""
    pages: list[bytearray] = []
    page: bytearray | None = None
    for values in rows:
        tup = heap_form_tuple(desc, values)
        im2, im = INFOMASKS.unpack_from(tup, T_INFOMASK2)
        INFOMASKS.pack_into(tup, T_INFOMASK2, im2, im | HEAP_XMIN_FROZEN)
        U32.pack_into(tup, T_XMIN, FrozenTransactionId)
        for attempt in range(2):
            if page is None or attempt:
                page = bytearray(BLCKSZ)
                bufpage.page_init(page)
                pages.append(page)
            blkno, offnum = len(pages) - 1, bufpage.page_get_max_offset_number(page) + 1
            CTID.pack_into(tup, T_CTID, blkno >> 16, blkno & 0xFFFF, offnum)
            if bufpage.page_add_item(page, tup):
                break
        else:
            raise ValueError("catalog row does not fit on a page")
    if checksums:
        for blkno, p in enumerate(pages):
            bufpage.page_set_checksum_inplace(p, blkno)
    return pages


def _write_file(path: str, pages: list[bytearray]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for p in pages:
            os.write(fd, p)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bootstrap_catalog(datadir: str, superuser: str, *, checksums: bool = False) -> None:
    """Write every catalog's file: template1's into base/1, copied to base/4 and
    base/5; the shared catalogs into global/. The directories exist already."""
    rows = bootstrap_rows(superuser)
    for c in cd.CATALOGS:
        pages = frozen_heap_pages(c.desc, rows[c.oid], checksums)
        if c.shared:
            _write_file(os.path.join(datadir, "global", str(c.oid)), pages)
        else:
            for db in (TEMPLATE1_OID, TEMPLATE0_OID, POSTGRES_OID):
                _write_file(os.path.join(datadir, "base", str(db), str(c.oid)), pages)


# -- reading catalog files without shared memory --------------------------------------------

_ITEMID = struct.Struct("<I")
CLOG_XACTS_PER_BYTE = 4
CLOG_XACTS_PER_PAGE = BLCKSZ * CLOG_XACTS_PER_BYTE
SLRU_PAGES_PER_SEGMENT = 32
TRANSACTION_STATUS_COMMITTED = 1


def _xid_committed_on_disk(datadir: str, xid: int, cache: dict[int, bool]) -> bool:
    """pg_xact's status of ``xid`` as its segment file says (no shared memory)."""
    if xid in (1, 2):
        return True
    if xid < 3:
        return False
    hit = cache.get(xid)
    if hit is not None:
        return hit
    pageno = xid // CLOG_XACTS_PER_PAGE
    seg = pageno // SLRU_PAGES_PER_SEGMENT
    byteno = (pageno % SLRU_PAGES_PER_SEGMENT) * BLCKSZ + (xid % CLOG_XACTS_PER_PAGE) // 4
    try:
        with open(os.path.join(datadir, "pg_xact", f"{seg:04X}"), "rb") as f:
            f.seek(byteno)
            b = f.read(1)
    except OSError:
        b = b""
    committed = bool(b) and (b[0] >> ((xid % 4) * 2)) & 3 == TRANSACTION_STATUS_COMMITTED
    cache[xid] = committed
    return committed


def heap_page_items(page: bytes | bytearray | memoryview) -> Iterator[tuple[int, int, int]]:
    """(offnum, item offset, item length) of every LP_NORMAL line pointer."""
    for offnum in range(1, bufpage.page_get_max_offset_number(page) + 1):
        w = _ITEMID.unpack_from(page, SIZE_OF_PAGE_HEADER_DATA + 4 * (offnum - 1))[0]
        if (w >> 15) & 3 == LP_NORMAL:
            yield offnum, w & 0x7FFF, w >> 17


def read_catalog_file(datadir: str, catalog: cd.CatalogDef, dboid: int = POSTGRES_OID
                      ) -> list[list[object]]:
    """The rows of a catalog whose xmin committed and whose xmax did not, read
    from its file (the on-disk state: changes still in shared buffers are missed)."""
    if catalog.shared:
        path = os.path.join(datadir, "global", str(catalog.oid))
    else:
        path = os.path.join(datadir, "base", str(dboid), str(catalog.oid))
    with open(path, "rb") as f:
        data = f.read()
    status: dict[int, bool] = {}
    out = []
    for start in range(0, len(data) - BLCKSZ + 1, BLCKSZ):
        page = memoryview(data)[start:start + BLCKSZ]
        if bufpage.page_is_new(page):
            continue
        for _offnum, off, _len in heap_page_items(page):
            xmin, xmax, _cid, _h, _l, _p, _im2, im, _hoff = HEAP_TUPLE_HEADER.unpack_from(
                page, off)
            if im & HEAP_XMIN_FROZEN != HEAP_XMIN_FROZEN:
                if im & HEAP_XMIN_INVALID:
                    continue
                if not im & HEAP_XMIN_COMMITTED and \
                        not _xid_committed_on_disk(datadir, xmin, status):
                    continue
            if not (im & HEAP_XMAX_INVALID or xmax == 0 or im & HEAP_XMAX_LOCK_ONLY):
                if im & HEAP_XMAX_COMMITTED or _xid_committed_on_disk(datadir, xmax, status):
                    continue
            out.append(heap_deform_tuple(catalog.desc, page, off))
    return out


# -- connection-time lookups ------------------------------------------------------------------

def _role(values: list[object]) -> Role:
    c = cd.PG_AUTHID.col
    return Role(values[c["oid"]], values[c["rolname"]], values[c["rolsuper"]],
                values[c["rolcanlogin"]])


def database_from_row(values: list[object]) -> Database:
    c = cd.PG_DATABASE.col
    return Database(values[c["oid"]], values[c["datname"]], values[c["datallowconn"]],
                    values[c["datistemplate"]], values[c["datdba"]],
                    values[c["dattablespace"]], values[c["datconnlimit"]])


def _buffer_pool_attached() -> bool:
    from access import procarray
    from storage import bufmgr

    return bufmgr._pool is not None and procarray.have_proc()


def lookup_role(datadir: str, name: str) -> Role | None:
    """The pg_authid row of role ``name`` (see the module docstring: from disk)."""
    col = cd.PG_AUTHID.col["rolname"]
    for row in read_catalog_file(datadir, cd.PG_AUTHID):
        if row[col] == name:
            return _role(row)
    return None


def lookup_database(datadir: str, name: str) -> Database | None:
    """GetDatabaseTuple: the pg_database row of ``name``, through the buffer pool
    with a catalog snapshot when this process is attached to it, else from disk."""
    col = cd.PG_DATABASE.col["datname"]
    if _buffer_pool_attached():
        from catalog import indexing
        from utils import relcache

        rel = relcache.catalog_relation(cd.PG_DATABASE)
        try:
            for _tid, row in indexing.systable_scan(rel):
                if row[col] == name:
                    return database_from_row(row)
            return None
        finally:
            # No transaction is open: drop the snapshot's xmin again, as the end of
            # InitPostgres' transaction would.
            indexing.invalidate_catalog_snapshot()
            from access import procarray, xact

            if not xact.get_current_transaction_id_if_any():
                procarray.proc_array_end_transaction(0)
    for row in read_catalog_file(datadir, cd.PG_DATABASE):
        if row[col] == name:
            return database_from_row(row)
    return None


def bootstrap_superuser(datadir: str) -> str:
    """The name of the role initdb created (OID 10), read from disk."""
    for row in read_catalog_file(datadir, cd.PG_AUTHID):
        role = _role(row)
        if role.oid == BOOTSTRAP_SUPERUSERID:
            return role.rolname
    raise LookupError("no bootstrap superuser")


def set_session_database(db: Database, role: Role | None = None) -> None:
    """After the database checks of InitPostgres: MyDatabaseId and the session
    user for the catalog code (owner of new objects), and this backend's
    database in the shared invalidation state (other backends count sessions
    per database there: CountOtherDBBackends)."""
    from catalog import catalog

    catalog.set_my_database_id(db.oid, db.datname, db.dattablespace)
    if role is not None:
        catalog.set_session_user(role.oid, role.rolname, role.rolsuper)
    from shmem import sinval

    sinval.shared_inval_backend_init(db.oid)
    try:
        from storage.lmgr import lmgr
    except ImportError:
        return
    lmgr.set_my_database_id(db.oid)
