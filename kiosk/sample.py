"""Built-in sample answers, so ``--screenshot`` renders every screen with the agent down."""

from __future__ import annotations

from hall_agent.api_models import (
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

_GUIDE_SB = """\
## 办理条件
本市参保人员办理社会保险登记、医保关系转移、参保缴费证明打印。

## 所需材料
1. 本人有效**居民身份证**原件；
2. 社会保障卡；
3. 委托他人办理的，另需委托书及受托人身份证原件。

## 办理流程
取号 → 窗口受理 → 当场审核 → **即办件当场办结**

> 材料齐全的，60 分钟内办结。
"""

_GUIDE_GJJ = """\
## 所需材料
1. 本人身份证原件；
2. 购房合同或不动产权证书；
3. 本人银行卡（一类账户）。

## 办理时限
材料齐全，**即时办结**，资金 1 个工作日内到账。
"""

_GUIDE_CRJ = """\
## 所需材料
1. 居民身份证原件；
2. 往来港澳通行证（电子）；
3. 现场采集人像，无需自带照片。

## 温馨提示
已办理过证件的，可到**24小时自助区**自助签注。
"""


def _svc(sid: str, name: str, name_en: str, cat: str, cat_en: str, *, guide: str = "",
         promise: str = "", waiting: int = 0, open_now: bool = True,
         closed_reason: str | None = None, closed_reason_en: str | None = None,
         opens_at: str | None = None, hours: str = "08:30-12:00,13:30-17:30") -> ServiceOut:
    return ServiceOut(id=sid, name=name, name_en=name_en, category=cat, category_en=cat_en,
                      guide=guide or f"## 所需材料\n1. 本人有效身份证件原件。\n\n{promise}",
                      hours=hours, promise=promise, open_now=open_now,
                      closed_reason=closed_reason, closed_reason_en=closed_reason_en,
                      opens_at=opens_at, waiting=waiting, est_wait_s=waiting * 180)


SERVICES = ServicesOut(hall="fz-citizen", hall_name="福州市市民服务中心", services=[
    _svc("A", "社保医保", "Social & medical insurance", "社会保障", "Social security",
         guide=_GUIDE_SB, promise="60分钟办结", waiting=12),
    _svc("B", "住房公积金", "Housing provident fund", "社会保障", "Social security",
         guide=_GUIDE_GJJ, promise="即时办结", waiting=5),
    _svc("C", "户籍办理", "Household registration", "户政出入境", "Residence & travel",
         promise="60分钟办结", waiting=3),
    _svc("D", "出入境证件", "Exit & entry permits", "户政出入境", "Residence & travel",
         guide=_GUIDE_CRJ, promise="7个工作日", open_now=False,
         closed_reason="今日号源已满", closed_reason_en="All of today's tickets are taken",
         opens_at="2024-05-21T08:30:00+08:00"),
    _svc("E", "不动产登记", "Property registration", "不动产与税务", "Property & tax",
         promise="5小时办结", waiting=21),
    _svc("F", "个人税务", "Personal tax", "不动产与税务", "Property & tax",
         promise="即时办结", waiting=0),
    _svc("G", "婚姻登记", "Marriage registration", "民政服务", "Civil affairs",
         promise="即时办结", waiting=2),
    _svc("H", "残疾人证", "Disability certificate", "民政服务", "Civil affairs",
         promise="60分钟办结", waiting=1),
])

QUEUE = QueueOut(
    ts="2024-05-20T10:15:00+08:00",
    services={s.id: ServiceQueue(name=s.name, name_en=s.name_en, waiting=s.waiting,
                                 est_wait_s=s.est_wait_s) for s in SERVICES.services},
    windows={
        "1": WindowQueue(open=True, paused=False, serving="A031", services=["A", "B"]),
        "2": WindowQueue(open=True, paused=False, serving="B012", services=["B", "A"]),
        "3": WindowQueue(open=True, paused=False, serving="C008", services=["C", "D"]),
        "5": WindowQueue(open=True, paused=False, serving="E044", services=["E", "F"]),
        "6": WindowQueue(open=True, paused=True, serving=None, services=["G", "H"]),
    },
    recent_calls=[
        CallOut(call_id="c3", ticket="E044", window="5", service="E", kind="call",
                ts="2024-05-20T10:14:40+08:00"),
        CallOut(call_id="c2", ticket="A031", window="1", service="A", kind="call",
                ts="2024-05-20T10:13:05+08:00"),
        CallOut(call_id="c1", ticket="C008", window="3", service="C", kind="recall",
                ts="2024-05-20T10:12:30+08:00"),
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
