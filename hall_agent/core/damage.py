"""A store that comes back damaged or empty must never silently start over at A001.

After a SIGKILL the WAL can be lost (the last commits with it); a card that tears can
leave the store truncated to nothing or to half. SQLite would open an empty or older
file without a word: A001 again, the boot counter and the outbox ``seq`` back to 1. So
the agent keeps a small marker beside the store (:data:`MARKER`: the boot counter, the
last outbox ``seq``, the newest day's counters), rewritten after every commit that adds
events. At start (:func:`check`) a store that is missing, empty, shorter than its own
header says, unreadable, or behind the marker is moved aside to ``damaged-<time>/``
(with what SQLite's ``.recover`` can still read, when the ``sqlite3`` tool is there), a
fresh store is started that continues after the highest numbers known, plus a margin for
what the marker may not have seen, and a fault is raised (health, doctor).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("hall_agent.store")

MARKER = "hall-agent.marker.json"
DAMAGED_PREFIX = "damaged-"
# Numbers skipped after a recovery: the marker is written after each commit without
# an fsync of its own, so a power cut may lose its last few updates.
MARGIN = 100


class _Reads(Protocol):
    """What the marker reads of the store (core/store.py's Store)."""

    def one(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Row | None: ...

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]: ...


@dataclass
class Salvage:
    """What could be recovered: the highest of the marker and the damaged file."""

    boot: int = 0
    last_seq: int = 0
    counters: dict[tuple[str, str], int] = field(default_factory=dict)

    def merge(self, boot: int, last_seq: int, counters: dict[tuple[str, str], int]) -> None:
        self.boot = max(self.boot, boot)
        self.last_seq = max(self.last_seq, last_seq)
        for k, v in counters.items():
            self.counters[k] = max(self.counters.get(k, 0), v)


@dataclass(frozen=True)
class Recovery:
    reason: str
    kept_at: Path
    salvage: Salvage

    def detail(self) -> str:
        return (f"存储数据库损坏（{self.reason}），已另存到 {self.kept_at}，"
                "新库从已知最大号之后继续编号；请运行 hallctl doctor / the store was "
                f"damaged ({self.reason}); kept at {self.kept_at}; a fresh store continues "
                "after the highest numbers known (hallctl doctor says what to do)")


def write_marker(data_dir: Path, store: _Reads) -> None:
    """Rewrite the marker from the store (atomic: a rename)."""
    boot = store.one("SELECT value FROM meta WHERE key = 'boot'")
    seq = store.one("SELECT MAX(seq) FROM outbox")
    rows = store.query("SELECT day, service, last FROM counters WHERE day = "
                       "(SELECT MAX(day) FROM counters)")
    body = {"boot": int(boot[0]) if boot else 0, "last_seq": int(seq[0] or 0) if seq else 0,
            "counters": [[r[0], r[1], int(r[2])] for r in rows], "ts": time.time()}
    tmp = data_dir / (MARKER + ".tmp")
    tmp.write_text(json.dumps(body), encoding="utf-8")
    os.replace(tmp, data_dir / MARKER)


def read_marker(data_dir: Path) -> Salvage | None:
    try:
        body: dict[str, Any] = json.loads((data_dir / MARKER).read_text(encoding="utf-8"))
        s = Salvage()
        s.merge(int(body.get("boot", 0)), int(body.get("last_seq", 0)),
                {(str(d), str(p)): int(n) for d, p, n in body.get("counters", [])})
        return s
    except (OSError, ValueError, TypeError):
        return None


def _header_short(path: Path) -> bool:
    """The file is shorter than the page count its own header gives (truncated)."""
    with path.open("rb") as f:
        head = f.read(100)
    if len(head) < 100 or not head.startswith(b"SQLite format 3\0"):
        return True
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(head[28:32], "big")
    return pages > 0 and path.stat().st_size < pages * page


def _read(path: Path) -> tuple[int, int, dict[tuple[str, str], int]]:
    """Boot, last seq and counters from a (possibly damaged) store; what fails is 0."""
    boot, seq = 0, 0
    counters: dict[tuple[str, str], int] = {}
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return boot, seq, counters
    try:
        for sql in ("SELECT value FROM meta WHERE key = 'boot'",
                    "SELECT MAX(seq) FROM outbox",
                    "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'"):
            try:
                row = db.execute(sql).fetchone()
            except sqlite3.Error:
                continue
            if row and row[0] is not None:
                if "boot" in sql:
                    boot = int(row[0])
                else:
                    seq = max(seq, int(row[0]))
        try:
            for d, p, n in db.execute("SELECT day, service, last FROM counters"):
                counters[(d, p)] = max(counters.get((d, p), 0), int(n))
            for d, p, n in db.execute("SELECT day, prefix, MAX(seq) FROM tickets "
                                      "GROUP BY day, prefix"):
                counters[(d, p)] = max(counters.get((d, p), 0), int(n))
        except sqlite3.Error:
            pass
    finally:
        db.close()
    return boot, seq, counters


def _recover_with_cli(damaged: Path, into: Path) -> bool:
    """SQLite's own ``.recover`` (the sqlite3 tool), into a scratch database."""
    tool = shutil.which("sqlite3")
    if tool is None:
        return False
    try:
        sql = subprocess.run([tool, str(damaged), ".recover"], capture_output=True,
                             timeout=300, check=False).stdout
        subprocess.run([tool, str(into)], input=sql, capture_output=True, timeout=300,
                       check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return into.exists()


def check(data_dir: Path, db_name: str) -> Recovery | None:
    """Before the store opens: None if it is sound; else it is moved aside and what can
    be recovered is returned (the caller starts a fresh store and seeds it)."""
    path = data_dir / db_name
    marker = read_marker(data_dir)
    known = marker is not None and marker.boot >= 1
    reason = ""
    if not path.exists() or path.stat().st_size == 0:
        if known:
            reason = "the store file is missing or empty"
    elif _header_short(path):
        reason = "the store file is truncated"
    else:
        boot, _seq, _c = _read(path)
        if known and marker is not None and boot < marker.boot:
            reason = (f"the store lost its last writes (boot counter {boot}, the marker "
                      f"says {marker.boot}: a lost WAL?)")
    if not reason:
        return None
    kept = data_dir / f"{DAMAGED_PREFIX}{time.strftime('%Y%m%dT%H%M%S')}"
    kept.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        f = data_dir / f"{db_name}{suffix}"
        if f.exists():
            os.replace(f, kept / f.name)
    salvage = marker or Salvage()
    damaged = kept / db_name
    if damaged.exists() and damaged.stat().st_size:
        salvage.merge(*_read(damaged))
        recovered = kept / "recovered.sqlite3"
        if _recover_with_cli(damaged, recovered):
            salvage.merge(*_read(recovered))
    (kept / "WHAT-HAPPENED.txt").write_text(
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {reason}.\n"
        f"Recovered: boot {salvage.boot}, outbox seq {salvage.last_seq}, counters "
        f"{sorted(salvage.counters.items())}.\nThe agent started a fresh store numbering "
        f"{MARGIN} after the highest numbers known. Send this directory to support "
        "(hallctl export-logs), then delete it.\n", encoding="utf-8")
    log.error("store %s: %s; kept at %s; a fresh store continues after the highest "
              "numbers known", path, reason, kept)
    return Recovery(reason, kept, salvage)


def seed(db: sqlite3.Connection, s: Salvage) -> None:
    """Make a fresh store continue after what was recovered (in the caller's transaction)."""
    db.execute("INSERT INTO meta (key, value) VALUES ('boot', ?) ON CONFLICT (key) DO "
               "UPDATE SET value = excluded.value", (str(s.boot),))
    if s.last_seq:
        db.execute("DELETE FROM sqlite_sequence WHERE name = 'outbox'")
        db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox', ?)",
                   (s.last_seq + MARGIN,))
    for (day, prefix), last in s.counters.items():
        db.execute("INSERT INTO counters (day, service, last) VALUES (?, ?, ?) ON CONFLICT "
                   "(day, service) DO UPDATE SET last = MAX(last, excluded.last)",
                   (day, prefix, last + MARGIN))


def damaged_dirs(data_dir: Path) -> list[Path]:
    """Stores kept aside, newest last (health and doctor say so until they are gone)."""
    try:
        return sorted(p for p in data_dir.iterdir()
                      if p.is_dir() and p.name.startswith(DAMAGED_PREFIX))
    except OSError:
        return []
