// What the bench/browser drivers (run.mjs, tabs.mjs, files.mjs, seat.mjs,
// peers.mjs) share: the browser they run in (--browser chromium | firefox),
// command-line options, medians, the benchmark page.
//
// Chromium is Debian's, driven by Playwright (playwright-core); Firefox is
// Debian's firefox-esr, driven by puppeteer-core over WebDriver BiDi (as the
// e2e suite does, docs/browsers.md). WebKitGTK is not offered: its automation
// session keeps website data in memory only, so a figure of its IndexedDB
// would not be one of storage.
import os from 'node:os';
import { chromium } from 'playwright-core';

/** Debian's Chromium, headless, as every Chromium figure of bench/browser is taken ($CHROMIUM overrides). */
export const LAUNCH = {
  headless: true,
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
};
const FIREFOX = process.env.FIREFOX ?? '/usr/bin/firefox-esr';

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// The pages' percentile, for the drivers too (one definition).
export { percentile } from './pages/common.mjs';

/** Milliseconds with three significant digits or so: 1234, 56.7, 8.90. */
export const formatMs = (ms) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));

/** The machine's load averages (1, 5, 15 min), as printed beside every table. */
export const loadAverage = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');

/** Progress on stderr, with the time of day. */
export const log = (...a) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...a);

/** The value after `name` on the command line, or undefined. */
export function option(name, argv = process.argv.slice(2)) {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** The browser of this run: --browser chromium (default) or firefox. */
export function browserOption(argv = process.argv.slice(2)) {
  const name = option('--browser', argv) ?? 'chromium';
  if (name !== 'chromium' && name !== 'firefox') throw new Error(`--browser: chromium or firefox, not "${name}"`);
  return name;
}

/**
 * The browser `name` on the on-disk profile `profile`, as one interface:
 * { name, version, newPage(), close() }; a page has goto, reload, evaluate(fn, arg),
 * waitForFunction(fn, arg, { timeout }) and on('pageerror', fn) as Playwright's.
 */
export async function openBrowser(name, profile) {
  if (name === 'chromium') {
    const context = await chromium.launchPersistentContext(profile, LAUNCH);
    let blank = context.pages()[0]; // the page a persistent context opens with, used first
    return {
      name,
      version: `Chromium ${context.browser()?.version() ?? ''}`.trim(),
      async newPage() {
        const page = blank ?? (await context.newPage());
        blank = undefined;
        return page;
      },
      close: () => context.close(),
    };
  }
  process.env.PUPPETEER_SKIP_DOWNLOAD ??= '1';
  const { default: puppeteer } = await import('puppeteer-core');
  const browser = await puppeteer.launch({ browser: 'firefox', executablePath: FIREFOX, headless: true, userDataDir: profile });
  const version = await browser.version();
  let first = true;
  return {
    name,
    version: version.startsWith('firefox') ? `Firefox ${version.split('/')[1] ?? ''}` : version,
    async newPage() {
      const pages = await browser.pages();
      const page = first && pages.length > 0 ? pages[0] : await browser.newPage();
      first = false;
      return {
        goto: (url) => page.goto(url),
        reload: () => page.reload(),
        evaluate: (fn, arg) => page.evaluate(fn, arg),
        waitForFunction: (fn, arg, options = {}) => page.waitForFunction(fn, { timeout: options.timeout ?? 30_000 }, arg),
        on: (event, fn) => {
          if (event === 'pageerror') page.on('pageerror', fn);
        },
      };
    },
    close: () => browser.close(),
  };
}

/**
 * Opens the benchmark page (pages/index.html, served at `url`) in a new page
 * of `browser` and waits until it is ready. Returns `run(contender, op, args)`,
 * which calls `window.bench.run` in the page (an error names the contender and
 * op), and `reload()`, which reloads the page and waits again.
 */
export async function openBenchPage(browser, url) {
  const page = await browser.newPage();
  const ready = () => page.waitForFunction(() => document.documentElement.dataset.ready === 'true', null, { timeout: 60_000 });
  await page.goto(url);
  await ready();
  const run = (contender, op, args) =>
    page.evaluate(([c, o, a]) => window.bench.run(c, o, a), [contender, op, args]).catch((e) => {
      throw new Error(`${contender}.${op}: ${e.message.split('\n')[0]}`);
    });
  const reload = async () => {
    await page.reload();
    await ready();
  };
  return { run, reload };
}
