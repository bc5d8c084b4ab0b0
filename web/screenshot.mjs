// make screenshot: draws docs/console.png, the console as a reader of the
// README sees it after `make run`, calling http://localhost:50051.
//
// The page is opened as http://localhost:50051/?api=http://localhost:50051,
// and Chromium's requests to that address are answered by a switchyard on
// a free port (with a team directory of its own), so the picture shows the
// address the README uses, whether or not something already listens on
// 50051. Not part of `make test`: run it after changing the console.
import { join } from "node:path";
import { Cleanup, buildSwitchyard, launchChromium, repoRoot, startSwitchyard, tempDir } from "./harness.mjs";

const out = process.argv[2] || join(repoRoot, "docs/console.png");
const shown = "http://localhost:50051";

const cleanup = new Cleanup();
try {
  const tmp = tempDir(cleanup, "switchyard-screenshot-");
  const sy = await startSwitchyard(cleanup, buildSwitchyard(tmp), join(tmp, "data"));
  const browser = await launchChromium(cleanup, join(tmp, "profile"), { width: 1280, height: 1000 });
  browser.setDefaultTimeout(15000);
  const page = await browser.newPage();
  await page.route(`${shown}/**`, async (route) => {
    const response = await route.fetch({ url: route.request().url().replace(shown, sy.url) });
    await route.fulfill({ response });
  });
  await page.goto(`${shown}/?api=${shown}`);
  await page.waitForSelector("body[data-ready=true]");
  await page.waitForSelector("#features-result[data-state=ok]");

  await page.fill("#team-city", "Chicago");
  await page.click("#team-form button[type=submit]");
  await page.waitForSelector("#team-result[data-state=ok]");
  await page.fill("#greet-name", "Grace");
  await page.click("#greet-form button");
  await page.waitForSelector("#greet-result[data-state=ok]");
  await page.click("#sum-form button");
  await page.waitForSelector("#sum-result[data-state=ok]");
  await page.click("#keywords-form button");
  await page.waitForSelector("#keywords-result[data-state=ok]");
  for (const [sel, v] of [["#lo-lat", "40.4"], ["#lo-lng", "-74.8"], ["#hi-lat", "41.6"], ["#hi-lng", "-74.2"]]) await page.fill(sel, v);
  await page.click("#rect-form button");
  await page.waitForSelector("#features-result[data-state=ok]");
  const status = await page.textContent("#conn-status");
  if (!status.includes(shown)) throw new Error(`the page says ${JSON.stringify(status)}, not ${shown}`);
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out} (${status})`);
} finally {
  await cleanup.run();
}
