"""``hallctl``: the technicians' and window staff's command line.

It talks to the running agent over the local API. Output is for people by
default and JSON with ``--json`` (one object on stdout) for scripts.

This module builds the argument parser and dispatches; the commands live in
their rooms (hall, bus, ops, udev, card) and share :mod:`hallctl.common`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from drivers.errors import ConfigError
from hall_agent.contract.client import AgentRefused, AgentUnavailable
from hall_agent.contract.config import ENV_CONFIG, load_config, resolve_config_path
from hallctl import bus as hallctl_bus
from hallctl import card as hallctl_card
from hallctl import hall as hallctl_hall
from hallctl import ops as hallctl_ops
from hallctl import udev as hallctl_udev
from hallctl.common import (
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hallctl", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="hall-edge technicians' tool: talks to the running hall-agent.",
        epilog=EXIT_CODES + f"\nconfig: --config, else ${ENV_CONFIG}, else "
                            "/etc/hall-edge/agent.toml")
    p.add_argument("--config", help="agent.toml (to find the agent's API address)")
    p.add_argument("--api", help="agent address host:port (overrides the config)")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    hallctl_hall.add_parsers(sub)
    hallctl_bus.add_parsers(sub)
    hallctl_ops.add_parsers(sub)
    hallctl_udev.add_parsers(sub)
    c = sub.add_parser("completion", help="print the bash completion script")
    c.add_argument("shell", choices=["bash"])
    hallctl_card.add_parsers(sub)
    return p


COMMANDS: dict[str, Callable[[Ctl, argparse.Namespace], int]] = {
    **hallctl_hall.COMMANDS,
    **hallctl_bus.COMMANDS,
    **hallctl_ops.COMMANDS,
    **hallctl_udev.COMMANDS,
    "completion": cmd_completion,
    **hallctl_card.COMMANDS,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        a = parser.parse_args(argv)
    except SystemExit as e:
        return EXIT_USAGE if e.code not in (0, None) else EXIT_OK
    api = a.api
    if not api:
        try:
            api = load_config(resolve_config_path(a.config)).agent.api
        except ConfigError as e:
            if a.cmd in TOLERATE_BAD_CONFIG:
                pass  # doctor & co. report a broken config themselves
            elif a.config or resolve_config_path(None).exists():
                print(f"hallctl: {e}", file=sys.stderr)
                return EXIT_USAGE
            api = "127.0.0.1:8765"  # no config on this machine: the documented default
    ctl = Ctl(f"http://{api}", a.json)
    try:
        return COMMANDS[a.cmd](ctl, a)
    except AgentRefused as e:  # a command that has nothing to add to the agent's reason
        return ctl.refused(e)
    except AgentUnavailable as e:
        return ctl.agent_down(e)


if __name__ == "__main__":
    sys.exit(main())
