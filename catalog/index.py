"""Creating and dropping indexes in the catalog — mirrors
src/backend/catalog/index.c (index_create, index_constraint_create,
index_check_primary_key, index_drop, index_build) and the index naming of
commands/indexcmds.c (ChooseIndexName, ChooseIndexNameAddition) and
commands/tablecmds.c / namespace.c (ChooseRelationName, makeObjectName).

Interface for the SQL layer
---------------------------
``index_create(heap_oid, index_name, key_attnums, unique=False, primary=False,
constraint=False, if_not_exists=False, fillfactor=None)`` -> OID (0 when
``if_not_exists`` found the name taken: NOTICE ``relation "x" already exists,
skipping``)
    ``index_name`` None picks PostgreSQL's implicit name (table_pkey,
    table_col_key for a UNIQUE constraint, table_col_idx otherwise, with a number
    appended on a clash). Writes the pg_class, pg_attribute and pg_index rows
    (and a pg_constraint row with ``constraint``: PRIMARY KEY or UNIQUE), marks
    the table relhasindex, creates the file and builds the B-tree
    (access.nbtree.bt_build). A primary key makes its columns NOT NULL, after
    checking that no row has a null there (23502), as ALTER TABLE ADD PRIMARY
    KEY does; a second primary key is 42P16.
``index_drop(index_oid)``
    Removes the index's catalog rows; its file goes at commit. An index that
    backs a constraint cannot be dropped on its own (2BP01).
``choose_index_name(table, column_names, primary, is_constraint, namespace_oid)``
    ChooseIndexName, for callers that need the name before creating
    (catalog.namespace.choose_relation_name is ChooseRelationName).
``index_has_constraint(index_oid)``
    Does a constraint use the index (DROP INDEX must refuse)?

Differences: no expression, partial, INCLUDE or non-btree indexes; no
CONCURRENTLY; pg_index.indclass holds zeroes (no operator classes in the catalog).
"""

from __future__ import annotations

from typing import Any

from access.tupdesc import Attribute
from catalog import catalog as catalog_mod
from catalog import catalog_defs as cd
from catalog import indexing, namespace, storage
from catalog.heap import (
    _catalog_rel,
    _delete_rows,
    check_fillfactor,
    lock_namespace_for_create,
    update_class_row,
)
from catalog.namespace import _clip, choose_relation_name
from catalog.pg_type import NAMEDATALEN
from utils import elog, relcache, syscache
from utils.elog import PgError
from utils.rel import Relation

# -- names ---------------------------------------------------------------------------------

def choose_index_name_addition(colnames: list[str]) -> str:
    """ChooseIndexNameAddition: the column names joined by '_', cut near NAMEDATALEN."""
    buf = ""
    for name in colnames:
        if buf:
            buf += "_"
        buf += _clip(name, NAMEDATALEN - 1 - len(buf.encode()))
        if len(buf.encode()) >= NAMEDATALEN - 1:
            break
    return buf


def choose_index_name(tabname: str, colnames: list[str], primary: bool,
                      is_constraint: bool, namespace_oid: int) -> str:
    """ChooseIndexName."""
    if primary:
        return choose_relation_name(tabname, None, "pkey", namespace_oid)
    addition = choose_index_name_addition(colnames)
    return choose_relation_name(tabname, addition, "key" if is_constraint else "idx",
                                namespace_oid)


# -- creation ------------------------------------------------------------------------------

def _primary_key_of(heap_oid: int) -> int:
    i = cd.PG_INDEX.col
    for _tid, r in syscache.search_list(cd.PG_INDEX, "indrelid", heap_oid):
        if r[i["indisprimary"]]:
            return r[i["indexrelid"]]
    return 0


def _check_no_nulls(heap: Relation, attnums: list[int]) -> None:
    """The table scan of ALTER TABLE ... SET NOT NULL: 23502 if a row has a null."""
    from access import heapam
    from catalog.indexing import catalog_snapshot

    try:
        from utils import snapmgr
        snapshot = snapmgr.get_latest_snapshot()
    except ImportError:
        snapshot = catalog_snapshot()
    for _tid, values in heapam.heap_scan(heap, snapshot):
        for attnum in attnums:
            if values[attnum - 1] is None:
                name = heap.desc.attrs[attnum - 1].attname
                raise PgError("23502", f'column "{name}" of relation "{heap.relname}" '
                                       "contains null values")


