import { useMutation } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { backend } from "../../api/endpoints";
import { useFormErrors } from "../../components/useFormErrors";
import { SubmitButton, TextField } from "../../components/ui";
import { AuthFrame } from "./AuthFrame";
import { PASSWORD_MIN_LENGTH } from "./RegisterPage";

/** Step 1: ask for a reset link (the answer is the same whether the account exists or not). */
export function ForgotPasswordPage() {
  const [email, setEmail] = useState("");
  const form = useFormErrors(["email"]);
  const request = useMutation({
    mutationFn: backend.auth.requestPasswordReset,
    meta: { toast: false },
    onError: (error) => form.handle(error, "Could not request a reset link"),
  });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!email.trim()) {
      form.setErrors({ email: "Enter your email address." });
      return;
    }
    form.clear();
    request.mutate(email.trim());
  };

  if (request.isSuccess) {
    return (
      <AuthFrame title="Check your email" footer={<Link to="/login">Back to sign in</Link>}>
        <div className="alert alert-success" role="status">
          If an account exists for <strong>{email.trim()}</strong>, a link to choose a new
          password is on its way. It is valid for 30 minutes.
        </div>
      </AuthFrame>
    );
  }

  return (
    <AuthFrame
      title="Reset your password"
      subtitle="Enter your account's email and we'll send you a link to choose a new password."
      footer={
        <>
          Remembered it? <Link to="/login">Sign in</Link>
        </>
      }
    >
      <form onChange={form.onChange} className="form" onSubmit={submit} noValidate aria-label="Request a reset link">
        <TextField
          label="Email"
          name="email"
          type="email"
          autoComplete="email"
          required
          autoFocus
          value={email}
          onChange={(event) => setEmail(event.target.value)}
          error={form.errors.email}
        />
        <SubmitButton pending={request.isPending} className="btn btn-primary btn-block">
          Send reset link
        </SubmitButton>
      </form>
    </AuthFrame>
  );
}

/** Step 2: the mailed link `/reset-password?token=…` lands here. */
export function ResetPasswordPage() {
  const [params] = useSearchParams();
  const token = params.get("token") ?? "";
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const form = useFormErrors(["token", "new_password", "confirm"], { password: "new_password" });
  const reset = useMutation({
    mutationFn: () => backend.auth.confirmPasswordReset(token, password),
    meta: { toast: false },
    onError: (error) => form.handle(error, "Could not reset the password"),
  });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const errors: Record<string, string> = {};
    if (password.length < PASSWORD_MIN_LENGTH)
      errors.new_password = `Use at least ${PASSWORD_MIN_LENGTH} characters.`;
    if (confirm !== password) errors.confirm = "The two passwords differ.";
    form.setErrors(errors);
    if (Object.keys(errors).length) return;
    reset.mutate();
  };

  if (!token) {
    return (
      <AuthFrame title="Reset link incomplete" footer={<Link to="/login">Back to sign in</Link>}>
        <div className="alert alert-warning" role="alert">
          This page needs the link from the email. Open the link again, or{" "}
          <Link to="/forgot-password">request a new one</Link>.
        </div>
      </AuthFrame>
    );
  }

  if (reset.isSuccess) {
    return (
      <AuthFrame title="Password changed">
        <div className="alert alert-success" role="status">
          Your password has been changed. Sign in with the new one.
        </div>
        <Link to="/login" className="btn btn-primary btn-block">
          Sign in
        </Link>
      </AuthFrame>
    );
  }

  return (
    <AuthFrame
      title="Choose a new password"
      footer={<Link to="/login">Back to sign in</Link>}
    >
      {form.errors.token && (
        <div className="alert alert-danger" role="alert">
          {form.errors.token}. <Link to="/forgot-password">Request a new link</Link>.
        </div>
      )}
      <form onChange={form.onChange} className="form" onSubmit={submit} noValidate aria-label="Choose a new password">
        <TextField
          label="New password"
          name="new_password"
          type="password"
          autoComplete="new-password"
          required
          autoFocus
          value={password}
          onChange={(event) => setPassword(event.target.value)}
          error={form.errors.new_password}
          hint={`At least ${PASSWORD_MIN_LENGTH} characters; common passwords are refused.`}
        />
        <TextField
          label="Repeat the new password"
          name="confirm"
          type="password"
          autoComplete="new-password"
          required
          value={confirm}
          onChange={(event) => setConfirm(event.target.value)}
          error={form.errors.confirm}
        />
        <SubmitButton pending={reset.isPending} className="btn btn-primary btn-block">
          Change password
        </SubmitButton>
      </form>
    </AuthFrame>
  );
}
