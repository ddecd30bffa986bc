// docs/api.md is the API reference: every name the package exports, every
// public Store member and every option must be documented there, and its
// quick start must be examples/quickstart.ts verbatim (as must README.md's,
// once the README quotes it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';

const root = new URL('../../', import.meta.url);
const read = (path) => readFile(new URL(path, root), 'utf8');

test('docs/api.md documents every export, Store member and option of the .d.ts', async () => {
  const doc = await read('docs/api.md');
  const index = await read('js-bindings/dist/index.d.ts');
  const exported = [...index.matchAll(/export (?:type )?\{([^}]*)\}/g)]
    .flatMap((m) => m[1].split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  assert.ok(exported.length > 15, exported.join());
  // Every declaration file of the package (the Store, its options and types live in several).
  const { readdir } = await import('node:fs/promises');
  const dts = (await readdir(new URL('js-bindings/dist/', root))).filter((f) => f.endsWith('.d.ts'));
  const store = (await Promise.all(dts.map((f) => read(`js-bindings/dist/${f}`)))).join('\n');
  const body = store.slice(store.indexOf('declare class Store '));
  const members = [...body.slice(0, body.indexOf('\n}')).matchAll(/^ {4}(?:readonly |get )?(\w+)[<(:?]/gm)]
    .map((m) => m[1]);
  const options = (block) => {
    const start = store.indexOf(`interface ${block}`);
    return [...store.slice(start, store.indexOf('\n}', start)).matchAll(/^ {4}(\w+)\??:/gm)].map((m) => m[1]);
  };
  for (const name of [...exported, ...members, ...options('OpenOptions'), ...options('ScanOptions'), 'openStore']) {
    assert.ok(doc.includes(`\`${name}`), `docs/api.md documents \`${name}\``);
  }
  for (const event of ['commit', 'conflict', 'corruption', 'data-loss', 'remote-commit', 'error', 'sync']) {
    assert.ok(doc.includes(`| \`${event}\` |`), `event ${event}`);
  }
  assert.ok(members.includes('transaction') && !members.includes('restore'), members.join());
});

test('the quick start in the docs is examples/quickstart.ts verbatim', async () => {
  const example = (await read('examples/quickstart.ts')).trim();
  assert.ok(example.split('\n').length <= 12);
  assert.ok((await read('docs/api.md')).includes(example));
  if (existsSync(new URL('README.md', root))) {
    assert.ok((await read('README.md')).includes(example), 'README.md quotes examples/quickstart.ts');
  }
});
