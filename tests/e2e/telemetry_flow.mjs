// Scenario: sign in → create a project, an experiment, a run and a sensor (token shown once) →
// attach the sensor → start a capture (a double click starts one session) → send points with
// the sensor token → the live chart draws them (asserted on the chart's data), pause/resume,
// panels added and reordered by drag and drop → stop: the summary counts the points → the
// session in history → a timed capture stops itself → bulk tags → compare two runs → the
// sensor monitor and a token rotation.
import {
  BASE_URL,
  PASSWORD,
  apiCall,
  check,
  registerViaApi,
  runScenario,
  screenshot,
  step,
  unique,
} from "./lib.mjs";

const user = { name: "Cleo Capture", email: `${unique("cleo")}@example.com` };
const projectName = `Pitot array ${unique("p").slice(-4)}`;

/** Waits until a chart (by test id) shows at least `points` points and the given last value. */
async function chartShows(page, testId, { points, last }) {
  const handle = await page.waitForFunction(
    ({ testId, points, last }) => {
      const el = document.querySelector(`[data-testid="${testId}"]`);
      if (!el) return false;
      const n = Number(el.dataset.points ?? 0);
      const ok = n >= points && (last === undefined || el.dataset.last === String(last));
      return ok ? { n, last: el.dataset.last } : false;
    },
    { testId, points, last },
    { timeout: 15_000 },
  );
  return handle.jsonValue();
}

/** Points 50 ms apart from `startMs`. */
function pointsFrom(startMs, values) {
  return values.map((value, i) => ({ ts: new Date(startMs + i * 50).toISOString(), value }));
}

