from __future__ import annotations

import pytest

from causette.safety.ratelimit import Limiter, TokenBucket


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now_ms=0)
    assert [bucket.take(0) for _ in range(4)] == [True, True, True, False]
    assert bucket.retry_after_ms() == 500
    assert not bucket.take(499)
    assert bucket.take(500)
    assert not bucket.take(500)
    # Saving up never exceeds the burst.
    assert [bucket.take(100_000) for _ in range(4)] == [True, True, True, False]


def test_time_going_backwards_gives_nothing() -> None:
    bucket = TokenBucket(rate=1.0, burst=1, now_ms=10_000)
    assert bucket.take(10_000)
    assert not bucket.take(5_000)
    assert not bucket.take(10_500)
    assert bucket.take(11_000)


def test_invalid_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1, now_ms=0)
    with pytest.raises(ValueError):
        TokenBucket(rate=1, burst=0, now_ms=0)


def test_a_limiter_keeps_one_bucket_per_key_and_forgets_full_ones() -> None:
    limiter = Limiter(max_keys=3)
    assert limiter.take("a", 1.0, 1, 0)
    assert not limiter.take("a", 1.0, 1, 0)
    assert limiter.take("b", 1.0, 1, 0)  # another key, another bucket
    assert limiter.retry_after_ms("a") == 1000
    assert limiter.retry_after_ms("unknown") == 0
    assert limiter.take("c", 1.0, 1, 0)
    assert len(limiter) == 3
    # Later, every bucket has refilled: making room for a new key drops full buckets (they are
    # the same as new ones), so memory stays bounded.
    assert limiter.take("d", 1.0, 5, 10_000)
    assert len(limiter) == 1
    # A bucket still limited is never dropped.
    assert not limiter.take("d", 1.0, 5, 10_000, cost=5)
    limiter.take("e", 1.0, 1, 10_000)
    limiter.take("f", 1.0, 1, 10_000)
    limiter.take("g", 1.0, 1, 10_000)
    assert not limiter.take("d", 1.0, 5, 10_000, cost=5)
