"""The storage manager switch — mirrors src/backend/storage/smgr/smgr.c.

``smgr_open`` returns the process's SMgrRelation for a RelFileNode (cached in a
dict, as SMgrRelationHash), and the smgr_* calls act on it. PostgreSQL dispatches
through a table with one entry (md); here the calls go to md directly, and the
hot ones (``smgr_read``, ``smgr_write``) *are* md's functions, to save a Python
call per block.

Typical use (the buffer manager)::

    reln = smgr_open(RelFileNode(DEFAULTTABLESPACE_OID, 5, 16384))
    if not smgr_exists(reln, MAIN_FORKNUM):
        smgr_create(reln, MAIN_FORKNUM)
    smgr_extend(reln, MAIN_FORKNUM, smgr_nblocks(reln, MAIN_FORKNUM), page)
    page = smgr_read(reln, MAIN_FORKNUM, 0)            # or smgr_read(..., 0, buf)
    smgr_write(reln, MAIN_FORKNUM, 0, page)            # registers the segment for fsync

Differences: no relcache owner pointers, no shared-invalidation messages (the
caller sends them); buffer dropping on truncate/unlink goes through hooks the
buffer manager installs (``drop_rel_buffers_hook``, ``drop_rel_all_buffers_hook``)
so that this module does not import it.
"""

from __future__ import annotations

from collections.abc import Callable

from storage import md
from storage.fd import File
from storage.relfilenode import (
    ALL_FORKS,
    MAX_FORKNUM,
    InvalidBlockNumber,
    RelFileNode,
    relpath,
)


class SMgrRelation:
    """SMgrRelationData: one relation's open state in this process."""

    __slots__ = ("rnode", "backend", "targblock", "cached_nblocks", "md_seg_fds", "pgstat_info")

    def __init__(self, rnode: RelFileNode, backend: int | None = None) -> None:
        self.rnode = rnode
        self.backend = backend            # None: permanent; else temp rel of that backend
        self.targblock = InvalidBlockNumber  # current insertion target block
        self.cached_nblocks = [InvalidBlockNumber] * (MAX_FORKNUM + 1)
        self.md_seg_fds: list[list[File]] = [[] for _ in range(MAX_FORKNUM + 1)]
        # The relation's pending statistics (utils.pgstat_relation.TableStatus):
        # ReadBuffer counts blocks fetched and read against it.
        self.pgstat_info = None

    def __repr__(self) -> str:
        return f"<SMgrRelation {relpath(self.rnode, 0, self.backend)}>"

    @property
    def is_temp(self) -> bool:
        """SmgrIsTemp: a backend-local relation (never fsynced)."""
        return self.backend is not None


_relations: dict[tuple[RelFileNode, int | None], SMgrRelation] = {}

# Installed by the buffer manager: DropRelFileNodeBuffers(reln, forknum, first_del_block)
# and DropRelFileNodesAllBuffers(reln).
drop_rel_buffers_hook: Callable[[SMgrRelation, int, int], None] | None = None
drop_rel_all_buffers_hook: Callable[[SMgrRelation], None] | None = None


def smgr_open(rnode: RelFileNode, backend: int | None = None) -> SMgrRelation:
    """smgropen: this process's SMgrRelation for the relation (files open lazily)."""
    key = (rnode, backend)
    reln = _relations.get(key)
    if reln is None:
        reln = _relations[key] = SMgrRelation(rnode, backend)
    return reln


def smgr_release(reln: SMgrRelation) -> None:
    """smgrrelease: close the files but keep the object (it may be in use)."""
    for forknum in ALL_FORKS:
        md.md_close(reln, forknum)
        reln.cached_nblocks[forknum] = InvalidBlockNumber


def smgr_close(reln: SMgrRelation) -> None:
    """smgrclose: close the files and forget the relation."""
    smgr_release(reln)
    _relations.pop((reln.rnode, reln.backend), None)


def smgr_close_node(rnode: RelFileNode, backend: int | None = None) -> None:
    """smgrclosenode: close the relation if this process has it open."""
    reln = _relations.get((rnode, backend))
    if reln is not None:
        smgr_close(reln)


def smgr_release_all() -> None:
    """smgrreleaseall: close every file (ProcessBarrierSmgrRelease after a DROP)."""
    for reln in list(_relations.values()):
        smgr_release(reln)


def smgr_close_all() -> None:
    """smgrcloseall: forget every relation (the checkpointer after a checkpoint)."""
    for reln in list(_relations.values()):
        smgr_close(reln)


def smgr_exists(reln: SMgrRelation, forknum: int) -> bool:
    return md.md_exists(reln, forknum)


def smgr_create(reln: SMgrRelation, forknum: int, is_redo: bool = False) -> None:
    md.md_create(reln, forknum, is_redo)


def smgr_unlink(reln: SMgrRelation, forknum: int | None = None, is_redo: bool = False) -> None:
    """smgrdounlinkall for one relation (all forks by default): drop its buffers,
    close it, remove its files (the main fork's first segment after the next
    checkpoint) and forget pending fsyncs of them."""
    if drop_rel_all_buffers_hook is not None and forknum is None:
        drop_rel_all_buffers_hook(reln)
    smgr_release(reln)
    md.md_unlink(reln.rnode, reln.backend, forknum, is_redo)


# Hot paths: md's functions themselves (see the module docstring).
smgr_read = md.md_read
smgr_write = md.md_write


def smgr_extend(reln: SMgrRelation, forknum: int, blocknum: int,
                data: bytes | bytearray | memoryview | None = None,
                skip_fsync: bool = False) -> None:
    """smgrextend: add block ``blocknum`` (zeroes if no data); keeps the cached size."""
    md.md_extend(reln, forknum, blocknum, data, skip_fsync)
    cached = reln.cached_nblocks
    cached[forknum] = blocknum + 1 if cached[forknum] == blocknum else InvalidBlockNumber


def smgr_prefetch(reln: SMgrRelation, forknum: int, blocknum: int) -> bool:
    return md.md_prefetch(reln, forknum, blocknum)


def smgr_nblocks_cached(reln: SMgrRelation, forknum: int) -> int:
    """smgrnblocks_cached: the cached size, trusted only in recovery (no other
    process can extend the relation then); else InvalidBlockNumber."""
    if md.in_recovery:
        return reln.cached_nblocks[forknum]
    return InvalidBlockNumber


def smgr_nblocks(reln: SMgrRelation, forknum: int) -> int:
    """smgrnblocks: the fork's size in blocks."""
    if md.in_recovery:
        cached = reln.cached_nblocks[forknum]
        if cached != InvalidBlockNumber:
            return cached
    n = md.md_nblocks(reln, forknum)
    reln.cached_nblocks[forknum] = n
    return n


def smgr_truncate(reln: SMgrRelation, forknum: int, nblocks: int) -> None:
    """smgrtruncate: drop buffers past the new end, then truncate the files."""
    if drop_rel_buffers_hook is not None:
        drop_rel_buffers_hook(reln, forknum, nblocks)
    # Invalidate first: if the truncate fails part way the size is unknown.
    reln.cached_nblocks[forknum] = InvalidBlockNumber
    md.md_truncate(reln, forknum, nblocks)
    reln.cached_nblocks[forknum] = nblocks


def smgr_immedsync(reln: SMgrRelation, forknum: int) -> None:
    """smgrimmedsync: fsync the fork now (after writes with skip_fsync)."""
    md.md_immedsync(reln, forknum)
