// Comparing runs: pick them (project → experiment → runs), then the comparison: parameters side
// by side with differences highlighted, metric deltas against a baseline run, and the runs'
// capture sessions' telemetry overlaid on the time since each session started.
import { useMutation, useQuery } from "@tanstack/react-query";
import { useEffect, useMemo, useRef, useState } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router-dom";
import { isApiError } from "../../api/client";
import { backend } from "../../api/endpoints";
import type { Comparison } from "../../api/models";
import { StatusBadge, Tags, jsonText } from "../../components/bits";
import { Chart, colourAt } from "../../components/charts/Chart";
import { CompareIcon, DownloadIcon } from "../../components/icons";
import { toastError } from "../../components/toastStore";
import { EmptyState, Loading, PageHeader } from "../../components/ui";
import { formatBucket, formatDateTime, formatDelta, formatDuration, formatNumber } from "../../lib/format";
import { lastProject } from "../../lib/hooks";
import { differsFromBaseline, overlayGroups } from "./compareData";

/** `/compare?runs=a,b[&baseline=a]`: creates the comparison, then shows it at /comparisons/:id. */
export function ComparePage() {
  const [params] = useSearchParams();
  const runIds = (params.get("runs") ?? "").split(",").filter(Boolean);
  const baseline = params.get("baseline");
  const navigate = useNavigate();
  const started = useRef(false);
  const create = useMutation({
    mutationFn: () => backend.comparisons.create({ run_ids: runIds, baseline_run_id: baseline || null }),
    meta: { toast: false },
    onSuccess: (comparison) => navigate(`/comparisons/${comparison.id}`, { replace: true }),
    onError: (error) => toastError(error, "Could not compare these runs"),
  });
  useEffect(() => {
    if (runIds.length >= 2 && !started.current) {
      started.current = true;
      create.mutate();
    }
  });
  if (runIds.length >= 2 && !create.isError) return <Loading label="Comparing runs…" />;
  return <RunPicker />;
}

