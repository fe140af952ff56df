"""The RS-485 bus codec (docs/protocols/RS485.md): frames, CRC, command payloads, text.

Pure functions and one stateful-but-I/O-free :class:`FrameDecoder`; the bus
master (drivers/bus.py) and the simulated devices (sim/bus.py) both use this
module, from opposite sides of the wire.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from drivers.errors import HallEdgeError

# RS485.md "Frame"
SYNC = b"\xaa\x55"
HEADER_LEN = 7  # sync 2 + ADDR + CMD + SEQ + LEN 2
CRC_LEN = 2
MAX_PAYLOAD = 1024
BROADCAST = 0
MIN_ADDRESS, MAX_ADDRESS = 1, 247
REPLY_BIT = 0x80
ERROR_CMD = 0xFF
# RS485.md "A receiver resynchronises … after a gap of more than 20 ms inside a frame"
FRAME_GAP_S = 0.020


class Cmd(enum.IntEnum):
    """Command bytes (RS485.md "Commands")."""

    TEXT = 0x01
    CLEAR = 0x02
    BRIGHTNESS = 0x03
    CHIME = 0x04
    INFO = 0x10
    POLL = 0x20
    PROMPT = 0x21
    SHOW = 0x22


class ErrorCode(enum.IntEnum):
    """Error reply codes (RS485.md "Frame")."""

    UNKNOWN_COMMAND = 0x01
    BAD_LENGTH = 0x02
    TEXT_NOT_ENCODABLE = 0x03
    BUSY = 0x04


class Kind(enum.IntEnum):
    """INFO reply KIND."""

    BOARD = 0x01
    EVALUATOR = 0x02


class Effect(enum.IntEnum):
    STATIC = 0x00
    SCROLL = 0x01
    FLASH = 0x02


class Colour(enum.IntEnum):
    RED = 0x01
    GREEN = 0x02
    YELLOW = 0x03


class Key(enum.IntEnum):
    """Evaluator keys (RS485.md "Evaluators")."""

    VERY_SATISFIED = 0x01
    SATISFIED = 0x02
    BASIC = 0x03
    UNSATISFIED = 0x04
    VERY_UNSATISFIED = 0x05
    CALL_NEXT = 0x11
    RECALL = 0x12
    PAUSE = 0x13
    ASK_RATING = 0x14
    NO_SHOW = 0x15


# Rating keys → the evaluation levels of MQTT.md "evaluation.submitted".
KEY_LEVEL: dict[int, str] = {
    Key.VERY_SATISFIED: "very_satisfied", Key.SATISFIED: "satisfied", Key.BASIC: "basic",
    Key.UNSATISFIED: "unsatisfied", Key.VERY_UNSATISFIED: "very_unsatisfied",
}
STAFF_KEYS = frozenset({Key.CALL_NEXT, Key.RECALL, Key.PAUSE, Key.ASK_RATING, Key.NO_SHOW})


def parse_key(word: str) -> int:
    """A key as a person types it: ``1``…``5`` ratings, ``11``…``15`` staff keys (hex,
    as on the wire), or a name (``satisfied``, ``call_next``)."""
    names = {k.name.lower(): int(k) for k in Key}
    if word.lower() in names:
        return names[word.lower()]
    key = int(word, 16)
    if key not in {int(k) for k in Key}:
        raise ValueError(f"unknown key {word!r}: 1-5 ratings, 11-15 staff keys, or "
                         f"{', '.join(names)}")
    return key


POLL_MAX_EVENTS = 8  # RS485.md POLL: "at most 8"


class CodecError(HallEdgeError, ValueError):
    """A payload that does not follow RS485.md."""


class TextNotEncodable(CodecError):
    """Text outside GB18030's 1- and 2-byte ranges (what the boards' fonts hold)."""


# --------------------------------------------------------------------------- CRC

def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS: reflected poly 0xA001, init 0xFFFF (RS485.md "Frame")."""
    crc = 0xFFFF
    for b in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ b) & 0xFF]
    return crc


# --------------------------------------------------------------------------- frames

@dataclass(frozen=True, slots=True)
class Frame:
    addr: int
    cmd: int
    seq: int
    payload: bytes = b""

    @property
    def is_reply(self) -> bool:
        return self.cmd == ERROR_CMD or bool(self.cmd & REPLY_BIT)

    @property
    def is_error(self) -> bool:
        return self.cmd == ERROR_CMD

    def encode(self) -> bytes:
        return encode_frame(self.addr, self.cmd, self.seq, self.payload)


