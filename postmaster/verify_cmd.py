"""``tusk_ctl verify -D DIR``: check a cluster's relations — in the spirit of
PostgreSQL's pg_amcheck (amcheck's verify_heapam and bt_index_check with
heapallindexed) and pg_checksums --check.

A stopped cluster (it must have been shut down cleanly, as pg_checksums
requires: after a crash the files are only consistent once recovery has run)
is read straight from its files, every relation of every database plus the
shared catalogs:

- every page: a sane header and, with data checksums on, a matching checksum;
- every table: line pointers, tuple headers, attributes and HOT chains
  (access/heapverify.py), xids judged against pg_control's next xid and the
  commit log in pg_xact;
- every B-tree: its structure (access/nbtree/nbtverify.py: ordering, high keys,
  sibling and parent links), every entry pointing at a line pointer in use of
  its table, and every chain whose live version (inserter committed, deleter
  not) an index must hold having an entry with that version's key.

A running cluster (postmaster.pid names a live postmaster) is not read from
disk: postmaster/verify_online.py connects and calls the SQL functions
verify_heapam and bt_index_check(index, heapallindexed => true)
(utils/adt/amcheck.py), which read pages through shared buffers under the
proper locks, as pg_amcheck does.

Output: one line per problem, ``relation "NAME" (FILE), block B, offset O:
what``, then a summary; ``--json`` prints the same as one object (the lines
under "problems", the same field by field under "details"). Exit status
0 when clean, 1 when there are problems, 2 when the check could not run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from access import heapverify as hv
from access.tupdesc import Attribute, TupleDesc
from catalog import bootstrap
from catalog import catalog_defs as cd
from catalog.pg_control import BLCKSZ, DBState, read_control_file
from storage import bufpage


@dataclass
class Problem:
    relation: str
    file: str | None
    block: int | None
    offset: int | None
    attnum: int | None
    message: str

    def __str__(self) -> str:
        head = f'relation "{self.relation}"' + (f" ({self.file})" if self.file else "")
        where = hv.Corruption(self.block, self.offset, self.attnum, "").where()
        return f"{head}, {where}: {self.message}" if where else f"{head}: {self.message}"


@dataclass
class VerifyResult:
    mode: str = "stopped"
    relations: int = 0
    indexes: int = 0
    pages: int = 0
    tuples: int = 0
    index_entries: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth knowing, not corruption

    def add(self, relation: str, file: str | None, c: hv.Corruption) -> None:
        self.problems.append(Problem(relation, file, c.blkno, c.offnum, c.attnum, c.msg))

    def summary(self) -> str:
        counts = f"{self.relations} relations ({self.indexes} indexes)"
        if self.mode == "stopped":
            counts += (f", {self.pages} pages, {self.tuples} tuples, {self.index_entries} "
                       "index entries")
        return f"{counts} checked ({self.mode} cluster): {len(self.problems)} problem(s)"


class VerifyError(Exception):
    """The check cannot run (exit status 2)."""


# -- reading a stopped cluster ------------------------------------------------------------------

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


def _pages(res: VerifyResult, name: str, file: str, path: str, checksums: bool
           ) -> Iterator[tuple[int, memoryview | None]]:
    """Every block of a relation, None for one whose header or checksum is
    wrong (reported here)."""
    blkno = 0
    segments = _segments(path)
    for seg in segments:
        with open(seg, "rb") as f:
            data = f.read()
        if len(data) % BLCKSZ:
            what = f"file {seg} is {len(data)} bytes, not a multiple of {BLCKSZ}"
            if seg is segments[-1]:
                # A torn extension (a power cut mid-write): the server counts whole
                # blocks only and writes over the partial one when it extends the
                # relation, as PostgreSQL's mdnblocks/mdextend do.
                res.notes.append(f'relation "{name}" ({file}): {what}; the partial last '
                                 "block is ignored")
            else:
                res.add(name, file, hv.Corruption(None, None, None, what))
        for start in range(0, len(data) - BLCKSZ + 1, BLCKSZ):
            page = memoryview(data)[start:start + BLCKSZ]
            res.pages += 1
            if bufpage.page_is_verified(page, blkno, checksums, log_warning=False):
                yield blkno, page
            else:
                what = "checksum mismatch" if checksums and bufpage.page_header_is_sane(page) \
                    else "corrupt page header"
                res.add(name, file, hv.Corruption(blkno, None, None, what))
                yield blkno, None
            blkno += 1


def _desc(rows: list[list[object]]) -> TupleDesc:
    """A relation's TupleDesc from its pg_attribute rows (RelationBuildDesc)."""
    a = cd.PG_ATTRIBUTE.col
    attrs = [Attribute(str(r[a["attname"]]), int(r[a["atttypid"]]), int(r[a["attnum"]]),
                       int(r[a["atttypmod"]]), bool(r[a["attnotnull"]]), bool(r[a["atthasdef"]]),
                       bool(r[a["attisdropped"]]), int(r[a["attlen"]]), bool(r[a["attbyval"]]),
                       str(r[a["attalign"]]), str(r[a["attstorage"]]))
             for r in rows if int(r[a["attnum"]]) > 0]
    return TupleDesc(tuple(sorted(attrs, key=lambda x: x.attnum)))


