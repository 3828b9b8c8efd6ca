-- SELECT without tables: integer, numeric, float, boolean and text constants, casts,
-- column names, NULL display, out-of-range casts.
SELECT 1;
SELECT 1 AS one, -2 AS minus_two, 2147483647 AS int4_max, 2147483648 AS int8,
       9223372036854775807 AS int8_max, 9223372036854775808 AS numeric;
SELECT 1.5, -0.25, 1e10, 1.0e-3, .5, 100.00;
SELECT 'hello' AS greeting, '' AS empty, 'it''s' AS quote, 'héllo wörld' AS accents;
SELECT true, false, TRUE AS upper_true;
SELECT 't'::boolean AS t, 'off'::bool AS off, 'YES'::boolean AS yes, ' 0 '::boolean AS zero;
SELECT 42::smallint, 42::bigint, '42'::int, ' 42 '::integer, '-7'::int4, '+7'::int8;
SELECT '-32768'::int2, '32767'::smallint, '-2147483648'::int4, '9223372036854775807'::int8;
SELECT 3.7::integer, 2.5::int, (-2.5)::int AS minus, 3.5::bigint, 32767.4::smallint;
SELECT 2.5::float8::int AS half_even, 3.5::float8::int AS half_even_up, 1e3::int;
SELECT 1.5::float8, 0.1::double precision, '1e300'::float8, '-0'::float8, 1e-5::float8;
SELECT 123456789012345678::float8, '1e16'::float8, 100::float8, 1e-4::float8, 1e-5::float8;
SELECT 'NaN'::float8, 'Infinity'::float8, '-inf'::float8, 'infinity'::double precision;
SELECT 1.5::real, '3.25'::float4;
SELECT '1.5'::numeric, '1.50'::numeric, '-0.001'::numeric, 42::numeric, 'NaN'::numeric;
SELECT 42::text, 1.5::text, (-3)::text, 1.5::float8::text AS f;
SELECT 'abc'::varchar, 'abc'::text, 'abc'::name;
SELECT CAST('123' AS integer), CAST(1 AS text), CAST('t' AS boolean), CAST(7 AS bigint);
SELECT 1::boolean, 0::bool, true::int, false::integer;
SELECT 10::bigint::int::smallint AS i2, '5'::text::int AS i4;
SELECT 1 AS "Mixed Case", 2 AS "a b", 3 AS select, 4 AS "quoted ""name""";
SELECT 1 AS a, 2 AS a;
\pset null '(null)'
SELECT NULL, NULL::integer AS int, NULL::text AS text, NULL::boolean, CAST(NULL AS bigint);
\pset null ''
SELECT NULL AS blank;
-- Out of range and bad input
SELECT 32768::smallint;
SELECT 2147483648::int;
SELECT 9223372036854775808::bigint;
SELECT 1e10::integer;
