"""The checkpointer — mirrors src/backend/postmaster/checkpointer.c.

Protocol with the postmaster, as in PostgreSQL: SIGTERM is ignored (the
checkpointer must outlive every backend), SIGINT requests a checkpoint,
SIGUSR2 asks for the shutdown checkpoint and exit, SIGQUIT exits at once.

For now the checkpointer writes the shutdown checkpoint (every dirty buffer,
every file synced, the checkpoint record, pg_control marked "shut down");
timed and requested online checkpoints come with the checkpointer issue.
"""

from __future__ import annotations

import signal

from access.xlogcheckpoint import shutdown_xlog
from procs import child, interrupts

shutdown_xlog_pending = False
checkpoint_requested = False


def _req_shutdown_handler(_signo: int, _frame: object) -> None:
    global shutdown_xlog_pending
    shutdown_xlog_pending = True


def _req_checkpoint_handler(_signo: int, _frame: object) -> None:
    global checkpoint_requested
    checkpoint_requested = True


def main(env: child.ChildEnv, settings, segment) -> None:
    global checkpoint_requested
    interrupts.install_standard_handlers(shutdown_signal=None, extra={
        signal.SIGTERM: signal.SIG_IGN,
        signal.SIGINT: _req_checkpoint_handler,
        signal.SIGUSR2: _req_shutdown_handler,
    })
    while True:
        interrupts.handle_main_loop_interrupts(settings, env.datadir)
        if shutdown_xlog_pending:
            shutdown_xlog(env.datadir, settings)
            return
        checkpoint_requested = False
        child.reset_latch()
        child.wait_latch(float(settings.get("checkpoint_timeout")))
