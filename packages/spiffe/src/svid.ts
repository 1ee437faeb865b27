import type { X509Certificate } from 'node:crypto';
import { SpiffeError } from './errors.js';
import { type IstioIdentity, SpiffeId } from './spiffe-id.js';
import { type ParsedCertificate, parseCertificates } from './x509.js';

/** Longest chain walked (leaf + intermediates + root); real meshes use 2-4. */
const MAX_CHAIN_LENGTH = 10;

/**
 * The SPIFFE ID of an X.509-SVID leaf: its one and only URI SAN. Per the X.509-SVID
 * specification a certificate with several URI SANs is not an SVID, so this throws
 * `ERR_SPIFFE_SVID_MULTIPLE_URI_SANS` rather than picking one.
 */
export function spiffeIdFromCertificate(cert: ParsedCertificate): SpiffeId {
  return spiffeIdFromUris(cert.uriSans);
}

function spiffeIdFromUris(uris: readonly string[]): SpiffeId {
  if (uris.length === 0) {
    throw new SpiffeError('ERR_SPIFFE_SVID_NO_URI_SAN', 'certificate has no URI SAN');
  }
  if (uris.length > 1) {
    throw new SpiffeError(
      'ERR_SPIFFE_SVID_MULTIPLE_URI_SANS',
      `certificate has ${uris.length} URI SANs (${uris.join(', ')}); an X.509-SVID has exactly one`,
    );
  }
  try {
    return SpiffeId.parse(uris[0]!);
  } catch (err) {
    throw new SpiffeError(
      'ERR_SPIFFE_SVID_URI_NOT_SPIFFE',
      `certificate URI SAN is not a SPIFFE ID: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** A set of trust anchors (root certificates) for one or more trust domains. Immutable. */
export class TrustBundle {
  readonly roots: readonly ParsedCertificate[];

  constructor(roots: readonly ParsedCertificate[]) {
    const unique: ParsedCertificate[] = [];
    for (const root of roots) if (!unique.some((r) => r.equals(root))) unique.push(root);
    this.roots = Object.freeze(unique);
  }

  /** Builds a bundle from PEM text (any number of certificates), DER, or an array of those. */
  static from(
    input: string | Uint8Array | readonly (string | Uint8Array | ParsedCertificate)[],
  ): TrustBundle {
    if (Array.isArray(input)) {
      return new TrustBundle(
        input.flatMap((item: string | Uint8Array | ParsedCertificate) =>
          typeof item === 'string' || item instanceof Uint8Array ? parseCertificates(item) : [item],
        ),
      );
    }
    return new TrustBundle(parseCertificates(input as string | Uint8Array));
  }

  /** A bundle holding the roots of both. */
  merge(other: TrustBundle): TrustBundle {
    return new TrustBundle([...this.roots, ...other.roots]);
  }

  has(cert: ParsedCertificate): boolean {
    return this.roots.some((r) => r.equals(cert));
  }

  /** One PEM per root. */
  get pems(): string[] {
    return this.roots.map((r) => r.pem);
  }

  /** All roots concatenated, as a CA file. */
  toPem(): string {
    return this.pems.join('');
  }
}

export interface VerifyOptions {
  /** The instant the chain must be valid at; default now. */
  at?: Date;
  /** When set, the leaf's SPIFFE ID must belong to this trust domain. */
  trustDomain?: string;
}

/** The result of a successful verification. */
export interface VerifiedChain {
  readonly identity: SpiffeId;
  /** Leaf first, the bundle root last. */
  readonly path: readonly ParsedCertificate[];
}

/**
 * Validates an X.509-SVID chain (leaf first, then intermediates in any order) against a trust
 * bundle at a given time: every signature along the path, every validity window, the SVID
 * leaf profile (not a CA, digitalSignature, no keyCertSign/cRLSign, exactly one SPIFFE URI
 * SAN) and the CA profile of every signer (cA, keyCertSign, pathLenConstraint).
 */
export function verifyChain(
  chain: readonly ParsedCertificate[],
  bundle: TrustBundle,
  options: VerifyOptions = {},
): VerifiedChain {
  const at = options.at ?? new Date();
  const leaf = chain[0];
  if (!leaf) throw new SpiffeError('ERR_SPIFFE_INVALID_ARGUMENT', 'the chain is empty');
  const identity = spiffeIdFromCertificate(leaf);
  if (options.trustDomain !== undefined && identity.trustDomain !== options.trustDomain) {
    throw new SpiffeError(
      'ERR_SPIFFE_CHAIN_UNTRUSTED',
      `SVID ${identity} is not in trust domain ${options.trustDomain}`,
    );
  }
  assertLeafProfile(leaf);
  const path: ParsedCertificate[] = [leaf];
  const candidates = chain.slice(1);
  let current = leaf;
  for (;;) {
    const root = findIssuer(current, bundle.roots);
    if (root) {
      assertSigner(root, path.length - 1);
      path.push(root);
      break;
    }
    const next = findIssuer(
      current,
      candidates.filter((c) => !path.includes(c)),
    );
    if (!next) throw noIssuerError(current, [...bundle.roots, ...candidates]);
    assertSigner(next, path.length - 1);
    path.push(next);
    current = next;
    if (path.length >= MAX_CHAIN_LENGTH) {
      throw new SpiffeError(
        'ERR_SPIFFE_CHAIN_INVALID',
        `chain is longer than ${MAX_CHAIN_LENGTH} certificates`,
      );
    }
  }
  for (const cert of path) assertValidAt(cert, at);
  return Object.freeze({ identity, path: Object.freeze(path) });
}

function findIssuer(
  cert: ParsedCertificate,
  pool: readonly ParsedCertificate[],
): ParsedCertificate | undefined {
  return pool.find((c) => c.subject === cert.issuer && cert.isIssuedBy(c));
}

/** Why no issuer was found: a named, key-matching issuer whose key fails is a bad signature. */
function noIssuerError(cert: ParsedCertificate, pool: readonly ParsedCertificate[]): SpiffeError {
  const name = cert.subject || cert.uriSans[0] || '(empty subject)';
  const sameKey = pool.some(
    (c) =>
      c.subject === cert.issuer &&
      (!cert.authorityKeyId || !c.subjectKeyId || cert.authorityKeyId === c.subjectKeyId),
  );
  if (sameKey) {
    return new SpiffeError(
      'ERR_SPIFFE_CHAIN_INVALID',
      `signature of "${name}" does not verify with the key of its issuer "${cert.issuer}"`,
    );
  }
  return new SpiffeError(
    'ERR_SPIFFE_CHAIN_UNTRUSTED',
    `no certificate in the chain or the trust bundle issued "${name}" (issuer "${cert.issuer}")`,
  );
}

function assertLeafProfile(leaf: ParsedCertificate): void {
  if (leaf.isCa) {
    throw new SpiffeError(
      'ERR_SPIFFE_SVID_INVALID',
      'leaf certificate is a CA (basicConstraints cA=true)',
    );
  }
  if (!leaf.keyUsage?.has('digitalSignature')) {
    throw new SpiffeError(
      'ERR_SPIFFE_SVID_INVALID',
      'leaf certificate lacks keyUsage digitalSignature',
    );
  }
  if (leaf.keyUsage.has('keyCertSign') || leaf.keyUsage.has('cRLSign')) {
    throw new SpiffeError(
      'ERR_SPIFFE_SVID_INVALID',
      'leaf certificate may sign certificates or CRLs (keyCertSign/cRLSign)',
    );
  }
}

function assertSigner(ca: ParsedCertificate, intermediatesBelow: number): void {
  const name = ca.subject || '(empty subject)';
  if (!ca.isCa) {
    throw new SpiffeError('ERR_SPIFFE_CHAIN_INVALID', `signer "${name}" is not a CA`);
  }
  if (ca.keyUsage && !ca.keyUsage.has('keyCertSign')) {
    throw new SpiffeError(
      'ERR_SPIFFE_CHAIN_INVALID',
      `signer "${name}" lacks keyUsage keyCertSign`,
    );
  }
  if (ca.pathLength !== undefined && intermediatesBelow > ca.pathLength) {
    throw new SpiffeError(
      'ERR_SPIFFE_CHAIN_INVALID',
      `signer "${name}" allows ${ca.pathLength} intermediates below it, the chain has ${intermediatesBelow}`,
    );
  }
}

function assertValidAt(cert: ParsedCertificate, at: Date): void {
  const name = cert.subject || cert.uriSans[0] || cert.serialNumber;
  if (at.getTime() > cert.notAfter.getTime()) {
    throw new SpiffeError(
      'ERR_SPIFFE_CERT_EXPIRED',
      `certificate "${name}" expired at ${cert.notAfter.toISOString()} (checked at ${at.toISOString()})`,
    );
  }
  if (at.getTime() < cert.notBefore.getTime()) {
    throw new SpiffeError(
      'ERR_SPIFFE_CERT_NOT_YET_VALID',
      `certificate "${name}" is not valid before ${cert.notBefore.toISOString()} (checked at ${at.toISOString()})`,
    );
  }
}

/** A parsed X.509-SVID: leaf, its SPIFFE ID, and the intermediates sent with it. Immutable. */
export class X509Svid {
  readonly identity: SpiffeId;
  readonly leaf: ParsedCertificate;
  readonly intermediates: readonly ParsedCertificate[];

  private constructor(leaf: ParsedCertificate, intermediates: readonly ParsedCertificate[]) {
    this.identity = spiffeIdFromCertificate(leaf);
    this.leaf = leaf;
    this.intermediates = Object.freeze([...intermediates]);
  }

  /** Parses a chain (PEM text, DER, or an array of those), leaf first. */
  static parse(chain: string | Uint8Array | readonly (string | Uint8Array)[]): X509Svid {
    const certs = parseCertificates(chain);
    return new X509Svid(certs[0]!, certs.slice(1));
  }

  static fromCertificates(chain: readonly ParsedCertificate[]): X509Svid {
    if (chain.length === 0)
      throw new SpiffeError('ERR_SPIFFE_INVALID_ARGUMENT', 'the chain is empty');
    return new X509Svid(chain[0]!, chain.slice(1));
  }

  get chain(): readonly ParsedCertificate[] {
    return [this.leaf, ...this.intermediates];
  }

  get notBefore(): Date {
    return this.leaf.notBefore;
  }

  get notAfter(): Date {
    return this.leaf.notAfter;
  }

  verify(bundle: TrustBundle, options?: VerifyOptions): VerifiedChain {
    return verifyChain(this.chain, bundle, options);
  }
}

/** Anything with a validity window: `ParsedCertificate`, `X509Svid`, `WorkloadCertificate`. */
export interface HasValidity {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** True when `now` is past `notAfter`. */
export function isExpired(cert: HasValidity, now: Date = new Date()): boolean {
  return now.getTime() > cert.notAfter.getTime();
}

/** Milliseconds until `notAfter` (negative once expired). */
export function timeToExpiry(cert: HasValidity, now: Date = new Date()): number {
  return cert.notAfter.getTime() - now.getTime();
}

/** The fraction of the lifetime elapsed at `now`, clamped to [0, 1]. */
export function lifetimeElapsed(cert: HasValidity, now: Date = new Date()): number {
  const total = cert.notAfter.getTime() - cert.notBefore.getTime();
  if (total <= 0) return 1;
  return Math.min(1, Math.max(0, (now.getTime() - cert.notBefore.getTime()) / total));
}

/**
 * When ztunnel refreshes a certificate: at notBefore + `fraction` (default 50 %) of its
 * lifetime. A certificate whose notBefore is in the future is refreshed right away.
 */
export function refreshTime(cert: HasValidity, now: Date = new Date(), fraction = 0.5): Date {
  const nb = cert.notBefore.getTime();
  if (nb > now.getTime()) return now;
  return new Date(nb + (cert.notAfter.getTime() - nb) * fraction);
}

/**
 * URI SANs from Node's `X509Certificate.subjectAltName` string, without an ASN.1 parse (fast
 * enough for every handshake). Node quotes entries holding `,` or `"` as JSON strings; those
 * are decoded, so a crafted SAN cannot smuggle in a second entry.
 */
export function uriSansOf(cert: Pick<X509Certificate, 'subjectAltName'>): string[] {
  const san = cert.subjectAltName;
  if (!san) return [];
  const uris: string[] = [];
  let i = 0;
  while (i < san.length) {
    const colon = san.indexOf(':', i);
    if (colon === -1) break;
    const type = san.slice(i, colon);
    let value: string;
    let end: number;
    if (san[colon + 1] === '"') {
      // JSON string: find the closing quote that is not escaped.
      let j = colon + 2;
      while (j < san.length && san[j] !== '"') j += san[j] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(san.slice(colon + 1, j + 1)) as string;
      } catch {
        value = '';
      }
      end = j + 1;
    } else {
      const comma = san.indexOf(', ', colon + 1);
      end = comma === -1 ? san.length : comma;
      value = san.slice(colon + 1, end);
    }
    if (type === 'URI') uris.push(value);
    i = end;
    if (san.startsWith(', ', i)) i += 2;
  }
  return uris;
}

/**
 * The SPIFFE ID of a peer certificate as Node hands it over (`tlsSocket.getPeerX509Certificate()`),
 * by the X.509-SVID rule: exactly one URI SAN, which must be a SPIFFE ID.
 */
export function spiffeIdFromX509(cert: Pick<X509Certificate, 'subjectAltName'>): SpiffeId {
  return spiffeIdFromUris(uriSansOf(cert));
}

/**
 * ztunnel's peer identity rule (`tls::identity`): the first URI SAN that parses as an Istio
 * identity `spiffe://<td>/ns/<ns>/sa/<sa>`, or `undefined`. More lenient than
 * {@link spiffeIdFromX509}; use it where ztunnel compatibility matters.
 */
export function istioIdentityFromX509(
  cert: Pick<X509Certificate, 'subjectAltName'>,
): IstioIdentity | undefined {
  for (const uri of uriSansOf(cert)) {
    const istio = SpiffeId.tryParse(uri)?.asIstio();
    if (istio) return istio;
  }
  return undefined;
}

/**
 * ztunnel's client-side server check (`IdentityVerifier`, after chain validation): the first
 * of the certificate's URI SANs that parses as a SPIFFE ID and equals one of `expected`, or
 * `undefined` when none does. DNS names are never consulted.
 */
export function matchExpectedIdentity(
  cert: Pick<X509Certificate, 'subjectAltName'>,
  expected: readonly (SpiffeId | string)[],
): SpiffeId | undefined {
  const wanted = new Set(expected.map(String));
  for (const uri of uriSansOf(cert)) {
    const id = SpiffeId.tryParse(uri);
    if (id && wanted.has(id.toString())) return id;
  }
  return undefined;
}

/**
 * ztunnel's server-side client check (`TrustDomainVerifier`, after chain validation): true
 * when at least one URI SAN is a SPIFFE ID in `trustDomain` (the server certificate's own).
 */
export function hasTrustDomain(
  cert: Pick<X509Certificate, 'subjectAltName'>,
  trustDomain: string,
): boolean {
  return uriSansOf(cert).some((uri) => SpiffeId.tryParse(uri)?.trustDomain === trustDomain);
}
