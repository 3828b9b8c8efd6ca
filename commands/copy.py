"""COPY FROM STDIN and COPY TO STDOUT in text and CSV formats — mirrors
src/backend/commands/copy.c (option processing), copyfromparse.c (CopyReadLine,
CopyReadAttributesText, CopyReadAttributesCSV) and copyto.c (CopyAttributeOutText,
CopyAttributeOutCSV).

The protocol side (CopyInResponse, CopyData, CopyDone/CopyFail, CopyOutResponse)
is tcop's: the Session gives ``copy_in`` (an iterator over the client's data) and
``copy_out`` (a sink for rows). Rows read are inserted in batches through the
executor's ResultRelation, so constraints and indexes are checked as for INSERT.

Where tusk differs: FREEZE is accepted and ignored (rows are inserted normally,
which is always correct); binary format and server-side files are not supported.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from utils.adt import datatypes as dt
from utils.elog import PgError

BATCH_ROWS = 1000


@dataclass
class CopyOptions:
    csv: bool = False
    delimiter: str = "\t"
    null: str = "\\N"
    header: bool = False
    quote: str = '"'
    escape: str = '"'
    freeze: bool = False
    force_quote: tuple[str, ...] = ()


def _defelem_value(d: dict[str, Any]) -> Any:
    arg = d.get("arg")
    if arg is None:
        return None
    if "String" in arg:
        return arg["String"]["sval"]
    if "Boolean" in arg:
        return arg["Boolean"].get("boolval", False)
    if "Integer" in arg:
        return arg["Integer"].get("ival", 0)
    if "List" in arg:
        return [i["String"]["sval"] for i in arg["List"]["items"]]
    if "A_Star" in arg:
        return "*"
    return None


def _bool_option(name: str, v: Any) -> bool:
    if v is None or isinstance(v, bool):
        return True if v is None else v
    s = str(v).lower()
    if s in ("true", "on", "1"):
        return True
    if s in ("false", "off", "0"):
        return False
    raise PgError("22023", f"{name} requires a Boolean value")


def parse_options(options: list[dict[str, Any]], is_from: bool, src: bytes = b""
                  ) -> CopyOptions:
    """ProcessCopyOptions with PostgreSQL's errors (and its cursor positions)."""
    o = CopyOptions()

    def at(d: dict[str, Any]) -> int | None:
        loc = d.get("location")
        return None if loc is None or loc < 0 else len(src[:loc].decode(errors="ignore")) + 1
    seen: set[str] = set()
    explicit_delim = explicit_null = explicit_quote = explicit_escape = False
    for node in options:
        d = node["DefElem"]
        name = d["defname"]
        v = _defelem_value(d)
        if name in seen:
            raise PgError("42601", "conflicting or redundant options", position=at(d))
        seen.add(name)
        if name == "format":
            if v == "csv":
                o.csv = True
            elif v == "text":
                o.csv = False
            elif v == "binary":
                raise PgError("0A000", "COPY BINARY is not supported")
            else:
                raise PgError("22023", f'COPY format "{v}" not recognized', position=at(d))
        elif name == "delimiter":
            o.delimiter, explicit_delim = str(v), True
        elif name == "null":
            o.null, explicit_null = str(v), True
        elif name == "header":
            if isinstance(v, str) and v.lower() == "match":
                raise PgError("0A000", "COPY HEADER MATCH is not supported")
            o.header = _bool_option(name, v)
        elif name == "quote":
            o.quote, explicit_quote = str(v), True
        elif name == "escape":
            o.escape, explicit_escape = str(v), True
        elif name == "freeze":
            o.freeze = _bool_option(name, v)
        elif name == "force_quote":
            o.force_quote = tuple(v) if isinstance(v, list) else (v,)
        elif name == "encoding":
            if str(v).upper().replace("-", "") not in ("UTF8", "SQL_ASCII"):
                raise PgError("0A000", f"COPY encoding {v} is not supported")
        else:
            raise PgError("42601", f'option "{name}" not recognized', position=at(d))
    if o.csv:
        if not explicit_delim:
            o.delimiter = ","
        if not explicit_null:
            o.null = ""
        if explicit_quote and not explicit_escape:
            o.escape = o.quote
    else:
        if explicit_quote:
            raise PgError("0A000", "COPY quote available only in CSV mode")
        if explicit_escape:
            raise PgError("0A000", "COPY escape available only in CSV mode")
    if len(o.delimiter) != 1:
        raise PgError("0A000", "COPY delimiter must be a single one-byte character")
    if o.delimiter in ("\r", "\n"):
        raise PgError("22023", "COPY delimiter cannot be newline or carriage return")
    if not o.csv and o.delimiter in "\\.abcdefghijklmnopqrstuvwxyz0123456789":
        raise PgError("22023", f'COPY delimiter cannot be "{o.delimiter}"')
    return o


