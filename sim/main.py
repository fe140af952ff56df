"""``hall-sim``: simulated hall hardware on ptys, and the one-command demo.

  hall-sim [--dir DIR]            start the devices, write DIR/agent.toml, wait
  hall-sim demo [--dir DIR]       devices + agent + a scripted morning, tickets to PNG
  hall-sim ctl [--dir DIR] CMD…   change a running simulator (paper out, cover open…)

  --boards onbon-bx5|onbon-bx6    the hall board is an ONBON controller (its own pty, or
                                  TCP with --board-transport tcp) instead of a hall-edge
                                  board on the RS-485 bus; also HALL_SIM_BOARDS
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from pathlib import Path

import httpx

from sim.broker import free_port
from sim.hall import CONTROL_HELP, SimHall, control

DEFAULT_DIR = Path("demo-out")


def _print_where(hall: SimHall) -> None:
    print(f"simulated printer   {hall.printer_link} → {hall.printer.port}  (115200 8N1, "
          "ESC/POS)")
    print(f"printed tickets     {hall.tickets_dir}/ (one PNG per cut ticket)")
    print(f"printer traffic     {hall.root / 'printer-traffic.log'}")
    if hall.bus is not None:
        print(f"RS-485 bus          {hall.link_of(hall.bus)} → {hall.bus.port}  (9600 8N1: "
              "LED boards, evaluators)")
        print(f"LED boards          {hall.root / 'boards'}/ (what each board shows, as PNG)")
    if hall.onbon is not None and hall.onbon_line is not None:
        line = hall.onbon_line
        where = (f"127.0.0.1:{line.port} (TCP)" if hasattr(line, "connections")
                 else f"{line.port}  (9600 8N1)")
        print(f"ONBON hall board    {hall.onbon.model.value} #{hall.onbon.address} "
              f"{hall.onbon.width}x{hall.onbon.height} on {where}; PNG {hall.onbon.png_path}")
    print(f"spoken calls        {hall.root / 'data' / 'voice'}/ (WAV, when no sound card)")
    if hall.id_reader is not None:
        print(f"ID-card reader      {hall.link_of(hall.id_reader)} → {hall.id_reader.port}  "
              f"(115200 8N1, SAM; put a card on it: hall-sim ctl --dir {hall.root} card "
              "resident)")
    if hall.scanner is not None:
        print(f"QR scanner          {hall.scanner.port}  (serial; scan: hall-sim ctl --dir "
              f"{hall.root} scan TEXT)")
    print(f"agent config        {hall.config_path}")
    print(f"control socket      {hall.control_path}  (hall-sim ctl --dir {hall.root} help)")


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _stop_on_signals() -> None:
    """SIGTERM and SIGINT interrupt whatever hall-sim is doing, the prompt's read too (a
    handler that only set a flag would leave ``input()`` waiting for a line: PEP 475
    retries it), so the devices are closed on the way out."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)


def _wait_forever(hall: SimHall) -> None:
    """The prompt (or a wait) until Ctrl-C, Ctrl-D or SIGTERM."""
    _stop_on_signals()
    try:
        if sys.stdin.isatty():
            print("type a command (help), or Ctrl-C to stop")
            while True:
                try:
                    line = input("hall-sim> ")
                except EOFError:
                    break
                if line.strip():
                    print(hall.command(line))
        else:
            while True:
                time.sleep(0.2)
    except KeyboardInterrupt:
        print("\nstopping")


def cmd_run(a: argparse.Namespace) -> int:
    _stop_on_signals()
    try:
        hall = SimHall(Path(a.dir).resolve(), api=a.api, catalog=a.catalog or "",
                       id_devices=a.id_devices, boards=a.boards,
                       board_transport=a.board_transport)
    except KeyboardInterrupt:
        return 0
    try:
        if a.mqtt or a.mqtt_port:
            hall.start_central(a.mqtt_port)
            assert hall.broker is not None
            print(f"mosquitto           127.0.0.1:{hall.broker.port} (hall-central "
                  "connected)")
        hall.write_config()
        hall.serve_control()
        _print_where(hall)
        print(f"start the agent:    hall-agent --config {hall.config_path}", flush=True)
        _wait_forever(hall)
    except KeyboardInterrupt:
        pass  # stopped while starting: close what was started
    finally:
        hall.close()
    return 0


def cmd_ctl(a: argparse.Namespace) -> int:
    path = Path(a.dir) / "sim.sock"
    try:
        print(control(path, " ".join(a.words) or "help"))
    except OSError as e:
        print(f"hall-sim ctl: no simulator at {path} ({e.strerror}); start `hall-sim` first",
              file=sys.stderr)
        return 3
    return 0


