"""Staff logins of hall-central's console: users, sessions, CSRF, slow-down, rate limits.

- **Users**: a staff number, an argon2id hash of the password (argon2-cffi; the clear
  password is never stored or logged) and the windows the clerk may work at (``*`` =
  any, for a supervisor). ``hall-central user add|passwd|list|disable`` is
  :func:`user_command`.
- **Sessions**: one window per session, chosen at login among the clerk's windows. The
  cookie holds 32 random bytes; the store keeps only their SHA-256, so a copy of the
  database opens no console. A session ends after :data:`IDLE_S` without a request,
  :data:`MAX_S` after login, at logout, or when the password changes.
- **CSRF**: every request that changes something carries the session's own random
  token (header ``X-CSRF-Token`` or form field ``csrf``), compared in constant time;
  a request whose ``Origin`` (or ``Sec-Fetch-Site``) says another site is refused
  before that. The cookie is ``SameSite=Strict`` and ``HttpOnly`` as well.
- **Slow-down**: after :data:`FREE_FAILURES` bad passwords for one staff number (or
  :data:`FREE_FAILURES_ADDRESS` from one address), the next attempt waits 2, 4, 8 …
  up to :data:`MAX_LOCK_S` seconds
  (a 429 with ``Retry-After``, the password not even checked); a good login clears it.
- **Rate limits**: :class:`RateLimit`, a token bucket per client address, for the
  public ticket pages and the login.

Tables (``staff``, ``web_sessions``, ``login_failures``) live in the central's store
beside the queue (central/README.md), versioned in ``meta`` under ``web_schema``.
Logins, logouts and refused logins are written to the desk's audit trail too.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import hmac
import json
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hall_agent.core.refusal import Refused, Why
from hall_agent.core.store import Store

if TYPE_CHECKING:
    from central.config import CentralConfig

IDLE_S = 30 * 60          # a session unused this long ends, in seconds
MAX_S = 12 * 3600         # a session ends this long after its login, in seconds
FREE_FAILURES = 3         # bad passwords for one staff number before the slow-down
FREE_FAILURES_ADDRESS = 10  # from one address (clerks' PCs may share one behind a NAT)
HASHING_AT_ONCE = 2       # argon2 runs at once (64 MiB each): a login rush stays small
MAX_LOCK_S = 300          # the longest wait after repeated failures, in seconds
FAILURE_MEMORY_S = 3600   # failures older than this are forgotten, in seconds
MIN_PASSWORD = 8
STAFF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
WINDOW_RE = re.compile(r"^[^\x00-\x1f\x7f,]{1,8}$")
ANY_WINDOW = "*"

WEB_MIGRATIONS: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS staff (
        staff TEXT PRIMARY KEY, pw_hash TEXT NOT NULL, windows TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 1, created_at REAL NOT NULL, changed_at REAL NOT NULL
    );
    CREATE TABLE IF NOT EXISTS web_sessions (
        sid_hash TEXT PRIMARY KEY, staff TEXT NOT NULL, window TEXT NOT NULL,
        csrf TEXT NOT NULL, created_at REAL NOT NULL, seen_at REAL NOT NULL
    );
    CREATE INDEX IF NOT EXISTS web_sessions_staff ON web_sessions (staff);
    CREATE TABLE IF NOT EXISTS login_failures (
        key TEXT PRIMARY KEY, count INTEGER NOT NULL, last_at REAL NOT NULL
    )
    """,
]

# argon2id with argon2-cffi's RFC 9106 "low memory" profile: ~50 ms on a Pi 4, and a
# hash records its own parameters, so raising them later still verifies old ones.
_HASHER = PasswordHasher()
_DUMMY = _HASHER.hash("not-a-password-" + secrets.token_hex(8))
# Twenty clerks logging in at 08:30 would otherwise take 20 x 64 MiB at once.
_HASHING = threading.BoundedSemaphore(HASHING_AT_ONCE)


def _verify(pw_hash: str, password: str) -> bool:
    with _HASHING:
        try:
            return bool(_HASHER.verify(pw_hash, password))
        except (VerificationError, InvalidHashError):
            return False


def _hash(password: str) -> str:
    with _HASHING:
        return _HASHER.hash(password)


