"""``tusk_ctl simulate-power-loss -D DIR [--seed N] [--worst-case] [--json]``:
roll a killed cluster's files back to what a disk could hold after a power cut —
tusk's own (PostgreSQL has no such tool).

Run after every process of a cluster running with ``debug_power_loss = on`` was
killed with SIGKILL (the page cache still holds everything they wrote). The journal
written by storage/powerloss.py says what each write overwrote and which directory
changes no fsync of their directory has covered yet. Replaying it newest-first,
with ``random.Random(seed)``:

- each unsynced write is kept, dropped (pre-image restored, an extension cut off)
  or torn: per 512-byte sector of the written range, the new or the old contents,
  independently. A write within one sector (pg_control's) is atomic, as PostgreSQL
  assumes; a torn 8 kB write is a torn page. Unsynced truncates are kept or undone.
- each unsynced directory change (creation, link, rename, unlink, mkdir) is kept or
  undone; an undone creation takes the file's writes with it.

Consistency rules. A file's unsynced changes are the ones after its last fsync, so
rolling them back newest-first composes their pre-images; a byte that a newer kept
write set is never restored by an older dropped one. A file's size is that set by
its newest kept extension or truncate, else its size before the oldest dropped one.
Directory changes that a kept later change presupposes are kept too (same name, an
enclosing or enclosed directory): a rename cannot survive while the creation of its
source is lost. Files are followed across renames and links by identity, so a write
journaled under an old name is undone on the file wherever it now lives.

``--worst-case`` drops every unsynced write and undoes every unsynced directory
change. The same journal and seed give the same outcome. Afterwards the journal is
removed, so a restarted cluster starts a fresh one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field

from postmaster import datadir as dd
from storage import powerloss as pl
from storage.powerloss import Record

SECTOR = 512
PAGE = 8192


@dataclass
class Outcome:
    seed: int
    records: int = 0
    unreadable_bytes: int = 0
    writes_unsynced: int = 0
    writes_kept: int = 0
    writes_dropped: int = 0
    writes_torn: int = 0
    pages_torn: int = 0
    writes_gone: int = 0          # with a file whose creation was undone
    truncates_unsynced: int = 0
    truncates_undone: int = 0
    dir_changes_unsynced: int = 0
    entries_undone: list[str] = field(default_factory=list)
    files_touched: list[str] = field(default_factory=list)


def _parent(path: str) -> str:
    return os.path.dirname(path) or "."


def _names(rec: Record) -> tuple[str, ...]:
    return (rec.path, rec.path2) if rec.kind in (pl.RENAME, pl.LINK) else (rec.path,)


def _ancestors(name: str) -> list[str]:
    out = []
    while "/" in name:
        name = name.rsplit("/", 1)[0]
        out.append(name)
    return out


class _Forced:
    """Names touched by kept directory changes: an older change of the same name, of
    an enclosing directory or of something inside it must be kept too."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.enclosing: set[str] = set()  # proper ancestors of the names

    def add(self, name: str) -> None:
        self.names.add(name)
        self.enclosing.update(_ancestors(name))

    def presupposes(self, name: str) -> bool:
        return name in self.names or name in self.enclosing or \
            any(a in self.names for a in _ancestors(name))


def _describe(rec: Record) -> str:
    kind = pl.KIND_NAMES[rec.kind]
    return f"{kind} {rec.path} -> {rec.path2}" if rec.kind in (pl.RENAME, pl.LINK) \
        else f"{kind} {rec.path}"


