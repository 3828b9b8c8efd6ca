"""Units of the logging collector (procs/syslogger.py) and of ``tusk_ctl logs``'
log parsing (postmaster/logs_cmd.py): chunk reassembly, file names and rotation
times, current_logfiles, the stderr-log parser and the filters."""

from __future__ import annotations

import argparse
import json
import os
import random
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from postmaster import logs_cmd
from postmaster.logs_cmd import (
    LogConfig,
    LogRecord,
    RecordFilter,
    compile_prefix,
    format_text,
    parse_json_line,
    parse_log_timestamp,
    parse_records,
    parse_time_arg,
)
from procs import syslogger
from procs.syslogger import (
    LOG_DESTINATION_JSONLOG,
    LOG_DESTINATION_STDERR,
    PIPE_HEADER,
    ChunkAssembler,
    SysLogger,
    logfile_getname,
    next_rotation_time,
)
from utils import elog

STDERR = elog.PIPE_PROTO_DEST_STDERR
JSON = elog.PIPE_PROTO_DEST_JSONLOG
LAST = elog.PIPE_PROTO_IS_LAST


def chunk(pid: int, payload: bytes, flags: int) -> bytes:
    return PIPE_HEADER.pack(b"\0\0", len(payload), pid, flags) + payload


def chunks_of(data: bytes, pid: int, dest: int = STDERR) -> list[bytes]:
    """What elog.write_pipe_chunks writes for one record, chunk by chunk."""
    r, w = os.pipe()
    try:
        os.set_blocking(r, False)
        elog.write_pipe_chunks(w, data, dest)
        raw = os.read(r, 1 << 20)
    finally:
        os.close(r)
        os.close(w)
    out = []
    while raw:
        _nuls, length, _pid, _flags = PIPE_HEADER.unpack_from(raw)
        out.append(PIPE_HEADER.pack(b"\0\0", length, pid, _flags)
                   + raw[PIPE_HEADER.size:PIPE_HEADER.size + length])
        raw = raw[PIPE_HEADER.size + length:]
    return out


class Sink:
    def __init__(self) -> None:
        self.writes: list[tuple[bytes, int]] = []

    def __call__(self, data: bytes, dest: int) -> None:
        self.writes.append((data, dest))

    def text(self, dest: int | None = None) -> bytes:
        return b"".join(d for d, t in self.writes if dest is None or t == dest)


# -- chunk reassembly ---------------------------------------------------------------------------

def test_single_chunk_record() -> None:
    sink = Sink()
    ChunkAssembler(sink).feed(chunk(42, b"hello\n", STDERR | LAST))
    assert sink.writes == [(b"hello\n", LOG_DESTINATION_STDERR)]


def test_multi_chunk_record_written_once_whole() -> None:
    record = ("x" * 1600 + "\n").encode()
    parts = chunks_of(record, 7, JSON)
    assert len(parts) == 4
    sink = Sink()
    asm = ChunkAssembler(sink)
    for p in parts:
        asm.feed(p)
    assert sink.writes == [(record, LOG_DESTINATION_JSONLOG)]
    assert asm.pending == 0


def test_interleaved_processes_never_mix() -> None:
    records = {pid: (f"{pid}:" + "abcdefghij" * (50 + pid)).encode() + b"\n"
               for pid in range(100, 110)}
    queues = {pid: chunks_of(rec, pid) for pid, rec in records.items()}
    stream = b""
    rng = random.Random(5)
    while queues:
        pid = rng.choice(sorted(queues))
        stream += queues[pid].pop(0)
        if not queues[pid]:
            del queues[pid]
    sink = Sink()
    asm = ChunkAssembler(sink)
    # Reads of any size: byte by byte at worst.
    pos = 0
    while pos < len(stream):
        n = rng.choice([1, 3, 9, 10, 511, 512, 4096])
        asm.feed(stream[pos:pos + n])
        pos += n
    assert sorted(d for d, _ in sink.writes) == sorted(records.values())
    assert asm.pending == 0


def test_non_protocol_bytes_go_to_stderr_file_as_is() -> None:
    sink = Sink()
    asm = ChunkAssembler(sink)
    traceback = b"Traceback (most recent call last):\n  File \"x.py\", line 1\nBoom\n"
    asm.feed(chunk(5, b"before\n", JSON | LAST) + traceback + chunk(5, b"after\n", STDERR | LAST))
    assert sink.writes == [(b"before\n", LOG_DESTINATION_JSONLOG),
                           (traceback, LOG_DESTINATION_STDERR),
                           (b"after\n", LOG_DESTINATION_STDERR)]


