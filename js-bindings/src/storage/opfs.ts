// The OPFS copy: a second copy of a store's records in the Origin Private
// File System, outside IndexedDB's LevelDB, so that a crash that makes the
// browser delete IndexedDB (docs/crash-safety.md) loses nothing that was
// acknowledged.
//
// Layout: one directory per store, `keepstate/<encodeURIComponent(name)>/`,
// one file per record: `p-<pack key>`, `m-<manifest key>` and `h-<version as
// 16 hex>` holding that version's head record. The record bytes are exactly
// IndexedDB's; the engine verifies them the same way on restore.
//
// Invariants:
//  - A file is written whole or not at all: `createWritable()` writes to a
//    swap file that `close()` moves into place (Chromium, Firefox).
//  - Packs and manifests are immutable under their keys (a pack key names its
//    writer), so rewriting one with the same key writes the same bytes.
//  - A head file is written only after that version's manifest and packs, so
//    the newest head file names a version whose records are all here; older
//    head files and records no retained version uses are removed after it.
//  - The copy follows IndexedDB, which decides versions: nothing is written
//    here for a commit before IndexedDB completed it (packs excepted: their
//    keys are unique, an orphan is harmless and removed by a later commit).
import { RecordKind, feedPacks, headVersionOf, manifestKey, manifestKeyVersion, type CommitRecords, type PackRequest, type RestoreSource, type StoredRecord } from './backend.js';
import { KeepstateError, QuotaError } from '../errors.js';

/** The part of FileSystemWritableFileStream the copy uses. */
interface WritableLike {
  write(data: Uint8Array | Blob): Promise<void>;
  close(): Promise<void>;
  abort?(): Promise<void>;
}

/** The part of FileSystemFileHandle the copy uses. */
interface FileLike {
  getFile(): Promise<{ readonly size: number; arrayBuffer(): Promise<ArrayBuffer> }>;
  createWritable(): Promise<WritableLike>;
}

/** The part of FileSystemDirectoryHandle the copy uses (OPFS's root, or a test's fake). */
export interface CopyDirectory {
  getDirectoryHandle(name: string, options?: { create?: boolean }): Promise<CopyDirectory>;
  getFileHandle(name: string, options?: { create?: boolean }): Promise<FileLike>;
  removeEntry(name: string, options?: { recursive?: boolean }): Promise<void>;
  keys(): AsyncIterable<string>;
}

/** @deprecated The former name of CopyDirectory. */
export type MirrorDirectory = CopyDirectory;

const PREFIX: Record<RecordKind, string> = { [RecordKind.Head]: 'h-', [RecordKind.Manifest]: 'm-', [RecordKind.Pack]: 'p-' };

/** Head files and markers are named by version as manifests are keyed (backend.ts manifestKey). */
const hex16 = manifestKey;

/** The kind and key of a file name, or null for a file that is not a record (a browser's swap file). */
function parseName(name: string): { kind: RecordKind; key: string } | null {
  for (const kind of [RecordKind.Head, RecordKind.Manifest, RecordKind.Pack]) {
    if (name.startsWith(PREFIX[kind]) && name.length > 2) return { kind, key: name.slice(2) };
  }
  return null;
}

function fileName(record: { kind: RecordKind; key: string }): string {
  return PREFIX[record.kind] + record.key;
}

function copyError(e: unknown, what: string): KeepstateError {
  if (e instanceof KeepstateError) return e;
  const name = typeof e === 'object' && e !== null && 'name' in e ? String(e.name) : '';
  const message = e instanceof Error ? e.message : String(e);
  if (name === 'QuotaExceededError') return new QuotaError(`${what}: OPFS quota exceeded (${message})`, { cause: e });
  return new KeepstateError('internal', `${what}: OPFS ${name || 'error'}: ${message}`, { cause: e });
}

/** OPFS's root directory where this realm has a usable one (writable files), else undefined. */
export async function opfsRoot(): Promise<CopyDirectory | undefined> {
  const storage = (globalThis as { navigator?: { storage?: { getDirectory?: () => Promise<unknown> } } }).navigator?.storage;
  const handle = (globalThis as { FileSystemFileHandle?: { prototype: object } }).FileSystemFileHandle;
  if (typeof storage?.getDirectory !== 'function' || handle === undefined || !('createWritable' in handle.prototype)) {
    return undefined;
  }
  try {
    return (await storage.getDirectory()) as CopyDirectory;
  } catch {
    return undefined; // e.g. a private window that refuses OPFS
  }
}

