// The pipeline board, tested as a person uses it: headless Chromium (Debian's
// chromium, CHROMIUM) driven by playwright-core against a crmd (CRMD_BIN) on
// its own SQLite database. Steps run in order on one page and share its
// state; each saves a screenshot under SHOTS. Any console error, page error,
// failed request or error answer that a step did not provoke on purpose fails
// the step. Every wait is on a state of the page, never on time.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { require, startCrmd, appCreate, client, launch } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const SHOTS = process.env.BOARD_SHOTS || join(here, "../../build/board");
const WAIT = 20000; // ms: generous for two busy cores; every wait ends as soon as its state holds

let crmd, base, key, token, browser, context, page;
let shot = 0;
const problems = [];
// Error answers a step provokes, each once: {status, method, path (a prefix)}.
const expected = [];

/* The API, from the test (to set things up and to check what the board did). */
const api = (method, path, body) => client(base, { key, token })(method, path, body);

function watch(p) {
  p.on("console", (m) => {
    // An error answer is logged by Chromium as "Failed to load resource": the
    // response check below decides whether it was provoked on purpose.
    if (m.type() === "error" && !/^Failed to load resource: the server responded with a status of/.test(m.text()))
      problems.push(`console error: ${m.text()}`);
  });
  p.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  p.on("dialog", (d) => { problems.push(`unexpected dialog: ${d.message()}`); d.dismiss(); });
  p.on("requestfailed", (r) => {
    // The browser fetches the page's icon on its own time; a reload may cut it off.
    if (r.failure()?.errorText === "net::ERR_ABORTED" && /\/board\/icon\.[0-9a-f]+\.svg$/.test(r.url())) return;
    problems.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`);
  });
  p.on("response", (r) => {
    if (r.status() < 400) return;
    const path = new URL(r.url()).pathname;
    const e = expected.find((x) => x.status === r.status() && x.method === r.request().method() &&
      path.startsWith(x.path) && !x.seen);
    if (e) e.seen = true;
    else problems.push(`unexpected ${r.status()} for ${r.request().method()} ${r.url()}`);
  });
}

/* Runs one step: it must leave no problem and provoke every error it expected. */
async function step(name, body) {
  problems.length = 0;
  expected.length = 0;
  await body();
  assert.deepEqual(expected.filter((e) => !e.seen), [], "error answers expected but not seen");
  assert.deepEqual(problems, []);
  shot++;
  await page.screenshot({ path: join(SHOTS, `${String(shot).padStart(2, "0")}-${name}.png`), fullPage: true });
}

const until = (fn, arg) => page.waitForFunction(fn, arg, { timeout: WAIT });
const boardReady = () => until(() => document.getElementById("board").dataset.ready);
/* Reloads once the board has loaded, so that no request of it is cut off. */
async function reload() {
  await boardReady();
  await page.reload();
}
const card = (name) => page.locator(".card", { has: page.locator(".card-name", { hasText: name }) });
const column = (stage) => page.locator(`.column[data-stage="${stage}"]`);
const count = (stage) => page.locator(`#sum-${stage}`).getAttribute("data-count");
const summaryIs = (stage, n) => until(([s, v]) => document.getElementById(`sum-${s}`)?.dataset.count === String(v), [stage, n]);

async function axeScan(p, what) {
  await p.evaluate(AXE); // DevTools evaluation, which the page's CSP does not govern
  const res = await p.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = res.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad.map((v) => `${what}: ${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`), []);
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  crmd = await startCrmd();
  base = crmd.base;
  ({ key, token } = appCreate(crmd.db, "board"));
  browser = await launch();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: "UTC" });
  context.setDefaultTimeout(WAIT);
  page = await context.newPage();
  watch(page);
});

after(async () => {
  await browser?.close();
  await crmd?.stop();
});

