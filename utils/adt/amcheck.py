"""amcheck's SQL functions — mirrors contrib/amcheck (PostgreSQL 15:
verify_heapam.c, verify_nbtree.c), which pg_amcheck and ``tusk_ctl verify``
call on a running server.

- ``verify_heapam(relation regclass [, on_error_stop boolean])``: the heap
  checks of access/heapverify.py on every page, each copied out of its shared
  buffer under a share content lock while the relation holds AccessShareLock;
  returns the problems.
- ``bt_index_check(index regclass [, heapallindexed boolean])``: the B-tree
  checks that hold while other sessions insert (access/nbtree/nbtverify.py
  without parent_check), under AccessShareLock. With heapallindexed, every
  heap tuple visible to a snapshot taken before the index is read must have an
  entry with its key (what amcheck proves with a Bloom filter, proved here with
  exact sets), and every entry must point at a line pointer in use.
- ``bt_index_parent_check(index regclass [, heapallindexed boolean])``: all the
  structure checks (parent/child, sibling links, reachability), under
  ShareLock on the table and the index, as amcheck.

Corruption raises an ERROR as amcheck does: SQLSTATE XX002 (index_corrupted)
when the index is at fault, XX001 (data_corrupted) when only heap tuples lack
entries. The message is the first problem; DETAIL lists them all, one a line,
as ``relation "NAME", block B, offset O: what``.

Where tusk differs:
- verify_heapam returns text[] (one ``block B, offset O[, attribute A]: what``
  element a problem) rather than SETOF (blkno, offnum, attnum, msg): tusk has
  no set-returning functions in FROM; its skip, startblock, endblock and
  check_toast arguments are absent (no visibility map, no TOAST).
- bt_index_check with heapallindexed takes ShareUpdateExclusiveLock on the
  table (AccessShareLock in amcheck): it keeps VACUUM from removing entries and
  freeing their line pointers while the check runs, which makes the
  entry-to-line-pointer check sound without blocking writers.
- All problems are reported, not only the first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from access import heapverify as hv
from catalog import catalog_defs as cd
from catalog import pg_type as t
from storage.bufpage import InvalidPageError
from utils.adt import functions as fn
from utils.elog import PgError


def _require_superuser(function: str) -> None:
    """EXECUTE on amcheck's functions is revoked from PUBLIC."""
    from utils import session as sess

    settings = sess.settings
    if settings is not None and not settings.is_superuser:
        raise PgError("42501", f"permission denied for function {function}")


def _interrupts() -> None:
    from storage.lmgr import lock

    lock.check_for_interrupts_hook()


def _xid_status(xid: int) -> int:
    """A normal xid's status as the checks need it (running ones first, as
    HeapTupleSatisfies* ask)."""
    from access import procarray, transam

    if procarray.transaction_id_is_in_progress(xid):
        return hv.XID_IN_PROGRESS
    return hv.XID_COMMITTED if transam.transaction_id_did_commit(xid) else hv.XID_ABORTED


def _read_page(rel, blkno: int) -> bytes:
    """A private copy of one block, taken under the buffer's share lock."""
    from storage import bufmgr

    buf = bufmgr.read_buffer(rel.smgr, blkno)
    bufmgr.lock_buffer(buf, bufmgr.BUFFER_LOCK_SHARE)
    try:
        return bytes(bufmgr.buffer_get_page(buf))
    finally:
        bufmgr.unlock_release_buffer(buf)


def _heap_context(rel, snapshot: Any = None) -> hv.HeapCheckContext:
    from access import transam, xact
    from utils import syscache

    found = syscache.class_row(rel.oid)
    relfrozenxid = int(found[1][cd.PG_CLASS.col["relfrozenxid"]]) if found else 0
    return hv.HeapCheckContext(
        rel.relname, rel.desc.natts, transam.read_next_full_transaction_id(),
        transam.transaction_id_limits()["oldest_xid"], relfrozenxid, _xid_status,
        desc=rel.desc, snapshot=snapshot, current_xid=xact._st.xid,
        want_index=snapshot is not None)


def _scan_heap(rel, ctx: hv.HeapCheckContext,
               each: Callable[[hv.HeapPageReport], bool]) -> None:
    """Check every page of the heap; ``each`` gets the reports (False: stop)."""
    from access import transam
    from access.heapam import heap_nblocks

    for blkno in range(heap_nblocks(rel)):
        _interrupts()
        try:
            page = _read_page(rel, blkno)
        except InvalidPageError as exc:
            rep = hv.HeapPageReport(blkno, usable=False)
            rep.problems.append(hv.Corruption(blkno, None, None, exc.message))
        else:
            # Any xid on the copied page was assigned before now.
            ctx.next_fxid = transam.read_next_full_transaction_id()
            rep = hv.check_heap_page(ctx, blkno, page)
        if not each(rep):
            return


