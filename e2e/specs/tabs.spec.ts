// Several tabs of one origin writing one store at once (docs/api.md, "Tabs"):
// rebase by default, following other tabs' commits, watch — in a page and in
// a dedicated Worker, on a persistent Chromium profile (Web Locks,
// BroadcastChannel and IndexedDB as a user has them).
import { test, expect, MODES, LEDGER_URL } from '../support/fixtures';

for (const mode of MODES) {
  test.describe(`${mode} mode`, () => {
    test('three tabs with autosave write one counter and their own keys at once: nothing lost, all converge without reload', async ({ launch, harness, profile }) => {
      const context = await launch(profile);
      const tabs = [];
      for (let i = 0; i < 3; ++i) tabs.push(await harness(context, mode));
      for (const t of tabs) await t.call('open', 'tabs', { autosave: 30 });
      const N = 200;
      await Promise.all(tabs.map((t, i) => t.call('increments', 'tabs', i, N)));
      for (const t of tabs) expect((await t.call('settle', 'tabs')).dirty).toBe(false);

      const check = await harness(context, mode);
      const stored = await check.call('open', 'tabs', { autosave: false, follow: false });
      expect(await check.call('getJSON', 'tabs', 'counter')).toBe(3 * N);
      expect((await check.call('scan', 'tabs', { prefix: 'own/' })).length).toBe(3 * N);
      // Every tab reaches the stored version by following, without reload().
      for (const t of tabs) {
        await expect.poll(() => t.call('status', 'tabs'), { timeout: 10_000 }).toEqual({ version: stored.version, dirty: false });
        expect(await t.call('getJSON', 'tabs', 'counter')).toBe(3 * N);
        expect((await t.call('events', 'tabs')).filter((e: { type: string }) => e.type === 'conflict')).toEqual([]);
      }
      const rebases = (await Promise.all(tabs.map((t) => t.call('events', 'tabs'))))
        .flat()
        .filter((e: { type: string }) => e.type === 'rebase');
      expect(rebases.length).toBeGreaterThan(0); // the test did make the tabs contend
      for (const r of rebases) expect(r.dropped).toEqual([]);
    });

    test('a transaction that fails on replay is dropped and reported; the rest of the pending work commits', async ({ launch, harness, profile }) => {
      const context = await launch(profile);
      const a = await harness(context, mode);
      const b = await harness(context, mode);
      await a.call('open', 'drop', { autosave: false, follow: false });
      await b.call('open', 'drop', { autosave: false, follow: false });
      await b.call('guardedWrite', 'drop', 'flag', 'guarded');
      await b.call('put', 'drop', 'kept', 'yes');
      await a.call('put', 'drop', 'flag', 'set');
      expect((await a.call('commit', 'drop')).version).toBe(1);
      expect((await b.call('commit', 'drop')).version).toBe(2);
      const [rebase] = (await b.call('events', 'drop')).filter((e: { type: string }) => e.type === 'rebase');
      expect(rebase).toMatchObject({ fromVersion: 0, ontoVersion: 1, replayed: 1 });
      expect(rebase.dropped).toHaveLength(1);
      expect(rebase.dropped[0]).toMatchObject({ kind: 'transaction', error: { message: 'flag is set' } });
      expect(await b.call('dump', 'drop')).toEqual({ flag: 'set', kept: 'yes' });
    });

    test("watch: another tab's commit reaches a listener as 'remote' changes; pending work replayed on it as 'rebase'", async ({ launch, harness, profile }) => {
      const context = await launch(profile);
      const a = await harness(context, mode);
      const b = await harness(context, mode);
      await a.call('open', 'watched', { autosave: false });
      await b.call('open', 'watched', { autosave: false });
      await b.call('watch', 'watched', { prefix: 'item/' });
      await a.call('putAll', 'watched', { 'item/1': 'one', 'item/2': 'two', other: 'x' });
      await a.call('commit', 'watched');
      await expect.poll(() => b.call('watched', 'watched')).toHaveLength(1);
      expect((await b.call('watched', 'watched'))[0]).toMatchObject({ source: 'remote', version: 1, changes: [['item/1', 'one'], ['item/2', 'two']] });

      await b.call('put', 'watched', 'item/3', 'mine');
      await a.call('delete', 'watched', 'item/1');
      await a.call('commit', 'watched');
      await expect.poll(async () => (await b.call('watched', 'watched')).length).toBe(3);
      const [, local, rebase] = await b.call('watched', 'watched');
      expect(local).toMatchObject({ source: 'local', changes: [['item/3', 'mine']] });
      expect(rebase).toMatchObject({ source: 'rebase', version: 2, changes: [['item/1', null]] });
      expect(await b.call('status', 'watched')).toEqual({ version: 2, dirty: true });
      expect((await b.call('commit', 'watched')).version).toBe(3);
    });
  });
}

