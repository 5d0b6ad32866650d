"""The detector against the real PostgreSQL on replayed real chat: live equals history."""

from __future__ import annotations

import asyncio
import itertools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from chatpulse.core.db import connect
from collector import irc
from detector.model import DetectorConfig
from detector.runner import Detector, run_detector
from tests.integration.test_replay import NYMN, replay, settings_for

CFG = DetectorConfig()
LINES = irc.parse_recent_messages((NYMN / "recentmessages-nymn.json").read_text())


def _sent_ms(line: str) -> int:
    return int(irc.parse_line(line).tags["tmi-sent-ts"])


def write_log(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def pieces(tmp_path: Path, cuts_ms: list[int]) -> list[Path]:
    """The nymn log split at the given sent times (ms) into consecutive files."""
    bounds = [0, *cuts_ms, 1 << 62]
    return [
        write_log(tmp_path, f"piece{i}.log", [line for line in LINES if lo <= _sent_ms(line) < hi])
        for i, (lo, hi) in enumerate(itertools.pairwise(bounds))
    ]


def events(url: str) -> tuple[list[Any], list[Any]]:
    with psycopg.connect(url) as conn:
        bursts = conn.execute(
            "SELECT emote_name, provider, started_at, peak_at, ended_at, peak_uses, baseline,"
            " score, total_uses, peak_messages FROM chat.emote_bursts ORDER BY 1, 3"
        ).fetchall()
        hypes = conn.execute(
            "SELECT started_at, peak_at, ended_at, score, messages_per_min, baseline_per_min,"
            " chatters, top_emotes, avg_sentiment, sample_messages FROM chat.hype_moments"
            " ORDER BY 1"
        ).fetchall()
    return bursts, hypes


def history(url: str) -> Any:
    return asyncio.run(run_detector(url, CFG, until_idle=True))


async def live_pass(url: str, now: datetime) -> Any:
    conn = await connect(url)
    try:
        return await Detector(CFG, now=lambda: now).detect_pass(conn)
    finally:
        await conn.close()


def test_replayed_nymn_gives_the_forsenparty_burst_once(db_url: str, tmp_path: Path) -> None:
    replay(settings_for(db_url, tmp_path), db_url, [write_log(tmp_path, "nymn.log", LINES)])
    history(db_url)
    bursts, _ = events(db_url)
    party = [b for b in bursts if b[0] == "forsenParty"]
    assert len(party) == 1
    _, provider, start, peak, end, peak_uses, _baseline, score, total, peak_msgs = party[0]
    assert provider == "twitch"
    assert datetime(2024, 1, 6, 16, 20, 10, tzinfo=UTC) <= start <= peak < end
    assert end <= datetime(2024, 1, 6, 16, 21, 30, tzinfo=UTC)
    assert peak_uses >= peak_msgs >= 8 and score >= CFG.emote_threshold and total >= peak_uses
    before = events(db_url)
    again = history(db_url)  # re-running adds, changes and deletes nothing
    assert (again.bursts_written, again.hypes_written, again.deleted) == (0, 0, 0)
    assert events(db_url) == before


def from_scratch(url: str) -> tuple[list[Any], list[Any]]:
    """The events a history run gives on the data now in the database."""
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM chat.detector_state")
        conn.execute("DELETE FROM chat.emote_bursts")
        conn.execute("DELETE FROM chat.hype_moments")
    history(url)
    return events(url)


def test_live_in_pieces_equals_history(db_url: str, tmp_path: Path) -> None:
    settings = settings_for(db_url, tmp_path)
    first, last = _sent_ms(LINES[0]), _sent_ms(LINES[-1])
    cuts = [first + 50_000, first + 100_000, first + 240_000]
    for i, path in enumerate(pieces(tmp_path, cuts)):
        replay(settings, db_url, [path])
        upto = cuts[i] + 3_000 if i < len(cuts) else last + 30_000
        # passes every few seconds while the piece's last seconds arrive
        for dt in (0, 4_000, 8_000):
            asyncio.run(live_pass(db_url, datetime.fromtimestamp((upto + dt) / 1000, UTC)))
    live = events(db_url)
    assert live[0]  # the burst was raised live
    assert from_scratch(db_url) == live


def test_late_gap_fill_messages_are_taken_in(db_url: str, tmp_path: Path) -> None:
    settings = settings_for(db_url, tmp_path)
    first, last = _sent_ms(LINES[0]), _sent_ms(LINES[-1])
    cut1, cut2 = first + 30_000, first + 120_000
    early, middle, rest = pieces(tmp_path, [cut1, cut2])
    replay(settings, db_url, [early, rest])  # the middle is missing: a disconnect
    asyncio.run(live_pass(db_url, datetime.fromtimestamp(last / 1000 + 60, UTC)))
    without = events(db_url)
    replay(settings, db_url, [middle])  # gap fill brings it back minutes later
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO chat.gaps (channel_id, started_at, ended_at, reason, filled_at)"
            " SELECT id, %s, %s, 'disconnect', now() FROM chat.channels",
            (datetime.fromtimestamp(cut1 / 1000, UTC), datetime.fromtimestamp(cut2 / 1000, UTC)),
        )
    asyncio.run(live_pass(db_url, datetime.fromtimestamp(last / 1000 + 70, UTC)))
    filled = events(db_url)
    assert filled != without  # the late rows changed the verdicts...
    assert from_scratch(db_url) == filled  # ...to what history says


