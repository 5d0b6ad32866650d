"""A stream spliced from real chat of different channels and subjects (tests of topics/ask).

Four parts of 300 s each, every part's messages spread evenly over its 300 s:
nymn's Twitch chat (7TV emotes, EDM), Technoblade's YouTube premiere chat ("late", Dream),
the written Twitch-style lines of labelled-chat (reactions to a game), and Gura's YouTube
superchats (shark, 300k).  The splice points are at 300, 600 and 900 s.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime, timedelta

import psycopg

from tests.paths import LABELLED_CHAT, NYMN_RECENT, XENOVA

START = datetime(2024, 3, 1, 20, 0, tzinfo=UTC)  # a multiple of 30 s
PART_S = 300
PARTS = ("nymn", "techno", "labelled", "gura")
SPLICES = [START + timedelta(seconds=PART_S * i) for i in (1, 2, 3)]


def part_texts() -> dict[str, list[str]]:
    raw = json.loads(NYMN_RECENT.read_text())
    nymn = [
        m.group(1)
        for line in raw["messages"]
        if (m := re.search(r" PRIVMSG #\w+ :(.*)$", line.rstrip("\r\n")))
    ]
    techno = [
        m["message"]
        for m in json.loads(
            (XENOVA / "[YouTube] Get messages from live chat replay.json").read_text()
        )
        if m.get("message")
    ]
    with LABELLED_CHAT.open(newline="") as f:
        labelled = [row["text"] for row in csv.DictReader(f)]
    gura = [
        m["message"]
        for m in json.loads(
            (XENOVA / "[YouTube] Get superchat messages from live chat replay.json").read_text()
        )
        if m.get("message") and len(m["message"]) > 1
    ]
    return {"nymn": nymn, "techno": techno, "labelled": labelled, "gura": gura}


def insert_spliced(conn: psycopg.Connection[tuple[object, ...]], channel: str = "spliced") -> int:
    """Insert the spliced stream as channel ``channel``; returns the channel id."""
    row = conn.execute(
        "INSERT INTO chat.channels (name) VALUES (%s) RETURNING id", (channel,)
    ).fetchone()
    assert row is not None
    channel_id = int(str(row[0]))
    rows = []
    for p, name in enumerate(PARTS):
        texts = part_texts()[name]
        for i, text in enumerate(texts):
            at = START + timedelta(seconds=p * PART_S + PART_S * i / len(texts))
            rows.append((at, channel_id, f"{name}-{i}", f"u{i % 97}", text))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO chat.messages (sent_at, channel_id, message_id, user_login, text) "
            "VALUES (%s, %s, %s, %s, %s)",
            rows,
        )
    conn.commit()
    return channel_id


def part_of(when: datetime) -> str:
    return PARTS[int((when - START).total_seconds() // PART_S)]
