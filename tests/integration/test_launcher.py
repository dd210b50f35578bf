"""``etp-server up`` brings up Ray, the api and the worker; Ctrl-C stops every child."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_up_serves_a_ready_stack_and_ctrl_c_stops_every_child(database, redis_url, tmp_path):
    port, ray_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETP_", "RAY_"))}
    env.update(
        {
            "ETP_DATABASE_URL": database,
            "ETP_REDIS_URL": redis_url,
            "ETP_DATA_DIR": str(tmp_path),
            "ETP_RAY_ADDRESS": "",
        }
    )
    launcher = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "etp-server"),
            "up",
            "--port",
            str(port),
            "--ray-port",
            str(ray_port),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    descendants: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 150
        output: list[str] = []
        assert launcher.stdout is not None
        while time.monotonic() < deadline:
            line = launcher.stdout.readline()
            if not line:
                break
            output.append(line)
            if "ready at" in line:
                break
        assert any("ready at" in line for line in output), "".join(output[-40:])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "ready"
        assert body["checks"]["postgres"]["timescaledb"]
        assert body["checks"]["ray"]["ok"]
        descendants = psutil.Process(launcher.pid).children(recursive=True)
        assert len(descendants) >= 3  # ray head (+ its processes), api, worker

        launcher.send_signal(signal.SIGINT)
        assert launcher.wait(timeout=45) == 0
        _gone, alive = psutil.wait_procs(descendants, timeout=30)
        assert not alive, [p.info if hasattr(p, "info") else p.pid for p in alive]
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        if launcher.stdout is not None:
            launcher.stdout.close()
        for proc in descendants:
            if proc.is_running():
                proc.kill()
