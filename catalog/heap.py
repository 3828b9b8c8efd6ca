"""Creating and dropping tables in the catalog — mirrors src/backend/catalog/heap.c
(heap_create_with_catalog, heap_drop_with_catalog, CheckAttributeNamesTypes,
AddNewRelationTuple, AddNewAttributeTuples, StoreAttrDefault) and
RelationSetNewRelfilenode of utils/cache/relcache.c.

Interface for the SQL layer
---------------------------
``heap_create_with_catalog(relname, namespace_oid, columns, relkind='r',
fillfactor=None)`` -> OID
    ``columns`` is a list of (name, type OID, typmod, notnull, default) where
    default is the column's DEFAULT expression as normalized SQL text (or None).
    Errors as PostgreSQL's: 42P07 ``relation "x" already exists``, 42701
    ``column "a" specified more than once``, 42701 for a system column name,
    54011 past 1600 columns, 22023 for a fillfactor out of 10..100. IF NOT EXISTS
    is the caller's (check namespace.get_relname_relid first, NOTICE 42P07).
``heap_drop_with_catalog(oid)``
    Removes the relation's rows from every catalog, its indexes (index_drop) and
    the sequences its columns own; its files go at commit.
``relation_set_new_relfilenode(rel)`` / ``truncate_relation(rel or OID)``
    TRUNCATE: new, empty files for a table (and, with truncate_relation, each of
    its indexes, rebuilt empty); the old files go at commit, the new ones at abort.
``set_attnotnull(relid, attnums)``
    pg_attribute.attnotnull for columns (the caller has checked the rows).

All of them run inside the caller's transaction: they write catalog rows through
access.heapam (catalog.indexing), create files WAL-logged (catalog.storage) and
end with CommandCounterIncrement, so the same transaction sees the result
(relcache.relation_open) and other backends see it after commit.

Column defaults: PostgreSQL stores a node tree in pg_attrdef.adbin; tusk stores
the default expression as the normalized SQL text the caller gives (e.g.
``nextval('t_id_seq'::regclass)`` or ``0``), which the executor parses again.

Name uniqueness: PostgreSQL relies on the unique index pg_class(relname,
relnamespace). Without catalog indexes, creating a relation first takes a
self-conflicting lock (ShareUpdateExclusiveLock) on the schema as a database
object (pg_locks: locktype object, classid pg_namespace), held to transaction
end: two sessions creating names in the same schema serialise there, and the
second sees the first's commit before it checks the name.
"""

from __future__ import annotations

import sys
from typing import Any

from access.heaptuple import MaxHeapAttributeNumber, compiled
from access.tupdesc import Attribute, TupleDesc
from catalog import catalog as catalog_mod
from catalog import catalog_defs as cd
from catalog import indexing, namespace, storage
from catalog.catalog_defs import SYSTEM_ATTRIBUTE_NAMES, SYSTEM_ATTRIBUTES
from catalog.pg_type import TYPES, format_type
from storage.relfilenode import RelFileNode
from utils import relcache, syscache
from utils.elog import PgError
from utils.rel import Relation

Column = tuple[str, int, int, bool, "str | None"]

RELKINDS_WITH_STORAGE = frozenset("riSmt")


def lock_namespace_for_create(namespace_oid: int) -> None:
    """Serialise name creation in a schema (see the module docstring); the lock
    manager then accepts invalidations, so the name check that follows sees
    whatever the previous holder committed."""
    from storage.lmgr import lmgr

    lmgr.lock_database_object(cd.NamespaceRelationId, namespace_oid, 0,
                              relcache.ShareUpdateExclusiveLock)
    relcache.accept_invalidation_messages()


def check_fillfactor(fillfactor: int | None, minimum: int = 10) -> None:
    if fillfactor is not None and not minimum <= fillfactor <= 100:
        raise PgError("22023", f'value {fillfactor} out of bounds for option "fillfactor"',
                      detail=f'Valid values are between "{minimum}" and "100".')


def check_attribute_names_types(columns: list[Column], relkind: str) -> None:
    """CheckAttributeNamesTypes."""
    if len(columns) > MaxHeapAttributeNumber:
        raise PgError("54011", f"tables can have at most {MaxHeapAttributeNumber} columns")
    seen: set[str] = set()
    for col in columns:
        name, typid = col[0], col[1]
        if relkind != "v" and name in SYSTEM_ATTRIBUTE_NAMES:
            raise PgError("42701", f'column name "{name}" conflicts with a system column name')
        if name in seen:
            raise PgError("42701", f'column "{name}" specified more than once')
        seen.add(name)
        if typid not in TYPES:
            raise PgError("42704", f"type with OID {typid} does not exist")


def build_tuple_desc(columns: list[Column]) -> TupleDesc:
    attrs = [Attribute.of_type(c[0], c[1], i, c[2], bool(c[3]), c[4] is not None)
             for i, c in enumerate(columns, start=1)]
    desc = TupleDesc(tuple(attrs))
    compiled(desc)  # a type tusk cannot store is refused now, not at the first INSERT
    return desc


