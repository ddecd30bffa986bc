// Where one store's records live, and the rules that keep acknowledged
// commits from being lost when the browser loses IndexedDB.
//
// IndexedDB decides versions (its commit transaction checks the head). The
// OPFS copy follows it: a commit resolves only after IndexedDB completed it
// AND the copy holds it (its head file written), so an acknowledged commit is
// always in two failure domains. With the copy off (`mirror: false`) or where
// OPFS cannot write files, a marker file (OPFS, when it exists) still records
// that the store had data, so a loss is reported instead of opening empty.
//
// Opening (restore):
//  1. restore from IndexedDB;
//  2. if the browser reported a loss, or the copy/marker knows a newer version
//     than IndexedDB restored: restore from the copy; if that gives a newer
//     version, rewrite IndexedDB from the copy (one transaction, replacing
//     everything) and emit 'data-loss' (recovered); else reject with
//     DataLossError, unless the app said `onDataLoss: 'open'`;
//  3. if the copy is behind what was opened, rewrite it from IndexedDB.
// Opens and commits of one store name run under one Web Lock where the
// browser has them, so tabs never interleave "IndexedDB, then the copy".
import { ConflictError, DataLossError, KeepstateError, type VersionFailure } from './errors.js';
import type { StashedCommitEvent } from './types.js';
import { headOf, headVersionOf, type CommitRecords, type RestoreSource, type StorageBackend, type Timing } from './backend.js';
import { IndexedDBBackend, databaseName } from './idb.js';
import { MemoryBackend } from './memory.js';
import { OpfsCopy, opfsRoot, type MirrorDirectory } from './opfs.js';

/** Why a store's stored data was found missing. */
export type DataLossReason =
  /** The browser reported it had to delete IndexedDB (Chromium: `dataLoss` on the upgrade). */
  | 'browser-reported'
  /** IndexedDB holds an older version (or nothing) than the OPFS copy or marker knows existed. */
  | 'missing'
  /** IndexedDB's newer versions failed verification; the copy held them intact. */
  | 'corrupt';

export interface DataLossEvent {
  reason: DataLossReason;
  /** What the browser said (`dataLossMessage`), '' if nothing. */
  browserMessage: string;
  /** The newest version known to have existed. */
  lastKnownVersion: number;
  /** The version the store opened at. */
  restoredVersion: number;
  /** true: restored from the OPFS copy and written back to IndexedDB, nothing lost; false: opened
   * without the lost data because the app asked for it (`onDataLoss: 'open'`). */
  recovered: boolean;
  /** Why IndexedDB's own versions did not restore (reason 'corrupt'), newest first. */
  failures: VersionFailure[];
}

/** What a restore from one source gave: the engine's store, and which version it opened. */
export interface Restored {
  version: number;
  failures: VersionFailure[];
  /** Releases the engine store (it was not adopted). */
  discard(): void;
}

/**
 * What guards a store's acknowledged commits beyond IndexedDB (Store.lossProtection):
 * the OPFS copy, only the marker, or nothing.
 */
export type LossProtection =
  /** Every commit is also in the OPFS copy: a lost or damaged IndexedDB is restored from it. */
  | 'copy'
  /** The copy is off (`mirror: false`); an OPFS marker still turns a lost IndexedDB into DataLossError. */
  | 'marker'
  /** No OPFS here (WebKitGTK, a realm that refuses it) or `storage: 'memory'`: a lost IndexedDB is
   * noticed only when the browser reports it; otherwise the store opens as it finds it. */
  | 'none';

export interface StorageOptions {
  /** Where versions are decided: IndexedDB (through this factory), or memory (no copy, no marker). */
  backend: { indexedDB: IDBFactory } | 'memory';
  /** true: the OPFS copy where OPFS can write files; false: no copy (a marker only). */
  mirror: boolean;
  /** OPFS's root, or a stand-in; undefined: navigator.storage.getDirectory() where it exists. */
  opfs: MirrorDirectory | undefined;
  onDataLoss: 'reject' | 'open';
  /** OpenOptions.debugTimings, or undefined. */
  timing?: Timing;
}

type Lock = <T>(fn: () => Promise<T>) => Promise<T>;