def test_clock_skew_future_messages_wait_and_raise_no_storm(db_url: str, tmp_path: Path) -> None:
    settings = settings_for(db_url, tmp_path)
    replay(settings, db_url, [write_log(tmp_path, "nymn.log", LINES)])
    last = datetime.fromtimestamp(_sent_ms(LINES[-1]) / 1000, UTC)
    # A source whose clock runs an hour ahead: its rows are in the future of the detector.
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO chat.messages (sent_at, channel_id, message_id, user_id, user_login, text)"
            " SELECT %s + make_interval(secs => g), c.id, 'skew' || g, 'u' || g, 'u' || g, 'hi'"
            " FROM chat.channels c, generate_series(1, 50) g",
            (last + timedelta(hours=1),),
        )
    summary = asyncio.run(live_pass(db_url, last + timedelta(seconds=60)))
    assert summary.channels == 1
    bursts, hypes = events(db_url)
    assert len(bursts) <= 3 and len(hypes) <= 1
    with psycopg.connect(db_url) as conn:
        until = conn.execute("SELECT processed_until FROM chat.detector_state").fetchone()
    assert until is not None and until[0] <= last + timedelta(seconds=60)


DAY_MS = 86_400_000


def shifted(lines: list[str], delta_ms: int, tag: str) -> list[str]:
    """The lines moved by ``delta_ms`` with fresh message ids: another day's chat."""

    def move(m: re.Match[str]) -> str:
        return f"{m.group(1)}={int(m.group(2)) + delta_ms}"

    out = []
    for line in lines:
        line = re.sub(r"(tmi-sent-ts|rm-received-ts)=(\d+)", move, line)
        out.append(re.sub(r"([;@])id=([^; ]+)", rf"\1id=\2-{tag}", line))
    return out


def hype_lines(at_ms: int, count: int, over_ms: int) -> list[str]:
    """``count`` messages from as many chatters within ``over_ms`` of ``at_ms``: a hype."""
    return [
        f"@badges=;color=;display-name=fan{i};emotes=;id=hype-{at_ms}-{i};mod=0;"
        f"room-id=62300805;subscriber=0;tmi-sent-ts={at_ms + i * over_ms // count};turbo=0;"
        f"user-id=9{i:05d};user-type= :fan{i}!fan{i}@fan{i}.tmi.twitch.tv PRIVMSG #nymn"
        " :LETS GO LETS GO"
        for i in range(count)
    ]


