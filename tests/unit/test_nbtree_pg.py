"""PostgreSQL 15 as the oracle for tusk's B-tree pages:

- a bottom-up build (bt_build) of the same rows gives the same pages, byte for
  byte (masked as PostgreSQL's own WAL consistency checking masks them), as
  PostgreSQL's CREATE INDEX;
- an index tusk grew by random inserts, page splits and a bulk delete, copied
  over the file of an index on the same table, passes amcheck's
  bt_index_parent_check(heapallindexed, rootdescend), and PostgreSQL's index scans
  over it return what its sequential scans return.

Skipped when PostgreSQL 15 (server, psql, amcheck) is not installed."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from access import nbtree
from access.nbtree import nbtxlog
from catalog import pg_type as t
from storage import bufmgr, smgr
from storage.relfilenode import MAIN_FORKNUM
from tests.cluster import free_port
from tests.unit.nbtree_harness import BTEnv, FakeHeap, make_index

BINDIR = Path("/usr/lib/postgresql/15/bin")
HAVE_PG = (BINDIR / "postgres").exists() and Path(
    "/usr/share/postgresql/15/extension/amcheck.control").exists()
pytestmark = pytest.mark.skipif(not HAVE_PG, reason="PostgreSQL 15 with amcheck not installed")


class PG:
    """A throw-away PostgreSQL 15 (run as user postgres when we are root)."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="pg15-nbt-"))
        self.datadir = self.base / "data"
        self.port = free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _ctl(self, *args: str) -> None:
        subprocess.run([*self.as_user, str(BINDIR / "pg_ctl"), "-D", str(self.datadir), *args],
                       check=True, capture_output=True, cwd=self.base)

    def init(self) -> None:
        os.chmod(self.base, 0o755)
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        subprocess.run([*self.as_user, str(BINDIR / "initdb"), "-D", str(self.datadir), "-U",
                        "postgres", "--locale=C", "-E", "UTF8", "--auth=trust", "--no-sync"],
                       check=True, capture_output=True, cwd=self.base)
        self.start()

    def start(self) -> None:
        self._ctl("-w", "-l", str(self.base / "log"), "-o",
                  f"-p {self.port} -k {self.base} -c listen_addresses='' -c fsync=off", "start")

    def stop(self) -> None:
        self._ctl("-w", "-m", "fast", "stop")

    def destroy(self) -> None:
        try:
            self._ctl("-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.base, ignore_errors=True)

    def sql(self, q: str, stdin: str | None = None) -> str:
        r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h",
                            str(self.base), "-p", str(self.port), "-U", "postgres", "-d",
                            "postgres", "-c", q], input=stdin, capture_output=True, text=True,
                           timeout=300)
        if r.returncode != 0:
            raise AssertionError(f"{q}: {r.stderr}")
        return r.stdout.strip()

    def ctids(self, table: str) -> list[tuple[tuple[int, int], list[str]]]:
        out = self.sql(f"SELECT ctid, * FROM {table}")
        rows = []
        for line in out.splitlines():
            ctid, *vals = line.split("|")
            b, o = ctid.strip("()").split(",")
            rows.append(((int(b), int(o)), vals))
        return rows

    def relpath(self, index: str) -> Path:
        return self.datadir / self.sql(f"SELECT pg_relation_filepath('{index}')")


@pytest.fixture(scope="module")
def pg():
    server = PG()
    try:
        server.init()
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        server.destroy()
        pytest.skip(f"could not start PostgreSQL 15: {exc}")
    yield server
    server.destroy()


@pytest.fixture
def env(tmp_path):
    e = BTEnv(tmp_path)
    e.make(shared_buffers=256, wal_buffers=64)
    yield e
    e.close()


def _file_pages(path: Path) -> list[bytes]:
    data = path.read_bytes()
    return [data[i:i + 8192] for i in range(0, len(data), 8192)]


def _tusk_pages(rel) -> list[bytes]:
    pages = []
    for b in range(smgr.smgr_nblocks(rel.smgr, MAIN_FORKNUM)):
        buf = bufmgr.read_buffer(rel.smgr, b)
        bufmgr.lock_buffer(buf, bufmgr.BUFFER_LOCK_SHARE)
        pages.append(bytes(bufmgr.buffer_get_page(buf)))
        bufmgr.unlock_release_buffer(buf)
    return pages


