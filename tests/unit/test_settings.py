import pickle

import pytest

from core.errors import ConfigError
from core.settings import Secret, load_settings


def test_defaults_are_local_and_generate_a_secret_kept_outside_git(tmp_path):
    env = {"ETP_DATA_DIR": str(tmp_path)}
    first = load_settings(env)
    assert first.mode == "local"
    assert len(first.secret_key.get()) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert load_settings(env).secret_key == first.secret_key


def test_secret_never_prints():
    secret = Secret("hunter2-very-secret")
    assert "hunter2" not in repr(secret) and "hunter2" not in str(secret)
    settings = load_settings(
        {"ETP_SECRET_KEY": "hunter2-very-secret", "ETP_DATA_DIR": "/nonexistent"}
    )
    assert "hunter2" not in repr(settings)
    assert pickle.loads(pickle.dumps(settings)).secret_key.get() == "hunter2-very-secret"


def test_values_are_parsed_and_typed(tmp_path):
    settings = load_settings(
        {
            "ETP_DATA_DIR": str(tmp_path),
            "ETP_PORT": "9000",
            "ETP_FLUSH_INTERVAL_MS": "50",
            "ETP_CORS_ORIGINS": "http://a.test, http://b.test",
            "ETP_SENSOR_ACTORS": "packed:4",
            "ETP_ACTOR_IDLE_S": "2.5",
        }
    )
    assert settings.port == 9000 and settings.flush_interval_ms == 50
    assert settings.cors_origins == ("http://a.test", "http://b.test")
    assert settings.packed_hosts == 4 and settings.actor_idle_s == 2.5
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"ETP_DATABASE_URL": "mysql://x/y"}, "ETP_DATABASE_URL"),
        ({"ETP_REDIS_URL": "http://x"}, "ETP_REDIS_URL"),
        ({"ETP_PORT": "eighty"}, "ETP_PORT"),
        ({"ETP_MODE": "staging"}, "ETP_MODE"),
        ({"ETP_SENSOR_ACTORS": "packed:0"}, "ETP_SENSOR_ACTORS"),
        ({"ETP_MODE": "production"}, "ETP_SECRET_KEY"),
        ({"ETP_MODE": "production", "ETP_SECRET_KEY": "short"}, "ETP_SECRET_KEY"),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_message(env, fragment, tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings({"ETP_DATA_DIR": str(tmp_path), **env})
    assert fragment in caught.value.message
    assert "\n" not in caught.value.message


def test_production_with_a_secret_starts(tmp_path):
    settings = load_settings(
        {"ETP_MODE": "production", "ETP_SECRET_KEY": "k" * 40, "ETP_DATA_DIR": str(tmp_path)}
    )
    assert settings.is_production
    assert not (tmp_path / "secret_key").exists()
