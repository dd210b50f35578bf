// Badges, tags and small read-outs used by the experiment, run and sensor screens.
import { useState, type KeyboardEvent } from "react";
import type { Json, JsonObject, SensorStatus } from "../api/models";
import { formatNumber } from "../lib/format";

export function StatusBadge({ status, title }: { status: string; title?: string }) {
  return (
    <span className={`badge status status-${status}`} data-testid="status-badge" data-status={status} title={title}>
      <span className="dot" aria-hidden="true" />
      {status.replace(/_/g, " ")}
    </span>
  );
}

const SENSOR_STATUS_LABEL: Record<SensorStatus, string> = {
  online: "Online",
  delayed: "Delayed",
  offline: "Offline",
  never_seen: "Never seen",
};

export function SensorStatusBadge({ status }: { status: SensorStatus }) {
  return (
    <span className={`badge status sensor-${status}`} data-testid="sensor-status" data-status={status}>
      <span className="dot" aria-hidden="true" />
      {SENSOR_STATUS_LABEL[status] ?? status}
    </span>
  );
}

export function Tags({ tags, empty = "—" }: { tags: readonly string[]; empty?: string }) {
  if (!tags.length) return <span className="subtle">{empty}</span>;
  return (
    <span className="tags">
      {tags.map((tag) => (
        <span key={tag} className="tag">
          {tag}
        </span>
      ))}
    </span>
  );
}

/** "a, b c" → ["a", "b c"]: trimmed, no empties, no repeats. */
export function parseTags(text: string): string[] {
  return [...new Set(text.split(",").map((t) => t.trim()).filter(Boolean))];
}

/** Chips plus a text box: Enter or comma adds, Backspace on empty removes the last. */
export function TagEditor({
  id,
  value,
  onChange,
  placeholder = "Add a tag and press Enter",
  label,
}: {
  id: string;
  value: string[];
  onChange: (tags: string[]) => void;
  placeholder?: string;
  label: string;
}) {
  const [draft, setDraft] = useState("");
  const add = (text: string) => {
    const next = parseTags([...value, ...parseTags(text)].join(","));
    onChange(next);
    setDraft("");
  };
  const onKeyDown = (event: KeyboardEvent<HTMLInputElement>) => {
    if (event.key === "Enter" || event.key === ",") {
      event.preventDefault();
      if (draft.trim()) add(draft);
    } else if (event.key === "Backspace" && !draft && value.length) {
      onChange(value.slice(0, -1));
    }
  };
  return (
    <div className="tag-editor">
      {value.map((tag) => (
        <span key={tag} className="tag">
          {tag}
          <button type="button" aria-label={`Remove tag ${tag}`} onClick={() => onChange(value.filter((t) => t !== tag))}>
            ×
          </button>
        </span>
      ))}
      <input
        id={id}
        aria-label={label}
        value={draft}
        placeholder={value.length ? "" : placeholder}
        onChange={(event) => setDraft(event.target.value)}
        onKeyDown={onKeyDown}
        onBlur={() => draft.trim() && add(draft)}
      />
    </div>
  );
}

export function jsonText(value: Json | undefined): string {
  if (value === undefined || value === null) return "null";
  if (typeof value === "string") return value;
  if (typeof value === "number") return formatNumber(value);
  return JSON.stringify(value);
}

/** Keys and values of a JSON object as a two-column table. */
export function KeyValueTable({ value, empty, testId }: { value: JsonObject; empty: string; testId?: string }) {
  const entries = Object.entries(value).sort(([a], [b]) => a.localeCompare(b));
  if (!entries.length) return <p className="muted small card-body">{empty}</p>;
  return (
    <table className="table kv" data-testid={testId}>
      <tbody>
        {entries.map(([key, v]) => (
          <tr key={key}>
            <th scope="row" className="mono">
              {key}
            </th>
            <td className="mono">{jsonText(v)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A percentage bar (coverage): green from 95 %, amber from 70 %, red below. */
export function Meter({ value, label }: { value: number | null | undefined; label: string }) {
  if (value === null || value === undefined) return <span className="subtle">—</span>;
  const pct = Math.max(0, Math.min(1, value)) * 100;
  const tone = pct >= 95 ? "good" : pct >= 70 ? "fair" : "poor";
  return (
    <span className="meter" title={`${label}: ${pct.toFixed(1)} %`}>
      <span className={`meter-bar ${tone}`} style={{ width: `${pct}%` }} />
      <span className="meter-text">{pct.toFixed(pct >= 99.95 || pct === 0 ? 0 : 1)} %</span>
    </span>
  );
}

/** A tiny line (heartbeat): values left to right, scaled to the box. */
export function Sparkline({
  values,
  width = 120,
  height = 28,
  label,
}: {
  values: readonly number[];
  width?: number;
  height?: number;
  label: string;
}) {
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - (v / max) * (height - 4)).toFixed(1)}`);
  const active = values.some((v) => v > 0);
  return (
    <svg
      className={`sparkline${active ? "" : " idle"}`}
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={label}
      data-testid="sparkline"
      data-total={values.reduce((a, b) => a + b, 0)}
    >
      <line x1="0" x2={width} y1={height - 2} y2={height - 2} className="base" />
      {values.length > 1 && <polyline points={points.join(" ")} />}
    </svg>
  );
}
