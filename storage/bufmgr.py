"""The shared buffer manager — mirrors src/backend/storage/buffer/bufmgr.c.

A Buffer is ``buf_id + 1`` (0 is InvalidBuffer), as in PostgreSQL. A process
pins a buffer before touching it and locks its content LWLock (share to read,
exclusive to change) while it looks at the page:

    buf = read_buffer(reln, blkno)          # pinned
    lock_buffer(buf, BUFFER_LOCK_SHARE)
    page = buffer_get_page(buf)             # memoryview into shared memory
    ...
    unlock_release_buffer(buf)

Pins are counted per process (PrivateRefCount): only a process's first pin
of a buffer touches the shared refcount. Reads and writes of a block are
serialised by BM_IO_IN_PROGRESS (start_buffer_io / terminate_buffer_io);
others wait on the buffer's I/O condition variable (wait event IPC/BufferIO).
BM_JUST_DIRTIED makes sure a change made while a write is in progress keeps
the buffer dirty; BM_IO_ERROR marks a failed write so the next flush retries
it. The WAL rule — WAL up to the page's LSN is flushed before the page is
written — is enforced in flush_buffer through ``xlog_flush_hook``, which the
WAL module installs.

The hit path
------------
PostgreSQL looks a tag up in the mapping table under the partition's
BufferMapping LWLock in share mode and pins the buffer before dropping it. An
LWLock acquire + release costs more in Python (about 1-2 µs) than all the rest
of a pin, so read_buffer first tries without it:

1. probe the mapping table with no lock (BufTable.hint): the answer is a
   candidate buffer, matched on the hash alone, possibly from a half-written
   or stale entry, or nothing;
2. take the candidate's header lock, compare its descriptor's tag with the
   one asked for, and check BM_TAG_VALID; if both hold, pin it (refcount + 1,
   usage count + 1) in the same hold of the header lock;
3. otherwise (no candidate, another tag, no valid tag) drop the header lock
   and do exactly what PostgreSQL does (_read_buffer_slow).

Why a pinned buffer that passed step 2 is the right one:

- Every change of a descriptor's tag happens under its header lock: BufferAlloc
  installs a new tag only while its own pin is the only one (refcount == 1,
  checked under that same hold), InvalidateBuffer clears the tag and
  BM_TAG_VALID only at refcount 0. So once step 2 has counted our pin, the tag
  cannot change until we unpin: the page is the one asked for for as long as
  we hold it.
- A buffer whose descriptor carries tag T with BM_TAG_VALID is *the* buffer
  for T: BufferAlloc inserts T into the table (refusing if T is already
  mapped) before it sets the descriptor's tag, and deletes a buffer's old tag
  from the table only after the descriptor has dropped it; InvalidateBuffer
  clears the descriptor before deleting the entry. Hence, whenever a
  descriptor says T, the table maps T to that buffer, and no two buffers can
  say T at once. The table only suggests where to look; the descriptor, read
  under its header lock, decides.
- A probe racing with inserts and deletes (backward shift) can miss an entry,
  find a moved one, or read a torn one: a miss or a wrong candidate goes to
  the slow path; a buffer number out of range is never used; a probe makes
  at most one pass over its partition.
- A buffer this process already pins needs no header lock: its tag cannot
  change while we pin it, so an unlocked comparison is enough.

Two different tags with the same 31-bit hash only cost the second one the
slow path (the probe stops at the first hash match). The stress test in
tests/unit/test_bufmgr.py (several processes reading and evicting the blocks
of two relations through a 16-buffer pool, every page carrying its own block
number) and the soak variant check this protocol; a tag comparison made
outside the header lock fails it within seconds.

Where we differ: header changes take the buffer's header-lock stripe (see
shmem/buf_internals.py) instead of a CAS loop; the hit path's lookup skips
the partition lock (above); there are no buffer access strategies (ring
buffers) yet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

from shmem import buf_table, freelist
from shmem.buf_internals import (
    BLCKSZ,
    BM_CHECKPOINT_NEEDED,
    BM_DIRTY,
    BM_IO_ERROR,
    BM_IO_IN_PROGRESS,
    BM_JUST_DIRTIED,
    BM_MAX_USAGE_COUNT,
    BM_PERMANENT,
    BM_TAG_VALID,
    BM_VALID,
    BUF_FLAG_MASK,
    BUF_REFCOUNT_MASK,
    BUF_USAGECOUNT_MASK,
    BUF_USAGECOUNT_ONE,
    DESC_SIZE,
    DESC_TAG,
    DESC_WORDS,
    MAIN_FORKNUM,
    W_STATE,
    BufferDescriptors,
    buffer_descriptors,
)
from shmem.buf_table import HASH_MASK, BufTable, buf_table_hash_code
from shmem.condition_variable import (
    WAIT_EVENT_BUFFER_IO,
    cv_broadcast,
    cv_cancel_sleep,
    cv_prepare_to_sleep,
    cv_sleep,
)
from shmem.lwlock import (
    LW_EXCLUSIVE,
    LW_SHARED,
    NUM_BUFFER_PARTITIONS,
    buffer_mapping_lock,
    lwlock_acquire,
    lwlock_conditional_acquire,
    lwlock_release,
)
from shmem.segment import ShmemSegment
from storage import bufpage, smgr
from storage.relfilenode import RelFileNode, relpath
from utils import elog, pgstat

InvalidBuffer = 0
P_NEW = 0xFFFFFFFF

BUFFER_LOCK_UNLOCK, BUFFER_LOCK_SHARE, BUFFER_LOCK_EXCLUSIVE = 0, 1, 2

# ReadBufferMode
RBM_NORMAL, RBM_ZERO_AND_LOCK, RBM_ZERO_ON_ERROR = 0, 1, 2

_MAX_USAGE = BM_MAX_USAGE_COUNT * BUF_USAGECOUNT_ONE
_DESC_TAG = DESC_TAG

# Called with a page LSN before a permanent page is written (XLogFlush).
xlog_flush_hook: Callable[[int], None] | None = None
# trace_probes (set by access.xlogcheckpoint's assign hook): a disabled probe
# costs one global test.
probes_enabled = False


class _Pool:
    """This process's handles on the shared buffer pool, with the hit path's
    objects bound directly (one attribute load each)."""

    __slots__ = ("nbuffers", "descs", "table", "strategy", "partition_locks",
                 "private_refcount", "checksums", "settings", "io_in_progress",
                 "io_for_input", "hdr_acquire", "hdr_release", "state_words", "desc_mem",
                 "content_locks", "table_words", "slot_mask", "hint")

    def __init__(self, seg: ShmemSegment, settings) -> None:
        n = settings.get("shared_buffers")
        self.nbuffers = n
        self.descs = buffer_descriptors(seg, n)
        self.table = BufTable(seg, n)
        self.strategy = freelist.Strategy(seg, self.descs)
        self.partition_locks = [buffer_mapping_lock(i) for i in range(NUM_BUFFER_PARTITIONS)]
        self.private_refcount = [0] * n
        self.checksums = bool(settings.get("data_checksums"))
        self.settings = settings
        self.io_in_progress = -1  # the buffer whose I/O this process runs (InProgressBuf)
        self.io_for_input = False
        # The hit path's bindings.
        self.hdr_acquire = self.descs.hdr_acquire
        self.hdr_release = self.descs.hdr_release
        self.state_words = self.descs.wu
        self.desc_mem = self.descs.region
        self.content_locks = self.descs.content_locks
        self.table_words = self.table.w
        self.slot_mask = self.table.slot_mask
        self.hint = self.table.hint


_pool: _Pool | None = None


def init_buffer_pool_access(seg: ShmemSegment, settings) -> None:
    """InitBufferPoolAccess: bind this process to the pool (after fork)."""
    global _pool
    _pool = _Pool(seg, settings)
    smgr.drop_rel_buffers_hook = drop_rel_file_node_buffers
    smgr.drop_rel_all_buffers_hook = drop_rel_file_nodes_all_buffers


def pool() -> _Pool:
    assert _pool is not None, "buffer pool not attached"
    return _pool


# -- pins --------------------------------------------------------------------------------

def _pin_buffer(p: _Pool, buf_id: int) -> int:
    """PinBuffer: returns the state word; the first pin bumps the usage count."""
    refs = p.private_refcount
    ref = refs[buf_id]
    i = buf_id * DESC_WORDS + W_STATE
    if ref == 0:
        wu = p.state_words
        p.hdr_acquire[buf_id]()
        state = wu[i] + 1
        if state & BUF_USAGECOUNT_MASK < _MAX_USAGE:
            state += BUF_USAGECOUNT_ONE
        wu[i] = state
        p.hdr_release[buf_id]()
    else:
        state = p.state_words[i]
    refs[buf_id] = ref + 1
    return state


def _pin_buffer_locked(p: _Pool, buf_id: int, state: int) -> None:
    """PinBuffer_Locked: pin a buffer whose header lock we hold, then unlock it."""
    p.descs.unlock_buf_hdr(buf_id, state + 1)
    p.private_refcount[buf_id] += 1


def _unpin_buffer(p: _Pool, buf_id: int) -> None:
    """UnpinBuffer."""
    refs = p.private_refcount
    ref = refs[buf_id] if buf_id >= 0 else 0
    if ref == 1:
        wu = p.state_words
        i = buf_id * DESC_WORDS + W_STATE
        p.hdr_acquire[buf_id]()  # may raise (a signal handler) before anything changed
        wu[i] -= 1
        p.hdr_release[buf_id]()
        refs[buf_id] = 0
    elif ref > 1:
        refs[buf_id] = ref - 1
    else:
        raise RuntimeError(f"buffer {buf_id + 1} is not pinned by this process")


def release_buffer(buffer: int) -> None:
    """ReleaseBuffer (the body of _unpin_buffer inlined: one call less on the hot path)."""
    p: _Pool = _pool  # type: ignore[assignment]  # attached (pool())
    buf_id = buffer - 1
    refs = p.private_refcount
    ref = refs[buf_id] if buf_id >= 0 else 0
    if ref == 1:
        wu = p.state_words
        i = buf_id * DESC_WORDS + W_STATE
        p.hdr_acquire[buf_id]()  # may raise (a signal handler) before anything changed
        wu[i] -= 1
        p.hdr_release[buf_id]()
        refs[buf_id] = 0
    elif ref > 1:
        refs[buf_id] = ref - 1
    else:
        raise RuntimeError(f"buffer {buffer} is not pinned by this process")


def incr_buffer_ref_count(buffer: int) -> None:
    """IncrBufferRefCount: one more pin by this process."""
    p = pool()
    if p.private_refcount[buffer - 1] == 0:
        raise RuntimeError("IncrBufferRefCount on a buffer not pinned")
    p.private_refcount[buffer - 1] += 1


# -- reading -------------------------------------------------------------------------------

def read_buffer(reln: smgr.SMgrRelation, blkno: int, fork: int = MAIN_FORKNUM,
                mode: int = RBM_NORMAL, _unpack_tag=_DESC_TAG.unpack_from) -> int:
    """ReadBuffer (and ReadBufferExtended with ``fork`` and ``mode``): a pinned
    buffer holding the block. This function is the hit path (see the module
    docstring); everything else is _read_buffer_slow."""
    p: _Pool = _pool  # type: ignore[assignment]  # attached (pool())
    ps = reln.pgstat_info  # pgstat_count_buffer_read (hits are fetches less reads)
    if ps is not None:
        ps.blocks_fetched += 1
    tag = reln.rnode + (fork, blkno)  # RelFileNode is a (spc, db, rel) tuple
    hashcode = hash(tag) & HASH_MASK  # buf_table_hash_code, inline
    # A candidate from the mapping table, read without the partition lock.
    words = p.table_words
    e = (hashcode & p.slot_mask) << 3
    buf_id = words[e + 1] if words[e] == hashcode else p.hint(hashcode)
    if 0 <= buf_id < p.nbuffers and blkno != P_NEW:
        refs = p.private_refcount
        ref = refs[buf_id]
        i = buf_id * DESC_WORDS + W_STATE
        if ref:
            # Pinned by us already, so its tag cannot change: no lock needed.
            if _unpack_tag(p.desc_mem, buf_id * DESC_SIZE) == tag:
                refs[buf_id] = ref + 1
                state = p.state_words[i]
                if state & BM_VALID:
                    pgstat.io.hit += 1
                    if mode == RBM_ZERO_AND_LOCK:
                        lock_buffer(buf_id + 1, BUFFER_LOCK_EXCLUSIVE)
                    return buf_id + 1
                return _read_buffer_io(p, reln, fork, blkno, mode, buf_id)
        else:
            # Verify the candidate and pin it under one hold of its header lock.
            p.hdr_acquire[buf_id]()
            if _unpack_tag(p.desc_mem, buf_id * DESC_SIZE) == tag:
                wu = p.state_words
                state = wu[i]
                if state & BM_TAG_VALID:
                    state += 1
                    if state & BUF_USAGECOUNT_MASK < _MAX_USAGE:
                        state += BUF_USAGECOUNT_ONE
                    wu[i] = state
                    p.hdr_release[buf_id]()
                    refs[buf_id] = 1
                    if state & BM_VALID:
                        pgstat.io.hit += 1
                        if mode == RBM_ZERO_AND_LOCK:
                            lock_buffer(buf_id + 1, BUFFER_LOCK_EXCLUSIVE)
                        return buf_id + 1
                    return _read_buffer_io(p, reln, fork, blkno, mode, buf_id)
            p.hdr_release[buf_id]()
    return _read_buffer_slow(p, reln, fork, blkno, mode)


def read_buffer_extended(reln: smgr.SMgrRelation, fork: int, blkno: int,
                         mode: int = RBM_NORMAL) -> int:
    """ReadBufferExtended: a pinned buffer holding the block (P_NEW: a new block).

    RBM_ZERO_AND_LOCK returns the buffer zero-filled and exclusively locked
    without reading it; RBM_ZERO_ON_ERROR zeroes a page that fails verification.
    """
    return read_buffer(reln, blkno, fork, mode)


def _read_buffer_slow(p: _Pool, reln: smgr.SMgrRelation, fork: int, blkno: int,
                      mode: int) -> int:
    """ReadBuffer_common after the lock-free probe found nothing usable: the
    PostgreSQL protocol (look up under the partition lock in share mode and pin,
    else BufferAlloc), then the read if the buffer is not valid."""
    is_extend = blkno == P_NEW
    if is_extend:
        blkno = smgr.smgr_nblocks(reln, fork)
    tag = reln.rnode + (fork, blkno)
    hashcode = hash(tag) & HASH_MASK
    part = p.partition_locks[hashcode % NUM_BUFFER_PARTITIONS]
    lwlock_acquire(part, LW_SHARED)
    buf_id = p.table.lookup(tag, hashcode)
    if buf_id >= 0:
        state = _pin_buffer(p, buf_id)
        lwlock_release(part)
        found = True
    else:
        lwlock_release(part)
        buf_id, found = _buffer_alloc(p, tag, hashcode, reln.backend is None)
        state = p.descs.state(buf_id)
    if found and state & BM_VALID and not is_extend:
        pgstat.io.hit += 1
        if mode == RBM_ZERO_AND_LOCK:
            lock_buffer(buf_id + 1, BUFFER_LOCK_EXCLUSIVE)
        return buf_id + 1
    return _read_buffer_io(p, reln, fork, blkno, mode, buf_id, is_extend)


def _read_buffer_io(p: _Pool, reln: smgr.SMgrRelation, fork: int, blkno: int, mode: int,
                    buf_id: int, is_extend: bool = False) -> int:
    """The pinned buffer is not valid (new, or a read failed or is in progress
    elsewhere): read the block (or zero or extend it) unless someone else has."""
    if not _start_buffer_io(p, buf_id, True):
        pgstat.io.hit += 1  # someone else read it meanwhile
        if mode == RBM_ZERO_AND_LOCK:
            lock_buffer(buf_id + 1, BUFFER_LOCK_EXCLUSIVE)
        return buf_id + 1
    ps = reln.pgstat_info  # not a hit: pg_statio's *_blks_read
    if ps is not None:
        ps.blocks_read += 1
    page = p.descs.pages[buf_id]
    try:
        if is_extend:
            page[:] = _ZERO_PAGE
            # New blocks are written out right away, as PostgreSQL 15's smgrextend.
            smgr.smgr_extend(reln, fork, blkno, page, skip_fsync=reln.backend is not None)
            pgstat.io.extended += 1
        elif mode == RBM_ZERO_AND_LOCK:
            page[:] = _ZERO_PAGE
        else:
            t0 = time.perf_counter_ns() if _track_io_timing() else 0
            smgr.smgr_read(reln, fork, blkno, page)
            if t0:
                pgstat.io.read_time_us += (time.perf_counter_ns() - t0) / 1000
            pgstat.io.read += 1
            if not bufpage.page_is_verified(
                    page, blkno, p.checksums,
                    ignore_checksum_failure=bool(_setting("ignore_checksum_failure", False))):
                path = relpath(reln.rnode, fork, reln.backend)
                if mode == RBM_ZERO_ON_ERROR or _setting("zero_damaged_pages", False):
                    elog.warning(bufpage.invalid_page_zeroing_message(blkno, path),
                                 sqlstate="XX001")
                    page[:] = _ZERO_PAGE
                else:
                    raise bufpage.InvalidPageError(blkno, path)
    except BaseException:
        _abort_buffer_io(p)
        _unpin_buffer(p, buf_id)
        raise
    if mode == RBM_ZERO_AND_LOCK:
        # Lock before BM_VALID is set so nobody sees the zeroed page unlocked.
        lock_buffer(buf_id + 1, BUFFER_LOCK_EXCLUSIVE)
    _terminate_buffer_io(p, buf_id, False, BM_VALID)
    return buf_id + 1


_ZERO_PAGE = bytes(BLCKSZ)


def _setting(name: str, default: object) -> object:
    try:
        return _pool.settings.get(name)  # type: ignore[union-attr]
    except Exception:
        return default


def _track_io_timing() -> bool:
    return bool(_setting("track_io_timing", False))


def _buffer_alloc(p: _Pool, tag: tuple, hashcode: int, permanent: bool) -> tuple[int, bool]:
    """BufferAlloc: find or make a buffer for ``tag``; returns (buf_id, found), pinned."""
    descs, table, strategy = p.descs, p.table, p.strategy
    new_part = p.partition_locks[hashcode % NUM_BUFFER_PARTITIONS]
    while True:
        buf_id, state = strategy.get_buffer()  # header locked, refcount 0
        pgstat.io.alloc += 1
        _pin_buffer_locked(p, buf_id, state)
        if state & BM_DIRTY:
            # Write the victim out first; skip it if someone holds its content lock.
            content = descs.content_locks[buf_id]
            if not lwlock_conditional_acquire(content, LW_SHARED):
                _unpin_buffer(p, buf_id)
                continue
            if probes_enabled:  # PostgreSQL passes the block being read, not the victim's
                _trace_probe("buffer__write__dirty__start", tag)
            try:
                flush_buffer(buf_id)
            finally:
                lwlock_release(content)
            if probes_enabled:
                _trace_probe("buffer__write__dirty__done", tag)
        old_valid = bool(state & BM_TAG_VALID)
        old_tag = descs.tag(buf_id) if old_valid else None
        if old_valid:
            old_hash = buf_table_hash_code(old_tag)  # type: ignore[arg-type]
            old_part = p.partition_locks[old_hash % NUM_BUFFER_PARTITIONS]
            # Lock both partitions in a fixed order to avoid deadlocks.
            if old_part.lock_id < new_part.lock_id:
                lwlock_acquire(old_part, LW_EXCLUSIVE)
                lwlock_acquire(new_part, LW_EXCLUSIVE)
            elif old_part.lock_id > new_part.lock_id:
                lwlock_acquire(new_part, LW_EXCLUSIVE)
                lwlock_acquire(old_part, LW_EXCLUSIVE)
            else:
                lwlock_acquire(new_part, LW_EXCLUSIVE)
        else:
            old_part = None
            lwlock_acquire(new_part, LW_EXCLUSIVE)
        existing = table.insert(tag, hashcode, buf_id)
        if existing >= 0:
            # Someone else loaded the block meanwhile: use theirs.
            _unpin_buffer(p, buf_id)
            if old_part is not None and old_part is not new_part:
                lwlock_release(old_part)
            state = _pin_buffer(p, existing)
            lwlock_release(new_part)
            return existing, True
        state = descs.lock_buf_hdr(buf_id)
        if state & BUF_REFCOUNT_MASK == 1 and not state & BM_DIRTY:
            break
        # Somebody pinned or dirtied the victim meanwhile: give it up, try again.
        descs.unlock_buf_hdr(buf_id, state)
        table.delete(tag, hashcode)
        if old_part is not None and old_part is not new_part:
            lwlock_release(old_part)
        lwlock_release(new_part)
        _unpin_buffer(p, buf_id)
    descs.set_tag(buf_id, tag)
    state &= ~(BUF_FLAG_MASK | BUF_USAGECOUNT_MASK)
    state |= BM_TAG_VALID | BUF_USAGECOUNT_ONE | (BM_PERMANENT if permanent else 0)
    descs.unlock_buf_hdr(buf_id, state)
    if old_valid:
        table.delete(old_tag, old_hash)  # type: ignore[arg-type]
        if old_part is not new_part:
            lwlock_release(old_part)  # type: ignore[arg-type]
    lwlock_release(new_part)
    return buf_id, False


# -- I/O in progress -------------------------------------------------------------------------

def _wait_io(p: _Pool, buf_id: int) -> None:
    """WaitIO: sleep on the buffer's I/O condition variable until its I/O is done."""
    cv = p.descs.io_cvs[buf_id]
    cv_prepare_to_sleep(cv)
    try:
        while True:
            state = p.descs.lock_buf_hdr(buf_id)
            p.descs.unlock_buf_hdr(buf_id, state)
            if not state & BM_IO_IN_PROGRESS:
                break
            cv_sleep(cv, WAIT_EVENT_BUFFER_IO)
    finally:
        cv_cancel_sleep()