test("the page: strict CSP, no inline script, cached files, small first load", async () => {
  const res = await fetch(`${base}/`, { headers: { "Accept-Encoding": "gzip" } });
  const csp = res.headers.get("content-security-policy");
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  const html = await res.text();
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, "an inline script");
  assert.doesNotMatch(html, /\sstyle=|\son[a-z]+=/i, "an inline style or handler");
  let total = gzipSync(html).length;
  for (const [, path] of html.matchAll(/(?:src|href)="(\/board\/[^"]+)"/g)) {
    const r = await fetch(base + path);
    assert.equal(r.status, 200, path);
    assert.match(r.headers.get("cache-control"), /max-age=31536000/);
    const again = await fetch(base + path, { headers: { "If-None-Match": r.headers.get("etag") } });
    assert.equal(again.status, 304, path);
    const body = Buffer.from(await r.arrayBuffer());
    total += gzipSync(body).length;
    // Text from the API is only ever set as text: no HTML parser in the script.
    if (path.endsWith(".js")) assert.doesNotMatch(body.toString(), /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
  }
  assert.ok(total < 100 * 1024, `first load is ${total} bytes compressed`);
  console.log(`# first load: ${total} bytes gzip-compressed`);
});

test("signs in by the link, and the link leaves the address bar", async () => {
  await step("signed-in", async () => {
    await page.goto(`${base}/#app=${key}&token=${token}`);
    await column("negotiation").waitFor();
    await boardReady();
    assert.equal(new URL(page.url()).hash, "");
    assert.equal(await page.evaluate(() => sessionStorage.getItem("crmd.app")), key);
    assert.deepEqual(await page.locator(".column h3").allTextContents(), ["New", "Contacted", "Qualified", "Proposal", "Negotiation"]);
    assert.equal(await count("new"), "0");
  });
});

test("a link to another app does not move a signed-in tab unseen", async () => {
  // Someone else's sign-in link (login CSRF): the tab stays in its app until
  // the person chooses; the top bar names the app it shows.
  const other = appCreate(crmd.db, "elsewhere");
  const app = () => page.evaluate(() => sessionStorage.getItem("crmd.app"));
  const asked = () => until((k) => !document.getElementById("signin").hidden && location.hash === "" &&
    document.getElementById("signin-note").textContent.includes(k) &&
    !document.getElementById("signin-stay").hidden, other.key);
  await step("switch-asked", async () => {
    assert.equal(await page.textContent("#who"), `App ${key}`);
    await page.goto(`${base}/#app=${other.key}&token=${other.token}`);
    await asked();
    assert.equal(await app(), key);
    assert.equal(await page.inputValue("#signin-app"), other.key);
    await axeScan(page, "switch");
  });
  await step("switch-declined", async () => {
    await page.click("#signin-stay");
    await boardReady();
    assert.equal(await app(), key);
    assert.equal(await page.textContent("#who"), `App ${key}`);
  });
  await step("switch-taken", async () => {
    await page.goto(`${base}/#app=${other.key}&token=${other.token}`);
    await asked();
    await page.click("#signin-form button[type=submit]");
    await until((k) => document.getElementById("who").textContent === `App ${k}`, other.key);
    assert.equal(await app(), other.key);
    // and back, the same way
    await page.goto(`${base}/#app=${key}&token=${token}`);
    await until(() => !document.getElementById("signin-stay").hidden);
    await page.click("#signin-form button[type=submit]");
    await until((k) => document.getElementById("who").textContent === `App ${k}`, key);
    await boardReady();
    assert.equal(await app(), key);
  });
});

test("a new lead: a validation error beside its field, then created", async () => {
  await step("validation-error", async () => {
    await page.click("#new-lead");
    await page.fill("#l-name", "Acme renewal");
    await page.fill("#l-probability", "150");
    expected.push({ status: 422, method: "POST", path: "/leads" });
    await page.click("#lead-save");
    await until(() => document.getElementById("e-probability").textContent !== "");
    assert.equal(await page.getAttribute("#l-probability", "aria-invalid"), "true");
    assert.equal(await page.textContent("#e-name"), "");
    assert.equal(await page.textContent("#lead-error"), "");
  });
  await step("lead-created", async () => {
    await page.fill("#l-probability", "40");
    await page.fill("#l-value", "1200.50");
    await page.fill("#l-source", "website");
    await page.click("#lead-save");
    await until(() => document.getElementById("e-probability").textContent === "" &&
      document.getElementById("drawer-title").textContent === "Acme renewal");
    await page.click("#drawer-close");
    await card("Acme renewal").waitFor();
    assert.equal(await column("new").locator(".card").count(), 1);
    await summaryIs("new", 1);
    assert.match(await page.textContent("#sum-new"), /1,200\.5/);
    assert.match(await card("Acme renewal").textContent(), /40%.*website/);
  });
});

