"""conf.guc, conf.guc_tables and conf.sample: values, SHOW, contexts, transactions, reload.

Expected values and messages are what PostgreSQL 15.18 prints for the same input (checked
with psql against a throw-away cluster: SET/SHOW, and the server log after pg_ctl reload).
"""

import re
from pathlib import Path

import pytest

from conf import guc_tables
from conf.guc import (
    ConfigErrors,
    GucError,
    GucMessage,
    Settings,
    parse_bool,
    parse_int,
    parse_real,
    split_identifier_string,
)
from conf.guc_file import parse_config_file
from conf.guc_tables import GucContext, GucSource
from conf.sample import SAMPLE_PATH, render_sample


def set_error(s: Settings, name: str, value: str | None, **kw) -> GucError:
    with pytest.raises(GucError) as info:
        s.set(name, value, **kw)
    return info.value


# -- the table --------------------------------------------------------------------------

def test_reported_parameters_are_postgresql_15s() -> None:
    assert {v.name for v in guc_tables.TABLE if v.report} == {
        "server_version", "server_encoding", "client_encoding", "application_name",
        "default_transaction_read_only", "in_hot_standby", "is_superuser",
        "session_authorization", "DateStyle", "IntervalStyle", "TimeZone",
        "integer_datetimes", "standard_conforming_strings"}


def test_table_entries() -> None:
    sb = guc_tables.find("SHARED_BUFFERS")
    assert sb is not None
    assert (sb.context, sb.group, sb.unit, sb.boot_val, sb.min_val, sb.max_val) == (
        GucContext.POSTMASTER, "Resource Usage / Memory", "8kB", 16384, 16, 1073741823)
    assert sb.short_desc == "Sets the number of shared memory buffers used by the server."
    assert guc_tables.VARIABLES["port"].boot_val == 5433
    assert guc_tables.VARIABLES["trace_probes"].context == GucContext.SIGHUP
    assert GucContext.SU_BACKEND.pg_name == "superuser-backend"
    assert GucSource.FILE.pg_name == "configuration file"
    assert list(GucContext) == sorted(GucContext)
    assert GucSource.SESSION > GucSource.CLIENT > GucSource.ARGV > GucSource.FILE


# -- parsing numbers, units and booleans -----------------------------------------------

@pytest.mark.parametrize("value, unit, expected", [
    ("1.5MB", "kB", 1536),
    ("1.5 MB", "kB", 1536),
    ("128MB", "8kB", 16384),
    ("1GB", "MB", 1024),
    ("100kB", "MB", 0),  # rounds to the nearest MB
    ("600kB", "MB", 1),
    ("1TB", "kB", 1073741824),
    ("512", "kB", 512),
    ("1.5s", "ms", 1500),
    ("100us", "ms", 0),
    ("1500us", "ms", 2),
    ("10d", "ms", 864000000),
    ("1h", "s", 3600),
    ("90s", "min", 2),  # 1.5 min rounds half to even
    ("150s", "min", 2),
    ("1e3", "ms", 1000),
    ("010", "ms", 8),  # octal, as C's strtol(.., 0)
    ("0x10", "ms", 16),
    (".5", None, 0),
    ("2.5", None, 2),
    ("-1", "8kB", -1),
    ("  7", None, 7),
    ("7 ", None, 7),
])
def test_parse_int(value: str, unit: str | None, expected: int) -> None:
    assert parse_int(value, unit) == (expected, None)


MEM_HINT = 'Valid units for this parameter are "B", "kB", "MB", "GB", and "TB".'
TIME_HINT = 'Valid units for this parameter are "us", "ms", "s", "min", "h", and "d".'


@pytest.mark.parametrize("value, unit, hint", [
    ("abc", "kB", None),
    ("", "kB", None),
    ("10 XB", "kB", MEM_HINT),
    ("10 mb", "kB", MEM_HINT),  # units are case-sensitive
    ("10 days", "ms", TIME_HINT),
    ("10 s s", "ms", TIME_HINT),
    ("1000000000TB", "kB", "Value exceeds integer range."),
    ("3000000000", None, "Value exceeds integer range."),
    ("2kB", None, None),  # no unit allowed
    ("08", None, None),
    ("nan", None, None),
])
def test_parse_int_errors(value: str, unit: str | None, hint: str | None) -> None:
    assert parse_int(value, unit) == (None, hint)


def test_parse_int_wal_blocks() -> None:
    assert parse_int("1MB", "XBLOCKS", 8192) == (128, None)
    assert parse_int("1MB", "XBLOCKS", 16384) == (64, None)


def test_parse_real() -> None:
    assert parse_real("0.9") == (0.9, None)
    assert parse_real("2") == (2.0, None)
    assert parse_real("1e-1") == (0.1, None)
    assert parse_real("x") == (None, None)
    assert parse_real("1.5s", "ms") == (1500.0, None)
    assert parse_real("1.5 x", "ms") == (None, TIME_HINT)


@pytest.mark.parametrize("value, expected", [
    ("on", True), ("ON", True), ("off", False), ("of", False), ("o", None),
    ("true", True), ("t", True), ("tr", True), ("truex", None), ("FALSE", False),
    ("f", False), ("yes", True), ("y", True), ("no", False), ("n", False),
    ("1", True), ("0", False), ("01", None), ("", None), (" on", None),
])
def test_parse_bool(value: str, expected: bool | None) -> None:
    assert parse_bool(value) is expected


