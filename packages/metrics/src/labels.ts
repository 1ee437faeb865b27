import type { Baggage } from './baggage.js';
import { MetricsError } from './errors.js';

/** ztunnel's CommonTrafficLabels in encoding order, without the optional locality block. */
export const BASE_TRAFFIC_LABEL_NAMES = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_service',
  'destination_service_namespace',
  'destination_service_name',
  'destination_workload',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_cluster',
  'request_protocol',
  'response_flags',
  'connection_security_policy',
] as const;

/** Appended (in this order) once any source or destination information was applied. */
export const LOCALITY_LABEL_NAMES = [
  'source_region',
  'source_zone',
  'destination_region',
  'destination_zone',
] as const;

/** Every label a traffic series can carry, in encoding order. */
export const TRAFFIC_LABEL_NAMES = [...BASE_TRAFFIC_LABEL_NAMES, ...LOCALITY_LABEL_NAMES] as const;

export type BaseTrafficLabelName = (typeof BASE_TRAFFIC_LABEL_NAMES)[number];
export type LocalityLabelName = (typeof LOCALITY_LABEL_NAMES)[number];
export type TrafficLabelName = (typeof TRAFFIC_LABEL_NAMES)[number];

/**
 * One series' labels, keys in ztunnel's encoding order, empty values already `unknown`.
 * The locality keys are present together or not at all.
 */
export type TrafficLabels = { readonly [K in BaseTrafficLabelName]: string } & {
  readonly [K in LocalityLabelName]?: string;
};

export type Reporter = 'source' | 'destination';
export type SecurityPolicy = 'mutual_tls' | 'unknown';

/** ztunnel's response flags; `-` means none. */
export const RESPONSE_FLAGS = [
  '-',
  'DENY',
  'CONNECT',
  'TLS_FAILURE',
  'H2_HANDSHAKE_FAILURE',
  'NETWORK_POLICY',
  'IDENTITY_ERROR',
  'CERT_REVOKED',
] as const;
export type ResponseFlag = (typeof RESPONSE_FLAGS)[number];

/** Flags that count a connection in `istio_tcp_connections_failed_total`: every flag but `-`. */
export const FAILURE_RESPONSE_FLAGS: ReadonlySet<ResponseFlag> = new Set(
  RESPONSE_FLAGS.filter((f) => f !== '-'),
);

/** A service port: `targetPort` 0 means "use the endpoint's own mapping". */
export interface LabelPort {
  readonly servicePort: number;
  readonly targetPort: number;
}

/**
 * The workload fields labels are built from. `Workload` of `@mesh/xds-client` (and of the
 * ztunnel local config file) is assignable to it.
 */
export interface LabelWorkload {
  /** Pod (or VM) name; the access log prefers it for `src.workload` / `dst.workload`. */
  readonly name: string;
  readonly namespace: string;
  /** Owner name (deployment, job, ...): `*_workload`. */
  readonly workloadName: string;
  readonly canonicalName: string;
  readonly canonicalRevision: string;
  readonly trustDomain: string;
  readonly serviceAccount: string;
  readonly clusterId: string;
  readonly locality?: { readonly region: string; readonly zone: string };
  /** Endpoint port maps keyed by `namespace/hostname`, used to guess the inbound service. */
  readonly services?: { readonly [namespacedHostname: string]: readonly LabelPort[] };
}

/** What `destination_service*` is built from. */
export interface ServiceDescription {
  readonly hostname: string;
  readonly name: string;
  readonly namespace: string;
}

/** A service as the inbound side needs it; `Service` of `@mesh/xds-client` is assignable. */
export interface LabelService extends ServiceDescription {
  readonly ports: readonly LabelPort[];
}

/**
 * A peer known only from the connection itself: the verified TLS identity plus what its
 * baggage said. Used when the peer is not (or not trusted to be) in local WDS state.
 */
export interface DerivedWorkload {
  readonly workloadName?: string;
  /** Canonical service (`service.name` in baggage). */
  readonly app?: string;
  readonly revision?: string;
  readonly namespace?: string;
  /** Verified SPIFFE identity, `spiffe://td/ns/<ns>/sa/<sa>`. */
  readonly identity?: string;
  readonly clusterId?: string;
  readonly region?: string;
  readonly zone?: string;
}

/** Everything the labels of one connection are derived from (ztunnel's `ConnectionOpen`). */
export interface ConnectionOpen {
  readonly reporter: Reporter;
  /** The WDS workload of the source; preferred over `derivedSource` field by field. */
  readonly source?: LabelWorkload;
  /** TLS identity and baggage of the source; the only way `source_principal` gets a value. */
  readonly derivedSource?: DerivedWorkload;
  /** The WDS workload actually connected to (on outbound via a waypoint: the waypoint). */
  readonly destination?: LabelWorkload;
  /** Double-HBONE: inner TLS peer identity and response baggage, overriding `destination`. */
  readonly derivedDestination?: DerivedWorkload;
  readonly destinationService?: ServiceDescription;
  readonly connectionSecurityPolicy: SecurityPolicy;
}

