"""The relation cache — mirrors src/backend/utils/cache/relcache.c
(RelationIdGetRelation, RelationBuildDesc, formrdesc, RelationGetIndexList,
RelationCacheInvalidate, AtEOXact_RelationCache), access/common/relation.c
(relation_open, relation_close) and the AcceptInvalidationMessages entry point
of utils/cache/inval.c.

Each backend keeps a Relation (utils/rel.py) per relation it has opened, built
from its pg_class, pg_attribute, pg_index and pg_attrdef rows (read through
utils.syscache, i.e. heap scans with the catalog snapshot). The system catalogs
themselves are "nailed": their descriptors come from catalog/catalog_defs.py
(formrdesc), since reading pg_class needs pg_class's descriptor first.

Invalidation (see shmem/sinval.py for the shared half):

- a catalog change by this backend (catalog.indexing) drops every non-nailed
  entry and the syscache at once, and marks the transaction as having changed
  the catalog; the DDL code makes its changes visible with
  catalog.indexing.command_counter_increment before it opens what it changed,
  which drops again what was read in between (AtCCI_LocalCache: read with the
  old command id, it missed the changes);
- ``at_eoxact(is_commit)``: at commit of such a transaction the shared catalog
  generation is bumped; at abort the caches are dropped (they may hold what the
  aborted transaction wrote). It is registered as an access.xact callback, which
  runs after ProcArrayEndTransaction (so a backend that sees the new generation
  also sees the commit); it must run before the transaction's locks are released,
  or a backend granted one of them could still use what it cached;
- ``accept_invalidation_messages()`` — called at the start of every statement
  and by ``relation_open`` after taking a lock — drops the caches when the shared
  generation has moved since this backend last looked. A Relation object is
  valid until then: callers must not keep one across statements.

Relation locks come from storage.lmgr.lmgr (lock_relation_oid /
unlock_relation_oid); this module installs accept_invalidation_messages as the
lock manager's hook, so every newly granted lock checks the generation, as
LockRelationOid does.

Deliberate differences: no per-relation invalidation messages (the whole cache
goes on any committed DDL anywhere), no init file (pg_internal.init), no
relcache entries for TOAST tables, rules, triggers, policies or partitions.
"""

from __future__ import annotations

from typing import Any

from access.tupdesc import Attribute, TupleDesc
from catalog import catalog_defs as cd
from catalog.catalog import my_database_id, relation_rnode
from shmem import sinval
from storage.lmgr import lmgr
from utils import syscache
from utils.elog import PgError
from utils.rel import (
    BTREE_DEFAULT_FILLFACTOR,
    HEAP_DEFAULT_FILLFACTOR,
    RELKIND_INDEX,
    IndexInfo,
    Relation,
)

# Lock modes (storage/lmgr/lock.h), as storage.lmgr.lock numbers them.
NoLock = 0
AccessShareLock = 1
RowShareLock = 2
RowExclusiveLock = 3
ShareUpdateExclusiveLock = 4
ShareLock = 5
ShareRowExclusiveLock = 6
ExclusiveLock = 7
AccessExclusiveLock = 8


class _State:
    seen_generation = -1          # the shared catalog generation last accepted
    xact_changed_catalog = False  # this transaction wrote a catalog tuple
    local_generation = 0          # bumped whenever this backend drops its caches
    changed_since_cci = False     # catalog written since the last CommandCounterIncrement


_st = _State()
_cache: dict[int, Relation] = {}
_nailed: dict[tuple[int, int], Relation] = {}
_defaults: dict[int, dict[int, str]] = {}


# -- nailed catalog descriptors --------------------------------------------------------------

def catalog_relation(catalog: cd.CatalogDef) -> Relation:
    """formrdesc: the Relation of a system catalog, without reading pg_class."""
    key = (catalog.oid, 0 if catalog.shared else my_database_id())
    rel = _nailed.get(key)
    if rel is None:
        rel = Relation(catalog.oid, catalog.relname, cd.PG_CATALOG_NAMESPACE, "r",
                       relation_rnode(catalog.oid, 0, catalog.shared), catalog.desc,
                       relisshared=catalog.shared)
        _nailed[key] = rel
    return rel


# -- building descriptors ------------------------------------------------------------------

def parse_reloptions(text: str | None) -> dict[str, str]:
    """The options in pg_class.reloptions' text form '{fillfactor=90,...}'."""
    if not text:
        return {}
    out = {}
    for item in text.strip("{}").split(","):
        name, _, value = item.strip().strip('"').partition("=")
        if name:
            out[name] = value
    return out


def format_reloptions(options: dict[str, Any]) -> str | None:
    """The text form of reloptions (None for none)."""
    if not options:
        return None
    return "{" + ",".join(f"{k}={v}" for k, v in options.items()) + "}"


