"""Loaded (by ``PYTHONPATH``) into an agent run under libfaketime with
``FAKETIME_DONT_FAKE_MONOTONIC=1``, so that its wall clock can step while it runs
(sim/clock.py). libfaketime 0.9.10 answers ``clock_nanosleep(CLOCK_MONOTONIC,
TIMER_ABSTIME)`` — what ``time.sleep`` uses — with EINVAL, which killed paho's network
thread; ``select()`` sleeps on the same monotonic clock and is not touched. Nothing
else changes: the steps come from libfaketime, as the agent's own clock sees them."""

import select
import time


def _sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    select.select([], [], [], seconds)


time.sleep = _sleep  # type: ignore[assignment]
