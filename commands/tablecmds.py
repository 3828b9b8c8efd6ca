"""CREATE TABLE, DROP TABLE / INDEX, TRUNCATE, ALTER TABLE ... ADD PRIMARY KEY /
UNIQUE, CREATE INDEX — mirrors src/backend/commands/tablecmds.c (DefineRelation,
RemoveRelations, ExecuteTruncate, ATExecAddIndexConstraint), indexcmds.c
(DefineIndex) and parser/parse_utilcmd.c (transformCreateStmt: serial columns,
column and table constraints).

The catalog work (pg_class, pg_attribute, pg_index rows, storage, WAL) is
catalog/heap.py's and catalog/index.py's; this module turns statements into
those calls with PostgreSQL's checks, locks and messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from catalog import pg_type as t
from parser.parse_expr import ParseState, type_from_typename
from utils import elog
from utils.elog import PgError

ACCESS_EXCLUSIVE = 8
SHARE = 5

Runner = Callable[[Any, Sequence[Any]], tuple[list, str]]

_SERIAL = {"serial": t.INT4OID, "serial4": t.INT4OID, "bigserial": t.INT8OID,
           "serial8": t.INT8OID, "smallserial": t.INT2OID, "serial2": t.INT2OID}


@dataclass
class ColumnSpec:
    name: str
    typid: int
    typmod: int = -1
    notnull: bool = False
    default: str | None = None
    serial: bool = False


def _names(node_list: list[dict[str, Any]]) -> list[str]:
    return [n["String"]["sval"] for n in node_list]


def _default_texts(src: bytes, relname_location: int) -> dict[str, str]:
    """Column name → DEFAULT expression as SQL text, deparsed by pglast from the
    statement (pg_attrdef keeps the expression; see catalog/heap.py)."""
    from pglast import parse_sql
    from pglast.stream import RawStream

    out: dict[str, str] = {}
    stmt = parse_sql(src.decode())
    for raw in stmt:
        node = raw.stmt
        if type(node).__name__ != "CreateStmt":
            continue
        if node.relation.location != relname_location:
            continue
        for elt in node.tableElts or ():
            if type(elt).__name__ != "ColumnDef":
                continue
            for c in elt.constraints or ():
                if c.contype.name == "CONSTR_DEFAULT":
                    out[elt.colname] = RawStream()(c.raw_expr)
    return out


def _fillfactor(options: list[dict[str, Any]], kind: str) -> int | None:
    ff = None
    for node in options or []:
        d = node["DefElem"]
        name = d["defname"]
        if name != "fillfactor" or d.get("defnamespace"):
            raise PgError("22023", f'unrecognized parameter "{name}"')
        arg = d.get("arg", {})
        v = arg.get("Integer", {}).get("ival") if "Integer" in arg else None
        if v is None:
            sval = arg.get("String", {}).get("sval")
            if sval is None or not sval.isdigit():
                raise PgError("22023", f'invalid value for integer option "fillfactor": {sval}')
            v = int(sval)
        low = 10 if kind == "r" else 10
        if not low <= v <= 100:
            raise PgError("22023", f'value {v} out of bounds for option "fillfactor"',
                          detail=f"Valid values are between \"{low}\" and \"100\".")
        ff = v
    return ff


# =============================================================================================
# CREATE TABLE
# =============================================================================================

def create_table(body: dict[str, Any], src: bytes) -> Runner:
    rv = body["relation"]
    for key, what in (("inhRelations", "INHERITS"), ("partspec", "PARTITION BY"),
                      ("partbound", "PARTITION OF"), ("ofTypename", "OF type"),
                      ("tablespacename", "TABLESPACE")):
        if body.get(key):
            raise PgError("0A000", f"CREATE TABLE ... {what} is not supported")
    if rv.get("relpersistence", "p") != "p":
        raise PgError("0A000", "temporary and unlogged tables are not supported")
    fillfactor = _fillfactor(body.get("options", []), "r")

    def run(s: Any, _p: Sequence[Any]) -> tuple[list, str]:
        from catalog import heap, namespace
        from utils import relcache

        relname = rv["relname"]
        nsp = namespace.range_var_get_creation_namespace(rv.get("schemaname"))
        if relcache.relname_get_relid(relname, nsp) is not None:
            if body.get("if_not_exists"):
                elog.notice(f'relation "{relname}" already exists, skipping',
                            sqlstate="42P07")
                return [], "CREATE TABLE"
            raise PgError("42P07", f'relation "{relname}" already exists')
        columns, pkey, uniques = _columns_and_constraints(body, src, relname)
        for col in columns:
            if col.serial:
                seqname = namespace.choose_relation_name(relname, col.name, "seq", nsp)
                from commands import sequence

                sequence.create_sequence(seqname, nsp, col.typid, owned_by=(relname, col.name))
                col.default = f"nextval('{_quote_literal(seqname)}'::regclass)"
        oid = heap.heap_create_with_catalog(
            relname, nsp, [(c.name, c.typid, c.typmod, c.notnull, c.default) for c in columns],
            relkind="r", fillfactor=fillfactor)
        names = [c.name for c in columns]
        for keys, primary, conname in ([(pkey[0], True, pkey[1])] if pkey else []) + \
                [(u, False, n) for u, n in uniques]:
            _add_index_constraint(oid, relname, names, keys, primary, conname, nsp)
        return [], "CREATE TABLE"
    return run


def _quote_literal(s: str) -> str:
    return s.replace("'", "''")


def _check_default(ps: ParseState, raw_expr: dict[str, Any], col: ColumnSpec) -> None:
    """cookDefault: the expression must analyse and be assignable to the column."""
    from parser import parse_expr as pe

    ps.expr_kind = "DEFAULT"
    e = pe.transform_expr(ps, raw_expr)
    if pe.coerce_to_target_type(ps, e, col.typid, col.typmod, "assignment") is None:
        raise ps.error("42804", f'column "{col.name}" is of type '
                                f"{t.format_type(col.typid, col.typmod)} but default expression "
                                f"is of type {t.format_type(e.type)}", e.location,
                       hint="You will need to rewrite or cast the expression.")


def _columns_and_constraints(body: dict[str, Any], src: bytes, relname: str
                             ) -> tuple[list[ColumnSpec], tuple[list[str], str | None] | None,
                                        list[tuple[list[str], str | None]]]:
    ps = ParseState(src)
    key_locations: dict[int, int] = {}
    columns: list[ColumnSpec] = []
    pkey: tuple[list[str], str | None] | None = None
    uniques: list[tuple[list[str], str | None]] = []
    defaults: dict[str, str] | None = None
    for elt in body.get("tableElts", []):
        (kind, node), = elt.items()
        if kind == "ColumnDef":
            name = node["colname"]
            if any(c.name == name for c in columns):
                raise PgError("42701", f'column "{name}" specified more than once')
            tn = node["typeName"]
            tnames = _names(tn["names"])
            serial = len(tnames) == 1 and tnames[0] in _SERIAL and not tn.get("arrayBounds")
            if serial:
                typid, typmod = _SERIAL[tnames[0]], -1
            else:
                typid, typmod = type_from_typename(tn, ps)
                if typid in (t.NUMERICOID, t.UNKNOWNOID, t.VOIDOID, t.RECORDOID) or \
                        t.TYPES[typid].typcategory == "P":
                    raise PgError("0A000", f"columns of type {t.format_type(typid)} are not "
                                           "supported")
            col = ColumnSpec(name, typid, typmod, notnull=serial, serial=serial)
            for c in node.get("constraints", []):
                con = c["Constraint"]
                ct = con["contype"]
                if ct == "CONSTR_NOTNULL":
                    col.notnull = True
                elif ct == "CONSTR_NULL":
                    col.notnull = False
                elif ct == "CONSTR_DEFAULT":
                    if serial:
                        raise PgError("42601", f'multiple default values specified for column '
                                               f'"{name}" of table "{relname}"')
                    if defaults is None:
                        defaults = _default_texts(src, body["relation"].get("location", -1))
                    col.default = defaults[name]
                    _check_default(ps, con["raw_expr"], col)
                elif ct == "CONSTR_PRIMARY":
                    if pkey is not None:
                        raise ps.error("42P16", f'multiple primary keys for table "{relname}" '
                                                "are not allowed", con.get("location"))
                    pkey = ([name], con.get("conname"))
                elif ct == "CONSTR_UNIQUE":
                    uniques.append(([name], con.get("conname")))
                else:
                    raise PgError("0A000", f"constraint {ct.removeprefix('CONSTR_')} is not "
                                           "supported")
            columns.append(col)
        elif kind == "Constraint":
            ct = node["contype"]
            keys = _names(node.get("keys", []))
            key_locations[id(keys)] = node.get("location", -1)
            if ct == "CONSTR_PRIMARY":
                if pkey is not None:
                    raise ps.error("42P16", f'multiple primary keys for table "{relname}" are '
                                            "not allowed", node.get("location"))
                pkey = (keys, node.get("conname"))
            elif ct == "CONSTR_UNIQUE":
                uniques.append((keys, node.get("conname")))
            else:
                raise PgError("0A000", f"constraint {ct.removeprefix('CONSTR_')} is not "
                                       "supported")
        else:
            raise PgError("0A000", f"{kind} in CREATE TABLE is not supported")
    names = [c.name for c in columns]
    for keys, _ in ([pkey] if pkey else []) + uniques:
        for k in keys:
            if k not in names:
                raise ps.error("42703", f'column "{k}" named in key does not exist',
                               key_locations.get(id(keys)))
    if pkey is not None:
        for k in pkey[0]:
            columns[names.index(k)].notnull = True
    return columns, pkey, uniques


def _add_index_constraint(heap_oid: int, relname: str, colnames: list[str], keys: list[str],
                          primary: bool, conname: str | None, nsp: int) -> int:
    from catalog import index, namespace

    attnums = []
    for k in keys:
        if k not in colnames:
            raise PgError("42703", f'column "{k}" named in key does not exist')
        attnums.append(colnames.index(k) + 1)
    if conname is None:
        if primary:
            conname = namespace.choose_relation_name(relname, None, "pkey", nsp)
        else:
            conname = namespace.choose_relation_name(relname, "_".join(keys), "key", nsp)
    with _index_build_errors(heap_oid, conname):
        return index.index_create(heap_oid, conname, attnums, unique=True, primary=primary,
                                  constraint=True)


@contextmanager
def _index_build_errors(heap_oid: int, index_name: str) -> Iterator[None]:
    """A unique index build's 23505 names schema, table and constraint, as
    PostgreSQL's does."""
    try:
        yield
    except PgError as err:
        if err.sqlstate == "23505" and err.table_name is None:
            from utils import relcache

            rel = relcache.relation_open(heap_oid, 1)
            err.schema_name, err.table_name = _schema_name(rel), rel.relname
            err.constraint_name = index_name
        raise


