"""Third-party emotes (BTTV, FFZ, 7TV) and emoji: parse provider sets, match them in messages.

Three layers, from pure to I/O:

* ``parse_*`` turn one decoded provider response into ``list[Emote]`` (pure, no I/O).
* :class:`EmoteSet` is an immutable name -> :class:`Emote` mapping with a fast
  :meth:`EmoteSet.match` that runs on every message and also extracts Unicode emoji.
* :class:`EmoteProviders` fetches the sets through a caller-supplied ``fetch_json`` coroutine,
  caches them per channel with a TTL (and optionally on disk), and never raises out of
  :meth:`EmoteProviders.refresh` or :meth:`EmoteProviders.current`: ingestion goes on when a
  provider is down (docs/architecture.md, "Collector").

Endpoints and JSON shapes are those of [EMOTES] (docs/architecture.md, "Sources").  Every
channel endpoint is keyed by the Twitch user id (the IRC ``room-id`` tag), never the login.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias
from urllib.parse import quote

from chatpulse.core.errors import ChatpulseError
from collector.events import EmoteUse, Provider

if TYPE_CHECKING:
    import httpx

__all__ = [
    "BTTV_CHANNEL_URL",
    "BTTV_GLOBAL_URL",
    "BTTV_ZERO_WIDTH",
    "DEFAULT_PRECEDENCE",
    "FFZ_CHANNEL_URL",
    "FFZ_GLOBAL_URL",
    "PRECEDENCE_CHATTERINO",
    "PRECEDENCE_SEVENTV_FIRST",
    "SEVENTV_GLOBAL_URL",
    "SEVENTV_SET_URL",
    "SEVENTV_USER_URL",
    "ChannelIdLookup",
    "Emote",
    "EmoteFormatError",
    "EmoteProviders",
    "EmoteSet",
    "EmoteUrls",
    "FetchJson",
    "Level",
    "default_fetch_json_factory",
    "find_emoji",
    "merge_emotes",
    "parse_7tv_set",
    "parse_bttv_channel",
    "parse_bttv_global",
    "parse_ffz_channel",
    "parse_ffz_global",
    "resolve_channel_id",
]

logger = logging.getLogger(__name__)

ThirdParty: TypeAlias = Literal["bttv", "ffz", "7tv"]
#: Whether a set applies to one channel or to every channel.
Level = Literal["channel", "global"]
#: ``await fetch_json(url)`` returns the decoded JSON body of a 2xx answer, ``None`` for HTTP 404,
#: and raises for anything else (network error, other status, undecodable body).
FetchJson: TypeAlias = Callable[[str], Awaitable[Any]]

# [EMOTES].
BTTV_GLOBAL_URL = "https://api.betterttv.net/3/cached/emotes/global"
BTTV_CHANNEL_URL = "https://api.betterttv.net/3/cached/users/twitch/{channel_id}"
FFZ_GLOBAL_URL = "https://api.frankerfacez.com/v1/set/global"
FFZ_CHANNEL_URL = "https://api.frankerfacez.com/v1/room/id/{channel_id}"
SEVENTV_GLOBAL_URL = "https://7tv.io/v3/emote-sets/global"
SEVENTV_USER_URL = "https://7tv.io/v3/users/twitch/{channel_id}"
SEVENTV_SET_URL = "https://7tv.io/v3/emote-sets/{set_id}"


@dataclass(frozen=True, slots=True)
class EmoteUrls:
    """Base URLs of the provider APIs (settings ``bttv_api_url`` …; tests point them at a fake).

    The paths below each base are those of [EMOTES].
    """

    bttv: str = "https://api.betterttv.net/3"
    ffz: str = "https://api.frankerfacez.com/v1"
    seventv: str = "https://7tv.io/v3"

    def bttv_global(self) -> str:
        return f"{self.bttv.rstrip('/')}/cached/emotes/global"

    def bttv_channel(self, channel_id: str) -> str:
        return f"{self.bttv.rstrip('/')}/cached/users/twitch/{channel_id}"

    def ffz_global(self) -> str:
        return f"{self.ffz.rstrip('/')}/set/global"

    def ffz_channel(self, channel_id: str) -> str:
        return f"{self.ffz.rstrip('/')}/room/id/{channel_id}"

    def seventv_global(self) -> str:
        return f"{self.seventv.rstrip('/')}/emote-sets/global"

    def seventv_user(self, channel_id: str) -> str:
        return f"{self.seventv.rstrip('/')}/users/twitch/{channel_id}"

    def seventv_set(self, set_id: str) -> str:
        return f"{self.seventv.rstrip('/')}/emote-sets/{set_id}"


#: BTTV has no zero-width flag in its API; Chatterino and TwitchDownloader both hard-code these
#: names [EMOTES: CH BttvEmotes.cpp L37-40; TD TwitchHelper.cs L38].
BTTV_ZERO_WIDTH = frozenset(
    {"SoSnowy", "IceCold", "SantaHat", "TopHat", "ReinDeer", "CandyCane", "cvMask", "cvHazmat"}
)

# 7TV bit flags [EMOTES: CH SeventvEmotes.hpp L34-56; TD StvEmoteFlags.cs].
_7TV_ACTIVE_ZERO_WIDTH = 1 << 0  # on the set entry; what Chatterino renders by
_7TV_DATA_ZERO_WIDTH = 1 << 8  # on the emote itself; only "recommended as zero-width"
_7TV_DATA_TWITCH_DISALLOWED = 1 << 24

#: Chatterino's order, read in its source (``tryAppendEmote`` / ``parseEmote``, comment "Emote
#: order": FFZ channel, BTTV channel, 7TV channel, FFZ global, BTTV global, 7TV global) at CH
#: ``src/messages/MessageBuilder.cpp`` and the older ``TwitchMessageBuilder.cpp``.  [EMOTES] does
#: not state a precedence.
PRECEDENCE_CHATTERINO: tuple[tuple[Level, ThirdParty], ...] = (
    ("channel", "ffz"),
    ("channel", "bttv"),
    ("channel", "7tv"),
    ("global", "ffz"),
    ("global", "bttv"),
    ("global", "7tv"),
)
#: Channel over global, and 7TV > BTTV > FFZ within a level (no client found that does this;
#: offered for deployments whose chatters mostly use the 7TV extension).
PRECEDENCE_SEVENTV_FIRST: tuple[tuple[Level, ThirdParty], ...] = (
    ("channel", "7tv"),
    ("channel", "bttv"),
    ("channel", "ffz"),
    ("global", "7tv"),
    ("global", "bttv"),
    ("global", "ffz"),
)
DEFAULT_PRECEDENCE = PRECEDENCE_CHATTERINO

_PROVIDERS: tuple[ThirdParty, ...] = ("bttv", "ffz", "7tv")


class EmoteFormatError(ChatpulseError, ValueError):
    """A provider answer does not have the top-level shape of that provider's API."""


