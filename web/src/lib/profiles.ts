// Conversion profiles as people type them, and as one readable formula. The api validates the
// payload (with messages naming the field); the browser only turns text into numbers where it
// can and leaves the rest for the api to explain.
import type { Json, JsonObject, ProfileKind } from "../api/models";
import { formatNumber } from "./format";

export interface ProfileFields {
  a: string;
  b: string;
  coefficients: string;
  points: string;
  outOfRange: "clamp" | "reject";
}

function num(text: string): Json {
  const t = text.trim();
  if (t === "") return t;
  const n = Number(t);
  return Number.isFinite(n) ? n : t;
}

export function buildPayload(kind: ProfileKind, fields: ProfileFields): JsonObject {
  if (kind === "linear") return { a: num(fields.a), b: num(fields.b) };
  if (kind === "polynomial") {
    const parts = fields.coefficients.split(/[,;\s]+/).filter(Boolean);
    return { coefficients: parts.map(num) };
  }
  const points = fields.points
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => line.split(/[,;\t ]+/).filter(Boolean).map(num));
  return { points, out_of_range: fields.outOfRange };
}

/** "y = 2·x + 1", "y = 1 + 0.5·x − 0.1·x²", "table of 5 points (clamp)". */
export function describeProfile(kind: ProfileKind, payload: JsonObject): string {
  if (kind === "linear") {
    const a = Number(payload.a);
    const b = Number(payload.b);
    return `y = ${formatNumber(a)}·x ${b < 0 ? "−" : "+"} ${formatNumber(Math.abs(b))}`;
  }
  if (kind === "polynomial") {
    const cs = Array.isArray(payload.coefficients) ? payload.coefficients.map(Number) : [];
    const terms = cs
      .map((c, i) => ({ c, i }))
      .filter(({ c }) => c !== 0)
      .map(({ c, i }, k) => {
        const sign = c < 0 ? (k ? " − " : "−") : k ? " + " : "";
        const body = i === 0 ? formatNumber(Math.abs(c)) : `${Math.abs(c) === 1 ? "" : `${formatNumber(Math.abs(c))}·`}x${power(i)}`;
        return sign + body;
      });
    return `y = ${terms.join("") || "0"}`;
  }
  const points = Array.isArray(payload.points) ? payload.points.length : 0;
  return `table of ${points} points (${payload.out_of_range === "reject" ? "reject outside" : "clamp outside"})`;
}

const SUPERSCRIPTS = ["", "", "²", "³", "⁴", "⁵", "⁶", "⁷", "⁸", "⁹"];

function power(i: number): string {
  return SUPERSCRIPTS[i] ?? `^${i}`;
}

/** The form field an api validation message belongs to: `points[3]` → `points`. */
export function profileField(field: unknown): keyof ProfileFields | "kind" | "description" | null {
  if (typeof field !== "string") return null;
  const base = field.replace(/\[.*$/, "");
  if (base === "out_of_range") return "outOfRange";
  if (["a", "b", "coefficients", "points", "kind", "description"].includes(base)) {
    return base as keyof ProfileFields | "kind" | "description";
  }
  return null;
}