# =============================================================================================
# Reading (COPY FROM)
# =============================================================================================

_TEXT_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ESCAPE_RE = re.compile(r"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)", re.DOTALL)


def _unescape(m: re.Match[str]) -> str:
    s = m.group(1)
    if s in _TEXT_ESCAPES:
        return _TEXT_ESCAPES[s]
    if s[0] == "x" and len(s) > 1:
        return chr(int(s[1:], 16))
    if s[0] in "01234567":
        return chr(int(s, 8) & 0xFF)
    return s


def _split_text_line(line: str, delim: str, null: str) -> list[str | None]:
    """CopyReadAttributesText: fields split at unescaped delimiters, de-escaped;
    a field equal to the NULL string (before de-escaping) is NULL."""
    if "\\" not in line:
        return [None if f == null else f for f in line.split(delim)]
    fields: list[str | None] = []
    i, n = 0, len(line)
    start = 0
    while i < n:
        c = line[i]
        if c == "\\" and i + 1 < n:
            i += 2
            continue
        if c == delim:
            raw = line[start:i]
            fields.append(None if raw == null else _ESCAPE_RE.sub(_unescape, raw))
            start = i + 1
        i += 1
    raw = line[start:]
    fields.append(None if raw == null else _ESCAPE_RE.sub(_unescape, raw))
    return fields


def text_rows(chunks: Iterator[bytes], o: CopyOptions) -> Iterator[tuple[int, list]]:
    """(line number, fields) of the text format, stopping at the end marker."""
    pending = ""
    lineno = 0
    first = True
    for chunk in chunks:
        try:
            pending += chunk.decode()
        except UnicodeDecodeError:
            raise PgError("22021", 'invalid byte sequence for encoding "UTF8"') from None
        lines = pending.split("\n")
        pending = lines.pop()
        for line in lines:
            lineno += 1
            if line.endswith("\r"):
                line = line[:-1]
            if line == "\\.":
                return
            if first and o.header:
                first = False
                continue
            first = False
            yield lineno, _split_text_line(line, o.delimiter, o.null)
    if pending and pending not in ("\\.", "\\.\r"):
        lineno += 1
        if not (first and o.header):
            yield lineno, _split_text_line(pending.rstrip("\r"), o.delimiter, o.null)


def csv_rows(chunks: Iterator[bytes], o: CopyOptions) -> Iterator[tuple[int, list]]:
    """CopyReadAttributesCSV: quoted fields may hold delimiters, quotes (doubled or
    escaped) and newlines; an unquoted field equal to the NULL string is NULL, a
    quoted one never is."""
    data = b"".join(chunks)
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise PgError("22021", 'invalid byte sequence for encoding "UTF8"') from None
    q, esc, delim, null = o.quote, o.escape, o.delimiter, o.null
    i, n = 0, len(text)
    lineno = 0
    first = True
    while i < n:
        lineno += 1
        fields: list[str | None] = []
        # One record.
        if text.startswith("\\.", i) and text[i + 2:i + 3] in ("", "\n", "\r"):
            return
        while True:
            if i < n and text[i] == q:
                i += 1
                buf = []
                while True:
                    if i >= n:
                        raise PgError("22P04", "unterminated CSV quoted field")
                    c = text[i]
                    if c == esc and i + 1 < n and text[i + 1] == q:
                        buf.append(q)
                        i += 2
                        continue
                    if c == q:
                        i += 1
                        break
                    buf.append(c)
                    i += 1
                # Anything unquoted after the closing quote joins the field.
                j = i
                while j < n and text[j] not in (delim, "\n", "\r"):
                    j += 1
                fields.append("".join(buf) + text[i:j])
                i = j
            else:
                j = i
                while j < n and text[j] not in (delim, "\n", "\r"):
                    j += 1
                raw = text[i:j]
                fields.append(None if raw == null else raw)
                i = j
            if i < n and text[i] == delim:
                i += 1
                continue
            break
        if i < n and text[i] == "\r":
            i += 1
        if i < n and text[i] == "\n":
            i += 1
        if first and o.header:
            first = False
            continue
        first = False
        yield lineno, fields


