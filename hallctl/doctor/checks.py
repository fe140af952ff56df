"""The doctor's checks, in the order they run and appear in docs/troubleshooting.md."""

from __future__ import annotations

import grp
import os
import pwd
import socket
import ssl
import stat
import time
from pathlib import Path

from drivers.errors import ConfigError
from hall_agent.contract.config import Config, load_catalog
from hallctl.doctor.table import (
    CERT_WARN_DAYS,
    MIN_FREE_MB,
    SERVICE_USER,
    WARN_FREE_MB,
    CheckSpec,
    Context,
    Finding,
    Problem,
    _group_name,
    bad,
    check,
    may,
    ok,
)

CONFIG = CheckSpec("config", "Configuration", "agent.toml and the service catalogue load "
                   "and validate (what `hall-agent --check` does), and the agent's user can "
                   "read them", (
    Problem("config.missing", "config file not found",
            "install it: `sudo systemd/install.sh` puts the example at "
            "/etc/hall-edge/agent.toml; or give `--config PATH` / HALL_EDGE_CONFIG"),
    Problem("config.invalid", "a key is unknown, mistyped or out of range; the agent does "
            "not start", "edit the key named in the message in {path}, then "
                         "`hall-agent --check --config {path}` and `systemctl restart hall-agent`"),
    Problem("config.unreadable", "the agent's user cannot read the config or catalogue",
            "`sudo chown root:{group} {path} && sudo chmod 0640 {path}`"),
))


@check(CONFIG)
def check_config(ctx: Context, spec: CheckSpec) -> list[Finding]:
    p = ctx.config_path
    if not p.exists():
        return [bad(spec, "config.missing", f"{p}: not found")]
    if ctx.cfg is None:
        return [bad(spec, "config.invalid", ctx.config_error, path=p)]
    out: list[Finding] = []
    try:
        catalog = load_catalog(ctx.cfg.catalog_path, ctx.cfg.source)
    except ConfigError as e:
        return [bad(spec, "config.invalid", str(e), path=ctx.cfg.catalog_path)]
    for f in (p, ctx.cfg.catalog_path):
        if not may(ctx.user, f, 4):
            out.append(bad(spec, "config.unreadable",
                           f"{f}: not readable by the agent's user {ctx.user.name}",
                           path=f, group=SERVICE_USER))
    if not out:
        out.append(ok(spec, f"{p}: valid ({len(catalog.services)} services, "
                            f"{len(catalog.windows)} windows)"))
    return out


DATA = CheckSpec("data_dir", "Data directory", "[agent] data_dir exists and the agent's user "
                 "may write it (the SQLite store, logs)", (
    Problem("data_dir.missing", "data_dir does not exist",
            "`sudo install -d -o {user} -g {user} -m 0750 {path}` (install.sh does this)"),
    Problem("data_dir.not_writable", "the agent's user cannot write data_dir; the agent "
            "stops with \"cannot open the store\"", "`sudo chown -R {user}: {path}`"),
))


@check(DATA)
def check_data_dir(ctx: Context, spec: CheckSpec) -> list[Finding]:
    if ctx.cfg is None:
        return [Finding(spec.id, "skip", "no valid config")]
    d = Path(ctx.cfg.agent.data_dir)
    if not d.is_dir():
        return [bad(spec, "data_dir.missing", f"{d}: does not exist", user=ctx.user.name, path=d)]
    if not may(ctx.user, d, 7):
        return [bad(spec, "data_dir.not_writable",
                    f"{d}: not writable by {ctx.user.name} (owner "
                    f"{pwd.getpwuid(d.stat().st_uid).pw_name})", user=ctx.user.name, path=d)]
    return [ok(spec, f"{d}: writable by {ctx.user.name}")]


DISK = CheckSpec("disk", "Disk space", f"free space where data_dir lives (fail under "
                 f"{MIN_FREE_MB} MB, warn under {WARN_FREE_MB} MB)", (
    Problem("disk.full", "the disk is (nearly) full: tickets cannot be stored",
            "`hallctl export-logs` for support, then free space: `sudo journalctl "
            "--vacuum-size=50M`, remove old files under /var/log; check `du -xh / | sort -h`"),
    Problem("disk.low", "the disk is getting full", "as for a full disk, before it is"),
))


@check(DISK)
def check_disk(ctx: Context, spec: CheckSpec) -> list[Finding]:
    where = ctx.cfg.agent.data_dir if ctx.cfg else "/"
    probe = Path(where)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free, total = ctx.disk_free(str(probe))
    mb = free // 1_000_000
    msg = f"{probe}: {mb} MB free of {total // 1_000_000} MB"
    if mb < MIN_FREE_MB:
        return [bad(spec, "disk.full", msg)]
    if mb < WARN_FREE_MB:
        return [bad(spec, "disk.low", msg, warn=True)]
    return [ok(spec, msg)]


