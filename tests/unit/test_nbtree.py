"""B-tree indexes (access/nbtree/) on real shared memory with WAL: random inserts
into a multi-level tree, scans with every strategy in both directions, unique
violations, the bottom-up build, bulk delete, concurrent inserters and readers in
forked processes, the structure checker, redo byte-equality against the original
pages, and PostgreSQL 15's pg_waldump reading the records."""

from __future__ import annotations

import random
import struct

import pytest

from access import nbtree
from access.nbtree import nbtinsert, nbtverify, nbtxlog
from access.nbtree.nbtdefs import (
    BT_SPECIAL,
    BTP_LEAF,
    BTP_ROOT,
    OPAQUE,
    P_NONE,
)
from access.nbtree.nbtpage import bt_getmeta
from access.nbtree.nbtutils import NULL, datum_out
from catalog import pg_type as t
from storage import bufmgr, smgr
from storage.relfilenode import MAIN_FORKNUM
from tests.unit.nbtree_harness import FakeHeap, make_index, read_page, scan, tid_of
from utils.elog import PgError

PG_WALDUMP = "/usr/lib/postgresql/15/bin/pg_waldump"



def meta_of(rel) -> tuple:
    return bt_getmeta(read_page(rel, 0))


def check(rel) -> None:
    problems = nbtverify.bt_verify(rel, allow_incomplete_splits=False)
    assert problems == [], problems[:20]


# -- inserts and scans -----------------------------------------------------------------------

def test_random_inserts_and_scans(env):
    env.make(shared_buffers=128, wal_buffers=64)
    rel = make_index()
    nbtree.bt_build_empty(rel)
    assert scan(rel, []) == []
    rng = random.Random(6)
    n = 50_000
    keys = [rng.randrange(20_000) for _ in range(n)]  # plenty of duplicates
    for i, k in enumerate(keys):
        nbtree.bt_insert(rel, [k], tid_of(i), FakeHeap, False)
    entries = sorted((k, tid_of(i)) for i, k in enumerate(keys))
    m = meta_of(rel)
    assert m[3] >= 1, "expected a multi-level tree"
    check(rel)

    assert scan(rel, []) == [tid for _, tid in entries]
    assert scan(rel, [], backward=True) == [tid for _, tid in reversed(entries)]
    for v in (0, 1, 777, 10_000, 19_999, 20_000, -5, keys[123]):
        for op, pred in (("=", lambda k, v=v: k == v), ("<", lambda k, v=v: k < v),
                         ("<=", lambda k, v=v: k <= v), (">", lambda k, v=v: k > v),
                         (">=", lambda k, v=v: k >= v)):
            want = [tid for k, tid in entries if pred(k)]
            assert scan(rel, [(1, op, v)]) == want, (op, v)
            assert scan(rel, [(1, op, v)], backward=True) == want[::-1], (op, v)
    dup = keys[123]
    assert len(scan(rel, [(1, "=", dup)])) == keys.count(dup) > 1
    # Ranges, redundant and contradictory keys.
    want = [tid for k, tid in entries if 500 <= k < 900]
    assert scan(rel, [(1, ">=", 500), (1, "<", 900)]) == want
    assert scan(rel, [(1, "<", 900), (1, ">", 100), (1, ">=", 500), (1, "<=", 5000)]) == want
    assert scan(rel, [(1, "<", 900), (1, ">=", 500)], backward=True) == want[::-1]
    assert scan(rel, [(1, "=", 5), (1, "=", 6)]) == []
    assert scan(rel, [(1, "=", 5), (1, ">", 6)]) == []
    assert scan(rel, [(1, "=", None)]) == []
    # The scan object: bt_getnext, end, rescan.
    s = nbtree.bt_begin_scan(rel, [(1, "=", dup)])
    first = s.bt_getnext()
    assert first == scan(rel, [(1, "=", dup)])[0]
    s.rescan([(1, ">", 19_998)])
    assert list(s) == [tid for k, tid in entries if k > 19_998]
    assert s.bt_getnext() is None
    assert not bufmgr.pinned_buffers()


def test_wide_keys_make_a_deep_tree(env):
    """Long text keys: internal pages split too (three levels or more)."""
    env.make(shared_buffers=128, wal_buffers=64)
    rel = make_index(columns=(("s", t.TEXTOID),), name="t_s_idx")
    nbtree.bt_build_empty(rel)
    rng = random.Random(8)
    n = 15_000
    keys = [f"{rng.randrange(5000):06d}" + "x" * rng.randrange(60, 120) for _ in range(n)]
    for i, k in enumerate(keys):
        nbtree.bt_insert(rel, [k], tid_of(i), FakeHeap, False)
    assert meta_of(rel)[3] >= 2
    check(rel)
    entries = sorted((k, tid_of(i)) for i, k in enumerate(keys))
    assert scan(rel, []) == [tid for _, tid in entries]
    assert scan(rel, [], backward=True) == [tid for _, tid in reversed(entries)]
    for v in (keys[10], keys[999], "003", "004999", "zzz", ""):
        for op, pred in (("=", lambda k, v=v: k == v), ("<", lambda k, v=v: k < v),
                         (">=", lambda k, v=v: k >= v)):
            want = [tid for k, tid in entries if pred(k)]
            assert scan(rel, [(1, op, v)]) == want, (op, v)
            assert scan(rel, [(1, op, v)], backward=True) == want[::-1], (op, v)