def _schema_name(rel: Any) -> str:
    from catalog import namespace

    return namespace.get_namespace_name(rel.relnamespace) or ""


# =============================================================================================
# CREATE INDEX, ALTER TABLE ... ADD PRIMARY KEY / UNIQUE
# =============================================================================================

def create_index(body: dict[str, Any]) -> Runner:
    if body.get("accessMethod", "btree") != "btree":
        raise PgError("0A000", f'access method "{body["accessMethod"]}" is not supported')
    for key, what in (("whereClause", "partial indexes"), ("indexIncludingParams", "INCLUDE"),
                      ("concurrent", "CONCURRENTLY"), ("tableSpace", "TABLESPACE")):
        if body.get(key):
            raise PgError("0A000", f"{what} is not supported")
    keys = []
    for p in body.get("indexParams", []):
        elem = p["IndexElem"]
        if "name" not in elem:
            raise PgError("0A000", "expression indexes are not supported")
        if elem.get("ordering", "SORTBY_DEFAULT") == "SORTBY_DESC" or \
                elem.get("nulls_ordering", "SORTBY_NULLS_DEFAULT") != "SORTBY_NULLS_DEFAULT":
            raise PgError("0A000", "index column ordering options are not supported")
        keys.append(elem["name"])
    rv = body["relation"]

    def run(s: Any, _p: Sequence[Any]) -> tuple[list, str]:
        from catalog import index, namespace
        from utils import relcache

        rel = _open_table(rv, SHARE)
        colnames = [a.attname for a in rel.desc.attrs if not a.attisdropped]
        attnums = []
        for k in keys:
            if k not in colnames:
                raise PgError("42703", f'column "{k}" does not exist')
            attnums.append(colnames.index(k) + 1)
        name = body.get("idxname")
        if name is None:
            name = namespace.choose_relation_name(rel.relname, "_".join(keys), "idx",
                                                  rel.relnamespace)
        elif relcache.relname_get_relid(name, rel.relnamespace) is not None:
            if body.get("if_not_exists"):
                elog.notice(f'relation "{name}" already exists, skipping', sqlstate="42P07")
                return [], "CREATE INDEX"
            raise PgError("42P07", f'relation "{name}" already exists')
        with _index_build_errors(rel.oid, name):
            index.index_create(rel.oid, name, attnums, unique=bool(body.get("unique")),
                               primary=False, constraint=False)
        return [], "CREATE INDEX"
    return run