def _start_buffer_io(p: _Pool, buf_id: int, for_input: bool) -> bool:
    """StartBufferIO: False if the work is already done (valid / clean)."""
    descs = p.descs
    while True:
        state = descs.lock_buf_hdr(buf_id)
        if not state & BM_IO_IN_PROGRESS:
            break
        descs.unlock_buf_hdr(buf_id, state)
        _wait_io(p, buf_id)
    if (state & BM_VALID) if for_input else not (state & BM_DIRTY):
        descs.unlock_buf_hdr(buf_id, state)
        return False
    descs.unlock_buf_hdr(buf_id, state | BM_IO_IN_PROGRESS)
    p.io_in_progress = buf_id
    p.io_for_input = for_input
    return True


def _terminate_buffer_io(p: _Pool, buf_id: int, clear_dirty: bool, set_flags: int) -> None:
    """TerminateBufferIO: end our I/O; a write clears BM_DIRTY unless re-dirtied meanwhile."""
    descs = p.descs
    state = descs.lock_buf_hdr(buf_id)
    state &= ~(BM_IO_IN_PROGRESS | BM_IO_ERROR)
    if clear_dirty and not state & BM_JUST_DIRTIED:
        state &= ~(BM_DIRTY | BM_CHECKPOINT_NEEDED)
    state |= set_flags
    descs.unlock_buf_hdr(buf_id, state)
    p.io_in_progress = -1
    cv_broadcast(descs.io_cvs[buf_id])


