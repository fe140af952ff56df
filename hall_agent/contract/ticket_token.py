"""The token of a ticket's live page (``/t/{token}``, DESIGN.md "★ hall-central").

The agent prints it in the ticket's QR code (``[hall] status_url`` with ``{token}``)
without asking anyone, so it works for offline-numbered tickets too; hall-central
derives the same token from the ticket it learns about and so finds the ticket again.
Both hold the hall's secret (the agents' ``[hall] secret_file``, hall-central's
``[central] secret_file``: the same file).

The token is an HMAC-SHA256 of the ticket's id and its day under that secret,
truncated to 128 bits: it is not the number nor a sequence, it cannot be computed
without the secret, one ticket's token says nothing of another's, and a token is
tied to the day its ticket was taken (hall-central answers it only on that day).
The message starts with a label of its own, so it never equals an ID number's
``id_hash`` input (hall_agent/core/personal.py) under the same secret.

This module imports nothing of the project: the agent and hall-central both use it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

LABEL = b"hall-edge ticket page v1\x00"
TOKEN_BYTES = 16
# 16 bytes in base64url without padding: 22 characters of A-Z a-z 0-9 - _
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")


def ticket_token(secret: bytes, ticket_id: str, day: str) -> str:
    """The token of one ticket: ``day`` is its hall-local day (``2026-11-30``)."""
    msg = LABEL + day.encode("ascii") + b"\x00" + ticket_id.encode("ascii")
    mac = hmac.new(secret, msg, hashlib.sha256).digest()[:TOKEN_BYTES]
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def well_formed(token: str) -> bool:
    """A string that could be a token (checked before any lookup)."""
    return bool(TOKEN_RE.match(token))
