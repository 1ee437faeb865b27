export {
  type CreateCertificateOptions,
  IstioCaClient,
  type IstioCaClientOptions,
} from './ca-client.js';
export {
  CREATE_CERTIFICATE_PATH,
  type IstioCertificateRequest,
  type IstioCertificateResponse,
  istioCertificateService,
} from './ca-proto.js';
export {
  type AuthenticateRequest,
  type CaCaller,
  IstioCaServer,
  type IstioCaServerOptions,
} from './ca-server.js';
export type { CertificateSource, WorkloadCertificate } from './certificate.js';
export { type CsrWithKey, createCsr, type ParsedCsr, parseCsr } from './csr.js';
export { channels } from './diagnostics.js';
export { SPIFFE_ERROR_CODES, SpiffeError, type SpiffeErrorCode } from './errors.js';
export type { CertificateIssuer, IssueOptions } from './issuer.js';
export {
  CA_FILES,
  type CaMaterial,
  createRootMaterial,
  LocalCa,
  type LocalCaOptions,
  type OpenLocalCaOptions,
  type SignCsrOptions,
} from './local-ca.js';
export { decodePem, encodePem, type PemBlock } from './pem.js';
export {
  type BackoffOptions,
  type CertificateDumpEntry,
  type CertificateStatus,
  type FetchErrorEvent,
  type FetchPriority,
  type RotatedEvent,
  SecretManager,
  type SecretManagerEvents,
  type SecretManagerOptions,
} from './secret-manager.js';
export { assertTrustDomain, IstioIdentity, SpiffeId } from './spiffe-id.js';
export {
  type HasValidity,
  hasTrustDomain,
  isExpired,
  istioIdentityFromX509,
  lifetimeElapsed,
  matchExpectedIdentity,
  refreshTime,
  spiffeIdFromCertificate,
  spiffeIdFromX509,
  TrustBundle,
  timeToExpiry,
  uriSansOf,
  type VerifiedChain,
  type VerifyOptions,
  verifyChain,
  X509Svid,
} from './svid.js';
export {
  createWorkloadCertificate,
  leafOf,
  type WorkloadCertificateParts,
  workloadCertificateFromCertChain,
} from './workload-certificate.js';
export {
  type KeyUsageName,
  ParsedCertificate,
  parseCertificate,
  parseCertificates,
} from './x509.js';
