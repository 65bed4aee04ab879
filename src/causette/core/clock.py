"""Clocks: the real one and a controllable one for tests."""

from __future__ import annotations

import time


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class FakeClock:
    def __init__(self, start_ms: int = 1_767_225_600_000) -> None:  # 2026-01-01T00:00:00Z
        self.t = start_ms

    def now_ms(self) -> int:
        return self.t

    def advance(self, *, ms: int = 0, seconds: float = 0, minutes: float = 0) -> None:
        self.t += ms + int(seconds * 1000) + int(minutes * 60_000)
