"""Generate the voice clip set (voice/clips/) with espeak-ng and sox.

Each clip of :data:`hall_agent.services.voice.CLIPS` is synthesised once, trimmed of
leading and trailing silence, normalised and stored as 16 kHz mono 16-bit WAV,
so the whole set stays well under a megabyte or two and joins without clicks.
Run ``scripts/make-voice-clips`` after changing the clip table.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from hall_agent.services.voice import CLIP_DIR, CLIP_RATE, CLIPS

SPEED = {"cmn-latn-pinyin": 175, "en-us": 165}


def make_clip(voice: str, text: str, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(SPEED.get(voice, 150)), "-w",
                        str(raw), text], check=True, capture_output=True)
        # Trim silence at both ends (reverse, trim, reverse), normalise to -1 dBFS.
        subprocess.run(["sox", str(raw), "-r", str(CLIP_RATE), "-c", "1", "-b", "16",
                        str(out), "silence", "1", "0.01", "0.5%", "reverse", "silence", "1",
                        "0.01", "0.5%", "reverse", "gain", "-n", "-1"],
                       check=True, capture_output=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default=str(CLIP_DIR), help="clip directory")
    a = p.parse_args(argv)
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            print(f"make-voice-clips: {tool} is not installed (apt install {tool})",
                  file=sys.stderr)
            return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    total = 0
    for name, (voice, text) in CLIPS.items():
        path = out / f"{name}.wav"
        make_clip(voice, text, path)
        total += path.stat().st_size
    print(f"{len(CLIPS)} clips, {total / 1024:.0f} KiB in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
