"""``hallctl``: the technicians' and window staff's command line.

It talks to the running agent over the local API. Output is for people by
default and JSON with ``--json`` (one object on stdout) for scripts.

This module builds the argument parser and dispatches; the commands live in
their rooms (hall, bus, ops, udev, card) and share :mod:`hallctl.common`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from drivers.errors import ConfigError
from hall_agent import __version__
from hall_agent.contract.client import AgentRefused, AgentUnavailable
from hall_agent.contract.config import ENV_CONFIG, load_config, resolve_config_path
from hallctl import bus as hallctl_bus
from hallctl import card as hallctl_card
from hallctl import hall as hallctl_hall
from hallctl import ops as hallctl_ops
from hallctl import udev as hallctl_udev
from hallctl.common import (
    DEFAULT_TZ,
    EXIT_CODES,
    EXIT_DEVICE,
    EXIT_NO_AGENT,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    Ctl,
)
from hallctl.completion import bash_completion

__all__ = ["EXIT_DEVICE", "EXIT_NO_AGENT", "EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE",
           "build_parser", "main"]

#: Commands that must run with a broken config (they report it themselves).
TOLERATE_BAD_CONFIG = frozenset({"doctor", "export-logs", "udev", "completion", "probe"})


def cmd_completion(ctl: Ctl, a: argparse.Namespace) -> int:
    sys.stdout.write(bash_completion(build_parser()))
    return EXIT_OK


def _global_options(p: argparse.ArgumentParser, *, top: bool) -> None:
    """The options every command takes, before or after it (``hallctl doctor --json``).
    On a command they default to SUPPRESS, so they never undo one given before it."""
    keep: dict[str, Any] = {} if top else {"default": argparse.SUPPRESS}
    p.add_argument("--config", help="agent.toml (to find the agent's API address)", **keep)
    p.add_argument("--api", help="agent address host:port (overrides the config)", **keep)
    p.add_argument("--json", action="store_true", help="print JSON for scripts", **keep)
    p.add_argument("--lang", choices=["zh", "en"], help="language of the agent's "
                   "refusals (default: from LANG, Chinese unless it is English)", **keep)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hallctl", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="hall-edge technicians' tool: talks to the running hall-agent.",
        epilog=EXIT_CODES + f"\nconfig: --config, else ${ENV_CONFIG}, else "
                            "/etc/hall-edge/agent.toml")
    _global_options(p, top=True)
    p.add_argument("--version", action="version", version=f"hallctl {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    hallctl_hall.add_parsers(sub)
    hallctl_bus.add_parsers(sub)
    hallctl_ops.add_parsers(sub)
    hallctl_udev.add_parsers(sub)
    c = sub.add_parser("completion", help="print the bash completion script")
    c.add_argument("shell", choices=["bash"])
    hallctl_card.add_parsers(sub)
    for command in sub.choices.values():
        _global_options(command, top=False)
    return p


def language(a: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> str:
    """``--lang``, else the locale (LC_ALL, LC_MESSAGES, LANG): English when it says
    English, else Chinese, the hall's language."""
    if a.lang:
        return str(a.lang)
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(var, "")
        if value:
            return "en" if value.lower().startswith("en") else "zh"
    return "zh"


COMMANDS: dict[str, Callable[[Ctl, argparse.Namespace], int]] = {
    **hallctl_hall.COMMANDS,
    **hallctl_bus.COMMANDS,
    **hallctl_ops.COMMANDS,
    **hallctl_udev.COMMANDS,
    "completion": cmd_completion,
    **hallctl_card.COMMANDS,
}


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    a, extra = parser.parse_known_args(argv)
    if extra and a.cmd == "board":  # `board show --seconds 5 请 A001 号`: text anywhere
        a.text = [*a.text, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return a


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        a = _parse(parser, argv)
    except SystemExit as e:
        return EXIT_USAGE if e.code not in (0, None) else EXIT_OK
    api, tz = a.api, DEFAULT_TZ
    try:
        cfg = load_config(resolve_config_path(a.config))
        api, tz = api or cfg.agent.api, cfg.hall.tz
    except ConfigError as e:
        if api or a.cmd in TOLERATE_BAD_CONFIG:
            pass  # doctor & co. report a broken config themselves
        elif a.config or resolve_config_path(None).exists():
            print(f"hallctl: {e}", file=sys.stderr)
            return EXIT_USAGE
    ctl = Ctl(f"http://{api or '127.0.0.1:8765'}", a.json, lang=language(a), tz=tz)
    try:
        return COMMANDS[a.cmd](ctl, a)
    except AgentRefused as e:  # a command that has nothing to add to the agent's reason
        return ctl.refused(e)
    except AgentUnavailable as e:
        return ctl.agent_down(e)
    except BrokenPipeError:
        # `hallctl doctor | head`: the reader has what it wanted. Point stdout at
        # /dev/null so the interpreter's last flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
