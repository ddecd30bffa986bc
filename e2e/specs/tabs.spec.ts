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
