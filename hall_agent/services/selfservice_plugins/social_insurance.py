"""社保缴费记录: the last twelve months of social insurance contributions (simulated)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from hall_agent.core.personal import Person
from hall_agent.services.selfservice_plugins.base import Result, seeded


class SocialInsurance:
    id = "social_insurance"
    name = "社保缴费记录"
    name_en = "Social insurance record"
    kind: Literal["query", "print"] = "query"

    def run(self, person: Person, now: datetime) -> Result:
        draw = seeded(person, self.id)
        base = draw(4000, 12000)
        months = draw(6, 12)
        y, m = now.year, now.month
        lines: list[tuple[str, str]] = [("参保状态", "正常参保"), ("缴费基数", f"{base} 元")]
        for _ in range(min(months, 6)):
            m -= 1
            if m == 0:
                y, m = y - 1, 12
            pension, medical = base * 8 // 100, base * 2 // 100
            lines.append((f"{y}年{m:02d}月", f"养老 {pension} 元 · 医疗 {medical} 元"))
        lines.append(("连续缴费", f"{months} 个月"))
        return Result("社会保险个人缴费记录", "Social insurance contributions", tuple(lines),
                      note="本凭证由自助终端打印，仅供参考")