def test_split_identifier_string() -> None:
    assert split_identifier_string("ISO, MDY") == ["iso", "mdy"]
    assert split_identifier_string(' "A b" ,c ') == ["A b", "c"]
    assert split_identifier_string('"x""y"') == ['x"y']
    assert split_identifier_string("") == []
    assert split_identifier_string("a,,b") is None
    assert split_identifier_string("a b") is None
    assert split_identifier_string('"a') is None


# -- SHOW --------------------------------------------------------------------------------

@pytest.mark.parametrize("name, typed, shown", [
    ("shared_buffers", 16384, "128MB"),
    ("checkpoint_timeout", 300, "5min"),
    ("wal_buffers", -1, "4MB"),
    ("log_rotation_age", 1440, "1d"),
    ("log_rotation_size", 10240, "10MB"),
    ("statement_timeout", 0, "0"),
    ("wal_writer_flush_after", 128, "1MB"),
    ("checkpoint_flush_after", 32, "256kB"),
    ("bgwriter_flush_after", 64, "512kB"),
    ("bgwriter_delay", 200, "200ms"),
    ("max_wal_size", 1024, "1GB"),
    ("min_wal_size", 80, "80MB"),
    ("deadlock_timeout", 1000, "1s"),
    ("authentication_timeout", 60, "1min"),
    ("checkpoint_warning", 30, "30s"),
    ("log_startup_progress_interval", 10000, "10s"),
    ("segment_size", 131072, "1GB"),
    ("wal_segment_size", 16777216, "16MB"),
    ("block_size", 8192, "8192"),
    ("unix_socket_permissions", 0o777, "0777"),
    ("data_directory_mode", 0o700, "0700"),
    ("log_file_mode", 0o600, "0600"),
    ("checkpoint_completion_target", 0.9, "0.9"),
    ("bgwriter_lru_multiplier", 2.0, "2"),
    ("fsync", True, "on"),
    ("log_checkpoints", True, "on"),
    ("integer_datetimes", True, "on"),
    ("in_hot_standby", False, "off"),
    ("synchronous_commit", "on", "on"),
    ("wal_sync_method", "fdatasync", "fdatasync"),
    ("log_min_messages", "warning", "warning"),
    ("DateStyle", "ISO, MDY", "ISO, MDY"),
    ("TimeZone", "UTC", "UTC"),
    ("search_path", '"$user", public', '"$user", public'),
    ("server_version", "15.18", "15.18"),
    ("server_version_num", 150018, "150018"),
    ("server_encoding", "UTF8", "UTF8"),
    ("port", 5433, "5433"),
    ("log_line_prefix", "%m [%p] ", "%m [%p] "),
    ("log_filename", "postgresql-%Y-%m-%d_%H%M%S.log", "postgresql-%Y-%m-%d_%H%M%S.log"),
])
def test_defaults_get_and_show(name: str, typed: object, shown: str) -> None:
    s = Settings()
    assert s.get(name) == typed
    assert type(s.get(name)) is type(typed)
    assert s.show(name) == shown
    assert s.show(name.upper()) == shown


@pytest.mark.parametrize("name, value, shown", [
    ("statement_timeout", "1.5s", "1500ms"),
    ("statement_timeout", "100us", "0"),
    ("statement_timeout", "1500us", "2ms"),
    ("statement_timeout", "3600000", "1h"),
    ("statement_timeout", "10d", "10d"),
    ("statement_timeout", "1e3", "1s"),
    ("statement_timeout", "010", "8ms"),
    ("statement_timeout", "0x10", "16ms"),
    ("statement_timeout", "90min", "90min"),
    ("statement_timeout", "120min", "2h"),
    ("lock_timeout", "1001", "1001ms"),
    ("synchronous_commit", "yes", "on"),
    ("synchronous_commit", "1", "on"),
    ("synchronous_commit", "FALSE", "off"),
    ("synchronous_commit", "Remote_Apply", "remote_apply"),
    ("wal_compression", "on", "pglz"),
    ("wal_compression", "true", "pglz"),
    ("wal_compression", "no", "off"),
    ("wal_compression", "zstd", "zstd"),
    ("standard_conforming_strings", "of", "off"),
    ("standard_conforming_strings", "t", "on"),
    ("client_min_messages", "debug", "debug2"),
    ("client_min_messages", "INFO", "info"),
    ("log_min_messages", "debug", "debug2"),
    ("default_transaction_isolation", "SERIALIZABLE", "serializable"),
    ("TimeZone", "utc", "UTC"),
    ("TimeZone", "america/new_york", "America/New_York"),
    ("TimeZone", "-8", "<-08>+08"),
    ("TimeZone", "5.5", "<+05:30>-05:30"),
    ("TimeZone", "GMT+2", "GMT+2"),
    ("DateStyle", "sql", "SQL, MDY"),
    ("DateStyle", "german", "German, DMY"),
    ("DateStyle", "iso, dmy", "ISO, DMY"),
    ("DateStyle", "euro", "ISO, DMY"),
    ("DateStyle", "Postgres, YMD", "Postgres, YMD"),
    ("DateStyle", "default", "ISO, MDY"),
    ("client_encoding", "utf-8", "UTF8"),
    ("client_encoding", "unicode", "UTF8"),
    ("client_encoding", "UNICODE", "UNICODE"),
    ("client_encoding", "latin1", "LATIN1"),
    ("client_encoding", "sql_ascii", "SQL_ASCII"),
    ("application_name", "h\u00e9llo", "h??llo"),
    ("application_name", "a\tb", "a?b"),
    ("application_name", "a" * 74, "a" * 63),
    ("extra_float_digits", "-15", "-15"),
    ("IntervalStyle", "ISO_8601", "iso_8601"),
])
def test_set_then_show(name: str, value: str, shown: str) -> None:
    s = Settings()
    s.set(name, value)
    assert s.show(name) == shown


