"""Canned emote provider answers for collector.emotes tests: no network, no files."""

from __future__ import annotations

import asyncio
from typing import Any

from collector.emotes import (
    BTTV_CHANNEL_URL,
    BTTV_GLOBAL_URL,
    FFZ_CHANNEL_URL,
    FFZ_GLOBAL_URL,
    SEVENTV_GLOBAL_URL,
    SEVENTV_SET_URL,
    SEVENTV_USER_URL,
)
from tests.plugins.http import NYMN_ID

__all__ = ["CHANNEL", "FakeFetch", "provider_responses"]


class FakeFetch:
    """Serves canned answers per URL: a value (None = 404) or an exception to raise."""

    def __init__(self, responses: dict[str, Any]) -> None:
        self.responses = responses
        self.calls: list[str] = []

    async def __call__(self, url: str) -> Any:
        self.calls.append(url)
        await asyncio.sleep(0)
        if url not in self.responses:
            raise ConnectionError(f"no route to {url}")
        answer = self.responses[url]
        if isinstance(answer, BaseException):
            raise answer
        return answer


#: The room id the canned channel sets belong to (forsen).
CHANNEL = "22484632"


def provider_responses(nymn_user: Any | None = None) -> dict[str, Any]:
    responses: dict[str, Any] = {
        BTTV_GLOBAL_URL: [{"id": "bg", "code": "FeelsBirthdayMan"}],
        FFZ_GLOBAL_URL: {
            "default_sets": [3],
            "sets": {"3": {"emoticons": [{"id": 1, "name": "ZrehplaR"}]}},
        },
        SEVENTV_GLOBAL_URL: {"id": "global", "emotes": [{"id": "7g", "name": "EZ", "flags": 0}]},
        BTTV_CHANNEL_URL.format(channel_id=CHANNEL): {
            "channelEmotes": [{"id": "bc", "code": "forsenE"}],
            "sharedEmotes": [],
        },
        FFZ_CHANNEL_URL.format(channel_id=CHANNEL): None,  # 404: no FFZ room
        SEVENTV_USER_URL.format(channel_id=CHANNEL): {
            "id": CHANNEL,
            "emote_set": {"id": "set1", "emotes": [{"id": "old", "name": "Embedded"}]},
        },
        SEVENTV_SET_URL.format(set_id="set1"): {
            "id": "set1",
            "emotes": [{"id": "7c", "name": "forsenParty", "flags": 0}],
        },
    }
    if nymn_user is not None:
        responses[SEVENTV_USER_URL.format(channel_id=NYMN_ID)] = nymn_user
        set_id = nymn_user["emote_set"]["id"]
        responses[SEVENTV_SET_URL.format(set_id=set_id)] = nymn_user["emote_set"]
        responses[BTTV_CHANNEL_URL.format(channel_id=NYMN_ID)] = None
        responses[FFZ_CHANNEL_URL.format(channel_id=NYMN_ID)] = None
    return responses
