"""Sliding-window rate limits: at most ``limit`` requests in any ``window`` seconds per key
(a token, or a client address for anonymous routes). In process embedded; Redis in
production, so that every API worker and replica shares the count."""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from typing import Any


class InProcessLimiter:
    def __init__(self, limit: int, window: float = 60.0):
        self.limit, self.window = limit, window
        self._hits: dict[str, deque] = {}
        self._lock = threading.Lock()

    async def hit(self, key: str) -> tuple[bool, float]:
        return self.hit_now(key)

    async def ping(self) -> bool:
        return True

    def hit_now(self, key: str) -> tuple[bool, float]:
        """(allowed, seconds until the next request would be allowed)."""
        now = time.monotonic()
        with self._lock:
            q = self._hits.setdefault(key, deque())
            while q and q[0] <= now - self.window:
                q.popleft()
            if len(q) < self.limit:
                q.append(now)
                return True, 0.0
            return False, q[0] + self.window - now


# ZSET per key, scores = request times; trimmed, counted and added atomically
_SCRIPT = """
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, math.ceil(window * 1000))
  return {1, '0'}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, tostring(tonumber(oldest[2]) + window - now)}
"""


class LimiterUnavailable(Exception):
    """The shared counter (Redis) cannot be reached."""


class RedisLimiter:
    """One asyncio client per process (the event loop never waits on a socket)."""

    def __init__(self, url: str, limit: int, window: float = 60.0, prefix: str = "ntsb:ratelimit:"):
        self.url, self.limit, self.window, self.prefix = url, limit, window, prefix
        self._client: Any = None

    def _script(self):
        if self._client is None:
            import redis.asyncio as aioredis

            self._client = aioredis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
            self._call = self._client.register_script(_SCRIPT)
        return self._call

    async def hit(self, key: str) -> tuple[bool, float]:
        from redis.exceptions import RedisError

        try:
            allowed, retry = await self._script()(
                keys=[self.prefix + key], args=[time.time(), self.window, self.limit, uuid.uuid4().hex]
            )
        except (RedisError, OSError) as exc:
            raise LimiterUnavailable(f"rate limiter (Redis at {_safe(self.url)}) unavailable: {exc}") from None
        return bool(int(allowed)), float(retry)

    async def ping(self) -> bool:
        from redis.exceptions import RedisError

        self._script()
        try:
            return bool(await self._client.ping())
        except (RedisError, OSError) as exc:
            raise LimiterUnavailable(f"rate limiter (Redis at {_safe(self.url)}) unavailable: {exc}") from None


def _safe(url: str) -> str:
    """The URL without a password."""
    import re

    return re.sub(r"//[^@/]*@", "//***@", url)
