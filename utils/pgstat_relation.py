"""Per-relation statistics counted by this backend — mirrors
src/backend/utils/activity/pgstat_relation.c (PgStat_TableStatus,
PgStat_TableXactStatus, pgstat_count_*, AtEOXact_PgStat_Relations,
pgstat_relation_flush_cb, pgstat_report_vacuum, pgstat_report_analyze,
pgstat_drop_relation) and the pending-stats flush of pgstat.c
(pgstat_report_stat, pgstat_force_next_flush).

Counting is plain attribute arithmetic on a TableStatus the relation cache
entry points to (``rel.pgstat_info``, as PostgreSQL's): the access methods add
to it where PostgreSQL's do (heap scan start and pages returned, B-tree scan
start and TIDs returned, index fetches, heap_insert/update/delete, and — via
the SMgrRelation's pointer — buffer reads). Insert, update and delete counts
first go to the transaction's part and are settled at transaction end by
PostgreSQL's rules: committed inserts become live tuples, updates and deletes
dead ones, everything an aborted transaction inserted or updated is dead.

Publication (``flush``) adds the pending counts into the shared table
(utils.pgstat_relation_shmem) and pg_stat_database's tup_* columns, at most
every PGSTAT_MIN_INTERVAL seconds unless forced (pg_stat_force_next_flush,
process exit); a backend that goes idle with counts pending publishes them when
the interval has passed (tcop.postgres asks ``pending_flush_delay``).
"""

from __future__ import annotations

import time
from typing import Any

from utils import pgstat
from utils import pgstat_relation_shmem as shm

PGSTAT_MIN_INTERVAL = 0.5  # seconds between publications of a busy backend


class TableStatus:
    """PgStat_TableStatus plus its (single-level) PgStat_TableXactStatus."""

    __slots__ = ("relid", "shared", "entry",
                 # counted directly (t_counts)
                 "numscans", "tuples_returned", "tuples_fetched", "tuples_hot_updated",
                 "blocks_fetched", "blocks_read",
                 # settled at transaction end
                 "tuples_inserted", "tuples_updated", "tuples_deleted", "truncdropped",
                 "delta_live", "delta_dead", "changed",
                 # this transaction's (trans)
                 "x_ins", "x_upd", "x_del", "x_truncdropped", "x_ins_pre", "x_upd_pre",
                 "x_del_pre")

    def __init__(self, relid: int, shared: bool) -> None:
        self.relid = relid
        self.shared = shared
        self.entry = -1  # word offset of our shared entry, as last found
        self.clear()
        self.x_ins = self.x_upd = self.x_del = 0
        self.x_ins_pre = self.x_upd_pre = self.x_del_pre = 0
        self.x_truncdropped = False

    def clear(self) -> None:
        self.numscans = self.tuples_returned = self.tuples_fetched = 0
        self.tuples_hot_updated = self.blocks_fetched = self.blocks_read = 0
        self.tuples_inserted = self.tuples_updated = self.tuples_deleted = 0
        self.truncdropped = False
        self.delta_live = self.delta_dead = self.changed = 0

    def pending(self) -> bool:
        return bool(self.numscans or self.tuples_returned or self.tuples_fetched
                    or self.blocks_fetched or self.tuples_inserted or self.tuples_updated
                    or self.tuples_deleted or self.truncdropped or self.delta_dead)


class _State:
    dboid = 0  # MyDatabaseId, once this backend publishes
    last_flush = 0.0
    force_next = False
    io_mark = 0  # buffer accesses (utils.pgstat.io) at the last publication


_st = _State()
# relid -> TableStatus (pgStatPending's relation entries; kept across flushes so
# that relcache entries may keep pointing at them)
_tabstats: dict[int, TableStatus] = {}
# Statuses with insert/update/delete counts in the running transaction.
xact_touched: set[TableStatus] = set()
# Relations whose DROP commits with this transaction.
_pending_drops: list[tuple[int, int]] = []


def pgstat_init_relation(rel: Any) -> TableStatus:
    """pgstat_init_relation: this backend's status for ``rel`` (created on first
    use), also hung on its SMgrRelation so that buffer reads count against it."""
    ps = _tabstats.get(rel.oid)
    if ps is None:
        ps = _tabstats[rel.oid] = TableStatus(rel.oid, bool(rel.relisshared))
    rel.pgstat_info = ps
    s = getattr(rel, "_smgr", None)
    if s is not None:
        s.pgstat_info = ps
    return ps


def status_of(relid: int) -> TableStatus | None:
    return _tabstats.get(relid)


# -- counting helpers for the less hot paths -------------------------------------------------

