"""Record descriptions — mirrors src/backend/access/rmgrdesc/*.c of PostgreSQL 15
(the rm_desc and rm_identify functions pg_waldump prints), plus pg_waldump's
compat.c timestamptz_to_str.

``identify(rmid, info)`` gives the record type ("CHECKPOINT_SHUTDOWN", ...) or
None where PostgreSQL's identify function returns NULL; ``describe(rec)`` the
text after it. Both mirror PostgreSQL 15.18's pg_waldump byte for byte for:

    XLOG         every record type
    Transaction  COMMIT, ABORT (with every xinfo part), PREPARE, COMMIT/ABORT
                 _PREPARED, ASSIGNMENT, INVALIDATION
    CLOG         ZEROPAGE, TRUNCATE
    Storage, Database, Tablespace, RelMap, Standby, MultiXact, CommitTs,
    ReplicationOrigin, Sequence, LogicalMessage, Heap, Heap2, Btree: every
    record type

The other resource managers (Hash, Gin, Gist, SPGist, BRIN, Generic) have
their record-type names, so ``--stats=record`` matches pg_waldump, but an
empty description: tusk does not write those records.

Where tusk differs: a relation path in a non-default tablespace
(``pg_tblspc/<spc>/PG_15_<catversion>/...``) carries tusk's catalog version,
where the tablespace directories of a tusk cluster really are; pg_waldump
prints its own build's (PG_15_202209061).

Timestamps print as pg_waldump prints them: local time of this process (TZ),
``2024-01-01 00:00:00.123456 UTC``.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

from access.xlog_internal import (
    CHECKPOINT,
    CLOG_TRUNCATE,
    CLOG_ZEROPAGE,
    RM_BTREE_ID,
    RM_CLOG_ID,
    RM_COMMIT_TS_ID,
    RM_DBASE_ID,
    RM_HEAP2_ID,
    RM_HEAP_ID,
    RM_LOGICALMSG_ID,
    RM_MULTIXACT_ID,
    RM_RELMAP_ID,
    RM_REPLORIGIN_ID,
    RM_SEQ_ID,
    RM_SMGR_ID,
    RM_STANDBY_ID,
    RM_TBLSPC_ID,
    RM_XACT_ID,
    RM_XLOG_ID,
    RMGR_NAMES,
    XLOG_BACKUP_END,
    XLOG_CHECKPOINT_ONLINE,
    XLOG_CHECKPOINT_SHUTDOWN,
    XLOG_END_OF_RECOVERY,
    XLOG_FPW_CHANGE,
    XLOG_NEXTOID,
    XLOG_OVERWRITE_CONTRECORD,
    XLOG_PARAMETER_CHANGE,
    XLOG_RESTORE_POINT,
    XLOG_XACT_ABORT,
    XLOG_XACT_ABORT_PREPARED,
    XLOG_XACT_ASSIGNMENT,
    XLOG_XACT_COMMIT,
    XLOG_XACT_COMMIT_PREPARED,
    XLOG_XACT_HAS_INFO,
    XLOG_XACT_INVALIDATIONS,
    XLOG_XACT_OPMASK,
    XLOG_XACT_PREPARE,
    XLR_INFO_MASK,
    format_lsn,
    maxalign,
)
from storage.relfilenode import FORK_NAMES, MAIN_FORKNUM, RelFileNode, relpath

# -- timestamps (pg_waldump's compat.c) ------------------------------------------------------

POSTGRES_EPOCH_UNIX = 946684800  # 2000-01-01 00:00:00 UTC in Unix seconds
USECS_PER_SEC = 1_000_000


def timestamptz_to_str(t: int) -> str:
    """pg_waldump's timestamptz_to_str: local time, microseconds, zone abbreviation."""
    secs = int(t / USECS_PER_SEC) if t < 0 else t // USECS_PER_SEC  # C division
    frac = t - secs * USECS_PER_SEC  # C's t % USECS_PER_SEC (sign of t)
    lt = time.localtime(secs + POSTGRES_EPOCH_UNIX)
    return (f"{time.strftime('%Y-%m-%d %H:%M:%S', lt)}.{frac:06d} "
            f"{time.strftime('%Z', lt)}")


def _relpathperm(rnode: RelFileNode, fork: int = MAIN_FORKNUM) -> str:
    return relpath(rnode, fork)


_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_U64 = struct.Struct("<Q")


def _u32s(data: bytes, off: int, n: int) -> tuple[int, ...]:
    return struct.unpack_from(f"<{n}I", data, off) if n > 0 else ()


def _pad(data: bytes, size: int) -> bytes:
    """Records shorter than their C struct (trailing padding not logged) read as zeros."""
    return data if len(data) >= size else data + bytes(size - len(data))


# -- XLOG (xlogdesc.c) ---------------------------------------------------------------------

_XLOG_IDS = {0x00: "CHECKPOINT_SHUTDOWN", 0x10: "CHECKPOINT_ONLINE", 0x20: "NOOP",
             0x30: "NEXTOID", 0x40: "SWITCH", 0x50: "BACKUP_END", 0x60: "PARAMETER_CHANGE",
             0x70: "RESTORE_POINT", 0x80: "FPW_CHANGE", 0x90: "END_OF_RECOVERY",
             0xD0: "OVERWRITE_CONTRECORD", 0xB0: "FPI", 0xA0: "FPI_FOR_HINT"}
# wal_level_options (guc.c), first match wins.
_WAL_LEVELS = ((0, "minimal"), (1, "replica"), (1, "archive"), (1, "hot_standby"),
               (2, "logical"))
