import { useMutation } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Link, useLocation, useNavigate } from "react-router-dom";
import { backend } from "../../api/endpoints";
import { nextPath, useSignedIn } from "../../auth/session";
import { useFormErrors } from "../../components/useFormErrors";
import { SubmitButton, TextField } from "../../components/ui";
import { AuthFrame } from "./AuthFrame";

export function LoginPage() {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const form = useFormErrors(["email", "password"]);
  const signedIn = useSignedIn();
  const navigate = useNavigate();
  const location = useLocation();
  const login = useMutation({
    mutationFn: backend.auth.login,
    meta: { toast: false },
    onSuccess: (result) => {
      signedIn(result);
      navigate(nextPath(location.search), { replace: true });
    },
    onError: (error) => form.handle(error, "Sign-in failed"),
  });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    form.clear();
    login.mutate({ email: email.trim(), password });
  };

  return (
    <AuthFrame
      title="Sign in"
      subtitle="Welcome back. Sign in to your lab's workspace."
      footer={
        <>
          New to ETP? <Link to={`/register${location.search}`}>Create an account</Link>
        </>
      }
    >
      <form onChange={form.onChange} className="form" onSubmit={submit} noValidate aria-label="Sign in">
        <TextField
          label="Email"
          name="email"
          type="email"
          autoComplete="username"
          required
          autoFocus
          value={email}
          onChange={(event) => setEmail(event.target.value)}
          error={form.errors.email}
        />
        <TextField
          label="Password"
          name="password"
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={(event) => setPassword(event.target.value)}
          error={form.errors.password}
          aside={<Link to="/forgot-password">Forgot password?</Link>}
        />
        <SubmitButton pending={login.isPending} className="btn btn-primary btn-block">
          Sign in
        </SubmitButton>
      </form>
    </AuthFrame>
  );
}
