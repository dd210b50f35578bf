// The run's capture sessions: status, window, and the summary the stop barrier wrote (points,
// coverage against the expected rate, gaps), per sensor on demand.
import { Fragment, useState } from "react";
import { Link } from "react-router-dom";
import type { CaptureSession } from "../../api/models";
import { Meter, StatusBadge } from "../../components/bits";
import { HistoryIcon } from "../../components/icons";
import { EmptyState, SkeletonRows } from "../../components/ui";
import { formatDateTime, formatDuration, formatNumber, formatTime } from "../../lib/format";

export function CaptureSessions({
  sessions,
  loading,
  runId,
}: {
  sessions: CaptureSession[];
  loading: boolean;
  runId: string;
}) {
  const [open, setOpen] = useState<string | null>(null);
  const ordered = [...sessions].sort((a, b) => b.ordinal - a.ordinal);
  return (
    <section className="card" aria-labelledby="sessions-title">
      <div className="card-header">
        <div>
          <h2 id="sessions-title">Capture sessions</h2>
          <p className="muted small">Coverage compares the points stored with each sensor's expected rate.</p>
        </div>
      </div>
      {loading ? (
        <SkeletonRows rows={2} />
      ) : ordered.length === 0 ? (
        <EmptyState icon={<HistoryIcon />} title="No captures yet">
          Start a capture to record the attached sensors' data under this run.
        </EmptyState>
      ) : (
        <div className="table-wrap">
          <table className="table" data-testid="sessions-table">
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">Status</th>
                <th scope="col">Started</th>
                <th scope="col">Duration</th>
                <th scope="col">Points</th>
                <th scope="col">Coverage</th>
                <th scope="col">Gaps</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {ordered.map((session) => {
                const summary = session.summary;
                const gaps = summary?.sensors?.reduce((n, s) => n + (s.gap_count ?? 0), 0);
                const expanded = open === session.id;
                return (
                  <Fragment key={session.id}>
                    <tr data-testid="session-row" data-ordinal={session.ordinal} data-status={session.status}>
                      <td className="mono">#{session.ordinal}</td>
                      <td>
                        <StatusBadge status={session.status} title={session.failure_reason ?? undefined} />
                      </td>
                      <td title={formatDateTime(session.started_at)}>
                        {session.started_at ? `${formatDateTime(session.started_at)}` : "—"}
                      </td>
                      <td>{formatDuration(session.duration_seconds ?? summary?.duration_s)}</td>
                      <td data-testid="session-points">{summary?.points !== undefined ? formatNumber(summary.points) : session.status === "running" ? "recording…" : "—"}</td>
                      <td>
                        <Meter value={summary?.coverage} label="Coverage" />
                      </td>
                      <td>{gaps === undefined ? "—" : gaps}</td>
                      <td className="actions">
                        <Link
                          className="btn btn-sm"
                          to={`/live?mode=history&run=${runId}&session=${session.id}`}
                          aria-label={`View session ${session.ordinal} in history`}
                        >
                          History
                        </Link>{" "}
                        {summary?.sensors?.length ? (
                          <button
                            type="button"
                            className="btn btn-sm btn-ghost"
                            aria-expanded={expanded}
                            onClick={() => setOpen(expanded ? null : session.id)}
                          >
                            {expanded ? "Hide sensors" : "Sensors"}
                          </button>
                        ) : null}
                      </td>
                    </tr>
                    {session.failure_reason && (
                      <tr className="sub-row">
                        <td />
                        <td colSpan={7} className="error-text small">
                          {session.failure_reason}
                        </td>
                      </tr>
                    )}
                    {expanded && summary?.sensors && (
                      <tr className="sub-row">
                        <td />
                        <td colSpan={7}>
                          <table className="table inner" data-testid="session-sensors">
                            <thead>
                              <tr>
                                <th scope="col">Sensor</th>
                                <th scope="col">Points</th>
                                <th scope="col">Expected</th>
                                <th scope="col">Coverage</th>
                                <th scope="col">Late</th>
                                <th scope="col">Gaps</th>
                              </tr>
                            </thead>
                            <tbody>
                              {summary.sensors.map((s) => (
                                <tr key={s.sensor_id}>
                                  <td>
                                    <Link to={`/sensors/${s.sensor_id}`}>{s.name}</Link>
                                  </td>
                                  <td>{formatNumber(s.points)}</td>
                                  <td>{s.expected_points === null ? "—" : formatNumber(s.expected_points)}</td>
                                  <td>
                                    <Meter value={s.coverage} label="Coverage" />
                                  </td>
                                  <td>{s.late_points}</td>
                                  <td>
                                    {s.gap_count === 0
                                      ? "none"
                                      : s.gaps
                                          .slice(0, 3)
                                          .map((g) => `${formatTime(Date.parse(g.start))} (${formatDuration(g.seconds)})`)
                                          .join(", ") + (s.gap_count > 3 ? ` and ${s.gap_count - 3} more` : "")}
                                  </td>
                                </tr>
                              ))}
                            </tbody>
                          </table>
                          {summary.unflushed_sensors && summary.unflushed_sensors.length > 0 && (
                            <p className="alert alert-warning small">
                              {summary.unflushed_sensors.length} sensor(s) did not confirm their last write; their counts may be short.
                            </p>
                          )}
                        </td>
                      </tr>
                    )}
                  </Fragment>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
