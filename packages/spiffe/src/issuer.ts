import type { WorkloadCertificate } from './certificate.js';
import type { SpiffeId } from './spiffe-id.js';

export interface IssueOptions {
  /** Requested lifetime in seconds; the issuer's default (24 h) when absent. */
  ttlSeconds?: number;
  signal?: AbortSignal;
}

/**
 * Turns an identity into a fresh certificate: a new key, a CSR and a signature. Implemented
 * by {@link LocalCa} (in-process) and {@link IstioCaClient} (istiod or `IstioCaServer` over
 * gRPC), so {@link SecretManager} can use either.
 */
export interface CertificateIssuer {
  issue(identity: SpiffeId, options?: IssueOptions): Promise<WorkloadCertificate>;
}
