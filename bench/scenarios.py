"""The standard scenarios S1–S8. Each starts a fresh server per system, connects its clients
through the worker pool, measures, and returns rows (one per measurement) plus a short summary.

Sizes are parameters (``bench/README.md`` lists the defaults, scaled to a 2-core machine).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import procstat
from bench.engine import Pool, connect, measure, sender_requests
from bench.systems import Server, start

#: S1 stops raising the rate once p99 exceeds this (or messages are lost).
P99_LIMIT_MS = 100.0
LOSS_LIMIT = 0.999
#: Deliveries per second at which CPU per delivery is compared between systems.
MODERATE_DELIVERIES = 20_000
#: Seconds of sending before a rate ladder, not recorded.
WARM_UP_SECONDS = 3.0


# Steps of 1.4-2.5x: coarser steps (1-2-5) could not tell a system sustaining half the
# top rate from one sustaining nearly all of it.
S1_RATES = (10, 20, 50, 100, 200, 300, 500, 700, 1000, 1500, 2000, 3000, 5000, 7000, 10000)


@dataclass
class Params:
    systems: list[str]
    workers: int = 2
    duration: float = 5.0
    size: int = 64
    s1_listeners: list[int] = field(default_factory=lambda: [100, 1000, 5000])
    s1_rates: list[float] = field(default_factory=lambda: list(S1_RATES))
    s2_room: int = 1000
    s2_senders: int = 10
    s2_messages: int = 10
    s2_rounds: int = 5
    s3_rooms: int = 1000
    s3_members: int = 10
    s3_period: float = 10.0
    s3_duration: float = 20.0
    s4_connections: int = 5000
    s4_rate: float = 500.0
    s5_steps: list[int] = field(default_factory=lambda: [1000, 5000, 10000, 19000])
    s5_idle: float = 30.0
    s6_churn: float = 20.0
    s6_stay: float = 2.0
    s7_listeners: int = 1000
    s7_rates: list[float] = field(default_factory=lambda: [50, 100, 200, 400])
    s8_room: int = 1000
    s8_rate: float = 50.0
    s8_slow: float = 0.01
    s8_duration: float = 20.0
    cpu_listeners: int = 1000
    cpu_rounds: int = 3
    cpu_deliveries: int = MODERATE_DELIVERIES  # a smaller point for smoke tests


@dataclass
class Context:
    params: Params
    pool: Pool
    workdir: Path
    say: Callable[[str], None] = print


def target(system: str, room: str) -> str:
    if system == "causette":
        return f"r:{room}"
    if system == "inspircd":
        return f"#{room}"
    return room  # the bare server has one audience; the name is ignored


@contextmanager
def running(
    ctx: Context, system: str, name: str, rooms: list[str], **opts: Any
) -> Iterator[Server]:
    server = start(system, ctx.workdir / f"{name}-{system}", rooms, **opts)
    try:
        yield server
    finally:
        try:
            ctx.pool.call("close")
        finally:
            server.stop()


def _show(ctx: Context, row: dict[str, Any]) -> None:
    keys = ("system", "listeners", "rate", "delivered_ratio", "p50_ms", "p99_ms", "max_ms")
    extra = ("deliveries_per_s", "cpu_us_per_delivery", "server_cpu_pct", "others_cpu_s")
    ctx.say("  " + "  ".join(f"{k}={row.get(k)}" for k in keys + extra if k in row))
    if row.get("error_samples"):
        ctx.say(f"  errors: {row['errors']}, e.g. {row['error_samples'][0]}")


def _ok(row: dict[str, Any]) -> bool:
    p99 = row["p99_ms"]
    return (row["delivered_ratio"] or 0) >= LOSS_LIMIT and p99 is not None and p99 <= P99_LIMIT_MS


# --- S1: one room, N listeners, one sender at rising rates ---------------------------------------


def _step(
    ctx: Context,
    server: Server,
    stream: str,
    n: int,
    rate: float,
    duration: float,
    **labels: Any,
) -> dict[str, Any]:
    """One sender into a room of ``n`` listeners at ``rate`` for ``duration`` seconds."""
    requests = sender_requests(
        ctx.pool, [(0, stream)], rate=rate, duration=duration, size=ctx.params.size
    )
    row = measure(
        ctx.pool,
        server,
        requests,
        expected=int(rate * duration) * n,
        listeners=n,
        rate=rate,
        offered_deliveries_per_s=rate * n,
        **labels,
    )
    row["sustained"] = _ok(row)
    _show(ctx, row)
    return row


def _ladder(
    ctx: Context, server: Server, stream: str, n: int, rates: list[float], **labels: Any
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One sender into a room of ``n`` listeners at each rate in turn, until p99 exceeds the
    limit or a message is lost; the rows and the best sustained one."""
    duration = ctx.params.duration
    rows: list[dict[str, Any]] = []
    best = None
    # Warm-up, not recorded: right after a crowd has joined, a server may still be busy with it
    # (InspIRCd's first second after 1000 JOINs showed a p99 six times its steady one).
    _step(ctx, server, stream, n, rates[0], WARM_UP_SECONDS, **labels)
    for rate in rates:
        row = _step(ctx, server, stream, n, rate, duration, **labels)
        rows.append(row)
        if not row["sustained"]:
            break
        best = row
    moderate = MODERATE_DELIVERIES / n  # the CPU comparison point, measured even past the limit
    if moderate in rates and moderate not in {r["rate"] for r in rows}:
        rows.append(_step(ctx, server, stream, n, moderate, duration, **labels))
    return rows, best


