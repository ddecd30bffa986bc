// Pool: an elastic pool of read replicas of one store, each in a Worker
// (pool-worker.ts) with its own module instance and a Reader (reader.ts) of
// the committed state, on which named read-only queries run off the page's
// thread. docs/pool.md has the API, the policy and its defaults.
//
// Policy (the seed article's, configurable): a replica is added when the
// mean queue wait over the last `windowMs` passes `scaleUpWaitMs` (80 ms),
// one at a time, up to `max` (hardwareConcurrency - 1, at least 1) and
// within `memoryBudget` (each replica holds a copy of the state); a replica
// idle for `idleMs` (30 s) is removed, down to `min` (0). With no replica, a
// query starts one at once.
//
// Invariants:
//  - Every call settles exactly once: with an answer read at a committed
//    version >= its minVersion, or with a typed error. A replica that dies
//    with a query on it (terminated, its module trapped, its Worker failed)
//    is replaced, and the query runs again on another replica (queries are
//    read-only, so running one twice is harmless), at most `retries` more
//    times; then it rejects with ReplicaLostError. Never a lost or a wrong
//    answer.
//  - A replica runs one query at a time; queries are dispatched in the order
//    they were submitted (a rerun goes first).
//  - Nothing here writes the store or takes its lock; closing the store
//    closes the pool.
//  - No SharedArrayBuffer: messages only (the compiled module is posted).
import { ClosedError, InvalidArgumentError, KeepstateError, codeNumber, errorFromStatus } from './errors.js';
import type { KeepstateModuleFactory } from './keepstate.js';
import { storeOrigin } from './origins.js';
import { serveReplica, type ErrorData, type FromReplica, type ReplicaEndpoint, type ToReplica } from './replica-host.js';
import type { Store } from './store.js';
import { compiledSource, type CompiledSource, type ModuleSource } from './wasm.js';

/** A replica was lost (its Worker died, its module trapped) with the query on it, too many times. */
export class ReplicaLostError extends KeepstateError {
  constructor(message: string) {
    super('closed', message);
    this.name = 'ReplicaLostError';
  }
}

export interface PoolOptions {
  /** Replicas kept even when idle. Default 0. */
  min?: number;
  /** Most replicas. Default navigator.hardwareConcurrency - 1, at least 1. */
  max?: number;
  /** Add a replica when the mean queue wait over the last `windowMs` exceeds this. Default 80. */
  scaleUpWaitMs?: number;
  /** The window of queue waits the policy and stats() look at, in ms. Default 1000. */
  windowMs?: number;
  /** Remove a replica idle this long (ms), down to `min`. Default 30000. */
  idleMs?: number;
  /**
   * Bytes all replicas together may hold: a replica is not added if (replicas + 1) x the
   * memory of the largest replica would exceed it. Default 1 GiB.
   */
  memoryBudget?: number;
  /** The URL of an ES module whose exported functions `(store, args) => result` are the JS queries. */
  queries?: URL | string;
  /** How many more times a query lost with its replica runs elsewhere before it rejects. Default 1. */
  retries?: number;
  /** How long a query waits for its minVersion to be committed before it rejects ('busy'). Default 30000. */
  versionTimeoutMs?: number;
  /**
   * 'worker' (default where Workers exist): one Worker per replica. 'inline': replicas in this
   * realm, one module instance each, through the same messages (Node, tests; no parallelism).
   */
  mode?: 'worker' | 'inline';
  /** The module: default the store's (openStore's `module`). A module of your own needs glueUrl. */
  module?: ModuleSource | KeepstateModuleFactory;
  /** The IndexedDB factory for inline replicas (Node tests); default the store's. */
  indexedDB?: IDBFactory;
}

export interface CallOptions {
  /** The lowest committed version the query may read. Default: the store's version when called. */
  minVersion?: number;
}

export interface ScaleStep {
  /** When, in performance.now() ms. */
  at: number;
  direction: 'up' | 'down';
  /** Replicas after the step (starting ones included). */
  replicas: number;
  /** Why: 'min', 'first query', 'queue wait 123 ms > 80 ms', 'idle 30000 ms', 'replace: ...'. */
  reason: string;
}

