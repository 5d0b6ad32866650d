"""Backoff with jitter, through tenacity: one rule for how long to wait before trying again.

A wait is a tenacity wait strategy (a value, so callers and tests can pass their own);
:func:`wait_seconds` evaluates one for a given attempt where the retry is not a tenacity loop
(a clip job's next try is a time stored in ``chat.clips.not_before``; the recorder waits with
:func:`chatpulse.core.waiting.wait_or_stop` so that it stops at once).
"""

from __future__ import annotations

import tenacity
from tenacity.wait import wait_base

__all__ = ["retry_wait", "wait_seconds"]


def retry_wait(initial_s: float, max_s: float) -> wait_base:
    """Exponential backoff with jitter for work that failed.

    Before retry ``n`` (1-based) it waits ``initial_s * 2**(n - 1)`` plus a random extra of up
    to ``min(initial_s, max_s / 2)``, and never more than ``max_s`` in all: never sooner than
    plain exponential backoff, and workers that failed together do not retry together.
    """
    jitter = min(initial_s, max_s / 2)
    return tenacity.wait_exponential(multiplier=initial_s, max=max_s - jitter) + (
        tenacity.wait_random(0, jitter)
    )


def wait_seconds(wait: wait_base, attempt: int) -> float:
    """Seconds ``wait`` gives before retry ``attempt`` (1-based, as tenacity counts)."""
    state = tenacity.RetryCallState(tenacity.Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = max(attempt, 1)
    return float(wait(state))
