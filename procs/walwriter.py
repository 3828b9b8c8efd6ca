"""The WAL writer — mirrors src/backend/postmaster/walwriter.c.

Every wal_writer_delay it writes complete WAL pages and flushes asynchronous
commits (XLogBackgroundFlush). After LOOPS_UNTIL_HIBERNATE rounds with nothing
to do it hibernates — sleeps HIBERNATE_FACTOR times longer — and says so in
XLogCtl, so that an asynchronous commit wakes it through its latch. It starts
once recovery has finished. It also creates the next WAL segment ahead of
need, so that a backend crossing into it rarely waits for a 16 MB zero-fill
(PostgreSQL's checkpointer preallocates at checkpoints; tusk does it here too).
"""

from __future__ import annotations

import os

from access import xlog
from procs import child, interrupts

LOOPS_UNTIL_HIBERNATE = 50
HIBERNATE_FACTOR = 25


def main(env: child.ChildEnv, settings, segment) -> None:
    interrupts.install_standard_handlers()
    state: dict = {}
    left_till_hibernate = LOOPS_UNTIL_HIBERNATE
    hibernating = False
    xlog.set_walwriter(os.getpid(), sleeping=False)
    try:
        while True:
            if interrupts.handle_main_loop_interrupts(settings, env.datadir):
                return
            if hibernating != (left_till_hibernate <= 1):
                hibernating = left_till_hibernate <= 1
                xlog.set_walwriter(os.getpid(), sleeping=hibernating)
            child.reset_latch()
            xlog.reset_walwriter_latch()
            if xlog.xlog_background_flush(state):
                left_till_hibernate = LOOPS_UNTIL_HIBERNATE
            elif left_till_hibernate > 0:
                left_till_hibernate -= 1
            preallocate_next_segment()
            delay = settings.get("wal_writer_delay") / 1000.0
            if left_till_hibernate == 0:
                delay *= HIBERNATE_FACTOR
            child.wait_latch(delay)
    finally:
        xlog.close_log_file()
        xlog.set_walwriter(0, sleeping=False)


def preallocate_next_segment() -> None:
    """Zero-fill the segment after the one being inserted into, if missing."""
    geom = xlog.geometry()
    xlog.create_segment_file(geom.segno(xlog.get_xlog_insert_rec_ptr()) + 1)
