"""``etp_client.Client`` against the running stack: every resource the server serves."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from etp_client import (
    Client,
    Conflict,
    ConnectionFailed,
    InvalidInput,
    NotFound,
    RateLimited,
    RetryPolicy,
    RouteNotFound,
    Unauthenticated,
)
from etp_client.transport import new_idempotency_key

from tests.sdk.conftest import register, route_required


def test_account_tokens_and_credentials_from_the_environment(
    stack: str, user: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETP_URL", stack)
    monkeypatch.setenv("ETP_TOKEN", user["token"])
    with Client() as client:
        assert client.me()["user"]["email"] == user["email"]
        extra = client.create_token("second")
        assert extra["token"].startswith("etpu_")
        assert any(t["id"] == extra["id"] for t in client.list_tokens())
        client.revoke_token(extra["id"])
    with Client(stack, extra["token"]) as revoked, pytest.raises(Unauthenticated) as caught:
        revoked.me()
    assert caught.value.status == 401 and caught.value.request_id


def test_projects_and_members(stack: str, client: Client) -> None:
    project = client.create_project("Lab A", description="first")
    assert client.get_project(project["id"])["role"] == "owner"
    assert client.update_project(project["id"], description="changed")["description"] == "changed"
    assert project["id"] in [p["id"] for p in client.list_projects()]
    assert client.find_project("Lab A") is not None

    other = register(stack, name="Colleague")
    member = client.add_member(project["id"], email=other["email"], role="viewer")
    assert member["role"] == "viewer"
    assert client.change_member(project["id"], member["user_id"], role="editor")["role"] == "editor"
    assert {m["role"] for m in client.list_members(project["id"])} == {"owner", "editor"}
    with Client(stack, other["token"]) as colleague:
        assert colleague.get_project(project["id"])["role"] == "editor"
    client.remove_member(project["id"], member["user_id"])
    assert len(client.list_members(project["id"])) == 1

    client.delete_project(project["id"])
    with pytest.raises(NotFound) as caught:
        client.get_project(project["id"])
    assert caught.value.code == "not_found" and not isinstance(caught.value, RouteNotFound)


def test_errors_carry_code_message_and_request_id(client: Client) -> None:
    with pytest.raises(InvalidInput) as caught:
        client.create_project("x" * 500)
    error = caught.value
    assert (error.status, error.code) == (422, "invalid_input")
    assert error.request_id and error.details
    with pytest.raises(RouteNotFound):
        client._http.call("GET", "/no-such-route")


def test_experiments_lifecycle_and_filters(client: Client, project: dict[str, Any]) -> None:
    pid = project["id"]
    first = client.create_experiment(pid, "alpha", tags=["a", "b"], metadata={"k": 1})
    client.create_experiment(pid, "beta", tags=["b"], experiment_type="sweep")
    assert [e["name"] for e in client.list_experiments(pid, tags=["a"])] == ["alpha"]
    assert len(client.list_experiments(pid, tags=["b"])) == 2
    assert len(client.list_experiments(pid, limit=1)) == 1
    assert client.find_experiment(pid, "beta") is not None
    assert client.get_or_create_experiment(pid, "alpha")["id"] == first["id"]

    assert client.update_experiment(first["id"], description="d")["description"] == "d"
    assert client.archive_experiment(first["id"])["status"] == "archived"
    assert [e["name"] for e in client.list_experiments(pid, status="archived")] == ["alpha"]
    assert client.unarchive_experiment(first["id"])["status"] == "active"
    client.delete_experiment(first["id"])
    with pytest.raises(NotFound):
        client.get_experiment(first["id"])


def test_runs_status_bulk_and_sensors(client: Client, project: dict[str, Any]) -> None:
    experiment = client.create_experiment(project["id"], "runs")
    runs = [
        client.create_run(experiment["id"], f"run-{i}", params={"lr": i / 10}, tags=["x"])
        for i in range(3)
    ]
    assert runs[0]["status"] == "draft" and runs[0]["params"] == {"lr": 0.0}
    assert len(client.list_runs(experiment_id=experiment["id"])) == 3
    found = client.list_runs(project_id=project["id"], q="run-1", sort="name")
    assert [r["name"] for r in found] == ["run-1"]

    updated = client.update_run(runs[0]["id"], notes="n", params={"epochs": 3})
    assert updated["params"] == {"lr": 0.0, "epochs": 3} and updated["notes"] == "n"
    assert client.set_run_status(runs[0]["id"], "running")["status"] == "running"
    with pytest.raises(Conflict) as caught:
        client.set_run_status(runs[1]["id"], "succeeded")  # draft cannot end
    assert caught.value.status == 409

    started = client.batch_run_status([r["id"] for r in runs[1:]], "running")
    assert {r["status"] for r in started} == {"running"}
    tagged = client.bulk_tag_runs([r["id"] for r in runs], add=["y"], remove=["x"])
    assert all(r["tags"] == ["y"] for r in tagged)
    assert {r["id"] for r in client.list_runs(project_id=project["id"], tags=["y"])} == {
        r["id"] for r in runs
    }

    sensor = client.create_sensor(project["id"], "probe")
    assert [s["id"] for s in client.set_run_sensors(runs[0]["id"], [sensor["id"]])] == [
        sensor["id"]
    ]
    assert [s["id"] for s in client.list_run_sensors(runs[0]["id"])] == [sensor["id"]]


def test_idempotency_key_replays_the_first_answer(client: Client, project: dict[str, Any]) -> None:
    experiment = client.create_experiment(project["id"], "idem")
    key = new_idempotency_key()
    body = {"name": "once"}
    path = f"/experiments/{experiment['id']}/runs"
    first = client._http.call("POST", path, json=body, idempotency_key=key)
    again = client._http.call("POST", path, json=body, idempotency_key=key)
    assert first["id"] == again["id"]
    assert [r["name"] for r in client.list_runs(experiment_id=experiment["id"])] == ["once"]


def test_capture_sessions_start_stop_and_delete(client: Client, project: dict[str, Any]) -> None:
    experiment = client.create_experiment(project["id"], "capture")
    run = client.create_run(experiment["id"], "r")
    session = client.start_capture(run["id"], notes="first")
    assert session["status"] == "running" and session["ordinal"] == 1
    assert client.start_capture(run["id"])["id"] == session["id"]  # one at a time
    assert client.get_run(run["id"])["status"] == "running"
    stopped = client.stop_capture(session["id"])
    assert stopped["status"] == "succeeded" and stopped["stopped_at"]
    assert [s["id"] for s in client.list_capture_sessions(run["id"])] == [session["id"]]
    assert client.get_capture_session(session["id"])["notes"] == "first"
    with pytest.raises(Conflict):
        client.delete_capture_session(session["id"])  # only draft/failed ones


def test_sensors_tokens_sharing_and_profiles(client: Client, project: dict[str, Any]) -> None:
    sensor = client.create_sensor(
        project["id"], "thermo", type="temperature", input_unit="mV", expected_rate_hz=5.0
    )
    token = sensor["token"]
    assert client.get_sensor(sensor["id"])["name"] == "thermo"
    assert "token" not in client.get_sensor(sensor["id"])
    assert [s["id"] for s in client.list_sensors(project["id"], type="temperature")] == [
        sensor["id"]
    ]
    assert client.update_sensor(sensor["id"], display_unit="°C")["display_unit"] == "°C"

    now = datetime.now(UTC)
    assert client.send_telemetry(token, [{"ts": now.isoformat(), "value": 1.0}])["accepted"] == 1
    rotated = client.rotate_sensor_token(sensor["id"])
    assert rotated["token"] != token
    with pytest.raises(Unauthenticated):
        client.send_telemetry(token, [{"ts": now.isoformat(), "value": 2.0}])

    other = client.create_project("shared-into")
    shared = client.share_sensor(sensor["id"], [other["id"]])
    assert shared["project_ids"] == [other["id"]]
    assert client.list_sensors(other["id"])[0]["shared"] is True

    draft = client.create_profile(sensor["id"], "linear", {"a": 2, "b": 1}, description="v1")
    assert draft["status"] == "draft" and draft["version"] == 1
    change = client.activate_profile(draft["id"])
    assert change["status"] == "active" and change["sensor_active_profile_id"] == draft["id"]
    later = client.create_profile(sensor["id"], "polynomial", {"coefficients": [0, 1]})
    scheduled = client.schedule_profile(later["id"], datetime.now(UTC) + timedelta(days=1))
    assert scheduled["status"] == "scheduled"
    assert [p["version"] for p in client.list_profiles(sensor["id"])] == [2, 1]
    assert client.deprecate_profile(later["id"])["status"] == "deprecated"
    assert client.get_profile(draft["id"])["kind"] == "linear"

    client.delete_sensor(sensor["id"])
    with pytest.raises(NotFound):
        client.get_sensor(sensor["id"])


def test_ingest_json_line_protocol_and_journal(client: Client, project: dict[str, Any]) -> None:
    sensor = client.create_sensor(project["id"], "ingest")
    base = datetime.now(UTC) - timedelta(seconds=30)
    points = [{"ts": (base + timedelta(seconds=i)).isoformat(), "value": i} for i in range(5)]
    points.append({"ts": base.isoformat(), "value": float("nan")})
    result = client.send_telemetry(sensor["token"], points)
    assert (result["accepted"], [r["code"] for r in result["rejected"]]) == (5, ["invalid_value"])
    again = client.send_telemetry(sensor["token"], points[:5], compress=True)
    assert again["duplicates"] == 5

    ns = int((base + timedelta(seconds=10)).timestamp() * 1e9)
    lines = [f"probe value=1.5 {ns}", f"probe value=2.5 {ns + 1000}", "garbage"]
    result = client.send_telemetry(sensor["token"], lines=lines, precision="ns")
    assert result["accepted"] == 2 and result["rejected"][0]["index"] == 2

    journal = client.sensor_errors(sensor["id"])
    assert {e["code"] for e in journal} >= {"invalid_value", "invalid_line"}


def test_rate_limited_ingest_is_retried_after_retry_after(
    client: Client, project: dict[str, Any]
) -> None:
    sensor = client.create_sensor(project["id"], "slow", rate_points_per_s=10.0, burst_points=20)
    now = datetime.now(UTC)

    def batch(offset: int, size: int = 20) -> list[dict[str, Any]]:
        return [
            {"ts": (now - timedelta(seconds=offset + i / 100)).isoformat(), "value": i}
            for i in range(size)
        ]

    client.send_telemetry(sensor["token"], batch(9, 1))  # starts the sensor's actor
    client.send_telemetry(sensor["token"], batch(0))  # empties the bucket
    with Client(client.url, None, retry=RetryPolicy(max_attempts=1)) as impatient:
        with pytest.raises(RateLimited) as caught:
            impatient.send_telemetry(sensor["token"], batch(1))
        assert caught.value.retry_after_s and caught.value.retry_after_s >= 1
    started = time.monotonic()
    assert client.send_telemetry(sensor["token"], batch(2))["accepted"] == 20
    assert time.monotonic() - started >= 0.5  # waited for the bucket, as told


def test_connection_errors_are_retried_then_reported() -> None:
    policy = RetryPolicy(max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.02)
    with Client("http://127.0.0.1:9", "etpu_x", retry=policy) as client:
        started = time.monotonic()
        with pytest.raises(ConnectionFailed) as caught:
            client.list_projects()
    assert caught.value.status is None and "could not reach" in caught.value.message
    assert time.monotonic() - started < 5


def test_history_and_aggregates(client: Client, project: dict[str, Any]) -> None:
    sensor = client.create_sensor(project["id"], "hist")
    base = datetime.now(UTC) - timedelta(minutes=5)
    points = [{"ts": (base + timedelta(seconds=i)).isoformat(), "value": i} for i in range(120)]
    client.send_telemetry(sensor["token"], points)
    with route_required():
        history = client.telemetry_history(sensor_ids=[sensor["id"]], from_=base)
    assert len(history) == 120
    with route_required():
        aggregate = client.telemetry_aggregate(sensor_ids=[sensor["id"]], from_=base, max_points=10)
    assert aggregate


def test_exports_stream_to_files(client: Client, project: dict[str, Any], tmp_path: Path) -> None:
    experiment = client.create_experiment(project["id"], "exported")
    client.create_run(experiment["id"], "r1", params={"lr": 0.1})
    client.create_run(experiment["id"], "r2", params={"lr": 0.2, "bs": 8})
    seen: list[tuple[int, int | None]] = []
    path = client.export_runs(
        project["id"], tmp_path / "runs.csv", progress=lambda d, t: seen.append((d, t))
    )
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert sorted(r["name"] for r in rows) == ["r1", "r2"]
    assert {"param.lr", "param.bs"} <= set(rows[0])
    assert seen and seen[-1][0] == path.stat().st_size
    assert not (tmp_path / "runs.csv.part").exists()

    path = client.export_experiments(project["id"], tmp_path / "exp.json", format="json")
    assert '"exported"' in path.read_text()

    sensor = client.create_sensor(project["id"], "exp")
    client.send_telemetry(sensor["token"], [{"ts": datetime.now(UTC).isoformat(), "value": 3}])
    with route_required():
        out = client.export_telemetry(tmp_path / "t.csv", sensor_ids=[sensor["id"]])
    assert sensor["id"] in out.read_text()


def test_export_jobs_run_on_the_worker(
    client: Client, project: dict[str, Any], tmp_path: Path
) -> None:
    experiment = client.create_experiment(project["id"], "jobs")
    client.create_run(experiment["id"], "in-a-job")
    with route_required():
        queued = client.create_export("runs", project_id=project["id"], format="json")
    assert queued["status"] == "queued"
    job = client.wait_export(queued["id"], timeout_s=60, poll_s=0.2)
    assert job["status"] == "succeeded" and job["download_url"], job
    path = client.download_export(job["id"], tmp_path / "runs.json")
    content = path.read_bytes()
    assert b"in-a-job" in content and len(content) == job["size_bytes"]
    # An interrupted download continues from its .part file with a Range request, or starts
    # over when the server answers 200 to it: the file is whole either way.
    half = len(content) // 2
    (tmp_path / "again.json.part").write_bytes(content[:half])
    seen: list[int] = []
    again = client.download_export(
        job["id"], tmp_path / "again.json", progress=lambda d, _t: seen.append(d)
    )
    assert again.read_bytes() == content
    assert seen[0] in (0, half) and seen[-1] == len(content)


def test_metrics_api(client: Client, project: dict[str, Any]) -> None:
    experiment = client.create_experiment(project["id"], "metrics")
    run = client.create_run(experiment["id"], "m")
    entries = [{"name": "loss", "value": 1 / (s + 1), "step": s} for s in range(12_000)]
    entries.append({"name": "acc", "value": 0.5, "step": 3, "ts": datetime.now(UTC)})
    with route_required():
        assert client.limits()["metrics"]["metrics_per_request"] == 10_000
        assert client.log_metrics(run["id"], entries) == 12_001  # two requests
    summary = {m["name"]: m for m in client.metrics_summary(run["id"])}
    assert summary["loss"]["count"] == 12_000 and summary["loss"]["max"] == 1.0
    assert summary["loss"]["last_step"] == 11_999 and summary["acc"]["last"] == 0.5
    assert client.get_metrics(run["id"], name="loss", max_points=100)
    raw = list(client.iter_metrics(run["id"], name="acc"))
    assert [(p["step"], p["value"]) for p in raw] == [(3, 0.5)]


def test_comparisons_api(client: Client, project: dict[str, Any], tmp_path: Path) -> None:
    experiment = client.create_experiment(project["id"], "compare")
    first = client.create_run(experiment["id"], "a", params={"lr": 0.1, "bs": 8})
    second = client.create_run(experiment["id"], "b", params={"lr": 0.2, "bs": 8})
    with route_required():
        comparison = client.create_comparison([first["id"], second["id"]], telemetry=False)
    again = client.get_comparison(comparison["id"])
    assert again["id"] == comparison["id"] and "0.2" in str(again)
    path = client.export_comparison(comparison["id"], tmp_path / "cmp.csv")
    assert "lr" in path.read_text()


def test_artifacts_api(client: Client, project: dict[str, Any], tmp_path: Path) -> None:
    experiment = client.create_experiment(project["id"], "artifacts")
    run = client.create_run(experiment["id"], "a")
    source = tmp_path / "model.bin"
    source.write_bytes(bytes(range(256)) * 5000)
    with route_required():
        artifact = client.upload_artifact(
            run["id"], source, type="model", metadata={"framework": "torch"}
        )
    assert (artifact["name"], artifact["size_bytes"]) == ("model.bin", source.stat().st_size)
    assert artifact["type"] == "model" and artifact["metadata"] == {"framework": "torch"}
    assert [a["id"] for a in client.list_artifacts(run["id"])] == [artifact["id"]]
    assert client.get_artifact(artifact["id"])["sha256"] == artifact["sha256"]
    assert client.approve_artifact(artifact["id"])["approved_by"] == client.me()["user"]["id"]
    # A partial earlier download is resumed with a Range request (206).
    dest = tmp_path / "copy.bin"
    (tmp_path / "copy.bin.part").write_bytes(source.read_bytes()[:1000])
    seen: list[int] = []
    client.download_artifact(artifact["id"], dest, progress=lambda d, _t: seen.append(d))
    assert dest.read_bytes() == source.read_bytes() and seen[0] == 1000
    client.delete_artifact(artifact["id"])
    assert client.list_artifacts(run["id"]) == []