/** The SPIFFE identity ztunnel gives a WDS workload: `spiffe://<td>/ns/<ns>/sa/<sa>`. */
export function workloadIdentity(w: LabelWorkload): string {
  return `spiffe://${w.trustDomain}/ns/${w.namespace}/sa/${w.serviceAccount}`;
}

/** One end of a connection, before `unknown` is filled in. */
interface Side {
  workload?: string;
  service?: string;
  revision?: string;
  namespace?: string;
  principal?: string;
  app?: string;
  version?: string;
  cluster?: string;
  region?: string;
  zone?: string;
}

function wdsSide(w: LabelWorkload, principal: string | undefined): Side {
  return {
    principal,
    workload: w.workloadName,
    service: w.canonicalName,
    revision: w.canonicalRevision,
    namespace: w.namespace,
    app: w.canonicalName,
    version: w.canonicalRevision,
    cluster: w.clusterId,
    region: w.locality?.region,
    zone: w.locality?.zone,
  };
}

function derivedSide(d: DerivedWorkload, app: string | undefined): Side {
  return {
    workload: d.workloadName,
    service: d.app,
    revision: d.revision,
    namespace: d.namespace,
    principal: d.identity,
    app,
    version: d.revision,
    cluster: d.clusterId,
    region: d.region,
    zone: d.zone,
  };
}

const UNKNOWN = 'unknown';
const v = (s: string | undefined): string => (s ? s : UNKNOWN);

/**
 * Fills CommonTrafficLabels exactly as ztunnel does: derived source first, then the WDS
 * source over it (except `source_principal`), then the destination workload, the derived
 * destination and the destination service. The result's key order is the encoding order.
 */
export function trafficLabels(c: ConnectionOpen, flag: ResponseFlag = '-'): TrafficLabels {
  if (c.reporter !== 'source' && c.reporter !== 'destination') {
    throw new MetricsError('ERR_METRICS_INVALID_LABEL', `invalid reporter ${String(c.reporter)}`);
  }
  if (c.connectionSecurityPolicy !== 'mutual_tls' && c.connectionSecurityPolicy !== 'unknown') {
    throw new MetricsError(
      'ERR_METRICS_INVALID_LABEL',
      `invalid connection_security_policy ${String(c.connectionSecurityPolicy)}`,
    );
  }
  let src: Side = {};
  let dst: Side = {};
  let locality = false;
  if (c.derivedSource) {
    // ztunnel quirk kept for dashboard parity: the derived path labels source_app with the
    // workload name, not the canonical service.
    src = derivedSide(c.derivedSource, c.derivedSource.workloadName);
    locality = true;
  }
  if (c.source) {
    // WDS data wins field by field, but never supplies source_principal: only a verified
    // TLS identity may.
    src = wdsSide(c.source, src.principal);
    locality = true;
  }
  if (c.destination) {
    dst = wdsSide(c.destination, workloadIdentity(c.destination));
    locality = true;
  }
  if (c.derivedDestination) {
    dst = derivedSide(c.derivedDestination, c.derivedDestination.app);
    locality = true;
  }
  const svc = c.destinationService;
  const labels: Record<string, string> = {
    reporter: c.reporter,
    source_workload: v(src.workload),
    source_canonical_service: v(src.service),
    source_canonical_revision: v(src.revision),
    source_workload_namespace: v(src.namespace),
    source_principal: v(src.principal),
    source_app: v(src.app),
    source_version: v(src.version),
    source_cluster: v(src.cluster),
    destination_service: v(svc?.hostname),
    destination_service_namespace: v(svc?.namespace),
    destination_service_name: v(svc?.name),
    destination_workload: v(dst.workload),
    destination_canonical_service: v(dst.service),
    destination_canonical_revision: v(dst.revision),
    destination_workload_namespace: v(dst.namespace),
    destination_principal: v(dst.principal),
    destination_app: v(dst.app),
    destination_version: v(dst.version),
    destination_cluster: v(dst.cluster),
    request_protocol: 'tcp',
    response_flags: flag,
    connection_security_policy: c.connectionSecurityPolicy,
  };
  if (locality) {
    labels.source_region = v(src.region);
    labels.source_zone = v(src.zone);
    labels.destination_region = v(dst.region);
    labels.destination_zone = v(dst.zone);
  }
  return labels as unknown as TrafficLabels;
}

/**
 * The service an inbound connection was most likely for: the one named by `Forwarded: host=`
 * if the destination is one of its endpoints, else the first service whose target port (or,
 * for target port 0, the destination's endpoint port) equals the connection's port.
 */
