// Reading a snapshot file (docs/snapshot-format.md) into a module: fed in
// chunks, each page verified as it lands, the whole file verified before it
// can be adopted. snapshot.ts (importStore, inspectSnapshot) and the sync
// client (a server's snapshot) both read through here.
import { InvalidArgumentError } from './errors.js';
import { SNAPSHOT_CHUNK_BYTES as CHUNK_BYTES } from './replica.js';
import { reportProgress, type ProgressListener } from './progress.js';
import type { Wasm } from './wasm.js';

/** What a snapshot file says about itself (importStore reads it before writing anything). */
export interface SnapshotInfo {
  pageSize: number;
  pageCount: number;
  schemaVersion: number;
  entries: number;
  /** The committed version it was exported from (0: built by keepstate-snapshot). */
  storeVersion: number;
  /** When it was written (ms since the epoch). */
  createdAt: number;
}

/** Where a snapshot file's bytes come from: what export() resolved with, a file input's File, a fetch() Response, or the bytes. */
export type SnapshotSource = Blob | ArrayBuffer | Uint8Array | Response;
type Source = SnapshotSource;

/**
 * The size a Response says its body has (Content-Length), if it says so of the bytes it
 * delivers: a compressed body's length is not the file's.
 */
function responseSize(response: Response): number | undefined {
  const length = response.headers.get('content-length');
  const encoding = response.headers.get('content-encoding');
  if (length === null || (encoding !== null && encoding !== 'identity')) return undefined;
  const n = Number(length);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** The source's bytes, in chunks, and its size if it is known. */
function chunksOf(source: Source, signal: AbortSignal | undefined): { size: number | undefined; chunks: AsyncIterable<Uint8Array> } {
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) {
    const bytes = source instanceof Uint8Array ? source : new Uint8Array(source);
    return {
      size: bytes.length,
      chunks: (async function* () {
        for (let at = 0; at < bytes.length; at += CHUNK_BYTES) yield bytes.subarray(at, Math.min(bytes.length, at + CHUNK_BYTES));
      })(),
    };
  }
  const isBlob = typeof Blob !== 'undefined' && source instanceof Blob;
  const isResponse = typeof Response !== 'undefined' && source instanceof Response;
  if (!isBlob && !isResponse) throw new InvalidArgumentError('snapshot source must be a Blob, an ArrayBuffer, a Uint8Array or a Response');
  if (isResponse && !(source as Response).ok) {
    const r = source as Response;
    throw new InvalidArgumentError(`snapshot source: the Response is ${r.status} ${r.statusText}${r.url ? ` (${r.url})` : ''}, not a snapshot file`);
  }
  const stream = isBlob ? (source as Blob).stream() : (source as Response).body;
  if (stream === null) throw new InvalidArgumentError('snapshot source: the Response has no body');
  return {
    size: isBlob ? (source as Blob).size : responseSize(source as Response),
    chunks: (async function* () {
      const reader = stream.getReader();
      // An abort cancels the read in flight (a stalled download included).
      const cancel = () => void reader.cancel(signal?.reason).catch(() => undefined);
      signal?.addEventListener('abort', cancel);
      try {
        for (;;) {
          const { done, value } = await reader.read();
          signal?.throwIfAborted();
          if (done) return;
          for (let at = 0; at < value.length; at += CHUNK_BYTES) yield value.subarray(at, Math.min(value.length, at + CHUNK_BYTES));
        }
      } finally {
        signal?.removeEventListener('abort', cancel);
        reader.releaseLock();
      }
    })(),
  };
}

/**
 * Feeds `source` to a new import in `wasm` and verifies it whole (each page as it arrives);
 * returns the id of that import and what the file says. A failure or an abort discards it.
 */
export async function verifyImport(
  wasm: Wasm,
  source: Source,
  signal: AbortSignal | undefined,
  onProgress: ProgressListener | undefined,
): Promise<{ id: number; info: SnapshotInfo }> {
  const { size, chunks } = chunksOf(source, signal);
  const m = wasm.module;
  const id = m._keepstate_import_begin(size ?? -1);
  try {
    let done = 0;
    reportProgress(onProgress, 0, size);
    for await (const chunk of chunks) {
      signal?.throwIfAborted();
      const [p] = wasm.stage(chunk);
      wasm.check(m._keepstate_import_add(id, p!, chunk.length));
      done += chunk.length;
      reportProgress(onProgress, done, size);
    }
    signal?.throwIfAborted();
    wasm.check(m._keepstate_import_finish(id));
    return { id, info: JSON.parse(wasm.outText()) as SnapshotInfo };
  } catch (e) {
    m._keepstate_import_discard(id);
    throw e;
  } finally {
    wasm.trimScratch();
  }
}

