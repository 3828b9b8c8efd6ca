-- Syntax errors: 42601 with PostgreSQL's message and the caret under the position.
selec 1;
SELECT 1 +;
SELECT (1));
SELECT 1 2;
SELECT 1,;
SELECT 1 FROM;
SELECT * FORM t;
CREATE TABEL t (a int);
SELECT 'a' 'b';
SELECT "";
SELECT 1 +\g
SELECT
  1,
  2 3;
SELECT 'héllo', 'wörld' x y;
SELECT 'a very long line that goes on and on', 'and on and on and on and on', 'and on' 'until the end';
BEGIN;
selec 2;
SELECT 1 AS aborted;
ROLLBACK;
SELECT 1 AS first \; selec 2 \; SELECT 3 AS third;
SELECT 4 AS still_works;