_PARAMETER_CHANGE = struct.Struct("<iiiiii??")
_END_OF_RECOVERY = struct.Struct("<qII")
_OVERWRITE_CONTRECORD = struct.Struct("<Qq")


def xlog_desc(info: int, rec: bytes, _record: object = None) -> str:
    if info in (XLOG_CHECKPOINT_SHUTDOWN, XLOG_CHECKPOINT_ONLINE):
        (redo, tli, prev_tli, fpw, next_xid, next_oid, next_multi, next_multi_offset,
         oldest_xid, oldest_xid_db, oldest_multi, oldest_multi_db, _time, oldest_commit_ts,
         newest_commit_ts, oldest_active) = CHECKPOINT.unpack_from(_pad(rec, CHECKPOINT.size))
        return (f"redo {format_lsn(redo)}; tli {tli}; prev tli {prev_tli}; "
                f"fpw {'true' if fpw else 'false'}; xid {next_xid >> 32}:{next_xid & 0xFFFFFFFF};"
                f" oid {next_oid}; multi {next_multi}; offset {next_multi_offset}; "
                f"oldest xid {oldest_xid} in DB {oldest_xid_db}; oldest multi {oldest_multi} "
                f"in DB {oldest_multi_db}; oldest/newest commit timestamp xid: "
                f"{oldest_commit_ts}/{newest_commit_ts}; oldest running xid {oldest_active}; "
                f"{'shutdown' if info == XLOG_CHECKPOINT_SHUTDOWN else 'online'}")
    if info == XLOG_NEXTOID:
        return str(_U32.unpack_from(_pad(rec, 4))[0])
    if info == XLOG_RESTORE_POINT:
        name = _pad(rec, 8)[8:]
        return name.split(b"\0", 1)[0].decode("utf-8", "replace")
    if info == XLOG_BACKUP_END:
        return format_lsn(_U64.unpack_from(_pad(rec, 8))[0])
    if info == XLOG_PARAMETER_CHANGE:
        (max_conn, max_workers, max_senders, max_prepared, max_locks, wal_level, hints,
         commit_ts) = _PARAMETER_CHANGE.unpack_from(_pad(rec, _PARAMETER_CHANGE.size))
        level = next((name for val, name in _WAL_LEVELS if val == wal_level), "?")
        return (f"max_connections={max_conn} max_worker_processes={max_workers} "
                f"max_wal_senders={max_senders} max_prepared_xacts={max_prepared} "
                f"max_locks_per_xact={max_locks} wal_level={level} "
                f"wal_log_hints={'on' if hints else 'off'} "
                f"track_commit_timestamp={'on' if commit_ts else 'off'}")
    if info == XLOG_FPW_CHANGE:
        return "true" if _pad(rec, 1)[0] else "false"
    if info == XLOG_END_OF_RECOVERY:
        end_time, tli, prev_tli = _END_OF_RECOVERY.unpack_from(_pad(rec, 16))
        return f"tli {tli}; prev tli {prev_tli}; time {timestamptz_to_str(end_time)}"
    if info == XLOG_OVERWRITE_CONTRECORD:
        lsn, when = _OVERWRITE_CONTRECORD.unpack_from(_pad(rec, 16))
        return f"lsn {format_lsn(lsn)}; time {timestamptz_to_str(when)}"
    return ""  # NOOP, SWITCH, FPI, FPI_FOR_HINT: no further information


# -- Transaction (xactdesc.c, standbydesc.c) -------------------------------------------------

XACT_XINFO_HAS_DBINFO = 1 << 0
XACT_XINFO_HAS_SUBXACTS = 1 << 1
XACT_XINFO_HAS_RELFILENODES = 1 << 2
XACT_XINFO_HAS_INVALS = 1 << 3
XACT_XINFO_HAS_TWOPHASE = 1 << 4
XACT_XINFO_HAS_ORIGIN = 1 << 5
XACT_XINFO_HAS_AE_LOCKS = 1 << 6
XACT_XINFO_HAS_GID = 1 << 7
XACT_XINFO_HAS_DROPPED_STATS = 1 << 8
XACT_COMPLETION_APPLY_FEEDBACK = 1 << 29
XACT_COMPLETION_UPDATE_RELCACHE_FILE = 1 << 30
XACT_COMPLETION_FORCE_SYNC_COMMIT = 1 << 31

SHAREDINVALCATALOG_ID = -1
SHAREDINVALRELCACHE_ID = -2
SHAREDINVALSMGR_ID = -3
SHAREDINVALRELMAP_ID = -4
SHAREDINVALSNAPSHOT_ID = -5
SIZEOF_INVAL_MSG = 16

_XACT_IDS = {XLOG_XACT_COMMIT: "COMMIT", XLOG_XACT_PREPARE: "PREPARE",
             XLOG_XACT_ABORT: "ABORT", XLOG_XACT_COMMIT_PREPARED: "COMMIT_PREPARED",
             XLOG_XACT_ABORT_PREPARED: "ABORT_PREPARED", XLOG_XACT_ASSIGNMENT: "ASSIGNMENT",
             XLOG_XACT_INVALIDATIONS: "INVALIDATION"}
_XACT_TIME = struct.Struct("<q")
_ORIGIN = struct.Struct("<Qq")
_STATS_ITEM = struct.Struct("<iII")
_INVAL_ID = struct.Struct("<b")
_XACT_PREPARE = struct.Struct("<IIIIqIiiiiii?xHQq")


