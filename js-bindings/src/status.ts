// A store's own state, for a UI to show ("saved, version 12", "unsaved
// changes", "closed"): storeStatus() reads it, watchStatus() calls a listener
// whenever it changed. keepstate/react's useStoreStatus is built on them; any
// other UI library can be too.
//
// The store tells its StatusNotifier when its status may have changed (a
// local write, a mutator's slice of work, a commit, a catch-up with another
// tab, a rebase, a reload, close); the notifier tells its listeners once the
// code that caused it returns (a microtask), so a run of a thousand writes is
// one notification, and a listener reads the status after all of them.
//
// Invariants:
//  - A listener is called only when the status differs from what it was
//    last told (or, for its first call, from what it was when it subscribed).
//  - After the store closed, listeners hear the closed status once, then
//    nothing: subscribing to a closed store is allowed and does nothing.
/** What status.ts reads of a store (a Store has it). */
export interface StatusSource {
  readonly version: number;
  readonly dirty: boolean;
  /** @internal */
  readonly statusNotifier: StatusNotifier;
}

/**
 * What a store's status is at a moment. New fields (a sync status) may be
 * added; a UI that reads the ones it knows keeps working.
 */
export interface StoreStatus {
  /** The committed version the state is based on (0: never committed); after close, the last one. */
  readonly version: number;
  /** There are changes not yet committed (false once closed: close commits them). */
  readonly dirty: boolean;
  /** close() finished (or open gave up on the store): the status no longer changes. */
  readonly closed: boolean;
}

/** One per store: who listens to its status, and when to tell them (the store keeps it; apps use watchStatus). */
export class StatusNotifier {
  private readonly listeners = new Set<() => void>();
  private posted = false;
  private closedFlag = false;

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Calls `listener` after the status may have changed; returns the remover (a no-op once closed). */
  add(listener: () => void): () => void {
    if (this.closedFlag) return () => undefined;
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** The status may have changed: tell the listeners after the current code returns. Cheap when nobody listens. */
  changed(): void {
    if (this.posted || this.listeners.size === 0) return;
    this.posted = true;
    queueMicrotask(() => {
      this.posted = false;
      tell([...this.listeners]);
    });
  }

  /** The store closed: tell the listeners one last time, then forget them. */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    const listeners = [...this.listeners];
    this.listeners.clear();
    if (listeners.length > 0) queueMicrotask(() => tell(listeners));
  }
}

function tell(listeners: Array<() => void>): void {
  for (const listener of listeners) {
    try {
      listener();
    } catch (e) {
      // A throwing listener must not stop the others (nor the store).
      queueMicrotask(() => {
        throw e;
      });
    }
  }
}

/** The store's status now. Never throws, also after close(). */
export function storeStatus(store: StatusSource): StoreStatus {
  const closed = store.statusNotifier.closed;
  return { version: store.version, dirty: closed ? false : store.dirty, closed };
}

/**
 * Calls `listener` with the store's status each time it changes (after this store's
 * writes, a mutator's work, a commit, a catch-up with another tab's commit, a rebase,
 * reload() and close()), once per synchronous run of changes. Returns the function
 * that stops it. On a closed store, returns a no-op and never calls `listener`.
 */
export function watchStatus(store: StatusSource, listener: (status: StoreStatus) => void): () => void {
  let last = storeStatus(store);
  return store.statusNotifier.add(() => {
    const now = storeStatus(store);
    if (now.version === last.version && now.dirty === last.dirty && now.closed === last.closed) return;
    last = now;
    listener(now);
  });
}
