import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { backend } from "../../api/endpoints";
import { toastSuccess } from "../../components/toastStore";
import { useFormErrors } from "../../components/useFormErrors";
import { SubmitButton, TextField } from "../../components/ui";
import { PASSWORD_MIN_LENGTH } from "../auth/RegisterPage";
import { SESSIONS_KEY } from "./SessionsCard";

export function PasswordCard() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const form = useFormErrors(["current_password", "new_password"], { password: "new_password" });
  const queryClient = useQueryClient();
  const change = useMutation({
    mutationFn: () => backend.auth.changePassword(current, next),
    meta: { toast: false },
    onSuccess: (result) => {
      setCurrent("");
      setNext("");
      form.clear();
      toastSuccess(
        "Password changed",
        result.ended_sessions
          ? `Signed out ${result.ended_sessions} other session${result.ended_sessions === 1 ? "" : "s"}.`
          : undefined,
      );
      void queryClient.invalidateQueries({ queryKey: SESSIONS_KEY });
    },
    onError: (error) => form.handle(error, "Could not change the password"),
  });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const errors: Record<string, string> = {};
    if (!current) errors.current_password = "Enter your current password.";
    if (next.length < PASSWORD_MIN_LENGTH)
      errors.new_password = `Use at least ${PASSWORD_MIN_LENGTH} characters.`;
    form.setErrors(errors);
    if (!Object.keys(errors).length) change.mutate();
  };

  return (
    <section className="card" aria-labelledby="password-title">
      <div className="card-header">
        <div>
          <h2 id="password-title">Password</h2>
          <p className="muted small">Changing it signs out your other sessions.</p>
        </div>
      </div>
      <form onChange={form.onChange} className="card-body form" onSubmit={submit} noValidate aria-label="Change password">
        <TextField
          label="Current password"
          name="current_password"
          type="password"
          autoComplete="current-password"
          value={current}
          onChange={(event) => setCurrent(event.target.value)}
          error={form.errors.current_password}
        />
        <TextField
          label="New password"
          name="new_password"
          type="password"
          autoComplete="new-password"
          value={next}
          onChange={(event) => setNext(event.target.value)}
          error={form.errors.new_password}
        />
        <div className="form-actions">
          <SubmitButton pending={change.isPending}>Change password</SubmitButton>
        </div>
      </form>
    </section>
  );
}
