-- TRUNCATE [TABLE] of one and several tables, VACUUM [ANALYZE] [table, ...],
-- CHECKPOINT, with the data read back afterwards.
DROP TABLE IF EXISTS tv_a, tv_b;
CREATE TABLE tv_a (id int PRIMARY KEY, v text);
CREATE TABLE tv_b (id serial, v text);
INSERT INTO tv_a VALUES (1, 'a'), (2, 'b');
INSERT INTO tv_b (v) VALUES ('x'), ('y');
TRUNCATE tv_a;
SELECT count(*) FROM tv_a;
INSERT INTO tv_a VALUES (1, 'again');
SELECT * FROM tv_a;
TRUNCATE TABLE tv_a, tv_b;
SELECT count(*) AS a FROM tv_a;
SELECT count(*) AS b FROM tv_b;
INSERT INTO tv_b (v) VALUES ('z') RETURNING id;
TRUNCATE tv_b;
-- TRUNCATE rolls back
INSERT INTO tv_a VALUES (1, 'kept'), (2, 'kept');
BEGIN;
TRUNCATE tv_a;
SELECT count(*) FROM tv_a;
ROLLBACK;
SELECT * FROM tv_a ORDER BY id;
-- VACUUM
VACUUM;
VACUUM tv_a;
VACUUM ANALYZE;
VACUUM ANALYZE tv_a, tv_b;
VACUUM tv_a, tv_b;
VACUUM (ANALYZE) tv_a;
INSERT INTO tv_b (v) VALUES ('one'), ('two'), ('three'), ('four');
DELETE FROM tv_b WHERE v IN ('two', 'four');
UPDATE tv_b SET v = v || '!' WHERE v = 'one';
VACUUM tv_b;
SELECT id, v FROM tv_b ORDER BY id;
INSERT INTO tv_b (v) VALUES ('five');
SELECT id, v FROM tv_b ORDER BY id;
CHECKPOINT;
SELECT id, v FROM tv_b ORDER BY id;
-- Errors
TRUNCATE nosuch;
TRUNCATE tv_a, nosuch;
SELECT count(*) FROM tv_a;
VACUUM nosuch;
VACUUM ANALYZE tv_a, nosuch;
BEGIN;
VACUUM tv_a;
ROLLBACK;
VACUUM tv_a \; SELECT 1;
DROP TABLE tv_a, tv_b;
