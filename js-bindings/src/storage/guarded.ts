// GuardedBackend: a backend that wraps the one where versions are decided
// (the authority: IndexedDB, memory or the app's) and keeps acknowledged
// commits from being lost when the browser loses the authority's data.
//
// The guard is the OPFS copy (opfs.ts), or, with the copy off or where OPFS
// cannot write files, only a marker file that records that the store had
// data, so a loss is reported instead of opening empty; or nothing (no OPFS,
// storage 'memory'): then only a loss the authority reports is seen.
//
// Commit: the authority decides (its atomic write checks the head); the copy
// follows it: a commit resolves only after the authority completed it AND the
// copy holds it (its head file written), so an acknowledged commit is always
// in two failure domains. If the copy fails, the commit stays acknowledged by
// the authority, `onCopyError` reports it, and the copy is rewritten whole at
// the next commit (which finds it out of step).
//
// Opening (restoreNewest):
//  1. restore from the authority;
//  2. if it reported a loss, or the copy/marker knows a newer version than
//     it restored: restore from the copy; if that gives a newer version,
//     rewrite the authority from the copy (one atomic write, replacing
//     everything, under the head rule) and report 'data-loss' (recovered);
//     else reject with DataLossError, unless the app said `onDataLoss: 'open'`;
//  3. if the copy is behind what was opened, rewrite it from the authority.
//
// REQUIRES: opens and commits of one store run under the store's lock
// (lock.ts), so tabs never interleave "the authority, then the copy"; the
// lock is released only after `settled()` (the copy's clean-up of the last
// commit, which runs after that commit resolved).
import { ConflictError, CorruptionError, DataLossError, KeepstateError, type VersionFailure } from '../errors.js';
import type { DataLossEvent, DataLossReason, LossProtection } from '../types.js';
import { BackendWrapper, headOf, headVersionOf, type CommitRecords, type HeadRule, type RestoreSource, type StorageBackend, type Timing } from './backend.js';
import type { OpfsCopy } from './opfs.js';

/** What a restore from one source gave: the engine's state, and which version it opened. */
export interface Restored {
  version: number;
  failures: VersionFailure[];
  /** Releases the state (it was not adopted). */
  discard(): void;
}

/** Restores `source` into a new in-memory state (replica.ts). */
export type Restorer = (source: RestoreSource) => Promise<Restored>;

export interface GuardOptions {
  /** The OPFS copy, or null. */
  copy: OpfsCopy | null;
  /** Where the marker goes when there is no copy (the same folder), or null. */
  marker: OpfsCopy | null;
  onDataLoss: 'reject' | 'open';
  /** The head rule, for rewriting the authority from the copy. */
  headRule: HeadRule;
  timing: Timing | null;
}

export class GuardedBackend extends BackendWrapper {
  /** The copy did not take a commit (quota, a browser error): reported, and rewritten whole next time. */
  onCopyError: (error: KeepstateError) => void = () => undefined;
  private readonly copy: OpfsCopy | null;
  private readonly marker: OpfsCopy | null;
  private markerWritten = false;
  /** The copy missed a commit (it failed): what guards the authority's newest commits until
   * the copy catches up at the next commit it takes ('marker' if the missed version was
   * recorded in the copy's folder, else 'none'); null: the copy is in step. */
  private degraded: LossProtection | null = null;
  /** The copy's removal of what the last commit made stale (OpfsCopy.tidyAfter); never rejects. */
  private tidying: Promise<void> = Promise.resolve();

  constructor(
    authority: StorageBackend,
    readonly name: string,
    private readonly options: GuardOptions,
  ) {
    super(authority);
    this.copy = options.copy;
    this.marker = options.marker;
  }

  /** Where the phases of commits and restores go (OpenOptions.debugTimings), or null. */
  get timing(): Timing | null {
    return this.options.timing;
  }

  get lossProtection(): LossProtection {
    if (this.copy !== null) return this.degraded ?? 'copy';
    return this.marker !== null ? 'marker' : 'none';
  }

  /** Resolves once the copy's clean-up after the last commit is done (the lock waits for it). */
  settled(): Promise<void> {
    return this.tidying;
  }

