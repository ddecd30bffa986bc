// The published artifact in a browser: `npm pack` the package, extract the
// tarball into an empty folder served on its own (nothing else of the
// repository is reachable), and use it from a plain HTML page through an
// import map — no bundler. And the first load's two documented shortcuts:
// preload() and a <link rel="preload"> of the .wasm, each fetching and
// compiling the module once, while its glue loads.
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { test, expect } from '../support/fixtures';

const run = promisify(execFile);
const PACKAGE_DIR = resolve(__dirname, '../../js-bindings');

const PAGE = (entry: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>keepstate from its npm tarball</title>
<link rel="icon" href="data:,">
<script type="importmap">${JSON.stringify({ imports: { keepstate: entry } })}</script>
</head>
<body>
<h1>keepstate from the npm tarball, via an import map</h1>
<pre id="out">running…</pre>
<script type="module">
import { openStore, ConflictError, QuotaError, InvalidArgumentError } from 'keepstate';
const out = document.getElementById('out');
try {
  const store = await openStore('packed', { autosave: false });
  const before = { version: store.version, visits: store.getJSON('visits') ?? 0 };
  store.putJSON('visits', before.visits + 1);
  store.transaction((tx) => tx.put('last', String(before.visits + 1)));
  const { version } = await store.commit();
  let invalid;
  try { store.put('', 'x'); } catch (e) { invalid = e instanceof InvalidArgumentError && e.code; }
  await store.close();
  window.result = { before, version, invalid, classes: [new ConflictError('x').code, new QuotaError('x').code] };
} catch (e) {
  window.result = { error: String(e && e.stack || e) };
}
out.textContent = JSON.stringify(window.result, null, 2);
</script>
</body>
</html>
`;

test('the npm pack tarball works from a plain page with an import map', async ({ launch, profile }, testInfo) => {
  const root = testInfo.outputPath('site');
  await mkdir(root, { recursive: true });
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', root], { cwd: PACKAGE_DIR });
  const [{ filename }] = JSON.parse(stdout);
  await run('tar', ['-xzf', join(root, filename), '-C', root]); // -> site/package/
  const pkg = JSON.parse(await readFile(join(root, 'package/package.json'), 'utf8'));
  // A page is a browser: the import map points at the entry of the `browser`
  // condition (the `node` one would load Node's glue).
  const entry = `/package/${pkg.exports['.'].browser.replace(/^\.\//, '')}`;
  await writeFile(join(root, 'index.html'), PAGE(entry));

  const { startServer } = await import('../server.mjs');
  const site = await startServer({ port: 0, root });
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

    for (const visit of [1, 2]) {
      await page.goto(`${site.url}`);
      await page.waitForFunction(() => (window as any).result !== undefined);
      const result = await page.evaluate(() => (window as any).result);
      expect(result).toEqual({
        before: { version: visit - 1, visits: visit - 1 },
        version: visit,
        invalid: 'invalid-argument',
        classes: ['conflict', 'quota'],
      });
    }
    expect(errors).toEqual([]);
    // The module and its wasm came from the extracted tarball, the wasm with its MIME type.
    const wasm = requests.filter((r) => r.path.endsWith('.wasm'));
    expect(wasm).toEqual([
      { path: '/package/dist/keepstate.wasm', status: 200, type: 'application/wasm' },
      { path: '/package/dist/keepstate.wasm', status: 200, type: 'application/wasm' },
    ]);
    expect(requests.every((r) => r.status === 200)).toBe(true);
    expect(requests.filter((r) => r.path !== '/').every((r) => r.path.startsWith('/package/dist/'))).toBe(true);
  } finally {
    await site.close();
  }
});

/** The tarball extracted under `root` (site/package/); the browser entry's URL. */
async function extractPackage(root: string): Promise<string> {
  await mkdir(root, { recursive: true });
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', root], { cwd: PACKAGE_DIR });
  const [{ filename }] = JSON.parse(stdout);
  await run('tar', ['-xzf', join(root, filename), '-C', root]);
  const pkg = JSON.parse(await readFile(join(root, 'package/package.json'), 'utf8'));
  return `/package/${pkg.exports['.'].browser.replace(/^\.\//, '')}`;
}

// Counts every way a page can compile WebAssembly (a compile of bytes, or of a stream).
const COUNT_COMPILES = () => {
  const w = window as any;
  w.compiles = 0;
  const wrap = (name: string, compiles: (args: unknown[]) => boolean) => {
    const original = (WebAssembly as any)[name];
    (WebAssembly as any)[name] = function (...args: unknown[]) {
      if (compiles(args)) ++w.compiles;
      return original.apply(WebAssembly, args);
    };
  };
  wrap('compile', () => true);
  wrap('compileStreaming', () => true);
  wrap('instantiateStreaming', () => true);
  wrap('instantiate', (args) => !(args[0] instanceof WebAssembly.Module)); // bytes are compiled, a Module is not
};

const PRELOAD_PAGE = (entry: string, link: boolean) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>keepstate, preloaded</title>
<link rel="icon" href="data:,">
${link ? '<link rel="preload" href="/package/dist/keepstate.wasm" as="fetch" crossorigin>' : ''}
<script type="importmap">${JSON.stringify({ imports: { keepstate: entry } })}</script>
</head>
<body>
<pre id="out">running…</pre>
<script type="module">
import { preload, openStore, inspectSnapshot } from 'keepstate';
const ready = preload();
try {
  await ready;
  // Everything that loads the module after it: found ready, nothing fetched or compiled again.
  const store = await openStore('preloaded', { autosave: false });
  store.put('k', 'v');
  await store.commit();
  const info = await inspectSnapshot(await store.export());
  await store.close();
  window.result = { entries: info.entries, preloadAgain: await preload().then(() => 'ok') };
} catch (e) {
  window.result = { error: String(e && e.stack || e) };
}
</script>
</body>
</html>
`;

for (const link of [false, true]) {
  test(`preload()${link ? ' with <link rel="preload">' : ''}: the .wasm is fetched and compiled once, ${link ? 'before any script runs' : 'while the glue loads'}`, async ({ launch, profile }, testInfo) => {
    const root = testInfo.outputPath('site');
    const entry = await extractPackage(root);
    await writeFile(join(root, 'index.html'), PRELOAD_PAGE(entry, link));
    const { startServer } = await import('../server.mjs');
    const site = await startServer({ port: 0, root });
    try {
      const context = await launch(profile);
      const page = await context.newPage();
      await page.addInitScript(COUNT_COMPILES);
      const events: string[] = [];
      page.on('request', (r) => events.push(`request ${new URL(r.url()).pathname}`));
      page.on('requestfinished', (r) => events.push(`finished ${new URL(r.url()).pathname}`));
      await page.goto(site.url);
      await page.waitForFunction(() => (window as any).result !== undefined);
      expect(await page.evaluate(() => (window as any).result)).toEqual({ entries: 1, preloadAgain: 'ok' });
      expect(await page.evaluate(() => (window as any).compiles)).toBe(1);
      const wasm = '/package/dist/keepstate.wasm';
      expect(events.filter((e) => e === `request ${wasm}`), events.join('\n')).toHaveLength(1);
      // Not after the glue: the .wasm is requested before the glue (keepstate.js) has arrived.
      expect(events.indexOf(`request ${wasm}`), events.join('\n')).toBeLessThan(events.indexOf('finished /package/dist/keepstate.js'));
      if (link) expect(events.indexOf(`request ${wasm}`)).toBeLessThan(events.indexOf(`request ${entry}`));
    } finally {
      await site.close();
    }
  });
}