def test_datestyle_keeps_the_unspecified_part() -> None:
    s = Settings()
    s.set("DateStyle", "ymd")
    assert s.show("datestyle") == "ISO, YMD"
    s.set("DateStyle", "sql")
    assert s.show("datestyle") == "SQL, YMD"


def test_show_unit_conversions_for_other_wal_block_sizes() -> None:
    s = Settings(wal_block_size=16384, wal_segment_size=64 * 1024 * 1024)
    assert s.show("wal_writer_flush_after") == "2MB"
    assert s.show("wal_block_size") == "16384"
    assert s.show("wal_segment_size") == "64MB"
    assert s.describe("wal_writer_flush_after").unit == "XBLOCKS"
    err = set_error(s, "wal_writer_flush_after", "-1", context=GucContext.SIGHUP,
                    source=GucSource.FILE)
    assert err.message == ('-1 16kB is outside the valid range for parameter '
                           '"wal_writer_flush_after" (0 .. 2147483647)')


def test_wal_buffers_auto_value() -> None:
    s = Settings()
    assert s.get("wal_buffers") == -1
    assert s.wal_buffers_blocks() == 512  # shared_buffers / 32
    s.set("shared_buffers", "1MB", context=GucContext.POSTMASTER, source=GucSource.ARGV)
    assert s.wal_buffers_blocks() == 8  # at least 8 blocks
    assert s.show("wal_buffers") == "64kB"
    s.set("shared_buffers", "16GB", context=GucContext.POSTMASTER, source=GucSource.ARGV)
    assert s.wal_buffers_blocks() == 2048  # at most one WAL segment
    assert s.show("wal_buffers") == "16MB"
    s.set("wal_buffers", "1", context=GucContext.POSTMASTER, source=GucSource.ARGV)
    assert (s.get("wal_buffers"), s.show("wal_buffers")) == (4, "32kB")  # clamped to 4
    s.set("wal_buffers", "1MB", context=GucContext.POSTMASTER, source=GucSource.ARGV)
    assert (s.get("wal_buffers"), s.wal_buffers_blocks()) == (128, 128)


def test_constructor_values_from_pg_control() -> None:
    s = Settings(wal_block_size=4096, wal_segment_size=1 << 30, data_checksums=True)
    assert (s.get("wal_block_size"), s.get("wal_segment_size"), s.get("data_checksums")) == (
        4096, 1 << 30, True)
    assert s.show("wal_segment_size") == "1GB"
    assert s.show("wal_writer_flush_after") == "512kB"


def test_show_all() -> None:
    rows = Settings().show_all()
    names = [r[0] for r in rows]
    assert names == sorted(names, key=str.lower)
    assert "DateStyle" in names and "TimeZone" in names
    assert "is_superuser" not in names and "session_authorization" not in names
    assert ("shared_buffers", "128MB",
            "Sets the number of shared memory buffers used by the server.") in rows


def test_unknown_parameter() -> None:
    s = Settings()
    for call in (s.get, s.show):
        with pytest.raises(GucError) as info:
            call("nope")
        assert (info.value.sqlstate, info.value.message) == (
            "42704", 'unrecognized configuration parameter "nope"')
    err = set_error(s, "nope", "1")
    assert (err.sqlstate, err.message) == ("42704", 'unrecognized configuration parameter "nope"')


def test_placeholder_variables() -> None:
    s = Settings()
    with pytest.raises(GucError, match='unrecognized configuration parameter "foo.baz"'):
        s.show("foo.baz")
    s.set("foo.bar", "x")
    assert (s.get("foo.bar"), s.show("FOO.BAR")) == ("x", "x")
    assert "foo.bar" not in [r[0] for r in s.show_all()]
    s.set("foo.qux", None)  # RESET creates it, empty
    assert s.show("foo.qux") == ""
    err = set_error(s, "foo.", "x")
    assert (err.sqlstate, err.message, err.detail) == (
        "42602", 'invalid configuration parameter name "foo."',
        "Custom parameter names must be two or more simple identifiers separated by dots.")
    with pytest.raises(GucError, match="invalid configuration parameter name"):
        s.set("a.1b", "x")