@dataclass
class _Cluster:
    datadir: str
    checksums: bool
    next_fxid: int
    oldest_xid: int
    xid_cache: dict[int, bool] = field(default_factory=dict)

    def xid_status(self, xid: int) -> int:
        # Nothing runs in a stopped cluster: a transaction pg_xact does not
        # call committed was aborted or crashed.
        committed = bootstrap._xid_committed_on_disk(self.datadir, xid, self.xid_cache)
        return hv.XID_COMMITTED if committed else hv.XID_ABORTED


def _check_table(res: VerifyResult, cl: _Cluster, row: list[object], desc: TupleDesc,
                 name: str, file: str, path: str) -> hv.HeapMap:
    col = cd.PG_CLASS.col
    ctx = hv.HeapCheckContext(name, desc.natts, cl.next_fxid, cl.oldest_xid,
                              int(row[col["relfrozenxid"]] or 0), cl.xid_status, desc=desc)
    hmap = hv.HeapMap()
    for blkno, page in _pages(res, name, file, path, cl.checksums):
        if page is None:
            rep = hv.HeapPageReport(blkno, usable=False)
        else:
            rep = hv.check_heap_page(ctx, blkno, page)
        res.tuples += rep.tuples
        for c in rep.problems:
            res.add(name, file, c)
        hmap.add(rep)
    return hmap


def _check_index(res: VerifyResult, cl: _Cluster, desc: TupleDesc, name: str, file: str,
                 path: str, heap: tuple[str, str, hv.HeapMap] | None, indkey: list[int]) -> None:
    from access.nbtree.nbtverify import LeafItem, bt_check_file, bt_heap_crosscheck, file_cache

    for _blkno, _page in _pages(res, name, file, path, cl.checksums):
        pass
    c = file_cache(desc, name)
    items: list[LeafItem] = []
    for p in bt_check_file(path, c, leaf_items=items):
        res.add(name, file, p)
    res.index_entries += len(items)
    if heap is None:
        return
    heap_name, heap_file, hmap = heap
    index_side, heap_side = bt_heap_crosscheck(c, indkey, items, hmap, name)
    for p in index_side:
        res.add(name, file, p)
    for p in heap_side:
        res.add(heap_name, heap_file, p)


def _guarded(res: VerifyResult, name: str, file: str, check, *args):
    """Run one relation's checks; a checker that trips over damage it did not
    expect reports it rather than stopping the run."""
    try:
        return check(*args)
    except Exception as exc:  # noqa: BLE001 — any failure is a finding here
        res.add(name, file, hv.Corruption(None, None, None,
                                          f"check failed: {type(exc).__name__}: {exc}"))
        return None


