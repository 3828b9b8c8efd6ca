"""A cluster for heap access method tests: shared memory made as the postmaster
makes it (buffer pool, WAL, pg_xact, ProcArray, lock manager), WAL bootstrapped
and positioned after the bootstrap checkpoint, and tables made directly as
Relations (no catalog). Forked workers attach as backends do.

    cl = HeapCluster(tmp_path, shared_buffers=64)
    rel = cl.table("t", [("id", INT4OID), ("v", TEXTOID)])
    ...
    cl.close()
"""

from __future__ import annotations

import itertools
from pathlib import Path

from access import clog, xact, xlog
from access import xlog_internal as xi
from access.tupdesc import create_tuple_desc
from catalog.pg_control import ControlFile, DBState, write_control_file
from procs.postinit import init_process, proc_kill
from shmem.proc import BackendType
from storage import smgr
from storage.relfilenode import MAIN_FORKNUM, RelFileNode
from tests.unit.shmem_harness import FakeSettings, Harness
from utils.rel import Relation

SYSID = 7311111111111111999
DB = 5
_oids = itertools.count(16384)


def attach_lock_manager(seg, settings, procs) -> None:
    """The lock manager's attach, unless init_process already did it."""
    from storage.lmgr import lock

    if lock._st.slot < 0:
        lock.attach(seg, settings, procs)


class HeapCluster:
    def __init__(self, tmp_path: Path, **values: object) -> None:
        values = {"wal_segment_size": 1024 * 1024, "shared_buffers": 64,
                  "log_min_messages": "warning", **values}
        self.harness = Harness(tmp_path)
        self.datadir = self.harness.datadir
        settings = FakeSettings(**values)
        cf = ControlFile(system_identifier=SYSID, xlog_blcksz=settings.get("wal_block_size"),
                         xlog_seg_size=settings.get("wal_segment_size"),
                         data_checksum_version=1 if values.get("data_checksums") else 0)
        xlog.bootstrap_xlog(str(self.datadir), cf)
        cf.state = DBState.DB_IN_PRODUCTION
        write_control_file(str(self.datadir), cf, create=True, do_sync=False)
        from shmem import ipci

        self.harness.settings = self.settings = settings
        self.harness.seg = self.seg = ipci.create_shared_memory_and_semaphores(
            self.harness.name, settings)
        self.procs = init_process(self.seg, settings, BackendType.B_BACKEND,
                                  is_superuser=True)
        attach_lock_manager(self.seg, settings, self.procs)
        geom = xlog.geometry()
        ckpt_end = geom.byte_pos_to_end_rec_ptr(
            geom.rec_ptr_to_byte_pos(cf.check_point) + xi.maxalign(114))
        page = (self.datadir / "pg_wal" / geom.file_name(1, 1)).read_bytes()[:geom.blcksz]
        xlog.init_insert_position(ckpt_end, cf.check_point, page)
        xlog.set_redo_rec_ptr(cf.check_point_copy.redo, True)
        xlog.set_recovery_done(SYSID)
        clog.boot_strap_clog()
        xact.configure(self.settings)
        self.checkpoint_lsn = cf.check_point

    def table(self, name: str, columns, *, fillfactor: int = 100,
              indexed_attnums: frozenset[int] = frozenset(),
              relpersistence: str = "p") -> Relation:
        oid = next(_oids)
        rnode = RelFileNode(1663, DB, oid)
        rel = Relation(oid, name, 2200, "r", rnode, create_tuple_desc(columns),
                       relpersistence=relpersistence, fillfactor=fillfactor,
                       indexed_attnums=frozenset(indexed_attnums))
        smgr.smgr_create(rel.smgr, MAIN_FORKNUM)
        return rel

    def attach_child(self):
        """In a forked worker: claim a PGPROC slot and attach (as InitProcess).
        A worker still running after 50 s prints where it is stuck."""
        import faulthandler

        faulthandler.dump_traceback_later(50, exit=True)
        procs = init_process(self.seg, self.settings, BackendType.B_BACKEND, is_superuser=True)
        from storage.lmgr import lock

        lock.detach()
        lock.attach(self.seg, self.settings, procs)
        xact.configure(self.settings)
        return procs

    @staticmethod
    def end_child(procs) -> None:
        from storage.lmgr import lock

        lock.lock_release_all()
        proc_kill(procs)

    def insert_lsn(self) -> int:
        return xlog.get_xlog_insert_rec_ptr()

    def close(self) -> None:
        from storage.lmgr import lock

        try:
            lock.lock_release_all()
        except Exception:
            pass
        self.harness.close()


def begin() -> int:
    """Assign an xid now (xact takes its transaction lock, as AssignTransactionId)."""
    return xact.get_current_transaction_id()


def commit() -> None:
    from storage.lmgr import lock

    xact.commit_transaction()
    lock.lock_release_all()


def abort() -> None:
    from storage.lmgr import lock

    xact.abort_transaction()
    lock.lock_release_all()
