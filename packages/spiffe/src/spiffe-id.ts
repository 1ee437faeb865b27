import { SpiffeError } from './errors.js';

const SCHEME = 'spiffe://';
const MAX_URI_LENGTH = 2048;
const MAX_TRUST_DOMAIN_LENGTH = 255;
const TRUST_DOMAIN_CHARS = /^[a-z0-9._-]+$/;
const PATH_SEGMENT_CHARS = /^[a-zA-Z0-9._-]+$/;

function invalid(input: string, reason: string): SpiffeError {
  return new SpiffeError(
    'ERR_SPIFFE_ID_INVALID',
    `invalid SPIFFE ID ${JSON.stringify(input)}: ${reason}`,
  );
}

/** Validates a trust domain name; throws `ERR_SPIFFE_ID_INVALID` saying what is wrong. */
export function assertTrustDomain(trustDomain: string, input = trustDomain): void {
  if (trustDomain.length === 0) throw invalid(input, 'trust domain is empty');
  if (trustDomain.length > MAX_TRUST_DOMAIN_LENGTH) {
    throw invalid(input, `trust domain is longer than ${MAX_TRUST_DOMAIN_LENGTH} characters`);
  }
  if (!TRUST_DOMAIN_CHARS.test(trustDomain)) {
    if (trustDomain.includes(':')) throw invalid(input, 'trust domain must not contain a port');
    if (trustDomain.includes('@')) throw invalid(input, 'trust domain must not contain user info');
    throw invalid(
      input,
      'trust domain may contain only lowercase letters, digits, ".", "-" and "_"',
    );
  }
}

function assertSegment(segment: string, input: string): void {
  if (segment.length === 0)
    throw invalid(input, 'path has an empty segment (double or trailing "/")');
  if (segment === '.' || segment === '..')
    throw invalid(input, `path segment "${segment}" is not allowed`);
  if (!PATH_SEGMENT_CHARS.test(segment)) {
    throw invalid(
      input,
      `path segment "${segment}" may contain only letters, digits, ".", "-" and "_"`,
    );
  }
}

/**
 * A SPIFFE ID (`spiffe://<trust-domain>/<path>`), validated per the SPIFFE ID specification.
 * Immutable; compare with {@link SpiffeId.equals} or by `toString()`.
 */
export class SpiffeId {
  /** Trust domain, e.g. `cluster.local`. */
  readonly trustDomain: string;
  /** Path segments, e.g. `['ns', 'default', 'sa', 'demo']`; empty for the trust domain's own ID. */
  readonly segments: readonly string[];

  protected constructor(trustDomain: string, segments: readonly string[]) {
    this.trustDomain = trustDomain;
    this.segments = Object.freeze([...segments]);
  }

  /** Parses and validates `input`; throws `SpiffeError` `ERR_SPIFFE_ID_INVALID` naming the broken rule. */
  static parse(input: string): SpiffeId {
    const { trustDomain, segments } = parseParts(input);
    const istio = istioParts(segments);
    return istio
      ? new IstioIdentity(trustDomain, istio.namespace, istio.serviceAccount)
      : new SpiffeId(trustDomain, segments);
  }

  /** Like {@link SpiffeId.parse} but returns `undefined` instead of throwing. */
  static tryParse(input: string): SpiffeId | undefined {
    try {
      return SpiffeId.parse(input);
    } catch {
      return undefined;
    }
  }

  /** Builds an ID from a trust domain and path segments, validating both. */
  static fromSegments(trustDomain: string, ...segments: string[]): SpiffeId {
    return SpiffeId.parse(`${SCHEME}${trustDomain}${segments.map((s) => `/${s}`).join('')}`);
  }

  /** The path with its leading slash (`/ns/default/sa/demo`), or `''`. */
  get path(): string {
    return this.segments.map((s) => `/${s}`).join('');
  }

  /** True when this ID belongs to `trustDomain`. */
  isMemberOf(trustDomain: string): boolean {
    return this.trustDomain === trustDomain;
  }

  /** This ID in Istio's form, or `undefined` when it is not `spiffe://<td>/ns/<ns>/sa/<sa>`. */
  asIstio(): IstioIdentity | undefined {
    return this instanceof IstioIdentity ? this : undefined;
  }

  equals(other: SpiffeId | string): boolean {
    return this.toString() === other.toString();
  }

  toString(): string {
    return `${SCHEME}${this.trustDomain}${this.path}`;
  }

  toJSON(): string {
    return this.toString();
  }
}

/** Istio's workload identity `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`. */
export class IstioIdentity extends SpiffeId {
  readonly namespace: string;
  readonly serviceAccount: string;

  /** @internal use {@link IstioIdentity.of} or {@link IstioIdentity.parse}. */
  constructor(trustDomain: string, namespace: string, serviceAccount: string) {
    super(trustDomain, ['ns', namespace, 'sa', serviceAccount]);
    this.namespace = namespace;
    this.serviceAccount = serviceAccount;
  }

  /** Parses an Istio identity; throws `ERR_SPIFFE_ID_INVALID` or `ERR_SPIFFE_ID_NOT_ISTIO`. */
  static override parse(input: string): IstioIdentity {
    const id = SpiffeId.parse(input);
    const istio = id.asIstio();
    if (!istio) {
      throw new SpiffeError(
        'ERR_SPIFFE_ID_NOT_ISTIO',
        `SPIFFE ID ${JSON.stringify(input)} is not of the form spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`,
      );
    }
    return istio;
  }

  /** Builds and validates an Istio identity from its parts. */
  static of(parts: {
    trustDomain: string;
    namespace: string;
    serviceAccount: string;
  }): IstioIdentity {
    return IstioIdentity.parse(
      `${SCHEME}${parts.trustDomain}/ns/${parts.namespace}/sa/${parts.serviceAccount}`,
    );
  }

  /** The form Istio policies use for principals: the ID without `spiffe://`. */
  get principal(): string {
    return `${this.trustDomain}${this.path}`;
  }
}

function parseParts(input: string): { trustDomain: string; segments: string[] } {
  if (typeof input !== 'string') throw invalid(String(input), 'not a string');
  if (input.length === 0) throw invalid(input, 'empty');
  if (input.length > MAX_URI_LENGTH)
    throw invalid(input.slice(0, 64), `longer than ${MAX_URI_LENGTH} bytes`);
  if (!input.startsWith(SCHEME)) {
    if (input.toLowerCase().startsWith(SCHEME))
      throw invalid(input, 'scheme must be lowercase "spiffe"');
    throw invalid(input, 'scheme must be "spiffe://"');
  }
  if (input.includes('?')) throw invalid(input, 'query is not allowed');
  if (input.includes('#')) throw invalid(input, 'fragment is not allowed');
  if (input.includes('%')) throw invalid(input, 'percent-encoding is not allowed');
  const rest = input.slice(SCHEME.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  assertTrustDomain(trustDomain, input);
  if (slash === -1) return { trustDomain, segments: [] };
  const segments = rest.slice(slash + 1).split('/');
  for (const segment of segments) assertSegment(segment, input);
  return { trustDomain, segments };
}

function istioParts(
  segments: readonly string[],
): { namespace: string; serviceAccount: string } | undefined {
  if (segments.length !== 4 || segments[0] !== 'ns' || segments[2] !== 'sa') return undefined;
  return { namespace: segments[1]!, serviceAccount: segments[3]! };
}