def _catalog_rel(catalog: cd.CatalogDef) -> Relation:
    return relcache.catalog_relation(catalog)


def heap_create_with_catalog(relname: str, namespace_oid: int, columns: list[Column],
                             relkind: str = "r", fillfactor: int | None = None, *,
                             relpersistence: str = "p", owner: int | None = None,
                             reloptions: dict[str, Any] | None = None) -> int:
    """heap_create_with_catalog (see the module docstring); returns the new OID."""
    check_attribute_names_types(columns, relkind)
    check_fillfactor(fillfactor)
    build_tuple_desc(columns)
    lock_namespace_for_create(namespace_oid)
    if namespace.get_relname_relid(relname, namespace_oid):
        raise PgError("42P07", f'relation "{relname}" already exists')
    relid = catalog_mod.get_new_relfilenode(0)
    if relkind in RELKINDS_WITH_STORAGE:
        storage.relation_create_storage(catalog_mod.relation_rnode(relid, 0, False),
                                        relpersistence)
    options = dict(reloptions or {})
    if fillfactor is not None:
        options["fillfactor"] = fillfactor
    indexing.catalog_tuple_insert(_catalog_rel(cd.PG_CLASS), cd.class_row(
        relid, relname, namespace_oid, relkind, len(columns),
        relowner=catalog_mod.get_user_id() if owner is None else owner,
        relpersistence=relpersistence, reloptions=relcache.format_reloptions(options),
        relfrozenxid=_recent_xmin()))
    add_new_attribute_tuples(relid, columns, relkind)
    seqs = sys.modules.get("commands.sequence")
    if seqs is not None and relkind == "r":  # serial columns' sequences, made just before
        seqs.resolve_pending_owned_by(namespace_oid, relname, relid, [c[0] for c in columns])
    for attnum, col in enumerate(columns, start=1):
        if col[4] is not None:
            store_attr_default(relid, attnum, col[4])
    indexing.command_counter_increment()
    return relid


def _recent_xmin() -> int:
    from access import procarray

    return procarray.recent_xmin or 3


def add_new_attribute_tuples(relid: int, columns: list[Column], relkind: str) -> None:
    """AddNewAttributeTuples: the user columns, then the system columns."""
    rel = _catalog_rel(cd.PG_ATTRIBUTE)
    for attnum, (name, typid, typmod, notnull, default) in enumerate(columns, start=1):
        indexing.catalog_tuple_insert(rel, cd.attribute_row(
            relid, name, typid, attnum, typmod, bool(notnull), default is not None))
    if relkind not in ("v", "c", "i"):
        for name, typid, attnum in SYSTEM_ATTRIBUTES:
            indexing.catalog_tuple_insert(rel, cd.attribute_row(relid, name, typid, attnum,
                                                                notnull=True))


def store_attr_default(relid: int, attnum: int, expr: str) -> int:
    """StoreAttrDefault: a pg_attrdef row (adbin holds SQL text, see above)."""
    oid = catalog_mod.get_new_oid(cd.PG_ATTRDEF)
    indexing.catalog_tuple_insert(_catalog_rel(cd.PG_ATTRDEF), [oid, relid, attnum, expr])
    return oid


def _delete_rows(catalog: cd.CatalogDef, column: str, value: Any,
                 where: Any = None) -> list[list[Any]]:
    """Delete every row of ``catalog`` whose ``column`` is ``value`` (and that
    ``where(row)`` accepts); returns the deleted rows."""
    rel = _catalog_rel(catalog)
    rows = [tr for tr in syscache.search_list(catalog, column, value)
            if where is None or where(tr[1])]
    for tid, _row in rows:
        indexing.catalog_tuple_delete(rel, tid)
    return [row for _tid, row in rows]


def delete_relation_tuple(relid: int) -> None:
    if not _delete_rows(cd.PG_CLASS, "oid", relid):
        raise PgError("XX000", f"cache lookup failed for relation {relid}")


def delete_attribute_tuples(relid: int) -> None:
    _delete_rows(cd.PG_ATTRIBUTE, "attrelid", relid)


def remove_attr_defaults(relid: int) -> None:
    _delete_rows(cd.PG_ATTRDEF, "adrelid", relid)


def owned_sequences(relid: int) -> list[int]:
    """Sequences owned by a table's columns (pg_depend 'a' rows, as
    getOwnedSequences reads them)."""
    c = cd.PG_DEPEND.col
    return [row[c["objid"]] for _tid, row in syscache.search_list(cd.PG_DEPEND, "refobjid", relid)
            if row[c["classid"]] == cd.RelationRelationId and row[c["deptype"]] == "a"
            and row[c["refclassid"]] == cd.RelationRelationId]


