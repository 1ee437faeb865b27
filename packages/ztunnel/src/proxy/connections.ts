import type { RecordedConnection } from '@mesh/metrics';
import type { AuthorizeRequest } from './authorize.js';

/**
 * Feeds a connection's running byte totals into its metrics record as deltas, so counters move
 * while a long connection runs (on every scrape) and not only when it closes.
 */
export class ByteCounter {
  #request = 0;
  #response = 0;

  constructor(
    readonly record: RecordedConnection,
    readonly totals: () => { request: number; response: number },
  ) {}

  flush(totals = this.totals()): void {
    if (this.record.closed) return;
    if (totals.request > this.#request) this.record.addRequestBytes(totals.request - this.#request);
    if (totals.response > this.#response)
      this.record.addResponseBytes(totals.response - this.#response);
    this.#request = Math.max(this.#request, totals.request);
    this.#response = Math.max(this.#response, totals.response);
  }
}

/** A connection the proxy tracks for drain and, when inbound, for late policy re-checks. */
export interface TrackedConnection {
  /** Present on inbound connections: what policy was checked with. */
  authorize?: Omit<AuthorizeRequest, 'workload'> & { workloadUid: string };
  record?: RecordedConnection;
  bytes?: ByteCounter;
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

  /** Pushes every live connection's byte counts into metrics (called before a scrape). */
  flushBytes(): void {
    for (const c of this.#live) c.bytes?.flush();
  }

  destroyAll(reason: Error): void {
    for (const c of [...this.#live]) c.destroy(reason);
  }
}
