"""The bootstrap catalog: roles and databases created by initdb.

Mirrors what initdb's bootstrap mode puts into pg_authid and pg_database,
kept as two small JSON files under global/ until the SQL layer brings real
catalog relations (the SQL issue replaces this module's storage, not its
interface). Reads are cheap and happen once per connection.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

BOOTSTRAP_SUPERUSERID = 10
TEMPLATE1_OID, TEMPLATE0_OID, POSTGRES_OID = 1, 4, 5


@dataclass(frozen=True)
class Role:
    oid: int
    rolname: str
    rolsuper: bool
    rolcanlogin: bool = True


@dataclass(frozen=True)
class Database:
    oid: int
    datname: str
    datallowconn: bool = True
    datistemplate: bool = False


def _path(datadir: str, name: str) -> str:
    return os.path.join(datadir, "global", name)


def write_bootstrap_catalog(datadir: str, superuser: str) -> None:
    roles = [Role(BOOTSTRAP_SUPERUSERID, superuser, True)]
    dbs = [Database(TEMPLATE1_OID, "template1", True, True),
           Database(TEMPLATE0_OID, "template0", False, True),
           Database(POSTGRES_OID, "postgres")]
    for fname, rows in (("pg_authid.json", roles), ("pg_database.json", dbs)):
        with open(_path(datadir, fname), "w") as f:
            json.dump([r.__dict__ for r in rows], f, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())


def _load(datadir: str, fname: str) -> list[dict]:
    with open(_path(datadir, fname)) as f:
        return json.load(f)


def lookup_role(datadir: str, name: str) -> Role | None:
    for row in _load(datadir, "pg_authid.json"):
        if row["rolname"] == name:
            return Role(**row)
    return None


def lookup_database(datadir: str, name: str) -> Database | None:
    for row in _load(datadir, "pg_database.json"):
        if row["datname"] == name:
            return Database(**row)
    return None


def bootstrap_superuser(datadir: str) -> str:
    for row in _load(datadir, "pg_authid.json"):
        if row["oid"] == BOOTSTRAP_SUPERUSERID:
            return row["rolname"]
    raise LookupError("no bootstrap superuser")
