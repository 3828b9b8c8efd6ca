"""Regenerate tests/sql/expected/*.out from a real PostgreSQL 15.

    python -m tests.regen_sql_expected [NAME ...]     (or: ./dev regen-sql [NAME ...])

Starts a throw-away PostgreSQL 15 from /usr/lib/postgresql/15/bin (PG15_BINDIR
overrides; as user postgres when run as root), runs every script of tests/sql (or
only the NAMEs given) in a fresh database of its own, writes expected/NAME.out,
and stops the server. Prints which files changed.
"""

from __future__ import annotations

import argparse
import sys

from tests import sql_regress as sr


def regenerate(names: list[str]) -> list[str]:
    """Write expected/NAME.out for each name; the names whose output changed."""
    changed = []
    sr.EXPECTED_DIR.mkdir(exist_ok=True)
    with sr.postgres_server() as pg:
        for name in names:
            db = sr.create_database(pg.host, pg.port, pg.user, sr.database_name(name),
                                    sr.PG_CREATEDB_OPTIONS)
            assert db is not None, "PostgreSQL has CREATE DATABASE"
            run = sr.run_script(name, pg.host, pg.port, pg.user, db)
            if run.returncode != 0:
                raise RuntimeError(f"psql exited with {run.returncode} on {name}.sql:\n"
                                   + run.output[-2000:])
            sr.drop_database(pg.host, pg.port, pg.user, db)
            path = sr.expected_path(name)
            old = path.read_text() if path.exists() else None
            if old != run.output:
                path.write_text(run.output)
                changed.append(name)
    return changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="scripts to regenerate (default: all)")
    args = ap.parse_args(argv)
    known = sr.scripts()
    names = [n.removesuffix(".sql").rsplit("/", 1)[-1] for n in args.names] or known
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"no such script in {sr.SQL_DIR}: {', '.join(unknown)}", file=sys.stderr)
        return 2
    if not (sr.PG_BINDIR / "postgres").exists():
        print(f"PostgreSQL 15 is not installed in {sr.PG_BINDIR}", file=sys.stderr)
        return 1
    changed = regenerate(names)
    for name in names:
        print(f"{'changed  ' if name in changed else 'unchanged'} expected/{name}.out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
