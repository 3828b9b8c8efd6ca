"""The torture command's client load: numbered TPC-B transactions from several
connections, mixed with VACUUM, CREATE/DROP TABLE, CHECKPOINT and pg_switch_wal()
on a maintenance connection, recording what the server acknowledged.

Every transaction has a number, carried into its pgbench_history row (column
txn), and a fate the checker relies on:

- ``acked``: COMMIT returned OK (synchronous_commit on): it must survive.
- ``unknown``: COMMIT was sent but no answer came (the server died): it may be
  present or absent, but whole.
- ``absent``: rolled back on purpose, or the server died before COMMIT was
  sent: none of it may be present.

Side tables (torture_side_K, K rows with v = K) are created and filled in one
transaction and dropped later; their CREATE and DROP get the same three fates.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

import psycopg

ACKED, UNKNOWN, ABSENT = "acked", "unknown", "absent"
VACUUM_TABLES = ("pgbench_accounts", "pgbench_tellers", "pgbench_branches", "pgbench_history")


@dataclass
class Txn:
    aid: int
    tid: int
    bid: int
    delta: int
    fate: str = ABSENT


@dataclass
class SideTable:
    rows: int
    created: str = ABSENT
    dropped: str = ABSENT


@dataclass
class LoadRecord:
    """What the clients saw; filled by the load threads, read by the checker."""
    txns: dict[int, Txn] = field(default_factory=dict)
    sides: dict[int, SideTable] = field(default_factory=dict)
    maintenance: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # unexpected client errors

    def acked(self) -> int:
        return sum(t.fate == ACKED for t in self.txns.values())


def _died(exc: BaseException) -> bool:
    """True for errors that mean the server went away (the kill), not a bug."""
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) or \
        getattr(exc, "sqlstate", None) in ("57P01", "57P02", "57P03")


class Load:
    """Runs the load threads until stop() or until the server dies under them."""

    def __init__(self, dsn: str, seed: int, scale: int, clients: int = 4,
                 rollback_ratio: float = 0.05, maintenance_interval: float = 0.3,
                 checkpoints: bool = True) -> None:
        self.dsn = dsn
        self.seed = seed
        self.scale = scale
        self.clients = clients
        self.rollback_ratio = rollback_ratio
        self.maintenance_interval = maintenance_interval
        self.ops = ("vacuum", "create", "create", "drop", "switch") + \
            (("checkpoint",) if checkpoints else ())
        self.record = LoadRecord()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._next_txn = 1
        self._next_side = 1
        self._threads: list[threading.Thread] = []
        self._doing: dict[str, str] = {}  # thread name -> what it last sent

    def start(self) -> None:
        for i in range(self.clients):
            self._threads.append(threading.Thread(target=self._guard, args=(self._client, i),
                                                  daemon=True))
        self._threads.append(threading.Thread(target=self._guard, args=(self._maintain, 0),
                                              daemon=True))
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 30) -> bool:
        """Ask the threads to finish their current transaction and wait for them;
        False if one is still stuck in the server after ``timeout`` seconds."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def _guard(self, target, index: int) -> None:
        try:
            target(index)
        except Exception as exc:  # noqa: BLE001 - the server's death ends every thread
            if not _died(exc):
                doing = self._doing.get(threading.current_thread().name, "connecting")
                self.record.errors.append(f"{doing}: {type(exc).__name__}: {exc}")

    def _take(self) -> int:
        with self._lock:
            n = self._next_txn
            self._next_txn += 1
            return n

    # -- TPC-B clients ----------------------------------------------------------

    def _client(self, index: int) -> None:
        naccounts = 100000 * self.scale
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as conn:
            while not self._stop.is_set():
                n = self._take()
                # The transaction's content depends only on the seed and its number.
                rng = random.Random(f"{self.seed}:{n}")
                bid = rng.randint(1, self.scale)
                txn = Txn(aid=rng.randint(1, naccounts), tid=rng.randint(1, 10 * self.scale),
                          bid=bid, delta=rng.choice((-1, 1)) * rng.randint(1, 5000))
                rollback = rng.random() < self.rollback_ratio
                self.record.txns[n] = txn
                self._doing[threading.current_thread().name] = f"TPC-B transaction {n}"
                # One simple-query round trip for the body (psycopg sends a query
                # without parameters as one Query message), one for the end.
                conn.execute(
                    f"BEGIN;"
                    f"UPDATE pgbench_accounts SET abalance = abalance + {txn.delta}"
                    f" WHERE aid = {txn.aid};"
                    f"SELECT abalance FROM pgbench_accounts WHERE aid = {txn.aid};"
                    f"UPDATE pgbench_tellers SET tbalance = tbalance + {txn.delta}"
                    f" WHERE tid = {txn.tid};"
                    f"UPDATE pgbench_branches SET bbalance = bbalance + {txn.delta}"
                    f" WHERE bid = {txn.bid};"
                    f"INSERT INTO pgbench_history (txn, tid, bid, aid, delta, mtime)"
                    f" VALUES ({n}, {txn.tid}, {txn.bid}, {txn.aid}, {txn.delta},"
                    f" CURRENT_TIMESTAMP)")
                if rollback:
                    conn.execute("ROLLBACK")
                    continue
                txn.fate = UNKNOWN
                conn.execute("COMMIT")
                txn.fate = ACKED

    # -- maintenance: VACUUM, CREATE/DROP TABLE, CHECKPOINT, pg_switch_wal -------

    def _maintain(self, index: int) -> None:
        rng = random.Random(f"{self.seed}:maintenance")
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as conn:
            while not self._stop.wait(rng.uniform(0.5, 1.5) * self.maintenance_interval):
                live = [k for k, s in self.record.sides.items()
                        if s.created == ACKED and s.dropped == ABSENT]
                op = rng.choice(self.ops)
                if op == "drop" and not live:
                    op = "create"
                self.record.maintenance.append(op)
                self._doing[threading.current_thread().name] = op
                if op == "vacuum":
                    table = rng.choice(VACUUM_TABLES)
                    self._doing[threading.current_thread().name] = f"VACUUM {table}"
                    conn.execute(f"VACUUM {table}")
                elif op == "checkpoint":
                    conn.execute("CHECKPOINT")
                elif op == "switch":
                    conn.execute("SELECT pg_switch_wal()")
                elif op == "create":
                    self._create_side(conn, rng)
                else:
                    k = rng.choice(live)
                    side = self.record.sides[k]
                    side.dropped = UNKNOWN
                    conn.execute(f"DROP TABLE torture_side_{k}")
                    side.dropped = ACKED

    def _create_side(self, conn: psycopg.Connection, rng: random.Random) -> None:
        k = self._next_side
        self._next_side += 1
        side = SideTable(rows=rng.randint(1, 300))
        self.record.sides[k] = side
        values = ",".join(f"({i}, {k})" for i in range(1, side.rows + 1))
        conn.execute(f"BEGIN; CREATE TABLE torture_side_{k} (id int PRIMARY KEY, v int);"
                     f"INSERT INTO torture_side_{k} VALUES {values}")
        side.created = UNKNOWN
        conn.execute("COMMIT")
        side.created = ACKED