function lockFor(name: string): Lock {
  const locks = (globalThis as { navigator?: { locks?: { request(n: string, f: () => Promise<unknown>): Promise<unknown> } } })
    .navigator?.locks;
  if (locks === undefined) return (fn) => fn();
  return <T>(fn: () => Promise<T>) => locks.request(databaseName(name), fn) as Promise<T>;
}

export class StoreStorage {
  /** The copy did not take a commit (quota, a browser error): reported, and rewritten whole next time. */
  onCopyError: (error: KeepstateError) => void = () => undefined;
  private markerWritten = false;

  private constructor(
    readonly name: string,
    /** Where versions are decided (IndexedDB, or memory). */
    readonly backend: StorageBackend,
    /** The OPFS copy, or null. */
    readonly copy: OpfsCopy | null,
    /** Where the marker goes when there is no copy (the same folder), or null. */
    private readonly marker: OpfsCopy | null,
    private readonly onDataLoss: 'reject' | 'open',
    lock: Lock,
    /** Where the phases of commits and restores go (OpenOptions.debugTimings), or null. */
    readonly timing: Timing | null = null,
  ) {
    this.withLock = <T>(fn: () => Promise<T>) =>
      new Promise<T>((resolve, reject) => {
        lock(async () => {
          await this.tidying; // where there are no Web Locks, the last commit's clean-up first
          try {
            resolve(await fn());
          } catch (e) {
            reject(e);
          }
          // The caller has its answer; the copy's stale files go before the lock is released,
          // so no other tab's open or commit sees the folder half tidied.
          await this.tidying;
        }).catch(reject);
      });
    if (timing !== null && backend instanceof IndexedDBBackend) backend.timing = timing;
  }

  /**
   * Commits hand packs over as Blobs (readPlan): IndexedDB stores them so (idb.ts), and the copy
   * writes them; only where the database was found to store Blobs (IndexedDBBackend.storesBlobs).
   */
  get packsAsBlobs(): boolean {
    return this.backend instanceof IndexedDBBackend && this.backend.storesBlobs;
  }
  /**
   * Runs `fn` under the store's Web Lock (where the browser has them): opens and commits of one
   * store name never interleave across tabs. Resolves with fn's result as soon as it settles;
   * the lock is held a little longer, until the copy's clean-up after a commit (`tidying`) is done.
   */
  readonly withLock: Lock;
  /** The OPFS copy's removal of what the last commit made stale (OpfsCopy.tidyAfter); never rejects. */
  private tidying: Promise<void> = Promise.resolve();

  get lossProtection(): LossProtection {
    return this.copy !== null ? 'copy' : this.marker !== null ? 'marker' : 'none';
  }

  static async open(name: string, options: StorageOptions): Promise<StoreStorage> {
    const timing = options.timing ?? null;
    if (options.backend === 'memory') return new StoreStorage(name, new MemoryBackend(name), null, null, options.onDataLoss, lockFor(name), timing);
    const root = options.opfs ?? (await opfsRoot());
    const folder = root === undefined ? null : await OpfsCopy.open(root, name);
    const backend = await IndexedDBBackend.open(options.backend.indexedDB, name);
    const withCopy = options.mirror && folder !== null;
    return new StoreStorage(name, backend, withCopy ? folder : null, withCopy ? null : folder, options.onDataLoss, lockFor(name), timing);
  }

