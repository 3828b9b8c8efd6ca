"""Interrupt flags of an auxiliary process — mirrors postmaster/interrupt.c.

Signal handlers only set a flag here; the latch's self-pipe wakes the main
loop, which calls ``handle_main_loop_interrupts`` (HandleMainLoopInterrupts).
"""

from __future__ import annotations

import signal

from procs import child
from utils import elog

config_reload_pending = False
shutdown_request_pending = False


def signal_handler_for_config_reload(_signo: int, _frame: object) -> None:
    global config_reload_pending
    config_reload_pending = True


def signal_handler_for_shutdown_request(_signo: int, _frame: object) -> None:
    global shutdown_request_pending
    shutdown_request_pending = True


def signal_handler_for_crash_exit(_signo: int, _frame: object) -> None:
    """SIGQUIT: leave at once, without touching shared memory."""
    child.quick_exit(2)


def install_standard_handlers(shutdown_signal: int | None = signal.SIGTERM,
                              extra: dict | None = None) -> None:
    # SIGINT is ignored, as in PostgreSQL's auxiliary processes: a Ctrl-C at the
    # terminal reaches the whole process group, and only the postmaster acts on it.
    handlers = {
        signal.SIGHUP: signal_handler_for_config_reload,
        signal.SIGQUIT: signal_handler_for_crash_exit,
        signal.SIGINT: signal.SIG_IGN,
    }
    if shutdown_signal is not None:
        handlers[shutdown_signal] = signal_handler_for_shutdown_request
    handlers.update(extra or {})
    child.install_handlers(handlers)


def process_config_reload(settings, datadir: str) -> None:
    global config_reload_pending
    config_reload_pending = False
    for msg in settings.reload(datadir, is_postmaster=False):
        level = elog.LEVEL_BY_NAME.get(str(msg.elevel).upper(), elog.DEBUG2)
        elog.ereport(level, msg.message, detail=msg.detail, hint=msg.hint)


def handle_main_loop_interrupts(settings, datadir: str) -> bool:
    """Returns True when the process should exit normally."""
    if config_reload_pending:
        process_config_reload(settings, datadir)
    if not child.postmaster_is_alive():
        child.quick_exit(1)
    from procs.postinit import report_stats

    report_stats()
    return shutdown_request_pending
