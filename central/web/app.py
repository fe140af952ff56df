"""hall-central's web side: ``create_app(desk, cfg)`` (run by central/main.py with uvicorn).

Fixed paths (DESIGN.md "★ hall-central"): ``/t/{token}`` a ticket's live page,
``/display`` the hall TV, ``/display/window/{id}`` one window's screen, ``/console``
the clerks' console; the JSON API under ``/api/v1/`` (OpenAPI at ``/openapi.json``).
Pages are rendered here (Jinja, central/web/templates) with a little plain JS of our
own (central/web/static, served from ``/static/``): no CDN, no build step.

Every response carries a strict Content-Security-Policy (scripts and styles from this
server only), ``Referrer-Policy: same-origin`` (a ticket's token never leaves in a
Referer to another site) and ``X-Content-Type-Options: nosniff``. The console and its API need a
login (central/auth.py); the TV, window screens and ticket pages show nothing
personal (the desk's views carry no name or ID number) and are open on the LAN.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from central.auth import Auth, RateLimit, SlowDown
from central.config import CentralConfig
from central.desk import Desk
from central.views import Actor
from central.web.common import ApiError, Web, err
from central.web.console import router as console_router
from central.web.live import Hub
from central.web.public import router as public_router
from central.web.tokens import TokenIndex
from hall_agent.core.personal import load_secret
from hall_agent.core.refusal import Refused, Why

log = logging.getLogger("central.web")

HERE = Path(__file__).resolve().parent
HTTP_STATUS = {Why.INVALID: 422, Why.CONFLICT: 409, Why.NOT_FOUND: 404, Why.UNAVAILABLE: 503}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; media-src 'self'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get(
        "accept", "")


def create_app(desk: Desk, cfg: CentralConfig, *, secret: bytes | None = None,
               clock: Callable[[], float] = time.time) -> FastAPI:
    """The web app over the running desk. ``secret`` is the hall's (the agents'
    ``[hall] secret_file``; default ``[central] secret_file`` or data_dir/hall.secret);
    ``clock`` times the logins and sessions (tests move it)."""

    if secret is None:
        path = Path(cfg.central.secret_file) if cfg.central.secret_file else (
            cfg.data_dir / "hall.secret")
        secret = load_secret(path)
    hub = Hub(desk.bus)
    the_auth = Auth(desk.store, clock=clock, audit=_auditor(desk))
    web = Web(desk=desk, cfg=cfg, auth=the_auth, hub=hub,
              tokens=TokenIndex(desk.store, secret, lambda: desk.engine.today()),
              templates=Jinja2Templates(directory=str(HERE / "templates")),
              ticket_limit=RateLimit(rate=2.0, burst=30.0),
              login_limit=RateLimit(rate=1.0, burst=30.0))
    web.templates.env.globals["static_version"] = _static_version()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        hub.close()

    app = FastAPI(title="hall-central", lifespan=lifespan, description=(
        "hall-central's JSON API: the clerks' console (login needed, one window per "
        "session, X-CSRF-Token on every change), the hall's live view and the ticket "
        "pages' status (no personal data)."))
    app.state.web = web
    # uvicorn waits for open responses before it stops, and a live page's stream never
    # ends by itself: call this first (then should_exit), or a stop waits for the timeout.
    app.state.close_streams = hub.close

    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        h = response.headers
        h.setdefault("Content-Security-Policy", CSP)
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault("X-Frame-Options", "DENY")
        if not request.url.path.startswith("/static/"):
            h.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        if _wants_html(request):
            return web.page(request, "error.html", {"status": exc.status, "zh": exc.zh,
                                                    "en": exc.en}, exc.status)
        return err(exc.status, exc.code, exc.zh, exc.en, headers=exc.headers)

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> Response:
        status, headers = HTTP_STATUS[exc.why], {}
        if isinstance(exc, SlowDown):
            status, headers = 429, {"Retry-After": str(exc.retry_after)}
        return err(status, exc.code, str(exc), exc.message_en, exc.field, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        first = (exc.errors() or [{"loc": ("body",), "msg": "invalid request"}])[0]
        field = ".".join(str(p) for p in first.get("loc", ()) if p not in (
            "body", "query", "path", "header")) or "body"
        return err(422, "invalid_request", f"请求不正确：{field}",
                   f"{field}: {first.get('msg', 'invalid')}", field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        zh = {404: "没有这个页面", 405: "不支持这种请求方式"}.get(exc.status_code, "请求出错")
        if _wants_html(request):
            return web.page(request, "error.html", {"status": exc.status_code, "zh": zh,
                                                    "en": str(exc.detail)}, exc.status_code)
        return err(exc.status_code, code, zh, str(exc.detail), headers=dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> Response:
        log.exception("unhandled error in the web side")
        return err(500, "internal_error", "系统内部错误，请稍后重试或联系管理员",
                   "internal error: try again or call the administrator")

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(console_router(web))
    app.include_router(public_router(web))
    return app


def _auditor(desk: Desk) -> Any:
    """Logins and logouts go to the desk's audit trail, beside the clerks' actions."""
    import json

    def audit(staff: str, window: str | None, action: str, detail: dict[str, Any]) -> None:
        now = desk.engine.clock()
        actor = Actor(staff[:64] or "?", "console")
        with desk.store.tx() as db:
            db.execute("INSERT INTO audit (ts, day, window, staff, channel, action, ticket_id,"
                       " number, detail, op_id) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, ?, NULL)",
                       (now, desk.engine.local(now).date().isoformat(), window, actor.staff,
                        actor.channel, action, json.dumps(detail, ensure_ascii=False)))
    return audit


def _static_version() -> str:
    """Changes when a static file changes, so browsers fetch the new one."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted((HERE / "static").iterdir()):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:10]
