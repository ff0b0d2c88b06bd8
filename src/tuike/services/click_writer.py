"""The click writer: clicks committed in groups, each 302 sent after its group commits.

Requests hand their click to one writer thread, which gathers what arrives within
``max_delay`` (or until ``max_batch`` clicks), writes the group and its rollups in one
transaction, and then wakes every request of the group. In ``durable`` mode a request
answers only once its click is committed; in ``fast`` mode it answers at once and a
crash can lose the clicks not yet written (up to one group). The queue is bounded:
past ``limit`` waiting clicks, ``submit`` refuses (the tracker answers 503) instead of
growing memory or acknowledging a click it cannot keep.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from tuike.domain.tracking import ClickRecord
from tuike.services.clicks import record_clicks
from tuike.storage.db import Database

log = logging.getLogger("tuike.clicks.writer")


class Backpressure(Exception):
    """The writer is behind (database slow or down): the click is refused, not kept."""


class WriterClosed(Exception):
    """The writer is shutting down."""


Waiter = asyncio.Future[None]


class ClickWriter:
    """One thread that commits clicks in groups (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        *,
        max_delay: float = 0.002,
        max_batch: int = 2000,
        limit: int = 20_000,
        write: Callable[[Database, list[ClickRecord]], None] | None = None,
    ) -> None:
        self._db = db
        self._max_delay = max_delay
        self._max_batch = max_batch
        self._limit = limit
        self._write = write or _write
        self._items: deque[tuple[ClickRecord, Waiter | None]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.groups = 0
        self.written = 0

    @property
    def pending(self) -> int:
        """Return how many clicks wait for their group."""
        return len(self._items)

    def start(self) -> None:
        """Start the writer thread."""
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="tuike-click-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def submit(self, record: ClickRecord, waiter: Waiter | None = None) -> None:
        """Queue a click; ``waiter`` (if any) is settled when its group has committed.

        Raise Backpressure when the queue is full, WriterClosed when shutting down.
        """
        with self._cond:
            if self._closed or self._thread is None:
                raise WriterClosed("the click writer is not running")
            if len(self._items) >= self._limit:
                raise Backpressure(f"{len(self._items)} clicks wait for the database")
            self._items.append((record, waiter))
            if len(self._items) == 1 or len(self._items) >= self._max_batch:
                self._cond.notify()

    async def record(self, record: ClickRecord) -> None:
        """Queue a click and wait until it is committed (durable mode)."""
        waiter: Waiter = asyncio.get_running_loop().create_future()
        self.submit(record, waiter)
        await waiter

    def _next_group(self) -> list[tuple[ClickRecord, Waiter | None]] | None:
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            if not self._items:
                return None
            deadline = time.monotonic() + self._max_delay
            while len(self._items) < self._max_batch and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            n = min(len(self._items), self._max_batch)
            return [self._items.popleft() for _ in range(n)]

    def _run(self) -> None:
        while True:
            group = self._next_group()
            if group is None:
                return
            error: BaseException | None = None
            try:
                self._write(self._db, [record for record, _ in group])
                self.groups += 1
                self.written += len(group)
            except Exception as exc:  # the database is down or refused: tell every waiter
                log.warning("click group of %d not written: %s", len(group), exc)
                error = exc
            for _, waiter in group:
                if waiter is not None:
                    waiter.get_loop().call_soon_threadsafe(_settle, waiter, error)


def _write(db: Database, records: list[ClickRecord]) -> None:
    with db.write() as conn:
        record_clicks(conn, records)


def _settle(waiter: Waiter, error: BaseException | None) -> None:
    if waiter.done():  # the client went away meanwhile
        return
    if error is None:
        waiter.set_result(None)
    else:
        waiter.set_exception(Backpressure(f"click not stored: {error}"))
