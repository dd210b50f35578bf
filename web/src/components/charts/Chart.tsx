// A React wrapper around uPlot: the chart is created once per series layout; data goes in
// through setData (props or the imperative handle, for live appends without re-rendering React).
// The container carries what the chart currently shows (data-points, data-last, data-series) so
// tests and the bench can assert on rendered data.
import { forwardRef, useEffect, useImperativeHandle, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { captureBandsPlugin, type CaptureBand } from "./captureBands";
import type { Aligned } from "./chartData";

export interface ChartSeries {
  label: string;
  color?: string;
  unit?: string;
  /** Thin dashed line: the min/max edges of an envelope. */
  faint?: boolean;
  /** Draw as points only (sparse data, e.g. a single reading). */
  points?: boolean;
}

export interface ChartHandle {
  /** Replaces the data (the chart redraws; nothing is re-created). */
  setData(data: Aligned): void;
  plot(): uPlot | null;
}

export const PALETTE = ["#2f5bea", "#e0672b", "#14804a", "#8a3ffc", "#c8322a", "#0f8fa3", "#a15c07", "#b0306a"];

export function colourAt(index: number): string {
  return PALETTE[index % PALETTE.length]!;
}

interface ChartProps {
  series: ChartSeries[];
  data?: Aligned;
  height?: number;
  /** x is epoch seconds (default); otherwise a plain number (steps, offsets). */
  time?: boolean;
  xLabel?: string;
  /** The capture timeline drawn behind the series. */
  bands?: readonly CaptureBand[];
  /** Pairs of series indices (1-based, [upper, lower]) whose area is filled: min/max envelopes. */
  fills?: [number, number][];
  /** A fixed x range (seconds); null lets the data decide. */
  xRange?: [number, number] | null;
  /** Called with the range a user selected by dragging; the owner then sets `xRange`. */
  onZoom?: (from: number, to: number) => void;
  testId?: string;
  ariaLabel: string;
  /** Shown over the chart while it has no points. */
  emptyText?: string;
}

function lastValue(data: Aligned): number | null {
  const ys = data[1];
  if (!ys) return null;
  for (let i = ys.length - 1; i >= 0; i--) {
    const v = ys[i];
    if (v !== null && v !== undefined) return v;
  }
  return null;
}

function describe(element: HTMLElement, data: Aligned): void {
  element.dataset.points = String(data[0].length);
  element.dataset.series = String(data.length - 1);
  const last = lastValue(data);
  element.dataset.last = last === null ? "" : String(last);
}

const AXIS = {
  stroke: "#5d6878",
  grid: { stroke: "#eceff3", width: 1 },
  ticks: { stroke: "#e2e5ea", width: 1 },
  font: "11px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
};

export const Chart = forwardRef<ChartHandle, ChartProps>(function Chart(
  { series, data, height = 240, time = true, xLabel, bands, fills, xRange, onZoom, testId, ariaLabel, emptyText = "No data yet" },
  ref,
) {
  const container = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const bandsRef = useRef<readonly CaptureBand[]>(bands ?? []);
  const zoomRef = useRef(onZoom);
  const rangeRef = useRef(xRange ?? null);
  const dataRef = useRef<Aligned>(data ?? [[], ...series.map(() => [])]);
  bandsRef.current = bands ?? [];
  zoomRef.current = onZoom;
  rangeRef.current = xRange ?? null;
  const layout = JSON.stringify([series, height, time, xLabel, fills, Boolean(onZoom)]);

  const apply = (next: Aligned) => {
    dataRef.current = next;
    const chart = plot.current;
    const element = container.current;
    if (!chart || !element) return;
    const range = rangeRef.current;
    chart.batch(() => {
      chart.setData(next as uPlot.AlignedData, !range);
      if (range) chart.setScale("x", { min: range[0], max: range[1] });
    });
    describe(element, next);
  };

  useImperativeHandle(ref, () => ({ setData: apply, plot: () => plot.current }), []);

  useEffect(() => {
    const element = container.current;
    if (!element) return;
    const options: uPlot.Options = {
      width: element.clientWidth || 600,
      height,
      series: [
        { label: xLabel ?? (time ? "Time" : "x") },
        ...series.map((s, index) => ({
          label: s.unit ? `${s.label} (${s.unit})` : s.label,
          stroke: s.color ?? colourAt(index),
          width: s.faint ? 1 : 1.6,
          dash: s.faint ? [4, 3] : undefined,
          spanGaps: false,
          points: s.points ? { show: true, size: 5 } : { show: false },
          paths: s.points ? () => null : undefined,
        })),
      ],
      bands: fills?.map(([upper, lower]) => ({
        series: [upper, lower] as [number, number],
        fill: `${series[upper - 1]?.color ?? colourAt(upper - 1)}1f`,
      })),
      axes: [
        { ...AXIS, space: 70 },
        { ...AXIS, size: 64 },
      ],
      scales: { x: { time } },
      legend: { live: true },
      cursor: {
        drag: { x: true, y: false, setScale: !zoomRef.current },
        points: { size: 6 },
      },
      plugins: [captureBandsPlugin(() => bandsRef.current)],
      hooks: {
        setSelect: [
          (u) => {
            if (!zoomRef.current || u.select.width < 4) return;
            const from = u.posToVal(u.select.left, "x");
            const to = u.posToVal(u.select.left + u.select.width, "x");
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            zoomRef.current(from, to);
          },
        ],
      },
    };
    const chart = new uPlot(options, dataRef.current as uPlot.AlignedData, element);
    plot.current = chart;
    const range = rangeRef.current;
    if (range) chart.setScale("x", { min: range[0], max: range[1] });
    describe(element, dataRef.current);
    const observer = new ResizeObserver(() => {
      const width = element.clientWidth;
      if (width > 0 && width !== chart.width) chart.setSize({ width, height });
    });
    observer.observe(element);
    return () => {
      observer.disconnect();
      chart.destroy();
      plot.current = null;
    };
    // Re-created only when the series layout changes; data goes through setData.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [layout]);

  useEffect(() => {
    if (data) apply(data);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [data]);

  useEffect(() => {
    const chart = plot.current;
    if (!chart) return;
    if (xRange) chart.setScale("x", { min: xRange[0], max: xRange[1] });
    else apply(dataRef.current);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [xRange?.[0], xRange?.[1]]);

  useEffect(() => {
    plot.current?.redraw(false, false);
  }, [bands]);

  return (
    <div
      ref={container}
      className="chart"
      data-testid={testId ?? "chart"}
      role="figure"
      aria-label={ariaLabel}
      data-empty={emptyText}
    />
  );
});
