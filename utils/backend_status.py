"""Backend status (pg_stat_activity) and per-database counters (pg_stat_database) —
mirrors src/backend/utils/activity/backend_status.c (PgBackendStatus,
pgstat_beinit, pgstat_bestart, pgstat_report_activity, pgstat_report_xact_timestamp,
pgstat_report_appname, pgstat_read_current_status) and the database half of
utils/activity/pgstat_database.c (PgStat_StatDBEntry, AtEOXact_PgStat_Database,
pgstat_update_dbstats, pgstat_reset of the current database), plus the reset
times of pgstat_wal.c / pgstat_archiver.c kept for pg_stat_reset_shared.

Shared memory
-------------
"Backend Status Array": one slot per PGPROC slot (max_connections backends, then
the auxiliary processes), ``SLOT_SIZE`` bytes each: int64 words first, then the
strings (application_name, client address, database and role names, NUL
padded). Words::

    0  st_changecount      odd while the owner is writing (see below)
    1  st_procpid          0 until pgstat_bestart: the slot is not shown
    2  st_backendType      shmem.proc.BackendType
    3  st_proc_start_timestamp       } TimestampTz: microseconds since
    4  st_xact_start_timestamp       } 2000-01-01 UTC, 0 = none
    5  st_activity_start_timestamp   } (query_start)
    6  st_state_start_timestamp      } (state_change)
    7  st_state            BackendState (STATE_*)
    8  st_databaseid       9 st_userid
    10 client address family (0 = unknown, AF_UNIX, AF_INET, AF_INET6)
    11 client port
    16.. the database counters of this session (DB_COUNTERS), then the time of
         its last checksum failure

The statement text lives in shmem.proc's "Backend Activity Buffer" (PostgreSQL's
BackendActivityBuffer, which the postmaster also reads to report a crashed
backend's query); it is written inside the same changecount bracket.

"Database Stats": a header (the reset times of pg_stat_wal, pg_stat_archiver and
pg_stat_recovery_prefetch, and pg_stat_wal's counters at its last reset), then
``NDB_ENTRIES`` entries, one per database that has had a session: in-use flag,
database OID, stats_reset, the last checksum failure, the accumulated
DB_COUNTERS, and the database name.

Protocol between processes
--------------------------
- A process writes only its own slot, without locks, using PostgreSQL's
  st_changecount protocol: increment the count (now odd), write, increment it
  again (even). A reader copies the slot and retries while the count was odd
  or changed during the copy, so it never sees half of an update and the writer
  never waits. ``report_running`` / ``report_idle`` run around every statement:
  a dozen word stores (about 2 µs; see bench/bench_backend_status.py).
- The database counters of a session count in its own slot (plain stores by
  the owner: xact_commit/rollback at transaction end, blocks and times when it
  goes idle). Readers add up every slot of a database plus its entry. A slot's
  counters stay in the slot after its process exits, so nothing needs doing at
  exit; the next process that claims the slot first folds them into the
  database's entry and zeroes them, under the "Database Stats" spinlock (one
  semaphore). pg_stat_database's reader takes the same spinlock, so it never
  counts a slot and its fold twice.
- pg_stat_reset() (the current database) sets the entry to minus the sum of the
  slots, under the spinlock: every counter reads zero afterwards without
  writing into slots that other processes own. pg_stat_reset_shared('wal')
  records pg_stat_wal's current totals as the new zero, the same way.

Where tusk differs
------------------
- Counters live only in shared memory: they start from zero after a restart
  (PostgreSQL 15 writes them to pg_stat/ at a clean shutdown) and after a crash
  (as PostgreSQL's do).
- datname and usename are copied into the slot at connection time (PostgreSQL
  joins pg_database and pg_authid when the view is read).
- session_time counts up to a session's last state change (its last statement
  or ReadyForQuery), not up to its disconnection; sessions_abandoned,
  sessions_fatal, sessions_killed, conflicts, temp_files and temp_bytes stay 0;
  deadlocks count where the lock manager reports them (``count_deadlock``).
- tup_* are the session's per-table counts (utils.pgstat_relation), added by
  ``count_tuples`` each time it publishes them, as PostgreSQL derives them;
  like them they include the catalogs tusk reads (by sequential scans, where
  PostgreSQL uses catalog indexes), so tup_returned and tup_fetched differ.
- Blocks read and hit are the session's shared-buffer counters (utils.pgstat),
  all attributed to its database (PostgreSQL counts shared catalogs under
  database 0).
- track_activity_query_size is fixed at 1024 bytes (shmem.proc.ACTIVITY_SIZE).
- At most NDB_ENTRIES databases keep counters of ended sessions; beyond that
  they are dropped.
"""

from __future__ import annotations

import os
import socket
import time
from array import array
from typing import Any, NamedTuple

from conf.guc import register_assign_hook
from shmem.lwlock import (
    PG_WAIT_ACTIVITY,
    PG_WAIT_CLIENT,
    PG_WAIT_TIMEOUT,
    register_wait_events,
)
from shmem.proc import ACTIVITY_SIZE, BackendType, ProcArray, num_slots
from shmem.segment import ShmemSegment
from shmem.spin import SpinLock
from utils import pgstat

REGION = "Backend Status Array"
DB_REGION = "Database Stats"

