"""``client.start_run(...)``: runs created, environment captured, status at exit, metrics."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from etp_client import Client, RouteNotFound

from tests.sdk.conftest import ROOT, route_required


def _head_sha() -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_a_block_that_finishes_succeeds_with_git_and_environment(
    client: Client, project: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    with client.start_run(
        experiment="training", project=project["id"], params={"lr": 0.01}, tags=["t1"]
    ) as run:
        assert client.get_run(run.id)["status"] == "running"
        run.log_params({"epochs": 2})
        run.set_tags(["t1", "t2"])
    final = client.get_run(run.id)
    assert final["status"] == "succeeded" and final["finished_at"]
    assert final["params"] == {"lr": 0.01, "epochs": 2} and final["tags"] == ["t1", "t2"]
    assert final["git_sha"] == _head_sha()
    assert final["env"]["python"] and final["env"]["git_sha"] == final["git_sha"]
    assert not any(k.startswith("ETP_") for k in final["env"])  # no environment variables
    experiment = client.find_experiment(project["id"], "training")
    assert experiment is not None and experiment["id"] == final["experiment_id"]


def test_a_block_that_raises_fails_and_the_exception_propagates(
    client: Client, project: dict[str, Any]
) -> None:
    experiment = client.create_experiment(project["id"], "crashy")
    with pytest.raises(ZeroDivisionError), client.start_run(experiment=experiment["id"]) as run:
        _ = 1 / 0
    assert client.get_run(run.id)["status"] == "failed"


def test_metrics_are_batched_in_the_background_and_flushed_at_exit(
    client: Client, project: dict[str, Any]
) -> None:
    experiment = client.create_experiment(project["id"], "metrics")
    run = client.start_run(experiment=experiment, flush_interval_s=0.2)
    try:
        with route_required():
            client.log_metrics(run.id, [{"name": "probe", "value": 0.0, "step": 0}])
        for step in range(15_000):  # more than one request's worth: chunked
            run.log_metric("loss", 1 / (step + 1), step)
        run.log_metrics({"acc": 0.5, "f1": 0.4}, step=15_000)
        with pytest.raises(ValueError):
            run.log_metric("loss", float("nan"))
    finally:
        run.end()
    summary = {m["name"]: m for m in client.metrics_summary(run.id)}
    assert summary["loss"]["count"] == 15_000 and summary["loss"]["last_step"] == 14_999
    assert (summary["acc"]["last"], summary["f1"]["last"]) == (0.5, 0.4)
    assert summary["probe"]["count"] == 1
    assert client.get_run(run.id)["status"] == "succeeded"


def test_end_reports_metrics_it_could_not_send_and_still_ends_the_run(
    client: Client, project: dict[str, Any]
) -> None:
    experiment = client.create_experiment(project["id"], "end")
    run = client.start_run(experiment=experiment["id"], capture_env=False)
    run.log_metric("loss", 1.0, 0)
    try:
        run.end()
    except RouteNotFound:  # a server without metrics: the loss is reported, not hidden
        pass
    else:
        assert [m["name"] for m in client.metrics_summary(run.id)] == ["loss"]
    assert client.get_run(run.id)["status"] == "succeeded"


def test_artifacts_are_logged_from_the_run(
    client: Client, project: dict[str, Any], tmp_path: Path
) -> None:
    experiment = client.create_experiment(project["id"], "artifacts")
    path = tmp_path / "weights.txt"
    path.write_text("0.1 0.2 0.3\n")
    with client.start_run(experiment=experiment["id"], capture_env=False) as run:
        with route_required():
            artifact = run.log_artifact(path)
        assert artifact["name"] == "weights.txt"
    assert [a["name"] for a in client.list_artifacts(run.id)] == ["weights.txt"]


def test_a_run_ends_its_capture_session(client: Client, project: dict[str, Any]) -> None:
    experiment = client.create_experiment(project["id"], "capture")
    with client.start_run(experiment=experiment["id"], capture_env=False) as run:
        session = run.start_capture(notes="during training")
    assert client.get_capture_session(session["id"])["status"] == "succeeded"
    assert client.get_run(run.id)["status"] == "succeeded"