export interface PoolStats {
  /** Replicas started or starting. */
  replicas: number;
  starting: number;
  busy: number;
  queued: number;
  /** Mean and 95th percentile of queue waits (ms) of queries dispatched in the last window, and of those still queued. */
  meanWaitMs: number;
  p95WaitMs: number;
  /** Queries answered, rerun after a replica was lost, and rejected. */
  answered: number;
  rerun: number;
  failed: number;
  /** Wasm memory of the largest replica (bytes): what each one costs. */
  replicaBytes: number;
  /** The newest replica's start (module instance + restore), in ms; null before one started. */
  coldStartMs: number | null;
  /** The newest catch-up of a replica after a commit notice (read and apply the changed pages), in ms. */
  followMs: number | null;
  /** The newest scale steps, oldest first (at most 50). */
  steps: ScaleStep[];
  /** Each replica: its id, state and the version it holds. */
  list: Array<{ id: number; state: SlotState; version: number; queries: number }>;
}

export interface PoolEvents {
  /** A replica was added or removed. */
  scale: ScaleStep;
  /** The stats changed (at most once per tick: windowMs / 4). */
  stats: PoolStats;
}

/** What a call resolves with: the query's result and the committed version it read. */
export interface PoolAnswer<R = unknown> {
  version: number;
  result: R;
  /** How long the query waited for a replica (ms): from call() to the dispatch of the run that answered. */
  waitMs: number;
}

type SlotState = 'starting' | 'idle' | 'busy';

interface Job {
  name: string;
  args: unknown;
  minVersion: number;
  submitted: number;
  /** When its latest run was handed to a replica (performance.now()). */
  dispatched: number;
  attempts: number;
  lostTo: string[];
  resolve(answer: PoolAnswer): void;
  reject(error: unknown): void;
}

/** One replica, as the pool sees it. */
interface Slot {
  id: number;
  link: ReplicaLink;
  state: SlotState;
  job: Job | null;
  jobId: number;
  idleSince: number;
  version: number;
  queries: number;
}

/** How the pool reaches one replica: a Worker, or an inline endpoint. */
interface ReplicaLink {
  post(message: ToReplica, transfer?: Transferable[]): void;
  terminate(): void;
}

function rebuild(error: ErrorData): KeepstateError {
  let e: KeepstateError;
  try {
    e = errorFromStatus(codeNumber(error.code as never), error.message);
  } catch {
    e = new KeepstateError('internal', error.message);
  }
  return e;
}

const DEFAULTS = { min: 0, scaleUpWaitMs: 80, windowMs: 1000, idleMs: 30_000, memoryBudget: 2 ** 30, retries: 1, versionTimeoutMs: 30_000 };

/** Opens a pool of read replicas of `store` (docs/pool.md). Closing the store closes it. */
export async function openPool(store: Store, options: PoolOptions = {}): Promise<Pool> {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('openPool: options must be an object');
  const origin = storeOrigin(store);
  if (store.statusNotifier.closed) throw new ClosedError(`store "${store.name}" is closed`);
  const storage = origin?.storage ?? 'indexeddb';
  if (typeof storage === 'object') throw new InvalidArgumentError('openPool: a store on a backend of your own cannot be read from a Worker (IndexedDB or memory only)');
  const mode = options.mode ?? (typeof Worker !== 'undefined' ? 'worker' : 'inline');
  if (mode === 'worker' && typeof Worker === 'undefined') throw new InvalidArgumentError("openPool: no Worker in this realm; use mode: 'inline'");
  if (mode === 'worker' && storage === 'memory') throw new InvalidArgumentError("openPool: a store with storage 'memory' lives in this realm only: use mode: 'inline'");
  const source = await compiledSource(options.module ?? origin?.module);
  return new Pool(store, source, { ...options, mode, storage, indexedDB: options.indexedDB ?? origin?.indexedDB });
}