def _same_pages(mine: list[bytes], theirs: list[bytes]) -> None:
    assert len(mine) == len(theirs)
    for blk, (a, b) in enumerate(zip(mine, theirs, strict=True)):
        assert nbtxlog.btree_mask(a) == nbtxlog.btree_mask(b), f"block {blk} differs"


def test_build_matches_create_index(pg, env):
    rng = random.Random(1)
    vals = list(range(30_000))
    rng.shuffle(vals)
    pg.sql("CREATE TABLE b1(k int4)")
    pg.sql("COPY b1 FROM STDIN", "\n".join(map(str, vals)) + "\n")
    pg.sql("CREATE UNIQUE INDEX b1_k ON b1(k)")
    pg.sql("CHECKPOINT")
    rows = [(tid, [int(v[0])], True) for tid, v in pg.ctids("b1")]
    rel = make_index(17001, unique=True, name="b1_k")
    nbtree.bt_build(None, rel, rows)
    _same_pages(_tusk_pages(rel), _file_pages(pg.relpath("b1_k")))

    # Two columns with text and many equal keys: pivots keep a heap TID or are
    # truncated to the first column.
    words = ["alpha", "beta", "gamma", "delta" * 10, "z"]
    data = [(rng.randrange(40), rng.choice(words)) for _ in range(12_000)]
    pg.sql("CREATE TABLE b2(a int4, s text)")
    pg.sql("COPY b2 FROM STDIN", "".join(f"{a}\t{s}\n" for a, s in data))
    pg.sql("CREATE INDEX b2_as ON b2(a, s) WITH (deduplicate_items = off)")
    pg.sql("CHECKPOINT")
    rows = [(tid, [int(v[0]), v[1]], True) for tid, v in pg.ctids("b2")]
    rel2 = make_index(17002, (("a", t.INT4OID), ("s", t.TEXTOID)), name="b2_as")
    nbtree.bt_build(None, rel2, rows)
    _same_pages(_tusk_pages(rel2), _file_pages(pg.relpath("b2_as")))
    # The structure checker accepts PostgreSQL's files as they are.
    assert nbtree.bt_verify_file(str(pg.relpath("b1_k")), rel.desc) == []
    assert nbtree.bt_verify_file(str(pg.relpath("b2_as")), rel2.desc) == []