test("drags a lead across two stages, by mouse and by keyboard", async () => {
  await step("dragged", async () => {
    await card("Acme renewal").dragTo(column("contacted"));
    await column("contacted").locator(".card", { hasText: "Acme renewal" }).waitFor();
    await summaryIs("contacted", 1);
    await summaryIs("new", 0);
  });
  await step("moved-by-keyboard", async () => {
    await card("Acme renewal").focus();
    await page.keyboard.press("Shift+ArrowRight");
    await column("qualified").locator(".card", { hasText: "Acme renewal" }).waitFor();
    await until(() => document.getElementById("live").textContent === "Moved Acme renewal to Qualified.");
    // The moved card keeps the focus, so the next key goes on with it.
    assert.equal(await page.evaluate(() => document.activeElement.querySelector(".card-name")?.textContent), "Acme renewal");
    await summaryIs("qualified", 1);
    const leads = await api("GET", "/leads/?stage=qualified");
    assert.deepEqual(leads.data.map((l) => l.attributes.name), ["Acme renewal"]);
  });
});

test("arrow keys move the focus between cards and columns", async () => {
  await step("keyboard-focus", async () => {
    await api("POST", "/leads/", { lead: { name: "Beta pilot", stage: "qualified" } });
    await api("POST", "/leads/", { lead: { name: "Gamma deal", stage: "proposal" } });
    await reload();
    await card("Gamma deal").waitFor();
    await card("Beta pilot").focus(); // newest first: Beta above Acme
    await page.keyboard.press("ArrowDown");
    assert.equal(await page.evaluate(() => document.activeElement.querySelector(".card-name").textContent), "Acme renewal");
    await page.keyboard.press("ArrowRight");
    assert.equal(await page.evaluate(() => document.activeElement.querySelector(".card-name").textContent), "Gamma deal");
    await page.keyboard.press("Enter");
    await until(() => document.getElementById("drawer").open && document.getElementById("drawer-title").textContent === "Gamma deal");
    await page.keyboard.press("Escape");
    await until(() => !document.getElementById("drawer").open);
  });
});

