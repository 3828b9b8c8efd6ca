"""Commit durability through real clients: each transaction inserts a row and
returns its xid (a heap-insert and a commit record in the WAL), the whole cluster
is killed with SIGKILL at one instant, and txid_status() after restart says what
survived. Bounds the design sets are asserted with wide margins.

(A transaction that only takes an xid, SELECT txid_current(), writes no WAL
before its commit record; as in PostgreSQL its commit is not waited for.)"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time

import psycopg
import pytest

# One durable transaction: WAL written before the commit record, so the commit is
# flushed before the client hears of it (synchronous_commit on).
COMMIT = "INSERT INTO durable VALUES (1) RETURNING txid_current()"


def _create_table(server) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS durable (v int)")


def _commit_loop(dsn: str, stop: threading.Event, acked: list, errors: list) -> None:
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.is_set():
                xid = conn.execute(COMMIT).fetchone()[0]
                acked.append((xid, time.monotonic()))
    except psycopg.OperationalError:
        pass  # the cluster was killed under us
    except Exception as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)


def _run_and_kill(server, clients: int, seconds: float) -> tuple[list, float]:
    _create_table(server)
    stop = threading.Event()
    acked: list = []
    errors: list = []
    threads = [threading.Thread(target=_commit_loop, args=(server.dsn, stop, acked, errors))
               for _ in range(clients)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    killed_at = time.monotonic()
    os.killpg(server.pid, signal.SIGKILL)  # postmaster and every child at once
    server.proc.wait(10)
    stop.set()
    for t in threads:
        t.join(10)
    assert not errors, errors
    assert len(acked) > 20, "the workload did not run"
    return acked, killed_at


def _statuses(server, xids: list[int]) -> dict[int, str]:
    """txid_status of each xid; 'never assigned' for one beyond the recovered
    nextXid (its commit record and every later one were lost, as PostgreSQL
    reports it: "transaction ID ... is in the future")."""
    out = {}
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        for xid in xids:
            try:
                out[xid] = conn.execute("SELECT txid_status(%s)", (xid,)).fetchone()[0]
            except psycopg.errors.InvalidParameterValue as exc:
                assert "is in the future" in str(exc)
                out[xid] = "never assigned"
    return out


def test_synchronous_commits_survive_kill9_of_whole_cluster(server):
    acked, _ = _run_and_kill(server, clients=4, seconds=2.0)
    server.start()
    log = server.log_text()
    assert "database system was not properly shut down; automatic recovery in progress" in log
    assert re.search(r"redo done at [0-9A-F]+/[0-9A-F]+", log)
    statuses = _statuses(server, [x for x, _ in acked])
    lost = [x for x, s in statuses.items() if s != "committed"]
    assert lost == [], f"acknowledged commits lost: {lost[:10]}"
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        assert conn.execute(COMMIT).fetchone()[0] > max(statuses)


def test_asynchronous_commit_loss_is_bounded(make_server):
    server = make_server(synchronous_commit="off", wal_writer_delay="200ms")
    acked, killed_at = _run_and_kill(server, clients=4, seconds=2.0)
    server.start()
    statuses = _statuses(server, [x for x, _ in acked])
    # Whole transactions only: nothing is left "in progress".
    assert set(statuses.values()) <= {"committed", "aborted", "never assigned"}
    bound = 3 * 0.2 + 2.5  # 3 x wal_writer_delay, plus a wide margin for a loaded machine
    late = [(x, killed_at - t) for x, t in acked if statuses[x] != "committed"]
    assert all(age <= bound for _, age in late), late[:10]


def test_group_commit_shares_wal_syncs(server):
    """8 committers with every WAL sync slowed to 5 ms: few syncs per commit."""
    stop = threading.Event()
    counts = [0] * 8

    def worker(i: int) -> None:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("SET debug_fault_injection = 'fsync:pg_wal/*:delay=5ms'")
            while not stop.is_set():
                conn.execute(COMMIT)
                counts[i] += 1

    _create_table(server)
    before = _wal_syncs(server)
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join(20)
    time.sleep(0.5)  # the backends publish their counters as they exit
    syncs = _wal_syncs(server) - before
    commits = sum(counts)
    assert commits > 50
    assert syncs / commits <= 0.3, (syncs, commits)


def _wal_syncs(server) -> int:
    out = server.ctl("stats", "-D", str(server.datadir), "--json")
    data = json.loads(out.stdout)
    return sum(v.get("wal_sync", 0) for v in data["buffers"].values())


def test_wal_fsync_failure_panics_and_recovers(server):
    _create_table(server)
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        kept = [conn.execute(COMMIT).fetchone()[0] for _ in range(5)]
    conn = psycopg.connect(server.dsn, autocommit=True)
    conn.execute("SET debug_fault_injection = 'fsync:pg_wal/*:EIO'")
    with pytest.raises(psycopg.OperationalError):
        conn.execute(COMMIT)  # the commit's WAL flush fails: PANIC
    log = server.wait_for_log("all server processes terminated; reinitializing")
    assert "PANIC:  could not fdatasync file" in log
    assert "terminated by signal 6: Aborted" in log
    server.wait_for_log("database system is ready to accept connections",
                        start=log.index("reinitializing"))
    server.wait_ready()
    assert set(_statuses(server, kept).values()) == {"committed"}


def test_walwriter_hibernates_when_idle(server):
    walwriter = server.child_by_title("walwriter")
    time.sleep(12)  # 50 idle rounds of wal_writer_delay (200 ms) and it hibernates
    before = walwriter.num_ctx_switches().voluntary
    time.sleep(10)
    wakeups = walwriter.num_ctx_switches().voluntary - before
    assert wakeups <= 6, wakeups


def test_flipped_wal_byte_stops_recovery_there(server):
    """A byte flipped in the middle of the WAL: recovery stops at that record with a
    LOG line and the server opens with everything before it."""
    _create_table(server)
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        xids, lsns = [], []
        for _ in range(40):
            xids.append(conn.execute(COMMIT).fetchone()[0])
            lsns.append(conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0])
    assert server.stop("immediate") == 0
    # Corrupt the commit record of the 20th transaction (just before its end LSN).
    hi, lo = (int(p, 16) for p in str(lsns[19]).split("/"))
    target = ((hi << 32) | lo) - 12
    seg_size = 16 * 1024 * 1024
    path = server.datadir / "pg_wal" / f"{1:08X}{0:08X}{target // seg_size:08X}"
    with open(path, "r+b") as f:
        f.seek(target % seg_size)
        byte = f.read(1)
        f.seek(target % seg_size)
        f.write(bytes([byte[0] ^ 0xFF]))
    server.start()
    log = server.log_text()
    assert re.search(r"LOG:  incorrect resource manager data checksum in record at "
                     r"[0-9A-F]+/[0-9A-F]+", log), log[-2000:]
    statuses = _statuses(server, xids)
    assert all(statuses[x] == "committed" for x in xids[:19])
    assert all(statuses[x] != "committed" for x in xids[19:])


def test_commit_of_a_transaction_that_wrote_no_wal_is_not_waited_for(server):
    """As RecordTransactionCommit: a transaction whose only WAL is its commit record
    (txid_current() alone) does not wait for the WAL flush; one that inserted a
    row does. This session's WAL syncs are stalled 3 s to tell them apart."""
    _create_table(server)
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("SET debug_fault_injection = 'fsync:pg_wal/*:delay=3s'")
        t0 = time.monotonic()
        xid = conn.execute("SELECT txid_current()").fetchone()[0]
        quick = time.monotonic() - t0
        t0 = time.monotonic()
        conn.execute(COMMIT)
        slow = time.monotonic() - t0
        assert conn.execute("SELECT txid_status(%s)", (xid,)).fetchone()[0] == "committed"
    assert quick < 2.0, quick
    assert slow >= 2.9, slow


def test_many_asynchronous_commits_keep_every_process_up(server):
    """Commits not waited for (txid_current() alone) each set asyncXactLSN and
    wake the walwriter through its latch: a stream of SIGUSR1 that must not break
    a semaphore wait (a spinlock) in the walwriter or anywhere else."""
    stop = threading.Event()
    errors: list = []
    counts = [0] * 8

    def worker(i: int) -> None:
        try:
            with psycopg.connect(server.dsn, autocommit=True) as conn:
                while not stop.is_set():
                    conn.execute("SELECT txid_current()")
                    counts[i] += 1
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(5)
    stop.set()
    for t in threads:
        t.join(20)
    log = server.log_text()
    assert not errors, (errors[:3], log[-3000:])
    assert "exited with exit code" not in log and "terminated by signal" not in log, log[-3000:]
    assert sum(counts) > 200, counts
