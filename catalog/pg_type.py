"""The built-in types — mirrors src/include/catalog/pg_type.dat (PostgreSQL 15).

Each row carries what storage needs (typlen, typbyval, typalign, typstorage) and
what the SQL layer needs (name, category, array type, element type). OIDs are
PostgreSQL's, so RowDescription carries the type OIDs clients expect.

How tusk represents each type's values in Python (the "Datum"):
  bool → bool; int2/int4/int8/oid/xid/cid/regproc/regclass/regtype/regnamespace → int;
  float4/float8 → float; text/varchar/bpchar/name/"char" → str (bpchar keeps its
  padding, as PostgreSQL stores it); timestamp/timestamptz → int microseconds since
  2000-01-01 00:00:00 (UTC for timestamptz), PostgreSQL's own representation;
  numeric → decimal.Decimal (computed values only: not storable in tables yet);
  inet → str as inet's output shows it (pg_stat_activity.client_addr only, no operators);
  int2vector/oidvector and arrays → list; tid → (block, offset) tuple; NULL → None.
"""

from __future__ import annotations

from typing import NamedTuple


class TypeInfo(NamedTuple):
    oid: int
    typname: str
    typlen: int          # -1 varlena, -2 cstring-like (unknown)
    typbyval: bool
    typalign: str        # 'c' char, 's' short (2), 'i' int (4), 'd' double (8)
    typstorage: str      # 'p' plain, 'x' extended, 'm' main
    typcategory: str     # pg_type.typcategory: 'B' bool, 'N' numeric, 'S' string, ...
    typarray: int = 0    # the array type of this element type
    typelem: int = 0     # the element type of this array type
    typispreferred: bool = False


BOOLOID = 16
BYTEAOID = 17
CHAROID = 18
NAMEOID = 19
INT8OID = 20
INT2OID = 21
INT2VECTOROID = 22
INT4OID = 23
REGPROCOID = 24
TEXTOID = 25
OIDOID = 26
TIDOID = 27
XIDOID = 28
CIDOID = 29
OIDVECTOROID = 30
FLOAT4OID = 700
FLOAT8OID = 701
UNKNOWNOID = 705
BPCHAROID = 1042
VARCHAROID = 1043
TIMESTAMPOID = 1114
TIMESTAMPTZOID = 1184
NUMERICOID = 1700
REGCLASSOID = 2205
REGTYPEOID = 2206
RECORDOID = 2249
ANYARRAYOID = 2277
VOIDOID = 2278
ANYELEMENTOID = 2283
PG_LSNOID = 3220
INETOID = 869
REGNAMESPACEOID = 4089
XID8OID = 5069
NAMEARRAYOID = 1003
TEXTARRAYOID = 1009
INT2ARRAYOID = 1005
INT4ARRAYOID = 1007
OIDARRAYOID = 1028

NAMEDATALEN = 64

