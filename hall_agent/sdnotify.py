"""sd_notify(3) in a few lines: ``READY=1``, ``WATCHDOG=1``, ``STOPPING=1``, ``STATUS=…``.

systemd passes ``NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace)
to a ``Type=notify`` service, and ``WATCHDOG_USEC`` (+ ``WATCHDOG_PID``) when the
unit has ``WatchdogSec=``. Outside systemd both are absent and every call here is
a cheap no-op, so the agent runs the same under a terminal, in tests and on a Pi.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

log = logging.getLogger("hall_agent.sdnotify")


class Notifier:
    """One datagram socket to systemd's notify socket (or nothing)."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = dict(os.environ) if environ is None else environ
        addr = env.get("NOTIFY_SOCKET", "")
        if addr.startswith("@"):  # abstract namespace (sd_notify(3))
            addr = "\0" + addr[1:]
        self._addr = addr if addr.startswith(("/", "\0")) else ""
        self._sock: socket.socket | None = None
        self.watchdog_s = self._watchdog_interval(env)

    @staticmethod
    def _watchdog_interval(env: dict[str, str]) -> float | None:
        """``WatchdogSec`` in seconds, when it is meant for this process."""
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if not usec.isdigit() or int(usec) == 0:
            return None
        if pid and pid != str(os.getpid()):
            return None  # set for a parent (a wrapper script), not for us
        return int(usec) / 1e6

    @property
    def enabled(self) -> bool:
        return bool(self._addr)

    def notify(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` lines in one datagram; False if nothing was sent."""
        if not self._addr:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(fields).encode(), self._addr)
        except OSError as e:
            # systemd gone (shutdown) or the socket not ours: a missed ping is
            # systemd's business to judge, never a reason to stop the agent.
            log.debug("sd_notify %s: %s", fields, e)
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str = "") -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class Watchdog:
    """Tells systemd "ready" once the agent serves, then pings while it is healthy.

    Every ``WatchdogSec / 3`` the ``checks`` run in turn; each returns None when
    its part is alive or a sentence saying what is not. The ping is sent only
    when all pass, so a wedged store or a dead API loop stops the pings and
    systemd restarts the agent (``Restart=on-failure``); a check that itself hangs
    has the same effect, which is the point.
    """

    def __init__(self, notifier: Notifier, ready: Callable[[], bool],
                 checks: list[Callable[[], str | None]], *, status: str = "",
                 poll_s: float = 0.05,
                 notice: Callable[[], str | None] = lambda: None) -> None:
        self.n = notifier
        self._ready = ready
        self._checks = checks
        # A condition a restart cannot cure (a full card): said in STATUS, pings go on.
        self._notice = notice
        self._noticed: str | None = None
        self._status = status
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pings = 0
        self.last_problem: str | None = None

    def start(self) -> None:
        if not self.n.enabled:
            return
        self._thread = threading.Thread(target=self._run, name="sd-watchdog", daemon=True)
        self._thread.start()

    def stop(self, status: str = "") -> None:
        self._stop.set()
        if self.n.enabled:
            self.n.stopping(status)

    def check(self) -> str | None:
        for c in self._checks:
            try:
                problem = c()
            except Exception as e:  # a failing check is a failed check, not a crash
                problem = f"{getattr(c, '__name__', 'check')}: {type(e).__name__}: {e}"
            if problem:
                return problem
        return None

    def _run(self) -> None:
        while not self._ready():
            if self._stop.wait(self._poll_s):
                return
        self.n.ready(self._status)
        interval = self.n.watchdog_s
        if interval is None:
            return
        period = interval / 3
        while not self._stop.is_set():
            problem = self.check()
            if problem is None:
                self.n.watchdog()
                self.pings += 1
                notice = self._notice()
                if self.last_problem is not None:
                    log.warning("watchdog: healthy again; pinging systemd")
                if self.last_problem is not None or notice != self._noticed:
                    self.n.status(f"degraded: {notice}" if notice else self._status)
                self._noticed = notice
            elif problem != self.last_problem:
                log.error("watchdog: %s — not pinging systemd; it restarts the agent if "
                          "this lasts %.0f s", problem, interval)
                self.n.status(f"unhealthy: {problem}")
            self.last_problem = problem
            self._stop.wait(period)
