"""Relation descriptors — mirrors src/include/utils/rel.h (RelationData).

A Relation is one backend's cached description of a table or index: identity
(OID, name, namespace), physical file (RelFileNode), row type (TupleDesc), and
what the access methods need (fillfactor, the table's indexes, an index's key
columns). The relation cache (utils/relcache.py) builds and invalidates them;
access methods (access/heapam.py, access/nbtree/) only read them, apart from the
per-backend insertion hints (``target_block``), which are a cache like
PostgreSQL's smgr_targblock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from access.tupdesc import TupleDesc
from storage import smgr
from storage.relfilenode import RelFileNode
from utils import pgstat_relation

# pg_class.relkind
RELKIND_RELATION = "r"
RELKIND_INDEX = "i"
RELKIND_SEQUENCE = "S"
RELKIND_VIEW = "v"
RELKIND_PARTITIONED_TABLE = "p"
# pg_class.relpersistence
RELPERSISTENCE_PERMANENT = "p"
RELPERSISTENCE_UNLOGGED = "u"
RELPERSISTENCE_TEMP = "t"

HEAP_DEFAULT_FILLFACTOR = 100
BTREE_DEFAULT_FILLFACTOR = 90

InvalidBlockNumber = 0xFFFFFFFF


@dataclass(eq=False)
class IndexInfo:
    """The pg_index facts an index's users need (IndexInfo + rd_index)."""

    indrelid: int                 # the table
    indkey: tuple[int, ...]       # table attnums of the key columns, in key order
    indisunique: bool = False
    indisprimary: bool = False


@dataclass(eq=False)
class Relation:
    oid: int
    relname: str
    relnamespace: int
    relkind: str
    rnode: RelFileNode
    desc: TupleDesc
    relpersistence: str = RELPERSISTENCE_PERMANENT
    relisshared: bool = False
    fillfactor: int = HEAP_DEFAULT_FILLFACTOR
    # A table: OIDs of its indexes (RelationGetIndexList) and the set of table
    # attnums any index uses (HOT updates are allowed only if none of them changes).
    index_oids: tuple[int, ...] = ()
    indexed_attnums: frozenset[int] = frozenset()
    # An index: its pg_index row.
    index: IndexInfo | None = None
    # Per-backend caches, never shared.
    target_block: int = InvalidBlockNumber
    _smgr: smgr.SMgrRelation | None = field(default=None, repr=False)
    am_cache: Any = field(default=None, repr=False)  # an access method's private cache
    # This backend's pending statistics (utils.pgstat_relation.TableStatus), set
    # on first use by pgstat_init_relation.
    pgstat_info: Any = field(default=None, repr=False)

    @property
    def smgr(self) -> smgr.SMgrRelation:
        """RelationGetSmgr: the storage manager handle, opened on first use."""
        s = self._smgr
        if s is None or s.rnode != self.rnode:
            s = self._smgr = smgr.smgr_open(self.rnode)
            # Buffer reads count against this relation (pgstat_init_relation hangs
            # its statistics entry on the SMgrRelation).
            s.pgstat_info = self.pgstat_info or pgstat_relation.pgstat_init_relation(self)
        return s

    @property
    def is_permanent(self) -> bool:
        return self.relpersistence == RELPERSISTENCE_PERMANENT

    def set_new_relfilenode(self, rnode: RelFileNode) -> None:
        """After TRUNCATE or a rewrite: the relation lives in new files."""
        self.rnode = rnode
        self._smgr = None
        self.target_block = InvalidBlockNumber
        self.am_cache = None
