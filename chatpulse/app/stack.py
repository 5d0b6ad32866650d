"""``chatpulse up`` (every service in one process) and ``chatpulse demo`` (the main job).

``demo`` runs the whole pipeline on the bundled real chat sample, on the embedded database
unless one is configured: replay, score, detect, cut a clip of the top moment from a generated
video that spans the chat's time range, write an HTML report, print a summary.  The data stays
in place for SQL.  It prints aggregates only (counts, emote names, times): the sample is other
people's chat.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import logging
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from psycopg.rows import class_row

from chatpulse.app.commands.database import migrate
from chatpulse.app.report import load_report, write_report
from chatpulse.core.db import connect, database
from chatpulse.core.errors import ChatpulseError
from chatpulse.core.metrics import serve_metrics
from chatpulse.core.queries import load_queries
from chatpulse.core.settings import Settings

__all__ = ["DemoSummary", "cmd_demo", "cmd_up", "run_demo", "run_up"]

log = logging.getLogger(__name__)

_Q = load_queries("app")  # sql/queries/app.sql


@dataclass(frozen=True, slots=True)
class _DemoChannel:
    """Row of ``demo_channel``: what the demo's replay stored."""

    id: int
    first: datetime
    last: datetime
    messages: int
    chatters: int
    moderation: int


@dataclass(frozen=True, slots=True)
class _Hype:
    id: int
    started_at: datetime
    peak_at: datetime
    ended_at: datetime
    score: float
    messages_per_min: float


@dataclass(frozen=True, slots=True)
class _Burst:
    emote_name: str
    started_at: datetime
    peak_at: datetime
    ended_at: datetime
    score: float


DEMO_CHANNEL = "nymn"
_DEMO_ROOM = "62300805"


def _step(n: int, total: int, text: str) -> None:
    print(f"[{n}/{total}] {text}", file=sys.stderr, flush=True)


@dataclass(slots=True)
class DemoSummary:
    """What the demo did and found."""

    messages: int = 0
    chatters: int = 0
    moderation: int = 0
    scored: int = 0
    model: str = ""
    mood: float | None = None
    mood_label: str = ""
    top_emotes: list[tuple[str, str, int]] = field(default_factory=list)
    bursts: list[tuple[str, datetime, datetime, datetime, float]] = field(default_factory=list)
    hype: list[tuple[datetime, datetime, datetime, float, float]] = field(default_factory=list)
    clip_window: tuple[datetime, datetime] | None = None
    clip_of: str = ""
    clip_path: str | None = None
    clip_seconds: float | None = None
    report_path: str = ""
    seconds: float = 0.0


def _sample() -> tuple[list[str], dict[str, Any]]:
    from collector import irc

    data = resources.files("chatpulse.demo_data")
    lines = irc.parse_recent_messages(data.joinpath("recentmessages-nymn.json").read_text())
    seventv = json.loads(data.joinpath("seventvemotes-nymn.json").read_text())
    return lines, seventv


def _bundled_emotes(seventv_user: dict[str, Any]) -> Any:
    """Emote providers that serve the bundled 7TV set of #nymn, offline."""
    from collector.emotes import (
        SEVENTV_GLOBAL_URL,
        SEVENTV_SET_URL,
        SEVENTV_USER_URL,
        EmoteProviders,
    )

    answers: dict[str, Any] = {
        SEVENTV_USER_URL.format(channel_id=_DEMO_ROOM): seventv_user,
        SEVENTV_SET_URL.format(set_id=seventv_user["emote_set"]["id"]): seventv_user["emote_set"],
        SEVENTV_GLOBAL_URL: {"id": "global", "name": "global", "emotes": []},
    }

    async def fetch(url: str) -> Any:
        return answers.get(url)

    return EmoteProviders(fetch, providers=("7tv",))


