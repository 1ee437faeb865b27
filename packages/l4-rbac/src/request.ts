import { RbacError } from './errors.js';
import { type ParsedIp, parseIp } from './ip.js';

/**
 * A parsed peer identity, e.g. `IstioIdentity` from `@mesh/spiffe`: anything whose
 * `toString()` is the SPIFFE ID. `namespace`/`serviceAccount` are read when present,
 * otherwise taken from an Istio-shaped path (`/ns/<ns>/sa/<sa>`).
 */
export interface PeerIdentity {
  toString(): string;
  readonly namespace?: string;
  readonly serviceAccount?: string;
}

/** The workload a connection is for: its namespace and its selector-scoped policy keys. */
export interface DestinationWorkload {
  namespace: string;
  /** `ns/name` keys of WORKLOAD_SELECTOR policies istiod attached to the workload. */
  authorizationPolicies?: readonly string[];
}

/** What the decision looks at for one inbound connection. */
export interface RbacRequest {
  /** The peer's SPIFFE ID (`spiffe://td/ns/x/sa/y`) or parsed identity; absent/null for plaintext. */
  identity?: string | PeerIdentity | null;
  /** TCP peer address. */
  sourceIp: string;
  destination: DestinationWorkload;
  /** Destination pod IP. */
  destinationIp: string;
  /** The resolved target port (after service → target port mapping), never 15008. */
  destinationPort: number;
}

/** The connection's attributes as matchers read them. */
export interface MatchContext {
  /** SPIFFE ID without `spiffe://`; undefined for plaintext. */
  readonly principal: string | undefined;
  /** Namespace of the peer identity; undefined for plaintext or a non-Istio SPIFFE ID. */
  readonly namespace: string | undefined;
  readonly serviceAccount: string | undefined;
  readonly sourceIp: ParsedIp;
  readonly destinationIp: ParsedIp;
  readonly destinationPort: number;
}

const SCHEME = 'spiffe://';

function bad(message: string): RbacError {
  return new RbacError('ERR_RBAC_INVALID_REQUEST', message);
}

/** Validates a request and extracts the attributes matchers compare. */
export function matchContext(req: RbacRequest): MatchContext {
  if (typeof req !== 'object' || req === null) throw bad('request must be an object');
  let principal: string | undefined;
  let namespace: string | undefined;
  let serviceAccount: string | undefined;
  const identity = req.identity;
  if (identity !== undefined && identity !== null) {
    const text = typeof identity === 'string' ? identity : String(identity);
    if (!text.startsWith(SCHEME) || text.length === SCHEME.length) {
      throw bad(`peer identity ${JSON.stringify(text)} is not a SPIFFE ID (spiffe://…)`);
    }
    principal = text.slice(SCHEME.length);
    if (typeof identity === 'object' && typeof identity.namespace === 'string') {
      namespace = identity.namespace;
      serviceAccount = identity.serviceAccount;
    } else {
      const parts = principal.split('/');
      if (parts.length === 5 && parts[1] === 'ns' && parts[3] === 'sa') {
        namespace = parts[2];
        serviceAccount = parts[4];
      }
    }
  }
  const sourceIp = parseIp(req.sourceIp);
  if (!sourceIp) throw bad(`source IP ${JSON.stringify(req.sourceIp)} is not an IP address`);
  const destinationIp = parseIp(req.destinationIp);
  if (!destinationIp) {
    throw bad(`destination IP ${JSON.stringify(req.destinationIp)} is not an IP address`);
  }
  const port = req.destinationPort;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw bad(`destination port ${JSON.stringify(port)} is not an integer from 0 to 65535`);
  }
  const dest = req.destination;
  if (typeof dest !== 'object' || dest === null || typeof dest.namespace !== 'string') {
    throw bad('destination must be an object with a namespace');
  }
  return { principal, namespace, serviceAccount, sourceIp, destinationIp, destinationPort: port };
}
