// Berth's web UI in a real browser: Debian's Chromium driven by playwright-core (no browser
// download). Run by tests/ui.rs with BERTH_URL (one node, or a load balancer in front of
// several), ADMIN_PASSWORD, USER_PASSWORD, NODES (how many nodes the jobs page must list) and
// SHOTS (the screenshot directory; empty: no screenshots). Fails (exit 1) on a broken flow, on
// any console error or page error, and on any failed request or unexpected error status.
import { chromium } from "playwright-core";
import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";

const base = process.env.BERTH_URL;
const adminPassword = process.env.ADMIN_PASSWORD;
const userPassword = process.env.USER_PASSWORD;
const shots = process.env.SHOTS || "";
const nodes = Number(process.env.NODES || "1");
const problems = [];
let expected = new Set(); // "METHOD path status" answers a step provokes on purpose

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});

function assert(ok, what) {
  if (!ok) throw new Error(`assertion failed: ${what}`);
}

async function open(locale) {
  const context = await browser.newContext({ locale, viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    // A page answered with an error status on purpose logs "Failed to load resource" too.
    const at = m.location()?.url;
    const path = at ? new URL(at).pathname : "";
    if ([...expected].some((k) => k.split(" ")[1] === path) && m.text().startsWith("Failed to load resource")) return;
    problems.push(`console error on ${page.url()} (${at}): ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error on ${page.url()}: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  page.on("response", (r) => {
    const path = new URL(r.url()).pathname;
    const key = `${r.request().method()} ${path} ${r.status()}`;
    if (r.status() >= 400 && !expected.has(key)) problems.push(`unexpected ${key}`);
  });
  return { context, page };
}

async function shot(page, locale, name) {
  if (!shots) return;
  mkdirSync(`${shots}/${locale}`, { recursive: true });
  await page.screenshot({ path: `${shots}/${locale}/${name}.png`, fullPage: true });
}

async function signIn(page, user, password) {
  await page.goto(`${base}/login`);
  await page.getByLabel(/Username|用户名/).fill(user);
  await page.getByLabel(/Password|密码/).fill(password);
  await Promise.all([page.waitForNavigation(), page.locator("button.primary").click()]);
  assert(page.url().endsWith("/projects"), `${user} signed in (at ${page.url()})`);
  // The page after the sign-in knows the session (behind a load balancer: on another node).
  const who = await page.locator("header a.who").allInnerTexts();
  assert(who.length === 1 && who[0].includes(user), `${user}'s session on the next page: ${who}`);
}

const sha256 = (b) => "sha256:" + createHash("sha256").update(b).digest("hex");

async function push(user, secret, repository, tag) {
  const auth = "Basic " + Buffer.from(`${user}:${secret}`).toString("base64");
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const layer = Buffer.from(tag.repeat(1024));
  for (const blob of [config, layer]) {
    const r = await fetch(`${base}/v2/${repository}/blobs/uploads/?digest=${sha256(blob)}`, {
      method: "POST", headers: { authorization: auth, "content-type": "application/octet-stream" }, body: blob,
    });
    assert(r.status === 201, `blob pushed as ${user}: ${r.status} ${await r.text()}`);
  }
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(layer), size: layer.length }],
  }));
  const r = await fetch(`${base}/v2/${repository}/manifests/${tag}`, {
    method: "PUT", headers: { authorization: auth, "content-type": "application/vnd.oci.image.manifest.v1+json" }, body: manifest,
  });
  assert(r.status === 201, `manifest pushed as ${user}: ${r.status}`);
  return sha256(manifest);
}

