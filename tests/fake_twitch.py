"""Kept for imports: the fake Twitch server lives in :mod:`tests.plugins.fake_twitch`."""

from tests.plugins.fake_twitch import DROP, LOGGER, FakeTwitchServer

__all__ = ["DROP", "LOGGER", "FakeTwitchServer"]
