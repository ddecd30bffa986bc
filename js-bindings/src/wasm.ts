// Wasm: one instantiated keepstate module and everything shared by the
// replicas that live in it: the scheduler and its MessageChannel driver,
// mutator calls in flight, the scratch buffer, the error and output buffers.
// replica.ts is the only caller of the per-store exports; this file makes the
// module-wide calls.
//
// Memory: the module is built with memory growth, so any call may replace
// the heap's ArrayBuffer. Nothing here keeps a view across a call: every
// read takes `this.module.HEAPU8` afresh, and bytes that must outlive the
// next call are copied out with slice() (which copies exactly those bytes).
// The scratch buffer's address is kept (an address, not a view, survives
// growth): only keepstate_scratch moves the buffer, and only reserve() calls it.
import type { KeepstateModule, KeepstateModuleFactory } from './keepstate.js';
import { errorFromStatus, InvalidArgumentError, KeepstateError, QuotaError } from './errors.js';
import { SchedulerDriver } from './driver.js';
import { U32_RESULTS } from './generated/abi.js';

/** Where a wasm module comes from: a factory (the default export of an Emscripten glue
 * file built by keepstate_add_wasm_module) and, optionally, the URL of its .wasm. */
export interface ModuleSource {
  factory: KeepstateModuleFactory;
  /** The .wasm file. Needed in Node (read with fs); in a page or worker the glue finds it itself. */
  wasmUrl?: URL | string;
  /** The glue file whose default export is `factory`: a pool's Workers import it (a function
   * cannot be posted to a Worker). Needed by openPool for a module of the app's own. */
  glueUrl?: URL | string;
}

type Export = (...args: unknown[]) => unknown;

/** `raw` with its i32 result read as the u32 it is (an address past 2 GiB is not negative). */
function unsignedResult(raw: Export): Export {
  switch (raw.length) {
    case 0: return () => (raw() as number) >>> 0;
    case 1: return (a) => (raw(a) as number) >>> 0;
    case 2: return (a, b) => (raw(a, b) as number) >>> 0;
    default: return (...args) => (raw(...args) as number) >>> 0;
  }
}

/**
 * Wraps every export of `module` so that a trap (WebAssembly.RuntimeError: an abort, an
 * out-of-bounds access) retires the module: `onTrap` returns the typed error thrown instead,
 * and every later call throws it at once. Emscripten's export stubs replace themselves with
 * the raw export on their first call: the wrapper takes the raw one then and stays in place.
 * An export whose result is a u32 (U32_RESULTS) returns it unsigned.
 */
function guardExports(module: KeepstateModule, onTrap: (trap: unknown) => KeepstateError): void {
  const exports = module as unknown as Record<string, unknown>;
  const state: { retired: KeepstateError | null } = { retired: null };
  const trapped = (e: unknown): unknown => (e instanceof WebAssembly.RuntimeError ? (state.retired = onTrap(e)) : e);
  for (const name of Object.keys(exports)) {
    if (!name.startsWith('_keepstate_') && name !== '_malloc' && name !== '_free') continue;
    const stub = exports[name];
    if (typeof stub !== 'function') continue;
    const unsigned = U32_RESULTS.has(name);
    // Hot path: a wrapper of the export's own arity (a rest array or `arguments` per call
    // halved the calls per second of a get).
    const direct = (exported: Export): Export => {
      const raw = unsigned ? unsignedResult(exported) : exported;
      switch (exported.length) {
        case 0: return () => { if (state.retired !== null) throw state.retired; try { return raw(); } catch (e) { throw trapped(e); } };
        case 1: return (a) => { if (state.retired !== null) throw state.retired; try { return raw(a); } catch (e) { throw trapped(e); } };
        case 2: return (a, b) => { if (state.retired !== null) throw state.retired; try { return raw(a, b); } catch (e) { throw trapped(e); } };
        case 3: return (a, b, c) => { if (state.retired !== null) throw state.retired; try { return raw(a, b, c); } catch (e) { throw trapped(e); } };
        case 4: return (a, b, c, d) => { if (state.retired !== null) throw state.retired; try { return raw(a, b, c, d); } catch (e) { throw trapped(e); } };
        case 5: return (a, b, c, d, e) => { if (state.retired !== null) throw state.retired; try { return raw(a, b, c, d, e); } catch (x) { throw trapped(x); } };
        case 6: return (a, b, c, d, e, f) => { if (state.retired !== null) throw state.retired; try { return raw(a, b, c, d, e, f); } catch (x) { throw trapped(x); } };
        default: return (...args) => { if (state.retired !== null) throw state.retired; try { return raw(...args); } catch (x) { throw trapped(x); } };
      }
    };
    // The first call goes through the stub, which puts the raw export in its place.
    exports[name] = function firstCall(this: unknown): unknown {
      if (state.retired !== null) throw state.retired;
      let result: unknown;
      try {
        // eslint-disable-next-line prefer-rest-params
        result = (stub as (...a: unknown[]) => unknown).apply(undefined, arguments as unknown as unknown[]);
      } catch (e) {
        throw trapped(e);
      } finally {
        const raw = exports[name];
        exports[name] = direct(typeof raw === 'function' && raw !== firstCall ? (raw as Export) : (stub as Export));
      }
      return unsigned ? (result as number) >>> 0 : result;
    };
  }
}

