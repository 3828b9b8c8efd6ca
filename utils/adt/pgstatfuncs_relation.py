"""Per-table and per-index statistics views and functions — mirrors the
relation part of src/backend/utils/adt/pgstatfuncs.c (pg_stat_get_numscans,
pg_stat_get_live_tuples, ..., pg_stat_get_xact_*, pg_stat_reset_single_table_counters,
pg_stat_force_next_flush) and the views of src/backend/catalog/system_views.sql
built on them: pg_stat_{all,user,sys}_tables, pg_stat_xact_{all,user,sys}_tables,
pg_statio_{all,user,sys}_tables, pg_stat_{all,user,sys}_indexes,
pg_statio_{all,user,sys}_indexes — PostgreSQL 15's columns, types and order.

Figures come from the shared table (utils.pgstat_relation_shmem) that backends
publish into (utils.pgstat_relation); names from pg_class and pg_namespace, the
table/index pairs from pg_index, so dropped relations are never shown. As in
PostgreSQL, a session's own counts appear once it has published them (at the
end of a statement, at most every utils.pgstat_relation.PGSTAT_MIN_INTERVAL, or
right away after pg_stat_force_next_flush()). As in
PostgreSQL, idx_scan and idx_tup_fetch of a table without indexes, and its
idx_blks_* columns, are NULL (a sum over no indexes).

Where tusk differs: no autovacuum, so last_autovacuum and last_autoanalyze are
NULL and autovacuum_count and autoanalyze_count 0, as in a PostgreSQL whose
autovacuum never ran; no TOAST, so toast_blks_* and tidx_blks_* are NULL, as for
a PostgreSQL table without a TOAST table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from catalog import pg_type as t
from catalog.system_views import SystemView, register
from utils import pgstat_relation as pgrel
from utils import pgstat_relation_shmem as shm
from utils.adt import functions as fn

_FIELD = {name: i for i, name in enumerate(shm.FIELDS)}
_ZERO = [0] * len(shm.FIELDS)
_SYS_SCHEMAS = ("pg_catalog", "information_schema")

_TABLE_KINDS = ("r", "t", "m", "p")
_STATIO_KINDS = ("r", "t", "m")


def _is_sys(schema: str | None) -> bool:
    return schema in _SYS_SCHEMAS or (schema or "").startswith("pg_toast")


class _Catalog:
    """The pg_class / pg_namespace / pg_index facts the views join."""

    def __init__(self) -> None:
        from catalog import catalog_defs as cd
        from utils import syscache

        ccol, ncol, icol = cd.PG_CLASS.col, cd.PG_NAMESPACE.col, cd.PG_INDEX.col
        self.nspname = {r[ncol["oid"]]: r[ncol["nspname"]]
                        for _tid, r in syscache.catalog_rows(cd.PG_NAMESPACE)}
        # oid -> (relname, relnamespace, relkind, relisshared), in pg_class order
        self.rels: dict[int, tuple[str, int, str, bool]] = {
            r[ccol["oid"]]: (r[ccol["relname"]], r[ccol["relnamespace"]], r[ccol["relkind"]],
                             bool(r[ccol["relisshared"]]))
            for _tid, r in syscache.catalog_rows(cd.PG_CLASS)}
        self.indexes: dict[int, list[int]] = {}  # table oid -> its index oids
        for _tid, r in syscache.catalog_rows(cd.PG_INDEX):
            self.indexes.setdefault(r[icol["indrelid"]], []).append(r[icol["indexrelid"]])

    def key(self, oid: int) -> tuple[int, int]:
        rel = self.rels.get(oid)
        return (0 if rel is not None and rel[3] else pgrel.my_database(), oid)

    def schema(self, oid: int) -> str | None:
        return self.nspname.get(self.rels[oid][1])


def _stats(cat: _Catalog, oids: list[int]) -> dict[int, list[int]]:
    """Published FIELDS of each relation (zeros for one without an entry)."""
    got = shm.read_many([cat.key(o) for o in oids])
    return {o: got.get(cat.key(o), _ZERO) for o in oids}


def _ts(v: int) -> int | None:
    return v or None


def _tables(cat: _Catalog, kinds: tuple[str, ...], which: str) -> list[int]:
    out = []
    for oid, (_name, _ns, kind, _shared) in cat.rels.items():
        if kind not in kinds:
            continue
        sys = _is_sys(cat.schema(oid))
        if which == "all" or (which == "sys") == sys:
            out.append(oid)
    return out


# -- pg_stat_*_tables ------------------------------------------------------------------------

_I8 = t.INT8OID
_TS = t.TIMESTAMPTZOID
_HEAD = (("relid", t.OIDOID), ("schemaname", t.NAMEOID), ("relname", t.NAMEOID))
TABLE_COLUMNS = (*_HEAD, ("seq_scan", _I8), ("seq_tup_read", _I8), ("idx_scan", _I8),
                 ("idx_tup_fetch", _I8), ("n_tup_ins", _I8), ("n_tup_upd", _I8),
                 ("n_tup_del", _I8), ("n_tup_hot_upd", _I8), ("n_live_tup", _I8),
                 ("n_dead_tup", _I8), ("n_mod_since_analyze", _I8),
                 ("n_ins_since_vacuum", _I8), ("last_vacuum", _TS), ("last_autovacuum", _TS),
                 ("last_analyze", _TS), ("last_autoanalyze", _TS), ("vacuum_count", _I8),
                 ("autovacuum_count", _I8), ("analyze_count", _I8),
                 ("autoanalyze_count", _I8))


def _table_rows(which: str) -> Callable[[], Iterator[tuple[Any, ...]]]:
    def rows() -> Iterator[tuple[Any, ...]]:
        cat = _Catalog()
        oids = _tables(cat, _TABLE_KINDS, which)
        idx = [i for o in oids for i in cat.indexes.get(o, ())]
        st = _stats(cat, oids + idx)
        f = _FIELD
        for oid in oids:
            s = st[oid]
            indexes = cat.indexes.get(oid)
            idx_scan = idx_fetch = None
            if indexes:
                idx_scan = sum(st[i][f["numscans"]] for i in indexes)
                idx_fetch = sum(st[i][f["tuples_fetched"]] for i in indexes) \
                    + s[f["tuples_fetched"]]
            yield (oid, cat.schema(oid), cat.rels[oid][0], s[f["numscans"]],
                   s[f["tuples_returned"]], idx_scan, idx_fetch, s[f["tuples_inserted"]],
                   s[f["tuples_updated"]], s[f["tuples_deleted"]], s[f["tuples_hot_updated"]],
                   s[f["n_live_tuples"]], s[f["n_dead_tuples"]],
                   s[f["changes_since_analyze"]], s[f["inserts_since_vacuum"]],
                   _ts(s[f["vacuum_timestamp"]]), None, _ts(s[f["analyze_timestamp"]]), None,
                   s[f["vacuum_count"]], 0, s[f["analyze_count"]], 0)
    return rows


# -- pg_stat_xact_*_tables: this transaction's counts not yet published ------------------------

XACT_TABLE_COLUMNS = TABLE_COLUMNS[:11]


def _xact_counts(oid: int) -> tuple[int, int, int, int, int, int, int]:
    """pg_stat_get_xact_*: (numscans, returned, fetched, inserted, updated,
    deleted, hot_updated) pending in this backend, the transaction's included."""
    ps = pgrel.status_of(oid)
    if ps is None:
        return (0, 0, 0, 0, 0, 0, 0)
    return (ps.numscans, ps.tuples_returned, ps.tuples_fetched,
            ps.tuples_inserted + ps.x_ins, ps.tuples_updated + ps.x_upd,
            ps.tuples_deleted + ps.x_del, ps.tuples_hot_updated)


