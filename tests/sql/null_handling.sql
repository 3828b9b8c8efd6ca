-- NULL: three-valued logic, IS [NOT] NULL, NULL in IN lists, operators and
-- functions, aggregates, ORDER BY placement, display, COPY.
DROP TABLE IF EXISTS nh;
\pset null '(null)'
SELECT NULL = NULL AS eq, NULL <> 1 AS ne, NULL::int < 1 AS lt, NULL::boolean AS b;
SELECT NULL AND true AS n_and_t, NULL AND false AS n_and_f, NULL OR true AS n_or_t,
       NULL OR false AS n_or_f, NOT NULL::boolean AS not_n;
SELECT NULL IS NULL AS a, 1 IS NULL AS b, NULL::int IS NOT NULL AS c, '' IS NULL AS empty;
SELECT 1 + NULL AS plus, 'a' || NULL AS cat, length(NULL) AS len, NULL::text || NULL AS cat2;
SELECT 1 IN (1, NULL) AS a, 2 IN (1, NULL) AS b, 2 NOT IN (1, NULL) AS c, NULL IN (1, 2) AS d;
CREATE TABLE nh (id int, v int, t text);
INSERT INTO nh VALUES (1, 1, 'one'), (2, NULL, 'two'), (3, 3, NULL), (4, NULL, NULL), (5, 0, '');
SELECT * FROM nh ORDER BY id;
SELECT id FROM nh WHERE v = NULL;
SELECT id FROM nh WHERE v IS NULL ORDER BY id;
SELECT id FROM nh WHERE v IS NOT NULL ORDER BY id;
SELECT id FROM nh WHERE NOT (v > 1) ORDER BY id;
SELECT id FROM nh WHERE v > 1 OR v IS NULL ORDER BY id;
SELECT id FROM nh WHERE v IN (1, NULL) ORDER BY id;
SELECT id FROM nh WHERE v NOT IN (1, NULL) ORDER BY id;
SELECT id FROM nh WHERE t = '' ORDER BY id;
SELECT id, v + 1 AS next, t || '!' AS shout, v = 1 AS is_one FROM nh ORDER BY id;
SELECT count(*), count(v), count(t), sum(v), min(v), max(t) FROM nh;
SELECT count(v), sum(v), min(v), max(v) FROM nh WHERE v IS NULL;
SELECT id, v FROM nh ORDER BY v, id;
SELECT id, v FROM nh ORDER BY v DESC, id;
COPY nh TO STDOUT;
COPY nh TO STDOUT WITH (FORMAT csv);
UPDATE nh SET v = NULL WHERE id = 1 RETURNING *;
UPDATE nh SET v = v + 1;
SELECT id, v FROM nh ORDER BY id;
INSERT INTO nh VALUES (NULL, NULL, NULL) RETURNING *;
DELETE FROM nh WHERE id IS NULL RETURNING id;
\pset null ''
SELECT * FROM nh WHERE id = 4;
DROP TABLE nh;
