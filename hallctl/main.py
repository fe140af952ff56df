"""``hallctl``: the technicians' and window staff's command line.

It talks to the running agent over the local API. Output is for people by
default and JSON with ``--json`` (one object on stdout) for scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from drivers.errors import ConfigError, HallEdgeError
from hall_agent.contract.config import ENV_CONFIG, load_config, resolve_config_path
from hallctl import bus as hallctl_bus
from hallctl import card as hallctl_card
from hallctl import ops as hallctl_ops

EXIT_OK = 0
EXIT_REFUSED = 1  # the agent refused the request (4xx): see the message
EXIT_USAGE = 2  # bad command line or configuration
EXIT_NO_AGENT = 3  # the agent is not running or not reachable
EXIT_DEVICE = 4  # a device needs attention (fault or degraded), or a print failed

EXIT_CODES = f"""exit codes:
  {EXIT_OK}  done; every device ok
  {EXIT_REFUSED}  the agent refused the request (the message says why)
  {EXIT_USAGE}  bad command line or configuration
  {EXIT_NO_AGENT}  the agent is not running or not reachable (systemctl status hall-agent)
  {EXIT_DEVICE}  a device needs attention (fault or degraded), or the printer did not print
"""

STATUS_ZH = {"ok": "正常", "degraded": "需处理", "fault": "故障", "absent": "未配置"}
TICKET_ZH = {"waiting": "等候中", "called": "办理中", "done": "已办结", "no_show": "过号",
             "cancelled": "已取消"}


class Ctl:
    def __init__(self, base: str, as_json: bool, timeout: float = 10.0) -> None:
        self.base = base
        self.as_json = as_json
        self.http = httpx.Client(base_url=base, timeout=timeout)

    def request(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        try:
            r = self.http.request(method, path, **kw)
        except httpx.ConnectError:
            raise AgentDown(f"the agent is not running at {self.base} (connection refused): "
                            "start it with `systemctl start hall-agent`, or check [agent] api "
                            "in the config") from None
        except httpx.TimeoutException:
            raise AgentDown(f"the agent at {self.base} did not answer in time: it may be "
                            "hung; see `journalctl -u hall-agent`") from None
        try:
            body = r.json()
        except ValueError:
            body = {"error": "bad_response", "message": r.text[:200]}
        return r.status_code, body

    def out(self, data: Any, human: Callable[[], None]) -> None:
        if self.as_json:
            print(json.dumps(data, ensure_ascii=False, indent=2))
        else:
            human()

    def fail(self, code: int, error: str, message: str) -> int:
        """Say what went wrong (``{"error", "message"}`` with ``--json``); returns ``code``."""
        if self.as_json:
            print(json.dumps({"error": error, "message": message}, ensure_ascii=False))
        else:
            print(f"hallctl: {message}", file=sys.stderr)
        return code


class AgentDown(HallEdgeError, ConnectionError):
    """The agent's local API did not answer (refused, or in time)."""


def _refused(ctl: Ctl, status: int, body: Any) -> int:
    if ctl.as_json:
        print(json.dumps({"http_status": status, **body}, ensure_ascii=False, indent=2))
    else:
        field = f" [{body.get('field')}]" if body.get("field") else ""
        print(f"refused ({status}){field}: {body.get('message', body)}", file=sys.stderr)
    return EXIT_REFUSED


def _hhmm(iso: str | None) -> str:
    return datetime.fromisoformat(iso).strftime("%H:%M:%S") if iso else "-"


# ---------------------------------------------------------------------------- commands

def cmd_status(ctl: Ctl, a: argparse.Namespace) -> int:
    _, h = ctl.request("GET", "/v1/health")
    _, q = ctl.request("GET", "/v1/queue")

    def human() -> None:
        print(f"{h['hall_name']} ({h['hall']}) · agent {h['agent']} · {h['mode']} · "
              f"v{h['version']}")
        print(f"status: {h['status']} ({STATUS_ZH.get(h['status'], '')})")
        for name, d in h["devices"].items():
            print(f"  {name:<14} {d['status']:<9} {d['detail']}")
        waiting = sum(s["waiting"] for s in q["services"].values())
        serving = [f"{w}:{x['serving']}" for w, x in q["windows"].items() if x["serving"]]
        print(f"waiting: {waiting} · serving: {' '.join(serving) or '-'}")

    ctl.out({"health": h, "queue": q}, human)
    return EXIT_OK if h["status"] == "ok" else EXIT_DEVICE


def cmd_devices(ctl: Ctl, a: argparse.Namespace) -> int:
    _, h = ctl.request("GET", "/v1/health")

    def human() -> None:
        if not h["devices"]:
            print("no devices configured")
        for name, d in h["devices"].items():
            print(f"{name:<14} {d['status']:<9} {STATUS_ZH.get(d['status'], ''):<4} "
                  f"{d['detail']}")

    ctl.out(h["devices"], human)
    bad = any(d["status"] in ("fault", "degraded") for d in h["devices"].values())
    return EXIT_DEVICE if bad else EXIT_OK


