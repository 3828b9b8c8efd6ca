"""The checkpointer and background writer in the running server: requested,
timed and WAL-triggered checkpoints as the log shows them, pg_control, crash
recovery from the last checkpoint's redo pointer with the end-of-recovery
checkpoint written by the checkpointer, WAL recycling, tusk_ctl checkpoint and
stats, and the background writer's hibernation. WAL comes from real commits
(one-row INSERTs) and pg_switch_wal()."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime

import psutil
import psycopg
import pytest

LOG_TS = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) UTC \[(\d+)\]"


def _controldata(server) -> dict[str, str]:
    out = server.ctl("controldata", "-D", str(server.datadir))
    assert out.returncode == 0, out.stderr
    return {k.strip(): v.strip() for k, v in
            (line.split(":", 1) for line in out.stdout.splitlines() if ":" in line)}


def _stats(server) -> dict:
    out = server.ctl("stats", "-D", str(server.datadir), "--bgwriter", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# A transaction that writes WAL before its commit record (so its commit is flushed
# synchronously), returning its xid.
COMMIT = "INSERT INTO durable VALUES (1) RETURNING txid_current()"


def _create_table(conn: psycopg.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS durable (v int)")


def _commit(server, n: int = 1) -> list[int]:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        _create_table(conn)
        return [conn.execute(COMMIT).fetchone()[0] for _ in range(n)]


def _when(ts: str) -> float:
    return datetime.strptime(ts, "%Y-%m-%d %H:%M:%S.%f").timestamp()


def test_tusk_ctl_checkpoint_logs_and_counts(make_server):
    server = make_server()
    before = _controldata(server)
    _commit(server, 3)
    out = server.ctl("checkpoint", "-D", str(server.datadir))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "checkpoint complete"
    log = server.log_text()
    assert "LOG:  checkpoint starting: immediate force wait\n" in log
    assert re.search(r"LOG:  checkpoint complete: wrote \d+ buffers \(\d+\.\d%\); "
                     r"\d+ WAL file\(s\) added, \d+ removed, \d+ recycled; "
                     r"write=\d+\.\d{3} s, sync=\d+\.\d{3} s, total=\d+\.\d{3} s; "
                     r"sync files=\d+, longest=\d+\.\d{3} s, average=\d+\.\d{3} s; "
                     r"distance=\d+ kB, estimate=\d+ kB\n", log), log
    after = _controldata(server)
    assert after["Latest checkpoint location"] != before["Latest checkpoint location"]
    assert after["Database cluster state"] == "in production"
    stats = _stats(server)
    assert stats["checkpoints_req"] == 1 and stats["checkpoints_timed"] == 0
    text = server.ctl("stats", "-D", str(server.datadir)).stdout
    assert "pg_stat_bgwriter" in text and re.search(r"checkpoints_req\s+1\n", text)
    # The shutdown checkpoint is the checkpointer's last act.
    assert server.stop("fast") == 0
    assert "LOG:  checkpoint starting: shutdown immediate\n" in server.log_text()
    assert _controldata(server)["Database cluster state"] == "shut down"


def test_tusk_ctl_checkpoint_without_server(make_cluster):
    cluster = make_cluster()
    out = cluster.ctl("checkpoint", "-D", str(cluster.datadir))
    assert out.returncode == 1
    assert "no server running" in out.stderr


def test_crash_recovers_from_the_last_redo_pointer(make_server):
    """After a checkpoint and more commits, an immediate stop: the restart replays
    from the checkpoint's redo pointer, and the checkpointer writes the
    end-of-recovery checkpoint the startup process asks for."""
    server = make_server()
    _commit(server, 2)
    assert server.ctl("checkpoint", "-D", str(server.datadir)).returncode == 0
    redo = _controldata(server)["Latest checkpoint's REDO location"]
    xids = _commit(server, 5)
    assert server.stop("immediate") == 0
    mark = len(server.log_text())
    server.start()
    log = server.log_text()[mark:]
    assert "database system was interrupted; last known up at" in log
    assert f"LOG:  redo starts at {redo}\n" in log, log
    m = re.search(LOG_TS + r" LOG:  checkpoint starting: end-of-recovery immediate wait\n", log)
    assert m, log
    assert "checkpoint complete: wrote" in log[m.end():]
    ckpt = server.child_by_title("checkpointer")
    assert int(m[2]) == ckpt.pid  # written by the checkpointer, not the startup process
    assert log.index("checkpoint complete") < log.index("ready to accept connections")
    assert _controldata(server)["Latest checkpoint's REDO location"] != redo
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        for xid in xids:
            assert conn.execute("SELECT txid_status(%s)", (xid,)).fetchone()[0] == "committed"


def test_timed_checkpoints_every_timeout_and_skipped_when_idle(make_server):
    """checkpoint_timeout = 30 s (its minimum): with commits since the last
    checkpoint a timed one runs; with nothing written it is skipped (DEBUG1)."""
    server = make_server(checkpoint_timeout="30s", log_min_messages="debug1")
    start = time.time()
    _commit(server, 3)
    log = server.wait_for_log("LOG:  checkpoint starting: time\n", timeout=45)
    first = re.search(LOG_TS + r" LOG:  checkpoint starting: time\n", log)
    assert 25 <= _when(first[1]) - start <= 40
    log = server.wait_for_log("checkpoint skipped because system is idle", timeout=45,
                              start=first.end())
    skipped = re.search(LOG_TS + r" DEBUG:  checkpoint skipped because system is idle\n",
                        log[first.end():])
    assert 25 <= _when(skipped[1]) - _when(first[1]) <= 40
    assert log.count("checkpoint starting") == 1
    stats = _stats(server)
    assert stats["checkpoints_timed"] == 2 and stats["checkpoints_req"] == 0


def test_wal_volume_triggers_checkpoints_and_recycles_segments(make_server):
    """max_wal_size = 32MB of 16MB segments: CheckPointSegments = 1, so every
    finished segment asks for a checkpoint; they come closer together than
    checkpoint_warning, and segments before the redo pointer's are recycled."""
    server = make_server(max_wal_size="32MB", min_wal_size="32MB", checkpoint_warning="5min")
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        _create_table(conn)
        for round_ in range(4):
            mark = server.log_text().count("checkpoint complete")
            conn.execute(COMMIT)
            conn.execute("SELECT pg_switch_wal()")
            deadline = time.monotonic() + 30
            while server.log_text().count("checkpoint complete") == mark:
                assert time.monotonic() < deadline, (round_, server.log_text())
                time.sleep(0.05)
    log = server.log_text()
    assert "LOG:  checkpoint starting: wal\n" in log
    assert re.search(r"LOG:  checkpoints are occurring too frequently \(\d+ seconds? apart\)\n"
                     r".*HINT:  Consider increasing the configuration parameter "
                     r'"max_wal_size"\.\n', log), log
    files = re.findall(r"(\d+) WAL file\(s\) added, (\d+) removed, (\d+) recycled", log)
    assert sum(int(r) + int(c) for _a, r, c in files) >= 2, files
    redo_file = _controldata(server)["Latest checkpoint's REDO WAL file"]
    segs = sorted(p.name for p in (server.datadir / "pg_wal").iterdir() if len(p.name) == 24)
    assert segs[0][8:] >= redo_file[8:], (segs, redo_file)
    assert _stats(server)["checkpoints_req"] >= 4


