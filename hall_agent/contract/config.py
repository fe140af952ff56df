"""Configuration (★ keys of DESIGN.md) as pydantic models, and the loaders.

The device sections (``[printer]``, ``[[boards]]`` …) are owned by their drivers
(``drivers/*_config.py``) and composed here; the catalogue's models are in
:mod:`hall_agent.contract.catalog`.

Every model forbids unknown keys, so a typo (``baudrat = 9600``) stops the agent
with a message naming the file and the key instead of being silently ignored.
``load_config`` is the only entry point; it raises :class:`ConfigError` whose
text is meant to be printed as is, without a traceback.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from drivers.bus_config import BoardConfig, BusConfig, EvaluatorConfig
from drivers.config_base import Section
from drivers.errors import ConfigError as ConfigError  # load_config's error, re-exported
from drivers.gpio_config import GpioConfig
from drivers.idcard_config import IdReaderConfig
from drivers.printer_config import PrinterConfig
from drivers.scanner_config import ScannerConfig
from hall_agent.contract.catalog import Catalog, parse_hours

DEFAULT_CONFIG_PATH = Path("/etc/hall-edge/agent.toml")
ENV_CONFIG = "HALL_EDGE_CONFIG"
DEFAULTS_DIR = Path(__file__).resolve().parent.parent / "defaults"

_HOST_PORT_RE = re.compile(r"^(?P<host>[0-9A-Za-z.\-:\[\]]+):(?P<port>\d{1,5})$")


class _Model(Section, BaseModel):
    """Section's rules; BaseModel is named again only so ruff sees a pydantic model."""


class HallConfig(_Model):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
                             description="hall id; appears in MQTT topics")]
    name: Annotated[str, Field(min_length=1, max_length=64,
                               description="the hall's name, printed on every ticket")]
    name_en: Annotated[str, Field(max_length=80, description=(
        "the hall's name in English, for the kiosk in English; empty = the Chinese name"))
                       ] = ""
    catalog: Annotated[str, Field(description="path of the service catalogue (TOML); "
                                              "relative paths are resolved from the config "
                                              "file; empty = the catalogue built in")] = ""
    timezone: str = Field(default="Asia/Shanghai", description=(
        "IANA time zone of the hall: service hours, the numbering day, midnight reset"))
    status_url: Annotated[str, Field(
        description="URL printed as the ticket's QR code; {hall}, {ticket_id}, {number} and "
                    "{token} (the ticket page's token, hall-central's /t/{token}) are "
                    "replaced")] = "https://qms.example.gov.cn/t/{token}"
    notice: Annotated[str, Field(max_length=40, description="short notice printed on each ticket")
                      ] = "请留意叫号，过号请重新取号"
    secret_file: Annotated[str, Field(description=(
        "the per-hall HMAC secret for ID numbers (a root-only file); empty = "
        "data_dir/hall.secret, created 0600 if absent. Give every kiosk of a hall the same "
        "file, so a person's id_hash is the same on each"))] = ""

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r}; use an IANA name such as Asia/Shanghai"
                             ) from e
        return v

    @field_validator("status_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if all(k not in v for k in ("{ticket_id}", "{number}", "{token}")):
            raise ValueError("status_url must contain {token} (or {ticket_id}, {number}) so each "
                             "ticket gets its own QR code")
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class AgentConfig(_Model):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
                             description="agent id; MQTT client id and topic segment")] = "kiosk-01"
    api: Annotated[str, Field(description="local API listen address, host:port; loopback only")
                   ] = "127.0.0.1:8765"
    data_dir: Annotated[str, Field(description="directory of the SQLite store")
                        ] = "/var/lib/hall-edge"
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="log level (hallctl log level changes it at run time)")
    health_interval_ms: Annotated[int, Field(ge=500, le=600_000,
                                             description="device health poll, in milliseconds")
                                  ] = 10_000
    retention_days: Annotated[int, Field(ge=7, le=3650, description=(
        "tickets, calls, ratings and appointments older than this many days are deleted "
        "(they hold ID hashes and masked names); acknowledged events after 7 days"))] = 90

    @field_validator("api")
    @classmethod
    def _api(cls, v: str) -> str:
        m = _HOST_PORT_RE.match(v)
        if not m or not 0 < int(m["port"]) < 65536:
            raise ValueError(f"{v!r} is not host:port, e.g. 127.0.0.1:8765")
        host = m["host"].strip("[]")
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            # The local API has no authentication: on the LAN anyone could pause
            # windows or import appointments.
            raise ValueError(f"{v!r}: the local API listens on loopback only (it has no "
                             "authentication); use 127.0.0.1:PORT — 本地接口没有认证，只能"
                             "监听本机地址")
        return v

    @property
    def api_host(self) -> str:
        return self.api.rsplit(":", 1)[0].strip("[]")

    @property
    def api_port(self) -> int:
        return int(self.api.rsplit(":", 1)[1])