class ParsedXact:
    """xl_xact_parsed_commit / xl_xact_parsed_abort / xl_xact_parsed_prepare."""

    __slots__ = ("xinfo", "xact_time", "db_id", "ts_id", "subxacts", "xnodes", "abortnodes",
                 "stats", "abortstats", "msgs", "twophase_xid", "twophase_gid", "origin_lsn",
                 "origin_timestamp")

    def __init__(self) -> None:
        self.xinfo = 0
        self.xact_time = 0
        self.db_id = 0
        self.ts_id = 0
        self.subxacts: tuple[int, ...] = ()
        self.xnodes: list[RelFileNode] = []
        self.abortnodes: list[RelFileNode] = []
        self.stats: list[tuple[int, int, int]] = []
        self.abortstats: list[tuple[int, int, int]] = []
        self.msgs: list[bytes] = []
        self.twophase_xid = 0
        self.twophase_gid = ""
        self.origin_lsn = 0
        self.origin_timestamp = 0


def _rnodes(data: bytes, off: int, n: int) -> list[RelFileNode]:
    return [RelFileNode._make(struct.unpack_from("<III", data, off + 12 * i)) for i in range(n)]


def _stats_items(data: bytes, off: int, n: int) -> list[tuple[int, int, int]]:
    return [_STATS_ITEM.unpack_from(data, off + 12 * i) for i in range(n)]


def parse_commit_or_abort(info: int, rec: bytes, *, commit: bool) -> ParsedXact:
    """ParseCommitRecord / ParseAbortRecord (xactdesc.c)."""
    p = ParsedXact()
    rec = _pad(rec, 8)
    (p.xact_time,) = _XACT_TIME.unpack_from(rec, 0)
    off = 8
    if info & XLOG_XACT_HAS_INFO:
        (p.xinfo,) = _U32.unpack_from(rec, off)
        off += 4
    xinfo = p.xinfo
    if xinfo & XACT_XINFO_HAS_DBINFO:
        p.db_id, p.ts_id = struct.unpack_from("<II", rec, off)
        off += 8
    if xinfo & XACT_XINFO_HAS_SUBXACTS:
        (n,) = _I32.unpack_from(rec, off)
        p.subxacts = _u32s(rec, off + 4, n)
        off += 4 + 4 * max(n, 0)
    if xinfo & XACT_XINFO_HAS_RELFILENODES:
        (n,) = _I32.unpack_from(rec, off)
        p.xnodes = _rnodes(rec, off + 4, n)
        off += 4 + 12 * max(n, 0)
    if xinfo & XACT_XINFO_HAS_DROPPED_STATS:
        (n,) = _I32.unpack_from(rec, off)
        p.stats = _stats_items(rec, off + 4, n)
        off += 4 + 12 * max(n, 0)
    if commit and xinfo & XACT_XINFO_HAS_INVALS:
        (n,) = _I32.unpack_from(rec, off)
        p.msgs = [rec[off + 4 + 16 * i:off + 20 + 16 * i] for i in range(n)]
        off += 4 + SIZEOF_INVAL_MSG * max(n, 0)
    if xinfo & XACT_XINFO_HAS_TWOPHASE:
        (p.twophase_xid,) = _U32.unpack_from(rec, off)
        off += 4
        if xinfo & XACT_XINFO_HAS_GID:
            end = rec.find(b"\0", off)
            end = len(rec) if end < 0 else end
            p.twophase_gid = rec[off:end].decode("utf-8", "replace")
            off = end + 1
    if xinfo & XACT_XINFO_HAS_ORIGIN:
        p.origin_lsn, p.origin_timestamp = _ORIGIN.unpack_from(_pad(rec, off + 16), off)
    return p


def parse_prepare(rec: bytes) -> tuple[ParsedXact, bool]:
    """ParsePrepareRecord; also returns xl_xact_prepare.initfileinval."""
    p = ParsedXact()
    rec = _pad(rec, _XACT_PREPARE.size)
    (_magic, _total_len, xid, database, prepared_at, _owner, nsubxacts, ncommitrels,
     nabortrels, ncommitstats, nabortstats, ninvalmsgs, initfileinval, gidlen, origin_lsn,
     origin_timestamp) = _XACT_PREPARE.unpack_from(rec, 0)
    p.twophase_xid = xid
    p.db_id = database
    p.xact_time = prepared_at
    p.origin_lsn = origin_lsn
    p.origin_timestamp = origin_timestamp
    off = maxalign(_XACT_PREPARE.size)
    p.twophase_gid = rec[off:off + gidlen].split(b"\0", 1)[0].decode("utf-8", "replace")
    off += maxalign(gidlen)
    p.subxacts = _u32s(rec, off, nsubxacts)
    off += maxalign(4 * nsubxacts)
    p.xnodes = _rnodes(rec, off, ncommitrels)
    off += maxalign(12 * ncommitrels)
    p.abortnodes = _rnodes(rec, off, nabortrels)
    off += maxalign(12 * nabortrels)
    p.stats = _stats_items(rec, off, ncommitstats)
    off += maxalign(12 * ncommitstats)
    p.abortstats = _stats_items(rec, off, nabortstats)
    off += maxalign(12 * nabortstats)
    p.msgs = [rec[off + 16 * i:off + 16 * (i + 1)] for i in range(ninvalmsgs)]
    return p, initfileinval


def _desc_relations(label: str, nodes: list[RelFileNode]) -> str:
    if not nodes:
        return ""
    return f"; {label}:" + "".join(f" {_relpathperm(n)}" for n in nodes)


