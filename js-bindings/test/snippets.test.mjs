// The docs' code compiles: every ```ts, ```tsx, ```js and ```jsx block of
// README.md and docs/*.md is type-checked against the built package's .d.ts
// (js-bindings/dist, through a `keepstate` in node_modules, as an app sees
// it) with `strict: true`, as a TypeScript app would hold it. And the
// package's types refuse what the runtime refuses (an async transaction or
// migration, putJSON of undefined, new Store()).
//
// Each block is its own module (top-level await allowed). A block may use
// `store` (a Store) without opening it, and import the two example modules
// the docs name (./ledger/client.mjs, ./my_app.js): declared in PRELUDE and
// STUBS below. Nothing else is assumed: a block that uses a name must import
// or declare it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import ts from 'typescript';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const packageDir = join(repo, 'js-bindings');

/** Ambient names a block may use without declaring them. */
const PRELUDE = `import type { Store } from 'keepstate';
declare global {
  /** The app's open store (the blocks that open one declare their own). */
  const store: Store;
}
export {};
`;

/** Modules the docs import from the app's own files. */
const STUBS = {
  'ledger/client.d.mts': `import type { ModuleSource, Store } from 'keepstate';
export declare const ledgerModule: ModuleSource;
export declare class Ledger {
  constructor(store: Store);
  openAccounts(first: number, count: number, balance: number): Promise<void>;
  transfer(from: number, to: number, amount: number): Promise<void>;
  audit(): Promise<{ ok: boolean }>;
}
`,
  'my_app.d.ts': `import type { KeepstateModuleFactory } from 'keepstate';
declare const factory: KeepstateModuleFactory;
export default factory;
`,
};

/** Every code block of the given languages in README.md and docs/*.md: { file, line, lang, code }. */
async function snippets(langs) {
  const files = ['README.md', ...(await readdir(join(repo, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  const out = [];
  for (const file of files) {
    const text = await readFile(join(repo, file), 'utf8');
    for (const m of text.matchAll(/^```(\w*)[^\n]*\n([\s\S]*?)^```/gm)) {
      if (!langs.includes(m[1])) continue;
      out.push({ file, line: text.slice(0, m.index).split('\n').length + 1, lang: m[1], code: m[2] });
    }
  }
  return out;
}

/** A folder under build/ (so `react` and its types resolve from the repository's node_modules)
 * with `keepstate` installed as the package folder. */
async function workspace(name) {
  const dir = join(repo, 'build', name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'node_modules'), { recursive: true });
  await symlink(packageDir, join(dir, 'node_modules/keepstate'));
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  return dir;
}

/** Type-checks `files` (paths in `dir`) with strict options; returns the diagnostics as text, by file. */
function typeCheck(dir, files) {
  const options = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'],
    jsx: ts.JsxEmit.ReactJSX,
    types: [],
    skipLibCheck: false,
  };
  const program = ts.createProgram(files.map((f) => join(dir, f)), options);
  const byFile = new Map();
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const where = d.file ? d.file.fileName.slice(dir.length + 1) : '(options)';
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
    const text = `${where}:${line}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    if (!byFile.has(where)) byFile.set(where, []);
    byFile.get(where).push({ line, text });
  }
  return byFile;
}

test('every TS/JS code block of README.md and docs/*.md compiles against the package types with strict: true', async () => {
  const blocks = await snippets(['ts', 'tsx', 'js', 'jsx']);
  assert.ok(blocks.length >= 8, `found ${blocks.length} blocks`);
  const dir = await workspace('doc-snippets');
  await writeFile(join(dir, 'prelude.ts'), PRELUDE);
  for (const [path, text] of Object.entries(STUBS)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  const names = [];
  for (const [i, b] of blocks.entries()) {
    // As TypeScript (a .js block is what a TS app would paste), as a module.
    const name = `snippet-${i}.${b.lang.startsWith('j') ? b.lang.replace('j', 't') : b.lang}`;
    const code = b.code.replace(/from '\.\/(ledger\/client)\.mjs'/, "from './$1.mjs'");
    await writeFile(join(dir, name), `${code}\nexport {};\n`);
    names.push(name);
  }
  const diagnostics = typeCheck(dir, ['prelude.ts', ...names]);
  const failures = [];
  for (const [where, list] of diagnostics) {
    const i = names.indexOf(where);
    if (i < 0) {
      failures.push(...list.map((d) => d.text));
      continue;
    }
    const b = blocks[i];
    for (const d of list) failures.push(`${b.file}:${b.line + d.line - 1} (\`\`\`${b.lang} block at line ${b.line}): ${d.text.slice(d.text.indexOf(': ') + 2)}`);
  }
  assert.deepEqual(failures, [], `\n${failures.join('\n')}`);
});

test('the package types refuse what the runtime refuses', async () => {
  const dir = await workspace('type-refusals');
  // Each refusal is marked @ts-expect-error: an error that does not happen fails the check.
  await writeFile(join(dir, 'refusals.ts'), `
import { openStore, Store, type ImportOptions, type SnapshotInfo, type SnapshotSource, type Timing, inspectSnapshot } from 'keepstate';
const store = await openStore('t', { storage: 'memory' });

// Accepted: a synchronous fn, its value returned; void-returning bodies.
const n: number = store.transaction((tx) => (tx.has('a') ? 1 : 2));
store.transaction((tx) => tx.put('a', 'b'));
store.transaction((tx) => { tx.delete('a'); });
const deleted: boolean = store.transaction((tx) => tx.delete('a'));
// @ts-expect-error an async fn: transaction() refuses a promise at runtime
store.transaction(async (tx) => tx.put('a', 'b'));
// @ts-expect-error a fn returning a promise
store.transaction((tx) => Promise.resolve(tx.get('a')));

await openStore('m', { schema: { version: 2, migrate(tx, from) { if (from < 2) tx.putJSON('v', { from }); } } });
await openStore('m', { schema: { version: 2, migrate: (tx) => tx.delete('old') } });
// @ts-expect-error an async migrate: refused at open
await openStore('m', { schema: { version: 2, async migrate(tx) { tx.put('a', 'b'); } } });

store.putJSON('a', { x: 1 });
store.putJSON('a', null);
store.putJSON('a', [1, 'two']);
// @ts-expect-error undefined has no JSON form: putJSON refuses it at runtime
store.putJSON('a', undefined);
declare const maybe: { x: number } | undefined;
// @ts-expect-error maybe undefined
store.putJSON('a', maybe);
store.transaction((tx) => {
  // @ts-expect-error the same in a transaction
  tx.putJSON('a', undefined);
});

// @ts-expect-error a Store comes from openStore or importStore
new Store();
const isStore: boolean = store instanceof Store;

const source: SnapshotSource = await store.export();
const info: SnapshotInfo = await inspectSnapshot(source);
const fields: [number, number, number, number, number, number] = [info.pageSize, info.pageCount, info.schemaVersion, info.entries, info.storeVersion, info.createdAt];
const timing: Timing = (phase: string, ms: number) => console.log(phase, ms);
const options: ImportOptions = { debugTimings: timing, replace: true };
export { n, deleted, isStore, fields, options };
`);
  const diagnostics = [...typeCheck(dir, ['refusals.ts']).values()].flat().map((d) => d.text);
  assert.deepEqual(diagnostics, []);
  // No private member of the Store in its declarations (tsc lists them by name).
  const dts = await readFile(join(packageDir, 'dist/store.d.ts'), 'utf8');
  const privates = dts.split('\n').filter((l) => /^\s*(private|#private)\b/.test(l) && !/private constructor\(\);/.test(l));
  assert.deepEqual(privates, []);
});