  /**
   * Restores the newest version that exists anywhere (module comment, "Opening").
   * `restore(source)` restores from one source into a new engine store. Resolves
   * with the one to adopt and, if data was found missing, the event to emit.
   * REQUIRES: the caller holds the lock (withLock).
   */
  async restoreNewest(restore: (source: RestoreSource) => Promise<Restored>): Promise<{ restored: Restored; loss: DataLossEvent | null }> {
    await this.tidying; // a stashed commit written just before, under the same lock
    const t0 = performance.now();
    // What the copy (or the marker) knows is read while IndexedDB restores: they share nothing,
    // and nothing writes the folder meanwhile (the caller holds the lock).
    const copyState = (async () => {
      await this.copy?.removeSwapFiles().catch((e: KeepstateError) => this.onCopyError(e));
      const copyVersion = this.copy === null ? 0 : await this.copy.headVersion();
      const known = Math.max(copyVersion, this.marker === null ? 0 : await this.marker.knownVersion());
      this.timing?.('restore.opfs-check', performance.now() - t0);
      return { copyVersion, known };
    })();
    copyState.catch(() => undefined); // awaited below, unless IndexedDB's restore throws first
    const browserLoss = this.backend.browserDataLoss;
    const idbHead = await this.backend.headVersion();
    const t1 = performance.now();
    this.timing?.('restore.idb-head', t1 - t0);
    let restored = await restore(this.backend);
    this.timing?.('restore.from-idb', performance.now() - t1);
    let copyVersion: number;
    let known: number;
    try {
      ({ copyVersion, known } = await copyState);
    } catch (e) {
      restored.discard();
      throw e;
    }
    if (browserLoss === null && restored.version >= known) {
      if (this.copy !== null && copyVersion !== restored.version && restored.version > 0) await this.resyncCopy();
      return { restored, loss: null };
    }
    const reason: DataLossReason = browserLoss !== null ? 'browser-reported' : idbHead >= known ? 'corrupt' : 'missing';
    const event: DataLossEvent = {
      reason,
      browserMessage: browserLoss?.message ?? '',
      lastKnownVersion: Math.max(known, idbHead),
      restoredVersion: restored.version,
      recovered: false,
      failures: restored.failures,
    };
    if (this.copy !== null && copyVersion > restored.version) {
      const fromCopy = await restore(this.copy).catch(() => null);
      if (fromCopy !== null && fromCopy.version > restored.version) {
        await this.rewriteIndexedDB(idbHead);
        restored.discard();
        restored = fromCopy;
        return { restored, loss: { ...event, restoredVersion: restored.version, recovered: true } };
      }
      fromCopy?.discard();
    }
    if (this.onDataLoss === 'reject') {
      restored.discard();
      const said = event.browserMessage === '' ? '' : ` (the browser said: ${event.browserMessage})`;
      throw new DataLossError(
        `store "${this.name}": version ${event.lastKnownVersion} existed, but IndexedDB holds ` +
          `${restored.version === 0 ? 'nothing' : `only version ${restored.version}`}${said}, and no intact copy has it; ` +
          `nothing was opened (openStore(name, { onDataLoss: 'open' }) opens what is left)`,
        event.browserMessage,
        event.lastKnownVersion,
        restored.version,
      );
    }
    // The app accepted the loss: forget the evidence, and let the copy follow what is left.
    await this.backend.clearDataLoss();
    await this.marker?.clear();
    if (this.copy !== null) await this.copy.clear();
    if (this.copy !== null && restored.version > 0) await this.resyncCopy();
    return { restored, loss: event };
  }

  /**
   * Writes one commit: IndexedDB (with the head check), then the copy; resolves
   * when both hold it. A commit IndexedDB refused writes nothing anywhere.
   * REQUIRES: the caller holds the lock (withLock), so that tabs never
   * interleave "IndexedDB, then the copy" (and a rebase's catch-up, replay
   * and commit run as one).
   */
  async commit(
    records: CommitRecords,
    baseVersion: number,
    durability: 'strict' | 'relaxed',
    checkHead: (head: Uint8Array | undefined) => KeepstateError | null,
  ): Promise<void> {
    await this.tidying; // the commit before, when several run under one lock (writeStashes)
    const copy = this.copy;
    const started = performance.now();
    const timing = this.timing;
    if (copy === null) {
      await this.backend.writeCommit(records, durability, checkHead);
      timing?.('commit.idb', performance.now() - started);
      if (this.marker !== null && !this.markerWritten) await this.writeMarker(records);
      return;
    }
    // Packs go to the copy while IndexedDB writes (their keys are unique to this
    // writer); whether the copy is in step is checked at the same time.
    const packs = copy.writePacks(records);
    if (timing !== null) void packs.then(() => timing('commit.opfs-packs', performance.now() - started), () => undefined);
    const inStep = baseVersion === 0 || records.clearFirst ? Promise.resolve(true) : copy.hasHead(baseVersion);
    packs.catch(() => undefined);
    inStep.catch(() => undefined);
    try {
      await this.backend.writeCommit(records, durability, checkHead);
      timing?.('commit.idb', performance.now() - started);
    } catch (e) {
      // Nothing may stay of a refused commit (a retry at the same version reuses its pack keys).
      await packs.then(() => copy.removePacks(records)).catch(() => undefined);
      throw e;
    }
    try {
      await packs;
      const finishing = performance.now();
      timing?.('commit.both-writes', finishing - started);
      if (await inStep) {
        await copy.finishCommit(records);
        // The commit is acknowledged now; its stale files go while the lock is still held (withLock).
        this.tidying = copy.tidyAfter(records, baseVersion).catch((e: KeepstateError) => this.onCopyError(e));
      } else {
        await copy.replaceAll(await this.backend.readAll());
      }
      timing?.('commit.opfs-finish', performance.now() - finishing);
    } catch (e) {
      // IndexedDB has the commit (it stays acknowledged); the copy is rewritten whole at
      // the next commit, which finds it out of step.
      this.onCopyError(e as KeepstateError);
    }
  }