class MqttConfig(_Model):
    host: str = Field(default="127.0.0.1", description="the broker's address")
    port: Annotated[int, Field(ge=1, le=65535, description="1883 plain, 8883 TLS")] = 1883
    username: str | None = Field(default=None, description="MQTT user; by the ACL it "
                                                           "must equal [agent] id")
    password_file: str | None = Field(default=None, description=(
        "file holding the MQTT password (readable by the agent only)"))
    tls_ca: str | None = Field(default=None, description="CA certificate file: enables TLS")
    tls_cert: str | None = Field(default=None, description="client certificate file")
    tls_key: str | None = Field(default=None, description="client key file")
    keepalive_s: Annotated[int, Field(ge=5, le=600, description="keepalive, in seconds")] = 30
    request_timeout_ms: Annotated[int, Field(ge=50, le=30_000,
                                             description="wait for a central number, in ms")] = 800
    protocol: Annotated[Literal["auto", 5, 311], Field(description=(
        "MQTT version: \"auto\" tries 5 and falls back to 3.1.1 when the broker refuses "
        "the version (MQTT.md, Session); 5 or 311 to insist on one"))] = "auto"

    @model_validator(mode="after")
    def _files(self) -> MqttConfig:
        if self.password_file and not self.username:
            raise ValueError("password_file is set but username is not")
        if self.tls_key and not self.tls_cert:
            raise ValueError("tls_key is set but tls_cert is not")
        return self


class AppointmentsConfig(_Model):
    """Appointment check-in and booking (docs/appointments.md)."""

    early_min: Annotated[int, Field(ge=0, le=240, description=(
        "check-in opens this long before the slot starts, in minutes"))] = 30
    late_min: Annotated[int, Field(ge=0, le=240, description=(
        "check-in closes this long after the slot starts, in minutes"))] = 15
    slot_min: Annotated[int, Field(ge=5, le=240, description="booking slot, in minutes")] = 30
    slot_capacity: Annotated[int, Field(ge=1, le=100, description="bookings per slot")] = 4
    bookable: Annotated[list[str], Field(description=(
        "services that can be booked for the next day at the kiosk"))] = []
    booking_hours: str = Field(default="09:00-12:00,14:00-17:00", description=(
        "the hours cut into bookable slots, HH:MM-HH:MM[,…] in hall time (not 24h)"))

    @field_validator("booking_hours")
    @classmethod
    def _hours(cls, v: str) -> str:
        if parse_hours(v) is None:
            raise ValueError("booking_hours cannot be \"24h\"; give the slots' hours")
        return v


class SelfServiceConfig(_Model):
    """The 24-hour self-service area (docs/selfservice.md); absent = no 24-hour mode."""

    staffed_hours: Annotated[str, Field(description=(
        "when the hall is staffed; outside these hours the kiosk is in self-service "
        "mode"))] = "08:30-17:30"
    staffed_days: Annotated[list[Annotated[int, Field(ge=1, le=7)]], Field(description=(
        "staffed weekdays, ISO numbering (1 = Monday)"))] = [1, 2, 3, 4, 5]
    services: Annotated[list[str], Field(description=(
        "self-service plugins shown, in order (see docs/selfservice.md)"))] = [
        "social_insurance", "housing_fund", "property"]
    door_always: Annotated[bool, Field(description=(
        "open the door for a valid card during staffed hours too"))] = False

    @field_validator("staffed_hours")
    @classmethod
    def _hours(cls, v: str) -> str:
        parse_hours(v)
        return v


class VoiceConfig(_Model):
    """Spoken calls (SCANNER.md, Voice)."""

    enabled: bool = Field(default=True, description="speak each call aloud")
    engine: Literal["clips", "espeak"] = Field(
        default="clips", description="recorded clips (fast, natural) or espeak-ng")
    output: Literal["auto", "alsa", "wav", "board"] = Field(
        default="auto", description=("auto: ALSA when a sound card is present, else WAV "
                                     "files; board: the hall's ONBON BX-6 board speaks"))
    english: bool = Field(default=False, description="repeat each call in English")


