-- Transaction block statements without tables: block states, warnings, SET LOCAL,
-- 25P02 after an error in a block, multi-statement queries, CHECKPOINT.
BEGIN;
SELECT 1 AS in_block;
COMMIT;
START TRANSACTION;
SELECT 2 AS in_block;
END;
BEGIN WORK;
ROLLBACK WORK;
BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ;
SHOW transaction_isolation;
COMMIT;
SHOW transaction_isolation;
START TRANSACTION READ ONLY;
SHOW transaction_read_only;
ABORT;
SHOW transaction_read_only;
-- Warnings
BEGIN;
BEGIN;
COMMIT;
COMMIT;
ROLLBACK;
END;
-- Settings follow the transaction
BEGIN;
SET LOCAL work_mem = '7MB';
SHOW work_mem;
COMMIT;
SHOW work_mem;
BEGIN;
SET work_mem = '7MB';
ROLLBACK;
SHOW work_mem;
BEGIN;
SET work_mem = '7MB';
COMMIT;
SHOW work_mem;
RESET work_mem;
SET LOCAL work_mem = '9MB';
SHOW work_mem;
BEGIN;
SELECT set_config('work_mem', '3MB', true);
SHOW work_mem;
COMMIT;
SHOW work_mem;
-- An error aborts the block: 25P02 until it ends
BEGIN;
SELECT 1 AS before_error;
SELECT 32768::smallint;
SELECT 2 AS after_error;
SHOW work_mem;
SET work_mem = '1MB';
COMMIT;
SHOW work_mem;
BEGIN;
SELECT 32768::smallint;
END;
BEGIN;
SELECT 32768::smallint;
ROLLBACK;
SELECT 3 AS after_rollback;
-- AND CHAIN keeps the characteristics
BEGIN ISOLATION LEVEL SERIALIZABLE;
COMMIT AND CHAIN;
SHOW transaction_isolation;
ROLLBACK AND CHAIN;
SHOW transaction_isolation;
COMMIT;
COMMIT AND CHAIN;
-- Several statements in one query string form one implicit transaction
SELECT 1 AS first \; SELECT 2 AS second;
SELECT 1 AS first \; SELECT 32768::smallint \; SELECT 3 AS third;
BEGIN \; SELECT 4 AS in_block \; COMMIT;
SET LOCAL work_mem = '5MB' \; SHOW work_mem;
SHOW work_mem;
-- CHECKPOINT
CHECKPOINT;
BEGIN;
CHECKPOINT;
COMMIT;
