"""CPU time and memory of processes, read from /proc (Linux)."""

from __future__ import annotations

import os
from dataclasses import dataclass

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of ``pid`` (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3 of proc(5)); utime and stime are fields 14 and 15
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads) so far."""
    return sum(cpu_times(pid))


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def machine_busy_seconds() -> float:
    """CPU seconds spent by the whole machine (every core, not idle), from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / TICKS


@dataclass
class Sample:
    cpu: float
    sys: float  # the kernel's part of ``cpu`` (system calls, and on loopback the peer's receive)
    rss: int
    machine: float
    others: float


def sample(server_pids: list[int], helper_pids: list[int]) -> Sample:
    """The servers' CPU and RSS, the machine's busy time and the load generator's CPU."""
    times = [cpu_times(p) for p in server_pids]
    return Sample(
        cpu=sum(u + s for u, s in times),
        sys=sum(s for _, s in times),
        rss=sum(rss_bytes(p) for p in server_pids),
        machine=machine_busy_seconds(),
        others=sum(cpu_seconds(p) for p in helper_pids),
    )
