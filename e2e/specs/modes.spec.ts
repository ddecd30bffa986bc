// Behaviours that must hold in every mode and every browser engine: the
// package used from a page and from a dedicated Worker, in Chromium, Firefox
// and WebKitGTK (the projects of playwright.config.ts). Each test runs once
// per mode, against stores on a persistent profile (IndexedDB on disk), except
// in WebKitGTK, whose automation session keeps website data in memory.
// A test that cannot run in an engine says why (test.skip with the reason;
// docs/browsers.md lists them).
import { test, expect, MODES } from '../support/fixtures';

const NO_OPFS = 'WebKitGTK has no OPFS (navigator.storage is undefined): no copy, no marker; "lossProtection" shows the degraded mode';

for (const mode of MODES) {
  test.describe(`${mode} mode`, () => {
    test('basic operations: reads, writes, scans, transactions, typed errors', async ({ openBrowser, harness, profile }) => {
      const ks = await harness(await openBrowser(profile), mode);
      expect(await ks.call('open', 'basic', { autosave: false })).toEqual({ version: 0, dirty: false });

      await ks.call('putAll', 'basic', { 'b:2': 'two', 'b:1': 'one', 'b:3': 'three', 'a:1': 'other', 'c:1': 'last' });
      await ks.call('putJSON', 'basic', 'json', { n: 1, list: [1, 2], s: 'ü€' });
      expect(await ks.call('status', 'basic')).toEqual({ version: 0, dirty: true });
      expect(await ks.call('get', 'basic', 'b:2')).toBe('two');
      expect(await ks.call('get', 'basic', 'missing')).toBeUndefined();
      expect(await ks.call('getJSON', 'basic', 'json')).toEqual({ n: 1, list: [1, 2], s: 'ü€' });
      expect(await ks.call('has', 'basic', 'a:1')).toBe(true);
      expect(await ks.call('delete', 'basic', 'a:1')).toBe(true);
      expect(await ks.call('delete', 'basic', 'a:1')).toBe(false);
      expect(await ks.call('has', 'basic', 'a:1')).toBe(false);

      expect(await ks.call('scan', 'basic', { prefix: 'b:' })).toEqual([['b:1', 'one'], ['b:2', 'two'], ['b:3', 'three']]);
      expect(await ks.call('scan', 'basic', { start: 'b:2', end: 'c:1' })).toEqual([['b:2', 'two'], ['b:3', 'three']]);
      expect(await ks.call('scan', 'basic', { prefix: 'b:', reverse: true, limit: 2 })).toEqual([['b:3', 'three'], ['b:2', 'two']]);

      // A transaction sees its own writes and applies all of them...
      expect(await ks.call('transaction', 'basic', { 'b:1': 'ONE', 'b:2': null, 't:1': 'new' })).toEqual({ 'b:1': 'ONE', 'b:2': null, 't:1': 'new' });
      // ...and a throwing one applies none.
      const aborted = await ks.fail('transaction', 'basic', { 'b:1': 'lost', 'u:1': 'lost' }, true);
      expect(aborted.message).toBe('abort requested');
      const expected = { 'b:1': 'ONE', 'b:3': 'three', 'c:1': 'last', json: '{"n":1,"list":[1,2],"s":"ü€"}', 't:1': 'new' };
      expect(await ks.call('dump', 'basic')).toEqual(expected);

      const commit = await ks.call('commit', 'basic');
      expect(commit.version).toBe(1);
      expect(commit.bytesWritten).toBeGreaterThan(0);
      expect(await ks.call('status', 'basic')).toEqual({ version: 1, dirty: false });
      expect((await ks.call('events', 'basic')).map((e: { type: string }) => e.type)).toEqual(['commit']);

      const badKey = await ks.call('expectThrow', 'basic', 'put', '', 'x');
      expect(badKey).toMatchObject({ name: 'InvalidArgumentError', code: 'invalid-argument' });
      expect(badKey.instanceOf).toEqual(['KeepstateError', 'InvalidArgumentError']);

      // close() commits pending changes first.
      await ks.call('put', 'basic', 'after', 'x');
      expect(await ks.call('close', 'basic')).toBe(2);
      expect(await ks.call('open', 'basic', { autosave: false })).toEqual({ version: 2, dirty: false });
      expect(await ks.call('dump', 'basic')).toEqual({ ...expected, after: 'x' });

      // A closed store refuses reads, writes and commits.
      const [getError, putError, commitError] = await ks.call('closeAndUse', 'basic');
      for (const e of [getError, putError, commitError]) expect(e).toMatchObject({ name: 'ClosedError', code: 'closed' });
    });

    test('reload restores exactly the committed state and version; uncommitted changes are gone', async ({ openBrowser, harness, profile }) => {
      const ks = await harness(await openBrowser(profile), mode);
      await ks.call('open', 'reload', { autosave: false });
      await ks.call('putAll', 'reload', { a: '1', b: '2', c: '3' });
      expect((await ks.call('commit', 'reload')).version).toBe(1);
      await ks.call('transaction', 'reload', { a: 'one', d: '4', c: null });
      expect((await ks.call('commit', 'reload')).version).toBe(2);
      const committed = await ks.call('dump', 'reload');
      expect(committed).toEqual({ a: 'one', b: '2', d: '4' });
      // Uncommitted: a change, a new key, a deletion.
      await ks.call('putAll', 'reload', { a: 'uncommitted', e: 'uncommitted' });
      await ks.call('delete', 'reload', 'b');
      expect(await ks.call('status', 'reload')).toEqual({ version: 2, dirty: true });

      await ks.reload();
      expect(await ks.call('open', 'reload', { autosave: false })).toEqual({ version: 2, dirty: false });
      expect(await ks.call('dump', 'reload')).toEqual(committed);
      expect(await ks.call('events', 'reload')).toEqual([]);
    });

    test('storage health: persist is asked for at open; storage() reports persisted, usage and quota', async ({ openBrowser, harness, profile }) => {
      const ks = await harness(await openBrowser(profile), mode);
      await ks.call('open', 'health', { autosave: false, persist: true });
      await ks.call('putRandom', 'health', 'k', 100_000);
      await ks.call('commit', 'health');
      const health = await ks.call('storageHealth', 'health');
      expect(typeof health.persisted).toBe('boolean');
      const features = await ks.call('features');
      if (features.storageEstimate) {
        expect(health.usage).toBeGreaterThan(100_000);
        expect(health.quota).toBeGreaterThan(health.usage);
      } else {
        // WebKitGTK has no navigator.storage: nothing to estimate, and it says so.
        expect(health).toEqual({ persisted: false, usage: undefined, quota: undefined });
      }
    });

    test('autosave commits changes that then survive a reload', async ({ openBrowser, harness, profile }) => {
      const ks = await harness(await openBrowser(profile), mode);
      await ks.call('open', 'autosave', { autosave: 50 });
      await ks.call('putAll', 'autosave', { saved: 'by autosave' });
      const event = await ks.call('waitForEvent', 'autosave', 'commit', 5000);
      expect(event.version).toBe(1);
      expect(await ks.call('status', 'autosave')).toEqual({ version: 1, dirty: false });
      await ks.reload();
      expect(await ks.call('open', 'autosave', { autosave: false })).toEqual({ version: 1, dirty: false });
      expect(await ks.call('dump', 'autosave')).toEqual({ saved: 'by autosave' });
    });

    test('closing the browser and launching it again restores the state', async ({ openBrowser, harness, profile, engine }) => {
      test.skip(engine === 'webkit', "WebKitGTK's automation session keeps website data in memory: nothing outlives the browser (checked: a value written in one session is gone in the next)");
      let context = await openBrowser(profile);
      let ks = await harness(context, mode);
      await ks.call('open', 'relaunch', { autosave: false });
      const state: Record<string, string> = {};
      for (let i = 0; i < 2000; ++i) state[`k:${String(i).padStart(5, '0')}`] = `value ${i} `.repeat(1 + (i % 7));
      await ks.call('putAll', 'relaunch', state);
      await ks.call('commit', 'relaunch');
      await ks.call('transaction', 'relaunch', { 'k:00000': 'changed', 'k:00001': null });
      const { version } = await ks.call('commit', 'relaunch');
      expect(version).toBe(2);
      await ks.call('put', 'relaunch', 'k:00002', 'never committed');
      const committed = { ...state, 'k:00000': 'changed' };
      delete committed['k:00001'];
      await context.close(); // the whole browser: a persistent context owns it

      context = await openBrowser(profile);
      ks = await harness(context, mode);
      expect(await ks.call('open', 'relaunch', { autosave: false })).toEqual({ version: 2, dirty: false });
      expect(await ks.call('dump', 'relaunch')).toEqual(committed);
    });

    test('quota: a commit over the origin quota fails with QuotaError, keeps the data, and succeeds once space is freed', async ({ openBrowser, harness, profile, server, engine }) => {
      test.skip(engine !== 'chromium', 'a small origin quota is set through CDP (Storage.overrideQuotaForOrigin); WebDriver BiDi and classic WebDriver have no counterpart');
      const context = await openBrowser(profile);
      const ks = await harness(context, mode);
      // A small quota for this origin (Chromium's own enforcement, kept while the session lives).
      const cdp = await context.context!.newCDPSession(ks.page);
      await cdp.send('Storage.overrideQuotaForOrigin', { origin: server.origin, quotaSize: 3 * 1024 * 1024 });
      await ks.call('open', 'quota', { autosave: false });
      await ks.call('putAll', 'quota', { small: 'fits' });
      expect((await ks.call('commit', 'quota')).version).toBe(1);
      await ks.call('ballast', 1536 * 1024); // another database takes half the quota

      await ks.call('putRandom', 'quota', 'big', 2 * 1024 * 1024);
      const error = await ks.fail('commit', 'quota');
      expect(error).toMatchObject({ name: 'QuotaError', code: 'quota' });
      expect(error.instanceOf).toContain('QuotaError');
      // The state is intact in memory and still dirty; the stored version is unchanged.
      expect(await ks.call('status', 'quota')).toEqual({ version: 1, dirty: true });
      expect(await ks.call('size', 'quota', 'big')).toBe(2 * 1024 * 1024);
      const other = await harness(context, mode);
      expect(await other.call('open', 'quota', { autosave: false })).toEqual({ version: 1, dirty: false });
      expect(await other.call('dump', 'quota')).toEqual({ small: 'fits' });
      await other.call('close', 'quota');
      await other.close();

      await ks.call('deleteDatabase', 'ballast'); // space freed
      expect((await ks.call('commit', 'quota')).version).toBe(2);
      await ks.reload();
      expect(await ks.call('open', 'quota', { autosave: false })).toEqual({ version: 2, dirty: false });
      expect(await ks.call('size', 'quota', 'big')).toBe(2 * 1024 * 1024);
      expect(await ks.call('get', 'quota', 'small')).toBe('fits');
    });

    test('corruption (no OPFS copy): a damaged pack of the newest version falls back to the previous one, says so, and the ledger audits', async ({ openBrowser, harness, profile }) => {
      const ks = await harness(await openBrowser(profile), mode);
      await ks.call('open', 'ledger', { autosave: false, copy: false });
      await ks.call('createLedger', 'ledger', 300, 1000, 7);
      expect((await ks.call('commit', 'ledger')).version).toBe(1);
      await ks.call('transfers', 'ledger', 400);
      expect((await ks.call('commit', 'ledger')).version).toBe(2);
      const atTwo = await ks.call('dump', 'ledger');
      await ks.call('transfers', 'ledger', 400);
      expect((await ks.call('commit', 'ledger')).version).toBe(3);
      expect(await ks.call('dump', 'ledger')).not.toEqual(atTwo);
      await ks.call('close', 'ledger');

      // Flip bytes of version 3's own pack(s) (key: 16 hex digits of the version first).
      const packs: string[] = await ks.call('idbKeys', 'ledger', 'packs');
      const newest = packs.filter((k) => k.startsWith(`${(3).toString(16).padStart(16, '0')}-`));
      expect(newest.length).toBeGreaterThan(0);
      for (const key of newest) expect(await ks.call('idbFlipBytes', 'ledger', 'packs', key, [17, 4096 + 99])).toBeGreaterThan(4096);

      expect(await ks.call('open', 'ledger', { autosave: false, copy: false })).toEqual({ version: 2, dirty: false });
      const event = await ks.call('waitForEvent', 'ledger', 'corruption');
      expect(event).toMatchObject({ restoredVersion: 2, fresh: false, error: { name: 'CorruptionError', code: 'corruption' } });
      expect(event.failures[0]).toMatchObject({ version: 3, code: 'corruption' });
      expect(event.failures[0].message).toContain(newest[0]);
      expect(event.error.message).toContain('version 3');
      expect(await ks.call('dump', 'ledger')).toEqual(atTwo);
      expect(await ks.call('audit', 'ledger')).toMatchObject({ ok: true, seq: 400 });
      expect(await ks.call('replay', 'ledger')).toMatchObject({ ok: true, seq: 400 });

      // The store goes on from there; version numbers are not reused.
      await ks.call('transfers', 'ledger', 10);
      expect((await ks.call('commit', 'ledger')).version).toBe(4);
      await ks.reload();
      expect(await ks.call('open', 'ledger', { autosave: false, copy: false })).toEqual({ version: 4, dirty: false });
      expect(await ks.call('audit', 'ledger')).toMatchObject({ ok: true, seq: 410 });
      expect(await ks.call('events', 'ledger')).toEqual([]);
    });

    test('corruption with the OPFS copy on: a damaged pack of the newest version comes back intact from the copy, and IndexedDB is repaired', async ({ openBrowser, harness, profile, engine }) => {
      test.skip(engine === 'webkit', NO_OPFS);
      const ks = await harness(await openBrowser(profile), mode);
      await ks.call('open', 'ledger', { autosave: false });
      await ks.call('createLedger', 'ledger', 300, 1000, 7);
      expect((await ks.call('commit', 'ledger')).version).toBe(1);
      await ks.call('transfers', 'ledger', 400);
      expect((await ks.call('commit', 'ledger')).version).toBe(2);
      await ks.call('transfers', 'ledger', 400);
      expect((await ks.call('commit', 'ledger')).version).toBe(3);
      const atThree = await ks.call('dump', 'ledger');
      await ks.call('close', 'ledger');
      const files: string[] = await ks.call('opfsRecords', 'ledger');
      expect(files).toContain(`h-${(3).toString(16).padStart(16, '0')}`);

      const packs: string[] = await ks.call('idbKeys', 'ledger', 'packs');
      const newest = packs.filter((k) => k.startsWith(`${(3).toString(16).padStart(16, '0')}-`));
      expect(newest.length).toBeGreaterThan(0);
      for (const key of newest) expect(files).toContain(`p-${key}`);
      for (const key of newest) await ks.call('idbFlipBytes', 'ledger', 'packs', key, [17, 4096 + 99]);

      expect(await ks.call('open', 'ledger', { autosave: false })).toEqual({ version: 3, dirty: false });
      const event = await ks.call('waitForEvent', 'ledger', 'data-loss');
      expect(event).toMatchObject({ reason: 'corrupt', recovered: true, restoredVersion: 3, lastKnownVersion: 3 });
      expect(event.failures[0]).toMatchObject({ version: 3, code: 'corruption' });
      expect(await ks.call('dump', 'ledger')).toEqual(atThree);
      expect(await ks.call('audit', 'ledger')).toMatchObject({ ok: true, seq: 800 });
      await ks.call('close', 'ledger');
      // IndexedDB was rewritten from the copy: without the copy it opens at 3 as well, silently.
      expect(await ks.call('open', 'ledger', { autosave: false, copy: false })).toEqual({ version: 3, dirty: false });
      expect(await ks.call('dump', 'ledger')).toEqual(atThree);
      expect(await ks.call('events', 'ledger')).toEqual([]);
    });

    test('a database deleted behind the store: restored from the OPFS copy; with the copy off, DataLossError', async ({ openBrowser, harness, profile, engine }) => {
      test.skip(engine === 'webkit', NO_OPFS);
      const ks = await harness(await openBrowser(profile), mode);
      await ks.call('open', 'gone', { autosave: false });
      await ks.call('putAll', 'gone', { a: '1', b: '2' });
      expect((await ks.call('commit', 'gone')).version).toBe(1);
      await ks.call('putAll', 'gone', { b: '3' });
      expect((await ks.call('commit', 'gone')).version).toBe(2);
      await ks.call('close', 'gone');
      await ks.call('deleteDatabase', 'keepstate:gone');

      expect(await ks.call('open', 'gone', { autosave: false })).toEqual({ version: 2, dirty: false });
      expect(await ks.call('waitForEvent', 'gone', 'data-loss')).toMatchObject({ reason: 'missing', recovered: true, restoredVersion: 2, lastKnownVersion: 2 });
      expect(await ks.call('dump', 'gone')).toEqual({ a: '1', b: '3' });
      await ks.call('close', 'gone');

      // Without the copy, the marker file still knows version 2 existed.
      await ks.call('open', 'bare', { autosave: false, copy: false });
      await ks.call('putAll', 'bare', { a: '1' });
      expect((await ks.call('commit', 'bare')).version).toBe(1);
      await ks.call('close', 'bare');
      expect(await ks.call('opfsFiles', 'bare')).toEqual([`x-${(1).toString(16).padStart(16, '0')}`]);
      await ks.call('deleteDatabase', 'keepstate:bare');
      const error = await ks.fail('open', 'bare', { autosave: false, copy: false });
      expect(error).toMatchObject({ name: 'DataLossError', code: 'data-loss', lastKnownVersion: 1, storedVersion: 0 });
      expect(error.instanceOf).toContain('DataLossError');
      // Still refused at the next open; opened empty only when the app says so.
      expect(await ks.fail('open', 'bare', { autosave: false, copy: false })).toMatchObject({ code: 'data-loss' });
      expect(await ks.call('open', 'bare', { autosave: false, copy: false, onDataLoss: 'open' })).toEqual({ version: 0, dirty: false });
      expect(await ks.call('waitForEvent', 'bare', 'data-loss')).toMatchObject({ reason: 'missing', recovered: false, lastKnownVersion: 1 });
    });

    test('what guards commits beyond IndexedDB follows what the browser offers; without OPFS the store still opens, commits and reloads', async ({ openBrowser, harness, profile, engine }) => {
      const ks = await harness(await openBrowser(profile), mode);
      const features = await ks.call('features');
      // WebKitGTK has no OPFS; Chromium and Firefox have it in pages and workers.
      expect(features.opfs).toBe(engine !== 'webkit');
      await ks.call('open', 'guard', { autosave: false });
      await ks.call('open', 'bare', { autosave: false, copy: false });
      expect(await ks.call('lossProtection', 'guard')).toBe(features.opfs ? 'copy' : 'none');
      expect(await ks.call('lossProtection', 'bare')).toBe(features.opfs ? 'marker' : 'none');
      for (const name of ['guard', 'bare']) {
        await ks.call('putAll', name, { a: '1', b: '2' });
        expect((await ks.call('commit', name)).version).toBe(1);
        await ks.call('close', name);
      }
      if (features.opfs) {
        expect(await ks.call('opfsRecords', 'guard')).toContain(`h-${(1).toString(16).padStart(16, '0')}`);
        expect(await ks.call('opfsFiles', 'bare')).toEqual([`x-${(1).toString(16).padStart(16, '0')}`]);
      }
      await ks.reload();
      for (const name of ['guard', 'bare']) {
        expect(await ks.call('open', name, { autosave: false })).toEqual({ version: 1, dirty: false });
        expect(await ks.call('dump', name)).toEqual({ a: '1', b: '2' });
        expect(await ks.call('events', name)).toEqual([]);
        await ks.call('close', name);
      }
      // A database deleted behind the store: with OPFS the copy restores it; without, nothing
      // knew it existed, so it opens empty without a report (docs/browsers.md).
      await ks.call('deleteDatabase', 'keepstate:guard');
      expect(await ks.call('open', 'guard', { autosave: false })).toEqual({ version: features.opfs ? 1 : 0, dirty: false });
      if (features.opfs) expect(await ks.call('waitForEvent', 'guard', 'data-loss')).toMatchObject({ reason: 'missing', recovered: true, restoredVersion: 1 });
      else expect(await ks.call('events', 'guard')).toEqual([]);
    });

    test("two tabs, onConflict 'reject': the second writer gets ConflictError, writes nothing, hears remote-commit and reloads", async ({ openBrowser, harness, profile }) => {
      const context = await openBrowser(profile);
      const reject = { autosave: false, onConflict: 'reject', follow: false };
      const a = await harness(context, mode);
      await a.call('open', 'shared', reject);
      await a.call('putAll', 'shared', { x: '0', y: '0' });
      expect((await a.call('commit', 'shared')).version).toBe(1);

      const b = await harness(context, mode); // a second tab
      expect(a.tab).not.toBe(b.tab);
      expect(await b.call('open', 'shared', reject)).toEqual({ version: 1, dirty: false });

      await a.call('putAll', 'shared', { x: 'A', a: 'only A' });
      await b.call('putAll', 'shared', { y: 'B', b: 'only B' });
      expect((await a.call('commit', 'shared')).version).toBe(2);

      const conflict = await b.fail('commit', 'shared');
      expect(conflict).toMatchObject({ name: 'ConflictError', code: 'conflict', expectedVersion: 1, actualVersion: 2 });
      expect(conflict.instanceOf).toContain('ConflictError');
      expect(await b.call('status', 'shared')).toEqual({ version: 1, dirty: true }); // B keeps its changes
      expect(await b.call('waitForEvent', 'shared', 'conflict')).toMatchObject({ error: { code: 'conflict' } });
      expect(await b.call('waitForEvent', 'shared', 'remote-commit')).toEqual({ type: 'remote-commit', version: 2 });

      // Nothing of B reached IndexedDB: a third reader sees exactly A's commit.
      const c = await harness(context, mode);
      expect(await c.call('open', 'shared', { autosave: false })).toEqual({ version: 2, dirty: false });
      expect(await c.call('dump', 'shared')).toEqual({ x: 'A', y: '0', a: 'only A' });
      await c.call('close', 'shared');

      expect(await b.call('reload', 'shared')).toEqual({ version: 2, dirty: false });
      expect(await b.call('dump', 'shared')).toEqual({ x: 'A', y: '0', a: 'only A' });
      // After reloading, B commits on top of A.
      await b.call('put', 'shared', 'b', 'again');
      expect((await b.call('commit', 'shared')).version).toBe(3);
      expect(await a.call('waitForEvent', 'shared', 'remote-commit')).toEqual({ type: 'remote-commit', version: 3 });
      // A, still at 2, now loses in turn.
      await a.call('put', 'shared', 'a', 'stale');
      expect(await a.fail('commit', 'shared')).toMatchObject({ code: 'conflict', expectedVersion: 2, actualVersion: 3 });
    });

    test('a pool of read replicas opened here answers what is committed, not what is pending', async ({ openBrowser, harness, profile }) => {
      const ks = await harness(await openBrowser(profile), mode);
      expect(await ks.call('realm')).toBe(mode);
      await ks.call('open', 'pooled', { autosave: false });
      await ks.call('putAll', 'pooled', { a: 'one', b: 'two' });
      expect((await ks.call('commit', 'pooled')).version).toBe(1);
      await ks.call('put', 'pooled', 'a', 'uncommitted');
      const r = await ks.call('poolRead', 'pooled', ['a', 'b', 'c'], { max: 1 });
      expect(r).toEqual({
        answers: [{ version: 1, text: 'one' }, { version: 1, text: 'two' }, { version: 1, text: null }],
        replicas: 1,
        answered: 3,
        failed: 0,
      });
    });
  });
}
