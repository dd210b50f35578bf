// Maps the api's validation details onto the form fields a screen shows.
import { isApiError } from "./client";

export type FieldErrors = Record<string, string>;

/**
 * Per-field messages from `details.fields` (schema validation: `[{loc, message}]`) or
 * `details.field` (domain checks, with the error's message). Only fields the form knows are
 * returned; `aliases` maps api names onto form names (the api says `password` where the
 * reset form's field is `new_password`).
 */
export function fieldErrorsFrom(
  error: unknown,
  knownFields: readonly string[],
  aliases: Record<string, string> = {},
): FieldErrors {
  if (!isApiError(error)) return {};
  const known = new Set(knownFields);
  const resolve = (name: string): string | null => {
    const mapped = aliases[name] ?? name;
    return known.has(mapped) ? mapped : null;
  };
  const result: FieldErrors = {};
  for (const issue of error.details.fields ?? []) {
    const loc = Array.isArray(issue.loc) ? issue.loc : [];
    // The most specific known name wins: ["body", "email"] → "email".
    const field = [...loc].reverse().map(String).map(resolve).find((name) => name !== null);
    if (field && !(field in result)) result[field] = sentence(issue.message);
  }
  if (typeof error.details.field === "string") {
    const field = resolve(error.details.field);
    if (field && !(field in result)) result[field] = sentence(error.message);
  }
  return result;
}

/** True when the error was fully explained by per-field messages for this form. */
export function isExplainedByFields(error: unknown, fieldErrors: FieldErrors): boolean {
  if (!isApiError(error) || Object.keys(fieldErrors).length === 0) return false;
  // 404 "no user has this email" and 409 "already a member" name a field too.
  return [400, 404, 409, 422].includes(error.status);
}

function sentence(message: string): string {
  const text = message.trim();
  return text ? text.charAt(0).toUpperCase() + text.slice(1) : text;
}
