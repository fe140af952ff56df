"""The devices of the simulated RS-485 bus (sim/bus.py): LED boards and evaluators,
each answering the frames addressed to it as the real ones do (docs/protocols/RS485.md),
with per-device faults settable at runtime (:data:`FAULTS_HELP`)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from drivers.rs485 import (
    POLL_MAX_EVENTS,
    Cmd,
    CodecError,
    ErrorCode,
    Frame,
    Info,
    KeyEvent,
    Kind,
    TextNotEncodable,
    decode_text,
    encode_poll_reply,
    error_for,
    next_event_number,
    parse_prompt,
    parse_text,
    reply_for,
)

FAULTS_HELP = {
    "reply": "on|off — off: the device never answers (switched off, cable cut)",
    "bad_crc": "on|off — on: every answer carries a wrong CRC",
    "slow_ms": "N — answer N ms late (over 150 ms the master times out)",
    "split_ms": "N — send the first half of each answer, pause N ms, then the rest",
}

EVENT_BUFFER = 32  # events an evaluator holds before it drops the oldest


@dataclass
class Faults:
    reply: bool = True
    bad_crc: bool = False
    slow_ms: int = 0
    split_ms: int = 0


@dataclass(frozen=True, slots=True)
class Received:
    ts: float  # time.monotonic() when the frame was decoded
    frame: Frame
    nbytes: int
    reply_bytes: int


@dataclass
class SimDevice:
    address: int
    faults: Faults = field(default_factory=Faults)
    received: list[Received] = field(default_factory=list)
    firmware: str = "SIM-1.0"

    kind = 0
    lines = 0
    columns = 0

    def info(self) -> Info:
        return Info(self.kind, self.lines, self.columns, self.firmware)

    def handle(self, f: Frame) -> Frame | None:  # pragma: no cover - overridden
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"address": self.address, "faults": vars(self.faults).copy(),
                "frames": len(self.received)}


@dataclass
class SimBoard(SimDevice):
    lines: int = 4
    columns: int = 32
    role: str = "hall"
    content: list[tuple[str, int, int]] = field(default_factory=list)
    brightness: int = 15
    chimes: int = 0
    powered: bool = True

    kind = Kind.BOARD

    def __post_init__(self) -> None:
        self.clear()

    def clear(self, line: int | None = None) -> None:
        if line is None:
            self.content = [("", 0, 1)] * self.lines
        elif 0 <= line < self.lines:
            self.content[line] = ("", 0, 1)

    def power_cycle(self) -> None:
        """What a board does when its power comes back: blank, as the real ones are."""
        self.clear()
        self.chimes = 0

    def text(self) -> list[str]:
        return [t for t, _, _ in self.content]

    def handle(self, f: Frame) -> Frame | None:
        if f.cmd == Cmd.INFO:
            return reply_for(f, self.info().encode())
        if f.cmd == Cmd.TEXT:
            try:
                t = parse_text(f.payload)
            except TextNotEncodable:
                return error_for(f, ErrorCode.TEXT_NOT_ENCODABLE)
            except CodecError:
                return error_for(f, ErrorCode.BAD_LENGTH)
            if t.line >= self.lines:
                return error_for(f, ErrorCode.BAD_LENGTH)
            self.content[t.line] = (t.text, t.effect, t.colour)
            return reply_for(f)
        if f.cmd == Cmd.CLEAR:
            if len(f.payload) > 1:
                return error_for(f, ErrorCode.BAD_LENGTH)
            self.clear(f.payload[0] if f.payload else None)
            return reply_for(f)
        if f.cmd == Cmd.BRIGHTNESS:
            if len(f.payload) != 1 or f.payload[0] > 15:
                return error_for(f, ErrorCode.BAD_LENGTH)
            self.brightness = f.payload[0]
            return reply_for(f)
        if f.cmd == Cmd.CHIME:
            self.chimes += 1
            return reply_for(f)
        return error_for(f, ErrorCode.UNKNOWN_COMMAND)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "kind": "board", "role": self.role,
                "lines": self.text(), "chimes": self.chimes, "brightness": self.brightness}


@dataclass
class SimEvaluator(SimDevice):
    window: str = ""
    lines: int = 2
    columns: int = 16
    events: deque[KeyEvent] = field(default_factory=deque)
    last_event: int = 0
    display: str = ""
    prompt_text: str = ""
    prompt_until: float = 0.0
    prompts: list[tuple[int, str]] = field(default_factory=list)
    acks: list[int] = field(default_factory=list)

    kind = Kind.EVALUATOR

    def press(self, key: int) -> int:
        """A key press: buffered with the next event number until a POLL acknowledges it."""
        self.last_event = next_event_number(self.last_event)
        self.events.append(KeyEvent(self.last_event, key))
        while len(self.events) > EVENT_BUFFER:
            self.events.popleft()
        if 1 <= key <= 5:
            self.prompt_until = 0.0  # the rating closes the prompt
        return self.last_event

    def restart(self) -> None:
        """Power cycle: the buffer is in RAM, the event counter starts again."""
        self.events.clear()
        self.last_event = 0
        self.prompt_until = 0.0

    @property
    def prompt_open(self) -> bool:
        return time.monotonic() < self.prompt_until

    def handle(self, f: Frame) -> Frame | None:
        if f.cmd == Cmd.INFO:
            return reply_for(f, self.info().encode())
        if f.cmd == Cmd.POLL:
            if len(f.payload) != 1:
                return error_for(f, ErrorCode.BAD_LENGTH)
            ack = f.payload[0]
            self.acks.append(ack)
            # "the device forgets events up to ACK" — only if it holds that event.
            numbers = [e.event for e in self.events]
            if ack and ack in numbers:
                for _ in range(numbers.index(ack) + 1):
                    self.events.popleft()
            return reply_for(f, encode_poll_reply(list(self.events)[:POLL_MAX_EVENTS]))
        if f.cmd == Cmd.PROMPT:
            try:
                timeout, text = parse_prompt(f.payload)
            except TextNotEncodable:
                return error_for(f, ErrorCode.TEXT_NOT_ENCODABLE)
            except CodecError:
                return error_for(f, ErrorCode.BAD_LENGTH)
            self.prompt_text = text
            self.prompt_until = time.monotonic() + timeout
            self.prompts.append((timeout, text))
            return reply_for(f)
        if f.cmd == Cmd.SHOW:
            try:
                self.display = decode_text(f.payload)
            except TextNotEncodable:
                return error_for(f, ErrorCode.TEXT_NOT_ENCODABLE)
            return reply_for(f)
        return error_for(f, ErrorCode.UNKNOWN_COMMAND)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "kind": "evaluator", "window": self.window,
                "display": self.display, "prompt": self.prompt_text if self.prompt_open
                else "", "buffered": [(e.event, e.key) for e in self.events]}
