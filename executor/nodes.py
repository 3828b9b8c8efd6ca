"""Plan nodes — mirrors src/backend/executor/ (nodeResult.c, nodeSeqscan.c,
nodeIndexscan.c, nodeNestloop.c, nodeAgg.c, nodeSort.c, nodeUnique.c,
nodeLimit.c), as generators: ``node.rows(ec)`` yields the node's rows (Python
lists laid out as parser/analyze.py describes) for one execution context.

Each node gets its compiled closures at plan time; nothing is looked up while
rows flow.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from access import heapam, nbtree
from utils.elog import PgError

Row = list[Any]
Fn = Callable[[Sequence[Any], Sequence[Any]], Any]
Qual = Callable[[Sequence[Any], Sequence[Any]], bool] | None


@dataclass(eq=False)
class ExecContext:
    """EState: what one execution of a plan shares."""

    params: Sequence[Any]
    snapshot: Any = None
    cid: int = 0
    check_interrupts: Callable[[], None] = lambda: None
    processed: int = 0


class PlanNode:
    width = 0

    def rows(self, ec: ExecContext) -> Iterator[Row]:  # pragma: no cover - abstract
        raise NotImplementedError

    def explain(self) -> str:
        return type(self).__name__


@dataclass(eq=False)
class Result(PlanNode):
    """A query without FROM: one empty row (or none if the constant qual fails)."""

    qual: Qual = None
    width: int = 0

    def rows(self, ec: ExecContext) -> Iterator[Row]:
        if self.qual is None or self.qual([], ec.params):
            yield []


@dataclass(eq=False)
class SeqScan(PlanNode):
    rel: Any
    qual: Qual = None
    width: int = 0

    def rows(self, ec: ExecContext) -> Iterator[Row]:
        qual, params = self.qual, ec.params
        for tid, values in heapam.heap_scan(self.rel, ec.snapshot):
            values.append(tid)
            if qual is None or qual(values, params):
                yield values


@dataclass(eq=False)
class FunctionScan(PlanNode):
    """Rows computed by the server: system views (pg_stat_activity, pg_settings, ...)."""

    function: Callable[[], Any]
    qual: Qual = None
    width: int = 0

    def rows(self, ec: ExecContext) -> Iterator[Row]:
        qual, params = self.qual, ec.params
        for r in self.function():
            row = list(r)
            if qual is None or qual(row, params):
                yield row


@dataclass(eq=False)
class IndexScan(PlanNode):
    """An index scan with its scan keys' values computed per execution (Consts and
    Params), then each heap tuple fetched through its HOT chain and re-checked."""

    rel: Any
    index: Any
    keys: list[tuple[int, str, Fn]]       # (index column 1-based, strategy, value)
    qual: Qual = None
    width: int = 0
    backward: bool = False

    def rows(self, ec: ExecContext) -> Iterator[Row]:
        params = ec.params
        scankeys = []
        for attno, strategy, value in self.keys:
            v = value((), params)
            if v is None:
                return  # a NULL key matches nothing (index quals are strict)
            scankeys.append((attno, strategy, v))
        qual, rel, snapshot = self.qual, self.rel, ec.snapshot
        scan = nbtree.bt_begin_scan(self.index, scankeys, backward=self.backward)
        seen: set[tuple[int, int]] = set()
        for tid in scan:
            found = heapam.heap_hot_search(rel, tid, snapshot)
            if found is None:
                continue
            htid, values = found
            if htid in seen:  # an index may hold several entries for one HOT chain
                continue
            seen.add(htid)
            values.append(htid)
            if qual is None or qual(values, params):
                yield values


@dataclass(eq=False)
class NestLoop(PlanNode):
    outer: PlanNode
    inner: PlanNode
    jointype: str = "inner"
    qual: Qual = None
    width: int = 0
    materialize: bool = True

    def rows(self, ec: ExecContext) -> Iterator[Row]:
        qual, params = self.qual, ec.params
        inner_rows: list[Row] | None = None
        pad = [None] * self.inner.width
        for o in self.outer.rows(ec):
            if inner_rows is None:
                inner_rows = list(self.inner.rows(ec))
            matched = False
            for i in inner_rows:
                row = o + i
                if qual is None or qual(row, params):
                    matched = True
                    yield row
            if not matched and self.jointype == "left":
                yield o + pad


@dataclass(eq=False)
class LateralProject(PlanNode):
    """A LATERAL (SELECT exprs) joined to its left side: the expressions are
    evaluated against each left row and appended."""

    outer: PlanNode
    exprs: list[Fn]
    qual: Qual = None
    width: int = 0

    def rows(self, ec: ExecContext) -> Iterator[Row]:
        params, exprs, qual = ec.params, self.exprs, self.qual
        for o in self.outer.rows(ec):
            row = o + [f(o, params) for f in exprs]
            if qual is None or qual(row, params):
                yield row


@dataclass(eq=False)
class Filter(PlanNode):
    child: PlanNode
    qual: Callable[[Sequence[Any], Sequence[Any]], bool]
    width: int = 0

    def rows(self, ec: ExecContext) -> Iterator[Row]:
        qual, params = self.qual, ec.params
        for row in self.child.rows(ec):
            if qual(row, params):
                yield row


@dataclass(eq=False)
class AggCall:
    spec: Any                 # executor.aggregates.AggSpec
    args: list[Fn]
    star: bool = False
    distinct: bool = False


@dataclass(eq=False)
class Agg(PlanNode):
    """Hash aggregation (plain aggregation when there is no GROUP BY): the output
    row is the group key values followed by the aggregate results."""

    child: PlanNode
    group: list[Fn]
    aggs: list[AggCall]
    width: int = 0

    def rows(self, ec: ExecContext) -> Iterator[Row]:
        params = ec.params
        aggs = self.aggs
        groups: dict[tuple, list[Any]] = {}
        distinct_seen: dict[tuple, list[set]] = {}
        group = self.group
        for row in self.child.rows(ec):
            key = tuple(f(row, params) for f in group)
            states = groups.get(key)
            if states is None:
                states = groups[key] = [a.spec.init() for a in aggs]
                distinct_seen[key] = [set() for _ in aggs]
            for i, a in enumerate(aggs):
                if a.star:
                    states[i] = a.spec.trans(states[i])
                    continue
                values = [f(row, params) for f in a.args]
                if a.spec.strict and None in values:
                    continue
                if a.distinct:
                    seen = distinct_seen[key][i]
                    k = tuple(values)
                    if k in seen:
                        continue
                    seen.add(k)
                states[i] = a.spec.trans(states[i], *values)
        if not groups and not group:
            groups[()] = [a.spec.init() for a in aggs]
        for key, states in groups.items():
            yield list(key) + [a.spec.final(s) for a, s in zip(aggs, states, strict=True)]


@dataclass(eq=False)
class Project(PlanNode):
    child: PlanNode
    exprs: list[Fn]
    width: int = 0

    def rows(self, ec: ExecContext) -> Iterator[Row]:
        params, exprs = ec.params, self.exprs
        for row in self.child.rows(ec):
            yield [f(row, params) for f in exprs]


@dataclass(eq=False)
class SortKey:
    fn: Fn
    descending: bool = False
    nulls_first: bool = False
    key: Callable[[Any], Any] | None = None   # type-specific ordering adjustment


def _compare(keys: list[tuple[int, SortKey]], a: tuple, b: tuple) -> int:
    for i, k in keys:
        x, y = a[i], b[i]
        if x is None or y is None:
            if x is None and y is None:
                continue
            # NULLs sort as larger than everything unless NULLS FIRST.
            xnull = x is None
            c = (-1 if xnull else 1) if k.nulls_first else (1 if xnull else -1)
            return c
        if k.key is not None:
            x, y = k.key(x), k.key(y)
        if x == y:
            continue
        c = -1 if x < y else 1
        return -c if k.descending else c
    return 0


@dataclass(eq=False)
class Sort(PlanNode):
    """Sort on computed keys; the keys are evaluated once per row, and the row's
    position breaks ties so the sort is stable."""

    child: PlanNode
    keys: list[SortKey]
    width: int = 0

    def rows(self, ec: ExecContext) -> Iterator[Row]:
        params = ec.params
        fns = [k.fn for k in self.keys]
        decorated = [(tuple(f(row, params) for f in fns), row)
                     for row in self.child.rows(ec)]
        indexed = list(enumerate(self.keys))
        if all(k.key is None and not k.descending and not k.nulls_first for k in self.keys) \
                and not any(None in d[0] for d in decorated):
            decorated.sort(key=lambda d: d[0])
        else:
            cmp = functools.cmp_to_key(lambda a, b: _compare(indexed, a[0], b[0]))
            decorated.sort(key=cmp)
        for _, row in decorated:
            yield row


@dataclass(eq=False)
class Unique(PlanNode):
    """SELECT DISTINCT (hashing the whole row)."""

    child: PlanNode
    width: int = 0

    def rows(self, ec: ExecContext) -> Iterator[Row]:
        seen: set[tuple] = set()
        for row in self.child.rows(ec):
            key = tuple(row)
            if key not in seen:
                seen.add(key)
                yield row


@dataclass(eq=False)
class Limit(PlanNode):
    child: PlanNode
    count: Fn | None = None
    offset: Fn | None = None
    width: int = 0

    def rows(self, ec: ExecContext) -> Iterator[Row]:
        params = ec.params
        offset = self.offset(None, params) if self.offset is not None else 0
        count = self.count(None, params) if self.count is not None else None
        if offset is not None and offset < 0:
            raise PgError("2201X", "OFFSET must not be negative")
        if count is not None and count < 0:
            raise PgError("2201W", "LIMIT must not be negative")
        it = self.child.rows(ec)
        stop = None if count is None else (offset or 0) + count
        yield from itertools.islice(it, offset or 0, stop)


@dataclass(eq=False)
class Values(PlanNode):
    rows_fns: list[list[Fn]] = field(default_factory=list)
    width: int = 0

    def rows(self, ec: ExecContext) -> Iterator[Row]:
        params = ec.params
        for fns in self.rows_fns:
            yield [f((), params) for f in fns]
