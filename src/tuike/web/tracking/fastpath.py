"""A thin ASGI layer that hands GET/HEAD /c/{code} straight to the click handler.

Clicks are the one path every visitor of every affiliate touches. Going through FastAPI's
routing, dependency solving and exception middlewares cost about half of each click's
time on the event loop; this layer skips them and calls the same handler.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from tuike.web.state import AppState
from tuike.web.tracking.routes import click, html_page

log = logging.getLogger("tuike.tracking")


class ClickFastPath:
    """Serve clicks directly; pass everything else to the wrapped application."""

    def __init__(self, app: ASGIApp, state: AppState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] == "http"
            and path.startswith("/c/")
            and scope["method"] in ("GET", "HEAD")
            and "/" not in path[3:]
        ):
            try:
                response = await click(path[3:], Request(scope, receive), self.state)
            except Exception:
                log.exception("click failed")
                response = html_page(500, "Error", "Something went wrong; please try again.")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