def pgstat_count_heap_insert(rel: Any, n: int) -> None:
    ps = rel.pgstat_info or pgstat_init_relation(rel)
    ps.x_ins += n
    xact_touched.add(ps)


def pgstat_count_truncate(rel: Any) -> None:
    """TRUNCATE: forget this transaction's counts so far (kept aside in case it
    aborts), and have the live/dead counts start from zero if it commits."""
    ps = rel.pgstat_info or pgstat_init_relation(rel)
    if not ps.x_truncdropped:
        ps.x_ins_pre, ps.x_upd_pre, ps.x_del_pre = ps.x_ins, ps.x_upd, ps.x_del
        ps.x_truncdropped = True
    ps.x_ins = ps.x_upd = ps.x_del = 0
    xact_touched.add(ps)


# -- transaction end -------------------------------------------------------------------------

def at_eoxact(is_commit: bool) -> None:
    """AtEOXact_PgStat_Relations: settle each touched relation's transactional
    counts into its pending counts; apply committed drops."""
    if xact_touched:
        for ps in xact_touched:
            if not is_commit and ps.x_truncdropped:
                ps.x_ins, ps.x_upd, ps.x_del = ps.x_ins_pre, ps.x_upd_pre, ps.x_del_pre
            ins, upd, dele = ps.x_ins, ps.x_upd, ps.x_del
            ps.tuples_inserted += ins
            ps.tuples_updated += upd
            ps.tuples_deleted += dele
            if is_commit:
                if ps.x_truncdropped:
                    ps.truncdropped = True
                    ps.delta_live = ps.delta_dead = 0
                ps.delta_live += ins - dele
                ps.delta_dead += upd + dele
                ps.changed += ins + upd + dele
            else:
                ps.delta_dead += ins + upd  # aborted rows are dead; no changed tuples
            ps.x_ins = ps.x_upd = ps.x_del = 0
            ps.x_ins_pre = ps.x_upd_pre = ps.x_del_pre = 0
            ps.x_truncdropped = False
        xact_touched.clear()
    if _pending_drops:
        if is_commit:
            for dboid, relid in _pending_drops:
                shm.remove(dboid, relid)
                _tabstats.pop(relid, None)
        _pending_drops.clear()


def pgstat_drop_relation(rel: Any) -> None:
    """pgstat_drop_relation: the relation's statistics go when the drop commits."""
    _pending_drops.append((0 if rel.relisshared else _st.dboid, rel.oid))


def pgstat_drop_relation_oid(relid: int) -> None:
    """The same for a relation of this database known by OID (a dropped table's index)."""
    _pending_drops.append((_st.dboid, relid))


# -- publication -----------------------------------------------------------------------------

def attach(seg: Any, dboid: int) -> None:
    """Start publishing (a backend, once its database is known)."""
    shm.attach(seg)
    _st.dboid = dboid
    from access import xact

    xact.register_xact_callback(at_eoxact)


def detach() -> None:
    shm.detach()
    _st.dboid = 0


def force_next_flush() -> None:
    """pgstat_force_next_flush."""
    _st.force_next = True


def pending_flush_delay() -> float | None:
    """Seconds until an idle backend should publish its pending counts (None:
    nothing can be pending). Called before every wait for the client, so it only
    compares this process's buffer access count with its value at the last
    publication: nothing is counted here without a buffer access."""
    if not _st.dboid:
        return None
    io = pgstat.io
    if io.hit + io.read == _st.io_mark and not _st.force_next:
        return None
    if _st.force_next:
        return 0.0
    return max(_st.last_flush + PGSTAT_MIN_INTERVAL - time.monotonic(), 0.0)


