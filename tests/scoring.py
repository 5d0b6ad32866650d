"""Score a test database's messages the way ``chatpulse score`` would, without the loop."""

from __future__ import annotations

import psycopg

from scorer.backends import EMOTIONS, load_backend

_COLS = [
    "sent_at",
    "channel_id",
    "message_id",
    "model",
    "sentiment",
    "label",
    "p_negative",
    "p_neutral",
    "p_positive",
    *EMOTIONS,
    "toxicity",
]


def score_with_lexicon(url: str) -> int:
    """Write one lexicon score row per message; returns the number of messages scored."""
    backend = load_backend("lexicon")
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT m.sent_at, m.channel_id, m.message_id, m.text, c.name "
            "FROM chat.messages m JOIN chat.channels c ON c.id = m.channel_id ORDER BY 1"
        ).fetchall()
        scores = backend.score([r[3] for r in rows], [r[4] for r in rows])
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO chat.message_scores ({', '.join(_COLS)}) "
                f"VALUES ({', '.join(['%s'] * len(_COLS))})",
                [
                    (
                        r[0],
                        r[1],
                        r[2],
                        backend.model,
                        s.sentiment,
                        s.label,
                        s.p_negative,
                        s.p_neutral,
                        s.p_positive,
                        *(s.emotions.get(e) for e in EMOTIONS),
                        s.toxicity,
                    )
                    for r, s in zip(rows, scores, strict=True)
                ],
            )
    return len(rows)
