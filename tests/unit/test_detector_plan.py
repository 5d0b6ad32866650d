"""The detector runner's pure decisions (detector/plan.py) on literal values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from detector.model import BurstEvent, DetectorConfig, HypeEvent
from detector.plan import (
    ChannelState,
    EventKey,
    EventValues,
    JudgeRange,
    Sample,
    as_real,
    choose_samples,
    event_changes,
    hop_of,
    hop_start,
    plan_ranges,
    state_bounds,
    widen_to_events,
)

CFG = DetectorConfig()
STEP = CFG.step_s
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
H0 = hop_of(T0, STEP)


def _channel(**kw: object) -> ChannelState:
    fields: dict[str, object] = {
        "id": 1,
        "processed": None,
        "first_at": None,
        "last_at": None,
        "snapshot": None,
        "snap_xmin": None,
        "updated_at": None,
    }
    fields.update(kw)
    return ChannelState(**fields)  # type: ignore[arg-type]


def _hype(start: int, end: int, score: float = 6.0) -> HypeEvent:
    return HypeEvent(start, start + 1, end, 40, 5.0, score, open=False)


def test_hops_round_trip_to_the_start_of_their_step() -> None:
    assert hop_start(hop_of(T0 + timedelta(seconds=3), STEP), STEP) == T0
    assert as_real(0.1) != 0.1 and abs(as_real(0.1) - 0.1) < 1e-7


def test_a_channel_never_judged_is_judged_from_its_first_new_row() -> None:
    ch = _channel(fresh=[(T0, T0 + timedelta(minutes=10))], fresh_count=100)
    closed_now = H0 + 100_000
    [r] = plan_ranges([ch], closed_now, CFG, late_window_s=60)
    assert r.start == H0 and r.limit is None
    # Past the last message plus a merge gap every window is final: not up to now.
    assert r.end == r.closed < closed_now


def test_a_channel_with_no_messages_and_nothing_new_is_not_judged() -> None:
    assert plan_ranges([_channel()], H0, CFG, late_window_s=60) == []


def test_old_new_rows_get_a_bounded_range_of_their_own() -> None:
    live = T0 + timedelta(days=7)
    ch = _channel(
        processed=live,
        first_at=T0 - timedelta(days=1),
        last_at=live,
        snapshot="1:1:",
        fresh=[(T0, T0 + timedelta(seconds=30))],
        fresh_count=3,
    )
    ranges = plan_ranges([ch], hop_of(live, STEP) + 10, CFG, late_window_s=60)
    [old] = [r for r in ranges if r.limit is not None]
    assert old.start == H0
    assert old.limit == hop_of(T0 + timedelta(seconds=30), STEP) + CFG.context_hops + 3


def test_an_unchanged_event_is_not_rewritten_and_a_dissolved_one_goes() -> None:
    ch = _channel()
    r = JudgeRange(ch, H0, None, H0 + 200, H0 + 200, refresh_from=H0 + 200)
    hype = _hype(H0 + 10, H0 + 30)
    per_min = 60.0 / (STEP * CFG.span_hops)
    same = EventValues(
        H0 + 10,
        H0 + 30,
        (
            hop_start(H0 + 30, STEP),
            hop_start(H0 + 11, STEP),
            as_real(6.0),
            as_real(40 * per_min),
            as_real(5.0 * per_min),
        ),
    )
    gone_key = EventKey("b", "PogChamp", hop_start(H0 + 50, STEP))
    r.existing = {
        EventKey("h", "", hop_start(H0 + 10, STEP)): same,
        gone_key: EventValues(H0 + 50, H0 + 55, ()),
    }
    burst = BurstEvent("KEKW", H0 + 5, H0 + 6, H0 + 9, 8, 12, 1.0, 1.5, 5.0, 30, open=False)
    changes = event_changes(r, [burst], [hype], CFG)
    assert changes.hypes == []
    assert [k.emote for k, _ in changes.bursts] == ["KEKW"]
    assert changes.gone_bursts == [gone_key] and changes.gone_hypes == []
    # The same hype ending after refresh_from has its details recomputed.
    r.refresh_from = H0
    assert event_changes(r, [], [hype], CFG).hypes == [hype]


def test_a_range_moves_back_to_an_event_under_way_and_asks_for_more() -> None:
    r = JudgeRange(_channel(), H0, None, H0 + 100, H0 + 100, H0, fetched_from=H0 - 10)
    r.existing = {EventKey("h", "", T0): EventValues(H0 - 8, H0 + 2, ())}
    assert widen_to_events(r, gap=10) is True
    assert r.start == H0 - 8


def test_state_bounds_take_the_live_end_or_else_the_first_new_row() -> None:
    ch = _channel(fresh=[(T0, T0 + timedelta(seconds=9))])
    live = JudgeRange(ch, H0, None, H0 + 7, H0 + 7, H0)
    assert state_bounds(ch, live, STEP).processed_until == hop_start(H0 + 7, STEP)
    bounds = state_bounds(ch, None, STEP)
    assert bounds.processed_until == T0 == bounds.first_message_at
    assert bounds.last_message_at == T0 + timedelta(seconds=9)


def test_samples_are_the_most_repeated_texts_with_an_author() -> None:
    rows = [
        Sample("a", "hello", T0),
        Sample("b", "KEKW", T0 + timedelta(seconds=1)),
        Sample(None, "kekw", T0 + timedelta(seconds=2)),
        Sample("c", "  KEKW ", T0 + timedelta(seconds=3)),
    ]
    assert choose_samples(rows, 2) == [
        {"user": "b", "text": "KEKW", "at": (T0 + timedelta(seconds=1)).isoformat()},
        {"user": "a", "text": "hello", "at": T0.isoformat()},
    ]
