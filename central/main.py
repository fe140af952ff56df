"""``hall-central``: the hall's queue server, and its admin commands.

    hall-central [--config PATH]             run (systemd: hall-central.service)
    hall-central --check [--config PATH]     check the config and catalogue, then exit
    hall-central user add|passwd|list …      staff logins (central/auth.py)
    hall-central export --day 2026-11-30     the day's tickets and clerk actions as JSON
    hall-central backup DEST                 a consistent copy of the store

The config is ``--config``, else ``HALL_EDGE_CONFIG``, else /etc/hall-edge/central.toml.
Exit codes: 0 ok; 1 a failure while running (the log says why); 2 the config or the
command line is wrong (the message names the key).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from central.config import DEFAULT_CENTRAL_CONFIG, CentralConfig, ConfigError, load_central_config
from hall_agent.contract.catalog import Catalog
from hall_agent.contract.config import ENV_CONFIG, load_catalog

if TYPE_CHECKING:
    from central.service import HallCentral

log = logging.getLogger("central")


def config_path(cli: str | None) -> Path:
    if cli:
        return Path(cli)
    env = os.environ.get(ENV_CONFIG)
    return Path(env) if env else DEFAULT_CENTRAL_CONFIG


def load(path: str | Path | None) -> tuple[CentralConfig, Catalog]:
    cfg = load_central_config(config_path(str(path) if path else None))
    return cfg, load_catalog(cfg.catalog_path)


def _web(cfg: CentralConfig, svc: HallCentral) -> tuple[Any, threading.Thread] | None:
    """The pages (central/web, the web side's), on ``[central] listen``; without them
    the queue still runs."""
    try:
        import uvicorn

        from central.web.app import create_app  # type: ignore[import-not-found,unused-ignore]
    except ImportError as e:
        log.warning("the web pages are not installed (%s): running the queue only", e)
        return None
    try:
        app = create_app(svc.desk, cfg, secret=svc.secret)
    except Exception:  # the queue must keep running for the kiosks whatever the pages do
        log.exception("the web pages could not be built: running the queue only")
        return None
    server = uvicorn.Server(uvicorn.Config(app, host=cfg.central.host, port=cfg.central.port,
                                           log_level="warning", lifespan="on"))
    # In a thread, uvicorn leaves the signals alone: serve() handles SIGTERM.
    t = threading.Thread(target=server.run, name="central-web", daemon=True)
    t.start()
    return server, t


def serve(cfg: CentralConfig, svc: HallCentral) -> int:
    """Run until SIGTERM/SIGINT; then publish offline and stop cleanly."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    svc.start()
    web = _web(cfg, svc)
    log.info("hall-central %s running: data %s, broker %s:%d, pages on %s",
             cfg.hall.id, cfg.data_dir, cfg.mqtt.host, cfg.mqtt.port, cfg.central.listen)
    _notify("READY=1")
    stop.wait()
    _notify("STOPPING=1")
    if web is not None:
        # Open live pages (SSE) end first, or the stop waits for their timeout.
        close = getattr(web[0].config.app.state, "close_streams", None)
        if close is not None:
            close()
        web[0].should_exit = True
        web[1].join(10)
    svc.stop(clean=True)
    return 0


def _notify(state: str) -> None:
    sock = os.environ.get("NOTIFY_SOCKET")
    if not sock:
        return
    import socket

    addr = "\0" + sock[1:] if sock.startswith("@") else sock
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s, contextlib.suppress(OSError):
        s.sendto(state.encode(), addr)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hall-central", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="config file (default: $HALL_EDGE_CONFIG or "
                                    f"{DEFAULT_CENTRAL_CONFIG})")
    p.add_argument("--check", action="store_true", help="check the config and exit")
    sub = p.add_subparsers(dest="cmd")
    u = sub.add_parser("user", help="staff logins: add|passwd|list (central/auth.py)")
    u.add_argument("args", nargs=argparse.REMAINDER)
    e = sub.add_parser("export", help="one day's tickets and clerk actions, as JSON")
    e.add_argument("--day", required=True, help="hall-local day, e.g. 2026-11-30")
    e.add_argument("--out", help="write to this file instead of stdout")
    b = sub.add_parser("backup", help="a consistent copy of the store (safe while running)")
    b.add_argument("dest", help="file to write, e.g. /var/backups/hall-central.sqlite3")
    return p


def export_day(cfg: CentralConfig, catalog: Catalog, day: str) -> dict[str, Any]:
    from central.schema import migrate
    from hall_agent.core.store import Store

    store = Store(cfg.data_dir)
    try:
        migrate(store)
        tickets = [dict(r) for r in store.query(
            "SELECT ticket_id, number, service, prefix, priority, channel, status, issued_at, "
            "called_at, finished_at, window, calls, offline FROM tickets WHERE day = ? "
            "ORDER BY issued_at", (day,))]
        audit = [dict(r) | {"detail": json.loads(r["detail"])} for r in store.query(
            "SELECT ts, window, staff, channel, action, ticket_id, number, detail FROM audit "
            "WHERE day = ? ORDER BY id", (day,))]
    finally:
        store.close()
    return {"hall": cfg.hall.id, "day": day, "tickets": tickets, "actions": audit}


def backup(cfg: CentralConfig, dest: Path) -> None:
    from hall_agent.core.store import DB_NAME

    src = sqlite3.connect(cfg.data_dir / DB_NAME)
    out = sqlite3.connect(dest)
    try:
        src.backup(out)  # SQLite's online backup: a consistent copy while running
    finally:
        out.close()
        src.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg, catalog = load(args.config)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    if args.check:
        print(f"{cfg.source}: ok — hall {cfg.hall.id}, {len(catalog.services)} services, "
              f"{len(catalog.windows)} windows, data in {cfg.data_dir}, broker "
              f"{cfg.mqtt.host}:{cfg.mqtt.port}, pages on {cfg.central.listen}")
        return 0
    logging.basicConfig(level=cfg.central.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.cmd == "export":
        doc = json.dumps(export_day(cfg, catalog, args.day), ensure_ascii=False, indent=1)
        if args.out:
            Path(args.out).write_text(doc + "\n", encoding="utf-8")
        else:
            print(doc)
        return 0
    if args.cmd == "backup":
        backup(cfg, Path(args.dest))
        print(f"backed up to {args.dest}")
        return 0
    if args.cmd == "user":
        return _user(cfg, list(args.args))
    from central.service import HallCentral

    try:
        svc = HallCentral(cfg, catalog)
    except (OSError, RuntimeError) as e:
        print(f"hall-central could not start: {e}", file=sys.stderr)
        return 1
    return serve(cfg, svc)


def _user(cfg: CentralConfig, argv: list[str]) -> int:
    try:
        from central.auth import user_command  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        print("hall-central user: staff logins are not installed (central/auth.py)",
              file=sys.stderr)
        return 1
    from central.schema import migrate
    from hall_agent.core.store import Store

    store = Store(cfg.data_dir)
    try:
        migrate(store)
        return int(user_command(cfg, store, argv))
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
