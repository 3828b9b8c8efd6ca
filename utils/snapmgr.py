"""Snapshot management — mirrors src/backend/utils/time/snapmgr.c and the
snapshot kinds of src/include/utils/snapshot.h.

An MVCC snapshot (access.procarray.Snapshot: xmin, xmax, xip, curcid) says which
transactions' work a statement sees. This module decides which snapshot a
statement uses and keeps the process's PGPROC.xmin (the horizon pruning and
VACUUM must respect) covering every snapshot still in use:

- ``get_transaction_snapshot``: READ COMMITTED takes a new snapshot for every
  statement; REPEATABLE READ and SERIALIZABLE take one at the first statement
  and use it for the whole transaction (with the command id of the current
  command: ``curcid``).
- ``get_latest_snapshot``: always a new one (foreign-key style re-checks).
- ``get_catalog_snapshot``: a snapshot for catalog scans, cached until the
  command counter advances, the transaction ends, a new transaction snapshot is
  taken (it must never be older than that one) or ``invalidate_catalog_snapshot``
  is called (shared invalidation messages arrived).
- Snapshots in use: the active snapshot stack (``push_active_snapshot`` at the
  start of a statement, ``pop_active_snapshot`` at its end), registered
  snapshots (``register_snapshot`` for cursors and portals that outlive a
  statement), the transaction snapshot of REPEATABLE READ and the catalog
  snapshot. When the last active snapshot is popped, ``snapshot_reset_xmin``
  advances PGPROC.xmin to the oldest remaining one (or clears it). The first
  snapshot of a transaction sets PGPROC.xmin (GetSnapshotData); the end of the
  transaction clears it (ProcArrayEndTransaction) and this module forgets
  everything (an xact callback).

Special snapshots (``SNAPSHOT_ANY`` = ``SnapshotAny``, ``SNAPSHOT_SELF`` =
``SnapshotSelf``, ``new_dirty_snapshot()``) carry a ``kind`` (KIND_*) that access/heapam_visibility.py dispatches on; a dirty
snapshot reports the in-progress inserter (``xmin``) or deleter (``xmax``) of
the last tuple it was tested against.

Where tusk differs: no resource owners (registrations are explicit), no
exported or historic snapshots, no old_snapshot_threshold, no subtransactions;
the isolation level lives here (``set_transaction_isolation``) rather than in
xact.c's XactIsoLevel. A caller that never pops its active snapshots only
keeps PGPROC.xmin at the transaction's first snapshot until commit: safe, merely
less pruning.
"""

from __future__ import annotations

from access import procarray, xact
from access.procarray import Snapshot, get_snapshot_data

# SnapshotType (snapshot.h): a snapshot's ``kind``.
KIND_MVCC = 0
KIND_SELF = 1
KIND_ANY = 2
KIND_TOAST = 3
KIND_DIRTY = 4
KIND_HISTORIC_MVCC = 5
KIND_NON_VACUUMABLE = 6

# XactIsoLevel (xact.h)
XACT_READ_UNCOMMITTED = 0
XACT_READ_COMMITTED = 1
XACT_REPEATABLE_READ = 2
XACT_SERIALIZABLE = 3

ISOLATION_LEVEL_NAMES = {"read uncommitted": XACT_READ_UNCOMMITTED,
                         "read committed": XACT_READ_COMMITTED,
                         "repeatable read": XACT_REPEATABLE_READ,
                         "serializable": XACT_SERIALIZABLE}


class SpecialSnapshot:
    """SnapshotAnyData / SnapshotSelfData: no xids, just a visibility rule."""

    __slots__ = ("kind",)
    xmin = xmax = 0
    xip: list[int] = []
    curcid = 0

    def __init__(self, kind: int) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return {KIND_ANY: "SnapshotAny", KIND_SELF: "SnapshotSelf"}.get(
            self.kind, f"SpecialSnapshot({self.kind})")


