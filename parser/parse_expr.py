"""Expression analysis — mirrors src/backend/parser/parse_expr.c (transformExpr),
parse_coerce.c (coerce_to_target_type, coerce_to_boolean), parse_oper.c,
parse_func.c (ParseFuncOrColumn), parse_type.c (typenameTypeIdAndMod) and the
ParseState of parse_node.h.

Input is pglast's JSON form of PostgreSQL 15's raw parse tree; output is the
typed nodes of parser/primnodes.py. Errors carry PostgreSQL's SQLSTATE, message
and cursor position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from catalog import pg_type as t
from parser.primnodes import (
    Aggref,
    ArrayExpr,
    BooleanTest,
    BoolExpr,
    CaseExpr,
    CoalesceExpr,
    Const,
    Expr,
    FuncExpr,
    InList,
    NullTest,
    Param,
    Var,
)
from utils.adt import datatypes as dt
from utils.adt import functions as fns
from utils.adt import operators as ops
from utils.elog import PgError

INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1
_NEG_INT = re.compile(rb"-\s*(\d+)")

# Type names as the grammar produces them (after mapping INTEGER to pg_catalog.int4 ...;
# CHAR/CHARACTER become pg_catalog.bpchar, so a bare "char" is the one-byte type).
TYPE_BY_NAME = {
    "bool": t.BOOLOID, "boolean": t.BOOLOID, "int2": t.INT2OID, "smallint": t.INT2OID,
    "int4": t.INT4OID, "integer": t.INT4OID, "int": t.INT4OID, "int8": t.INT8OID,
    "bigint": t.INT8OID, "text": t.TEXTOID, "varchar": t.VARCHAROID, "bpchar": t.BPCHAROID,
    "character": t.BPCHAROID, "numeric": t.NUMERICOID,
    "decimal": t.NUMERICOID, "float4": t.FLOAT4OID, "real": t.FLOAT4OID,
    "float8": t.FLOAT8OID, "name": t.NAMEOID, "oid": t.OIDOID, "unknown": t.UNKNOWNOID,
    "xid8": t.XID8OID, "pg_lsn": t.PG_LSNOID, "timestamp": t.TIMESTAMPOID,
    "timestamptz": t.TIMESTAMPTZOID, "regclass": t.REGCLASSOID, "regtype": t.REGTYPEOID,
    "regnamespace": t.REGNAMESPACEOID, "xid": t.XIDOID, "cid": t.CIDOID, "tid": t.TIDOID,
    "bytea": t.BYTEAOID, "char": t.CHAROID, "int2vector": t.INT2VECTOROID,
    "oidvector": t.OIDVECTOROID, "void": t.VOIDOID,
}
AGGREGATES = frozenset({"count", "sum", "min", "max", "avg", "bool_and", "bool_or", "every",
                        "array_agg", "string_agg"})


@dataclass(eq=False)
class RangeTblEntry:
    """One FROM item as expressions see it: its name and columns, and where its
    columns sit in the executor's row."""

    alias: str
    colnames: list[str]
    coltypes: list[int]
    coltypmods: list[int]
    offset: int = 0                  # index of its first column in the row
    rtindex: int = 1
    relation: Any = None             # utils.rel.Relation for a table
    attnums: list[int] | None = None  # table attnum of each visible column
    lateral_only: bool = False


@dataclass(eq=False)
class ParseState:
    src: bytes
    param_types: list[int] | None = None   # None: $n is an error (simple query)
    namespace: list[RangeTblEntry] = field(default_factory=list)
    aggs: list[Aggref] = field(default_factory=list)
    expr_kind: str = "SELECT"              # for "not allowed in WHERE" messages
    parent: ParseState | None = None       # outer query level (LATERAL)

    def position(self, location: int | None) -> int | None:
        if location is None or location < 0:
            return None
        return len(self.src[:location].decode(errors="ignore")) + 1

    def error(self, sqlstate: str, message: str, location: int | None = None,
              **kw: Any) -> PgError:
        return PgError(sqlstate, message, position=self.position(location), **kw)

    def row_width(self) -> int:
        return sum(len(r.colnames) for r in self.namespace)


