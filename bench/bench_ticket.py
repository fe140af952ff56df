"""Ticket issue through the API, and what one ticket costs on the wire.

1. p50/p99 of ``POST /v1/tickets`` over N tickets against a real agent process whose
   printer is the simulator on a pty at 115200 baud (commit + DLE EOT status + print).
2. Bytes per ticket and their wire time at 9600 and 115200 baud, beside the same ticket
   with python-escpos's image QR (``qr(native=False)``), the path PRINTER.md rules out.

Run: ``bench/run`` (or ``.venv/bin/python bench/bench_ticket.py --tickets 1000``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from escpos.printer import Dummy

from drivers.escpos_codec import build_ticket
from drivers.types import TicketPrint
from sim.hall import SimHall

ROOT = Path(__file__).resolve().parent.parent
URL = "https://qms.example.gov.cn/t/fz-citizen/0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def wire_s(nbytes: int, baud: int) -> float:
    return nbytes * 10 / baud  # 8N1: 10 bits a byte


def sample_ticket() -> TicketPrint:
    return TicketPrint(hall_name="福州市市民服务中心", service_name="社保医保", number="A023",
                       waiting_ahead=12, est_wait_s=540,
                       issued_at=datetime(2026, 11, 30, 9, 12, tzinfo=ZoneInfo("Asia/Shanghai")),
                       qr_url=URL, notice="请留意叫号，过号请重新取号")


def escpos_image_path(t: TicketPrint) -> int:
    """The same ticket through python-escpos with its image QR."""
    warnings.filterwarnings("ignore")
    with contextlib.redirect_stdout(io.StringIO()):  # "media.width.pixel … not set"
        return _escpos_image_bytes(t)


def _escpos_image_bytes(t: TicketPrint) -> int:
    p = Dummy()
    p.set(align="center")
    p.text(f"{t.hall_name}\n{t.service_name}\n")
    p.set(align="center", double_width=True, double_height=True)
    p.text(f"{t.number}\n")
    p.set(align="center")
    p.text(f"前面还有 {t.waiting_ahead} 人等候\n{t.issued_at:%Y-%m-%d %H:%M}\n")
    p.qr(t.qr_url, native=False, size=6)
    p.text(f"{t.notice}\n")
    p.cut()
    return len(p.output)


def bench_wire() -> list[str]:
    t = sample_ticket()
    ours = len(build_ticket(t))
    theirs = escpos_image_path(t)
    rows = ["| path | bytes | wire @9600 | wire @115200 |", "|---|---:|---:|---:|"]
    for name, n in (("hall-edge (native QR, GB18030 2-byte)", ours),
                    ("python-escpos image QR", theirs)):
        rows.append(f"| {name} | {n} | {wire_s(n, 9600) * 1000:.0f} ms | "
                    f"{wire_s(n, 115200) * 1000:.1f} ms |")
    rows.append(f"\nimage path / native path: {theirs / ours:.1f}× the bytes; "
                f"limit 600 bytes, ours {ours} ({ours / 600:.0%} of it)")
    return rows


def bench_api(n: int) -> list[str]:
    with tempfile.TemporaryDirectory() as d:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        hall = SimHall(Path(d), api=f"127.0.0.1:{port}",
                       catalog=str(ROOT / "tests/data/services.toml"), health_interval_ms=60_000)
        hall.write_config()
        proc = subprocess.Popen([sys.executable, "-m", "hall_agent.main", "--config",
                                 str(hall.config_path)], stderr=subprocess.DEVNULL)
        try:
            base = f"http://{hall.api}"
            http = httpx.Client(base_url=base, timeout=10)
            for _ in range(300):
                try:
                    http.get("/v1/health")
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            lat: list[float] = []
            unprinted = 0
            services = ["A", "B"]
            for i in range(n):
                t0 = time.perf_counter()
                r = http.post("/v1/tickets", json={"service": services[i % 2]},
                              headers={"Idempotency-Key": str(uuid.uuid4())})
                lat.append(time.perf_counter() - t0)
                unprinted += not r.json()["printed"]
            hall.printer.wait_for_tickets(n, timeout=30)
            got = len(hall.printer.tickets)
        finally:
            proc.terminate()
            proc.wait(10)
            hall.close()
    wire = wire_s(len(build_ticket(sample_ticket())), 115200)
    p50, p99 = pct(lat, 50), pct(lat, 99)
    return [
        f"{n} tickets through POST /v1/tickets, printer simulated on a pty at 115200 baud",
        "| p50 | p99 | mean | wire time of one ticket | p50 / wire time |",
        "|---:|---:|---:|---:|---:|",
        f"| {p50 * 1000:.1f} ms | {p99 * 1000:.1f} ms | {statistics.mean(lat) * 1000:.1f} ms | "
        f"{wire * 1000:.1f} ms | {p50 / wire:.1f}× |",
        f"printed {n - unprinted}/{n}; the simulator cut {got} tickets",
        "",
        "A pty moves bytes at memory speed, not at the line rate: on a real printer at "
        f"115200 baud add the wire time, about {(p50 + wire) * 1000:.0f} ms at p50; "
        f"at 9600 baud about {(p50 + wire * 12) * 1000:.0f} ms.",
    ]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickets", type=int, default=1000)
    a = ap.parse_args()
    print("## Ticket on the wire\n")
    print("\n".join(bench_wire()))
    print("\n## Ticket issue through the API\n")
    print("\n".join(bench_api(a.tickets)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