def configured_ports(cfg: Config) -> list[tuple[str, str]]:
    """(device, port path) of every device at a device path, in config order."""
    out: list[tuple[str, str]] = []
    if cfg.printer and cfg.printer.transport == "serial" and cfg.printer.port:
        out.append(("printer", cfg.printer.port))
    for i, b in enumerate(cfg.boards):
        out.append((f"[[boards]] #{i + 1}", b.port))
    for i, e in enumerate(cfg.evaluators):
        out.append((f"[[evaluators]] #{i + 1}", e.port))
    if cfg.id_reader:
        out.append(("id_reader", cfg.id_reader.port))
    return [(d, p) for d, p in out if "://" not in p]


PORTS = CheckSpec("ports", "Device ports", "each configured serial port exists, is a "
                  "character device, has a stable name, and the agent's user may open it", (
    Problem("ports.missing", "a configured port does not exist",
            "plug the {device}'s USB cable in (`ls -l /dev/serial/by-id/` shows what is "
            "there); if it is plugged, `hallctl udev suggest DEVICE --role ROLE` prints a "
            "rule for a stable name"),
    Problem("ports.permission", "the agent's user may not open a port: it reports "
            "\"permission denied\"", "`sudo usermod -aG {group} {user}`, then "
                                     "`sudo systemctl restart hall-agent`"),
    Problem("ports.not_device", "a configured port is not a character device",
            "point the key at the device node (e.g. /dev/hall-printer), not a file"),
    Problem("ports.unstable", "a port is named /dev/ttyUSBn or /dev/ttyACMn, which can change "
            "when cables are re-plugged or the box reboots", "install the udev rules "
                                                              "(`hallctl udev suggest`) and use "
                                                              "/dev/hall-… names"),
))


@check(PORTS)
def check_ports(ctx: Context, spec: CheckSpec) -> list[Finding]:
    if ctx.cfg is None:
        return [Finding(spec.id, "skip", "no valid config")]
    ports = configured_ports(ctx.cfg)
    if not ports:
        return [ok(spec, "no serial devices configured")]
    out: list[Finding] = []
    seen: set[str] = set()
    for device, port in ports:
        if port in seen:
            continue
        seen.add(port)
        if not os.path.exists(port):
            out.append(bad(spec, "ports.missing", f"{device} on {port}: not found",
                           device=device))
            continue
        st = os.stat(port)
        if not stat.S_ISCHR(st.st_mode):
            out.append(bad(spec, "ports.not_device", f"{device} on {port}: not a device node"))
            continue
        if not may(ctx.user, port, 6):
            g = _group_name(st.st_gid)
            out.append(bad(spec, "ports.permission",
                           f"{device} on {port}: {ctx.user.name} may not open it (owner "
                           f"{pwd.getpwuid(st.st_uid).pw_name}, group {g}, mode "
                           f"{stat.filemode(st.st_mode)})", group=g, user=ctx.user.name))
            continue
        name = os.path.basename(port)
        if name.startswith(("ttyUSB", "ttyACM")):
            out.append(bad(spec, "ports.unstable", f"{device} on {port}: works, but the name "
                                                   "may change", warn=True))
        else:
            out.append(ok(spec, f"{device} on {port} ({os.path.realpath(port)}): ok"))
    return out


GROUPS = CheckSpec("user", "Agent user", f"the service user ({SERVICE_USER}) exists and is in "
                   "the groups its devices need: dialout (serial), gpio, input (scanner)", (
    Problem("user.missing", f"the {SERVICE_USER} user does not exist (hall-edge is not "
            "installed as a service)", "`sudo systemd/install.sh`"),
    Problem("user.group", "the agent's user is not in a group its devices need",
            "`sudo usermod -aG {group} {user}`, then `sudo systemctl restart hall-agent`"),
))


@check(GROUPS)
def check_user(ctx: Context, spec: CheckSpec) -> list[Finding]:
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        return [bad(spec, "user.missing", f"no user {SERVICE_USER}; checking as "
                                          f"{ctx.user.name}", warn=True)]
    if ctx.user.uid == 0:
        return [ok(spec, "checking as root")]
    out: list[Finding] = []
    have = set(ctx.user.groups())
    for g in ("dialout", "gpio", "input"):
        try:
            grp.getgrnam(g)
        except KeyError:
            continue  # no such group on this system (gpio: not a Raspberry Pi)
        if g not in have:
            out.append(bad(spec, "user.group", f"{ctx.user.name} is not in group {g}",
                           warn=g != "dialout", group=g, user=ctx.user.name))
    return out or [ok(spec, f"{ctx.user.name} in {', '.join(sorted(have))}")]


