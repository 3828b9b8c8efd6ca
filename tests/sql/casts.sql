-- Casts (::type and CAST), string concatenation || and length(): values, result
-- column names and errors.
SELECT 10::bigint::int::smallint, '5'::text::int, CAST(CAST(1 AS bigint) AS text);
SELECT true::text, false::text, CAST(true AS varchar), 't'::boolean::text;
SELECT 1e15::float8, 123456789012345::float8, 1e-4::float8, 1234567.5::float8, 1.0e100::float8;
SELECT 'abcdef'::varchar(3) AS vc3, 'abcdef'::char(3) AS c3, CAST('abcdef' AS varchar(4)) AS vc4;
SELECT 'ab'::char(5) AS padded, 'ab'::char(5) || '|' AS concat, length('ab  '::char(5)) AS len;
SELECT length('abc  '::varchar(5)) AS vc, length('abc  '::text) AS t, 'abc'::char AS c1;
SELECT 'abc' || 'def' AS cat, 'n=' || 42 AS text_int, 42 || '!' AS int_text, 'x' || true AS bool,
       1.5 || 'x' AS num, 'a' || 'b' || 'c' AS three;
SELECT length('hello'), length(''), length('héllo'), length('日本語'), length(12345::text);
SELECT 'id-' || CAST(7 AS text) || '-' || 3::text AS composed, length('a' || 'bc') AS len;
SELECT '  7'::smallint AS i2, ' 1.5 '::float8 AS f8, '1e3'::numeric AS n, CAST('  yes' AS boolean) AS b;
SELECT '2024-01-02'::timestamp AS ts, '2024-01-02 03:04:05.678'::timestamp AS ts_frac,
       '2024-06-01 12:00:00+02'::timestamptz AS tz;
SELECT CAST('2024-01-02 03:04:05' AS timestamp with time zone) AS tz,
       CAST('2024-01-02 03:04:05+00' AS timestamp without time zone) AS ts;
SELECT '2024-01-02 03:04:05'::timestamp::text AS ts_text, '2024-01-02'::timestamptz::timestamp AS back;
SELECT 3.7::float8::int, 2.5::float8::int, (-2.5)::float8::int, 0.5::float8::int;
\pset null '(null)'
SELECT CAST(NULL AS integer) AS i, NULL::text || 'x' AS cat, length(NULL) AS len,
       'x' || NULL AS cat2, NULL::varchar(2) AS vc;
\pset null ''
-- Errors
SELECT 'abc'::integer;
SELECT ''::int;
SELECT '99999'::smallint;
SELECT '1.5'::int;
SELECT 'maybe'::boolean;
SELECT 'abc'::float8;
SELECT '1.2.3'::numeric;
SELECT 'NaN'::float8::int;
SELECT 'Infinity'::float8::bigint;
SELECT length(1);
SELECT length();
SELECT 1 || 2;
SELECT CAST(true AS bigint);
SELECT 1::timestamp;
SELECT '2024-13-01'::timestamp;
SELECT '2024-02-30 10:00'::timestamptz;
SELECT 'nonsense'::timestamptz;
SELECT 'abc'::nosuchtype;
SELECT 'abc'::varchar(0);
-- "char" (quoted: the one-byte catalog type) against char (bpchar)
SELECT 'r'::"char", 'abc'::"char", 'x'::char, 'ab'::char(3) || '|';
SELECT relname FROM pg_class WHERE relkind = 'r' AND relname = 'pg_class';
SELECT count(*) > 0 FROM pg_class WHERE relkind <> 'i' AND relkind = 'r'::"char";
