// The OPFS copy's journal: one append-only file per store, `journal` in the
// store's copy folder, that takes a small commit's records with one write
// beside IndexedDB and one short confirmation after it (opfs.ts keeps the
// other records as files; docs/crash-safety.md says when which is used).
//
// Why: a durable OPFS file written through createWritable() costs 2.4–3.8 ms
// in Chromium and the copy's commit wrote two in a row; an append + flush
// through a FileSystemSyncAccessHandle kept open costs 0.4 ms
// (bench/browser/opfs.mjs). Sync handles exist only in dedicated Workers, so
// the file is held by a small Worker of this store (journal-worker.ts), which
// runs the JournalCore below; in Node tests the core runs in-process over a
// test's file.
//
// Format (little-endian): a 16-byte file header (magic 'KSJ1', 12 bytes
// zero), then entries, each a 24-byte header — magic 'KSJE', type, payload
// length, version (f64), CRC-32 of the header's first 20 bytes and the
// payload — and its payload:
//   commit   (type 1): the commit's records (kind, key, bytes) and the keys
//                      it deletes; appended while IndexedDB writes the commit
//   confirm  (type 2): the file offset of the commit entry IndexedDB took
//                      (payload: f64); appended, then flushed, before the
//                      commit resolves
// Invariants:
//  - Only confirmed commit entries count. An entry IndexedDB refused is cut
//    off again (truncate); one a crash left unconfirmed is skipped.
//  - Confirmed entries are in version order (commits of a store run one at a
//    time under its lock, and IndexedDB decides versions).
//  - An entry that does not check out ends the journal (a kill tears only
//    the tail): the next append goes where the last good entry ended. At
//    open, a confirmation's CRC is checked, a commit entry's only for its
//    framing: a confirmation is appended after its entry was written whole.
//  - Only the context holding the file's sync handle reads or writes it; a
//    context that needs it asks the holder to let go (the store's lock is
//    held meanwhile, so the holder is between commits).
import { KeepstateError } from '../errors.js';
import { RecordKind, headVersionOf, manifestKey, type StoredRecord } from './backend.js';

/** The part of FileSystemSyncAccessHandle the journal uses. */
export interface SyncFile {
  getSize(): number;
  read(into: Uint8Array, options: { at: number }): number;
  write(bytes: Uint8Array, options: { at: number }): number;
  truncate(size: number): void;
  flush(): void;
  close(): void;
}

/** Opens the journal's sync handle (creating the file). Rejects with a DOMException named
 * 'NoModificationAllowedError' (Chromium, Firefox) while another context holds it. */
export type OpenSyncFile = () => Promise<SyncFile>;

/** The journal file's name in the store's copy folder (no record prefix: opfs.ts never takes it for a record). */
export const JOURNAL_FILE = 'journal';

const FILE_MAGIC = 0x314a534b; // 'KSJ1'
const ENTRY_MAGIC = 0x454a534b; // 'KSJE'
const FILE_HEADER = 16;
/** The size of an empty journal (its file header alone). */
export const JOURNAL_HEADER_BYTES = FILE_HEADER;
const ENTRY_HEADER = 24;
const COMMIT = 1;
const CONFIRM = 2;

/** A record's identity in the copy: its file name (opfs.ts names files so). */
export type RecordName = string;

/** What a commit entry holds. */
export interface JournalCommit {
  version: number;
  puts: { kind: RecordKind; key: string; bytes: Uint8Array }[];
  deletes: { kind: RecordKind; key: string }[];
}

/** What the journal holds, as the copy needs it to decide and to restore. */
export interface JournalState {
  /** The newest confirmed version, 0 if none. */
  headVersion: number;
  /** Every confirmed version still in the journal. */
  versions: number[];
  /** The journal's size in bytes. */
  size: number;
  /** How long taking the handle and reading the journal took (ms), on the acquire that did. */
  readMs?: number;
}

