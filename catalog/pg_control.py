"""pg_control — mirrors src/include/catalog/pg_control.h and src/common/controldata_utils.c.

The control file is one fixed-layout struct followed by a CRC-32C of every
byte before it. The struct stays well under 512 bytes so that rewriting it in
place is atomic on any disk (one sector), which is the assumption PostgreSQL
makes; the file itself is padded with zeros to PG_CONTROL_FILE_SIZE.

Field names follow PostgreSQL's ControlFileData / CheckPoint so that
``tusk_ctl controldata`` prints what pg_controldata prints. WAL positions
(LSNs) are 64-bit byte positions shown as ``X/X``.
"""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass, field, fields
from enum import IntEnum

import crc32c

PG_CONTROL_VERSION = 1300  # PostgreSQL 15's
CATALOG_VERSION_NO = 202211221  # tusk's own catalog layout version
PG_CONTROL_FILE_SIZE = 8192
PG_CONTROL_MAX_SAFE_SIZE = 512
BLCKSZ = 8192
RELSEG_SIZE = 131072  # blocks per 1 GB segment
XLOG_BLCKSZ_DEFAULT = 8192
WAL_SEGSZ_DEFAULT = 16 * 1024 * 1024
WAL_BLOCK_SIZES = (1024, 2048, 4096, 8192, 16384, 32768, 65536)
PG_MAJORVERSION = "15"


class DBState(IntEnum):
    DB_STARTUP = 0
    DB_SHUTDOWNED = 1
    DB_SHUTDOWNED_IN_RECOVERY = 2
    DB_SHUTDOWNING = 3
    DB_IN_CRASH_RECOVERY = 4
    DB_IN_ARCHIVE_RECOVERY = 5
    DB_IN_PRODUCTION = 6

    @property
    def display(self) -> str:
        return _STATE_NAMES[self]


_STATE_NAMES = {
    DBState.DB_STARTUP: "starting up",
    DBState.DB_SHUTDOWNED: "shut down",
    DBState.DB_SHUTDOWNED_IN_RECOVERY: "shut down in recovery",
    DBState.DB_SHUTDOWNING: "shutting down",
    DBState.DB_IN_CRASH_RECOVERY: "in crash recovery",
    DBState.DB_IN_ARCHIVE_RECOVERY: "in archive recovery",
    DBState.DB_IN_PRODUCTION: "in production",
}


@dataclass
class CheckPoint:
    """The last checkpoint's contents, copied into pg_control (PostgreSQL's CheckPoint)."""

    redo: int = 0
    this_timeline_id: int = 1
    prev_timeline_id: int = 1
    full_page_writes: bool = True
    next_xid: int = 3  # FirstNormalTransactionId, as a 64-bit FullTransactionId
    next_oid: int = 16384  # FirstNormalObjectId
    next_multi: int = 1
    next_multi_offset: int = 0
    oldest_xid: int = 3
    oldest_xid_db: int = 1
    oldest_multi: int = 1
    oldest_multi_db: int = 1
    time: int = 0
    oldest_active_xid: int = 0

    FORMAT = "<QII?QIIIIIIIqI"


@dataclass
class ControlFile:
    system_identifier: int = 0
    pg_control_version: int = PG_CONTROL_VERSION
    catalog_version_no: int = CATALOG_VERSION_NO
    state: DBState = DBState.DB_SHUTDOWNED
    time: int = 0
    check_point: int = 0  # LSN of the last checkpoint record
    check_point_copy: CheckPoint = field(default_factory=CheckPoint)
    unlogged_lsn: int = 0
    min_recovery_point: int = 0
    min_recovery_point_tli: int = 0
    backup_start_point: int = 0
    backup_end_point: int = 0
    backup_end_required: bool = False
    wal_level: int = 1  # replica
    wal_log_hints: bool = False
    max_connections: int = 100
    max_worker_processes: int = 8
    max_wal_senders: int = 10
    max_prepared_xacts: int = 0
    max_locks_per_xact: int = 64
    track_commit_timestamp: bool = False
    max_align: int = 8
    float_format: float = 1234567.0
    blcksz: int = BLCKSZ
    relseg_size: int = RELSEG_SIZE
    xlog_blcksz: int = XLOG_BLCKSZ_DEFAULT
    xlog_seg_size: int = WAL_SEGSZ_DEFAULT
    name_data_len: int = 64
    index_max_keys: int = 32
    toast_max_chunk_size: int = 1996
    loblksize: int = 2048
    float8_by_val: bool = True
    data_checksum_version: int = 0
    mock_authentication_nonce: bytes = b"\0" * 32

    # Layout of everything but check_point_copy, which sits after check_point.
    HEAD_FORMAT = "<QII I q Q"
    TAIL_FORMAT = "<QQIQQ? i?iiiiiii? I d IIII IIII? I 32s"


