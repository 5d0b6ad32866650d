"""Reader for xenova/chat-downloader's (and chat_replay_downloader's) JSON."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from collector.events import (
    ChatEvent,
    ChatMessage,
    ControlEvent,
    EmoteUse,
    Malformed,
    ModerationEvent,
    ModerationKind,
    deterministic_message_id,
    moderation_event_key,
)
from collector.formats.common import _EPOCH, FormatError, _Bad, _opt_str
from collector.formats.jsonscan import _array_items, _JsonReader, _load_object
from collector.formats.td_txt import _LOGIN

# --- chat-downloader -----------------------------------------------------------------------

# chat-downloader's message_type names mapped back to our kinds: Twitch USERNOTICE msg-ids are
# restored (CD sites/twitch.py _MESSAGE_GROUP_REMAPPINGS); YouTube's paid items get short names.
_CD_KINDS = {
    "text_message": "chat",
    "highlighted_message": "chat",
    "send_message_in_subscriber_only_mode": "chat",
    "paid_message": "superchat",
    "paid_sticker": "supersticker",
    "membership_item": "membership",
    "sponsorships_gift_purchase_announcement": "membership_gift",
    "sponsorships_gift_redemption_announcement": "membership_gift_received",
    "subscription": "sub",
    "resubscription": "resub",
    "subscription_gift": "subgift",
    "anonymous_subscription_gift": "anonsubgift",
    "mystery_subscription_gift": "submysterygift",
    "anonymous_mystery_subscription_gift": "anonsubmysterygift",
    "extend_subscription": "extendsub",
    "standard_pay_forward": "standardpayforward",
    "community_pay_forward": "communitypayforward",
    "prime_community_gift_received": "primecommunitygiftreceived",
    "prime_paid_upgrade": "primepaidupgrade",
    "gift_paid_upgrade": "giftpaidupgrade",
    "anonymous_gift_paid_upgrade": "anongiftpaidupgrade",
    "reward_gift": "rewardgift",
    "raid": "raid",
    "unraid": "unraid",
    "ritual": "ritual",
    "bits_badge_tier": "bitsbadgetier",
}
_CD_YOUTUBE_TYPES = frozenset(
    {"paid_message", "paid_sticker", "membership_item", "sponsorships_gift_purchase_announcement"}
)
_CD_TWITCH_TYPES = frozenset(
    {"subscription", "resubscription", "subscription_gift", "raid", "ban_user", "clear_chat"}
)
_YOUTUBE_CHANNEL_ID = re.compile(r"UC[0-9A-Za-z_-]{22}")
# How many items to look through for platform evidence before asking the caller.
_PLATFORM_LOOKAHEAD = 1000


def _read_chat_downloader(
    chunks: Iterator[bytes], name: str, channel: str, platform: str | None
) -> Iterator[ChatEvent]:
    reader = _JsonReader(chunks)
    if reader.take() != "[":
        raise FormatError(f"{name}: not a chat-downloader JSON array")
    items = _array_items(reader, name, "chat-downloader")
    held: list[tuple[int, str, dict[str, Any]] | Malformed] = []
    plat = platform
    if plat is None:
        # Neither format version names its platform; look ahead (bounded) for evidence.
        looked = 0
        for item in items:
            if isinstance(item, Malformed):
                held.append(item)
                continue
            number, raw, value = item
            try:
                obj = _load_object(value)
            except _Bad as exc:
                held.append(Malformed(raw, f"item {number}: {exc}", name))
                continue
            held.append((number, raw, obj))
            looked += 1
            plat = _cd_platform_hint(obj)
            if plat is not None or looked >= _PLATFORM_LOOKAHEAD:
                break
        # The loop ends at evidence, at the look-ahead limit, or at end of file.
        if plat is None and looked:
            raise FormatError(
                f"{name}: cannot tell whether this chat-downloader file is YouTube or Twitch "
                "chat; pass --platform"
            )
    for entry in held:
        if isinstance(entry, Malformed):
            yield entry
        else:
            number, raw, obj = entry
            yield _cd_event_or_malformed(obj, raw, number, name, channel, plat or "")
    for item in items:
        if isinstance(item, Malformed):
            yield item
            continue
        number, raw, value = item
        try:
            obj = _load_object(value)
        except _Bad as exc:
            yield Malformed(raw, f"item {number}: {exc}", name)
            continue
        yield _cd_event_or_malformed(obj, raw, number, name, channel, plat or "")


def _cd_platform_hint(obj: Mapping[str, Any]) -> str | None:
    author = obj.get("author")
    author_id = author.get("id") if isinstance(author, dict) else obj.get("author_id")
    if isinstance(author_id, str) and _YOUTUBE_CHANNEL_ID.fullmatch(author_id):
        return "youtube"
    message_type = obj.get("message_type")
    if message_type in _CD_YOUTUBE_TYPES or (
        isinstance(message_type, str) and message_type.startswith("ticker_")
    ):
        return "youtube"
    if message_type in _CD_TWITCH_TYPES:
        return "twitch"
    # Twitch user ids are numeric (CD remaps the GQL commenter id / the user-id tag).
    if isinstance(author_id, int) or (isinstance(author_id, str) and author_id.isdigit()):
        return "twitch"
    return None


def _cd_event_or_malformed(
    obj: Mapping[str, Any], raw: str, number: int, name: str, channel: str, platform: str
) -> ChatEvent:
    try:
        return _cd_event(obj, channel, platform)
    except _Bad as exc:
        return Malformed(raw, f"item {number}: {exc}", name)


def _cd_time(obj: Mapping[str, Any]) -> datetime:
    ts = obj.get("timestamp")
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        raise _Bad("missing timestamp")
    # CD timestamps are microseconds since the epoch (CD docs/items.rst; the samples' values
    # such as 1562541137129857 are 2019).  Anything outside 1973..5138 is not microseconds.
    if not 1e14 <= ts < 1e17:
        raise _Bad(f"timestamp {ts} is not in microseconds since the epoch")
    return _EPOCH + timedelta(microseconds=int(ts))


def _cd_event(obj: Mapping[str, Any], channel: str, platform: str) -> ChatEvent:
    sent_at = _cd_time(obj)
    message_type = obj.get("message_type")
    # chat_replay_downloader (2020) repeats each paid message as a ticker entry with
    # ``ticker_duration``; chat-downloader marks them ``ticker_*``.  Not messages: control.
    if "ticker_duration" in obj or (
        isinstance(message_type, str) and message_type.startswith("ticker_")
    ):
        return ControlEvent(
            "other", channel=channel, params={"ticker": str(message_type or "ticker")}
        )
    user_id, login, display, badge_list = _cd_author(obj, platform)
    if message_type in ("ban_user", "clear_chat", "delete_message"):
        return _cd_moderation(obj, message_type, channel, platform, sent_at, login)
    if message_type is None:
        kind = "superchat" if "amount" in obj else "chat"
    elif isinstance(message_type, str) and message_type in _CD_KINDS:
        kind = _CD_KINDS[message_type]
    else:
        # Room states, notices, placeholders, viewer-engagement banners: nothing a chatter said.
        return ControlEvent("other", channel=channel, params={"message_type": str(message_type)})
    text = obj.get("message")
    if text is None and kind != "chat":
        text = ""  # a Super Chat, sticker or membership may come without words
    if not isinstance(text, str):
        raise _Bad("missing message")
    badges: dict[str, str] = {}
    for badge in badge_list:
        badges[badge[0]] = badge[1]
    lowered = {k.lower() for k in badges}
    extra: dict[str, str] = {}
    for key in ("amount", "currency", "time_in_seconds", "action_type"):
        value = obj.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            extra[key] = str(value)
    if isinstance(message_type, str):
        extra["message_type"] = message_type
    bits = obj.get("bits")
    reply = obj.get("in_reply_to")
    reply_id = reply.get("message_id") if isinstance(reply, dict) else None
    message_id = obj.get("message_id")
    if not isinstance(message_id, str) or not message_id:
        message_id = deterministic_message_id(
            platform, channel, sent_at, user_id or login or display, text
        )
    return ChatMessage(
        platform=platform,
        channel=channel,
        message_id=message_id,
        sent_at=sent_at,
        text=text,
        user_id=user_id,
        user_login=login,
        user_name=display,
        kind=kind,
        badges=badges,
        is_mod=bool(lowered & {"moderator", "broadcaster", "owner"}),
        is_subscriber=bool(lowered & {"subscriber", "founder"})
        or any(k.startswith(("member", "new member")) for k in lowered),
        is_first=obj.get("is_first_message") is True,
        bits=bits if isinstance(bits, int) and not isinstance(bits, bool) and bits > 0 else 0,
        reply_parent_id=reply_id if isinstance(reply_id, str) else None,
        channel_platform_id=_opt_str(obj, "channel_id", allow_int=True),
        emotes=_cd_emotes(obj.get("emotes"), platform),
        source="replay",
        extra=extra,
    )


def _cd_author(
    obj: Mapping[str, Any], platform: str
) -> tuple[str | None, str | None, str | None, list[tuple[str, str]]]:
    """(user id, login, display name, badges) from either format version."""
    author = obj.get("author")
    badges: list[tuple[str, str]] = []
    if isinstance(author, dict):
        user_id = _opt_str(author, "id", allow_int=True)
        name = _opt_str(author, "name")
        display = _opt_str(author, "display_name") or name
        for badge in author.get("badges") or ():
            if not isinstance(badge, dict):
                continue
            # Twitch badges have name/version (the IRC badges tag); YouTube ones a title.
            key = badge.get("name") if platform == "twitch" else None
            key = key or badge.get("title") or badge.get("name")
            if isinstance(key, str) and key:
                version = badge.get("version")
                badges.append((key, "1" if version is None else str(version)))
    elif isinstance(author, str):
        # chat_replay_downloader (2020): author is the display name, author_id beside it,
        # badges a comma-separated string ("Verified, Moderator", "Member (2 months)").
        user_id = _opt_str(obj, "author_id", allow_int=True)
        name = display = author
        raw_badges = obj.get("badges")
        if isinstance(raw_badges, str):
            badges = [(b.strip(), "1") for b in raw_badges.split(",") if b.strip()]
    elif author is None:
        user_id = name = display = None
    else:
        raise _Bad("author must be an object or a string")
    # A YouTube name is a display name, never a login; a Twitch display name that is a case
    # variant of the login gives the login.
    login = None
    if platform != "youtube" and name and _LOGIN.fullmatch(name):
        login = name.lower()
    return user_id, login, display, badges


def _cd_emotes(value: object, platform: str) -> tuple[EmoteUse, ...]:
    if platform != "twitch" or not isinstance(value, list):
        return ()
    out: list[EmoteUse] = []
    for emote in value:
        if not isinstance(emote, dict):
            continue
        emote_id, name = emote.get("id"), emote.get("name")
        if not isinstance(emote_id, str | int) or not isinstance(name, str) or not name:
            continue
        # CD keeps the IRC ranges as "b-e,b-e": one use per range ([FORMATS]).
        locations = emote.get("locations")
        count = len(locations.split(",")) if isinstance(locations, str) and locations else 1
        out.append(EmoteUse(str(emote_id), name, "twitch", count))
    return tuple(out)


def _cd_moderation(
    obj: Mapping[str, Any],
    message_type: str,
    channel: str,
    platform: str,
    at: datetime,
    author_login: str | None,
) -> ModerationEvent:
    target_login: str | None = None
    target_message_id: str | None = None
    duration: int | None = None
    kind: ModerationKind
    if message_type == "ban_user":
        banned = obj.get("banned_user")
        target_login = banned.lower() if isinstance(banned, str) and banned else None
        ban_duration = obj.get("ban_duration")
        if isinstance(ban_duration, int) and not isinstance(ban_duration, bool):
            kind, duration = "timeout", ban_duration
        else:
            kind = "ban"
    elif message_type == "delete_message":
        kind = "delete"
        target = obj.get("target_message_id")
        target_message_id = target if isinstance(target, str) else None
        target_login = author_login
    else:
        kind = "clear"
    target_user_id = _opt_str(obj, "target_user_id", allow_int=True)
    return ModerationEvent(
        platform=platform,
        channel=channel,
        at=at,
        kind=kind,
        event_key=moderation_event_key(
            platform, channel, at, kind, target_user_id or target_login, target_message_id
        ),
        target_user_id=target_user_id,
        target_login=target_login,
        target_message_id=target_message_id,
        duration_s=duration,
        channel_platform_id=_opt_str(obj, "channel_id", allow_int=True),
        source="replay",
    )
