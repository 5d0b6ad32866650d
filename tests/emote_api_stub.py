"""Kept for imports: the emote API stub lives in :mod:`tests.plugins.http`."""

from tests.plugins.http import NYMN_ID, EmoteApiStub, nymn_routes

__all__ = ["NYMN_ID", "EmoteApiStub", "nymn_routes"]