_HEAD = struct.Struct(ControlFile.HEAD_FORMAT.replace(" ", ""))
_CKPT = struct.Struct(CheckPoint.FORMAT)
_TAIL = struct.Struct(ControlFile.TAIL_FORMAT.replace(" ", ""))
_CRC = struct.Struct("<I")
CONTROL_DATA_SIZE = _HEAD.size + _CKPT.size + _TAIL.size
assert CONTROL_DATA_SIZE + _CRC.size <= PG_CONTROL_MAX_SAFE_SIZE


class ControlFileError(Exception):
    pass


def pack(cf: ControlFile) -> bytes:
    ck = cf.check_point_copy
    body = (
        _HEAD.pack(cf.system_identifier, cf.pg_control_version, cf.catalog_version_no,
                   int(cf.state), cf.time, cf.check_point)
        + _CKPT.pack(*(getattr(ck, f.name) for f in fields(CheckPoint)))
        + _TAIL.pack(
            cf.unlogged_lsn, cf.min_recovery_point, cf.min_recovery_point_tli,
            cf.backup_start_point, cf.backup_end_point, cf.backup_end_required,
            cf.wal_level, cf.wal_log_hints, cf.max_connections, cf.max_worker_processes,
            cf.max_wal_senders, cf.max_prepared_xacts, cf.max_locks_per_xact,
            0, 0,  # two reserved ints, room for future settings
            cf.track_commit_timestamp, cf.max_align, cf.float_format, cf.blcksz,
            cf.relseg_size, cf.xlog_blcksz, cf.xlog_seg_size, cf.name_data_len,
            cf.index_max_keys, cf.toast_max_chunk_size, cf.loblksize, cf.float8_by_val,
            cf.data_checksum_version, cf.mock_authentication_nonce,
        )
    )
    return body + _CRC.pack(crc32c.crc32c(body))


def unpack(data: bytes) -> ControlFile:
    """Decode and verify a control file image; raises ControlFileError on a bad CRC."""
    if len(data) < CONTROL_DATA_SIZE + _CRC.size:
        raise ControlFileError("control file is too short")
    body = data[:CONTROL_DATA_SIZE]
    (stored,) = _CRC.unpack_from(data, CONTROL_DATA_SIZE)
    if crc32c.crc32c(body) != stored:
        raise ControlFileError("calculated CRC checksum does not match value stored in file")
    head = _HEAD.unpack_from(body, 0)
    ck = CheckPoint(*_CKPT.unpack_from(body, _HEAD.size))
    t = _TAIL.unpack_from(body, _HEAD.size + _CKPT.size)
    version = head[1]
    if version != PG_CONTROL_VERSION:
        raise ControlFileError(
            f"database files are incompatible with server: the database cluster was "
            f"initialized with PG_CONTROL_VERSION {version}, but the server was compiled "
            f"with PG_CONTROL_VERSION {PG_CONTROL_VERSION}"
        )
    return ControlFile(
        system_identifier=head[0], pg_control_version=head[1], catalog_version_no=head[2],
        state=DBState(head[3]), time=head[4], check_point=head[5], check_point_copy=ck,
        unlogged_lsn=t[0], min_recovery_point=t[1], min_recovery_point_tli=t[2],
        backup_start_point=t[3], backup_end_point=t[4], backup_end_required=t[5],
        wal_level=t[6], wal_log_hints=t[7], max_connections=t[8], max_worker_processes=t[9],
        max_wal_senders=t[10], max_prepared_xacts=t[11], max_locks_per_xact=t[12],
        track_commit_timestamp=t[15], max_align=t[16], float_format=t[17], blcksz=t[18],
        relseg_size=t[19], xlog_blcksz=t[20], xlog_seg_size=t[21], name_data_len=t[22],
        index_max_keys=t[23], toast_max_chunk_size=t[24], loblksize=t[25],
        float8_by_val=t[26], data_checksum_version=t[27], mock_authentication_nonce=t[28],
    )


def control_path(datadir: str) -> str:
    return os.path.join(datadir, "global", "pg_control")


def read_control_file(datadir: str) -> ControlFile:
    from storage import fd

    path = control_path(datadir)
    try:
        f = fd.basic_open_file(path, os.O_RDONLY)
    except OSError as exc:
        raise ControlFileError(f'could not open file "{path}": {exc.strerror}') from exc
    try:
        data = fd.pg_pread(f, PG_CONTROL_FILE_SIZE, 0)
    except OSError as exc:
        raise ControlFileError(f'could not read file "{path}": {exc.strerror}') from exc
    finally:
        fd.basic_close(f)
    try:
        return unpack(data)
    except ControlFileError as exc:
        raise ControlFileError("incorrect checksum in control file" if "CRC" in str(exc)
                               else str(exc)) from exc


