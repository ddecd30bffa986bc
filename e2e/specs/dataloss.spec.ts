// The real failure behind issue 13, produced on purpose (docs/crash-safety.md):
// a kill leaves the newest LevelDB log of the origin's IndexedDB ending in a
// torn record header; the next session appends after it and is killed too;
// the session after that finds the log corrupt, and Chromium deletes the
// origin's whole IndexedDB (`upgradeneeded` with dataLoss 'total').
// With the OPFS copy on, every acknowledged commit comes back and IndexedDB
// is rewritten; with it off, openStore rejects with DataLossError — at every
// open, until the app opens what is left. Never an empty store passed off as new.
import { test, expect, HARNESS_URL, Harness } from '../support/fixtures';
import { CrashableBrowser } from '../support/crashable';
import { indexedDBFolder, tearNewestLog } from '../support/leveldb';

async function session(profile: string, origin: string): Promise<{ browser: CrashableBrowser; ks: Harness }> {
  const browser = await CrashableBrowser.launch(profile);
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  await page.goto(`${origin}${HARNESS_URL}?mode=page`);
  return { browser, ks: await Harness.ready(new Harness(page, 'page')) };
}

const BROWSER_SAID = /corrupt|checksum mismatch|bad record length/;

for (const copy of [true, false]) {
  test(`a torn LevelDB log makes Chromium delete IndexedDB: ${copy ? 'every acknowledged commit comes back from the OPFS copy' : 'without the copy, DataLossError'}`, async ({ server, profile }) => {
    test.setTimeout(120_000);
    const options = { autosave: false, copy };

    // Session 1: two commits, a clean exit.
    let { browser, ks } = await session(profile, server.origin);
    expect(await ks.call('open', 'torn', options)).toEqual({ version: 0, dirty: false });
    await ks.call('putAll', 'torn', { a: '1' });
    expect((await ks.call('commit', 'torn')).version).toBe(1);
    await ks.call('putRandom', 'torn', 'r', 3000);
    expect((await ks.call('commit', 'torn')).version).toBe(2);
    await ks.call('close', 'torn');
    await browser.kill('close-no-wait');

    // The state a kill in the middle of a log write leaves.
    const torn = tearNewestLog(indexedDBFolder(profile, server.origin));

    // Session 2: opens fine (a torn tail is ignored), then appends well over the
    // 15,652 bytes the torn header claims (random values, small enough to stay in
    // the log), and dies.
    ({ browser, ks } = await session(profile, server.origin));
    expect(await ks.call('open', 'torn', options)).toEqual({ version: 2, dirty: false });
    let acked = 2;
    for (let i = 0; i < 8; ++i) {
      await ks.call('putRandom', 'torn', `r${i}`, 4096);
      acked = (await ks.call('commit', 'torn')).version;
    }
    expect(acked).toBe(10);
    const sizes = Object.fromEntries(Object.keys(await ks.call('dump', 'torn')).map((k) => [k, k === 'a' ? 1 : k === 'r' ? 3000 : 4096]));
    await browser.kill('sigkill');

    // Session 3: Chromium finds the log corrupt and deletes the origin's IndexedDB.
    ({ browser, ks } = await session(profile, server.origin));
    const where = `torn ${torn.log} at ${torn.sizeBefore} bytes`;
    if (copy) {
      expect(await ks.call('open', 'torn', options), where).toEqual({ version: acked, dirty: false });
      const event = await ks.call('waitForEvent', 'torn', 'data-loss');
      expect(event, where).toMatchObject({ reason: 'browser-reported', recovered: true, restoredVersion: acked, lastKnownVersion: acked });
      expect(event.browserMessage).toMatch(BROWSER_SAID);
      for (const [key, size] of Object.entries(sizes)) expect(await ks.call('size', 'torn', key), key).toBe(size);
      expect(await ks.call('get', 'torn', 'a')).toBe('1');
      // The store goes on, and IndexedDB holds everything again.
      await ks.call('putAll', 'torn', { after: 'yes' });
      expect((await ks.call('commit', 'torn')).version).toBe(acked + 1);
      await ks.call('close', 'torn');
      await browser.kill('close-no-wait');
      ({ browser, ks } = await session(profile, server.origin));
      expect(await ks.call('open', 'torn', { autosave: false, copy: false })).toEqual({ version: acked + 1, dirty: false });
      expect(await ks.call('get', 'torn', 'after')).toBe('yes');
      expect(await ks.call('events', 'torn')).toEqual([]);
    } else {
      const error = await ks.fail('open', 'torn', options);
      expect(error, where).toMatchObject({ name: 'DataLossError', code: 'data-loss', storedVersion: 0 });
      expect(error.browserMessage).toMatch(BROWSER_SAID);
      expect(error.lastKnownVersion).toBeGreaterThanOrEqual(1); // the marker: written at each session's first commit
      // A relaunch does not make it go away.
      await browser.kill('close-no-wait');
      ({ browser, ks } = await session(profile, server.origin));
      expect(await ks.fail('open', 'torn', options)).toMatchObject({ code: 'data-loss' });
      expect(await ks.call('open', 'torn', { ...options, onDataLoss: 'open' })).toEqual({ version: 0, dirty: false });
      expect(await ks.call('waitForEvent', 'torn', 'data-loss')).toMatchObject({ reason: 'browser-reported', recovered: false });
    }
    await browser.kill('close-no-wait');
  });
}
