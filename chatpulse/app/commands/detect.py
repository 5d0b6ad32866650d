"""Handler of ``chatpulse detect [--until-idle]`` and the detector's settings.

Every threshold is a setting (``CHATPULSE_DETECT_*``).  Until the settings object declares
them, :func:`detector_config` reads each with its default here, in one place.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from chatpulse.app.commands.database import migrate
from chatpulse.app.signals import stop_on_signals
from chatpulse.core.db import database
from chatpulse.core.settings import Settings
from detector.model import DetectorConfig
from detector.runner import DetectOptions, run_detector

__all__ = ["cmd_detect", "detect_options", "detector_config"]

log = logging.getLogger(__name__)

#: Settings field (``detect_<name>``) -> the DetectorConfig / DetectOptions attribute.
_CONFIG_FIELDS = (
    "step_s",
    "span_hops",
    "baseline_window_s",
    "offline_gap_s",
    "min_history_s",
    "dispersion",
    "emote_threshold",
    "emote_min_messages",
    "emote_min_ratio",
    "emote_prior_share",
    "emote_prior_weight_s",
    "emote_merge_gap_s",
    "hype_threshold",
    "hype_min_messages",
    "hype_min_ratio",
    "hype_min_chatter_ratio",
    "hype_min_onset_ratio",
    "hype_onset_window_s",
    "hype_chatter_weight",
    "hype_emote_weight",
    "hype_merge_gap_s",
    "hype_sustain_ratio",
)
_OPTION_FIELDS = ("poll_interval_s", "grace_s", "late_window_s", "sample_messages", "top_emotes")


def detector_config(settings: Settings) -> DetectorConfig:
    """The thresholds from the settings (``CHATPULSE_DETECT_*``)."""
    return DetectorConfig(**{f: getattr(settings, f"detect_{f}") for f in _CONFIG_FIELDS})


def detect_options(settings: Settings) -> DetectOptions:
    """The loop's timing from the settings."""
    return DetectOptions(**{f: getattr(settings, f"detect_{f}") for f in _OPTION_FIELDS})


def cmd_detect(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse detect``: live until SIGINT/SIGTERM, or ``--until-idle`` over history."""
    until_idle = bool(getattr(args, "until_idle", False))
    config, options = detector_config(settings), detect_options(settings)
    with database(settings) as url:
        asyncio.run(migrate(settings, url))
        total = asyncio.run(_run(url, config, options, until_idle))
    log.info(
        "detector done",
        extra={
            "passes": total.passes,
            "bursts_written": total.bursts_written,
            "hypes_written": total.hypes_written,
        },
    )
    print(
        f"detect: {total.bursts_written} emote bursts and {total.hypes_written} hype moments "
        f"written in {total.passes} passes"
    )
    return 0


async def _run(url: str, config: DetectorConfig, options: DetectOptions, until_idle: bool) -> Any:
    with stop_on_signals() as stop:
        return await run_detector(url, config, options, until_idle=until_idle, stop=stop)
