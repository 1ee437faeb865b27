export type { CertificateSource, WorkloadCertificate } from './certificate.js';
export { SPIFFE_ERROR_CODES, SpiffeError, type SpiffeErrorCode } from './errors.js';
export { assertTrustDomain, IstioIdentity, SpiffeId } from './spiffe-id.js';