# -- bad values ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, value, message, hint", [
    ("no_such_param", "1", 'unrecognized configuration parameter "no_such_param"', None),
    ("statement_timeout", "abc", 'invalid value for parameter "statement_timeout": "abc"', None),
    ("statement_timeout", "10 days",
     'invalid value for parameter "statement_timeout": "10 days"', TIME_HINT),
    ("statement_timeout", "-1",
     '-1 ms is outside the valid range for parameter "statement_timeout" (0 .. 2147483647)',
     None),
    ("Statement_Timeout", "-1",
     '-1 ms is outside the valid range for parameter "Statement_Timeout" (0 .. 2147483647)',
     None),
    ("extra_float_digits", "08", 'invalid value for parameter "extra_float_digits": "08"', None),
    ("extra_float_digits", "5",
     '5 is outside the valid range for parameter "extra_float_digits" (-15 .. 3)', None),
    ("extra_float_digits", "2kB", 'invalid value for parameter "extra_float_digits": "2kB"',
     None),
    ("commit_siblings", "1001",
     '1001 is outside the valid range for parameter "commit_siblings" (0 .. 1000)', None),
    ("idle_session_timeout", "1000000000TB",
     'invalid value for parameter "idle_session_timeout": "1000000000TB"', TIME_HINT),
    ("lock_timeout", "100000000d",
     'invalid value for parameter "lock_timeout": "100000000d"',
     "Value exceeds integer range."),
    ("synchronous_commit", "maybe", 'invalid value for parameter "synchronous_commit": "maybe"',
     "Available values: local, remote_write, remote_apply, on, off."),
    ("client_min_messages", "bogus",
     'invalid value for parameter "client_min_messages": "bogus"',
     "Available values: debug5, debug4, debug3, debug2, debug1, log, notice, warning, error."),
    ("standard_conforming_strings", "o",
     'parameter "standard_conforming_strings" requires a Boolean value', None),
    ("TimeZone", "Nowhere/Land", 'invalid value for parameter "TimeZone": "Nowhere/Land"', None),
    ("timezone", "Nowhere/Land", 'invalid value for parameter "TimeZone": "Nowhere/Land"', None),
    ("client_encoding", "bogus", 'invalid value for parameter "client_encoding": "bogus"', None),
])
def test_invalid_values(name: str, value: str, message: str, hint: str | None) -> None:
    s = Settings()
    err = set_error(s, name, value)
    assert err.message == message
    assert err.hint == hint
    assert err.sqlstate == ("42704" if name == "no_such_param" else "22023")


def test_bad_value_leaves_the_old_one() -> None:
    s = Settings()
    s.set("statement_timeout", "5s")
    set_error(s, "statement_timeout", "x")
    assert s.get("statement_timeout") == 5000


@pytest.mark.parametrize("value, detail", [
    ("iso, sql", 'Conflicting "datestyle" specifications.'),
    ("foo", 'Unrecognized key word: "foo".'),
    ("iso,", "List syntax is invalid."),
])
def test_datestyle_errors(value: str, detail: str) -> None:
    err = set_error(Settings(), "DATESTYLE", value)
    assert err.message == f'invalid value for parameter "DateStyle": "{value}"'
    assert err.detail == detail


def test_log_destination() -> None:
    s = Settings()
    ctx = {"context": GucContext.SIGHUP, "source": GucSource.FILE}
    for ok in ("stderr", "jsonlog", "stderr,jsonlog", "jsonlog, STDERR", ""):
        s.set("log_destination", ok, **ctx)
        assert s.get("log_destination") == ok
    err = set_error(s, "log_destination", "stderr,csvlog", **ctx)
    assert err.message == 'invalid value for parameter "log_destination": "stderr,csvlog"'
    assert err.detail == 'Log destination "csvlog" is not supported by tusk.'
    err = set_error(s, "log_destination", "syslog", **ctx)
    assert err.detail == 'Log destination "syslog" is not supported by tusk.'
    err = set_error(s, "log_destination", "paper", **ctx)
    assert err.detail == 'Unrecognized key word: "paper".'
    err = set_error(s, "log_destination", "stderr,,jsonlog", **ctx)
    assert err.detail == "List syntax is invalid."


# -- contexts -----------------------------------------------------------------------------

@pytest.mark.parametrize("name, message", [
    ("shared_buffers", 'parameter "shared_buffers" cannot be changed without restarting the '
                       'server'),
    ("port", 'parameter "port" cannot be changed without restarting the server'),
    ("server_version", 'parameter "server_version" cannot be changed'),
    ("block_size", 'parameter "block_size" cannot be changed'),
    ("is_superuser", 'parameter "is_superuser" cannot be changed'),
    ("fsync", 'parameter "fsync" cannot be changed now'),
    ("log_destination", 'parameter "log_destination" cannot be changed now'),
    ("checkpoint_completion_target",
     'parameter "checkpoint_completion_target" cannot be changed now'),
    ("log_connections", 'parameter "log_connections" cannot be set after connection start'),
])
def test_set_context_errors(name: str, message: str) -> None:
    s = Settings()
    for value in ("1", None):  # SET and RESET alike
        err = set_error(s, name, value)
        assert (err.sqlstate, err.message) == ("55P02", message)


def test_superuser_parameters_need_a_superuser() -> None:
    s = Settings()
    s.set("log_statement", "all")
    s.set("deadlock_timeout", "2s")
    s.is_superuser = False
    assert s.show("is_superuser") == "off"
    for name, value in (("log_statement", "ddl"), ("deadlock_timeout", "3s"),
                        ("track_io_timing", "on"), ("wal_compression", "on")):
        err = set_error(s, name, value)
        assert (err.sqlstate, err.message) == (
            "42501", f'permission denied to set parameter "{name}"')
    s.set("statement_timeout", "1s")  # user parameters stay settable
    assert s.get("log_statement") == "all"


