-- timestamp and timestamptz columns: input, output with DateStyle ISO and TimeZone
-- UTC, comparisons, now() (only compared, never printed), errors.
DROP TABLE IF EXISTS dt;
CREATE TABLE dt (id int, ts timestamp, tz timestamptz);
INSERT INTO dt VALUES (1, '2024-02-29 12:34:56', '2024-02-29 12:34:56+05:30'),
    (2, '1999-12-31 23:59:59.999999', '1999-12-31 23:59:59.5-08'),
    (3, 'epoch', 'epoch'), (4, NULL, NULL), (5, '2024-07-01', '2024-07-01');
SELECT * FROM dt ORDER BY id;
SELECT id FROM dt WHERE ts > '2000-01-01' ORDER BY id;
SELECT id FROM dt WHERE tz < '2000-01-01 00:00:00+00' ORDER BY id;
SELECT id, ts FROM dt ORDER BY ts DESC, id;
SELECT min(ts), max(tz), count(ts) FROM dt;
SELECT ts::text, tz::text, ts::timestamptz AS ts_as_tz, tz::timestamp AS tz_as_ts
FROM dt WHERE id = 1;
SELECT now() = now() AS same_now, now() > '2020-01-01' AS after_2020,
       CURRENT_TIMESTAMP = now() AS current_timestamp_is_now;
BEGIN;
SELECT now() = CURRENT_TIMESTAMP AS same_in_block;
COMMIT;
INSERT INTO dt (id, ts, tz) VALUES (6, now(), CURRENT_TIMESTAMP);
SELECT id, ts > '2020-01-01' AS recent_ts, tz > '2020-01-01' AS recent_tz FROM dt WHERE id = 6;
SET TimeZone = 'America/New_York';
SELECT id, tz FROM dt WHERE id IN (1, 5) ORDER BY id;
SELECT '2024-01-02 03:04:05'::timestamptz AS local_input;
RESET TimeZone;
SELECT id, tz FROM dt WHERE id IN (1, 5) ORDER BY id;
SET DateStyle = 'German';
SELECT ts FROM dt WHERE id = 1;
RESET DateStyle;
-- Errors
INSERT INTO dt VALUES (7, '2024-02-30', NULL);
INSERT INTO dt VALUES (7, 'soon', NULL);
INSERT INTO dt VALUES (7, NULL, '2024-01-01 25:00');
SELECT id FROM dt WHERE ts > 5;
DROP TABLE dt;
