"""The ``/v1/status`` pacer on a fake clock: periodic pushes, coalesced requests, floods."""

from __future__ import annotations

from streamasr.actors.frontdoors.status_feed import StatusPacer


def test_pushes_every_period_when_nothing_is_asked() -> None:
    p = StatusPacer(period_s=1.0, min_interval_s=0.25)
    assert p.due(0.0)  # the first push goes out at once
    p.sent(0.0)
    assert not p.due(0.99)
    assert p.due(1.0) and p.next_s() == 1.0


def test_requests_between_replies_are_coalesced_into_one() -> None:
    p = StatusPacer(period_s=1.0, min_interval_s=0.25, burst=10)
    p.sent(0.0)
    for i in range(5):
        assert p.request(0.01 * (i + 1))
    assert p.pending and p.next_s() == 0.25  # one reply owed, no sooner than 0.25 s
    assert not p.due(0.2)
    assert p.due(0.25)
    p.sent(0.25)
    assert not p.pending and p.next_s() == 1.25  # five requests, one reply


def test_a_request_long_after_the_last_reply_is_answered_at_once() -> None:
    p = StatusPacer(period_s=1.0, min_interval_s=0.25)
    p.sent(0.0)
    assert p.request(0.6)
    assert p.due(0.6)


def test_requests_beyond_the_bucket_are_a_flood() -> None:
    p = StatusPacer(burst=10, refill_per_s=4.0)
    assert all(p.request(0.0) for _ in range(10))
    assert not p.request(0.0)  # the 11th at once
    assert p.request(0.25)  # one token back after 0.25 s at 4/s
    assert not p.request(0.25)


def test_a_steady_client_within_the_refill_rate_is_never_a_flood() -> None:
    p = StatusPacer(burst=10, refill_per_s=4.0)
    assert all(p.request(0.25 * i) for i in range(1000))  # 4 requests/s for 250 s


def test_replies_over_2000_quick_requests_are_bounded_by_time() -> None:
    p = StatusPacer(period_s=1.0, min_interval_s=0.25, burst=2000, refill_per_s=0.0)
    replies, now = 0, 0.0
    for _ in range(2000):  # one request every millisecond: 2 s
        assert p.request(now)
        if p.due(now):
            p.sent(now)
            replies += 1
        now += 0.001
    assert replies == 8  # one per 0.25 s, not one per request