def migrate(store: Store) -> None:
    with store.tx() as db:
        row = db.execute("SELECT value FROM meta WHERE key = 'web_schema'").fetchone()
        version = int(row[0]) if row else 0
        for i in range(version, len(WEB_MIGRATIONS)):
            for stmt in WEB_MIGRATIONS[i].split(";"):
                if stmt.strip():
                    db.execute(stmt)
        db.execute("INSERT INTO meta (key, value) VALUES ('web_schema', ?) ON CONFLICT "
                   "(key) DO UPDATE SET value = excluded.value", (str(len(WEB_MIGRATIONS)),))


def _refuse(zh: str, en: str, code: str, field: str | None = None,
            why: Why = Why.INVALID) -> Refused:
    return Refused(zh, code=code, field=field, why=why, en=en)


def _check_staff(staff: str) -> str:
    if not STAFF_RE.match(staff or ""):
        raise _refuse("工号只能由字母、数字和 . _ - 组成，最多 32 位",
                      "a staff number is letters, digits and . _ -, at most 32", "bad_staff",
                      "staff")
    return staff


def _check_windows(windows: list[str]) -> str:
    ws = [w.strip() for w in windows if w.strip()]
    if not ws or any(not WINDOW_RE.match(w) for w in ws):
        raise _refuse("请给出窗口，如 5,6（或 * 表示所有窗口）",
                      "give the windows, e.g. 5,6 (or * for every window)", "bad_windows",
                      "windows")
    return ",".join(dict.fromkeys(ws))


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD or len(password) > 256:
        raise _refuse(f"密码至少 {MIN_PASSWORD} 位", f"a password has at least {MIN_PASSWORD} "
                      "characters", "weak_password", "password")


def add_user(store: Store, staff: str, password: str, windows: list[str],
             now: float | None = None) -> None:
    """A new clerk (refused if the staff number exists)."""
    migrate(store)
    _check_staff(staff)
    ws = _check_windows(windows)
    _check_password(password)
    pw_hash, t = _hash(password), time.time() if now is None else now
    with store.tx() as db:
        if db.execute("SELECT 1 FROM staff WHERE staff = ?", (staff,)).fetchone():
            raise _refuse(f"工号 {staff} 已存在（改密码用 passwd）", f"staff {staff} exists "
                          "(use passwd to change the password)", "staff_exists", "staff",
                          Why.CONFLICT)
        db.execute("INSERT INTO staff (staff, pw_hash, windows, active, created_at, changed_at)"
                   " VALUES (?, ?, ?, 1, ?, ?)", (staff, pw_hash, ws, t, t))


def set_password(store: Store, staff: str, password: str, *,
                 windows: list[str] | None = None, active: bool | None = None) -> None:
    """A new password (and optionally windows or enabled state); the clerk's open
    sessions end."""
    migrate(store)
    if password:
        _check_password(password)
    new_hash = _hash(password) if password else None  # not under the store's lock
    with store.tx() as db:
        if not db.execute("SELECT 1 FROM staff WHERE staff = ?", (staff,)).fetchone():
            raise _refuse(f"没有工号 {staff}", f"no staff {staff}", "unknown_staff", "staff",
                          Why.NOT_FOUND)
        if new_hash:
            db.execute("UPDATE staff SET pw_hash = ?, changed_at = ? WHERE staff = ?",
                       (new_hash, time.time(), staff))
        if windows is not None:
            db.execute("UPDATE staff SET windows = ? WHERE staff = ?",
                       (_check_windows(windows), staff))
        if active is not None:
            db.execute("UPDATE staff SET active = ? WHERE staff = ?", (int(active), staff))
        db.execute("DELETE FROM web_sessions WHERE staff = ?", (staff,))


def list_users(store: Store) -> list[dict[str, Any]]:
    migrate(store)
    return [{"staff": r["staff"], "windows": r["windows"].split(","),
             "active": bool(r["active"])}
            for r in store.query("SELECT staff, windows, active FROM staff ORDER BY staff")]


@dataclass(frozen=True, slots=True)
class Session:
    staff: str
    window: str
    csrf: str
    created_at: float


def _sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8", "replace")).hexdigest()


