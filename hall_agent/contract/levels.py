"""The five satisfaction levels of a rating (and ``none``: asked, not answered), in the
order the evaluator's keys and the kiosk show them (RS485.md, MQTT.md)."""

from __future__ import annotations

from typing import Literal, get_args

Level = Literal["very_satisfied", "satisfied", "basic", "unsatisfied", "very_unsatisfied", "none"]
LEVELS: tuple[Level, ...] = get_args(Level)
# A rating at or below "basic" asks the hall to follow up with the citizen.
FOLLOW_UP_LEVELS: frozenset[Level] = frozenset({"basic", "unsatisfied", "very_unsatisfied"})
# What a citizen chooses from (the kiosk's rating screen, the evaluator's five keys).
CHOICES: tuple[Level, ...] = LEVELS[:5]
