"""Standard Webhooks signing, secrets, the retry schedule and event filters (no network)."""

import base64
import random
from datetime import UTC, datetime, timedelta

import pytest

from core.jobs import WorkerConfig, worker_config
from core.outbox import event_matches, is_valid_event_filter
from core.settings import Settings
from core.webhooks import (
    generate_secret,
    next_retry_delay_s,
    retry_delay_s,
    sign,
    signature_header,
    signing_secrets,
    verify,
)

# The reference vector of the Standard Webhooks specification's test suites.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_the_standard_webhooks_reference_vector():
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE


def test_secrets_are_prefixed_base64_of_at_least_24_random_bytes():
    first, second = generate_secret(), generate_secret()
    assert first.startswith("whsec_") and first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"))) >= 24


def test_verify_accepts_either_signature_during_a_rotation_and_nothing_tampered():
    old, new = generate_secret(), generate_secret()
    body = b'{"type":"run.status_changed"}'
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(SPEC_TS),
        "webhook-signature": signature_header([new, old], "msg_1", SPEC_TS, body),
    }
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verify(new, headers, body, now_s=SPEC_TS)
    assert verify(old, headers, body, now_s=SPEC_TS)
    assert not verify(generate_secret(), headers, body, now_s=SPEC_TS)
    assert not verify(new, headers, body + b" ", now_s=SPEC_TS)
    assert not verify(new, {**headers, "webhook-id": "msg_2"}, body, now_s=SPEC_TS)
    assert not verify(new, headers, body, now_s=SPEC_TS + 301)  # replayed too late


def test_the_previous_secret_signs_only_until_its_overlap_ends():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    row = {
        "secret": "whsec_new",
        "previous_secret": "whsec_old",
        "previous_secret_expires_at": now + timedelta(seconds=1),
    }
    assert signing_secrets(row, now) == ["whsec_new", "whsec_old"]
    assert signing_secrets(row, now + timedelta(seconds=2)) == ["whsec_new"]
    assert signing_secrets({**row, "previous_secret": None}, now) == ["whsec_new"]


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap():
    config = WorkerConfig(webhook_retry_base_s=5, webhook_retry_max_delay_s=3600)
    rng = random.Random(7)
    for attempt in range(1, 15):
        step = min(3600, 5 * 2 ** (attempt - 1))
        delays = {retry_delay_s(attempt, config, rng) for _ in range(20)}
        assert all(step / 2 <= d <= step for d in delays)
        assert len(delays) > 1  # jittered


def test_retries_stop_once_the_window_is_used_up():
    config = WorkerConfig(webhook_retry_base_s=60, webhook_retry_window_s=24 * 3600)
    created = datetime(2026, 1, 1, tzinfo=UTC)
    assert next_retry_delay_s(1, created, created, config) is not None
    assert next_retry_delay_s(1, created, created + timedelta(hours=24), config) is None
    # Summed, the schedule spans about a day before it gives up.
    now, attempt = created, 1
    while (delay := next_retry_delay_s(attempt, created, now, config)) is not None:
        now += timedelta(seconds=delay)
        attempt += 1
    assert timedelta(hours=20) < now - created <= timedelta(hours=24)
    assert 10 < attempt < 40


def test_event_filters():
    assert is_valid_event_filter("*") and is_valid_event_filter("run.*")
    assert is_valid_event_filter("capture_session.stopped")
    assert not is_valid_event_filter("run.status_change")  # a typo is refused, not ignored
    assert not is_valid_event_filter("nothing.*")
    assert event_matches(["run.*"], "run.status_changed")
    assert event_matches(["*"], "export.ready")
    assert not event_matches(["capture_session.started"], "capture_session.stopped")


def test_worker_settings_come_from_the_environment_with_checked_values():
    config = worker_config(Settings(), env={"ETP_WEBHOOK_TIMEOUT_S": "2.5"})
    assert config.webhook_timeout_s == 2.5 and config.worker_sweep_interval_s == 5
    with pytest.raises(Exception, match="ETP_WORKER_SWEEP_INTERVAL_S"):
        worker_config(Settings(), env={"ETP_WORKER_SWEEP_INTERVAL_S": "7"})
    with pytest.raises(Exception, match="ETP_BACKFILL_CHUNK_POINTS"):
        worker_config(Settings(), env={"ETP_BACKFILL_CHUNK_POINTS": "many"})
