// keepstate/react in a real browser: the example todo app (examples/todo-react,
// useJSON per row, useScanJSON for the list, useStoreStatus for "saved,
// version N") built with Vite from the packed tarball, run in Chromium: todos
// survive a reload, two tabs follow each other's changes without reloading,
// the status line follows commits (its own and the other tab's), and the page
// keeps rendering after the store is closed.
import { execFile } from 'node:child_process';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Page } from '@playwright/test';
import { test, expect } from '../support/fixtures';

const run = promisify(execFile);
const REPO = resolve(__dirname, '../..');

let site: { url: string; close(): Promise<void> };

test.beforeAll(async ({}, testInfo) => {
  const root = join(testInfo.project.outputDir, 'react');
  const app = join(root, 'todo-react');
  await mkdir(root, { recursive: true });
  await cp(join(REPO, 'examples/todo-react'), app, { recursive: true });
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', root], { cwd: join(REPO, 'js-bindings') });
  const [{ filename }] = JSON.parse(stdout);
  // keepstate from the tarball; react and react-dom (and Vite) are the repository's own dev
  // dependencies, found by walking up from the app (it lives inside the checkout), so nothing
  // is fetched and the app and keepstate/react share one React.
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'todo-react-under-test', private: true, type: 'module' }));
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--no-package-lock', join(root, filename)], { cwd: app });
  const { build } = await import('vite');
  await build({ root: app, configFile: false, logLevel: 'warn', build: { outDir: join(app, 'dist'), emptyOutDir: true } });
  const { startServer } = await import('../server.mjs');
  site = await startServer({ port: 0, root: join(app, 'dist') });
});

test.afterAll(async () => {
  await site?.close();
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
