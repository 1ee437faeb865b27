import {
  type CertificateIssuer,
  refreshTime,
  type SpiffeId,
  type WorkloadCertificate,
} from '@mesh/spiffe';

interface Entry {
  certificate?: WorkloadCertificate;
  inflight?: Promise<WorkloadCertificate>;
}

/**
 * A certificate cache over an issuer: the first request for an identity waits for the issuer;
 * later ones get the cached certificate, and once half its lifetime has passed a renewal runs
 * in the background while the still-valid certificate keeps being served.
 */
export class RotatingCertificateSource {
  readonly #issuer: CertificateIssuer;
  readonly #ttlSeconds: number;
  readonly #entries = new Map<string, Entry>();
  readonly #onError: (identity: SpiffeId, err: unknown) => void;

  constructor(
    issuer: CertificateIssuer,
    options: { ttlSeconds: number; onError?: (identity: SpiffeId, err: unknown) => void },
  ) {
    this.#issuer = issuer;
    this.#ttlSeconds = options.ttlSeconds;
    this.#onError = options.onError ?? (() => {});
  }

  async getCertificate(
    identity: SpiffeId,
    options: { signal?: AbortSignal } = {},
  ): Promise<WorkloadCertificate> {
    const key = identity.toString();
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = {};
      this.#entries.set(key, entry);
    }
    const now = new Date();
    const current = entry.certificate;
    if (current && current.notAfter > now) {
      if (refreshTime(current, now) <= now)
        this.#renew(identity, entry).catch((err) => this.#onError(identity, err));
      return current;
    }
    options.signal?.throwIfAborted();
    return this.#renew(identity, entry);
  }

  #renew(identity: SpiffeId, entry: Entry): Promise<WorkloadCertificate> {
    entry.inflight ??= this.#issuer
      .issue(identity, { ttlSeconds: this.#ttlSeconds })
      .then((certificate) => {
        entry.certificate = certificate;
        return certificate;
      })
      .finally(() => {
        entry.inflight = undefined;
      });
    return entry.inflight;
  }
}