// Page mode: the C++ ledger's client imports 'flatbuffers' through an import
// map, which module workers do not have (as in ledger.spec.ts).
test("a C++ ledger call rebased onto another tab's transfers runs again and keeps the audit", async ({ launch, harness, profile }) => {
  const context = await launch(profile);
  const a = await harness(context, 'page');
  const b = await harness(context, 'page');
  for (const t of [a, b]) await t.call('initLedger', LEDGER_URL);
  await a.call('open', 'ledger', { module: 'ledger', autosave: false, follow: false });
  await a.call('cppCreate', 'ledger', 50, 1000, 7);
  await a.call('commit', 'ledger');
  await b.call('open', 'ledger', { module: 'ledger', autosave: false, follow: false });
  // B's transfers run on version 1; A's land first.
  await b.call('cppTransfers', 'ledger', 300);
  await a.call('cppTransfers', 'ledger', 500);
  expect((await a.call('commit', 'ledger')).version).toBe(2);
  expect((await b.call('commit', 'ledger')).version).toBe(3);
  const [rebase] = (await b.call('events', 'ledger')).filter((e: { type: string }) => e.type === 'rebase');
  expect(rebase).toMatchObject({ fromVersion: 1, ontoVersion: 2, dropped: [] });
  const audit = await b.call('cppAudit', 'ledger');
  expect(audit.ok).toBe(true);
  expect(audit.transfers + audit.rejected).toBe(800); // both tabs' transfers, none lost or doubled
  const c = await harness(context, 'page');
  await c.call('initLedger', LEDGER_URL);
  await c.call('open', 'ledger', { module: 'ledger', autosave: false });
  expect(await c.call('cppAudit', 'ledger')).toEqual(audit);
});

test('leaving a page: hidden, the pending work is committed; closed, it is stashed and written at the next open (or dropped if another tab committed first)', async ({ launch, harness, profile }) => {
  const context = await launch(profile);
  const a = await harness(context, 'page');
  await a.call('open', 'leaving', { autosave: 60_000 });
  await a.call('put', 'leaving', 'hidden', 'saved');
  // The page is hidden (as when the user switches tabs): the commit starts at once, not in 60 s.
  await a.page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  expect(await a.call('waitForEvent', 'leaving', 'commit', 5000)).toMatchObject({ version: 1 });
  await a.page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'visible' });
  });
  // The tab is closed within the autosave delay: no later task could commit, so the page
  // stashed its commit, and the next open writes it.
  await a.call('put', 'leaving', 'closed', 'saved too');
  await a.page.close({ runBeforeUnload: true });
  const b = await harness(context, 'page');
  expect(await b.call('open', 'leaving', { autosave: false })).toEqual({ version: 2, dirty: false });
  expect(await b.call('dump', 'leaving')).toEqual({ hidden: 'saved', closed: 'saved too' });
  expect(await b.call('waitForEvent', 'leaving', 'stashed-commit')).toMatchObject({ outcome: 'committed', version: 2 });
  await b.call('close', 'leaving');

  // Closed while another tab committed on the same version: the stash cannot be written, and
  // the next open says so instead of losing it silently.
  const c = await harness(context, 'page');
  const d = await harness(context, 'page');
  await c.call('open', 'leaving', { autosave: 60_000, follow: false });
  await d.call('open', 'leaving', { autosave: false, follow: false });
  await c.call('put', 'leaving', 'c', 'stashed');
  await d.call('put', 'leaving', 'd', 'committed');
  expect((await d.call('commit', 'leaving')).version).toBe(3);
  await c.page.close({ runBeforeUnload: true });
  const e = await harness(context, 'page');
  expect(await e.call('open', 'leaving', { autosave: false })).toEqual({ version: 3, dirty: false });
  expect(await e.call('has', 'leaving', 'c')).toBe(false);
  const dropped = await e.call('waitForEvent', 'leaving', 'stashed-commit');
  expect(dropped).toMatchObject({ outcome: 'dropped', version: 2, error: { code: 'conflict' } });
  // The stash is gone: the next open writes nothing and reports nothing.
  await e.call('close', 'leaving');
  const f = await harness(context, 'page');
  await f.call('open', 'leaving', { autosave: false });
  await f.page.waitForTimeout(50);
  expect((await f.call('events', 'leaving')).filter((x: { type: string }) => x.type === 'stashed-commit')).toEqual([]);
});
