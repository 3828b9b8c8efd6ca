-- pgbench's initialisation and TPC-B transaction (simple protocol, literal values)
-- on a 2-branch database, as pgbench -i and pgbench send them; then the sums.
drop table if exists pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers;
create table pgbench_history(tid int,bid int,aid    int,delta int,mtime timestamp,filler char(22));
create table pgbench_tellers(tid int not null,bid int,tbalance int,filler char(84)) with (fillfactor=100);
create table pgbench_accounts(aid    int not null,bid int,abalance int,filler char(84)) with (fillfactor=100);
create table pgbench_branches(bid int not null,bbalance int,filler char(88)) with (fillfactor=100);
begin;
truncate table pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers;
insert into pgbench_branches(bid,bbalance) values(1,0);
insert into pgbench_branches(bid,bbalance) values(2,0);
insert into pgbench_tellers(tid,bid,tbalance) values (1,1,0);
insert into pgbench_tellers(tid,bid,tbalance) values (2,1,0);
insert into pgbench_tellers(tid,bid,tbalance) values (3,2,0);
insert into pgbench_tellers(tid,bid,tbalance) values (4,2,0);
copy pgbench_accounts from stdin with (freeze on);
1	1	0	
2	1	0	
3	1	0	
4	1	0	
5	1	0	
6	1	0	
7	1	0	
8	1	0	
9	1	0	
10	1	0	
11	2	0	
12	2	0	
13	2	0	
14	2	0	
15	2	0	
16	2	0	
17	2	0	
18	2	0	
19	2	0	
20	2	0	
\.
commit;
vacuum analyze pgbench_branches;
vacuum analyze pgbench_tellers;
vacuum analyze pgbench_accounts;
vacuum analyze pgbench_history;
alter table pgbench_branches add primary key (bid);
alter table pgbench_tellers add primary key (tid);
alter table pgbench_accounts add primary key (aid);
select count(*) from pgbench_branches;
vacuum pgbench_branches;
vacuum pgbench_tellers;
truncate pgbench_history;
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + -1234 WHERE aid = 7;
SELECT abalance FROM pgbench_accounts WHERE aid = 7;
UPDATE pgbench_tellers SET tbalance = tbalance + -1234 WHERE tid = 2;
UPDATE pgbench_branches SET bbalance = bbalance + -1234 WHERE bid = 1;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (2, 1, 7, -1234, CURRENT_TIMESTAMP);
END;
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + 4321 WHERE aid = 15;
SELECT abalance FROM pgbench_accounts WHERE aid = 15;
UPDATE pgbench_tellers SET tbalance = tbalance + 4321 WHERE tid = 3;
UPDATE pgbench_branches SET bbalance = bbalance + 4321 WHERE bid = 2;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 2, 15, 4321, CURRENT_TIMESTAMP);
END;
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + 17 WHERE aid = 7;
SELECT abalance FROM pgbench_accounts WHERE aid = 7;
UPDATE pgbench_tellers SET tbalance = tbalance + 17 WHERE tid = 4;
UPDATE pgbench_branches SET bbalance = bbalance + 17 WHERE bid = 2;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (4, 2, 7, 17, CURRENT_TIMESTAMP);
END;
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + -5000 WHERE aid = 20;
SELECT abalance FROM pgbench_accounts WHERE aid = 20;
UPDATE pgbench_tellers SET tbalance = tbalance + -5000 WHERE tid = 1;
ROLLBACK;
select sum(abalance) from pgbench_accounts;
select sum(tbalance) from pgbench_tellers;
select sum(bbalance) from pgbench_branches;
select sum(delta), count(*) from pgbench_history;
select count(*) from pgbench_history where mtime > '2020-01-01' and mtime <= now();
select aid, bid, abalance, filler = '' as blank_filler, length(filler) from pgbench_accounts where abalance <> 0 order by aid;
select tid, bid, tbalance from pgbench_tellers order by tid;
select bid, bbalance from pgbench_branches order by bid;
select tid, bid, aid, delta from pgbench_history order by delta;
select count(*), sum(bid), min(aid), max(aid) from pgbench_accounts;
drop table if exists pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers;
