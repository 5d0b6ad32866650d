"""Unit tests for collector.emotes: provider parsing, precedence, matching, emoji, caching."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from typing import Any

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from collector.emotes import (
    BTTV_CHANNEL_URL,
    BTTV_GLOBAL_URL,
    PRECEDENCE_SEVENTV_FIRST,
    SEVENTV_GLOBAL_URL,
    SEVENTV_SET_URL,
    Emote,
    EmoteFormatError,
    EmoteProviders,
    EmoteSet,
    _match_emoji,
    default_fetch_json_factory,
    find_emoji,
    merge_emotes,
    parse_7tv_set,
    parse_bttv_channel,
    parse_bttv_global,
    parse_ffz_channel,
    parse_ffz_global,
)
from collector.events import EmoteUse
from collector.irc import parse_recent_messages
from tests.emote_fetch import CHANNEL, FakeFetch
from tests.emote_fetch import provider_responses as _responses
from tests.paths import NYMN, NYMN_RECENT
from tests.plugins.http import NYMN_ID

FIXTURES = NYMN


# ----------------------------------------------------------------------------- fixture helpers


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text("utf-8"))


def _native_from_tags(tags: str, text: str) -> tuple[EmoteUse, ...]:
    # Minimal local reading of the IRC emotes tag (id:start-end,…/…; code point offsets), so this
    # test does not depend on collector/irc.py.
    value = next((kv[7:] for kv in tags.lstrip("@").split(";") if kv.startswith("emotes=")), "")
    uses = []
    for part in filter(None, value.split("/")):
        emote_id, _, ranges = part.partition(":")
        spans = [r.split("-") for r in ranges.split(",")]
        uses.append(
            EmoteUse(emote_id, text[int(spans[0][0]) : int(spans[0][1]) + 1], "twitch", len(spans))
        )
    return tuple(uses)


def _privmsgs() -> list[tuple[str, tuple[EmoteUse, ...]]]:
    # The trailing parameter starts with ':' only when needed: 339 one-word messages in this
    # sample come as "PRIVMSG #nymn forsenParty", so split on the command and drop one ':'.
    out = []
    for line in _load("recentmessages-nymn.json")["messages"]:
        head, sep, text = line.partition(" PRIVMSG #nymn ")
        if sep:
            text = text.removeprefix(":")
            out.append((text, _native_from_tags(head.split(" ", 1)[0], text)))
    return out


@pytest.fixture(scope="module")
def nymn_user() -> Any:
    return _load("seventvemotes-nymn.json")


@pytest.fixture(scope="module")
def nymn_set(nymn_user: Any) -> EmoteSet:
    return EmoteSet(parse_7tv_set(nymn_user))


def _count(uses: list[EmoteUse], provider: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for use in uses:
        if use.provider == provider:
            counts[use.emote_name] += use.count
    return counts


# ----------------------------------------------------------------------------- real sample


def test_7tv_counts_match_independent_parser_on_nymn_sample(nymn_set: EmoteSet) -> None:
    # derived_stats.json counts every whitespace-separated word that is a 7TV name, ignoring the
    # native emotes tag; match() without native emotes must give exactly the same numbers.
    expected = _load("derived_stats.json")["top_7tv_emotes"]
    uses = [u for text, _ in _privmsgs() for u in nymn_set.match(text)]
    counts = _count(uses, "7tv")
    assert [[name, counts[name]] for name, _ in expected] == expected
    assert counts["EDM"] == 2528
    assert counts["forsenParty"] == 2503


def test_native_twitch_emotes_take_their_words_from_7tv(nymn_set: EmoteSet) -> None:
    # forsenParty is both forsen's Twitch sub emote and a 7TV emote in #nymn: the 915 uses the
    # emotes tag marks are Twitch uses, the other 1588 are 7TV ones.  Same for forsenPossessed.
    derived = _load("derived_stats.json")
    messages = _privmsgs()
    native = _count([u for _, n in messages for u in n], "twitch")
    assert native["forsenParty"] == dict(derived["top_native_emotes"])["forsenParty"] == 915
    seventv = _count([u for t, n in messages for u in nymn_set.match(t, n)], "7tv")
    assert seventv["forsenParty"] == 2503 - 915
    assert seventv["forsenPossessed"] == 20 - 19
    assert seventv["EDM"] == 2528  # nymnEDM is native, EDM is not: untouched


def test_7tv_set_parses_aliases_zero_width_and_duplicates(nymn_user: Any) -> None:
    emotes = parse_7tv_set(nymn_user)
    assert len(emotes) == 837  # every entry of the real set is usable
    by_name = EmoteSet(emotes)
    assert len(by_name) == 836  # NOkey is in the set twice
    # The channel alias is what chatters type; the original name is not an emote here.
    assert by_name["TimeToNime"].id == "6329beb61c85cd937753ec61"
    assert "Nidea" not in by_name
    # Zero-width follows the set entry's bit 0 (36 entries carry it).
    assert by_name["RaveTime"].zero_width is True
    assert by_name["EDM"].zero_width is False
    assert sum(e.zero_width for e in emotes) == 36
    assert by_name["EDM"] == Emote("633dd7eba855bd5c6ce87a37", "EDM", "7tv", False)


def test_7tv_user_and_bare_set_parse_the_same(nymn_user: Any) -> None:
    assert parse_7tv_set(nymn_user) == parse_7tv_set(nymn_user["emote_set"])
    assert parse_7tv_set({"id": "x", "emote_set": None}) == []


def test_7tv_skips_twitch_disallowed_and_bad_entries_and_falls_back_to_data_flag() -> None:
    data = {
        "emotes": [
            {"id": "a", "name": "Ok", "flags": 0, "data": {"flags": 0}},
            {"id": "b", "name": "Banned", "flags": 0, "data": {"flags": 1 << 24}},
            {"id": "c", "name": "Overlay", "data": {"flags": 1 << 8}},  # no entry flags
            {"id": "d", "name": "NotZw", "flags": 0, "data": {"flags": 1 << 8}},
            {"name": "NoId"},
            {"id": "e", "name": "has space"},
            {"id": "f"},
            "garbage",
        ]
    }
    assert parse_7tv_set(data) == [
        Emote("a", "Ok", "7tv"),
        Emote("c", "Overlay", "7tv", zero_width=True),
        Emote("d", "NotZw", "7tv", zero_width=False),
    ]


@pytest.mark.parametrize("garbage", [None, "nope", [], {"error": "not found"}, {"emotes": 3}])
def test_7tv_garbage_raises_format_error(garbage: Any) -> None:
    with pytest.raises(EmoteFormatError):
        parse_7tv_set(garbage)


# ----------------------------------------------------------------------------- BTTV, FFZ


def test_bttv_parsing_keeps_channel_and_shared_and_flags_hardcoded_zero_width() -> None:
    global_data = [
        {"id": "54fa8f1401e468494b85b537", "code": ":tf:", "imageType": "png"},
        {"id": "5849c9a4f52be01a7ee5f79d", "code": "IceCold", "imageType": "png"},
        {"code": "NoId"},
        42,
    ]
    assert parse_bttv_global(global_data) == [
        Emote("54fa8f1401e468494b85b537", ":tf:", "bttv"),
        Emote("5849c9a4f52be01a7ee5f79d", "IceCold", "bttv", zero_width=True),
    ]
    channel = {
        "id": "u",
        "channelEmotes": [{"id": "c1", "code": "OwnEmote", "userId": "u"}],
        "sharedEmotes": [{"id": "s1", "code": "catJAM", "user": {"id": "x"}}],
    }
    assert [e.name for e in parse_bttv_channel(channel)] == ["OwnEmote", "catJAM"]
    assert parse_bttv_channel({"channelEmotes": []}) == []
    with pytest.raises(EmoteFormatError):
        parse_bttv_channel({"message": "user not found"})
    with pytest.raises(EmoteFormatError):
        parse_bttv_global({"message": "oops"})


def test_ffz_global_uses_only_default_sets_and_int_ids_become_strings() -> None:
    data = {
        "default_sets": [3],
        "sets": {
            "3": {"id": 3, "emoticons": [{"id": 25927, "name": "CatBag"}, {"name": "x"}]},
            "4330": {"id": 4330, "emoticons": [{"id": 1, "name": "NotDefault"}]},
        },
    }
    assert parse_ffz_global(data) == [Emote("25927", "CatBag", "ffz")]
    with pytest.raises(EmoteFormatError):
        parse_ffz_global({"default_sets": [3]})


def test_ffz_channel_reads_every_set_and_modifier_flag_and_proxy_shape() -> None:
    data = {
        "room": {"set": 1},
        "sets": {
            "1": {"emoticons": [{"id": 10, "name": "OMEGALUL"}]},
            "2": {"emoticons": [{"id": 11, "name": "ffzWide", "modifier": True}]},
        },
    }
    assert parse_ffz_channel(data) == [
        Emote("10", "OMEGALUL", "ffz"),
        Emote("11", "ffzWide", "ffz", zero_width=True),
    ]
    proxy = [{"id": 12, "code": "monkaW", "modifier": False}]
    assert parse_ffz_channel(proxy) == [Emote("12", "monkaW", "ffz")]
    with pytest.raises(EmoteFormatError):
        parse_ffz_channel("<html>502</html>")


# ----------------------------------------------------------------------------- precedence


def _clash_layers() -> dict[Any, list[Emote]]:
    return {
        ("global", "7tv"): [Emote("g7", "Clash", "7tv"), Emote("g7b", "OnlyGlobal", "7tv")],
        ("global", "bttv"): [Emote("gb", "Clash", "bttv")],
        ("global", "ffz"): [Emote("gf", "Clash", "ffz"), Emote("gf2", "GlobalClash", "ffz")],
        ("channel", "7tv"): [Emote("c7", "Clash", "7tv"), Emote("c7b", "GlobalClash", "7tv")],
        ("channel", "bttv"): [Emote("cb", "Clash", "bttv"), Emote("cb2", "BttvVs7tv", "bttv")],
        ("channel", "ffz"): [Emote("cf", "Clash", "ffz")],
    }


def test_default_precedence_is_chatterinos_channel_first_then_ffz_bttv_7tv() -> None:
    layers = _clash_layers()
    layers[("channel", "7tv")].append(Emote("c7c", "BttvVs7tv", "7tv"))
    emotes = EmoteSet.layered(layers)
    assert emotes["Clash"].id == "cf"  # FFZ channel first, as Chatterino's tryAppendEmote
    assert emotes["GlobalClash"].id == "c7b"  # any channel set beats any global set
    assert emotes["BttvVs7tv"].id == "cb2"
    assert emotes["OnlyGlobal"].id == "g7b"


def test_seventv_first_precedence_prefers_7tv_then_bttv_then_ffz() -> None:
    layers = _clash_layers()
    emotes = EmoteSet.layered(layers, PRECEDENCE_SEVENTV_FIRST)
    assert emotes["Clash"].id == "c7"
    assert emotes["GlobalClash"].id == "c7b"
    del layers[("channel", "7tv")]
    assert EmoteSet.layered(layers, PRECEDENCE_SEVENTV_FIRST)["Clash"].id == "cb"
    del layers[("channel", "bttv")], layers[("channel", "ffz")]
    assert EmoteSet.layered(layers, PRECEDENCE_SEVENTV_FIRST)["Clash"].id == "g7"


# ----------------------------------------------------------------------------- matching


def test_match_counts_whole_case_sensitive_words_in_first_appearance_order() -> None:
    emotes = EmoteSet([Emote("1", "KEKW", "ffz"), Emote("2", "catJAM", "bttv")])
    assert emotes.match("catJAM KEKW\tkekw KEKW! KEKWW catJAM  catJAM") == (
        EmoteUse("2", "catJAM", "bttv", 3),
        EmoteUse("1", "KEKW", "ffz", 1),
    )
    assert emotes.match("nothing here") == ()
    assert emotes.match("") == ()


def test_match_lets_native_emote_counts_win_per_occurrence() -> None:
    emotes = EmoteSet([Emote("7", "forsenParty", "7tv")])
    native = (EmoteUse("300", "forsenParty", "twitch", 2),)
    assert emotes.match("forsenParty forsenParty forsenParty", native) == (
        EmoteUse("7", "forsenParty", "7tv", 1),
    )
    assert emotes.match("forsenParty forsenParty", native) == ()


def test_match_appends_emoji_after_third_party_emotes() -> None:
    emotes = EmoteSet([Emote("1", "EDM", "7tv")])
    assert emotes.match("😂 EDM 😂\U000e0000 EDM") == (
        EmoteUse("1", "EDM", "7tv", 2),
        EmoteUse("1f602", "😂", "emoji", 2),
    )


def test_merge_emotes_keeps_native_first_and_sums_same_emote() -> None:
    native = (EmoteUse("25", "Kappa", "twitch", 1),)
    third = (EmoteUse("a", "EDM", "7tv", 2), EmoteUse("25", "Kappa", "twitch", 1))
    assert merge_emotes(native, third) == (
        EmoteUse("25", "Kappa", "twitch", 2),
        EmoteUse("a", "EDM", "7tv", 2),
    )
    assert merge_emotes((), third) == third
    assert merge_emotes(native, ()) == native


# ----------------------------------------------------------------------------- emoji


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lol 😂😂", [("1f602", "😂", 2)]),
        # ZWJ family is one emoji, not four
        ("👨‍👩‍👧‍👦", [("1f468-200d-1f469-200d-1f467-200d-1f466", "👨‍👩‍👧‍👦", 1)]),
        # skin tone modifiers stay attached, and a toned thumb differs from a plain one
        ("👍🏽👍", [("1f44d-1f3fd", "👍🏽", 1), ("1f44d", "👍", 1)]),
        ("🧑🏿‍🚀", [("1f9d1-1f3ff-200d-1f680", "🧑🏿‍🚀", 1)]),
        ("☝🏻", [("261d-1f3fb", "☝🏻", 1)]),
        # flags: regional-indicator pairs, and tag sequences (England)
        ("🇺🇸🇬🇧", [("1f1fa-1f1f8", "🇺🇸", 1), ("1f1ec-1f1e7", "🇬🇧", 1)]),
        (
            "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
            [("1f3f4-e0067-e0062-e0065-e006e-e0067-e007f", None, 1)],
        ),
        # keycaps, with or without the variation selector, are one emoji with one id
        ("1️⃣ 1⃣ #️⃣", [("31-20e3", "1️⃣", 2), ("23-20e3", "#️⃣", 1)]),
        # variation selectors: VS16 makes a text symbol an emoji; the id ignores it
        ("❤️ ❤", [("2764", "❤️", 1)]),
        ("🕊️ 🕊", [("1f54a", "🕊", 2)]),
        ("❤️‍🔥", [("2764-200d-1f525", "❤️‍🔥", 1)]),
        ("👨‍⚕", [("1f468-200d-2695", "👨‍⚕️", 1)]),
        # not emoji: text-default symbols, braille art, U+E0000 duplicate-bypass, VS15, lone RI
        ("© ™ ⣿⣿⣀ \U000e0000 ⌚︎ 🇺 — plain", []),
    ],
)
def test_emoji_sequences_count_as_one_emoji(
    text: str, expected: list[tuple[str, str | None, int]]
) -> None:
    got = [(u.emote_id, u.emote_name, u.count) for u in find_emoji(text)]
    assert [(i, c) for i, _, c in got] == [(i, c) for i, _, c in expected]
    for (_, name, _), (_, want, _) in zip(got, expected, strict=True):
        if want is not None:
            assert name == want
    assert all(u.provider == "emoji" for u in find_emoji(text))


# Characters around the edges of what an emoji is made of, and others, for the property below.
_EMOJI_EDGE_CHARS = st.sampled_from(
    [
        *"aZ1#*- \u00e9\u00a9\u00ae\u2122\u2194\u2600\u27bf\u2764\u2b50\u3030",
        *"\ufe0f\ufe0e\u200d\u20e3\U000e0000\U000e0067\U000e007f\u2800\u28ff",
        *"\U0001f1e6\U0001f1fa\U0001f1ff\U0001f3fb\U0001f3ff\U0001f300\U0001f64f",
        *"\U0001f468\U0001f525\U0001f54a\U0001f9ff\U0001faff\U0001f004",
    ]
)


@settings(max_examples=500, deadline=None)
@example("1\u20e3")  # a keycap: its base is ASCII
@example("\U0001f1fa\U0001f1f8")  # a flag
@example("\u2764\ufe0f")  # a text-default symbol made emoji
@given(st.text(alphabet=_EMOJI_EDGE_CHARS, max_size=10) | st.text(max_size=10))
def test_emoji_character_test_never_hides_an_emoji(text: str) -> None:
    assert find_emoji(text) == _match_emoji(text)


def test_emoji_character_test_agrees_on_real_chat() -> None:
    texts = [line.rsplit(" :", 1)[-1] for line in parse_recent_messages(NYMN_RECENT.read_text())]
    with_emoji = [t for t in texts if _match_emoji(t)]
    assert len(with_emoji) > 10
    assert [find_emoji(t) for t in texts] == [_match_emoji(t) for t in texts]


# ----------------------------------------------------------------------------- providers


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_refresh_loads_global_and_channel_sets_by_room_id() -> None:
    fetch = FakeFetch(_responses())
    providers = EmoteProviders(fetch)
    assert len(providers.current(CHANNEL)) == 0  # nothing loaded yet, and no blocking
    emotes = await providers.refresh(CHANNEL)
    assert {n: e.provider for n, e in emotes.items()} == {
        "forsenE": "bttv",
        "forsenParty": "7tv",  # from the full set, not the embedded one
        "FeelsBirthdayMan": "bttv",
        "ZrehplaR": "ffz",
        "EZ": "7tv",
    }
    assert providers.current(CHANNEL) is emotes
    assert set(fetch.calls) == set(_responses())
    # another channel shares the globals without refetching them
    await providers.refresh("1")
    assert fetch.calls.count(BTTV_GLOBAL_URL) == 1


async def test_nymn_7tv_set_through_providers_matches_the_sample(nymn_user: Any) -> None:
    providers = EmoteProviders(FakeFetch(_responses(nymn_user)))
    emotes = await providers.refresh(NYMN_ID)
    assert emotes["RaveTime"].zero_width is True
    assert emotes.match("forsenParty EDM forsenParty") == (
        EmoteUse("60ae55800e35477634f878fd", "forsenParty", "7tv", 2),
        EmoteUse("633dd7eba855bd5c6ce87a37", "EDM", "7tv", 1),
    )


async def test_7tv_set_fetch_failure_falls_back_to_embedded_set() -> None:
    responses = _responses()
    responses[SEVENTV_SET_URL.format(set_id="set1")] = TimeoutError("slow")
    emotes = await EmoteProviders(FakeFetch(responses)).refresh(CHANNEL)
    assert emotes["Embedded"].id == "old"
    assert "forsenParty" not in emotes


@pytest.mark.parametrize(
    "failure",
    [ConnectionError("down"), "<html>502 Bad Gateway</html>", {"message": "internal"}, 17],
)
async def test_failing_or_garbage_provider_keeps_last_good_set_and_warns(
    failure: Any, caplog: pytest.LogCaptureFixture
) -> None:
    responses = _responses()
    fetch = FakeFetch(responses)
    providers = EmoteProviders(fetch)
    before = await providers.refresh(CHANNEL)
    responses[BTTV_CHANNEL_URL.format(channel_id=CHANNEL)] = failure
    responses[SEVENTV_GLOBAL_URL] = failure
    with caplog.at_level(logging.WARNING, logger="collector.emotes"):
        after = await providers.refresh(CHANNEL, force=True)
    assert dict(after) == dict(before)
    assert after["forsenE"].provider == "bttv"
    warned = {(r.emote_provider, r.channel_id) for r in caplog.records}  # type: ignore[attr-defined]
    assert warned == {("bttv", CHANNEL), ("7tv", "global")}


async def test_everything_down_from_the_start_gives_empty_set_without_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    providers = EmoteProviders(FakeFetch({}))
    with caplog.at_level(logging.WARNING, logger="collector.emotes"):
        emotes = await providers.refresh(CHANNEL)
    assert len(emotes) == 0
    assert emotes.match("forsenE 😂") == (EmoteUse("1f602", "😂", "emoji", 1),)
    assert len(caplog.records) == 6  # 3 global + 3 channel sets


async def test_404_empties_a_channel_set_that_existed() -> None:
    responses = _responses()
    providers = EmoteProviders(FakeFetch(responses))
    assert "forsenE" in await providers.refresh(CHANNEL)
    responses[BTTV_CHANNEL_URL.format(channel_id=CHANNEL)] = None  # channel left BTTV
    assert "forsenE" not in await providers.refresh(CHANNEL, force=True)


async def test_ttl_refetches_only_after_expiry_and_picks_up_changes() -> None:
    responses = _responses()
    fetch = FakeFetch(responses)
    clock = FakeClock()
    providers = EmoteProviders(fetch, ttl_s=3600, clock=clock)
    await providers.refresh(CHANNEL)
    calls = len(fetch.calls)
    responses[BTTV_CHANNEL_URL.format(channel_id=CHANNEL)] = {
        "channelEmotes": [{"id": "new", "code": "forsenNew"}]
    }
    clock.now += 3599
    assert "forsenNew" not in await providers.refresh(CHANNEL)
    assert len(fetch.calls) == calls  # still fresh: nothing fetched
    clock.now += 2
    emotes = await providers.refresh(CHANNEL)
    assert "forsenNew" in emotes and "forsenE" not in emotes
    assert len(fetch.calls) == calls + 7  # 6 sets, 7TV channel is user + set


async def test_failed_fetch_is_retried_after_retry_interval_not_every_call() -> None:
    responses = _responses()
    responses[BTTV_GLOBAL_URL] = ConnectionError("down")
    fetch = FakeFetch(responses)
    clock = FakeClock()
    providers = EmoteProviders(fetch, ttl_s=3600, retry_s=60, clock=clock)
    await providers.refresh(CHANNEL)
    await providers.refresh(CHANNEL)
    assert fetch.calls.count(BTTV_GLOBAL_URL) == 1
    responses[BTTV_GLOBAL_URL] = [{"id": "bg", "code": "FeelsBirthdayMan"}]
    clock.now += 61
    assert "FeelsBirthdayMan" in await providers.refresh(CHANNEL)
    assert fetch.calls.count(BTTV_GLOBAL_URL) == 2


async def test_concurrent_refreshes_share_one_fetch_per_set() -> None:
    fetch = FakeFetch(_responses())
    providers = EmoteProviders(fetch)
    results = await asyncio.gather(*(providers.refresh(CHANNEL) for _ in range(5)))
    assert all("forsenE" in r for r in results)
    assert fetch.calls.count(BTTV_CHANNEL_URL.format(channel_id=CHANNEL)) == 1


async def test_default_fetch_json_maps_404_to_none_and_raises_on_server_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/missing"):
            return httpx.Response(404, json={"message": "user not found"})
        if request.url.path.endswith("/broken"):
            return httpx.Response(502, text="bad gateway")
        return httpx.Response(200, json=[{"id": "a", "code": "B"}])

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        fetch = default_fetch_json_factory(client)
        assert await fetch("https://api.example/ok") == [{"id": "a", "code": "B"}]
        assert await fetch("https://api.example/missing") is None
        with pytest.raises(httpx.HTTPStatusError):
            await fetch("https://api.example/broken")
