"""Calls spoken aloud (docs/protocols/SCANNER.md "Voice"): a queued announcer.

"请 A023 号 到 5 号窗口办理", the ticket read letter by letter and digit by digit
("A 零 二 三"), optionally again in English. Two engines build the sound:

- ``clips``: recorded clips joined in order (voice/clips/, generated once with
  espeak-ng by scripts/make-voice-clips) — fast and even;
- ``espeak``: espeak-ng at call time, the ``cmn-latn-pinyin`` voice with digits
  written out as hanzi (espeak-ng 1.51's ``cmn`` voice misreads digit strings).

One thread plays announcements one after another, each to its end, so they
never overlap or cut each other off; a recall is a new call event and is spoken
again. Output is ALSA (``aplay``), or one WAV file per announcement (no sound
card, and the tests), with ``announcements.jsonl`` saying when each was played.
"""

from __future__ import annotations

import array
import contextlib
import io
import json
import logging
import queue
import shutil
import subprocess
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hall_agent.core.events import Event
from hall_agent.services.ports import Events

log = logging.getLogger("hall_agent.services.voice")

CLIP_DIR = Path(__file__).resolve().parents[2] / "voice" / "clips"
CLIP_RATE = 16_000
ZH_VOICE = "cmn-latn-pinyin"
EN_VOICE = "en-us"
ZH_DIGITS = "零一二三四五六七八九"
EN_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
WORD_GAP_S = 0.02  # between clips of one phrase
PHRASE_GAP_S = 0.18  # around the number and the window
LANG_GAP_S = 0.6  # between the Chinese and the English reading
MAX_QUEUE = 50  # a backlog beyond this is a stuck speaker: drop the oldest, say so


def _clip_table() -> dict[str, tuple[str, str]]:
    """clip name → (espeak-ng voice, text). The one list both engines and the clip
    generator use, so a clip set and the espeak engine say the same words."""
    t: dict[str, tuple[str, str]] = {
        "zh-qing": (ZH_VOICE, "请"), "zh-hao": (ZH_VOICE, "号"), "zh-dao": (ZH_VOICE, "到"),
        "zh-window": (ZH_VOICE, "号窗口办理"), "zh-shi": (ZH_VOICE, "十"),
        "en-number": (EN_VOICE, "number"), "en-go": (EN_VOICE, "please go to window"),
    }
    for i, d in enumerate(ZH_DIGITS):
        t[f"zh-{i}"] = (ZH_VOICE, d)
    for i, w in enumerate(EN_DIGITS):
        t[f"en-{i}"] = (EN_VOICE, w)
    for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        t[f"zh-{c}"] = (ZH_VOICE, c)
        t[f"en-{c}"] = (EN_VOICE, c)
    return t


CLIPS = _clip_table()

Token = str  # a clip name, or "|" for a phrase pause, "||" for the language pause


def _chars(lang: str, s: str) -> list[Token]:
    out = []
    for ch in s.upper():
        if ch.isdigit() or ("A" <= ch <= "Z"):
            out.append(f"{lang}-{ch}")
    return out


def _zh_window(window: str) -> list[Token]:
    """A window is a number people say naturally: 5 → 五, 12 → 十二, 20 → 二十."""
    if window.isdigit() and 10 <= int(window) <= 99:
        tens, ones = divmod(int(window), 10)
        out = ([] if tens == 1 else [f"zh-{tens}"]) + ["zh-shi"]
        return out + ([f"zh-{ones}"] if ones else [])
    return _chars("zh", window.lstrip("0") or "0")


def phrase(ticket: str, window: str, *, english: bool = False) -> list[Token]:
    """The clips of one announcement, in order."""
    out: list[Token] = ["zh-qing", "|", *_chars("zh", ticket), "zh-hao", "|", "zh-dao",
                        *_zh_window(window), "zh-window"]
    if english:
        out += ["||", "en-number", *_chars("en", ticket), "|", "en-go", *_chars("en", window)]
    return out


def text_of(tokens: list[Token]) -> str:
    """What is said, as text (logs, and the espeak engine's input)."""
    parts = []
    for t in tokens:
        if t in ("|", "||"):
            parts.append(" ")
        else:
            parts.append(CLIPS[t][1] + (" " if t.startswith("en-") else ""))
    return "".join(parts).strip()


# --------------------------------------------------------------------------- sound

@dataclass(frozen=True, slots=True)
class Sound:
    pcm: bytes  # 16-bit little-endian mono
    rate: int

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / self.rate

    def wav(self) -> bytes:
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(self.rate)
            w.writeframes(self.pcm)
        return buf.getvalue()


def silence(seconds: float, rate: int) -> bytes:
    return bytes(2 * int(seconds * rate))


