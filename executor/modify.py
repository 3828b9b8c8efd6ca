"""INSERT, UPDATE and DELETE — mirrors src/backend/executor/nodeModifyTable.c
(ExecInsert, ExecUpdate, ExecDelete), execIndexing.c (ExecInsertIndexTuples),
execMain.c (ExecConstraints) and EvalPlanQual (execMain.c / README's
"EvalPlanQual" section).

READ COMMITTED semantics as PostgreSQL: when the row to update or delete was
changed by a transaction that committed after our snapshot, follow its update
chain to the newest version, re-check the WHERE clause against it, and apply
the change to that version (no lost updates); a row deleted meanwhile is
skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from access import heapam, nbtree
from executor import nodes as N
from utils.adt.datatypes import output_function
from utils.elog import PgError

Fn = Callable[[Sequence[Any], Sequence[Any]], Any]


def failing_row_detail(values: Sequence[Any], types: Sequence[int]) -> str:
    """The DETAIL of constraint violations: 'Failing row contains (1, null).'"""
    shown = ["null" if v is None else output_function(ty)(v)
             for v, ty in zip(values, types, strict=True)]
    return f"Failing row contains ({', '.join(shown)})."


@dataclass(eq=False)
class ResultRelation:
    """ResultRelInfo: the target table, its indexes, and its constraint checks."""

    rel: Any
    indexes: list[Any]
    natts: int
    notnull: list[tuple[int, str]]            # (column, name) of NOT NULL columns
    types: list[int]
    schema: str = "public"

    @classmethod
    def open(cls, rel: Any) -> ResultRelation:
        from utils import relcache

        attrs = [a for a in rel.desc.attrs if not a.attisdropped]
        from catalog import namespace

        indexes = [relcache.relation_open(oid, 3) for oid in rel.index_oids]
        return cls(rel, indexes, len(attrs),
                   [(i, a.attname) for i, a in enumerate(attrs) if a.attnotnull],
                   [a.atttypid for a in attrs], namespace.get_namespace_name(rel.relnamespace))

    def check_constraints(self, values: Sequence[Any]) -> None:
        """ExecConstraints: NOT NULL."""
        for i, name in self.notnull:
            if values[i] is None:
                err = PgError("23502", f'null value in column "{name}" of relation '
                                       f'"{self.rel.relname}" violates not-null constraint',
                              detail=failing_row_detail(values[:self.natts], self.types))
                err.schema_name = self.schema
                err.table_name = self.rel.relname
                err.column_name = name
                raise err

    def insert_index_tuples(self, values: Sequence[Any], tid: tuple[int, int]) -> None:
        """ExecInsertIndexTuples: one entry per index; unique ones are checked."""
        if not self.indexes:
            return
        for index in self.indexes:
            info = index.index
            keys = [values[k - 1] for k in info.indkey]
            try:
                nbtree.bt_insert(index, keys, tid, self.rel, info.indisunique)
            except PgError as err:
                if err.sqlstate == "23505":
                    err.schema_name = self.schema
                    err.table_name = self.rel.relname
                    err.constraint_name = index.relname
                raise


@dataclass(eq=False)
class ModifyTable:
    """One INSERT, UPDATE or DELETE: ``run(ec)`` performs it and returns the
    RETURNING rows (empty when there is no RETURNING) and the row count."""

    command: str
    target: ResultRelation
    source: N.PlanNode | None = None          # UPDATE/DELETE: table rows + ctid
    insert_rows: Callable[[N.ExecContext], Any] | None = None
    set_fns: list[tuple[int, Fn]] = field(default_factory=list)
    recheck: Callable[[Sequence[Any], Sequence[Any]], bool] | None = None
    returning: list[Fn] = field(default_factory=list)

    def run(self, ec: N.ExecContext) -> tuple[list[list[Any]], int]:
        if self.command == "insert":
            return self._insert(ec)
        return self._update_or_delete(ec)

    def _insert(self, ec: N.ExecContext) -> tuple[list[list[Any]], int]:
        target, rel, params = self.target, self.target.rel, ec.params
        out: list[list[Any]] = []
        returning = self.returning
        count = 0
        for values in self.insert_rows(ec):  # type: ignore[misc]
            target.check_constraints(values)
            tid = heapam.heap_insert(rel, values, ec.cid)
            target.insert_index_tuples(values, tid)
            count += 1
            if returning:
                row = list(values) + [tid]
                out.append([f(row, params) for f in returning])
        return out, count

    def _update_or_delete(self, ec: N.ExecContext) -> tuple[list[list[Any]], int]:
        assert self.source is not None
        target, rel, params = self.target, self.target.rel, ec.params
        natts = target.natts
        is_update = self.command == "update"
        out: list[list[Any]] = []
        count = 0
        for row in self.source.rows(ec):
            tid = row[natts]
            while True:
                if is_update:
                    new = self._new_values(row, params)
                    target.check_constraints(new)
                    res = heapam.heap_update(rel, tid, new, ec.cid, ec.snapshot, wait=True)
                else:
                    new = row[:natts]
                    res = heapam.heap_delete(rel, tid, ec.cid, ec.snapshot, wait=True)
                status = res.status
                if status == heapam.TM_Ok:
                    if is_update and res.update_indexes:
                        target.insert_index_tuples(new, res.new_tid)
                    count += 1
                    if self.returning:
                        rrow = list(new) + [res.new_tid if is_update else tid]
                        out.append([f(rrow, params) for f in self.returning])
                    break
                if status == heapam.TM_SelfModified:
                    break  # already changed by this command: PostgreSQL skips it too
                if status == heapam.TM_Updated:
                    row = self._eval_plan_qual(rel, res.ctid, ec)
                    if row is None:
                        break
                    tid = row[natts]
                    continue
                if status in (heapam.TM_Deleted, heapam.TM_Invisible):
                    break
                raise PgError("XX000", f"unexpected heap result {status}")
        return out, count

    def _new_values(self, row: Sequence[Any], params: Sequence[Any]) -> list[Any]:
        new = list(row[:self.target.natts])
        for col, fn in self.set_fns:
            new[col] = fn(row, params)
        return new

    def _eval_plan_qual(self, rel: Any, ctid: tuple[int, int], ec: N.ExecContext
                        ) -> list[Any] | None:
        """EvalPlanQual: the newest version of a concurrently updated row, if it
        still satisfies the WHERE clause (None: skip the row)."""
        from utils import snapmgr

        snapshot = snapmgr.get_latest_snapshot()
        tid = heapam.heap_get_latest_tid(rel, ctid, snapshot)
        values = heapam.heap_fetch(rel, tid, snapshot)
        if values is None:
            return None
        row = list(values) + [tid]
        if self.recheck is not None and not self.recheck(row, ec.params):
            return None
        return row
