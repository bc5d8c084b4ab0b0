// End-to-end browser test: a real switchyard process, headless Debian
// Chromium driven by playwright-core, the console loaded from switchyard
// itself and from a different origin (a static file server), every console
// action over gRPC-Web and Connect, the page's layout at 400 and 1280 px,
// and the official grpc-web runtime in text and binary mode.
//
// It fails fast and leaves nothing behind: every wait is bounded, the first
// failing case ends the run, and one cleanup (harness.mjs) stops Chromium,
// switchyard, the static server and esbuild and then removes the temporary
// directory, whatever failed. test/cleanup.test.mjs checks exactly that by
// injecting failures (SWITCHYARD_BROWSER_TEST_INJECT, for that test only).
//
// Outside CI a missing Chromium skips loudly; with CI=true it fails.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { existsSync, readFileSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join, extname, normalize } from "node:path";
import * as esbuild from "esbuild";
import { CHROMIUM, Cleanup, buildSwitchyard, launchChromium, processesUsing, repoRoot, startSwitchyard, tempDir, webDir, withTimeout } from "../harness.mjs";

const inCI = process.env.CI === "true";
const shotDir = process.env.SCREENSHOT_DIR || join(repoRoot, ".tmp", "browser");
// How long any one wait in a page may take.
const WAIT_MS = Number(process.env.SWITCHYARD_BROWSER_TEST_WAIT_MS) || 15000;
// Failures to inject, for test/cleanup.test.mjs: "fail" (an assertion in
// the first case), "hang" (a wait that never ends), "cleanup" (an undo step
// that throws before the others run).
const inject = new Set((process.env.SWITCHYARD_BROWSER_TEST_INJECT || "").split(",").filter(Boolean));

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

// The run's temporary directory, for the check that it is gone.
let runDir;