def encode_frame(addr: int, cmd: int, seq: int, payload: bytes = b"") -> bytes:
    if not 0 <= addr <= 255 or not 0 <= cmd <= 255 or not 0 <= seq <= 255:
        raise CodecError(f"address/command/sequence out of byte range: {addr}/{cmd}/{seq}")
    if len(payload) > MAX_PAYLOAD:
        raise CodecError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    body = bytes([addr, cmd, seq]) + len(payload).to_bytes(2, "little") + payload
    return SYNC + body + crc16_modbus(body).to_bytes(2, "little")


def reply_for(request: Frame, payload: bytes = b"") -> Frame:
    return Frame(request.addr, request.cmd | REPLY_BIT, request.seq, payload)


def error_for(request: Frame, code: int) -> Frame:
    return Frame(request.addr, ERROR_CMD, request.seq, bytes([request.cmd, code]))


def wire_time_s(nbytes: int, baudrate: int) -> float:
    """8N1: ten bit times per byte."""
    return nbytes * 10 / baudrate


@dataclass(frozen=True, slots=True)
class Dropped:
    """Bytes the decoder threw away, and why (for the raw-traffic log and counters)."""

    reason: str  # "noise" | "crc" | "length" | "gap"
    data: bytes


class FrameDecoder:
    """Bytes in, frames out; resynchronises on the next ``AA 55`` after a bad CRC,
    an impossible length or a gap of more than 20 ms inside a frame.

    ``now`` is the arrival time of ``data`` in seconds (monotonic); the caller
    owns the clock so the decoder stays pure and testable.
    """

    def __init__(self, gap_s: float = FRAME_GAP_S) -> None:
        self.gap_s = gap_s
        self._buf = bytearray()
        self._last: float | None = None
        self.dropped: list[Dropped] = []

    def reset(self) -> None:
        self._buf.clear()
        self._last = None

    @property
    def pending(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes, now: float = 0.0) -> list[Frame]:
        if (self._buf and self._last is not None and now - self._last > self.gap_s
                and self._buf.startswith(SYNC)):
            # A frame stalled mid-way: whatever comes now is not its continuation.
            self._drop(2, "gap")
        self._last = now
        self._buf += data
        frames: list[Frame] = []
        while True:
            i = self._buf.find(SYNC)
            if i < 0:
                # Keep a trailing AA: it may be the first half of the next sync.
                keep = 1 if self._buf.endswith(SYNC[:1]) else 0
                if len(self._buf) > keep:
                    self._drop(len(self._buf) - keep, "noise")
                return frames
            if i > 0:
                self._drop(i, "noise")
            if len(self._buf) < HEADER_LEN:
                return frames
            n = int.from_bytes(self._buf[5:7], "little")
            if n > MAX_PAYLOAD:
                self._drop(2, "length")
                continue
            total = HEADER_LEN + n + CRC_LEN
            if len(self._buf) < total:
                return frames
            body = bytes(self._buf[2:HEADER_LEN + n])
            crc = int.from_bytes(self._buf[HEADER_LEN + n:total], "little")
            if crc != crc16_modbus(body):
                # Resync on the next AA 55 *after* this sync: a real frame may
                # start inside what looked like this one's payload.
                self._drop(2, "crc")
                continue
            frames.append(Frame(body[0], body[1], body[2], body[5:]))
            del self._buf[:total]

    def _drop(self, n: int, reason: str) -> None:
        self.dropped.append(Dropped(reason, bytes(self._buf[:n])))
        if len(self.dropped) > 64:
            del self.dropped[:32]
        del self._buf[:n]


# --------------------------------------------------------------------------- text

def encode_text(text: str) -> bytes:
    """GB18030 limited to its 1-byte (ASCII) and 2-byte ranges; raises TextNotEncodable."""
    out = bytearray()
    for ch in text:
        try:
            b = ch.encode("gb18030")
        except UnicodeEncodeError:  # surrogates and the like
            raise TextNotEncodable(f"{ch!r} cannot be shown on a board") from None
        if len(b) > 2 or (len(b) == 1 and b[0] >= 0x80):
            raise TextNotEncodable(f"{ch!r} (U+{ord(ch):04X}) is outside GB18030's 2-byte "
                                   "range, which the boards' fonts hold")
        out += b
    return bytes(out)


def fit_text(text: str, replacement: str = "?") -> str:
    """``text`` with every character a board cannot show replaced."""
    out = []
    for ch in text:
        try:
            encode_text(ch)
            out.append(ch)
        except TextNotEncodable:
            out.append(replacement)
    return "".join(out)