# BackendState (backend_status.h)
(STATE_UNDEFINED, STATE_IDLE, STATE_RUNNING, STATE_IDLEINTRANSACTION, STATE_FASTPATH,
 STATE_IDLEINTRANSACTION_ABORTED, STATE_DISABLED) = range(7)
STATE_NAMES = {STATE_IDLE: "idle", STATE_RUNNING: "active",
               STATE_IDLEINTRANSACTION: "idle in transaction",
               STATE_FASTPATH: "fastpath function call",
               STATE_IDLEINTRANSACTION_ABORTED: "idle in transaction (aborted)",
               STATE_DISABLED: "disabled"}

# -- the slot ----------------------------------------------------------------------------

(W_CHANGECOUNT, W_PID, W_BTYPE, W_PROC_START, W_XACT_START, W_ACTIVITY_START,
 W_STATE_START, W_STATE, W_DATABASE, W_USER, W_CLIENT_FAMILY, W_CLIENT_PORT) = range(12)
HEADER_WORDS = 16  # words 1..15 are cleared when a process takes the slot

# PgStat_StatDBEntry's additive counters, in pg_stat_database's order (times in µs).
DB_COUNTERS = ("xact_commit", "xact_rollback", "blks_read", "blks_hit", "tup_returned",
               "tup_fetched", "tup_inserted", "tup_updated", "tup_deleted", "conflicts",
               "temp_files", "temp_bytes", "deadlocks", "checksum_failures", "blk_read_time",
               "blk_write_time", "session_time", "active_time", "idle_in_transaction_time",
               "sessions", "sessions_abandoned", "sessions_fatal", "sessions_killed")
NCOUNTERS = len(DB_COUNTERS)
W_COUNTERS = HEADER_WORDS
C = {name: W_COUNTERS + i for i, name in enumerate(DB_COUNTERS)}
W_CHECKSUM_LAST = W_COUNTERS + NCOUNTERS
SLOT_WORDS = 48
assert W_CHECKSUM_LAST < SLOT_WORDS

C_XACT_COMMIT = C["xact_commit"]
C_XACT_ROLLBACK = C["xact_rollback"]
C_BLKS_READ = C["blks_read"]
C_BLKS_HIT = C["blks_hit"]
C_BLK_READ_TIME = C["blk_read_time"]
C_BLK_WRITE_TIME = C["blk_write_time"]
C_SESSION_TIME = C["session_time"]
C_ACTIVE_TIME = C["active_time"]
C_IDLE_IN_XACT_TIME = C["idle_in_transaction_time"]
C_SESSIONS = C["sessions"]

NAME_LEN = 64  # NAMEDATALEN
ADDR_LEN = 64
STR_APPNAME = SLOT_WORDS * 8
STR_CLIENT_ADDR = STR_APPNAME + NAME_LEN
STR_DATNAME = STR_CLIENT_ADDR + ADDR_LEN
STR_USENAME = STR_DATNAME + NAME_LEN
SLOT_SIZE = STR_USENAME + NAME_LEN
SLOT_STRIDE = SLOT_SIZE // 8  # slot ``i``'s words start at word i * SLOT_STRIDE
assert SLOT_SIZE % 8 == 0
STRINGS_SIZE = SLOT_SIZE - STR_APPNAME

# -- "Database Stats" ---------------------------------------------------------------------

H_WAL_RESET, H_ARCHIVER_RESET, H_PREFETCH_RESET = range(3)
H_WAL_BASE = 8  # pg_stat_wal's counters at the last reset (WAL_FIELDS)
DB_HEADER_WORDS = 32
WAL_FIELDS = ("wal_records", "wal_fpi", "wal_bytes", "wal_buffers_full", "wal_write",
              "wal_sync", "wal_write_time", "wal_sync_time")
assert H_WAL_BASE + len(WAL_FIELDS) <= DB_HEADER_WORDS

E_INUSE, E_DBOID, E_STATS_RESET, E_CHECKSUM_LAST = range(4)
E_COUNTERS = 8
ENTRY_WORDS = 32
assert E_COUNTERS + NCOUNTERS <= ENTRY_WORDS
ENTRY_SIZE = ENTRY_WORDS * 8 + NAME_LEN
NDB_ENTRIES = 256

POSTGRES_EPOCH_USECS = 946_684_800 * 1_000_000

# -- wait events this module names (utils/wait_event.h, PostgreSQL 15's order) --------------

(WAIT_EVENT_ARCHIVER_MAIN, WAIT_EVENT_AUTOVACUUM_MAIN, WAIT_EVENT_BGWRITER_HIBERNATE,
 WAIT_EVENT_BGWRITER_MAIN, WAIT_EVENT_CHECKPOINTER_MAIN, WAIT_EVENT_LOGICAL_APPLY_MAIN,
 WAIT_EVENT_LOGICAL_LAUNCHER_MAIN, WAIT_EVENT_RECOVERY_WAL_STREAM, WAIT_EVENT_SYSLOGGER_MAIN,
 WAIT_EVENT_WAL_RECEIVER_MAIN, WAIT_EVENT_WAL_SENDER_MAIN,
 WAIT_EVENT_WAL_WRITER_MAIN) = range(PG_WAIT_ACTIVITY, PG_WAIT_ACTIVITY + 12)