type Resolved = PoolOptions & { mode: 'worker' | 'inline'; storage: 'indexeddb' | 'memory' };

export class Pool {
  private readonly slots = new Map<number, Slot>();
  private readonly queue: Job[] = [];
  private nextSlot = 1;
  private nextJob = 1;
  private closed = false;
  private readonly waits: Array<{ at: number; ms: number }> = [];
  private readonly steps: ScaleStep[] = [];
  private readonly listeners = { scale: new Set<(s: ScaleStep) => void>(), stats: new Set<(s: PoolStats) => void>() };
  private answered = 0;
  private rerun = 0;
  private failed = 0;
  private replicaBytes = 0;
  private coldStartMs: number | null = null;
  private followMs: number | null = null;
  private jsQueries: Set<string> | null = null;
  private readonly tick: ReturnType<typeof setInterval>;
  private readonly stopWatching: () => void;
  private readonly min: number;
  private readonly max: number;
  private readonly scaleUpWaitMs: number;
  private readonly windowMs: number;
  private readonly idleMs: number;
  private readonly memoryBudget: number;
  private readonly retries: number;
  private readonly versionTimeoutMs: number;
  private readonly queriesUrl: string | undefined;
  private startFailures = 0;

  /** @internal openPool makes pools. */
  constructor(
    private readonly store: Store,
    private readonly source: CompiledSource,
    private readonly options: Resolved,
  ) {
    const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 2;
    const num = (v: number | undefined, d: number, what: string, lo = 0) => {
      const x = v ?? d;
      if (typeof x !== 'number' || !(x >= lo) || !Number.isFinite(x)) throw new InvalidArgumentError(`openPool: ${what} must be a number >= ${lo}`);
      return x;
    };
    this.min = num(options.min, DEFAULTS.min, 'min');
    this.max = num(options.max, Math.max(1, cores - 1), 'max', 1);
    if (this.min > this.max) throw new InvalidArgumentError(`openPool: min (${this.min}) is above max (${this.max})`);
    this.scaleUpWaitMs = num(options.scaleUpWaitMs, DEFAULTS.scaleUpWaitMs, 'scaleUpWaitMs');
    this.windowMs = num(options.windowMs, DEFAULTS.windowMs, 'windowMs', 1);
    this.idleMs = num(options.idleMs, DEFAULTS.idleMs, 'idleMs');
    this.memoryBudget = num(options.memoryBudget, DEFAULTS.memoryBudget, 'memoryBudget');
    this.retries = num(options.retries, DEFAULTS.retries, 'retries');
    this.versionTimeoutMs = num(options.versionTimeoutMs, DEFAULTS.versionTimeoutMs, 'versionTimeoutMs');
    this.queriesUrl = options.queries === undefined ? undefined : new URL(options.queries, (globalThis as { location?: { href: string } }).location?.href).href;
    this.tick = setInterval(() => this.evaluate(true), Math.max(5, this.windowMs / 4));
    (this.tick as unknown as { unref?(): void }).unref?.();
    this.stopWatching = store.statusNotifier.add(() => {
      if (store.statusNotifier.closed) this.close();
    });
    for (let i = 0; i < this.min; ++i) this.start('min');
  }

  /**
   * Runs query `name` on a replica: the JS function of that name in the queries module if it
   * exports one, else the C++ query (KEEPSTATE_QUERY; `args` a Uint8Array). Resolves with its
   * result and the committed version it read, at least `minVersion` (default: the store's
   * version now, so the query sees what the page had committed; never uncommitted writes).
   */
  call<R = unknown>(name: string, args?: unknown, options: CallOptions = {}): Promise<PoolAnswer<R>> {
    if (this.closed) return Promise.reject(new ClosedError(`the pool of store "${this.store.name}" is closed`));
    if (typeof name !== 'string' || name.length === 0 || name.length > 256) {
      return Promise.reject(new InvalidArgumentError('pool.call: name must be a non-empty string of at most 256 characters'));
    }
    const minVersion = options.minVersion ?? this.store.version;
    if (!Number.isSafeInteger(minVersion) || minVersion < 0) return Promise.reject(new InvalidArgumentError('pool.call: minVersion must be an integer >= 0'));
    return new Promise<PoolAnswer<R>>((resolve, reject) => {
      this.queue.push({
        name,
        args: args ?? new Uint8Array(0),
        minVersion,
        submitted: performance.now(),
        dispatched: 0,
        attempts: 0,
        lostTo: [],
        resolve: resolve as (a: PoolAnswer) => void,
        reject,
      });
      this.dispatch();
      this.evaluate(false);
    });
  }

