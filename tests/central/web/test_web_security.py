"""hall-central's pages are attack surface on the hall LAN: logins, sessions, CSRF,
per-window permissions, slow-down, audit, ticket tokens, personal data. Each test runs
the real app over the real desk and store, in process."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from webhall import PASSWORD, SECRET, WebHall

from central.auth import FREE_FAILURES, FREE_FAILURES_ADDRESS, IDLE_S, MAX_S, set_password
from central.web.app import HERE
from hall_agent.contract.ticket_token import ticket_token, well_formed

ACTIONS: list[tuple[str, dict[str, Any]]] = [
    ("call-next", {}), ("call", {"ticket": "A001"}), ("recall", {}), ("no-show", {}),
    ("finish", {}), ("transfer", {"service": "B"}), ("park", {}),
    ("call-back", {"ticket": "A001"}), ("pause", {"reason": "午休"}), ("resume", {})]


@pytest.fixture
def hall(tmp_path: Path) -> Iterator[WebHall]:
    h = WebHall(tmp_path)
    yield h
    h.close()


def _still(view: dict[str, Any]) -> dict[str, Any]:
    return view | {"waiting": [w | {"waited_s": 0} for w in view["waiting"]]}


def snapshot(h: WebHall) -> tuple[Any, ...]:
    """Everything an action could change (not the time tickets have waited)."""
    return (len(h.audit()), _still(h.desk.view("5").as_dict()),
            _still(h.desk.view("6").as_dict()),
            [tuple(r) for r in h.store.query("SELECT ticket_id, status, service, window "
                                             "FROM tickets ORDER BY ticket_id")])


# ---------------------------------------------------------------------- no login

def test_nothing_of_the_console_or_its_api_without_a_login(hall: WebHall) -> None:
    hall.issue("A")
    c = hall.client()
    before = snapshot(hall)
    page = c.get("/console")
    assert page.status_code == 200 and 'action="/console/login"' in page.text
    assert "A001" not in page.text and "csrf" not in page.text
    for action, body in ACTIONS:
        r = c.post(f"/api/v1/windows/5/{action}", json=body)
        assert r.status_code == 401, (action, r.text)
        assert r.json()["error"] == "login_required"
    for path in ("/api/v1/windows/5", "/api/v1/windows/5/audit", "/api/v1/session",
                 "/api/v1/windows/5/events"):
        assert c.get(path).status_code == 401, path
    assert c.post("/api/v1/notice", json={"text": "x"}).status_code == 401
    assert c.post("/console/logout", data={"csrf": "x"}).status_code == 401
    # a cookie of no session is no login either
    c.cookies.set("hc_session", "A" * 43)
    assert c.post("/api/v1/windows/5/call-next").status_code == 401
    assert snapshot(hall) == before


def test_every_api_route_that_acts_on_a_window_is_covered_here(hall: WebHall) -> None:
    """A new action route must be added to ACTIONS (and so to these tests)."""
    routes = hall.client().get("/openapi.json").json()["paths"]
    acting = {p.rsplit("/", 1)[1] for p in routes
              if p.startswith("/api/v1/windows/{window}/") and not p.endswith(("audit",
                                                                                "events"))}
    assert acting == {a for a, _ in ACTIONS}


# ---------------------------------------------------------------------- windows

def test_a_clerk_cannot_act_on_another_window(hall: WebHall) -> None:
    hall.issue("B")
    c = hall.client()
    csrf = hall.login(c, "clerk-005", "5")
    before = snapshot(hall)
    for action, body in ACTIONS:
        r = c.post(f"/api/v1/windows/6/{action}", json=body, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 403, (action, r.text)
        assert r.json()["error"] == "window_not_allowed"
    assert c.get("/api/v1/windows/6").status_code == 403
    assert c.get("/api/v1/windows/6/audit").status_code == 403
    assert c.get("/api/v1/windows/6/events").status_code == 403
    assert snapshot(hall) == before
    # and the window it is logged in at works
    r = c.post("/api/v1/windows/5/call-next", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["serving"]["number"] == "B001"


def test_a_clerk_logs_in_only_at_a_window_of_theirs(hall: WebHall) -> None:
    c = hall.client()
    r = c.post("/api/v1/session", json={"staff": "clerk-005", "password": PASSWORD,
                                         "window": "6"})
    assert r.status_code == 422 and r.json()["error"] == "window_not_allowed"
    assert "hc_session" not in r.cookies
    r = c.post("/api/v1/session", json={"staff": "boss", "password": PASSWORD, "window": "8"})
    assert r.status_code == 200 and r.json()["window"] == "8"
    r = c.post("/api/v1/session", json={"staff": "boss", "password": PASSWORD, "window": "99"})
    assert r.status_code == 422 and r.json()["error"] == "unknown_window"


# ---------------------------------------------------------------------- CSRF

def test_a_forged_cross_site_post_is_refused_and_changes_nothing(hall: WebHall) -> None:
    hall.issue("A")
    c = hall.client()
    csrf = hall.login(c)
    before = snapshot(hall)
    forged = [
        {},                                               # no token at all
        {"X-CSRF-Token": "guessed-token"},                # a wrong token
        {"X-CSRF-Token": csrf, "Origin": "http://evil.example"},   # the right one from afar
        {"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"},
    ]
    for headers in forged:
        for action, body in ACTIONS:
            r = c.post(f"/api/v1/windows/5/{action}", json=body, headers=headers)
            assert r.status_code == 403, (headers, action, r.text)
            assert r.json()["error"] in ("csrf", "cross_site")
    # a form posted from another site: logout, login
    r = c.post("/console/logout", data={"csrf": csrf}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    r = c.post("/console/logout", data={"csrf": "nope"})
    assert r.status_code == 403
    assert c.get("/api/v1/session").status_code == 200  # still logged in
    r = c.post("/console/login", data={"staff": "clerk-005", "password": PASSWORD, "window": "5"},
               headers={"Origin": "http://evil.example"}, follow_redirects=False)
    assert r.status_code == 403 and "set-cookie" not in r.headers
    assert "拒绝来自其他网站的请求" in r.text
    assert snapshot(hall) == before
    ok = c.post("/api/v1/windows/5/call-next", headers={"X-CSRF-Token": csrf,
                                                        "Origin": "http://hall.test"})
    assert ok.status_code == 200


def test_the_session_cookie_is_httponly_and_same_site_strict(hall: WebHall) -> None:
    c = hall.client()
    r = c.post("/console/login", data={"staff": "clerk-005", "password": PASSWORD,
                                       "window": "5"}, follow_redirects=False)
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie


# ---------------------------------------------------------------------- passwords

def test_repeated_bad_passwords_are_slowed(hall: WebHall) -> None:
    c = hall.client()

    def attempt(pw: str, staff: str = "clerk-005") -> Any:
        return c.post("/api/v1/session", json={"staff": staff, "password": pw, "window": "5"})

    for _ in range(FREE_FAILURES):
        r = attempt("wrong password")
        assert r.status_code == 422 and r.json()["error"] == "bad_login"
    r = attempt(PASSWORD)                        # even the right one waits now
    assert r.status_code == 429 and r.json()["error"] == "slow_down"
    first_wait = int(r.headers["Retry-After"])
    assert first_wait >= 1 and "hc_session" not in r.cookies
    hall.clock.t += first_wait
    r = attempt("wrong again")
    assert r.status_code == 422
    r = attempt(PASSWORD)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > first_wait  # it grows
    hall.clock.t += int(r.headers["Retry-After"])
    assert attempt(PASSWORD).status_code == 200  # a good login clears it
    assert attempt(PASSWORD).status_code == 200
    refused = [a for a in hall.audit() if a["action"] == "login_refused"]
    assert len(refused) == FREE_FAILURES + 1 and all(a["staff"] == "clerk-005" for a in refused)


def test_unknown_staff_numbers_get_the_same_answer_and_are_slowed_per_address(
        hall: WebHall) -> None:
    c = hall.client()
    answers = set()
    for i in range(FREE_FAILURES_ADDRESS):
        r = c.post("/api/v1/session", json={"staff": f"nobody-{i}", "password": "x" * 9,
                                             "window": "5"})
        answers.add((r.status_code, r.json()["message"]))
    assert answers == {(422, "工号或密码不对")}
    r = c.post("/api/v1/session", json={"staff": "clerk-006", "password": PASSWORD,
                                         "window": "6"})
    assert r.status_code == 429  # the same address, another staff number


def test_passwords_are_stored_as_argon2_hashes_only(hall: WebHall, tmp_path: Path) -> None:
    rows = hall.store.query("SELECT pw_hash FROM staff")
    assert rows and all(r[0].startswith("$argon2id$") for r in rows)
    hall.store.query("PRAGMA wal_checkpoint(FULL)")
    for f in tmp_path.glob("*.sqlite3*"):
        assert PASSWORD.encode() not in f.read_bytes()


# ---------------------------------------------------------------------- sessions

def test_sessions_expire_when_idle_after_their_maximum_and_at_a_password_change(
        hall: WebHall) -> None:
    c = hall.client()
    hall.login(c)
    hall.clock.t += IDLE_S - 5
    assert c.get("/api/v1/session").status_code == 200   # used: the idle time restarts
    hall.clock.t += IDLE_S - 5
    assert c.get("/api/v1/session").status_code == 200
    hall.clock.t += IDLE_S + 1
    assert c.get("/api/v1/session").status_code == 401
    assert 'action="/console/login"' in c.get("/console").text

    hall.login(c)
    for _ in range(int(MAX_S // (IDLE_S - 60)) + 1):
        hall.clock.t += IDLE_S - 60
        c.get("/api/v1/session")
    assert c.get("/api/v1/session").status_code == 401  # past the maximum, however used

    hall.login(c)
    set_password(hall.store, "clerk-005", "a brand new password")
    assert c.get("/api/v1/session").status_code == 401


def test_logout_ends_the_session(hall: WebHall) -> None:
    c = hall.client()
    csrf = hall.login(c)
    old = c.cookies.get("hc_session")
    r = c.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    c.cookies.set("hc_session", str(old))  # a copied cookie opens nothing afterwards
    assert c.get("/api/v1/session").status_code == 401
    assert [a["action"] for a in hall.audit()][-2:] == ["login", "logout"]


# ---------------------------------------------------------------------- audit

def test_every_clerk_action_is_audited_with_who_when_what(hall: WebHall) -> None:
    for _ in range(4):
        hall.issue("A")
    c = hall.client()
    csrf = hall.login(c)
    h = {"X-CSRF-Token": csrf}
    done = []
    for action, body in [("call-next", {}), ("recall", {}), ("park", {}),
                         ("call-back", {"ticket": "A001"}), ("transfer", {"service": "B"}),
                         ("call", {"ticket": "A003"}), ("no-show", {}), ("call-next", {}),
                         ("finish", {}), ("pause", {"reason": "午休"}), ("resume", {})]:
        r = c.post(f"/api/v1/windows/5/{action}", json=body, headers=h)
        assert r.status_code == 200, (action, r.text)
        done.append(action.replace("-", "_"))
    rows = [a for a in hall.audit() if a["action"] not in ("login", "logout")]
    assert [r["action"] for r in rows] == done
    assert all(r["staff"] == "clerk-005" and r["channel"] == "console" and r["window"] == "5"
               and r["ts"] > 0 for r in rows)
    api = c.get("/api/v1/windows/5/audit").json()
    assert [a["action"] for a in api if a["action"] not in ("login",)] == done


def test_a_refused_action_answers_why_and_writes_nothing(hall: WebHall) -> None:
    c = hall.client()
    csrf = hall.login(c)
    before = snapshot(hall)
    r = c.post("/api/v1/windows/5/recall", headers={"X-CSRF-Token": csrf})
    assert r.status_code in (404, 409, 422) and r.json()["message"] and r.json()["message_en"]
    r = c.post("/api/v1/windows/5/pause", json={"reason": ""}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 422 and r.json()["field"] == "reason"
    r = c.post("/api/v1/windows/5/transfer", json={}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 422
    r = c.post("/api/v1/windows/5/call", json={"ticket": "A001", "extra": 1},
               headers={"X-CSRF-Token": csrf})
    assert r.status_code == 422
    assert snapshot(hall) == before


# ---------------------------------------------------------------------- tokens

def test_ticket_tokens_are_not_the_number_nor_a_sequence_and_need_the_secret(
        hall: WebHall) -> None:
    tickets = [hall.issue("A") for _ in range(20)]
    tokens = [t for _, t in tickets]
    assert len(set(tokens)) == 20 and all(well_formed(t) for t in tokens)
    for number, token in tickets:
        assert number not in token
    # neighbours share no prefix worth speaking of; another secret gives other tokens
    assert max(len(_common_prefix(a, b)) for a, b in itertools.pairwise(tokens)) <= 3
    t = hall.engine.ticket(hall.store.query("SELECT ticket_id FROM tickets LIMIT 1")[0][0])
    assert ticket_token(SECRET, t.ticket_id, t.day) in tokens
    assert ticket_token(b"another hall's secret, 32 chars long", t.ticket_id, t.day) not in tokens
    assert ticket_token(SECRET, t.ticket_id, "2026-01-01") not in tokens


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def test_a_ticket_page_shows_its_ticket_and_nothing_of_the_others(hall: WebHall) -> None:
    tickets = [hall.issue("A") for _ in range(3)]
    c = hall.client()
    number, token = tickets[1]
    page = c.get(f"/t/{token}")
    assert page.status_code == 200 and number in page.text
    j = c.get(f"/api/v1/tickets/{token}").json()
    assert j["number"] == number and j["ahead"] == 1 and j["state"] == "waiting"
    assert "ticket_id" not in j
    ids = [r[0] for r in hall.store.query("SELECT ticket_id FROM tickets")]
    for other_number, other_token in tickets[:1] + tickets[2:]:
        for text in (page.text, str(j)):
            assert other_number not in text and other_token not in text
    for tid in ids:
        assert tid not in page.text


def test_guessed_and_old_tokens_find_nothing_and_guessing_is_rate_limited(
        hall: WebHall) -> None:
    number, token = hall.issue("A")
    t = hall.engine.ticket(hall.store.query("SELECT ticket_id FROM tickets")[0][0])
    yesterday = ticket_token(SECRET, t.ticket_id, "2026-01-01")
    c = hall.client()
    for bad in (yesterday, "A001", number, token[:-1] + ("A" if token[-1] != "A" else "B"),
                "../console", "x" * 200):
        r = c.get(f"/api/v1/tickets/{bad}")
        assert r.status_code in (404, 429), bad
    codes = [c.get(f"/t/{'Z' * 21}{i % 10}").status_code for i in range(40)]
    assert codes.count(429) > 0 and set(codes) <= {404, 429}
    r = c.get(f"/t/{token}")
    assert r.status_code == 429 and "Retry-After" in r.headers  # this address must wait now


def test_a_ticket_page_of_another_day_is_gone(hall: WebHall) -> None:
    _, token = hall.issue("A")
    c = hall.client()
    assert c.get(f"/api/v1/tickets/{token}").status_code == 200
    hall.engine.today = lambda: "2099-01-01"  # type: ignore[method-assign]
    assert c.get(f"/api/v1/tickets/{token}").status_code == 404


# ---------------------------------------------------------------------- personal data

def test_no_id_number_or_name_on_any_page(hall: WebHall) -> None:
    hall.issue("A", id_hash="f" * 64, masked_name="张*")
    _, token = hall.issue("A")
    c = hall.client()
    csrf = hall.login(c)
    c.post("/api/v1/windows/5/call-next", headers={"X-CSRF-Token": csrf})
    paths = ("/console", "/display", "/display/window/5", f"/t/{token}", "/api/v1/hall",
             "/api/v1/windows/5", f"/api/v1/tickets/{token}", "/api/v1/windows/5/audit")
    pages = [c.get(p).text for p in paths]
    for text in pages:
        assert "张" not in text and "f" * 64 not in text and "masked" not in text


def test_pages_load_only_our_own_assets(hall: WebHall) -> None:
    c = hall.client()
    r = c.get("/display")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["Referrer-Policy"] == "same-origin"
    for f in list((HERE / "static").iterdir()) + list((HERE / "templates").iterdir()):
        text = f.read_text(encoding="utf-8")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text), f
    for src in re.findall(r'(?:src|href)="([^"]+)"', r.text):
        assert src.startswith("/static/"), src
        assert c.get(src).status_code == 200


def test_only_a_supervisor_sets_the_halls_notice_and_it_is_audited(hall: WebHall) -> None:
    c = hall.client()
    csrf = hall.login(c, "clerk-005", "5")
    r = c.post("/api/v1/notice", json={"text": "今天 16:00 停止取号"},
               headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403 and r.json()["error"] == "supervisor_only"
    assert c.get("/api/v1/hall").json()["notice"] == ""
    boss = hall.client()
    csrf = hall.login(boss, "boss", "5")
    r = boss.post("/api/v1/notice", json={"text": "今天 16:00 停止取号"},
                  headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200
    assert c.get("/api/v1/hall").json()["notice"] == "今天 16:00 停止取号"
    row = hall.audit()[-1]
    assert (row["staff"], row["action"], row["channel"]) == ("boss", "notice", "console")
