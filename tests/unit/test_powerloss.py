"""The power-loss journal (storage/powerloss.py, through storage/fd.py) and the
rollback of tusk_ctl simulate-power-loss (postmaster/powerloss_cmd.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from postmaster import powerloss_cmd
from postmaster.powerloss_cmd import simulate
from storage import fd
from storage import powerloss as pl

PAGE = 8192


@pytest.fixture
def datadir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data directory with the power-loss journal on; fd state restored after."""
    monkeypatch.setattr(fd, "enable_fsync", True)
    d = tmp_path / "data"
    (d / "base" / "5").mkdir(parents=True)
    (d / "pg_wal").mkdir()
    fd.set_data_directory(str(d))
    fd.configure_power_loss(True)
    yield d
    fd.configure_power_loss(False)
    fd.configure_fault_injection(None)
    fd.close_all_files()
    fd.set_data_directory(None)


def _records(d: Path) -> list[pl.Record]:
    return pl.read_journal(pl.journal_path(str(d)))[0]


def _kinds(d: Path) -> list[tuple[str, str]]:
    return [(pl.KIND_NAMES[r.kind], r.path) for r in _records(d)]


def _existing(d: Path, name: str, data: bytes) -> fd.File:
    """A file that predates the journal (so counts as synced), opened through fd."""
    (d / name).write_bytes(data)
    return fd.path_name_open_file(name)


def _copies(d: Path, n: int) -> list[Path]:
    """``n`` copies of the data directory (hard links in saved/ become copies: fine)."""
    fd.configure_power_loss(False)
    out = []
    for i in range(n):
        c = d.parent / f"{d.name}-copy{i}"
        shutil.copytree(d, c)
        out.append(c)
    return out


def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file()}


# -- the journal --------------------------------------------------------------------------

def test_off_costs_nothing_and_leaves_no_journal(tmp_path: Path) -> None:
    fd.set_data_directory(str(tmp_path))
    try:
        assert not fd.power_loss_enabled()
        f = fd.path_name_open_file("x", os.O_RDWR | os.O_CREAT)
        f.write(b"abc", 0)
        f.sync()
        f.close()
        assert not (tmp_path / pl.DIRNAME).exists()
    finally:
        fd.set_data_directory(None)


def test_journal_records_changes_in_order(datadir: Path) -> None:
    f = fd.path_name_open_file("base/5/100", os.O_RDWR | os.O_CREAT | os.O_EXCL)
    f.extend(b"x" * PAGE, 0)
    f.write(b"y" * 100, 50)
    f.sync()
    f.truncate(10)
    f.close()
    fd.fsync_fname(str(datadir / "base" / "5"), isdir=True)  # absolute: journaled relative
    fd.rename("base/5/100", "base/5/101")
    fd.link("base/5/101", "base/5/102")
    fd.unlink("base/5/101")
    fd.make_pg_directory("base/6")
    assert _kinds(datadir) == [
        ("create", "base/5/100"), ("write", "base/5/100"), ("write", "base/5/100"),
        ("fsync", "base/5/100"), ("truncate", "base/5/100"), ("fsync", "base/5"),
        ("rename", "base/5/100"), ("link", "base/5/101"), ("unlink", "base/5/101"),
        ("mkdir", "base/6")]
    recs = _records(datadir)
    ext, over, _, trunc = recs[1:5]
    assert (ext.offset, ext.length, ext.old_size, ext.pre) == (0, PAGE, 0, b"")
    assert (over.offset, over.length, over.old_size, over.pre) == (50, 100, PAGE, b"x" * 100)
    assert (trunc.offset, trunc.old_size, trunc.pre) == (10, PAGE, b"x" * 40 + b"y" * 100
                                                         + b"x" * (PAGE - 150))
    assert recs[6].path2 == "base/5/101" and recs[6].pre == b""  # nothing replaced
    unlink = recs[8]
    assert (datadir / pl.DIRNAME / unlink.path2).exists()  # the inode kept for an undo