def test_backend_parameters_at_connection_start() -> None:
    s = Settings()
    # Startup-packet options: source CLIENT, context BACKEND (SU_BACKEND for superusers).
    s.set("log_connections", "on", context=GucContext.BACKEND, source=GucSource.CLIENT)
    assert s.get("log_connections") is True
    s.is_superuser = False
    err = set_error(s, "log_disconnections", "on", context=GucContext.BACKEND,
                    source=GucSource.CLIENT)
    assert (err.sqlstate, err.message) == (
        "42501", 'permission denied to set parameter "log_disconnections"')
    s.set("application_name", "psql", context=GucContext.BACKEND, source=GucSource.CLIENT)
    s.set("application_name", "other")
    s.set("application_name", None)  # RESET goes back to the startup-packet value
    assert s.get("application_name") == "psql"


def test_session_authorization() -> None:
    s = Settings()
    s.set_session_user("alice", is_superuser=False)
    assert (s.show("session_authorization"), s.is_superuser) == ("alice", False)
    err = set_error(s, "session_authorization", "postgres")
    assert (err.sqlstate, err.message) == ("42501",
                                           "permission denied to set session authorization")
    s.set("session_authorization", "alice")
    s2 = Settings()
    s2.set_session_user("postgres", is_superuser=True)
    s2.set("session_authorization", "alice")
    assert s2.show("session_authorization") == "alice"
    s2.reset_all()  # GUC_NO_RESET_ALL
    assert s2.show("session_authorization") == "alice"
    s2.set("session_authorization", None)
    assert s2.show("session_authorization") == "postgres"


def test_higher_sources_win() -> None:
    s = Settings()
    s.set("statement_timeout", "7s", context=GucContext.POSTMASTER, source=GucSource.ARGV)
    s.set("statement_timeout", "9s", context=GucContext.SIGHUP, source=GucSource.FILE)
    assert (s.get("statement_timeout"), s.source("statement_timeout")) == (7000, GucSource.ARGV)
    s.set("statement_timeout", "1s")
    assert s.source("statement_timeout") == GucSource.SESSION
    s.set("statement_timeout", None)
    assert (s.get("statement_timeout"), s.source("statement_timeout")) == (7000, GucSource.ARGV)


# -- RESET, RESET ALL, transactions -------------------------------------------------------

def test_reset_and_reset_all() -> None:
    s = Settings()
    s.set("statement_timeout", "1s")
    s.set("DateStyle", "sql, dmy")
    s.set("log_statement", "all")
    s.set("statement_timeout", None)
    assert s.get("statement_timeout") == 0
    s.set("statement_timeout", "2s")
    s.reset_all()
    assert (s.get("statement_timeout"), s.get("DateStyle"), s.get("log_statement")) == (
        0, "ISO, MDY", "none")
    assert s.get("shared_buffers") == 16384


def test_set_local_ends_with_the_transaction() -> None:
    s = Settings()
    s.set("statement_timeout", "1s")
    for commit in (True, False):
        s.start_transaction()
        s.set("statement_timeout", "5s", is_local=True)
        assert s.get("statement_timeout") == 5000
        s.end_transaction(commit=commit)
        assert s.get("statement_timeout") == 1000


def test_set_in_transaction_commit_and_rollback() -> None:
    s = Settings()
    s.start_transaction()
    s.set("statement_timeout", "5s")
    s.end_transaction(commit=True)
    assert s.get("statement_timeout") == 5000
    s.start_transaction()
    s.set("statement_timeout", "6s")
    s.set("search_path", "x")
    s.reset_all()
    s.end_transaction(commit=False)
    assert (s.get("statement_timeout"), s.get("search_path")) == (5000, '"$user", public')
    assert s.source("statement_timeout") == GucSource.SESSION


def test_set_and_set_local_in_one_transaction() -> None:
    s = Settings()
    s.start_transaction()
    s.set("statement_timeout", "1s")
    s.set("statement_timeout", "2s", is_local=True)  # SET then SET LOCAL: SET's value stays
    assert s.get("statement_timeout") == 2000
    s.end_transaction(commit=True)
    assert s.get("statement_timeout") == 1000
    s.start_transaction()
    s.set("statement_timeout", "3s", is_local=True)
    s.set("statement_timeout", "4s")  # SET LOCAL then SET: SET wins at commit
    s.end_transaction(commit=True)
    assert s.get("statement_timeout") == 4000


def test_set_local_outside_a_transaction_has_no_effect() -> None:
    s = Settings()
    s.set("statement_timeout", "5s", is_local=True)
    assert s.get("statement_timeout") == 0
    assert not s.in_transaction
    with pytest.raises(GucError):  # but the value is still checked
        s.set("statement_timeout", "x", is_local=True)


def test_transaction_isolation_follows_the_default() -> None:
    s = Settings()
    s.set("default_transaction_isolation", "serializable")
    assert s.show("transaction_isolation") == "serializable"
    s.start_transaction()
    s.set("transaction_isolation", "repeatable read")
    s.set("transaction_read_only", "on")
    assert (s.get("transaction_isolation"), s.get("transaction_read_only")) == (
        "repeatable read", True)
    s.end_transaction(commit=True)
    assert (s.get("transaction_isolation"), s.get("transaction_read_only")) == (
        "serializable", False)


