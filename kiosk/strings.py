"""Every string the kiosk shows, in one table: key → (Chinese, English).

Screens call :func:`tr`; a missing key is a programming error and raises, so a
typo shows up in the tests rather than as an empty button on the kiosk.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from hall_agent.contract.api import ServiceOut

Lang = Literal["zh", "en"]

TEXT: dict[str, tuple[str, str]] = {
    # home
    "take_ticket": ("取号", "Take a ticket"),
    "take_ticket_sub": ("现场取号办理业务", "Queue for a service"),
    "checkin": ("预约签到", "Appointment check-in"),
    "checkin_sub": ("刷身份证或扫预约码", "ID card or booking QR"),
    "checkin_off": ("暂未开通", "Not available here"),
    "guides": ("办事指南", "Service guides"),
    "guides_sub": ("材料清单 · 办理时限", "Documents and time limits"),
    "queue": ("排队查询", "Queue status"),
    "queue_sub": ("各业务等候人数", "Who is waiting, who is served"),
    "rate": ("服务评价", "Rate a service"),
    "rate_sub": ("对窗口服务打分", "Tell us how we did"),
    "selfservice": ("24小时自助服务", "24-hour self-service"),
    "elderly_on": ("长者模式", "Large text"),
    "elderly_off": ("标准模式", "Standard text"),
    "lang_other": ("English", "中文"),
    "welcome": ("欢迎办事，请点击所需服务", "Welcome. Please touch a service."),
    "help_desk": ("如需帮助，请到咨询台或按呼叫按钮",
                  "Need help? Please ask at the information desk."),
    "home_waiting": ("当前共有 {n} 人等候", "{n} people waiting now"),
    "home_rule": ("当日取号 · 当日受理", "Every ticket taken today is served today"),
    "printer_down_banner": ("打印机暂时无法出票：取号后请用手机拍下屏幕上的号码和二维码",
                            "The printer is out of service: please photograph your number "
                            "and QR code on screen"),
    # navigation
    "back": ("返回", "Back"),
    "home": ("首页", "Home"),
    "done": ("完成", "Done"),
    "prev_page": ("上一页", "Previous"),
    "next_page": ("下一页", "Next"),
    "page": ("第 {n}/{total} 页", "Page {n} of {total}"),
    "idle_countdown": ("{s} 秒后返回首页", "Home in {s} s"),
    "please_wait": ("请稍候…", "Please wait…"),
    # take a ticket
    "choose_category": ("请选择业务类别", "Choose a category"),
    "choose_service": ("请选择办理的业务", "Choose a service"),
    "priority_path": ("优先通道", "Priority lane"),
    "priority_path_sub": ("老年人 · 残疾人 · 孕妇 · 军人",
                          "Elderly · disabled · pregnant · military"),
    "priority_title": ("优先通道：请选择优先类别", "Priority lane: who is it for?"),
    "priority_note": ("工作人员可能需要查验相关证件", "Staff may ask to see a document"),
    "priority_banner": ("优先取号", "Priority ticket"),
    "reason_elderly": ("65岁以上老年人", "Aged 65 or over"),
    "reason_disabled": ("残疾人", "Person with a disability"),
    "reason_pregnant": ("孕妇", "Pregnant"),
    "reason_military": ("现役军人 · 消防救援人员", "Service member"),
    "waiting_n": ("{n} 人等候", "{n} waiting"),
    "wait_est": ("约 {t}", "about {t}"),
    "closed": ("暂停取号", "Closed now"),
    "closed_opens": ("{when} 开始取号", "Opens {when}"),
    "closed_title": ("该业务现在不能取号", "No tickets for this service now"),
    "daily_limit": ("今日号源已满", "Today's tickets are all taken"),
    "issuing": ("正在出票，请稍候…", "Printing your ticket…"),
    "ticket_title": ("您的号码", "Your number"),
    "ahead": ("前面还有 {n} 人等候", "{n} people ahead of you"),
    "ahead_zero": ("前面没有人等候，请留意叫号", "No one ahead of you. Listen for your number."),
    "est_wait": ("预计等候 {t}", "Estimated wait {t}"),
    "take_printed": ("请取走下方的号票，留意叫号", "Please take your ticket below and listen for "
                                                "your number"),
    "not_printed": ("打印机暂时无法出票，请用手机拍下或扫描二维码保存您的号码",
                    "The printer cannot print right now. Please photograph or scan the QR "
                    "code to keep your number."),
    "scan_hint": ("手机扫码查看排队进度", "Scan to follow your place in the queue"),
    "offline_note": ("本号码为离线出号，叫号不受影响", "Issued offline; you will still be called"),
    "reprint": ("重新打印", "Print again"),
    "reprinted": ("已重新打印", "Printed"),
    "reprint_failed": ("仍无法打印，请拍下号码", "Still cannot print: please photograph "
                                              "your number"),
    "ticket_error": ("取号未成功", "No ticket was issued"),
    "ticket_error_retry": ("请稍后再试，或到咨询台取号",
                           "Please try again, or ask at the information desk"),
    "minutes": ("{m} 分钟", "{m} min"),
    "hours_minutes": ("{h} 小时 {m} 分钟", "{h} h {m} min"),
    "under_minute": ("不到 1 分钟", "under a minute"),
    # guides
    "guide_title": ("办事指南", "Service guides"),
    # the keyboard below has letters only: the hint asks for initials, not hanzi
    "search_hint": ("用字母键输入拼音首字母，如 SB（社保）",
                    "Type a few letters of the name, e.g. TAX"),
    "search_clear": ("清空", "Clear"),
    "search_delete": ("删除", "Delete"),
    "no_match": ("没有找到相关业务，请换个词试试", "Nothing found. Try another word."),
    "hours": ("办理时间", "Hours"),
    "hours_24h": ("全天24小时", "24 hours"),
    "promise": ("承诺时限", "Time promise"),
    "open_now": ("正在取号", "Taking tickets now"),
    "saver": ("请触摸屏幕开始办事", "Touch the screen to start"),
    "guide_in_chinese": ("本指南暂只有中文版",
                         "This guide is in Chinese only for now; the information desk "
                         "will gladly help."),
    "take_this": ("取号办理此业务", "Take a ticket for this"),
    # queue
    "queue_title": ("排队查询", "Queue status"),
    "col_service": ("业务", "Service"),
    "col_waiting": ("等候人数", "Waiting"),
    "col_est": ("预计等候", "Est. wait"),
    "windows_serving": ("窗口正在办理", "Now serving"),
    "window_n": ("{w} 号窗口", "Window {w}"),
    "window_idle": ("空闲", "Free"),
    "window_paused": ("暂停服务", "Paused"),
    "recent_calls": ("最近叫号", "Recent calls"),
    "call_line": ("请 {t} 号到 {w} 号窗口", "{t} to window {w}"),
    "live": ("实时更新", "Live"),
    "called_again": ("再次叫号", "called again"),
    # rating
    "rate_title": ("服务评价：请选择窗口", "Rate a service: choose the window"),
    "rate_level_title": ("请对 {w} 号窗口的服务作出评价", "How was window {w}?"),
    "lvl_very_satisfied": ("非常满意", "Very satisfied"),
    "lvl_satisfied": ("满意", "Satisfied"),
    "lvl_basic": ("基本满意", "Fairly satisfied"),
    "lvl_unsatisfied": ("不满意", "Unsatisfied"),
    "lvl_very_unsatisfied": ("非常不满意", "Very unsatisfied"),
    "rate_thanks": ("感谢您的评价！", "Thank you for your rating!"),
    "rate_already": ("已评价", "Already rated"),
    "rate_already_body": ("感谢您！每次办理只需评价一次", "Thank you. Each visit is rated once."),
    "rate_reason_title": ("请告诉我们哪里需要改进", "What should we do better?"),
    "rate_reason_note": ("选择一项，我们会据此回访改进", "Choose one; we will follow it up"),
    "rate_follow_up": ("我们会尽快回访，改进服务", "We will contact you and put it right"),
    "rate_failed": ("评价未能提交，请稍后再试", "The rating was not sent. Please try again."),
    "no_windows": ("暂无可评价的窗口", "No windows to rate right now"),
    # check-in
    "checkin_title": ("预约签到", "Appointment check-in"),
    "checkin_prompt": ("请将身份证放在下方感应区，或扫描预约二维码",
                       "Place your ID card on the reader below, or scan your booking QR code"),
    "checkin_done": ("签到成功，已为您优先排队", "Checked in: you are in the priority queue"),
    "checkin_slot": ("预约时段 {slot}", "Booked slot {slot}"),
    "checkin_failed": ("签到未成功", "Check-in failed"),
    "checking_in": ("正在签到…", "Checking in…"),
    # ID card
    "card_title": ("请刷身份证", "Place your ID card"),
    "card_prompt": ("请将身份证放在下方感应区，读卡时请勿移动",
                    "Place your ID card on the reader below and hold it still"),
    "card_for": ("{service} 为实名取号业务", "{service} needs your ID card"),
    "card_types": ("支持：居民身份证 · 港澳台居民居住证 · 外国人永久居留身份证",
                   "Accepted: resident ID card, HK/Macao/Taiwan residence permit, "
                   "foreigner's permanent residence card"),
    "card_hint_qr": ("有预约二维码？请对准扫码口",
                     "Have a booking QR code? Hold it to the scanner"),
    "card_error": ("读卡未成功", "The card could not be read"),
    "card_hello": ("{name}，您好", "Hello, {name}"),
    "card_expired": ("证件已过期", "This card has expired"),
    # scans
    "scan_ticket": ("号票 {number}", "Ticket {number}"),
    "scan_waiting": ("前面还有 {n} 人，请留意叫号", "{n} ahead of you. Listen for your number."),
    "scan_called": ("已叫号，请到 {w} 号窗口", "Called: please go to window {w}"),
    "scan_closed": ("该号已办结", "This ticket is finished"),
    "scan_unknown": ("无法识别", "Not recognised"),
    # 24-hour area
    "ss_title": ("24小时自助服务区", "24-hour self-service area"),
    "ss_hours": ("现在是自助服务时间，人工窗口办理时间：{hours}",
                 "Self-service hours now; staffed hours: {hours}"),
    "ss_card_prompt": ("刷身份证开门，并使用自助查询打印",
                       "Place your ID card to open the door and use the services"),
    "ss_door_open": ("门已打开，请进", "The door is open. Please come in."),
    "ss_door_refused": ("证件已过期，无法开门", "This card has expired: the door stays shut"),
    "ss_menu": ("请选择自助服务", "Choose a service"),
    "ss_query": ("查询并打印", "Look up and print"),
    "ss_print": ("打印证明", "Print a certificate"),
    "ss_book": ("预约明天办理", "Book for tomorrow"),
    "ss_book_sub": ("选择业务和时段", "Pick a service and a time"),
    "ss_running": ("正在查询，请稍候…", "Looking it up…"),
    "ss_printed": ("已打印，请取走凭条", "Printed: please take your slip"),
    "ss_not_printed": ("打印机暂时无法打印，请拍下屏幕", "The printer cannot print: please "
                                                    "photograph the screen"),
    "ss_failed": ("暂时无法办理", "Cannot do this now"),
    "ss_book_service": ("预约明天：请选择业务", "Book for tomorrow: choose a service"),
    "ss_book_slot": ("{service}：请选择时段（{day}）", "{service}: choose a time ({day})"),
    "ss_free": ("余 {n}", "{n} left"),
    "ss_full": ("已满", "Full"),
    "ss_booked": ("预约成功", "Booked"),
    "ss_booked_body": ("{service}  {day} {slot}\n预约码 {code}",
                       "{service}  {day} {slot}\nBooking code {code}"),
    "ss_booked_detail": ("凭条已打印，到厅后扫码或刷身份证签到",
                         "Your slip is printed: scan it or place your ID card when you come"),
    # out of service
    "oos_title": ("暂停服务", "Out of service"),
    "oos_body": ("系统正在恢复，请稍候或到咨询台取号",
                 "The system is restarting. Please wait, or take a ticket at the "
                 "information desk."),
    "oos_retry": ("正在自动重试…", "Retrying automatically…"),
    # out of service because the agent's storage (the SD card) failed: it answers, but
    # cannot keep a ticket
    "oos_storage": ("本机暂时不能取号\n请到咨询台或另一台取号机取号",
                    "This kiosk cannot issue tickets just now. Please take one at the "
                    "information desk or another kiosk."),
    "oos_staff": ("工作人员：{detail}", "Staff: {detail}"),
}


def tr(key: str, lang: Lang, /, **kwargs: object) -> str:
    zh, en = TEXT[key]
    text = zh if lang == "zh" else en
    return text.format(**kwargs) if kwargs else text


def duration(seconds: int, lang: Lang) -> str:
    """A wait in words: "约 15 分钟" is what people read, not "900 s"."""
    if seconds < 60:
        return tr("under_minute", lang)
    minutes = round(seconds / 60)
    if minutes < 60:
        return tr("minutes", lang, m=minutes)
    return tr("hours_minutes", lang, h=minutes // 60, m=minutes % 60)


def localized(zh: str, en: str | None, lang: Lang) -> str:
    """An agent's bilingual text (a refusal's message and message_en): the English one
    when there is one."""
    return zh if lang == "zh" else en or zh


def service_name(s: ServiceOut, lang: Lang) -> str:
    return s.name if lang == "zh" else s.name_en


_PROMISE_EN = (
    (re.compile(r"^(\d+)\s*分钟(内)?办结$"), "Done within {0} min"),
    (re.compile(r"^(\d+)\s*小时(内)?办结$"), "Done within {0} h"),
    (re.compile(r"^(\d+)\s*个?工作日(内)?(办结)?$"), "{0} working days"),
    (re.compile(r"^(即时办结|即办件?)$"), "Done on the spot"),
    (re.compile(r"^当日办结$"), "Done the same day"),
)


def promise_text(promise: str, lang: Lang, promise_en: str = "") -> str:
    """The catalogue's promise ("60分钟办结") in the kiosk's language."""
    if lang == "zh" or not promise:
        return promise
    if promise_en:
        return promise_en
    for pattern, english in _PROMISE_EN:
        m = pattern.match(promise.strip())
        if m:
            return english.format(*m.groups())
    return promise


def hours_text(hours: str, lang: Lang) -> str:
    if hours.strip() == "24h":
        return tr("hours_24h", lang)
    return "  ".join(p.strip() for p in hours.split(","))


def when_text(iso: str | None, lang: Lang, now: datetime | None = None) -> str:
    """``2024-05-21T08:30+08:00`` → "明天 08:30" / "tomorrow 08:30", for "opens at"."""
    if not iso:
        return ""
    try:
        at = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    now = now or datetime.now(at.tzinfo)
    days = (at.date() - now.date()).days
    hm = at.strftime("%H:%M")
    if days == 0:
        return f"今天 {hm}" if lang == "zh" else f"today at {hm}"
    if days == 1:
        return f"明天 {hm}" if lang == "zh" else f"tomorrow at {hm}"
    if lang == "zh":
        return f"{at.month}月{at.day}日 {hm}"
    return f"{at.day} {at.strftime('%b')} at {hm}"


def closed_text(s: ServiceOut, lang: Lang) -> str:
    reason = (s.closed_reason if lang == "zh" else s.closed_reason_en or s.closed_reason) or ""
    opens = when_text(s.opens_at, lang)
    parts = [reason or tr("closed", lang)]
    if opens:
        parts.append(tr("closed_opens", lang, when=opens))
    return "，".join(parts) if lang == "zh" else ". ".join(parts)
