// Playwright suite for keepstate in Debian's Chromium (never `playwright
// install`). Stores are opened in persistent contexts on temp profiles (see
// support/fixtures.ts) so that IndexedDB lives on disk as it does for users.
// Run: `make test-e2e` (builds the package first) or
// `npx playwright test -c e2e/playwright.config.ts`.
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: './specs',
  outputDir: './test-results',
  // Two cores are shared with the C++ builds: one browser at a time.
  workers: 1,
  fullyParallel: false,
  forbidOnly: true,
  retries: 0,
  timeout: 60_000,
  globalTimeout: 10 * 60_000,
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
});