  /** The pool now: replicas, busy, queued, waits, scale steps. */
  stats(): PoolStats {
    const now = performance.now();
    this.trimWaits(now);
    const waits = this.waits.map((w) => w.ms).concat(this.queue.map((j) => now - j.submitted));
    const sorted = waits.sort((a, b) => a - b);
    const mean = sorted.length === 0 ? 0 : sorted.reduce((a, b) => a + b, 0) / sorted.length;
    const p95 = sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)]!;
    const list = [...this.slots.values()].map((s) => ({ id: s.id, state: s.state, version: s.version, queries: s.queries }));
    return {
      replicas: this.slots.size,
      starting: list.filter((s) => s.state === 'starting').length,
      busy: list.filter((s) => s.state === 'busy').length,
      queued: this.queue.length,
      meanWaitMs: mean,
      p95WaitMs: p95,
      answered: this.answered,
      rerun: this.rerun,
      failed: this.failed,
      replicaBytes: this.replicaBytes,
      coldStartMs: this.coldStartMs,
      followMs: this.followMs,
      steps: this.steps.slice(),
      list,
    };
  }

  /** Subscribes to 'scale' or 'stats'; returns the unsubscribe function. */
  on<E extends keyof PoolEvents>(event: E, fn: (value: PoolEvents[E]) => void): () => void {
    const set = this.listeners[event] as Set<(v: PoolEvents[E]) => void>;
    if (set === undefined) throw new InvalidArgumentError(`pool.on: unknown event "${String(event)}" (scale, stats)`);
    set.add(fn);
    return () => set.delete(fn);
  }

  /**
   * Ends replica `id` at once, as a crash would (Worker.terminate()): fault injection for tests
   * and for an app that wants a stuck query gone. Its query runs again elsewhere.
   */
  terminateReplica(id: number): boolean {
    const slot = this.slots.get(id);
    if (slot === undefined) return false;
    this.lose(slot, `replica ${id} was terminated`);
    return true;
  }

  /** Rejects queued and running queries with ClosedError and ends every replica. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.tick);
    this.stopWatching();
    const error = new ClosedError(`the pool of store "${this.store.name}" is closed`);
    for (const slot of this.slots.values()) {
      slot.job?.reject(error);
      slot.link.post({ type: 'close' });
      slot.link.terminate();
    }
    this.slots.clear();
    for (const job of this.queue.splice(0)) job.reject(error);
  }

  // --- Replicas -------------------------------------------------------------------------

  private start(reason: string): void {
    const id = this.nextSlot++;
    const slot: Slot = { id, link: null as unknown as ReplicaLink, state: 'starting', job: null, jobId: 0, idleSince: performance.now(), version: 0, queries: 0 };
    this.slots.set(id, slot);
    this.step('up', reason);
    const onMessage = (m: FromReplica) => this.heard(slot, m);
    const onDeath = (why: string) => this.lose(slot, why);
    slot.link = this.options.mode === 'worker' ? workerLink(onMessage, onDeath) : inlineLink(this.source.factory, this.options.indexedDB, onMessage);
    slot.link.post({
      type: 'open',
      name: this.store.name,
      storage: this.options.storage,
      compiled: this.source.compiled,
      glueUrl: this.source.glueUrl,
      queries: this.queriesUrl,
    });
  }

  private heard(slot: Slot, m: FromReplica): void {
    if (this.slots.get(slot.id) !== slot) return; // lost or removed meanwhile
    switch (m.type) {
      case 'ready':
        slot.state = 'idle';
        slot.idleSince = performance.now();
        slot.version = m.version;
        this.startFailures = 0;
        this.coldStartMs = m.ms;
        this.replicaBytes = Math.max(this.replicaBytes, m.memoryBytes);
        this.jsQueries ??= new Set(m.jsQueries);
        this.dispatch();
        break;
      case 'failed':
        this.slots.delete(slot.id);
        slot.link.terminate();
        this.step('down', `failed to start: ${m.error.message}`);
        if (++this.startFailures >= 3 || this.slots.size === 0) {
          // Nothing can run the queue: reject it with the reason rather than retrying forever.
          const error = rebuild(m.error);
          for (const job of this.queue.splice(0)) this.fail(job, error);
        }
        break;
      case 'version':
        slot.version = Math.max(slot.version, m.version);
        this.followMs = m.ms;
        break;
      case 'done':
      case 'error': {
        if (slot.job === null || m.id !== slot.jobId) return;
        const job = slot.job;
        slot.job = null;
        slot.state = 'idle';
        slot.idleSince = performance.now();
        ++slot.queries;
        if (m.type === 'done') {
          slot.version = Math.max(slot.version, m.version);
          ++this.answered;
          job.resolve({ version: m.version, result: m.result, waitMs: job.dispatched - job.submitted });
        } else {
          this.fail(job, rebuild(m.error));
        }
        this.dispatch();
        break;
      }
      case 'retired':
        this.lose(slot, `replica ${slot.id}'s module aborted (${m.error.message})`);
        break;
    }
    this.changed();
  }

  /** A replica died: its query runs again elsewhere (or rejects), and a replica replaces it. */
  private lose(slot: Slot, why: string): void {
    if (this.slots.get(slot.id) !== slot) return;
    this.slots.delete(slot.id);
    slot.link.terminate();
    const job = slot.job;
    slot.job = null;
    if (this.closed) return;
    if (job !== null) {
      job.lostTo.push(why);
      if (++job.attempts <= this.retries) {
        ++this.rerun;
        this.queue.unshift(job);
      } else {
        this.fail(job, new ReplicaLostError(`query "${job.name}" was lost with its replica ${job.attempts} times: ${job.lostTo.join('; ')}`));
      }
    }
    this.step('down', `lost: ${why}`);
    if (this.slots.size < Math.max(this.min, 1) || this.queue.length > 0) this.start(`replace: ${why}`);
    this.dispatch();
    this.changed();
  }

  private fail(job: Job, error: unknown): void {
    ++this.failed;
    job.reject(error);
  }

  /** Hands queued queries to idle replicas, oldest first. */
  private dispatch(): void {
    if (this.closed) return;
    for (const slot of this.slots.values()) {
      if (this.queue.length === 0) break;
      if (slot.state !== 'idle') continue;
      const job = this.queue.shift()!;
      const now = performance.now();
      this.waits.push({ at: now, ms: now - job.submitted });
      job.dispatched = now;
      slot.state = 'busy';
      slot.job = job;
      slot.jobId = this.nextJob++;
      const kind = this.jsQueries?.has(job.name) ? 'js' : 'cxx';
      try {
        slot.link.post({ type: 'run', id: slot.jobId, name: job.name, kind, args: job.args, minVersion: job.minVersion, timeoutMs: this.versionTimeoutMs });
      } catch (e) {
        // The args cannot be cloned: the caller's mistake, not the replica's.
        slot.job = null;
        slot.state = 'idle';
        this.fail(job, new InvalidArgumentError(`pool.call("${job.name}"): args cannot be sent to a Worker (${(e as Error).message})`));
      }
    }
    if (this.queue.length > 0 && this.slots.size === 0) this.start('first query');
  }

  // --- Policy ---------------------------------------------------------------------------

  private trimWaits(now: number): void {
    while (this.waits.length > 0 && this.waits[0]!.at < now - this.windowMs) this.waits.shift();
  }

  /** Scales up on queue wait, down on idleness (one step up at a time: never while one starts). */
  private evaluate(fromTick: boolean): void {
    if (this.closed) return;
    const now = performance.now();
    const stats = this.stats();
    if (this.queue.length > 0 && stats.starting === 0 && stats.meanWaitMs > this.scaleUpWaitMs && this.slots.size < this.max) {
      if (this.replicaBytes * (this.slots.size + 1) <= this.memoryBudget) {
        this.start(`queue wait ${stats.meanWaitMs.toFixed(0)} ms > ${this.scaleUpWaitMs} ms`);
      }
    }
    if (fromTick) {
      for (const slot of [...this.slots.values()]) {
        if (this.slots.size <= this.min) break;
        if (slot.state === 'idle' && now - slot.idleSince >= this.idleMs && this.queue.length === 0) {
          this.slots.delete(slot.id);
          slot.link.post({ type: 'close' });
          slot.link.terminate();
          this.step('down', `idle ${Math.round(now - slot.idleSince)} ms >= ${this.idleMs} ms`);
        }
      }
      this.changed();
    }
  }

  private step(direction: 'up' | 'down', reason: string): void {
    const step: ScaleStep = { at: performance.now(), direction, replicas: this.slots.size, reason };
    this.steps.push(step);
    if (this.steps.length > 50) this.steps.shift();
    for (const fn of [...this.listeners.scale]) fn(step);
  }

  private lastStats = '';
  private changed(): void {
    if (this.listeners.stats.size === 0) return;
    const stats = this.stats();
    const key = JSON.stringify([stats.replicas, stats.busy, stats.queued, stats.answered, stats.failed, Math.round(stats.meanWaitMs)]);
    if (key === this.lastStats) return;
    this.lastStats = key;
    for (const fn of [...this.listeners.stats]) fn(stats);
  }
}

