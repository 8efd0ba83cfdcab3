// Browser tests of attnd's visualizer (GET /, web/index.html).
//
// Starts build/attnd on a free 127.0.0.1 port, drives Debian's Chromium
// through playwright-core (no browser of its own), and checks what the page
// draws against what the API returns for the same request.  Run by
// `make test-ui` (and so by `make test`); see README.md beside this file.
//
//   ATTND_BIN  the server binary        (default ../../build/attnd)
//   CHROMIUM   the browser              (default /usr/bin/chromium)
//   UI_OUT     screenshots, downloads   (default ../../build/ui)

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = process.env.ATTND_BIN || path.resolve(here, "../../build/attnd");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const OUT = process.env.UI_OUT || path.resolve(here, "../../build/ui");

// The flags the machine needs: no sandbox as root, and no background
// networking (the closed network refuses Chromium's own connections).
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
  "--no-first-run", "--disable-background-networking", "--disable-component-update",
  "--disable-sync"];

let attnd, attndLog = "", base, context, profileDir;

// ------------------------------------------------------------ setup

function startAttnd() {
  return new Promise((resolve, reject) => {
    attnd = spawn(BIN, ["--host", "127.0.0.1", "--port", "0"], {
      env: { ...process.env, OMP_WAIT_POLICY: "PASSIVE" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    const timer = setTimeout(() => reject(new Error("attnd did not say where it listens:\n" + attndLog)), 10000);
    attnd.on("error", (e) => { clearTimeout(timer); reject(e); });
    attnd.on("exit", (code) => { clearTimeout(timer); reject(new Error("attnd exited " + code + ":\n" + attndLog)); });
    attnd.stderr.setEncoding("utf8");
    attnd.stderr.on("data", (d) => {
      attndLog = (attndLog + d).slice(-20000);    // keep draining: the access log goes here
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(attndLog);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
  });
}

before(async () => {
  const major = Number(process.versions.node.split(".")[0]);
  assert.ok(major >= 20, "playwright-core needs Node.js 20 or later; this is " + process.version);
  assert.ok(fs.existsSync(BIN), "no attnd binary at " + BIN + " (run make first)");
  assert.ok(fs.existsSync(CHROMIUM), "no browser at " + CHROMIUM + " (Debian package chromium)");
  fs.mkdirSync(OUT, { recursive: true });
  base = await startAttnd();
  profileDir = fs.mkdtempSync(path.join(os.tmpdir(), "attnd-ui-profile-"));   // a fresh --user-data-dir
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1,
    acceptDownloads: true, colorScheme: "light", timeout: 30000,
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
  if (profileDir) fs.rmSync(profileDir, { recursive: true, force: true });
});

// ------------------------------------------------------------ helpers

async function api(pathname, body) {
  const r = await fetch(base + pathname, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, text, json: JSON.parse(text) };
}

// A new page on / that fails the test on any script error.
async function openPage(t) {
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push("pageerror: " + e.message));
  // Chromium logs every 4xx/5xx fetch as a console error; the tests check
  // those statuses themselves, so only script errors count here.
  page.on("console", (m) => {
    if (m.type() === "error" && !/^Failed to load resource: the server responded with a status of [45]\d\d/.test(m.text()))
      problems.push("console: " + m.text());
  });
  page.on("requestfailed", (r) => problems.push("requestfailed: " + r.url()));
  t.after(async () => {
    await page.close();
    assert.deepEqual(problems, [], "the page reported errors");
  });
  const resp = await page.goto(base + "/");
  assert.equal(resp.status(), 200);
  return page;
}

// Sets the form: keys are element ids; booleans check, strings fill or select.
async function setForm(page, fields) {
  for (const [id, v] of Object.entries(fields)) {
    const sel = "#" + id;
    if (typeof v === "boolean") await page.setChecked(sel, v);
    else if (await page.$eval(sel, (el) => el.tagName) === "SELECT") await page.selectOption(sel, String(v));
    else await page.fill(sel, String(v));
  }
}

// Runs the form by pressing the Run button (or by `act`), and returns the
// request body the page sent (parsed) once the page has drawn the answer.
async function run(page, act = () => page.click("#run")) {
  const before = Number(await page.evaluate(() => document.body.dataset.runs || 0));
  const posts = [];
  const onRequest = (r) => { if (r.method() === "POST") posts.push(r); };
  page.on("request", onRequest);
  try {
    await act();
    await page.waitForFunction((n) => Number(document.body.dataset.runs || 0) > n, before, { timeout: 10000 });
  } finally {
    page.off("request", onRequest);
  }
  assert.ok(posts.length <= 1, "one run sent " + posts.length + " requests");
  const req = posts[0];
  return req ? { path: new URL(req.url()).pathname, text: req.postData(), body: JSON.parse(req.postData()) } : null;
}

const SEEDED = { "mode-seed": true, endpoint: "/attention", seed: "1337", B: "4", T: "8", C: "32",
                 head_size: "16", causal: true, scale: "true", labels: "" };

// The test's own viridis (matplotlib's, 11 stops), to check the pixels.
const VIRIDIS = ["#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c",
                 "#22a884", "#44bf70", "#7ad151", "#bddf26", "#fde725"]
  .map((h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));
function expectedColour(v) {
  const u = Math.min(1, Math.max(0, v)) * 10, i = Math.min(9, Math.floor(u)), f = u - i;
  return [0, 1, 2].map((k) => VIRIDIS[i][k] + (VIRIDIS[i + 1][k] - VIRIDIS[i][k]) * f);
}

// Every heatmap on the page: its name, size, and the colour of each cell
// read back from the canvas (a point inside the cell, away from the number).
function readHeatmaps(page) {
  return page.$$eval("#heatmaps canvas", (canvases) => canvases.map((c) => {
    const d = c.dataset, ctx = c.getContext("2d");
    const L = +d.left, T = +d.top, s = +d.cell, dpr = +d.dpr, rows = +d.rows, cols = +d.cols;
    const px = [];
    for (let i = 0; i < rows; i++) {
      const row = [];
      for (let j = 0; j < cols; j++) {
        const x = Math.floor((L + j * s + s * 0.22) * dpr), y = Math.floor((T + i * s + s * 0.22) * dpr);
        row.push(Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3)));
      }
      px.push(row);
    }
    return { name: d.name, rows, cols, left: L, top: T, cell: s, px };
  }));
}

// masks (optional): per heatmap, true for a cell the page must draw as
// masked (grey) rather than in the colour of its weight.
const MASKED_GREY = [128, 128, 128];
function assertColours(maps, mats, masks = null) {
  assert.equal(maps.length, mats.length);
  maps.forEach((m, b) => {
    assert.equal(m.rows, mats[b].length);
    assert.equal(m.cols, mats[b][0].length);
    m.px.forEach((row, i) => row.forEach((rgb, j) => {
      const want = masks && masks[b][i][j] ? MASKED_GREY : expectedColour(mats[b][i][j]);
      for (let k = 0; k < 3; k++)
        assert.ok(Math.abs(rgb[k] - want[k]) <= 1.01,
          `${m.name}[${i}][${j}] = ${mats[b][i][j]}: drawn rgb(${rgb}), viridis says rgb(${want.map(Math.round)})`);
    }));
  });
}

// Hovers the centre of cell (i, j) of heatmap b; returns the tooltip and
// the value the figure's readout names.
async function hover(page, b, i, j) {
  const canvas = (await page.$$("#heatmaps canvas"))[b];
  let box = await canvas.boundingBox();
  const vp = page.viewportSize();
  if (box.y < 0 || box.y + box.height > vp.height) {
    await canvas.scrollIntoViewIfNeeded();
    // the page hides the tooltip on scroll: let that scroll event pass first
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    box = await canvas.boundingBox();
  }
  const d = await canvas.evaluate((c) => ({ left: +c.dataset.left, top: +c.dataset.top, cell: +c.dataset.cell }));
  await page.mouse.move(box.x + d.left + (j + 0.5) * d.cell, box.y + d.top + (i + 0.5) * d.cell);
  return page.evaluate((k) => ({
    tooltip: document.getElementById("tooltip").hidden ? null : document.getElementById("tooltip").textContent,
    value: document.querySelectorAll("#heatmaps .readout")[k].dataset.value,
    masked: document.querySelectorAll("#heatmaps .readout")[k].dataset.masked,
  }), b);
}

function errorPanel(page) {
  return page.evaluate(() => {
    const t = (id) => document.getElementById(id).textContent;
    return { shown: !document.getElementById("error").hidden, status: t("error-status"), code: t("error-code"),
             message: t("error-message"), path: t("error-path"),
             pathShown: !document.getElementById("error-path").hidden,
             heatmaps: document.querySelectorAll("#heatmaps canvas").length,
             weightsHidden: document.getElementById("weights-panel").hidden };
  });
}

// The error panel after a run shows exactly the API's error for the same
// request (status, code, message, path), and no heatmap; returns that error.
async function assertShownError(page, sent) {
  const e = (await api(sent.path, sent.text)).json.error, err = await errorPanel(page);
  assert.deepEqual([err.shown, err.status, err.code, err.message, err.path, err.heatmaps, err.weightsHidden],
    [true, String(e.status), e.code, e.message, "path" in e ? e.path : "", 0, true]);
  assert.match(await page.textContent("#status"), new RegExp("^" + e.status + " "));
  return e;
}

// ------------------------------------------------------------ tests

test("GET / is the page: text/html, an ETag, 304 when current, HEAD, CORS", async () => {
  const r = await fetch(base + "/");
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "text/html; charset=utf-8");
  const html = await r.text();
  assert.match(html, /^<!doctype html>/i);
  assert.equal(html, fs.readFileSync(path.resolve(here, "../../web/index.html"), "utf8"), "served page differs from web/index.html");
  const etag = r.headers.get("etag");
  assert.match(etag, /^"[0-9a-f]{16}"$/);
  const again = await fetch(base + "/", { headers: { "If-None-Match": etag } });
  assert.equal(again.status, 304);
  assert.equal(await again.text(), "");
  const stale = await fetch(base + "/", { headers: { "If-None-Match": '"0000000000000000"' } });
  assert.equal(stale.status, 200);
  const head = await fetch(base + "/", { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-type"), "text/html; charset=utf-8");
  assert.equal(head.headers.get("etag"), etag);
  const post = await fetch(base + "/", { method: "POST", body: "{}" });
  assert.equal(post.status, 405);
  assert.equal((await post.json()).error.code, "method_not_allowed");
  // Nothing but the page itself and same-origin API calls: no CDN.
  assert.doesNotMatch(html, /<(script|link)[^>]+(src|href)="(https?:)?\/\//i);
});

test("the endpoint list holds only endpoints the server has; heads only for /multihead", async (t) => {
  const page = await openPage(t);
  const eps = await page.$$eval("#endpoint option", (os) => os.map((o) => o.value));
  assert.deepEqual(eps, ["/attention", "/multihead", "/bow"]);
  for (const p of eps) {
    const r = await fetch(base + p, { method: "OPTIONS" });
    assert.equal(r.status, 204, p + " is listed but the server has no such route");
  }
  for (const ep of eps) {
    await page.selectOption("#endpoint", ep);
    assert.equal(await page.isVisible("#heads"), ep === "/multihead", "heads control for " + ep);
  }
});

test("seeded /attention: every drawn cell is the API's weight; causal upper triangle is 0", async (t) => {
  const page = await openPage(t);
  await setForm(page, { ...SEEDED, labels: "Citizen:" });
  const sent = await run(page);
  const want = { seed: 1337, shape: [4, 8, 32], head_size: 16, causal: true, scale: true, return: ["weights", "out"] };
  assert.equal(sent.path, "/attention");
  assert.deepEqual(sent.body, want);
  const direct = await api("/attention", want);
  assert.equal(direct.status, 200);
  const W = direct.json.weights;
  assert.equal(await page.textContent("#status").then((s) => s.startsWith("200")), true);

  // Colours on the canvas.
  const maps = await readHeatmaps(page);
  assert.deepEqual(maps.map((m) => m.name), ["weights[0]", "weights[1]", "weights[2]", "weights[3]"]);
  assertColours(maps, W);

  // The exact values, cell by cell, through the hover tooltip (the first
  // and the last heatmap: the colours above cover all four).
  for (const b of [0, 3])
    for (let i = 0; i < 8; i++)
      for (let j = 0; j < 8; j++) {
        const h = await hover(page, b, i, j);
        assert.equal(Number(h.value), W[b][i][j], `weights[${b}][${i}][${j}]`);
        assert.ok(h.tooltip && h.tooltip.includes(`weights[${b}][${i}][${j}] = ${W[b][i][j]}`), h.tooltip);
      }
  const h = await hover(page, 0, 2, 1);
  assert.match(h.tooltip, /query 't' \(2\) → key 'i' \(1\)/);

  // The causal mask: an upper triangle of exact zeros drawn in the colour of 0,
  // and a lower triangle with weight in it.
  const zero = expectedColour(0);
  for (let b = 0; b < 4; b++)
    for (let i = 0; i < 8; i++) {
      let rowSum = 0;
      for (let j = 0; j < 8; j++) {
        rowSum += W[b][i][j];
        if (j > i) {
          assert.equal(W[b][i][j], 0);
          assert.deepEqual(maps[b].px[i][j], zero.map(Math.round), `weights[${b}][${i}][${j}] not drawn as 0`);
        } else assert.ok(W[b][i][j] > 0);
      }
      assert.ok(Math.abs(rowSum - 1) < 1e-5);
    }
  // The axis labels are the token labels.
  const labels = await page.$eval("#heatmaps canvas", (c) => c.getAttribute("aria-label"));
  assert.match(labels, /8 by 8/);

  // The outputs as tables, equal to the API's out.
  const tables = await page.$$eval("#tables table", (ts) => ts.map((tb) => ({
    name: tb.dataset.tensor,
    rows: Array.from(tb.tBodies[0].rows).map((r) => Array.from(r.cells).slice(1).map((c) => c.title)),
    heads: Array.from(tb.tBodies[0].rows).map((r) => r.cells[0].textContent),
  })));
  assert.deepEqual(tables.map((x) => x.name), ["out[0]", "out[1]", "out[2]", "out[3]"]);
  tables.forEach((tb, b) => assert.deepEqual(tb.rows.map((r) => r.map(Number)), direct.json.out[b]));
  assert.deepEqual(tables[0].heads, ["C 0", "i 1", "t 2", "i 3", "z 4", "e 5", "n 6", ": 7"]);

  // The screenshots: the README's (the top of the page, a cell hovered) and
  // the whole page.
  await page.mouse.move(0, 0);
  await page.evaluate(() => window.scrollTo(0, 0));
  await hover(page, 0, 6, 1);
  await page.screenshot({ path: path.join(OUT, "visualizer.png") });
  await page.screenshot({ path: path.join(OUT, "visualizer-full.png"), fullPage: true });

  // Without the mask the upper triangle fills in.
  await page.setChecked("#causal", false);
  const sent2 = await run(page);
  assert.equal(sent2.body.causal, false);
  const W2 = (await api("/attention", sent2.body)).json.weights;
  const maps2 = await readHeatmaps(page);
  assertColours(maps2, W2);
  assert.ok(W2[0][0][7] > 0 && W2[3][2][5] > 0);
});

test("the curl command runs as is and prints the page's response", async (t) => {
  const page = await openPage(t);
  await setForm(page, { ...SEEDED, B: "2", T: "5", C: "4", head_size: "3", scale: "number", "scale-number": "0.5", causal: false });
  const sent = await run(page);
  assert.equal(sent.body.scale, 0.5);
  const cmd = await page.textContent("#curl");
  assert.match(cmd, /^curl -s '[^']+\/attention' -H 'Content-Type: application\/json' -d '\{.*\}'$/);
  const out = await new Promise((resolve, reject) =>
    execFile("sh", ["-c", cmd], { timeout: 10000 }, (e, stdout) => (e ? reject(e) : resolve(stdout))));
  assert.equal(out, (await api("/attention", sent.text)).text);
  assert.deepEqual(JSON.parse(out).weights.length, 2);
  // The raw response panel shows the same text.
  assert.equal(await page.textContent("#raw"), out);
});

test("an invalid pasted x shows the API's error: 422, ragged_array, the path", async (t) => {
  const page = await openPage(t);
  await page.check("#mode-tensors");
  await page.fill("#t-x", "[[[1, 2], [3]]]");
  const sent = await run(page);
  const direct = await api("/attention", sent.text);
  assert.equal(direct.status, 422);
  const err = await errorPanel(page);
  assert.equal(err.shown, true);
  assert.equal(err.status, "422");
  assert.equal(err.code, "ragged_array");
  assert.equal(err.path, "x[0][1]");
  assert.equal(err.message, direct.json.error.message);
  assert.equal(err.heatmaps, 0);
  assert.equal(err.weightsHidden, true);
  assert.match(await page.textContent("#status"), /^422 /);
  await page.screenshot({ path: path.join(OUT, "error.png") });

  // A seeded error, too: the seed as typed goes to the API, which judges it.
  await page.check("#mode-seed");
  await page.fill("#seed", "12abc");
  assert.equal((await assertShownError(page, await run(page))).code, "out_of_range");

  // And one without a path: the row is hidden, not shown empty.
  await page.fill("#seed", "1");
  await page.fill("#B", "0");
  await run(page);
  const err3 = await errorPanel(page);
  assert.equal(err3.code, "empty_dimension");
  assert.equal(err3.path, "shape[0]");
});

test("pasted tensors: the README's example, and text that is not JSON is not sent", async (t) => {
  const page = await openPage(t);
  await page.check("#mode-tensors");
  const sent = await run(page);   // the boxes start with the README's example
  assert.deepEqual(sent.body, {
    x: [[[1, 0], [0, 1], [1, 1]]], wq: [[1, 0], [0, 1]], wk: [[0, 1], [1, 0]], wv: [[1, 2], [3, 4]],
    causal: true, scale: true, return: ["weights", "out"] });
  const W = (await api("/attention", sent.text)).json.weights;
  assert.deepEqual(W, [[[1, 0, 0], [0.66976154, 0.33023846, 0], [0.24825509, 0.24825509, 0.50348985]]]);
  assertColours(await readHeatmaps(page), W);

  await page.fill("#t-wq", "[[1, 0], [0, 1]");
  const sent2 = await run(page);
  assert.equal(sent2, null, "a request went out");
  assert.match(await page.textContent("#status"), /^Not sent: the wq box is not JSON/);
});

test("/bow: the method selector sends each method and draws its weights", async (t) => {
  const page = await openPage(t);
  await setForm(page, { endpoint: "/bow", seed: "1337", B: "4", T: "8", C: "2" });
  assert.equal(await page.isVisible("#head_size"), false);
  assert.equal(await page.isVisible("#causal"), false);
  assert.equal(await page.isVisible("#method"), true);
  for (const method of ["loop", "matmul", "softmax", "all"]) {
    await page.selectOption("#method", method);
    const sent = await run(page);
    assert.equal(sent.path, "/bow");
    assert.deepEqual(sent.body, { seed: 1337, shape: [4, 8, 2], method });
    const direct = await api("/bow", sent.body);
    assert.equal(direct.json.method, method);
    const maps = await readHeatmaps(page);
    assert.deepEqual(maps.map((m) => m.name), ["weights"]);
    assertColours(maps, [direct.json.weights]);
    for (let i = 0; i < 8; i++)
      assert.equal(Number((await hover(page, 0, i, 0)).value), direct.json.weights[i][0]);
    assert.ok(Math.abs(direct.json.weights[3][0] - 0.25) < 1e-7);
    const summary = await page.$$eval("#summary dt, #summary dd", (els) => els.map((e) => e.textContent));
    assert.deepEqual(summary.slice(0, 2), ["method", method]);
    const tables = await page.$$eval("#tables table", (ts) => ts.map((x) => x.dataset.tensor));
    assert.deepEqual(tables, ["x[0]", "x[1]", "x[2]", "x[3]", "out[0]", "out[1]", "out[2]", "out[3]"]);
    if (method === "all") {
      assert.ok(summary.includes("allclose") && summary[summary.indexOf("allclose") + 1] === "true");
      assert.ok(summary.includes("max_abs_diff.loop_matmul"));
    }
  }
  // The lecture's xbow[0] row 1: the mean of x[0][0..1].
  const out1 = await page.$eval('#tables table[data-tensor="out[0]"]', (tb) => tb.tBodies[0].rows[1].cells[1].textContent);
  assert.equal(out1, "-0.0894");
});

test("keyboard: Tab reaches Run, Space runs it, arrow keys walk a heatmap", async (t) => {
  const page = await openPage(t);
  let steps = 0, id = "";
  while (id !== "run" && steps < 40) {
    await page.keyboard.press("Tab");
    id = await page.evaluate(() => document.activeElement && document.activeElement.id);
    steps++;
  }
  assert.equal(id, "run", "Tab never reached the Run button");
  const sent = await run(page, () => page.keyboard.press("Space"));
  assert.deepEqual(sent.body.shape, [4, 8, 32]);
  const W = (await api("/attention", sent.body)).json.weights;
  assert.equal(await page.$$eval("#heatmaps canvas", (c) => c.length), 4);

  // Enter in a field submits the form as well.
  await page.focus("#T");
  await page.keyboard.press("ArrowUp");   // T = 9
  const sent2 = await run(page, () => page.keyboard.press("Enter"));
  assert.deepEqual(sent2.body.shape, [4, 9, 32]);
  const W2 = (await api("/attention", sent2.body)).json.weights;
  assert.notDeepEqual(W2, W);

  // Tab on to the first heatmap, then move with the keys.
  steps = 0;
  let focused = null;
  while (focused !== "weights[0]" && steps < 40) {
    await page.keyboard.press("Tab");
    focused = await page.evaluate(() => document.activeElement.dataset && document.activeElement.dataset.name);
    steps++;
  }
  assert.equal(focused, "weights[0]", "Tab never reached the first heatmap");
  const readout = () => page.$eval("#heatmaps .readout", (r) => r.dataset.value);
  assert.equal(Number(await readout()), W2[0][0][0]);
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("ArrowRight");
  assert.equal(Number(await readout()), W2[0][2][1]);
  await page.keyboard.press("End");
  assert.equal(Number(await readout()), W2[0][2][8]);
  assert.equal(W2[0][2][8], 0);
  await page.keyboard.press("PageDown");
  assert.equal(Number(await readout()), W2[0][8][8]);
  assert.match(await page.$eval("#heatmaps .readout", (r) => r.textContent), /^weights\[0\]\[8\]\[8\] = /);
  await page.screenshot({ path: path.join(OUT, "keyboard.png") });
});

test("exports: the heatmap as a PNG, the response as JSON", async (t) => {
  const page = await openPage(t);
  await setForm(page, { ...SEEDED, B: "2", labels: "Citizen:" });
  const sent = await run(page);
  const direct = await api("/attention", sent.text);

  const [png] = await Promise.all([page.waitForEvent("download"), page.click("#heatmaps figure:nth-child(2) .export-png")]);
  assert.equal(png.suggestedFilename(), "attnd-attention-weights-1.png");
  const pngPath = path.join(OUT, "export-weights-1.png");
  await png.saveAs(pngPath);
  const bytes = fs.readFileSync(pngPath);
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "not a PNG");
  assert.equal(bytes.toString("latin1", 12, 16), "IHDR");
  const w = bytes.readUInt32BE(16), h = bytes.readUInt32BE(20);
  assert.ok(w >= 300 && h >= 300, `PNG is ${w}×${h}`);

  const [js] = await Promise.all([page.waitForEvent("download"), page.click("#export-json")]);
  assert.equal(js.suggestedFilename(), "attnd-attention-response.json");
  const jsPath = path.join(OUT, "export-response.json");
  await js.saveAs(jsPath);
  const text = fs.readFileSync(jsPath, "utf8");
  assert.equal(text, direct.text, "the JSON export is not the API's response byte for byte");
  assert.deepEqual(JSON.parse(text), direct.json);
});

// ------------------------------------------------------------ context and mask

// The 2-D slices of a tensor in the page's heatmap order (b, then head).
function slices(a) {
  return Array.isArray(a[0][0]) ? a.flatMap(slices) : [a];
}
function shapeOf(a) {
  const s = [];
  for (; Array.isArray(a); a = a[0]) s.push(a.length);
  return s;
}
// Per heatmap cell: masked when the API's score is null (-inf).
function nullCells(scores) {
  return slices(scores).map((m) => m.map((row) => row.map((v) => v === null)));
}

// Checks every heatmap against the API's answer to the request the page
// sent: names, sizes, colours (masked cells grey), and every cell's value
// and masked flag through hover.  Returns the API's answer.
async function assertDrawn(page, sent) {
  const direct = await api(sent.path, sent.text);
  assert.equal(direct.status, 200, direct.text);
  const W = slices(direct.json.weights), masks = nullCells(direct.json.scores);
  const maps = await readHeatmaps(page);
  assertColours(maps, W, masks);
  for (let b = 0; b < maps.length; b++)
    for (let i = 0; i < maps[b].rows; i++)
      for (let j = 0; j < maps[b].cols; j++) {
        const h = await hover(page, b, i, j);
        assert.equal(Number(h.value), W[b][i][j], `${maps[b].name}[${i}][${j}]`);
        assert.equal(h.masked, String(masks[b][i][j]), `${maps[b].name}[${i}][${j}] masked`);
        assert.equal(h.tooltip.split("\n")[0].endsWith("(masked)"), masks[b][i][j]);
      }
  assert.equal(await page.isVisible("#legend-masked"), masks.some((m) => m.some((r) => r.includes(true))));
  return direct;
}

test("/multihead: the pasted defaults are its shapes (heads×hs×C) and run as they are", async (t) => {
  const page = await openPage(t);
  await page.check("#mode-tensors");
  await page.selectOption("#endpoint", "/multihead");
  const sent = await run(page);
  assert.equal(sent.path, "/multihead");
  const b = sent.body;
  const H = shapeOf(b.wq)[0], hs = shapeOf(b.wq)[1], [B, T, C] = shapeOf(b.x);
  for (const w of ["wq", "wk", "wv"]) assert.deepEqual(shapeOf(b[w]), [H, hs, C], w);
  assert.deepEqual(shapeOf(b.wo), [C, H * hs]);
  assert.deepEqual(shapeOf(b.bo), [C]);
  assert.ok(H > 1, "the example should show more than one head");
  const direct = await api("/multihead", sent.text);
  assert.equal(direct.status, 200, direct.text);
  assert.match(await page.textContent("#status"), /^200 /);
  assert.deepEqual(shapeOf(direct.json.weights), [B, H, T, T]);
  const maps = await readHeatmaps(page);
  assert.deepEqual(maps.map((m) => m.name), ["weights[0][0]", "weights[0][1]"]);
  assertColours(maps, slices(direct.json.weights));

  // Each endpoint keeps its own boxes: /attention's are 2-D again, and an
  // edit made under /multihead comes back with it.
  await page.fill("#t-bo", "[1, -1]");
  await page.selectOption("#endpoint", "/attention");
  const sentA = await run(page);
  for (const w of ["wq", "wk", "wv"]) assert.equal(shapeOf(sentA.body[w]).length, 2, w);
  assert.equal((await api("/attention", sentA.text)).status, 200);
  await page.selectOption("#endpoint", "/multihead");
  assert.equal(await page.inputValue("#t-bo"), "[1, -1]");
  assert.deepEqual(shapeOf(JSON.parse(await page.inputValue("#t-wq"))), [H, hs, C]);
});

test("cross-attention: a context with S ≠ T gives T×S weights, pasted or from /randn", async (t) => {
  const page = await openPage(t);
  await page.check("#mode-tensors");
  assert.equal(await page.isVisible("#t-context"), false);
  await page.check("#use-context");
  assert.equal(await page.isChecked("#causal"), false, "a context makes causal default to false");
  assert.match(await page.textContent("#causal-hint"), /Causal unticked/);
  const sent = await run(page);
  const [B, T] = shapeOf(sent.body.x), S = shapeOf(sent.body.context)[1];
  assert.notEqual(S, T, "the example context should have S ≠ T");
  assert.equal(sent.body.causal, false);
  assert.deepEqual(sent.body.return, ["weights", "out", "scores"]);
  const direct = await assertDrawn(page, sent);
  assert.deepEqual(shapeOf(direct.json.weights), [B, T, S]);
  assert.match(await page.textContent("#weights-sub"), new RegExp("^" + [B, T, S].join("×") + " "));
  const maps = await readHeatmaps(page);
  assert.deepEqual(maps.map((m) => [m.rows, m.cols]), [[T, S]]);
  // Query labels are x's tokens, key labels the context's positions.
  await page.fill("#labels", "abc");
  const h = await hover(page, 0, 2, 1);
  assert.match(h.tooltip, /query 'c' \(2\) → key context 1/);

  // Seeded: ticking the context fills it with the API's torch.randn(B, S, C).
  await page.fill("#labels", "");
  await page.uncheck("#use-context");
  await page.check("#mode-seed");
  await setForm(page, { endpoint: "/multihead", seed: "1337", B: "2", T: "6", C: "8", head_size: "2", heads: "2" });
  const filled = () => page.waitForFunction(() => document.getElementById("status").textContent.startsWith("Context filled"));
  await page.check("#use-context");
  await filled();
  const S0 = Number(await page.inputValue("#context-S")), seed0 = Number(await page.inputValue("#context-seed"));
  assert.deepEqual(JSON.parse(await page.inputValue("#t-context")), (await api("/randn", { seed: seed0, shape: [2, S0, 8] })).json.data);
  // Another S and seed, by the button.
  await setForm(page, { "context-S": "3", "context-seed": "7" });
  await page.evaluate(() => { document.getElementById("status").textContent = ""; });
  await page.click("#context-randn");
  await filled();
  const ctx = await api("/randn", { seed: 7, shape: [2, 3, 8] });
  assert.deepEqual(JSON.parse(await page.inputValue("#t-context")), ctx.json.data);
  const sent2 = await run(page);
  assert.deepEqual(sent2.body.context, ctx.json.data);
  assert.equal(sent2.body.num_heads, 2);
  const direct2 = await assertDrawn(page, sent2);
  assert.deepEqual(shapeOf(direct2.json.weights), [2, 2, 6, 3]);
  const maps2 = await readHeatmaps(page);
  assert.deepEqual(maps2.map((m) => m.name), ["weights[0][0]", "weights[0][1]", "weights[1][0]", "weights[1][1]"]);
  assert.ok(maps2.every((m) => m.rows === 6 && m.cols === 3));

  // Ticked again, causal is SDPA's top-left one over the context: masked cells.
  await page.check("#causal");
  const sent3 = await run(page);
  assert.equal(sent3.body.causal, true);
  const direct3 = await assertDrawn(page, sent3);
  assert.ok(nullCells(direct3.json.scores)[0][0].includes(true));
});

test("masks: a bool mask hides entries, a numeric one is added; both drawn from the API's answer", async (t) => {
  const page = await openPage(t);
  await page.check("#mode-tensors");
  await page.selectOption("#mask-kind", "bool");
  assert.equal(await page.isChecked("#causal"), false, "a mask unticks causal (causal: true with a mask is a 422)");
  // The example is the causal pattern, T×S for the pasted x.
  const T = shapeOf(JSON.parse(await page.inputValue("#t-x")))[1];
  const example = JSON.parse(await page.inputValue("#t-mask"));
  assert.deepEqual(shapeOf(example), [T, T]);
  example.forEach((row, i) => row.forEach((v, j) => assert.equal(v, j <= i)));

  // A mask that hides other cells: one row hides everything.
  const mask = Array.from({ length: T }, (_, i) => Array.from({ length: T }, (_, j) => i !== 1 && (i + j) % 2 === 0));
  await page.fill("#t-mask", JSON.stringify(mask));
  const sent = await run(page);
  assert.deepEqual(sent.body.mask, mask);
  assert.equal(sent.body.causal, false);
  const direct = await assertDrawn(page, sent);
  const hidden = nullCells(direct.json.scores)[0];
  assert.deepEqual(hidden, mask.map((row) => row.map((v) => !v)), "the API's masked cells are the mask's false ones");
  direct.json.weights[0].forEach((row, i) => row.forEach((w, j) => { if (!mask[i][j]) assert.equal(w, 0); }));
  await page.screenshot({ path: path.join(OUT, "mask.png"), fullPage: true });

  // The same on /multihead: the mask applies to every head alike.
  await page.selectOption("#endpoint", "/multihead");
  const sentM = await run(page);
  assert.deepEqual(sentM.body.mask, mask);
  const directM = await assertDrawn(page, sentM);
  for (const m of nullCells(directM.json.scores)) assert.deepEqual(m, hidden);

  // Numeric: the example (0 on the diagonal, a slope below, null above).
  await page.selectOption("#endpoint", "/attention");
  await page.selectOption("#mask-kind", "numeric");
  await page.click("#mask-example");
  const numeric = JSON.parse(await page.inputValue("#t-mask"));
  numeric.forEach((row, i) => row.forEach((v, j) => assert.equal(v === null, j > i)));
  const sentN = await run(page);
  assert.deepEqual(sentN.body.mask, numeric);
  const directN = await assertDrawn(page, sentN);
  assert.deepEqual(nullCells(directN.json.scores)[0], numeric.map((row) => row.map((v) => v === null)));

  // Turned off, no mask is sent and nothing is drawn as masked.
  await page.selectOption("#mask-kind", "none");
  const sentOff = await run(page);
  assert.equal("mask" in sentOff.body, false);
  assert.equal(await page.isVisible("#legend-masked"), false);
});

test("a bad mask or context shows the API's error: status, code, message, path", async (t) => {
  const page = await openPage(t);
  await page.check("#mode-tensors");
  await page.selectOption("#mask-kind", "bool");
  const cases = [
    ["[[true, false]]", "shape_mismatch", "mask"],                    // 1×2 for T×S = 3×3
    ["[[true, 1, 0], [1, 1, 1], [1, 1, 1]]", "wrong_type", "mask[0][1]"],   // bool and number mixed
  ];
  for (const [text, code, where] of cases) {
    await page.fill("#t-mask", text);
    const e = await assertShownError(page, await run(page));
    assert.deepEqual([e.status, e.code, e.path], [422, code, where]);
  }
  // causal ticked again with a mask: the API refuses it, at path causal.
  await page.click("#mask-example");
  await page.check("#causal");
  const sent = await run(page);
  assert.equal(sent.body.causal, true);
  const e = await assertShownError(page, sent);
  assert.deepEqual([e.status, e.code, e.path], [422, "invalid_value", "causal"]);

  // A context whose C is not x's.
  await page.uncheck("#causal");
  await page.selectOption("#mask-kind", "none");
  await page.check("#use-context");
  await page.fill("#t-context", "[[[1, 2, 3]]]");
  const e2 = await assertShownError(page, await run(page));
  assert.deepEqual([e2.status, e2.code, e2.path], [422, "shape_mismatch", "context"]);
  await page.screenshot({ path: path.join(OUT, "mask-error.png") });

  // A box that is not JSON is not sent, as for the other boxes.
  await page.fill("#t-context", "[[[1, 0]]");
  assert.equal(await run(page), null, "a request went out");
  assert.match(await page.textContent("#status"), /^Not sent: the context box is not JSON/);
});
