"""The startup process — mirrors src/backend/postmaster/startup.c.

Runs at every start: StartupXLOG (access/xlogrecovery.py) reports how the
cluster was left, replays WAL after an unclean stop, writes the
end-of-recovery checkpoint, and leaves pg_control "in production". Exit 0
tells the postmaster to open for connections.
"""

from __future__ import annotations

from access.xlogrecovery import startup_xlog
from procs import child, interrupts


def main(env: child.ChildEnv, settings, segment) -> None:
    interrupts.install_standard_handlers()
    startup_xlog(env.datadir, settings)
