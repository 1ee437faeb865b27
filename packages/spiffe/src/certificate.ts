import type { SpiffeId } from './spiffe-id.js';

/**
 * A workload's X.509-SVID with its key and trust anchors, as PEM strings ready for
 * `tls.createSecureContext`. Immutable: a rotation produces a new object, so consumers may
 * cache derived state (a `SecureContext`) keyed by the object itself.
 */
export interface WorkloadCertificate {
  /** The SPIFFE ID in the leaf's single URI SAN. */
  readonly identity: SpiffeId;
  /** PKCS#8 PEM of the leaf's private key. */
  readonly privateKey: string;
  /** PEM of the leaf certificate. */
  readonly leaf: string;
  /** PEMs of intermediates, leaf's issuer first; presented with the leaf in TLS. */
  readonly intermediates: readonly string[];
  /** PEMs of the trust anchors (root bundle) peers are verified against. */
  readonly roots: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Leaf serial number, lowercase hex. */
  readonly serialNumber: string;
}

/** Anything that hands out the current certificate for an identity (e.g. `SecretManager`). */
export interface CertificateSource {
  /**
   * The current certificate for `identity`, fetching it first when none is held. Returns the
   * same object until the certificate rotates.
   */
  getCertificate(
    identity: SpiffeId,
    options?: { signal?: AbortSignal },
  ): Promise<WorkloadCertificate>;
}