# =============================================================================================
# Types
# =============================================================================================

def type_from_typename(node: dict[str, Any], ps: ParseState | None = None
                       ) -> tuple[int, int]:
    """typenameTypeIdAndMod: (type oid, typmod) of a TypeName node."""
    names = [n["String"]["sval"] for n in node["names"]]
    location = node.get("location")
    name = names[-1]
    if len(names) > 1 and names[0] not in ("pg_catalog",):
        raise _err(ps, "42704", f'type "{".".join(names)}" does not exist', location)
    oid = TYPE_BY_NAME.get(name)
    if oid is None and name in t.TYPES_BY_NAME:
        oid = t.TYPES_BY_NAME[name].oid
    if oid is None:
        raise _err(ps, "42704", f'type "{".".join(names)}" does not exist', location)
    typmod = -1
    mods = node.get("typmods") or []
    if mods:
        if oid not in (t.VARCHAROID, t.BPCHAROID, t.NUMERICOID, t.TIMESTAMPOID,
                       t.TIMESTAMPTZOID):
            raise _err(ps, "42601", f"type modifier is not allowed for type \"{name}\"",
                       location)
        if oid in (t.VARCHAROID, t.BPCHAROID):
            n = mods[0].get("A_Const", {}).get("ival", {}).get("ival")
            if n is None or n < 1:
                raise _err(ps, "22023", f"length for type {name} must be at least 1",
                           location)
            if n > 10485760:
                raise _err(ps, "22023", f"length for type {name} cannot exceed 10485760",
                           location)
            typmod = n + 4
    elif oid == t.BPCHAROID and name in ("bpchar",) and node.get("typemod", -1) == -1 \
            and names[0] == "pg_catalog" and len(names) == 2:
        typmod = 5  # CHARACTER without a length is char(1)
    if node.get("arrayBounds"):
        arr = t.TYPES[oid].typarray if oid in t.TYPES else 0
        if not arr or arr not in t.TYPES:
            raise _err(ps, "0A000", f"arrays of type {dt.type_name(oid)} are not supported",
                       location)
        return arr, -1
    return oid, typmod


def _err(ps: ParseState | None, code: str, msg: str, location: int | None) -> PgError:
    if ps is None:
        return PgError(code, msg)
    return ps.error(code, msg, location)


# =============================================================================================
# Coercion
# =============================================================================================

def coerce_to_target_type(ps: ParseState, expr: Expr, target: int, typmod: int = -1,
                          context: str = "implicit") -> Expr | None:
    """The expression converted to ``target`` (None when no such cast in ``context``:
    implicit, assignment or explicit)."""
    source = expr.type
    if source == target and (typmod < 0 or typmod == expr.typmod):
        return expr
    if isinstance(expr, Param) and source == t.UNKNOWNOID and ps.param_types is not None:
        ps.param_types[expr.number] = target  # an unknown parameter takes the type
        expr.type = target
        if typmod < 0:
            return expr
        source = target
    if target in (t.ANYELEMENTOID, t.ANYARRAYOID):
        return expr
    allowed = {"implicit": dt.can_coerce_implicitly, "assignment": dt.can_coerce_assignment,
               "explicit": lambda s, d: True}[context]
    if not allowed(source, target):
        return None
    try:
        fn = dt.cast_function(source, target, typmod=typmod, explicit=context == "explicit")
    except PgError:
        if context == "explicit":
            raise
        return None
    if fn is None:
        return _retype(expr, target, typmod)
    if isinstance(expr, Const):
        # Folded now, like eval_const_expressions; a bad literal fails when it runs.
        if expr.value is None:
            return Const(target, None, typmod=typmod, location=expr.location)
        try:
            return Const(target, fn(expr.value), typmod=typmod, location=expr.location)
        except PgError as err:
            if err.position is None and expr.location >= 0 and source == t.UNKNOWNOID:
                err.position = ps.position(expr.location)
            raise
    return FuncExpr(target, name=f"cast to {dt.type_name(target)}", impl=fn, args=[expr],
                    typmod=typmod, location=expr.location)


