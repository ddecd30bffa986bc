// The life of an open store, as one named phase and the transitions between
// phases, each with what makes it (SQLite's pager.c lists its states so):
//
//   opening ──the first restore resolved (Writer.restore)──────────────▶ open
//   opening ──openStore gave up (Store.discard)──────────────────────────▶ closed
//   open    ──close() began (Store.close)────────────────────────────────▶ closing
//   open    ──the page was unloaded, its work stashed (Writer.stashNow)──▶ left
//   open    ──discard(), deleteStore heard from elsewhere, the module aborted─▶ closed
//   left    ──close() began──────────────────────────────────────────────▶ closing
//   left    ──discard(), deleteStore heard from elsewhere, the module aborted─▶ closed
//   closing ──the final commit failed: close() rejects, nothing closed──▶ open | left
//   closing ──calls settled, the final commit landed, all released──────▶ closed
//
// What each phase allows:
//   opening  reads, writes and commits by openStore itself (restore, migrations);
//   open     everything;
//   left     reads and writes, no commit: the stash holds the page's work, and a
//            second write of it would apply it twice (docs/tabs.md);
//   closing  nothing new: every call throws ClosedError; queued work finishes;
//   closed   nothing: every call throws ClosedError, for good.
import { ClosedError, KeepstateError } from './errors.js';

export type Phase = 'opening' | 'open' | 'left' | 'closing' | 'closed';

const NEXT: Readonly<Record<Phase, readonly Phase[]>> = {
  opening: ['open', 'closed'],
  open: ['closing', 'left', 'closed'],
  left: ['closing', 'closed'],
  // closing → closed also when deleteStore is heard while a close waits its turn.
  closing: ['open', 'left', 'closed'],
  closed: [],
};

export class Lifecycle {
  private current: Phase = 'opening';
  /** The phase close() left from (closing returns there if the final commit fails). */
  private beforeClosing: Phase = 'open';

  constructor(private readonly storeName: string) {}

  get phase(): Phase {
    return this.current;
  }

  /** Why it closed: close() (or discard), deleteStore elsewhere, or its wasm module aborted (and how). */
  private closedBy: 'closed' | 'deleted' | 'aborted' = 'closed';
  private closedDetail = '';

  /** Moves to `next`. Invariant: only the transitions listed in the file comment happen. */
  to(next: Phase, why: 'closed' | 'deleted' | 'aborted' = 'closed', detail = ''): void {
    if (next === 'closed') {
      this.closedBy = why;
      this.closedDetail = detail;
    }
    if (!NEXT[this.current].includes(next)) {
      throw new KeepstateError('internal', `store "${this.storeName}": no transition from ${this.current} to ${next}`);
    }
    if (next === 'closing') this.beforeClosing = this.current;
    this.current = next;
  }

  /** closing → the phase close() began in (its final commit failed). */
  reopen(): void {
    this.to(this.beforeClosing);
  }

  /** Reads and writes are allowed (opening, open, left). */
  get usable(): boolean {
    return this.current === 'opening' || this.current === 'open' || this.current === 'left';
  }

  /** Throws ClosedError unless reads and writes are allowed. */
  assertUsable(): void {
    if (!this.usable) {
      const why = { closed: 'is closed', deleted: 'was deleted (deleteStore)', aborted: `is closed: ${this.closedDetail}` }[this.closedBy];
      throw new ClosedError(`store "${this.storeName}" ${why}`);
    }
  }

  /** Throws ClosedError unless a commit is allowed (not left, closing or closed). */
  assertCanCommit(): void {
    if (this.current === 'left') {
      throw new ClosedError(`store "${this.storeName}": the page was unloaded; its work is stashed for the next open`);
    }
  }
}
