// Commit notices over a BroadcastChannel named after the store
// (`keepstate:<name>`): every tab and Worker of the origin that opened the
// store hears them (notices.ts).
import { asNotice, type CommitNotices, type Notice, type NoticeListener } from './notices.js';

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

  announce(notice: Notice): void {
    this.channel.postMessage(notice);
  }

  listen(fn: NoticeListener): () => void {
    const listener = (event: MessageEvent) => {
      const notice = asNotice(event.data);
      if (notice !== null) fn(notice);
    };
    this.channel.addEventListener('message', listener);
    return () => this.channel.removeEventListener('message', listener);
  }

  close(): void {
    this.channel.close();
  }
}