try {
  // The administrator creates a private project, adds a developer and a guest, and a robot.
  const admin = await open("en-US");
  let page = admin.page;
  await signIn(page, "admin", adminPassword);
  await page.locator("summary", { hasText: "New project" }).click();
  await page.getByLabel("Project name").fill("team");
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Create project" }).click()]);
  assert(page.url().endsWith("/projects/team"), "the project page opens");
  await page.getByRole("link", { name: "Members" }).click();
  for (const [name, role] of [["dev", "Developer"], ["guest", "Guest"]]) {
    await page.getByLabel("User name or LDAP group DN").fill(name);
    await page.locator("#role").selectOption({ label: role });
    await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Add", exact: true }).click()]);
  }
  const members = await page.locator("tbody").innerText();
  assert(members.includes("dev") && members.includes("Developer") && members.includes("guest"), `members listed: ${members}`);
  await page.getByRole("link", { name: "Robot accounts" }).click();
  await page.locator("summary", { hasText: "New robot account" }).click();
  await page.getByLabel("Name", { exact: true }).fill("ci");
  await page.getByLabel("Push").check();
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Create robot account" }).click()]);
  const secret = (await page.locator("#robot-secret").innerText()).trim();
  assert(secret.length === 32, "the secret is shown");
  await shot(page, "en", "robots-secret");

  // The robot pushes; the developer finds the image and its pull commands.
  const digest = await push("robot$team+ci", secret, "team/app", "v1");
  const dev = await open("en-US");
  await signIn(dev.page, "dev", userPassword);
  await dev.page.getByRole("link", { name: "team", exact: true }).click();
  await dev.page.getByRole("link", { name: "team/app" }).click();
  const pull = await dev.page.locator("code", { hasText: "team/app:v1" }).innerText();
  assert(pull.endsWith("/team/app:v1") && pull.startsWith("docker pull "), `pull command: ${pull}`);
  const byDigest = await dev.page.locator("code", { hasText: digest }).innerText();
  assert(byDigest.endsWith(`/team/app@${digest}`), "pull by digest");

  // The developer adds a tag from the page.
  await dev.page.locator(`input[name="new-tag-${digest}"]`).fill("stable");
  await Promise.all([dev.page.waitForNavigation(), dev.page.getByRole("button", { name: "Add tag" }).click()]);
  assert((await dev.page.locator("span.tag", { hasText: "stable" }).count()) === 1, "the new tag is listed");
  assert((await dev.page.getByRole("button", { name: "Delete selected" }).count()) === 0, "no delete control for a developer");

  // The administrator deletes two artifacts at once, confirming.
  const d2 = await push("robot$team+ci", secret, "team/app", "v2");
  const d3 = await push("robot$team+ci", secret, "team/app", "v3");
  await page.goto(`${base}/projects/team/repositories/app`);
  page.once("dialog", (d) => d.accept());
  for (const d of [d2, d3]) await page.locator(`input[type=checkbox][value="${d}"]`).check();
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Delete selected" }).click()]);
  const remaining = await page.locator("table.artifacts").innerText();
  assert(remaining.includes("v1") && !remaining.includes("v2") && !remaining.includes("v3"), `after the bulk delete: ${remaining}`);
  // Each deletion is in the audit log, by the administrator: Administration, then its tab.
  assert((await page.locator("header nav").getByRole("link", { name: "Audit log" }).count()) === 0, "no audit log link in the top navigation");
  await Promise.all([page.waitForNavigation(), page.locator("header nav").getByRole("link", { name: "Administration" }).click()]);
  assert(new URL(page.url()).pathname === "/admin/users", `Administration opens the users (at ${page.url()})`);
  const tabs = await page.locator("nav.tabs a").allInnerTexts();
  assert(JSON.stringify(tabs) === JSON.stringify(["Users", "Robot accounts", "Audit log", "Jobs", "Configuration"]), `administration tabs: ${tabs}`);
  await Promise.all([page.waitForNavigation(), page.locator("nav.tabs").getByRole("link", { name: "Audit log" }).click()]);
  assert(new URL(page.url()).pathname === "/admin/audit", `the audit log tab (at ${page.url()})`);
  await page.getByLabel("Operation").selectOption("delete");
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Filter" }).click()]);
  const log = await page.locator("tbody").innerText();
  for (const d of [d2, d3]) assert(log.includes(`team/app@${d}`), `the deletion of ${d} is logged: ${log}`);
  assert(log.split("\n").every((row) => row.includes("admin")), `by the administrator: ${log}`);

  // The guest sees the members but no control; a forged removal is refused.
  const guest = await open("en-US");
  await signIn(guest.page, "guest", userPassword);
  await guest.page.goto(`${base}/projects/team/repositories/app`);
  assert((await guest.page.locator("button[name=op]").count()) === 0, "no artifact control for a guest");
  await guest.page.goto(`${base}/projects/team/members`);
  assert((await guest.page.getByRole("button", { name: "Remove" }).count()) === 0, "no remove control for a guest");
  const token = await guest.page.locator("input[name=_csrf]").first().inputValue();
  expected = new Set(["POST /projects/team/members/1/remove 403"]);
  const forged = await guest.page.request.post(`${base}/projects/team/members/1/remove`, { form: { _csrf: token } });
  assert(forged.status() === 403, `a guest's forged removal: ${forged.status()}`);
  expected = new Set();

  // Administration: a user created, made administrator and disabled (and then refused at
  // sign-in); a system robot for the project, whose secret pulls; the jobs and the nodes.
  await page.goto(`${base}/admin/users`);
  await page.locator("summary", { hasText: "New user" }).click();
  await page.getByLabel("User name", { exact: true }).fill("carol");
  await page.getByLabel("Password", { exact: true }).fill(userPassword);
  await page.getByLabel("Full name").fill("Carol Example");
  await page.getByLabel("E-mail").fill("carol@example.org");
  await page.getByLabel("Administrator", { exact: true }).check();
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Create user" }).click()]);
  let carol = page.locator("tbody tr", { hasText: "carol" });
  let row = await carol.innerText();
  assert(row.includes("Carol Example") && row.includes("carol@example.org") && row.includes("Administrator") && row.includes("Enabled"), `the new user: ${row}`);
  await Promise.all([page.waitForNavigation(), carol.getByRole("button", { name: "Disable", exact: true }).click()]);
  carol = page.locator("tbody tr", { hasText: "carol" });
  assert((await carol.locator("td").nth(2).innerText()).trim() === "Disabled", `disabled: ${await carol.innerText()}`);
  assert((await carol.getByRole("button", { name: "Enable", exact: true }).count()) === 1, "an enable control for a disabled user");
  {
    const other = await open("en-US");
    expected = new Set(["POST /login 401"]);
    await other.page.goto(`${base}/login`);
    await other.page.getByLabel(/Username/).fill("carol");
    await other.page.getByLabel(/Password/).fill(userPassword);
    const [answer] = await Promise.all([other.page.waitForResponse((r) => r.request().method() === "POST"), other.page.locator("button.primary").click()]);
    assert(answer.status() === 401, `a disabled user's sign-in: ${answer.status()}`);
    assert(await other.page.locator("#login-error").isVisible(), "the refusal is shown");
    expected = new Set();
    await other.context.close();
  }

  await page.locator("nav.tabs").getByRole("link", { name: "Robot accounts" }).click();
  await page.waitForURL(`${base}/admin/robots`);
  await page.locator("summary", { hasText: "New robot account" }).click();
  await page.getByLabel("Name", { exact: true }).fill("mirror");
  await page.getByRole("textbox", { name: "Projects", exact: true }).fill("team");
  await page.getByLabel("Pull").check();
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Create robot account" }).click()]);
  const systemSecret = (await page.locator("#robot-secret").innerText()).trim();
  assert(systemSecret.length >= 16, `the system robot's secret is shown: ${systemSecret}`);
  const mirror = await page.locator("tbody tr", { hasText: "mirror" }).innerText();
  assert(mirror.includes("team") && mirror.includes("Pull") && !mirror.includes("Push"), `the system robot: ${mirror}`);
  const robotAuth = "Basic " + Buffer.from(`robot$mirror:${systemSecret}`).toString("base64");
  const pulled = await fetch(`${base}/v2/team/app/manifests/v1`, {
    headers: { authorization: robotAuth, accept: "application/vnd.oci.image.manifest.v1+json" },
  });
  assert(pulled.status === 200 && pulled.headers.get("docker-content-digest") === digest, `the system robot pulls: ${pulled.status}`);

  await page.locator("nav.tabs").getByRole("link", { name: "Jobs" }).click();
  await page.waitForURL(`${base}/admin/jobs`);
  assert((await page.locator("h1").innerText()) === "Jobs", "the jobs page");
  const nodeRows = page.locator("h2", { hasText: "Nodes" }).locator("xpath=following-sibling::*[1]").locator("tbody tr");
  assert((await nodeRows.count()) === nodes, `${nodes} node(s) listed: ${await nodeRows.allInnerTexts()}`);

  // Every page, in both languages, for the screenshots; no untranslated key in Chinese.
  const pages = [
    ["projects", "/projects"], ["project", "/projects/team"], ["repository", "/projects/team/repositories/app"],
    ["members", "/projects/team/members"], ["robots", "/projects/team/robots"],
    ["logs", "/projects/team/logs"], ["settings", "/projects/team/settings"], ["audit", "/admin/audit"], ["account", "/account"],
    ["users", "/admin/users"], ["system-robots", "/admin/robots"], ["jobs", "/admin/jobs"],
  ];
  // Pages still being built: screenshotted when they answer, skipped while they are 404.
  for (const [name, path] of [["configuration", "/admin/configuration"]]) {
    expected = new Set([`GET ${path} 404`]);
    const r = await page.request.get(`${base}${path}`);
    expected = new Set();
    if (r.status() !== 404) {
      assert(r.status() === 200, `${path}: ${r.status()}`);
      pages.push([name, path]);
    }
  }
  // The artifact page, reached by its digest on the repository page.
  await page.goto(`${base}/projects/team/repositories/app`);
  const artifactLink = page.locator(`a[href*="/artifacts/${digest}"]`).first();
  assert((await artifactLink.count()) === 1, "the repository page links the artifact's digest");
  await Promise.all([page.waitForNavigation(), artifactLink.click()]);
  const artifactPath = new URL(page.url()).pathname;
  assert(artifactPath === `/projects/team/repositories/app/artifacts/${digest}`, `the artifact page (at ${artifactPath})`);
  assert((await page.locator("main").innerText()).includes(digest), "the artifact page shows the digest");
  pages.push(["artifact", artifactPath]);
  const shotNames = pages.map(([name]) => name);
  console.log(`screenshots: ${shotNames.join(" ")}`);
  for (const locale of ["en", "zh-CN"]) {
    const { page } = await open(locale === "en" ? "en-US" : "zh-CN");
    expected = new Set();
    await page.goto(`${base}/login`);
    await shot(page, locale, "login");
    await signIn(page, "admin", adminPassword);
    for (const [name, path] of pages) {
      await page.goto(`${base}${path}`);
      assert((await page.locator("html").getAttribute("lang")) === locale, `${path} in ${locale}`);
      if (locale === "zh-CN") {
        const text = await page.locator("body").innerText();
        const leftover = text.match(/\b(nav|login|projects?|repository|members|robots|role|action|artifact|logs|settings|account|op|paging|error|tab|type|admin|users|jobs|configuration)-[a-z-]+\b/);
        assert(!leftover, `${path}: untranslated key ${leftover && leftover[0]}`);
      }
      await shot(page, locale, name);
    }
    expected = new Set(["GET /projects/nothing 404"]);
    await page.goto(`${base}/projects/nothing`);
    await shot(page, locale, "not-found");
    expected = new Set();
  }
  // The language switch in the header.
  await page.goto(`${base}/projects`);
  await page.locator("#lang-select").selectOption("zh-CN");
  await Promise.all([page.waitForNavigation(), page.locator("form.lang button").click()]);
  assert((await page.locator("h1").innerText()) === "项目", "switched to Chinese");
} catch (e) {
  problems.push(String(e.stack || e));
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log("ui: all flows passed");
