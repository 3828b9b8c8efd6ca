"""Plan reuse for simple-protocol statements that differ only in constants —
tusk's counterpart of PostgreSQL's plan cache (utils/cache/plancache.c) for the
simple protocol, where PostgreSQL itself plans every query afresh but tusk,
whose planning costs far more, cannot afford to.

A query is cut into tokens; its constants (numbers, plain string literals) are
replaced by parameters, and the statement compiled from that text serves every
query of the same shape. The key is the exact token sequence with each
constant replaced by its kind — int4-sized integer, int8-sized integer, other
number, string — so two queries share a plan only if they are the same query
but for constant values of the same kind: column aliases, IN-list lengths,
LIMIT forms and VALUES row counts all change the key (pglast's fingerprint
alone would conflate those).

Only a single SELECT/INSERT/UPDATE/DELETE is eligible, and anything the
tokenizer is not sure about (comments, dollar quoting, prefixed strings such as
E'..', existing $n) falls back to compiling the literal text. So does a shape
whose parameterised form does not analyse (a string whose type the context does
not decide, a typed literal like ``timestamp '...'``): it is remembered as
unreusable. When a string constant does not convert to the type its parameter
got, the statement is compiled from the literal text for that run, so the
error names the literal's position exactly as PostgreSQL's does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from pglast import keywords

from catalog import pg_type as t
from utils.adt import datatypes as dt
from utils.elog import PgError

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^']|'')*')
  | (?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<qident>"(?:[^"]|"")*")
  | (?P<word>[A-Za-z_\x80-\U0010FFFF][A-Za-z_0-9$\x80-\U0010FFFF]*)
  | (?P<op>::|<=|>=|<>|!=|\|\||[-+*/%<>=~!@#^&|`?(),;\[\].:])
""", re.X)
_ELIGIBLE = frozenset({"select", "insert", "update", "delete"})
INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1
CACHE_SIZE = 512
UNREUSABLE = object()
_END_OF_BY_LIST = frozenset({"limit", "offset", "having", "fetch", "for", "window", "union",
                             "intersect", "except", "returning"})
_NUM_KEYS = {t.INT4OID: "I4", t.INT8OID: "I8", t.NUMERICOID: "N"}
_RESERVED = frozenset(k.lower() for k in keywords.RESERVED_KEYWORDS)


def parameterize(query: str) -> tuple[tuple, str, list[Any], list[int]] | None:
    """(key, parameterised text, constant values, parameter types) or None when
    the query is not eligible."""
    pos, n = 0, len(query)
    key: list[Any] = []
    out: list[str] = []
    values: list[Any] = []
    types: list[int] = []
    prev_kind = ""
    unary_minus = False
    minus_at = 0
    in_by_list = False
    match = _TOKEN.match
    while pos < n:
        m = match(query, pos)
        if m is None:
            return None
        kind = m.lastgroup
        text = m.group()
        end = m.end()
        if kind == "ws":
            out.append(text)
            pos = end
            continue
        if kind == "str":
            if prev_kind == "word" and query[pos - 1:pos] not in (" ", "\t", "\n", "\r"):
                return None  # E'..', B'..', X'..', U&'..': keep the literal
            values.append(text[1:-1].replace("''", "'"))
            types.append(0)
            key.append("S")
            out.append(f"${len(values)}")
        elif kind == "num":
            if end < n and (query[end].isalpha() or query[end] == "_"):
                return None
            if in_by_list and key and key[-1].lower() in ("by", ","):
                # ORDER BY 2 / GROUP BY 1 name output columns: not a value.
                key.append(text)
                out.append(text)
                prev_kind, pos = kind, end
                continue
            negative = False
            # '-3::text' is -(3::text): the grammar folds the minus only into a bare
            # constant.
            binds_tighter = query.startswith(("::", "[", "."), end) or \
                query[end:].lstrip().startswith(("::", "["))
            if key and key[-1] == "-" and unary_minus and not binds_tighter:
                # The grammar folds a unary minus into the constant (-2147483648 is
                # an int4): do the same, so the parameter has the literal's type.
                negative = True
                key.pop()
                del out[minus_at:]
            if "." in text or "e" in text or "E" in text:
                value: Any = Decimal(text)
                ty = t.NUMERICOID
            else:
                value = int(text)
                signed = -value if negative else value
                ty = (t.INT4OID if -INT4_MAX - 1 <= signed <= INT4_MAX else
                      t.INT8OID if -INT8_MAX - 1 <= signed <= INT8_MAX else t.NUMERICOID)
                if ty == t.NUMERICOID:
                    value = Decimal(text)
            values.append(-value if negative else value)
            types.append(ty)
            key.append(_NUM_KEYS[ty])
            out.append(f"${len(values)}")
        else:
            if kind == "op" and text in ("-", "/") and query[end:end + 1] in ("-", "*"):
                return None  # a comment
            if kind == "op" and text == ";" and query[end:].strip():
                return None  # several statements
            if not key and (kind != "word" or text.lower() not in _ELIGIBLE):
                return None
            if kind == "word":
                low = text.lower()
                if low == "by":
                    in_by_list = True
                elif low in _END_OF_BY_LIST:
                    in_by_list = False
            elif text in (")", ";"):
                in_by_list = False
            if kind == "op" and text == "-":
                # Unary when it cannot end an operand: after an operator or
                # punctuation other than ')', or after a reserved keyword.
                prev = key[-1] if key else ""
                unary_minus = (prev_kind == "op" and prev not in (")", "]")) or (
                    prev_kind == "word" and prev.lower() in _RESERVED)
                minus_at = len(out)
            key.append(text)
            out.append(text)
        prev_kind = kind
        pos = end
    if not values:
        return None
    return tuple(key), "".join(out), values, types


class SimplePlanCache:
    """Statements compiled from parameterised text, by shape."""

    def __init__(self, compile_fn: Callable[[str, list[int]], list[Any]]) -> None:
        self.compile_fn = compile_fn
        self.entries: dict[tuple, Any] = {}

    def lookup(self, query: str) -> tuple[Any, list[Any]] | None:
        """(statement, parameter values) for a query of a known reusable shape,
        compiling the shape on first sight; None: compile the literal text."""
        p = parameterize(query)
        if p is None:
            return None
        key, text, values, types = p
        st = self.entries.get(key)
        if st is None:
            st = self._compile(text, types)
            if len(self.entries) >= CACHE_SIZE:
                self.entries.clear()
            self.entries[key] = st
        if st is UNREUSABLE:
            return None
        converted = convert_params(values, st.param_types, types)
        if converted is None:
            return None
        return st, converted

    def _compile(self, text: str, types: list[int]) -> Any:
        try:
            stmts = self.compile_fn(text, list(types))
        except PgError:
            return UNREUSABLE
        if len(stmts) != 1 or stmts[0].analysis_error is not None:
            return UNREUSABLE
        return stmts[0]

    def clear(self) -> None:
        self.entries.clear()


def convert_params(values: Sequence[Any], final_types: Sequence[int],
                   given: Sequence[int]) -> list[Any] | None:
    """String constants to their parameters' final types (None: a value does not
    convert — the literal path reports the error with its position)."""
    out = list(values)
    for i, (v, want, had) in enumerate(zip(values, final_types, given, strict=True)):
        if had == 0 and want not in dt.TEXT_TYPES:
            try:
                out[i] = dt.input_function(want)(v)
            except PgError:
                return None
        elif had == 0 and want == t.NAMEOID:
            out[i] = dt.input_function(want)(v)
    return out