def _abort_buffer_io(p: _Pool) -> None:
    """AbortBufferIO: after an error during our I/O, mark it failed and wake waiters."""
    buf_id = p.io_in_progress
    if buf_id < 0:
        return
    descs = p.descs
    state = descs.lock_buf_hdr(buf_id)
    if not p.io_for_input and state & BM_IO_ERROR:
        tag = descs.tag(buf_id)
        descs.unlock_buf_hdr(buf_id, state)
        elog.warning(f"could not write block {tag[4]} of "
                     f"{relpath(RelFileNode(tag[0], tag[1], tag[2]), tag[3])}",
                     detail="Multiple failures --- write error might be permanent.")
        state = descs.lock_buf_hdr(buf_id)
    state &= ~BM_IO_IN_PROGRESS
    state |= BM_IO_ERROR
    descs.unlock_buf_hdr(buf_id, state)
    p.io_in_progress = -1
    cv_broadcast(descs.io_cvs[buf_id])


# -- writing ---------------------------------------------------------------------------------

def flush_buffer(buf_id: int) -> bool:
    """FlushBuffer: write a dirty buffer out. The caller holds a pin and the
    content lock in share or exclusive mode. Returns False if it was clean."""
    p = _pool
    assert p is not None
    if not _start_buffer_io(p, buf_id, False):
        return False
    descs = p.descs
    try:
        tag = descs.tag(buf_id)
        if probes_enabled:
            _trace_probe("buffer__flush__start", tag)
        page = descs.pages[buf_id]
        state = descs.lock_buf_hdr(buf_id)
        lsn = bufpage.page_get_lsn(page)
        descs.unlock_buf_hdr(buf_id, state & ~BM_JUST_DIRTIED)
        if state & BM_PERMANENT and xlog_flush_hook is not None:
            xlog_flush_hook(lsn)  # WAL before data
        data = bufpage.page_set_checksum_copy(page, tag[4], p.checksums)
        reln = smgr.smgr_open(RelFileNode(tag[0], tag[1], tag[2]))
        t0 = time.perf_counter_ns() if _track_io_timing() else 0
        smgr.smgr_write(reln, tag[3], tag[4], data, skip_fsync=not state & BM_PERMANENT)
        if t0:
            pgstat.io.write_time_us += (time.perf_counter_ns() - t0) / 1000
        pgstat.io.written += 1
        if probes_enabled:
            _trace_probe("buffer__flush__done", tag)
    except BaseException:
        _abort_buffer_io(p)
        raise
    _terminate_buffer_io(p, buf_id, True, 0)
    return True