def _desc_subxacts(subxacts: tuple[int, ...]) -> str:
    if not subxacts:
        return ""
    return "; subxacts:" + "".join(f" {x}" for x in subxacts)


def _desc_stats(label: str, items: list[tuple[int, int, int]]) -> str:
    if not items:
        return ""
    return f"; {label}dropped stats:" + "".join(f" {k}/{d}/{o}" for k, d, o in items)


def standby_desc_invalidations(msgs: list[bytes], db_id: int, ts_id: int,
                               relcache_init_file_inval: bool) -> str:
    """standby_desc_invalidations (standbydesc.c)."""
    if not msgs:
        return ""
    out = []
    if relcache_init_file_inval:
        out.append(f"; relcache init file inval dbid {db_id} tsid {ts_id}")
    out.append("; inval msgs:")
    for m in msgs:
        m = _pad(m, SIZEOF_INVAL_MSG)
        (msg_id,) = _INVAL_ID.unpack_from(m, 0)
        if msg_id >= 0:
            out.append(f" catcache {msg_id}")
        elif msg_id == SHAREDINVALCATALOG_ID:
            out.append(f" catalog {_U32.unpack_from(m, 8)[0]}")
        elif msg_id == SHAREDINVALRELCACHE_ID:
            out.append(f" relcache {_U32.unpack_from(m, 8)[0]}")
        elif msg_id == SHAREDINVALSMGR_ID:
            out.append(" smgr")
        elif msg_id == SHAREDINVALRELMAP_ID:
            out.append(f" relmap db {_U32.unpack_from(m, 4)[0]}")
        elif msg_id == SHAREDINVALSNAPSHOT_ID:
            out.append(f" snapshot {_U32.unpack_from(m, 8)[0]}")
        else:
            out.append(f" unrecognized id {msg_id}")
    return "".join(out)


def _origin_desc(origin_id: int, p: ParsedXact) -> str:
    return (f"; origin: node {origin_id}, lsn {format_lsn(p.origin_lsn)}, "
            f"at {timestamptz_to_str(p.origin_timestamp)}")


def xact_desc(info: int, rec: bytes, record: object = None) -> str:
    full_info = info
    op = info & XLOG_XACT_OPMASK
    origin_id = getattr(record, "origin", 0)
    if op in (XLOG_XACT_COMMIT, XLOG_XACT_COMMIT_PREPARED):
        p = parse_commit_or_abort(full_info, rec, commit=True)
        out = [f"{p.twophase_xid}: " if p.twophase_xid else "", timestamptz_to_str(p.xact_time),
               _desc_relations("rels", p.xnodes), _desc_subxacts(p.subxacts),
               _desc_stats("", p.stats),
               standby_desc_invalidations(
                   p.msgs, p.db_id, p.ts_id,
                   bool(p.xinfo & XACT_COMPLETION_UPDATE_RELCACHE_FILE))]
        if p.xinfo & XACT_COMPLETION_APPLY_FEEDBACK:
            out.append("; apply_feedback")
        if p.xinfo & XACT_COMPLETION_FORCE_SYNC_COMMIT:
            out.append("; sync")
        if p.xinfo & XACT_XINFO_HAS_ORIGIN:
            out.append(_origin_desc(origin_id, p))
        return "".join(out)
    if op in (XLOG_XACT_ABORT, XLOG_XACT_ABORT_PREPARED):
        p = parse_commit_or_abort(full_info, rec, commit=False)
        out = [f"{p.twophase_xid}: " if p.twophase_xid else "", timestamptz_to_str(p.xact_time),
               _desc_relations("rels", p.xnodes), _desc_subxacts(p.subxacts)]
        if p.xinfo & XACT_XINFO_HAS_ORIGIN:
            out.append(_origin_desc(origin_id, p))
        out.append(_desc_stats("", p.stats))
        return "".join(out)
    if op == XLOG_XACT_PREPARE:
        p, initfileinval = parse_prepare(rec)
        out = [f"gid {p.twophase_gid}: ", timestamptz_to_str(p.xact_time),
               _desc_relations("rels(commit)", p.xnodes),
               _desc_relations("rels(abort)", p.abortnodes),
               _desc_stats("commit ", p.stats), _desc_stats("abort ", p.abortstats),
               _desc_subxacts(p.subxacts),
               standby_desc_invalidations(p.msgs, p.db_id, p.ts_id, initfileinval)]
        if origin_id != 0:
            out.append(_origin_desc(origin_id, p))
        return "".join(out)
    if op == XLOG_XACT_ASSIGNMENT:
        rec = _pad(rec, 8)
        xtop, n = struct.unpack_from("<Ii", rec, 0)
        return f"xtop {xtop}: subxacts:" + "".join(f" {x}" for x in _u32s(rec, 8, n))
    if op == XLOG_XACT_INVALIDATIONS:
        (n,) = _I32.unpack_from(_pad(rec, 4), 0)
        msgs = [rec[4 + 16 * i:20 + 16 * i] for i in range(n)]
        return standby_desc_invalidations(msgs, 0, 0, False)
    return ""


def xact_identify(info: int) -> str | None:
    return _XACT_IDS.get(info & XLOG_XACT_OPMASK)


# -- CLOG (clogdesc.c), CommitTs, MultiXact -------------------------------------------------

