"""Chat log files for replay: format detection, streaming readers, and our JSON-lines writer.

Formats (``FORMATS``; the sources behind each are [FORMATS], docs/architecture.md "Sources"):

``irc``
    One raw IRC line per line, as justlog and rustlog store them; an optional leading
    ``[YYYY-MM-DD HH:MM:SS] `` (UTC) stamp is accepted and used as ``received_at``.
``twitchdownloader``
    TwitchDownloader's chat JSON (one root object; ``comments`` array), plain or gzip.
``twitchdownloader-txt``
    TwitchDownloader's text export, ``[timestamp] display_name: body`` per line, in each of
    the three ``--timestamp-format`` variants TwitchDownloaderCLI writes: ``Relative``
    (``[0:00:30]``, the default; needs the stream's start), ``Utc``/``UtcFull``
    (``[2024-01-06 16:00:05 UTC]``) and ``None`` (``display_name: body``, which cannot be
    placed in time: :func:`read_events` refuses it).
``chat-downloader``
    xenova/chat-downloader's JSON array of items (and its predecessor chat_replay_downloader's,
    where ``author`` is a plain string), from YouTube or Twitch.
``twitch-gql``
    A JSON array of Twitch GQL ``VideoComment`` nodes, as twitch-archiver and similar tools save
    a VOD's chat (:mod:`collector.formats.gql`).
``jsonl``
    Our own JSON lines (README, "Collecting chat"), written by
    :func:`write_jsonl`.

Every reader streams: line formats hold one line at a time, and the two single-document JSON
formats are cut into items by a small incremental scanner (:class:`_JsonReader`), so a
multi-gigabyte export never sits in memory whole.  Any file may be gzip-compressed (detected by
its magic bytes, as TwitchDownloader and justlog's archiver write them).

Every reader takes a :data:`ChatLog`: a file's path, or the file's whole content as bytes (the
pure entry: tests parse literal bytes, no file is written).

Bad content never raises: each bad line or item becomes :class:`~collector.events.Malformed`
(``source_name`` is the file's path, or the name given) and reading goes on.  Only an unreadable file
(:class:`OSError`), a corrupt gzip stream, a file that is not the named format at all, or missing
information the caller must supply (a channel, a platform, a start time) raise.

Modules: ``common`` (format names, errors, field helpers), ``detect`` (sniffing), ``stream``
(chunks, gzip, lines), ``jsonscan`` (the incremental JSON scanner), ``clock`` (placing VOD
comments in time), one reader per format (``irc``, ``td_txt``, ``td_json``, ``chat_downloader``,
``gql``, ``jsonl``), ``read`` (:func:`read_events`, which picks the reader) and ``writer``.
"""

from collector.formats.common import (
    DEFAULT_CHUNK_SIZE,
    FORMATS,
    FormatError,
    MissingInputError,
    Progress,
)
from collector.formats.detect import detect_format, is_empty, td_txt_timestamps
from collector.formats.read import (
    SPAN_FORMATS,
    read_events,
    reason_category,
    td_txt_needs_start,
    td_txt_untimed,
)
from collector.formats.stream import ChatLog, Span, split_log
from collector.formats.td_json import TdJsonHead, td_json_head
from collector.formats.writer import write_jsonl

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "FORMATS",
    "SPAN_FORMATS",
    "ChatLog",
    "FormatError",
    "MissingInputError",
    "Progress",
    "Span",
    "TdJsonHead",
    "detect_format",
    "is_empty",
    "read_events",
    "reason_category",
    "split_log",
    "td_json_head",
    "td_txt_needs_start",
    "td_txt_timestamps",
    "td_txt_untimed",
    "write_jsonl",
]
