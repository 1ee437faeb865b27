import { createPrivateKey, type KeyObject } from 'node:crypto';
import type { WorkloadCertificate } from './certificate.js';
import { SpiffeError } from './errors.js';
import type { SpiffeId } from './spiffe-id.js';
import { spiffeIdFromCertificate, TrustBundle, verifyChain } from './svid.js';
import { ParsedCertificate, parseCertificates } from './x509.js';

/** Options of {@link createWorkloadCertificate}. */
export interface WorkloadCertificateParts {
  /** PKCS#8 (or SEC1) PEM of the leaf's ECDSA P-256/P-384 key. */
  privateKey: string;
  /** The leaf, as PEM (one certificate). */
  leaf: string;
  /** Intermediates, leaf's issuer first. */
  intermediates?: readonly string[];
  /** Trust anchors; each string may hold several certificates. */
  roots: readonly string[];
  /** When set, the leaf's SPIFFE ID must equal it (`ERR_SPIFFE_CA_IDENTITY_MISMATCH`). */
  expectedIdentity?: SpiffeId;
}

const parsedLeaves = new WeakMap<WorkloadCertificate, ParsedCertificate>();

/**
 * Assembles an immutable {@link WorkloadCertificate}, checking that the key is ECDSA and
 * matches the leaf, that the leaf is an X.509-SVID, and that leaf + intermediates chain to
 * the roots.
 */
export function createWorkloadCertificate(parts: WorkloadCertificateParts): WorkloadCertificate {
  const leaf = parseCertificates(parts.leaf);
  if (leaf.length !== 1) {
    throw new SpiffeError(
      'ERR_SPIFFE_INVALID_ARGUMENT',
      `leaf must be exactly one certificate, found ${leaf.length}`,
    );
  }
  const intermediates = parseCertificates(parts.intermediates ?? []);
  const roots = parseCertificates(parts.roots);
  const identity = spiffeIdFromCertificate(leaf[0]!);
  if (parts.expectedIdentity && !identity.equals(parts.expectedIdentity)) {
    throw new SpiffeError(
      'ERR_SPIFFE_CA_IDENTITY_MISMATCH',
      `certificate is for ${identity}, expected ${parts.expectedIdentity}`,
    );
  }
  const key = loadWorkloadKey(parts.privateKey);
  assertKeyMatches(key, leaf[0]!);
  // Checked at max(now, notBefore): a leaf backdated before a fresh intermediate, or one
  // issued by a CA whose clock runs ahead, is still accepted; an expired one is not.
  const at = new Date(Math.max(Date.now(), leaf[0]!.notBefore.getTime()));
  verifyChain([leaf[0]!, ...intermediates], new TrustBundle(roots), { at });
  return assembleWorkloadCertificate(
    identity,
    key.export({ format: 'pem', type: 'pkcs8' }) as string,
    leaf[0]!,
    intermediates.map((c) => c.pem),
    roots.map((c) => c.pem),
  );
}

/** @internal Freezes already-checked parts into a {@link WorkloadCertificate}. */
export function assembleWorkloadCertificate(
  identity: SpiffeId,
  privateKey: string,
  leaf: ParsedCertificate | LeafFields,
  intermediates: readonly string[],
  roots: readonly string[],
): WorkloadCertificate {
  const cert: WorkloadCertificate = Object.freeze({
    identity,
    privateKey,
    leaf: leaf.pem,
    intermediates: Object.isFrozen(intermediates)
      ? intermediates
      : Object.freeze([...intermediates]),
    roots: Object.isFrozen(roots) ? roots : Object.freeze([...roots]),
    notBefore: leaf.notBefore,
    notAfter: leaf.notAfter,
    serialNumber: leaf.serialNumber,
  });
  if (leaf instanceof ParsedCertificate) parsedLeaves.set(cert, leaf);
  return cert;
}

interface LeafFields {
  readonly pem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly serialNumber: string;
}

/**
 * Splits an Istio CA response (`cert_chain`: leaf first, then intermediates, the last element
 * being the root bundle, which may hold several roots) into a {@link WorkloadCertificate}.
 */
export function workloadCertificateFromCertChain(
  privateKey: string,
  certChain: readonly string[],
  expectedIdentity?: SpiffeId,
): WorkloadCertificate {
  if (certChain.length < 2) {
    throw new SpiffeError(
      'ERR_SPIFFE_CA_RESPONSE_INVALID',
      `certificate chain has ${certChain.length} element(s); expected the leaf and the root bundle at least`,
    );
  }
  const [first, ...rest] = certChain;
  const rootsPem = rest.pop()!;
  // An element may hold several PEM blocks; the leaf is the first certificate of the first.
  const head = parseCertificates(first!);
  return createWorkloadCertificate({
    privateKey,
    leaf: head[0]!.pem,
    intermediates: [...head.slice(1).map((c) => c.pem), ...rest],
    roots: [rootsPem],
    expectedIdentity,
  });
}

/** The decoded leaf of a {@link WorkloadCertificate} (cached per object). */
export function leafOf(cert: WorkloadCertificate): ParsedCertificate {
  let leaf = parsedLeaves.get(cert);
  if (!leaf) {
    leaf = parseCertificates(cert.leaf)[0]!;
    parsedLeaves.set(cert, leaf);
  }
  return leaf;
}

function loadWorkloadKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (cause) {
    throw new SpiffeError('ERR_SPIFFE_KEY_INVALID', 'private key is not a valid PEM key', {
      cause,
    });
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || (curve !== 'prime256v1' && curve !== 'secp384r1')) {
    throw new SpiffeError(
      'ERR_SPIFFE_KEY_UNSUPPORTED',
      `workload key is ${key.asymmetricKeyType}${curve ? ` ${curve}` : ''}; expected ECDSA P-256 or P-384`,
    );
  }
  return key;
}

export function assertKeyMatches(key: KeyObject, cert: ParsedCertificate): void {
  if (!cert.x509.checkPrivateKey(key)) {
    throw new SpiffeError(
      'ERR_SPIFFE_KEY_INVALID',
      'private key does not match the certificate public key',
    );
  }
}
