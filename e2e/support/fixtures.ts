// Fixtures of the keepstate suite:
//  - `server`: the static server (worker-scoped), serving the repository root.
//  - `profile`: a fresh temp profile directory per test, removed afterwards.
//  - `launch(dir)`: Debian's Chromium as a persistent context on `dir`
//    (IndexedDB on disk); every context still open at the end is closed.
//  - `harness(context, mode)`: a page of support/web/harness.html with the
//    package loaded in `mode` ('page' or 'worker'), driven through `call`.
// After each test, a screenshot of every open page is attached to the report
// and saved in the test's output folder (e2e/test-results/).
import { test as base, chromium, expect, type BrowserContext, type Page } from '@playwright/test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

// The repository root, served at / (specs are compiled to CommonJS: __dirname).
const REPO_ROOT = resolve(__dirname, '../..');

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** The package as built by `npm run build:js`, under the server root. */
export const PACKAGE_URL = '/js-bindings/dist/index.js';
export const HARNESS_URL = '/e2e/support/web/harness.html';
/** The C++ ledger example's JS client, next to its module in the wasm-release build. */
export const LEDGER_URL = '/build/wasm-release/examples/ledger/client.mjs';

export type Mode = 'page' | 'worker';
export const MODES: Mode[] = ['page', 'worker'];

export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  expectedVersion?: number;
  actualVersion?: number;
  failures?: Array<{ version: number; code: string; message: string }>;
  instanceOf?: string[];
}

type Result = { ok: true; value: any } | { ok: false; error: SerializedError };

/** A harness page: `call` runs an op of support/web/ops.js in the page or its worker. */
export class Harness {
  constructor(readonly page: Page, readonly mode: Mode) {}

  private async raw(name: string, args: unknown[]): Promise<Result> {
    return this.page.evaluate(([n, a]) => (window as any).ks.call(n, ...(a as unknown[])), [name, args] as const);
  }

  /** Reloads the page (the worker, if any, starts anew) and loads the package again. */
  async reload(): Promise<void> {
    await this.page.reload();
    await Harness.ready(this);
  }

  /** @internal Waits for the harness script, loads the package, checks the realm. */
  static async ready(h: Harness): Promise<Harness> {
    await expect(h.page.locator('body')).toHaveAttribute('data-ready', 'true');
    await h.call('init', PACKAGE_URL);
    expect(await h.call('realm')).toBe(h.mode);
    return h;
  }

  /** Runs op `name`; throws if it failed. */
  async call<T = any>(name: string, ...args: unknown[]): Promise<T> {
    const r = await this.raw(name, args);
    if (!r.ok) throw new Error(`${name} failed in ${this.mode} mode: ${r.error.name} (${r.error.code}): ${r.error.message}`);
    return r.value as T;
  }

  /** Runs op `name`, which must fail; returns its error. */
  async fail(name: string, ...args: unknown[]): Promise<SerializedError> {
    const r = await this.raw(name, args);
    if (r.ok) throw new Error(`${name} succeeded in ${this.mode} mode but should have failed: ${JSON.stringify(r.value)}`);
    return r.error;
  }
}

interface Fixtures {
  profile: string;
  launch: (dir: string) => Promise<BrowserContext>;
  harness: (context: BrowserContext, mode?: Mode) => Promise<Harness>;
}

export const test = base.extend<Fixtures, { server: { url: string; origin: string; close(): Promise<void> } }>({
  server: [
    async ({}, use) => {
      // An ES module (shared with scripts): imported dynamically, since Playwright
      // compiles these specs to CommonJS.
      const { startServer } = await import('../server.mjs');
      const server = await startServer({ port: 0, root: REPO_ROOT });
      await use(server);
      await server.close();
    },
    { scope: 'worker' },
  ],

  profile: async ({}, use) => {
    const dir = await mkdtemp(join(tmpdir(), 'keepstate-e2e-'));
    await use(dir);
    await rm(dir, { recursive: true, force: true });
  },

  launch: async ({ server }, use, testInfo) => {
    const open = new Set<BrowserContext>();
    await use(async (dir) => {
      const context = await chromium.launchPersistentContext(dir, {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        baseURL: server.origin,
        viewport: { width: 1000, height: 700 },
      });
      open.add(context);
      context.on('close', () => open.delete(context));
      return context;
    });
    let shot = 0;
    for (const context of open) {
      for (const page of context.pages()) {
        if (page.url() === 'about:blank') continue;
        const path = testInfo.outputPath(`page-${++shot}.png`);
        await page.screenshot({ path, fullPage: true }).catch(() => undefined);
        await testInfo.attach(`page ${shot}: ${page.url()}`, { path, contentType: 'image/png' }).catch(() => undefined);
      }
      await context.close().catch(() => undefined);
    }
  },

  harness: async ({}, use) => {
    await use(async (context, mode = 'page') => {
      const page = context.pages().find((p) => p.url() === 'about:blank') ?? (await context.newPage());
      await page.goto(`${HARNESS_URL}?mode=${mode}`);
      return Harness.ready(new Harness(page, mode));
    });
  },
});

export { expect };