export class OpfsCopy implements RestoreSource {
  readonly label = 'the OPFS copy';

  private constructor(
    private readonly dir: CopyDirectory,
    /** This open created the folder (it did not exist). */
    readonly created: boolean,
  ) {}

  /** The copy of store `storeName` under `root` (created empty if missing). */
  static async open(root: CopyDirectory, storeName: string): Promise<OpfsCopy> {
    try {
      const top = await root.getDirectoryHandle('keepstate', { create: true });
      const name = encodeURIComponent(storeName);
      const existing = await top.getDirectoryHandle(name).catch((e: { name?: string }) => {
        if (e?.name === 'NotFoundError') return null;
        throw e;
      });
      return new OpfsCopy(existing ?? (await top.getDirectoryHandle(name, { create: true })), existing === null);
    } catch (e) {
      throw copyError(e, `opening the OPFS copy of store "${storeName}"`);
    }
  }

  /** Removes store `storeName`'s folder (its copy and markers) under `root`, if there is one. */
  static async removeStore(root: CopyDirectory, storeName: string): Promise<void> {
    try {
      const top = await root.getDirectoryHandle('keepstate', { create: true });
      await top.removeEntry(encodeURIComponent(storeName), { recursive: true });
    } catch (e) {
      if ((e as { name?: string }).name === 'NotFoundError') return;
      throw copyError(e, `removing the OPFS copy of store "${storeName}"`);
    }
  }

  private async names(): Promise<string[]> {
    const out: string[] = [];
    for await (const name of this.dir.keys()) out.push(name);
    return out;
  }

  private async read(name: string): Promise<Uint8Array | undefined> {
    let file: FileLike;
    try {
      file = await this.dir.getFileHandle(name);
    } catch (e) {
      if ((e as { name?: string }).name === 'NotFoundError') return undefined;
      throw e;
    }
    return new Uint8Array(await (await file.getFile()).arrayBuffer());
  }

  private async write(name: string, bytes: Uint8Array | Blob): Promise<void> {
    const file = await this.dir.getFileHandle(name, { create: true });
    const out = await file.createWritable();
    try {
      await out.write(bytes);
    } catch (e) {
      await out.abort?.().catch(() => undefined); // the old file (if any) stays as it was
      throw e;
    }
    await out.close();
  }

  private async remove(name: string): Promise<void> {
    try {
      await this.dir.removeEntry(name);
    } catch (e) {
      if ((e as { name?: string }).name !== 'NotFoundError') throw e;
    }
  }

  /** Head versions present, newest first. */
  private static heads(names: string[]): number[] {
    const out: number[] = [];
    for (const n of names) {
      const r = parseName(n);
      const version = r?.kind === RecordKind.Head ? manifestKeyVersion(r.key) : undefined;
      if (version !== undefined) out.push(version);
    }
    return out.sort((a, b) => b - a);
  }

  /**
   * The copy's head: the newest head file that holds a head record of its own
   * version. A kill between a file's creation and its first write leaves it
   * empty under its final name (OPFS creates the entry before the swap file is
   * moved in); such a file, or one of a commit cut short, is not the copy's head.
   */
  private async newestHead(names: string[]): Promise<{ version: number; bytes: Uint8Array } | null> {
    for (const version of OpfsCopy.heads(names)) {
      const bytes = await this.read(`h-${hex16(version)}`);
      if (bytes !== undefined && headVersionOf(bytes) === version) return { version, bytes };
    }
    return null;
  }

  async readHead(): Promise<Uint8Array | undefined> {
    try {
      return (await this.newestHead(await this.names()))?.bytes;
    } catch (e) {
      throw copyError(e, 'listing the OPFS copy');
    }
  }

  /**
   * What an open needs to know of the copy, from one listing of its folder:
   * the version of its head and the newest version known to have existed here
   * (knownVersion). On the way, removes the swap files of writes a crash cut
   * short (Chromium leaves `<name>.crswap` behind and never reuses it: each
   * counts against quota); failing to is reported to `onCleanError`, not
   * thrown (it costs quota, not data).
   * REQUIRES: no write to this folder is in flight (the caller holds the store's lock).
   */
  async openCheck(onCleanError: (e: KeepstateError) => void): Promise<{ headVersion: number; knownVersion: number }> {
    let names: string[];
    try {
      names = await this.names();
    } catch (e) {
      throw copyError(e, 'listing the OPFS copy');
    }
    const cleaning = Promise.all(names.filter((n) => n.endsWith('.crswap')).map((n) => this.remove(n))).then(
      () => undefined,
      (e) => onCleanError(copyError(e, 'cleaning the OPFS copy')),
    );
    try {
      const versions = await this.versionsIn(names);
      await cleaning;
      return versions;
    } catch (e) {
      throw copyError(e, 'reading the OPFS copy');
    }
  }

