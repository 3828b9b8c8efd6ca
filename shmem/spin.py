"""Spinlocks — mirrors storage/lmgr/s_lock.c, built on POSIX semaphores.

A semaphore acquire/release pair costs about 0.14 µs uncontended here, less
than any Python-level test-and-set, so a "spinlock" is a binary semaphore held
for a few instructions and never across I/O or anything that can raise.

``with lock.held():`` takes it for a block; the lock is its own context manager
(a generator-based one would cost more than the lock itself).
"""

from __future__ import annotations

import posix_ipc


def _acquire_retrying(sem_acquire) -> None:
    """Wait again after a signal interrupted the wait (EINTR). A latch's SIGUSR1
    can arrive at any moment: a walwriter woken by every asynchronous commit
    would otherwise fail in the middle of its loop. An exception raised by a
    signal handler goes on its way; the lock was not taken."""
    while True:
        try:
            sem_acquire()
            return
        except posix_ipc.SignalError:
            continue


class SpinLock:
    __slots__ = ("sem", "_sem_acquire", "release")

    def __init__(self, sem: posix_ipc.Semaphore) -> None:
        self.sem = sem
        self._sem_acquire = sem.acquire
        self.release = sem.release

    def acquire(self) -> None:
        try:
            self._sem_acquire()
        except posix_ipc.SignalError:
            _acquire_retrying(self._sem_acquire)

    def held(self) -> SpinLock:
        return self

    def __enter__(self) -> None:
        try:  # acquire(), inlined: this is on the hottest paths
            self._sem_acquire()
        except posix_ipc.SignalError:
            _acquire_retrying(self._sem_acquire)

    def __exit__(self, *_exc: object) -> None:
        self.release()
