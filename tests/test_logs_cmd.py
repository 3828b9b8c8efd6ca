"""``tusk_ctl logs --checkpoints`` and ``--probes`` on log text written the way
the server writes it (log_line_prefix '%m [%p] '), read in-process; the running
server's side is in tests/test_checkpointer.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from postmaster import ctl
from postmaster.logs_cmd import LogConfig, checkpoint_rows, parse_records, probe_summary

COMPLETE = ("checkpoint complete: wrote {b} buffers (0.8%); 0 WAL file(s) added, 1 removed, "
            "2 recycled; write=26.950 s, sync=0.012 s, total=27.001 s; sync files=3, "
            "longest=0.008 s, average=0.004 s; distance=1024 kB, estimate=2048 kB")

CHECKPOINT_LOG = "\n".join([
    "2026-01-02 10:00:00.000 UTC [100] LOG:  checkpoint starting: time",
    "2026-01-02 10:00:05.000 UTC [200] LOG:  connection received: host=[local]",
    "2026-01-02 10:00:27.001 UTC [100] LOG:  " + COMPLETE.format(b=130),
    "2026-01-02 10:01:00.000 UTC [100] LOG:  checkpoint starting: immediate force wait",
    "2026-01-02 10:01:00.010 UTC [100] ERROR:  could not access status of transaction 0",
    "2026-01-02 10:01:00.010 UTC [100] DETAIL:  Could not write to file \"pg_xact/0000\" "
    "at offset 0: Input/output error.",
    "2026-01-02 10:01:00.011 UTC [300] ERROR:  checkpoint request failed",
    "2026-01-02 10:01:02.000 UTC [100] LOG:  checkpoint starting: immediate force wait",
    # PostgreSQL 16 appends the LSNs: still a complete line.
    "2026-01-02 10:01:02.100 UTC [100] LOG:  " + COMPLETE.format(b=4)
    + "; lsn=0/1000028, redo lsn=0/1000000",
    "2026-01-02 10:02:00.000 UTC [100] LOG:  checkpoint starting: wal",
    "2026-01-02 10:02:00.500 UTC [100] PANIC:  could not fsync file \"base/5/16384\": "
    "Input/output error",
    "2026-01-02 10:02:01.000 UTC [400] LOG:  checkpoint starting: end-of-recovery immediate wait",
]) + "\n"


def _records(text: str):
    return parse_records(text, False, LogConfig())


def test_checkpoint_rows_pair_start_and_complete_per_process():
    rows = checkpoint_rows(_records(CHECKPOINT_LOG))
    assert [(r["flags"], r["status"]) for r in rows] == [
        ("time", "complete"), ("immediate force wait", "failed"),
        ("immediate force wait", "complete"), ("wal", "failed"),
        ("end-of-recovery immediate wait", "unfinished")]
    first = rows[0]
    assert first["start"] == "2026-01-02 10:00:00.000 UTC" and first["pid"] == 100
    assert (first["buffers"], first["percent"], first["wal_added"], first["wal_removed"],
            first["wal_recycled"]) == (130, 0.8, 0, 1, 2)
    assert (first["write_s"], first["sync_s"], first["total_s"]) == (26.95, 0.012, 27.001)
    assert (first["sync_files"], first["longest_s"], first["average_s"]) == (3, 0.008, 0.004)
    assert (first["distance_kb"], first["estimate_kb"]) == (1024, 2048)
    assert rows[1]["error"] == "ERROR:  could not access status of transaction 0"
    assert "buffers" not in rows[1]  # a failed checkpoint has no figures
    assert rows[2]["buffers"] == 4
    assert rows[3]["error"].startswith("PANIC:  could not fsync file")


def _run(tmp_path: Path, capsys, *args: str) -> tuple[int, str, str]:
    log = tmp_path / "server.log"
    if not log.exists():
        log.write_text(CHECKPOINT_LOG + PROBE_LOG)
    with pytest.raises(SystemExit) as exit_:
        ctl.main(["logs", "-D", str(tmp_path), "--file", str(log), *args])
    out = capsys.readouterr()
    return exit_.value.code, out.out, out.err


def test_tusk_ctl_logs_checkpoints_table_and_json(tmp_path, capsys):
    code, out, _err = _run(tmp_path, capsys, "--checkpoints")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["start", "flags", "status", "buffers", "%", "added", "removed",
                                "recycled", "write", "s", "sync", "s", "total", "s", "files",
                                "longest", "s", "average", "s", "distance", "kB", "estimate",
                                "kB"]
    assert lines[1].split() == ["2026-01-02", "10:00:00.000", "UTC", "time", "complete", "130",
                                "0.8", "0", "1", "2", "26.950", "0.012", "27.001", "3", "0.008",
                                "0.004", "1024", "2048"]
    assert "failed" in lines[2]
    assert lines[3].strip() == "ERROR:  could not access status of transaction 0"
    code, out, _err = _run(tmp_path, capsys, "--checkpoints", "--json", "-n", "2")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["status"] for r in rows] == ["failed", "unfinished"]
    code, out, _err = _run(tmp_path, capsys, "--checkpoints", "--since",
                           "2026-01-02 10:01:01", "--json")
    assert [json.loads(line)["flags"] for line in out.splitlines()] == [
        "immediate force wait", "wal", "end-of-recovery immediate wait"]
    code, _out, err = _run(tmp_path, capsys, "--checkpoints", "--grep", "x")
    assert code == 1 and "--checkpoints cannot be combined with --grep" in err
    code, _out, err = _run(tmp_path, capsys, "--checkpoints", "--probes")
    assert code == 2  # argparse: mutually exclusive


PROBE_LOG = "\n".join(
    ["2026-01-02 11:00:00.000 UTC [100] LOG:  trace probe checkpoint__start(flags=108)",
     "2026-01-02 11:00:00.000 UTC [100] LOG:  trace probe buffer__checkpoint__start(flags=108)",
     "2026-01-02 11:00:00.100 UTC [100] LOG:  trace probe buffer__sync__start(NBuffers=128, "
     "num_to_scan=2)",
     "2026-01-02 11:00:00.200 UTC [100] LOG:  trace probe buffer__flush__start(forkNum=0, "
     "blockNum=1, spcNode=1663, dbNode=5, relNode=16384)",
     "2026-01-02 11:00:00.204 UTC [100] LOG:  trace probe buffer__flush__done(forkNum=0, "
     "blockNum=1, spcNode=1663, dbNode=5, relNode=16384)",
     "2026-01-02 11:00:00.300 UTC [100] LOG:  trace probe buffer__sync__done(NBuffers=128, "
     "num_written=1, num_to_scan=2)",
     "2026-01-02 11:00:01.000 UTC [100] LOG:  trace probe buffer__checkpoint__sync__start()",
     "2026-01-02 11:00:01.000 UTC [100] LOG:  trace probe checkpoint__sync__absorb(num_requests=3)"]
    + [f"2026-01-02 11:00:01.{i:03d} UTC [100] LOG:  trace probe checkpoint__sync__file("
       f"path=base/5/{16384 + i}, usecs=1000)" for i in range(12)]
    + ["2026-01-02 11:00:01.050 UTC [100] LOG:  trace probe checkpoint__sync__absorb("
       "num_requests=0)",
       "2026-01-02 11:00:01.500 UTC [100] LOG:  trace probe buffer__checkpoint__done()",
       "2026-01-02 11:00:01.600 UTC [100] LOG:  trace probe checkpoint__done(bufs_written=1, "
       "NBuffers=128, segs_added=0, segs_removed=0, segs_recycled=0)"]) + "\n"


def test_probe_summary_counts_pairs_phases_and_absorbs():
    summary = probe_summary(_records(CHECKPOINT_LOG + PROBE_LOG))
    assert summary["events"]["checkpoint__sync__file"] == 12
    assert summary["events"]["checkpoint__sync__absorb"] == 2
    assert summary["max_fsyncs_between_absorbs"] == 12
    d = {x["name"]: x for x in summary["durations"]}
    assert d["checkpoint"]["count"] == 1 and d["checkpoint"]["total_s"] == 1.6
    assert d["buffer__flush"]["avg_ms"] == 4.0
    assert d["buffer__sync"]["max_ms"] == 200.0
    assert d["buffer__checkpoint: write phase"]["total_s"] == 1.0
    assert d["buffer__checkpoint: sync phase"]["total_s"] == 0.5
    assert d["checkpoint__sync__file (usecs)"] == {
        "name": "checkpoint__sync__file (usecs)", "count": 12, "total_s": 0.012,
        "avg_ms": 1.0, "max_ms": 1.0}


def test_tusk_ctl_logs_probes(tmp_path, capsys):
    code, out, _err = _run(tmp_path, capsys, "--probes")
    assert code == 0
    assert "checkpoint__sync__file" in out and "buffer__checkpoint: sync phase" in out
    assert "most fsyncs between two absorbs of the request queue: 12" in out
    code, out, _err = _run(tmp_path, capsys, "--probes", "--json", "--pid", "999")
    assert json.loads(out) == {"events": {}, "durations": [],
                               "max_fsyncs_between_absorbs": None}
