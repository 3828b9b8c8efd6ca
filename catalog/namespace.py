"""Schemas and the search path — mirrors src/backend/catalog/namespace.c
(recomputeNamespacePath, RangeVarGetRelidExtended, RangeVarGetCreationNamespace,
RelnameGetRelid, get_relname_relid, LookupExplicitNamespace, current_schemas).

The search path is the search_path setting's schemas in order ("$user" meaning
the schema named like the session user, skipped if there is none; schemas that
do not exist are skipped), with pg_catalog searched first unless the setting
names it explicitly. New objects go into the first schema of the setting that
exists (not the implicit pg_catalog). The computed path is cached until the
setting's text, the session user or the catalog changes
(``invalidate_search_path_cache``, called by the relation cache).

The setting is read from the session's settings object, bound with
``configure(settings)`` (by default utils.session.settings).

Also here: ChooseRelationName (commands/indexcmds.c in PostgreSQL), the
implicit names of indexes and sequences (table_pkey, table_col_key,
table_col_idx, table_col_seq, with a number appended on a clash).

Differences: no temporary schema (pg_temp), no per-object USAGE privilege checks.
"""

from __future__ import annotations

from typing import Any

from catalog import catalog_defs as cd
from catalog.catalog import session
from catalog.pg_type import NAMEDATALEN
from utils import syscache
from utils.elog import PgError

PG_CATALOG_NAMESPACE = cd.PG_CATALOG_NAMESPACE
PG_PUBLIC_NAMESPACE = cd.PG_PUBLIC_NAMESPACE
DEFAULT_SEARCH_PATH = '"$user", public'


class _State:
    settings: Any = None
    key: tuple[str, str] | None = None
    path: list[int] = []            # baseSearchPath, implicit pg_catalog included
    explicit: list[int] = []        # the schemas the setting names that exist
    creation_namespace = 0          # activeCreationNamespace


_st = _State()


def configure(settings: Any) -> None:
    """Bind the session's settings (the search_path GUC)."""
    _st.settings = settings
    _st.key = None


def _search_path_text() -> str:
    settings = _st.settings
    if settings is None:
        from utils import session as usession

        settings = usession.settings
    if settings is None:
        return DEFAULT_SEARCH_PATH
    value = settings.get("search_path")
    return DEFAULT_SEARCH_PATH if value is None else str(value)


def split_identifier_string(text: str, sep: str = ",") -> list[str]:
    """SplitIdentifierString: quoted names keep their case (with "" for a quote),
    unquoted ones are folded to lower case; raises ValueError on a malformed list."""
    out: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            if out:
                raise ValueError("trailing separator")
            return out
        if text[i] == '"':
            j = i + 1
            name = []
            while True:
                k = text.find('"', j)
                if k < 0:
                    raise ValueError("unterminated quoted identifier")
                name.append(text[j:k])
                if k + 1 < n and text[k + 1] == '"':
                    name.append('"')
                    j = k + 2
                    continue
                i = k + 1
                break
            ident = "".join(name)
            if not ident:
                raise ValueError("empty quoted identifier")
        else:
            j = i
            while j < n and text[j] != sep and not text[j].isspace():
                j += 1
            ident = text[i:j].lower()
            if not ident:
                raise ValueError("empty identifier")
            i = j
        out.append(ident)
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return out
        if text[i] != sep:
            raise ValueError("invalid separator")
        i += 1


def _recompute() -> None:
    """recomputeNamespacePath."""
    text = _search_path_text()
    key = (text, session.user_name)
    if _st.key == key:
        return
    try:
        names = split_identifier_string(text)
    except ValueError:
        names = []
    explicit: list[int] = []
    for name in names:
        if name == "$user":
            oid = syscache.namespace_oid(session.user_name) if session.user_name else 0
        else:
            oid = syscache.namespace_oid(name)
        if oid and oid not in explicit:
            explicit.append(oid)
    path = list(explicit)
    if PG_CATALOG_NAMESPACE not in path:
        path.insert(0, PG_CATALOG_NAMESPACE)
    _st.explicit = explicit
    _st.path = path
    _st.creation_namespace = explicit[0] if explicit else 0
    _st.key = key


def invalidate_search_path_cache() -> None:
    """The catalog changed: schemas may have appeared or gone."""
    _st.key = None


def fetch_search_path(include_implicit: bool = True) -> list[int]:
    """fetch_search_path: the schemas searched, in order."""
    _recompute()
    return list(_st.path if include_implicit else _st.explicit)


def current_schemas(include_implicit: bool) -> list[str]:
    """current_schemas(bool): the names of the search path's schemas."""
    names = []
    for oid in fetch_search_path(include_implicit):
        name = syscache.namespace_name(oid)
        if name is not None:
            names.append(name)
    return names


def current_schema() -> str | None:
    """current_schema(): the first schema of the search path that exists."""
    _recompute()
    if not _st.explicit:
        return None
    return syscache.namespace_name(_st.explicit[0])


