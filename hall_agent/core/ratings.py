"""Ratings: one per visit (一次一评, 国办发〔2019〕51号), whatever the channel.

A rating is bound to the ticket that was served: the one whose number the citizen
gives (typed, or the ticket's QR), else the one last called at the window. The
ticket is known by its ``ticket_id`` when this agent holds it, else (central mode,
a ticket numbered by another kiosk) by its hall-local day and number, so the
evaluator and the kiosk of one window reach the same key. The store's UNIQUE index
on ``evaluations.rated_key`` (migration 6) is the one place a second rating is
refused, as ``calls.call_id`` is for calls.

Kept, but never counted on the boards: ``none`` (asked, not answered; a later
rating of the same ticket still counts) and a rating no ticket can be found for
(an evaluator key pressed at a window that has called nobody: the device's event
must be stored before it is acknowledged).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from hall_agent.contract.levels import FOLLOW_UP_LEVELS, LEVELS, REASONS
from hall_agent.core.model import Evaluation
from hall_agent.core.refusal import Refused, Why
from hall_agent.core.store import Store

ALREADY_RATED = "该次服务已评价，感谢您的反馈"
ALREADY_RATED_EN = "This visit has already been rated. Thank you for your feedback."
_REASON_IDS = {r.id for r in REASONS}


class Ratings:
    def __init__(self, store: Store, tz: ZoneInfo, clock: Callable[[], float],
                 check_window: Callable[[str], object]) -> None:
        self.store = store
        self.tz = tz
        self.clock = clock
        self.check_window = check_window

    def _iso(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.tz).isoformat(timespec="milliseconds")

    def _day(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.tz).date().isoformat()

    def _check(self, level: str, reason: str | None, need_reason: bool) -> None:
        if level not in LEVELS:
            raise Refused(f"未知的评价等级 {level}", code="bad_level", field="level",
                          why=Why.INVALID, en=f"unknown level {level!r}")
        known = "、".join(f"{r.id}（{r.text}）" for r in REASONS)
        if reason and reason not in _REASON_IDS:
            raise Refused(f"未知的原因 {reason}（可选：{known}）", code="unknown_reason",
                          field="reason", why=Why.INVALID,
                          en=f"unknown reason {reason!r}; GET /v1/evaluations/reasons "
                             "lists them")
        if reason and level not in FOLLOW_UP_LEVELS:
            raise Refused("只有“基本满意”及以下的评价需要选择原因", code="reason_not_needed",
                          field="reason", why=Why.INVALID,
                          en="a reason goes only with basic or a lower level")
        if need_reason and not reason and level in FOLLOW_UP_LEVELS:
            raise Refused("请选择一个原因，帮助我们改进服务", code="reason_required",
                          field="reason", why=Why.INVALID,
                          en="Please choose a reason, so that we can improve")

    def _find(self, db: sqlite3.Connection, wid: str,
              number: str | None) -> tuple[str | None, str | None, str | None]:
        """(ticket_id or None, number, key) of the visit being rated; all None when
        the window has called nobody yet."""
        if number is None:
            row = db.execute("SELECT ticket_id, number, ts FROM calls WHERE window = ? AND "
                             "number IS NOT NULL ORDER BY ts DESC, rowid DESC LIMIT 1",
                             (wid,)).fetchone()
        else:
            row = db.execute("SELECT ticket_id, number, ts FROM calls WHERE window = ? AND "
                             "number = ? ORDER BY ts DESC, rowid DESC LIMIT 1",
                             (wid, number)).fetchone()
            if row is None:  # a ticket served before migration 6 kept no call row
                row = db.execute("SELECT ticket_id, number, called_at FROM tickets WHERE "
                                 "number = ? AND window = ? ORDER BY issued_at DESC LIMIT 1",
                                 (number, wid)).fetchone()
            if row is None:
                other = db.execute("SELECT window FROM calls WHERE number = ? AND ts >= ? "
                                   "ORDER BY ts DESC LIMIT 1",
                                   (number, self.clock() - 86400)).fetchone()
                hint = f"，它在 {other[0]} 号窗口办理" if other else ""
                hint_en = f"; it was served at window {other[0]}" if other else ""
                raise Refused(f"{wid} 号窗口没有办理过 {number}{hint}", code="unknown_ticket",
                              field="ticket", why=Why.INVALID,
                              en=f"window {wid} has not served {number}{hint_en}")
        if row is None:
            return None, None, None
        tid, num, ts = row[0], row[1], row[2]
        if tid is None:  # numbered elsewhere (central mode): its day and number
            ticket = db.execute("SELECT ticket_id FROM tickets WHERE number = ? AND window = ? "
                                "ORDER BY issued_at DESC LIMIT 1", (num, wid)).fetchone()
            tid = ticket[0] if ticket else None
        key = tid if tid else f"{self._day(ts or self.clock())}/{num}"
        return tid, num, key

    def evaluate(self, wid: str, level: str, *, number: str | None = None,
                 reason: str | None = None, channel: str = "kiosk", staff: str = "",
                 need_reason: bool = False, need_ticket: bool = False) -> Evaluation:
        """Store one rating and its ``evaluation.submitted`` event in one commit.

        Refused ``already_rated`` (409) when the visit has its rating; the kiosk asks
        for a reason (``need_reason``) and for a visit to rate (``need_ticket``), an
        evaluator cannot give either.
        """
        self.check_window(wid)
        self._check(level, reason, need_reason)
        with self.store.tx() as db:
            tid, num, key = self._find(db, wid, number)
            if key is None and need_ticket:
                raise Refused(f"{wid} 号窗口还没有叫过号，请输入您的票号再评价",
                              code="no_ticket", field="ticket", why=Why.CONFLICT,
                              en=f"window {wid} has called nobody yet; give your ticket "
                                 "number to rate")
            rated = key if level != "none" else None
            if key is not None and db.execute("SELECT 1 FROM evaluations WHERE rated_key = ?",
                                              (key,)).fetchone():
                raise Refused(ALREADY_RATED, code="already_rated", field="ticket",
                              why=Why.CONFLICT, en=ALREADY_RATED_EN)
            eid, now = str(uuid.uuid4()), self.clock()
            follow = level in FOLLOW_UP_LEVELS
            cur = db.execute(
                "INSERT OR IGNORE INTO evaluations (evaluation_id, window, ticket_id, number, "
                "level, reason, channel, follow_up, ts, ticket_key, rated_key) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (eid, wid, tid, num, level, reason or "", channel, int(follow), now, key,
                 rated))
            if cur.rowcount == 0:  # the UNIQUE index: a rating committed meanwhile
                raise Refused(ALREADY_RATED, code="already_rated", field="ticket",
                              why=Why.CONFLICT, en=ALREADY_RATED_EN)
            self.store.outbox.add(db, "evaluation.submitted", {
                "window": wid, "ticket": num, "staff": staff, "level": level,
                "reason": reason or "", "channel": channel, "follow_up": follow},
                ts_iso=self._iso(now))
            return Evaluation(eid, wid, num, level, follow, reason or None)

    def is_rated(self, wid: str, number: str) -> bool:
        """Whether the visit of ``number`` at ``wid`` has its rating (from any channel)."""
        with self.store.tx() as db:
            try:
                _, _, key = self._find(db, wid, number)
            except Refused:
                return False
            return key is not None and db.execute(
                "SELECT 1 FROM evaluations WHERE rated_key = ?", (key,)).fetchone() is not None

    def satisfaction(self, day: date) -> dict[str, dict[str, int]]:
        """The day's ratings per window and level, each visit once: its rating, or
        ``none`` when it was asked and never answered."""
        start = datetime.combine(day, datetime.min.time(), self.tz).timestamp()
        span = (start, start + 86400)
        rows = self.store.query(
            "SELECT window, level, COUNT(*) FROM evaluations WHERE rated_key IS NOT NULL "
            "AND ts >= ? AND ts < ? GROUP BY window, level", span)
        unanswered = self.store.query(
            "SELECT window, 'none', COUNT(DISTINCT ticket_key) FROM evaluations e "
            "WHERE level = 'none' AND ticket_key IS NOT NULL AND ts >= ? AND ts < ? AND "
            "NOT EXISTS (SELECT 1 FROM evaluations r WHERE r.rated_key = e.ticket_key) "
            "GROUP BY window", span)
        out: dict[str, dict[str, int]] = {}
        for wid, level, n in [*rows, *unanswered]:
            out.setdefault(wid, dict.fromkeys(LEVELS, 0))[level] = n
        return out
