-- Operators on constants: arithmetic, comparison, boolean logic, precedence, and
-- their errors (integer overflow 22003, division by zero 22012, 42883).
SELECT 1 + 2 AS plus, 7 - 10 AS minus, 6 * 7 AS times, 7 / 2 AS intdiv, -7 / 2 AS neg_div,
       7 % 3 AS modulo, -7 % 3 AS neg_mod, -(5) AS negate, +5 AS unary_plus;
SELECT 1 + 2 * 3 AS precedence, (1 + 2) * 3 AS parens, 2 - 3 - 4 AS left_assoc, - 2 * 3 AS neg;
SELECT 7.0 / 2 AS numeric_div, 1.5 + 1 AS num_plus_int, 10 / 4.0 AS int_div_num;
SELECT 1.5::float8 * 2 AS float_times, 1 / 3::float8 AS third, 0.1::float8 + 0.2::float8 AS sum;
SELECT 2147483647 + 1::bigint AS widened, 32767::smallint + 1 AS int2_plus_int4;
SELECT 2 * 3 = 6 AS eq, 1 <> 2 AS ne, 1 != 1 AS ne2, 1 < 2 AS lt, 2 <= 2 AS le,
       3 > 4 AS gt, 4 >= 4 AS ge;
SELECT 'abc' = 'abc' AS text_eq, 'abc' < 'abd' AS text_lt, 'B' < 'a' AS c_order,
       1.5 = 1.50 AS numeric_eq, 1 = 1.0 AS int_numeric;
SELECT true AND false AS "and", true OR false AS "or", NOT true AS "not",
       NOT false AND false AS not_binds_tighter, true OR false AND false AS and_first;
SELECT 1 < 2 AND 2 < 3 AS chain, NOT 1 = 2 AS not_eq;
SELECT -3::text;
SELECT (-3)::text;
-- Errors
SELECT 2147483647 + 1;
SELECT -2147483648 - 1;
SELECT 2147483647 * 2;
SELECT 9223372036854775807 + 1;
SELECT 9223372036854775807::bigint * 2;
SELECT 32767::smallint + 1::smallint;
SELECT (-2147483648) / (-1);
SELECT 1 / 0;
SELECT 1 % 0;
SELECT 1.5 / 0;
SELECT 1.5::float8 / 0;
SELECT 10::bigint / 0;
SELECT 1 + 'x';
SELECT 1 + '2';
SELECT true + 1;
SELECT 'a' + 1;
SELECT 1 AND true;
SELECT NOT 1;
