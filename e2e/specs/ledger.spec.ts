// Corruption with the C++ ledger (examples/ledger, business logic in its own
// wasm module), the OPFS copy off (with it on, the copy repairs the damage:
// modes.spec.ts): a damaged pack of the newest version makes the next open fall
// back to the previous version, say so in a 'corruption' event naming the
// version, and the ledger's own C++ audit passes on what was restored.
// Page mode: the ledger's client imports 'flatbuffers' through an import map,
// which module workers do not have (the JS-ledger variant in modes.spec.ts
// covers the worker).
import { test, expect, LEDGER_URL } from '../support/fixtures';

test('corruption (C++ ledger): fallback to the previous version, event names the version, audit passes', async ({ launch, harness, profile }) => {
  const ks = await harness(await launch(profile), 'page');
  await ks.call('initLedger', LEDGER_URL);
  await ks.call('open', 'bank', { autosave: false, copy: false, module: 'ledger' });
  await ks.call('cppCreate', 'bank', 2000, 500, 11);
  expect((await ks.call('commit', 'bank')).version).toBe(1);
  await ks.call('cppTransfers', 'bank', 5000);
  expect((await ks.call('commit', 'bank')).version).toBe(2);
  const atTwo = await ks.call('cppAudit', 'bank');
  expect(atTwo).toMatchObject({ ok: true, total: 2000 * 500 });
  await ks.call('cppTransfers', 'bank', 5000);
  expect((await ks.call('commit', 'bank')).version).toBe(3);
  await ks.call('close', 'bank');

  const packs: string[] = await ks.call('idbKeys', 'bank', 'packs');
  const newest = packs.filter((k) => k.startsWith(`${(3).toString(16).padStart(16, '0')}-`));
  expect(newest.length).toBeGreaterThan(0);
  for (const key of newest) await ks.call('idbFlipBytes', 'bank', 'packs', key, [33, 4096 * 2 + 7]);

  expect(await ks.call('open', 'bank', { autosave: false, copy: false, module: 'ledger' })).toEqual({ version: 2, dirty: false });
  const event = await ks.call('waitForEvent', 'bank', 'corruption');
  expect(event).toMatchObject({ restoredVersion: 2, fresh: false, error: { code: 'corruption' } });
  expect(event.failures[0]).toMatchObject({ version: 3, code: 'corruption' });
  const audit = await ks.call('cppAudit', 'bank');
  expect(audit).toMatchObject({ ok: true, total: 2000 * 500, transfers: atTwo.transfers, rejected: atTwo.rejected });
  expect(await ks.call('cppReplay', 'bank')).toMatchObject({ ok: true, ops: 5000 });

  await ks.call('cppTransfers', 'bank', 100);
  expect((await ks.call('commit', 'bank')).version).toBe(4);
  expect(await ks.call('cppAudit', 'bank')).toMatchObject({ ok: true });
});
