"""``hallctl`` operations commands: doctor, probe, mqtt check, outbox, events, logs,
export-logs (udev suggest and completion have their own modules).

Registered into hallctl's parser by :func:`add_parsers` and dispatched through
:data:`COMMANDS`; the exit codes are hallctl's (``hallctl --help``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hall_agent.contract.api import LoggingIn
from hall_agent.contract.client import AgentRefused, AgentUnavailable
from hall_agent.contract.config import resolve_config_path
from hallctl.common import (
    EXIT_DEVICE,
    EXIT_NO_AGENT,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    Ctl,
    config_data_dir,
)
from hallctl.mqtt_check import cmd_mqtt

LOG_LEVELS = ("debug", "info", "warning", "error")

# ---------------------------------------------------------------------------- doctor

def cmd_doctor(ctl: Ctl, a: argparse.Namespace) -> int:
    from hallctl import doctor

    try:
        ctx = doctor.make_context(a.config, user=a.user, api=a.api)
    except KeyError:
        return ctl.fail(EXIT_USAGE, "usage", f"no such user {a.user!r}")
    findings = doctor.run(ctx)
    ctl.out(doctor.as_json(findings, ctx), lambda: print(doctor.render(findings, ctx)))
    return doctor.exit_code(findings)


# ---------------------------------------------------------------------------- probe

def cmd_probe(ctl: Ctl, a: argparse.Namespace) -> int:
    """Talk to one device straight on its port, with the agent stopped."""
    if ctl.agent_up() and not a.force:
        return ctl.fail(EXIT_REFUSED, "agent_running",
                        f"the agent is running ({ctl.base}) and owns the devices: stop it first "
                        "(sudo systemctl stop hall-agent), ask it instead (hallctl devices, "
                        "hallctl printer status), or add --force")
    if a.kind == "printer":
        from drivers.printer import TicketPrinter
        from drivers.printer_config import PrinterConfig

        try:
            pc = PrinterConfig(transport="serial", port=a.port,
                               baudrate=a.baudrate or 115200, status_timeout_ms=a.timeout_ms)
        except ValueError as e:
            return ctl.fail(EXIT_USAGE, "usage", str(e).splitlines()[-1])
        p = TicketPrinter(pc)
        try:
            st = p.status()
            h = st.health(timeout_ms=pc.status_timeout_ms)
        finally:
            p.close()
        body = {"port": a.port, "kind": "printer", "status": h.status.value,
                "detail": h.detail}
        ctl.out(body, lambda: print(f"printer on {a.port}: {h.status.value}"
                                    f"{f' — {h.detail}' if h.detail else ''}"))
        return EXIT_OK if h.status.value == "ok" else EXIT_DEVICE
    from drivers.bus import BusError, BusMaster, NoReply, PortUnavailable

    if a.address is None:
        return ctl.fail(EXIT_USAGE, "usage", "probe --kind bus needs --address N "
                                              "(or `hallctl bus scan PORT` to find them)")
    m = BusMaster(a.port, a.baudrate or 9600, timeout_s=a.timeout_ms / 1000, retries=1)
    try:
        info = m.probe(a.address, force=True, retries=1)
    except PortUnavailable as e:
        return ctl.fail(EXIT_DEVICE, "port", str(e))
    except NoReply:
        return ctl.fail(EXIT_DEVICE, "no_reply",
                        f"address {a.address} on {a.port}: no reply — check the A/B wires, the "
                        "address switches and the baud rate")
    except BusError as e:
        return ctl.fail(EXIT_DEVICE, "bus", f"address {a.address} on {a.port}: {e}")
    finally:
        m.close()
    body = {"port": a.port, "kind": "bus", "address": a.address, "device_kind": info.kind,
            "lines": info.lines, "columns": info.columns, "firmware": info.firmware}
    ctl.out(body, lambda: print(f"address {a.address} on {a.port}: kind {info.kind}, "
                                f"{info.lines}x{info.columns}, firmware {info.firmware}"))
    return EXIT_OK


# ---------------------------------------------------------------------------- outbox, events

def cmd_outbox(ctl: Ctl, a: argparse.Namespace) -> int:
    if a.limit < 1:
        return ctl.fail(EXIT_USAGE, "usage", "--limit must be 1 or more")
    body = ctl.agent.outbox(a.limit)

    def human() -> None:
        if not body.mqtt:
            print("standalone mode: no outbox (events stay in the local log: hallctl events)")
            return
        print(f"{body.pending} event(s) not yet acknowledged by the central"
              + (f", oldest {body.oldest_ts}" if body.oldest_ts else ""))
        for e in body.events:
            state = "sent" if e.sent else "queued"
            print(f"  #{e.seq:<6} {e.ts}  {e.type:<22} {state}"
                  f"{'  offline' if e.offline else ''}")

    ctl.out(body.model_dump(mode="json"), human)
    return EXIT_OK


def _event_line(e: dict[str, Any]) -> str:
    data = " ".join(f"{k}={v}" for k, v in e["data"].items() if v not in (None, ""))
    return f"#{e['seq']:<6} {e['ts']}  {e['type']:<22} {data}"


def cmd_events(ctl: Ctl, a: argparse.Namespace) -> int:
    if a.limit < 0 or a.count < 0:
        return ctl.fail(EXIT_USAGE, "usage", "--limit and --count must be 0 or more")
    # --limit 0: no past events (with --follow: only what happens from now on).
    body: dict[str, Any] = ({"events": [], "last_seq": 0} if a.limit == 0
                            else ctl.agent.event_log(a.limit).model_dump(mode="json"))
    if not a.follow:
        def human() -> None:
            for e in body["events"]:
                print(_event_line(e))
            if not body["events"]:
                print("no events yet")

        ctl.out(body, human)
        return EXIT_OK
    # Follow: the durable log first, then the live stream (SSE), one line (or JSON
    # object) per event, until Ctrl-C.
    for e in body["events"]:
        print(json.dumps(e, ensure_ascii=False) if ctl.as_json else _event_line(e), flush=True)
    left = a.count or -1
    try:
        for kind, data in ctl.agent.events(read_timeout_s=None):
            if ctl.as_json:
                print(json.dumps({"event": kind, "data": data}, ensure_ascii=False),
                      flush=True)
            else:  # hall time with its offset, as the logged events' ts
                stamp = ctl.now().isoformat(timespec="milliseconds")
                print(f"live    {stamp}  {kind:<22} "
                      + " ".join(f"{k}={v}" for k, v in data.items()), flush=True)
            left -= 1
            if left == 0:
                return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_OK
    except AgentUnavailable as down:
        return ctl.fail(EXIT_NO_AGENT, "agent_down",
                        f"the event stream ended: {down.__cause__ or down}")
    return EXIT_OK


# ---------------------------------------------------------------------------- logs

def cmd_log(ctl: Ctl, a: argparse.Namespace) -> int:
    if a.action == "level":
        level = a.args[0].lower() if len(a.args) == 1 else ""
        if level not in LOG_LEVELS:
            return ctl.fail(EXIT_USAGE, "usage", "say `hallctl log level debug|info|"
                                                 "warning|error`")
        payload: dict[str, Any] = {"level": level}
    elif a.action == "traffic":
        if len(a.args) != 2 or a.args[1] not in ("on", "off"):
            return ctl.fail(EXIT_USAGE, "usage", "say `hallctl log traffic DEVICE on|off`, "
                                                 "e.g. `hallctl log traffic printer on`")
        payload = {"traffic": {a.args[0]: a.args[1] == "on"}}
    else:
        payload = {}
    # model_construct: the agent judges the level (its 422 names the field), as always.
    body = (ctl.agent.set_logging(LoggingIn.model_construct(**payload)) if payload
            else ctl.agent.logging())

    def human() -> None:
        print(f"log level: {body.level}")
        for name, t in body.traffic.items():
            print(f"raw traffic {name:<10} {'on ' if t.enabled else 'off'}  {t.path}")

    ctl.out(body.model_dump(mode="json"), human)
    return EXIT_OK


def cmd_export_logs(ctl: Ctl, a: argparse.Namespace) -> int:
    from hall_agent.logs import export_logs
    from hallctl import doctor

    path = resolve_config_path(a.config)
    data_dir = config_data_dir(a.config) or Path("/var/lib/hall-edge")
    extra: dict[str, Any] = {}
    with contextlib.suppress(AgentUnavailable, AgentRefused):  # only if the agent answers
        extra["health"] = ctl.agent.health().model_dump(mode="json")
    try:
        ctx = doctor.make_context(a.config, api=a.api)
        extra["doctor"] = doctor.as_json(doctor.run(ctx), ctx)
    except Exception as e:  # the export must work when everything else is broken
        extra["doctor"] = {"error": f"{type(e).__name__}: {e}"}
    # Named in hall time with its offset: support reads it against the hall's day.
    out = Path(a.output or f"hall-edge-logs-{ctl.now():%Y%m%d-%H%M%S%z}.tar.gz")
    names = export_logs(out, data_dir=data_dir, config_path=path if path.exists() else None,
                        extra=extra, journal_days=a.days)
    body = {"path": str(out.resolve()), "files": names, "bytes": out.stat().st_size}
    ctl.out(body, lambda: print(f"wrote {out} ({body['bytes']} bytes, {len(names)} files; "
                                "no store, keys, passwords or ID data) — send it to "
                                "support"))
    return EXIT_OK


# ---------------------------------------------------------------------------- registration

def add_parsers(sub: Any) -> None:
    d = sub.add_parser("doctor", help="check config, ports, permissions, devices, broker, "
                                      "TLS, disk and clock; print what to fix",
                       description="Exit codes: 0 nothing to fix (warnings may be listed), "
                                   "4 at least one check failed, 2 bad command line. The "
                                   "fixes are tabled in docs/troubleshooting.md.")
    d.add_argument("--user", help="judge permissions for this user (default hall-edge)")
    p = sub.add_parser("probe", help="ask one device straight on its port (agent stopped)",
                       description="Exit codes: 0 the device answers and is ok, 4 it is "
                                   "faulty or silent, 1 the agent is running (stop it or "
                                   "--force), 2 bad command line.")
    p.add_argument("--port", required=True, help="serial port, e.g. /dev/hall-printer")
    p.add_argument("--kind", choices=["printer", "bus"], default="printer")
    p.add_argument("--address", type=int, help="bus address (with --kind bus)")
    p.add_argument("--baudrate", type=int, help="default 115200 printer, 9600 bus")
    p.add_argument("--timeout-ms", type=int, default=500, help="answer wait, in milliseconds")
    p.add_argument("--force", action="store_true", help="even if the agent is running")
    m = sub.add_parser("mqtt", help="MQTT: connect as the agent would and see the central",
                       description="Exit codes: 0 connected and the central is online, 4 a "
                                   "step failed (the output says which), 1 standalone "
                                   "config, 2 bad config.")
    m.add_argument("action", choices=["check"])
    m.add_argument("--timeout", type=float, default=5.0, help="seconds")
    o = sub.add_parser("outbox", help="events the central has not acknowledged yet")
    o.add_argument("--limit", type=int, default=20)
    e = sub.add_parser("events", help="the event log; --follow for live events")
    e.add_argument("-f", "--follow", action="store_true")
    e.add_argument("--limit", type=int, default=20, help="past events to show first")
    e.add_argument("--count", type=int, default=0, help="with --follow: stop after N live "
                                                        "events (0 = never)")
    lg = sub.add_parser("log", help="log level and raw-traffic logs at run time")
    lg.add_argument("action", choices=["show", "level", "traffic"])
    lg.add_argument("args", nargs="*", help="level: LEVEL; traffic: DEVICE on|off")
    x = sub.add_parser("export-logs", help="a tarball of logs for support (no personal data)",
                       description="Works with the agent stopped and a broken config. Exit "
                                   "code 0 when the file is written.")
    x.add_argument("-o", "--output", help="file to write (default ./hall-edge-logs-….tar.gz)")
    x.add_argument("--days", type=int, default=7, help="journal days to include")


COMMANDS: dict[str, Callable[[Ctl, argparse.Namespace], int]] = {
    "doctor": cmd_doctor, "probe": cmd_probe, "mqtt": cmd_mqtt, "outbox": cmd_outbox,
    "events": cmd_events, "log": cmd_log, "export-logs": cmd_export_logs,
}