def flush(force: bool = False) -> bool:
    """pgstat_report_stat's relation part (pgstat_relation_flush_cb for every
    pending entry): add the pending counts to the shared entries and to this
    session's pg_stat_database tup_* counters. Rate-limited unless ``force`` or
    pg_stat_force_next_flush. Returns True if it published."""
    if not shm.attached():
        return False
    now = time.monotonic()
    if _st.force_next:
        force = True
    if not force and now - _st.last_flush < PGSTAT_MIN_INTERVAL:
        return False
    _st.last_flush = now
    _st.force_next = False
    io = pgstat.io
    _st.io_mark = io.hit + io.read
    todo = [ps for ps in _tabstats.values() if ps.pending()]
    if not todo:
        return True
    w = shm.words()
    F = shm.F
    i_scans, i_live, i_dead, i_changes = F["numscans"], F["n_live_tuples"], \
        F["n_dead_tuples"], F["changes_since_analyze"]
    i_isv, i_bf, i_bh = F["inserts_since_vacuum"], F["blocks_fetched"], F["blocks_hit"]
    db = _st.dboid
    tot = [0, 0, 0, 0, 0]  # returned, fetched, inserted, updated, deleted
    with shm.lock().held():
        for ps in todo:
            dboid = 0 if ps.shared else db
            e = ps.entry
            if e < 0 or not shm.entry_matches(e, dboid, ps.relid):
                e = ps.entry = shm.find(dboid, ps.relid, create=True)
            if e >= 0:
                w[e + i_scans] += ps.numscans
                w[e + i_scans + 1] += ps.tuples_returned
                w[e + i_scans + 2] += ps.tuples_fetched
                w[e + i_scans + 3] += ps.tuples_inserted
                w[e + i_scans + 4] += ps.tuples_updated
                w[e + i_scans + 5] += ps.tuples_deleted
                w[e + i_scans + 6] += ps.tuples_hot_updated
                if ps.truncdropped:
                    w[e + i_live] = w[e + i_dead] = w[e + i_isv] = 0
                w[e + i_live] = max(w[e + i_live] + ps.delta_live, 0)
                w[e + i_dead] = max(w[e + i_dead] + ps.delta_dead, 0)
                w[e + i_changes] += ps.changed
                w[e + i_isv] += ps.tuples_inserted
                w[e + i_bf] += ps.blocks_fetched
                w[e + i_bh] += ps.blocks_fetched - ps.blocks_read
            tot[0] += ps.tuples_returned
            tot[1] += ps.tuples_fetched
            tot[2] += ps.tuples_inserted
            tot[3] += ps.tuples_updated
            tot[4] += ps.tuples_deleted
            ps.clear()
    if any(tot):
        from utils import backend_status

        backend_status.count_tuples(*tot)
    return True


# -- VACUUM and ANALYZE ----------------------------------------------------------------------

def _now_usecs() -> int:
    from utils.backend_status import now_usecs

    return now_usecs()


def pgstat_report_vacuum(rel: Any, livetuples: int, deadtuples: int) -> None:
    """pgstat_report_vacuum: VACUUM's own counts replace the live and dead tuple
    counts; inserts since vacuum start over; last_vacuum and vacuum_count."""
    _store_scan_result(rel, livetuples, deadtuples, "inserts_since_vacuum", "vacuum_timestamp",
                       "vacuum_count")


def pgstat_report_analyze(rel: Any, livetuples: int, deadtuples: int,
                          resetcounter: bool = True) -> None:
    """pgstat_report_analyze: ANALYZE's counts replace the live and dead tuple
    counts, less what this transaction's own pending changes will add when it
    ends (they were counted by ANALYZE already); changes since analyze start over."""
    if not shm.attached():
        return
    ps = _tabstats.get(rel.oid)
    if ps is not None:
        livetuples -= ps.x_ins - ps.x_del
        deadtuples -= ps.x_upd + ps.x_del
        deadtuples -= ps.delta_dead
    _store_scan_result(rel, livetuples, deadtuples,
                       "changes_since_analyze" if resetcounter else None,
                       "analyze_timestamp", "analyze_count")


def _store_scan_result(rel: Any, livetuples: int, deadtuples: int, zeroed: str | None,
                       timestamp: str, count: str) -> None:
    """What VACUUM or ANALYZE found replaces the live and dead tuple counts; the
    counter ``zeroed`` starts over, ``timestamp`` is now, ``count`` one more."""
    if not shm.attached():
        return
    w, F = shm.words(), shm.F
    dboid = 0 if rel.relisshared else _st.dboid
    with shm.lock().held():
        e = shm.find(dboid, rel.oid, create=True)
        if e < 0:
            return
        w[e + F["n_live_tuples"]] = max(livetuples, 0)
        w[e + F["n_dead_tuples"]] = max(deadtuples, 0)
        if zeroed is not None:
            w[e + F[zeroed]] = 0
        w[e + F[timestamp]] = _now_usecs()
        w[e + F[count]] += 1


# -- resets ----------------------------------------------------------------------------------

def reset_single(relid: int) -> None:
    """pg_stat_reset_single_table_counters: this database's entry of ``relid`` (or
    the shared one, for a shared catalog) starts over. As in PostgreSQL, counts
    still pending in some backend are added when it publishes them."""
    shm.reset_entry(_st.dboid, relid)
    shm.reset_entry(0, relid)


def reset_database() -> None:
    """pg_stat_reset's relation part: every entry of this database goes."""
    shm.reset_database(_st.dboid)


def my_database() -> int:
    return _st.dboid