  /**
   * Restores the newest version that exists anywhere (module comment, "Opening").
   * Resolves with the one to adopt and, if data was found missing, the event to emit.
   * REQUIRES: the caller holds the lock.
   */
  async restoreNewest(restore: Restorer): Promise<{ restored: Restored; loss: DataLossEvent | null }> {
    await this.tidying; // a stashed commit written just before, under the same lock
    const timing = this.options.timing;
    const t0 = performance.now();
    // What the copy (or the marker) knows is read while the authority restores: they share
    // nothing, and nothing writes the folder meanwhile (the caller holds the lock). A commit
    // the copy missed left a marker of its version in its folder (writeCommit): `known` is the
    // newest version known to have existed.
    const copyState = (async () => {
      let copyVersion = 0;
      let known = 0;
      if (this.copy !== null) {
        ({ headVersion: copyVersion, knownVersion: known } = await this.copy.openCheck((e) => this.onCopyError(e)));
      } else {
        known = (await this.marker?.knownVersion()) ?? 0;
      }
      timing?.('restore.opfs-check', performance.now() - t0);
      return { copyVersion, known };
    })();
    copyState.catch(() => undefined); // awaited below, unless the authority's restore throws first
    const browserLoss = this.browserDataLoss;
    const authorityHead = (await this.readHead()) ?? null;
    const authorityVersion = headVersionOf(authorityHead ?? undefined);
    const t1 = performance.now();
    timing?.('restore.idb-head', t1 - t0);
    let restored: Restored;
    try {
      restored = await restore(this.down);
    } catch (e) {
      // Every version the authority holds is damaged (the open refuses them): the copy may
      // hold them intact. Without one, the refusal stands and nothing is changed.
      if (!(e instanceof CorruptionError) || this.copy === null) throw e;
      const { copyVersion } = await copyState;
      const fromCopy = copyVersion > 0 ? await restore(this.copy).catch(() => null) : null;
      if (fromCopy === null || fromCopy.version < copyVersion) {
        fromCopy?.discard();
        throw e;
      }
      await this.rewriteAuthority(authorityHead);
      return {
        restored: fromCopy,
        loss: { reason: 'corrupt', browserMessage: '', lastKnownVersion: Math.max(copyVersion, authorityVersion), restoredVersion: fromCopy.version, recovered: fromCopy.version >= authorityVersion, failures: [...e.failures] },
      };
    }
    timing?.('restore.from-idb', performance.now() - t1);
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
    const reason: DataLossReason = browserLoss !== null ? 'browser-reported' : authorityVersion >= known ? 'corrupt' : 'missing';
    const event: DataLossEvent = {
      reason,
      browserMessage: browserLoss?.message ?? '',
      lastKnownVersion: Math.max(known, authorityVersion),
      restoredVersion: restored.version,
      recovered: false,
      failures: restored.failures,
    };
    if (this.copy !== null && copyVersion > restored.version) {
      const fromCopy = await restore(this.copy).catch(() => null);
      // Recovered only if the copy has every version known to have existed: a commit the copy
      // missed (its marker says so) is lost, and that is a loss, not a recovery.
      if (fromCopy !== null && fromCopy.version >= known && fromCopy.version > restored.version) {
        await this.rewriteAuthority(authorityHead);
        restored.discard();
        restored = fromCopy;
        return { restored, loss: { ...event, restoredVersion: restored.version, recovered: true } };
      }
      if (fromCopy !== null && fromCopy.version > restored.version && this.options.onDataLoss === 'open') {
        // The app accepts the loss: the newest the copy has beats what the authority kept.
        await this.rewriteAuthority(authorityHead);
        restored.discard();
        restored = fromCopy;
        event.restoredVersion = restored.version;
      } else {
        fromCopy?.discard();
      }
    }
    if (this.options.onDataLoss === 'reject') {
      restored.discard();
      const said = event.browserMessage === '' ? '' : ` (the browser said: ${event.browserMessage})`;
      throw new DataLossError(
        `store "${this.name}": version ${event.lastKnownVersion} existed, but ${this.label} holds ` +
          `${restored.version === 0 ? 'nothing' : `only version ${restored.version}`}${said}, and no intact copy has it; ` +
          `nothing was opened (openStore(name, { onDataLoss: 'open' }) opens what is left)`,
        event.browserMessage,
        event.lastKnownVersion,
        restored.version,
      );
    }
    // The app accepted the loss: forget the evidence, and let the copy follow what is left.
    await this.clearDataLoss();
    await this.marker?.clear();
    if (this.copy !== null) await this.copy.clear();
    if (this.copy !== null && restored.version > 0) await this.resyncCopy();
    return { restored, loss: event };
  }

