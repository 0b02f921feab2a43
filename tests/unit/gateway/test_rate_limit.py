"""Token buckets: a burst at once, then the sustained rate."""

from services.gateway.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_caller_may_burst_then_must_wait_for_tokens_to_come_back() -> None:
    clock = Clock()
    limiter = RateLimiter(per_second=2, burst=3, clock=clock)

    assert [limiter.retry_after("ann") for _ in range(3)] == [None, None, None]
    assert limiter.retry_after("ann") == 1
    clock.now += 0.5
    assert limiter.retry_after("ann") is None
    assert limiter.retry_after("ann") == 1


def test_callers_have_buckets_of_their_own() -> None:
    limiter = RateLimiter(per_second=1, burst=1, clock=Clock())
    assert limiter.retry_after("ann") is None
    assert limiter.retry_after("ann") == 1
    assert limiter.retry_after("bo") is None


def test_a_slow_rate_asks_for_a_longer_wait() -> None:
    limiter = RateLimiter(per_second=0.1, burst=1, clock=Clock())
    limiter.retry_after("ann")
    assert limiter.retry_after("ann") == 10


def test_a_bucket_never_holds_more_than_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(per_second=100, burst=2, clock=clock)
    clock.now += 3600
    assert [limiter.retry_after("ann") for _ in range(3)] == [None, None, 1]


def test_waiting_tells_how_long_without_taking_a_token() -> None:
    clock = Clock()
    limiter = RateLimiter(per_second=1, burst=1, clock=clock)

    assert limiter.waiting("ann") is None
    assert limiter.waiting("ann") is None
    assert limiter.retry_after("ann") is None
    assert limiter.waiting("ann") == 1
    clock.now += 1
    assert limiter.waiting("ann") is None
    assert limiter.retry_after("ann") is None