def write_control_file(datadir: str, cf: ControlFile, *, create: bool = False,
                       do_sync: bool = True) -> None:
    """Rewrite pg_control in place (one sector), as UpdateControlFile does."""
    from storage import fd

    cf.time = int(time.time())
    image = pack(cf)
    path = control_path(datadir)
    flags = os.O_WRONLY | (os.O_CREAT | os.O_EXCL if create else 0)
    f = fd.basic_open_file(path, flags, 0o600)
    try:
        data = image.ljust(PG_CONTROL_FILE_SIZE, b"\0") if create else image
        if fd.pg_pwrite(f, data, 0) != len(data):
            raise OSError(f'could not write to file "{path}": short write')
        if do_sync:
            fd.pg_fsync(f, path)  # a failure is a PANIC for the caller (DataSyncError)
    finally:
        fd.basic_close(f)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def wal_file_name(tli: int, lsn: int, seg_size: int) -> str:
    segno = lsn // seg_size
    per_id = 0x100000000 // seg_size
    return f"{tli:08X}{segno // per_id:08X}{segno % per_id:08X}"


def _ts(t: int) -> str:
    return time.strftime("%a %d %b %Y %I:%M:%S %p UTC", time.gmtime(t))


def describe(cf: ControlFile) -> list[tuple[str, str]]:
    """The lines pg_controldata prints, as (label, value)."""
    ck = cf.check_point_copy
    return [
        ("pg_control version number", str(cf.pg_control_version)),
        ("Catalog version number", str(cf.catalog_version_no)),
        ("Database system identifier", str(cf.system_identifier)),
        ("Database cluster state", cf.state.display),
        ("pg_control last modified", _ts(cf.time)),
        ("Latest checkpoint location", format_lsn(cf.check_point)),
        ("Latest checkpoint's REDO location", format_lsn(ck.redo)),
        ("Latest checkpoint's REDO WAL file",
         wal_file_name(ck.this_timeline_id, ck.redo, cf.xlog_seg_size)),
        ("Latest checkpoint's TimeLineID", str(ck.this_timeline_id)),
        ("Latest checkpoint's PrevTimeLineID", str(ck.prev_timeline_id)),
        ("Latest checkpoint's full_page_writes", "on" if ck.full_page_writes else "off"),
        ("Latest checkpoint's NextXID", f"{ck.next_xid >> 32}:{ck.next_xid & 0xFFFFFFFF}"),
        ("Latest checkpoint's NextOID", str(ck.next_oid)),
        ("Latest checkpoint's NextMultiXactId", str(ck.next_multi)),
        ("Latest checkpoint's NextMultiOffset", str(ck.next_multi_offset)),
        ("Latest checkpoint's oldestXID", str(ck.oldest_xid)),
        ("Latest checkpoint's oldestXID's DB", str(ck.oldest_xid_db)),
        ("Latest checkpoint's oldestActiveXID", str(ck.oldest_active_xid)),
        ("Latest checkpoint's oldestMultiXid", str(ck.oldest_multi)),
        ("Latest checkpoint's oldestMulti's DB", str(ck.oldest_multi_db)),
        ("Time of latest checkpoint", _ts(ck.time)),
        ("Fake LSN counter for unlogged rels", format_lsn(cf.unlogged_lsn)),
        ("Minimum recovery ending location", format_lsn(cf.min_recovery_point)),
        ("Min recovery ending loc's timeline", str(cf.min_recovery_point_tli)),
        ("Backup start location", format_lsn(cf.backup_start_point)),
        ("Backup end location", format_lsn(cf.backup_end_point)),
        ("End-of-backup record required", "yes" if cf.backup_end_required else "no"),
        ("wal_level setting", {0: "minimal", 1: "replica", 2: "logical"}[cf.wal_level]),
        ("wal_log_hints setting", "on" if cf.wal_log_hints else "off"),
        ("max_connections setting", str(cf.max_connections)),
        ("max_worker_processes setting", str(cf.max_worker_processes)),
        ("max_wal_senders setting", str(cf.max_wal_senders)),
        ("max_prepared_xacts setting", str(cf.max_prepared_xacts)),
        ("max_locks_per_xact setting", str(cf.max_locks_per_xact)),
        ("track_commit_timestamp setting", "on" if cf.track_commit_timestamp else "off"),
        ("Maximum data alignment", str(cf.max_align)),
        ("Database block size", str(cf.blcksz)),
        ("Blocks per segment of large relation", str(cf.relseg_size)),
        ("WAL block size", str(cf.xlog_blcksz)),
        ("Bytes per WAL segment", str(cf.xlog_seg_size)),
        ("Maximum length of identifiers", str(cf.name_data_len)),
        ("Maximum columns in an index", str(cf.index_max_keys)),
        ("Maximum size of a TOAST chunk", str(cf.toast_max_chunk_size)),
        ("Size of a large-object chunk", str(cf.loblksize)),
        ("Date/time type storage", "64-bit integers"),
        ("Float8 argument passing", "by value" if cf.float8_by_val else "by reference"),
        ("Data page checksum version", str(cf.data_checksum_version)),
        ("Mock authentication nonce", cf.mock_authentication_nonce.hex()),
    ]
