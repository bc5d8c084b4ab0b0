// End-to-end browser test: a real switchyard process, headless Debian
// Chromium driven by playwright-core, the console loaded from switchyard
// itself and from a different origin (a static file server), every console
// action over gRPC-Web and Connect, and the official grpc-web runtime in
// text and binary mode.
//
// Outside CI a missing Chromium skips loudly; with CI=true it fails.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { existsSync, mkdtempSync, readFileSync, rmSync, mkdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, extname, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { chromium } from "playwright-core";

const webDir = fileURLToPath(new URL("..", import.meta.url));
const repoRoot = join(webDir, "..");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const inCI = process.env.CI === "true";
const shotDir = process.env.SCREENSHOT_DIR || join(repoRoot, ".tmp", "browser");

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && !inCI) {
  const bar = "!".repeat(72);
  console.error(`\n${bar}\n!! SKIPPING the browser test: no Chromium at ${CHROMIUM}.\n!! Install it with: apt-get install -y chromium   (CI=true makes this a failure)\n${bar}\n`);
}

// The RouteGuide database decides what the map must show.
const features = JSON.parse(readFileSync(join(repoRoot, "services/routeguide/data/route_guide_db.json"), "utf8"));
function expectedIn(lo, hi) {
  const [minLat, maxLat] = [Math.min(lo.latitude, hi.latitude), Math.max(lo.latitude, hi.latitude)];
  const [minLng, maxLng] = [Math.min(lo.longitude, hi.longitude), Math.max(lo.longitude, hi.longitude)];
  const inside = features.filter(({ location: p }) => p.latitude >= minLat && p.latitude <= maxLat && p.longitude >= minLng && p.longitude <= maxLng);
  return { count: inside.length, named: inside.filter((f) => f.name).length };
}

const MIME = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8" };

// staticServer serves dirs (url prefix -> directory) like any file server.
function staticServer(dirs) {
  const server = createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    for (const [prefix, dir] of Object.entries(dirs)) {
      if (!path.startsWith(prefix)) continue;
      let file = normalize(join(dir, path.slice(prefix.length)));
      if (!file.startsWith(dir)) break;
      if (existsSync(file) && statSync(file).isDirectory()) file = join(file, "index.html");
      if (!existsSync(file)) break;
      res.writeHead(200, { "Content-Type": MIME[extname(file)] || "application/octet-stream" });
      res.end(readFileSync(file));
      return;
    }
    res.writeHead(404).end("not found");
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

// startSwitchyard runs the real binary on a free port and waits for its
// "switchyard serving addr=..." log line.
async function startSwitchyard(t, bin, args) {
  const proc = spawn(bin, ["-addr", "127.0.0.1:0", ...args], { stdio: ["ignore", "ignore", "pipe"] });
  t.after(() => proc.kill("SIGTERM"));
  let log = "";
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`switchyard did not start:\n${log}`)), 20000);
    proc.stderr.on("data", (chunk) => {
      log += chunk;
      const m = /switchyard serving"? addr=(\S+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on("exit", (code) => reject(new Error(`switchyard exited with ${code}:\n${log}`)));
  });
  return { proc, url: `http://${addr}` };
}

