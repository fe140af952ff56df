"""A virtual ticket printer on a pseudo-terminal: the device's side of PRINTER.md.

Point the driver's ``printer.port`` at :attr:`SimPrinter.port` (``/dev/pts/N``)
and it cannot tell the difference: the simulator reads ESC/POS with the same
command table as the driver (:class:`~drivers.escpos_codec.EscPosDecoder`),
answers DLE EOT from its state, swallows print data when it has no paper or its
cover is open, and on each cut renders the ticket to a PNG.

Every quirk is a setting (:data:`SETTINGS_HELP`), changed at runtime with
:meth:`SimPrinter.set_state`. Raw traffic goes to its own log: ``<<<`` for bytes
the printer received, ``>>>`` for bytes it sent.
"""

from __future__ import annotations

import argparse
import logging
import queue
import random
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from drivers.escpos_decode import DecodedTicket, EscPosDecoder, Font, Op, TicketAssembler
from drivers.escpos_status import STATUS_FIXED_BITS
from sim.ptydevice import PtyDevice
from sim.render import FONT_PATH, render_ticket

log = logging.getLogger(__name__)

Paper = Literal["ok", "near_end", "end"]


@dataclass(frozen=True, slots=True)
class SimState:
    paper: Paper = "ok"
    cover_open: bool = False
    offline: bool = False
    error: bool = False
    cutter_error: bool = False
    unrecoverable: bool = False
    reply: bool = True
    delay_ms: int = 0
    garbage: bytes = b""
    noise: float = 0.0
    font: Font = "gbk"

    @property
    def stopped(self) -> bool:
        """Printing has stopped: a real printer then also answers "offline"."""
        return (self.paper == "end" or self.cover_open or self.error or self.cutter_error
                or self.unrecoverable)

    @property
    def can_print(self) -> bool:
        return not self.stopped and not self.offline


SETTINGS_HELP: dict[str, str] = {
    "paper": "ok | near_end | end — the paper sensors; at end, print data is discarded",
    "cover_open": "true/false — cover open; print data is discarded",
    "offline": "true/false — taken offline (the online button): DLE EOT 1 offline bit, print "
               "data is discarded; paper end, an open cover or an error set that bit too, as "
               "on a real printer",
    "error": "true/false — answers DLE EOT 2 with the error bit; print data is discarded",
    "cutter_error": "true/false — a cutter jam: DLE EOT 3 cutter bit and DLE EOT 2 error bit; "
                    "print data is discarded",
    "unrecoverable": "true/false — DLE EOT 3 unrecoverable bit and DLE EOT 2 error bit; print "
                     "data is discarded",
    "reply": "true/false — false: never answer DLE EOT (a printer switched off)",
    "delay_ms": "integer — wait this long before each DLE EOT answer",
    "garbage": "hex bytes — sent before each DLE EOT answer (line noise)",
    "noise": "0…1 — the chance of one random byte on the line before each DLE EOT answer",
    "font": "gbk | gb2312 — the Chinese font: with gb2312, GBK codes outside GB2312 print as "
            "garbage",
}


def status_byte(n: int, state: SimState) -> int | None:
    """The answer to ``10 04 n`` in ``state`` (PRINTER.md "Status (DLE EOT)").

    None means the printer stays silent: no reply configured, or an ``n`` it
    does not know.
    """
    if not state.reply:
        return None
    b = STATUS_FIXED_BITS  # 0xx1xx10
    if n == 1:
        b |= 0x08 if state.offline or state.stopped else 0
    elif n == 2:
        b |= 0x04 if state.cover_open else 0
        b |= 0x20 if state.paper == "end" else 0
        b |= 0x40 if state.error or state.cutter_error or state.unrecoverable else 0
    elif n == 3:
        b |= 0x08 if state.cutter_error else 0
        b |= 0x20 if state.unrecoverable else 0
    elif n == 4:
        # With the roll gone, the near-end sensor is uncovered too.
        b |= 0x0C if state.paper in ("near_end", "end") else 0
        b |= 0x60 if state.paper == "end" else 0
    else:
        return None
    return b


_SAFE_RE = re.compile(r"[^0-9A-Za-z]")


