"""The planner — mirrors the parts of src/backend/optimizer/ that matter for
tusk's statements: qual pushdown to the scan of the one table a condition reads
(distribute_qual_to_rels), index path selection for conditions of the form
``indexed column <op> constant-or-parameter`` (match_clause_to_indexcol,
with unique full-key equality preferred), nested-loop joins in FROM order,
hash aggregation, sort, distinct and limit.

There is no cost model: an index whose leading column is constrained is always
used (what PostgreSQL chooses for the primary-key lookups that dominate OLTP),
anything else is a sequential scan. The plan is a tree of executor/nodes.py
objects holding compiled closures.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from executor import nodes as N
from executor.exec_expr import compile_expr, compile_qual
from parser.analyze import FromItem, Query
from parser.parse_expr import RangeTblEntry
from parser.primnodes import Aggref, Const, Expr, FuncExpr, Param, Var, children, walk
from utils.adt import operators as ops
from utils.elog import PgError

_COMMUTE = {"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass(eq=False)
class PlannedStmt:
    plan: N.PlanNode
    columns: list[tuple[str, int, int]]      # output (name, type, typmod)


# =============================================================================================
# Expression rewriting helpers
# =============================================================================================

def shift_vars(e: Expr, delta: int) -> Expr:
    """A copy of ``e`` whose Vars point ``delta`` positions further."""
    if delta == 0:
        return e
    e2 = copy.deepcopy(e)
    for node in walk(e2):
        if isinstance(node, Var):
            node.index += delta
    return e2


def _vars(e: Expr) -> list[Var]:
    return [n for n in walk(e) if isinstance(n, Var)]


def _rte_of(q: Query, index: int) -> RangeTblEntry | None:
    for rte in q.ps.namespace:
        if rte.offset <= index < rte.offset + len(rte.colnames):
            return rte
    return None


# =============================================================================================
# Scans
# =============================================================================================

def _is_runtime_const(e: Expr) -> bool:
    return all(not isinstance(n, (Var, Aggref)) and not (isinstance(n, FuncExpr) and n.volatile
                                                            and n.name not in ("now",))
               for n in walk(e))


def _index_clause(q: Expr, rte: RangeTblEntry) -> tuple[int, str, Expr] | None:
    """(table attnum, strategy, value expression) for `column op value`."""
    if not (isinstance(q, FuncExpr) and q.is_operator and q.name in _COMMUTE
            and len(q.args) == 2):
        return None
    left, right = q.args
    if isinstance(left, Var) and _is_runtime_const(right):
        var, value, op = left, right, q.name
    elif isinstance(right, Var) and _is_runtime_const(left):
        var, value, op = right, left, _COMMUTE[q.name]
    else:
        return None
    if not var.attnum or var.type != value.type:
        return None
    return var.attnum, op, value


def _choose_index(rel: Any, quals: list[Expr], rte: RangeTblEntry
                  ) -> tuple[Any, list[tuple[int, str, Expr]], list[Expr]] | None:
    """The best index for these conditions: most leading equality columns, unique
    indexes with every column matched first. Returns (index, keys, leftover quals)."""
    from utils import relcache

    if not rel.index_oids or not quals:
        return None
    clauses = [(q, _index_clause(q, rte)) for q in quals]
    best = None
    for ioid in rel.index_oids:
        index = relcache.relation_open(ioid, 1)
        info = index.index
        keys: list[tuple[int, str, Expr]] = []
        used: set[int] = set()
        eq_count = 0
        for col, attnum in enumerate(info.indkey, start=1):
            eq = next((i for i, (_, c) in enumerate(clauses)
                       if c is not None and c[0] == attnum and c[1] == "=" and i not in used),
                      None)
            if eq is not None:
                keys.append((col, "=", clauses[eq][1][2]))  # type: ignore[index]
                used.add(eq)
                eq_count += 1
                continue
            for i, (_, c) in enumerate(clauses):
                if c is not None and c[0] == attnum and c[1] != "=" and i not in used:
                    keys.append((col, c[1], c[2]))
                    used.add(i)
            break
        if not keys:
            continue
        full_unique = info.indisunique and eq_count == len(info.indkey)
        score = (full_unique, eq_count, len(keys))
        if best is None or score > best[0]:
            leftover = [q for i, (q, _) in enumerate(clauses) if i not in used]
            best = (score, index, keys, leftover)
    if best is None:
        return None
    return best[1], best[2], best[3]


def _scan(q: Query, item: FromItem, quals: list[Expr]) -> N.PlanNode:
    """The scan of one table with the conditions that read only it (Vars already
    shifted to the table's own row)."""
    rte = item.rte
    assert rte is not None
    rel = rte.relation
    chosen = _choose_index(rel, quals, rte)
    if chosen is not None:
        index, keys, leftover = chosen
        return N.IndexScan(rel, index, [(col, strat, compile_expr(v)) for col, strat, v in keys],
                           compile_qual(leftover), width=item.width)
    return N.SeqScan(rel, compile_qual(quals), width=item.width)


# =============================================================================================
# The join tree
# =============================================================================================

def _nullable_rtes(item: FromItem, nullable: bool, out: set[int]) -> None:
    if item.kind == "join":
        _nullable_rtes(item.left, nullable, out)  # type: ignore[arg-type]
        _nullable_rtes(item.right, nullable or item.jointype == "left", out)  # type: ignore[arg-type]
    elif nullable and item.rte is not None:
        out.add(item.rte.rtindex)


def _plan_from(q: Query, item: FromItem, pushable: dict[int, list[Expr]],
               base_offset: int) -> N.PlanNode:
    if item.kind == "table":
        rte = item.rte
        assert rte is not None
        local = [shift_vars(e, -rte.offset) for e in pushable.pop(rte.rtindex, [])]
        return _scan(q, item, local)
    if item.kind == "join":
        left = _plan_from(q, item.left, pushable, base_offset)  # type: ignore[arg-type]
        right_item = item.right
        assert right_item is not None
        if right_item.kind == "lateral":
            exprs = [compile_expr(shift_vars(e, -base_offset))
                     for e in right_item.lateral_exprs]
            qual = compile_qual([shift_vars(e, -base_offset) for e in item.quals])
            return N.LateralProject(left, exprs, qual, width=item.width)
        right = _plan_from(q, right_item, pushable, base_offset + left.width)
        qual = compile_qual([shift_vars(e, -base_offset) for e in item.quals])
        return N.NestLoop(left, right, item.jointype, qual, width=item.width)
    if item.kind == "function":
        rte = item.rte
        assert rte is not None
        local = [shift_vars(e, -rte.offset) for e in pushable.pop(rte.rtindex, [])]
        return N.FunctionScan(item.function, compile_qual(local), width=item.width)
    if item.kind == "lateral":
        exprs = [compile_expr(e) for e in item.lateral_exprs]
        return N.LateralProject(N.Result(width=0), exprs, width=item.width)
    raise PgError("XX000", f"unexpected FROM item {item.kind}")


def _is_scan(q: Query, rtindex: int) -> bool:
    """A FROM item that is a table or a function (where conditions can be pushed)."""
    def find(item: FromItem) -> bool:
        if item.kind == "join":
            return find(item.left) or find(item.right)  # type: ignore[arg-type]
        return item.kind in ("table", "function") and item.rte is not None \
            and item.rte.rtindex == rtindex
    return any(find(i) for i in q.from_items)


def plan_scan(q: Query) -> N.PlanNode:
    """The join tree with WHERE applied: pushed down where possible, the rest
    filtered on top."""
    if not q.from_items:
        qual = compile_qual(q.quals)
        return N.Result(qual, width=0)
    nullable: set[int] = set()
    for item in q.from_items:
        _nullable_rtes(item, False, nullable)
    pushable: dict[int, list[Expr]] = {}
    rest: list[Expr] = []
    for qual in q.quals:
        rtes = {v.rtindex for v in _vars(qual)}
        if len(rtes) == 1 and _is_scan(q, next(iter(rtes))) and next(iter(rtes)) not in nullable:
            pushable.setdefault(next(iter(rtes)), []).append(qual)
        else:
            rest.append(qual)
    assert len(q.from_items) == 1
    plan = _plan_from(q, q.from_items[0], pushable, 0)
    for leftover in pushable.values():
        rest += leftover
    if rest:
        plan = N.Filter(plan, compile_qual(rest), width=plan.width)  # type: ignore[arg-type]
    return plan


# =============================================================================================
# SELECT
# =============================================================================================

def _replace_grouped(e: Expr, group: list[Expr], ngroup: int) -> Expr:
    """Rewrite an expression evaluated after aggregation: grouped expressions and
    aggregates become references into the Agg node's output row."""
    for i, g in enumerate(group):
        if _equal(e, g):
            return Var(e.type, index=i, typmod=e.typmod, location=e.location)
    if isinstance(e, Aggref):
        return Var(e.type, index=ngroup + e.aggno, typmod=e.typmod, location=e.location)
    e2 = copy.copy(e)
    for attr in ("args", "items", "elements"):
        if hasattr(e2, attr):
            setattr(e2, attr, [_replace_grouped(c, group, ngroup) for c in getattr(e2, attr)])
    for attr in ("arg", "default"):
        if getattr(e2, attr, None) is not None:
            setattr(e2, attr, _replace_grouped(getattr(e2, attr), group, ngroup))
    if hasattr(e2, "whens"):
        e2.whens = [(_replace_grouped(c, group, ngroup), _replace_grouped(r, group, ngroup))
                    for c, r in e2.whens]
    return e2


def _equal(a: Expr, b: Expr) -> bool:
    if a is b:
        return True
    if type(a) is not type(b) or a.type != b.type:
        return False
    if isinstance(a, Var):
        return a.index == b.index  # type: ignore[attr-defined]
    if isinstance(a, Const):
        return a.value == b.value  # type: ignore[attr-defined]
    if isinstance(a, Param):
        return a.number == b.number  # type: ignore[attr-defined]
    if isinstance(a, FuncExpr):
        return a.name == b.name and len(a.args) == len(b.args) and all(  # type: ignore[attr-defined]
            _equal(x, y) for x, y in zip(a.args, b.args, strict=True))  # type: ignore[attr-defined]
    ca, cb = children(a), children(b)
    return len(ca) == len(cb) and all(x is not None and y is not None and _equal(x, y)
                                      for x, y in zip(ca, cb, strict=True))


def plan_select(q: Query) -> PlannedStmt:
    plan = plan_scan(q)
    targets = [te.expr for te in q.targets]
    sort_exprs = [s.expr for s in q.sort]
    having = q.having
    if q.has_aggs:
        group = q.group_by
        aggs = [N.AggCall(a.spec, [compile_expr(x) for x in a.args], a.star, a.distinct)
                for a in q.aggs]
        plan = N.Agg(plan, [compile_expr(g) for g in group], aggs,
                     width=len(group) + len(aggs))
        ng = len(group)
        targets = [_replace_grouped(e, group, ng) for e in targets]
        sort_exprs = [_replace_grouped(e, group, ng) for e in sort_exprs]
        if having is not None:
            having = _replace_grouped(having, group, ng)
    if having is not None:
        plan = N.Filter(plan, compile_qual([having]), width=plan.width)  # type: ignore[arg-type]
    if q.distinct:
        plan = N.Project(plan, [compile_expr(e) for e in targets], width=len(targets))
        plan = N.Unique(plan, width=plan.width)
        if q.sort:
            keys = []
            for s, e in zip(q.sort, sort_exprs, strict=True):
                pos = next((i for i, te in enumerate(targets) if _equal(te, e)), None)
                if pos is None:
                    raise PgError("42P10", "for SELECT DISTINCT, ORDER BY expressions must "
                                           "appear in select list",
                                  position=q.ps.position(s.expr.location))
                keys.append(N.SortKey(compile_expr(Var(e.type, index=pos)), s.descending,
                                      s.nulls_first, ops.sort_key(e.type)))
            plan = N.Sort(plan, keys, width=plan.width)
    else:
        if q.sort:
            keys = [N.SortKey(compile_expr(e), s.descending, s.nulls_first,
                              ops.sort_key(e.type))
                    for s, e in zip(q.sort, sort_exprs, strict=True)]
            plan = N.Sort(plan, keys, width=plan.width)
        plan = N.Project(plan, [compile_expr(e) for e in targets], width=len(targets))
    if q.limit is not None or q.offset is not None:
        plan = N.Limit(plan, compile_expr(q.limit) if q.limit is not None else None,
                       compile_expr(q.offset) if q.offset is not None else None,
                       width=plan.width)
    cols = [(te.name, te.expr.type, te.expr.typmod) for te in q.targets]
    return PlannedStmt(plan, cols)
