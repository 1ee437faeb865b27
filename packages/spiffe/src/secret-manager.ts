import { EventEmitter } from 'eventemitter3';
import type { CertificateSource, WorkloadCertificate } from './certificate.js';
import { channels } from './diagnostics.js';
import { SpiffeError } from './errors.js';
import type { CertificateIssuer } from './issuer.js';
import type { SpiffeId } from './spiffe-id.js';
import { refreshTime } from './svid.js';
import { parseCertificates } from './x509.js';

/** Fetch priorities, highest first, as ztunnel orders them. */
export type FetchPriority = 'realtime' | 'warmup' | 'background';
const RANK: Record<FetchPriority, number> = { realtime: 0, warmup: 1, background: 2 };

export interface BackoffOptions {
  /** First retry delay. Default 500 ms. */
  initialMs?: number;
  /** Ceiling. Default 150 000 ms. */
  maxMs?: number;
  /** Growth factor. Default 2. */
  multiplier?: number;
  /** Relative jitter, ± this fraction. Default 0.2. */
  jitter?: number;
}

export interface SecretManagerOptions {
  /** Where certificates come from: a {@link LocalCa} or an {@link IstioCaClient}. */
  issuer: CertificateIssuer;
  /** Requested lifetime; the issuer's default when absent. */
  ttlSeconds?: number;
  /** At most this many fetches (CSRs) in flight at once. Default 8. */
  maxConcurrentFetches?: number;
  /** Refresh at this fraction of a certificate's lifetime. Default 0.5. */
  refreshFraction?: number;
  backoff?: BackoffOptions;
}

export interface RotatedEvent {
  identity: SpiffeId;
  certificate: WorkloadCertificate;
  /** The certificate it replaces, still valid until its own notAfter. */
  previous: WorkloadCertificate | undefined;
}

export interface FetchErrorEvent {
  identity: SpiffeId;
  error: Error;
  /** When the next attempt is scheduled. */
  retryInMs: number;
  /** True while a still-valid certificate keeps being served. */
  serving: boolean;
}

export interface SecretManagerEvents {
  /** A new certificate was stored for an identity (its first one, or a rotation). */
  rotated: (event: RotatedEvent) => void;
  /** A fetch failed; a retry is scheduled. (eventemitter3 does not throw on unhandled `error`.) */
  error: (event: FetchErrorEvent) => void;
  /** An identity was dropped by {@link SecretManager.forget}. */
  forgotten: (identity: SpiffeId) => void;
}

/** Plain-data state of one identity, for admin dumps. */
export interface CertificateStatus {
  identity: string;
  /** `Initializing`, `Available` or `Unavailable: <error message>`, as ztunnel's config_dump. */
  state: string;
  serialNumber?: string;
  /** RFC 3339. */
  validFrom?: string;
  /** RFC 3339. */
  expirationTime?: string;
  /** Leaf and intermediates; `pem` is base64 of the PEM, as ztunnel prints it. */
  certChain: CertificateDumpEntry[];
  rootCerts: CertificateDumpEntry[];
  /** When the next fetch is due (RFC 3339), if one is scheduled. */
  nextFetch?: string;
}

export interface CertificateDumpEntry {
  pem: string;
  serialNumber: string;
  validFrom: string;
  expirationTime: string;
}

interface Waiter {
  resolve(cert: WorkloadCertificate): void;
  reject(err: unknown): void;
}

interface Entry {
  readonly identity: SpiffeId;
  readonly key: string;
  cert: WorkloadCertificate | undefined;
  lastError: Error | undefined;
  /** Queued (not yet started) fetch at this priority. */
  queued: FetchPriority | undefined;
  inFlight: AbortController | undefined;
  waiters: Set<Waiter>;
  timer: NodeJS.Timeout | undefined;
  nextFetchAt: number | undefined;
  /** The next backoff delay before jitter. */
  backoffMs: number;
  seq: number;
}

/**
 * Keeps one X.509-SVID per identity, fetched on demand and refreshed in the background the way
 * ztunnel's SecretManager does: priorities (a waiting connection before prefetch before
 * scheduled refresh), coalescing, at most 8 CSRs in flight, refresh at half the lifetime,
 * per-identity exponential backoff with jitter while a still-valid certificate keeps being
 * served. Certificates are immutable; a rotation emits `rotated` with a new object.
 */