  /**
   * Writes one commit: the authority (with the head check), then the copy; resolves
   * when both hold it. A commit the authority refused writes nothing anywhere.
   * REQUIRES: the caller holds the lock, so that tabs never interleave "the authority,
   * then the copy" (and a rebase's catch-up, replay and commit run as one).
   */
  override async writeCommit(
    records: CommitRecords,
    durability: 'strict' | 'relaxed',
    checkHead: (head: Uint8Array | undefined) => KeepstateError | null,
  ): Promise<void> {
    await this.tidying; // the commit before, when several run under one lock (stashes)
    const copy = this.copy;
    const started = performance.now();
    const timing = this.options.timing;
    if (copy === null) {
      await this.down.writeCommit(records, durability, checkHead);
      timing?.('commit.idb', performance.now() - started);
      if (this.marker !== null && !this.markerWritten) await this.writeMarker(records);
      return;
    }
    const baseVersion = headVersionOf(records.expectedHead ?? undefined);
    if (copy.journalTakes(records)) return this.writeCommitToJournal(copy, records, durability, checkHead, baseVersion);
    // Packs go to the copy while the authority writes (their keys are unique to this
    // writer); whether the copy is in step is checked at the same time.
    const packs = copy.writePacks(records);
    if (timing !== null) void packs.then(() => timing('commit.opfs-packs', performance.now() - started), () => undefined);
    const inStep = baseVersion === 0 || records.clearFirst ? Promise.resolve(true) : copy.hasHead(baseVersion);
    packs.catch(() => undefined);
    inStep.catch(() => undefined);
    try {
      await this.down.writeCommit(records, durability, checkHead);
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
        // The commit is acknowledged now; its stale files go while the lock is still held.
        this.tidying = copy.tidyAfter(records, baseVersion).catch((e: KeepstateError) => this.onCopyError(e));
      } else {
        await copy.replaceAll(await this.down.readAll());
      }
      timing?.('commit.opfs-finish', performance.now() - finishing);
      this.degraded = null;
    } catch (e) {
      await this.copyMissed(copy, records, e as KeepstateError);
    }
  }

  /**
   * writeCommit for a commit the copy's journal takes: its entry is appended while the
   * authority writes, and confirmed (one flush) once the authority has it; a refused commit's
   * entry is cut off again. Whether the copy was in step is found out meanwhile.
   */
  private async writeCommitToJournal(
    copy: OpfsCopy,
    records: CommitRecords,
    durability: 'strict' | 'relaxed',
    checkHead: (head: Uint8Array | undefined) => KeepstateError | null,
    baseVersion: number,
  ): Promise<void> {
    const started = performance.now();
    const timing = this.options.timing;
    const entry = copy.appendToJournal(records, baseVersion);
    entry.catch(() => undefined);
    if (timing !== null) void entry.then(() => timing('commit.journal-append', performance.now() - started), () => undefined);
    try {
      await this.down.writeCommit(records, durability, checkHead);
      timing?.('commit.idb', performance.now() - started);
    } catch (e) {
      await entry.then(({ offset }) => copy.undoInJournal(offset)).catch(() => undefined);
      throw e;
    }
    try {
      const { offset, fileDeletes, inStep } = await entry;
      const confirming = performance.now();
      timing?.('commit.both-writes', confirming - started);
      if (inStep) {
        await copy.confirmInJournal(offset);
        this.tidying = copy.tidyAfterJournal(fileDeletes).catch((e: KeepstateError) => this.onCopyError(e));
      } else {
        await copy.undoInJournal(offset);
        await copy.replaceAll(await this.down.readAll());
      }
      timing?.('commit.journal-confirm', performance.now() - confirming);
      this.degraded = null;
    } catch (e) {
      await this.copyMissed(copy, records, e as KeepstateError);
    }
  }

  /**
   * The authority has the commit (it stays acknowledged, as the authority's alone); the
   * copy is rewritten whole at the next commit, which finds it out of step. Until then its
   * folder records that this version existed (a marker), so a later loss of the authority
   * is reported as a loss of it, never as a recovery to the version before.
   */
  private async copyMissed(copy: OpfsCopy, records: CommitRecords, cause: KeepstateError): Promise<void> {
    const version = headVersionOf(headOf(records));
    this.degraded = (await copy.writeMarker(headOf(records)!).then(() => true, () => false)) ? 'marker' : 'none';
    this.onCopyError(
      new KeepstateError(
        cause.code === 'quota' ? 'quota' : 'internal',
        `store "${this.name}": version ${version} is committed in ${this.label} only: the OPFS copy could not take it ` +
          `(${cause.message}); lossProtection is '${this.degraded}' until a commit the copy takes`,
        { cause },
      ),
    );
  }

  override close(): void {
    this.copy?.close();
    this.marker?.close();
    super.close();
  }

  /** Makes the copy hold exactly what the authority holds. A failure (quota) is reported, not
   * thrown: the authority is intact, and the next commit finds the copy out of step. */
  private async resyncCopy(): Promise<void> {
    try {
      await this.copy!.replaceAll(await this.down.readAll());
    } catch (e) {
      this.onCopyError(e as KeepstateError);
    }
  }

  /** Replaces everything the authority holds with the copy's records (one atomic write), if
   * its head is still `expected` (the one read when the restore began). */
  private async rewriteAuthority(expected: Uint8Array | null): Promise<void> {
    const puts = await this.copy!.readAll();
    await this.down.writeCommit({ clearFirst: true, expectedHead: null, puts, deletes: [] }, 'strict', (stored) => {
      const error = this.options.headRule(expected, stored);
      if (!(error instanceof ConflictError)) return error;
      const what = `store "${this.name}": ${this.label} changed while it was being restored from the OPFS copy`;
      return new ConflictError(`${what} (${error.message})`, error.expectedVersion, error.actualVersion);
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
