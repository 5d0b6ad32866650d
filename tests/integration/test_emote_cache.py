"""collector.emotes' disk cache: the last good sets survive a restart with the providers down."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from collector.emotes import BTTV_CHANNEL_URL, EmoteProviders
from collector.events import EmoteUse
from tests.emote_fetch import CHANNEL, FakeFetch
from tests.emote_fetch import provider_responses as _responses


async def test_disk_cache_serves_last_good_sets_after_restart_with_providers_down(
    tmp_path: Path,
) -> None:
    first = EmoteProviders(FakeFetch(_responses()), cache_dir=tmp_path)
    online = await first.refresh(CHANNEL)
    assert (tmp_path / f"bttv-channel-{CHANNEL}.json").exists()
    assert (tmp_path / "7tv-global.json").exists()

    restarted = EmoteProviders(FakeFetch({}), cache_dir=tmp_path)
    offline = await restarted.refresh(CHANNEL)
    assert dict(offline) == dict(online)
    assert offline.match("forsenE forsenParty") == (
        EmoteUse("bc", "forsenE", "bttv", 1),
        EmoteUse("7c", "forsenParty", "7tv", 1),
    )


async def test_corrupt_cache_file_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / f"bttv-channel-{CHANNEL}.json").write_text("{not json", "utf-8")
    (tmp_path / "ffz-global.json").write_text(json.dumps({"version": 99}), "utf-8")
    providers = EmoteProviders(FakeFetch({}), cache_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="collector.emotes"):
        emotes = await providers.refresh(CHANNEL)
    assert len(emotes) == 0
    assert any(r.getMessage() == "emote cache file unreadable; ignoring it" for r in caplog.records)


async def test_odd_channel_id_is_quoted_in_urls_and_never_used_as_a_cache_path(
    tmp_path: Path,
) -> None:
    responses = _responses()
    odd = "../../etc"
    url = BTTV_CHANNEL_URL.format(channel_id="..%2F..%2Fetc")
    responses[url] = {"channelEmotes": [{"id": "x", "code": "Y"}]}
    fetch = FakeFetch(responses)
    providers = EmoteProviders(fetch, cache_dir=tmp_path / "cache")
    assert "Y" in await providers.refresh(odd)
    assert url in fetch.calls
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        "7tv-global.json",
        "bttv-global.json",
        "ffz-global.json",
    ]