@dataclass(frozen=True, slots=True)
class Emote:
    """One third-party emote as a channel or global set defines it.

    ``name`` is what chatters type (the channel alias for 7TV); names are case-sensitive.
    """

    id: str
    name: str
    provider: Provider
    zero_width: bool = False


# --------------------------------------------------------------------------- parsing (pure)


def _as_id(value: Any) -> str | None:
    # FFZ ids are ints, the others strings [EMOTES]; bool is an int subclass and never an id.
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _as_name(value: Any) -> str | None:
    # A name with whitespace can never be one whitespace-separated word, so it can never match.
    if isinstance(value, str) and value and not any(c.isspace() for c in value):
        return value
    return None


def _bttv_entries(entries: Any, provider: Provider) -> list[Emote]:
    out: list[Emote] = []
    if not isinstance(entries, list):
        return out
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        emote_id, name = _as_id(entry.get("id")), _as_name(entry.get("code"))
        if emote_id is None or name is None:
            continue
        if provider == "bttv":
            zero_width = name in BTTV_ZERO_WIDTH
        else:  # FFZ through the BTTV proxy: modifier emotes overlay the previous one
            zero_width = entry.get("modifier") is True
        out.append(Emote(emote_id, name, provider, zero_width))
    return out


def parse_bttv_global(data: Any) -> list[Emote]:
    """Parse ``GET /3/cached/emotes/global`` (a JSON array of ``{id, code, …}``).

    Entries without a usable ``id`` or ``code`` are skipped.  Raises :class:`EmoteFormatError`
    when ``data`` is not an array.
    """
    if not isinstance(data, list):
        raise EmoteFormatError("BTTV global: expected a JSON array")
    return _bttv_entries(data, "bttv")


def parse_bttv_channel(data: Any) -> list[Emote]:
    """Parse ``GET /3/cached/users/twitch/{id}``: ``channelEmotes`` then ``sharedEmotes``.

    Raises :class:`EmoteFormatError` when ``data`` is not an object holding at least one of those
    two arrays (BTTV's error bodies are objects with a ``message``).
    """
    if not isinstance(data, dict) or not (
        isinstance(data.get("channelEmotes"), list) or isinstance(data.get("sharedEmotes"), list)
    ):
        raise EmoteFormatError("BTTV channel: expected channelEmotes/sharedEmotes")
    return _bttv_entries(data.get("channelEmotes"), "bttv") + _bttv_entries(
        data.get("sharedEmotes"), "bttv"
    )


def _ffz_set_emotes(ffz_set: Any) -> list[Emote]:
    out: list[Emote] = []
    if not isinstance(ffz_set, dict) or not isinstance(ffz_set.get("emoticons"), list):
        return out
    for entry in ffz_set["emoticons"]:
        if not isinstance(entry, dict):
            continue
        emote_id, name = _as_id(entry.get("id")), _as_name(entry.get("name"))
        if emote_id is None or name is None:
            continue
        out.append(Emote(emote_id, name, "ffz", entry.get("modifier") is True))
    return out


def parse_ffz_global(data: Any) -> list[Emote]:
    """Parse FFZ ``/v1/set/global``: the emoticons of the sets listed in ``default_sets``.

    The other sets in that answer are not shown to everyone, so they are left out, as Chatterino
    does [EMOTES: CH FfzEmotes.cpp].  When ``default_sets`` is missing, every set is used.  A JSON
    array is read as the BTTV proxy's flat shape (``{id, code, modifier}``).  Raises
    :class:`EmoteFormatError` for any other shape.
    """
    if isinstance(data, list):
        return _bttv_entries(data, "ffz")
    if not isinstance(data, dict) or not isinstance(data.get("sets"), dict):
        raise EmoteFormatError("FFZ global: expected an object with sets")
    sets: dict[str, Any] = data["sets"]
    default_sets = data.get("default_sets")
    keys: Iterable[str]
    if isinstance(default_sets, list):
        keys = [str(k) for k in default_sets if _as_id(k) is not None]
    else:
        keys = list(sets)
    out: list[Emote] = []
    for key in keys:
        out.extend(_ffz_set_emotes(sets.get(key)))
    return out


