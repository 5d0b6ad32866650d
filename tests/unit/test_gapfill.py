"""Gap fill asks the recent-messages service again after a failure, and gives up after the
policy's attempts (collector/gapfill.py).  httpx's MockTransport answers in memory: no I/O."""

from __future__ import annotations

import httpx

from collector.gapfill import GapFillPolicy, fetch_recent

NO_WAIT = GapFillPolicy(attempts=3, initial_s=0, max_s=0)
BODY = '{"messages": ["@a=b :x!x@x PRIVMSG #c :hi"], "error": null, "error_code": null}'


def _client(answers: list[httpx.Response | Exception], calls: list[str]) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


async def test_gap_fill_retries_until_the_service_answers() -> None:
    calls: list[str] = []
    answers: list[httpx.Response | Exception] = [
        httpx.ConnectError("refused"),
        httpx.Response(200, text="not json"),
        httpx.Response(200, text=BODY),
    ]
    async with _client(answers, calls) as http:
        lines = await fetch_recent(http, "http://rm/c", NO_WAIT, channel="c")
    assert lines == ["@a=b :x!x@x PRIVMSG #c :hi"]
    assert len(calls) == 3


async def test_gap_fill_gives_up_after_the_policys_attempts() -> None:
    calls: list[str] = []
    answers: list[httpx.Response | Exception] = [httpx.ConnectError("refused")] * 5
    async with _client(answers, calls) as http:
        lines = await fetch_recent(http, "http://rm/c", NO_WAIT, channel="c")
    assert lines is None
    assert len(calls) == 3