def _retype(expr: Expr, target: int, typmod: int) -> Expr:
    if isinstance(expr, Const):
        return Const(target, expr.value, typmod=typmod, location=expr.location)
    # A binary-compatible relabel: same datum, new type (RelabelType).
    return FuncExpr(target, name="relabel", impl=_identity, args=[expr], typmod=typmod,
                    location=expr.location)


def _identity(v: Any) -> Any:
    return v


def coerce_to_boolean(ps: ParseState, expr: Expr, construct: str) -> Expr:
    if expr.type == t.BOOLOID:
        return expr
    out = coerce_to_target_type(ps, expr, t.BOOLOID)
    if out is None:
        raise ps.error("42804", f"argument of {construct} must be type boolean, not type "
                                f"{dt.type_name(expr.type)}", expr.location)
    return out


def coerce_or_fail(ps: ParseState, expr: Expr, target: int, typmod: int = -1,
                   context: str = "implicit") -> Expr:
    out = coerce_to_target_type(ps, expr, target, typmod, context)
    if out is None:
        raise ps.error("42846", f"cannot cast type {dt.type_name(expr.type)} to "
                                f"{dt.type_name(target)}", expr.location)
    return out


def select_common_type(ps: ParseState, exprs: list[Expr], context: str) -> int:
    """select_common_type: numeric promotion, else the first known type."""
    known = [e.type for e in exprs if e.type != t.UNKNOWNOID]
    if not known:
        return t.TEXTOID
    common = known[0]
    for e in exprs:
        ty = e.type
        if ty == t.UNKNOWNOID or ty == common:
            continue
        if ty in dt.NUMERIC_RANK and common in dt.NUMERIC_RANK:
            common = ops.common_numeric_type(common, ty)
        elif dt.can_coerce_implicitly(ty, common):
            continue
        elif dt.can_coerce_implicitly(common, ty):
            common = ty
        else:
            raise ps.error("42804", f"{context} types {dt.type_name(common)} and "
                                    f"{dt.type_name(ty)} cannot be matched", e.location)
    return common


# =============================================================================================
# transformExpr
# =============================================================================================

def transform_expr(ps: ParseState, node: dict[str, Any]) -> Expr:
    (kind, body), = node.items()
    fn = _TRANSFORMS.get(kind)
    if fn is None:
        location = body.get("location") if isinstance(body, dict) else None
        what = {"SubLink": "subqueries", "A_Indirection": "subscripts",
                "RowExpr": "row constructors", "GroupingFunc": "GROUPING",
                "CollateClause": "COLLATE", "XmlExpr": "XML expressions",
                "MinMaxExpr": "GREATEST/LEAST"}.get(kind, kind)
        raise ps.error("0A000", f"{what} are not supported", location)
    return fn(ps, body)


def _const(ps: ParseState, body: dict[str, Any]) -> Expr:
    loc = body.get("location", -1)
    if body.get("isnull"):
        return Const(t.UNKNOWNOID, None, location=loc)
    if "ival" in body:
        v = body["ival"].get("ival")
        if v is None:
            # libpg_query's JSON drops negative integers ("ival": {}): read the source.
            m = _NEG_INT.match(ps.src, loc if loc >= 0 else 0)
            v = -int(m.group(1)) if m else 0
        return Const(t.INT4OID, v, location=loc)
    if "fval" in body:
        text = body["fval"]["fval"]
        if text.lstrip("-").isdigit():
            v = int(text)
            if INT4_MIN <= v <= INT4_MAX:
                return Const(t.INT4OID, v, location=loc)
            if -(2**63) <= v < 2**63:
                return Const(t.INT8OID, v, location=loc)
        return Const(t.NUMERICOID, Decimal(text), location=loc)
    if "sval" in body:
        return Const(t.UNKNOWNOID, body["sval"].get("sval", ""), location=loc)
    if "boolval" in body:
        return Const(t.BOOLOID, bool(body["boolval"].get("boolval")), location=loc)
    if "bsval" in body:
        raise ps.error("0A000", "bit string constants are not supported", loc)
    raise ps.error("0A000", "this constant is not supported", loc)