AGENT = CheckSpec("agent", "Agent service", "the agent runs and answers on [agent] api; its "
                  "systemd unit is enabled", (
    Problem("agent.down", "the agent is not running or does not answer",
            "`sudo systemctl start hall-agent`; if it stops again: `journalctl -u hall-agent "
            "-e` says why (usually a config key or a port)"),
    Problem("agent.not_enabled", "the agent does not start at boot",
            "`sudo systemctl enable --now hall-agent`"),
))


@check(AGENT)
def check_agent(ctx: Context, spec: CheckSpec) -> list[Finding]:
    out: list[Finding] = []
    if ctx.agent_health is None:
        out.append(bad(spec, "agent.down", ctx.agent_error or "the agent does not answer",
                       warn=ctx.cfg is None))
    else:
        h = ctx.agent_health
        out.append(ok(spec, f"running: {h.get('mode')} mode, overall {h.get('status')}, "
                            f"v{h.get('version', '?')}"))
    if ctx.systemctl is not None:
        _rc, text = ctx.systemctl(["is-enabled", "hall-agent.service"])
        if text.strip() not in ("enabled", "enabled-runtime", "alias", "static", "indirect"):
            out.append(bad(spec, "agent.not_enabled", f"hall-agent.service is "
                                                      f"{text.strip() or 'not installed'}",
                           warn=True))
    return out


DEVICES = CheckSpec("devices", "Devices", "each device answers: as the running agent sees "
                    "it, or probed directly when the agent is stopped", (
    Problem("device.fault", "a device does not work (the message says why: paper end, cover "
            "open, no reply, unplugged)", "do what the message says; `hallctl printer test` "
                                          "or `hallctl board test` confirm the fix"),
    Problem("device.degraded", "a device works but needs attention (e.g. paper near end)",
            "do what the message says before it becomes a fault"),
))


def _probe_printer(cfg: Config) -> tuple[str, str]:
    from drivers.printer import TicketPrinter

    assert cfg.printer is not None
    p = TicketPrinter(cfg.printer)
    try:
        h = p.refresh()
    finally:
        p.close()
    return h.status.value, h.detail


@check(DEVICES)
def check_devices(ctx: Context, spec: CheckSpec) -> list[Finding]:
    states: dict[str, tuple[str, str]] = {}
    if ctx.agent_health is not None:
        for name, d in ctx.agent_health.get("devices", {}).items():
            states[name] = (d.get("status", "?"), d.get("detail", ""))
    elif ctx.cfg is not None and ctx.probe_devices:
        if ctx.cfg.printer is not None:
            states["printer"] = _probe_printer(ctx.cfg)
    else:
        return [Finding(spec.id, "skip", "agent not running and no valid config")]
    out: list[Finding] = []
    for name, (st, detail) in sorted(states.items()):
        text = f"{name}: {st}{f' — {detail}' if detail else ''}"
        if st == "fault":
            out.append(bad(spec, "device.fault", text))
        elif st == "degraded":
            out.append(bad(spec, "device.degraded", text, warn=True))
        else:
            out.append(ok(spec, text))
    return out or [ok(spec, "no devices configured")]


BROKER = CheckSpec("broker", "MQTT broker", "with [mqtt]: the broker's address resolves and "
                   "accepts a connection (TLS handshake included); the password file is "
                   "readable by the agent", (
    Problem("broker.unreachable", "the broker cannot be reached: tickets are numbered from "
            "the lease, and run out", "check the network cable and `ping {host}`; is "
                                      "Mosquitto running there (`systemctl status mosquitto`)? "
                                      "firewall port {port}?"),
    Problem("broker.plaintext", "MQTT without TLS to another machine",
            "set tls_ca (and a client certificate or password) in [mqtt]; see "
            "config/mosquitto/hall-edge.conf"),
    Problem("broker.password_file", "the MQTT password file is missing or unreadable by the "
            "agent", "`sudo install -o root -g {user} -m 0640 FILE {path}`"),
))


