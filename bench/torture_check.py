"""The torture command's checks of a recovered cluster against what its clients saw.

- every acknowledged transaction's history row is present, with its content;
- no transaction that was rolled back, or never sent COMMIT, is present;
- every account, teller and branch balance equals the sum of the deltas of the
  history rows present for it (so no transaction is half-present, and no
  update survived without its history row or the reverse), and the four TPC-B
  sums agree;
- side tables: an acknowledged CREATE (not dropped) exists with all its rows, an
  acknowledged DROP is gone, one never committed does not exist, one in flight
  is either absent or whole.

Each check returns a list of failure messages (empty: passed).
"""

from __future__ import annotations

import random
from collections import defaultdict

import psycopg

from bench.torture_load import ABSENT, ACKED, UNKNOWN, LoadRecord

MAX_REPORTED = 5  # messages per kind of failure; the count says how many more


def _capped(kind: str, items: list[str]) -> list[str]:
    if not items:
        return []
    more = f" (and {len(items) - MAX_REPORTED} more)" if len(items) > MAX_REPORTED else ""
    return [f"{kind}: {'; '.join(items[:MAX_REPORTED])}{more}"]


def _rows(conn: psycopg.Connection, sql: str, failures: list[str]) -> list[tuple] | None:
    """The query's rows, or None with the error (XX001 invalid page, ...) noted as a
    failure: reading recovered data must work, and the other checks go on."""
    try:
        return conn.execute(sql).fetchall()
    except psycopg.Error as exc:
        failures.append(f"query failed: {sql}: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0]}")
        return None


def check_history(conn: psycopg.Connection, record: LoadRecord, scale: int
                  ) -> tuple[list[str], dict[int, tuple], dict[int, int]]:
    """(failures, the history rows present by txn, each account's balance by history)."""
    failures: list[str] = []
    present: dict[int, tuple] = {}
    rows = _rows(conn, "SELECT txn, tid, bid, aid, delta FROM pgbench_history", failures)
    if rows is None:
        return failures, present, {}
    dupes, strays, wrong = [], [], []
    for txn, tid, bid, aid, delta in rows:
        if txn in present:
            dupes.append(str(txn))
        present[txn] = (tid, bid, aid, delta)
        t = record.txns.get(txn)
        if t is None or t.fate == ABSENT:
            strays.append(f"txn {txn}")
        elif (t.tid, t.bid, t.aid, t.delta) != (tid, bid, aid, delta):
            wrong.append(f"txn {txn} has {(tid, bid, aid, delta)}, "
                         f"committed {(t.tid, t.bid, t.aid, t.delta)}")
    lost = [str(n) for n, t in sorted(record.txns.items())
            if t.fate == ACKED and n not in present]
    failures += _capped(f"{len(lost)} acknowledged transactions lost", lost)
    failures += _capped("history rows of transactions never committed", strays)
    failures += _capped("history rows with wrong content", wrong)
    failures += _capped("duplicate history rows", dupes)

    # Balances: what the history rows present say each row must hold.
    want: dict[str, dict[int, int]] = {"a": defaultdict(int), "t": defaultdict(int),
                                       "b": defaultdict(int)}
    for tid, bid, aid, delta in present.values():
        want["a"][aid] += delta
        want["t"][tid] += delta
        want["b"][bid] += delta
    # Whole tables: each key 1..N visible exactly once (a lost update or a dead
    # row version come back to life shows here too).
    queries = {"a": "SELECT aid, abalance FROM pgbench_accounts",
               "t": "SELECT tid, tbalance FROM pgbench_tellers",
               "b": "SELECT bid, bbalance FROM pgbench_branches"}
    names = {"a": "account", "t": "teller", "b": "branch"}
    sizes = {"a": 100000 * scale, "t": 10 * scale, "b": scale}
    sums: dict[str, int | None] = {}
    for key, query in queries.items():
        rows = _rows(conn, query, failures)
        if rows is None:
            sums[key] = None
            continue
        have = dict(rows)
        if len(rows) != sizes[key] or set(have) != set(range(1, sizes[key] + 1)):
            failures.append(f"{names[key]} rows: {len(rows)} visible, {len(have)} distinct "
                            f"keys, expected keys 1..{sizes[key]} once each")
        sums[key] = sum(have.values())
        bad = [f"{names[key]} {k} holds {have.get(k, 0)}, history says {want[key].get(k, 0)}"
               for k in sorted(set(have) | set(want[key]))
               if have.get(k, 0) != want[key].get(k, 0)]
        failures += _capped(f"{names[key]} balances disagree with history", bad)
    sums["h"] = sum(r[3] for r in present.values())
    if None not in sums.values() and len(set(sums.values())) != 1:
        failures.append("TPC-B sums disagree: accounts {a}, tellers {t}, branches {b}, "
                        "history {h}".format(**sums))
    return failures, present, want["a"]


def check_indexes(conn: psycopg.Connection, present: dict[int, tuple],
                  accounts: dict[int, int], rng: random.Random, sample: int = 50) -> list[str]:
    """Primary-key lookups (B-tree descents) of a sample of history rows and their
    accounts find what the sequential scans found."""
    bad = []
    for txn in rng.sample(sorted(present), min(sample, len(present))):
        row = conn.execute("SELECT tid, bid, aid, delta FROM pgbench_history WHERE txn = %s",
                           (txn,)).fetchall()
        if row != [present[txn]]:
            bad.append(f"history txn {txn} by index: {row}, by scan: {present[txn]}")
        aid = present[txn][2]
        got = conn.execute("SELECT abalance FROM pgbench_accounts WHERE aid = %s",
                           (aid,)).fetchall()
        if got != [(accounts[aid],)]:
            bad.append(f"account {aid} by index: {got}, by scan: {accounts[aid]}")
    return _capped("index lookups disagree with scans", bad)


def check_sides(conn: psycopg.Connection, record: LoadRecord) -> list[str]:
    # (Filtered here: tusk has no "char" = unknown operator for relkind = 'r'.)
    found = {int(name.rsplit("_", 1)[1]) for (name,) in conn.execute(
        "SELECT relname FROM pg_class WHERE relname LIKE 'torture_side_%'").fetchall()
        if not name.endswith("_pkey")}
    bad = []
    for k in sorted(found - set(record.sides)):
        bad.append(f"torture_side_{k} exists but was never created")
    for k, side in sorted(record.sides.items()):
        must_exist = side.created == ACKED and side.dropped == ABSENT
        may_exist = side.created != ABSENT and side.dropped != ACKED
        exists = k in found
        if must_exist and not exists:
            bad.append(f"torture_side_{k} (CREATE acknowledged) is missing")
        elif exists and not may_exist:
            state = "DROP acknowledged" if side.dropped == ACKED else "CREATE never committed"
            bad.append(f"torture_side_{k} ({state}) exists")
        elif exists:
            n, s = conn.execute(f"SELECT count(*), sum(v) FROM torture_side_{k}").fetchone()
            if (n, s) != (side.rows, side.rows * k):
                bad.append(f"torture_side_{k} has {n} rows (sum {s}), committed "
                           f"{side.rows} (sum {side.rows * k})")
    return _capped("side tables wrong", bad)


def fates(record: LoadRecord) -> dict[str, int]:
    out = {ACKED: 0, UNKNOWN: 0, ABSENT: 0}
    for t in record.txns.values():
        out[t.fate] += 1
    return out