test("follow-ups: add, complete, reopen, delete; the card shows overdue", async () => {
  await step("follow-ups", async () => {
    await card("Acme renewal").click();
    await until(() => document.getElementById("drawer-title").textContent === "Acme renewal");
    // A follow-up without a title: the API's error beside the title field.
    expected.push({ status: 422, method: "POST", path: "/leads/" });
    await page.click("#follow-form button[type=submit]");
    await until(() => document.getElementById("e-fo-title").textContent !== "");
    assert.equal(await page.getAttribute("#fo-title", "aria-invalid"), "true");
    await page.fill("#fo-title", "Call back");
    await page.fill("#fo-description", "Ask about <b>renewal</b>\nand the price");
    await page.fill("#fo-due", "2020-01-02T10:00");
    await page.click("#follow-form button[type=submit]");
    await page.locator("#follows .follow", { hasText: "Call back" }).waitFor();
    assert.equal(await page.locator("#follows .follow", { hasText: "Call back" }).locator(".status").textContent(), "overdue");
    assert.equal(await page.textContent("#e-fo-title"), "");
    assert.equal(await page.locator("#follows .follow-description").textContent(), "Ask about <b>renewal</b>\nand the price");
    await page.fill("#fo-title", "Send deck");
    await page.click("#follow-form button[type=submit]");
    const deck = page.locator("#follows .follow", { hasText: "Send deck" });
    await deck.locator(".status", { hasText: "pending" }).waitFor();
    await deck.getByRole("button", { name: "Complete follow-up Send deck" }).click();
    await deck.locator(".status", { hasText: "completed" }).waitFor();
    await deck.getByRole("button", { name: "Reopen follow-up Send deck" }).click();
    await deck.locator(".status", { hasText: "pending" }).waitFor();
    await deck.getByRole("button", { name: "Delete follow-up Send deck" }).click();
    await deck.waitFor({ state: "detached" });
    await card("Acme renewal").locator(".badge", { hasText: "Overdue" }).waitFor();
    // The history, newest first: the deleted follow-up, ..., the two stage changes, the creation.
    await until(() => document.getElementById("history").dataset.ready &&
      /follow deleted/.test(document.querySelector("#history li")?.textContent));
    const history = await page.locator("#history li").allTextContents();
    assert.ok(history.some((h) => /updated \(stage: contacted → qualified\)/.test(h)), history.join("\n"));
    assert.ok(history.some((h) => /updated \(stage: new → contacted\)/.test(h)), history.join("\n"));
    assert.match(history.at(-1), /created \(.*name: \(none\) → Acme renewal/);
    const follows = await api("GET", `/leads/${await card("Acme renewal").getAttribute("data-id")}/follows`);
    assert.deepEqual(follows.data.map((f) => [f.attributes.title, f.attributes.status]), [["Call back", "overdue"]]);
  });
  await step("follow-completed", async () => {
    const call = page.locator("#follows .follow", { hasText: "Call back" });
    await call.getByRole("button", { name: "Complete follow-up Call back" }).click();
    await call.locator(".status", { hasText: "completed" }).waitFor();
    await card("Acme renewal").locator(".badge").waitFor({ state: "detached" });
    await call.getByRole("button", { name: "Reopen follow-up Call back" }).click();
    await call.locator(".status", { hasText: "overdue" }).waitFor();
    await page.click("#drawer-close");
  });
});

test("delete to the trash and recover", async () => {
  await step("moved-to-trash", async () => {
    await card("Beta pilot").click();
    await until(() => document.getElementById("drawer-title").textContent === "Beta pilot");
    await page.click("#lead-delete");
    await until(() => !document.getElementById("drawer").open);
    await card("Beta pilot").waitFor({ state: "detached" });
    await summaryIs("qualified", 1);
    await until(() => document.getElementById("live").textContent === "Moved Beta pilot to the trash.");
  });
  await step("trash", async () => {
    await page.click("nav a[data-view=trash]");
    await until(() => document.getElementById("trash").dataset.ready);
    const item = page.locator("#trash li", { hasText: "Beta pilot" });
    assert.equal(await page.locator("#trash li").count(), 1);
    await item.getByRole("button", { name: "Recover Beta pilot" }).click();
    await item.waitFor({ state: "detached" });
    await page.locator("#trash-empty").waitFor();
    await page.click("nav a[data-view=board]");
    await card("Beta pilot").waitFor();
    await summaryIs("qualified", 2);
  });
});

test("someone else's change: the card or the drawer reloads and says so", async () => {
  const gamma = async () => (await api("GET", "/leads/?search=gamma")).data[0];
  await step("conflict-on-drag", async () => {
    await boardReady();
    await api("PUT", `/leads/${(await gamma()).id}`, { lead: { value: 5000 } });
    await card("Gamma deal").dragTo(column("negotiation"));
    await until(() => /changed by someone else/.test(document.getElementById("toast").textContent));
    await column("proposal").locator(".card", { hasText: "5,000" }).waitFor();
    assert.equal((await gamma()).attributes.stage, "proposal");
    // Shown anew, it moves.
    await card("Gamma deal").focus();
    await page.keyboard.press("Shift+ArrowRight");
    await column("negotiation").locator(".card", { hasText: "Gamma deal" }).waitFor();
    await page.keyboard.press("Shift+ArrowLeft");
    await column("proposal").locator(".card", { hasText: "Gamma deal" }).waitFor();
    await until(() => document.getElementById("live").textContent === "Moved Gamma deal to Proposal.");
  });
  await step("conflict-in-drawer", async () => {
    await card("Gamma deal").click();
    await until(() => document.getElementById("drawer-title").textContent === "Gamma deal");
    await api("PUT", `/leads/${(await gamma()).id}`, { lead: { source: "partner" } });
    await page.fill("#l-value", "7000");
    expected.push({ status: 412, method: "PUT", path: "/leads/" });
    await page.click("#lead-save");
    await until(() => /Someone else changed this lead/.test(document.getElementById("lead-error").textContent));
    assert.equal(await page.inputValue("#l-source"), "partner");
    assert.equal(await page.inputValue("#l-value"), "5000");
    await page.fill("#l-value", "");
    await page.click("#lead-save");
    // The save clears the error at once, before its PUT is answered: wait for the answer.
    await until(() => document.getElementById("live").textContent === "Saved Gamma deal.");
    await until(() => document.getElementById("lead-error").textContent === "" && document.getElementById("l-value").value === "");
    const g = await gamma();
    assert.deepEqual([g.attributes.value, g.attributes.source], [null, "partner"]);
    await page.click("#drawer-close");
  });
});

test("a name that looks like HTML is shown as text", async () => {
  const evil = "<img src=x onerror=alert(1)>";
  await step("xss-as-text", async () => {
    await page.click("#new-lead");
    await page.fill("#l-name", evil);
    await page.click("#lead-save");
    await until((n) => document.getElementById("drawer-title").textContent === n, evil);
    await page.click("#drawer-close");
    await card(evil).waitFor();
    assert.equal(await card(evil).locator(".card-name").textContent(), evil);
    assert.equal(await page.locator("main img, dialog img").count(), 0);
    await summaryIs("new", 1);
  });
});

test("filters and search are kept in the URL, and the summary follows them", async () => {
  await step("search", async () => {
    await page.fill("#f-search", "acme");
    await until(() => new URLSearchParams(location.search).get("search") === "acme");
    await until(() => document.querySelectorAll(".card").length === 1);
    await summaryIs("new", 0);
    await summaryIs("qualified", 1);
    assert.equal(await card("Acme renewal").count(), 1);
  });
  await step("filter-after-reload", async () => {
    await page.selectOption("#f-stage", "proposal");
    await until(() => new URLSearchParams(location.search).get("stage") === "proposal");
    await page.fill("#f-search", "");
    await until(() => !new URLSearchParams(location.search).has("search") && document.querySelectorAll(".column").length === 1);
    await reload();
    await card("Gamma deal").waitFor();
    assert.equal(await page.inputValue("#f-stage"), "proposal");
    assert.equal(await page.locator(".column").count(), 1);
    await page.check("#f-overdue");
    await until(() => new URLSearchParams(location.search).get("has_overdue") === "true");
    await until(() => document.getElementById("board").dataset.ready && document.querySelectorAll(".card").length === 0);
    await page.selectOption("#f-stage", "");
    await card("Acme renewal").waitFor();
    await until(() => document.querySelectorAll(".card").length === 1);
    await page.click("#f-clear");
    await until(() => location.search === "" && document.querySelectorAll(".card").length === 4);
  });
});

test("My day lists the overdue follow-up with its lead, and the funnel draws the stages", async () => {
  await step("my-day", async () => {
    await page.click("nav a[data-view=myday]");
    await until(() => document.getElementById("myday").dataset.ready);
    const items = page.locator("#myday .follow");
    assert.equal(await items.count(), 1);
    assert.match(await items.first().textContent(), /Call back.*overdue.*Acme renewal/);
    await items.first().getByRole("button", { name: "Acme renewal" }).click();
    await until(() => document.getElementById("drawer-title").textContent === "Acme renewal");
    await page.click("#drawer-close");
    await items.first().getByRole("button", { name: "Complete follow-up Call back" }).click();
    await until(() => document.getElementById("myday").dataset.ready && !document.getElementById("myday-empty").hidden);
    assert.equal(await items.count(), 0);
    const f = await api("GET", "/follows/");
    assert.deepEqual(f.data.map((x) => [x.attributes.title, x.attributes.status]), [["Call back", "completed"]]);
  });
  await step("funnel", async () => {
    await page.click("nav a[data-view=funnel]");
    await until(() => document.getElementById("funnel").dataset.ready);
    assert.deepEqual(await page.locator(".funnel-nums").allTextContents(),
      ["1 lead · value 0", "0 leads · value 0", "2 leads · value 1,200.5", "1 lead · value 0", "0 leads · value 0"]);
  });
});

test("no serious or critical accessibility violation", async () => {
  await step("axe", async () => {
    await page.click("nav a[data-view=board]");
    await boardReady();
    await axeScan(page, "board");
    await card("Acme renewal").click();
    await until(() => document.getElementById("drawer-title").textContent === "Acme renewal" &&
      document.querySelector("#follows .follow"));
    await axeScan(page, "drawer");
    await page.click("#drawer-close");
    await page.click("nav a[data-view=myday]");
    await until(() => document.getElementById("myday").dataset.ready);
    await axeScan(page, "my day");
    await page.click("nav a[data-view=trash]");
    await until(() => document.getElementById("trash").dataset.ready);
    await axeScan(page, "trash");
    await page.click("nav a[data-view=board]");
    await boardReady();
  });
});

test("CSV: export what the filters keep, import all or nothing", async () => {
  await step("csv-export", async () => {
    await page.click("nav a[data-view=board]");
    await page.fill("#f-search", "acme");
    await until(() => new URLSearchParams(location.search).get("search") === "acme");
    await boardReady();
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#csv-export")]);
    const text = readFileSync(await download.path(), "utf8");
    const lines = text.trim().split(/\r?\n/);
    assert.equal(lines[0], "unique_id,name,source,account_id,contact_id,value,stage,probability,status,created_at,updated_at");
    assert.equal(lines.length, 2);
    assert.match(lines[1], /,Acme renewal,website,,,1200\.5,qualified,40,active,/);
    await page.click("#f-clear");
    await until(() => location.search === "");
    await boardReady();
  });
  await step("csv-import-refused", async () => {
    const csv = "name,stage,value,probability\nDelta one,contacted,100,10\nDelta two,contacted,200,150\n";
    expected.push({ status: 422, method: "POST", path: "/leads/import" });
    await page.setInputFiles("#csv-import", { name: "bad.csv", mimeType: "text/csv", buffer: Buffer.from(csv) });
    await until(() => /Nothing was imported from bad\.csv/.test(document.getElementById("import-result").textContent));
    assert.match(await page.textContent("#import-result li"), /^Row 3, probability: /);
    assert.equal(await count("contacted"), "0");
  });
  await step("csv-import-not-utf8", async () => {
    expected.push({ status: 400, method: "POST", path: "/leads/import" });
    await page.setInputFiles("#csv-import", { name: "latin1.csv", mimeType: "text/csv",
                                              buffer: Buffer.from("name,stage\nCaf\xe9 one,contacted\n", "latin1") });
    await until(() => /Nothing was imported from latin1\.csv/.test(document.getElementById("import-result").textContent));
    assert.match(await page.textContent("#import-result"), /UTF-8/);
    assert.equal(await count("contacted"), "0");
  });
  await step("csv-imported", async () => {
    const csv = "name,stage,value,probability\nDelta one,contacted,100,10\nDelta two,contacted,200,50\n";
    await page.setInputFiles("#csv-import", { name: "good.csv", mimeType: "text/csv", buffer: Buffer.from(csv) });
    await until(() => document.getElementById("import-result").textContent === "Imported 2 leads from good.csv.");
    await summaryIs("contacted", 2);
    await card("Delta two").waitFor();
    assert.match(await page.textContent("#sum-contacted"), /2 leads · 300 · weighted 110/);
  });
});

test("columns load more as they scroll, without repeating a card", async () => {
  await step("load-more", async () => {
    for (let i = 0; i < 45; i++) await api("POST", "/leads/", { lead: { name: `Bulk ${i}`, stage: "negotiation" } });
    await reload();
    await summaryIs("negotiation", 45);
    const cards = column("negotiation").locator(".card");
    await until(() => document.querySelectorAll('.column[data-stage="negotiation"] .card').length === 20);
    for (const n of [40, 45]) {
      await column("negotiation").locator(".cards").evaluate((l) => { l.scrollTop = l.scrollHeight; });
      await until((k) => document.querySelectorAll('.column[data-stage="negotiation"] .card').length === k, n);
    }
    const names = await cards.locator(".card-name").allTextContents();
    assert.equal(new Set(names).size, 45);
  });
});

test("a phone-sized screen: one column under another, nothing wider than the screen", async () => {
  const phone = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
  phone.setDefaultTimeout(WAIT);
  const desktop = page;
  page = await phone.newPage();
  watch(page);
  try {
    await step("phone", async () => {
      await page.goto(`${base}/#app=${key}&token=${token}`);
      await boardReady();
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 375));
      const boxes = await page.locator(".column").evaluateAll((cs) => cs.map((c) => c.getBoundingClientRect().toJSON()));
      assert.equal(boxes.length, 5);
      for (let i = 1; i < boxes.length; i++) assert.ok(boxes[i].top >= boxes[i - 1].bottom, "columns stack");
      await card("Acme renewal").click();
      await until(() => document.getElementById("drawer-title").textContent === "Acme renewal");
      const drawer = await page.locator("#drawer").boundingBox();
      assert.deepEqual([drawer.x, drawer.width], [0, 375]);
      await axeScan(page, "phone");
    });
  } finally {
    await phone.close();
    page = desktop;
  }
});