def get_namespace_oid(name: str, missing_ok: bool = False) -> int:
    """get_namespace_oid / LookupExplicitNamespace: 3F000 if there is none."""
    oid = syscache.namespace_oid(name)
    if not oid and not missing_ok:
        raise PgError("3F000", f'schema "{name}" does not exist')
    return oid


def get_relname_relid(relname: str, namespace_oid: int) -> int:
    """get_relname_relid: the relation named ``relname`` in that schema (0 if none)."""
    c = cd.PG_CLASS.col
    nsp, oid = c["relnamespace"], c["oid"]
    for _tid, row in syscache.search_list(cd.PG_CLASS, "relname", relname):
        if row[nsp] == namespace_oid:
            return row[oid]
    return 0


def relname_get_relid(relname: str) -> int:
    """RelnameGetRelid: the first relation named ``relname`` along the search path."""
    for nsp in fetch_search_path():
        oid = get_relname_relid(relname, nsp)
        if oid:
            return oid
    return 0


def range_var_get_relid(relname: str, schemaname: str | None = None, *,
                        missing_ok: bool = False) -> int:
    """RangeVarGetRelid without the lock: the OID of ``[schema.]relname``; 42P01 if
    there is none (0 with ``missing_ok``; a missing schema is 3F000 unless
    ``missing_ok``)."""
    if schemaname is not None:
        nsp = get_namespace_oid(schemaname, missing_ok)
        oid = get_relname_relid(relname, nsp) if nsp else 0
    else:
        oid = relname_get_relid(relname)
    if not oid and not missing_ok:
        if schemaname is not None:
            raise PgError("42P01", f'relation "{schemaname}.{relname}" does not exist')
        raise PgError("42P01", f'relation "{relname}" does not exist')
    return oid


def get_namespace_name(oid: int) -> str | None:
    """get_namespace_name: a schema's name (None if there is none)."""
    return syscache.namespace_name(oid)


def range_var_get_creation_namespace(schemaname: str | None = None) -> int:
    """RangeVarGetCreationNamespace: where ``CREATE [schema.]name`` puts the object."""
    if schemaname is not None:
        return get_namespace_oid(schemaname)
    _recompute()
    if not _st.creation_namespace:
        raise PgError("3F000", "no schema has been selected to create in")
    return _st.creation_namespace


def regclass_in(text: str) -> int:
    """regclassin: the OID a (possibly qualified, possibly quoted) relation name
    denotes along the search path, or the number itself; 42P01 if none."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        parts = split_identifier_string(text, ".")
    except ValueError:
        parts = []
    if not 1 <= len(parts) <= 3:
        raise PgError("42602", f'invalid name syntax: "{text}"')
    if len(parts) == 3:
        from catalog.catalog import session as s

        if parts[0] != s.database_name:
            raise PgError("0A000", "cross-database references are not implemented: "
                                   f"{text}")
        parts = parts[1:]
    schema, relname = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
    oid = range_var_get_relid(relname, schema, missing_ok=True)
    if not oid:
        raise PgError("42P01", f'relation "{text}" does not exist')
    return oid


def relation_is_visible(relid: int) -> bool:
    """RelationIsVisible: would the relation's bare name find it first?"""
    found = syscache.class_row(relid)
    if found is None:
        return False
    c = cd.PG_CLASS.col
    row = found[1]
    nsp = row[c["relnamespace"]]
    path = fetch_search_path()
    if nsp not in path:
        return False
    return relname_get_relid(row[c["relname"]]) == relid


get_creation_namespace = range_var_get_creation_namespace


# -- names chosen for implicit objects ---------------------------------------------------------

def _clip(name: str, nbytes: int) -> str:
    """pg_mbcliplen: at most ``nbytes`` bytes of ``name``, on a character boundary."""
    raw = name.encode()
    if len(raw) <= nbytes:
        return name
    return raw[:nbytes].decode(errors="ignore")


def make_object_name(name1: str, name2: str | None, label: str | None) -> str:
    """makeObjectName: name1[_name2][_label], shortening name1 and name2 (the
    longer first) to fit NAMEDATALEN - 1 bytes."""
    n1 = len(name1.encode())
    n2 = len(name2.encode()) if name2 else 0
    overhead = (1 if name2 else 0) + (len(label.encode()) + 1 if label else 0)
    avail = NAMEDATALEN - 1 - overhead
    while n1 + n2 > avail:
        if n1 > n2:
            n1 -= 1
        else:
            n2 -= 1
    result = _clip(name1, n1)
    if name2:
        result += "_" + _clip(name2, n2)
    if label:
        result += "_" + label
    return result


def choose_relation_name(name1: str, name2: str | None, label: str, namespace_oid: int
                         ) -> str:
    """ChooseRelationName: make_object_name, then label1, label2, ... until the
    name is free in the schema."""
    passno = 0
    modlabel = label
    while True:
        name = make_object_name(name1, name2, modlabel)
        if not get_relname_relid(name, namespace_oid):
            return name
        passno += 1
        modlabel = f"{label}{passno}"
