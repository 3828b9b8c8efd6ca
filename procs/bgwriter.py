"""The background writer — mirrors src/backend/postmaster/bgwriter.c.

Wakes every bgwriter_delay. Its work (BgBufferSync: writing dirty buffers
ahead of the clock-sweep hand) arrives with the buffer manager; until then the
loop only keeps its schedule and reacts to signals.
"""

from __future__ import annotations

from procs import child, interrupts


def main(env: child.ChildEnv, settings, segment) -> None:
    interrupts.install_standard_handlers()
    while True:
        if interrupts.handle_main_loop_interrupts(settings, env.datadir):
            return
        child.reset_latch()
        child.wait_latch(settings.get("bgwriter_delay") / 1000.0)