/** The journal's records after every confirmed entry is applied in order. */
export interface JournalRecords {
  /** Live records put by confirmed entries (heads excepted). */
  records: StoredRecord[];
  /** The newest confirmed head record, or null. */
  head: Uint8Array | null;
  /** Records a confirmed entry deleted and no later one put back: files of the same names are dead. */
  deleted: { kind: RecordKind; key: string }[];
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; ++n) {
    let c = n;
    for (let k = 0; k < 8; ++k) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(parts: Uint8Array[]): number {
  let c = 0xffffffff;
  for (const p of parts) for (let i = 0; i < p.length; ++i) c = CRC_TABLE[(c ^ p[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** One entry's bytes: header and payload. */
function frame(type: number, version: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(ENTRY_HEADER + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, ENTRY_MAGIC, true);
  view.setUint32(4, type, true);
  view.setUint32(8, payload.length, true);
  view.setFloat64(12, version, true);
  out.set(payload, ENTRY_HEADER);
  view.setUint32(20, crc32([out.subarray(0, 20), payload]), true);
  return out;
}

function encodeCommit(commit: JournalCommit): Uint8Array {
  const keys = [...commit.puts, ...commit.deletes].map((r) => utf8.encode(r.key));
  let size = 8;
  commit.puts.forEach((r, i) => (size += 7 + keys[i]!.length + r.bytes.length));
  commit.deletes.forEach((_, i) => (size += 3 + keys[commit.puts.length + i]!.length));
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  view.setUint32(at, commit.puts.length, true);
  at += 4;
  commit.puts.forEach((r, i) => {
    const key = keys[i]!;
    view.setUint8(at, r.kind);
    view.setUint16(at + 1, key.length, true);
    out.set(key, at + 3);
    at += 3 + key.length;
    view.setUint32(at, r.bytes.length, true);
    out.set(r.bytes, at + 4);
    at += 4 + r.bytes.length;
  });
  view.setUint32(at, commit.deletes.length, true);
  at += 4;
  commit.deletes.forEach((r, i) => {
    const key = keys[commit.puts.length + i]!;
    view.setUint8(at, r.kind);
    view.setUint16(at + 1, key.length, true);
    out.set(key, at + 3);
    at += 3 + key.length;
  });
  return out;
}

/** A commit entry's payload back (views into `payload`), or null if it does not parse. */
function decodeCommit(version: number, payload: Uint8Array): JournalCommit | null {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  let at = 0;
  const need = (n: number) => at + n <= payload.length;
  const record = () => {
    if (!need(3)) return null;
    const kind = view.getUint8(at) as RecordKind;
    const length = view.getUint16(at + 1, true);
    if (!need(3 + length) || kind > RecordKind.Pack) return null;
    const key = fromUtf8.decode(payload.subarray(at + 3, at + 3 + length));
    at += 3 + length;
    return { kind, key };
  };
  const count = () => {
    if (!need(4)) return null;
    at += 4;
    return view.getUint32(at - 4, true);
  };
  const puts: JournalCommit['puts'] = [];
  let n = count();
  if (n === null) return null;
  for (; n > 0; --n) {
    const r = record();
    if (r === null || !need(4)) return null;
    const length = view.getUint32(at, true);
    if (!need(4 + length)) return null;
    puts.push({ ...r, bytes: payload.subarray(at + 4, at + 4 + length) });
    at += 4 + length;
  }
  const deletes: JournalCommit['deletes'] = [];
  n = count();
  if (n === null) return null;
  for (; n > 0; --n) {
    const r = record();
    if (r === null) return null;
    deletes.push(r);
  }
  return at === payload.length ? { version, puts, deletes } : null;
}

/** The prefix of each kind's file names in the copy folder (a head file is named by version). */
export const RECORD_PREFIX: Record<RecordKind, string> = { [RecordKind.Head]: 'h-', [RecordKind.Manifest]: 'm-', [RecordKind.Pack]: 'p-' };

/** A record's name in the copy folder: what opfs.ts names its file. */
export function recordName(r: { kind: RecordKind; key: string }): RecordName {
  return RECORD_PREFIX[r.kind] + r.key;
}

/** The name of the file that holds the head of `version` (`h-<version as 16 hex>`). */
export function headFileName(version: number): RecordName {
  return RECORD_PREFIX[RecordKind.Head] + manifestKey(version);
}

/**
 * The journal over one open sync handle: parses it when the handle is taken, appends and
 * confirms entries, answers what it holds. Not thread safe; one context at a time (the
 * holder of the handle) uses it.
 */
export class JournalCore {
  private file: SyncFile | null = null;
  /** Where the next entry goes (the end of the last entry that checked out). */
  private end = FILE_HEADER;
  /** Commit entries by file offset, confirmed or not, in file order. */
  private commits = new Map<number, JournalCommit & { confirmed: boolean }>();
  /** Names of the records the confirmed entries leave live. */
  private live = new Set<RecordName>();

  constructor(private readonly open: OpenSyncFile) {}

  /** Takes the handle if not held and reads the journal: its state, or 'busy' if another context holds it. */
  async acquire(): Promise<JournalState | 'busy'> {
    if (this.file === null) {
      const started = performance.now();
      try {
        this.file = await this.open();
      } catch (e) {
        if ((e as { name?: string }).name === 'NoModificationAllowedError') return 'busy';
        throw e;
      }
      try {
        this.load();
      } catch (e) {
        this.release();
        throw e;
      }
      return { ...this.state(), readMs: performance.now() - started };
    }
    return this.state();
  }

  private held(): SyncFile {
    if (this.file === null) throw new KeepstateError('internal', 'the journal is not held');
    return this.file;
  }

  private load(): void {
    const file = this.held();
    this.commits = new Map();
    const size = file.getSize();
    if (size < FILE_HEADER) {
      this.writeHeader();
      return;
    }
    const bytes = new Uint8Array(size);
    file.read(bytes, { at: 0 });
    const view = new DataView(bytes.buffer);
    if (view.getUint32(0, true) !== FILE_MAGIC) {
      throw new KeepstateError('corruption', `the OPFS copy's journal does not start with a journal header (${size} bytes)`);
    }
    let at = FILE_HEADER;
    while (at + ENTRY_HEADER <= size) {
      const length = view.getUint32(at + 8, true);
      if (view.getUint32(at, true) !== ENTRY_MAGIC || at + ENTRY_HEADER + length > size) break;
      const payload = bytes.subarray(at + ENTRY_HEADER, at + ENTRY_HEADER + length);
      const type = view.getUint32(at + 4, true);
      // A commit entry's CRC is not checked here (it would cost the open a pass over every
      // byte): only a confirmed one counts, and its confirmation — checked — was appended
      // after the whole entry was written; its records are verified as every restore does.
      if (type !== COMMIT && crc32([bytes.subarray(at, at + 20), payload]) !== view.getUint32(at + 20, true)) break;
      const version = view.getFloat64(at + 12, true);
      if (type === COMMIT) {
        const commit = decodeCommit(version, payload);
        if (commit === null) break;
        this.commits.set(at, { ...commit, confirmed: false });
      } else if (type === CONFIRM && length === 8) {
        const entry = this.commits.get(new DataView(payload.buffer, payload.byteOffset, 8).getFloat64(0, true));
        if (entry !== undefined && entry.version === version) entry.confirmed = true;
      } else {
        break;
      }
      at += ENTRY_HEADER + length;
    }
    this.end = at;
    for (const c of this.commits.values()) if (c.confirmed) this.apply(c);
    if (at < size) {
      // A torn tail (a kill during an append): cut, so that the next entry follows a good one.
      file.truncate(at);
      file.flush();
    }
  }

  private writeHeader(): void {
    const file = this.held();
    const header = new Uint8Array(FILE_HEADER);
    new DataView(header.buffer).setUint32(0, FILE_MAGIC, true);
    file.truncate(0);
    file.write(header, { at: 0 });
    file.flush();
    this.end = FILE_HEADER;
    this.commits = new Map();
    this.live = new Set();
  }

  private apply(commit: JournalCommit): void {
    for (const r of commit.puts) if (r.kind !== RecordKind.Head) this.live.add(recordName(r));
    for (const r of commit.deletes) this.live.delete(recordName(r));
  }

  state(): JournalState {
    const versions = [...this.commits.values()].filter((c) => c.confirmed).map((c) => c.version);
    return { headVersion: versions.length === 0 ? 0 : Math.max(...versions), versions, size: this.end };
  }

  /**
   * Appends a commit entry (not flushed: its confirmation's flush covers it); returns its
   * offset, and the names of the records it deletes that the journal does not hold (files).
   */
  append(commit: JournalCommit): { offset: number; fileDeletes: RecordName[] } {
    const file = this.held();
    const at = this.end;
    const bytes = frame(COMMIT, commit.version, encodeCommit(commit));
    if (file.write(bytes, { at }) !== bytes.length) throw new KeepstateError('quota', `the OPFS copy's journal took less than an entry of ${bytes.length} bytes`);
    this.end = at + bytes.length;
    this.commits.set(at, { ...commit, confirmed: false });
    return { offset: at, fileDeletes: commit.deletes.map(recordName).filter((n) => !this.live.has(n)) };
  }

  /** Confirms the commit entry at `offset` (IndexedDB took it) and flushes: it counts from now on. */
  confirm(offset: number): JournalState {
    const file = this.held();
    const entry = this.commits.get(offset);
    if (entry === undefined) throw new KeepstateError('internal', `no journal entry at ${offset} to confirm`);
    const payload = new Uint8Array(8);
    new DataView(payload.buffer).setFloat64(0, offset, true);
    const bytes = frame(CONFIRM, entry.version, payload);
    if (file.write(bytes, { at: this.end }) !== bytes.length) throw new KeepstateError('quota', "the OPFS copy's journal took less than a confirmation");
    file.flush();
    this.end += bytes.length;
    entry.confirmed = true;
    this.apply(entry);
    return this.state();
  }

  /** Cuts the journal back to `offset`: the entry there (IndexedDB refused it) and anything after it. */
  undo(offset: number): JournalState {
    const file = this.held();
    if (offset < FILE_HEADER || offset > this.end) throw new KeepstateError('internal', `no journal entry at ${offset} to undo`);
    file.truncate(offset);
    this.end = offset;
    for (const [at, c] of [...this.commits]) {
      if (at < offset) continue;
      if (c.confirmed) throw new KeepstateError('internal', `the journal entry at ${at} is confirmed: it cannot be undone`);
      this.commits.delete(at);
    }
    return this.state();
  }

  /** The records of every confirmed entry, applied in order. */
  records(): JournalRecords {
    const live = new Map<RecordName, StoredRecord>();
    const deleted = new Map<RecordName, { kind: RecordKind; key: string }>();
    let head: Uint8Array | null = null;
    for (const c of this.commits.values()) {
      if (!c.confirmed) continue;
      for (const r of c.puts) {
        if (r.kind === RecordKind.Head) {
          head = r.bytes;
          continue;
        }
        live.set(recordName(r), { kind: r.kind, key: r.key, bytes: r.bytes.slice() });
        deleted.delete(recordName(r));
      }
      for (const r of c.deletes) {
        live.delete(recordName(r));
        deleted.set(recordName(r), r);
      }
    }
    return { records: [...live.values()], head: head?.slice() ?? null, deleted: [...deleted.values()] };
  }

  /** Empties the journal (its records are files now, or gone). */
  reset(): JournalState {
    this.writeHeader();
    return this.state();
  }

  /** Lets go of the handle (another context asked for it, or the store closed). */
  release(): void {
    this.file?.close();
    this.file = null;
  }
}

/** A journal's bytes read from outside as a file that cannot change: a torn tail is left as it is. */
export function readOnlyFile(bytes: Uint8Array): SyncFile {
  return {
    getSize: () => bytes.length,
    read: (into, { at }) => {
      const part = bytes.subarray(at, at + into.length);
      into.set(part);
      return part.length;
    },
    write: () => {
      throw new KeepstateError('invalid-argument', 'a journal read from outside is read only');
    },
    truncate: () => undefined,
    flush: () => undefined,
    close: () => undefined,
  };
}

/**
 * The records a copy folder holds, by file name (`h-<version>` for the newest head only),
 * from the names of its files and its journal's bytes: for tests and tools that look at a
 * folder from outside (the copy itself reads through OpfsCopy).
 */
export async function copyRecordNames(fileNames: string[], journal: Uint8Array | undefined): Promise<string[]> {
  const names = new Set(fileNames.filter((n) => Object.values(RECORD_PREFIX).some((p) => n.startsWith(p))));
  if (journal !== undefined) {
    const core = new JournalCore(async () => readOnlyFile(journal));
    await core.acquire();
    const { records, head, deleted } = core.records();
    for (const r of deleted) names.delete(recordName(r));
    for (const r of records) names.add(recordName(r));
    if (head !== null) names.add(headFileName(headVersionOf(head)));
  }
  const heads = [...names].filter((n) => n.startsWith(RECORD_PREFIX[RecordKind.Head])).sort();
  for (const h of heads.slice(0, -1)) names.delete(h);
  return [...names].sort();
}

/** The journal's operations, as messages (journal-worker.ts serves them; LocalJournalHost in-process). */
export type JournalRequest =
  | { op: 'acquire' }
  | { op: 'append'; commit: JournalCommit }
  | { op: 'confirm'; offset: number }
  | { op: 'undo'; offset: number }
  | { op: 'records' }
  | { op: 'reset' }
  | { op: 'release' };

/** Runs one request on `core`: its answer (a state, an offset, records), the same for every host. */
export async function serveJournal(core: JournalCore, request: JournalRequest): Promise<unknown> {
  switch (request.op) {
    case 'acquire':
      return core.acquire();
    case 'append':
      return core.append(request.commit);
    case 'confirm':
      return core.confirm(request.offset);
    case 'undo':
      return core.undo(request.offset);
    case 'records':
      return core.records();
    case 'reset':
      return core.reset();
    case 'release':
      return core.release();
  }
}

/** Where the journal's core runs: a Worker of this store's, or in-process (tests). */
export interface JournalHost {
  call(request: JournalRequest): Promise<unknown>;
  close(): void;
}

/** The core in this realm, over `open` (a test's file; or a Worker's own handles). */
export class LocalJournalHost implements JournalHost {
  private readonly core: JournalCore;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(open: OpenSyncFile) {
    this.core = new JournalCore(open);
  }

  call(request: JournalRequest): Promise<unknown> {
    const result = this.queue.then(() => serveJournal(this.core, request));
    this.queue = result.catch(() => undefined);
    return result;
  }

  close(): void {
    void this.call({ op: 'release' }).catch(() => undefined);
  }
}
