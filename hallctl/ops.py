"""``hallctl`` operations commands: doctor, probe, mqtt check, outbox, events, logs,
export-logs, udev suggest, completion.

Registered into hallctl's parser by :func:`add_parsers` and dispatched through
:data:`COMMANDS`; the exit codes are hallctl's (``hallctl --help``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from drivers.errors import ConfigError
from hall_agent.contract.config import load_config, resolve_config_path

if TYPE_CHECKING:
    from hallctl.main import Ctl

# The same codes as hallctl.py (documented in its --help).
EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_NO_AGENT, EXIT_DEVICE = 0, 1, 2, 3, 4

#: Commands that must run with a broken config (they report it themselves).
TOLERATE_BAD_CONFIG = frozenset({"doctor", "export-logs", "udev", "completion", "probe"})


def _agent_up(ctl: Ctl) -> bool:
    try:
        return httpx.get(f"{ctl.base}/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


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
    if _agent_up(ctl) and not a.force:
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


# ---------------------------------------------------------------------------- mqtt

@dataclass
class _Step:
    name: str
    ok: bool
    detail: str


def mqtt_check(cfg: Any, timeout_s: float = 5.0) -> list[_Step]:
    """Connect as the agent would (own credentials and TLS, a separate client id) and
    see the central's retained state."""
    import socket
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from hall_agent.contract.topics import Topics

    m = cfg.mqtt
    steps: list[_Step] = []
    try:
        addrs = socket.getaddrinfo(m.host, m.port, type=socket.SOCK_STREAM)
        steps.append(_Step("resolve", True, f"{m.host} → {addrs[0][4][0]}"))
    except OSError as e:
        return [_Step("resolve", False, f"{m.host}: {e}")]
    try:
        socket.create_connection((m.host, m.port), timeout=timeout_s).close()
        steps.append(_Step("tcp", True, f"{m.host}:{m.port} accepts connections"))
    except OSError as e:
        return [*steps, _Step("tcp", False, f"{m.host}:{m.port}: {e} — is the broker running, "
                                            "is the port open?")]
    done = threading.Event()
    got: dict[str, Any] = {}
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                    client_id=f"{cfg.agent.id}-check",
                    protocol=mqtt.MQTTv5 if m.protocol == 5 else mqtt.MQTTv311)
    try:
        if m.username:
            pw = Path(m.password_file).read_text().strip() if m.password_file else None
            c.username_pw_set(m.username, pw)
        if m.tls_ca or m.tls_cert:
            import ssl

            c.tls_set(ca_certs=m.tls_ca, certfile=m.tls_cert, keyfile=m.tls_key,
                      cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    except (OSError, ValueError) as e:
        return [*steps, _Step("credentials", False, f"{e}")]
    topic = Topics(cfg.hall.id, cfg.agent.id).central_state

    def on_connect(cl: Any, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        got["rc"] = rc
        if not rc.is_failure:
            cl.subscribe(topic, qos=1)
        else:
            done.set()

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        got["central"] = msg.payload.decode(errors="replace")
        done.set()

    c.on_connect = on_connect
    c.on_message = on_message
    try:
        c.connect(m.host, m.port, keepalive=10)
    except Exception as e:  # TLS and socket errors come in many types
        return [*steps, _Step("connect", False, f"{type(e).__name__}: {e} — TLS: check "
                                                "tls_ca and the clock")]
    c.loop_start()
    done.wait(timeout_s)
    c.disconnect()
    c.loop_stop()
    rc = got.get("rc")
    if rc is None:
        return [*steps, _Step("connect", False, "no CONNACK from the broker")]
    if rc.is_failure:
        return [*steps, _Step("connect", False, f"refused: {rc} — check username, "
                                                "password_file and the broker's ACL")]
    steps.append(_Step("connect", True, f"logged in as {m.username or '(anonymous)'}"
                                        f"{' over TLS' if m.tls_ca else ''}"))
    central = got.get("central")
    if central is None:
        steps.append(_Step("central", False, f"no retained {topic}: the central has never "
                                             "connected to this broker"))
    else:
        online = '"online":true' in central.replace(" ", "")
        steps.append(_Step("central", online, f"central {'online' if online else 'offline'}"
                                              f" ({central})"))
    return steps


def cmd_mqtt(ctl: Ctl, a: argparse.Namespace) -> int:
    try:
        cfg = load_config(resolve_config_path(a.config))
    except ConfigError as e:
        return ctl.fail(EXIT_USAGE, "config", str(e))
    if cfg.mqtt is None:
        return ctl.fail(EXIT_REFUSED, "standalone", "no [mqtt] in the config: this agent "
                                                    "runs standalone")
    steps = mqtt_check(cfg, a.timeout)
    agent: dict[str, Any] | None = None
    with _suppress_agent_down():
        _, h = ctl.request("GET", "/v1/health")
        agent = h.get("devices", {}).get("mqtt")
    body = {"steps": [s.__dict__ for s in steps], "agent_view": agent,
            "ok": all(s.ok for s in steps)}

    def human() -> None:
        for s in steps:
            print(f"  [{'ok  ' if s.ok else 'FAIL'}] {s.name:<11} {s.detail}")
        if agent:
            print(f"  agent says: {agent['status']} — {agent['detail']}")

    ctl.out(body, human)
    return EXIT_OK if body["ok"] else EXIT_DEVICE


@contextlib.contextmanager
def _suppress_agent_down() -> Iterator[None]:
    """For extras that only help when the agent answers."""
    from hallctl.main import AgentDown

    with contextlib.suppress(AgentDown):
        yield


# ---------------------------------------------------------------------------- outbox, events

def cmd_outbox(ctl: Ctl, a: argparse.Namespace) -> int:
    code, body = ctl.request("GET", "/v1/outbox", params={"limit": a.limit})
    if code != 200:
        return ctl.fail(EXIT_REFUSED, body.get("error", "refused"), str(body))

    def human() -> None:
        if not body["mqtt"]:
            print("standalone mode: no outbox (events stay in the local log: hallctl events)")
            return
        print(f"{body['pending']} event(s) not yet acknowledged by the central"
              + (f", oldest {body['oldest_ts']}" if body["oldest_ts"] else ""))
        for e in body["events"]:
            state = "sent" if e["sent"] else "queued"
            print(f"  #{e['seq']:<6} {e['ts']}  {e['type']:<22} {state}"
                  f"{'  offline' if e['offline'] else ''}")

    ctl.out(body, human)
    return EXIT_OK


def _event_line(e: dict[str, Any]) -> str:
    data = " ".join(f"{k}={v}" for k, v in e["data"].items() if v not in (None, ""))
    return f"#{e['seq']:<6} {e['ts']}  {e['type']:<22} {data}"


def cmd_events(ctl: Ctl, a: argparse.Namespace) -> int:
    code, body = ctl.request("GET", "/v1/event-log", params={"limit": a.limit})
    if code != 200:
        return ctl.fail(EXIT_REFUSED, body.get("error", "refused"), str(body))
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
        with httpx.stream("GET", f"{ctl.base}/v1/events",
                          timeout=httpx.Timeout(10, read=None)) as r:
            kind = ""
            for line in r.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    if ctl.as_json:
                        print(json.dumps({"event": kind, "data": data}, ensure_ascii=False),
                              flush=True)
                    else:
                        stamp = time.strftime("%H:%M:%S")
                        print(f"{stamp} live  {kind:<8} "
                              + " ".join(f"{k}={v}" for k, v in data.items()), flush=True)
                    left -= 1
                    if left == 0:
                        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_OK
    except httpx.HTTPError as e:
        return ctl.fail(EXIT_NO_AGENT, "agent_down", f"the event stream ended: {e}")
    return EXIT_OK


# ---------------------------------------------------------------------------- logs

def cmd_log(ctl: Ctl, a: argparse.Namespace) -> int:
    if a.action == "level":
        if not a.args:
            return ctl.fail(EXIT_USAGE, "usage", "say `hallctl log level debug|info|"
                                                 "warning|error`")
        payload: dict[str, Any] = {"level": a.args[0]}
    elif a.action == "traffic":
        if len(a.args) != 2 or a.args[1] not in ("on", "off"):
            return ctl.fail(EXIT_USAGE, "usage", "say `hallctl log traffic DEVICE on|off`, "
                                                 "e.g. `hallctl log traffic printer on`")
        payload = {"traffic": {a.args[0]: a.args[1] == "on"}}
    else:
        payload = {}
    if payload:
        code, body = ctl.request("POST", "/v1/logging", json=payload)
    else:
        code, body = ctl.request("GET", "/v1/logging")
    if code != 200:
        from hallctl.main import _refused

        return _refused(ctl, code, body)

    def human() -> None:
        print(f"log level: {body['level']}")
        for name, t in body["traffic"].items():
            print(f"raw traffic {name:<10} {'on ' if t['enabled'] else 'off'}  {t['path']}")

    ctl.out(body, human)
    return EXIT_OK


def cmd_export_logs(ctl: Ctl, a: argparse.Namespace) -> int:
    from hall_agent.logs import export_logs
    from hallctl import doctor

    path = resolve_config_path(a.config)
    try:
        cfg = load_config(path)
        data_dir = Path(cfg.agent.data_dir)
    except ConfigError:
        data_dir = Path("/var/lib/hall-edge")
    extra: dict[str, Any] = {}
    with _suppress_agent_down():
        extra["health"] = ctl.request("GET", "/v1/health")[1]
    try:
        ctx = doctor.make_context(a.config, api=a.api)
        extra["doctor"] = doctor.as_json(doctor.run(ctx), ctx)
    except Exception as e:  # the export must work when everything else is broken
        extra["doctor"] = {"error": f"{type(e).__name__}: {e}"}
    out = Path(a.output or f"hall-edge-logs-{time.strftime('%Y%m%d-%H%M%S')}.tar.gz")
    names = export_logs(out, data_dir=data_dir, config_path=path if path.exists() else None,
                        extra=extra, journal_days=a.days)
    body = {"path": str(out.resolve()), "files": names, "bytes": out.stat().st_size}
    ctl.out(body, lambda: print(f"wrote {out} ({body['bytes']} bytes, {len(names)} files; "
                                "no store, keys, passwords or ID data) — send it to "
                                "support"))
    return EXIT_OK


# ---------------------------------------------------------------------------- udev

ROLES = {"printer": "hall-printer", "rs485": "hall-rs485", "idreader": "hall-idreader",
         "scanner": "input/hall-scanner"}
GROUPS = {"tty": "dialout", "input": "input", "usbmisc": "lp", "hidraw": "input"}
CLASSES = ("tty", "input", "usbmisc", "hidraw")


@dataclass
class SysDevice:
    name: str  # ttyUSB0
    subsystem: str  # tty
    usb: Path | None  # the USB device's sysfs directory (has idVendor)
    interface: Path | None  # the USB interface directory (has bInterfaceNumber)
    attrs: dict[str, str]

    @property
    def kernels(self) -> str:
        return self.usb.name if self.usb else ""


def _read(p: Path) -> str:
    try:
        return p.read_text(errors="replace").strip()
    except OSError:
        return ""


def find_device(dev: str, sysfs: Path = Path("/sys")) -> SysDevice:
    """The sysfs view of ``dev`` (/dev/ttyUSB0, /dev/hall-printer, or ttyUSB0)."""
    target: Path | None = None
    real = os.path.realpath(dev) if dev.startswith("/") else dev
    name = os.path.basename(real)
    if sysfs == Path("/sys") and os.path.exists(real):
        st = os.stat(real)
        if st.st_rdev:
            p = sysfs / "dev" / "char" / f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
            if p.exists():
                target = p.resolve()
    subsystem = ""
    for cls in CLASSES:
        p = sysfs / "class" / cls / name
        if p.exists():
            target, subsystem = target or p.resolve(), cls
            break
    if target is None:
        raise FileNotFoundError(f"{dev}: no such device in {sysfs} (is it plugged in? "
                                "`ls /dev/serial/by-id/`)")
    usb = iface = None
    for parent in [target, *target.parents]:
        if iface is None and (parent / "bInterfaceNumber").exists():
            iface = parent
        if (parent / "idVendor").exists():
            usb = parent
            break
        if parent == sysfs:
            break
    attrs: dict[str, str] = {}
    if usb is not None:
        for key in ("idVendor", "idProduct", "serial", "manufacturer", "product",
                    "bNumInterfaces"):
            v = _read(usb / key)
            if v:
                attrs[key] = v
    if iface is not None:
        attrs["bInterfaceNumber"] = _read(iface / "bInterfaceNumber")
    return SysDevice(name, subsystem or "tty", usb, iface, attrs)


# Serial numbers that are not unique (cheap adapters ship them all alike).
_GENERIC_SERIALS = {"0", "0000", "00000000", "123456", "1234567890", "A", "ABCDEF"}


def suggest_rule(d: SysDevice, role: str | None, name: str | None = None) -> tuple[str, str]:
    """(rule, why): a udev rule giving ``d`` a stable name, matched by serial number
    when it has a unique one, else by the USB port it is plugged into."""
    link = name or ROLES.get(role or "", "hall-device")
    if d.usb is None:
        raise ValueError(f"{d.name} is not a USB device; give it a name by its platform path "
                         "(udevadm info --attribute-walk)")
    parts = [f'SUBSYSTEM=="{d.subsystem}"']
    if d.subsystem == "input":
        parts.append('KERNEL=="event*"')
    parts += [f'ATTRS{{idVendor}}=="{d.attrs.get("idVendor", "")}"',
              f'ATTRS{{idProduct}}=="{d.attrs.get("idProduct", "")}"']
    serial = d.attrs.get("serial", "")
    if serial and serial not in _GENERIC_SERIALS:
        parts.append(f'ATTRS{{serial}}=="{serial}"')
        why = f"matched by serial number {serial}: it keeps its name in any USB port"
    else:
        parts.append(f'KERNELS=="{d.kernels}"')
        why = (f"no unique serial number: matched by USB port {d.kernels}; keep it plugged "
               "into this port")
    many = d.attrs.get("bNumInterfaces", "1").strip() not in ("", "1")
    if many and "bInterfaceNumber" in d.attrs:  # one adapter, several ports (FT4232)
        parts.append(f'ATTRS{{bInterfaceNumber}}=="{d.attrs["bInterfaceNumber"]}"')
    group = GROUPS.get(d.subsystem, "dialout")
    parts += [f'SYMLINK+="{link}"', f'GROUP="{group}"', 'MODE="0660"']
    return ", ".join(parts), why


def list_devices(sysfs: Path = Path("/sys")) -> list[SysDevice]:
    out: list[SysDevice] = []
    for cls, patterns in (("tty", ("ttyUSB*", "ttyACM*")), ("input", ("event*",)),
                          ("usbmisc", ("lp*",))):
        base = sysfs / "class" / cls
        for pat in patterns:
            for p in sorted(base.glob(pat)) if base.is_dir() else []:
                try:
                    d = find_device(p.name, sysfs)
                except FileNotFoundError:
                    continue
                if d.usb is not None:
                    out.append(d)
    return out


def cmd_udev(ctl: Ctl, a: argparse.Namespace) -> int:
    sysfs = Path(a.sysfs)
    try:
        devices = [find_device(a.device, sysfs)] if a.device else list_devices(sysfs)
    except FileNotFoundError as e:
        return ctl.fail(EXIT_DEVICE, "not_found", str(e))
    if not devices:
        return ctl.fail(EXIT_DEVICE, "not_found", "no USB serial, input or printer device "
                                                  "is plugged in")
    rows: list[dict[str, Any]] = []
    for d in devices:
        try:
            rule, why = suggest_rule(d, a.role, a.name)
        except ValueError as e:
            rule, why = "", str(e)
        rows.append({"device": d.name, "subsystem": d.subsystem, "usb_path": d.kernels,
                     **{k: v for k, v in d.attrs.items()}, "rule": rule, "why": why})

    def human() -> None:
        print("# add to /etc/udev/rules.d/99-hall-edge.rules, then: sudo udevadm control "
              "--reload && sudo udevadm trigger")
        for r in rows:
            desc = " ".join(filter(None, (r.get("manufacturer"), r.get("product"))))
            print(f"# {r['device']}: {r.get('idVendor', '?')}:{r.get('idProduct', '?')} "
                  f"{desc} at USB {r['usb_path']} — {r['why']}")
            if r["rule"]:
                print(r["rule"])

    ctl.out({"devices": rows}, human)
    return EXIT_OK


# ---------------------------------------------------------------------------- completion

_FILE_OPTS = {"--config", "--output", "-o", "--sysfs", "--sim-dir"}


def bash_completion(parser: argparse.ArgumentParser) -> str:
    """A bash completion script for ``parser`` (commands, sub-actions, options)."""

    def opts(p: argparse.ArgumentParser) -> list[str]:
        return [s for act in p._actions for s in act.option_strings]

    def sub_of(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        for act in p._actions:
            if isinstance(act, argparse._SubParsersAction):
                return dict(act.choices)
        return {}

    def words(p: argparse.ArgumentParser) -> list[str]:
        out = list(sub_of(p))
        for act in p._actions:
            if not act.option_strings and act.choices and not isinstance(
                    act, argparse._SubParsersAction):
                out += [str(c) for c in act.choices]
        return out + opts(p)

    top = parser
    value_opts = sorted({s for act in top._actions if act.option_strings and act.nargs != 0
                         for s in act.option_strings})
    lines = ["# bash completion for hallctl (generated: hallctl completion bash)",
             "_hallctl() {",
             '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
             '  local cmd="" sub="" i w',
             "  for ((i = 1; i < COMP_CWORD; i++)); do",
             '    w="${COMP_WORDS[i]}"',
             '    case "$w" in',
             f"      {'|'.join(value_opts)}) ((i++)) ;;",
             "      -*) ;;",
             '      *) if [[ -z $cmd ]]; then cmd=$w; elif [[ -z $sub ]]; then sub=$w; fi ;;',
             "    esac",
             "  done",
             '  case "$prev" in',
             f"    {'|'.join(sorted(_FILE_OPTS))}) COMPREPLY=($(compgen -f -- \"$cur\")); "
             "return ;;",
             "    --port) COMPREPLY=($(compgen -f -- \"${cur:-/dev/}\")); return ;;",
             "  esac",
             '  local words=""',
             '  case "$cmd $sub" in']
    for name, p in sorted(sub_of(top).items()):
        for sname, sp in sorted(sub_of(p).items()):
            lines.append(f'    "{name} {sname}") words="{" ".join(words(sp))}" ;;')
        lines.append(f'    "{name} "*) words="{" ".join(words(p))}" ;;')
    lines += [f'    *) words="{" ".join(words(top))}" ;;',
              "  esac",
              '  COMPREPLY=($(compgen -W "$words" -- "$cur"))',
              "}",
              "complete -F _hallctl hallctl",
              ""]
    return "\n".join(lines)


def cmd_completion(ctl: Ctl, a: argparse.Namespace) -> int:
    from hallctl.main import build_parser

    sys.stdout.write(bash_completion(build_parser()))
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
    u = sub.add_parser("udev", help="udev rules for stable device names",
                       description="Exit codes: 0 rules printed, 4 no such device.")
    u.add_argument("action", choices=["suggest"])
    u.add_argument("device", nargs="?", help="/dev/ttyUSB0, ttyUSB0 … (default: every "
                                             "USB serial, input and printer device)")
    u.add_argument("--role", choices=sorted(ROLES), help="names it /dev/hall-ROLE")
    u.add_argument("--name", help="the symlink name (overrides --role)")
    u.add_argument("--sysfs", default="/sys", help=argparse.SUPPRESS)
    c = sub.add_parser("completion", help="print the bash completion script")
    c.add_argument("shell", choices=["bash"])


COMMANDS: dict[str, Callable[[Ctl, argparse.Namespace], int]] = {
    "doctor": cmd_doctor, "probe": cmd_probe, "mqtt": cmd_mqtt, "outbox": cmd_outbox,
    "events": cmd_events, "log": cmd_log, "export-logs": cmd_export_logs, "udev": cmd_udev,
    "completion": cmd_completion,
}
