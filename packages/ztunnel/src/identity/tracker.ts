import type { CertificateSource, SpiffeId, WorkloadCertificate } from '@mesh/spiffe';
import type { CertificateStatus } from '../admin/config-dump.js';

/**
 * Wraps a `CertificateSource` and remembers, per identity, the last certificate handed out or
 * the last failure, for `/config_dump` and readiness.
 */
export class CertificateTracker implements CertificateSource {
  readonly #source: CertificateSource;
  readonly #status = new Map<string, CertificateStatus>();

  constructor(source: CertificateSource) {
    this.#source = source;
  }

  async getCertificate(
    identity: SpiffeId,
    options: { signal?: AbortSignal } = {},
  ): Promise<WorkloadCertificate> {
    const key = identity.toString();
    if (!this.#status.has(key)) this.#status.set(key, { identity: key, state: 'Initializing' });
    try {
      const certificate = await this.#source.getCertificate(identity, options);
      this.#status.set(key, { identity: key, state: 'Available', certificate });
      return certificate;
    } catch (err) {
      const previous = this.#status.get(key)?.certificate;
      // A still-valid certificate keeps being served; only report the failure when none is held.
      if (!previous || previous.notAfter.getTime() <= Date.now()) {
        this.#status.set(key, { identity: key, state: `Unavailable: ${(err as Error).message}` });
      }
      throw err;
    }
  }

  statuses(): CertificateStatus[] {
    return [...this.#status.values()];
  }
}
