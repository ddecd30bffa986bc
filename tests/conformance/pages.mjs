// Page comparison of two snapshot files (docs/snapshot-format.md, "Snapshot
// file"): the suite exports the same sequence's state natively and in wasm
// and requires the pages to be byte-identical (TOOLCHAIN.md: native and wasm
// builds lay out pages identically, so a server may one day send pages).
// The header (creation time, store version, checksum) and the trailer
// (checksum over everything) may differ; the page records may not.

const HEADER = { headerSize: 8, pageSize: 12, pageCount: 16, userVersion: 24, entryCount: 32 };
const PAGE_HASH_BYTES = 16; // XXH3-128 before each page
const TRAILER_BYTES = 32;

function layout(bytes, what) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 64 || view.getUint32(0, true) !== 0x504e534b) throw new Error(`${what}: not a snapshot file`);
  const headerSize = view.getUint32(HEADER.headerSize, true);
  const pageSize = view.getUint32(HEADER.pageSize, true);
  const pageCount = view.getUint32(HEADER.pageCount, true);
  const size = headerSize + pageCount * (PAGE_HASH_BYTES + pageSize) + TRAILER_BYTES;
  if (size !== bytes.length) throw new Error(`${what}: ${bytes.length} bytes, its header implies ${size}`);
  return {
    headerSize,
    pageSize,
    pageCount,
    userVersion: view.getBigUint64(HEADER.userVersion, true),
    entryCount: view.getBigUint64(HEADER.entryCount, true),
  };
}

/**
 * null if the two files hold the same pages (and page size, page count, schema version and
 * entry count), else a sentence naming the first difference (page number and offset in it).
 */
export function comparePages(native, wasm) {
  const a = layout(native, 'native file');
  const b = layout(wasm, 'wasm file');
  for (const field of ['pageSize', 'pageCount', 'userVersion', 'entryCount']) {
    if (a[field] !== b[field]) return `${field}: native ${a[field]}, wasm ${b[field]}`;
  }
  const record = PAGE_HASH_BYTES + a.pageSize;
  const region = (bytes, l) => Buffer.from(bytes.buffer, bytes.byteOffset + l.headerSize, l.pageCount * record);
  if (region(native, a).equals(region(wasm, b))) return null;
  for (let page = 0; page < a.pageCount; ++page) {
    const start = a.headerSize + page * record;
    for (let i = 0; i < record; ++i) {
      if (native[start + i] !== wasm[b.headerSize - a.headerSize + start + i]) {
        const where = i < PAGE_HASH_BYTES ? `its hash, byte ${i}` : `byte ${i - PAGE_HASH_BYTES}`;
        return `page ${page} of ${a.pageCount} differs at ${where}`;
      }
    }
  }
  return null;
}

/** The number of pages in a snapshot file. */
export const pageCount = (bytes) => layout(bytes, 'snapshot file').pageCount;