def parse_ffz_channel(data: Any) -> list[Emote]:
    """Parse FFZ ``/v1/room/id/{id}``: the emoticons of every set in ``sets``.

    A JSON array is read as the BTTV proxy's flat shape.  Raises :class:`EmoteFormatError` for
    any other shape.
    """
    if isinstance(data, list):
        return _bttv_entries(data, "ffz")
    if not isinstance(data, dict) or not isinstance(data.get("sets"), dict):
        raise EmoteFormatError("FFZ channel: expected an object with sets")
    out: list[Emote] = []
    for ffz_set in data["sets"].values():
        out.extend(_ffz_set_emotes(ffz_set))
    return out


def parse_7tv_set(data: Any) -> list[Emote]:
    """Parse a 7TV v3 emote set (``/v3/emote-sets/{id}``) or user (``/v3/users/twitch/{id}``).

    For a user object the embedded ``emote_set`` is read; a user with ``emote_set: null`` has no
    active set and yields ``[]``.  The name is the channel alias (``name``), not ``data.name``
    [EMOTES].  ``zero_width`` is the set entry's bit 0, which Chatterino renders by; only when the
    entry has no ``flags`` does the emote's own bit 8 (a recommendation, TwitchDownloader's choice)
    decide.  Emotes flagged ContentTwitchDisallowed are skipped (both clients do).  Private and
    unlisted emotes are kept: the channel enabled them and chatters type them, which is what we
    count.  Raises :class:`EmoteFormatError` when there is no ``emotes`` array to read.
    """
    if isinstance(data, dict) and "emote_set" in data and "emotes" not in data:
        data = data["emote_set"]
        if data is None:
            return []
    if not isinstance(data, dict) or not isinstance(data.get("emotes"), list):
        raise EmoteFormatError("7TV: expected an emote set with an emotes array")
    out: list[Emote] = []
    for entry in data["emotes"]:
        if not isinstance(entry, dict):
            continue
        emote_data = entry.get("data")
        emote_data = emote_data if isinstance(emote_data, dict) else {}
        data_flags = emote_data.get("flags")
        data_flags = data_flags if isinstance(data_flags, int) else 0
        if data_flags & _7TV_DATA_TWITCH_DISALLOWED:
            continue
        emote_id = _as_id(entry.get("id")) or _as_id(emote_data.get("id"))
        name = _as_name(entry.get("name"))
        if emote_id is None or name is None:
            continue
        flags = entry.get("flags")
        if isinstance(flags, int) and not isinstance(flags, bool):
            zero_width = bool(flags & _7TV_ACTIVE_ZERO_WIDTH)
        else:
            zero_width = bool(data_flags & _7TV_DATA_ZERO_WIDTH)
        out.append(Emote(emote_id, name, "7tv", zero_width))
    return out


def _7tv_user_set_id(data: Any) -> str | None:
    if not isinstance(data, dict):
        raise EmoteFormatError("7TV user: expected an object")
    emote_set = data.get("emote_set")
    if isinstance(emote_set, dict) and _as_id(emote_set.get("id")):
        return _as_id(emote_set.get("id"))
    return _as_id(data.get("emote_set_id"))


# --------------------------------------------------------------------------- emoji (pure)

