"""Stream titles and categories from Twitch Helix, as stream hints (``chat.stream_hints``,
``found_by = 'helix'``) that the next analyze pass draws into ``chat.streams``.

Asked only when both ``twitch_client_id`` and ``twitch_oauth_token`` are set
(:func:`helix_source`); without them nothing is asked and nothing changes.  For each Twitch
channel: ``GET {helix}/users?login=`` (only when ``chat.channels.platform_id`` is unknown),
``GET {helix}/streams?user_id=`` (the live broadcast: ``started_at``, ``title``,
``game_name``) and ``GET {helix}/videos?user_id=&type=archive&first=100`` (past broadcasts:
``created_at`` and ``title``; Helix gives no category for them).  A past broadcast that starts
within :data:`SAME_BROADCAST` of the live one is the same broadcast.  A failed request is
logged and skipped: the streams keep what chat activity says.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import class_row

from chatpulse.core.hints import add_stream_hint

if TYPE_CHECKING:
    import httpx

    from chatpulse.core.settings import Settings

__all__ = [
    "SAME_BROADCAST",
    "HelixSource",
    "HelixStream",
    "fetch_helix_streams",
    "helix_source",
    "record_helix_streams",
]

log = logging.getLogger(__name__)

#: A VOD and the live stream starting this close together are one broadcast.
SAME_BROADCAST = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class HelixSource:
    """Where and how to ask Helix; ``every_s``: the least time between two asks."""

    url: str
    client_id: str
    token: str
    every_s: float = 300.0

    def headers(self) -> dict[str, str]:
        return {
            "Accept": "application/json",
            "Client-Id": self.client_id,
            "Authorization": f"Bearer {self.token.removeprefix('oauth:')}",
        }


@dataclass(frozen=True, slots=True)
class HelixStream:
    """One broadcast as Helix describes it."""

    started_at: datetime
    title: str | None
    category: str | None


@dataclass(frozen=True, slots=True)
class _Channel:
    id: int
    name: str
    platform_id: str | None


def helix_source(settings: Settings) -> HelixSource | None:
    """The Helix source of ``settings``, or None without both Twitch credentials."""
    token = settings.twitch_oauth_token
    if not settings.twitch_client_id or token is None or not token.get_secret_value():
        return None
    return HelixSource(settings.helix_api_url, settings.twitch_client_id, token.get_secret_value())


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value.strip() else None


async def _get(http: httpx.AsyncClient, source: HelixSource, path: str, **params: str) -> Any:
    response = await http.get(
        f"{source.url.rstrip('/')}/{path}", params=params, headers=source.headers(), timeout=10.0
    )
    response.raise_for_status()
    return response.json().get("data") or []


async def fetch_helix_streams(
    http: httpx.AsyncClient, source: HelixSource, login: str, user_id: str | None = None
) -> list[HelixStream]:
    """The live and past broadcasts of ``login`` (the live one first when there is one).
    Raises httpx.HTTPError or ValueError (a body that is not JSON) for the caller to log."""
    if user_id is None:
        users = await _get(http, source, "users", login=login)
        found = [u for u in users if str(u.get("login", "")).lower() == login.lower()]
        if not found:
            return []
        user_id = str(found[0]["id"])
    out: list[HelixStream] = []
    for live in await _get(http, source, "streams", user_id=user_id):
        at = _time(live.get("started_at"))
        if at is not None:
            out.append(HelixStream(at, _text(live.get("title")), _text(live.get("game_name"))))
    for video in await _get(http, source, "videos", user_id=user_id, type="archive", first="100"):
        at = _time(video.get("created_at"))
        if at is None or any(abs(at - s.started_at) <= SAME_BROADCAST for s in out):
            continue
        out.append(HelixStream(at, _text(video.get("title")), None))
    return out


async def record_helix_streams(
    conn: psycopg.AsyncConnection[Any], http: httpx.AsyncClient, source: HelixSource
) -> int:
    """Ask Helix about every Twitch channel and record each broadcast as a stream hint;
    returns how many hints were recorded.  A channel whose ask fails is logged and skipped."""
    import httpx

    async with conn.cursor(row_factory=class_row(_Channel)) as cur:
        await cur.execute(
            "SELECT id, name, platform_id FROM chat.channels WHERE platform = 'twitch' ORDER BY id"
        )
        channels = await cur.fetchall()
    recorded = 0
    for channel in channels:
        try:
            streams = await fetch_helix_streams(http, source, channel.name, channel.platform_id)
        except (httpx.HTTPError, ValueError, AttributeError, KeyError) as exc:
            log.warning(
                "helix: cannot read the streams of a channel",
                extra={"channel": channel.name, "error": f"{type(exc).__name__}: {exc}"},
            )
            continue
        for s in streams:
            await add_stream_hint(conn, channel.id, s.started_at, "helix", s.title, s.category)
            recorded += 1
    return recorded