def clog_desc(info: int, rec: bytes, _record: object = None) -> str:
    if info == CLOG_ZEROPAGE:
        return f"page {_I32.unpack_from(_pad(rec, 4))[0]}"
    if info == CLOG_TRUNCATE:
        pageno, oldest_xact = struct.unpack_from("<iI", _pad(rec, 8))
        return f"page {pageno}; oldestXact {oldest_xact}"
    return ""


def commit_ts_desc(info: int, rec: bytes, _record: object = None) -> str:
    if info == 0x00:  # COMMIT_TS_ZEROPAGE
        return f"{_I32.unpack_from(_pad(rec, 4))[0]}"
    if info == 0x10:  # COMMIT_TS_TRUNCATE
        pageno, oldest_xid = struct.unpack_from("<iI", _pad(rec, 8))
        return f"pageno {pageno}, oldestXid {oldest_xid}"
    return ""


_MXACT_STATUS = ("(keysh) ", "(sh) ", "(fornokeyupd) ", "(forupd) ", "(nokeyupd) ", "(upd) ")


def multixact_desc(info: int, rec: bytes, _record: object = None) -> str:
    if info in (0x00, 0x10):  # ZERO_OFF_PAGE, ZERO_MEM_PAGE
        return f"{_I32.unpack_from(_pad(rec, 4))[0]}"
    if info == 0x20:  # CREATE_ID
        mid, moff, nmembers = struct.unpack_from("<IIi", _pad(rec, 12))
        out = [f"{mid} offset {moff} nmembers {nmembers}: "]
        for i in range(nmembers):
            xid, status = struct.unpack_from("<Ii", rec, 12 + 8 * i)
            out.append(f"{xid} {_MXACT_STATUS[status] if 0 <= status < 6 else '(unk) '}")
        return "".join(out)
    if info == 0x30:  # TRUNCATE_ID
        _db, start_off, end_off, start_mem, end_mem = struct.unpack_from("<IIIII", _pad(rec, 20))
        return f"offsets [{start_off}, {end_off}), members [{start_mem}, {end_mem})"
    return ""


# -- Storage, Database, Tablespace, RelMap, Sequence, ReplicationOrigin --------------------

def smgr_desc(info: int, rec: bytes, _record: object = None) -> str:
    if info == 0x10:  # XLOG_SMGR_CREATE
        spc, db, rel, fork = struct.unpack_from("<IIIi", _pad(rec, 16))
        return relpath(RelFileNode(spc, db, rel), fork if 0 <= fork < len(FORK_NAMES) else 0)
    if info == 0x20:  # XLOG_SMGR_TRUNCATE
        blkno, spc, db, rel, flags = struct.unpack_from("<IIIIi", _pad(rec, 20))
        return f"{relpath(RelFileNode(spc, db, rel))} to {blkno} blocks flags {flags}"
    return ""


def dbase_desc(info: int, rec: bytes, _record: object = None) -> str:
    if info == 0x00:  # XLOG_DBASE_CREATE_FILE_COPY
        db, spc, src_db, src_spc = struct.unpack_from("<IIII", _pad(rec, 16))
        return f"copy dir {src_spc}/{src_db} to {spc}/{db}"
    if info == 0x10:  # XLOG_DBASE_CREATE_WAL_LOG
        db, spc = struct.unpack_from("<II", _pad(rec, 8))
        return f"create dir {spc}/{db}"
    if info == 0x20:  # XLOG_DBASE_DROP
        db, n = struct.unpack_from("<Ii", _pad(rec, 8))
        return "dir" + "".join(f" {spc}/{db}" for spc in _u32s(rec, 8, n))
    return ""


def tblspc_desc(info: int, rec: bytes, _record: object = None) -> str:
    rec = _pad(rec, 4)
    (ts_id,) = _U32.unpack_from(rec, 0)
    if info == 0x00:  # XLOG_TBLSPC_CREATE
        path = rec[4:].split(b"\0", 1)[0].decode("utf-8", "replace")
        return f'{ts_id} "{path}"'
    if info == 0x10:  # XLOG_TBLSPC_DROP
        return f"{ts_id}"
    return ""


def relmap_desc(info: int, rec: bytes, _record: object = None) -> str:
    if info == 0x00:  # XLOG_RELMAP_UPDATE
        db, spc, nbytes = struct.unpack_from("<IIi", _pad(rec, 12))
        return f"database {db} tablespace {spc} size {nbytes}"
    return ""


def seq_desc(info: int, rec: bytes, _record: object = None) -> str:
    if info == 0x00:  # XLOG_SEQ_LOG
        spc, db, rel = struct.unpack_from("<III", _pad(rec, 12))
        return f"rel {spc}/{db}/{rel}"
    return ""


def replorigin_desc(info: int, rec: bytes, _record: object = None) -> str:
    if info == 0x00:  # XLOG_REPLORIGIN_SET
        lsn, node_id, force = struct.unpack_from("<QH?", _pad(rec, 11))
        return f"set {node_id}; lsn {format_lsn(lsn)}; force: {int(force)}"
    if info == 0x10:  # XLOG_REPLORIGIN_DROP
        return f"drop {_U16.unpack_from(_pad(rec, 2))[0]}"
    return ""


def logicalmsg_desc(info: int, rec: bytes, _record: object = None) -> str:
    if info == 0x00:  # XLOG_LOGICAL_MESSAGE
        _db, transactional, prefix_size, message_size = struct.unpack_from("<I?3xQQ",
                                                                           _pad(rec, 24))
        prefix = rec[24:24 + prefix_size].split(b"\0", 1)[0].decode("utf-8", "replace")
        payload = rec[24 + prefix_size:24 + prefix_size + message_size]
        kind = "transactional" if transactional else "non-transactional"
        return (f'{kind}, prefix "{prefix}"; payload ({message_size} bytes): '
                + " ".join(f"{c:02X}" for c in payload))
    return ""