await runScenario("telemetry_flow", async ({ page }) => {
  const toast = (text) => page.getByTestId("toast").filter({ hasText: text });
  const api = await registerViaApi(user);

  step("sign in");
  await page.goto(`${BASE_URL}/login`);
  await page.getByLabel("Email").fill(user.email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/projects$/);

  step("create a project");
  await page.getByRole("button", { name: "New project" }).click();
  await page.getByLabel("Name").fill(projectName);
  await page.getByRole("button", { name: "Create project" }).click();
  await page.waitForURL(/\/projects\/[0-9a-f-]{36}$/);
  const projectId = page.url().split("/").pop();
  await page.getByText("No experiments yet").waitFor();

  step("create an experiment");
  await page.getByRole("button", { name: "New experiment" }).click();
  await page.getByLabel("Experiment name").fill("Probe calibration");
  await page.getByLabel("Type").fill("calibration");
  await page.getByLabel("Description").fill("Pitot probes against the reference at 5 to 40 m/s.");
  await page.getByLabel("Tags", { exact: true }).fill("wind-tunnel");
  await page.keyboard.press("Enter");
  await page.getByRole("button", { name: "Create experiment" }).click();
  await page.waitForURL(/\/experiments\/[0-9a-f-]{36}$/);
  const experimentUrl = page.url();
  const experimentId = experimentUrl.split("/").pop();
  await page.getByRole("heading", { level: 1, name: "Probe calibration" }).waitFor();

  step("register a sensor: its token is shown once");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Sensors" }).click();
  await page.waitForURL(new RegExp(`/projects/${projectId}/sensors$`));
  await page.getByRole("button", { name: "New sensor" }).click();
  await page.getByLabel("Sensor name").fill("pitot-1");
  await page.getByLabel("Type").fill("pressure");
  await page.getByLabel("Input unit").fill("mV");
  await page.getByLabel("Display unit").fill("Pa");
  await page.getByLabel("Expected rate (Hz)").fill("10");
  await page.getByRole("button", { name: "Register sensor" }).click();
  const tokenBox = page.getByTestId("new-sensor-token-value");
  await tokenBox.waitFor();
  const sensorToken = (await tokenBox.textContent()).trim();
  check(sensorToken.length > 30, `a sensor token is shown (${sensorToken.slice(0, 6)}…)`);
  await page.getByRole("button", { name: "Copy the sensor token" }).waitFor();
  const sensorRow = page.locator('[data-testid="sensor-row"][data-name="pitot-1"]');
  check((await sensorRow.getAttribute("data-status")) === "never_seen", "a new sensor was never seen");
  const sensorId = (await sensorRow.getByRole("link", { name: "pitot-1" }).getAttribute("href")).split("/").pop();

  step("create a run with parameters");
  await page.goto(experimentUrl);
  await page.getByRole("button", { name: "New run" }).click();
  await page.getByLabel("Run name").fill("baseline");
  await page.getByLabel("Parameters").fill("lr = 0.01\nprobe = A\nspeed_ms = 20");
  await page.getByRole("button", { name: "Create run" }).click();
  await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/);
  const runUrl = page.url();
  const runId = runUrl.split("/").pop();
  await page.getByTestId("run-params").getByText("speed_ms").waitFor();

  step("attach the sensor to the run");
  await page.getByRole("button", { name: "Edit sensors" }).click();
  await page.getByTestId("run-sensors").getByLabel(/pitot-1/).check();
  await page.getByRole("button", { name: "Save sensors" }).click();
  await page.locator('[data-testid="run-sensor"][data-name="pitot-1"]').waitFor();

  step("start a capture: disabled while in flight, a double click starts one session");
  let startRequests = 0;
  const slowStart = async (route) => {
    if (route.request().method() === "POST") {
      startRequests += 1;
      await new Promise((resolve) => setTimeout(resolve, 700)); // a slow network
    }
    await route.continue();
  };
  await page.route(/\/runs\/[0-9a-f-]+\/capture-sessions$/, slowStart);
  await page.getByRole("button", { name: "Start capture" }).dblclick();
  const starting = page.getByRole("button", { name: "Starting…" });
  await starting.waitFor();
  check(await starting.isDisabled(), "the button is disabled while the start is in flight");
  await page.getByTestId("capture-running").waitFor();
  await page.unroute(/\/runs\/[0-9a-f-]+\/capture-sessions$/, slowStart);
  check(startRequests === 1, `one start request for a double click: ${startRequests}`);
  await page.getByTestId("capture-elapsed").waitFor();
  const sessions = await api.call("GET", `/runs/${runId}/capture-sessions`);
  check(sessions.body.items.length === 1, `one capture session: ${sessions.body.items.length}`);
  check(sessions.body.items[0].status === "running", "the session runs");
  await page.getByTestId("status-badge").filter({ hasText: "running" }).first().waitFor();

  step("a second sensor, registered through the API, sends temperatures");
  const temp = await api.call("POST", `/projects/${projectId}/sensors`, {
    name: "temp-1",
    type: "temperature",
    input_unit: "°C",
    display_unit: "°C",
    expected_rate_hz: 10,
  });
  check(temp.status === 201, `second sensor: ${temp.status}`);

  step("the live viewer draws points sent with the sensor token");
  await page.getByRole("link", { name: "Live viewer" }).click();
  await page.waitForURL(/\/live\?sensors=/);
  await page.locator('[data-testid="stream-state"][data-state="live"]').waitFor();
  // Points belong to the capture when their timestamps fall inside its window.
  const t0 = Date.parse(sessions.body.items[0].started_at) + 100;
  const first = await apiCall("POST", "/telemetry", {
    token: sensorToken,
    body: { points: pointsFrom(t0, Array.from({ length: 50 }, (_, i) => 100 + i)) },
  });
  check(first.status === 202 && first.body.accepted === 50, `50 points accepted: ${JSON.stringify(first.body)}`);
  let shown = await chartShows(page, "live-chart", { points: 50, last: 149 });
  step(`  live chart: ${shown.n} points, last ${shown.last}`);
  const second = await apiCall("POST", "/telemetry", {
    token: sensorToken,
    body: { points: pointsFrom(t0 + 2500, Array.from({ length: 10 }, (_, i) => 200 + i)) },
  });
  check(second.body.accepted === 10, "10 more points accepted");
  shown = await chartShows(page, "live-chart", { points: 60, last: 209 });
  step(`  after a second batch (over SSE): ${shown.n} points, last ${shown.last}`);

  step("pause holds the chart; resume catches up");
  await page.getByRole("button", { name: "Pause" }).click();
  await page.locator('[data-testid="stream-state"][data-state="paused"]').waitFor();
  await apiCall("POST", "/telemetry", {
    token: sensorToken,
    body: { points: pointsFrom(t0 + 3000, [300, 301, 302, 303, 304]) },
  });
  await page.waitForTimeout(800);
  const paused = await page.getByTestId("live-chart").getAttribute("data-points");
  check(paused === "60", `paused chart keeps 60 points: ${paused}`);
  await page.getByRole("button", { name: "Resume" }).click();
  shown = await chartShows(page, "live-chart", { points: 65, last: 304 });

  step("add a panel and reorder the panels by drag and drop");
  await page.getByRole("button", { name: "Add panel" }).click();
  const panels = page.getByTestId("live-panel");
  await panels.nth(1).waitFor();
  const idsBefore = await panels.evaluateAll((nodes) => nodes.map((n) => n.dataset.panelId));
  await panels.nth(1).getByRole("button", { name: /^Sensors/ }).click();
  await panels.nth(1).getByLabel(/temp-1/).check();
  await page.keyboard.press("Escape");
  const temps = await apiCall("POST", "/telemetry", {
    token: temp.body.token,
    body: { points: pointsFrom(t0, Array.from({ length: 40 }, (_, i) => Math.round((21 + Math.sin(i / 5)) * 100) / 100)) },
  });
  check(temps.body.accepted === 40, "40 temperatures accepted");
  await panels.nth(1).getByTestId("drag-handle").dragTo(panels.nth(0));
  const idsAfter = await panels.evaluateAll((nodes) => nodes.map((n) => n.dataset.panelId));
  check(idsAfter[0] === idsBefore[1] && idsAfter[1] === idsBefore[0], `panels swapped: ${idsBefore} → ${idsAfter}`);
  const lastTemp = String(Math.round((21 + Math.sin(39 / 5)) * 100) / 100);
  await page.waitForFunction(
    (expected) => document.querySelector('[data-testid="live-chart"]')?.dataset.last === expected,
    lastTemp,
  );
  const panelCharts = await page
    .getByTestId("live-chart")
    .evaluateAll((nodes) => nodes.map((n) => [Number(n.dataset.points), n.dataset.last]));
  check(
    JSON.stringify(panelCharts) === JSON.stringify([[40, lastTemp], [65, "304"]]),
    `temperatures first, then pressures: ${JSON.stringify(panelCharts)}`,
  );
  await screenshot(page, "live-viewer");

  step("stop the capture: the summary counts the points");
  await page.goto(runUrl);
  await page.getByTestId("run-live-chart").waitFor();
  await chartShows(page, "run-live-chart", { points: 65, last: 304 });
  await screenshot(page, "run-live");
  await page.getByRole("button", { name: "Stop capture" }).click();
  await toast("Capture stopped").waitFor();
  const row = page.locator('[data-testid="session-row"][data-ordinal="1"]');
  await page.locator('[data-testid="session-row"][data-ordinal="1"][data-status="succeeded"]').waitFor();
  const recorded = (await row.getByTestId("session-points").textContent()).trim();
  check(recorded === "65", `the summary counts 65 points: ${recorded}`);
  await row.getByRole("button", { name: "Sensors" }).click();
  await page.getByTestId("session-sensors").getByText("pitot-1").waitFor();
  await chartShows(page, "run-history-chart", { points: 1 });
  await screenshot(page, "run-capture");

  step("the session in history (downsampled, with the capture band)");
  await row.getByRole("link", { name: "View session 1 in history" }).click();
  await page.waitForURL(/mode=history/);
  const history = await chartShows(page, "panel-history-chart", { points: 2 });
  step(`  history chart: ${history.n} buckets`);
  await screenshot(page, "history");

  step("a second run: a timed capture stops by itself");
  const run2 = await api.call("POST", `/experiments/${experimentId}/runs`, {
    name: "faster-probe",
    params: { lr: 0.02, probe: "A", speed_ms: 30 },
    tags: ["candidate"],
  });
  check(run2.status === 201, `second run: ${run2.status}`);
  await page.goto(`${BASE_URL}/runs/${run2.body.id}`);
  await page.getByLabel("Duration").fill("3s");
  await page.getByRole("button", { name: "Start capture" }).click();
  await page.getByTestId("capture-countdown").waitFor();
  await toast("Capture stopped").waitFor({ timeout: 12_000 });
  await page.locator('[data-testid="session-row"][data-status="succeeded"]').waitFor();

  step("metrics for both runs, then bulk tags and a comparison");
  for (const [id, scale] of [[runId, 1], [run2.body.id, 0.8]]) {
    const logged = await api.call("POST", `/runs/${id}/metrics`, {
      metrics: Array.from({ length: 20 }, (_, step) => ({ name: "loss", step, value: scale / (step + 1) })),
    });
    check(logged.status === 200 || logged.status === 201, `metrics logged: ${logged.status}`);
  }
  await page.goto(experimentUrl);
  const runRows = page.getByTestId("run-row");
  await runRows.nth(1).waitFor();
  await page.getByLabel("Select all runs").check();
  await page.getByLabel("Tags to add or remove").fill("reviewed");
  await page.getByRole("button", { name: "Add tags" }).click();
  await toast("Tags added").waitFor();
  await page.locator('[data-testid="run-row"][data-name="baseline"] .tag', { hasText: "reviewed" }).waitFor();
  await page.locator('[data-testid="run-row"][data-name="faster-probe"] .tag', { hasText: "reviewed" }).waitFor();
  await page.getByLabel("Select run baseline").check();
  await page.getByLabel("Select run faster-probe").check();
  await screenshot(page, "experiment-runs");
  await page.getByTestId("bulk-bar").getByRole("button", { name: "Compare" }).click();
  await page.waitForURL(/\/comparisons\/[0-9a-f-]{36}$/);
  const lr = page.locator('[data-testid="param-row"][data-key="lr"]');
  await lr.waitFor();
  check((await lr.getAttribute("data-differs")) === "true", "lr differs");
  check(
    (await page.locator('[data-testid="param-row"][data-key="probe"]').getAttribute("data-differs")) === "false",
    "probe is the same",
  );
  const loss = page.locator('[data-testid="metric-delta-row"][data-name="loss"]');
  const lasts = await loss.getByTestId("metric-last").allTextContents();
  check(JSON.stringify(lasts) === JSON.stringify(["0.05", "0.04"]), `last loss per run: ${lasts}`);
  const delta = (await loss.getByTestId("metric-delta").textContent()).trim();
  check(delta.startsWith("−0.01") && delta.includes("−20.0 %"), `loss delta: ${delta}`);
  await page.getByTestId("overlay-chart").first().waitFor();
  await screenshot(page, "compare");

  step("the sensor monitor: online, points per minute, heartbeat");
  const beat = await apiCall("POST", "/telemetry", {
    token: sensorToken,
    body: { points: pointsFrom(Date.now() - 250, [310, 311, 312, 313, 314]) },
  });
  check(beat.body.accepted === 5, "a fresh heartbeat");
  await page.goto(`${BASE_URL}/projects/${projectId}/sensors`);
  const monitored = page.locator('[data-testid="sensor-row"][data-name="pitot-1"]');
  await page.locator('[data-testid="sensor-row"][data-name="pitot-1"][data-status="online"]').waitFor({ timeout: 20_000 });
  const perMinute = Number((await monitored.getByTestId("points-per-minute").textContent()).replace(/,/g, ""));
  // A sliding estimate over the current and the previous minute: positive, not exact.
  check(perMinute > 0, `points in the last minute: ${perMinute}`);
  await page.waitForFunction(
    () =>
      Number(
        document.querySelector('[data-testid="sensor-row"][data-name="pitot-1"] [data-testid="sparkline"]')?.dataset
          .total ?? 0,
      ) >= 70,
    null,
    { timeout: 15_000 },
  );
  await screenshot(page, "sensors");

  step("rotate the sensor's token: the new one is shown once, the old one is refused");
  await monitored.getByRole("link", { name: "pitot-1" }).click();
  await page.waitForURL(new RegExp(`/sensors/${sensorId}$`));
  await chartShows(page, "sensor-live-chart", { points: 70, last: 314 });
  await page.getByRole("button", { name: "Rotate token" }).click();
  await page.getByRole("button", { name: "Rotate now" }).click();
  const rotated = (await page.getByTestId("new-sensor-token-value").textContent()).trim();
  check(rotated !== sensorToken && rotated.length > 30, "a new token is shown");
  const old = await apiCall("POST", "/telemetry", { token: sensorToken, body: { points: pointsFrom(Date.now(), [1]) } });
  check(old.status === 401, `the old token is refused: ${old.status}`);
  const fresh = await apiCall("POST", "/telemetry", { token: rotated, body: { points: pointsFrom(Date.now(), [1]) } });
  check(fresh.status === 202, `the new token works: ${fresh.status}`);

  step("a conversion profile: the api's validation message, then a valid one activated");
  await page.getByRole("button", { name: "New profile" }).click();
  await page.getByLabel("Slope a").fill("two");
  await page.getByRole("button", { name: "Create draft" }).click();
  await page.getByText("A must be a finite number").waitFor();
  await page.getByLabel("Slope a").fill("2.5");
  await page.getByLabel("Offset b").fill("-1");
  await page.getByRole("button", { name: "Create draft" }).click();
  const profile = page.locator('[data-testid="profile-row"][data-version="1"]');
  await profile.getByText("y = 2.5·x − 1").waitFor();
  await profile.getByRole("button", { name: "Activate" }).click();
  await page.locator('[data-testid="profile-row"][data-version="1"][data-status="active"]').waitFor();
  await screenshot(page, "sensor-page");
});
