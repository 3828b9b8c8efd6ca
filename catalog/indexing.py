"""Reading and writing catalog tuples — mirrors src/backend/catalog/indexing.c
(CatalogTupleInsert, CatalogTupleUpdate, CatalogTupleDelete) and the catalog
half of access/index/genam.c (systable_beginscan / systable_getnext).

Every change to a system catalog goes through the three catalog_tuple_*
functions: they call access.heapam (WAL-logged like any heap change) with the
current command id, and note the change for the invalidation machinery
(utils.relcache.note_catalog_change: this backend's caches are dropped at once,
and the shared catalog generation is bumped when the transaction commits).

Reads go through ``systable_scan``: a sequential heap scan with a catalog
snapshot. PostgreSQL scans a catalog index when one fits; tusk has no catalog
indexes (the catalogs are small, and the relation cache and syscache keep what
they read), a deliberate difference.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from access import heapam, xact
from utils import snapmgr
from utils.elog import PgError
from utils.rel import Relation

Tid = tuple[int, int]


def current_command_id() -> int:
    """GetCurrentCommandId(true)."""
    return xact.get_current_command_id(True)


def command_counter_increment() -> None:
    """CommandCounterIncrement: make this command's catalog changes visible to
    the next lookups: drop the catalog snapshot and the cache entries read since
    the changes (with the old command id, they did not see them)."""
    from utils import relcache

    xact.command_counter_increment()
    invalidate_catalog_snapshot()
    relcache.at_command_counter_increment()


def invalidate_catalog_snapshot() -> None:
    """InvalidateCatalogSnapshot."""
    snapmgr.invalidate_catalog_snapshot()


def catalog_snapshot() -> Any:
    """GetCatalogSnapshot: the snapshot catalog lookups use (outside a
    transaction too, as InitPostgres needs)."""
    return snapmgr.get_catalog_snapshot()


# -- reading ------------------------------------------------------------------------------

def systable_scan(rel: Relation, snapshot: Any = None, *, any_visible: bool = False
                  ) -> Iterator[tuple[Tid, list[Any]]]:
    """(tid, values) of every row of catalog ``rel`` visible to ``snapshot``
    (default: the catalog snapshot). ``any_visible``: every tuple still on disk
    (SnapshotAny), for checks such as "is this OID in use"."""
    if any_visible:
        snapshot = snapmgr.SnapshotAny
    elif snapshot is None:
        snapshot = snapmgr.get_catalog_snapshot()
    return heapam.heap_scan(rel, snapshot)


# -- writing ------------------------------------------------------------------------------

def _note_change() -> None:
    from utils import relcache

    relcache.note_catalog_change()


def catalog_tuple_insert(rel: Relation, values: list[Any]) -> Tid:
    """CatalogTupleInsert."""
    _note_change()
    return heapam.heap_insert(rel, values, current_command_id())


def _check(result: Any, what: str) -> None:
    status = result.status
    if status == heapam.TM_Ok:
        return
    if status == heapam.TM_SelfModified:
        raise PgError("XX000", f"tuple already {what} by self")
    raise PgError("XX000", f"tuple concurrently {what}")


def catalog_tuple_update(rel: Relation, tid: Tid, values: list[Any]) -> Tid:
    """CatalogTupleUpdate (simple_heap_update: a concurrent change is an error);
    returns the new version's tid."""
    _note_change()
    result = heapam.heap_update(rel, tid, values, current_command_id(), catalog_snapshot())
    _check(result, "updated")
    return result.new_tid


def catalog_tuple_delete(rel: Relation, tid: Tid) -> None:
    """CatalogTupleDelete (simple_heap_delete)."""
    _note_change()
    result = heapam.heap_delete(rel, tid, current_command_id(), catalog_snapshot())
    _check(result, "deleted")