const encoder = new TextEncoder();

/** The most bytes staged at once: more than any one key, value, args or record (keepstate_scratch takes a u32). */
const MAX_STAGED_BYTES = 2 ** 31 - 1;
/** A scratch buffer up to this size is kept between calls; a larger one is given back (trimScratch). */
const SCRATCH_KEPT_BYTES = 1 << 20;
const decoder = new TextDecoder();

/** A mutator call in flight (Store.call), settled when its fiber finishes. */
export interface PendingCall {
  resolve(result: Uint8Array): void;
  reject(error: KeepstateError): void;
}

export class Wasm {
  readonly module: KeepstateModule;
  readonly scheduler: number;
  readonly driver: SchedulerDriver;
  /** Open stores, counted: a module with none lets a Node process exit. */
  openStores = 0;
  /** Mutator calls in flight, by call id (keepstate_call). */
  readonly calls = new Map<number, PendingCall>();
  private readonly callId: number; // u32 written by keepstate_call_take
  private readonly sliceListeners = new Set<() => void>();
  /** The scratch buffer's address and size (keepstate_scratch; see reserve). */
  private scratchAt = 0;
  private scratchSize = 0;

  /** The module aborted (a trap: out of memory inside C++, a bug): the error every later call gets; null: usable. */
  retired: KeepstateError | null = null;
  private readonly retireListeners = new Set<(error: KeepstateError) => void>();

  constructor(module: KeepstateModule, forget: () => void = () => undefined) {
    this.module = module;
    guardExports(module, (e) => this.retire(e, forget));
    this.scheduler = module._keepstate_scheduler();
    this.callId = module._malloc(4);
    if (this.callId === 0) throw new QuotaError('cannot allocate 4 bytes in wasm memory');
    this.driver = new SchedulerDriver(module, this.scheduler, () => this.afterSlice(), () => this.openStores > 0);
  }

  /** Calls `fn` once if the module aborts (retire); returns the unsubscribe function. */
  onRetire(fn: (error: KeepstateError) => void): () => void {
    this.retireListeners.add(fn);
    return () => {
      this.retireListeners.delete(fn);
    };
  }

  /**
   * A call trapped: the module's memory may be half updated (an allocation failed in the
   * middle of a change), so it is never called again. Every store on it is closed (they
   * listen: onRetire), calls in flight reject, and the next loadWasm() of this source
   * instantiates a new module, from which openStore restores what was committed.
   */
  private retire(trap: unknown, forget: () => void): KeepstateError {
    if (this.retired !== null) return this.retired;
    const what = trap instanceof Error ? trap.message : String(trap);
    const message = `the wasm module aborted (${what}): every store on it is closed; openStore again restores what was committed`;
    this.retired = /memory|OOM|enlarge|alloc/i.test(what) ? new QuotaError(message, { cause: trap }) : new KeepstateError('internal', message, { cause: trap });
    forget();
    this.driver?.stop();
    for (const call of this.calls.values()) call.reject(this.retired);
    this.calls.clear();
    for (const fn of [...this.retireListeners]) fn(this.retired);
    this.retireListeners.clear();
    return this.retired;
  }

  /** Calls `fn` after every run of fibers (a store with watchers takes its changes then); returns the unsubscribe function. */
  onSlice(fn: () => void): () => void {
    this.sliceListeners.add(fn);
    return () => {
      this.sliceListeners.delete(fn);
    };
  }

  private afterSlice(): void {
    this.settleCalls();
    for (const fn of [...this.sliceListeners]) fn();
  }

