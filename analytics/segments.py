"""The audience segment rules (documented in the README's "Audience" section).

Each chatter of each stream is in exactly one segment, judged on the history of the channel up
to and including that stream, in this order:

1. ``bot``: a known bot login (:data:`KNOWN_BOTS`), or at least :attr:`SegmentRules.bot_min_gaps`
   intervals between its messages in the stream with a coefficient of variation under
   :attr:`SegmentRules.bot_max_cv` (machine-regular posting).
2. ``spammer``: at least ``spam_min_messages`` messages in the stream of which at least
   ``spam_share`` are duplicates (a repeat of the chatter's own text, or a copy of a text of 12
   or more characters that 3 or more chatters sent: copypasta).
3. ``one-time``: the chatter's first stream in this channel.
4. ``power user``: a regular (below) with at least ``power_per_stream`` messages per stream
   they wrote in so far.
5. ``regular``: wrote in at least ``regular_share`` of the channel's streams since their first.
6. ``casual``: everyone else (came back, but less often).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["KNOWN_BOTS", "SEGMENTS", "SegmentRules"]

SEGMENTS = ("one-time", "casual", "regular", "power user", "spammer", "bot")

#: Logins of widely used chat bots (lower case).
KNOWN_BOTS: tuple[str, ...] = (
    "nightbot",
    "streamelements",
    "streamlabs",
    "moobot",
    "fossabot",
    "wizebot",
    "sery_bot",
    "soundalerts",
    "botrixoficial",
    "kofistreambot",
    "pokemoncommunitygame",
    "supibot",
    "streamstickers",
    "blerp",
    "own3d",
    "commanderroot",
)


@dataclass(frozen=True, slots=True)
class SegmentRules:
    bot_min_gaps: int = 10
    bot_max_cv: float = 0.1
    spam_min_messages: int = 5
    spam_share: float = 0.5
    regular_share: float = 0.5
    power_per_stream: float = 20.0
    bots: tuple[str, ...] = KNOWN_BOTS

    def params(self) -> dict[str, Any]:
        """The rules as the parameters of the ``assign_segments`` query."""
        out = asdict(self)
        out["bots"] = list(self.bots)
        return out
