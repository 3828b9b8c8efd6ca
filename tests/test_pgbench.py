"""pgbench, unmodified, against the real server: initialisation, the TPC-B run in
every query mode with 1, 4 and 8 clients, the balance invariant, and a kill -9
of the whole cluster in the middle of a run (every transaction pgbench saw
commit must be in pgbench_history after recovery)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

PGBENCH = "pgbench"


def _pgbench(cluster, *args: str, timeout: float = 300, cwd: Path | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PGBENCH, "-h", cluster.host, "-p", str(cluster.port), "-U",
                           cluster.user, *args, "postgres"], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def _sums(cluster) -> tuple:
    with psycopg.connect(cluster.dsn, autocommit=True, connect_timeout=10) as c:
        return tuple(c.execute(q).fetchone()[0] for q in (
            "select sum(abalance) from pgbench_accounts",
            "select sum(tbalance) from pgbench_tellers",
            "select sum(bbalance) from pgbench_branches",
            "select sum(delta) from pgbench_history",
            "select count(*) from pgbench_history"))


def _processed(out: str) -> int:
    for line in out.splitlines():
        if line.startswith("number of transactions actually processed:"):
            return int(line.split(":")[1].split("/")[0])
    raise AssertionError(out)


@pytest.fixture
def pgbench_db(server):
    r = _pgbench(server, "-i", "-s", "1", "-q")
    assert r.returncode == 0, r.stderr
    assert "done in" in r.stderr
    return server


def test_init_creates_the_tpcb_schema(pgbench_db):
    with psycopg.connect(pgbench_db.dsn, autocommit=True) as c:
        counts = tuple(c.execute(f"select count(*) from pgbench_{t}").fetchone()[0]
                       for t in ("accounts", "tellers", "branches", "history"))
        assert counts == (100000, 10, 1, 0)
        # The primary keys pgbench adds are used for its lookups.
        assert c.execute("select abalance from pgbench_accounts where aid = 54321"
                         ).fetchone() == (0,)


@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_tpcb_runs_in_every_mode_without_failures(pgbench_db, mode):
    total = 0
    for clients in (1, 4, 8):
        # pgbench empties pgbench_history before a run unless -n: only the first
        # run vacuums and truncates, so the history covers every run.
        no_vacuum = ["-n"] if clients > 1 else []
        r = _pgbench(pgbench_db, "-M", mode, "-c", str(clients), "-j", "2", "-t", "15",
                     *no_vacuum)
        assert r.returncode == 0, r.stderr + r.stdout
        assert "number of failed transactions: 0 (0.000%)" in r.stdout
        total += _processed(r.stdout)
    a, t, b, h, n = _sums(pgbench_db)
    assert a == t == b == h
    assert n == total == 15 * (1 + 4 + 8)


def test_kill_9_during_a_run_loses_no_committed_transaction(pgbench_db, tmp_path):
    bench = subprocess.Popen(
        [PGBENCH, "-h", pgbench_db.host, "-p", str(pgbench_db.port), "-U", pgbench_db.user,
         "-M", "prepared", "-c", "8", "-j", "2", "-T", "60", "-l", "--log-prefix",
         str(tmp_path / "tx"), "postgres"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(6)
    # The whole cluster at once, as a power cut of the processes would.
    os.killpg(pgbench_db.pid, signal.SIGKILL)
    pgbench_db.proc.wait(10)
    bench.communicate(timeout=60)
    # Each line of pgbench's per-transaction log is a transaction it saw commit.
    acknowledged = sum(len(p.read_text().splitlines()) for p in tmp_path.glob("tx*"))
    assert acknowledged > 0
    pgbench_db.start()
    a, t, b, h, n = _sums(pgbench_db)
    assert a == t == b == h
    assert n >= acknowledged
    assert "database system was interrupted" in pgbench_db.log_text() or \
        "redo starts at" in pgbench_db.log_text()


def test_backend_private_memory_stays_small(pgbench_db):
    """A backend that ran the TPC-B statements keeps its private memory (USS, not
    RSS, which counts the shared buffers it touched) under 60 MB."""
    import psutil

    with psycopg.connect(pgbench_db.dsn, autocommit=True) as c:
        for i in range(1, 201):
            c.execute("begin")
            c.execute("update pgbench_accounts set abalance = abalance + %s where aid = %s",
                      (i, i * 37 % 100000 + 1), prepare=True)
            c.execute("select abalance from pgbench_accounts where aid = %s",
                      (i * 37 % 100000 + 1,), prepare=True)
            c.execute("update pgbench_tellers set tbalance = tbalance + %s where tid = %s",
                      (i, i % 10 + 1), prepare=True)
            c.execute("insert into pgbench_history (tid, bid, aid, delta, mtime) values "
                      "(%s, 1, %s, %s, current_timestamp)", (i % 10 + 1, i, i), prepare=True)
            c.execute("commit")
        c.execute("select count(*) from pgbench_accounts")
        uss = psutil.Process(c.info.backend_pid).memory_full_info().uss
    assert uss < 60 * 2**20, uss
