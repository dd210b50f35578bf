// The capture timeline: each capture session as a band over the chart's time axis, coloured by
// status (running, succeeded, failed, backfilling), drawn by a small uPlot plugin.
import type uPlot from "uplot";
import type { CaptureSession, CaptureStatus } from "../../api/models";

export interface CaptureBand {
  id: string;
  /** Seconds since the epoch (uPlot's time axis). */
  from: number;
  to: number;
  status: CaptureStatus;
  label: string;
}

export const BAND_COLOURS: Record<CaptureStatus, string> = {
  running: "47, 91, 234",
  succeeded: "20, 128, 74",
  failed: "200, 50, 42",
  backfilling: "161, 92, 7",
  archived: "120, 130, 145",
  draft: "120, 130, 145",
};

/** Sessions with a start as bands, oldest first; a running one reaches `nowMs`. */
export function captureBands(sessions: readonly CaptureSession[], nowMs: number): CaptureBand[] {
  const bands: CaptureBand[] = [];
  for (const session of sessions) {
    if (!session.started_at) continue;
    const from = Date.parse(session.started_at);
    const end = session.stopped_at ? Date.parse(session.stopped_at) : nowMs;
    if (Number.isNaN(from) || Number.isNaN(end)) continue;
    bands.push({
      id: session.id,
      from: from / 1000,
      to: Math.max(end, from) / 1000,
      status: session.status,
      label: `#${session.ordinal} ${session.status}`,
    });
  }
  return bands.sort((a, b) => a.from - b.from);
}

/** The part of each band inside [min, max] (seconds); bands outside are left out. */
export function visibleBands(bands: readonly CaptureBand[], min: number, max: number): CaptureBand[] {
  return bands
    .filter((band) => band.to >= min && band.from <= max)
    .map((band) => ({ ...band, from: Math.max(band.from, min), to: Math.min(band.to, max) }));
}

/** Draws the bands behind the series, with a status strip and label along the top. */
export function captureBandsPlugin(getBands: () => readonly CaptureBand[]): uPlot.Plugin {
  return {
    hooks: {
      drawClear: (u: uPlot) => {
        const bands = getBands();
        const { min, max } = u.scales.x!;
        if (!bands.length || min === undefined || max === undefined) return;
        const ctx = u.ctx;
        const { top, height } = u.bbox;
        const ratio = devicePixelRatio || 1;
        ctx.save();
        for (const band of visibleBands(bands, min, max)) {
          const x0 = u.valToPos(band.from, "x", true);
          const x1 = Math.max(u.valToPos(band.to, "x", true), x0 + 2 * ratio);
          const rgb = BAND_COLOURS[band.status];
          ctx.fillStyle = `rgba(${rgb}, 0.08)`;
          ctx.fillRect(x0, top, x1 - x0, height);
          ctx.fillStyle = `rgba(${rgb}, 0.75)`;
          ctx.fillRect(x0, top, x1 - x0, 3 * ratio);
          if (x1 - x0 > 60 * ratio) {
            ctx.font = `${11 * ratio}px system-ui, sans-serif`;
            ctx.fillStyle = `rgba(${rgb}, 0.95)`;
            ctx.fillText(band.label, x0 + 4 * ratio, top + 15 * ratio);
          }
        }
        ctx.restore();
      },
    },
  };
}
