"""Personal data (DESIGN.md "Personal data"): the per-hall secret, the HMAC, the masks.

What is kept or sent about a person is only:

- ``id_hash``: HMAC-SHA256 of the ID number under the hall's secret, hex. The same
  person gets the same hash on every kiosk of the hall that shares the secret file,
  and nobody without that file can test a guessed number against it;
- masked forms for display: ``3501**********1238`` and ``张*``.

The secret lives in a root-only file (``[hall] secret_file``, default
``data_dir/hall.secret``), created with mode 0600 if absent.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from drivers.errors import ConfigError

# The masks live with the lowest layer (the ID-card codec uses them); re-exported here.
from drivers.personal import mask_id as mask_id
from drivers.personal import mask_name as mask_name
from drivers.personal import normalise_id as normalise_id

log = logging.getLogger("hall_agent.core.personal")

SECRET_NAME = "hall.secret"
SECRET_BYTES = 32


def secret_path(secret_file: str, data_dir: str) -> Path:
    return Path(secret_file) if secret_file else Path(data_dir) / SECRET_NAME


def load_secret(path: Path) -> bytes:
    """The hall's secret; created (0600) if absent, tightened to 0600 if it was looser."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as e:
        raise ConfigError(f"[hall] secret_file {path}: cannot create it ({e.strerror}); the "
                          "agent's user needs write access to its directory") from None
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(SECRET_BYTES) + "\n")
        log.info("created the hall secret %s (mode 0600); copy it to every kiosk of the hall",
                 path)
    try:
        st = path.stat()
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("hall secret %s was readable by others (mode %o); set to 0600", path,
                        stat.S_IMODE(st.st_mode))
            path.chmod(0o600)
        raw = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ConfigError(f"[hall] secret_file {path}: cannot read it ({e.strerror}); the "
                          "agent's user needs read access") from None
    if len(raw) < 32:
        raise ConfigError(f"[hall] secret_file {path}: too short ({len(raw)} characters); "
                          "put at least 32 random characters in it, e.g. "
                          "`openssl rand -hex 32`")
    return raw.encode("utf-8")


def id_hash(secret: bytes, number: str) -> str:
    """HMAC-SHA256 of the (normalised) ID number, hex: the only form that is stored."""
    return hmac.new(secret, normalise_id(number).encode("ascii", "replace"),
                    hashlib.sha256).hexdigest()




@dataclass(frozen=True, slots=True)
class Person:
    """Who a card says someone is, for one flow.

    ``id_number`` and ``name`` are in clear, in memory only while the flow lasts
    (a self-service back end may need them); they never appear in ``repr`` and
    must never be logged, stored or sent. Everything else is safe to keep.
    """

    id_hash: str
    masked_id: str
    masked_name: str
    card_type: str
    expired: bool
    id_number: str = field(repr=False, compare=False)
    name: str = field(repr=False, compare=False)
    valid_to: str = ""  # the card's expiry as printed on it (YYYYMMDD, or 长期)

    def public(self) -> dict[str, object]:
        """What may leave the agent (SSE ``card`` events, API answers)."""
        return {"id_hash": self.id_hash, "masked_id": self.masked_id,
                "masked_name": self.masked_name, "card_type": self.card_type,
                "expired": self.expired, "valid_to": self.valid_to}


def person(secret: bytes, *, id_number: str, name: str, card_type: str,
           expired: bool = False, valid_to: str = "") -> Person:
    return Person(id_hash=id_hash(secret, id_number), masked_id=mask_id(id_number),
                  masked_name=mask_name(name), card_type=card_type, expired=expired,
                  id_number=normalise_id(id_number), name=name, valid_to=valid_to)