test("console and grpc-web runtime in headless Chromium", { skip: !haveChromium && !inCI ? `no Chromium at ${CHROMIUM}` : false, timeout: 240000 }, async (t) => {
  assert.ok(haveChromium, `CI=true but there is no Chromium at ${CHROMIUM}; .ci/run installs it with apt`);
  const tmp = mkdtempSync(join(tmpdir(), "switchyard-browser-"));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));

  // The grpc-web probe page, bundled from test/grpcweb-probe.ts.
  mkdirSync(join(tmp, "probe"));
  t.after(() => esbuild.stop());
  await esbuild.build({ entryPoints: [join(webDir, "test/grpcweb-probe.ts")], outfile: join(tmp, "probe/probe.js"), bundle: true, format: "iife", logLevel: "warning" });
  const probeHTML = '<!doctype html><meta charset="utf-8"><title>grpc-web probe</title><script src="probe.js"></script>';
  (await import("node:fs")).writeFileSync(join(tmp, "probe/index.html"), probeHTML);

  const other = await staticServer({ "/probe/": join(tmp, "probe"), "/": join(webDir, "dist") });
  t.after(() => other.close());
  const otherOrigin = `http://127.0.0.1:${other.address().port}`;

  const bin = join(tmp, "switchyard");
  execFileSync("go", ["build", "-o", bin, "./cmd/switchyard"], { cwd: repoRoot, stdio: "inherit" });
  const sy = await startSwitchyard(t, bin, ["-cors-origins", otherOrigin]);

  const userDataDir = join(tmp, "profile");
  const browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 1100 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  t.after(() => browser.close());

  const origins = [
    { name: "same-origin", page: `${sy.url}/` },
    { name: "cross-origin", page: `${otherOrigin}/index.html`, api: sy.url },
  ];
  const protocols = [
    { name: "grpc-web", contentType: /^application\/grpc-web\+proto/ },
    { name: "connect", contentType: /^application\/(connect\+)?(proto|json)/ },
  ];
  for (const origin of origins) {
    for (const protocol of protocols) {
      await t.test(`${origin.name} over ${protocol.name}`, async () => {
        const page = await browser.newPage();
        const apiCalls = [];
        const pageErrors = [];
        page.on("pageerror", (err) => pageErrors.push(String(err)));
        page.on("request", (req) => {
          if (req.method() === "POST") apiCalls.push({ url: req.url(), contentType: req.headers()["content-type"] });
        });
        const url = new URL(origin.page);
        url.searchParams.set("protocol", protocol.name);
        if (origin.api) url.searchParams.set("api", origin.api);
        await page.goto(url.href);
        await page.waitForSelector("body[data-ready=true]", { timeout: 15000 });
        assert.equal(await page.getAttribute("body", "data-protocol"), protocol.name);

        // The map loads the whole database as ListFeatures streams it.
        await page.waitForSelector("#features-result[data-state=ok]", { timeout: 20000 });
        assert.equal(await page.textContent("#feature-count"), "100");
        assert.equal(await page.textContent("#named-count"), "64");
        assert.equal(await page.locator("#features circle.named").count(), 64);
        assert.equal(await page.locator("#features circle.unnamed").count(), 36);

        // Team lookup, a NOT_FOUND error shown readably, the full list.
        await page.fill("#team-city", "Chicago");
        await page.click("#team-form button[type=submit]");
        await page.waitForSelector("#team-result[data-state=ok]");
        assert.equal(await page.getAttribute("#team-result", "data-nickname"), "Jackals");
        assert.match(await page.textContent("#team-result"), /Chicago: Jackals/);
        await page.fill("#team-city", "Atlantis");
        await page.click("#team-form button[type=submit]");
        await page.waitForSelector("#team-result[data-state=error]");
        assert.equal(await page.getAttribute("#team-result", "data-code"), "NOT_FOUND");
        assert.match(await page.textContent("#team-result"), /^NOT_FOUND: .*Atlantis/);
        await page.click("#teams-list-button");
        await page.waitForSelector("#team-result[data-state=ok]");
        assert.equal(await page.locator("#teams-table tbody tr").count(), 10);
        assert.match(await page.textContent("#teams-table"), /Seattle\s*Orcas/);

        // Greet, sum, keywords.
        await page.fill("#greet-name", "Grace");
        await page.click("#greet-form button");
        await page.waitForSelector("#greet-result[data-state=ok]");
        assert.equal(await page.textContent("#greet-result"), "Hello, Grace!");

        await page.fill("#sum-a", "1.5");
        await page.fill("#sum-b", "2.25");
        await page.click("#sum-form button");
        await page.waitForSelector("#sum-result[data-state=ok]");
        assert.equal(await page.textContent("#sum-result"), "3.75");
        await page.fill("#sum-a", "NaN");
        await page.click("#sum-form button");
        await page.waitForSelector("#sum-result[data-state=error]");
        assert.equal(await page.getAttribute("#sum-result", "data-code"), "INVALID_ARGUMENT");

        await page.fill("#keywords-text", "The quick brown fox jumps over the lazy dog, and it runs away!");
        await page.click("#keywords-form button");
        await page.waitForSelector("#keywords-result[data-state=ok]");
        assert.deepEqual(await page.locator("#keywords-list li").allTextContents(), ["quick", "brown", "fox", "jumps", "lazy", "dog", "runs", "away"]);

        // A typed rectangle.
        const lo = { latitude: 405000000, longitude: -747000000 };
        const hi = { latitude: 410000000, longitude: -740000000 };
        await page.fill("#lo-lat", "40.5");
        await page.fill("#lo-lng", "-74.7");
        await page.fill("#hi-lat", "41.0");
        await page.fill("#hi-lng", "-74.0");
        await page.click("#rect-form button");
        await page.waitForSelector("#features-result[data-state=ok]");
        const typed = expectedIn(lo, hi);
        assert.ok(typed.count > 0 && typed.count < 100);
        assert.equal(Number(await page.textContent("#feature-count")), typed.count);
        assert.equal(Number(await page.textContent("#named-count")), typed.named);

        // A dragged rectangle: the corners it sets decide the expectation.
        const box = await page.locator("#map").boundingBox();
        await page.mouse.move(box.x + box.width * 0.2, box.y + box.height * 0.2);
        await page.mouse.down();
        await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5, { steps: 5 });
        await page.mouse.move(box.x + box.width * 0.75, box.y + box.height * 0.8, { steps: 5 });
        await page.mouse.up();
        await page.waitForFunction(() => document.querySelector("#lo-lat").value !== "40.5");
        await page.waitForSelector("#features-result[data-state=ok]");
        const corner = async (sel) => Math.round(Number(await page.inputValue(sel)) * 1e7);
        const dragged = expectedIn(
          { latitude: await corner("#lo-lat"), longitude: await corner("#lo-lng") },
          { latitude: await corner("#hi-lat"), longitude: await corner("#hi-lng") },
        );
        assert.ok(dragged.count > 0 && dragged.count < 100, `dragged rectangle holds ${dragged.count} features`);
        assert.equal(Number(await page.textContent("#feature-count")), dragged.count);
        assert.equal(await page.locator("#features circle").count(), dragged.count);

        // Every call went to switchyard in the chosen protocol.
        assert.ok(apiCalls.length >= 9, `only ${apiCalls.length} API calls seen`);
        for (const call of apiCalls) {
          assert.ok(call.url.startsWith(`${sy.url}/`), `call to ${call.url}`);
          assert.match(call.contentType, protocol.contentType, `${call.url} sent ${call.contentType}`);
        }
        assert.notEqual(new URL(page.url()).origin === sy.url, origin.name === "cross-origin");
        assert.deepEqual(pageErrors, []);

        mkdirSync(shotDir, { recursive: true });
        await page.screenshot({ path: join(shotDir, `console-${origin.name}-${protocol.name}.png`), fullPage: true });
        await page.close();
      });
    }
  }

  for (const format of ["text", "binary"]) {
    await t.test(`official grpc-web runtime, ${format} mode, cross-origin`, async () => {
      const page = await browser.newPage();
      const contentTypes = new Set();
      page.on("request", (req) => {
        if (req.method() === "POST") contentTypes.add(req.headers()["content-type"]);
      });
      await page.goto(`${otherOrigin}/probe/`);
      await page.waitForFunction(() => typeof window.runProbe === "function");
      const got = await page.evaluate(([api, fmt]) => window.runProbe(api, fmt), [sy.url, format]);
      assert.deepEqual(got.found, { nickname: "Orcas" });
      assert.equal(got.missing.code, 5, `GetTeam(Atlantis): ${JSON.stringify(got.missing)}`);
      assert.match(got.missing.message, /Atlantis/);
      assert.deepEqual(got.features, { count: 100, named: 64 });
      assert.deepEqual([...contentTypes], [format === "text" ? "application/grpc-web-text" : "application/grpc-web+proto"]);
      await page.close();
    });
  }
});
