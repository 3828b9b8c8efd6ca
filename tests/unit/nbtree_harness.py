"""Shared memory with WAL running, and B-tree index relations, for the nbtree tests
(tests/unit/test_nbtree*.py) and bench/bench_nbtree.py."""

from __future__ import annotations

from pathlib import Path

from access import nbtree, xlog
from access import xlog_internal as xi
from access.tupdesc import create_tuple_desc
from catalog import pg_type as t
from catalog.pg_control import ControlFile
from storage import bufmgr, smgr
from storage.relfilenode import DEFAULTTABLESPACE_OID, MAIN_FORKNUM, RelFileNode
from tests.unit.shmem_harness import Harness
from utils.rel import BTREE_DEFAULT_FILLFACTOR, RELKIND_INDEX, IndexInfo, Relation

SYSID = 7300000000000000042


class BTEnv:
    """A Harness whose WAL is bootstrapped and open for insertion (as after a
    clean start), so access methods can log their changes."""

    def __init__(self, tmp_path: Path) -> None:
        self.harness = Harness(tmp_path)
        self.datadir = self.harness.datadir
        self.settings = None
        self.seg = None
        self.start_lsn = 0

    def make(self, **values: object):
        values = {"wal_segment_size": 1024 * 1024, "shared_buffers": 64, "fsync": False, **values}
        from tests.unit.shmem_harness import FakeSettings

        settings = FakeSettings(**values)
        cf = ControlFile(system_identifier=SYSID, xlog_blcksz=settings.get("wal_block_size"),
                         xlog_seg_size=settings.get("wal_segment_size"))
        xlog.bootstrap_xlog(str(self.datadir), cf)
        self.settings, self.seg = self.harness.make(**values)
        geom = xlog.geometry()
        ckpt_end = geom.byte_pos_to_end_rec_ptr(
            geom.rec_ptr_to_byte_pos(cf.check_point) + xi.maxalign(114))
        page = (self.datadir / "pg_wal" / geom.file_name(1, 1)).read_bytes()[:geom.blcksz]
        xlog.init_insert_position(ckpt_end, cf.check_point, page)
        xlog.set_recovery_done(SYSID)
        self.start_lsn = cf.check_point
        return self.settings, self.seg

    def close(self) -> None:
        self.harness.close()


def make_index(relfilenode: int = 16384, columns=(("k", t.INT4OID),), *, unique: bool = False,
               name: str = "t_k_idx", fillfactor: int = BTREE_DEFAULT_FILLFACTOR,
               indkey: tuple[int, ...] | None = None, create: bool = True) -> Relation:
    """An index Relation over a table whose first len(columns) attributes are the
    key (unless ``indkey`` says otherwise), its storage created."""
    rnode = RelFileNode(DEFAULTTABLESPACE_OID, 5, relfilenode)
    desc = create_tuple_desc(list(columns))
    rel = Relation(relfilenode, name, 2200, RELKIND_INDEX, rnode, desc, fillfactor=fillfactor,
                   index=IndexInfo(16000, indkey or tuple(range(1, len(columns) + 1)),
                                   indisunique=unique, indisprimary=unique))
    if create:
        reln = smgr.smgr_open(rnode)
        if not smgr.smgr_exists(reln, MAIN_FORKNUM):
            smgr.smgr_create(reln, MAIN_FORKNUM)
    return rel


class FakeHeap:
    relname = "t"


# -- helpers the B-tree test files share -------------------------------------------------


def tid_of(i: int) -> tuple[int, int]:
    return i // 100, i % 100 + 1


def scan(rel, keys, backward: bool = False) -> list[tuple[int, int]]:
    return list(nbtree.bt_begin_scan(rel, keys, backward))


def read_page(rel, blkno: int) -> bytes:
    buf = bufmgr.read_buffer(rel.smgr, blkno)
    bufmgr.lock_buffer(buf, bufmgr.BUFFER_LOCK_SHARE)
    data = bytes(bufmgr.buffer_get_page(buf))
    bufmgr.unlock_release_buffer(buf)
    return data