def test_reported_changes() -> None:
    s = Settings()
    first = dict(s.reported_changes())
    assert first == {
        "is_superuser": "on", "session_authorization": "", "application_name": "",
        "default_transaction_read_only": "off", "DateStyle": "ISO, MDY",
        "IntervalStyle": "postgres", "TimeZone": "UTC", "client_encoding": "UTF8",
        "standard_conforming_strings": "on", "in_hot_standby": "off",
        "integer_datetimes": "on", "server_encoding": "UTF8", "server_version": "15.18"}
    assert s.reported_changes() == []
    s.set("statement_timeout", "1s")  # not GUC_REPORT
    s.set("application_name", "psql")
    s.set("TimeZone", "UTC")  # unchanged
    s.set("datestyle", "german")
    assert s.reported_changes() == [("application_name", "psql"), ("DateStyle", "German, DMY")]
    s.start_transaction()
    s.set("application_name", "x")
    s.end_transaction(commit=False)
    assert s.reported_changes() == []  # back to what the client last heard


# -- start-up -------------------------------------------------------------------------------

def make_datadir(tmp_path: Path, conf: str, auto: str | None = "") -> Path:
    d = tmp_path / "data"
    d.mkdir(exist_ok=True)
    (d / "postgresql.conf").write_text(conf)
    if auto is not None:
        (d / "postgresql.auto.conf").write_text(auto)
    return d


def test_load_initial(tmp_path: Path) -> None:
    d = make_datadir(tmp_path, "shared_buffers = 256MB\ncheckpoint_timeout = 1min\n"
                               "include_if_exists 'extra.conf'\nmy.setting = 'x y'\n",
                     "checkpoint_timeout = 2min\n")
    s = Settings()
    msgs = s.load_initial(str(d), [("checkpoint_timeout", "3min"), ("port", "6000")])
    assert [m.message for m in msgs] == [
        f'skipping missing configuration file "{d}/extra.conf" '
        f'in file "{d}/postgresql.conf" line 3']
    assert (s.show("shared_buffers"), s.get("checkpoint_timeout"), s.get("port")) == (
        "256MB", 180, 6000)
    assert s.get("my.setting") == "x y"
    assert s.source("port") == GucSource.ARGV
    assert s.sourcefile("shared_buffers") == (f"{d}/postgresql.conf", 1)


def test_load_initial_reports_every_error(tmp_path: Path) -> None:
    d = make_datadir(tmp_path, "server_version = '1.0'\nbgwriter_delay = 'abc'\n"
                               "bgwriter_lru_maxpages = -5\nwhat = 1\nx = = 1\n",
                     "fsync = maybe\n")
    with pytest.raises(ConfigErrors) as info:
        Settings().load_initial(str(d), [("no_such_param", "zz"), ("shared_buffers", "x")])
    conf, auto = f"{d}/postgresql.conf", f"{d}/postgresql.auto.conf"
    assert str(info.value).split("\n") == [
        f'syntax error in file "{conf}" line 5, near token "="',
        f'unrecognized configuration parameter "what" in file "{conf}" line 4',
        f'parameter "server_version" cannot be changed in file "{conf}" line 1',
        f'invalid value for parameter "bgwriter_delay": "abc" in file "{conf}" line 2',
        '-5 is outside the valid range for parameter "bgwriter_lru_maxpages" (0 .. 1073741823)'
        f' in file "{conf}" line 3',
        f'parameter "fsync" requires a Boolean value in file "{auto}" line 1',
        'unrecognized configuration parameter "no_such_param" in command-line option '
        '"-c no_such_param=zz"',
        'invalid value for parameter "shared_buffers": "x" in command-line option '
        '"-c shared_buffers=x"',
    ]
    assert info.value.summary == f'configuration file "{auto}" contains errors'
    assert all(isinstance(m, GucMessage) for m in info.value.messages)
    assert info.value.messages[1].lineno == 4


def test_load_initial_command_line_only_error(tmp_path: Path) -> None:
    d = make_datadir(tmp_path, "", auto=None)
    with pytest.raises(ConfigErrors) as info:
        Settings().load_initial(str(d), [("port", "0")])
    assert str(info.value) == ('0 is outside the valid range for parameter "port" (1 .. 65535) '
                               'in command-line option "-c port=0"')
    assert info.value.summary is None


def test_load_initial_missing_postgresql_conf(tmp_path: Path) -> None:
    d = tmp_path / "empty"
    d.mkdir()
    with pytest.raises(ConfigErrors) as info:
        Settings().load_initial(str(d))
    assert str(info.value) == (f'could not open configuration file "{d}/postgresql.conf": '
                               "No such file or directory")


def test_later_duplicates_win_and_earlier_ones_are_not_checked(tmp_path: Path) -> None:
    d = make_datadir(tmp_path, "statement_timeout = bogus\nstatement_timeout = 5s\n")
    s = Settings()
    s.load_initial(str(d))
    assert s.get("statement_timeout") == 5000
    assert s.sourcefile("statement_timeout")[1] == 2


# -- reload ---------------------------------------------------------------------------------

