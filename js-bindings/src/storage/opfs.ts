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
//
// A small commit goes to the folder's journal instead (journal.ts: one
// append beside IndexedDB, one confirmation after it), where the realm can
// hold a FileSystemSyncAccessHandle (itself, if it is a dedicated Worker, or
// a Worker it starts). The copy is then the files and the journal's
// confirmed records together: a record the journal deleted is dead as a
// file too, and the head is the newest of the journal's and the files'.
// The journal is emptied into files (folded) when it passes JOURNAL_FOLD_BYTES
// and after any commit written as files, so every journal entry is newer
// than every file-written commit but the last.
import { RecordKind, feedPacks, headVersionOf, manifestKey, manifestKeyVersion, recordSize, type CommitRecords, type PackRequest, type RestoreSource, type StoredRecord, type Timing } from './backend.js';
import { KeepstateError, QuotaError } from '../errors.js';
import { JOURNAL_FILE, JOURNAL_HEADER_BYTES, JournalCore, RECORD_PREFIX, headFileName, LocalJournalHost, readOnlyFile, recordName, type JournalHost, type JournalRecords, type JournalState, type OpenSyncFile } from './journal.js';
import { Journal, WorkerJournalHost } from './journal-client.js';

/** The largest commit the journal takes (bytes of its records); larger ones are written as files. */
export const JOURNAL_COMMIT_BYTES = 1 << 20;
/** The journal's size past which it is folded into files after a commit. */
export const JOURNAL_FOLD_BYTES = 4 << 20;

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
  /** Only in dedicated Workers (and a test's fake). */
  createSyncAccessHandle?(): ReturnType<OpenSyncFile>;
}

/** The part of FileSystemDirectoryHandle the copy uses (OPFS's root, or a test's fake). */
export interface CopyDirectory {
  getDirectoryHandle(name: string, options?: { create?: boolean }): Promise<CopyDirectory>;
  getFileHandle(name: string, options?: { create?: boolean }): Promise<FileLike>;
  removeEntry(name: string, options?: { recursive?: boolean }): Promise<void>;
  keys(): AsyncIterable<string>;
  /** A test's directory whose file handles have createSyncAccessHandle (OPFS's own says so
   * by the realm: a dedicated Worker's have it, a page's do not). */
  readonly syncAccessHandles?: boolean;
}

/** @deprecated The former name of CopyDirectory. */
export type MirrorDirectory = CopyDirectory;

