// keepstate/react in a real browser, from the packed tarball, in two apps built
// with Vite and run in Chromium:
//  - the example todo app (examples/todo-react: useJSON per row, useScanJSON for
//    the list, useStoreStatus for "saved, version N"): todos survive a reload,
//    two tabs follow each other's changes without reloading, the status line
//    follows commits (its own and the other tab's), and the page keeps
//    rendering after the store is closed;
//  - a new, empty Vite + React + TypeScript app (e2e/apps/react-strict,
//    `strict: true` and stricter) that uses every hook the package exports:
//    it type-checks against the packed .d.ts, builds, renders the store's data
//    and follows a second tab.
import { execFile } from 'node:child_process';
import { cp, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Page } from '@playwright/test';
import { test, expect } from '../support/fixtures';

const run = promisify(execFile);
const REPO = resolve(__dirname, '../..');

let site: { url: string; close(): Promise<void> };
let strictSite: { url: string; close(): Promise<void> };
let strictApp: string;

/**
 * A copy of the app at `from` in `root`, with keepstate installed from `tarball`. react and
 * react-dom (their types, Vite and TypeScript) are the repository's own dev dependencies,
 * found by walking up from the app (it lives inside the checkout), so nothing is fetched and
 * the app and keepstate/react share one React.
 */
async function installApp(from: string, root: string, name: string, tarball: string): Promise<string> {
  const app = join(root, name);
  await cp(from, app, { recursive: true });
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: `${name}-under-test`, private: true, type: 'module' }));
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--no-package-lock', tarball], { cwd: app });
  return app;
}

async function viteBuild(app: string) {
  const { build } = await import('vite');
  await build({ root: app, configFile: false, logLevel: 'warn', build: { outDir: join(app, 'dist'), emptyOutDir: true } });
  const { startServer } = await import('../server.mjs');
  return startServer({ port: 0, root: join(app, 'dist') });
}

test.beforeAll(async ({}, testInfo) => {
  const root = join(testInfo.project.outputDir, 'react');
  await mkdir(root, { recursive: true });
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', root], { cwd: join(REPO, 'js-bindings') });
  const [{ filename }] = JSON.parse(stdout);
  const tarball = join(root, filename);
  site = await viteBuild(await installApp(join(REPO, 'examples/todo-react'), root, 'todo-react', tarball));
  strictApp = await installApp(join(REPO, 'e2e/apps/react-strict'), root, 'react-strict', tarball);
  // The app's own check, as its `npm run build` does first: strict TypeScript against the packed .d.ts.
  await run(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', join(strictApp, 'tsconfig.json')]).catch((e) => {
    throw new Error(`tsc -p react-strict/tsconfig.json failed:\n${e.stdout}${e.stderr}`);
  });
  strictSite = await viteBuild(strictApp);
});

test.afterAll(async () => {
  await site?.close();
  await strictSite?.close();
});

async function openApp(page: Page) {
  await page.goto(site.url);
  await page.waitForSelector('#status');
}
const titles = (page: Page) => page.locator('#list li span').allTextContents();
const saved = (page: Page) => page.waitForFunction(() => !(window as any).todos.store.dirty);
async function add(page: Page, title: string) {
  await page.getByLabel('new todo').fill(title);
  await page.getByRole('button', { name: 'Add' }).click();
}

test('the React todo app: todos added and ticked survive a reload', async ({ launch, profile }) => {
  const context = await launch(profile);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await openApp(page);
  for (const t of ['milk', 'bread', 'eggs']) await add(page, t);
  await expect.poll(() => titles(page)).toHaveLength(3);
  await page.getByLabel('done: bread').check();
  await expect(page.locator('#status')).toContainText('2 open of 3');
  await page.getByLabel('remove eggs').click();
  await expect.poll(() => titles(page)).toHaveLength(2);
  await saved(page);
  await page.reload();
  await page.waitForSelector('#status');
  expect((await titles(page)).sort()).toEqual(['bread', 'milk']);
  await expect(page.getByLabel('done: bread')).toBeChecked();
  await expect(page.locator('#status')).toContainText('1 open of 2');
  expect(errors).toEqual([]);
});

test('the React todo app in two tabs: each shows the other\'s changes without reloading', async ({ launch, profile }) => {
  const context = await launch(profile);
  const [a, b] = [await context.newPage(), await context.newPage()];
  await openApp(a);
  await openApp(b);
  await add(a, 'from tab A');
  await expect.poll(() => titles(b), { timeout: 10_000 }).toEqual(['from tab A']);
  await b.getByLabel('done: from tab A').check();
  await add(b, 'from tab B');
  await expect(a.getByLabel('done: from tab A')).toBeChecked({ timeout: 10_000 });
  await expect.poll(async () => (await titles(a)).sort(), { timeout: 10_000 }).toEqual(['from tab A', 'from tab B']);
  for (const p of [a, b]) await saved(p);
  await expect(a.locator('#status')).toContainText('1 open of 2');
  await expect(b.locator('#status')).toContainText('1 open of 2');
});

const storeVersion = (page: Page) => page.evaluate(() => (window as any).todos.store.version as number);