test("a token the server refuses shows the expired screen; the form signs in again", async () => {
  await step("expired", async () => {
    const bad = token.slice(0, -4) + (token.endsWith("AAAA") ? "BBBB" : "AAAA");
    // The board asks for the summary first, and nothing more once it is refused.
    expected.push({ status: 401, method: "GET", path: "/leads/summary" });
    await page.evaluate((t) => sessionStorage.setItem("crmd.token", t), bad);
    await reload();
    await page.locator("#signin").waitFor();
    await until(() => /expired/.test(document.getElementById("signin-note").textContent));
    assert.equal(await page.inputValue("#signin-app"), key);
    await axeScan(page, "sign-in");
  });
  await step("expired-before-asking", async () => {
    // A token whose exp has passed is known expired without asking the server:
    // any request with it would be an unexpected 401 here.
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const old = `${b64({ alg: "RS256", typ: "JWT" })}.${b64({ sub: "x", exp: 1 })}.c2ln`;
    await page.goto(`${base}/#app=${key}&token=${old}`);
    await until(() => /expired/.test(document.getElementById("signin-note").textContent) &&
      !document.getElementById("signin").hidden && location.hash === "");
  });
  await step("wrong-token-in-the-form", async () => {
    await page.fill("#signin-token", "not-a-token");
    expected.push({ status: 401, method: "GET", path: "/leads/summary" });
    await page.click("#signin-form button[type=submit]");
    await until(() => document.getElementById("signin-error").textContent === "The server did not accept this key and token.");
  });
  await step("signed-in-again", async () => {
    await page.fill("#signin-token", token);
    await page.click("#signin-form button[type=submit]");
    await card("Acme renewal").waitFor();
    assert.equal(await page.locator("#signin").isHidden(), true);
  });
});

