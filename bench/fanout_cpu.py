"""CPU per delivery of the fan-out alone, over real loopback sockets (not a test: prints figures).

What S1 measures through the whole server (HTTP, entry, storage, the load generator parsing
JSON), narrowed to the per-recipient path: ``Hub.deliver`` queues one event for every member of a
room, the flush writes each member its frame. The members are TCP connections to a separate
process that reads and discards, so each write is the real system call. The process CPU time
(user and system, from ``getrusage``) is divided by the deliveries; each run is repeated and the
median shown. Use it to compare two versions of the fan-out on the same machine, one after the
other (``PYTHONPATH=<tree>/src``): the figure moves with the kernel's mood from one day to the
next, much less from one minute to the next.

    .venv/bin/python -m bench.fanout_cpu [--listeners 1000] [--rate 200] [--messages 2000]
                                         [--burst 1] [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import platform
import resource
import statistics
import time
from typing import Any, cast

import uvloop

from causette.core.ports import Bus, Envelope, Store
from causette.web import fanout
from causette.web.fanout import Connection, Hub

EVENT = (
    b'{"type":"msg","stream":"r:general","seq":%d,"id":"m0123456789abcdef","author":"p01234567",'
    b'"name":"Quelqu\'un","kind":"text","text":"Bonjour \\u00e0 toutes et \\u00e0 tous, quelqu\'un'
    b' a vu le match hier soir ?","ts":1767225600000}'
)


class _Discard(asyncio.Protocol):
    def data_received(self, data: bytes) -> None:
        pass


def _reader(port_out: Any) -> None:
    """The far end: accepts connections and throws away what it reads."""

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Discard, "127.0.0.1", 0)
        port_out.send(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    uvloop.run(main())


class _Backlog:
    """Which connections still hold unsent bytes: each is paused from its first byte held (its
    high-water mark is 0) until it has sent everything."""

    def __init__(self) -> None:
        self.paused = 0
        self.drained = asyncio.Event()
        self.drained.set()

    def protocol(self) -> asyncio.Protocol:
        backlog = self

        class Writer(asyncio.Protocol):
            def pause_writing(self) -> None:
                backlog.paused += 1
                backlog.drained.clear()

            def resume_writing(self) -> None:
                backlog.paused -= 1
                if not backlog.paused:
                    backlog.drained.set()

        return Writer()


def _cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def _connection(n: int, transport: asyncio.Transport) -> Connection:
    # Before the fan-out took the transport itself as its sink, it took a wrapper.
    wrapper = getattr(fanout, "TransportSink", None)
    sink: Any = wrapper(transport) if wrapper is not None else transport
    return Connection(f"c{n}", f"p{n}", sink, on_overflow=lambda _: None)


async def _run(args: argparse.Namespace, port: int) -> list[dict[str, float]]:
    loop = asyncio.get_running_loop()
    hub = Hub(
        cast(Store, None),
        cast(Bus, None),
        max_queue_bytes=1 << 30,
        history_limit=0,
        max_replay=0,
        now_ms=lambda: 0,
        on_control=lambda _: None,
    )
    backlog = _Backlog()
    transports = []
    for _ in range(args.listeners):
        transport, _protocol = await loop.create_connection(backlog.protocol, "127.0.0.1", port)
        transport.set_write_buffer_limits(high=0)
        transports.append(transport)
    hub.channels["r:general"] = {_connection(n, t) for n, t in enumerate(transports)}
    period = args.burst / args.rate
    runs = []
    seq = 0
    for run in range(args.repeat + 1):  # the first run warms up and is not counted
        user0, sys0 = _cpu()
        started = time.perf_counter()
        for i in range(args.messages // args.burst):
            for _ in range(args.burst):
                seq += 1
                hub.deliver(Envelope(channel="r:general", data=EVENT % seq))
            # Paced like an open-loop sender: the flush runs in between.
            await asyncio.sleep(max(0.0, started + (i + 1) * period - time.perf_counter()))
        await backlog.drained.wait()
        user1, sys1 = _cpu()
        deliveries = args.listeners * (args.messages // args.burst) * args.burst
        if run:
            runs.append(
                {
                    "cpu_us_per_delivery": 1e6 * (user1 - user0 + sys1 - sys0) / deliveries,
                    "user_us_per_delivery": 1e6 * (user1 - user0) / deliveries,
                    "sys_us_per_delivery": 1e6 * (sys1 - sys0) / deliveries,
                }
            )
    for t in transports:
        t.close()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--messages", type=int, default=2000, help="events per run")
    parser.add_argument("--burst", type=int, default=1, help="events queued per flush")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    reader = ctx.Process(target=_reader, args=(send,), daemon=True)
    reader.start()
    try:
        runs = uvloop.run(_run(args, receive.recv()))
    finally:
        reader.kill()
    summary = {
        key: round(statistics.median(r[key] for r in runs), 3)
        for key in ("cpu_us_per_delivery", "user_us_per_delivery", "sys_us_per_delivery")
    }
    spread = [round(r["cpu_us_per_delivery"], 3) for r in runs]
    print(
        f"{args.listeners} listeners, {args.rate:g} events/s, {args.burst} per flush: "
        f"CPU {summary['cpu_us_per_delivery']} us per delivery "
        f"(user {summary['user_us_per_delivery']}, system {summary['sys_us_per_delivery']}; "
        f"runs {spread})"
    )
    if args.json:
        with open(args.json, "w") as out:
            figures = {"params": vars(args), "median": summary, "runs": runs}
            json.dump({**figures, "machine": platform.platform()}, out, indent=2)


if __name__ == "__main__":
    main()
