"""The published JSON Schemas match the models, accept MQTT.md's examples, and the models
reject anything malformed with a ValidationError — never another exception."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hall_agent.contract.mqtt import SCHEMA_DIR, SCHEMAS, schema_json
from hall_agent.contract.topics import HallTopics, Topics, parse_agent_topic

# The examples of docs/protocols/MQTT.md, one per message kind.
EXAMPLES: dict[str, Any] = {
    "agent-state": {"online": True, "boot": 17, "ts": "2026-11-30T09:00:00+08:00",
                    "version": "0.1.0", "mode": "central"},
    "agent-device": {"status": "degraded", "detail": "paper near end",
                     "ts": "2026-11-30T09:00:00+08:00"},
    "agent-event": {"v": 1, "msg_id": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "seq": 1234,
                    "boot": 17, "ts": "2026-11-30T09:12:03.412+08:00", "hall": "fz-citizen",
                    "agent": "kiosk-01", "type": "ticket.issued", "offline": False,
                    "data": {"ticket_id": "t", "number": "A023", "service": "A",
                             "channel": "kiosk", "priority": False}},
    "agent-request": {"req_id": "r", "type": "ticket.number", "ticket_id": "t",
                      "service": "A", "priority": False, "ts": "2026-11-30T09:00:00+08:00"},
    "agent-request-checkin": {"req_id": "r", "type": "appointment.checkin",
                              "code": "K7M2Q9XW4P", "ts": "2026-11-30T09:00:00+08:00"},
    "agent-request-slots": {"req_id": "r", "type": "appointment.slots", "service": "A",
                            "day": "2026-12-01", "ts": "2026-11-30T21:00:00+08:00"},
    "agent-request-book": {"req_id": "r", "type": "appointment.book",
                           "appointment_id": "a", "service": "A", "day": "2026-12-01",
                           "start": "09:00", "id_hash": "ab" * 32, "masked_name": "测*",
                           "ts": "2026-11-30T21:00:00+08:00"},
    "agent-cmd_result": {"cmd_id": "c", "ok": True, "detail": "reprinted"},
    "central-reply": {"req_id": "r", "ok": True, "number": "A023", "waiting_ahead": 12,
                      "est_wait_s": 540},
    "central-ack": {"acks": ["0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"]},
    "central-lease": {"day": "2026-11-30", "blocks": [{"service": "A", "from": 900,
                                                       "to": 949}]},
    "central-cmd": {"cmd_id": "c", "name": "reprint", "args": {"ticket_id": "t"}},
    "central-state": {"online": True, "ts": "2026-11-30T09:00:00+08:00"},
    "central-call": {"call_id": "x", "ticket": "A023", "window": "5", "service": "A",
                     "kind": "call", "ts": "2026-11-30T09:00:00+08:00"},
    "central-queue": {"ts": "2026-11-30T09:00:00+08:00",
                      "services": {"A": {"waiting": 12, "est_wait_s": 540}},
                      "windows": {"5": {"open": True, "serving": "A023"}}},
    "central-satisfaction": {"day": "2026-11-30", "windows": {"5": {
        "very_satisfied": 40, "satisfied": 12, "basic": 1, "unsatisfied": 0,
        "very_unsatisfied": 0, "none": 3}}},
}


def schema(name: str) -> dict[str, Any]:
    return dict(json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8")))


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_published_schema_is_generated_from_the_model(name: str) -> None:
    on_disk = (SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8")
    assert on_disk == schema_json(SCHEMAS[name]), \
        "schemas are stale: run python -m hall_agent.contract.mqtt --write"


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_contract_example_passes_schema_and_model(name: str) -> None:
    jsonschema.validate(EXAMPLES[name], schema(name))
    SCHEMAS[name].model_validate(EXAMPLES[name])


def test_unknown_fields_are_ignored_missing_ones_reject() -> None:
    model = SCHEMAS["central-call"]
    model.model_validate({**EXAMPLES["central-call"], "new_in_v2": 1})
    with pytest.raises(ValidationError):
        model.model_validate({"call_id": "x", "window": "5"})
    with pytest.raises(ValidationError):
        model.model_validate({**EXAMPLES["central-call"], "ticket": "A 023"})


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=20),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
                        st.text(max_size=10), kids, max_size=6), max_leaves=20)


@settings(max_examples=300, deadline=None, database=None)
@given(name=st.sampled_from(sorted(SCHEMAS)), payload=JSON)
def test_any_json_is_accepted_or_rejected_cleanly(name: str, payload: Any) -> None:
    raw = json.dumps(payload).encode()
    with contextlib.suppress(ValidationError):
        SCHEMAS[name].model_validate_json(raw)


@settings(max_examples=200, deadline=None, database=None)
@given(name=st.sampled_from(sorted(SCHEMAS)), payload=st.binary(max_size=200))
def test_any_bytes_are_accepted_or_rejected_cleanly(name: str, payload: bytes) -> None:
    with contextlib.suppress(ValidationError):
        SCHEMAS[name].model_validate_json(payload)


def test_topics_are_built_and_parsed_in_one_place() -> None:
    t = Topics("fz-citizen", "kiosk-01")
    assert t.event == "qms/v1/fz-citizen/agent/kiosk-01/event"
    assert t.central_call == "qms/v1/fz-citizen/central/call"
    assert parse_agent_topic(t.device("printer")) == ("fz-citizen", "kiosk-01",
                                                      "device/printer")
    assert parse_agent_topic("qms/v1/fz-citizen/central/call") is None
    assert parse_agent_topic("other/v1/fz-citizen/agent/kiosk-01/event") is None


def test_a_central_reaches_every_agent_of_its_hall() -> None:
    hall = HallTopics("fz-citizen")
    assert hall.of_agent("kiosk-02") == Topics("fz-citizen", "kiosk-02")
    assert hall.of_agent("kiosk-02").reply == "qms/v1/fz-citizen/agent/kiosk-02/reply"
    assert hall.every_agent("request") == "qms/v1/fz-citizen/agent/+/request"
    assert hall.central_state == Topics("fz-citizen", "x").central_state
    parsed = parse_agent_topic(hall.of_agent("kiosk-02").cmd_result)
    assert parsed is not None and parsed.agent == "kiosk-02" and parsed.rest == "cmd_result"
