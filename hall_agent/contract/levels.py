"""The five satisfaction levels of a rating (and ``none``: asked, not answered), in the
order the evaluator's keys and the kiosk show them (RS485.md, MQTT.md)."""

from __future__ import annotations

from typing import Literal, NamedTuple, get_args

Level = Literal["very_satisfied", "satisfied", "basic", "unsatisfied", "very_unsatisfied", "none"]
LEVELS: tuple[Level, ...] = get_args(Level)
# A rating at or below "basic" asks the hall to follow up with the citizen.
FOLLOW_UP_LEVELS: frozenset[Level] = frozenset({"basic", "unsatisfied", "very_unsatisfied"})
# What a citizen chooses from (the kiosk's rating screen, the evaluator's five keys).
CHOICES: tuple[Level, ...] = LEVELS[:5]


class Reason(NamedTuple):
    """Why a citizen gave ``basic`` or worse: the scheme asks for one, so the hall can
    follow it up (the evaluator's keys cannot say; the kiosk asks)."""

    id: str
    text: str
    text_en: str


# Short and in the words citizens use; ``other`` last. Ids are stable (stored, sent).
REASONS: tuple[Reason, ...] = (
    Reason("long_wait", "等候时间长", "Long wait"),
    Reason("slow", "办事效率低", "Slow service"),
    Reason("attitude", "服务态度差", "Unfriendly staff"),
    Reason("unclear_materials", "材料要求不清楚", "Unclear about the documents needed"),
    Reason("repeat_visits", "来了不止一次才办成", "Had to come more than once"),
    Reason("other", "其他", "Other"),
)