@check(BROKER)
def check_broker(ctx: Context, spec: CheckSpec) -> list[Finding]:
    if ctx.cfg is None or ctx.cfg.mqtt is None:
        return [Finding(spec.id, "skip", "standalone mode (no [mqtt])")]
    m = ctx.cfg.mqtt
    out: list[Finding] = []
    if m.password_file and (not os.path.isfile(m.password_file)
                            or not may(ctx.user, m.password_file, 4)):
        out.append(bad(spec, "broker.password_file", f"{m.password_file}: missing or not "
                                                     f"readable by {ctx.user.name}",
                       user=ctx.user.name, path=m.password_file))
    try:
        with socket.create_connection((m.host, m.port), timeout=3) as s:
            if m.tls_ca:
                tls = ssl.create_default_context(cafile=m.tls_ca)
                with tls.wrap_socket(s, server_hostname=m.host):
                    pass
    except ssl.SSLError as e:
        out.append(Finding("tls", "fail", f"TLS with {m.host}:{m.port} failed: "
                                          f"{e.reason or e}",
                           TLS.problem("tls.handshake").fix, "tls.handshake"))
        return out
    except OSError as e:
        out.append(bad(spec, "broker.unreachable", f"{m.host}:{m.port}: {e}", host=m.host,
                       port=m.port))
        return out
    local = m.host in ("127.0.0.1", "::1", "localhost")
    if not m.tls_ca and not local:
        out.append(bad(spec, "broker.plaintext", f"{m.host}:{m.port} without TLS", warn=True))
    out.append(ok(spec, f"{m.host}:{m.port} accepts connections"
                        f"{' (TLS verified)' if m.tls_ca else ''}"))
    return out


TLS = CheckSpec("tls", "TLS files", "with [mqtt] TLS: the CA, certificate and key exist, the "
                "agent can read them, the key is private, the certificate is valid now", (
    Problem("tls.missing", "a TLS file named in [mqtt] is missing or unreadable by the agent",
            "copy it there; `sudo chown root:{user} FILE; sudo chmod 0640 FILE`"),
    Problem("tls.key_perms", "the private key is readable by every user",
            "`sudo chmod 0640 {path}`"),
    Problem("tls.expired", "the certificate has expired or is not valid yet",
            "ask the provincial operator for a new certificate; if it is \"not valid yet\", "
            "the clock is wrong (see clock)"),
    Problem("tls.expires_soon", f"the certificate expires within {CERT_WARN_DAYS} days",
            "order a new certificate now"),
    Problem("tls.handshake", "the TLS handshake with the broker fails (unknown CA, wrong "
            "host name, clock)", "check that tls_ca is the hall's CA and [mqtt] host is the "
                                 "name in the broker's certificate; check the clock"),
))


def _cert_not_after(path: str) -> float | None:
    try:
        info = ssl._ssl._test_decode_cert(path)  # type: ignore[attr-defined]
        return float(ssl.cert_time_to_seconds(info["notAfter"]))
    except (ssl.SSLError, OSError, KeyError, ValueError, AttributeError):
        return None


@check(TLS)
def check_tls(ctx: Context, spec: CheckSpec) -> list[Finding]:
    m = ctx.cfg.mqtt if ctx.cfg else None
    if m is None or not (m.tls_ca or m.tls_cert):
        return [Finding(spec.id, "skip", "no TLS configured")]
    out: list[Finding] = []
    for key, path in (("tls_ca", m.tls_ca), ("tls_cert", m.tls_cert), ("tls_key", m.tls_key)):
        if not path:
            continue
        if not os.path.isfile(path) or not may(ctx.user, path, 4):
            out.append(bad(spec, "tls.missing", f"{key} {path}: missing or not readable by "
                                                f"{ctx.user.name}", user=ctx.user.name))
            continue
        if key == "tls_key" and os.stat(path).st_mode & 0o004:
            out.append(bad(spec, "tls.key_perms", f"{path}: readable by everyone", path=path))
        if key in ("tls_ca", "tls_cert"):
            end = _cert_not_after(path)
            if end is None:
                continue
            days = (end - ctx.now()) / 86400
            if days < 0:
                out.append(bad(spec, "tls.expired", f"{key} {path}: expired "
                                                    f"{-days:.0f} days ago"))
            elif days < CERT_WARN_DAYS:
                out.append(bad(spec, "tls.expires_soon", f"{key} {path}: expires in "
                                                         f"{days:.0f} days", warn=True))
    return out or [ok(spec, "TLS files present and valid")]


