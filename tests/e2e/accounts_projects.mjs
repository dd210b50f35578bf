// Scenario: register → sign out → sign in (after a refused attempt) → create a project → add a
// member registered through the API → change their role → read the audit log → create an API
// token that is shown exactly once and works.
import {
  BASE_URL,
  PASSWORD,
  apiCall,
  check,
  registerViaApi,
  runScenario,
  screenshot,
  step,
  unique,
} from "./lib.mjs";

const owner = { name: "Ada Owner", email: `${unique("ada")}@example.com` };
const member = { name: "Bea Member", email: `${unique("bea")}@example.com` };
const projectName = `Wind tunnel ${unique("p").slice(-4)}`;

await runScenario("accounts_projects", async ({ page }) => {
  const toast = (text) => page.getByTestId("toast").filter({ hasText: text });

  step("a visitor is sent to the sign-in page");
  await page.goto(`${BASE_URL}/projects`);
  await page.waitForURL(/\/login\?next=%2Fprojects$/);

  step("register");
  await page.getByRole("link", { name: "Create an account" }).click();
  await page.getByLabel("Name").fill(owner.name);
  await page.getByLabel("Email").fill(owner.email);
  await page.getByLabel("Password").fill("short");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByText("Use at least 8 characters.").waitFor();
  await page.getByLabel("Password").fill(PASSWORD);
  await screenshot(page, "register");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL(/\/projects$/);
  await page.getByText("No projects yet").waitFor();
  await page.getByTestId("user-menu").getByText(owner.name).waitFor();

  step("sign out");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/login$/);
  const me = await page.evaluate(async () => (await fetch("/api/v1/auth/me")).status);
  check(me === 401, `after sign-out /auth/me answers ${me}`);

  step("a wrong password shows a toast with the request id");
  await page.getByLabel("Email").fill(owner.email);
  await page.getByLabel("Password").fill("not my password");
  await page.getByRole("button", { name: "Sign in" }).click();
  const refused = page.getByTestId("toast").first();
  await refused.waitFor();
  const requestId = (await refused.getByTestId("toast-request-id").textContent())?.trim();
  check(requestId && requestId.length >= 8, `the toast shows a request id (${requestId})`);
  await refused.getByRole("button", { name: "Copy request id" }).waitFor();
  await screenshot(page, "login-error", { keepToasts: true });
  await refused.getByRole("button", { name: "Dismiss notification" }).click();

  step("sign in");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/projects$/);

  step("a second user registers through the API and shares a project of theirs");
  const bea = await registerViaApi(member);
  const beasProject = await bea.call("POST", "/projects", {
    name: "Bridge strain gauges",
    description: "Long-term strain monitoring on the north span.",
  });
  check(beasProject.status === 201, `Bea's project: ${beasProject.status}`);
  const shared = await bea.call("POST", `/projects/${beasProject.body.id}/members`, {
    email: owner.email,
    role: "viewer",
  });
  check(shared.status === 201, `Bea adds Ada as viewer: ${shared.status} ${JSON.stringify(shared.body)}`);

  step("create a project");
  await page.getByRole("button", { name: "New project" }).click();
  await page.getByLabel("Name").fill(projectName);
  await page.getByLabel("Description").fill("Calibrating the pitot array against the reference probe.");
  await page.getByRole("button", { name: "Create project" }).click();
  await page.waitForURL(/\/projects\/[0-9a-f-]{36}$/);
  const projectId = page.url().split("/").pop();
  await page.getByRole("heading", { level: 1, name: projectName }).waitFor();
  await page.getByTestId("role-badge").filter({ hasText: "owner" }).first().waitFor();
  await page.getByText("No experiments yet").waitFor(); // a project opens on its experiments
  await page.getByRole("navigation", { name: "Project sections" }).getByRole("link", { name: "Members" }).click();
  await page.waitForURL(/\/members$/);

  step("adding an unknown email explains itself under the field");
  await page.getByLabel("Email").fill(`nobody-${unique("x")}@example.com`);
  await page.getByRole("button", { name: "Add member" }).click();
  await page.getByText("No user has this email; they must register first").waitFor();

  step("add the member as a viewer");
  await page.getByLabel("Email").fill(member.email);
  await page.getByLabel("Role", { exact: true }).selectOption("viewer");
  await page.getByRole("button", { name: "Add member" }).click();
  await toast("Member added").waitFor();
  const row = page.locator(`[data-testid="member-row"][data-email="${member.email}"]`);
  await row.waitFor();
  const roleSelect = row.getByLabel(`Role of ${member.name}`);
  check((await roleSelect.inputValue()) === "viewer", "the new member is a viewer");

  step("change their role to editor");
  await roleSelect.selectOption("editor");
  await toast("Role changed").waitFor();
  const members = await page.evaluate(
    async (pid) => (await (await fetch(`/api/v1/projects/${pid}/members`)).json()).items,
    projectId,
  );
  const stored = members.find((m) => m.email === member.email);
  check(stored?.role === "editor", `the api has the new role: ${JSON.stringify(stored)}`);
  check(members.length === 2, `two members: ${members.length}`);
  await screenshot(page, "project-members");

  step("the audit log shows what happened, newest first");
  await page.getByRole("link", { name: "Audit log" }).click();
  await page.waitForURL(/\/audit$/);
  const items = page.getByTestId("audit-item");
  await items.first().waitFor();
  const actions = await items.evaluateAll((nodes) => nodes.map((n) => n.dataset.action));
  check(
    JSON.stringify(actions.slice(0, 3)) ===
      JSON.stringify(["member.role_changed", "member.added", "project.created"]),
    `audit actions: ${actions}`,
  );
  await items.first().getByText(`changed ${member.name}’s role from viewer to editor`).waitFor();
  await items.nth(1).getByText(`added ${member.email} as viewer`).waitFor();
  await screenshot(page, "project-audit");

  step("the projects list has search and role badges");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Projects" }).click();
  await page.waitForURL(/\/projects$/);
  const card = page.getByTestId("project-card").filter({ hasText: projectName });
  await card.getByTestId("role-badge").filter({ hasText: "owner" }).waitFor();
  const beasCard = page.getByTestId("project-card").filter({ hasText: "Bridge strain gauges" });
  await beasCard.getByTestId("role-badge").filter({ hasText: "viewer" }).waitFor();
  await screenshot(page, "projects");
  await page.getByLabel("Search projects").fill("no such project zzz");
  await page.getByText("No projects match").waitFor();
  await page.getByLabel("Search projects").fill(projectName.slice(0, 8));
  await card.waitFor();
  await beasCard.waitFor({ state: "detached" });

  step("a viewer sees members read-only");
  await page.getByLabel("Search projects").fill("");
  await beasCard.click();
  await page.getByRole("heading", { level: 1, name: "Bridge strain gauges" }).waitFor();
  await page.getByRole("navigation", { name: "Project sections" }).getByRole("link", { name: "Members" }).click();
  await page.getByText("Only owners can add people or change roles.").waitFor();
  const beaRow = page.locator(`[data-testid="member-row"][data-email="${member.email}"]`);
  await beaRow.getByTestId("role-badge").filter({ hasText: "owner" }).waitFor();
  check((await page.getByRole("heading", { name: "Add a member" }).count()) === 0, "no add form");
  check((await page.locator("[data-testid=members-table] select").count()) === 0, "no role selects");
  check((await beaRow.getByRole("button").count()) === 0, "no remove button on others");
  await screenshot(page, "project-viewer");

  step("create an API token: shown once, then only its preview");
  await page.getByTestId("user-menu").click();
  await page.waitForURL(/\/profile$/);
  await page.getByTestId("sessions-table").getByText("This browser").waitFor();
  await page.getByLabel("Token name").fill("e2e laptop");
  await page.getByRole("button", { name: "Create token" }).click();
  const secret = page.getByTestId("new-token-value");
  await secret.waitFor();
  const token = (await secret.textContent())?.trim() ?? "";
  check(token.startsWith("etpu_") && token.length > 30, `a full token is shown: ${token.slice(0, 9)}…`);
  await page.getByRole("button", { name: "Copy the new token" }).waitFor();
  await page.getByTestId("tokens-table").getByText("e2e laptop").waitFor();
  await screenshot(page, "profile-token");
  const viaToken = await apiCall("GET", "/auth/me", { token });
  check(viaToken.status === 200 && viaToken.body.user.email === owner.email, "the token signs API calls in");

  await page.reload();
  await page.getByTestId("tokens-table").getByText("e2e laptop").waitFor();
  check((await page.getByTestId("new-token").count()) === 0, "the token is not shown again");
  const html = await page.content();
  check(!html.includes(token), "the page no longer contains the token");

  step("password reset pages");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/login$/);
  await page.getByRole("link", { name: "Forgot password?" }).click();
  await page.getByLabel("Email").fill(owner.email);
  await page.getByRole("button", { name: "Send reset link" }).click();
  await page.getByText("Check your email").waitFor();
  await page.goto(`${BASE_URL}/reset-password?token=etpr_not-a-real-token`);
  await page.getByLabel("New password", { exact: true }).fill("another fine password");
  await page.getByLabel("Repeat the new password").fill("another fine password");
  await page.getByRole("button", { name: "Change password" }).click();
  await page.getByText("The reset link is invalid, used or expired").waitFor();
});