def _sectors(start: int, end: int) -> list[tuple[int, int]]:
    """The 512-byte-sector pieces of [start, end): the units a write lands in."""
    out = []
    a = start
    while a < end:
        b = min(end, (a // SECTOR + 1) * SECTOR)
        out.append((a, b))
        a = b
    return out


class _Files:
    """Per file (by identity): where it lives now, what newer kept changes protect,
    and its final size."""

    def __init__(self, root: str, names: dict[str, int]) -> None:
        self.root = root
        self.where: dict[int, set[str]] = {}
        for name, fid in names.items():
            self.where.setdefault(fid, set()).add(name)
        self.protected: dict[int, list[tuple[int, int]]] = {}
        self.final_size: dict[int, int] = {}
        self.fallback_size: dict[int, int] = {}

    def path(self, fid: int) -> str | None:
        for name in sorted(self.where.get(fid, ())):
            full = os.path.join(self.root, name)
            if os.path.isfile(full):
                return full
        return None

    def protect(self, fid: int, a: int, b: int) -> None:
        if a < b:
            self.protected.setdefault(fid, []).append((a, b))

    def unprotected(self, fid: int, a: int, b: int) -> list[tuple[int, int]]:
        out = [(a, b)]
        for pa, pb in self.protected.get(fid, ()):
            nxt = []
            for x, y in out:
                if pb <= x or pa >= y:
                    nxt.append((x, y))
                    continue
                if x < pa:
                    nxt.append((x, pa))
                if pb < y:
                    nxt.append((pb, y))
            out = nxt
        return out

    def set_sizes(self) -> None:
        """A file ends where its newest kept extension or truncate left it, else
        where it ended before the oldest dropped one."""
        for fid in set(self.final_size) | set(self.fallback_size):
            path = self.path(fid)
            if path is not None:
                size = self.final_size.get(fid, self.fallback_size.get(fid, 0))
                if os.path.getsize(path) != size:
                    os.truncate(path, size)

    def restore(self, fid: int, path: str, rec: Record, a: int, b: int) -> None:
        """Put back what ``rec`` overwrote in [a, b): its pre-image below the old
        size, zeros (a hole) above it."""
        base = rec.offset
        with open(path, "r+b") as f:
            for x, y in self.unprotected(fid, a, b):
                pre = rec.pre[x - base:y - base]
                f.seek(x)
                f.write(pre + bytes(y - x - len(pre)))


def _follow_files(records: list[Record]
                  ) -> tuple[dict[str, int], dict[int, tuple[int, int]], dict[int, int],
                             dict[str, int]]:
    """Forward pass: follow files by identity across creations, renames, links and
    unlinks. Returns the final name -> file id map, seq -> (file id, id of the file a
    rename replaced or -1), and the seq of each file's and each directory's last
    fsync."""
    names: dict[str, int] = {}
    ids: dict[int, tuple[int, int]] = {}
    last_fsync: dict[int, int] = {}
    last_dirsync: dict[str, int] = {}
    next_id = 0

    def fid_of(name: str) -> int:
        nonlocal next_id
        if name not in names:
            names[name] = next_id
            next_id += 1
        return names[name]

    for rec in records:
        victim = -1
        if rec.kind == pl.FSYNC:
            last_fsync[fid_of(rec.path)] = rec.seq
            last_dirsync[rec.path] = rec.seq
            continue
        if rec.kind == pl.CREATE:
            names.pop(rec.path, None)
            f = fid_of(rec.path)
        elif rec.kind == pl.UNLINK:
            f = fid_of(rec.path)
            del names[rec.path]
        elif rec.kind == pl.RENAME:
            f = fid_of(rec.path)
            if rec.pre:
                victim = fid_of(rec.path2)
            del names[rec.path]
            names[rec.path2] = f
        elif rec.kind == pl.LINK:
            f = names[rec.path2] = fid_of(rec.path)
        elif rec.kind in (pl.WRITE, pl.TRUNCATE):
            f = fid_of(rec.path)
        else:  # MKDIR
            f = -1
        ids[rec.seq] = (f, victim)
    return names, ids, last_fsync, last_dirsync


def simulate(datadir: str, seed: int | None = None, *, worst_case: bool = False) -> Outcome:
    """Roll the cluster in ``datadir`` back per its power-loss journal; remove the
    journal. The caller makes sure no process of the cluster runs."""
    root = os.path.abspath(datadir)
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 32)
    out = Outcome(seed)
    jpath = pl.journal_path(root)
    if not os.path.exists(jpath):
        return out
    records, out.unreadable_bytes = pl.read_journal(jpath)
    out.records = len(records)
    rng = random.Random(seed)
    names, ids, last_fsync, last_dirsync = _follow_files(records)

    def dir_covered(rec: Record) -> bool:
        return all(last_dirsync.get(_parent(n), -1) > rec.seq for n in _names(rec))

    files = _Files(root, names)
    forced = _Forced()
    undone_creates: set[int] = set()
    touched: set[str] = set()
    write_outcomes: list[tuple[int, str, int]] = []  # file, what became of it, pages torn

    # Backward: decide and apply, newest first.
    for rec in reversed(records):
        if rec.kind == pl.FSYNC:
            continue
        f, victim = ids[rec.seq]
        if rec.kind in (pl.WRITE, pl.TRUNCATE):
            if rec.flags & pl.F_SYNCED or last_fsync.get(f, -1) > rec.seq:
                continue  # durable: synced on write, or covered by a later fsync
            path = files.path(f)
            if rec.kind == pl.WRITE:
                what, pages_torn = _undo_write(rec, f, path, files, rng, worst_case)
                write_outcomes.append((f, what, pages_torn))
                changed = what != "kept"
            else:
                out.truncates_unsynced += 1
                changed = _undo_truncate(rec, f, path, files, rng, worst_case)
                out.truncates_undone += changed
            if changed and path is not None:
                touched.add(os.path.relpath(path, root))
            continue
        keep = dir_covered(rec)
        if not keep:
            out.dir_changes_unsynced += 1
            keep = any(forced.presupposes(n) for n in _names(rec)) or \
                (not worst_case and rng.random() < 0.5)
        if keep:
            for n in _names(rec):
                forced.add(n)
            continue
        _undo_entry(rec, f, victim, files)
        out.entries_undone.append(_describe(rec))
        touched.update(_names(rec))
        if rec.kind == pl.CREATE:
            undone_creates.add(f)

    files.set_sizes()

    for f, what, pages_torn in write_outcomes:
        if f in undone_creates and files.path(f) is None:
            out.writes_gone += 1
        else:
            out.writes_kept += what == "kept"
            out.writes_dropped += what == "dropped"
            out.writes_torn += what == "torn"
            out.pages_torn += pages_torn
    out.writes_unsynced = len(write_outcomes)
    out.files_touched = sorted(touched)
    shutil.rmtree(os.path.join(root, pl.DIRNAME))
    return out


def _undo_write(rec: Record, f: int, path: str | None, files: _Files, rng: random.Random,
                worst_case: bool) -> tuple[str, int]:
    """Keep, drop or tear one unsynced write: which of the three, and how many
    8 kB pages it left torn."""
    units = _sectors(rec.offset, rec.end)
    if worst_case:
        what = "dropped"
    elif len(units) <= 1:  # one sector: atomic
        what = rng.choice(("kept", "dropped"))
    else:
        what = rng.choice(("kept", "dropped", "torn"))
    extends = rec.end > rec.old_size
    if what == "kept":
        files.protect(f, rec.offset, rec.end)
        if extends:
            files.final_size.setdefault(f, rec.end)
        return what, 0
    keep = [what == "torn" and rng.random() < 0.5 for _ in units]
    if what == "torn" and len(set(keep)) == 1:
        i = rng.randrange(len(units))
        keep[i] = not keep[i]
    if path is not None:
        for (a, b), k in zip(units, keep, strict=True):
            if not k:
                files.restore(f, path, rec, a, b)
    for (a, b), k in zip(units, keep, strict=True):
        if k:
            files.protect(f, a, b)
    if what != "torn":
        if extends:
            files.fallback_size[f] = rec.old_size
        return what, 0
    if extends:
        last_kept = max(b for (_a, b), k in zip(units, keep, strict=True) if k)
        files.final_size.setdefault(f, max(rec.old_size, last_kept))
    mixed: dict[int, set[bool]] = {}
    for (a, _b), k in zip(units, keep, strict=True):
        mixed.setdefault(a // PAGE, set()).add(k)
    return what, sum(len(v) == 2 for v in mixed.values())


def _undo_truncate(rec: Record, f: int, path: str | None, files: _Files,
                   rng: random.Random, worst_case: bool) -> bool:
    """Keep or undo one unsynced truncate; True if undone."""
    length, old = rec.offset, rec.old_size
    if not worst_case and rng.random() < 0.5:
        files.protect(f, min(length, old), max(length, old))
        files.final_size.setdefault(f, length)
        return False
    if path is not None and length < old:
        files.restore(f, path, rec, length, old)
    files.fallback_size[f] = old
    return True


def _undo_entry(rec: Record, f: int, victim: int, files: _Files) -> None:
    """Undo one directory change on disk, and follow the files it moves."""
    root = files.root

    def full(name: str) -> str:
        return os.path.join(root, name)

    where = files.where
    if rec.kind in (pl.CREATE, pl.LINK):
        name = rec.path if rec.kind == pl.CREATE else rec.path2
        if os.path.lexists(full(name)):
            os.unlink(full(name))
        where.get(f, set()).discard(name)
    elif rec.kind == pl.UNLINK:
        saved = os.path.join(root, pl.DIRNAME, rec.path2)
        if rec.path2 and os.path.exists(saved) and not os.path.lexists(full(rec.path)):
            os.link(saved, full(rec.path))
            where.setdefault(f, set()).add(rec.path)
    elif rec.kind == pl.RENAME:
        if os.path.lexists(full(rec.path2)):
            os.rename(full(rec.path2), full(rec.path))
        where.get(f, set()).discard(rec.path2)
        where.setdefault(f, set()).add(rec.path)
        saved = os.path.join(root, pl.DIRNAME, rec.pre.decode())
        if rec.pre and os.path.exists(saved):
            os.link(saved, full(rec.path2))
            where.setdefault(victim, set()).add(rec.path2)
    elif rec.kind == pl.MKDIR:
        shutil.rmtree(full(rec.path), ignore_errors=True)
        for names in where.values():
            for name in [n for n in names
                         if n == rec.path or n.startswith(rec.path + "/")]:
                names.discard(name)


def _cluster_running(datadir: str) -> str | None:
    info = dd.read_pid_file(datadir)
    if info is not None and info.pid > 0 and dd.pid_alive(info.pid):
        return f"a server is running (PID {info.pid})"
    deadline = time.monotonic() + 5  # processes just sent SIGKILL take a moment to go
    while dd.shm_lock_held(datadir):
        if time.monotonic() > deadline:
            return "processes of the old server are still running"
        time.sleep(0.05)
    return None


def main(datadir: str, seed: int | None = None, *, worst_case: bool = False,
         as_json: bool = False) -> int:
    why = _cluster_running(datadir)
    if why is not None:
        print(f'tusk_ctl: cannot simulate a power loss in "{datadir}": {why}; '
              "kill every process of the cluster first")
        return 1
    if not os.path.exists(pl.journal_path(datadir)):
        print(f'tusk_ctl: no power-loss journal in "{datadir}" (was debug_power_loss on?)')
        return 1
    out = simulate(datadir, seed, worst_case=worst_case)
    if as_json:
        print(json.dumps(asdict(out)))
        return 0
    print(f"seed {out.seed}: {out.records} journal records"
          + (f" ({out.unreadable_bytes} bytes unreadable at the end)"
             if out.unreadable_bytes else ""))
    print(f"writes not covered by an fsync: {out.writes_unsynced} ({out.writes_kept} kept, "
          f"{out.writes_dropped} dropped, {out.writes_torn} torn ({out.pages_torn} torn "
          f"pages), {out.writes_gone} gone with their file)")
    print(f"truncates not covered: {out.truncates_unsynced} ({out.truncates_undone} undone)")
    print(f"directory changes not covered: {out.dir_changes_unsynced} "
          f"({len(out.entries_undone)} undone)")
    for e in out.entries_undone:
        print(f"  undone: {e}")
    print(f"files touched: {len(out.files_touched)}")
    for name in out.files_touched:
        print(f"  {name}")
    return 0
