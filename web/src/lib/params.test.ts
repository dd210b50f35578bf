import { describe, expect, it } from "vitest";
import { formatParams, parseParams, parseScalar } from "./params";

describe("parseParams", () => {
  it("reads key = value lines with typed values", () => {
    expect(parseParams("lr = 0.01\nbatch: 32\noptimizer = adam\nwarmup = true\n# comment\nlayers = [64, 64]")).toEqual({
      ok: true,
      value: { lr: 0.01, batch: 32, optimizer: "adam", warmup: true, layers: [64, 64] },
    });
  });

  it("reads a JSON object and refuses other JSON", () => {
    expect(parseParams('{"a": 1}')).toEqual({ ok: true, value: { a: 1 } });
    expect(parseParams("{nope").ok).toBe(false);
  });

  it("explains bad lines and repeated keys", () => {
    expect(parseParams("just text")).toEqual({ ok: false, error: "Line 1: write key = value." });
    expect(parseParams("a=1\na=2")).toEqual({ ok: false, error: "Line 2: “a” is given twice." });
  });

  it("round-trips through formatParams", () => {
    const value = { lr: 0.01, name: "adam", flags: [1, 2] };
    expect(parseParams(formatParams(value))).toEqual({ ok: true, value });
  });

  it("keeps version-like text as text", () => {
    expect(parseScalar("1.2.3")).toBe("1.2.3");
    expect(parseScalar("1e-3")).toBe(0.001);
  });
});
