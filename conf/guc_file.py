"""The postgresql.conf parser.

Mirrors PostgreSQL 15's src/backend/utils/misc/guc-file.l (the flex scanner, ParseConfigFile,
ParseConfigFp, ParseConfigDirectory and DeescapeQuotedString): the same tokens, the same
``include``/``include_if_exists``/``include_dir`` rules, the same nesting limit and the same
error wordings.

Where it differs: PostgreSQL keeps a parameter name's spelling; here names are lower-cased
(lookups are case-insensitive anyway). And every error names the file and the line it comes
from, including those PostgreSQL reports without a location (a missing include file is
reported with the line of the include directive).
"""

import errno
import os
import re
import stat
from dataclasses import dataclass

CONF_FILE_MAX_DEPTH = 10
MAX_SYNTAX_ERRORS = 100

# SQLSTATEs of the errors below.
ERRCODE_SYNTAX_ERROR = "42601"
ERRCODE_CONFIG_FILE_ERROR = "F0000"
ERRCODE_PROGRAM_LIMIT_EXCEEDED = "54000"
ERRCODE_INVALID_PARAMETER_VALUE = "22023"
ERRCODE_UNDEFINED_FILE = "58P01"
ERRCODE_INSUFFICIENT_PRIVILEGE = "42501"
ERRCODE_IO_ERROR = "58030"


@dataclass(frozen=True)
class ConfigItem:
    """One ``name = value`` line: name lower-cased, value with quotes and escapes removed."""

    name: str
    value: str
    filename: str
    lineno: int


def with_location(message: str, filename: str | None, lineno: int | None) -> str:
    """``message`` followed by ' in file "F" line N', unless it already says so."""
    if filename is None or lineno is None:
        return message
    where = f'in file "{filename}" line {lineno}'
    return message if where in message else f"{message} {where}"


class ConfigFileError(Exception):
    """An error reading a configuration file; ``str()`` names the file and the line."""

    def __init__(self, filename: str | None, lineno: int | None, message: str,
                 sqlstate: str = ERRCODE_CONFIG_FILE_ERROR) -> None:
        self.filename = filename
        self.lineno = lineno
        self.message = message
        self.sqlstate = sqlstate
        super().__init__(with_location(message, filename, lineno))


# -- the scanner --------------------------------------------------------------------
#
# The token definitions of guc-file.l. Flex picks the longest match and, among equally
# long ones, the earliest rule; _next_token does the same with these patterns.

_LETTER = r"A-Za-z_\u0080-\U0010ffff"
_ID = rf"[{_LETTER}][{_LETTER}0-9]*"
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ID", re.compile(_ID)),
    ("QUALIFIED_ID", re.compile(rf"{_ID}\.{_ID}")),
    ("STRING", re.compile(r"'(?:[^'\\\n]|\\.|'')*'")),
    ("UNQUOTED_STRING", re.compile(rf"[{_LETTER}](?:[{_LETTER}0-9]|[-._:/])*")),
    ("INTEGER", re.compile(r"[-+]?(?:0x[0-9a-fA-F]+|[0-9]+)[a-zA-Z]*")),
    ("REAL", re.compile(r"[-+]?[0-9]*\.[0-9]*(?:[Ee][-+]?[0-9]+)?")),
    ("EQUALS", re.compile(r"=")),
)
_SKIP = re.compile(r"[ \t\r]+|#.*")
_VALUE_TOKENS = frozenset({"ID", "STRING", "INTEGER", "REAL", "UNQUOTED_STRING"})


def _tokens(line: str) -> list[tuple[str, str]]:
    """Split one line into (kind, text) tokens; an unexpected character is kind 'ERROR'."""
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(line):
        skip = _SKIP.match(line, pos)
        if skip:
            pos = skip.end()
            continue
        best: tuple[str, int] | None = None
        for kind, pattern in _RULES:
            m = pattern.match(line, pos)
            if m and (best is None or m.end() > best[1]):
                best = (kind, m.end())
        kind, end = best if best is not None else ("ERROR", pos + 1)
        out.append((kind, line[pos:end]))
        pos = end
    return out


_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def deescape_quoted_string(token: str) -> str:
    """Strip the quotes of a STRING token and apply its escapes (DeescapeQuotedString)."""
    s = token[1:-1]
    out: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            i += 1
            c = s[i]
            if c in _ESCAPES:
                out.append(_ESCAPES[c])
            elif "0" <= c <= "7":
                digits = c
                while len(digits) < 3 and i + 1 < len(s) and "0" <= s[i + 1] <= "7":
                    i += 1
                    digits += s[i]
                byte = int(digits, 8) & 0xFF
                # A byte above 0x7F is kept as a raw byte, as in PostgreSQL: the
                # surrogate escape turns back into that byte when encoded below.
                out.append(chr(byte) if byte < 0x80 else chr(0xDC00 + byte))
            else:
                out.append(c)
        elif c == "'" and i + 1 < len(s) and s[i + 1] == "'":
            out.append("'")
            i += 1
        else:
            out.append(c)
        i += 1
    return "".join(out).encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")


# -- files, includes, directories ----------------------------------------------------

def absolute_config_location(location: str, calling_file: str | None) -> str:
    """A relative path is relative to the directory of the file that names it."""
    if os.path.isabs(location):
        return os.path.normpath(location)
    base = os.path.dirname(calling_file) if calling_file else os.getcwd()
    return os.path.normpath(os.path.join(base, location))


