// bench/board.mjs (make bench-board): how fast the pipeline board is
// interactive on 500 leads, in headless Chromium (Debian's chromium driven
// by playwright-core), against build/crmd on a new SQLite database on
// 127.0.0.1. Prints a section for bench/results.md: the first load's bytes
// (as sent, gzip) and, over RUNS fresh page loads, the time from navigation
// to the board's "board-ready" mark (summary and every column's first page
// with its follow-ups rendered, drag and keys live), median and worst; then
// the time of a stage change by keyboard until the headers show it.
import { startCrmd, appCreate, client, launch } from "../tests/board/harness.mjs";
import { cpus, loadavg } from "node:os";

const LEADS = 500, RUNS = Number(process.env.RUNS || 7);
const STAGES = ["new", "contacted", "qualified", "proposal", "negotiation"];

const crmd = await startCrmd();
const creds = appCreate(crmd.db, "bench");
const api = client(crmd.base, creds);
for (let i = 0; i < LEADS; i++) {
  const lead = (await api("POST", "/leads/", { lead: {
    name: `Lead ${i}`, stage: STAGES[i % 5], value: 1000 + 37 * i, probability: i % 101, source: ["web", "referral", "event"][i % 3],
  } })).data;
  if (i % 5 === 0) await api("POST", `/leads/${lead.id}/follows`, { follow: { title: "Call", due_date: i % 10 ? "2099-01-01T00:00:00Z" : "2020-01-01T00:00:00Z" } });
}
const browser = await launch();
const link = `${crmd.base}/#app=${creds.key}&token=${creds.token}`;
const ready = [];
let bytes = 0, moveMs = 0;
for (let run = 0; run < RUNS; run++) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  let sent = 0;
  page.on("response", async (r) => {
    if (!new URL(r.url()).pathname.startsWith("/leads") && !new URL(r.url()).pathname.startsWith("/follows"))
      sent += Number((await r.allHeaders())["content-length"] || 0);
  });
  await page.goto(link);
  await page.waitForFunction(() => performance.getEntriesByName("board-ready").length > 0, null, { timeout: 60000 });
  ready.push(await page.evaluate(() => performance.getEntriesByName("board-ready")[0].startTime));
  if (run === 0) {
    bytes = sent;
    const first = page.locator('.column[data-stage="new"] .card').first();
    const before = await page.evaluate(() => document.getElementById("sum-contacted").dataset.count);
    const t0 = await page.evaluate(() => performance.now());
    await first.focus();
    await page.keyboard.press("Shift+ArrowRight");
    await page.waitForFunction((b) => document.getElementById("sum-contacted").dataset.count === String(Number(b) + 1), before);
    moveMs = (await page.evaluate(() => performance.now())) - t0;
  }
  await context.close();
}
await browser.close();
await crmd.stop();
ready.sort((a, b) => a - b);
const ms = (x) => `${Math.round(x)} ms`;
console.log(`## ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC: \`make bench-board\` (the pipeline board, issue 13)

- machine: nproc ${cpus().length}, load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}; crmd --threads default, SQLite
- ${LEADS} leads (100 per stage), ${LEADS / 5} with a follow-up; headless Chromium, 1280×900, a fresh context per load

| measure | value |
|---|---|
| first load, bytes sent (page, script, style, icon; gzip) | ${bytes} |
| navigation to board interactive, median of ${RUNS} | ${ms(ready[Math.floor(RUNS / 2)])} |
| navigation to board interactive, worst of ${RUNS} | ${ms(ready[RUNS - 1])} |
| Shift+→ on a card until the headers show the move | ${ms(moveMs)} |
`);
