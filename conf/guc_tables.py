"""The GUC table: every configuration parameter tusk knows, with its type, context and range.

Mirrors PostgreSQL 15's src/include/utils/guc_tables.h and the ConfigureNames* arrays of
src/backend/utils/misc/guc.c: same names, defaults (boot values), ranges, units, contexts,
groups and short descriptions, so that pg_settings, SHOW and postgresql.conf read as they
do in PostgreSQL 15.18.

Deliberate differences:
- ``port`` defaults to 5433 so that tusk and a PostgreSQL can run side by side.
- ``TimeZone`` and ``log_timezone`` default to 'UTC' (PostgreSQL boots with 'GMT' and
  initdb writes the system zone into postgresql.conf).
- ``server_encoding`` and ``client_encoding`` default to UTF8, the only encoding tusk
  stores; ``lc_collate``/``lc_ctype`` are 'C'.
- ``trace_probes`` is tusk's own: it logs PostgreSQL's checkpoint, buffer and WAL
  probe points as log events (PostgreSQL has DTrace probes instead).
- ``wal_block_size``, ``wal_segment_size`` and ``data_checksums`` come from pg_control
  (see conf.guc.Settings), as PostgreSQL sets them when it reads its control file.
"""

import dataclasses
import enum
from dataclasses import dataclass
from typing import Literal

INT_MAX = 2**31 - 1
MAX_BACKENDS = 0x3FFFF
BLCKSZ = 8192
RELSEG_SIZE = 131072  # blocks per segment file: 1GB
NAMEDATALEN = 64


class GucContext(enum.IntEnum):
    """When a parameter may be set (PostgreSQL's GucContext, in the same order)."""

    INTERNAL = 0
    POSTMASTER = 1
    SIGHUP = 2
    SU_BACKEND = 3
    BACKEND = 4
    SUSET = 5
    USERSET = 6

    @property
    def pg_name(self) -> str:
        """The name pg_settings.context shows."""
        return _CONTEXT_NAMES[self]


_CONTEXT_NAMES = {
    GucContext.INTERNAL: "internal",
    GucContext.POSTMASTER: "postmaster",
    GucContext.SIGHUP: "sighup",
    GucContext.SU_BACKEND: "superuser-backend",
    GucContext.BACKEND: "backend",
    GucContext.SUSET: "superuser",
    GucContext.USERSET: "user",
}


class GucSource(enum.IntEnum):
    """Where a value came from; a higher source overrides a lower one (PostgreSQL order)."""

    DEFAULT = 0
    DYNAMIC_DEFAULT = 1
    ENV_VAR = 2
    FILE = 3
    ARGV = 4
    GLOBAL = 5
    DATABASE = 6
    USER = 7
    DATABASE_USER = 8
    CLIENT = 9
    OVERRIDE = 10
    INTERACTIVE = 11
    TEST = 12
    SESSION = 13

    @property
    def pg_name(self) -> str:
        """The name pg_settings.source shows."""
        return _SOURCE_NAMES[self]


_SOURCE_NAMES = {
    GucSource.DEFAULT: "default",
    GucSource.DYNAMIC_DEFAULT: "default",
    GucSource.ENV_VAR: "environment variable",
    GucSource.FILE: "configuration file",
    GucSource.ARGV: "command line",
    GucSource.GLOBAL: "global",
    GucSource.DATABASE: "database",
    GucSource.USER: "user",
    GucSource.DATABASE_USER: "database user",
    GucSource.CLIENT: "client",
    GucSource.OVERRIDE: "override",
    GucSource.INTERACTIVE: "interactive",
    GucSource.TEST: "test",
    GucSource.SESSION: "session",
}

VarType = Literal["bool", "int", "real", "string", "enum"]
# '8kB' is PostgreSQL's GUC_UNIT_BLOCKS (BLCKSZ); 'XBLOCKS' is GUC_UNIT_XBLOCKS (WAL blocks).
Unit = Literal["B", "kB", "MB", "8kB", "XBLOCKS", "ms", "s", "min"]
GucValue = bool | int | float | str