# -- Standby (standbydesc.c) ---------------------------------------------------------------

def standby_desc(info: int, rec: bytes, _record: object = None) -> str:
    if info == 0x00:  # XLOG_STANDBY_LOCK
        (n,) = _I32.unpack_from(_pad(rec, 4), 0)
        locks = (struct.unpack_from("<III", rec, 4 + 12 * i) for i in range(n))
        return "".join(f"xid {xid} db {db} rel {rel} " for xid, db, rel in locks)
    if info == 0x10:  # XLOG_RUNNING_XACTS
        xcnt, _subxcnt, overflow, next_xid, oldest_running, latest_completed = \
            struct.unpack_from("<ii?3xIII", _pad(rec, 24))
        out = [f"nextXid {next_xid} latestCompletedXid {latest_completed} "
               f"oldestRunningXid {oldest_running}"]
        if xcnt > 0:
            out.append(f"; {xcnt} xacts:" + "".join(f" {x}" for x in _u32s(rec, 24, xcnt)))
        if overflow:
            out.append("; subxid ovf")
        return "".join(out)
    if info == 0x20:  # XLOG_INVALIDATIONS
        db, ts, init_inval, n = struct.unpack_from("<II?3xi", _pad(rec, 16))
        msgs = [rec[16 + 16 * i:32 + 16 * i] for i in range(n)]
        return standby_desc_invalidations(msgs, db, ts, init_inval)
    return ""


# -- Heap, Heap2 (heapdesc.c) ---------------------------------------------------------------

XLOG_HEAP_OPMASK = 0x70
XLOG_HEAP_INIT_PAGE = 0x80


def _infobits(bits: int) -> str:
    return "".join(name for flag, name in ((0x01, "IS_MULTI "), (0x02, "LOCK_ONLY "),
                                           (0x04, "EXCL_LOCK "), (0x08, "KEYSHR_LOCK "),
                                           (0x10, "KEYS_UPDATED ")) if bits & flag)


def heap_desc(info: int, rec: bytes, _record: object = None) -> str:
    op = info & XLOG_HEAP_OPMASK
    if op == 0x00:  # INSERT
        offnum, flags = struct.unpack_from("<HB", _pad(rec, 3))
        return f"off {offnum} flags 0x{flags:02X}"
    if op == 0x10:  # DELETE
        _xmax, offnum, infobits, flags = struct.unpack_from("<IHBB", _pad(rec, 8))
        return f"off {offnum} flags 0x{flags:02X} {_infobits(infobits)}"
    if op in (0x20, 0x40):  # UPDATE, HOT_UPDATE
        old_xmax, old_off, old_infobits, flags, new_xmax, new_off = \
            struct.unpack_from("<IHBBIH", _pad(rec, 14))
        return (f"off {old_off} xmax {old_xmax} flags 0x{flags:02X} {_infobits(old_infobits)}"
                f"; new off {new_off} xmax {new_xmax}")
    if op == 0x30:  # TRUNCATE
        _db, nrelids, flags = struct.unpack_from("<IIB", _pad(rec, 9))
        out = []
        if flags & 0x01:
            out.append("cascade ")
        if flags & 0x02:
            out.append("restart_seqs ")
        out.append(f"nrelids {nrelids} relids")
        out.extend(f" {r}" for r in _u32s(rec, 12, nrelids))
        return "".join(out)
    if op == 0x50:  # CONFIRM
        return f"off {_U16.unpack_from(_pad(rec, 2))[0]}"
    if op == 0x60:  # LOCK
        xid, offnum, infobits, flags = struct.unpack_from("<IHBB", _pad(rec, 8))
        return f"off {offnum}: xid {xid}: flags 0x{flags:02X} {_infobits(infobits)}"
    if op == 0x70:  # INPLACE
        return f"off {_U16.unpack_from(_pad(rec, 2))[0]}"
    return ""


def heap2_desc(info: int, rec: bytes, _record: object = None) -> str:
    op = info & XLOG_HEAP_OPMASK
    if op == 0x10:  # PRUNE
        xid, nredirected, ndead = struct.unpack_from("<IHH", _pad(rec, 8))
        return f"latestRemovedXid {xid} nredirected {nredirected} ndead {ndead}"
    if op == 0x20:  # VACUUM
        return f"nunused {_U16.unpack_from(_pad(rec, 2))[0]}"
    if op == 0x30:  # FREEZE_PAGE
        cutoff, ntuples = struct.unpack_from("<IH", _pad(rec, 6))
        return f"cutoff xid {cutoff} ntuples {ntuples}"
    if op == 0x40:  # VISIBLE
        cutoff, flags = struct.unpack_from("<IB", _pad(rec, 5))
        return f"cutoff xid {cutoff} flags 0x{flags:02X}"
    if op == 0x50:  # MULTI_INSERT
        flags, ntuples = struct.unpack_from("<BxH", _pad(rec, 4))
        return f"{ntuples} tuples flags 0x{flags:02X}"
    if op == 0x60:  # LOCK_UPDATED
        xmax, offnum, infobits, flags = struct.unpack_from("<IHBB", _pad(rec, 8))
        return f"off {offnum}: xmax {xmax}: flags 0x{flags:02X} {_infobits(infobits)}"
    if op == 0x70:  # NEW_CID
        (_top, cmin, cmax, combo, spc, db, rel, bi_hi, bi_lo,
         off) = struct.unpack_from("<IIIIIIIHHH", _pad(rec, 34))
        return (f"rel {spc}/{db}/{rel}; tid {(bi_hi << 16) | bi_lo}/{off}"
                f"; cmin: {cmin}, cmax: {cmax}, combo: {combo}")
    return ""  # REWRITE