def _xact_table_rows(which: str) -> Callable[[], Iterator[tuple[Any, ...]]]:
    def rows() -> Iterator[tuple[Any, ...]]:
        cat = _Catalog()
        for oid in _tables(cat, _TABLE_KINDS, which):
            c = _xact_counts(oid)
            indexes = cat.indexes.get(oid)
            idx_scan = idx_fetch = None
            if indexes:
                idx_scan = sum(_xact_counts(i)[0] for i in indexes)
                idx_fetch = sum(_xact_counts(i)[2] for i in indexes) + c[2]
            yield (oid, cat.schema(oid), cat.rels[oid][0], c[0], c[1], idx_scan, idx_fetch,
                   c[3], c[4], c[5], c[6])
    return rows


# -- pg_statio_*_tables ------------------------------------------------------------------------

STATIO_TABLE_COLUMNS = (*_HEAD, ("heap_blks_read", _I8), ("heap_blks_hit", _I8),
                        ("idx_blks_read", _I8), ("idx_blks_hit", _I8),
                        ("toast_blks_read", _I8), ("toast_blks_hit", _I8),
                        ("tidx_blks_read", _I8), ("tidx_blks_hit", _I8))


def _statio_table_rows(which: str) -> Callable[[], Iterator[tuple[Any, ...]]]:
    def rows() -> Iterator[tuple[Any, ...]]:
        cat = _Catalog()
        oids = _tables(cat, _STATIO_KINDS, which)
        idx = [i for o in oids for i in cat.indexes.get(o, ())]
        st = _stats(cat, oids + idx)
        bf, bh = _FIELD["blocks_fetched"], _FIELD["blocks_hit"]
        for oid in oids:
            s = st[oid]
            indexes = cat.indexes.get(oid)
            iread = ihit = None
            if indexes:
                iread = sum(st[i][bf] - st[i][bh] for i in indexes)
                ihit = sum(st[i][bh] for i in indexes)
            yield (oid, cat.schema(oid), cat.rels[oid][0], s[bf] - s[bh], s[bh], iread, ihit,
                   None, None, None, None)
    return rows