# Hand-written from Unicode's emoji-data.txt (Emoji_Presentation, Extended_Pictographic), because
# the ``regex`` module (\p{Extended_Pictographic}) is not a dependency.  Ranges, inclusive.
#
# Emoji by default: the BMP Emoji_Presentation list, and the SMP pictograph blocks.  SMP blocks
# are taken whole (a handful of their symbols are text-default, e.g. U+1F54A DOVE, but chat
# clients draw them as emoji and nobody types them as text); unassigned code points in them are
# future emoji.
_EMOJI_PRESENTATION: tuple[tuple[int, int], ...] = (
    (0x231A, 0x231B), (0x23E9, 0x23EC), (0x23F0, 0x23F0), (0x23F3, 0x23F3),
    (0x25FD, 0x25FE), (0x2614, 0x2615), (0x2648, 0x2653), (0x267F, 0x267F),
    (0x2693, 0x2693), (0x26A1, 0x26A1), (0x26AA, 0x26AB), (0x26BD, 0x26BE),
    (0x26C4, 0x26C5), (0x26CE, 0x26CE), (0x26D4, 0x26D4), (0x26EA, 0x26EA),
    (0x26F2, 0x26F3), (0x26F5, 0x26F5), (0x26FA, 0x26FA), (0x26FD, 0x26FD),
    (0x2705, 0x2705), (0x270A, 0x270B), (0x2728, 0x2728), (0x274C, 0x274C),
    (0x274E, 0x274E), (0x2753, 0x2755), (0x2757, 0x2757), (0x2795, 0x2797),
    (0x27B0, 0x27B0), (0x27BF, 0x27BF), (0x2B1B, 0x2B1C), (0x2B50, 0x2B50),
    (0x2B55, 0x2B55),
    (0x1F004, 0x1F004), (0x1F0CF, 0x1F0CF), (0x1F170, 0x1F171), (0x1F17E, 0x1F17F),
    (0x1F18E, 0x1F18E), (0x1F191, 0x1F19A), (0x1F201, 0x1F202), (0x1F21A, 0x1F21A),
    (0x1F22F, 0x1F22F), (0x1F232, 0x1F23A), (0x1F250, 0x1F251), (0x1F300, 0x1F64F),
    (0x1F680, 0x1F6FF), (0x1F7E0, 0x1F7EB), (0x1F7F0, 0x1F7F0), (0x1F90C, 0x1F9FF),
    (0x1FA70, 0x1FAFF),
)  # fmt: skip
# Text by default (©, ™, ↔, ☀, ❤, …): an emoji only with U+FE0F after it, before a skin-tone
# modifier (☝🏽), or after a ZWJ.  The Misc Symbols and Dingbats blocks are taken whole: U+FE0F
# only follows emoji-capable characters in practice, and braille/box art never carries it.
_EMOJI_TEXT_DEFAULT: tuple[tuple[int, int], ...] = (
    (0x00A9, 0x00A9), (0x00AE, 0x00AE), (0x203C, 0x203C), (0x2049, 0x2049),
    (0x2122, 0x2122), (0x2139, 0x2139), (0x2194, 0x2199), (0x21A9, 0x21AA),
    (0x2328, 0x2328), (0x23CF, 0x23CF), (0x23ED, 0x23EF), (0x23F1, 0x23F2),
    (0x23F8, 0x23FA), (0x24C2, 0x24C2), (0x25AA, 0x25AB), (0x25B6, 0x25B6),
    (0x25C0, 0x25C0), (0x25FB, 0x25FC), (0x2600, 0x27BF), (0x2934, 0x2935),
    (0x2B05, 0x2B07), (0x3030, 0x3030), (0x303D, 0x303D), (0x3297, 0x3297),
    (0x3299, 0x3299),
)  # fmt: skip
_SKIN_TONE = (0x1F3FB, 0x1F3FF)  # Fitzpatrick modifiers
_REGIONAL_INDICATOR = (0x1F1E6, 0x1F1FF)  # a pair is one flag
_TAG = (0xE0020, 0xE007E)  # subdivision flags: 🏴 + tag letters + U+E007F CANCEL TAG
_VS16, _VS15, _ZWJ, _KEYCAP = "\ufe0f", "\ufe0e", "\u200d", "\u20e3"


def _char_class(ranges: Iterable[tuple[int, int]]) -> str:
    parts = [
        re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}"
        for lo, hi in ranges
    ]
    return "[" + "".join(parts) + "]"


def _build_emoji_re() -> re.Pattern[str]:
    pres = _char_class(_EMOJI_PRESENTATION)
    text = _char_class(_EMOJI_TEXT_DEFAULT)
    any_pict = _char_class(_EMOJI_PRESENTATION + _EMOJI_TEXT_DEFAULT)
    mod = _char_class([_SKIN_TONE])
    tags = f"(?:{_char_class([_TAG])}+\U000e007f)?"
    # U+FE0E asks for text presentation, so an emoji-default character followed by it is text.
    head = f"(?:{pres}(?!{_VS15}){_VS16}?|{text}(?:{_VS16}|(?={mod}))){mod}?{tags}"
    # After a ZWJ the sequence is already an emoji; senders often drop the U+FE0F there.
    tail = f"{any_pict}{_VS16}?{mod}?"
    keycap = f"[#*0-9]{_VS16}?{_KEYCAP}"
    flag = f"{_char_class([_REGIONAL_INDICATOR])}{{2}}"
    return re.compile(f"{keycap}|{flag}|{head}(?:{_ZWJ}{tail})*")


_EMOJI_RE = _build_emoji_re()
_TEXT_DEFAULT_ONLY = frozenset(
    chr(c)
    for lo, hi in _EMOJI_TEXT_DEFAULT
    for c in range(lo, hi + 1)
    if not any(plo <= c <= phi for plo, phi in _EMOJI_PRESENTATION)
)


@functools.lru_cache(maxsize=8192)
def _emoji_key(seq: str) -> tuple[str, str]:
    """Return ``(emote_id, emote_name)`` for one matched emoji sequence.

    The id is the code points in lower-case hex joined by ``-`` with every U+FE0F dropped, so
    ``❤️`` sent with or without the selector inside a sequence, or 🕊 vs 🕊️, count as one emoji
    (Twemoji names its files the same way for non-ZWJ sequences).  The name is the sequence
    re-qualified: U+FE0F put back after text-default characters and keycap bases, so Grafana
    shows it as an emoji.
    """
    bare = seq.replace(_VS16, "")
    emote_id = "-".join(f"{ord(c):x}" for c in bare)
    name: list[str] = []
    for i, c in enumerate(bare):
        name.append(c)
        nxt = bare[i + 1] if i + 1 < len(bare) else ""
        needs_vs16 = c in _TEXT_DEFAULT_ONLY and not (
            nxt and _SKIN_TONE[0] <= ord(nxt) <= _SKIN_TONE[1]
        )
        if needs_vs16 or (nxt == _KEYCAP and c in "#*0123456789"):
            name.append(_VS16)
    return emote_id, "".join(name)


