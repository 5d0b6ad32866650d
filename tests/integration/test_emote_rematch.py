"""Channel emotes for replays that carry no room id (issue 13.3) and one truth for emote counts
(issue 20.4): a real TXT export of #nymn, a fake 7TV/BTTV/FFZ/IVR/Helix served on a real
socket with the real 7TV set of #nymn, real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from chatpulse.app.cli import main
from chatpulse.app.report import load_report
from chatpulse.core.settings import Settings, load_settings
from collector import irc
from collector.app import replay_files
from collector.emotes import resolve_channel_id
from collector.events import ChatMessage
from collector.rematch import rematch_channel
from tests.conftest import FIXTURES
from tests.emote_api_stub import NYMN_ID, EmoteApiStub, nymn_routes
from tests.helpers import closed_port_url, write_irc_log

NYMN = FIXTURES / "chatterino-recentmessages-nymn"


def nymn_messages() -> list[ChatMessage]:
    lines = irc.parse_recent_messages((NYMN / "recentmessages-nymn.json").read_text())
    out = []
    for line in lines:
        event = irc.parse_event(line, source="replay")
        if isinstance(event, ChatMessage):
            out.append(event)
    return out


def nymn_txt(tmp_path: Path) -> Path:
    """The #nymn sample as TwitchDownloader writes a TXT export (UTC stamps, no room id)."""
    path = tmp_path / "nymn.txt"
    rows = [
        f"[{m.sent_at:%Y-%m-%d %H:%M:%S}.{m.sent_at.microsecond // 1000:03d} UTC] "
        f"{m.user_name or m.user_login}: {m.text}"
        for m in nymn_messages()
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def seventv_names() -> set[str]:
    user = json.loads((NYMN / "seventvemotes-nymn.json").read_text())
    return {
        e["name"]
        for e in user["emote_set"]["emotes"]
        if not ((e.get("data") or {}).get("flags", 0) & (1 << 24))
    }


def expected_7tv_uses() -> Counter[str]:
    """Independent count: every whitespace-separated word that is a 7TV name of #nymn (the TXT
    export knows no native Twitch emotes, and the fake BTTV/FFZ have no set for #nymn)."""
    names = seventv_names()
    out: Counter[str] = Counter()
    for m in nymn_messages():
        out.update(w for w in m.text.split() if w in names)
    return out


def settings_for(db_url: str, tmp_path: Path, **extra: Any) -> Settings:
    return load_settings(
        overrides={
            "database_url": db_url,
            "data_dir": tmp_path / "data",
            "flush_interval_s": 0.05,
            **extra,
        }
    )


def one(url: str, query: str, *args: object) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(query, args or None).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return row[0]


def uses_by_name(url: str, provider: str) -> Counter[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT emote_name, sum(count) FROM chat.emote_uses WHERE provider = %s GROUP BY 1",
            (provider,),
        ).fetchall()
    return Counter({name: int(n) for name, n in rows})


def assert_one_truth(url: str) -> None:
    """emote_count of every message equals its stored uses, and every aggregate agrees."""
    assert (
        one(
            url,
            "SELECT count(*) FROM chat.messages m WHERE m.emote_count <> coalesce(("
            "SELECT sum(e.count) FROM chat.emote_uses e WHERE e.channel_id = m.channel_id "
            "AND e.message_id = m.message_id AND e.sent_at = m.sent_at), 0)",
        )
        == 0
    )
    total = one(url, "SELECT coalesce(sum(count), 0) FROM chat.emote_uses")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT chat.refresh_aggregates()")
    assert one(url, "SELECT coalesce(sum(emote_count), 0) FROM chat.messages") == total
    assert one(url, "SELECT coalesce(sum(emote_uses), 0) FROM chat.activity_1m") == total
    assert one(url, "SELECT coalesce(sum(emote_uses), 0) FROM chat.activity_1h") == total
    assert one(url, "SELECT coalesce(sum(uses), 0) FROM chat.emotes_10s") == total
    assert one(url, "SELECT coalesce(sum(uses), 0) FROM chat.emotes_1m") == total


def replay(settings: Settings, url: str, files: list[Path], **kw: Any) -> Any:
    return asyncio.run(replay_files(settings, url, files, **kw))


def test_txt_replay_without_room_id_then_rematch_adds_channel_emotes_once(
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    txt = nymn_txt(tmp_path)
    expected = expected_7tv_uses()
    assert expected["forsenParty"] > 100 and expected["RaveTime"] > 10  # the sample has them
    with EmoteApiStub(nymn_routes()) as api:
        # First load: the id cannot be found (no IVR, no Helix credentials): warned once.
        first = replay(
            settings_for(db_url, tmp_path, **{**api.settings(), "ivr_api_url": ""}),
            db_url,
            [txt],
            fmt="twitchdownloader-txt",
            channel="nymn",
        )
        assert first.inserted == len(nymn_messages())
        assert first.emote_warnings == [
            "channel emotes of #nymn not loaded: its platform id is unknown (pass "
            "--channel-id, or set twitch_client_id and twitch_oauth_token for Helix)"
        ]
        assert uses_by_name(db_url, "7tv") == Counter()
        assert one(db_url, "SELECT platform_id FROM chat.channels WHERE name = 'nymn'") is None

        # Rematch: IVR maps the login to the id, 7TV's set is loaded and matched.
        settings = settings_for(db_url, tmp_path, **api.settings())
        result = asyncio.run(rematch_channel(settings, db_url, "nymn"))
        assert "/ivr/v2/twitch/user?login=nymn" in api.paths()
        assert result.platform_id == NYMN_ID and result.warnings == []
        assert result.messages == len(nymn_messages())
        assert uses_by_name(db_url, "7tv") == expected
        assert result.uses_added == sum(expected.values())
        assert result.counts_fixed > 0
        assert one(db_url, "SELECT platform_id FROM chat.channels WHERE name = 'nymn'") == NYMN_ID
        assert_one_truth(db_url)
        before = one(db_url, "SELECT count(*) FROM chat.emote_uses")

        # Twice adds nothing (through the command line this time).
        capsys.readouterr()
        for key, value in api.settings().items():
            monkeypatch.setenv(f"CHATPULSE_{key.upper()}", value)
        argv = ["--database-url", db_url, "--data-dir", str(tmp_path / "data")]
        assert main([*argv, "emotes", "rematch", "--channel", "NymN"]) == 0
        out = capsys.readouterr().out
        assert f"#nymn (id {NYMN_ID})" in out and "0 emote uses added (0 rows)" in out
        assert "corrected on 0 messages" in out
        assert one(db_url, "SELECT count(*) FROM chat.emote_uses") == before
        assert uses_by_name(db_url, "7tv") == expected
        assert_one_truth(db_url)


def test_replay_after_the_sets_are_known_adds_uses_to_stored_messages(
    db_url: str, tmp_path: Path
) -> None:
    txt = nymn_txt(tmp_path)
    expected = expected_7tv_uses()
    with EmoteApiStub(nymn_routes()) as api:
        no_lookup = settings_for(db_url, tmp_path, **{**api.settings(), "ivr_api_url": ""})
        replay(no_lookup, db_url, [txt], fmt="twitchdownloader-txt", channel="nymn")
        assert uses_by_name(db_url, "7tv") == Counter()
        emoji_before = uses_by_name(db_url, "emoji")

        # Same file again, now with --channel-id: nothing new, but the 7TV uses are added to
        # the stored messages and their emote_count follows.
        again = replay(
            no_lookup, db_url, [txt], fmt="twitchdownloader-txt", channel="nymn",
            channel_id=NYMN_ID,
        )  # fmt: skip
        assert (again.inserted, again.duplicates) == (0, len(nymn_messages()))
        assert again.emote_uses_backfilled == sum(expected.values())
        assert again.emote_warnings == []
        assert uses_by_name(db_url, "7tv") == expected
        assert uses_by_name(db_url, "emoji") == emoji_before  # not counted twice
        assert one(db_url, "SELECT platform_id FROM chat.channels WHERE name = 'nymn'") == NYMN_ID
        assert_one_truth(db_url)

        # A third time: the stored id is used, and nothing is added.
        third = replay(no_lookup, db_url, [txt], fmt="twitchdownloader-txt", channel="nymn")
        assert (third.inserted, third.emote_uses_backfilled) == (0, 0)
        assert uses_by_name(db_url, "7tv") == expected
        assert_one_truth(db_url)


def test_unreachable_providers_are_one_warning_line(
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    down = closed_port_url()
    txt = nymn_txt(tmp_path)
    argv = [
        "--database-url", db_url, "--data-dir", str(tmp_path / "data"), "--log-format", "text",
        "replay", str(txt), "--format", "twitchdownloader-txt", "--channel", "nymn",
        "--channel-id", NYMN_ID,
    ]  # fmt: skip
    for key in ("BTTV", "FFZ", "SEVENTV", "IVR"):
        monkeypatch.setenv(f"CHATPULSE_{key}_API_URL", down)
    assert main(argv) == 0
    err = capsys.readouterr().err
    emote_lines = [line for line in err.splitlines() if "emote" in line.lower()]
    assert len(emote_lines) == 1, err
    line = emote_lines[0]
    assert line.startswith("warning: channel emotes of #nymn not loaded: ")
    assert line.endswith(
        "bttv channel, ffz channel, 7tv channel, bttv global, ffz global, 7tv global: "
        "ConnectError: All connection attempts failed"
    )


def test_channel_id_from_helix_first_then_ivr(tmp_path: Path) -> None:
    routes = nymn_routes()
    routes["/helix/users?login=nymn"] = (200, {"data": [{"id": "111", "login": "nymn"}]})
    routes["/ivr/v2/twitch/user?login=other"] = (200, [{"id": "999", "login": "someoneelse"}])

    async def lookups(api: EmoteApiStub) -> list[Any]:
        s = api.settings()
        async with httpx.AsyncClient() as http:
            return [
                await resolve_channel_id(
                    http, "NymN", helix_url=s["helix_api_url"], client_id="cid",
                    token="oauth:tok", ivr_url=s["ivr_api_url"],
                ),
                await resolve_channel_id(
                    http, "nymn", helix_url=s["helix_api_url"], ivr_url=s["ivr_api_url"]
                ),
                await resolve_channel_id(http, "other", ivr_url=s["ivr_api_url"]),
            ]  # fmt: skip

    with EmoteApiStub(routes) as api:
        helix, ivr, wrong = asyncio.run(lookups(api))
        helix_headers = next(h for p, h in api.requests if p.startswith("/helix/"))
    assert (helix.channel_id, helix.source) == ("111", "helix")
    assert helix_headers["Client-Id"] == "cid"
    assert helix_headers["Authorization"] == "Bearer tok"
    assert (ivr.channel_id, ivr.source) == (NYMN_ID, "ivr")  # no credentials: Helix not asked
    assert wrong.channel_id is None  # an answer about another login is not taken
    assert wrong.errors == ("ivr: no user 'other' in the answer",)


def test_report_top_emotes_equal_the_stored_uses_of_its_window(db_url: str, tmp_path: Path) -> None:
    log_file = write_irc_log(tmp_path / "nymn.log")
    replay(settings_for(db_url, tmp_path, emote_providers=[]), db_url, [log_file])
    first = one(db_url, "SELECT min(sent_at) FROM chat.messages")
    # A window that starts and ends inside 10 s buckets.
    start = first + timedelta(seconds=93, milliseconds=500)
    end = start + timedelta(minutes=3, seconds=7)
    data = asyncio.run(load_report(db_url, "nymn", start, end))
    with psycopg.connect(db_url) as conn:
        stored = conn.execute(
            "SELECT emote_name, provider, sum(count) FROM chat.emote_uses "
            "WHERE sent_at >= %s AND sent_at < %s GROUP BY 1, 2",
            (start, end),
        ).fetchall()
    want = sorted(((n, p, int(u)) for n, p, u in stored), key=lambda r: (-r[2], r[0], r[1]))
    got = [(r["emote_name"], r["provider"], int(r["uses"])) for r in data.top_emotes]
    assert got == want[:15]
    assert got[0][0] == "forsenParty"


def test_rematch_usage_errors_exit_2_naming_the_flag(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--database-url", db_url, "--data-dir", str(tmp_path / "data"), "emotes", "rematch"]
    assert main([*base, "--channel", "nymn", "--from", "yesterday"]) == 2
    assert "--from: not an ISO 8601 time" in capsys.readouterr().err
    assert main([*base, "--channel", "nobody", "--channel-id", "1"]) == 2
    assert "--channel: no twitch channel named 'nobody'" in capsys.readouterr().err