def alter_table(body: dict[str, Any]) -> Runner:
    rv = body["relation"]
    cmds = [c["AlterTableCmd"] for c in body.get("cmds", [])]
    for cmd in cmds:
        sub = cmd["subtype"]
        if sub != "AT_AddConstraint" or cmd["def"]["Constraint"]["contype"] not in (
                "CONSTR_PRIMARY", "CONSTR_UNIQUE"):
            raise PgError("0A000", f"ALTER TABLE {sub.removeprefix('AT_')} is not supported")

    def run(s: Any, _p: Sequence[Any]) -> tuple[list, str]:
        from utils import relcache

        rel = _open_table(rv, ACCESS_EXCLUSIVE, missing_ok=bool(body.get("missing_ok")))
        if rel is None:
            elog.notice(f'relation "{rv["relname"]}" does not exist, skipping')
            return [], "ALTER TABLE"
        for cmd in cmds:
            con = cmd["def"]["Constraint"]
            keys = _names(con.get("keys", []))
            primary = con["contype"] == "CONSTR_PRIMARY"
            rel = relcache.relation_open(rel.oid, ACCESS_EXCLUSIVE)
            colnames = [a.attname for a in rel.desc.attrs if not a.attisdropped]
            for k in keys:
                if k not in colnames:
                    raise PgError("42703", f'column "{k}" of relation "{rel.relname}" does '
                                           "not exist")
            if primary and any(relcache.relation_open(i, 1).index.indisprimary
                               for i in rel.index_oids):
                raise PgError("42P16", f'multiple primary keys for table "{rel.relname}" are '
                                       "not allowed")
            if primary:
                _set_not_null(rel, keys, colnames)
            _add_index_constraint(rel.oid, rel.relname, colnames, keys, primary,
                                  con.get("conname"), rel.relnamespace)
        return [], "ALTER TABLE"
    return run


