/**
 * Readiness as ztunnel reports it: ready once every registered task is done, and never again
 * once draining starts (so load balancers stop sending traffic before listeners close).
 */
export class Readiness {
  readonly #pending = new Set<string>();
  #draining = false;

  /** Registers a task that must finish before the proxy is ready; returns its `done` callback. */
  register(task: string): () => void {
    this.#pending.add(task);
    return () => {
      this.#pending.delete(task);
    };
  }

  /** Marks a task pending again (e.g. the certificate became unavailable). */
  markPending(task: string): void {
    this.#pending.add(task);
  }

  markDone(task: string): void {
    this.#pending.delete(task);
  }

  drain(): void {
    this.#draining = true;
  }

  get ready(): boolean {
    return !this.#draining && this.#pending.size === 0;
  }

  /** What is still pending, sorted; `draining` first while shutting down. */
  get pending(): string[] {
    return [...(this.#draining ? ['draining'] : []), ...[...this.#pending].sort()];
  }
}
