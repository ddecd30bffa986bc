// Snapshot files in the browser: a file built natively by keepstate-snapshot
// (as a server or a build step would, to seed a new user's store) imported
// with importStore(fetch(...)) in Chromium, in a page and in a worker, and
// persisted; store.export() imported back into another store.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { test, expect, MODES } from '../support/fixtures';

const REPO = resolve(__dirname, '../..');
// Built by the native presets (make test builds them before the e2e suite).
const TOOL = ['native-release', 'native-debug', 'native-asan']
  .map((p) => resolve(REPO, `build/${p}/tools/snapshot/keepstate-snapshot`))
  .find((p) => existsSync(p));

function buildFile(path: string, lines: string): Promise<void> {
  return new Promise((done, fail) => {
    if (TOOL === undefined) return fail(new Error('keepstate-snapshot is not built: run make build-native-release (make test does)'));
    const child = execFile(TOOL, ['build', path, '--schema-version', '3'], (err, _out, stderr) => (err ? fail(new Error(stderr || String(err))) : done()));
    child.stdin!.end(lines);
  });
}

const SEED = Array.from({ length: 500 }, (_, i) => ({ key: `product/${String(i).padStart(4, '0')}`, value: JSON.stringify({ id: i, price: i * 3 }) }));

for (const mode of MODES) {
  test.describe(`${mode} mode`, () => {
    test('a snapshot file built by keepstate-snapshot is imported with fetch, verified, committed and persisted', async ({ openBrowser, harness, profile }, testInfo) => {
      const file = testInfo.outputPath('seed.ksnap');
      await buildFile(file, SEED.map((e) => JSON.stringify(e)).join('\n') + '\n');
      const url = '/' + relative(REPO, file);
      const ks = await harness(await openBrowser(profile), mode);
      expect(await ks.call('importFrom', 'seeded', url, { autosave: false, schema: { version: 3 } })).toEqual({ version: 1, dirty: false });
      const dump = await ks.call('dump', 'seeded');
      expect(Object.keys(dump)).toHaveLength(500);
      for (const e of [SEED[0]!, SEED[123]!, SEED[499]!]) expect(dump[e.key]).toBe(e.value);
      // Exported again and imported into another store: the same entries.
      await ks.call('exportInto', 'seeded', 'copy', { autosave: false, schema: { version: 3 } });
      expect(await ks.call('dump', 'copy')).toEqual(dump);
      // A second import over it without replace is refused.
      const refused = await ks.fail('importFrom', 'copy', url, { autosave: false, schema: { version: 3 } });
      expect(refused).toMatchObject({ name: 'InvalidArgumentError', code: 'invalid-argument' });
      await ks.reload();
      expect(await ks.call('open', 'seeded', { autosave: false, schema: { version: 3 } })).toEqual({ version: 1, dirty: false });
      expect(await ks.call('dump', 'seeded')).toEqual(dump);
      // A file that is not one is refused with CorruptionError.
      const junk = await ks.fail('importFrom', 'junk', '/e2e/support/web/harness.html', {});
      expect(junk).toMatchObject({ name: 'CorruptionError', code: 'corruption' });
    });
  });
}
