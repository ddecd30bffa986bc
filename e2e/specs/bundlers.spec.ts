// The published package through the four bundlers users reach for: `npm pack`
// the package, install the tarball into an empty app, build one tiny app
// (a page and a dedicated Worker, both importing 'keepstate') for production
// with each bundler's browser settings, check the output (no Node module
// named, the .wasm emitted), and run it in Chromium: open, write, commit and
// close in the page, then in the Worker; reload (a new page, a new Worker)
// and read both writes back.
//
// One table of bundlers, one app, one check. The four builds run at once
// (started in beforeAll, each test awaits its own), so a failing bundler
// fails only its test. The bundlers are dev dependencies of the repository
// (package.json); the app resolves 'keepstate' from its own node_modules.
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { basename, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { test, expect } from '../support/fixtures';

const run = promisify(execFile);
const PACKAGE_DIR = resolve(__dirname, '../../js-bindings');

// The app: one module that uses the store, imported by a page and a worker.
// The page starts the worker the way Vite's and webpack's guides do,
// `new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })`:
// those two bundle the worker from there (webpack as a classic worker, it
// rewrites the type). esbuild and Rollup leave that URL alone, so they build
// worker.js as a second entry point next to page.js, where it points.
const APP_SOURCES: Record<string, string> = {
  'src/visit.js': `
import { openStore } from 'keepstate';
// One visit: read the counter, write it + 1 and who wrote it, commit, close.
export async function visit(realm) {
  const store = await openStore('bundled', { autosave: false });
  const before = { visits: store.getJSON('visits') ?? 0, last: store.getText('last') ?? null };
  store.putJSON('visits', before.visits + 1);
  store.put('last', realm);
  const { version } = await store.commit();
  await store.close();
  return { realm, before, version };
}
`,
  'src/page.js': `
import { visit } from './visit.js';
(async () => {
  try {
    const page = await visit('page');
    const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    const reply = await new Promise((resolve, reject) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => reject(new Error('worker: ' + e.message));
      worker.postMessage('visit');
    });
    worker.terminate();
    window.result = reply.ok ? { page, worker: reply.value } : { error: reply.error };
  } catch (e) {
    window.result = { error: String((e && e.stack) || e) };
  }
  document.getElementById('out').textContent = JSON.stringify(window.result, null, 2);
})();
`,
  'src/worker.js': `
import { visit } from './visit.js';
self.onmessage = async () => {
  try {
    self.postMessage({ ok: true, value: await visit('worker') });
  } catch (e) {
    self.postMessage({ ok: false, error: String((e && e.stack) || e) });
  }
};
`,
};

const PAGE = (scriptType: 'module' | 'classic') => `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>keepstate, bundled</title><link rel="icon" href="data:,"></head>
<body>
<h1>keepstate in a bundled app</h1>
<pre id="out">running…</pre>
<script ${scriptType === 'module' ? 'type="module" ' : ''}src="page.js"></script>
</body>
</html>
`;

interface Bundler {
  name: string;
  /** How page.js and worker.js load: ES modules, or classic scripts (webpack's default output). */
  scripts: 'module' | 'classic';
  /** A production build of src/page.js (and so of src/worker.js) into `out`, the page as page.js. */
  build(app: string, out: string): Promise<void>;
}

const page = (app: string) => ({ page: join(app, 'src/page.js') });
const pageAndWorker = (app: string) => ({ ...page(app), worker: join(app, 'src/worker.js') });

// Rollup leaves `new URL('x.wasm', import.meta.url)` as it is, and so the
// .wasm out of the output: emit each such file as an asset and point the URL
// at it (what @web/rollup-plugin-import-meta-assets does, for .wasm only).
function wasmUrlAssets() {
  const pattern = /new URL\((['"])([^'"]+\.wasm)\1,\s*import\.meta\.url\)/g;
  return {
    name: 'wasm-url-assets',
    async transform(this: any, code: string, id: string) {
      let out = '';
      let last = 0;
      for (const m of code.matchAll(pattern)) {
        const source = await readFile(new URL(m[2]!, pathToFileURL(id)));
        const ref = this.emitFile({ type: 'asset', name: basename(m[2]!), source });
        out += `${code.slice(last, m.index)}new URL(import.meta.ROLLUP_FILE_URL_${ref})`;
        last = m.index! + m[0].length;
      }
      return last === 0 ? null : { code: out + code.slice(last), map: null };
    },
  };
}

const BUNDLERS: Bundler[] = [
  {
    name: 'vite',
    scripts: 'module',
    async build(app, out) {
      const { build } = await import('vite');
      await build({
        configFile: false,
        root: app,
        logLevel: 'warn',
        build: {
          outDir: out,
          emptyOutDir: true,
          rolldownOptions: { input: page(app), output: { entryFileNames: '[name].js' } },
        },
      });
    },
  },
  {
    name: 'webpack',
    scripts: 'classic',
    async build(app, out) {
      const webpack = require('webpack');
      const config = {
        mode: 'production',
        target: 'web', // the worker's chunk gets a worker runtime of its own
        context: app,
        entry: page(app),
        output: { path: out, filename: '[name].js' },
        performance: { hints: false }, // the .wasm is over its 244 KiB hint
      };
      await new Promise<void>((done, fail) =>
        webpack(config, (err: Error | null, stats: any) => {
          if (err) fail(err);
          else if (stats.hasErrors()) fail(new Error(stats.toString('errors-only')));
          else done();
        }),
      );
    },
  },
  {
    name: 'esbuild',
    scripts: 'module',
    async build(app, out) {
      const esbuild = require('esbuild');
      await esbuild.build({
        entryPoints: pageAndWorker(app),
        bundle: true,
        platform: 'browser',
        format: 'esm',
        minify: true,
        outdir: out,
        logLevel: 'silent',
      });
      // esbuild does not rewrite `new URL('keepstate.wasm', import.meta.url)`:
      // the .wasm goes next to the bundle, where that URL points.
      await copyFile(join(app, 'node_modules/keepstate/dist/keepstate.wasm'), join(out, 'keepstate.wasm'));
    },
  },
  {
    name: 'rollup',
    scripts: 'module',
    async build(app, out) {
      const { rollup } = await import('rollup');
      const { nodeResolve } = await import('@rollup/plugin-node-resolve');
      const bundle = await rollup({
        input: pageAndWorker(app),
        plugins: [nodeResolve({ browser: true }), wasmUrlAssets()],
        // A warning fails the build: an import Rollup cannot resolve (a
        // 'node:' one, say) is only a warning, and left in the output.
        onwarn(warning) {
          throw new Error(`rollup: ${warning.message}`);
        },
      });
      try {
        await bundle.write({ dir: out, format: 'es', entryFileNames: '[name].js' });
      } finally {
        await bundle.close();
      }
    },
  },
];

async function filesUnder(dir: string): Promise<string[]> {
  const found = await readdir(dir, { recursive: true, withFileTypes: true });
  return found.filter((f) => f.isFile()).map((f) => join(f.parentPath, f.name));
}

/** Builds the app with `bundler` into a folder of its own; resolves with that folder and the build's time. */
async function buildApp(bundler: Bundler, app: string, root: string) {
  const out = join(root, bundler.name);
  const start = performance.now();
  await bundler.build(app, out);
  const ms = Math.round(performance.now() - start);
  await writeFile(join(out, 'index.html'), PAGE(bundler.scripts));
  return { out, ms };
}

let builds: Map<string, Promise<{ out: string; ms: number }>>;
let packageWasm: Buffer;

test.beforeAll(async ({}, testInfo) => {
  const root = join(testInfo.project.outputDir, 'bundlers');
  const app = join(root, 'app');
  await mkdir(app, { recursive: true });
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', root], { cwd: PACKAGE_DIR });
  const [{ filename }] = JSON.parse(stdout);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'bundled-app', private: true, type: 'module' }));
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--no-package-lock', join(root, filename)], { cwd: app });
  for (const [path, text] of Object.entries(APP_SOURCES)) {
    await mkdir(join(app, 'src'), { recursive: true });
    await writeFile(join(app, path), text);
  }
  packageWasm = await readFile(join(app, 'node_modules/keepstate/dist/keepstate.wasm'));
  builds = new Map(BUNDLERS.map((b) => [b.name, buildApp(b, app, join(root, 'out'))]));
  for (const b of builds.values()) b.catch(() => undefined); // awaited (and reported) by each test
});

for (const bundler of BUNDLERS) {
  test(`${bundler.name}: a production build runs the package in a page and a worker`, async ({ launch, profile }, testInfo) => {
    const { out, ms } = await builds.get(bundler.name)!;
    testInfo.annotations.push({ type: 'build', description: `${bundler.name}: ${ms} ms` });
    console.log(`bundlers: ${bundler.name} built in ${ms} ms`);

    // The output: no Node module named in any script, the package's .wasm emitted.
    const files = await filesUnder(out);
    const scripts = files.filter((f) => f.endsWith('.js'));
    expect(scripts.map((f) => relative(out, f))).toContain('page.js');
    for (const f of scripts) {
      const named = (await readFile(f, 'utf8')).match(/(['"`])node:[\w/]+\1/g) ?? [];
      expect(named, `Node modules named in ${relative(out, f)}`).toEqual([]);
    }
    const wasm: string[] = [];
    for (const f of files.filter((f) => f.endsWith('.wasm'))) {
      if ((await readFile(f)).equals(packageWasm)) wasm.push(relative(out, f));
    }
    expect(wasm, 'the package .wasm in the output').toHaveLength(1);

    const { startServer } = await import('../server.mjs');
    const site = await startServer({ port: 0, root: out });
    try {
      const context = await launch(profile);
      const page = await context.newPage();
      const requests: Array<{ path: string; status: number; type: string }> = [];
      page.on('response', (r) => {
        const url = new URL(r.url());
        if (url.protocol === 'http:') requests.push({ path: url.pathname, status: r.status(), type: r.headers()['content-type'] ?? '' });
      });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));

      for (const load of [1, 2]) {
        if (load === 1) await page.goto(site.url);
        else await page.reload();
        await page.waitForFunction(() => (window as any).result !== undefined);
        const base = 2 * (load - 1); // visits before this load: the page's and the worker's of each earlier one
        expect(await page.evaluate(() => (window as any).result)).toEqual({
          page: { realm: 'page', before: { visits: base, last: load === 1 ? null : 'worker' }, version: base + 1 },
          worker: { realm: 'worker', before: { visits: base + 1, last: 'page' }, version: base + 2 },
        });
      }
      expect(errors).toEqual([]);
      expect(requests.filter((r) => r.status !== 200)).toEqual([]);
      const wasmRequests = requests.filter((r) => r.path.endsWith('.wasm'));
      expect(wasmRequests.length).toBeGreaterThan(0);
      expect(wasmRequests.every((r) => r.path === `/${wasm[0]}` && r.type === 'application/wasm')).toBe(true);
    } finally {
      await site.close();
    }
  });
}
