"""Render systemd/tusk.service.in into a unit for this installation.

Mirrors the example unit in PostgreSQL's docs ("Starting the Database
Server"), which an operator copies by hand and edits for the paths of the
``postgres`` binary, the data directory and the ``postgres`` account. Here the
one template, systemd/tusk.service.in, is filled in with:

- ``@TUSK@``: the ``tusk`` console script next to ``sys.executable`` (the
  venv or prefix this package is installed in), else ``tusk`` on $PATH;
- ``@DATADIR@``: the data directory, made absolute;
- ``@USER@`` / ``@GROUP@``: ``user`` if given, else the owner of the data
  directory; ``tusk`` when the directory is owned by root or does not exist yet
  (the server must not run as root: create that account, as PostgreSQL's
  packages create ``postgres``). The group is the user's primary group, or a
  group named like the user when the account is unknown here.

The template is read relative to the source tree (the project is installed
with ``pip install -e .``), so the template stays the single source.

Usage: ``python -m postmaster.systemd_unit DATADIR [USER] > tusk.service``
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import sys
from pathlib import Path

TEMPLATE_PATH = Path(__file__).resolve().parents[1] / "systemd" / "tusk.service.in"
DEFAULT_USER = "tusk"

# Characters that need no quoting in an ExecStart= word.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9/._+,:=@-]+")


def find_tusk() -> str:
    """Absolute path of this installation's ``tusk`` console script."""
    beside = Path(sys.executable).parent / "tusk"
    if beside.is_file() and os.access(beside, os.X_OK):
        return os.path.abspath(beside)
    found = shutil.which("tusk")
    if found is None:
        raise FileNotFoundError(f"no tusk executable in {beside.parent} or on $PATH")
    return os.path.abspath(found)


def _check_line(value: str) -> str:
    if not value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"not usable in a unit file: {value!r}")
    return value


def _exec_word(value: str, *, command: bool = False) -> str:
    """Quote one ExecStart= word: C escapes in quotes, %% for specifiers, $$ for variables.

    systemd expands $VARIABLES in the arguments but not in the command's own path, and
    refuses a command path containing quotes or backslashes.
    """
    _check_line(value)
    if command and any(c in value for c in "\"'\\"):
        raise ValueError(f"systemd cannot run an executable path with quotes: {value!r}")
    if not _PLAIN_WORD.fullmatch(value):
        value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    value = value.replace("%", "%%")
    return value if command else value.replace("$", "$$")


def _setting(value: str) -> str:
    """A User=/Group= value: one line, no whitespace, specifiers escaped."""
    if any(c.isspace() for c in _check_line(value)):
        raise ValueError(f"not a user or group name: {value!r}")
    return value.replace("%", "%%")


def _primary_group(user: str, default: str) -> str:
    try:
        gid = pwd.getpwnam(user).pw_gid
    except KeyError:
        return default
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def default_account(datadir: str) -> tuple[str, str]:
    """(user, group) that should run the server for ``datadir``; see the module docstring."""
    try:
        st = os.stat(datadir)
    except FileNotFoundError:
        return DEFAULT_USER, DEFAULT_USER
    if st.st_uid == 0:
        return DEFAULT_USER, DEFAULT_USER
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = str(st.st_uid)  # systemd accepts a numeric UID
    return user, _primary_group(user, str(st.st_gid))


def render_unit(datadir: str, user: str | None = None, *, tusk: str | None = None) -> str:
    """The text of a tusk.service for ``datadir``, run as ``user`` (default: see above).

    ``tusk`` overrides the executable path (packagers, tests); default find_tusk().
    """
    datadir = os.path.abspath(os.path.expanduser(datadir))
    if user is None:
        user, group = default_account(datadir)
    else:
        group = _primary_group(user, user)
    values = {
        "@TUSK@": _exec_word(os.path.abspath(tusk) if tusk else find_tusk(), command=True),
        "@DATADIR@": _exec_word(datadir),
        "@USER@": _setting(user),
        "@GROUP@": _setting(group),
    }
    return re.sub(r"@[A-Z_]+@", lambda m: values[m.group(0)], TEMPLATE_PATH.read_text())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2:
        print("usage: python -m postmaster.systemd_unit DATADIR [USER]", file=sys.stderr)
        return 2
    sys.stdout.write(render_unit(*args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
