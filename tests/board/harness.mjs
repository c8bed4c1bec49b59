// What the board's tests and its benchmark (bench/board.mjs) share: a crmd
// on a new SQLite database, apps, and the browser (playwright-core from
// tools/node_modules driving Debian's chromium).
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const here = dirname(fileURLToPath(import.meta.url));
export const require = createRequire(join(here, "../../tools/package.json"));
export const BIN = process.env.CRMD_BIN || join(here, "../../build/crmd");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

/* A crmd serving a new SQLite database in a temporary folder: {base, db, stop()}. */
export async function startCrmd() {
  const work = mkdtempSync(join(tmpdir(), "crmd-board-"));
  const db = join(work, "crmd.db");
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const proc = spawn(BIN, ["serve", "--listen", `127.0.0.1:${port}`, "--db", `sqlite:${db}`,
      "--rate-limit", "off", "--auth-limit", "off"], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    proc.stderr.on("data", (d) => { err += d; });
    const exited = new Promise((r) => proc.once("exit", () => r(false)));
    const base = `http://127.0.0.1:${port}`;
    const ready = (async () => {
      for (;;) {
        try { if ((await fetch(`${base}/healthz`)).ok) return true; } catch (e) { /* not yet */ }
        await new Promise((r) => setTimeout(r, 50)); // polling the server, not waiting on a page
      }
    })();
    if (await Promise.race([ready, exited])) {
      const stop = async () => {
        if (proc.exitCode === null) {
          const gone = new Promise((r) => proc.once("exit", r));
          proc.kill("SIGTERM");
          await gone;
        }
        rmSync(work, { recursive: true, force: true });
      };
      return { base, db, stop };
    }
    if (!/in use/i.test(err)) throw new Error(`crmd serve exited: ${err}`);
  }
  throw new Error("no free port");
}

/* A new app on db: {key, token}. */
export function appCreate(db, name) {
  const out = execFileSync(BIN, ["app", "create", name, "--db", `sqlite:${db}`], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  return { key: out.match(/BLOCKS_API_KEY=(\S+)/)[1], token: out.match(/BLOCKS_AUTH_TOKEN=(\S+)/)[1] };
}

/* A client of the API with an app's credentials: api(method, path, body) -> JSON. */
export function client(base, creds) {
  return async (method, path, body) => {
    const res = await fetch(base + path, {
      method, headers: { Authorization: `Bearer ${creds.token}`, AppId: creds.key, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
}

export function launch() {
  const { chromium } = require("playwright-core");
  return chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
}
