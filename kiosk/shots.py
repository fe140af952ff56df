"""``hall-kiosk --screenshot DIR``: every screen, in Chinese, English and elderly mode.

With the agent up, the catalogue and the queue are the agent's own; nothing is
ever written (no ticket is taken, no rating sent): the ticket screens use a
sample ticket. With the agent down, built-in sample data stands in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QApplication

from hall_agent.contract.api import QueueOut, ServicesOut
from hall_agent.contract.client import AgentClient, AgentUnavailable
from kiosk import sample
from kiosk.app import Kiosk
from kiosk.fit import layout_problems
from kiosk.flows.checkin import SAMPLE_CHECKIN
from kiosk.flows.selfservice import (
    SAMPLE_BOOKED,
    SAMPLE_CARD,
    SAMPLE_RESULT,
    SAMPLE_SLOTS,
    SAMPLE_STATE,
)
from kiosk.host import KioskSettings
from kiosk.strings import Lang

VARIANTS: tuple[tuple[str, Lang, bool], ...] = (
    ("zh", "zh", False), ("en", "en", False), ("elderly", "zh", True), ("elderly_en", "en", True),
)


def live_data(client: AgentClient | None) -> tuple[ServicesOut, QueueOut, bool]:
    """The agent's catalogue and queue, or the samples when it does not answer."""
    if client is not None:
        try:
            return client.services(), client.queue(), True
        except AgentUnavailable:
            pass
    return sample.SERVICES, sample.QUEUE, False


Step = Callable[[], None]


def _seq(*steps: Step) -> Step:
    def run() -> None:
        for step in steps:
            step()
    return run


def _steps(k: Kiosk, services: ServicesOut) -> list[tuple[str, Step]]:
    tk, guides, rating = k.tickets, k.guides, k.rating
    cats = tk.categories()
    closed = next((s for s in services.services if not s.open_now), None)
    first = services.services[0]
    guide = next((s for s in services.services if len(s.guide) > 80), first)
    window = next(iter(sorted(k.queue_data.windows))) if k.queue_data else "1"
    home = k.go_home
    steps: list[tuple[str, Step]] = [
        ("home", home),
        ("categories", _seq(home, tk.start)),
        ("services", _seq(home, tk.start,
                          lambda: k.go(lambda: tk.render_services(cats[0] if cats else "")))),
        ("priority", _seq(home, tk.start, lambda: k.go(tk.render_priority))),
        ("priority_services", _seq(home, tk.start, lambda: tk.choose_priority("elderly"),
                                   lambda: tk.render_services(first.category))),
        ("ticket", lambda: tk.show_ticket(sample.TICKET)),
        ("ticket_unprinted", lambda: tk.show_ticket(sample.TICKET_UNPRINTED)),
        ("guides", _seq(home, guides.open)),
        ("guides_search", _seq(home, guides.open, lambda: guides.list.search.setText("SB"))),
        ("guide", _seq(home, guides.open, lambda: guides.open_guide(guide))),
        ("queue", _seq(home, k.open_queue)),
        ("rate_window", _seq(home, k.start_rating)),
        ("rate_level", _seq(home, k.start_rating, lambda: rating.choose_window(window))),
        ("rate_reason", _seq(home, k.start_rating, lambda: rating.choose_window(window),
                             lambda: rating.choose_level("unsatisfied"))),
        ("rate_done", lambda: rating.show_thanks(True)),
        ("rate_already", lambda: rating.show_thanks(False, already=True)),
        ("checkin", _seq(home, k.cards.open_checkin)),
        *_card_steps(k, services),
        ("out_of_service", k.show_out_of_service),
        ("out_of_service_storage", lambda: k.show_out_of_service(sample.STORAGE_FULL)),
    ]
    if closed is not None:
        steps.insert(5, ("closed", _seq(home, lambda: tk.take(closed))))
    return steps