WAIT_EVENT_CLIENT_READ = PG_WAIT_CLIENT
WAIT_EVENT_CLIENT_WRITE = PG_WAIT_CLIENT + 1
(WAIT_EVENT_BASE_BACKUP_THROTTLE, WAIT_EVENT_CHECKPOINT_WRITE_DELAY, WAIT_EVENT_PG_SLEEP,
 WAIT_EVENT_RECOVERY_APPLY_DELAY, WAIT_EVENT_RECOVERY_RETRIEVE_RETRY_INTERVAL,
 WAIT_EVENT_REGISTER_SYNC_REQUEST, WAIT_EVENT_VACUUM_DELAY,
 WAIT_EVENT_VACUUM_TRUNCATE) = range(PG_WAIT_TIMEOUT, PG_WAIT_TIMEOUT + 8)

register_wait_events({
    WAIT_EVENT_ARCHIVER_MAIN: "ArchiverMain", WAIT_EVENT_AUTOVACUUM_MAIN: "AutoVacuumMain",
    WAIT_EVENT_BGWRITER_HIBERNATE: "BgWriterHibernate", WAIT_EVENT_BGWRITER_MAIN: "BgWriterMain",
    WAIT_EVENT_CHECKPOINTER_MAIN: "CheckpointerMain",
    WAIT_EVENT_LOGICAL_APPLY_MAIN: "LogicalApplyMain",
    WAIT_EVENT_LOGICAL_LAUNCHER_MAIN: "LogicalLauncherMain",
    WAIT_EVENT_RECOVERY_WAL_STREAM: "RecoveryWalStream",
    WAIT_EVENT_SYSLOGGER_MAIN: "SysLoggerMain", WAIT_EVENT_WAL_RECEIVER_MAIN: "WalReceiverMain",
    WAIT_EVENT_WAL_SENDER_MAIN: "WalSenderMain", WAIT_EVENT_WAL_WRITER_MAIN: "WalWriterMain",
    WAIT_EVENT_CLIENT_READ: "ClientRead", WAIT_EVENT_CLIENT_WRITE: "ClientWrite",
    WAIT_EVENT_BASE_BACKUP_THROTTLE: "BaseBackupThrottle",
    WAIT_EVENT_CHECKPOINT_WRITE_DELAY: "CheckpointWriteDelay", WAIT_EVENT_PG_SLEEP: "PgSleep",
    WAIT_EVENT_RECOVERY_APPLY_DELAY: "RecoveryApplyDelay",
    WAIT_EVENT_RECOVERY_RETRIEVE_RETRY_INTERVAL: "RecoveryRetrieveRetryInterval",
    WAIT_EVENT_REGISTER_SYNC_REQUEST: "RegisterSyncRequest",
    WAIT_EVENT_VACUUM_DELAY: "VacuumDelay", WAIT_EVENT_VACUUM_TRUNCATE: "VacuumTruncate",
})


def now_usecs() -> int:
    """GetCurrentTimestamp (as utils.session.now_usecs)."""
    return time.time_ns() // 1000 - POSTGRES_EPOCH_USECS


# -- ipci ---------------------------------------------------------------------------------

def shmem_requests(settings) -> list[tuple[str, int]]:
    n = num_slots(settings.get("max_connections"))
    return [(REGION, n * SLOT_SIZE),
            (DB_REGION, DB_HEADER_WORDS * 8 + NDB_ENTRIES * ENTRY_SIZE)]


def num_semaphores(settings) -> int:
    return 1  # the "Database Stats" spinlock


def shmem_init(seg: ShmemSegment, settings) -> None:
    """BackendStatusShmemInit (postmaster): every slot empty, every reset time now."""
    region = seg.region(REGION)
    region[:] = bytes(len(region))
    db = seg.region(DB_REGION)
    db[:] = bytes(len(db))
    h = db[:DB_HEADER_WORDS * 8].cast("q")
    now = now_usecs()
    h[H_WAL_RESET] = h[H_ARCHIVER_RESET] = h[H_PREFETCH_RESET] = now
    h.release()


# -- this process --------------------------------------------------------------------------

class _State:
    """This process's handles: its slot (``base`` = first word) and the regions."""

    __slots__ = ("seg", "raw", "w", "db_raw", "dbh", "dbw", "wev", "lock", "procs", "slot",
                 "base", "nslots", "btype", "track", "started", "proc_start", "set_wait_event",
                 "userid", "max_connections")

    def __init__(self) -> None:
        self.seg: ShmemSegment | None = None
        self.raw: memoryview | None = None
        self.w: memoryview | None = None
        self.db_raw: memoryview | None = None
        self.dbh: memoryview | None = None
        self.dbw: memoryview | None = None
        self.wev: memoryview | None = None  # the PGPROC slots as uint32 words
        self.lock: SpinLock | None = None
        self.procs: ProcArray | None = None
        self.slot = -1
        self.base = 0
        self.nslots = 0
        self.max_connections = 0
        self.btype = BackendType.B_INVALID
        self.track = True
        self.started = False  # pgstat_bestart done: counters count
        self.proc_start = 0
        self.set_wait_event: Any = None
        self.userid = 0


_st = _State()


def _setting(settings, name: str, default: Any) -> Any:
    try:
        value = settings.get(name)
    except Exception:  # a settings object without the parameter (tests, tools)
        return default
    return default if value is None else value


