import { afterEach, describe, expect, it, vi } from "vitest";
import { LiveHub } from "./liveHub";
import { repairGaps } from "./useLive";

describe("repairGaps", () => {
  afterEach(() => vi.useRealTimers());

  it("re-reads history once a burst of coalesced points is over, from before the first report", async () => {
    vi.useFakeTimers();
    vi.setSystemTime(100_000);
    const hub = new LiveHub();
    const reads: number[] = [];
    repairGaps(hub, async (from) => {
      reads.push(from);
      return 42;
    });
    hub.onDropped?.(10);
    vi.advanceTimersByTime(1000);
    hub.onDropped?.(5); // still dropping: the repair waits for quiet
    expect(reads).toEqual([]);
    await vi.advanceTimersByTimeAsync(1500);
    expect(reads).toEqual([100_000 - 10_000]);
    expect(hub.stats.repairs).toBe(1);
    expect(hub.stats.repairedPoints).toBe(42);
  });

  it("repairs at least every few seconds while drops go on, and stops when cancelled", async () => {
    vi.useFakeTimers();
    vi.setSystemTime(0);
    const hub = new LiveHub();
    const reads: number[] = [];
    const cancel = repairGaps(hub, async (from) => {
      reads.push(from);
      return 1;
    });
    for (let t = 0; t < 6000; t += 500) {
      hub.onDropped?.(1);
      await vi.advanceTimersByTimeAsync(500);
    }
    expect(reads.length).toBe(1); // forced after 5 s of continuous drops
    cancel();
    expect(hub.onDropped).toBeNull();
  });
});