/** The kind and key of a file name, or null for a file that is not a record (a browser's swap file). */
function parseName(name: string): { kind: RecordKind; key: string } | null {
  for (const kind of [RecordKind.Head, RecordKind.Manifest, RecordKind.Pack]) {
    if (name.startsWith(RECORD_PREFIX[kind]) && name.length > 2) return { kind, key: name.slice(2) };
  }
  return null;
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

  /** The folder's journal, once started (journalState); null: none here, commits are written as files. */
  private journal: Journal | null | undefined = undefined;
  /** The journal answered once (after that, its failures are the copy's errors, not its absence). */
  private journalWorked = false;
  /** Only the marker is used (the copy is off): a journal is started only to read one that has entries. */
  private markerOnly = false;

  private constructor(
    private readonly dir: CopyDirectory,
    /** This open created the folder (it did not exist). */
    readonly created: boolean,
    private readonly storeName: string,
    private readonly realOpfs: boolean,
    private readonly timing: Timing | null,
  ) {}

  /** This folder serves as the marker of a store whose copy is off (GuardOptions.marker). */
  asMarker(): this {
    this.markerOnly = true;
    return this;
  }

  /**
   * The copy of store `storeName` under `root` (created empty if missing). `realOpfs`: root is
   * OPFS's own (not a test's directory), so a Worker can open the journal where this realm
   * cannot.
   */
  static async open(root: CopyDirectory, storeName: string, realOpfs = false, timing: Timing | null = null): Promise<OpfsCopy> {
    try {
      const top = await root.getDirectoryHandle('keepstate', { create: true });
      const name = encodeURIComponent(storeName);
      const existing = await top.getDirectoryHandle(name).catch((e: { name?: string }) => {
        if (e?.name === 'NotFoundError') return null;
        throw e;
      });
      return new OpfsCopy(existing ?? (await top.getDirectoryHandle(name, { create: true })), existing === null, storeName, realOpfs, timing);
    } catch (e) {
      throw copyError(e, `opening the OPFS copy of store "${storeName}"`);
    }
  }

  /** Where the journal can run: here if this realm has sync handles, else in a Worker (OPFS's
   * own folder, a realm with Workers), else nowhere. */
  private journalHost(): JournalHost | null {
    const proto = (globalThis as { FileSystemFileHandle?: { prototype: object } }).FileSystemFileHandle?.prototype;
    const here = this.realOpfs ? proto !== undefined && 'createSyncAccessHandle' in proto : this.dir.syncAccessHandles === true;
    if (here) return new LocalJournalHost(async () => (await this.dir.getFileHandle(JOURNAL_FILE, { create: true })).createSyncAccessHandle!());
    if (this.realOpfs && typeof Worker === 'function') return new WorkerJournalHost(encodeURIComponent(this.storeName));
    return null;
  }

  /**
   * The folder's journal read from outside (getFile): for a realm that cannot hold it (the
   * copy is off, or its Worker cannot run here) but must see what another realm wrote there.
   * Null if there is no journal file.
   */
  private async readJournalFile(): Promise<JournalCore | null> {
    const file = await this.dir.getFileHandle(JOURNAL_FILE).catch((e: { name?: string }) => {
      if (e?.name === 'NotFoundError') return null;
      throw e;
    });
    if (file === null) return null;
    const bytes = new Uint8Array(await (await file.getFile()).arrayBuffer());
    if (bytes.length <= JOURNAL_HEADER_BYTES) return null; // none, or never written past its header
    const core = new JournalCore(async () => readOnlyFile(bytes));
    await core.acquire();
    return core;
  }

  /**
   * What the journal holds, or null without one. The first use finds out whether the journal
   * can run here at all (a Worker that cannot load, a browser without sync handles): if not,
   * the copy writes files, and reads the journal another realm may have written from outside.
   */
  private async journalState(): Promise<JournalState | null> {
    if (this.journal === undefined) {
      let host: JournalHost | null = null;
      try {
        host = this.markerOnly ? null : this.journalHost();
      } catch {
        // A Worker this realm may not start (a CSP without blob: workers): no journal here.
      }
      this.journal ??= host === null ? null : new Journal(host, this.storeName);
    }
    if (this.journal === null) return (await this.readJournalFile())?.state() ?? null;
    try {
      const started = this.journalWorked ? 0 : performance.now();
      const state = await this.journal.state();
      if (!this.journalWorked) {
        this.timing?.('restore.journal-start', performance.now() - started);
        if (state.readMs !== undefined) this.timing?.('restore.journal-read', state.readMs);
      }
      this.journalWorked = true;
      return state;
    } catch (e) {
      if (this.journalWorked) throw e;
      this.journal.close();
      this.journal = null;
      return (await this.readJournalFile())?.state() ?? null;
    }
  }

  /** The journal's records, or null without a journal. */
  private async journalRecords(): Promise<JournalRecords | null> {
    if (this.journal !== null) await this.journalState(); // starts it, or finds it cannot run here
    if (this.journal === null) return (await this.readJournalFile())?.records() ?? null;
    return this.journal!.records();
  }

  /** Whether the journal is started and holds commits (a marker-only folder's never does). */
  private get journalInUse(): boolean {
    return this.journal !== undefined && this.journal !== null;
  }

  /** Removes store `storeName`'s folder (its copy and markers) under `root`, if there is one. */
  static async removeStore(root: CopyDirectory, storeName: string): Promise<void> {
    // A tab (or this one) may hold the journal's handle, which keeps the folder: it is asked to
    // let go, and the removal retried a while.
    const deadline = performance.now() + 5000;
    for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
      try {
        const top = await root.getDirectoryHandle('keepstate', { create: true });
        await top.removeEntry(encodeURIComponent(storeName), { recursive: true });
        return;
      } catch (e) {
        const name = (e as { name?: string }).name;
        if (name === 'NotFoundError') return;
        if (name !== 'NoModificationAllowedError' || performance.now() > deadline) throw copyError(e, `removing the OPFS copy of store "${storeName}"`);
        Journal.askRelease(storeName);
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
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
   * The newest head file that holds a head record of its own version. A kill
   * between a file's creation and its first write leaves it empty under its
   * final name (OPFS creates the entry before the swap file is moved in); such
   * a file, or one of a commit cut short, is not a head.
   */
  private async newestHeadFile(names: string[]): Promise<{ version: number; bytes: Uint8Array } | null> {
    for (const version of OpfsCopy.heads(names)) {
      const bytes = await this.read(headFileName(version));
      if (bytes !== undefined && headVersionOf(bytes) === version) return { version, bytes };
    }
    return null;
  }

  /**
   * What the copy holds, from one listing of its folder and the journal: its head (the newer
   * of the journal's and the files'), the records only the journal has, and the record files
   * that are live (not deleted by a journal entry, not superseded by it).
   */
  private async contents(names: string[]): Promise<{
    head: { version: number; bytes: Uint8Array } | null;
    inJournal: Map<string, StoredRecord>;
    files: { kind: RecordKind; key: string }[];
  }> {
    const journal = await this.journalRecords();
    const fileHead = await this.newestHeadFile(names);
    const journalVersion = headVersionOf(journal?.head ?? undefined);
    const head = journal?.head != null && journalVersion > (fileHead?.version ?? 0) ? { version: journalVersion, bytes: journal.head } : fileHead;
    const inJournal = new Map((journal?.records ?? []).map((r) => [recordName(r), r]));
    const dead = new Set((journal?.deleted ?? []).map(recordName));
    const files = names
      .map(parseName)
      .filter((r): r is { kind: RecordKind; key: string } => r !== null && r.kind !== RecordKind.Head && !dead.has(recordName(r)) && !inJournal.has(recordName(r)));
    return { head, inJournal, files };
  }

  async readHead(): Promise<Uint8Array | undefined> {
    try {
      return (await this.contents(await this.names())).head?.bytes;
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
    const [file, journal] = await Promise.all([this.newestHeadFile(names), this.journalState()]);
    const headVersion = Math.max(file?.version ?? 0, journal?.headVersion ?? 0);
    const markers = names.map((n) => (n.startsWith('x-') ? manifestKeyVersion(n.slice(2)) : undefined)).filter((v): v is number => v !== undefined);
    return { headVersion, knownVersion: Math.max(headVersion, ...markers) };
  }

  /** Whether the head of `version` is here (the copy is in step with a commit based on it). */
  async hasHead(version: number): Promise<boolean> {
    try {
      if ((await this.journalState())?.versions.includes(version)) return true;
      return (await this.read(headFileName(version))) !== undefined;
    } catch (e) {
      throw copyError(e, 'reading the OPFS copy');
    }
  }

  /** A record's bytes: the journal's, else its file's. */
  private recordBytes(inJournal: Map<string, StoredRecord>, name: string): Promise<Uint8Array | undefined> {
    const r = inJournal.get(name);
    return r !== undefined ? Promise.resolve(r.bytes) : this.read(name);
  }

  async readForRestore(
    start: (records: StoredRecord[]) => PackRequest | null,
    next: (pack: Uint8Array | undefined) => PackRequest | null,
  ): Promise<void> {
    try {
      const { head, inJournal, files } = await this.contents(await this.names());
      const records: StoredRecord[] = [];
      if (head !== null) records.push({ kind: RecordKind.Head, key: 'head', bytes: head.bytes });
      // Manifests above the head are of commits that never completed here (never
      // acknowledged): leave them out, so that restore neither tries nor reports them.
      const newest = head?.version ?? 0;
      const all = [...files, ...inJournal.values()].filter((r) => r.kind !== RecordKind.Manifest || (manifestKeyVersion(r.key) ?? 0) <= newest);
      const manifests = await Promise.all(
        all.filter((r) => r.kind === RecordKind.Manifest).map(async (r) => ({ kind: r.kind, key: r.key, bytes: (await this.recordBytes(inJournal, recordName(r))) ?? new Uint8Array(0) })),
      );
      records.push(...manifests);
      for (const r of all) if (r.kind === RecordKind.Pack) records.push({ kind: r.kind, key: r.key, bytes: new Uint8Array(0) });
      await feedPacks(records, (key) => this.recordBytes(inJournal, RECORD_PREFIX[RecordKind.Pack] + key), start, next);
    } catch (e) {
      throw copyError(e, 'reading the OPFS copy');
    }
  }

  async readAll(): Promise<StoredRecord[]> {
    try {
      const { head, inJournal, files } = await this.contents(await this.names());
      const newest = head?.version ?? 0;
      const out: StoredRecord[] = [];
      for (const r of [...files, ...inJournal.values()]) {
        if (r.kind === RecordKind.Manifest && (manifestKeyVersion(r.key) ?? 0) > newest) continue;
        const bytes = await this.recordBytes(inJournal, recordName(r));
        if (bytes !== undefined) out.push({ kind: r.kind, key: r.key, bytes });
      }
      if (head !== null) out.push({ kind: RecordKind.Head, key: 'head', bytes: head.bytes });
      return out;
    } catch (e) {
      throw copyError(e, 'reading the OPFS copy');
    }
  }

  /**
   * Whether `records` go to the journal: there is one here, the commit is small and all bytes
   * (a Blob pack is a large one), and it does not start a fresh line (that replaces files).
   */
  journalTakes(records: CommitRecords): boolean {
    if (!this.journalInUse || records.clearFirst) return false;
    let bytes = 0;
    for (const r of records.puts) {
      if (!(r.bytes instanceof Uint8Array)) return false;
      bytes += recordSize(r);
    }
    return bytes <= JOURNAL_COMMIT_BYTES;
  }

  /**
   * Appends a commit to the journal (before IndexedDB completes it: unconfirmed, it counts for
   * nothing). Resolves with its offset, the files its deletes name, and whether the copy was in
   * step with the commit's base (its head here). REQUIRES: journalTakes(records).
   */
  async appendToJournal(records: CommitRecords, baseVersion: number): Promise<{ offset: number; fileDeletes: string[]; inStep: boolean }> {
    try {
      const state = await this.journalState();
      if (state === null) throw new KeepstateError('internal', 'the OPFS copy has no journal');
      const version = headVersionOf(records.puts.find((r) => r.kind === RecordKind.Head)?.bytes as Uint8Array | undefined);
      const baseInJournal = state.versions.includes(baseVersion);
      const puts = records.puts.map((r) => ({ kind: r.kind, key: r.key, bytes: r.bytes as Uint8Array }));
      const { offset, fileDeletes } = await this.journal!.append({ version, puts, deletes: records.deletes });
      const inStep = baseVersion === 0 || baseInJournal || (await this.read(headFileName(baseVersion))) !== undefined;
      if (!baseInJournal && baseVersion > 0) fileDeletes.push(headFileName(baseVersion));
      return { offset, fileDeletes, inStep };
    } catch (e) {
      throw copyError(e, "writing the OPFS copy's journal");
    }
  }

  /** Confirms the journal entry at `offset` (IndexedDB has the commit): the copy holds it now. */
  async confirmInJournal(offset: number): Promise<void> {
    try {
      await this.journal!.confirm(offset);
    } catch (e) {
      throw copyError(e, "confirming a commit in the OPFS copy's journal");
    }
  }

  /** Cuts the journal entry at `offset` off again (IndexedDB refused the commit). */
  async undoInJournal(offset: number): Promise<void> {
    try {
      await this.journal!.undo(offset);
    } catch (e) {
      throw copyError(e, "removing a refused commit from the OPFS copy's journal");
    }
  }

  /**
   * After a commit the journal took: removes the files its deletes made stale, and folds the
   * journal into files once it passed JOURNAL_FOLD_BYTES.
   */
  async tidyAfterJournal(fileDeletes: string[]): Promise<void> {
    try {
      await Promise.all(fileDeletes.map((n) => this.remove(n)));
      if (((await this.journalState())?.size ?? 0) > JOURNAL_FOLD_BYTES) await this.fold();
    } catch (e) {
      throw copyError(e, 'removing stale files of the OPFS copy');
    }
  }

  /**
   * Writes the journal's live records as files (and its head), removes the files its entries
   * deleted, then empties it. A kill in between leaves the same records in both places, which
   * reads the same.
   */
  private async fold(): Promise<void> {
    const journal = await this.journalRecords();
    if (!this.journalInUse || journal === null || (journal.head === null && journal.records.length === 0 && journal.deleted.length === 0)) return;
    await Promise.all(journal.records.map((r) => this.write(recordName(r), r.bytes)));
    if (journal.head !== null) await this.write(headFileName(headVersionOf(journal.head)), journal.head);
    await Promise.all(journal.deleted.map((r) => this.remove(recordName(r))));
    await this.journal!.reset();
  }

  /** Writes a commit's packs (before IndexedDB completes it: their keys are unique to this writer). */
  async writePacks(records: CommitRecords): Promise<void> {
    try {
      await Promise.all(records.puts.filter((r) => r.kind === RecordKind.Pack).map((r) => this.write(recordName(r), r.bytes)));
    } catch (e) {
      throw copyError(e, 'writing packs to the OPFS copy');
    }
  }

  /** Removes the packs of a commit IndexedDB refused (writePacks wrote them early). */
  async removePacks(records: CommitRecords): Promise<void> {
    try {
      await Promise.all(records.puts.filter((r) => r.kind === RecordKind.Pack).map((r) => this.remove(recordName(r))));
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
          this.write(r.kind === RecordKind.Head ? headFileName(headVersionOf(r.bytes as Uint8Array)) : recordName(r), r.bytes),
        ),
      );
    } catch (e) {
      throw copyError(e, 'writing the OPFS copy');
    }
  }

  /**
   * Removes what a completed commit made stale: its deletes and the older head
   * and — for a fresh line (clearFirst) — everything the commit did not write.
   * A journal with entries is folded first (they are older than this commit,
   * and the records it still needs must outlive the journal).
   * Nothing here is needed for the commit to be restorable from the copy.
   * REQUIRES: finishCommit(records) resolved.
   */
  async tidyAfter(records: CommitRecords, baseVersion: number): Promise<void> {
    try {
      if (records.clearFirst) {
        const keep = new Set(records.puts.map((r) => (r.kind === RecordKind.Head ? headFileName(headVersionOf(r.bytes as Uint8Array)) : recordName(r))));
        await this.removeAllBut(keep);
        await this.resetJournal();
        return;
      }
      if (((await this.journalState())?.size ?? 0) > JOURNAL_HEADER_BYTES) await this.fold();
      const stale = records.deletes.map(recordName);
      if (baseVersion > 0) stale.push(headFileName(baseVersion));
      await Promise.all(stale.map((n) => this.remove(n)));
    } catch (e) {
      throw copyError(e, 'removing stale files of the OPFS copy');
    }
  }

  /** Empties the journal, if there is one (what it held is in files, or gone). */
  private async resetJournal(): Promise<void> {
    if ((await this.journalState()) !== null && this.journalInUse) await this.journal!.reset();
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
   * the head, then removes what is not among them, and empties the journal.
   */
  async replaceAll(records: StoredRecord[]): Promise<void> {
    try {
      const head = records.find((r) => r.kind === RecordKind.Head);
      const names = new Set(await this.names());
      const sizes = new Map<string, number>();
      for (const r of records) {
        if (r.kind === RecordKind.Head || !names.has(recordName(r))) continue;
        // The length alone: a File knows it without its bytes being read.
        sizes.set(recordName(r), (await (await this.dir.getFileHandle(recordName(r))).getFile()).size);
      }
      for (const r of records) {
        if (r.kind === RecordKind.Head || sizes.get(recordName(r)) === r.bytes.length) continue;
        await this.write(recordName(r), r.bytes);
      }
      const keep = new Set(records.filter((r) => r.kind !== RecordKind.Head).map(recordName));
      if (head !== undefined) {
        const name = headFileName(headVersionOf(head.bytes));
        await this.write(name, head.bytes);
        keep.add(name);
      }
      await this.removeAllBut(keep);
      await this.resetJournal();
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
      const name = `x-${manifestKey(headVersionOf(head))}`; // a marker: named by version as a head file is
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

  /** Removes every file of the store's folder (the app accepted a loss: the evidence goes too);
   * the journal, which this realm may hold open, is emptied instead. */
  async clear(): Promise<void> {
    try {
      const held = (await this.journalState()) !== null && this.journalInUse;
      await Promise.all((await this.names()).filter((n) => !held || n !== JOURNAL_FILE).map((n) => this.remove(n)));
      if (held) await this.journal!.reset();
    } catch (e) {
      throw copyError(e, 'clearing the OPFS copy');
    }
  }

  close(): void {
    // Lets go of the journal's handle (and its Worker); file handles need no closing.
    this.journal?.close();
    this.journal = null;
  }
}
