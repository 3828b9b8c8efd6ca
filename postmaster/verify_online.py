"""``tusk_ctl verify`` on a running cluster — as pg_amcheck: connect to every
database that allows connections and call amcheck's SQL functions
(utils/adt/amcheck.py) for each relation, so that the server reads its own
pages through shared buffers under the proper locks instead of this process
reading files the server is writing.

- ``verify_heapam(table)`` for every table: its text[] of problems;
- ``bt_index_check(index, true)`` for every B-tree: the structure checks that
  hold under concurrent inserts, every entry pointing at a line pointer in use,
  and every tuple visible to its snapshot indexed with its key. An ERROR with
  SQLSTATE XX001/XX002 lists the problems in its DETAIL.

The shared catalogs are checked once (from the first database). Temporary
tables belong to their sessions and are skipped, as pg_amcheck does. The
connection uses the socket directory and port from postmaster.pid and the
bootstrap superuser (postmaster/pqclient.py: trust authentication).
"""

from __future__ import annotations

import re

from access.heapverify import Corruption
from catalog import bootstrap
from postmaster.pqclient import Connection, ServerError, parse_text_array
from postmaster.verify_cmd import VerifyError, VerifyResult

_WHERE = re.compile(r"^(?:block (\d+))?(?:, )?(?:offset (\d+))?(?:, )?(?:attribute (\d+))?$")
_LINE = re.compile(r'^relation "(?P<rel>.*?)"(?:, (?P<where>[^:]*))?: (?P<msg>.*)$')
_CORRUPT = ("XX001", "XX002")


def _corruption(where: str | None, msg: str) -> Corruption:
    m = _WHERE.match(where or "")
    if not m:
        return Corruption(None, None, None, f"{where}: {msg}")
    blk, off, att = (int(g) if g else None for g in m.groups())
    return Corruption(blk, off, att, msg)


def _parse_element(text: str) -> Corruption:
    """One element of verify_heapam's result: ``block B, offset O: msg``."""
    where, sep, msg = text.partition(": ")
    if not sep:
        return Corruption(None, None, None, text)
    return _corruption(where, msg)


def _connect(info, user: str, database: str) -> Connection:
    port = info.port
    if port is None:
        raise VerifyError("postmaster.pid has no port")
    sockdir = info.line(5).strip()
    host = info.line(6).strip()
    host = "localhost" if host in ("", "*", "0.0.0.0", "::") else host.split(",")[0].strip()
    try:
        return Connection.connect(sockdir or None, host, port, user, database)
    except (OSError, ServerError) as exc:
        raise VerifyError(f'could not connect to database "{database}": {exc}') from exc


def _check_database(res: VerifyResult, conn: Connection, dboid: int, with_shared: bool) -> None:
    rels = conn.query("select oid, relname, relkind, relfilenode, relisshared, relpersistence "
                      "from pg_class where relkind in ('r', 'i') order by relkind desc, oid")
    files = {}
    for oid, name, kind, filenode, shared, persistence in rels:
        if persistence == "t" or (shared == "t" and not with_shared) or filenode == "0":
            continue
        file = f"global/{filenode}" if shared == "t" else f"base/{dboid}/{filenode}"
        files[name] = file
        res.relations += 1
        if kind == "i":
            res.indexes += 1
            sql = f"select bt_index_check('{oid}'::oid::regclass, true)"
        else:
            sql = f"select verify_heapam('{oid}'::oid::regclass)"
        try:
            rows = conn.query(sql)
        except ServerError as exc:
            if exc.sqlstate == "42P01":
                continue  # dropped since we listed it
            if exc.sqlstate not in _CORRUPT:
                res.add(name, file, Corruption(None, None, None,
                                               f"check failed: {exc.message}"))
                continue
            for line in (exc.detail or exc.message).split("\n"):
                m = _LINE.match(line)
                if m is None:
                    res.add(name, file, Corruption(None, None, None, line))
                    continue
                rel = m.group("rel")
                res.add(rel, files.get(rel), _corruption(m.group("where"), m.group("msg")))
            continue
        value = rows[0][0] if rows else None
        for text in parse_text_array(value) if value and value != "{}" else []:
            res.add(name, file, _parse_element(text))


def verify_running(datadir: str, info) -> VerifyResult:
    """Check the running cluster of ``datadir`` whose postmaster.pid is ``info``."""
    if info.status not in ("ready", ""):
        raise VerifyError(f'the server is not ready (postmaster.pid says "{info.status}")')
    user = bootstrap.bootstrap_superuser(datadir)
    res = VerifyResult(mode="running")
    try:
        with _connect(info, user, "postgres") as conn:
            dbs = conn.query("select oid, datname from pg_database where datallowconn "
                             "order by oid")
        for n, (oid, name) in enumerate(dbs):
            with _connect(info, user, str(name)) as conn:
                _check_database(res, conn, int(str(oid)), with_shared=n == 0)
    except (OSError, ServerError) as exc:  # the server went away, or refused a query
        raise VerifyError(f"checking the running server failed: {exc}") from exc
    return res