def read_wav(data: bytes) -> Sound:
    with wave.open(io.BytesIO(data), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError("clips must be 16-bit PCM")
        rate, ch = w.getframerate(), w.getnchannels()
        pcm = w.readframes(w.getnframes())
    if ch == 2:  # keep the left channel
        a = array.array("h", pcm)
        pcm = a[0::2].tobytes()
    return Sound(pcm, rate)


def resample(s: Sound, rate: int) -> Sound:
    """Nearest-sample resampling: only to join espeak's 22.05 kHz with other pieces."""
    if s.rate == rate:
        return s
    src = array.array("h", s.pcm)
    n = int(len(src) * rate / s.rate)
    out = array.array("h", (src[min(len(src) - 1, int(i * s.rate / rate))] for i in range(n)))
    return Sound(out.tobytes(), rate)


def join(tokens: list[Token], piece: dict[str, Sound], rate: int) -> Sound:
    out = bytearray()
    for t in tokens:
        if t == "|":
            out += silence(PHRASE_GAP_S, rate)
        elif t == "||":
            out += silence(LANG_GAP_S, rate)
        else:
            if out:
                out += silence(WORD_GAP_S, rate)
            out += resample(piece[t], rate).pcm
    return Sound(bytes(out), rate)


class Engine(Protocol):
    name: str

    def render(self, tokens: list[Token]) -> Sound: ...


class ClipEngine:
    name = "clips"

    def __init__(self, clip_dir: Path = CLIP_DIR) -> None:
        self.clip_dir = clip_dir
        self.clips: dict[str, Sound] = {}
        missing = []
        for name in CLIPS:
            p = clip_dir / f"{name}.wav"
            if p.exists():
                self.clips[name] = read_wav(p.read_bytes())
            else:
                missing.append(name)
        if missing:
            raise FileNotFoundError(f"voice clips missing in {clip_dir}: {', '.join(missing[:5])}"
                                    f"{'…' if len(missing) > 5 else ''}; run "
                                    "scripts/make-voice-clips")
        self.rate = next(iter(self.clips.values())).rate

    def render(self, tokens: list[Token]) -> Sound:
        return join(tokens, self.clips, self.rate)


def espeak(voice: str, text: str, speed: int = 150) -> Sound:
    r = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
                       capture_output=True, timeout=30, check=True)
    return read_wav(r.stdout)


class EspeakEngine:
    """espeak-ng at call time; each piece synthesised once and cached, so the second
    call of the day costs no more than the clip engine."""

    name = "espeak"

    def __init__(self, speed: int = 150) -> None:
        if shutil.which("espeak-ng") is None:
            raise FileNotFoundError("espeak-ng is not installed (apt install espeak-ng)")
        self.speed = speed
        self._cache: dict[str, Sound] = {}

    def render(self, tokens: list[Token]) -> Sound:
        for t in tokens:
            if t not in ("|", "||") and t not in self._cache:
                voice, text = CLIPS[t]
                self._cache[t] = espeak(voice, text, self.speed)
        return join(tokens, self._cache, 22_050)


# --------------------------------------------------------------------------- output

class Output(Protocol):
    name: str

    def play(self, sound: Sound, label: str) -> Path | None:
        """Play to the end (blocking); returns the file written, if any."""
        ...

    def stop(self) -> None:
        """The agent is stopping: cut short what is playing."""
        ...


class AlsaOutput:
    name = "alsa"

    def __init__(self, device: str | None = None) -> None:
        self.device = device
        self._playing: subprocess.Popen[bytes] | None = None
        self._stopped = False

    def play(self, sound: Sound, label: str) -> Path | None:
        cmd = ["aplay", "-q"] + (["-D", self.device] if self.device else []) + ["-"]
        if self._stopped:
            return None
        try:
            with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE) as proc:
                self._playing = proc
                _, err = proc.communicate(sound.wav(), timeout=sound.duration_s + 10)
                if proc.returncode and not self._stopped:
                    raise subprocess.CalledProcessError(proc.returncode, cmd, stderr=err)
        except (OSError, subprocess.SubprocessError) as e:
            log.warning("voice: aplay failed for %s (%s); check the speaker and `aplay -l`",
                        label, e)
        finally:
            self._playing = None
        return None

    def stop(self) -> None:
        self._stopped = True
        proc = self._playing
        if proc is not None:
            proc.terminate()


