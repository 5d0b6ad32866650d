"""A small incremental JSON scanner that cuts a single-document export into items."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from collector.events import (
    Malformed,
)
from collector.formats.common import _Bad

# --- streaming JSON -------------------------------------------------------------------------

_NON_WS = re.compile(r"[^ \t\r\n]")
_STRUCT = re.compile(r'["{}\[\]]')
_STRING_SPECIAL = re.compile(r'["\\]')
_SCALAR_END = re.compile(r"[,\]}\s]")


class _JsonReader:
    """Cut a JSON text into top-level tokens and whole values without holding it all.

    The scanner only tracks strings, escapes and bracket depth, so it finds where a value ends
    even when the value itself is invalid; each value's text is then given to :func:`json.loads`,
    which makes one bad item a :class:`Malformed` instead of the end of the file.
    """

    def __init__(self, chunks: Iterator[bytes], *, final: bool = True) -> None:
        self._chunks = chunks
        # utf-8-sig drops a byte-order mark; "replace" keeps a stray bad byte from stopping
        # the stream (it lands in one string as U+FFFD).
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self._final = final
        self._buf = ""
        self._pos = 0
        self._eof = False

    def _fill(self) -> bool:
        """Append decoded text, dropping what is consumed; False at end of input."""
        if self._eof:
            return False
        for data in self._chunks:
            text = self._decoder.decode(data)
            if text:
                self._buf = self._buf[self._pos :] + text
                self._pos = 0
                return True
        self._eof = True
        tail = self._decoder.decode(b"", final=True) if self._final else ""
        if tail:
            self._buf = self._buf[self._pos :] + tail
            self._pos = 0
            return True
        return False

    def peek(self) -> str:
        """Return the next non-blank character without consuming it; "" at end of input."""
        while True:
            m = _NON_WS.search(self._buf, self._pos)
            if m is not None:
                self._pos = m.start()
                return self._buf[self._pos]
            self._pos = len(self._buf)
            if not self._fill():
                return ""

    def take(self) -> str:
        """Consume and return the next non-blank character ("" at end of input)."""
        c = self.peek()
        if c:
            self._pos += 1
        return c

    def snippet(self, size: int = 200) -> str:
        """Up to ``size`` characters from the current position, for error messages."""
        if len(self._buf) - self._pos < size:
            self._fill()
        return self._buf[self._pos : self._pos + size]

    def scan_value(self, *, keep: bool) -> tuple[str, bool]:
        """Consume the next value; return its text (``""`` unless ``keep``) and whether it was
        complete (False: the input ended inside it)."""
        if not self.peek():
            return "", False
        pieces: list[str] = []
        i = self._pos
        seg = i
        if self._buf[i] not in '"{[':
            # A number or literal ends at the next delimiter, or at end of input.
            while True:
                m = _SCALAR_END.search(self._buf, i)
                if m is not None:
                    i = m.start()
                    break
                i = len(self._buf)
                if keep:
                    pieces.append(self._buf[seg:i])
                self._pos = i
                if not self._fill():
                    return "".join(pieces), True
                i = seg = self._pos
            if keep:
                pieces.append(self._buf[seg:i])
            self._pos = i
            return "".join(pieces), True
        depth = 0
        in_string = False
        while True:
            buf = self._buf
            done = False
            while True:
                if in_string:
                    m = _STRING_SPECIAL.search(buf, i)
                    if m is None:
                        i = len(buf)
                        break
                    j = m.start()
                    if buf[j] == "\\":
                        if j + 1 >= len(buf):
                            i = j  # the escaped character is in the next chunk
                            break
                        i = j + 2
                        continue
                    in_string = False
                    i = j + 1
                    if depth == 0:
                        done = True
                        break
                else:
                    m = _STRUCT.search(buf, i)
                    if m is None:
                        i = len(buf)
                        break
                    j = m.start()
                    c = buf[j]
                    i = j + 1
                    if c == '"':
                        in_string = True
                    elif c in "{[":
                        depth += 1
                    else:
                        depth -= 1
                        if depth <= 0:
                            done = True
                            break
            if keep:
                pieces.append(buf[seg:i])
            self._pos = i
            if done:
                return "".join(pieces), True
            if not self._fill():
                # Input ended inside the value; a lone trailing backslash is kept.
                if keep and self._pos < len(self._buf):
                    pieces.append(self._buf[self._pos :])
                self._pos = len(self._buf)
                return "".join(pieces), False
            i = seg = self._pos

    def read_value(self) -> tuple[str, object, bool]:
        """Consume the next value; return its text, its decoded value (an :class:`_Invalid`
        when the text is not JSON) and whether it was complete.

        An object or array is decoded in place by the C decoder (``raw_decode`` at the current
        position), which is several times faster than scanning it here first; only when that
        fails (the value runs into the next chunk, or is invalid) does :meth:`scan_value` find
        its end.  A scalar always goes through the scanner: its text could be cut by a chunk.
        """
        if not self.peek():
            return "", _Invalid("no value"), False
        start = self._pos
        if self._buf[start] in "{[":
            try:
                value, end = _DECODER.raw_decode(self._buf, start)
            except ValueError:
                pass
            else:
                self._pos = end
                return self._buf[start:end], value, True
        raw, complete = self.scan_value(keep=True)
        if not complete:
            return raw, _Invalid("cut off"), False
        try:
            return raw, json.loads(raw), True
        except ValueError as exc:
            return raw, _Invalid(str(exc)), True


_DECODER = json.JSONDecoder()


class _Invalid:
    """A value whose text is not JSON (``reason`` is the decoder's message)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _array_items(
    reader: _JsonReader, name: str, what: str
) -> Iterator[tuple[int, str, object] | Malformed]:
    """Yield (item number, item text, decoded item) for an array whose ``[`` was just consumed;
    the decoded item is an :class:`_Invalid` when its text is not JSON (see
    :func:`_load_object`).

    Commas are optional and empty slots skipped: being lenient about separators costs nothing,
    and each item is still validated by the JSON decoder.
    """
    number = 0
    while True:
        c = reader.peek()
        if c == "":
            yield Malformed("", f"file ends before the {what} array is closed", name)
            return
        if c == "]":
            reader.take()
            return
        if c == ",":
            reader.take()
            continue
        number += 1
        raw, value, complete = reader.read_value()
        if not complete:
            yield Malformed(raw, f"{what} item {number}: cut off at end of file", name)
            return
        yield number, raw, value