def _raw_line(fields: list, o: CopyOptions) -> str:
    """The line as read, for CONTEXT (CopyFromErrorCallback's line_buf)."""
    return o.delimiter.join(o.null if f is None else f for f in fields)


def copy_from(rel: Any, attnums: list[int] | None, o: CopyOptions, chunks: Iterator[bytes],
              cid: int, relname: str) -> int:
    """CopyFrom: convert each row with the columns' input functions, fill the other
    columns with their defaults, check constraints, insert, maintain indexes."""
    from access import heapam
    from executor.execute import _default_fns  # the same defaults INSERT uses
    from executor.modify import ResultRelation
    from parser.analyze import _table_rte
    from parser.parse_expr import ParseState

    target = ResultRelation.open(rel)
    attrs = [a for a in rel.desc.attrs if not a.attisdropped]
    natts = len(attrs)
    cols = list(range(natts)) if attnums is None else attnums
    inputs: list[Callable[[str], Any]] = []
    for c in cols:
        a = attrs[c]
        fn_in = dt.input_function(a.atttypid)
        length = dt.varchar_coercer(a.atttypmod, False, a.atttypid) \
            if a.atttypid in (1042, 1043) else None
        inputs.append(fn_in if length is None else (lambda s, f=fn_in, g=length: g(f(s))))
    rte = _table_rte(ParseState(b""), rel, rel.relname, None, 0, 1)
    defaults = [(c, fn) for c, fn in _default_fns(rel, rte).items() if c not in cols]
    rows_iter = csv_rows(chunks, o) if o.csv else text_rows(chunks, o)
    ncols = len(cols)
    count = 0
    batch: list[list[Any]] = []

    lines: list[int] = []

    def flush() -> None:
        tids = heapam.heap_multi_insert(rel, batch, cid)
        for values, tid, lineno in zip(batch, tids, lines, strict=True):
            try:
                target.insert_index_tuples(values, tid)
            except PgError as err:
                err.context = f"COPY {relname}, line {lineno}"
                raise
        batch.clear()
        lines.clear()

    for lineno, fields in rows_iter:
        if len(fields) != ncols:
            err = (PgError("22P04", f'missing data for column '
                                    f'"{attrs[cols[len(fields)]].attname}"')
                   if len(fields) < ncols else
                   PgError("22P04", "extra data after last expected column"))
            err.context = f'COPY {relname}, line {lineno}: "{_raw_line(fields, o)}"'
            raise err
        values: list[Any] = [None] * natts
        for c, fn, v in zip(cols, inputs, fields, strict=True):
            if v is not None:
                try:
                    values[c] = fn(v)
                except PgError as err:
                    err.context = (f"COPY {relname}, line {lineno}, column "
                                   f'{attrs[c].attname}: "{v}"')
                    raise
        for c, fn in defaults:
            values[c] = fn((), ())
        try:
            target.check_constraints(values)
        except PgError as err:
            err.context = f'COPY {relname}, line {lineno}: "{_raw_line(fields, o)}"'
            raise
        batch.append(values)
        lines.append(lineno)
        count += 1
        if len(batch) >= BATCH_ROWS:
            flush()
    if batch:
        flush()
    return count


# =============================================================================================
# Writing (COPY TO)
# =============================================================================================

_TEXT_OUT_ESCAPES = str.maketrans({"\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n",
                                   "\r": "\\r", "\t": "\\t", "\v": "\\v"})


def row_formatter(types: Sequence[int], o: CopyOptions,
                  force_quote: Sequence[bool] | None = None) -> Callable[[Sequence[Any]], bytes]:
    """CopyOneRowTo: one output line per row."""
    outs = [dt.output_function(ty) for ty in types]
    delim, null = o.delimiter, o.null
    if not o.csv:
        def text_line(row: Sequence[Any]) -> bytes:
            parts = [null if v is None else out(v).translate(_TEXT_OUT_ESCAPES)
                     for out, v in zip(outs, row, strict=True)]
            return (delim.join(parts) + "\n").encode()
        return text_line
    q, esc = o.quote, o.escape
    specials = (delim, q, "\n", "\r")
    forced = list(force_quote or [False] * len(types))

    def csv_field(s: str, force: bool) -> str:
        if force or s == null or any(c in s for c in specials):
            return q + "".join(esc + c if c in (q, esc) else c for c in s) + q
        return s

    def csv_line(row: Sequence[Any]) -> bytes:
        parts = [null if v is None else csv_field(out(v), f)
                 for out, v, f in zip(outs, row, forced, strict=True)]
        return (delim.join(parts) + "\n").encode()
    return csv_line


