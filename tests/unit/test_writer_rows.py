"""COPY text rows of chat messages (collector.writer.rows): every value comes back as it was."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.events import ChatMessage, EmoteUse
from collector.writer.rows import format_messages

_CHANNELS = {("twitch", "nymn"): 7}
_NOW = datetime(2024, 1, 6, 16, 30, tzinfo=UTC)
_UNESCAPE = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}


def _fields(row: str) -> list[str | None]:
    """A COPY text row's values, unescaped (``\\N`` is NULL)."""
    assert row.endswith("\n")
    return [
        None if f == "\\N" else re.sub(r"\\[\\tnr]", lambda m: _UNESCAPE[m[0]], f)
        for f in row[:-1].split("\t")
    ]


def _message(**fields: object) -> ChatMessage:
    base: dict[str, object] = {
        "platform": "twitch",
        "channel": "nymn",
        "message_id": "id-1",
        "sent_at": _NOW,
        "text": "hello",
        "source": "replay",
    }
    return ChatMessage(**{**base, **fields})  # type: ignore[arg-type]


_odd = st.text(alphabet=st.sampled_from(list("ab \\\t\n\r\x00é")), max_size=6)
_opt_odd = st.none() | _odd


@settings(max_examples=300, deadline=None)
@given(
    message_id=_odd,
    user_id=_opt_odd,
    user_login=_opt_odd,
    user_name=_opt_odd,
    text=_odd,
    kind=_odd,
    reply_parent_id=_opt_odd,
)
def test_every_text_value_survives_copy_escaping(
    message_id: str,
    user_id: str | None,
    user_login: str | None,
    user_name: str | None,
    text: str,
    kind: str,
    reply_parent_id: str | None,
) -> None:
    m = _message(
        message_id=message_id,
        user_id=user_id,
        user_login=user_login,
        user_name=user_name,
        text=text,
        kind=kind,
        reply_parent_id=reply_parent_id,
        emotes=(EmoteUse("25", "Kappa", "twitch", 2),),
    )
    rows = format_messages([m], _CHANNELS, _NOW)
    (row,) = rows.messages
    got = _fields(row)
    assert len(got) == 18

    def stored(value: str | None) -> str | None:  # NUL cannot be stored: U+FFFD instead
        return None if value is None else value.replace("\x00", "\ufffd")

    assert got[2] == stored(message_id) == rows.keys[0][1]
    assert got[3:8] == [stored(v) for v in (user_id, user_login, user_name, text, kind)]
    assert got[13] == stored(reply_parent_id)
    assert got[14] == "2"
    assert got[17] == "replay"
    (use,) = rows.uses[0].splitlines(keepends=True)
    assert _fields(use) == [got[0], "7", got[2], "25", "Kappa", "twitch", "2", got[3]]


def test_plain_message_row() -> None:
    m = _message(user_id="1", user_login="a", user_name=None, reply_parent_id=None)
    (row,) = format_messages([m], _CHANNELS, _NOW).messages
    assert row == (
        "2024-01-06T16:30:00+00:00\t7\tid-1\t1\ta\t\\N\thello\tchat\t{}\tf\tf\tf\t0\t\\N\t0\t\\N"
        "\t2024-01-06T16:30:00+00:00\treplay\n"
    )