def test_short_raw_output_is_not_held_back() -> None:
    sink = Sink()
    ChunkAssembler(sink).feed(b"ok\n")
    assert sink.writes == [(b"ok\n", LOG_DESTINATION_STDERR)]


def test_partial_header_waits_for_more() -> None:
    sink = Sink()
    asm = ChunkAssembler(sink)
    data = chunk(9, b"record\n", STDERR | LAST)
    asm.feed(data[:4])
    assert sink.writes == []
    asm.feed(data[4:])
    assert sink.writes == [(b"record\n", LOG_DESTINATION_STDERR)]


@pytest.mark.parametrize("bad", [
    PIPE_HEADER.pack(b"\0\0", 0, 5, STDERR | LAST),  # empty payload
    PIPE_HEADER.pack(b"\0\0", 600, 5, STDERR | LAST),  # longer than a chunk can be
    PIPE_HEADER.pack(b"\0\0", 3, 0, STDERR | LAST),  # pid 0
    PIPE_HEADER.pack(b"\0\0", 3, 5, STDERR | JSON | LAST),  # two destinations
])
def test_invalid_headers_are_raw_data(bad: bytes) -> None:
    sink = Sink()
    asm = ChunkAssembler(sink)
    asm.feed(bad + b"abc" + chunk(5, b"ok\n", STDERR | LAST))
    asm.flush()
    assert sink.text() == bad + b"abc" + b"ok\n"
    assert sink.writes[-1] == (b"ok\n", LOG_DESTINATION_STDERR)


def test_flush_at_eof_writes_incomplete_records() -> None:
    sink = Sink()
    asm = ChunkAssembler(sink)
    parts = chunks_of(b"y" * 1200, 77, JSON)
    asm.feed(parts[0] + parts[1][:20])
    assert sink.writes == []
    asm.flush()
    assert sink.text(LOG_DESTINATION_STDERR) == parts[0][9:] + parts[1][:20]
    assert asm.pending == 0


# -- file names, rotation times ------------------------------------------------------------------

def test_logfile_getname_suffix_rules() -> None:
    t = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
    assert logfile_getname("log", "postgresql-%Y-%m-%d_%H%M%S.log", t, "UTC") == \
        "log/postgresql-2023-11-14_221320.log"
    assert logfile_getname("log", "postgresql-%Y-%m-%d_%H%M%S.log", t, "UTC", ".json") == \
        "log/postgresql-2023-11-14_221320.json"
    assert logfile_getname("log", "server-%H.txt", t, "UTC", ".json") == "log/server-22.txt.json"
    assert logfile_getname("/var/log/pg", "pg-%H.log", t, "Asia/Kolkata") == \
        "/var/log/pg/pg-03.log"


def test_next_rotation_time_is_a_multiple_of_the_age() -> None:
    now = 1_700_000_000.0
    nxt = next_rotation_time(now, 60, "UTC")
    assert nxt % 3600 == 0 and now < nxt <= now + 3600
    # A day in Kolkata (+05:30) ends at local midnight, 18:30 UTC.
    nxt = next_rotation_time(now, 1440, "Asia/Kolkata")
    assert time.strftime("%H:%M", time.gmtime(nxt)) == "18:30"
    assert now < nxt <= now + 86400


class FakeSettings:
    def __init__(self, **values: Any) -> None:
        self.values = {"log_directory": "log", "log_filename": "postgresql-%H%M%S.log",
                       "log_destination": "stderr", "log_rotation_age": 0,
                       "log_rotation_size": 0, "log_truncate_on_rotation": False,
                       "log_file_mode": 0o600, "log_timezone": "UTC"} | values

    def get(self, name: str) -> Any:
        return self.values[name]


def current_logfiles(datadir: Path) -> str:
    return (datadir / "current_logfiles").read_text()


