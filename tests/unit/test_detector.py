"""The detector's pure core on real chat: the nymn burst, injected bursts, quiet chat, cold start."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import pytest

from detector.model import DetectorConfig, detect, nb_tail_score, series_from_counts
from detector.synth import SynthMessage, inject_burst, retime, to_series
from tests.hype_stream import real_lines

CFG = DetectorConfig()
T0 = 1_700_000_000.0


REAL = real_lines()


def run(messages: Sequence[SynthMessage], cfg: DetectorConfig = CFG):  # type: ignore[no-untyped-def]
    h0 = int(min(m.t for m in messages) // cfg.step_s) - cfg.context_hops
    return detect(to_series(messages, cfg.step_s, h0), cfg, h0)


def test_nb_tail_matches_a_direct_sum() -> None:
    for x, mean, var in [(8, 1.6, 1.6), (12, 3.0, 7.0), (40, 20.0, 60.0), (3, 0.2, 0.2)]:
        if var <= mean:
            pmf = [math.exp(k * math.log(mean) - mean - math.lgamma(k + 1)) for k in range(x, 400)]
        else:
            p = mean / var
            r = mean * p / (1 - p)
            pmf = [
                math.exp(
                    math.lgamma(k + r)
                    - math.lgamma(r)
                    - math.lgamma(k + 1)
                    + r * math.log(p)
                    + k * math.log1p(-p)
                )
                for k in range(x, 2000)
            ]
        assert nb_tail_score(x, mean, var) == pytest.approx(-math.log10(sum(pmf)), rel=1e-6)
    assert nb_tail_score(2, 5.0, 5.0) == 0.0


def test_nymn_forsenparty_burst_is_found_with_plausible_bounds() -> None:
    found = run(REAL)
    bursts = [b for b in found.bursts if b.emote == "forsenParty"]
    assert len(bursts) >= 1
    b = bursts[0]
    # The surge is visible by eye at 16:20:20-16:21:10 UTC (4-9 messages with forsenParty
    # per 10 s against 1-4 in the first 40 s of the sample).
    start = 1704558020  # 16:20:20
    assert start - 10 <= b.start_hop * 5 <= start + 15
    assert b.start_hop <= b.peak_hop < b.end_hop
    assert b.end_hop * 5 <= start + 60
    assert b.peak_messages >= 8 and b.peak_uses >= b.peak_messages
    # Nothing else in 7.5 minutes of one channel is a storm.
    assert len(found.bursts) <= 3 and len(found.hypes) <= 1


def _injections(
    seed: int, emote: str, size: int, dur: float
) -> tuple[list[float], list[SynthMessage]]:
    rng = random.Random(seed)
    bg = retime(REAL, start=T0, duration_s=3 * 3600, mean_rate=1.8, seed=seed)
    ats = [T0 + 600 + k * 600 + rng.uniform(0, 300) for k in range(17)]
    msgs = bg
    for k, at in enumerate(ats):
        msgs = inject_burst(msgs, at=at, duration_s=dur, count=size, emote=emote, seed=k)
    return ats, msgs


@pytest.mark.parametrize(("emote", "size"), [("PogChamp", 8), ("forsenParty", 25)])
def test_injected_emote_bursts_precision_and_recall(emote: str, size: int) -> None:
    # 8 messages with a new emote in 10 s, or 25 with the sample's most used emote, into
    # 3 h of real nymn lines re-timed at 1.8 msg/s with a wandering rate; 17 injections x 3.
    hits = injected = tp = fp = 0
    for seed in range(3):
        ats, msgs = _injections(seed, emote, size, 10.0)
        found = run(msgs)
        hit: set[int] = set()
        for b in found.bursts:
            match = [
                i
                for i, at in enumerate(ats)
                if b.emote == emote and b.start_hop * 5 <= at + 20 and b.end_hop * 5 >= at - 10
            ]
            if match:
                hit.update(match)
                tp += 1
            else:
                fp += 1  # includes real spam clusters kept by the re-timing: conservative
        hits += len(hit)
        injected += len(ats)
    recall, precision = hits / injected, tp / (tp + fp)
    assert recall >= 0.95, recall
    assert precision >= 0.75, precision


def test_injected_hype_moments_are_found_and_rare_otherwise() -> None:
    hits = fps = injected = 0
    for seed in range(3):
        ats, msgs = _injections(seed, "HYPE", 120, 20.0)  # about 6x the rate for 20 s
        found = run(msgs)
        hit = {
            i
            for h in found.hypes
            for i, at in enumerate(ats)
            if h.start_hop * 5 <= at + 30 and h.end_hop * 5 >= at - 10
        }
        fps += sum(
            1
            for h in found.hypes
            if not any(h.start_hop * 5 <= at + 30 and h.end_hop * 5 >= at - 10 for at in ats)
        )
        hits += len(hit)
        injected += len(ats)
    assert hits / injected >= 0.95
    assert fps / 9.0 <= 1.0  # under one unplanned hype moment per hour of background


def test_quiet_chat_raises_nothing() -> None:
    rng = random.Random(1)
    # A message every ~40 s for 3 hours, with occasional doubles: never a storm.
    counts = [1 if rng.random() < 0.12 else 0 for _ in range(2160)]
    counts[1000] = 3
    s = series_from_counts(0, counts, emotes={"LUL": {i: 1 for i in range(0, 2160, 30)}})
    found = detect(s, CFG, 0)
    assert found.bursts == [] and found.hypes == []


def test_first_minutes_of_a_channel_raise_no_hype_storm() -> None:
    # A busy channel's first 3 minutes: no baseline yet, so no hype moment at all.
    msgs = [m for m in retime(REAL, start=T0, duration_s=180, mean_rate=6.0, seed=3)]
    found = run(msgs)
    assert found.hypes == []
    assert len(found.bursts) <= 2


def test_stream_start_after_a_long_silence_is_not_a_spike() -> None:
    # Yesterday's chat, 10 hours of silence, then today's stream starts at full rate.
    day1 = retime(REAL, start=T0, duration_s=1800, mean_rate=2.0, seed=4)
    day2 = retime(REAL, start=T0 + 1800 + 36000, duration_s=1800, mean_rate=2.0, seed=5)
    found = run([*day1, *day2])
    assert [h for h in found.hypes if h.start_hop * 5 >= T0 + 1800 + 36000 - 60] == []


def test_chunked_detection_equals_one_pass() -> None:
    _ats, msgs = _injections(7, "PogChamp", 12, 10.0)
    h0 = int(T0 // CFG.step_s) - CFG.context_hops
    whole = detect(to_series(msgs, CFG.step_s, h0), CFG, h0)
    # Live: the same data seen up to successive ends; each piece starts context_hops early.
    series = to_series(msgs, CFG.step_s, h0)
    bursts, hypes = {}, {}
    start = h0
    for end in range(h0 + 700, series.end + 700, 700):
        end = min(end, series.end)
        lo = max(h0, start - CFG.context_hops)
        part = series_from_counts(
            lo, series.messages[lo - h0 : end - h0], series.chatters[lo - h0 : end - h0]
        )
        part.emote_messages = {
            k: {h: c for h, c in v.items() if lo <= h < end}
            for k, v in series.emote_messages.items()
        }
        part.emote_uses = {
            k: {h: c for h, c in v.items() if lo <= h < end} for k, v in series.emote_uses.items()
        }
        got = detect(part, CFG, start)
        for b in got.bursts:
            bursts[(b.emote, b.start_hop)] = b
        for h in got.hypes:
            hypes[h.start_hop] = h
        open_starts = [e.start_hop for e in [*got.bursts, *got.hypes] if e.open]
        start = min([end - 12, *open_starts])
        for key in [k for k in bursts if k[1] >= start]:
            del bursts[key]
        for key in [k for k in hypes if k >= start]:
            del hypes[key]
        if end == series.end:
            for b in got.bursts:
                bursts[(b.emote, b.start_hop)] = b
            for h in got.hypes:
                hypes[h.start_hop] = h
            break
    assert sorted(
        (b.emote, b.start_hop, b.peak_hop, b.end_hop, b.peak_messages) for b in bursts.values()
    ) == sorted(
        (b.emote, b.start_hop, b.peak_hop, b.end_hop, b.peak_messages) for b in whole.bursts
    )
    assert sorted((h.start_hop, h.peak_hop, h.end_hop) for h in hypes.values()) == sorted(
        (h.start_hop, h.peak_hop, h.end_hop) for h in whole.hypes
    )