def test_open_creat_of_existing_file_is_no_creation(datadir: Path) -> None:
    (datadir / "pg_wal" / "old").write_bytes(b"old contents")
    fdesc = fd.basic_open_file("pg_wal/old", os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    fd.basic_close(fdesc)
    fdesc = fd.basic_open_file("pg_wal/new", os.O_RDWR | os.O_CREAT)
    fd.basic_close(fdesc)
    recs = _records(datadir)
    assert [(pl.KIND_NAMES[r.kind], r.path) for r in recs] == [
        ("truncate", "pg_wal/old"), ("create", "pg_wal/new")]
    assert recs[0].pre == b"old contents"


def test_skip_fault_lies_about_fsync(datadir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(os, "fsync", lambda fileno: calls.append(fileno))
    fd.configure_fault_injection("fsync:base/*:skip")
    f = _existing(datadir, "base/5/1", b"a" * PAGE)
    f.write(b"b" * PAGE, 0)
    f.sync()
    f.datasync()
    fd.fsync_fname("pg_wal", isdir=True)
    assert len(calls) == 1  # only pg_wal's
    assert _kinds(datadir) == [("write", "base/5/1"), ("fsync", "pg_wal")]
    for bad in ("write:base/*:skip", "fsync:base/*:skip:EIO"):
        with pytest.raises(ValueError, match="skip"):
            fd.parse_fault_spec(bad)


def test_fsync_off_journals_no_fsync(datadir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fd, "enable_fsync", False)
    f = _existing(datadir, "base/5/1", b"a")
    f.sync()
    assert _kinds(datadir) == []


# -- rolling back -------------------------------------------------------------------------

def test_worst_case_drops_unsynced_writes_and_keeps_synced_ones(datadir: Path) -> None:
    f = _existing(datadir, "base/5/1", b"o" * 2 * PAGE)
    g = _existing(datadir, "base/5/2", b"o" * PAGE)
    f.write(b"a" * PAGE, 0)
    f.sync()
    f.write(b"b" * PAGE, PAGE)
    g.write(b"c" * PAGE, 0)
    f.write(b"d" * PAGE, 0)  # after the fsync: unsynced although page 0 was synced once
    f.close()
    g.close()
    out = simulate(str(datadir), seed=1, worst_case=True)
    assert (datadir / "base/5/1").read_bytes() == b"a" * PAGE + b"o" * PAGE
    assert (datadir / "base/5/2").read_bytes() == b"o" * PAGE
    assert (out.writes_unsynced, out.writes_dropped, out.writes_kept) == (3, 3, 0)
    assert out.files_touched == ["base/5/1", "base/5/2"]
    assert not (datadir / pl.DIRNAME).exists()  # the journal is gone


def test_dropped_extension_is_truncated(datadir: Path) -> None:
    f = _existing(datadir, "base/5/1", b"o" * PAGE)
    f.extend(b"e" * PAGE, PAGE)
    f.extend(b"f" * PAGE, 2 * PAGE)
    f.close()
    simulate(str(datadir), seed=1, worst_case=True)
    assert (datadir / "base/5/1").read_bytes() == b"o" * PAGE


def test_newer_kept_extension_keeps_the_file_long(datadir: Path) -> None:
    """Whatever is kept or dropped, the file is a prefix-consistent mix: each sector
    holds its original bytes or one written there, and it ends at one of the sizes
    the file had."""
    f = _existing(datadir, "base/5/1", b"o" * PAGE)
    f.write(b"a" * PAGE, 0)
    f.extend(b"e" * PAGE, PAGE)
    f.write(b"b" * PAGE, 0)
    f.extend(b"f" * PAGE, 2 * PAGE)
    f.close()
    seen_sizes = set()
    for i, c in enumerate(_copies(datadir, 40)):
        simulate(str(c), seed=i)
        data = (c / "base/5/1").read_bytes()
        seen_sizes.add(len(data))
        assert len(data) % 512 == 0 and PAGE <= len(data) <= 3 * PAGE
        for s in range(0, len(data), 512):
            sector = data[s:s + 512]
            allowed = {b"o", b"a", b"b"} if s < PAGE else {b"\0", b"e"} if s < 2 * PAGE \
                else {b"\0", b"f"}
            assert len(set(sector)) == 1 and sector[:1] in allowed, (i, s, sector[:4])
    assert len(seen_sizes) > 1


def test_torn_page_mixes_old_and_new_sectors(datadir: Path) -> None:
    f = _existing(datadir, "base/5/1", b"o" * PAGE)
    f.write(b"n" * PAGE, 0)
    f.close()
    torn = 0
    for i, c in enumerate(_copies(datadir, 30)):
        out = simulate(str(c), seed=i)
        data = (c / "base/5/1").read_bytes()
        sectors = {data[s:s + 512] for s in range(0, PAGE, 512)}
        assert sectors <= {b"o" * 512, b"n" * 512}
        if out.writes_torn:
            torn += 1
            assert len(sectors) == 2 and out.pages_torn == 1
        else:
            assert len(sectors) == 1
    assert torn > 0


def test_one_aligned_sector_is_atomic(datadir: Path) -> None:
    """pg_control's rewrite (one sector) is kept or dropped whole, never torn."""
    f = _existing(datadir, "global_control", b"o" * PAGE)
    f.write(b"n" * 512, 0)
    f.close()
    results = set()
    for i, c in enumerate(_copies(datadir, 20)):
        out = simulate(str(c), seed=i)
        assert out.writes_torn == 0
        results.add((c / "global_control").read_bytes()[:512])
    assert results == {b"o" * 512, b"n" * 512}


def test_same_seed_same_outcome(datadir: Path) -> None:
    f = _existing(datadir, "base/5/1", b"o" * 4 * PAGE)
    for i in range(8):
        f.write(bytes([65 + i]) * PAGE, (i % 4) * PAGE)
    f.close()
    g = fd.path_name_open_file("base/5/2", os.O_RDWR | os.O_CREAT | os.O_EXCL)
    g.extend(b"g" * PAGE, 0)
    g.close()
    a, b, c = _copies(datadir, 3)
    out_a, out_b = simulate(str(a), seed=42), simulate(str(b), seed=42)
    assert out_a == out_b and _snapshot(a) == _snapshot(b)
    results = set()
    for seed, x in enumerate(_copies(c, 6)):
        simulate(str(x), seed=seed)
        results.add(tuple(_snapshot(x).items()))
    assert len(results) > 1  # other seeds, other outcomes


def test_file_created_without_directory_sync_can_vanish(datadir: Path) -> None:
    f = fd.path_name_open_file("base/5/100", os.O_RDWR | os.O_CREAT | os.O_EXCL)
    f.extend(b"x" * PAGE, 0)
    f.sync()  # the contents are synced, the directory entry is not
    f.close()
    unsynced, synced = _copies(datadir, 2)
    out = simulate(str(unsynced), seed=1, worst_case=True)
    assert not (unsynced / "base/5/100").exists()
    assert out.entries_undone == ["create base/5/100"]
    # with the directory synced the entry is covered
    fd.configure_power_loss(True, str(synced))
    fd.set_data_directory(str(synced))
    fd.fsync_fname("base/5", isdir=True)
    out = simulate(str(synced), seed=1, worst_case=True)
    assert (synced / "base/5/100").read_bytes() == b"x" * PAGE
    assert out.entries_undone == [] and out.dir_changes_unsynced == 0


def test_undone_creation_takes_its_writes(datadir: Path) -> None:
    f = fd.path_name_open_file("base/5/100", os.O_RDWR | os.O_CREAT | os.O_EXCL)
    f.extend(b"x" * PAGE, 0)
    f.write(b"y" * PAGE, 0)
    f.close()
    out = simulate(str(datadir), seed=1, worst_case=True)
    assert out.writes_gone == 2 and out.writes_dropped == 0


def test_rename_and_unlink_undone(datadir: Path) -> None:
    (datadir / "pg_wal" / "a").write_bytes(b"A")
    (datadir / "pg_wal" / "b").write_bytes(b"B")
    (datadir / "pg_wal" / "c").write_bytes(b"C")
    fd.rename("pg_wal/a", "pg_wal/b")  # replaces b
    fd.unlink("pg_wal/c")
    fd.unlink("pg_wal/b")  # a's inode under the name b
    out = simulate(str(datadir), seed=1, worst_case=True)
    assert {p.name: p.read_bytes() for p in (datadir / "pg_wal").iterdir()} == \
        {"a": b"A", "b": b"B", "c": b"C"}
    assert out.entries_undone == ["unlink pg_wal/b", "unlink pg_wal/c",
                                  "rename pg_wal/a -> pg_wal/b"]


def test_write_under_old_name_is_undone_where_the_file_now_lives(datadir: Path) -> None:
    f = _existing(datadir, "pg_wal/tmp", b"o" * PAGE)
    f.write(b"n" * PAGE, 0)
    f.close()
    fd.rename("pg_wal/tmp", "pg_wal/seg")
    fd.fsync_fname("pg_wal", isdir=True)  # the rename is durable, the write is not
    simulate(str(datadir), seed=1, worst_case=True)
    assert (datadir / "pg_wal/seg").read_bytes() == b"o" * PAGE
    assert not (datadir / "pg_wal/tmp").exists()


def test_kept_rename_keeps_the_creation_of_its_source(datadir: Path) -> None:
    """Directory changes are decided newest-first; a kept one forces what it needs."""
    fdesc = fd.basic_open_file("pg_wal/tmp", os.O_RDWR | os.O_CREAT | os.O_EXCL)
    fd.pg_pwrite(fdesc, b"z" * PAGE, 0)
    fd.pg_fsync(fdesc)
    fd.basic_close(fdesc)
    fd.rename("pg_wal/tmp", "pg_wal/seg")
    names = set()
    for i, c in enumerate(_copies(datadir, 20)):
        simulate(str(c), seed=i)
        present = tuple(sorted(p.name for p in (c / "pg_wal").iterdir()))
        names.add(present)
        for p in (c / "pg_wal").iterdir():
            assert p.read_bytes() == b"z" * PAGE
    assert names == {(), ("tmp",), ("seg",)}


def test_link_undone_and_mkdir_undone(datadir: Path) -> None:
    (datadir / "pg_wal" / "t").write_bytes(b"T")
    fd.link("pg_wal/t", "pg_wal/s")
    fd.make_pg_directory("base/7")
    f = fd.path_name_open_file("base/7/1", os.O_RDWR | os.O_CREAT | os.O_EXCL)
    f.extend(b"x" * PAGE, 0)
    f.close()
    out = simulate(str(datadir), seed=1, worst_case=True)
    assert not (datadir / "pg_wal" / "s").exists() and (datadir / "pg_wal" / "t").exists()
    assert not (datadir / "base" / "7").exists()
    assert "mkdir base/7" in out.entries_undone


def test_truncate_undone(datadir: Path) -> None:
    f = _existing(datadir, "base/5/1", b"a" * PAGE + b"b" * PAGE)
    f.truncate(PAGE)
    f.close()
    out = simulate(str(datadir), seed=1, worst_case=True)
    assert (datadir / "base/5/1").read_bytes() == b"a" * PAGE + b"b" * PAGE
    assert out.truncates_undone == 1


def test_o_dsync_writes_are_durable(datadir: Path) -> None:
    (datadir / "pg_wal" / "seg").write_bytes(b"o" * PAGE)
    fdesc = fd.basic_open_file("pg_wal/seg", os.O_RDWR | os.O_DSYNC)
    fd.pg_pwrite(fdesc, b"n" * PAGE, 0)
    fd.basic_close(fdesc)
    out = simulate(str(datadir), seed=1, worst_case=True)
    assert (datadir / "pg_wal/seg").read_bytes() == b"n" * PAGE
    assert out.writes_unsynced == 0


def test_command_refuses_while_the_server_runs(datadir: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    (datadir / "postmaster.pid").write_text(f"{os.getpid()}\n{datadir}\n")
    assert powerloss_cmd.main(str(datadir), 1) == 1
    assert "server is running" in capsys.readouterr().out
    assert (datadir / pl.DIRNAME).exists()


def test_command_prints_a_summary(datadir: Path, capsys: pytest.CaptureFixture) -> None:
    f = _existing(datadir, "base/5/1", b"o" * PAGE)
    f.write(b"n" * PAGE, 0)
    f.close()
    assert powerloss_cmd.main(str(datadir), 7, worst_case=True) == 0
    text = capsys.readouterr().out
    assert text.startswith("seed 7: 1 journal records")
    assert "writes not covered by an fsync: 1 (0 kept, 1 dropped" in text
    assert "  base/5/1" in text
    assert powerloss_cmd.main(str(datadir), 7) == 1  # no journal any more
