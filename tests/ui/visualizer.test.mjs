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
//
// attnd runs in the repository's root, so it loads ./models (the shipped
// trained model, for the /gpt tests) as `make run` does; ATTND_MODELS
// names another repository.

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
const ROOT = path.resolve(here, "../..");

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
      cwd: ROOT, env: { ...process.env, OMP_WAIT_POLICY: "PASSIVE" },
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

// A new page on / (or /#hash) that fails the test on any script error.
async function openPage(t, hash = "", viewport = null) {
  const page = await context.newPage();
  if (viewport) await page.setViewportSize(viewport);
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
  const resp = await page.goto(base + "/" + hash);
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

function runsOf(page) { return page.evaluate(() => Number(document.body.dataset.runs || 0)); }

// Runs the form by pressing the Run button (or by `act`), and returns the
// request body the page sent (parsed) once the page has drawn the answer.
// /multihead with more than one head sends a second request, the same
// body with "average_weights": true; it is checked here and not returned.
// /gpt opened on a link to a step of its generation sends that step's
// forward pass second: returned as `step`.
async function run(page, act = () => page.click("#run")) {
  const before = await runsOf(page);
  const posts = [];
  const onRequest = (r) => { if (r.method() === "POST") posts.push(r); };
  page.on("request", onRequest);
  try {
    await act();
    await page.waitForFunction((n) => Number(document.body.dataset.runs || 0) > n, before, { timeout: 60000 });
  } finally {
    page.off("request", onRequest);
  }
  assert.ok(posts.length <= 2, "one run sent " + posts.length + " requests");
  const req = posts[0];
  if (!req) return null;
  const sent = { path: new URL(req.url()).pathname, text: req.postData(), body: JSON.parse(req.postData()) };
  if (posts[1] && sent.path === "/gpt") {
    assert.equal(new URL(posts[1].url()).pathname, "/gpt");
    sent.step = { text: posts[1].postData(), body: JSON.parse(posts[1].postData()) };
  } else if (posts[1]) {
    const avg = JSON.parse(posts[1].postData());
    assert.equal(new URL(posts[1].url()).pathname, "/multihead");
    assert.deepEqual(avg, { ...sent.body, average_weights: true, return: ["weights"] });
    sent.avg = avg;
  }
  return sent;
}

const RET = ["weights", "scores", "q", "k", "out"];
const SEEDED = { "mode-seed": true, endpoint: "/attention", seed: "1337", B: "4", T: "8", C: "32",
                 head_size: "16", causal: true, scale: "true", labels: "", range: "unit", cmap: "viridis" };

// The test's own colour maps (matplotlib's, 11 stops), to check the pixels.
const CMAPS = {
  viridis: ["#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c", "#22a884", "#44bf70", "#7ad151", "#bddf26", "#fde725"],
  cividis: ["#00224e", "#123570", "#3b496c", "#575d6d", "#707173", "#8a8779", "#a69d75", "#c4b56c", "#e4cf5b", "#f4dd4c", "#fee838"],
};
const STOPS = Object.fromEntries(Object.entries(CMAPS).map(([k, hs]) => [k, hs.map((h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)))]));
function expectedColour(u, cmap = "viridis") {
  const st = STOPS[cmap], x = Math.min(1, Math.max(0, u)) * 10, i = Math.min(9, Math.floor(x)), f = x - i;
  return [0, 1, 2].map((k) => st[i][k] + (st[i + 1][k] - st[i][k]) * f);
}
const MASKED_GREY = [128, 128, 128];

// The API's tensors in any of its forms, as { shape, data } (null: -inf).
function tensor(v) {
  if (Array.isArray(v)) return { shape: shapeOf(v), data: v.flat(Infinity).map((x) => (x === null ? -Infinity : x)) };
  if (v.b64 !== undefined) {
    const buf = Buffer.from(v.b64, "base64");
    return { shape: v.shape, data: Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4)) };
  }
  return { shape: v.shape, data: v.data.map((x) => (x === null ? -Infinity : x)) };
}
// The 2-D slices of a tensor in the page's map order (b, then head).
function slices(a) {
  if (!Array.isArray(a)) {
    const t = tensor(a), [R, C] = t.shape.slice(-2), out = [];
    for (let o = 0; o < t.data.length; o += R * C)
      out.push(Array.from({ length: R }, (_, i) => t.data.slice(o + i * C, o + i * C + C)));
    return out;
  }
  return Array.isArray(a[0][0]) ? a.flatMap(slices) : [a];
}
function shapeOf(a) {
  const s = [];
  for (; Array.isArray(a); a = a[0]) s.push(a.length);
  return s;
}
// Per map cell: masked when the API's score is null (-inf).
function nullCells(scores) {
  return slices(scores).map((m) => m.map((row) => row.map((v) => v === null || v === -Infinity)));
}

// A drawn map (the main view or a thumbnail): its name, window, and the
// colour of each visible cell read back from the canvas (a point inside
// the cell, away from the number and the hatch).
const READ_CANVAS = (c) => {
  const d = c.dataset, ctx = c.getContext("2d");
  const L = +d.left, T = +d.top, s = +d.cell, dpr = +d.dpr, vr = +d.vr, vc = +d.vc, r0 = +d.r0, c0 = +d.c0;
  const f = s >= 5 ? 0.22 : 0.5, all = ctx.getImageData(0, 0, c.width, c.height).data;
  let px = null;
  if (vr * vc <= 90000) {     // a fitted 2048×2048 map has more cells than pixels: not read cell by cell
    px = [];
    for (let i = 0; i < vr; i++) {
      const row = [];
      for (let j = 0; j < vc; j++) {
        const x = Math.floor((L + j * s + s * f) * dpr), y = Math.floor((T + i * s + s * f) * dpr), p = 4 * (y * c.width + x);
        row.push([all[p], all[p + 1], all[p + 2]]);
      }
      px.push(row);
    }
  }
  return { name: d.name, label: d.label, rows: +d.rows, cols: +d.cols, vr, vc, r0, c0, left: L, top: T, cell: s, px };
};
const readMain = (page) => page.$eval("#main-canvas", READ_CANVAS);
async function readThumbs(page) {
  const out = [];
  for (const c of await page.$$("#thumbs canvas")) out.push(await c.evaluate(READ_CANVAS));
  return out;
}

// The colour of weight w for a map mat under a colour scale.
const statsCache = new WeakMap();
function unitOf(mat, norm) {
  if (!statsCache.has(mat)) {     // loops, not spreads: a 2048×2048 map is 4M numbers
    let max = 0, minPos = Infinity;
    const rowMax = mat.map((r) => { let m = 0; for (const v of r) { if (v > m) m = v; if (v > 0 && v < minPos) minPos = v; } if (m > max) max = m; return m; });
    const floor = minPos < Infinity ? Math.min(1e-1, Math.max(1e-8, 10 ** Math.floor(Math.log10(minPos)))) : 1e-4;
    statsCache.set(mat, { max, rowMax, floor });
  }
  const { max, rowMax, floor } = statsCache.get(mat);
  return (i, j) => {
    const v = mat[i][j];
    if (norm === "max") return v / (max > 0 ? max : 1);
    if (norm === "row") return rowMax[i] > 0 ? v / rowMax[i] : 0;
    if (norm === "log") return v <= 0 ? 0 : Math.min(1, Math.max(0, (Math.log10(v) - Math.log10(floor)) / -Math.log10(floor)));
    return v;
  };
}
// Every visible cell of a drawn map is the colour of the API's weight
// (grey where masks[i][j]).
function assertMap(m, mat, mask = null, norm = "unit", cmap = "viridis") {
  assert.equal(m.rows, mat.length, m.name + " rows");
  assert.equal(m.cols, mat[0].length, m.name + " cols");
  const u = unitOf(mat, norm);
  m.px.forEach((row, a) => row.forEach((rgb, b) => {
    const i = m.r0 + a, j = m.c0 + b;
    const want = mask && mask[i][j] ? MASKED_GREY : expectedColour(u(i, j), cmap);
    for (let k = 0; k < 3; k++)
      assert.ok(Math.abs(rgb[k] - want[k]) <= 1.01,
        `${m.name}[${i}][${j}] = ${mat[i][j]}: drawn rgb(${rgb}), ${cmap} (${norm}) says rgb(${want.map(Math.round)})`);
  }));
}

async function selectThumb(page, k) {
  await page.click(`#thumbs .thumb:nth-child(${k + 1})`);
  await page.waitForFunction((k) => document.querySelectorAll("#thumbs .thumb")[k].getAttribute("aria-pressed") === "true", k);
}

