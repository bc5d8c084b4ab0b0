// The browser test's own test: run with failures injected, it must fail
// quickly and leave nothing behind: no process it started (node, esbuild,
// Chromium, switchyard) and no switchyard-browser-* directory. Each run gets
// a private TMPDIR, so what is left is told apart from other runs on the
// machine: processes whose command line names that directory (switchyard's
// path, Chromium's --user-data-dir) or that are in the run's process group
// (its node processes and esbuild).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CHROMIUM, processesUsing, webDir, withTimeout } from "../harness.mjs";

const runnable = existsSync(CHROMIUM) || process.env.CI === "true";

// processGroup lists the pids in process group pgid.
function processGroup(pgid) {
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) === pgid) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

function describe(pids) {
  return pids.map((pid) => {
    try {
      return `${pid}: ${readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ")}`;
    } catch {
      return `${pid}: (gone)`;
    }
  });
}

for (const { inject, want } of [
  // An assertion fails in the first case, and an undo step throws before
  // the others run: the rest of the cleanup still happens.
  { inject: "fail,cleanup", want: [/injected failure/, /injected cleanup failure/, /# SKIP an earlier case failed/] },
  // A wait that never ends is cut short by its timeout.
  { inject: "hang", want: [/#never-there/, /Timeout 3000ms exceeded/] },
]) {
  test(`the browser test with "${inject}" injected fails fast and leaves nothing`, { skip: !runnable && `no Chromium at ${CHROMIUM}`, timeout: 240000 }, async () => {
    const tmp = mkdtempSync(join(tmpdir(), "switchyard-cleanup-test-"));
    // Without NODE_TEST_CONTEXT, which would make the child report to this
    // test runner instead of printing its results.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const child = spawn(process.execPath, ["--test", join(webDir, "test/browser.test.mjs")], {
      cwd: webDir,
      detached: true, // its own process group: everything it forks is found
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...env, TMPDIR: tmp, SWITCHYARD_BROWSER_TEST_INJECT: inject, SWITCHYARD_BROWSER_TEST_WAIT_MS: "3000", SCREENSHOT_DIR: join(tmp, "shots") },
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    const leftovers = () => [...new Set([...processGroup(child.pid), ...processesUsing(tmp)])];
    try {
      const started = Date.now();
      const { code } = await withTimeout(exited, 180000, `the browser test with ${inject} injected`);
      console.log(`# with "${inject}" injected the browser test failed after ${Date.now() - started} ms`);
      assert.notEqual(code, 0, `the browser test passed with "${inject}" injected:\n${output}`);
      for (const re of want) assert.match(output, re);

      // Killed processes take a moment to be reaped.
      let left = leftovers();
      for (let i = 0; i < 50 && left.length > 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        left = leftovers();
      }
      assert.deepEqual(describe(left), [], "processes left behind");
      const dirs = readdirSync(tmp).filter((name) => name.startsWith("switchyard-browser-"));
      assert.deepEqual(dirs, [], `directories left in ${tmp}`);
    } finally {
      // Whatever the outcome, this test leaves nothing either.
      for (const pid of leftovers()) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
      rmSync(tmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    }
  });
}
