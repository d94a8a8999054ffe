"""`RateLimiter`: a token bucket per tenant, kept in Redis so every API process shares it.

A tenant's bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second; each
request takes one. The bucket is one Redis hash updated by a Lua script, atomically, on Redis's
own clock (``TIME``), so API processes on several machines agree without synchronised clocks.
When the bucket is empty the answer says how long until the next token: the 429's Retry-After.

When Redis cannot answer, requests go through unlimited (logged at most every 10 s): the limit
protects the service, and refusing every request while Redis restarts would not.
"""

from __future__ import annotations

import logging
import math
import time

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

BUCKET_PREFIX = "interp:rate:"

# KEYS[1]: the bucket. ARGV: rate (tokens/s), burst. Returns {1, "0"} or {0, seconds to wait}.
_TAKE = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(bucket[1]) or burst
local at = tonumber(bucket[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed, wait = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(wait)}
"""


class RateLimiter:
    """Take one token from a tenant's bucket per request.

    Args:
        redis: an asyncio client with ``decode_responses=True``.
        rate: tokens added per second (sustained requests per second); 0 disables the limit.
        burst: the bucket's size (requests allowed at once after a quiet spell).
    """

    def __init__(self, redis: AsyncRedis, *, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._take = redis.register_script(_TAKE)
        self._warned_at = -math.inf

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    async def take(self, tenant: str) -> float:
        """Take a token; 0.0 when the request may proceed, else the seconds until one is free."""
        if not self.enabled:
            return 0.0
        try:
            allowed, wait = await self._take(keys=[BUCKET_PREFIX + tenant], args=[self.rate, self.burst])
        except RedisError as exc:
            if time.monotonic() - self._warned_at > 10:
                self._warned_at = time.monotonic()
                log.warning("rate limit not enforced: redis unavailable: %s", exc)
            return 0.0
        return 0.0 if int(allowed) == 1 else float(wait)


def retry_after(wait: float) -> str:
    """Whole seconds for a Retry-After header: at least 1, never early."""
    return str(max(1, math.ceil(wait)))
