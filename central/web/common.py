"""What the web side's modules share: the routes' context, refusals, client addresses."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from central.auth import Auth, RateLimit
from central.config import CentralConfig
from central.desk import Desk
from central.web.live import Hub
from central.web.tokens import TokenIndex


class ErrorBody(BaseModel):
    error: str
    message: str
    message_en: str
    field: str | None = None


class ApiError(Exception):
    """An HTTP refusal of the web side itself (no login, another window, forged POST)."""

    def __init__(self, status: int, code: str, zh: str, en: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(en)
        self.status, self.code, self.zh, self.en = status, code, zh, en
        self.headers = headers or {}


@dataclass
class Web:
    """What the routes share."""

    desk: Desk
    cfg: CentralConfig
    auth: Auth
    hub: Hub
    tokens: TokenIndex
    templates: Jinja2Templates
    ticket_limit: RateLimit
    login_limit: RateLimit

    def hall_name(self) -> str:
        return self.cfg.hall.name

    def page(self, request: Request, name: str, ctx: dict[str, Any],
             status: int = 200) -> HTMLResponse:
        base = {"hall_name": self.cfg.hall.name, "hall_name_en": self.cfg.hall.name_en,
                "tz": self.cfg.hall.timezone}
        r = self.templates.TemplateResponse(request, name, base | ctx, status_code=status)
        return r


def client_of(request: Request) -> str:
    """The client's address; behind a proxy on this machine (public_url), the address
    the proxy saw (its last ``X-Forwarded-For`` entry), never a header from afar."""
    peer = request.client.host if request.client else "?"
    try:
        local = ipaddress.ip_address(peer).is_loopback
    except ValueError:
        local = False
    fwd = request.headers.get("x-forwarded-for", "")
    if local and fwd:
        return fwd.split(",")[-1].strip()[:64] or peer
    return peer


def err(status: int, code: str, zh: str, en: str = "", field: str | None = None,
        headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, headers=headers, content=ErrorBody(
        error=code, message=zh, message_en=en or zh, field=field).model_dump())
