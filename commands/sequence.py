"""Sequences — mirrors src/backend/commands/sequence.c of PostgreSQL 15
(DefineSequence, fill_seq_with_data, nextval_internal, currval, lastval,
do_setval, seq_redo) for the sequences behind serial and bigserial columns.

A sequence is a relation of relkind 'S' whose one page holds one frozen tuple
(last_value bigint, log_cnt bigint, is_called bool) plus the sequence magic in
the page's special space, and a pg_sequence row with its parameters. The tuple
is changed in place under the buffer's exclusive lock: nextval is not
transactional. Every change that must survive a crash is WAL-logged as
XLOG_SEQ_LOG (PostgreSQL's record: xl_seq_rec, then the whole tuple; the page
is registered REGBUF_WILL_INIT and redo rebuilds it). As in PostgreSQL, one
record covers the next SEQ_LOG_VALS (32) values: nextval writes WAL only when
that reserve is used up or when the page has not been logged since the last
checkpoint, so a crash may skip up to 32 values.

Interface for the SQL layer
---------------------------
``create_sequence(name, namespace_oid, typid=int8, *, start=None, increment=1,
minvalue=None, maxvalue=None, cache=1, cycle=False, owned_by=None)`` -> OID
    ``owned_by`` is (table OID, attnum), or (table name, column name) for a table
    the same transaction creates next (serial columns: the sequence is made before
    its table, as transformCreateStmt does); heap_create_with_catalog then records
    the ownership (pg_depend 'a'), so DROP TABLE drops the sequence.
``nextval(seq)``, ``currval(seq)``, ``lastval()``, ``setval(seq, value, is_called=True)``
    ``seq`` is an OID or a name ("s" or "schema.s", resolved along the search
    path). Errors: 2200H ``nextval: reached maximum value of sequence "s"
    (2147483647)``, 55000 ``currval of sequence "s" is not yet defined in this
    session``, 55000 ``lastval is not yet defined in this session``, 22003 for
    setval out of bounds, 42809 ``"t" is not a sequence``, 42P01 for a missing one.
``reset_session()``
    DISCARD SEQUENCES / DISCARD ALL: forget currval and lastval.

Differences: no per-backend value cache (CACHE is stored and ignored), no
ALTER SEQUENCE, no unlogged or temporary sequences, no sequence privileges.
"""

from __future__ import annotations

import struct
from typing import Any

from access import xlog_internal as xi
from catalog import catalog_defs as cd
from catalog import pg_type as t
from storage.relfilenode import MAIN_FORKNUM, RelFileNode
from utils.elog import PgError
from utils.rel import Relation

XLOG_SEQ_LOG = 0x00
SEQ_MAGIC = 0x1717
SEQ_LOG_VALS = 32
SEQ_COLUMNS = [("last_value", t.INT8OID, -1, True, None), ("log_cnt", t.INT8OID, -1, True, None),
               ("is_called", t.BOOLOID, -1, True, None)]
XL_SEQ_REC = struct.Struct("<III")   # RelFileNode of the sequence
_DATA = struct.Struct("<qq?")        # last_value, log_cnt, is_called at the tuple's t_hoff
_MAGIC = struct.Struct("<I")

_TYPE_RANGE = {t.INT2OID: (-(2**15), 2**15 - 1), t.INT4OID: (-(2**31), 2**31 - 1),
               t.INT8OID: (-(2**63), 2**63 - 1)}

# SeqTable: per-session currval values, and lastval's sequence.
_last_values: dict[int, int] = {}
_last_used: int | None = None
# Ownerships waiting for their table (owned_by given by name): (nsp, table, column) -> seq.
_pending_owned_by: dict[tuple[int, str, str], int] = {}


def reset_session() -> None:
    """DISCARD SEQUENCES."""
    global _last_used
    _last_values.clear()
    _last_used = None


# -- creating ----------------------------------------------------------------------------------

