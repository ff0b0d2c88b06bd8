"""The real `tuike serve` as a subprocess, for end-to-end and crash tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    """Return a TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, port: int, log: Path, **env: str) -> subprocess.Popen:
    """Start `tuike serve` on a database and port; return once /healthz answers."""
    environ = {
        **os.environ,
        "TUIKE_DATABASE_URL": url,
        "TUIKE_APPROVE_INTERVAL_SECONDS": "0",
        **env,
    }
    proc = subprocess.Popen(
        [str(BIN / "tuike"), "serve", "--port", str(port)],
        env=environ,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(log.read_text())
