// The pool of read replicas (issue 25): Workers each holding a module
// instance and a read-only replica of a C++ ledger store (examples/ledger),
// following the page's commits, answering C++ and JS queries. Runs in every
// engine the harness drives (support/web/pool.js over a Session).
import { test, expect } from '../support/fixtures';

const POOL_URL = '/e2e/support/web/pool.html';

async function poolPage(openBrowser: (dir: string) => Promise<any>, profile: string, origin: string) {
  const session = await openBrowser(profile);
  const tab = await session.newTab();
  await tab.goto(`${origin}${POOL_URL}`);
  await expect.poll(() => tab.evaluate(() => document.body?.dataset.ready ?? null, null), { timeout: 20_000 }).toBe('true');
  return <T = any>(name: string, ...args: unknown[]): Promise<T> =>
    tab.evaluate(([n, a]: [string, unknown[]]) => (window as any).poolTest[n](...a), [name, args] as [string, unknown[]]);
}

test('a query on the pool returns what the writer reads at the same version (ledger audit and balances)', async ({ openBrowser, profile, server }) => {
  const call = await poolPage(openBrowser, profile, server.origin);
  await call('open', 'same', 20_000, { max: 2 });
  for (let round = 0; round < 3; ++round) {
    const version = await call('transfers', 20_000, round + 1);
    const r = await call('compare', [0, 1, 777, 19_999]);
    expect(r.version).toBe(version);
    expect(r.pool.versions.every((v: number) => v === version)).toBe(true);
    expect(r.pool.audit).toEqual(r.writer.audit);
    expect(r.pool.audit.ok).toBe(true);
    expect(r.pool.balances).toEqual(r.writer.balances);
    expect(r.pool.sums).toEqual({ total: 20_000 * 1000, accounts: 20_000, version });
  }
  const figures = await call('figures');
  expect(figures.coldStartMs).toBeGreaterThan(0);
  expect(figures.followMs).toBeGreaterThan(0);
  test.info().annotations.push({ type: 'figures', description: JSON.stringify(figures) });
  console.log(`pool figures (20,000 accounts): ${JSON.stringify(figures)}`);
});

test('minVersion is honoured after a commit; uncommitted writes are not visible', async ({ openBrowser, profile, server }) => {
  const call = await poolPage(openBrowser, profile, server.origin);
  await call('open', 'min', 100, { min: 1 });
  const r = await call('minVersion');
  expect(r.early).toMatchObject({ version: r.v, result: { has: false, json: null } });
  expect(r.version).toBe(r.v + 1);
  expect(r.late).toMatchObject({ version: r.v + 1, result: { text: 'committed later', has: true, json: null } });
});

test('the pool grows under a burst of slow queries and shrinks after idle', async ({ openBrowser, profile, server }) => {
  const call = await poolPage(openBrowser, profile, server.origin);
  await call('open', 'elastic', 10, { max: 3, windowMs: 200, idleMs: 500 });
  const r = await call('burst', 16, 60);
  expect(r.answers.every((v: number) => v === r.answers[0])).toBe(true);
  expect(r.steps[0]).toMatchObject({ direction: 'up', reason: 'first query' });
  const ups = r.steps.filter((s: any) => s.direction === 'up' && /^queue wait \d+ ms > 80 ms$/.test(s.reason));
  expect(ups.length).toBeGreaterThanOrEqual(1);
  expect(r.peak).toBeGreaterThanOrEqual(2);
  expect(r.peak).toBeLessThanOrEqual(3);
  const downs = r.steps.filter((s: any) => s.direction === 'down');
  expect(downs.length).toBe(r.peak);
  for (const d of downs) expect(d.reason).toMatch(/^idle \d+ ms >= 500 ms$/);
  expect(r.after).toMatchObject({ replicas: 0, busy: 0, queued: 0, answered: 16, failed: 0 });
});

test('a replica terminated mid-query does not lose or falsify the answer', async ({ openBrowser, profile, server }) => {
  const call = await poolPage(openBrowser, profile, server.origin);
  await call('open', 'kill', 100_000, { max: 1 });
  await call('transfers', 50_000, 7);
  const r = await call('killMidQuery');
  expect(r.got.version).toBe(r.version);
  expect(r.got.audit).toEqual(r.expected);
  expect(r.stats.rerun).toBe(1);
  expect(r.stats.list.map((s: any) => s.id)).not.toContain(r.victim);
});

test('writes and commits go on while the pool works; closing the store closes the pool', async ({ openBrowser, profile, server }) => {
  const call = await poolPage(openBrowser, profile, server.origin);
  const { version } = await call('open', 'busy', 50_000, { max: 2 });
  const r = await call('writeWhileQuerying', 5);
  expect(r.versions).toEqual([version + 1, version + 2, version + 3, version + 4, version + 5]);
  for (const [i, a] of r.answers.entries()) {
    expect(a.ok).toBe(true);
    expect(a.version).toBeGreaterThanOrEqual(version + i); // at least what was committed when it was called
  }
  expect(r.writerAudit.ok).toBe(true);
  const closed = await call('closeStore');
  expect(closed.queued).toMatchObject({ name: 'ClosedError', code: 'closed' });
  expect(closed.after).toMatchObject({ name: 'ClosedError', code: 'closed' });
  expect(closed.replicas).toBe(0);
});
