"""What the running application holds: settings, database, caches."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from fastapi import Request

from tuike.config import Settings
from tuike.services.click_quality import ClickChecks
from tuike.services.click_writer import ClickWriter
from tuike.services.clicks import LinkCache, UniqueFilter
from tuike.services.platform import SettingsCache
from tuike.storage.db import Database


@dataclass
class AppState:
    """Process-wide objects shared by the routes."""

    settings: Settings
    db: Database
    links: LinkCache
    uniques: UniqueFilter
    # The click-time fraud rules and their in-memory windows (docs/fraud-rules.md).
    checks: ClickChecks
    writer: ClickWriter
    # The operator's run-time settings (sign-up switches, platform name …), read by pages.
    platform: SettingsCache
    # Figures pages may show a little stale (the marketplace's network EPC), by key.
    cache: dict[str, tuple[float, object]] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, db: Database | None = None) -> AppState:
        """Create the state for a settings object."""
        db = db or Database(settings.database_url, echo=settings.database_echo)
        return cls(
            settings=settings,
            db=db,
            links=LinkCache(db),
            uniques=UniqueFilter(
                window=timedelta(hours=settings.unique_window_hours),
                max_entries=settings.unique_cache_size,
            ),
            checks=ClickChecks.from_settings(settings),
            writer=ClickWriter(
                db,
                max_delay=settings.writer_max_delay_ms / 1000,
                max_batch=settings.writer_max_batch,
                limit=settings.writer_queue_limit,
                separate_process=settings.writer_process,
            ),
            platform=SettingsCache(db),
        )


def get_state(request: Request) -> AppState:
    """Return the application state of a request."""
    return request.app.state.tuike
