// The published artifact: `npm pack` the package, install the tarball into an
// empty folder, and use it from a plain ESM import in Node 20 with an
// injected IndexedDB (fake-indexeddb). The README's quick start
// (examples/quickstart.ts) runs there too, its types stripped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, cp, lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
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
  // The user's guide and the license travel with the package, as the repository has them.
  assert.ok(paths.includes('README.md') && paths.includes('LICENSE'), `README.md and LICENSE are in the tarball: ${paths.join()}`);

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

  for (const file of ['README.md', 'LICENSE']) {
    assert.equal(await readFile(join(app, 'node_modules/keepstate', file), 'utf8'), await readFile(join(repo, file), 'utf8'), `${file} as in the repository`);
  }
  assert.match(await readFile(join(app, 'node_modules/keepstate/LICENSE'), 'utf8'), /^MIT License/);

  // The README's quick start, verbatim, its types stripped (TypeScript's transpileModule).
  const { default: ts } = await import('typescript');
  const quickstart = ts.transpileModule(await readFile(join(repo, 'examples/quickstart.ts'), 'utf8'), {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
  }).outputText;
  await writeFile(join(app, 'quickstart.mjs'), quickstart);
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

/** A copy of the package folder without its build: package.json and the tools its scripts run. */
async function unbuiltPackage(dir) {
  const pkg = join(dir, 'js-bindings');
  await mkdir(join(pkg, 'tools'), { recursive: true });
  await copyFile(join(packageDir, 'package.json'), join(pkg, 'package.json'));
  for (const f of await readdir(join(packageDir, 'tools'))) if (f.endsWith('.mjs')) await copyFile(join(packageDir, 'tools', f), join(pkg, 'tools', f));
  return pkg;
}

test('npm pack refuses an unbuilt package (no dist/, or dist/ without the .wasm), naming what is missing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'keepstate-unbuilt-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const pkg = await unbuiltPackage(dir);
  await assert.rejects(run('npm', ['pack', '--pack-destination', dir], { cwd: pkg }), (e) => {
    assert.match(e.stderr, /refusing to pack or install an unbuilt package/);
    assert.match(e.stderr, /dist\/keepstate\.wasm is missing/);
    assert.match(e.stderr, /make build-wasm-release/);
    return true;
  });
  // Everything but the module: still refused.
  await cp(join(packageDir, 'dist'), join(pkg, 'dist'), { recursive: true, filter: (src) => !src.endsWith('.wasm') });
  await assert.rejects(run('npm', ['pack', '--pack-destination', dir], { cwd: pkg }), (e) => {
    assert.match(e.stderr, /dist\/keepstate\.wasm is missing/);
    assert.doesNotMatch(e.stderr, /dist\/index\.js is missing/);
    return true;
  });
  // A file that is not WebAssembly is refused too.
  await writeFile(join(pkg, 'dist/keepstate.wasm'), 'not wasm');
  await assert.rejects(run('npm', ['pack', '--pack-destination', dir], { cwd: pkg }), /is not a WebAssembly module/);
  assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith('.tgz')), [], 'no tarball was written');
});

test('the examples take keepstate from this repository, and that install works as written', async (t) => {
  const examples = join(repo, 'examples');
  let checked = 0;
  for (const name of await readdir(examples)) {
    let pkg;
    try {
      pkg = JSON.parse(await readFile(join(examples, name, 'package.json'), 'utf8'));
    } catch {
      continue; // not an npm project
    }
    const spec = pkg.dependencies?.keepstate ?? pkg.devDependencies?.keepstate;
    if (spec === undefined) continue;
    ++checked;
    assert.match(spec, /^file:/, `examples/${name}: keepstate is not on the registry yet; take it by path`);
    assert.equal(join(examples, name, spec.slice('file:'.length)), packageDir.replace(/\/$/, ''), `examples/${name}: ${spec} is js-bindings/`);
    // A folder is installed as a copy (as a tarball would be), or the app would see two Reacts.
    assert.match(await readFile(join(examples, name, '.npmrc'), 'utf8'), /^install-links=true$/m, `examples/${name}/.npmrc`);
  }
  assert.ok(checked > 0, 'some example depends on keepstate');

  // todo-react's keepstate dependency, as written, in a copy of the repository's layout
  // (react, react-dom and vite left out: nothing is fetched).
  const dir = await mkdtemp(join(tmpdir(), 'keepstate-example-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const app = join(dir, 'examples/todo-react');
  await mkdir(app, { recursive: true });
  await symlink(packageDir, join(dir, 'js-bindings'));
  const pkg = JSON.parse(await readFile(join(examples, 'todo-react/package.json'), 'utf8'));
  await writeFile(join(app, 'package.json'), JSON.stringify({ ...pkg, dependencies: { keepstate: pkg.dependencies.keepstate }, devDependencies: {} }));
  await copyFile(join(examples, 'todo-react/.npmrc'), join(app, '.npmrc'));
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--no-package-lock'], { cwd: app });
  const installed = join(app, 'node_modules/keepstate');
  assert.ok(!(await lstat(installed)).isSymbolicLink(), 'installed as a copy');
  for (const f of ['dist/keepstate.wasm', 'dist/react.js', 'README.md', 'LICENSE']) await lstat(join(installed, f));

  // The same spec on an unbuilt folder fails the install, loudly.
  const bare = join(dir, 'bare');
  await mkdir(join(bare, 'examples/todo-react'), { recursive: true });
  await rm(join(bare, 'js-bindings'), { force: true });
  await unbuiltPackage(bare);
  const bareApp = join(bare, 'examples/todo-react');
  await writeFile(join(bareApp, 'package.json'), JSON.stringify({ name: 'bare', private: true, dependencies: { keepstate: pkg.dependencies.keepstate } }));
  await copyFile(join(examples, 'todo-react/.npmrc'), join(bareApp, '.npmrc'));
  await assert.rejects(run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--no-package-lock'], { cwd: bareApp }),
    /refusing to pack or install an unbuilt package/);
});
