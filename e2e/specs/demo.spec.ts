// The demo page (e2e/app/, the ledger module through the package): a short
// run of what `make demo` does — accounts, a burst of transfers as C++
// fibers, commit, audit, reload — checked through the page's own display,
// with a screenshot of the page attached as a test artifact.
import { test, expect } from '../support/fixtures';

test('the demo page runs transfers, commits, and shows the restored state after a reload', async ({ launch, profile }, testInfo) => {
  // The demo's own routes: the page at /, the package under /keepstate/.
  const { startServer } = await import('../server.mjs');
  const server = await startServer({ port: 0 });
  try {
    const context = await launch(profile);
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(server.url);
    await page.waitForFunction(() => document.documentElement.dataset.ready === 'true');

    await page.evaluate(() => (window as any).demo.createAccounts(2_000));
    const run = await page.evaluate(() => (window as any).demo.transfers(20_000, { batch: 5_000 }));
    expect(run.applied + run.rejected).toBe(20_000);
    const commit = await page.evaluate(() => (window as any).demo.commit());
    expect(commit.version).toBe(1);
    const audit = await page.evaluate(() => (window as any).demo.audit());
    expect(audit.ok).toBe(true);
    await expect(page.locator('#transfers')).toHaveText(/\d/);

    // A reload restores version 1 with the same totals, and the page says so.
    const before = await page.evaluate(() => (window as any).demo.totals());
    await page.reload();
    await page.waitForFunction(() => document.documentElement.dataset.ready === 'true');
    expect(await page.evaluate(() => (window as any).demo.version)).toBe(1);
    expect(await page.evaluate(() => (window as any).demo.totals())).toEqual(before);
    expect((await page.evaluate(() => (window as any).demo.audit())).ok).toBe(true);
    expect(errors).toEqual([]);

    await testInfo.attach('demo-page', { body: await page.screenshot({ fullPage: true }), contentType: 'image/png' });
  } finally {
    await server.close();
  }
});
