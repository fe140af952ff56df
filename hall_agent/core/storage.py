"""What the SD card did to the store: full, read-only, failing — said once, with what to do.

An SD card fills up (the WAV fallback of the voice, a log storm), tears on power loss,
or goes read-only (ext4 ``errors=remount-ro`` after a write error). The store keeps
serving what it can read; every write answers :class:`StorageFault` (a refusal the API
gives as ``503``, which the kiosk shows as out of service with the reason), health shows
``storage: fault`` with the cause, and the first write that succeeds again clears it.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from dataclasses import dataclass

from hall_agent.core.refusal import Refused, Why


@dataclass(frozen=True, slots=True)
class Cause:
    code: str  # storage_full | storage_readonly | storage_io
    zh: str
    en: str


FULL = Cause("storage_full", "存储卡已满，暂停取号；请联系工作人员清理空间（hallctl doctor）",
             "disk full: the storage card has no space left, ticketing is paused; free some "
             "space (hallctl doctor)")
READONLY = Cause("storage_readonly", "存储卡变为只读（可能已损坏），暂停取号；请联系工作人员"
                 "检查或更换存储卡（hallctl doctor）",
                 "read-only disk: the storage card went read-only (probably failing), "
                 "ticketing is paused; check or replace the card (hallctl doctor)")
IO = Cause("storage_io", "存储卡读写出错，暂停取号；请联系工作人员检查存储卡（hallctl doctor）",
           "disk I/O error: the storage card fails to read or write, ticketing is "
           "paused; check or replace the card (hallctl doctor)")

_BY_SQLITE = {sqlite3.SQLITE_FULL: FULL, sqlite3.SQLITE_READONLY: READONLY,
              sqlite3.SQLITE_IOERR: IO}
_BY_ERRNO = {errno.ENOSPC: FULL, errno.EDQUOT: FULL, errno.EROFS: READONLY, errno.EIO: IO}


def cause_of(e: BaseException) -> Cause | None:
    """The storage condition behind a SQLite or OS error; None for anything else."""
    if isinstance(e, sqlite3.Error):
        code = getattr(e, "sqlite_errorcode", None)
        if code is not None and (code & 0xFF) in _BY_SQLITE:
            return _BY_SQLITE[code & 0xFF]
        text = str(e).lower()
        if "disk is full" in text:
            return FULL
        if "readonly" in text or "read-only" in text:
            return READONLY
        if "disk i/o error" in text:
            return IO
        return None
    if isinstance(e, OSError):
        return _BY_ERRNO.get(e.errno or 0)
    return None


def refine(cause: Cause, where: str) -> Cause:
    """ext4 forced read-only (``errors=remount-ro``) answers writes with EIO: say
    read-only when the file system says so."""
    if cause is IO:
        probe = os.path.join(where, ".write-probe")
        try:
            os.close(os.open(probe, os.O_CREAT | os.O_WRONLY, 0o600))
            os.unlink(probe)
        except OSError as e:
            if e.errno == errno.EROFS:
                return READONLY
    return cause


FREE_AGAIN_BYTES = 1 << 20  # a full card is said to be full until this much is free


def still_full(cause: Cause, where: str) -> bool:
    """A write went through, but a card that was full stays "full" until it has room:
    SQLite reuses a few freed pages, and health must not flap with every ticket."""
    if cause is not FULL:
        return False
    try:
        st = os.statvfs(where)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < FREE_AGAIN_BYTES


def start_error(data_dir: str, e: OSError) -> str:
    """What ``hall-agent`` says when it cannot start for the card's sake (or why else)."""
    cause = cause_of(e)
    if cause is None:
        return str(e)
    return f"data_dir {data_dir}: {cause.en} ({e}) — {cause.zh}"


class StorageFault(Refused):
    """A write the store could not make because of the card (``cause``)."""

    def __init__(self, cause: Cause, detail: str = "") -> None:
        super().__init__(cause.zh, code=cause.code, field=None, why=Why.UNAVAILABLE,
                         en=cause.en)
        self.cause = cause
        self.detail = detail
