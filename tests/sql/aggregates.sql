-- count(*), count(col), sum, min and max: empty tables, NULLs, result types, errors.
DROP TABLE IF EXISTS agg;
CREATE TABLE agg (g int, i int, b bigint, s smallint, d double precision, t text,
                  ts timestamp);
\pset null '(null)'
SELECT count(*), count(i), sum(i), min(i), max(i), sum(d), min(t) FROM agg;
INSERT INTO agg VALUES (1, 10, 100, 1, 1.5, 'b', '2024-01-01'),
                       (1, NULL, 200, 2, NULL, 'a', NULL),
                       (2, 30, NULL, 3, 2.5, NULL, '2023-06-30 12:00'),
                       (2, 40, 9223372036854775807, NULL, -1, 'c', '2024-12-31');
SELECT count(*), count(i), count(b), count(t), count(1) AS count_1 FROM agg;
SELECT sum(i), sum(s), sum(d), sum(b) FROM agg;
SELECT sum(b) + 1 AS big_plus, sum(i) * 2 AS twice, sum(i) / count(i) AS avg FROM agg;
SELECT min(i), max(i), min(t), max(t), min(d), max(d), min(b), max(s) FROM agg;
SELECT min(ts), max(ts) FROM agg;
SELECT count(*) FROM agg WHERE i > 15;
SELECT sum(i), count(*) FROM agg WHERE g = 1;
SELECT sum(i), max(t) FROM agg WHERE g = 99;
SELECT count(*) FROM agg WHERE t IS NULL OR i IS NULL;
SELECT max(i) - min(i) AS spread, count(*) * 10 AS scaled FROM agg;
SELECT sum(2147483647) AS no_overflow, sum(1.5) AS numeric_sum, count(NULL) AS count_null FROM agg;
SELECT count(*) AS n FROM agg ORDER BY n LIMIT 1;
\pset null ''
-- Errors
SELECT sum(t) FROM agg;
SELECT i, count(*) FROM agg;
SELECT count(*) FROM agg WHERE count(*) > 1;
SELECT sum(i, i) FROM agg;
SELECT min(nosuch) FROM agg;
SELECT count(*) FROM nosuch;
SELECT sum(sum(i)) FROM agg;
DROP TABLE agg;
