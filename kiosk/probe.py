"""What a test outside the process needs to see of a running ``hall-kiosk``.

With ``HALL_KIOSK_PROBE=DIR`` in its environment, the kiosk answers SIGUSR1 by
writing ``DIR/probe.json`` (the screen on show, language and mode, the clock as
shown, the window's size, every visible button with its centre in screen
coordinates, and :func:`kiosk.fit.layout_problems`) and ``DIR/probe.png`` (the
window as it is drawn). The test taps with xdotool, as a person does, and reads
here what came of it. Without the variable nothing is installed.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QLabel, QPushButton

from kiosk.app import Kiosk
from kiosk.fit import layout_problems
from kiosk.widgets import Tile

ENV = "HALL_KIOSK_PROBE"


def snapshot(k: Kiosk) -> dict[str, Any]:
    buttons = []
    for b in k.findChildren(QPushButton):
        if not b.isVisible():
            continue
        c = b.mapToGlobal(b.rect().center())
        buttons.append({"key": b.key if isinstance(b, Tile) else "",
                        "text": b.spec.title if isinstance(b, Tile) else b.text(),
                        "x": c.x(), "y": c.y(), "enabled": b.isEnabled()})
    return {"screen": k.screen_name, "lang": k.lang, "elderly": k.elderly,
            "width": k.width(), "height": k.height(),
            "clock": k.header.clock_label.text(), "date": k.header.date_label.text(),
            "buttons": buttons, "problems": layout_problems(k, _screen_size(k)),
            "texts": [w.text() for w in k.findChildren(QLabel) if w.isVisible() and w.text()]}


def _screen_size(k: Kiosk) -> tuple[int, int]:
    """The window must fill the screen it is on, no more (and no less)."""
    s = k.screen()
    if s is None:
        return k.width(), k.height()
    g = s.geometry()
    return g.width(), g.height()


def install(k: Kiosk) -> None:
    """Answer SIGUSR1 when ``HALL_KIOSK_PROBE`` names a directory."""
    where = os.environ.get(ENV)
    if not where:
        return
    out = Path(where)
    out.mkdir(parents=True, exist_ok=True)
    seq = [0]

    def write() -> None:
        seq[0] += 1
        data = snapshot(k) | {"seq": seq[0]}
        k.grab().save(str(out / "probe.png"), "PNG")
        tmp = out / "probe.json.tmp"
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        tmp.replace(out / "probe.json")  # the test never reads half a file

    # the handler runs between two Python bytecodes on the Qt thread; the work is
    # done from the event loop, where widgets may be read safely
    signal.signal(signal.SIGUSR1, lambda *_: QTimer.singleShot(0, write))