def _build_desc(oid: int) -> Relation | None:
    """RelationBuildDesc: a Relation from the catalogs (None: no such relation)."""
    found = syscache.class_row(oid)
    if found is None:
        return None
    c = cd.PG_CLASS.col
    row = found[1]
    relkind = row[c["relkind"]]
    a = cd.PG_ATTRIBUTE.col
    attrs = []
    for _tid, arow in syscache.search_list(cd.PG_ATTRIBUTE, "attrelid", oid):
        if arow[a["attnum"]] <= 0:
            continue
        attrs.append(Attribute(
            arow[a["attname"]], arow[a["atttypid"]], arow[a["attnum"]], arow[a["atttypmod"]],
            arow[a["attnotnull"]], arow[a["atthasdef"]], arow[a["attisdropped"]],
            arow[a["attlen"]], arow[a["attbyval"]], arow[a["attalign"]],
            arow[a["attstorage"]]))
    attrs.sort(key=lambda x: x.attnum)
    options = parse_reloptions(row[c["reloptions"]])
    default_ff = BTREE_DEFAULT_FILLFACTOR if relkind == RELKIND_INDEX else HEAP_DEFAULT_FILLFACTOR
    try:
        fillfactor = int(options.get("fillfactor", default_ff))
    except ValueError:
        fillfactor = default_ff
    relisshared = row[c["relisshared"]]
    rel = Relation(
        oid, row[c["relname"]], row[c["relnamespace"]], relkind,
        relation_rnode(row[c["relfilenode"]], row[c["reltablespace"]], relisshared),
        TupleDesc(tuple(attrs)), relpersistence=row[c["relpersistence"]],
        relisshared=relisshared, fillfactor=fillfactor)
    i = cd.PG_INDEX.col
    if relkind == RELKIND_INDEX:
        irow = syscache.search(cd.PG_INDEX, "indexrelid", oid)
        if irow is not None:
            r = irow[1]
            rel.index = IndexInfo(r[i["indrelid"]], tuple(r[i["indkey"]]),
                                  r[i["indisunique"]], r[i["indisprimary"]])
    else:
        index_oids = []
        indexed: set[int] = set()
        for _tid, r in syscache.search_list(cd.PG_INDEX, "indrelid", oid):
            if not r[i["indislive"]]:
                continue
            index_oids.append(r[i["indexrelid"]])
            indexed.update(r[i["indkey"]])
        rel.index_oids = tuple(sorted(index_oids))
        rel.indexed_attnums = frozenset(indexed)
    return rel


def relation_id_get_relation(oid: int) -> Relation | None:
    """RelationIdGetRelation: the cached descriptor, built on a miss (no lock)."""
    rel = _cache.get(oid)
    if rel is not None:
        return rel
    catalog = cd.CATALOG_BY_OID.get(oid)
    if catalog is not None:
        return catalog_relation(catalog)
    rel = _build_desc(oid)
    if rel is not None:
        _cache[oid] = rel
    return rel


# -- open and close ------------------------------------------------------------------------

def lock_relation_oid(oid: int, lockmode: int) -> None:
    """LockRelationOid, then AcceptInvalidationMessages (what was built before the
    lock may be stale once we hold it)."""
    if lockmode == NoLock:
        return
    lmgr.lock_relation_oid(oid, lockmode)
    accept_invalidation_messages()


def unlock_relation_oid(oid: int, lockmode: int) -> None:
    if lockmode != NoLock:
        lmgr.unlock_relation_oid(oid, lockmode)


def try_relation_open(oid: int, lockmode: int = AccessShareLock) -> Relation | None:
    """try_relation_open: None (and no lock kept) if the relation does not exist."""
    if syscache.class_row(oid) is None and oid not in cd.CATALOG_BY_OID:
        return None
    lock_relation_oid(oid, lockmode)
    rel = relation_id_get_relation(oid)
    if rel is None:
        unlock_relation_oid(oid, lockmode)
    return rel


def relation_open(oid: int, lockmode: int = AccessShareLock) -> Relation:
    """relation_open: lock the relation (unless NoLock) and return its descriptor.
    The lock is kept until transaction end unless relation_close releases it."""
    lock_relation_oid(oid, lockmode)
    rel = relation_id_get_relation(oid)
    if rel is None:
        raise PgError("XX000", f"could not open relation with OID {oid}")
    return rel


def relation_open_by_name(name: str, schema: str | None = None,
                          lockmode: int = AccessShareLock, missing_ok: bool = True
                          ) -> Relation | None:
    """relation_openrv: resolve ``[schema.]name`` through the search path
    (catalog.namespace), lock and open it. None if there is no such relation (or
    schema); with ``missing_ok=False`` 42P01 instead. The name is looked up again
    once the lock is granted, as RangeVarGetRelidExtended does, in case DDL
    committed meanwhile."""
    from catalog import namespace

    while True:
        oid = namespace.range_var_get_relid(name, schema, missing_ok=True)
        if not oid:
            if missing_ok:
                return None
            namespace.range_var_get_relid(name, schema)  # raises 42P01 / 3F000
        lock_relation_oid(oid, lockmode)
        again = namespace.range_var_get_relid(name, schema, missing_ok=True)
        if again == oid:
            rel = relation_id_get_relation(oid)
            if rel is not None:
                return rel
        unlock_relation_oid(oid, lockmode)


