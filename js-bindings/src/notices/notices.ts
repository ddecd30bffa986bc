// Commit notices: a writer announces each version it committed, and hears the
// versions other writers of the same store announce (other tabs, Workers, and
// later a sync server's feed), so it can follow them (docs/tabs.md). A notice
// is only a hint to read storage: what is read is verified, and a notice that
// is lost costs a later catch-up, never a wrong state.
//
// Implementations: BroadcastChannel (broadcast.ts) between the tabs and
// Workers of an origin; memory (here) between stores of one realm.

/** What a notice says: `writer` committed `version`, or deleted the store (deleteStore). */
export type Notice = { kind: 'commit'; version: number; writer: number } | { kind: 'deleted'; writer: number };

/** Hears one notice. */
export type NoticeListener = (notice: Notice) => void;

export interface CommitNotices {
  /** Tells the other writers of the store. */
  announce(notice: Notice): void;
  /** Calls `fn` for every notice of another writer; returns the unsubscribe function. */
  listen(fn: NoticeListener): () => void;
  close(): void;
}

/** A notice as it arrived from elsewhere (a message), if it is one. */
export function asNotice(data: unknown): Notice | null {
  const { kind, version, writer } = (data ?? {}) as { kind?: unknown; version?: unknown; writer?: unknown };
  if (typeof writer !== 'number') return null;
  if (kind === 'deleted') return { kind, writer };
  if ((kind === 'commit' || kind === undefined) && typeof version === 'number') return { kind: 'commit', version, writer };
  return null;
}

const realm = new Map<string, Set<MemoryNotices>>();

/** Notices between the stores of one name in this realm (storage 'memory', tests). */
export class MemoryNotices implements CommitNotices {
  private readonly listeners = new Set<NoticeListener>();
  private readonly peers: Set<MemoryNotices>;

  constructor(storeName: string) {
    let peers = realm.get(storeName);
    if (peers === undefined) realm.set(storeName, (peers = new Set()));
    this.peers = peers;
    peers.add(this);
  }

  announce(notice: Notice): void {
    for (const peer of this.peers) {
      if (peer === this) continue;
      for (const fn of peer.listeners) queueMicrotask(() => fn(notice));
    }
  }

  listen(fn: NoticeListener): () => void {
    this.listeners.add(fn);
    return () => {
      this.listeners.delete(fn);
    };
  }

  close(): void {
    this.listeners.clear();
    this.peers.delete(this);
  }
}
