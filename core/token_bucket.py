"""A token bucket per key in Redis (one atomic Lua call): rate in tokens/s, a burst capacity.

``limits`` offers fixed and moving windows but no token bucket with a per-call cost, which is
what per-sensor point budgets need (a request costs as many tokens as it has points).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# KEYS[1] bucket; ARGV: rate/s, burst, cost. Returns {allowed, tokens_left, wait_ms}.
TAKE_SCRIPT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now_ms
tokens = math.min(burst, tokens + math.max(0, now_ms - ts) * rate / 1000)
local allowed = 0
local wait_ms = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait_ms = math.ceil((math.min(cost, burst) - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now_ms)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, math.floor(tokens), wait_ms}
"""


@dataclass(frozen=True, slots=True)
class BucketResult:
    allowed: bool
    remaining: int
    wait_s: float


class TokenBucket:
    def __init__(self, redis: Any, prefix: str):
        self.prefix = prefix
        self.script = redis.register_script(TAKE_SCRIPT)

    async def take(self, key: str, *, cost: int, rate_per_s: float, burst: int) -> BucketResult:
        allowed, remaining, wait_ms = await self.script(
            keys=[f"{self.prefix}:{key}"], args=[rate_per_s, burst, cost]
        )
        return BucketResult(bool(allowed), int(remaining), int(wait_ms) / 1000)