def header_line(names: Sequence[str], o: CopyOptions) -> bytes:
    if not o.csv:
        return (o.delimiter.join(names) + "\n").encode()
    fmt = row_formatter([25] * len(names), o)
    return fmt(list(names))


# =============================================================================================
# The statement (DoCopy)
# =============================================================================================

def do_copy(body: dict[str, Any], src: bytes, param_types: list[int] | None
            ) -> Callable[[Any, Sequence[Any]], tuple[list, str]]:
    """DoCopy: the runner of a COPY statement (checked when it runs, as PostgreSQL
    checks utility statements)."""
    is_from = bool(body.get("is_from"))
    if body.get("filename") is not None or body.get("is_program"):
        raise PgError("0A000", "COPY to or from a file or program is not supported; "
                               "use STDIN or STDOUT")
    options = parse_options(body.get("options", []), is_from, src)
    attlist = [a["String"]["sval"] for a in body.get("attlist", [])]
    query = body.get("query")
    if query is not None and is_from:
        raise PgError("42601", "COPY FROM does not support a query")

    def run(s: Any, params: Sequence[Any]) -> tuple[list, str]:
        from access import xact
        from executor import execute
        from utils import snapmgr

        if query is not None:
            (kind, qbody), = query.items()
            plan = execute.plan_statement(kind, qbody, src, None)
            if plan.kind != "select":
                raise PgError("0A000", "COPY of INSERT, UPDATE or DELETE is not supported")
            rows, _ = execute.run_plan(plan, (), s.check_interrupts)
            types = [c[1] for c in plan.columns]
            lines = _lines(rows, types, [c[0] for c in plan.columns], options)
            n = s.copy_out(len(types), lines)
            return [], f"COPY {n}"
        rel, attnums = _copy_relation(body["relation"], attlist, is_from)
        execute.acquire_executor_locks([(rel, 3 if is_from else 1)])
        if is_from:
            attrs = [a for a in rel.desc.attrs if not a.attisdropped]
            ncols = len(attnums) if attnums is not None else len(attrs)
            cid = xact.get_current_command_id(True)
            count = copy_from(rel, attnums, options, s.copy_in(ncols), cid, rel.relname)
            xact.command_counter_increment()
            return [], f"COPY {count}"
        from access import heapam

        attrs = [a for a in rel.desc.attrs if not a.attisdropped]
        cols = attnums if attnums is not None else list(range(len(attrs)))
        snapshot = snapmgr.get_transaction_snapshot()
        rows = ([values[c] for c in cols] for _, values in heapam.heap_scan(rel, snapshot))
        lines = _lines(rows, [attrs[c].atttypid for c in cols],
                       [attrs[c].attname for c in cols], options)
        n = s.copy_out(len(cols), lines)
        return [], f"COPY {n}"
    return run


def _lines(rows: Any, types: list[int], names: list[str], o: CopyOptions) -> Iterator[bytes]:
    if o.header:
        yield header_line(names, o)
    fmt = row_formatter(types, o)
    for row in rows:
        yield fmt(row)


def _copy_relation(rv: dict[str, Any], attlist: list[str], is_from: bool
                   ) -> tuple[Any, list[int] | None]:
    from utils import relcache

    rel = relcache.relation_open_by_name(rv["relname"], rv.get("schemaname"), 0)
    if rel is None:
        name = f"{rv['schemaname']}.{rv['relname']}" if rv.get("schemaname") else rv["relname"]
        raise PgError("42P01", f'relation "{name}" does not exist')
    if rel.relkind != "r":
        what = "view" if rel.relkind == "v" else "non-table relation"
        verb = "to" if is_from else "from"
        raise PgError("42809", f'cannot copy {verb} {what} "{rel.relname}"')
    if not attlist:
        return rel, None
    names = [a.attname for a in rel.desc.attrs if not a.attisdropped]
    out = []
    for name in attlist:
        if name not in names:
            raise PgError("42703", f'column "{name}" of relation "{rel.relname}" does not exist')
        i = names.index(name)
        if i in out:
            raise PgError("42701", f'column "{name}" specified more than once')
        out.append(i)
    return rel, out
