// Runs before `npm pack` and `npm publish` (the package's "prepack" script)
// and before npm installs this folder as a dependency (`"keepstate":
// "file:<path>/js-bindings"` with install-links, as the examples do: the
// "prepare" script), in js-bindings/. A package without its build is useless
// to whoever installs it, and npm would happily pack one (package.json alone,
// 478 bytes): refuse loudly instead, naming what is missing and the commands
// that build it.
// Then copy the repository's README.md and LICENSE next to package.json, where
// npm picks them up (both are generated here, never committed: see .gitignore).
import { copyFile, readFile, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const repo = join(packageDir, '..');

// What an app imports: the TypeScript build (npm run build:js) and the wasm
// module with its two glue files (make build-wasm-release).
const required = [
  'dist/index.js', 'dist/index.d.ts', 'dist/node.js', 'dist/react.js', 'dist/react.d.ts',
  'dist/keepstate.js', 'dist/keepstate.node.js', 'dist/keepstate.d.ts', 'dist/keepstate.wasm',
];
const problems = [];
for (const file of required) {
  const path = join(packageDir, file);
  let size = -1;
  try { size = (await stat(path)).size; } catch { /* missing */ }
  if (size < 0) problems.push(`${file} is missing`);
  else if (size === 0) problems.push(`${file} is empty`);
}
const wasm = join(packageDir, 'dist/keepstate.wasm');
if (existsSync(wasm)) {
  const magic = (await readFile(wasm)).subarray(0, 4);
  if (!magic.equals(Buffer.from([0, 0x61, 0x73, 0x6d]))) problems.push('dist/keepstate.wasm is not a WebAssembly module');
}
if (problems.length > 0) {
  console.error(`keepstate: refusing to pack or install an unbuilt package:\n  ${problems.join('\n  ')}\n` +
    'Build it first, from the repository root:\n' +
    '  make build-wasm-release   # the wasm module, copied into js-bindings/dist\n' +
    '  npm run build:js          # the TypeScript build into js-bindings/dist');
  process.exit(1);
}

for (const file of ['README.md', 'LICENSE']) {
  const from = join(repo, file);
  if (!existsSync(from)) {
    console.error(`keepstate: refusing to pack without ${file} (expected at ${from})`);
    process.exit(1);
  }
  await copyFile(from, join(packageDir, file));
}
