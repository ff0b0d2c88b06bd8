"""The docs keep up with the code: settings, CLI commands and API routes are documented."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi import FastAPI

from tuike.cli.main import app as cli_app
from tuike.config import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
HTTP_METHODS = ("get", "post", "put", "patch", "delete", "head")
TEST_ONLY_VARS = {"TUIKE_REQUIRE_POSTGRES", "TUIKE_TEST_POSTGRES_URL"}
REFERENCE_LINE = re.compile(r"`(GET|POST|PUT|PATCH|DELETE|HEAD) (/api/v1/[^`\s]*)`")


def _read(name: str) -> str:
    path = DOCS / name
    assert path.is_file(), f"docs/{name} is missing"
    return path.read_text(encoding="utf-8")


def _cli_commands(command: Any, prefix: str = "tuike") -> list[str]:
    """Return every leaf command of the CLI as a command line, e.g. 'tuike keys create'."""
    subcommands = getattr(command, "commands", None)  # a click (or Typer's own click) group
    if isinstance(subcommands, dict):
        out: list[str] = []
        for name, sub in sorted(subcommands.items()):
            out += _cli_commands(sub, f"{prefix} {name}")
        return out
    return [prefix]


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    """Return the application; building it and its schema touches no database."""
    from tuike.web.app import create_app

    return create_app(
        Settings(database_url=f"sqlite:///{tmp_path}/x.db", approve_interval_seconds=0)
    )


@pytest.fixture
def openapi(app: FastAPI) -> dict:
    with warnings.catch_warnings():
        # GET and HEAD /c/{code} share an operation id; FastAPI warns about it.
        warnings.filterwarnings("ignore", "Duplicate Operation ID", UserWarning)
        return app.openapi()


def _api_operations(schema: dict) -> list[str]:
    ops = []
    for path, item in schema["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method in item:
            if method in HTTP_METHODS:
                ops.append(f"{method.upper()} {path}")
    return sorted(ops)


def _api_reference(text: str) -> str:
    match = re.search(r"^## API reference\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, "docs/integration.md has no '## API reference' section"
    return match.group(1)


def test_every_setting_is_documented() -> None:
    text = _read("settings.md")
    missing = [
        f"TUIKE_{name.upper()}"
        for name in Settings.model_fields
        if f"TUIKE_{name.upper()}" not in text
    ]
    assert not missing, f"docs/settings.md does not document {missing}"


def test_settings_doc_names_no_unknown_variable() -> None:
    known = {f"TUIKE_{name.upper()}" for name in Settings.model_fields} | TEST_ONLY_VARS
    named = set(re.findall(r"\bTUIKE_[A-Z0-9_]+\b", _read("settings.md")))
    assert not named - known, f"docs/settings.md names unknown settings {sorted(named - known)}"


def test_test_settings_are_documented() -> None:
    text = _read("settings.md")
    assert "## Test settings" in text
    for name in sorted(TEST_ONLY_VARS):
        assert name in text, f"docs/settings.md does not document {name}"


def test_every_cli_command_is_documented() -> None:
    commands = _cli_commands(typer.main.get_command(cli_app))
    assert "tuike keys create" in commands, commands
    text = _read("operations.md")
    missing = [c for c in commands if not re.search(rf"`{re.escape(c)}[`\s]", text)]
    assert not missing, f"docs/operations.md does not document {missing}"


def test_every_api_route_is_in_the_integration_guide(openapi: dict) -> None:
    text = _read("integration.md")
    operations = _api_operations(openapi)
    assert "POST /api/v1/conversions" in operations
    paths = {op.split(" ", 1)[1] for op in operations}
    missing_paths = sorted(p for p in paths if p not in text)
    assert not missing_paths, f"docs/integration.md does not mention {missing_paths}"
    reference = _api_reference(text)
    missing = [op for op in operations if f"`{op}`" not in reference]
    assert not missing, f"the API reference of docs/integration.md lacks {missing}"


def test_api_reference_lists_only_existing_routes(app: FastAPI, openapi: dict) -> None:
    known = set(_api_operations(openapi)) | {f"GET {app.openapi_url}", f"GET {app.docs_url}"}
    listed = {
        f"{m} {p}" for m, p in REFERENCE_LINE.findall(_api_reference(_read("integration.md")))
    }
    assert listed, "the API reference lists no route"
    stale = sorted(listed - known)
    assert not stale, f"the API reference lists routes that do not exist: {stale}"