test("console and grpc-web runtime in headless Chromium", { skip: !haveChromium && !inCI ? `no Chromium at ${CHROMIUM}` : false, timeout: 240000 }, async (t) => {
  assert.ok(haveChromium, `CI=true but there is no Chromium at ${CHROMIUM}; .ci/run installs it with apt`);
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const tmp = tempDir(cleanup, "switchyard-browser-");
  runDir = tmp;

  // The grpc-web probe page, bundled from test/grpcweb-probe.ts.
  mkdirSync(join(tmp, "probe"));
  cleanup.add("stop esbuild", () => esbuild.stop());
  await withTimeout(
    esbuild.build({ entryPoints: [join(webDir, "test/grpcweb-probe.ts")], outfile: join(tmp, "probe/probe.js"), bundle: true, format: "iife", logLevel: "warning" }),
    60000,
    "esbuild",
  );
  writeFileSync(join(tmp, "probe/index.html"), '<!doctype html><meta charset="utf-8"><title>grpc-web probe</title><link rel="icon" href="data:,"><script src="probe.js"></script>');

  const other = await staticServer({ "/probe/": join(tmp, "probe"), "/": join(webDir, "dist") });
  cleanup.add("close the static server", () => new Promise((resolve) => {
    other.closeAllConnections();
    other.close(resolve);
  }));
  const otherOrigin = `http://127.0.0.1:${other.address().port}`;

  const bin = buildSwitchyard(tmp);
  const sy = await startSwitchyard(cleanup, bin, join(tmp, "data"), ["-cors-origins", otherOrigin]);
  const browser = await launchChromium(cleanup, join(tmp, "profile"), { width: 1280, height: 1100 });
  browser.setDefaultTimeout(WAIT_MS);
  if (inject.has("cleanup")) {
    cleanup.add("injected failure", () => {
      throw new Error("injected cleanup failure");
    });
  }

  // Fail fast: once a case fails, the others are not run.
  let failed = false;
  const step = (name, fn) =>
    t.test(name, async (t) => {
      if (failed) {
        t.skip("an earlier case failed");
        return;
      }
      try {
        await fn(t);
      } catch (err) {
        failed = true;
        throw err;
      }
    });

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
      await step(`${origin.name} over ${protocol.name}`, async () => {
        const page = await browser.newPage();
        const apiCalls = [];
        const pageErrors = [];
        const otherRequests = [];
        const consoleErrors = [];
        page.on("pageerror", (err) => pageErrors.push(String(err)));
        page.on("request", (req) => {
          if (req.method() === "POST") apiCalls.push({ url: req.url(), contentType: req.headers()["content-type"] });
          else otherRequests.push(new URL(req.url()).pathname);
        });
        // Chromium logs every failed load; only API errors (an HTTP 404 is
        // how the Connect protocol answers NOT_FOUND) are expected.
        page.on("console", (msg) => {
          if (msg.type() === "error") consoleErrors.push({ text: msg.text(), url: msg.location().url });
        });
        const url = new URL(origin.page);
        url.searchParams.set("protocol", protocol.name);
        if (origin.api) url.searchParams.set("api", origin.api);
        await page.goto(url.href);
        await page.waitForSelector("body[data-ready=true]");
        assert.equal(await page.getAttribute("body", "data-protocol"), protocol.name);
        if (inject.has("fail")) assert.fail("injected failure");
        if (inject.has("hang")) await page.waitForSelector("#never-there");

        // The map loads the whole database as ListFeatures streams it.
        await page.waitForSelector("#features-result[data-state=ok]");
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
        // A lookup after the list replaces it: no stale table under the
        // new result (or error).
        await page.fill("#team-city", "Seattle");
        await page.click("#team-form button[type=submit]");
        await page.waitForSelector("#team-result[data-state=ok][data-nickname=Orcas]");
        assert.equal(await page.isVisible("#teams-table"), false, "the team list still shows after a lookup");
        await page.click("#teams-list-button");
        await page.waitForSelector("#team-result[data-teams='10']");
        await page.fill("#team-city", "Atlantis");
        await page.click("#team-form button[type=submit]");
        await page.waitForSelector("#team-result[data-state=error]");
        assert.equal(await page.isVisible("#teams-table"), false, "the team list still shows after a failed lookup");

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
        // Beyond float32: the page says so instead of failing to encode it.
        const callsBefore = apiCalls.length;
        await page.fill("#sum-a", "1e39");
        await page.click("#sum-form button");
        await page.waitForSelector("#sum-result[data-state=error]");
        assert.equal(await page.getAttribute("#sum-result", "data-code"), "INVALID_ARGUMENT");
        assert.match(await page.textContent("#sum-result"), /^INVALID_ARGUMENT: the first number, 1e\+?39, is outside float32's range/);
        assert.equal(apiCalls.length, callsBefore, "a summand the page rejects is not sent");

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
        // The page declares its icon, so no browser asks for /favicon.ico.
        assert.ok(!otherRequests.includes("/favicon.ico"), `requests: ${otherRequests}`);
        for (const e of consoleErrors) {
          assert.ok(apiCalls.some((c) => c.url === e.url), `console error not from an API call: ${e.text} (${e.url})`);
        }

        mkdirSync(shotDir, { recursive: true });
        await page.screenshot({ path: join(shotDir, `console-${origin.name}-${protocol.name}.png`), fullPage: true });
        await page.close();
      });
    }
  }

  // No horizontal scrolling and every card on screen, on a phone and on a
  // desktop; the map's labels inside the map.
  for (const width of [400, 1280]) {
    await step(`layout at ${width} px`, async () => {
      const page = await browser.newPage();
      await page.setViewportSize({ width, height: 900 });
      await page.goto(`${sy.url}/`);
      await page.waitForSelector("body[data-ready=true]");
      await page.waitForSelector("#features-result[data-state=ok]");
      await page.click("#teams-list-button"); // the widest content
      await page.waitForSelector("#team-result[data-teams='10']");
      const layout = await page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        clientWidth: document.documentElement.clientWidth,
        cards: [...document.querySelectorAll("main > section")].map((card) => {
          const r = card.getBoundingClientRect();
          return { id: card.id, left: r.left, right: r.right, width: r.width, height: r.height, visible: card.checkVisibility() };
        }),
        labels: [...document.querySelectorAll("#map text.label")].map((label) => {
          const b = label.getBBox();
          return { text: label.textContent, left: b.x, top: b.y, right: b.x + b.width, bottom: b.y + b.height };
        }),
        viewBox: (({ width, height }) => ({ width, height }))(document.querySelector("#map").viewBox.baseVal),
      }));
      mkdirSync(shotDir, { recursive: true });
      await page.screenshot({ path: join(shotDir, `console-${width}px.png`), fullPage: true });
      assert.ok(layout.scrollWidth <= layout.clientWidth, `the page is ${layout.scrollWidth} px wide in a ${layout.clientWidth} px window`);
      assert.deepEqual(layout.cards.map((c) => c.id), ["teams", "greeter", "summator", "keywords", "routeguide", "streaming-note"]);
      for (const c of layout.cards) {
        assert.ok(c.visible && c.width > 0 && c.height > 0, `card #${c.id} is not shown: ${JSON.stringify(c)}`);
        assert.ok(c.left >= 0 && c.right <= layout.clientWidth, `card #${c.id} spans ${c.left}..${c.right} px, off a ${layout.clientWidth} px window`);
      }
      assert.equal(layout.labels.length, 10, "the map's grid labels");
      const { width: w, height: h } = layout.viewBox;
      for (const l of layout.labels) {
        assert.ok(l.left >= 0 && l.top >= 0 && l.right <= w && l.bottom <= h, `map label ${l.text} at ${l.left}..${l.right} x ${l.top}..${l.bottom} is clipped by the ${w}x${h} map`);
      }
      await page.close();
    });
  }

  // An API that does not answer (down, wrong address, CORS refused) is
  // named, with what to check, not left as UNKNOWN "Failed to fetch".
  await step("an API that does not answer", async () => {
    const closed = createServer();
    await new Promise((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const deadAPI = `http://127.0.0.1:${closed.address().port}`;
    await new Promise((resolve) => closed.close(resolve));
    const page = await browser.newPage();
    await page.goto(`${sy.url}/?api=${encodeURIComponent(deadAPI)}`);
    await page.waitForSelector("#features-result[data-state=error]");
    assert.equal(await page.getAttribute("#features-result", "data-code"), "UNAVAILABLE");
    assert.match(await page.textContent("#features-state"), new RegExp(`^UNAVAILABLE: no answer from ${deadAPI} .*-cors-origins admit this page's origin \\(${sy.url}\\)`));
    await page.click("#team-form button[type=submit]");
    await page.waitForSelector("#team-result[data-state=error]");
    assert.equal(await page.getAttribute("#team-result", "data-code"), "UNAVAILABLE");
    // The page's own origin, unreachable: no CORS hint.
    await page.route(`${sy.url}/greeter.v1.GreeterService/**`, (route) => route.abort("connectionrefused"));
    await page.fill("#api", sy.url);
    await page.click("#conn-form button[type=submit]");
    await page.click("#greet-form button");
    await page.waitForSelector("#greet-result[data-state=error]");
    assert.equal(await page.getAttribute("#greet-result", "data-code"), "UNAVAILABLE");
    assert.equal(await page.textContent("#greet-result"), `UNAVAILABLE: no answer from ${sy.url} (Failed to fetch): is switchyard running there?`);
    await page.close();
  });

  // A unary call the API never answers ends as DEADLINE_EXCEEDED after its
  // deadline (30 s, run on the page's fake clock), not at "…" for ever,
  // and the deadline travels to the server.
  await step("a unary call that gets no answer", async () => {
    const page = await browser.newPage();
    await page.clock.install();
    const held = [];
    await page.route("**/greeter.v1.GreeterService/SayHello", (route) => {
      held.push(route.request().headers()["grpc-timeout"]);
    });
    await page.goto(`${sy.url}/`);
    await page.waitForSelector("body[data-ready=true]");
    await page.click("#greet-form button");
    await page.waitForSelector("#greet-result[data-state=busy]");
    await withTimeout((async () => { while (held.length === 0) await new Promise((r) => setTimeout(r, 20)); })(), WAIT_MS, "the held SayHello");
    assert.equal(held[0], "30000m", "the call's grpc-timeout");
    await page.clock.runFor(29_000);
    assert.equal(await page.getAttribute("#greet-result", "data-state"), "busy");
    await page.clock.runFor(2_000);
    await page.waitForSelector("#greet-result[data-state=error]");
    assert.equal(await page.getAttribute("#greet-result", "data-code"), "DEADLINE_EXCEEDED");
    assert.equal(await page.textContent("#greet-result"), "DEADLINE_EXCEEDED: the operation timed out");
    await page.unrouteAll({ behavior: "ignoreErrors" });
    await page.close();
  });

  // An API field that holds no http(s) URL is refused where it is typed,
  // and every call says so instead of going to a path below the page.
  await step("an API field that holds no URL", async () => {
    const page = await browser.newPage();
    const apiCalls = [];
    page.on("request", (req) => {
      if (req.method() === "POST") apiCalls.push(req.url());
    });
    await page.goto(`${sy.url}/?api=${encodeURIComponent("javascript:alert(1)")}`);
    await page.waitForSelector("#features-result[data-state=error]");
    assert.equal(await page.getAttribute("#features-result", "data-code"), "INVALID_ARGUMENT");
    assert.match(await page.textContent("#conn-status"), /^INVALID_ARGUMENT: the API must be an http:\/\/ or https:\/\/ URL .*, not "javascript:alert\(1\)"$/);
    await page.fill("#api", sy.url);
    await page.click("#conn-form button[type=submit]");
    assert.equal(await page.textContent("#conn-status"), `calling ${sy.url} over gRPC-Web`);
    for (const typed of ["localhost:50051", "not a url"]) {
      await page.fill("#api", typed);
      await page.click("#conn-form button[type=submit]");
      assert.equal(await page.getAttribute("#conn-status", "data-state"), "error");
      assert.match(await page.textContent("#conn-status"), /^INVALID_ARGUMENT: the API must be an http:\/\/ or https:\/\/ URL/);
      await page.click("#greet-form button");
      await page.waitForSelector("#greet-result[data-state=error]");
      assert.equal(await page.getAttribute("#greet-result", "data-code"), "INVALID_ARGUMENT");
      assert.match(await page.textContent("#greet-result"), /^INVALID_ARGUMENT: no API to call: the API must be/);
    }
    assert.deepEqual(apiCalls, []);
    await page.close();
  });

  // A panel shows the outcome of its latest call: a slow list of teams
  // that ends after a lookup neither overwrites the lookup's answer nor
  // fills the table behind it, and a list asked for twice is listed once.
  await step("a new call replaces the panel's call under way", async () => {
    const page = await browser.newPage();
    let held = 0;
    const release = [];
    await page.route("**/teams.v1.TeamsService/ListTeams", async (route) => {
      held++;
      await new Promise((resolve) => release.push(resolve));
      await route.continue().catch(() => {}); // the page may have canceled it
    });
    await page.goto(`${sy.url}/`);
    await page.waitForSelector("body[data-ready=true]");
    await page.click("#teams-list-button");
    await page.waitForFunction(() => document.querySelector("#team-result").dataset.state === "busy");
    await page.fill("#team-city", "Chicago");
    await page.click("#team-form button[type=submit]");
    await page.waitForSelector("#team-result[data-state=ok][data-nickname=Jackals]");
    for (const r of release.splice(0)) r();
    await page.click("#greet-form button"); // a round trip after the list's answer
    await page.waitForSelector("#greet-result[data-state=ok]");
    assert.equal(held, 1);
    assert.equal(await page.textContent("#team-result"), "Chicago: Jackals", "the list's end overwrote the lookup");
    assert.equal(await page.locator("#teams-table tbody tr").count(), 0);

    await page.click("#teams-list-button");
    await page.click("#teams-list-button");
    await withTimeout((async () => { while (release.length < 2) await new Promise((r) => setTimeout(r, 20)); })(), WAIT_MS, "two ListTeams calls");
    for (const r of release.splice(0)) r();
    await page.waitForSelector("#team-result[data-teams='10']");
    await page.click("#greet-form button");
    await page.waitForSelector("#greet-result[data-state=ok]");
    assert.equal(await page.locator("#teams-table tbody tr").count(), 10);
    await page.unrouteAll({ behavior: "ignoreErrors" });
    await page.close();
  });

  // Input the page cannot send as typed is refused in the server's terms,
  // before any call: an empty summand or corner is not 0, a corner beyond
  // ±90/±180 degrees is not an INTERNAL encoding failure.
  await step("input the page refuses", async () => {
    const page = await browser.newPage();
    const apiCalls = [];
    page.on("request", (req) => {
      if (req.method() === "POST") apiCalls.push(req.url());
    });
    await page.goto(`${sy.url}/`);
    await page.waitForSelector("#features-result[data-state=ok]");
    const refuse = async (fill, button, result, message) => {
      for (const [selector, value] of Object.entries(fill)) await page.fill(selector, value);
      const before = apiCalls.length;
      await page.click(button);
      await page.waitForSelector(`${result}[data-state=error]`);
      assert.equal(await page.getAttribute(result, "data-code"), "INVALID_ARGUMENT");
      assert.match(await page.textContent(result), message);
      assert.equal(apiCalls.length, before, `${JSON.stringify(fill)} was sent`);
    };
    const sumOK = { "#sum-a": "1", "#sum-b": "2" };
    await refuse({ ...sumOK, "#sum-a": "" }, "#sum-form button", "#sum-result", /^INVALID_ARGUMENT: the first number is empty$/);
    await refuse({ ...sumOK, "#sum-b": "  " }, "#sum-form button", "#sum-result", /^INVALID_ARGUMENT: the second number is empty$/);
    await refuse({ ...sumOK, "#sum-b": "1,5" }, "#sum-form button", "#sum-result", /^INVALID_ARGUMENT: the second number, "1,5", is not a number/);
    const rect = { "#lo-lat": "40", "#lo-lng": "-75", "#hi-lat": "42", "#hi-lng": "-74" };
    await refuse({ ...rect, "#lo-lat": "" }, "#rect-form button", "#features-result", /INVALID_ARGUMENT: lo lat is empty/);
    await refuse({ ...rect, "#hi-lng": "east" }, "#rect-form button", "#features-result", /INVALID_ARGUMENT: hi lng is "east"/);
    await refuse({ ...rect, "#hi-lat": "1000" }, "#rect-form button", "#features-result", /INVALID_ARGUMENT: hi lat, 1000, is outside ±90 degrees/);
    await refuse({ ...rect, "#lo-lng": "-181" }, "#rect-form button", "#features-result", /INVALID_ARGUMENT: lo lng, -181, is outside ±180 degrees/);
    await page.close();
  });

  // Every control has a name a screen reader can say, the API's status
  // is announced, and the map's count, which a stream changes up to 100
  // times, is announced once the stream is done (a busy live region).
  await step("controls have names; the map's result is announced when done", async () => {
    const page = await browser.newPage();
    let release;
    await page.route("**/routeguide.v1.RouteGuideService/ListFeatures", async (route) => {
      await new Promise((resolve) => { release = resolve; });
      await route.continue().catch(() => {});
    });
    await page.goto(`${sy.url}/`);
    await page.waitForSelector("body[data-ready=true]");
    const tree = await page.locator("body").ariaSnapshot();
    const unnamed = tree.split("\n").filter((line) => /^\s*- (textbox|button|combobox|spinbutton|checkbox)(:|$)/.test(line));
    assert.deepEqual(unnamed, [], `controls without an accessible name in:\n${tree}`);
    assert.equal(await page.getByRole("button", { name: "=", exact: true }).count(), 0, "the sum button is named only \"=\"");
    assert.equal(await page.getAttribute("#conn-status", "role"), "status");
    await withTimeout((async () => { while (!release) await new Promise((r) => setTimeout(r, 20)); })(), WAIT_MS, "the first ListFeatures");
    assert.equal(await page.getAttribute("#features-result", "aria-busy"), "true");
    release();
    await page.waitForSelector("#features-result[data-state=ok]");
    assert.equal(await page.getAttribute("#features-result", "aria-busy"), "false");
    await page.unrouteAll({ behavior: "ignoreErrors" });
    await page.close();
  });

  for (const format of ["text", "binary"]) {
    await step(`official grpc-web runtime, ${format} mode, cross-origin`, async () => {
      const page = await browser.newPage();
      const contentTypes = new Set();
      page.on("request", (req) => {
        if (req.method() === "POST") contentTypes.add(req.headers()["content-type"]);
      });
      await page.goto(`${otherOrigin}/probe/`);
      await page.waitForFunction(() => typeof window.runProbe === "function");
      const got = await withTimeout(page.evaluate(([api, fmt]) => window.runProbe(api, fmt), [sy.url, format]), WAIT_MS, "the grpc-web probe");
      assert.deepEqual(got.found, { nickname: "Orcas" });
      assert.equal(got.missing.code, 5, `GetTeam(Atlantis): ${JSON.stringify(got.missing)}`);
      assert.match(got.missing.message, /Atlantis/);
      assert.deepEqual(got.features, { count: 100, named: 64 });
      assert.deepEqual([...contentTypes], [format === "text" ? "application/grpc-web-text" : "application/grpc-web+proto"]);
      await page.close();
    });
  }
});

// A run that passed left nothing either (cleanup.test.mjs checks failing
// runs): its directory is gone and no process (switchyard, Chromium) names it.
test("the run left no process and no directory", (t) => {
  if (!runDir) {
    t.skip("the browser test did not run"); // no Chromium, outside CI
    return;
  }
  assert.equal(existsSync(runDir), false, `${runDir} is still there`);
  assert.deepEqual(processesUsing(runDir), [], `processes still use ${runDir}`);
});
