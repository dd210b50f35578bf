// Display helpers: dates, durations, user agents and audit sentences.
import type { AuditEvent, Json } from "../api/models";

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
});

export function formatDateTime(value: string | null | undefined): string {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : dateTime.format(date);
}

/** "just now", "5 min ago", "3 h ago", "2 d ago", or "in 4 d" for the future. */
export function relativeTime(value: string | null | undefined, now: number = Date.now()): string {
  if (!value) return "never";
  const then = new Date(value).getTime();
  if (Number.isNaN(then)) return value;
  const seconds = Math.round((now - then) / 1000);
  const future = seconds < 0;
  const s = Math.abs(seconds);
  let text: string;
  if (s < 45) return future ? "in a moment" : "just now";
  else if (s < 3600) text = `${Math.round(s / 60)} min`;
  else if (s < 86_400) text = `${Math.round(s / 3600)} h`;
  else if (s < 86_400 * 60) text = `${Math.round(s / 86_400)} d`;
  else return formatDateTime(value);
  return future ? `in ${text}` : `${text} ago`;
}

/** "Chrome on Linux" from a User-Agent header; the raw string when unknown. */
export function describeUserAgent(ua: string | null | undefined): string {
  if (!ua) return "Unknown client";
  const browser =
    /Edg\//.test(ua) ? "Edge"
    : /HeadlessChrome\//.test(ua) ? "Headless Chrome"
    : /Chrom(e|ium)\//.test(ua) ? "Chrome"
    : /Firefox\//.test(ua) ? "Firefox"
    : /Safari\//.test(ua) ? "Safari"
    : /python|httpx|curl|etp/i.test(ua) ? (ua.split(/[/ ]/)[0] ?? ua)
    : null;
  const os =
    /Windows/.test(ua) ? "Windows"
    : /Android/.test(ua) ? "Android"
    : /iPhone|iPad/.test(ua) ? "iOS"
    : /Mac OS X/.test(ua) ? "macOS"
    : /Linux/.test(ua) ? "Linux"
    : null;
  if (!browser) return ua.length > 60 ? `${ua.slice(0, 57)}…` : ua;
  return os ? `${browser} on ${os}` : browser;
}

function scalar(value: Json | undefined): string {
  if (value === undefined || value === null) return "—";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function named(before: Record<string, Json>, after: Record<string, Json>): string {
  const name = after.name ?? before.name;
  return typeof name === "string" ? `“${name}”` : "";
}

/** One readable sentence for an audit event; `names` resolves user ids to display names. */
export function describeAuditEvent(event: AuditEvent, names: Record<string, string> = {}): string {
  const before = event.before ?? {};
  const after = event.after ?? {};
  const subject = (event.entity_id && names[event.entity_id]) || scalar(after.email ?? null);
  switch (event.action) {
    case "project.created":
      return `created the project “${scalar(after.name)}”`;
    case "project.updated": {
      const keys = Object.keys(after);
      return keys.length ? `updated the project (${keys.join(", ")})` : "updated the project";
    }
    case "project.deleted":
      return "deleted the project";
    case "member.added":
      return `added ${scalar(after.email)} as ${scalar(after.role)}`;
    case "member.role_changed":
      return `changed ${subject === "—" ? "a member" : subject}’s role from ${scalar(before.role)} to ${scalar(after.role)}`;
    case "member.removed":
      return `removed ${subject === "—" ? "a member" : subject} (was ${scalar(before.role)})`;
    case "experiment.created":
      return `created the experiment “${scalar(after.name)}”`;
    case "experiment.archived":
      return `archived the experiment ${named(before, after)}`;
    case "experiment.unarchived":
      return `unarchived the experiment ${named(before, after)}`;
    case "run.created":
      return `created the run “${scalar(after.name)}”`;
    case "run.status_changed":
      return `moved a run from ${scalar(before.status)} to ${scalar(after.status)}`;
    case "run.sensors_set":
      return "changed the sensors attached to a run";
    case "capture_session.started":
      return "started a capture";
    case "capture_session.stopped":
      return "stopped a capture";
    case "sensor.created":
      return `registered the sensor “${scalar(after.name)}”`;
    case "sensor.token_rotated":
      return "rotated a sensor's token";
    case "profile.created":
      return `created a ${scalar(after.kind)} conversion profile`;
    case "profile.activated":
      return "activated a conversion profile";
    case "profile.scheduled":
      return "scheduled a conversion profile";
    case "profile.deprecated":
      return "deprecated a conversion profile";
    case "webhook.created":
      return `added the webhook ${scalar(after.url)}`;
    default: {
      const verb = event.action.split(".").pop()?.replace(/_/g, " ") ?? event.action;
      const what = event.entity_type.replace(/_/g, " ");
      return `${verb} ${what}${event.entity_id ? ` ${event.entity_id.slice(0, 8)}` : ""}`;
    }
  }
}

export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? [parts[0]![0], parts[parts.length - 1]![0]] : [name.trim()[0]];
  return letters.filter(Boolean).join("").toUpperCase() || "?";
}

/** Up to 6 significant digits, no exponent for everyday magnitudes: 3.14159, 1200, 0.000123. */
export function formatNumber(value: number | null | undefined, digits = 6): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  if (Number.isInteger(value) && Math.abs(value) < 1e15) return value.toLocaleString("en-US");
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e12)) return value.toExponential(3);
  return String(Number(value.toPrecision(digits)));
}

/** 42 → "42 s", 125 → "2 min 5 s", 7260 → "2 h 1 min". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ""}`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h} h${m ? ` ${m} min` : ""}`;
}

/** A signed delta with its percentage: "+0.12 (+3.4 %)". */
export function formatDelta(delta: number | null | undefined, pct?: number | null): string {
  if (delta === null || delta === undefined || !Number.isFinite(delta)) return "—";
  const sign = delta > 0 ? "+" : delta < 0 ? "−" : "±";
  const body = `${sign}${formatNumber(Math.abs(delta))}`;
  if (pct === null || pct === undefined || !Number.isFinite(pct)) return body;
  const pctSign = pct > 0 ? "+" : pct < 0 ? "−" : "±";
  return `${body} (${pctSign}${Math.abs(pct).toFixed(1)} %)`;
}

/** A bucket width: 10 → "10 ms", 5000 → "5 s", 600000 → "10 min". */
export function formatBucket(ms: number | null | undefined): string {
  if (!ms) return "—";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${ms / 1000} s`;
  if (ms < 3_600_000) return `${ms / 60_000} min`;
  if (ms < 86_400_000) return `${ms / 3_600_000} h`;
  return `${ms / 86_400_000} d`;
}

/** The time of day with seconds, for live read-outs. */
export function formatTime(ms: number): string {
  return new Date(ms).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
