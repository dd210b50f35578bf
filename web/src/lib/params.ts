// Parameters typed by people: one `key = value` per line (numbers, true/false/null and JSON
// values are read as such, anything else is text), or a whole JSON object.
import type { Json, JsonObject } from "../api/models";

export type ParamsResult = { ok: true; value: JsonObject } | { ok: false; error: string };

export function parseParams(text: string): ParamsResult {
  const trimmed = text.trim();
  if (!trimmed) return { ok: true, value: {} };
  if (trimmed.startsWith("{")) {
    try {
      const value = JSON.parse(trimmed) as unknown;
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        return { ok: false, error: "Write a JSON object, e.g. {\"lr\": 0.01}." };
      }
      return { ok: true, value: value as JsonObject };
    } catch (error) {
      return { ok: false, error: `Not valid JSON: ${(error as Error).message}` };
    }
  }
  const value: JsonObject = {};
  const lines = trimmed.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line || line.startsWith("#")) continue;
    const match = /^([^=:]+?)\s*[=:]\s*(.*)$/.exec(line);
    if (!match) return { ok: false, error: `Line ${i + 1}: write key = value.` };
    const key = match[1]!.trim();
    if (key in value) return { ok: false, error: `Line ${i + 1}: “${key}” is given twice.` };
    value[key] = parseScalar(match[2]!.trim());
  }
  return { ok: true, value };
}

export function parseScalar(text: string): Json {
  if (text === "") return "";
  if (/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return Number(text);
  if (text === "true" || text === "false" || text === "null") return JSON.parse(text) as Json;
  if (/^[[{"]/.test(text)) {
    try {
      return JSON.parse(text) as Json;
    } catch {
      return text;
    }
  }
  return text;
}

/** The reverse, for editing: `key = value` lines. */
export function formatParams(value: JsonObject): string {
  return Object.entries(value)
    .map(([key, v]) => `${key} = ${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join("\n");
}
