// Start capture / Stop capture: one request at a time (the button is disabled while it is in
// flight and a ref blocks a second click before React re-renders), an Idempotency-Key per
// intent so a retried request cannot start two sessions, and an optional duration whose
// countdown stops the capture by itself. The deadline is kept in localStorage so a reload
// keeps counting.
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState, type FormEvent } from "react";
import { api } from "../../api/client";
import { backend } from "../../api/endpoints";
import type { CaptureSession, Run, RunSensor } from "../../api/models";
import { PlayIcon, StopIcon } from "../../components/icons";
import { toastError, toastSuccess } from "../../components/toastStore";
import { Countdown, formatClock, parseDuration } from "../../lib/countdown";
import { formatDuration, formatNumber } from "../../lib/format";
import { useNow } from "../../lib/hooks";

export const sessionsKey = (runId: string) => ["runs", runId, "capture-sessions"] as const;
export const runKey = (runId: string) => ["runs", runId] as const;

const deadlineKey = (sessionId: string) => `etp.capture.deadline.${sessionId}`;

function readDeadline(sessionId: string): number | null {
  try {
    const raw = window.localStorage.getItem(deadlineKey(sessionId));
    return raw ? Number(raw) : null;
  } catch {
    return null;
  }
}

function writeDeadline(sessionId: string, deadline: number | null): void {
  try {
    if (deadline === null) window.localStorage.removeItem(deadlineKey(sessionId));
    else window.localStorage.setItem(deadlineKey(sessionId), String(deadline));
  } catch {
    // without storage the countdown still runs until the page is left
  }
}