def _param(ps: ParseState, body: dict[str, Any]) -> Expr:
    n = body["number"]
    loc = body.get("location", -1)
    if ps.param_types is None or n < 1:
        raise ps.error("42P02", f"there is no parameter ${n}", loc)
    while len(ps.param_types) < n:
        ps.param_types.append(0)
    ty = ps.param_types[n - 1] or t.UNKNOWNOID
    return Param(ty, number=n - 1, location=loc)


def _column_ref(ps: ParseState, body: dict[str, Any]) -> Expr:
    fields = body["fields"]
    loc = body.get("location", -1)
    if any("A_Star" in f for f in fields):
        raise ps.error("0A000", "a * is not allowed here", loc)
    names = [f["String"]["sval"] for f in fields]
    level: ParseState | None = ps
    while level is not None:
        var = _resolve_column(level, names, loc, ps)
        if var is not None:
            if level is not ps:
                raise ps.error("0A000", "references to outer query columns are not supported",
                               loc)
            return var
        level = level.parent
    if len(names) == 1:
        raise ps.error("42703", f'column "{names[0]}" does not exist', loc)
    rel = names[-2]
    if not any(r.alias == rel for r in ps.namespace):
        raise ps.error("42P01", f'missing FROM-clause entry for table "{rel}"', loc)
    raise ps.error("42703", f"column {'.'.join(names[-2:])} does not exist", loc)


def _resolve_column(ps: ParseState, names: list[str], loc: int,
                    origin: ParseState) -> Var | None:
    col = names[-1]
    if len(names) > 3:
        raise origin.error("42601", "improper qualified name (too many dotted names): "
                                    + ".".join(names), loc)
    found: Var | None = None
    for rte in ps.namespace:
        if len(names) >= 2 and rte.alias != names[-2]:
            continue
        try:
            i = rte.colnames.index(col)
        except ValueError:
            continue
        if rte.colnames.count(col) > 1 or found is not None:
            raise origin.error("42702", f'column reference "{col}" is ambiguous', loc)
        found = Var(rte.coltypes[i], index=rte.offset + i, name=col, rtindex=rte.rtindex,
                    attnum=rte.attnums[i] if rte.attnums else 0, typmod=rte.coltypmods[i],
                    location=loc)
    return found


def _type_cast(ps: ParseState, body: dict[str, Any]) -> Expr:
    target, typmod = type_from_typename(body["typeName"], ps)
    arg = body["arg"]
    # An array literal cast straight to an array type takes its element type.
    inner = transform_expr(ps, arg)
    try:
        out = coerce_to_target_type(ps, inner, target, typmod, "explicit")
    except PgError as err:
        if err.position is None and err.sqlstate == "42846":
            err.position = ps.position(body.get("location"))
        raise
    if out is None:  # pragma: no cover - explicit casts always exist or raise
        raise ps.error("42846", f"cannot cast type {dt.type_name(inner.type)} to "
                                f"{dt.type_name(target)}", body.get("location"))
    if isinstance(out, (Const, FuncExpr)) and out is not inner:
        out.location = body.get("location", -1) if out.location < 0 else out.location
    return out


