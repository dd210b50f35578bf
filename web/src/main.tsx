import { QueryClientProvider } from "@tanstack/react-query";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { createBrowserRouter, RouterProvider } from "react-router-dom";
import { api } from "./api/client";
import { PUBLIC_PATHS, routes } from "./App";
import { ME_KEY } from "./auth/session";
import { Toasts } from "./components/Toasts";
import { toastStore } from "./components/toastStore";
import { createQueryClient } from "./queryClient";
import "./styles/global.css";

const queryClient = createQueryClient();
const router = createBrowserRouter(routes);

// The session ended (expired, revoked elsewhere): forget cached data and go to the login page.
api.onUnauthenticated(() => {
  const { pathname, search } = window.location;
  if (PUBLIC_PATHS.includes(pathname)) return;
  api.setCsrfToken(null);
  queryClient.clear();
  queryClient.setQueryData(ME_KEY, null);
  toastStore.push({ kind: "info", title: "Signed out", message: "Your session has ended; sign in again." });
  void router.navigate(`/login?next=${encodeURIComponent(pathname + search)}`, { replace: true });
});

const root = document.getElementById("root");
if (!root) throw new Error("#root is missing from index.html");

createRoot(root).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <RouterProvider router={router} />
      <Toasts />
    </QueryClientProvider>
  </StrictMode>,
);