# PostgreSQL's config_group_names, in its order; the sample file follows this order.
GROUPS: tuple[str, ...] = (
    "Ungrouped",
    "File Locations",
    "Connections and Authentication / Connection Settings",
    "Connections and Authentication / TCP Settings",
    "Connections and Authentication / Authentication",
    "Connections and Authentication / SSL",
    "Resource Usage / Memory",
    "Resource Usage / Disk",
    "Resource Usage / Kernel Resources",
    "Resource Usage / Cost-Based Vacuum Delay",
    "Resource Usage / Background Writer",
    "Resource Usage / Asynchronous Behavior",
    "Write-Ahead Log / Settings",
    "Write-Ahead Log / Checkpoints",
    "Write-Ahead Log / Archiving",
    "Write-Ahead Log / Recovery",
    "Write-Ahead Log / Archive Recovery",
    "Write-Ahead Log / Recovery Target",
    "Replication / Sending Servers",
    "Replication / Primary Server",
    "Replication / Standby Servers",
    "Replication / Subscribers",
    "Query Tuning / Planner Method Configuration",
    "Query Tuning / Planner Cost Constants",
    "Query Tuning / Genetic Query Optimizer",
    "Query Tuning / Other Planner Options",
    "Reporting and Logging / Where to Log",
    "Reporting and Logging / When to Log",
    "Reporting and Logging / What to Log",
    "Reporting and Logging / Process Title",
    "Statistics / Monitoring",
    "Statistics / Cumulative Query and Index Statistics",
    "Autovacuum",
    "Client Connection Defaults / Statement Behavior",
    "Client Connection Defaults / Locale and Formatting",
    "Client Connection Defaults / Shared Library Preloading",
    "Client Connection Defaults / Other Defaults",
    "Lock Management",
    "Version and Platform Compatibility / Previous PostgreSQL Versions",
    "Version and Platform Compatibility / Other Platforms and Clients",
    "Error Handling",
    "Preset Options",
    "Customized Options",
    "Developer Options",
)


@dataclass(frozen=True)
class ConfigVariable:
    """One parameter's definition (PostgreSQL's config_generic plus the typed parts).

    ``boot_val`` is in the base unit (shared_buffers: 16384 buffers). ``enum_values`` are
    the spellings listed in hints and pg_settings.enumvals; ``enum_aliases`` maps other
    accepted spellings (PostgreSQL's hidden entries, and visible ones that mean the same
    as an earlier entry, such as wal_compression's 'on') to the name SHOW prints.
    """

    name: str
    vartype: VarType
    context: GucContext
    group: str
    short_desc: str
    boot_val: GucValue
    min_val: int | float | None = None
    max_val: int | float | None = None
    unit: Unit | None = None
    enum_values: tuple[str, ...] = ()
    enum_aliases: tuple[tuple[str, str], ...] = ()
    report: bool = False  # GUC_REPORT: sent to the client in ParameterStatus
    no_show_all: bool = False  # GUC_NO_SHOW_ALL
    not_in_sample: bool = False  # GUC_NOT_IN_SAMPLE
    disallow_in_file: bool = False  # GUC_DISALLOW_IN_FILE
    no_reset_all: bool = False  # GUC_NO_RESET_ALL
    is_name: bool = False  # GUC_IS_NAME: truncated to NAMEDATALEN - 1 bytes

    @property
    def key(self) -> str:
        """The lookup key: names are case-insensitive."""
        return self.name.lower()


# -- table builders -----------------------------------------------------------------

_C = GucContext
_PRESET = "Preset Options"
_BOOL_ALIASES_ON_OFF = (
    ("true", "on"), ("false", "off"), ("yes", "on"), ("no", "off"), ("1", "on"), ("0", "off"),
)


def _bool(name: str, context: GucContext, group: str, desc: str, boot: bool,
          **flags: bool) -> ConfigVariable:
    return ConfigVariable(name, "bool", context, group, desc, boot, **flags)


def _int(name: str, context: GucContext, group: str, desc: str, boot: int, lo: int, hi: int,
         unit: Unit | None = None, **flags: bool) -> ConfigVariable:
    return ConfigVariable(name, "int", context, group, desc, boot, lo, hi, unit, **flags)


