// Playwright suite for keepstate in three browser engines, all from Debian
// (never `playwright install`): Chromium driven by Playwright; firefox-esr
// driven by puppeteer-core over WebDriver BiDi; WebKitGTK's MiniBrowser driven
// by WebKitWebDriver (support/session.ts is the seam). Stores are opened on
// temp profiles (see support/fixtures.ts) so that IndexedDB lives on disk as
// it does for users. The specs are the single source of the behaviours; a
// project runs the ones its browser can (reasons below, docs/browsers.md).
// Run: `make test-e2e` (builds the package first) or
// `npx playwright test -c e2e/playwright.config.ts [--project=firefox]`.
import { defineConfig } from '@playwright/test';
import type { Engine } from './support/session';

/**
 * Specs beyond Chromium: the shared behaviour spec and the snapshot-file spec
 * everywhere; the crash test in Firefox too. The others stay Chromium-only:
 *  - dataloss.spec.ts tears Chromium's LevelDB log (support/leveldb.ts): a
 *    Chromium storage format;
 *  - tabs, ledger, demo, package, bundlers and react drive Playwright pages
 *    directly (locators, clicks, beforeunload, console) and test the package's
 *    packaging and the demo, not engine behaviour: once is enough;
 *  - crash.spec.ts is not run in WebKitGTK: its storage does not outlive the
 *    browser (nothing to recover after a kill) and classic WebDriver reports
 *    no console messages (the test hears commits through the console).
 */
const FIREFOX_SPECS = ['modes.spec.ts', 'crash.spec.ts', 'snapshot.spec.ts', 'pool.spec.ts'];
const WEBKIT_SPECS = ['modes.spec.ts', 'snapshot.spec.ts', 'pool.spec.ts'];

export default defineConfig<{}, { engine: Engine }>({
  testDir: './specs',
  outputDir: './test-results',
  // Two cores are shared with the C++ builds: one browser at a time.
  workers: 1,
  fullyParallel: false,
  forbidOnly: true,
  retries: 0,
  timeout: 60_000,
  // Three projects, one browser at a time (chromium's specs, then firefox's, then webkit's).
  globalTimeout: 30 * 60_000,
  expect: { timeout: 10_000 },
  reporter: [['list'], ['html', { outputFolder: './playwright-report', open: 'never' }]],
  use: {
    // Only for the built-in browser fixture; the specs launch persistent
    // contexts with the same options (support/fixtures.ts).
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    },
    trace: 'retain-on-failure',
  },
  projects: [
    { name: 'chromium', use: { engine: 'chromium' satisfies Engine } },
    { name: 'firefox', testMatch: FIREFOX_SPECS, use: { engine: 'firefox' satisfies Engine } },
    { name: 'webkit', testMatch: WEBKIT_SPECS, use: { engine: 'webkit' satisfies Engine } },
  ],
});