def s1(ctx: Context, system: str) -> dict[str, Any]:
    p = ctx.params
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for n in p.s1_listeners:
        ctx.say(f"S1 {system}: {n} listeners")
        with running(ctx, system, f"s1-{n}", ["s1"]) as server:
            connect(ctx.pool, server, [{"gid": g, "rooms": ["s1"]} for g in range(n + 1)])
            these, best = _ladder(ctx, server, target(system, "s1"), n, p.s1_rates, scenario="S1")
            rows += these
            summary[str(n)] = {
                "max_sustained_deliveries_per_s": best["offered_deliveries_per_s"] if best else 0,
                "max_sustained_rate": best["rate"] if best else 0,
            }
    return {"rows": rows, "summary": summary}


# --- S2: bursts into one room ---------------------------------------------------------------------


def s2(ctx: Context, system: str) -> dict[str, Any]:
    p = ctx.params
    n = p.s2_room
    ctx.say(f"S2 {system}: {p.s2_senders} senders x {p.s2_messages} into a room of {n}")
    rows = []
    with running(ctx, system, "s2", ["s2"]) as server:
        connect(ctx.pool, server, [{"gid": g, "rooms": ["s2"]} for g in range(n)])
        senders = [(g, target(system, "s2")) for g in range(p.s2_senders)]
        for round_ in range(p.s2_rounds):
            requests = sender_requests(ctx.pool, senders, burst=p.s2_messages, size=p.size)
            row = measure(
                ctx.pool,
                server,
                requests,
                expected=p.s2_senders * p.s2_messages * (n - 1),
                scenario="S2",
                listeners=n,
                round=round_,
            )
            rows.append(row)
            _show(ctx, row)
            time.sleep(1.0)
    return {"rows": rows, "summary": _pooled(rows)}