def _heap_identify(info: int) -> str | None:
    return {0x00: "INSERT", 0x80: "INSERT+INIT", 0x10: "DELETE", 0x20: "UPDATE",
            0xA0: "UPDATE+INIT", 0x40: "HOT_UPDATE", 0xC0: "HOT_UPDATE+INIT",
            0x30: "TRUNCATE", 0x50: "HEAP_CONFIRM", 0x60: "LOCK",
            0x70: "INPLACE"}.get(info & ~XLR_INFO_MASK)


def _heap2_identify(info: int) -> str | None:
    return {0x10: "PRUNE", 0x20: "VACUUM", 0x30: "FREEZE_PAGE", 0x40: "VISIBLE",
            0x50: "MULTI_INSERT", 0xD0: "MULTI_INSERT+INIT", 0x60: "LOCK_UPDATED",
            0x70: "NEW_CID", 0x00: "REWRITE"}.get(info & ~XLR_INFO_MASK)


# -- Btree (nbtdesc.c) ----------------------------------------------------------------------

def btree_desc(info: int, rec: bytes, record: object = None) -> str:
    if info in (0x00, 0x10, 0x20, 0x50):  # INSERT_LEAF/UPPER/META, INSERT_POST
        return f"off {_U16.unpack_from(_pad(rec, 2))[0]}"
    if info in (0x30, 0x40):  # SPLIT_L, SPLIT_R
        level, firstright, newitemoff, postingoff = struct.unpack_from("<IHHH", _pad(rec, 10))
        return (f"level {level}, firstrightoff {firstright}, newitemoff {newitemoff}, "
                f"postingoff {postingoff}")
    if info == 0x60:  # DEDUP
        return f"nintervals {_U16.unpack_from(_pad(rec, 2))[0]}"
    if info == 0xC0:  # VACUUM
        ndeleted, nupdated = struct.unpack_from("<HH", _pad(rec, 4))
        return f"ndeleted {ndeleted}; nupdated {nupdated}"
    if info == 0x70:  # DELETE
        xid, ndeleted, nupdated = struct.unpack_from("<IHH", _pad(rec, 8))
        return f"latestRemovedXid {xid}; ndeleted {ndeleted}; nupdated {nupdated}"
    if info == 0xB0:  # MARK_PAGE_HALFDEAD
        leaf, left, right, top = struct.unpack_from("<4xIIII", _pad(rec, 20))
        return f"topparent {top}; leaf {leaf}; left {left}; right {right}"
    if info in (0x80, 0x90):  # UNLINK_PAGE, UNLINK_PAGE_META
        left, right, level, safexid, lleft, lright, ltop = \
            struct.unpack_from("<III4xQIII", _pad(rec, 36))
        return (f"left {left}; right {right}; level {level}; "
                f"safexid {safexid >> 32}:{safexid & 0xFFFFFFFF}; "
                f"leafleft {lleft}; leafright {lright}; leaftopparent {ltop}")
    if info == 0xA0:  # NEWROOT
        return f"lev {struct.unpack_from('<4xI', _pad(rec, 8))[0]}"
    if info == 0xD0:  # REUSE_PAGE
        spc, db, rel, _blk, fxid = struct.unpack_from("<IIII Q", _pad(rec, 24))
        return (f"rel {spc}/{db}/{rel}; latestRemovedXid "
                f"{fxid >> 32}:{fxid & 0xFFFFFFFF}")
    if info == 0xE0:  # META_CLEANUP: the metadata is block 0's data
        blk = record.block(0) if record is not None else None  # type: ignore[attr-defined]
        data = _pad(blk.data if blk is not None else b"", 24)
        return f"last_cleanup_num_delpages {_U32.unpack_from(data, 20)[0]}"
    return ""


# -- identify tables for the rest ------------------------------------------------------------

