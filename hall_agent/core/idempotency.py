"""Repeat-safe writes: a request repeated with the same key gets the first answer.

Every route that changes something takes an ``Idempotency-Key`` (★ local API), and
remote commands use their ``cmd_id`` the same way. The answer is stored in the
same transaction as the change, so after a crash a retry finds either both or
neither.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from hall_agent.core.refusal import Refused, Why
from hall_agent.core.store import Store


@dataclass(frozen=True, slots=True)
class Replay:
    status: int
    body: dict[str, Any]


def request_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False)
                          .encode()).hexdigest()


class Idempotency:
    def __init__(self, store: Store) -> None:
        self.store = store

    def replay(self, key: str | None, route: str, req_hash: str) -> Replay | None:
        """The first answer to ``key`` on ``route``; refused if the key was used for
        a different request."""
        if not key:
            return None
        row = self.store.one("SELECT request_hash, status, body FROM idempotency "
                             "WHERE key = ? AND route = ?", (key, route))
        if row is None:
            return None
        if row["request_hash"] != req_hash:
            raise Refused("Idempotency-Key 已用于另一项不同的请求；请为新操作生成新的键",
                          code="idempotency_key_reused", field="Idempotency-Key",
                          why=Why.CONFLICT,
                          en="this Idempotency-Key was used for a different request; "
                             "make a new key for a new action")
        return Replay(int(row["status"]), json.loads(row["body"]))

    def remember(self, key: str | None, route: str, req_hash: str, status: int,
                 body: dict[str, Any]) -> None:
        if not key:
            return
        with self.store.tx() as db:
            db.execute("INSERT INTO idempotency (key, route, request_hash, status, body, ts) "
                       "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key, route) DO UPDATE SET "
                       "body = excluded.body",
                       (key, route, req_hash, status, json.dumps(body, ensure_ascii=False),
                        time.time()))