def _open(oid: int, lockmode: int, kinds: str, what: str):
    from utils import relcache

    rel = relcache.relation_open(oid, lockmode)
    if rel.relkind not in kinds:
        relcache.relation_close(rel, lockmode)
        raise PgError("42809", f'"{rel.relname}" is not {what}')
    return rel


# -- verify_heapam --------------------------------------------------------------------------------

def verify_heapam(relid: int, on_error_stop: bool = False) -> list[str]:
    from utils import relcache

    _require_superuser("verify_heapam")
    rel = _open(relid, relcache.AccessShareLock, "r", "a table")
    out: list[str] = []

    def each(rep: hv.HeapPageReport) -> bool:
        out.extend(str(p) for p in rep.problems)
        return not (on_error_stop and out)

    _scan_heap(rel, _heap_context(rel), each)
    return out


# -- bt_index_check, bt_index_parent_check ------------------------------------------------------

def _index_heap_oid(index_oid: int) -> int:
    from utils import syscache

    found = syscache.search(cd.PG_INDEX, "indexrelid", index_oid)
    if found is None:
        raise PgError("42809", f"relation with OID {index_oid} is not an index")
    return int(found[1][cd.PG_INDEX.col["indrelid"]])


def check_index(index_oid: int, heapallindexed: bool, parent_check: bool
                ) -> tuple[list[hv.Corruption], list[hv.Corruption], str, str]:
    """Run the checks: (index problems, heap problems, index name, table name)."""
    from access.nbtree.nbtutils import get_cache
    from access.nbtree.nbtverify import LeafItem, bt_check, bt_heap_crosscheck
    from utils import relcache, snapmgr

    # The table first, as amcheck (and every DDL) locks it before its indexes.
    heap_mode = relcache.ShareLock if parent_check else (
        relcache.ShareUpdateExclusiveLock if heapallindexed else relcache.AccessShareLock)
    heap = _open(_index_heap_oid(index_oid), heap_mode, "r", "a table")
    index = _open(index_oid, relcache.ShareLock if parent_check else relcache.AccessShareLock,
                  "i", "an index")
    assert index.index is not None
    # Taken before the index is read: every tuple it sees had its entries
    # inserted already, and our xmin keeps them from being vacuumed away.
    snapshot = snapmgr.get_latest_snapshot() if heapallindexed else None
    items: list[LeafItem] | None = [] if heapallindexed else None
    index_side = bt_check(index, parent_check=parent_check, leaf_items=items)
    heap_side: list[hv.Corruption] = []
    if heapallindexed and items is not None:
        hmap = hv.HeapMap()
        _scan_heap(heap, _heap_context(heap, snapshot), lambda rep: hmap.add(rep) or True)
        from access.heapam import heap_nblocks

        hmap.nblocks = max(hmap.nblocks, heap_nblocks(heap))
        more, heap_side = bt_heap_crosscheck(get_cache(index), index.index.indkey, items, hmap,
                                             index.relname)
        index_side += more
    return index_side, heap_side, index.relname, heap.relname


def _raise(index_side: list[hv.Corruption], heap_side: list[hv.Corruption], index_name: str,
           heap_name: str) -> None:
    lines = [f'relation "{index_name}", {p}' if p.where() else f'relation "{index_name}": {p}'
             for p in index_side]
    lines += [f'relation "{heap_name}", {p}' for p in heap_side]
    if lines:
        raise PgError("XX002" if index_side else "XX001", lines[0], detail="\n".join(lines))


def bt_index_check(index_oid: int, heapallindexed: bool = False) -> str:
    _require_superuser("bt_index_check")
    _raise(*check_index(index_oid, heapallindexed, parent_check=False))
    return ""


def bt_index_parent_check(index_oid: int, heapallindexed: bool = False) -> str:
    _require_superuser("bt_index_parent_check")
    _raise(*check_index(index_oid, heapallindexed, parent_check=True))
    return ""


_F = fn.Function
_R, _B = t.REGCLASSOID, t.BOOLOID
for _name, _impl in (("bt_index_check", bt_index_check),
                     ("bt_index_parent_check", bt_index_parent_check)):
    fn.register(_name, _F((_R,), t.VOIDOID, _impl, volatile=True))
    fn.register(_name, _F((_R, _B), t.VOIDOID, _impl, volatile=True))
fn.register("verify_heapam", _F((_R,), t.TEXTARRAYOID, verify_heapam, volatile=True))
fn.register("verify_heapam", _F((_R, _B), t.TEXTARRAYOID, verify_heapam, volatile=True))