def set_attnotnull(heap: Relation, attnums: list[int]) -> None:
    """A primary key's columns become NOT NULL, after checking the rows."""
    from catalog import heap as heap_mod

    todo = [n for n in attnums if not heap.desc.attrs[n - 1].attnotnull]
    if todo:
        _check_no_nulls(heap, todo)
        heap_mod.set_attnotnull(heap.oid, todo)


def index_create(heap_oid: int, index_name: str | None, key_attnums: list[int], *,
                 unique: bool = False, primary: bool = False, constraint: bool = False,
                 if_not_exists: bool = False, fillfactor: int | None = None,
                 lockmode: int = relcache.ShareLock) -> int:
    """index_create + index_build (see the module docstring); returns the OID."""
    heap = relcache.relation_open(heap_oid, lockmode)
    if heap.relkind not in ("r", "m"):
        raise PgError("42809", f'cannot create index on relation "{heap.relname}"',
                      detail=f'This operation is not supported for {_relkind_name(heap)}.')
    if cd.is_catalog_relation_oid(heap_oid):
        raise PgError("42501", f'permission denied: "{heap.relname}" is a system catalog')
    check_fillfactor(fillfactor)
    natts = heap.desc.natts
    for attnum in key_attnums:
        if not 1 <= attnum <= natts or heap.desc.attrs[attnum - 1].attisdropped:
            raise PgError("42703", f"column number {attnum} does not exist")
    if primary:
        unique = True
    nsp = heap.relnamespace
    lock_namespace_for_create(nsp)
    if index_name is None:
        index_name = choose_index_name(
            heap.relname, [heap.desc.attrs[n - 1].attname for n in key_attnums], primary,
            constraint, nsp)
    if namespace.get_relname_relid(index_name, nsp):
        if if_not_exists:
            elog.ereport(elog.NOTICE, f'relation "{index_name}" already exists, skipping',
                         sqlstate="42P07")
            return 0
        raise PgError("42P07", f'relation "{index_name}" already exists')
    if primary and _primary_key_of(heap_oid):
        raise PgError("42P16",
                      f'multiple primary keys for table "{heap.relname}" are not allowed')
    if primary:
        set_attnotnull(heap, list(key_attnums))

    indexrelid = catalog_mod.get_new_relfilenode(0)
    storage.relation_create_storage(catalog_mod.relation_rnode(indexrelid, 0, False),
                                    heap.relpersistence)
    options = {"fillfactor": fillfactor} if fillfactor is not None else {}
    indexing.catalog_tuple_insert(_catalog_rel(cd.PG_CLASS), cd.class_row(
        indexrelid, index_name, nsp, "i", len(key_attnums),
        relowner=catalog_mod.get_user_id(), relpersistence=heap.relpersistence,
        reloptions=relcache.format_reloptions(options)))
    attrel = _catalog_rel(cd.PG_ATTRIBUTE)
    collations = []
    for i, attnum in enumerate(key_attnums, start=1):
        src: Attribute = heap.desc.attrs[attnum - 1]
        indexing.catalog_tuple_insert(attrel, cd.attribute_row(
            indexrelid, src.attname, src.atttypid, i, src.atttypmod))
        collations.append(cd.type_collation(src.atttypid))
    n = len(key_attnums)
    indexing.catalog_tuple_insert(_catalog_rel(cd.PG_INDEX), cd.PG_INDEX.row(
        indexrelid=indexrelid, indrelid=heap_oid, indnatts=n, indnkeyatts=n,
        indisunique=unique, indnullsnotdistinct=False, indisprimary=primary,
        indisexclusion=False, indimmediate=True, indisclustered=False, indisvalid=True,
        indcheckxmin=False, indisready=True, indislive=True, indisreplident=False,
        indkey=list(key_attnums), indcollation=collations, indclass=[0] * n,
        indoption=[0] * n))
    if constraint:
        index_constraint_create(heap, indexrelid, index_name, "p" if primary else "u",
                                list(key_attnums))
    found = syscache.class_row(heap_oid)
    if found is not None and not found[1][cd.PG_CLASS.col["relhasindex"]]:
        update_class_row(heap_oid, relhasindex=True)
    indexing.command_counter_increment()
    index_build(heap_oid, indexrelid)
    return indexrelid


