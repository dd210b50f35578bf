import { describe, expect, it, vi } from "vitest";
import { ApiClient, ApiError, buildQuery, errorFromResponse, readCsrfCookie } from "./client";

function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

function clientWith(responses: Response[], cookies = "") {
  const calls: { url: string; init: RequestInit }[] = [];
  const fetch = vi.fn(async (url: RequestInfo | URL, init?: RequestInit) => {
    calls.push({ url: String(url), init: init ?? {} });
    const next = responses.shift();
    if (!next) throw new TypeError("Failed to fetch");
    return next;
  });
  const client = new ApiClient({ fetch: fetch as typeof globalThis.fetch, readCookies: () => cookies });
  return { client, calls };
}

describe("readCsrfCookie", () => {
  it("reads the plain and the __Host- cookie, preferring __Host-", () => {
    expect(readCsrfCookie("a=1; etp_csrf=abc; b=2")).toBe("abc");
    expect(readCsrfCookie("etp_csrf=plain; __Host-etp_csrf=secure")).toBe("secure");
    expect(readCsrfCookie("other=1")).toBeNull();
  });
});

describe("buildQuery", () => {
  it("drops empty values and joins arrays", () => {
    expect(buildQuery({ q: "wind", cursor: null, limit: 10, sensor_ids: ["a", "b"], x: "" })).toBe(
      "?q=wind&limit=10&sensor_ids=a%2Cb",
    );
    expect(buildQuery({})).toBe("");
  });
});

describe("ApiClient", () => {
  it("sends cookies, JSON and the CSRF header on unsafe methods only", async () => {
    const { client, calls } = clientWith(
      [jsonResponse(200, { items: [] }), jsonResponse(201, { id: "p1" })],
      "etp_csrf=tok123",
    );
    await client.get("/projects", { q: "x" });
    await client.post("/projects", { name: "P" });
    expect(calls[0]!.url).toBe("/api/v1/projects?q=x");
    expect(calls[0]!.init.credentials).toBe("include");
    expect((calls[0]!.init.headers as Record<string, string>)["X-CSRF-Token"]).toBeUndefined();
    const post = calls[1]!.init;
    expect(post.method).toBe("POST");
    expect(post.body).toBe(JSON.stringify({ name: "P" }));
    expect((post.headers as Record<string, string>)["X-CSRF-Token"]).toBe("tok123");
    expect((post.headers as Record<string, string>)["Content-Type"]).toBe("application/json");
  });

  it("falls back to the token from login when the cookie is not readable", async () => {
    const { client, calls } = clientWith([jsonResponse(204, undefined)]);
    client.setCsrfToken("from-login");
    await client.delete("/auth/tokens/1");
    expect((calls[0]!.init.headers as Record<string, string>)["X-CSRF-Token"]).toBe("from-login");
  });

  it("returns undefined for 204 No Content", async () => {
    const { client } = clientWith([new Response(null, { status: 204 })]);
    await expect(client.post("/auth/logout")).resolves.toBeUndefined();
  });

  it("parses the error shape into an ApiError", async () => {
    const { client } = clientWith([
      jsonResponse(
        409,
        {
          error: {
            code: "conflict",
            message: "this user is already a member",
            details: { field: "email" },
            request_id: "req-1",
          },
        },
        { "X-Request-ID": "req-1" },
      ),
    ]);
    const error = await client.post("/projects/p/members", {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({
      status: 409,
      code: "conflict",
      message: "this user is already a member",
      requestId: "req-1",
      details: { field: "email" },
    });
  });

  it("tells listeners about an unexpected 401, but not an expected one", async () => {
    const body = { error: { code: "unauthenticated", message: "sign in", details: {}, request_id: "r" } };
    const { client } = clientWith([jsonResponse(401, body), jsonResponse(401, body)]);
    const listener = vi.fn();
    client.onUnauthenticated(listener);
    await expect(client.get("/projects")).rejects.toMatchObject({ status: 401 });
    expect(listener).toHaveBeenCalledTimes(1);
    await expect(
      client.post("/auth/login", {}, { expectUnauthenticated: true }),
    ).rejects.toMatchObject({ status: 401 });
    expect(listener).toHaveBeenCalledTimes(1);
  });

  it("turns a network failure into a network_error ApiError", async () => {
    const { client } = clientWith([]);
    await expect(client.get("/projects")).rejects.toMatchObject({ status: 0, code: "network_error" });
  });
});

describe("errorFromResponse", () => {
  it("copes with a body that is not the error shape (a proxy's HTML page)", () => {
    const error = errorFromResponse(502, "Bad Gateway", "hdr-id", undefined);
    expect(error).toMatchObject({ status: 502, code: "internal", requestId: "hdr-id" });
    expect(error.message).toContain("502");
  });
});