# -- pg_stat_*_indexes and pg_statio_*_indexes -------------------------------------------------

_IHEAD = (("relid", t.OIDOID), ("indexrelid", t.OIDOID), ("schemaname", t.NAMEOID),
          ("relname", t.NAMEOID), ("indexrelname", t.NAMEOID))
INDEX_COLUMNS = (*_IHEAD, ("idx_scan", _I8), ("idx_tup_read", _I8), ("idx_tup_fetch", _I8))
STATIO_INDEX_COLUMNS = (*_IHEAD, ("idx_blks_read", _I8), ("idx_blks_hit", _I8))


def _index_rows(which: str, statio: bool) -> Callable[[], Iterator[tuple[Any, ...]]]:
    def rows() -> Iterator[tuple[Any, ...]]:
        cat = _Catalog()
        pairs = [(o, i) for o in _tables(cat, _STATIO_KINDS, which)
                 for i in cat.indexes.get(o, ()) if i in cat.rels]
        st = _stats(cat, [i for _o, i in pairs])
        f = _FIELD
        for oid, ioid in pairs:
            s = st[ioid]
            head = (oid, ioid, cat.schema(oid), cat.rels[oid][0], cat.rels[ioid][0])
            if statio:
                yield (*head, s[f["blocks_fetched"]] - s[f["blocks_hit"]], s[f["blocks_hit"]])
            else:
                yield (*head, s[f["numscans"]], s[f["tuples_returned"]], s[f["tuples_fetched"]])
    return rows


# -- functions ---------------------------------------------------------------------------------

def _entry(relid: int) -> dict[str, int] | None:
    return shm.read(pgrel.my_database(), relid) or shm.read(0, relid)


def _getter(field: str) -> Callable[[int], int]:
    def get(relid: int) -> int:
        e = _entry(relid)
        return e[field] if e is not None else 0
    return get