  /** Settles the promises of the mutator calls whose fibers finished. */
  private settleCalls(): void {
    const m = this.module;
    for (;;) {
      const status = m._keepstate_call_take(this.callId);
      if (status === -1) break;
      const id = new DataView(m.HEAPU8.buffer).getUint32(this.callId, true);
      const call = this.calls.get(id);
      this.calls.delete(id);
      if (call === undefined) continue;
      if (status === 0) call.resolve(this.outBytes());
      else call.reject(this.error(status));
    }
  }

  /** The newest schema version the module's C++ migrations reach (0: none). */
  migrationsNewest(): number {
    return this.module._keepstate_migrations_newest();
  }

  /** Throws the typed error for a non-zero status (the message comes from the module). */
  check(status: number): void {
    if (status !== 0) throw this.error(status);
  }

  /** The typed error for a status, with the module's last error message. */
  error(status: number): KeepstateError {
    const m = this.module;
    const ptr = m._keepstate_error_ptr();
    const len = m._keepstate_error_len();
    return errorFromStatus(status, decoder.decode(m.HEAPU8.subarray(ptr, ptr + len)));
  }

  /** A copy of the output buffer. */
  outBytes(): Uint8Array {
    const m = this.module;
    const ptr = m._keepstate_out_ptr();
    return m.HEAPU8.slice(ptr, ptr + m._keepstate_out_len());
  }

  outText(): string {
    const m = this.module;
    const ptr = m._keepstate_out_ptr();
    return decoder.decode(m.HEAPU8.subarray(ptr, ptr + m._keepstate_out_len()));
  }

  /**
   * The scratch buffer's address, with room for at least `size` bytes (it grows, never
   * shrinks). Everything staged goes through here, so `scratchAt` and `scratchSize` are
   * the module's g_scratch. QuotaError if memory cannot grow.
   */
  private reserve(size: number): number {
    // keepstate_scratch takes a u32: a larger size would wrap (Access checks lengths first).
    if (size > MAX_STAGED_BYTES) throw new QuotaError(`cannot stage ${size} bytes in wasm memory (at most ${MAX_STAGED_BYTES})`);
    if (size > this.scratchSize) {
      const base = this.module._keepstate_scratch(size);
      if (base === 0) throw new QuotaError(`cannot allocate ${size} bytes in wasm memory`);
      this.scratchAt = base;
      this.scratchSize = Math.max(size, 4096); // what keepstate_scratch allocates
    }
    return this.scratchAt;
  }

  /** Gives a scratch buffer grown past 1 MiB back to the module (after the call that used it). */
  trimScratch(): void {
    if (this.scratchSize <= SCRATCH_KEPT_BYTES) return;
    const base = this.module._keepstate_scratch(4096);
    this.scratchAt = base;
    this.scratchSize = base === 0 ? 0 : 4096;
  }

  /** Where stageKey put the key (and stageValue the value after it). */
  get scratch(): number {
    return this.scratchAt;
  }

  /** Copies `parts` back to back into the scratch buffer; returns each one's address. */
  stage(...parts: Uint8Array[]): number[] {
    const total = parts.reduce((n, p) => n + p.length, 0);
    const base = this.reserve(Math.max(total, 1));
    const heap = this.module.HEAPU8; // after the call: it may have grown memory
    const ptrs: number[] = [];
    let at = base;
    for (const p of parts) {
      heap.set(p, at);
      ptrs.push(at);
      at += p.length;
    }
    return ptrs;
  }

  /**
   * Stages `key` as UTF-8 at the start of the scratch buffer (`scratch`), with room for
   * `room` more bytes after it; returns its length in bytes. The keys apps use are
   * ASCII: those are written a character a byte, without a TextEncoder call or an array.
   */
  stageKey(key: string, room = 0): number {
    const n = key.length;
    const at = this.reserve(3 * n + room + 1); // UTF-8 takes at most 3 bytes per UTF-16 unit
    const heap = this.module.HEAPU8;
    let i = 0;
    for (; i < n; ++i) {
      const c = key.charCodeAt(i);
      if (c > 0x7f) break;
      heap[at + i] = c;
    }
    if (i === n) return n;
    return i + encoder.encodeInto(key.substring(i), heap.subarray(at + i, at + 3 * n)).written;
  }

  /**
   * Stages `value` at scratch + `offset`, right after a key staged with room for it
   * (Wasm.room); returns its length in bytes.
   */
  stageValue(offset: number, value: Uint8Array | string): number {
    const heap = this.module.HEAPU8;
    const at = this.scratch + offset;
    if (typeof value !== 'string') {
      heap.set(value, at);
      return value.length;
    }
    return encoder.encodeInto(value, heap.subarray(at, at + 3 * value.length)).written;
  }

