// A store's events: who listens (Store.on) and their delivery. A throwing
// handler never breaks the store: its error is rethrown on a later microtask.
import { postTask } from './driver.js';
import { InvalidArgumentError } from './errors.js';
import { STORE_EVENTS, type StoreEventName, type StoreEvents } from './types.js';

export type Handler<E extends StoreEventName> = (event: StoreEvents[E]) => void;

export class StoreEmitter {
  private readonly handlers = new Map<StoreEventName, Set<(event: never) => void>>();

  /** Subscribes to an event; returns the unsubscribe function. */
  on<E extends StoreEventName>(event: E, handler: Handler<E>): () => void {
    if (!STORE_EVENTS.includes(event)) throw new InvalidArgumentError(`on: unknown event "${String(event)}"`);
    if (typeof handler !== 'function') throw new InvalidArgumentError('on: handler must be a function');
    let set = this.handlers.get(event);
    if (set === undefined) this.handlers.set(event, (set = new Set()));
    set.add(handler as (event: never) => void);
    return () => {
      set.delete(handler as (event: never) => void);
    };
  }

  /** Whether anyone listens to `event`. */
  heard(event: StoreEventName): boolean {
    return (this.handlers.get(event)?.size ?? 0) > 0;
  }

  emit<E extends StoreEventName>(event: E, payload: StoreEvents[E]): void {
    for (const handler of [...(this.handlers.get(event) ?? [])]) {
      try {
        (handler as Handler<E>)(payload);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }

  /** emit() on a later task, so a handler attached right after the call that caused it hears it. */
  emitSoon<E extends StoreEventName>(event: E, payload: StoreEvents[E]): void {
    postTask(() => this.emit(event, payload));
  }
}
