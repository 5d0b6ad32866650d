"""Database work: the embedding pass, ask (hybrid search), distinctive terms and topics.

Vectors need pgvector (:func:`vectors_available`); distinctive terms do not.  Every query is
a named query of ``sql/queries/topics.sql``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg

from chatpulse.core.db import connect
from chatpulse.core.errors import ChatpulseError, ConfigError
from chatpulse.core.queries import load_queries
from topics import WINDOW_SECONDS
from topics.text import class_tfidf, distinctive_terms, rrf, text_weight, tokens

if TYPE_CHECKING:
    from topics.embed import Embedder

_Q = load_queries("topics")  # sql/queries/topics.sql

__all__ = [
    "EmbedStats",
    "Moment",
    "NoVectorsError",
    "ask",
    "compute_terms",
    "compute_topics",
    "embed_pass",
    "ensure_vectors",
    "run_embedder",
    "vectors_available",
]

log = logging.getLogger(__name__)

WINDOW = timedelta(seconds=WINDOW_SECONDS)
NO_VECTORS = (
    "this database has no pgvector (extension 'vector'): embeddings, ask and topics are off; "
    "use the embedded database (pgserver ships pgvector) or a server with pgvector, e.g. the "
    "timescale/timescaledb-ha image"
)


class NoVectorsError(ChatpulseError):
    """The database lacks pgvector; the CLI exits 2 with :data:`NO_VECTORS`."""


Conn = psycopg.AsyncConnection[Any]


async def _one(conn: Conn, name: str, params: dict[str, Any] | None = None) -> Any:
    cur = await conn.execute(_Q[name], params)
    row = await cur.fetchone()
    return None if row is None else row[0]


async def vectors_available(conn: Conn) -> bool:
    """True when ``chat.window_embeddings`` exists (pgvector was available at migrate)."""
    return bool(await _one(conn, "vectors_available"))


async def ensure_vectors(conn: Conn) -> None:
    """Create the vector tables if pgvector became available since migrate; else raise."""
    if await vectors_available(conn):
        return
    if not await _one(conn, "enable_vectors"):
        raise NoVectorsError(NO_VECTORS)


# -- embedding ---------------------------------------------------------------------------------


@dataclass(slots=True)
class EmbedStats:
    windows: int = 0
    messages: int = 0
    distinct_texts: int = 0
    embedded_texts: int = 0
    seconds: float = 0.0


class _VectorCache:
    """Hash -> vector, the most recently used ``size`` entries (saves reading them back)."""

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._data: OrderedDict[str, list[float]] = OrderedDict()

    def get(self, key: str) -> list[float] | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: str, value: list[float]) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)


async def _vectors_for(
    conn: Conn, embedder: Embedder, hashes: dict[str, str], cache: _VectorCache, stats: EmbedStats
) -> dict[str, list[float]]:
    """Vectors of ``hashes`` (hash -> text): cached, stored, or embedded now and stored."""
    from topics.embed import parse_vector, vector_literal

    found: dict[str, list[float]] = {}
    wanted = []
    for h in hashes:
        v = cache.get(h)
        if v is None:
            wanted.append(h)
        else:
            found[h] = v
    if not wanted:
        return found
    cur = await conn.execute(_Q["text_vectors"], {"model": embedder.model, "hashes": wanted})
    for h, text in await cur.fetchall():
        found[h] = parse_vector(text)
        cache.put(h, found[h])
    missing = [h for h in wanted if h not in found]
    if missing:
        vectors = await asyncio.to_thread(embedder.encode, [hashes[h] for h in missing])
        stats.embedded_texts += len(missing)
        async with conn.cursor() as cur2:
            await cur2.executemany(
                _Q["insert_text_embedding"],
                [
                    {"model": embedder.model, "hash": h, "vec": vector_literal(v)}
                    for h, v in zip(missing, vectors, strict=True)
                ],
            )
        for h, v in zip(missing, vectors, strict=True):
            found[h] = v
            cache.put(h, v)
    return found


async def embed_pass(
    conn: Conn,
    embedder: Embedder,
    *,
    now: datetime | None = None,
    batch: int = 20_000,
    cache: _VectorCache | None = None,
) -> EmbedStats:
    """Embed the closed windows touched by messages since the watermark, once; returns what
    it did (``windows == 0``: nothing left).  A window still open (its end after ``now``) is
    left for a later pass, and so is every message from its first one on."""
    from topics.embed import vector_literal, window_vector

    loop = asyncio.get_running_loop()
    started = loop.time()
    cache = cache or _VectorCache()
    stats = EmbedStats()
    now = now or datetime.now(UTC)
    after = await _one(conn, "embed_state", {"model": embedder.model})
    await conn.commit()
    cur = await conn.execute(_Q["new_windows"], {"after": after, "limit": batch})
    touched = await cur.fetchall()
    if not touched:
        return stats
    closed = [(c, w) for c, w, _, _ in touched if w + WINDOW <= now]
    open_min = [lo for _c, w, lo, _ in touched if w + WINDOW > now]
    watermark = min(open_min) - 1 if open_min else max(hi for *_, hi in touched)
    if closed:
        cur = await conn.execute(
            _Q["window_texts"],
            {"channels": [c for c, _ in closed], "starts": [w for _, w in closed]},
        )
        per_window: dict[tuple[int, datetime], list[tuple[str, int]]] = defaultdict(list)
        texts: dict[str, str] = {}
        for channel_id, start, h, text, n in await cur.fetchall():
            per_window[(channel_id, start)].append((h, n))
            texts[h] = text
        vectors = await _vectors_for(conn, embedder, texts, cache, stats)
        rows = []
        for (channel_id, start), items in per_window.items():
            vec = window_vector([vectors[h] for h, _ in items], [n for _, n in items])
            messages = sum(n for _, n in items)
            stats.messages += messages
            stats.distinct_texts += len(items)
            rows.append(
                {
                    "channel_id": channel_id,
                    "start": start,
                    "model": embedder.model,
                    "messages": messages,
                    "distinct": len(items),
                    "vec": vector_literal(vec),
                }
            )
        async with conn.cursor() as cur2:
            await cur2.executemany(_Q["upsert_window"], rows)
        stats.windows = len(rows)
    await conn.execute(_Q["save_embed_state"], {"model": embedder.model, "seq": watermark})
    await conn.commit()
    stats.seconds = loop.time() - started
    if not closed and watermark <= after:
        stats.windows = 0
    return stats


async def run_embedder(
    url: str,
    embedder: Embedder,
    *,
    until_idle: bool = False,
    poll_s: float = 5.0,
    stop: asyncio.Event | None = None,
    on_idle: Any = None,
) -> EmbedStats:
    """Embed windows until ``stop`` (or, with ``until_idle``, until nothing closed is left)."""
    total = EmbedStats()
    cache = _VectorCache()
    stop = stop or asyncio.Event()
    async with await connect(url) as conn:
        await ensure_vectors(conn)
        await conn.commit()
        while not stop.is_set():
            stats = await embed_pass(conn, embedder, cache=cache)
            for name in ("windows", "messages", "distinct_texts", "embedded_texts", "seconds"):
                setattr(total, name, getattr(total, name) + getattr(stats, name))
            if stats.windows:
                log.info(
                    "windows embedded",
                    extra={
                        "windows": stats.windows,
                        "texts_embedded": stats.embedded_texts,
                        "seconds": round(stats.seconds, 2),
                    },
                )
                continue
            if until_idle:
                break
            if on_idle is not None:
                await on_idle()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_s)
    return total


# -- ask ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class Moment:
    """One answer of :func:`ask`: a 30-s window of one channel."""

    channel: str
    start: datetime
    end: datetime
    score: float
    similarity: float | None
    text_rank: int | None
    semantic_rank: int | None
    messages: list[dict[str, Any]] = field(default_factory=list)
    session_start: datetime | None = None
    vod: str | None = None
    vod_offset_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        into = self.session_start
        return {
            "channel": self.channel,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "score": round(self.score, 6),
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "semantic_rank": self.semantic_rank,
            "text_rank": self.text_rank,
            "messages": self.messages,
            "stream_start": None if into is None else into.isoformat(),
            "into_stream_s": None if into is None else (self.start - into).total_seconds(),
            "vod": self.vod,
            "vod_offset_s": self.vod_offset_s,
            # The clipper's POST /clips body for this moment.
            "clip_request": {
                "channel": self.channel,
                "start": self.start.isoformat(),
                "end": self.end.isoformat(),
            },
        }


#: A filter that leaves at most this many windows is searched exactly (a scan of that many
#: vectors takes a few milliseconds per thousand); a wider one through the HNSW index.
EXACT_MAX = 20_000
#: The most candidates one HNSW search may return (``hnsw.ef_search`` allows 1,000).
EF_MAX = 1000
#: Full-text matches ranked at most (``ask_fulltext``).
FULLTEXT_CAP = 1000


async def semantic_search(
    conn: Conn,
    q: Sequence[float],
    model: str,
    *,
    k: int,
    channel_ids: list[int] | None = None,
    time_from: datetime | None = None,
    time_to: datetime | None = None,
) -> list[tuple[int, datetime, float]]:
    """The ``k`` windows nearest ``q`` (cosine), filtered by channel and time; k rows unless
    the filter leaves fewer.

    pgvector (0.6) applies a filter after its index scan, so an index search with a filter can
    return fewer than ``k`` rows (see ``ask_semantic_index``).  A filter that leaves at most
    :data:`EXACT_MAX` windows (a channel's evening, a week of a quiet channel) is searched
    exactly over those rows, found through the (channel_id, window_start) key or the time
    index.  A wider one goes through the HNSW index: first with ``ef_search = 2 k`` (enough when
    the filter keeps most rows: no filter, the one busy channel), then with the most the index
    gives (1,000); when fewer than ``k`` rows pass the filter even then, the exact scan
    answers."""
    from topics.embed import vector_literal

    vec = vector_literal(q)
    params: dict[str, Any] = {
        "q": vec,
        "model": model,
        "k": k,
        "channel_ids": channel_ids,
        "from": time_from,
        "to": time_to,
    }
    if channel_ids is None and time_from is None and time_to is None:
        kept = int(await _one(conn, "ask_all_windows"))  # the planner's estimate: no scan
    else:
        kept = int(await _one(conn, "ask_filtered_windows", {**params, "cap": EXACT_MAX + 1}))
    if kept > EXACT_MAX and k <= EF_MAX:
        # The count stops at EXACT_MAX + 1, so the filter's share is not known: try the
        # candidates a filter keeping most rows needs, then the most the index gives.
        for ef in sorted({min(EF_MAX, max(40, 2 * k)), EF_MAX}):
            async with conn.transaction():
                await conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef),))
                cur = await conn.execute(_Q["ask_semantic_index"], {**params, "ef": ef})
                rows = [(c, w, float(s)) for c, w, s in await cur.fetchall()]
            if len(rows) == k:
                return rows
    cur = await conn.execute(_Q["ask_semantic_exact"], params)
    return [(c, w, float(s)) for c, w, s in await cur.fetchall()]


async def ask(
    conn: Conn,
    embedder: Embedder,
    question: str,
    *,
    channels: list[str] | None = None,
    time_from: datetime | None = None,
    time_to: datetime | None = None,
    limit: int = 5,
    candidates: int = 50,
    messages: int = 5,
    timings: dict[str, float] | None = None,
) -> list[Moment]:
    """The best moments for ``question``: reciprocal-rank fusion of the nearest windows by
    meaning and the windows whose words match its words (full text, ``simple``).

    ``timings``, when given, receives the seconds each stage took (``embed``, ``semantic``,
    ``fulltext``, ``moments``): bench/embed.py prints them."""
    from topics.embed import vector_literal

    clock = time.perf_counter
    marks = [clock()]

    if not await vectors_available(conn):
        raise NoVectorsError(NO_VECTORS)
    channel_ids: list[int] | None = None
    if channels:
        cur = await conn.execute(_Q["channel_ids"], {"names": [c.lower() for c in channels]})
        channel_ids = [r[0] for r in await cur.fetchall()]
        if not channel_ids:
            return []
    [q] = await asyncio.to_thread(embedder.encode, [question])
    marks.append(clock())
    k = max(candidates, limit)
    semantic = await semantic_search(
        conn,
        q,
        embedder.model,
        k=k,
        channel_ids=channel_ids,
        time_from=time_from,
        time_to=time_to,
    )
    marks.append(clock())
    cur = await conn.execute(
        _Q["ask_fulltext"],
        {
            "q": question,
            "k": k,
            "cap": FULLTEXT_CAP,
            "channel_ids": channel_ids,
            "from": time_from,
            "to": time_to,
        },
    )
    fulltext = [(c, w) for c, w, _ in await cur.fetchall()]
    marks.append(clock())
    similarity = {(c, w): s for c, w, s in semantic}
    sem_rank = {(c, w): i for i, (c, w, _) in enumerate(semantic, start=1)}
    txt_rank = {key: i for i, key in enumerate(fulltext, start=1)}
    fused = rrf([[(c, w) for c, w, _ in semantic], fulltext])[:limit]
    keys = [key for _, key in fused]
    batch = {
        "channel_ids": [c for c, _ in keys],
        "starts": [w for _, w in keys],
    }
    said: dict[int, list[dict[str, Any]]] = defaultdict(list)
    context: dict[int, tuple[Any, ...]] = {}
    if keys:
        cur = await conn.execute(
            _Q["moment_messages"],
            {
                **batch,
                "question": question,
                "model": embedder.model,
                "q": vector_literal(q),
                "n": messages,
            },
        )
        for ord_, text, n in await cur.fetchall():
            said[ord_].append({"text": text, "count": n})
        cur = await conn.execute(_Q["moment_context"], batch)
        context = {row[0]: row[1:] for row in await cur.fetchall()}
    moments = []
    for i, (score, (channel_id, start)) in enumerate(fused, start=1):
        assert isinstance(start, datetime)
        name, vod, vod_start, session = context[i]
        key = (channel_id, start)
        moments.append(
            Moment(
                channel=name,
                start=start,
                end=start + WINDOW,
                score=score,
                similarity=similarity.get(key),
                semantic_rank=sem_rank.get(key),
                text_rank=txt_rank.get(key),
                messages=said[i],
                session_start=session,
                vod=vod,
                vod_offset_s=None if vod_start is None else (start - vod_start).total_seconds(),
            )
        )
    marks.append(clock())
    if timings is not None:
        stages = ("embed", "semantic", "fulltext", "moments")
        for name, (a, b) in zip(stages, itertools.pairwise(marks), strict=True):
            timings[name] = b - a
    return moments


# -- distinctive terms and topics --------------------------------------------------------------


async def _range(
    conn: Conn, channel_id: int, start: datetime | None, end: datetime | None
) -> tuple[datetime, datetime] | None:
    cur = await conn.execute(_Q["channel_range"], {"channel_id": channel_id})
    row = await cur.fetchone()
    if row is None or row[0] is None:
        return None
    return (start or row[0], end or row[1])


async def _window_texts(
    conn: Conn, channel_id: int, start: datetime, end: datetime
) -> dict[datetime, list[tuple[str, str, int]]]:
    cur = await conn.execute(
        _Q["range_texts"], {"channel_id": channel_id, "start": start, "end": end}
    )
    out: dict[datetime, list[tuple[str, str, int]]] = defaultdict(list)
    for w, h, text, n in await cur.fetchall():
        out[w].append((h, text, n))
    return out


async def _emotes(conn: Conn, channel_id: int, start: datetime, end: datetime) -> frozenset[str]:
    cur = await conn.execute(
        _Q["emote_names"], {"channel_id": channel_id, "start": start, "end": end}
    )
    return frozenset(r[0] for r in await cur.fetchall())


def window_term_counts(
    windows: dict[datetime, list[tuple[str, str, int]]], emotes: frozenset[str]
) -> dict[datetime, Counter[str]]:
    """Per window: how many messages used each term (a message counts a term once)."""
    out: dict[datetime, Counter[str]] = {}
    for w, items in windows.items():
        counts: Counter[str] = Counter()
        for _h, text, n in items:
            for t in tokens(text, emotes):
                counts[t] += n
        out[w] = counts
    return out


async def compute_terms(
    conn: Conn,
    channel_id: int,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    top: int = 10,
) -> int:
    """Store the distinctive terms of every window of the channel in [start, end) into
    ``chat.window_terms`` (replacing that range); returns the rows written.  No model needed."""
    span = await _range(conn, channel_id, start, end)
    if span is None:
        return 0
    start, end = span
    windows = await _window_texts(conn, channel_id, start, end)
    emotes = await _emotes(conn, channel_id, start, end)
    counts = window_term_counts(windows, emotes)
    background: Counter[str] = Counter()
    for c in counts.values():
        background.update(c)
    rows = []
    for w, c in sorted(counts.items()):
        for rank, term in enumerate(distinctive_terms(c, background, top=top), start=1):
            rows.append(
                {
                    "channel_id": channel_id,
                    "start": w,
                    "term": term.term,
                    "count": term.count,
                    "z": term.zscore,
                    "rank": rank,
                }
            )
    async with conn.transaction():
        await conn.execute(
            _Q["delete_terms"],
            {"channel_id": channel_id, "start": start, "end": end + WINDOW},
        )
        async with conn.cursor() as cur:
            await cur.executemany(_Q["insert_term"], rows)
    return len(rows)


@dataclass(slots=True)
class TopicsResult:
    topics: list[tuple[int, str, list[str], list[str], int]]
    window_topics: dict[datetime, dict[int, float]]


def _choose_k(matrix: Any, wanted: int) -> int:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    n = len(matrix)
    if wanted:
        return max(1, min(wanted, n))
    if n < 6:
        return 1
    best, best_k = -2.0, 2
    for k in range(2, min(8, n - 1) + 1):
        labels = KMeans(n_clusters=k, n_init=4, random_state=0).fit_predict(matrix)
        score = float(silhouette_score(matrix, labels, metric="cosine"))
        if score > best:
            best, best_k = score, k
    return best_k


def cluster_topics(
    window_vectors: dict[datetime, list[float]],
    windows: dict[datetime, list[tuple[str, str, int]]],
    text_vectors: dict[str, list[float]],
    emotes: frozenset[str],
    k: int = 0,
) -> TopicsResult:
    """KMeans (scikit-learn) over the window vectors; labels by class-based TF-IDF of the
    clusters' terms; each window's topic shares from its texts' nearest centroids."""
    import numpy as np
    from sklearn.cluster import KMeans

    starts = sorted(window_vectors)
    matrix = np.asarray([window_vectors[w] for w in starts], dtype=np.float64)
    k = _choose_k(matrix, k)
    model = KMeans(n_clusters=k, n_init=10, random_state=0).fit(matrix)
    labels = [int(x) for x in model.labels_]
    centroids = model.cluster_centers_ / np.maximum(
        np.linalg.norm(model.cluster_centers_, axis=1, keepdims=True), 1e-12
    )
    classes: dict[int, Counter[str]] = {c: Counter() for c in range(k)}
    counts = window_term_counts({w: windows.get(w, []) for w in starts}, emotes)
    for w, cluster in zip(starts, labels, strict=True):
        classes[cluster].update(counts[w])
    ranked = class_tfidf({c: dict(v) for c, v in classes.items()}, top=30)
    topics = []
    for c in range(k):
        words = [t for t, _ in ranked.get(c, []) if t not in emotes][:8]
        emo = [t for t, _ in ranked.get(c, []) if t in emotes][:5]
        name = " · ".join(words[:3]) or " ".join(emo[:3]) or f"topic {c}"
        topics.append((c, name, words, emo, labels.count(c)))
    shares: dict[datetime, dict[int, float]] = {}
    for w in starts:
        items = [(h, n) for h, _t, n in windows.get(w, []) if h in text_vectors]
        if not items:
            continue
        vecs = np.asarray([text_vectors[h] for h, _ in items], dtype=np.float64)
        nearest = (vecs @ centroids.T).argmax(axis=1)
        weights: dict[int, float] = defaultdict(float)
        for (_, n), c in zip(items, nearest, strict=True):
            weights[int(c)] += text_weight(n)
        total = sum(weights.values())
        shares[w] = {c: v / total for c, v in weights.items()}
    return TopicsResult(topics, shares)


async def compute_topics(
    conn: Conn,
    channel_id: int,
    model: str,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    k: int = 0,
) -> TopicsResult | None:
    """Cluster the channel's embedded windows of [start, end) into topics and store them in
    ``chat.topics`` and ``chat.window_topics`` (replacing the channel's); None when no window
    is embedded.  Needs pgvector and scikit-learn (the ``embed`` extra)."""
    from topics.embed import parse_vector

    if not await vectors_available(conn):
        raise NoVectorsError(NO_VECTORS)
    try:
        import sklearn  # noqa: F401
    except ModuleNotFoundError:
        raise ConfigError(
            "topics need scikit-learn, part of the 'embed' extra: pip install 'chatpulse[embed]'"
        ) from None
    span = await _range(conn, channel_id, start, end)
    if span is None:
        return None
    start, end = span
    params = {"channel_id": channel_id, "start": start, "end": end, "model": model}
    cur = await conn.execute(_Q["range_window_vectors"], params)
    window_vectors = {w: parse_vector(v) for w, v in await cur.fetchall()}
    if not window_vectors:
        return None
    windows = await _window_texts(conn, channel_id, start, end + WINDOW)
    hashes = sorted({h for items in windows.values() for h, _, _ in items})
    cur = await conn.execute(_Q["text_vectors"], {"model": model, "hashes": hashes})
    text_vectors = {h: parse_vector(v) for h, v in await cur.fetchall()}
    emotes = await _emotes(conn, channel_id, start, end)
    result = await asyncio.to_thread(
        cluster_topics, window_vectors, windows, text_vectors, emotes, k
    )
    async with conn.transaction():
        await conn.execute(_Q["delete_topics"], {"channel_id": channel_id})
        async with conn.cursor() as cur2:
            await cur2.executemany(
                _Q["insert_topic"],
                [
                    {
                        "channel_id": channel_id,
                        "topic_id": c,
                        "label": label,
                        "terms": words,
                        "emotes": emo,
                        "windows": n,
                        "model": model,
                        "start": start,
                        "end": end,
                    }
                    for c, label, words, emo, n in result.topics
                ],
            )
            await cur2.executemany(
                _Q["insert_window_topic"],
                [
                    {"channel_id": channel_id, "start": w, "topic_id": c, "share": s}
                    for w, shares in result.window_topics.items()
                    for c, s in shares.items()
                ],
            )
    return result