class _Parser:
    def __init__(self, errors: list[ConfigFileError] | None, notices: list[str] | None) -> None:
        self.items: list[ConfigItem] = []
        self.errors = errors
        self.notices = notices

    def error(self, err: ConfigFileError) -> None:
        if self.errors is None:
            raise err
        self.errors.append(err)

    def parse_file(self, config_file: str, strict: bool, calling_file: str | None,
                   calling_lineno: int | None, depth: int) -> None:
        if depth > CONF_FILE_MAX_DEPTH:
            self.error(ConfigFileError(
                calling_file, calling_lineno,
                f'could not open configuration file "{config_file}": '
                "maximum nesting depth exceeded", ERRCODE_PROGRAM_LIMIT_EXCEEDED))
            return
        abs_path = absolute_config_location(config_file, calling_file)
        if calling_file is not None and abs_path == calling_file:
            self.error(ConfigFileError(
                calling_file, calling_lineno,
                f'configuration file recursion in "{calling_file}"',
                ERRCODE_INVALID_PARAMETER_VALUE))
            return
        try:
            with open(abs_path, "rb") as f:
                data = f.read()
        except OSError as e:
            if strict:
                self.error(ConfigFileError(
                    calling_file if calling_file is not None else abs_path, calling_lineno,
                    f'could not open configuration file "{abs_path}": {_strerror(e)}',
                    _file_errcode(e)))
            elif self.notices is not None:
                self.notices.append(with_location(
                    f'skipping missing configuration file "{abs_path}"',
                    calling_file, calling_lineno))
            return
        text = data.decode("utf-8", errors="surrogateescape")
        self.parse_text(text, abs_path, depth)

    def parse_text(self, text: str, filename: str, depth: int) -> None:
        syntax_errors = 0
        for lineno, line in enumerate(text.split("\n"), start=1):
            toks = _tokens(line)
            if not toks:
                continue
            bad = _check_line(toks)
            if bad is not None:
                near = "near end of line" if bad is True else f'near token "{bad}"'
                self.error(ConfigFileError(
                    filename, lineno,
                    f'syntax error in file "{filename}" line {lineno}, {near}',
                    ERRCODE_SYNTAX_ERROR))
                syntax_errors += 1
                if syntax_errors >= MAX_SYNTAX_ERRORS:
                    self.error(ConfigFileError(
                        filename, lineno,
                        f'too many syntax errors found, abandoning file "{filename}"',
                        ERRCODE_PROGRAM_LIMIT_EXCEEDED))
                    return
                continue
            name = toks[0][1].lower()
            kind, raw = toks[2] if toks[1][0] == "EQUALS" else toks[1]
            value = deescape_quoted_string(raw) if kind == "STRING" else raw
            if name == "include_dir":
                self.parse_directory(value, filename, lineno, depth + 1)
            elif name == "include_if_exists":
                self.parse_file(value, False, filename, lineno, depth + 1)
            elif name == "include":
                self.parse_file(value, True, filename, lineno, depth + 1)
            else:
                self.items.append(ConfigItem(name, value, filename, lineno))

    def parse_directory(self, includedir: str, calling_file: str, calling_lineno: int,
                        depth: int) -> None:
        directory = absolute_config_location(includedir, calling_file)
        try:
            names = os.listdir(directory)
        except OSError as e:
            self.error(ConfigFileError(
                calling_file, calling_lineno,
                f'could not open configuration directory "{directory}": {_strerror(e)}',
                _file_errcode(e)))
            return
        files = []
        for name in names:
            if len(name) < 6 or name.startswith(".") or not name.endswith(".conf"):
                continue
            path = os.path.join(directory, name)
            try:
                mode = os.stat(path).st_mode
            except OSError as e:
                self.error(ConfigFileError(
                    calling_file, calling_lineno,
                    f'could not stat file "{path}": {_strerror(e)}', _file_errcode(e)))
                return
            if not stat.S_ISDIR(mode):
                files.append(path)
        for path in sorted(files):
            self.parse_file(path, True, calling_file, calling_lineno, depth)


def _check_line(toks: list[tuple[str, str]]) -> str | bool | None:
    """None if the line is ``name [=] value``; else the offending token, or True at EOL."""
    if toks[0][0] not in ("ID", "QUALIFIED_ID"):
        return toks[0][1]
    rest = toks[2:] if len(toks) > 1 and toks[1][0] == "EQUALS" else toks[1:]
    if not rest:
        return True
    if rest[0][0] not in _VALUE_TOKENS:
        return rest[0][1]
    if len(rest) > 1:
        return rest[1][1]
    return None


def _strerror(e: OSError) -> str:
    return e.strerror or str(e)


def _file_errcode(e: OSError) -> str:
    if e.errno == errno.ENOENT:
        return ERRCODE_UNDEFINED_FILE
    if e.errno in (errno.EACCES, errno.EPERM):
        return ERRCODE_INSUFFICIENT_PRIVILEGE
    return ERRCODE_IO_ERROR


def parse_config_file(path: str, *, depth: int = 0,
                      errors: list[ConfigFileError] | None = None,
                      notices: list[str] | None = None,
                      missing_ok: bool = False) -> list[ConfigItem]:
    """Read ``path`` and the files it includes; return their items in file order.

    Later entries for the same name are kept: the consumer applies them in order, so the
    last one wins. Without ``errors`` the first problem raises ConfigFileError; with it,
    problems are appended there and parsing goes on with the next line (as PostgreSQL
    does, which reports every bad line). ``notices`` collects the 'skipping missing
    configuration file' messages of include_if_exists, and of ``path`` itself when
    ``missing_ok`` (as PostgreSQL reads postgresql.auto.conf).
    """
    parser = _Parser(errors, notices)
    parser.parse_file(os.path.abspath(path), not missing_ok, None, None, depth)
    return parser.items
