"""A storage fault for a real agent process: a card that fills up (a tmpfs mounted over
its data_dir, needs root)."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path


def fill_up(where: Path) -> Path:
    """Take every free byte under ``where`` (a file named ``filler``, returned)."""
    filler = where / "filler"
    # Unbuffered, and the suppress outside the file: a buffered file's close would
    # flush the last partial block into the full card and raise ENOSPC again.
    with contextlib.suppress(OSError), filler.open("wb", buffering=0) as f:
        while True:
            f.write(b"\0" * 65536)
    return filler


class FullCard:
    """A small tmpfs over ``where``; :meth:`fill` takes every free byte, :meth:`free`
    gives them back. :meth:`mount` says why not when it cannot (not root, no tmpfs)."""

    def __init__(self, where: Path, size: str = "96m") -> None:
        self.where = where
        self.size = size
        self.mounted = False

    def mount(self) -> str:
        self.where.mkdir(parents=True, exist_ok=True)
        try:
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size}", "tmpfs",
                                str(self.where)], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as e:
            return str(e)
        if r.returncode != 0:
            return r.stderr.strip() or f"mount exited {r.returncode}"
        self.mounted = True
        return ""

    def fill(self) -> None:
        fill_up(self.where)

    def free(self) -> None:
        (self.where / "filler").unlink(missing_ok=True)

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.where)], capture_output=True, timeout=30)
            self.mounted = False
