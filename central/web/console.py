"""The clerks' console: ``/console`` (login, the window's page) and its JSON API.

Every route here needs a session (central/auth.py) for the window it names; every
route that changes something also needs the session's CSRF token and a same-origin
request. The desk (central/desk.py) does the work and audits it; an action refused by
the queue rules writes nothing and answers 409/422 with the reason in Chinese and
English.
"""


from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from central.auth import ANY_WINDOW, Session, SlowDown
from central.bus import Change
from central.views import Actor
from central.web.common import ApiError, Web, client_of
from central.web.live import sse_views
from hall_agent.core.refusal import Refused, Why

COOKIE = "hc_session"
PAUSE_REASONS = [("午休", "Lunch break"), ("临时离开", "Away for a moment"),
                 ("业务培训", "Training"), ("系统故障", "System fault"),
                 ("会议", "Meeting"), ("交接班", "Shift change")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_Body):
    staff: Annotated[str, Field(max_length=64, description="staff number")]
    password: Annotated[str, Field(max_length=256)]
    window: Annotated[str, Field(max_length=8, description="the window of this session")]


class TicketIn(_Body):
    ticket: Annotated[str, Field(min_length=1, max_length=64,
                                 description="a ticket number of today, or its ticket_id")]


class TransferIn(_Body):
    service: Annotated[str | None, Field(max_length=2)] = None
    window: Annotated[str | None, Field(max_length=8)] = None
    first: Annotated[bool | None, Field(description=(
        "to the front of the new queue; null = [central.queue] transfer_first"))] = None


class PauseIn(_Body):
    reason: Annotated[str, Field(max_length=40)]


class NoticeIn(_Body):
    text: Annotated[str, Field(max_length=200)]


class SessionOut(BaseModel):
    staff: str
    window: str
    csrf: str


def same_origin(request: Request) -> None:
    """A request that changes something must come from this site's own pages: the
    browser's ``Sec-Fetch-Site`` says so where it is sent; else ``Origin``, if any,
    must be this site (``null``, a sandboxed or privacy-stripped origin, is not)."""
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if site is not None:
        bad = site not in ("same-origin", "none")
    else:
        bad = origin is not None and origin != own
    if bad:
        raise ApiError(403, "cross_site", "拒绝来自其他网站的请求",
                       "refused: this request came from another site")


