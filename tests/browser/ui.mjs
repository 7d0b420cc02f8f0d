// Berth's web UI in a real browser: Debian's Chromium driven by playwright-core (no browser
// download). Run by tests/ui.rs with BERTH_URL, ADMIN_PASSWORD, USER_PASSWORD and SHOTS (the
// screenshot directory). Fails (exit 1) on a broken flow, on any console error or page error,
// and on any failed request or unexpected error status.
import { chromium } from "playwright-core";
import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";

const base = process.env.BERTH_URL;
const adminPassword = process.env.ADMIN_PASSWORD;
const userPassword = process.env.USER_PASSWORD;
const shots = process.env.SHOTS;
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
    if ([...expected].some((k) => k.startsWith(`GET ${path} `)) && m.text().startsWith("Failed to load resource")) return;
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
  mkdirSync(`${shots}/${locale}`, { recursive: true });
  await page.screenshot({ path: `${shots}/${locale}/${name}.png`, fullPage: true });
}

async function signIn(page, user, password) {
  await page.goto(`${base}/login`);
  await page.getByLabel(/Username|用户名/).fill(user);
  await page.getByLabel(/Password|密码/).fill(password);
  await Promise.all([page.waitForNavigation(), page.locator("button.primary").click()]);
  assert(page.url().endsWith("/projects"), `${user} signed in (at ${page.url()})`);
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
  // Each deletion is in the audit log, by the administrator.
  await page.getByRole("link", { name: "Audit log" }).click();
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

  // Every page, in both languages, for the screenshots; no untranslated key in Chinese.
  const pages = [
    ["projects", "/projects"], ["project", "/projects/team"], ["repository", "/projects/team/repositories/app"],
    ["members", "/projects/team/members"], ["robots", "/projects/team/robots"],
    ["logs", "/projects/team/logs"], ["settings", "/projects/team/settings"], ["audit", "/admin/audit"], ["account", "/account"],
  ];
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
        const leftover = text.match(/\b(nav|login|projects?|repository|members|robots|role|action|artifact|logs|settings|account|op|paging|error|tab|type)-[a-z-]+\b/);
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
