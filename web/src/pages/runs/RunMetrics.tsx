// Metrics logged by the run (SDK, scripts): a summary per name and a chart per series, each
// downsampled by the api into step buckets with exact min and max.
import { useQuery } from "@tanstack/react-query";
import { useMemo } from "react";
import { backend } from "../../api/endpoints";
import type { MetricSeries } from "../../api/models";
import { Chart, colourAt } from "../../components/charts/Chart";
import type { Aligned } from "../../components/charts/chartData";
import { ChartIcon } from "../../components/icons";
import { EmptyState, SkeletonRows } from "../../components/ui";
import { formatNumber } from "../../lib/format";

const POINTS = 400;

export function RunMetrics({ runId, live }: { runId: string; live: boolean }) {
  const summary = useQuery({
    queryKey: ["runs", runId, "metrics", "summary"],
    queryFn: () => backend.runs.metricsSummary(runId),
    refetchInterval: live ? 10_000 : false,
  });
  const series = useQuery({
    queryKey: ["runs", runId, "metrics", "series"],
    queryFn: () => backend.runs.metrics(runId, POINTS),
    enabled: (summary.data?.items.length ?? 0) > 0,
    refetchInterval: live ? 10_000 : false,
  });
  const items = summary.data?.items ?? [];
  return (
    <section className="card" aria-labelledby="metrics-title">
      <div className="card-header">
        <div>
          <h2 id="metrics-title">Metrics</h2>
          <p className="muted small">
            Logged with <code>POST /runs/{"{id}"}/metrics</code> or the Python client; charts show each step bucket's
            average with its min–max range.
          </p>
        </div>
      </div>
      {summary.isPending ? (
        <SkeletonRows rows={2} />
      ) : items.length === 0 ? (
        <EmptyState icon={<ChartIcon />} title="No metrics logged">
          Log values such as loss or accuracy per step from your script; they are charted here.
        </EmptyState>
      ) : (
        <>
          <div className="table-wrap">
            <table className="table" data-testid="metrics-table">
              <thead>
                <tr>
                  <th scope="col">Metric</th>
                  <th scope="col" className="num">Last</th>
                  <th scope="col" className="num">Min</th>
                  <th scope="col" className="num">Max</th>
                  <th scope="col" className="num">Mean</th>
                  <th scope="col" className="num">Steps</th>
                  <th scope="col" className="num">Points</th>
                </tr>
              </thead>
              <tbody>
                {items.map((m) => (
                  <tr key={m.name} data-testid="metric-row" data-name={m.name}>
                    <td className="mono">{m.name}</td>
                    <td className="num strong">{formatNumber(m.last)}</td>
                    <td className="num">{formatNumber(m.min)}</td>
                    <td className="num">{formatNumber(m.max)}</td>
                    <td className="num">{formatNumber(m.avg)}</td>
                    <td className="num">
                      {m.first_step ?? "—"}–{m.last_step ?? "—"}
                    </td>
                    <td className="num">{formatNumber(m.count)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <div className="metric-grid card-body">
            {(series.data?.series ?? []).map((s, i) => (
              <MetricChart key={s.name} series={s} index={i} />
            ))}
          </div>
        </>
      )}
    </section>
  );
}

export function metricColumns(series: MetricSeries): Aligned {
  return [
    series.buckets.map((b) => b.step),
    series.buckets.map((b) => b.avg),
    series.buckets.map((b) => b.min),
    series.buckets.map((b) => b.max),
  ];
}

function MetricChart({ series, index }: { series: MetricSeries; index: number }) {
  const data = useMemo(() => metricColumns(series), [series]);
  const colour = colourAt(index);
  const chartSeries = useMemo(
    () => [
      { label: series.name, color: colour, points: series.buckets.length < 3 },
      { label: "min", color: colour, faint: true },
      { label: "max", color: colour, faint: true },
    ],
    [series.name, colour, series.buckets.length],
  );
  return (
    <figure className="metric-chart">
      <figcaption className="mono">{series.name}</figcaption>
      <Chart
        series={chartSeries}
        fills={[[3, 2]]}
        data={data}
        time={false}
        xLabel="step"
        height={180}
        testId="metric-chart"
        ariaLabel={`Metric ${series.name} by step`}
      />
    </figure>
  );
}
