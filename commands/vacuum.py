"""VACUUM [ANALYZE] [table, ...] and ANALYZE — mirrors src/backend/commands/vacuum.c
(ExecVacuum, vacuum, vacuum_rel).

Each table is vacuumed by access/vacuumlazy.py with its indexes, and what it
found is reported to the table statistics (pgstat_report_vacuum). VACUUM may not
run inside a transaction block (PreventInTransactionBlock). ANALYZE (and VACUUM
ANALYZE) counts live and dead rows (commands/analyze.py) for the statistics
views; it keeps no column statistics: tusk's planner is rule-based (see
optimizer/planner.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from utils import elog
from utils.elog import PgError

SHARE_UPDATE_EXCLUSIVE = 4
_OPTIONS = {"analyze", "verbose", "freeze", "full", "skip_locked", "disable_page_skipping",
            "index_cleanup", "truncate", "process_toast", "parallel"}


def vacuum(body: dict[str, Any], in_block: Callable[[], bool]
           ) -> Callable[[Any, Sequence[Any]], tuple[list, str]]:
    is_vacuum = bool(body.get("is_vacuumcmd"))
    opts = {}
    for node in body.get("options", []):
        d = node["DefElem"]
        name = d["defname"]
        if name not in _OPTIONS:
            raise PgError("42601", f'unrecognized {"VACUUM" if is_vacuum else "ANALYZE"} '
                                   f'option "{name}"')
        opts[name] = d
    if "full" in opts:
        raise PgError("0A000", "VACUUM FULL is not supported")
    rvs = [r["VacuumRelation"]["relation"] for r in body.get("rels", [])]
    tag = "VACUUM" if is_vacuum else "ANALYZE"

    def run(s: Any, _p: Sequence[Any]) -> tuple[list, str]:
        from utils import relcache

        if is_vacuum and in_block():
            raise PgError("25001", "VACUUM cannot run inside a transaction block")
        if rvs:
            rels = []
            for rv in rvs:
                rel = relcache.relation_open_by_name(rv["relname"], rv.get("schemaname"),
                                                     SHARE_UPDATE_EXCLUSIVE)
                if rel is None:
                    name = rv["relname"]
                    raise PgError("42P01", f'relation "{name}" does not exist')
                rels.append(rel)
        else:
            rels = [relcache.relation_open(oid, SHARE_UPDATE_EXCLUSIVE)
                    for oid in relcache.all_table_oids()]
        from commands import analyze
        from utils import pgstat_relation

        do_analyze = not is_vacuum or "analyze" in opts
        if not is_vacuum:
            for rel in rels:
                if rel.relkind == "r":
                    analyze.analyze_rel(rel)
                    s.check_interrupts()
            return [], tag
        from access import vacuumlazy

        for rel in rels:
            if rel.relkind != "r":
                elog.warning(f'skipping "{rel.relname}" --- cannot vacuum non-tables or '
                             "special system tables")
                continue
            indexes = [relcache.relation_open(i, SHARE_UPDATE_EXCLUSIVE) for i in rel.index_oids]
            res = vacuumlazy.lazy_vacuum_rel(rel, indexes)
            pgstat_relation.pgstat_report_vacuum(
                rel, res.live_tuples, res.recently_dead_tuples + res.missed_dead_tuples)
            if do_analyze:
                analyze.analyze_rel(rel)
            s.check_interrupts()
        return [], tag
    return run
