"""A simulated hall: every device on a pseudo-terminal, and an agent config pointing at them.

Used by ``hall-sim``, by the demo and by the tests, so all three exercise the
agent's real serial code the same way.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

from sim.broker import Broker
from sim.bus import BUS_HELP, SimBus, bus_command, bus_config, catalog_windows, make_sim_bus
from sim.central import CENTRAL_HELP, Central
from sim.idcard import SimIdReader
from sim.onbon import ONBON_HELP, SimOnbon, SimOnbonPty, SimOnbonTcp
from sim.printer import SETTINGS_HELP, SimPrinter, apply_setting
from sim.ptydevice import PtyDevice
from sim.scanner import SimScanner

DEMO_HALL = "福州市市民服务中心"

CONTROL_HELP = """commands (one per line; also over the control socket):
  printer SETTING VALUE    e.g. `printer paper end`, `printer cover open`, `printer reply off`
  printer tickets          how many tickets were cut, and the last one
  printer unplug|replug    pull the printer's cable / plug it back in
  unplug|replug DEVICE     the same for `bus` (the RS-485 adapter) or `card` (the ID reader)
  status                   every device and its state
  help                     this list
with ID devices: `card NAME|none` (resident, resident2, hmt, foreigner2017, foreigner2023,
  expired, bad_check), `card SETTING VALUE` (fail read 41, bad_chk 1, delay_ms 1500 …),
  `scan TEXT` (a serial scanner reads TEXT)
RS-485 bus (LED boards, evaluators):

