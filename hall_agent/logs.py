"""Logging: structured lines for journald, a rotated file log, raw device traffic, export.

- Under systemd (``JOURNAL_STREAM`` names our stderr) each record is one line
  ``<prio>level=warning logger=hall_agent msg="device printer: fault — …"``: the
  ``<prio>`` prefix lets journald file it at the right priority (``journalctl -p
  warning``), and key=value stays readable by people and by ``grep``. Elsewhere
  lines start with a timestamp, for a terminal. ``HALL_EDGE_LOG_FORMAT=json|kv|text``
  overrides the choice.
- ``data_dir/logs/agent.log`` keeps the same records, rotated (5 × 2 MB), so a
  support export works on a Pi whose journal is volatile.
- Raw traffic per device (``>>>`` sent, ``<<<`` received) is :mod:`drivers.traffic`:
  off until a technician switches it on, rotated; never for the ID-card reader.
- :func:`export_logs` writes the support tarball with personal data left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tarfile

import contextlib
import io
import json
import logging
import logging.handlers
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from drivers.traffic import LOG_DIR
from drivers.traffic import NO_RAW_TRAFFIC as NO_RAW_TRAFFIC  # the API checks it here

AGENT_LOG = "agent.log"
AGENT_LOG_BYTES, AGENT_LOG_BACKUPS = 2_000_000, 5
LOGGERS = ("hall_agent", "drivers")
LEVELS = ("debug", "info", "warning", "error")

# syslog priorities for journald's "<N>" line prefix (sd-daemon(3)).
_PRIO = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
         logging.CRITICAL: 2}


def under_journald(environ: dict[str, str] | None = None, fd: int = 2) -> bool:
    """True when ``fd`` is the journal stream systemd gave us (systemd.exec(5))."""
    env = os.environ if environ is None else environ
    spec = env.get("JOURNAL_STREAM", "")
    if ":" not in spec:
        return False
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return spec == f"{st.st_dev}:{st.st_ino}"


def _kv_value(v: object) -> str:
    s = str(v)
    if s and not any(c in s for c in ' "=\n\t\\'):
        return s
    return json.dumps(s, ensure_ascii=False)


# The hall's time zone ([hall] timezone): a log line's time is the hall's clock with its
# offset, whatever the machine's own zone (often UTC on a Pi).
_HALL_TZ: tzinfo = ZoneInfo("Asia/Shanghai")


def set_timezone(tz: tzinfo) -> None:
    global _HALL_TZ
    _HALL_TZ = tz


def hall_time(record: logging.LogRecord) -> str:
    """``2026-11-30T09:12:03.412+08:00``: the record's time on the hall's clock."""
    return datetime.fromtimestamp(record.created, _HALL_TZ).isoformat(timespec="milliseconds")


class _HallTimeFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord,
                   datefmt: str | None = None) -> str:
        return hall_time(record)


class KeyValueFormatter(logging.Formatter):
    """``level=info logger=hall_agent msg="…"`` (+ ``<prio>`` for journald, + ``ts=``)."""

    def __init__(self, *, journald: bool = False, with_time: bool = True) -> None:
        super().__init__()
        self.journald = journald
        self.with_time = with_time

    def format(self, record: logging.LogRecord) -> str:
        parts = []
        if self.with_time:
            parts.append(f"ts={hall_time(record)}")
        parts += [f"level={record.levelname.lower()}", f"logger={record.name}",
                  f"msg={_kv_value(record.getMessage())}"]
        for key in ("device", "ticket"):
            if hasattr(record, key):
                parts.append(f"{key}={_kv_value(getattr(record, key))}")
        if record.exc_info:
            parts.append(f"exc={_kv_value(self.formatException(record.exc_info))}")
        line = " ".join(parts)
        if self.journald:
            return f"<{_PRIO.get(record.levelno, 6)}>{line}"
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": hall_time(record),
            "level": record.levelname.lower(), "logger": record.name,
            "msg": record.getMessage()}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

REPEATS_PER_MINUTE = 5  # the same line (logger, level, message template) per minute


class RepeatLimit(logging.Filter):
    """At most :data:`REPEATS_PER_MINUTE` of one line a minute: a fault that repeats at
    every accept() or every write ("socket.accept() out of system resource" overwrote
    10 MB of rotated logs in 10 s) must not push out everything said before it. The next
    line let through after a quiet spell says how many were left out."""

    def __init__(self, per_minute: int = REPEATS_PER_MINUTE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.per_minute = per_minute
        self.clock = clock
        self._seen: dict[tuple[str, int, str], list[float]] = {}  # key -> [start, n, left]

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        entry = self._seen.get(key)
        if entry is None or now - entry[0] >= 60:
            left = int(entry[2]) if entry is not None else 0
            if len(self._seen) > 1000:
                self._seen.clear()
            self._seen[key] = [now, 1, 0]
            if left:
                record.msg = f"{record.msg} [{left} more like this left out in the last minute]"
            return True
        entry[1] += 1
        if entry[1] <= self.per_minute:
            return True
        entry[2] += 1
        return False


class QuietFileHandler(logging.handlers.RotatingFileHandler):
    """The file log on a full or read-only card: one line on stderr (journald) a minute
    saying so, not a traceback ("--- Logging error ---") for every record."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._said = -1e9

    def handleError(self, record: logging.LogRecord) -> None:
        now = time.monotonic()
        if now - self._said < 60:
            return
        self._said = now
        err = sys.exc_info()[1]
        with contextlib.suppress(Exception):
            sys.stderr.write(f"hall-agent: the file log {self.baseFilename} cannot be "
                             f"written ({err}); journald still gets every line\n")