  /** The scratch room stageValue needs for `value`. */
  static room(value: Uint8Array | string): number {
    return typeof value === 'string' ? 3 * value.length : value.length;
  }

  static encode(text: string): Uint8Array {
    return encoder.encode(text);
  }
  static decode(bytes: Uint8Array): string {
    return decoder.decode(bytes);
  }
}

const instances = new Map<KeepstateModuleFactory, Promise<Wasm>>();

/**
 * What differs between the package's two entries. index.ts (pages, workers,
 * browser bundlers: nothing here names a Node module) keeps the defaults;
 * node.ts (the `node` condition of package.json's exports) replaces both
 * before any store opens.
 * @internal
 */
export interface Platform {
  /** The glue of the package's own module (its default export is the factory). */
  glue(): Promise<{ default: KeepstateModuleFactory }>;
  /** The bytes of a .wasm given by URL; without it the glue fetches the URL itself. */
  readWasm?(url: URL): Promise<Uint8Array>;
}

let platform: Platform = { glue: () => import('./keepstate.js') };

/** @internal Called once by node.ts, at import. */
export function setPlatform(p: Platform): void {
  platform = p;
}

/**
 * Compiles of .wasm files, by URL: each is fetched and compiled once in this realm, however
 * many loads (preload, openStore, inspectSnapshot, importStore) ask for it.
 */
const compiles = new Map<string, Promise<WebAssembly.Module>>();

/**
 * The compiled module at `url`: fetched with the request a `<link rel="preload" as="fetch"
 * crossorigin>` makes (so the browser hands over a preloaded response instead of fetching
 * again) and compiled as it streams in (compileStreaming; from the bytes if the server does
 * not say application/wasm). undefined where the glue must load it itself (Node reads files,
 * and a realm without fetch or compileStreaming).
 */
function compileAt(url: URL): Promise<WebAssembly.Module> | undefined {
  if (platform.readWasm !== undefined) return undefined;
  if (typeof fetch !== 'function' || typeof WebAssembly.compileStreaming !== 'function') return undefined;
  let compiled = compiles.get(url.href);
  if (compiled === undefined) {
    compiled = fetch(url, { credentials: 'same-origin' }).then(async (response) => {
      if (!response.ok) throw new KeepstateError('internal', `cannot load ${url.href}: ${response.status} ${response.statusText}`);
      const type = response.headers.get('content-type') ?? '';
      return type.split(';')[0]!.trim() === 'application/wasm'
        ? WebAssembly.compileStreaming(response)
        : WebAssembly.compile(await response.arrayBuffer());
    });
    compiles.set(url.href, compiled);
    compiled.catch(() => compiles.delete(url.href)); // a later load tries again
  }
  return compiled;
}

async function instantiate(source: ModuleSource, compiled: Promise<WebAssembly.Module> | undefined): Promise<Wasm> {
  const url = source.wasmUrl === undefined ? undefined : new URL(source.wasmUrl);
  let module: KeepstateModule;
  if (url !== undefined && platform.readWasm !== undefined) {
    // Node's fetch cannot load a file: URL; hand the glue the bytes instead.
    module = await source.factory({ wasmBinary: await platform.readWasm(url) });
  } else if (compiled !== undefined) {
    // The module compiled (or compiling) already: the glue only instantiates it.
    let failed: (e: unknown) => void = () => undefined;
    const failure = new Promise<never>((_, reject) => (failed = reject));
    module = await Promise.race([
      source.factory({
        instantiateWasm(imports, receive) {
          compiled
            .then(async (m) => receive(await WebAssembly.instantiate(m, imports), m))
            .catch(failed);
          return {};
        },
      }),
      failure,
    ]);
  } else if (url !== undefined) {
    module = await source.factory({ locateFile: () => url.href });
  } else {
    module = await source.factory();
  }
  return new Wasm(module, () => instances.delete(source.factory));
}

/** What a pool needs to instantiate a module source elsewhere: the compiled module, and where
 * its glue is (undefined: the package's own glue, next to pool-worker.js). */
export interface CompiledSource {
  factory: KeepstateModuleFactory;
  compiled: WebAssembly.Module;
  glueUrl: string | undefined;
}

const compiledModules = new Map<KeepstateModuleFactory, Promise<CompiledSource>>();

/**
 * The module source compiled once per factory in this realm (openPool posts it to every
 * replica's Worker, which instantiates it without compiling again). In a browser it is the
 * compile loadWasm's instance was made from (compileAt).
 */
