"""A virtual ID-card reader on a pseudo-terminal: the device's side of IDCARD.md.

It answers the SAM host protocol with the driver's own codec (:mod:`drivers.idcard`)
from a settable state: which card lies on it (any of :data:`CARDS`, all obviously
fake 测试 identities with check digits computed here), and every fault a real
reader shows — a forced SW3 code per command, corrupted checksums or lengths,
garbage before the preamble, a slow SAM, silence. Raw traffic goes to its own
log, ``<<<`` received and ``>>>`` sent (the hex of a read reply is elided: it is
a card's text).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from drivers.idcard import (
    COMMANDS,
    FIND_CARD,
    FINGERPRINT_LEN,
    PHOTO_LEN,
    READ_TEXT_PHOTO,
    RESET_SAM,
    SAM_ID,
    SELECT_CARD,
    SW3_FOUND,
    SW3_NO_CARD,
    SW3_OK,
    SW3_WORDS,
    TEXT_LEN,
    CardText,
    CardType,
    Frame,
    FrameParser,
    build_text,
    check_digit,
    encode_reply,
)
from sim.ptydevice import PtyDevice


def fake_number(first17: str) -> str:
    """A test number: 17 digits and the check digit computed for them."""
    return first17 + check_digit(first17)


# Obviously fake identities (测试 names; numbers valid only by their check digit).
RESIDENT_NUMBER = fake_number("35010219900101123")       # 3501**********1238
CARDS: dict[str, CardText] = {
    "resident": CardText(CardType.RESIDENT, name="测试甲", number=RESIDENT_NUMBER, sex="1",
                         nation="01", birth="19900101", address="福建省福州市鼓楼区测试路1号",
                         authority="福州市公安局鼓楼分局", valid_from="20200101",
                         valid_to="20400101"),
    "resident2": CardText(CardType.RESIDENT, name="测试乙丙", number=fake_number(
        "35010319851212456"), sex="2", nation="01", birth="19851212",
        address="福建省福州市台江区测试街2号", authority="福州市公安局台江分局",
        valid_from="20150101", valid_to="长期"),
    "hmt": CardText(CardType.HMT_PERMIT, name="测试港", number=fake_number("81000019850505002"),
                    sex="1", birth="19850505", address="福建省福州市晋安区测试路3号",
                    authority="福州市公安局", valid_from="20220101", valid_to="20270101",
                    extra={"pass_number": "H12345678", "issue_count": "01"}),
    "foreigner2017": CardText(CardType.FOREIGNER_2017, name="测试外", number="GBR350019800101",
                              name_en="TEST, ALPHA", sex="1", nationality="GBR",
                              birth="19800101", valid_from="20170601", valid_to="20270601",
                              authority="1500", extra={"version": "01"}),
    "foreigner2023": CardText(CardType.FOREIGNER_2023, name="测试新",
                              number=fake_number("93582619800101001"), name_en="TEST, BRAVO",
                              sex="2", nationality="GBR", birth="19800101",
                              valid_from="20231201", valid_to="20331201",
                              extra={"version": "02"}),
    "expired": CardText(CardType.RESIDENT, name="测试过期", number=fake_number(
        "35010219700101345"), sex="1", nation="01", birth="19700101",
        address="福建省福州市鼓楼区测试路9号", authority="福州市公安局鼓楼分局",
        valid_from="20000101", valid_to="20200101"),
}
# Same as "resident" with the last character changed: fails MOD 11-2.
_bad = "350102199001011230" if RESIDENT_NUMBER[-1] != "0" else "350102199001011231"
CARDS["bad_check"] = replace(CARDS["resident"], number=_bad)

SETTINGS_HELP: dict[str, str] = {
    "card": "NAME | none — put a card on the reader (" + ", ".join(CARDS) + ") or take it off",
    "fail": "COMMAND SW3 — answer COMMAND (find, select, read, reset, samid) with this SW3 "
            "hex code (e.g. `fail read 41`); `fail COMMAND off` ends it",
    "bad_chk": "N — corrupt the checksum of the next N replies",
    "bad_len": "N — give the next N replies a wrong LEN",
    "garbage": "hex — bytes sent before each reply",
    "delay_ms": "integer — slow SAM: wait this long before answering a read",
    "reply": "true/false — false: never answer (reader unplugged)",
    "edge": "true/false — the card lies at the edge of the field: every other find-card "
            "answers 80 (no card) although it is still there",
    "fingerprint": "true/false — a reader with a fingerprint module: a read answers "
                   "LEN 09 0A, 1024 bytes of fingerprint after the photo",
}
_CMD_NAMES = {"find": FIND_CARD, "select": SELECT_CARD, "read": READ_TEXT_PHOTO,
              "reset": RESET_SAM, "samid": SAM_ID}


@dataclass
class ReaderState:
    card: str | None = None
    fail: dict[tuple[int, int], int] | None = None
    bad_chk: int = 0
    bad_len: int = 0
    garbage: bytes = b""
    delay_ms: int = 0
    reply: bool = True
    edge: bool = False
    fingerprint: bool = False


class SimIdReader(PtyDevice):
    """A reader with one slot for a card, played on a pty in a background thread."""

    def __init__(self, *, traffic_log: Path | str | None = None,
                 state: ReaderState | None = None) -> None:
        self.state = state or ReaderState()
        self.cards: dict[str, CardText] = dict(CARDS)
        self.commands: list[tuple[int, int]] = []
        self.reads = 0
        self.finds = 0  # find-card commands answered, for the edge flicker
        self._no_card_at: list[float] = []  # the current run of "no card" answers
        self._lock = threading.Lock()
        self._parser = FrameParser()
        super().__init__(name="sim-idcard", traffic_log=traffic_log)
        self._start_reading()

    # -- control

    def put(self, card: str | CardText | None) -> None:
        """Place a card (a name of :data:`CARDS` or a CardText) or take it off (None)."""
        with self._lock:
            if isinstance(card, CardText):
                self.cards["custom"] = card
                card = "custom"
            if card is not None and card not in self.cards:
                raise ValueError(f"no card {card!r}; known: {', '.join(self.cards)}")
            self.state.card = card

    def fail(self, command: str, sw3: int | None) -> None:
        cmd = _CMD_NAMES[command]
        with self._lock:
            fails = dict(self.state.fail or {})
            if sw3 is None:
                fails.pop(cmd, None)
            else:
                fails[cmd] = sw3
            self.state.fail = fails

    def set(self, key: str, value: str) -> None:
        """Apply one setting of :data:`SETTINGS_HELP` from text (control socket)."""
        words = value.split()
        if key == "card":
            self.put(None if value in ("none", "off", "") else value)
        elif key == "fail":
            if len(words) != 2 or words[0] not in _CMD_NAMES:
                raise ValueError("say `fail COMMAND SW3`, COMMAND one of "
                                 + ", ".join(_CMD_NAMES))
            self.fail(words[0], None if words[1] == "off" else int(words[1], 16))
        elif key in ("bad_chk", "bad_len", "delay_ms"):
            setattr(self.state, key, int(value))
        elif key == "garbage":
            self.state.garbage = bytes.fromhex(value)
        elif key in ("reply", "edge", "fingerprint"):
            setattr(self.state, key, value.lower() in ("1", "true", "on", "yes"))
        else:
            raise ValueError(f"unknown setting {key!r}; known: {', '.join(SETTINGS_HELP)}")

    def no_card_run(self) -> tuple[int, float]:
        """The "no card" answers since a card was last found: how many, over how long
        (seconds). The host counts a card removed after two over its removal_ms."""
        with self._lock:
            run = list(self._no_card_at)
        return (len(run), run[-1] - run[0]) if run else (0, 0.0)

    def describe(self) -> dict[str, object]:
        st = self.state
        return {"port": self.port, "card": st.card,
                "fail": {COMMANDS[c]: f"{v:02X}" for c, v in (st.fail or {}).items()},
                "bad_chk": st.bad_chk, "bad_len": st.bad_len, "garbage": st.garbage.hex(),
                "delay_ms": st.delay_ms, "reply": st.reply, "edge": st.edge,
                "fingerprint": st.fingerprint, "reads": self.reads}

    # -- the device side of the protocol

    def answer(self, f: Frame) -> bytes | None:
        """The reply frame for one command, from the state."""
        cmd = f.cmd
        with self._lock:
            st = self.state
            self.commands.append(cmd)
            if not st.reply:
                return None
            forced = (st.fail or {}).get(cmd)
            if forced is not None:
                return self._frame(forced)
            card = self.cards.get(st.card) if st.card else None
            if cmd == RESET_SAM:
                return self._frame(SW3_OK)
            if cmd == SAM_ID:
                return self._frame(SW3_OK, bytes.fromhex("0501000000000000" "0123456789abcdef"))
            if cmd == FIND_CARD:
                self.finds += 1
                if card is None or (st.edge and self.finds % 2 == 0):
                    self._no_card_at.append(time.monotonic())
                    return self._frame(SW3_NO_CARD)
                self._no_card_at.clear()
                return self._frame(SW3_FOUND, b"\x00\x00\x00\x00")
            if cmd == SELECT_CARD:
                return self._frame(SW3_OK, bytes(8)) if card else self._frame(0x81)
            if cmd == READ_TEXT_PHOTO:
                if card is None:
                    return self._frame(0x41)
                delay = st.delay_ms
                fingerprint = st.fingerprint
            else:
                return self._frame(0x21)  # bad parameter: a command we do not know
        if delay:
            time.sleep(delay / 1000)
        self.reads += 1
        text = build_text(card)
        photo = b"WLT" + bytes(PHOTO_LEN - 3)  # stands in for the licensed WLT image
        lengths = TEXT_LEN.to_bytes(2, "big") + PHOTO_LEN.to_bytes(2, "big")
        tail = b""
        if fingerprint:
            lengths += FINGERPRINT_LEN.to_bytes(2, "big")
            tail = b"FP" + bytes(FINGERPRINT_LEN - 2)  # stands in for a fingerprint template
        with self._lock:
            return self._frame(SW3_OK, lengths + text + photo + tail)

    def _frame(self, sw3: int, data: bytes = b"") -> bytes:
        st = self.state
        out = bytearray(encode_reply(sw3, data))
        if st.bad_chk > 0:
            st.bad_chk -= 1
            out[-1] ^= 0xFF
        elif st.bad_len > 0:
            st.bad_len -= 1
            n = int.from_bytes(out[5:7], "big") - 1  # one short: CHK lands on a data byte
            out[5:7] = n.to_bytes(2, "big")
        return st.garbage + bytes(out)

    # -- line

    def on_bytes(self, data: bytes) -> None:
        for item in self._parser.feed(data):
            if not isinstance(item, Frame):
                # IDCARD.md: the reader answers a bad command frame with SW3 10
                reply: bytes | None = self._frame(0x10)
            else:
                reply = self.answer(item)
            if reply is not None:
                # A read reply is a card's text and photo: the log keeps only its head.
                self._send(reply, elide=len(reply) > 64)


SW3_HELP = "\n".join(f"  {k:02X}  {v[1]}" for k, v in SW3_WORDS.items())
