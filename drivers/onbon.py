"""The ONBON (仰邦) BX-5E / BX-6E dynamic-area protocol: frames, CRC, escaping, commands.

Implemented from the vendor's public manuals (onbonlab/BX-V-VI,
``bx.dual.Aux.Data/5th动态区域用户手册.md`` and ``6th动态区域用户手册.md``; section
numbers below are theirs). Pure code, no I/O: the board driver
(drivers/onbon_link.py) and the simulator (sim/onbon.py) use it from the two
sides of the wire, and it is fuzzed (bench/fuzz_atheris.py, tests/unit/test_onbon.py).

A frame on the wire (§2): eight ``A5``, then — escaped — a 16-byte header, the
data and a CRC-16 of header + data, then ``5A``. Multi-byte numbers are
little-endian (§1.5).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

from drivers.errors import HallEdgeError

# §2: frame head and tail; §2.3: the escapes.
HEAD = b"\xa5" * 8
TAIL = 0x5A
_ESC = {0xA5: b"\xa6\x02", 0xA6: b"\xa6\x01", 0x5A: b"\x5b\x02", 0x5B: b"\x5b\x01"}
_UNESC = {(0xA6, 0x02): 0xA5, (0xA6, 0x01): 0xA6, (0x5B, 0x02): 0x5A, (0x5B, 0x01): 0x5B}

# §4: the header.
HEADER = struct.Struct("<HHBBHIL")  # dst, src, protocol, reserved, device type, reserved, len
HEADER_LEN = HEADER.size  # 16
PC_ADDRESS = 0x8000  # "源地址 PC 客户端软件默认为0x8000"
PROTOCOL = 0xF0  # dynamic-area protocol version
ANY_ADDRESS = 0xFFFE  # the ping sample's wildcard screen address (§5.5.1)
ANY_DEVICE = 0xFFFE  # and its wildcard device type
MAX_DATA = 1 << 20  # far above what a 4-area board takes (§1.3: 300 KB per area)

# §1.2, §3.2
TCP_PORT = 5005
BAUDRATES = (9600, 57600)


class Model(enum.StrEnum):
    """The controller families this codec speaks; values are the config's ``protocol``."""

    BX5 = "onbon-bx5"
    BX6 = "onbon-bx6"


class Group(enum.IntEnum):
    """Command groups (§5.3, §5.4, §5.5)."""

    REPLY = 0xA0
    CONTROL = 0xA2
    AREA = 0xA7


class Cmd(enum.IntEnum):
    ACK = 0x00  # group A0
    NACK = 0x01  # group A0
    PING = 0x00  # group A2 (§5.5.1)
    BRIGHTNESS = 0x07  # group A2 (§5.5.2)
    AREA_UPDATE = 0x00  # group A7 (§5.4.1)
    AREA_DELETE = 0x01  # group A7 (§5.4.2)
    VOICE_QUEUE = 0x02  # group A7, BX-6 only (6th §5.4.3)
    VOICE_INSERT = 0x07  # group A7, BX-6 only (6th §5.4.4)


class Error(enum.IntEnum):
    """The controller's error register (§5.2.2); the names are the manual's."""

    NO = 0
    OUTOFGROUP = 1
    NOCMD = 2
    BUSY = 3
    MEMORYVOLUME = 4
    CHECKSUM = 5
    FILENOTEXIST = 6
    FLASH = 7
    FILE_DOWNLOAD = 8
    FILE_NAME = 9
    FILE_TYPE = 10
    FILE_CRC16 = 11
    FONT_NOT_EXIST = 12
    FIRMWARE_TYPE = 13
    DATE_TIME_FORMAT = 14
    FILE_EXIST = 15
    FILE_BLOCK_NUM = 16
    CONTROLLER_TYPE = 17
    SCREEN_PARA = 18
    CONTROLLER_ID = 19


ERROR_TEXT = {
    Error.OUTOFGROUP: "unknown command group", Error.NOCMD: "unknown command",
    Error.BUSY: "controller busy", Error.MEMORYVOLUME: "out of memory",
    Error.CHECKSUM: "bad CRC", Error.SCREEN_PARA: "area outside the screen or bad parameter",
    Error.CONTROLLER_TYPE: "wrong controller type", Error.CONTROLLER_ID: "wrong controller",
}


def error_text(code: int) -> str:
    try:
        e = Error(code)
    except ValueError:
        return f"error {code}"
    return ERROR_TEXT.get(e, f"ERR_{e.name}")


