// Navigation to first `get` in Chromium: how long a bundled app takes from
// navigation until its first store.get() returned, with and without
// preload() (docs/api.md, "Loading faster").
//
// The app is what a typical one looks like to the browser: Vite builds an
// entry module that imports a lazy chunk (the app: React, rendered, which
// opens the store in an effect and reads a key), and keepstate's glue is a
// chunk of its own. "without" is that page; "with" is the same page whose
// entry calls preload() at its top level, so the .wasm is fetched, compiled
// and instantiated while the app's chunk loads and renders.
//
// A third page is "before": the page without preload() on the package's
// loader as main had it (the .wasm requested only once the glue chunk ran):
// a copy of dist/ whose loadWasm does not start the fetch itself.
//
// Each load is a fresh browser context (nothing cached: the server sends
// no-store). Two network conditions: localhost as it is, and a 40 ms
// round trip added to every request (Chromium's network emulation), closer
// to what users see.
//
// Run (after `make build-wasm-release` and `npm run build:js`):
//   node bench/browser/first-get.mjs [--runs 5]
// Prints one table (median ms, and every run) and writes
// bench/results/first-get.json.
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { LAUNCH, median, option } from './launch.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const RUNS = Number(option('--runs') ?? 5);
const OUT = join(REPO, 'build/first-get');

const APP = `
import { useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { openStore } from 'keepstate';

function App() {
  const [value, setValue] = useState('opening…');
  useEffect(() => {
    (async () => {
      const store = await openStore('first-get', { autosave: false });
      const got = store.getText('greeting');
      window.firstGet = performance.now(); // ms since navigation started
      setValue(got ?? 'empty');
    })().catch((e) => { window.firstGet = -1; setValue(String(e)); });
  }, []);
  return <p id="value">{value}</p>;
}

export function start() {
  createRoot(document.getElementById('root')).render(<App />);
}
`;

const ENTRY = (withPreload) => `
${withPreload ? "import { preload } from 'keepstate';\nvoid preload();\n" : ''}
import('./app.jsx').then((app) => app.start());
`;

const HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>first get</title><link rel="icon" href="data:,"></head>
<body><div id="root"></div><script type="module" src="/src/main.js"></script></body></html>
`;

/** dist/ with the loader as it was before preload(): the glue fetches the .wasm after it ran. */
async function distBefore() {
  const dist = join(OUT, 'dist-before');
  await cp(join(REPO, 'js-bindings/dist'), dist, { recursive: true });
  const wasmJs = await readFile(join(dist, 'wasm.js'), 'utf8');
  const patched = wasmJs.replace('compiled = compileAt(wasmUrl);', 'compiled = undefined;');
  if (patched === wasmJs) throw new Error('dist/wasm.js: the fetch of the .wasm was not found');
  await writeFile(join(dist, 'wasm.js'), patched);
  return dist;
}

async function buildVariant(name, withPreload, dist = join(REPO, 'js-bindings/dist')) {
  const root = join(OUT, name);
  await mkdir(join(root, 'src'), { recursive: true });
  await writeFile(join(root, 'index.html'), HTML);
  await writeFile(join(root, 'src/main.js'), ENTRY(withPreload));
  await writeFile(join(root, 'src/app.jsx'), APP);
  const { build } = await import('vite');
  await build({
    root,
    configFile: false,
    logLevel: 'warn',
    resolve: { alias: { keepstate: join(dist, 'index.js') } },
    build: { outDir: join(root, 'dist'), emptyOutDir: true },
  });
  return join(root, 'dist');
}

async function measure(browser, url, latencyMs) {
  const context = await browser.newContext();
  const page = await context.newPage();
  if (latencyMs > 0) {
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: latencyMs, downloadThroughput: -1, uploadThroughput: -1 });
  }
  await page.goto(url);
  await page.waitForFunction(() => window.firstGet !== undefined, null, { timeout: 30_000 });
  const ms = await page.evaluate(() => window.firstGet);
  await context.close();
  if (ms < 0) throw new Error(`${url}: the page failed`);
  return ms;
}

const { startServer } = await import('../../e2e/server.mjs');
const variants = [
  ['before: without preload(), main\'s loader', await buildVariant('before', false, await distBefore())],
  ['without preload()', await buildVariant('without', false)],
  ['with preload()', await buildVariant('with', true)],
];
const sites = await Promise.all(variants.map(([, dir]) => startServer({ port: 0, root: dir })));
const browser = await chromium.launch(LAUNCH);
const version = browser.version();
const results = [];
try {
  for (const latency of [0, 40]) {
    const runs = variants.map(() => []);
    // Interleaved, so that a slow moment of the machine hits both alike.
    for (let r = 0; r < RUNS; ++r) {
      for (let v = 0; v < variants.length; ++v) runs[v].push(await measure(browser, sites[v].url, latency));
    }
    variants.forEach(([name], v) => results.push({ network: latency === 0 ? 'localhost' : `+${latency} ms RTT`, page: name, medianMs: median(runs[v]), runsMs: runs[v] }));
  }
} finally {
  await browser.close();
  for (const s of sites) await s.close();
}

const fmt = (x) => x.toFixed(1);
console.log(`navigation to first get, Chromium ${version}, median of ${RUNS} runs (ms)`);
console.log('| network | page | median | runs |');
console.log('| --- | --- | --- | --- |');
for (const r of results) console.log(`| ${r.network} | ${r.page} | ${fmt(r.medianMs)} | ${r.runsMs.map(fmt).join(', ')} |`);
await mkdir(join(REPO, 'bench/results'), { recursive: true });
await writeFile(join(REPO, 'bench/results/first-get.json'), JSON.stringify({ chromium: version, runs: RUNS, results }, null, 2));