""" + BUS_HELP + """with --boards onbon-bx5|onbon-bx6 (the hall board is an ONBON controller):
""" + ONBON_HELP + """with --mqtt: `central COMMAND` (below), `broker stop|start|restart`
""" + CENTRAL_HELP + """printer settings:
""" + "\n".join(f"  {k:<14} {v}" for k, v in SETTINGS_HELP.items()) + "\n"


@dataclass
class SimHall:
    """The simulated devices of one kiosk, and the config that points the agent at them."""

    root: Path
    api: str = "127.0.0.1:8765"
    catalog: str = ""
    hall_id: str = "fz-citizen"
    agent_id: str = "kiosk-01"  # [agent] id: its MQTT client id and topics
    status_url: str = ""  # [hall] status_url (the ticket's QR); empty = the agent's default
    hall_name: str = DEMO_HALL
    hall_name_en: str = "Fuzhou Citizen Service Centre"
    health_interval_ms: int = 2000
    extra_toml: str = ""  # more config sections, e.g. [mqtt]
    bus_devices: bool = True  # LED boards and evaluators on a simulated RS-485 bus
    id_devices: bool = False  # an ID-card reader and a serial QR scanner
    # The hall board's model: "hall-edge" on the RS-485 bus, or an ONBON controller
    # ("onbon-bx5" | "onbon-bx6") on its own pty ("serial") or on TCP ("tcp").
    boards: str = "hall-edge"
    board_transport: str = "serial"
    onbon: SimOnbon | None = field(init=False, default=None)
    onbon_line: SimOnbonPty | SimOnbonTcp | None = field(init=False, default=None)
    printer: SimPrinter = field(init=False)
    id_reader: SimIdReader | None = field(init=False, default=None)
    scanner: SimScanner | None = field(init=False, default=None)
    bus: SimBus | None = field(init=False, default=None)
    central: Central | None = field(init=False, default=None)
    broker: Broker | None = field(init=False, default=None)
    _ctl_sock: socket.socket | None = field(init=False, default=None)
    _ctl_thread: threading.Thread | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.tickets_dir.mkdir(exist_ok=True)
        self.printer = self._new_printer()
        if self.bus_devices:
            self.bus = make_sim_bus(self.root, catalog_windows(self.catalog))
            self._link(self.bus)
        if self.boards != "hall-edge":
            self._add_onbon()
        if self.id_devices:
            self.id_reader = SimIdReader(traffic_log=self.root / "idcard-traffic.log")
            self._link(self.id_reader)
            self.scanner = SimScanner()

    def _add_onbon(self) -> None:
        from drivers.onbon import Model
        from sim.bus import HALL_BOARD

        if self.boards not in ("onbon-bx5", "onbon-bx6"):
            raise ValueError(f"--boards {self.boards!r}: hall-edge, onbon-bx5 or onbon-bx6")
        if self.bus is not None:
            with self.bus.lock:
                self.bus.devices.pop(HALL_BOARD, None)  # the ONBON board takes its place
        self.onbon = SimOnbon(Model(self.boards), address=HALL_BOARD, width=192, height=32,
                              out_dir=self.root / "boards")
        if self.board_transport == "tcp":
            self.onbon_line = SimOnbonTcp(self.onbon)
        else:
            self.onbon_line = SimOnbonPty(self.onbon,
                                          traffic_log=self.root / "sim-onbon-traffic.log")

    def onbon_config(self) -> str:
        """The [[boards]] section of the ONBON hall board (★ keys of DESIGN.md)."""
        if self.onbon is None or self.onbon_line is None:
            return ""
        o = self.onbon
        where = (f'transport = "tcp"\nhost = "127.0.0.1"\ntcp_port = {self.onbon_line.port}\n'
                 if isinstance(self.onbon_line, SimOnbonTcp) else
                 f'transport = "serial"\nport = "{self.onbon_line.port}"\nbaudrate = 9600\n')
        return (f'\n[[boards]]\nprotocol = "{o.model.value}"\n{where}address = {o.address}\n'
                f'width = {o.width}\nheight = {o.height}\nrole = "hall"\n')

    def use_bus(self, bus: SimBus) -> None:
        """Put another simulated bus on this hall (a benchmark's bigger one), cabled
        behind the same stable name the config points at."""
        self.bus = bus
        self._link(bus)

    # ------------------------------------------------------------------ cables

    def link_of(self, dev: PtyDevice) -> Path:
        """A stable name for a device's pty, like the udev names of systemd/: it goes
        away on unplug and follows the new pty on replug."""
        return self.root / {SimBus: "rs485.tty", SimIdReader: "idreader.tty"}[type(dev)]

    def _link(self, dev: PtyDevice) -> None:
        link = self.link_of(dev)
        link.unlink(missing_ok=True)
        link.symlink_to(dev.port)

    def _pluggable(self, name: str) -> PtyDevice:
        dev = {"bus": self.bus, "card": self.id_reader}.get(name)
        if dev is None:
            raise KeyError(f"no device {name!r} here; unplug/replug takes bus or card")
        return dev

    def unplug(self, name: str) -> None:
        """Pull the cable of ``bus`` (the RS-485 adapter) or ``card`` (the ID reader);
        the devices behind it keep their state (boards keep their text)."""
        dev = self._pluggable(name)
        self.link_of(dev).unlink(missing_ok=True)
        dev.unplug()

    def replug(self, name: str) -> None:
        dev = self._pluggable(name)
        dev.replug()
        self._link(dev)

    @property
    def tickets_dir(self) -> Path:
        return self.root / "tickets"

    @property
    def config_path(self) -> Path:
        return self.root / "agent.toml"

    @property
    def control_path(self) -> Path:
        return self.root / "sim.sock"

    def start_central(self, broker_port: int | None = None,
                      listen: str = "127.0.0.1:8780") -> None:
        """A private Mosquitto (on ``broker_port``, default a free one) and hall-central
        (sim/central.py: the real service with fault knobs), its pages to be on
        ``listen``; the config gains [mqtt]."""
        from zoneinfo import ZoneInfo

        from hall_agent.contract.config import DEFAULTS_DIR, load_catalog

        self.broker = Broker() if broker_port is None else Broker(port=broker_port)
        self.broker.start()
        catalog = load_catalog(Path(self.catalog) if self.catalog
                               else DEFAULTS_DIR / "services.toml")
        self.central = Central("127.0.0.1", self.broker.port, self.hall_id, catalog,
                               self.root / "central", ZoneInfo("Asia/Shanghai"), listen=listen)
        self.central.start()
        self.central.connected.wait(10)
        self.extra_toml += (f'[mqtt]\nhost = "127.0.0.1"\nport = {self.broker.port}\n')

    def write_config(self) -> Path:
        catalog = f'catalog = "{self.catalog}"\n' if self.catalog else ""
        self.config_path.write_text(
            "# Written by hall-sim: the agent's devices are simulated on these ptys.\n"
            f'[hall]\nid = "{self.hall_id}"\nname = "{self.hall_name}"\n'
            f'name_en = "{self.hall_name_en}"\n{catalog}'
            + (f'status_url = "{self.status_url}"\n' if self.status_url else "") + "\n"
            f'[agent]\nid = "{self.agent_id}"\napi = "{self.api}"\n'
            f'data_dir = "{self.root / "data"}"\n'
            f"health_interval_ms = {self.health_interval_ms}\n\n"
            f'[printer]\ntransport = "serial"\nport = "{self.printer_link}"\n'
            "baudrate = 115200\n"
            + (bus_config(self.bus, self.link_of(self.bus)) if self.bus else "")
            + self.onbon_config()
            + (f'\n[id_reader]\nport = "{self.link_of(self.id_reader)}"\n'
               if self.id_reader else "")
            + (f'\n[scanner]\nport = "{self.scanner.port}"\n' if self.scanner else "")
            + (f"\n{self.extra_toml}\n" if self.extra_toml else ""),
            encoding="utf-8")
        return self.config_path

    # ------------------------------------------------------------------ control

    def command(self, line: str) -> str:
        """Run one control command; returns the answer line(s)."""
        words = line.split()
        if not words or words[0] == "help":
            return CONTROL_HELP
        if words[0] == "status":
            return json.dumps({"printer": self.printer.describe(),
                               **({"bus": self.bus.describe()} if self.bus else {}),
                               **({"onbon": self.onbon.describe()} if self.onbon else {})},
                              ensure_ascii=False)
        if words[0] == "printer" and len(words) >= 2:
            return self._printer_command(words[1:])
        if words[0] in ("unplug", "replug") and len(words) == 2:
            try:
                (self.unplug if words[0] == "unplug" else self.replug)(words[1])
            except KeyError as e:
                return f"error: {e.args[0]}"
            return f"ok {words[1]} {words[0]}ged"
        if words[0] == "onbon" and self.onbon is not None:
            if words[1:2] == ["power"] and len(words) == 3 and isinstance(
                    self.onbon_line, SimOnbonTcp):
                self.onbon_line.power(words[2] == "on")  # its TCP server goes too
                return json.dumps(self.onbon.describe(), ensure_ascii=False)
            return self.onbon.command(words[1:])
        if words[0] == "central":
            if self.central is None:
                return "error: no central here; start hall-sim with --mqtt"
            return self.central.control(" ".join(words[1:]))
        if words[0] == "broker" and len(words) == 2 and self.broker is not None:
            {"stop": self.broker.stop, "start": self.broker.start,
             "restart": self.broker.restart}[words[1]]()
            return f"ok broker {words[1]}"
        if words[0] in ("board", "eval", "bus") and len(words) >= 2 and self.bus is not None:
            return bus_command(self.bus, words)
        if words[0] == "card" and len(words) >= 2 and self.id_reader is not None:
            try:
                # `card resident`, `card none`, `card fail read 41`, `card delay_ms 1500`
                if len(words) == 2:
                    self.id_reader.set("card", words[1])
                else:
                    self.id_reader.set(words[1], " ".join(words[2:]))
            except (ValueError, KeyError) as e:
                return f"error: {e}"
            return "ok " + json.dumps(self.id_reader.describe(), ensure_ascii=False)
        if words[0] == "scan" and len(words) >= 2 and self.scanner is not None:
            self.scanner.scan(line.strip()[len("scan"):].strip())
            return "ok"
        return f"error: unknown command {line.strip()!r}; try help"

    @property
    def printer_link(self) -> Path:
        """A stable name for the printer's pty, like a udev name for a USB printer: it
        disappears on unplug and points at the new pty on replug."""
        return self.root / "printer.tty"

    def _new_printer(self) -> SimPrinter:
        p = SimPrinter(out_dir=self.tickets_dir, traffic_log=self.root / "printer-traffic.log")
        self.printer_link.unlink(missing_ok=True)
        self.printer_link.symlink_to(p.port)
        return p

    def unplug_printer(self) -> None:
        self.printer_link.unlink(missing_ok=True)
        self.printer.close()

    def replug_printer(self) -> None:
        tickets = self.printer.tickets
        self.printer = self._new_printer()
        self.printer.tickets[:0] = tickets  # the paper cut so far stays counted

    def _printer_command(self, w: list[str]) -> str:
        if w[0] in ("unplug", "replug"):
            (self.unplug_printer if w[0] == "unplug" else self.replug_printer)()
            return f"ok printer {w[0]}ged"
        if w[0] == "tickets":
            last = self.printer.tickets[-1] if self.printer.tickets else None
            return json.dumps({"count": len(self.printer.tickets),
                               "last_text": last.text if last else None,
                               "last_qr": last.qr_data if last else None}, ensure_ascii=False)
        if len(w) != 2:
            return f"error: say `printer SETTING VALUE`, not {' '.join(w)!r}; try help"
        key, value = w
        # Friendly spellings for people at the console.
        if key == "cover":
            key, value = "cover_open", {"open": "true", "closed": "false"}.get(value, value)
        key = {"delay": "delay_ms"}.get(key, key)
        try:
            apply_setting(self.printer, key, value)
        except ValueError as e:
            return f"error: {e}"
        return "ok " + json.dumps(self.printer.describe(), ensure_ascii=False)

    def serve_control(self) -> None:
        """Accept control commands on a Unix socket (one line in, one answer out)."""
        if self.control_path.exists():
            self.control_path.unlink()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(self.control_path))
        os.chmod(self.control_path, 0o600)
        s.listen(4)
        self._ctl_sock = s

        def loop() -> None:
            while True:
                try:
                    conn, _ = s.accept()
                except OSError:
                    return
                with conn, conn.makefile("rw", encoding="utf-8") as f:
                    for line in f:
                        f.write(self.command(line).rstrip("\n") + "\n.\n")
                        f.flush()

        self._ctl_thread = threading.Thread(target=loop, name="sim-control", daemon=True)
        self._ctl_thread.start()

    def close(self) -> None:
        if self._ctl_sock is not None:
            self._ctl_sock.close()
            self.control_path.unlink(missing_ok=True)
        self.printer.close()
        if self.bus is not None:
            self.bus.close()
        if self.onbon_line is not None:
            self.onbon_line.close()
        if self.id_reader is not None:
            self.id_reader.close()
        if self.scanner is not None:
            self.scanner.close()
        if self.central is not None:
            self.central.stop()
        if self.broker is not None:
            self.broker.close()


def control(path: Path, line: str, timeout: float = 5.0) -> str:
    """Send one command to a running hall-sim's control socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(line.encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n.\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return buf.decode().removesuffix("\n.\n")