def _trace_probe(name: str, tag: tuple[int, int, int, int, int]) -> None:
    """A buffer probe with PostgreSQL's arguments: fork, block, spc, db, rel."""
    from access.xlogcheckpoint import trace_probe  # imports this module

    spc, db, rel, fork, blk = tag
    trace_probe(name, forkNum=fork, blockNum=blk, spcNode=spc, dbNode=db, relNode=rel)


def flush_one_buffer(buffer: int) -> None:
    """FlushOneBuffer: the caller holds a pin and the content lock."""
    flush_buffer(buffer - 1)


def mark_buffer_dirty(buffer: int) -> None:
    """MarkBufferDirty: the caller holds the content lock exclusively."""
    p: _Pool = _pool  # type: ignore[assignment]  # attached (pool())
    buf_id = buffer - 1
    wu = p.state_words
    i = buf_id * DESC_WORDS + W_STATE
    p.hdr_acquire[buf_id]()
    state = wu[i]
    wu[i] = state | (BM_DIRTY | BM_JUST_DIRTIED)
    p.hdr_release[buf_id]()
    if not state & BM_DIRTY:
        pgstat.io.dirtied += 1


# -- content locks -----------------------------------------------------------------------------

def lock_buffer(buffer: int, mode: int, _acquire=lwlock_acquire,
                _release=lwlock_release) -> None:
    """LockBuffer: BUFFER_LOCK_SHARE, BUFFER_LOCK_EXCLUSIVE or BUFFER_LOCK_UNLOCK."""
    lock = _pool.content_locks[buffer - 1]  # type: ignore[union-attr]
    if mode == BUFFER_LOCK_SHARE:
        _acquire(lock, LW_SHARED)
    elif mode == BUFFER_LOCK_UNLOCK:
        _release(lock)
    elif mode == BUFFER_LOCK_EXCLUSIVE:
        _acquire(lock, LW_EXCLUSIVE)
    else:
        raise ValueError(f"unrecognized buffer lock mode: {mode}")