def test_bgwriter_hibernates_on_an_idle_server(make_server):
    """bgwriter_lru_maxpages = 0 leaves it nothing to do, so it hibernates: in 10 s
    it wakes a few times, not the 50 times of bgwriter_delay = 200ms."""
    server = make_server(bgwriter_lru_maxpages=0)
    bgw = server.child_by_title("background writer")
    time.sleep(1.5)  # two idle rounds, then the long sleep
    proc = psutil.Process(bgw.pid)
    before = proc.num_ctx_switches().voluntary
    time.sleep(10)
    assert proc.num_ctx_switches().voluntary - before <= 6


def test_sql_checkpoint_command(make_server):
    server = make_server(log_checkpoints=True)
    import psycopg

    with psycopg.connect(server.dsn, autocommit=True) as conn:
        _create_table(conn)
        conn.execute(COMMIT)
        start = len(server.log_text())
        assert conn.execute("CHECKPOINT").statusmessage == "CHECKPOINT"
    log = server.log_text()[start:]
    assert "checkpoint starting: immediate force wait" in log
    assert "checkpoint complete: wrote" in log


def test_commit_stopped_between_record_and_pg_xact_survives_a_checkpoint_and_crash(
        make_server):
    """DELAY_CHKPT_START. A backend whose commit record is written but whose WAL
    flush is stalled (this session's fault injection: fsync of pg_wal takes 5 s)
    has not marked pg_xact yet. A CHECKPOINT taken meanwhile has its redo pointer
    past the commit record, so replay would never see it: the checkpoint must wait
    for the commit to reach pg_xact before CheckPointCLOG. A crash right after the
    checkpoint then still finds the transaction committed."""
    server = make_server()
    result: dict[str, float | int] = {}

    with psycopg.connect(server.dsn, autocommit=True) as conn:
        _create_table(conn)

    def committer() -> None:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("SET debug_fault_injection = 'fsync:pg_wal/*:delay=5s'")
            result["xid"] = conn.execute(COMMIT).fetchone()[0]
            result["done"] = time.monotonic()

    thread = threading.Thread(target=committer)
    thread.start()
    try:
        time.sleep(1.5)  # the commit record is in, its flush stalls
        assert "xid" not in result
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
            ended = time.monotonic()
    finally:
        thread.join()
    assert ended >= result["done"]  # the checkpoint could only finish after the commit
    assert "checkpoint complete" in server.log_text()
    assert server.stop("immediate") == 0
    server.start()
    assert "database system was interrupted" in server.log_text()
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT txid_status(%s)", (result["xid"],)).fetchone()[0] == \
            "committed"