def make_op(ps: ParseState, name: str, left: Expr | None, right: Expr,
            location: int) -> Expr:
    """make_op: resolve, coerce the arguments, fold constants."""
    if left is None:
        try:
            op = ops.resolve_unary(name, right.type)
        except PgError as err:
            err.position = ps.position(location)
            raise
        arg = coerce_or_fail(ps, right, op.right)
        return _fold(FuncExpr(op.result, name=name, impl=op.impl, args=[arg],
                              is_operator=True, location=location))
    try:
        op = ops.resolve_binary(name, left.type, right.type)
    except PgError as err:
        err.position = ps.position(location)
        raise
    la = coerce_to_target_type(ps, left, op.left)
    ra = coerce_to_target_type(ps, right, op.right)
    if la is None or ra is None:
        if name == "||":  # anynonarray || text: the other side goes through its output
            la = la or _text_cast(left)
            ra = ra or _text_cast(right)
        else:
            raise ps.error("42883", f"operator does not exist: {dt.type_name(left.type)} "
                                    f"{name} {dt.type_name(right.type)}", location,
                           hint="No operator matches the given name and argument types. "
                                "You might need to add explicit type casts.")
    return _fold(FuncExpr(op.result, name=name, impl=op.impl, args=[la, ra], is_operator=True,
                          location=location))


def _text_cast(e: Expr) -> Expr:
    """anynonarray || text: the argument cast to text (true becomes 'true')."""
    fn = dt.cast_function(e.type, t.TEXTOID, explicit=True) or _identity
    return _fold(FuncExpr(t.TEXTOID, name="text", impl=fn, args=[e], location=e.location))


def _fold(expr: FuncExpr) -> Expr:
    """Evaluate a call of constants now (eval_const_expressions); errors wait for
    execution, so a statement that never evaluates it does not fail."""
    if expr.volatile or not all(isinstance(a, Const) for a in expr.args):
        return expr
    values = [a.value for a in expr.args]  # type: ignore[attr-defined]
    if expr.strict and None in values:
        return Const(expr.type, None, typmod=expr.typmod, location=expr.location)
    try:
        return Const(expr.type, expr.impl(*values), typmod=expr.typmod,  # type: ignore[misc]
                     location=expr.location)
    except PgError:
        return expr


def _op_name(body: dict[str, Any]) -> str:
    names = [n["String"]["sval"] for n in body["name"]]
    return names[-1]


def _a_expr(ps: ParseState, body: dict[str, Any]) -> Expr:
    kind = body["kind"]
    loc = body.get("location", -1)
    name = _op_name(body)
    if kind == "AEXPR_OP":
        left = transform_expr(ps, body["lexpr"]) if "lexpr" in body else None
        right = transform_expr(ps, body["rexpr"])
        return make_op(ps, name, left, right, loc)
    if kind in ("AEXPR_LIKE", "AEXPR_ILIKE"):
        left = transform_expr(ps, body["lexpr"])
        right = transform_expr(ps, body["rexpr"])
        return make_op(ps, name, left, right, loc)
    if kind == "AEXPR_IN":
        return _in_list(ps, body, name != "=")
    if kind in ("AEXPR_BETWEEN", "AEXPR_NOT_BETWEEN"):
        arg = transform_expr(ps, body["lexpr"])
        lo_node, hi_node = body["rexpr"]["List"]["items"]
        lo = make_op(ps, ">=", arg, transform_expr(ps, lo_node), loc)
        hi = make_op(ps, "<=", arg, transform_expr(ps, hi_node), loc)
        both = BoolExpr(t.BOOLOID, op="and", args=[lo, hi], location=loc)
        if kind == "AEXPR_NOT_BETWEEN":
            return BoolExpr(t.BOOLOID, op="not", args=[both], location=loc)
        return both
    if kind == "AEXPR_NULLIF":
        left = transform_expr(ps, body["lexpr"])
        right = transform_expr(ps, body["rexpr"])
        cmp = make_op(ps, "=", left, right, loc)
        return CoalesceExpr(left.type, args=[left, cmp], nullif=True, location=loc)
    if kind in ("AEXPR_DISTINCT", "AEXPR_NOT_DISTINCT"):
        left = transform_expr(ps, body["lexpr"])
        right = transform_expr(ps, body["rexpr"])
        eq = make_op(ps, "=", left, right, loc)
        return FuncExpr(t.BOOLOID, name="IS DISTINCT FROM", impl=_distinct(
            kind == "AEXPR_NOT_DISTINCT"), args=[eq, left, right], strict=False, location=loc)
    raise ps.error("0A000", f"operator form {kind} is not supported", loc)