test("another app's board shows none of the first's leads (the README's picture)", async () => {
  const other = appCreate(crmd.db, "showcase");
  const wide = await browser.newContext({ viewport: { width: 1280, height: 640 }, timezoneId: "UTC" });
  wide.setDefaultTimeout(WAIT);
  const first = page;
  page = await wide.newPage();
  watch(page);
  const saved = { key, token };
  ({ key, token } = other);
  try {
    const leads = [["Northwind renewal", "new", 18000, 10, "website"], ["Globex pilot", "new", 6500, 15, "referral"],
      ["Initech rollout", "contacted", 42000, 25, "cold_call"], ["Umbrella expansion", "qualified", 120000, 40, "partner"],
      ["Stark support plan", "qualified", 24000, 50, "website"], ["Wayne analytics", "proposal", 75000, 60, "referral"],
      ["Acme Corp migration", "negotiation", 98000, 80, "event"]];
    for (const [name, stage, value, probability, source] of leads) {
      const lead = (await api("POST", "/leads/", { lead: { name, stage, value, probability, source } })).data;
      if (name.startsWith("Umbrella")) await api("POST", `/leads/${lead.id}/follows`, { follow: { title: "Send contract", due_date: "2020-03-01T09:00:00Z" } });
      if (name.startsWith("Wayne")) await api("POST", `/leads/${lead.id}/follows`, { follow: { title: "Demo", due_date: "2099-03-01T09:00:00Z" } });
    }
    await step("other-app", async () => {
      await page.goto(`${base}/#app=${key}&token=${token}`);
      await boardReady();
      assert.equal(await page.locator(".card").count(), leads.length);
      assert.equal(await card("Acme renewal").count(), 0);
      await card("Umbrella expansion").locator(".badge").waitFor();
      await page.screenshot({ path: join(SHOTS, "board.png") });
    });
  } finally {
    ({ key, token } = saved);
    await wide.close();
    page = first;
  }
});