def conditional_lock_buffer(buffer: int) -> bool:
    """ConditionalLockBuffer: exclusive, without waiting."""
    return lwlock_conditional_acquire(_pool.content_locks[buffer - 1],  # type: ignore
                                      LW_EXCLUSIVE)


def unlock_release_buffer(buffer: int, _release=lwlock_release) -> None:
    """UnlockReleaseBuffer."""
    p: _Pool = _pool  # type: ignore[assignment]  # attached (pool())
    buf_id = buffer - 1
    _release(p.content_locks[buf_id])
    refs = p.private_refcount
    ref = refs[buf_id]
    if ref == 1:
        wu = p.state_words
        i = buf_id * DESC_WORDS + W_STATE
        p.hdr_acquire[buf_id]()  # may raise (a signal handler) before anything changed
        wu[i] -= 1
        p.hdr_release[buf_id]()
        refs[buf_id] = 0
    else:
        _unpin_buffer(p, buf_id)


def buffer_get_page(buffer: int) -> memoryview:
    return _pool.descs.pages[buffer - 1]  # type: ignore[union-attr]


def buffer_get_block_number(buffer: int) -> int:
    return _pool.descs.wu[(buffer - 1) * DESC_WORDS + 4]  # type: ignore[union-attr]


def buffer_get_tag(buffer: int) -> tuple[int, int, int, int, int]:
    return _pool.descs.tag(buffer - 1)  # type: ignore[union-attr]