_IDS: dict[int, dict[int, str]] = {
    RM_XLOG_ID: _XLOG_IDS,
    RM_SMGR_ID: {0x10: "CREATE", 0x20: "TRUNCATE"},
    RM_CLOG_ID: {0x00: "ZEROPAGE", 0x10: "TRUNCATE"},
    RM_DBASE_ID: {0x00: "CREATE_FILE_COPY", 0x10: "CREATE_WAL_LOG", 0x20: "DROP"},
    RM_TBLSPC_ID: {0x00: "CREATE", 0x10: "DROP"},
    RM_MULTIXACT_ID: {0x00: "ZERO_OFF_PAGE", 0x10: "ZERO_MEM_PAGE", 0x20: "CREATE_ID",
                      0x30: "TRUNCATE_ID"},
    RM_RELMAP_ID: {0x00: "UPDATE"},
    RM_STANDBY_ID: {0x00: "LOCK", 0x10: "RUNNING_XACTS", 0x20: "INVALIDATIONS"},
    RM_BTREE_ID: {0x00: "INSERT_LEAF", 0x10: "INSERT_UPPER", 0x20: "INSERT_META",
                  0x30: "SPLIT_L", 0x40: "SPLIT_R", 0x50: "INSERT_POST", 0x60: "DEDUP",
                  0x70: "DELETE", 0x80: "UNLINK_PAGE", 0x90: "UNLINK_PAGE_META",
                  0xA0: "NEWROOT", 0xB0: "MARK_PAGE_HALFDEAD", 0xC0: "VACUUM",
                  0xD0: "REUSE_PAGE", 0xE0: "META_CLEANUP"},
    12: {0x00: "INIT_META_PAGE", 0x10: "INIT_BITMAP_PAGE", 0x20: "INSERT",  # Hash
         0x30: "ADD_OVFL_PAGE", 0x40: "SPLIT_ALLOCATE_PAGE", 0x50: "SPLIT_PAGE",
         0x60: "SPLIT_COMPLETE", 0x70: "MOVE_PAGE_CONTENTS", 0x80: "SQUEEZE_PAGE",
         0x90: "DELETE", 0xA0: "SPLIT_CLEANUP", 0xB0: "UPDATE_META_PAGE",
         0xC0: "VACUUM_ONE_PAGE"},
    13: {0x10: "CREATE_PTREE", 0x20: "INSERT", 0x30: "SPLIT", 0x40: "VACUUM_PAGE",  # Gin
         0x90: "VACUUM_DATA_LEAF_PAGE", 0x50: "DELETE_PAGE", 0x60: "UPDATE_META_PAGE",
         0x70: "INSERT_LISTPAGE", 0x80: "DELETE_LISTPAGE"},
    14: {0x00: "PAGE_UPDATE", 0x10: "DELETE", 0x20: "PAGE_REUSE", 0x30: "PAGE_SPLIT",  # Gist
         0x60: "PAGE_DELETE", 0x70: "ASSIGN_LSN"},
    RM_SEQ_ID: {0x00: "LOG"},
    16: {0x10: "ADD_LEAF", 0x20: "MOVE_LEAFS", 0x30: "ADD_NODE", 0x40: "SPLIT_TUPLE",  # SPGist
         0x50: "PICKSPLIT", 0x60: "VACUUM_LEAF", 0x70: "VACUUM_ROOT", 0x80: "VACUUM_REDIRECT"},
    17: {0x00: "CREATE_INDEX", 0x10: "INSERT", 0x90: "INSERT+INIT", 0x20: "UPDATE",  # BRIN
         0xA0: "UPDATE+INIT", 0x30: "SAMEPAGE_UPDATE", 0x40: "REVMAP_EXTEND",
         0x50: "DESUMMARIZE"},
    RM_COMMIT_TS_ID: {0x00: "ZEROPAGE", 0x10: "TRUNCATE"},
    RM_REPLORIGIN_ID: {0x00: "SET", 0x10: "DROP"},
    21: {0x00: "MESSAGE"},  # LogicalMessage
}

_DESCS: dict[int, Callable[[int, bytes, object], str]] = {
    RM_XLOG_ID: xlog_desc, RM_XACT_ID: xact_desc, RM_SMGR_ID: smgr_desc, RM_CLOG_ID: clog_desc,
    RM_DBASE_ID: dbase_desc, RM_TBLSPC_ID: tblspc_desc, RM_MULTIXACT_ID: multixact_desc,
    RM_RELMAP_ID: relmap_desc, RM_STANDBY_ID: standby_desc, RM_HEAP2_ID: heap2_desc,
    RM_HEAP_ID: heap_desc, RM_BTREE_ID: btree_desc, RM_SEQ_ID: seq_desc,
    RM_COMMIT_TS_ID: commit_ts_desc, RM_REPLORIGIN_ID: replorigin_desc,
    RM_LOGICALMSG_ID: logicalmsg_desc,
}


def rmgr_name(rmid: int) -> str:
    """rm_name as pg_waldump shows it ("custom%03d" for custom ids)."""
    if rmid < len(RMGR_NAMES):
        return RMGR_NAMES[rmid]
    return f"custom{rmid:03d}"


def identify(rmid: int, info: int) -> str | None:
    """rm_identify(info): the record type's name, or None (printed "UNKNOWN (%x)")."""
    if rmid == RM_XACT_ID:
        return xact_identify(info)
    if rmid == RM_HEAP_ID:
        return _heap_identify(info)
    if rmid == RM_HEAP2_ID:
        return _heap2_identify(info)
    if rmid == 20:  # Generic: one record type, named after the rmgr
        return "Generic"
    ids = _IDS.get(rmid)
    if ids is None:
        return None
    return ids.get(info & ~XLR_INFO_MASK)


def describe(rec: object) -> str:
    """rm_desc: the description pg_waldump prints after the record type.

    ``rec`` is an access.xlogreader.DecodedRecord (rmid, info, main_data, blocks).
    """
    fn = _DESCS.get(rec.rmid)  # type: ignore[attr-defined]
    if fn is None:
        return ""
    info = rec.info  # type: ignore[attr-defined]
    if rec.rmid != RM_XACT_ID:  # type: ignore[attr-defined]
        info &= ~XLR_INFO_MASK
    try:
        return fn(info, rec.main_data, rec)  # type: ignore[attr-defined]
    except (struct.error, IndexError, ValueError):
        return "(malformed record)"


def identify_line(rmid: int, info: int) -> str:
    """The 'desc:' word pg_waldump prints: the type, or "UNKNOWN (%x)"."""
    name = identify(rmid, info)
    return name if name is not None else f"UNKNOWN ({info & ~XLR_INFO_MASK:x})"