_ROWS = (
    TypeInfo(BOOLOID, "bool", 1, True, "c", "p", "B", 1000, typispreferred=True),
    TypeInfo(BYTEAOID, "bytea", -1, False, "i", "x", "U", 1001),
    TypeInfo(CHAROID, "char", 1, True, "c", "p", "Z", 1002),
    TypeInfo(NAMEOID, "name", NAMEDATALEN, False, "c", "p", "S", NAMEARRAYOID),
    TypeInfo(INT8OID, "int8", 8, True, "d", "p", "N", 1016),
    TypeInfo(INT2OID, "int2", 2, True, "s", "p", "N", INT2ARRAYOID),
    TypeInfo(INT2VECTOROID, "int2vector", -1, False, "i", "p", "A", 1006, INT2OID),
    TypeInfo(INT4OID, "int4", 4, True, "i", "p", "N", INT4ARRAYOID),
    TypeInfo(REGPROCOID, "regproc", 4, True, "i", "p", "N", 1008),
    TypeInfo(TEXTOID, "text", -1, False, "i", "x", "S", TEXTARRAYOID, typispreferred=True),
    TypeInfo(OIDOID, "oid", 4, True, "i", "p", "N", OIDARRAYOID, typispreferred=True),
    TypeInfo(TIDOID, "tid", 6, False, "s", "p", "U", 1010),
    TypeInfo(XIDOID, "xid", 4, True, "i", "p", "U", 1011),
    TypeInfo(CIDOID, "cid", 4, True, "i", "p", "U", 1012),
    TypeInfo(OIDVECTOROID, "oidvector", -1, False, "i", "p", "A", 1013, OIDOID),
    TypeInfo(FLOAT4OID, "float4", 4, True, "i", "p", "N", 1021),
    TypeInfo(FLOAT8OID, "float8", 8, True, "d", "p", "N", 1022, typispreferred=True),
    TypeInfo(UNKNOWNOID, "unknown", -2, False, "c", "p", "X"),
    TypeInfo(BPCHAROID, "bpchar", -1, False, "i", "x", "S", 1014),
    TypeInfo(VARCHAROID, "varchar", -1, False, "i", "x", "S", 1015),
    TypeInfo(TIMESTAMPOID, "timestamp", 8, True, "d", "p", "D", 1115),
    TypeInfo(TIMESTAMPTZOID, "timestamptz", 8, True, "d", "p", "D", 1185,
             typispreferred=True),
    TypeInfo(NUMERICOID, "numeric", -1, False, "i", "m", "N", 1231),
    TypeInfo(REGCLASSOID, "regclass", 4, True, "i", "p", "N", 2210),
    TypeInfo(REGTYPEOID, "regtype", 4, True, "i", "p", "N", 2211),
    TypeInfo(RECORDOID, "record", -1, False, "d", "x", "P", 2287),
    TypeInfo(ANYARRAYOID, "anyarray", -1, False, "d", "x", "P"),
    TypeInfo(VOIDOID, "void", 4, True, "i", "p", "P"),
    TypeInfo(ANYELEMENTOID, "anyelement", 4, True, "i", "p", "P"),
    TypeInfo(PG_LSNOID, "pg_lsn", 8, True, "d", "p", "U", 3221),
    TypeInfo(INETOID, "inet", -1, False, "i", "m", "I", 1041),  # Datum: the address text
    TypeInfo(REGNAMESPACEOID, "regnamespace", 4, True, "i", "p", "N", 4090),
    TypeInfo(XID8OID, "xid8", 8, True, "d", "p", "U", 271),
    # Array types of the element types above that the SQL layer produces.
    TypeInfo(NAMEARRAYOID, "_name", -1, False, "i", "x", "A", typelem=NAMEOID),
    TypeInfo(TEXTARRAYOID, "_text", -1, False, "i", "x", "A", typelem=TEXTOID),
    TypeInfo(INT2ARRAYOID, "_int2", -1, False, "i", "x", "A", typelem=INT2OID),
    TypeInfo(INT4ARRAYOID, "_int4", -1, False, "i", "x", "A", typelem=INT4OID),
    TypeInfo(OIDARRAYOID, "_oid", -1, False, "i", "x", "A", typelem=OIDOID),
)

TYPES: dict[int, TypeInfo] = {t.oid: t for t in _ROWS}
TYPES_BY_NAME: dict[str, TypeInfo] = {t.typname: t for t in _ROWS}


def type_info(oid: int) -> TypeInfo:
    """The pg_type row of a built-in type (KeyError for an unknown OID)."""
    return TYPES[oid]


# format_type's names for the types SQL spells differently from typname.
SQL_TYPE_NAMES = {
    BOOLOID: "boolean", INT2OID: "smallint", INT4OID: "integer", INT8OID: "bigint",
    FLOAT4OID: "real", FLOAT8OID: "double precision", VARCHAROID: "character varying",
    BPCHAROID: "character", TIMESTAMPOID: "timestamp without time zone",
    TIMESTAMPTZOID: "timestamp with time zone", CHAROID: '"char"',
}


def format_type(oid: int, typmod: int = -1) -> str:
    """format_type_extended: the SQL name of a type, with its modifier."""
    name = SQL_TYPE_NAMES.get(oid) or (TYPES[oid].typname if oid in TYPES else str(oid))
    if typmod >= 0 and oid in (VARCHAROID, BPCHAROID):
        return f"{name}({typmod - 4})"
    if oid in TYPES and TYPES[oid].typelem:
        return format_type(TYPES[oid].typelem) + "[]"
    return name
