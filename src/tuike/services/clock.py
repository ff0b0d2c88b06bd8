"""The current time, always aware UTC; a replay of traffic may set it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_source: Callable[[], datetime] | None = None


def utcnow() -> datetime:
    """Return the current time in UTC (the replayed time inside ``replaying``)."""
    source = _source
    if source is not None:
        return source()
    return datetime.now(UTC)


@contextmanager
def replaying(source: Callable[[], datetime]) -> Iterator[None]:
    """Make ``utcnow`` answer ``source()`` in this process until the block ends.

    For replays of generated traffic (`tuike fraud eval`): the tracker, the conversion API
    and the rules then see the traffic's own times, a month in a minute. Never in a server.
    """
    global _source
    if _source is not None:
        raise RuntimeError("a replay is already running in this process")
    _source = source
    try:
        yield
    finally:
        _source = None
