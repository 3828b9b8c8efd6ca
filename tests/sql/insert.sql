-- INSERT: column lists, multi-row VALUES, DEFAULT, RETURNING, and the errors of
-- constraints and types (23502, 23505, 22001, 22003, 22P02, 42703, 42P01).
DROP TABLE IF EXISTS ins;
CREATE TABLE ins (id integer PRIMARY KEY, name varchar(5) NOT NULL, qty integer DEFAULT 10,
                  note text);
INSERT INTO ins VALUES (1, 'one', 1, 'first');
INSERT INTO ins (id, name) VALUES (2, 'two'), (3, 'three');
INSERT INTO ins VALUES (4, 'four', DEFAULT, NULL);
INSERT INTO ins (name, id, qty) VALUES ('five', 5, NULL);
INSERT INTO ins VALUES (6, 'six') RETURNING *;
INSERT INTO ins (id, name, qty) VALUES (7, 'seven', 7), (8, 'eight', 8)
    RETURNING id, qty * 2 AS double_qty, name || '!' AS shout;
INSERT INTO ins VALUES (9, 'toolong'::varchar(5)) RETURNING name;
INSERT INTO ins VALUES (10, 'abc     ') RETURNING name || '|' AS name, length(name);
INSERT INTO ins VALUES ('11', 'str', '3') RETURNING id, qty;
INSERT INTO ins VALUES (12, 12, 12.6) RETURNING *;
INSERT INTO ins (id, name, note) VALUES (13, 'n', NULL), (14, 'm', DEFAULT) RETURNING id, note;
\pset null '(null)'
SELECT * FROM ins ORDER BY id;
\pset null ''
-- Errors
INSERT INTO ins DEFAULT VALUES;
INSERT INTO ins VALUES (1, 'dup');
INSERT INTO ins VALUES (20, 'toolong');
INSERT INTO ins VALUES (20, NULL);
INSERT INTO ins (id) VALUES (20);
INSERT INTO ins VALUES (2147483648, 'big');
INSERT INTO ins VALUES (20, 'n', 99999999999);
INSERT INTO ins VALUES ('x', 'bad');
INSERT INTO ins (id, nosuch) VALUES (20, 1);
INSERT INTO nosuch VALUES (1);
INSERT INTO ins VALUES (20, 'n', 1, 'x', 'extra');
INSERT INTO ins (id, name) VALUES (20);
INSERT INTO ins (id, id) VALUES (20, 21);
INSERT INTO ins VALUES (20, 'a'), (20, 'b');
INSERT INTO ins VALUES (21, 'a'), (22, NULL);
INSERT INTO ins VALUES (23, 'ok') RETURNING nosuch;
SELECT count(*) FROM ins;
DROP TABLE ins;
