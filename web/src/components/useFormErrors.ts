import { useCallback, useState, type FormEvent } from "react";
import { fieldErrorsFrom, isExplainedByFields, type FieldErrors } from "../api/fieldErrors";
import { toastError } from "./toastStore";

/**
 * Field messages for a form: validation errors the api ties to a known field show under that
 * field; anything else becomes a toast with the request id.
 */
export function useFormErrors(fields: readonly string[], aliases: Record<string, string> = {}) {
  const [errors, setErrors] = useState<FieldErrors>({});
  const fieldKey = fields.join("|");
  const aliasKey = JSON.stringify(aliases);
  const handle = useCallback(
    (error: unknown, title?: string) => {
      const found = fieldErrorsFrom(error, fieldKey.split("|"), JSON.parse(aliasKey));
      setErrors(found);
      if (!isExplainedByFields(error, found)) toastError(error, title);
    },
    [fieldKey, aliasKey],
  );
  const clear = useCallback(() => setErrors({}), []);
  /** For the form's onChange: editing a field (by its `name`) clears that field's message. */
  const onChange = useCallback((event: FormEvent<HTMLFormElement>) => {
    const name = (event.target as HTMLInputElement).name;
    if (!name) return;
    setErrors((current) => {
      if (!(name in current)) return current;
      const { [name]: _cleared, ...rest } = current;
      return rest;
    });
  }, []);
  return { errors, setErrors, handle, clear, onChange };
}