export function compiledSource(source?: ModuleSource | KeepstateModuleFactory): Promise<CompiledSource> {
  const resolved: Promise<ModuleSource & { own?: true }> =
    source === undefined
      ? platform.glue().then((glue) => ({ factory: glue.default, wasmUrl: new URL('keepstate.wasm', import.meta.url), own: true as const }))
      : Promise.resolve(typeof source === 'function' ? { factory: source } : source);
  return resolved.then((s) => {
    let compiled = compiledModules.get(s.factory);
    if (compiled === undefined) {
      compiled = (async () => {
        if (s.wasmUrl === undefined) throw new InvalidArgumentError('a pool needs the module source\'s wasmUrl (and glueUrl for a module of your own)');
        if (s.own !== true && s.glueUrl === undefined && typeof Worker !== 'undefined') {
          throw new InvalidArgumentError('a pool of Workers needs the module source\'s glueUrl: the URL of the glue file whose default export is its factory');
        }
        const url = new URL(s.wasmUrl);
        // In a browser, the compile loadWasm and preload() use (compileAt): the .wasm is fetched
        // and compiled once for the writer and every replica.
        const module =
          (await compileAt(url)) ??
          (platform.readWasm !== undefined
            ? await WebAssembly.compile((await platform.readWasm(url)) as Uint8Array<ArrayBuffer>)
            : await WebAssembly.compile(await (await fetch(url)).arrayBuffer()));
        return { factory: s.factory, compiled: module, glueUrl: s.glueUrl === undefined ? undefined : new URL(s.glueUrl).href };
      })();
      compiledModules.set(s.factory, compiled);
      compiled.catch(() => compiledModules.delete(s.factory));
    }
    return compiled;
  });
}

/** A new instance of a compiled module (a pool's replica), not shared with loadWasm's. */
export async function instantiateCompiled(factory: KeepstateModuleFactory, compiled: WebAssembly.Module): Promise<Wasm> {
  const module = await factory({
    instantiateWasm(imports: WebAssembly.Imports, receive: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void) {
      WebAssembly.instantiate(compiled, imports).then((instance) => receive(instance, compiled));
      return {};
    },
  });
  return new Wasm(module);
}

/**
 * The module of a module source, instantiated once per factory in this realm. The package's
 * own .wasm is fetched and compiled while its glue loads (they are two requests, not one
 * after the other).
 */
export function loadWasm(source?: ModuleSource | KeepstateModuleFactory): Promise<Wasm> {
  let resolved: Promise<ModuleSource>;
  let compiled: Promise<WebAssembly.Module> | undefined;
  if (source === undefined) {
    // Written out here (not in the glue) so that bundlers see the .wasm and
    // emit it as an asset; it sits next to both glue files.
    const wasmUrl = new URL('keepstate.wasm', import.meta.url);
    compiled = compileAt(wasmUrl);
    resolved = platform.glue().then((glue) => ({ factory: glue.default, wasmUrl }));
  } else if (typeof source === 'function') {
    resolved = Promise.resolve({ factory: source });
  } else {
    resolved = Promise.resolve(source);
    if (source.wasmUrl !== undefined) compiled = compileAt(new URL(source.wasmUrl));
  }
  // Nobody may await the compile (the factory is known already): its failure is the load's.
  compiled?.catch(() => undefined);
  return resolved.then((s) => {
    let wasm = instances.get(s.factory);
    if (wasm === undefined) {
      wasm = instantiate(s, compiled);
      instances.set(s.factory, wasm);
      wasm.catch(() => instances.delete(s.factory));
    }
    return wasm;
  });
}

/**
 * Starts loading the wasm module now — fetching, compiling and instantiating it — so that
 * the first openStore (or importStore, inspectSnapshot) finds it ready instead of starting
 * then. Call it at the top level of the app's entry module, before the code that opens the
 * store has loaded (a lazy route, a React tree): the module loads meanwhile. Safe to call
 * more than once (the module is loaded once per realm) and before any store is wanted.
 * `module`: a custom module (openStore's `module` option), if not the package's. Resolves
 * when it is ready; a failure also reaches the openStore that uses it. docs/api.md, "Loading
 * faster".
 */
export function preload(module?: ModuleSource | KeepstateModuleFactory): Promise<void> {
  const ready = loadWasm(module).then(() => undefined);
  ready.catch(() => undefined); // not unhandled: openStore reports it
  return ready;
}