export class SecretManager extends EventEmitter<SecretManagerEvents> implements CertificateSource {
  readonly #issuer: CertificateIssuer;
  readonly #ttl: number | undefined;
  readonly #max: number;
  readonly #fraction: number;
  readonly #backoff: Required<BackoffOptions>;
  readonly #entries = new Map<string, Entry>();
  #running = 0;
  #seq = 0;
  #closed = false;
  readonly #settling = new Set<Promise<void>>();

  constructor(options: SecretManagerOptions) {
    super();
    if (!options?.issuer || typeof options.issuer.issue !== 'function') {
      throw new SpiffeError('ERR_SPIFFE_INVALID_ARGUMENT', 'issuer is required');
    }
    this.#issuer = options.issuer;
    this.#ttl = options.ttlSeconds;
    this.#max = options.maxConcurrentFetches ?? 8;
    this.#fraction = options.refreshFraction ?? 0.5;
    if (!(this.#max >= 1) || !(this.#fraction > 0 && this.#fraction < 1)) {
      throw new SpiffeError(
        'ERR_SPIFFE_INVALID_ARGUMENT',
        'maxConcurrentFetches must be >= 1 and refreshFraction in (0, 1)',
      );
    }
    this.#backoff = {
      initialMs: options.backoff?.initialMs ?? 500,
      maxMs: options.backoff?.maxMs ?? 150_000,
      multiplier: options.backoff?.multiplier ?? 2,
      jitter: options.backoff?.jitter ?? 0.2,
    };
  }

  /**
   * The current certificate for `identity`. Returns at once while a valid one is held (even
   * during its refresh); otherwise fetches at `realtime` priority, sharing the fetch with
   * every other caller waiting for the same identity. A failed fetch rejects the waiters with
   * its error (a connection fails fast) and schedules a retry with backoff.
   */
  getCertificate(
    identity: SpiffeId,
    options: { signal?: AbortSignal; priority?: FetchPriority } = {},
  ): Promise<WorkloadCertificate> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#closed) return Promise.reject(closedError());
    const entry = this.#entry(identity);
    if (entry.cert && Date.now() <= entry.cert.notAfter.getTime()) {
      return Promise.resolve(entry.cert);
    }
    return new Promise<WorkloadCertificate>((resolve, reject) => {
      const onAbort = () => {
        entry.waiters.delete(waiter);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        resolve: (cert) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(cert);
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      entry.waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#request(entry, options.priority ?? 'realtime');
    });
  }

