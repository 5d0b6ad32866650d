"""The pure clip planning: segment names, cut plans across boundaries, VODs, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chatpulse.core.errors import MediaError, MediaNotReady
from clipper.segments import (
    Segment,
    clip_window,
    format_segment_name,
    parse_segment_name,
    plan_cut,
    plan_retention,
    plan_vod,
)

T0 = datetime(2024, 1, 6, 16, 20, 0, tzinfo=UTC)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def segs(*starts: float, last_duration: float | None = 2.0) -> list[Segment]:
    out = [Segment(Path(format_segment_name(at(s))), at(s)) for s in starts]
    out[-1] = Segment(out[-1].path, out[-1].start, last_duration)
    return out


def test_segment_names_round_trip_with_and_without_milliseconds() -> None:
    assert parse_segment_name("20240106T162000Z.ts") == T0
    assert parse_segment_name("20240106T162002.023Z.ts") == at(2.023)
    assert format_segment_name(T0) == "20240106T162000Z.ts"
    assert format_segment_name(at(2.023)) == "20240106T162002.023Z.ts"


@pytest.mark.parametrize(
    "name",
    [
        "20240106T162000.ts",
        "x20240106T162000Z.ts",
        "20241306T162000Z.ts",
        "a.ts",
        "20240106T162000Z.mp4",
        "../20240106T162000Z.ts",
    ],
)
def test_other_file_names_are_not_segments(name: str) -> None:
    assert parse_segment_name(name) is None


def test_clip_window_is_pre_roll_before_and_post_roll_after_the_peak() -> None:
    w = clip_window(at(100), 20, 10)
    assert (w.start, w.end, w.peak) == (at(80), at(110), at(100))


def test_a_window_across_boundaries_uses_each_overlapping_segment_once() -> None:
    plan = plan_cut(segs(0, 2, 4, 6, 8), at(3.5), at(7.25))
    assert [p.path.name for p in plan.parts] == [
        format_segment_name(at(2)),
        format_segment_name(at(4)),
        format_segment_name(at(6)),
    ]
    assert plan.parts[0].inpoint == pytest.approx(1.5)
    assert plan.parts[0].outpoint is None
    assert plan.parts[1].inpoint is None and plan.parts[1].outpoint is None
    assert plan.parts[-1].outpoint == pytest.approx(1.25)
    assert plan.duration_s == pytest.approx(3.75)


def test_a_window_inside_one_segment_has_both_points() -> None:
    plan = plan_cut(segs(0, 2, 4), at(2.5), at(3.0))
    assert len(plan.parts) == 1
    assert (plan.parts[0].inpoint, plan.parts[0].outpoint) == (0.5, 1.0)


def test_a_window_before_the_recording_is_clamped_to_its_start() -> None:
    plan = plan_cut(segs(10, 12), at(5), at(11))
    assert plan.start == at(10) and plan.parts[0].inpoint is None


def test_the_end_not_yet_recorded_means_not_ready() -> None:
    with pytest.raises(MediaNotReady):
        plan_cut(segs(0, 2, 4, last_duration=None), at(1), at(5))


def test_a_window_before_the_open_segment_is_ready() -> None:
    plan = plan_cut(segs(0, 2, 4, last_duration=None), at(1), at(3))
    assert plan.duration_s == 2


def test_no_overlap_is_a_media_error() -> None:
    with pytest.raises(MediaError):
        plan_cut(segs(0, 2), at(10), at(20))
    with pytest.raises(MediaError):
        plan_cut([], at(0), at(1))


def test_a_finished_recording_clamps_the_end() -> None:
    plan = plan_cut(segs(0, 2, last_duration=1.5), at(1), at(10))
    assert plan.end == at(3.5)


def test_vod_offsets_and_clamps() -> None:
    assert plan_vod(at(0), 3600, at(100), at(130)) == (100, 30)
    assert plan_vod(at(0), 110, at(100), at(130)) == (100, 10)
    assert plan_vod(at(50), None, at(0), at(60)) == (0, 10)
    with pytest.raises(MediaError):
        plan_vod(at(0), 10, at(100), at(130))


def test_retention_drops_old_then_oldest_until_it_fits_and_keeps_the_newest() -> None:
    now = at(1000)
    entries = [(Path(f"{i}"), at(i * 100), 10) for i in range(10)]
    assert plan_retention(entries, now, max_age_s=450, max_bytes=1000) == [
        Path(str(i)) for i in range(6)
    ]
    assert plan_retention(entries, now, max_age_s=1e9, max_bytes=35) == [
        Path(str(i)) for i in range(7)
    ]
    assert plan_retention(entries[-1:], now, max_age_s=0, max_bytes=0) == []
