"""Run comparisons through the API: params and metric deltas, who may see a comparison,
capture-session telemetry overlays from the real pipeline, and the exports."""

import asyncio
import csv
import io
import re
from datetime import datetime

from tests.integration.helpers import (
    add_member,
    create_project,
    create_sensor,
    register,
    send_points,
)

API = "/api/v1"


async def experiment(user, project_id):
    return await user.json(
        "POST", f"{API}/projects/{project_id}/experiments", 201, json={"name": "exp"}
    )


async def new_run(user, experiment_id, name, params=None):
    body = {"name": name, "params": params or {}}
    return await user.json("POST", f"{API}/experiments/{experiment_id}/runs", 201, json=body)


async def log(user, run_id, metrics):
    await user.json("POST", f"{API}/runs/{run_id}/metrics", json={"metrics": metrics})


async def compare(user, run_ids, expect=201, **options):
    return await user.json(
        "POST", f"{API}/comparisons", expect, json={"run_ids": run_ids, **options}
    )


async def test_params_side_by_side_and_metric_deltas_against_the_baseline(app):
    owner = await register(app)
    project = await create_project(owner)
    exp = await experiment(owner, project["id"])
    a = await new_run(owner, exp["id"], "a", {"lr": 0.1, "batch": 32, "opt": "adam", "n": 1})
    b = await new_run(owner, exp["id"], "b", {"lr": 0.01, "batch": 32, "opt": "adam", "n": 1.0})
    c = await new_run(owner, exp["id"], "c", {"lr": 0.1, "batch": 32, "n": True})
    await log(
        owner, a["id"], [{"name": "loss", "value": v, "step": i} for i, v in enumerate((4, 2, 1))]
    )
    await log(
        owner, b["id"], [{"name": "loss", "value": v, "step": i} for i, v in enumerate((5, 3, 0.5))]
    )
    await log(owner, b["id"], [{"name": "acc", "value": 0.9}])
    doc = await compare(owner, [a["id"], b["id"], c["id"]], baseline_run_id=b["id"])
    assert doc["baseline_run_id"] == b["id"] and [r["name"] for r in doc["runs"]] == ["a", "b", "c"]
    params = {p["key"]: p for p in doc["params"]}
    assert params["lr"]["differs"] and not params["batch"]["differs"]
    assert params["opt"]["differs"]  # c lacks it
    assert params["opt"]["values"] == {a["id"]: "adam", b["id"]: "adam", c["id"]: None}
    assert params["n"]["differs"]  # 1 and 1.0 are equal, true is not a number
    metrics = {m["name"]: m for m in doc["metrics"]}
    loss = metrics["loss"]["runs"]
    assert loss[b["id"]]["delta"] == {"last": 0, "min": 0, "max": 0, "avg": 0}
    assert loss[a["id"]]["last"] == 1 and loss[a["id"]]["delta"]["last"] == 0.5
    assert loss[a["id"]]["delta"]["max"] == -1 and loss[a["id"]]["delta_pct_last"] == 100.0
    assert loss[c["id"]] is None
    assert metrics["acc"]["runs"][a["id"]] is None and metrics["acc"]["baseline_present"]
    again = await owner.json("GET", f"{API}/comparisons/{doc['id']}")
    assert again["params"] == doc["params"] and again["metrics"] == doc["metrics"]
    await log(owner, a["id"], [{"name": "loss", "value": 0.25, "step": 9}])
    live = await owner.json("GET", f"{API}/comparisons/{doc['id']}")
    assert live["metrics"][1]["runs"][a["id"]]["last"] == 0.25  # read from current data
    await compare(owner, [a["id"]], 422, baseline_run_id=b["id"])
    await compare(owner, [], 422)
    await compare(owner, [a["id"]] * 2, 201)  # duplicates count once


async def test_a_comparison_with_a_run_the_caller_cannot_read_is_not_found(app):
    alice, bob, carol = await register(app), await register(app), await register(app)
    pa, pb = await create_project(alice, "A"), await create_project(bob, "B")
    ra = await new_run(alice, (await experiment(alice, pa["id"]))["id"], "ra")
    rb = await new_run(bob, (await experiment(bob, pb["id"]))["id"], "rb")
    missing = "00000000-0000-4000-8000-000000000000"
    refused = await compare(alice, [ra["id"], rb["id"]], 404)
    unknown = await compare(alice, [ra["id"], missing], 404)
    assert refused["error"]["message"] == unknown["error"]["message"]  # nothing revealed
    await add_member(bob, pb["id"], alice, "viewer")
    doc = await compare(alice, [ra["id"], rb["id"]])
    await add_member(alice, pa["id"], carol, "viewer")  # carol reads A only
    for path in (f"comparisons/{doc['id']}", f"comparisons/{doc['id']}/export?format=html"):
        error = await carol.json("GET", f"{API}/{path}", 404)
        assert error["error"]["message"] == "comparison not found"
    await bob.json("GET", f"{API}/comparisons/{doc['id']}", 404)  # bob cannot read run A
    await add_member(bob, pb["id"], carol, "viewer")
    assert (await carol.json("GET", f"{API}/comparisons/{doc['id']}"))["id"] == doc["id"]
    await bob.json("DELETE", f"{API}/projects/{pb['id']}/members/{alice.id}", 204)
    await alice.json("GET", f"{API}/comparisons/{doc['id']}", 404)  # access went with the role
    await alice.json("GET", f"{API}/comparisons/{missing}", 404)


