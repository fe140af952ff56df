"""The pages anyone in the hall sees: the TV (``/display``), a window's screen
(``/display/window/{id}``) and a ticket's live page (``/t/{token}``), with their JSON.

Nothing here shows a name or an ID number: the desk's views carry neither. A ticket
page shows its own ticket only (found by its token, hall_agent/contract/ticket_token.py)
and the count of people ahead of it, never another ticket's number or token. Ticket
pages are rate-limited per client address; a miss costs more than a hit, so guessing
tokens (2^128 of them) is slowed further.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from central.bus import Change
from central.web.common import ApiError, Web, client_of
from central.web.live import sse_views

MISS_COST = 5.0
MAX_STREAMS = 1000  # live pages open at once (TVs, consoles, phones); more get a 503
HALL_KINDS = ("call", "window", "queue", "satisfaction", "notice")


def public_ticket(d: dict[str, Any]) -> dict[str, Any]:
    """What a ticket page may know (no ticket_id: the token is its only name here)."""
    return {k: v for k, v in d.items() if k != "ticket_id"}


def router(web: Web) -> APIRouter:
    r = APIRouter()
    desk = web.desk
    windows = {w.id: w for w in desk.catalog.windows}

    def limited(request: Request) -> None:
        wait = web.ticket_limit.take(client_of(request))
        if wait:
            raise ApiError(429, "rate_limited", "刷新太频繁，请稍候再试",
                           "too many requests: wait a moment",
                           {"Retry-After": str(int(wait) + 1)})

    def room() -> None:
        if web.hub.clients >= MAX_STREAMS:
            raise ApiError(503, "busy", "同时打开的页面太多，请稍后再试",
                           "too many live pages open: try again later", {"Retry-After": "10"})

    def ticket_of(request: Request, token: str) -> str:
        client = client_of(request)
        limited(request)
        tid = web.tokens.lookup(token)
        if tid is None:
            web.ticket_limit.take(client, MISS_COST)
            raise ApiError(404, "unknown_ticket", "找不到这张票。票只在取号当天有效。",
                           "no such ticket: a ticket's page works on the day it was taken")
        return tid

    async def hall_render(batch: list[Change]) -> AsyncIterator[tuple[str, Any]]:
        for ch in batch:
            if ch.kind == "call":
                yield "call", ch.data
        yield "hall", (await run_in_threadpool(desk.hall)).as_dict()

    def hall_want(ch: Change) -> bool:
        return ch.kind in HALL_KINDS

    # ------------------------------------------------------------------ pages

    @r.get("/display", include_in_schema=False)
    def display(request: Request) -> Response:
        return web.page(request, "display.html", {"boot": {
            "hall": desk.hall().as_dict(), "tz": web.cfg.hall.timezone}})

    @r.get("/display/window/{window}", include_in_schema=False)
    def window_screen(request: Request, window: str) -> Response:
        w = windows.get(window)
        if w is None:
            raise ApiError(404, "unknown_window", f"没有 {window} 号窗口",
                           f"no window {window}")
        return web.page(request, "window.html", {"window": w.id, "name": w.name, "boot": {
            "window": w.id, "hall": desk.hall().as_dict(), "tz": web.cfg.hall.timezone}})

    @r.get("/t/{token}", include_in_schema=False)
    def ticket_page(request: Request, token: str) -> Response:
        tid = ticket_of(request, token)
        st = public_ticket(desk.ticket_status(tid).as_dict())
        return web.page(request, "ticket.html", {"t": st, "boot": {
            "token": token, "ticket": st, "tz": web.cfg.hall.timezone}})

    # ------------------------------------------------------------------ JSON

    @r.get("/api/v1/hall", tags=["hall"])
    def hall() -> dict[str, Any]:
        """The hall as the TV shows it: the latest calls, each window, waiting per
        service, today's satisfaction per window, the notice."""
        return desk.hall().as_dict()

    @r.get("/api/v1/hall/events", tags=["hall"])
    async def hall_events(request: Request) -> StreamingResponse:
        """Server-sent events: ``hall`` (the hall view) at once and after each change,
        each ``call`` (a call or a recall: ``kind``) before the view it changed."""
        limited(request)
        room()
        return StreamingResponse(sse_views(web.hub, hall_want, hall_render),
                                 media_type="text/event-stream",
                                 headers={"X-Accel-Buffering": "no"})

    @r.get("/api/v1/tickets/{token}", tags=["tickets"])
    def ticket(request: Request, token: str) -> dict[str, Any]:
        """One ticket as its citizen sees it: state, people ahead, estimated wait, the
        window that called it. Only on the day it was taken."""
        return public_ticket(desk.ticket_status(ticket_of(request, token)).as_dict())

    @r.get("/api/v1/tickets/{token}/events", tags=["tickets"])
    async def ticket_events(request: Request, token: str) -> StreamingResponse:
        """Server-sent events: ``ticket`` at once and after every change of the queue."""
        tid = await run_in_threadpool(ticket_of, request, token)
        room()

        def want(ch: Change) -> bool:
            return ch.kind in ("queue", "call") or (
                ch.kind == "ticket" and ch.data.get("ticket_id") == tid)

        async def render(_: list[Change]) -> AsyncIterator[tuple[str, Any]]:
            st = await run_in_threadpool(desk.ticket_status, tid)
            yield "ticket", public_ticket(st.as_dict())

        return StreamingResponse(sse_views(web.hub, want, render),
                                 media_type="text/event-stream",
                                 headers={"X-Accel-Buffering": "no"})

    return r
