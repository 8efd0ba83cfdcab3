// The visualizer against a server with API keys (issue 19), in Debian's
// Chromium: the page loads under its Content-Security-Policy with no
// violation, a run without a key gets the 401 and shows the key box, the
// key typed there goes out as Authorization: Bearer and is kept in
// sessionStorage only (it survives a reload of the tab, never reaches
// localStorage or a URL).  Run by `make test-ui` beside visualizer.test.mjs.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = process.env.ATTND_BIN || path.resolve(here, "../../build/attnd");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
  "--no-first-run", "--disable-background-networking", "--disable-component-update",
  "--disable-sync"];
const KEY = "ui-test-key-0123456789abcdef";

let attnd, attndLog = "", base, context, dir;

function startAttnd(keyFile) {
  return new Promise((resolve, reject) => {
    attnd = spawn(BIN, ["--host", "127.0.0.1", "--port", "0", "--api-keys", keyFile], {
      env: { ...process.env, OMP_WAIT_POLICY: "PASSIVE" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    const timer = setTimeout(() => reject(new Error("attnd did not start:\n" + attndLog)), 10000);
    attnd.on("error", (e) => { clearTimeout(timer); reject(e); });
    attnd.on("exit", (code) => { clearTimeout(timer); reject(new Error("attnd exited " + code + ":\n" + attndLog)); });
    attnd.stderr.setEncoding("utf8");
    attnd.stderr.on("data", (d) => {
      attndLog = (attndLog + d).slice(-20000);
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(attndLog);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
  });
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "attnd-ui-keys-"));
  const keyFile = path.join(dir, "keys");
  fs.writeFileSync(keyFile, "# ui test\n" + KEY + "\n");
  base = await startAttnd(keyFile);
  context = await chromium.launchPersistentContext(path.join(dir, "profile"), {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30000,
  });
});

after(async () => {
  if (context) await context.close();
  if (attnd && attnd.exitCode === null) {
    attnd.removeAllListeners("exit");
    const gone = new Promise((r) => attnd.once("exit", r));
    process.kill(attnd.pid, "SIGTERM");              // by pid: only the server this file started
    await Promise.race([gone, new Promise((r) => setTimeout(r, 5000).unref())]);
    if (attnd.exitCode === null && attnd.signalCode === null) process.kill(attnd.pid, "SIGKILL");
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  assert.ok(!attndLog.includes(KEY), "the key appeared in attnd's log");
});

// The POST a click on Run sends, and its response.
async function runOnce(page) {
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === "POST", { timeout: 10000 }),
    page.click("#run"),
  ]);
  return resp;
}

test("the page asks for the key after a 401 and sends it from sessionStorage", async () => {
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push("pageerror: " + e.message));
  page.on("console", (m) => {
    // the 401 itself is logged by Chromium as a failed resource: expected here
    if (m.type() === "error" && !/status of 401/.test(m.text())) problems.push("console: " + m.text());
  });
  // CSP violations are reported to the page as events: collect them.
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation",
      (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));
  });

  const nav = await page.goto(base + "/");
  assert.equal(nav.status(), 200);
  const csp = nav.headers()["content-security-policy"];
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.match(csp, /script-src 'self' 'sha256-/);

  const first = await runOnce(page);
  assert.equal(first.status(), 401);
  assert.equal(first.request().headers()["authorization"], undefined);
  await page.waitForSelector("#api-key-box:not([hidden])", { timeout: 5000 });

  await page.fill("#api-key", KEY);
  const second = await runOnce(page);
  assert.equal(second.status(), 200);
  assert.equal(second.request().headers()["authorization"], "Bearer " + KEY);
  assert.equal(await page.evaluate(() => sessionStorage.getItem("attnd-api-key")), KEY);
  assert.equal(await page.evaluate(() => localStorage.length), 0);

  // a reload of the tab keeps it (sessionStorage), and it still works
  await page.reload();
  assert.equal(await page.inputValue("#api-key"), KEY);
  const third = await runOnce(page);
  assert.equal(third.status(), 200);
  assert.ok(!page.url().includes(KEY));

  assert.deepEqual(await page.evaluate(() => window.__csp), [], "CSP violations");
  await page.close();
  assert.deepEqual(problems, [], "the page reported errors");
});