def _pooled(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Worst latency and summed work over several measurements of one kind."""
    delivered = sum(r["delivered"] for r in rows)
    cpu = sum(r["server_cpu_s"] for r in rows)
    return {
        "delivered_ratio": round(delivered / max(1, sum(r["expected"] for r in rows)), 4),
        "p50_ms": max((r["p50_ms"] or 0) for r in rows),
        "p99_ms": max((r["p99_ms"] or 0) for r in rows),
        "max_ms": max((r["max_ms"] or 0) for r in rows),
        "deliveries_per_cpu_s": round(delivered / cpu, 1) if cpu else None,
        "cpu_us_per_delivery": round(1e6 * cpu / delivered, 3) if delivered else None,
    }


# --- S3 / S6: many small rooms (with churn) -------------------------------------------------------


def _small_rooms(ctx: Context, system: str, churn: float) -> dict[str, Any]:
    p = ctx.params
    name = "S6" if churn else "S3"
    rooms = [f"r{i}" for i in range(p.s3_rooms)]
    ctx.say(f"{name} {system}: {p.s3_rooms} rooms x {p.s3_members}, churn {churn}/s")
    with running(ctx, system, name.lower(), rooms) as server:
        clients = [
            {"gid": r * p.s3_members + m, "rooms": [rooms[r]]}
            for r in range(p.s3_rooms)
            for m in range(p.s3_members)
        ]
        connect(ctx.pool, server, clients)
        if churn:
            groups = [[room] for room in rooms]
            ctx.pool.call(
                "churn",
                [{"rate": churn / ctx.pool.size, "rooms": groups, "stay": p.s6_stay}]
                * ctx.pool.size,
            )
        senders = [(g, target(system, rooms[g // p.s3_members])) for g in range(len(clients))]
        rate = len(senders) / p.s3_period
        requests = sender_requests(
            ctx.pool, senders, rate=rate, duration=p.s3_duration, size=p.size
        )
        sent = int(rate * p.s3_duration)
        row = measure(
            ctx.pool,
            server,
            requests,
            expected=sent * (p.s3_members - 1),
            scenario=name,
            rooms=p.s3_rooms,
            members=p.s3_members,
            rate=rate,
            churn_per_s=churn,
        )
        if churn:
            ctx.pool.call("churn", [{"rate": 0}] * ctx.pool.size)
        _show(ctx, row)
    return {"rows": [row], "summary": _pooled([row])}


def s3(ctx: Context, system: str) -> dict[str, Any]:
    return _small_rooms(ctx, system, 0.0)


def s6(ctx: Context, system: str) -> dict[str, Any]:
    return _small_rooms(ctx, system, ctx.params.s6_churn)


# --- S4: private messages between random pairs ----------------------------------------------------


def s4(ctx: Context, system: str) -> dict[str, Any]:
    p = ctx.params
    n = p.s4_connections - p.s4_connections % 2
    ctx.say(f"S4 {system}: private messages among {n} connections at {p.s4_rate}/s")
    with running(ctx, system, "s4", []) as server:
        ids = connect(ctx.pool, server, [{"gid": g, "rooms": []} for g in range(n)])
        order = list(range(n))
        random.Random(4).shuffle(order)
        senders: list[tuple[int, str]] = []
        for a, b in zip(order[::2], order[1::2], strict=True):
            stream = "d:" + ":".join(sorted((ids[a], ids[b])))
            senders += [(a, stream), (b, stream)]
        random.Random(5).shuffle(senders)
        requests = sender_requests(
            ctx.pool, senders, rate=p.s4_rate, duration=p.duration * 2, size=p.size
        )
        row = measure(
            ctx.pool,
            server,
            requests,
            expected=int(p.s4_rate * p.duration * 2),
            scenario="S4",
            connections=n,
            rate=p.s4_rate,
        )
        _show(ctx, row)
    return {"rows": [row], "summary": _pooled([row])}


# --- S5: idle capacity ----------------------------------------------------------------------------


def s5(ctx: Context, system: str) -> dict[str, Any]:
    p = ctx.params
    rows = []
    ctx.say(f"S5 {system}: idle connections {p.s5_steps}, {p.s5_idle:.0f} s each")
    with running(ctx, system, "s5", []) as server:
        time.sleep(1.0)
        base = procstat.sample(server.pids, ctx.pool.pids)
        connected = 0
        for step in p.s5_steps:
            # In no room: every join would be announced to the room, N² deliveries for nothing.
            clients = [{"gid": g, "rooms": []} for g in range(connected, step)]
            connect(ctx.pool, server, clients)
            connected = step
            before = procstat.sample(server.pids, ctx.pool.pids)
            time.sleep(p.s5_idle)
            after = procstat.sample(server.pids, ctx.pool.pids)
            cpu = after.cpu - before.cpu
            row = {
                "scenario": "S5",
                "system": system,
                "connections": step,
                "server_rss_mb": round(after.rss / 2**20, 1),
                "rss_kb_per_connection": round((after.rss - base.rss) / 1024 / step, 2),
                "idle_cpu_pct": round(100 * cpu / p.s5_idle, 2),
                "cpu_us_per_connection_s": round(1e6 * cpu / p.s5_idle / step, 3),
                "others_cpu_s": round(
                    max(0.0, after.machine - before.machine - cpu - (after.others - before.others)),
                    3,
                ),
            }
            rows.append(row)
            ctx.say("  " + "  ".join(f"{k}={v}" for k, v in row.items()))
    last = rows[-1]
    return {
        "rows": rows,
        "summary": {
            "connections": last["connections"],
            "rss_kb_per_connection": last["rss_kb_per_connection"],
            "cpu_us_per_connection_s": last["cpu_us_per_connection_s"],
        },
    }


# --- S7: two nodes through Redis against one ------------------------------------------------------


def s7(ctx: Context, system: str) -> dict[str, Any]:
    p = ctx.params
    rows = []
    summary = {}
    n = p.s7_listeners
    for nodes in (1, 2):
        ctx.say(f"S7 {system}: {nodes} node(s) on PostgreSQL + Redis, {n} listeners")
        with running(ctx, system, f"s7-{nodes}", ["s7"], nodes=nodes) as server:
            connect(
                ctx.pool,
                server,
                [{"gid": g, "rooms": ["s7"], "node": g % nodes} for g in range(n + 1)],
            )
            these, best = _ladder(ctx, server, "r:s7", n, p.s7_rates, scenario="S7", nodes=nodes)
            rows += these
            summary[f"{nodes}_node"] = {
                "max_sustained_deliveries_per_s": best["offered_deliveries_per_s"] if best else 0,
                "cpu_us_per_delivery": best["cpu_us_per_delivery"] if best else None,
            }
    return {"rows": rows, "summary": summary}


# --- S8: slow consumers ---------------------------------------------------------------------------


def s8(ctx: Context, system: str) -> dict[str, Any]:
    p = ctx.params
    n = p.s8_room
    rows = []
    for fraction in (0.0, p.s8_slow):
        slow = int(n * fraction)
        ctx.say(f"S8 {system}: room of {n}, {slow} slow readers, {p.s8_rate}/s")
        with running(ctx, system, f"s8-{slow}", ["s8"]) as server:
            clients = [{"gid": g, "rooms": ["s8"], "slow": 1 <= g <= slow} for g in range(n + 1)]
            connect(ctx.pool, server, clients)
            requests = sender_requests(
                ctx.pool,
                [(0, target(system, "s8"))],
                rate=p.s8_rate,
                duration=p.s8_duration,
                size=p.size,
            )
            row = measure(
                ctx.pool,
                server,
                requests,
                expected=int(p.s8_rate * p.s8_duration) * (n - slow),
                drain_seconds=5.0,
                scenario="S8",
                listeners=n,
                slow_readers=slow,
                rate=p.s8_rate,
            )
            rows.append(row)
            _show(ctx, row)
            ctx.say(
                f"  slow readers: delivered {row['slow_delivered']}, disconnects "
                f"{row['disconnects']}, server RSS peak {row['server_rss_peak_mb']} MB"
            )
    base, slowed = rows
    return {
        "rows": rows,
        "summary": {
            "p99_ms_without_slow": base["p99_ms"],
            "p99_ms_with_slow": slowed["p99_ms"],
            "rss_peak_mb_without_slow": base["server_rss_peak_mb"],
            "rss_peak_mb_with_slow": slowed["server_rss_peak_mb"],
            "slow_disconnects": slowed["disconnects"],
        },
    }


# --- CPU: the CPU comparison point, systems taking turns -----------------------------------------


def cpu(ctx: Context, systems: list[str]) -> dict[str, dict[str, Any]]:
    """CPU per delivery at MODERATE_DELIVERIES (``cpu_listeners`` listeners, one sender), the
    systems taking turns for ``cpu_rounds`` rounds, each on a fresh server; the median per
    system. The kernel's share of a delivery drifts by 10-30 % over minutes on a shared machine
    (bench/README.md): taking turns exposes every system to the same drift, where S1 measures
    each at a different time."""
    p = ctx.params
    n = p.cpu_listeners
    rate = p.cpu_deliveries / n
    rows: dict[str, list[dict[str, Any]]] = {system: [] for system in systems}
    for round_ in range(p.cpu_rounds):
        for system in systems:
            ctx.say(f"CPU {system}: round {round_ + 1} of {p.cpu_rounds}")
            with running(ctx, system, f"cpu-{round_}", ["cpu"]) as server:
                connect(ctx.pool, server, [{"gid": g, "rooms": ["cpu"]} for g in range(n + 1)])
                stream = target(system, "cpu")
                _step(ctx, server, stream, n, rate, WARM_UP_SECONDS)  # not recorded
                row = _step(ctx, server, stream, n, rate, p.duration, scenario="CPU", round=round_)
                rows[system].append(row)
    out: dict[str, dict[str, Any]] = {}
    for system, these in rows.items():
        measured = [r["cpu_us_per_delivery"] for r in these if r["cpu_us_per_delivery"]]
        out[system] = {
            "rows": these,
            "summary": {
                "cpu_us_per_delivery": statistics.median(measured) if measured else None,
                "rounds": len(measured),
            },
        }
    return out


#: Scenarios that run their systems in turns themselves: ``(run(ctx, systems), systems, title)``.
INTERLEAVED: dict[
    str, tuple[Callable[[Context, list[str]], dict[str, dict[str, Any]]], tuple[str, ...], str]
] = {
    "CPU": (
        cpu,
        ("causette", "inspircd", "bare"),
        "CPU per delivery at 20,000 deliveries/s, the systems taking turns",
    ),
}


SCENARIOS: dict[str, tuple[Callable[[Context, str], dict[str, Any]], tuple[str, ...], str]] = {
    "S1": (s1, ("causette", "inspircd", "bare"), "one room, N listeners, one sender, rising rate"),
    "S2": (s2, ("causette", "inspircd"), "bursts: 10 senders x 10 messages into a room of 1000"),
    "S3": (s3, ("causette", "inspircd"), "1000 rooms x 10 members, 1 msg/member/10 s"),
    "S4": (s4, ("causette",), "private messages between random pairs among 5000 connections"),
    "S5": (s5, ("causette", "inspircd", "bare"), "idle connections: RSS and CPU per connection"),
    "S6": (s6, ("causette",), "S3 plus steady connects and disconnects"),
    "S7": (s7, ("causette",), "two nodes through Redis against one (PostgreSQL + Redis)"),
    "S8": (s8, ("causette",), "1% slow readers: everyone else's p99 and server memory"),
}