class KioskConfig(_Model):
    """The touch kiosk (hall-kiosk); its command-line flags override these."""

    idle_timeout_s: Annotated[float, Field(ge=10, le=600, description=(
        "back to the home screen after this many seconds untouched"))] = 60
    ticket_hold_s: Annotated[float, Field(ge=5, le=600, description=(
        "a printed ticket stays on screen this long, in seconds"))] = 30
    unprinted_hold_s: Annotated[float, Field(ge=10, le=1800, description=(
        "an unprinted ticket (to be photographed) stays this long, in seconds"))] = 120
    lang: Literal["zh", "en"] = Field(default="zh", description=(
        "the language the kiosk starts in and returns to when idle"))
    blank_after_s: Annotated[float, Field(ge=0, le=86400, description=(
        "the home screen untouched this long dims to a saver, woken by a touch or the "
        "presence sensor; 0 = never, in seconds"))] = 300
    dpi: Annotated[float | None, Field(ge=40, le=400, description=(
        "screen density, dots per inch; default: what the screen reports"))] = None
    fullscreen: bool = Field(default=True, description=(
        "full screen, no window frame (false: a window, for a desk)"))


class Config(_Model):
    hall: HallConfig
    agent: AgentConfig = AgentConfig()
    mqtt: MqttConfig | None = None
    printer: PrinterConfig | None = None
    boards: list[BoardConfig] = []
    id_reader: IdReaderConfig | None = None
    evaluators: list[EvaluatorConfig] = []
    kiosk: KioskConfig = KioskConfig()
    voice: VoiceConfig = VoiceConfig()
    bus: BusConfig = BusConfig()
    scanner: ScannerConfig | None = None
    gpio: GpioConfig | None = None
    appointments: AppointmentsConfig = AppointmentsConfig()
    selfservice: SelfServiceConfig | None = None

    # Filled by load_config, not by the file.
    source: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _bus_addresses(self) -> Config:
        seen: dict[tuple[str, int], str] = {}
        devices: list[tuple[str, BoardConfig | EvaluatorConfig]] = [
            *((f"[[boards]] #{i + 1}", b) for i, b in enumerate(self.boards)),
            *((f"[[evaluators]] #{i + 1}", e) for i, e in enumerate(self.evaluators))]
        for here, d in devices:
            key = (d.port, d.address)
            if key in seen:
                raise ValueError(f"{here} and {seen[key]} share address {d.address} on "
                                 f"{d.port}; give each device on a bus its own address")
            seen[key] = here
        return self

    @property
    def catalog_path(self) -> Path:
        if not self.hall.catalog:
            return DEFAULTS_DIR / "services.toml"
        p = Path(self.hall.catalog)
        if not p.is_absolute() and self.source is not None:
            p = self.source.parent / p
        return p


# --------------------------------------------------------------------------- loading

def _loc(loc: tuple[int | str, ...], data: Any) -> str:
    """``("boards", 0, "baudrate")`` → ``[[boards]] #1 baudrate``; TOML-shaped."""
    parts: list[str] = []
    i = 0
    while i < len(loc):
        item = loc[i]
        if isinstance(item, str) and i + 1 < len(loc) and isinstance(loc[i + 1], int):
            parts.append(f"[[{item}]] #{int(loc[i + 1]) + 1}")
            i += 2
            continue
        if isinstance(item, str) and i == 0 and item in Config.model_fields:
            parts.append(f"[{item}]")
        else:
            parts.append(str(item))
        i += 1
    return " ".join(parts) if parts else "(top level)"


def _format(path: Path, err: ValidationError, data: Any) -> str:
    lines = [f"{path}: the configuration is not valid, so nothing was started:"]
    for e in err.errors():
        loc = tuple(x for x in e["loc"] if not (isinstance(x, str) and x.startswith("function-")))
        where = _loc(loc, data)
        kind = e["type"]
        msg = e["msg"].removeprefix("Value error, ")
        if kind == "extra_forbidden":
            msg = "unknown key: remove it or check its spelling"
        elif kind == "missing":
            msg = "missing: this key is required"
        elif ("input" in e and kind.endswith("_type")) or kind.endswith("_parsing"):
            msg = f"{msg} (got {e['input']!r})"
        if msg.startswith("[["):  # names its own entry (catalog.py)
            lines.append(f"  {msg}")
            continue
        lines.append(f"  {where}: {msg}")
    return "\n".join(lines)


