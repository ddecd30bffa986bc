// SyncClient: one synced store's exchange with its server (docs/sync.md).
//
// One tab per store talks to the server (a Web Lock, `keepstate-sync:<name>`);
// the other tabs write and commit locally as always, and the tab holding the
// lock pushes their journaled mutations too, since they are in the state it
// follows. A round is: push every journaled mutation not yet pushed, in
// batches; pull what changed since the server version; adopt it and replay
// what is still pending (Writer.adoptPull: no commit captures half of it);
// commit. Rounds run one at a time; a request during one makes one more.
// A poke that carries its commit's patch, from the server version this replica
// is at, with nothing pending here, is adopted as a pull's answer would be,
// without a pull (the round's push would send nothing).
//
// Invariant: every key without a write mark has the server's value at the
// meta's server version (replica/src/sync.cc keeps it; a pull asks for the
// marked keys' values and is adopted only if no mutation was journaled while
// it was on the wire — else it is asked again).
import { KeepstateError } from '../errors.js';
import type { StoreEmitter } from '../events.js';
import type { JournaledMutation, Replica } from '../replica.js';
import { verifyImport } from '../snapshot-verify.js';
import type { SyncEvent, SyncFailure, SyncOptions, SyncStatus } from '../types.js';
import type { Writer } from '../writer.js';
import { readPoke, readPullAnswer, readPushAnswer, toBase64, type FailedMutation, type Poke, type PushAnswer } from './protocol.js';

const PUSH_BATCH_COUNT = 1000;
const PUSH_BATCH_BYTES = 4 << 20;
const PULL_ATTEMPTS = 5;
const DEFAULT_PULL_INTERVAL_MS = 30_000;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;