def test_older_chat_replayed_after_live_processing_is_detected(db_url: str, tmp_path: Path) -> None:
    # Live collection saw a day before and a day after; then the user replays the VOD chat of
    # the day between (after the channel's first message, behind the live watermark, no gap
    # recorded) and runs the detector again.
    settings = settings_for(db_url, tmp_path)
    last = _sent_ms(LINES[-1])
    for n, delta in (("before", -DAY_MS), ("after", DAY_MS)):
        replay(settings, db_url, [write_log(tmp_path, f"{n}.log", shifted(LINES, delta, n))])
        for dt in (0, 4_000, 60_000):
            asyncio.run(live_pass(db_url, datetime.fromtimestamp((last + delta + dt) / 1000, UTC)))
    bursts, hypes = events(db_url)
    assert len([b for b in bursts if b[0] == "forsenParty"]) == 2
    hype_at = _sent_ms(LINES[0]) + 330_000  # 16:25:14, after the sample's real burst
    vod = sorted(LINES + hype_lines(hype_at, 120, 15_000), key=_sent_ms)
    replay(settings, db_url, [write_log(tmp_path, "vod.log", vod)])
    now = datetime.fromtimestamp((last + DAY_MS + 70_000) / 1000, UTC)
    got = asyncio.run(live_pass(db_url, now))
    assert got.new_messages == len(vod) - 2  # two of the sample's lines are not messages
    bursts, hypes = events(db_url)
    party = sorted(b[2] for b in bursts if b[0] == "forsenParty")
    assert len(party) == 3
    assert (
        datetime(2024, 1, 6, 16, 20, 10, tzinfo=UTC)
        <= party[1]
        <= datetime(2024, 1, 6, 16, 21, tzinfo=UTC)
    )
    injected = datetime.fromtimestamp(hype_at / 1000, UTC)
    found = [h for h in hypes if h[0] <= injected + timedelta(seconds=10) and h[2] > injected]
    assert len(found) == 1
    assert found[0][6] >= 60 and any("LETS GO" in s["text"] for s in found[0][9])  # chatters
    before = events(db_url)
    again = asyncio.run(live_pass(db_url, now + timedelta(seconds=2)))
    assert (again.new_messages, again.bursts_written, again.hypes_written, again.deleted) == (
        0,
        0,
        0,
        0,
    )
    assert events(db_url) == before
    assert from_scratch(db_url) == before  # live equals history
    rerun = history(db_url)
    assert (rerun.bursts_written, rerun.hypes_written, rerun.deleted) == (0, 0, 0)


def test_rows_of_a_transaction_that_commits_late_are_not_skipped(
    db_url: str, tmp_path: Path
) -> None:
    # A replay's transaction takes its ingest_seq values first and commits after live rows
    # with later ones; the detector passes in between must not move beyond its rows.
    settings = settings_for(db_url, tmp_path)
    replay(settings, db_url, [write_log(tmp_path, "nymn.log", LINES)])
    last = datetime.fromtimestamp(_sent_ms(LINES[-1]) / 1000, UTC)
    asyncio.run(live_pass(db_url, last + timedelta(seconds=60)))
    at = datetime.fromtimestamp((_sent_ms(LINES[0]) + 330_000) / 1000, UTC)
    slow = psycopg.connect(db_url)
    try:
        slow.execute(
            "INSERT INTO chat.messages (sent_at, channel_id, message_id, user_id, user_login, text)"
            " SELECT %s + make_interval(secs => g / 8.0), c.id, 'late' || g, 'f' || g, 'f' || g,"
            " 'LETS GO' FROM chat.channels c, generate_series(1, 120) g",
            (at,),
        )
        replay(settings, db_url, [write_log(tmp_path, "later.log", shifted(LINES, 60_000, "x"))])
        asyncio.run(live_pass(db_url, last + timedelta(seconds=130)))
        slow.commit()
    finally:
        slow.close()
    got = asyncio.run(live_pass(db_url, last + timedelta(seconds=132)))
    assert got.new_messages == 120
    _, hypes = events(db_url)
    assert [h for h in hypes if h[0] <= at + timedelta(seconds=10) and h[2] > at]
    assert from_scratch(db_url) == events(db_url)
