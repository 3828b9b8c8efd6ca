"""Combo command ids — mirrors src/backend/utils/time/combocid.c.

A heap tuple header has room for one command id (t_cid). A tuple inserted and
then deleted (or updated) by the same transaction needs two: its cmin, to hide
it from commands older than the insert, and its cmax, to show it to commands
older than the delete. The deleter then stores a *combo* command id in t_cid
(and sets HEAP_COMBOCID): an index into this backend's array of (cmin, cmax)
pairs. Only the inserting transaction ever looks at cmin and cmax (everybody
else decides on xmin and xmax alone), so the array is private to the backend and
forgotten at the end of the transaction.

Where tusk differs: no sharing with parallel workers (SerializeComboCIDState).
"""

from __future__ import annotations

from utils.elog import PgError

# Pairs of (cmin, cmax) by combo id, and the reverse map.
_combos: list[tuple[int, int]] = []
_by_pair: dict[tuple[int, int], int] = {}

_MAX_COMBOCIDS = 0xFFFFFFFF  # a CommandId


def get_combo_command_id(cmin: int, cmax: int) -> int:
    """GetComboCommandId: the combo id standing for (cmin, cmax), made on first use."""
    key = (cmin, cmax)
    combo = _by_pair.get(key)
    if combo is None:
        combo = len(_combos)
        if combo >= _MAX_COMBOCIDS:
            raise PgError("54000", "cannot have more than 2^32-1 combocids in a transaction")
        _combos.append(key)
        _by_pair[key] = combo
    return combo


def get_real_cmin(combo: int) -> int:
    """GetRealCmin."""
    return _combos[combo][0]


def get_real_cmax(combo: int) -> int:
    """GetRealCmax."""
    return _combos[combo][1]


def at_eoxact_combocid(_is_commit: bool = True) -> None:
    """AtEOXact_ComboCid: combo ids mean nothing once the transaction is over."""
    _combos.clear()
    _by_pair.clear()


def count() -> int:
    """How many combo ids this transaction has made (for tests)."""
    return len(_combos)
