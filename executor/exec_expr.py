"""Expression evaluation — mirrors src/backend/executor/execExpr.c and
execExprInterp.c, compiled differently: each typed expression tree becomes one
Python closure ``f(row, params) -> value`` at plan time, so running a plan walks
no tree and looks nothing up.

SQL's three-valued logic: None is NULL; AND/OR follow PostgreSQL (FALSE AND
NULL is FALSE, TRUE OR NULL is TRUE); strict functions return NULL for any NULL
argument without being called.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

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

Row = Sequence[Any]
Compiled = Callable[[Row, Sequence[Any]], Any]


def compile_expr(e: Expr) -> Compiled:
    """The closure evaluating ``e`` against an input row and the parameters."""
    if isinstance(e, Const):
        v = e.value
        return lambda row, p: v
    if isinstance(e, Var):
        i = e.index
        return lambda row, p: row[i]
    if isinstance(e, Param):
        n = e.number
        return lambda row, p: p[n]
    if isinstance(e, FuncExpr):
        return _compile_func(e)
    if isinstance(e, BoolExpr):
        return _compile_bool(e)
    if isinstance(e, NullTest):
        arg = compile_expr(e.arg)  # type: ignore[arg-type]
        if e.is_null:
            return lambda row, p: arg(row, p) is None
        return lambda row, p: arg(row, p) is not None
    if isinstance(e, BooleanTest):
        return _compile_boolean_test(e)
    if isinstance(e, InList):
        return _compile_in(e)
    if isinstance(e, CaseExpr):
        return _compile_case(e)
    if isinstance(e, CoalesceExpr):
        return _compile_coalesce(e)
    if isinstance(e, ArrayExpr):
        elems = [compile_expr(x) for x in e.elements]
        return lambda row, p: [f(row, p) for f in elems]
    if isinstance(e, Aggref):
        raise RuntimeError("Aggref outside an aggregation node")
    raise TypeError(f"cannot compile {type(e).__name__}")


def _compile_func(e: FuncExpr) -> Compiled:
    impl = e.impl
    assert impl is not None
    args = [compile_expr(a) for a in e.args]
    strict = e.strict
    n = len(args)
    if n == 0:
        return lambda row, p: impl()
    if n == 1:
        a0 = args[0]
        if strict:
            def f1(row: Row, p: Sequence[Any]) -> Any:
                v = a0(row, p)
                return None if v is None else impl(v)
            return f1
        return lambda row, p: impl(a0(row, p))
    if n == 2:
        a0, a1 = args
        if strict:
            def f2(row: Row, p: Sequence[Any]) -> Any:
                x = a0(row, p)
                if x is None:
                    return None
                y = a1(row, p)
                return None if y is None else impl(x, y)
            return f2
        return lambda row, p: impl(a0(row, p), a1(row, p))

    def fn(row: Row, p: Sequence[Any]) -> Any:
        values = [a(row, p) for a in args]
        if strict and None in values:
            return None
        return impl(*values)
    return fn


def _compile_bool(e: BoolExpr) -> Compiled:
    args = [compile_expr(a) for a in e.args]
    if e.op == "not":
        a0 = args[0]

        def not_(row: Row, p: Sequence[Any]) -> Any:
            v = a0(row, p)
            return None if v is None else not v
        return not_
    if e.op == "and":
        def and_(row: Row, p: Sequence[Any]) -> Any:
            saw_null = False
            for a in args:
                v = a(row, p)
                if v is None:
                    saw_null = True
                elif not v:
                    return False
            return None if saw_null else True
        return and_

    def or_(row: Row, p: Sequence[Any]) -> Any:
        saw_null = False
        for a in args:
            v = a(row, p)
            if v is None:
                saw_null = True
            elif v:
                return True
        return None if saw_null else False
    return or_


_BOOLEAN_TESTS = {
    "IS_TRUE": lambda v: v is True or (v is not None and bool(v)),
    "IS_NOT_TRUE": lambda v: not (v is not None and bool(v)),
    "IS_FALSE": lambda v: v is not None and not v,
    "IS_NOT_FALSE": lambda v: v is None or bool(v),
    "IS_UNKNOWN": lambda v: v is None,
    "IS_NOT_UNKNOWN": lambda v: v is not None,
}


def _compile_boolean_test(e: BooleanTest) -> Compiled:
    arg = compile_expr(e.arg)  # type: ignore[arg-type]
    test = _BOOLEAN_TESTS[e.test]
    return lambda row, p: test(arg(row, p))


def _compile_in(e: InList) -> Compiled:
    arg = compile_expr(e.arg)  # type: ignore[arg-type]
    eq = e.eq
    negated = e.negated
    if all(isinstance(i, Const) for i in e.items):
        values = [i.value for i in e.items]  # type: ignore[attr-defined]
        has_null = None in values
        candidates = [v for v in values if v is not None]

        def in_consts(row: Row, p: Sequence[Any]) -> Any:
            x = arg(row, p)
            if x is None:
                return None
            for v in candidates:
                if eq(x, v):  # type: ignore[misc]
                    return not negated
            return None if has_null else negated
        return in_consts
    items = [compile_expr(i) for i in e.items]

    def in_exprs(row: Row, p: Sequence[Any]) -> Any:
        x = arg(row, p)
        if x is None:
            return None
        saw_null = False
        for f in items:
            v = f(row, p)
            if v is None:
                saw_null = True
            elif eq(x, v):  # type: ignore[misc]
                return not negated
        return None if saw_null else negated
    return in_exprs


def _compile_case(e: CaseExpr) -> Compiled:
    whens = [(compile_expr(c), compile_expr(r)) for c, r in e.whens]
    default = compile_expr(e.default) if e.default is not None else (lambda row, p: None)

    def case(row: Row, p: Sequence[Any]) -> Any:
        for cond, res in whens:
            if cond(row, p):
                return res(row, p)
        return default(row, p)
    return case


def _compile_coalesce(e: CoalesceExpr) -> Compiled:
    args = [compile_expr(a) for a in e.args]
    if e.nullif:
        value, equal = args

        def nullif(row: Row, p: Sequence[Any]) -> Any:
            v = value(row, p)
            return None if v is not None and equal(row, p) else v
        return nullif

    def coalesce(row: Row, p: Sequence[Any]) -> Any:
        for a in args:
            v = a(row, p)
            if v is not None:
                return v
        return None
    return coalesce


def compile_qual(quals: list[Expr]) -> Callable[[Row, Sequence[Any]], bool] | None:
    """ExecQual: a row passes only if every condition is true (NULL fails)."""
    if not quals:
        return None
    fs = [compile_expr(q) for q in quals]
    if len(fs) == 1:
        f0 = fs[0]

        def qual1(row: Row, p: Sequence[Any]) -> bool:
            v = f0(row, p)
            return v is not None and bool(v)
        return qual1

    def qual(row: Row, p: Sequence[Any]) -> bool:
        for f in fs:
            v = f(row, p)
            if v is None or not v:
                return False
        return True
    return qual