def _time_getter(field: str) -> Callable[[int], int | None]:
    def get(relid: int) -> int | None:
        e = _entry(relid)
        return (e[field] or None) if e is not None else None
    return get


def _blocks_fetched(relid: int) -> int:
    e = _entry(relid)
    return e["blocks_fetched"] if e is not None else 0


def pg_stat_reset_single_table_counters(relid: int) -> str:
    from utils.adt.pgstatfuncs import _require_superuser

    _require_superuser("pg_stat_reset_single_table_counters")
    pgrel.reset_single(relid)
    return ""


def pg_stat_force_next_flush() -> str:
    pgrel.force_next_flush()
    return ""


_F = fn.Function
for _name, _field in (("numscans", "numscans"), ("tuples_returned", "tuples_returned"),
                      ("tuples_fetched", "tuples_fetched"),
                      ("tuples_inserted", "tuples_inserted"),
                      ("tuples_updated", "tuples_updated"),
                      ("tuples_deleted", "tuples_deleted"),
                      ("tuples_hot_updated", "tuples_hot_updated"),
                      ("live_tuples", "n_live_tuples"), ("dead_tuples", "n_dead_tuples"),
                      ("mod_since_analyze", "changes_since_analyze"),
                      ("ins_since_vacuum", "inserts_since_vacuum"),
                      ("blocks_hit", "blocks_hit"),
                      ("vacuum_count", "vacuum_count"), ("analyze_count", "analyze_count")):
    fn.register(f"pg_stat_get_{_name}", _F((t.OIDOID,), _I8, _getter(_field), volatile=True))
fn.register("pg_stat_get_blocks_fetched", _F((t.OIDOID,), _I8, _blocks_fetched, volatile=True))
for _name in ("autovacuum_count", "autoanalyze_count"):
    fn.register(f"pg_stat_get_{_name}", _F((t.OIDOID,), _I8, lambda _relid: 0, volatile=True))
fn.register("pg_stat_get_last_vacuum_time",
            _F((t.OIDOID,), _TS, _time_getter("vacuum_timestamp"), volatile=True))
fn.register("pg_stat_get_last_analyze_time",
            _F((t.OIDOID,), _TS, _time_getter("analyze_timestamp"), volatile=True))
for _name in ("last_autovacuum_time", "last_autoanalyze_time"):
    fn.register(f"pg_stat_get_{_name}", _F((t.OIDOID,), _TS, lambda _relid: None,
                                           volatile=True))
for _i, _name in enumerate(("numscans", "tuples_returned", "tuples_fetched", "tuples_inserted",
                            "tuples_updated", "tuples_deleted", "tuples_hot_updated")):
    fn.register(f"pg_stat_get_xact_{_name}",
                _F((t.OIDOID,), _I8, lambda relid, _i=_i: _xact_counts(relid)[_i],
                   volatile=True))
fn.register("pg_stat_reset_single_table_counters",
            _F((t.OIDOID,), t.VOIDOID, pg_stat_reset_single_table_counters, volatile=True))
fn.register("pg_stat_force_next_flush", _F((), t.VOIDOID, pg_stat_force_next_flush,
                                           volatile=True))

for _which in ("all", "user", "sys"):
    register(SystemView(f"pg_stat_{_which}_tables", TABLE_COLUMNS, _table_rows(_which)))
    register(SystemView(f"pg_stat_xact_{_which}_tables", XACT_TABLE_COLUMNS,
                        _xact_table_rows(_which)))
    register(SystemView(f"pg_statio_{_which}_tables", STATIO_TABLE_COLUMNS,
                        _statio_table_rows(_which)))
    register(SystemView(f"pg_stat_{_which}_indexes", INDEX_COLUMNS,
                        _index_rows(_which, statio=False)))
    register(SystemView(f"pg_statio_{_which}_indexes", STATIO_INDEX_COLUMNS,
                        _index_rows(_which, statio=True)))

