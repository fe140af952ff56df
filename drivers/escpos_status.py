"""DLE EOT, the host's side: what the printer's one-byte status answers mean.

Pure, no I/O (drivers/escpos_codec.py builds the queries). Every constant follows
docs/protocols/PRINTER.md "Status (DLE EOT)" (★).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from drivers.types import DeviceHealth, Health

# PRINTER.md "Status (DLE EOT)": every answer matches 0xx1xx10.
STATUS_FIXED_MASK: Final = 0b1001_0011
STATUS_FIXED_BITS: Final = 0b0001_0010

StatusFlag = Literal["offline", "cover_open", "paper_end", "paper_near_end", "error",
                     "cutter_error", "unrecoverable"]

# PRINTER.md "Status (DLE EOT)": (query n, bit mask) → flag.
STATUS_BITS: Final[Mapping[int, tuple[tuple[int, StatusFlag], ...]]] = {
    1: ((0x08, "offline"),),
    2: ((0x04, "cover_open"), (0x20, "paper_end"), (0x40, "error")),
    3: ((0x08, "cutter_error"), (0x20, "unrecoverable")),
    4: ((0x0C, "paper_near_end"), (0x60, "paper_end")),
}


def is_status_reply(byte: int) -> bool:
    """True if ``byte`` has the fixed bits ``0xx1xx10`` of every DLE EOT answer."""
    return (byte & STATUS_FIXED_MASK) == STATUS_FIXED_BITS


def parse_status(query_n: int, byte: int) -> dict[StatusFlag, bool] | None:
    """Flags answered by ``10 04 query_n``; None if ``byte`` is not an answer at all.

    Either bit of a two-bit group (``0x0C``, ``0x60``) counts: printers set one
    or both depending on which sensors they have.
    """
    if query_n not in STATUS_BITS:
        raise ValueError(f"DLE EOT n={query_n} is not a status query this driver knows")
    if not 0 <= byte <= 255 or not is_status_reply(byte):
        return None
    return {flag: bool(byte & mask) for mask, flag in STATUS_BITS[query_n]}


# Person-readable reasons, the likeliest cause first: the English says what to do,
# the Chinese is for hall staff who read the kiosk's status page.
_FAULTS: Final[tuple[tuple[str, str], ...]] = (
    ("paper_end", "paper end — load a new roll（缺纸，请装入新纸卷）"),
    ("cover_open", "cover open — close the printer cover（纸仓盖未关）"),
    ("cutter_error", "cutter error — open the cover and clear the paper at the cutter"
                     "（切刀故障，请清除卡纸）"),
    ("unrecoverable", "unrecoverable error — switch the printer off and on; call service if "
                      "it stays（严重故障）"),
    ("error", "printer error — open and close the cover, or switch it off and on（打印机故障）"),
    ("offline", "offline — check the printer's power and its feed/online button（打印机离线）"),
)
#: A flag that a real printer also raises as a consequence of another: while the
#: cover is open or the paper is out it goes offline (DLE EOT 1 bit 3), and a
#: cutter jam or an unrecoverable error also sets the generic error bit (DLE EOT 2
#: bit 6). Said once, as its cause; "offline — check the power" would send staff
#: to the wrong place.
_EXPLAINED_BY: Final[Mapping[str, tuple[str, ...]]] = {
    "offline": ("paper_end", "cover_open", "cutter_error", "unrecoverable", "error"),
    "error": ("cutter_error", "unrecoverable"),
}
UNCONFIRMED_DETAIL: Final = ("status answers did not agree (line noise?) — check the printer's "
                             "cable; not printed to be safe（打印机状态无法确认，请检查数据线）")
NEAR_END_DETAIL: Final = "paper near end — change the roll soon（纸将用尽，请及时换纸）"


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """What the printer said (or did not say) to DLE EOT, and what it means."""

    offline: bool = False
    cover_open: bool = False
    paper_end: bool = False
    paper_near_end: bool = False
    error: bool = False
    cutter_error: bool = False
    unrecoverable: bool = False
    no_reply: bool = False
    no_status_channel: bool = False  # transport "file": nothing can answer
    unconfirmed: bool = False  # answers disagreed (noise): not trusted either way
    problem: str = ""  # a transport problem, already worded for people
    replies: Mapping[int, int] = field(default_factory=dict)  # query n → answer byte

    @classmethod
    def from_replies(cls, replies: Mapping[int, int | None], *,
                     unconfirmed: bool = False) -> PrinterStatus:
        """Combine the answers to several queries; a None answer means "no reply".

        ``unconfirmed``: a query whose answers disagreed; the status is a fault
        whatever the answers say (PRINTER.md: never a false "printed").
        """
        flags: dict[str, bool] = {}
        got: dict[int, int] = {}
        no_reply = False
        for n, byte in replies.items():
            parsed = None if byte is None else parse_status(n, byte)
            if parsed is None:
                no_reply = True
                continue
            assert byte is not None
            got[n] = byte
            for k, v in parsed.items():
                flags[k] = flags.get(k, False) or v
        return cls(
            offline=flags.get("offline", False), cover_open=flags.get("cover_open", False),
            paper_end=flags.get("paper_end", False),
            paper_near_end=flags.get("paper_near_end", False), error=flags.get("error", False),
            cutter_error=flags.get("cutter_error", False),
            unrecoverable=flags.get("unrecoverable", False), no_reply=no_reply, replies=got,
            unconfirmed=unconfirmed)

    @property
    def reasons(self) -> list[str]:
        """What is wrong, each cause once (:data:`_EXPLAINED_BY`)."""
        on = {flag for flag, _ in _FAULTS if getattr(self, flag)}
        return [text for flag, text in _FAULTS if flag in on
                and not on.intersection(_EXPLAINED_BY.get(flag, ()))]

    def health(self, *, timeout_ms: int = 500) -> DeviceHealth:
        if self.problem:
            return DeviceHealth(Health.FAULT, self.problem)
        if self.no_reply:
            return DeviceHealth(Health.FAULT, f"no reply to a status query within {timeout_ms} "
                                              "ms — check the printer's power and cable"
                                              "（打印机无应答）")
        reasons = self.reasons
        if reasons:
            return DeviceHealth(Health.FAULT, "; ".join(reasons))
        if self.unconfirmed:
            return DeviceHealth(Health.FAULT, UNCONFIRMED_DETAIL)
        if self.paper_near_end:
            return DeviceHealth(Health.DEGRADED, NEAR_END_DETAIL)
        if self.no_status_channel:
            return DeviceHealth(Health.OK, "no status channel (file)")
        return DeviceHealth(Health.OK, "")