def _check_options(name: str, typid: int, start: int | None, increment: int,
                   minvalue: int | None, maxvalue: int | None, cache: int
                   ) -> tuple[int, int, int]:
    """init_params: the sequence's start, min and max with PostgreSQL's checks."""
    if typid not in _TYPE_RANGE:
        raise PgError("22023", "sequence type must be smallint, integer, or bigint")
    lo, hi = _TYPE_RANGE[typid]
    tname = t.format_type(typid)
    if increment == 0:
        raise PgError("22023", "INCREMENT must not be zero")
    if maxvalue is None:
        maxvalue = hi if increment > 0 else -1
    elif not lo <= maxvalue <= hi:
        raise PgError("22023", f"MAXVALUE ({maxvalue}) is out of range for sequence data "
                               f"type {tname}")
    if minvalue is None:
        minvalue = 1 if increment > 0 else lo
    elif not lo <= minvalue <= hi:
        raise PgError("22023", f"MINVALUE ({minvalue}) is out of range for sequence data "
                               f"type {tname}")
    if minvalue >= maxvalue:
        raise PgError("22023", f"MINVALUE ({minvalue}) must be less than MAXVALUE ({maxvalue})")
    if start is None:
        start = minvalue if increment > 0 else maxvalue
    if start < minvalue:
        raise PgError("22023", f"START value ({start}) cannot be less than MINVALUE "
                               f"({minvalue})")
    if start > maxvalue:
        raise PgError("22023", f"START value ({start}) cannot be greater than MAXVALUE "
                               f"({maxvalue})")
    if cache <= 0:
        raise PgError("22023", f"CACHE ({cache}) must be greater than zero")
    del name
    return start, minvalue, maxvalue


def create_sequence(name: str, namespace_oid: int, typid: int = t.INT8OID, *,
                    start: int | None = None, increment: int = 1, minvalue: int | None = None,
                    maxvalue: int | None = None, cache: int = 1, cycle: bool = False,
                    owned_by: tuple[Any, Any] | None = None) -> int:
    """DefineSequence (see the module docstring); returns the sequence's OID."""
    from catalog import heap, indexing
    from utils import relcache

    start, minvalue, maxvalue = _check_options(name, typid, start, increment, minvalue,
                                               maxvalue, cache)
    seqoid = heap.heap_create_with_catalog(name, namespace_oid, SEQ_COLUMNS, relkind="S")
    indexing.catalog_tuple_insert(relcache.catalog_relation(cd.PG_SEQUENCE), cd.PG_SEQUENCE.row(
        seqrelid=seqoid, seqtypid=typid, seqstart=start, seqincrement=increment,
        seqmax=maxvalue, seqmin=minvalue, seqcache=cache, seqcycle=cycle))
    rel = relcache.relation_open(seqoid, relcache.AccessExclusiveLock)
    fill_seq_with_data(rel, start)
    if owned_by is not None:
        if isinstance(owned_by[0], int):
            set_owned_by(seqoid, owned_by[0], owned_by[1])
        else:
            _pending_owned_by[(namespace_oid, owned_by[0], owned_by[1])] = seqoid
    indexing.command_counter_increment()
    return seqoid


def set_owned_by(seqoid: int, table_oid: int, attnum: int) -> None:
    """ALTER SEQUENCE ... OWNED BY table.column: a pg_depend 'a' row."""
    from catalog import indexing
    from utils import relcache

    indexing.catalog_tuple_insert(relcache.catalog_relation(cd.PG_DEPEND), cd.PG_DEPEND.row(
        classid=cd.RelationRelationId, objid=seqoid, objsubid=0,
        refclassid=cd.RelationRelationId, refobjid=table_oid, refobjsubid=attnum,
        deptype="a"))


def resolve_pending_owned_by(namespace_oid: int, relname: str, relid: int,
                             colnames: list[str]) -> None:
    """A table was created: record the ownership of the sequences made for it."""
    if not _pending_owned_by:
        return
    for attnum, col in enumerate(colnames, start=1):
        seqoid = _pending_owned_by.pop((namespace_oid, relname, col), None)
        if seqoid is not None:
            set_owned_by(seqoid, relid, attnum)


def _at_eoxact(_is_commit: bool) -> None:
    _pending_owned_by.clear()


def fill_seq_with_data(rel: Relation, start: int) -> None:
    """fill_seq_with_data: the sequence's page with its one frozen tuple, WAL-logged."""
    from storage import bufmgr

    buf = bufmgr.read_buffer(rel.smgr, bufmgr.P_NEW)
    bufmgr.lock_buffer(buf, bufmgr.BUFFER_LOCK_EXCLUSIVE)
    try:
        page = bufmgr.buffer_get_page(buf)
        _init_page(page, _frozen_tuple(rel, start))
        bufmgr.mark_buffer_dirty(buf)
        _log(rel.rnode, page)
    finally:
        bufmgr.unlock_release_buffer(buf)