def make_formatter(kind: str, *, journald: bool = False) -> logging.Formatter:
    if kind == "json":
        return JsonFormatter()
    if kind == "kv":
        return KeyValueFormatter(journald=journald, with_time=not journald)
    return _HallTimeFormatter(TEXT_FORMAT)


def setup(level: str, data_dir: Path | None = None, *,
          environ: dict[str, str] | None = None) -> str:
    """Configure the root logger; returns the stderr format chosen (text, kv or json)."""
    env = os.environ if environ is None else environ
    journald = under_journald(dict(env))
    kind = env.get("HALL_EDGE_LOG_FORMAT", "kv" if journald else "text")
    if kind not in ("text", "kv", "json"):
        kind = "text"
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(make_formatter(kind, journald=journald and kind == "kv"))
    stderr.addFilter(RepeatLimit())  # one per handler: a filter sees each record once
    root.addHandler(stderr)
    if data_dir is not None:
        try:
            (data_dir / LOG_DIR).mkdir(parents=True, exist_ok=True)
            fh = QuietFileHandler(
                data_dir / LOG_DIR / AGENT_LOG, maxBytes=AGENT_LOG_BYTES,
                backupCount=AGENT_LOG_BACKUPS, encoding="utf-8")
            fh.addFilter(RepeatLimit())
        except OSError as e:  # a read-only data_dir is reported by the store, not here
            root.warning("no file log under %s: %s", data_dir, e)
        else:
            fh.setFormatter(KeyValueFormatter())
            root.addHandler(fh)
    root.setLevel(logging.INFO)
    set_level(level)
    return kind


def set_level(level: str) -> None:
    """Change the agent's log level at run time (``hallctl log level debug``)."""
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    lv = getattr(logging, level.upper())
    logging.getLogger().setLevel(min(lv, logging.INFO))
    for name in LOGGERS:
        logging.getLogger(name).setLevel(lv)
    # uvicorn's access log would log every poll of the kiosk; keep it for debugging.
    logging.getLogger("uvicorn.access").setLevel(
        logging.INFO if level == "debug" else logging.WARNING)


def current_level() -> str:
    return logging.getLevelName(logging.getLogger(LOGGERS[0]).getEffectiveLevel()).lower()


