"""The launcher as a user runs it: one clear line for bad configuration, never a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ETP_SERVER = str(Path(sys.executable).parent / "etp-server")


def run(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ETP_")}
    full_env.update(env)
    return subprocess.run(
        args, env=full_env, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
    )


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"ETP_DATABASE_URL": "postgresql://etp:etp@127.0.0.1:1/etp"}, "127.0.0.1:1/etp"),
        ({"ETP_DATABASE_URL": "mysql://localhost/etp"}, "ETP_DATABASE_URL"),
        ({"ETP_MODE": "production"}, "ETP_SECRET_KEY"),
        (
            {"ETP_DATABASE_URL": "postgresql://etp:etp@127.0.0.1:5432/etp_no_such_db"},
            "etp_no_such_db",
        ),
    ],
)
def test_bad_configuration_stops_with_one_clear_line(env, fragment, tmp_path):
    result = run([ETP_SERVER, "migrate"], {"ETP_DATA_DIR": str(tmp_path), **env})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("etp-server: ") and fragment in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_python_m_migrations_applies_then_says_nothing_to_do(empty_database, tmp_path):
    env = {"ETP_DATABASE_URL": empty_database, "ETP_DATA_DIR": str(tmp_path)}
    first = run([sys.executable, "-m", "migrations"], env)
    assert first.returncode == 0, first.stderr
    assert "applied 0001_schema.sql" in first.stdout
    second = run([sys.executable, "-m", "migrations"], env)
    assert second.returncode == 0
    assert "nothing to apply" in second.stdout
