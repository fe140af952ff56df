"""The live streams (SSE) of hall-central's pages, on a real socket: what a window's
console, the TV and a ticket page receive when the queue changes, whoever changed it."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from webhall import PASSWORD, Served, WebHall

from central.views import Actor
from conftest import wait_until

KEYS = Actor("evaluator@5", "evaluator")


class Stream:
    """One SSE client in a thread: its events in a queue."""

    def __init__(self, url: str, cookies: dict[str, str] | None = None) -> None:
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.status: int | None = None
        self.ended = threading.Event()
        self._t = threading.Thread(target=self._run, args=(url, cookies or {}), daemon=True)
        self._t.start()

    def _run(self, url: str, cookies: dict[str, str]) -> None:
        try:
            with httpx.stream("GET", url, cookies=cookies, timeout=60) as r:
                self.status = r.status_code
                kind = None
                for line in r.iter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind:
                        self.events.put((kind, json.loads(line[6:])))
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def next(self, kind: str, pred: Any = lambda d: True, timeout: float = 20) -> Any:
        """The first event of ``kind`` matching ``pred`` (earlier ones are skipped)."""
        while True:
            k, d = self.events.get(timeout=timeout)
            if k == kind and pred(d):
                return d


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[WebHall, Served]]:
    h = WebHall(tmp_path)
    s = Served(h.app)
    yield h, s
    s.app_close()
    h.close()


def login(s: Served, staff: str = "clerk-005", window: str = "5") -> dict[str, str]:
    r = httpx.post(s.url + "/api/v1/session", json={"staff": staff, "password": PASSWORD,
                                                     "window": window})
    assert r.status_code == 200, r.text
    return {"hc_session": r.cookies["hc_session"], "csrf": r.json()["csrf"]}


def test_the_console_shows_a_call_made_with_the_evaluators_staff_keys(
        live: tuple[WebHall, Served]) -> None:
    h, s = live
    number, _ = h.issue("A")
    session = login(s)
    console = Stream(s.url + "/api/v1/windows/5/events", {"hc_session": session["hc_session"]})
    first = console.next("view")
    assert first["serving"] is None and first["waiting"][0]["number"] == number
    h.desk.call_next("5", KEYS)  # the staff key, not the console
    v = console.next("view", lambda d: d["serving"] is not None)
    assert v["serving"]["number"] == number and v["tally"]["called"] == 1


def test_the_console_stream_needs_the_session_of_its_window(
        live: tuple[WebHall, Served]) -> None:
    _h, s = live
    assert httpx.get(s.url + "/api/v1/windows/5/events").status_code == 401
    session = login(s, "clerk-006", "6")
    r = httpx.get(s.url + "/api/v1/windows/5/events",
                  cookies={"hc_session": session["hc_session"]})
    assert r.status_code == 403


def test_the_tv_gets_each_call_and_recall_then_the_hall(live: tuple[WebHall, Served]) -> None:
    h, s = live
    number, _ = h.issue("A")
    tv = Stream(s.url + "/api/v1/hall/events")
    assert tv.next("hall")["calls"] == []
    h.desk.call_next("5", KEYS)
    call = tv.next("call")
    assert (call["ticket"], call["window"], call["kind"]) == (number, "5", "call")
    hall = tv.next("hall")
    assert hall["calls"][0]["ticket"] == number and not hall["calls"][0]["recall"]
    h.desk.recall("5", KEYS)
    again = tv.next("call")
    assert again["kind"] == "recall" and again["call_id"] != call["call_id"]
    assert tv.next("hall")["calls"][0]["recall"] is True
    h.desk.pause("5", KEYS, "午休")
    w = tv.next("hall", lambda d: d["windows"][0]["paused"])["windows"][0]
    assert (w["window"], w["pause_reason"]) == ("5", "午休")


def test_a_ticket_page_follows_its_ticket_from_waiting_to_called(
        live: tuple[WebHall, Served]) -> None:
    h, s = live
    h.issue("A")
    number, token = h.issue("A")
    page = Stream(s.url + f"/api/v1/tickets/{token}/events")
    t = page.next("ticket")
    assert (t["number"], t["state"], t["ahead"]) == (number, "waiting", 1)
    h.desk.call_next("5", KEYS)
    assert page.next("ticket", lambda d: d["ahead"] == 0)["state"] == "waiting"
    h.desk.call_next("5", KEYS)
    called = page.next("ticket", lambda d: d["state"] == "called")
    assert called["window"] == "5" and "ticket_id" not in called
    assert httpx.get(s.url + "/api/v1/tickets/" + "Q" * 22 + "/events").status_code == 404


def test_streams_end_when_the_server_stops_so_it_stops_at_once(
        live: tuple[WebHall, Served]) -> None:
    _h, s = live
    streams = [Stream(s.url + "/api/v1/hall/events") for _ in range(3)]
    for st in streams:
        st.next("hall")
    s.app_close()  # close_streams, then stop: nothing waits for a live page
    assert all(st.ended.wait(20) for st in streams)
    assert wait_until(lambda: not s.thread.is_alive(), 20)


def test_live_pages_beyond_the_cap_get_a_503_and_the_rest_keep_going(
        live: tuple[WebHall, Served], monkeypatch: pytest.MonkeyPatch) -> None:
    import central.web.public as public

    h, s = live
    monkeypatch.setattr(public, "MAX_STREAMS", 2)
    tvs = [Stream(s.url + "/api/v1/hall/events") for _ in range(2)]
    for tv in tvs:
        tv.next("hall")
    r = httpx.get(s.url + "/api/v1/hall/events", timeout=10)
    assert r.status_code == 503 and r.headers["Retry-After"] and r.json()["error"] == "busy"
    number, _ = h.issue("A")
    h.desk.call_next("5", KEYS)
    assert all(tv.next("call")["ticket"] == number for tv in tvs)
