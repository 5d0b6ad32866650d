"""Micro-benchmark: :meth:`collector.emotes.EmoteSet.match` over the #nymn sample, repeated.

Run from the repository root: ``.venv/bin/python bench/emotes.py [--repeat N]``.  Prints
messages per second on one core, with and without the native emotes from the IRC tags.
The data is the Chatterino benchmark sample (MIT), see
``tests/fixtures/chatterino-recentmessages-nymn/PROVENANCE.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make the repository's packages importable

from collector.emotes import EmoteSet, parse_7tv_set  # noqa: E402
from collector.events import EmoteUse  # noqa: E402

__all__ = ["main"]

FIXTURES = ROOT / "tests" / "fixtures" / "chatterino-recentmessages-nymn"
SHARED = ROOT.parent / "shared" / "data" / "chatterino-recentmessages-nymn"


def _data_file(name: str) -> Path:
    for folder in (FIXTURES, SHARED):
        if (folder / name).exists():
            return folder / name
    raise SystemExit(f"{name} not found in {FIXTURES} or {SHARED}")


def _native(tags: str, text: str) -> tuple[EmoteUse, ...]:
    # Minimal reading of the IRC ``emotes`` tag: id:start-end,start-end/id:… (code points).
    value = next((kv[7:] for kv in tags.lstrip("@").split(";") if kv.startswith("emotes=")), "")
    uses = []
    for part in filter(None, value.split("/")):
        emote_id, _, ranges = part.partition(":")
        spans = [r.split("-") for r in ranges.split(",")]
        name = text[int(spans[0][0]) : int(spans[0][1]) + 1]
        uses.append(EmoteUse(emote_id, name, "twitch", len(spans)))
    return tuple(uses)


def _load_messages() -> list[tuple[str, tuple[EmoteUse, ...]]]:
    lines = json.loads(_data_file("recentmessages-nymn.json").read_text("utf-8"))["messages"]
    out = []
    for line in lines:
        head, sep, text = line.partition(" PRIVMSG #nymn ")
        if sep:
            text = text.removeprefix(":")
            out.append((text, _native(head.split(" ", 1)[0], text)))
    return out


def main() -> None:
    """Print messages/s for matching the sample ``--repeat`` times."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    emote_set = EmoteSet(
        parse_7tv_set(json.loads(_data_file("seventvemotes-nymn.json").read_text("utf-8")))
    )
    messages = _load_messages() * args.repeat
    print(f"{len(emote_set)} emotes, {len(messages)} messages")
    for label, with_native in (("text only", False), ("with native emotes", True)):
        match = emote_set.match
        start = time.perf_counter()
        if with_native:
            for text, native in messages:
                match(text, native)
        else:
            for text, _ in messages:
                match(text)
        elapsed = time.perf_counter() - start
        print(f"{label:>20}: {len(messages) / elapsed:,.0f} messages/s")


if __name__ == "__main__":
    main()
