"""The repository stands alone: every protocol page it cites is in docs/protocols/."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = {"MQTT.md", "PRINTER.md", "IDCARD.md", "RS485.md", "SCANNER.md"}


def tracked_text_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "*.py", "*.md", "*.toml", "*.sh"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return [ROOT / p for p in out.split() if (ROOT / p).is_file()]


def test_the_protocol_pages_are_in_the_repository() -> None:
    assert {p.name for p in (ROOT / "docs" / "protocols").glob("*.md")} >= PAGES


def test_every_protocol_reference_points_into_docs_protocols() -> None:
    wrong = []
    for path in tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in re.finditer(r"(\S*)protocols/([A-Z0-9]+\.md)", text):
            prefix, page = m.group(1), m.group(2)
            if not prefix.endswith("docs/") or page not in PAGES:
                wrong.append(f"{path.relative_to(ROOT)}: {m.group(0)}")
    assert not wrong, "cite docs/protocols/<page>.md:\n" + "\n".join(wrong)
