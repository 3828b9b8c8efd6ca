"""storage.smgr / storage.md / storage.sync: segment files, the fd cache, truncation,
unlinking, PostgreSQL's error texts, and the fsync request table.

RELSEG_SIZE is shrunk to 4 blocks so that multi-segment relations are small.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import fd, md, smgr, sync
from storage.bufpage import BLCKSZ
from storage.relfilenode import (
    DEFAULTTABLESPACE_OID,
    FSM_FORKNUM,
    GLOBALTABLESPACE_OID,
    INIT_FORKNUM,
    MAIN_FORKNUM,
    VISIBILITYMAP_FORKNUM,
    RelFileNode,
    forkname_to_number,
    relpath,
    segment_path,
)
from storage.smgr import (
    smgr_close_all,
    smgr_create,
    smgr_exists,
    smgr_extend,
    smgr_immedsync,
    smgr_nblocks,
    smgr_open,
    smgr_read,
    smgr_truncate,
    smgr_unlink,
    smgr_write,
)
from storage.sync import FileTag
from utils import elog
from utils.elog import PgError

RNODE = RelFileNode(DEFAULTTABLESPACE_OID, 5, 16384)
SEG = 4  # RELSEG_SIZE in these tests


@pytest.fixture
def datadir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(md, "RELSEG_SIZE", SEG)
    monkeypatch.setattr(md, "zero_damaged_pages", False)
    monkeypatch.setattr(md, "in_recovery", False)
    monkeypatch.setattr(fd, "max_safe_fds", 32)
    monkeypatch.setattr(fd, "enable_fsync", True)
    fd.set_data_directory(str(tmp_path))
    (tmp_path / "base" / "5").mkdir(parents=True)
    sync.reset()
    sync.set_forward_hook(None)
    sync.set_absorb_hook(None)
    yield tmp_path
    smgr_close_all()
    sync.reset()
    sync.set_forward_hook(None)
    sync.set_absorb_hook(None)
    fd.configure_fault_injection(None)
    fd.close_all_files()
    fd.set_data_directory(None)


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = os.fsync

    def record(fileno: int) -> None:
        calls.append(os.readlink(f"/proc/self/fd/{fileno}").split("/base/", 1)[-1])
        real(fileno)

    monkeypatch.setattr(os, "fsync", record)
    return calls


def page(n: int) -> bytes:
    return bytes([n % 256]) * BLCKSZ


def sizes(datadir: Path, name: str = "base/5/16384") -> dict[str, int]:
    """Segment file -> size in blocks, for every segment file present."""
    d = datadir / os.path.dirname(name)
    base = os.path.basename(name)
    return {p.name: p.stat().st_size // BLCKSZ for p in sorted(d.iterdir())
            if p.name == base or p.name.startswith(base + ".")}


def make_rel(nblocks: int, rnode: RelFileNode = RNODE) -> smgr.SMgrRelation:
    reln = smgr_open(rnode)
    smgr_create(reln, MAIN_FORKNUM)
    for b in range(nblocks):
        smgr_extend(reln, MAIN_FORKNUM, b, page(b))
    return reln


# -- paths --------------------------------------------------------------------------------

def test_relpath() -> None:
    assert relpath(RNODE) == "base/5/16384"
    assert relpath(RNODE, FSM_FORKNUM) == "base/5/16384_fsm"
    assert relpath(RNODE, VISIBILITYMAP_FORKNUM) == "base/5/16384_vm"
    assert relpath(RNODE, INIT_FORKNUM) == "base/5/16384_init"
    assert relpath(RNODE, MAIN_FORKNUM, backend=3) == "base/5/t3_16384"
    assert relpath(RelFileNode(GLOBALTABLESPACE_OID, 0, 1262)) == "global/1262"
    assert relpath(RelFileNode(16500, 5, 16384), FSM_FORKNUM).startswith(
        "pg_tblspc/16500/PG_15_")
    assert segment_path("base/5/16384", 0) == "base/5/16384"
    assert segment_path("base/5/16384_vm", 2) == "base/5/16384_vm.2"
    assert forkname_to_number("vm") == VISIBILITYMAP_FORKNUM


def test_default_segment_size() -> None:
    assert md.RELSEG_SIZE == 131072 and md.RELSEG_SIZE * BLCKSZ == 1 << 30


# -- create, extend, read, write ---------------------------------------------------------

def test_create_extend_read_write(datadir: Path) -> None:
    reln = smgr_open(RNODE)
    assert smgr_open(RNODE) is reln
    assert not smgr_exists(reln, MAIN_FORKNUM)
    smgr_create(reln, MAIN_FORKNUM)
    assert smgr_exists(reln, MAIN_FORKNUM) and not smgr_exists(reln, FSM_FORKNUM)
    assert smgr_nblocks(reln, MAIN_FORKNUM) == 0
    smgr_extend(reln, MAIN_FORKNUM, 0, page(1))
    smgr_extend(reln, MAIN_FORKNUM, 1)  # zero page, as ReadBuffer(P_NEW) does
    assert smgr_nblocks(reln, MAIN_FORKNUM) == 2
    assert smgr_read(reln, MAIN_FORKNUM, 0) == page(1)
    assert smgr_read(reln, MAIN_FORKNUM, 1) == bytes(BLCKSZ)
    smgr_write(reln, MAIN_FORKNUM, 1, page(7))
    buf = bytearray(3 * BLCKSZ)
    view = memoryview(buf)[BLCKSZ:2 * BLCKSZ]
    assert smgr_read(reln, MAIN_FORKNUM, 1, view) is view
    assert buf[BLCKSZ:2 * BLCKSZ] == page(7) and buf[:BLCKSZ] == bytes(BLCKSZ)


def test_create_makes_database_directory(datadir: Path) -> None:
    reln = smgr_open(RelFileNode(DEFAULTTABLESPACE_OID, 16400, 16401))
    smgr_create(reln, MAIN_FORKNUM)
    assert (datadir / "base/16400/16401").exists()


def test_create_existing_fails_except_in_redo(datadir: Path) -> None:
    make_rel(1)
    smgr_close_all()
    reln = smgr_open(RNODE)
    with pytest.raises(PgError) as info:
        smgr_create(reln, MAIN_FORKNUM)
    assert info.value.message == 'could not create file "base/5/16384": File exists'
    assert info.value.sqlstate == "58P02"
    smgr_create(reln, MAIN_FORKNUM, is_redo=True)
    assert smgr_nblocks(reln, MAIN_FORKNUM) == 1


def test_missing_fork(datadir: Path) -> None:
    reln = smgr_open(RelFileNode(DEFAULTTABLESPACE_OID, 5, 99999))
    with pytest.raises(PgError) as info:
        smgr_nblocks(reln, MAIN_FORKNUM)
    assert info.value.message == 'could not open file "base/5/99999": No such file or directory'
    assert info.value.sqlstate == "58P01"


def test_segments(datadir: Path) -> None:
    reln = make_rel(10)
    assert sizes(datadir) == {"16384": 4, "16384.1": 4, "16384.2": 2}
    assert len(reln.md_seg_fds[MAIN_FORKNUM]) == 3
    smgr_close_all()
    reln = smgr_open(RNODE)
    assert smgr_nblocks(reln, MAIN_FORKNUM) == 10
    assert [smgr_read(reln, MAIN_FORKNUM, b)[0] for b in range(10)] == list(range(10))
    smgr_write(reln, MAIN_FORKNUM, 8, page(88))
    assert (datadir / "base/5/16384.2").read_bytes()[:BLCKSZ] == page(88)


def test_exact_segment_boundary(datadir: Path) -> None:
    reln = make_rel(SEG)
    assert sizes(datadir) == {"16384": 4}
    assert smgr_nblocks(reln, MAIN_FORKNUM) == 4
    smgr_extend(reln, MAIN_FORKNUM, 4, page(4))
    assert sizes(datadir) == {"16384": 4, "16384.1": 1}
    assert smgr_nblocks(reln, MAIN_FORKNUM) == 5


def test_extend_past_end_pads_previous_segment(datadir: Path) -> None:
    reln = make_rel(1)
    smgr_extend(reln, MAIN_FORKNUM, 6, page(6))
    assert sizes(datadir) == {"16384": 4, "16384.1": 3}
    assert smgr_nblocks(reln, MAIN_FORKNUM) == 7
    assert smgr_read(reln, MAIN_FORKNUM, 2) == bytes(BLCKSZ)  # the hole reads as zeroes


def test_forks_are_separate_files(datadir: Path) -> None:
    reln = make_rel(1)
    smgr_create(reln, FSM_FORKNUM)
    smgr_extend(reln, FSM_FORKNUM, 0, page(9))
    assert (datadir / "base/5/16384_fsm").read_bytes() == page(9)
    assert smgr_nblocks(reln, FSM_FORKNUM) == 1


# -- reading past the end --------------------------------------------------------------------

def test_read_past_eof_error_text(datadir: Path) -> None:
    reln = make_rel(2)
    with pytest.raises(md.ShortReadError) as info:
        smgr_read(reln, MAIN_FORKNUM, 2)
    err = info.value
    assert err.message == ('could not read block 2 in file "base/5/16384": '
                           "read only 0 of 8192 bytes")
    assert err.sqlstate == "XX001" and isinstance(err, PgError)


def test_partial_block(datadir: Path) -> None:
    reln = make_rel(1)
    with open(datadir / "base/5/16384", "ab") as f:
        f.write(b"x" * 100)
    with pytest.raises(md.ShortReadError, match="read only 100 of 8192 bytes"):
        smgr_read(reln, MAIN_FORKNUM, 1, bytearray(BLCKSZ))


def test_read_in_missing_segment(datadir: Path) -> None:
    reln = make_rel(SEG)
    with pytest.raises(PgError) as info:
        smgr_read(reln, MAIN_FORKNUM, 5)
    assert info.value.message == ('could not open file "base/5/16384.1" (target block 5): '
                                  "No such file or directory")
    reln = make_rel(2, RelFileNode(DEFAULTTABLESPACE_OID, 5, 20000))
    with pytest.raises(PgError) as info:
        smgr_read(reln, MAIN_FORKNUM, 9)
    assert info.value.message == ('could not open file "base/5/20000.1" (target block 9): '
                                  "previous segment is only 2 blocks")


def test_zero_damaged_pages(datadir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reln = make_rel(1)
    monkeypatch.setattr(md, "zero_damaged_pages", True)
    assert smgr_read(reln, MAIN_FORKNUM, 1) == bytes(BLCKSZ)
    buf = bytearray(b"\xff" * BLCKSZ)
    smgr_read(reln, MAIN_FORKNUM, 3, buf)
    assert buf == bytes(BLCKSZ)


# -- the descriptor cache ---------------------------------------------------------------------

def test_fd_cache_eviction(datadir: Path) -> None:
    fd.set_max_safe_fds(2, probe=False)
    before = len(os.listdir("/proc/self/fd"))
    rels = [make_rel(9, RelFileNode(DEFAULTTABLESPACE_OID, 5, 30000 + i)) for i in range(3)]
    assert fd.nfile() <= 2
    for _round in range(2):
        for reln in rels:
            for b in range(9):
                data = smgr_read(reln, MAIN_FORKNUM, b)
                assert data == page(b)
                smgr_write(reln, MAIN_FORKNUM, b, page(b))
                assert fd.nfile() <= 2
    assert len(os.listdir("/proc/self/fd")) - before <= 2
    # 3 relations x 3 segments are "open" in md, through 2 kernel descriptors
    assert sum(len(r.md_seg_fds[MAIN_FORKNUM]) for r in rels) == 9
    assert sum(f.is_open for r in rels for f in r.md_seg_fds[MAIN_FORKNUM]) == 2


# -- truncate ----------------------------------------------------------------------------------

def test_truncate_across_segments(datadir: Path) -> None:
    reln = make_rel(10)
    smgr_truncate(reln, MAIN_FORKNUM, 5)
    # the emptied third segment stays, zero length (an inactive segment)
    assert sizes(datadir) == {"16384": 4, "16384.1": 1, "16384.2": 0}
    assert smgr_nblocks(reln, MAIN_FORKNUM) == 5
    smgr_truncate(reln, MAIN_FORKNUM, 4)  # exact multiple: next segment emptied, kept
    assert sizes(datadir) == {"16384": 4, "16384.1": 0, "16384.2": 0}
    assert smgr_nblocks(reln, MAIN_FORKNUM) == 4
    smgr_close_all()
    reln = smgr_open(RNODE)
    assert smgr_nblocks(reln, MAIN_FORKNUM) == 4
    # growing again reuses the empty segment files
    smgr_extend(reln, MAIN_FORKNUM, 4, page(40))
    assert sizes(datadir) == {"16384": 4, "16384.1": 1, "16384.2": 0}
    smgr_truncate(reln, MAIN_FORKNUM, 0)
    assert sizes(datadir) == {"16384": 0, "16384.1": 0, "16384.2": 0}
    assert smgr_nblocks(reln, MAIN_FORKNUM) == 0


def test_truncate_beyond_end_is_an_error(datadir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reln = make_rel(5)
    with pytest.raises(PgError) as info:
        smgr_truncate(reln, MAIN_FORKNUM, 20)
    assert info.value.message == ('could not truncate file "base/5/16384" to 20 blocks: '
                                  "it's only 5 blocks now")
    monkeypatch.setattr(md, "in_recovery", True)
    smgr_truncate(reln, MAIN_FORKNUM, 20)  # tolerated during redo
    assert sizes(datadir) == {"16384": 4, "16384.1": 1}


# -- unlink -------------------------------------------------------------------------------------

def test_unlink_all_segments_and_forks(datadir: Path) -> None:
    reln = make_rel(10)
    smgr_create(reln, FSM_FORKNUM)
    for b in range(6):
        smgr_extend(reln, FSM_FORKNUM, b, page(b))
    smgr_truncate(reln, MAIN_FORKNUM, 3)  # leaves inactive segments .1 and .2
    smgr_unlink(reln)
    # the main fork's first segment stays, empty, until the next checkpoint
    assert sizes(datadir) == {"16384": 0}
    assert sizes(datadir, "base/5/16384_fsm") == {}
    assert not smgr_exists(reln, FSM_FORKNUM)
    assert sync.pending_unlink_tags() == [FileTag(sync.SYNC_HANDLER_MD, MAIN_FORKNUM, RNODE, 0)]
    sync.sync_pre_checkpoint()
    sync.process_sync_requests()
    sync.sync_post_checkpoint()
    assert sizes(datadir) == {}
    assert sync.pending_unlink_tags() == []


def test_unlink_in_redo_and_temp_removes_at_once(datadir: Path) -> None:
    reln = make_rel(6)
    smgr_unlink(reln, is_redo=True)
    assert sizes(datadir) == {}
    temp = smgr_open(RNODE, backend=3)
    smgr_create(temp, MAIN_FORKNUM)
    for b in range(6):
        smgr_extend(temp, MAIN_FORKNUM, b, page(b))
    assert sizes(datadir, "base/5/t3_16384") == {"t3_16384": 4, "t3_16384.1": 2}
    smgr_unlink(temp)
    assert sizes(datadir, "base/5/t3_16384") == {}


def test_unlink_waits_for_a_checkpoint_that_starts_after_it(datadir: Path) -> None:
    reln = make_rel(1)
    sync.sync_pre_checkpoint()  # a checkpoint is already under way
    smgr_unlink(reln)
    sync.sync_post_checkpoint()  # ...and finishes: the file must stay
    assert sizes(datadir) == {"16384": 0}
    sync.sync_pre_checkpoint()
    sync.sync_post_checkpoint()
    assert sizes(datadir) == {}


# -- fsync requests --------------------------------------------------------------------------------

def tag(segno: int, forknum: int = MAIN_FORKNUM, rnode: RelFileNode = RNODE) -> FileTag:
    return FileTag(sync.SYNC_HANDLER_MD, forknum, rnode, segno)


def test_pending_table_has_one_entry_per_written_segment(datadir: Path) -> None:
    reln = make_rel(10)
    for b in range(10):
        smgr_write(reln, MAIN_FORKNUM, b, page(b))
    assert sorted(sync.pending_sync_tags()) == [tag(0), tag(1), tag(2)]


def test_forward_hook_sees_every_write(datadir: Path) -> None:
    seen: list[tuple[FileTag, sync.SyncRequestType]] = []
    sync.set_forward_hook(lambda t, kind: seen.append((t, kind)) or True)
    reln = make_rel(6)
    assert [t.segno for t, _ in seen] == [0, 0, 0, 0, 1, 1]
    assert {kind for _, kind in seen} == {sync.SYNC_REQUEST}
    seen.clear()
    smgr_write(reln, MAIN_FORKNUM, 5, page(5))
    smgr_write(reln, MAIN_FORKNUM, 5, page(5), skip_fsync=True)
    assert seen == [(tag(1), sync.SYNC_REQUEST)]
    assert sync.pending_sync_tags() == []  # forwarded, not kept here


def test_temp_relations_are_never_registered(datadir: Path) -> None:
    temp = smgr_open(RNODE, backend=7)
    smgr_create(temp, MAIN_FORKNUM)
    smgr_extend(temp, MAIN_FORKNUM, 0, page(0))
    smgr_write(temp, MAIN_FORKNUM, 0, page(1))
    assert sync.pending_sync_tags() == []


def test_unlink_forgets_pending_fsyncs(datadir: Path, fsyncs: list[str]) -> None:
    reln = make_rel(10)
    smgr_create(reln, VISIBILITYMAP_FORKNUM)
    smgr_extend(reln, VISIBILITYMAP_FORKNUM, 0, page(0))
    other = make_rel(1, RelFileNode(DEFAULTTABLESPACE_OID, 5, 16385))
    smgr_write(other, MAIN_FORKNUM, 0, page(3))
    smgr_unlink(reln)
    # only the kept (emptied) first main segment and the other relation remain
    assert sorted(sync.pending_sync_tags()) == [tag(0), tag(0, rnode=other.rnode)]
    stats = sync.process_sync_requests()
    assert stats.files == 2 and sorted(fsyncs) == ["5/16384", "5/16385"]
    assert sync.pending_sync_tags() == []


def test_process_sync_requests(datadir: Path, fsyncs: list[str], monkeypatch) -> None:
    reln = make_rel(6)
    stats = sync.process_sync_requests(log_checkpoints=True)
    assert stats.files == 2 and sorted(fsyncs) == ["5/16384", "5/16384.1"]
    assert stats.longest_us <= stats.total_us
    fsyncs.clear()
    assert sync.process_sync_requests().files == 0 and fsyncs == []
    # a request absorbed during the sync phase waits for the next checkpoint
    calls = 0

    def absorb() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            sync.remember_sync_request(tag(1), sync.SYNC_REQUEST)

    sync.set_absorb_hook(absorb)
    smgr_write(reln, MAIN_FORKNUM, 0, page(0))
    monkeypatch.setattr(sync, "FSYNCS_PER_ABSORB", 1)
    assert sync.process_sync_requests().files == 1 and fsyncs == ["5/16384"]
    assert sync.pending_sync_tags() == [tag(1)]
    assert sync.process_sync_requests().files == 1


def test_fsync_off_drops_requests_without_syncing(datadir: Path, fsyncs: list[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    make_rel(2)
    monkeypatch.setattr(fd, "enable_fsync", False)
    assert sync.process_sync_requests().files == 0
    assert fsyncs == [] and sync.pending_sync_tags() == []


def test_failed_fsync_is_a_panic_and_requests_survive(datadir: Path, fsyncs: list[str]) -> None:
    make_rel(6)
    fd.configure_fault_injection("fsync:base/5/16384.1:EIO:count=1")
    with pytest.raises(fd.DataSyncError) as info:
        sync.process_sync_requests()
    assert info.value.severity == elog.PANIC
    assert info.value.message == 'could not fsync file "base/5/16384.1": Input/output error'
    assert tag(1) in sync.pending_sync_tags()
    # (with data_sync_retry on, the next checkpoint would try again)
    assert sync.process_sync_requests().files >= 1
    assert sync.pending_sync_tags() == []


def test_vanished_file_without_forget_request_fails(datadir: Path) -> None:
    make_rel(6)
    smgr_close_all()
    os.unlink(datadir / "base/5/16384.1")
    with pytest.raises(fd.DataSyncError) as info:
        sync.process_sync_requests()
    assert info.value.message == ('could not fsync file "base/5/16384.1": '
                                  "No such file or directory")


def test_vanished_file_with_forget_request_in_queue(datadir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    make_rel(6)
    smgr_close_all()
    os.unlink(datadir / "base/5/16384.1")
    debug: list[str] = []
    monkeypatch.setattr(elog, "debug1", lambda msg, **kw: debug.append(msg))
    absorbs = 0

    def absorb() -> None:  # the FORGET is absorbed only when the sync phase retries
        nonlocal absorbs
        absorbs += 1
        if absorbs > 1:
            sync.remember_sync_request(tag(1), sync.SYNC_FORGET_REQUEST)

    sync.set_absorb_hook(absorb)
    assert sync.process_sync_requests().files == 1
    assert debug == ['could not fsync file "base/5/16384.1" but retrying: '
                     "No such file or directory"]


def test_queue_full_means_the_writer_fsyncs(datadir: Path, fsyncs: list[str]) -> None:
    reln = make_rel(1)
    sync.set_forward_hook(lambda t, kind: False)
    smgr_write(reln, MAIN_FORKNUM, 0, page(1))
    assert fsyncs == ["5/16384"]
    sync.register_dirty_segment(RNODE, MAIN_FORKNUM, 0)  # no File at hand: opens it
    assert fsyncs == ["5/16384", "5/16384"]


def test_forget_database(datadir: Path) -> None:
    make_rel(1)
    make_rel(1, RelFileNode(DEFAULTTABLESPACE_OID, 6, 1))
    sync.forget_database_sync_requests(5)
    assert sync.pending_sync_tags() == [tag(0, rnode=RelFileNode(DEFAULTTABLESPACE_OID, 6, 1))]


def test_immedsync(datadir: Path, fsyncs: list[str]) -> None:
    reln = smgr_open(RNODE)
    smgr_create(reln, MAIN_FORKNUM)
    for b in range(9):
        smgr_extend(reln, MAIN_FORKNUM, b, page(b), skip_fsync=True)
    assert sync.pending_sync_tags() == []
    smgr_immedsync(reln, MAIN_FORKNUM)
    assert fsyncs == ["5/16384", "5/16384.1", "5/16384.2"]


def test_filetag_pack_round_trip() -> None:
    buf = bytearray(64)
    t = tag(3, FSM_FORKNUM, RelFileNode(1663, 16384, 4000000000))
    sync.filetag_pack_into(buf, 20, t)
    assert sync.filetag_unpack_from(buf, 20) == t
    assert sync.FILETAG_STRUCT.size == 20


# -- I/O errors through md -------------------------------------------------------------------------

def test_write_error_after_n_writes(datadir: Path) -> None:
    reln = make_rel(4)
    fd.configure_fault_injection("write:base/*/16384*:EIO:after=3")
    for b in range(3):
        smgr_write(reln, MAIN_FORKNUM, b, page(b))
    with pytest.raises(PgError) as info:
        smgr_write(reln, MAIN_FORKNUM, 3, page(3))
    assert info.value.message == ('could not write block 3 in file "base/5/16384": '
                                  "Input/output error")
    assert info.value.sqlstate == "58030"
    with pytest.raises(PgError) as info:
        smgr_extend(reln, MAIN_FORKNUM, 4, page(4))
    assert info.value.message == 'could not extend file "base/5/16384.1": Input/output error'
    assert info.value.hint == "Check free disk space."


def test_short_write_is_disk_full(datadir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reln = make_rel(1)
    monkeypatch.setattr(fd, "_pwrite", lambda fileno, data, offset: 4096)
    with pytest.raises(PgError) as info:
        smgr_write(reln, MAIN_FORKNUM, 0, page(1))
    assert info.value.message == ('could not write block 0 in file "base/5/16384": '
                                  "wrote only 4096 of 8192 bytes")
    assert info.value.sqlstate == "53100" and info.value.hint == "Check free disk space."


def test_read_error(datadir: Path) -> None:
    reln = make_rel(1)
    fd.configure_fault_injection("read:base/5/16384:EIO")
    with pytest.raises(PgError) as info:
        smgr_read(reln, MAIN_FORKNUM, 0)
    assert info.value.message == ('could not read block 0 in file "base/5/16384": '
                                  "Input/output error")
    assert info.value.sqlstate == "58030"