/** A replica in a module Worker (pool-worker.js, next to this file: bundlers see the URL). */
function workerLink(onMessage: (m: FromReplica) => void, onDeath: (why: string) => void): ReplicaLink {
  const worker = new Worker(new URL('./pool-worker.js', import.meta.url), { type: 'module', name: 'keepstate-replica' });
  worker.onmessage = (event: MessageEvent<FromReplica>) => onMessage(event.data);
  worker.onerror = (event: ErrorEvent) => {
    event.preventDefault?.();
    onDeath(`its Worker failed (${event.message || 'an error it did not catch, or its script did not load'})`);
  };
  worker.onmessageerror = () => onDeath('its Worker sent a message that could not be read');
  return {
    post: (message) => worker.postMessage(message),
    terminate: () => worker.terminate(),
  };
}

/**
 * A replica in this realm: serveReplica behind an endpoint whose messages are structured-
 * cloned (the compiled module excepted) and delivered on a later task, as a Worker's are.
 */
function inlineLink(factory: KeepstateModuleFactory, indexedDB: IDBFactory | undefined, onMessage: (m: FromReplica) => void): ReplicaLink {
  let alive = true;
  const listeners: Array<(event: { data: ToReplica }) => void> = [];
  const later = (fn: () => void) => setTimeout(fn, 0);
  const endpoint: ReplicaEndpoint = {
    postMessage: (m) => {
      if (!alive) return;
      const copy = structuredClone(m);
      later(() => alive && onMessage(copy));
    },
    addEventListener: (_type, listener) => listeners.push(listener),
  };
  serveReplica(endpoint, {
    factory: async () => factory,
    indexedDB,
    importQueries: (url) => import(url),
    exit: () => {
      alive = false;
    },
  });
  return {
    post: (m) => {
      if (!alive) return;
      const copy = m.type === 'open' ? m : structuredClone(m);
      later(() => {
        if (alive) for (const l of listeners) l({ data: copy });
      });
    },
    terminate: () => {
      if (!alive) return;
      // As a crash: the replica hears nothing more and says nothing more; its reader is closed.
      for (const l of listeners) l({ data: { type: 'close' } });
      alive = false;
    },
  };
}
