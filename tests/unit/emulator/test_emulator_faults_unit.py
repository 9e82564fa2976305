"""Scripted fault bookkeeping and the token-bucket rate limiter (enlivy_provider.emulator.faults)."""

from __future__ import annotations

import time

import pytest

from enlivy_provider.emulator.faults import FaultBook, RateLimiter


def test_faults_match_method_and_glob_and_are_used_up() -> None:
    book = FaultBook()
    first = book.add({"method": "post", "path": "/organizations/*/invoices", "action": "error", "times": 2})
    assert first.status == 503  # default for "error"
    assert book.take("GET", "/organizations/o/invoices") is None
    assert book.take("POST", "/organizations/o/invoices/x") is None  # fnmatch: '*' does not end the path
    assert book.take("POST", "/organizations/o/invoices") is first
    assert book.take("POST", "/organizations/o/invoices") is first
    assert book.take("POST", "/organizations/o/invoices") is None
    assert book.list()[0]["hits"] == 2 and book.list()[0]["times"] == 0


def test_first_matching_fault_wins_and_star_matches_any_method() -> None:
    book = FaultBook()
    book.add({"method": "*", "path": "/a*", "action": "delay", "delay_ms": 5})
    book.add({"method": "GET", "path": "/a", "action": "rate_limit"})
    assert [f.action for f in (book.take("DELETE", "/ab"), book.take("GET", "/a"))] == ["delay", "rate_limit"]
    book.clear()
    assert book.list() == []


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"path": "/x", "action": "boom"}, "action"),
        ({"path": "x", "action": "error"}, "path"),
        ({"path": "/x", "action": "error", "status": 302}, "status"),
        ({"path": "/x", "action": "rate_limit", "retry_after": -1}, "retry_after"),
        ({"path": "/x", "action": "delay", "delay_ms": "slow"}, "delay_ms"),
        ({"path": "/x", "action": "error", "times": 0}, "times"),
    ],
)
def test_bad_fault_specs(spec: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError) as caught:
        FaultBook().add(spec)
    assert field in caught.value.args[0]


def test_rate_limiter_allows_a_burst_then_asks_to_wait() -> None:
    limiter = RateLimiter(2)
    assert [limiter.acquire() for _ in range(3)] == [None, None, 1]
    time.sleep(0.55)
    assert limiter.acquire() is None
    assert RateLimiter(None).acquire() is None
    slow = RateLimiter(0.25)
    assert slow.acquire() is None
    assert slow.acquire() == 4  # one request per 4 s
