"""The PGPROC array and backend status slots — mirrors storage/lmgr/proc.c
(InitProcess, ProcKill, HaveNFreeProcs) and the activity part of
utils/activity/backend_status.c.

One fixed slot per possible process: max_connections backend slots, then one
slot per auxiliary process type. Slots are claimed at process start under
ProcStructLock (a spinlock) and freed at exit. The postmaster reads a dead
child's slot to report the query it was running ("Failed process was
running: ..."), which is why the activity text lives in shared memory.
"""

from __future__ import annotations

import os
import struct
import time
from enum import IntEnum

from shmem.segment import ShmemSegment
from shmem.spin import SpinLock


class BackendType(IntEnum):
    B_INVALID = 0
    B_BACKEND = 3
    B_BG_WRITER = 5
    B_CHECKPOINTER = 6
    B_STARTUP = 7
    B_WAL_WRITER = 10
    B_LOGGER = 13

    @property
    def desc(self) -> str:  # GetBackendTypeDesc
        return BACKEND_TYPE_DESC[self]


BACKEND_TYPE_DESC = {
    BackendType.B_INVALID: "not initialized",
    BackendType.B_BACKEND: "client backend",
    BackendType.B_BG_WRITER: "background writer",
    BackendType.B_CHECKPOINTER: "checkpointer",
    BackendType.B_STARTUP: "startup",
    BackendType.B_WAL_WRITER: "walwriter",
    BackendType.B_LOGGER: "logger",
}

# Auxiliary processes with a PGPROC, in slot order after the backends.
AUX_TYPES = (BackendType.B_STARTUP, BackendType.B_CHECKPOINTER, BackendType.B_BG_WRITER,
             BackendType.B_WAL_WRITER)
NUM_AUXILIARY_PROCS = len(AUX_TYPES)

# pid, backend type, in use, superuser, wait_event_info, start time, xid
SLOT = struct.Struct("<iBBBxIdQ")
SLOT_SIZE = 64
# The transaction fields, as uint32 words of the slot (access/procarray.py reads
# them lock-free through ``xact_words``): PGPROC.xid is the low half of SLOT's
# last field, PGPROC.xmin sits in the spare bytes after it.
IN_USE_OFFSET = 5
XID_OFFSET = 20
XMIN_OFFSET = 28
SLOT_WORDS = SLOT_SIZE // 4
XID_WORD = XID_OFFSET // 4
XMIN_WORD = XMIN_OFFSET // 4
# PGPROC.delayChkptFlags (proc.h), as uint32 words after xmin: the flags, and a
# generation counter bumped at every set that stands in for the virtual xid
# PostgreSQL's GetVirtualXIDsDelayingChkpt remembers (see set_delay_chkpt).
DELAY_CHKPT_OFFSET = 32
DELAY_CHKPT_GEN_OFFSET = 36
DELAY_CHKPT_WORD = DELAY_CHKPT_OFFSET // 4
DELAY_CHKPT_GEN_WORD = DELAY_CHKPT_GEN_OFFSET // 4
DELAY_CHKPT_START = 1 << 0     # between a commit record and its pg_xact update
DELAY_CHKPT_COMPLETE = 1 << 1  # the checkpoint may not complete meanwhile
ACTIVITY_SIZE = 1024  # track_activity_query_size's default

# Semaphore 0 of this subsystem's range is ProcStructLock; each slot's own
# semaphore (the one its LWLock waits sleep on) follows: see proc_semaphore().
PROC_STRUCT_LOCK_SEM = 0


def num_slots(max_connections: int) -> int:
    return max_connections + NUM_AUXILIARY_PROCS


def shmem_requests(settings) -> list[tuple[str, int]]:
    n = num_slots(settings.get("max_connections"))
    return [("Proc Array", n * SLOT_SIZE), ("Backend Activity Buffer", n * ACTIVITY_SIZE)]


def num_semaphores(settings) -> int:
    return 1 + num_slots(settings.get("max_connections"))


def shmem_init(seg: ShmemSegment, settings) -> None:
    ProcArray(seg, settings.get("max_connections")).init()


class TooManyClients(Exception):
    pass


