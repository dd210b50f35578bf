"""Sensor tokens: the in-process cache, its invalidation messages, field validation."""

import uuid

import orjson
import pytest

from core.errors import InvalidInput
from core.security import token_hash
from core.sensors import (
    TOKEN_PREFIX,
    SensorIdentity,
    SensorTokenCache,
    clean_sensor_fields,
    publish_sensor_token_revoked,
)
from core.settings import Settings


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def identity(sensor_id: uuid.UUID | None = None, **changes: object) -> SensorIdentity:
    fields: dict = {
        "sensor_id": sensor_id or uuid.uuid4(),
        "project_id": uuid.uuid4(),
        "name": "s",
        "expected_rate_hz": None,
        "rate_points_per_s": None,
        "burst_points": None,
    }
    fields.update(changes)
    return SensorIdentity(**fields)


def test_cache_entries_expire_after_the_ttl():
    clock = FakeMonotonic()
    cache = SensorTokenCache(ttl_s=5.0, clock=clock)
    key = token_hash(TOKEN_PREFIX + "a")
    ident = identity()
    cache.put(key, ident)
    clock.now += 4.9
    assert cache.get(key) is ident
    clock.now += 0.2
    assert cache.get(key) is None
    assert len(cache) == 0


def test_a_previous_token_is_never_cached_beyond_its_grace_period():
    clock = FakeMonotonic()
    cache = SensorTokenCache(ttl_s=5.0, clock=clock)
    key = token_hash(TOKEN_PREFIX + "old")
    cache.put(key, identity(via_previous_token=True, valid_for_s=1.5))
    clock.now += 1.6
    assert cache.get(key) is None
    cache.put(key, identity(via_previous_token=True, valid_for_s=0.0))
    assert len(cache) == 0


def test_invalidate_drops_every_token_of_one_sensor_only():
    cache = SensorTokenCache()
    sensor, other = uuid.uuid4(), uuid.uuid4()
    keys = [token_hash(f"{TOKEN_PREFIX}{i}") for i in range(3)]
    cache.put(keys[0], identity(sensor))
    cache.put(keys[1], identity(sensor, via_previous_token=True, valid_for_s=60))
    cache.put(keys[2], identity(other))
    assert cache.invalidate_sensor(str(sensor)) == 2
    assert cache.get(keys[0]) is None and cache.get(keys[1]) is None
    assert cache.get(keys[2]) is not None


def test_handle_message_applies_redis_payloads_and_ignores_garbage():
    cache = SensorTokenCache()
    sensor = uuid.uuid4()
    key = token_hash(TOKEN_PREFIX + "x")
    cache.put(key, identity(sensor))
    assert cache.handle_message(b"not json") == 0
    assert cache.handle_message(orjson.dumps({"sensor_id": "nope"})) == 0
    assert cache.handle_message(orjson.dumps({"other": 1})) == 0
    assert cache.get(key) is not None
    assert cache.handle_message(orjson.dumps({"sensor_id": str(sensor)})) == 1
    assert cache.get(key) is None


def test_cache_is_bounded_and_evicts_the_least_recently_used():
    cache = SensorTokenCache(max_entries=2)
    a, b, c = (token_hash(TOKEN_PREFIX + n) for n in "abc")
    cache.put(a, identity())
    cache.put(b, identity())
    assert cache.get(a) is not None  # a is now the most recent
    cache.put(c, identity())
    assert len(cache) == 2
    assert cache.get(b) is None and cache.get(a) is not None and cache.get(c) is not None


class RecordingRedis:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.fail = fail

    async def publish(self, channel: str, message: bytes) -> int:
        if self.fail:
            raise ConnectionError("down")
        self.sent.append((channel, message))
        return 1


async def test_publishing_a_revocation_round_trips_into_another_cache():
    sensor = uuid.uuid4()
    redis = RecordingRedis()
    assert await publish_sensor_token_revoked(redis, sensor)
    ((channel, message),) = redis.sent
    assert channel == "events:sensor-tokens"
    other_process = SensorTokenCache()
    other_process.put(b"k" * 32, identity(sensor))
    assert other_process.handle_message(message) == 1
    assert not await publish_sensor_token_revoked(RecordingRedis(fail=True), sensor)
    assert not await publish_sensor_token_revoked(None, sensor)


def test_rate_limit_falls_back_to_the_settings():
    settings = Settings(sensor_rate_points_per_s=100.0, sensor_burst_points=500)
    assert identity().rate_limit(settings) == (100.0, 500)
    assert identity(rate_points_per_s=5.0, burst_points=7).rate_limit(settings) == (5.0, 7)


@pytest.mark.parametrize(
    ("values", "field", "fragment"),
    [
        ({}, "name", "required"),
        ({"name": "   "}, "name", "1 to 200"),
        ({"name": "x" * 201}, "name", "at most 200"),
        ({"name": "n", "input_unit": "u" * 33}, "input_unit", "at most 32"),
        ({"name": "n", "display_unit": 5}, "display_unit", "must be a string"),
        ({"name": "n", "expected_rate_hz": 0}, "expected_rate_hz", "greater than 0"),
        ({"name": "n", "expected_rate_hz": 100_001}, "expected_rate_hz", "at most 100000"),
        ({"name": "n", "expected_rate_hz": float("nan")}, "expected_rate_hz", "greater than 0"),
        ({"name": "n", "expected_rate_hz": True}, "expected_rate_hz", "a number"),
        ({"name": "n", "rate_points_per_s": -1.0}, "rate_points_per_s", "greater than 0"),
        ({"name": "n", "burst_points": 2.5}, "burst_points", "whole number"),
        ({"name": "n", "burst_points": 0}, "burst_points", "greater than 0"),
        ({"name": "n", "token_hash": "x"}, "token_hash", "unknown field"),
    ],
)
def test_sensor_fields_are_checked_with_precise_messages(values, field, fragment):
    with pytest.raises(InvalidInput) as caught:
        clean_sensor_fields(values, creating=True)
    assert caught.value.details["field"] == field
    assert fragment in caught.value.message


def test_sensor_fields_are_normalised():
    clean = clean_sensor_fields(
        {"name": "  probe ", "expected_rate_hz": 50, "burst_points": 10, "type": " temp "},
        creating=True,
    )
    assert clean == {"name": "probe", "expected_rate_hz": 50.0, "burst_points": 10, "type": "temp"}
    assert clean_sensor_fields({"expected_rate_hz": None}, creating=False) == {
        "expected_rate_hz": None
    }
    with pytest.raises(InvalidInput):
        clean_sensor_fields({"name": None}, creating=False)