def _real(name: str, context: GucContext, group: str, desc: str, boot: float, lo: float,
          hi: float, **flags: bool) -> ConfigVariable:
    return ConfigVariable(name, "real", context, group, desc, float(boot), float(lo), float(hi),
                          **flags)


def _str(name: str, context: GucContext, group: str, desc: str, boot: str,
         **flags: bool) -> ConfigVariable:
    return ConfigVariable(name, "string", context, group, desc, boot, **flags)


def _enum(name: str, context: GucContext, group: str, desc: str, boot: str,
          values: tuple[str, ...], aliases: tuple[tuple[str, str], ...] = (),
          **flags: bool) -> ConfigVariable:
    return ConfigVariable(name, "enum", context, group, desc, boot, enum_values=values,
                          enum_aliases=aliases, **flags)


def _preset(v: ConfigVariable) -> ConfigVariable:
    """Preset options are read-only facts about the build or the cluster."""
    assert v.context == GucContext.INTERNAL
    return dataclasses.replace(v, not_in_sample=True, disallow_in_file=True)


_ISOLATION_LEVELS = ("serializable", "repeatable read", "read committed", "read uncommitted")
_SERVER_MESSAGE_LEVELS = ("debug5", "debug4", "debug3", "debug2", "debug1", "info", "notice",
                          "warning", "error", "log", "fatal", "panic")
_CLIENT_MESSAGE_LEVELS = ("debug5", "debug4", "debug3", "debug2", "debug1", "log", "notice",
                          "warning", "error")

_CONN = "Connections and Authentication / Connection Settings"
_AUTH = "Connections and Authentication / Authentication"
_MEM = "Resource Usage / Memory"
_KERNEL = "Resource Usage / Kernel Resources"
_BGWRITER = "Resource Usage / Background Writer"
_WAL = "Write-Ahead Log / Settings"
_CKPT = "Write-Ahead Log / Checkpoints"
_WHERE = "Reporting and Logging / Where to Log"
_WHEN = "Reporting and Logging / When to Log"
_WHAT = "Reporting and Logging / What to Log"
_TITLE = "Reporting and Logging / Process Title"
_STATS = "Statistics / Cumulative Query and Index Statistics"
_STMT = "Client Connection Defaults / Statement Behavior"
_LOCALE = "Client Connection Defaults / Locale and Formatting"
_LOCKS = "Lock Management"
_COMPAT = "Version and Platform Compatibility / Previous PostgreSQL Versions"
_ERRORS = "Error Handling"
_DEV = "Developer Options"

