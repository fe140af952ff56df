"""Local API routes of ID cards, scans, appointments and the 24-hour area.

Personal data never crosses this API in clear: a card is a short-lived token
(SSE ``card`` event), and answers carry masked forms and hashes only.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse

from hall_agent.api.idempotency import Idem
from hall_agent.api.ports import AgentApi
from hall_agent.contract.api import (
    BookIn,
    BookOut,
    CardWantIn,
    CheckinIn,
    CheckinOut,
    ImportIn,
    ImportOut,
    ScanIn,
    ScanOut,
    SelfServiceOut,
    SelfServiceResultOut,
    SelfServiceRunIn,
    SlotsOut,
)
from hall_agent.core.refusal import Refused, Why
from hall_agent.services.appointment_files import parse_records


def add_routes(app: FastAPI, agent: AgentApi, errors: dict[int | str, dict[str, Any]]) -> None:

    # ------------------------------------------------------------------ cards

    # Not under /v1/cards/: DELETE /v1/cards/{token} would also match that path.
    @app.post("/v1/card-reader/wait", status_code=204)
    def card_want(body: CardWantIn) -> None:
        """A flow waits for a card: poll the reader fast (IDCARD.md: every 300 ms)."""
        if agent.cards is not None:
            agent.cards.want(body.seconds)

    @app.delete("/v1/cards/{token}", status_code=204)
    def card_forget(token: str) -> None:
        """The flow that read the card is over: forget the person now."""
        if agent.cards is not None:
            agent.cards.forget(token)

    # ------------------------------------------------------------------ check-in

    @app.post("/v1/checkins", status_code=201, response_model=CheckinOut, responses=errors)
    def checkin(body: CheckinIn) -> JSONResponse:
        """Check in an appointment by its code or by the card of this flow; checking in
        again answers with the same ticket."""
        person = None
        if body.card is not None:
            if agent.cards is None:
                raise Refused("本机未配置读卡器", code="no_reader", field="card", why=Why.CONFLICT)
            person = agent.cards.take(body.card, keep=True)
        out = agent.checkins.checkin(code=body.code.upper() if body.code else None,
                                     person=person, channel="card" if person else "kiosk")
        return JSONResponse(status_code=201, content=CheckinOut(
            appointment=out["appointment"], ticket=out["ticket"]).model_dump())

    # ------------------------------------------------------------------ scans

    @app.post("/v1/scans", response_model=ScanOut)
    def scan(body: ScanIn) -> ScanOut:
        """Route a scanned text as if the scanner had read it (kiosk camera, tests)."""
        from hall_agent.services.scans import ScanNeeds, ScanRouter  # (no scanner here)

        router = agent.scans or ScanRouter(
            ScanNeeds(agent.bus, agent.queue, agent.health, agent.checkins.checkin),
            _default_scanner())
        return ScanOut.model_validate(router.route(body.text))

    # ------------------------------------------------------------------ appointments

    @app.post("/v1/appointments/import", response_model=ImportOut, responses=errors)
    def appointments_import(body: ImportIn, once: Idem) -> JSONResponse:
        """Import the hall's appointment list (docs/appointments.md); ID numbers are
        hashed and masked on the way in, never stored."""
        records = list(body.appointments or [])
        if body.csv:
            records += parse_records(body.csv, "csv")

        def run() -> dict[str, Any]:
            r = agent.book.import_records(records)
            return ImportOut(added=r.added, updated=r.updated, errors=r.errors or []
                             ).model_dump()

        # The request holds ID numbers: only its hash is remembered.
        return once.run(body.model_dump(), 200, run, atomic=False)

    @app.get("/v1/appointments/slots", response_model=SlotsOut)
    def slots(service: Annotated[str, Query(pattern=r"^[A-Z]{1,2}$")],
              day: Annotated[str, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")]) -> SlotsOut:
        try:
            date.fromisoformat(day)
        except ValueError:
            raise Refused(f"{day} 不是有效的日期（应为 YYYY-MM-DD）", code="bad_day",
                             field="day", why=Why.INVALID, en=f"{day} is not a date") from None
        return SlotsOut(service=service, day=day,
                        slots=agent.checkins.slots(service, day))  # type: ignore[arg-type]

    @app.post("/v1/appointments", status_code=201, response_model=BookOut, responses=errors)
    def book(body: BookIn, once: Idem) -> JSONResponse:
        """Book a slot for tomorrow with the card of this flow; prints the booking slip."""
        return once.run(body.model_dump(), 201, lambda: BookOut.model_validate(
            agent.selfservice.book(body.card, body.service, body.day, body.start)
        ).model_dump(), atomic=False)

    # ------------------------------------------------------------------ 24-hour area

    @app.get("/v1/selfservice", response_model=SelfServiceOut)
    def selfservice() -> SelfServiceOut:
        return SelfServiceOut.model_validate(agent.selfservice.state())

    @app.post("/v1/selfservice/{service}", response_model=SelfServiceResultOut,
              responses=errors)
    def selfservice_run(service: str, body: SelfServiceRunIn,
                        once: Idem) -> JSONResponse:
        return once.run(body.model_dump(), 200, lambda: SelfServiceResultOut.model_validate(
            agent.selfservice.run(service, body.card, print_it=body.print)
        ).model_dump(), atomic=False)


def _default_scanner() -> Any:
    from drivers.scanner_config import ScannerConfig

    return ScannerConfig(port="/dev/null")
