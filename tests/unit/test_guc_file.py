"""conf.guc_file: the postgresql.conf syntax, includes, and errors that name file and line.

The expected tokenisation and messages were checked against PostgreSQL 15.18 (pg_ctl reload
with the same lines, reading the server log).
"""

import os
from pathlib import Path

import pytest

from conf.guc_file import (
    ConfigFileError,
    ConfigItem,
    deescape_quoted_string,
    parse_config_file,
    with_location,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def parse(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    conf = write(tmp_path / "postgresql.conf", text)
    return [(i.name, i.value) for i in parse_config_file(str(conf))]


def parse_error(tmp_path: Path, text: str) -> ConfigFileError:
    conf = write(tmp_path / "postgresql.conf", text)
    with pytest.raises(ConfigFileError) as info:
        parse_config_file(str(conf))
    return info.value


# -- syntax -----------------------------------------------------------------------------

def test_name_value_forms_and_comments(tmp_path: Path) -> None:
    text = (
        "# a comment\n"
        "\n"
        "shared_buffers = 128MB   # trailing comment\n"
        "port 5433\n"
        "  checkpoint_completion_target=0.9\n"
        "Log_Destination = stderr\r\n"
        "listen_addresses = '*'\n"
        "unix_socket_directories = '/tmp, /var/run/tusk'\n"
        "log_line_prefix = '%m [%p] # not a comment'\n"
        "wal_buffers = -1\n"
        "unix_socket_permissions = 0777\n"
        "commit_siblings = 0x1F\n"
        "foo.bar = some-thing/with:chars.x\n"
        "x = .\n"
        "y = 1.5e3\n"
        "last_line_without_newline = on"
    )
    assert parse(tmp_path, text) == [
        ("shared_buffers", "128MB"),
        ("port", "5433"),
        ("checkpoint_completion_target", "0.9"),
        ("log_destination", "stderr"),
        ("listen_addresses", "*"),
        ("unix_socket_directories", "/tmp, /var/run/tusk"),
        ("log_line_prefix", "%m [%p] # not a comment"),
        ("wal_buffers", "-1"),
        ("unix_socket_permissions", "0777"),
        ("commit_siblings", "0x1F"),
        ("foo.bar", "some-thing/with:chars.x"),
        ("x", "."),
        ("y", "1.5e3"),
        ("last_line_without_newline", "on"),
    ]


def test_items_carry_file_and_line(tmp_path: Path) -> None:
    conf = write(tmp_path / "postgresql.conf", "\n# c\nport = 1\n\nport = 2\n")
    assert parse_config_file(str(conf)) == [
        ConfigItem("port", "1", str(conf), 3),
        ConfigItem("port", "2", str(conf), 5),  # duplicates are all kept, in order
    ]


@pytest.mark.parametrize("token, value", [
    (r"'it''s'", "it's"),
    (r"'it\'s'", "it's"),
    (r"'a\\b'", "a\\b"),
    (r"'\n\t\b\f\r'", "\n\t\b\f\r"),
    (r"'\101\60x'", "A0x"),
    (r"'\303\251'", "é"),  # octal escapes are bytes
    (r"'\q'", "q"),
    ("''", ""),
])
def test_quoted_string_escapes(token: str, value: str) -> None:
    assert deescape_quoted_string(token) == value


def test_quoted_string_in_file(tmp_path: Path) -> None:
    text = "search_path = '\"$user\", public'\nlog_line_prefix = '%m \\'q\\' '' '\n"
    assert parse(tmp_path, text) == [
        ("search_path", '"$user", public'),
        ("log_line_prefix", "%m 'q' ' "),
    ]


@pytest.mark.parametrize("line, near", [
    ("x = = 3", 'near token "="'),
    ("y 'a' 'b'", "near token \"'b'\""),
    ("z =", "near end of line"),
    ("z", "near end of line"),
    ("= 3", 'near token "="'),
    ("commit_delay = 1e5", 'near token "5"'),  # '1e' is an INTEGER token, as in flex
    ("foo.baz = foo.bar", 'near token "foo.bar"'),  # a qualified name is no value
    ("a.b.c = 1", 'near token "a.b.c"'),
    ("unix_socket_directories = /tmp", 'near token "/"'),
    ("log_destination = stderr,jsonlog", 'near token ","'),
    ("shared_buffers = 1.5MB", 'near token "MB"'),
    ("s = 'unterminated", "near token \"'\""),
    ("'quoted' = 1", "near token \"'quoted'\""),
])
def test_syntax_errors_name_file_and_line(tmp_path: Path, line: str, near: str) -> None:
    err = parse_error(tmp_path, f"# first\nport = 5433\n{line}\n")
    path = str(tmp_path / "postgresql.conf")
    assert str(err) == f'syntax error in file "{path}" line 3, {near}'
    assert (err.filename, err.lineno, err.sqlstate) == (path, 3, "42601")


def test_all_syntax_errors_are_collected(tmp_path: Path) -> None:
    conf = write(tmp_path / "postgresql.conf", "a = = 1\nport = 1\nb = 'x' y\nc\n")
    errors: list[ConfigFileError] = []
    items = parse_config_file(str(conf), errors=errors)
    assert [i.name for i in items] == ["port"]
    assert [(e.lineno, e.message.rsplit(", ", 1)[1]) for e in errors] == [
        (1, 'near token "="'), (3, 'near token "y"'), (4, "near end of line")]


def test_too_many_syntax_errors(tmp_path: Path) -> None:
    conf = write(tmp_path / "postgresql.conf", "= 1\n" * 150)
    errors: list[ConfigFileError] = []
    parse_config_file(str(conf), errors=errors)
    assert len(errors) == 101
    assert str(errors[-1]) == (f'too many syntax errors found, abandoning file "{conf}" '
                               f'in file "{conf}" line 100')


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.conf"
    with pytest.raises(ConfigFileError) as info:
        parse_config_file(str(path))
    assert str(info.value) == \
        f'could not open configuration file "{path}": No such file or directory'
    assert info.value.sqlstate == "58P01"
    notices: list[str] = []
    assert parse_config_file(str(path), missing_ok=True, notices=notices) == []
    assert notices == [f'skipping missing configuration file "{path}"']


def test_with_location() -> None:
    assert with_location("boom", "/f", 3) == 'boom in file "/f" line 3'
    assert with_location('x in file "/f" line 3', "/f", 3) == 'x in file "/f" line 3'
    assert with_location("boom", "/f", None) == "boom"


# -- includes ---------------------------------------------------------------------------

def test_include_relative_to_including_file(tmp_path: Path) -> None:
    write(tmp_path / "conf.d" / "more.conf", "port = 2\ninclude '../last.conf'\n")
    write(tmp_path / "last.conf", "port = 3\n")
    conf = write(tmp_path / "postgresql.conf",
                 "port = 1\ninclude 'conf.d/more.conf'\nINCLUDE = 'last.conf'\nport = 4\n")
    items = parse_config_file(str(conf))
    assert [(i.value, os.path.basename(i.filename), i.lineno) for i in items] == [
        ("1", "postgresql.conf", 1),
        ("2", "more.conf", 1),
        ("3", "last.conf", 1),
        ("3", "last.conf", 1),
        ("4", "postgresql.conf", 4),
    ]


def test_include_absolute_path(tmp_path: Path) -> None:
    other = write(tmp_path / "elsewhere" / "x.conf", "port = 9\n")
    conf = write(tmp_path / "d" / "postgresql.conf", f"include '{other}'\n")
    assert [(i.name, i.value, i.filename) for i in parse_config_file(str(conf))] == [
        ("port", "9", str(other))]


def test_include_missing_names_the_include_line(tmp_path: Path) -> None:
    conf = write(tmp_path / "postgresql.conf", "port = 1\ninclude 'nothere.conf'\n")
    with pytest.raises(ConfigFileError) as info:
        parse_config_file(str(conf))
    assert str(info.value) == (
        f'could not open configuration file "{tmp_path}/nothere.conf": No such file or '
        f'directory in file "{conf}" line 2')
    assert (info.value.filename, info.value.lineno) == (str(conf), 2)


def test_include_if_exists(tmp_path: Path) -> None:
    write(tmp_path / "here.conf", "port = 2\n")
    conf = write(tmp_path / "postgresql.conf",
                 "include_if_exists 'nothere.conf'\ninclude_if_exists 'here.conf'\n")
    notices: list[str] = []
    items = parse_config_file(str(conf), notices=notices)
    assert [(i.name, i.value) for i in items] == [("port", "2")]
    assert notices == [f'skipping missing configuration file "{tmp_path}/nothere.conf" '
                       f'in file "{conf}" line 1']


def test_include_dir(tmp_path: Path) -> None:
    d = tmp_path / "conf.d"
    write(d / "20-b.conf", "b = 2\n")
    write(d / "10-a.conf", "a = 1\n")
    write(d / "b-lower.conf", "lower = 1\n")
    write(d / "C-upper.conf", "upper = 1\n")  # byte order: upper case before lower case
    write(d / ".hidden.conf", "hidden = 1\n")
    write(d / "notes.txt", "txt = 1\n")
    write(d / ".conf", "dot = 1\n")
    write(d / "sub.conf" / "x.conf", "subdir = 1\n")  # a directory named *.conf is skipped
    conf = write(tmp_path / "postgresql.conf", "include_dir 'conf.d'\nlast = 1\n")
    assert [i.name for i in parse_config_file(str(conf))] == ["a", "b", "upper", "lower", "last"]


def test_include_dir_missing(tmp_path: Path) -> None:
    conf = write(tmp_path / "postgresql.conf", "\ninclude_dir 'nodir'\n")
    with pytest.raises(ConfigFileError) as info:
        parse_config_file(str(conf))
    assert str(info.value) == (
        f'could not open configuration directory "{tmp_path}/nodir": No such file or '
        f'directory in file "{conf}" line 2')


def test_include_dir_dangling_link(tmp_path: Path) -> None:
    d = tmp_path / "conf.d"
    d.mkdir()
    (d / "x.conf").symlink_to(tmp_path / "missing")
    conf = write(tmp_path / "postgresql.conf", "include_dir 'conf.d'\n")
    with pytest.raises(ConfigFileError) as info:
        parse_config_file(str(conf))
    assert str(info.value).startswith(f'could not stat file "{d}/x.conf": No such file')
    assert info.value.lineno == 1


def test_include_self_is_recursion(tmp_path: Path) -> None:
    conf = write(tmp_path / "postgresql.conf", "port = 1\ninclude 'postgresql.conf'\n")
    with pytest.raises(ConfigFileError) as info:
        parse_config_file(str(conf))
    assert str(info.value) == \
        f'configuration file recursion in "{conf}" in file "{conf}" line 2'


def test_include_loop_hits_nesting_limit(tmp_path: Path) -> None:
    write(tmp_path / "a.conf", "include 'b.conf'\n")
    b = write(tmp_path / "b.conf", "x = 1\ninclude 'a.conf'\n")
    conf = write(tmp_path / "postgresql.conf", "include 'a.conf'\n")
    with pytest.raises(ConfigFileError) as info:
        parse_config_file(str(conf))
    # As PostgreSQL: the name as written, then (tusk) where it was written.
    assert str(info.value) == ('could not open configuration file "a.conf": maximum nesting '
                               f'depth exceeded in file "{b}" line 2')
    assert info.value.sqlstate == "54000"


def test_nesting_depth_ten_is_allowed(tmp_path: Path) -> None:
    for n in range(10):
        write(tmp_path / f"n{n}.conf", f"include 'n{n + 1}.conf'\n")
    write(tmp_path / "n10.conf", "deep = 1\n")
    conf = write(tmp_path / "postgresql.conf", "include 'n0.conf'\n")
    with pytest.raises(ConfigFileError, match="maximum nesting depth exceeded"):
        parse_config_file(str(conf))
    conf.write_text("include 'n1.conf'\n")
    assert [i.name for i in parse_config_file(str(conf))] == ["deep"]


def test_errors_in_included_files_are_collected(tmp_path: Path) -> None:
    inc = write(tmp_path / "inc.conf", "ok = 1\nbad = = 2\n")
    conf = write(tmp_path / "postgresql.conf",
                 "include 'inc.conf'\ninclude 'gone.conf'\nalso = 3\n")
    errors: list[ConfigFileError] = []
    items = parse_config_file(str(conf), errors=errors)
    assert [i.name for i in items] == ["ok", "also"]
    assert [(e.filename, e.lineno) for e in errors] == [(str(inc), 2), (str(conf), 2)]