def _verify_database(res: VerifyResult, cl: _Cluster, dboid: int) -> None:
    classes = bootstrap.read_catalog_file(cl.datadir, cd.PG_CLASS, dboid)
    attributes = bootstrap.read_catalog_file(cl.datadir, cd.PG_ATTRIBUTE, dboid)
    indexes = bootstrap.read_catalog_file(cl.datadir, cd.PG_INDEX, dboid)
    col, icol = cd.PG_CLASS.col, cd.PG_INDEX.col
    attrs: dict[int, list[list[object]]] = {}
    for r in attributes:
        attrs.setdefault(int(r[cd.PG_ATTRIBUTE.col["attrelid"]]), []).append(r)
    index_of = {int(r[icol["indexrelid"]]): r for r in indexes}
    heaps: dict[int, tuple[str, str, hv.HeapMap]] = {}
    todo_indexes = []
    for row in classes:
        relkind = row[col["relkind"]]
        filenode = int(row[col["relfilenode"]])
        if relkind not in ("r", "i", "S") or not filenode or row[col["relpersistence"]] == "t":
            continue  # no storage, or another session's temporary table
        shared = bool(row[col["relisshared"]])
        if shared and dboid != bootstrap.TEMPLATE1_OID:
            continue  # shared catalogs live once, in global/
        directory = "global" if shared else os.path.join("base", str(dboid))
        file = f"{directory}/{filenode}"
        path = os.path.join(cl.datadir, directory, str(filenode))
        name = str(row[col["relname"]])
        if not os.path.exists(path):
            res.add(name, file, hv.Corruption(None, None, None, "file is missing"))
            continue
        res.relations += 1
        oid = int(row[col["oid"]])
        desc = _desc(attrs.get(oid, []))
        if relkind == "i":
            todo_indexes.append((oid, desc, name, file, path))
        elif relkind == "S":  # a sequence's one page has sequence special space
            for _page in _pages(res, name, file, path, cl.checksums):
                pass
        else:
            hmap = _guarded(res, name, file, _check_table, res, cl, row, desc, name, file, path)
            if hmap is not None:
                heaps[oid] = (name, file, hmap)
    for oid, desc, name, file, path in todo_indexes:
        res.indexes += 1
        irow = index_of.get(oid)
        heap = indkey = None
        if irow is not None:
            heap = heaps.get(int(irow[icol["indrelid"]]))
            indkey = [int(k) for k in irow[icol["indkey"]]]  # type: ignore[union-attr]
        _guarded(res, name, file, _check_index, res, cl, desc, name, file, path, heap,
                 indkey or [])


def verify_cluster(datadir: str) -> VerifyResult:
    """Check a stopped cluster's files."""
    control = read_control_file(datadir)
    ck = control.check_point_copy
    cl = _Cluster(datadir, bool(control.data_checksum_version), ck.next_xid, ck.oldest_xid)
    res = VerifyResult()
    for db in bootstrap.read_catalog_file(datadir, cd.PG_DATABASE):
        dboid = int(db[cd.PG_DATABASE.col["oid"]])
        if os.path.isdir(os.path.join(datadir, "base", str(dboid))):
            _verify_database(res, cl, dboid)
    return res


# -- the command --------------------------------------------------------------------------------

_CLEAN_STATES = (DBState.DB_SHUTDOWNED, DBState.DB_SHUTDOWNED_IN_RECOVERY)


def run(datadir: str) -> VerifyResult:
    """Check the cluster, online if its postmaster runs; VerifyError if neither
    way is possible."""
    from postmaster import datadir as dd

    if not os.path.isdir(datadir):
        raise VerifyError(f'directory "{datadir}" does not exist')
    info = dd.read_pid_file(datadir)
    if info is not None and info.pid > 0 and dd.pid_alive(info.pid):
        from postmaster.verify_online import verify_running

        return verify_running(datadir, info)
    try:
        control = read_control_file(datadir)
    except Exception as exc:  # noqa: BLE001 — unreadable pg_control: cannot run
        raise VerifyError(f"could not read pg_control: {exc}") from exc
    if control.state not in _CLEAN_STATES:
        raise VerifyError(f'cluster in "{datadir}" was not shut down cleanly; start the '
                          "server so that crash recovery runs, then verify it (online, or "
                          "after a clean stop)")
    return verify_cluster(datadir)


def main(datadir: str, as_json: bool = False) -> int:
    try:
        res = run(datadir)
    except VerifyError as exc:
        print(f"tusk_ctl: {exc}")
        return 2
    if as_json:
        # "problems" stays a list of lines (what scripts join and print);
        # "details" has the same problems field by field.
        out = asdict(res)
        out["details"] = out["problems"]
        out["problems"] = [str(p) for p in res.problems]
        print(json.dumps(out))
    else:
        for p in res.problems:
            print(p)
        for note in res.notes:
            print(f"note: {note}")
        print(res.summary())
    return 1 if res.problems else 0
