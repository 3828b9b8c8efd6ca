"""System views computed by the server — the views of PostgreSQL's
src/backend/catalog/system_views.sql whose rows come from shared memory or the
settings rather than from catalog tables (pg_stat_activity, pg_settings,
pg_stat_bgwriter, pg_stat_wal, pg_stat_database, pg_locks, pg_buffercache,
pg_stat_*_tables, pg_statio_*_tables, pg_stat_*_indexes, pg_statio_*_indexes).

A view is its column list (name, type OID) and a function returning its rows as
sequences in column order; the planner scans it like a table (FunctionScan).
Views register themselves with ``register``; ``lookup`` resolves a name as
PostgreSQL's search path would (unqualified names resolve in pg_catalog).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SystemView:
    name: str
    columns: tuple[tuple[str, int], ...]
    rows: Callable[[], Iterable[Sequence[Any]]]


VIEWS: dict[str, SystemView] = {}
_loaded = False


def register(view: SystemView) -> None:
    VIEWS[view.name] = view


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        import importlib

        for mod in ("utils.adt.pgstatfuncs",):
            try:
                importlib.import_module(mod)
            except ModuleNotFoundError as exc:
                if exc.name != mod:
                    raise


def lookup(schema: str | None, name: str) -> SystemView | None:
    if schema not in (None, "pg_catalog"):
        return None
    _load()
    return VIEWS.get(name)
