"""``tusk_ctl verify -D DIR``: check the relation files of a stopped cluster —
in the spirit of PostgreSQL's amcheck (verify_heapam, bt_index_check) and
pg_checksums --check.

Every relation of every database (and the shared catalogs) is read from disk:
each page's header must be sane and, with data checksums on, its checksum must
match; each B-tree index must pass access/nbtree/nbtverify.py's structure checks
(ordering, high keys, sibling and parent links). Problems name relation, block
and what is wrong; the exit code is 1 if there is any.

Not yet (issue 7): heap-level checks (line pointers, HOT chains, tuple
headers), index entries against heap tuples, and checking a running cluster.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from access.tupdesc import Attribute, TupleDesc
from catalog import bootstrap
from catalog import catalog_defs as cd
from catalog.pg_control import BLCKSZ, read_control_file
from storage import bufpage


@dataclass
class VerifyResult:
    relations: int = 0
    pages: int = 0
    indexes: int = 0
    problems: list[str] = field(default_factory=list)


def _segments(path: str) -> list[str]:
    """A relation's segment files in order: path, path.1, path.2, ..."""
    out = []
    n = 0
    while True:
        p = path if n == 0 else f"{path}.{n}"
        if not os.path.exists(p):
            return out
        out.append(p)
        n += 1


def _check_pages(res: VerifyResult, label: str, path: str, checksums: bool) -> None:
    blkno = 0
    for seg in _segments(path):
        with open(seg, "rb") as f:
            data = f.read()
        if len(data) % BLCKSZ:
            res.problems.append(f"{label}: file {seg} is {len(data)} bytes, not a multiple of "
                                f"{BLCKSZ}")
        for start in range(0, len(data) - BLCKSZ + 1, BLCKSZ):
            page = memoryview(data)[start:start + BLCKSZ]
            res.pages += 1
            if not bufpage.page_is_verified(page, blkno, checksums, log_warning=False):
                what = "checksum mismatch" if checksums and bufpage.page_header_is_sane(page) \
                    else "corrupt page header"
                res.problems.append(f"{label} block {blkno}: {what}")
            blkno += 1


def _index_desc(attributes: list[list[object]], relid: int) -> TupleDesc:
    col = cd.PG_ATTRIBUTE.col
    rows = sorted((r for r in attributes if r[col["attrelid"]] == relid
                   and int(r[col["attnum"]]) > 0), key=lambda r: r[col["attnum"]])
    return TupleDesc(tuple(Attribute.of_type(str(r[col["attname"]]), int(r[col["atttypid"]]),
                                             int(r[col["attnum"]]), int(r[col["atttypmod"]]))
                           for r in rows))


def _verify_database(res: VerifyResult, datadir: str, dboid: int, checksums: bool) -> None:
    from access.nbtree.nbtverify import bt_verify_file

    classes = bootstrap.read_catalog_file(datadir, cd.PG_CLASS, dboid)
    attributes = bootstrap.read_catalog_file(datadir, cd.PG_ATTRIBUTE, dboid)
    col = cd.PG_CLASS.col
    for row in classes:
        relkind = row[col["relkind"]]
        filenode = int(row[col["relfilenode"]])
        if relkind not in ("r", "i", "S") or not filenode:
            continue
        shared = bool(row[col["relisshared"]])
        if shared and dboid != bootstrap.TEMPLATE1_OID:
            continue  # shared catalogs live once, in global/
        directory = "global" if shared else os.path.join("base", str(dboid))
        path = os.path.join(datadir, directory, str(filenode))
        label = f'relation "{row[col["relname"]]}" ({directory}/{filenode})'
        if not os.path.exists(path):
            res.problems.append(f"{label}: file is missing")
            continue
        res.relations += 1
        _check_pages(res, label, path, checksums)
        if relkind == "i":
            res.indexes += 1
            desc = _index_desc(attributes, int(row[col["oid"]]))
            for problem in bt_verify_file(path, desc, str(row[col["relname"]])):
                res.problems.append(f"{label}: {problem}")


def verify_cluster(datadir: str) -> VerifyResult:
    control = read_control_file(datadir)
    checksums = bool(control.data_checksum_version)
    res = VerifyResult()
    for db in bootstrap.read_catalog_file(datadir, cd.PG_DATABASE):
        dboid = int(db[cd.PG_DATABASE.col["oid"]])
        if os.path.isdir(os.path.join(datadir, "base", str(dboid))):
            _verify_database(res, datadir, dboid, checksums)
    return res


def main(datadir: str, as_json: bool = False) -> int:
    if os.path.exists(os.path.join(datadir, "postmaster.pid")):
        print(f'tusk_ctl: cannot verify "{datadir}" while a server may be running '
              "(postmaster.pid exists); stop it first")
        return 1
    res = verify_cluster(datadir)
    if as_json:
        print(json.dumps(res.__dict__))
    else:
        for p in res.problems:
            print(p)
        print(f"{res.relations} relations ({res.indexes} indexes), {res.pages} pages checked: "
              f"{len(res.problems)} problem(s)")
    return 1 if res.problems else 0