export function guessInboundService<S extends LabelService>(
  destination: LabelWorkload,
  services: readonly S[],
  port: number,
  forwardedHost?: string,
): S | undefined {
  if (forwardedHost) {
    const named = services.find((s) => s.hostname === forwardedHost);
    if (named) return named;
  }
  return services.find((s) =>
    s.ports.some((p) => {
      if (p.targetPort === port) return true;
      if (p.targetPort !== 0) return false;
      const endpoint = destination.services?.[`${s.namespace}/${s.hostname}`];
      return (
        endpoint?.some((e) => e.servicePort === p.servicePort && e.targetPort === port) ?? false
      );
    }),
  );
}

export type OutboundProtocol = 'hbone' | 'double-hbone' | 'tcp';

export interface OutboundConnectionInput {
  /** The local pod's workload. */
  source: LabelWorkload;
  /** Our own certificate's identity; defaults to the source workload's WDS identity. */
  sourceIdentity?: string;
  /** The workload connected to (the waypoint when going through one). */
  destination?: LabelWorkload;
  /** The service the client addressed, even when the connection goes via a waypoint. */
  destinationService?: ServiceDescription;
  protocol: OutboundProtocol;
  /** Double-HBONE: inner peer identity plus response baggage. */
  derivedDestination?: DerivedWorkload;
}

/** Labels input for a connection captured on 15001 (or SOCKS5): `reporter="source"`. */
export function outboundConnection(input: OutboundConnectionInput): ConnectionOpen {
  const mtls = input.protocol !== 'tcp';
  return {
    reporter: 'source',
    source: input.source,
    // Only a connection that does mTLS can claim our identity as source_principal.
    derivedSource: mtls
      ? { identity: input.sourceIdentity ?? workloadIdentity(input.source) }
      : undefined,
    destination: input.destination,
    derivedDestination: input.protocol === 'double-hbone' ? input.derivedDestination : undefined,
    destinationService: input.destinationService,
    connectionSecurityPolicy: mtls ? 'mutual_tls' : 'unknown',
  };
}

export interface InboundHboneConnectionInput {
  /** The verified SPIFFE identity of the peer certificate. */
  peerIdentity?: string;
  /** Parsed request `baggage`. */
  baggage?: Baggage;
  /** WDS workload found by the TCP peer IP on the local network. */
  source?: LabelWorkload;
  /** `x-forwarded-network` request header, if any. */
  forwardedNetwork?: string;
  /** This ztunnel's network (`NETWORK`); `''` for the default network. */
  localNetwork?: string;
  /** The local workload the tunnel terminates at. */
  destination: LabelWorkload;
  /** Services the destination is an endpoint of. */
  destinationServices?: readonly LabelService[];
  /** `host=` of the request's `Forwarded` header (see {@link forwardedHost}). */
  forwardedHost?: string;
  /** The target port the tunnel asked for. */
  port: number;
}

/** Labels input for a tunnel accepted on 15008: `reporter="destination"`, `mutual_tls`. */
export function inboundHboneConnection(input: InboundHboneConnectionInput): ConnectionOpen {
  const b = input.baggage ?? {};
  // A request from another network arrived through its gateway: the TCP peer is the gateway,
  // so only the baggage describes the source.
  const viaGateway =
    input.forwardedNetwork !== undefined && input.forwardedNetwork !== (input.localNetwork ?? '');
  return {
    reporter: 'destination',
    source: viaGateway ? undefined : input.source,
    derivedSource: {
      identity: input.peerIdentity,
      clusterId: b.clusterId,
      region: b.region,
      zone: b.zone,
      namespace: b.namespace,
      app: b.serviceName,
      workloadName: b.workloadName,
      revision: b.revision,
    },
    destination: input.destination,
    destinationService: guessInboundService(
      input.destination,
      input.destinationServices ?? [],
      input.port,
      input.forwardedHost,
    ),
    connectionSecurityPolicy: 'mutual_tls',
  };
}

export interface InboundPlaintextConnectionInput {
  /** WDS workload found by the TCP peer IP. */
  source?: LabelWorkload;
  destination: LabelWorkload;
  destinationServices?: readonly LabelService[];
  /** The original destination port. */
  port: number;
}

/** Labels input for a connection on 15006: no peer identity, `connection_security_policy="unknown"`. */
export function inboundPlaintextConnection(input: InboundPlaintextConnectionInput): ConnectionOpen {
  return {
    reporter: 'destination',
    source: input.source,
    destination: input.destination,
    destinationService: guessInboundService(
      input.destination,
      input.destinationServices ?? [],
      input.port,
    ),
    connectionSecurityPolicy: 'unknown',
  };
}
