"""Handler of ``chatpulse emotes rematch`` (the work is :func:`collector.rematch.rematch_channel`)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from chatpulse.app.commands.database import migrate
from chatpulse.app.times import parse_time_option
from chatpulse.core.db import database
from chatpulse.core.errors import ConfigError
from chatpulse.core.settings import Settings
from collector.rematch import rematch_channel

__all__ = ["cmd_rematch"]


def cmd_rematch(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse emotes rematch --channel NAME [--from T] [--to T] [--channel-id ID]``."""
    start = parse_time_option(args.time_from, "--from")
    end = parse_time_option(args.time_to, "--to")
    if start is not None and end is not None and end <= start:
        raise ConfigError("--to: must be after --from")
    with database(settings) as url:
        asyncio.run(migrate(settings, url))
        result = asyncio.run(
            rematch_channel(
                settings,
                url,
                args.channel,
                platform=args.platform,
                start=start,
                end=end,
                channel_id=args.rematch_channel_id,
            )
        )
    for line in result.warnings:
        print(f"warning: {line}", file=sys.stderr)
    pid = f" (id {result.platform_id})" if result.platform_id else ""
    print(
        f"emotes rematched for #{result.channel}{pid}: {result.messages} messages read, "
        f"{result.uses_added} emote uses added ({result.rows_added} rows), emote_count "
        f"corrected on {result.counts_fixed} messages"
    )
    sys.stdout.flush()
    return 0