def relname_get_relid(relname: str, namespace_oid: int) -> int | None:
    """get_relname_relid: the OID of ``relname`` in that schema, or None."""
    from catalog import namespace

    return namespace.get_relname_relid(relname, namespace_oid) or None


def all_table_oids() -> list[int]:
    """The OIDs of this database's user tables (relkind 'r', the catalogs left out),
    for a VACUUM without a table list."""
    c = cd.PG_CLASS.col
    return sorted(row[c["oid"]] for _tid, row in syscache.catalog_rows(cd.PG_CLASS)
                  if row[c["relkind"]] in ("r", "m")
                  and not cd.is_catalog_relation_oid(row[c["oid"]]))


def relation_close(rel: Relation, lockmode: int = NoLock) -> None:
    """relation_close: release ``lockmode`` now (NoLock: keep it to transaction end)."""
    unlock_relation_oid(rel.oid, lockmode)


# -- what else the SQL layer asks of a relation -------------------------------------------------

def relation_get_index_list(rel: Relation) -> tuple[int, ...]:
    """RelationGetIndexList: OIDs of the table's live indexes, in OID order."""
    return rel.index_oids


def relation_get_defaults(rel: Relation) -> dict[int, str]:
    """attnum -> default expression (pg_attrdef.adbin: normalized SQL text the
    executor parses again) for every column with a default."""
    d = _defaults.get(rel.oid)
    if d is None:
        col = cd.PG_ATTRDEF.col
        d = {row[col["adnum"]]: row[col["adbin"]]
             for _tid, row in syscache.search_list(cd.PG_ATTRDEF, "adrelid", rel.oid)}
        _defaults[rel.oid] = d
    return d


def relation_get_primary_key_index(rel: Relation) -> int:
    """The OID of the table's primary key index (0 if none)."""
    i = cd.PG_INDEX.col
    for _tid, r in syscache.search_list(cd.PG_INDEX, "indrelid", rel.oid):
        if r[i["indisprimary"]] and r[i["indislive"]]:
            return r[i["indexrelid"]]
    return 0


# -- invalidation ------------------------------------------------------------------------------

def catalog_generation() -> int:
    """This backend's catalog version: it changes whenever the backend drops its
    caches (its own catalog changes, an abort after them, another backend's
    committed DDL accepted). A plan or anything else built from Relation objects
    is still valid while it is unchanged."""
    return _st.local_generation


def relation_cache_invalidate() -> None:
    """RelationCacheInvalidate + catcache flush: forget every non-nailed entry."""
    _st.local_generation += 1
    _cache.clear()
    _defaults.clear()
    syscache.invalidate_all()
    from catalog import namespace

    namespace.invalidate_search_path_cache()


def relation_forget(oid: int) -> None:
    """Drop one entry (the next open rebuilds it)."""
    _cache.pop(oid, None)
    _defaults.pop(oid, None)


def note_catalog_change() -> None:
    """This backend wrote a catalog tuple: its caches may be stale now, and the
    transaction must announce the change at commit."""
    _st.xact_changed_catalog = True
    _st.changed_since_cci = True
    relation_cache_invalidate()


def at_command_counter_increment() -> None:
    """AtCCI_LocalCache: entries built after this command's catalog changes were
    read with its command id, which does not see them; drop them."""
    if _st.changed_since_cci:
        _st.changed_since_cci = False
        relation_cache_invalidate()


def accept_invalidation_messages(_generation=sinval.catalog_generation) -> None:
    """AcceptInvalidationMessages: drop the caches if any backend committed
    catalog changes since we last looked (see the module docstring)."""
    gen = _generation()
    if gen != _st.seen_generation:
        _st.seen_generation = gen
        relation_cache_invalidate()
        from catalog import indexing

        indexing.invalidate_catalog_snapshot()


def at_eoxact(is_commit: bool) -> None:
    """AtEOXact_Inval + AtEOXact_RelationCache: announce this transaction's
    catalog changes at commit, discard what it cached of them at abort."""
    _st.changed_since_cci = False
    if not _st.xact_changed_catalog:
        return
    _st.xact_changed_catalog = False
    if is_commit:
        sinval.bump_catalog_generation()
    else:
        relation_cache_invalidate()
        from catalog import indexing

        indexing.invalidate_catalog_snapshot()


def _register() -> None:
    """Run at_eoxact at every transaction end, and accept invalidations whenever a
    relation lock is newly granted (LockRelationOid's AcceptInvalidationMessages)."""
    from access import xact

    xact.register_xact_callback(at_eoxact)
    if lmgr.accept_invalidation_messages_hook is None:
        lmgr.accept_invalidation_messages_hook = accept_invalidation_messages


_register()


def reset_for_tests() -> None:
    """Forget everything (a unit test that switches clusters)."""
    _cache.clear()
    _nailed.clear()
    _defaults.clear()
    syscache.invalidate_all()
    _st.seen_generation = -1
    _st.xact_changed_catalog = False
