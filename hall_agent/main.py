"""``hall-agent``: start the agent (store, devices, local API) from a config file."""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO, Any

from drivers.errors import HallEdgeError
from hall_agent import __version__
from hall_agent.contract.config import (
    ENV_CONFIG,
    check_ports,
    load_catalog,
    load_config,
    resolve_config_path,
)
from hall_agent.sdnotify import Notifier, Watchdog

EXIT_OK, EXIT_CONFIG, EXIT_RUNTIME = 0, 2, 3


def setup_logging(level: str, data_dir: Path | None = None) -> None:
    """key=value lines to journald under systemd, text on a terminal (hall_agent.logs)."""
    from hall_agent import logs

    logs.setup(level, data_dir)


def liveness_checks(agent: Any, api: str, server: Any) -> list[Callable[[], str | None]]:
    """What must answer for the systemd watchdog to be pinged (sdnotify.Watchdog)."""
    import http.client

    host, port = api.rsplit(":", 1)
    host = {"0.0.0.0": "127.0.0.1", "[::]": "::1", "::": "::1"}.get(host, host.strip("[]"))

    def store() -> str | None:
        # A write, not a read: a store that hangs or breaks on a write fails here. A card
        # that is full or read-only is not a reason to restart (a restart frees no space
        # and would fail to start): health, the API's 503s and STATUS say it instead.
        problem: str | None = agent.store.probe_write()
        return None if agent.store.fault is not None else problem

    def api_loop() -> str | None:
        if server.should_exit:
            return None  # stopping: STOPPING=1 tells systemd
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            conn.request("GET", "/v1/health")
            status = conn.getresponse().status
        except OSError as e:
            return f"the local API on {api} does not answer ({e})"
        finally:
            conn.close()
        return None if status == 200 else f"the local API answers {status} to /v1/health"

    def devices() -> str | None:
        return None if agent.supervisor.alive() else "the device supervisor has stopped"

    return [store, api_loop, devices]


def lock_data_dir(data_dir: Path) -> IO[str]:
    """One agent per data_dir: a second one would fight the first over every device."""
    data_dir.mkdir(parents=True, exist_ok=True)
    f = (data_dir / "agent.lock").open("a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        pid = f.read().strip() or "?"
        f.close()
        raise HallEdgeError(f"another hall-agent (pid {pid}) is already running with data_dir "
                            f"{data_dir}; stop it first (systemctl stop hall-agent)") from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


# glibc's mallopt parameter for the number of malloc arenas (malloc.h: M_ARENA_MAX).
M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = 1) -> bool:
    """glibc gives threads that allocate at once their own malloc arenas (up to 8 per
    core), each keeping freed memory of its own. The agent's threads mostly wait on
    devices and the network, and the GIL serialises Python's allocations anyway: one
    arena costs nothing measurable and keeps a Pi's small memory from being spread
    thin (docs/benchmarks-restructure.md). False where there is no glibc."""
    import ctypes

    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="hall-agent", description="hall-edge agent: queue, devices and local API.",
        epilog=f"Config: --config, else ${ENV_CONFIG}, else /etc/hall-edge/agent.toml. "
               "Exit codes: 0 stopped cleanly, 2 configuration error, 3 runtime error.")
    p.add_argument("--config", help="path of agent.toml")
    p.add_argument("--check", action="store_true",
                   help="validate the config and the catalogue, then exit")
    p.add_argument("--version", action="version", version=f"hall-agent {__version__}")
    args = p.parse_args(argv)

    try:
        cfg = load_config(resolve_config_path(args.config))
        catalog = load_catalog(cfg.catalog_path, cfg.source)
    except HallEdgeError as e:
        print(f"hall-agent: {e}", file=sys.stderr)
        return EXIT_CONFIG
    errors, notes = check_ports(cfg)
    if errors:
        print(f"hall-agent: {cfg.source}: the configuration is not valid, so nothing was "
              "started:\n" + "\n".join(f"  {e}" for e in errors), file=sys.stderr)
        return EXIT_CONFIG
    if args.check:
        for n in notes:
            print(f"note: {n}")
        print(f"{cfg.source}: ok ({len(catalog.services)} services, "
              f"{len(catalog.windows)} windows)")
        return EXIT_OK

    from drivers import traffic
    from hall_agent import logs

    logs.set_timezone(cfg.hall.tz)  # log lines in hall time, with its offset
    traffic.set_timezone(cfg.hall.tz)  # and the raw-traffic logs' stamps
    setup_logging(cfg.agent.log_level, Path(cfg.agent.data_dir))
    log = logging.getLogger("hall_agent")
    limit_malloc_arenas()  # before any thread starts

    import uvicorn

    from hall_agent.agent import Agent
    from hall_agent.api.app import create_app
    from hall_agent.api.limits import GuardedH11

    try:
        lock = lock_data_dir(Path(cfg.agent.data_dir))
        agent = Agent(cfg, catalog=catalog)
    except HallEdgeError as e:
        print(f"hall-agent: {e}", file=sys.stderr)
        return EXIT_RUNTIME
    except OSError as e:  # the lock, the secret, the logs: a full or read-only card
        from hall_agent.core.storage import start_error

        print(f"hall-agent: {start_error(cfg.agent.data_dir, e)}", file=sys.stderr)
        return EXIT_RUNTIME
    agent.start()
    log.info("hall-agent %s: hall %s, agent %s, %s mode, API on http://%s, boot %d",
             __version__, cfg.hall.id, cfg.agent.id, agent.mode, cfg.agent.api, agent.boot)
    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # Open event streams (the kiosk's) never end by themselves: end them, or the
            # graceful stop would wait its whole timeout for them.
            agent.bus.close()
            super().handle_exit(sig, frame)

    server = Server(uvicorn.Config(
        create_app(agent), host=cfg.agent.api_host, port=cfg.agent.api_port,
        log_level=cfg.agent.log_level, access_log=False, lifespan="off",
        log_config=None,  # uvicorn's records go through our handlers (journald format)
        timeout_graceful_shutdown=5,
        # Bounded connections, headers due in 10 s (api/limits.py), idle ones closed.
        http=GuardedH11, timeout_keep_alive=5))
    # systemd (Type=notify): READY=1 once the API listens, then WATCHDOG=1 while the
    # store, the API loop and the device supervisor answer; STOPPING=1 on the way out.
    watchdog = Watchdog(Notifier(), lambda: bool(server.started),
                        liveness_checks(agent, cfg.agent.api, server),
                        status=f"serving on http://{cfg.agent.api}, {agent.mode} mode",
                        notice=lambda: (None if agent.store.fault is None
                                        else agent.store.fault.en))
    watchdog.start()
    # uvicorn re-raises the signal that stopped it once it has shut down; with the
    # default handler that would kill the process before the agent says offline on
    # MQTT and closes its devices. A no-op handler keeps the clean stop clean.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    try:
        server.run()
    finally:
        watchdog.stop("closing devices and the store")
        agent.close()
        lock.close()
    if not server.started:
        log.error("the local API could not listen on %s (in use by another agent?)",
                  cfg.agent.api)
        return EXIT_RUNTIME
    log.info("hall-agent stopped")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
