"""A hall day, compressed: thousands of tickets under faults, then a count that nothing was lost.

Citizens take tickets at the kiosk (a morning peak and an afternoon bump), 20 windows
call them through the central stand-in over a real Mosquitto, citizens rate on the
evaluators; meanwhile the broker restarts, the central goes silent for a stretch, the
agent is SIGKILLed, a board, the RS-485 adapter and the printer are unplugged and plugged
back in, the paper runs out once, the agent's card is full for a stretch (a tmpfs,
when this runs as root), and the agent's wall clock steps five minutes and is put right
(libfaketime, sim/clock.py; the monotonic clock is left alone). At the end it checks,
and prints:

- tickets issued (answered 201 to the kiosk) = tickets in the agent's store = tickets
  the central stored: lost 0, duplicated 0;
- ticket numbers unique per service and day, at the agent and at the central;
- every outbox event acknowledged, each stored once at the central;
- ratings pressed on the evaluators = ratings stored (and reported to the central);
- the agent's peak RSS and CPU.

Full day: ``.venv/bin/python bench/soak.py`` (8,000 tickets); CI runs a short form
(tests/test_soak.py). The report goes to stdout as Markdown.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

try:
    from bench.soak_day import _ms, arrival_weights, report, soak_catalog
except ModuleNotFoundError:  # run as a script (bench/soak.py): bench/ is on the path
    from soak_day import _ms, arrival_weights, report, soak_catalog  # type: ignore[no-redef]
from sim.broker import free_port
from sim.clock import SteppingClock
from sim.hall import SimHall
from sim.procs import AgentProcess, wait_until
from sim.storage import FullCard

RATING_KEYS = {1: "very_satisfied", 2: "satisfied", 3: "basic", 4: "unsatisfied",
               5: "very_unsatisfied"}


@dataclass
class Tally:
    issued: dict[str, dict[str, Any]] = field(default_factory=dict)  # ticket_id → answer
    refused: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    ratings_pressed: int = 0
    ratings_unasked: int = 0  # the evaluator never asked (the agent had just restarted)
    pressed_for: list[tuple[str, str]] = field(default_factory=list)  # (window, number)
    answer_s: list[float] = field(default_factory=list)  # the kiosk's 201s, first try to last
    calls: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    faults: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Soak:
    def __init__(self, root: Path, tickets: int, duration_s: float, windows: int = 20,
                 seed: int = 7, log: Any = print, full_card_s: float = 60.0) -> None:
        self.root = root
        self.n = tickets
        self.duration = duration_s
        self.rng = random.Random(seed)
        self.log = log
        catalog = soak_catalog(root)
        self.hall = SimHall(root / "hall", api=f"127.0.0.1:{free_port()}",
                            catalog=str(catalog), health_interval_ms=1000)
        self.hall.start_central()
        self.hall.extra_toml += "request_timeout_ms = 800\nkeepalive_s = 5\n"
        self.hall.write_config()
        self.agent = AgentProcess(self.hall.config_path, self.hall.api, root / "agent.log")
        # The agent's card fills up (sim/storage.py); left out, and said, where impossible.
        self.card = FullCard(self.hall.root / "data")
        self.full_card_s = full_card_s
        # The agent's wall clock steps and is corrected (sim/clock.py), where possible.
        self.clock = SteppingClock(root / "faketime")
        self.clock_why = self.clock.available()
        if not self.clock_why:
            self.agent.env.update(self.clock.env())
        assert self.hall.central is not None and self.hall.broker is not None
        self.central = self.hall.central
        self.broker = self.hall.broker
        self.tally = Tally()
        self.windows = [w.id for w in self.central.catalog.windows][:windows]
        # A hall staffs each service for its demand: arrivals follow the windows' capacity
        # (a window serving two services gives each half), so no single-window service
        # is loaded beyond what its window can do while the others idle.
        capacity: dict[str, float] = {}
        for w in self.central.catalog.windows:
            if w.id in self.windows:
                for sid in w.services:
                    capacity[sid] = capacity.get(sid, 0.0) + 1 / len(w.services)
        self.services = [s.id for s in self.central.catalog.services if s.id in capacity]
        self.service_weights = [capacity[s] for s in self.services]
        self.stop = threading.Event()
        self.peak_rss_kb = 0
        self.cpu_s = 0.0
        self._cpu_seen: dict[int, float] = {}
        self.stacks: dict[str, str] = {}
        self.drain_s = 0.0

    # ------------------------------------------------------------------ actors

    def _collect_central_errors(self) -> logging.Handler:
        """Warnings and errors the central stand-in logs go into the report."""
        tally = self.tally

        class Collect(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                tally.errors[f"central: {record.getMessage()}"[:200]] += 1

        h = Collect(logging.WARNING)
        logging.getLogger("sim.central").addHandler(h)
        return h

    def kiosk(self) -> None:
        """Arrivals on the day's curve; each citizen's request is retried with the same
        Idempotency-Key until the agent answers (as the kiosk does)."""
        # The gap before arrival i is inversely proportional to the rate at that hour;
        # all arrivals fit in 85 % of the run, the rest lets the windows finish.
        inverse = [1 / w for w in arrival_weights(self.n)]
        scale = self.duration * 0.85 / sum(inverse)
        http = httpx.Client(base_url=self.agent.url, timeout=10)
        t0 = time.monotonic()
        due = 0.0
        for i in range(self.n):
            due += inverse[i] * scale
            wait = t0 + due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            service = self.rng.choices(self.services, self.service_weights, k=1)[0]
            priority = self.rng.random() < 0.05
            body = {"service": service, "priority": priority,
                    **({"priority_reason": "elderly"} if priority else {})}
            key = str(uuid.uuid4())
            asked = time.monotonic()
            give_up = asked + 60  # a citizen waits a minute, then asks staff
            while not self.stop.is_set():
                if time.monotonic() > give_up:
                    self.tally.refused["gave up after 60 s"] += 1
                    break
                try:
                    r = http.post("/v1/tickets", json=body, headers={"Idempotency-Key": key})
                except httpx.HTTPError:
                    self.tally.retries += 1
                    time.sleep(0.2)
                    continue
                if r.status_code == 201:
                    t = r.json()
                    with self.tally.lock:
                        self.tally.issued[t["ticket_id"]] = t
                        self.tally.answer_s.append(time.monotonic() - asked)
                    break
                self.tally.refused[f"{r.status_code} {r.json().get('error')}"] += 1
                if r.status_code >= 500 or r.json().get("error") == "no_number":
                    time.sleep(0.2)
                    continue
                break

    def windows_at_work(self) -> None:
        """Each window calls its next citizen when the last one is done; service times are
        exponential, scaled to the compressed day so that the windows are busy about 70 %
        of the day on average (queues build at the morning peak and drain after it);
        most citizens then rate."""
        busy_until = dict.fromkeys(self.windows, 0.0)
        # Arrivals fill 85 % of the run: mean gap 0.85·D/n, so W windows at mean service
        # time s are busy s·n / (0.85·D·W) of the time; 0.6 gives ≈ 0.7.
        mean_s = max(0.05, self.duration / max(1, self.n) * len(self.windows) * 0.6)
        evaluators = {w for w in self.windows
                      if self.hall.command(f"eval {w}").lstrip().startswith("{")}
        last: dict[str, str] = {}  # the ticket each window serves
        rating: dict[str, threading.Thread] = {}
        while not self.stop.is_set():
            now = time.monotonic()
            for w in self.windows:
                if now < busy_until[w] or (w in rating and rating[w].is_alive()):
                    continue
                try:
                    call = self.central.call(w)
                except Exception as e:  # the broker may be down: try again shortly
                    self.tally.errors[f"call: {type(e).__name__}: {e}"] += 1
                    self.log(f"  call at window {w} failed: {e}")
                    busy_until[w] = now + 0.5
                    continue
                if call is None:
                    busy_until[w] = now + 0.2
                    continue
                self.tally.calls += 1
                busy_until[w] = now + self.rng.expovariate(1 / mean_s)
                previous, last[w] = last.get(w), call.ticket
                if w in evaluators and previous and self.rng.random() < 0.7:
                    key = self.rng.choices([1, 2, 3, 4, 5], [60, 30, 6, 3, 1])[0]
                    rating[w] = threading.Thread(target=self.rate, args=(w, previous, key),
                                                 daemon=True, name=f"rate {w}")
                    rating[w].start()
            time.sleep(0.02)
        for th in rating.values():
            th.join(30)

    def _evaluator(self, w: str) -> dict[str, Any]:
        answer = self.hall.command(f"eval {w}")
        return json.loads(answer) if answer.lstrip().startswith("{") else {}

    def rate(self, w: str, number: str, key: int) -> None:
        """The citizen just served rates when the evaluator asks for their number (the
        agent asks once the next call reaches it: a key pressed before that would rate
        the visit before, which nobody can tell apart). The window calls its next
        citizen once the key is taken (acknowledged after its commit), or gives up
        waiting: the key stays in the evaluator, which sends it again."""
        try:
            if not wait_until(lambda: number in self._evaluator(w).get("prompt", ""), 5.0,
                              step=0.05):
                self.tally.ratings_unasked += 1  # the agent restarted and lost the prompt
                return
            answer = self.hall.command(f"eval press {w} {key}")
            if answer.startswith("ok"):
                with self.tally.lock:
                    self.tally.ratings_pressed += 1
                    self.tally.pressed_for.append((w, number))
            wait_until(lambda: not self._evaluator(w).get("buffered"), 10.0, step=0.05)
        except Exception as e:  # noted in the report; the day goes on
            self.tally.errors[f"eval press: {type(e).__name__}: {e}"] += 1

    def watch_agent(self) -> None:
        while not self.stop.is_set():
            pid = self.agent.pid
            if pid:
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            self.peak_rss_kb = max(self.peak_rss_kb, int(line.split()[1]))
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                    self._cpu_seen[pid] = cpu
                except OSError:
                    pass
            time.sleep(0.5)

    # ------------------------------------------------------------------ faults

    def fault(self, what: str) -> None:
        self.tally.faults.append(f"{time.monotonic() - self.t0:6.1f} s  {what}")
        self.log(f"  [{time.monotonic() - self.t0:6.1f} s] {what}")

    def faults(self) -> None:
        d = self.duration

        def at(frac: float) -> bool:
            wait = self.t0 + frac * d - time.monotonic()
            if wait > 0:
                self.stop.wait(wait)
            return not self.stop.is_set()

        plan = [
            (0.10, "broker restarted", self.broker.restart),
            (0.20, "central silent", lambda: setattr(self.central.faults, "silent", True)),
            (0.28, "central back", lambda: setattr(self.central.faults, "silent", False)),
            (0.33, "agent SIGKILLed", self._kill_agent),
            (0.40, "hall board unplugged", lambda: self.hall.command("board 1 power off")),
            (0.46, "hall board plugged back", lambda: self.hall.command("board 1 power on")),
            (0.50, "printer unplugged", self.hall.unplug_printer),
            (0.55, "printer plugged back", self.hall.replug_printer),
            (0.60, "paper ran out", lambda: self.hall.printer.set_state(paper="end")),
            (0.64, "paper loaded", lambda: self.hall.printer.set_state(paper="ok")),
            (0.70, "broker restarted", self.broker.restart),
            (0.73, "RS-485 adapter unplugged", lambda: self.hall.command("unplug bus")),
            (0.75, "RS-485 adapter plugged back", lambda: self.hall.command("replug bus")),
            (0.78, "agent SIGKILLed", self._kill_agent),
            (0.88, "broker restarted", self.broker.restart),
        ]
        if self.card.mounted:
            full_for = min(self.full_card_s, 0.1 * d)

            def full() -> None:
                self.card.fill()
                self.stop.wait(full_for)  # full for that long, however late it began

            plan += [(0.43, f"agent's card full for {full_for:.0f} s", full),
                     (0.43, "agent's card has room again", self.card.free)]
        if not self.clock_why:
            # Five minutes, the way that stays on today's hall day: ahead before noon,
            # behind after it; then NTP puts it right (a step the other way).
            hour = datetime.now(ZoneInfo("Asia/Shanghai")).hour  # the sim hall's zone
            step = 300 if hour < 12 else -300
            plan += [(0.15, f"agent's clock stepped {abs(step) // 60} min "
                            f"{'ahead' if step > 0 else 'back'}",
                      lambda: self.clock.step_to(step)),
                     (0.24, "agent's clock corrected (stepped "
                            f"{'back' if step > 0 else 'ahead'})", lambda: self.clock.step_to(0))]
        plan.sort(key=lambda x: x[0])  # stable: "room again" right after "full"
        for frac, what, act in plan:
            if not at(frac):
                return
            self.fault(what)
            act()

    def _kill_agent(self) -> None:
        self.agent.kill()
        # Started again on a true clock: libfaketime costs the agent CPU at every clock
        # read, and the steps (before the first kill) are over.
        self.agent.env = SteppingClock.without(self.agent.env)
        time.sleep(0.5)
        self.agent.start()

    # ------------------------------------------------------------------ run

    def run(self) -> dict[str, Any]:
        handler = self._collect_central_errors()
        try:
            return self._run()
        finally:
            logging.getLogger("sim.central").removeHandler(handler)

    def _run(self) -> dict[str, Any]:
        why = self.card.mount()
        if why:
            self.tally.faults.append(f"(no full card: {why})")
        if self.clock_why:
            self.tally.faults.append(f"(no clock step: {self.clock_why})")
        try:
            return self._day()
        finally:
            self.card.close()

    def _day(self) -> dict[str, Any]:
        self.agent.start()
        assert wait_until(lambda: self.agent.health()["mode"] == "central", 30)
        self.t0 = time.monotonic()
        actors = [threading.Thread(target=f, daemon=True, name=f.__name__) for f in
                  (self.windows_at_work, self.watch_agent, self.faults)]
        kiosks = [threading.Thread(target=self.kiosk, daemon=True)]
        for th in actors + kiosks:
            th.start()
        for th in kiosks:
            th.join()
        self.log(f"  [{time.monotonic() - self.t0:6.1f} s] all {self.n} citizens served by "
                 "the kiosk; windows finish the queue")
        # A ceiling, not a pace: the queue left at the last arrival normally drains in
        # a few seconds.
        t_last = time.monotonic()
        drained = wait_until(lambda: self.central.stats()["tickets"] >= len(self.tally.issued)
                             and self._waiting() == 0, max(60.0, self.duration), step=1.0)
        self.drain_s = time.monotonic() - t_last
        if not drained:  # where is everyone? (the report shows it)
            frames = sys._current_frames()
            for th in actors:
                if th.ident in frames:
                    self.stacks[th.name] = "".join(traceback.format_stack(frames[th.ident]))
        self.stop.set()
        for th in actors:
            th.join(30)
        # Every key pressed is taken from the evaluators, every event acknowledged.
        taken = wait_until(lambda: not any(self._evaluator(w).get("buffered")
                                           for w in self.windows), 60, step=0.2)
        acked = taken and wait_until(lambda: self._unacked() == 0, 120)
        result = self.check(drained and acked)
        self.agent.stop()
        self.hall.close()
        return result

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.hall.root / "data" / "hall-agent.sqlite3")

    def _unacked(self) -> int:
        with self._db() as c:
            return int(c.execute("SELECT COUNT(*) FROM outbox WHERE acked_at IS NULL")
                       .fetchone()[0])

    def _waiting(self) -> int:
        return sum(int(v.waiting) for v in self.central.engine.snapshot()[0].values())

    def check(self, settled: bool) -> dict[str, Any]:
        with self._db() as c:
            agent_tickets = {r[0]: r[1:] for r in c.execute(
                "SELECT ticket_id, day, number, offline FROM tickets")}
            numbers = Counter((r[1], r[2]) for r in agent_tickets.values())
            outbox = c.execute("SELECT COUNT(*), SUM(acked_at IS NULL) FROM outbox").fetchone()
            rated = Counter((r[0], r[1]) for r in c.execute(
                "SELECT window, number FROM evaluations WHERE channel = 'evaluator' AND "
                "level != 'none'"))
            stored_ratings = sum(rated.values())
            # The clock step, as the agent saw it: the largest jump between the issue
            # times of tickets one after another (in the order they were stored).
            times = [r[0] for r in c.execute("SELECT issued_at FROM tickets ORDER BY rowid")]
            jump = max((b - a for a, b in itertools.pairwise(times)), default=0.0)
        received = self.central.received()
        issued_events = Counter(e["data"]["ticket_id"] for e in received
                                if e["type"] == "ticket.issued")
        central_ratings = sum(1 for e in received if e["type"] == "evaluation.submitted"
                              and e["data"].get("level") != "none"
                              and e["data"].get("channel") == "evaluator")
        central_numbers = Counter((r["day"], r["number"]) for r in self.central.store.query(
            "SELECT day, number FROM tickets"))
        issued = self.tally.issued
        lost = [t for t in issued if t not in agent_tickets or t not in issued_events]
        dup_numbers = [n for n, k in numbers.items() if k > 1]
        central_dups = [n for n, k in central_numbers.items() if k > 1]
        cpu = sum(self._cpu_seen.values())
        result = {
            "tickets_answered": len(issued),
            "tickets_in_agent_store": len(agent_tickets),
            "tickets_at_central": len(issued_events),
            "offline_tickets": sum(1 for t in issued.values() if t["offline"]),
            "lost": len(lost),
            "issued_twice": sum(1 for k in issued_events.values() if k > 1)
            + (len(agent_tickets) - len(issued)),
            "duplicate_numbers_agent": len(dup_numbers),
            "duplicate_numbers_central": len(central_dups),
            "outbox_events": int(outbox[0]), "outbox_unacknowledged": int(outbox[1] or 0),
            "central_deliveries": self.central.stats()["deliveries"],
            "central_unique_events": self.central.stats()["unique_events"],
            "calls": self.tally.calls,
            "ratings_pressed": self.tally.ratings_pressed,
            "ratings_stored": int(stored_ratings), "ratings_at_central": central_ratings,
            # bound to another visit than the one asked for: a SIGKILL between the
            # press and its poll loses the prompt (in memory); reported, not failed
            "ratings_for_another_visit": sum(
                (Counter(self.tally.pressed_for) - rated).values()),
            "ratings_unasked": self.tally.ratings_unasked,
            "largest_issue_time_jump_s": round(jump, 1),
            "kiosk_answer_p50_ms": _ms(self.tally.answer_s, 0.5),
            "kiosk_answer_p99_ms": _ms(self.tally.answer_s, 0.99),
            "kiosk_retries": self.tally.retries, "refused": dict(self.tally.refused),
            "agent_peak_rss_mb": round(self.peak_rss_kb / 1024, 1),
            "agent_cpu_s": round(cpu, 1),
            "agent_cpu_share": round(cpu / max(1e-9, time.monotonic() - self.t0), 3),
            "central_tickets": self.central.stats()["tickets"],
            "queue_drained_s_after_last_arrival": round(self.drain_s, 1),
            "waiting_at_central": self._waiting(),
            "settled": settled, "faults": self.tally.faults,
            "stuck": [dict(r) for r in self.central.store.query(
                "SELECT number, service, status, offline, window FROM tickets "
                "WHERE status IN ('waiting', 'called') AND finished_at IS NULL "
                "ORDER BY issued_at DESC LIMIT 10")] if not settled else [],
            "errors": dict(self.tally.errors), "stacks": self.stacks,
        }
        result["ok"] = bool(
            settled and not lost and not dup_numbers and not central_dups
            and result["issued_twice"] == 0 and result["outbox_unacknowledged"] == 0
            and not self.tally.refused.get("gave up after 60 s")
            and len(agent_tickets) == len(issued)
            and result["ratings_stored"] == result["ratings_pressed"]
            == result["ratings_at_central"])
        return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickets", type=int, default=8000)
    ap.add_argument("--duration", type=float, default=600.0,
                    help="wall-clock seconds the day is compressed into")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hall-soak-") as d:
        r = Soak(Path(d), a.tickets, a.duration, seed=a.seed).run()
    print(report(r, a.tickets, a.duration))
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

