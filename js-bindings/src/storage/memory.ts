// The in-memory backend: a store's records in a Map of this realm, shared by
// every store opened with the same name here (so two stores of one name
// conflict as two tabs would; they hear each other's commits through
// notices/memory.ts). For Node tests and state that need not outlive the
// page: `openStore(name, { storage: 'memory' })`.
//
// A commit is atomic: it runs synchronously (the head check included) in one
// task, after the same await a real backend has.
import { RecordKind, feedPacks, packBytes, type CommitRecords, type PackRequest, type StashedCommit, type StorageBackend, type StoredRecord } from './backend.js';
import type { KeepstateError } from '../errors.js';

interface Shared {
  records: Map<string, StoredRecord>; // by `${kind}/${key}`
  stashes: Map<number, StashedCommit>; // by writer
}

const realm = new Map<string, Shared>();

const id = (kind: RecordKind, key: string) => `${kind}/${key}`;

export class MemoryBackend implements StorageBackend {
  readonly label = 'memory';
  private readonly shared: Shared;

  constructor(storeName: string) {
    let shared = realm.get(storeName);
    if (shared === undefined) realm.set(storeName, (shared = { records: new Map(), stashes: new Map() }));
    this.shared = shared;
  }

  /** Forgets the in-memory store `storeName` (deleteStore). */
  static delete(storeName: string): void {
    realm.delete(storeName);
  }

  /** Forgets every in-memory store of this realm (tests). */
  static clearAll(): void {
    realm.clear();
  }

  async readHead(): Promise<Uint8Array | undefined> {
    return this.shared.records.get(id(RecordKind.Head, 'head'))?.bytes.slice();
  }

  async readForRestore(
    start: (records: StoredRecord[]) => PackRequest | null,
    next: (pack: Uint8Array | undefined) => PackRequest | null,
  ): Promise<void> {
    const records = [...this.shared.records.values()].map((r) =>
      r.kind === RecordKind.Pack ? { ...r, bytes: new Uint8Array(0) } : r,
    );
    await feedPacks(records, async (key) => this.shared.records.get(id(RecordKind.Pack, key))?.bytes, start, next);
  }

  async readAll(): Promise<StoredRecord[]> {
    return [...this.shared.records.values()];
  }

  async writeCommit(
    records: CommitRecords,
    _durability: 'strict' | 'relaxed',
    checkHead: (head: Uint8Array | undefined) => KeepstateError | null,
  ): Promise<void> {
    await Promise.resolve();
    // Copies: the caller's arrays must not alias what is stored (a Blob is read into one).
    const puts = await Promise.all(records.puts.map(async (r) => ({ ...r, bytes: r.bytes instanceof Uint8Array ? r.bytes.slice() : (await packBytes(r.bytes))! })));
    const error = checkHead(this.shared.records.get(id(RecordKind.Head, 'head'))?.bytes);
    if (error !== null) throw error;
    if (records.clearFirst) this.shared.records.clear();
    for (const r of puts) this.shared.records.set(id(r.kind, r.key), r);
    for (const d of records.deletes) this.shared.records.delete(id(d.kind, d.key));
  }

  stashCommit(stash: StashedCommit): void {
    this.shared.stashes.set(stash.writer, structuredClone(stash));
  }

  async readStashes(): Promise<StashedCommit[]> {
    return [...this.shared.stashes.values()].sort((a, b) => a.at - b.at);
  }

  async deleteStash(writer: number): Promise<void> {
    this.shared.stashes.delete(writer);
  }

  close(): void {}
}
