"""Power loss, simulated: a cluster runs with debug_power_loss = on, every process is
killed with SIGKILL at once, ``tusk_ctl simulate-power-loss`` rolls the files back
to what a disk could hold after a power cut (unsynced writes dropped, kept or torn,
unsynced directory entries undone), and the restarted cluster must still hold every
acknowledged commit.

The ``skip`` fault action (an fsync that silently does nothing) shows what a
missing directory fsync would lose, so each test here can fail."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import psycopg
import pytest

from catalog.catalog_defs import POSTGRES_OID
from tests.cluster import Cluster, free_port


def _kill_all(server: Cluster) -> None:
    os.killpg(server.pid, signal.SIGKILL)  # postmaster and every child at once
    server.proc.wait(10)


def _simulate(server: Cluster, *args: str) -> dict:
    r = server.ctl("simulate-power-loss", "-D", str(server.datadir), "--json", *args)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def _relation_file(conn: psycopg.Connection, table: str) -> str:
    db = conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()"
                      ).fetchone()[0]
    node = conn.execute("SELECT relfilenode FROM pg_class WHERE relname = %s",
                        (table,)).fetchone()[0]
    return f"base/{db}/{node}"


def _wal_file_name(lsn: str, seg_size: int = 16 * 1024 * 1024) -> str:
    """pg_walfile_name on timeline 1 (the template's 16MB segments)."""
    hi, lo = (int(x, 16) for x in lsn.split("/"))
    segno = ((hi << 32) | lo) // seg_size
    per_id = 0x100000000 // seg_size
    return f"{1:08X}{segno // per_id:08X}{segno % per_id:08X}"


def _fill(conn: psycopg.Connection, n: int, filler: str) -> None:
    conn.execute("INSERT INTO t VALUES " + ", ".join(f"({i}, '{filler}')"
                                                     for i in range(1, n + 1)))


def _ids(server: Cluster) -> list[tuple]:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        return conn.execute("SELECT id FROM t").fetchall()


def _count(server: Cluster, table: str) -> int:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _insert_loop(dsn: str, first: int, stop: threading.Event, acked: list[int],
                 errors: list[BaseException]) -> None:
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            i = first
            while not stop.is_set():
                conn.execute("INSERT INTO t VALUES (%s, repeat('x', 200))", (i,))
                acked.append(i)
                i += 1
    except psycopg.OperationalError:
        pass  # the cluster was killed under us
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)


def test_refused_while_the_server_runs(make_server):
    server = make_server(debug_power_loss=True)
    r = server.ctl("simulate-power-loss", "-D", str(server.datadir))
    assert r.returncode == 1 and "server is running" in r.stdout
    assert (server.datadir / "pg_powerloss" / "journal").exists()


def test_acknowledged_commits_survive_power_loss(make_server, tmp_path: Path):
    """Concurrent inserts with a checkpoint among them; after the power cut (two
    seeds, each on its own copy of the killed cluster) every acknowledged row is
    there, and the relation files pass tusk_ctl verify."""
    server = make_server(debug_power_loss=True, checkpoint_timeout="1h")
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, filler text)")
    stop = threading.Event()
    acked: list[int] = []
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_insert_loop,
                                args=(server.dsn, k * 1_000_000, stop, acked, errors))
               for k in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.8)
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    time.sleep(0.8)
    _kill_all(server)
    stop.set()
    for t in threads:
        t.join(10)
    assert not errors, errors
    assert len(acked) > 20, "the workload did not run"

    torn = 0
    for seed in (1, 2):
        copy = tmp_path / f"seed{seed}"
        shutil.copytree(server.datadir, copy, symlinks=True)
        cluster = Cluster(copy, port=free_port(), registry=server.registry)
        try:
            out = _simulate(cluster, "--seed", str(seed))
            assert out["seed"] == seed and out["writes_unsynced"] > 0
            torn += out["writes_torn"]
            assert not (copy / "pg_powerloss").exists()
            cluster.start()
            with psycopg.connect(cluster.dsn, autocommit=True) as conn:
                ids = {r[0] for r in conn.execute("SELECT id FROM t")}
            assert not set(acked) - ids, f"seed {seed}: acknowledged rows lost"
            assert cluster.stop() == 0
            v = cluster.ctl("verify", "-D", str(copy))
            assert v.returncode == 0, f"seed {seed}: {v.stdout}"
        finally:
            cluster.teardown()
    assert torn > 0, "no write was torn: the test did not exercise torn pages"
    out = _simulate(server, "--worst-case")  # and the original, in the worst case
    assert out["writes_dropped"] == out["writes_unsynced"] > 0
    server.start()
    assert not set(acked) - {r[0] for r in _ids(server)}, "worst case: acknowledged rows lost"


