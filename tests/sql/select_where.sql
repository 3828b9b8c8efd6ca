-- SELECT of columns and expressions with WHERE (comparisons, AND/OR/NOT, IS [NOT]
-- NULL, IN lists), ORDER BY, LIMIT / OFFSET, and the errors of name resolution.
DROP TABLE IF EXISTS items;
CREATE TABLE items (id int PRIMARY KEY, name text, price double precision, qty int,
                    active boolean);
INSERT INTO items VALUES (1, 'apple', 1.5, 10, true), (2, 'banana', 0.25, 0, true),
    (3, 'cherry', 10, NULL, false), (4, 'date', NULL, 5, NULL), (5, 'elder', 2.75, 20, true),
    (6, NULL, 3, 3, false), (7, 'Fig', 0.5, 7, true);
SELECT * FROM items ORDER BY id;
SELECT name, qty FROM items WHERE qty > 5 ORDER BY name;
SELECT id FROM items WHERE qty >= 5 AND active ORDER BY id;
SELECT id FROM items WHERE qty = 0 OR price > 2.5 ORDER BY id;
SELECT id FROM items WHERE NOT active ORDER BY id;
SELECT id FROM items WHERE qty <> 10 AND qty != 20 ORDER BY id;
SELECT id FROM items WHERE price <= 1.5 ORDER BY id DESC;
SELECT id FROM items WHERE price < 1 OR (qty > 5 AND NOT active) ORDER BY id;
SELECT id FROM items WHERE qty IS NULL OR price IS NULL ORDER BY id;
SELECT id FROM items WHERE name IS NOT NULL AND active IS NOT NULL ORDER BY id;
SELECT id, name FROM items WHERE id IN (1, 3, 5, 9) ORDER BY id;
SELECT id FROM items WHERE name NOT IN ('apple', 'banana') ORDER BY id;
SELECT id FROM items WHERE name = 'apple' OR name = 'APPLE';
SELECT id FROM items WHERE active = true AND price > 1 ORDER BY id;
SELECT id FROM items WHERE id > 100;
SELECT id, price * qty AS total, qty + 1 AS next, -qty AS neg, qty % 3 AS mod, qty / 3 AS div,
       name || ' x' || qty AS label, length(name) AS len, price > 1 AS dear
FROM items ORDER BY id;
SELECT i.id, i.name FROM items AS i WHERE i.id = 1;
SELECT 1 AS one, id FROM items WHERE id = 2;
SELECT name, price FROM items ORDER BY price, id;
SELECT name, price FROM items ORDER BY price DESC, id;
SELECT name FROM items ORDER BY name;
SELECT id, active FROM items ORDER BY active, id;
SELECT id, qty FROM items ORDER BY qty DESC, id LIMIT 3;
SELECT id FROM items ORDER BY id LIMIT 2 OFFSET 2;
SELECT id FROM items ORDER BY id OFFSET 5;
SELECT id FROM items ORDER BY id LIMIT 0;
SELECT id FROM items ORDER BY id LIMIT ALL;
SELECT id, qty * 2 AS dbl FROM items ORDER BY dbl DESC, 1 LIMIT 2;
SELECT id FROM items ORDER BY id LIMIT 10 OFFSET 10;
-- Errors
SELECT nosuch FROM items;
SELECT items.nosuch FROM items;
SELECT id FROM items WHERE nosuch = 1;
SELECT * FROM nosuch;
SELECT id FROM items WHERE name;
SELECT id FROM items WHERE qty = 'x';
SELECT id FROM items WHERE name = 1;
SELECT id FROM items ORDER BY 9;
SELECT id FROM items LIMIT -1;
SELECT id FROM items OFFSET -1;
SELECT x.id FROM items;
DROP TABLE items;