# -- dropping buffers ------------------------------------------------------------------------------

def _invalidate_buffer(p: _Pool, buf_id: int, state: int) -> None:
    """InvalidateBuffer: called with the header locked; forget the page entirely."""
    descs = p.descs
    old_tag = descs.tag(buf_id)
    descs.unlock_buf_hdr(buf_id, state)
    old_hash = buf_table_hash_code(old_tag)
    part = p.partition_locks[old_hash % NUM_BUFFER_PARTITIONS]
    while True:
        lwlock_acquire(part, LW_EXCLUSIVE)
        state = descs.lock_buf_hdr(buf_id)
        if not state & BM_TAG_VALID or descs.tag(buf_id) != old_tag:
            descs.unlock_buf_hdr(buf_id, state)
            lwlock_release(part)
            return  # someone else recycled it
        if state & BUF_REFCOUNT_MASK == 0:
            break
        descs.unlock_buf_hdr(buf_id, state)
        lwlock_release(part)
        if state & BM_IO_IN_PROGRESS:
            _wait_io(p, buf_id)
        else:
            time.sleep(0.001)  # a transient pin (bgwriter, checkpointer): wait it out
    descs.set_tag(buf_id, (0, 0, 0, -1, 0))
    descs.unlock_buf_hdr(buf_id, state & ~(BUF_FLAG_MASK | BUF_USAGECOUNT_MASK))
    p.table.delete(old_tag, old_hash)
    lwlock_release(part)
    p.strategy.free_buffer(buf_id)