def _load_object(value: object) -> dict[str, Any]:
    """The decoded array item as an object; :class:`_Bad` when it is not one."""
    if isinstance(value, _Invalid):
        raise _Bad(f"invalid JSON: {value.reason}")
    obj = value
    if not isinstance(obj, dict):
        raise _Bad("not a JSON object")
    return obj


class _FirstItem(NamedTuple):
    """The first item of the JSON array a file starts with, as far as its head shows it."""

    empty: bool  # the array is ``[]``
    keys: frozenset[str]  # the first object's keys


def _first_item(head: bytes, key_re: re.Pattern[str]) -> _FirstItem | None:
    """Look at the first item of the JSON array that ``head`` (a file's first bytes) opens.

    The keys come from the parsed object when it is whole in ``head``, else from the quoted
    keys ``key_re`` finds in the part there is (an item longer than the sniff window).  None when
    ``head`` opens no array, or the first item is no object or not JSON.
    """
    reader = _JsonReader(iter([head]), final=False)
    if reader.take() != "[":
        return None
    nxt = reader.peek()
    if nxt == "]":
        return _FirstItem(True, frozenset())
    if nxt != "{":
        return None
    raw, complete = reader.scan_value(keep=True)
    if not complete:
        return _FirstItem(False, frozenset(m.group(1) for m in key_re.finditer(raw)))
    try:
        item = json.loads(raw)
    except ValueError:
        return None
    return _FirstItem(False, frozenset(item)) if isinstance(item, dict) else None
