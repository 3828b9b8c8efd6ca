-- UPDATE ... SET col = expression WHERE ... [RETURNING] and DELETE [RETURNING].
DROP TABLE IF EXISTS acct;
CREATE TABLE acct (id int PRIMARY KEY, owner text NOT NULL, balance bigint NOT NULL DEFAULT 0,
                   note varchar(5));
INSERT INTO acct VALUES (1, 'ann', 100, NULL), (2, 'bob', 200, 'x'), (3, 'cy', 300, NULL),
                        (4, 'dee', 0, 'y');
UPDATE acct SET balance = balance + 50 WHERE id = 1;
SELECT * FROM acct ORDER BY id;
UPDATE acct SET balance = balance - 10, note = 'paid' WHERE owner IN ('bob', 'zed') RETURNING *;
UPDATE acct SET balance = balance - 10, note = 'paid' WHERE owner IN ('cy', 'zed');
UPDATE acct SET note = NULL WHERE note IS NOT NULL AND balance > 1000 RETURNING id;
UPDATE acct SET balance = balance * 2 WHERE NOT (id < 3);
SELECT id, balance FROM acct ORDER BY id;
UPDATE acct SET owner = owner || '!', balance = DEFAULT WHERE id = 4
    RETURNING owner, balance, length(owner) AS len;
UPDATE acct SET balance = balance + 1, note = 'x' || id;
SELECT id, balance, note FROM acct ORDER BY id;
UPDATE acct SET balance = -balance WHERE balance > 400 OR owner = 'ann';
UPDATE acct SET balance = '7' WHERE id = 3;
UPDATE acct a SET note = 'alias' WHERE a.id = 2;
SELECT * FROM acct ORDER BY id;
-- Errors
UPDATE acct SET owner = NULL WHERE id = 1;
UPDATE acct SET id = 2 WHERE id = 1;
UPDATE acct SET note = 'toolong' WHERE id = 1;
UPDATE acct SET nosuch = 1;
UPDATE acct SET balance = balance WHERE nosuch = 1;
UPDATE acct SET balance = 9223372036854775807 + balance;
UPDATE acct SET balance = 'x';
UPDATE nosuch SET a = 1;
UPDATE acct SET id = id + 10;
SELECT id, owner FROM acct ORDER BY id;
-- DELETE
DELETE FROM acct WHERE id = 11 RETURNING *;
DELETE FROM acct WHERE note = 'alias' RETURNING id, owner || '?' AS who;
DELETE FROM acct WHERE id = 999 RETURNING id;
SELECT * FROM acct ORDER BY id;
DELETE FROM acct WHERE nosuch = 1;
DELETE FROM nosuch;
DELETE FROM acct;
SELECT count(*) FROM acct;
INSERT INTO acct (id, owner) VALUES (1, 'again');
DELETE FROM acct a WHERE a.owner = 'again' RETURNING a.id;
DROP TABLE acct;