class DisplayMode(enum.IntEnum):
    """A page's display mode (§5.4.1 DisplayMode): the three a calling board needs."""

    STATIC = 0x01
    MOVE_LEFT = 0x03
    FLASH = 0x07


class OnbonCodecError(HallEdgeError, ValueError):
    """Bytes or a request that do not follow the ONBON manual."""


# --------------------------------------------------------------------------- CRC

def _crc_table() -> tuple[int, ...]:
    # Appendix 1: X^16 + X^15 + X^2 + 1, processed LSB first (0x8005 reflected is 0xA001).
    out = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        out.append(c)
    return tuple(out)


CRC_TABLE = _crc_table()


def crc16(data: bytes, crc: int = 0) -> int:
    """The manual's CRC-16 (appendix 1): reflected 0x8005, starting at 0."""
    for b in data:
        crc = (crc >> 8) ^ CRC_TABLE[(crc ^ b) & 0xFF]
    return crc


# --------------------------------------------------------------------------- escaping

def escape(data: bytes) -> bytes:
    """§2.3: A5→A6 02, A6→A6 01, 5A→5B 02, 5B→5B 01; nothing else changes."""
    if not any(b in _ESC for b in data):
        return bytes(data)
    out = bytearray()
    for b in data:
        esc = _ESC.get(b)
        if esc is None:
            out.append(b)
        else:
            out += esc
    return bytes(out)


def unescape(data: bytes) -> bytes:
    """The inverse of :func:`escape`; raises on a lone ``A6``/``5B`` or a raw ``A5``/``5A``."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b in (0xA6, 0x5B):
            if i + 1 >= n or (b, data[i + 1]) not in _UNESC:
                nxt = f"{data[i + 1]:02X}" if i + 1 < n else "the end"
                raise OnbonCodecError(f"bad escape {b:02X} followed by {nxt} at byte {i}")
            out.append(_UNESC[(b, data[i + 1])])
            i += 2
            continue
        if b in (0xA5, 0x5A):
            raise OnbonCodecError(f"unescaped {b:02X} inside a frame at byte {i}")
        out.append(b)
        i += 1
    return bytes(out)


# --------------------------------------------------------------------------- frames

@dataclass(frozen=True, slots=True)
class Packet:
    """One frame's content (PHY1 of §2.1 without the CRC)."""

    dst: int
    src: int
    data: bytes
    device_type: int = ANY_DEVICE
    protocol: int = PROTOCOL

    def encode(self) -> bytes:
        return encode_frame(self.dst, self.data, src=self.src, device_type=self.device_type,
                            protocol=self.protocol)


def encode_frame(dst: int, data: bytes, *, src: int = PC_ADDRESS,
                 device_type: int = ANY_DEVICE, protocol: int = PROTOCOL) -> bytes:
    """A whole frame for the wire: head, escaped header + data + CRC, tail."""
    if not 0 <= dst <= 0xFFFF or not 0 <= src <= 0xFFFF or not 0 <= device_type <= 0xFFFF:
        raise OnbonCodecError(f"address or device type out of range: {dst}/{src}/{device_type}")
    if len(data) > MAX_DATA:
        raise OnbonCodecError(f"{len(data)} bytes of data exceed {MAX_DATA}")
    phy1 = HEADER.pack(dst, src, protocol, 0, device_type, 0, len(data)) + data
    phy1 += crc16(phy1).to_bytes(2, "little")
    return HEAD + escape(phy1) + bytes([TAIL])


def decode_body(escaped: bytes) -> Packet:
    """What lies between the last ``A5`` of the head and the ``5A`` tail."""
    raw = unescape(escaped)
    if len(raw) < HEADER_LEN + 2:
        raise OnbonCodecError(f"frame of {len(raw)} bytes is shorter than header + CRC")
    body, chk = raw[:-2], int.from_bytes(raw[-2:], "little")
    if crc16(body) != chk:
        raise OnbonCodecError(f"CRC {chk:04X} does not match {crc16(body):04X}")
    dst, src, proto, _, dtype, _, dlen = HEADER.unpack_from(body)
    if dlen != len(body) - HEADER_LEN:
        raise OnbonCodecError(f"header says {dlen} data bytes, the frame holds "
                              f"{len(body) - HEADER_LEN}")
    return Packet(dst, src, bytes(body[HEADER_LEN:]), dtype, proto)