def _demo_catalog(root: Path) -> Path:
    """The built-in catalogue with every service open around the clock, so the demo
    issues tickets whatever the time of day; the real hours are in the guide."""
    from hall_agent.contract.config import DEFAULTS_DIR

    text = (DEFAULTS_DIR / "services.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    lines = []
    for line in text.splitlines():
        if line.startswith("hours = "):
            line = 'hours = "24h"   # demo: open around the clock'
        lines.append(line)
    out = root / "services.toml"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert len(tomllib.loads(out.read_text(encoding="utf-8"))["services"]) == len(
        data["services"])
    return out


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the agent exited with code {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError("the agent did not answer within 30 s")


def _show_kiosk(hall: SimHall, once: bool) -> subprocess.Popen[bytes] | None:
    """The kiosk on this agent: a window where there is a display, else its screens as
    PNGs (rendered offscreen against the live agent)."""
    kiosk = [sys.executable, "-m", "kiosk.main", "--config", str(hall.config_path)]
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if has_display and not once and sys.stdin.isatty():
        print("\nkiosk: opening the touch screen in a window (hall-kiosk --windowed)")
        return subprocess.Popen([*kiosk, "--windowed"], start_new_session=True)
    shots = hall.root / "screens"
    r = subprocess.run([*kiosk, "--screenshot", str(shots), "--screenshot-scale", "0.5"],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    n = len(list(shots.glob("*.png")))
    if r.returncode == 0 and n:
        print(f"\nkiosk: no display here, so its {n} screens were rendered to {shots}/")
    else:
        print(f"\nkiosk: could not render its screens ({r.stderr.strip()[-300:]})")
    return None


def cmd_demo(a: argparse.Namespace) -> int:
    root = Path(a.dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    hall = SimHall(root, api=a.api, catalog=str(_demo_catalog(root)),
                   id_devices=not a.no_id_devices, boards=a.boards,
                   board_transport=a.board_transport)
    demo = None
    if a.mqtt or a.mqtt_port:
        from sim.central_demo import CentralDemo, token_status_url

        listen = f"127.0.0.1:{free_port()}"
        hall.status_url = token_status_url(listen)
        hall.start_central(a.mqtt_port, listen=listen)
        demo = CentralDemo(hall, listen)
    hall.write_config()
    hall.serve_control()
    base = f"http://{a.api}"
    log = (root / "agent.log").open("ab")
    # Its own session: Ctrl-C at hall-sim's prompt is hall-sim's to handle; it stops
    # the agent cleanly (SIGTERM, below) instead of the terminal killing it alone.
    agent = subprocess.Popen([sys.executable, "-m", "hall_agent.main", "--config",
                              str(hall.config_path)], stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    try:
        _wait_healthy(base, agent)
        if hall.central is not None:
            deadline = time.monotonic() + 15
            while (httpx.get(f"{base}/v1/health").json()["mode"] != "central"
                   and time.monotonic() < deadline):
                time.sleep(0.1)
        if demo is not None:
            demo.start()
        mode = httpx.get(f"{base}/v1/health").json()["mode"]
        print(f"hall-edge demo — {hall.hall_name}, agent on {base}, {mode} mode")
        _print_where(hall)
        print(f"agent log           {root / 'agent.log'}\n")
        http = httpx.Client(base_url=base, timeout=10)
        script = [("A", False), ("A", False), ("B", False), ("A", True), ("C", False),
                  ("M", False)]
        for service, prio in script:
            r = http.post("/v1/tickets", json={"service": service, "priority": prio,
                                               **({"priority_reason": "elderly"} if prio
                                                  else {})},
                          headers={"Idempotency-Key": str(uuid.uuid4())})
            t = r.json()
            mark = " 优先(elderly)" if prio else ""
            print(f"  取号 {t['number']} {t['service_name']}{mark}: "
                  f"前面 {t['waiting_ahead']} 人, 约 {t['est_wait_s'] // 60} 分钟, "
                  f"{'printed' if t['printed'] else 'NOT printed: ' + t['print_detail']}")
        first_url = None
        if demo is not None:
            for service in ("A", "B"):
                t = demo.take_at_kiosk2(service)
                first_url = first_url or t.get("status_url")
                print(f"  kiosk-02 取号 {t.get('number')} {t.get('service_name')}: "
                      f"前面 {t.get('waiting_ahead')} 人")
        for window in ("5", "8", "1"):
            if hall.central is not None:  # central mode: the central calls
                cc = hall.central.call(window)
                number = cc.ticket if cc else None
            else:
                number = http.post("/v1/calls", json={"window": window}).json()["ticket"]
            if number:
                print(f"  叫号 请 {number} 号到 {window} 号窗口")
        hall.printer.set_state(paper="end")
        r = http.post("/v1/tickets", json={"service": "B"}).json()
        print(f"  paper out → {r['number']} issued anyway, printed={r['printed']}: "
              f"{r['print_detail']}")
        hall.printer.set_state(paper="ok")
        status = http.get("/v1/printer/status").json()
        print(f"  paper loaded → printer {status['status']}")
        r = http.post(f"/v1/tickets/{r['ticket_id']}/reprint").json()
        print(f"  reprint → printed={r['printed']}")
        hall.printer.wait_for_tickets(len(script) + 1, timeout=5)
        time.sleep(0.3)  # the simulator renders PNGs in its own thread
        pngs = sorted(hall.tickets_dir.glob("*.png"))
        print(f"\n{len(pngs)} ticket PNGs in {hall.tickets_dir}/, e.g. {pngs[0].name}"
              if pngs else "\nno ticket PNGs were written")
        if hall.onbon is not None:
            o = hall.onbon
            o.wait_for(lambda: len(o.areas) >= 2, timeout=15)  # the last two calls
            time.sleep(0.3)  # its PNG is drawn in the simulator's own thread
            print(f"  ONBON hall board: {len(o.areas)} lines lit → {o.png_path}")
        health = http.get("/v1/health").json()
        print(f"health: {health['status']} · printer "
              f"{health['devices'].get('printer', {}).get('status')}")
        if demo is not None:
            demo.print_where(first_url)
        kiosk = _show_kiosk(hall, a.once)
        if not a.once and sys.stdin.isatty():
            print(f"\nthe hall keeps running: try `hallctl --config {hall.config_path} status`"
                  f", or type simulator commands (help). Ctrl-C stops.")
            _wait_forever(hall)
        if kiosk is not None and kiosk.poll() is None:
            kiosk.terminate()
            kiosk.wait(10)
        return 0 if pngs else 1
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(10)
        except subprocess.TimeoutExpired:
            agent.kill()
        if demo is not None:
            demo.close()
        hall.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hall-sim", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=CONTROL_HELP)
    p.add_argument("--dir", default=os.environ.get("HALL_SIM_DIR", str(DEFAULT_DIR)),
                   help="where the config, tickets and logs go (default ./demo-out)")
    p.add_argument("--api", default="127.0.0.1:8765", help="agent API address to configure")
    p.add_argument("--config", help="accepted for symmetry with the other tools; "
                                    "hall-sim writes its own config into --dir")
    p.add_argument("--boards", default=os.environ.get("HALL_SIM_BOARDS", "hall-edge"),
                   choices=["hall-edge", "onbon-bx5", "onbon-bx6"],
                   help="the hall board's model (default hall-edge, on the RS-485 bus)")
    p.add_argument("--board-transport", default="serial", choices=["serial", "tcp"],
                   help="how an ONBON hall board is cabled: its own pty, or TCP")
    sub = p.add_subparsers(dest="cmd")
    r = sub.add_parser("run", help="start the simulated devices (the default)")
    r.add_argument("--catalog", help="service catalogue for the written config")
    r.add_argument("--mqtt", action="store_true",
                   help="also a private Mosquitto and the central stand-in (central mode)")
    r.add_argument("--mqtt-port", type=int, metavar="PORT",
                   help="the private Mosquitto's port (implies --mqtt; default a free one)")
    r.add_argument("--id-devices", action="store_true",
                   help="also an ID-card reader and a QR scanner (ptys)")
    d = sub.add_parser("demo", help="devices + agent + a scripted morning")
    d.add_argument("--once", action="store_true", help="exit after the script")
    d.add_argument("--mqtt", action="store_true",
                   help="central mode: Mosquitto, hall-central and its pages, two kiosks")
    d.add_argument("--mqtt-port", type=int, metavar="PORT",
                   help="the private Mosquitto's port (implies --mqtt; default a free one)")
    d.add_argument("--no-id-devices", action="store_true",
                   help="leave out the simulated ID-card reader and QR scanner")
    c = sub.add_parser("ctl", help="send a command to a running simulator")
    c.add_argument("words", nargs="*")
    a = p.parse_args(argv)
    if a.cmd == "demo":
        return cmd_demo(a)
    if a.cmd == "ctl":
        return cmd_ctl(a)
    if a.cmd is None:
        a.catalog, a.mqtt, a.mqtt_port, a.id_devices = None, False, None, False
    return cmd_run(a)


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
