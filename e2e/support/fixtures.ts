// Fixtures of the keepstate suite:
//  - `engine`: the browser engine of the project (playwright.config.ts):
//    'chromium' (Playwright), 'firefox' (puppeteer-core over WebDriver BiDi)
//    or 'webkit' (WebKitWebDriver); see support/session.ts.
//  - `server`: the static server (worker-scoped), serving the repository root.
//  - `profile`: a fresh temp profile directory per test, removed afterwards.
//  - `openBrowser(dir)`: the project's browser on profile `dir`, as a Session
//    (every engine); specs that run in every engine use this.
//  - `launch(dir)`: Debian's Chromium as a Playwright persistent context on
//    `dir` (IndexedDB on disk), for Chromium-only specs.
//  - `harness(browser, mode)`: a tab of support/web/harness.html with the
//    package loaded in `mode` ('page' or 'worker'), driven through `call`.
// Every browser still open at the end is closed; before that, a screenshot of
// every open tab is attached to the report and saved in the test's output
// folder (e2e/test-results/).
import { test as base, chromium, expect, type BrowserContext, type Page, type TestInfo } from '@playwright/test';
import { FirefoxSession } from './firefox';
import { PlaywrightSession, PlaywrightTab, type Engine, type Session, type Tab } from './session';
import { WebKitDriver, WebKitSession } from './webkit';
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

/** A harness tab: `call` runs an op of support/web/ops.js in the page or its worker. */
export class Harness {
  readonly tab: Tab;

  /** On a Tab of any engine, or a Playwright page (Chromium-only specs). */
  constructor(tab: Tab | Page, readonly mode: Mode) {
    this.tab = 'locator' in tab ? new PlaywrightTab(tab) : tab;
  }

  /** The Playwright page (Chromium only). */
  get page(): Page {
    if (this.tab.page === undefined) throw new Error('Harness.page is a Playwright page: Chromium only (use Harness.tab)');
    return this.tab.page;
  }

  private async raw(name: string, args: unknown[]): Promise<Result> {
    return this.tab.evaluate(([n, a]) => (window as any).ks.call(n, ...(a as unknown[])), [name, args] as [string, unknown[]]);
  }

  /** Reloads the page (the worker, if any, starts anew) and loads the package again. */
  async reload(): Promise<void> {
    await this.tab.reload();
    await Harness.ready(this);
  }

  /** Closes the tab. */
  close(): Promise<void> {
    return this.tab.close();
  }

  /** @internal Waits for the harness script, loads the package, checks the realm. */
  static async ready(h: Harness): Promise<Harness> {
    await expect
      .poll(() => h.tab.evaluate(() => document.body?.dataset.ready ?? null, null), { message: 'harness.js ran (body[data-ready])' })
      .toBe('true');
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
  /** A second on-disk profile (another device), removed after the browsers close, as `profile`. */
  profileB: string;
  openBrowser: (dir: string) => Promise<Session>;
  launch: (dir: string) => Promise<BrowserContext>;
  harness: (browser: Session | BrowserContext, mode?: Mode) => Promise<Harness>;
}

interface WorkerFixtures {
  engine: Engine;
  server: { url: string; origin: string; close(): Promise<void> };
  /** WebKitWebDriver under xvfb-run, started on first use by a WebKit project's worker. */
  webkitDriver: () => Promise<WebKitDriver>;
}

/** Screenshots of every tab of `sessions` still open (attached to the report), then closes them. */
async function closeAll(sessions: Iterable<Session>, testInfo: TestInfo): Promise<void> {
  let shot = 0;
  for (const session of sessions) {
    for (const tab of session.tabs()) {
      const url = await tab.url().catch(() => 'about:blank');
      if (url === 'about:blank') continue;
      const path = testInfo.outputPath(`page-${++shot}.png`);
      await tab.screenshot(path).catch(() => undefined);
      await testInfo.attach(`page ${shot}: ${url}`, { path, contentType: 'image/png' }).catch(() => undefined);
    }
    await session.close().catch(() => undefined);
  }
}

export const test = base.extend<Fixtures, WorkerFixtures>({
  engine: ['chromium', { option: true, scope: 'worker' }],

  webkitDriver: [
    async ({}, use) => {
      let driver: Promise<WebKitDriver> | undefined;
      await use(() => (driver ??= WebKitDriver.start()));
      if (driver !== undefined) await (await driver).stop();
    },
    { scope: 'worker' },
  ],

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

  profileB: async ({}, use) => {
    const dir = await mkdtemp(join(tmpdir(), 'keepstate-e2e-b-'));
    await use(dir);
    await rm(dir, { recursive: true, force: true });
  },

  // `profile` and `profileB` are dependencies of the browser fixtures only for their order: a
  // browser is closed (and, for Firefox, has exited) before the profile it wrote is removed.
  // Without it a test that names `profile` after `launch` had its profile removed under a
  // running browser (ENOTEMPTY from rm, seen with Chromium's cache and Firefox's permission
  // store; and with a second profile removed in an afterEach hook, which runs before fixtures
  // are torn down).
  openBrowser: async ({ engine, server, webkitDriver, profile: _profile, profileB: _profileB }, use, testInfo) => {
    const open = new Set<Session>();
    await use(async (dir) => {
      let session: Session;
      if (engine === 'firefox') session = await FirefoxSession.launch(dir);
      else if (engine === 'webkit') session = await WebKitSession.launch(await webkitDriver()); // no profile: see webkit.ts
      else session = new PlaywrightSession(await launchChromium(dir, server.origin));
      open.add(session);
      const close = session.close.bind(session);
      session.close = () => (open.delete(session), close());
      return session;
    });
    await closeAll(open, testInfo);
  },

  launch: async ({ engine, server, profile: _profile, profileB: _profileB }, use, testInfo) => {
    const open = new Set<BrowserContext>();
    await use(async (dir) => {
      if (engine !== 'chromium') throw new Error(`launch() is Playwright's Chromium; in the ${engine} project use openBrowser()`);
      const context = await launchChromium(dir, server.origin);
      open.add(context);
      context.on('close', () => open.delete(context));
      return context;
    });
    await closeAll([...open].map((c) => new PlaywrightSession(c)), testInfo);
  },

  harness: async ({ server }, use) => {
    await use(async (browser, mode = 'page') => {
      const session = 'newTab' in browser ? browser : new PlaywrightSession(browser);
      const tab = await session.newTab();
      await tab.goto(`${server.origin}${HARNESS_URL}?mode=${mode}`);
      return Harness.ready(new Harness(tab, mode));
    });
  },
});

function launchChromium(dir: string, origin: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    baseURL: origin,
    viewport: { width: 1000, height: 700 },
  });
}

export { expect };
