// The chart bench (/bench): (1) first render of one chart with 200,000 points, (2) 20 live
// panels fed 5,000 points/s in total through the live path (SSE event JSON → parse → LiveHub
// ring buffers → uPlot setData). Results go to the page and to window.__etpBench for the e2e
// bench (tests/e2e/bench.mjs). Query: ?points=&panels=&rate=&seconds=&auto=1
import { useEffect, useMemo, useRef, useState } from "react";
import { useSearchParams } from "react-router-dom";
import uPlot from "uplot";
import type { LivePointsEvent } from "../../api/models";
import { colourAt } from "../../components/charts/Chart";
import { PageHeader } from "../../components/ui";
import { LiveHub, type StreamOpener } from "../../lib/liveHub";
import { LiveChart } from "../../lib/useLive";

export interface BenchResults {
  staticPoints: number;
  staticRenderMs: number[];
  staticMedianMs: number;
  staticFrameMedianMs: number;
  panels: number;
  ratePerSecond: number;
  seconds: number;
  pointsSent: number;
  pointsRendered: number;
  maxLagMs: number;
  fps: number;
  flushes: number;
  avgFlushMs: number;
  maxFlushMs: number;
  mainThreadBusyPct: number;
  done: boolean;
}

declare global {
  interface Window {
    __etpBench?: BenchResults;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** 200k points of a noisy sine with spikes, as uPlot columns. */
function syntheticColumns(n: number): uPlot.AlignedData {
  const xs = new Float64Array(n);
  const ys = new Float64Array(n);
  const t0 = Date.now() / 1000 - n / 100;
  for (let i = 0; i < n; i++) {
    xs[i] = t0 + i / 100;
    ys[i] = Math.sin(i / 500) * 10 + Math.sin(i / 37) + (i % 9973 === 0 ? 25 : 0) + ((i * 7919) % 101) / 100;
  }
  return [xs, ys] as unknown as uPlot.AlignedData;
}

/** Construction → first draw done (ms), and → the next animation frame (layout included). */
function renderOnce(element: HTMLElement, data: uPlot.AlignedData): Promise<[number, number]> {
  return new Promise((resolve) => {
    element.innerHTML = "";
    const started = performance.now();
    let chart: uPlot | null = null;
    const opts: uPlot.Options = {
      width: element.clientWidth || 1000,
      height: 300,
      series: [{}, { label: "signal", stroke: colourAt(0), width: 1 }],
      scales: { x: { time: true } },
      hooks: {
        draw: [
          () => {
            const drawn = performance.now() - started;
            // The chart stays on the page (the screenshot shows it).
            requestAnimationFrame(() => resolve([drawn, performance.now() - started]));
          },
        ],
      },
    };
    chart = new uPlot(opts, data, element);
    void chart;
  });
}

export function BenchPage() {
  const [params] = useSearchParams();
  const points = Number(params.get("points") ?? 200_000);
  const panels = Number(params.get("panels") ?? 20);
  const rate = Number(params.get("rate") ?? 5000);
  const seconds = Number(params.get("seconds") ?? 10);
  const auto = params.get("auto") === "1";
  const staticBox = useRef<HTMLDivElement>(null);
  const [results, setResults] = useState<BenchResults | null>(null);
  const [phase, setPhase] = useState<"idle" | "static" | "live" | "done">("idle");
  const push = useRef<((event: LivePointsEvent) => void) | null>(null);
  const opener: StreamOpener = useMemo(
    () => (_target, _value, onPoints, onState) => {
      push.current = onPoints;
      onState({ kind: "live", since: Date.now() });
      return () => {
        push.current = null;
      };
    },
    [],
  );
  const hub = useMemo(() => new LiveHub({ open: opener, windowMs: 60_000, capacity: 20_000, frameMs: 100 }), [opener]);
  const sensorIds = useMemo(() => Array.from({ length: panels }, (_, i) => `bench-${i}`), [panels]);
  useEffect(() => {
    hub.connect({ sensorIds }, "raw");
    return () => hub.dispose();
  }, [hub, sensorIds]);

  const run = async () => {
    setPhase("static");
    const data = syntheticColumns(points);
    const renders: number[] = [];
    const drawnFrames: number[] = [];
    for (let i = 0; i < 3; i++) {
      const [drawn, frame] = await renderOnce(staticBox.current!, data);
      renders.push(drawn);
      drawnFrames.push(frame);
      await new Promise((r) => setTimeout(r, 50));
    }
    const partial: BenchResults = {
      staticPoints: points,
      staticRenderMs: renders.map((r) => Math.round(r * 10) / 10),
      staticMedianMs: Math.round(median(renders) * 10) / 10,
      staticFrameMedianMs: Math.round(median(drawnFrames) * 10) / 10,
      panels,
      ratePerSecond: rate,
      seconds,
      pointsSent: 0,
      pointsRendered: 0,
      maxLagMs: 0,
      fps: 0,
      flushes: 0,
      avgFlushMs: 0,
      maxFlushMs: 0,
      mainThreadBusyPct: 0,
      done: false,
    };
    setResults(partial);
    window.__etpBench = partial;

    setPhase("live");
    const tickMs = 50;
    const perTick = Math.round((rate * tickMs) / 1000 / panels) || 1;
    let sent = 0;
    let busy = 0;
    let frames = 0;
    let lastT = Date.now();
    const seq = new Array(panels).fill(0);
    const counting = { on: true };
    const frame = () => {
      frames++;
      if (counting.on) requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
    const flushBefore = { ...hub.stats };
    const started = performance.now();
    await new Promise<void>((resolve) => {
      const timer = window.setInterval(() => {
        const t0 = performance.now();
        const now = Date.now();
        for (let p = 0; p < panels; p++) {
          const pts: [number, number, null, string][] = [];
          for (let k = 0; k < perTick; k++) {
            const ts = (lastT + ((now - lastT) * (k + 1)) / perTick) * 1000 + p; // microseconds
            pts.push([Math.round(ts), Math.sin(ts / 2e6 + p) * 10 + p, null, "no_profile"]);
          }
          seq[p]++;
          // The same work as an SSE event: JSON text parsed, then handed to the hub.
          const text = JSON.stringify({ sensor_id: sensorIds[p], points: pts, seq: seq[p] });
          push.current?.(JSON.parse(text) as LivePointsEvent);
          sent += pts.length;
        }
        lastT = now;
        busy += performance.now() - t0;
        if (performance.now() - started >= seconds * 1000) {
          window.clearInterval(timer);
          resolve();
        }
      }, tickMs);
    });
    await new Promise((r) => setTimeout(r, 300)); // the last frame
    counting.on = false;
    const wall = performance.now() - started;
    const flushes = hub.stats.flushes - flushBefore.flushes;
    const flushMs = hub.stats.totalFlushMs - flushBefore.totalFlushMs;
    let rendered = 0;
    let maxLag = 0;
    for (const chart of document.querySelectorAll<HTMLElement>('[data-testid="bench-chart"]')) {
      rendered += Number(chart.dataset.points ?? 0);
    }
    for (const id of sensorIds) {
      const last = hub.ring(id).lastTime ?? 0;
      maxLag = Math.max(maxLag, lastT - last);
    }
    const final: BenchResults = {
      ...partial,
      pointsSent: sent,
      pointsRendered: rendered,
      maxLagMs: Math.round(maxLag),
      fps: Math.round((frames / wall) * 1000 * 10) / 10,
      flushes,
      avgFlushMs: flushes ? Math.round((flushMs / flushes) * 10) / 10 : 0,
      maxFlushMs: Math.round(hub.stats.maxFlushMs * 10) / 10,
      mainThreadBusyPct: Math.round(((busy + flushMs) / wall) * 1000) / 10,
      done: true,
    };
    setResults(final);
    window.__etpBench = final;
    setPhase("done");
  };

  useEffect(() => {
    if (auto) void run();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  const series = useMemo(() => sensorIds.map((id, i) => [{ label: id, color: colourAt(i) }]), [sensorIds]);
  return (
    <div className="page wide">
      <PageHeader
        title="Chart bench"
        subtitle={`${points.toLocaleString("en-US")} points in one chart, then ${panels} live panels at ${rate.toLocaleString("en-US")} points/s for ${seconds} s.`}
        actions={
          <button type="button" className="btn btn-primary" disabled={phase === "static" || phase === "live"} onClick={() => void run()}>
            {phase === "idle" || phase === "done" ? "Run bench" : "Running…"}
          </button>
        }
      />
      {results && (
        <section className="card" data-testid="bench-results" data-done={results.done}>
          <div className="card-header">
            <h2>Results</h2>
          </div>
          <dl className="definition card-body">
            <dt>{results.staticPoints.toLocaleString("en-US")} points, first render</dt>
            <dd>
              drawn in {results.staticMedianMs} ms (median of {results.staticRenderMs.join(", ")} ms), on the next frame after{" "}
              {results.staticFrameMedianMs} ms — target &lt; 300 ms
            </dd>
            {results.done && (
              <>
                <dt>Live: sent / on screen</dt>
                <dd>
                  {results.pointsSent.toLocaleString("en-US")} sent, {results.pointsRendered.toLocaleString("en-US")} in the charts, newest
                  point lag {results.maxLagMs} ms
                </dd>
                <dt>Live: rendering</dt>
                <dd>
                  {results.flushes} renders of all panels, avg {results.avgFlushMs} ms, max {results.maxFlushMs} ms; {results.fps} frames/s;
                  main thread busy {results.mainThreadBusyPct} %
                </dd>
              </>
            )}
          </dl>
        </section>
      )}
      <section className="card">
        <div className="card-header">
          <h2>{points.toLocaleString("en-US")} points</h2>
        </div>
        <div className="card-body">
          <div ref={staticBox} className="chart" data-testid="bench-static" />
        </div>
      </section>
      <div className="bench-grid">
        {sensorIds.map((id, i) => (
          <div key={id} className="card bench-panel">
            <LiveChart hub={hub} sensorIds={[id]} series={series[i]!} height={120} testId="bench-chart" ariaLabel={`Bench panel ${i + 1}`} />
          </div>
        ))}
      </div>
    </div>
  );
}
