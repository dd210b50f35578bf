import { useMutation } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Link, useLocation, useNavigate } from "react-router-dom";
import { backend } from "../../api/endpoints";
import { nextPath, useSignedIn } from "../../auth/session";
import { useFormErrors } from "../../components/useFormErrors";
import { SubmitButton, TextField } from "../../components/ui";
import { AuthFrame } from "./AuthFrame";

export const PASSWORD_MIN_LENGTH = 8;

export function RegisterPage() {
  const [displayName, setDisplayName] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const form = useFormErrors(["display_name", "email", "password"]);
  const signedIn = useSignedIn();
  const navigate = useNavigate();
  const location = useLocation();
  const register = useMutation({
    mutationFn: backend.auth.register,
    meta: { toast: false },
    onSuccess: (result) => {
      signedIn(result);
      navigate(nextPath(location.search), { replace: true });
    },
    onError: (error) => form.handle(error, "Registration failed"),
  });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const errors: Record<string, string> = {};
    if (!displayName.trim()) errors.display_name = "Enter your name.";
    if (!email.trim()) errors.email = "Enter your email address.";
    if (password.length < PASSWORD_MIN_LENGTH)
      errors.password = `Use at least ${PASSWORD_MIN_LENGTH} characters.`;
    form.setErrors(errors);
    if (Object.keys(errors).length) return;
    register.mutate({ display_name: displayName.trim(), email: email.trim(), password });
  };

  return (
    <AuthFrame
      title="Create your account"
      subtitle="Track experiments, runs and the sensor data captured during them."
      footer={
        <>
          Already have an account? <Link to={`/login${location.search}`}>Sign in</Link>
        </>
      }
    >
      <form onChange={form.onChange} className="form" onSubmit={submit} noValidate aria-label="Create account">
        <TextField
          label="Name"
          name="display_name"
          autoComplete="name"
          required
          autoFocus
          value={displayName}
          onChange={(event) => setDisplayName(event.target.value)}
          error={form.errors.display_name}
        />
        <TextField
          label="Email"
          name="email"
          type="email"
          autoComplete="email"
          required
          value={email}
          onChange={(event) => setEmail(event.target.value)}
          error={form.errors.email}
        />
        <TextField
          label="Password"
          name="password"
          type="password"
          autoComplete="new-password"
          required
          minLength={PASSWORD_MIN_LENGTH}
          value={password}
          onChange={(event) => setPassword(event.target.value)}
          error={form.errors.password}
          hint={`At least ${PASSWORD_MIN_LENGTH} characters; common passwords are refused.`}
        />
        <SubmitButton pending={register.isPending} className="btn btn-primary btn-block">
          Create account
        </SubmitButton>
      </form>
    </AuthFrame>
  );
}
