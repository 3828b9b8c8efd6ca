"""Expressions without tables, through the real compile path (parse analysis,
planning, closures): values, types and PostgreSQL's errors. The differential
suite (tests/sql) checks the same against PostgreSQL 15 through psql."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tcop import utility
from utils.elog import PgError


class _Session:
    @staticmethod
    def check_interrupts() -> None:
        pass


def run(query: str, params: tuple = (), param_types: list[int] | None = None):
    st = utility.compile_query(query, param_types)[0]
    if st.analysis_error is not None:
        raise st.analysis_error
    rows, tag = st.run(_Session(), params)
    return rows, [(c.name, c.type_oid) for c in st.columns or []], tag


def one(query: str, *params):
    rows, _, _ = run(query, params, [0] * len(params) if params else None)
    return rows[0] if len(rows[0]) > 1 else rows[0][0]


def error(query: str) -> tuple[str, str, int | None]:
    with pytest.raises(PgError) as exc:
        run(query)
    return exc.value.sqlstate, exc.value.message, exc.value.position


def test_integer_arithmetic_truncates_and_checks_overflow():
    assert one("select -7/2, -7%3, 7/-2, 10/3") == [-3, -1, -3, 3]
    assert error("select 2147483647+1")[:2] == ("22003", "integer out of range")
    assert error("select (-32768)::int2 * -1::int2")[:2] == ("22003", "smallint out of range")
    assert one("select 2147483647::int8 + 1") == 2147483648
    assert error("select 1/0")[:2] == ("22012", "division by zero")
    assert error("select 1.0/0")[:2] == ("22012", "division by zero")


def test_types_of_literals_and_results():
    _, cols, _ = run("select 1, 3000000000, 1.5, 'x', true, 1+1.5, 2::float8*2, null")
    assert [c[1] for c in cols] == [23, 20, 1700, 25, 16, 1700, 701, 25]
    assert one("select 1.5 + 1") == Decimal("2.5")


def test_three_valued_logic():
    assert one("select null and false, null and true, null or true, not null") == \
        [False, None, True, None]
    assert one("select 1 in (1, null), 2 in (1, null), 2 not in (1, 3)") == [True, None, True]
    assert one("select null is null, 1 is not null, null is distinct from 1, "
               "null is not distinct from null") == [True, True, True, True]


def test_strings_casts_and_lengths():
    assert one("select 'a' || 'b' || 1, length('héllo'), 'abc'::varchar(2), "
               "'x'::char(3) || '|', upper('abc')") == ["ab1", 5, "ab", "x|", "ABC"]
    assert error("select 'abc'::int")[:2] == ("22P02",
                                              'invalid input syntax for type integer: "abc"')
    assert error("select '99999999999'::int")[:2] == (
        "22003", 'value "99999999999" is out of range for type integer')


def test_case_coalesce_nullif_between_like():
    assert one("select case when 1 > 2 then 'a' when 2 > 1 then 'b' end, coalesce(null, 2), "
               "nullif(1, 1), 2 between 1 and 3, 'abc' like 'a_c', 'abc' not like 'b%'") == \
        ["b", 2, None, True, True, True]


def test_aggregates_without_tables():
    assert one("select count(*), sum(2), min(3), max(4), avg(2)") == \
        [1, 2, 3, 4, Decimal("2.0000000000000000")]


def test_order_limit_offset_and_params():
    rows, _, tag = run("select 1 as a order by a limit 0")
    assert rows == [] and tag == "SELECT 0"
    rows, cols, _ = run("select $1 + 1", (41,), [23])
    assert rows == [[42]] and cols == [("?column?", 23)]


def test_unknown_column_and_function_errors_point_at_the_text():
    assert error("select nosuch") == ("42703", 'column "nosuch" does not exist', 8)
    state, msg, pos = error("select nofunc(1)")
    assert (state, msg, pos) == ("42883", "function nofunc(integer) does not exist", 8)
    assert error("select 1 + true")[:2] == ("42883",
                                           "operator does not exist: integer + boolean")
    assert error("select 'a'::bool")[:2] == ("22P02",
                                             'invalid input syntax for type boolean: "a"')
