"""The system catalogs' row types — mirrors src/include/catalog/pg_*.h (the
CATALOG(...) structs of PostgreSQL 15) and what genbki.pl derives from them.

Each catalog is a CatalogDef: its OID (which is also its relation file number:
tusk has no relation mapper), whether it is shared (lives in global/ and is seen
by every database), and its columns in PostgreSQL's order. Where PostgreSQL has
columns tusk has no use for, a catalog keeps a prefix or subset of them, in the
same order; the ones left out are listed below. The relation cache builds the
catalogs' own descriptors from these definitions (formrdesc: the "nailed"
relations), and initdb writes their rows.

Columns left out (PostgreSQL 15 has them):

    pg_class        relacl (aclitem[]), relpartbound (pg_node_tree); reloptions is
                    ``text`` holding the array's text form ('{fillfactor=90}')
                    instead of text[] (tuples have no text[] codec yet)
    pg_attribute    attacl, attoptions, attfdwoptions, attmissingval
    pg_type         typsubscript, typinput, typoutput, typreceive, typsend, typmodin,
                    typmodout, typanalyze (no pg_proc: functions are built into the
                    executor), typdefaultbin, typdefault, typacl
    pg_namespace    nspacl
    pg_index        indexprs, indpred (no expression or partial indexes)
    pg_database     datacl
    pg_am           amhandler (no pg_proc)
    pg_attrdef      none, but adbin holds the default expression as normalized SQL
                    text the executor re-parses, not a node tree (see catalog/heap.py)
    pg_constraint   confkey, conpfeqop, conppeqop, conffeqop, confdelsetcols,
                    conexclop, conbin (no foreign keys, exclusion or CHECK constraints)
    pg_partitioned_table  partexprs
    pg_tablespace   spcacl, spcoptions
    pg_authid       none
    pg_sequence     none
    pg_depend       none (only the 'a' rows that tie a serial column's sequence to
                    its table are written: tusk has no general dependency tracking)

Deliberate differences: no row types (pg_class.reltype is 0, no composite pg_type
rows), no catalog indexes (lookups are sequential scans of small catalogs through
the relation cache), no pg_proc, pg_operator, pg_opclass (pg_index.indclass holds
zeroes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from access.tupdesc import Attribute, TupleDesc
from catalog import pg_type as t

# -- well-known OIDs (pg_*.dat) ------------------------------------------------------------------

BOOTSTRAP_SUPERUSERID = 10
TEMPLATE1_OID, TEMPLATE0_OID, POSTGRES_OID = 1, 4, 5
PG_CATALOG_NAMESPACE = 11
PG_TOAST_NAMESPACE = 99
PG_PUBLIC_NAMESPACE = 2200
DEFAULTTABLESPACE_OID = 1663
GLOBALTABLESPACE_OID = 1664
HEAP_TABLE_AM_OID = 2
BTREE_AM_OID = 403
DEFAULT_COLLATION_OID = 100
C_COLLATION_OID = 950
PG_UTF8 = 6  # pg_database.encoding

TypeRelationId = 1247
AttributeRelationId = 1249
ProcedureRelationId = 1255
RelationRelationId = 1259
AuthIdRelationId = 1260
DatabaseRelationId = 1262
TableSpaceRelationId = 1213
AccessMethodRelationId = 2601
AttrDefaultRelationId = 2604
ConstraintRelationId = 2606
DependRelationId = 2608
IndexRelationId = 2610
InheritsRelationId = 2611
NamespaceRelationId = 2615
SequenceRelationId = 2224
PartitionedRelationId = 3350


@dataclass(frozen=True)
class CatalogDef:
    """One system catalog: OID (= relfilenode), name, shared or not, columns."""

    oid: int
    relname: str
    shared: bool
    columns: tuple[tuple[str, int], ...]
    desc: TupleDesc = field(init=False, compare=False, repr=False)
    col: dict[str, int] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        attrs = []
        for i, (name, typid) in enumerate(self.columns, start=1):
            info = t.TYPES[typid]
            # Fixed-width columns are NOT NULL, as genbki marks them (BKI_FORCE_NOT_NULL
            # aside); variable-width ones may be null.
            attrs.append(Attribute.of_type(name, typid, i, attnotnull=info.typlen > 0))
        object.__setattr__(self, "desc", TupleDesc(tuple(attrs)))
        object.__setattr__(self, "col", {name: i for i, (name, _) in enumerate(self.columns)})

    @property
    def natts(self) -> int:
        return len(self.columns)

    def row(self, **values: object) -> list[object]:
        """A row in column order from keyword values (a missing column is an error)."""
        return [values[name] for name, _ in self.columns]


_O, _N, _B, _C = t.OIDOID, t.NAMEOID, t.BOOLOID, t.CHAROID
_I2, _I4, _F4, _X, _TX = t.INT2OID, t.INT4OID, t.FLOAT4OID, t.XIDOID, t.TEXTOID

PG_CLASS = CatalogDef(RelationRelationId, "pg_class", False, (
    ("oid", _O), ("relname", _N), ("relnamespace", _O), ("reltype", _O), ("reloftype", _O),
    ("relowner", _O), ("relam", _O), ("relfilenode", _O), ("reltablespace", _O),
    ("relpages", _I4), ("reltuples", _F4), ("relallvisible", _I4), ("reltoastrelid", _O),
    ("relhasindex", _B), ("relisshared", _B), ("relpersistence", _C), ("relkind", _C),
    ("relnatts", _I2), ("relchecks", _I2), ("relhasrules", _B), ("relhastriggers", _B),
    ("relhassubclass", _B), ("relrowsecurity", _B), ("relforcerowsecurity", _B),
    ("relispopulated", _B), ("relreplident", _C), ("relispartition", _B), ("relrewrite", _O),
    ("relfrozenxid", _X), ("relminmxid", _X), ("reloptions", _TX)))

PG_ATTRIBUTE = CatalogDef(AttributeRelationId, "pg_attribute", False, (
    ("attrelid", _O), ("attname", _N), ("atttypid", _O), ("attstattarget", _I4),
    ("attlen", _I2), ("attnum", _I2), ("attndims", _I4), ("attcacheoff", _I4),
    ("atttypmod", _I4), ("attbyval", _B), ("attalign", _C), ("attstorage", _C),
    ("attcompression", _C), ("attnotnull", _B), ("atthasdef", _B), ("atthasmissing", _B),
    ("attidentity", _C), ("attgenerated", _C), ("attisdropped", _B), ("attislocal", _B),
    ("attinhcount", _I4), ("attcollation", _O)))

PG_TYPE = CatalogDef(TypeRelationId, "pg_type", False, (
    ("oid", _O), ("typname", _N), ("typnamespace", _O), ("typowner", _O), ("typlen", _I2),
    ("typbyval", _B), ("typtype", _C), ("typcategory", _C), ("typispreferred", _B),
    ("typisdefined", _B), ("typdelim", _C), ("typrelid", _O), ("typelem", _O),
    ("typarray", _O), ("typalign", _C), ("typstorage", _C), ("typnotnull", _B),
    ("typbasetype", _O), ("typtypmod", _I4), ("typndims", _I4), ("typcollation", _O)))

PG_NAMESPACE = CatalogDef(NamespaceRelationId, "pg_namespace", False, (
    ("oid", _O), ("nspname", _N), ("nspowner", _O)))

PG_INDEX = CatalogDef(IndexRelationId, "pg_index", False, (
    ("indexrelid", _O), ("indrelid", _O), ("indnatts", _I2), ("indnkeyatts", _I2),
    ("indisunique", _B), ("indnullsnotdistinct", _B), ("indisprimary", _B),
    ("indisexclusion", _B), ("indimmediate", _B), ("indisclustered", _B), ("indisvalid", _B),
    ("indcheckxmin", _B), ("indisready", _B), ("indislive", _B), ("indisreplident", _B),
    ("indkey", t.INT2VECTOROID), ("indcollation", t.OIDVECTOROID),
    ("indclass", t.OIDVECTOROID), ("indoption", t.INT2VECTOROID)))

PG_DATABASE = CatalogDef(DatabaseRelationId, "pg_database", True, (
    ("oid", _O), ("datname", _N), ("datdba", _O), ("encoding", _I4), ("datlocprovider", _C),
    ("datistemplate", _B), ("datallowconn", _B), ("datconnlimit", _I4),
    ("datfrozenxid", _X), ("datminmxid", _X), ("dattablespace", _O), ("datcollate", _TX),
    ("datctype", _TX), ("daticulocale", _TX), ("datcollversion", _TX)))

PG_AUTHID = CatalogDef(AuthIdRelationId, "pg_authid", True, (
    ("oid", _O), ("rolname", _N), ("rolsuper", _B), ("rolinherit", _B),
    ("rolcreaterole", _B), ("rolcreatedb", _B), ("rolcanlogin", _B), ("rolreplication", _B),
    ("rolbypassrls", _B), ("rolconnlimit", _I4), ("rolpassword", _TX),
    ("rolvaliduntil", t.TIMESTAMPTZOID)))

PG_TABLESPACE = CatalogDef(TableSpaceRelationId, "pg_tablespace", True, (
    ("oid", _O), ("spcname", _N), ("spcowner", _O)))

PG_AM = CatalogDef(AccessMethodRelationId, "pg_am", False, (
    ("oid", _O), ("amname", _N), ("amtype", _C)))

PG_ATTRDEF = CatalogDef(AttrDefaultRelationId, "pg_attrdef", False, (
    ("oid", _O), ("adrelid", _O), ("adnum", _I2), ("adbin", _TX)))

PG_CONSTRAINT = CatalogDef(ConstraintRelationId, "pg_constraint", False, (
    ("oid", _O), ("conname", _N), ("connamespace", _O), ("contype", _C),
    ("condeferrable", _B), ("condeferred", _B), ("convalidated", _B), ("conrelid", _O),
    ("contypid", _O), ("conindid", _O), ("conparentid", _O), ("confrelid", _O),
    ("confupdtype", _C), ("confdeltype", _C), ("confmatchtype", _C), ("conislocal", _B),
    ("coninhcount", _I4), ("connoinherit", _B), ("conkey", t.INT2ARRAYOID)))

PG_INHERITS = CatalogDef(InheritsRelationId, "pg_inherits", False, (
    ("inhrelid", _O), ("inhparent", _O), ("inhseqno", _I4), ("inhdetachpending", _B)))

PG_PARTITIONED_TABLE = CatalogDef(PartitionedRelationId, "pg_partitioned_table", False, (
    ("partrelid", _O), ("partstrat", _C), ("partnatts", _I2), ("partdefid", _O),
    ("partattrs", t.INT2VECTOROID), ("partclass", t.OIDVECTOROID),
    ("partcollation", t.OIDVECTOROID)))

PG_SEQUENCE = CatalogDef(SequenceRelationId, "pg_sequence", False, (
    ("seqrelid", _O), ("seqtypid", _O), ("seqstart", t.INT8OID), ("seqincrement", t.INT8OID),
    ("seqmax", t.INT8OID), ("seqmin", t.INT8OID), ("seqcache", t.INT8OID), ("seqcycle", _B)))

PG_DEPEND = CatalogDef(DependRelationId, "pg_depend", False, (
    ("classid", _O), ("objid", _O), ("objsubid", _I4), ("refclassid", _O), ("refobjid", _O),
    ("refobjsubid", _I4), ("deptype", _C)))

CATALOGS: tuple[CatalogDef, ...] = (
    PG_TYPE, PG_ATTRIBUTE, PG_CLASS, PG_AUTHID, PG_DATABASE, PG_TABLESPACE, PG_AM,
    PG_ATTRDEF, PG_CONSTRAINT, PG_DEPEND, PG_INDEX, PG_INHERITS, PG_NAMESPACE, PG_SEQUENCE,
    PG_PARTITIONED_TABLE)
CATALOG_BY_OID: dict[int, CatalogDef] = {c.oid: c for c in CATALOGS}
CATALOG_BY_NAME: dict[str, CatalogDef] = {c.relname: c for c in CATALOGS}


def is_catalog_relation_oid(oid: int) -> bool:
    """IsCatalogRelationOid for tusk: the system catalogs are exactly CATALOGS."""
    return oid in CATALOG_BY_OID


def is_shared_relation(oid: int) -> bool:
    """IsSharedRelation."""
    c = CATALOG_BY_OID.get(oid)
    return c is not None and c.shared


# -- system attributes (sysattr.h, heap.c's SysAtt) ----------------------------------------------

SelfItemPointerAttributeNumber = -1
MinTransactionIdAttributeNumber = -2
MinCommandIdAttributeNumber = -3
MaxTransactionIdAttributeNumber = -4
MaxCommandIdAttributeNumber = -5
TableOidAttributeNumber = -6

SYSTEM_ATTRIBUTES: tuple[tuple[str, int, int], ...] = (
    ("ctid", t.TIDOID, SelfItemPointerAttributeNumber),
    ("xmin", t.XIDOID, MinTransactionIdAttributeNumber),
    ("cmin", t.CIDOID, MinCommandIdAttributeNumber),
    ("xmax", t.XIDOID, MaxTransactionIdAttributeNumber),
    ("cmax", t.CIDOID, MaxCommandIdAttributeNumber),
    ("tableoid", t.OIDOID, TableOidAttributeNumber),
)
SYSTEM_ATTRIBUTE_NAMES = frozenset(name for name, _, _ in SYSTEM_ATTRIBUTES)

_COLLATABLE = {t.TEXTOID: DEFAULT_COLLATION_OID, t.VARCHAROID: DEFAULT_COLLATION_OID,
               t.BPCHAROID: DEFAULT_COLLATION_OID, t.NAMEOID: C_COLLATION_OID}


def type_collation(typid: int) -> int:
    """pg_type.typcollation: the default collation of collatable types, else 0."""
    return _COLLATABLE.get(typid, 0)


def attribute_row(relid: int, name: str, typid: int, attnum: int, typmod: int = -1,
                  notnull: bool = False, hasdef: bool = False) -> list[object]:
    """A pg_attribute row for a column (or, with a negative attnum, a system column)."""
    info = t.TYPES[typid]
    return [relid, name, typid, -1, info.typlen, attnum, 0, -1, typmod, info.typbyval,
            info.typalign, info.typstorage if attnum > 0 else "p", "", notnull, hasdef,
            False, "", "", False, True, 0, type_collation(typid)]


def class_row(oid: int, relname: str, relnamespace: int, relkind: str, relnatts: int, *,
              relowner: int = BOOTSTRAP_SUPERUSERID, relfilenode: int | None = None,
              reltablespace: int = 0, relisshared: bool = False,
              relpersistence: str = "p", relhasindex: bool = False,
              reloptions: str | None = None, relfrozenxid: int = 0) -> list[object]:
    """A pg_class row with PostgreSQL's defaults for what tusk does not track."""
    relam = {"r": HEAP_TABLE_AM_OID, "i": BTREE_AM_OID, "m": HEAP_TABLE_AM_OID,
             "t": HEAP_TABLE_AM_OID}.get(relkind, 0)
    has_storage = relkind in ("r", "i", "S", "m", "t")
    return [oid, relname, relnamespace, 0, 0, relowner, relam,
            (oid if relfilenode is None else relfilenode) if has_storage else 0,
            reltablespace, 0, -1.0, 0, 0, relhasindex, relisshared, relpersistence, relkind,
            relnatts, 0, False, False, False, False, False, True,
            "n" if relkind == "i" else "d", False, 0,
            relfrozenxid if relkind in ("r", "m", "t") else 0, 1 if relkind in ("r", "m", "t")
            else 0, reloptions]


def type_row(info: t.TypeInfo) -> list[object]:
    """A pg_type row for a built-in type of catalog/pg_type.py."""
    typtype = "p" if info.typcategory in ("P", "X") else "b"
    return [info.oid, info.typname, PG_CATALOG_NAMESPACE, BOOTSTRAP_SUPERUSERID, info.typlen,
            info.typbyval, typtype, info.typcategory, info.typispreferred, True, ",", 0,
            info.typelem, info.typarray, info.typalign, info.typstorage, False, 0, -1, 0,
            type_collation(info.oid)]
