"""The device supervisor: health checks, reopening lost devices, bounded device calls.

One thread watches every supervised device:

- a healthy device is checked every ``[agent] health_interval_ms``;
- a faulted one about every second, so a printer whose USB cable was pulled and
  plugged back is working again within 2 s; after a few failed tries the checks
  back off (2, 4, 8 … up to 30 s), so a printer that is switched off does not
  keep the serial port and the log busy;
- a device that lives at a path (``/dev/hall-printer``) is also watched by the
  identity of its device node: a stat every ``tick`` costs nothing. When the node
  disappears the fault is reported at once; when a node (re)appears — the cable
  plugged back, even into another port that udev gives the same name — the old
  handle is dropped and the device reopened at once, whatever the back-off says.

A health change is reported once (``report`` is :meth:`Agent.set_health`, which
logs and publishes changes only).

Every call into a device — the health check and the ticket print alike — goes
through :meth:`DeviceSupervisor.call`, which runs it in a worker thread and
waits at most a deadline. A device whose driver hangs (a USB write that never
returns) therefore costs the caller the deadline, not the kiosk: the ticket is
still issued and answered ``printed: false``. While the stuck call is still
inside the driver, the device is reported as not responding and further calls
fail fast instead of queueing up behind it (a queued ticket printed minutes
later, for a citizen who has left, is worse than none).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from drivers.backoff import Backoff
from drivers.errors import DeviceError
from drivers.types import DeviceHealth, Health

log = logging.getLogger("hall_agent.core.supervisor")

T = TypeVar("T")

FAULT_INTERVAL_S = 1.0  # check a faulted device this often, at first
FREE_RETRIES = 3  # tries at FAULT_INTERVAL_S before backing off
MAX_BACKOFF_S = 30.0
TICK_S = 0.25  # presence watch and loop granularity


def node_identity(path: str) -> object | None:
    """Which device node is at ``path`` now (symlinks followed), or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_rdev)


class DeviceTimeout(DeviceError, TimeoutError):
    """A device call did not finish within its deadline (the device may be hung)."""


@dataclass
class _Device:
    name: str
    check: Callable[[], DeviceHealth]
    identity: Callable[[], object | None] | None
    reset: Callable[[], None] | None
    deadline_s: float
    where: str
    slot: threading.Lock = field(default_factory=threading.Lock)
    job_since: float | None = None  # monotonic start of the call now inside the driver
    failures: int = 0
    next_due: float = 0.0
    node: object | None = None
    health: DeviceHealth | None = None
    backing_off: bool = False