def _distinct(not_distinct: bool):
    def is_distinct(eq: Any, a: Any, b: Any) -> bool:
        if a is None or b is None:
            result = (a is None) != (b is None)
        else:
            result = not eq
        return not result if not_distinct else result
    return is_distinct


def _in_list(ps: ParseState, body: dict[str, Any], negated: bool) -> Expr:
    loc = body.get("location", -1)
    arg = transform_expr(ps, body["lexpr"])
    rexpr = body["rexpr"]
    if "List" not in rexpr:
        raise ps.error("0A000", "IN (subquery) is not supported", loc)
    items = [transform_expr(ps, n) for n in rexpr["List"]["items"]]
    common = select_common_type(ps, [arg, *items], "IN")
    arg_c = coerce_or_fail(ps, arg, common)
    items_c = [coerce_or_fail(ps, i, common) for i in items]
    op = ops.resolve_binary("=", common, common)
    return InList(t.BOOLOID, arg=arg_c, items=items_c, eq=op.impl, negated=negated,
                  location=loc)


def _bool_expr(ps: ParseState, body: dict[str, Any]) -> Expr:
    op = {"AND_EXPR": "and", "OR_EXPR": "or", "NOT_EXPR": "not"}[body["boolop"]]
    construct = op.upper()
    args = [coerce_to_boolean(ps, transform_expr(ps, a), construct) for a in body["args"]]
    return BoolExpr(t.BOOLOID, op=op, args=args, location=body.get("location", -1))


def _null_test(ps: ParseState, body: dict[str, Any]) -> Expr:
    arg = transform_expr(ps, body["arg"])
    return NullTest(t.BOOLOID, arg=arg, is_null=body["nulltesttype"] == "IS_NULL",
                    location=body.get("location", -1))


def _boolean_test(ps: ParseState, body: dict[str, Any]) -> Expr:
    arg = coerce_to_boolean(ps, transform_expr(ps, body["arg"]), "IS TRUE")
    return BooleanTest(t.BOOLOID, arg=arg, test=body["booltesttype"],
                       location=body.get("location", -1))


def _case(ps: ParseState, body: dict[str, Any]) -> Expr:
    loc = body.get("location", -1)
    test = transform_expr(ps, body["arg"]) if "arg" in body else None
    conds, results = [], []
    for w in body["args"]:
        cw = w["CaseWhen"]
        cond = transform_expr(ps, cw["expr"])
        if test is not None:
            cond = make_op(ps, "=", test, cond, cw.get("location", loc))
        conds.append(coerce_to_boolean(ps, cond, "CASE/WHEN"))
        results.append(transform_expr(ps, cw["result"]))
    default = transform_expr(ps, body["defresult"]) if "defresult" in body else None
    all_results = results + ([default] if default is not None else [])
    rtype = select_common_type(ps, all_results, "CASE")
    results = [coerce_or_fail(ps, r, rtype) for r in results]
    if default is not None:
        default = coerce_or_fail(ps, default, rtype)
    return CaseExpr(rtype, whens=list(zip(conds, results, strict=True)), default=default,
                    location=loc)


def _coalesce(ps: ParseState, body: dict[str, Any]) -> Expr:
    args = [transform_expr(ps, a) for a in body["args"]]
    rtype = select_common_type(ps, args, "COALESCE")
    return CoalesceExpr(rtype, args=[coerce_or_fail(ps, a, rtype) for a in args],
                        location=body.get("location", -1))


def _array(ps: ParseState, body: dict[str, Any]) -> Expr:
    elems = [transform_expr(ps, e) for e in body.get("elements", [])]
    loc = body.get("location", -1)
    if not elems:
        raise ps.error("42P18", "cannot determine type of empty array", loc,
                       hint="Explicitly cast to the desired type, for example ARRAY[]::integer[].")
    etype = select_common_type(ps, elems, "ARRAY")
    arr = t.TYPES[etype].typarray if etype in t.TYPES else 0
    if not arr or arr not in t.TYPES:
        raise ps.error("0A000", f"arrays of type {dt.type_name(etype)} are not supported", loc)
    return ArrayExpr(arr, elements=[coerce_or_fail(ps, e, etype) for e in elems], location=loc)


