// Builds the console into dist/: the bundle the switchyard binary embeds.
// Deterministic (pinned esbuild, no timestamps), so `make checkgenerate`
// can rebuild it and compare with the committed copy.
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

const here = new URL(".", import.meta.url).pathname;
mkdirSync(`${here}dist/console`, { recursive: true });
await esbuild.build({
  entryPoints: [`${here}src/app.ts`],
  outfile: `${here}dist/console/app.js`,
  bundle: true,
  format: "iife",
  target: "es2020",
  minify: true,
  legalComments: "none",
  logLevel: "warning",
});
copyFileSync(`${here}src/index.html`, `${here}dist/index.html`);
copyFileSync(`${here}src/style.css`, `${here}dist/console/style.css`);
copyFileSync(`${here}src/favicon.svg`, `${here}dist/console/favicon.svg`);