class DeviceSupervisor:
    def __init__(self, report: Callable[[str, DeviceHealth], None], *,
                 healthy_interval_s: float, fault_interval_s: float = FAULT_INTERVAL_S,
                 max_backoff_s: float = MAX_BACKOFF_S, tick_s: float = TICK_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._report = report
        self.healthy_interval_s = healthy_interval_s
        self.fault_interval_s = fault_interval_s
        self.max_backoff_s = max_backoff_s
        self.tick_s = tick_s
        self._clock = clock
        self._devices: dict[str, _Device] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_loop = clock()

    # ------------------------------------------------------------------ setup

    def add(self, name: str, check: Callable[[], DeviceHealth], *, deadline_s: float,
            identity: Callable[[], object | None] | None = None,
            reset: Callable[[], None] | None = None, where: str = "") -> None:
        """Supervise ``name``.

        ``check`` asks the device and (re)opens it if needed; ``identity`` says
        cheaply which device node is there now (None: none), e.g. :func:`node_identity`;
        ``reset`` drops the open handle so the next check opens the new node.
        """
        with self._lock:
            d = _Device(name, check, identity, reset, deadline_s, where or name)
            d.node = identity() if identity is not None else None
            self._devices[name] = d
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="device-supervisor",
                                        daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def alive(self, stale_after_s: float = 15.0) -> bool:
        """The loop runs and went round recently (for the systemd watchdog)."""
        return (self._thread is not None and self._thread.is_alive()
                and self._clock() - self._last_loop < stale_after_s)

    def kick(self, name: str) -> None:
        """Check ``name`` soon (e.g. after a failed print)."""
        with self._lock:
            d = self._devices.get(name)
            if d is not None:
                d.next_due = min(d.next_due, self._clock())
        self._wake.set()

    def describe(self) -> dict[str, dict[str, object]]:
        now = self._clock()
        with self._lock:
            return {d.name: {"failures": d.failures, "next_check_s": max(0.0, d.next_due - now),
                             "stuck_s": None if d.job_since is None else now - d.job_since}
                    for d in self._devices.values()}

    def close_device(self, name: str, close: Callable[[], None], deadline_s: float = 2.0
                     ) -> None:
        """Run ``close`` within a deadline if ``name`` is supervised, else just run it."""
        if name in self._devices:
            self.call(name, close, deadline_s)
        else:
            close()

    # ------------------------------------------------------------------ bounded calls

    def call(self, name: str, fn: Callable[[], T], deadline_s: float | None = None) -> T:
        """Run ``fn`` (a call into device ``name``) and wait at most ``deadline_s``.

        Raises :class:`DeviceTimeout` if the device is still busy with an earlier
        stuck call, or if ``fn`` does not return in time (it keeps running in its
        worker thread; the device stays marked as stuck until it returns).
        """
        d = self._devices[name]
        deadline_s = d.deadline_s if deadline_s is None else deadline_s
        t0 = self._clock()
        if not d.slot.acquire(timeout=deadline_s):
            since = d.job_since
            stuck = f" for {self._clock() - since:.0f} s" if since is not None else ""
            raise DeviceTimeout(f"{d.where}: not responding (an earlier job has been "
                                f"stuck{stuck}) — check its power and cable")
        done = threading.Event()
        box: dict[str, object] = {}

        def work() -> None:
            try:
                box["result"] = fn()
            except BaseException as e:
                box["error"] = e
            finally:
                d.job_since = None
                d.slot.release()
                done.set()

        d.job_since = self._clock()
        threading.Thread(target=work, name=f"{name}-call", daemon=True).start()
        if not done.wait(max(0.0, deadline_s - (self._clock() - t0))):
            log.warning("%s: a call did not return within %.1f s; the device is treated as "
                        "not responding until it does", d.where, deadline_s)
            self._set(d, DeviceHealth(Health.FAULT, f"{d.where}: not responding — check "
                                                    "its power and cable"))
            self.kick(name)
            raise DeviceTimeout(f"{d.where}: not responding within {deadline_s:.1f} s — "
                                "check its power and cable")
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        return box["result"]  # type: ignore[return-value]

    # ------------------------------------------------------------------ the loop

    def _set(self, d: _Device, h: DeviceHealth) -> None:
        d.health = h
        try:
            self._report(d.name, h)
        except Exception:  # a listener bug must not stop supervision
            log.exception("reporting %s's health failed", d.name)

    def _interval(self, d: _Device) -> float:
        if d.failures == 0:
            return self.healthy_interval_s
        return Backoff(self.fault_interval_s, ceiling=self.max_backoff_s,
                       free=FREE_RETRIES).delay_after(d.failures)

    def _check(self, d: _Device) -> None:
        now = self._clock()
        if d.job_since is not None:
            # A print (or a stuck call) holds the device; its result reports health.
            d.next_due = now + self.fault_interval_s
            return
        try:
            h = self.call(d.name, d.check)
        except DeviceTimeout as e:
            h = DeviceHealth(Health.FAULT, str(e))
        except Exception as e:  # a driver bug must not stop the supervisor
            log.exception("%s: health check failed", d.where)
            h = DeviceHealth(Health.FAULT, f"{d.where}: health check failed ({e})")
        if h.status is Health.FAULT:
            d.failures += 1
        else:
            if d.failures > FREE_RETRIES:
                log.info("%s: back after %d failed checks", d.where, d.failures)
            d.failures = 0
            d.backing_off = False
        if d.failures > FREE_RETRIES and not d.backing_off:
            d.backing_off = True
            log.info("%s: still failing after %d checks; checking less often (up to every "
                     "%.0f s) until its port comes back", d.where, d.failures,
                     self.max_backoff_s)
        d.next_due = self._clock() + self._interval(d)
        self._set(d, h)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._last_loop = self._clock()
            with self._lock:
                devices = list(self._devices.values())
            for d in devices:
                if self._stop.is_set():
                    return
                due = self._clock() >= d.next_due
                reset = False
                if d.identity is not None:
                    try:
                        node = d.identity()
                    except OSError:
                        node = None
                    if node != d.node:
                        due = True  # unplugged: say so now; plugged: reopen now
                        reset = node is not None
                        if reset:
                            log.info("%s: a device node appeared; (re)opening it", d.where)
                        d.node = node
                    elif node is None and d.health is not None and d.failures:
                        due = False  # nothing to open; the fault is already reported
                if due:
                    if reset and d.reset is not None and d.job_since is None:
                        try:
                            self.call(d.name, d.reset)
                        except Exception as e:
                            log.debug("%s: reset: %s", d.where, e)
                    self._check(d)
            self._wake.wait(self.tick_s)
            self._wake.clear()