  /**
   * Writes the commits pages stashed as they were unloaded (backend.ts StashedCommit), oldest
   * first, each with the head check it would have had: dropped if another writer committed
   * after its base, skipped if it is the stored head already (a kill between writing it and
   * removing the stash). Adds what became of each to `events`; resolves whether one was
   * written. REQUIRES: the caller holds the lock.
   */
  async writeStashes(durability: 'strict' | 'relaxed', events: StashedCommitEvent[]): Promise<boolean> {
    let wrote = false;
    for (const stash of await this.backend.readStashes()) {
      const { records } = stash;
      const ownHead = headOf(records) ?? null;
      const version = headVersionOf(ownHead ?? undefined);
      const alreadyWritten = new KeepstateError('internal', 'the stashed commit is the stored head');
      const check = (head: Uint8Array | undefined) => {
        if (sameBytes(head ?? null, records.expectedHead)) return null;
        if (sameBytes(head ?? null, ownHead)) return alreadyWritten;
        return new ConflictError(
          `store "${this.name}": a page stashed a commit based on version ${stash.baseVersion}, but another writer committed after it`,
          stash.baseVersion,
          headVersionOf(head),
        );
      };
      try {
        await this.commit(records, stash.baseVersion, durability, check);
        wrote = true;
        this.backend.announce(version, stash.writer);
        events.push({ outcome: 'committed', version, capturedAt: stash.at });
      } catch (e) {
        if (e === alreadyWritten) events.push({ outcome: 'committed', version, capturedAt: stash.at });
        else if (e instanceof ConflictError) events.push({ outcome: 'dropped', version: stash.baseVersion, capturedAt: stash.at, error: e });
        else throw e;
      }
      await this.backend.deleteStash(stash.writer);
    }
    return wrote;
  }

  close(): void {
    this.backend.close();
  }

  /** Makes the copy hold exactly what IndexedDB holds. A failure (quota) is reported, not thrown:
   * IndexedDB is intact, and the next commit finds the copy out of step and tries again. */
  private async resyncCopy(): Promise<void> {
    try {
      await this.copy!.replaceAll(await this.backend.readAll());
    } catch (e) {
      this.onCopyError(e as KeepstateError);
    }
  }

  /** Replaces everything IndexedDB holds with the copy's records (one transaction). */
  private async rewriteIndexedDB(expectedHead: number): Promise<void> {
    const puts = await this.copy!.readAll();
    await this.backend.writeCommit({ clearFirst: true, expectedHead: null, puts, deletes: [] }, 'strict', (head) => {
      const stored = headVersionOf(head);
      return stored === expectedHead
        ? null
        : new ConflictError(`store "${this.name}": IndexedDB changed while it was being restored from the OPFS copy`, expectedHead, stored);
    });
  }

  private async writeMarker(records: CommitRecords): Promise<void> {
    const head = headOf(records);
    if (head === undefined) return;
    try {
      await this.marker!.writeMarker(head);
      this.markerWritten = true;
    } catch (e) {
      this.onCopyError(e as KeepstateError);
    }
  }
}

function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
