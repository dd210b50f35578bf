// Controls shared by the live screens: raw/physical toggle and the stream's state.
import type { ValueKind } from "../../api/models";
import type { StreamState } from "../../lib/liveStream";

export function ValueToggle({ value, onChange }: { value: ValueKind; onChange: (value: ValueKind) => void }) {
  return (
    <div className="segmented small" role="group" aria-label="Values">
      {(["raw", "physical"] as const).map((kind) => (
        <button key={kind} type="button" className={value === kind ? "on" : ""} aria-pressed={value === kind} onClick={() => onChange(kind)}>
          {kind === "raw" ? "Raw" : "Physical"}
        </button>
      ))}
    </div>
  );
}

export function StreamBadge({ state, paused = false }: { state: StreamState; paused?: boolean }) {
  const [tone, text] = paused
    ? ["paused", "Paused"]
    : state.kind === "live"
      ? ["live", "Live"]
      : state.kind === "connecting"
        ? ["wait", "Connecting…"]
        : state.kind === "reconnecting"
          ? ["wait", `Reconnecting${state.attempt > 1 ? ` (try ${state.attempt})` : ""}…`]
          : state.kind === "ended"
            ? ["off", state.code === "access_revoked" ? "Access revoked" : "Ended"]
            : ["off", "Off"];
  return (
    <span className={`stream-badge ${tone}`} data-testid="stream-state" data-state={paused ? "paused" : state.kind} role="status">
      <span className="dot" aria-hidden="true" />
      {text}
    </span>
  );
}