BASE = "shared_buffers = 128MB\ncheckpoint_timeout = 5min\nlog_line_prefix = '%m [%p] '\n"


@pytest.fixture
def running(tmp_path: Path) -> tuple[Settings, Path]:
    d = make_datadir(tmp_path, BASE)
    s = Settings()
    s.load_initial(str(d))
    return s, d


def reload(s: Settings, d: Path, conf: str, *, is_postmaster: bool = True) -> list[str]:
    (d / "postgresql.conf").write_text(conf)
    return [m.message for m in s.reload(str(d), is_postmaster=is_postmaster)]


def test_reload_applies_changes(running: tuple[Settings, Path]) -> None:
    s, d = running
    conf = f"{d}/postgresql.conf"
    assert reload(s, d, BASE + "checkpoint_timeout = 10min\nbgwriter_delay = 100ms\n") == [
        f'parameter "checkpoint_timeout" changed to "10min" in file "{conf}" line 4',
        f'parameter "bgwriter_delay" changed to "100ms" in file "{conf}" line 5',
    ]
    assert (s.get("checkpoint_timeout"), s.get("bgwriter_delay")) == (600, 100)
    assert reload(s, d, BASE + "checkpoint_timeout = 600s\nbgwriter_delay = 100ms\n") == []
    assert s.sourcefile("checkpoint_timeout") == (conf, 4)


def test_reload_bad_value_applies_the_rest(running: tuple[Settings, Path]) -> None:
    s, d = running
    conf = f"{d}/postgresql.conf"
    msgs = reload(s, d, BASE + "bgwriter_delay = 'abc'\ncommit_delay = 5\n"
                              "wal_writer_delay = 1h\n")
    assert msgs == [
        f'invalid value for parameter "bgwriter_delay": "abc" in file "{conf}" line 4',
        f'parameter "commit_delay" changed to "5" in file "{conf}" line 5',
        '3600000 ms is outside the valid range for parameter "wal_writer_delay" (1 .. 10000) '
        f'in file "{conf}" line 6',
        f'configuration file "{conf}" contains errors; unaffected changes were applied',
    ]
    assert (s.get("bgwriter_delay"), s.get("commit_delay")) == (200, 5)


def test_reload_postmaster_parameter_needs_restart(running: tuple[Settings, Path]) -> None:
    s, d = running
    conf = f"{d}/postgresql.conf"
    msgs = reload(s, d, BASE + "shared_buffers = 256MB\ncommit_siblings = 6\n")
    assert msgs == [
        'parameter "shared_buffers" cannot be changed without restarting the server '
        f'in file "{conf}" line 4',
        f'parameter "commit_siblings" changed to "6" in file "{conf}" line 5',
        f'configuration file "{conf}" contains errors; unaffected changes were applied',
    ]
    assert s.get("shared_buffers") == 16384
    assert s.pending_restart("shared_buffers") and not s.pending_restart("commit_siblings")
    # Written back as it runs: no longer pending, and no error.
    assert reload(s, d, BASE + "commit_siblings = 6\n") == []
    assert not s.pending_restart("shared_buffers")


def test_reload_unknown_parameter_applies_nothing(running: tuple[Settings, Path]) -> None:
    s, d = running
    conf = f"{d}/postgresql.conf"
    msgs = reload(s, d, BASE + "commit_delay = 7\nbogus_param = 1\nfoo.bar = 2\nnope = 3\n")
    assert msgs == [
        f'unrecognized configuration parameter "bogus_param" in file "{conf}" line 5',
        f'unrecognized configuration parameter "nope" in file "{conf}" line 7',
        f'configuration file "{conf}" contains errors; no changes were applied',
    ]
    assert s.get("commit_delay") == 0
    with pytest.raises(GucError):
        s.get("foo.bar")


def test_reload_syntax_error_applies_nothing(running: tuple[Settings, Path]) -> None:
    s, d = running
    conf = f"{d}/postgresql.conf"
    (d / "inc.conf").write_text("ok = 1\nbad 'a' 'b'\n")
    msgs = reload(s, d, BASE + "commit_delay = 7\nx = = 3\ninclude 'inc.conf'\nz =\n")
    assert msgs == [
        f'syntax error in file "{conf}" line 5, near token "="',
        f'syntax error in file "{d}/inc.conf" line 2, near token "\'b\'"',
        f'syntax error in file "{conf}" line 7, near end of line',
        f'configuration file "{conf}" contains errors; no changes were applied',
    ]
    assert s.get("commit_delay") == 0


def test_reload_auto_conf_error(running: tuple[Settings, Path]) -> None:
    s, d = running
    (d / "postgresql.auto.conf").write_text("commit_delay = = 1\n")
    auto = f"{d}/postgresql.auto.conf"
    assert reload(s, d, BASE)[-1] == \
        f'configuration file "{auto}" contains errors; no changes were applied'


