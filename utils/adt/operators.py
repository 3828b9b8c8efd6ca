"""Operators — mirrors the operator functions of src/backend/utils/adt/ (int.c,
int8.c, float.c, numeric.c, varlena.c, varchar.c, bool.c, timestamp.c, like.c)
and the operator resolution of parser/parse_oper.c, for the built-in types.

``resolve_binary(name, ltype, rtype)`` picks the operator PostgreSQL would pick
for the argument types (after treating unknown literals as the other side's
type) and returns an ``Operator``: the types its arguments must be coerced to,
its result type and its implementation — a plain two-argument function with
PostgreSQL's overflow and division-by-zero errors.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from catalog import pg_type as t
from utils.adt.datatypes import INT_RANGE, NUMERIC_RANK, type_name
from utils.elog import PgError

_STRINGS = (t.TEXTOID, t.VARCHAROID, t.NAMEOID, t.BPCHAROID, t.UNKNOWNOID, t.CHAROID)
_INT_NAMES = {t.INT2OID: "smallint", t.INT4OID: "integer", t.INT8OID: "bigint"}
_COMPARISONS = {"=": "eq", "<>": "ne", "!=": "ne", "<": "lt", "<=": "le", ">": "gt",
                ">=": "ge"}


@dataclass(frozen=True)
class Operator:
    name: str
    left: int          # argument types (InvalidOid 0 for a prefix operator's left)
    right: int
    result: int
    impl: Callable[..., Any]


def _division_by_zero() -> PgError:
    return PgError("22012", "division by zero")


def _checked(oid: int, fn: Callable[[int, int], int]) -> Callable[[int, int], int]:
    lo, hi = INT_RANGE[oid]
    message = f"{_INT_NAMES[oid]} out of range"

    def op(a: int, b: int) -> int:
        r = fn(a, b)
        if lo <= r <= hi:
            return r
        raise PgError("22003", message)
    return op


def _int_div(a: int, b: int) -> int:
    if b == 0:
        raise _division_by_zero()
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q  # truncates toward zero, as C does


def _int_mod(a: int, b: int) -> int:
    if b == 0:
        raise _division_by_zero()
    return a - b * _int_div(a, b)


def _float_check(r: float, a: float, b: float) -> float:
    if math.isinf(r) and not (math.isinf(a) or math.isinf(b)):
        raise PgError("22003", "value out of range: overflow")
    return r


def _float_ops(oid: int) -> dict[str, Callable[[float, float], float]]:
    def div(a: float, b: float) -> float:
        if b == 0:
            raise _division_by_zero()
        return _float_check(a / b, a, b)

    def mul(a: float, b: float) -> float:
        try:
            return _float_check(a * b, a, b)
        except OverflowError:
            raise PgError("22003", "value out of range: overflow") from None
    return {"+": lambda a, b: _float_check(a + b, a, b),
            "-": lambda a, b: _float_check(a - b, a, b), "*": mul, "/": div}


def _weight_and_first_digit(d: Decimal) -> tuple[int, int]:
    """The base-10000 weight and first digit of a numeric, as PostgreSQL stores it."""
    if not d:
        return 0, 0
    d = abs(d)
    weight = d.adjusted() // 4
    return weight, int(d.scaleb(-4 * weight))


def _dscale(d: Decimal) -> int:
    exp = d.as_tuple().exponent
    return max(-exp, 0) if isinstance(exp, int) else 0


def _numeric_div(a: Decimal, b: Decimal) -> Decimal:
    """numeric_div with select_div_scale's result scale: at least 16 significant
    digits, and no fewer decimals than either input; rounded half away from zero."""
    if b == 0:
        raise _division_by_zero()
    w1, d1 = _weight_and_first_digit(a)
    w2, d2 = _weight_and_first_digit(b)
    qweight = w1 - w2 - (1 if d1 < d2 else 0)
    scale = min(max(16 - qweight * 4, _dscale(a), _dscale(b), 0), 1000)
    with localcontext() as ctx:
        ctx.prec = max(40, scale + (qweight + 1) * 4 + 10)
        q = a / b
        return q.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)


def _numeric_mod(a: Decimal, b: Decimal) -> Decimal:
    if b == 0:
        raise _division_by_zero()
    return a % b  # Decimal's remainder takes the dividend's sign, as numeric_mod


_NUMERIC_OPS: dict[str, Callable[[Decimal, Decimal], Decimal]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": _numeric_div, "%": _numeric_mod}


def _arith(name: str, oid: int) -> Callable[[Any, Any], Any] | None:
    if oid in _INT_NAMES:
        base = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
                "/": _int_div, "%": _int_mod}.get(name)
        return None if base is None else _checked(oid, base)
    if oid in (t.FLOAT4OID, t.FLOAT8OID):
        return _float_ops(oid).get(name)
    if oid == t.NUMERICOID:
        return _NUMERIC_OPS.get(name)
    return None


def _bpchar_key(v: str) -> str:
    return v.rstrip(" ")


_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b}


def _float_cmp(kind: str) -> Callable[[float, float], bool]:
    """float8 comparisons: NaN equals NaN and sorts above everything (float8_cmp_internal)."""
    base = _CMP[kind]

    def cmp(a: float, b: float) -> bool:
        if a != a or b != b:
            ka = (1, 0.0) if a != a else (0, a)
            kb = (1, 0.0) if b != b else (0, b)
            return base(ka, kb)
        return base(a, b)
    return cmp


def _bpchar_cmp(kind: str) -> Callable[[str, str], bool]:
    base = _CMP[kind]
    return lambda a, b: base(a.rstrip(" "), b.rstrip(" "))


def common_numeric_type(a: int, b: int) -> int:
    return a if NUMERIC_RANK[a] >= NUMERIC_RANK[b] else b


def _unknown_as(ltype: int, rtype: int) -> tuple[int, int]:
    """An unknown literal takes the other argument's type; two unknowns are text."""
    if ltype == t.UNKNOWNOID and rtype == t.UNKNOWNOID:
        return t.TEXTOID, t.TEXTOID
    if ltype == t.UNKNOWNOID:
        return rtype, rtype
    if rtype == t.UNKNOWNOID:
        return ltype, ltype
    return ltype, rtype