def test_open_initial_creates_directory_file_and_current_logfiles(tmp_path: Path) -> None:
    logger = SysLogger(str(tmp_path), FakeSettings(log_destination="stderr,jsonlog",
                                                   log_file_mode=0o640))
    logger.open_initial(1_700_000_000.0)
    try:
        assert stat.S_IMODE(os.stat(tmp_path / "log").st_mode) == 0o700
        assert stat.S_IMODE(os.stat(tmp_path / "log/postgresql-221320.log").st_mode) == 0o640
        assert current_logfiles(tmp_path) == ("stderr log/postgresql-221320.log\n"
                                              "jsonlog log/postgresql-221320.json\n")
        logger.write_syslogger_file(b"text\n", LOG_DESTINATION_STDERR)
        logger.write_syslogger_file(b"{}\n", LOG_DESTINATION_JSONLOG)
        assert (tmp_path / "log/postgresql-221320.log").read_bytes() == b"text\n"
        assert (tmp_path / "log/postgresql-221320.json").read_bytes() == b"{}\n"
        assert not (tmp_path / "current_logfiles.tmp").exists()
    finally:
        logger.close()


def test_rotation_on_request_by_size_and_time(tmp_path: Path) -> None:
    settings = FakeSettings(log_rotation_size=1)
    logger = SysLogger(str(tmp_path), settings)
    t0 = 1_700_000_000.0
    logger.open_initial(t0)
    try:
        logger.write_syslogger_file(b"a" * 1100, LOG_DESTINATION_STDERR)
        logger.check_rotation(t0 + 1)  # bigger than log_rotation_size
        assert current_logfiles(tmp_path) == "stderr log/postgresql-221321.log\n"
        logger.rotation_requested = True  # SIGUSR1
        logger.check_rotation(t0 + 2)
        assert current_logfiles(tmp_path) == "stderr log/postgresql-221322.log\n"
        # Same name again: appended to, like PostgreSQL.
        logger.write_syslogger_file(b"one\n", LOG_DESTINATION_STDERR)
        logger.rotation_requested = True
        logger.check_rotation(t0 + 2)
        logger.write_syslogger_file(b"two\n", LOG_DESTINATION_STDERR)
        assert (tmp_path / "log/postgresql-221322.log").read_bytes() == b"one\ntwo\n"
        # Time-based, with truncation: an existing file of the new name is overwritten.
        settings.values.update(log_rotation_age=1, log_truncate_on_rotation=True,
                               log_filename="pg-%M.log")
        (tmp_path / "log/pg-14.log").write_text("old contents\n")
        logger.reload(t0 + 3)
        logger.check_rotation(t0 + 3)  # log_filename changed: forced rotation, appends
        assert current_logfiles(tmp_path) == "stderr log/pg-13.log\n"
        assert logger.next_rotation_time == t0 + 40
        logger.check_rotation(t0 + 40)
        assert current_logfiles(tmp_path) == "stderr log/pg-14.log\n"
        assert (tmp_path / "log/pg-14.log").read_bytes() == b""
    finally:
        logger.close()


def test_jsonlog_turned_on_and_off_by_reload(tmp_path: Path) -> None:
    settings = FakeSettings()
    logger = SysLogger(str(tmp_path), settings)
    logger.open_initial(1_700_000_000.0)
    try:
        # jsonlog output without a jsonlog file lands in the stderr file.
        logger.write_syslogger_file(b"{}\n", LOG_DESTINATION_JSONLOG)
        assert (tmp_path / "log/postgresql-221320.log").read_bytes() == b"{}\n"
        settings.values["log_destination"] = "jsonlog"
        logger.reload(1_700_000_001.0)
        logger.check_rotation(1_700_000_001.0)
        assert current_logfiles(tmp_path) == "jsonlog log/postgresql-221321.json\n"
        settings.values["log_destination"] = "stderr"
        logger.reload(1_700_000_002.0)
        logger.check_rotation(1_700_000_002.0)
        assert LOG_DESTINATION_JSONLOG not in logger.files
        assert current_logfiles(tmp_path) == "stderr log/postgresql-221322.log\n"
    finally:
        logger.close()


def test_unwritable_directory_disables_rotation(tmp_path: Path) -> None:
    (tmp_path / "log").write_text("a file, not a directory")
    logger = SysLogger(str(tmp_path), FakeSettings(log_rotation_age=60))
    written: list[bytes] = []
    old = elog.direct_writer
    elog.direct_writer = lambda data, dest: written.append(data)
    try:
        logger.open_initial(1_700_000_000.0)
    finally:
        elog.direct_writer = old
    assert logger.rotation_disabled
    assert logger.sleep_time(1_700_000_000.0) is None
    assert any(b"could not open log file" in w for w in written)
    assert any(b"disabling automatic rotation" in w for w in written)


def test_open_pipe_is_close_on_exec() -> None:
    r, w = syslogger.open_pipe()
    try:
        assert not os.get_inheritable(r) and not os.get_inheritable(w)
    finally:
        os.close(r)
        os.close(w)


