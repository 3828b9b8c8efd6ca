"""pg_buffercache — mirrors pg_buffercache_pages of PostgreSQL 15's
contrib/pg_buffercache/pg_buffercache_pages.c and the extension's view.

One row per shared buffer (bufferid 1..shared_buffers) from
storage.bufmgr.buffer_cache_rows, which reads the buffer headers without
locking them, as PostgreSQL 15 does (each header is read as one state word plus
its tag, so a row is consistent with itself, not with the other rows). A buffer
that holds no valid page (BM_VALID and BM_TAG_VALID not both set) shows only its
bufferid, the other columns NULL.

Where tusk differs: the view exists without CREATE EXTENSION pg_buffercache, in
pg_catalog (so an unqualified name finds it, as PostgreSQL finds it in public
once the extension is created).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from catalog import pg_type as t
from catalog.system_views import SystemView, register
from shmem.buf_internals import BM_TAG_VALID, BM_VALID

BUFFERCACHE_COLUMNS = (
    ("bufferid", t.INT4OID), ("relfilenode", t.OIDOID), ("reltablespace", t.OIDOID),
    ("reldatabase", t.OIDOID), ("relforknumber", t.INT2OID), ("relblocknumber", t.INT8OID),
    ("isdirty", t.BOOLOID), ("usagecount", t.INT2OID), ("pinning_backends", t.INT4OID),
)
_NULLS = (None,) * (len(BUFFERCACHE_COLUMNS) - 1)
_VALID = BM_VALID | BM_TAG_VALID


def buffercache_rows() -> Iterator[tuple[Any, ...]]:
    from storage import bufmgr

    if bufmgr._pool is None:  # not attached to the buffer pool (a tool, a test)
        return
    for r in bufmgr.buffer_cache_rows(bufmgr.pool().descs):
        if r.flags & _VALID == _VALID:
            yield (r.bufferid, r.relfilenode, r.reltablespace, r.reldatabase, r.relforknumber,
                   r.relblocknumber, r.isdirty, r.usagecount, r.pinning_backends)
        else:
            yield (r.bufferid, *_NULLS)


register(SystemView("pg_buffercache", BUFFERCACHE_COLUMNS, buffercache_rows))
