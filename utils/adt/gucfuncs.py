"""pg_settings — mirrors show_all_settings / GetConfigOptionByNum of PostgreSQL 15's
src/backend/utils/misc/guc.c and the pg_settings view of catalog/system_views.sql.

One row per parameter of this session's configuration (conf.guc.Settings, whose
definitions are conf/guc_tables.py), sorted by name as PostgreSQL's sorted GUC
array is, leaving out GUC_NO_SHOW_ALL parameters (and custom placeholders).
``setting``, ``boot_val`` and ``reset_val`` are in the parameter's base unit
without the unit (shared_buffers: 16384 with unit 8kB), except that ``setting``
keeps a show hook's spelling (unix_socket_permissions: 0777) as PostgreSQL does;
``sourcefile`` and ``sourceline`` are shown to superusers for values from a
configuration file.

Where tusk differs: ``extra_desc`` (PostgreSQL's long descriptions) is NULL — the
GUC table carries only the short ones. UPDATE pg_settings (set_config through
the view's rules) is not supported: use SET or set_config().
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from catalog import pg_type as t
from catalog.system_views import SystemView, register
from conf.guc import unit_name
from conf.guc_tables import ConfigVariable, GucSource
from utils import session as sess

SETTINGS_COLUMNS = (
    ("name", t.TEXTOID), ("setting", t.TEXTOID), ("unit", t.TEXTOID), ("category", t.TEXTOID),
    ("short_desc", t.TEXTOID), ("extra_desc", t.TEXTOID), ("context", t.TEXTOID),
    ("vartype", t.TEXTOID), ("source", t.TEXTOID), ("min_val", t.TEXTOID),
    ("max_val", t.TEXTOID), ("enumvals", t.TEXTARRAYOID), ("boot_val", t.TEXTOID),
    ("reset_val", t.TEXTOID), ("sourcefile", t.TEXTOID), ("sourceline", t.INT4OID),
    ("pending_restart", t.BOOLOID),
)

# config_type_names
VARTYPE_NAMES = {"bool": "bool", "int": "integer", "real": "real", "string": "string",
                 "enum": "enum"}


def _plain(defn: ConfigVariable, value: Any) -> str | None:
    """A value in the base unit without the unit ("%d", "%g", on/off, the text)."""
    if value is None:
        return None
    if defn.vartype == "bool":
        return "on" if value else "off"
    if defn.vartype == "int":
        return str(int(value))
    if defn.vartype == "real":
        return f"{float(value):g}"
    return str(value)


def _wal_buffers(settings: Any, value: Any) -> Any:
    """wal_buffers = -1 is resolved when the server starts (XLOGChooseNumBuffers)."""
    return settings.wal_buffers_blocks() if value == -1 else value


def setting_rows(settings: Any, superuser: bool) -> Iterator[tuple[Any, ...]]:
    """The rows of pg_settings for ``settings``."""
    variables = [v for v in settings._vars.values() if not v.defn.no_show_all]
    variables.sort(key=lambda v: v.name.lower())
    for var in variables:
        defn: ConfigVariable = var.defn
        value, reset = var.value, var.reset_value
        if defn.key == "wal_buffers":
            value, reset = _wal_buffers(settings, value), _wal_buffers(settings, reset)
        if defn.vartype in ("int", "real") and defn.unit is not None:
            setting = _plain(defn, value)
        elif defn.key == "wal_buffers":
            setting = _plain(defn, value)
        else:
            setting = settings.show(defn.name)  # the show hook's spelling
        unit = unit_name(defn.unit, settings.wal_block_size) \
            if defn.vartype in ("int", "real") else None
        numeric = defn.vartype in ("int", "real")
        from_file = var.source == GucSource.FILE and superuser
        yield (defn.name, setting, unit, defn.group, defn.short_desc, None,
               defn.context.pg_name, VARTYPE_NAMES[defn.vartype], var.source.pg_name,
               _plain(defn, defn.min_val) if numeric else None,
               _plain(defn, defn.max_val) if numeric else None,
               list(defn.enum_values) if defn.vartype == "enum" else None,
               _plain(defn, defn.boot_val), _plain(defn, reset),
               var.sourcefile if from_file else None,
               var.sourceline if from_file else None,
               bool(var.pending_restart))


def pg_settings_rows() -> Iterator[tuple[Any, ...]]:
    settings = sess.settings
    if settings is None:
        return iter(())
    return setting_rows(settings, bool(settings.is_superuser))


register(SystemView("pg_settings", SETTINGS_COLUMNS, pg_settings_rows))
