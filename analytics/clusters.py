"""Behavioural clustering of chatters: the types the data suggests, beside the rule segments.

Per channel, each chatter of its analyzed streams (``chat.stream_chatters``, summed over the
streams they wrote in) is described by :data:`FEATURES`:

==================== ===========================================================================
``messages``          messages in the channel (log scale in the model)
``messages_per_stream`` messages per stream they wrote in (log)
``streams``           streams they wrote in (log)
``attendance``        share of the channel's streams since their first that they wrote in
``emote_share``       emote uses per message
``duplicate_share``   share of their messages that repeat their own text or a copypasta
``avg_length``        characters per message (log)
``gap_mean_s``        mean seconds between their messages within a stream (log; a chatter with
                      one message per stream has none and gets the channel's median)
==================== ===========================================================================

The features are standardised (scikit-learn's ``StandardScaler``), KMeans runs for each k in
:data:`K_RANGE` (bounded by the number of distinct chatters) and the k with the highest
silhouette wins.  Clusters are numbered by size (0 is the largest) and described by their
features' means (in the units above) and by the features furthest from the channel's average,
in standard deviations.  A channel with fewer than :data:`MIN_CHATTERS` chatters, or with
chatters that all look alike, gets no clusters.

scikit-learn is the optional extra ``analytics`` (``pip install 'chatpulse[analytics]'``);
:func:`cluster_features` imports it when called.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from chatpulse.core.queries import load_queries

__all__ = [
    "FEATURES",
    "K_RANGE",
    "MIN_CHATTERS",
    "ChatterFeatures",
    "Cluster",
    "Clustering",
    "cluster_channel",
    "cluster_channels",
    "cluster_features",
]

FEATURES = (
    "messages",
    "messages_per_stream",
    "streams",
    "attendance",
    "emote_share",
    "duplicate_share",
    "avg_length",
    "gap_mean_s",
)
_LOG = {"messages", "messages_per_stream", "streams", "avg_length", "gap_mean_s"}
_LABELS = {
    "messages": "messages",
    "messages_per_stream": "messages per stream",
    "streams": "streams",
    "attendance": "attendance",
    "emote_share": "emote share",
    "duplicate_share": "duplicates",
    "avg_length": "message length",
    "gap_mean_s": "time between messages",
}
K_RANGE = range(2, 7)
MIN_CHATTERS = 10
_SILHOUETTE_SAMPLE = 5000


@dataclass(frozen=True, slots=True)
class ChatterFeatures:
    """One chatter's behaviour in one channel."""

    chatter: str
    login: str | None
    messages: float
    messages_per_stream: float
    streams: float
    attendance: float
    emote_share: float
    duplicate_share: float
    avg_length: float
    gap_mean_s: float | None

    def value(self, name: str) -> float | None:
        v: float | None = getattr(self, name)
        return v


@dataclass(frozen=True, slots=True)
class Cluster:
    """One cluster: its size, feature means and a short description."""

    number: int
    chatters: int
    means: dict[str, float | None]
    description: str


@dataclass(frozen=True, slots=True)
class Clustering:
    """The chosen clustering of one channel."""

    k: int
    silhouette: float
    clusters: list[Cluster]
    labels: dict[str, int]  # chatter -> cluster number
    scores: dict[int, float]  # silhouette of each k tried