def index_constraint_create(heap: Relation, indexrelid: int, conname: str, contype: str,
                            conkey: list[int]) -> int:
    """index_constraint_create: the pg_constraint row of a PRIMARY KEY or UNIQUE."""
    oid = catalog_mod.get_new_oid(cd.PG_CONSTRAINT)
    indexing.catalog_tuple_insert(_catalog_rel(cd.PG_CONSTRAINT), cd.PG_CONSTRAINT.row(
        oid=oid, conname=conname, connamespace=heap.relnamespace, contype=contype,
        condeferrable=False, condeferred=False, convalidated=True, conrelid=heap.oid,
        contypid=0, conindid=indexrelid, conparentid=0, confrelid=0, confupdtype=" ",
        confdeltype=" ", confmatchtype=" ", conislocal=True, coninhcount=0,
        connoinherit=True, conkey=conkey))
    return oid


def index_build(heap_oid: int, index_oid: int) -> None:
    """index_build: fill the new index from the table (access.nbtree.bt_build)."""
    from access import nbtree

    heap = relcache.relation_open(heap_oid, relcache.NoLock)
    index = relcache.relation_open(index_oid, relcache.NoLock)
    nbtree.bt_build(heap, index)


def _relkind_name(rel: Relation) -> str:
    return {"r": "tables", "i": "indexes", "S": "sequences", "v": "views",
            "m": "materialized views", "p": "partitioned tables"}.get(rel.relkind,
                                                                      "this relation")


# -- dropping ------------------------------------------------------------------------------

def index_constraint(index_oid: int) -> list[Any] | None:
    """The pg_constraint row that an index implements (None if none)."""
    found = syscache.search(cd.PG_CONSTRAINT, "conindid", index_oid)
    return found[1] if found is not None else None


def index_has_constraint(index_oid: int) -> bool:
    """Does a PRIMARY KEY or UNIQUE constraint use this index?"""
    return index_constraint(index_oid) is not None


def index_drop(index_oid: int, *, from_table: bool = False) -> None:
    """index_drop (see the module docstring). ``from_table``: part of dropping
    the table (or the constraint), so a backing constraint goes too."""
    index = relcache.relation_open(index_oid, relcache.AccessExclusiveLock)
    if index.relkind != "i" or index.index is None:
        raise PgError("42809", f'"{index.relname}" is not an index')
    heap_oid = index.index.indrelid
    con = index_constraint(index_oid)
    if con is not None and not from_table:
        c = cd.PG_CONSTRAINT.col
        heap_name = _relname(heap_oid)
        raise PgError("2BP01", f'cannot drop index {index.relname} because constraint '
                               f'{con[c["conname"]]} on table {heap_name} requires it',
                      hint=f'You can drop constraint {con[c["conname"]]} on table '
                           f'{heap_name} instead.')
    relcache.lock_relation_oid(heap_oid, relcache.AccessExclusiveLock)
    _delete_rows(cd.PG_CONSTRAINT, "conindid", index_oid)
    _delete_rows(cd.PG_INDEX, "indexrelid", index_oid)
    _delete_rows(cd.PG_ATTRIBUTE, "attrelid", index_oid)
    _delete_rows(cd.PG_CLASS, "oid", index_oid)
    storage.relation_drop_storage(index.rnode)
    relcache.relation_forget(index_oid)
    relcache.relation_forget(heap_oid)
    indexing.command_counter_increment()


def _relname(oid: int) -> str:
    found = syscache.class_row(oid)
    return found[1][cd.PG_CLASS.col["relname"]] if found is not None else str(oid)
