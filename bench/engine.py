"""The coordinator's side: a pool of worker processes and one measurement.

A measurement resets every worker's counters, samples the servers' CPU and RSS, has the workers
send (open loop), waits until every expected delivery arrived or nothing moved for a while,
samples again and merges the workers' HDR histograms.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from bench import procstat
from bench.load import new_histogram, worker_main
from bench.systems import Server

#: After the senders stop, how long a measurement waits with no new delivery before it gives up.
STALL_SECONDS = 3.0


class WorkerError(RuntimeError):
    pass


class Pool:
    """``size`` load-generator processes; requests go to all and answers come back in order."""

    def __init__(self, size: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conns: list[Connection] = []
        self.processes: list[Any] = []
        for index in range(size):
            ours, theirs = ctx.Pipe()
            process = ctx.Process(target=worker_main, args=(theirs, index), daemon=True)
            process.start()
            self.conns.append(ours)
            self.processes.append(process)

    @property
    def size(self) -> int:
        return len(self.conns)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def call(self, kind: str, requests: Sequence[dict[str, Any] | None] | None = None) -> list[Any]:
        requests = requests if requests is not None else [None] * self.size
        for conn, request in zip(self.conns, requests, strict=True):
            conn.send((kind, request))
        answers = []
        for conn in self.conns:
            status, answer = conn.recv()
            if status != "ok":
                raise WorkerError(f"{kind}: {answer}")
            answers.append(answer)
        return answers

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(("exit", None))
                conn.recv()
            except (OSError, EOFError):
                pass
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()


def split(items: Sequence[Any], parts: int, key: Any = None) -> list[list[Any]]:
    """Items dealt out to ``parts`` workers, by ``key(item) % parts`` (default: in turn)."""
    out: list[list[Any]] = [[] for _ in range(parts)]
    for i, item in enumerate(items):
        out[(key(item) if key else i) % parts].append(item)
    return out


def connect(pool: Pool, server: Server, clients: list[dict[str, Any]]) -> dict[int, str]:
    """Connect every client (``gid``, ``rooms``, ``node``…) through the workers (client ``gid``
    lives on worker ``gid % size``); the person id of each (Causette) by gid."""
    per_worker = split(clients, pool.size, key=lambda c: c["gid"])
    # Clients may be spread over several nodes: one setup request per (worker, node).
    by_node: dict[int, list[list[dict[str, Any]]]] = {}
    for w, specs in enumerate(per_worker):
        for spec in specs:
            by_node.setdefault(spec.get("node", 0), [[] for _ in range(pool.size)])[w].append(spec)
    ids: dict[int, str] = {}
    failures: list[str] = []
    for node, lists in sorted(by_node.items()):
        answers = pool.call(
            "setup",
            [
                {"system": server.system, "target": server.targets[node], "clients": specs}
                for specs in lists
            ],
        )
        for answer in answers:
            ids.update({int(k): v for k, v in answer["ids"].items()})
            failures += answer["failure_samples"]
    if len(ids) < len(clients):
        raise RuntimeError(
            f"{server.system}: {len(clients) - len(ids)} of {len(clients)} clients could not "
            f"connect, e.g. {failures[:3]}\n{server.log_tail()}"
        )
    return ids


def sender_requests(
    pool: Pool, senders: list[tuple[int, str]], **plan: Any
) -> list[dict[str, Any]]:
    """Per-worker ``run`` requests: each worker sends for its own clients, at its share of the
    rate (``plan['rate']`` is the total)."""
    groups = split(senders, pool.size, key=lambda s: s[0])
    total = len(senders)
    out = []
    for group in groups:
        request = dict(plan, senders=group)
        if "rate" in plan:
            request["rate"] = plan["rate"] * len(group) / total if group else 0
        out.append(request)
    return out


class RssPeak:
    """The servers' largest RSS while a measurement runs (sampled every 100 ms)."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.1):
            try:
                self.peak = max(self.peak, sum(procstat.rss_bytes(p) for p in self.pids))
            except OSError:
                return

    def __enter__(self) -> RssPeak:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()