def drop_rel_file_node_buffers(reln: smgr.SMgrRelation, fork: int, first_del_block: int) -> None:
    """DropRelFileNodeBuffers: forget (without writing) blocks >= first_del_block."""
    p = _pool
    if p is None:
        return  # a process without the buffer pool (a tool) holds no buffers
    r = reln.rnode
    descs = p.descs
    for buf_id in range(p.nbuffers):
        t = descs.tag(buf_id)
        if t[2] != r.rel or t[1] != r.db or t[0] != r.spc or t[3] != fork \
                or t[4] < first_del_block:
            continue  # unlocked pre-check, as PostgreSQL
        state = descs.lock_buf_hdr(buf_id)
        t = descs.tag(buf_id)
        if state & BM_TAG_VALID and t[:4] == (r.spc, r.db, r.rel, fork) \
                and t[4] >= first_del_block:
            _invalidate_buffer(p, buf_id, state)
        else:
            descs.unlock_buf_hdr(buf_id, state)


def drop_rel_file_nodes_all_buffers(reln: smgr.SMgrRelation) -> None:
    """DropRelFileNodesAllBuffers: every fork of the relation."""
    from storage.relfilenode import ALL_FORKS

    for fork in ALL_FORKS:
        drop_rel_file_node_buffers(reln, fork, 0)


