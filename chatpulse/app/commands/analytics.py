"""``chatpulse analyze`` and ``chatpulse compare``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from datetime import timedelta
from typing import Any

from chatpulse.core.db import connect, database
from chatpulse.core.errors import ConfigError
from chatpulse.core.settings import Settings

__all__ = ["clustering_available", "cmd_analyze", "cmd_compare"]

log = logging.getLogger(__name__)

CLUSTERING_NEEDS = (
    "behavioural clustering needs the optional extra: pip install 'chatpulse[analytics]' "
    "(scikit-learn); streams, segments, shapes and signatures work without it"
)


def clustering_available() -> bool:
    """Whether scikit-learn is installed (checked without importing it)."""
    import importlib.util

    return importlib.util.find_spec("sklearn") is not None


def cmd_analyze(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse analyze [--until-idle]``: keep streams and audiences current."""
    from analytics.helix import helix_source
    from analytics.runner import run_analyze

    force_cluster = bool(getattr(args, "cluster", False))
    available = clustering_available()
    if force_cluster and not available:
        raise ConfigError(f"analyze --cluster: {CLUSTERING_NEEDS}")
    if not available:
        log.info(CLUSTERING_NEEDS)
    with database(settings) as url:
        from chatpulse.app.commands.database import migrate

        asyncio.run(migrate(settings, url))
        total = asyncio.run(
            run_analyze(
                url,
                timedelta(seconds=settings.stream_gap_s),
                interval_s=settings.analyze_interval_s,
                until_idle=bool(getattr(args, "until_idle", False)) or force_cluster,
                cluster=available,
                helix=helix_source(settings),
            )
        )
        clustered = asyncio.run(_cluster_all(url)) if force_cluster else None
    if getattr(args, "until_idle", False) or force_cluster:
        print(
            f"analyze: {total.streams_recomputed} streams recomputed "
            f"({total.streams_created} new, {total.streams_deleted} merged away) in "
            f"{total.seconds:.1f} s"
        )
        if not available:
            print(f"analyze: {CLUSTERING_NEEDS}", file=sys.stderr)
    for channel, result in (clustered or {}).items():
        if result is None:
            print(f"analyze: channel {channel}: too few or too alike chatters to cluster")
            continue
        print(
            f"analyze: channel {channel}: {result.k} clusters "
            f"(silhouette {result.silhouette:.2f}): "
            + "; ".join(
                f"{c.number}: {c.chatters} chatters, {c.description}" for c in result.clusters
            )
        )
    return 0


async def _cluster_all(url: str) -> dict[int, Any]:
    from analytics.clusters import cluster_channels

    async with await connect(url, autocommit=True) as conn:
        return dict(await cluster_channels(conn))


async def _compare(url: str, channels: list[str]) -> dict[str, object]:
    from analytics.runner import channel_signature
    from analytics.signatures import compare

    async with await connect(url, autocommit=True) as conn:
        sigs = []
        for name in channels:
            sig = await channel_signature(conn, name)
            if sig is None:
                raise ConfigError(
                    f"compare: channel {name!r} has no analyzed streams "
                    "(replay or collect its chat, then run chatpulse analyze --until-idle)"
                )
            sigs.append(sig)
    pairs = [compare(a, b) for i, a in enumerate(sigs) for b in sigs[i + 1 :]]
    return {
        "channels": [s.as_dict() for s in sigs],
        "pairs": [p.as_dict() for p in pairs],
    }


def cmd_compare(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse compare CHANNEL CHANNEL… [--json]``: chat signatures and similarity."""
    channels = [c.strip().lower().lstrip("#") for c in args.channels]
    if len(set(channels)) < 2:
        raise ConfigError("compare: name at least two different channels")
    with database(settings) as url:
        result = asyncio.run(_compare(url, channels))
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    rows = result["channels"]
    assert isinstance(rows, list)
    keys = [k for k in rows[0] if k not in ("name", "top_emotes", "top_words")]
    width = max(len(k) for k in keys) + 2
    print("signature".ljust(width) + "".join(f"{r['name']:>16}" for r in rows))
    for key in keys:
        print(key.ljust(width) + "".join(f"{r[key]!s:>16}" for r in rows))
    for r in rows:
        print(
            f"{r['name']}: top emotes {', '.join(r['top_emotes']) or '-'}; "
            f"top words {', '.join(r['top_words']) or '-'}"
        )
    pairs = result["pairs"]
    assert isinstance(pairs, list)
    for p in pairs:
        print(
            f"{p['a']} vs {p['b']}: distance {p['distance']:.3f} (emotes {p['emotes_jsd']:.3f}, "
            f"words {p['words_jsd']:.3f}, features {p['features']:.3f}); audience overlap "
            f"{p['shared_chatters']} chatters (Jaccard {p['audience_jaccard']:.3f})"
        )
    return 0
