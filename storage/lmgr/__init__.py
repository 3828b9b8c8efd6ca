"""The heavyweight lock manager — mirrors src/backend/storage/lmgr/ of PostgreSQL 15.

- ``lock``: the shared lock table (lock.c), the per-backend LOCALLOCK table, the
  fast path for weak relation locks, waiting and waking (ProcSleep, ProcWakeup,
  ProcLockWakeup of proc.c) and the lock status behind pg_locks.
- ``deadlock``: the waits-for graph search (deadlock.c).
- ``lmgr``: the conveniences the rest of the server calls (lmgr.c):
  relation, tuple, transaction and object locks, and pg_locks' rows.

LWLocks (shmem/lwlock.py) are the other kind of lock; this package uses them
for its partition locks.
"""
