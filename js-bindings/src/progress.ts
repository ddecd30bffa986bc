// Progress of long work, reported as bytes done of a total, for a progress
// bar: reading a snapshot file (importStore, inspectSnapshot), writing one
// (Store.export), and reading a stored state (openStore's restore).
//
// Invariants: `done` only grows; the last report has `done === total` when
// the total is known; a listener that throws does not stop the work.

/** How far a long operation is. */
export interface Progress {
  /** Bytes processed so far. */
  readonly done: number;
  /** Bytes in all, or undefined when the source does not say (a Response without Content-Length). */
  readonly total: number | undefined;
}

/** Called as a long operation advances (at most once per chunk of work: 4 MiB for snapshot files, a pack for an open). */
export type ProgressListener = (progress: Progress) => void;

/** @internal Reports to `listener` (if any), never letting it break the work. */
export function reportProgress(listener: ProgressListener | undefined, done: number, total: number | undefined): void {
  if (listener === undefined) return;
  try {
    listener({ done, total });
  } catch (e) {
    queueMicrotask(() => {
      throw e;
    });
  }
}

/**
 * @internal The progress of an open: bytes of records read over every restore it runs (a
 * restore from the OPFS copy after IndexedDB's, or again after stashed commits went in), of
 * `done` plus what the running restore still reads. The total is unknown until the module
 * names the packs it reads (the manifest records their sizes), and may grow if a version
 * fails verification and an older one is read instead.
 */
export class ReadProgress {
  private done = 0;

  constructor(private readonly listener: ProgressListener) {
    reportProgress(listener, 0, undefined);
  }

  /** `bytes` more were read; `left`: bytes the running restore still reads (undefined: not known). */
  readonly read = (bytes: number, left: number | undefined): void => {
    this.done += bytes;
    reportProgress(this.listener, this.done, left === undefined ? undefined : this.done + left);
  };
}
