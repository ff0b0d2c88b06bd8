"""The ASGI application: tracker, REST API and portals in one process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from tuike import __version__
from tuike.config import Settings, get_settings
from tuike.storage.db import Database
from tuike.web.api.v1.router import router as api_router
from tuike.web.errors import install_error_handlers
from tuike.web.portals import rendering as portal_rendering
from tuike.web.portals.routes import router as portals_router
from tuike.web.state import AppState
from tuike.web.tracking.fastpath import is_click, serve_click
from tuike.web.tracking.routes import router as tracking_router
from tuike.workers import approvals, postbacks, quality, retention


class TuikeApp(FastAPI):
    """The FastAPI application, with clicks answered before any middleware runs."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_click(scope):
            await serve_click(scope, receive, send, self.state.tuike)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, db: Database | None = None) -> FastAPI:
    """Build the application for a settings object (read from the environment if None)."""
    settings = settings or get_settings()
    state = AppState.build(settings, db)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.writer.start()
        await asyncio.to_thread(state.links.refresh)  # loads the links before the first click
        if db is None:
            # A server process: what is loaded by now (modules, templates, links, crawler
            # lists, networks; ~130,000 objects) lives as long as the process. Freeze it out
            # of the garbage collector's reach, so that a full collection walks only what
            # requests leave behind instead of pausing the clicks for ~100 ms. (Not for an
            # app built around a given database, as tests do many times in one process.)
            gc.collect()
            gc.freeze()
        tasks = []
        if settings.approve_interval_seconds > 0:
            tasks.append(
                asyncio.create_task(
                    approvals.run_periodically(state.db, settings.approve_interval_seconds)
                )
            )
        if settings.postback_interval_seconds > 0:
            tasks.append(
                asyncio.create_task(
                    postbacks.run_periodically(
                        state.db, settings, settings.postback_interval_seconds
                    )
                )
            )
        if settings.fraud_quality_interval_seconds > 0:
            tasks.append(
                asyncio.create_task(
                    quality.run_periodically(
                        state.db, settings, settings.fraud_quality_interval_seconds
                    )
                )
            )
        if settings.retention_interval_seconds > 0:
            tasks.append(
                asyncio.create_task(
                    retention.run_periodically(
                        state.db, settings, settings.retention_interval_seconds
                    )
                )
            )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            # Write the clicks still queued before the process goes.
            await asyncio.to_thread(state.writer.stop)
            if db is None:
                state.db.dispose()

    app = TuikeApp(
        title="tuike",
        version=__version__,
        description="Open-source affiliate marketing platform: tracking, attribution, "
        "commissions and reports. Money is a decimal string.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.tuike = state
    install_error_handlers(app)
    app.include_router(tracking_router)
    app.include_router(api_router)
    app.include_router(portals_router)
    portal_rendering.install(app)
    return app


def create_server_app() -> ASGIApp:
    """The application as `tuike serve` runs it: behind the trusted reverse proxies.

    The visitor's address (``scope["client"]``) and scheme come from X-Forwarded-For and
    X-Forwarded-Proto when, and only when, the peer is one of TUIKE_FORWARDED_ALLOW_IPS,
    whichever ASGI server runs the app.
    """
    settings = get_settings()
    return ProxyHeadersMiddleware(create_app(settings), trusted_hosts=settings.forwarded_allow_ips)
