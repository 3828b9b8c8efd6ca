"""Tuple descriptors — mirrors src/include/access/tupdesc.h and the storage half of
pg_attribute (FormData_pg_attribute).

A TupleDesc is the row type of a relation or an index: its attributes with their
storage properties (length, by-value, alignment, storage strategy). It also carries
the compiled tuple former and deformer of access/heaptuple.py, built once per
descriptor (PostgreSQL caches attcacheoff for the same reason).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from catalog.pg_type import TYPES


@dataclass(frozen=True, slots=True)
class Attribute:
    """One column: the pg_attribute fields that storage and the SQL layer read."""

    attname: str
    atttypid: int
    attnum: int                  # 1-based
    atttypmod: int = -1
    attnotnull: bool = False
    atthasdef: bool = False
    attisdropped: bool = False
    attlen: int = 0              # from pg_type unless given
    attbyval: bool = False
    attalign: str = "c"
    attstorage: str = "p"

    @classmethod
    def of_type(cls, attname: str, atttypid: int, attnum: int, atttypmod: int = -1,
                attnotnull: bool = False, atthasdef: bool = False,
                attisdropped: bool = False) -> Attribute:
        """An attribute whose storage properties come from its type."""
        t = TYPES[atttypid]
        return cls(attname, atttypid, attnum, atttypmod, attnotnull, atthasdef,
                   attisdropped, t.typlen, t.typbyval, t.typalign, t.typstorage)


@dataclass(eq=False)
class TupleDesc:
    """The attributes of a row type, in attnum order (dropped ones included)."""

    attrs: tuple[Attribute, ...]
    # Compiled by access/heaptuple.py on first use; private to it.
    _compiled: Any = field(default=None, repr=False)

    @property
    def natts(self) -> int:
        return len(self.attrs)

    def names(self) -> list[str]:
        return [a.attname for a in self.attrs]

    def attr(self, name: str) -> Attribute | None:
        for a in self.attrs:
            if a.attname == name and not a.attisdropped:
                return a
        return None

    def same_layout(self, other: TupleDesc) -> bool:
        """equalTupleDescs for storage: same types, typmods, nullability, in order."""
        key = [(a.atttypid, a.atttypmod, a.attnotnull, a.attisdropped) for a in self.attrs]
        return key == [(a.atttypid, a.atttypmod, a.attnotnull, a.attisdropped)
                       for a in other.attrs]


def create_tuple_desc(columns: list[tuple[str, int, int]] | list[tuple[str, int]]
                      ) -> TupleDesc:
    """A descriptor from (name, type oid[, typmod]) pairs (CreateTemplateTupleDesc +
    TupleDescInitEntry)."""
    attrs = []
    for i, col in enumerate(columns, start=1):
        typmod = col[2] if len(col) > 2 else -1  # type: ignore[misc]
        attrs.append(Attribute.of_type(col[0], col[1], i, typmod))
    return TupleDesc(tuple(attrs))
