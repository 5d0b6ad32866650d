"""Topics on the system PostgreSQL, which has no pgvector: migrate succeeds, the model-free
distinctive terms work, and embed/ask say clearly (exit 2, one line) that pgvector is missing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from chatpulse.core.db import connect
from tests.topics_data import START, insert_spliced, part_of
from topics.store import compute_terms, vectors_available


def _cli(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHATPULSE_DATABASE_URL": url, "CHATPULSE_DATA_DIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "chatpulse.app.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_without_pgvector_embed_and_ask_exit_2_with_one_line(db_url: str, tmp_path: Path) -> None:
    with psycopg.connect(db_url) as conn:
        available = conn.execute(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"
        ).fetchone()
        tables = conn.execute(
            "SELECT to_regclass('chat.window_terms') IS NOT NULL, "
            "to_regclass('chat.window_embeddings') IS NULL"
        ).fetchone()
    if available != (0,):
        import pytest

        pytest.skip("this PostgreSQL has pgvector; test_topics_vectors.py covers it")
    assert tables == (True, True)
    for args in (["ask", "boss fight"], ["ask", "x", "--json"], ["embed", "--until-idle"]):
        done = _cli(db_url, tmp_path, *args)
        if done.returncode == 2 and "embed' extra" in done.stderr:
            continue  # embed: the missing extra is said first when it is missing
        assert done.returncode == 2, (args, done.stderr[-2000:])
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "pgvector" in lines[0], (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_distinctive_terms_need_no_model_and_find_each_part_s_words(
    db_url: str, tmp_path: Path
) -> None:
    with psycopg.connect(db_url) as conn:
        channel_id = insert_spliced(conn)

    async def run() -> bool:
        async with await connect(db_url, autocommit=True) as conn:
            await compute_terms(conn, channel_id)
            return await vectors_available(conn)

    assert asyncio.run(run()) is False
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT window_start, term, rank FROM chat.window_terms WHERE channel_id = %s",
            (channel_id,),
        ).fetchall()
    top: dict[str, set[str]] = {}
    for w, term, _ in rows:
        top.setdefault(part_of(w), set()).add(str(term))
    assert "late" in top["techno"] and "late" not in top["nymn"]
    assert "edm" in top["nymn"] and "edm" not in top["techno"]
    assert "300k" in top["gura"]
    assert all(w >= START for w, _, _ in rows)
    # The CLI: terms stored again (replaced, not doubled), topics skipped with the reason.
    done = _cli(db_url, tmp_path, "topics", "--channel", "spliced")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{len(rows)} distinctive terms" in done.stdout
    assert "pgvector" in done.stderr


def test_report_without_pgvector_says_so_in_one_line_and_shows_distinctive_terms(
    db_url: str,
) -> None:
    import re

    from chatpulse.app.report import load_report, render_report

    with psycopg.connect(db_url) as conn:
        channel_id = insert_spliced(conn)
    before = render_report(asyncio.run(load_report(db_url, "spliced")))

    async def terms() -> None:
        async with await connect(db_url, autocommit=True) as conn:
            await compute_terms(conn, channel_id)

    asyncio.run(terms())
    data = asyncio.run(load_report(db_url, "spliced"))
    page = render_report(data)
    assert data.topics is not None and data.topics.vectors is False
    section = page.split("<h2>Topics</h2>", 1)[1].split("<h2>Distinctive terms</h2>", 1)[0]
    assert re.fullmatch(r"<p class='note'>No topics: [^<]*pgvector[^<]*</p>", section), section
    assert "No distinctive terms for this range" in before
    assert "No distinctive terms for this range" not in page
    # 20 minutes in 2-minute rows, at most five terms each; the premiere's part is about being late.
    rows = re.findall(r"<tr><td>(\d\d:\d\d)–\d\d:\d\d</td><td>([^<]*)</td></tr>", page)
    assert [t for t, _ in rows] == [f"20:{m:02d}" for m in range(0, 20, 2)]
    assert all(1 <= len(terms.split(", ")) <= 5 for _, terms in rows), rows
    assert any("late (" in terms for t, terms in rows if "20:06" <= t < "20:10")
    assert not any("late (" in terms for t, terms in rows if t < "20:04")