def _run_workers(pool: Pool, requests: list[dict[str, Any]]) -> None:
    active = [r if r.get("senders") else None for r in requests]
    for conn, request in zip(pool.conns, active, strict=True):
        if request is not None:
            conn.send(("run", request))
    for conn, request in zip(pool.conns, active, strict=True):
        if request is not None:
            status, answer = conn.recv()
            if status != "ok":
                raise WorkerError(f"run: {answer}")


def measure(
    pool: Pool,
    server: Server,
    requests: list[dict[str, Any]],
    expected: int,
    drain_seconds: float = 15.0,
    **labels: Any,
) -> dict[str, Any]:
    """Send as ``requests`` say and measure until ``expected`` deliveries arrived (or stall)."""
    pool.call("collect")  # reset
    before = procstat.sample(server.pids, pool.pids)
    started = time.monotonic()
    with RssPeak(server.pids) as rss:
        _run_workers(pool, requests)
        sent_at = time.monotonic()
        delivered, last_change, last = 0, time.monotonic(), -1
        while time.monotonic() - sent_at < drain_seconds:
            delivered = sum(a["delivered"] for a in pool.call("counts"))
            if delivered >= expected:
                break
            if delivered != last:
                last, last_change = delivered, time.monotonic()
            elif time.monotonic() - last_change > STALL_SECONDS:
                break
            time.sleep(0.02)
    wall = time.monotonic() - started
    after = procstat.sample(server.pids, pool.pids)
    answers = pool.call("collect")
    return summarize(answers, before, after, wall, expected, rss.peak, server, labels)


def merge(answers: list[dict[str, Any]], key: str) -> HdrHistogram:
    hist = new_histogram()
    for answer in answers:
        hist.add(HdrHistogram.decode(answer[key]))
    return hist


def summarize(
    answers: list[dict[str, Any]],
    before: procstat.Sample,
    after: procstat.Sample,
    wall: float,
    expected: int,
    rss_peak: int,
    server: Server,
    labels: dict[str, Any],
) -> dict[str, Any]:
    hist = merge(answers, "hist")
    slow = merge(answers, "slow_hist")
    delivered = sum(a["delivered"] for a in answers)
    cpu = after.cpu - before.cpu
    generator = after.others - before.others
    machine = after.machine - before.machine
    samples = [s for a in answers for s in a["error_samples"]]

    def ms(h: HdrHistogram, q: float) -> float | None:
        return round(h.get_value_at_percentile(q) / 1000, 2) if h.get_total_count() else None

    return {
        **labels,
        "system": server.system,
        "sent": sum(a["sent"] for a in answers),
        "acks": sum(a["acks"] for a in answers),
        "expected": expected,
        "delivered": delivered,
        "delivered_ratio": round(delivered / expected, 4) if expected else None,
        "p50_ms": ms(hist, 50),
        "p99_ms": ms(hist, 99),
        "p999_ms": ms(hist, 99.9),
        "max_ms": round(hist.get_max_value() / 1000, 2) if hist.get_total_count() else None,
        "slow_delivered": sum(a["slow_delivered"] for a in answers),
        "slow_p99_ms": ms(slow, 99),
        "wall_s": round(wall, 3),
        "deliveries_per_s": round(delivered / wall, 1) if wall else None,
        "server_cpu_s": round(cpu, 3),
        "server_cpu_pct": round(100 * cpu / wall, 1) if wall else None,
        "server_sys_cpu_s": round(after.sys - before.sys, 3),
        "cpu_us_per_delivery": round(1e6 * cpu / delivered, 3) if delivered else None,
        "deliveries_per_cpu_s": round(delivered / cpu, 1) if cpu > 0 else None,
        "server_rss_mb": round(after.rss / 2**20, 1),
        "server_rss_peak_mb": round(max(rss_peak, after.rss) / 2**20, 1),
        "generator_cpu_s": round(generator, 3),
        # CPU the machine spent on anything else (another job disturbs the figures if large)
        "others_cpu_s": round(max(0.0, machine - cpu - generator), 3),
        "errors": sum(a["errors"] for a in answers),
        "error_samples": samples[:3],
        "disconnects": sum(a["disconnects"] for a in answers),
        "generator_max_lag_ms": round(max(a["max_lag_ms"] for a in answers), 2),
    }
