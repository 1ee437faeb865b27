const brand = Symbol.for('@mesh/spiffe.SpiffeError');

/**
 * Every code a {@link SpiffeError} can carry, with what it means. Codes are stable: match on
 * `err.code`, never on the message.
 */
export const SPIFFE_ERROR_CODES = {
  ERR_SPIFFE_ID_INVALID:
    'The string is not a valid SPIFFE ID; the message names the rule it breaks.',
  ERR_SPIFFE_ID_NOT_ISTIO:
    "A valid SPIFFE ID that is not of Istio's form spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.",
  ERR_SPIFFE_INVALID_ARGUMENT:
    'An option or argument is out of range or of the wrong type; the message names it.',
  ERR_SPIFFE_PEM_INVALID:
    'The input is not well-formed PEM (bad armour or base64) or holds no block of the expected type.',
  ERR_SPIFFE_CERT_INVALID: 'A certificate could not be decoded as DER X.509.',
  ERR_SPIFFE_KEY_INVALID:
    'A private key could not be decoded, or it does not match the certificate it belongs to.',
  ERR_SPIFFE_KEY_UNSUPPORTED:
    'The key type is not supported here (workload keys must be ECDSA P-256/P-384; CA keys ECDSA P-256/P-384 or RSA).',
  ERR_SPIFFE_CSR_INVALID: 'A certificate signing request could not be decoded as PKCS#10.',
  ERR_SPIFFE_CSR_KEY_UNSUPPORTED:
    'The CSR carries a public key or signature algorithm other than ECDSA P-256/P-384 with SHA-256/SHA-384 (e.g. RSA).',
  ERR_SPIFFE_CSR_SIGNATURE_INVALID:
    "The CSR's self-signature does not verify with the public key it carries.",
  ERR_SPIFFE_CSR_IDENTITY_REJECTED:
    "The CSR's URI SAN is missing, not exactly one, not a SPIFFE ID, outside the CA's trust domain, or not the identity the caller may request.",
  ERR_SPIFFE_SVID_NO_URI_SAN: 'The leaf certificate carries no URI SAN, so it names no SPIFFE ID.',
  ERR_SPIFFE_SVID_MULTIPLE_URI_SANS:
    'The leaf certificate carries more than one URI SAN; an X.509-SVID must carry exactly one.',
  ERR_SPIFFE_SVID_URI_NOT_SPIFFE: "The leaf certificate's URI SAN is not a valid SPIFFE ID.",
  ERR_SPIFFE_SVID_INVALID:
    'The leaf breaks the X.509-SVID profile: it is a CA, lacks digitalSignature, or may sign certificates or CRLs.',
  ERR_SPIFFE_CERT_EXPIRED:
    'A certificate in the chain is past its notAfter at the time of validation.',
  ERR_SPIFFE_CERT_NOT_YET_VALID:
    'A certificate in the chain is before its notBefore at the time of validation.',
  ERR_SPIFFE_CHAIN_UNTRUSTED:
    'The chain does not lead to any root of the trust bundle (missing intermediate or foreign CA).',
  ERR_SPIFFE_CHAIN_INVALID:
    'A signing certificate in the chain is not a CA, may not sign certificates, exceeds its path length, or a signature does not verify.',
  ERR_SPIFFE_CA_DIR_INVALID:
    'The CA directory is partly populated, unreadable, or its key does not match its certificate.',
  ERR_SPIFFE_CA_UNAVAILABLE:
    'The CA endpoint could not be reached (connection refused, TLS failure, DNS).',
  ERR_SPIFFE_CA_TIMEOUT: 'The CA did not answer within the configured timeout.',
  ERR_SPIFFE_CA_UNAUTHENTICATED: 'The CA rejected the caller: bearer token missing or wrong.',
  ERR_SPIFFE_CA_PERMISSION_DENIED:
    'The CA refused to issue for the requested identity (impersonation not allowed).',
  ERR_SPIFFE_CA_REJECTED:
    'The CA refused the request for another reason (bad CSR, bad TTL, internal error).',
  ERR_SPIFFE_CA_RESPONSE_INVALID:
    'The CA answered with an unusable certificate chain (empty, undecodable, or not matching the key).',
  ERR_SPIFFE_CA_IDENTITY_MISMATCH:
    'The CA returned a certificate for an identity other than the one requested.',
  ERR_SPIFFE_TOKEN_UNREADABLE: 'The bearer token file could not be read.',
  ERR_SPIFFE_TTL_INVALID:
    'The requested certificate lifetime is not a positive number of seconds or exceeds the maximum.',
  ERR_SPIFFE_CLOSED: 'The object was closed; no further certificates are fetched.',
  ERR_SPIFFE_FORGOTTEN:
    'The identity was forgotten (SecretManager.forget) while a caller waited for its certificate.',
} as const;

export type SpiffeErrorCode = keyof typeof SPIFFE_ERROR_CODES;

/** The one error class of `@mesh/spiffe`. `instanceof` works across duplicated package copies. */
export class SpiffeError extends Error {
  override readonly name = 'SpiffeError';
  readonly code: SpiffeErrorCode;

  constructor(code: SpiffeErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    Object.defineProperty(this, brand, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && brand in value;
  }
}
