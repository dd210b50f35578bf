// Shaping a comparison for the screen: overlays grouped per sensor on one offset axis.
import type { Comparison, OverlaySeries } from "../../api/models";
import type { Aligned } from "../../components/charts/chartData";

export interface OverlayGroup {
  sensorName: string;
  unit: string;
  series: OverlaySeries[];
  data: Aligned;
}

/** One group per sensor name; x = seconds since each session's start, y = bucket average. */
export function overlayGroups(comparison: Comparison): OverlayGroup[] {
  const telemetry = comparison.telemetry;
  if (!telemetry) return [];
  const groups = new Map<string, OverlaySeries[]>();
  for (const series of telemetry.series) {
    const list = groups.get(series.sensor_name) ?? [];
    list.push(series);
    groups.set(series.sensor_name, list);
  }
  return [...groups.entries()].map(([sensorName, series]) => {
    const offsets = new Set<number>();
    for (const s of series) for (const b of s.buckets) offsets.add(b.offset_s);
    const xs = [...offsets].sort((a, b) => a - b);
    const column = new Map(xs.map((x, i) => [x, i]));
    const ys = series.map((s) => {
      const values: (number | null)[] = new Array(xs.length).fill(null);
      for (const b of s.buckets) values[column.get(b.offset_s)!] = b.avg;
      return values;
    });
    return { sensorName, unit: series[0]?.unit ?? "", series, data: [xs, ...ys] as Aligned };
  });
}

/** Runs whose value of a param differs from the baseline's (for highlighting cells). */
export function differsFromBaseline(values: Record<string, unknown>, runId: string, baselineId: string): boolean {
  return JSON.stringify(values[runId] ?? null) !== JSON.stringify(values[baselineId] ?? null);
}
