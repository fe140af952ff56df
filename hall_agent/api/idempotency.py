"""The one idempotency step of every write route (★ local API: a repeat with the same
``Idempotency-Key`` returns the first answer, and nothing is written twice)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse

from hall_agent.core.idempotency import Idempotency, request_hash
from hall_agent.core.store import Store

IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200,
                                       pattern=r"^[\x21-\x7e]{1,200}$",
                                       description="repeat-safe key, e.g. a uuid4 per flow")]


class Once:
    """Bound to one request: its key and its route (``POST /v1/calls``…)."""

    def __init__(self, idem: Idempotency, store: Store, key: str | None, route: str) -> None:
        self._idem = idem
        self._store = store
        self.key = key
        self.route = route

    def run(self, body: Any, status: int, fn: Callable[[], dict[str, Any]], *,
            atomic: bool = True) -> JSONResponse:
        """Answer a repeat from the store; else run ``fn`` and remember its answer —
        in the same transaction as its change when ``atomic`` (a print is not held
        inside a transaction, so a reprint is remembered after)."""
        rh = request_hash(body)
        with self._store.tx() if atomic else contextlib.nullcontext():
            prior = self._idem.replay(self.key, self.route, rh)
            if prior:
                return JSONResponse(status_code=prior.status, content=prior.body)
            out = fn()
            self._idem.remember(self.key, self.route, rh, status, out)
        return JSONResponse(status_code=status, content=out)

def _once(request: Request, idempotency_key: IdemKey = None) -> Once:
    st = request.app.state  # set by create_app: the agent's idempotency store
    return Once(st.idem, st.store, idempotency_key, f"{request.method} {request.url.path}")


# A write route's parameter: ``once: Idem``, then ``return once.run(body, status, fn)``.
Idem = Annotated[Once, Depends(_once)]
