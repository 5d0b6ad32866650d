"""A multi-hour evaluation stream of real chat with known, injected crowd reactions.

Background: the real nymn lines (tests/fixtures/chatterino-recentmessages-nymn) re-timed over
``hours`` at a wandering rate (:func:`detector.synth.retime`).  Injected, at known times and
never closer than 8 minutes to each other:

* crowd reactions: ``mult`` times the background rate for ``duration_s``, posted by many
  *new* chatters with real lines (a sharp rise, a dip to ~1.5x half way, a second rise: one
  event with a lull in it, which must stay one moment);
* a raid-like surge: 300 distinct new chatters within 60 s;
* an emoji-only burst: 4 users post the same emote 40 times in 15 s (a few users' spam, not a
  crowd reacting).

Pure and seeded: the same arguments give the same stream.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from collector import irc
from collector.events import ChatMessage
from detector.synth import SynthMessage, retime
from tests.paths import nymn_irc_lines

__all__ = ["Injected", "build_stream", "real_lines"]


@dataclass(frozen=True, slots=True)
class Injected:
    """One injected reaction: ``kind`` is crowd, raid or emoji; ``size`` its messages."""

    kind: str
    at: float
    duration_s: float
    size: int
    chatters: int
    mult: float


def real_lines() -> list[SynthMessage]:
    """The chat messages of the real #nymn lines, as :class:`SynthMessage` (time, user, text,
    emotes), in order."""
    out = []
    for line in nymn_irc_lines():
        e = irc.parse_event(line)
        if isinstance(e, ChatMessage):
            out.append(
                SynthMessage(
                    e.sent_at.timestamp(),
                    e.user_login or "",
                    e.text,
                    tuple((u.emote_name, u.count) for u in e.emotes),
                )
            )
    return out


def _crowd(
    rng: random.Random, lines: list[SynthMessage], inj: Injected, tag: str
) -> list[SynthMessage]:
    """``inj.size`` messages by ``inj.chatters`` new users: two rises with a dip between."""
    out = []
    users = [f"{tag}_{k}" for k in range(inj.chatters)]
    for k in range(inj.size):
        # The first 40 % and the last 40 % of the duration carry 85 % of the messages.
        if rng.random() < 0.85:
            frac = rng.uniform(0, 0.4) if rng.random() < 0.5 else rng.uniform(0.6, 1.0)
        else:
            frac = rng.uniform(0.4, 0.6)
        src = lines[rng.randrange(len(lines))]
        user = users[k] if k < len(users) else rng.choice(users)
        out.append(SynthMessage(inj.at + frac * inj.duration_s, user, src.text, src.emotes))
    return out


def build_stream(
    seed: int = 0, hours: float = 5.0, mean_rate: float = 1.8, t0: float = 1_700_000_000.0
) -> tuple[list[SynthMessage], list[Injected]]:
    """Real chat for ``hours`` with crowd reactions of several sizes, a raid and an emoji burst.

    Crowd reactions come in four sizes (3x, 4x, 5.5x, 8x the mean rate over 30-60 s); the
    stream's first 10 minutes and its last 10 are left alone.
    """
    rng = random.Random(seed)
    lines = real_lines()
    duration = hours * 3600
    msgs = retime(lines, start=t0, duration_s=duration, mean_rate=mean_rate, seed=seed)
    slots = int((duration - 1200) // 480)
    kinds = ["raid", "emoji"] + ["crowd"] * (slots - 2)
    rng.shuffle(kinds)
    mults = [3.0, 4.0, 5.5, 8.0]
    injected: list[Injected] = []
    extra: list[SynthMessage] = []
    for k, kind in enumerate(kinds):
        at = t0 + 600 + k * 480 + rng.uniform(60, 300)
        if kind == "crowd":
            dur = rng.choice([30.0, 45.0, 60.0])
            mult = mults[k % len(mults)]
            size = round(mean_rate * dur * (mult - 1))
            chatters = max(5, round(size * 0.8))
            inj = Injected("crowd", at, dur, size, chatters, mult)
            extra += _crowd(rng, lines, inj, f"c{k}")
        elif kind == "raid":
            inj = Injected("raid", at, 30.0, 360, 300, 360 / (mean_rate * 30) + 1)
            extra += _crowd(rng, lines, inj, f"raider{k}")
        else:
            users = [f"spam{k}_{j}" for j in range(4)]
            inj = Injected("emoji", at, 15.0, 40, 4, 40 / (mean_rate * 15) + 1)
            extra += [
                SynthMessage(
                    at + rng.uniform(0, 15.0),
                    users[j % 4],
                    "Kappa Kappa Kappa Kappa",
                    (("Kappa", 4),),
                )
                for j in range(40)
            ]
        injected.append(inj)
    return sorted([*msgs, *extra], key=lambda m: m.t), injected


@dataclass(frozen=True, slots=True)
class HypeEval:
    """How a detector's hype moments match the injected reactions."""

    hours: float
    moments: int
    per_hour: float
    crowd_recall: float  # crowd reactions and the raid with at least one moment
    split: int  # injected reactions matched by more than one moment
    noise: int  # moments overlapping no injection
    emoji_rank: int | None  # 1-based rank of the emoji burst's moment by score (None: no moment)
    raid_rank: int | None
    scores: dict[int, float]  # injection index -> best matching score


def evaluate(
    moments: list[tuple[float, float, float]], injected: list[Injected], hours: float
) -> HypeEval:
    """``moments`` as (start s, end s, score); a moment matches a reaction it overlaps."""

    def overlaps(m: tuple[float, float, float], inj: Injected) -> bool:
        return m[0] <= inj.at + inj.duration_s + 10 and m[1] >= inj.at - 10

    per_inj: dict[int, list[float]] = {}
    noise = 0
    for m in moments:
        hit = [i for i, inj in enumerate(injected) if overlaps(m, inj)]
        if not hit:
            noise += 1
        for i in hit:
            per_inj.setdefault(i, []).append(m[2])
    crowd = [i for i, inj in enumerate(injected) if inj.kind in ("crowd", "raid")]
    ranked = sorted((s for m in moments for s in [m[2]]), reverse=True)

    def rank(kind: str) -> int | None:
        idx = [i for i, inj in enumerate(injected) if inj.kind == kind and i in per_inj]
        return ranked.index(max(per_inj[idx[0]])) + 1 if idx else None

    return HypeEval(
        hours=hours,
        moments=len(moments),
        per_hour=len(moments) / hours,
        crowd_recall=sum(1 for i in crowd if i in per_inj) / len(crowd),
        split=sum(1 for v in per_inj.values() if len(v) > 1),
        noise=noise,
        emoji_rank=rank("emoji"),
        raid_rank=rank("raid"),
        scores={i: max(v) for i, v in per_inj.items()},
    )
