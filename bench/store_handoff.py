"""What one store operation costs on SQLite apart from its SQL (not a test: prints figures).

Each operation of the SQL store on SQLite is a hand-off to the store's thread and back
(decisions 7 and 14). This times, one after the other on uvloop, an empty job on the worker and
a look-up by key through ``SqlStore``: process CPU (user and system), wall time and context
switches per operation, median of ``--repeat`` runs of ``-n`` operations.

    .venv/bin/python bench/store_handoff.py [-n 20000] [--repeat 3]

Run it under ``taskset -c 0`` to see the hand-off between threads kept on one CPU.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop
from sqlalchemy.engine import make_url

from causette.store import migrate
from causette.store.sql.engine import async_url, create_engine
from causette.store.sql.store import SqlStore
from causette.store.sql.worker import SqliteWorker


async def per_op(op: Callable[[], Awaitable[Any]], n: int) -> dict[str, float]:
    for _ in range(min(n, 1000)):  # warm up
        await op()
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    for _ in range(n):
        await op()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "user_us": (after.ru_utime - before.ru_utime) / n * 1e6,
        "sys_us": (after.ru_stime - before.ru_stime) / n * 1e6,
        "wall_us": wall / n * 1e6,
        "voluntary_switches": (after.ru_nvcsw - before.ru_nvcsw) / n,
        "involuntary_switches": (after.ru_nivcsw - before.ru_nivcsw) / n,
    }


async def main(n: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'handoff.db'}"
        await migrate(url)
        worker = SqliteWorker(make_url(url), 5000)
        store = SqlStore(create_engine(async_url(url)))
        try:
            cases: dict[str, Callable[[], Awaitable[Any]]] = {
                "empty job on the worker": lambda: worker.run(lambda conn: None, "NONE", False),
                "get_session (one look-up)": lambda: store.get_session("nobody"),
            }
            cpus = sorted(os.sched_getaffinity(0))
            print(f"CPUs allowed: {cpus}; {n} operations a run, median of {repeat} runs")
            for name, op in cases.items():
                runs = [await per_op(op, n) for _ in range(repeat)]
                med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
                print(
                    f"{name:28s} CPU {med['user_us'] + med['sys_us']:6.1f} µs "
                    f"(user {med['user_us']:.1f}, sys {med['sys_us']:.1f}), "
                    f"wall {med['wall_us']:6.1f} µs, context switches "
                    f"{med['voluntary_switches']:.2f} + {med['involuntary_switches']:.2f}"
                )
        finally:
            await worker.close()
            await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    uvloop.run(main(args.n, args.repeat))
