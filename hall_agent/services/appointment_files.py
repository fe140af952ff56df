"""Reading an appointment list a clerk copied in: CSV or JSON, as Excel saves it.

Excel on Chinese Windows saves "CSV" in GBK (code page 936), its "CSV UTF-8" with a
byte-order mark; both are read (GB18030 is the superset of GBK), anything else is an
error that names the file and says what to do.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

# In order: UTF-8 (with or without Excel's BOM), then GB18030 (GBK, GB2312).
ENCODINGS = ("utf-8-sig", "gb18030")


def decode(data: bytes) -> str:
    for enc in ENCODINGS:
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise ValueError("the file is neither UTF-8 nor GBK/GB18030 text; save it from Excel "
                     "as \"CSV UTF-8\" or \"CSV\" / 文件编码无法识别，请在 Excel 中另存为 CSV")


def read_text(path: Path) -> str:
    return decode(path.read_bytes())


def parse_records(text: str, fmt: str) -> list[dict[str, Any]]:
    """CSV (with a header line) or JSON (a list, or ``{"appointments": [...]}``)."""
    if fmt == "json":
        data = json.loads(text)
        if isinstance(data, dict):
            data = data.get("appointments", [])
        if not isinstance(data, list):
            raise ValueError("JSON must be a list of appointments or "
                             "{\"appointments\": [...]}")
        return [dict(x) for x in data]
    import csv  # only when a list is imported

    return [dict(r) for r in csv.DictReader(io.StringIO(text.lstrip("\ufeff")))]
