"""Stream titles and categories from Helix (analytics/helix.py) against a local fake Helix on a
real socket (tests/emote_api_stub.py), on the real #nymn sample replayed as two streams a day
apart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analytics.helix import HelixSource, helix_source
from chatpulse.core.settings import load_settings
from tests.emote_api_stub import NYMN_ID, EmoteApiStub
from tests.integration.test_analytics import analyze, nymn_log, replay, rows

DAY = timedelta(days=1)
# The sample's first line is at 16:19:5x UTC; the broadcasts began a little earlier.
FIRST_START = datetime(2024, 1, 6, 16, 15, tzinfo=UTC)
SECOND_START = FIRST_START + DAY


def _routes(login_known: bool) -> dict[str, tuple[int, object]]:
    routes: dict[str, tuple[int, object]] = {
        f"/helix/streams?user_id={NYMN_ID}": (
            200,
            {
                "data": [
                    {
                        "user_login": "nymn",
                        "started_at": SECOND_START.isoformat().replace("+00:00", "Z"),
                        "title": "second day: chat plays",
                        "game_name": "Just Chatting",
                    }
                ]
            },
        ),
        f"/helix/videos?user_id={NYMN_ID}&type=archive&first=100": (
            200,
            {
                "data": [
                    # the live broadcast's VOD (same start within minutes): the live one wins
                    {
                        "created_at": (SECOND_START + timedelta(seconds=20)).isoformat(),
                        "title": "vod",
                    },
                    {"created_at": FIRST_START.isoformat(), "title": "first day"},
                ]
            },
        ),
    }
    if login_known:
        routes["/helix/users?login=nymn"] = (200, {"data": [{"id": NYMN_ID, "login": "nymn"}]})
    return routes


def _streams(url: str) -> list[tuple[object, ...]]:
    return rows(
        url, "SELECT started_at, found_by, title, category FROM chat.streams ORDER BY started_at"
    )


def test_helix_fills_titles_and_categories_and_asking_again_changes_nothing(
    db_url: str, tmp_path: Path
) -> None:
    from analytics.runner import run_analyze

    replay(db_url, tmp_path, [nymn_log(tmp_path), nymn_log(tmp_path, DAY, "second.log")])
    analyze(db_url)
    before = _streams(db_url)
    assert [s[1:] for s in before] == [("activity", None, None)] * 2
    with EmoteApiStub(_routes(login_known=True)) as api:
        source = HelixSource(f"{api.url}/helix", "cid", "oauth:tok")
        first = asyncio.run(
            run_analyze(db_url, timedelta(minutes=30), until_idle=True, helix=source)
        )
        assert first.streams_recomputed == 2
        assert _streams(db_url) == [
            (FIRST_START, "helix", "first day", None),
            (SECOND_START, "helix", "second day: chat plays", "Just Chatting"),
        ]
        headers = [h for p, h in api.requests if p.startswith("/helix/")]
        assert headers and all(
            h.get("Client-Id") == "cid" and h.get("Authorization") == "Bearer tok" for h in headers
        )
        # Asked again with the same answers: nothing is new, nothing recomputed.
        again = asyncio.run(
            run_analyze(db_url, timedelta(minutes=30), until_idle=True, helix=source)
        )
        assert again.streams_recomputed == 0 and len(api.paths()) > len(headers)
    # A title changed on Helix reaches the stream.
    routes = _routes(login_known=True)
    routes[f"/helix/videos?user_id={NYMN_ID}&type=archive&first=100"] = (
        200,
        {"data": [{"created_at": FIRST_START.isoformat(), "title": "first day (renamed)"}]},
    )
    with EmoteApiStub(routes) as api:
        source = HelixSource(f"{api.url}/helix", "cid", "tok")
        changed = asyncio.run(
            run_analyze(db_url, timedelta(minutes=30), until_idle=True, helix=source)
        )
    assert changed.streams_recomputed == 1
    assert _streams(db_url)[0][2] == "first day (renamed)"


def test_helix_failure_keeps_the_streams_chat_found(db_url: str, tmp_path: Path) -> None:
    from analytics.runner import run_analyze

    replay(db_url, tmp_path, [nymn_log(tmp_path)])
    with EmoteApiStub({}) as api:  # every ask is a 404
        total = asyncio.run(
            run_analyze(
                db_url,
                timedelta(minutes=30),
                until_idle=True,
                helix=HelixSource(f"{api.url}/helix", "cid", "tok"),
            )
        )
        assert api.paths()  # it asked
    assert total.streams_created == 1
    assert [s[1:] for s in _streams(db_url)] == [("activity", None, None)]


def test_without_credentials_helix_is_never_asked(
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chatpulse.app.cli import main

    replay(db_url, tmp_path, [nymn_log(tmp_path)])
    with EmoteApiStub(_routes(login_known=True)) as api:
        partial = load_settings(
            overrides={"database_url": db_url, "twitch_client_id": "cid", "helix_api_url": api.url}
        )
        assert helix_source(partial) is None  # a client id alone is not enough
        # the command sees the fake Helix and a client id, but no token
        monkeypatch.setenv("CHATPULSE_HELIX_API_URL", f"{api.url}/helix")
        monkeypatch.setenv("CHATPULSE_TWITCH_CLIENT_ID", "cid")
        monkeypatch.delenv("CHATPULSE_TWITCH_OAUTH_TOKEN", raising=False)
        base = ["--database-url", db_url, "--data-dir", str(tmp_path / "d")]
        assert main(["analyze", "--until-idle", *base]) == 0
        assert api.paths() == []
    assert "1 streams recomputed" in capsys.readouterr().out
    assert [s[1:] for s in _streams(db_url)] == [("activity", None, None)]