def find_emoji(text: str) -> tuple[EmoteUse, ...]:
    """Return the emoji in ``text`` (provider ``emoji``), one entry per distinct emoji.

    ZWJ sequences, skin-tone modifiers, flags (regional-indicator pairs and tag sequences),
    keycaps and variation selectors each count as one emoji.  Order is first appearance.
    """
    if text.isascii() or _EMOJI_CHARS.isdisjoint(text):
        return ()
    return _match_emoji(text)


# Every match of _EMOJI_RE holds one of these: a keycap its U+20E3, a flag a regional
# indicator, any other sequence starts with an emoji (presentation or text-default, none of
# them ASCII).  Most non-ASCII chat holds none (accents, Cyrillic, braille art, the U+E0000
# that chat clients append to repeat a message): a set test is five times cheaper than the
# expression's search there (2.5 against 12 us a message on #nymn's).
_EMOJI_CHARS = frozenset(
    chr(c)
    for lo, hi in (
        *_EMOJI_PRESENTATION,
        *_EMOJI_TEXT_DEFAULT,
        _REGIONAL_INDICATOR,
        (ord(_KEYCAP), ord(_KEYCAP)),
    )
    for c in range(lo, hi + 1)
)


def _match_emoji(text: str) -> tuple[EmoteUse, ...]:
    """:func:`find_emoji` without its test for characters no emoji is made without."""
    counts: dict[str, int] = {}
    names: dict[str, str] = {}
    for found in _EMOJI_RE.findall(text):
        emote_id, name = _emoji_key(found)
        counts[emote_id] = counts.get(emote_id, 0) + 1
        names.setdefault(emote_id, name)
    return tuple(EmoteUse(eid, names[eid], "emoji", n) for eid, n in counts.items())


# --------------------------------------------------------------------------- sets and matching


class EmoteSet(Mapping[str, Emote]):
    """An immutable mapping of emote name -> :class:`Emote`, with :meth:`match`.

    ``EmoteSet(emotes)`` keeps the *first* emote of each name; :meth:`layered` orders the
    provider lists by precedence first.  Hashing is not supported (it is a mapping).
    """

    __slots__ = ("_by_name", "_names", "_single_use")

    _by_name: dict[str, Emote]
    _names: frozenset[str]
    _single_use: dict[str, EmoteUse]

    def __init__(self, emotes: Iterable[Emote] = ()) -> None:
        by_name: dict[str, Emote] = {}
        for emote in emotes:
            by_name.setdefault(emote.name, emote)
        self._by_name = by_name
        self._names = frozenset(by_name)
        # Most matches are count 1; EmoteUse is immutable, so one shared instance per emote.
        self._single_use = {n: EmoteUse(e.id, e.name, e.provider, 1) for n, e in by_name.items()}

    @classmethod
    def layered(
        cls,
        layers: Mapping[tuple[Level, ThirdParty], Iterable[Emote]],
        precedence: Sequence[tuple[Level, ThirdParty]] = DEFAULT_PRECEDENCE,
    ) -> EmoteSet:
        """Build a set from per-(level, provider) lists; on a name clash the earlier layer in
        ``precedence`` wins.  Layers not named in ``precedence`` come last, in the given order.
        """
        order = list(precedence) + [k for k in layers if k not in precedence]
        return cls(e for key in order for e in layers.get(key, ()))

    def __getitem__(self, name: str) -> Emote:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __repr__(self) -> str:
        return f"EmoteSet({len(self._by_name)} emotes)"

    def match(self, text: str, twitch_emotes: Sequence[EmoteUse] = ()) -> tuple[EmoteUse, ...]:
        """Return the third-party emotes and the emoji used in ``text``, counted per emote.

        Emote names are case-sensitive whole words split on whitespace, as chat clients render
        them.  ``twitch_emotes`` are the native emotes from the message's ``emotes`` tag: native
        emotes win, so each native use of a name takes one occurrence of that word away from the
        third-party count (``forsenParty`` as a Twitch sub emote is not also a 7TV use).  Order:
        third-party emotes by first appearance, then emoji by first appearance.  Pure and cheap
        enough to run on every message.
        """
        words = text.split()
        hits = self._names.intersection(words)
        uses: list[EmoteUse] = []
        if hits:
            native: dict[str, int] | None = None
            if twitch_emotes:
                native = {}
                for use in twitch_emotes:
                    native[use.emote_name] = native.get(use.emote_name, 0) + use.count
            ordered = sorted(hits, key=words.index) if len(hits) > 1 else hits
            for name in ordered:
                n = words.count(name)
                if native is not None:
                    n -= native.get(name, 0)
                    if n <= 0:
                        continue
                if n == 1:
                    uses.append(self._single_use[name])
                else:
                    e = self._by_name[name]
                    uses.append(EmoteUse(e.id, e.name, e.provider, n))
        if text.isascii():
            return tuple(uses)
        return (*uses, *find_emoji(text))


