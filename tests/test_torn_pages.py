"""A data page torn on disk by a crash: with full_page_writes on, replay of the
page's full-page image repairs it; with full_page_writes off and data
checksums on, the damage is reported as a checksum failure, never silently
read."""

from __future__ import annotations

import os
import signal

import psycopg
import pytest

from tests.cluster import TUSK_CTL, Cluster, free_port

BLCKSZ = 8192


@pytest.fixture
def checksummed(tmp_path):
    """A cluster initialised with data checksums (-k)."""
    import subprocess

    from tests.conftest import _leak_registry

    datadir = tmp_path / "data"
    subprocess.run([TUSK_CTL, "init", "-D", str(datadir), "-k"], check=True,
                   capture_output=True)
    cluster = Cluster(datadir, port=free_port(), registry=_leak_registry)
    yield cluster
    cluster.teardown()


def _relation_path(conn: psycopg.Connection, table: str) -> str:
    dboid = conn.execute("select oid from pg_database where datname = current_database()"
                         ).fetchone()[0]
    filenode = conn.execute("select relfilenode from pg_class where relname = %s",
                            (table,)).fetchone()[0]
    return f"base/{dboid}/{filenode}"


def _crash_with_a_torn_page(cluster: Cluster) -> str:
    """Fill a page, checkpoint, change every row (the first change after the
    checkpoint), kill -9 the cluster, then tear block 0 on disk: its first half
    as before, its second half garbage, as a power cut mid-write leaves it."""
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        conn.execute("create table torn (id int primary key, v text)")
        conn.execute("insert into torn values " +
                     ", ".join(f"({i}, 'old value {i:03d}')" for i in range(1, 101)))
        conn.execute("checkpoint")
        conn.execute("update torn set v = 'new value ' || id")
        path = _relation_path(conn, "torn")
    os.killpg(cluster.pid, signal.SIGKILL)
    cluster.proc.wait(10)
    with open(cluster.datadir / path, "r+b") as f:
        f.seek(BLCKSZ // 2)
        f.write(os.urandom(BLCKSZ // 2))
    return path


def test_torn_page_is_repaired_by_full_page_image(checksummed):
    checksummed.set_conf({"full_page_writes": True})
    checksummed.start()
    _crash_with_a_torn_page(checksummed)
    checksummed.start()
    with psycopg.connect(checksummed.dsn, autocommit=True) as conn:
        rows = conn.execute("select id, v from torn order by id").fetchall()
    assert rows == [(i, f"new value {i}") for i in range(1, 101)]
    assert "redo starts at" in checksummed.log_text()


def test_torn_page_without_full_page_writes_is_a_checksum_failure(checksummed):
    checksummed.set_conf({"full_page_writes": False})
    checksummed.start()
    path = _crash_with_a_torn_page(checksummed)
    checksummed.start(wait=False)
    try:
        checksummed.wait_ready(30)
        with psycopg.connect(checksummed.dsn, autocommit=True) as conn:
            with pytest.raises(psycopg.Error) as exc:
                conn.execute("select count(*) from torn").fetchone()
        assert exc.value.sqlstate == "XX001"
        assert f'invalid page in block 0 of relation {path}' in str(exc.value)
    except (RuntimeError, TimeoutError):
        pass  # recovery itself stopped at the damaged page: also reported, below
    log = checksummed.log_text()
    assert "page verification failed, calculated checksum" in log
