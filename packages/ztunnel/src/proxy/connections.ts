import type { RecordedConnection } from '@mesh/metrics';
import type { AuthorizeRequest } from './authorize.js';

/** A connection the proxy tracks for drain and, when inbound, for late policy re-checks. */
export interface TrackedConnection {
  /** Present on inbound connections: what policy was checked with. */
  authorize?: Omit<AuthorizeRequest, 'workload'> & { workloadUid: string };
  record?: RecordedConnection;
  /** Resolves when the connection has fully closed. */
  done: Promise<unknown>;
  /** Closes the connection now. */
  destroy(reason: Error): void;
}

/** The set of live connections of one proxy instance. */
export class ConnectionTracker {
  readonly #live = new Set<TrackedConnection>();

  add(c: TrackedConnection): TrackedConnection {
    this.#live.add(c);
    c.done.finally(() => this.#live.delete(c));
    return c;
  }

  get size(): number {
    return this.#live.size;
  }

  *inbound(): IterableIterator<
    TrackedConnection & { authorize: NonNullable<TrackedConnection['authorize']> }
  > {
    for (const c of this.#live) if (c.authorize) yield c as never;
  }

  /** Waits until every connection closed or `deadlineMs` passed, then closes the rest. */
  async drain(deadlineMs: number): Promise<number> {
    if (this.#live.size === 0) return 0;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), deadlineMs);
    });
    const all = Promise.allSettled([...this.#live].map((c) => c.done));
    const result = await Promise.race([all, deadline]);
    clearTimeout(timer);
    if (result !== 'timeout') return 0;
    const left = [...this.#live];
    for (const c of left) c.destroy(new Error('connection closed due to drain deadline'));
    return left.length;
  }

  destroyAll(reason: Error): void {
    for (const c of [...this.#live]) c.destroy(reason);
  }
}
