"""The B-tree access method's entry points — mirrors
src/backend/access/nbtree/nbtree.c (PostgreSQL 15): VACUUM's bulk deletion
(btbulkdelete, btvacuumscan, btvacuumpage). The other entry points live with
the code they drive (bt_build in nbtsort.py, bt_build_empty in nbtpage.py,
bt_insert in nbtinsert.py, bt_begin_scan in nbtsearch.py) and are re-exported by
the package.

btvacuumscan reads the index in physical block order, so that it can run while
others insert: a page split moves items only to a newly allocated block, which
is past the scan position (tusk never recycles pages), and the scan re-reads the
relation size until it stops growing. On each leaf page, under its exclusive
lock, the callback decides which heap TIDs are dead; those items are removed
and the page WAL-logged with XLOG_BTREE_VACUUM.

Where tusk differs: no cleanup lock (scans hold no pins between calls, so there
is no scan "in flight" on a page to wait for), no page deletion, no
btvacuumcleanup statistics or metapage cleanup record.
"""

from __future__ import annotations

from collections.abc import Callable

from access.nbtree.nbtdefs import (
    BT_READ,
    BT_SPECIAL,
    BT_WRITE,
    BTP_IGNORE,
    BTP_LEAF,
    BTREE_METAPAGE,
    ITUP,
    OPAQUE,
    P_FIRSTKEY,
    P_HIKEY,
    P_NONE,
)
from access.nbtree.nbtpage import (
    bt_delitems_vacuum,
    bt_lockbuf,
    bt_relbuf,
    bt_unlockbuf,
)
from access.nbtree.nbtsearch import page_max_offset
from access.nbtree.nbtutils import get_cache
from storage import bufpage, smgr
from storage.bufmgr import buffer_get_page, lock_buffer, read_buffer
from storage.relfilenode import MAIN_FORKNUM

_ITEMID_OFF = 20


def bt_bulk_delete(index_rel, callback: Callable[[tuple[int, int]], bool]) -> int:
    """btbulkdelete: remove every index entry whose heap TID ``callback`` says is
    dead; returns how many were removed."""
    c = get_cache(index_rel)
    reln = index_rel.smgr
    ndeleted = 0
    scanblkno = BTREE_METAPAGE + 1
    while True:
        num_pages = smgr.smgr_nblocks(reln, MAIN_FORKNUM)
        if scanblkno >= num_pages:
            break
        for blkno in range(scanblkno, num_pages):
            ndeleted += _vacuum_page(index_rel, c, blkno, callback)
        scanblkno = num_pages
    return ndeleted


def _vacuum_page(rel, c, blkno: int, callback) -> int:
    """btvacuumpage for one block."""
    buf = read_buffer(rel.smgr, blkno)
    lock_buffer(buf, BT_READ)
    page = buffer_get_page(buf)
    if bufpage.page_is_new(page) or bufpage.page_get_special_pointer(page) != BT_SPECIAL:
        bt_relbuf(buf)
        return 0
    flags = OPAQUE.unpack_from(page, BT_SPECIAL)[3]
    if not flags & BTP_LEAF or flags & BTP_IGNORE:
        bt_relbuf(buf)
        return 0
    bt_unlockbuf(buf)
    bt_lockbuf(buf, BT_WRITE)
    _, nxt, _, flags, _ = OPAQUE.unpack_from(page, BT_SPECIAL)
    deletable = []
    if flags & BTP_LEAF and not flags & BTP_IGNORE:
        minoff = P_HIKEY if nxt == P_NONE else P_FIRSTKEY
        maxoff = page_max_offset(page)
        import struct

        lp = struct.Struct("<I")
        for off in range(minoff, maxoff + 1):
            o = lp.unpack_from(page, _ITEMID_OFF + 4 * off)[0] & 0x7FFF
            hi, lo, pos, _ = ITUP.unpack_from(page, o)
            if callback(((hi << 16) | lo, pos)):
                deletable.append(off)
        if deletable:
            bt_delitems_vacuum(rel, c, buf, deletable)
    bt_relbuf(buf)
    return len(deletable)