async def _capture(owner, run, token, values, at_ms):
    """A capture session of ``run`` holding one point per value, 50 ms apart."""
    session = await owner.json("POST", f"{API}/runs/{run['id']}/capture-sessions", 201)
    start_ms = int(datetime.fromisoformat(session["started_at"]).timestamp() * 1000)
    await asyncio.sleep(0.1 + len(values) * 0.05)
    points = [{"ts": start_ms + 20 + 50 * i, "value": v} for i, v in enumerate(values)]
    response = await send_points(owner.app, token, points)
    assert response.status_code == 202, await response.get_json()
    await owner.json("POST", f"{API}/capture-sessions/{session['id']}/stop")
    at_ms.append(start_ms)
    return session


async def _profile(owner, sensor_id, a):
    profile = await owner.json(
        "POST",
        f"{API}/sensors/{sensor_id}/profiles",
        201,
        json={"kind": "linear", "payload": {"a": a, "b": 0}},
    )
    await owner.json("POST", f"{API}/profiles/{profile['id']}/activate")
    return profile


async def test_telemetry_overlays_align_sessions_and_show_the_profile_version(app):
    owner = await register(app)
    project = await create_project(owner)
    sensor = await create_sensor(owner, project["id"], name="temp", display_unit="°C")
    exp = await experiment(owner, project["id"])
    runs = [await new_run(owner, exp["id"], name) for name in ("cold", "hot")]
    for run in runs:
        await owner.json(
            "PUT", f"{API}/runs/{run['id']}/sensors", json={"sensor_ids": [sensor["id"]]}
        )
    values = [float(v) for v in (3, 1, 4, 1, 5, 9, 2, 6, 5, 3)]
    starts: list[int] = []
    v1 = await _profile(owner, sensor["id"], 2)
    s1 = await _capture(owner, runs[0], sensor["token"], values, starts)
    v2 = await _profile(owner, sensor["id"], 10)
    s2 = await _capture(owner, runs[1], sensor["token"], values, starts)
    doc = await compare(owner, [r["id"] for r in runs], max_points=50)
    overlay = doc["telemetry"]
    assert overlay["value"] == "physical" and overlay["sessions_total"] == 2
    series = {s["capture_session_id"]: s for s in overlay["series"]}
    assert set(series) == {s1["id"], s2["id"]}
    for session, profile, factor in ((s1, v1, 2), (s2, v2, 10)):
        s = series[session["id"]]
        assert s["sensor_name"] == "temp" and s["unit"] == "°C"
        assert [p["version"] for p in s["profile_versions"]] == [profile["version"]]
        assert sum(b["count"] for b in s["buckets"]) == len(values)
        assert min(b["min"] for b in s["buckets"]) == factor * min(values)
        assert max(b["max"] for b in s["buckets"]) == factor * max(values)
        offsets = [b["offset_s"] for b in s["buckets"]]
        assert offsets == sorted(offsets) and 0 <= offsets[0] < 0.1 and offsets[-1] < 1.0
        assert len(s["buckets"]) <= 50
    only = await compare(owner, [runs[1]["id"]], capture_session_ids=[s2["id"]])
    assert [s["capture_session_id"] for s in only["telemetry"]["series"]] == [s2["id"]]
    await compare(owner, [runs[1]["id"]], 422, capture_session_ids=[s1["id"]])
    without = await compare(owner, [runs[0]["id"]], telemetry=False)
    assert without["telemetry"] is None


async def test_exports_csv_json_and_a_self_contained_html_report(app):
    owner = await register(app)
    project = await create_project(owner)
    exp = await experiment(owner, project["id"])
    a = await new_run(owner, exp["id"], "=HYPERLINK(1)", {"lr": 0.1})
    b = await new_run(owner, exp["id"], "<script>alert(1)</script>", {"lr": 0.2})
    await log(owner, a["id"], [{"name": "loss", "value": 1.0}])
    await log(owner, b["id"], [{"name": "loss", "value": 0.5}])
    doc = await compare(owner, [a["id"], b["id"]])
    path = f"{API}/comparisons/{doc['id']}/export"
    response = await owner.call("GET", f"{path}?format=csv")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO((await response.get_data()).decode())))
    assert rows[0][:5] == ["run_id", "run_name", "status", "experiment", "baseline"]
    assert "param.lr" in rows[0] and "metric.loss.delta_last" in rows[0]
    assert rows[1][1] == "'=HYPERLINK(1)"  # no formula runs in a spreadsheet
    delta = rows[2][rows[0].index("metric.loss.delta_last")]
    assert float(delta) == -0.5
    telemetry = await owner.call("GET", f"{path}?format=csv&part=telemetry")
    assert (await telemetry.get_data()).decode().startswith("run_id,run_name,capture_session_id")
    as_json = await owner.json("GET", f"{path}?format=json")
    assert as_json["metrics"] == doc["metrics"] and as_json["params"] == doc["params"]
    response = await owner.call("GET", f"{path}?format=html")
    html = (await response.get_data()).decode()
    assert response.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not re.search(r"(src|href)\s*=", html)  # nothing is fetched from anywhere
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", html)
    await owner.json("GET", f"{path}?format=xml", 422)