CLOCK = CheckSpec("clock", "Clock", "the system clock is synchronised (NTP) and plausible: "
                  "ticket times, the numbering day and TLS all depend on it", (
    Problem("clock.unsynced", "the clock is not synchronised (a Pi has no battery clock)",
            "`sudo timedatectl set-ntp true`; in a hall without Internet set the hall's NTP "
            "server in /etc/systemd/timesyncd.conf (NTP=…) and `sudo systemctl restart "
            "systemd-timesyncd`"),
    Problem("clock.wrong", "the clock is far in the past", "as above; until then tickets "
                                                           "carry a wrong date"),
    Problem("clock.doubt", "the agent does not believe the clock (health: clock degraded): "
            "not NTP-synchronised, or behind the newest ticket. It opens no new numbering "
            "day (numbers continue the newest day, never A001 twice) and deletes nothing "
            "old", "make NTP work as above; the agent goes back to normal by itself. In a "
            "hall with no time server at all: set the clock by hand (`sudo timedatectl "
            "set-time 'YYYY-MM-DD HH:MM:SS'`) and tell the agent to believe it: `sudo "
            "systemctl edit hall-agent`, add `[Service]` and "
            "`Environment=HALL_EDGE_CLOCK_SYNCED=1`. A clock behind the newest ticket: "
            "correct it; numbering continues the newest day until then"),
))

_BUILD_YEAR = 2025


@check(CLOCK)
def check_clock(ctx: Context, spec: CheckSpec) -> list[Finding]:
    year = time.gmtime(ctx.now()).tm_year
    if year < _BUILD_YEAR:
        return [bad(spec, "clock.wrong", f"the clock says {year}")]
    out: list[Finding] = []
    doubt = (ctx.agent_health or {}).get("devices", {}).get("clock")
    if doubt:
        out.append(bad(spec, "clock.doubt", f"the agent: {doubt.get('detail', '')}",
                       warn=True))
    synced = ctx.clock_synced()
    if synced is None:
        return [*out, Finding(spec.id, "skip", "cannot tell whether the clock is "
                                               "synchronised")]
    if not synced:
        return [*out, bad(spec, "clock.unsynced", "the kernel says the clock is not "
                                                  "synchronised", warn=True)]
    return out or [ok(spec, "synchronised")]


STORE = CheckSpec("store", "Store", "the agent's SQLite store takes writes, and no store "
                  "was found damaged at start (data_dir/damaged-*)", (
    Problem("store.fault", "the card refuses writes (health: storage fault — full, "
            "read-only or failing): every ticket is refused with 503; the kiosk shows 暂停服务 "
            "(out of service), sends citizens to the desk and gives the cause on a staff "
            "line, and opens again by itself once the card takes writes",
            "full: free space as for a full disk (check disk); the agent resumes by itself. "
            "Read-only or I/O errors: the SD card is failing — `hallctl export-logs`, copy "
            "data_dir off the card, replace the card and restore data_dir"),
    Problem("store.damaged", "the store was found damaged at start (a lost WAL after a "
            "power cut or SIGKILL, truncated, unreadable) and set aside; a fresh store "
            "numbers after the highest numbers known (health: storage degraded)",
            "read {path}/WHAT-HAPPENED.txt. Tickets waiting before the damage are not in "
            "the new queue: call them by hand from the printed numbers. `hallctl "
            "export-logs` and send it with that directory to support, then `sudo rm -r "
            "{path}` (health stays degraded until then)"),
))


@check(STORE)
def check_store(ctx: Context, spec: CheckSpec) -> list[Finding]:
    out: list[Finding] = []
    storage = (ctx.agent_health or {}).get("devices", {}).get("storage") or {}
    if storage.get("status") == "fault":
        out.append(bad(spec, "store.fault", f"the agent: {storage.get('detail', '')}"))
    if ctx.cfg is not None:
        d = Path(ctx.cfg.agent.data_dir)
        kept = sorted(d.glob("damaged-*")) if d.is_dir() else []
        for k in kept:
            what = k / "WHAT-HAPPENED.txt"
            first = (what.read_text(encoding="utf-8", errors="replace").splitlines() or [""]
                     )[0] if what.exists() else "a damaged store"
            out.append(bad(spec, "store.damaged", f"{k}: {first}", warn=True, path=k))
    return out or [ok(spec, "takes writes; no damaged store kept")]


UDEV = CheckSpec("udev", "udev rules", "the hall-edge udev rules (stable device names) are "
                 "installed", (
    Problem("udev.missing", "no hall-edge udev rules: ports are /dev/ttyUSBn and may swap",
            "`sudo systemd/install.sh` installs the template; add a line per device from "
            "`hallctl udev suggest`; `sudo udevadm control --reload && sudo udevadm "
            "trigger`"),
))


@check(UDEV)
def check_udev(ctx: Context, spec: CheckSpec) -> list[Finding]:
    if not ctx.udev_rules.exists():
        return [bad(spec, "udev.missing", f"{ctx.udev_rules}: not installed", warn=True)]
    return [ok(spec, f"{ctx.udev_rules}: installed")]