class ProcArray:
    """Access to the PGPROC slots of one mapped segment."""

    def __init__(self, seg: ShmemSegment, max_connections: int) -> None:
        self.max_connections = max_connections
        self.nslots = num_slots(max_connections)
        self.slots = seg.region("Proc Array")
        self.activity = seg.region("Backend Activity Buffer")
        self.sem_base = seg.sem_base.get(__name__, 0)
        self.lock = SpinLock(seg.sems[self.sem_base + PROC_STRUCT_LOCK_SEM])
        self.sems = seg.sems
        self.my_slot: int | None = None

    def init(self) -> None:
        self.slots[:] = bytes(len(self.slots))
        self.activity[:] = bytes(len(self.activity))

    def _read(self, i: int) -> tuple:
        return SLOT.unpack_from(self.slots, i * SLOT_SIZE)

    def _write(self, i: int, pid: int, btype: int, in_use: int, superuser: int) -> None:
        SLOT.pack_into(self.slots, i * SLOT_SIZE, pid, btype, in_use, superuser, 0,
                       time.time(), 0)

    def claim_backend(self, is_superuser: bool, reserved: int) -> int:
        """InitProcess for a backend: take a free slot or raise TooManyClients.

        Non-superusers may not take the last ``reserved`` slots
        (superuser_reserved_connections).
        """
        with self.lock.held():
            free = [i for i in range(self.max_connections) if not self._read(i)[2]]
            if not free:
                raise TooManyClients("sorry, too many clients already")
            if not is_superuser and len(free) <= reserved:
                raise TooManyClients(
                    "remaining connection slots are reserved for non-replication "
                    "superuser connections")
            slot = free[0]
            self._write(slot, os.getpid(), BackendType.B_BACKEND, 1, int(is_superuser))
            self._clear_delay_chkpt_word(slot)
        self.my_slot = slot
        return slot

    def claim_aux(self, btype: BackendType) -> int:
        slot = self.max_connections + AUX_TYPES.index(btype)
        with self.lock.held():
            self._write(slot, os.getpid(), btype, 1, 0)
            self._clear_delay_chkpt_word(slot)
        self.my_slot = slot
        return slot

    def proc_semaphore(self, slot: int):
        """The PGPROC's own semaphore, on which it sleeps while waiting for a lock."""
        return self.sems[self.sem_base + 1 + slot]

    def release(self) -> None:
        """ProcKill: give the slot back at a normal exit."""
        if self.my_slot is None:
            return
        slot, self.my_slot = self.my_slot, None
        with self.lock.held():
            self._write(slot, 0, 0, 0, 0)
            self._clear_delay_chkpt_word(slot)
        self.activity[slot * ACTIVITY_SIZE] = 0

    def set_activity(self, text: str) -> None:
        """pgstat_report_activity: the statement text the postmaster may report."""
        if self.my_slot is None:
            return
        data = text.encode("utf-8", "replace")[:ACTIVITY_SIZE - 1] + b"\0"
        base = self.my_slot * ACTIVITY_SIZE
        self.activity[base:base + len(data)] = data

    def set_wait_event(self, info: int) -> None:
        """pgstat_report_wait_start/end: my slot's wait_event_info (0 = not waiting)."""
        if self.my_slot is not None:
            struct.pack_into("<I", self.slots, self.my_slot * SLOT_SIZE + 8, info)

    def wait_event_info(self, slot: int) -> int:
        """A slot's wait_event_info (uint32 at byte 8 of SLOT)."""
        return struct.unpack_from("<I", self.slots, slot * SLOT_SIZE + 8)[0]

    # -- transaction fields (PGPROC.xid / PGPROC.xmin), see access/procarray.py --

    def xact_words(self) -> memoryview:
        """The slots as uint32 words: slot ``i``'s xid is word ``i * SLOT_WORDS +
        XID_WORD``, its xmin word ``i * SLOT_WORDS + XMIN_WORD``. Each is written by
        its owner only (as a single store) and may be read by anyone without a lock."""
        return self.slots.cast("I")

    def get_xid(self, slot: int) -> int:
        return struct.unpack_from("<I", self.slots, slot * SLOT_SIZE + XID_OFFSET)[0]

    def set_xid(self, slot: int, xid: int) -> None:
        struct.pack_into("<I", self.slots, slot * SLOT_SIZE + XID_OFFSET, xid)

    def get_xmin(self, slot: int) -> int:
        return struct.unpack_from("<I", self.slots, slot * SLOT_SIZE + XMIN_OFFSET)[0]

    def set_xmin(self, slot: int, xmin: int) -> None:
        struct.pack_into("<I", self.slots, slot * SLOT_SIZE + XMIN_OFFSET, xmin)

    # -- PGPROC.delayChkptFlags (the checkpointer's DELAY_CHKPT_START wait) --
    #
    # A committer sets DELAY_CHKPT_START after it has begun inserting its commit
    # record and clears it once the commit is marked in pg_xact
    # (RecordTransactionCommit). CreateCheckPoint takes its redo pointer, then
    # waits until every process it saw with the flag has cleared it, so no commit
    # record can precede the redo pointer while its pg_xact update is missed by
    # the checkpoint's CheckPointCLOG. Each word is written by its owner only.

    def _clear_delay_chkpt_word(self, slot: int) -> None:
        struct.pack_into("<I", self.slots, slot * SLOT_SIZE + DELAY_CHKPT_OFFSET, 0)

    def set_delay_chkpt(self, flags: int = DELAY_CHKPT_START) -> None:
        """MyProc->delayChkptFlags |= flags (bumping the generation first)."""
        if self.my_slot is None:
            return
        base = self.my_slot * SLOT_SIZE
        gen = struct.unpack_from("<I", self.slots, base + DELAY_CHKPT_GEN_OFFSET)[0]
        struct.pack_into("<I", self.slots, base + DELAY_CHKPT_GEN_OFFSET, (gen + 1) & 0xFFFFFFFF)
        cur = struct.unpack_from("<I", self.slots, base + DELAY_CHKPT_OFFSET)[0]
        struct.pack_into("<I", self.slots, base + DELAY_CHKPT_OFFSET, cur | flags)

    def clear_delay_chkpt(self, flags: int = DELAY_CHKPT_START) -> None:
        """MyProc->delayChkptFlags &= ~flags."""
        if self.my_slot is None:
            return
        off = self.my_slot * SLOT_SIZE + DELAY_CHKPT_OFFSET
        cur = struct.unpack_from("<I", self.slots, off)[0]
        struct.pack_into("<I", self.slots, off, cur & ~flags & 0xFFFFFFFF)

    def set_delay_chkpt_start(self, on: bool) -> None:
        """Set (``on``) or clear DELAY_CHKPT_START, as access.xact's commit does."""
        if on:
            self.set_delay_chkpt(DELAY_CHKPT_START)
        else:
            self.clear_delay_chkpt(DELAY_CHKPT_START)

    def get_virtual_xids_delaying_chkpt(self, flags: int) -> list[tuple[int, int]]:
        """GetVirtualXIDsDelayingChkpt: (slot, generation) of every process whose
        delay flags include any of ``flags`` now."""
        w = self.slots.cast("I")
        out = []
        for i in range(self.nslots):
            b = i * SLOT_WORDS
            if w[b + DELAY_CHKPT_WORD] & flags:
                out.append((i, w[b + DELAY_CHKPT_GEN_WORD]))
        return out

    def have_virtual_xids_delaying_chkpt(self, vxids: list[tuple[int, int]], flags: int) -> bool:
        """HaveVirtualXIDsDelayingChkpt: is any of ``vxids`` still delaying? A slot
        whose generation moved on has finished the commit we were waiting for."""
        w = self.slots.cast("I")
        for slot, gen in vxids:
            b = slot * SLOT_WORDS
            if w[b + DELAY_CHKPT_WORD] & flags and w[b + DELAY_CHKPT_GEN_WORD] == gen:
                return True
        return False

    def pid_of_slot(self, slot: int) -> int:
        """The pid in a slot (0 if free): whom to wake for a PGPROC number."""
        return struct.unpack_from("<i", self.slots, slot * SLOT_SIZE)[0]

    def activity_of(self, pid: int) -> str | None:
        for i in range(self.nslots):
            if self._read(i)[0] == pid:
                raw = bytes(self.activity[i * ACTIVITY_SIZE:(i + 1) * ACTIVITY_SIZE])
                return raw.split(b"\0", 1)[0].decode("utf-8", "replace")
        return None

    def in_use(self) -> list[tuple[int, int, BackendType, bool]]:
        """(slot, pid, backend type, superuser) of every claimed slot."""
        out = []
        for i in range(self.nslots):
            pid, btype, used, su, *_ = self._read(i)
            if used:
                out.append((i, pid, BackendType(btype), bool(su)))
        return out