  /** The head's version and the newest known (the head, or a marker of a commit the copy missed) among `names`. */
  private async versionsIn(names: string[]): Promise<{ headVersion: number; knownVersion: number }> {
    const headVersion = (await this.newestHead(names))?.version ?? 0;
    const markers = names.map((n) => (n.startsWith('x-') ? manifestKeyVersion(n.slice(2)) : undefined)).filter((v): v is number => v !== undefined);
    return { headVersion, knownVersion: Math.max(headVersion, ...markers) };
  }

  /** Whether the head of `version` is here (the copy is in step with a commit based on it). */
  async hasHead(version: number): Promise<boolean> {
    try {
      return (await this.read(`h-${hex16(version)}`)) !== undefined;
    } catch (e) {
      throw copyError(e, 'reading the OPFS copy');
    }
  }

  async readForRestore(
    start: (records: StoredRecord[]) => PackRequest | null,
    next: (pack: Uint8Array | undefined) => PackRequest | null,
  ): Promise<void> {
    try {
      const names = await this.names();
      const records: StoredRecord[] = [];
      const head = await this.newestHead(names);
      if (head !== null) records.push({ kind: RecordKind.Head, key: 'head', bytes: head.bytes });
      // Manifests above the head are of commits that never completed here (never
      // acknowledged): leave them out, so that restore neither tries nor reports them.
      const newest = head?.version ?? 0;
      const parsed = names
        .map(parseName)
        .filter((r): r is { kind: RecordKind; key: string } => r !== null)
        .filter((r) => r.kind !== RecordKind.Manifest || (manifestKeyVersion(r.key) ?? 0) <= newest);
      const manifests = await Promise.all(
        parsed.filter((r) => r.kind === RecordKind.Manifest).map(async (r) => ({ ...r, bytes: (await this.read(fileName(r))) ?? new Uint8Array(0) })),
      );
      records.push(...manifests);
      for (const r of parsed) if (r.kind === RecordKind.Pack) records.push({ ...r, bytes: new Uint8Array(0) });
      await feedPacks(records, (key) => this.read(PREFIX[RecordKind.Pack] + key), start, next);
    } catch (e) {
      throw copyError(e, 'reading the OPFS copy');
    }
  }

  async readAll(): Promise<StoredRecord[]> {
    try {
      const names = await this.names();
      const head = await this.newestHead(names);
      const newest = head?.version ?? 0;
      const out: StoredRecord[] = [];
      for (const n of names) {
        const r = parseName(n);
        if (r === null || r.kind === RecordKind.Head) continue;
        if (r.kind === RecordKind.Manifest && (manifestKeyVersion(r.key) ?? 0) > newest) continue;
        const bytes = await this.read(n);
        if (bytes !== undefined) out.push({ ...r, bytes });
      }
      if (head !== null) out.push({ kind: RecordKind.Head, key: 'head', bytes: head.bytes });
      return out;
    } catch (e) {
      throw copyError(e, 'reading the OPFS copy');
    }
  }

  /** Writes a commit's packs (before IndexedDB completes it: their keys are unique to this writer). */
  async writePacks(records: CommitRecords): Promise<void> {
    try {
      await Promise.all(records.puts.filter((r) => r.kind === RecordKind.Pack).map((r) => this.write(fileName(r), r.bytes)));
    } catch (e) {
      throw copyError(e, 'writing packs to the OPFS copy');
    }
  }

  /** Removes the packs of a commit IndexedDB refused (writePacks wrote them early). */
  async removePacks(records: CommitRecords): Promise<void> {
    try {
      await Promise.all(records.puts.filter((r) => r.kind === RecordKind.Pack).map((r) => this.remove(fileName(r))));
    } catch (e) {
      throw copyError(e, 'removing packs from the OPFS copy');
    }
  }

