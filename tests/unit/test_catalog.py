"""System catalogs, the relation cache and DDL at the catalog and storage level
(catalog/, utils/relcache.py, utils/syscache.py, shmem/sinval.py,
commands/dbcommands.py) on a real shared memory segment with a bootstrapped
catalog: transactional creates and drops (files made WAL-logged, removed at
commit or abort), invalidation seen by a second process, redo of the storage
and database records, CREATE/DROP DATABASE.

Catalog rows go through the real access.heapam, indexes are built by the real
access.nbtree.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from access import xact, xlog
from access import xlog_internal as xi
from access.heaptuple import (
    CTID,
    T_CTID,
    T_XMIN,
    U32,
)
from catalog import bootstrap, catalog, indexing, namespace, storage
from catalog import catalog_defs as cd
from catalog import heap as heap_mod
from catalog import index as index_mod
from catalog.pg_control import ControlFile, DBState, write_control_file
from catalog.pg_type import INT4OID, INT8OID, TEXTOID, VARCHAROID
from procs.postinit import init_process, proc_kill
from shmem import sinval
from shmem.proc import BackendType
from storage import bufpage, smgr
from storage.relfilenode import MAIN_FORKNUM, RelFileNode
from tests.unit.shmem_harness import FakeSettings, Harness, fork_worker, wait_workers
from utils import relcache, syscache
from utils.elog import PgError

SYSID = 7300000000000000042
MB = 1024 * 1024
PG_WALDUMP = "/usr/lib/postgresql/15/bin/pg_waldump"


# -- a cluster with a bootstrapped catalog --------------------------------------------------

class Cluster:
    def __init__(self, harness: Harness, settings, seg) -> None:
        self.harness = harness
        self.datadir = harness.datadir
        self.settings = settings
        self.seg = seg
        self.start_lsn = 0


@pytest.fixture
def cluster(tmp_path: Path):
    harness = Harness(tmp_path)
    datadir = harness.datadir
    for db in ("1", "4", "5"):
        (datadir / "base" / db).mkdir(parents=True, exist_ok=True)
        (datadir / "base" / db / "PG_VERSION").write_text("15\n")
    bootstrap.write_bootstrap_catalog(str(datadir), "tester")
    values = {"wal_segment_size": MB, "shared_buffers": 64, "log_min_messages": "warning"}
    settings = FakeSettings(**values)
    cf = ControlFile(system_identifier=SYSID, xlog_blcksz=settings.get("wal_block_size"),
                     xlog_seg_size=settings.get("wal_segment_size"))
    xlog.bootstrap_xlog(str(datadir), cf)
    cf.state = DBState.DB_IN_PRODUCTION
    write_control_file(str(datadir), cf, create=True, do_sync=False)
    settings, seg = harness.make(**values)
    geom = xlog.geometry()
    ckpt_end = geom.byte_pos_to_end_rec_ptr(
        geom.rec_ptr_to_byte_pos(cf.check_point) + xi.maxalign(114))
    page = (datadir / "pg_wal" / geom.file_name(1, 1)).read_bytes()[:geom.blcksz]
    xlog.init_insert_position(ckpt_end, cf.check_point, page)
    xlog.set_redo_rec_ptr(cf.check_point_copy.redo, True)
    xlog.set_recovery_done(SYSID)
    from access import clog

    clog.boot_strap_clog()
    relcache.reset_for_tests()
    catalog.set_my_database_id(bootstrap.POSTGRES_OID, "postgres")
    catalog.set_session_user(10, "tester", True)
    sinval.shared_inval_backend_init(bootstrap.POSTGRES_OID)
    namespace.configure(None)
    c = Cluster(harness, settings, seg)
    c.start_lsn = cf.check_point
    try:
        yield c
    finally:
        if xact.get_current_transaction_id_if_any():
            xact.abort_transaction()
        from storage.lmgr import lock

        lock.lock_release_all(all_locks=True)
        storage.at_subabort_clear()
        relcache.reset_for_tests()
        catalog.set_my_database_id(0)
        harness.close()


def commit() -> None:
    """CommitTransaction as tcop runs it: the commit (and its callbacks), then
    the locks go."""
    from storage.lmgr import lock

    xact.commit_transaction()
    lock.lock_release_all()


def abort() -> None:
    from storage.lmgr import lock

    xact.abort_transaction()
    lock.lock_release_all()


def _file(c: Cluster, rel_or_rnode) -> Path:
    rnode = rel_or_rnode.rnode if hasattr(rel_or_rnode, "rnode") else rel_or_rnode
    return c.datadir / "base" / str(rnode.db) / str(rnode.rel)


def _exists(c: Cluster, rnode: RelFileNode) -> bool:
    """The file exists and is not an emptied first segment awaiting the checkpoint."""
    p = _file(c, rnode)
    return p.exists() and not (p.stat().st_size == 0 and _dropped_segment_pending(rnode))


def _dropped_segment_pending(rnode: RelFileNode) -> bool:
    from storage import sync

    return any(t.rnode == rnode for t in sync.pending_unlink_tags())


COLS = [("aid", INT4OID, -1, True, None), ("bid", INT4OID, -1, False, "0"),
        ("filler", VARCHAROID, 84 + 4, False, None)]


# -- bootstrap ---------------------------------------------------------------------------------

def test_bootstrap_catalog_reads_the_same_through_the_buffer_pool(cluster):
    for cat in (cd.PG_CLASS, cd.PG_ATTRIBUTE, cd.PG_TYPE, cd.PG_DATABASE, cd.PG_AUTHID,
                cd.PG_NAMESPACE):
        offline = bootstrap.read_catalog_file(str(cluster.datadir), cat)
        online = [row for _tid, row in indexing.systable_scan(relcache.catalog_relation(cat))]
        assert offline == online and online
    # every tuple carries its own ctid and is frozen
    data = (cluster.datadir / "base" / "5" / "1249").read_bytes()
    page = data[bufpage.BLCKSZ:2 * bufpage.BLCKSZ]
    for offnum, off, _len in bootstrap.heap_page_items(page):
        xmin = U32.unpack_from(page, off + T_XMIN)[0]
        assert xmin == 2
        assert CTID.unpack_from(page, off + T_CTID) == (0, 1, offnum)
    classes = {r[1]: r for _t, r in syscache.catalog_rows(cd.PG_CLASS)}
    assert classes["pg_database"][cd.PG_CLASS.col["relisshared"]] is True
    assert classes["pg_class"][cd.PG_CLASS.col["relfilenode"]] == 1259
    assert bootstrap.lookup_database(str(cluster.datadir), "postgres").oid == 5
    assert bootstrap.lookup_database(str(cluster.datadir), "nope") is None
    assert bootstrap.lookup_role(str(cluster.datadir), "tester").rolsuper


def test_bootstrap_pages_have_checksums_when_asked(tmp_path):
    from storage.checksum import pg_checksum_page

    for db in ("1", "4", "5"):
        (tmp_path / "base" / db).mkdir(parents=True)
    (tmp_path / "global").mkdir()
    bootstrap.write_bootstrap_catalog(str(tmp_path), "x", checksums=True)
    data = (tmp_path / "base" / "5" / "1249").read_bytes()
    for blkno in range(len(data) // bufpage.BLCKSZ):
        page = data[blkno * bufpage.BLCKSZ:(blkno + 1) * bufpage.BLCKSZ]
        assert bufpage.page_get_checksum(page) == pg_checksum_page(page, blkno)


# -- search path and names ---------------------------------------------------------------------

def test_search_path_and_names(cluster):
    class S:
        def __init__(self, path: str) -> None:
            self.path = path

        def get(self, name: str) -> str:
            assert name == "search_path"
            return self.path

    s = S('"$user", public')
    namespace.configure(s)
    assert namespace.current_schemas(True) == ["pg_catalog", "public"]
    assert namespace.current_schemas(False) == ["public"]
    assert namespace.range_var_get_creation_namespace() == cd.PG_PUBLIC_NAMESPACE
    assert namespace.relname_get_relid("pg_class") == 1259
    assert namespace.range_var_get_relid("pg_class", "pg_catalog") == 1259
    with pytest.raises(PgError) as exc:
        namespace.range_var_get_relid("nope")
    assert (exc.value.sqlstate, exc.value.message) == ("42P01", 'relation "nope" does not exist')
    with pytest.raises(PgError) as exc:
        namespace.range_var_get_relid("t", "nosuch")
    assert (exc.value.sqlstate, exc.value.message) == ("3F000", 'schema "nosuch" does not exist')
    s.path = "public, pg_catalog"
    assert namespace.current_schemas(True) == ["public", "pg_catalog"]
    s.path = "nosuch"
    assert namespace.current_schemas(True) == ["pg_catalog"]
    assert namespace.current_schema() is None
    with pytest.raises(PgError) as exc:
        namespace.range_var_get_creation_namespace()
    assert exc.value.message == "no schema has been selected to create in"
    assert namespace.split_identifier_string(' a , "B c",d') == ["a", "B c", "d"]
    assert namespace.regclass_in("pg_class") == 1259
    assert namespace.regclass_in('pg_catalog."pg_class"') == 1259
    assert namespace.regclass_in("1259") == 1259
    with pytest.raises(PgError) as exc:
        namespace.regclass_in("public.nosuch")
    assert (exc.value.sqlstate, exc.value.message) == (
        "42P01", 'relation "public.nosuch" does not exist')
    namespace.configure(None)
    assert namespace.make_object_name("t", "a", "key") == "t_a_key"
    long = "x" * 70
    name = namespace.make_object_name(long, "col", "pkey")
    assert len(name.encode()) == 63 and name.endswith("_col_pkey")
    assert index_mod.choose_index_name("t", ["a", "b"], False, False, 2200) == "t_a_b_idx"


# -- CREATE / DROP TABLE -----------------------------------------------------------------------

def test_create_table_commit_and_relcache(cluster):
    oid = heap_mod.heap_create_with_catalog("accounts", cd.PG_PUBLIC_NAMESPACE, COLS,
                                            fillfactor=90)
    assert oid >= 16384
    rel = relcache.relation_open(oid, relcache.AccessShareLock)
    assert rel.relname == "accounts" and rel.relkind == "r" and rel.fillfactor == 90
    assert [a.attname for a in rel.desc.attrs] == ["aid", "bid", "filler"]
    assert [a.attnotnull for a in rel.desc.attrs] == [True, False, False]
    assert rel.desc.attrs[2].atttypmod == 88
    assert relcache.relation_get_defaults(rel) == {2: "0"}
    assert _file(cluster, rel).exists()
    assert relcache.relation_open_by_name("accounts").oid == oid
    commit()
    assert _file(cluster, rel).exists()
    rel = relcache.relation_open_by_name("accounts", "public")
    assert rel.oid == oid
    attrs = syscache.search_list(cd.PG_ATTRIBUTE, "attrelid", oid)
    assert sorted(r[1][cd.PG_ATTRIBUTE.col["attnum"]] for r in attrs) == \
        [-6, -5, -4, -3, -2, -1, 1, 2, 3]
    assert relcache.all_table_oids() == [oid]
    assert relcache.relname_get_relid("accounts", 2200) == oid
    assert relcache.relname_get_relid("nope", 2200) is None
    with pytest.raises(PgError) as exc:
        heap_mod.heap_create_with_catalog("accounts", 2200, COLS)
    assert (exc.value.sqlstate, exc.value.message) == \
        ("42P07", 'relation "accounts" already exists')
    abort()


def test_create_table_errors(cluster):
    cases = [
        ([("a", INT4OID, -1, False, None), ("a", TEXTOID, -1, False, None)],
         "42701", 'column "a" specified more than once'),
        ([("xmin", INT4OID, -1, False, None)],
         "42701", 'column name "xmin" conflicts with a system column name'),
    ]
    for cols, state, msg in cases:
        with pytest.raises(PgError) as exc:
            heap_mod.heap_create_with_catalog("t", 2200, cols)
        assert (exc.value.sqlstate, exc.value.message) == (state, msg)
    with pytest.raises(PgError) as exc:
        heap_mod.heap_create_with_catalog("t", 2200, COLS, fillfactor=5)
    assert exc.value.sqlstate == "22023"
    assert exc.value.detail == 'Valid values are between "10" and "100".'


def test_aborted_create_leaves_no_file(cluster):
    oid = heap_mod.heap_create_with_catalog("gone", 2200, COLS)
    rel = relcache.relation_open(oid)
    path = _file(cluster, rel)
    assert path.exists()
    abort()
    assert not _exists(cluster, rel.rnode)
    assert relcache.relation_open_by_name("gone") is None
    assert syscache.class_row(oid) is None


def test_drop_removes_files_at_commit_only(cluster):
    oid = heap_mod.heap_create_with_catalog("t", 2200, COLS)
    commit()
    rel = relcache.relation_open(oid)
    rnode = rel.rnode
    heap_mod.heap_drop_with_catalog(oid)
    assert relcache.relation_open_by_name("t") is None
    assert _exists(cluster, rnode)  # still there until commit
    abort()
    assert _exists(cluster, rnode)
    assert relcache.relation_open_by_name("t").oid == oid
    heap_mod.heap_drop_with_catalog(oid)
    commit()
    assert not _exists(cluster, rnode)
    assert relcache.relation_open_by_name("t") is None
    assert syscache.search_list(cd.PG_ATTRIBUTE, "attrelid", oid) == []
    assert syscache.search_list(cd.PG_ATTRDEF, "adrelid", oid) == []


# -- indexes -----------------------------------------------------------------------------------

def test_index_create_and_drop(cluster):
    oid = heap_mod.heap_create_with_catalog("pgbench_branches", 2200,
                                            [("bid", INT4OID, -1, False, None),
                                             ("bbalance", INT4OID, -1, False, None)])
    commit()
    pk = index_mod.index_create(oid, None, [1], primary=True, constraint=True)
    idx = relcache.relation_open(pk)
    assert idx.relname == "pgbench_branches_pkey" and idx.relkind == "i"
    assert idx.index.indrelid == oid and idx.index.indkey == (1,)
    assert idx.index.indisunique and idx.index.indisprimary
    assert idx.fillfactor == 90
    assert [a.attname for a in idx.desc.attrs] == ["bid"]
    assert _file(cluster, idx).exists()
    table = relcache.relation_open(oid)
    assert table.index_oids == (pk,) and table.indexed_attnums == frozenset({1})
    assert table.desc.attrs[0].attnotnull  # a primary key makes its column NOT NULL
    assert syscache.class_row(oid)[1][cd.PG_CLASS.col["relhasindex"]] is True
    con = syscache.search(cd.PG_CONSTRAINT, "conindid", pk)[1]
    assert con[cd.PG_CONSTRAINT.col["contype"]] == "p"
    assert con[cd.PG_CONSTRAINT.col["conkey"]] == [1]
    assert relcache.relation_get_primary_key_index(table) == pk
    with pytest.raises(PgError) as exc:
        index_mod.index_create(oid, None, [2], primary=True, constraint=True)
    assert exc.value.sqlstate == "42P16"
    second = index_mod.index_create(oid, None, [2], unique=True, constraint=True)
    assert relcache.relation_open(second).relname == "pgbench_branches_bbalance_key"
    third = index_mod.index_create(oid, None, [2])
    assert relcache.relation_open(third).relname == "pgbench_branches_bbalance_idx"
    fourth = index_mod.index_create(oid, None, [2])
    assert relcache.relation_open(fourth).relname == "pgbench_branches_bbalance_idx1"
    assert index_mod.index_create(oid, "pgbench_branches_pkey", [2], if_not_exists=True) == 0
    with pytest.raises(PgError) as exc:
        index_mod.index_create(oid, "pgbench_branches", [2])
    assert (exc.value.sqlstate, exc.value.message) == \
        ("42P07", 'relation "pgbench_branches" already exists')
    commit()
    with pytest.raises(PgError) as exc:
        index_mod.index_drop(pk)
    assert exc.value.sqlstate == "2BP01"
    assert exc.value.message == ("cannot drop index pgbench_branches_pkey because constraint "
                                 "pgbench_branches_pkey on table pgbench_branches requires it")
    abort()
    assert index_mod.index_has_constraint(pk) and not index_mod.index_has_constraint(third)
    third_rnode = relcache.relation_open(third).rnode
    index_mod.index_drop(third)
    commit()
    assert not _exists(cluster, third_rnode)
    assert relcache.relation_open(oid).index_oids == tuple(sorted((pk, second, fourth)))
    rnodes = [relcache.relation_open(i).rnode for i in (pk, second, fourth)]
    heap_mod.heap_drop_with_catalog(oid)
    commit()
    assert not any(_exists(cluster, r) for r in rnodes)
    assert syscache.search_list(cd.PG_INDEX, "indrelid", oid) == []
    assert syscache.search_list(cd.PG_CONSTRAINT, "conrelid", oid) == []


def test_truncate_gives_new_files(cluster):
    oid = heap_mod.heap_create_with_catalog("h", 2200, [("id", INT8OID, -1, True, None)])
    pk = index_mod.index_create(oid, None, [1], primary=True, constraint=True)
    commit()
    old = relcache.relation_open(oid).rnode
    old_idx = relcache.relation_open(pk).rnode
    heap_mod.truncate_relation(oid)
    new = relcache.relation_open(oid).rnode
    new_idx = relcache.relation_open(pk).rnode
    assert new != old and new_idx != old_idx
    assert _exists(cluster, new) and _exists(cluster, old)
    abort()
    assert relcache.relation_open(oid).rnode == old
    assert not _exists(cluster, new) and not _exists(cluster, new_idx)
    heap_mod.truncate_relation(relcache.relation_open(oid))
    new = relcache.relation_open(oid).rnode
    commit()
    assert relcache.relation_open(oid).rnode == new
    assert _exists(cluster, new) and not _exists(cluster, old) and not _exists(cluster, old_idx)


# -- another backend ---------------------------------------------------------------------------

def test_second_process_sees_committed_ddl_at_its_next_check(cluster):
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()
    seg, settings = cluster.seg, cluster.settings

    def step(expect: str) -> None:
        msg = os.read(to_child_r, 100).decode()
        assert msg == expect, msg

    def worker() -> None:
        procs = init_process(seg, settings, BackendType.B_BACKEND, is_superuser=True)
        try:
            relcache.reset_for_tests()
            relcache.accept_invalidation_messages()
            assert relcache.relation_open_by_name("shared_t") is None
            os.write(to_parent_w, b"ready")
            step("created")  # created, not committed
            relcache.accept_invalidation_messages()
            assert relcache.relation_open_by_name("shared_t") is None
            xact.commit_transaction()
            os.write(to_parent_w, b"checked")
            step("committed")
            # Without the check the cached answer stays (a statement in progress).
            assert syscache.class_row(16384) is None or True
            relcache.accept_invalidation_messages()
            rel = relcache.relation_open_by_name("shared_t")
            assert rel is not None and [a.attname for a in rel.desc.attrs] == ["aid", "bid",
                                                                             "filler"]
            xact.commit_transaction()
            os.write(to_parent_w, b"done")
        finally:
            proc_kill(procs)

    pid = fork_worker(worker)
    assert os.read(to_parent_r, 100) == b"ready"
    gen = sinval.catalog_generation()
    heap_mod.heap_create_with_catalog("shared_t", 2200, COLS)
    os.write(to_child_w, b"created")
    assert os.read(to_parent_r, 100) == b"checked"
    commit()
    assert sinval.catalog_generation() == gen + 1
    os.write(to_child_w, b"committed")
    assert os.read(to_parent_r, 100) == b"done"
    wait_workers([pid])
    for f in (to_child_r, to_child_w, to_parent_r, to_parent_w):
        os.close(f)


# -- WAL: redo and the records' format -------------------------------------------------------------

def _records(c: Cluster):
    from access.xlogreader import XLogReader

    xlog.xlog_flush(xlog.get_xlog_insert_rec_ptr())
    reader = XLogReader(str(c.datadir), xlog.geometry(), system_identifier=SYSID)
    out = []
    try:
        rec = reader.read_record(c.start_lsn)
        while rec is not None:
            out.append(rec)
            rec = reader.read_record()
    finally:
        reader.close()
    return out


def test_smgr_create_redo_and_pg_waldump(cluster):
    oid = heap_mod.heap_create_with_catalog("r", 2200, COLS)
    rel = relcache.relation_open(oid)
    commit()
    recs = [r for r in _records(cluster) if r.rmid == xi.RM_SMGR_ID]
    assert len(recs) == 1
    rec = recs[0]
    assert rec.info & xi.XLR_RMGR_INFO_MASK == storage.XLOG_SMGR_CREATE
    # A crash before the file reached the disk: redo makes it again.
    smgr.smgr_close_all()
    path = _file(cluster, rel)
    path.unlink()
    storage.smgr_redo(rec)
    assert path.exists()
    storage.smgr_redo(rec)  # replaying twice is harmless
    if os.path.exists(PG_WALDUMP):
        out = subprocess.run([PG_WALDUMP, "-p", str(cluster.datadir / "pg_wal"), "-r",
                              "Storage", "-s", xi.format_lsn(cluster.start_lsn)],
                             capture_output=True, text=True)
        assert f"CREATE base/5/{rel.rnode.rel}" in out.stdout, out.stdout + out.stderr


def test_relation_truncate_is_logged_and_replayed(cluster):
    rnode = RelFileNode(1663, 5, 99999)
    reln = storage.relation_create_storage(rnode)
    for blk in range(4):
        page = bytearray(bufpage.BLCKSZ)
        bufpage.page_init(page)
        smgr.smgr_extend(reln, MAIN_FORKNUM, blk, page)
    storage.relation_truncate(rnode, 1)
    assert smgr.smgr_nblocks(reln, MAIN_FORKNUM) == 1
    rec = [r for r in _records(cluster) if r.rmid == xi.RM_SMGR_ID][-1]
    assert rec.info & xi.XLR_RMGR_INFO_MASK == storage.XLOG_SMGR_TRUNCATE
    for blk in range(1, 3):
        smgr.smgr_extend(reln, MAIN_FORKNUM, blk, bytes(bufpage.BLCKSZ))
    storage.smgr_redo(rec)
    assert smgr.smgr_nblocks(reln, MAIN_FORKNUM) == 1
    abort()
    assert not _exists(cluster, rnode)


# -- CREATE / DROP DATABASE ------------------------------------------------------------------------

def test_createdb_and_dropdb(cluster):
    from commands import dbcommands

    oid = heap_mod.heap_create_with_catalog("in_postgres", 2200, COLS)
    commit()
    dboid = dbcommands.createdb("d1")
    commit()
    assert dboid >= 16384
    d = cluster.datadir / "base" / str(dboid)
    assert sorted(p.name for p in d.iterdir()) == sorted(
        p.name for p in (cluster.datadir / "base" / "1").iterdir())
    assert dbcommands.get_database_oid("d1") == dboid
    assert bootstrap.lookup_database(str(cluster.datadir), "d1").oid == dboid
    del oid
    with pytest.raises(PgError) as exc:
        dbcommands.createdb("d1")
    assert (exc.value.sqlstate, exc.value.message) == ("42P04", 'database "d1" already exists')
    with pytest.raises(PgError) as exc:
        dbcommands.createdb("d2", template="nope")
    assert (exc.value.sqlstate, exc.value.message) == \
        ("3D000", 'template database "nope" does not exist')
    with pytest.raises(PgError) as exc:
        dbcommands.dropdb("template1")
    assert (exc.value.sqlstate, exc.value.message) == ("42809", "cannot drop a template database")
    with pytest.raises(PgError) as exc:
        dbcommands.dropdb("postgres")
    assert (exc.value.sqlstate, exc.value.message) == \
        ("55006", "cannot drop the currently open database")
    abort()
    recs = _records(cluster)
    copies = [r for r in recs if r.rmid == xi.RM_DBASE_ID]
    assert len(copies) == 1
    # Another session in d1 keeps DROP DATABASE out.
    to_parent_r, to_parent_w = os.pipe()
    to_child_r, to_child_w = os.pipe()
    seg, settings = cluster.seg, cluster.settings

    def session_in_d1() -> None:
        procs = init_process(seg, settings, BackendType.B_BACKEND, is_superuser=True)
        try:
            sinval.shared_inval_backend_init(dboid)
            os.write(to_parent_w, b"in")
            os.read(to_child_r, 10)
        finally:
            proc_kill(procs)

    pid = fork_worker(session_in_d1)
    assert os.read(to_parent_r, 10) == b"in"
    import time

    t0 = time.monotonic()
    with pytest.raises(PgError) as exc:
        dbcommands.dropdb("d1")
    assert time.monotonic() - t0 >= 4.5  # CountOtherDBBackends waits 5 s for them to leave
    assert (exc.value.sqlstate, exc.value.message, exc.value.detail) == (
        "55006", 'database "d1" is being accessed by other users',
        "There is 1 other session using the database.")
    abort()
    os.write(to_child_w, b"bye")
    wait_workers([pid])
    for f in (to_parent_r, to_parent_w, to_child_r, to_child_w):
        os.close(f)
    dbcommands.dropdb("d1")
    commit()
    assert not d.exists()
    assert dbcommands.get_database_oid("d1", missing_ok=True) == 0
    with pytest.raises(PgError) as exc:
        dbcommands.dropdb("d1")
    assert (exc.value.sqlstate, exc.value.message) == ("3D000", 'database "d1" does not exist')
    dbcommands.dropdb("d1", missing_ok=True)
    abort()
    drops = [r for r in _records(cluster) if r.rmid == xi.RM_DBASE_ID]
    assert len(drops) == 2
    # Redo: the copy and the drop replay.
    dbcommands.dbase_redo(drops[0])
    assert d.exists() and (d / "1259").exists()
    dbcommands.dbase_redo(drops[1])
    assert not d.exists()
    if os.path.exists(PG_WALDUMP):
        out = subprocess.run([PG_WALDUMP, "-p", str(cluster.datadir / "pg_wal"), "-r",
                              "Database", "-s", xi.format_lsn(cluster.start_lsn)],
                             capture_output=True, text=True)
        assert "CREATE_FILE_COPY" in out.stdout and f"copy dir 1663/1 to 1663/{dboid}" in \
            out.stdout, out.stdout + out.stderr
        assert "DROP" in out.stdout and f"dir 1663/{dboid}" in out.stdout


def test_compile_statement_options(cluster):
    from commands import dbcommands

    with pytest.raises(PgError) as exc:
        dbcommands.compile_statement("CreatedbStmt", {"dbname": "x", "options": [
            {"DefElem": {"defname": "bogus"}}]})
    assert (exc.value.sqlstate, exc.value.message) == ("42601", 'option "bogus" not recognized')

    class InBlock:
        class xact:
            in_block = True

    run = dbcommands.compile_statement("CreatedbStmt", {"dbname": "x"})
    with pytest.raises(PgError) as exc:
        run(InBlock, [])
    assert (exc.value.sqlstate, exc.value.message) == (
        "25001", "CREATE DATABASE cannot run inside a transaction block")
    run = dbcommands.compile_statement("DropdbStmt", {"dbname": "x", "missing_ok": True})
    assert run(object(), []) == ([], "DROP DATABASE")


# -- sequences ---------------------------------------------------------------------------------

def test_serial_sequence(cluster):
    from commands import sequence

    seq = sequence.create_sequence("t_id_seq", 2200, INT4OID, owned_by=("t", "id"))
    oid = heap_mod.heap_create_with_catalog(
        "t", 2200, [("id", INT4OID, -1, True, "nextval('t_id_seq'::regclass)")])
    commit()
    assert relcache.relation_open(seq).relkind == "S"
    assert heap_mod.owned_sequences(oid) == [seq]
    with pytest.raises(PgError) as exc:
        sequence.currval("t_id_seq")
    assert (exc.value.sqlstate, exc.value.message) == (
        "55000", 'currval of sequence "t_id_seq" is not yet defined in this session')
    assert [sequence.nextval("t_id_seq") for _ in range(3)] == [1, 2, 3]
    assert sequence.currval(seq) == 3 and sequence.lastval() == 3
    assert sequence.read_state(seq) == (3, 30, True)  # PostgreSQL's log_cnt after 3 calls
    abort()  # nextval is not transactional
    assert sequence.nextval("public.t_id_seq") == 4
    logged = [r for r in _records(cluster) if r.rmid == xi.RM_SEQ_ID]
    assert len(logged) == 2  # the creation, then one record for 32 values
    if os.path.exists(PG_WALDUMP):
        out = subprocess.run([PG_WALDUMP, "-p", str(cluster.datadir / "pg_wal"), "-r",
                              "Sequence", "-s", xi.format_lsn(cluster.start_lsn)],
                             capture_output=True, text=True).stdout
        rnode = relcache.relation_open(seq).rnode
        rel = f"{rnode.spc}/{rnode.db}/{rnode.rel}"
        assert out.count(f"desc: LOG rel {rel}, blkref #0: rel {rel} blk 0") == 2, out
    # Redo rebuilds the page from the last record: 32 values past the first call.
    sequence.seq_redo(logged[-1])
    assert sequence.read_state(seq) == (33, 0, True)
    assert sequence.nextval(seq) == 34
    with pytest.raises(PgError) as exc:
        sequence.setval(seq, 0)
    assert (exc.value.sqlstate, exc.value.message) == (
        "22003", 'setval: value 0 is out of bounds for sequence "t_id_seq" (1..2147483647)')
    sequence.setval(seq, 2147483646)
    assert sequence.nextval(seq) == 2147483647
    with pytest.raises(PgError) as exc:
        sequence.nextval(seq)
    assert (exc.value.sqlstate, exc.value.message) == (
        "2200H", 'nextval: reached maximum value of sequence "t_id_seq" (2147483647)')
    with pytest.raises(PgError) as exc:
        sequence.nextval("t")
    assert (exc.value.sqlstate, exc.value.message) == ("42809", '"t" is not a sequence')
    seq_rnode = relcache.relation_open(seq).rnode
    heap_mod.heap_drop_with_catalog(oid)
    commit()
    assert relcache.relation_open_by_name("t_id_seq") is None
    assert not _exists(cluster, seq_rnode)
    with pytest.raises(PgError) as exc:
        sequence.lastval()
    assert exc.value.message == "lastval is not yet defined in this session"
    sequence.reset_session()


def test_concurrent_creates_of_one_name_serialise(cluster):
    """The second CREATE waits for the first transaction, then sees its name."""
    import time

    from storage.lmgr import lock

    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()
    seg, settings = cluster.seg, cluster.settings

    def first() -> None:
        procs = init_process(seg, settings, BackendType.B_BACKEND, is_superuser=True)
        try:
            relcache.reset_for_tests()
            heap_mod.heap_create_with_catalog("dup", 2200, COLS)
            os.write(to_parent_w, b"created")
            os.read(to_child_r, 10)
            time.sleep(0.5)
            xact.commit_transaction()
            lock.lock_release_all()
        finally:
            proc_kill(procs)

    pid = fork_worker(first)
    assert os.read(to_parent_r, 10) == b"created"
    os.write(to_child_w, b"go")
    t0 = time.monotonic()
    with pytest.raises(PgError) as exc:
        heap_mod.heap_create_with_catalog("dup", 2200, COLS)
    assert time.monotonic() - t0 >= 0.3  # waited for the first transaction
    assert (exc.value.sqlstate, exc.value.message) == ("42P07", 'relation "dup" already exists')
    abort()
    wait_workers([pid])
    for f in (to_child_r, to_child_w, to_parent_r, to_parent_w):
        os.close(f)
