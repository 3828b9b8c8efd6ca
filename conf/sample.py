"""Renders postgresql.conf.sample from the GUC table.

PostgreSQL keeps src/backend/utils/misc/postgresql.conf.sample by hand (and checks it
against guc.c with src/backend/utils/misc/check_guc); here it is generated from
conf.guc_tables, so it cannot drift: one section per config group, every parameter that
belongs in the sample commented out with its default as SHOW prints it, its range or
allowed values, and '(change requires restart)' for postmaster-context parameters.
initdb copies the result into a new cluster as postgresql.conf.

The rendered file for 8kB WAL blocks is committed as conf/postgresql.conf.sample;
regenerate it with ``python -m conf.sample``.
"""

import os
import re

from conf.guc import format_value
from conf.guc_tables import GROUPS, INT_MAX, TABLE, ConfigVariable, GucContext

COMMENT_COLUMN = 40  # comments start at the sixth tab stop, as in PostgreSQL's sample
LINE_WIDTH = 79
SAMPLE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "postgresql.conf.sample")

_HEADER = """\
# -----------------------
# tusk configuration file
# -----------------------
#
# Each line is "name = value" (the "=" is optional); "#" starts a comment
# anywhere on a line. Parameter names are those of PostgreSQL 15, and so are
# their units, defaults and meanings.
#
# The commented-out settings below show the default values. Commenting a
# setting out again and reloading puts it back to its default.
#
# The server reads this file at start and again when it receives SIGHUP
# ("tusk_ctl reload", or "SELECT pg_reload_conf()"). Parameters marked
# "(change requires restart)" only take effect after a restart.
#
# Any parameter can also be given on the command line, e.g.
# "tusk -c log_connections=on", and many can be changed per session with SET.
#
# Memory units:  B  = bytes            Time units:  us  = microseconds
#                kB = kilobytes                     ms  = milliseconds
#                MB = megabytes                     s   = seconds
#                GB = gigabytes                     min = minutes
#                TB = terabytes                     h   = hours
#                                                   d   = days
"""

_FOOTER = """

#------------------------------------------------------------------------------
# CONFIG FILE INCLUDES
#------------------------------------------------------------------------------

# These directives read other files as if their lines were written here.
# Relative paths are relative to the directory of the file naming them.

#include_dir = '...'			# every *.conf file in a directory, in
					# name order
#include_if_exists = '...'		# a file, skipped if it does not exist
#include = '...'			# a file, which must exist


#------------------------------------------------------------------------------
# CUSTOMIZED OPTIONS
#------------------------------------------------------------------------------

# Add settings for extensions here
"""

_BARE_VALUE = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def _in_sample(v: ConfigVariable) -> bool:
    return v.context != GucContext.INTERNAL and not v.not_in_sample


def _value_text(v: ConfigVariable, wal_block_size: int) -> str:
    """The default as it would be written in the file (strings quoted)."""
    text = format_value(v, v.boot_val, wal_block_size)
    if v.vartype == "string" or (v.vartype == "enum" and not _BARE_VALUE.fullmatch(text)):
        return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
    return text


# What a range cannot say: special values.
_SPECIAL = {
    "listen_addresses": "comma-separated list; '*' for all",
    "unix_socket_directories": "comma-separated list of directories",
    "wal_buffers": "-1 sets based on shared_buffers",
    "commit_delay": "in microseconds",
    "log_destination": "stderr, jsonlog, or stderr,jsonlog",
    "log_rotation_age": "0 disables",
    "log_rotation_size": "0 disables",
    "statement_timeout": "0 disables",
    "lock_timeout": "0 disables",
    "idle_in_transaction_session_timeout": "0 disables",
    "idle_session_timeout": "0 disables",
    "checkpoint_warning": "0 disables",
    "log_startup_progress_interval": "0 disables",
}


def _comments(v: ConfigVariable, wal_block_size: int) -> list[str]:
    notes = [_SPECIAL[v.key]] if v.key in _SPECIAL else []
    if v.vartype == "enum":
        notes.append(", ".join(v.enum_values))
    elif v.vartype in ("int", "real") and v.min_val is not None and v.max_val is not None:
        lo = format_value(v, v.min_val, wal_block_size)
        hi = format_value(v, v.max_val, wal_block_size)
        if v.max_val >= INT_MAX:
            if v.min_val != 0:
                notes.append(f"min {lo}")
        elif v.min_val != v.max_val:
            notes.append(f"range {lo} .. {hi}")
    lines = _wrap("; ".join(notes), LINE_WIDTH - COMMENT_COLUMN - 2) if notes else []
    if v.context == GucContext.POSTMASTER:
        lines.append("(change requires restart)")
    return lines


def _wrap(text: str, width: int) -> list[str]:
    """Break a comment after commas and semicolons only, so that values stay whole."""
    lines: list[str] = []
    for piece in re.split(r"(?<=[,;]) ", text):
        if lines and len(lines[-1]) + 1 + len(piece) <= width:
            lines[-1] += " " + piece
        else:
            lines.append(piece)
    return lines


def _pad_to_comment(line: str) -> str:
    col, tabs = len(line), 0
    while col < COMMENT_COLUMN or tabs == 0:
        col = (col // 8 + 1) * 8
        tabs += 1
    return line + "\t" * tabs


def _parameter_lines(v: ConfigVariable, wal_block_size: int) -> list[str]:
    line = f"#{v.name} = {_value_text(v, wal_block_size)}"
    notes = _comments(v, wal_block_size)
    if not notes:
        return [line]
    lines = [_pad_to_comment(line) + "# " + notes[0]]
    lines += ["\t" * (COMMENT_COLUMN // 8) + "# " + note for note in notes[1:]]
    return lines


def render_sample(wal_block_size: int = 8192) -> str:
    """The text of postgresql.conf.sample for a cluster with this WAL block size."""
    out = [_HEADER]
    current_top = None
    for group in GROUPS:
        members = [v for v in TABLE if v.group == group and _in_sample(v)]
        if not members:
            continue
        top, _, sub = group.partition(" / ")
        if top != current_top:
            out += ["", "#" + "-" * 78, f"# {top.upper()}", "#" + "-" * 78, ""]
            current_top = top
        if sub:
            out += [f"# - {sub} -", ""]
        for v in members:
            out += _parameter_lines(v, wal_block_size)
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n" + _FOOTER


def write_sample(path: str = SAMPLE_PATH) -> None:
    with open(path, "w") as f:
        f.write(render_sample())


if __name__ == "__main__":
    write_sample()