def _bind(seg: ShmemSegment, settings, procs: ProcArray | None) -> None:
    st = _st
    st.seg = seg
    st.raw = seg.region(REGION)
    st.w = st.raw.cast("q")
    st.db_raw = seg.region(DB_REGION)
    st.dbh = st.db_raw[:DB_HEADER_WORDS * 8].cast("q")
    st.dbw = st.db_raw.cast("q")
    st.lock = SpinLock(seg.sems[seg.sem_base.get(__name__, 0)])
    st.max_connections = int(settings.get("max_connections"))
    st.nslots = num_slots(st.max_connections)
    st.procs = procs
    if procs is not None:
        st.wev = procs.slots.cast("I")


def attach(seg: ShmemSegment, settings, procs: ProcArray, btype: BackendType) -> None:
    """pgstat_beinit (after the PGPROC slot is claimed): take over the slot of the
    same number, folding the counters a previous owner left there into its
    database's entry. An auxiliary process is shown at once (pgstat_bestart); a
    backend only once its database and role are known (``pgstat_bestart``)."""
    detach()
    st = _st
    _bind(seg, settings, procs)
    slot = procs.my_slot
    if slot is None:
        return
    st.slot = slot
    st.base = b = slot * SLOT_STRIDE
    st.btype = btype
    st.track = bool(_setting(settings, "track_activities", True))
    st.proc_start = now_usecs()
    st.set_wait_event = procs.set_wait_event
    assert st.lock is not None and st.w is not None and st.raw is not None
    with st.lock.held():
        _fold_slot(slot)
    w = st.w
    w[b] |= 1  # odd: a write in progress
    w[b + 1:b + HEADER_WORDS] = array("q", bytes(8 * (HEADER_WORDS - 1)))
    off = slot * SLOT_SIZE + STR_APPNAME
    st.raw[off:off + STRINGS_SIZE] = bytes(STRINGS_SIZE)
    w[b] += 1
    if btype != BackendType.B_BACKEND:
        pgstat_bestart()


def detach() -> None:
    """Forget the segment (releasing every view, so that it can be unmapped)."""
    _uninstall_writers()
    st = _st
    for name in ("wev", "dbh", "dbw", "db_raw", "w", "raw"):
        v = getattr(st, name)
        if v is not None:
            try:
                v.release()
            except BufferError:
                pass
    _st.__init__()


def _put_str(off: int, size: int, text: str) -> None:
    data = text.encode("utf-8", "replace")[:size - 1]
    raw = _st.raw
    assert raw is not None
    raw[off:off + size] = data + bytes(size - len(data))


def _client_family(family: int | None) -> int:
    return int(family) if family in (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6) else 0


def pgstat_bestart(database_oid: int = 0, datname: str = "", user_oid: int = 0,
                   usename: str = "", application_name: str = "",
                   client_family: int | None = None, client_addr: str = "",
                   client_port: int = 0) -> None:
    """pgstat_bestart: publish this process in pg_stat_activity (a backend calls it
    at the end of InitPostgres, when its database and role are known)."""
    st = _st
    w = st.w
    if w is None or st.slot < 0:
        return
    b = st.base
    soff = st.slot * SLOT_SIZE
    w[b] += 1
    w[b + W_PID] = os.getpid()
    w[b + W_BTYPE] = int(st.btype)
    w[b + W_PROC_START] = st.proc_start
    w[b + W_XACT_START] = w[b + W_ACTIVITY_START] = w[b + W_STATE_START] = 0
    w[b + W_STATE] = STATE_UNDEFINED
    w[b + W_DATABASE] = database_oid
    w[b + W_USER] = user_oid
    w[b + W_CLIENT_FAMILY] = _client_family(client_family)
    w[b + W_CLIENT_PORT] = client_port
    _put_str(soff + STR_APPNAME, NAME_LEN, application_name)
    _put_str(soff + STR_CLIENT_ADDR, ADDR_LEN, client_addr)
    _put_str(soff + STR_DATNAME, NAME_LEN, datname)
    _put_str(soff + STR_USENAME, NAME_LEN, usename)
    w[b] += 1
    st.userid = user_oid
    if st.btype == BackendType.B_BACKEND:
        w[b + C_SESSIONS] = 1  # pgstat_report_connect
    st.started = True
    _install_writers()


# -- the hot path: pgstat_report_activity ----------------------------------------------------
#
# report_running, report_idle and count_transaction_end run around every statement.
# Until this process is shown (pgstat_bestart) they do nothing; pgstat_bestart
# replaces them with closures over its slot — its words, its activity buffer and
# its PGPROC's wait event word — so that a call is a dozen local loads and stores.
# Callers look them up as module attributes (backend_status.report_running(...)).

def report_running(query: str) -> None:
    """pgstat_report_activity(STATE_RUNNING, query), at the start of each statement
    (Query, Parse, Execute): state 'active', query_start and state_change now,
    xact_start now if no transaction is open yet, the statement text (copied only
    when it is a different string object: a prepared statement executed again
    keeps its text)."""


