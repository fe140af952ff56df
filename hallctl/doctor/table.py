"""The doctor's declarations: a check is a :class:`CheckSpec` (what it looks at and the
problems it can find, each with its fix) and a function registered with :func:`check`;
the same declarations print the findings and write the troubleshooting table."""

from __future__ import annotations

import contextlib
import ctypes
import grp
import os
import pwd
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hall_agent.contract.config import Config

Status = Literal["ok", "warn", "fail", "skip"]
SERVICE_USER = "hall-edge"
UDEV_RULES = Path("/etc/udev/rules.d/99-hall-edge.rules")
MIN_FREE_MB, WARN_FREE_MB = 50, 500
CERT_WARN_DAYS = 30
EXIT_OK, EXIT_USAGE, EXIT_PROBLEMS = 0, 2, 4


# ---------------------------------------------------------------------------- declarations

@dataclass(frozen=True)
class Problem:
    code: str
    symptom: str  # what the technician sees (the table's first column)
    fix: str  # what to do; ``{placeholders}`` are filled from the finding


@dataclass(frozen=True)
class CheckSpec:
    id: str
    title: str
    what: str
    problems: tuple[Problem, ...]

    def problem(self, code: str) -> Problem:
        return next(p for p in self.problems if p.code == code)


@dataclass
class Finding:
    check: str
    status: Status
    message: str
    fix: str = ""
    code: str = ""


@dataclass
class User:
    name: str
    uid: int
    gids: set[int]

    @staticmethod
    def lookup(name: str | None) -> User:
        """``name``; else the service user if it exists; else whoever runs this."""
        if name is None:
            try:
                pwd.getpwnam(SERVICE_USER)
                name = SERVICE_USER
            except KeyError:
                name = pwd.getpwuid(os.getuid()).pw_name
        pw = pwd.getpwnam(name)
        return User(name, pw.pw_uid, set(os.getgrouplist(name, pw.pw_gid)))

    def groups(self) -> list[str]:
        out = []
        for g in sorted(self.gids):
            with contextlib.suppress(KeyError):
                out.append(grp.getgrgid(g).gr_name)
        return out


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def may(user: User, path: str | Path, want: int) -> bool:
    """Whether ``user`` has the ``want`` bits (4 read, 2 write, 1 exec) on ``path``."""
    st = os.stat(path)
    if user.uid == 0:
        return True
    if st.st_uid == user.uid:
        bits = (st.st_mode >> 6) & 7
    elif st.st_gid in user.gids:
        bits = (st.st_mode >> 3) & 7
    else:
        bits = st.st_mode & 7
    return bits & want == want


@dataclass
class Context:
    """Everything the checks look at; tests replace the parts they need."""

    config_path: Path
    user: User
    cfg: Config | None = None
    config_error: str = ""
    api: str | None = None
    agent_health: dict[str, Any] | None = None  # from the running agent, if any
    agent_error: str = ""
    probe_devices: bool = True
    udev_rules: Path = UDEV_RULES
    clock_synced: Callable[[], bool | None] = field(default=lambda: clock_synchronized())
    now: Callable[[], float] = time.time
    disk_free: Callable[[str], tuple[int, int]] = field(
        default=lambda p: (shutil.disk_usage(p).free, shutil.disk_usage(p).total))
    systemctl: Callable[[list[str]], tuple[int, str]] | None = None


CheckFn = Callable[[Context, CheckSpec], list[Finding]]
CHECKS: list[tuple[CheckSpec, CheckFn]] = []


def check(spec: CheckSpec) -> Callable[[CheckFn], CheckFn]:
    def deco(fn: CheckFn) -> CheckFn:
        CHECKS.append((spec, fn))
        return fn
    return deco


def ok(spec: CheckSpec, message: str) -> Finding:
    return Finding(spec.id, "ok", message)


def bad(spec: CheckSpec, code: str, message: str, *, warn: bool = False,
        **fmt: object) -> Finding:
    return Finding(spec.id, "warn" if warn else "fail", message,
                   spec.problem(code).fix.format(**fmt), code)


def clock_synchronized() -> bool | None:
    """The kernel's own answer (adjtimex: TIME_ERROR = not synchronised)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex; modes = 0: read only
        state = int(libc.adjtimex(buf))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != 5  # TIME_ERROR
