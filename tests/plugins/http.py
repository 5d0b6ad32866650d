"""The HTTP plugin: one local HTTP server with scripted answers (real sockets), for the
recent-messages service and the emote, user and Helix APIs.

:class:`HttpServerStub` records every request and answers each from a function of it; the two
shapes the tests use are built on it: :class:`HttpStub` (bodies answered in turn) and
:class:`EmoteApiStub` (exact paths, query string included, mapped to ``(status, JSON body)``;
anything else a 404, as the providers answer for a channel they do not know).  Each emote
provider lives under its own prefix, so settings point at ``{url}/7tv``, ``{url}/bttv``, …
(:meth:`EmoteApiStub.settings`).

Fixtures: ``http_stub`` (a factory: ``http_stub(bodies)`` gives a started :class:`HttpStub`) and
``emote_api`` (a started :class:`EmoteApiStub` serving #nymn, :func:`nymn_routes`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple, Self

import pytest

from tests.paths import NYMN

__all__ = [
    "NYMN_ID",
    "EmoteApiStub",
    "HttpServerStub",
    "HttpStub",
    "Request",
    "emote_api",
    "http_stub",
    "nymn_routes",
]

#: nymn's Twitch user id (the 7TV answer in tests/fixtures/chatterino-recentmessages-nymn).
NYMN_ID = "62300805"


class Request(NamedTuple):
    """One request the stub received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


#: ``answer(request) -> (status, body)``: a ``str`` or ``bytes`` body is sent as it is,
#: anything else as JSON.
Answer = Callable[[Request], tuple[int, Any]]


class HttpServerStub:
    """A threaded HTTP server on a free 127.0.0.1 port; a context manager (serves on enter,
    closes on exit).  ``received`` lists every request in order; ``url`` has no trailing ``/``."""

    def __init__(self, answer: Answer) -> None:
        self.received: list[Request] = []
        self._answer = answer
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    self.command,
                    self.path,
                    dict(self.headers.items()),
                    self.rfile.read(length) if length else b"",
                )
                with stub._lock:
                    stub.received.append(request)
                status, body = stub._answer(request)
                if isinstance(body, str):
                    data = body.encode()
                elif isinstance(body, bytes):
                    data = body
                else:
                    data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def paths(self) -> list[str]:
        """The paths requested so far (query strings included), in order."""
        with self._lock:
            return [r.path for r in self.received]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class HttpStub(HttpServerStub):
    """``responses``: bodies answered in turn (the last one repeats); ``requests`` lists the
    paths asked for."""

    def __init__(self, responses: list[str]) -> None:
        self.responses = list(responses)
        super().__init__(self._next)

    def _next(self, request: Request) -> tuple[int, str]:
        index = min(len(self.received) - 1, len(self.responses) - 1)
        return 200, self.responses[index]

    @property
    def requests(self) -> list[str]:
        return self.paths()


class EmoteApiStub(HttpServerStub):
    """``routes``: path -> (status, body); ``requests`` lists (path, headers) in order."""

    def __init__(self, routes: dict[str, tuple[int, Any]]) -> None:
        self.routes = dict(routes)
        super().__init__(lambda r: self.routes.get(r.path, (404, {"message": "not found"})))

    @property
    def requests(self) -> list[tuple[str, dict[str, str]]]:
        with self._lock:
            return [(r.path, r.headers) for r in self.received]

    def settings(self) -> dict[str, str]:
        """Settings overrides that send every provider API here."""
        return {
            "bttv_api_url": f"{self.url}/bttv/3",
            "ffz_api_url": f"{self.url}/ffz/v1",
            "seventv_api_url": f"{self.url}/7tv/v3",
            "ivr_api_url": f"{self.url}/ivr/v2",
            "helix_api_url": f"{self.url}/helix",
        }


def nymn_routes() -> dict[str, tuple[int, Any]]:
    """The real 7TV answer for #nymn (Chatterino's benchmark copy), empty global sets, no
    BTTV/FFZ channel sets (404), and IVR knowing nymn's id."""
    user = json.loads((NYMN / "seventvemotes-nymn.json").read_text())
    emote_set = user["emote_set"]
    return {
        f"/7tv/v3/users/twitch/{NYMN_ID}": (200, user),
        f"/7tv/v3/emote-sets/{emote_set['id']}": (200, emote_set),
        "/7tv/v3/emote-sets/global": (200, {"id": "global", "name": "Global", "emotes": []}),
        "/bttv/3/cached/emotes/global": (200, []),
        "/ffz/v1/set/global": (200, {"default_sets": [], "sets": {}}),
        "/ivr/v2/twitch/user?login=nymn": (
            200,
            [{"id": NYMN_ID, "login": "nymn", "displayName": "NymN"}],
        ),
    }


@pytest.fixture
def http_stub() -> Iterator[Callable[[list[str]], HttpStub]]:
    """A factory: ``http_stub(bodies)`` starts an :class:`HttpStub`, closed after the test."""
    started: list[HttpStub] = []

    def start(responses: list[str]) -> HttpStub:
        stub = HttpStub(responses).__enter__()
        started.append(stub)
        return stub

    yield start
    for stub in started:
        stub.__exit__(None, None, None)


@pytest.fixture
def emote_api() -> Iterator[EmoteApiStub]:
    """A started :class:`EmoteApiStub` serving #nymn's emotes (:func:`nymn_routes`)."""
    with EmoteApiStub(nymn_routes()) as api:
        yield api