  /**
   * Completes a commit IndexedDB has completed: its manifests and its head
   * (the version becomes restorable from here). What it makes stale goes with
   * tidyAfter. REQUIRES: writePacks(records) resolved.
   */
  async finishCommit(records: CommitRecords): Promise<void> {
    try {
      const head = records.puts.find((r) => r.kind === RecordKind.Head);
      if (head === undefined) throw new KeepstateError('internal', 'a commit without a head record');
      // The manifest and the head at once: until both are written the commit is not
      // acknowledged, and a head whose manifest is missing fails verification, so a
      // restore falls back to the version before.
      await Promise.all(
        records.puts.filter((r) => r.kind !== RecordKind.Pack).map((r) =>
          this.write(r.kind === RecordKind.Head ? `h-${hex16(headVersionOf(r.bytes as Uint8Array))}` : fileName(r), r.bytes),
        ),
      );
    } catch (e) {
      throw copyError(e, 'writing the OPFS copy');
    }
  }

  /**
   * Removes what a completed commit made stale: its deletes and the older head
   * and — for a fresh line (clearFirst) — everything the commit did not write.
   * Nothing here is needed for the commit to be restorable from the copy.
   * REQUIRES: finishCommit(records) resolved.
   */
  async tidyAfter(records: CommitRecords, baseVersion: number): Promise<void> {
    try {
      if (records.clearFirst) {
        const keep = new Set(records.puts.map((r) => (r.kind === RecordKind.Head ? `h-${hex16(headVersionOf(r.bytes as Uint8Array))}` : fileName(r))));
        await this.removeAllBut(keep);
        return;
      }
      const stale = records.deletes.map(fileName);
      if (baseVersion > 0) stale.push(`h-${hex16(baseVersion)}`);
      await Promise.all(stale.map((n) => this.remove(n)));
    } catch (e) {
      throw copyError(e, 'removing stale files of the OPFS copy');
    }
  }

  /** Removes every record file not in `keep`, and the swap files of writes a crash cut short. */
  private async removeAllBut(keep: Set<string>): Promise<void> {
    const names = await this.names();
    const stale = names.filter((n) => n.endsWith('.crswap') || (parseName(n) !== null && !keep.has(n)));
    await Promise.all(stale.map((n) => this.remove(n)));
  }

  /**
   * Makes the copy hold exactly `records` (another backend's whole state): packs
   * and manifests first (skipping those already here with the same length), then
   * the head, then removes what is not among them.
   */
  async replaceAll(records: StoredRecord[]): Promise<void> {
    try {
      const head = records.find((r) => r.kind === RecordKind.Head);
      const names = new Set(await this.names());
      const sizes = new Map<string, number>();
      for (const r of records) {
        if (r.kind === RecordKind.Head || !names.has(fileName(r))) continue;
        // The length alone: a File knows it without its bytes being read.
        sizes.set(fileName(r), (await (await this.dir.getFileHandle(fileName(r))).getFile()).size);
      }
      for (const r of records) {
        if (r.kind === RecordKind.Head || sizes.get(fileName(r)) === r.bytes.length) continue;
        await this.write(fileName(r), r.bytes);
      }
      const keep = new Set(records.filter((r) => r.kind !== RecordKind.Head).map(fileName));
      if (head !== undefined) {
        const name = `h-${hex16(headVersionOf(head.bytes))}`;
        await this.write(name, head.bytes);
        keep.add(name);
      }
      await this.removeAllBut(keep);
    } catch (e) {
      throw copyError(e, 'rewriting the OPFS copy');
    }
  }

  /**
   * Records that the version of `head` exists, without its data (the copy is
   * turned off: a marker file `x-<version>` alone is the evidence that lets a
   * later open see a loss). Markers are never mistaken for a copy's heads.
   */
  async writeMarker(head: Uint8Array): Promise<void> {
    try {
      const name = `x-${hex16(headVersionOf(head))}`;
      await this.write(name, head);
      const names = await this.names();
      await Promise.all(names.filter((n) => n.startsWith('x-') && n !== name).map((n) => this.remove(n)));
    } catch (e) {
      throw copyError(e, 'writing the store marker to OPFS');
    }
  }

  /** The newest version this folder knows existed: a copy's head or a marker. */
  async knownVersion(): Promise<number> {
    try {
      return (await this.versionsIn(await this.names())).knownVersion;
    } catch (e) {
      throw copyError(e, 'listing the OPFS copy');
    }
  }

  /** Removes every file of the store's folder (the app accepted a loss: the evidence goes too). */
  async clear(): Promise<void> {
    try {
      await Promise.all((await this.names()).map((n) => this.remove(n)));
    } catch (e) {
      throw copyError(e, 'clearing the OPFS copy');
    }
  }

  close(): void {
    // Nothing to release: handles need no closing.
  }
}
