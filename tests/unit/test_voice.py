"""The voice announcer: what is said, in which order, never overlapping (WAV output)."""

from __future__ import annotations

import itertools
import json
import shutil
import wave
from pathlib import Path

import pytest

from hall_agent.core.events import Event
from hall_agent.services.voice import (
    CLIP_DIR,
    CLIPS,
    Announcer,
    ClipEngine,
    EspeakEngine,
    WavOutput,
    phrase,
    text_of,
)


def test_number_is_read_letter_by_letter_and_digit_by_digit() -> None:
    assert phrase("A023", "5") == ["zh-qing", "|", "zh-A", "zh-0", "zh-2", "zh-3", "zh-hao",
                                   "|", "zh-dao", "zh-5", "zh-window"]
    assert text_of(phrase("A023", "5")) == "请 A零二三号 到五号窗口办理"


def test_window_numbers_are_said_naturally() -> None:
    assert text_of(phrase("B1", "12")).endswith("到十二号窗口办理")
    assert text_of(phrase("B1", "20")).endswith("到二十号窗口办理")
    assert text_of(phrase("B1", "10")).endswith("到十号窗口办理")


def test_english_follows_the_chinese() -> None:
    t = phrase("A023", "5", english=True)
    assert t[t.index("||") + 1:] == ["en-number", "en-A", "en-0", "en-2", "en-3", "|",
                                     "en-go", "en-5"]


def test_clip_set_is_complete_and_small() -> None:
    files = list(CLIP_DIR.glob("*.wav"))
    assert {f.stem for f in files} == set(CLIPS)
    assert sum(f.stat().st_size for f in files) < 3_000_000
    with wave.open(str(CLIP_DIR / "zh-qing.wav")) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (1, 16000, 2)


def _duration(p: Path) -> float:
    with wave.open(str(p)) as w:
        return w.getnframes() / w.getframerate()


def test_queue_keeps_order_never_overlaps_and_speaks_a_recall_again(tmp_path: Path) -> None:
    out = WavOutput(tmp_path)
    a = Announcer(ClipEngine(), out)
    a.start()
    try:
        # (A central's duplicate delivery never reaches here: the store records a call_id
        # once and only then publishes it, tests/unit/test_calls.py.)
        calls = [("c1", "A001", "5", "call"), ("c2", "B001", "6", "call"),
                 ("c3", "A001", "5", "recall")]
        for cid, t, w, k in calls:
            a.on_event(Event("call", {"call_id": cid, "ticket": t, "window": w, "kind": k}))
        assert a.wait_idle(30)
    finally:
        a.close()
    log = [json.loads(x) for x in (tmp_path / "announcements.jsonl").read_text().splitlines()]
    assert [x["label"] for x in log] == ["A001-w5", "B001-w6", "A001-w5-recall"]
    for prev, nxt in itertools.pairwise(log):
        assert nxt["start"] >= prev["end"] - 0.01  # no overlap, none cut off
    for x in log:
        d = _duration(tmp_path / x["file"])
        assert 2.0 < d < 8.0
        assert abs((x["end"] - x["start"]) - d) < 0.3  # played to its end


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_espeak_engine_speaks_the_same_phrase(tmp_path: Path) -> None:
    s = EspeakEngine().render(phrase("A023", "5"))
    assert 2.0 < s.duration_s < 10.0
    p = WavOutput(tmp_path, realtime=False).play(s, "A023-w5")
    assert abs(_duration(p) - s.duration_s) < 0.01


def test_stopping_the_agent_cuts_the_call_being_spoken_short(tmp_path: Path) -> None:
    """A stop (restart, update) does not wait for the hall's speaker to finish."""
    import time

    out = WavOutput(tmp_path)
    a = Announcer(ClipEngine(), out)
    a.start()
    a.announce("A001", "5")
    a.announce("A002", "6")  # still queued when the stop comes
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob("*.wav")) and time.monotonic() < deadline:
        time.sleep(0.01)
    t0 = time.monotonic()
    a.close()
    took = time.monotonic() - t0
    first = json.loads((tmp_path / "announcements.jsonl").read_text().splitlines()[0])
    assert first["label"] == "A001-w5"
    # Cut short: it ended before the clip's own length, and so did the stop.
    assert first["end"] - first["start"] < first["duration_s"]
    assert took < first["duration_s"]


def test_the_wav_fallback_keeps_only_the_last_files_and_log_lines(tmp_path: Path) -> None:
    s = ClipEngine().render(phrase("A023", "5"))
    out = WavOutput(tmp_path, realtime=False, keep=5)
    for i in range(23):
        out.play(s, f"A{i:03d}-w5")
    files = sorted(p.name for p in tmp_path.glob("*.wav"))
    assert len(files) == 5 and files[-1] == "0023-A022-w5.wav"
    lines = (tmp_path / "announcements.jsonl").read_text().splitlines()
    assert 5 <= len(lines) <= 10 and json.loads(lines[-1])["label"] == "A022-w5"
    again = WavOutput(tmp_path, realtime=False, keep=5)  # after a restart: goes on
    assert again.play(s, "A100-w5").name.startswith("0024-")