  /** Starts fetching `identity` ahead of need (ztunnel's Warmup) unless a valid certificate is held. */
  prefetch(identity: SpiffeId, priority: FetchPriority = 'warmup'): void {
    if (this.#closed) return;
    const entry = this.#entry(identity);
    if (entry.cert && Date.now() <= entry.cert.notAfter.getTime()) return;
    this.#request(entry, priority);
  }

  /** The certificate held for `identity` without fetching, if any (possibly expired). */
  peek(identity: SpiffeId): WorkloadCertificate | undefined {
    return this.#entries.get(identity.toString())?.cert;
  }

  /**
   * Drops `identity`: its timer, its queued or in-flight fetch, and its certificate. Callers
   * still waiting for it are rejected with `ERR_SPIFFE_FORGOTTEN`.
   */
  forget(identity: SpiffeId): boolean {
    const entry = this.#entries.get(identity.toString());
    if (!entry) return false;
    this.#entries.delete(entry.key);
    this.#drop(entry, new SpiffeError('ERR_SPIFFE_FORGOTTEN', `${identity} was forgotten`));
    this.emit('forgotten', entry.identity);
    return true;
  }

  /** Identities currently tracked. */
  identities(): SpiffeId[] {
    return [...this.#entries.values()].map((e) => e.identity);
  }

  /** State of every identity, as plain data (ztunnel's config_dump `certificates`). */
  dump(): CertificateStatus[] {
    return [...this.#entries.values()].map((e) => this.#status(e));
  }

  /** State of one identity, or `undefined` when not tracked. */
  status(identity: SpiffeId): CertificateStatus | undefined {
    const entry = this.#entries.get(identity.toString());
    return entry ? this.#status(entry) : undefined;
  }

  /**
   * Stops all timers and aborts fetches in flight; waiting callers are rejected with
   * `ERR_SPIFFE_CLOSED`. Resolves once the fetches have settled. Idempotent.
   */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      for (const entry of this.#entries.values()) this.#drop(entry, closedError());
      this.#entries.clear();
    }
    await Promise.allSettled([...this.#settling]);
  }

  #entry(identity: SpiffeId): Entry {
    const key = identity.toString();
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = {
        identity,
        key,
        cert: undefined,
        lastError: undefined,
        queued: undefined,
        inFlight: undefined,
        waiters: new Set(),
        timer: undefined,
        nextFetchAt: undefined,
        backoffMs: this.#backoff.initialMs,
        seq: 0,
      };
      this.#entries.set(key, entry);
    }
    return entry;
  }

  /** Queues a fetch, or raises the priority of the queued one; in-flight fetches are shared. */
  #request(entry: Entry, priority: FetchPriority): void {
    if (entry.inFlight) return;
    if (entry.queued === undefined || RANK[priority] < RANK[entry.queued]) {
      if (entry.queued === undefined) entry.seq = ++this.#seq;
      entry.queued = priority;
    }
    this.#clearTimer(entry);
    this.#pump();
  }

  #pump(): void {
    while (this.#running < this.#max) {
      let next: Entry | undefined;
      for (const e of this.#entries.values()) {
        if (e.queued === undefined) continue;
        if (
          !next ||
          RANK[e.queued] < RANK[next.queued!] ||
          (e.queued === next.queued && e.seq < next.seq)
        ) {
          next = e;
        }
      }
      if (!next) return;
      this.#start(next);
    }
  }

