"""Aggregate functions — mirrors the transition and final functions of
src/backend/utils/adt/ (int8.c's int8inc / int4_sum / int8_avg_accum, numeric.c,
float.c) and the pg_aggregate rows for count, sum, avg, min, max, bool_and,
bool_or, every, array_agg and string_agg.

An AggSpec has an initial state, a transition ``trans(state, *args) -> state``
(called only for non-NULL arguments when strict, as PostgreSQL's strict
transition functions are), and a final function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from catalog import pg_type as t
from utils.adt.operators import sort_key
from utils.elog import PgError


@dataclass(frozen=True)
class AggSpec:
    name: str
    arg_types: tuple[int, ...]
    result_type: int
    init: Callable[[], Any]
    trans: Callable[..., Any]
    final: Callable[[Any], Any]
    strict: bool = True


def _count_star(state: int) -> int:
    return state + 1


def _count(state: int, _v: Any) -> int:
    return state + 1


def _sum(state: Any, v: Any) -> Any:
    return v if state is None else state + v


def _int8_sum_final(state: Any) -> Any:
    return state  # int2/int4 sums are bigint


def _check_int8(state: Any) -> Any:
    if state is not None and not -(2**63) <= state < 2**63:
        raise PgError("22003", "bigint out of range")
    return state


def _avg_trans(state: Any, v: Any) -> Any:
    if state is None:
        return [v, 1]
    state[0] += v
    state[1] += 1
    return state


def _avg_numeric_final(state: Any) -> Any:
    if state is None:
        return None
    from utils.adt.operators import _numeric_div

    return _numeric_div(Decimal(state[0]), Decimal(state[1]))


def _avg_float_final(state: Any) -> Any:
    return None if state is None else state[0] / state[1]


def _minmax(want_max: bool, oid: int) -> Callable[[Any, Any], Any]:
    key = sort_key(oid)
    if key is None:
        if want_max:
            return lambda s, v: v if s is None or v > s else s
        return lambda s, v: v if s is None or v < s else s
    if want_max:
        return lambda s, v: v if s is None or key(v) > key(s) else s
    return lambda s, v: v if s is None or key(v) < key(s) else s


def _bool_and(s: Any, v: bool) -> bool:
    return v if s is None else (s and v)


def _bool_or(s: Any, v: bool) -> bool:
    return v if s is None else (s or v)


def _array_agg(s: Any, v: Any) -> list:
    if s is None:
        return [v]
    s.append(v)
    return s


def _string_agg(s: Any, v: str, delim: str | None) -> Any:
    if v is None:
        return s
    if s is None:
        return [v]
    s.append(delim or "")
    s.append(v)
    return s


def _identity(s: Any) -> Any:
    return s


_MINMAX_TYPES = (t.INT2OID, t.INT4OID, t.INT8OID, t.FLOAT4OID, t.FLOAT8OID, t.NUMERICOID,
                 t.TEXTOID, t.BPCHAROID, t.VARCHAROID, t.NAMEOID, t.TIMESTAMPOID,
                 t.TIMESTAMPTZOID, t.OIDOID, t.PG_LSNOID, t.BOOLOID)


def lookup(name: str, arg_types: list[int], star: bool) -> AggSpec | None:
    """The aggregate ``name`` for these argument types (None: no such aggregate)."""
    if name == "count":
        if star:
            return AggSpec("count", (), t.INT8OID, lambda: 0, _count_star, _identity,
                           strict=False)
        if len(arg_types) == 1:
            return AggSpec("count", (t.ANYELEMENTOID,), t.INT8OID, lambda: 0, _count,
                           _identity)
        return None
    if star or len(arg_types) != 1 and name != "string_agg":
        return None
    a = arg_types[0] if arg_types else 0
    if a == t.UNKNOWNOID:
        a = t.TEXTOID if name in ("min", "max", "string_agg", "array_agg") else t.NUMERICOID
    if name == "sum":
        if a in (t.INT2OID, t.INT4OID):
            return AggSpec(name, (a,), t.INT8OID, lambda: None, _sum, _int8_sum_final)
        if a == t.INT8OID:
            return AggSpec(name, (a,), t.NUMERICOID, lambda: None, _sum,
                           lambda s: None if s is None else Decimal(s))
        if a in (t.FLOAT4OID, t.FLOAT8OID, t.NUMERICOID):
            return AggSpec(name, (a,), a, lambda: None, _sum, _identity)
        return None
    if name == "avg":
        if a in (t.INT2OID, t.INT4OID, t.INT8OID, t.NUMERICOID):
            return AggSpec(name, (a,), t.NUMERICOID, lambda: None, _avg_trans,
                           _avg_numeric_final)
        if a in (t.FLOAT4OID, t.FLOAT8OID):
            return AggSpec(name, (a,), t.FLOAT8OID, lambda: None, _avg_trans,
                           _avg_float_final)
        return None
    if name in ("min", "max"):
        if a in _MINMAX_TYPES and a != t.BOOLOID:
            return AggSpec(name, (a,), a, lambda: None, _minmax(name == "max", a), _identity)
        return None
    if name in ("bool_and", "every", "bool_or"):
        if a != t.BOOLOID:
            return None
        return AggSpec(name, (a,), t.BOOLOID, lambda: None,
                       _bool_or if name == "bool_or" else _bool_and, _identity)
    if name == "array_agg":
        arr = t.TYPES[a].typarray if a in t.TYPES else 0
        if not arr or arr not in t.TYPES:
            return None
        return AggSpec(name, (a,), arr, lambda: None, _array_agg, _identity, strict=False)
    if name == "string_agg" and len(arg_types) == 2:
        return AggSpec(name, (t.TEXTOID, t.TEXTOID), t.TEXTOID, lambda: None, _string_agg,
                       lambda s: None if s is None else "".join(s), strict=False)
    return None
