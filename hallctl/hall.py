"""``hallctl status|devices|tickets|call|window|printer``: the hall at a glance and the
window staff's actions, through the running agent."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from hall_agent.contract.api import CallIn, DeviceState, WindowActionIn
from hallctl.common import EXIT_DEVICE, EXIT_OK, EXIT_USAGE, STATUS_ZH, Ctl

TICKET_ZH = {"waiting": "等候中", "called": "办理中", "done": "已办结", "no_show": "过号",
             "cancelled": "已取消"}


def _hhmm(iso: str | None) -> str:
    """A time the agent sent (ISO 8601 with the hall's offset), as the hall's clock."""
    return datetime.fromisoformat(iso).strftime("%H:%M:%S") if iso else "-"


def hall_day(ctl: Ctl, text: str | None) -> str | None:
    """``--day``: YYYY-MM-DD, ``today`` or ``yesterday``, on the hall's calendar (the
    machine's clock may run on UTC); ValueError when it is none of those."""
    if text is None:
        return None
    today = ctl.now().date()
    named = {"today": today, "yesterday": today - timedelta(days=1)}
    if text.lower() in named:
        return named[text.lower()].isoformat()
    return date.fromisoformat(text).isoformat()


def device_lines(devices: dict[str, DeviceState], indent: str = "") -> list[str]:
    """One line per device; the devices behind one missing adapter (the same detail,
    starting with the adapter) in one line: the technician has one thing to fix."""
    def adapter(detail: str) -> str:  # "RS-485 adapter /dev/ttyUSB1", or ""
        return " ".join(detail.split(" ")[:3]) if detail.startswith("RS-485 adapter ") \
            else ""

    shared: dict[str, list[str]] = {}
    for name, d in devices.items():
        if adapter(d.detail):
            shared.setdefault(adapter(d.detail), []).append(name)
    lines, said = [], set()
    for name, d in devices.items():
        port = adapter(d.detail)
        names = shared.get(port, []) if port else []
        if len(names) > 1:
            if port not in said:  # the first device's words, for the whole adapter
                said.add(port)
                what, _, fix = d.detail.partition(": ")
                lines.append(f"{indent}{what}: {len(names)} devices unreachable "
                             f"({', '.join(names)}) — {fix}")
            continue
        lines.append(f"{indent}{name:<14} {d.status:<9} {STATUS_ZH.get(d.status, ''):<4} "
                     f"{d.detail}")
    return lines


def cmd_status(ctl: Ctl, a: argparse.Namespace) -> int:
    h = ctl.agent.health()
    q = ctl.agent.queue()

    def human() -> None:
        print(f"{h.hall_name} ({h.hall}) · agent {h.agent} · {h.mode} · v{h.version}")
        print(f"status: {h.status} ({STATUS_ZH.get(h.status, '')})")
        for line in device_lines(h.devices, "  "):
            print(line)
        waiting = sum(s.waiting for s in q.services.values())
        serving = [f"{w}:{x.serving}" for w, x in q.windows.items() if x.serving]
        print(f"waiting: {waiting} · serving: {' '.join(serving) or '-'}")

    ctl.out({"health": h.model_dump(mode="json"), "queue": q.model_dump(mode="json")}, human)
    return EXIT_OK if h.status == "ok" else EXIT_DEVICE


def cmd_devices(ctl: Ctl, a: argparse.Namespace) -> int:
    h = ctl.agent.health()

    def human() -> None:
        if not h.devices:
            print("no devices configured")
        for line in device_lines(h.devices):
            print(line)

    ctl.out({k: d.model_dump(mode="json") for k, d in h.devices.items()}, human)
    bad = any(d.status in ("fault", "degraded") for d in h.devices.values())
    return EXIT_DEVICE if bad else EXIT_OK


def cmd_tickets(ctl: Ctl, a: argparse.Namespace) -> int:
    try:
        day = hall_day(ctl, a.day)
    except ValueError:
        return ctl.fail(EXIT_USAGE, "usage", f"--day {a.day}: give YYYY-MM-DD (e.g. "
                        f"{ctl.now():%Y-%m-%d}), today or yesterday")
    if a.limit < 1:
        return ctl.fail(EXIT_USAGE, "usage", "--limit must be 1 or more")
    body = ctl.agent.tickets(day=day, status=a.status, limit=a.limit)

    def human() -> None:
        print(f"{day or ctl.now().date().isoformat()} (hall time, {ctl.tz.key}):")
        if not body.tickets:
            print("no tickets")
        for t in body.tickets:
            flags = " ".join(f for f, on in (("priority", t.priority),
                                            ("offline", t.offline),
                                            ("unprinted", not t.printed)) if on)
            win = f"window {t.window}" if t.window else ""
            print(f"{t.number:<6} {_hhmm(t.issued_at)} {t.status:<8} "
                  f"{TICKET_ZH[t.status]:<4} {win:<10} {flags}")

    ctl.out(body.model_dump(mode="json"), human)
    return EXIT_OK


def cmd_call(ctl: Ctl, a: argparse.Namespace) -> int:
    # model_construct: the agent judges the window (its 422 names the field), as always.
    body = ctl.agent.call(CallIn.model_construct(window=a.window,
                                                 kind="recall" if a.recall else "call"))

    def human() -> None:
        if body.finished:
            print(f"window {a.window}: {body.finished} finished (已办结)")
        if body.ticket is None:
            print(f"window {a.window}: nobody is waiting")
        else:
            verb = "recalled" if body.kind == "recall" else "called"
            print(f"window {a.window}: {verb} {body.ticket} "
                  f"(请 {body.ticket} 号到 {a.window} 号窗口)")

    ctl.out(body.model_dump(mode="json"), human)
    return EXIT_OK


def cmd_window(ctl: Ctl, a: argparse.Namespace) -> int:
    body = ctl.agent.window_action(a.window, WindowActionIn(action=a.action))

    def human() -> None:
        if body.ended:
            how = "did not come (过号)" if a.action == "no_show" else "finished (已办结)"
            print(f"window {a.window}: {body.ended} {how}")
        print(f"window {a.window}: {'paused' if body.paused else 'open'}, "
              f"serving {body.serving or '-'}")

    ctl.out(body.model_dump(mode="json"), human)
    return EXIT_OK


def cmd_printer(ctl: Ctl, a: argparse.Namespace) -> int:
    if a.action == "status":
        st = ctl.agent.printer_status()
        ctl.out(st.model_dump(mode="json"),
                lambda: print(f"printer: {st.status} ({STATUS_ZH.get(st.status, '')}) "
                              f"{st.detail}"))
        return EXIT_DEVICE if st.status in ("fault", "degraded") else EXIT_OK
    done = ctl.agent.printer_test()
    ctl.out(done.model_dump(mode="json"),
            lambda: print("test page printed" if done.printed
                          else f"NOT printed: {done.detail}"))
    return EXIT_OK if done.printed else EXIT_DEVICE


def add_parsers(sub: Any) -> None:
    sub.add_parser("status", help="hall, mode, device health and queue at a glance")
    sub.add_parser("devices", help="health of each device")
    t = sub.add_parser("tickets", help="today's tickets, newest first")
    t.add_argument("--day", help="YYYY-MM-DD, today or yesterday, in hall time "
                                 "([hall] timezone; default today)")
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


COMMANDS: dict[str, Callable[[Ctl, argparse.Namespace], int]] = {
    "status": cmd_status, "devices": cmd_devices, "tickets": cmd_tickets, "call": cmd_call,
    "window": cmd_window, "printer": cmd_printer,
}
