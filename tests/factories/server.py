"""The real `tuike serve` as a subprocess, for end-to-end and crash tests."""

from __future__ import annotations

import contextlib
import os
import signal
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


def start_server(
    url: str, port: int, log: Path, *, server: str = "uvicorn", **env: str
) -> subprocess.Popen:
    """Start `tuike serve` on a database and port; return once /healthz answers.

    The server runs in a session of its own (its pid is the process group's id): the
    server, its worker and writer processes can be killed at once with ``kill_server``.
    """
    environ = {
        **os.environ,
        "TUIKE_DATABASE_URL": url,
        "TUIKE_APPROVE_INTERVAL_SECONDS": "0",
        **env,
    }
    proc = subprocess.Popen(
        [str(BIN / "tuike"), "serve", "--port", str(port), "--server", server],
        env=environ,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    kill_server(proc)
    raise RuntimeError(log.read_text())


def kill_server(proc: subprocess.Popen) -> None:
    """SIGKILL the server and every process it started: no shutdown, no drain."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def stop_server(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Stop the server as a service manager would (SIGTERM), killing it if it hangs."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_server(proc)
    # Nothing it started may outlive it (worker, writer process).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