def _card_steps(k: Kiosk, services: ServicesOut) -> list[tuple[str, Step]]:
    """ID card, check-in and 24-hour screens (kiosk/flows/checkin.py, selfservice.py)."""
    home, cf, ss = k.go_home, k.cards, k.selfservice
    svc = next((s for s in services.services if s.requires_id), services.services[0])
    misread = {"ok": False, "error": "bad_check_digit", "message": "证件读取有误，请取下后重新放置",
               "message_en": "The card was misread: lift it and place it again"}

    def too_early() -> None:
        en = k.lang == "en"
        k.go(lambda: k.show_notice(
            "checkin_refused", k.t("checkin_failed"),
            "Your slot is 10:00-10:30; check-in opens at 09:30" if en
            else "预约时段 10:00-10:30，请于 09:30 后签到", take_ticket=True))

    def selfservice(on: bool) -> Step:
        def go() -> None:
            ss.state = SAMPLE_STATE if on else None
        return go

    return [
        ("card_prompt", _seq(home, lambda: cf.ask_card_for(svc))),
        ("card_misread", _seq(home, lambda: cf.ask_card_for(svc),
                              lambda: cf.on_card(misread))),
        ("checkin_prompt", _seq(home, cf.open_checkin)),
        ("checkin_done", lambda: cf.show_checked_in(SAMPLE_CHECKIN)),
        ("checkin_too_early", _seq(home, cf.open_checkin, too_early)),
        ("selfservice_home", _seq(selfservice(True), home)),
        ("selfservice_menu", lambda: ss.on_card(SAMPLE_CARD)),
        ("selfservice_result", lambda: k.go(lambda: ss.show_result(SAMPLE_RESULT))),
        ("selfservice_slots", lambda: k.go(lambda: ss.render_slots(SAMPLE_SLOTS))),
        ("selfservice_booked", lambda: ss.show_booked(SAMPLE_BOOKED)),
    ]


def each_screen(settings: KioskSettings, services: ServicesOut, queue: QueueOut, *,
                size: tuple[int, int] = (1080, 1920),
                variants: tuple[tuple[str, Lang, bool], ...] = VARIANTS,
                ) -> Iterator[tuple[str, str, Kiosk]]:
    """Every screen of every variant, on show and settled: ``(name, tag, kiosk)``."""
    app = QApplication.instance()
    assert app is not None, "create the QApplication first"
    for tag, lang, elderly in variants:
        s = replace(settings, lang=lang, elderly=elderly, events=False,
                    compact=size[1] < 1400,
                    hall_name=settings.hall_name or services.hall_name)
        k = Kiosk(s, None)  # no client: screenshots never write to the agent
        k.resize(*size)
        k.set_services(services)
        k.queue_data = queue
        k.show()
        try:
            for name, go in _steps(k, services):
                go()
                app.processEvents()
                # tile grids pick their columns from their width, which changes their
                # minimum height: settle the size again before taking the picture
                k.resize(*size)
                app.processEvents()
                yield name, tag, k
        finally:
            k.stop()
            k.close()
            k.deleteLater()
            app.processEvents()


def render_all(out_dir: Path, settings: KioskSettings, client: AgentClient | None, *,
               size: tuple[int, int] = (1080, 1920), scale: float = 1.0,
               variants: tuple[tuple[str, Lang, bool], ...] = VARIANTS) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    services, queue, live = live_data(client)
    written: list[Path] = []
    for name, tag, k in each_screen(settings, services, queue, size=size, variants=variants):
        for problem in layout_problems(k, size):
            print(f"warning: {name}_{tag}: {problem}")
        pix = k.grab()
        if scale != 1.0:
            pix = pix.scaledToWidth(round(pix.width() * scale),
                                    Qt.TransformationMode.SmoothTransformation)
        path = out_dir / f"{name}_{tag}.png"
        pix.save(str(path), "PNG")
        written.append(path)
    source = "the agent" if live else "built-in sample data"
    print(f"wrote {len(written)} screenshots to {out_dir} (catalogue and queue from {source})")
    return written
