"""End-to-end fixtures: the real `tuike serve` as a subprocess on a free port."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from factories.server import BIN, free_port, start_server, stop_server
from tuike.storage.db import Database


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
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "TUIKE_DATABASE_URL": db.url,
        "TUIKE_APPROVE_INTERVAL_SECONDS": "0",
        "TUIKE_PUBLIC_URL": base,
    }
    proc = start_server(db.url, port, tmp_path / "server.log", TUIKE_PUBLIC_URL=base)
    try:
        yield Server(base_url=base, env=env)
    finally:
        stop_server(proc)
