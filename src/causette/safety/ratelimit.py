"""Token buckets (pure: the caller passes the time)."""

from __future__ import annotations


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up. ``take`` spends one if it can."""

    __slots__ = ("burst", "rate", "stamp_ms", "tokens")

    def __init__(self, rate: float, burst: float, now_ms: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp_ms = now_ms

    def take(self, now_ms: int, cost: float = 1.0) -> bool:
        elapsed = max(0, now_ms - self.stamp_ms)
        self.stamp_ms = max(self.stamp_ms, now_ms)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate / 1000.0)
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def retry_after_ms(self, cost: float = 1.0) -> int:
        """How long until ``cost`` tokens are available."""
        missing = max(0.0, cost - self.tokens)
        return int(missing * 1000.0 / self.rate) + 1
