import { useSyncExternalStore } from "react";
import { CopyButton } from "./CopyButton";
import { toastStore } from "./toastStore";

export function Toasts() {
  const toasts = useSyncExternalStore(toastStore.subscribe, toastStore.snapshot);
  return (
    <section className="toasts" aria-label="Notifications" aria-live="polite">
      {toasts.map((toast) => (
        <div
          key={toast.id}
          className={`toast ${toast.kind}`}
          role={toast.kind === "error" ? "alert" : "status"}
          data-testid="toast"
        >
          <span className="stripe" />
          <div className="content">
            <div className="title">{toast.title}</div>
            {toast.message && <div className="message">{toast.message}</div>}
            {toast.requestId && (
              <div className="request-id">
                <span>Request id</span>
                <code data-testid="toast-request-id">{toast.requestId}</code>
                <CopyButton text={toast.requestId} small label="" ariaLabel="Copy request id" />
              </div>
            )}
          </div>
          <button
            type="button"
            className="close"
            aria-label="Dismiss notification"
            onClick={() => toastStore.dismiss(toast.id)}
          >
            ×
          </button>
        </div>
      ))}
    </section>
  );
}
