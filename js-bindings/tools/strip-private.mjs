// Runs after tsc (npm run build:js): removes private members, with their doc
// comments, from the generated declarations in js-bindings/dist/. tsc lists
// every private field and method of a class by name (`private queue;`), which
// puts the Store's internals (52 of them) in front of every user reading its
// types and in their editor's completions, while adding nothing they can use.
// A private constructor stays: it is what makes `new Store()` a type error.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));
const PRIVATE = /^\s*(?:private|#private)\b(?:\s+static)?(?:\s+readonly)?\s*([\w$]*)\s*;\s*$/;

/** The declaration text without private members (a member's JSDoc goes with it). */
export function stripPrivate(text) {
  const lines = text.split('\n');
  const out = [];
  for (const line of lines) {
    const m = PRIVATE.exec(line);
    if (m === null || m[1] === 'constructor') {
      out.push(line);
      continue;
    }
    // Drop the JSDoc block right above it, if any.
    if (out.length > 0 && out[out.length - 1].trim().endsWith('*/')) {
      let i = out.length - 1;
      while (i >= 0 && !out[i].trim().startsWith('/**')) --i;
      if (i >= 0) out.length = i;
    }
  }
  return out.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  let removed = 0;
  for (const name of await readdir(dist)) {
    if (!name.endsWith('.d.ts')) continue;
    const path = join(dist, name);
    const text = await readFile(path, 'utf8');
    const stripped = stripPrivate(text);
    if (stripped !== text) {
      removed += text.split('\n').length - stripped.split('\n').length;
      await writeFile(path, stripped);
    }
  }
  console.log(`strip-private: ${removed} lines of private members removed from dist/*.d.ts`);
}