class DirtySnapshot:
    """InitDirtySnapshot: sees committed and in-progress work; after each test,
    ``xmin`` / ``xmax`` name the in-progress inserter / deleter of the tuple (0
    when none), so the caller can wait for it."""

    __slots__ = ("xmin", "xmax", "speculative_token")
    kind = KIND_DIRTY
    curcid = 0

    def __init__(self) -> None:
        self.xmin = 0
        self.xmax = 0
        self.speculative_token = 0

    def __repr__(self) -> str:
        return f"SnapshotDirty(xmin={self.xmin}, xmax={self.xmax})"


SnapshotAny = SpecialSnapshot(KIND_ANY)
SnapshotSelf = SpecialSnapshot(KIND_SELF)
# The same objects under the SQL layer's names.
SNAPSHOT_ANY = SnapshotAny
SNAPSHOT_SELF = SnapshotSelf


def new_dirty_snapshot() -> DirtySnapshot:
    return DirtySnapshot()


def is_mvcc_snapshot(snapshot) -> bool:
    """IsMVCCSnapshot."""
    return snapshot.kind == KIND_MVCC


class _State:
    __slots__ = ("generation", "iso_level", "default_iso", "xact_snapshot", "catalog",
                 "catalog_key", "catalog_inval", "active", "registered", "first_set")

    def __init__(self) -> None:
        self.generation = -1        # xact.transaction_generation() this state belongs to
        self.default_iso = XACT_READ_COMMITTED
        self.iso_level = XACT_READ_COMMITTED
        self.xact_snapshot: Snapshot | None = None  # REPEATABLE READ's snapshot
        self.catalog: Snapshot | None = None
        self.catalog_key = (-1, -1, -1)
        self.catalog_inval = 0
        self.active: list = []      # ActiveSnapshot stack
        self.registered: list = []  # RegisteredSnapshots (a list: there are few)
        self.first_set = False      # FirstSnapshotSet


_st = _State()


def _at_eoxact(_is_commit: bool) -> None:
    """AtEOXact_Snapshot: every snapshot of the transaction is gone (ProcArrayEndTransaction
    already cleared PGPROC.xmin)."""
    _st.xact_snapshot = None
    _st.catalog = None
    _st.active.clear()
    _st.registered.clear()
    _st.first_set = False
    _st.iso_level = _st.default_iso
    _st.generation = xact.transaction_generation()


xact.register_xact_callback(_at_eoxact)


def _check_transaction() -> None:
    gen = xact.transaction_generation()
    if _st.generation != gen:  # first use in this process
        _at_eoxact(True)


# -- isolation level ------------------------------------------------------------------------

def set_default_transaction_isolation(level: int) -> None:
    """default_transaction_isolation: the level each new transaction starts with."""
    _st.default_iso = level
    if not _st.first_set:
        _st.iso_level = level


def set_transaction_isolation(level: int) -> None:
    """SET TRANSACTION ISOLATION LEVEL / BEGIN ISOLATION LEVEL: only before the
    transaction's first snapshot (check_XactIsoLevel's error)."""
    _check_transaction()
    if _st.first_set and level != _st.iso_level:
        from utils.elog import PgError

        raise PgError("25001", "SET TRANSACTION ISOLATION LEVEL must be called before any query")
    _st.iso_level = level


def transaction_isolation() -> int:
    _check_transaction()
    return _st.iso_level


def isolation_uses_xact_snapshot() -> bool:
    """IsolationUsesXactSnapshot: REPEATABLE READ and SERIALIZABLE."""
    _check_transaction()
    return _st.iso_level >= XACT_REPEATABLE_READ


def first_snapshot_set() -> bool:
    _check_transaction()
    return _st.first_set


# -- snapshots --------------------------------------------------------------------------------