def test_ascending_inserts_pack_leaves_and_use_fastpath(env, monkeypatch):
    env.make(shared_buffers=64, wal_buffers=64)
    # PostgreSQL caches the rightmost leaf only in trees of 3+ levels; allow 2 here.
    monkeypatch.setattr(nbtinsert, "BTREE_FASTPATH_MIN_LEVEL", 1)
    rel = make_index(unique=True, name="pgbench_accounts_pkey", columns=(("aid", t.INT4OID),))
    nbtree.bt_build_empty(rel)
    n = 20_000
    for i in range(n):
        nbtree.bt_insert(rel, [i], tid_of(i), FakeHeap, False)
        if i == n // 2:
            assert rel.target_block != 0xFFFFFFFF  # the rightmost-leaf fast path
    check(rel)
    nleaves = 0
    blk = 1
    nblocks = smgr.smgr_nblocks(rel.smgr, MAIN_FORKNUM)
    for blk in range(1, nblocks):
        page = read_page(rel, blk)
        if OPAQUE.unpack_from(page, BT_SPECIAL)[3] & BTP_LEAF:
            nleaves += 1
    # Rightmost splits leave leaves 90% full: about 367 items each, as PostgreSQL.
    assert nleaves <= n // 330 + 2
    assert scan(rel, [(1, ">=", n - 3)]) == [tid_of(i) for i in range(n - 3, n)]


def test_multicolumn_text_nulls_and_bpchar(env):
    env.make(wal_buffers=64)
    rel = make_index(columns=(("a", t.INT4OID), ("b", t.TEXTOID), ("c", t.BPCHAROID)),
                     name="t_abc_idx")
    nbtree.bt_build_empty(rel)
    rng = random.Random(3)
    rows = []
    words = ["", "a", "ab", "abc", "b", "zz", "é", "日本", "x" * 300, None]
    for i in range(6000):
        a = rng.choice([None, *range(12)])
        b = rng.choice(words)
        c = rng.choice(["q", "q  ", "r", None])
        rows.append((a, b, c))
        nbtree.bt_insert(rel, [a, b, c], tid_of(i), FakeHeap, False)
    check(rel)

    def norm(v):
        return NULL if v is None else (v.rstrip(" ") if isinstance(v, str) else v)

    entries = sorted(((norm(a), norm(b), norm(c[2] if False else c)), tid_of(i))
                     for i, (a, b, c) in enumerate(rows))
    entries = sorted(((norm(r[0]), norm(r[1]), norm(r[2])), tid_of(i))
                     for i, r in enumerate(rows))
    assert scan(rel, []) == [tid for _, tid in entries]
    want = [tid for k, tid in entries if k[0] == 5 and k[1] == "ab"]
    assert scan(rel, [(1, "=", 5), (2, "=", "ab")]) == want
    want = [tid for k, tid in entries if k[0] == 5 and k[1] == "ab" and k[2] == "q"]
    assert scan(rel, [(1, "=", 5), (2, "=", "ab"), (3, "=", "q   ")]) == want
    want = [tid for k, tid in entries if k[0] == 3 and k[1] is not NULL and k[1] > "a"]
    assert scan(rel, [(1, "=", 3), (2, ">", "a")]) == want
    assert scan(rel, [(1, "=", 3), (2, ">", "a")], backward=True) == want[::-1]
    want = [tid for k, tid in entries if k[0] is not NULL and k[0] >= 10]
    assert scan(rel, [(1, ">=", 10)]) == want  # NULLs sort last and never match
    want = [tid for k, tid in entries if k[1] == "b"]
    assert scan(rel, [(2, "=", "b")]) == want  # a non-leading key filters a full scan


