"""Rating a window: which window served you, how satisfied you are, thank you."""

from __future__ import annotations

import uuid
from functools import partial

from hall_agent.contract.api import EvaluationIn, EvaluationOut
from hall_agent.contract.client import AgentRefused
from hall_agent.contract.levels import CHOICES as LEVELS
from hall_agent.contract.levels import Level
from kiosk.flows.queue import window_order
from kiosk.host import KioskHost
from kiosk.strings import localized
from kiosk.widgets import TileSpec


class RatingFlow:
    def __init__(self, k: KioskHost) -> None:
        self.k = k

    def start(self) -> None:
        """List the windows known so far; the caller asks the agent for the current ones."""
        self.k.go(self.render_windows)

    def render_windows(self) -> None:
        k = self.k
        windows = sorted((k.queue_data.windows if k.queue_data else {}).items(),
                         key=lambda kv: window_order(kv[0]))
        specs = [TileSpec(f"window:{wid}", k.t("window_n", w=wid),
                          wq.serving or "", on_click=partial(self.choose_window, wid))
                 for wid, wq in windows if wq.open]
        k.choice.set_choices(k.t("rate_title"), specs,
                             note="" if specs else k.t("no_windows"), tile_height=140)
        k.show_screen("rate_window", k.choice)

    def choose_window(self, window: str) -> None:
        self.k.flow.window = window
        self.k.go(self.render_levels)

    def render_levels(self) -> None:
        k = self.k
        specs = [TileSpec(f"level:{lv}", k.t("lvl_" + lv), variant="light",
                          on_click=partial(self.rate, lv)) for lv in LEVELS]
        k.choice.set_choices(k.t("rate_level_title", w=k.flow.window or ""), specs,
                             page_size=len(LEVELS), tile_height=115,
                             # one level per row: a slipped thumb must not rate the neighbour
                             max_cols=1)
        k.show_screen("rate_level", k.choice)

    def rate(self, level: Level) -> None:
        k, c = self.k, self.k.client
        if k.flow.busy or k.flow.window is None or c is None:
            return
        k.flow.busy = True
        req = EvaluationIn(window=k.flow.window, level=level)
        key = k.flow.key

        def ok(ev: EvaluationOut) -> None:
            k.flow.busy = False
            self.show_thanks(ev.follow_up)

        def refused(e: AgentRefused) -> None:
            k.flow.busy = False
            k.flow.key = str(uuid.uuid4())
            msg = localized(e.body.message, e.body.message_en, k.lang)
            k.go(lambda: k.show_notice("rate_failed", k.t("rate_failed"), msg))

        k.call(lambda: c.evaluate(req, key), ok, refused)

    def show_thanks(self, follow_up: bool) -> None:
        k = self.k
        k.clear_steps()
        detail = k.t("rate_follow_up") if follow_up else ""
        k.message.show_message("thanks", k.t("rate_thanks"), "", detail,
                               buttons=[(k.t("home"), k.go_home)])
        k.show_screen("rate_done", k.message, back=False, hold_s=k.settings.message_hold_s)