def test_tusk_reads_postgresql_grown_indexes(pg, env):
    """PostgreSQL grows an index by random inserts (its own split choices and
    suffix truncation); tusk's checker accepts the file and tusk's scans over a
    copy of it return what the rows say."""
    rng = random.Random(3)
    rows = [(rng.randrange(3000), rng.choice(["k", "kk", "q" * 40, "zz"])) for _ in range(15_000)]
    pg.sql("CREATE TABLE p(a int4, s text)")
    pg.sql("CREATE INDEX p_as ON p(a, s) WITH (deduplicate_items = off)")
    pg.sql("COPY p FROM STDIN", "".join(f"{a}\t{s}\n" for a, s in rows))  # one by one
    pg.sql("CHECKPOINT")
    path = pg.relpath("p_as")
    rel = make_index(17020, (("a", t.INT4OID), ("s", t.TEXTOID)), name="p_as")
    assert nbtree.bt_verify_file(str(path), rel.desc) == []
    data = path.read_bytes()
    for b in range(len(data) // 8192):
        smgr.smgr_extend(rel.smgr, MAIN_FORKNUM, b, data[b * 8192:(b + 1) * 8192])
    assert nbtree.bt_verify(rel) == []
    heap = {tid: (int(v[0]), v[1]) for tid, v in pg.ctids("p")}
    entries = sorted((v, tid) for tid, v in heap.items())
    assert list(nbtree.bt_begin_scan(rel, [])) == [tid for _, tid in entries]
    for a in (0, 1500, 2999):
        want = [tid for (x, _), tid in entries if x == a]
        assert list(nbtree.bt_begin_scan(rel, [(1, "=", a)])) == want
        want = [tid for (x, s), tid in entries if x == a and s == "kk"]
        assert list(nbtree.bt_begin_scan(rel, [(1, "=", a), (2, "=", "kk")])) == want
    # And tusk can go on inserting into it.
    for i in range(2000):
        nbtree.bt_insert(rel, [rng.randrange(3000), "new"], (5000 + i // 100, i % 100 + 1),
                         FakeHeap, False)
    assert nbtree.bt_verify(rel) == []


def _install(pg: PG, rels_and_indexes) -> None:
    """Stop PostgreSQL and put tusk's pages (LSN and checksum cleared) in place of
    the named indexes' files."""
    paths = [(rel, pg.relpath(name)) for rel, name in rels_and_indexes]
    contents = []
    for rel, path in paths:
        data = bytearray()
        for p in _tusk_pages(rel):
            p = bytearray(p)
            p[0:10] = bytes(10)
            data += p
        contents.append((path, bytes(data)))
    pg.stop()
    for path, data in contents:
        st = path.stat()
        path.write_bytes(data)
        os.chown(path, st.st_uid, st.st_gid)
    pg.start()


def test_amcheck_accepts_tusk_grown_indexes(pg, env):
    rng = random.Random(2)
    n = 20_000
    rows = [(rng.randrange(6000), "".join(rng.choice("abcdefgh") for _ in range(rng.randrange(1, 30))))
            for _ in range(n)]
    pg.sql("CREATE TABLE g(k int4, s text)")
    pg.sql("COPY g FROM STDIN", "".join(f"{k}\t{s}\n" for k, s in rows))
    pg.sql("CREATE INDEX g_k ON g(k) WITH (deduplicate_items = off)")
    pg.sql("CREATE INDEX g_sk ON g(s, k) WITH (deduplicate_items = off)")
    heap = pg.ctids("g")
    # Delete some rows and vacuum them away in PostgreSQL; tusk's bulk delete drops
    # the same entries from its indexes.
    dead = {tid for tid, _ in heap if (tid[0] * 7 + tid[1]) % 5 == 0}
    dead_list = ",".join(f"'({b},{o})'" for b, o in sorted(dead))
    pg.sql(f"DELETE FROM g WHERE ctid = ANY (ARRAY[{dead_list}]::tid[])")
    pg.sql("VACUUM g")

    ik = make_index(17010, (("k", t.INT4OID),), name="g_k")
    isk = make_index(17011, (("s", t.TEXTOID), ("k", t.INT4OID)), name="g_sk")
    for rel in (ik, isk):
        nbtree.bt_build_empty(rel)
    order = list(heap)
    rng.shuffle(order)
    for tid, (k, s) in order:
        nbtree.bt_insert(ik, [int(k)], tid, FakeHeap, False)
        nbtree.bt_insert(isk, [s, int(k)], tid, FakeHeap, False)
    for rel in (ik, isk):
        assert nbtree.bt_bulk_delete(rel, lambda tid: tid in dead) == len(dead)
        assert nbtree.bt_verify(rel) == []

    _install(pg, [(ik, "g_k"), (isk, "g_sk")])
    pg.sql("CREATE EXTENSION IF NOT EXISTS amcheck")
    pg.sql("SELECT bt_index_parent_check('g_k', true, true)")
    pg.sql("SELECT bt_index_parent_check('g_sk', true, true)")
    live = [r for tid, r in heap if tid not in dead]
    for k in (0, 17, 3000, 5999):
        want = sum(1 for r in live if int(r[0]) == k)
        got = pg.sql("SET enable_seqscan = off; SET enable_bitmapscan = off; "
                     f"SELECT count(*) FROM g WHERE k = {k}").splitlines()[-1]
        assert int(got) == want
    got = pg.sql("SET enable_seqscan = off; SET enable_bitmapscan = off; "
                 "SELECT count(*) FROM g WHERE s >= 'b' AND s < 'c'").splitlines()[-1]
    assert int(got) == sum(1 for r in live if "b" <= r[1] < "c")

