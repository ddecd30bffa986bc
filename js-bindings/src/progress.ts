// Progress of long work (reading a snapshot file for importStore and
// inspectSnapshot), reported as bytes done of a total, for a progress bar.
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

/** Called as a long operation advances (at most once per chunk of work, 4 MiB for snapshot files). */
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
