// Toasts live outside React so the query cache and the api client can raise them too.
import { isApiError } from "../api/client";

export type ToastKind = "error" | "success" | "info";

export interface Toast {
  id: number;
  kind: ToastKind;
  title: string;
  message?: string;
  requestId?: string | null;
}

type Listener = () => void;

const MAX_TOASTS = 4;
const AUTO_DISMISS_MS: Record<ToastKind, number | null> = {
  success: 3500,
  info: 6000,
  error: null, // errors stay until dismissed, so the request id can be copied
};

let toasts: Toast[] = [];
let nextId = 1;
const listeners = new Set<Listener>();

function emit(): void {
  for (const listener of listeners) listener();
}

export const toastStore = {
  subscribe(listener: Listener): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
  snapshot(): Toast[] {
    return toasts;
  },
  push(toast: Omit<Toast, "id">): number {
    const id = nextId++;
    toasts = [...toasts, { ...toast, id }].slice(-MAX_TOASTS);
    emit();
    const delay = AUTO_DISMISS_MS[toast.kind];
    if (delay !== null && typeof window !== "undefined") {
      window.setTimeout(() => toastStore.dismiss(id), delay);
    }
    return id;
  },
  dismiss(id: number): void {
    toasts = toasts.filter((toast) => toast.id !== id);
    emit();
  },
  clear(): void {
    toasts = [];
    emit();
  },
};

/** Shows an error: the api's message and request id when it is an ApiError. */
export function toastError(error: unknown, title?: string): void {
  if (isApiError(error)) {
    toastStore.push({
      kind: "error",
      title: title ?? titleFor(error.status),
      message: sentence(error.message),
      requestId: error.requestId,
    });
  } else {
    toastStore.push({
      kind: "error",
      title: title ?? "Something went wrong",
      message: sentence(error instanceof Error ? error.message : String(error)),
    });
  }
}

function sentence(text: string): string {
  return text ? text.charAt(0).toUpperCase() + text.slice(1) : text;
}

export function toastSuccess(title: string, message?: string): void {
  toastStore.push({ kind: "success", title, message });
}

function titleFor(status: number): string {
  if (status === 0) return "Cannot reach the server";
  if (status === 401) return "Not signed in";
  if (status === 403) return "Not allowed";
  if (status === 404) return "Not found";
  if (status === 409) return "Conflict";
  if (status === 422) return "Please check the form";
  if (status === 429) return "Too many requests";
  if (status >= 500) return "Server error";
  return "Something went wrong";
}
