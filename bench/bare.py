"""The baseline of the tracker benchmark: an ASGI app that answers a fixed 302."""

from __future__ import annotations

from typing import Any

HEADERS = [
    (b"location", b"https://shop.example.com/?tk_click=01JD3R6Z0Q8W5N2K4M7P9T1VXB"),
    (b"cache-control", b"no-store"),
    (b"content-length", b"0"),
]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer every HTTP request with the same redirect."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 302, "headers": HEADERS})
    await send({"type": "http.response.body", "body": b""})
