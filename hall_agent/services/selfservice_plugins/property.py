"""不动产登记信息: the property registered to the card holder (simulated)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from hall_agent.core.personal import Person
from hall_agent.services.selfservice_plugins.base import Result, seeded


class PropertyRecord:
    id = "property"
    name = "不动产登记信息"
    name_en = "Property records"
    kind: Literal["query", "print"] = "query"

    def run(self, person: Person, now: datetime) -> Result:
        draw = seeded(person, self.id)
        n = draw(0, 2)
        if n == 0:
            return Result("不动产登记信息查询结果", "Property records",
                          (("查询结果", "名下无不动产登记记录"),), note="仅供参考")
        lines: list[tuple[str, str]] = [("登记数量", f"{n} 处")]
        for i in range(n):
            lines.append((f"第 {i + 1} 处", f"福州市某区（已脱敏） {draw(50, 160)} ㎡ · 住宅"))
            lines.append(("登记时间", f"{now.year - draw(1, 20)} 年"))
        return Result("不动产登记信息查询结果", "Property records", tuple(lines),
                      note="地址已脱敏；完整信息请持证到不动产窗口查询")
