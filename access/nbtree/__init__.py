"""B-tree indexes — mirrors src/backend/access/nbtree/ of PostgreSQL 15 (see README
there: Lehman & Yao with right links and high keys, heap TID as the last key
column, suffix truncation). Pages are PostgreSQL 15's, byte for byte; WAL
records are RM_BTREE_ID's (and XLOG_FPI for builds).

The access method's interface:

    bt_build(heap_rel, index_rel)                     CREATE INDEX: sort + bottom-up load
    bt_build_empty(index_rel)                         the metapage of an empty index
    bt_insert(index_rel, values, heap_tid, heap_rel, check_unique)
    bt_begin_scan(index_rel, scankeys, backward=False) -> BTScan (bt_getnext(), iterable)
    bt_bulk_delete(index_rel, callback) -> number of entries removed (VACUUM)
    bt_verify(index_rel) -> list of problems (structure checker, nbtverify.py)
    bt_verify_file(path, desc) -> the same on an index file of a stopped cluster

Modules: nbtdefs (nbtree.h/nbtxlog.h layouts), nbtutils, nbtpage, nbtsearch,
nbtinsert, nbtsplitloc, nbtsort, nbtree (bulk delete), nbtxlog (redo, registered
at import), nbtverify.
"""

from access.nbtree import nbtxlog as _nbtxlog  # registers btree_redo
from access.nbtree.nbtinsert import bt_insert
from access.nbtree.nbtpage import bt_build_empty
from access.nbtree.nbtree import bt_bulk_delete
from access.nbtree.nbtsearch import BTScan, bt_begin_scan
from access.nbtree.nbtsort import IndexBuildResult, bt_build
from access.nbtree.nbtverify import bt_verify, bt_verify_file

__all__ = ["BTScan", "IndexBuildResult", "bt_begin_scan", "bt_build", "bt_build_empty",
           "bt_bulk_delete", "bt_insert", "bt_verify", "bt_verify_file"]

_ = _nbtxlog
