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

Layout: the partitions are interleaved. Slot ``s`` belongs to partition
``s % 128`` and is index ``s // 128`` of that partition's table, so the home
slot of a hash is simply ``hash & (128 * capacity - 1)`` (partition
``hash % 128``, home index ``(hash // 128) % capacity``) and a probe steps by
128 slots. Entries are 8 int32 words:

    0 hash (-1 = empty)  1 buf_id  2 spcOid  3 dbOid  4 relNumber
    5 forkNum  6 blockNum  7 spare

written and read with struct (OIDs and block numbers unsigned, so nothing
needs converting). The hash of a tag is Python's tuple hash of five ints,
which is the same in every process (only str and bytes hashes are salted).

``hint`` is a lookup *without* the partition lock, for the buffer manager's
hit path (see storage/bufmgr.py, "The hit path"): it may read a table that is
being changed under it, so its answer is only a candidate that the caller
must verify against the buffer descriptor under the header lock. It never
loops forever (at most one pass over the partition) and never returns a
number outside [-1, nbuffers).
"""

from __future__ import annotations

import struct

from shmem.lwlock import NUM_BUFFER_PARTITIONS
from shmem.segment import ShmemSegment

ENTRY_WORDS = 8
ENTRY_SIZE = ENTRY_WORDS * 4
EMPTY = -1
HASH_MASK = 0x7FFFFFFF

# hash, buf_id, spcOid, dbOid, relNumber, forkNum, blockNum (+ the spare word)
_ENTRY = struct.Struct("<iiIIIiI4x")
_TAG = struct.Struct("<IIIiI")  # the tag words of an entry, at byte 8
_TAG_AT = 8
_STEP = NUM_BUFFER_PARTITIONS * ENTRY_WORDS  # words from one slot of a partition to the next
assert NUM_BUFFER_PARTITIONS & (NUM_BUFFER_PARTITIONS - 1) == 0
_PART_BITS = NUM_BUFFER_PARTITIONS.bit_length() - 1


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
    return [("Shared Buffer Lookup Table", NUM_BUFFER_PARTITIONS * cap * ENTRY_SIZE)]


def num_semaphores(settings) -> int:
    return 0


def shmem_init(seg: ShmemSegment, settings) -> None:
    BufTable(seg, settings.get("shared_buffers")).init()


def buf_table_hash_code(tag: tuple[int, int, int, int, int]) -> int:
    """BufTableHashCode: a non-negative 31-bit hash of the tag."""
    return hash(tag) & HASH_MASK


def buf_table_partition(hashcode: int) -> int:
    """BufTableHashPartition."""
    return hashcode % NUM_BUFFER_PARTITIONS


class BufTable:
    __slots__ = ("cap", "mask", "nbuffers", "mem", "w", "slot_mask", "word_mask")

    def __init__(self, seg: ShmemSegment, nbuffers: int) -> None:
        self.cap = partition_capacity(nbuffers)
        self.mask = self.cap - 1
        self.nbuffers = nbuffers
        self.mem = seg.region("Shared Buffer Lookup Table")
        self.w = self.mem.cast("i")
        nslots = NUM_BUFFER_PARTITIONS * self.cap
        self.slot_mask = nslots - 1  # hash & slot_mask: the home slot
        self.word_mask = nslots * ENTRY_WORDS - 1  # wraps a probe within its partition

    def init(self) -> None:
        w = self.w
        for e in range(0, len(w), ENTRY_WORDS):
            w[e] = EMPTY
            w[e + 1] = EMPTY

    def lookup(self, tag: tuple[int, int, int, int, int], hashcode: int) -> int:
        """BufTableLookup: the buffer id holding ``tag``, or -1 (partition lock held)."""
        w, mem, step, wmask = self.w, self.mem, _STEP, self.word_mask
        unpack_tag = _TAG.unpack_from
        e = (hashcode & self.slot_mask) * ENTRY_WORDS
        for _ in range(self.cap):
            h = w[e]
            if h == hashcode:
                if unpack_tag(mem, e * 4 + _TAG_AT) == tag:
                    return w[e + 1]
            elif h == EMPTY:
                return -1
            e = (e + step) & wmask
        return -1

    def hint(self, hashcode: int) -> int:
        """The buffer id of the first entry with this hash, or -1, read *without*
        the partition lock: a candidate only (see the module docstring)."""
        w, step, wmask = self.w, _STEP, self.word_mask
        e = (hashcode & self.slot_mask) * ENTRY_WORDS
        for _ in range(self.cap):
            h = w[e]
            if h == hashcode:
                buf_id = w[e + 1]
                return buf_id if 0 <= buf_id < self.nbuffers else -1
            if h < 0:
                return -1
            e = (e + step) & wmask
        return -1

    def insert(self, tag: tuple[int, int, int, int, int], hashcode: int, buf_id: int) -> int:
        """BufTableInsert: returns -1 if inserted, else the buffer already mapped."""
        existing = self.lookup(tag, hashcode)
        if existing >= 0:
            return existing
        w, step, wmask = self.w, _STEP, self.word_mask
        e = (hashcode & self.slot_mask) * ENTRY_WORDS
        for _ in range(self.cap):
            if w[e] == EMPTY:
                _ENTRY.pack_into(self.mem, e * 4, hashcode, buf_id, *tag)
                return -1
            e = (e + step) & wmask
        raise OutOfSharedMemory("out of shared memory")

    def delete(self, tag: tuple[int, int, int, int, int], hashcode: int) -> None:
        """BufTableDelete, with backward-shift deletion so probes never need tombstones."""
        w, mem, mask = self.w, self.mem, self.mask
        unpack_tag = _TAG.unpack_from
        part = hashcode & (NUM_BUFFER_PARTITIONS - 1)

        def word(index: int) -> int:  # first word of the partition's slot ``index``
            return ((index << _PART_BITS) | part) * ENTRY_WORDS

        i = (hashcode >> _PART_BITS) & mask
        for _ in range(self.cap):
            e = word(i)
            h = w[e]
            if h == hashcode and unpack_tag(mem, e * 4 + _TAG_AT) == tag:
                break
            if h == EMPTY:
                raise KeyError(f"shared buffer hash table corrupted: {tag} not found")
            i = (i + 1) & mask
        else:
            raise KeyError(f"shared buffer hash table corrupted: {tag} not found")
        hole = i
        j = i
        while True:
            j = (j + 1) & mask
            ej = word(j)
            hj = w[ej]
            if hj == EMPTY:
                break
            home = (hj >> _PART_BITS) & mask
            # Move entry j into the hole unless its home lies cyclically in (hole, j].
            if (j - home) & mask >= (j - hole) & mask:
                eh = word(hole)
                w[eh:eh + ENTRY_WORDS] = w[ej:ej + ENTRY_WORDS]
                hole = j
        eh = word(hole)
        w[eh] = EMPTY
        w[eh + 1] = EMPTY

    def entries(self) -> list[tuple[int, int, tuple[int, int, int, int, int]]]:
        """(hash, buf_id, tag) of every entry, unlocked (for tests and tools)."""
        out = []
        for e in range(0, len(self.w), ENTRY_WORDS):
            if self.w[e] != EMPTY:
                out.append((self.w[e], self.w[e + 1],
                            _TAG.unpack_from(self.mem, e * 4 + _TAG_AT)))
        return out
