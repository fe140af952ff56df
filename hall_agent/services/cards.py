"""The ID-card reader service: polling, "read once until removed", and privacy.

- Polls find-card every ``[id_reader] poll_ms`` (1 s), every ``fast_poll_ms``
  (300 ms) while a flow waits for a card (:meth:`CardService.want`) — IDCARD.md.
- A card left on the reader is read once, and not again until it was lifted:
  two find-card answers "no card" at least ``[id_reader] removal_ms`` (600 ms)
  apart, with no "card found" between. One "no card" is not enough: a card at the
  edge of the field flickers in and out, and reading it twice opens a door twice
  or checks a citizen in twice.
- A read becomes a :class:`~hall_agent.core.personal.Person` at once: the hash, the
  masked forms, and (for the flow only, in memory) the clear name and number. The
  photo is dropped in the driver. The SSE ``card`` event carries a short-lived
  ``token`` and the masked forms + hash, nothing else; a flow that needs the
  person (a real-name ticket, a check-in, a self-service query) passes the token
  back and the agent looks the person up here. Tokens expire after
  :data:`TOKEN_TTL_S` and are forgotten when the flow uses them up.
- Card handlers (the 24-hour door) see each read first and add to the event.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from drivers.backoff import Backoff
from drivers.idcard import CardDataError, CardText
from drivers.idcard_config import IdReaderConfig
from drivers.idcard_reader import CardReaderError, IdCardReader
from drivers.types import DeviceHealth, Health
from hall_agent.contract.config import Config
from hall_agent.core.personal import Person, person
from hall_agent.core.refusal import Refused, Why
from hall_agent.services.ports import Events, HealthSink

log = logging.getLogger("hall_agent.services.cards")


@dataclass(frozen=True)
class CardNeeds:
    """What this service is given (hall_agent/services/ports.py), not the agent."""

    bus: Events
    cfg: Config
    health: HealthSink

TOKEN_TTL_S = 120.0  # a flow that read a card has this long to use it
DEVICE = "id_reader"

CardHandler = Callable[[Person], dict[str, Any]]

# What a citizen is told when a card cannot be used (zh, en).
_MISREAD = ("证件读取有误，请取下后重新放置", "The card was misread: lift it and place it again")
_CARD_ERRORS: dict[str, tuple[str, str]] = {
    "bad_check_digit": _MISREAD, "bad_number": _MISREAD, "bad_date": _MISREAD,
    "length": _MISREAD, "bad_nation": _MISREAD,
    "unknown_type": ("无法识别该证件，请使用身份证或居住证", "This card type is not supported"),
    "read_failed": ("读卡失败，请取下后重新放置", "Could not read the card: lift it and place "
                                           "it again"),
}


@dataclass
class _Held:
    person: Person
    until: float


class CardService:
    def __init__(self, needs: CardNeeds, cfg: IdReaderConfig, secret: bytes, *,
                 reader: IdCardReader | None = None,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.n = needs
        self.cfg = cfg
        self._secret = secret
        self.reader = reader or IdCardReader(cfg.port, cfg.baudrate,
                                             timeout_s=cfg.timeout_ms / 1000)
        self.clock = clock
        self.monotonic = monotonic  # the removal debounce; injectable for tests
        self.handlers: list[CardHandler] = []
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        self._want_until = 0.0
        self._read_this_card = False  # the card on the reader was read: not again
        self._gone_since: float | None = None  # first "no card" of the current run
        self._gone_count = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.reads = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="id-reader", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
        self.reader.close()
        with self._lock:
            self._held.clear()

    def want(self, seconds: float = 60.0) -> None:
        """A flow waits for a card: poll fast for ``seconds``."""
        self._want_until = max(self._want_until, time.monotonic() + seconds)
        # A card already lying there was read for an earlier flow: read it for this one.
        self._read_this_card = False
        self._wake.set()

    # ------------------------------------------------------------------ tokens

    def take(self, token: str, *, keep: bool = False) -> Person:
        """The person behind a card token; used up unless ``keep``."""
        now = self.clock()
        with self._lock:
            for k in [k for k, h in self._held.items() if h.until < now]:
                del self._held[k]
            held = self._held.get(token) if keep else self._held.pop(token, None)
        if held is None:
            raise Refused("请重新放置身份证（读卡信息已过期）", code="card_expired",
                             field="card", why=Why.CONFLICT,
                             en="Please place your ID card again (the reading has expired)")
        return held.person

    def forget(self, token: str) -> None:
        with self._lock:
            self._held.pop(token, None)

    # ------------------------------------------------------------------ reading

    def accept(self, card: CardText, today: date | None = None) -> dict[str, Any]:
        """A card was read: make the person, run the handlers, publish ``card``."""
        day = today or datetime.fromtimestamp(self.clock(), self.n.cfg.hall.tz).date()
        p = person(self._secret, id_number=card.number, name=card.name or card.name_en,
                   card_type=card.card_type.value, expired=not card.valid_on(day),
                   valid_to=str(card.valid_to))
        del card  # the clear text lives on only inside the Person, for this flow
        token = secrets.token_urlsafe(12)
        with self._lock:
            self._held[token] = _Held(p, self.clock() + TOKEN_TTL_S)
        event: dict[str, Any] = {"ok": True, "token": token, **p.public()}
        for fn in list(self.handlers):
            try:
                event.update(fn(p))
            except Exception:  # a handler bug must not stop the card being shown
                log.exception("card handler %r failed", fn)
        self.reads += 1
        log.info("card read: %s %s%s", p.card_type, p.masked_id,
                 " (expired)" if p.expired else "")
        self.n.bus.publish("card", event)
        return event

    def refuse(self, code: str, detail: str) -> dict[str, Any]:
        zh, en = _CARD_ERRORS.get(code, _CARD_ERRORS["read_failed"])
        log.warning("card not usable: %s (%s)", detail, code)
        event = {"ok": False, "error": code, "message": zh, "message_en": en}
        self.n.bus.publish("card", event)
        return event

    @property
    def holding_a_card(self) -> bool:
        """A card was read and has not been removed yet (it will not be read again)."""
        return self._read_this_card

    def _no_card(self) -> None:
        """A find-card said "no card": the card is removed once that is sure."""
        now = self.monotonic()
        if self._gone_since is None:
            self._gone_since, self._gone_count = now, 0
        self._gone_count += 1
        if (self._gone_count >= 2
                and now - self._gone_since >= self.cfg.removal_ms / 1000):
            self._read_this_card = False

    def poll_once(self) -> bool:
        """One find-card (and a read if a new card lies there); True if a card is on."""
        present = self.reader.find()
        if not present:
            self._no_card()
            return False
        self._gone_since = None
        if self._read_this_card:
            return True
        try:
            card = self.reader.read_card()
        except CardDataError as e:
            self._read_this_card = True  # a bad card stays bad until it is lifted
            self.refuse(e.code, str(e))
            return True
        except CardReaderError as e:
            if e.sw3 is None:
                raise  # the reader itself is in trouble: a health matter
            self._read_this_card = True
            self.refuse("read_failed", str(e))
            return True
        self._read_this_card = True
        self.accept(card)
        return True

    def _loop(self) -> None:
        back = Backoff(1.0, ceiling=30.0)
        while not self._stop.is_set():
            try:
                self.poll_once()
            except CardReaderError as e:
                back.failed()
                self.n.health.set_health(DEVICE, DeviceHealth(Health.FAULT, str(e)))
                self.reader.close()  # reopened at the next poll
            except Exception:
                back.failed()
                log.exception("ID-card reader poll failed")
            else:
                back.reset()
                self.n.health.set_health(DEVICE, DeviceHealth(Health.OK, self.reader.where))
            fast = time.monotonic() < self._want_until
            wait = (self.cfg.fast_poll_ms if fast else self.cfg.poll_ms) / 1000
            if back.failures:  # unplugged: looked for again soon; else backing off
                wait = max(wait, back.for_port(self.cfg.port))
            self._wake.wait(wait)
            self._wake.clear()
