"""``hallctl card read``: check the ID-card reader with a card, through the agent or
straight on the port while the agent is stopped.

Only masked forms are ever printed (``3501**********123X``, ``张*``): a technician
checks that the reader works, not who the citizen is.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import httpx

from hall_agent.contract.api import CardWantIn
from hall_agent.contract.client import AgentRefused, AgentUnavailable
from hall_agent.core.personal import mask_id, mask_name
from hallctl.common import EXIT_DEVICE, EXIT_OK, EXIT_REFUSED, Ctl


def _show(ctl: Ctl, body: dict[str, Any]) -> int:
    if not body.get("ok"):
        said = body.get("message_en") if ctl.lang == "en" else None
        return ctl.fail(EXIT_DEVICE, str(body.get("error", "card_unusable")),
                        str(said or body.get("message") or body.get("detail")
                            or "card not usable"))
    valid_to = str(body.get("valid_to") or "")
    if len(valid_to) == 8 and valid_to.isdigit():
        valid_to = f"{valid_to[:4]}-{valid_to[4:6]}-{valid_to[6:]}"
    ctl.out(body, lambda: print(
        f"card read: {body.get('card_type')}  {body.get('masked_id')}  "
        f"{body.get('masked_name')}  valid to {valid_to or '?'}"
        + ("  (EXPIRED)" if body.get("expired") else "")))
    return EXIT_DEVICE if body.get("expired") else EXIT_OK


def _direct(ctl: Ctl, a: argparse.Namespace) -> int:
    from drivers.idcard import CardDataError
    from drivers.idcard_reader import CardReaderError, IdCardReader

    reader = IdCardReader(a.port, a.baudrate)
    try:
        sam = reader.sam_id()
        if not ctl.as_json:
            print(f"reader on {a.port}: SAM {sam}; put a card on it "
                  f"(waiting {a.timeout:.0f} s)…")
        deadline = time.monotonic() + a.timeout
        while not reader.find():
            if time.monotonic() > deadline:
                return ctl.fail(EXIT_REFUSED, "no_card",
                                f"no card was put on the reader within {a.timeout:.0f} s")
            time.sleep(0.3)
        card = reader.read_card()
        body = {"ok": True, "port": a.port, "sam": sam, "card_type": card.card_type.value,
                "masked_id": mask_id(card.number),
                "masked_name": mask_name(card.name or card.name_en),
                "valid_to": card.valid_to, "expired": not card.valid_on(date.today())}
        del card
        return _show(ctl, body)
    except CardDataError as e:
        return ctl.fail(EXIT_DEVICE, e.code, f"the card was read but cannot be used: {e}")
    except CardReaderError as e:
        return ctl.fail(EXIT_DEVICE, "reader_error", str(e))
    finally:
        reader.close()


def _through_agent(ctl: Ctl, a: argparse.Namespace) -> int:
    health = ctl.agent.health()
    readers = [n for n in health.devices if n.startswith("id")]
    if not readers:
        return ctl.fail(EXIT_REFUSED, "no_reader", "this agent has no ID-card reader "
                        "configured ([id_reader] in the config)")
    def want() -> None:
        # Once the stream is open, so the read of a card already lying there (the agent
        # reads it again for this flow) is not missed. model_construct: the agent judges
        # the value (its 422 names the field).
        ctl.agent.want_card(CardWantIn.model_construct(seconds=a.timeout))
        if not ctl.as_json:
            print(f"put a card on the reader (waiting {a.timeout:.0f} s)…", flush=True)

    deadline = time.monotonic() + a.timeout
    try:
        for kind, event in ctl.agent.events(read_timeout_s=a.timeout + 5, on_open=want,
                                            stop=lambda: time.monotonic() > deadline):
            if kind == "card":
                event.pop("token", None)  # the flow's key; of no use to a technician
                event.pop("id_hash", None)
                return _show(ctl, event)
    except AgentRefused as e:
        return ctl.refused(e)
    except AgentUnavailable as e:
        if not isinstance(e.__cause__, httpx.ReadTimeout):
            raise
    return ctl.fail(EXIT_REFUSED, "no_card",
                    f"no card was put on the reader within {a.timeout:.0f} s")


def cmd_card(ctl: Ctl, a: argparse.Namespace) -> int:
    if not a.port:
        return _through_agent(ctl, a)
    refused = ctl.refuse_beside_agent("the reader", a.force)
    return _direct(ctl, a) if refused is None else refused


def add_parsers(sub: Any) -> None:
    c = sub.add_parser("card", help="read a card on the ID-card reader (masked output)")
    c.add_argument("action", choices=["read"])
    c.add_argument("--port", help="the reader's port, when the agent is stopped")
    c.add_argument("--baudrate", type=int, default=115200)
    c.add_argument("--timeout", type=float, default=20.0,
                   help="how long to wait for a card, in seconds")
    c.add_argument("--force", action="store_true",
                   help="with --port: even if the agent is running")


COMMANDS: dict[str, Callable[[Ctl, argparse.Namespace], int]] = {"card": cmd_card}
