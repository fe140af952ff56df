"""The outbox (MQTT.md): events leave in seq order, are sent again until acknowledged,
and are forgotten only a week after the central acknowledged them."""

from __future__ import annotations

from pathlib import Path

import pytest

from hall_agent.core.outbox import ACKED_KEPT_S, Outbox, uuid7
from hall_agent.core.store import Store

TS = "2026-11-30T09:12:03.412+08:00"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path)


def add(store: Store, n: int, **data: object) -> list[int]:
    with store.tx() as db:
        return [store.outbox.add(db, "ticket.issued", {"i": i, **data}, ts_iso=TS)
                for i in range(n)]


def test_an_event_is_stored_with_a_time_ordered_msg_id_and_its_data(store: Store) -> None:
    with store.tx() as db:
        seq = store.outbox.add(db, "door.opened", {"door": "厅门"}, ts_iso=TS, offline=True)
    [e] = store.outbox.pending(10).events
    assert (e.seq, e.type, e.ts, e.offline, e.data) == (seq, "door.opened", TS, True,
                                                         {"door": "厅门"})
    assert e.sent_at is None and e.acked_at is None
    assert e.msg_id[14] == "7" and uuid7()[14] == "7"  # RFC 9562 version 7


def test_listeners_hear_once_per_commit_and_not_of_a_rollback(store: Store) -> None:
    heard: list[int] = []
    store.on_events.append(lambda: heard.append(1))
    add(store, 3)
    assert heard == [1]
    with pytest.raises(RuntimeError), store.tx() as db:
        store.outbox.add(db, "ticket.issued", {}, ts_iso=TS)
        raise RuntimeError("undone")
    assert heard == [1] and store.outbox.pending_count() == 3


def test_due_events_leave_in_seq_order_and_a_sent_one_waits_to_be_resent(store: Store) -> None:
    seqs = add(store, 3)
    assert [e.seq for e in store.outbox.due(resend_before=100.0, limit=2)] == seqs[:2]
    store.outbox.mark_sent(seqs[:2], at=200.0)
    assert [e.seq for e in store.outbox.due(resend_before=150.0, limit=10)] == seqs[2:]
    # Unacknowledged 30 s after it was sent: due again (same msg_id).
    assert [e.seq for e in store.outbox.due(resend_before=230.0, limit=10)] == seqs


def test_a_replay_makes_everything_sent_and_unacknowledged_due_at_once(store: Store) -> None:
    seqs = add(store, 3)
    store.outbox.mark_sent(seqs, at=100.0)
    store.outbox.ack([store.outbox.pending(1).events[0].msg_id], at=101.0)
    assert store.outbox.resend(sent_before=99.0) == 0  # sent after the cutoff: kept
    assert store.outbox.resend(sent_before=100.0) == 2
    assert [e.seq for e in store.outbox.due(resend_before=0.0, limit=10)] == seqs[1:]


def test_an_ack_takes_events_off_the_pending_list_and_a_repeat_is_harmless(
        store: Store) -> None:
    add(store, 3)
    first = store.outbox.pending(10).events[0]
    store.outbox.ack([first.msg_id, "not-ours"], at=50.0)
    store.outbox.ack([first.msg_id], at=60.0)  # a duplicate ack keeps the first time
    pending = store.outbox.pending(1)
    assert pending.count == 2 == store.outbox.pending_count()
    assert [e.seq for e in pending.events] == [first.seq + 1] and pending.oldest_ts == TS
    [acked] = [e for e in store.outbox.log(0, 10).events if e.msg_id == first.msg_id]
    assert acked.acked_at == 50.0


def test_nothing_pending_has_no_oldest(store: Store) -> None:
    empty = store.outbox.pending(20)
    assert (empty.events, empty.count, empty.oldest_ts) == ([], 0, None)
    assert store.outbox.log(0, 50).last_seq == 0


def test_the_event_log_pages_after_a_seq_or_shows_the_last_events(store: Store) -> None:
    seqs = add(store, 5)
    tail = store.outbox.log(after_seq=0, limit=2)
    assert [e.seq for e in tail.events] == seqs[3:] and tail.last_seq == seqs[-1]
    page = store.outbox.log(after_seq=seqs[1], limit=2)
    assert [e.seq for e in page.events] == seqs[2:4] and page.last_seq == seqs[-1]


def test_only_events_acknowledged_over_a_week_ago_are_pruned(store: Store) -> None:
    seqs = add(store, 3)
    msg = {e.seq: e.msg_id for e in store.outbox.log(0, 10).events}
    store.outbox.ack([msg[seqs[0]]], at=1000.0)
    store.outbox.ack([msg[seqs[1]]], at=2000.0)
    with store.tx() as db:
        assert store.outbox.prune(db, now=1500.0 + ACKED_KEPT_S) == 1
    assert [e.seq for e in store.outbox.log(0, 10).events] == seqs[1:]
    assert store.prune(10**10, retention_days=90) == {"outbox": 1}  # the unacked one stays
    assert [e.seq for e in store.outbox.log(0, 10).events] == seqs[2:]


def test_an_outbox_on_the_store_sees_the_same_table(store: Store) -> None:
    add(store, 2)
    assert Outbox(store).pending_count() == 2


class _Stepped:
    """The ``time`` module as the relay sees it: a wall clock NTP steps, a steady one."""

    def __init__(self) -> None:
        self.wall, self.mono = 1_764_464_400.0, 5_000.0

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono


class _Sent:
    rc = 0  # MQTT_ERR_SUCCESS

    def is_published(self) -> bool:
        return True

    def wait_for_publish(self, _timeout: float) -> None:
        return None


def test_unacknowledged_events_are_resent_after_a_step_back(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from hall_agent.link import relay

    clock = _Stepped()
    monkeypatch.setattr(relay, "time", clock)
    seqs = add(store, 3)
    published: list[int] = []

    def publish(e: object) -> _Sent:
        published.append(e.seq)  # type: ignore[attr-defined]
        return _Sent()

    relay.drain(store.outbox, relay.AckQueue(), publish, 30.0, lambda: True)
    assert published == seqs
    clock.wall -= 3600  # NTP steps the wall clock an hour back; the central never acked
    clock.mono += 31
    relay.drain(store.outbox, relay.AckQueue(), publish, 30.0, lambda: True)
    assert published == seqs + seqs  # resent in seq order


def test_a_new_process_resends_what_an_earlier_one_sent(store: Store) -> None:
    seqs = add(store, 2)
    store.outbox.mark_sent(seqs, at=9e9)  # a monotonic time of another boot
    assert store.outbox.forget_sends() == 2
    assert [e.seq for e in store.outbox.due(resend_before=0.0, limit=10)] == seqs