_SVF = {
    "SVFOP_CURRENT_TIMESTAMP": ("now", t.TIMESTAMPTZOID),
    "SVFOP_CURRENT_TIMESTAMP_N": ("now", t.TIMESTAMPTZOID),
    "SVFOP_LOCALTIMESTAMP": ("localtimestamp", t.TIMESTAMPOID),
    "SVFOP_LOCALTIMESTAMP_N": ("localtimestamp", t.TIMESTAMPOID),
    "SVFOP_CURRENT_USER": ("current_user", t.NAMEOID),
    "SVFOP_SESSION_USER": ("session_user", t.NAMEOID),
    "SVFOP_USER": ("current_user", t.NAMEOID),
    "SVFOP_CURRENT_ROLE": ("current_role", t.NAMEOID),
    "SVFOP_CURRENT_CATALOG": ("current_catalog", t.NAMEOID),
    "SVFOP_CURRENT_SCHEMA": ("current_schema", t.NAMEOID),
}


def _sql_value_function(ps: ParseState, body: dict[str, Any]) -> Expr:
    from utils import session as sess

    op = body["op"]
    loc = body.get("location", -1)
    if op not in _SVF:
        raise ps.error("0A000", f"{op.removeprefix('SVFOP_')} is not supported", loc)
    name, rtype = _SVF[op]
    if name == "now":
        impl: Any = sess.transaction_timestamp
    elif name == "localtimestamp":
        def impl() -> int:
            return dt.timestamptz_to_local(sess.transaction_timestamp())
    elif name == "current_catalog":
        def impl() -> str:
            return sess.tcop_session.database if sess.tcop_session else sess.database
    elif name == "current_schema":
        def impl() -> str | None:
            from catalog import namespace

            schemas = namespace.current_schemas(False)
            return schemas[0] if schemas else None
    else:
        def impl() -> str:
            return sess.tcop_session.user if sess.tcop_session else sess.user
    return FuncExpr(rtype, name=name, impl=impl, args=[], strict=False, volatile=True,
                    location=loc)


def _func_call(ps: ParseState, body: dict[str, Any]) -> Expr:
    names = [n["String"]["sval"] for n in body["funcname"]]
    fname = names[-1]
    loc = body.get("location", -1)
    if len(names) > 2 or (len(names) == 2 and names[0] != "pg_catalog"):
        raise ps.error("42883", f"function {'.'.join(names)}() does not exist", loc)
    for unsupported, what in (("agg_order", "ORDER BY in aggregates"), ("over", "window functions"),
                              ("agg_filter", "FILTER"), ("func_variadic", "VARIADIC"),
                              ("agg_within_group", "WITHIN GROUP")):
        if body.get(unsupported):
            raise ps.error("0A000", f"{what} are not supported", loc)
    if fname in AGGREGATES:
        return _aggregate(ps, body, fname, loc)
    if body.get("agg_star") or body.get("agg_distinct"):
        raise ps.error("42809", f"{'*' if body.get('agg_star') else 'DISTINCT'} specified, "
                                f"but {fname} is not an aggregate function", loc)
    args = [transform_expr(ps, a) for a in body.get("args", [])]
    if fname == "coalesce":
        rtype = select_common_type(ps, args, "COALESCE")
        return CoalesceExpr(rtype, args=[coerce_or_fail(ps, a, rtype) for a in args],
                            location=loc)
    fn = fns.select_function(fname, [a.type for a in args])
    if fn is None:
        err = fns.no_function(fname, [a.type for a in args])
        err.position = ps.position(loc)
        raise err
    coerced = []
    for a, want in zip(args, fn.arg_types, strict=True):
        if want == t.ANYELEMENTOID and a.type == t.UNKNOWNOID:
            a = coerce_or_fail(ps, a, t.TEXTOID)
        coerced.append(coerce_or_fail(ps, a, want))
    impl = fn.impl
    if fn.needs_session:
        from utils import session as sess

        inner = impl

        def impl(*values: Any) -> Any:
            return inner(sess.tcop_session, *values)
    node = FuncExpr(fn.result_type, name=fname, impl=impl, args=coerced, strict=fn.strict,
                    volatile=fn.volatile or fn.needs_session, location=loc)
    return _fold(node) if fn.immutable else node


