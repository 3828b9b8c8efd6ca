"""Typed expression nodes — mirrors src/include/nodes/primnodes.h.

Parse analysis produces these; the planner inspects them (to find index
quals); executor/exec_expr.py compiles them into closures. A column reference
is already resolved to its position in the executor's input row (``Var.index``)
when analysis builds it: tusk's executor passes flat Python lists between plan
nodes, so a Var is a list index, not a (varno, varattno) pair.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Expr:
    type: int
    typmod: int = field(default=-1, kw_only=True)
    location: int = field(default=-1, kw_only=True)


@dataclass(eq=False)
class Const(Expr):
    value: Any = None


@dataclass(eq=False)
class Param(Expr):
    number: int = 0            # 0-based


@dataclass(eq=False)
class Var(Expr):
    index: int = 0             # position in the input row
    name: str = ""
    rtindex: int = 0           # which range table entry (1-based), for the planner
    attnum: int = 0            # the relation's attnum (0: not a table column)


@dataclass(eq=False)
class FuncExpr(Expr):
    """A function or operator call; ``impl`` gets the argument values."""

    name: str = ""
    impl: Callable[..., Any] | None = None
    args: list[Expr] = field(default_factory=list)
    strict: bool = True        # any NULL argument → NULL without calling impl
    volatile: bool = False     # never folded at plan time
    is_operator: bool = False


@dataclass(eq=False)
class BoolExpr(Expr):
    op: str = "and"            # and / or / not
    args: list[Expr] = field(default_factory=list)


@dataclass(eq=False)
class NullTest(Expr):
    arg: Expr | None = None
    is_null: bool = True


@dataclass(eq=False)
class BooleanTest(Expr):
    arg: Expr | None = None
    test: str = "IS_TRUE"      # IS_TRUE, IS_NOT_TRUE, IS_FALSE, IS_NOT_FALSE, ...


@dataclass(eq=False)
class InList(Expr):
    """x IN (a, b, ...) / x NOT IN (...) (ScalarArrayOpExpr over an ARRAY[])."""

    arg: Expr | None = None
    items: list[Expr] = field(default_factory=list)
    eq: Callable[[Any, Any], Any] | None = None
    negated: bool = False


@dataclass(eq=False)
class CaseExpr(Expr):
    whens: list[tuple[Expr, Expr]] = field(default_factory=list)
    default: Expr | None = None


@dataclass(eq=False)
class CoalesceExpr(Expr):
    args: list[Expr] = field(default_factory=list)
    nullif: bool = False       # NULLIF(a, b) shares the node: args = [a, a = b]


@dataclass(eq=False)
class ArrayExpr(Expr):
    elements: list[Expr] = field(default_factory=list)


@dataclass(eq=False)
class Aggref(Expr):
    aggname: str = ""
    args: list[Expr] = field(default_factory=list)
    star: bool = False
    distinct: bool = False
    aggno: int = 0             # position among the query's aggregates
    spec: Any = None           # executor/nodeAgg's AggSpec


def walk(expr: Expr | None) -> list[Expr]:
    """Every node of an expression tree, parents first."""
    out: list[Expr] = []
    stack = [expr]
    while stack:
        e = stack.pop()
        if e is None:
            continue
        out.append(e)
        stack.extend(children(e))
    return out


def children(e: Expr) -> list[Expr | None]:
    if isinstance(e, (FuncExpr, BoolExpr, CoalesceExpr, Aggref)):
        return list(e.args)
    if isinstance(e, (NullTest, BooleanTest)):
        return [e.arg]
    if isinstance(e, InList):
        return [e.arg, *e.items]
    if isinstance(e, CaseExpr):
        out: list[Expr | None] = [e.default]
        for cond, res in e.whens:
            out += [cond, res]
        return out
    if isinstance(e, ArrayExpr):
        return list(e.elements)
    return []


def contains_aggregate(expr: Expr | None) -> bool:
    return any(isinstance(e, Aggref) for e in walk(expr))


def contains_volatile(expr: Expr | None) -> bool:
    return any(isinstance(e, FuncExpr) and e.volatile for e in walk(expr))


def is_constant(expr: Expr | None) -> bool:
    """No Var, Param, Aggref or volatile function anywhere below."""
    for e in walk(expr):
        if isinstance(e, (Var, Param, Aggref)) or (isinstance(e, FuncExpr) and e.volatile):
            return False
    return True
