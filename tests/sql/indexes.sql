-- CREATE [UNIQUE] INDEX, DROP INDEX, ALTER TABLE ADD PRIMARY KEY, and unique
-- enforcement through them.
DROP TABLE IF EXISTS ix, ix2;
CREATE TABLE ix (id int NOT NULL, code text, n int);
INSERT INTO ix VALUES (1, 'a', 10), (2, 'b', 20), (3, 'c', 20), (4, NULL, NULL), (5, NULL, NULL);
CREATE INDEX ix_n ON ix (n);
CREATE INDEX ON ix (code);
CREATE UNIQUE INDEX ix_code_u ON ix (code);
CREATE INDEX IF NOT EXISTS ix_n ON ix (id);
CREATE INDEX ix_n_code ON ix (n, code);
SELECT id FROM ix WHERE n = 20 ORDER BY id;
SELECT id FROM ix WHERE code = 'b';
SELECT id FROM ix WHERE n IS NULL ORDER BY id;
INSERT INTO ix VALUES (6, 'a', 60);
INSERT INTO ix VALUES (6, NULL, 60);
UPDATE ix SET code = 'b' WHERE id = 1;
UPDATE ix SET code = 'z' WHERE id = 1;
INSERT INTO ix VALUES (7, 'a', 70);
ALTER TABLE ix ADD PRIMARY KEY (id);
INSERT INTO ix VALUES (1, 'y', 0);
UPDATE ix SET id = 2 WHERE id = 1;
SELECT * FROM ix ORDER BY id;
-- Errors
CREATE UNIQUE INDEX ix_n_u ON ix (n);
CREATE INDEX ix_n ON ix (id);
CREATE INDEX ix_bad ON ix (nosuch);
CREATE INDEX ix_bad ON nosuch (a);
ALTER TABLE ix ADD PRIMARY KEY (id);
ALTER TABLE nosuch ADD PRIMARY KEY (id);
ALTER TABLE ix ADD PRIMARY KEY (nosuch);
-- DROP INDEX
DROP INDEX ix_n;
DROP INDEX ix_n;
DROP INDEX IF EXISTS ix_n;
DROP INDEX ix_pkey;
DROP INDEX ix;
DROP INDEX ix_code_idx, ix_code_u;
INSERT INTO ix VALUES (8, 'a', 80);
SELECT id, code FROM ix WHERE code = 'a' ORDER BY id;
-- ADD PRIMARY KEY over duplicates and NULLs
CREATE TABLE ix2 (a int, b text);
INSERT INTO ix2 VALUES (1, 'x'), (1, 'y');
ALTER TABLE ix2 ADD PRIMARY KEY (a);
DELETE FROM ix2 WHERE b = 'y';
INSERT INTO ix2 VALUES (NULL, 'z');
ALTER TABLE ix2 ADD PRIMARY KEY (a);
DELETE FROM ix2 WHERE a IS NULL;
ALTER TABLE ix2 ADD PRIMARY KEY (a);
INSERT INTO ix2 VALUES (NULL, 'n');
INSERT INTO ix2 VALUES (2, 'x'), (3, 'x');
CREATE UNIQUE INDEX ix2_ab ON ix2 (a, b);
CREATE UNIQUE INDEX ix2_b ON ix2 (b);
INSERT INTO ix2 VALUES (2, 'x');
SELECT * FROM ix2 ORDER BY a;
DROP TABLE ix;
SELECT * FROM ix WHERE id = 1;
DROP INDEX ix2_ab;
DROP TABLE ix2;
