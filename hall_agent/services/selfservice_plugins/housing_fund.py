"""公积金缴存证明: a housing provident fund deposit certificate (simulated)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from hall_agent.core.personal import Person
from hall_agent.services.selfservice_plugins.base import Result, seeded


class HousingFund:
    id = "housing_fund"
    name = "公积金缴存证明"
    name_en = "Housing fund certificate"
    kind: Literal["query", "print"] = "print"

    def run(self, person: Person, now: datetime) -> Result:
        draw = seeded(person, self.id)
        monthly = draw(300, 3000)
        balance = monthly * draw(12, 120)
        since = now.year - draw(1, 15)
        return Result("住房公积金缴存证明", "Housing provident fund certificate", (
            ("缴存状态", "正常缴存"), ("开户年份", f"{since} 年"),
            ("月缴存额", f"{monthly} 元"), ("账户余额", f"{balance:,} 元"),
            ("证明编号", f"GJJ{now:%Y%m%d}{draw(1000, 9999)}")),
            note="本证明自打印之日起 30 日内有效")