def report_idle(status: bytes, xact_start: int) -> None:
    """pgstat_report_activity(STATE_IDLE / IDLEINTRANSACTION / ..._ABORTED) before
    ReadyForQuery (``status`` is its indicator: I, T or E), with the open
    transaction's start time; then the session's block counters for
    pg_stat_database, and the wait for the client's next message (ClientRead)."""


def count_transaction_end(commit: bool) -> None:
    """AtEOXact_PgStat_Database: one more xact_commit or xact_rollback for this
    session's database (one store into our own slot)."""


_UNBOUND = (report_running, report_idle, count_transaction_end)
# shmem.proc's PGPROC slot: wait_event_info is the uint32 at byte 8 (SLOT "<iBBBxIdQ").
_PROC_WAIT_EVENT_WORD = 8 // 4


def _install_writers() -> None:
    """Bind report_running, report_idle and count_transaction_end to this slot."""
    global report_running, report_idle, count_transaction_end
    st = _st
    w, procs, wev = st.w, st.procs, st.wev
    assert w is not None and procs is not None and wev is not None
    b = st.base
    act = procs.activity
    abase = st.slot * ACTIVITY_SIZE
    amax = ACTIVITY_SIZE - 1
    wslot = st.slot * (len(wev) // st.nslots) + _PROC_WAIT_EVENT_WORD
    wev[wslot] = 0x7F
    assert procs.wait_event_info(st.slot) == 0x7F, "PGPROC layout changed"
    wev[wslot] = 0
    time_ns = time.time_ns
    epoch = POSTGRES_EPOCH_USECS
    running, idle, fastpath = STATE_RUNNING, STATE_IDLE, STATE_FASTPATH
    iit, iita = STATE_IDLEINTRANSACTION, STATE_IDLEINTRANSACTION_ABORTED
    i_state, i_start, i_act, i_xact = b + W_STATE, b + W_STATE_START, b + W_ACTIVITY_START, \
        b + W_XACT_START
    i_active_t, i_idle_t = b + C_ACTIVE_TIME, b + C_IDLE_IN_XACT_TIME
    i_read, i_hit = b + C_BLKS_READ, b + C_BLKS_HIT
    i_read_t, i_write_t = b + C_BLK_READ_TIME, b + C_BLK_WRITE_TIME
    i_commit, i_rollback = b + C_XACT_COMMIT, b + C_XACT_ROLLBACK
    client_read = WAIT_EVENT_CLIENT_READ
    stats = pgstat
    last_query: str | None = None

    def copy_activity(query: str) -> None:
        data = query.encode("utf-8", "replace")
        n = len(data)
        if n > amax:
            data, n = data[:amax], amax
        act[abase:abase + n] = data
        act[abase + n] = 0

    def running_fast(query: str) -> None:
        nonlocal last_query
        if wev[wslot] == client_read:
            wev[wslot] = 0
        if not st.track:
            _report_disabled()
            if query is not last_query:  # still there for the postmaster's crash report
                last_query = query
                copy_activity(query)
            return
        now = time_ns() // 1000 - epoch
        prev = w[i_state]
        if prev != running:
            if prev == iit or prev == iita:
                w[i_idle_t] += now - w[i_start]
            elif prev == fastpath:
                w[i_active_t] += now - w[i_start]
        w[b] += 1
        w[i_state] = running
        w[i_start] = now
        w[i_act] = now
        if not w[i_xact]:
            w[i_xact] = now  # the transaction starts with this statement
        if query is not last_query:
            last_query = query
            copy_activity(query)
        w[b] += 1

    def idle_fast(status: bytes, xact_start: int) -> None:
        if st.track:
            now = time_ns() // 1000 - epoch
            if status == b"I":
                state, xact_start = idle, 0
            elif status == b"T":
                state = iit
            else:
                state = iita
            prev = w[i_state]
            if prev != state:
                if prev == running or prev == fastpath:
                    w[i_active_t] += now - w[i_start]
                elif prev == iit or prev == iita:
                    w[i_idle_t] += now - w[i_start]
            w[b] += 1
            w[i_state] = state
            w[i_start] = now
            w[i_xact] = xact_start
            w[b] += 1
            wev[wslot] = client_read
        else:
            _report_disabled()
        io = stats.io  # pgstat_update_dbstats: this session's buffer reads and hits
        w[i_read] = io.read
        w[i_hit] = io.hit
        w[i_read_t] = int(io.read_time_us)
        w[i_write_t] = int(io.write_time_us)

    def count_fast(commit: bool) -> None:
        w[i_commit if commit else i_rollback] += 1

    running_fast.__doc__ = report_running.__doc__
    idle_fast.__doc__ = report_idle.__doc__
    count_fast.__doc__ = count_transaction_end.__doc__
    report_running, report_idle, count_transaction_end = running_fast, idle_fast, count_fast


def _uninstall_writers() -> None:
    global report_running, report_idle, count_transaction_end
    report_running, report_idle, count_transaction_end = _UNBOUND


def _publish_io_counters() -> None:
    """pgstat_update_dbstats's block counts: this session's shared-buffer reads and
    hits (utils.pgstat counts them per process) and their times."""
    st = _st
    w = st.w
    if w is None or not st.started:
        return
    io = pgstat.io
    b = st.base
    w[b + C_BLKS_READ] = io.read
    w[b + C_BLKS_HIT] = io.hit
    w[b + C_BLK_READ_TIME] = int(io.read_time_us)
    w[b + C_BLK_WRITE_TIME] = int(io.write_time_us)


def _report_disabled() -> None:
    """track_activities is off: as the last update, show 'disabled' and clear what
    will not be kept up to date any more."""
    st = _st
    w = st.w
    if w is None:
        return
    b = st.base
    if w[b + W_STATE] == STATE_DISABLED:
        return
    w[b] += 1
    w[b + W_STATE] = STATE_DISABLED
    w[b + W_STATE_START] = w[b + W_ACTIVITY_START] = w[b + W_XACT_START] = 0
    w[b] += 1
    if st.set_wait_event is not None:
        st.set_wait_event(0)


def report_appname(name: str) -> None:
    """pgstat_report_appname (the assign hook of application_name)."""
    st = _st
    w = st.w
    if w is None or not st.started:
        return
    b = st.base
    w[b] += 1
    _put_str(st.slot * SLOT_SIZE + STR_APPNAME, NAME_LEN, name)
    w[b] += 1


def _assign_track_activities(value: Any) -> None:
    _st.track = bool(value)


def _assign_application_name(value: Any) -> None:
    report_appname(str(value or ""))


register_assign_hook("track_activities", _assign_track_activities)
register_assign_hook("application_name", _assign_application_name)


def wait_start(info: int) -> None:
    """pgstat_report_wait_start for waits outside shmem (pg_sleep: Timeout/PgSleep)."""
    st = _st
    if st.set_wait_event is not None:
        st.set_wait_event(info)


def wait_end() -> None:
    """pgstat_report_wait_end."""
    st = _st
    if st.set_wait_event is not None:
        st.set_wait_event(0)


# -- database counters -------------------------------------------------------------------

def count_tuples(returned: int = 0, fetched: int = 0, inserted: int = 0, updated: int = 0,
                 deleted: int = 0) -> None:
    """pgstat_count_heap_*: tuples for pg_stat_database's tup_* columns."""
    st = _st
    w = st.w
    if w is None or not st.started:
        return
    b = st.base
    if returned:
        w[b + C["tup_returned"]] += returned
    if fetched:
        w[b + C["tup_fetched"]] += fetched
    if inserted:
        w[b + C["tup_inserted"]] += inserted
    if updated:
        w[b + C["tup_updated"]] += updated
    if deleted:
        w[b + C["tup_deleted"]] += deleted


def count_deadlock() -> None:
    """pgstat_report_deadlock."""
    st = _st
    if st.w is not None and st.started:
        st.w[st.base + C["deadlocks"]] += 1


def count_checksum_failure(n: int = 1) -> None:
    """pgstat_report_checksum_failures_in_db (for this session's database)."""
    st = _st
    w = st.w
    if w is not None and st.started:
        w[st.base + C["checksum_failures"]] += n
        w[st.base + W_CHECKSUM_LAST] = now_usecs()


def _slot_session_time(w: memoryview, b: int) -> int:
    """A client session's time so far: up to its last state change."""
    if w[b + W_BTYPE] != BackendType.B_BACKEND or not w[b + W_PROC_START]:
        return 0
    last = w[b + W_STATE_START]
    return max(last - w[b + W_PROC_START], 0) if last else 0


def _find_entry(dboid: int, create: bool) -> int:
    """The index of ``dboid``'s entry in "Database Stats" (-1 if none / full);
    caller holds the spinlock."""
    dbw = _st.dbw
    assert dbw is not None
    free = -1
    for i in range(NDB_ENTRIES):
        e = DB_HEADER_WORDS + i * ENTRY_WORDS
        if dbw[e + E_INUSE]:
            if dbw[e + E_DBOID] == dboid:
                return i
        elif free < 0:
            free = i
    if not create or free < 0:
        return -1
    e = DB_HEADER_WORDS + free * ENTRY_WORDS
    dbw[e:e + ENTRY_WORDS] = array("q", bytes(8 * ENTRY_WORDS))
    dbw[e + E_DBOID] = dboid
    dbw[e + E_INUSE] = 1
    return free


def _entry_name_off(i: int) -> int:
    return DB_HEADER_WORDS * 8 + i * ENTRY_SIZE + ENTRY_WORDS * 8


def _fold_slot(slot: int) -> None:
    """Move the counters a slot's previous owner left into its database's entry
    (caller holds the spinlock)."""
    st = _st
    w, dbw, raw, db_raw = st.w, st.dbw, st.raw, st.db_raw
    assert w is not None and dbw is not None and raw is not None and db_raw is not None
    b = slot * SLOT_STRIDE
    counts = w[b + W_COUNTERS:b + W_COUNTERS + NCOUNTERS].tolist()
    session_time = _slot_session_time(w, b)
    if any(counts) or session_time:
        i = _find_entry(w[b + W_DATABASE], create=True)
        if i >= 0:
            e = DB_HEADER_WORDS + i * ENTRY_WORDS + E_COUNTERS
            for k, v in enumerate(counts):
                if v:
                    dbw[e + k] += v
            dbw[e + (C_SESSION_TIME - W_COUNTERS)] += session_time
            last = w[b + W_CHECKSUM_LAST]
            ebase = DB_HEADER_WORDS + i * ENTRY_WORDS
            if last > dbw[ebase + E_CHECKSUM_LAST]:
                dbw[ebase + E_CHECKSUM_LAST] = last
            noff = _entry_name_off(i)
            if not db_raw[noff]:
                soff = slot * SLOT_SIZE + STR_DATNAME
                db_raw[noff:noff + NAME_LEN] = raw[soff:soff + NAME_LEN]
    w[b + W_COUNTERS:b + SLOT_WORDS] = array("q", bytes(8 * (SLOT_WORDS - W_COUNTERS)))
    # The slot's identity goes too, so that readers do not count its session twice.
    w[b + W_DATABASE] = 0
    w[b + W_STATE_START] = 0


class DatabaseStats(NamedTuple):
    datid: int
    datname: str | None
    numbackends: int
    counters: dict[str, int]
    checksum_last_failure: int  # TimestampTz, 0 = none
    stats_reset: int  # TimestampTz, 0 = never reset


def _live_slots() -> dict[int, int]:
    """PGPROC slot -> pid of every process that holds its slot now."""
    procs = _st.procs
    if procs is None:
        return {}
    return {slot: pid for slot, pid, _t, _su in procs.in_use()}


def read_database_stats() -> dict[int, DatabaseStats]:
    """pg_stat_database's figures per database OID: every slot's counters (of live
    sessions and of ended ones not yet folded) plus the database's entry."""
    st = _st
    w, dbw, raw, db_raw, lock = st.w, st.dbw, st.raw, st.db_raw, st.lock
    if w is None or dbw is None or raw is None or db_raw is None or lock is None:
        return {}
    live = _live_slots()
    sums: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    backends: dict[int, int] = {}
    last_fail: dict[int, int] = {}
    resets: dict[int, int] = {}
    with lock.held():
        for slot in range(st.nslots):
            b = slot * SLOT_STRIDE
            counts = w[b + W_COUNTERS:b + W_COUNTERS + NCOUNTERS].tolist()
            db = w[b + W_DATABASE]
            pid = w[b + W_PID]
            if pid and live.get(slot) == pid and w[b + W_BTYPE] == BackendType.B_BACKEND:
                backends[db] = backends.get(db, 0) + 1
            if not any(counts) and not w[b + W_STATE_START]:
                continue
            counts[C_SESSION_TIME - W_COUNTERS] += _slot_session_time(w, b)
            acc = sums.setdefault(db, [0] * NCOUNTERS)
            for k, v in enumerate(counts):
                acc[k] += v
            last_fail[db] = max(last_fail.get(db, 0), w[b + W_CHECKSUM_LAST])
            if db not in names:
                soff = slot * SLOT_SIZE + STR_DATNAME
                names[db] = _cstr(raw[soff:soff + NAME_LEN])
        for i in range(NDB_ENTRIES):
            e = DB_HEADER_WORDS + i * ENTRY_WORDS
            if not dbw[e + E_INUSE]:
                continue
            db = dbw[e + E_DBOID]
            acc = sums.setdefault(db, [0] * NCOUNTERS)
            for k in range(NCOUNTERS):
                acc[k] += dbw[e + E_COUNTERS + k]
            last_fail[db] = max(last_fail.get(db, 0), dbw[e + E_CHECKSUM_LAST])
            resets[db] = dbw[e + E_STATS_RESET]
            noff = _entry_name_off(i)
            if db_raw[noff]:
                names.setdefault(db, _cstr(db_raw[noff:noff + NAME_LEN]))
    out: dict[int, DatabaseStats] = {}
    for db in set(sums) | set(backends):
        acc = sums.get(db, [0] * NCOUNTERS)
        out[db] = DatabaseStats(db, names.get(db) or None, backends.get(db, 0),
                                dict(zip(DB_COUNTERS, acc, strict=True)),
                                last_fail.get(db, 0), resets.get(db, 0))
    return out


def reset_database_stats(dboid: int) -> None:
    """pg_stat_reset for database ``dboid``: its entry becomes minus the sum of the
    slots, so every counter reads zero from now on; stats_reset is now."""
    st = _st
    w, dbw, lock = st.w, st.dbw, st.lock
    if w is None or dbw is None or lock is None:
        return
    with lock.held():
        total = [0] * NCOUNTERS
        for slot in range(st.nslots):
            b = slot * SLOT_STRIDE
            if w[b + W_DATABASE] != dboid:
                continue
            counts = w[b + W_COUNTERS:b + W_COUNTERS + NCOUNTERS].tolist()
            counts[C_SESSION_TIME - W_COUNTERS] += _slot_session_time(w, b)
            for k, v in enumerate(counts):
                total[k] += v
        i = _find_entry(dboid, create=True)
        if i < 0:
            return
        e = DB_HEADER_WORDS + i * ENTRY_WORDS
        dbw[e + E_COUNTERS:e + E_COUNTERS + NCOUNTERS] = array("q", [-v for v in total])
        dbw[e + E_CHECKSUM_LAST] = 0
        dbw[e + E_STATS_RESET] = now_usecs()
    # Slots keep their checksum_last_failure; the reset time hides older ones.


# -- shared reset times (pg_stat_reset_shared) ------------------------------------------------

def reset_time(which: str) -> int:
    """The TimestampTz of the last reset of 'wal', 'archiver' or 'recovery_prefetch'."""
    h = _st.dbh
    if h is None:
        return 0
    return h[{"wal": H_WAL_RESET, "archiver": H_ARCHIVER_RESET,
              "recovery_prefetch": H_PREFETCH_RESET}[which]]


def reset_shared(which: str, wal_totals: dict[str, int] | None = None) -> None:
    """Record a reset of 'wal' (with pg_stat_wal's current totals as the new zero),
    'archiver' or 'recovery_prefetch'."""
    st = _st
    h, lock = st.dbh, st.lock
    if h is None or lock is None:
        return
    with lock.held():
        if which == "wal":
            totals = wal_totals or {}
            for i, name in enumerate(WAL_FIELDS):
                h[H_WAL_BASE + i] = int(totals.get(name, 0))
            h[H_WAL_RESET] = now_usecs()
        elif which == "archiver":
            h[H_ARCHIVER_RESET] = now_usecs()
        elif which == "recovery_prefetch":
            h[H_PREFETCH_RESET] = now_usecs()


def read_wal_reset(seg: ShmemSegment) -> tuple[dict[str, int], int] | None:
    """For tools on a read-only mapping (``tusk_ctl stats``): pg_stat_wal's totals at
    its last reset and the reset's TimestampTz; None if the segment predates them."""
    if DB_REGION not in seg.regions:
        return None
    h = seg.region(DB_REGION)[:DB_HEADER_WORDS * 8].cast("q")
    try:
        return ({name: h[H_WAL_BASE + i] for i, name in enumerate(WAL_FIELDS)},
                h[H_WAL_RESET])
    finally:
        h.release()


def wal_base() -> dict[str, int]:
    """pg_stat_wal's totals at its last reset."""
    h = _st.dbh
    if h is None:
        return dict.fromkeys(WAL_FIELDS, 0)
    return {name: h[H_WAL_BASE + i] for i, name in enumerate(WAL_FIELDS)}


# -- pgstat_read_current_status -----------------------------------------------------------------

class BackendStatus(NamedTuple):
    """One process's PgBackendStatus as a reader copied it (LocalPgBackendStatus)."""

    slot: int
    pid: int
    backend_type: BackendType
    proc_start: int
    xact_start: int
    activity_start: int
    state_start: int
    state: int
    database: int
    user: int
    client_family: int
    client_port: int
    application_name: str
    client_addr: str
    datname: str
    usename: str
    activity: str
    backend_xid: int
    backend_xmin: int
    wait_event_info: int


def _cstr(b: Any) -> str:
    return bytes(b).split(b"\0", 1)[0].decode("utf-8", "replace")


def read_current_status() -> list[BackendStatus]:
    """pgstat_read_current_status: a consistent copy of every shown slot (each read
    retried while its owner is writing), with the PGPROC's xid, xmin and wait event."""
    st = _st
    w, raw, procs = st.w, st.raw, st.procs
    if w is None or raw is None or procs is None:
        return []
    live = _live_slots()
    activity = procs.activity
    out: list[BackendStatus] = []
    for slot in range(st.nslots):
        pid = live.get(slot)
        if not pid:
            continue
        b = slot * SLOT_STRIDE
        soff = slot * SLOT_SIZE + STR_APPNAME
        aoff = slot * ACTIVITY_SIZE
        for _attempt in range(1000):
            before = w[b]
            if before & 1:
                time.sleep(0)
                continue
            words = w[b:b + HEADER_WORDS].tolist()
            strings = bytes(raw[soff:soff + STRINGS_SIZE])
            text = bytes(activity[aoff:aoff + ACTIVITY_SIZE])
            if w[b] == before:
                break
        else:
            continue  # a writer that never finishes: leave it out, as PostgreSQL would wait
        if words[W_PID] != pid:
            continue  # not started yet, or the slot changed hands
        try:
            btype = BackendType(words[W_BTYPE])
        except ValueError:
            btype = BackendType.B_INVALID
        out.append(BackendStatus(
            slot, pid, btype, words[W_PROC_START], words[W_XACT_START],
            words[W_ACTIVITY_START], words[W_STATE_START], words[W_STATE],
            words[W_DATABASE], words[W_USER], words[W_CLIENT_FAMILY], words[W_CLIENT_PORT],
            _cstr(strings[0:NAME_LEN]), _cstr(strings[NAME_LEN:NAME_LEN + ADDR_LEN]),
            _cstr(strings[NAME_LEN + ADDR_LEN:2 * NAME_LEN + ADDR_LEN]),
            _cstr(strings[2 * NAME_LEN + ADDR_LEN:]),
            _cstr(text), procs.get_xid(slot), procs.get_xmin(slot), procs.wait_event_info(slot)))
    return out


def my_user_id() -> int:
    """The role this session logged in as (st_userid of our own slot)."""
    return _st.userid


def my_database_id() -> int:
    """The database this session is connected to (st_databaseid of our own slot)."""
    st = _st
    return st.w[st.base + W_DATABASE] if st.w is not None and st.started else 0


def segment() -> ShmemSegment | None:
    """The segment this process is attached to (for the statistics readers)."""
    return _st.seg


def publish_my_counters() -> None:
    """Bring this session's own published block counters up to date (a reader sees
    its own activity so far, not as of its last ReadyForQuery)."""
    _publish_io_counters()