def test_reload_removed_parameters(running: tuple[Settings, Path]) -> None:
    s, d = running
    reload(s, d, BASE + "commit_delay = 5\ncheckpoint_timeout = 10min\n")
    conf = f"{d}/postgresql.conf"
    msgs = reload(s, d, "checkpoint_timeout = 5min\n")
    # As PostgreSQL: the removed ones first, in name order, then the file's values.
    assert msgs == [
        'parameter "commit_delay" removed from configuration file, reset to default',
        'parameter "log_line_prefix" removed from configuration file, reset to default',
        'parameter "shared_buffers" cannot be changed without restarting the server',
        f'parameter "checkpoint_timeout" changed to "5min" in file "{conf}" line 1',
        f'configuration file "{conf}" contains errors; unaffected changes were applied',
    ]
    assert (s.get("commit_delay"), s.source("commit_delay")) == (0, GucSource.DEFAULT)
    assert s.pending_restart("shared_buffers")


def test_reload_removed_parameter_with_default_value(tmp_path: Path) -> None:
    d = make_datadir(tmp_path, "commit_delay = 0\n")
    s = Settings()
    s.load_initial(str(d))
    # PostgreSQL says so even though the value does not change.
    assert reload(s, d, "") == [
        'parameter "commit_delay" removed from configuration file, reset to default']
    assert s.source("commit_delay") == GucSource.DEFAULT


def test_reload_in_a_backend(running: tuple[Settings, Path]) -> None:
    s, d = running
    s.set("statement_timeout", "5s")  # session SET keeps winning over the file
    s.set("commit_siblings", "9")
    (d / "postgresql.conf").write_text(
        BASE + "statement_timeout = 10s\ncommit_siblings = 2\nbgwriter_delay = 50ms\n"
        "log_connections = on\nbgwriter_lru_maxpages = x\n")
    msgs = s.reload(str(d), is_postmaster=False)
    conf = f"{d}/postgresql.conf"
    # Only the postmaster says what changed; errors are DEBUG2 in other processes.
    assert [(m.elevel, m.message) for m in msgs] == [
        ("DEBUG2", f'invalid value for parameter "bgwriter_lru_maxpages": "x" '
                   f'in file "{conf}" line 8'),
        ("DEBUG2", f'configuration file "{conf}" contains errors; unaffected changes were '
                   "applied"),
    ]
    assert (s.get("statement_timeout"), s.get("commit_siblings"), s.get("bgwriter_delay")) == (
        5000, 9, 50)
    assert s.get("log_connections") is False  # backend parameters: for new backends only
    s.set("statement_timeout", None)
    assert s.get("statement_timeout") == 10000
    s.reset_all()
    assert s.get("commit_siblings") == 2


def test_reload_postmaster_takes_backend_parameters(running: tuple[Settings, Path]) -> None:
    s, d = running
    msgs = reload(s, d, BASE + "log_connections = on\n")
    assert msgs == [f'parameter "log_connections" changed to "on" in file "{d}/postgresql.conf"'
                    " line 4"]
    assert s.get("log_connections") is True


def test_reload_keeps_command_line_values(tmp_path: Path) -> None:
    d = make_datadir(tmp_path, "commit_delay = 1\n")
    s = Settings()
    s.load_initial(str(d), [("commit_delay", "3")])
    assert reload(s, d, "commit_delay = 2\n") == []
    assert s.get("commit_delay") == 3


def test_reload_during_a_transaction_updates_the_value_to_restore(
        running: tuple[Settings, Path]) -> None:
    s, d = running
    s.start_transaction()
    s.set("commit_siblings", "9")
    reload(s, d, BASE + "commit_siblings = 2\n", is_postmaster=False)
    assert s.get("commit_siblings") == 9
    s.end_transaction(commit=False)
    assert s.get("commit_siblings") == 2


# -- the sample file -------------------------------------------------------------------------

def test_committed_sample_is_rendered_sample() -> None:
    with open(SAMPLE_PATH) as f:
        assert f.read() == render_sample(), "run: python -m conf.sample"


def test_sample_has_no_active_settings(tmp_path: Path) -> None:
    conf = tmp_path / "postgresql.conf"
    conf.write_text(render_sample())
    assert parse_config_file(str(conf)) == []


def test_sample_uncommented_gives_the_defaults(tmp_path: Path) -> None:
    setting = re.compile(r"#(?!include)[A-Za-z_]+ = ")
    lines = [line[1:] if setting.match(line) else line for line in render_sample().split("\n")]
    d = make_datadir(tmp_path, "\n".join(lines))
    s = Settings()
    s.load_initial(str(d))
    in_sample = [v for v in guc_tables.TABLE
                 if v.context != GucContext.INTERNAL and not v.not_in_sample]
    assert {s.source(v.name) for v in in_sample} == {GucSource.FILE}
    fresh = Settings()
    for v in in_sample:
        assert s.get(v.name) == fresh.get(v.name), v.name


def test_sample_content() -> None:
    text = render_sample()
    assert "#shared_buffers = 128MB\t\t\t# range 128kB .. 8589934584kB\n" \
           "\t\t\t\t\t# (change requires restart)\n" in text
    assert "#port = 5433\t\t\t\t# range 1 .. 65535\n" in text
    assert "#checkpoint_timeout = 5min\t\t# range 30s .. 1d\n" in text
    assert "#trace_probes = off\n" in text
    assert "# - Checkpoints -\n" in text and "# WRITE-AHEAD LOG\n" in text
    for hidden in ("server_version", "block_size", "is_superuser", "transaction_isolation",
                   "application_name"):
        assert f"#{hidden} =" not in text
    assert "#wal_writer_flush_after = 2MB" in render_sample(wal_block_size=16384)