def _set_not_null(rel: Any, keys: list[str], colnames: list[str]) -> None:
    """A primary key makes its columns NOT NULL; existing NULLs are an error."""
    from access import heapam
    from catalog import heap
    from utils import snapmgr

    idx = []
    for k in keys:
        if k not in colnames:
            raise PgError("42703", f'column "{k}" of relation "{rel.relname}" does not exist')
        idx.append(colnames.index(k))
    attrs = [a for a in rel.desc.attrs if not a.attisdropped]
    todo = [i for i in idx if not attrs[i].attnotnull]
    if not todo:
        return
    for _, values in heapam.heap_scan(rel, snapmgr.get_latest_snapshot()):
        for i in todo:
            if values[i] is None:
                err = PgError("23502", f'column "{colnames[i]}" of relation "{rel.relname}" '
                                       "contains null values")
                err.schema_name = _schema_name(rel)
                err.table_name, err.column_name = rel.relname, colnames[i]
                raise err
    heap.set_attnotnull(rel.oid, [attrs[i].attnum for i in todo])


# =============================================================================================
# DROP, TRUNCATE
# =============================================================================================

_DROP_KINDS = {"OBJECT_TABLE": ("r", "table"), "OBJECT_INDEX": ("i", "index"),
               "OBJECT_SEQUENCE": ("S", "sequence"), "OBJECT_VIEW": ("v", "view")}


