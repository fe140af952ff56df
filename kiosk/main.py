"""``hall-kiosk``: the citizens' touch screen.

Exit codes: 0 normal (or screenshots written), 2 the configuration cannot be used.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from hall_agent.contract.client import AgentClient
from hall_agent.contract.config import (
    Config,
    ConfigError,
    KioskConfig,
    load_config,
    resolve_config_path,
)
from kiosk import probe
from kiosk.app import Kiosk
from kiosk.host import KioskSettings


def agent_url(cfg: Config | None) -> str:
    """``[agent] api`` as a URL; a wildcard listen address is reached on loopback."""
    if cfg is None:
        return "http://127.0.0.1:8765"
    host, port = cfg.agent.api_host, cfg.agent.api_port
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 1080x1920"
                                         ) from None
    return w, h


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hall-kiosk", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="PATH",
                   help="agent config (TOML); default $HALL_EDGE_CONFIG or "
                        "/etc/hall-edge/agent.toml")
    p.add_argument("--windowed", action="store_true",
                   help="run in a window (desktop) instead of full screen")
    p.add_argument("--size", type=_size, default=None, metavar="WxH",
                   help="window size, default 1080x1920 (portrait)")
    p.add_argument("--landscape", action="store_true", help="shortcut for --size 1920x1080")
    p.add_argument("--idle-timeout", type=float, default=None, metavar="S",
                   help="seconds without a touch before returning home (default 60)")
    p.add_argument("--dpi", type=float, default=None,
                   help="screen dots per inch, for the 15 mm touch targets "
                        "(default: what the screen reports)")
    p.add_argument("--lang", choices=("zh", "en"), default=None,
                   help="start-up language (default [kiosk] lang)")
    p.add_argument("--elderly", action="store_true", help="start in elderly (large text) mode")
    p.add_argument("--screenshot", metavar="DIR", type=Path,
                   help="render every screen to PNG files in DIR, offscreen, and exit")
    p.add_argument("--screenshot-scale", type=float, default=1.0, metavar="F",
                   help="scale the screenshots (e.g. 0.5 for documentation)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.screenshot is not None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    cfg: Config | None
    try:
        cfg = load_config(resolve_config_path(args.config))
    except ConfigError as e:
        if args.screenshot is None:
            print(f"hall-kiosk: {e}", file=sys.stderr)
            return 2
        print(f"hall-kiosk: {e}\nhall-kiosk: rendering with built-in sample data",
              file=sys.stderr)
        cfg = None

    from PyQt6.QtCore import Qt, QTimer
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    size = args.size or ((1920, 1080) if args.landscape else (1080, 1920))
    kc = cfg.kiosk if cfg is not None else KioskConfig()
    dpi = args.dpi or kc.dpi
    screen = app.primaryScreen()
    if dpi is None:
        reported = screen.physicalDotsPerInch() if screen is not None else 0.0
        dpi = reported if 40 <= reported <= 400 else 96.0
    if args.size or args.landscape or args.windowed:
        height = size[1]
    else:
        height = screen.size().height() if screen is not None else size[1]
    settings = KioskSettings(
        compact=height < 1400,
        idle_timeout_s=args.idle_timeout or kc.idle_timeout_s, ticket_hold_s=kc.ticket_hold_s,
        unprinted_hold_s=kc.unprinted_hold_s, blank_after_s=kc.blank_after_s,
        dpi=dpi, lang=args.lang or kc.lang,
        elderly=args.elderly,
        checkin_enabled=cfg is not None and cfg.id_reader is not None,
        hall_name=cfg.hall.name if cfg is not None else "",
        timezone=cfg.hall.timezone if cfg is not None else KioskSettings.timezone)
    client = AgentClient(agent_url(cfg))

    if args.screenshot is not None:
        from hall_agent.contract.client import wait_for_agent
        from kiosk.shots import render_all

        up = wait_for_agent(client, timeout_s=1.0) is not None
        render_all(args.screenshot, settings, client if up else None, size=size,
                   scale=args.screenshot_scale)
        client.close()
        return 0

    # Ctrl-C / systemd's SIGTERM end the event loop cleanly; set before the window
    # shows, and queued (quit() before the loop runs would be lost), so a stop that
    # comes as soon as the window appears is a clean one too.
    signal.signal(signal.SIGINT, lambda *_: QTimer.singleShot(0, app.quit))
    signal.signal(signal.SIGTERM, lambda *_: QTimer.singleShot(0, app.quit))
    kiosk = Kiosk(settings, client)
    kiosk.setWindowTitle(settings.hall_name or "hall-kiosk")
    # The window is pinned to its size: a screen whose content wants more height must
    # fit it (the tests check that it does), never grow the window past the display.
    if args.windowed or not kc.fullscreen:
        kiosk.setFixedSize(*size)
        kiosk.show()
    else:
        app.setOverrideCursor(Qt.CursorShape.BlankCursor)  # a touch screen shows no pointer
        # Full screen is a request to the window manager; a kiosk session often runs
        # none (X started with only hall-kiosk), so the window also takes the screen's
        # geometry itself.
        if screen is not None:
            geo = screen.geometry()
            kiosk.setFixedSize(geo.size())
            kiosk.move(geo.topLeft())
        kiosk.showFullScreen()
    kiosk.start()
    probe.install(kiosk)
    pulse = QTimer()  # lets Python see signals while Qt's loop runs
    pulse.start(250)
    pulse.timeout.connect(lambda: None)
    code = app.exec()
    kiosk.stop()
    client.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
