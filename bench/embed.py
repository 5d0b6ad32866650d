"""Embedding throughput, live lag, ``ask`` latency over a month and storage of the topics feature.

    python bench/embed.py [--windows 86400] [--messages 10000000] [--live-rates 3.9,20]
                          [--questions 40] [--device cpu] [--skip-month]

Starts its own pgserver (PostgreSQL 16 + pgvector 0.6.2) in a temporary directory; one run
prints every figure, each beside its target.

1. Throughput on CPU, torch against onnx-int8 (topics.onnx_backend): the real chat of
   tests/fixtures spliced into one stream (tests/topics_data.py: ~1,450 messages, ~780 distinct
   texts) embedded window by window as ``chatpulse embed`` does it (each distinct text once),
   messages/s and distinct texts/s, each backend on an empty store; the cosine of the int8
   vectors to the torch ones.
2. Live lag: a window of a live channel at each of ``--live-rates`` messages/s whose distinct
   texts are all new (the worst case: nothing cached), embedded by one ``embed_pass`` after it
   closes; with the embedding loop's poll interval, "embedded within N s of closing" (target:
   10 s).
3. ``ask`` over a month of a busy channel: ``--windows`` 30-s windows (86,400 = 30 days) and
   ``--messages`` messages (10 M: ~116 per window), built in SQL, not embedded one by one:
   window vectors are the real windows' vectors of step 1 plus noise (a stream keeps one
   subject ~20 minutes), messages are the texts of the window each vector came from, chosen by
   a hash, and each window's document is to_tsvector of its messages, as upsert_window writes
   it.  Indexes of chat.messages that ask never reads are dropped before the load (it only
   reads a window's messages through messages_channel_time_idx).  Then p50/p95 of ``ask``
   warm in this process (the model loaded once, as the HTTP app keeps it) and through
   ``GET /ask`` of the clip API, with a per-stage breakdown, for: no filter, ``--channel`` (the
   whole month: the HNSW path), ``--channel`` with one evening (the exact path); and one cold
   ``chatpulse ask`` process (model load included).
4. Storage: chat.window_embeddings with its indexes per window (measured on the month) and
   chat.text_embeddings per distinct text, so per million messages at the distinct-text ratio
   of the real chat.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make the repository's packages importable

import httpx  # noqa: E402
import psycopg  # noqa: E402

from chatpulse.core.db import connect  # noqa: E402
from chatpulse.core.migrate import run_migrations  # noqa: E402
from chatpulse.core.settings import Settings  # noqa: E402
from tests.topics_data import insert_spliced, part_texts  # noqa: E402
from topics.embed import Embedder, load_embedder, parse_vector, vector_literal  # noqa: E402
from topics.store import ask, embed_pass  # noqa: E402

QUESTIONS = [
    "people saying they are late",
    "shark donation",
    "EDM party music",
    "the streamer threw the game",
    "congrats on 300k",
    "chat laughing",
    "boss fight",
    "love you techno",
    "dream is better",
    "small screen fix",
]
TOKEN = "bench-token-not-secret"
MONTH_START = datetime(2024, 1, 1, tzinfo=UTC)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--windows", type=int, default=86_400, help="30-s windows of the month")
    ap.add_argument("--messages", type=int, default=10_000_000, help="messages of the month")
    ap.add_argument(
        "--live-rates", default="3.9,20", help="messages/s of the live windows (comma-separated)"
    )
    ap.add_argument("--questions", type=int, default=40, help="timed questions per case")
    ap.add_argument("--device", default="cpu", help="torch device (the GPU row when one is lent)")
    ap.add_argument("--skip-month", action="store_true", help="throughput and live lag only")
    args = ap.parse_args()
    pgdata = Path(tempfile.mkdtemp(prefix="chatpulse-bench-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(pgdata, cleanup_mode="stop")
    data_dir = Path(tempfile.mkdtemp(prefix="chatpulse-bench-data-"))
    try:
        server.psql("CREATE DATABASE bench;")
        url = str(server.get_uri("bench"))
        asyncio.run(run_migrations(url, timescaledb="off"))
        asyncio.run(run(url, args, data_dir))
    finally:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)
        shutil.rmtree(data_dir, ignore_errors=True)


def _reset(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE chat.text_embeddings, chat.window_embeddings, chat.embed_state")


async def _embed_all(url: str, embedder: Embedder) -> tuple[int, float]:
    started = time.perf_counter()
    windows = 0
    async with await connect(url) as conn:
        while (stats := await embed_pass(conn, embedder)).windows:
            windows += stats.windows
    return windows, time.perf_counter() - started


async def run(url: str, args: argparse.Namespace, data_dir: Path) -> None:
    import numpy as np

    t0 = time.perf_counter()
    backends = {
        "torch": load_embedder(Settings(embed_device=args.device, data_dir=data_dir)),
    }
    torch_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    backends["onnx-int8"] = load_embedder(Settings(embed_backend="onnx-int8", data_dir=data_dir))
    onnx_export = time.perf_counter() - t0
    t0 = time.perf_counter()
    load_embedder(Settings(embed_backend="onnx-int8", data_dir=data_dir))
    onnx_load = time.perf_counter() - t0
    print(
        f"model load: torch {torch_load:.1f} s; onnx-int8 first use (export + quantise) "
        f"{onnx_export:.1f} s, then {onnx_load:.1f} s from its cache"
    )
    with psycopg.connect(url) as conn:
        insert_spliced(conn)
        total, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT md5(text)) FROM chat.messages"
        ).fetchone() or (0, 0)

    # 1. throughput
    print(f"\n1. throughput ({total} messages, {distinct} distinct texts of real chat)")
    print(f"   {'backend':<10} {'messages/s':>11} {'distinct/s':>11} {'windows':>8} {'s':>6}")
    rates: dict[str, float] = {}
    for name in ("onnx-int8", "torch"):  # torch last: its vectors stay for steps 3-4
        _reset(url)
        windows, took = await _embed_all(url, backends[name])
        rates[name] = distinct / took
        print(
            f"   {name:<10} {total / took:>11.0f} {distinct / took:>11.0f} {windows:>8} "
            f"{took:>6.1f}"
        )
    print(f"   onnx-int8 / torch: {rates['onnx-int8'] / rates['torch']:.2f}x distinct texts/s")
    texts = [t for ts in part_texts().values() for t in ts]
    sample = sorted(set(texts))
    a = np.asarray(backends["torch"].encode(sample))
    b = np.asarray(backends["onnx-int8"].encode(sample))
    cos = (a * b).sum(axis=1)
    print(
        f"   cosine int8 vs torch over {len(sample)} distinct texts: mean {cos.mean():.4f}, "
        f"min {cos.min():.4f} (target > 0.98)"
    )

    # 2. live lag
    poll = Settings().embed_poll_interval_s
    print(f"\n2. live lag (the loop looks every {poll:g} s; target: embedded within 10 s)")
    for rate in (float(r) for r in args.live_rates.split(",")):
        for name in ("torch", "onnx-int8"):
            took, n, new = await _live_window(url, backends[name], rate, texts)
            print(
                f"   {rate:g} msg/s, {name:<9}: window of {n} messages ({new} new distinct "
                f"texts) embedded {took:.1f} s after a pass starts -> within {poll + took:.1f} s "
                f"of closing (worst case: poll {poll:g} s + pass)"
            )

    if args.skip_month:
        return
    # 3. the month
    embedder = backends["torch"]
    print(f"\n3. ask over a month: {args.windows} windows, {args.messages} messages")
    with psycopg.connect(url) as conn:
        text_bytes = conn.execute(
            "SELECT pg_total_relation_size('chat.text_embeddings')::float / count(*) "
            "FROM chat.text_embeddings"
        ).fetchone()
        assert text_bytes is not None
        per_window = _build_month(conn, args.windows, args.messages, embedder.model)
    # One evening (6 hours) in the middle of the month.
    evening = MONTH_START + timedelta(seconds=15 * args.windows) - timedelta(hours=3)
    cases: list[tuple[str, dict[str, Any]]] = [
        ("no filter", {}),
        ("--channel month (30 days)", {"channels": ["month"]}),
        (
            "--channel month, one evening",
            {
                "channels": ["month"],
                "time_from": evening,
                "time_to": evening + timedelta(hours=6),
            },
        ),
    ]
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.questions)]
    print(
        f"   {'case':<30} {'torch in-process':>17} {'int8 in-process':>16} {'HTTP (torch)':>13}"
        "   p50/p95 ms; torch stages (median ms: embed / semantic / fulltext / moments)"
    )
    from clipper.api import create_app
    from clipper.api.server import serve_in_thread

    settings = Settings(webhook_token=TOKEN)  # type: ignore[arg-type]
    app = create_app(settings, url)
    app.state.embedder = embedder  # what the app does on its first question, done up front
    worst = 0.0
    with serve_in_thread(app) as base:
        for label, kw in cases:
            inproc, stages = await _time_inprocess(url, embedder, questions, kw)
            int8, _ = await _time_inprocess(url, backends["onnx-int8"], questions, kw)
            http = _time_http(base, questions, kw)
            worst = max(worst, _p95(inproc), _p95(http))
            stage = " / ".join(f"{statistics.median(stages[s]) * 1000:.0f}" for s in stages)
            print(f"   {label:<30} {_pp(inproc):>17} {_pp(int8):>16} {_pp(http):>13}   {stage}")
    print(f"   worst p95 (torch, in-process and HTTP): {worst:.0f} ms (target < 300 ms)")
    env = {**os.environ, "CHATPULSE_DATABASE_URL": url, "CHATPULSE_DATA_DIR": str(data_dir)}
    for backend in ("torch", "onnx-int8"):
        t0 = time.perf_counter()
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "chatpulse.app.cli", "ask", "shark donation", "--json"],
            capture_output=True,
            env={**env, "CHATPULSE_EMBED_BACKEND": backend},
            timeout=600,
            check=False,
        )
        print(
            f"   cold CLI (chatpulse ask, new process, {backend} model load included): "
            f"{time.perf_counter() - t0:.1f} s, exit {done.returncode}"
        )

    # 4. storage
    with psycopg.connect(url) as conn:
        win = conn.execute(
            "SELECT pg_total_relation_size('chat.window_embeddings'), count(*) "
            "FROM chat.window_embeddings WHERE channel_id = "
            "(SELECT id FROM chat.channels WHERE name = 'month')"
        ).fetchone()
        assert win is not None
    win_bytes = win[0] / max(win[1], 1)
    ratio = distinct / total
    per_million = 1e6 * ratio * text_bytes[0] + 1e6 / per_window * win_bytes
    print(
        f"\n4. storage: {text_bytes[0]:.0f} B per distinct text (with its key), {win_bytes:.0f} B "
        f"per window (vector, document, HNSW, GIN and key indexes; the month's {win[1]} windows)"
    )
    print(
        f"   per million messages at {per_window:.0f} messages per window and {ratio:.2f} distinct "
        f"texts per message (the real chat here; a busy channel repeats more): "
        f"{per_million / 2**20:.0f} MiB"
    )


async def _live_window(
    url: str, embedder: Embedder, rate: float, pool: list[str]
) -> tuple[float, int, int]:
    """Insert one closed 30-s window at ``rate`` msg/s of a new channel with texts no pass has
    seen, and time the pass that embeds it."""
    import random

    rng = random.Random(int(rate * 1000))
    n = max(1, round(rate * 30))
    tag = f"{embedder.backend}{rate:g}".replace(".", "_")
    # Keep the real chat's repetition: about as many distinct texts per message as the pool.
    distinct = sorted(set(pool))
    share = len(distinct) / len(pool)
    chosen = rng.sample(distinct, min(len(distinct), max(1, round(n * share))))
    texts = [f"{t} {tag}" for t in chosen]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    start -= timedelta(seconds=start.second % 30)
    with psycopg.connect(url) as conn:
        # Bring the watermark to now: the pass below sees this window only.
        async with await connect(url) as aconn:
            while (await embed_pass(aconn, embedder)).windows:
                pass
        cid = conn.execute(
            "INSERT INTO chat.channels (name) VALUES (%s) RETURNING id", (f"live_{tag}",)
        ).fetchone()
        assert cid is not None
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO chat.messages (sent_at, channel_id, message_id, text) "
                "VALUES (%s, %s, %s, %s)",
                [
                    (start + timedelta(seconds=30 * i / n), cid[0], f"{tag}-{i}", rng.choice(texts))
                    for i in range(n)
                ],
            )
        conn.commit()
    async with await connect(url) as aconn:
        t0 = time.perf_counter()
        stats = await embed_pass(aconn, embedder)
        took = time.perf_counter() - t0
    assert stats.windows == 1, stats
    return took, n, stats.embedded_texts


def _build_month(conn: psycopg.Connection[Any], windows: int, messages: int, model: str) -> float:
    """The month of channel 'month' (see the module docstring); returns messages per window."""
    import numpy as np

    per = max(1, round(messages / windows))
    real = conn.execute(
        "SELECT e.window_start, e.embedding::text, "
        "  array_agg(m.text ORDER BY m.sent_at, m.message_id) "
        "FROM chat.window_embeddings e JOIN chat.messages m ON m.channel_id = e.channel_id "
        " AND m.sent_at >= e.window_start AND m.sent_at < e.window_end "
        "WHERE e.channel_id = (SELECT id FROM chat.channels WHERE name = 'spliced') "
        "GROUP BY 1, 2 ORDER BY 1"
    ).fetchall()
    base = np.asarray([parse_vector(v) for _, v, _ in real], dtype=np.float64)
    cid = conn.execute("INSERT INTO chat.channels (name) VALUES ('month') RETURNING id").fetchone()
    assert cid is not None
    timings: list[tuple[str, float]] = []

    def step(name: str, fn: Callable[[], object]) -> None:
        t0 = time.perf_counter()
        fn()
        conn.commit()
        timings.append((name, time.perf_counter() - t0))

    def drop() -> None:
        for index in (
            "chat.window_embeddings_hnsw_idx",
            "chat.window_embeddings_document_idx",
            "chat.messages_text_fts_idx",
            "chat.messages_sent_at_idx",
            "chat.messages_user_idx",
            "chat.messages_user_id_idx",
            "chat.messages_ingest_xid_idx",
        ):
            conn.execute(f"DROP INDEX {index}")  # bench-only: constant names
        conn.execute("ALTER TABLE chat.messages DROP CONSTRAINT messages_key")

    rng = np.random.default_rng(1)
    # A stream stays on one subject for a while: runs of ~40 windows (20 minutes) per base.
    runs = rng.integers(0, len(base), size=windows // 40 + 1)
    choice = np.repeat(runs, 40)[:windows]
    vectors = base[choice] + rng.normal(0, 0.03, size=(windows, base.shape[1]))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    def load_vectors() -> None:
        conn.execute("CREATE TEMP TABLE bench_vec (i int, b int, embedding vector(384))")
        conn.execute("CREATE TEMP TABLE bench_base (b int PRIMARY KEY, texts text[])")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO bench_base VALUES (%s, %s)", [(b, t) for b, (*_, t) in enumerate(real)]
            )
            with cur.copy("COPY bench_vec (i, b, embedding) FROM STDIN") as copy:
                for i in range(windows):
                    copy.write_row((i, int(choice[i]), vector_literal(vectors[i])))

    params = {"cid": cid[0], "start": MONTH_START, "per": per, "model": model, "n": windows}
    # The j-th message of window i: text hash(i, j) of the window's base, spread over 30 s.
    text_expr = "t.texts[1 + abs(hashint8(v.i::bigint * 100000 + j)) %% cardinality(t.texts)]"

    def load_messages() -> None:
        conn.execute(
            "INSERT INTO chat.messages (sent_at, channel_id, message_id, user_login, text) "
            "SELECT %(start)s + make_interval(secs => v.i * 30 + j * 30.0 / %(per)s), %(cid)s, "
            "  'm' || v.i || '-' || j, 'u' || abs(hashint8(v.i::bigint * 7 + j)) %% 20000, "
            f"  {text_expr} "
            "FROM bench_vec v JOIN bench_base t ON t.b = v.b, generate_series(0, %(per)s - 1) j",
            params,
        )

    def load_windows() -> None:
        conn.execute(
            "INSERT INTO chat.window_embeddings (channel_id, window_start, window_end, model, "
            "  messages, distinct_texts, embedding, document) "
            "SELECT %(cid)s, %(start)s + make_interval(secs => v.i * 30), "
            "  %(start)s + make_interval(secs => v.i * 30 + 30), %(model)s, %(per)s, d.n, "
            "  v.embedding, d.document "
            "FROM bench_vec v JOIN bench_base t ON t.b = v.b, LATERAL ("
            f"  SELECT count(DISTINCT {text_expr})::int AS n, "
            f"    to_tsvector('simple', string_agg({text_expr}, ' ' ORDER BY j)) AS document "
            "  FROM generate_series(0, %(per)s - 1) j) d",
            params,
        )

    def index() -> None:
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute(
            "CREATE INDEX window_embeddings_hnsw_idx ON chat.window_embeddings "
            "USING hnsw (embedding vector_cosine_ops)"
        )
        conn.execute(
            "CREATE INDEX window_embeddings_document_idx ON chat.window_embeddings "
            "USING gin (document)"
        )

    step("drop unused indexes", drop)
    step("window vectors (numpy, COPY)", load_vectors)
    step(f"{windows * per} messages (SQL)", load_messages)
    step("window rows and documents (SQL)", load_windows)
    step("HNSW and GIN indexes", index)
    conn.autocommit = True
    step(
        "VACUUM ANALYZE",
        lambda: conn.execute("VACUUM ANALYZE chat.messages, chat.window_embeddings"),
    )
    conn.autocommit = False
    print("   built in " + ", ".join(f"{n} {s:.0f} s" for n, s in timings))
    return float(per)


def _pp(values: list[float]) -> str:
    return f"{statistics.median(values):.0f}/{_p95(values):.0f}"


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(0.95 * len(ordered)) - 1)]


async def _time_inprocess(
    url: str, embedder: Embedder, questions: list[str], kw: dict[str, Any]
) -> tuple[list[float], dict[str, list[float]]]:
    lat: list[float] = []
    stages: dict[str, list[float]] = {}
    async with await connect(url, autocommit=True) as conn:
        for q in questions[:3]:  # warm: caches, plans, the model's first call
            await ask(conn, embedder, q, limit=5, **kw)
        for q in questions:
            timings: dict[str, float] = {}
            t0 = time.perf_counter()
            found = await ask(conn, embedder, q, limit=5, timings=timings, **kw)
            lat.append((time.perf_counter() - t0) * 1000)
            assert len(found) == 5, (q, kw, found)
            for k, v in timings.items():
                stages.setdefault(k, []).append(v)
            if lat[-1] == max(lat):
                slowest = (q, timings)
    q, timings = slowest
    print(
        f"     slowest ({embedder.backend}): {q!r} {max(lat):.0f} ms: "
        + ", ".join(f"{k} {v * 1000:.0f}" for k, v in timings.items())
    )
    return lat, stages


def _time_http(base: str, questions: list[str], kw: dict[str, Any]) -> list[float]:
    params: dict[str, Any] = {"limit": 5}
    if "channels" in kw:
        params["channel"] = kw["channels"]
    if "time_from" in kw:
        params["from"] = kw["time_from"].isoformat()
        params["to"] = kw["time_to"].isoformat()
    lat = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        for q in questions[:3]:
            client.get("/ask", params={**params, "q": q}, timeout=60).raise_for_status()
        for q in questions:
            t0 = time.perf_counter()
            got = client.get("/ask", params={**params, "q": q}, timeout=60)
            lat.append((time.perf_counter() - t0) * 1000)
            got.raise_for_status()
            assert len(got.json()) == 5
    return lat


if __name__ == "__main__":
    main()
