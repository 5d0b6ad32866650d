"""Handlers of ``chatpulse forecast [--until-idle]`` and ``chatpulse eval forecast``.

Both need the ``forecast`` extra (scikit-learn); without it they exit 2 naming it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from chatpulse.core.settings import Settings
from forecast.features import ForecastConfig
from forecast.model import require_sklearn

__all__ = ["cmd_eval_forecast", "cmd_forecast", "forecast_config"]


def forecast_config(settings: Settings) -> ForecastConfig:
    """The forecast's configuration: its settings, the detector's hop and baseline."""
    return ForecastConfig(
        step_s=settings.detect_step_s,
        horizon_s=settings.forecast_horizon_s,
        baseline_window_s=settings.detect_baseline_window_s,
        offline_gap_s=settings.detect_offline_gap_s,
        threshold=settings.forecast_threshold,
        min_moments=settings.forecast_min_moments,
    )


def cmd_forecast(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse forecast``: live until SIGINT/SIGTERM, or one catch-up ``--until-idle``."""
    require_sklearn()
    from chatpulse.app.commands.database import migrate
    from chatpulse.core.db import database

    config = forecast_config(settings)
    until_idle = bool(getattr(args, "until_idle", False))
    with database(settings) as url:
        asyncio.run(migrate(settings, url))
        total = asyncio.run(_run(url, config, settings.forecast_poll_interval_s, until_idle))
    print(
        f"forecast: {total.written} forecasts written, {total.trained} models trained "
        f"in {total.passes} passes"
    )
    return 0


async def _run(url: str, config: ForecastConfig, poll: float, until_idle: bool) -> Any:
    from chatpulse.app.signals import stop_on_signals
    from forecast.store import run_forecast

    with stop_on_signals() as stop:
        return await run_forecast(
            url, config, poll_interval_s=poll, until_idle=until_idle, stop=stop
        )


def cmd_eval_forecast(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse eval forecast [--channel NAME] [--json]``: precision, recall and lead time
    (seconds before the detected peak) on each channel's later streams (or hours), trained on
    its earlier ones; beside the trivial rule "rate above 1.5x the baseline"."""
    require_sklearn()
    from chatpulse.app.commands.database import migrate
    from chatpulse.core.db import connect, database
    from forecast.store import evaluate_channels, pooled

    config = forecast_config(settings)
    channel = getattr(args, "eval_channel", None)

    async def run(url: str) -> Any:
        await migrate(settings, url)
        conn = await connect(url)
        try:
            return await evaluate_channels(conn, config, channel)
        finally:
            await conn.close()

    with database(settings) as url:
        results = asyncio.run(run(url))
    both = pooled(results)
    doc: dict[str, Any] = {"task": "forecast", "horizon_s": config.horizon_s}
    if both is not None:
        doc.update(both[0].as_dict())
        doc["baseline"] = {"rule": "rate over the last 10 s > 1.5x baseline", **both[1].as_dict()}
    else:
        doc.update({k: None for k in ("precision", "recall", "f1", "lead_s_mean", "lead_s_median")})
    doc["channels"] = [r.as_dict(config.step_s) for r in results]
    if getattr(args, "json", False):
        print(json.dumps(doc))
    else:
        print(_format(doc))
    sys.stdout.flush()
    return 0 if both is not None else 1


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if pct else f"{value:.1f}"


def _format(doc: dict[str, Any]) -> str:
    lines = [
        f"hype forecast: a moment peaking within {doc['horizon_s']} s; trained on earlier "
        "streams (or hours), tested on later ones",
        f"{'channel':<20} {'precision':>9} {'recall':>7} {'lead mean':>9} {'median':>7}"
        f" {'moments':>7} {'warnings':>8}   baseline precision / recall",
    ]
    for ch in doc["channels"]:
        if "skipped" in ch:
            lines.append(f"{ch['channel']:<20} skipped: {ch['skipped']}")
            continue
        b = ch["baseline"]
        lines.append(
            f"{ch['channel']:<20} {_fmt(ch['precision'], True):>9} {_fmt(ch['recall'], True):>7}"
            f" {_fmt(ch['lead_s_mean']):>8}s {_fmt(ch['lead_s_median']):>6}s"
            f" {ch['moments']:>7} {ch['warnings']:>8}"
            f"   {_fmt(b['precision'], True)} / {_fmt(b['recall'], True)}"
        )
    if doc.get("baseline"):
        b = doc["baseline"]
        lines.append(
            f"all: precision {_fmt(doc['precision'], True)}, recall {_fmt(doc['recall'], True)}, "
            f"lead {_fmt(doc['lead_s_mean'])} s mean / {_fmt(doc['lead_s_median'])} s median "
            f"before the peak; baseline ({b['rule']}): precision "
            f"{_fmt(b['precision'], True)}, recall {_fmt(b['recall'], True)}"
        )
    return "\n".join(lines)