def test_failed_fsync_is_a_panic_then_recovery(make_server):
    """The checkpoint's fsync of pg_xact/0000 fails (EIO): PANIC, never "checkpoint
    complete"; with restart_after_crash off the server stops, and the next start
    recovers from the previous checkpoint's redo pointer with every commit."""
    server = make_server(restart_after_crash=False,
                         debug_fault_injection="fsync:pg_xact/0000:EIO")
    xids = _commit(server, 3)
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.OperationalError):
            conn.execute("CHECKPOINT")
    server.proc.wait(30)
    log = server.log_text()
    assert 'PANIC:  could not fsync file "pg_xact/0000": Input/output error' in log, log
    start = log.index("checkpoint starting: immediate force wait")
    assert "checkpoint complete" not in log[start:]
    assert "shutting down because restart_after_crash is off" in log
    server.set_conf({"debug_fault_injection": ""})
    mark = len(server.log_text())
    server.start()
    log = server.log_text()[mark:]
    assert "database system was interrupted" in log and "redo starts at" in log
    assert "checkpoint complete" in log  # the end-of-recovery checkpoint
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        for xid in xids:
            assert conn.execute("SELECT txid_status(%s)", (xid,)).fetchone()[0] == "committed"


def test_failed_write_fails_the_checkpoint_and_logs_show_it(make_server):
    """The checkpointer's first write of pg_xact fails (EIO, once): CHECKPOINT
    reports "checkpoint request failed", nothing says "checkpoint complete" for it,
    and the next CHECKPOINT succeeds. tusk_ctl logs --checkpoints shows both, and
    --probes (trace_probes on) the checkpoint's probe events."""
    server = make_server(debug_fault_injection="write:pg_xact/*:EIO:count=1",
                         trace_probes=True)
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        for _ in range(2):  # commits that dirty pg_xact and no relation
            conn.execute("SELECT txid_current()")
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InternalError) as err:
            conn.execute("CHECKPOINT")
        assert err.value.diag.message_primary == "checkpoint request failed"
        assert err.value.diag.message_hint == \
            "Consult recent messages in the server log for details."
        conn.execute("CHECKPOINT")
    log = server.log_text()
    first = log.index("checkpoint starting: immediate force wait")
    second = log.index("checkpoint starting: immediate force wait", first + 1)
    assert "checkpoint complete" not in log[first:second]
    assert 'DETAIL:  Could not write to file "pg_xact/0000" at offset 0: Input/output ' \
        "error." in log[first:second]
    assert "checkpoint complete: wrote" in log[second:]
    logfile = str(server.log_path)
    out = server.ctl("logs", "-D", str(server.datadir), "--file", logfile, "--checkpoints",
                     "--json")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["flags"], r["status"]) for r in rows] == [
        ("immediate force wait", "failed"), ("immediate force wait", "complete")]
    assert rows[0]["error"] == "ERROR:  could not access status of transaction 0"
    assert rows[1]["sync_files"] == 1  # pg_xact/0000, through the request queue
    table = server.ctl("logs", "-D", str(server.datadir), "--file", logfile,
                       "--checkpoints").stdout
    assert table.splitlines()[0].startswith("start") and "failed" in table
    out = server.ctl("logs", "-D", str(server.datadir), "--file", logfile, "--probes", "--json")
    summary = json.loads(out.stdout)
    for name in ("checkpoint__start", "checkpoint__done", "buffer__checkpoint__start",
                 "buffer__checkpoint__sync__start", "buffer__checkpoint__done",
                 "checkpoint__sync__absorb", "checkpoint__sync__file"):
        assert summary["events"].get(name, 0) >= 1, (name, summary)
    assert summary["events"]["checkpoint__done"] == 1  # the failed one never got there
    assert summary["max_fsyncs_between_absorbs"] <= 10
    assert any(d["name"] == "checkpoint" for d in summary["durations"])


def test_checkpoints_and_wal_switches_amid_inserts_do_not_deadlock(make_server):
    """A checkpoint's redo pointer and pg_switch_wal() take every WAL insertion lock.
    With tiny wal_buffers, inserters holding one of them keep waiting for WAL
    buffers to be written, i.e. for the insertions of the others to finish: the
    locks already taken must advertise that no insertion is in progress under them
    (WALInsertLockAcquireExclusive), or everybody waits for ever."""
    server = make_server(wal_buffers="32kB", shared_buffers="1MB")
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE filler (v text)")
    stop = threading.Event()
    errors: list[BaseException] = []
    counts = [0] * 7
    rows = "INSERT INTO filler VALUES " + ", ".join(["(repeat('x', 2000))"] * 24)

    def run(i: int) -> None:
        try:
            with psycopg.connect(server.dsn, autocommit=True) as conn:
                while not stop.is_set():
                    if i == 6:
                        conn.execute("CHECKPOINT")
                        conn.execute("SELECT pg_switch_wal()")
                    else:
                        conn.execute(rows)  # more WAL than wal_buffers holds
                    counts[i] += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(7)]
    for t in threads:
        t.start()
    time.sleep(8)
    stop.set()
    for t in threads:
        t.join(60)
    hung = [i for i, t in enumerate(threads) if t.is_alive()]
    assert not hung, f"sessions {hung} hung (statements done: {counts})"
    assert not errors, errors
    assert counts[6] > 3 and min(counts[:6]) > 3, counts