# ---------------------------------------------------------------------------- export

#: Personal data that may have slipped into a free-text line: an 18-character
#: resident ID number (GB 11643), a 15-digit first-generation one (still on old cards
#: and in old records), a mainland mobile number. Replaced on export.
_REDACT: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])"), "[id-number removed]"),
    (re.compile(r"(?<![0-9A-Za-z])\d{15}(?![0-9A-Za-z])"), "[id-number removed]"),
    (re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)"), "[phone removed]"),
]
#: Config keys whose values are secrets or point at them: paths are kept, since
#: "which file" helps support, but a key or password itself never leaves the box.
_SECRET_KEYS = re.compile(r"^\s*(password|secret|hmac_key|token)\s*=.*$", re.MULTILINE)


def redact(text: str) -> str:
    for pat, repl in _REDACT:
        text = pat.sub(repl, text)
    return text


def redact_config(text: str) -> str:
    return _SECRET_KEYS.sub(lambda m: f"{m.group(1)} = \"[removed]\"", redact(text))


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import tarfile

    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _run(cmd: list[str], timeout: float = 30) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"({' '.join(cmd)}: {e})\n"
    return r.stdout + (f"\n(stderr) {r.stderr}" if r.returncode and r.stderr else "")


def export_logs(out: Path, *, data_dir: Path, config_path: Path | None,
                extra: dict[str, Any] | None = None, journal_days: int = 7,
                journal: Callable[[int], str] | None = None) -> list[str]:
    """Write the support tarball ``out`` (gzip); returns the names it holds.

    In: the agent's file log and raw-traffic logs (redacted), the journal of the
    hall-edge units, the config (secrets removed), ``extra`` (doctor report,
    health) as JSON, versions. Out, always: the store (tickets are personal
    records), password files, TLS keys, the ID reader's data.
    """
    names: list[str] = []
    root = f"hall-edge-logs-{time.strftime('%Y%m%d-%H%M%S')}"
    out.parent.mkdir(parents=True, exist_ok=True)
    import tarfile  # only for an export: the agent does not keep it loaded

    with tarfile.open(out, "w:gz") as tar:
        def add(name: str, data: bytes) -> None:
            _add(tar, f"{root}/{name}", data)
            names.append(name)

        log_dir = data_dir / LOG_DIR
        candidates = sorted(log_dir.glob("*.log*")) if log_dir.is_dir() else []
        candidates += sorted(data_dir.glob("*traffic*.log*"))  # the RS-485 bus log
        for p in candidates:
            if any(dev in p.name for dev in NO_RAW_TRAFFIC) or not p.is_file():
                continue
            try:
                text = p.read_text(encoding="utf-8", errors="replace")
            except OSError as e:
                text = f"(cannot read {p}: {e})"
            add(f"logs/{p.name}", redact(text).encode())
        if config_path is not None and config_path.is_file():
            with contextlib.suppress(OSError):
                add("config/agent.toml",
                    redact_config(config_path.read_text(encoding="utf-8")).encode())
        get_journal = journal or (lambda days: _run(
            ["journalctl", "--no-pager", "-o", "short-iso", "--since", f"-{days}d",
             "-u", "hall-agent", "-u", "hall-kiosk", "--user-unit", "hall-kiosk"]))
        add("journal.txt", redact(get_journal(journal_days)).encode())
        versions = {"python": sys.version, "uname": " ".join(os.uname())}
        with contextlib.suppress(OSError):
            versions["os_release"] = Path("/etc/os-release").read_text()
        from hall_agent import __version__
        versions["hall_edge"] = __version__
        add("versions.json", json.dumps(versions, ensure_ascii=False, indent=2).encode())
        for key, value in (extra or {}).items():
            add(f"{key}.json",
                redact(json.dumps(value, ensure_ascii=False, indent=2)).encode())
    os.chmod(out, 0o600)
    return names
