// The one way the app talks to the api: cookies included, the CSRF header on unsafe methods,
// the error shape parsed into a typed ApiError, and 401s reported so the app can route to login.
import type { ErrorBody, ErrorDetails } from "./models";

export const API_PREFIX = "/api/v1";
export const CSRF_HEADER = "X-CSRF-Token";
/** Over https the cookie carries the `__Host-` prefix; over http (local) it does not. */
export const CSRF_COOKIES = ["__Host-etp_csrf", "etp_csrf"] as const;

const UNSAFE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
export type QueryValue = string | number | boolean | null | undefined | readonly string[];
export type Query = Record<string, QueryValue>;

/** A failed request: the api's error shape, or a network failure (`status` 0). */
export class ApiError extends Error {
  override readonly name = "ApiError";
  readonly status: number;
  readonly code: string;
  readonly details: ErrorDetails;
  readonly requestId: string | null;

  constructor(init: {
    status: number;
    code: string;
    message: string;
    details?: ErrorDetails;
    requestId?: string | null;
  }) {
    super(init.message);
    this.status = init.status;
    this.code = init.code;
    this.details = init.details ?? {};
    this.requestId = init.requestId ?? null;
  }

  get isUnauthenticated(): boolean {
    return this.status === 401;
  }
}

export function isApiError(value: unknown): value is ApiError {
  return value instanceof ApiError;
}

function isErrorBody(value: unknown): value is ErrorBody {
  if (typeof value !== "object" || value === null || !("error" in value)) return false;
  const error = (value as { error: unknown }).error;
  return (
    typeof error === "object" &&
    error !== null &&
    typeof (error as { code?: unknown }).code === "string" &&
    typeof (error as { message?: unknown }).message === "string"
  );
}

/** Builds an ApiError from a failed response's status, headers and (maybe JSON) body. */
export function errorFromResponse(
  status: number,
  statusText: string,
  headerRequestId: string | null,
  body: unknown,
): ApiError {
  if (isErrorBody(body)) {
    const { code, message, details, request_id } = body.error;
    return new ApiError({
      status,
      code,
      message,
      details: details ?? {},
      requestId: request_id ?? headerRequestId,
    });
  }
  return new ApiError({
    status,
    code: status >= 500 ? "internal" : `http_${status}`,
    message: statusText ? `${status} ${statusText}` : `the server answered ${status}`,
    requestId: headerRequestId,
  });
}

/** The CSRF cookie's value in a `document.cookie` string, or null. */
export function readCsrfCookie(cookieString: string): string | null {
  const pairs = cookieString.split(";").map((part) => part.trim());
  for (const name of CSRF_COOKIES) {
    for (const pair of pairs) {
      if (pair.startsWith(`${name}=`)) {
        const value = decodeURIComponent(pair.slice(name.length + 1));
        if (value) return value;
      }
    }
  }
  return null;
}

/** `?a=1&b=x,y`: empty values are left out, arrays are comma-joined. */
export function buildQuery(query: Query | undefined): string {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) {
      if (value.length) params.set(key, value.join(","));
    } else {
      params.set(key, String(value));
    }
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

export interface RequestOptions {
  body?: unknown;
  query?: Query;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** A 401 here is an expected answer (wrong password…), not a reason to leave the page. */
  expectUnauthenticated?: boolean;
}

export interface ClientConfig {
  baseUrl?: string;
  fetch?: typeof fetch;
  readCookies?: () => string;
}

export class ApiClient {
  private readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;
  private readonly readCookies: () => string;
  private csrfFallback: string | null = null;
  private unauthenticatedListeners = new Set<(error: ApiError) => void>();

  constructor(config: ClientConfig = {}) {
    this.baseUrl = config.baseUrl ?? "";
    this.fetchImpl = config.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.readCookies =
      config.readCookies ?? (() => (typeof document === "undefined" ? "" : document.cookie));
  }

  /** Remembers the token from login/me, used when the cookie cannot be read. */
  setCsrfToken(token: string | null | undefined): void {
    this.csrfFallback = token ?? null;
  }

  csrfToken(): string | null {
    return readCsrfCookie(this.readCookies()) ?? this.csrfFallback;
  }

  /** Called on every unexpected 401 (the session ended); returns an unsubscribe function. */
  onUnauthenticated(listener: (error: ApiError) => void): () => void {
    this.unauthenticatedListeners.add(listener);
    return () => this.unauthenticatedListeners.delete(listener);
  }

  url(path: string, query?: Query): string {
    return `${this.baseUrl}${API_PREFIX}${path}${buildQuery(query)}`;
  }

  async request<T>(method: Method, path: string, options: RequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json", ...options.headers };
    let body: BodyInit | undefined;
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.body);
    }
    if (UNSAFE_METHODS.has(method)) {
      const token = this.csrfToken();
      if (token) headers[CSRF_HEADER] = token;
    }
    let response: Response;
    try {
      response = await this.fetchImpl(this.url(path, options.query), {
        method,
        headers,
        body,
        credentials: "include",
        signal: options.signal,
      });
    } catch (cause) {
      if (cause instanceof DOMException && cause.name === "AbortError") throw cause;
      throw new ApiError({
        status: 0,
        code: "network_error",
        message: "the server could not be reached; check your connection and try again",
      });
    }
    const requestId = response.headers.get("X-Request-ID");
    const text = await response.text();
    let parsed: unknown = undefined;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    if (!response.ok) {
      const error = errorFromResponse(response.status, response.statusText, requestId, parsed);
      if (error.isUnauthenticated && !options.expectUnauthenticated) {
        for (const listener of this.unauthenticatedListeners) listener(error);
      }
      throw error;
    }
    return parsed as T;
  }

  get<T>(path: string, query?: Query, options: RequestOptions = {}): Promise<T> {
    return this.request<T>("GET", path, { ...options, query });
  }

  post<T>(path: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
    return this.request<T>("POST", path, { ...options, body });
  }

  put<T>(path: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
    return this.request<T>("PUT", path, { ...options, body });
  }

  patch<T>(path: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
    return this.request<T>("PATCH", path, { ...options, body });
  }

  delete<T = void>(path: string, options: RequestOptions = {}): Promise<T> {
    return this.request<T>("DELETE", path, options);
  }
}

/** The app's client: same origin as the page (the api serves the app). */
export const api = new ApiClient();
