// The published artifact: `npm pack` the package, install the tarball into an
// empty folder, and use it from a plain ESM import in Node 20 with an
// injected IndexedDB (fake-indexeddb). The README's quick start
// (examples/quickstart.mjs) runs there too, unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const repo = fileURLToPath(new URL('../../', import.meta.url));
// Sets globalThis.indexedDB before the script runs (the way a test page has one).
const injectIndexedDB = import.meta.resolve('fake-indexeddb/auto');

test('the npm pack tarball installs into an empty folder and works from Node', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'keepstate-pack-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: packageDir });
  const [{ filename, files }] = JSON.parse(stdout);
  const paths = files.map((f) => f.path);
  for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/node.js', 'dist/keepstate.js', 'dist/keepstate.node.js',
    'dist/keepstate.wasm', 'package.json']) {
    assert.ok(paths.includes(f), `${f} is in the tarball`);
  }
  assert.ok(paths.every((p) => p === 'package.json' || p.startsWith('dist/') || /^(README|LICENSE)/i.test(p)), paths.join());

  const app = join(dir, 'app');
  await run('mkdir', [app]);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', join(dir, filename)], { cwd: app });

  await writeFile(join(app, 'use.mjs'), `
    import { openStore, ConflictError } from 'keepstate';
    const a = await openStore('packed', { autosave: false });
    a.put('hello', 'world');
    const { version } = await a.commit();
    await a.close();
    const b = await openStore('packed');
    console.log(JSON.stringify({ version, value: b.getText('hello'), conflict: new ConflictError('x').code }));
    await b.close();
  `);
  const used = await run(process.execPath, ['--import', injectIndexedDB, 'use.mjs'], { cwd: app });
  assert.deepEqual(JSON.parse(used.stdout), { version: 1, value: 'world', conflict: 'conflict' });
  assert.equal(used.stderr, '');

  // The README's quick start, verbatim.
  await copyFile(join(repo, 'examples/quickstart.mjs'), join(app, 'quickstart.mjs'));
  const quick = await run(process.execPath, ['--import', injectIndexedDB, 'quickstart.mjs'], { cwd: app });
  assert.equal(quick.stdout.trim(), '1 true');
  assert.equal(quick.stderr, '');
});

test('the exports map: types first, then browser, node and default entries', async () => {
  const pkg = JSON.parse(await readFile(join(packageDir, 'package.json'), 'utf8'));
  assert.equal(pkg.name, 'keepstate');
  assert.equal(pkg.type, 'module');
  assert.deepEqual(pkg.exports['.'], {
    types: './dist/index.d.ts',
    browser: './dist/index.js',
    node: './dist/node.js',
    default: './dist/index.js',
  });
  assert.deepEqual(pkg.files, ['dist']);
  // node.js's only job is a side effect at import (setPlatform): a bundler
  // told the package has none may drop it and leave Node without its glue.
  assert.deepEqual(pkg.sideEffects, ['./dist/node.js']);
});

// Every module a bundler reaches from `entry` through relative imports (static
// and dynamic), with the specifiers each one names.
async function importGraph(entry) {
  const seen = new Map();
  const queue = [new URL(entry, new URL('../dist/', import.meta.url))];
  while (queue.length > 0) {
    const url = queue.shift();
    if (seen.has(url.href)) continue;
    const text = await readFile(url, 'utf8');
    const specifiers = [...text.matchAll(/\b(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)].map((m) => m[1]);
    seen.set(url.href, specifiers);
    for (const s of specifiers) if (s.startsWith('.')) queue.push(new URL(s, url));
  }
  return seen;
}

test('the browser entry names no Node module; the Node entry loads the Node glue', async () => {
  const browser = await importGraph('index.js');
  const named = [...browser.values()].flat();
  assert.ok([...browser.keys()].some((u) => u.endsWith('/dist/keepstate.js')), 'index.js reaches the browser glue');
  assert.deepEqual(named.filter((s) => !s.startsWith('.')), [], 'only relative imports from index.js');
  for (const url of browser.keys()) {
    const text = await readFile(new URL(url), 'utf8');
    assert.ok(!text.includes('node:'), `${url} names no node: module`);
  }
  const node = await importGraph('node.js');
  assert.ok([...node.keys()].some((u) => u.endsWith('/dist/keepstate.node.js')), 'node.js reaches the Node glue');
});

test('the modules of the package import one another without a cycle (Rollup refuses circular imports)', async () => {
  const graph = await importGraph('index.js');
  for (const [url, specifiers] of await importGraph('react.js')) graph.set(url, specifiers);
  const state = new Map(); // url -> 'open' while on the path, 'done' after
  const visit = (url, path) => {
    if (state.get(url) === 'done') return;
    assert.notEqual(state.get(url), 'open', `import cycle: ${[...path, url].map((u) => u.split('/dist/')[1]).join(' -> ')}`);
    state.set(url, 'open');
    for (const s of graph.get(url) ?? []) if (s.startsWith('.')) visit(new URL(s, url).href, [...path, url]);
    state.set(url, 'done');
  };
  for (const url of graph.keys()) visit(url, []);
});
