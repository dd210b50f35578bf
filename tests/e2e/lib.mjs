// Shared harness for the browser scenarios: Debian's Chromium through playwright-core (from
// web/node_modules; browsers are never downloaded), small assertions and API helpers.
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

const require = createRequire(new URL("../../web/package.json", import.meta.url));
const { chromium } = require("playwright-core");

export const BASE_URL = mustEnv("ETP_E2E_BASE_URL");
export const SCREENSHOTS = mustEnv("ETP_E2E_SCREENSHOTS");
const CHROMIUM = process.env.ETP_E2E_CHROMIUM || "/usr/bin/chromium";
export const PASSWORD = "correct horse battery staple";

function mustEnv(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run through pytest tests/e2e)`);
  return value;
}

const started = Date.now();
export function step(message) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${message}`);
}

export function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

export function unique(prefix) {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}

/** A fresh profile in a temporary directory, removed on close. */
export async function launch() {
  const userDataDir = mkdtempSync(join(tmpdir(), "etp-e2e-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1360, height: 880 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-dev-shm-usage",
    ],
  });
  context.setDefaultTimeout(10_000);
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors = [];
  page.on("pageerror", (error) => pageErrors.push(error));
  page.on("console", (message) => {
    if (message.type() === "error") console.log(`  browser console: ${message.text()}`);
  });
  const close = async () => {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  };
  return { context, page, pageErrors, close };
}

export async function screenshot(page, name, { keepToasts = false } = {}) {
  if (!keepToasts) {
    // Notifications from earlier steps would hide the screen's content.
    await page.evaluate(() => {
      for (const close of document.querySelectorAll('[aria-label="Dismiss notification"]')) {
        close.click();
      }
    });
  }
  // Full-page shots of a scrolled page would draw the sticky sidebar mid-page; the cursor's
  // crosshair would stay on charts.
  await page.mouse.move(0, 0);
  await page.evaluate(() => {
    for (const over of document.querySelectorAll(".u-over")) over.dispatchEvent(new MouseEvent("mouseleave"));
    window.scrollTo(0, 0);
  });
  await page.waitForTimeout(150); // let transitions settle
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
  step(`screenshot ${name}.png`);
}

/** A JSON call straight to the api (as a script would make it, outside the browser). */
export async function apiCall(method, path, { body, token } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(`${BASE_URL}/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null, response };
}

/**
 * Registers a user through the API and keeps their session like a browser would (cookies and
 * the CSRF header), for the other people in a scenario.
 */
export async function registerViaApi({ email, name }) {
  const registered = await apiCall("POST", "/auth/register", {
    body: { email, display_name: name, password: PASSWORD },
  });
  check(registered.status === 201, `register ${email}: ${registered.status} ${JSON.stringify(registered.body)}`);
  const cookies = registered.response.headers
    .getSetCookie()
    .map((cookie) => cookie.split(";")[0])
    .join("; ");
  const csrf = registered.body.csrf_token;
  const call = async (method, path, body) => {
    const response = await fetch(`${BASE_URL}/api/v1${path}`, {
      method,
      headers: { Cookie: cookies, "X-CSRF-Token": csrf, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  };
  return { user: registered.body.user, call };
}

/** Runs a scenario; any failure prints the error and exits non-zero (pytest shows the output). */
export async function runScenario(name, scenario) {
  rmSync(join(SCREENSHOTS, `failure-${name}.png`), { force: true });
  const browser = await launch();
  try {
    await scenario(browser);
    check(
      browser.pageErrors.length === 0,
      `uncaught errors in the page: ${browser.pageErrors.map(String).join(" | ")}`,
    );
    step(`${name}: scenario passed`);
  } catch (error) {
    console.error(error?.stack ?? String(error));
    try {
      await browser.page.screenshot({ path: join(SCREENSHOTS, `failure-${name}.png`), fullPage: true });
      console.error(`failure screenshot: failure-${name}.png (page ${browser.page.url()})`);
    } catch {
      // the page may be gone
    }
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}
