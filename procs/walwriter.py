"""The WAL writer — mirrors src/backend/postmaster/walwriter.c.

Wakes every wal_writer_delay to flush WAL of asynchronous commits (the WAL
issue adds XLogBackgroundFlush); until then the loop keeps its schedule and
reacts to signals.
"""

from __future__ import annotations

from procs import child, interrupts


def main(env: child.ChildEnv, settings, segment) -> None:
    interrupts.install_standard_handlers()
    while True:
        if interrupts.handle_main_loop_interrupts(settings, env.datadir):
            return
        child.reset_latch()
        child.wait_latch(settings.get("wal_writer_delay") / 1000.0)
