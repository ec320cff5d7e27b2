"""The pure rules of subscription deliveries: backoff, retryable answers, types, targets."""

from __future__ import annotations

import random

import pytest

from domain.kernel.errors import RuleViolation
from domain.subscriptions import backoff_seconds, retryable, subscribed_type
from domain.subscriptions.errors import check_target_url


def test_backoff_doubles_with_jitter_and_is_capped_at_an_hour():
    jitter = random.Random(7)
    for attempts in range(1, 8):
        wait = backoff_seconds(attempts, 10.0, jitter)
        ceiling = 10.0 * 2 ** (attempts - 1)
        assert ceiling / 2 <= wait <= ceiling
    assert backoff_seconds(40, 10.0, jitter) <= 3600.0


def test_a_longer_retry_after_wins_but_not_past_an_hour():
    jitter = random.Random(1)
    assert backoff_seconds(1, 10.0, jitter, retry_after=120) == 120
    assert backoff_seconds(1, 10.0, jitter, retry_after=86_400) == 3600.0
    assert backoff_seconds(1, 10.0, jitter, retry_after=0) >= 5.0


@pytest.mark.parametrize(
    ("status", "expected"),
    [(500, True), (503, True), (429, True), (404, False), (410, False), (307, False)],
)
def test_only_5xx_and_429_are_retried(status, expected):
    assert retryable(status) is expected


def test_a_finished_run_is_named_by_its_status():
    assert subscribed_type("run.changed", {"status": "failed"}) == "run.failed"
    assert subscribed_type("approval.requested", {}) == "approval.requested"
    assert subscribed_type("approval.decided", {"status": "expired"}) == "approval.expired"
    assert subscribed_type("approval.decided", {"status": "approved"}) == "approval.decided"


def test_private_targets_need_an_entry_public_ones_do_not():
    check_target_url("https://hooks.example.com/x", ())
    check_target_url("http://127.0.0.1:8123/x", ("127.0.0.1:8123",))
    for url in ("http://127.0.0.1:8123/x", "http://[::1]/x", "http://169.254.169.254/x"):
        with pytest.raises(RuleViolation) as caught:
            check_target_url(url, ())
        assert caught.value.pointer == "/url"
