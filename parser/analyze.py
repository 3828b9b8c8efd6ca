"""Parse analysis of SELECT, INSERT, UPDATE and DELETE — mirrors
src/backend/parser/analyze.c (transformSelectStmt, transformInsertStmt,
transformUpdateStmt, transformDeleteStmt), parse_clause.c (FROM, WHERE, GROUP BY,
ORDER BY, LIMIT), parse_target.c and parse_agg.c.

The result is a Query whose expressions are typed and whose column references
are positions in the executor's row: the FROM items are laid side by side, a
table contributing its columns followed by one hidden column holding the
tuple's ctid (the "junk" column UPDATE and DELETE use).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from catalog import pg_type as t
from parser import parse_expr as pe
from parser.parse_expr import ParseState, RangeTblEntry
from parser.primnodes import Aggref, Const, Expr, Var, children, contains_aggregate, walk
from utils.adt import datatypes as dt
from utils.elog import PgError

LOCK_ACCESS_SHARE = 1
LOCK_ROW_EXCLUSIVE = 3


@dataclass(eq=False)
class TargetEntry:
    expr: Expr
    name: str
    resjunk: bool = False


@dataclass(eq=False)
class SortClause:
    expr: Expr
    descending: bool = False
    nulls_first: bool = False


@dataclass(eq=False)
class FromItem:
    """One element of the join tree: a table, a subquery, or a join of two items."""

    kind: str                          # "table", "function", "lateral", "join"
    rte: RangeTblEntry | None = None
    left: FromItem | None = None
    right: FromItem | None = None
    jointype: str = "inner"            # inner, left, right, full
    quals: list[Expr] = field(default_factory=list)
    lateral_exprs: list[Expr] = field(default_factory=list)  # kind "lateral"
    function: Any = None               # kind "function": () -> iterable of rows
    width: int = 0


@dataclass(eq=False)
class Query:
    command: str                        # select, insert, update, delete
    ps: ParseState
    from_items: list[FromItem] = field(default_factory=list)
    quals: list[Expr] = field(default_factory=list)
    targets: list[TargetEntry] = field(default_factory=list)
    group_by: list[Expr] = field(default_factory=list)
    having: Expr | None = None
    aggs: list[Aggref] = field(default_factory=list)
    sort: list[SortClause] = field(default_factory=list)
    limit: Expr | None = None
    offset: Expr | None = None
    distinct: bool = False
    row_width: int = 0
    # INSERT / UPDATE / DELETE
    result_rte: RangeTblEntry | None = None
    insert_columns: list[int] = field(default_factory=list)   # 0-based table columns
    insert_rows: list[list[Expr | None]] = field(default_factory=list)  # None = DEFAULT
    insert_select: Query | None = None
    update_set: list[tuple[int, Expr | None]] = field(default_factory=list)
    returning: list[TargetEntry] = field(default_factory=list)
    relations: list[tuple[Any, int]] = field(default_factory=list)  # (Relation, lockmode)

    @property
    def has_aggs(self) -> bool:
        return bool(self.aggs) or bool(self.group_by)


# =============================================================================================
# Relations
# =============================================================================================

def _open_relation(ps: ParseState, rv: dict[str, Any], lockmode: int) -> Any:
    """parserOpenTable: the relation a RangeVar names, locked, or 42P01."""
    from utils import relcache

    schema = rv.get("schemaname")
    name = rv["relname"]
    if rv.get("catalogname"):
        raise ps.error("0A000", "cross-database references are not implemented: "
                       f"{rv['catalogname']}.{schema}.{name}", rv.get("location"))
    rel = relcache.relation_open_by_name(name, schema, lockmode)
    if rel is None:
        shown = f"{schema}.{name}" if schema else name
        raise ps.error("42P01", f'relation "{shown}" does not exist', rv.get("location"))
    return rel


def _system_view(rv: dict[str, Any]) -> Any:
    """A system view computed by the server (pg_stat_activity, pg_settings, ...) that
    a RangeVar names, if any — catalog/system_views.py."""
    from catalog import system_views

    return system_views.lookup(rv.get("schemaname"), rv["relname"])


def _table_rte(ps: ParseState, rel: Any, alias: str, colaliases: list[str] | None,
               offset: int, rtindex: int) -> RangeTblEntry:
    attrs = [a for a in rel.desc.attrs if not a.attisdropped]
    names = [a.attname for a in attrs]
    if colaliases:
        if len(colaliases) > len(names):
            raise ps.error("42P10", f'table "{alias}" has {len(names)} columns available but '
                                    f"{len(colaliases)} columns specified")
        names = colaliases + names[len(colaliases):]
    # The hidden ctid column: a name no SQL identifier can collide with.
    return RangeTblEntry(alias, names + ["\0ctid"], [a.atttypid for a in attrs] + [t.TIDOID],
                         [a.atttypmod for a in attrs] + [-1], offset=offset, rtindex=rtindex,
                         relation=rel, attnums=[a.attnum for a in attrs] + [0])


def _alias(rv: dict[str, Any]) -> tuple[str, list[str] | None]:
    alias = rv.get("alias")
    if alias:
        cols = [c["String"]["sval"] for c in alias.get("colnames", [])] or None
        return alias["aliasname"], cols
    return rv["relname"], None


def _transform_from_item(q: Query, ps: ParseState, node: dict[str, Any],
                         lockmode: int) -> FromItem:
    (kind, body), = node.items()
    offset = ps.row_width()
    rtindex = len(ps.namespace) + 1
    if kind == "RangeVar":
        view = _system_view(body)
        if view is not None:
            alias, cols = _alias(body)
            names = [c[0] for c in view.columns]
            if cols:
                names = cols + names[len(cols):]
            rte = RangeTblEntry(alias, names, [c[1] for c in view.columns],
                                [-1] * len(names), offset=offset, rtindex=rtindex)
            ps.namespace.append(rte)
            return FromItem("function", rte=rte, function=view.rows, width=len(names))
        rel = _open_relation(ps, body, lockmode)
        q.relations.append((rel, lockmode))
        alias, cols = _alias(body)
        if any(r.alias == alias for r in ps.namespace):
            raise ps.error("42712", f'table name "{alias}" specified more than once',
                           body.get("location"))
        rte = _table_rte(ps, rel, alias, cols, offset, rtindex)
        ps.namespace.append(rte)
        return FromItem("table", rte=rte, width=len(rte.colnames))
    if kind == "JoinExpr":
        left = _transform_from_item(q, ps, body["larg"], lockmode)
        right = _transform_from_item(q, ps, body["rarg"], lockmode)
        jointype = {"JOIN_INNER": "inner", "JOIN_LEFT": "left", "JOIN_RIGHT": "right",
                    "JOIN_FULL": "full"}.get(body.get("jointype", "JOIN_INNER"))
        if jointype is None or jointype in ("right", "full"):
            raise ps.error("0A000", f"{body.get('jointype')} joins are not supported")
        if body.get("usingClause") or body.get("isNatural"):
            raise ps.error("0A000", "JOIN USING and NATURAL JOIN are not supported")
        quals: list[Expr] = []
        if "quals" in body:
            outer_kind, ps.expr_kind = ps.expr_kind, "JOIN conditions"
            try:
                cond = pe.coerce_to_boolean(ps, pe.transform_expr(ps, body["quals"]),
                                            "JOIN/ON")
            finally:
                ps.expr_kind = outer_kind
            quals = _conjuncts(cond)
        return FromItem("join", left=left, right=right, jointype=jointype, quals=quals,
                        width=left.width + right.width)
    if kind == "RangeSubselect":
        sub = body["subquery"]["SelectStmt"]
        alias = body.get("alias") or {}
        if not body.get("lateral") or sub.get("fromClause") or "targetList" not in sub:
            raise ps.error("0A000", "subqueries in FROM are supported only as LATERAL "
                                    "(SELECT expressions) without FROM")
        exprs, names = [], []
        outer_kind, ps.expr_kind = ps.expr_kind, "FROM"
        try:
            for target in sub["targetList"]:
                rt = target["ResTarget"]
                e = pe.transform_expr(ps, rt["val"])
                if e.type == t.UNKNOWNOID:
                    e = pe.coerce_or_fail(ps, e, t.TEXTOID)
                exprs.append(e)
                names.append(rt.get("name") or pe.figure_colname(rt["val"]))
        finally:
            ps.expr_kind = outer_kind
        cols = [c["String"]["sval"] for c in alias.get("colnames", [])]
        names = cols + names[len(cols):]
        rte = RangeTblEntry(alias.get("aliasname", "unnamed_subquery"), names,
                            [e.type for e in exprs], [e.typmod for e in exprs],
                            offset=offset, rtindex=rtindex)
        ps.namespace.append(rte)
        return FromItem("lateral", rte=rte, lateral_exprs=exprs, width=len(names))
    raise ps.error("0A000", f"{kind} in FROM is not supported", body.get("location"))


def _conjuncts(e: Expr) -> list[Expr]:
    from parser.primnodes import BoolExpr

    if isinstance(e, BoolExpr) and e.op == "and":
        out: list[Expr] = []
        for a in e.args:
            out += _conjuncts(a)
        return out
    return [e]


# =============================================================================================
# SELECT
# =============================================================================================

def transform_select(ps: ParseState, body: dict[str, Any]) -> Query:
    if body.get("op", "SETOP_NONE") != "SETOP_NONE":
        raise ps.error("0A000", "UNION, INTERSECT and EXCEPT are not supported")
    for key, what in (("withClause", "WITH"), ("windowClause", "WINDOW"),
                      ("lockingClause", "FOR UPDATE/SHARE"), ("intoClause", "SELECT INTO")):
        if key in body:
            raise ps.error("0A000", f"{what} is not supported")
    if "valuesLists" in body:
        return _transform_values_select(ps, body)
    q = Query("select", ps)
    for item in body.get("fromClause", []):
        fi = _transform_from_item(q, ps, item, LOCK_ACCESS_SHARE)
        if q.from_items and fi.kind == "lateral":
            left = q.from_items.pop()
            fi = FromItem("join", left=left, right=fi, jointype="inner",
                          width=left.width + fi.width)
        elif q.from_items:
            left = q.from_items.pop()
            fi = FromItem("join", left=left, right=fi, jointype="inner",
                          width=left.width + fi.width)
        q.from_items.append(fi)
    q.row_width = ps.row_width()
    if "whereClause" in body:
        q.quals = _where(ps, body["whereClause"])
    q.targets = _target_list(ps, body.get("targetList", []))
    q.group_by = _group_by(ps, q, body.get("groupClause", []))
    if "havingClause" in body:
        ps.expr_kind = "SELECT"
        q.having = pe.coerce_to_boolean(ps, pe.transform_expr(ps, body["havingClause"]),
                                        "HAVING")
    q.sort = _order_by(ps, q, body.get("sortClause", []))
    if body.get("distinctClause") is not None:
        if body["distinctClause"] != [{}] and body["distinctClause"]:
            if any(d for d in body["distinctClause"]):
                raise ps.error("0A000", "SELECT DISTINCT ON is not supported")
        q.distinct = True
    q.limit, q.offset = _limit(ps, body)
    q.aggs = list(ps.aggs)
    if q.has_aggs:
        _check_grouping(ps, q)
    return q


def _transform_values_select(ps: ParseState, body: dict[str, Any]) -> Query:
    raise ps.error("0A000", "VALUES as a query is not supported")


def _where(ps: ParseState, node: dict[str, Any]) -> list[Expr]:
    outer_kind, ps.expr_kind = ps.expr_kind, "WHERE"
    try:
        cond = pe.coerce_to_boolean(ps, pe.transform_expr(ps, node), "WHERE")
    finally:
        ps.expr_kind = outer_kind
    return _conjuncts(cond)


def _target_list(ps: ParseState, targets: list[dict[str, Any]], kind: str = "SELECT"
                 ) -> list[TargetEntry]:
    """transformTargetList: SELECT's list or RETURNING's (where aggregates are refused
    because ``kind`` is not SELECT)."""
    out: list[TargetEntry] = []
    ps.expr_kind = kind
    for target in targets:
        rt = target["ResTarget"]
        val = rt["val"]
        if "ColumnRef" in val and "A_Star" in val["ColumnRef"]["fields"][-1]:
            out += _expand_star(ps, val["ColumnRef"])
            continue
        e = pe.transform_expr(ps, val)
        if e.type == t.UNKNOWNOID:
            e = pe.coerce_or_fail(ps, e, t.TEXTOID)  # unknown literals come out as text
        out.append(TargetEntry(e, rt.get("name") or pe.figure_colname(val)))
    return out


def _expand_star(ps: ParseState, ref: dict[str, Any]) -> list[TargetEntry]:
    fields = ref["fields"]
    loc = ref.get("location", -1)
    rtes = ps.namespace
    if len(fields) > 1:
        name = fields[-2]["String"]["sval"]
        rtes = [r for r in ps.namespace if r.alias == name]
        if not rtes:
            raise ps.error("42P01", f'missing FROM-clause entry for table "{name}"', loc)
    if not rtes:
        raise ps.error("42601", "SELECT * with no tables specified is not valid", loc)
    out = []
    for rte in rtes:
        for i, name in enumerate(rte.colnames):
            if name.startswith("\0"):
                continue
            out.append(TargetEntry(Var(rte.coltypes[i], index=rte.offset + i, name=name,
                                       rtindex=rte.rtindex, typmod=rte.coltypmods[i],
                                       attnum=rte.attnums[i] if rte.attnums else 0), name))
    return out


def _positional(ps: ParseState, q: Query, node: dict[str, Any], clause: str) -> Expr | None:
    """GROUP BY 1 / ORDER BY 2: a target list entry by position."""
    const = node.get("A_Const")
    if const is None or "ival" not in const:
        return None
    n = const["ival"].get("ival", 0)
    if not 1 <= n <= len(q.targets):
        raise ps.error("42P10", f"{clause} position {n} is not in select list",
                       const.get("location"))
    return q.targets[n - 1].expr


def _by_output_name(q: Query, node: dict[str, Any]) -> Expr | None:
    ref = node.get("ColumnRef")
    if ref is None or len(ref["fields"]) != 1 or "String" not in ref["fields"][0]:
        return None
    name = ref["fields"][0]["String"]["sval"]
    matches = [te for te in q.targets if te.name == name]
    return matches[0].expr if len(matches) >= 1 else None


def _group_by(ps: ParseState, q: Query, nodes: list[dict[str, Any]]) -> list[Expr]:
    out = []
    ps.expr_kind = "GROUP BY"
    for node in nodes:
        e = _positional(ps, q, node, "GROUP BY")
        if e is None:
            try:
                e = pe.transform_expr(ps, node)
            except PgError as err:
                e = _by_output_name(q, node)
                if e is None:
                    raise err from None
        if contains_aggregate(e):
            raise ps.error("42803", "aggregate functions are not allowed in GROUP BY",
                           e.location)
        out.append(e)
    ps.expr_kind = "SELECT"
    return out


def _order_by(ps: ParseState, q: Query, nodes: list[dict[str, Any]]) -> list[SortClause]:
    out = []
    for node in nodes:
        sb = node["SortBy"]
        inner = sb["node"]
        e = _positional(ps, q, inner, "ORDER BY")
        if e is None:
            e = _by_output_name(q, inner) if "ColumnRef" in inner else None
            if e is None:
                e = pe.transform_expr(ps, inner)
        if sb.get("useOp"):
            raise ps.error("0A000", "ORDER BY USING is not supported")
        desc = sb.get("sortby_dir") == "SORTBY_DESC"
        nulls = sb.get("sortby_nulls", "SORTBY_NULLS_DEFAULT")
        nulls_first = desc if nulls == "SORTBY_NULLS_DEFAULT" else nulls == "SORTBY_NULLS_FIRST"
        if e.type == t.UNKNOWNOID:
            e = pe.coerce_or_fail(ps, e, t.TEXTOID)
        out.append(SortClause(e, desc, nulls_first))
    return out


def _limit(ps: ParseState, body: dict[str, Any]) -> tuple[Expr | None, Expr | None]:
    if body.get("limitOption") == "LIMIT_OPTION_WITH_TIES":
        raise ps.error("0A000", "FETCH FIRST ... WITH TIES is not supported")
    out = []
    for key, what in (("limitCount", "LIMIT"), ("limitOffset", "OFFSET")):
        node = body.get(key)
        if node is None:
            out.append(None)
            continue
        ps.expr_kind = what
        e = pe.transform_expr(ps, node)
        if any(isinstance(x, Var) for x in walk(e)):
            raise ps.error("42P10", f"argument of {what} must not contain variables",
                           e.location)
        out.append(pe.coerce_or_fail(ps, e, t.INT8OID))
    ps.expr_kind = "SELECT"
    return out[0], out[1]


def _check_grouping(ps: ParseState, q: Query) -> None:
    """parseCheckAggregates: outside aggregates, only grouped columns may appear."""
    grouped_vars = {(v.index) for g in q.group_by for v in walk(g) if isinstance(v, Var)}

    def check(e: Expr | None) -> None:
        if e is None or isinstance(e, Aggref):
            return
        if any(_same_expr(e, g) for g in q.group_by):
            return
        if isinstance(e, Var):
            if e.index in grouped_vars and any(isinstance(g, Var) and g.index == e.index
                                               for g in q.group_by):
                return
            rte = next((r for r in ps.namespace if r.rtindex == e.rtindex), None)
            shown = f"{rte.alias}.{e.name}" if rte is not None else e.name
            raise ps.error("42803", f'column "{shown}" must appear in the GROUP BY clause '
                                    "or be used in an aggregate function", e.location)
        for c in children(e):
            check(c)

    for te in q.targets:
        check(te.expr)
    check(q.having)
    for s in q.sort:
        check(s.expr)


def _same_expr(a: Expr, b: Expr) -> bool:
    if a is b:
        return True
    if isinstance(a, Var) and isinstance(b, Var):
        return a.index == b.index
    if isinstance(a, Const) and isinstance(b, Const):
        return a.type == b.type and a.value == b.value
    return False


# =============================================================================================
# INSERT / UPDATE / DELETE
# =============================================================================================

def _target_relation(q: Query, ps: ParseState, rv: dict[str, Any]) -> RangeTblEntry:
    rel = _open_relation(ps, rv, LOCK_ROW_EXCLUSIVE)
    if rel.relkind != "r":
        raise ps.error("42809", f'cannot change relation "{rel.relname}"', rv.get("location"))
    q.relations.append((rel, LOCK_ROW_EXCLUSIVE))
    alias, _ = _alias(rv)
    rte = _table_rte(ps, rel, alias, None, 0, 1)
    ps.namespace.append(rte)
    q.result_rte = rte
    q.row_width = len(rte.colnames)
    return rte


def _column_index(ps: ParseState, rte: RangeTblEntry, name: str, loc: int | None) -> int:
    try:
        i = rte.colnames.index(name)
    except ValueError:
        raise ps.error("42703", f'column "{name}" of relation "{rte.relation.relname}" does '
                                "not exist", loc) from None
    return i


def assignment_expr(ps: ParseState, e: Expr, rte: RangeTblEntry, col: int) -> Expr:
    """transformAssignedExpr: coerce to the column's type and typmod, or 42804."""
    target, typmod = rte.coltypes[col], rte.coltypmods[col]
    out = pe.coerce_to_target_type(ps, e, target, typmod, "assignment")
    if out is None:
        raise ps.error("42804", f'column "{rte.colnames[col]}" is of type '
                                f"{t.format_type(target, typmod)} but expression is of type "
                                f"{dt.type_name(e.type)}", e.location,
                       hint="You will need to rewrite or cast the expression.")
    return out


