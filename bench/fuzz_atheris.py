"""Coverage-guided fuzzing (atheris / libFuzzer) of every decoder that reads bytes from a
device or the network, each for a fixed budget. A decoder may reject input, never crash.

  .venv/bin/python bench/fuzz_atheris.py [--seconds 60]       all targets, one after another
  .venv/bin/python bench/fuzz_atheris.py --target escpos      one target (runs in-process)

Prints a Markdown table: target, executions, result. A crash leaves the input that
caused it in bench/out/crash-<target>-*; add it as a regression test and fix the decoder.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _escpos(data: bytes) -> None:
    from drivers.escpos_decode import EscPosDecoder, TicketAssembler

    dec, asm = EscPosDecoder(), TicketAssembler()
    half = len(data) // 2
    asm.feed(dec.feed(data[:half]))
    asm.feed(dec.feed(data[half:]))


def _rs485(data: bytes) -> None:
    from drivers.rs485 import FrameDecoder

    dec = FrameDecoder()
    for i in range(0, len(data), 7):
        dec.feed(data[i:i + 7], now=i * 0.001)


def _onbon(data: bytes) -> None:
    from drivers.onbon import FrameDecoder, Model, OnbonCodecError, encode_frame
    from drivers.onbon_area import onbon_parse_any

    dec = FrameDecoder()
    for i in range(0, len(data), 11):
        dec.feed(data[i:i + 11])
    # Past the CRC too: the same bytes as a well-framed request, every parser on it.
    (packet,) = FrameDecoder().feed(encode_frame(1, data))
    for model in Model:
        with contextlib.suppress(OnbonCodecError):
            onbon_parse_any(model, packet.data)


def _sam(data: bytes) -> None:
    from drivers.idcard import CardDataError, FrameParser, parse_text

    parser = FrameParser()
    parser.feed(data)
    with contextlib.suppress(CardDataError):
        parse_text(data[:256].ljust(256, b"\x20"))


def _mqtt(data: bytes) -> None:
    from pydantic import ValidationError

    from hall_agent.contract.mqtt import SCHEMAS

    models = list(SCHEMAS.values())
    if not data:
        return
    with contextlib.suppress(ValidationError):
        models[data[0] % len(models)].model_validate_json(data[1:])


def _config(data: bytes) -> None:
    import tomllib

    from pydantic import ValidationError

    from hall_agent.contract.catalog import Catalog
    from hall_agent.contract.config import Config

    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return
    for model in (Config, Catalog):
        with contextlib.suppress(ValidationError):
            model.model_validate(doc)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "escpos": _escpos, "rs485": _rs485, "onbon": _onbon, "sam": _sam, "mqtt": _mqtt,
    "config": _config}


def run_one(name: str, seconds: int) -> int:
    import atheris

    target = TARGETS[name]
    with atheris.instrument_imports():
        target(b"")  # import the modules under instrumentation
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    atheris.Setup([sys.argv[0], f"-max_total_time={seconds}", "-print_final_stats=1",
                   f"-artifact_prefix={out}/crash-{name}-"], target)
    atheris.Fuzz()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", choices=sorted(TARGETS))
    ap.add_argument("--seconds", type=int, default=60, help="budget per target")
    a = ap.parse_args()
    if a.target:
        return run_one(a.target, a.seconds)
    print("| target | budget | executions | result |\n|---|---:|---:|---|")
    worst = 0
    for name in TARGETS:
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, __file__, "--target", name, "--seconds",
                            str(a.seconds)], capture_output=True, text=True, cwd=ROOT)
        runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", r.stderr)
        ok = r.returncode == 0
        worst = max(worst, r.returncode)
        print(f"| {name} | {time.monotonic() - t0:.0f} s | {runs.group(1) if runs else '?'} | "
              f"{'no crash' if ok else 'CRASH (see bench/out/crash-' + name + '-*)'} |")
        if not ok:
            print(r.stderr[-3000:], file=sys.stderr)
    return worst


if __name__ == "__main__":
    raise SystemExit(main())
