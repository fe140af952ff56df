"""Every benchmark runs as the README and bench/run type it (``.venv/bin/python
bench/NAME.py``, from any directory): a script whose imports only work as a module
(``-m bench.NAME``) fails here, not at the next bench run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p for p in (ROOT / "bench").glob("*.py")
                 if "argparse" in p.read_text(encoding="utf-8"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_benchmark_script_starts_as_typed(script: Path, tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, str(script), "--help"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "usage:" in r.stdout