def get_transaction_snapshot() -> Snapshot:
    """GetTransactionSnapshot: the snapshot a new statement should use."""
    _check_transaction()
    cid = xact._st.cid  # GetCurrentCommandId(false)
    if _st.iso_level >= XACT_REPEATABLE_READ:
        snap = _st.xact_snapshot
        if snap is None:
            _st.catalog = None  # never older than the transaction snapshot
            snap = get_snapshot_data()
            snap.curcid = cid
            _st.xact_snapshot = snap
            _st.first_set = True
            return snap
        if snap.curcid != cid:
            # SnapshotSetCommandId: a copy, so statements holding the old one keep it.
            snap = Snapshot(snap.xmin, snap.xmax, snap.xip, cid)
            _st.xact_snapshot = snap
        return snap
    _st.catalog = None
    snap = get_snapshot_data()
    snap.curcid = cid
    _st.first_set = True
    return snap


def get_latest_snapshot() -> Snapshot:
    """GetLatestSnapshot: a fresh snapshot whatever the isolation level."""
    _check_transaction()
    snap = get_snapshot_data()
    snap.curcid = xact._st.cid
    return snap


def get_catalog_snapshot(relid: int = 0) -> Snapshot:
    """GetCatalogSnapshot: a snapshot for catalog scans (see the module docstring)."""
    _check_transaction()
    key = (_st.generation, xact._st.cid, _st.catalog_inval)
    snap = _st.catalog
    if snap is None or _st.catalog_key != key:
        snap = get_snapshot_data()
        snap.curcid = xact._st.cid
        _st.catalog = snap
        _st.catalog_key = key
    return snap


def invalidate_catalog_snapshot() -> None:
    """InvalidateCatalogSnapshot: the next catalog scan takes a new snapshot.
    (PGPROC.xmin is left alone: it advances when the active snapshot is popped.)"""
    _st.catalog_inval += 1
    _st.catalog = None


def get_non_historic_catalog_snapshot(relid: int = 0) -> Snapshot:
    return get_catalog_snapshot(relid)


# -- snapshots in use, and PGPROC.xmin --------------------------------------------------------

def push_active_snapshot(snapshot) -> None:
    """PushActiveSnapshot: the snapshot the running statement uses."""
    _check_transaction()
    _st.active.append(snapshot)


def pop_active_snapshot() -> None:
    """PopActiveSnapshot (then SnapshotResetXmin when none is left)."""
    if _st.active:
        _st.active.pop()
    if not _st.active:
        snapshot_reset_xmin()


def get_active_snapshot():
    """GetActiveSnapshot (None when no statement runs)."""
    return _st.active[-1] if _st.active else None


def active_snapshot_set() -> bool:
    return bool(_st.active)


def register_snapshot(snapshot):
    """RegisterSnapshot: keep ``snapshot`` (a cursor's, a portal's) protected past
    the end of the statement that took it. Returns it."""
    _check_transaction()
    if snapshot.kind == KIND_MVCC:
        _st.registered.append(snapshot)
    return snapshot


def unregister_snapshot(snapshot) -> None:
    """UnregisterSnapshot."""
    for i, s in enumerate(_st.registered):
        if s is snapshot:
            del _st.registered[i]
            break
    if not _st.active:
        snapshot_reset_xmin()


def snapshot_reset_xmin() -> None:
    """SnapshotResetXmin: PGPROC.xmin = the oldest xmin of the snapshots still in
    use, or nothing. Never while a statement's snapshot is active."""
    if _st.active:
        return
    xmins = [s.xmin for s in _st.registered]
    if _st.xact_snapshot is not None:
        xmins.append(_st.xact_snapshot.xmin)
    if _st.catalog is not None:
        xmins.append(_st.catalog.xmin)
    if not xmins:
        procarray.set_my_xmin(0)
        return
    oldest = xmins[0]
    for x in xmins[1:]:
        if ((x - oldest) & 0xFFFFFFFF) >= 0x80000000:
            oldest = x
    current = procarray.my_xmin()
    if current and ((current - oldest) & 0xFFFFFFFF) >= 0x80000000:
        procarray.set_my_xmin(oldest)  # only ever forward
