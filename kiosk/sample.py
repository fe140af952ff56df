"""Built-in sample answers, so ``--screenshot`` renders every screen with the agent down."""

from __future__ import annotations

from hall_agent.contract.api import (
    CallOut,
    DeviceState,
    HealthOut,
    QueueOut,
    ServiceOut,
    ServiceQueue,
    ServicesOut,
    TicketOut,
    WindowQueue,
)

# The built-in catalogue, so the sample screens show the same services, guides and
# categories a fresh installation has; the figures are a plausible mid-morning.
_WAITING = {"A": 12, "B": 5, "C": 21, "D": 3, "E": 0, "F": 4, "G": 2, "H": 0, "J": 6,
            "K": 1, "L": 0, "M": 7}


def _services() -> ServicesOut:
    from hall_agent.contract.config import DEFAULTS_DIR, load_catalog

    out = []
    for s in load_catalog(DEFAULTS_DIR / "services.toml").services:
        waiting = _WAITING.get(s.id, 0)
        closed = s.id == "H"  # one closed service: the limit of the day is reached
        out.append(ServiceOut(
            id=s.id, name=s.name, name_en=s.name_en, category=s.category,
            category_en=s.category_en, guide=s.guide.strip(), guide_en=s.guide_en.strip(),
            hours=s.hours, promise=s.promise, promise_en=s.promise_en, open_now=not closed,
            closed_reason="今日号源已取完，请明天再来或通过微信预约" if closed else None,
            closed_reason_en="All of today's tickets are taken; please come back tomorrow"
            if closed else None,
            opens_at="2024-05-21T09:00:00+08:00" if closed else None,
            waiting=waiting, est_wait_s=waiting * s.avg_service_s // 3,
            daily_limit=s.daily_limit))
    return ServicesOut(hall="fz-citizen", hall_name="福州市市民服务中心",
                       hall_name_en="Fuzhou Citizen Service Centre", services=out)


SERVICES = _services()

QUEUE = QueueOut(
    ts="2024-05-20T10:15:00+08:00",
    services={s.id: ServiceQueue(name=s.name, name_en=s.name_en, waiting=s.waiting,
                                 est_wait_s=s.est_wait_s) for s in SERVICES.services},
    windows={
        "1": WindowQueue(open=True, paused=False, serving="M015", services=["M"]),
        "2": WindowQueue(open=True, paused=False, serving="A031", services=["A", "J"]),
        "5": WindowQueue(open=True, paused=False, serving="B012", services=["A", "B"]),
        "8": WindowQueue(open=True, paused=False, serving="C044", services=["C"]),
        "12": WindowQueue(open=True, paused=True, serving=None, services=["D", "E"]),
    },
    recent_calls=[
        CallOut(call_id="c3", ticket="C044", window="8", service="C", kind="call",
                ts="2024-05-20T10:14:40+08:00"),
        CallOut(call_id="c2", ticket="A031", window="2", service="A", kind="call",
                ts="2024-05-20T10:13:05+08:00"),
        CallOut(call_id="c1r", ticket="M015", window="1", service="M", kind="recall",
                ts="2024-05-20T10:12:30+08:00"),
        CallOut(call_id="c1", ticket="M015", window="1", service="M", kind="call",
                ts="2024-05-20T10:11:30+08:00"),
        CallOut(call_id="c0", ticket="B011", window="5", service="B", kind="call",
                ts="2024-05-20T10:09:10+08:00"),
    ],
)

HEALTH = HealthOut(status="ok", mode="standalone", hall="fz-citizen",
                   hall_name="福州市市民服务中心",
                   devices={"printer": DeviceState(status="ok", detail="")})

TICKET = TicketOut(ticket_id="20240520-A-0043", number="A043", service="A", waiting_ahead=12,
                   est_wait_s=2160, offline=False, printed=True, service_name="社保医保",
                   service_name_en="Social & medical insurance",
                   issued_at="2024-05-20T10:15:12+08:00",
                   status_url="https://qms.example.gov.cn/t/fz-citizen/20240520-A-0043")

TICKET_UNPRINTED = TICKET.model_copy(update={
    "printed": False, "print_detail": "printer: paper out — load a roll"})

# What the agent says when its card is full (hall_agent/core/storage.py), for the
# out-of-service screen's staff line.
STORAGE_FULL = ("存储卡已满，暂停取号；请联系工作人员清理空间（hallctl doctor）",
                "disk full: the storage card has no space left, ticketing is paused; free "
                "some space (hallctl doctor)")
