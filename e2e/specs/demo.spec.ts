// The demo page (e2e/app/, the ledger module through the package): a short
// run of what `make demo` does — accounts, a burst of transfers as C++
// fibers, commit, audit, reload — checked through the page's own display,
// with a screenshot of the page attached as a test artifact.
import { test, expect } from '../support/fixtures';
import type { BrowserContext } from '@playwright/test';

/** The demo's own server (the page at /, the package under /keepstate/) for `fn`; closed after it. */
async function withDemoServer(fn: (url: string) => Promise<void>): Promise<void> {
  const { startServer } = await import('../server.mjs');
  const server = await startServer({ port: 0 });
  try {
    await fn(server.url);
  } finally {
    await server.close();
  }
}

/** A tab of the demo page at `url`, once it is ready, and the errors it throws. */
async function openDemo(context: BrowserContext, url: string) {
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  await page.waitForFunction(() => document.documentElement.dataset.ready === 'true');
  return { page, errors };
}

test('the demo page runs transfers, commits, and shows the restored state after a reload', async ({ launch, profile }, testInfo) => {
  await withDemoServer(async (url) => {
    const { page, errors } = await openDemo(await launch(profile), url);

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

    // The open's progress: bytes of the restore read, of a total known from the manifests on,
    // ending full; the page's bar shows it.
    const opened: Array<{ done: number; total?: number }> = await page.evaluate(() => (window as any).demo.openProgress);
    expect(opened.length).toBeGreaterThanOrEqual(3);
    expect(opened[0]).toEqual({ done: 0 });
    const end = opened.at(-1)!;
    expect(end.total).toBe(end.done);
    expect(end.done).toBeGreaterThan(100_000);
    await expect(page.locator('#progress')).toHaveJSProperty('value', 1);
    await expect(page.locator('#progress-label')).toHaveText('opening');
    // An export reports bytes written of the file's size, and its link offers the file.
    const exported = await page.evaluate(() => (window as any).demo.export());
    const reports: Array<{ done: number; total: number }> = await page.evaluate(() => (window as any).demo.exportProgress);
    expect(reports[0]).toEqual({ done: 0, total: exported.bytes });
    expect(reports.at(-1)).toEqual({ done: exported.bytes, total: exported.bytes });
    await expect(page.locator('#progress-label')).toHaveText('export');
    await expect(page.locator('#export-link')).toContainText(`demo-ledger-v${exported.version}.ksnap`);
    expect(errors).toEqual([]);

    await testInfo.attach('demo-page', { body: await page.screenshot({ fullPage: true }), contentType: 'image/png' });
  });
});

test('the demo page audits on the pool while a burst runs: the button stays enabled, the answer and the pool are shown', async ({ launch, profile }) => {
  await withDemoServer(async (url) => {
    const { page, errors } = await openDemo(await launch(profile), `${url}?store=pool-demo`);
    await page.evaluate(() => (window as any).demo.createAccounts(50_000));
    const { version } = await page.evaluate(() => (window as any).demo.commit());
    // A long burst from the page; the button is clicked while it runs.
    await page.evaluate(() => {
      (window as any).burst = (window as any).demo.transfers(3_000_000, { batch: 25_000 }).finally(() => ((window as any).burstDone = true));
    });
    await expect(page.locator('#burst')).toBeDisabled();
    await expect(page.locator('#pool-audit-btn')).toBeEnabled();
    await page.locator('#pool-audit-btn').click();
    await expect(page.locator('#pool-audit')).toHaveText(new RegExp(`^ok at v${version} \\(\\d+ ms, waited \\d+ ms\\)$`), { timeout: 30_000 });
    expect(await page.evaluate(() => (window as any).burstDone ?? false)).toBe(false); // answered while the burst ran
    await expect(page.locator('#pool')).toHaveText(/^1 replica · [01] busy · \d+ queued$/);
    await expect(page.locator('#pool-wait')).toHaveText(/^\d+ ms \/ \d+ ms$/);
    const run = await page.evaluate(() => (window as any).burst);
    expect(run.applied + run.rejected).toBe(3_000_000);
    const report = await page.evaluate(() => (window as any).demo.poolAudit());
    expect(report).toMatchObject({ ok: true, accounts: 50_000, total: 50_000_000, version });
    expect(errors).toEqual([]);
  });
});