def test_same_seed_same_outcome(make_cluster, tmp_path: Path):
    server = make_cluster(debug_power_loss=True)
    server.start()
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, filler text)")
        _fill(conn, 300, "y" * 100)
    _kill_all(server)
    outs, trees = [], []
    for i in range(2):
        copy = tmp_path / f"copy{i}"
        shutil.copytree(server.datadir, copy, symlinks=True)
        r = server.ctl("simulate-power-loss", "-D", str(copy), "--seed", "99", "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        outs.append(json.loads(r.stdout))
        trees.append({str(p.relative_to(copy)): p.read_bytes() for p in sorted(copy.rglob("*"))
                      if p.is_file() and p.name != "server.log"})
    assert outs[0] == outs[1] and trees[0] == trees[1]
    r = server.ctl("simulate-power-loss", "-D", str(server.datadir))
    assert r.returncode == 0 and r.stdout.startswith("seed ")  # a random seed, printed
    server.start()  # recovers (and removes the killed cluster's shared memory)
    assert _count(server, "t") == 300


@pytest.mark.parametrize("checkpoint", [False, True], ids=["no-checkpoint", "checkpoint"])
def test_table_created_just_before_the_crash(make_server, checkpoint: bool):
    """Without a checkpoint the creation of the table's file is not covered by a
    directory fsync: the worst case undoes it and WAL replay recreates the file and
    its rows. After a checkpoint (which fsyncs the directories of the files it
    synced) the creation survives — it has to: replay starts after it."""
    server = make_server(debug_power_loss=True, checkpoint_timeout="1h")
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int, filler text)")
        _fill(conn, 100, "z")
        path = _relation_file(conn, "t")
        if checkpoint:
            conn.execute("CHECKPOINT")
    _kill_all(server)
    out = _simulate(server, "--worst-case")
    undone = f"create {path}" in out["entries_undone"]
    assert undone != checkpoint, out["entries_undone"]
    assert (server.datadir / path).exists() == checkpoint
    server.start()
    assert _count(server, "t") == 100


def test_checkpoint_without_directory_fsync_loses_the_table(make_server):
    """The other side of the test above: with the checkpoint's fsync of the
    database directory skipped, the table's file can vanish after the checkpoint
    and no WAL replay brings it back."""
    server = make_server(debug_power_loss=True, checkpoint_timeout="1h",
                         debug_fault_injection=f"fsync:base/{POSTGRES_OID}:skip")
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int, filler text)")
        _fill(conn, 100, "z")
        path = _relation_file(conn, "t")
        assert path.startswith(f"base/{POSTGRES_OID}/")
        conn.execute("CHECKPOINT")
    _kill_all(server)
    out = _simulate(server, "--worst-case")
    assert f"create {path}" in out["entries_undone"]
    server.start()
    with psycopg.connect(server.dsn, autocommit=True) as conn, \
            pytest.raises(psycopg.Error, match="could not open file"):
        conn.execute("SELECT count(*) FROM t")


@pytest.mark.parametrize("skip_dir_fsync", [False, True], ids=["dir-fsync", "dir-fsync-skipped"])
def test_wal_segment_created_before_the_crash(make_cluster, skip_dir_fsync: bool):
    """Commits acknowledged in a WAL segment created since the last checkpoint
    survive the worst case because creating a segment fsyncs pg_wal; with that
    fsync skipped the segment's directory entry is undone and they are lost."""
    settings: dict[str, object] = {"debug_power_loss": True, "checkpoint_timeout": "1h"}
    if skip_dir_fsync:
        settings["debug_fault_injection"] = "fsync:pg_wal:skip"
    server = make_cluster(**settings)
    server.start()
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int, filler text)")
        conn.execute("INSERT INTO t VALUES (0, 'before the switch')")
        conn.execute("SELECT pg_switch_wal()")
        for i in range(1, 21):
            conn.execute("INSERT INTO t VALUES (%s, 'in the new segment')", (i,))
        segment = _wal_file_name(conn.execute("SELECT pg_current_wal_lsn()::text"
                                              ).fetchone()[0])
    _kill_all(server)
    out = _simulate(server, "--worst-case")
    links = [e for e in out["entries_undone"] if e.endswith(f"-> pg_wal/{segment}")]
    assert bool(links) == skip_dir_fsync, out["entries_undone"]
    assert (server.datadir / "pg_wal" / segment).exists() != skip_dir_fsync
    server.start()
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        ids = {r[0] for r in conn.execute("SELECT id FROM t")}
    if skip_dir_fsync:
        assert 0 in ids and not ids & set(range(1, 21))
    else:
        assert ids == set(range(21))