function newKey(): string {
  return typeof crypto !== "undefined" && "randomUUID" in crypto
    ? crypto.randomUUID()
    : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

export function CaptureControl({
  run,
  running,
  sensors,
  editable,
}: {
  run: Run;
  running: CaptureSession | null;
  sensors: RunSensor[] | undefined;
  editable: boolean;
}) {
  const queryClient = useQueryClient();
  const [durationText, setDurationText] = useState("");
  const [notes, setNotes] = useState("");
  const [durationError, setDurationError] = useState<string | null>(null);
  const inFlight = useRef(false);
  const [deadline, setDeadline] = useState<number | null>(() => (running ? readDeadline(running.id) : null));
  const [left, setLeft] = useState<number | null>(null);
  const now = useNow(1000);

  const refresh = (session?: CaptureSession) => {
    if (session) {
      queryClient.setQueryData<{ items: CaptureSession[]; next_cursor: string | null }>(sessionsKey(run.id), (page) => {
        if (!page) return page;
        const others = page.items.filter((s) => s.id !== session.id);
        return { ...page, items: [...others, session].sort((a, b) => a.ordinal - b.ordinal) };
      });
    }
    void queryClient.invalidateQueries({ queryKey: sessionsKey(run.id) });
    void queryClient.invalidateQueries({ queryKey: runKey(run.id) });
  };

  const start = useMutation({
    mutationFn: ({ key }: { key: string; seconds: number | null }) =>
      api.post<CaptureSession>(`/runs/${encodeURIComponent(run.id)}/capture-sessions`, notes.trim() ? { notes: notes.trim() } : {}, {
        headers: { "Idempotency-Key": key },
      }),
    meta: { toast: false },
    onSuccess: (session, { seconds }) => {
      if (seconds) {
        const at = Date.now() + seconds * 1000;
        writeDeadline(session.id, at);
        setDeadline(at);
      }
      toastSuccess("Capture started", `Session #${session.ordinal}${seconds ? `, stops in ${formatDuration(seconds)}` : ""}`);
      setNotes("");
      refresh(session);
    },
    onError: (error) => {
      toastError(error, "Could not start the capture");
      refresh();
    },
    onSettled: () => {
      inFlight.current = false;
    },
  });

  const stop = useMutation({
    mutationFn: (session: CaptureSession) => backend.capture.stop(session.id),
    meta: { toast: false },
    onSuccess: (session) => {
      writeDeadline(session.id, null);
      setDeadline(null);
      const points = session.summary?.points;
      toastSuccess(
        session.status === "failed" ? "Capture stopped with a failure" : "Capture stopped",
        points !== undefined ? `${formatNumber(points)} points recorded` : undefined,
      );
      refresh(session);
    },
    onError: (error) => {
      toastError(error, "Could not stop the capture");
      refresh();
    },
    onSettled: () => {
      inFlight.current = false;
    },
  });

  const stopNow = (session: CaptureSession) => {
    if (inFlight.current) return;
    inFlight.current = true;
    stop.mutate(session);
  };

  // The countdown of a timed capture: ticks each second, stops the session once at zero.
  useEffect(() => {
    if (!running) {
      setDeadline(null);
      setLeft(null);
      return;
    }
    const at = deadline ?? readDeadline(running.id);
    if (at === null) {
      setLeft(null);
      return;
    }
    const countdown = new Countdown({
      deadlineMs: at,
      onTick: setLeft,
      onExpire: () => stopNow(running),
    });
    countdown.start();
    return () => countdown.stop();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [running?.id, deadline]);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (inFlight.current || start.isPending) return;
    let seconds: number | null = null;
    if (durationText.trim()) {
      seconds = parseDuration(durationText);
      if (seconds === null) {
        setDurationError("Write a duration such as 30s, 5m, 1h30m or 1:30, or leave it empty.");
        return;
      }
    }
    setDurationError(null);
    inFlight.current = true;
    start.mutate({ key: newKey(), seconds });
  };

  const ended = ["succeeded", "failed", "archived"].includes(run.status);
  const pending = start.isPending || stop.isPending;
  const elapsed = running?.started_at ? (now - Date.parse(running.started_at)) / 1000 : null;

  return (
    <section className={`card capture-card${running ? " is-running" : ""}`} aria-labelledby="capture-title" data-testid="capture-control">
      <div className="card-header">
        <div>
          <h2 id="capture-title">Capture</h2>
          <p className="muted small">
            A capture session tags the data of the run's sensors between Start and Stop.
          </p>
        </div>
        {running && (
          <span className="live-pill" data-testid="capture-running">
            <span className="pulse" aria-hidden="true" />
            Capturing #{running.ordinal}
          </span>
        )}
      </div>
      <div className="card-body">
        {running ? (
          <div className="capture-running">
            <div className="capture-clock">
              <div>
                <span className="fact-label">Elapsed</span>
                <span className="clock" data-testid="capture-elapsed">
                  {elapsed !== null ? formatClock(elapsed) : "—"}
                </span>
              </div>
              {left !== null && (
                <div>
                  <span className="fact-label">Stops in</span>
                  <span className="clock countdown" data-testid="capture-countdown" aria-live="polite">
                    {formatClock(left)}
                  </span>
                </div>
              )}
            </div>
            {editable && (
              <button
                type="button"
                className="btn btn-danger solid btn-lg"
                disabled={pending}
                aria-busy={stop.isPending}
                onClick={() => stopNow(running)}
              >
                {stop.isPending ? <span className="spinner" aria-hidden="true" /> : <StopIcon />}
                {stop.isPending ? "Stopping…" : "Stop capture"}
              </button>
            )}
            {stop.isPending && (
              <p className="muted small" role="status">
                Waiting for every sensor's buffered points to be written…
              </p>
            )}
          </div>
        ) : ended ? (
          <p className="muted">The run has {run.status === "archived" ? "been archived" : "ended"}; captures start only on draft or running runs.</p>
        ) : !editable ? (
          <p className="muted">No capture is running. Editors and owners can start one.</p>
        ) : (
          <form className="capture-form" onSubmit={submit} noValidate aria-label="Start a capture">
            <div className="field">
              <label htmlFor="capture-duration">Duration</label>
              <input
                id="capture-duration"
                className="input"
                placeholder="optional, e.g. 30s or 5m"
                value={durationText}
                aria-invalid={durationError ? true : undefined}
                aria-describedby={durationError ? "capture-duration-error" : "capture-duration-hint"}
                onChange={(e) => {
                  setDurationText(e.target.value);
                  setDurationError(null);
                }}
              />
              {durationError ? (
                <div className="error" id="capture-duration-error" role="alert">
                  {durationError}
                </div>
              ) : (
                <div className="hint" id="capture-duration-hint">
                  Empty: runs until you stop it.
                </div>
              )}
            </div>
            <div className="field">
              <label htmlFor="capture-notes">Notes</label>
              <input
                id="capture-notes"
                className="input"
                placeholder="optional"
                maxLength={2000}
                value={notes}
                onChange={(e) => setNotes(e.target.value)}
              />
            </div>
            <div className="capture-submit">
              <button type="submit" className="btn btn-primary btn-lg" disabled={pending} aria-busy={start.isPending}>
                {start.isPending ? <span className="spinner" aria-hidden="true" /> : <PlayIcon />}
                {start.isPending ? "Starting…" : "Start capture"}
              </button>
            </div>
            {sensors && sensors.length === 0 && (
              <div className="alert alert-warning capture-warning">
                No sensors are attached to this run: a capture would record no telemetry. Attach sensors first.
              </div>
            )}
          </form>
        )}
      </div>
    </section>
  );
}
