"""``hallctl udev suggest``: a udev rule that gives a plugged device a stable name
(``/dev/hall-printer``), matched by serial number when it has a unique one, else by the
USB port it is plugged into."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hallctl.common import EXIT_DEVICE, EXIT_OK, Ctl

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


def add_parsers(sub: Any) -> None:
    u = sub.add_parser("udev", help="udev rules for stable device names",
                       description="Exit codes: 0 rules printed, 4 no such device.")
    u.add_argument("action", choices=["suggest"])
    u.add_argument("device", nargs="?", help="/dev/ttyUSB0, ttyUSB0 … (default: every "
                                             "USB serial, input and printer device)")
    u.add_argument("--role", choices=sorted(ROLES), help="names it /dev/hall-ROLE")
    u.add_argument("--name", help="the symlink name (overrides --role)")
    u.add_argument("--sysfs", default="/sys", help=argparse.SUPPRESS)


COMMANDS: dict[str, Callable[[Ctl, argparse.Namespace], int]] = {"udev": cmd_udev}