def _aggregate(ps: ParseState, body: dict[str, Any], fname: str, loc: int) -> Expr:
    from executor import aggregates

    if ps.expr_kind != "SELECT":
        raise ps.error("42803", f"aggregate functions are not allowed in {ps.expr_kind}", loc)
    outer_kind, ps.expr_kind = ps.expr_kind, "aggregate function calls"
    try:
        args = [transform_expr(ps, a) for a in body.get("args", [])]
    except PgError as err:
        if err.sqlstate == "42803":
            err.message = "aggregate function calls cannot be nested"
        raise
    finally:
        ps.expr_kind = outer_kind
    star = bool(body.get("agg_star"))
    spec = aggregates.lookup(fname, [a.type for a in args], star)
    if spec is None:
        err = fns.no_function(fname, [a.type for a in args])
        err.position = ps.position(loc)
        raise err
    args = [coerce_or_fail(ps, a, want) if want not in (t.ANYELEMENTOID,) else a
            for a, want in zip(args, spec.arg_types, strict=True)]
    agg = Aggref(spec.result_type, aggname=fname, args=args, star=star,
                 distinct=bool(body.get("agg_distinct")), aggno=len(ps.aggs), spec=spec,
                 location=loc)
    ps.aggs.append(agg)
    return agg


_TRANSFORMS = {
    "A_Const": _const, "ParamRef": _param, "ColumnRef": _column_ref, "TypeCast": _type_cast,
    "A_Expr": _a_expr, "BoolExpr": _bool_expr, "NullTest": _null_test,
    "BooleanTest": _boolean_test, "CaseExpr": _case, "CoalesceExpr": _coalesce,
    "A_ArrayExpr": _array, "SQLValueFunction": _sql_value_function, "FuncCall": _func_call,
}


def figure_colname(node: dict[str, Any]) -> str:
    """FigureColname: the output column name PostgreSQL gives an expression."""
    return _figure_colname(node)[0]


def _figure_colname(node: dict[str, Any]) -> tuple[str, int]:
    """FigureColnameInternal: (name, strength); a cast's type name (strength 1)
    yields to a column or function name (2) but replaces an inner cast's."""
    (kind, body), = node.items()
    if kind == "ColumnRef":
        last = body["fields"][-1]
        return ("?column?", 0) if "A_Star" in last else (last["String"]["sval"], 2)
    if kind == "FuncCall":
        return body["funcname"][-1]["String"]["sval"], 2
    if kind == "TypeCast":
        name, strength = _figure_colname(body["arg"])
        if strength <= 1:
            return body["typeName"]["names"][-1]["String"]["sval"], 1
        return name, strength
    if kind == "SQLValueFunction":
        return {"SVFOP_CURRENT_TIMESTAMP": "current_timestamp",
                "SVFOP_CURRENT_TIMESTAMP_N": "current_timestamp",
                "SVFOP_LOCALTIMESTAMP": "localtimestamp", "SVFOP_CURRENT_USER": "current_user",
                "SVFOP_SESSION_USER": "session_user", "SVFOP_USER": "current_user",
                "SVFOP_CURRENT_ROLE": "current_role",
                "SVFOP_CURRENT_CATALOG": "current_catalog",
                "SVFOP_CURRENT_SCHEMA": "current_schema"}.get(body["op"], "?column?"), 2
    if kind == "CaseExpr":
        return "case", 1
    if kind == "CoalesceExpr":
        return "coalesce", 2
    if kind == "A_Expr" and body.get("kind") == "AEXPR_NULLIF":
        return "nullif", 2
    if kind == "A_ArrayExpr":
        return "array", 2
    return "?column?", 0