type SocketLike = {
  onopen: (() => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: (() => void) | null;
  onerror: (() => void) | null;
  send(text: string): void;
  close(): void;
};
type SocketFactory = new (url: string) => SocketLike;

export class SyncClient {
  private readonly base: string;
  private readonly fetch: typeof fetch;
  private readonly Socket: SocketFactory | undefined;
  private stopped = false;
  private running: Promise<void> | null = null;
  private again = false;
  /** The newest poke heard while a round ran: the next round's, if the round did not reach its version. */
  private heard: Poke | null = null;
  /** Mutations up to this id were sent in this session (a resend after a reload is skipped by the server). */
  private pushedUpTo = 0;
  private socket: SocketLike | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private retryMs = RETRY_MIN_MS;
  private releaseLeadership: (() => void) | null = null;
  private readonly stopListening: Array<() => void> = [];
  private readonly reported = new Set<number>();
  private current: SyncStatus;

  constructor(
    private readonly writer: Writer,
    private readonly options: SyncOptions,
    private readonly events: StoreEmitter,
  ) {
    this.base = `${options.url.replace(/\/+$/, '')}/v1/spaces/${encodeURIComponent(options.space)}`;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.Socket = (options.WebSocket ?? (globalThis as { WebSocket?: unknown }).WebSocket) as SocketFactory | undefined;
    const meta = this.replica.syncState();
    this.current = {
      leader: false,
      connected: false,
      pending: meta === undefined ? 0 : meta.nextMutationId - 1 - meta.lastMutationId,
      serverVersion: meta?.version ?? 0,
      lastMutationId: meta?.lastMutationId ?? 0,
      lastSyncAt: null,
      error: null,
    };
  }

  private get replica(): Replica {
    return this.writer.replica;
  }

  get status(): SyncStatus {
    return { ...this.current };
  }

  /** Makes the store synced (its first time: a client id) and starts syncing once this tab leads. */
  start(): void {
    if (this.replica.syncState() === undefined) this.replica.syncInit(randomClientId());
    const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
    if (locks === undefined) return this.lead();
    void locks.request(`keepstate-sync:${this.writer.name}`, () => {
      if (this.stopped) return;
      this.lead();
      return new Promise<void>((resolve) => (this.releaseLeadership = resolve));
    });
  }

  private lead(): void {
    if (this.stopped) return;
    this.update({ leader: true });
    const request = () => this.request();
    // A commit here starts a round if it holds mutations not pushed yet (not one that only
    // adopted the server's state: that would pull again for nothing).
    const committed = () => {
      const meta = this.replica.syncState();
      if (meta !== undefined && meta.nextMutationId - 1 > Math.max(meta.lastMutationId, this.pushedUpTo)) void this.request();
    };
    // Another tab's commit may hold mutations to push: once this tab has caught up with it.
    const caughtUp = () => void this.writer.settled().then(request, request);
    this.stopListening.push(this.events.on('commit', committed), this.events.on('remote-commit', caughtUp));
    const online = () => {
      this.retryMs = RETRY_MIN_MS;
      this.request();
    };
    globalThis.addEventListener?.('online', online);
    this.stopListening.push(() => globalThis.removeEventListener?.('online', online));
    this.connect();
    this.request();
  }

  /**
   * Runs a round now (or once more after the one running); resolves when it has run. With a
   * poke's patch, the round adopts it instead of pulling where it can.
   */
  request(poke?: Poke): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running !== null) {
      // A poke for a version the running round reaches (its own push's, often) needs no round.
      if (poke === undefined) this.again = true;
      else if (poke.version > (this.heard?.version ?? 0)) this.heard = poke;
      return this.running;
    }
    this.running = (async () => {
      let patched = poke;
      do {
        this.again = false;
        await this.round(patched);
        patched = this.takeHeard();
      } while ((this.again || patched !== undefined) && !this.stopped);
      this.running = null;
    })();
    return this.running;
  }

  /** Stops: no more rounds, the socket closed, the lock given up (the round running finishes). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    for (const stop of this.stopListening.splice(0)) stop();
    this.socket?.close();
    this.socket = null;
    this.releaseLeadership?.();
    await this.running;
  }

  private async round(poke?: Poke): Promise<void> {
    if (!this.current.leader) return;
    // What is pending is known locally, server or not.
    const meta = this.replica.syncState();
    if (meta !== undefined) this.update({ pending: meta.nextMutationId - 1 - meta.lastMutationId });
    try {
      if (poke === undefined || !(await this.adoptPatch(poke))) {
        const pushed = await this.push();
        // The poke of this push's commit, if it came before the answer, is the pull's answer.
        const own = this.takeHeard();
        if (pushed === null || own === undefined || !(await this.adoptPatch(own, pushed))) await this.pull();
      }
      this.retryMs = RETRY_MIN_MS;
      this.update({ lastSyncAt: Date.now(), error: null });
      this.schedule(this.options.pullIntervalMs ?? DEFAULT_PULL_INTERVAL_MS);
    } catch (e) {
      if (this.stopped) return;
      const error = e instanceof KeepstateError ? e : new KeepstateError('unsupported', `sync: ${(e as Error)?.message ?? String(e)}`, { cause: e });
      this.update({ error });
      this.schedule(this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    }
  }

  /** The poke heard during a round, if it is newer than the version the round reached. */
  private takeHeard(): Poke | undefined {
    const poke = this.heard;
    this.heard = null;
    return poke !== null && poke.version > this.current.serverVersion ? poke : undefined;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.request();
    }, ms);
  }

  // --- Push ---------------------------------------------------------------------------

  /** Pushes every mutation not pushed yet; the last push's answer, null if there was none. */
  private async push(): Promise<PushAnswer | null> {
    let last: PushAnswer | null = null;
    for (;;) {
      const meta = this.replica.syncState()!;
      const after = Math.max(meta.lastMutationId, this.pushedUpTo);
      const batch = this.replica.syncPending(after, PUSH_BATCH_COUNT, PUSH_BATCH_BYTES);
      if (batch.length === 0) return last;
      const answer = readPushAnswer(
        await this.post('push', {
          client: meta.client,
          mutations: batch.map((m) => ({ id: m.id, name: m.name, args: toBase64(m.args) })),
        }),
      );
      this.pushedUpTo = batch[batch.length - 1]!.id;
      this.report(answer.failed, batch);
      last = answer;
    }
  }

  // --- Pull ---------------------------------------------------------------------------

  private async pull(): Promise<void> {
    for (let attempt = 1; ; ++attempt) {
      const meta = this.replica.syncState()!;
      const marked = this.replica.syncMarked();
      const answer = readPullAnswer(
        await this.post('pull', { client: meta.client, since: meta.version, keys: marked.map(toBase64) }),
      );
      // A space without state yet: nothing to download.
      if (answer.full && answer.version === 0) Object.assign(answer, { full: false, entries: [] });
      const nothingNew =
        !answer.full && answer.version === meta.version && answer.lastMutationId <= meta.lastMutationId && answer.entries!.length === 0;
      if (nothingNew) return this.update({ pending: meta.nextMutationId - 1 - meta.lastMutationId });
      const snapshot = answer.full ? await this.download() : null;
      // The snapshot's verified import until the replica adopts it: discarded if it does not.
      let unadopted = snapshot?.id;
      let adopted: boolean;
      try {
        adopted = await this.writer.adoptPull(async (replica) => {
          const now = replica.syncState()!;
          // A mutation journaled meanwhile may have written keys the answer lacks: ask again.
          if (now.nextMutationId !== meta.nextMutationId || now.version !== meta.version) return false;
          const journal = replica.syncPending(0, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
          if (snapshot !== null) {
            replica.syncAdopt(snapshot.id);
            unadopted = undefined;
            replica.syncApply(snapshot.version, snapshot.lastMutationId, []);
          } else {
            replica.syncApply(answer.version, answer.lastMutationId, answer.entries!);
          }
          const last = snapshot?.lastMutationId ?? answer.lastMutationId;
          this.report(answer.failed, journal);
          for (const m of journal) if (m.id > last) await this.writer.replay(m.id);
          return true;
        });
      } finally {
        if (unadopted !== undefined) this.writer.wasm.module._keepstate_import_discard(unadopted);
      }
      if (adopted) return this.committed();
      if (attempt === PULL_ATTEMPTS) throw new KeepstateError('busy', `sync: ${PULL_ATTEMPTS} pulls in a row were overtaken by local writes; trying again later`);
    }
  }

  /**
   * Adopts `poke`'s patch as a pull's answer would be, if it follows the server version this
   * replica is at, and false if a pull is needed. Without `pushed`, only with nothing pending
   * here (no keys to ask for, no mutations to replay). With `pushed`, the answer of this
   * client's push that the poke's commit holds (the same version): its last mutation id says
   * which mutations the commit took, the others are replayed, and every key local work
   * marked must be in the patch (the server's value of any other is not known here).
   */
  private async adoptPatch(poke: Poke, pushed?: PushAnswer): Promise<boolean> {
    const patch = poke.patch;
    if (patch === undefined || (pushed !== undefined && pushed.version !== poke.version)) return false;
    const patched = new Set(patch.entries.map(([key]) => toBase64(key)));
    const follows = (replica: Replica) => {
      const m = replica.syncState();
      if (m === undefined || m.version !== patch.from) return false;
      const marked = replica.syncMarked();
      if (pushed === undefined) return m.nextMutationId - 1 === m.lastMutationId && marked.length === 0;
      return marked.every((key) => patched.has(toBase64(key)));
    };
    if (!follows(this.replica)) return false;
    const adopted = await this.writer.adoptPull(async (replica) => {
      // A mutation journaled meanwhile may have marked another key, or another round ran.
      if (!follows(replica)) return false;
      const last = pushed?.lastMutationId ?? replica.syncState()!.lastMutationId;
      const journal = pushed === undefined ? [] : replica.syncPending(last, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
      replica.syncApply(poke.version, last, patch.entries);
      for (const m of journal) await this.writer.replay(m.id);
      return true;
    });
    if (adopted) await this.committed();
    return adopted;
  }

  /** After an adopted pull or patch: commits it locally and says where sync stands. */
  private async committed(): Promise<void> {
    await this.writer.commit();
    const after = this.replica.syncState()!;
    this.update({ serverVersion: after.version, lastMutationId: after.lastMutationId, pending: after.nextMutationId - 1 - after.lastMutationId });
  }

  /**
   * The space's snapshot (a full pull), verified page by page into a new import of the module
   * as it downloads (the store goes on meanwhile: an import is not the store's): its import id.
   */
  private async download(): Promise<{ version: number; lastMutationId: number; id: number }> {
    const meta = this.replica.syncState()!;
    const response = await this.fetch(`${this.base}/snapshot?client=${encodeURIComponent(meta.client)}`, { headers: this.headers() });
    if (!response.ok) throw await this.failure('snapshot', response);
    const version = Number(response.headers.get('Keepstate-Version'));
    const lastMutationId = Number(response.headers.get('Keepstate-Last-Mutation-Id'));
    if (!Number.isSafeInteger(version) || !Number.isSafeInteger(lastMutationId)) {
      throw new KeepstateError('corruption', 'sync: the snapshot answer lacks Keepstate-Version or Keepstate-Last-Mutation-Id');
    }
    const { id } = await verifyImport(this.writer.wasm, response, undefined, undefined);
    return { version, lastMutationId, id };
  }

  // --- Pokes --------------------------------------------------------------------------

  private connect(): void {
    if (this.stopped || this.Socket === undefined || this.options.websocket === false) return;
    const socket = new this.Socket(`${this.base.replace(/^http/, 'ws')}/poke`);
    this.socket = socket;
    socket.onopen = () => {
      socket.send(JSON.stringify({ token: this.options.token ?? '' }));
      this.update({ connected: true });
    };
    socket.onmessage = (event) => {
      let poke: Poke;
      try {
        poke = readPoke(JSON.parse(String(event.data)));
      } catch {
        return; // not a poke: the next one, or the pull interval, brings the version
      }
      if (poke.version > this.current.serverVersion) void this.request(poke);
    };
    socket.onerror = () => undefined;
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.update({ connected: false });
      if (!this.stopped) setTimeout(() => this.connect(), this.retryMs);
    };
  }

  // --- Helpers ------------------------------------------------------------------------

  private headers(): Record<string, string> {
    return this.options.token === undefined ? {} : { Authorization: `Bearer ${this.options.token}` };
  }

  private async post(what: 'push' | 'pull', body: unknown): Promise<unknown> {
    const response = await this.fetch(`${this.base}/${what}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...this.headers() },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw await this.failure(what, response);
    return response.json();
  }

  private async failure(what: string, response: Response): Promise<KeepstateError> {
    const text = (await response.text().catch(() => '')).slice(0, 500);
    const code = response.status === 401 || response.status === 403 ? 'unsupported' : response.status === 409 ? 'conflict' : 'unsupported';
    return new KeepstateError(code, `sync: ${what} answered ${response.status}${text === '' ? '' : `: ${text}`}`);
  }

  /** Emits the server's failures of this client's mutations, each once, with their names where known. */
  private report(failed: FailedMutation[], known: JournaledMutation[]): void {
    const fresh = failed.filter((f) => !this.reported.has(f.id));
    if (fresh.length === 0) return;
    const names = new Map(known.map((m) => [m.id, m.name]));
    const failures: SyncFailure[] = fresh.map((f) => {
      this.reported.add(f.id);
      return { id: f.id, name: names.get(f.id), code: f.code, message: f.message };
    });
    this.events.emit('sync', { status: this.status, failed: failures });
  }

  private update(change: Partial<SyncStatus>): void {
    const next = { ...this.current, ...change };
    if ((Object.keys(next) as (keyof SyncStatus)[]).every((k) => next[k] === this.current[k])) return;
    this.current = next;
    const event: SyncEvent = { status: this.status, failed: [] };
    this.events.emit('sync', event);
  }
}

function randomClientId(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