def _frozen_tuple(rel: Relation, last_value: int, log_cnt: int = 0,
                  is_called: bool = False) -> bytearray:
    from access.heaptuple import (
        CTID,
        HEAP_XMIN_FROZEN,
        INFOMASKS,
        T_CTID,
        T_INFOMASK2,
        T_XMIN,
        U32,
        heap_form_tuple,
    )

    tup = heap_form_tuple(rel.desc, [last_value, log_cnt, is_called])
    im2, im = INFOMASKS.unpack_from(tup, T_INFOMASK2)
    INFOMASKS.pack_into(tup, T_INFOMASK2, im2, im | HEAP_XMIN_FROZEN)
    U32.pack_into(tup, T_XMIN, 2)  # FrozenTransactionId
    CTID.pack_into(tup, T_CTID, 0, 0, 1)
    return tup


def _init_page(page: Any, tup: bytes | bytearray | memoryview) -> None:
    from storage import bufpage

    bufpage.page_init(page, bufpage.BLCKSZ, _MAGIC.size)
    _MAGIC.pack_into(page, bufpage.page_get_special_pointer(page), SEQ_MAGIC)
    if bufpage.page_add_item(page, tup) != 1:
        raise PgError("XX000", "failed to add sequence tuple to page")


def _log(rnode: RelFileNode, page: Any) -> None:
    """The XLOG_SEQ_LOG record of the page's tuple; stamps the page LSN."""
    from access import xlog
    from access.xloginsert import BlockRef
    from storage import bufpage

    tup = bytes(bufpage.page_get_item(page, 1))
    lsn = xlog.xlog_insert(xi.RM_SEQ_ID, XLOG_SEQ_LOG,
                           XL_SEQ_REC.pack(rnode.spc, rnode.db, rnode.rel) + tup,
                           [BlockRef(0, rnode, MAIN_FORKNUM, 0, page, will_init=True)],
                           xid=_xid())
    bufpage.page_set_lsn(page, lsn)


def _xid() -> int:
    from access import xact

    return xact.get_current_transaction_id_if_any()


# -- using -------------------------------------------------------------------------------------

class _Seq:
    """init_sequence + read_seq_tuple: the relation, its parameters, its buffer."""

    def __init__(self, seq: int | str) -> None:
        from utils import relcache, syscache

        oid = seq if isinstance(seq, int) else _resolve(seq)
        rel = relcache.try_relation_open(oid, relcache.RowExclusiveLock)
        if rel is None:
            raise PgError("42P01", f"relation with OID {oid} does not exist")
        if rel.relkind != "S":
            raise PgError("42809", f'"{rel.relname}" is not a sequence')
        found = syscache.search(cd.PG_SEQUENCE, "seqrelid", oid)
        if found is None:
            raise PgError("XX000", f"cache lookup failed for sequence {oid}")
        c = cd.PG_SEQUENCE.col
        row = found[1]
        self.rel = rel
        self.oid = oid
        self.increment = row[c["seqincrement"]]
        self.minv = row[c["seqmin"]]
        self.maxv = row[c["seqmax"]]
        self.cycle = row[c["seqcycle"]]


def _resolve(name: str) -> int:
    from catalog import namespace

    return namespace.regclass_in(name)


def _data_offset(page: Any) -> int:
    from access.heaptuple import T_HOFF
    from storage import bufpage

    off, _flags, _len = bufpage.item_id(page, 1)
    return off + page[off + T_HOFF]


def nextval(seq: int | str) -> int:
    """nextval_internal (see the module docstring for the WAL reserve)."""
    global _last_used
    from access import xact, xlog
    from storage import bufmgr, bufpage

    s = _Seq(seq)
    incby, maxv, minv = s.increment, s.maxv, s.minv
    buf = bufmgr.read_buffer(s.rel.smgr, 0)
    bufmgr.lock_buffer(buf, bufmgr.BUFFER_LOCK_EXCLUSIVE)
    try:
        page = bufmgr.buffer_get_page(buf)
        doff = _data_offset(page)
        last_value, log, is_called = _DATA.unpack_from(page, doff)
        nxt = result = last = last_value
        fetch = 1
        rescnt = 0
        if not is_called:
            rescnt += 1
            fetch -= 1
        logit = False
        if log < fetch or not is_called:
            fetch = log = fetch + SEQ_LOG_VALS
            logit = True
        elif bufpage.page_get_lsn(page) <= xlog.get_redo_rec_ptr():
            fetch = log = fetch + SEQ_LOG_VALS
            logit = True
        while fetch:
            if incby > 0:
                if (maxv >= 0 and nxt > maxv - incby) or (maxv < 0 and nxt + incby > maxv):
                    if rescnt > 0:
                        break
                    if not s.cycle:
                        raise PgError("2200H", "nextval: reached maximum value of sequence "
                                               f'"{s.rel.relname}" ({maxv})')
                    nxt = minv
                else:
                    nxt += incby
            else:
                if (minv < 0 and nxt < minv - incby) or (minv >= 0 and nxt + incby < minv):
                    if rescnt > 0:
                        break
                    if not s.cycle:
                        raise PgError("2200H", "nextval: reached minimum value of sequence "
                                               f'"{s.rel.relname}" ({minv})')
                    nxt = maxv
                else:
                    nxt += incby
            fetch -= 1
            if rescnt < 1:
                log -= 1
                rescnt += 1
                last = nxt
                if rescnt == 1:
                    result = nxt
        log -= fetch
        if logit and s.rel.is_permanent:
            # The xid makes the commit record flush this WAL (a nextval in a
            # read-only transaction must not be forgotten after a crash).
            xact.get_current_transaction_id()
            _DATA.pack_into(page, doff, nxt, 0, True)
            bufmgr.mark_buffer_dirty(buf)
            _log(s.rel.rnode, page)
        _DATA.pack_into(page, doff, last, log, True)
        bufmgr.mark_buffer_dirty(buf)
    finally:
        bufmgr.unlock_release_buffer(buf)
    _last_values[s.oid] = result
    _last_used = s.oid
    return result


