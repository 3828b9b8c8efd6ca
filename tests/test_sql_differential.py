"""The differential SQL suite: every script of tests/sql through psql against tusk,
compared with PostgreSQL 15's output in tests/sql/expected (see tests/sql/README.md).

Scripts not listed in tests/sql/schedule are skipped ("not yet supported by tusk").
test_expected_is_current runs each script against a real PostgreSQL 15 (the pg15
fixture) so a stale expected file is caught.
"""

from __future__ import annotations

import pytest

from tests import sql_regress as sr

SCRIPTS = sr.scripts()
SCHEDULED = set(sr.schedule())


def _compare(name: str, run: sr.ScriptRun, what: str) -> None:
    expected = sr.expected_path(name).read_text()
    if run.output != expected:
        exited = f" (psql exited with {run.returncode})" if run.returncode else ""
        pytest.fail(f"tests/sql/{name}.sql: {what}{exited}\n"
                    + sr.unified_diff(expected, run.output, name), pytrace=False)


def test_schedule_names_existing_scripts() -> None:
    missing = sorted(SCHEDULED - set(SCRIPTS))
    assert not missing, f"tests/sql/schedule names scripts that do not exist: {missing}"
    no_expected = [n for n in SCRIPTS if not sr.expected_path(n).exists()]
    assert not no_expected, f"no expected output (run ./dev regen-sql): {no_expected}"


@pytest.mark.parametrize("name", SCRIPTS)
def test_sql_script(name: str, request: pytest.FixtureRequest) -> None:
    """tusk's normalised psql output equals PostgreSQL 15's."""
    if name not in SCHEDULED:
        pytest.skip("not yet supported by tusk")
    server = request.getfixturevalue("server")
    db = sr.create_database(server.host, server.port, server.user, sr.database_name(name))
    run = sr.run_script(name, server.host, server.port, server.user, db or "postgres")
    _compare(name, run, "tusk's output differs from PostgreSQL 15's")


@pytest.mark.parametrize("name", SCRIPTS)
def test_expected_is_current(name: str, pg15) -> None:
    """expected/NAME.out is what PostgreSQL 15 prints today (else ./dev regen-sql)."""
    db = sr.create_database(pg15.host, pg15.port, "postgres", sr.database_name(name),
                            sr.PG_CREATEDB_OPTIONS)
    assert db is not None
    try:
        run = sr.run_script(name, pg15.host, pg15.port, "postgres", db)
    finally:
        sr.drop_database(pg15.host, pg15.port, "postgres", db)
    _compare(name, run, f"expected/{name}.out is stale (./dev regen-sql {name})")