class Auth:
    """Logins and sessions over the central's store (thread-safe: the store locks)."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time,
                 idle_s: float = IDLE_S, max_s: float = MAX_S,
                 audit: Callable[[str, str | None, str, dict[str, Any]], None] | None = None
                 ) -> None:
        self.store = store
        self.clock = clock
        self.idle_s, self.max_s = idle_s, max_s
        self._audit = audit or (lambda staff, window, action, detail: None)
        migrate(store)

    # ------------------------------------------------------------------ login

    def windows_of(self, staff: str) -> list[str] | None:
        row = self.store.one("SELECT windows FROM staff WHERE staff = ? AND active = 1",
                             (staff,))
        return None if row is None else str(row[0]).split(",")

    def may_use(self, staff: str, window: str) -> bool:
        ws = self.windows_of(staff)
        return ws is not None and (ANY_WINDOW in ws or window in ws)

    def locked_for(self, staff: str, client: str) -> float:
        """Seconds before another login attempt for this staff or from this address
        is heard (0 = now)."""
        now, wait = self.clock(), 0.0
        for key in (f"staff:{staff}", f"ip:{client}"):
            row = self.store.one("SELECT count, last_at FROM login_failures WHERE key = ?",
                                 (key,))
            if row is None or now - row["last_at"] > FAILURE_MEMORY_S:
                continue
            free = FREE_FAILURES if key.startswith("staff:") else FREE_FAILURES_ADDRESS
            over = int(row["count"]) - free
            if over >= 0:
                wait = max(wait, row["last_at"] + min(MAX_LOCK_S, 2.0 ** (over + 1)) - now)
        return max(0.0, wait)

    def login(self, staff: str, password: str, window: str, client: str) -> tuple[str, Session]:
        """A new session (its cookie value and itself), or :class:`Refused`: ``slow_down``
        (wait, see :meth:`locked_for`), ``bad_login`` (unknown staff or wrong password:
        the same answer and about the same time), ``window_not_allowed``."""
        staff = (staff or "").strip()
        wait = self.locked_for(staff, client)
        if wait > 0:
            raise SlowDown(wait)
        row = self.store.one("SELECT pw_hash FROM staff WHERE staff = ? AND active = 1",
                             (staff,)) if STAFF_RE.match(staff) else None
        ok = _verify(row["pw_hash"] if row else _DUMMY, password or "")
        if not ok or row is None:
            self._failed(staff, client)
            self._audit(staff[:64] or "?", None, "login_refused", {"client": client})
            raise _refuse("工号或密码不对", "wrong staff number or password", "bad_login",
                          "password", Why.INVALID)
        if not self.may_use(staff, window):
            raise _refuse(f"您没有 {window} 号窗口的权限", f"you may not work at window "
                          f"{window}", "window_not_allowed", "window", Why.INVALID)
        now = self.clock()
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        rehash = _hash(password) if _HASHER.check_needs_rehash(row["pw_hash"]) else None
        with self.store.tx() as db:
            db.execute("DELETE FROM login_failures WHERE key IN (?, ?)",
                       (f"staff:{staff}", f"ip:{client}"))
            db.execute("DELETE FROM web_sessions WHERE seen_at < ? OR created_at < ?",
                       (now - self.idle_s, now - self.max_s))
            db.execute("INSERT INTO web_sessions (sid_hash, staff, window, csrf, created_at, "
                       "seen_at) VALUES (?, ?, ?, ?, ?, ?)",
                       (_sid_hash(sid), staff, window, csrf, now, now))
            if rehash:
                db.execute("UPDATE staff SET pw_hash = ? WHERE staff = ?", (rehash, staff))
        self._audit(staff, window, "login", {"client": client})
        return sid, Session(staff, window, csrf, now)

    def _failed(self, staff: str, client: str) -> None:
        now = self.clock()
        with self.store.tx() as db:
            for key in (f"staff:{staff[:64]}", f"ip:{client}"):
                row = db.execute("SELECT count, last_at FROM login_failures WHERE key = ?",
                                 (key,)).fetchone()
                count = 1 if row is None or now - row["last_at"] > FAILURE_MEMORY_S \
                    else int(row["count"]) + 1
                db.execute("INSERT INTO login_failures (key, count, last_at) VALUES (?, ?, ?)"
                           " ON CONFLICT (key) DO UPDATE SET count = excluded.count, "
                           "last_at = excluded.last_at", (key, count, now))

    # ------------------------------------------------------------------ sessions

    def session(self, sid: str | None, *, touch: bool = True) -> Session | None:
        """The live session of a cookie value, or None; ``touch``: a clerk's request, so
        its idle time restarts (a live stream only checks)."""
        if not sid or len(sid) > 100:
            return None
        now, h = self.clock(), _sid_hash(sid)
        with self.store.tx() as db:
            row = db.execute("SELECT s.staff, s.window, s.csrf, s.created_at, s.seen_at, "
                             "u.active, u.windows FROM web_sessions s JOIN staff u USING "
                             "(staff) WHERE s.sid_hash = ?", (h,)).fetchone()
            if row is None:
                return None
            ws = str(row["windows"]).split(",")
            if (now - row["seen_at"] > self.idle_s or now - row["created_at"] > self.max_s
                    or not row["active"] or (ANY_WINDOW not in ws and row["window"] not in ws)):
                db.execute("DELETE FROM web_sessions WHERE sid_hash = ?", (h,))
                return None
            if touch:
                db.execute("UPDATE web_sessions SET seen_at = ? WHERE sid_hash = ?", (now, h))
        return Session(row["staff"], row["window"], row["csrf"], row["created_at"])

    def logout(self, sid: str | None) -> None:
        s = self.session(sid)
        if s is None or sid is None:
            return
        with self.store.tx() as db:
            db.execute("DELETE FROM web_sessions WHERE sid_hash = ?", (_sid_hash(sid),))
        self._audit(s.staff, s.window, "logout", {})

    @staticmethod
    def csrf_ok(session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(session.csrf.encode(),
                                                   (token or "").encode("utf-8", "replace"))


class SlowDown(Refused):
    """Too many bad passwords: try again in ``retry_after`` seconds (HTTP 429)."""

    def __init__(self, wait: float) -> None:
        self.retry_after = max(1, int(wait + 0.999))
        super().__init__(f"密码错误次数过多，请 {self.retry_after} 秒后再试",
                         code="slow_down", field="password", why=Why.CONFLICT,
                         en=f"too many wrong passwords: try again in {self.retry_after} s")


class RateLimit:
    """A token bucket per key: ``rate`` requests a second, bursts of ``burst``."""

    def __init__(self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 10_000) -> None:
        self.rate, self.burst, self.clock, self.max_keys = rate, burst, clock, max_keys
        self._b: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> float:
        """0 when allowed (and counted), else the seconds until it would be."""
        now = self.clock()
        with self._lock:
            if len(self._b) > self.max_keys:
                self._b = {k: v for k, v in self._b.items()
                           if v[0] + (now - v[1]) * self.rate < self.burst}
            tokens, at = self._b.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens < cost:
                self._b[key] = (tokens, now)
                return (cost - tokens) / self.rate
            self._b[key] = (tokens - cost, now)
            return 0.0


# ---------------------------------------------------------------------- the CLI

def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise _refuse("两次输入的密码不一样", "the two passwords differ", "password_mismatch",
                      "password")
    return first


def user_command(cfg: CentralConfig | None, store: Store, argv: list[str]) -> int:
    """``hall-central user add|passwd|list|disable|enable …``; prints for people, exit
    0 ok, 1 refused, 2 bad command line."""
    p = argparse.ArgumentParser(prog="hall-central user", description=(
        "staff logins of the clerks' console. Exit codes: 0 ok, 1 refused (the message "
        "says why), 2 bad command line"))
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("add", help="a new clerk: STAFF --windows 5,6 (or '*')")
    a.add_argument("staff")
    a.add_argument("--windows", required=True, help="windows, comma separated; * = any")
    a.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of stdin")
    w = sub.add_parser("passwd", help="a new password (the clerk's sessions end)")
    w.add_argument("staff")
    w.add_argument("--windows", help="also change the windows")
    w.add_argument("--password-stdin", action="store_true")
    for name in ("disable", "enable"):
        sub.add_parser(name, help=f"{name} a login").add_argument("staff")
    ls = sub.add_parser("list", help="staff numbers and their windows")
    ls.add_argument("--json", action="store_true")
    try:
        args = p.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    try:
        if args.cmd == "add":
            add_user(store, args.staff, _password(args), args.windows.split(","))
            print(f"added {args.staff} (windows {args.windows})")
        elif args.cmd == "passwd":
            ws = args.windows.split(",") if args.windows else None
            set_password(store, args.staff, _password(args), windows=ws)
            print(f"password of {args.staff} changed; its sessions ended")
        elif args.cmd in ("disable", "enable"):
            set_password(store, args.staff, "", active=args.cmd == "enable")
            print(f"{args.staff} {args.cmd}d")
        else:
            users = list_users(store)
            if args.json:
                print(json.dumps(users, ensure_ascii=False))
            for u in [] if args.json else users:
                print(f"{u['staff']:<16} windows {','.join(u['windows']):<12}"
                      f"{'' if u['active'] else ' (disabled)'}")
    except Refused as e:
        print(f"hall-central user {args.cmd}: {e.message_en}", file=sys.stderr)
        return 1
    return 0