def merge_emotes(
    native: Sequence[EmoteUse], third_party: Sequence[EmoteUse]
) -> tuple[EmoteUse, ...]:
    """Return native then third-party uses, one entry per (provider, emote_id).

    Entries with the same provider and id are summed, so the writer's unique key per
    (message, emote) holds.  Call :meth:`EmoteSet.match` with the native list first so the same
    word is not counted twice.
    """
    if not third_party:
        return tuple(native)
    if not native:
        return tuple(third_party)
    out: dict[tuple[str, str], EmoteUse] = {}
    for use in (*native, *third_party):
        key = (use.provider, use.emote_id)
        prev = out.get(key)
        out[key] = (
            use
            if prev is None
            else EmoteUse(prev.emote_id, prev.emote_name, prev.provider, prev.count + use.count)
        )
    return tuple(out.values())


# --------------------------------------------------------------------------- fetching (I/O)

_LayerKey: TypeAlias = tuple[ThirdParty, str | None]  # (provider, channel id or None = global)
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CACHE_VERSION = 1


@dataclass(slots=True)
class _Layer:
    emotes: tuple[Emote, ...] = ()
    next_due: float = -math.inf  # clock() time from which a fetch is allowed again
    disk_checked: bool = False
    loaded: bool = False  # a good answer (or the disk cache) was had at least once
    error: str | None = None  # the last fetch's failure, None after a good answer


