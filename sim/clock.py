"""A wall clock that steps under a running agent: libfaketime (Debian's ``faketime``)
with its offset in a file, read again every second, and the monotonic clock left alone — as
NTP correcting a Pi's clock, or an RTC kept in local time, steps it."""

from __future__ import annotations

import os
from pathlib import Path

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")
SHIM = Path(__file__).resolve().parent / "faketime"


class SteppingClock:
    def __init__(self, offset_file: Path) -> None:
        self.offset_file = offset_file
        self.offset_s = 0

    def available(self) -> str:
        """Empty when the clock can step here, else why not."""
        return "" if LIBFAKETIME.exists() else f"no {LIBFAKETIME} (Debian: faketime)"

    def env(self) -> dict[str, str]:
        """What the agent's environment needs; the clock starts true."""
        self.step_to(0)
        return {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME_TIMESTAMP_FILE": str(self.offset_file),
                # the offset file is read at most once a second (at every call it costs a core)
                "FAKETIME_CACHE_DURATION": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                "NO_FAKE_STAT": "1",  # file times stay true (SQLite stats its files often)
                "PYTHONPATH": os.pathsep.join(
                    x for x in (str(SHIM), os.environ.get("PYTHONPATH", "")) if x)}

    @staticmethod
    def without(env: dict[str, str]) -> dict[str, str]:
        """``env`` with what :meth:`env` added taken out again (PYTHONPATH included)."""
        keys = {"LD_PRELOAD", "FAKETIME_TIMESTAMP_FILE", "FAKETIME_CACHE_DURATION",
                "FAKETIME_DONT_FAKE_MONOTONIC", "NO_FAKE_STAT", "PYTHONPATH"}
        return {k: v for k, v in env.items() if k not in keys}

    def step_to(self, offset_s: int) -> None:
        """The agent's wall clock is ``offset_s`` seconds from the true time from now on."""
        tmp = self.offset_file.with_suffix(".tmp")
        tmp.write_text(f"{offset_s:+d}\n")
        tmp.replace(self.offset_file)  # never a half-written offset
        self.offset_s = offset_s
