"""Append throughput of the SQL store on SQLite (not a test: prints figures).

Four scenarios, each on a fresh database: one stream or 100 streams, appends one after the other
or from 50 concurrent tasks. Each
scenario runs ``--repeat`` times; the median is shown, with the process CPU time per append
(all threads), which a busy shared machine disturbs less than the wall-clock rate.

    .venv/bin/python bench/store_append.py [-n 4000] [--repeat 3]
                                           [--uvloop] [--json results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import platform
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import sqlalchemy

from causette.core.models import NewItem
from causette.store import migrate
from causette.store.sql.engine import async_url, create_engine
from causette.store.sql.store import SqlStore

T0 = 1_767_225_600_000
LIFETIME = 3 * 3600 * 1000
TASKS = 50
_runs = itertools.count()


def new_item(stream: str, n: int) -> NewItem:
    return NewItem(
        stream=stream,
        id=f"m{n}",
        kind="text",
        author=f"p{n % 97}",
        name="Someone",
        text="Bonjour à toutes et à tous, quelqu'un a vu le match hier soir ?",
        ts=T0 + n,
        expires_at=T0 + n + LIFETIME,
        local_id=f"l{n}",
    )


async def scenario(directory: Path, n: int, streams: int, tasks: int) -> tuple[float, float]:
    """(appends per second, CPU microseconds per append)"""
    url = f"sqlite:///{directory / f'bench-{next(_runs)}.db'}"
    await migrate(url)
    store = SqlStore(create_engine(async_url(url)))
    try:
        names = [f"r:room-{i}" for i in range(streams)]
        for name in names:
            await store.ensure_stream(name, T0)
        counter = itertools.count()

        async def worker(count: int) -> None:
            for _ in range(count):
                k = next(counter)
                await store.append(new_item(names[k % streams], k))

        start, cpu_start = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(n // tasks) for _ in range(tasks)))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        # Every stream must hold a contiguous 1..last_seq.
        for name in names:
            head = await store.stream_head(name)
            assert head is not None
            stored = await store.read(name, 0, n + 1)
            assert [m.seq for m in stored] == list(range(1, head.last_seq + 1)), name
        done = (n // tasks) * tasks
        return done / elapsed, cpu / done * 1e6
    finally:
        await store.close()


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for streams, tasks in ((1, 1), (100, 1), (1, TASKS), (100, TASKS)):
            runs = [await scenario(Path(tmp), args.n, streams, tasks) for _ in range(args.repeat)]
            rate = statistics.median(r for r, _ in runs)
            cpu_us = statistics.median(c for _, c in runs)
            mode = "sequential" if tasks == 1 else f"{tasks} concurrent tasks"
            print(
                f"streams={streams:>3}  {mode:<20} "
                f"{rate:7.0f} appends/s  {cpu_us:6.0f} µs CPU/append",
                flush=True,
            )
            results.append(
                {
                    "streams": streams,
                    "tasks": tasks,
                    "appends_per_s": round(rate),
                    "cpu_us_per_append": round(cpu_us),
                }
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=4000, help="appends per scenario")
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario (median)")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (as the server)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    print(
        f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, "
        f"sqlalchemy {sqlalchemy.__version__}, loop {'uvloop' if args.uvloop else 'asyncio'}"
    )
    runner: Callable[[Coroutine[Any, Any, list[dict[str, Any]]]], list[dict[str, Any]]]
    if args.uvloop:
        import uvloop

        runner = uvloop.run
    else:
        runner = asyncio.run
    results = runner(run(args))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "loop": "uvloop" if args.uvloop else "asyncio",
            "n": args.n,
            "repeat": args.repeat,
        }
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
