"""A real HTTP server on 127.0.0.1 that records the requests it gets (postback target)."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One request the receiver got."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Receiver:
    """The server's address, what it answers, and what it received."""

    port: int
    scheme: str = "http"
    status: int = 200
    body: bytes = b"OK"
    headers: dict[str, str] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)

    def url(self, path: str = "/pb", host: str = "127.0.0.1") -> str:
        """Return an absolute URL of the receiver."""
        return f"{self.scheme}://{host}:{self.port}{path}"


@contextmanager
def receiver(ssl_context: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    """Run a receiver in a thread for the duration of the block."""
    state: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            r: Receiver = state["r"]
            r.requests.append(Received("GET", self.path, dict(self.headers.items())))
            self.send_response(r.status)
            for name, value in r.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(r.body)))
            self.end_headers()
            self.wfile.write(r.body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if ssl_context is not None:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
    state["r"] = Receiver(port=server.server_address[1], scheme="https" if ssl_context else "http")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["r"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
