"""Redis as a cache that a Redis outage degrades instead of breaking.

Pages cache what they can read again (the filter bars' choices, for instance). With Redis down, Django's
RedisCache raises on every call, and those pages answered 500. Here reads miss and writes are dropped, so
pages read the database instead; a warning says so, once a minute per process at most.

Only plain caching degrades: `add`, `incr` and `delete` still raise, because the pipeline lock is built on
them, and a lock that silently did nothing would let two runs overlap.
"""

from __future__ import annotations

import logging
import time

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

WARN_EVERY_SECONDS = 60
_warned_at = -float(WARN_EVERY_SECONDS)


def _unavailable(operation: str, exc: RedisError) -> None:
    global _warned_at
    now = time.monotonic()
    if now - _warned_at >= WARN_EVERY_SECONDS:
        _warned_at = now
        logger.warning(
            "Cache unavailable, %s skipped (%s: %s); reading from the database until it is back",
            operation,
            type(exc).__name__,
            exc,
        )


class ReusedClients(RedisCacheClient):
    """Django's Redis cache client, keeping one redis-py client per server where Django's builds one for
    every call: building it (its table of some two hundred reply parsers) took half of a cache read. A
    redis-py client holds no connection of its own, only its pool, and is safe to share between threads."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client


class DegradingRedisCache(RedisCache):
    """RedisCache whose reads miss and whose writes are dropped while Redis cannot be reached."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusedClients

    def get(self, key, default=None, version=None):
        try:
            return super().get(key, default, version)
        except RedisError as exc:
            _unavailable("get", exc)
            return default

    def get_many(self, keys, version=None):
        try:
            return super().get_many(keys, version)
        except RedisError as exc:
            _unavailable("get_many", exc)
            return {}

    def has_key(self, key, version=None):
        try:
            return super().has_key(key, version)
        except RedisError as exc:
            _unavailable("has_key", exc)
            return False

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            super().set(key, value, timeout, version)
        except RedisError as exc:
            _unavailable("set", exc)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            return super().set_many(data, timeout, version)
        except RedisError as exc:
            _unavailable("set_many", exc)
            return list(data)  # the keys that were not stored

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            return super().touch(key, timeout, version)
        except RedisError as exc:
            _unavailable("touch", exc)
            return False
