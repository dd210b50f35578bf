// Who is signed in: one cached `GET /auth/me`, and route guards built on it.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import type { ReactNode } from "react";
import { Navigate, useLocation } from "react-router-dom";
import { api } from "../api/client";
import { backend } from "../api/endpoints";
import type { Me, SignedIn } from "../api/models";
import { Loading } from "../components/ui";

export const ME_KEY = ["auth", "me"] as const;

export function useMe() {
  return useQuery({
    queryKey: ME_KEY,
    queryFn: async () => {
      const me = await backend.auth.me();
      api.setCsrfToken(me?.csrf_token);
      return me;
    },
    staleTime: 60_000,
    retry: false,
  });
}

/** Stores a fresh sign-in (login/register) so guarded pages see it at once. */
export function useSignedIn() {
  const queryClient = useQueryClient();
  return (signedIn: SignedIn) => {
    api.setCsrfToken(signedIn.csrf_token);
    // The previous user's cached data must never show to the next one.
    queryClient.removeQueries({ predicate: (query) => query.queryKey[0] !== ME_KEY[0] });
    const me: Me = { user: signedIn.user, auth: "session", csrf_token: signedIn.csrf_token };
    queryClient.setQueryData(ME_KEY, me);
  };
}

/** Where to go after signing in: `?next=` when it is a local path, else the projects list. */
export function nextPath(search: string): string {
  const next = new URLSearchParams(search).get("next");
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/projects";
}

export function RequireAuth({ children }: { children: ReactNode }) {
  const me = useMe();
  const location = useLocation();
  if (me.isPending) return <Loading label="Checking your session…" />;
  if (me.isError) {
    return (
      <div className="auth-screen">
        <div className="card auth-card" role="alert">
          <h1>Cannot reach ETP</h1>
          <p className="muted">{me.error.message}</p>
          <button type="button" className="btn btn-primary" onClick={() => void me.refetch()}>
            Try again
          </button>
        </div>
      </div>
    );
  }
  if (!me.data) {
    const next = encodeURIComponent(location.pathname + location.search);
    return <Navigate to={`/login?next=${next}`} replace />;
  }
  return <>{children}</>;
}

/** Login and register pages: a signed-in visitor goes straight on. */
export function GuestOnly({ children }: { children: ReactNode }) {
  const me = useMe();
  const location = useLocation();
  if (me.isPending) return <Loading label="Loading…" />;
  if (me.data) return <Navigate to={nextPath(location.search)} replace />;
  return <>{children}</>;
}
