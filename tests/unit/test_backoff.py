"""The one backoff rule (chatpulse/core/backoff.py): exponential, jittered, capped."""

from __future__ import annotations

import tenacity

from chatpulse.core.backoff import retry_wait, wait_seconds


def test_retry_waits_never_less_than_exponential_and_never_past_the_cap() -> None:
    wait = retry_wait(0.2, 300.0)
    for attempt in range(1, 15):
        floor = min(0.2 * 2 ** (attempt - 1), 300.0 - 0.2)
        got = [wait_seconds(wait, attempt) for _ in range(50)]
        assert all(floor <= g <= min(floor + 0.2, 300.0) for g in got), (attempt, got)


def test_retry_waits_are_jittered() -> None:
    wait = retry_wait(5.0, 300.0)
    assert len({wait_seconds(wait, 3) for _ in range(20)}) > 1


def test_a_cap_below_the_first_wait_is_kept() -> None:
    wait = retry_wait(5.0, 3.0)
    assert all(1.5 <= wait_seconds(wait, n) <= 3.0 for n in (1, 2, 10))


def test_any_tenacity_wait_can_be_evaluated_and_attempts_count_from_one() -> None:
    assert wait_seconds(tenacity.wait_exponential(multiplier=1), 3) == 4.0
    assert wait_seconds(tenacity.wait_exponential(multiplier=1), 0) == 1.0