// Hovers the centre of cell (i, j) of the main view (which must show it);
// returns the tooltip and what the readout names.
async function hover(page, i, j) {
  const canvas = await page.$("#main-canvas");
  let box = await canvas.boundingBox();
  const vp = page.viewportSize();
  if (box.y < 0 || box.y + box.height > vp.height) {
    await canvas.scrollIntoViewIfNeeded();
    // the page hides the tooltip on scroll: let that scroll event pass first
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    box = await canvas.boundingBox();
  }
  const d = await canvas.evaluate((c) => ({ left: +c.dataset.left, top: +c.dataset.top, cell: +c.dataset.cell, r0: +c.dataset.r0, c0: +c.dataset.c0 }));
  await page.mouse.move(box.x + d.left + (j - d.c0 + 0.5) * d.cell, box.y + d.top + (i - d.r0 + 0.5) * d.cell);
  return page.evaluate(() => ({
    tooltip: document.getElementById("tooltip").hidden ? null : document.getElementById("tooltip").textContent,
    value: document.getElementById("readout").dataset.value,
    masked: document.getElementById("readout").dataset.masked,
  }));
}

function errorPanel(page) {
  return page.evaluate(() => {
    const t = (id) => document.getElementById(id).textContent;
    return { shown: !document.getElementById("error").hidden, status: t("error-status"), code: t("error-code"),
             message: t("error-message"), path: t("error-path"),
             pathShown: !document.getElementById("error-path").hidden,
             heatmaps: document.querySelectorAll("#thumbs canvas").length,
             weightsHidden: document.getElementById("weights-panel").hidden,
             invalid: Array.from(document.querySelectorAll("#controls [aria-invalid=true]")).map((e) => e.id),
             field: document.getElementById("error-field").closest("dd").hidden ? null : t("error-field") };
  });
}

// The error panel after a run shows exactly the API's error for the same
// request (status, code, message, path), and no heatmap; returns that error.
async function assertShownError(page, sent) {
  const e = (await api(sent.path, sent.text)).json.error, err = await errorPanel(page);
  assert.deepEqual([err.shown, err.status, err.code, err.message, err.path, err.heatmaps, err.weightsHidden],
    [true, String(e.status), e.code, e.message, "path" in e ? e.path : "", 0, true]);
  assert.match(await page.textContent("#status"), new RegExp("^" + e.status + " "));
  return { ...e, invalid: err.invalid, field: err.field };
}

