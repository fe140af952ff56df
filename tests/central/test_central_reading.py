"""hall-central reads what agents send liberally (MQTT.md, "Reading what the other side
sends"): odd but legal forms are used, garbage is a Rejected naming the field, and no
payload at all makes the reader raise."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from central.reading import (
    Event,
    NumberAsk,
    Rejected,
    read_event,
    read_number_request,
    read_request,
    read_state,
    staff_key,
    ticket_fields,
)

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda kids: st.lists(kids, max_size=4)
                    | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=12)
KEYS = st.sampled_from(["msg_id", "seq", "type", "offline", "ts", "data", "req_id",
                        "ticket_id", "service", "priority", "id_hash", "online", "boot",
                        "number", "issued_at", "window", "action", "staff"])
OBJECTS = st.dictionaries(KEYS | st.text(max_size=6), JSON, max_size=8)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200) | OBJECTS.map(lambda o: json.dumps(o).encode()))
def test_no_payload_makes_a_reader_raise(payload: bytes) -> None:
    for reader in (read_event, read_state, read_request):
        out: Any = reader(payload)
        assert out is None or isinstance(out, Rejected | Event | tuple) or hasattr(out, "online")


@settings(max_examples=300, deadline=None)
@given(OBJECTS)
def test_no_data_object_makes_the_field_readers_raise(obj: dict[str, Any]) -> None:
    for fn in (ticket_fields, staff_key, read_number_request):
        fn(obj)


def test_odd_but_legal_event_is_used() -> None:
    ev = read_event(json.dumps({"msg_id": 77, "seq": "12", "type": "Ticket.Issued",
                                "ts": 1764465123412, "offline": True, "future": {"x": [1]},
                                "data": {"ticket_id": "t", "number": "a7", "service": "a"}})
                    .encode())
    assert isinstance(ev, Event)
    assert (ev.msg_id, ev.seq, ev.type, ev.offline) == ("77", 12, "ticket.issued", True)
    assert ev.ts is not None and ev.ts.startswith("2025-11-30T01:12:03.412")
    f = ticket_fields(ev.data)
    assert not isinstance(f, Rejected) and (f["number"], f["service"]) == ("A7", "A")


def test_an_unusable_informational_field_is_dropped_not_fatal() -> None:
    ev = read_event(b'{"msg_id":"m","type":"door.opened","ts":"yesterday","seq":-4}')
    assert isinstance(ev, Event) and ev.ts is None and ev.seq is None
    assert any(d.startswith("ts:") for d in ev.dropped)


def test_an_event_without_msg_id_cannot_be_acknowledged_so_it_is_rejected() -> None:
    r = read_event(b'{"type":"door.opened","seq":1}')
    assert isinstance(r, Rejected) and r.field == "msg_id"
    r = read_event(b'{"msg_id":"m","type":42}')
    assert isinstance(r, Rejected) and r.field == "type"


def test_number_request_reading() -> None:
    head = read_request(b'{"req_id":5,"ticket_id":9,"service":"b","priority":"yes"}')
    assert not isinstance(head, Rejected)
    rtype, req_id, obj = head
    assert (rtype, req_id) == ("ticket.number", "5")
    ask = read_number_request(obj)
    assert isinstance(ask, NumberAsk)
    assert (ask.ticket_id, ask.service, ask.priority) == ("9", "B", False)
    assert ask.dropped and ask.dropped[0].startswith("priority")
    bad = read_number_request({"req_id": "r", "ticket_id": "t", "service": "toolong"})
    assert isinstance(bad, Rejected) and bad.field == "service"


def test_state_reading() -> None:
    assert read_state(b"") is None  # a cleared retained state
    s = read_state(b'{"online":false,"boot":"17"}')
    assert s is not None and not isinstance(s, Rejected) and (s.online, s.boot) == (False, 17)
    r = read_state(b'{"online":"yes"}')
    assert isinstance(r, Rejected) and r.field == "online"


def test_staff_key_reading() -> None:
    assert staff_key({"window": 5, "action": " Recall "}) == ("5", "recall", None)
    assert isinstance(staff_key({"action": "recall"}), Rejected)
