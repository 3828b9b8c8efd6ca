"""The checkpointer — mirrors src/backend/postmaster/checkpointer.c.

Protocol with the postmaster, as in PostgreSQL: SIGTERM is ignored (the
checkpointer must outlive every backend), SIGINT requests a checkpoint,
SIGUSR2 asks for the shutdown checkpoint and exit, SIGQUIT exits at once.

Until the WAL and buffer pool exist, a checkpoint only records the cluster
state in pg_control; the shutdown checkpoint marks the cluster cleanly shut
down so the next start skips recovery.
"""

from __future__ import annotations

import signal

from catalog.pg_control import DBState, read_control_file, write_control_file
from procs import child, interrupts
from utils import elog

shutdown_xlog_pending = False
checkpoint_requested = False


def _req_shutdown_handler(_signo: int, _frame: object) -> None:
    global shutdown_xlog_pending
    shutdown_xlog_pending = True


def _req_checkpoint_handler(_signo: int, _frame: object) -> None:
    global checkpoint_requested
    checkpoint_requested = True


def shutdown_xlog(datadir: str, settings) -> None:
    """ShutdownXLOG: the shutdown checkpoint, then pg_control says 'shut down'."""
    elog.log("shutting down")
    cf = read_control_file(datadir)
    cf.state = DBState.DB_SHUTDOWNED
    write_control_file(datadir, cf, do_sync=settings.get("fsync"))


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
