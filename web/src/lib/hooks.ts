// Small hooks shared by the screens.
import { useQuery } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { backend } from "../api/endpoints";
import type { Role } from "../api/models";

export function useDebounced<T>(value: T, delayMs: number): T {
  const [debounced, setDebounced] = useState(value);
  useEffect(() => {
    const timer = window.setTimeout(() => setDebounced(value), delayMs);
    return () => window.clearTimeout(timer);
  }, [value, delayMs]);
  return debounced;
}

/** A clock for "x ago" labels and countdowns, re-rendering every `everyMs`. */
export function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), everyMs);
    return () => window.clearInterval(timer);
  }, [everyMs]);
  return now;
}

export const canEdit = (role: Role | undefined | null): boolean => role === "editor" || role === "owner";

/** The project (with the caller's role) that a page's object belongs to. */
export function useProject(projectId: string | undefined) {
  return useQuery({
    queryKey: ["projects", projectId ?? ""],
    queryFn: () => backend.projects.get(projectId!),
    enabled: Boolean(projectId),
    staleTime: 60_000,
  });
}

const CURRENT_PROJECT = "etp.currentProject";

/** The project the sidebar's Experiments / Sensors / Live … links open. */
export function rememberProject(projectId: string): void {
  try {
    window.localStorage.setItem(CURRENT_PROJECT, projectId);
  } catch {
    // storage can be unavailable (private mode); the lists still work
  }
}

export function lastProject(): string | null {
  try {
    return window.localStorage.getItem(CURRENT_PROJECT);
  } catch {
    return null;
  }
}