test('the React todo app: useStoreStatus shows "saved, version N" as commits land, here and in another tab', async ({ launch, profile }) => {
  const context = await launch(profile);
  const [a, b] = [await context.newPage(), await context.newPage()];
  await openApp(a);
  await openApp(b);
  const start = await storeVersion(a);
  await expect(a.locator('#saved')).toHaveText(`saved, version ${start}`);
  await add(a, 'one');
  await add(a, 'two');
  await saved(a);
  const after = await storeVersion(a);
  expect(after).toBeGreaterThan(start);
  await expect(a.locator('#saved')).toHaveText(`saved, version ${after}`);
  // The other tab re-renders its status when it follows the commit, with no write of its own.
  await expect(b.locator('#saved')).toHaveText(`saved, version ${after}`, { timeout: 10_000 });
  // Unsaved work shows as such until autosave commits it.
  await a.evaluate(() => {
    const { store } = (window as any).todos;
    store.putJSON('todo/zz-pending', { title: 'pending', done: false });
  });
  await expect(a.locator('#saved')).toHaveText(/saving…|saved, version/);
  await saved(a);
  await expect(a.locator('#saved')).toHaveText(`saved, version ${await storeVersion(a)}`);
});

test('the React todo app keeps rendering after store.close(): the hooks keep their last values', async ({ launch, profile }) => {
  const context = await launch(profile);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await openApp(page);
  await add(page, 'kept');
  await saved(page);
  const version = await storeVersion(page);
  await page.evaluate(() => (window as any).todos.store.close());
  // Typing re-renders App and every hook in it against the closed store.
  await page.getByLabel('new todo').fill('typed after close');
  await expect(page.getByLabel('new todo')).toHaveValue('typed after close');
  expect(await titles(page)).toContain('kept');
  await expect(page.locator('#saved')).toHaveText(`saved, version ${version}`);
  // Hooks mounted on the closed store (a fresh App) render too: nothing to list, the status closed.
  await page.evaluate(() => (window as any).todos.remount());
  await expect(page.locator('#status')).toHaveText('0 open of 0');
  await expect(page.locator('#saved')).toHaveText(`saved, version ${version}`);
  expect(errors).toEqual([]);
});

// --- The new strict TypeScript app ---------------------------------------------------------

/** The package's hooks: every `use…` function keepstate/react's packed typings declare. */
async function packageHooks(): Promise<string[]> {
  const dts = await readFile(join(strictApp, 'node_modules/keepstate/dist/react.d.ts'), 'utf8');
  return [...dts.matchAll(/export declare function (use\w+)/g)].map((m) => m[1]!).sort();
}

test('a new strict Vite + React + TypeScript app uses every hook of keepstate/react', async () => {
  const hooks = await packageHooks();
  expect(hooks.length).toBeGreaterThanOrEqual(6);
  let source = '';
  for (const f of await readdir(join(strictApp, 'src'))) source += await readFile(join(strictApp, 'src', f), 'utf8');
  const called = hooks.filter((h) => new RegExp(`\\b${h}\\s*(<[^>]*>)?\\(`).test(source));
  expect(called).toEqual(hooks);
});

test('the strict app: every hook renders the store\'s data and follows a second tab', async ({ launch, profile }) => {
  const context = await launch(profile);
  const [a, b] = [await context.newPage(), await context.newPage()];
  const errors: string[] = [];
  for (const p of [a, b]) p.on('pageerror', (e) => errors.push(String(e)));
  await a.goto(strictSite.url);
  await expect(a.locator('#status')).toHaveText('saved, version 0');
  await expect(a.locator('#title')).toHaveText('untitled');
  await expect(a.locator('#notes li')).toHaveCount(0);

  // Tab A writes one value for each hook and commits.
  const committed = await a.evaluate(async () => {
    const { store } = window.notes!;
    store.put('title', 'Groceries');
    store.put('avatar', new Uint8Array([7, 1, 2, 3]));
    store.putJSON('pinned', { title: 'milk', done: false });
    store.putJSON('note/1', { title: 'bread', done: false });
    store.putJSON('note/2', { title: 'eggs', done: true });
    store.put('tag/a', 'red');
    store.put('tag/b', 'blue');
    return (await store.commit()).version;
  });
  await expect(a.locator('#title')).toHaveText('Groceries');
  await expect(a.locator('#avatar')).toHaveText('avatar of 4 bytes, first 7');
  await expect(a.locator('#pinned')).toHaveText('milk');
  await expect(a.locator('#notes li')).toHaveText(['bread', '✓ eggs']);
  await expect(a.locator('#tags')).toHaveText('b=blue a=red');
  await expect(a.locator('#status')).toHaveText(`saved, version ${committed}`);

  // Tab B opens on the committed state.
  await b.goto(strictSite.url);
  await expect(b.locator('#title')).toHaveText('Groceries');
  await expect(b.locator('#notes li')).toHaveText(['bread', '✓ eggs']);
  await expect(b.locator('#status')).toHaveText(`saved, version ${committed}`);

  // B changes what each hook reads; A follows without reloading.
  const next = await b.evaluate(async () => {
    const { store } = window.notes!;
    store.put('title', 'Weekend');
    store.put('avatar', new Uint8Array([9, 9]));
    store.putJSON('pinned', { title: 'milk', done: true });
    store.putJSON('note/3', { title: 'jam', done: false });
    store.delete('note/1');
    store.delete('tag/b');
    return (await store.commit()).version;
  });
  expect(next).toBeGreaterThan(committed);
  await expect(a.locator('#title')).toHaveText('Weekend', { timeout: 10_000 });
  await expect(a.locator('#avatar')).toHaveText('avatar of 2 bytes, first 9');
  await expect(a.locator('#pinned')).toHaveText('milk (done)');
  await expect(a.locator('#notes li')).toHaveText(['✓ eggs', 'jam']);
  await expect(a.locator('#tags')).toHaveText('a=red');
  await expect(a.locator('#status')).toHaveText(`saved, version ${next}`);
  expect(errors).toEqual([]);
});
