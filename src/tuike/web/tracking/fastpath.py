"""The click fast path: GET/HEAD /c/{code} straight to the click handler.

Clicks are the one path every visitor of every affiliate touches. Going through FastAPI's
routing, dependency solving and exception middlewares cost about half of each click's
time on the event loop; this layer skips them and calls the same handler.
"""

from __future__ import annotations

import logging

from starlette.types import Receive, Scope, Send

from tuike.web.state import AppState
from tuike.web.tracking.clicks import handle_click, hit_from_scope, page, send_answer

log = logging.getLogger("tuike.tracking")


def is_click(scope: Scope) -> bool:
    """Tell whether an ASGI request is a click (GET or HEAD /c/{code})."""
    path = scope.get("path", "")
    return (
        scope["type"] == "http"
        and path.startswith("/c/")
        and scope["method"] in ("GET", "HEAD")
        and "/" not in path[3:]
    )


async def serve_click(scope: Scope, receive: Receive, send: Send, state: AppState) -> None:
    """Answer a click with the tracker's handler, outside every middleware."""
    try:
        hit = hit_from_scope(scope, state.settings.country_header)
        answer = await handle_click(scope["path"][3:], hit, state)
    except Exception:
        log.exception("click failed")
        answer = page(500, "Error", "Something went wrong; please try again.")
    await send_answer(send, answer, head=scope["method"] == "HEAD")
