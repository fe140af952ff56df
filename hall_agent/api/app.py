"""The ★ local API: loopback HTTP/JSON + SSE, OpenAPI derived from api_models.

Every 4xx/5xx body is an :class:`ErrorBody` naming the field at fault. Writes
accept an ``Idempotency-Key`` header; a repeat returns the first answer.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from hall_agent import logs
from hall_agent.api.idempotency import Idem, IdemKey
from hall_agent.api.limits import MAX_EVENT_STREAMS, BodyLimit
from hall_agent.api.ports import AgentApi
from hall_agent.contract.api import (
    BoardShowIn,
    BoardsOut,
    BoardTestIn,
    BusOut,
    CallIn,
    CallOut,
    ErrorBody,
    EvaluationIn,
    EvaluationOut,
    EventLogOut,
    HealthOut,
    LoggingIn,
    LoggingOut,
    OutboxEvent,
    OutboxOut,
    PrinterStatusOut,
    PrintOut,
    QueueOut,
    ReasonOut,
    ReasonsOut,
    ServiceOut,
    ServiceQueue,
    ServicesOut,
    TicketIn,
    TicketInfo,
    TicketOut,
    TicketsOut,
    TrafficState,
    TransferIn,
    WindowActionIn,
    WindowOut,
    WindowQueue,
)
from hall_agent.contract.levels import REASONS
from hall_agent.core.model import Ticket
from hall_agent.core.outbox import OutboxEntry
from hall_agent.core.refusal import Refused, Why

log = logging.getLogger("hall_agent.api.app")

# The one place a refusal of the core becomes an HTTP status.
HTTP_STATUS = {Why.INVALID: 422, Why.CONFLICT: 409, Why.NOT_FOUND: 404, Why.UNAVAILABLE: 503}
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (404, 409, 422)}


def _err(status: int, code: str, message: str, field: str | None = None,
         message_en: str = "") -> JSONResponse:
    return JSONResponse(status_code=status, content=ErrorBody(
        error=code, message=message, message_en=message_en or message, field=field
    ).model_dump())


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def create_app(agent: AgentApi) -> FastAPI:
    app = FastAPI(title="hall-edge agent", version=agent.version,
                  description="Local API of the hall-edge agent (loopback only).")
    app.state.idem, app.state.store = agent.idem, agent.store
    app.add_middleware(BodyLimit)  # a body's size and pace, before any route parses it

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        first = errs[0] if errs else {"loc": ("body",), "msg": "invalid request",
                                      "type": "value_error"}
        field = _field(tuple(first.get("loc", ())))
        kind = first.get("type", "")
        if kind == "json_invalid":
            msg, field = "请求体不是有效的 JSON", "body"
        elif field == "body" and kind in ("model_attributes_type", "dict_type"):
            msg = "请求体必须是 JSON 对象，并带 Content-Type: application/json"
        elif kind == "extra_forbidden":
            msg = f"未知字段 {field}：请删除它或检查拼写"
        elif kind == "missing":
            msg = f"缺少必填字段 {field}"
        else:
            msg = f"字段 {field} 不正确：{first.get('msg', '')}"
        en = f"{field}: {first.get('msg', 'invalid')}"
        return _err(422, "invalid_request", msg, field, en)

    @app.exception_handler(Refused)
    async def _refused(_: Request, exc: Refused) -> JSONResponse:
        return _err(HTTP_STATUS[exc.why], exc.code, str(exc), exc.field, exc.message_en)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's "error parsing the body" (bytes that are not UTF-8 JSON): the same
            # answer as any other unreadable body.
            return _err(422, "invalid_request", "请求体不是有效的 JSON", "body",
                        f"body: {exc.detail}")
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        r = _err(exc.status_code, code, str(exc.detail))
        r.headers.update(exc.headers or {})
        if exc.status_code == 405:
            # RFC 9110: Allow lists every method of the resource, not only those of the
            # first route that matched the path.
            methods = sorted({m for route in app.routes
                              if isinstance(route, APIRoute)
                              and route.path_regex.match(request.url.path)
                              for m in route.methods or ()})
            r.headers["Allow"] = ", ".join(methods)
        return r

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in the API")
        return _err(500, "internal_error", "系统内部错误，请稍后重试或联系工作人员",
                    message_en=f"internal error: {type(exc).__name__}")

    # ------------------------------------------------------------------ health

    @app.get("/v1/health", response_model=HealthOut)
    def health() -> HealthOut:
        devices = agent.devices()
        return HealthOut(
            status=agent.overall().value,  # type: ignore[arg-type]
            mode=agent.mode,  # type: ignore[arg-type]
            devices={k: {"status": v.status.value, "detail": v.detail}  # type: ignore[misc]
                     for k, v in devices.items()},
            hall=agent.cfg.hall.id, hall_name=agent.cfg.hall.name, agent=agent.cfg.agent.id,
            version=agent.version, time=datetime.now(agent.cfg.hall.tz).isoformat())

    # ------------------------------------------------------------------ services

    @app.get("/v1/services", response_model=ServicesOut)
    def services() -> ServicesOut:
        out = []
        for s in agent.catalog.services:
            st = agent.queue.service_state(s.id)
            out.append(ServiceOut(
                id=s.id, name=s.name, name_en=s.name_en, category=s.category,
                category_en=s.category_en, guide=s.guide.strip(), guide_en=s.guide_en.strip(),
                hours=s.hours, promise=s.promise, promise_en=s.promise_en,
                open_now=st.open_now, closed_reason=st.reason,
                closed_reason_en=st.reason_en,
                opens_at=st.opens_at.isoformat() if st.opens_at else None,
                waiting=st.waiting, est_wait_s=st.est_wait_s, daily_limit=s.daily_limit,
                issued_today=st.issued_today, requires_id=s.requires_id))
        return ServicesOut(hall=agent.cfg.hall.id, hall_name=agent.cfg.hall.name,
                           hall_name_en=agent.cfg.hall.name_en, services=out)

    # ------------------------------------------------------------------ tickets

    @app.post("/v1/tickets", status_code=201, response_model=TicketOut, responses=ERRORS)
    def issue(body: TicketIn, idempotency_key: IdemKey = None) -> JSONResponse:
        out = agent.tickets.issue(body.service, priority=body.priority,
                                  priority_reason=body.priority_reason,
                                  channel=body.channel, key=idempotency_key, card=body.card,
                                  lang=body.lang)
        return JSONResponse(status_code=201, content=out.model_dump())

    def _info(t: Ticket) -> TicketInfo:
        iso = agent.queue.iso
        return TicketInfo(
            ticket_id=t.ticket_id, number=t.number, service=t.service,
            status=t.status,  # type: ignore[arg-type]
            priority=t.priority, channel=t.channel, issued_at=iso(t.issued_at),
            called_at=iso(t.called_at) if t.called_at else None,
            finished_at=iso(t.finished_at) if t.finished_at else None,
            window=t.window, calls=t.calls, printed=t.print_state == "printed",
            offline=t.offline,
            waiting_ahead=agent.queue.waiting_ahead(t) if t.status == "waiting" else None)

    @app.get("/v1/tickets", response_model=TicketsOut)
    def tickets(
        day: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
        status: Annotated[str | None, Query(
            pattern=r"^(waiting|called|done|no_show|cancelled)$")] = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 200,
    ) -> TicketsOut:
        return TicketsOut(tickets=[_info(t) for t in
                                   agent.queue.tickets(day=day, status=status, limit=limit)])

    @app.get("/v1/tickets/{ticket_id}", response_model=TicketInfo, responses=ERRORS)
    def ticket(ticket_id: str) -> TicketInfo:
        return _info(agent.queue.ticket(ticket_id))

    @app.post("/v1/tickets/{ticket_id}/reprint", response_model=PrintOut, responses=ERRORS)
    def reprint(ticket_id: str, once: Idem) -> JSONResponse:
        def run() -> dict[str, Any]:
            r = agent.tickets.reprint(ticket_id)
            return PrintOut(printed=r.printed, detail=r.detail).model_dump()
        return once.run({}, 200, run, atomic=False)

    @app.post("/v1/tickets/{ticket_id}/transfer", response_model=TicketInfo, responses=ERRORS)
    def transfer(ticket_id: str, body: TransferIn, once: Idem) -> JSONResponse:
        return once.run(body.model_dump(), 200, lambda: _info(
            agent.queue.transfer(ticket_id, body.service)).model_dump())

    # ------------------------------------------------------------------ queue & calls

    @app.get("/v1/queue", response_model=QueueOut)
    def queue() -> QueueOut:
        services, windows, calls = agent.queue.snapshot()
        cat = agent.catalog
        # Central mode: the central calls, often tickets another kiosk numbered; a window
        # serves what it was called last (as the boards show it).
        called = agent.queue.last_called() if agent.mode != "standalone" else {}
        return QueueOut(
            ts=datetime.now(agent.cfg.hall.tz).isoformat(),
            services={sid: ServiceQueue(name=cat.service(sid).name,  # type: ignore[union-attr]
                                        name_en=cat.service(sid).name_en,  # type: ignore[union-attr]
                                        waiting=st.waiting, est_wait_s=st.est_wait_s)
                      for sid, st in services.items()},
            windows={wid: WindowQueue(open=not w.paused, paused=w.paused,
                                      serving=(w.serving.number if w.serving
                                               else called.get(wid)),
                                      services=w.services)
                     for wid, w in windows.items()},
            recent_calls=[CallOut(**agent.calls.body(c)) for c in calls])

    @app.post("/v1/calls", status_code=201, response_model=CallOut, responses=ERRORS)
    def call(body: CallIn, once: Idem) -> JSONResponse:
        if agent.mode != "standalone":
            return _err(409, "not_standalone", "中心排队模式下由中心系统叫号，本机不能直接叫号",
                        "window", "calls come from the central queue in central mode")
        return once.run(body.model_dump(), 201, lambda: agent.calls.call(body.window,
                                                                          body.kind))

    @app.post("/v1/windows/{window}", response_model=WindowOut, responses=ERRORS)
    def window_action(window: str, body: WindowActionIn, once: Idem) -> JSONResponse:
        q = agent.queue

        def run() -> dict[str, Any]:
            before = q.window_state(window).serving
            if body.action in ("pause", "resume"):
                q.set_paused(window, body.action == "pause")
            elif body.action == "no_show":
                q.no_show(window)
            else:
                q.finish(window)
            w = q.window_state(window)
            ended = before is not None and (w.serving is None
                                            or w.serving.ticket_id != before.ticket_id)
            return WindowOut(window=window, paused=w.paused,
                             serving=w.serving.number if w.serving else None,
                             ended=before.number if ended and before else None).model_dump()
        return once.run(body.model_dump(), 200, run)

    # ------------------------------------------------------------------ evaluations

    @app.post("/v1/evaluations", status_code=201, response_model=EvaluationOut,
              responses=ERRORS)
    def evaluate(body: EvaluationIn, once: Idem) -> JSONResponse:
        """A rating given on the kiosk, bound to one visit (``ticket``, default the one
        last called at the window): a second rating of it is 409 ``already_rated``;
        basic and worse need a ``reason`` (422 ``reason_required``)."""
        def run() -> dict[str, Any]:
            e = agent.queue.evaluate(body.window, body.level, number=body.ticket,
                                     reason=body.reason, channel="kiosk",
                                     need_reason=True, need_ticket=True)
            return EvaluationOut(evaluation_id=e.evaluation_id, window=e.window,
                                 ticket=e.ticket, level=e.level,  # type: ignore[arg-type]
                                 follow_up=e.follow_up, reason=e.reason).model_dump()
        return once.run(body.model_dump(), 201, run)

    @app.get("/v1/evaluations/reasons", response_model=ReasonsOut)
    def evaluation_reasons() -> ReasonsOut:
        """What a citizen may give as the reason of a rating at basic or worse."""
        return ReasonsOut(reasons=[ReasonOut(id=r.id, text=r.text, text_en=r.text_en)
                                   for r in REASONS])

    # ------------------------------------------------------------------ printer

    @app.get("/v1/printer/status", response_model=PrinterStatusOut)
    def printer_status() -> PrinterStatusOut:
        h = agent.printing.status()
        return PrinterStatusOut(status=h.status.value, detail=h.detail)

    @app.post("/v1/printer/test", response_model=PrintOut)
    def printer_test() -> PrintOut:
        r = agent.printing.test_print()
        return PrintOut(printed=r.printed, detail=r.detail)

    # ------------------------------------------------------------------ boards and bus

    @app.post("/v1/boards/test", response_model=BoardsOut)
    def boards_test(body: BoardTestIn) -> BoardsOut:
        """A test pattern on every LED board for ``seconds``; answers each board's state."""
        return BoardsOut(boards=agent.boards.test_pattern(body.seconds))

    @app.post("/v1/boards/show", response_model=BoardsOut, responses=ERRORS)
    def boards_show(body: BoardShowIn) -> BoardsOut:
        """Show a technician's text on the boards for ``seconds``."""
        names = {b["name"] for b in agent.boards.describe()}
        if body.board is not None and body.board not in names:
            known = ", ".join(sorted(names))
            raise Refused(f"没有名为 {body.board} 的显示屏（已配置：{known}）",
                             code="unknown_board", field="board", why=Why.INVALID,
                             en=f"no board {body.board!r}")
        agent.boards.show_text(body.text, body.seconds, board=body.board)
        devices = agent.devices()
        return BoardsOut(boards={n: devices[n].status.value if n in devices else "absent"
                                 for n in sorted(names)
                                 if body.board is None or n == body.board})

    @app.get("/v1/bus", response_model=BusOut)
    def bus() -> BusOut:
        """Every board and evaluator on the RS-485 buses, with its state."""
        return BusOut(boards=agent.boards.describe(), evaluators=agent.evaluators.describe())

    # ------------------------------------------------------------------ operations

    def _outbox_event(e: OutboxEntry) -> OutboxEvent:
        return OutboxEvent(seq=e.seq, msg_id=e.msg_id, ts=e.ts, type=e.type,
                           offline=e.offline, sent=e.sent_at is not None,
                           acked=e.acked_at is not None, data=e.data)

    @app.get("/v1/outbox", response_model=OutboxOut)
    def outbox(limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> OutboxOut:
        """Events the central has not acknowledged yet, oldest first (MQTT.md)."""
        if agent.link is None:
            return OutboxOut(mqtt=False, pending=0, events=[])
        p = agent.store.outbox.pending(limit)
        return OutboxOut(mqtt=True, pending=p.count, oldest_ts=p.oldest_ts,
                         events=[_outbox_event(e) for e in p.events])

    @app.get("/v1/event-log", response_model=EventLogOut)
    def event_log(after_seq: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> EventLogOut:
        """The durable event log (tickets, calls, ratings, devices), oldest first after
        ``after_seq``; with ``after_seq=0``, the last ``limit`` events."""
        page = agent.store.outbox.log(after_seq, limit)
        return EventLogOut(events=[_outbox_event(e) for e in page.events],
                           last_seq=page.last_seq)

    def _logging_out() -> LoggingOut:
        return LoggingOut(level=logs.current_level(), traffic={
            name: TrafficState(enabled=t.enabled, path=str(t.path))
            for name, t in sorted(agent.traffic.known().items())})

    @app.get("/v1/logging", response_model=LoggingOut)
    def logging_get() -> LoggingOut:
        return _logging_out()

    @app.post("/v1/logging", response_model=LoggingOut, responses=ERRORS)
    def logging_set(body: LoggingIn) -> LoggingOut:
        """Change the log level, or switch a device's raw-traffic log, at run time."""
        known = agent.traffic.known()
        for device in body.traffic:
            if device in logs.NO_RAW_TRAFFIC:
                raise Refused(f"{device} 的原始通信含有个人身份信息，不能记录",
                                 code="personal_data", field=f"traffic.{device}", why=Why.INVALID,
                                 en=f"{device}: raw traffic carries personal data and is "
                                    "never logged")
            if device not in known:
                raise Refused(f"没有可记录原始通信的设备 {device}（可用：{', '.join(known)}）",
                                 code="unknown_device", field=f"traffic.{device}",
                                 why=Why.INVALID, en=f"no raw-traffic log for {device!r}; known: "
                                                f"{', '.join(sorted(known)) or 'none'}")
        if body.level is not None:
            logs.set_level(body.level)
            log.info("log level set to %s", body.level)
        for device, on in body.traffic.items():
            known[device].set(on)
        return _logging_out()

    # ------------------------------------------------------------------ events

    @app.get("/v1/events", response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}}}})
    async def events() -> Response:
        if agent.bus.subscribers >= MAX_EVENT_STREAMS:
            return _err(503, "too_many_streams", "事件流连接过多，请稍后重试",
                        message_en=f"{MAX_EVENT_STREAMS} event streams are open already; "
                                   "close one or try again shortly")
        return StreamingResponse(agent.bus.stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store",
                                          "X-Accel-Buffering": "no"})

    # ID cards, scans, appointments, the 24-hour area (api_cards.py)
    from hall_agent.api.cards import add_routes
    add_routes(app, agent, ERRORS)

    return app