def flush_relation_buffers(reln: smgr.SMgrRelation) -> None:
    """FlushRelationBuffers: write every dirty buffer of the relation."""
    p = pool()
    r = reln.rnode
    descs = p.descs
    for buf_id in range(p.nbuffers):
        t = descs.tag(buf_id)
        if t[2] != r.rel or t[1] != r.db or t[0] != r.spc:
            continue
        state = descs.lock_buf_hdr(buf_id)
        if state & (BM_VALID | BM_DIRTY) == (BM_VALID | BM_DIRTY) and \
                descs.tag(buf_id)[:3] == (r.spc, r.db, r.rel):
            _pin_buffer_locked(p, buf_id, state)
            lwlock_acquire(descs.content_locks[buf_id], LW_SHARED)
            try:
                flush_buffer(buf_id)
            finally:
                lwlock_release(descs.content_locks[buf_id])
                _unpin_buffer(p, buf_id)
        else:
            descs.unlock_buf_hdr(buf_id, state)


# -- error recovery ------------------------------------------------------------------------------

def at_error_cleanup() -> None:
    """AbortBufferIO + releasing every pin this process still holds (resource owner)."""
    p = _pool
    if p is None:
        return
    _abort_buffer_io(p)
    refs = p.private_refcount
    for buf_id, n in enumerate(refs):
        if n:
            refs[buf_id] = 1
            _unpin_buffer(p, buf_id)


def pinned_buffers() -> list[int]:
    """Buffers this process holds pins on (for leak checks)."""
    p = pool()
    return [i + 1 for i, n in enumerate(p.private_refcount) if n]


# -- inspection (pg_buffercache) -------------------------------------------------------------------

class BufferInfo(NamedTuple):
    bufferid: int
    relfilenode: int
    reltablespace: int
    reldatabase: int
    relforknumber: int
    relblocknumber: int
    isdirty: bool
    usagecount: int
    pinning_backends: int
    flags: int


def buffer_cache_rows(descs: BufferDescriptors) -> list[BufferInfo]:
    """What pg_buffercache shows: one row per buffer (unlocked reads, as a snapshot)."""
    rows = []
    for buf_id in range(descs.nbuffers):
        state = descs.state(buf_id)
        spc, db, rel, fork, blk = descs.tag(buf_id)
        valid = bool(state & BM_TAG_VALID)
        rows.append(BufferInfo(
            buf_id + 1, rel if valid else 0, spc if valid else 0, db if valid else 0,
            fork if valid else -1, blk if valid else 0, bool(state & BM_DIRTY),
            (state & BUF_USAGECOUNT_MASK) >> 18, state & BUF_REFCOUNT_MASK,
            state & BUF_FLAG_MASK))
    return rows


_ = buf_table  # the module registers the lookup table's region (shmem.ipci)
