"""The lexicon backend's scores on a fixed real corpus, as digests, for the frozen-score test.

``tests/unit/test_lexicon_frozen.py`` asserts that every score (sentiment, label, the three
probabilities, every emotion, toxicity: exact floats) on this corpus equals the committed
expectation in ``tests/fixtures/lexicon-frozen/scores.json``, so that a speed-up or refactor that
changes any result is caught.  A deliberate change of results (new rules with a bumped
``ENGINE_VERSION``, or edited lexicon data) regenerates the file:

    .venv/bin/python tests/lexicon_frozen.py
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
EXPECTED = FIXTURES / "lexicon-frozen" / "scores.json"
# A channel with its own emotes, some of them overriding the global tables.
CHANNEL_EMOTES = {"nymn": {"nymnCorn": "happy", "Kappa": "sad", "LUL": "anger", "forsenE": "laugh"}}


def corpus() -> list[str]:
    """Distinct texts of the #nymn sample, chat-downloader examples, Davidson sample, labelled chat
    and the IRC conformance corpus, in that order."""
    sys.path.insert(0, str(ROOT))
    from collector.events import ChatMessage
    from collector.irc import parse_event, parse_recent_messages

    nymn = FIXTURES / "chatterino-recentmessages-nymn" / "recentmessages-nymn.json"
    texts = [
        event.text
        for event in map(parse_event, parse_recent_messages(nymn.read_bytes()))
        if isinstance(event, ChatMessage)
    ]
    for path in sorted((FIXTURES / "xenova-chat-downloader-examples").glob("*.json")):
        texts += [m["message"] for m in json.loads(path.read_text("utf-8")) if m.get("message")]
    for path, column in (
        (FIXTURES / "davidson-offensive" / "labeled_data_sample.csv", "tweet"),
        (FIXTURES / "labelled-chat" / "chat_sentiment.csv", "text"),
    ):
        with path.open(encoding="utf-8", newline="") as handle:
            texts += [row[column] for row in csv.DictReader(handle)]
    conformance = ROOT / "tests" / "data" / "irc-conformance" / "corpus.jsonl"
    for line in conformance.read_text("utf-8").splitlines():
        event = parse_event(json.loads(line)["raw"])
        if isinstance(event, ChatMessage):
            texts.append(event.text)
    return list(dict.fromkeys(texts))


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:10]


def score_digests(texts: list[str], channel: str | None = None) -> list[str]:
    """One digest per text of every field of its Score (floats by repr: exact)."""
    from scorer.backends.lexicon import LexiconBackend

    backend = LexiconBackend(CHANNEL_EMOTES if channel else None, cache_size=0)
    scores = backend.score(texts, None if channel is None else [channel] * len(texts))
    return [
        digest(
            repr(
                (
                    s.sentiment,
                    s.label,
                    s.p_negative,
                    s.p_neutral,
                    s.p_positive,
                    sorted(s.emotions.items()),
                    s.toxicity,
                )
            )
        )
        for s in scores
    ]


def snapshot() -> dict[str, object]:
    from scorer.backends.lexicon import LexiconBackend

    texts = corpus()
    return {
        "model": LexiconBackend(cache_size=0).model,
        "corpus": digest("\n".join(texts)),
        "texts": len(texts),
        "plain": score_digests(texts),
        "channel": score_digests(texts, "#nymn"),
    }


if __name__ == "__main__":
    EXPECTED.parent.mkdir(parents=True, exist_ok=True)
    EXPECTED.write_text(json.dumps(snapshot(), indent=0) + "\n", "utf-8")
    print(f"wrote {EXPECTED}")
