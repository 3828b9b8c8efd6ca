"""Relation file identity and paths — mirrors src/include/storage/relfilenode.h,
src/include/common/relpath.h and src/common/relpath.c (PostgreSQL 15 naming).

A relation fork lives in ``base/<db>/<relfilenode>[_<fork>][.<segno>]`` (default
tablespace), ``global/<relfilenode>...`` (shared catalogs) or
``pg_tblspc/<spc>/PG_15_<catversion>/<db>/<relfilenode>...``; a temporary relation
of backend B is ``t<B>_<relfilenode>``. Backend ids are ``None`` for permanent
relations (PostgreSQL's InvalidBackendId).
"""

from __future__ import annotations

from typing import NamedTuple

from catalog.pg_control import CATALOG_VERSION_NO

# ForkNumber (relpath.h)
InvalidForkNumber = -1
MAIN_FORKNUM = 0
FSM_FORKNUM = 1
VISIBILITYMAP_FORKNUM = 2
INIT_FORKNUM = 3
MAX_FORKNUM = INIT_FORKNUM
ALL_FORKS = (MAIN_FORKNUM, FSM_FORKNUM, VISIBILITYMAP_FORKNUM, INIT_FORKNUM)

FORK_NAMES = ("main", "fsm", "vm", "init")  # forkNames[]

# pg_tablespace OIDs
DEFAULTTABLESPACE_OID = 1663
GLOBALTABLESPACE_OID = 1664

TABLESPACE_VERSION_DIRECTORY = f"PG_15_{CATALOG_VERSION_NO}"

InvalidBlockNumber = 0xFFFFFFFF


class RelFileNode(NamedTuple):
    """Physical identity of a relation: tablespace, database and relfilenode OIDs."""

    spc: int
    db: int
    rel: int


def forkname_to_number(name: str) -> int:
    """forkname_to_number: 'main' -> 0, ... (ValueError for an unknown name)."""
    try:
        return FORK_NAMES.index(name)
    except ValueError:
        raise ValueError(f'invalid fork name "{name}"') from None


def get_database_path(db: int, spc: int) -> str:
    """GetDatabasePath: the directory holding a database's files in a tablespace."""
    if spc == GLOBALTABLESPACE_OID:
        return "global"
    if spc == DEFAULTTABLESPACE_OID:
        return f"base/{db}"
    return f"pg_tblspc/{spc}/{TABLESPACE_VERSION_DIRECTORY}/{db}"


def relpath(rnode: RelFileNode, forknum: int = MAIN_FORKNUM, backend: int | None = None) -> str:
    """relpath()/GetRelationPath: the first segment's path, relative to the data dir."""
    name = f"{rnode.rel}" if backend is None else f"t{backend}_{rnode.rel}"
    if forknum != MAIN_FORKNUM:
        name = f"{name}_{FORK_NAMES[forknum]}"
    return f"{get_database_path(rnode.db, rnode.spc)}/{name}"


def segment_path(base: str, segno: int) -> str:
    """_mdfd_segpath: ``base`` for segment 0, ``base.N`` after."""
    return f"{base}.{segno}" if segno else base
