"""Per-process I/O and buffer statistics — mirrors utils/activity/pgstat_io.c and
the buffer counters of pgstat_bgwriter.c / pgBufferUsage.

Each process counts in plain Python attributes (``io``), never touching shared
memory on the hot path, and publishes them into its own row of the region
"Backend IO Stats" with ``pgstat_report_io`` (from its main loop, at most a
few times a second, and at exit). At a normal exit the row is folded into an
accumulator row of its backend type, so counts survive the process, as
PostgreSQL's shared stats do. ``tusk_ctl stats`` reads the region read-only.
"""

from __future__ import annotations

import time
from array import array

from shmem.proc import BACKEND_TYPE_DESC, BackendType, ProcArray, num_slots
from shmem.segment import ShmemSegment
from shmem.spin import SpinLock

FIELDS = ("alloc", "hit", "read", "written", "extended", "dirtied", "fsync",
          "read_time_us", "write_time_us",
          # pg_stat_wal's counters (times in microseconds)
          "wal_records", "wal_fpi", "wal_bytes", "wal_buffers_full", "wal_write", "wal_sync",
          "wal_write_time", "wal_sync_time")
NFIELDS = len(FIELDS)
ROW = NFIELDS + 1  # counters, then the backend type
TYPES = tuple(BackendType)
REPORT_INTERVAL = 0.5  # seconds between reports from a busy process


class IOStats:
    """This process's counters (pgBufferUsage plus writes, extends and fsyncs)."""

    __slots__ = FIELDS

    def __init__(self) -> None:
        for name in FIELDS:
            setattr(self, name, 0)

    def as_list(self) -> list[int]:
        return [int(getattr(self, n)) for n in FIELDS]


io = IOStats()


class _State:
    rows: memoryview | None = None
    lock: SpinLock | None = None
    slot: int | None = None
    nslots = 0
    btype = BackendType.B_INVALID
    last_report = 0.0


_st = _State()


def shmem_requests(settings) -> list[tuple[str, int]]:
    nrows = num_slots(settings.get("max_connections")) + len(TYPES)
    return [("Backend IO Stats", nrows * ROW * 8)]


def num_semaphores(settings) -> int:
    return 1


def shmem_init(seg: ShmemSegment, settings) -> None:
    region = seg.region("Backend IO Stats")
    region[:] = bytes(len(region))


def attach(seg: ShmemSegment, settings, procs: ProcArray, btype: BackendType) -> None:
    """Start counting into this process's row (after its PGPROC slot is claimed)."""
    global io
    io = IOStats()
    _st.rows = seg.region("Backend IO Stats").cast("q")
    _st.lock = SpinLock(seg.sems[seg.sem_base.get(__name__, 0)])
    _st.slot = procs.my_slot
    _st.nslots = num_slots(settings.get("max_connections"))
    _st.btype = btype
    pgstat_report_io(force=True)


def pgstat_report_io(force: bool = False) -> bool:
    """Publish this process's counters (rate-limited unless ``force``); True if done."""
    if _st.rows is None or _st.slot is None:
        return False
    now = time.monotonic()
    if not force and now - _st.last_report < REPORT_INTERVAL:
        return False
    _st.last_report = now
    base = _st.slot * ROW
    _st.rows[base:base + ROW] = array("q", [*io.as_list(), int(_st.btype)])
    return True


def pgstat_flush_at_exit() -> None:
    """Fold my row into my backend type's accumulator and clear it."""
    if _st.rows is None or _st.slot is None or _st.lock is None:
        return
    rows, counts = _st.rows, io.as_list()
    acc = (_st.nslots + TYPES.index(_st.btype)) * ROW
    with _st.lock.held():
        for i, v in enumerate(counts):
            rows[acc + i] += v
        rows[acc + NFIELDS] = int(_st.btype)
    base = _st.slot * ROW
    rows[base:base + ROW] = array("q", [0] * ROW)
    _st.slot = None


def detach() -> None:
    _st.rows = None
    _st.slot = None
    _st.lock = None


def read_io_stats(seg: ShmemSegment) -> dict[str, dict[str, int]]:
    """Counters summed per backend type (live processes plus exited ones)."""
    rows = seg.region("Backend IO Stats").cast("q")
    nrows = len(rows) // ROW
    out: dict[str, dict[str, int]] = {}
    for r in range(nrows):
        base = r * ROW
        values = list(rows[base:base + ROW])
        btype = values[NFIELDS]
        if not any(values[:NFIELDS]):
            continue
        name = BACKEND_TYPE_DESC.get(BackendType(btype), str(btype)) \
            if btype in BackendType._value2member_map_ else str(btype)
        acc = out.setdefault(name, dict.fromkeys(FIELDS, 0))
        for i, f in enumerate(FIELDS):
            acc[f] += values[i]
    return out
