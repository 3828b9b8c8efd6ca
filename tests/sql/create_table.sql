-- CREATE TABLE [IF NOT EXISTS] with every supported column type and constraint,
-- WITH (fillfactor), DROP TABLE [IF EXISTS] of one and several tables, and errors.
DROP TABLE IF EXISTS ct_types, ct_constraints, ct_serial, ct_ff, ct_pk2;
CREATE TABLE ct_types (
    s smallint, i integer, b bigint, d double precision, f boolean,
    t text, v varchar(10), c char(5), ts timestamp, tz timestamptz
);
INSERT INTO ct_types VALUES (1, 2, 3, 4.5, true, 'text', 'varchar', 'char',
                             '2024-01-02 03:04:05', '2024-01-02 03:04:05+02');
INSERT INTO ct_types (i) VALUES (7);
\pset null '(null)'
SELECT * FROM ct_types ORDER BY i;
\pset null ''
SELECT c, c || '|' AS c_concat, length(c) AS c_len, v || '|' AS v_concat FROM ct_types WHERE s = 1;
CREATE TABLE ct_types (a int);
CREATE TABLE IF NOT EXISTS ct_types (a int);
CREATE TABLE ct_constraints (
    id integer PRIMARY KEY,
    code text UNIQUE,
    name varchar(20) NOT NULL,
    qty integer DEFAULT 0,
    flag boolean NOT NULL DEFAULT false,
    created timestamp DEFAULT '2000-01-01 00:00:00'
);
INSERT INTO ct_constraints (id, code, name) VALUES (1, 'a', 'first');
INSERT INTO ct_constraints (id, name, qty, flag) VALUES (2, 'second', 5, true);
SELECT * FROM ct_constraints ORDER BY id;
CREATE TABLE ct_serial (id serial, big bigserial PRIMARY KEY, note text);
INSERT INTO ct_serial (note) VALUES ('one'), ('two');
INSERT INTO ct_serial (note) VALUES ('three');
SELECT * FROM ct_serial ORDER BY id;
CREATE TABLE ct_ff (a int NOT NULL, b int) WITH (fillfactor = 70);
CREATE TABLE IF NOT EXISTS ct_pk2 (a int, b int, c text, PRIMARY KEY (a, b), UNIQUE (c));
INSERT INTO ct_ff VALUES (1, 2);
INSERT INTO ct_pk2 VALUES (1, 1, 'x'), (1, 2, 'y');
SELECT * FROM ct_pk2 ORDER BY a, b;
-- Errors
CREATE TABLE ct_bad (a int) WITH (fillfactor = 5);
CREATE TABLE ct_bad (a int) WITH (fillfactor = 101);
CREATE TABLE ct_bad (a int) WITH (nosuch = 1);
CREATE TABLE ct_bad (a int PRIMARY KEY, b int PRIMARY KEY);
CREATE TABLE ct_bad (a nosuchtype);
CREATE TABLE ct_bad (a int, a text);
CREATE TABLE ct_bad (v varchar(0));
CREATE TABLE ct_bad (a int, PRIMARY KEY (b));
CREATE TABLE ct_bad (a int DEFAULT 'x');
SELECT * FROM ct_bad;
-- DROP TABLE
DROP TABLE ct_types, ct_constraints;
DROP TABLE ct_types;
DROP TABLE IF EXISTS ct_types, ct_ff;
DROP TABLE ct_serial, ct_missing;
SELECT count(*) FROM ct_serial;
DROP TABLE IF EXISTS ct_serial, ct_pk2, ct_missing;
SELECT * FROM ct_serial;
