// Commit notices over a BroadcastChannel named after the store
// (`keepstate:<name>`): every tab and Worker of the origin that opened the
// store hears them (notices.ts).
import type { CommitNotices, NoticeListener } from './notices.js';

export class BroadcastNotices implements CommitNotices {
  private readonly channel: BroadcastChannel;

  constructor(storeName: string) {
    this.channel = new BroadcastChannel(`keepstate:${storeName}`);
    // Node: an open channel must not keep the process alive.
    (this.channel as unknown as { unref?(): void }).unref?.();
  }

  /** Whether this realm has BroadcastChannel. */
  static available(): boolean {
    return typeof BroadcastChannel !== 'undefined';
  }

  announce(version: number, writer: number): void {
    this.channel.postMessage({ version, writer });
  }

  listen(fn: NoticeListener): () => void {
    const listener = (event: MessageEvent) => {
      const { version, writer } = (event.data ?? {}) as { version?: unknown; writer?: unknown };
      if (typeof version === 'number' && typeof writer === 'number') fn(version, writer);
    };
    this.channel.addEventListener('message', listener);
    return () => this.channel.removeEventListener('message', listener);
  }

  close(): void {
    this.channel.close();
  }
}
