"""Start-up of every postmaster child — mirrors InitPostmasterChild (miscinit.c),
the latch (storage/ipc/latch.c) and PostmasterIsAlive (pmsignal.c).

Children are forked without exec, so they inherit the postmaster's loaded
interpreter. A child:

- closes the postmaster's own descriptors (listening sockets, self-pipe, the
  write end of the postmaster-death pipe);
- asks the kernel for SIGUSR1 when the postmaster dies (PR_SET_PDEATHSIG) and
  watches the read end of the death pipe, which reports EOF once no process
  holds the write end — that is, once the postmaster is gone;
- gets a latch: a flag plus a self-pipe registered with signal.set_wakeup_fd,
  so any signal (SIGURG for set_latch from another process, SIGHUP, SIGTERM,
  ...) wakes ``wait_latch`` at once.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import setproctitle

from utils import elog

PR_SET_PDEATHSIG = 1

# wait_latch result bits, as PostgreSQL's WL_* flags.
WL_LATCH_SET = 1
WL_SOCKET_READABLE = 2
WL_TIMEOUT = 8
WL_POSTMASTER_DEATH = 16


@dataclass
class ChildEnv:
    """What the postmaster hands to every child at fork."""

    datadir: str
    postmaster_pid: int
    death_pipe_r: int
    close_fds: list[int] = field(default_factory=list)  # postmaster-only descriptors


class Latch:
    """A process-local latch woken by signals through a self-pipe."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.is_set = False
        self.pid = os.getpid()  # the process it belongs to (not inherited across fork)
        signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)

    def set(self) -> None:
        self.is_set = True
        try:
            os.write(self.write_fd, b"\0")
        except BlockingIOError:
            pass

    def reset(self) -> None:
        self.is_set = False
        self._drain()

    def _drain(self) -> None:
        try:
            while os.read(self.read_fd, 4096):
                pass
        except BlockingIOError:
            pass


env: ChildEnv | None = None
latch: Latch | None = None
backend_type = "postmaster"


def set_latch(pid: int) -> None:
    """SetLatch on another process: wake it with SIGURG, as PostgreSQL does."""
    try:
        os.kill(pid, signal.SIGURG)
    except ProcessLookupError:
        pass


def _on_sigurg(_signo: int, _frame: object) -> None:
    if latch is not None:
        latch.is_set = True


# Called, best effort, just before a child leaves because the postmaster died (a
# backend tells its client why, as PostgreSQL's FATAL does).
on_postmaster_death: Callable[[], None] | None = None


def _on_postmaster_death_signal(_signo: int, _frame: object) -> None:
    if env is not None and os.getppid() != env.postmaster_pid:
        if on_postmaster_death is not None:
            try:
                on_postmaster_death()
            except Exception:  # leaving is what matters
                pass
        os._exit(1)


def _set_pdeathsig(signo: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signo, 0, 0, 0)
    except OSError:
        pass  # not Linux: the death pipe alone still works


def init_postmaster_child(child_env: ChildEnv, btype: str, title: str) -> None:
    """Turn a freshly forked process into a postmaster child of type ``btype``."""
    global env, latch, backend_type
    # The postmaster's wake-up pipe is about to be closed: stop writing to it first.
    signal.set_wakeup_fd(-1)
    env = child_env
    backend_type = btype
    for fd in child_env.close_fds:
        try:
            os.close(fd)
        except OSError:
            pass
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGQUIT,
                signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD, signal.SIGALRM):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    elog.init_process(btype)
    latch = Latch()
    signal.signal(signal.SIGURG, _on_sigurg)
    # PDEATHSIG: the postmaster is gone. Leave even from inside a semaphore wait,
    # whose holder may have died with it (nobody would ever wake us).
    signal.signal(signal.SIGUSR1, _on_postmaster_death_signal)
    _set_pdeathsig(signal.SIGUSR1)
    set_ps_display(title)
    if os.getppid() != child_env.postmaster_pid:
        os._exit(1)  # the postmaster died before we could ask to be told


def set_ps_display(title: str) -> None:
    setproctitle.setproctitle(f"tusk: {title}")


def postmaster_is_alive() -> bool:
    if env is None:
        return True
    try:
        r, _, _ = select.select([env.death_pipe_r], [], [], 0)
    except InterruptedError:
        return True
    return not r


def wait_latch(timeout: float | None, sockets: Iterable[int] = ()) -> int:
    """Sleep until the latch is set, a socket is readable, the timeout passes or
    the postmaster dies; returns WL_* bits (WaitLatchOrSocket)."""
    assert latch is not None and env is not None
    if latch.is_set:
        return WL_LATCH_SET
    fds = [latch.read_fd, env.death_pipe_r, *sockets]
    try:
        ready, _, _ = select.select(fds, [], [], timeout)
    except InterruptedError:
        ready = [latch.read_fd]
    except OSError as exc:
        if exc.errno == errno.EBADF:
            raise
        ready = []
    result = 0
    if latch.read_fd in ready:
        latch._drain()
        # A signal byte arrived: handlers have run; report it as a latch wake-up.
        result |= WL_LATCH_SET
        latch.is_set = True
    if env.death_pipe_r in ready:
        result |= WL_POSTMASTER_DEATH
    if any(s in ready for s in sockets):
        result |= WL_SOCKET_READABLE
    if not ready:
        result |= WL_TIMEOUT
    return result


def reset_latch() -> None:
    if latch is not None:
        latch.reset()


# Signals the postmaster blocks across fork; the child unblocks them once its
# own handlers are in place (PostgreSQL's BlockSig / UnBlockSig), so a SIGHUP
# or SIGTERM sent to a child that is still starting is never fatal.
FORK_BLOCKED_SIGNALS = {signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGQUIT,
                        signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD, signal.SIGALRM,
                        signal.SIGURG}


def block_signals() -> set[signal.Signals]:
    """Block FORK_BLOCKED_SIGNALS; returns the previous mask."""
    return signal.pthread_sigmask(signal.SIG_BLOCK, FORK_BLOCKED_SIGNALS)


def unblock_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORK_BLOCKED_SIGNALS)


def install_handlers(handlers: dict[signal.Signals, Callable[[int, object], None]]) -> None:
    """Install the process's signal handlers, then let signals in.

    Install them all in one call: signals pending since fork are delivered as
    soon as this returns.
    """
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    unblock_signals()


def quick_exit(code: int = 2) -> None:
    """Leave without running any cleanup: shared memory may be corrupt."""
    os._exit(code)


@dataclass
class BackendLaunch:
    """Everything the postmaster hands a freshly forked backend (BackendStartup)."""

    child_env: ChildEnv
    settings: object  # conf.guc.Settings, inherited from the postmaster
    segment: object  # shmem.segment.ShmemSegment
    cancel_key: int  # this backend's BackendKeyData secret
    cancel_keys: dict[int, int]  # pid -> secret of every other backend, as of fork time
    # canAcceptConnections' verdict: 'ok', 'startup', 'shutdown', 'recovery' or 'toomany'
    cac_state: str = "ok"
