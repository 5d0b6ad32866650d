"""Benchmark: the ``lexicon`` scoring backend over the #nymn chat sample, repeated.

Run from the repository root: ``.venv/bin/python bench/score.py [--messages N]``.  Prints
messages per second on one core and the peak RSS, for three regimes:

* ``cold``: every message cache off and the token caches cleared before the run -- the work for
  text never seen before (each distinct token is still analysed only once per run);
* ``cached``: the backend as configured in production (message LRU on), first pass over the
  sample repeated to ``--messages`` -- chat repeats itself, the #nymn sample has 326 distinct
  texts in 798 messages;
* ``unique``: every message made distinct by appending a never-seen word (``qabc``...), message
  cache on: each message pays for one new token, a pessimistic case for real chat.

The data is the Chatterino benchmark sample (MIT), see
``tests/fixtures/chatterino-recentmessages-nymn/PROVENANCE.md``; texts are extracted with
``collector.irc.parse_recent_messages`` + ``collector.irc.parse_event``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make the repository's packages importable

from collector.events import ChatMessage  # noqa: E402
from collector.irc import parse_event, parse_recent_messages  # noqa: E402
from scorer.backends import lexicon  # noqa: E402
from scorer.backends.lexicon import LexiconBackend  # noqa: E402

__all__ = ["main"]

SAMPLE = ROOT / "tests" / "fixtures" / "chatterino-recentmessages-nymn" / "recentmessages-nymn.json"
BATCH = 500  # the scorer loop scores claimed rows in batches of this order


def _load_texts() -> list[str]:
    lines = parse_recent_messages(SAMPLE.read_bytes())
    return [event.text for event in map(parse_event, lines) if isinstance(event, ChatMessage)]


def _run(score: Callable[[list[str]], object], texts: list[str]) -> float:
    start = time.perf_counter()
    for i in range(0, len(texts), BATCH):
        score(texts[i : i + BATCH])
    return len(texts) / (time.perf_counter() - start)


def _pseudo_word(i: int) -> str:
    # A never-seen word-like token (base-26 letters), like a new username or typo.
    letters = []
    while True:
        i, r = divmod(i, 26)
        letters.append(chr(ord("a") + r))
        if not i:
            return "q" + "".join(letters)


def _clear_token_caches() -> None:
    lexicon._token.cache_clear()
    lexicon._emotion_map.cache_clear()


def main() -> None:
    """Print messages/s for each regime and the process's peak RSS."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args()
    sample = _load_texts()
    texts = (sample * (args.messages // len(sample) + 1))[: args.messages]
    print(
        f"sample: {len(sample)} messages, {len(set(sample))} distinct texts; "
        f"scoring {len(texts)} messages in batches of {BATCH}"
    )

    backend = LexiconBackend(cache_size=0)
    _clear_token_caches()
    print(f"model: {backend.model}")
    print(
        f"cold   (no message cache, token caches cleared): {_run(backend.score, texts):>10,.0f} msg/s"
    )

    cached = LexiconBackend()
    print(
        f"cached (message LRU, as in production):          {_run(cached.score, texts):>10,.0f} msg/s"
    )

    unique = [f"{text} {_pseudo_word(i)}" for i, text in enumerate(texts)]
    fresh = LexiconBackend()
    print(
        f"unique (every text distinct, message LRU on):    {_run(fresh.score, unique):>10,.0f} msg/s"
    )

    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(f"peak RSS: {peak_kib / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
