"""Catalog row caches — the role of src/backend/utils/cache/syscache.c and
catcache.c (SearchSysCache, SearchSysCacheList), shaped for tusk's small
catalogs.

PostgreSQL caches single rows found through catalog indexes and drops them one
by one on invalidation messages. tusk has no catalog indexes: the first lookup
in a catalog reads the whole catalog once (catalog.indexing.systable_scan with
the catalog snapshot) and later lookups by any column are dictionary probes,
built per column on first use. Everything is dropped together when the relation
cache drops its entries (utils.relcache: on this backend's own catalog changes,
at abort after such changes, and when the shared catalog generation moves),
so a cached row is never older than what the catalog snapshot would show
after the last invalidation check.

Built-in types never change (no CREATE TYPE), so type lookups read
catalog/pg_type.py directly.
"""

from __future__ import annotations

from typing import Any

from catalog import catalog_defs as cd
from catalog import pg_type

Row = list[Any]
TidRow = tuple[tuple[int, int], Row]

_rows: dict[tuple[int, int], list[TidRow]] = {}
_index: dict[tuple[int, int, str], dict[Any, list[TidRow]]] = {}


def _key(catalog: cd.CatalogDef) -> tuple[int, int]:
    from catalog.catalog import my_database_id

    return catalog.oid, 0 if catalog.shared else my_database_id()


def catalog_rows(catalog: cd.CatalogDef) -> list[TidRow]:
    """Every visible row of ``catalog`` as (tid, values), cached."""
    key = _key(catalog)
    rows = _rows.get(key)
    if rows is None:
        from catalog import indexing
        from utils import relcache

        rows = list(indexing.systable_scan(relcache.catalog_relation(catalog)))
        _rows[key] = rows
    return rows


def search_list(catalog: cd.CatalogDef, column: str, value: Any) -> list[TidRow]:
    """SearchSysCacheList: the rows whose ``column`` equals ``value``."""
    key = _key(catalog)
    ikey = (key[0], key[1], column)
    idx = _index.get(ikey)
    if idx is None:
        idx = {}
        col = catalog.col[column]
        for tr in catalog_rows(catalog):
            idx.setdefault(tr[1][col], []).append(tr)
        _index[ikey] = idx
    return idx.get(value, [])


def search(catalog: cd.CatalogDef, column: str, value: Any) -> TidRow | None:
    """SearchSysCache1: one row whose ``column`` equals ``value`` (or None)."""
    found = search_list(catalog, column, value)
    return found[0] if found else None


def invalidate_all() -> None:
    """Drop every cached row (CatalogCacheFlushCatalog for all catalogs)."""
    _rows.clear()
    _index.clear()


# -- typed lookups --------------------------------------------------------------------------

def type_by_oid(oid: int) -> pg_type.TypeInfo | None:
    return pg_type.TYPES.get(oid)


def type_oid_by_name(name: str) -> int:
    """TYPENAMENSP in pg_catalog: a built-in type's OID by typname (0 if none)."""
    info = pg_type.TYPES_BY_NAME.get(name)
    return info.oid if info is not None else 0


def namespace_oid(name: str) -> int:
    """NAMESPACENAME: a schema's OID (0 if none)."""
    found = search(cd.PG_NAMESPACE, "nspname", name)
    return found[1][0] if found is not None else 0


def namespace_name(oid: int) -> str | None:
    """NAMESPACEOID: a schema's name (None if none)."""
    found = search(cd.PG_NAMESPACE, "oid", oid)
    return found[1][1] if found is not None else None


def class_row(oid: int) -> TidRow | None:
    """RELOID: a relation's pg_class row."""
    return search(cd.PG_CLASS, "oid", oid)


def database_row(name: str) -> TidRow | None:
    """DATABASENAME (pg_database is shared)."""
    return search(cd.PG_DATABASE, "datname", name)


def role_row(name: str) -> TidRow | None:
    """AUTHNAME."""
    return search(cd.PG_AUTHID, "rolname", name)