async def run_demo(settings: Settings, url: str, report_out: Path) -> DemoSummary:
    """The demo's steps on database ``url``; see the module docstring."""
    from chatpulse.app.commands.detect import detect_options, detector_config
    from clipper.jobs import enqueue_clip, get_clip
    from clipper.testsource import generate_segments
    from clipper.worker import run_worker
    from collector.app import replay_files
    from detector.runner import run_detector
    from scorer.backends import load_backend
    from scorer.loop import loop_config, run_scorer

    started = time.perf_counter()
    summary = DemoSummary()
    total = 7
    _step(1, total, "database schema")
    await migrate(settings, url)

    _step(2, total, f"replaying the bundled chat of #{DEMO_CHANNEL} (800 real IRC lines)")
    lines, seventv = _sample()
    work = settings.data_dir / "demo"
    work.mkdir(parents=True, exist_ok=True)
    log_file = work / f"{DEMO_CHANNEL}.log"
    log_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    await replay_files(settings, url, [log_file], emotes=_bundled_emotes(seventv))

    _step(3, total, "scoring sentiment, emotions and toxicity (lexicon)")
    stats = await run_scorer(
        url, load_backend("lexicon"), config=loop_config(settings), until_idle=True
    )
    summary.model = stats.model

    _step(4, total, "detecting emote bursts and hype moments")
    await run_detector(url, detector_config(settings), detect_options(settings), until_idle=True)

    async with await connect(url, autocommit=True) as conn:
        # What the database holds (a second run inserts nothing, and still shows it all).
        stored = conn.cursor(row_factory=class_row(_DemoChannel))
        await stored.execute(_Q["demo_channel"], {"channel": DEMO_CHANNEL})
        channel = await stored.fetchone()
        if channel is None:
            raise ChatpulseError("demo: the replay stored no messages")
        first, last = channel.first, channel.last
        summary.messages, summary.chatters = channel.messages, channel.chatters
        summary.moderation = channel.moderation
        hypes = conn.cursor(row_factory=class_row(_Hype))
        await hypes.execute(_Q["demo_hype_moments"], {"channel_id": channel.id})
        hype_rows = await hypes.fetchall()
        bursts = conn.cursor(row_factory=class_row(_Burst))
        await bursts.execute(_Q["demo_emote_bursts"], {"channel_id": channel.id})
        burst_rows = await bursts.fetchall()

    _step(5, total, "generating a video that spans the chat's time range (FFmpeg test source)")
    video_start = first.replace(microsecond=0) - timedelta(seconds=30)
    span = (last - video_start).total_seconds() + 30
    media = settings.media_path / DEMO_CHANNEL
    if not any(media.glob("*.ts")):
        await asyncio.to_thread(
            generate_segments, media, video_start, span, segment_s=4.0, ffmpeg=settings.ffmpeg
        )

    _step(6, total, "cutting a clip of the top moment")
    hype_id: int | None = None
    if hype_rows:
        hype_id, peak = hype_rows[0].id, hype_rows[0].peak_at
        summary.clip_of = "top hype moment"
    elif burst_rows:
        peak = burst_rows[0].peak_at
        summary.clip_of = f"top emote burst ({burst_rows[0].emote_name})"
    else:
        peak = first + (last - first) / 2
        summary.clip_of = "middle of the stream (no hype moment found)"
    start_at = peak - timedelta(seconds=settings.clip_pre_roll_s)
    end_at = peak + timedelta(seconds=settings.clip_post_roll_s)
    summary.clip_window = (start_at, end_at)
    async with await connect(url) as conn:
        clip, _ = await enqueue_clip(
            conn,
            dedup_key=f"demo:{DEMO_CHANNEL}:{peak.isoformat()}",
            channel=DEMO_CHANNEL,
            trigger="hype",
            start_at=start_at,
            end_at=end_at,
            hype_moment_id=hype_id,
            request={"demo": True},
        )
    await run_worker(settings, url, until_idle=True, stop=asyncio.Event())
    async with await connect(url, autocommit=True) as conn:
        done = await get_clip(conn, clip.id)
    if done is not None:
        if done.status == "done":
            summary.clip_path, summary.clip_seconds = done.location, done.duration_s
        else:
            log.warning("demo clip not cut", extra={"status": done.status, "error": done.error})

    _step(7, total, "writing the HTML report")
    data = await load_report(url, DEMO_CHANNEL)
    summary.report_path = str(write_report(data, report_out))
    summary.scored = int(sum(r["scored"] or 0 for r in data.sentiment))
    moods = [
        (float(r["mood"]), float(r["scored"])) for r in data.sentiment if r["mood"] is not None
    ]
    if moods:
        summary.mood = sum(m * n for m, n in moods) / sum(n for _, n in moods)
        summary.mood_label = (
            "positive" if summary.mood > 0.05 else "negative" if summary.mood < -0.05 else "neutral"
        )
    summary.top_emotes = [(r["emote_name"], r["provider"], int(r["uses"])) for r in data.top_emotes]
    summary.bursts = [
        (b.emote_name, b.started_at, b.peak_at, b.ended_at, float(b.score)) for b in burst_rows
    ]
    summary.hype = [
        (h.started_at, h.peak_at, h.ended_at, float(h.score), float(h.messages_per_min))
        for h in hype_rows
    ]
    summary.seconds = time.perf_counter() - started
    return summary