  #start(entry: Entry): void {
    entry.queued = undefined;
    const controller = new AbortController();
    entry.inFlight = controller;
    this.#running++;
    const settled = this.#issuer
      .issue(entry.identity, { ttlSeconds: this.#ttl, signal: controller.signal })
      .then(
        (cert) =>
          isWorkloadCertificate(cert)
            ? this.#onSuccess(entry, controller, cert)
            : this.#onFailure(
                entry,
                controller,
                new SpiffeError(
                  'ERR_SPIFFE_CA_RESPONSE_INVALID',
                  'issuer resolved without a certificate',
                ),
              ),
        (err: unknown) => this.#onFailure(entry, controller, err),
      )
      .catch((err: unknown) => {
        // Our own bug, or a listener's: fail the waiters rather than leave them hanging.
        for (const w of entry.waiters) w.reject(err);
        entry.waiters.clear();
      })
      .finally(() => {
        this.#running--;
        this.#settling.delete(settled);
        if (!this.#closed) this.#pump();
      });
    this.#settling.add(settled);
  }

  #onSuccess(entry: Entry, controller: AbortController, cert: WorkloadCertificate): void {
    if (entry.inFlight !== controller) return; // forgotten or closed meanwhile
    entry.inFlight = undefined;
    const previous = entry.cert;
    entry.cert = cert;
    entry.lastError = undefined;
    const now = Date.now();
    let delay: number;
    if (cert.notBefore.getTime() > now) {
      // A CA clock ahead of ours: refresh soon, but back off so it cannot spin.
      delay = this.#nextBackoff(entry);
    } else {
      entry.backoffMs = this.#backoff.initialMs;
      delay = refreshTime(cert, new Date(now), this.#fraction).getTime() - now;
    }
    this.#schedule(entry, delay);
    for (const w of entry.waiters) w.resolve(cert);
    entry.waiters.clear();
    if (channels.rotated.hasSubscribers) {
      channels.rotated.publish({
        identity: entry.key,
        serialNumber: cert.serialNumber,
        notAfter: cert.notAfter,
        previousSerialNumber: previous?.serialNumber,
      });
    }
    this.#emitSafely('rotated', { identity: entry.identity, certificate: cert, previous });
  }

  #onFailure(entry: Entry, controller: AbortController, err: unknown): void {
    if (entry.inFlight !== controller) return;
    entry.inFlight = undefined;
    const error = err instanceof Error ? err : new Error(String(err));
    entry.lastError = error;
    const now = Date.now();
    const valid = entry.cert !== undefined && now <= entry.cert.notAfter.getTime();
    let delay = this.#nextBackoff(entry);
    // Retry no later than expiry, so a recovering CA replaces the certificate in time.
    if (valid) delay = Math.max(0, Math.min(delay, entry.cert!.notAfter.getTime() - now));
    this.#schedule(entry, delay);
    const waiters = [...entry.waiters];
    entry.waiters.clear();
    for (const w of waiters) {
      // A caller that arrived while a valid cert existed never waits; this covers expired ones.
      if (valid) w.resolve(entry.cert!);
      else w.reject(error);
    }
    if (channels.fetchError.hasSubscribers) {
      channels.fetchError.publish({ identity: entry.key, error, retryInMs: delay });
    }
    this.#emitSafely('error', {
      identity: entry.identity,
      error,
      retryInMs: delay,
      serving: valid,
    });
  }

  #nextBackoff(entry: Entry): number {
    const base = entry.backoffMs;
    entry.backoffMs = Math.min(this.#backoff.maxMs, base * this.#backoff.multiplier);
    const j = this.#backoff.jitter;
    return Math.round(base * (1 - j + Math.random() * 2 * j));
  }

  #schedule(entry: Entry, delayMs: number): void {
    this.#clearTimer(entry);
    if (this.#closed || !this.#entries.has(entry.key)) return;
    // Timers cap at 2^31-1 ms (~24.8 days); longer waits re-arm.
    const capped = Math.min(Math.max(0, delayMs), 2_147_483_647);
    entry.nextFetchAt = Date.now() + delayMs;
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      if (capped < delayMs) this.#schedule(entry, delayMs - capped);
      else {
        entry.nextFetchAt = undefined;
        this.#request(entry, 'background');
      }
    }, capped);
    entry.timer.unref();
  }

  #clearTimer(entry: Entry): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.nextFetchAt = undefined;
  }

  #drop(entry: Entry, reason: SpiffeError): void {
    this.#clearTimer(entry);
    entry.queued = undefined;
    entry.inFlight?.abort(reason);
    entry.inFlight = undefined;
    for (const w of entry.waiters) w.reject(reason);
    entry.waiters.clear();
  }

  /** A throwing listener must not break the manager's bookkeeping. */
  #emitSafely<E extends keyof SecretManagerEvents>(
    event: E,
    ...args: Parameters<SecretManagerEvents[E]>
  ): void {
    try {
      (this.emit as (e: E, ...a: Parameters<SecretManagerEvents[E]>) => boolean)(event, ...args);
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  }

  #status(entry: Entry): CertificateStatus {
    const cert = entry.cert;
    const valid = cert !== undefined && Date.now() <= cert.notAfter.getTime();
    const state =
      valid || (cert && !entry.lastError)
        ? 'Available'
        : entry.lastError
          ? `Unavailable: ${entry.lastError.message}`
          : 'Initializing';
    const status: CertificateStatus = {
      identity: entry.key,
      state,
      certChain: cert ? dumpEntries([cert.leaf, ...cert.intermediates]) : [],
      rootCerts: cert ? dumpEntries(cert.roots) : [],
    };
    if (cert) {
      status.serialNumber = cert.serialNumber;
      status.validFrom = cert.notBefore.toISOString();
      status.expirationTime = cert.notAfter.toISOString();
    }
    if (entry.nextFetchAt !== undefined)
      status.nextFetch = new Date(entry.nextFetchAt).toISOString();
    return status;
  }
}

function dumpEntries(pems: readonly string[]): CertificateDumpEntry[] {
  return parseCertificates(pems).map((c) => ({
    pem: Buffer.from(c.pem).toString('base64'),
    serialNumber: c.serialNumber,
    validFrom: c.notBefore.toISOString(),
    expirationTime: c.notAfter.toISOString(),
  }));
}

function isWorkloadCertificate(value: unknown): value is WorkloadCertificate {
  const c = value as WorkloadCertificate | undefined;
  return c?.notAfter instanceof Date && c.notBefore instanceof Date && typeof c.leaf === 'string';
}

function closedError(): SpiffeError {
  return new SpiffeError('ERR_SPIFFE_CLOSED', 'SecretManager is closed');
}
