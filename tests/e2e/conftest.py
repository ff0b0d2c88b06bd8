"""End-to-end fixtures: the real `tuike serve` as a subprocess on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tuike.storage.db import Database

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running tuike server and how to reach it."""

    base_url: str
    env: dict[str, str]

    def cli(self, *args: str) -> str:
        """Run the `tuike` command against the server's database and return its output."""
        done = subprocess.run(
            [str(BIN / "tuike"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr + done.stdout
        return done.stdout


@pytest.fixture
def server(db: Database, tmp_path: Path) -> Iterator[Server]:
    """Start `tuike serve` on the test database and stop it after the test."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "TUIKE_DATABASE_URL": db.url,
        "TUIKE_APPROVE_INTERVAL_SECONDS": "0",
        "TUIKE_PUBLIC_URL": base,
    }
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "tuike"), "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp_path / "server.log").read_text())
            time.sleep(0.1)
        yield Server(base_url=base, env=env)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