def _read_toml(path: Path, what: str, missing: str = "") -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found; "
                          f"{missing or f'give --config PATH or set {ENV_CONFIG}'}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the {what}: {e.strerror}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


def resolve_config_path(cli_value: str | None) -> Path:
    """``--config`` wins, then ``HALL_EDGE_CONFIG``, then /etc/hall-edge/agent.toml."""
    if cli_value:
        return Path(cli_value)
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env)
    return DEFAULT_CONFIG_PATH


_QUOTED = {"int_type": "a number", "float_type": "a number", "bool_type": "true or false"}


def _quoted_scalars(path: Path, data: Any) -> None:
    """A number or a boolean written in quotes (``baudrate = "115200"``) is a string in
    TOML: pydantic's lax mode would take it, but TOML's own types are what the file
    means, and a typo there must not pass silently. Strict validation finds them."""
    try:
        Config.model_validate(data, strict=True)
    except ValidationError as e:
        wrong = [x for x in e.errors() if x["type"] in _QUOTED and isinstance(x.get("input"), str)]
        if wrong:
            lines = [f"{path}: the configuration is not valid, so nothing was started:"]
            lines += [f"  {_loc(tuple(x['loc']), data)}: must be {_QUOTED[x['type']]}, not "
                      f"the text {x['input']!r}; remove the quotes" for x in wrong]
            raise ConfigError("\n".join(lines)) from None


def load_config(path: Path) -> Config:
    data = _read_toml(path, "configuration file")
    try:
        cfg = Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format(path, e, data)) from None
    _quoted_scalars(path, data)
    return cfg.model_copy(update={"source": path.resolve()})


def load_catalog(path: Path, config: Path | None = None) -> Catalog:
    """The catalogue at ``path``; ``config`` is the config that names it (``[hall]
    catalog``), for the message when it is not there."""
    where = f" in {config}" if config else ""
    data = _read_toml(path, "service catalogue", f"set [hall] catalog{where} to the "
                      "catalogue's path (relative to the config's folder)")
    try:
        return Catalog.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format(path, e, data)) from None


def device_ports(cfg: Config) -> list[tuple[str, str]]:
    """(the key as the config names it, the path) of every serial or input device."""
    out: list[tuple[str, str]] = []
    if cfg.printer is not None and cfg.printer.transport == "serial" and cfg.printer.port:
        out.append(("[printer] port", cfg.printer.port))
    for i, b in enumerate(cfg.boards):
        if getattr(b, "transport", "serial") == "serial" and b.port:
            out.append((f"[[boards]] #{i + 1} port", b.port))
    for i, e in enumerate(cfg.evaluators):
        out.append((f"[[evaluators]] #{i + 1} port", e.port))
    if cfg.id_reader is not None:
        out.append(("[id_reader] port", cfg.id_reader.port))
    if cfg.scanner is not None:
        key = "device" if cfg.scanner.device else "port"
        out.append((f"[scanner] {key}", str(cfg.scanner.device or cfg.scanner.port)))
    return out


def check_ports(cfg: Config) -> tuple[list[str], list[str]]:
    """(errors, notes) about the device paths. A path that is there but is no device (a
    regular file, a folder: a typo such as ``/etc/passwd``) is an error, found now
    rather than by the agent at run time. A path that is not there is only a note: a
    USB adapter may be plugged in later, and the agent waits for it."""
    errors, notes = [], []
    for key, port in device_ports(cfg):
        p = Path(port)
        try:
            st = p.stat()
        except FileNotFoundError:
            notes.append(f"{key} = {port!r}: not present now (the agent waits for it; "
                         "plugged in? see ls /dev/serial/by-id/)")
            continue
        except OSError as e:
            errors.append(f"{key} = {port!r}: cannot be checked ({e.strerror})")
            continue
        if not stat.S_ISCHR(st.st_mode):
            what = "a folder" if stat.S_ISDIR(st.st_mode) else "a regular file" \
                if stat.S_ISREG(st.st_mode) else "not a character device"
            errors.append(f"{key} = {port!r} is {what}, not a serial device; give the "
                          "device's port, e.g. /dev/ttyUSB0 or /dev/serial/by-id/…")
    return errors, notes


def local_now(cfg: Config) -> datetime:
    return datetime.now(cfg.hall.tz)
