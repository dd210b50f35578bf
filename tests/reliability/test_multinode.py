"""Opt-in wrapper of the multi-node drill (tests/reliability/multinode.py): ETP_DRILLS=1.

The drill starts its own 3-node Ray cluster, so it runs in a subprocess: the session-wide
local Ray instance of tests/conftest.py must not be initialised in the same process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(660),
    pytest.mark.skipif(
        os.environ.get("ETP_DRILLS") != "1",
        reason="multi-node drill is opt-in: ETP_DRILLS=1 (about 2 minutes)",
    ),
]


def test_removing_a_worker_node_loses_no_acknowledged_point():
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "tests.reliability.multinode"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=640,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    summary = json.loads(lines[-1])
    assert proc.returncode == 0, json.dumps(summary)
    assert summary["problems"] == [], json.dumps(summary)
    assert len(summary["actors_per_node_before"]) > 1
    assert summary["affected_actors"] > 0
    assert summary["affected_alive_after"] == summary["affected_actors"]
    assert summary["lost"] == 0 and summary["duplicates"] == 0
    assert summary["max_retry_s"] <= 10.0