# -- the stderr-log parser ------------------------------------------------------------------------

def render(prefix: str, ctx: elog.LogContext, t: float, severity: str, message: str,
           **extra: Any) -> str:
    """What elog writes for a record, with this prefix."""
    old = elog._setting
    elog.configure(lambda name: prefix if name == "log_line_prefix" else old(name))
    try:
        event = {"time": t, "severity": severity, "message": message} | extra
        return elog.render_stderr(event, ctx)
    finally:
        elog.configure(old)


def parse(text: str, prefix: str = "%m [%p] ") -> list[LogRecord]:
    return list(parse_records(text, False, LogConfig(log_line_prefix=prefix)))


def test_default_prefix_multi_line_records() -> None:
    text = (
        "2024-05-01 10:00:00.123 UTC [100] LOG:  database system is ready to accept connections\n"
        "2024-05-01 10:00:01.000 UTC [200] ERROR:  relation \"nope\" does not exist\n"
        "2024-05-01 10:00:01.000 UTC [200] HINT:  Check the name.\n"
        "2024-05-01 10:00:01.000 UTC [200] STATEMENT:  select *\n"
        "\tfrom nope\n"
        "2024-05-01 10:00:02.500 UTC [100] LOG:  checkpoint starting: time\n"
    )
    recs = parse(text)
    assert [r.fields["error_severity"] for r in recs] == ["LOG", "ERROR", "LOG"]
    err = recs[1]
    assert err.fields["pid"] == 200
    assert err.fields["message"] == 'relation "nope" does not exist'
    assert err.fields["hint"] == "Check the name."
    assert err.fields["statement"] == "select *\n\tfrom nope"
    assert err.text == "\n".join(text.split("\n")[1:5])
    assert recs[0].time == parse_log_timestamp("2024-05-01T10:00:00.123+00:00")
    assert recs[2].time == recs[0].time + 2.377


def test_round_trip_with_a_rich_prefix() -> None:
    prefix = "%t [%p-%l] %q%u@%d %a %r %b %c %e "
    ctx = elog.LogContext(backend_type="client backend", pid=4321, session_start=1_700_000_000,
                          user="alice", dbname="shop", remote_host="10.0.0.7",
                          remote_port="50432", application_name="psql", line_num=3,
                          is_session=True)
    text = render(prefix, ctx, 1_700_000_100.25, "ERROR", "division by zero",
                  sqlstate="22012", detail="Some detail", statement="select 1/0")
    aux = elog.LogContext(backend_type="checkpointer", pid=99, line_num=1)
    text += render(prefix, aux, 1_700_000_101.0, "LOG", "checkpoint starting: time")
    recs = parse(text, prefix)
    assert len(recs) == 2
    f = recs[0].fields
    assert f == {
        "timestamp": "2023-11-14 22:15:00 UTC", "pid": 4321, "line_num": 3, "user": "alice",
        "dbname": "shop", "application_name": "psql", "remote_host": "10.0.0.7",
        "remote_port": 50432, "backend_type": "client backend",
        "session_id": "6553f100.10e1", "state_code": "22012", "error_severity": "ERROR",
        "message": "division by zero", "detail": "Some detail", "statement": "select 1/0",
    }
    assert recs[0].time == 1_700_000_100.0
    # The checkpointer is no session: its prefix stops at %q.
    assert recs[1].fields == {"timestamp": "2023-11-14 22:15:01 UTC", "pid": 99, "line_num": 1,
                              "error_severity": "LOG", "message": "checkpoint starting: time"}


def test_raw_output_and_interleaved_detail() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "ZeroDivisionError: division by zero\n"
        "2024-05-01 10:00:00.000 UTC [1] ERROR:  first\n"
        "2024-05-01 10:00:00.000 UTC [2] LOG:  second\n"
        "2024-05-01 10:00:00.000 UTC [1] DETAIL:  detail of first\n"
        "Traceback (most recent call last):\n"
        "  boom\n"
    )
    recs = parse(text)
    assert recs[0].severity is None
    assert recs[0].fields["message"].splitlines()[-1] == "ZeroDivisionError: division by zero"
    assert recs[1].fields == {"timestamp": "2024-05-01 10:00:00.000 UTC", "pid": 1,
                              "error_severity": "ERROR", "message": "first",
                              "detail": "detail of first"}
    assert recs[2].fields["message"] == "second"
    assert recs[3].fields["message"] == "Traceback (most recent call last):\n  boom"


