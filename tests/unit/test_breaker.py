"""Per-request-type judgement of the central (hall_agent/link/breaker.py; MQTT.md,
Requests and their extensions), on a clock the test turns."""

from __future__ import annotations

from hall_agent.link.breaker import (
    ASK_AGAIN_AFTER_S,
    ASK_UNSUPPORTED_AGAIN_AFTER_S,
    UNANSWERED_LIMIT,
    Breakers,
)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_unanswered_requests_of_one_type_pause_only_that_type() -> None:
    clock = Clock()
    b = Breakers(clock)
    slots, numbers = b.of("appointment.slots"), b.of("ticket.number")
    for _ in range(UNANSWERED_LIMIT):
        assert slots.may_ask(0.8)
        slots.timed_out()
    assert not slots.answering and not slots.may_ask(0.8) and slots.not_asked == 1
    assert numbers.answering and numbers.may_ask(0.8)


def test_after_the_pause_one_probe_goes_out_and_an_answer_resumes() -> None:
    clock = Clock()
    n = Breakers(clock).of("ticket.number")
    for _ in range(UNANSWERED_LIMIT):
        n.timed_out()
    clock.t += ASK_AGAIN_AFTER_S
    assert n.may_ask(0.8)  # the probe
    assert not n.may_ask(0.8)  # racing it: not sent until the probe is answered
    n.answered(None)
    assert n.answering and n.unanswered == 0 and n.may_ask(0.8)


def test_an_ack_brings_the_probe_forward_once_per_outage() -> None:
    clock = Clock()
    b = Breakers(clock)
    n = b.of("ticket.number")
    for _ in range(UNANSWERED_LIMIT):
        n.timed_out()
    b.acked()
    assert n.may_ask(0.8)
    n.timed_out()
    b.acked()  # the second ack of the outage does not
    assert not n.may_ask(0.8)


def test_unsupported_pauses_an_extension_longer_but_not_numbering() -> None:
    clock = Clock()
    b = Breakers(clock)
    book = b.of("appointment.book")
    book.answered("unsupported")
    assert book.unsupported and not book.may_ask(0.8)
    b.acked()  # acks say nothing about a type the central does not know
    assert not book.may_ask(0.8)
    clock.t += ASK_UNSUPPORTED_AGAIN_AFTER_S
    assert book.may_ask(0.8)
    numbers = b.of("ticket.number")
    numbers.answered("unsupported")  # every central answers numbers: just an answer
    assert numbers.answering


def test_a_central_online_anew_is_asked_everything_again() -> None:
    b = Breakers(Clock())
    b.of("appointment.slots").answered("unsupported")
    for _ in range(UNANSWERED_LIMIT):
        b.of("ticket.number").timed_out()
    b.reset()
    assert all(x.answering and x.may_ask(0.8) for x in b.all())