def cluster_features(
    rows: Sequence[ChatterFeatures], k_range: Iterable[int] = K_RANGE, seed: int = 0
) -> Clustering | None:
    """Cluster ``rows`` (pure: no I/O).  None when there are too few or too alike chatters."""
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    if len(rows) < MIN_CHATTERS:
        return None
    raw = np.array(
        [[np.nan if r.value(f) is None else r.value(f) for f in FEATURES] for r in rows],
        dtype=float,
    )
    model = raw.copy()
    for j, name in enumerate(FEATURES):
        column = model[:, j]
        missing = np.isnan(column)
        column[missing] = np.nanmedian(column) if (~missing).any() else 0.0
        if name in _LOG:
            model[:, j] = np.log1p(np.maximum(column, 0.0))
    scaled = StandardScaler().fit_transform(model)
    distinct = len(np.unique(np.round(scaled, 9), axis=0))
    ks = [k for k in k_range if 2 <= k <= min(distinct, len(rows) - 1)]
    if not ks:
        return None
    best: tuple[float, int, Any] | None = None
    scores: dict[int, float] = {}
    for k in ks:
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(scaled)
        if len(set(labels.tolist())) < 2:
            continue
        score = float(
            silhouette_score(
                scaled,
                labels,
                sample_size=min(len(rows), _SILHOUETTE_SAMPLE),
                random_state=seed,
            )
        )
        scores[k] = score
        if best is None or score > best[0]:
            best = (score, k, labels)
    if best is None:
        return None
    score, k, labels = best
    # Number clusters by size, largest first (ties: the smaller KMeans label).
    sizes = np.bincount(labels, minlength=k)
    order = sorted(range(k), key=lambda c: (-int(sizes[c]), c))
    renumber = {old: new for new, old in enumerate(order)}
    clusters = []
    for old in order:
        members = labels == old
        means: dict[str, float | None] = {}
        for j, name in enumerate(FEATURES):
            values = raw[members, j]
            present = values[~np.isnan(values)]
            means[name] = float(present.mean()) if len(present) else None
        z = scaled[members].mean(axis=0)
        top = sorted(range(len(FEATURES)), key=lambda j: -abs(float(z[j])))[:3]
        description = ", ".join(f"{_LABELS[FEATURES[j]]} {float(z[j]):+.1f} sd" for j in top)
        clusters.append(Cluster(renumber[old], int(sizes[old]), means, description))
    return Clustering(
        k=k,
        silhouette=score,
        clusters=clusters,
        labels={r.chatter: renumber[int(c)] for r, c in zip(rows, labels, strict=True)},
        scores=scores,
    )


Conn = psycopg.AsyncConnection[Any]


_Q = load_queries("clusters")  # sql/queries/clusters.sql


async def _features(conn: Conn, channel: int) -> list[ChatterFeatures]:
    cur = await conn.execute(_Q["stream_starts"], {"channel": channel})
    starts: list[datetime] = [r[0] for r in await cur.fetchall()]
    cur = await conn.execute(_Q["chatter_features"], {"channel": channel})
    out = []
    for (
        chatter,
        login,
        streams,
        first_at,
        messages,
        dups,
        emotes,
        chars,
        gap,
    ) in await cur.fetchall():
        since_first = len(starts) - bisect.bisect_left(starts, first_at)
        n = max(int(messages), 1)
        out.append(
            ChatterFeatures(
                chatter=chatter,
                login=login,
                messages=float(messages),
                messages_per_stream=float(messages) / int(streams),
                streams=float(streams),
                attendance=int(streams) / max(since_first, 1),
                emote_share=float(emotes) / n,
                duplicate_share=float(dups) / n,
                avg_length=float(chars) / n,
                gap_mean_s=None if gap is None or math.isnan(float(gap)) else float(gap),
            )
        )
    return out


async def cluster_channel(conn: Conn, channel: int) -> Clustering | None:
    """Cluster one channel's chatters and replace its rows in ``chat.chatter_clusters`` and
    ``chat.chatter_cluster_members`` (one transaction; ``conn`` in autocommit mode)."""
    rows = await _features(conn, channel)
    result = cluster_features(rows)
    async with conn.transaction():
        await conn.execute(_Q["delete_clusters"], {"channel": channel})
        if result is None:
            return None
        for c in result.clusters:
            await conn.execute(
                _Q["insert_cluster"],
                {
                    "channel": channel,
                    "cluster": c.number,
                    "chatters": c.chatters,
                    "k": result.k,
                    "silhouette": result.silhouette,
                    "description": c.description,
                    **{name: c.means[name] for name in FEATURES},
                },
            )
        async with conn.cursor() as cur:
            await cur.executemany(
                _Q["insert_member"],
                [
                    {
                        "channel": channel,
                        "chatter": r.chatter,
                        "login": r.login,
                        "cluster": result.labels[r.chatter],
                    }
                    for r in rows
                ],
            )
    return result


async def cluster_channels(
    conn: Conn, channels: Iterable[int] | None = None
) -> dict[int, Clustering | None]:
    """Cluster the given channels (default: every channel with analyzed streams)."""
    if channels is None:
        cur = await conn.execute(_Q["channels"])
        channels = [r[0] for r in await cur.fetchall()]
    return {ch: await cluster_channel(conn, ch) for ch in sorted(channels)}
