"""Transaction ids across real processes: unique assignment, snapshots of
other processes' running transactions, OIDs, wraparound arithmetic and
limits, startup and redo of the counters."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from access import clog, procarray, transam
from access.procarray import (
    get_oldest_xmin,
    get_running_transaction_ids,
    get_snapshot_data,
    proc_array_end_transaction,
    transaction_id_is_in_progress,
)
from access.transam import (
    FirstNormalObjectId,
    full_transaction_id_advance,
    full_transaction_id_retreat,
    transaction_id_advance,
    transaction_id_follows,
    transaction_id_follows_or_equals,
    transaction_id_precedes,
    transaction_id_precedes_or_equals,
    transaction_id_retreat,
)
from access.xlog_internal import RM_CLOG_ID, RM_XLOG_ID, XLOG_NEXTOID
from tests.unit.test_slru import (
    Harness,
    end_worker,
    fork_worker,
    transam_harness,
    wait_workers,
)
from utils.elog import PgError


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    with transam_harness(tmp_path) as h:
        yield h


# ---------------------------------------------------------------------------
# Pure arithmetic

def test_wraparound_comparisons():
    assert transaction_id_precedes(3, 4)
    assert not transaction_id_precedes(4, 3)
    assert not transaction_id_precedes(5, 5)
    assert transaction_id_precedes_or_equals(5, 5)
    # 2^31 - 1 ahead is the future, 2^31 + 1 ahead is the past.
    assert transaction_id_precedes(100, 100 + 0x7FFFFFFF)
    assert transaction_id_follows(100, (100 + 0x80000001) & 0xFFFFFFFF)
    assert transaction_id_precedes(0xFFFFFFF0, 3)
    assert transaction_id_follows(3, 0xFFFFFFF0)
    assert transaction_id_follows_or_equals(3, 0xFFFFFFF0)
    # Permanent xids compare as plain numbers: older than every normal xid.
    assert transaction_id_precedes(2, 0xFFFFFFF0)
    assert transaction_id_precedes(0, 1)
    assert not transaction_id_precedes(0x80000005, 2)
    assert transaction_id_advance(0xFFFFFFFF) == 3
    assert transaction_id_advance(7) == 8
    assert transaction_id_retreat(3) == 0xFFFFFFFF
    assert transam.transaction_id_latest(5, [9, 7]) == 9
    assert transam.transaction_id_latest(0xFFFFFFF0, [4]) == 4
    assert transam.transaction_id_older(0, 9) == 9
    assert transam.transaction_id_older(0xFFFFFFF0, 9) == 0xFFFFFFF0


def test_full_transaction_ids():
    f = transam.full_transaction_id_from_epoch_and_xid(2, 0xFFFFFFFF)
    assert transam.epoch_from_full_transaction_id(f) == 2
    assert transam.xid_from_full_transaction_id(f) == 0xFFFFFFFF
    assert full_transaction_id_advance(f) == (3 << 32) | 3  # skips 3:0 .. 3:2
    assert full_transaction_id_retreat((3 << 32) | 3) == f
    assert full_transaction_id_retreat(3) == 2  # below FirstNormal: no skipping
    assert transam.full_transaction_id_str((1 << 32) | 735) == "1:735"
    assert procarray.full_xid_relative_to((1 << 32) | 10, 0xFFFFFFF0) == 0xFFFFFFF0
    assert procarray.full_xid_relative_to(0xFFFFFFF0, 5) == (1 << 32) | 5


def test_limits_arithmetic():
    vac, warn, stop, wrap = transam.compute_transaction_id_limits(3, 200_000_000)
    assert wrap == 3 + 0x7FFFFFFF
    assert stop == wrap - 3_000_000
    assert warn == wrap - 40_000_000
    assert vac == 200_000_003
    # Near the top of the xid space the limits wrap, skipping permanent xids.
    vac, warn, stop, wrap = transam.compute_transaction_id_limits(0x80000000, 0x7FFFFFFF)
    assert wrap == 0xFFFFFFFF
    assert vac == 0xFFFFFFFF
    vac, _w, _s, wrap = transam.compute_transaction_id_limits(0x80000002, 0x7FFFFFFE)
    assert wrap == 1 + 3 and vac == 0 + 3


# ---------------------------------------------------------------------------
# Assignment across processes

def test_unique_xids_across_processes_without_gaps(harness, tmp_path):
    start = clog.CLOG_XACTS_PER_PAGE - 700  # the run crosses into page 1
    transam.init_from_checkpoint(start, FirstNormalObjectId, 3, 1)
    nworkers, per_worker = 6, 250
    out = tmp_path / "out"
    out.mkdir()

    def worker(w: int) -> None:
        procs = harness.attach_child()
        got = []
        for _ in range(per_worker):
            xid = transam.get_new_transaction_id()
            assert procarray.my_xid() == xid  # advertised before the lock is released
            got.append(xid)
            if xid % 2:
                transam.transaction_id_commit_tree(xid)
            else:
                transam.transaction_id_abort_tree(xid)
            proc_array_end_transaction(xid)
        zeropages = harness.wal.zeropages()
        (out / str(w)).write_text(" ".join(map(str, got)) + "|" +
                                  " ".join(map(str, zeropages)))
        end_worker(procs)

    wait_workers([fork_worker(worker, w) for w in range(nworkers)])
    xids: list[int] = []
    zeropages: list[int] = []
    for w in range(nworkers):
        got, pages = (out / str(w)).read_text().split("|")
        mine = [int(x) for x in got.split()]
        assert mine == sorted(mine)  # each process sees its xids increase
        xids += mine
        zeropages += [int(p) for p in pages.split()]
    assert sorted(xids) == list(range(start, start + nworkers * per_worker))
    assert zeropages == [1]  # exactly one process extended pg_xact, once
    assert transam.read_next_transaction_id() == start + nworkers * per_worker
    for x in xids:
        assert transam.transaction_id_did_commit(x) == bool(x % 2)
        assert transam.transaction_id_did_abort(x) == (not x % 2)


def test_snapshot_sees_running_transactions_of_other_processes(harness):
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()

    def holder() -> None:
        """Take an xid and keep it running until told to commit."""
        procs = harness.attach_child()
        xid = transam.get_new_transaction_id()
        os.write(ready_w, struct.pack("<I", xid))
        assert os.read(go_r, 1) == b"c"
        transam.transaction_id_commit_tree(xid)
        proc_array_end_transaction(xid)
        os.write(ready_w, b"done")
        end_worker(procs)

    def quick() -> None:
        procs = harness.attach_child()
        xid = transam.get_new_transaction_id()
        transam.transaction_id_commit_tree(xid)
        proc_array_end_transaction(xid)
        os.write(ready_w, struct.pack("<I", xid))
        end_worker(procs)

    pid = fork_worker(holder)
    running = struct.unpack("<I", os.read(ready_r, 4))[0]
    wait_workers([fork_worker(quick)])
    done = struct.unpack("<I", os.read(ready_r, 4))[0]
    assert done == running + 1

    mine = transam.get_new_transaction_id()
    snap = get_snapshot_data()
    assert snap.xmax == done + 1  # latestCompletedXid + 1
    assert snap.xip == [running]  # not mine: the caller knows its own
    assert snap.xmin == running
    assert snap.xid_in_snapshot(running)
    assert not snap.xid_in_snapshot(done)
    assert snap.xid_in_snapshot(mine)  # >= xmax
    assert transaction_id_is_in_progress(running)
    assert transaction_id_is_in_progress(mine)
    assert not transaction_id_is_in_progress(done)
    assert get_running_transaction_ids() == [running, mine]
    assert get_oldest_xmin() == running
    assert procarray.my_xmin() == running  # the first snapshot set MyProc->xmin
    assert not transam.transaction_id_did_commit(running)

    os.write(go_w, b"c")
    assert os.read(ready_r, 4) == b"done"
    wait_workers([pid])
    snap = get_snapshot_data()
    assert not snap.xid_in_snapshot(running)
    assert snap.xmin == mine and snap.xip == []
    assert not transaction_id_is_in_progress(running)
    assert transam.transaction_id_did_commit(running)
    assert get_running_transaction_ids() == [mine]
    assert get_oldest_xmin() == running  # my xmin still holds it back ...
    proc_array_end_transaction(0)  # ... until my snapshot goes (no xid: no lock)
    assert procarray.my_xmin() == 0
    assert get_oldest_xmin() == mine
    transam.transaction_id_abort_tree(mine)
    proc_array_end_transaction(mine)
    assert get_running_transaction_ids() == []
    assert get_oldest_xmin() == mine + 1
    for fd_ in (go_r, go_w, ready_r, ready_w):
        os.close(fd_)


def test_latest_completed_xid_only_moves_forward(harness):
    a = transam.get_new_transaction_id()
    b_full = transam.read_next_full_transaction_id()
    transam.transaction_id_commit_tree(a)
    proc_array_end_transaction(a)
    assert get_snapshot_data().xmax == a + 1
    # An older xid ending later (it was a subtransaction's parent, say).
    proc_array_end_transaction(a - 1)
    assert get_snapshot_data().xmax == a + 1
    assert b_full == a + 1


def test_no_xids_during_recovery(harness):
    transam.recovery_in_progress_hook = lambda: True
    with pytest.raises(PgError, match="cannot assign TransactionIds during recovery"):
        transam.get_new_transaction_id()
    with pytest.raises(PgError, match="cannot assign OIDs during recovery"):
        transam.get_new_object_id()


# ---------------------------------------------------------------------------
# OIDs

def test_object_ids_and_nextoid_records(harness):
    wal = harness.wal
    oids = [transam.get_new_object_id() for _ in range(transam.VAR_OID_PREFETCH + 2)]
    assert oids == list(range(FirstNormalObjectId,
                              FirstNormalObjectId + transam.VAR_OID_PREFETCH + 2))
    nextoid = [struct.unpack("<I", d)[0] for r, i, d in wal.records
               if (r, i) == (RM_XLOG_ID, XLOG_NEXTOID)]
    assert nextoid == [FirstNormalObjectId + 8192, FirstNormalObjectId + 2 * 8192]
    # A checkpoint records nextOid past what was already logged as handed out.
    _xid, next_oid, _o, _d = transam.checkpoint_values(shutdown=False)
    assert next_oid == FirstNormalObjectId + 2 * 8192
    assert transam.checkpoint_values(shutdown=True)[1] == oids[-1] + 1
    # The counter wraps back to FirstNormalObjectId, never to 0.
    transam.redo_next_oid(struct.pack("<I", 0xFFFFFFFF))
    assert transam.get_new_object_id() == 0xFFFFFFFF
    assert transam.get_new_object_id() == FirstNormalObjectId


def test_unique_oids_across_processes(harness, tmp_path):
    out = tmp_path / "oids"
    out.mkdir()

    def worker(w: int) -> None:
        procs = harness.attach_child()
        (out / str(w)).write_text(" ".join(str(transam.get_new_object_id())
                                           for _ in range(3000)))
        end_worker(procs)

    wait_workers([fork_worker(worker, w) for w in range(3)])
    oids = [int(x) for w in range(3) for x in (out / str(w)).read_text().split()]
    assert sorted(oids) == list(range(FirstNormalObjectId, FirstNormalObjectId + 9000))


# ---------------------------------------------------------------------------
# Wraparound limits

def test_warning_then_error_near_wraparound(harness, capfd):
    oldest = 5000
    vac, warn, stop, wrap = transam.compute_transaction_id_limits(oldest, 200_000_000)
    transam.init_from_checkpoint(warn, FirstNormalObjectId, oldest, 5)
    assert f"WARNING:  database with OID 5 must be vacuumed within {wrap - warn} " \
           "transactions" in capfd.readouterr().err
    transam.get_database_name_hook = lambda oid: "postgres" if oid == 5 else None
    xid = transam.get_new_transaction_id()
    assert xid == warn
    err = capfd.readouterr().err
    assert f'WARNING:  database "postgres" must be vacuumed within {wrap - warn} ' \
           "transactions" in err
    assert "HINT:  To avoid a database shutdown, execute a database-wide VACUUM in that " \
           "database." in err
    transam.init_from_checkpoint(stop, FirstNormalObjectId, oldest, 5)
    with pytest.raises(PgError) as exc:
        transam.get_new_transaction_id()
    assert exc.value.sqlstate == "54000"
    assert exc.value.message == ("database is not accepting commands to avoid wraparound "
                                 'data loss in database "postgres"')
    assert exc.value.hint.startswith("Stop the postmaster and vacuum that database in "
                                     "single-user mode.")
    assert transam.read_next_transaction_id() == stop  # nothing was consumed
    assert procarray.my_xid() == warn  # still the xid from before


def test_set_transaction_id_limit_values(harness):
    transam.set_transaction_id_limit(1000, 13)
    limits = transam.transaction_id_limits()
    assert limits == {"oldest_xid": 1000, "xid_vac_limit": 1000 + 200_000_000,
                      "xid_warn_limit": 1000 + 0x7FFFFFFF - 40_000_000,
                      "xid_stop_limit": 1000 + 0x7FFFFFFF - 3_000_000,
                      "xid_wrap_limit": 1000 + 0x7FFFFFFF, "oldest_xid_db": 13}


# ---------------------------------------------------------------------------
# Startup, redo, status cache

def test_startup_and_redo_of_the_counters(harness):
    transam.init_from_checkpoint((2 << 32) | 1000, 20000, 900, 1)
    assert transam.read_next_full_transaction_id() == (2 << 32) | 1000
    assert get_snapshot_data().xmax == 1000  # latestCompletedXid = nextXid - 1
    assert transam.checkpoint_values(shutdown=True) == ((2 << 32) | 1000, 20000, 900, 1)
    # Redo of records carrying xids moves nextXid past them, across epochs.
    transam.set_in_recovery(True)
    transam.advance_next_full_transaction_id_past_xid(999)
    assert transam.read_next_full_transaction_id() == (2 << 32) | 1000
    transam.advance_next_full_transaction_id_past_xid(1500)
    assert transam.read_next_full_transaction_id() == (2 << 32) | 1501
    # An online checkpoint's nextXid is a minimum, its nextOid ignored.
    transam.redo_checkpoint((2 << 32) | 1200, 99999, 900, 1, shutdown=False)
    assert transam.checkpoint_values(shutdown=True)[:2] == ((2 << 32) | 1501, 20000)
    transam.redo_checkpoint((2 << 32) | 1400, 30000, 950, 1, shutdown=True)
    assert transam.checkpoint_values(shutdown=True) == ((2 << 32) | 1400, 30000, 950, 1)
    transam.finish_recovery()
    assert not transam.slru.in_recovery
    assert get_snapshot_data().xmax == 1400


def test_epoch_wrap_during_redo(harness):
    transam.init_from_checkpoint(0xFFFFFF00, 20000, 0xFFFF0000, 1)
    transam.advance_next_full_transaction_id_past_xid(0xFFFFFFFF)
    assert transam.read_next_full_transaction_id() == (1 << 32) | 3
    transam.init_from_checkpoint(0xFFFFFF00, 20000, 0xFFFF0000, 1)
    transam.advance_next_full_transaction_id_past_xid(10)  # already in the next epoch
    assert transam.read_next_full_transaction_id() == (1 << 32) | 11


def test_permanent_xids_and_the_status_cache(harness, monkeypatch):
    assert transam.transaction_id_did_commit(transam.BootstrapTransactionId)
    assert transam.transaction_id_did_commit(transam.FrozenTransactionId)
    assert transam.transaction_id_did_abort(transam.InvalidTransactionId)
    x = transam.get_new_transaction_id()
    transam.transaction_id_async_commit_tree(x, [], 0x4242)
    calls = []
    real = transam._clog_get_status
    monkeypatch.setattr(transam, "_clog_get_status", lambda xid: calls.append(xid) or real(xid))
    assert transam.transaction_id_did_commit(x)
    assert transam.transaction_id_did_commit(x)
    assert not transam.transaction_id_did_abort(x)
    assert calls == [x]  # one look at pg_xact, then the cache
    assert transam.transaction_id_get_commit_lsn(x) == 0x4242


def test_zeropage_record_matches_postgres(harness):
    transam.init_from_checkpoint(2 * clog.CLOG_XACTS_PER_PAGE, FirstNormalObjectId, 3, 1)
    transam.get_new_transaction_id()
    assert harness.wal.records == [(RM_CLOG_ID, clog.CLOG_ZEROPAGE, b"\x02\x00\x00\x00")]