def router(web: Web) -> APIRouter:
    r = APIRouter()
    auth, desk = web.auth, web.desk
    windows = [w.id for w in desk.catalog.windows]

    def session(request: Request) -> Session:
        s = auth.session(request.cookies.get(COOKIE))
        if s is None:
            raise ApiError(401, "login_required", "请先登录（或登录已过期）",
                           "log in first (or your session expired)")
        return s

    def writer(request: Request, s: Annotated[Session, Depends(session)],
               x_csrf_token: Annotated[str | None, Header()] = None) -> Session:
        same_origin(request)
        if not auth.csrf_ok(s, x_csrf_token):
            raise ApiError(403, "csrf", "请求缺少有效的安全令牌，请刷新页面",
                           "missing or wrong X-CSRF-Token: reload the page")
        return s

    def own(s: Session, window: str) -> None:
        if window != s.window:
            raise ApiError(403, "window_not_allowed", f"您登录的是 {s.window} 号窗口，不能操作 "
                           f"{window} 号窗口", f"you are logged in at window {s.window}, "
                           f"not {window}")

    def login(request: Request, staff: str, password: str, window: str) -> tuple[str, Session]:
        same_origin(request)
        client = client_of(request)
        wait = web.login_limit.take(client)
        if wait:
            raise ApiError(429, "rate_limited", "请求太频繁，请稍后再试", "too many requests: "
                           "wait a moment", {"Retry-After": str(int(wait) + 1)})
        if window not in windows:
            raise Refused(f"没有 {window} 号窗口", code="unknown_window", field="window",
                          why=Why.INVALID, en=f"no window {window}")
        return auth.login(staff, password, window, client)

    def set_cookie(resp: Response, request: Request, sid: str) -> None:
        resp.set_cookie(COOKIE, sid, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")

    # ------------------------------------------------------------------ pages

    @r.get("/console", include_in_schema=False)
    def console_page(request: Request) -> Response:
        s = auth.session(request.cookies.get(COOKIE))
        if s is None:
            return web.page(request, "login.html", {"windows": windows, "error": None,
                                                    "staff": "", "window": ""})
        boot = {"window": s.window, "staff": s.staff, "csrf": s.csrf,
                "view": desk.view(s.window).as_dict(),
                "services": [{"id": v.id, "name": v.name, "name_en": v.name_en}
                             for v in desk.catalog.services],
                "windows": [w for w in windows if w != s.window],
                "reasons": PAUSE_REASONS, "tz": web.cfg.hall.timezone}
        return web.page(request, "console.html", {"s": s, "boot": boot,
                                                  "reasons": PAUSE_REASONS})

    @r.post("/console/login", include_in_schema=False)
    def console_login(request: Request, staff: Annotated[str, Form(max_length=64)],
                      password: Annotated[str, Form(max_length=256)],
                      window: Annotated[str, Form(max_length=8)]) -> Response:
        try:
            sid, _ = login(request, staff, password, window)
        except (Refused, ApiError) as e:
            if isinstance(e, ApiError):  # rate-limited (429), from another site (403)
                status, zh, en = e.status, e.zh, e.en
            else:
                status, zh, en = 429 if isinstance(e, SlowDown) else 401, str(e), e.message_en
            return web.page(request, "login.html", {"windows": windows, "error": (zh, en),
                                                    "staff": staff, "window": window}, status)
        resp = RedirectResponse("/console", status_code=303)
        set_cookie(resp, request, sid)
        return resp

    @r.post("/console/logout", include_in_schema=False)
    def console_logout(request: Request, csrf: Annotated[str, Form(max_length=100)] = ""
                       ) -> Response:
        s = session(request)
        same_origin(request)
        if not auth.csrf_ok(s, csrf):
            raise ApiError(403, "csrf", "安全令牌无效，请刷新页面", "wrong CSRF token: reload")
        auth.logout(request.cookies.get(COOKIE))
        resp = RedirectResponse("/console", status_code=303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    # ------------------------------------------------------------------ session API

    @r.post("/api/v1/session", response_model=SessionOut, tags=["console"])
    def api_login(request: Request, body: LoginIn) -> Response:
        """Log in at one window; the cookie ``hc_session`` carries the session, and
        ``csrf`` goes into the ``X-CSRF-Token`` header of every change."""
        sid, s = login(request, body.staff, body.password, body.window)
        resp = JSONResponse(SessionOut(staff=s.staff, window=s.window, csrf=s.csrf
                                       ).model_dump())
        set_cookie(resp, request, sid)
        return resp

    @r.get("/api/v1/session", response_model=SessionOut, tags=["console"])
    def api_session(s: Annotated[Session, Depends(session)]) -> SessionOut:
        return SessionOut(staff=s.staff, window=s.window, csrf=s.csrf)

    @r.delete("/api/v1/session", status_code=204, tags=["console"])
    def api_logout(request: Request, _: Annotated[Session, Depends(writer)]) -> Response:
        auth.logout(request.cookies.get(COOKIE))
        resp = Response(status_code=204)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    # ------------------------------------------------------------------ the window

    @r.get("/api/v1/windows/{window}", tags=["console"])
    def api_view(window: str, s: Annotated[Session, Depends(session)]) -> dict[str, Any]:
        """The window's view: paused, the ticket served, the waiting list with waits,
        parked tickets, today's tally."""
        own(s, window)
        return desk.view(window).as_dict()

    @r.get("/api/v1/windows/{window}/audit", tags=["console"])
    def api_audit(window: str, s: Annotated[Session, Depends(session)]
                  ) -> list[dict[str, Any]]:
        """Today's actions at this window: who, when, what, through which channel."""
        own(s, window)
        return [a.as_dict() for a in desk.audit(window=window)]

    def act(name: str, s: Session, window: str, key: str | None, **kw: Any) -> dict[str, Any]:
        own(s, window)
        me = Actor(s.staff, "console")
        fn = getattr(desk, name)
        return dict(fn(window, me, op_id=key, **kw).as_dict())

    Key = Annotated[str | None, Header(alias="Idempotency-Key", max_length=100)]
    W = Annotated[Session, Depends(writer)]

    @r.post("/api/v1/windows/{window}/call-next", tags=["console"])
    def call_next(window: str, s: W, key: Key = None) -> dict[str, Any]:
        """Finish the ticket served and call the next one."""
        return act("call_next", s, window, key)

    @r.post("/api/v1/windows/{window}/call", tags=["console"])
    def call(window: str, body: TicketIn, s: W, key: Key = None) -> dict[str, Any]:
        """Call a chosen waiting ticket."""
        return act("call", s, window, key, ticket=body.ticket)

    @r.post("/api/v1/windows/{window}/recall", tags=["console"])
    def recall(window: str, s: W, key: Key = None) -> dict[str, Any]:
        return act("recall", s, window, key)

    @r.post("/api/v1/windows/{window}/no-show", tags=["console"])
    def no_show(window: str, s: W, key: Key = None) -> dict[str, Any]:
        return act("no_show", s, window, key)

    @r.post("/api/v1/windows/{window}/finish", tags=["console"])
    def finish(window: str, s: W, key: Key = None) -> dict[str, Any]:
        return act("finish", s, window, key)

    @r.post("/api/v1/windows/{window}/transfer", tags=["console"])
    def transfer(window: str, body: TransferIn, s: W, key: Key = None) -> dict[str, Any]:
        """To another service's queue (``service``) or to one window (``window``)."""
        if (body.service is None) == (body.window is None):
            raise Refused("请选择转到哪个业务或哪个窗口（二选一）", code="bad_transfer",
                          field="service", why=Why.INVALID,
                          en="choose a service or a window to transfer to (one of them)")
        return act("transfer", s, window, key, service=body.service, to_window=body.window,
                   first=body.first)

    @r.post("/api/v1/windows/{window}/park", tags=["console"])
    def park(window: str, s: W, key: Key = None) -> dict[str, Any]:
        """Set the ticket served aside until the window calls it back."""
        return act("park", s, window, key)

    @r.post("/api/v1/windows/{window}/call-back", tags=["console"])
    def call_back(window: str, body: TicketIn, s: W, key: Key = None) -> dict[str, Any]:
        return act("call_back", s, window, key, ticket=body.ticket)

    @r.post("/api/v1/windows/{window}/pause", tags=["console"])
    def pause(window: str, body: PauseIn, s: W, key: Key = None) -> dict[str, Any]:
        return act("pause", s, window, key, reason=body.reason)

    @r.post("/api/v1/windows/{window}/resume", tags=["console"])
    def resume(window: str, s: W, key: Key = None) -> dict[str, Any]:
        return act("resume", s, window, key)

    @r.post("/api/v1/notice", tags=["console"])
    def notice(body: NoticeIn, s: W, key: Key = None) -> dict[str, Any]:
        """The hall's notice on the TV (a supervisor's login, windows ``*``)."""
        ws = auth.windows_of(s.staff) or []
        if ANY_WINDOW not in ws:
            raise ApiError(403, "supervisor_only", "只有值班主管可以修改大厅公告",
                           "only a supervisor (windows *) may change the hall's notice")
        return desk.set_notice(body.text, Actor(s.staff, "console"), op_id=key).as_dict()

    @r.get("/api/v1/windows/{window}/events", tags=["console"])
    async def events(request: Request, window: str) -> StreamingResponse:
        """Server-sent events: ``view`` (the window's view) at once and after every
        change; ``logout`` when the session ends."""
        sid = request.cookies.get(COOKIE)
        s = await run_in_threadpool(auth.session, sid)
        if s is None:
            raise ApiError(401, "login_required", "请先登录", "log in first")
        own(s, window)

        def want(ch: Change) -> bool:
            return ch.kind in ("window", "queue", "ticket")

        async def render(batch: list[Change]) -> AsyncIterator[tuple[str, Any]]:
            if batch and await run_in_threadpool(auth.session, sid, touch=False) is None:
                yield "logout", {"reason": "session ended"}
                return
            yield "view", (await run_in_threadpool(desk.view, window)).as_dict()

        return StreamingResponse(sse_views(web.hub, want, render),
                                 media_type="text/event-stream",
                                 headers={"X-Accel-Buffering": "no"})

    return r
