"""tusk_ctl's views of a running cluster's shared memory: status, buffers, stats."""

from __future__ import annotations

import json
import re


def test_status_lists_regions_sized_from_settings(make_server):
    server = make_server(shared_buffers="256kB", max_connections=10)
    out = server.ctl("status", "-D", str(server.datadir)).stdout
    regions = {}
    for line in out.splitlines():
        parts = line.split()
        if "bytes at offset" in line:
            regions[" ".join(parts[:-5])] = int(parts[-5])
    assert regions["Buffer Blocks"] == 32 * 8192
    assert regions["Buffer Descriptors"] == 32 * 64
    assert regions["Proc Array"] == (10 + 4) * 64
    assert "LWLock Array" in regions and "Shared Buffer Lookup Table" in regions


def test_buffers_and_stats(make_server):
    server = make_server(shared_buffers="128kB")
    out = server.ctl("buffers", "-D", str(server.datadir))
    assert out.returncode == 0, out.stderr
    assert "buffers: 16  used: 0  unused: 16  dirty: 0  pinned: 0" in out.stdout
    rows = [json.loads(line) for line in
            server.ctl("buffers", "-D", str(server.datadir), "--json").stdout.splitlines()]
    assert [r["bufferid"] for r in rows] == list(range(1, 17))
    stats = server.ctl("stats", "-D", str(server.datadir), "--json")
    assert stats.returncode == 0, stats.stderr
    data = json.loads(stats.stdout)
    assert set(data) == {"buffers", "lwlocks"}
    text = server.ctl("stats", "-D", str(server.datadir)).stdout
    assert "backend type" in text and "LWLock tranche" in text
    server.stop()
    out = server.ctl("buffers", "-D", str(server.datadir))
    assert out.returncode == 1 and "no server running" in out.stderr


def test_stats_shows_pg_stat_wal(server):
    import psycopg

    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE durable (v int)")
        for _ in range(3):
            conn.execute("INSERT INTO durable VALUES (1)")
    import time

    time.sleep(0.2)  # the backend publishes its counters when it exits
    text = server.ctl("stats", "-D", str(server.datadir)).stdout
    assert "pg_stat_wal" in text
    records = int(re.search(r"wal_records\s+\| (\d+)", text).group(1))
    syncs = int(re.search(r"wal_sync\s+\| (\d+)", text).group(1))
    assert records >= 3 and syncs >= 1
