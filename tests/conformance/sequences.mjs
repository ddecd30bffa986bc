// The sequence file: the mutation sequences of the determinism conformance
// suite (docs/sync.md, "Determinism"), as generate.mjs writes them and as
// both runners read them: the native one (conformance.cc, which mirrors this
// layout) and the wasm one (wasm.mjs). Both sides run exactly these bytes, so
// nothing but the file has to agree between them.
//
// Layout (little-endian, no padding):
//   header    "KSCQ" | u32 format version (1) | u32 sequence count
//   sequence  u32 seed | u8 flags (bit 0: compare pages) | u32 mutation count
//   mutation  u8 flags (bit 0: commit after it) | u16 name length | name (UTF-8)
//             | u32 args length | args
//
// Invariant: a sequence depends only on its seed (generate.mjs), so a seed
// reported by a failure reproduces it alone.
export const MAGIC = 'KSCQ';
export const FORMAT_VERSION = 1;
export const SEQUENCE_COMPARE_PAGES = 1;
export const MUTATION_COMMIT_AFTER = 1;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Encodes sequences ({ seed, comparePages, mutations: [{ name, args, commit }] }) as one file. */
export function encodeSequences(sequences) {
  const chunks = [];
  let size = 12;
  const header = new DataView(new ArrayBuffer(12));
  utf8.encodeInto(MAGIC, new Uint8Array(header.buffer, 0, 4));
  header.setUint32(4, FORMAT_VERSION, true);
  header.setUint32(8, sequences.length, true);
  chunks.push(new Uint8Array(header.buffer));
  for (const s of sequences) {
    const head = new DataView(new ArrayBuffer(9));
    head.setUint32(0, s.seed, true);
    head.setUint8(4, s.comparePages ? SEQUENCE_COMPARE_PAGES : 0);
    head.setUint32(5, s.mutations.length, true);
    chunks.push(new Uint8Array(head.buffer));
    size += 9;
    for (const m of s.mutations) {
      const name = utf8.encode(m.name);
      const fixed = new DataView(new ArrayBuffer(3 + name.length + 4));
      fixed.setUint8(0, m.commit ? MUTATION_COMMIT_AFTER : 0);
      fixed.setUint16(1, name.length, true);
      new Uint8Array(fixed.buffer).set(name, 3);
      fixed.setUint32(3 + name.length, m.args.length, true);
      chunks.push(new Uint8Array(fixed.buffer), m.args);
      size += fixed.byteLength + m.args.length;
    }
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Decodes a file encodeSequences wrote; throws on anything else. */
export function decodeSequences(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const need = (n) => {
    if (at + n > bytes.length) throw new Error(`sequence file: truncated at byte ${at}`);
    const start = at;
    at += n;
    return start;
  };
  if (fromUtf8.decode(bytes.subarray(need(4), 4)) !== MAGIC) throw new Error('sequence file: bad magic');
  const version = view.getUint32(need(4), true);
  if (version !== FORMAT_VERSION) throw new Error(`sequence file: format ${version}, expected ${FORMAT_VERSION}`);
  const count = view.getUint32(need(4), true);
  const sequences = [];
  for (let i = 0; i < count; ++i) {
    const seed = view.getUint32(need(4), true);
    const comparePages = (view.getUint8(need(1)) & SEQUENCE_COMPARE_PAGES) !== 0;
    const n = view.getUint32(need(4), true);
    const mutations = [];
    for (let j = 0; j < n; ++j) {
      const commit = (view.getUint8(need(1)) & MUTATION_COMMIT_AFTER) !== 0;
      const nameLength = view.getUint16(need(2), true);
      const name = fromUtf8.decode(bytes.subarray(need(nameLength), at));
      const argsLength = view.getUint32(need(4), true);
      const args = bytes.slice(need(argsLength), at);
      mutations.push({ name, args, commit });
    }
    sequences.push({ seed, comparePages, mutations });
  }
  if (at !== bytes.length) throw new Error(`sequence file: ${bytes.length - at} bytes after the last sequence`);
  return sequences;
}