class WavOutput:
    """One WAV per announcement in ``out_dir``; with ``realtime`` it also takes as long
    as the sound, like a speaker, so the timing in announcements.jsonl is real.

    Only the last ``keep`` files and log lines are kept (about 125 KB a call, 8,000
    calls a day filled the card): the fallback when there is no sound card keeps
    :data:`KEEP_FALLBACK` (nobody listens to them), ``output = "wav"`` :data:`KEEP_WAV`.
    """

    name = "wav"

    def __init__(self, out_dir: Path, *, realtime: bool = True, keep: int = 0) -> None:
        self.out_dir = out_dir
        self.realtime = realtime
        self.keep = keep or KEEP_WAV
        out_dir.mkdir(parents=True, exist_ok=True)
        self._n = max((_seq(p) for p in out_dir.glob("*.wav")), default=0)
        self._log = out_dir / "announcements.jsonl"
        try:
            self._lines = len(self._log.read_bytes().splitlines())
        except OSError:
            self._lines = 0
        self._stop = threading.Event()

    def play(self, sound: Sound, label: str) -> Path:
        self._n += 1
        safe = "".join(c for c in label if c.isalnum() or c in "-_")
        path = self.out_dir / f"{self._n:04d}-{safe}.wav"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(sound.wav())
        tmp.replace(path)
        self._prune()
        start = time.time()
        if self.realtime:
            self._stop.wait(sound.duration_s)  # like a speaker; cut short at a stop
        with self._log.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"file": path.name, "label": label, "start": start,
                                "end": time.time() if self.realtime else start,
                                "duration_s": round(sound.duration_s, 3)}) + "\n")
        self._lines += 1
        if self._lines > 2 * self.keep:  # rewritten now and then, not at every call
            kept = self._log.read_text(encoding="utf-8").splitlines()[-self.keep:]
            tmp_log = self._log.with_suffix(".tmp")
            tmp_log.write_text("".join(x + "\n" for x in kept), encoding="utf-8")
            tmp_log.replace(self._log)
            self._lines = len(kept)
        return path

    def _prune(self) -> None:
        files = sorted(self.out_dir.glob("*.wav"), key=_seq)
        for old in files[:-self.keep]:
            with contextlib.suppress(OSError):
                old.unlink()

    def stop(self) -> None:
        self._stop.set()


KEEP_WAV = 200  # WAV files (and log lines) kept with output = "wav"
KEEP_FALLBACK = 20  # kept when WAV is only the fallback for a missing sound card


def _seq(p: Path) -> int:
    head = p.name.split("-", 1)[0]
    return int(head) if head.isdigit() else 0


def sound_card_present() -> bool:
    if shutil.which("aplay") is None:
        return False
    try:
        r = subprocess.run(["aplay", "-l"], capture_output=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0 and b"card" in r.stdout


# --------------------------------------------------------------------------- announcer

@dataclass(frozen=True, slots=True)
class Announcement:
    ticket: str
    window: str
    kind: str
    tokens: list[Token]


class Announcer:
    def __init__(self, engine: Engine, output: Output, *, english: bool = False) -> None:
        self.engine = engine
        self.output = output
        self.english = english
        self._q: queue.Queue[Announcement | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.spoken: list[tuple[Announcement, Path | None]] = []
        self._idle = threading.Condition()
        self._busy = 0

    def on_event(self, ev: Event) -> None:
        if ev.kind != "call":
            return
        d = ev.data
        if not d.get("ticket") or not d.get("window"):
            return
        self.announce(str(d["ticket"]), str(d["window"]), str(d.get("kind") or "call"))

    def announce(self, ticket: str, window: str, kind: str = "call") -> None:
        a = Announcement(ticket, window, kind, phrase(ticket, window, english=self.english))
        with self._idle:
            self._busy += 1
        if self._q.qsize() >= MAX_QUEUE:
            with contextlib.suppress(queue.Empty):
                dropped = self._q.get_nowait()
                with self._idle:
                    self._busy -= 1
                log.warning("voice: %d announcements waiting; dropped %s", MAX_QUEUE,
                            dropped and dropped.ticket)
        self._q.put(a)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="voice", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop: what is being spoken is cut short and what is still queued is not
        played out (the agent is going down; the store and the boards keep every
        call), so a stop never waits for the hall's speaker."""
        self.output.stop()
        self._q.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            a = self._q.get()
            if a is None:
                return
            label = f"{a.ticket}-w{a.window}{'-recall' if a.kind == 'recall' else ''}"
            try:
                sound = self.engine.render(a.tokens)
                path = self.output.play(sound, label)
                self.spoken.append((a, path))
                log.info("voice: %s (%.1f s, %s)", text_of(a.tokens), sound.duration_s,
                         self.engine.name)
            except Exception:
                log.exception("voice: cannot speak %s", label)
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()


def make_announcer(events: Events, data_dir: Path, *, engine: str | None = None,
                   output: str | None = None, english: bool = False) -> Announcer | None:
    """The announcer with the defaults: clips if the clip set is there, else espeak-ng;
    ALSA if there is a sound card, else WAV files in ``data_dir/voice``."""
    if output == "board":
        # The hall's BX-6 board speaks each call itself (services/boards.py).
        log.info("voice: spoken by the hall's ONBON BX-6 board")
        return None
    eng: Engine
    try:
        if engine in (None, "clips") and (CLIP_DIR / "zh-qing.wav").exists():
            eng = ClipEngine()
        else:
            eng = EspeakEngine()
    except (OSError, ValueError, wave.Error) as e:
        log.warning("voice: calls will not be spoken: %s", e)
        return None
    out: Output
    if output == "alsa" or (output is None and sound_card_present()):
        out = AlsaOutput()
    else:
        out = WavOutput(data_dir / "voice",
                        keep=KEEP_WAV if output == "wav" else KEEP_FALLBACK)
    a = Announcer(eng, out, english=english)
    events.listen(a.on_event)
    log.info("voice: %s engine, output %s", eng.name, out.name)
    return a
