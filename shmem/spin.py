"""Spinlocks — mirrors storage/lmgr/s_lock.c, built on POSIX semaphores.

A semaphore acquire/release pair costs about 0.14 µs uncontended here, less
than any Python-level test-and-set, so a "spinlock" is a binary semaphore held
for a few instructions and never across I/O or anything that can raise.

``with lock.held():`` takes it for a block; the lock is its own context manager
(a generator-based one would cost more than the lock itself).
"""

from __future__ import annotations

import posix_ipc


class SpinLock:
    __slots__ = ("sem", "acquire", "release")

    def __init__(self, sem: posix_ipc.Semaphore) -> None:
        self.sem = sem
        self.acquire = sem.acquire
        self.release = sem.release

    def held(self) -> SpinLock:
        return self

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()