# Within a group, entries are in the order of PostgreSQL's postgresql.conf.sample.
TABLE: tuple[ConfigVariable, ...] = (
    # -- Ungrouped ------------------------------------------------------------------------
    _bool("is_superuser", _C.INTERNAL, "Ungrouped",
          "Shows whether the current user is a superuser.", False,
          report=True, no_show_all=True, no_reset_all=True, not_in_sample=True,
          disallow_in_file=True),
    _str("session_authorization", _C.USERSET, "Ungrouped", "Sets the session user name.", "",
         report=True, no_show_all=True, no_reset_all=True, not_in_sample=True,
         disallow_in_file=True, is_name=True),
    # -- Connections and Authentication ---------------------------------------------------
    _str("listen_addresses", _C.POSTMASTER, _CONN,
         "Sets the host name or IP address(es) to listen to.", "localhost"),
    _int("port", _C.POSTMASTER, _CONN, "Sets the TCP port the server listens on.",
         5433, 1, 65535),
    _int("max_connections", _C.POSTMASTER, _CONN,
         "Sets the maximum number of concurrent connections.", 100, 1, MAX_BACKENDS),
    _int("superuser_reserved_connections", _C.POSTMASTER, _CONN,
         "Sets the number of connection slots reserved for superusers.", 3, 0, MAX_BACKENDS),
    _str("unix_socket_directories", _C.POSTMASTER, _CONN,
         "Sets the directories where Unix-domain sockets will be created.", "/tmp"),
    _int("unix_socket_permissions", _C.POSTMASTER, _CONN,
         "Sets the access permissions of the Unix-domain socket.", 0o777, 0, 0o777),
    _int("authentication_timeout", _C.SIGHUP, _AUTH,
         "Sets the maximum allowed time to complete client authentication.", 60, 1, 600, "s"),
    # -- Resource Usage -------------------------------------------------------------------
    _int("shared_buffers", _C.POSTMASTER, _MEM,
         "Sets the number of shared memory buffers used by the server.",
         16384, 16, INT_MAX // 2, "8kB"),
    _int("temp_buffers", _C.USERSET, _MEM,
         "Sets the maximum number of temporary buffers used by each session.",
         1024, 100, INT_MAX // 2, "8kB"),
    _int("work_mem", _C.USERSET, _MEM,
         "Sets the maximum memory to be used for query workspaces.", 4096, 64, INT_MAX, "kB"),
    _int("maintenance_work_mem", _C.USERSET, _MEM,
         "Sets the maximum memory to be used for maintenance operations.",
         65536, 1024, INT_MAX, "kB"),
    _int("max_files_per_process", _C.POSTMASTER, _KERNEL,
         "Sets the maximum number of simultaneously open files for each server process.",
         1000, 64, INT_MAX),
    _int("bgwriter_delay", _C.SIGHUP, _BGWRITER,
         "Background writer sleep time between rounds.", 200, 10, 10000, "ms"),
    _int("bgwriter_lru_maxpages", _C.SIGHUP, _BGWRITER,
         "Background writer maximum number of LRU pages to flush per round.",
         100, 0, INT_MAX // 2),
    _real("bgwriter_lru_multiplier", _C.SIGHUP, _BGWRITER,
          "Multiple of the average buffer usage to free per round.", 2.0, 0.0, 10.0),
    _int("bgwriter_flush_after", _C.SIGHUP, _BGWRITER,
         "Number of pages after which previously performed writes are flushed to disk.",
         64, 0, 256, "8kB"),
    # -- Write-Ahead Log ------------------------------------------------------------------
    _bool("fsync", _C.SIGHUP, _WAL, "Forces synchronization of updates to disk.", True),
    _enum("synchronous_commit", _C.USERSET, _WAL,
          "Sets the current transaction's synchronization level.", "on",
          ("local", "remote_write", "remote_apply", "on", "off"), _BOOL_ALIASES_ON_OFF),
    _enum("wal_sync_method", _C.SIGHUP, _WAL,
          "Selects the method used for forcing WAL updates to disk.", "fdatasync",
          ("fsync", "fdatasync", "open_sync", "open_datasync")),
    _bool("full_page_writes", _C.SIGHUP, _WAL,
          "Writes full pages to WAL when first modified after a checkpoint.", True),
    _enum("wal_compression", _C.SUSET, _WAL,
          "Compresses full-page writes written in WAL file with specified method.", "off",
          ("pglz", "lz4", "zstd", "on", "off"),
          (("on", "pglz"), ("true", "pglz"), ("yes", "pglz"), ("1", "pglz"),
           ("false", "off"), ("no", "off"), ("0", "off"))),
    _int("wal_buffers", _C.POSTMASTER, _WAL,
         "Sets the number of disk-page buffers in shared memory for WAL.",
         -1, -1, MAX_BACKENDS, "XBLOCKS"),
    _int("wal_writer_delay", _C.SIGHUP, _WAL,
         "Time between WAL flushes performed in the WAL writer.", 200, 1, 10000, "ms"),
    _int("wal_writer_flush_after", _C.SIGHUP, _WAL,
         "Amount of WAL written out by WAL writer that triggers a flush.",
         128, 0, INT_MAX, "XBLOCKS"),
    _int("commit_delay", _C.SUSET, _WAL,
         "Sets the delay in microseconds between transaction commit and flushing WAL to disk.",
         0, 0, 100000),
    _int("commit_siblings", _C.USERSET, _WAL,
         "Sets the minimum number of concurrent open transactions required before "
         "performing commit_delay.", 5, 0, 1000),
    _int("checkpoint_timeout", _C.SIGHUP, _CKPT,
         "Sets the maximum time between automatic WAL checkpoints.", 300, 30, 86400, "s"),
    _real("checkpoint_completion_target", _C.SIGHUP, _CKPT,
          "Time spent flushing dirty buffers during checkpoint, as fraction of checkpoint "
          "interval.", 0.9, 0.0, 1.0),
    _int("checkpoint_flush_after", _C.SIGHUP, _CKPT,
         "Number of pages after which previously performed writes are flushed to disk.",
         32, 0, 256, "8kB"),
    _int("checkpoint_warning", _C.SIGHUP, _CKPT,
         "Sets the maximum time before warning if checkpoints triggered by WAL volume happen "
         "too frequently.", 30, 0, INT_MAX, "s"),
    _int("max_wal_size", _C.SIGHUP, _CKPT, "Sets the WAL size that triggers a checkpoint.",
         1024, 2, INT_MAX, "MB"),
    _int("min_wal_size", _C.SIGHUP, _CKPT, "Sets the minimum size to shrink the WAL to.",
         80, 2, INT_MAX, "MB"),
    # -- Reporting and Logging ------------------------------------------------------------
    _str("log_destination", _C.SIGHUP, _WHERE,
         "Sets the destination for server log output.", "stderr"),
    _bool("logging_collector", _C.POSTMASTER, _WHERE,
          "Start a subprocess to capture stderr, csvlog and/or jsonlog into log files.",
          False),
    _str("log_directory", _C.SIGHUP, _WHERE,
         "Sets the destination directory for log files.", "log"),
    _str("log_filename", _C.SIGHUP, _WHERE, "Sets the file name pattern for log files.",
         "postgresql-%Y-%m-%d_%H%M%S.log"),
    _int("log_file_mode", _C.SIGHUP, _WHERE, "Sets the file permissions for log files.",
         0o600, 0, 0o777),
    _int("log_rotation_age", _C.SIGHUP, _WHERE,
         "Sets the amount of time to wait before forcing log file rotation.",
         1440, 0, INT_MAX // 60, "min"),
    _int("log_rotation_size", _C.SIGHUP, _WHERE,
         "Sets the maximum size a log file can reach before being rotated.",
         10240, 0, INT_MAX // 1024, "kB"),
    _bool("log_truncate_on_rotation", _C.SIGHUP, _WHERE,
          "Truncate existing log files of same name during log rotation.", False),
    _enum("log_min_messages", _C.SUSET, _WHEN, "Sets the message levels that are logged.",
          "warning", _SERVER_MESSAGE_LEVELS, (("debug", "debug2"),)),
    _int("log_startup_progress_interval", _C.SIGHUP, _WHEN,
         "Time between progress updates for long-running startup operations.",
         10000, 0, INT_MAX, "ms"),
    _str("application_name", _C.USERSET, _WHAT,
         "Sets the application name to be reported in statistics and logs.", "",
         report=True, not_in_sample=True, is_name=True),
    _bool("log_checkpoints", _C.SIGHUP, _WHAT, "Logs each checkpoint.", True),
    _bool("log_connections", _C.SU_BACKEND, _WHAT, "Logs each successful connection.", False),
    _bool("log_disconnections", _C.SU_BACKEND, _WHAT,
          "Logs end of a session, including duration.", False),
    _str("log_line_prefix", _C.SIGHUP, _WHAT,
         "Controls information prefixed to each log line.", "%m [%p] "),
    _bool("log_lock_waits", _C.SUSET, _WHAT, "Logs long lock waits.", False),
    _enum("log_statement", _C.SUSET, _WHAT, "Sets the type of statements logged.", "none",
          ("none", "ddl", "mod", "all")),
    _str("log_timezone", _C.SIGHUP, _WHAT, "Sets the time zone to use in log messages.",
         "UTC"),
    _bool("trace_probes", _C.SIGHUP, _WHAT,
          "Logs the checkpoint, buffer and WAL trace probes.", False),
    _str("cluster_name", _C.POSTMASTER, _TITLE,
         "Sets the name of the cluster, which is included in the process title.", "",
         is_name=True),
    _bool("update_process_title", _C.SUSET, _TITLE,
          "Updates the process title to show the active SQL command.", True),
    # -- Statistics -----------------------------------------------------------------------
    _bool("track_activities", _C.SUSET, _STATS,
          "Collects information about executing commands.", True),
    _bool("track_io_timing", _C.SUSET, _STATS,
          "Collects timing statistics for database I/O activity.", False),
    _bool("track_wal_io_timing", _C.SUSET, _STATS,
          "Collects timing statistics for WAL I/O activity.", False),
    # -- Client Connection Defaults -------------------------------------------------------
    _enum("client_min_messages", _C.USERSET, _STMT,
          "Sets the message levels that are sent to the client.", "notice",
          _CLIENT_MESSAGE_LEVELS, (("debug", "debug2"), ("info", "info"))),
    _str("search_path", _C.USERSET, _STMT,
         "Sets the schema search order for names that are not schema-qualified.",
         '"$user", public'),
    _enum("default_transaction_isolation", _C.USERSET, _STMT,
          "Sets the transaction isolation level of each new transaction.", "read committed",
          _ISOLATION_LEVELS),
    _bool("default_transaction_read_only", _C.USERSET, _STMT,
          "Sets the default read-only status of new transactions.", False, report=True),
    _enum("transaction_isolation", _C.USERSET, _STMT,
          "Sets the current transaction's isolation level.", "read committed",
          _ISOLATION_LEVELS, no_reset_all=True, not_in_sample=True, disallow_in_file=True),
    _bool("transaction_read_only", _C.USERSET, _STMT,
          "Sets the current transaction's read-only status.", False,
          no_reset_all=True, not_in_sample=True, disallow_in_file=True),
    _int("statement_timeout", _C.USERSET, _STMT,
         "Sets the maximum allowed duration of any statement.", 0, 0, INT_MAX, "ms"),
    _int("lock_timeout", _C.USERSET, _STMT,
         "Sets the maximum allowed duration of any wait for a lock.", 0, 0, INT_MAX, "ms"),
    _int("idle_in_transaction_session_timeout", _C.USERSET, _STMT,
         "Sets the maximum allowed idle time between queries, when in a transaction.",
         0, 0, INT_MAX, "ms"),
    _int("idle_session_timeout", _C.USERSET, _STMT,
         "Sets the maximum allowed idle time between queries, when not in a transaction.",
         0, 0, INT_MAX, "ms"),
    _str("DateStyle", _C.USERSET, _LOCALE,
         "Sets the display format for date and time values.", "ISO, MDY", report=True),
    _enum("IntervalStyle", _C.USERSET, _LOCALE,
          "Sets the display format for interval values.", "postgres",
          ("postgres", "postgres_verbose", "sql_standard", "iso_8601"), report=True),
    _str("TimeZone", _C.USERSET, _LOCALE,
         "Sets the time zone for displaying and interpreting time stamps.", "UTC",
         report=True),
    _int("extra_float_digits", _C.USERSET, _LOCALE,
         "Sets the number of digits displayed for floating-point values.", 1, -15, 3),
    _str("client_encoding", _C.USERSET, _LOCALE,
         "Sets the client's character set encoding.", "UTF8", report=True, is_name=True),
    # -- Lock Management, compatibility, error handling -----------------------------------
    _int("deadlock_timeout", _C.SUSET, _LOCKS,
         "Sets the time to wait on a lock before checking for deadlock.",
         1000, 1, INT_MAX, "ms"),
    _int("max_locks_per_transaction", _C.POSTMASTER, _LOCKS,
         "Sets the maximum number of locks per transaction.", 64, 10, INT_MAX),
    _bool("standard_conforming_strings", _C.USERSET, _COMPAT,
          "Causes '...' strings to treat backslashes literally.", True, report=True),
    _bool("restart_after_crash", _C.SIGHUP, _ERRORS,
          "Reinitialize server after backend crash.", True),
    _bool("data_sync_retry", _C.POSTMASTER, _ERRORS,
          "Whether to continue running after a failure to sync data files.", False),
    # -- Preset Options -------------------------------------------------------------------
    _preset(_int("block_size", _C.INTERNAL, _PRESET, "Shows the size of a disk block.",
                 BLCKSZ, BLCKSZ, BLCKSZ)),
    _preset(_bool("data_checksums", _C.INTERNAL, _PRESET,
                  "Shows whether data checksums are turned on for this cluster.", False)),
    _preset(_int("data_directory_mode", _C.INTERNAL, _PRESET,
                 "Shows the mode of the data directory.", 0o700, 0, 0o777)),
    _preset(_bool("in_hot_standby", _C.INTERNAL, _PRESET,
                  "Shows whether hot standby is currently active.", False, report=True)),
    _preset(_bool("integer_datetimes", _C.INTERNAL, _PRESET,
                  "Shows whether datetimes are integer based.", True, report=True)),
    _preset(_str("lc_collate", _C.INTERNAL, _PRESET, "Shows the collation order locale.",
                 "C")),
    _preset(_str("lc_ctype", _C.INTERNAL, _PRESET,
                 "Shows the character classification and case conversion locale.", "C")),
    _preset(_int("max_function_args", _C.INTERNAL, _PRESET,
                 "Shows the maximum number of function arguments.", 100, 100, 100)),
    _preset(_int("max_identifier_length", _C.INTERNAL, _PRESET,
                 "Shows the maximum identifier length.",
                 NAMEDATALEN - 1, NAMEDATALEN - 1, NAMEDATALEN - 1)),
    _preset(_int("segment_size", _C.INTERNAL, _PRESET,
                 "Shows the number of pages per disk file.",
                 RELSEG_SIZE, RELSEG_SIZE, RELSEG_SIZE, "8kB")),
    _preset(_str("server_encoding", _C.INTERNAL, _PRESET,
                 "Shows the server (database) character set encoding.", "UTF8", report=True)),
    _preset(_str("server_version", _C.INTERNAL, _PRESET, "Shows the server version.", "15.18",
                 report=True)),
    _preset(_int("server_version_num", _C.INTERNAL, _PRESET,
                 "Shows the server version as an integer.", 150018, 150018, 150018)),
    _preset(_int("wal_block_size", _C.INTERNAL, _PRESET,
                 "Shows the block size in the write ahead log.", 8192, 8192, 8192)),
    _preset(_int("wal_segment_size", _C.INTERNAL, _PRESET,
                 "Shows the size of write ahead log segments.",
                 16 * 1024 * 1024, 1024 * 1024, 1024 * 1024 * 1024, "B")),
    # -- Developer Options (not in the sample file, as in PostgreSQL) ---------------------
    _bool("zero_damaged_pages", _C.SUSET, _DEV,
          "Continues processing past damaged page headers.", False, not_in_sample=True),
    _bool("ignore_checksum_failure", _C.SUSET, _DEV,
          "Continues processing after a checksum failure.", False, not_in_sample=True),
    _int("debug_checkpointer_queue_size", _C.POSTMASTER, _DEV,
         "Sets the size of the checkpointer's fsync request queue (0: shared_buffers).", 0, 0,
         INT_MAX // 2, not_in_sample=True),
    _str("debug_fault_injection", _C.SUSET, _DEV,
         "Makes matching file operations fail or stall (tusk's, for tests).", "",
         not_in_sample=True),
    _bool("debug_power_loss", _C.POSTMASTER, _DEV,
          "Journals unsynced file changes so that tusk_ctl simulate-power-loss can undo "
          "them (tusk's, for tests).", False, not_in_sample=True),
)

# Lower-cased name -> definition.
VARIABLES: dict[str, ConfigVariable] = {v.key: v for v in TABLE}
assert len(VARIABLES) == len(TABLE), "duplicate GUC name"
assert all(v.group in GROUPS for v in TABLE)


def find(name: str) -> ConfigVariable | None:
    """The definition of ``name`` (any case), or None."""
    return VARIABLES.get(name.lower())