def transform_insert(ps: ParseState, body: dict[str, Any]) -> Query:
    q = Query("insert", ps)
    if body.get("onConflictClause"):
        raise ps.error("0A000", "INSERT ... ON CONFLICT is not supported")
    if body.get("withClause"):
        raise ps.error("0A000", "WITH is not supported")
    rte = _target_relation(q, ps, body["relation"])
    ncols = len(rte.colnames) - 1
    explicit_cols = bool(body.get("cols"))
    if explicit_cols:
        cols = []
        for c in body["cols"]:
            rt = c["ResTarget"]
            if rt.get("indirection"):
                raise ps.error("0A000", "INSERT into subfields or array elements is not "
                                        "supported", rt.get("location"))
            i = _column_index(ps, rte, rt["name"], rt.get("location"))
            if i in cols:
                raise ps.error("42701", f'column "{rt["name"]}" specified more than once',
                               rt.get("location"))
            cols.append(i)
    else:
        cols = list(range(ncols))
    q.insert_columns = cols
    select = body.get("selectStmt")
    # The target table's columns are not visible to the VALUES expressions.
    ps.namespace = []
    if select is None:  # DEFAULT VALUES
        q.insert_rows = [[]]
        q.insert_columns = []
    else:
        sel = select["SelectStmt"]
        if "valuesLists" in sel:
            rows = []
            lists = [v["List"]["items"] for v in sel["valuesLists"]]
            if any(len(items) != len(lists[0]) for items in lists):
                bad = next(items for items in lists if len(items) != len(lists[0]))
                raise ps.error("42601", "VALUES lists must all be the same length",
                               _location(bad[0]) if bad else None)
            if not explicit_cols:
                # Without a column list, the leading columns take the values.
                if len(lists[0]) > ncols:
                    raise ps.error("42601", "INSERT has more expressions than target columns",
                                   _location(lists[0][ncols]))
                cols = cols[:len(lists[0])]
                q.insert_columns = cols
            for items in lists:
                if len(items) > len(cols):
                    raise ps.error("42601", "INSERT has more expressions than target columns",
                                   _location(items[len(cols)]))
                if len(items) < len(cols):
                    raise ps.error("42601", "INSERT has more target columns than expressions",
                                   _location(body["cols"][len(items)]) if body.get("cols")
                                   else None)
                row: list[Expr | None] = []
                for item, col in zip(items, cols, strict=True):
                    if "SetToDefault" in item:
                        row.append(None)
                        continue
                    row.append(assignment_expr(ps, pe.transform_expr(ps, item), rte, col))
                rows.append(row)
            q.insert_rows = rows
        else:
            sub_ps = ParseState(ps.src, ps.param_types)
            sub = transform_select(sub_ps, sel)
            if not explicit_cols and len(sub.targets) <= ncols:
                cols = cols[:len(sub.targets)]
                q.insert_columns = cols
            if len(sub.targets) > len(cols):
                raise ps.error("42601", "INSERT has more expressions than target columns")
            if len(sub.targets) < len(cols):
                raise ps.error("42601", "INSERT has more target columns than expressions")
            for te, col in zip(sub.targets, cols, strict=True):
                te.expr = assignment_expr(ps, te.expr, rte, col)
            q.insert_select = sub
            q.relations += sub.relations
    ps.namespace = [rte]
    q.returning = _returning(ps, body.get("returningList", []))
    return q


