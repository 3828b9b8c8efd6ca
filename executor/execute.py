"""Plannable statements from parse tree to runnable Statement — the path of
PostgreSQL's parse_analyze → pg_plan_query → PortalRun → ExecutorRun
(tcop/postgres.c, tcop/pquery.c, executor/execMain.c), collapsed into one
compile step and one run closure per statement.

Each run takes the locks the plan's relations need (AcquireExecutorLocks), a
snapshot (READ COMMITTED: a new one per statement) and the current command id,
and bumps the command counter after a data-modifying statement so the next one
sees its changes. A plan remembers the catalog generation it was built for; when
another transaction's committed DDL (or our own) changed the catalog, the
statement is analysed and planned again before it runs, as PostgreSQL's plan
cache revalidates cached plans.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from access import xact
from catalog import pg_type as t
from executor import nodes as N
from executor.exec_expr import compile_expr, compile_qual
from executor.modify import ModifyTable, ResultRelation
from optimizer import planner
from parser import analyze, parse_expr
from parser.parse_expr import ParseState
from storage.lmgr import lmgr
from utils import relcache, snapmgr
from utils.elog import PgError

Column = tuple[str, int, int]


class Plan:
    """What one analysed and planned statement needs at run time."""

    __slots__ = ("kind", "columns", "param_types", "relations", "select", "modify",
                 "generation", "tag")

    def __init__(self, kind: str, columns: list[Column], param_types: list[int],
                 relations: list[tuple[Any, int]], tag: str) -> None:
        self.kind = kind
        self.columns = columns
        self.param_types = param_types
        self.relations = relations
        self.select: N.PlanNode | None = None
        self.modify: ModifyTable | None = None
        self.generation = catalog_generation() if relations else 0
        self.tag = tag


def catalog_generation() -> int:
    """The relation cache's view of the catalog version (see utils/relcache.py)."""
    return relcache.catalog_generation()


def _final_param_types(ps: ParseState) -> list[int]:
    if ps.param_types is None:
        return []
    for i, ty in enumerate(ps.param_types):
        if ty in (0, t.UNKNOWNOID):
            raise PgError("42P18", f"could not determine data type of parameter ${i + 1}")
    return list(ps.param_types)


def plan_statement(kind: str, body: dict[str, Any], src: bytes,
                   param_types: list[int] | None) -> Plan:
    """parse_analyze + pg_plan_query for SELECT / INSERT / UPDATE / DELETE."""
    ps = ParseState(src, None if param_types is None else list(param_types))
    if kind == "SelectStmt":
        q = analyze.transform_select(ps, body)
        planned = planner.plan_select(q)
        plan = Plan("select", planned.columns, _final_param_types(ps), q.relations, "SELECT")
        plan.select = planned.plan
        return plan
    if kind == "InsertStmt":
        q = analyze.transform_insert(ps, body)
        tag = "INSERT"
    elif kind == "UpdateStmt":
        q = analyze.transform_update(ps, body)
        tag = "UPDATE"
    elif kind == "DeleteStmt":
        q = analyze.transform_delete(ps, body)
        tag = "DELETE"
    else:
        raise PgError("0A000", f'"{kind}" is not supported')
    columns = [(te.name, te.expr.type, te.expr.typmod) for te in q.returning]
    plan = Plan(q.command, columns, _final_param_types(ps), q.relations, tag)
    plan.modify = _plan_modify(q, ps)
    return plan


def _default_fns(rel: Any, rte: parse_expr.RangeTblEntry) -> dict[int, Callable]:
    """Compiled column defaults (pg_attrdef's expressions), by 0-based column."""
    from pglast import parser as pgparser

    from utils import relcache

    out: dict[int, Callable] = {}
    defaults = relcache.relation_get_defaults(rel)
    for col, attnum in enumerate(rte.attnums or []):
        text = defaults.get(attnum)
        if text is None:
            continue
        src = f"SELECT {text}".encode()
        stmt = json.loads(pgparser.parse_sql_json(src.decode()))["stmts"][0]["stmt"]
        node = stmt["SelectStmt"]["targetList"][0]["ResTarget"]["val"]
        dps = ParseState(src)
        e = analyze.assignment_expr(dps, parse_expr.transform_expr(dps, node), rte, col)
        out[col] = compile_expr(e)
    return out


