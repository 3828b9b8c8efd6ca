"""The startup process — mirrors postmaster/startup.c and StartupXLOG in
access/transam/xlog.c.

Runs at every start. It reads pg_control, reports how the cluster was left,
and, after an unclean stop, performs crash recovery (WAL replay arrives with
the WAL issue; today there is no WAL to replay). It ends by marking the
cluster "in production" and exits 0, which tells the postmaster to open for
connections.
"""

from __future__ import annotations

import time

from catalog.pg_control import DBState, read_control_file, write_control_file
from procs import child, interrupts
from utils import elog


def _when(t: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def startup_xlog(datadir: str, settings) -> None:
    cf = read_control_file(datadir)
    state = cf.state
    if state == DBState.DB_SHUTDOWNED:
        elog.log(f"database system was shut down at {_when(cf.time)}")
    elif state == DBState.DB_SHUTDOWNING:
        elog.log(f"database system shutdown was interrupted; last known up at {_when(cf.time)}")
    elif state == DBState.DB_IN_CRASH_RECOVERY:
        elog.ereport(
            elog.LOG, f"database system was interrupted while in recovery at {_when(cf.time)}",
            hint="This probably means that some data is corrupted and you will have to use "
                 "the last backup for recovery.")
    else:
        elog.log(f"database system was interrupted; last known up at {_when(cf.time)}")
    do_sync = bool(settings.get("fsync"))
    if state != DBState.DB_SHUTDOWNED:
        elog.log("database system was not properly shut down; automatic recovery in progress")
        cf.state = DBState.DB_IN_CRASH_RECOVERY
        write_control_file(datadir, cf, do_sync=do_sync)
        elog.log("redo is not required")
    cf.state = DBState.DB_IN_PRODUCTION
    write_control_file(datadir, cf, do_sync=do_sync)


def main(env: child.ChildEnv, settings, segment) -> None:
    interrupts.install_standard_handlers()
    startup_xlog(env.datadir, settings)
