"""Idempotency-Key on every POST: a repeat with the same key and body gets the first answer.

The key is reserved before the request runs (a row with status 0), so concurrent repeats
never run twice: they get 409 while the first is in progress and its answer afterwards.
Error answers are not kept: the reservation is released and the request may be retried.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy import delete, select, update
from starlette.concurrency import run_in_threadpool

from tuike.services.clock import utcnow
from tuike.services.keys import authenticate
from tuike.storage import tables as t
from tuike.storage.db import Database, insert_for
from tuike.web.errors import error_response

HEADER = "Idempotency-Key"
IN_PROGRESS = 0
_k = t.idempotency_keys.c


class _Keys:
    """The stored keys of one caller."""

    def __init__(self, db: Database, principal: str, key: str) -> None:
        self.db, self.principal, self.key = db, principal, key

    def _where(self) -> tuple[Any, ...]:
        return (_k.principal == self.principal, _k.key == self.key)

    def reserve(self, digest: str) -> Any:
        """Reserve the key; return the row already there (None if the key is ours now)."""
        with self.db.write() as conn:
            stmt = insert_for(conn, t.idempotency_keys).values(
                principal=self.principal,
                key=self.key,
                request_hash=digest,
                status_code=IN_PROGRESS,
                response_body="",
                created_at=utcnow(),
            )
            mine = conn.execute(stmt.on_conflict_do_nothing().returning(_k.id)).first()
            if mine is not None:
                return None
            return conn.execute(select(t.idempotency_keys).where(*self._where())).first()

    def keep(self, status: int, body: str) -> None:
        """Store the answer of the request that holds the reservation."""
        with self.db.write() as conn:
            conn.execute(
                update(t.idempotency_keys)
                .where(*self._where())
                .values(status_code=status, response_body=body)
            )

    def release(self) -> None:
        """Drop the reservation (the request failed; a retry may run)."""
        with self.db.write() as conn:
            conn.execute(
                delete(t.idempotency_keys).where(*self._where(), _k.status_code == IN_PROGRESS)
            )


class IdempotentRoute(APIRoute):
    """An API route that replays the stored answer of a repeated Idempotency-Key."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            key = request.headers.get(HEADER)
            if request.method != "POST" or not key:
                return await handler(request)
            if len(key) > 255:
                return error_response(400, "must be at most 255 characters", HEADER)
            auth = request.headers.get("authorization", "")
            db: Database = request.app.state.tuike.db

            def authorized() -> bool:
                scheme, _, token = auth.partition(" ")
                with db.read() as conn:
                    return (
                        scheme.lower() == "bearer" and authenticate(conn, token.strip()) is not None
                    )

            if not await run_in_threadpool(authorized):
                # A bad or revoked key gets its 401 from the route, never a replay.
                return await handler(request)
            principal = hashlib.sha256(auth.encode()).hexdigest()[:64]
            body = await request.body()
            digest = hashlib.sha256(request.url.path.encode() + b"\0" + body).hexdigest()
            keys = _Keys(db, principal, key)
            stored = await run_in_threadpool(keys.reserve, digest)
            if stored is not None:
                if stored.request_hash != digest:
                    return error_response(
                        422, "Idempotency-Key was used with a different request", HEADER
                    )
                if stored.status_code == IN_PROGRESS:
                    return error_response(
                        409, "a request with this Idempotency-Key is in progress; retry", HEADER
                    )
                replay = JSONResponse(
                    json.loads(stored.response_body), status_code=stored.status_code
                )
                replay.headers["Idempotent-Replayed"] = "true"
                return replay
            try:
                response = await handler(request)
            except BaseException:
                await run_in_threadpool(keys.release)
                raise
            # FastAPI serializes response models into a plain Response, not a JSONResponse.
            is_json = response.headers.get("content-type", "").startswith("application/json")
            if response.status_code < 400 and is_json and hasattr(response, "body"):
                await run_in_threadpool(
                    keys.keep, response.status_code, bytes(response.body).decode()
                )
            else:
                await run_in_threadpool(keys.release)
            return response

        return route
