"""What every hallctl command shares: the exit codes, the connection to the agent, and
how results and failures are printed (for people, or one JSON object with ``--json``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from drivers.errors import ConfigError
from hall_agent.contract.api import ErrorBody
from hall_agent.contract.client import AgentClient, AgentRefused, AgentUnavailable
from hall_agent.contract.config import load_config, resolve_config_path

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")  # [hall] timezone's default

EXIT_OK = 0
EXIT_REFUSED = 1  # the agent refused the request (4xx): see the message
EXIT_USAGE = 2  # bad command line or configuration
EXIT_NO_AGENT = 3  # the agent is not running or not reachable
EXIT_DEVICE = 4  # a device needs attention (fault or degraded), or a print failed

EXIT_CODES = f"""exit codes:
  {EXIT_OK}  done; every device ok
  {EXIT_REFUSED}  the agent refused the request (the message says why)
  {EXIT_USAGE}  bad command line or configuration, or a value the agent finds invalid
  {EXIT_NO_AGENT}  the agent is not running or not reachable (systemctl status hall-agent)
  {EXIT_DEVICE}  a device needs attention (fault or degraded), or the printer did not print
"""

STATUS_ZH = {"ok": "正常", "degraded": "需处理", "fault": "故障", "absent": "未配置"}


class Ctl:
    """One run of hallctl: where the agent is, its client, and how to print."""

    def __init__(self, base: str, as_json: bool, timeout: float = 10.0, *,
                 lang: str = "zh", tz: ZoneInfo = DEFAULT_TZ) -> None:
        self.base = base
        self.as_json = as_json
        self.lang = lang
        self.tz = tz  # the hall's: every time shown to a person is hall time
        self.agent = AgentClient(base, timeout_s=timeout, ticket_timeout_s=timeout,
                                 user_agent="hallctl")

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

    def message(self, body: ErrorBody) -> str:
        """The agent's message in the language asked for (``--lang``, LANG)."""
        return (body.message_en or body.message) if self.lang == "en" else body.message

    def refused(self, e: AgentRefused) -> int:
        """The agent's own refusal, with the field at fault; returns :data:`EXIT_USAGE`
        when the agent found a value invalid (``invalid_request``: what was typed is
        wrong), else :data:`EXIT_REFUSED`."""
        body = e.body.model_dump(mode="json")
        if self.as_json:
            print(json.dumps({"http_status": e.status, **body}, ensure_ascii=False, indent=2))
        else:
            field = f" [{e.body.field}]" if e.body.field else ""
            print(f"refused ({e.status}){field}: {self.message(e.body)}", file=sys.stderr)
        return EXIT_USAGE if e.body.error == "invalid_request" else EXIT_REFUSED

    def now(self) -> datetime:
        return datetime.now(self.tz)

    def agent_down(self, e: AgentUnavailable) -> int:
        """The agent did not answer (or not readably); returns :data:`EXIT_NO_AGENT`."""
        cause = e.__cause__
        if isinstance(cause, httpx.ConnectError):
            message = (f"the agent is not running at {self.base} (connection refused): "
                       "start it with `systemctl start hall-agent`, or check [agent] api "
                       "in the config")
        elif isinstance(cause, httpx.TimeoutException):
            message = (f"the agent at {self.base} did not answer in time: it may be hung; "
                       "see `journalctl -u hall-agent`")
        else:
            message = str(e)
        if self.as_json:
            print(json.dumps({"error": "agent_down", "message": message}))
        else:
            print(f"hallctl: {message}", file=sys.stderr)
        return EXIT_NO_AGENT

    def refuse_beside_agent(self, what: str, force: bool) -> int | None:
        """:data:`EXIT_REFUSED` (said) when the agent runs and owns the devices: talking
        straight to a port beside it garbles both sides. None when it is fine to go."""
        if force or not self.agent_up():
            return None
        return self.fail(EXIT_REFUSED, "agent_running",
                         f"the agent is running ({self.base}) and owns {what}: stop it first "
                         "(sudo systemctl stop hall-agent), ask it instead (hallctl "
                         "devices), or add --force")

    def agent_up(self) -> bool:
        """Whether an agent answers its health check within 2 s."""
        probe = AgentClient(self.base, timeout_s=2, user_agent="hallctl")
        try:
            probe.health()
        except (AgentUnavailable, AgentRefused):
            return False
        finally:
            probe.close()
        return True


def config_data_dir(config: str | None) -> Path | None:
    """The agent's data_dir from its config, or None when the config does not load."""
    try:
        return Path(load_config(resolve_config_path(config)).agent.data_dir)
    except ConfigError:
        return None
