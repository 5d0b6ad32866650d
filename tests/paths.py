"""Where the tests' data lives: the one place that names the folders and the shared files.

``FIXTURES`` holds third-party data kept as it was published (each folder has its PROVENANCE),
``DATA`` our own corpora.  A test names a file as ``FIXTURES / "<folder>" / "<file>"`` or through
the constants below; no module defines these paths again.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

__all__ = [
    "DATA",
    "FIXTURES",
    "IRC_CONFORMANCE",
    "IRC_SNAPSHOTS",
    "LABELLED_CHAT",
    "NYMN",
    "NYMN_RECENT",
    "ROOT",
    "XENOVA",
    "nymn_irc_lines",
]

#: The repository's root.
ROOT = Path(__file__).resolve().parent.parent
#: Third-party data (tests/fixtures/<source>/, each with its PROVENANCE).
FIXTURES = ROOT / "tests" / "fixtures"
#: Our own test corpora (tests/data/).
DATA = ROOT / "tests" / "data"

#: Chatterino's benchmark copy of #nymn: recent-messages answer and 7TV emotes.
NYMN = FIXTURES / "chatterino-recentmessages-nymn"
#: 800 raw IRC lines of #nymn as the recent-messages service answers them.
NYMN_RECENT = NYMN / "recentmessages-nymn.json"
#: Chatterino's IRC snapshot tests (irc_inputs.tsv, IrcMessageHandler/).
IRC_SNAPSHOTS = FIXTURES / "chatterino-irc-snapshots"
#: xenova/chat-downloader example exports (YouTube and Twitch).
XENOVA = FIXTURES / "xenova-chat-downloader-examples"
#: Hand-labelled chat lines (sentiment), CSV.
LABELLED_CHAT = FIXTURES / "labelled-chat" / "chat_sentiment.csv"
#: Our IRC conformance corpus.
IRC_CONFORMANCE = DATA / "irc-conformance"


def nymn_irc_lines() -> list[str]:
    """The raw IRC lines of :data:`NYMN_RECENT`, in order (a fresh list; the file is read once
    per process)."""
    return list(_nymn_irc_lines())


@cache
def _nymn_irc_lines() -> tuple[str, ...]:
    from collector.irc import parse_recent_messages

    return tuple(parse_recent_messages(NYMN_RECENT.read_bytes()))
