"""Benchmark: the ``lexicon`` scoring backend over the #nymn chat sample, repeated.

Run from the repository root: ``.venv/bin/python bench/score.py [--messages N] [--loop-messages
N] [--database-url URL]``.  Prints messages per second of CPU time (``time.process_time``: machine
load does not distort it) on one core and the peak RSS, for these regimes of the backend alone:

* ``cold``: every message cache off and the token caches cleared before the run -- the work for
  text never seen before (each distinct token is still analysed only once per run);
* ``cached``: the backend as configured in production (message LRU on), first pass over the
  sample repeated to ``--messages`` -- chat repeats itself, the #nymn sample has 326 distinct
  texts in 798 messages;
* ``unique``: every message made distinct by appending a never-seen word (``qabc``...), message
  cache on: each message pays for one new token, a pessimistic case for real chat;
* ``distinct`` (cold, all texts distinct, as in a backfill): every distinct real text in the
  repository's fixtures -- the #nymn sample, the chat-downloader Twitch/YouTube examples and the
  Davidson tweet sample (a large vocabulary: most tokens are new) -- each scored once with every
  cache cleared (best of ``--rounds``), and plain VADER on exactly the same texts, interleaved
  round by round so that machine load hits both alike; the ratio is printed.  ``warm``: the same
  texts again with the token caches filled (message cache off).

and, in the same run, plain VADER (``vaderSentiment``'s ``SentimentIntensityAnalyzer.polarity_scores``
on the same texts, the baseline the lexicon must at least match), then the end-to-end scoring loop
(``scorer.loop.run_scorer``, until idle) against a scratch database on the local PostgreSQL
(``--database-url`` names a server where we may create databases; ``--loop-messages 0`` skips
it): score rows written per second, and the peak RSS of that worker, run as a child process so
that nothing else this script loaded counts.

The data is the Chatterino benchmark sample (MIT), see
``tests/fixtures/chatterino-recentmessages-nymn/PROVENANCE.md``; texts are extracted with
``collector.irc.parse_recent_messages`` + ``collector.irc.parse_event``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make the repository's packages importable

from collector.events import ChatMessage  # noqa: E402
from collector.irc import parse_event, parse_recent_messages  # noqa: E402
from scorer.backends import lexicon  # noqa: E402
from scorer.backends.lexicon import LexiconBackend  # noqa: E402

__all__ = ["main"]

SAMPLE = ROOT / "tests" / "fixtures" / "chatterino-recentmessages-nymn" / "recentmessages-nymn.json"
BATCH = 500  # the scorer loop scores claimed rows in batches of this order
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _load_texts() -> list[str]:
    lines = parse_recent_messages(SAMPLE.read_bytes())
    return [event.text for event in map(parse_event, lines) if isinstance(event, ChatMessage)]


def _run(score: Callable[[list[str]], object], texts: list[str]) -> float:
    # CPU time of this process, not wall time: on a shared machine other processes' load would
    # otherwise decide the figure.  Scoring is single-threaded, so the two agree on an idle one.
    start = time.process_time()
    for i in range(0, len(texts), BATCH):
        score(texts[i : i + BATCH])
    return len(texts) / (time.process_time() - start)


def _pseudo_word(i: int) -> str:
    # A never-seen word-like token (base-26 letters), like a new username or typo.
    letters = []
    while True:
        i, r = divmod(i, 26)
        letters.append(chr(ord("a") + r))
        if not i:
            return "q" + "".join(letters)


def _distinct_texts(sample: list[str]) -> list[str]:
    fixtures = ROOT / "tests" / "fixtures"
    texts = list(sample)
    for path in sorted((fixtures / "xenova-chat-downloader-examples").glob("*.json")):
        texts += [m["message"] for m in json.loads(path.read_text("utf-8")) if m.get("message")]
    with (fixtures / "davidson-offensive" / "labeled_data_sample.csv").open(
        encoding="utf-8", newline=""
    ) as handle:
        texts += [row["tweet"] for row in csv.DictReader(handle)]
    return list(dict.fromkeys(texts))


def _distinct_bench(texts: list[str], rounds: int) -> None:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    cold = warm = vader = 0.0
    for _ in range(rounds):
        _clear_token_caches()
        backend = LexiconBackend(cache_size=0)
        cold = max(cold, _run(backend.score, texts))
        warm = max(warm, _run(backend.score, texts))
        vader = max(vader, _run(lambda b: [analyzer.polarity_scores(t) for t in b], texts))
    print(f"distinct ({len(texts)} distinct real texts, best of {rounds}):")
    print(f"  lexicon cold (every cache cleared):           {cold:>10,.0f} msg/s")
    print(f"  lexicon warm (token caches filled):           {warm:>10,.0f} msg/s")
    print(f"  plain VADER (polarity_scores, same texts):    {vader:>10,.0f} msg/s")
    print(f"  lexicon / VADER: cold {cold / vader:.2f}x, warm {warm / vader:.2f}x")


def _clear_token_caches() -> None:
    lexicon.clear_caches()


def _vader(texts: list[str]) -> float:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    return _run(lambda batch: [analyzer.polarity_scores(t) for t in batch], texts)


def _scratch_db(admin_url: str) -> str:
    import psycopg

    name = f"chatpulse_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return urlunsplit(urlsplit(admin_url)._replace(path="/" + name))


def _drop_db(admin_url: str, url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _load_messages(url: str, texts: list[str]) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO chat.channels (name) VALUES ('nymn')")
        with conn.cursor().copy(
            "COPY chat.messages (sent_at, channel_id, message_id, text) FROM STDIN"
        ) as copy:
            start = time.time() - len(texts) * 0.05
            for i, text in enumerate(texts):
                copy.write_row(
                    (
                        time.strftime("%Y-%m-%dT%H:%M:%S+00", time.gmtime(start + i * 0.05)),
                        1,
                        f"m{i}",
                        text,
                    )
                )


def _worker(url: str, batch: int) -> None:
    """Child process: the scoring loop until idle; prints its stats as JSON."""
    from chatpulse.core.migrate import run_migrations  # noqa: F401 (already migrated)
    from scorer.loop import LoopConfig, run_scorer

    config = LoopConfig(batch_size=batch, poll_interval_s=0.05, progress_interval_s=3600)
    stats = asyncio.run(run_scorer(url, LexiconBackend(), config=config, until_idle=True))
    print(json.dumps({"written": stats.written, "seconds": stats.seconds, "claims": stats.claims}))


def _loop_bench(admin_url: str, texts: list[str], batch: int) -> None:
    from chatpulse.core.migrate import run_migrations

    url = _scratch_db(admin_url)
    try:
        asyncio.run(run_migrations(url, timescaledb="off"))
        _load_messages(url, texts)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        done = subprocess.run(
            [sys.executable, __file__, "--worker", url, "--batch", str(batch)],
            capture_output=True,
            text=True,
            check=True,
        )
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        stats = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"loop   (run_scorer until idle, plain PostgreSQL, batch {batch}): "
            f"{stats['written'] / stats['seconds']:>10,.0f} msg/s written "
            f"({stats['written']} rows, {stats['claims']} claims, {stats['seconds']:.1f} s, "
            "aggregate refresh included)"
        )
        print(f"lexicon worker peak RSS: {max(peak, before) / 1024:.1f} MiB (target < 200)")
    finally:
        _drop_db(admin_url, url)


def main() -> None:
    """Print messages/s for each regime, VADER's, the loop's, and peak RSS figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--loop-messages", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=256, help="loop batch size")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the distinct regime")
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.batch)
        return
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

    print(f"plain VADER (polarity_scores, same texts):        {_vader(texts):>10,.0f} msg/s")
    print(f"plain VADER on the unique texts:                  {_vader(unique):>10,.0f} msg/s")
    _distinct_bench(_distinct_texts(sample), max(1, args.rounds))

    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(f"peak RSS of this benchmark process: {peak_kib / 1024:.1f} MiB")
    if args.loop_messages:
        loop_texts = (sample * (args.loop_messages // len(sample) + 1))[: args.loop_messages]
        _loop_bench(args.database_url, loop_texts, args.batch)


if __name__ == "__main__":
    main()
