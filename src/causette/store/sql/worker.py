"""The SQLite worker: one thread that owns the store's SQLite connection and runs whole store
operations on it, each a plain function of a (synchronous) SQLAlchemy ``Connection``.

Why not the async driver: through aiosqlite every DBAPI call (cursor, execute, fetch, close,
commit…) is its own hand-off between the event loop and the connection's thread, about ten per
statement, and on our 2-core machines each hand-off costs 100–150 µs of CPU (futex and pipe
wake-ups). A look-up that SQLite answers in a few microseconds cost about 3 ms. Here an
operation is one hand-off in each direction, and while the thread is busy the operations that
queue up meanwhile are run back to back and answered together (one wake-up of the loop).

The event loop never blocks: it only puts a job on a queue and awaits a future (or, on the
message path, is called back: ``submit_then``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar

from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Connection, Engine

from causette.store.sql.engine import BEGIN_OPTION, BeginMode, configure_sqlite

T = TypeVar("T")

log = logging.getLogger(__name__)

#: The most operations answered in one wake-up of the event loop: a long queue is still
#: answered progressively.
BATCH: Final = 32

#: Called on the submitting loop with ``(True, result)`` or ``(False, exception)``.
Done = Callable[[bool, Any], None]
_Job = tuple[asyncio.AbstractEventLoop, Done, Callable[[Connection], Any], BeginMode, bool]
_Outcome = tuple[Done, bool, Any]


class SqliteWorker:
    """Runs ``fn(connection)`` on the worker's thread, in order of submission: as one
    transaction (``write``, committed when ``fn`` returns, rolled back if it raises) or as a
    read (nothing committed). ``mode`` is how a transaction begins (``causette.store.sql.engine``).
    """

    def __init__(self, url: URL, busy_timeout_ms: int) -> None:
        self._engine: Engine = create_engine(
            url.set(drivername="sqlite"), pool_size=1, max_overflow=0
        )
        configure_sqlite(self._engine, busy_timeout_ms)
        self._conn: Connection | None = None  # opened on the worker's thread
        self._mode: BeginMode | None = None  # the connection's begin mode option
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False

    async def run(self, fn: Callable[[Connection], T], mode: BeginMode, write: bool) -> T:
        return await self.submit(fn, mode, write)

    def submit(
        self, fn: Callable[[Connection], T], mode: BeginMode, write: bool
    ) -> asyncio.Future[T]:
        """Queue ``fn``; the future gets its result (or exception) on the calling loop."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.submit_then(fn, mode, write, functools.partial(_resolve, future))
        return future

    def submit_then(
        self, fn: Callable[[Connection], Any], mode: BeginMode, write: bool, done: Done
    ) -> None:
        """Queue ``fn``; ``done(ok, result or exception)`` is called on the calling loop, in
        the loop turn that receives the answer (a future would take one more turn to run its
        callbacks)."""
        if self._closed:
            raise RuntimeError("the SQLite worker is closed")
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, name="causette-sqlite", daemon=True)
            self._thread.start()
        self._jobs.put((asyncio.get_running_loop(), done, fn, mode, write))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is not None:
            self._jobs.put(None)
            await asyncio.to_thread(thread.join)
        self._engine.dispose()

    # --- on the worker's thread -------------------------------------------------------------

    def _main(self) -> None:
        jobs = self._jobs
        while True:
            batch = [jobs.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(jobs.get_nowait())
                except queue.Empty:
                    break
            done: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
            stop = False
            for job in batch:
                if job is None:
                    stop = True
                    continue
                loop, target, fn, mode, write = job
                try:
                    outcome: _Outcome = (target, True, self._execute(fn, mode, write))
                except BaseException as error:  # handed to the caller, whatever it is
                    outcome = (target, False, error)
                done.setdefault(loop, []).append(outcome)
            for loop, outcomes in done.items():  # one wake-up per loop
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting
                    loop.call_soon_threadsafe(_settle, outcomes)
            if stop:
                if self._conn is not None:
                    self._conn.close()  # on the thread that opened it
                self._engine.dispose()
                return

    def _execute(self, fn: Callable[[Connection], T], mode: BeginMode, write: bool) -> T:
        # One connection for the worker's life: checking one out of a pool per operation
        # costs more than most operations.
        conn = self._conn
        if conn is None or conn.closed or conn.invalidated:
            conn = self._conn = self._engine.connect()
            self._mode = None
        if mode != self._mode:  # setting it fires SQLAlchemy's listeners: only on a change
            conn.execution_options(**{BEGIN_OPTION: mode})  # in place: read by the begin event
            self._mode = mode
        try:
            if mode != "NONE":
                # Begin now (the begin event emits BEGIN IMMEDIATE or BEGIN), not at the first
                # statement run through SQLAlchemy: statements run straight on the driver are
                # then inside the transaction too.
                conn.begin()
            result = fn(conn)
            if write:
                conn.commit()
            elif conn.in_transaction():
                conn.rollback()  # a read commits nothing; ends its transaction if it began one
        except BaseException:
            try:
                conn.rollback()
                driver = conn.connection.driver_connection
                if isinstance(driver, sqlite3.Connection) and driver.in_transaction:
                    # SQLite keeps a transaction whose COMMIT failed open, while SQLAlchemy
                    # counts it as ended: end it on the driver.
                    driver.rollback()
            except Exception:
                # The connection cannot even roll back (a failed COMMIT on a broken file):
                # the next operation opens a fresh one rather than inherit a half transaction.
                conn.invalidate()
            raise
        return result


def _settle(outcomes: list[_Outcome]) -> None:
    for target, ok, value in outcomes:
        try:
            target(ok, value)
        except Exception:  # one failing callback must not leave the others unanswered
            log.exception("store_callback_failed")


def _resolve(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # the caller went away; what was written stays written
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
