"""The shared buffer mapping table — mirrors storage/buffer/buf_table.c.

Maps a BufferTag to the buffer holding that block. It is partitioned over
NUM_BUFFER_PARTITIONS (128) BufferMapping LWLocks exactly as in PostgreSQL:
the tag's hash picks the partition, and the caller holds that partition's
lock (shared to look up, exclusive to insert or delete).

Where we differ: PostgreSQL uses a partitioned dynahash with chained
buckets. Here each partition is its own open-addressing table with linear
probing and backward-shift deletion (no tombstones), all inside the partition,
so a partition lock covers every slot a probe can touch. Each partition has
room for twice the mean number of entries plus slack (load factor below 1/2
in expectation; overflowing it would need hundreds of standard deviations of
bad luck), and an insert into a full partition reports "out of shared
memory" as dynahash would.

Entries are 8 int32 words: hash, spcOid, dbOid, relNumber, forkNum,
blockNum, buf_id (-1 = empty), spare. The hash of a tag is Python's tuple
hash of five ints, which is the same in every process (only str and bytes
hashes are salted).
"""

from __future__ import annotations

from array import array

from shmem.lwlock import NUM_BUFFER_PARTITIONS
from shmem.segment import ShmemSegment

ENTRY_WORDS = 8
EMPTY = -1


class OutOfSharedMemory(Exception):
    sqlstate = "53200"


def partition_capacity(nbuffers: int) -> int:
    mean = nbuffers / NUM_BUFFER_PARTITIONS
    want = int(2 * mean) + 16
    cap = 16
    while cap < want:
        cap *= 2
    return cap


def shmem_requests(settings) -> list[tuple[str, int]]:
    cap = partition_capacity(settings.get("shared_buffers"))
    return [("Shared Buffer Lookup Table", NUM_BUFFER_PARTITIONS * cap * ENTRY_WORDS * 4)]


def num_semaphores(settings) -> int:
    return 0


def shmem_init(seg: ShmemSegment, settings) -> None:
    BufTable(seg, settings.get("shared_buffers")).init()


def buf_table_hash_code(tag: tuple[int, int, int, int, int]) -> int:
    """BufTableHashCode: a non-negative 31-bit hash of the tag."""
    return hash(tag) & 0x7FFFFFFF


def buf_table_partition(hashcode: int) -> int:
    """BufTableHashPartition."""
    return hashcode % NUM_BUFFER_PARTITIONS


class BufTable:
    def __init__(self, seg: ShmemSegment, nbuffers: int) -> None:
        self.cap = partition_capacity(nbuffers)
        self.mask = self.cap - 1
        self.w = seg.region("Shared Buffer Lookup Table").cast("i")

    def init(self) -> None:
        w = self.w
        for i in range(len(w) // ENTRY_WORDS):
            w[i * ENTRY_WORDS + 6] = EMPTY

    def _home(self, hashcode: int) -> tuple[int, int]:
        """(first word of the partition, home slot within it)."""
        part = hashcode % NUM_BUFFER_PARTITIONS
        return part * self.cap * ENTRY_WORDS, (hashcode // NUM_BUFFER_PARTITIONS) & self.mask

    def lookup(self, tag: tuple[int, int, int, int, int], hashcode: int) -> int:
        """BufTableLookup: the buffer id holding ``tag``, or -1."""
        w, mask = self.w, self.mask
        base, i = self._home(hashcode)
        spc, db, rel, fork, blk = _tag_words(tag)
        while True:
            e = base + i * ENTRY_WORDS
            buf_id = w[e + 6]
            if buf_id == EMPTY:
                return -1
            if (w[e] == hashcode and w[e + 5] == blk and w[e + 3] == rel
                    and w[e + 2] == db and w[e + 4] == fork and w[e + 1] == spc):
                return buf_id
            i = (i + 1) & mask

    def insert(self, tag: tuple[int, int, int, int, int], hashcode: int, buf_id: int) -> int:
        """BufTableInsert: returns -1 if inserted, else the buffer already mapped."""
        existing = self.lookup(tag, hashcode)
        if existing >= 0:
            return existing
        w, mask = self.w, self.mask
        base, i = self._home(hashcode)
        for _ in range(self.cap):
            e = base + i * ENTRY_WORDS
            if w[e + 6] == EMPTY:
                w[e + 1:e + 6] = array("i", _tag_words(tag))
                w[e] = hashcode
                w[e + 6] = buf_id
                return -1
            i = (i + 1) & mask
        raise OutOfSharedMemory("out of shared memory")

    def delete(self, tag: tuple[int, int, int, int, int], hashcode: int) -> None:
        """BufTableDelete, with backward-shift deletion so probes never need tombstones."""
        w, mask = self.w, self.mask
        base, i = self._home(hashcode)
        spc, db, rel, fork, blk = _tag_words(tag)
        while True:
            e = base + i * ENTRY_WORDS
            if w[e + 6] == EMPTY:
                raise KeyError(f"shared buffer hash table corrupted: {tag} not found")
            if (w[e] == hashcode and w[e + 5] == blk and w[e + 3] == rel
                    and w[e + 2] == db and w[e + 4] == fork and w[e + 1] == spc):
                break
            i = (i + 1) & mask
        hole = i
        j = i
        while True:
            j = (j + 1) & mask
            ej = base + j * ENTRY_WORDS
            if w[ej + 6] == EMPTY:
                break
            home = (w[ej] // NUM_BUFFER_PARTITIONS) & mask
            # Move entry j into the hole unless its home lies cyclically in (hole, j].
            if (j - home) & mask >= (j - hole) & mask:
                eh = base + hole * ENTRY_WORDS
                w[eh:eh + ENTRY_WORDS] = w[ej:ej + ENTRY_WORDS]
                hole = j
        w[base + hole * ENTRY_WORDS + 6] = EMPTY


def _signed(v: int) -> int:
    return v - 0x100000000 if v >= 0x80000000 else v


def _tag_words(tag: tuple[int, int, int, int, int]) -> tuple[int, int, int, int, int]:
    spc, db, rel, fork, blk = tag
    if spc | db | rel | blk < 0x80000000:  # the common case: nothing to convert
        return tag
    return (_signed(spc), _signed(db), _signed(rel), fork, _signed(blk))
