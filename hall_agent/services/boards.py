"""LED calling boards on the RS-485 bus: what each board should show, kept in sync.

Each board has a worker thread that computes the lines the board *should* show
(a pure function of the recent calls and the queue), compares them with what it
last sent, and sends only the lines that differ. A call wakes the workers at
once and its frames go to the bus as urgent, ahead of evaluator polls. A board
that stops answering goes ``fault``; when it answers again it is assumed blank
(power cut) and gets every line back.

The hall board shows the latest calls, newest first, for ``call_hold_s`` after
a call; between calls it pages through the waiting count per service and
today's satisfaction per window (the hall's live satisfaction broadcast). A
window board shows its window, the ticket being served, and 暂停服务 while
paused.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers.bus import BusError, BusMaster, BusPool, DeviceFault, DeviceRefused, NoReply
from drivers.bus_config import BoardConfig
from drivers.onbon import Model
from drivers.onbon_link import OnbonController
from drivers.rs485 import (
    Cmd,
    Colour,
    Effect,
    Info,
    Kind,
    clear_payload,
    fit_text,
    text_payload,
    text_width,
)
from drivers.types import DeviceHealth, Health
from hall_agent.contract.config import Config
from hall_agent.core.events import Event
from hall_agent.core.queue import QueueEngine
from hall_agent.services.board_order import CallLedger, after_halls
from hall_agent.services.boards_onbon import (
    ONBON_REPROBE_S,
    brightness_table,
    hall_hours,
    onbon_controller,
    step_onbon,
)
from hall_agent.services.ports import Events, HealthView, ModeView, bus_fault

log = logging.getLogger("hall_agent.services.boards")


@dataclass(frozen=True)
class BoardNeeds:
    """What this service is given (hall_agent/services/ports.py), not the agent."""

    bus: Events
    cfg: Config
    queue: QueueEngine
    modes: ModeView
    health: HealthView
    satisfaction: Callable[[], dict[str, dict[str, int]]]

Line = tuple[str, int, int]  # text, effect, colour
BLANK: Line = ("", Effect.STATIC, Colour.RED)

CALL_HOLD_S = 30.0  # the hall board shows calls this long after the last one
FLASH_S = 6.0  # a new call flashes this long, then stays lit
PAGE_S = 8.0  # each info page stays this long
HEARTBEAT_S = 5.0  # an idle board is asked INFO this often, to notice a power cut
REFRESH_S = 1.0  # queue state (pause, waiting counts) is re-read this often
CALL_ORDER_WAIT_S = 2.0  # a window board waits at most this long for the hall board's call


@dataclass(frozen=True, slots=True)
class CallShown:
    call_id: str
    ticket: str
    window: str
    kind: str
    at: float  # monotonic


def call_text(ticket: str, window: str) -> str:
    # A central may name a window "5号" (MQTT.md): said once, not "5号 号窗口".
    return f"请 {ticket} 号到 {window.removesuffix('号')} 号窗口"


def satisfaction_rate(counts: dict[str, int]) -> tuple[float | None, int]:
    """(share of ratings at 基本满意 or better, number of ratings); ``none`` not counted."""
    rated = sum(v for k, v in counts.items() if k != "none")
    if not rated:
        return None, 0
    good = counts.get("very_satisfied", 0) + counts.get("satisfied", 0) + counts.get("basic", 0)
    return good / rated, rated


def pct(rate: float) -> str:
    return "100%" if rate >= 0.9995 else f"{rate * 100:.1f}%"


def _line(text: str, columns: int, colour: int, effect: int = Effect.STATIC) -> Line:
    text = fit_text(text)
    if text_width(text) > columns and effect == Effect.STATIC:
        effect = Effect.SCROLL  # the board scrolls what does not fit its columns
    return (text, effect, colour)


def _pad(lines: list[Line], n: int) -> list[Line]:
    return (lines + [BLANK] * n)[:n]


@dataclass(frozen=True, slots=True)
class HallView:
    """What the boards need of the queue, read once for all of them."""

    waiting: dict[str, tuple[str, int]]  # service id → (name, waiting)
    paused: dict[str, bool]
    serving: dict[str, str | None]
    satisfaction: dict[str, dict[str, int]]
    window_services: dict[str, list[str]]


def hall_lines(info: Info, calls: list[CallShown], view: HallView | Callable[[], HallView],
               now: float, *, call_hold_s: float = CALL_HOLD_S,
               page_s: float = PAGE_S) -> list[Line]:
    """The hall board's lines at ``now`` (monotonic). ``view`` may be a function: the
    queue is read only for the information pages, not on the way of a call."""
    n, cols = max(1, info.lines), max(1, info.columns)
    if calls and now - calls[0].at < call_hold_s:
        out = []
        for i, c in enumerate(calls[:n]):
            fresh = i == 0 and now - c.at < FLASH_S
            out.append(_line(call_text(c.ticket, c.window), cols, Colour.RED,
                             Effect.FLASH if fresh else Effect.STATIC))
        return _pad(out, n)
    pages = info_pages(n, cols, view() if callable(view) else view)
    return pages[int(now // page_s) % len(pages)]


def info_pages(n: int, cols: int, view: HallView) -> list[list[Line]]:
    waiting = [f"{sid} {name} 等候{count}人" for sid, (name, count) in view.waiting.items()]
    sat = []
    for wid in sorted(view.satisfaction, key=lambda w: (len(w), w)):
        rate, rated = satisfaction_rate(view.satisfaction[wid])
        if rate is not None:
            sat.append(f"{wid}号窗口 满意率{pct(rate)} 共{rated}评")
    pages: list[list[Line]] = []
    for title, items, colour in (("当前等候人数", waiting, Colour.GREEN),
                                 ("今日服务满意度", sat or ["暂无评价"], Colour.GREEN)):
        if n == 1:
            pages.extend([[_line(f"{title} {it}", cols, colour)] for it in items])
            continue
        per = n - 1
        for i in range(0, max(1, len(items)), per):
            chunk = items[i:i + per]
            pages.append(_pad([_line(title, cols, Colour.YELLOW)]
                              + [_line(t, cols, colour) for t in chunk], n))
    return pages


def window_lines(info: Info, window: str, view: HallView, calls: list[CallShown],
                 now: float) -> list[Line]:
    n, cols = max(1, info.lines), max(1, info.columns)
    paused = view.paused.get(window, False)
    serving = view.serving.get(window)
    fresh = next((c for c in calls if c.window == window), None)
    flashing = fresh is not None and fresh.ticket == serving and now - fresh.at < FLASH_S
    head = f"{window}号窗口"
    if paused:
        state = _line("暂停服务", cols, Colour.YELLOW)
    elif serving:
        state = _line(f"请 {serving} 号", cols, Colour.RED,
                      Effect.FLASH if flashing else Effect.STATIC)
    else:
        state = _line("欢迎光临", cols, Colour.GREEN)
    if n == 1:
        return [_line(f"{head} {state[0]}", cols, state[2], state[1])]
    out = [_line(head, cols, Colour.GREEN), state]
    if n >= 3:
        names = [view.waiting[s][0] for s in view.window_services.get(window, [])
                 if s in view.waiting]
        out.append(_line("办理：" + "、".join(names) if names else "", cols, Colour.GREEN))
    if n >= 4:
        rate, _ = satisfaction_rate(view.satisfaction.get(window, {}))
        out.append(_line(f"今日满意率 {pct(rate)}" if rate is not None else "", cols,
                         Colour.YELLOW))
    return _pad(out, n)


def test_pattern_lines(info: Info) -> list[Line]:
    """Every dot of each line lit in turn red, green, yellow; the last line says what
    the board reported, so a technician sees a wrong LINES/COLUMNS at once."""
    n, cols = max(1, info.lines), max(1, info.columns)
    colours = (Colour.RED, Colour.GREEN, Colour.YELLOW)
    out: list[Line] = [("■" * (cols // 2), Effect.STATIC, colours[i % 3]) for i in range(n)]
    if n > 1:
        out[-1] = _line(f"测试 {n}行x{cols}列 {info.firmware}", cols, Colour.YELLOW)
    return out


def show_lines(info: Info, text: str) -> list[Line]:
    """``text`` on the board; ``|`` separates lines."""
    n, cols = max(1, info.lines), max(1, info.columns)
    return _pad([_line(t, cols, Colour.RED) for t in text.split("|")], n)


def send_lines(master: BusMaster, addr: int, lines: list[Line], sent: list[Line | None],
               *, urgent: bool = False) -> int:
    """Send the lines that differ from ``sent`` (updated in place); returns how many."""
    count = 0
    for i, want in enumerate(lines):
        if i < len(sent) and sent[i] == want:
            continue
        text, effect, colour = want
        try:
            if text:
                master.transact(addr, Cmd.TEXT, text_payload(i, text, effect, colour),
                                urgent=urgent)
            else:
                master.transact(addr, Cmd.CLEAR, clear_payload(i), urgent=urgent)
        except DeviceRefused as e:
            # A refused line is not retried forever: the next change sends it again.
            log.warning("%s; line %d was %r", e, i, text)
        if i < len(sent):
            sent[i] = want
        count += 1
    return count


class _Board:
    def __init__(self, cfg: BoardConfig, name: str, master: BusMaster | None,
                 onbon: OnbonController | None = None) -> None:
        self.cfg = cfg
        self.name = name
        # Only hall-edge boards have a bus master; the ONBON path never touches it.
        self.master: BusMaster = master  # type: ignore[assignment]
        self.onbon = onbon
        self.onbon_opens = 0
        self.onbon_next_probe = 0.0
        self.onbon_fault = False
        self.onbon_nacks = 0  # refusals in a row (a second one is not repainted again)
        self.say: deque[str] = deque(maxlen=8)
        self.ledger = CallLedger()  # a hall board's calls, owed and done (board_order.py)
        self.info: Info | None = None
        self.sent: list[Line | None] = []
        self.wake = threading.Event()
        self.urgent = False
        self.chime = 0
        self.last_io = 0.0
        self.override: tuple[list[Line], float] | None = None
        self.thread: threading.Thread | None = None


def board_names(cfgs: list[BoardConfig]) -> list[str]:
    base = ["board-hall" if b.role == "hall" else f"board-{b.window}" for b in cfgs]
    return [n if base.count(n) == 1 else f"{n}-{b.address}" for n, b in zip(base, cfgs,
                                                                              strict=True)]


class BoardService:
    def __init__(self, needs: BoardNeeds, pool: BusPool, *, call_hold_s: float = CALL_HOLD_S,
                 page_s: float = PAGE_S, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.n = needs
        self.call_hold_s = call_hold_s
        self.page_s = page_s
        self.heartbeat_s = heartbeat_s
        cfgs = needs.cfg.boards
        self.boards = [_Board(c, n, pool.get(c.port, c.baudrate)) if c.protocol == "hall-edge"
                       else _Board(c, n, None, onbon_controller(c))
                       for c, n in zip(cfgs, board_names(cfgs), strict=True)]
        self.brightness = brightness_table(hall_hours(needs.cfg))
        # [voice] output = "board": the hall's BX-6 says the calls itself.
        self.speaks = getattr(needs.cfg.voice, "output", "") == "board"
        self._calls: deque[CallShown] = deque(maxlen=20)
        # Calls go to the hall boards first, each call's frames held together
        # (bench/bench_bus.py measures with this off and on in the same run).
        self.hall_first = True
        self._lock = threading.Lock()
        self._view: tuple[float, HallView] | None = None
        self._stop = threading.Event()
        if self.boards:
            needs.bus.listen(self._on_event)

    # ------------------------------------------------------------------ events

    def _on_event(self, ev: Event) -> None:
        if ev.kind == "call":
            d = ev.data
            if not d.get("ticket") or not d.get("window"):
                return
            self.show_call(str(d.get("call_id") or ""), str(d["ticket"]), str(d["window"]),
                           str(d.get("kind") or "call"))
        elif ev.kind == "ticket":
            self._view = None
            for b in self.boards:
                b.wake.set()

    def refresh(self) -> None:
        """Something the boards show changed (a window paused): redraw from the queue."""
        self._view = None
        for b in self.boards:
            b.wake.set()

    def calling(self) -> None:
        """A call is being recorded, before its commit: the hall boards owe it, so no
        window board paints it first (board_order.py)."""
        for b in (b for b in self.boards if b.cfg.role == "hall"):
            b.ledger.owe()

    def show_call(self, call_id: str, ticket: str, window: str, kind: str = "call") -> None:
        """Put a call on the boards (a central call too), once per call_id."""
        with self._lock:
            # A recall moves the ticket back to the top rather than listing it twice.
            for c in list(self._calls):
                if c.ticket == ticket and c.window == window:
                    self._calls.remove(c)
            self._calls.appendleft(CallShown(call_id, ticket, window, kind, time.monotonic()))
            self._view = None
        for b in (b for b in self.boards if b.cfg.role == "hall"):
            b.ledger.show()  # its next update paints this call, and may settle it
        for b in self.boards:
            if b.cfg.role == "hall" or b.cfg.window == window:
                b.chime += 1
                b.urgent = True
                if self.speaks and b.onbon is not None and b.onbon.model == Model.BX6 and (
                        b.cfg.role == "hall"):
                    b.say.append(f"请{ticket}号到{window.removesuffix('号')}号窗口办理")
            b.wake.set()

    def calls(self) -> list[CallShown]:
        with self._lock:
            return list(self._calls)

    # ------------------------------------------------------------------ view

    def view(self) -> HallView:
        cached = self._view
        now = time.monotonic()
        if cached is not None and now - cached[0] < 0.5:
            return cached[1]
        q = self.n.queue
        services, windows, _ = q.snapshot()
        cat = self.n.queue.catalog
        calls = self.calls()
        serving: dict[str, str | None] = {}
        for wid, w in windows.items():
            serving[wid] = w.serving.number if w.serving else None
        if self.n.modes.mode != "standalone":
            # The central numbers and calls: the latest call per window is who is served.
            for c in reversed(calls):
                serving[c.window] = c.ticket
        v = HallView(
            waiting={sid: ((cat.service(sid).name if cat.service(sid) else sid), st.waiting)  # type: ignore[union-attr]
                     for sid, st in services.items()},
            paused={wid: w.paused for wid, w in windows.items()},
            serving=serving, satisfaction=self.n.satisfaction(),
            window_services={wid: w.services for wid, w in windows.items()})
        self._view = (now, v)
        return v

    def desired(self, b: _Board, now: float) -> list[Line]:
        assert b.info is not None
        if b.override is not None:
            lines, until = b.override
            if now < until:
                return _pad(lines, b.info.lines)
            b.override = None
        calls = self.calls()
        if b.cfg.role == "hall":
            return hall_lines(b.info, calls, self.view, now, call_hold_s=self.call_hold_s,
                              page_s=self.page_s)
        return window_lines(b.info, str(b.cfg.window), self.view(), calls, now)

    # ------------------------------------------------------------------ technicians

    def test_pattern(self, seconds: float = 10.0) -> dict[str, str]:
        out = {}
        for b in self.boards:
            info = b.info or Info(Kind.BOARD, 1, 16, "?")
            b.override = (test_pattern_lines(info), time.monotonic() + seconds)
            b.urgent = True
            b.wake.set()
            out[b.name] = self.n.health.devices().get(b.name, DeviceHealth(Health.OK)).status.value
        return out

    def show_text(self, text: str, seconds: float = 30.0, board: str | None = None) -> None:
        for b in self.boards:
            if board is None or b.name == board:
                info = b.info or Info(Kind.BOARD, 1, 16, "?")
                b.override = (show_lines(info, text), time.monotonic() + seconds)
                b.urgent = True
                b.wake.set()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        for b in self.boards:
            self.n.health.set_health(b.name, DeviceHealth(Health.OK, "starting"))
            b.thread = threading.Thread(target=self._run, args=(b,), name=f"{b.name}",
                                        daemon=True)
            b.thread.start()

    def close(self) -> None:
        self._stop.set()
        for b in self.boards:
            b.wake.set()
        for b in self.boards:
            if b.thread is not None:
                b.thread.join(timeout=3)
            if b.onbon is not None:
                b.onbon.close()

    def _fault(self, b: _Board, e: BaseException) -> None:
        b.sent = []
        b.info = b.info  # keep the layout: a board does not change size while off
        if b.onbon is not None:
            b.onbon_fault = True
            b.onbon_next_probe = time.monotonic() + ONBON_REPROBE_S
            # NoReply names the controller already; a port error names only the cable.
            detail = str(e) if isinstance(e, NoReply) else f"{b.onbon.model.value} board: {e}"
            self.n.health.set_health(b.name, DeviceHealth(Health.FAULT, detail))
            return
        self.n.health.set_health(b.name, DeviceHealth(Health.FAULT, bus_fault(
            b.cfg.port, b.cfg.address, e, "check its power and the bus cable")))

    def _run(self, b: _Board) -> None:
        while not self._stop.is_set():
            b.wake.wait(REFRESH_S)
            b.wake.clear()
            if self._stop.is_set():
                return
            owed = b.ledger.shown  # read before the step reads the calls
            try:
                self._step(b)
            except DeviceFault:
                pass
            except (NoReply, BusError) as e:
                self._fault(b, e)
            except Exception:  # a layout bug must not stop the board for the day
                log.exception("%s: update failed", b.name)
                self._stop.wait(1.0)
            finally:
                if b.cfg.role == "hall":
                    b.ledger.settle(owed)  # the window boards may go now

    def _step(self, b: _Board) -> None:
        if b.onbon is not None:
            step_onbon(self, b, b.onbon)
            return
        m, addr = b.master, b.cfg.address
        if b.info is None or m.is_fault(addr) or not b.sent:
            if not m.probe_due(addr):
                return
            info = m.probe(addr, retries=None if b.info is None else 0)
            if info.kind != Kind.BOARD:
                self.n.health.set_health(b.name, DeviceHealth(
                    Health.FAULT, f"address {addr} on {b.cfg.port} is not a board (INFO kind "
                                  f"{info.kind}); check the address switches"))
                return
            b.info = info
            b.sent = [None] * info.lines
            b.last_io = time.monotonic()
            self.n.health.set_health(b.name, DeviceHealth(Health.OK))
        urgent, b.urgent = b.urgent, False
        halls = [hb.ledger for hb in self.boards if hb.cfg.role == "hall" and hb.master is m
                 and hb.onbon is None] if self.hall_first and b.cfg.role == "window" else []
        # A call's frames go to the hall board first (services/board_order.py).
        lines = after_halls(halls, lambda: self.desired(b, time.monotonic()),
                            CALL_ORDER_WAIT_S)
        now = time.monotonic()
        # One call's lines and chime go out back to back, no poll between them.
        with m.hold() if urgent and self.hall_first else contextlib.nullcontext():
            sent = send_lines(m, addr, lines, b.sent, urgent=urgent)
            if b.chime:
                b.chime = 0
                m.transact(addr, Cmd.CHIME, urgent=urgent)
                sent += 1
        if sent:
            b.last_io = now
        elif now - b.last_io >= self.heartbeat_s:
            m.probe(addr, force=False, retries=None)
            b.last_io = now
        self.n.health.set_health(b.name, DeviceHealth(Health.OK))

    def describe(self) -> list[dict[str, Any]]:
        return [{"name": b.name, "port": b.cfg.where, "address": b.cfg.address,
                 "protocol": b.cfg.protocol,
                 "role": b.cfg.role, "window": b.cfg.window,
                 "lines": [s[0] if s else None for s in b.sent],
                 "info": vars(b.info) if b.info and hasattr(b.info, "__dict__") else
                 (b.info and {"lines": b.info.lines, "columns": b.info.columns,
                              "firmware": b.info.firmware})} for b in self.boards]