def drop(body: dict[str, Any]) -> Runner:
    kind = body.get("removeType")
    if kind not in _DROP_KINDS or kind == "OBJECT_VIEW":
        from tcop.utility import command_tag

        raise PgError("0A000", f'"{command_tag("DropStmt", body)}" is not supported')
    relkind, what = _DROP_KINDS[kind]
    objects = [_names(o["List"]["items"]) for o in body.get("objects", [])]
    missing_ok = bool(body.get("missing_ok"))
    cascade = body.get("behavior") == "DROP_CASCADE"
    tag = "DROP " + what.upper()

    def run(s: Any, _p: Sequence[Any]) -> tuple[list, str]:
        from catalog import heap, index
        from utils import relcache

        rels = []
        for names in objects:
            schema, name = (names[-2], names[-1]) if len(names) > 1 else (None, names[0])
            rel = relcache.relation_open_by_name(name, schema, ACCESS_EXCLUSIVE)
            shown = ".".join(names)
            if rel is None:
                if missing_ok:
                    elog.notice(f'{what} "{shown}" does not exist, skipping')
                    continue
                # DROP INDEX of a missing index is undefined_object, the others
                # undefined_table (RemoveRelations' dropmsgstringarray).
                raise PgError("42704" if relkind == "i" else "42P01",
                              f'{what} "{shown}" does not exist')
            if rel.relkind != relkind:
                hint = {"r": "DROP TABLE", "i": "DROP INDEX", "S": "DROP SEQUENCE",
                        "v": "DROP VIEW"}.get(rel.relkind)
                raise PgError("42809", f'"{rel.relname}" is not {_article(what)}',
                              hint=f"Use {hint} to remove {_article(_kind_name(rel.relkind))}."
                              if hint else None)
            if relkind == "i" and rel.index is not None and _backs_constraint(rel):
                table = relcache.relation_open(rel.index.indrelid, 1)
                con = rel.relname
                raise PgError("2BP01", f"cannot drop index {rel.relname} because constraint "
                                       f"{con} on table {table.relname} requires it",
                              hint=f"You can drop constraint {con} on table {table.relname} "
                                   "instead.")
            rels.append(rel)
        from utils import pgstat_relation

        for rel in rels:
            # pgstat_drop_relation: the statistics go when the drop commits.
            pgstat_relation.pgstat_drop_relation(rel)
            for index_oid in rel.index_oids:
                pgstat_relation.pgstat_drop_relation_oid(index_oid)
            if relkind == "r":
                heap.heap_drop_with_catalog(rel.oid, cascade=cascade)
            elif relkind == "i":
                index.index_drop(rel.oid)
            else:
                heap.heap_drop_with_catalog(rel.oid, cascade=cascade)
        return [], tag
    return run


def _backs_constraint(rel: Any) -> bool:
    from catalog import index

    return index.index_has_constraint(rel.oid)


def _article(what: str) -> str:
    return ("an " if what[0] in "aeiou" else "a ") + what


def _kind_name(relkind: str) -> str:
    return {"r": "table", "i": "index", "S": "sequence", "v": "view"}.get(relkind, "relation")


def _open_table(rv: dict[str, Any], lockmode: int, missing_ok: bool = False) -> Any:
    from utils import relcache

    rel = relcache.relation_open_by_name(rv["relname"], rv.get("schemaname"), lockmode)
    if rel is None:
        if missing_ok:
            return None
        name = f"{rv['schemaname']}.{rv['relname']}" if rv.get("schemaname") else rv["relname"]
        raise PgError("42P01", f'relation "{name}" does not exist')
    if rel.relkind != "r":
        raise PgError("42809", f'"{rel.relname}" is not a table')
    return rel


def truncate(body: dict[str, Any]) -> Runner:
    rvs = [r["RangeVar"] for r in body.get("relations", [])]
    if body.get("restart_seqs"):
        raise PgError("0A000", "TRUNCATE ... RESTART IDENTITY is not supported")

    def run(s: Any, _p: Sequence[Any]) -> tuple[list, str]:
        from catalog import heap
        from utils import pgstat_relation

        rels = [_open_table(rv, ACCESS_EXCLUSIVE) for rv in rvs]
        for rel in rels:
            heap.truncate_relation(rel.oid)
            pgstat_relation.pgstat_count_truncate(rel)
        return [], "TRUNCATE TABLE"
    return run
