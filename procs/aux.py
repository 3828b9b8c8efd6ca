"""AuxiliaryProcessMain — mirrors src/backend/postmaster/auxprocess.c.

Common start-up of the startup process, checkpointer, background writer and
walwriter: become a postmaster child, claim the process's PGPROC slot, then
run the process's main loop. Each main loop waits on its latch and reacts to
PostgreSQL's signals for its type.
"""

from __future__ import annotations

import importlib

from procs import child
from procs.postinit import init_process, proc_kill
from shmem.proc import BackendType

_AUX = {
    "startup": (BackendType.B_STARTUP, "procs.startup", "startup"),
    "checkpointer": (BackendType.B_CHECKPOINTER, "procs.checkpointer", "checkpointer"),
    "bgwriter": (BackendType.B_BG_WRITER, "procs.bgwriter", "background writer"),
    "walwriter": (BackendType.B_WAL_WRITER, "procs.walwriter", "walwriter"),
}


def aux_main(kind: str, env: child.ChildEnv, settings, segment) -> None:
    btype, module, title = _AUX[kind]
    child.init_postmaster_child(env, btype.desc, title)
    procs = init_process(segment, settings, btype)
    main = importlib.import_module(module).main
    main(env, settings, segment)
    proc_kill(procs)
