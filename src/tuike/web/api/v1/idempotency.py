"""Idempotency-Key on every POST: a repeat with the same key and body gets the first answer."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from tuike.services.clock import utcnow
from tuike.services.keys import authenticate
from tuike.storage import tables as t
from tuike.storage.db import insert_for
from tuike.web.errors import error_response

HEADER = "Idempotency-Key"


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
            principal = hashlib.sha256(auth.encode()).hexdigest()[:64]
            body = await request.body()
            digest = hashlib.sha256(request.url.path.encode() + b"\0" + body).hexdigest()
            db = request.app.state.tuike.db

            def lookup() -> tuple[str, int, str] | None:
                with db.read() as conn:
                    # A revoked key gets its 401 from the route, never a replay.
                    scheme, _, token = auth.partition(" ")
                    if scheme.lower() != "bearer" or authenticate(conn, token.strip()) is None:
                        return None
                    row = conn.execute(
                        select(t.idempotency_keys).where(
                            t.idempotency_keys.c.principal == principal,
                            t.idempotency_keys.c.key == key,
                        )
                    ).first()
                return (row.request_hash, row.status_code, row.response_body) if row else None

            stored = await run_in_threadpool(lookup)
            if stored is not None:
                if stored[0] != digest:
                    return error_response(
                        422, "Idempotency-Key was used with a different request", HEADER
                    )
                replay = JSONResponse(json.loads(stored[2]), status_code=stored[1])
                replay.headers["Idempotent-Replayed"] = "true"
                return replay
            response = await handler(request)
            # FastAPI serializes response models into a plain Response, not a JSONResponse.
            is_json = response.headers.get("content-type", "").startswith("application/json")
            if response.status_code < 500 and is_json and hasattr(response, "body"):

                def save() -> None:
                    with db.write() as conn:
                        stmt = insert_for(conn, t.idempotency_keys).values(
                            principal=principal,
                            key=key,
                            request_hash=digest,
                            status_code=response.status_code,
                            response_body=bytes(response.body).decode(),
                            created_at=utcnow(),
                        )
                        conn.execute(stmt.on_conflict_do_nothing())

                await run_in_threadpool(save)
            return response

        return route