// Checks every map against the API's answer to the request the page sent:
// names, sizes, colours (masked cells grey) of every thumbnail, and every
// cell's value and masked flag through hover on the main view, map by map.
// The averages over heads are the API's average_weights.  Returns the
// API's answer.
async function assertDrawn(page, sent) {
  const direct = await api(sent.path, sent.text);
  assert.equal(direct.status, 200, direct.text);
  const W = slices(direct.json.weights), masks = nullCells(direct.json.scores);
  const avg = sent.avg ? slices((await api("/multihead", sent.avg)).json.weights) : [];
  const thumbs = await readThumbs(page);
  let w = 0, a = 0;
  const per = [];        // per thumbnail: [matrix, mask]
  for (const th of thumbs) {
    if (th.name.startsWith("average_weights")) { per.push([avg[a], masks[a * (W.length / avg.length)]]); a++; }
    else { per.push([W[w], masks[w]]); w++; }
  }
  assert.equal(w, W.length, "a thumbnail for every map");
  assert.equal(a, avg.length, "a thumbnail for every average");
  thumbs.forEach((th, k) => assertMap(th, per[k][0], per[k][1]));
  for (let k = 0; k < thumbs.length; k++) {
    await selectThumb(page, k);
    const main = await readMain(page);
    assert.equal(main.name, thumbs[k].name);
    assertMap(main, per[k][0], per[k][1]);
    for (let i = 0; i < main.rows; i++)
      for (let j = 0; j < main.cols; j++) {
        const h = await hover(page, i, j);
        assert.equal(Number(h.value), per[k][0][i][j], `${main.name}[${i}][${j}]`);
        assert.equal(h.masked, String(per[k][1][i][j]), `${main.name}[${i}][${j}] masked`);
        assert.equal(h.tooltip.split("\n")[0].endsWith("(masked)"), per[k][1][i][j]);
      }
  }
  assert.equal(await page.isVisible("#legend-masked"), masks.some((m) => m.some((r) => r.includes(true))));
  return direct;
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
  // Nothing but the page itself and same-origin API calls: no CDN, and one
  // inline script and one inline style (for a CSP hash or nonce).
  assert.doesNotMatch(html, /<(script|link)[^>]+(src|href)="(https?:)?\/\//i);
  assert.doesNotMatch(html, /url\((https?:)?\/\//i);
  assert.equal((html.match(/<script\b/g) || []).length, 1);
  assert.equal((html.match(/<style\b/g) || []).length, 1);
  assert.doesNotMatch(html, /\son(click|load|change|input)=/i, "no inline event handlers");
});

test("the endpoint list holds only endpoints the server has; heads only for /multihead", async (t) => {
  const page = await openPage(t);
  const eps = await page.$$eval("#endpoint option", (os) => os.map((o) => o.value));
  assert.deepEqual(eps, ["/attention", "/multihead", "/bow", "/gpt"]);
  for (const p of eps) {
    const r = await fetch(base + p, { method: "OPTIONS" });
    assert.equal(r.status, 204, p + " is listed but the server has no such route");
  }
  for (const ep of eps) {
    await page.selectOption("#endpoint", ep);
    assert.equal(await page.isVisible("#heads"), ep === "/multihead", "heads control for " + ep);
    assert.equal(await page.isVisible("#gpt-text"), ep === "/gpt", "text box for " + ep);
    assert.equal(await page.isVisible("#seed"), ep !== "/gpt", "seed for " + ep);
  }
});

test("seeded /attention: every drawn cell is the API's weight; causal upper triangle is masked", async (t) => {
  const page = await openPage(t);
  await setForm(page, { ...SEEDED, labels: "Citizen:" });
  const sent = await run(page);
  const want = { seed: 1337, shape: [4, 8, 32], head_size: 16, causal: true, scale: true, return: RET };
  assert.equal(sent.path, "/attention");
  assert.deepEqual(sent.body, want);
  const direct = await api("/attention", want);
  assert.equal(direct.status, 200);
  const W = direct.json.weights, masks = nullCells(direct.json.scores);
  assert.match(await page.textContent("#status"), /^200 /);

  // Colours: every thumbnail, named in words, and the main view.
  const thumbs = await readThumbs(page);
  assert.deepEqual(thumbs.map((m) => m.name), ["weights[0]", "weights[1]", "weights[2]", "weights[3]"]);
  assert.deepEqual(await page.$$eval("#thumbs .thumb span", (s) => s.map((x) => x.textContent)), ["batch 0", "batch 1", "batch 2", "batch 3"]);
  thumbs.forEach((m, b) => assertMap(m, W[b], masks[b]));
  const main = await readMain(page);
  assert.equal(main.name, "weights[0]");
  assert.equal(main.label, "batch 0");
  assertMap(main, W[0], masks[0]);

  // The exact values, cell by cell, through the hover tooltip (batch 0 and,
  // chosen by its thumbnail, batch 3).
  for (const b of [0, 3]) {
    await selectThumb(page, b);
    assert.equal((await readMain(page)).name, `weights[${b}]`);
    assert.equal(await page.inputValue("#sel-batch"), String(b));
    for (let i = 0; i < 8; i++)
      for (let j = 0; j < 8; j++) {
        const h = await hover(page, i, j);
        assert.equal(Number(h.value), W[b][i][j], `weights[${b}][${i}][${j}]`);
        assert.ok(h.tooltip && h.tooltip.includes(`weights[${b}][${i}][${j}] = ${W[b][i][j]}`), h.tooltip);
        assert.equal(h.masked, String(j > i));
      }
  }
  const h = await hover(page, 2, 1);
  assert.match(h.tooltip, /query 't' \(2\) → key 'i' \(1\)/);

  // The causal mask: the upper triangle's scores are null (-inf), its
  // weights 0, drawn grey; each row sums to 1.
  for (let b = 0; b < 4; b++)
    for (let i = 0; i < 8; i++) {
      let rowSum = 0;
      for (let j = 0; j < 8; j++) {
        rowSum += W[b][i][j];
        assert.equal(masks[b][i][j], j > i);
        if (j > i) {
          assert.equal(W[b][i][j], 0);
          assert.deepEqual(thumbs[b].px[i][j], MASKED_GREY, `weights[${b}][${i}][${j}] not drawn as masked`);
        } else assert.ok(W[b][i][j] > 0);
      }
      assert.ok(Math.abs(rowSum - 1) < 1e-5);
    }
  assert.equal(await page.isVisible("#legend-masked"), true);
  // The axis labels are the text's tokens, with the lecture's ids.
  assert.match(await page.$eval("#main-canvas", (c) => c.getAttribute("aria-label")), /8 by 8/);
  assert.deepEqual(await page.$$eval("#tokens .tok sub", (s) => s.map((x) => x.textContent)),
    [..."Citizen:"].map((ch) => String("\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".indexOf(ch))));

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
  await selectThumb(page, 0);
  await page.mouse.move(0, 0);
  await page.evaluate(() => window.scrollTo(0, 0));
  await hover(page, 6, 1);
  await page.screenshot({ path: path.join(OUT, "visualizer.png") });
  await page.screenshot({ path: path.join(OUT, "visualizer-full.png"), fullPage: true });

  // Without the mask the upper triangle fills in.
  await page.setChecked("#causal", false);
  const sent2 = await run(page);
  assert.equal(sent2.body.causal, false);
  const W2 = (await api("/attention", sent2.body)).json.weights;
  (await readThumbs(page)).forEach((m, b) => assertMap(m, W2[b]));
  assert.ok(W2[0][0][7] > 0 && W2[3][2][5] > 0);
  assert.equal(await page.isVisible("#legend-masked"), false);
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

test("errors show the API's error and mark the form field at its path (shape[1] marks T)", async (t) => {
  const page = await openPage(t);
  await page.check("#mode-tensors");
  await page.fill("#t-x", "[[[1, 2], [3]]]");
  const sent = await run(page);
  const direct = await api("/attention", sent.text);
  assert.equal(direct.status, 422);
  const err = await errorPanel(page);
  assert.deepEqual([err.shown, err.status, err.code, err.path, err.message, err.heatmaps, err.weightsHidden],
    [true, "422", "ragged_array", "x[0][1]", direct.json.error.message, 0, true]);
  assert.deepEqual(err.invalid, ["t-x"]);
  assert.match(await page.textContent("#status"), /^422 /);
  await page.screenshot({ path: path.join(OUT, "error.png") });

  // A seeded error, too: the seed as typed goes to the API, which judges it.
  await page.check("#mode-seed");
  await page.fill("#seed", "12abc");
  const e1 = await assertShownError(page, await run(page));
  assert.equal(e1.code, "out_of_range");
  assert.deepEqual(e1.invalid, ["seed"]);

  // shape[1] is T: the T field is marked (and only it), and named.
  await page.fill("#seed", "1");
  await page.fill("#T", "0");
  const e2 = await assertShownError(page, await run(page));
  assert.deepEqual([e2.code, e2.path], ["empty_dimension", "shape[1]"]);
  assert.deepEqual(e2.invalid, ["T"]);
  assert.equal(e2.field, "T (time)");
  assert.equal(await page.$eval("#T", (el) => el.getAttribute("aria-describedby")), "error-message");
  await page.click("#error-goto");
  assert.equal(await page.evaluate(() => document.activeElement.id), "T");
  await page.screenshot({ path: path.join(OUT, "error-field.png") });
  // shape[0] marks B; a good run clears the marks.
  await page.fill("#T", "8");
  await page.fill("#B", "0");
  const e3 = await assertShownError(page, await run(page));
  assert.deepEqual([e3.path, e3.invalid], ["shape[0]", ["B"]]);
  await page.fill("#B", "1");
  await run(page);
  assert.deepEqual((await errorPanel(page)).invalid, []);
});

test("pasted tensors: the README's example, and text that is not JSON is not sent", async (t) => {
  const page = await openPage(t);
  await page.check("#mode-tensors");
  const sent = await run(page);   // the boxes start with the README's example
  assert.deepEqual(sent.body, {
    x: [[[1, 0], [0, 1], [1, 1]]], wq: [[1, 0], [0, 1]], wk: [[0, 1], [1, 0]], wv: [[1, 2], [3, 4]],
    causal: true, scale: true, return: RET });
  const W = (await api("/attention", sent.text)).json.weights;
  assert.deepEqual(W, [[[1, 0, 0], [0.66976154, 0.33023846, 0], [0.24825509, 0.24825509, 0.50348985]]]);
  assertMap(await readMain(page), W[0], [[false, true, true], [false, false, true], [false, false, false]]);

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
  assert.equal(await page.isVisible("#scale-note"), false);
  for (const method of ["loop", "matmul", "softmax", "all"]) {
    await page.selectOption("#method", method);
    const sent = await run(page);
    assert.equal(sent.path, "/bow");
    assert.deepEqual(sent.body, { seed: 1337, shape: [4, 8, 2], method });
    const direct = await api("/bow", sent.body);
    assert.equal(direct.json.method, method);
    const thumbs = await readThumbs(page);
    assert.deepEqual(thumbs.map((m) => m.name), ["weights"]);
    assertMap(thumbs[0], direct.json.weights);
    assertMap(await readMain(page), direct.json.weights);
    for (let i = 0; i < 8; i++)
      assert.equal(Number((await hover(page, i, 0)).value), direct.json.weights[i][0]);
    assert.ok(Math.abs(direct.json.weights[3][0] - 0.25) < 1e-7);
    const summary = await page.$$eval("#summary dt, #summary dd", (els) => els.map((e) => e.textContent));
    assert.deepEqual(summary.slice(0, 2), ["method", method]);
    const tables = await page.$$eval("#tables table", (ts) => ts.map((x) => x.dataset.tensor));
    assert.deepEqual(tables, ["x[0]", "x[1]", "x[2]", "x[3]", "out[0]", "out[1]", "out[2]", "out[3]"]);
    if (method === "all") {
      assert.ok(summary.includes("allclose") && summary[summary.indexOf("allclose") + 1] === "true");
      assert.ok(summary.includes("max_abs_diff.loop_matmul"));
    }
    // No q and k: no neuron view; the head view still draws the weights.
    assert.equal(await page.isVisible("#neuron-panel"), false);
    assert.equal(await page.isVisible("#headview-panel"), true);
  }
  // The lecture's xbow[0] row 1: the mean of x[0][0..1].
  const out1 = await page.$eval('#tables table[data-tensor="out[0]"]', (tb) => tb.tBodies[0].rows[1].cells[1].textContent);
  assert.equal(out1, "-0.0894");
});

test("keyboard: Tab reaches Run, Space runs it, the map's keys walk, choose and zoom", async (t) => {
  const page = await openPage(t);
  let steps = 0, id = "";
  while (id !== "run" && steps < 60) {
    await page.keyboard.press("Tab");
    id = await page.evaluate(() => document.activeElement && document.activeElement.id);
    steps++;
  }
  assert.equal(id, "run", "Tab never reached the Run button");
  const sent = await run(page, () => page.keyboard.press("Space"));
  assert.deepEqual(sent.body.shape, [4, 8, 32]);
  const W = (await api("/attention", sent.body)).json.weights;
  assert.equal((await readThumbs(page)).length, 4);

  // Enter in a field submits the form as well.
  await page.focus("#T");
  await page.keyboard.press("ArrowUp");   // T = 9
  const sent2 = await run(page, () => page.keyboard.press("Enter"));
  assert.deepEqual(sent2.body.shape, [4, 9, 32]);
  const W2 = (await api("/attention", sent2.body)).json.weights;
  assert.notDeepEqual(W2, W);

  // Tab on to the map, then move with the keys.
  steps = 0;
  let focused = null;
  while (focused !== "main-canvas" && steps < 60) {
    await page.keyboard.press("Tab");
    focused = await page.evaluate(() => document.activeElement.id);
    steps++;
  }
  assert.equal(focused, "main-canvas", "Tab never reached the map");
  const readout = () => page.$eval("#readout", (r) => r.dataset.value);
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
  assert.match(await page.$eval("#readout", (r) => r.textContent), /^weights\[0\]\[8\]\[8\] = /);
  // Enter chooses the pair the views below explain.
  await page.keyboard.press("ArrowLeft");
  await page.keyboard.press("Enter");
  assert.match(await page.textContent("#neuron-sub"), /query 8 → key 7$/);
  await page.screenshot({ path: path.join(OUT, "keyboard.png") });
});

test("exports: the view as PNG and as SVG (a rect a cell, the API's colours), the response as JSON", async (t) => {
  const page = await openPage(t);
  await setForm(page, { ...SEEDED, B: "2", labels: "Citizen:" });
  const sent = await run(page);
  const direct = await api("/attention", sent.text);
  await selectThumb(page, 1);

  const [png] = await Promise.all([page.waitForEvent("download"), page.click("#export-png")]);
  assert.equal(png.suggestedFilename(), "attnd-attention-weights-1.png");
  const pngPath = path.join(OUT, "export-weights-1.png");
  await png.saveAs(pngPath);
  const bytes = fs.readFileSync(pngPath);
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "not a PNG");
  assert.equal(bytes.toString("latin1", 12, 16), "IHDR");
  const w = bytes.readUInt32BE(16), h = bytes.readUInt32BE(20);
  assert.ok(w >= 300 && h >= 300, `PNG is ${w}×${h}`);

  const [svg] = await Promise.all([page.waitForEvent("download"), page.click("#export-svg")]);
  assert.equal(svg.suggestedFilename(), "attnd-attention-weights-1.svg");
  const svgPath = path.join(OUT, "export-weights-1.svg");
  await svg.saveAs(svgPath);
  const text = fs.readFileSync(svgPath, "utf8");
  assert.match(text, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  // Parsed by the browser: one rect a cell, its colour and value the API's.
  const cells = await page.evaluate((s) => {
    const doc = new DOMParser().parseFromString(s, "image/svg+xml");
    if (doc.querySelector("parsererror")) return null;
    return Array.from(doc.querySelectorAll("g.cells rect")).map((r) => ({
      i: +r.getAttribute("data-i"), j: +r.getAttribute("data-j"), w: r.getAttribute("data-w"),
      masked: r.getAttribute("data-masked") === "true", fill: r.getAttribute("fill") }));
  }, text);
  assert.ok(cells, "the SVG does not parse");
  assert.equal(cells.length, 64);
  const W = direct.json.weights[1], masks = nullCells(direct.json.scores)[1];
  for (const c of cells) {
    assert.equal(Number(c.w), W[c.i][c.j]);
    assert.equal(c.masked, masks[c.i][c.j]);
    const rgb = c.fill.match(/\d+/g).map(Number), want = c.masked ? MASKED_GREY : expectedColour(W[c.i][c.j]);
    for (let k = 0; k < 3; k++) assert.ok(Math.abs(rgb[k] - want[k]) <= 1.01, `svg cell [${c.i}][${c.j}] ${c.fill}`);
  }
  assert.match(text, /<desc>POST \/attention · seed 1337 · B,T,C = 2,8,32/);

  const [js] = await Promise.all([page.waitForEvent("download"), page.click("#export-json")]);
  assert.equal(js.suggestedFilename(), "attnd-attention-response.json");
  const jsPath = path.join(OUT, "export-response.json");
  await js.saveAs(jsPath);
  const body = fs.readFileSync(jsPath, "utf8");
  assert.equal(body, direct.text, "the JSON export is not the API's response byte for byte");
});

// ------------------------------------------------------------ heads, context and mask

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
  const direct = await assertDrawn(page, sent);
  assert.match(await page.textContent("#status"), /^200 /);
  assert.deepEqual(shapeOf(direct.json.weights), [B, H, T, T]);
  assert.deepEqual((await readThumbs(page)).map((m) => m.name), ["weights[0][0]", "weights[0][1]", "average_weights[0]"]);

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

test("/multihead seeded, B=4 with 4 heads: a grid named in words, selectors, the API's average over heads", async (t) => {
  const page = await openPage(t);
  await setForm(page, { ...SEEDED, endpoint: "/multihead", B: "4", T: "8", C: "32", head_size: "8", heads: "4" });
  const sent = await run(page);
  assert.deepEqual(sent.body, { seed: 1337, shape: [4, 8, 32], head_size: 8, num_heads: 4, causal: true, scale: true, return: RET });
  assert.ok(sent.avg, "no average_weights request");
  const direct = await api("/multihead", sent.text), avg = (await api("/multihead", sent.avg)).json.weights;
  const W = direct.json.weights, masks = nullCells(direct.json.scores);
  const labels = await page.$$eval("#thumbs .thumb span", (s) => s.map((x) => x.textContent));
  const want = [];
  for (let b = 0; b < 4; b++) { for (let h = 0; h < 4; h++) want.push(`batch ${b}, head ${h}`); want.push(`batch ${b}, average over heads`); }
  assert.deepEqual(labels, want);
  const thumbs = await readThumbs(page);
  thumbs.forEach((m, k) => {
    const b = Math.floor(k / 5), h = k % 5;
    if (h === 4) assertMap(m, avg[b], masks[b * 4]);
    else assertMap(m, W[b][h], masks[b * 4 + h]);
  });
  // The average is the mean of the heads (the API's, checked here too).
  for (let i = 0; i < 8; i++)
    for (let j = 0; j < 8; j++) {
      const mean = (W[2][0][i][j] + W[2][1][i][j] + W[2][2][i][j] + W[2][3][i][j]) / 4;
      assert.ok(Math.abs(avg[2][i][j] - mean) < 1e-6);
    }
  // The selectors reach every map: batch 2, head 3, then the average.
  await page.selectOption("#sel-batch", "2");
  await page.selectOption("#sel-head", "3");
  let main = await readMain(page);
  assert.deepEqual([main.name, main.label], ["weights[2][3]", "batch 2, head 3"]);
  assertMap(main, W[2][3], masks[11]);
  assert.equal(Number((await hover(page, 5, 2)).value), W[2][3][5][2]);
  await page.selectOption("#sel-head", "avg");
  main = await readMain(page);
  assert.deepEqual([main.name, main.label], ["average_weights[2]", "batch 2, average over heads"]);
  assertMap(main, avg[2], masks[8]);
  assert.equal(Number((await hover(page, 6, 3)).value), avg[2][6][3]);
  assert.equal(await page.$eval('#thumbs .thumb[aria-pressed="true"] span', (s) => s.textContent), "batch 2, average over heads");
  await page.screenshot({ path: path.join(OUT, "heads.png"), fullPage: true });
});

test("head view: lines from the chosen query to its keys, one colour per head, weights the API's", async (t) => {
  const page = await openPage(t);
  await setForm(page, { ...SEEDED, endpoint: "/multihead", B: "2", T: "8", C: "16", head_size: "4", heads: "3", labels: "Citizen:" });
  const sent = await run(page);
  const W = (await api("/multihead", sent.text)).json.weights;
  const lines = () => page.$$eval("#headview line", (ls) => ls.map((l) => ({
    head: l.dataset.head, key: +l.dataset.key, w: l.dataset.weight, colour: l.getAttribute("stroke"), op: +l.getAttribute("stroke-opacity") })));
  // Default: the last query of batch 0, every head.
  const check = async (b, q, heads) => {
    const ls = await lines();
    const want = [];
    for (const h of heads) for (let j = 0; j < 8; j++) if (W[b][h][q][j] > 0) want.push([String(h), j, W[b][h][q][j]]);
    assert.deepEqual(ls.map((l) => [l.head, l.key, Number(l.w)]), want);
    const colours = new Map();
    for (const l of ls) { if (!colours.has(l.head)) colours.set(l.head, l.colour); assert.equal(l.colour, colours.get(l.head)); }
    assert.equal(new Set(colours.values()).size, colours.size, "each head its own colour");
    assert.equal(Math.max(...ls.map((l) => l.op)), 1, "the heaviest line is opaque");
  };
  await check(0, 7, [0, 1, 2]);
  assert.match(await page.textContent("#headview-sub"), /query ':' \(7\), batch 0, 3 of 3 heads/);
  // Click a query token: its lines (causal: keys 0..3 only).
  await page.click('#headview .hv-q[data-i="3"]');
  await check(0, 3, [0, 1, 2]);
  assert.ok((await lines()).every((l) => l.key <= 3));
  // Untick head 1; then keyboard: ArrowDown moves the query.
  await page.uncheck('#hv-heads input[data-head="1"]');
  await check(0, 3, [0, 2]);
  await page.focus('#headview .hv-q[data-i="3"]');
  await page.keyboard.press("ArrowDown");
  await check(0, 4, [0, 2]);
  // Another batch through its thumbnail; a head's own map draws its lines.
  await page.selectOption("#sel-batch", "1");
  await check(1, 4, [0, 2]);
  await page.screenshot({ path: path.join(OUT, "headview.png"), fullPage: true });
});

test("neuron view: q and k of the chosen pair, their product, dot, scaled score and softmax, from the API's tensors", async (t) => {
  const page = await openPage(t);
  for (const scale of ["true", "false", "number"]) {
    await setForm(page, { ...SEEDED, endpoint: "/multihead", B: "2", T: "6", C: "12", head_size: "4", heads: "2", scale, ...(scale === "number" ? { "scale-number": "0.3" } : {}) });
    const sent = await run(page);
    const d = (await api("/multihead", sent.text)).json;
    for (const [b, h, i, j] of [[1, 1, 4, 2], [0, 0, 5, 5], [0, 1, 1, 3]]) {
      await page.selectOption("#sel-batch", String(b));
      await page.selectOption("#sel-head", String(h));
      await hover(page, i, j);
      await page.mouse.down(); await page.mouse.up();     // click: choose the pair
      const nv = await page.evaluate(() => {
        const row = (id) => Array.from(document.querySelectorAll(`#nv-table tr[data-row="${id}"] td`)).map((c) => c.title);
        const g = (id) => document.getElementById(id);
        return { q: row("q"), k: row("k"), qk: row("qk"), dot: +g("nv-dot").dataset.page, score: +g("nv-score").dataset.page,
                 scoreApi: g("nv-score").dataset.api, weight: +g("nv-weight").dataset.page, weightApi: g("nv-weight").dataset.api,
                 sub: document.getElementById("neuron-sub").textContent };
      });
      const q = d.q[b][h][i], k = d.k[b][h][j];
      assert.deepEqual(nv.q.map(Number), q);
      assert.deepEqual(nv.k.map(Number), k);
      nv.qk.forEach((v, x) => assert.ok(Math.abs(Number(v) - q[x] * k[x]) < 1e-12));
      const dot = q.reduce((s, v, x) => s + v * k[x], 0);
      assert.ok(Math.abs(nv.dot - dot) < 1e-9);
      const factor = scale === "true" ? 4 ** -0.5 : scale === "false" ? 1 : 0.3;
      const s = d.scores[b][h][i][j];
      if (s === null) {                 // masked by causal
        assert.ok(j > i);
        assert.equal(nv.scoreApi, "-inf");
        assert.equal(nv.weight, 0);
      } else {
        assert.equal(Number(nv.scoreApi), s);
        assert.ok(Math.abs(nv.score - s) <= 1e-5 + 1e-5 * Math.abs(s), `score ${nv.score} vs the API's ${s}`);
        assert.ok(Math.abs(dot * factor - s) <= 1e-5 + 1e-5 * Math.abs(s));
      }
      assert.equal(Number(nv.weightApi), d.weights[b][h][i][j]);
      assert.ok(Math.abs(nv.weight - d.weights[b][h][i][j]) <= 1e-6, `softmax ${nv.weight} vs ${d.weights[b][h][i][j]}`);
      assert.match(nv.sub, new RegExp(`^batch ${b}, head ${h}, query ${i} → key ${j}$`));
    }
  }
  await page.evaluate(() => document.getElementById("neuron-panel").scrollIntoView());
  await page.screenshot({ path: path.join(OUT, "neuron.png") });
});

test("colour scales: per row, log and largest-weight scaling, cividis, masked cells distinct; the lecture's preset", async (t) => {
  const page = await openPage(t);
  await setForm(page, { ...SEEDED, B: "1", T: "16" });
  const sent = await run(page);
  const d = (await api("/attention", sent.text)).json, W = d.weights[0], mask = nullCells(d.scores)[0];
  for (const cmap of ["viridis", "cividis"])
    for (const norm of ["unit", "max", "row", "log"]) {
      await setForm(page, { range: norm, cmap });
      assertMap(await readMain(page), W, mask, norm, cmap);
      assertMap((await readThumbs(page))[0], W, mask, norm, cmap);
    }
  // Under per-row scaling every row's largest weight is the top colour.
  await setForm(page, { range: "row", cmap: "viridis" });
  const m = await readMain(page), top = expectedColour(1);
  W.forEach((row, i) => { const j = row.indexOf(Math.max(...row)); m.px[i][j].forEach((c, k) => assert.ok(Math.abs(c - top[k]) <= 1)); });
  // Both colour maps get lighter from end to end (readable in grey), and
  // the masked grey is none of their colours.
  for (const cmap of ["viridis", "cividis"]) {
    const lum = STOPS[cmap].map(([r, g, b]) => 0.2126 * r + 0.7152 * g + 0.0722 * b);
    lum.slice(1).forEach((l, k) => assert.ok(l > lum[k], `${cmap} is not monotone in lightness at stop ${k}`));
    for (let u = 0; u <= 1; u += 0.01) assert.ok(expectedColour(u, cmap).some((c, k) => Math.abs(c - MASKED_GREY[k]) > 6));
  }
  // The scale note, and the lecture's cell: seed 1337, 4,8,32, head size 16,
  // causal, no scale; its printed wei[0][1] is 0.1574, 0.8426.
  assert.match(await page.textContent("#scale-note"), /unscaled/);
  const lect = await run(page, () => page.click("#preset-lecture"));
  assert.deepEqual(lect.body, { seed: 1337, shape: [4, 8, 32], head_size: 16, causal: true, scale: false, return: RET });
  const L = (await api("/attention", lect.text)).json.weights;
  assert.deepEqual(L[0][1].slice(0, 2).map((v) => v.toFixed(4)), ["0.1574", "0.8426"]);
  await setForm(page, { range: "unit" });
  assertMap(await readMain(page), L[0], nullCells((await api("/attention", lect.text)).json.scores)[0]);
  assert.equal(Number((await hover(page, 1, 0)).value), L[0][1][0]);
});

test("T = 2048: drawn (base64 floats), fitted, then zoomed and panned cell by cell", async (t) => {
  const page = await openPage(t);
  await setForm(page, { ...SEEDED, B: "1", T: "2048", C: "16", head_size: "8" });
  const sent = await run(page);
  assert.equal(sent.body.format, "b64", "a large answer is asked for as base64");
  const d = (await api("/attention", sent.text)).json;
  const W = slices(d.weights)[0], mask = nullCells(d.scores)[0];
  let m = await readMain(page);
  assert.equal(m.rows, 2048);
  assert.ok(m.cell < 1 && m.vr === 2048 && m.vc === 2048, "fitted: the whole map");
  assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 1280);
  // Fitted, each pixel is the largest of the cells it covers: the top right
  // is all masked (grey), the first column holds row 0's weight of 1.
  const px = await page.$eval("#main-canvas", (c) => {
    const ctx = c.getContext("2d"), L = +c.dataset.left, T = +c.dataset.top, n = Math.round(2048 * +c.dataset.cell);
    const at = (x, y) => Array.from(ctx.getImageData(L + x, T + y, 1, 1).data.slice(0, 3));
    return { topRight: at(n - 2, 1), topLeft: at(0, 0) };
  });
  assert.deepEqual(px.topRight, MASKED_GREY);
  assert.deepEqual(px.topLeft, expectedColour(1).map(Math.round));
  await page.screenshot({ path: path.join(OUT, "t2048.png") });
  // Zoom in with the buttons to 4 px a cell: the window is exact cells.
  for (let k = 0; k < 4; k++) await page.click("#zoom-in");
  m = await readMain(page);
  assert.equal(m.cell, 4);
  assert.ok(m.vr < 2048 && m.vc < 2048);
  assertMap(m, W, mask);
  // Pan by dragging left and up: the window moves to later keys and queries.
  const box = await (await page.$("#main-canvas")).boundingBox();
  await page.mouse.move(box.x + 300, box.y + 300);
  await page.mouse.down();
  await page.mouse.move(box.x + 200, box.y + 220, { steps: 5 });
  await page.mouse.up();
  const m2 = await readMain(page);
  assert.equal(m2.c0, m.c0 + 25);
  assert.equal(m2.r0, m.r0 + 20);
  assertMap(m2, W, mask);
  // The keyboard takes the cursor to the last row and the window follows.
  await page.focus("#main-canvas");
  await page.keyboard.press("PageDown");
  const m3 = await readMain(page);
  assert.equal(m3.r0 + m3.vr, 2048);
  const ro = await page.$eval("#readout", (r) => ({ ...r.dataset }));
  assert.equal(Number(ro.i), 2047);
  assert.ok(m3.c0 <= +ro.j && +ro.j < m3.c0 + m3.vc);
  assert.equal(Math.fround(Number(ro.value)), W[2047][+ro.j]);   // base64: float32 bits; the readout, their shortest text
  // + zooms around the cursor's cell, which stays in view; - goes back.
  await page.keyboard.press("+");
  const m4 = await readMain(page);
  assert.equal(m4.cell, 6);
  assert.ok(m4.r0 + m4.vr === 2048 && m4.c0 <= +ro.j && +ro.j < m4.c0 + m4.vc, "the cursor's cell left the window");
  assertMap(m4, W, mask);
  await page.keyboard.press("-");
  assert.equal((await readMain(page)).cell, 4);
  // Per-row and log scales give the long rows contrast; cells still exact.
  await setForm(page, { range: "log" });
  assertMap(await readMain(page), W, mask, "log");
  await page.screenshot({ path: path.join(OUT, "t2048-zoomed.png") });
  await setForm(page, { range: "unit" });
});

test("layout at 360, 768 and 1440 px: no horizontal scroll before or after Run, controls in reach", async (t) => {
  const body = { ...SEEDED, endpoint: "/multihead", B: "4", T: "64", C: "32", head_size: "8", heads: "4", labels: "First Citizen: Before we proceed any further, hear me speak. All:" };
  for (const width of [360, 768, 1440]) {
    const page = await openPage(t, "", { width, height: 800 });
    const check = async (when) => {
      const g = await page.evaluate(() => {
        const r = (id) => { const b = document.getElementById(id).getBoundingClientRect(); return [b.left, b.right]; };
        return { sw: document.documentElement.scrollWidth, bw: document.body.scrollWidth, iw: window.innerWidth,
                 T: r("T"), C: r("C"), run: r("run") };
      });
      assert.ok(g.sw <= g.iw && g.bw <= g.iw, `${width} px ${when}: the page scrolls sideways (${g.sw} > ${g.iw})`);
      for (const k of ["T", "C", "run"]) assert.ok(g[k][0] >= 0 && g[k][1] <= g.iw, `${width} px ${when}: #${k} is cut off (${g[k]})`);
    };
    await check("before Run");
    await page.screenshot({ path: path.join(OUT, `layout-${width}-before.png`) });
    await setForm(page, body);
    await run(page);
    await check("after Run");
    await page.screenshot({ path: path.join(OUT, `layout-${width}-after.png`) });
    await page.screenshot({ path: path.join(OUT, `layout-${width}-after-full.png`), fullPage: true });
    // Scrolled to the end, Run is still in reach: the sticky form (wide) or
    // the dock (narrow), and it runs.
    await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
    await page.waitForTimeout(200);
    const reach = await page.evaluate(() => {
      const vis = (id) => { const el = document.getElementById(id), b = el.getBoundingClientRect();
        return !el.closest("[hidden]") && getComputedStyle(el).display !== "none" && b.top >= 0 && b.bottom <= innerHeight && b.left >= 0 && b.right <= innerWidth && b.width > 0; };
      return { run: vis("run"), dock: vis("dock-run") };
    });
    assert.ok(reach.run || reach.dock, `${width} px: no Run button in view at the bottom of the page`);
    if (width < 900) {
      assert.ok(reach.dock, `${width} px: the dock is not shown`);
      await page.screenshot({ path: path.join(OUT, `layout-${width}-bottom.png`) });
      await run(page, () => page.click("#dock-run"));
    } else assert.ok(reach.run, `${width} px: the sticky controls scrolled away`);
    await check("at the bottom");
  }
});

test("the URL keeps the request and the view: a new page opened on it shows the same", async (t) => {
  const page = await openPage(t);
  await setForm(page, { ...SEEDED, endpoint: "/multihead", B: "2", T: "40", C: "16", head_size: "4", heads: "2", scale: "false", labels: "hello world!", range: "row", cmap: "cividis" });
  const sent = await run(page);
  await page.selectOption("#sel-batch", "1");
  await page.selectOption("#sel-head", "1");
  await page.click("#zoom-in");
  await page.click("#zoom-in");
  await hover(page, 9, 4);
  await page.mouse.down(); await page.mouse.up();
  await page.uncheck('#hv-heads input[data-head="0"]');
  const url = page.url();
  assert.match(url, /#.*ep=%2Fmultihead/);
  const state = async (p) => ({
    main: await readMain(p), sub: await p.textContent("#neuron-sub"), hv: await p.textContent("#headview-sub"),
    labels: await p.inputValue("#labels"), range: await p.inputValue("#range"), cmap: await p.inputValue("#cmap"),
  });
  const before = await state(page);
  assert.equal(before.main.name, "weights[1][1]");
  assert.ok(before.main.vr < 40, "zoomed in");

  const page2 = await openPage(t, new URL(url).hash);
  await page2.waitForFunction(() => Number(document.body.dataset.runs || 0) > 0, null, { timeout: 30000 });
  const sent2 = JSON.parse((await page2.textContent("#curl")).match(/-d '(.*)'$/)[1]);
  assert.deepEqual(sent2, sent.body, "the reopened page sent another request");
  const after = await state(page2);
  assert.deepEqual(after, before);
  assert.equal(page2.url(), url);
});

test("accessibility: axe-core finds nothing serious or critical, before and after a run", async (t) => {
  const axe = fs.readFileSync(path.resolve(here, "node_modules/axe-core/axe.min.js"), "utf8");
  const page = await openPage(t);
  const scan = async (when) => {
    await page.evaluate(axe);
    const res = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
    const bad = res.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    assert.deepEqual(bad.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).slice(0, 4).join(", ")})`), [], when);
    return res.violations.length;
  };
  await scan("before Run");
  await setForm(page, { ...SEEDED, endpoint: "/multihead", B: "2", T: "8", C: "16", head_size: "4", heads: "2", labels: "Citizen:" });
  await run(page);
  await page.click("#raw-panel summary");
  await scan("after a /multihead run");
  await page.fill("#T", "0");
  await run(page);
  await scan("with an error shown");
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
  assert.deepEqual(sent.body.return, RET);
  const direct = await assertDrawn(page, sent);
  assert.deepEqual(shapeOf(direct.json.weights), [B, T, S]);
  assert.match(await page.textContent("#weights-sub"), new RegExp("^" + [B, T, S].join("×") + " "));
  const maps = await readThumbs(page);
  assert.deepEqual(maps.map((m) => [m.rows, m.cols]), [[T, S]]);
  // Query labels are x's tokens, key labels the context's positions.
  await page.fill("#labels", "abc");
  await selectThumb(page, 0);
  const h = await hover(page, 2, 1);
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
  const maps2 = await readThumbs(page);
  assert.deepEqual(maps2.map((m) => m.name), ["weights[0][0]", "weights[0][1]", "average_weights[0]", "weights[1][0]", "weights[1][1]", "average_weights[1]"]);
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

// ------------------------------------------------------------ /gpt
//
// The page's GPT mode against the loaded model (`make run`'s ./models:
// shakespeare).  Without /gpt (GET /models 404) these tests fail: they
// are meant to run once /gpt is in the server.

const GPT = { endpoint: "/gpt", "gpt-text": "First Citizen:", "gpt-new": "40", "gpt-sample-seed": "1337", "gpt-topk": "10", range: "unit", cmap: "viridis" };

// GET /models answers and holds the model the page picks by default.
async function shippedModel() {
  const r = await fetch(base + "/models");
  assert.equal(r.status, 200, "GET /models answered " + r.status + ": this attnd has no /gpt (issue 17), which these tests need");
  const list = (await r.json()).models;
  const m = list.find((x) => x.name === "shakespeare");
  assert.ok(m, "GET /models lists no shakespeare model (the repository's models/): " + JSON.stringify(list.map((x) => x.name)));
  return m;
}

async function openGpt(t, viewport = null, hash = "") {
  const model = await shippedModel();
  const page = await openPage(t, hash, viewport);
  await page.selectOption("#endpoint", "/gpt");
  await page.waitForFunction(() => document.querySelectorAll("#gpt-model option").length > 0);
  return { page, model };
}

// 2-D slices of weights B×L×H×T×T in (b, l, h) order, and the causal mask.
function causal(mat) { return mat.map((r, i) => r.map((_, j) => j > i)); }

// Every model-view thumbnail (layer × head) is the API's weights for the
// very request the page sent, fetched here; the cells above the diagonal
// are 0 in the API's answer and drawn masked.  Then some maps through the
// big view.  `which` picks the maps whose every cell is hovered.
async function assertModelView(page, sentText, model, which = []) {
  const direct = await api("/gpt", sentText);
  assert.equal(direct.status, 200, direct.text);
  const { n_layer: L, n_head: H } = model.config, W = slices(direct.json.weights);
  const T = direct.json.weights[0][0][0].length;
  assert.deepEqual(shapeOf(direct.json.weights), [1, L, H, T, T]);
  for (const m of W) m.forEach((r, i) => r.forEach((v, j) => { if (j > i) assert.equal(v, 0); }));
  const thumbs = await readThumbs(page);
  assert.equal(thumbs.length, L * H, "a thumbnail for every layer × head");
  const labels = await page.$$eval("#thumbs .thumb span", (ss) => ss.map((s) => s.textContent));
  thumbs.forEach((th, k) => {
    const l = Math.floor(k / H), h = k % H;
    assert.equal(th.name, `weights[0][${l}][${h}]`);
    assert.equal(labels[k], `layer ${l}, head ${h}`);
    assertMap(th, W[k], causal(W[k]));
  });
  for (const k of [0, L * H - 1, ...which]) {
    await selectThumb(page, k);
    const main = await readMain(page);
    assert.equal(main.name, thumbs[k].name);
    assertMap(main, W[k], causal(W[k]));
    if (!which.includes(k)) continue;
    for (let i = 0; i < T; i++)
      for (let j = 0; j < T; j++) {
        const hv = await hover(page, i, j);
        assert.equal(Number(hv.value), W[k][i][j], `${main.name}[${i}][${j}]`);
        assert.equal(hv.masked, String(j > i));
      }
  }
  return direct;
}

// The bars: the top k of the API's probs (ties by id), each bar's width
// its probability, and the sampled token marked (or none).
async function assertBars(page, probs, k, picked = null) {
  const order = probs.map((p, i) => i).sort((a, b) => probs[b] - probs[a] || a - b);
  const bars = await page.$$eval("#next-bars li:not(.gap)", (ls) => ls.map((l) => {
    const tr = l.querySelector(".track").getBoundingClientRect(), f = l.querySelector(".fill").getBoundingClientRect();
    return { id: Number(l.dataset.id), p: Number(l.dataset.p), rank: Number(l.dataset.rank), picked: l.classList.contains("picked"),
             frac: f.width / tr.width, track: tr.width };
  }));
  const want = order.slice(0, k);
  const rank = picked === null ? -1 : order.indexOf(picked);
  if (rank >= k) want.push(picked);
  assert.deepEqual(bars.map((b) => b.id), want, "the bars are the top " + k + " ids (and the sampled one)");
  for (const b of bars) {
    assert.equal(Math.fround(b.p), Math.fround(probs[b.id]), "bar of id " + b.id);
    assert.equal(b.rank, order.indexOf(b.id));
    assert.ok(Math.abs(b.frac * b.track - probs[b.id] * b.track) <= 1.01, `bar ${b.id}: ${b.frac} of the track for p = ${probs[b.id]}`);
    assert.equal(b.picked, b.id === picked);
  }
}

function waitSteps(page, n) {
  return page.waitForFunction((n) => Number(document.body.dataset.steps || 0) > n, n, { timeout: 60000 });
}
const stepsOf = (page) => page.evaluate(() => Number(document.body.dataset.steps || 0));

test("/gpt: the text's tokens are the model's ids; the model view (layers × heads) is the API's weights", async (t) => {
  const { page, model } = await openGpt(t);
  assert.equal(await page.inputValue("#gpt-model"), "shakespeare");
  await setForm(page, { ...GPT, "gpt-new": "0" });
  // the tokens shown as typed are the API's tokens for the same text
  const ids = await page.$$eval("#gpt-tokens .tok", (ts) => ts.map((x) => Number(x.dataset.id)));
  const tok = await api("/gpt", { model: "shakespeare", text: GPT["gpt-text"], max_new_tokens: 0, return: ["tokens"] });
  assert.equal(tok.status, 200, tok.text);
  assert.deepEqual(ids, tok.json.tokens[0]);
  assert.equal(await page.$$eval("#gpt-tokens .oov", (x) => x.length), 0);
  const sent = await run(page);
  assert.equal(sent.path, "/gpt");
  assert.deepEqual(sent.body, { model: "shakespeare", text: "First Citizen:", return: ["weights", "probs"] });
  assert.equal(await page.isVisible("#stepbar"), false, "no generation, no steps");
  await assertModelView(page, sent.text, model, [5]);
  await page.screenshot({ path: path.join(OUT, "gpt-model-view.png"), fullPage: true });
  // the layer and head selectors reach any map; the head view draws the
  // heads of the chosen layer, weights the API's
  const direct = await api("/gpt", sent.text), W = direct.json.weights[0];
  await page.selectOption("#sel-layer", "2");
  await page.selectOption("#sel-head", "3");
  assert.equal((await readMain(page)).name, "weights[0][2][3]");
  const lines = await page.$$eval("#headview line", (ls) => ls.map((l) => [Number(l.dataset.head), Number(l.dataset.key), Number(l.dataset.weight)]));
  const T = 14, want = [];
  for (let h = 0; h < model.config.n_head; h++) for (let j = 0; j < T; j++) if (W[2][h][T - 1][j] > 0) want.push([h, j, W[2][h][T - 1][j]]);
  assert.deepEqual(lines, want);
  assert.match(await page.textContent("#headview-sub"), /layer 2, 4 of 4 heads/);
  assert.equal(await page.isVisible("#neuron-panel"), false, "/gpt returns no q and k");
  // the axes are the text's characters
  await selectThumb(page, 0);
  const hv = await hover(page, 13, 6);
  assert.match(hv.tooltip, /^weights\[0\]\[0\]\[0\]\[13\]\[6\] = .*\nquery ':' \(13\) → key 'C' \(6\)$/);
});

test("/gpt: the next-token bars are the API's probs of the last position, top k", async (t) => {
  const { page } = await openGpt(t);
  await setForm(page, { ...GPT, "gpt-new": "0", "gpt-text": "ROMEO:\nWhat light " });
  const sent = await run(page);
  const direct = await api("/gpt", sent.text);
  assert.equal(direct.status, 200);
  const probs = direct.json.probs[0];
  assert.equal(probs.length, 65);
  await assertBars(page, probs, 10);
  for (const k of ["3", "65"]) {
    await page.fill("#gpt-topk", k);
    await assertBars(page, probs, Number(k));
  }
  assert.equal(await page.isVisible("#next-panel"), true);
  await page.fill("#gpt-topk", "10");
  await page.screenshot({ path: path.join(OUT, "gpt-next.png") });
});

test("/gpt generation: the API's text after the prompt, stepped through token by token", async (t) => {
  const { page, model } = await openGpt(t);
  await setForm(page, GPT);
  const sent = await run(page);
  assert.deepEqual(sent.body, { model: "shakespeare", text: "First Citizen:", max_new_tokens: 40, sample_seed: 1337,
                                return: ["weights", "probs", "tokens", "text"] });
  const direct = await api("/gpt", sent.text);
  assert.equal(direct.status, 200);
  const full = direct.json.text[0], tokens = direct.json.tokens[0], T = 14, N = 40, V = Array.from(model.config.vocab);
  assert.equal(tokens.length, T + N);
  assert.equal(await page.textContent("#gen-text"), full, "the text shown is the API's");
  assert.equal(await page.textContent("#gen-text .p"), "First Citizen:");
  assert.equal((await page.$$eval("#gen-text .g", (g) => g.map((x) => x.textContent).join(""))), full.slice(T));
  // step 0: the text's own forward pass; the bars mark the token sampled
  await assertBars(page, direct.json.probs[0], 10, tokens[T]);
  assert.equal(await page.getAttribute("#step", "max"), String(N));
  // steps 1, 2 (button), 7 (slider), N (the end), back to 6 (keyboard):
  // each the API's forward pass of the text so far, cropped to block_size
  const block = model.config.block_size;
  const check = async (s) => {
    const chars = Array.from(full), ctx = chars.slice(Math.max(0, T + s - block), T + s).join("");
    const body = JSON.stringify({ model: "shakespeare", text: ctx, return: ["weights", "probs"] });
    assert.equal(JSON.parse((await page.textContent("#curl")).match(/-d '(.*)'$/s)[1].replace(/'\\''/g, "'")).text, ctx);
    const d = await api("/gpt", body);
    assert.equal(d.status, 200, d.text);
    await assertBars(page, d.json.probs[0], 10, s < N ? tokens[T + s] : null);
    if (s < N) assert.equal(V[tokens[T + s]], full[T + s]);
    assert.equal(await page.evaluate(() => { const c = document.querySelector("#gen-text .g.cur"); return c ? c.dataset.k : null; }), s < N ? String(s) : null);
    assert.equal(await page.$$eval("#gen-text .g.todo", (g) => g.length), Math.max(0, N - s - 1));
    await assertModelView(page, body, model);
  };
  let n = await stepsOf(page);
  await page.click("#step-next"); await waitSteps(page, n);
  await check(1);
  n = await stepsOf(page);
  await page.click("#step-next"); await waitSteps(page, n);
  await check(2);
  n = await stepsOf(page);
  await page.fill("#step", "7"); await waitSteps(page, n);
  await check(7);
  await page.screenshot({ path: path.join(OUT, "gpt-step.png"), fullPage: true });
  // the picture in docs/visualizer.md: the generation, the bars and the model view
  await page.setViewportSize({ width: 1440, height: 1350 });
  await page.evaluate(() => { window.scrollTo(0, 0); document.getElementById("gen-panel").scrollIntoView({ block: "start" }); window.scrollBy(0, -10); });
  await page.screenshot({ path: path.join(OUT, "visualizer-gpt.png") });
  await (await page.$("#thumbs")).screenshot({ path: path.join(OUT, "visualizer-gpt-model.png") });
  await page.setViewportSize({ width: 1280, height: 900 });
  n = await stepsOf(page);
  await page.fill("#step", String(N)); await waitSteps(page, n);
  await check(N);
  assert.ok(await page.isDisabled("#step-next"));
  n = await stepsOf(page);
  await page.click("#gen-text .g[data-k='6']"); await waitSteps(page, n);
  await check(6);
  // past block_size the step reads the last 64 tokens only, as generate() crops
  await setForm(page, { ...GPT, "gpt-text": "All:\nWe know't, we know't.\n\nFirst Citizen:\nLet us kill him, and", "gpt-new": "30" });
  const sent2 = await run(page);
  const d2 = await api("/gpt", sent2.text), full2 = d2.json.text[0];
  assert.equal(await page.textContent("#gen-text"), full2);
  n = await stepsOf(page);
  await page.fill("#step", "25"); await waitSteps(page, n);
  const T2 = Array.from(sent2.body.text).length;
  assert.ok(T2 + 25 > block);
  const body = JSON.stringify({ model: "shakespeare", text: Array.from(full2).slice(T2 + 25 - block, T2 + 25).join(""), return: ["weights", "probs"] });
  const d3 = await api("/gpt", body);
  await assertBars(page, d3.json.probs[0], 10, d2.json.tokens[0][T2 + 25]);
  assert.match(await page.textContent("#step-info"), new RegExp("positions " + (T2 + 25 - block) + "–" + (T2 + 24) + " \\(64 tokens\\)"));
});

test("/gpt errors: an unknown character, a text over block_size, a bad max_new_tokens: the API's error, the field marked", async (t) => {
  const { page } = await openGpt(t);
  await setForm(page, { ...GPT, "gpt-text": "Citizen: café", "gpt-new": "0" });
  // the tokens before sending: é is not in the vocabulary
  const oov = await page.$$eval("#gpt-tokens .oov", (ts) => ts.map((x) => x.firstChild.textContent));
  assert.deepEqual(oov, ["é"]);
  let sent = await run(page);
  let e = await assertShownError(page, sent);
  assert.equal(e.code, "unknown_character");
  assert.equal(e.path, "text");
  assert.deepEqual(e.invalid, ["gpt-text"]);
  assert.match(e.field, /^text/);
  // the token at the byte the API names (é is at byte 12 of "Citizen: café")
  const at = Number(/at byte (\d+)/.exec(e.message)[1]);
  assert.equal(Buffer.from("Citizen: café").subarray(at, at + 2).toString(), "é");
  assert.deepEqual(await page.$$eval("#gpt-tokens .tok.err", (ts) => ts.map((x) => x.firstChild.textContent + "@" + x.dataset.t)), ["é@12"]);
  await page.screenshot({ path: path.join(OUT, "gpt-error.png") });

  await setForm(page, { "gpt-text": "x".repeat(65) });
  sent = await run(page);
  e = await assertShownError(page, sent);
  assert.equal(e.status, 413);
  assert.deepEqual(e.invalid, ["gpt-text"]);
  assert.match(await page.textContent("#gpt-tokens-hint"), /over block_size 64/);

  await setForm(page, { "gpt-text": "Citizen:", "gpt-new": "-1" });
  sent = await run(page);
  e = await assertShownError(page, sent);
  assert.equal(e.path, "max_new_tokens");
  assert.deepEqual(e.invalid, ["gpt-new"]);

  await setForm(page, { "gpt-new": "3", "gpt-sample-seed": "-5" });
  sent = await run(page);
  e = await assertShownError(page, sent);
  assert.equal(e.path, "sample_seed");
  assert.deepEqual(e.invalid, ["gpt-sample-seed"]);

  // a good run clears the marks
  await setForm(page, { "gpt-sample-seed": "1" });
  await run(page);
  assert.equal((await errorPanel(page)).shown, false);
  assert.deepEqual((await errorPanel(page)).invalid, []);
  assert.equal(await page.$$eval("#gpt-tokens .err", (x) => x.length), 0);
});

test("/gpt layout at 360, 768 and 1440 px and accessibility: no horizontal scroll, controls in reach, axe clean", async (t) => {
  const axe = fs.readFileSync(path.resolve(here, "node_modules/axe-core/axe.min.js"), "utf8");
  for (const width of [360, 768, 1440]) {
    const { page } = await openGpt(t, { width, height: 800 });
    const check = async (when) => {
      const g = await page.evaluate(() => {
        const r = (id) => { const b = document.getElementById(id).getBoundingClientRect(); return [b.left, b.right]; };
        const over = [...document.querySelectorAll("main *")].filter((el) => el.getBoundingClientRect().right > innerWidth + 0.5 && !el.closest(".scroll-x, .tensor, pre, #headview, .canvas-wrap")).map((el) => el.id || el.className).slice(0, 5);
        return { sw: document.documentElement.scrollWidth, iw: window.innerWidth, text: r("gpt-text"), run: r("run"), over };
      });
      assert.ok(g.sw <= g.iw, `${width} px ${when}: the page scrolls sideways (${g.sw} > ${g.iw})`);
      assert.deepEqual(g.over, [], `${width} px ${when}: past the right edge`);
      for (const k of ["text", "run"]) assert.ok(g[k][0] >= 0 && g[k][1] <= g.iw, `${width} px ${when}: ${k} is cut off (${g[k]})`);
    };
    await check("before Run");
    await setForm(page, { ...GPT, "gpt-text": "First Citizen:\nBefore we proceed any further, hear me speak." });
    await run(page);
    await check("after Run");
    await page.screenshot({ path: path.join(OUT, `gpt-layout-${width}.png`), fullPage: true });
    const n = await stepsOf(page);
    await page.click("#step-next"); await waitSteps(page, n);
    await check("after a step");
    if (width === 1440) {
      await page.evaluate(axe);
      const res = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
      const bad = res.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
      assert.deepEqual(bad.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((x) => x.target.join(" ")).slice(0, 4).join(", ")})`), []);
    }
  }
});