def _plan_modify(q: analyze.Query, ps: ParseState) -> ModifyTable:
    rte = q.result_rte
    assert rte is not None
    rel = rte.relation
    target = ResultRelation.open(rel)
    returning = [compile_expr(te.expr) for te in q.returning]
    # Defaults are compiled only where they can be used (INSERT, SET col = DEFAULT).
    needs_defaults = q.command == "insert" or any(e is None for _, e in q.update_set)
    defaults = _default_fns(rel, rte) if needs_defaults else {}
    natts = target.natts
    if q.command == "insert":
        cols = q.insert_columns
        absent = [c for c in range(natts) if c not in cols]
        absent_defaults = [(c, defaults[c]) for c in absent if c in defaults]
        if q.insert_select is not None:
            sub = planner.plan_select(q.insert_select).plan

            def rows_from_select(ec: N.ExecContext) -> Any:
                for srow in sub.rows(ec):
                    values: list[Any] = [None] * natts
                    for c, v in zip(cols, srow, strict=True):
                        values[c] = v
                    for c, fn in absent_defaults:
                        values[c] = fn((), ec.params)
                    yield values
            source = rows_from_select
        else:
            compiled_rows = []
            for row in q.insert_rows:
                fns: list[tuple[int, Callable]] = list(absent_defaults)
                for c, e in zip(cols, row, strict=True):
                    if e is None:
                        if c in defaults:
                            fns.append((c, defaults[c]))
                    else:
                        fns.append((c, compile_expr(e)))
                compiled_rows.append(fns)

            def rows_from_values(ec: N.ExecContext) -> Any:
                params = ec.params
                for fns in compiled_rows:
                    values: list[Any] = [None] * natts
                    for c, fn in fns:
                        values[c] = fn((), params)
                    yield values
            source = rows_from_values
        return ModifyTable("insert", target, insert_rows=source, returning=returning)
    scan = planner.plan_scan(q)
    set_fns = []
    for col, e in q.update_set:
        if e is None:
            fn = defaults.get(col) or (lambda row, p: None)
        else:
            fn = compile_expr(e)
        set_fns.append((col, fn))
    return ModifyTable(q.command, target, source=scan, set_fns=set_fns,
                       recheck=compile_qual(q.quals), returning=returning)


# =============================================================================================
# Running
# =============================================================================================

def acquire_executor_locks(relations: Sequence[tuple[Any, int]]) -> None:
    lock = lmgr.lock_relation_oid
    for rel, mode in relations:
        lock(rel.oid, mode)


def run_plan(plan: Plan, params: Sequence[Any], check_interrupts: Callable[[], None],
             locked: bool = False) -> tuple[list[list[Any]], str]:
    """ExecutorStart/Run/Finish/End for one execution: (rows, command tag).
    ``locked``: the caller already holds the plan's relation locks."""
    if not locked:
        acquire_executor_locks(plan.relations)
    if plan.kind == "select":
        if plan.relations:
            ec = N.ExecContext(params, snapmgr.get_transaction_snapshot(),
                               xact.get_current_command_id(False), check_interrupts)
        else:  # no table: no locks, no snapshot
            ec = N.ExecContext(params, None, 0, check_interrupts)
        rows = list(plan.select.rows(ec))  # type: ignore[union-attr]
        return rows, f"SELECT {len(rows)}"
    snapshot = snapmgr.get_transaction_snapshot()
    ec = N.ExecContext(params, snapshot, xact.get_current_command_id(True), check_interrupts)
    rows, count = plan.modify.run(ec)  # type: ignore[union-attr]
    xact.command_counter_increment()
    if plan.kind == "insert":
        return rows, f"INSERT 0 {count}"
    return rows, f"{plan.tag} {count}"
