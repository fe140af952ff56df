"""The reading layer (hall_agent/link/reading.py): what MQTT.md says is *read* becomes the
strict model of what is *sent*; only a field needed to act rejects a message."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hall_agent.contract.mqtt import SCHEMA_DIR
from hall_agent.link.reading import KINDS, Read, Rejected, read

SCHEMA_OF = {"central_state": "central-state", "call": "central-call", "reply": "central-reply",
             "ack": "central-ack", "lease": "central-lease", "queue": "central-queue",
             "satisfaction": "central-satisfaction", "cmd": "central-cmd"}

# What a central sends, as MQTT.md shows it.
SENT: dict[str, dict[str, Any]] = {
    "central_state": {"online": True, "ts": "2026-11-30T09:12:03.412+08:00"},
    "call": {"call_id": "c1", "ticket": "A023", "window": "5", "service": "A", "kind": "call",
             "ts": "2026-11-30T09:12:03.412+08:00"},
    "reply": {"req_id": "r1", "ok": True, "number": "A023", "waiting_ahead": 12,
              "est_wait_s": 540},
    "ack": {"acks": ["m1", "m2"]},
    "lease": {"day": "2026-11-30", "blocks": [{"service": "A", "from": 900, "to": 949}]},
    "queue": {"ts": "2026-11-30T09:12:03.412+08:00",
              "services": {"A": {"waiting": 12, "est_wait_s": 540}},
              "windows": {"5": {"open": True, "serving": "A023"}}},
    "satisfaction": {"day": "2026-11-30", "windows": {"5": {
        "very_satisfied": 40, "satisfied": 12, "basic": 1, "unsatisfied": 0,
        "very_unsatisfied": 0, "none": 3}}},
    "cmd": {"cmd_id": "k1", "name": "reprint", "args": {"ticket_id": "t"}},
}
NEEDED = {"central_state": ["online"], "call": ["call_id", "ticket", "window"],
          "reply": ["req_id", "ok", "number"], "ack": ["acks"], "lease": ["day", "blocks"],
          "cmd": ["cmd_id", "name"], "satisfaction": ["day"]}


def raw(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def ok(kind: str, obj: Any) -> Read[Any]:
    r = read(kind, raw(obj))
    assert isinstance(r, Read), f"{kind} {obj!r} rejected: {r}"
    return r


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(KINDS), value=json_values)
def test_any_json_is_read_or_rejected_and_what_is_read_is_what_the_schema_allows(
        kind: str, value: Any) -> None:
    r = read(kind, raw(value))
    assert isinstance(r, Read | Rejected)
    if isinstance(r, Read):
        schema = json.loads((SCHEMA_DIR / f"{SCHEMA_OF[kind]}.schema.json").read_text())
        jsonschema.validate(r.msg.model_dump(mode="json", by_alias=True), schema)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(KINDS), field=st.integers(min_value=0, max_value=7),
       value=json_values)
def test_any_value_in_any_field_is_read_or_rejected_and_read_as_the_schema_allows(
        kind: str, field: int, value: Any) -> None:
    keys = list(SENT[kind])
    obj = {**SENT[kind], keys[field % len(keys)]: value}
    r = read(kind, raw(obj))
    assert isinstance(r, Read | Rejected)
    if isinstance(r, Read):
        schema = json.loads((SCHEMA_DIR / f"{SCHEMA_OF[kind]}.schema.json").read_text())
        jsonschema.validate(r.msg.model_dump(mode="json", by_alias=True), schema)


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(KINDS), value=json_values)
def test_a_needed_field_made_unusable_rejects_naming_that_field(kind: str, value: Any) -> None:
    for key in NEEDED.get(kind, []):
        obj = {**SENT[kind], key: {"not": value}}
        r = read(kind, raw(obj))
        assert isinstance(r, Rejected) and r.field == key, (key, r)


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(KINDS), extra=st.dictionaries(
    st.text(min_size=1, max_size=8).filter(lambda k: k not in {
        "online", "ts", "call_id", "ticket", "window", "service", "kind", "req_id", "ok",
        "number", "waiting_ahead", "est_wait_s", "error", "error_code", "appointment",
        "slots", "acks", "day", "blocks", "services", "windows", "cmd_id", "name", "args",
        "waiting", "open", "serving", "from", "to", *SENT["satisfaction"]["windows"]["5"]}),
    json_values, max_size=3))
def test_unknown_keys_at_any_depth_change_nothing(kind: str, extra: dict[str, Any]) -> None:
    def widen(v: Any, keyed_by_id: bool = False) -> Any:
        # Objects get the extra keys; maps keyed by service or window id keep their keys.
        if isinstance(v, dict):
            inner = {k: widen(x, k in ("services", "windows")) for k, x in v.items()}
            return inner if keyed_by_id else {**inner, **extra}
        if isinstance(v, list):
            return [widen(x) for x in v]
        return v

    sent = ok(kind, SENT[kind])
    # A command's args belong to the command: only its top level is widened.
    widened = {**SENT[kind], **extra} if kind == "cmd" else widen(SENT[kind])
    assert ok(kind, widened).msg == sent.msg and sent.dropped == ()


@settings(max_examples=200, deadline=None)
@given(seconds=st.integers(min_value=0, max_value=4_000_000_000),
       ms=st.integers(min_value=0, max_value=999))
def test_ts_is_read_from_epoch_seconds_or_milliseconds(seconds: int, ms: int) -> None:
    from_s = ok("central_state", {"online": True, "ts": seconds + ms / 1000}).msg.ts
    if seconds >= 10**8 + 1:  # above 10^11 as milliseconds: the same instant
        from_ms = ok("central_state", {"online": True, "ts": seconds * 1000 + ms}).msg.ts
        assert abs(datetime.fromisoformat(from_s) - datetime.fromisoformat(from_ms)
                   ).total_seconds() <= 0.001
    assert datetime.fromisoformat(from_s).timestamp() == pytest.approx(seconds + ms / 1000,
                                                                      abs=0.001)


@pytest.mark.parametrize("ts", ["yesterday", "2026-11-30T09:12:03", True, -5, [1], {}])
def test_an_unusable_ts_is_dropped_with_its_name_and_the_state_used(ts: Any) -> None:
    r = ok("central_state", {"online": True, "ts": ts})
    assert r.msg.online is True and r.msg.ts is None
    assert len(r.dropped) == 1 and r.dropped[0].startswith("ts: ")


@settings(max_examples=200, deadline=None)
@given(n=st.floats(min_value=0, max_value=1e7, allow_nan=False),
       as_string=st.booleans())
def test_counts_are_read_from_any_non_negative_number_rounded(n: float, as_string: bool) -> None:
    value: Any = repr(n) if as_string and "e" not in repr(n) else n
    r = ok("reply", {**SENT["reply"], "est_wait_s": value, "waiting_ahead": value})
    assert r.msg.est_wait_s == r.msg.waiting_ahead == round(n) and r.dropped == ()


@given(n=st.floats(max_value=-0.001, allow_infinity=False) | st.sampled_from(["soon", "-3"])
       | st.booleans())
def test_an_unusable_count_is_dropped_and_the_number_kept(n: Any) -> None:
    r = ok("reply", {**SENT["reply"], "est_wait_s": n})
    assert r.msg.number == "A023" and r.msg.est_wait_s is None
    assert [d.split(":")[0] for d in r.dropped] == ["est_wait_s"]


@given(call_id=st.integers(-10**18, 10**18), req_id=st.integers(0, 10**18),
       cmd_id=st.integers(-10**18, 10**18))
def test_identifiers_sent_as_numbers_are_read_as_decimal_strings(
        call_id: int, req_id: int, cmd_id: int) -> None:
    assert ok("call", {**SENT["call"], "call_id": call_id}).msg.call_id == str(call_id)
    assert ok("reply", {**SENT["reply"], "req_id": req_id}).msg.req_id == str(req_id)
    assert ok("cmd", {**SENT["cmd"], "cmd_id": cmd_id}).msg.cmd_id == str(cmd_id)
    assert ok("ack", {"acks": [req_id]}).msg.acks == [str(req_id)]


@given(kind=st.sampled_from(["call", "recall"]).flatmap(
    lambda k: st.tuples(*(st.sampled_from([c.lower(), c.upper()]) for c in k))))
def test_kind_is_compared_case_blind(kind: tuple[str, ...]) -> None:
    sent = "".join(kind)
    assert ok("call", {**SENT["call"], "kind": sent}).msg.kind == sent.lower()


@pytest.mark.parametrize(("ticket", "window", "read_as"), [
    ("A23", "12-1", ("A23", "12-1")), ("a7", "5号", ("A7", "5号")), ("AB1234", 5, ("AB1234", "5")),
    ("A023", "窗口12345", ("A023", "窗口12345")), ("b023", 12.0, ("B023", "12"))])
def test_tickets_and_windows_as_the_page_allows(ticket: str, window: Any,
                                               read_as: tuple[str, str]) -> None:
    m = ok("call", {**SENT["call"], "ticket": ticket, "window": window}).msg
    assert (m.ticket, m.window) == read_as


@pytest.mark.parametrize(("field", "value"), [
    ("ticket", "023"), ("ticket", "ABC1"), ("ticket", "A12345"), ("ticket", 23),
    ("window", ""), ("window", "123456789"), ("window", "1\n2"), ("window", "5\x00"),
    ("window", True), ("call_id", ""), ("call_id", None)])
def test_a_call_without_a_usable_ticket_window_or_id_is_rejected(field: str, value: Any) -> None:
    r = read("call", raw({**SENT["call"], field: value}))
    assert isinstance(r, Rejected) and r.field == field


def test_an_unknown_kind_is_dropped_and_the_call_made() -> None:
    r = ok("call", {**SENT["call"], "kind": "announce", "service": ["A"]})
    assert r.msg.kind == "call" and r.msg.service is None
    assert sorted(d.split(":")[0] for d in r.dropped) == ["kind", "service"]


def test_a_fractional_estimate_keeps_the_centrals_number() -> None:
    r = ok("reply", {"req_id": "r", "ok": True, "number": "a7", "est_wait_s": 537.5})
    assert (r.msg.number, r.msg.est_wait_s) == ("A7", 538)


def test_a_refusal_and_an_appointment_reply_need_no_number() -> None:
    assert ok("reply", {"req_id": "r", "ok": False, "error": "service closed"}).msg.ok is False
    r = ok("reply", {"req_id": "r", "ok": True,
                     "slots": [{"start": "09:00", "end": "09:30", "free": "3"}, {"start": 9}]})
    assert [s.free for s in r.msg.slots or []] == [3] and len(r.dropped) == 1


def test_unknown_satisfaction_figures_are_ignored_and_a_bad_one_dropped() -> None:
    r = ok("satisfaction", {"day": "2026-11-30", "windows": {
        "5": {"very_satisfied": 40, "total": 56, "basic": 1.0, "none": "x"}, "6": []}})
    assert r.msg.windows == {"5": {"very_satisfied": 40, "basic": 1}}
    assert sorted(d.split(":")[0] for d in r.dropped) == ["windows.5.none", "windows.6"]


def test_an_unusable_lease_block_is_left_out_never_rounded() -> None:
    r = ok("lease", {"day": "2026-11-30", "blocks": [
        {"service": "A", "from": 900, "to": 949, "label": "morning"},
        {"service": "B", "from": 900.5, "to": 949}, {"service": "c", "from": "100", "to": 199}]})
    assert [(b.service, b.from_, b.to) for b in r.msg.blocks] == [("A", 900, 949),
                                                                  ("C", 100, 199)]
    assert [d.split(":")[0] for d in r.dropped] == ["blocks.1.from"]


@pytest.mark.parametrize(("cmd", "field", "why"), [
    ({"cmd_id": "k", "name": "restart"}, "name", "unknown command restart"),
    ({"cmd_id": 9, "name": "reprint", "args": "t1"}, "args", "not an object ('t1')"),
    ({"cmd_id": "k"}, "name", "missing")])
def test_a_command_that_cannot_run_is_rejected_with_its_id_to_answer(
        cmd: dict[str, Any], field: str, why: str) -> None:
    r = read("cmd", raw(cmd))
    assert isinstance(r, Rejected) and (r.field, r.why) == (field, why)
    assert r.cmd_id == str(cmd["cmd_id"])


def test_a_command_with_null_args_runs_with_none() -> None:
    assert ok("cmd", {"cmd_id": "k", "name": "sync", "args": None}).msg.args == {}
    assert ok("cmd", {"cmd_id": "k", "name": "sync"}).msg.args == {}


@pytest.mark.parametrize("payload", [b"", b"not json", b"\xff\xfe", b"[]", b"NaN", b"5"])
def test_what_is_not_a_json_object_is_rejected_as_payload(payload: bytes) -> None:
    for kind in KINDS:
        r = read(kind, payload)
        assert isinstance(r, Rejected) and r.field == "payload" and r.cmd_id is None