test("/gpt: the URL keeps the model, text, generation, step and view; a new page on it shows the same", async (t) => {
  const { page } = await openGpt(t);
  await setForm(page, { ...GPT, "gpt-new": "20", "gpt-sample-seed": "7", "gpt-topk": "5", range: "row", cmap: "cividis" });
  const sent = await run(page);
  let n = await stepsOf(page);
  await page.fill("#step", "9"); await waitSteps(page, n);
  await page.selectOption("#sel-layer", "3");
  await page.selectOption("#sel-head", "1");
  await page.click("#zoom-in");
  const url = page.url();
  const state = async (p) => ({
    main: await readMain(p), gen: await p.textContent("#gen-text"), info: await p.textContent("#step-info"),
    bars: await p.$$eval("#next-bars li", (ls) => ls.map((l) => l.dataset.id + ":" + l.dataset.p + ":" + l.className)),
    hv: await p.textContent("#headview-sub"), curl: await p.textContent("#curl"),
  });
  const before = await state(page);
  assert.equal(before.main.name, "weights[0][3][1]");
  const page2 = await openPage(t, new URL(url).hash);
  await page2.waitForFunction(() => Number(document.body.dataset.runs || 0) > 0, null, { timeout: 60000 });
  assert.deepEqual(await state(page2), before);
  assert.equal(await page2.inputValue("#gpt-sample-seed"), "7");
  assert.equal(page2.url(), url);
  assert.deepEqual(sent.body.sample_seed, 7);
});
