"""Back-to-back evaluators on the RS-485 bus: the POLL loop, prompts and staff keys.

The ACK rule (RS485.md "Evaluators"): an event is stored first and acknowledged
in the next POLL. A rating is stored with the queue engine's ``evaluate`` (the
evaluation and its ``evaluation.submitted`` outbox event) *and* the new ACK in
the same SQLite transaction, so after a crash the agent's ACK says exactly what
it stored: nothing is lost (the device still holds what was not acknowledged)
and nothing is stored twice.

Staff keys are acted on at most once: their ACK is committed before the action
runs, because a second "call next" after a crash is worse than a clerk pressing
the key again.

One poll thread per serial port walks its evaluators in turn; PROMPT and SHOW
go out from the same thread just before that evaluator's next POLL.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from drivers.bus import BusError, BusMaster, BusPool, DeviceFault, DeviceRefused, NoReply
from drivers.bus_config import EvaluatorConfig
from drivers.rs485 import (
    KEY_LEVEL,
    Cmd,
    Key,
    Kind,
    fit_text,
    parse_poll_reply,
    poll_payload,
    prompt_payload,
    show_payload,
)
from drivers.types import DeviceHealth, Health
from hall_agent.contract.config import Config
from hall_agent.core.events import Event
from hall_agent.core.model import Evaluation
from hall_agent.core.queue import QueueEngine
from hall_agent.core.refusal import Refused
from hall_agent.core.storage import StorageFault
from hall_agent.core.store import Store
from hall_agent.services.ports import Events, HealthSink, ModeView, bus_fault

log = logging.getLogger("hall_agent.services.evaluators")


@dataclass(frozen=True)
class EvaluatorNeeds:
    """What this service is given (hall_agent/services/ports.py), not the agent."""

    bus: Events
    cfg: Config
    store: Store
    queue: QueueEngine
    modes: ModeView
    health: HealthSink
    call: Callable[[str, str], dict[str, Any]]
    window_changed: Callable[[], None]

PROMPT_TIMEOUT_S = 30  # the citizen has this long to rate
PROMPT_GRACE_S = 3.0  # a rating pressed at the last second still reaches a poll
POLL_INTERVAL_S = 0.1  # at least this long between two polls of one evaluator
SHOW_REFRESH_S = 2.0  # the idle text is re-read from the queue this often
RATED_TEXT = "已评价 谢谢"  # a second rating of one visit: shown until the next refresh
KEY_NAMES = {Key.CALL_NEXT: "call next", Key.RECALL: "recall", Key.PAUSE: "pause/resume",
             Key.ASK_RATING: "ask for a rating", Key.NO_SHOW: "no-show"}

# on_staff_key(window, key) → True if handled (central mode: the MQTT link sends it).
StaffKeyHook = Callable[[str, int], bool]


@dataclass
class _Prompt:
    ticket: str | None
    deadline: float  # monotonic


@dataclass
class _Evaluator:
    cfg: EvaluatorConfig
    name: str
    master: BusMaster
    ack: int
    meta_key: str
    ok: bool = False
    prompt: _Prompt | None = None
    pending: list[tuple[int, bytes, str]] = field(default_factory=list)  # cmd, payload, what
    superseded: list[_Prompt] = field(default_factory=list)  # prompts to store as `none`
    # A rating key is bound to the prompt open when the device first sent it; a key the
    # store refused (a full card) comes again and keeps that binding, whatever was
    # called meanwhile.
    bound: dict[int, _Prompt | None] = field(default_factory=dict)
    show_due: bool = True
    shown: str | None = None
    show_checked: float = 0.0
    last_poll: float = 0.0
    serving: str | None = None
    stored: int = 0
    rated: deque[str] = field(default_factory=lambda: deque(maxlen=50))


def evaluator_names(cfgs: list[EvaluatorConfig]) -> list[str]:
    base = [f"evaluator-{e.window}" for e in cfgs]
    return [n if base.count(n) == 1 else f"{n}-{e.address}" for n, e in zip(base, cfgs,
                                                                              strict=True)]


class EvaluatorService:
    def __init__(self, needs: EvaluatorNeeds, pool: BusPool, *,
                 prompt_timeout_s: int = PROMPT_TIMEOUT_S,
                 poll_interval_s: float = POLL_INTERVAL_S) -> None:
        self.n = needs
        self.prompt_timeout_s = prompt_timeout_s
        self.poll_interval_s = poll_interval_s
        self.on_staff_key: StaffKeyHook | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        cfgs = needs.cfg.evaluators
        self.evaluators: list[_Evaluator] = []
        for c, name in zip(cfgs, evaluator_names(cfgs), strict=True):
            key = f"evaluator.ack.{c.port}.{c.address}"
            ack = int(needs.store.meta_get(key) or 0)
            self.evaluators.append(_Evaluator(c, name, pool.get(c.port, c.baudrate), ack, key))
        for ev in self.evaluators:
            ev.serving = self._serving_now(ev.cfg.window)
        if self.evaluators:
            needs.bus.listen(self._on_event)

    # ------------------------------------------------------------------ state

    def _serving_now(self, window: str) -> str | None:
        try:
            s = self.n.queue.window_state(window).serving
        except Refused:
            return None
        return s.number if s else None

    def staff(self, window: str) -> str:
        """The clerk at ``window`` (no staff sign-in yet: empty)."""
        return ""

    def _idle_text(self, ev: _Evaluator) -> str:
        w = ev.cfg.window
        paused = False
        with contextlib.suppress(Refused):
            paused = self.n.queue.window_state(w).paused
        clerk = self.staff(w)
        state = "暂停服务" if paused else (f"办理 {ev.serving}" if ev.serving else "欢迎光临")
        return fit_text(" ".join(x for x in (f"{w}号窗口", clerk, state) if x))

    def _queue_show(self, ev: _Evaluator) -> None:
        # Only a flag: the text is read from the store by the poll thread, never
        # under self._lock (an API thread may hold the store while publishing).
        ev.show_due = True

    # ------------------------------------------------------------------ events

    def _on_event(self, e: Event) -> None:
        if e.kind != "call":
            return
        d = e.data
        window, ticket = str(d.get("window") or ""), d.get("ticket")
        # Rated on the kiosk already? Asked of the store before taking our lock (the
        # poll thread reads the store under it).
        rated = {ev.serving for ev in self.evaluators
                 if ev.cfg.window == window and ev.serving
                 and self.n.queue.ratings.is_rated(window, ev.serving)}
        with self._lock:
            for ev in self.evaluators:
                if ev.cfg.window != window:
                    continue
                if d.get("kind") == "call":
                    previous = ev.serving
                    ev.serving = str(ticket) if ticket else None
                    if (previous and previous != ev.serving and previous not in ev.rated
                            and previous not in rated):
                        self._open_prompt(ev, previous)
                self._queue_show(ev)
        self._wake.set()

    def prompt(self, window: str, ticket: str | None = None) -> bool:
        """Ask the citizen at ``window`` to rate ``ticket`` (default: the one served)."""
        with self._lock:
            hit = False
            for ev in self.evaluators:
                if ev.cfg.window == window:
                    self._open_prompt(ev, ticket or ev.serving)
                    hit = True
        self._wake.set()
        return hit

    def _open_prompt(self, ev: _Evaluator, ticket: str | None) -> None:
        if ev.prompt is not None:
            # The clerk moved on before the citizen rated: that ticket gets `none`.
            ev.superseded.append(ev.prompt)
        text = fit_text(f"请为{ticket}号评价" if ticket else "请对本次服务评价")
        ev.pending = [p for p in ev.pending if p[0] != Cmd.PROMPT]
        ev.pending.append((Cmd.PROMPT, prompt_payload(self.prompt_timeout_s, text), text))
        ev.prompt = _Prompt(ticket, time.monotonic() + self.prompt_timeout_s + PROMPT_GRACE_S)

    def _store_none(self, ev: _Evaluator, p: _Prompt) -> None:
        try:
            self.n.queue.evaluate(ev.cfg.window, "none", number=p.ticket,
                                      channel="evaluator", staff=self.staff(ev.cfg.window))
            log.info("%s: no rating for %s within %d s: stored as none", ev.name,
                     p.ticket or "the last ticket", self.prompt_timeout_s)
        except Refused as e:
            if e.code == "already_rated":  # rated on the kiosk meanwhile: nothing to add
                log.info("%s: %s was rated meanwhile", ev.name, p.ticket)
            else:
                log.warning("%s: cannot store `none` for %s: %s", ev.name, p.ticket, e)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        by_port: dict[str, list[_Evaluator]] = {}
        for ev in self.evaluators:
            by_port.setdefault(ev.cfg.port, []).append(ev)
            self.n.health.set_health(ev.name, DeviceHealth(Health.OK, "starting"))
            self._queue_show(ev)
        for port, evs in by_port.items():
            t = threading.Thread(target=self._run, args=(evs,), name=f"evaluators {port}",
                                 daemon=True)
            t.start()
            self._threads.append(t)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=3)

    def _run(self, evs: list[_Evaluator]) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            for ev in evs:
                if self._stop.is_set():
                    return
                try:
                    self._service(ev)
                except DeviceFault:
                    pass
                except (NoReply, BusError) as e:
                    ev.ok = False
                    self.n.health.set_health(ev.name, DeviceHealth(Health.FAULT, bus_fault(
                        ev.cfg.port, ev.cfg.address, e, "check its cable")))
                except Exception:
                    log.exception("%s: poll failed", ev.name)
            spent = time.monotonic() - started
            if spent < self.poll_interval_s:
                self._wake.wait(self.poll_interval_s - spent)
                self._wake.clear()

    def _service(self, ev: _Evaluator) -> None:
        m, addr = ev.master, ev.cfg.address
        if not ev.ok:
            if not m.probe_due(addr):
                return
            info = m.probe(addr, retries=0 if m.is_fault(addr) else None)
            if info.kind != Kind.EVALUATOR:
                self.n.health.set_health(ev.name, DeviceHealth(
                    Health.FAULT, f"address {addr} on {ev.cfg.port} is not an evaluator"))
                return
            ev.ok = True
            ev.shown = None  # it may have restarted: show the idle text again
            ev.show_due = True
            self.n.health.set_health(ev.name, DeviceHealth(Health.OK))
        with self._lock:
            pending, ev.pending = ev.pending, []
            superseded, ev.superseded = ev.superseded, []
            show_due, ev.show_due = ev.show_due, False
        now = time.monotonic()
        if now - ev.show_checked >= SHOW_REFRESH_S:  # a pause via the API has no event
            show_due, ev.show_checked = True, now
        for p in superseded:
            self._store_none(ev, p)
        if show_due:
            text = self._idle_text(ev)
            if text != ev.shown:
                pending.append((Cmd.SHOW, show_payload(text), text))
        for i, (cmd, payload, what) in enumerate(pending):
            try:
                m.transact(addr, cmd, payload)
            except DeviceRefused as e:
                log.warning("%s: %s (%r)", ev.name, e, what)
            except BusError:
                with self._lock:
                    ev.pending = [x for x in pending[i:] if x[0] != Cmd.SHOW] + ev.pending
                    ev.show_due = True
                raise
            if cmd == Cmd.SHOW:
                ev.shown = what
        reply = m.transact(addr, Cmd.POLL, poll_payload(ev.ack))
        self.n.health.set_health(ev.name, DeviceHealth(Health.OK))
        for kev in parse_poll_reply(reply.payload):
            self._handle_key(ev, kev.event, kev.key)
        with self._lock:
            expired = ev.prompt
            if expired is not None and time.monotonic() > expired.deadline:
                ev.prompt = None
            else:
                expired = None
        if expired is not None:
            self._store_none(ev, expired)

    # ------------------------------------------------------------------ keys

    def _commit_ack(self, ev: _Evaluator, event: int) -> None:
        self.n.store.meta_set(ev.meta_key, str(event))
        # Acknowledged to the device only once the rating is committed: a commit that
        # fails (a full card) leaves the event with the device, which sends it again.
        self.n.store.after_commit(lambda: setattr(ev, "ack", event))

    def _handle_key(self, ev: _Evaluator, event: int, key: int) -> None:
        window = ev.cfg.window
        level = KEY_LEVEL.get(key)
        if level is not None:
            with self._lock:
                if event in ev.bound:
                    p = ev.bound.pop(event)
                else:
                    p, ev.prompt = ev.prompt, None
            number = p.ticket if p is not None else None
            try:
                e = self._store_rating(ev, event, level, number)
            except Exception as err:
                if not (isinstance(err, Refused) and err.code == "already_rated"):
                    with self._lock:  # not stored: the device sends it again
                        ev.bound[event] = p
                        while len(ev.bound) > 32:  # a device that restarted its count
                            ev.bound.pop(next(iter(ev.bound)))
                    raise
                # One rating per visit (core/ratings.py): acknowledged, not stored.
                with self.n.store.tx():
                    self._commit_ack(ev, event)
                log.info("%s: %s for %s ignored: already rated", ev.name, level,
                         number or "the last ticket")
                with self._lock:
                    ev.pending.append((Cmd.SHOW, show_payload(fit_text(RATED_TEXT)),
                                       RATED_TEXT))
                return
            ev.stored += 1
            if e.ticket:
                ev.rated.append(e.ticket)
            self._view_changed()
            log.info("%s: rating %s for %s%s", ev.name, level, e.ticket or "-",
                     " (flagged for follow-up)" if e.follow_up else "")
            return
        self._commit_ack(ev, event)  # at most once for staff keys (see the module doc)
        if key not in KEY_NAMES:
            log.warning("%s: unknown key %02X (event %d) ignored", ev.name, key, event)
            return
        self.staff_key(window, key)

    def _store_rating(self, ev: _Evaluator, event: int, level: str,
                      number: str | None) -> Evaluation:
        """The rating and the ACK in one commit; a ticket unknown to this window falls
        back to the window's last one (the key was pressed: it is kept)."""
        window, store = ev.cfg.window, self.n.store
        try:
            with store.tx():
                e = self.n.queue.evaluate(window, level, number=number,
                                          channel="evaluator", staff=self.staff(window))
                self._commit_ack(ev, event)
            return e
        except StorageFault:
            raise  # not stored: the device sends the key again (see _commit_ack)
        except Refused as err:
            if err.code == "already_rated" or number is None:
                raise
            log.warning("%s: %s; rating the window's last ticket", ev.name, err)
        with store.tx():
            e = self.n.queue.evaluate(window, level, channel="evaluator",
                                      staff=self.staff(window))
            self._commit_ack(ev, event)
        return e

    def _view_changed(self) -> None:
        self.n.window_changed()  # the boards show paused windows at once

    def staff_key(self, window: str, key: int) -> None:
        """Act on a staff key; in central mode, hand it to ``on_staff_key``."""
        name = KEY_NAMES.get(Key(key), f"key {key:02X}")
        if key == Key.ASK_RATING:
            self.prompt(window)
            return
        if self.n.modes.mode != "standalone":
            hook = self.on_staff_key
            if hook is None or not hook(window, key):
                log.info("window %s: staff key %s — in central mode this goes to the central "
                         "queue (not wired yet)", window, name)
            return
        try:
            if key == Key.CALL_NEXT:
                body = self.n.call(window, "call")
                if body["ticket"] is None:
                    log.info("window %s: call next — nobody is waiting", window)
            elif key == Key.RECALL:
                self.n.call(window, "recall")
            elif key == Key.PAUSE:
                paused = self.n.queue.window_state(window).paused
                self.n.queue.set_paused(window, not paused)
                log.info("window %s: %s by the staff key", window,
                         "resumed" if paused else "paused")
                with self._lock:
                    for ev in self.evaluators:
                        if ev.cfg.window == window:
                            if not paused:
                                ev.serving = None
                            self._queue_show(ev)
            elif key == Key.NO_SHOW:
                t = self.n.queue.no_show(window)
                log.info("window %s: %s did not come (no-show)", window, t.number)
                with self._lock:
                    for ev in self.evaluators:
                        if ev.cfg.window == window:
                            ev.serving = None
                            self._queue_show(ev)
        except Refused as e:
            log.info("window %s: staff key %s refused: %s", window, name, e)

    def describe(self) -> list[dict[str, Any]]:
        return [{"name": ev.name, "port": ev.cfg.port, "address": ev.cfg.address,
                 "window": ev.cfg.window, "ack": ev.ack, "serving": ev.serving,
                 "prompt_open": ev.prompt is not None, "stored": ev.stored}
                for ev in self.evaluators]