def _no_operator(name: str, ltype: int, rtype: int) -> PgError:
    return PgError("42883", f"operator does not exist: {type_name(ltype)} {name} "
                            f"{type_name(rtype)}",
                   hint="No operator matches the given name and argument types. "
                        "You might need to add explicit type casts.")


_LIKE_CACHE: dict[tuple[str, bool], re.Pattern[str]] = {}


def like_pattern(pattern: str, case_insensitive: bool = False) -> re.Pattern[str]:
    """LIKE's pattern (with its default escape, backslash) as a compiled regex."""
    key = (pattern, case_insensitive)
    rx = _LIKE_CACHE.get(key)
    if rx is None:
        out, i = [], 0
        while i < len(pattern):
            c = pattern[i]
            if c == "\\" and i + 1 < len(pattern):
                out.append(re.escape(pattern[i + 1]))
                i += 2
                continue
            out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
            i += 1
        rx = re.compile("".join(out), re.DOTALL | (re.IGNORECASE if case_insensitive else 0))
        if len(_LIKE_CACHE) > 256:
            _LIKE_CACHE.clear()
        _LIKE_CACHE[key] = rx
    return rx


def _like(negate: bool, ci: bool) -> Callable[[str, str], bool]:
    def like(s: str, p: str) -> bool:
        return (like_pattern(p, ci).fullmatch(s) is None) is negate
    return like


_LIKE_OPS = {"~~": (False, False), "!~~": (True, False), "~~*": (False, True),
             "!~~*": (True, True)}


