"""A hall day against the real hall-central: three kiosk agents, twenty clerks on the
console's JSON API, under faults, hall-central SIGKILLed twice; then a count.

Citizens take tickets at three kiosks (real hall-agent processes on simulated printers)
on the day's curve; twenty clerks, one per window, log in to hall-central's console API
and call, recall, mark no-shows and finish, each action with an Idempotency-Key retried
until answered. Meanwhile the broker restarts, hall-central goes silent, answers slowly,
drops its acks, a kiosk agent is SIGKILLed, and hall-central itself is SIGKILLed twice
(``sim/central.py``'s ``CentralProcess``: the real service, fault lines on stdin). At
the end it checks and prints:

- tickets answered at the kiosks = tickets in the agents' stores = tickets at the
  central: lost 0, duplicated 0; numbers unique across the kiosks;
- every clerk action stored once (one audit row per answered Idempotency-Key);
- the queue drained (nothing waiting at the central), every event acknowledged;
- hall-central's peak RSS and CPU.

Full day: ``.venv/bin/python bench/soak_central.py`` (8,000 tickets in 600 s); the test
suite runs a short one (tests/central/test_soak_central.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

try:
    from bench.soak_day import arrival_weights, soak_catalog
except ModuleNotFoundError:  # run as a script (bench/soak.py): bench/ is on the path
    from soak_day import arrival_weights, soak_catalog  # type: ignore[no-redef]
from hall_agent.contract.config import load_catalog
from sim.broker import Broker, free_port
from sim.central import CentralProcess, write_config
from sim.hall import SimHall
from sim.procs import AgentProcess, wait_until

PASSWORD = "soak-clerk-pass"


@dataclass
class Tally:
    issued: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)
    answered_keys: set[str] = field(default_factory=set)
    actions: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    faults: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


class CentralSoak:
    def __init__(self, root: Path, tickets: int, duration_s: float, kiosks: int = 3,
                 clerks: int = 20, seed: int = 7, log: Any = print) -> None:
        self.root, self.n, self.duration, self.log = root, tickets, duration_s, log
        self.rng = random.Random(seed)
        catalog_path = soak_catalog(root)
        self.catalog = load_catalog(catalog_path)
        self.broker = Broker()
        self.broker.start()
        self.listen = f"127.0.0.1:{free_port()}"
        cfg = write_config(root / "central", broker_port=self.broker.port,
                           catalog=catalog_path, listen=self.listen,
                           rules={"recall_min_interval_s": 0})
        self.central = CentralProcess(cfg, root / "central.log", faults=True)
        self.halls: list[SimHall] = []
        self.agents: list[AgentProcess] = []
        for i in range(1, kiosks + 1):
            h = SimHall(root / f"kiosk-0{i}", api=f"127.0.0.1:{free_port()}",
                        catalog=str(catalog_path), agent_id=f"kiosk-0{i}", bus_devices=False,
                        health_interval_ms=1000,
                        extra_toml=f'[mqtt]\nhost = "127.0.0.1"\nport = {self.broker.port}\n'
                                   "request_timeout_ms = 800\nkeepalive_s = 5\n")
            h.write_config()
            self.halls.append(h)
            self.agents.append(AgentProcess(h.config_path, h.api, root / f"agent-0{i}.log"))
        self.windows = [w for w in self.catalog.windows][:clerks]
        capacity: dict[str, float] = {}
        for w in self.windows:
            for sid in w.services:
                capacity[sid] = capacity.get(sid, 0.0) + 1 / len(w.services)
        self.services = [s.id for s in self.catalog.services if s.id in capacity]
        self.weights = [capacity[s] for s in self.services]
        self.tally = Tally()
        self.stop = threading.Event()
        self._hwm: dict[int, int] = {}  # per hall-central process: its peak RSS, in KiB
        self._cpu: dict[int, float] = {}
        self.t0 = 0.0

    # ------------------------------------------------------------------ people

    def citizens(self, k: int) -> None:
        """This kiosk's share of the day's arrivals; each request retried with the same
        Idempotency-Key until the agent answers (as the kiosk does)."""
        n = self.n // len(self.agents) + (1 if k < self.n % len(self.agents) else 0)
        inverse = [1 / w for w in arrival_weights(n)]
        scale = self.duration * 0.8 / sum(inverse)
        http = httpx.Client(base_url=self.agents[k].url, timeout=10)
        rng = random.Random(self.rng.random())
        due = 0.0
        for i in range(n):
            due += inverse[i] * scale
            if (wait := self.t0 + due - time.monotonic()) > 0:
                time.sleep(wait)
            service = rng.choices(self.services, self.weights, k=1)[0]
            body = {"service": service, "priority": rng.random() < 0.05}
            key, give_up = str(uuid.uuid4()), time.monotonic() + 60
            while time.monotonic() < give_up:
                try:
                    r = http.post("/v1/tickets", json=body, headers={"Idempotency-Key": key})
                except httpx.HTTPError:
                    self.tally.retries += 1
                    time.sleep(0.2)
                    continue
                if r.status_code == 201:
                    with self.tally.lock:
                        self.tally.issued[r.json()["ticket_id"]] = r.json()
                    break
                self.tally.refused[f"{r.status_code} {r.json().get('error')}"] += 1
                time.sleep(0.2)
            else:
                self.tally.refused["gave up after 60 s"] += 1

    def clerk(self, window: str) -> None:
        base = f"http://{self.listen}"
        http = httpx.Client(base_url=base, timeout=10)
        rng = random.Random(self.rng.random())
        mean_s = max(0.05, self.duration / max(1, self.n) * len(self.windows) * 0.6)
        csrf = self._login(http, window)
        serving = False
        while not self.stop.is_set() or serving:
            if serving and rng.random() < 0.08:
                name = "recall"
            elif serving and rng.random() < 0.04:
                name = "no-show"
            elif self.stop.is_set():
                name = "finish"
            else:
                name = "call-next"
            view, csrf = self._act(http, window, name, csrf)
            if view is None:
                serving = False if name == "finish" else serving
                time.sleep(0.1)
                continue
            serving = view.get("serving") is not None
            if name == "call-next" and not serving:
                self.stop.wait(0.2)
            elif name != "recall":
                time.sleep(rng.expovariate(1 / mean_s))

    def _login(self, http: httpx.Client, window: str) -> str:
        give_up = time.monotonic() + 120
        while time.monotonic() < give_up:
            try:
                r = http.post("/api/v1/session", json={"staff": f"clerk-{window}",
                                                        "password": PASSWORD, "window": window})
                if r.status_code == 200:
                    return str(r.json()["csrf"])
                self.tally.errors[f"login {r.status_code}: {r.text[:80]}"] += 1
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"clerk-{window} could not log in for 120 s")

    def _act(self, http: httpx.Client, window: str, name: str,
             csrf: str) -> tuple[dict[str, Any] | None, str]:
        """One action, retried with its key until hall-central answers (it may be dead
        for a while); the view, or None when the action was refused."""
        key, give_up = str(uuid.uuid4()), time.monotonic() + 90
        while time.monotonic() < give_up:
            try:
                r = http.post(f"/api/v1/windows/{window}/{name}",
                              headers={"Idempotency-Key": key, "X-CSRF-Token": csrf})
            except httpx.HTTPError:
                self.tally.retries += 1
                time.sleep(0.3)
                continue
            if r.status_code in (401, 403):
                csrf = self._login(http, window)
                continue
            if r.status_code >= 500:
                time.sleep(0.3)
                continue
            if r.status_code == 200:
                with self.tally.lock:
                    self.tally.answered_keys.add(key)
                    self.tally.actions[name] += 1
                return dict(r.json()), csrf
            self.tally.refused[f"clerk {name} {r.status_code}"] += 1
            return None, csrf
        self.tally.errors[f"clerk {name} unanswered for 90 s"] += 1
        return None, csrf

    # ------------------------------------------------------------------ faults, watch

    def faults(self) -> None:
        def central_kill() -> None:
            self.central.kill()
            time.sleep(0.5)
            self.central.start()

        def agent_kill() -> None:
            self.agents[0].kill()
            time.sleep(0.5)
            self.agents[0].start()

        plan = [(0.10, "broker restarted", self.broker.restart),
                (0.18, "central silent", lambda: self.central.control("silent on")),
                (0.25, "central back", lambda: self.central.control("silent off")),
                (0.32, "hall-central SIGKILLed (restarted)", central_kill),
                (0.40, "central slow (1.5 s answers)", lambda: self.central.control("slow 1500")),
                (0.46, "central quick again", lambda: self.central.control("slow 0")),
                (0.52, "kiosk-01's agent SIGKILLed (restarted)", agent_kill),
                (0.58, "central drops acks", lambda: self.central.control("drop_acks on")),
                (0.64, "central acks again", lambda: self.central.control("drop_acks off")),
                (0.70, "broker restarted", self.broker.restart),
                (0.78, "hall-central SIGKILLed (restarted)", central_kill),
                (0.86, "broker restarted", self.broker.restart)]
        for frac, what, act in plan:
            if self.stop.wait(max(0.0, self.t0 + frac * self.duration - time.monotonic())):
                return
            self.tally.faults.append(f"{time.monotonic() - self.t0:6.1f} s  {what}")
            self.log(f"  [{time.monotonic() - self.t0:6.1f} s] {what}")
            try:
                act()
            except Exception as e:
                self.tally.errors[f"fault {what}: {e}"] += 1

    def watch(self) -> None:
        """hall-central's peak RSS and CPU, over every process it ran as."""
        while not self.stop.is_set():
            pid = self.central.pid
            if pid:
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            self._hwm[pid] = int(line.split()[1])
                    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    self._cpu[pid] = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
                except OSError:
                    pass
            time.sleep(0.5)

    # ------------------------------------------------------------------ run and count

    def central_one(self, sql: str) -> Any:
        with self.central.db() as c:
            return c.execute(sql).fetchone()[0]

    def run(self) -> dict[str, Any]:
        try:
            self._clerks()
            self.central.start()
            for a in self.agents:
                a.start()
            assert all(wait_until(lambda a=a: a.health()["mode"] == "central", 30)
                       for a in self.agents)
            self.t0 = time.monotonic()
            background = [threading.Thread(target=f, daemon=True) for f in (self.faults,
                                                                            self.watch)]
            clerks = [threading.Thread(target=self.clerk, args=(w.id,), daemon=True)
                      for w in self.windows]
            kiosks = [threading.Thread(target=self.citizens, args=(k,), daemon=True)
                      for k in range(len(self.agents))]
            for th in background + clerks + kiosks:
                th.start()
            for th in kiosks:
                th.join()
            self.log(f"  [{time.monotonic() - self.t0:6.1f} s] every citizen has a ticket; "
                     "the clerks finish the queue")
            t_last = time.monotonic()
            settled = wait_until(lambda: self._unacked() == 0 and self.central_one(
                "SELECT COUNT(*) FROM tickets WHERE status = 'waiting'") == 0,
                max(120.0, self.duration), step=1.0)
            drain_s = time.monotonic() - t_last
            self.stop.set()
            for th in clerks:
                th.join(120)
            return self.check(settled, drain_s)
        finally:
            self.stop.set()
            for a in self.agents:
                a.stop()
            self.central.stop()
            for h in self.halls:
                h.close()
            self.broker.close()

    def _clerks(self) -> None:
        """One login per window, made with ``hall-central user add`` as an operator does."""
        from central.auth import add_user
        from central.schema import migrate
        from hall_agent.core.store import Store

        store = Store(self.central.config_path.parent / "data")
        try:
            migrate(store)
            for w in self.windows:
                add_user(store, f"clerk-{w.id}", PASSWORD, [w.id])
        finally:
            store.close()

    def _unacked(self) -> int:
        n = 0
        for h in self.halls:
            with sqlite3.connect(h.root / "data" / "hall-agent.sqlite3") as c:
                n += c.execute("SELECT COUNT(*) FROM outbox WHERE acked_at IS NULL"
                               ).fetchone()[0]
        return n

    def check(self, settled: bool, drain_s: float) -> dict[str, Any]:
        agent_tickets: dict[str, tuple[str, str]] = {}
        for h in self.halls:
            with sqlite3.connect(h.root / "data" / "hall-agent.sqlite3") as c:
                agent_tickets |= {r[0]: (r[1], r[2]) for r in c.execute(
                    "SELECT ticket_id, day, number FROM tickets")}
        with self.central.db() as c:
            rows = c.execute("SELECT ticket_id, day, number, status FROM tickets").fetchall()
            audit = Counter(r[0] for r in c.execute(
                "SELECT op_id FROM audit WHERE channel = 'console' AND op_id IS NOT NULL"))
            waiting = c.execute("SELECT COUNT(*) FROM tickets WHERE status = 'waiting'"
                                ).fetchone()[0]
            stored = c.execute("SELECT COUNT(*), COALESCE(SUM(deliveries), 0) FROM received"
                               ).fetchone()
        live = {r[0]: (r[1], r[2]) for r in rows if r[3] != "cancelled"}
        issued = self.tally.issued
        lost = [t for t in issued if t not in live or t not in agent_tickets]
        numbers = Counter(live.values())
        kiosk_numbers = Counter(agent_tickets.values())
        cpu = sum(self._cpu.values())
        r: dict[str, Any] = {
            "kiosks": len(self.agents), "clerks": len(self.windows),
            "tickets_answered": len(issued), "tickets_in_agent_stores": len(agent_tickets),
            "tickets_at_central": len(live),
            "offline_tickets": sum(1 for t in issued.values() if t["offline"]),
            "lost": len(lost), "duplicated": len(live) - len(set(live)) + sum(
                1 for t in live if t not in issued),
            "duplicate_numbers_central": sum(1 for k in numbers.values() if k > 1),
            "duplicate_numbers_across_kiosks": sum(1 for k in kiosk_numbers.values() if k > 1),
            "clerk_actions_answered": len(self.tally.answered_keys),
            "clerk_actions_stored": sum(audit.values()),
            "clerk_actions_stored_twice": sum(1 for k in audit.values() if k > 1),
            "clerk_actions_missing": len(self.tally.answered_keys - set(audit)),
            "actions": dict(self.tally.actions),
            "waiting_at_central": waiting, "queue_drained_s": round(drain_s, 1),
            "events_stored": stored[0], "event_deliveries": stored[1],
            "outbox_unacknowledged": self._unacked(),
            # The first process holds the twenty clerks' logins at once (argon2: 64 MiB
            # each); the processes after the SIGKILLs find the sessions in the store.
            "central_peak_rss_mb": round(max(self._hwm.values(), default=0) / 1024, 1),
            "central_peak_rss_mb_after_restarts": round(max(
                list(self._hwm.values())[1:], default=0) / 1024, 1),
            "central_cpu_s": round(cpu, 1),
            "central_cpu_share": round(cpu / max(1e-9, time.monotonic() - self.t0), 3),
            "retries": self.tally.retries, "refused": dict(self.tally.refused),
            "settled": settled, "faults": self.tally.faults,
            "errors": dict(self.tally.errors)}
        r["ok"] = bool(settled and not lost and r["duplicated"] == 0
                       and r["duplicate_numbers_central"] == 0
                       and r["duplicate_numbers_across_kiosks"] == 0
                       and r["clerk_actions_missing"] == 0 and r["clerk_actions_stored_twice"] == 0
                       and r["clerk_actions_stored"] == r["clerk_actions_answered"]
                       and waiting == 0 and r["outbox_unacknowledged"] == 0
                       and not self.tally.refused.get("gave up after 60 s"))
        return r


def report(r: dict[str, Any], tickets: int, duration: float) -> str:
    rows = [f"# hall-central soak: {r['kiosks']} kiosks, {r['clerks']} clerks, {tickets} "
            f"tickets in {duration:.0f} s ({'PASS' if r['ok'] else 'FAIL'})", "",
            "| check | value |", "|---|---:|"]
    rows += [f"| {k.replace('_', ' ')} | {v} |" for k, v in r.items()
             if k not in ("faults", "refused", "errors", "ok", "actions")]
    rows += ["", "Clerk actions: " + json.dumps(r["actions"]),
             "Refused: " + json.dumps(r["refused"]), "", "Faults injected:", ""]
    rows += [f"- {f}" for f in r["faults"]]
    if r["errors"]:
        rows += ["", "Errors met: " + json.dumps(r["errors"], ensure_ascii=False)]
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickets", type=int, default=8000)
    ap.add_argument("--duration", type=float, default=600.0,
                    help="wall-clock seconds the day is compressed into")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hall-central-soak-") as d:
        r = CentralSoak(Path(d), a.tickets, a.duration, seed=a.seed).run()
    print(report(r, a.tickets, a.duration))
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
