"""Rating a visit: which window served you, how satisfied you are (and why, for basic
or worse), thank you. One rating per visit: the agent answers a second one of the
same ticket ``already_rated``, which the citizen reads as a thank-you, not an error."""

from __future__ import annotations

import uuid
from functools import partial

from hall_agent.contract.api import EvaluationIn, EvaluationOut, ReasonOut, ReasonsOut
from hall_agent.contract.client import AgentRefused
from hall_agent.contract.levels import CHOICES as LEVELS
from hall_agent.contract.levels import FOLLOW_UP_LEVELS, REASONS, Level
from kiosk.flows.queue import window_order
from kiosk.host import KioskHost
from kiosk.strings import localized
from kiosk.widgets import TileSpec

# The scale a person reads before the words: a face from smiling to frowning and a
# colour from green to red (kiosk/theme.py, variant "lvl_…").
MOOD: dict[Level, int] = {"very_satisfied": 2, "satisfied": 1, "basic": 0,
                          "unsatisfied": -1, "very_unsatisfied": -2}


class RatingFlow:
    def __init__(self, k: KioskHost) -> None:
        self.k = k
        self.level: Level | None = None
        self.ticket: str | None = None
        self.reasons: list[ReasonOut] = []

    def start(self) -> None:
        """List the windows known so far; the caller asks the agent for the current ones."""
        self.k.go(self.render_windows)

    def render_windows(self) -> None:
        k = self.k
        windows = sorted((k.queue_data.windows if k.queue_data else {}).items(),
                         key=lambda kv: window_order(kv[0]))
        specs = [TileSpec(f"window:{wid}", k.t("window_n", w=wid),
                          wq.serving or "",
                          on_click=partial(self.choose_window, wid, wq.serving))
                 for wid, wq in windows if wq.open]
        k.choice.set_choices(k.t("rate_title"), specs,
                             note="" if specs else k.t("no_windows"), tile_height=140)
        k.show_screen("rate_window", k.choice)

    def choose_window(self, window: str, ticket: str | None = None) -> None:
        """``ticket``: the number the citizen saw served there (the visit rated)."""
        self.k.flow.window = window
        self.ticket = ticket
        self.k.go(self.render_levels)

    def render_levels(self) -> None:
        k = self.k
        specs = [TileSpec(f"level:{lv}", k.t("lvl_" + lv), variant="lvl_" + lv,
                          face=MOOD[lv], on_click=partial(self.choose_level, lv))
                 for lv in LEVELS]
        k.choice.set_choices(k.t("rate_level_title", w=k.flow.window or ""), specs,
                             page_size=len(LEVELS),
                             tile_height=200 if k.theme.elderly else 220,
                             # one level per row: a slipped thumb must not rate the neighbour
                             max_cols=1)
        k.show_screen("rate_level", k.choice)

    def choose_level(self, level: Level) -> None:
        """Basic or worse: ask why (from the hall's short list) before sending."""
        self.level = level
        if level not in FOLLOW_UP_LEVELS:
            self.rate(level)
            return
        c = self.k.client
        if c is None:  # screenshots: the contract's own list
            self.reasons = [ReasonOut(id=r.id, text=r.text, text_en=r.text_en) for r in REASONS]
            self.k.go(self.render_reasons)
            return

        def ok(r: ReasonsOut) -> None:
            self.reasons = r.reasons
            self.k.go(self.render_reasons)

        self.k.call(c.evaluation_reasons, ok)

    def render_reasons(self) -> None:
        k = self.k
        specs = [TileSpec(f"reason:{r.id}", r.text if k.lang == "zh" else r.text_en or r.text,
                          variant="light", on_click=partial(self.rate_with, r.id))
                 for r in self.reasons]
        k.choice.set_choices(k.t("rate_reason_title"), specs, note=k.t("rate_reason_note"),
                             page_size=max(1, len(specs)), tile_height=130, max_cols=1)
        k.show_screen("rate_reason", k.choice)

    def rate_with(self, reason: str) -> None:
        if self.level is not None:
            self.rate(self.level, reason)

    def rate(self, level: Level, reason: str | None = None) -> None:
        k, c = self.k, self.k.client
        if k.flow.busy or k.flow.window is None or c is None:
            return
        k.flow.busy = True
        req = EvaluationIn(window=k.flow.window, level=level, ticket=self.ticket,
                           reason=reason)
        key = k.flow.key

        def ok(ev: EvaluationOut) -> None:
            k.flow.busy = False
            self.show_thanks(ev.follow_up)

        def refused(e: AgentRefused) -> None:
            k.flow.busy = False
            k.flow.key = str(uuid.uuid4())
            if e.body.error == "already_rated":
                self.show_thanks(False, already=True)
                return
            if e.body.error == "reason_required":
                self.choose_level(level)
                return
            msg = localized(e.body.message, e.body.message_en, k.lang)
            k.go(lambda: k.show_notice("rate_failed", k.t("rate_failed"), msg))

        k.call(lambda: c.evaluate(req, key), ok, refused)

    def show_thanks(self, follow_up: bool, *, already: bool = False) -> None:
        k = self.k
        k.clear_steps()
        detail = k.t("rate_follow_up") if follow_up else ""
        # the footer's 首页 is the way home: no second one on the screen
        if already:
            k.message.show_message("already_rated", k.t("rate_already"),
                                   k.t("rate_already_body"))
        else:
            k.message.show_message("thanks", k.t("rate_thanks"), "", detail)
        k.show_screen("rate_done", k.message, back=False, hold_s=k.settings.message_hold_s)