class SimPrinter(PtyDevice):
    """A thermal ticket printer played on a pty, in background threads."""

    def __init__(self, out_dir: Path | str | None = None, *,
                 on_ticket: Callable[[DecodedTicket], None] | None = None,
                 traffic_log: Path | str | None = None,
                 font_path: Path = FONT_PATH,
                 state: SimState | None = None, seed: int | None = None) -> None:
        self.out_dir = Path(out_dir) if out_dir is not None else None
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self.on_ticket = on_ticket
        self._font_path = font_path
        self._state = state or SimState()
        self._state_lock = threading.Lock()
        self.tickets: list[DecodedTicket] = []
        self.pngs: list[Path] = []
        self.received_bytes = 0
        self.discarded_bytes = 0  # print data swallowed for lack of paper etc.
        self.queries: list[int] = []  # every DLE EOT n asked, in order
        self._done = threading.Condition()
        self._decoder = EscPosDecoder(font=self._state.font)
        self._rng = random.Random(seed)  # the noise; seeded, a failing test replays
        self._assembler = TicketAssembler()
        super().__init__(name="sim-printer-line", traffic_log=traffic_log)
        self._render_q: queue.Queue[DecodedTicket | None] = queue.Queue()
        self._renderer = threading.Thread(target=self._render_loop, name="sim-printer-render",
                                          daemon=True)
        self._start_reading()
        self._renderer.start()

    # -- control

    @property
    def state(self) -> SimState:
        return self._state

    def set_state(self, *, paper: Paper | None = None, cover_open: bool | None = None,
                  offline: bool | None = None, error: bool | None = None,
                  cutter_error: bool | None = None, unrecoverable: bool | None = None,
                  reply: bool | None = None, delay_ms: int | None = None,
                  garbage: bytes | None = None, noise: float | None = None,
                  font: Font | None = None) -> SimState:
        """Change some settings (see :data:`SETTINGS_HELP`); returns the new state."""
        if paper is not None and paper not in ("ok", "near_end", "end"):
            raise ValueError(f"paper must be ok, near_end or end, not {paper!r}")
        if noise is not None and not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise is a chance from 0 to 1, not {noise!r}")
        if font is not None and font not in ("gbk", "gb2312"):
            raise ValueError(f"font must be gbk or gb2312, not {font!r}")
        with self._state_lock:
            s = self._state
            self._state = SimState(
                paper=s.paper if paper is None else paper,
                cover_open=s.cover_open if cover_open is None else cover_open,
                offline=s.offline if offline is None else offline,
                error=s.error if error is None else error,
                cutter_error=s.cutter_error if cutter_error is None else cutter_error,
                unrecoverable=s.unrecoverable if unrecoverable is None else unrecoverable,
                reply=s.reply if reply is None else reply,
                delay_ms=s.delay_ms if delay_ms is None else delay_ms,
                garbage=s.garbage if garbage is None else garbage,
                noise=s.noise if noise is None else noise,
                font=s.font if font is None else font,
            )
            self._decoder.font = self._state.font
            return self._state

    def describe(self) -> dict[str, object]:
        """The state and counters as plain JSON-able values (for control sockets)."""
        st = self._state
        return {
            "port": self.port, "paper": st.paper, "cover_open": st.cover_open,
            "offline": st.offline, "error": st.error, "cutter_error": st.cutter_error,
            "unrecoverable": st.unrecoverable, "reply": st.reply, "delay_ms": st.delay_ms,
            "garbage": st.garbage.hex(), "noise": st.noise, "font": st.font,
            "tickets": len(self.tickets),
            "received_bytes": self.received_bytes, "discarded_bytes": self.discarded_bytes,
        }

    def status_byte(self, n: int) -> int | None:
        return status_byte(n, self._state)

    def inject(self, data: bytes) -> None:
        """Put bytes on the line to the host, unasked (noise, a late answer)."""
        self._send(data)

    def wait_for_tickets(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until ``count`` tickets have been cut (and rendered, with ``out_dir``)."""
        with self._done:
            return self._done.wait_for(lambda: len(self.tickets) >= count, timeout)

    def _on_close(self) -> None:
        # Tickets already cut are still drawn: a test that closes right after the
        # cut finds its PNG.
        self._render_q.put(None)
        self._renderer.join(timeout=10)

    # -- the line

    def on_bytes(self, data: bytes) -> None:
        self.received_bytes += len(data)
        self._handle(self._decoder.feed(data))

    def _handle(self, ops: list[Op]) -> None:
        printable: list[Op] = []
        for op in ops:
            if op.kind == "status_query":
                # Real-time: answered as soon as it is read, before queued printing.
                self.queries.append(op.value)
                self._answer(op.value)
                continue
            if self._state.can_print:
                printable.append(op)
            else:
                self.discarded_bytes += op.nbytes
        for t in self._assembler.feed(printable):
            self._render_q.put(t)

    def _answer(self, n: int) -> None:
        st = self._state
        byte = status_byte(n, st)
        if byte is None:
            return
        if st.delay_ms:
            time.sleep(st.delay_ms / 1000)
        stray = bytes([self._rng.randrange(256)]) if self._rng.random() < st.noise else b""
        self._send(st.garbage + stray + bytes([byte]))

    # -- paper

    def _render_loop(self) -> None:
        while True:
            t = self._render_q.get()
            if t is None:
                return
            png: Path | None = None
            if self.out_dir is not None:
                png = self.out_dir / self._png_name(len(self.tickets) + 1, t)
                try:
                    render_ticket(t, font_path=self._font_path).save(png)
                except Exception:  # a drawing bug must not stop the printer
                    log.exception("sim printer: cannot render ticket to %s", png)
                    png = None
            with self._done:
                self.tickets.append(t)
                if png is not None:
                    self.pngs.append(png)
                self._done.notify_all()
            if self.on_ticket is not None:
                try:
                    self.on_ticket(t)
                except Exception:
                    log.exception("sim printer: on_ticket callback failed")

    @staticmethod
    def _png_name(seq: int, t: DecodedTicket) -> str:
        number = _SAFE_RE.sub("", t.number or "")
        return f"ticket-{seq:04d}-{number}.png" if number else f"ticket-{seq:04d}.png"


def apply_setting(sim: SimPrinter, key: str, value: str) -> SimState:
    """``paper=end``, ``reply=false``, ``garbage=ff00``: a setting from text (the CLI)."""
    v = value.strip().lower()
    flag = {"1": True, "true": True, "yes": True, "on": True,
            "0": False, "false": False, "no": False, "off": False}.get(v)
    if key == "paper":
        if v not in ("ok", "near_end", "end"):
            raise ValueError(f"paper must be ok, near_end or end, not {value!r}")
        return sim.set_state(paper="ok" if v == "ok" else "near_end" if v == "near_end"
                             else "end")
    if key == "delay_ms":
        return sim.set_state(delay_ms=int(v))
    if key == "garbage":
        return sim.set_state(garbage=bytes.fromhex(v))
    if key == "noise":
        return sim.set_state(noise=float(v))
    if key == "font":
        if v not in ("gbk", "gb2312"):
            raise ValueError(f"font must be gbk or gb2312, not {value!r}")
        return sim.set_state(font="gbk" if v == "gbk" else "gb2312")
    if key not in SETTINGS_HELP:
        raise ValueError(f"unknown setting {key!r}; type help")
    if flag is None:
        raise ValueError(f"{key} takes true or false, not {value!r}")
    setters: dict[str, Callable[[bool], SimState]] = {
        "cover_open": lambda f: sim.set_state(cover_open=f),
        "offline": lambda f: sim.set_state(offline=f),
        "error": lambda f: sim.set_state(error=f),
        "cutter_error": lambda f: sim.set_state(cutter_error=f),
        "unrecoverable": lambda f: sim.set_state(unrecoverable=f),
        "reply": lambda f: sim.set_state(reply=f),
    }
    return setters[key](flag)


def main(argv: list[str] | None = None) -> int:
    """Run a virtual printer until stdin closes; ``key=value`` lines change its state."""
    ap = argparse.ArgumentParser(prog="python -m sim.printer", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="sim-tickets", help="directory for ticket PNGs")
    ap.add_argument("--traffic-log", help="file for the <<< / >>> hex log")
    args = ap.parse_args(argv)
    with SimPrinter(args.out, traffic_log=args.traffic_log,
                    on_ticket=lambda t: print(f"cut: {t.number or '?'} "
                                              f"({t.raw_bytes} bytes)", flush=True)) as sim:
        print(f"printer on {sim.port}; type key=value, 'help', or Ctrl-D to stop", flush=True)
        for raw in sys.stdin:
            line = raw.strip()
            if not line:
                continue
            if line == "help" or "=" not in line:
                for k, v in SETTINGS_HELP.items():
                    print(f"  {k}: {v}")
                continue
            key, _, value = line.partition("=")
            try:
                st = apply_setting(sim, key.strip(), value)
            except ValueError as e:
                print(e)
                continue
            print(st)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
