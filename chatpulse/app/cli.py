"""The ``chatpulse`` command.

Every flag maps onto a setting (see :mod:`chatpulse.core.settings`); settings are parsed once,
then the command's handler runs.  Exit codes: 0 success, 1 failure, 2 bad settings or usage,
130 interrupted.  The handlers live in :mod:`chatpulse.app.commands` (and ``stack``,
``doctor``, ``report``); each is imported only when its command runs, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from chatpulse import __version__
from chatpulse.core.errors import ChatpulseError, ConfigError
from chatpulse.core.logs import configure_logging
from chatpulse.core.settings import Settings, load_settings

__all__ = ["build_parser", "main"]

log = logging.getLogger("chatpulse")

EXIT_OK, EXIT_FAIL, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130

Handler = Callable[[Settings, argparse.Namespace], int]

# Flags shared by every command: (flag, setting, help).  Defaults are SUPPRESS so that a flag
# given before the command is not reset by the subcommand's parser.
_COMMON: list[tuple[str, str, str]] = [
    ("--database-url", "database_url", "PostgreSQL URL (default: embedded PostgreSQL)"),
    ("--data-dir", "data_dir", "data directory (spool, dead letters, embedded database)"),
    ("--log-level", "log_level", "debug, info, warning or error"),
    ("--log-format", "log_format", "json or text"),
]


def _common_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="TOML settings file (also CHATPULSE_CONFIG)",
    )
    for flag, dest, help_ in _COMMON:
        common.add_argument(flag, dest=dest, default=argparse.SUPPRESS, help=help_)
    return common


# The handlers, each importing its command module only when it runs: `chatpulse --help` and
# a bad setting never pay for the services' imports (FastAPI, psycopg, the scorer).


def _add_vod(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.commands.clipper import cmd_add_vod

    return cmd_add_vod(settings, args)


def _record(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.commands.clipper import cmd_record

    return cmd_record(settings, args)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.commands.clipper import cmd_serve

    return cmd_serve(settings, args)


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.commands.clipper import cmd_worker

    return cmd_worker(settings, args)


def _collect(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.commands.collect import cmd_collect

    return cmd_collect(settings, args)


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.commands.collect import cmd_replay

    return cmd_replay(settings, args)


def _forget(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.commands.database import cmd_forget

    return cmd_forget(settings, args)


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.commands.database import cmd_migrate

    return cmd_migrate(settings, args)


def _rematch(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.commands.emotes import cmd_rematch

    return cmd_rematch(settings, args)


def _build(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.commands.grafana import cmd_build

    return cmd_build(settings, args)


def _push(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.commands.grafana import cmd_push

    return cmd_push(settings, args)


def _detect(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.commands.detect import cmd_detect

    return cmd_detect(settings, args)


def _eval(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.commands.score import cmd_eval

    return cmd_eval(settings, args)


def _forecast(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.commands.forecast import cmd_forecast

    return cmd_forecast(settings, args)


def _models_export(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.commands.score import cmd_models_export

    return cmd_models_export(settings, args)


def _score(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.commands.score import cmd_score

    return cmd_score(settings, args)


def _doctor(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.doctor import cmd_doctor

    return cmd_doctor(settings, args)


def _report(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.report import cmd_report

    return cmd_report(settings, args)


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.stack import cmd_demo

    return cmd_demo(settings, args)


def _up(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.stack import cmd_up

    return cmd_up(settings, args)


def _topics_embed(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.commands.topics import cmd_embed

    return cmd_embed(settings, args)


def _topics_ask(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.commands.topics import cmd_ask

    return cmd_ask(settings, args)


def _topics_topics(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.commands.topics import cmd_topics

    return cmd_topics(settings, args)


def _ingest(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.commands.bus import cmd_ingest

    return cmd_ingest(settings, args)


def _channels(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.commands.bus import cmd_channels

    return cmd_channels(settings, args)


def _analyze(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.commands.analytics import cmd_analyze

    return cmd_analyze(settings, args)


def _compare(settings: Settings, args: argparse.Namespace) -> int:
    from chatpulse.app.commands.analytics import cmd_compare

    return cmd_compare(settings, args)


class _Commands:
    def __init__(
        self,
        parent: argparse._SubParsersAction[argparse.ArgumentParser],
        common: argparse.ArgumentParser,
    ) -> None:
        self._parent = parent
        self._common = common

    def add(
        self,
        name: str,
        help_: str,
        handler: Handler | None,
        *,
        description: str | None = None,
    ) -> argparse.ArgumentParser:
        parser = self._parent.add_parser(
            name,
            help=help_,
            description=description or help_,
            parents=[self._common],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        # A group (``clipper``, ``grafana``, ...) has no handler: its action is required.
        if handler is not None:
            parser.set_defaults(handler=handler)
        return parser


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of every command (each has ``--help``)."""
    common = _common_parser()
    parser = argparse.ArgumentParser(
        prog="chatpulse",
        description="Observability for live-stream chat: collect, score, detect, dashboard, clip.",
        parents=[common],
        epilog="Every option is also a CHATPULSE_* environment variable and a TOML key; "
        "see the README's configuration table.",
    )
    parser.add_argument("--version", action="version", version=f"chatpulse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    cmds = _Commands(sub, common)

    cmds.add(
        "migrate",
        "create or upgrade the schema (idempotent)",
        _migrate,
    )

    p = cmds.add(
        "collect",
        "collect live chat into the database",
        _collect,
    )
    p.add_argument(
        "--channel",
        dest="channels",
        action="append",
        metavar="NAME",
        help="channel login (repeatable; also CHATPULSE_CHANNELS)",
    )
    p.add_argument(
        "--source",
        choices=["twitch", "websocket"],
        default="twitch",
        help="live source (default twitch)",
    )
    p.add_argument(
        "--sink",
        choices=["database", "nats"],
        default="database",
        help="where events go: the database (default; spool while it is down) or the NATS "
        "JetStream bus (CHATPULSE_NATS_URL; channels leased from the shared list; "
        "pip install 'chatpulse[bus]')",
    )
    p.add_argument(
        "--idle-without-channels",
        action="store_true",
        help="with no channel configured, say so once and stay idle until stopped "
        "(instead of exiting 2; for supervisors that restart what exits)",
    )
    p.add_argument(
        "--metrics-port",
        dest="metrics_port",
        type=int,
        default=argparse.SUPPRESS,
        help="port of /metrics (0: off)",
    )

    p = cmds.add(
        "ingest",
        "write the NATS bus into the database (one of any number of writers)",
        _ingest,
    )
    p.add_argument(
        "--metrics-port",
        dest="metrics_port",
        type=int,
        default=argparse.SUPPRESS,
        help="port of /metrics (0: off)",
    )

    p = cmds.add("channels", "the channel list bus collectors share", _channels)
    csub = p.add_subparsers(dest="channels_action", metavar="ACTION", required=True)
    ccmds = _Commands(csub, common)
    for action, help_ in (
        ("add", "add channels (collected within lease_ttl_s, no restart)"),
        ("remove", "remove channels (their collector leaves them)"),
    ):
        cp = ccmds.add(action, help_, _channels)
        cp.add_argument("names", nargs="+", metavar="NAME", help="channel login")
    ccmds.add(
        "list",
        "print the channels and their owners",
        _channels,
    )

    p = cmds.add(
        "replay",
        "load chat log files (a second run adds nothing)",
        _replay,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="chat log files")
    p.add_argument(
        "--channel",
        dest="replay_channel",
        metavar="NAME",
        help="channel the file belongs to (when the file does not say)",
    )
    p.add_argument(
        "--format",
        dest="replay_format",
        default="auto",
        choices=[
            "auto",
            "irc",
            "twitchdownloader",
            "twitchdownloader-txt",
            "chat-downloader",
            "twitch-gql",
            "jsonl",
        ],
        help="file format (default: detect)",
    )
    p.add_argument(
        "--platform",
        dest="replay_platform",
        metavar="NAME",
        help="platform of the chat when the file does not say (twitch, youtube, ...)",
    )
    p.add_argument(
        "--channel-id",
        dest="replay_channel_id",
        metavar="ID",
        help="platform id of the channel (Twitch user id) when the file does not carry it; "
        "without it, it is looked up so that the channel's 7TV/BTTV/FFZ emotes load",
    )
    p.add_argument(
        "--start",
        dest="replay_start",
        metavar="TIME",
        help="when the stream started (ISO 8601 with a zone, e.g. 2024-01-06T16:00:00Z): "
        "places relative [h:mm:ss] TwitchDownloader TXT stamps",
    )

    p = cmds.add(
        "score",
        "score messages (sentiment, emotions, toxicity)",
        _score,
    )
    p.add_argument(
        "--backend",
        dest="scorer_backend",
        choices=["lexicon", "transformers", "onnx"],
        default=argparse.SUPPRESS,
        help="scoring backend (default lexicon)",
    )
    p.add_argument("--until-idle", action="store_true", help="exit when nothing is left")

    p = cmds.add(
        "detect",
        "detect emote bursts and hype moments",
        _detect,
    )
    p.add_argument("--until-idle", action="store_true", help="exit when nothing is left")

    p = cmds.add(
        "forecast",
        "forecast hype moments per channel (needs the 'forecast' extra)",
        _forecast,
    )
    p.add_argument("--until-idle", action="store_true", help="exit when nothing is left")

    p = cmds.add(
        "eval",
        "evaluate a scoring backend on labelled data",
        _eval,
    )
    p.add_argument("task", choices=["sentiment", "toxicity", "forecast"], help="what to evaluate")
    p.add_argument(
        "file", metavar="FILE.csv", nargs="?", help="labelled CSV file (not for forecast)"
    )
    p.add_argument(
        "--channel",
        dest="eval_channel",
        metavar="NAME",
        help="forecast: only this channel (default: every channel)",
    )
    p.add_argument("--text-col", default="text", help="text column")
    p.add_argument("--label-col", default="label", help="label column")
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="toxicity: toxic when toxicity >= this (default 0.5, the product's)",
    )
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.add_argument(
        "--backend",
        dest="scorer_backend",
        choices=["lexicon", "transformers", "onnx"],
        default=argparse.SUPPRESS,
    )

    p = cmds.add("models", "manage scoring models", None)
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    mcmds = _Commands(msub, common)
    mp = mcmds.add(
        "export",
        "export transformers models to int8 ONNX",
        _models_export,
    )
    mp.add_argument("--out", metavar="DIR", help="output directory")

    p = cmds.add("clipper", "clip API and worker", None)
    csub = p.add_subparsers(dest="clipper_command", metavar="ACTION", required=True)
    ccmds = _Commands(csub, common)
    cp = ccmds.add(
        "serve",
        "run the webhook/clip API (default 127.0.0.1:8095)",
        _serve,
    )
    cp.add_argument("--host", dest="clipper_host", default=argparse.SUPPRESS, help="address")
    cp.add_argument("--port", dest="clipper_port", type=int, default=argparse.SUPPRESS, help="port")
    cp = ccmds.add(
        "worker",
        "run the clip worker",
        _worker,
    )
    cp.add_argument("--until-idle", action="store_true", help="exit when no clip is left")
    cp = ccmds.add(
        "add-vod",
        "register a VOD file or URL with its channel and UTC start",
        _add_vod,
    )
    cp.add_argument("location", help="file path or URL")
    cp.add_argument("--channel", required=True, help="channel login")
    cp.add_argument("--start", required=True, help="UTC start time (RFC 3339)")

    p = cmds.add(
        "record",
        "keep a rolling recording of a live stream for clips",
        _record,
    )
    p.add_argument("--channel", required=True, metavar="NAME", help="channel login")
    p.add_argument("--url", help="stream URL (default: the channel's Twitch URL)")

    p = cmds.add("grafana", "Grafana provisioning", None)
    gsub = p.add_subparsers(dest="grafana_command", metavar="ACTION", required=True)
    gcmds = _Commands(gsub, common)
    gp = gcmds.add(
        "build",
        "write grafana/provisioning files",
        _build,
    )
    gp.add_argument(
        "--check",
        action="store_true",
        help="fail when the committed files differ from the generator's output",
    )
    gp.add_argument("--out", metavar="DIR", help="output directory")
    gcmds.add(
        "push",
        "push dashboards and alert rules to a running Grafana",
        _push,
    )

    p = cmds.add(
        "analyze",
        "find streams, audience segments, stream shapes and signatures (incremental)",
        _analyze,
    )
    p.add_argument("--until-idle", action="store_true", help="exit when nothing is left")
    p.add_argument(
        "--cluster",
        action="store_true",
        help="also cluster every channel's chatters by behaviour now (needs the analytics extra)",
    )
    p = cmds.add(
        "compare",
        "compare the chat signatures of channels (emotes, words, pace, mood, audience)",
        _compare,
    )
    p.add_argument("channels", nargs="+", metavar="CHANNEL", help="channel logins (two or more)")
    p.add_argument("--json", action="store_true", help="print JSON (for scripts)")

    cmds.add("up", "run every service in one process", _up)
    p = cmds.add(
        "demo",
        "the whole pipeline on bundled real chat (embedded database)",
        _demo,
    )
    p.add_argument("--report", metavar="FILE", help="where to write the HTML report")
    p = cmds.add("report", "write a self-contained HTML report", _report)
    p.add_argument("--channel", required=True, metavar="NAME", help="channel login")
    p.add_argument(
        "--from",
        dest="time_from",
        metavar="TIME",
        help="start, RFC 3339 / ISO 8601, e.g. 2024-01-06T16:00:00Z (no zone: UTC; "
        "default: the channel's first message)",
    )
    p.add_argument(
        "--to",
        dest="time_to",
        metavar="TIME",
        help="end, same format as --from (default: the channel's last message)",
    )
    p.add_argument(
        "--out",
        default="report.html",
        metavar="FILE",
        help="HTML file to write (default: report.html in the current directory)",
    )

    p = cmds.add("emotes", "third-party emotes", None)
    esub = p.add_subparsers(dest="emotes_command", metavar="ACTION", required=True)
    ecmds = _Commands(esub, common)
    ep = ecmds.add(
        "rematch",
        "match emotes again in stored messages (adds what is missing, once)",
        _rematch,
        description="Load the channel's 7TV/BTTV/FFZ sets and match them in the messages "
        "already stored: missing chat.emote_uses rows are added, chat.messages.emote_count "
        "is made to agree, and the aggregates of the affected range are recomputed.  A second "
        "run adds nothing.  TIME is ISO 8601 (2024-01-06T16:00:00Z); default: every message.",
    )
    ep.add_argument("--channel", required=True, metavar="NAME", help="channel login")
    ep.add_argument("--from", dest="time_from", metavar="TIME", help="first message time")
    ep.add_argument("--to", dest="time_to", metavar="TIME", help="end time (exclusive)")
    ep.add_argument(
        "--channel-id",
        dest="rematch_channel_id",
        metavar="ID",
        help="platform id of the channel (default: the stored one, else looked up)",
    )
    ep.add_argument("--platform", default="twitch", help="platform of the channel (twitch)")

    p = cmds.add(
        "embed",
        "embed chat windows for ask and topics (embed extra, pgvector)",
        _topics_embed,
    )
    p.add_argument("--until-idle", action="store_true", help="exit when nothing is left")
    p.add_argument(
        "--topics",
        action="store_true",
        help="also keep distinctive terms and topics of active channels current, until "
        "stopped (what chatpulse up runs; without the embed extra or pgvector: terms only)",
    )
    p = cmds.add(
        "ask",
        "find the moments where chat talked about something",
        _topics_ask,
        description="The best 30-s moments for a question in plain words: meaning (embeddings) "
        "and words (full text) fused by reciprocal rank.  Needs embedded windows "
        "(chatpulse embed) and pgvector.",
    )
    p.add_argument("question", help="what chat talked about, in plain words")
    p.add_argument(
        "--channel", dest="channels", action="append", metavar="NAME", help="only this channel"
    )
    p.add_argument("--from", dest="time_from", metavar="TIME", help="RFC 3339 start")
    p.add_argument("--to", dest="time_to", metavar="TIME", help="RFC 3339 end (exclusive)")
    p.add_argument("--limit", type=int, default=5, metavar="N", help="moments (default 5)")
    p.add_argument("--json", action="store_true", help="print the moments as JSON")
    p = cmds.add(
        "topics",
        "distinctive terms per window and topics of a channel",
        _topics_topics,
    )
    p.add_argument("--channel", required=True, metavar="NAME", help="channel login")
    p.add_argument("--from", dest="time_from", metavar="TIME", help="RFC 3339 start")
    p.add_argument("--to", dest="time_to", metavar="TIME", help="RFC 3339 end (exclusive)")

    p = cmds.add(
        "doctor",
        "check database, TimescaleDB, FFmpeg, models, Grafana",
        _doctor,
    )
    p.add_argument("--json", action="store_true", help="print the checks as JSON")

    p = cmds.add(
        "forget",
        "delete one user's data everywhere",
        _forget,
    )
    p.add_argument("--user", required=True, metavar="LOGIN", help="user login")
    p.add_argument("--platform", default=None, help="only on this platform")
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = set(Settings.model_fields)
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(getattr(args, "config", None), overrides=_overrides(args))
    except ConfigError as exc:
        print(f"chatpulse: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level, settings.log_format)
    handler: Handler = args.handler
    try:
        return handler(settings, args)
    except ConfigError as exc:
        print(f"chatpulse: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ChatpulseError as exc:
        # Said once, as the last line on stderr; the log has the traceback at debug level.
        log.debug("command failed", exc_info=True, extra={"error": type(exc).__name__})
        print(f"chatpulse: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