def _t(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%H:%M:%S")


def print_summary(s: DemoSummary, database_note: str) -> None:
    """Print the demo summary a person reads (aggregates only)."""
    print(f"chatpulse demo: #{DEMO_CHANNEL}, real chat of 2024-01-06 ({database_note})")
    print(
        f"  messages      {s.messages} from {s.chatters} chatters, {s.moderation} moderation events"
    )
    emotes = ", ".join(f"{n} ({p}) ×{u}" for n, p, u in s.top_emotes[:5]) or "none"
    print(f"  top emotes    {emotes}")
    mood = "not scored" if s.mood is None else f"{s.mood:+.2f} ({s.mood_label})"
    print(f"  mood          {mood}, {s.scored} messages scored by {s.model}")
    for name, start, peak, end, score in s.bursts[:3]:
        print(
            f"  emote burst   {name}: {_t(start)}–{_t(end)} UTC, peak {_t(peak)}, score {score:.1f}"
        )
    if not s.hype:
        print("  hype moments  none above the threshold (the sample is 7.5 minutes of one stream)")
    for start, peak, end, score, rate in s.hype:
        print(
            f"  hype moment   {_t(start)}–{_t(end)} UTC, peak {_t(peak)}, score {score:.1f}, "
            f"{rate:.0f} messages/min"
        )
    if s.clip_window:
        a, b = s.clip_window
        where = s.clip_path or "not cut (see the log)"
        length = f", {s.clip_seconds:.1f} s" if s.clip_seconds else ""
        print(f"  clip          {s.clip_of}, {_t(a)}–{_t(b)} UTC{length}: {where}")
    print(f"  report        {s.report_path}")
    print(f"  done in {s.seconds:.1f} s; the data stays for SQL (chatpulse report, Grafana, psql)")


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse demo``: the main job end to end on bundled real chat."""
    from clipper.ffmpeg import require_ffmpeg

    settings = require_ffmpeg(settings)  # step 5 needs it: say so before step 1
    report_out = Path(args.report) if args.report else settings.data_dir / "demo" / "report.html"
    note = (
        "embedded PostgreSQL in " + str(settings.data_dir / "postgres")
        if settings.database_url is None
        else "configured database"
    )
    with database(settings) as url:
        summary = asyncio.run(run_demo(settings, url, report_out))
    print_summary(summary, note)
    return 0


# -- chatpulse up ------------------------------------------------------------------------------


async def run_up(settings: Settings, url: str, stop: asyncio.Event | None = None) -> None:
    """Run every service in this process until ``stop`` (or SIGTERM/SIGINT); nothing is lost
    on the way out: the collector flushes to the database or the spool, the scorer writes its
    batch in hand, the clip worker stops FFmpeg and re-queues its job."""
    import uvicorn

    from analytics.helix import helix_source
    from analytics.runner import run_analyze
    from chatpulse.app.commands.analytics import clustering_available
    from chatpulse.app.commands.clipper import api_server_config
    from chatpulse.app.commands.collect import build_sources
    from chatpulse.app.commands.detect import detect_options, detector_config
    from chatpulse.app.commands.score import backend_options
    from clipper.api import create_app
    from clipper.worker import run_worker
    from collector.app import run_collector
    from detector.runner import run_detector
    from scorer.backends import load_backend
    from scorer.loop import loop_config, run_scorer
    from scorer.metrics import ScorerMetrics
    from topics.service import run_topics_service

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await migrate(settings, url)
    registry = CollectorRegistry()
    serve_metrics(settings, registry)
    backend = load_backend(
        settings.scorer_backend, **backend_options(settings, settings.scorer_backend)
    )
    services: dict[str, Any] = {
        "scorer": run_scorer(
            url,
            backend,
            config=loop_config(settings),
            stop=stop,
            metrics=ScorerMetrics(registry, url=url, model=backend.model),
        ),
        "detector": run_detector(
            url, detector_config(settings), detect_options(settings), stop=stop
        ),
        "analyze": run_analyze(
            url,
            timedelta(seconds=settings.stream_gap_s),
            interval_s=settings.analyze_interval_s,
            stop=stop,
            cluster=clustering_available(),
            helix=helix_source(settings),
        ),
        # The clip metrics are declared by the API too (served on its /metrics); the worker's
        # own copy stays private here rather than clash on the shared registry.
        "clip-worker": run_worker(settings, url, registry=CollectorRegistry(), stop=stop),
        # window embeddings, distinctive terms and topics (topics/service.py)
        "topics": run_topics_service(settings, url, stop),
    }
    if importlib.util.find_spec("sklearn") is not None:
        from chatpulse.app.commands.forecast import forecast_config
        from forecast.store import run_forecast

        services["forecast"] = run_forecast(
            url,
            forecast_config(settings),
            poll_interval_s=settings.forecast_poll_interval_s,
            stop=stop,
        )
    else:
        log.info("hype forecast not started: install the 'forecast' extra to run it")
    if settings.channels:
        services["collector"] = run_collector(
            settings, url, build_sources(settings, "twitch"), registry=registry, stop=stop
        )
    else:
        log.warning(
            "no channels configured (CHATPULSE_CHANNELS): collector not started; "
            "load chat with chatpulse replay"
        )

    class _Server(uvicorn.Server):
        # The process's signal handlers stop every service at once; uvicorn must not take
        # SIGTERM/SIGINT for itself.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    server: uvicorn.Server | None = None
    if settings.webhook_token or settings.webhook_hmac_secret or settings.webhook_auth_disabled:
        app = create_app(settings, url, registry=registry)
        server = _Server(api_server_config(app, settings))
        services["clipper-api"] = server.serve()
    else:
        log.warning(
            "clipper API not started: set CHATPULSE_WEBHOOK_TOKEN or "
            "CHATPULSE_WEBHOOK_HMAC_SECRET (or CHATPULSE_WEBHOOK_AUTH_DISABLED=true)"
        )
    tasks = {asyncio.create_task(coro, name=name): name for name, coro in services.items()}
    log.info("chatpulse up", extra={"services": sorted(services)})
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    if server is not None:
        server.should_exit = True
    results = await asyncio.gather(*tasks, return_exceptions=True)
    waiter.cancel()
    failures = [
        (tasks[t], r)
        for t, r in zip(tasks, results, strict=True)
        if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)
    ]
    for name, exc in failures:
        log.error("service failed", extra={"service": name, "error": repr(exc)})
    if failures:
        raise ChatpulseError(f"{failures[0][0]} failed: {failures[0][1]}")
    log.info("chatpulse stopped cleanly")


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse up``: every service in one process, on the embedded database by default."""
    from clipper.ffmpeg import find_ffmpeg

    ffmpeg = find_ffmpeg(settings.ffmpeg)
    if ffmpeg is None:
        log.warning(
            "no FFmpeg found (ffmpeg / CHATPULSE_FFMPEG): clips will fail until one is installed"
        )
    else:
        settings = settings.model_copy(update={"ffmpeg": ffmpeg})
    with database(settings) as url:
        asyncio.run(run_up(settings, url))
    return 0