def cmd_tickets(ctl: Ctl, a: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": a.limit}
    if a.day:
        params["day"] = a.day
    if a.status:
        params["status"] = a.status
    code, body = ctl.request("GET", "/v1/tickets", params=params)
    if code != 200:
        return _refused(ctl, code, body)

    def human() -> None:
        rows = body["tickets"]
        if not rows:
            print("no tickets")
        for t in rows:
            flags = " ".join(f for f, on in (("priority", t["priority"]),
                                            ("offline", t["offline"]),
                                            ("unprinted", not t["printed"])) if on)
            win = f"window {t['window']}" if t["window"] else ""
            print(f"{t['number']:<6} {_hhmm(t['issued_at'])} {t['status']:<8} "
                  f"{TICKET_ZH[t['status']]:<4} {win:<10} {flags}")

    ctl.out(body, human)
    return EXIT_OK


def cmd_call(ctl: Ctl, a: argparse.Namespace) -> int:
    code, body = ctl.request("POST", "/v1/calls",
                             json={"window": a.window, "kind": "recall" if a.recall else "call"})
    if code != 201:
        return _refused(ctl, code, body)

    def human() -> None:
        if body["ticket"] is None:
            print(f"window {a.window}: nobody is waiting")
        else:
            verb = "recalled" if body["kind"] == "recall" else "called"
            print(f"window {a.window}: {verb} {body['ticket']} "
                  f"(请 {body['ticket']} 号到 {a.window} 号窗口)")

    ctl.out(body, human)
    return EXIT_OK


def cmd_window(ctl: Ctl, a: argparse.Namespace) -> int:
    code, body = ctl.request("POST", f"/v1/windows/{a.window}", json={"action": a.action})
    if code != 200:
        return _refused(ctl, code, body)
    ctl.out(body, lambda: print(f"window {a.window}: "
                                f"{'paused' if body['paused'] else 'open'}, serving "
                                f"{body['serving'] or '-'}"))
    return EXIT_OK


def cmd_printer(ctl: Ctl, a: argparse.Namespace) -> int:
    if a.action == "status":
        _, body = ctl.request("GET", "/v1/printer/status")
        ctl.out(body, lambda: print(f"printer: {body['status']} "
                                    f"({STATUS_ZH.get(body['status'], '')}) {body['detail']}"))
        return EXIT_DEVICE if body["status"] in ("fault", "degraded") else EXIT_OK
    _, body = ctl.request("POST", "/v1/printer/test")
    ctl.out(body, lambda: print("test page printed" if body["printed"]
                                else f"NOT printed: {body['detail']}"))
    return EXIT_OK if body["printed"] else EXIT_DEVICE


# ---------------------------------------------------------------------------- main

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hallctl", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="hall-edge technicians' tool: talks to the running hall-agent.",
        epilog=EXIT_CODES + f"\nconfig: --config, else ${ENV_CONFIG}, else "
                            "/etc/hall-edge/agent.toml")
    p.add_argument("--config", help="agent.toml (to find the agent's API address)")
    p.add_argument("--api", help="agent address host:port (overrides the config)")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    sub.add_parser("status", help="hall, mode, device health and queue at a glance")
    sub.add_parser("devices", help="health of each device")
    t = sub.add_parser("tickets", help="today's tickets, newest first")
    t.add_argument("--day", help="YYYY-MM-DD (default today)")
    t.add_argument("--status", choices=sorted(TICKET_ZH))
    t.add_argument("--limit", type=int, default=50)
    c = sub.add_parser("call", help="call the next ticket to a window (standalone mode)")
    c.add_argument("window")
    c.add_argument("--recall", action="store_true", help="call the current ticket again")
    w = sub.add_parser("window", help="pause, resume, no-show or finish at a window")
    w.add_argument("window")
    w.add_argument("action", choices=["pause", "resume", "no_show", "finish"])
    pr = sub.add_parser("printer", help="printer status or a test page")
    pr.add_argument("action", choices=["status", "test"])
    hallctl_bus.add_parsers(sub)
    hallctl_ops.add_parsers(sub)
    hallctl_card.add_parsers(sub)
    return p


COMMANDS: dict[str, Callable[[Ctl, argparse.Namespace], int]] = {
    "status": cmd_status, "devices": cmd_devices, "tickets": cmd_tickets, "call": cmd_call,
    "window": cmd_window, "printer": cmd_printer,
    **hallctl_bus.COMMANDS,
    **hallctl_ops.COMMANDS,
    **hallctl_card.COMMANDS,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        a = parser.parse_args(argv)
    except SystemExit as e:
        return EXIT_USAGE if e.code not in (0, None) else EXIT_OK
    api = a.api
    if not api:
        try:
            api = load_config(resolve_config_path(a.config)).agent.api
        except ConfigError as e:
            if a.cmd in hallctl_ops.TOLERATE_BAD_CONFIG:
                pass  # doctor & co. report a broken config themselves
            elif a.config or resolve_config_path(None).exists():
                print(f"hallctl: {e}", file=sys.stderr)
                return EXIT_USAGE
            api = "127.0.0.1:8765"  # no config on this machine: the documented default
    ctl = Ctl(f"http://{api}", a.json)
    try:
        return COMMANDS[a.cmd](ctl, a)
    except AgentDown as e:
        if a.json:
            print(json.dumps({"error": "agent_down", "message": str(e)}))
        else:
            print(f"hallctl: {e}", file=sys.stderr)
        return EXIT_NO_AGENT


if __name__ == "__main__":
    sys.exit(main())