def resolve_binary(name: str, ltype: int, rtype: int) -> Operator:
    """The operator ``name`` for these argument types (oper() + make_op)."""
    kind = _COMPARISONS.get(name)
    if name == "||":
        # textcat for strings; an unknown literal next to a non-string is text
        # (anynonarray || text), not the other side's type.
        lt = t.TEXTOID if ltype == t.UNKNOWNOID else ltype
        rt = t.TEXTOID if rtype == t.UNKNOWNOID else rtype
        # textcat, or anynonarray || text / text || anynonarray (via text output).
        if lt in _STRINGS or rt in _STRINGS:
            return Operator(name, t.TEXTOID, t.TEXTOID, t.TEXTOID, lambda a, b: a + b)
        raise _no_operator(name, ltype, rtype)
    lt, rt = _unknown_as(ltype, rtype)
    if name in _LIKE_OPS:
        if lt in _STRINGS and rt in _STRINGS:
            neg, ci = _LIKE_OPS[name]
            return Operator(name, t.TEXTOID, t.TEXTOID, t.BOOLOID, _like(neg, ci))
        raise _no_operator(name, ltype, rtype)
    if lt in NUMERIC_RANK and rt in NUMERIC_RANK:
        common = common_numeric_type(lt, rt)
        if kind is not None:
            cmp = _float_cmp(kind) if common in (t.FLOAT4OID, t.FLOAT8OID) else _CMP[kind]
            return Operator(name, common, common, t.BOOLOID, cmp)
        fn = _arith(name, common)
        if fn is not None:
            return Operator(name, common, common, common, fn)
        raise _no_operator(name, ltype, rtype)
    if kind is not None:
        if lt == t.BPCHAROID and rt == t.BPCHAROID:
            return Operator(name, lt, rt, t.BOOLOID, _bpchar_cmp(kind))
        if lt == t.CHAROID and rt == t.CHAROID:  # chareq and friends
            return Operator(name, lt, rt, t.BOOLOID, _CMP[kind])
        if lt in _STRINGS and rt in _STRINGS:
            if t.NAMEOID in (lt, rt) and lt in (t.NAMEOID, t.TEXTOID, t.UNKNOWNOID) \
                    and rt in (t.NAMEOID, t.TEXTOID, t.UNKNOWNOID):
                return Operator(name, lt, rt, t.BOOLOID, _CMP[kind])
            return Operator(name, t.TEXTOID, t.TEXTOID, t.BOOLOID, _CMP[kind])
        if lt == rt and lt in (t.BOOLOID, t.TIMESTAMPOID, t.TIMESTAMPTZOID, t.OIDOID,
                               t.CHAROID, t.PG_LSNOID, t.XID8OID, t.REGCLASSOID):
            return Operator(name, lt, rt, t.BOOLOID, _CMP[kind])
        if {lt, rt} == {t.TIMESTAMPOID, t.TIMESTAMPTZOID}:
            return Operator(name, t.TIMESTAMPTZOID, t.TIMESTAMPTZOID, t.BOOLOID, _CMP[kind])
        oids = (t.OIDOID, t.REGCLASSOID, t.REGTYPEOID, t.REGNAMESPACEOID)
        if lt in oids + tuple(_INT_NAMES) and rt in oids + tuple(_INT_NAMES):
            return Operator(name, t.OIDOID, t.OIDOID, t.BOOLOID, _CMP[kind])
    raise _no_operator(name, ltype, rtype)


def _negate(oid: int) -> Callable[[Any], Any]:
    if oid in _INT_NAMES:
        lo, _ = INT_RANGE[oid]
        message = f"{_INT_NAMES[oid]} out of range"

        def neg(v: int) -> int:
            if v == lo:
                raise PgError("22003", message)
            return -v
        return neg
    return lambda v: -v


def resolve_unary(name: str, argtype: int) -> Operator:
    """Prefix operators: - + NOT handled by the caller; @ (abs)."""
    at = t.NUMERICOID if argtype == t.UNKNOWNOID else argtype
    if at in NUMERIC_RANK:
        if name == "-":
            return Operator(name, 0, at, at, _negate(at))
        if name == "+":
            return Operator(name, 0, at, at, lambda v: v)
        if name == "@":
            return Operator(name, 0, at, at, abs)
    raise PgError("42883", f"operator does not exist: {name} {type_name(argtype)}",
                  hint="No operator matches the given name and argument type. "
                       "You might need to add an explicit type cast.")


def sort_key(oid: int) -> Callable[[Any], Any] | None:
    """A key function making Python's ordering PostgreSQL's default btree ordering
    for the type (None: the natural order already is)."""
    if oid == t.BPCHAROID:
        return _bpchar_key
    if oid in (t.FLOAT4OID, t.FLOAT8OID):
        return lambda v: (1, 0.0) if v != v else (0, v)
    return None
