"""A local HTTP server standing in for the 7TV, BTTV, FFZ, IVR and Helix APIs (real sockets).

Routes are exact paths (query string included) mapped to ``(status, JSON body)``; anything
else is a 404, as the providers answer for a channel they do not know.  Each provider lives
under its own prefix, so settings point at ``{url}/7tv``, ``{url}/bttv``, ….
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.conftest import FIXTURES

NYMN_ID = "62300805"


class EmoteApiStub:
    """``routes``: path -> (status, body); ``requests`` records (path, headers) in order."""

    def __init__(self, routes: dict[str, tuple[int, Any]]) -> None:
        self.routes = dict(routes)
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with stub._lock:
                    stub.requests.append((self.path, dict(self.headers.items())))
                status, body = stub.routes.get(self.path, (404, {"message": "not found"}))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def paths(self) -> list[str]:
        with self._lock:
            return [p for p, _ in self.requests]

    def settings(self) -> dict[str, str]:
        """Settings overrides that send every provider API here."""
        return {
            "bttv_api_url": f"{self.url}/bttv/3",
            "ffz_api_url": f"{self.url}/ffz/v1",
            "seventv_api_url": f"{self.url}/7tv/v3",
            "ivr_api_url": f"{self.url}/ivr/v2",
            "helix_api_url": f"{self.url}/helix",
        }

    def __enter__(self) -> EmoteApiStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def nymn_routes() -> dict[str, tuple[int, Any]]:
    """The real 7TV answer for #nymn (Chatterino's benchmark copy), empty global sets, no
    BTTV/FFZ channel sets (404), and IVR knowing nymn's id."""
    user = json.loads(
        (FIXTURES / "chatterino-recentmessages-nymn" / "seventvemotes-nymn.json").read_text()
    )
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
