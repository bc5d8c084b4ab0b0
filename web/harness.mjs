// What the Chromium test (test/browser.test.mjs) and `make screenshot`
// (screenshot.mjs) need to run the console against a real switchyard: a
// temporary directory, the binary built and started on a free port with a
// team directory of its own, headless Chromium, and one cleanup that
// undoes all of it whatever fails.
//
// It lives outside test/, where `node --test test/` would run it as a test.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const webDir = fileURLToPath(new URL(".", import.meta.url));
export const repoRoot = join(webDir, "..");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

// XDG_DATA_HOME of the switchyard under test: below /dev/null, so had
// -data-dir been left out it would fail at once instead of reading and
// changing the user's real team directory.
const noDefaultDataDir = "/dev/null/tests-must-pass-data-dir";

// Every wait is bounded: a step of cleanup, a start, a build.
const STEP_MS = 15000;
const BUILD_MS = 10 * 60 * 1000; // a first build from empty caches is slow

// withTimeout settles with promise, or rejects after ms naming what hung.
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Cleanup is a stack of undo steps. run() takes them last-in first-out, so
// the temporary directory, made first, is removed last, after everything
// that writes into it has stopped; each step is bounded and a failing one
// does not skip the others (node:test's own after-hooks stop at the first
// that throws, which once left Chromium, esbuild and switchyard running).
// Each step may also have an emergency form, synchronous and forceful,
// which runs if the process exits or is interrupted before run() did.
export class Cleanup {
  #steps = [];
  #ran = false;

  constructor() {
    const emergency = () => this.emergency();
    process.once("exit", emergency);
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
      process.once(signal, () => {
        emergency();
        process.exit(128 + (signal === "SIGINT" ? 2 : signal === "SIGTERM" ? 15 : 1));
      });
    }
  }

  // add registers an undo step: name says what it undoes, undo is async
  // (bounded by STEP_MS), force (optional) is the synchronous last resort.
  add(name, undo, force) {
    this.#steps.push({ name, undo, force, done: false });
  }

  async run() {
    this.#ran = true;
    const errors = [];
    while (this.#steps.length > 0) {
      const step = this.#steps.pop();
      try {
        await withTimeout(Promise.resolve().then(step.undo), STEP_MS, `cleanup: ${step.name}`);
      } catch (err) {
        errors.push(err);
        try {
          step.force?.();
        } catch (forceErr) {
          errors.push(forceErr);
        }
      }
    }
    if (errors.length > 0) {
      throw new AggregateError(errors, `cleanup: ${errors.map((e) => e.message).join("; ")}`);
    }
  }

  emergency() {
    if (this.#ran && this.#steps.length === 0) return;
    while (this.#steps.length > 0) {
      const step = this.#steps.pop();
      try {
        step.force?.();
      } catch {
        // Best effort: the process is going away.
      }
    }
  }
}

// tempDir makes a fresh directory (prefix-XXXXXX in the system's temporary
// directory) that cleanup removes, last.
export function tempDir(cleanup, prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const remove = () => rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  cleanup.add(`remove ${dir}`, remove, remove);
  return dir;
}

// buildSwitchyard builds the server into dir and returns its path.
export function buildSwitchyard(dir) {
  const bin = join(dir, "switchyard");
  execFileSync("go", ["build", "-o", bin, "./cmd/switchyard"], { cwd: repoRoot, stdio: "inherit", timeout: BUILD_MS });
  return bin;
}

// killGroup sends signal to the process group led by pid, ignoring one that
// is gone.
function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch (err) {
    if (err.code !== "ESRCH") throw err;
  }
}

// startSwitchyard runs bin on a free loopback port with its team directory
// in dataDir, in a process group of its own, and waits for its "switchyard
// serving addr=..." line. Cleanup stops it (SIGTERM, then SIGKILL).
export async function startSwitchyard(cleanup, bin, dataDir, args = []) {
  const proc = spawn(bin, ["-addr", "127.0.0.1:0", "-data-dir", dataDir, ...args], {
    stdio: ["ignore", "ignore", "pipe"],
    detached: true,
    env: { ...process.env, XDG_DATA_HOME: noDefaultDataDir, SWITCHYARD_POSTGRES_DSN: "" },
  });
  const exited = new Promise((resolve) => proc.once("exit", resolve));
  cleanup.add(
    `stop switchyard (pid ${proc.pid})`,
    async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      killGroup(proc.pid, "SIGTERM");
      try {
        await withTimeout(exited, 5000, "switchyard after SIGTERM");
      } catch {
        killGroup(proc.pid, "SIGKILL");
        await withTimeout(exited, 5000, "switchyard after SIGKILL");
      }
    },
    () => killGroup(proc.pid, "SIGKILL"),
  );
  let log = "";
  const addr = await withTimeout(
    new Promise((resolve, reject) => {
      proc.stderr.on("data", (chunk) => {
        log += chunk;
        const m = /switchyard serving"? addr=(\S+)/.exec(log);
        if (m) resolve(m[1]);
      });
      proc.once("exit", (code) => reject(new Error(`switchyard exited with ${code}:\n${log}`)));
      proc.once("error", reject);
    }),
    STEP_MS,
    "switchyard start",
  );
  return { proc, url: `http://${addr}`, log: () => log };
}

// processesUsing lists the pids of the processes whose command line
// mentions path (a unique temporary directory): Chromium's, through its
// --user-data-dir.
export function processesUsing(path) {
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(path)) pids.push(Number(entry));
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return pids;
}

// launchChromium starts headless Chromium with a fresh profile in
// profileDir. Cleanup closes it, or kills every process of that profile.
export async function launchChromium(cleanup, profileDir, viewport) {
  const forceKill = () => {
    for (const pid of processesUsing(profileDir)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  };
  let browser;
  cleanup.add("close Chromium", async () => {
    await browser?.close();
    forceKill(); // a crashed helper can outlive close()
  }, forceKill);
  browser = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    timeout: 30000,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  return browser;
}
