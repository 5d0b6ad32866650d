"""The hype forecast on the 5-hour evaluation stream of real chat (tests/hype_stream.py).

The moments to foresee are the detector's own (as ``chatpulse forecast`` trains on
``chat.hype_moments``); the split is in time: train on the first 60 % of the stream, test on
the rest.  Measured (seeds 0-2): precision 0.58-0.88 against 0.28-0.34 for the trivial rule
"rate above 1.5x the baseline", recall 1.0 for both, median lead 12.5-25 s before the peak.
"""

from __future__ import annotations

import pytest

from forecast.features import (
    FEATURE_NAMES,
    Counts,
    ForecastConfig,
    Moment,
    baseline_rule,
    features,
    labels,
    score_warnings,
    time_split,
)

pytest.importorskip("sklearn", reason="the forecast needs the 'forecast' extra")

from detector.model import DetectorConfig, detect
from detector.synth import to_series
from forecast.model import evaluate_split, training_rows
from tests.hype_stream import build_stream

CFG = DetectorConfig()
FC = ForecastConfig()


def _stream(seed: int) -> tuple[Counts, list[Moment]]:
    msgs, _ = build_stream(seed)
    h0 = int(min(m.t for m in msgs) // CFG.step_s) - CFG.context_hops
    s = to_series(msgs, CFG.step_s, h0)
    n = len(s.messages)
    em, top = [0] * n, [0] * n
    for sparse in s.emote_messages.values():
        for h, c in sparse.items():
            em[h - h0] += c
            top[h - h0] = max(top[h - h0], c)
    found = detect(s, CFG, h0)
    moments = [Moment(h.start_hop, h.peak_hop, h.end_hop) for h in found.hypes]
    return Counts(h0, s.messages, s.chatters, em, top), moments


@pytest.fixture(scope="module", params=[0, 1])
def stream(request: pytest.FixtureRequest) -> tuple[Counts, list[Moment]]:
    return _stream(request.param)


def test_the_forecast_warns_before_the_peak_and_beats_the_trivial_rule(
    stream: tuple[Counts, list[Moment]],
) -> None:
    counts, moments = stream
    split = time_split(counts, FC)
    ev = evaluate_split(counts, moments, FC, split)
    fc, bl = ev.forecast, ev.baseline
    assert fc.moments >= 10  # the last 2 hours hold a dozen reactions
    assert fc.recall >= 0.8, fc
    # Warned *before* the peak: every lead is positive, most by 10 s or more.
    assert all(lead >= 0 for lead in fc.leads_s)
    assert sum(lead >= 10 for lead in fc.leads_s) >= 0.6 * fc.moments, fc.leads_s
    assert fc.lead_median_s is not None and fc.lead_median_s >= 10
    # The trivial rule catches them too, but cries wolf on every wander of the chat rate.
    assert fc.precision >= 0.5, fc
    assert fc.precision >= bl.precision + 0.2, (fc, bl)
    assert fc.f1 > bl.f1 + 0.15, (fc, bl)


def test_training_sees_only_the_earlier_period(stream: tuple[Counts, list[Moment]]) -> None:
    counts, moments = stream
    split = time_split(counts, FC)
    horizon = FC.hops(FC.horizon_s)
    assert split.by == "time" and split.train_end == split.test_start - horizon
    ev = evaluate_split(counts, moments, FC, split)
    assert ev.model.train_last_hop < split.train_end
    _, _, hops = training_rows(counts, moments, FC, split.train_end)
    assert hops and max(hops) < split.train_end
    # No training row's label looks at the test period: the labels are the same when every
    # moment peaking there is removed.
    earlier = [m for m in moments if m.peak_hop < split.test_start]
    assert len(earlier) < len(moments)
    x1, y1, h1 = training_rows(counts, moments, FC, split.train_end)
    x2, y2, h2 = training_rows(counts, earlier, FC, split.train_end)
    assert (x1, y1, h1) == (x2, y2, h2)
    # ... and the features of a training hop do not change when the test period is cut off.
    cut = split.test_start - counts.start
    head = Counts(
        counts.start,
        counts.messages[:cut],
        counts.chatters[:cut],
        counts.emote_messages[:cut],
        counts.top_emote[:cut],
        counts.sentiment[:cut],
    )
    assert features(head, FC) == features(counts, FC)[:cut]


def test_a_later_stream_is_the_test_set() -> None:
    # Three streams an hour apart in time (silence between): the split falls at a stream's
    # start, not inside one.
    on = [3] * 720  # an hour of chat
    off = [0] * 720
    counts = Counts(1000, on + off + on + off + on, on + off + on + off + on)
    split = time_split(counts, FC)
    assert split.by == "stream"
    assert split.test_start == 1000 + 2 * 1440
    assert split.train_end == split.test_start - FC.hops(FC.horizon_s)


def test_labels_and_masks() -> None:
    counts = Counts(100, [1] * 60, [1] * 60)
    m = Moment(start_hop=130, peak_hop=134, end_hop=140)
    lab = labels(counts, [m], FC)
    horizon = FC.hops(FC.horizon_s)  # 12 hops
    # The hop ending at the peak's start and the 11 before it: a peak within 60 s.
    assert [h + 100 for h, v in enumerate(lab) if v == 1] == list(range(134 - horizon, 134))
    assert [h + 100 for h, v in enumerate(lab) if v is None] == list(range(134, 140))
    assert lab[0] == 0 and lab[-1] == 0


def test_scoring_counts_warnings_and_leads() -> None:
    start, n = 0, 200
    moments = [Moment(50, 60, 70), Moment(150, 155, 160)]
    predicted = [False] * n
    for h in (52, 53, 54):  # warned from 8 hops before the first peak
        predicted[h] = True
    predicted[100] = True  # a false alarm
    predicted[63] = True  # inside the first moment after its peak: not counted
    score = score_warnings(start, predicted, moments, FC, 0, n)
    assert (score.warnings, score.true_warnings) == (2, 1)
    assert (score.moments, score.caught) == (2, 1)
    assert score.leads_s == (35.0,)  # peak_at (hop 60: 300 s) - end of hop 52 (265 s)
    assert score.precision == 0.5 and score.recall == 0.5


def test_features_use_the_past_only_and_the_baseline_rule_reads_the_rate() -> None:
    msgs = [2] * 200 + [9, 10] + [2] * 50
    counts = Counts(0, msgs, msgs)
    rows = features(counts, FC)
    assert all(len(r) == len(FEATURE_NAMES) for r in rows if r is not None)
    assert rows[0] is None  # no baseline yet
    for k in (150, 201, 230):
        short = Counts(0, msgs[: k + 1], msgs[: k + 1])
        assert features(short, FC) == rows[: k + 1]
    warn = baseline_rule(rows)
    assert warn[201] and not warn[199]
