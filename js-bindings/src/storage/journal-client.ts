// The journal as the OPFS copy uses it (journal.ts has the format and the
// rules): requests to where its core runs — a Worker of this store's, which
// holds the file's sync handle between commits — and the hand-over of that
// handle between tabs. A tab that needs the journal while another holds it
// asks on a BroadcastChannel (`keepstate-journal:<name>`) and retries; the
// holder lets go at once (the asker holds the store's lock, so the holder is
// between commits). Stores of one name in one realm hand over the same way.
import { KeepstateError } from '../errors.js';
import type { JournalCommit, JournalHost, JournalRecords, JournalRequest, JournalState, RecordName } from './journal.js';
import workerSource from './journal-worker-source.js';

/** How long a tab waits for another to let go of the journal before the copy reports an error. */
const HANDOVER_MS = 5000;

interface Pending {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** The journal's core in a Worker of its own (journal-worker.ts): sync handles exist only there.
 * The Worker is started from a Blob URL of its bundled source (tools/bundle-journal-worker.mjs):
 * no file of its own has to sit next to an app's bundle. Where a policy forbids that (CSP
 * `worker-src` without `blob:`), starting it fails and the copy writes files. */
export class WorkerJournalHost implements JournalHost {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private failed: KeepstateError | null = null;

  constructor(folder: string) {
    const url = URL.createObjectURL(new Blob([workerSource], { type: 'text/javascript' }));
    try {
      this.worker = new Worker(url, { name: 'keepstate-journal' });
    } catch (e) {
      URL.revokeObjectURL(url);
      throw e;
    }
    const revoke = () => URL.revokeObjectURL(url); // once the Worker answered: it has loaded
    this.worker.onmessage = ({ data }: MessageEvent<{ id: number; result?: unknown; error?: { name: string; code?: string; message: string } }>) => {
      revoke();
      const p = this.pending.get(data.id);
      this.pending.delete(data.id);
      if (data.error === undefined) return p?.resolve(data.result);
      const e = data.error;
      p?.reject(e.code !== undefined ? new KeepstateError(e.code as KeepstateError['code'], e.message) : Object.assign(new Error(e.message), { name: e.name }));
    };
    this.worker.onerror = (event: ErrorEvent) => {
      event.preventDefault?.();
      revoke();
      this.fail(new KeepstateError('internal', `the OPFS copy's journal Worker failed: ${event.message || 'it could not be loaded'}`));
    };
    this.worker.postMessage({ id: 0, folder });
  }

  private fail(error: KeepstateError): void {
    this.failed = error;
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }

  call(request: JournalRequest): Promise<unknown> {
    if (this.failed !== null) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      const id = ++this.nextId;
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, request });
    });
  }

  close(): void {
    // The Worker's end closes its handle; pending calls (none, under the store's lock) fail.
    this.worker.terminate();
    this.fail(new KeepstateError('closed', "the OPFS copy's journal is closed"));
  }
}

/** The journal of one store's copy, as seen from the store's realm. */
export class Journal {
  private held = false;
  private current: JournalState | null = null;
  /** Names of the records the journal holds (live after its confirmed entries). */
  private readonly channel: BroadcastChannel | null;

  constructor(
    private readonly host: JournalHost,
    private readonly storeName: string,
  ) {
    this.channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(`keepstate-journal:${storeName}`) : null;
    if (this.channel !== null) {
      (this.channel as { unref?(): void }).unref?.(); // Node: an open store's channel keeps no process alive
      this.channel.onmessage = () => this.release();
    }
    // A page kept in the back/forward cache, or frozen, runs nothing: it could not hear
    // another tab ask, so it lets go as it leaves (its next use takes the handle again).
    const win = globalThis as { addEventListener?(type: string, fn: () => void): void; removeEventListener?(type: string, fn: () => void): void; document?: object };
    if (win.document !== undefined && typeof win.addEventListener === 'function') {
      const release = () => this.release();
      win.addEventListener('pagehide', release);
      (win.document as { addEventListener?(type: string, fn: () => void): void }).addEventListener?.('freeze', release);
      this.stopListening = () => {
        win.removeEventListener?.('pagehide', release);
        (win.document as { removeEventListener?(type: string, fn: () => void): void }).removeEventListener?.('freeze', release);
      };
    }
  }

  private stopListening: () => void = () => undefined;

  /** Lets go of the handle if this realm holds it (another tab asked, or the page is leaving). */
  private release(): void {
    if (!this.held) return;
    this.held = false;
    void this.host.call({ op: 'release' }).catch(() => undefined);
  }

  /** Asks whoever holds store `storeName`'s journal to let go (deleteStore removes the file). */
  static askRelease(storeName: string): void {
    if (typeof BroadcastChannel !== 'function') return;
    const channel = new BroadcastChannel(`keepstate-journal:${storeName}`);
    channel.postMessage('release');
    channel.close();
  }

  /** Takes the handle (asking its holder to let go) and returns what the journal holds. */
  async state(): Promise<JournalState> {
    if (this.held && this.current !== null) return this.current;
    const deadline = performance.now() + HANDOVER_MS;
    for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
      const answer = (await this.host.call({ op: 'acquire' })) as JournalState | 'busy';
      if (answer !== 'busy') {
        this.held = true;
        this.current = answer;
        return answer;
      }
      if (performance.now() > deadline) {
        throw new KeepstateError('internal', `store "${this.storeName}": another tab kept the OPFS copy's journal for ${HANDOVER_MS / 1000} s`);
      }
      this.channel?.postMessage('release');
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  /** Appends `commit` (unconfirmed); returns its offset and the names among its deletes that
   * the journal does not hold (files of the copy, to remove once it is confirmed). */
  async append(commit: JournalCommit): Promise<{ offset: number; fileDeletes: RecordName[] }> {
    await this.state();
    return (await this.host.call({ op: 'append', commit })) as { offset: number; fileDeletes: RecordName[] };
  }

  async confirm(offset: number): Promise<void> {
    this.current = (await this.host.call({ op: 'confirm', offset })) as JournalState;
  }

  async undo(offset: number): Promise<void> {
    this.current = (await this.host.call({ op: 'undo', offset })) as JournalState;
  }

  async records(): Promise<JournalRecords> {
    await this.state();
    return (await this.host.call({ op: 'records' })) as JournalRecords;
  }

  async reset(): Promise<void> {
    await this.state();
    this.current = (await this.host.call({ op: 'reset' })) as JournalState;
  }

  close(): void {
    this.stopListening();
    this.channel?.close();
    this.held = false;
    this.host.close();
  }
}
