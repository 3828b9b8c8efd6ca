"""tusk_ctl verify against real clusters: clean after real work (HOT updates,
deletes, VACUUM, aborted transactions, indexes, a kill -9 in the middle of a
pgbench-like run), and each damage done to the files — a line pointer, a
tuple header, a HOT chain link, an index entry's TID or key, a page header —
named by relation, block and offset with exit status 1, on a stopped cluster
and through the SQL functions of a running one."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import time

import psycopg
import pytest

from catalog.pg_control import read_control_file
from storage import bufpage

BLCKSZ = 8192
HOT_UPDATED = 0x4000
HEAP_ONLY = 0x8000


# -- building and damaging -----------------------------------------------------------------------

def _build(cluster) -> dict:
    """Tables with every kind of history; returns where things are."""
    with psycopg.connect(cluster.dsn, autocommit=True) as c:
        c.execute("create table vt (id int primary key, v int, s text)")
        c.execute("create index vt_v on vt (v)")
        c.execute("insert into vt values " + ", ".join(f"({i}, {i * 10}, 'row {i}')"
                                                       for i in range(1, 601)))
        for _ in range(5):  # HOT updates (s is not indexed)
            c.execute("update vt set s = s || '.' where id in (3, 250)")
        c.execute("update vt set v = v + 1 where id between 20 and 30")  # non-HOT
        c.execute("delete from vt where id between 100 and 140")
        with pytest.raises(psycopg.errors.UniqueViolation):
            c.execute("insert into vt values (601, 6010, 'x'), (1, 1, 'dup')")
        c.execute("begin")
        c.execute("insert into vt values (700, 7000, 'rolled back')")
        c.execute("update vt set s = 'rolled back' where id = 5")
        c.execute("rollback")
        c.execute("vacuum vt")
        for _ in range(3):  # a HOT chain not pruned yet (the last page has room)
            c.execute("update vt set s = s || '!' where id = 590")
        c.execute("delete from vt where id = 591")
        c.execute("create table nulls (a int, b text, c bigint)")
        c.execute("insert into nulls values (1, null, 2), (null, 'x', null), (3, 'y', 4)")
        dboid = c.execute("select oid from pg_database where datname = current_database()"
                          ).fetchone()[0]
        files = {name: f"base/{dboid}/" + str(c.execute(
            "select relfilenode from pg_class where relname = %s", (name,)).fetchone()[0])
            for name in ("vt", "vt_pkey", "vt_v")}
    return {"files": files}


def _tids(files: Files, rel: str, ident: int) -> list[tuple[int, int]]:
    """Every tuple version of row ``ident`` (its first column, an int4)."""
    out = []
    for blk in range(files.nblocks(rel)):
        page = files.read(rel, blk)
        for off in range(1, _maxoff(page) + 1):
            o, flags, _length = _lp(page, off)
            if flags == 1 and struct.unpack_from("<i", page, o + page[o + 22])[0] == ident:
                out.append((blk, off))
    return out


class Files:
    """Pages of a stopped cluster's relation files, rewritten with their
    checksum recomputed (so that what is tested is the check, not the checksum)."""

    def __init__(self, datadir) -> None:
        self.datadir = datadir
        self.checksums = bool(read_control_file(str(datadir)).data_checksum_version)

    def read(self, rel: str, blkno: int) -> bytearray:
        with open(self.datadir / rel, "rb") as f:
            f.seek(blkno * BLCKSZ)
            return bytearray(f.read(BLCKSZ))

    def write(self, rel: str, blkno: int, page: bytearray) -> None:
        if self.checksums:
            bufpage.page_set_checksum_inplace(page, blkno)
        with open(self.datadir / rel, "r+b") as f:
            f.seek(blkno * BLCKSZ)
            f.write(page)

    def nblocks(self, rel: str) -> int:
        return os.path.getsize(self.datadir / rel) // BLCKSZ


def _lp(page, off: int) -> tuple[int, int, int]:
    w = struct.unpack_from("<I", page, 24 + 4 * (off - 1))[0]
    return w & 0x7FFF, (w >> 15) & 3, w >> 17


def _set_lp(page, off: int, lp_off: int, flags: int, length: int) -> None:
    struct.pack_into("<I", page, 24 + 4 * (off - 1), lp_off | (flags << 15) | (length << 17))


def _maxoff(page) -> int:
    return (struct.unpack_from("<H", page, 12)[0] - 24) // 4


def _leaf_item(files: Files, rel: str, tid: tuple[int, int]) -> tuple[int, int]:
    """(block, offset) of the leaf entry pointing at heap ``tid``."""
    for blk in range(1, files.nblocks(rel)):
        page = files.read(rel, blk)
        special = struct.unpack_from("<H", page, 16)[0]
        flags = struct.unpack_from("<H", page, special + 12)[0]
        if not flags & 1:  # BTP_LEAF
            continue
        for off in range(1, _maxoff(page) + 1):
            o = _lp(page, off)[0]
            hi, lo, pos = struct.unpack_from("<HHH", page, o)
            if ((hi << 16) | lo, pos) == tid:
                return blk, off
    raise AssertionError(f"no leaf entry for {tid}")


def _set_item_tid(page, off: int, tid: tuple[int, int]) -> None:
    o = _lp(page, off)[0]
    struct.pack_into("<HHH", page, o, tid[0] >> 16, tid[0] & 0xFFFF, tid[1])


def _verify(cluster, *args: str):
    return cluster.ctl("verify", "-D", str(cluster.datadir), *args)


def _problems(out) -> list[str]:
    lines = out.stdout.strip().splitlines()
    assert lines and "problem(s)" in lines[-1], out.stdout + out.stderr
    return lines[:-1]


# -- the stopped cluster -------------------------------------------------------------------------

@pytest.fixture
def built(server, tmp_path):
    """A stopped cluster after _build, verified clean, with a pristine copy of
    its relation files to restore between damages."""
    info = _build(server)
    assert server.stop() == 0
    f = Files(server.datadir)
    info["tids"] = {i: _tids(f, info["files"]["vt"], i)[0] for i in (50, 60, 590, 500)}
    out = _verify(server)
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"\d+ relations \(\d+ indexes\), \d+ pages, \d+ tuples, \d+ index entries "
                     r"checked \(stopped cluster\): 0 problem\(s\)", out.stdout), out.stdout
    saved = {}
    for name, rel in info["files"].items():
        saved[name] = tmp_path / name
        shutil.copy(server.datadir / rel, saved[name])
    info["restore"] = lambda: [shutil.copy(saved[n], server.datadir / r)
                               for n, r in info["files"].items()]
    info["server"] = server
    return info


def _damage_and_check(built, damage, expected: list[str]) -> None:
    built["restore"]()
    damage(Files(built["server"].datadir))
    out = _verify(built["server"])
    assert out.returncode == 1, out.stdout + out.stderr
    assert sorted(_problems(out)) == sorted(expected), out.stdout


def test_clean_cluster_then_damaged_line_pointer_and_header(built):
    vt = built["files"]["vt"]
    blk, off = built["tids"][50]

    def bad_line_pointer(f: Files) -> None:
        page = f.read(vt, blk)
        lp_off, flags, length = _lp(page, off)
        _set_lp(page, off, lp_off + 3, flags, length)  # no longer MAXALIGNed
        f.write(vt, blk, page)

    # The tuple is unreadable, so the index entries pointing at it are not
    # required: only the line pointer is reported.
    _damage_and_check(built, bad_line_pointer, [
        f'relation "vt" ({vt}), block {blk}, offset {off}: line pointer to page offset '
        f"{_lp(Files(built['server'].datadir).read(vt, blk), off)[0] + 3} is not maximally "
        "aligned"])

    def bad_hoff(f: Files) -> None:
        page = f.read(vt, blk)
        page[_lp(page, off)[0] + 22] = 32
        f.write(vt, blk, page)

    _damage_and_check(built, bad_hoff, [
        f'relation "vt" ({vt}), block {blk}, offset {off}: tuple data should begin at byte 24, '
        "but actually begins at byte 32 (3 attributes, no nulls)"])

    def bad_page_header(f: Files) -> None:
        page = f.read(vt, 1)
        struct.pack_into("<HH", page, 12, 8000, 100)  # pd_lower past pd_upper
        f.write(vt, 1, page)

    _damage_and_check(built, bad_page_header, [
        f'relation "vt" ({vt}), block 1: corrupt page header'])


def test_torn_extension_is_a_note_and_the_next_extension_writes_over_it(built):
    """A power cut in the middle of extending a table leaves a partial last block.
    As PostgreSQL's mdnblocks, the server counts whole blocks only, and the next
    extension writes over the partial one: verify notes it and stays clean."""
    built["restore"]()
    server = built["server"]
    vt = server.datadir / built["files"]["vt"]
    size = vt.stat().st_size
    with open(vt, "ab") as f:
        f.write(b"\xab" * 3072)  # six sectors of a block that was being written
    out = _verify(server)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f'note: relation "vt" ({built["files"]["vt"]}): file {vt} is {size + 3072} bytes, ' \
        "not a multiple of 8192; the partial last block is ignored" in out.stdout, out.stdout
    server.start()
    with psycopg.connect(server.dsn, autocommit=True) as c:
        assert c.execute("select count(*) from vt").fetchone()[0] == 558
        c.execute("insert into vt values " + ", ".join(  # more than the free space left
            f"({1000 + i}, {i}, repeat('x', 500))" for i in range(20)))
        assert c.execute("select count(*) from vt").fetchone()[0] == 578
    assert server.stop() == 0
    assert vt.stat().st_size % 8192 == 0
    out = _verify(server)
    assert out.returncode == 0 and "note:" not in out.stdout, out.stdout


def test_damaged_hot_chain(built):
    vt = built["files"]["vt"]
    blk, _ = built["tids"][590]
    page = Files(built["server"].datadir).read(vt, blk)
    preds = [off for off in range(1, _maxoff(page) + 1) if _lp(page, off)[1] == 1
             and struct.unpack_from("<H", page, _lp(page, off)[0] + 18)[0] & HOT_UPDATED]
    assert preds, "the unpruned HOT chain of id 590 is on this page"
    pred = preds[0]

    def ctid_off_page(f: Files) -> None:
        p = f.read(vt, blk)
        struct.pack_into("<HH", p, _lp(p, pred)[0] + 12, 0, blk + 1)  # t_ctid's block
        f.write(vt, blk, p)

    # The rest of the chain is now unreachable from its root.
    out_lines = [f'relation "vt" ({vt}), block {blk}, offset {pred}: HOT-updated tuple\'s '
                 f"t_ctid points to block {blk + 1}, not to its own page"]
    built["restore"]()
    ctid_off_page(Files(built["server"].datadir))
    out = _verify(built["server"])
    assert out.returncode == 1
    problems = _problems(out)
    assert out_lines[0] in problems, out.stdout
    assert all(p.startswith(f'relation "vt" ({vt}), block {blk}, offset ') for p in problems)
    assert any("heap-only tuple is not reachable" in p for p in problems), problems

    def successor_not_heap_only(f: Files) -> None:
        p = f.read(vt, blk)
        succ = struct.unpack_from("<H", p, _lp(p, pred)[0] + 16)[0]
        o = _lp(p, succ)[0]
        im2 = struct.unpack_from("<H", p, o + 18)[0]
        struct.pack_into("<H", p, o + 18, im2 & ~HEAP_ONLY)
        f.write(vt, blk, p)

    built["restore"]()
    successor_not_heap_only(Files(built["server"].datadir))
    out = _verify(built["server"])
    assert out.returncode == 1
    assert any(f"block {blk}, offset {pred}: HOT update produced a tuple that is not heap-only"
               in p for p in _problems(out)), out.stdout


def test_damaged_index_entries(built):
    files = built["files"]
    vt, pkey, vt_v = files["vt"], files["vt_pkey"], files["vt_v"]
    t50, t60 = built["tids"][50], built["tids"][60]
    lblk, loff = _leaf_item(Files(built["server"].datadir), pkey, t50)

    def entry_moved(f: Files) -> None:  # the entry for id 50 now names id 60's tuple
        p = f.read(pkey, lblk)
        _set_item_tid(p, loff, t60)
        f.write(pkey, lblk, p)

    _damage_and_check(built, entry_moved, [
        f'relation "vt" ({vt}), block {t50[0]}, offset {t50[1]}: tuple has no entry in index '
        '"vt_pkey"'])

    heap_page = Files(built["server"].datadir).read(vt, t50[0])
    unused = [o for o in range(1, _maxoff(heap_page) + 1) if _lp(heap_page, o)[1] == 0]
    assert unused, "VACUUM left unused line pointers where ids 100..140 were"

    def entry_to_unused(f: Files) -> None:
        p = f.read(pkey, lblk)
        _set_item_tid(p, loff, (t50[0], unused[0]))
        f.write(pkey, lblk, p)

    # Keys are unique, so the TID change keeps the leaf in order.
    _damage_and_check(built, entry_to_unused, [
        f'relation "vt_pkey" ({pkey}), block {lblk}, offset {loff}: index entry points to heap '
        f"tuple ({t50[0]},{unused[0]}): an unused line pointer",
        f'relation "vt" ({vt}), block {t50[0]}, offset {t50[1]}: tuple has no entry in index '
        '"vt_pkey"'])

    vblk, voff = _leaf_item(Files(built["server"].datadir), vt_v, t50)

    def wrong_key(f: Files) -> None:  # v = 500 stored as 501: still in order (v = id * 10)
        p = f.read(vt_v, vblk)
        struct.pack_into("<i", p, _lp(p, voff)[0] + 8, 501)
        f.write(vt_v, vblk, p)

    _damage_and_check(built, wrong_key, [
        f'relation "vt" ({vt}), block {t50[0]}, offset {t50[1]}: index "vt_v" has key(s) (501,) '
        "for this tuple, but its values give (500,)"])

    def beyond_heap(f: Files) -> None:
        p = f.read(pkey, lblk)
        _set_item_tid(p, loff, (f.nblocks(vt) + 3, 1))
        f.write(pkey, lblk, p)

    built["restore"]()
    beyond_heap(Files(built["server"].datadir))
    out = _verify(built["server"], "--json")
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    assert doc["mode"] == "stopped" and doc["index_entries"] > 1000
    where = {(p["relation"], p["block"], p["offset"]) for p in doc["details"]}
    assert where == {("vt_pkey", lblk, loff), ("vt", t50[0], t50[1])}, doc["details"]
    assert sorted(doc["problems"]) == sorted(_problems(_verify(built["server"])))


def test_crashed_cluster_is_refused_until_recovered(server):
    with psycopg.connect(server.dsn, autocommit=True) as c:
        c.execute("create table k (id int primary key)")
        c.execute("insert into k select 1")
    os.killpg(server.pid, signal.SIGKILL)
    server.proc.wait(10)
    out = _verify(server)
    assert out.returncode == 2 and "not shut down cleanly" in out.stdout, out.stdout
    server.start()  # recovery (and the old shared memory removed)
    assert server.stop() == 0
    out = _verify(server)
    assert out.returncode == 0, out.stdout + out.stderr


# -- a kill -9 in the middle of a pgbench-like run --------------------------------------------

_SCRIPT = """\\set aid random(1, 2000)
\\set tid random(1, 10)
\\set delta random(-5000, 5000)
BEGIN;
UPDATE acc SET abalance = abalance + :delta WHERE aid = :aid;
UPDATE tel SET tbalance = tbalance + :delta WHERE tid = :tid;
INSERT INTO hist (tid, aid, delta) VALUES (:tid, :aid, :delta);
END;
"""


def test_crash_recovery_of_a_pgbench_like_run_verifies_clean(server, tmp_path):
    with psycopg.connect(server.dsn, autocommit=True) as c:
        c.execute("create table acc (aid int primary key, abalance int, filler char(84)) "
                  "with (fillfactor = 100)")
        c.execute("create table tel (tid int primary key, tbalance int)")
        c.execute("create table hist (id serial primary key, tid int, aid int, delta int)")
        c.execute("create index hist_aid on hist (aid)")
        c.execute("insert into acc select 1, 0, ''")
        c.execute("insert into acc values " + ", ".join(f"({i}, 0, '')" for i in range(2, 2001)))
        c.execute("insert into tel values " + ", ".join(f"({i}, 0)" for i in range(1, 11)))
    script = tmp_path / "tpcb.sql"
    script.write_text(_SCRIPT)
    bench = subprocess.Popen(
        ["pgbench", "-h", server.host, "-p", str(server.port), "-U", server.user, "-n",
         "-M", "prepared", "-c", "4", "-j", "2", "-T", "30", "-f", str(script), "postgres"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    with psycopg.connect(server.dsn, autocommit=True) as c:
        c.execute("vacuum tel")  # pruned chains and unused line pointers mid-run
    time.sleep(1)
    os.killpg(server.pid, signal.SIGKILL)
    server.proc.wait(10)
    bench.communicate(timeout=60)
    server.start()
    online = _verify(server)
    assert online.returncode == 0, online.stdout + online.stderr
    assert "checked (running cluster): 0 problem(s)" in online.stdout
    assert server.stop() == 0
    out = _verify(server)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 problem(s)" in out.stdout


# -- a running cluster ---------------------------------------------------------------------------

def test_running_cluster_clean_then_damaged_page_reported(built):
    server = built["server"]
    vt, pkey = built["files"]["vt"], built["files"]["vt_pkey"]
    t50, t60 = built["tids"][50], built["tids"][60]
    built["restore"]()
    lblk, loff = _leaf_item(Files(server.datadir), pkey, t50)
    server.start()
    out = _verify(server)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "checked (running cluster): 0 problem(s)" in out.stdout
    with psycopg.connect(server.dsn, autocommit=True) as c:
        assert c.execute("select verify_heapam('vt')").fetchone() == ([],)
        c.execute("select bt_index_check('vt_pkey', true)")
        c.execute("select bt_index_parent_check('vt_v', true)")
    assert server.stop() == 0
    # Damaged while stopped, so that no buffer holds the pages when it restarts.
    f = Files(server.datadir)
    page = f.read(pkey, lblk)
    _set_item_tid(page, loff, t60)
    f.write(pkey, lblk, page)
    blk, off = built["tids"][500]
    page = f.read(vt, blk)
    page[_lp(page, off)[0] + 22] = 32
    f.write(vt, blk, page)
    server.start()
    out = _verify(server)
    assert out.returncode == 1, out.stdout + out.stderr
    assert sorted(_problems(out)) == sorted([
        f'relation "vt" ({vt}), block {blk}, offset {off}: tuple data should begin at byte 24, '
        "but actually begins at byte 32 (3 attributes, no nulls)",
        f'relation "vt" ({vt}), block {t50[0]}, offset {t50[1]}: tuple has no entry in index '
        '"vt_pkey"']), out.stdout
    with psycopg.connect(server.dsn, autocommit=True) as c:
        with pytest.raises(psycopg.errors.DataCorrupted):
            c.execute("select bt_index_check('vt_pkey', true)")
        c.execute("select bt_index_check('vt_pkey')")  # the structure alone is sound
        (problems,) = c.execute("select verify_heapam('vt')").fetchone()
        assert problems == [f"block {blk}, offset {off}: tuple data should begin at byte 24, "
                            "but actually begins at byte 32 (3 attributes, no nulls)"]