def heap_drop_with_catalog(relid: int, cascade: bool = False) -> None:
    """heap_drop_with_catalog (see the module docstring). ``cascade`` is accepted
    for DROP ... CASCADE; tusk has no objects depending on a table other than its
    indexes, constraints and owned sequences, which always go with it."""
    from catalog import index as index_mod

    rel = relcache.relation_open(relid, relcache.AccessExclusiveLock)
    if cd.is_catalog_relation_oid(relid):
        raise PgError("42501", f'permission denied: "{rel.relname}" is a system catalog')
    for index_oid in rel.index_oids:
        index_mod.index_drop(index_oid, from_table=True)
    for seq_oid in owned_sequences(relid):
        heap_drop_with_catalog(seq_oid)
    _delete_rows(cd.PG_CONSTRAINT, "conrelid", relid)
    remove_attr_defaults(relid)
    _delete_rows(cd.PG_DEPEND, "objid", relid,
                 lambda r: r[cd.PG_DEPEND.col["classid"]] == cd.RelationRelationId)
    _delete_rows(cd.PG_SEQUENCE, "seqrelid", relid)
    _delete_rows(cd.PG_INHERITS, "inhrelid", relid)
    delete_attribute_tuples(relid)
    delete_relation_tuple(relid)
    if rel.relkind in RELKINDS_WITH_STORAGE:
        storage.relation_drop_storage(rel.rnode)
    relcache.relation_forget(relid)
    indexing.command_counter_increment()


def set_attnotnull(relid: int, attnums: list[int]) -> None:
    """Mark columns NOT NULL in pg_attribute (the catalog half of ALTER TABLE ...
    SET NOT NULL; the caller has checked the rows)."""
    rel = _catalog_rel(cd.PG_ATTRIBUTE)
    a = cd.PG_ATTRIBUTE.col
    changed = False
    for tid, row in list(syscache.search_list(cd.PG_ATTRIBUTE, "attrelid", relid)):
        if row[a["attnum"]] in attnums and not row[a["attnotnull"]]:
            row = list(row)
            row[a["attnotnull"]] = True
            indexing.catalog_tuple_update(rel, tid, row)
            changed = True
    if changed:
        relcache.relation_forget(relid)
        indexing.command_counter_increment()


def update_class_row(relid: int, **changes: Any) -> None:
    """Update columns of a relation's pg_class row (CatalogTupleUpdate)."""
    found = syscache.class_row(relid)
    if found is None:
        raise PgError("XX000", f"cache lookup failed for relation {relid}")
    tid, row = found
    row = list(row)
    col = cd.PG_CLASS.col
    for name, value in changes.items():
        row[col[name]] = value
    indexing.catalog_tuple_update(_catalog_rel(cd.PG_CLASS), tid, row)


def relation_set_new_relfilenode(rel: Relation) -> RelFileNode:
    """RelationSetNewRelfilenode: give ``rel`` new, empty files (an index gets an
    empty B-tree's metapage); the old files are removed at commit, the new ones at
    abort. ``rel`` itself now points at the new files; returns the new RelFileNode."""
    if cd.is_catalog_relation_oid(rel.oid):
        raise PgError("0A000", f'cannot give the system catalog "{rel.relname}" new files')
    found = syscache.class_row(rel.oid)
    if found is None:
        raise PgError("XX000", f"cache lookup failed for relation {rel.oid}")
    reltablespace = found[1][cd.PG_CLASS.col["reltablespace"]]
    newfilenode = catalog_mod.get_new_relfilenode(reltablespace, rel.relisshared,
                                                  check_pg_class=False)
    old = rel.rnode
    new = RelFileNode(old.spc, old.db, newfilenode)
    storage.relation_create_storage(new, rel.relpersistence)
    changes: dict[str, Any] = {"relfilenode": newfilenode, "relpages": 0, "relallvisible": 0}
    if rel.relkind != "i":
        changes["reltuples"] = -1.0
        changes["relfrozenxid"] = _recent_xmin()
    update_class_row(rel.oid, **changes)
    storage.relation_drop_storage(old)
    rel.set_new_relfilenode(new)
    if rel.relkind == "i":
        from access import nbtree

        nbtree.bt_build_empty(rel)
    indexing.command_counter_increment()
    return new


def truncate_relation(rel: Relation | int) -> None:
    """TRUNCATE of one table (ExecuteTruncateGuts' non-in-place path): new files
    for the table and each of its indexes, the indexes rebuilt empty. The caller
    holds AccessExclusiveLock on the table (given as a Relation or an OID)."""
    if isinstance(rel, int):
        rel = relcache.relation_open(rel, relcache.AccessExclusiveLock)
    index_oids = rel.index_oids
    relation_set_new_relfilenode(rel)
    for index_oid in index_oids:
        index_rel = relcache.relation_open(index_oid, relcache.AccessExclusiveLock)
        relation_set_new_relfilenode(index_rel)


def describe_columns(rel: Relation) -> list[tuple[str, str]]:
    """(name, format_type) of each live column (for messages)."""
    return [(a.attname, format_type(a.atttypid, a.atttypmod))
            for a in rel.desc.attrs if not a.attisdropped]