def _location(node: dict[str, Any]) -> int | None:
    (_, body), = node.items()
    return body.get("location") if isinstance(body, dict) else None


def _returning(ps: ParseState, nodes: list[dict[str, Any]]) -> list[TargetEntry]:
    return _target_list(ps, nodes, "RETURNING") if nodes else []


def transform_update(ps: ParseState, body: dict[str, Any]) -> Query:
    q = Query("update", ps)
    if body.get("fromClause"):
        raise ps.error("0A000", "UPDATE ... FROM is not supported")
    if body.get("withClause"):
        raise ps.error("0A000", "WITH is not supported")
    rte = _target_relation(q, ps, body["relation"])
    q.from_items = [FromItem("table", rte=rte, width=len(rte.colnames))]
    ps.expr_kind = "UPDATE"
    seen: set[int] = set()
    for target in body["targetList"]:
        rt = target["ResTarget"]
        if rt.get("indirection"):
            raise ps.error("0A000", "UPDATE of subfields or array elements is not supported",
                           rt.get("location"))
        i = _column_index(ps, rte, rt["name"], rt.get("location"))
        if i in seen:
            raise ps.error("42601", f'multiple assignments to same column "{rt["name"]}"',
                           rt.get("location"))
        seen.add(i)
        val = rt["val"]
        if "MultiAssignRef" in val:
            raise ps.error("0A000", "multiple-column UPDATE is not supported",
                           rt.get("location"))
        if "SetToDefault" in val:
            q.update_set.append((i, None))
            continue
        e = pe.transform_expr(ps, val)
        if contains_aggregate(e):
            raise ps.error("42803", "aggregate functions are not allowed in UPDATE",
                           e.location)
        q.update_set.append((i, assignment_expr(ps, e, rte, i)))
    if "whereClause" in body:
        q.quals = _where(ps, body["whereClause"])
    q.returning = _returning(ps, body.get("returningList", []))
    return q


def transform_delete(ps: ParseState, body: dict[str, Any]) -> Query:
    q = Query("delete", ps)
    if body.get("usingClause"):
        raise ps.error("0A000", "DELETE ... USING is not supported")
    if body.get("withClause"):
        raise ps.error("0A000", "WITH is not supported")
    rte = _target_relation(q, ps, body["relation"])
    q.from_items = [FromItem("table", rte=rte, width=len(rte.colnames))]
    if "whereClause" in body:
        q.quals = _where(ps, body["whereClause"])
    q.returning = _returning(ps, body.get("returningList", []))
    return q
