"""The click writer: clicks committed in groups, each 302 sent after its group commits.

Requests hand their click to one writer thread, which gathers what arrives within
``max_delay`` (or until ``max_batch`` clicks), writes the group and its rollups in one
transaction, and then wakes every request of the group. In ``durable`` mode a request
answers only once its click is committed; in ``fast`` mode it answers at once and a
crash can lose the clicks not yet written (up to one group). The queue is bounded:
past ``limit`` waiting clicks, ``submit`` refuses (the tracker answers 503) instead of
growing memory or acknowledging a click it cannot keep.

The database work of a group can run in this process (``WRITE_IN_THREAD``) or in a
writer process of its own (``WriterProcess``). Writing in a thread costs the event loop
dearly: the database driver lets go of the GIL around every row, and each time the writer
wants it back it waits on, and interrupts, the thread answering clicks. The process gets
a whole group in one message and answers in one, so the GIL changes hands twice per
group instead of a few times per click.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import pickle
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection

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
        separate_process: bool = False,
    ) -> None:
        self._db = db
        self._process = WriterProcess(db.url) if separate_process and write is None else None
        self._max_delay = max_delay
        self._max_batch = max_batch
        self._limit = limit
        self._write = self._process.write if self._process is not None else write or write_in_thread
        self._items: deque[tuple[ClickRecord, Waiter | None]] = deque()
        self._oldest = 0.0  # when the first click still waiting arrived
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.groups = 0
        self.written = 0

    @property
    def pending(self) -> int:
        """Return how many clicks wait for their group."""
        return len(self._items)

    @property
    def lag_seconds(self) -> float:
        """Return how long the oldest waiting click has waited (0 when none waits)."""
        return time.monotonic() - self._oldest if self._items else 0.0

    def start(self) -> None:
        """Start the writer thread (and the writer process, if one is used)."""
        if self._process is not None:
            self._process.start()
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
        if self._process is not None:
            self._process.stop(timeout)

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
            if len(self._items) == 1:
                self._oldest = time.monotonic()
                self._cond.notify()
            elif len(self._items) >= self._max_batch:
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
            # The delay counts from the oldest click's arrival: clicks that gathered while
            # the previous group was committing go at once.
            deadline = self._oldest + self._max_delay
            while len(self._items) < self._max_batch and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            n = min(len(self._items), self._max_batch)
            group = [self._items.popleft() for _ in range(n)]
            if self._items:
                self._oldest = time.monotonic()
            return group

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
            # One wake-up per event loop and group, not one per click.
            by_loop: dict[asyncio.AbstractEventLoop, list[Waiter]] = {}
            for _, waiter in group:
                if waiter is not None:
                    by_loop.setdefault(waiter.get_loop(), []).append(waiter)
            for loop, waiters in by_loop.items():
                # RuntimeError: that loop has closed, nobody waits any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_settle, waiters, error)


def write_in_thread(db: Database, records: list[ClickRecord]) -> None:
    """Write a group of clicks and their rollups in one transaction, in this process."""
    with db.write() as conn:
        record_clicks(conn, records)


class WriterProcess:
    """A process of its own that writes groups of clicks (see the module docstring).

    ``write`` sends a group and waits for the answer; it raises when the group was not
    committed, including when the process died with it (it is started again on the next
    group). The process ignores SIGINT and SIGTERM: a terminal's Ctrl-C or a service
    manager signalling the whole group must not stop it before the server has handed over
    the clicks it holds; it ends when told to, or when the server's end of the pipe closes.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        """Return the writer process's pid (None when not running)."""
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the process (spawned: the server's threads and event loop stay behind)."""
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(theirs, self._url), name="tuike-click-writer", daemon=True
        )
        self._process.start()
        theirs.close()
        self._conn = ours

    def write(self, _db: Database, records: list[ClickRecord]) -> None:
        """Have the process commit a group; raise if it did not."""
        with self._lock:
            if self._conn is None or self._process is None or not self._process.is_alive():
                self._close()
                self.start()
            assert self._conn is not None
            try:
                self._conn.send_bytes(pickle.dumps(records, pickle.HIGHEST_PROTOCOL))
                answer = self._conn.recv_bytes()
            except (EOFError, OSError) as exc:
                self._close()
                raise WriterDied(f"the click writer process stopped: {exc!r}") from exc
        if answer:
            raise WriteFailed(answer.decode(errors="replace"))

    def stop(self, timeout: float = 10.0) -> None:
        """Tell the process to finish, and wait for it."""
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(OSError):
                    self._conn.send_bytes(b"")
            if self._process is not None:
                self._process.join(timeout)
                if self._process.is_alive():
                    self._process.kill()
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._process = None


class WriterDied(Exception):
    """The writer process ended while it held a group (it may or may not be stored)."""


class WriteFailed(Exception):
    """The writer process could not commit a group (the database refused or is down)."""


def _serve(conn: Connection, url: str) -> None:
    """The writer process: commit each group received, answer b"" or the error."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING)
    db = Database(url)
    try:
        while True:
            try:
                message = conn.recv_bytes()
            except (EOFError, OSError):
                return  # the server is gone: nobody waits for an answer
            if not message:
                return
            try:
                write_in_thread(db, pickle.loads(message))  # noqa: S301 (our own server's pipe)
            except Exception as exc:
                conn.send_bytes(f"{type(exc).__name__}: {exc}".encode() or b"error")
            else:
                conn.send_bytes(b"")
    finally:
        db.dispose()


def _settle(waiters: list[Waiter], error: BaseException | None) -> None:
    for waiter in waiters:
        if waiter.done():  # the client went away meanwhile
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(Backpressure(f"click not stored: {error}"))
