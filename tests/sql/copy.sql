-- COPY FROM STDIN and TO STDOUT in text and CSV formats, with psql's inline data
-- ending in \., NULLs, escapes, column lists, headers, and COPY's errors.
DROP TABLE IF EXISTS cp;
CREATE TABLE cp (id int PRIMARY KEY, name text, amount double precision, flag boolean);
COPY cp FROM STDIN;
1	one	1.5	t
2	\N	2	f
3	back\\slash	-0.5	\N
\.
COPY cp (id, name) FROM STDIN WITH (FORMAT csv);
4,"quoted, comma"
5,
6,""
7,"say ""hi"""
\.
COPY cp FROM STDIN WITH (FORMAT csv, HEADER true);
id,name,amount,flag
8,eight,8,true
\.
COPY cp FROM STDIN;
\.
\pset null '(null)'
SELECT * FROM cp ORDER BY id;
\pset null ''
COPY cp TO STDOUT;
COPY cp TO STDOUT WITH (FORMAT csv);
COPY cp TO STDOUT WITH (FORMAT csv, HEADER);
COPY cp (flag, id) TO STDOUT WITH (FORMAT text);
COPY cp TO STDOUT WITH CSV HEADER;
COPY cp (id, name) TO STDOUT WITH (FORMAT csv, DELIMITER ';', NULL 'NULL');
-- Errors
COPY cp FROM STDIN;
9	nine	x	t
\.
COPY cp FROM STDIN;
9	nine	9	t
1	dup	0	t
\.
COPY cp FROM STDIN;
9	nine
\.
COPY cp FROM STDIN;
9	nine	9	t	extra
\.
COPY cp FROM STDIN WITH (FORMAT csv);
9,nine,9,maybe
\.
SELECT count(*) FROM cp;
COPY nosuch TO STDOUT;
COPY cp (nosuch) TO STDOUT;
COPY cp TO STDOUT WITH (FORMAT xml);
TRUNCATE cp;
COPY cp TO STDOUT;
COPY cp TO STDOUT WITH (FORMAT csv, HEADER);
DROP TABLE cp;