def decode_text(data: bytes) -> str:
    """The device side: a 4-byte sequence is refused like the boards do."""
    i = 0
    while i < len(data):
        b = data[i]
        if b < 0x80:
            i += 1
            continue
        if b == 0x80 or b == 0xFF or i + 1 >= len(data):
            raise TextNotEncodable(f"byte {b:02X} at {i} does not start a 2-byte character")
        second = data[i + 1]
        if 0x30 <= second <= 0x39:
            raise TextNotEncodable(f"4-byte GB18030 sequence at {i}")
        if not (0x40 <= second <= 0xFE and second != 0x7F):
            raise TextNotEncodable(f"bad second byte {second:02X} at {i + 1}")
        i += 2
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as e:
        raise TextNotEncodable(str(e)) from None


def text_width(text: str) -> int:
    """Width in half-width columns: ASCII is one, a 2-byte character two (RS485.md INFO)."""
    return sum(1 if ord(ch) < 0x80 else 2 for ch in text)


def clip_text(text: str, columns: int) -> str:
    out, w = [], 0
    for ch in text:
        cw = 1 if ord(ch) < 0x80 else 2
        if w + cw > columns:
            break
        out.append(ch)
        w += cw
    return "".join(out)


# --------------------------------------------------------------------------- payloads

def _byte(name: str, v: int, lo: int = 0, hi: int = 255) -> int:
    if not lo <= v <= hi:
        raise CodecError(f"{name} {v} out of range {lo}–{hi}")
    return v


def text_payload(line: int, text: str, effect: int = Effect.STATIC,
                 colour: int = Colour.RED) -> bytes:
    return bytes([_byte("line", line), _byte("effect", effect, 0, 2),
                  _byte("colour", colour, 1, 3)]) + encode_text(text)


@dataclass(frozen=True, slots=True)
class TextCmd:
    line: int
    effect: int
    colour: int
    text: str


def parse_text(payload: bytes) -> TextCmd:
    if len(payload) < 3:
        raise CodecError("TEXT needs LINE, EFFECT, COLOUR")
    if payload[1] > 2 or not 1 <= payload[2] <= 3:
        raise CodecError(f"bad effect/colour {payload[1]}/{payload[2]}")
    return TextCmd(payload[0], payload[1], payload[2], decode_text(payload[3:]))


def clear_payload(line: int | None = None) -> bytes:
    return b"" if line is None else bytes([_byte("line", line)])


def brightness_payload(level: int) -> bytes:
    return bytes([_byte("brightness", level, 0, 15)])


def poll_payload(ack: int) -> bytes:
    return bytes([_byte("ack", ack)])


def prompt_payload(timeout_s: int, text: str) -> bytes:
    return bytes([_byte("timeout", timeout_s)]) + encode_text(text)


def parse_prompt(payload: bytes) -> tuple[int, str]:
    if not payload:
        raise CodecError("PROMPT needs TIMEOUT")
    return payload[0], decode_text(payload[1:])


def show_payload(text: str) -> bytes:
    return encode_text(text)


@dataclass(frozen=True, slots=True)
class Info:
    kind: int
    lines: int
    columns: int
    firmware: str

    def encode(self) -> bytes:
        return bytes([self.kind, self.lines, self.columns]) + self.firmware.encode("ascii")


def parse_info(payload: bytes) -> Info:
    if len(payload) < 3:
        raise CodecError(f"INFO reply of {len(payload)} bytes; needs at least 3")
    return Info(payload[0], payload[1], payload[2],
                payload[3:].decode("ascii", errors="replace"))


@dataclass(frozen=True, slots=True)
class KeyEvent:
    event: int  # 1–255, wraps to 1
    key: int


def encode_poll_reply(events: list[KeyEvent]) -> bytes:
    if len(events) > POLL_MAX_EVENTS:
        raise CodecError(f"{len(events)} events; a POLL reply holds at most {POLL_MAX_EVENTS}")
    out = bytearray([len(events)])
    for e in events:
        out += bytes([_byte("event", e.event, 1, 255), _byte("key", e.key)])
    return bytes(out)


def parse_poll_reply(payload: bytes) -> list[KeyEvent]:
    if not payload:
        raise CodecError("empty POLL reply")
    n = payload[0]
    if n > POLL_MAX_EVENTS or len(payload) != 1 + 2 * n:
        raise CodecError(f"POLL reply says {n} events in {len(payload)} bytes")
    events = [KeyEvent(payload[1 + 2 * i], payload[2 + 2 * i]) for i in range(n)]
    if any(e.event == 0 for e in events):
        raise CodecError("event number 0 is never used")
    return events


def next_event_number(n: int) -> int:
    """1…255 then 1 again; 0 is never used (RS485.md "Evaluators")."""
    return 1 if n >= 255 else n + 1


def parse_error(payload: bytes) -> tuple[int, int]:
    if len(payload) != 2:
        raise CodecError("an error reply carries [request CMD, code]")
    return payload[0], payload[1]
