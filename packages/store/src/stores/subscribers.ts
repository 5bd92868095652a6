import type { PoolSnapshot } from '../pool/types.js';

export type ListenerErrorHandler = (err: unknown) => void;

/**
 * Default for a throwing listener: rethrow outside the store's call stack. The write has
 * already been applied, so failing the proposer would lie to it; a listener bug should
 * crash loudly (uncaughtException) like an EventEmitter listener would.
 */
const rethrowLater: ListenerErrorHandler = (err) => {
  queueMicrotask(() => {
    throw err;
  });
};

/** The subscriber list every PoolStore implementation needs. */
export class Subscribers {
  private readonly listeners = new Set<(snapshot: PoolSnapshot) => void>();

  constructor(private readonly onError: ListenerErrorHandler = rethrowLater) {}

  add(listener: (snapshot: PoolSnapshot) => void): () => void {
    // Wrap so the same function subscribed twice gets two independent subscriptions.
    const entry = (snapshot: PoolSnapshot): void => listener(snapshot);
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
    };
  }

  notify(snapshot: PoolSnapshot): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(snapshot);
      } catch (err) {
        this.onError(err);
      }
    }
  }

  clear(): void {
    this.listeners.clear();
  }
}