class EmoteProviders:
    """BTTV, FFZ and 7TV sets for many channels, fetched through ``fetch_json`` and cached.

    ``fetch_json(url)`` is the caller's HTTP client (see :data:`FetchJson`;
    :func:`default_fetch_json_factory` makes one with httpx).  Each (provider, channel) set and
    each provider's global set is kept for ``ttl_s`` seconds; after a failure the next try is
    allowed after ``retry_s``.  A failed, undecodable or malformed answer keeps the last good set
    (or none) and logs a warning; HTTP 404 means "this channel has no set" and empties it
    [EMOTES].  With ``cache_dir``, every good set is also written there as JSON and read back
    before the first fetch, so a restart while a provider is down still matches its emotes.

    Typical use: ``await providers.refresh(room_id)`` when joining a channel and then from a
    periodic task; ``providers.current(room_id).match(text, native)`` for every message.
    """

    def __init__(
        self,
        fetch_json: FetchJson,
        *,
        ttl_s: float = 3600.0,
        retry_s: float = 60.0,
        cache_dir: Path | str | None = None,
        precedence: Sequence[tuple[Level, ThirdParty]] = DEFAULT_PRECEDENCE,
        providers: Iterable[ThirdParty] = _PROVIDERS,
        clock: Callable[[], float] = time.monotonic,
        urls: EmoteUrls | None = None,
        failure_log_level: int = logging.WARNING,
    ) -> None:
        self._fetch_json = fetch_json
        self._urls = urls or EmoteUrls()
        self._failure_log_level = failure_log_level
        self._ttl_s = ttl_s
        self._retry_s = min(retry_s, ttl_s)
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._precedence = tuple(precedence)
        wanted = set(providers)
        self._providers = tuple(p for p in _PROVIDERS if p in wanted)
        self._clock = clock
        self._layers: dict[_LayerKey, _Layer] = {}
        self._locks: dict[_LayerKey, asyncio.Lock] = {}
        self._version = 0  # bumped whenever a layer changes; composed sets are rebuilt lazily
        self._composed: dict[str, tuple[int, EmoteSet]] = {}

    def current(self, channel_id: str) -> EmoteSet:
        """Return the set for a channel as loaded so far (globals only if never refreshed).

        Never blocks and never raises; cheap when nothing changed since the last call.
        """
        cached = self._composed.get(channel_id)
        if cached is not None and cached[0] == self._version:
            return cached[1]
        layers: dict[tuple[Level, ThirdParty], tuple[Emote, ...]] = {}
        for provider in self._providers:
            channel_layer = self._layers.get((provider, channel_id))
            global_layer = self._layers.get((provider, None))
            if channel_layer is not None:
                layers[("channel", provider)] = channel_layer.emotes
            if global_layer is not None:
                layers[("global", provider)] = global_layer.emotes
        composed = EmoteSet.layered(layers, self._precedence)
        self._composed[channel_id] = (self._version, composed)
        return composed

    async def refresh_global(self, *, force: bool = False) -> None:
        """Fetch the global sets whose TTL ran out (all of them with ``force``); never raises."""
        await asyncio.gather(*(self._refresh_layer((p, None), force) for p in self._providers))

    async def refresh(self, channel_id: str, *, force: bool = False) -> EmoteSet:
        """Fetch the channel's and the global sets whose TTL ran out, and return the new set.

        ``channel_id`` is the Twitch user id (``room-id``).  Sets still fresh are not fetched
        again unless ``force``; concurrent calls for the same set share one fetch.  Never raises
        for provider trouble (only cancellation propagates).
        """
        keys: list[_LayerKey] = [(p, None) for p in self._providers]
        keys += [(p, channel_id) for p in self._providers]
        await asyncio.gather(*(self._refresh_layer(k, force) for k in keys))
        return self.current(channel_id)

    async def _refresh_layer(self, key: _LayerKey, force: bool) -> None:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            layer = self._layers.get(key)
            if layer is None:
                layer = self._layers[key] = _Layer()
                self._version += 1
            if not layer.disk_checked:
                layer.disk_checked = True
                cached = await self._read_cache(key)
                if cached is not None:
                    layer.emotes = cached
                    layer.loaded = True
                    self._version += 1
            if not force and self._clock() < layer.next_due:
                return
            provider, channel_id = key
            try:
                emotes = tuple(await self._fetch_layer(key))
            except Exception as exc:  # any provider trouble: keep the last good set
                layer.next_due = self._clock() + self._retry_s
                layer.error = f"{type(exc).__name__}: {exc}"
                logger.log(
                    self._failure_log_level,
                    "emote set fetch failed; keeping the last good set",
                    extra={
                        "emote_provider": provider,
                        "channel_id": channel_id or "global",
                        "error": f"{type(exc).__name__}: {exc}",
                        "kept_emotes": len(layer.emotes),
                    },
                )
                return
            layer.next_due = self._clock() + self._ttl_s
            layer.loaded, layer.error = True, None
            if emotes != layer.emotes:
                layer.emotes = emotes
                self._version += 1
            await self._write_cache(key, emotes)

    def failures(self, channel_id: str | None) -> str | None:
        """The sets that could not be loaded at all, in one line, or None when there are none.

        ``"bttv channel, 7tv channel: ConnectError: …; ffz global: HTTPStatusError: …"``: sets
        that failed the same way are named together.  A set whose last fetch failed but that
        was loaded before (or read from the disk cache) is not listed: it is still matched.
        ``channel_id`` None looks at the global sets only.
        """
        by_error: dict[str, list[str]] = {}
        for level, key_id in (("channel", channel_id), ("global", None)):
            if level == "channel" and channel_id is None:
                continue
            for provider in self._providers:
                layer = self._layers.get((provider, key_id))
                if layer is not None and not layer.loaded and layer.error is not None:
                    by_error.setdefault(layer.error, []).append(f"{provider} {level}")
        if not by_error:
            return None
        return "; ".join(f"{', '.join(names)}: {error}" for error, names in by_error.items())

    async def _fetch_layer(self, key: _LayerKey) -> list[Emote]:
        provider, raw_id = key
        urls = self._urls
        if raw_id is None:
            if provider == "bttv":
                return parse_bttv_global(await self._fetch_required(urls.bttv_global()))
            if provider == "ffz":
                return parse_ffz_global(await self._fetch_required(urls.ffz_global()))
            return parse_7tv_set(await self._fetch_required(urls.seventv_global()))
        channel_id = quote(raw_id, safe="")  # an id is one path segment, whatever it holds
        if provider == "bttv":
            data = await self._fetch_json(urls.bttv_channel(channel_id))
            return [] if data is None else parse_bttv_channel(data)
        if provider == "ffz":
            data = await self._fetch_json(urls.ffz_channel(channel_id))
            return [] if data is None else parse_ffz_channel(data)
        return await self._fetch_7tv_channel(channel_id)

    async def _fetch_required(self, url: str) -> Any:
        # A global set always exists; a 404 there is a provider fault, not "empty".
        data = await self._fetch_json(url)
        if data is None:
            raise EmoteFormatError(f"HTTP 404 for {url}")
        return data

    async def _fetch_7tv_channel(self, channel_id: str) -> list[Emote]:
        user = await self._fetch_json(self._urls.seventv_user(channel_id))
        if user is None:  # 404: not on 7TV
            return []
        set_id = _7tv_user_set_id(user)
        try:
            embedded: list[Emote] | None = parse_7tv_set(user)
        except EmoteFormatError:
            embedded = None
        if set_id is None:
            return embedded or []
        # 7TV announced that the user endpoint will stop embedding every emote of the active
        # set, so the set itself is fetched, as TwitchDownloader does [EMOTES, pending change].
        try:
            full = await self._fetch_json(self._urls.seventv_set(quote(set_id, safe="")))
            if full is None:
                raise EmoteFormatError(f"7TV emote set {set_id} not found")
            return parse_7tv_set(full)
        except Exception as exc:
            if embedded is None:
                raise
            logger.info(
                "7TV emote set fetch failed; using the set embedded in the user answer",
                extra={"emote_provider": "7tv", "channel_id": channel_id, "error": repr(exc)},
            )
            return embedded

    # -- disk cache -------------------------------------------------------------------------

    def _cache_path(self, key: _LayerKey) -> Path | None:
        provider, channel_id = key
        if self._cache_dir is None:
            return None
        if channel_id is None:
            return self._cache_dir / f"{provider}-global.json"
        if not _SAFE_ID.fullmatch(channel_id):  # never build a path from an odd id
            return None
        return self._cache_dir / f"{provider}-channel-{channel_id}.json"

    async def _read_cache(self, key: _LayerKey) -> tuple[Emote, ...] | None:
        path = self._cache_path(key)
        if path is None:
            return None
        try:
            raw = await asyncio.to_thread(_read_text_or_none, path)
            if raw is None:
                return None
            return _decode_cache(json.loads(raw), key[0])
        except (OSError, ValueError) as exc:
            logger.warning(
                "emote cache file unreadable; ignoring it",
                extra={"emote_provider": key[0], "path": str(path), "error": repr(exc)},
            )
            return None

    async def _write_cache(self, key: _LayerKey, emotes: tuple[Emote, ...]) -> None:
        path = self._cache_path(key)
        if path is None:
            return
        body = {
            "version": _CACHE_VERSION,
            "provider": key[0],
            "channel_id": key[1],
            "emotes": [{"id": e.id, "name": e.name, "zero_width": e.zero_width} for e in emotes],
        }
        try:
            await asyncio.to_thread(_write_atomic, path, json.dumps(body, ensure_ascii=False))
        except OSError as exc:
            logger.warning(
                "emote cache write failed",
                extra={"emote_provider": key[0], "path": str(path), "error": repr(exc)},
            )


