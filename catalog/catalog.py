"""Session-wide catalog facts and new OIDs — mirrors src/backend/catalog/catalog.c
(GetNewOidWithIndex, GetNewRelFileNode, IsSystemRelation) and the MyDatabaseId /
session user globals of utils/init/globals.c and miscinit.c.

New OIDs come from access.transam.get_new_object_id (WAL-logged XLOG_NEXTOID,
never below FirstNormalObjectId). PostgreSQL probes the catalog's OID index for a
collision after the counter wraps around; tusk has no catalog indexes, so
``get_new_oid`` scans the catalog instead (the catalogs are small, and DDL is
rare). A relfilenode is also checked against the files in the tablespace, as
GetNewRelFileNode does, since a dropped relation's first segment stays on disk
until the next checkpoint.
"""

from __future__ import annotations

from catalog import catalog_defs as cd
from storage import fd
from storage.relfilenode import RelFileNode, relpath


class _Session:
    database_id = 0                 # MyDatabaseId (0: not connected to a database)
    database_name = ""
    database_tablespace = cd.DEFAULTTABLESPACE_OID  # MyDatabaseTableSpace
    user_id = cd.BOOTSTRAP_SUPERUSERID  # GetUserId()
    user_name = ""
    is_superuser = True


session = _Session()


def set_my_database_id(oid: int, name: str = "", tablespace: int = cd.DEFAULTTABLESPACE_OID
                       ) -> None:
    """MyDatabaseId / MyDatabaseTableSpace, set once the database is known."""
    session.database_id = oid
    session.database_name = name
    session.database_tablespace = tablespace


def my_database_id() -> int:
    return session.database_id


def set_session_user(oid: int, name: str, is_superuser: bool) -> None:
    """SetSessionUserId: the owner of the objects this session creates."""
    session.user_id = oid
    session.user_name = name
    session.is_superuser = is_superuser


def get_user_id() -> int:
    return session.user_id


def is_system_relation_oid(oid: int) -> bool:
    """IsSystemRelation / IsCatalogRelationOid for tusk (no TOAST tables)."""
    return cd.is_catalog_relation_oid(oid)


def relation_rnode(relfilenode: int, reltablespace: int, shared: bool) -> RelFileNode:
    """The RelFileNode of a pg_class row (reltablespace 0 is the database's own)."""
    if shared:
        return RelFileNode(cd.GLOBALTABLESPACE_OID, 0, relfilenode)
    return RelFileNode(reltablespace or session.database_tablespace, session.database_id,
                       relfilenode)


def get_new_oid(catalog: cd.CatalogDef, oid_column: str = "oid") -> int:
    """GetNewOidWithIndex: a new OID not used in ``catalog`` (a sequential scan
    where PostgreSQL probes the OID index; see the module docstring)."""
    from access import transam
    from catalog import indexing
    from utils import relcache

    rel = relcache.catalog_relation(catalog)
    col = catalog.col[oid_column]
    while True:
        oid = transam.get_new_object_id()
        if not any(row[col] == oid for _tid, row in indexing.systable_scan(rel,
                                                                             any_visible=True)):
            return oid


def get_new_relfilenode(reltablespace: int, shared: bool = False, *,
                        check_pg_class: bool = True) -> int:
    """GetNewRelFileNode: an OID usable both as a pg_class OID and as a file
    name that no existing file (nor a dropped one awaiting the checkpoint) has."""
    from access import transam

    while True:
        if check_pg_class:
            oid = get_new_oid(cd.PG_CLASS)
        else:
            oid = transam.get_new_object_id()
        if not fd.file_exists(relpath(relation_rnode(oid, reltablespace, shared))):
            return oid