def test_unique_violation_messages_and_waits(env, monkeypatch):
    env.make()
    rel = make_index(unique=True, name="pgbench_accounts_pkey", columns=(("aid", t.INT4OID),))
    nbtree.bt_build_empty(rel)
    live: dict[tuple[int, int], int] = {}   # tid -> 0 live, xid in progress

    def heap_check(heap_rel, tid):
        if tid not in live:
            return False, 0
        return True, live[tid]

    monkeypatch.setattr(nbtinsert, "heap_check", heap_check)
    for i in range(1, 2000):
        nbtree.bt_insert(rel, [i], tid_of(i), FakeHeap, True)
        live[tid_of(i)] = 0
    with pytest.raises(PgError) as ei:
        nbtree.bt_insert(rel, [1], (500, 1), FakeHeap, True)
    e = ei.value
    assert e.sqlstate == "23505"
    assert e.message == 'duplicate key value violates unique constraint "pgbench_accounts_pkey"'
    assert e.detail == "Key (aid)=(1) already exists."
    assert not bufmgr.pinned_buffers()
    # A dead duplicate does not conflict; the new entry goes in beside it.
    del live[tid_of(7)]
    nbtree.bt_insert(rel, [7], (500, 2), FakeHeap, True)
    live[(500, 2)] = 0
    assert scan(rel, [(1, "=", 7)]) == [tid_of(7), (500, 2)]
    # An in-progress inserter is waited for, then the check runs again.
    live[tid_of(9)] = 4242
    waited = []

    def xact_wait(xid, relname, tid):
        assert (relname, tid) == ("pgbench_accounts_pkey", (500, 3))
        waited.append(xid)
        del live[tid_of(9)]   # it aborted

    monkeypatch.setattr(nbtinsert, "xact_wait", xact_wait)
    nbtree.bt_insert(rel, [9], (500, 3), FakeHeap, True)
    assert waited == [4242]
    # ... or it committed: then the key exists.
    live[(500, 3)] = 777

    def xact_commits(xid, relname, tid):
        live[(500, 3)] = 0

    monkeypatch.setattr(nbtinsert, "xact_wait", xact_commits)
    with pytest.raises(PgError, match="duplicate key") as ei:
        nbtree.bt_insert(rel, [9], (500, 4), FakeHeap, True)
    assert ei.value.detail == "Key (aid)=(9) already exists."
    # Duplicates spanning leaf pages are all checked: only the last one is live.
    for j in range(1200):
        nbtree.bt_insert(rel, [5000], (600 + j // 100, j % 100 + 1), FakeHeap, False)
    nbtree.bt_insert(rel, [5000], (900, 1), FakeHeap, True)  # all dead: no conflict
    live[(611, 100)] = 0
    with pytest.raises(PgError):
        nbtree.bt_insert(rel, [5000], (900, 2), FakeHeap, True)
    assert len(scan(rel, [(1, "=", 5000)])) == 1201
    check(rel)

    multi = make_index(16390, (("a", t.INT4OID), ("b", t.TEXTOID)), unique=True, name="t_ab_key")
    nbtree.bt_build_empty(multi)
    nbtree.bt_insert(multi, [1, "x"], (1, 1), FakeHeap, True)
    live[(1, 1)] = 0
    nbtree.bt_insert(multi, [1, None], (1, 2), FakeHeap, True)
    nbtree.bt_insert(multi, [1, None], (1, 3), FakeHeap, True)  # NULLs never conflict
    live[(1, 2)] = live[(1, 3)] = 0
    with pytest.raises(PgError) as ei:
        nbtree.bt_insert(multi, [1, "x"], (1, 4), FakeHeap, True)
    assert ei.value.detail == "Key (a, b)=(1, x) already exists."
    assert ei.value.message == 'duplicate key value violates unique constraint "t_ab_key"'


def test_datum_output_for_details():
    assert datum_out(t.INT4OID, -3) == "-3"
    assert datum_out(t.BOOLOID, True) == "t"
    assert datum_out(t.FLOAT8OID, 1.5) == "1.5"
    assert datum_out(t.FLOAT8OID, 1e15) == "1e+15"
    assert datum_out(t.FLOAT8OID, 123456789012345.0) == "123456789012345"
    assert datum_out(t.FLOAT8OID, 1e-5) == "1e-05"
    assert datum_out(t.FLOAT8OID, 0.0001) == "0.0001"
    assert datum_out(t.FLOAT8OID, float("nan")) == "NaN"
    assert datum_out(t.FLOAT4OID, 0.1) == "0.1"
    assert datum_out(t.TIMESTAMPOID, 0) == "2000-01-01 00:00:00"
    assert datum_out(t.TIMESTAMPOID, 1_500_000) == "2000-01-01 00:00:01.5"
    assert datum_out(t.TEXTOID, None) == "null"


def test_too_big_index_row(env):
    env.make()
    rel = make_index(columns=(("s", t.TEXTOID),), name="t_s_idx")
    nbtree.bt_build_empty(rel)
    with pytest.raises(PgError) as ei:
        nbtree.bt_insert(rel, ["x" * 3000], (3, 4), FakeHeap, False)
    assert ei.value.sqlstate == "54000"
    assert ei.value.message == ('index row size 3016 exceeds btree version 4 maximum 2704 for '
                                'index "t_s_idx"')
    assert ei.value.detail == 'Index row references tuple (3,4) in relation "t".'


# -- build ---------------------------------------------------------------------------------

def test_build_bottom_up(env):
    env.make(shared_buffers=64, wal_buffers=64)
    rel = make_index(unique=True, indkey=(2,))
    rng = random.Random(9)
    n = 100_000
    vals = list(range(n))
    rng.shuffle(vals)
    rows = [(tid_of(i), ["filler", v], True) for i, v in enumerate(vals)]
    res = nbtree.bt_build(None, rel, rows)
    assert res == (float(n), float(n))
    check(rel)
    m = meta_of(rel)
    assert m[2] != P_NONE and m[3] == 1 and m[8] is True  # 273 leaves under one root
    want = sorted((v, tid_of(i)) for i, v in enumerate(vals))
    assert scan(rel, []) == [tid for _, tid in want]
    assert scan(rel, [(1, "=", 4242)]) == [tid_of(vals.index(4242))]
    assert scan(rel, [(1, ">", n - 3)], backward=True) == [tid_of(vals.index(n - 1)),
                                                           tid_of(vals.index(n - 2))]
    # The built tree takes inserts like any other.
    nbtree.bt_insert(rel, [n + 5], (9999, 1), FakeHeap, False)
    nbtree.bt_insert(rel, [-1], (9999, 2), FakeHeap, False)
    check(rel)
    assert scan(rel, [(1, "<", 1)]) == [(9999, 2), tid_of(vals.index(0))]


def test_build_unique_violation_and_dead_tuples(env):
    env.make()
    rel = make_index(unique=True, name="t_pkey", columns=(("id", t.INT4OID),))
    rows = [((0, i + 1), [i % 50], True) for i in range(60)]
    with pytest.raises(PgError) as ei:
        nbtree.bt_build(None, rel, rows)
    assert ei.value.sqlstate == "23505"
    assert ei.value.message == 'could not create unique index "t_pkey"'
    assert ei.value.detail == "Key (id)=(0) is duplicated."
    # Dead duplicates and NULLs are fine.
    rows = [((0, i + 1), [i % 50], i < 50) for i in range(60)]
    rows += [((1, 1), [None], True), ((1, 2), [None], True)]
    nbtree.bt_build(None, rel, rows)
    check(rel)
    assert scan(rel, [(1, "=", 3)]) == [(0, 4), (0, 54)]
    assert len(scan(rel, [])) == 62
    empty = make_index(16391, name="t_empty")
    nbtree.bt_build(None, empty, [])
    assert meta_of(empty)[2] == P_NONE
    assert scan(empty, []) == []
    nbtree.bt_insert(empty, [1], (0, 1), FakeHeap, False)
    assert scan(empty, []) == [(0, 1)]


# -- bulk delete -----------------------------------------------------------------------------

def test_bulk_delete(env):
    env.make(wal_buffers=64)
    rel = make_index()
    nbtree.bt_build_empty(rel)
    n = 20_000
    rng = random.Random(2)
    keys = [rng.randrange(5000) for _ in range(n)]
    for i, k in enumerate(keys):
        nbtree.bt_insert(rel, [k], tid_of(i), FakeHeap, False)
    dead = {tid_of(i) for i in range(n) if i % 3 == 0 or 1000 <= i < 4000}
    assert nbtree.bt_bulk_delete(rel, lambda tid: tid in dead) == len(dead)
    check(rel)
    want = sorted((k, tid_of(i)) for i, k in enumerate(keys) if tid_of(i) not in dead)
    assert scan(rel, []) == [tid for _, tid in want]
    assert nbtree.bt_bulk_delete(rel, lambda tid: tid in dead) == 0
    # Delete everything: empty leaves stay in the tree and still work.
    assert nbtree.bt_bulk_delete(rel, lambda tid: True) == len(want)
    check(rel)
    assert scan(rel, []) == []
    nbtree.bt_insert(rel, [77], (1, 1), FakeHeap, False)
    assert scan(rel, [(1, ">=", 0)]) == [(1, 1)]
    check(rel)


def test_mask_ignores_hints_only():
    page = bytearray(8192)
    from access.nbtree.nbtpage import bt_pageinit

    bt_pageinit(page)
    OPAQUE.pack_into(page, BT_SPECIAL, 0, 0, 0, BTP_LEAF | BTP_ROOT, 7)
    other = bytearray(page)
    other[0:8] = b"\1" * 8
    struct.pack_into("<H", other, 8176 + 14, 0)
    assert nbtxlog.btree_mask(page) == nbtxlog.btree_mask(other)
    struct.pack_into("<I", other, 8176 + 4, 5)   # btpo_next is not a hint
    assert nbtxlog.btree_mask(page) != nbtxlog.btree_mask(other)

