"""Token buckets (pure: the caller passes the time)."""

from __future__ import annotations

import math


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
        return math.ceil(missing * 1000.0 / self.rate)


class Limiter:
    """Token buckets by key (``"msg:<person>"``, ``"msg-net:<ip key>"``…), created on first use.

    Memory stays bounded: a bucket that has refilled completely is indistinguishable from a new
    one, so once there are more than ``max_keys`` buckets, full ones are dropped.
    """

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, key: str, rate: float, burst: float, now_ms: int, cost: float = 1.0) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._sweep(now_ms)
            bucket = self._buckets[key] = TokenBucket(rate, burst, now_ms)
        return bucket.take(now_ms, cost)

    def retry_after_ms(self, key: str) -> int:
        bucket = self._buckets.get(key)
        return 0 if bucket is None else bucket.retry_after_ms()

    def _sweep(self, now_ms: int) -> None:
        for key, bucket in list(self._buckets.items()):
            bucket.take(now_ms, 0)  # refill
            if bucket.tokens >= bucket.burst:
                del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)
