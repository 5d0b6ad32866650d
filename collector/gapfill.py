"""Gap fill: fetch a channel's recent messages after a gap, retrying with jittered backoff.

After a lost connection (or a collector restart) the pipeline asks the recent-messages
service for what the channel said meanwhile (docs/architecture.md, "The flow of one chat
message"); the unique key drops what was stored already.  The retry policy is a value, so
tests can set its waits to zero.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
import tenacity

from collector import irc

__all__ = ["GapFillPolicy", "fetch_recent"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GapFillPolicy:
    """How gap fill asks: ``attempts`` tries of ``timeout_s`` each, waiting between them a
    random time in ``[0, min(max_s, initial_s * 2**n)]`` (tenacity's
    ``wait_random_exponential``, "full jitter", as the sources' reconnect does)."""

    attempts: int = 3
    initial_s: float = 1.0
    max_s: float = 4.0
    timeout_s: float = 10.0


async def fetch_recent(
    http: httpx.AsyncClient, url: str, policy: GapFillPolicy, *, channel: str
) -> list[str] | None:
    """The IRC lines the recent-messages service at ``url`` holds, or None when every
    attempt failed (an HTTP error or a body that is not recent-messages JSON; each failure is
    logged as a warning).  Other errors are raised."""

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "gap fill failed",
            extra={"channel": channel, "attempt": state.attempt_number, "error": str(error)},
        )

    retrying = tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception_type((httpx.HTTPError, irc.IrcParseError)),
        stop=tenacity.stop_after_attempt(policy.attempts),
        wait=tenacity.wait_random_exponential(multiplier=policy.initial_s, max=policy.max_s),
        before_sleep=before_sleep,
    )
    try:
        async for attempt in retrying:
            with attempt:
                resp = await http.get(url, timeout=policy.timeout_s)
                return irc.parse_recent_messages(resp.text)
    except tenacity.RetryError as exc:
        error = exc.last_attempt.exception()
        log.warning(
            "gap fill failed",
            extra={"channel": channel, "attempt": policy.attempts, "error": str(error)},
        )
    return None