def _read_text_or_none(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _write_atomic(path: Path, text: str) -> None:
    # Write then rename, so a crash mid-write never leaves a truncated cache behind.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _decode_cache(body: Any, provider: ThirdParty) -> tuple[Emote, ...]:
    if (
        not isinstance(body, dict)
        or body.get("version") != _CACHE_VERSION
        or body.get("provider") != provider
        or not isinstance(body.get("emotes"), list)
    ):
        raise ValueError("not an emote cache file of this version and provider")
    out: list[Emote] = []
    for entry in body["emotes"]:
        if not isinstance(entry, dict):
            continue
        emote_id, name = _as_id(entry.get("id")), _as_name(entry.get("name"))
        if emote_id is not None and name is not None:
            out.append(Emote(emote_id, name, provider, entry.get("zero_width") is True))
    return tuple(out)


def default_fetch_json_factory(
    client: httpx.AsyncClient | None = None, *, timeout_s: float = 10.0
) -> FetchJson:
    """Return a :data:`FetchJson` built on httpx.

    With ``client`` the caller owns it (and closes it); without, each call opens and closes its
    own client, which is fine at one request per set per TTL.  404 gives ``None``; other non-2xx
    statuses raise ``httpx.HTTPStatusError``; a body that is not JSON raises ``ValueError``.
    """
    import httpx  # deferred: the pure parts of this module need no HTTP library

    headers = {"User-Agent": "chatpulse-collector", "Accept": "application/json"}

    async def _get(c: httpx.AsyncClient, url: str) -> Any:
        response = await c.get(url, headers=headers, timeout=timeout_s)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    async def fetch_json(url: str) -> Any:
        if client is not None:
            return await _get(client, url)
        async with httpx.AsyncClient(follow_redirects=True) as own:
            return await _get(own, url)

    return fetch_json


# --------------------------------------------------------------------------- channel ids (I/O)

_TWITCH_ID = re.compile(r"[0-9]{1,20}")


@dataclass(frozen=True, slots=True)
class ChannelIdLookup:
    """What :func:`resolve_channel_id` found: the id (or None), where from, and what failed."""

    channel_id: str | None
    source: str | None = None  # "helix" or "ivr"
    errors: tuple[str, ...] = ()


async def resolve_channel_id(
    http: httpx.AsyncClient,
    login: str,
    *,
    helix_url: str | None = None,
    client_id: str | None = None,
    token: str | None = None,
    ivr_url: str | None = None,
    timeout_s: float = 10.0,
) -> ChannelIdLookup:
    """Return the Twitch user id of ``login`` (the channel's ``room-id``).

    Helix ``GET {helix_url}/users?login=`` is asked first when ``client_id`` and ``token`` are
    both set (answer ``{"data": [{"id", "login", …}]}``); then IVR ``GET {ivr_url}/twitch/user
    ?login=`` (no credentials; answer ``[{"id", "login", …}]``).  BTTV, FFZ's ``/room/id`` and 7TV
    want the id itself, so they cannot be asked.  Never raises for HTTP or answer trouble: each
    failure is one entry of ``errors``; an id is accepted only when it is all digits and the
    answer names the same login.
    """
    import httpx  # deferred, as in default_fetch_json_factory

    login = login.lstrip("#").lower()
    errors: list[str] = []
    asks: list[tuple[str, str, dict[str, str]]] = []
    if helix_url and client_id and token:
        bearer = token.removeprefix("oauth:")
        asks.append(
            (
                "helix",
                f"{helix_url.rstrip('/')}/users",
                {"Client-Id": client_id, "Authorization": f"Bearer {bearer}"},
            )
        )
    if ivr_url:
        asks.append(("ivr", f"{ivr_url.rstrip('/')}/twitch/user", {}))
    for source, url, headers in asks:
        try:
            response = await http.get(
                url,
                params={"login": login},
                headers={"Accept": "application/json", **headers},
                timeout=timeout_s,
            )
            if response.status_code == 404:
                errors.append(f"{source}: no such user")
                continue
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            errors.append(f"{source}: {type(exc).__name__}: {exc}")
            continue
        users = body.get("data") if isinstance(body, dict) else body
        found = None
        if isinstance(users, list):
            for user in users:
                if (
                    isinstance(user, dict)
                    and str(user.get("login", "")).lower() == login
                    and _TWITCH_ID.fullmatch(str(user.get("id", "")))
                ):
                    found = str(user["id"])
                    break
        if found is not None:
            return ChannelIdLookup(found, source, tuple(errors))
        errors.append(f"{source}: no user {login!r} in the answer")
    return ChannelIdLookup(None, None, tuple(errors))