def test_prefix_escapes_compile_to_patterns() -> None:
    pat = compile_prefix("%% %-10p|%5b|")
    m = pat.regex.match("% 12        |   checkpointer|LOG:  x")
    assert m is not None and m.group("text") == "x"


def test_json_lines_and_text_rendering_match_elog() -> None:
    ctx = elog.LogContext(backend_type="client backend", pid=77, session_start=1_700_000_000,
                          user="bob", dbname="postgres", line_num=2, is_session=True)
    event = {"time": 1_700_000_005.5, "severity": "WARNING", "message": "careful",
             "hint": "Be careful."}
    line = elog.render_json(event, ctx)
    rec = parse_json_line(line.rstrip("\n"))
    assert rec.fields["error_severity"] == "WARNING" and rec.time == 1_700_000_005.5
    prefix = "%m [%p] %q%u@%d "
    assert format_text(rec, prefix) + "\n" == render(prefix, ctx, 1_700_000_005.5, "WARNING",
                                                     "careful", hint="Be careful.")
    assert parse_json_line("not json").fields == {"message": "not json"}


# -- filters and times ------------------------------------------------------------------------------

def rec(severity: str | None, **fields: Any) -> LogRecord:
    f = {"message": "m"} | fields
    if severity:
        f["error_severity"] = severity
    return LogRecord(f, fields.get("t"))


def test_severity_uses_the_server_log_ranking() -> None:
    flt = RecordFilter(min_severity="ERROR")
    kept = [s for s in ("DEBUG1", "INFO", "NOTICE", "WARNING", "ERROR", "LOG", "FATAL", "PANIC")
            if flt.matches(rec(s))]
    assert kept == ["ERROR", "LOG", "FATAL", "PANIC"]
    assert not RecordFilter(min_severity="LOG").matches(rec("ERROR"))
    assert not flt.matches(rec(None))


def test_other_filters() -> None:
    r = LogRecord({"message": "connection authorized: user=x", "pid": 5,
                   "backend_type": "client backend", "detail": "d"}, 100.0)
    assert RecordFilter(backend_type="Client Backend").matches(r)
    assert not RecordFilter(backend_type="checkpointer").matches(r)
    assert RecordFilter(pid=5).matches(r) and not RecordFilter(pid=6).matches(r)
    assert RecordFilter(since=100.0, until=100.0).matches(r)
    assert not RecordFilter(since=100.5).matches(r)
    assert RecordFilter(pattern=logs_cmd.compile_grep("user=\\w")).matches(r)
    assert RecordFilter(pattern=logs_cmd.compile_grep("authorized: (")).matches(
        LogRecord({"message": "authorized: (x"}))
    assert not RecordFilter(pattern=logs_cmd.compile_grep("AUTH")).matches(r)
    assert RecordFilter(pattern=logs_cmd.compile_grep("AUTH", ignore_case=True)).matches(r)


def test_time_arguments() -> None:
    now = 1_700_000_000.0
    assert parse_time_arg("10min", now) == now - 600
    assert parse_time_arg("2h", now) == now - 7200
    assert parse_time_arg("30 s ago", now) == now - 30
    assert parse_time_arg("now", now) == now
    assert parse_time_arg("2023-11-14T22:13:20Z", now) == now
    assert parse_time_arg("2023-11-14 22:13:20", now) == now  # log_timezone (UTC)
    assert parse_time_arg("2023-11-14 23:13:20+01:00", now) == now
    assert parse_time_arg("2023-11-14 22:13:20.000 UTC", now) == now
    with pytest.raises(ValueError):
        parse_time_arg("yesterday-ish", now)


def test_build_filter_rejects_unknown_severity() -> None:
    args = argparse.Namespace(severity="loud", backend_type=None, pid=None, since=None,
                              until=None, grep=None, ignore_case=False)
    with pytest.raises(ValueError, match="invalid severity"):
        logs_cmd.build_filter(args, LogConfig(), time.time())


def test_all_log_files_prefers_jsonlog_twins(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.mkdir()
    for i, name in enumerate(["a.log", "a.json", "b.log", "c.txt", "c.txt.json", "d.csv"]):
        (log / name).write_text(json.dumps({"n": i}) + "\n")
        os.utime(log / name, (1000 + i, 1000 + i))
    names = [os.path.basename(p) for p in logs_cmd.all_log_files(str(tmp_path), LogConfig())]
    assert names == ["a.json", "b.log", "c.txt.json"]
