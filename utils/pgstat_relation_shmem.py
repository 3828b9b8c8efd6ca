"""The shared table of per-relation statistics — the PgStat_StatTabEntry half of
src/backend/utils/activity/pgstat_relation.c and pgstat_shmem.c, on a fixed
region instead of PostgreSQL's dynamic shared hash table.

Region "Relation Stats": ``NENTRIES`` entries of ``ENTRY_WORDS`` int64 words,
an open-addressing hash table (linear probing) keyed by (database OID,
relation OID); database 0 holds shared catalogs, as in PostgreSQL. Words of an
entry::

    0  state: EMPTY, USED, or DELETED (a tombstone, so that probes go on)
    1  database OID     2  relation OID
    3.. FIELDS, in PgStat_StatTabEntry's order (timestamps are TimestampTz,
        0 meaning never)

One spinlock (a semaphore) guards the whole table. It is taken only when a
backend publishes its pending counts (at most every PGSTAT_MIN_INTERVAL, see
utils.pgstat_relation), when VACUUM or ANALYZE report, on resets and drops,
and by readers — never on the per-row path.

Capacity: NENTRIES relations for the whole cluster (catalogs included). When
it is full, relations not yet in the table are not counted (their counts are
dropped at publication, and ``lost`` counts them for ``tusk_ctl``-style
inspection); entries of dropped relations are removed when the drop commits.
"""

from __future__ import annotations

from array import array

from shmem.segment import ShmemSegment
from shmem.spin import SpinLock

REGION = "Relation Stats"
NENTRIES = 8192  # relations with statistics, cluster-wide (about 1.4 MB)

EMPTY, USED, DELETED = 0, 1, 2
E_STATE, E_DBOID, E_RELID = range(3)
E_FIELDS = 3
FIELDS = ("numscans", "tuples_returned", "tuples_fetched", "tuples_inserted",
          "tuples_updated", "tuples_deleted", "tuples_hot_updated", "n_live_tuples",
          "n_dead_tuples", "changes_since_analyze", "inserts_since_vacuum", "blocks_fetched",
          "blocks_hit", "vacuum_timestamp", "vacuum_count", "analyze_timestamp", "analyze_count")
F = {name: E_FIELDS + i for i, name in enumerate(FIELDS)}
ENTRY_WORDS = E_FIELDS + len(FIELDS)
HEADER_WORDS = 8
H_USED, H_LOST = 0, 1  # entries in use; publications dropped because the table was full

# The counters a publication adds (pgstat_relation_flush_cb), in FIELDS order.
ADDITIVE = ("numscans", "tuples_returned", "tuples_fetched", "tuples_inserted",
            "tuples_updated", "tuples_deleted", "tuples_hot_updated")


def shmem_requests(settings) -> list[tuple[str, int]]:
    return [(REGION, (HEADER_WORDS + NENTRIES * ENTRY_WORDS) * 8)]


def num_semaphores(settings) -> int:
    return 1


def shmem_init(seg: ShmemSegment, settings) -> None:
    region = seg.region(REGION)
    region[:] = bytes(len(region))


class _State:
    w: memoryview | None = None
    lock: SpinLock | None = None


_st = _State()


def attach(seg: ShmemSegment) -> None:
    _st.w = seg.region(REGION).cast("q")
    _st.lock = SpinLock(seg.sems[seg.sem_base.get(__name__, 0)])


def detach() -> None:
    if _st.w is not None:
        try:
            _st.w.release()
        except BufferError:
            pass
    _st.w = None
    _st.lock = None


def attached() -> bool:
    return _st.w is not None


def lock() -> SpinLock:
    assert _st.lock is not None
    return _st.lock


def _home(dboid: int, relid: int) -> int:
    return ((dboid * 0x9E3779B1) ^ (relid * 0x85EBCA77)) % NENTRIES


def find(dboid: int, relid: int, create: bool) -> int:
    """The word offset of (dboid, relid)'s entry, or -1 (absent, or the table is
    full). Caller holds the lock."""
    w = _st.w
    assert w is not None
    i = _home(dboid, relid)
    free = -1
    for _ in range(NENTRIES):
        e = HEADER_WORDS + i * ENTRY_WORDS
        state = w[e]
        if state == EMPTY:
            break
        if state == USED:
            if w[e + E_RELID] == relid and w[e + E_DBOID] == dboid:
                return e
        elif free < 0:
            free = e
        i = (i + 1) % NENTRIES
    else:
        e = -1
    if not create:
        return -1
    if free < 0:
        free = e
    if free < 0:
        w[H_LOST] += 1
        return -1
    w[free + 1:free + ENTRY_WORDS] = array("q", bytes(8 * (ENTRY_WORDS - 1)))
    w[free + E_DBOID] = dboid
    w[free + E_RELID] = relid
    w[free] = USED
    w[H_USED] += 1
    return free


def entry_matches(e: int, dboid: int, relid: int) -> bool:
    """Is the entry at word offset ``e`` still (dboid, relid)'s? (caller holds the lock)"""
    w = _st.w
    assert w is not None
    return w[e] == USED and w[e + E_RELID] == relid and w[e + E_DBOID] == dboid


def words() -> memoryview:
    assert _st.w is not None
    return _st.w


def read(dboid: int, relid: int) -> dict[str, int] | None:
    """A copy of one entry's fields, or None if the relation has no entry."""
    if _st.w is None or _st.lock is None:
        return None
    with _st.lock.held():
        e = find(dboid, relid, create=False)
        if e < 0:
            return None
        values = _st.w[e + E_FIELDS:e + ENTRY_WORDS].tolist()
    return dict(zip(FIELDS, values, strict=True))


def read_many(keys: list[tuple[int, int]]) -> dict[tuple[int, int], list[int]]:
    """FIELDS values of each (dboid, relid) that has an entry, under one hold of the lock."""
    out: dict[tuple[int, int], list[int]] = {}
    if _st.w is None or _st.lock is None:
        return out
    w = _st.w
    with _st.lock.held():
        for key in keys:
            e = find(key[0], key[1], create=False)
            if e >= 0:
                out[key] = w[e + E_FIELDS:e + ENTRY_WORDS].tolist()
    return out


def remove(dboid: int, relid: int) -> None:
    """pgstat_drop_relation's effect: the entry goes (a tombstone stays for probes)."""
    if _st.w is None or _st.lock is None:
        return
    with _st.lock.held():
        e = find(dboid, relid, create=False)
        if e >= 0:
            _st.w[e] = DELETED
            _st.w[H_USED] -= 1


def reset_entry(dboid: int, relid: int) -> None:
    """pgstat_reset of one relation: every counter and time back to zero."""
    if _st.w is None or _st.lock is None:
        return
    w = _st.w
    with _st.lock.held():
        e = find(dboid, relid, create=False)
        if e >= 0:
            w[e + E_FIELDS:e + ENTRY_WORDS] = array("q", bytes(8 * len(FIELDS)))


def reset_database(dboid: int) -> None:
    """pg_stat_reset's part here: every entry of ``dboid`` is removed."""
    if _st.w is None or _st.lock is None:
        return
    w = _st.w
    with _st.lock.held():
        for i in range(NENTRIES):
            e = HEADER_WORDS + i * ENTRY_WORDS
            if w[e] == USED and w[e + E_DBOID] == dboid:
                w[e] = DELETED
                w[H_USED] -= 1


def usage() -> tuple[int, int]:
    """(entries in use, publications lost because the table was full)."""
    if _st.w is None:
        return 0, 0
    return _st.w[H_USED], _st.w[H_LOST]
