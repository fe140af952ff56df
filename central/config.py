"""hall-central's configuration (DESIGN.md "★ hall-central"): strict, like the agent's.

The file holds the same ``[hall]`` section as the agents (and so the same catalogue),
``[central]`` (listen, data_dir, public_url, and the queue rules under
``[central.queue]``), ``[mqtt]`` and ``[appointments]``. An unknown key or a wrong
type stops the service with a message naming the key (:class:`ConfigError`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from drivers.config_base import Section
from drivers.errors import ConfigError as ConfigError
from hall_agent.contract.config import (
    DEFAULTS_DIR,
    AppointmentsConfig,
    HallConfig,
    MqttConfig,
    _read_toml,
)

DEFAULT_CENTRAL_CONFIG = Path("/etc/hall-edge/central.toml")
_HOST_PORT_RE = re.compile(r"^(?P<host>[0-9A-Za-z.\-:\[\]]+):(?P<port>\d{1,5})$")


class _Model(Section, BaseModel):
    """Section's rules; BaseModel is named again only so ruff sees a pydantic model."""


class QueueRules(_Model):
    """The rules clerks and managers expect (docs/central.md, "Queue rules")."""

    priority_run: Annotated[int, Field(ge=0, le=100, description=(
        "after this many priority tickets in a row a window calls normal ones "
        "(normal_after of them) if any wait; 0 = priority tickets always first"))] = 0
    normal_after: Annotated[int, Field(ge=1, le=100, description=(
        "normal tickets called after a run of priority_run priority ones"))] = 1
    recall_min_interval_s: Annotated[int, Field(ge=0, le=600, description=(
        "a ticket is recalled at most once in this many seconds, in seconds"))] = 10
    recall_max: Annotated[int, Field(ge=0, le=20, description=(
        "recalls of one call at most; then the clerk marks it no-show or finishes"))] = 3
    no_show_after_recalls: Annotated[int, Field(ge=0, le=20, description=(
        "a recall asked for after this many recalls marks the ticket no-show and calls "
        "the next one instead; 0 = no-show only by hand"))] = 0
    transfer_first: Annotated[bool, Field(description=(
        "a transferred ticket goes to the front of its new queue (true) or keeps its "
        "place by its issue time (false), unless the clerk chooses"))] = False

    @model_validator(mode="after")
    def _limits(self) -> QueueRules:
        if self.no_show_after_recalls > self.recall_max:
            raise ValueError(f"no_show_after_recalls ({self.no_show_after_recalls}) is above "
                             f"recall_max ({self.recall_max}); it could never happen")
        return self


class CentralSection(_Model):
    listen: Annotated[str, Field(description=(
        "the hall LAN address of the console, TV and ticket pages, host:port"))
                      ] = "0.0.0.0:8780"
    data_dir: Annotated[str, Field(description="directory of hall-central's SQLite store")
                        ] = "/var/lib/hall-central"
    public_url: Annotated[str, Field(description=(
        "what citizens' phones reach (a proxy in front); ticket pages are under /t/"))
                          ] = "https://qms.example.gov.cn"
    lease_size: Annotated[int, Field(ge=10, le=2000, description=(
        "numbers per service in each block leased to an agent; topped up when half used"))
                          ] = 200
    midnight_lease_min: Annotated[int, Field(ge=5, le=720, description=(
        "the next day's leases are published this many minutes before local midnight"))
                                  ] = 60
    log_level: str = Field(default="info", pattern=r"^(debug|info|warning|error)$",
                           description="log level")
    password_file: str | None = Field(default=None, description=(
        "file holding hall-central's own MQTT password ([mqtt] username is its user)"))
    secret_file: Annotated[str, Field(description=(
        "the hall's HMAC secret (the agents' [hall] secret_file), for appointments "
        "imported with ID numbers; empty = data_dir/hall.secret"))] = ""
    queue: QueueRules = QueueRules()

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        m = _HOST_PORT_RE.match(v)
        if not m or not 0 < int(m["port"]) < 65536:
            raise ValueError(f"{v!r} is not host:port, e.g. 0.0.0.0:8780")
        return v

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


class CentralConfig(_Model):
    hall: HallConfig
    central: CentralSection = CentralSection()
    mqtt: MqttConfig = MqttConfig()
    appointments: AppointmentsConfig | None = None
    source: Path | None = Field(default=None, exclude=True)

    @property
    def catalog_path(self) -> Path:
        if not self.hall.catalog:
            return DEFAULTS_DIR / "services.toml"
        p = Path(self.hall.catalog)
        if not p.is_absolute() and self.source is not None:
            p = self.source.parent / p
        return p

    @property
    def data_dir(self) -> Path:
        p = Path(self.central.data_dir)
        if not p.is_absolute() and self.source is not None:
            p = self.source.parent / p
        return p


def _where(loc: tuple[int | str, ...]) -> str:
    parts = [str(x) for x in loc if not (isinstance(x, str) and x.startswith("function-"))]
    if not parts:
        return "(top level)"
    head = parts[0]
    if head in CentralConfig.model_fields:
        if head == "central" and len(parts) > 2 and parts[1] == "queue":
            return f"[central.queue] {' '.join(parts[2:])}"
        return f"[{head}] {' '.join(parts[1:])}".rstrip()
    return " ".join(parts)


def _format(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: the configuration is not valid, so hall-central did not start:"]
    for e in err.errors():
        kind, msg = e["type"], e["msg"].removeprefix("Value error, ")
        if kind == "extra_forbidden":
            msg = "unknown key: remove it or check its spelling"
        elif kind == "missing":
            msg = "missing: this key is required"
        elif ("input" in e and kind.endswith("_type")) or kind.endswith("_parsing"):
            msg = f"{msg} (got {e['input']!r})"
        lines.append(f"  {_where(tuple(e['loc']))}: {msg}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any], path: Path) -> CentralConfig:
    try:
        cfg = CentralConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format(path, e)) from None
    return cfg.model_copy(update={"source": path.resolve()})


def load_central_config(path: Path) -> CentralConfig:
    return parse_config(_read_toml(path, "configuration file"), path)
