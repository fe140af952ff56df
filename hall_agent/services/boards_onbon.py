"""The ONBON side of the board service: dot-matrix pages, the night dimming table,
and one update turn of a BX-5E/BX-6E controller (services/boards.py runs it)."""

from __future__ import annotations

import logging
import time
from typing import Any

from drivers.bus import DeviceRefused
from drivers.bus_config import BoardConfig
from drivers.onbon import DisplayMode, Model
from drivers.onbon_link import OnbonController, SerialTransport, TcpTransport
from drivers.rs485 import Effect, Info, Kind
from drivers.types import DeviceHealth, Health
from hall_agent.contract.config import Config

log = logging.getLogger("hall_agent.services.boards")

Line = tuple[str, int, int]  # text, effect, colour (services/boards.py)
LINE_DOTS = 16  # one line of text per 16 dots (drivers/onbon_render.py)

ONBON_PAGE_STAY = 300  # a line too long for the board shows in pieces, 3 s each (10 ms units)
ONBON_REPROBE_S = 5.0  # a silent ONBON controller is pinged this often
DAY_LEVEL, NIGHT_LEVEL = 15, 4  # ONBON brightness 0-15: open hours, and the night


def brightness_table(spans: list[tuple[Any, Any]] | None) -> list[int]:
    """48 half-hour levels (ONBON §5.5.2) from the hall's open hours: full while open,
    dimmed outside, so a board of the 24-hour area stays readable but does not glare
    into a dark hall. ``None`` (open around the clock) is full all day."""
    if spans is None:
        return [DAY_LEVEL] * 48
    out = []
    for i in range(48):
        start, end = i * 30, i * 30 + 30  # minutes of the day
        lit = any(s.hour * 60 + s.minute < end and start < e.hour * 60 + e.minute + (
            1 if e.second else 0) for s, e in spans)
        out.append(DAY_LEVEL if lit else NIGHT_LEVEL)
    return out


def hall_hours(cfg: Config) -> list[tuple[Any, Any]] | None:
    """When the hall is staffed: ``[selfservice] staffed_hours``, else the union of the
    services' hours (``None``: some service is open around the clock)."""
    from hall_agent.contract.catalog import parse_hours

    if cfg.selfservice is not None:
        return parse_hours(cfg.selfservice.staffed_hours)
    spans: list[tuple[Any, Any]] = []
    try:
        from hall_agent.contract.config import load_catalog
        cat = load_catalog(cfg.catalog_path)
    except Exception:  # the queue reports a bad catalogue; the boards just stay bright
        return None
    for svc in cat.services:
        h = parse_hours(svc.hours)
        if h is None:
            return None
        spans.extend(h)
    return spans or None


def onbon_controller(cfg: BoardConfig) -> OnbonController:
    transport = (TcpTransport(cfg.host, cfg.tcp_port) if cfg.transport == "tcp"
                 else SerialTransport(cfg.port, cfg.baudrate))
    return OnbonController(Model(cfg.protocol), cfg.address, transport, width=cfg.width,
                           height=cfg.height, colours=cfg.colours)


def onbon_pages(line: Line, width: int, colours: int) -> list[tuple[list[list[int]], int, int]]:
    """A line as an ONBON area's pages: a call that flashes, text too long for the
    board in pieces shown one after another (the board's own scrolling would need the
    whole text as one wide picture, which the BX-5E manual does not describe)."""
    text, effect, colour = line
    if colours == 1:
        colour = 1  # a single-colour board lights its one colour
    # Pillow is loaded only on a hall that has a dot-matrix board.
    from drivers.onbon_render import render_line, split_to_fit

    pieces = split_to_fit(text, width)
    mode = DisplayMode.FLASH if effect == Effect.FLASH else DisplayMode.STATIC
    return [(render_line(p, width, int(colour), height=LINE_DOTS), mode,
             ONBON_PAGE_STAY if len(pieces) > 1 else 100) for p in pieces]


def step_onbon(svc: Any, b: Any, c: OnbonController) -> None:
    """``svc`` is the BoardService and ``b`` its board (typed loosely: boards.py imports
    this module, and the layer test forbids the cycle).

    One dynamic area per 16-dot line. The areas are lost on a power cut (manual
    §1.3), so the board is painted afresh whenever it may have restarted: after
    silence, after a NACK, after a new connection."""
    now = time.monotonic()
    if b.onbon_fault and now < b.onbon_next_probe:
        return
    fresh = b.info is None or not b.sent or b.onbon_fault or c.transport.opens != b.onbon_opens
    if fresh:
        c.ping(retries=0 if b.onbon_fault else None)
        lines = max(1, c.height // LINE_DOTS)
        b.info = Info(Kind.BOARD, lines, c.width // 8, c.model.value)
        c.delete(None)
        try:
            c.set_brightness(svc.brightness)
        except DeviceRefused as e:  # older firmware: the board stays at its own level
            log.warning("%s; the board keeps its own brightness", e)
        b.sent = [None] * lines
        b.onbon_opens = c.transport.opens
        if b.onbon_fault:
            log.info("%s: answering again; repainting it", b.name)
        b.onbon_fault = False
        b.last_io = time.monotonic()
        svc.n.health.set_health(b.name, DeviceHealth(Health.OK))
    b.urgent = False
    b.chime = 0  # an ONBON board has no chime; a BX-6 speaks instead (below)
    speak = b.say.popleft() if b.say else None
    count = 0
    for i, want in enumerate(svc.desired(b, now)):
        if i < len(b.sent) and b.sent[i] == want:
            continue
        try:
            if want[0]:
                c.show(i, i * LINE_DOTS, onbon_pages(want, c.width, c.colours))
            else:
                c.delete([i])
        except DeviceRefused as e:
            if speak is not None:
                b.say.appendleft(speak)  # said once the board takes the picture
            b.onbon_nacks += 1
            if b.onbon_nacks <= 1:
                # A controller that restarted may refuse what no longer exists (an
                # area to delete); either way, paint it whole on the next turn.
                log.warning("%s; line %d was %r; repainting the board", e, i, want[0])
                b.sent = []
                b.wake.set()
                return
            # Refused again on a fresh board: the picture itself is wrong for it (its
            # size in the config?). Do not hammer it; the next change tries again.
            svc.n.health.set_health(b.name, DeviceHealth(
                Health.FAULT, f"{e}; line {i + 1} ({want[0]!r}) is not shown — check "
                              f"width = {c.width} and height = {c.height} against the "
                              "controller's screen"))
            if i < len(b.sent):
                b.sent[i] = want
            return
        b.onbon_nacks = 0
        if i < len(b.sent):
            b.sent[i] = want
        count += 1
    if speak is not None:
        try:
            c.say(speak)
        except DeviceRefused as e:
            log.warning("%s; the call %r was not spoken", e, speak)
        count += 1
    if count:
        b.last_io = now
    elif now - b.last_io >= svc.heartbeat_s:
        c.ping()
        b.last_io = now
    if not b.onbon_nacks:  # a refused picture stays reported until one is taken
        svc.n.health.set_health(b.name, DeviceHealth(Health.OK))
