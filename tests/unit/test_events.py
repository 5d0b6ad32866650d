"""collector.events: new_message builds the same ChatMessage as its constructor."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.events import ChatMessage, EmoteUse, new_message

_text = st.text(max_size=8)
_opt = st.none() | _text
_when = st.datetimes(timezones=st.just(UTC))

_messages = st.builds(
    ChatMessage,
    platform=_text,
    channel=_text,
    message_id=_text,
    sent_at=_when,
    text=_text,
    user_id=_opt,
    user_login=_opt,
    user_name=_opt,
    kind=_text,
    badges=st.dictionaries(_text, _text, max_size=2),
    is_mod=st.booleans(),
    is_subscriber=st.booleans(),
    is_first=st.booleans(),
    bits=st.integers(0, 10_000),
    reply_parent_id=_opt,
    channel_platform_id=_opt,
    emotes=st.lists(st.builds(EmoteUse, _text, _text, st.just("twitch")), max_size=2).map(tuple),
    received_at=st.none() | _when,
    source=st.sampled_from(["live", "gapfill", "replay"]),
    extra=st.dictionaries(_text, _text, max_size=2),
)


@settings(max_examples=200, deadline=None)
@given(_messages)
def test_new_message_equals_the_constructor(message: ChatMessage) -> None:
    # Positional, in the order of the dataclass's fields: a field added to ChatMessage and not
    # to new_message fails here (a wrong count), one out of order fails the comparison.
    values = [getattr(message, f.name) for f in dataclasses.fields(ChatMessage)]
    built = new_message(*values)
    assert type(built) is ChatMessage
    assert built == message
    assert [getattr(built, f.name) for f in dataclasses.fields(ChatMessage)] == values


def test_new_message_is_frozen_like_the_constructor() -> None:
    when = datetime(2024, 1, 6, tzinfo=UTC)
    args = ["twitch", "nymn", "id", when, "hi", None, None, None, "chat", {}]
    built = new_message(*args, False, False, False, 0, None, None, (), None, "live", {})
    assert built == ChatMessage(*args)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.text = "changed"  # type: ignore[misc]
    # A ChatMessage in every way the writer, the pipeline and the codecs use one.
    assert dataclasses.replace(built, text="x") == ChatMessage(*args[:4], "x", *args[5:])
    assert pickle.loads(pickle.dumps(built)) == built
    assert not hasattr(built, "__dict__")