@dataclass(frozen=True, slots=True)
class Dropped:
    reason: str  # "noise" | "escape" | "crc" | "length"
    detail: str
    nbytes: int


@dataclass
class FrameDecoder:
    """Bytes in, packets out; a bad frame is dropped (with its reason) and the next
    ``A5`` starts a new one (§2: any one ``A5`` is a head)."""

    max_frame: int = 2 * (MAX_DATA + HEADER_LEN + 2)
    dropped: list[Dropped] = field(default_factory=list)
    _buf: bytearray = field(default_factory=bytearray)
    _in_frame: bool = False
    _noise: int = 0

    def reset(self) -> None:
        self._buf.clear()
        self._in_frame = False

    def feed(self, data: bytes) -> list[Packet]:
        out: list[Packet] = []
        for b in data:
            if b == 0xA5:
                if self._in_frame and self._buf:
                    self._drop("length", "a new frame began inside this one")
                self._in_frame = True
                self._buf.clear()
                continue
            if not self._in_frame:
                self._noise += 1
                continue
            if self._noise:
                self.dropped.append(Dropped("noise", "bytes outside a frame", self._noise))
                self._noise = 0
            if b == TAIL:
                frame = bytes(self._buf)
                self._in_frame = False
                self._buf.clear()
                try:
                    out.append(decode_body(frame))
                except OnbonCodecError as e:
                    reason = "crc" if "CRC" in str(e) else (
                        "escape" if "escape" in str(e) else "length")
                    self.dropped.append(Dropped(reason, str(e), len(frame)))
                continue
            self._buf.append(b)
            if len(self._buf) > self.max_frame:
                self._drop("length", f"no tail after {self.max_frame} bytes")
                self._in_frame = False
        if self._noise and not self._in_frame:
            self.dropped.append(Dropped("noise", "bytes outside a frame", self._noise))
            self._noise = 0
        del self.dropped[:-64]  # a counter's worth, not a leak on a noisy line
        return out

    def _drop(self, reason: str, detail: str) -> None:
        self.dropped.append(Dropped(reason, detail, len(self._buf)))
        self._buf.clear()


# --------------------------------------------------------------------------- requests

@dataclass(frozen=True, slots=True)
class Request:
    """§5.1.1: RtnReq, CmdGroup, Cmd, then the command's own bytes."""

    group: int
    cmd: int
    body: bytes = b""
    reply: bool = True

    def encode(self) -> bytes:
        return bytes([1 if self.reply else 0, self.group, self.cmd]) + self.body


def parse_request(data: bytes) -> Request:
    if len(data) < 3:
        raise OnbonCodecError(f"request of {len(data)} bytes is shorter than its 3-byte head")
    return Request(data[1], data[2], bytes(data[3:]), data[0] == 1)


def ping() -> bytes:
    """§5.5.1 (data only; :func:`encode_frame` puts it in a frame)."""
    return Request(Group.CONTROL, Cmd.PING, b"\x00\x00").encode()



# --------------------------------------------------------------------------- responses

@dataclass(frozen=True, slots=True)
class Response:
    """§5.1.2: the controller's answer."""

    group: int
    cmd: int
    status: int = 0
    error: int = 0
    data: bytes = b""

    @property
    def nack(self) -> bool:
        return bool(self.status & 1) or (self.group == Group.REPLY and self.cmd == Cmd.NACK)

    def encode(self) -> bytes:
        return (bytes([0, self.group, self.cmd]) + struct.pack("<HHH", self.status, self.error,
                                                               len(self.data)) + self.data)


ACK = Response(Group.REPLY, Cmd.ACK)


def nack(error: int) -> Response:
    return Response(Group.REPLY, Cmd.NACK, 1, error)


def parse_response(data: bytes) -> Response:
    if len(data) < 9:
        raise OnbonCodecError(f"answer of {len(data)} bytes is shorter than its 9-byte head")
    status, error, n = struct.unpack_from("<HHH", data, 3)
    if len(data) != 9 + n:
        raise OnbonCodecError(f"answer says {n} data bytes, holds {len(data) - 9}")
    return Response(data[1], data[2], status, error, bytes(data[9:]))


def wire_time_s(nbytes: int, baudrate: int) -> float:
    """8N1 (§1.2): ten bit times per byte."""
    return nbytes * 10 / baudrate
