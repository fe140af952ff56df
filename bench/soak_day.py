"""The shape of a compressed hall day, shared by the soaks (bench/soak.py against the
central stand-in, bench/soak_central.py against the real hall-central), and
bench/soak.py's report."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hall_agent.contract.config import DEFAULTS_DIR


def soak_catalog(root: Path) -> Path:
    """The built-in catalogue, open around the clock and without daily limits, so every
    arrival gets a ticket and the count is exact."""
    lines = []
    for line in (DEFAULTS_DIR / "services.toml").read_text(encoding="utf-8").splitlines():
        if line.startswith("hours = "):
            line = 'hours = "24h"'
        if line.startswith("daily_limit"):
            continue
        lines.append(line)
    out = root / "services.toml"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def arrival_weights(n: int) -> list[float]:
    """Relative arrival rate over the day: a morning peak (~9:30) and a smaller one after
    lunch (~14:30), as halls see them."""
    out = []
    for i in range(n):
        h = 8.5 + 9 * i / n
        out.append(0.3 + 1.6 * math.exp(-((h - 9.6) ** 2) / 0.8)
                   + 0.9 * math.exp(-((h - 14.6) ** 2) / 1.2))
    return out


def _ms(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return round(1000 * xs[min(len(xs) - 1, round(q * (len(xs) - 1)))], 1) if xs else 0.0


def report(r: dict[str, Any], tickets: int, duration: float) -> str:
    rows = [
        f"# Hall-day soak: {tickets} tickets in {duration:.0f} s "
        f"({'PASS' if r['ok'] else 'FAIL'})", "",
        "| check | value |", "|---|---:|",
    ]
    for k, v in r.items():
        if k not in ("faults", "refused", "ok", "stuck", "errors", "stacks"):
            rows.append(f"| {k.replace('_', ' ')} | {v} |")
    rows += ["", "Refused requests (expected: none, or only transient 503 no_number "
             "before a lease arrived): " + json.dumps(r["refused"]), "", "Faults injected:", ""]
    rows += [f"- {f}" for f in r["faults"]]
    if r["errors"]:
        rows += ["", "Errors the simulated staff met: " + json.dumps(r["errors"])]
    if r["stuck"]:
        rows += ["", "Tickets the central still holds open (newest first): "
                 + json.dumps(r["stuck"], ensure_ascii=False)]
    for name, stack in r["stacks"].items():
        rows += ["", f"Thread {name} when the queue did not drain:", "", "```", stack, "```"]
    return "\n".join(rows)