test('the demo page in two tabs: each tab\'s transfers and the other\'s appear live in both, and the totals agree', async ({ launch, profile }) => {
  await withDemoServer(async (url) => {
    const context = await launch(profile);
    const open = async () => (await openDemo(context, `${url}?store=two-tabs&autosave=50`)).page;
    const a = await open();
    await a.evaluate(() => (window as any).demo.createAccounts(1_000));
    await a.evaluate(() => (window as any).demo.commit());
    const b = await open();
    expect(await b.evaluate(() => (window as any).demo.totals().accounts)).toBe(1_000);
    // Both tabs transfer at once, with autosave: commits race and rebase.
    const runs = await Promise.all([a, b].map((p) => p.evaluate(() => (window as any).demo.transfers(20_000, { batch: 2_000 }))));
    for (const r of runs) expect(r.applied + r.rejected).toBe(20_000);
    for (const p of [a, b]) await p.evaluate(() => (window as any).demo.commit());
    // Both converge on the same version and totals without a reload, and show them.
    const settled = async (p: typeof a) => p.evaluate(() => ({ version: (window as any).demo.version, dirty: (window as any).demo.dirty, totals: (window as any).demo.totals() }));
    await expect.poll(async () => {
      const [x, y] = await Promise.all([settled(a), settled(b)]);
      return x.version === y.version && !x.dirty && !y.dirty && JSON.stringify(x.totals) === JSON.stringify(y.totals);
    }, { timeout: 15_000 }).toBe(true);
    const t = (await settled(a)).totals;
    expect(t.transfers + t.rejected).toBe(40_000);
    for (const p of [a, b]) {
      expect((await p.evaluate(() => (window as any).demo.audit())).ok).toBe(true);
      expect(await p.evaluate(() => (window as any).demo.remoteUpdates)).toBeGreaterThan(0);
      await expect(p.locator('#transfers')).toHaveText(t.transfers.toLocaleString('en-US'));
    }
  });
});

test('the demo page charts transfers per second and commit latency live, during a burst that commits as it runs', async ({ launch, profile }, testInfo) => {
  await withDemoServer(async (url) => {
    const { page, errors } = await openDemo(await launch(profile), url);
    await page.evaluate(() => (window as any).demo.createAccounts(2_000));
    // The chart's line while the burst is still running: the page redraws it as calls return.
    const burst = page.evaluate(() => (window as any).demo.transfers(200_000, { batch: 5_000, commitEvery: 10 }));
    await page.waitForFunction(() => {
      const line = document.querySelector('#chart polyline');
      return line !== null && Number(line.getAttribute('data-samples')) >= 5 && (window as any).demo.chart.rates.length < 40;
    });
    const run = await burst;
    expect(run.applied + run.rejected).toBe(200_000);
    await page.evaluate(() => (window as any).demo.commit());
    const chart = await page.evaluate(() => ({
      rates: (window as any).demo.chart.rates as Array<[number, number]>,
      commits: (window as any).demo.chart.commits as Array<[number, number]>,
    }));
    // One sample per call, each a positive rate; one dot per commit (3 during the burst, 1 after).
    expect(chart.rates).toHaveLength(40);
    expect(chart.rates.every(([, v]) => v > 0)).toBe(true);
    expect(chart.commits.length).toBeGreaterThanOrEqual(4);
    await expect(page.locator('#chart polyline')).toHaveAttribute('data-samples', '40');
    await expect(page.locator('#chart circle')).toHaveCount(chart.commits.length);
    expect(errors).toEqual([]);
    await testInfo.attach('demo-chart', { body: await page.locator('.chart').screenshot(), contentType: 'image/png' });
  });
});