function RunPicker() {
  const navigate = useNavigate();
  const projects = useQuery({ queryKey: ["projects", "list", "all"], queryFn: () => backend.projects.list({ limit: 200 }) });
  const [projectId, setProjectId] = useState<string>("");
  const [experimentId, setExperimentId] = useState<string>("");
  const [chosen, setChosen] = useState<string[]>([]);
  useEffect(() => {
    if (projectId || !projects.data?.items.length) return;
    const last = lastProject();
    setProjectId(projects.data.items.find((p) => p.id === last)?.id ?? projects.data.items[0]!.id);
  }, [projects.data, projectId]);
  const experiments = useQuery({
    queryKey: ["projects", projectId, "experiments", "picker"],
    queryFn: () => backend.experiments.list(projectId, { limit: 200 }),
    enabled: Boolean(projectId),
  });
  const runs = useQuery({
    queryKey: ["projects", projectId, "runs", "picker", experimentId],
    queryFn: () => backend.runs.search(projectId, { experiment_id: experimentId || undefined, limit: 200 }),
    enabled: Boolean(projectId),
  });
  const toggle = (id: string) => setChosen((c) => (c.includes(id) ? c.filter((x) => x !== id) : [...c, id]));
  return (
    <div className="page">
      <PageHeader title="Compare runs" subtitle="Parameters side by side, metric deltas against a baseline, and telemetry overlaid by time since capture start." />
      <section className="card" aria-labelledby="pick-title">
        <div className="card-header">
          <h2 id="pick-title">Choose runs</h2>
          <button
            type="button"
            className="btn btn-primary"
            disabled={chosen.length < 2}
            onClick={() => navigate(`/compare?runs=${chosen.join(",")}`)}
          >
            <CompareIcon />
            Compare {chosen.length >= 2 ? `${chosen.length} runs` : ""}
          </button>
        </div>
        <div className="filters">
          <label className="visually-hidden" htmlFor="pick-project">
            Project
          </label>
          <select id="pick-project" className="select compact" value={projectId} onChange={(e) => { setProjectId(e.target.value); setExperimentId(""); setChosen([]); }}>
            {(projects.data?.items ?? []).map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
              </option>
            ))}
          </select>
          <label className="visually-hidden" htmlFor="pick-experiment">
            Experiment
          </label>
          <select id="pick-experiment" className="select compact" value={experimentId} onChange={(e) => setExperimentId(e.target.value)}>
            <option value="">All experiments</option>
            {(experiments.data?.items ?? []).map((x) => (
              <option key={x.id} value={x.id}>
                {x.name}
              </option>
            ))}
          </select>
          <span className="muted small">The first run you tick is the baseline.</span>
        </div>
        {(runs.data?.items.length ?? 0) === 0 ? (
          <EmptyState icon={<CompareIcon />} title={runs.isPending ? "Loading runs…" : "No runs here"}>
            Runs appear here once experiments have them.
          </EmptyState>
        ) : (
          <ul className="pick-list">
            {runs.data!.items.map((run) => (
              <li key={run.id}>
                <label className="check-row">
                  <input type="checkbox" checked={chosen.includes(run.id)} onChange={() => toggle(run.id)} />
                  <span className="grow">
                    {run.name}
                    {chosen[0] === run.id && <span className="badge baseline">baseline</span>}
                  </span>
                  <StatusBadge status={run.status} />
                  <span className="muted small">{formatDateTime(run.created_at)}</span>
                </label>
              </li>
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}

export function ComparisonPage() {
  const { comparisonId = "" } = useParams();
  const comparison = useQuery({
    queryKey: ["comparisons", comparisonId],
    queryFn: () => backend.comparisons.get(comparisonId),
    meta: { silent: true },
  });
  if (comparison.isPending) return <Loading label="Loading the comparison…" />;
  if (comparison.isError) {
    return (
      <div className="page">
        <div className="card">
          <EmptyState icon={<CompareIcon />} title="Comparison not found" action={<Link className="btn" to="/compare">Compare runs</Link>}>
            {isApiError(comparison.error) && comparison.error.status === 404
              ? "It does not exist, or you cannot read one of its runs."
              : comparison.error.message}
          </EmptyState>
        </div>
      </div>
    );
  }
  return <ComparisonView comparison={comparison.data} />;
}

function ComparisonView({ comparison }: { comparison: Comparison }) {
  const navigate = useNavigate();
  const runs = comparison.runs;
  const names = new Map(runs.map((r) => [r.id, r.name]));
  const baseline = comparison.baseline_run_id;
  const [onlyDiffs, setOnlyDiffs] = useState(false);
  const params = onlyDiffs ? comparison.params.filter((p) => p.differs) : comparison.params;
  const groups = useMemo(() => overlayGroups(comparison), [comparison]);
  const differing = comparison.params.filter((p) => p.differs).length;
  return (
    <div className="page wide">
      <PageHeader
        breadcrumb={<Link to="/compare">Compare runs</Link>}
        title={`Comparing ${runs.length} runs`}
        subtitle={`Computed ${formatDateTime(comparison.computed_at)} · baseline ${names.get(baseline) ?? "—"}`}
        actions={
          <span className="export-links" role="group" aria-label="Export the comparison">
            <a className="btn btn-sm" href={backend.comparisons.exportUrl(comparison.id, "csv")} download>
              <DownloadIcon />
              CSV
            </a>
            <a className="btn btn-sm" href={backend.comparisons.exportUrl(comparison.id, "json")} download>
              <DownloadIcon />
              JSON
            </a>
            <a className="btn btn-sm" href={backend.comparisons.exportUrl(comparison.id, "html")} download>
              <DownloadIcon />
              HTML report
            </a>
          </span>
        }
      />
      <section className="card" aria-labelledby="cmp-runs-title">
        <div className="card-header">
          <h2 id="cmp-runs-title">Runs</h2>
          <span className="muted small">Pick another baseline to see the deltas against it.</span>
        </div>
        <div className="table-wrap">
          <table className="table" data-testid="compare-runs">
            <thead>
              <tr>
                <th scope="col">Run</th>
                <th scope="col">Experiment</th>
                <th scope="col">Status</th>
                <th scope="col">Duration</th>
                <th scope="col">Tags</th>
                <th scope="col">Baseline</th>
              </tr>
            </thead>
            <tbody>
              {runs.map((run, i) => (
                <tr key={run.id}>
                  <td>
                    <span className="swatch" style={{ background: colourAt(i) }} aria-hidden="true" />
                    <Link to={`/runs/${run.id}`} className="row-title">
                      {run.name}
                    </Link>
                  </td>
                  <td>{run.experiment_name}</td>
                  <td>
                    <StatusBadge status={run.status} />
                  </td>
                  <td>{formatDuration(run.duration_seconds)}</td>
                  <td>
                    <Tags tags={run.tags} />
                  </td>
                  <td>
                    <input
                      type="radio"
                      name="baseline"
                      aria-label={`Use ${run.name} as the baseline`}
                      checked={run.id === baseline}
                      onChange={() => navigate(`/compare?runs=${comparison.run_ids.join(",")}&baseline=${run.id}`)}
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>

      <section className="card" aria-labelledby="cmp-params-title">
        <div className="card-header">
          <div>
            <h2 id="cmp-params-title">Parameters</h2>
            <p className="muted small">
              {differing} of {comparison.params.length} differ; cells that differ from the baseline are highlighted.
            </p>
          </div>
          <label className="check-row inline">
            <input type="checkbox" checked={onlyDiffs} onChange={(e) => setOnlyDiffs(e.target.checked)} />
            Only differences
          </label>
        </div>
        {params.length === 0 ? (
          <p className="muted card-body">{onlyDiffs ? "Every parameter is the same." : "No parameters."}</p>
        ) : (
          <div className="table-wrap">
            <table className="table compare-table" data-testid="params-diff">
              <thead>
                <tr>
                  <th scope="col">Parameter</th>
                  {runs.map((run) => (
                    <th scope="col" key={run.id}>
                      {run.name}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {params.map((row) => (
                  <tr key={row.key} className={row.differs ? "differs" : ""} data-testid="param-row" data-key={row.key} data-differs={row.differs}>
                    <th scope="row" className="mono">
                      {row.key}
                    </th>
                    {runs.map((run) => {
                      const changed = run.id !== baseline && differsFromBaseline(row.values, run.id, baseline);
                      const v = row.values[run.id];
                      return (
                        <td key={run.id} className={`mono${changed ? " changed" : ""}`} data-changed={changed}>
                          {v === null || v === undefined ? <span className="subtle">—</span> : jsonText(v)}
                        </td>
                      );
                    })}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <section className="card" aria-labelledby="cmp-metrics-title">
        <div className="card-header">
          <div>
            <h2 id="cmp-metrics-title">Metrics</h2>
            <p className="muted small">Last value per run, with its difference to the baseline's last value.</p>
          </div>
        </div>
        {comparison.metrics.length === 0 ? (
          <p className="muted card-body">None of these runs logged metrics.</p>
        ) : (
          <div className="table-wrap">
            <table className="table compare-table" data-testid="metric-deltas">
              <thead>
                <tr>
                  <th scope="col">Metric</th>
                  {runs.map((run) => (
                    <th scope="col" key={run.id}>
                      {run.name}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {comparison.metrics.map((metric) => (
                  <tr key={metric.name} data-testid="metric-delta-row" data-name={metric.name}>
                    <th scope="row" className="mono">
                      {metric.name}
                    </th>
                    {runs.map((run) => {
                      const entry = metric.runs[run.id];
                      if (!entry) {
                        return (
                          <td key={run.id}>
                            <span className="subtle">—</span>
                          </td>
                        );
                      }
                      const delta = entry.delta?.last ?? null;
                      const tone = run.id === baseline || !delta ? "" : delta > 0 ? "up" : "down";
                      return (
                        <td key={run.id} data-run={run.name}>
                          <span className="num strong" data-testid="metric-last">
                            {formatNumber(entry.last)}
                          </span>
                          {run.id === baseline ? (
                            <span className="badge baseline">baseline</span>
                          ) : (
                            <span className={`delta ${tone}`} data-testid="metric-delta">
                              {formatDelta(delta, entry.delta_pct_last)}
                            </span>
                          )}
                        </td>
                      );
                    })}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <section className="card" aria-labelledby="cmp-telemetry-title">
        <div className="card-header">
          <div>
            <h2 id="cmp-telemetry-title">Telemetry overlays</h2>
            <p className="muted small">
              Each capture session's physical values on the time since it started
              {comparison.telemetry?.bucket_ms ? `, in ${formatBucket(comparison.telemetry.bucket_ms)} buckets` : ""}.
              {comparison.telemetry?.truncated ? ` Showing the first sessions of ${comparison.telemetry.sessions_total}.` : ""}
            </p>
          </div>
        </div>
        {groups.length === 0 ? (
          <p className="muted card-body">These runs have no captured telemetry.</p>
        ) : (
          <div className="card-body metric-grid">
            {groups.map((group) => (
              <figure key={group.sensorName} className="metric-chart">
                <figcaption>
                  {group.sensorName} {group.unit && <span className="muted">({group.unit})</span>}
                </figcaption>
                <Chart
                  series={group.series.map((s) => ({
                    label: `${names.get(s.run_id) ?? "run"} #${s.session_ordinal}`,
                    color: colourAt(runs.findIndex((r) => r.id === s.run_id)),
                  }))}
                  data={group.data}
                  time={false}
                  xLabel="seconds since start"
                  height={200}
                  testId="overlay-chart"
                  ariaLabel={`${group.sensorName} across runs`}
                />
              </figure>
            ))}
          </div>
        )}
      </section>
    </div>
  );
}