def currval(seq: int | str) -> int:
    s = _Seq(seq)
    value = _last_values.get(s.oid)
    if value is None:
        raise PgError("55000", f'currval of sequence "{s.rel.relname}" is not yet defined in '
                               "this session")
    return value


def lastval() -> int:
    if _last_used is None or _last_used not in _last_values:
        raise PgError("55000", "lastval is not yet defined in this session")
    from utils import syscache

    if syscache.class_row(_last_used) is None:
        raise PgError("55000", "lastval is not yet defined in this session")
    return _last_values[_last_used]


def setval(seq: int | str, value: int, is_called: bool = True) -> int:
    """do_setval: set the sequence's state (WAL-logged); returns ``value``."""
    global _last_used
    from access import xact
    from storage import bufmgr

    s = _Seq(seq)
    if value < s.minv or value > s.maxv:
        raise PgError("22003", f"setval: value {value} is out of bounds for sequence "
                               f'"{s.rel.relname}" ({s.minv}..{s.maxv})')
    if is_called:
        _last_values[s.oid] = value
        _last_used = s.oid
    buf = bufmgr.read_buffer(s.rel.smgr, 0)
    bufmgr.lock_buffer(buf, bufmgr.BUFFER_LOCK_EXCLUSIVE)
    try:
        page = bufmgr.buffer_get_page(buf)
        _DATA.pack_into(page, _data_offset(page), value, 0, is_called)
        bufmgr.mark_buffer_dirty(buf)
        if s.rel.is_permanent:
            xact.get_current_transaction_id()
            _log(s.rel.rnode, page)
    finally:
        bufmgr.unlock_release_buffer(buf)
    return value


def read_state(seq: int | str) -> tuple[int, int, bool]:
    """(last_value, log_cnt, is_called) as SELECT * FROM the sequence shows them."""
    from storage import bufmgr

    s = _Seq(seq)
    buf = bufmgr.read_buffer(s.rel.smgr, 0)
    bufmgr.lock_buffer(buf, bufmgr.BUFFER_LOCK_SHARE)
    try:
        page = bufmgr.buffer_get_page(buf)
        return _DATA.unpack_from(page, _data_offset(page))
    finally:
        bufmgr.unlock_release_buffer(buf)


# -- redo --------------------------------------------------------------------------------------

def seq_redo(record) -> None:
    """seq_redo: rebuild the page from the logged tuple."""
    from access.xlogrecovery import xlog_read_buffer_for_redo
    from storage import bufmgr, bufpage

    data = bytes(record.main_data)
    tup = data[XL_SEQ_REC.size:]
    # The record carries the whole page's content: rebuild it whatever the page
    # holds (XLogInitBufferForRedo).
    _result, buf = xlog_read_buffer_for_redo(record, 0)
    if buf == bufmgr.InvalidBuffer:
        return
    try:
        page = bufmgr.buffer_get_page(buf)
        _init_page(page, tup)
        bufpage.page_set_lsn(page, record.end_lsn)
        bufmgr.mark_buffer_dirty(buf)
    finally:
        bufmgr.unlock_release_buffer(buf)


def _register() -> None:
    from access import xact
    from access.xlogrecovery import register_redo

    register_redo(xi.RM_SEQ_ID, seq_redo)
    xact.register_xact_callback(_at_eoxact)


_register()
