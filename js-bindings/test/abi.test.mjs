// One source of truth: the TypeScript side is generated from the C++ lists
// (status.h's KEEPSTATE_STATUS_CODES, abi.h's KEEPSTATE_ABI_FUNCTIONS). This
// test re-reads those headers independently of the generator and checks the
// generated file, the error classes and the built module against them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { STATUS_CODES, ABI_FUNCTIONS, RECORD_KINDS, WIRE } from '../dist/generated/abi.js';
import { errorFromStatus, ERROR_CLASSES } from '../dist/errors.js';
import { KeepstateError } from '../dist/node.js';
import createModule from '../dist/keepstate.node.js'; // Node's glue (keepstate.js is the browser's)

const root = new URL('../../', import.meta.url);
const read = (path) => readFile(new URL(path, root), 'utf8');

test('status codes match KEEPSTATE_STATUS_CODES in status.h', async () => {
  const header = await read('engine/include/keepstate/status.h');
  const fromHeader = [...header.matchAll(/X\((k\w+),\s*(\d+),\s*"([^"]+)"/g)].map((m) => [Number(m[2]), m[3]]);
  assert.ok(fromHeader.length >= 9);
  assert.deepEqual(STATUS_CODES.map((c) => [c.num, c.code]), fromHeader);
});

test('each error class has a code from the C++ list, and every code converts to a KeepstateError', () => {
  const codes = new Set(STATUS_CODES.map((c) => c.code));
  for (const [code, cls] of Object.entries(ERROR_CLASSES)) {
    assert.ok(codes.has(code), `${cls.name} code ${code} is in status.h`);
    assert.ok(errorFromStatus(STATUS_CODES.find((c) => c.code === code).num, 'm') instanceof cls);
  }
  assert.deepEqual(Object.keys(ERROR_CLASSES).sort(), ['closed', 'conflict', 'corruption', 'data-loss', 'invalid-argument', 'quota']);
  for (const { num, code } of STATUS_CODES.filter((c) => c.num !== 0)) {
    const e = errorFromStatus(num, 'message');
    assert.ok(e instanceof KeepstateError);
    assert.equal(e.code, code);
  }
});

test('exported functions match abi.h, exports.cc and the built module', async () => {
  const abi = await read('js-bindings/abi.h');
  const block = abi.slice(abi.indexOf('#define KEEPSTATE_ABI_FUNCTIONS'), abi.indexOf('#define KEEPSTATE_WIRE_LAYOUTS'));
  const listed = [...block.matchAll(/^\s*X\((\w+),/gm)].map((m) => m[1]);
  assert.deepEqual([...ABI_FUNCTIONS], listed);
  // Every function exports.cc marks for export is in the list.
  const exportsCc = await read('js-bindings/exports.cc');
  const defined = [...exportsCc.matchAll(/EMSCRIPTEN_KEEPALIVE[^(]*?\b(keepstate_\w+)\(/g)].map((m) => m[1]);
  for (const name of defined) assert.ok(listed.includes(name), `${name} is defined but not listed in abi.h`);
  const wasm = await readFile(new URL('../dist/keepstate.wasm', import.meta.url));
  const module = await createModule({ wasmBinary: wasm });
  for (const name of listed) assert.equal(typeof module[`_${name}`], 'function', `_${name} is exported`);
});

test('wire layouts: WIRE is abi.h\'s KEEPSTATE_WIRE_LAYOUTS, and no TypeScript source reads the plan or scan by literal offsets', async () => {
  const abi = await read('js-bindings/abi.h');
  const block = abi.slice(abi.indexOf('#define KEEPSTATE_WIRE_LAYOUTS'));
  const listed = Object.fromEntries([...block.matchAll(/^\s*X\((\w+), (\d+),/gm)].map((m) => [m[1], Number(m[2])]));
  assert.ok(Object.keys(listed).length >= 10, Object.keys(listed).join());
  assert.deepEqual({ ...WIRE }, listed);
  const wire = await read('js-bindings/src/wire.ts');
  assert.ok(!/let w = \d/.test(wire) && !/w \+= \d/.test(wire), 'plan words come from WIRE');
});

test('record kinds match persistence RecordKindName', async () => {
  const format = await read('persistence/src/format.cc');
  for (const name of RECORD_KINDS) assert.ok(format.includes(`"${name}"`), name);
  assert.deepEqual([...RECORD_KINDS], ['head', 'manifests', 'packs']);
});
