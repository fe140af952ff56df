"""★ MQTT topic names (docs/protocols/MQTT.md, Topics): built and parsed here and nowhere else.

``P`` = ``qms/v1/{hall}`` (``[hall] id``); ``A`` = ``P/agent/{agent}`` (``[agent] id``).
The agent uses :class:`Topics` (its own ``A/...`` and the hall's ``P/central/...``);
a central uses :class:`HallTopics`, which reaches any agent's topics and subscribes
to all of them at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

ROOT = "qms/v1"  # MQTT.md, Topics: P = qms/v1/{hall}


@dataclass(frozen=True)
class HallTopics:
    """The topics of one hall: the central's ``P/central/...`` and any agent's."""

    hall: str

    @property
    def p(self) -> str:
        return f"{ROOT}/{self.hall}"

    @property
    def central_state(self) -> str:
        return f"{self.p}/central/state"

    @property
    def central_call(self) -> str:
        return f"{self.p}/central/call"

    @property
    def central_queue(self) -> str:
        return f"{self.p}/central/queue"

    @property
    def central_satisfaction(self) -> str:
        return f"{self.p}/central/satisfaction"

    def of_agent(self, agent: str) -> Topics:
        """Agent ``agent``'s ``A/...`` topics, e.g. to answer its request."""
        return Topics(self.hall, agent)

    def every_agent(self, kind: str) -> str:
        """A subscription to ``A/{kind}`` of every agent of the hall (``kind`` = ``request``,
        ``event``, ``state``…)."""
        return f"{self.p}/agent/+/{kind}"


@dataclass(frozen=True)
class Topics(HallTopics):
    """One agent's topics (``A`` = ``P/agent/{agent}``) and its hall's."""

    agent: str

    @property
    def a(self) -> str:
        return f"{self.p}/agent/{self.agent}"

    def device(self, name: str) -> str:
        """``A/device/{device}``: ``name`` is the device's config name (``board-hall``)."""
        return f"{self.a}/device/{name}"

    @property
    def state(self) -> str:
        return f"{self.a}/state"

    @property
    def event(self) -> str:
        return f"{self.a}/event"

    @property
    def request(self) -> str:
        return f"{self.a}/request"

    @property
    def reply(self) -> str:
        return f"{self.a}/reply"

    @property
    def ack(self) -> str:
        return f"{self.a}/ack"

    @property
    def lease(self) -> str:
        return f"{self.a}/lease"

    @property
    def cmd(self) -> str:
        return f"{self.a}/cmd"

    @property
    def cmd_result(self) -> str:
        return f"{self.a}/cmd_result"


class AgentTopic(NamedTuple):
    """A parsed ``qms/v1/{hall}/agent/{agent}/{rest}``; ``rest`` is ``event``,
    ``device/printer``…"""

    hall: str
    agent: str
    rest: str


def parse_agent_topic(topic: str) -> AgentTopic | None:
    """``qms/v1/{hall}/agent/{agent}/{rest}`` → (hall, agent, rest); None for any other
    topic (a central's, another root's)."""
    parts = topic.split("/", 5)
    if len(parts) < 6 or "/".join(parts[:2]) != ROOT or parts[3] != "agent":
        return None
    return AgentTopic(parts[2], parts[4], parts[5])
